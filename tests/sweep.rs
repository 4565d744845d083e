//! Packs and sweeps: K models trained side by side equal the same models trained alone, for
//! every optimizer, on the GPU (bit for bit: the same kernels do the same arithmetic per model)
//! and on the CPU; a model that diverges is frozen while the others go on, and the best of the
//! rest is picked.

mod common;

use std::sync::Arc;

use common::{gpu, random, targets};
use downhill::data::Dataset;
use downhill::optim::{Adadelta, Adagrad, Adam, AdamW, LrSchedule, RmsProp, Schedule, Sgd};
use downhill::train::sweep::{Grid, sweep};
use downhill::train::{Residency, Silent, TrainConfig, TrainData, train};
use downhill::{
    Activation, CpuEngine, Engine, GpuContext, GpuEngine, Loss, ModelSpec, Optimizer, PackSetup,
    Parameters, Setup, Tolerance,
};

fn model() -> ModelSpec {
    ModelSpec::from_widths(&[5, 8, 3], Activation::Tanh, Activation::Identity).unwrap()
}

/// 40 rows of 5 features and 3 classes: batches of 16, 16 and 8 rows.
fn data(seed: u64) -> Arc<Dataset> {
    Arc::new(
        Dataset::new(
            "random",
            random(40, 5, 1.0, seed),
            targets(Loss::CrossEntropy, 40, 3, seed + 1),
        )
        .unwrap(),
    )
}

/// Two epochs with a decaying schedule (so each model's own rate is scaled) and clipping.
fn config(residency: Residency) -> TrainConfig {
    TrainConfig {
        epochs: 2,
        batch_size: 16,
        seed: 7,
        schedule: LrSchedule {
            schedule: Schedule::Exponential { gamma: 0.5 },
            warmup_steps: 2,
        },
        clip_norm: Some(5.0),
        log_every: 2,
        residency,
        checkpoint: None,
        ..TrainConfig::default()
    }
}

/// For every optimizer: a grid over learning rate, and momentum or weight decay, with two
/// restarts each.
fn grids() -> Vec<(Optimizer, Grid)> {
    let grid = |lr: &[f64], momentum: &[f64], weight_decay: &[f64]| Grid {
        lr: lr.to_vec(),
        momentum: momentum.to_vec(),
        weight_decay: weight_decay.to_vec(),
        restarts: 2,
        seed: 3,
    };
    vec![
        (
            Optimizer::Sgd(Sgd::default()),
            grid(&[0.05, 0.2], &[0.0, 0.9], &[]),
        ),
        (
            Optimizer::Adam(Adam {
                amsgrad: true,
                ..Adam::default()
            }),
            grid(&[1e-3, 1e-2], &[], &[0.0, 0.1]),
        ),
        (
            Optimizer::AdamW(AdamW::default()),
            grid(&[1e-3, 1e-2], &[], &[0.01, 0.1]),
        ),
        (
            Optimizer::RmsProp(RmsProp {
                centered: true,
                ..RmsProp::default()
            }),
            grid(&[1e-3, 1e-2], &[0.0, 0.5], &[]),
        ),
        (
            Optimizer::Adagrad(Adagrad {
                initial_accumulator_value: 0.1,
                ..Adagrad::default()
            }),
            grid(&[0.01, 0.1], &[], &[0.0, 0.01]),
        ),
        (
            Optimizer::Adadelta(Adadelta::default()),
            grid(&[0.5, 1.0], &[], &[0.0, 0.01]),
        ),
    ]
}

fn pack_setup(optimizer: &Optimizer, grid: &Grid) -> PackSetup {
    let members = grid.members(optimizer, &model(), None).unwrap();
    PackSetup {
        model: model(),
        loss: Loss::CrossEntropy,
        members: members.into_iter().map(|(_, m)| m).collect(),
    }
}

/// Model `k` of `setup` trained alone by `train` on `engine`.
fn alone(mut engine: Box<dyn Engine>, data: &Arc<Dataset>, config: &TrainConfig) -> Parameters {
    train(
        engine.as_mut(),
        &TrainData::Memory(Arc::clone(data)),
        None,
        config,
        None,
        &mut Silent,
    )
    .unwrap();
    engine.parameters(0).unwrap()
}

fn gpu_engine(ctx: &GpuContext, setup: Setup, init: &Parameters) -> Box<dyn Engine> {
    Box::new(GpuEngine::new(ctx, setup, init, 16).unwrap())
}

#[test]
fn packed_gpu_models_equal_each_model_trained_alone_for_every_optimizer() {
    let ctx = gpu();
    let data = data(1);
    for (residency, (optimizer, grid)) in [Residency::Resident, Residency::Streamed]
        .into_iter()
        .cycle()
        .zip(grids())
    {
        let setup = pack_setup(&optimizer, &grid);
        let config = config(residency);
        let mut pack = GpuEngine::pack(&ctx, setup.clone(), 16).unwrap();
        let report = sweep(
            &mut pack,
            &TrainData::Memory(Arc::clone(&data)),
            None,
            &config,
            &mut Silent,
        )
        .unwrap();
        assert_eq!(report.resident, residency == Residency::Resident);
        assert_eq!(report.steps, 6);
        for (k, member) in setup.members.iter().enumerate() {
            let name = format!("{} model {k} ({:?})", optimizer.name(), member.optimizer);
            assert!(report.models[k].diverged.is_none(), "{name}");
            let single = alone(
                gpu_engine(&ctx, setup.setup(k), &member.parameters),
                &data,
                &config,
            );
            assert_eq!(pack.parameters(k).unwrap(), single, "{name}");
            // And the reference: the same model alone on the CPU, within the GPU tolerance.
            let cpu = alone(
                Box::new(CpuEngine::new(setup.setup(k), &member.parameters).unwrap()),
                &data,
                &config,
            );
            common::assert_close(&name, &single, &cpu, Tolerance::default());
        }
    }
}

#[test]
fn packed_cpu_models_equal_each_model_trained_alone_for_every_optimizer() {
    let data = data(2);
    let config = config(Residency::Auto);
    for (optimizer, grid) in grids() {
        let setup = pack_setup(&optimizer, &grid);
        let mut pack = CpuEngine::pack(&setup).unwrap();
        sweep(
            &mut pack,
            &TrainData::Memory(Arc::clone(&data)),
            None,
            &config,
            &mut Silent,
        )
        .unwrap();
        for (k, member) in setup.members.iter().enumerate() {
            let single = alone(
                Box::new(CpuEngine::new(setup.setup(k), &member.parameters).unwrap()),
                &data,
                &config,
            );
            assert_eq!(
                pack.parameters(k).unwrap(),
                single,
                "{} model {k}",
                optimizer.name()
            );
        }
    }
}

/// A linear network (5-8-3, no nonlinearity) regressing with mse, by SGD at learning rates 0.05,
/// 1e4 (whose oscillation overflows f32 within a few steps) and 0.005: the sweep finishes,
/// reports the second diverged and frozen, and picks the best of the others, whose parameters
/// equal their runs alone.
#[test]
fn a_diverging_learning_rate_is_frozen_and_the_best_of_the_rest_is_picked() {
    let ctx = gpu();
    let data = Arc::new(
        Dataset::new(
            "random",
            random(40, 5, 1.0, 3),
            targets(Loss::Mse, 40, 3, 4),
        )
        .unwrap(),
    );
    let val = data.subset(&(0..16).collect::<Vec<_>>());
    let grid = Grid {
        lr: vec![0.05, 1e4, 0.005],
        momentum: vec![],
        weight_decay: vec![],
        restarts: 1,
        seed: 0,
    };
    let model =
        ModelSpec::from_widths(&[5, 8, 3], Activation::Identity, Activation::Identity).unwrap();
    let optimizer = Optimizer::Sgd(Sgd::default());
    let setup = PackSetup {
        model: model.clone(),
        loss: Loss::Mse,
        members: grid
            .members(&optimizer, &model, None)
            .unwrap()
            .into_iter()
            .map(|(_, m)| m)
            .collect(),
    };
    let config = TrainConfig {
        epochs: 4,
        batch_size: 16,
        log_every: 1,
        clip_norm: None,
        ..config(Residency::Auto)
    };
    let packs: Vec<(Box<dyn Engine>, bool)> = vec![
        (
            Box::new(GpuEngine::pack(&ctx, setup.clone(), 16).unwrap()),
            true,
        ),
        (Box::new(CpuEngine::pack(&setup).unwrap()), false),
    ];
    for (mut pack, on_gpu) in packs {
        let name = pack.describe();
        let report = sweep(
            pack.as_mut(),
            &TrainData::Memory(Arc::clone(&data)),
            Some(&val),
            &config,
            &mut Silent,
        )
        .unwrap();
        assert_eq!(report.steps, 12, "{name}: the sweep runs to the end");
        let diverged = report.models[1].diverged.as_ref().expect("lr 1e4 diverges");
        assert!(diverged.step <= 3, "{name}: seen at step {}", diverged.step);
        assert!(report.models[0].diverged.is_none() && report.models[2].diverged.is_none());
        assert_eq!(report.models[0].epochs.len(), 4, "{name}");
        assert!(
            report.models[1].epochs.len() < 4,
            "{name}: no records after diverging"
        );
        // lr 0.05 learns faster than lr 0.005 in 12 steps.
        assert_eq!(report.best, Some(0), "{name}: {report:?}");
        assert!(report.models[0].score().unwrap() < report.models[2].score().unwrap());
        // The healthy models were not disturbed by their diverging neighbour.
        for k in [0, 2] {
            let engine: Box<dyn Engine> = if on_gpu {
                gpu_engine(&ctx, setup.setup(k), &setup.members[k].parameters)
            } else {
                Box::new(CpuEngine::new(setup.setup(k), &setup.members[k].parameters).unwrap())
            };
            assert_eq!(
                pack.parameters(k).unwrap(),
                alone(engine, &data, &config),
                "{name} model {k}"
            );
        }
        // The frozen model is not updated any more.
        let frozen_at = pack.parameters(1).unwrap();
        let batch = downhill::Batch::new(val.features.view(), val.targets.view());
        pack.set_learning_rates(&[0.05, 1e4, 0.005]).unwrap();
        pack.step(&batch).unwrap_or_else(|e| panic!("{name}: {e}"));
        let bits = |p: &Parameters| -> Vec<u32> {
            p.named_tensors()
                .iter()
                .flat_map(|t| t.values.iter().map(|v| v.to_bits()).collect::<Vec<_>>())
                .collect()
        };
        assert_eq!(
            bits(&frozen_at),
            bits(&pack.parameters(1).unwrap()),
            "{name}: the frozen model changed"
        );
    }
}
