//! Norms and dropout through the rest of a run: packed models equal each trained alone,
//! gradient accumulation (a batch norm's statistics per mini-batch, every mini-batch counted),
//! evaluation that never moves a running statistic, a training batch of one row refused, `check`
//! comparing the running statistics, and a resumed run byte-identical to the run left alone.

mod common;

use std::sync::Arc;

use common::{gpu, random, targets};
use downhill::accumulate::Part;
use downhill::cpu::forward_training;
use downhill::data::Dataset;
use downhill::model::MaskKey;
use downhill::optim::Sgd;
use downhill::train::sweep::{Grid, sweep};
use downhill::train::{Residency, Silent, TrainConfig, TrainData, train};
use downhill::{
    Activation, Batch, CpuEngine, Engine, GpuEngine, Loss, ModelSpec, Norm, Optimizer, PackSetup,
    Parameters, Setup,
};
use ndarray::Axis;

const BATCH: Norm = Norm::Batch {
    eps: 1e-5,
    momentum: 0.1,
};

/// A 5-8-6-3 tanh model with `norm` and dropout 0.2.
fn model(norm: Norm) -> ModelSpec {
    ModelSpec::mlp(
        &[5, 8, 6, 3],
        Activation::Tanh,
        Activation::Identity,
        norm,
        0.2,
    )
    .unwrap()
}

fn data() -> Arc<Dataset> {
    Arc::new(
        Dataset::new(
            "random",
            random(40, 5, 1.0, 3),
            targets(Loss::CrossEntropy, 40, 3, 4),
        )
        .unwrap(),
    )
}

fn setup(norm: Norm) -> Setup {
    Setup {
        model: model(norm),
        loss: Loss::CrossEntropy,
        optimizer: Optimizer::Sgd(Sgd {
            lr: 0.1,
            momentum: 0.9,
            ..Sgd::default()
        }),
    }
}

#[test]
fn packed_models_with_norms_and_dropout_equal_each_model_trained_alone() {
    let ctx = gpu();
    let data = data();
    for (norm, residency) in [
        (Norm::Layer { eps: 1e-5 }, Residency::Resident),
        (BATCH, Residency::Streamed),
        (BATCH, Residency::Resident),
    ] {
        let grid = Grid {
            lr: vec![0.05, 0.2],
            momentum: vec![0.0, 0.9],
            weight_decay: vec![],
            restarts: 1,
            seed: 3,
        };
        let base = setup(norm);
        let members = grid.members(&base.optimizer, &base.model, None).unwrap();
        let pack_setup = PackSetup {
            model: base.model.clone(),
            loss: base.loss,
            members: members.into_iter().map(|(_, m)| m).collect(),
        };
        let config = TrainConfig {
            epochs: 2,
            batch_size: 16,
            seed: 7,
            residency,
            ..TrainConfig::default()
        };
        let train_data = TrainData::Memory(Arc::clone(&data));
        let mut pack = GpuEngine::pack(&ctx, pack_setup.clone(), 16).unwrap();
        sweep(&mut pack, &train_data, None, &config, &mut Silent).unwrap();
        for (k, member) in pack_setup.members.iter().enumerate() {
            let mut alone =
                GpuEngine::new(&ctx, pack_setup.setup(k), &member.parameters, 16).unwrap();
            train(&mut alone, &train_data, None, &config, None, &mut Silent).unwrap();
            let packed = pack.parameters(k).unwrap();
            assert_eq!(packed, alone.parameters(0).unwrap(), "{norm:?} model {k}");
            if matches!(norm, Norm::Batch { .. }) {
                // 40 rows in batches of 16: three training passes an epoch.
                assert_eq!(packed.batches_tracked(), 6);
            }
        }
    }
}

#[test]
fn accumulation_normalises_and_counts_each_mini_batch_on_both_engines() {
    let ctx = gpu();
    let setup = setup(BATCH);
    let init = Parameters::init(&setup.model, 5);
    let x = random(20, 5, 1.0, 6);
    let all = Dataset::new("rows", x.clone(), targets(Loss::CrossEntropy, 20, 3, 7)).unwrap();
    let halves = [0..12, 12..20];
    let parts: Vec<Dataset> = halves
        .iter()
        .map(|rows| all.subset(&rows.clone().collect::<Vec<_>>()))
        .collect();
    let mut engines: Vec<Box<dyn Engine>> = vec![
        Box::new(CpuEngine::new(setup.clone(), &init).unwrap()),
        Box::new(GpuEngine::new(&ctx, setup.clone(), &init, 20).unwrap()),
    ];
    for engine in &mut engines {
        for (i, half) in parts.iter().enumerate() {
            let part = Part {
                group_rows: 20,
                first: i == 0,
                last: i == 1,
            };
            let batch = Batch::new(half.features.view(), half.targets.view());
            engine.accumulate(&batch, part).unwrap();
        }
    }
    // Each mini-batch's statistics moved the running mean, from the starting parameters (one
    // optimizer step happens after both): running = (1 − m)·m·μ₁ + m·μ₂.
    let means: Vec<_> = halves
        .iter()
        .map(|rows| {
            let key = MaskKey {
                seed: 0,
                step: 0,
                rows: None,
            };
            let xs = x.slice(ndarray::s![rows.clone(), ..]).to_owned();
            let acts = forward_training(&setup.model, &init, xs.view(), &key);
            acts.pre[0].mean_axis(Axis(0)).unwrap()
        })
        .collect();
    let expected = (&means[0] * (0.9f32 * 0.1)) + &(&means[1] * 0.1f32);
    for engine in &mut engines {
        let params = engine.parameters(0).unwrap();
        assert_eq!(params.batches_tracked(), 2, "{}", engine.describe());
        let running = &params.tensor("norms.0.running_mean").unwrap().values;
        for (a, b) in running.iter().zip(&expected) {
            assert!((a - b).abs() <= 1e-6, "{}: {a} vs {b}", engine.describe());
        }
    }
}

#[test]
fn evaluation_and_prediction_never_move_a_running_statistic() {
    let ctx = gpu();
    let setup = setup(BATCH);
    let mut init = Parameters::init(&setup.model, 8);
    init.tensor_mut("norms.0.running_var")
        .unwrap()
        .iter_mut()
        .for_each(|v| *v = 2.5);
    init.set_batches_tracked(4);
    let (x, y) = (
        random(12, 5, 1.0, 9),
        targets(Loss::CrossEntropy, 12, 3, 10),
    );
    let mut engines: Vec<Box<dyn Engine>> = vec![
        Box::new(CpuEngine::new(setup.clone(), &init).unwrap()),
        Box::new(GpuEngine::new(&ctx, setup, &init, 12).unwrap()),
    ];
    for engine in &mut engines {
        engine.evaluate(&Batch::new(x.view(), y.view())).unwrap();
        engine.predict(0, x.view()).unwrap();
        // One row is fine in evaluation (running statistics).
        engine.predict(0, x.slice(ndarray::s![0..1, ..])).unwrap();
        assert_eq!(engine.parameters(0).unwrap(), init, "{}", engine.describe());
    }
}

#[test]
fn a_training_batch_of_one_row_is_refused_on_both_engines() {
    let ctx = gpu();
    let setup = setup(BATCH);
    let init = Parameters::init(&setup.model, 1);
    let (x, y) = (random(1, 5, 1.0, 2), targets(Loss::CrossEntropy, 1, 3, 3));
    let mut engines: Vec<Box<dyn Engine>> = vec![
        Box::new(CpuEngine::new(setup.clone(), &init).unwrap()),
        Box::new(GpuEngine::new(&ctx, setup, &init, 4).unwrap()),
    ];
    for engine in &mut engines {
        let message = engine
            .step(&Batch::new(x.view(), y.view()))
            .unwrap_err()
            .to_string();
        assert!(message.contains("at least 2 rows"), "{message}");
        assert_eq!(engine.parameters(0).unwrap(), init);
    }
}

#[test]
fn a_frozen_model_keeps_its_running_statistics_on_both_engines() {
    let ctx = gpu();
    let base = setup(BATCH);
    let init = Parameters::init(&base.model, 2);
    let member = |lr: f64| downhill::Member {
        optimizer: Optimizer::Sgd(Sgd {
            lr,
            ..Sgd::default()
        }),
        parameters: init.clone(),
    };
    let pack = PackSetup {
        model: base.model.clone(),
        loss: base.loss,
        members: vec![member(0.1), member(0.2)],
    };
    let data = data();
    let batch = Batch::new(data.features.view(), data.targets.view());
    let mut engines: Vec<Box<dyn Engine>> = vec![
        Box::new(CpuEngine::pack(&pack).unwrap()),
        Box::new(GpuEngine::pack(&ctx, pack, 40).unwrap()),
    ];
    for engine in &mut engines {
        engine.step(&batch).unwrap();
        let before = engine.parameters(1).unwrap();
        engine.freeze(1).unwrap();
        engine.step(&batch).unwrap();
        assert_eq!(
            engine.parameters(1).unwrap(),
            before,
            "{}",
            engine.describe()
        );
        assert_eq!(engine.parameters(0).unwrap().batches_tracked(), 2);
    }
}

#[test]
fn a_last_batch_of_one_row_is_refused_before_training() {
    let dir = tempfile::tempdir().unwrap();
    let (x, y) = common::cli::npy_files(dir.path());
    // 150 rows in batches of 149: the last has one row.
    let base = [
        "train",
        "--features",
        common::cli::s(&x),
        "--targets",
        common::cli::s(&y),
        "--norm",
        "batch",
        "--batch-size",
        "149",
        "--epochs",
        "1",
    ];
    let out = common::cli::downhill(&base);
    assert!(!out.status.success());
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr.contains("has 1 row")
            && stderr.contains("--drop-last")
            && !stderr.contains("epoch 1"),
        "{stderr}"
    );
    common::cli::ok(&[&base[..], &["--drop-last"]].concat());
}

#[test]
fn check_compares_running_statistics_and_a_resumed_run_is_the_run_left_alone() {
    let dir = tempfile::tempdir().unwrap();
    let model = [
        "--dataset",
        "digits",
        "--layers",
        "64,24,10",
        "--norm",
        "batch",
        "--dropout",
        "0.2",
        "--batch-size",
        "32",
    ];
    let out = common::binary::ok(
        &[&["check"][..], &model, &["--steps", "15"]].concat(),
        dir.path(),
    );
    assert!(
        out.contains("values not compared after updates: layers.0.bias, norms.0.running_mean")
            && out.contains("check passed"),
        "{out}"
    );
    let base = [
        &["train"][..],
        &model,
        &["--epochs", "2", "--quiet", "--device", "gpu"],
    ]
    .concat();
    let run = |extra: &[&str]| common::binary::ok(&[&base[..], extra].concat(), dir.path());
    run(&["--save", "alone.safetensors"]);
    run(&[
        "--max-steps",
        "40",
        "--checkpoint-every",
        "40",
        "--checkpoint",
        "s.safetensors",
    ]);
    run(&["--resume", "s.safetensors", "--save", "resumed.safetensors"]);
    let bytes = |name: &str| std::fs::read(dir.path().join(name)).unwrap();
    assert!(
        bytes("alone.safetensors") == bytes("resumed.safetensors"),
        "the resumed run's model differs from the run left alone"
    );
}
