//! Whole training runs through the library: the scheduler, the trainer, schedules, early
//! stopping, divergence, checkpoints and resume; GPU against CPU.

mod common;

use std::sync::Arc;

use common::{assert_close, gpu};
use downhill::checkpoint::load_state;
use downhill::data::builtin;
use downhill::data::mapped::MappedNpy;
use downhill::data::scheduler::{Order, Stream};
use downhill::data::{Dataset, npy};
use downhill::optim::{Adam, LrSchedule, Schedule, Sgd};
use downhill::train::{CheckpointPlan, Residency, Silent, Stop, TrainConfig, TrainData, train};
use downhill::{
    Activation, CpuEngine, Engine, Error, GpuEngine, Loss, ModelSpec, Optimizer, Parameters, Setup,
    Tolerance,
};

fn blobs() -> Arc<Dataset> {
    Arc::new(builtin::blobs(203, 5, 3, 1))
}

fn setup(optimizer: Optimizer) -> Setup {
    Setup {
        model: ModelSpec::from_widths(&[5, 16, 3], Activation::Tanh, Activation::Identity).unwrap(),
        loss: Loss::CrossEntropy,
        optimizer,
    }
}

fn adam() -> Optimizer {
    Optimizer::Adam(Adam {
        lr: 0.01,
        ..Adam::default()
    })
}

fn config(shuffle: bool, residency: Residency) -> TrainConfig {
    TrainConfig {
        epochs: 3,
        batch_size: 32,
        shuffle,
        seed: 5,
        residency,
        log_every: 2,
        ..TrainConfig::default()
    }
}

fn gpu_engine(s: &Setup, batch: usize) -> GpuEngine {
    GpuEngine::new(&gpu(), s.clone(), &Parameters::init(&s.model, 3), batch).unwrap()
}

#[test]
fn order_is_seeded_per_epoch_and_cut_into_batches() {
    let order = Order::new(10, 4, true, false, 7).unwrap();
    assert_eq!(order.batches_per_epoch(), 3);
    let (e0, e1) = (order.permutation(0), order.permutation(1));
    assert_ne!(e0, e1, "reshuffled every epoch");
    assert_eq!(
        e0,
        Order::new(10, 4, true, false, 7).unwrap().permutation(0),
        "seeded"
    );
    let mut sorted = e0.clone();
    sorted.sort_unstable();
    assert_eq!(sorted, (0..10).collect::<Vec<u32>>());
    assert_eq!(
        order.batch(&e0, 2).len(),
        2,
        "the last partial batch is kept"
    );
    assert_eq!(
        Order::new(10, 4, true, true, 7)
            .unwrap()
            .batches_per_epoch(),
        2
    );
    assert_eq!(
        Order::new(10, 4, false, false, 7).unwrap().permutation(3),
        (0..10).collect::<Vec<u32>>()
    );
    assert!(
        Order::new(10, 0, true, false, 0)
            .unwrap_err()
            .to_string()
            .contains("at least 1")
    );
    assert!(
        Order::new(10, 11, true, true, 0)
            .unwrap_err()
            .to_string()
            .contains("--drop-last would leave no batch")
    );
    // Full batch and single rows are the same code path.
    assert_eq!(
        Order::new(10, 10, true, false, 0)
            .unwrap()
            .batches_per_epoch(),
        1
    );
    assert_eq!(
        Order::new(10, 1, true, false, 0)
            .unwrap()
            .batches_per_epoch(),
        10
    );
}

#[test]
fn the_stream_delivers_the_schedule_in_order_from_any_position() {
    let data = blobs();
    let order = Order::new(data.rows(), 32, true, false, 9).unwrap();
    let mut stream = Stream::start(data.clone(), order, (1, 4), 6, 2);
    let mut seen = Vec::new();
    while let Some(batch) = stream.next_batch() {
        let batch = batch.unwrap();
        let rows: Vec<usize> = order
            .batch(&order.permutation(batch.position.0), batch.position.1)
            .iter()
            .map(|&i| i as usize)
            .collect();
        assert_eq!(
            batch.features,
            data.features.select(ndarray::Axis(0), &rows)
        );
        seen.push(batch.position);
        stream.recycle(batch);
    }
    assert_eq!(seen, [(1, 4), (1, 5), (1, 6), (2, 0), (2, 1), (2, 2)]);
    // Dropping a stream mid-run stops its producer.
    let mut early = Stream::start(data, order, (0, 0), 1000, 2);
    assert!(early.next_batch().is_some());
    drop(early);
}

#[test]
fn gpu_and_cpu_runs_agree_with_shuffling_on_and_off_resident_and_streamed() {
    let s = setup(adam());
    let data = TrainData::Memory(blobs());
    let val = builtin::blobs(40, 5, 3, 2);
    for shuffle in [true, false] {
        let mut cpu = CpuEngine::new(s.clone(), &Parameters::init(&s.model, 3)).unwrap();
        let cpu_report = train(
            &mut cpu,
            &data,
            Some(&val),
            &config(shuffle, Residency::Auto),
            None,
            &mut Silent,
        )
        .unwrap();
        for residency in [Residency::Resident, Residency::Streamed] {
            let mut g = gpu_engine(&s, 32);
            let report = train(
                &mut g,
                &data,
                Some(&val),
                &config(shuffle, residency),
                None,
                &mut Silent,
            )
            .unwrap();
            assert_eq!(report.resident, residency == Residency::Resident);
            assert_eq!(
                (report.stop, report.steps, report.epochs().len()),
                (Stop::Completed, 21, 3)
            );
            let what = format!("shuffle={shuffle} {residency:?}");
            assert_close(
                &what,
                &g.parameters(0).unwrap(),
                &cpu.parameters(0).unwrap(),
                Tolerance::default(),
            );
            for (a, b) in report.epochs().iter().zip(cpu_report.epochs()) {
                assert!(
                    (a.train_loss - b.train_loss).abs() < 1e-4 * b.train_loss.abs() + 1e-5,
                    "{what}: {a:?} vs {b:?}"
                );
                assert_eq!(a.train_accuracy, b.train_accuracy, "{what}");
                assert!(
                    (a.val_loss.unwrap() - b.val_loss.unwrap()).abs() < 1e-4,
                    "{what}"
                );
            }
        }
    }
}

#[test]
fn memory_mapped_features_stream_to_the_same_result() {
    let dir = tempfile::tempdir().unwrap();
    let data = blobs();
    let path = dir.path().join("x.npy");
    npy::write(&path, &data.features).unwrap();
    let mapped = TrainData::Mapped(Arc::new(
        MappedNpy::open(&path, data.targets.clone()).unwrap(),
    ));
    let s = setup(adam());
    let mut a = gpu_engine(&s, 32);
    let mut b = gpu_engine(&s, 32);
    train(
        &mut a,
        &mapped,
        None,
        &config(true, Residency::Auto),
        None,
        &mut Silent,
    )
    .unwrap();
    train(
        &mut b,
        &TrainData::Memory(data),
        None,
        &config(true, Residency::Resident),
        None,
        &mut Silent,
    )
    .unwrap();
    assert_eq!(
        a.parameters(0).unwrap(),
        b.parameters(0).unwrap(),
        "mapped, streamed = in memory, resident, bit for bit"
    );
}

#[test]
fn resuming_from_a_checkpoint_is_bit_identical_to_an_uninterrupted_run() {
    let dir = tempfile::tempdir().unwrap();
    let s = setup(Optimizer::Sgd(Sgd {
        lr: 0.1,
        momentum: 0.9,
        nesterov: true,
        ..Sgd::default()
    }));
    let data = TrainData::Memory(blobs());
    let val = builtin::blobs(40, 5, 3, 2);
    for residency in [Residency::Resident, Residency::Streamed] {
        let state = dir.path().join("state.safetensors");
        let full_config = TrainConfig {
            epochs: 4,
            schedule: LrSchedule {
                schedule: Schedule::Cosine { min_lr: 0.001 },
                warmup_steps: 3,
            },
            early_stopping: Some(10),
            clip_norm: Some(1.0),
            ..config(true, residency)
        };
        let mut whole = gpu_engine(&s, 32);
        train(
            &mut whole,
            &data,
            Some(&val),
            &full_config,
            None,
            &mut Silent,
        )
        .unwrap();

        // The same run, checkpointed every 10 steps and stopped after 10 (mid-epoch 2)...
        struct StopAt(u64, std::cell::Cell<u64>);
        impl downhill::train::Observer for StopAt {
            fn progress(&mut self, p: &downhill::train::Progress) {
                self.1.set(p.step);
            }
            fn interrupted(&self) -> bool {
                self.1.get() >= self.0
            }
        }
        let checkpointed = TrainConfig {
            log_every: 1,
            checkpoint: Some(CheckpointPlan {
                path: state.clone(),
                every_steps: 10,
                writes: true,
                standardizer: None,
                target_standardizer: None,
                run_flags: None,
            }),
            ..full_config.clone()
        };
        let mut first = gpu_engine(&s, 32);
        let report = train(
            &mut first,
            &data,
            Some(&val),
            &checkpointed,
            None,
            &mut StopAt(10, Default::default()),
        )
        .unwrap();
        assert_eq!((report.stop, report.steps), (Stop::Interrupted, 10));
        // ...then resumed in a fresh engine from the file.
        let saved = load_state(&state).unwrap();
        assert_eq!((saved.position, saved.state.steps), ((1, 3), 10));
        let mut second =
            GpuEngine::new(&gpu(), s.clone(), &Parameters::zeros(&s.model), 32).unwrap();
        let report = train(
            &mut second,
            &data,
            Some(&val),
            &full_config,
            Some(&saved),
            &mut Silent,
        )
        .unwrap();
        assert_eq!(report.steps, 28);
        assert_eq!(
            second.parameters(0).unwrap(),
            whole.parameters(0).unwrap(),
            "{residency:?}"
        );
    }
}

#[test]
fn early_stopping_keeps_the_best_parameters() {
    // Validation on mislabelled data gets worse as training fits the training set.
    let s = setup(Optimizer::Adam(Adam {
        lr: 0.05,
        ..Adam::default()
    }));
    let data = TrainData::Memory(blobs());
    let mut val = builtin::blobs(60, 5, 3, 1);
    if let downhill::Targets::Classes(c) = &mut val.targets {
        c.iter_mut().for_each(|k| *k = (*k + 1) % 3);
    }
    let mut engine = CpuEngine::new(s.clone(), &Parameters::init(&s.model, 3)).unwrap();
    let cfg = TrainConfig {
        epochs: 50,
        early_stopping: Some(2),
        ..config(true, Residency::Auto)
    };
    let report = train(&mut engine, &data, Some(&val), &cfg, None, &mut Silent).unwrap();
    assert_eq!(report.stop, Stop::EarlyStopping);
    let best = report
        .epochs()
        .iter()
        .map(|r| r.val_loss.unwrap())
        .fold(f64::INFINITY, f64::min);
    let now = engine
        .evaluate(&downhill::Batch::new(
            val.features.view(),
            val.targets.view(),
        ))
        .unwrap()[0];
    assert!(
        (now.loss() - best).abs() < 1e-6,
        "restored loss {} vs best {best}",
        now.loss()
    );
    assert!(report.epochs().len() < 50);
}

#[test]
fn a_diverging_run_stops_with_the_step_and_a_suggestion() {
    let s = Setup {
        model: ModelSpec::from_widths(&[5, 16, 3], Activation::Relu, Activation::Identity).unwrap(),
        loss: Loss::Mse,
        optimizer: Optimizer::Sgd(Sgd {
            lr: 1e6,
            ..Sgd::default()
        }),
    };
    let data = Dataset::new(
        "d",
        builtin::blobs(64, 5, 3, 1).features,
        downhill::Targets::Dense(ndarray::Array2::from_elem((64, 3), 100.0)),
    )
    .unwrap();
    let mut g = gpu_engine(&s, 16);
    let dir = tempfile::tempdir().unwrap();
    let state = dir.path().join("state.safetensors");
    let cfg = TrainConfig {
        epochs: 20,
        batch_size: 16,
        checkpoint: Some(CheckpointPlan {
            path: state.clone(),
            every_steps: 1,
            writes: true,
            standardizer: None,
            target_standardizer: None,
            run_flags: None,
        }),
        ..config(true, Residency::Auto)
    };
    let err = train(
        &mut g,
        &TrainData::Memory(Arc::new(data)),
        None,
        &cfg,
        None,
        &mut Silent,
    )
    .unwrap_err();
    assert!(matches!(err, Error::Diverged { .. }), "{err}");
    // The checkpoint on disk is the last good one.
    let saved = load_state(&state).unwrap();
    let finite = |p: &Parameters| {
        p.named_tensors()
            .iter()
            .all(|t| t.values.iter().all(|v| v.is_finite()))
    };
    assert!(
        finite(&saved.checkpoint.parameters),
        "a diverged model was checkpointed"
    );
    assert!(saved.state.steps >= 1);
    let text = err.to_string();
    assert!(
        text.contains("training diverged")
            && text.contains("lower the learning rate (e.g. --lr 100000)"),
        "{text}"
    );
}

#[test]
fn schedules_follow_their_equations() {
    let constant = LrSchedule::default();
    assert_eq!(constant.lr(0.1, 57, 10, 100), 0.1);
    let step = LrSchedule {
        schedule: Schedule::Step {
            every: 2,
            gamma: 0.5,
        },
        warmup_steps: 0,
    };
    assert_eq!(
        [0, 19, 20, 39, 40].map(|t| step.lr(1.0, t, 10, 100)),
        [1.0, 1.0, 0.5, 0.5, 0.25]
    );
    let exp = LrSchedule {
        schedule: Schedule::Exponential { gamma: 0.9 },
        warmup_steps: 0,
    };
    assert!((exp.lr(1.0, 25, 10, 100) - 0.81).abs() < 1e-12);
    let cosine = LrSchedule {
        schedule: Schedule::Cosine { min_lr: 0.0 },
        warmup_steps: 0,
    };
    assert_eq!(cosine.lr(1.0, 0, 10, 100), 1.0);
    assert!((cosine.lr(1.0, 50, 10, 100) - 0.5).abs() < 1e-12);
    let warm = LrSchedule {
        schedule: Schedule::Constant,
        warmup_steps: 4,
    };
    assert_eq!(
        [0, 1, 3, 4].map(|t| warm.lr(1.0, t, 10, 100)),
        [0.25, 0.5, 1.0, 1.0]
    );
    assert_eq!(
        "step:3:0.5".parse::<Schedule>().unwrap(),
        Schedule::Step {
            every: 3,
            gamma: 0.5
        }
    );
    assert!(
        "linear"
            .parse::<Schedule>()
            .unwrap_err()
            .to_string()
            .contains("unknown schedule `linear`")
    );
}

#[test]
fn a_training_state_resumes_only_with_the_optimizer_that_saved_it() {
    let dir = tempfile::tempdir().unwrap();
    let state = dir.path().join("state.safetensors");
    let data = TrainData::Memory(blobs());
    let adam = setup(adam());
    let cfg = TrainConfig {
        epochs: 1,
        checkpoint: Some(CheckpointPlan {
            path: state.clone(),
            every_steps: 3,
            writes: true,
            standardizer: None,
            target_standardizer: None,
            run_flags: None,
        }),
        ..config(true, Residency::Auto)
    };
    let mut engine = CpuEngine::new(adam.clone(), &Parameters::init(&adam.model, 3)).unwrap();
    train(&mut engine, &data, None, &cfg, None, &mut Silent).unwrap();
    let saved = load_state(&state).unwrap();
    // AdamW keeps the same state slots as Adam, so only the optimizer's name tells them apart.
    let adamw = setup(Optimizer::AdamW(downhill::optim::AdamW::default()));
    let mut other = CpuEngine::new(adamw.clone(), &Parameters::init(&adamw.model, 3)).unwrap();
    let err = train(
        &mut other,
        &data,
        None,
        &config(true, Residency::Auto),
        Some(&saved),
        &mut Silent,
    )
    .unwrap_err();
    assert!(
        err.to_string()
            .contains("saved by Adam, but this run uses AdamW"),
        "{err}"
    );
}
