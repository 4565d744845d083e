//! What the trainer needs from an engine, GPU against CPU: learning-rate changes, clipping by
//! global norm, accumulated metrics, evaluation, optimizer state for resume, and batches
//! gathered from a dataset resident on the device.

mod common;

use std::sync::Arc;

use common::{assert_close, gpu, random, targets};
use downhill::data::Dataset;
use downhill::gpu::{MatmulTile, Tuning};
use downhill::optim::{Adagrad, Adam, RmsProp, Sgd};
use downhill::{
    Activation, Batch, CpuEngine, Engine, GpuEngine, Loss, ModelSpec, Optimizer, Parameters, Setup,
    Targets, Tolerance,
};

fn setup(loss: Loss, optimizer: Optimizer) -> Setup {
    Setup {
        model: ModelSpec::from_widths(&[6, 12, 4], Activation::Tanh, Activation::Identity).unwrap(),
        loss,
        optimizer,
    }
}

fn dataset(loss: Loss, rows: usize, seed: u64) -> Dataset {
    Dataset::new(
        "test",
        random(rows, 6, 1.0, seed),
        targets(loss, rows, 4, seed + 1),
    )
    .unwrap()
}

fn pair(setup: &Setup, max_batch: usize) -> (GpuEngine, CpuEngine) {
    let init = Parameters::init(&setup.model, 9);
    (
        GpuEngine::new(&gpu(), setup.clone(), &init, max_batch).unwrap(),
        CpuEngine::new(setup.clone(), &init).unwrap(),
    )
}

fn batch(data: &Dataset) -> Batch<'_> {
    Batch::new(data.features.view(), data.targets.view())
}

#[test]
fn learning_rate_changes_apply_to_the_next_step() {
    let s = setup(Loss::CrossEntropy, Optimizer::Adam(Adam::default()));
    let (mut g, mut c) = pair(&s, 16);
    let data = dataset(Loss::CrossEntropy, 16, 1);
    for step in 0..10 {
        let lr = 0.05 / (1.0 + step as f64);
        for e in [&mut g as &mut dyn Engine, &mut c] {
            e.set_learning_rate(lr).unwrap();
            assert_eq!(e.learning_rate(), lr);
            e.step(&batch(&data)).unwrap();
        }
    }
    assert_close(
        "scheduled lr",
        &g.parameters(0).unwrap(),
        &c.parameters(0).unwrap(),
        Tolerance::default(),
    );
    assert!(
        g.set_learning_rate(-1.0)
            .unwrap_err()
            .to_string()
            .contains("lr = -1")
    );
}

#[test]
fn clipping_by_global_norm_matches_and_bites() {
    let s = setup(
        Loss::Mse,
        Optimizer::Sgd(Sgd {
            lr: 0.5,
            momentum: 0.9,
            ..Sgd::default()
        }),
    );
    let data = dataset(Loss::Mse, 16, 2);
    let (mut g, mut c) = pair(&s, 16);
    let (mut unclipped, _) = pair(&s, 16);
    for e in [&mut g as &mut dyn Engine, &mut c] {
        e.set_clip_norm(Some(0.05)).unwrap();
        for _ in 0..8 {
            e.step(&batch(&data)).unwrap();
        }
    }
    for _ in 0..8 {
        unclipped.step(&batch(&data)).unwrap();
    }
    let clipped = g.parameters(0).unwrap();
    assert_close(
        "clipped",
        &clipped,
        &c.parameters(0).unwrap(),
        Tolerance::default(),
    );
    let moved = downhill::worst_difference(
        &clipped,
        &unclipped.parameters(0).unwrap(),
        Tolerance::default(),
    );
    assert!(moved.ratio > 100.0, "clipping changed nothing: {moved:?}");
    // Turning it off restores plain steps.
    g.set_clip_norm(None).unwrap();
    c.set_clip_norm(None).unwrap();
    g.step(&batch(&data)).unwrap();
    c.step(&batch(&data)).unwrap();
    assert_close(
        "unclipped again",
        &g.parameters(0).unwrap(),
        &c.parameters(0).unwrap(),
        Tolerance::default(),
    );
    assert!(
        g.set_clip_norm(Some(0.0))
            .unwrap_err()
            .to_string()
            .contains("must be a positive number")
    );
}

#[test]
fn metrics_accumulate_over_steps_and_reset() {
    for loss in [Loss::CrossEntropy, Loss::BceWithLogits, Loss::Mse] {
        let s = setup(
            loss,
            Optimizer::Sgd(Sgd {
                lr: 0.1,
                ..Sgd::default()
            }),
        );
        let (mut g, mut c) = pair(&s, 32);
        let data = dataset(loss, 77, 3);
        for start in [0, 32, 64] {
            let rows: Vec<usize> = (start..(start + 32).min(77)).collect();
            let part = data.subset(&rows);
            g.step(&batch(&part)).unwrap();
            c.step(&batch(&part)).unwrap();
        }
        let (gm, cm) = (g.take_metrics().unwrap()[0], c.take_metrics().unwrap()[0]);
        assert_eq!(gm.rows, 77);
        assert_eq!(gm.correct, cm.correct, "{}", loss.name());
        assert!(
            Tolerance::default().allows(gm.loss_sum, cm.loss_sum),
            "{}: {gm:?} vs {cm:?}",
            loss.name()
        );
        assert_eq!(gm.accuracy(loss).is_some(), loss != Loss::Mse);
        assert_eq!(g.take_metrics().unwrap()[0].rows, 0, "taking resets");
    }
}

#[test]
fn a_non_finite_update_is_flagged_at_the_next_read_back() {
    let far = |loss| {
        let d = dataset(loss, 16, 4);
        let rows = d.rows();
        Dataset::new(
            "far",
            d.features,
            Targets::Dense(ndarray::Array2::from_elem((rows, 4), 100.0)),
        )
        .unwrap()
    };
    // SGD: the loss of the step is finite, and its update overflows; the flag the update writes is
    // the only sign of it until the next forward pass.
    let sgd = setup(
        Loss::Mse,
        Optimizer::Sgd(Sgd {
            lr: 1e38,
            ..Sgd::default()
        }),
    );
    let (mut g, mut c) = pair(&sgd, 16);
    for e in [&mut g as &mut dyn Engine, &mut c] {
        e.step(&batch(&far(Loss::Mse))).unwrap();
        let m = e.take_metrics().unwrap()[0];
        assert!(
            m.loss().is_finite() && m.nonfinite,
            "{}: {m:?}",
            e.describe()
        );
        assert!(
            !e.take_metrics().unwrap()[0].nonfinite,
            "taking resets the flag"
        );
    }
    // Every other optimizer's kernel raises it too.
    let optimizers = [
        Optimizer::Adam(Adam {
            lr: 3e38,
            ..Adam::default()
        }),
        Optimizer::RmsProp(RmsProp {
            lr: 3e38,
            ..RmsProp::default()
        }),
        Optimizer::Adagrad(Adagrad {
            lr: 3e38,
            ..Adagrad::default()
        }),
    ];
    for optimizer in optimizers {
        let (mut g, mut c) = pair(&setup(Loss::Mse, optimizer), 16);
        for e in [&mut g as &mut dyn Engine, &mut c] {
            for _ in 0..3 {
                e.step(&batch(&far(Loss::Mse))).unwrap();
            }
            assert!(e.take_metrics().unwrap()[0].nonfinite, "{}", e.describe());
        }
    }
    // Healthy steps raise no flag.
    let (mut g, mut c) = pair(&setup(Loss::Mse, Optimizer::Adam(Adam::default())), 16);
    for e in [&mut g as &mut dyn Engine, &mut c] {
        e.step(&batch(&far(Loss::Mse))).unwrap();
        assert!(!e.take_metrics().unwrap()[0].nonfinite);
    }
}

#[test]
fn evaluation_in_chunks_matches_and_does_not_train() {
    let s = setup(Loss::CrossEntropy, Optimizer::Adam(Adam::default()));
    let (mut g, mut c) = pair(&s, 8);
    let data = dataset(Loss::CrossEntropy, 45, 4);
    let (ge, ce) = (
        g.evaluate(&batch(&data)).unwrap()[0],
        c.evaluate(&batch(&data)).unwrap()[0],
    );
    assert_eq!((ge.rows, ge.correct), (45, ce.correct));
    assert!(
        Tolerance::default().allows(ge.loss_sum, ce.loss_sum),
        "{ge:?} vs {ce:?}"
    );
    assert_eq!(g.steps(), 0);
    assert_eq!(
        g.take_metrics().unwrap()[0].rows,
        0,
        "evaluation is not training"
    );
    // Accuracy counts agree with predictions.
    let predicted = g.predict(0, data.features.view()).unwrap();
    let Targets::Classes(classes) = &data.targets else {
        unreachable!()
    };
    let right = predicted
        .rows()
        .into_iter()
        .zip(classes)
        .filter(|(row, k)| (0..4).all(|j| row[j] <= row[**k as usize]))
        .count();
    assert_eq!(ge.correct, right as u64);
}

#[test]
fn optimizer_state_moves_between_engines_and_resumes_bit_identically() {
    let s = setup(
        Loss::CrossEntropy,
        Optimizer::RmsProp(RmsProp {
            momentum: 0.9,
            centered: true,
            ..RmsProp::default()
        }),
    );
    let data = dataset(Loss::CrossEntropy, 16, 5);
    let (mut g, mut c) = pair(&s, 16);
    for _ in 0..5 {
        g.step(&batch(&data)).unwrap();
    }
    let state = g.optimizer_state(0).unwrap();
    assert_eq!(state.steps, 5);
    let names: Vec<_> = state.slots.iter().map(|(n, _)| n.as_str()).collect();
    assert_eq!(names, ["square_avg", "momentum_buffer", "grad_avg"]);
    // A fresh GPU engine and the CPU engine continue from the saved state.
    let params = g.parameters(0).unwrap();
    let mut resumed = GpuEngine::new(&gpu(), s.clone(), &params, 16).unwrap();
    resumed.set_optimizer_state(0, &state).unwrap();
    c.set_parameters(0, &params).unwrap();
    c.set_optimizer_state(0, &state).unwrap();
    for _ in 0..5 {
        for e in [&mut g as &mut dyn Engine, &mut resumed, &mut c] {
            e.step(&batch(&data)).unwrap();
        }
    }
    assert_eq!(
        g.parameters(0).unwrap(),
        resumed.parameters(0).unwrap(),
        "resume is bit-identical"
    );
    assert_close(
        "cpu resumed",
        &c.parameters(0).unwrap(),
        &g.parameters(0).unwrap(),
        Tolerance::default(),
    );
    let mut wrong = state.clone();
    wrong.slots.pop();
    assert!(
        c.set_optimizer_state(0, &wrong)
            .unwrap_err()
            .to_string()
            .contains("keeps [\"square_avg\"")
    );
}

#[test]
fn resident_batches_equal_streamed_batches() {
    for loss in [Loss::CrossEntropy, Loss::Mse] {
        let s = setup(loss, Optimizer::Adam(Adam::default()));
        let data = Arc::new(dataset(loss, 50, 6));
        let (mut resident, mut cpu) = pair(&s, 20);
        let (mut streamed, _) = pair(&s, 20);
        resident.load_resident(Arc::clone(&data)).unwrap();
        cpu.load_resident(Arc::clone(&data)).unwrap();
        let orders: [&[u32]; 3] = [&[3, 17, 49, 0, 5], &[10; 20], &[49, 48, 47]];
        for indices in orders {
            resident.step_resident(indices).unwrap();
            cpu.step_resident(indices).unwrap();
            let rows: Vec<usize> = indices.iter().map(|&i| i as usize).collect();
            let part = data.subset(&rows);
            streamed.step(&batch(&part)).unwrap();
        }
        assert_eq!(
            resident.parameters(0).unwrap(),
            streamed.parameters(0).unwrap(),
            "{}",
            loss.name()
        );
        assert_close(
            loss.name(),
            &resident.parameters(0).unwrap(),
            &cpu.parameters(0).unwrap(),
            Tolerance::default(),
        );
        let text = resident.step_resident(&[50]).unwrap_err().to_string();
        assert!(
            text.contains("row index 50 is beyond the dataset's 50 rows"),
            "{text}"
        );
    }
}

/// A model larger than one storage binding (1 MiB here: 1.4 MiB of parameters, each tensor
/// under the limit) is updated a binding's worth at a time: the same bits as in one piece on a
/// device with larger bindings.
#[test]
fn a_model_larger_than_a_binding_is_updated_in_chunks() {
    let small_bindings = downhill::GpuContext::new(&downhill::AdapterRequest {
        limits: Some(downhill::wgpu::Limits {
            max_storage_buffer_binding_size: 1 << 20,
            ..Default::default()
        }),
        ..Default::default()
    })
    .unwrap();
    let setup = Setup {
        model: ModelSpec::from_widths(&[512, 400, 400, 3], Activation::Tanh, Activation::Identity)
            .unwrap(),
        loss: Loss::CrossEntropy,
        optimizer: Optimizer::Adam(Adam::default()),
    };
    let init = Parameters::init(&setup.model, 4);
    let mut chunked = GpuEngine::new(&small_bindings, setup.clone(), &init, 4).unwrap();
    let mut whole = GpuEngine::new(&gpu(), setup, &init, 4).unwrap();
    assert_eq!(
        chunked.dispatches_per_step(),
        3 + 2 + 8 + 2,
        "3 forward, 2 loss, 8 backward, and the update in two chunks"
    );
    assert_eq!(whole.dispatches_per_step(), 3 + 2 + 8 + 1);
    let data = Dataset::new(
        "wide",
        random(4, 512, 1.0, 5),
        targets(Loss::CrossEntropy, 4, 3, 6),
    )
    .unwrap();
    for _ in 0..3 {
        chunked.step(&batch(&data)).unwrap();
        whole.step(&batch(&data)).unwrap();
    }
    assert_eq!(chunked.parameters(0).unwrap(), whole.parameters(0).unwrap());
    assert_eq!(
        chunked.optimizer_state(0).unwrap(),
        whole.optimizer_state(0).unwrap()
    );
}

/// Layers whose weights exceed the storage binding limit are split into blocks of rows: the
/// forward pass and the weight gradients per block, the input gradient summed over the blocks.
/// Gradients and parameters over three steps, with clipping by global norm (computed in chunks
/// of the gradients), match the CPU reference (and the unsplit engine).
#[test]
fn layers_larger_than_a_binding_are_split_and_match_the_cpu() {
    let small_bindings = |tuning| {
        downhill::GpuContext::new(&downhill::AdapterRequest {
            limits: Some(downhill::wgpu::Limits {
                max_storage_buffer_binding_size: 256 << 10,
                ..Default::default()
            }),
            tuning,
            ..Default::default()
        })
        .unwrap()
    };
    // The blocks through the fixed tiles, and through a shuffle tile (where the adapter has
    // subgroups) reading and storing vec4s at the blocks' offsets.
    let shuffled = small_bindings(Tuning::Pinned(MatmulTile::Shuffle {
        row_groups: 1,
        width: 8,
    }));
    let small_bindings = small_bindings(Tuning::Fixed);
    // 500×300 and 400×500 weights: 150,000 and 200,000 floats, against 65,536 per binding.
    let setup = Setup {
        model: ModelSpec::from_widths(&[300, 500, 400, 5], Activation::Tanh, Activation::Identity)
            .unwrap(),
        loss: Loss::CrossEntropy,
        optimizer: Optimizer::Adam(Adam::default()),
    };
    let init = Parameters::init(&setup.model, 7);
    let mut split = GpuEngine::new(&small_bindings, setup.clone(), &init, 16).unwrap();
    let mut split_shuffled = GpuEngine::new(&shuffled, setup.clone(), &init, 16).unwrap();
    let mut whole = GpuEngine::new(&gpu(), setup.clone(), &init, 16).unwrap();
    let mut cpu = CpuEngine::new(setup, &init).unwrap();
    // Clipping that bites, over gradients that span several bindings: summed in chunks.
    for engine in [
        &mut split as &mut dyn Engine,
        &mut split_shuffled,
        &mut whole,
        &mut cpu,
    ] {
        engine.set_clip_norm(Some(0.05)).unwrap();
    }
    assert!(
        split.dispatches_per_step() >= whole.dispatches_per_step() + 8 + 5,
        "blocks of rows: {} launches against {}",
        split.dispatches_per_step(),
        whole.dispatches_per_step()
    );
    let data = Dataset::new(
        "wide",
        random(16, 300, 1.0, 8),
        targets(Loss::CrossEntropy, 16, 5, 9),
    )
    .unwrap();
    for step in 0..3 {
        for engine in [
            &mut split as &mut dyn Engine,
            &mut split_shuffled,
            &mut whole,
            &mut cpu,
        ] {
            engine.step(&batch(&data)).unwrap();
        }
        let want = cpu.gradients(0).unwrap();
        for (what, got) in [
            ("split", &mut split),
            ("split, shuffle tile", &mut split_shuffled),
            ("whole", &mut whole),
        ] {
            assert_close(
                &format!("step {step}: {what} gradients"),
                &got.gradients(0).unwrap(),
                &want,
                Tolerance::default(),
            );
        }
    }
    for (what, got) in [
        ("split", &mut split),
        ("split, shuffle tile", &mut split_shuffled),
    ] {
        assert_close(
            &format!("{what}: parameters after 3 steps"),
            &got.parameters(0).unwrap(),
            &cpu.parameters(0).unwrap(),
            Tolerance::default(),
        );
    }
}
