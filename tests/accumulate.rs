//! Gradient accumulation: `--batch-size 8 --accumulate 4` against `--batch-size 32` on the same
//! epoch order, for every optimizer, on both engines, with a partial last group. The two runs
//! take the same optimizer steps on the same rows, with the gradient of the same mean loss; only
//! the order of the sums differs, so the parameters agree within the usual tolerance.
//!
//! In PyTorch this is the usual accumulation loop:
//!
//! ```python
//! for i, (x, y) in enumerate(mini_batches):          # 8 rows each, the last group shorter
//!     (loss_fn(model(x), y) * len(x) / group_rows).backward()
//!     if i % 4 == 3 or i == last:
//!         optimizer.step(); optimizer.zero_grad()
//! ```

mod common;

use std::sync::Arc;

use common::{assert_close, gpu, random, targets};
use downhill::data::Dataset;
use downhill::optim::{Adadelta, Adagrad, Adam, AdamW, RmsProp, Sgd};
use downhill::train::{Residency, Silent, TrainConfig, TrainData, train};
use downhill::{
    Activation, Batch, CpuEngine, Engine, GpuEngine, Loss, ModelSpec, Optimizer, Parameters, Part,
    Setup, Tolerance,
};

/// 75 rows: at 32 a batch, groups of 32, 32 and 11 rows; at 8 a batch, groups of four
/// mini-batches of 8, then one of 8 and 3.
const ROWS: usize = 75;

fn optimizers() -> Vec<Optimizer> {
    vec![
        Optimizer::Sgd(Sgd {
            lr: 0.05,
            ..Sgd::default()
        }),
        Optimizer::Sgd(Sgd {
            lr: 0.05,
            momentum: 0.9,
            nesterov: true,
            weight_decay: 0.01,
            ..Sgd::default()
        }),
        Optimizer::Adam(Adam {
            lr: 0.01,
            amsgrad: true,
            ..Adam::default()
        }),
        Optimizer::AdamW(AdamW {
            lr: 0.01,
            ..AdamW::default()
        }),
        Optimizer::RmsProp(RmsProp {
            lr: 0.005,
            momentum: 0.5,
            centered: true,
            ..RmsProp::default()
        }),
        Optimizer::Adagrad(Adagrad {
            lr: 0.05,
            ..Adagrad::default()
        }),
        Optimizer::Adadelta(Adadelta::default()),
    ]
}

fn data(loss: Loss) -> Arc<Dataset> {
    Arc::new(
        Dataset::new(
            "accumulation rows",
            random(ROWS, 5, 1.0, 3),
            targets(loss, ROWS, 3, 4),
        )
        .unwrap(),
    )
}

fn setup(loss: Loss, optimizer: Optimizer) -> Setup {
    Setup {
        model: ModelSpec::from_widths(&[5, 9, 3], Activation::Tanh, Activation::Identity).unwrap(),
        loss,
        optimizer,
    }
}

/// An engine of one model, on the GPU or the CPU.
fn engine(on_gpu: bool, setup: &Setup, init: &Parameters) -> Box<dyn Engine> {
    if on_gpu {
        Box::new(GpuEngine::new(&gpu(), setup.clone(), init, 32).unwrap())
    } else {
        Box::new(CpuEngine::new(setup.clone(), init).unwrap())
    }
}

/// Two epochs at `batch_size` rows a mini-batch, `accumulate` mini-batches a step.
fn run(
    on_gpu: bool,
    setup: &Setup,
    data: &Arc<Dataset>,
    batch_size: usize,
    accumulate: u64,
) -> (Parameters, u64, Vec<f64>) {
    let init = Parameters::init(&setup.model, 7);
    let mut engine = engine(on_gpu, setup, &init);
    let config = TrainConfig {
        epochs: 2,
        batch_size,
        accumulate,
        seed: 11,
        residency: Residency::Streamed,
        ..TrainConfig::default()
    };
    let report = train(
        engine.as_mut(),
        &TrainData::Memory(Arc::clone(data)),
        None,
        &config,
        None,
        &mut Silent,
    )
    .unwrap();
    let losses = report.epochs().iter().map(|e| e.train_loss).collect();
    (engine.parameters(0).unwrap(), report.steps, losses)
}

fn accumulation_equals_the_large_batch(on_gpu: bool) {
    for loss in [Loss::CrossEntropy, Loss::Mse] {
        let data = data(loss);
        for optimizer in optimizers() {
            let setup = setup(loss, optimizer);
            let what = format!("{} {optimizer:?} gpu={on_gpu}", loss.name());
            let (large, large_steps, large_losses) = run(on_gpu, &setup, &data, 32, 1);
            let (grouped, grouped_steps, grouped_losses) = run(on_gpu, &setup, &data, 8, 4);
            assert_eq!(
                (large_steps, grouped_steps),
                (6, 6),
                "{what}: optimizer steps"
            );
            assert_close(&what, &grouped, &large, Tolerance::default());
            // The epochs' mean training losses are over the same rows and parameters.
            for (g, l) in grouped_losses.iter().zip(&large_losses) {
                assert!((g - l).abs() <= 1e-5 + 1e-4 * l.abs(), "{what}: {g} vs {l}");
            }
        }
    }
}

#[test]
fn accumulating_four_batches_of_8_equals_batches_of_32_on_the_cpu() {
    accumulation_equals_the_large_batch(false);
}

#[test]
fn accumulating_four_batches_of_8_equals_batches_of_32_on_the_gpu() {
    accumulation_equals_the_large_batch(true);
}

/// The seam by hand: gradients accumulated over a group, read, replaced and applied, on both
/// engines, against one step on the group's rows.
#[test]
fn gradients_accumulate_then_apply_on_both_engines() {
    let data = data(Loss::CrossEntropy);
    let setup = setup(
        Loss::CrossEntropy,
        Optimizer::Adam(Adam {
            lr: 0.01,
            ..Adam::default()
        }),
    );
    let init = Parameters::init(&setup.model, 2);
    let rows = |r: std::ops::Range<usize>| data.subset(&r.collect::<Vec<_>>());
    let whole = rows(0..20);
    let parts = [rows(0..8), rows(8..16), rows(16..20)];
    for on_gpu in [false, true] {
        let mut one = engine(on_gpu, &setup, &init);
        one.step(&Batch::new(whole.features.view(), whole.targets.view()))
            .unwrap();
        let mut grouped = engine(on_gpu, &setup, &init);
        for (i, part) in parts.iter().enumerate() {
            let batch = Batch::new(part.features.view(), part.targets.view());
            grouped
                .accumulate(
                    &batch,
                    Part {
                        group_rows: 20,
                        first: i == 0,
                        last: false,
                    },
                )
                .unwrap();
        }
        assert_eq!(grouped.steps(), 0, "no update before apply_update");
        let last = &parts[2];
        let last_alone = CpuEngine::new(setup.clone(), &init)
            .unwrap()
            .evaluate(&Batch::new(last.features.view(), last.targets.view()))
            .unwrap()[0]
            .loss() as f32;
        assert!(
            Tolerance::default().allows(grouped.last_loss().unwrap(), last_alone),
            "the last mini-batch's loss is known before the update"
        );
        let what = format!("gpu={on_gpu}");
        let gradients = grouped.gradients(0).unwrap();
        assert_close(
            &format!("{what} gradients"),
            &gradients,
            &one.gradients(0).unwrap(),
            Tolerance::default(),
        );
        // Replacing the gradients by themselves (what a reduction over one device does) and
        // applying them is the step.
        grouped.set_gradients(0, &gradients).unwrap();
        grouped.apply_update().unwrap();
        assert_eq!(grouped.steps(), 1);
        assert_close(
            &format!("{what} parameters"),
            &grouped.parameters(0).unwrap(),
            &one.parameters(0).unwrap(),
            Tolerance::default(),
        );
        let refused = grouped.accumulate(
            &Batch::new(whole.features.view(), whole.targets.view()),
            Part {
                group_rows: 8,
                first: true,
                last: true,
            },
        );
        assert!(
            refused
                .unwrap_err()
                .to_string()
                .contains("cannot be part of a group of 8 rows"),
            "{what}"
        );
    }
}

/// The command line: `--batch-size 8 --accumulate 4` saves the model `--batch-size 32` saves (on
/// the built-in digits, 57 steps an epoch either way, the last group partial), counts the
/// mini-batches it feeds and the optimizer steps it takes, and `check --accumulate` finds the
/// GPU equal to the CPU.
#[test]
fn the_command_line_accumulates_on_train_and_check() {
    let dir = tempfile::tempdir().unwrap();
    let run = |extra: &[&str], save: &str| {
        let mut args = vec![
            "train",
            "--dataset",
            "digits",
            "--device",
            "cpu",
            "--epochs",
            "2",
        ];
        args.extend_from_slice(extra);
        args.extend(["--save", save]);
        let out = common::binary::downhill(&args, dir.path());
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
        String::from_utf8_lossy(&out.stderr).into_owned()
    };
    let grouped = run(
        &["--batch-size", "8", "--accumulate", "4"],
        "grouped.safetensors",
    );
    assert!(grouped.contains("(450 batches, steps 1..114)"), "{grouped}");
    let large = run(&["--batch-size", "32"], "large.safetensors");
    assert!(large.contains("(114 batches, steps 1..114)"), "{large}");
    let load = |name: &str| {
        downhill::checkpoint::load_model(&dir.path().join(name))
            .unwrap()
            .parameters
    };
    assert_close(
        "the command line's accumulation",
        &load("grouped.safetensors"),
        &load("large.safetensors"),
        Tolerance::default(),
    );
    let check = common::binary::ok(
        &[
            "check",
            "--dataset",
            "digits",
            "--steps",
            "3",
            "--batch-size",
            "16",
            "--accumulate",
            "3",
        ],
        dir.path(),
    );
    assert!(check.contains("check passed"), "{check}");
}

/// A run with `--accumulate` stopped at a checkpoint and resumed writes the same bytes as the
/// run left alone: the state records where the group of mini-batches starts.
#[test]
fn a_resumed_accumulating_run_is_the_run_left_alone() {
    let dir = tempfile::tempdir().unwrap();
    let base = [
        "train",
        "--dataset",
        "digits",
        "--device",
        "cpu",
        "--epochs",
        "2",
        "--batch-size",
        "16",
        "--accumulate",
        "3",
        "--quiet",
    ];
    let run = |extra: &[&str]| common::binary::ok(&[&base[..], extra].concat(), dir.path());
    run(&["--save", "alone.safetensors"]);
    run(&[
        "--max-steps",
        "50",
        "--checkpoint-every",
        "50",
        "--checkpoint",
        "s.safetensors",
        "--save",
        "first.safetensors",
    ]);
    run(&["--resume", "s.safetensors", "--save", "resumed.safetensors"]);
    let bytes = |name: &str| std::fs::read(dir.path().join(name)).unwrap();
    assert!(
        bytes("alone.safetensors") == bytes("resumed.safetensors"),
        "the resumed run's model differs from the run left alone"
    );
}
