//! Dropout: its keep rate and scale, masks keyed by each row's index in the dataset (so a batch
//! in any order, on either engine, draws the same ones), evaluation that ignores it, and
//! `--dropout` end to end.

mod common;

use std::sync::Arc;

use common::cli::{downhill, npy_files, ok, s};
use common::{gpu, random, targets};
use downhill::cpu::{forward, forward_training};
use downhill::data::Dataset;
use downhill::model::MaskKey;
use downhill::optim::Sgd;
use downhill::{
    Activation, Batch, CpuEngine, Dropout, Engine, GpuEngine, Loss, ModelSpec, Norm, Optimizer,
    Parameters, Setup, Tolerance,
};

#[test]
fn units_are_kept_at_one_minus_p_and_scaled_by_its_inverse() {
    for p in [0.0f32, 0.1, 0.5, 0.9, 1.0] {
        let dropout = Dropout { width: 64, p };
        let draws = 200_000u32;
        let kept = (0..draws)
            .filter(|&i| dropout.kept(7, u64::from(i / 6400), 1, (i / 64) % 100, i % 64))
            .count() as f64;
        let rate = kept / f64::from(draws);
        let expected = 1.0 - f64::from(p);
        // Four standard deviations of a binomial proportion.
        let sigma = (expected * (1.0 - expected) / f64::from(draws)).sqrt();
        assert!(
            (rate - expected).abs() <= 4.0 * sigma + 1e-12,
            "p = {p}: kept {rate}, expected {expected}"
        );
        let scale = if p < 1.0 { 1.0 / (1.0 - p) } else { 0.0 };
        assert_eq!(dropout.scale(), scale, "p = {p}");
        // A row's multipliers, four units to a draw, are the draws unit by unit.
        let mut row = vec![0.0; 63];
        dropout.fill_row(7, 3, 1, 42, &mut row);
        for (unit, m) in row.iter().enumerate() {
            let kept = dropout.kept(7, 3, 1, 42, unit as u32);
            assert_eq!(*m, if kept { scale } else { 0.0 }, "p = {p}, unit {unit}");
        }
    }
}

/// A 6-12-3 tanh model with dropout 0.4.
fn model(dropout: f32) -> ModelSpec {
    ModelSpec::mlp(
        &[6, 12, 3],
        Activation::Tanh,
        Activation::Identity,
        Norm::None,
        dropout,
    )
    .unwrap()
}

#[test]
fn masks_follow_each_rows_index_in_the_dataset_not_its_place_in_the_batch() {
    let spec = model(0.4);
    let params = Parameters::init(&spec, 1);
    let x = random(8, 6, 1.0, 2);
    let rows: Vec<u32> = vec![40, 3, 17, 99, 5, 61, 28, 70];
    let order: Vec<usize> = vec![5, 2, 7, 0, 3, 6, 1, 4];
    let shuffled = x.select(ndarray::Axis(0), &order);
    let shuffled_rows: Vec<u32> = order.iter().map(|&i| rows[i]).collect();
    let key = |rows| MaskKey {
        seed: 9,
        step: 3,
        rows: Some(rows),
    };
    let a = forward_training(&spec, &params, x.view(), &key(&rows));
    let b = forward_training(&spec, &params, shuffled.view(), &key(&shuffled_rows));
    let dropped = &a.post[1];
    assert_eq!(b.post[1], dropped.select(ndarray::Axis(0), &order));
    let zeros = dropped.iter().filter(|&&v| v == 0.0).count();
    assert!(zeros > 0 && zeros < dropped.len(), "{zeros} zeros");
    // Another step draws other masks.
    let other = forward_training(
        &spec,
        &params,
        x.view(),
        &MaskKey {
            step: 4,
            ..key(&rows)
        },
    );
    assert_ne!(other.post[1], *dropped);
}

#[test]
fn both_engines_draw_the_same_masks_streamed_or_resident() {
    let ctx = gpu();
    let spec = model(0.4);
    let init = Parameters::init(&spec, 4);
    let setup = Setup {
        model: spec,
        loss: Loss::CrossEntropy,
        optimizer: Optimizer::Sgd(Sgd {
            lr: 0.1,
            ..Sgd::default()
        }),
    };
    let data = Arc::new(
        Dataset::new(
            "rows",
            random(50, 6, 1.0, 5),
            targets(Loss::CrossEntropy, 50, 3, 6),
        )
        .unwrap(),
    );
    let indices: Vec<u32> = vec![31, 4, 18, 44, 9, 0, 27, 13, 38, 21];
    let picked = data.subset(&indices.iter().map(|&i| i as usize).collect::<Vec<_>>());
    let streamed =
        Batch::new(picked.features.view(), picked.targets.view()).with_rows_in_dataset(&indices);
    let mut engines: Vec<Box<dyn Engine>> = vec![
        Box::new(CpuEngine::new(setup.clone(), &init).unwrap()),
        Box::new(GpuEngine::new(&ctx, setup.clone(), &init, 10).unwrap()),
        Box::new(CpuEngine::new(setup.clone(), &init).unwrap()),
        Box::new(GpuEngine::new(&ctx, setup, &init, 10).unwrap()),
    ];
    for (i, engine) in engines.iter_mut().enumerate() {
        engine.set_mask_seed(77);
        for _ in 0..3 {
            if i < 2 {
                engine.step(&streamed).unwrap();
            } else {
                engine.load_resident(Arc::clone(&data)).unwrap();
                engine.step_resident(&indices).unwrap();
            }
        }
    }
    let reference = engines[0].parameters(0).unwrap();
    for engine in &mut engines[1..] {
        common::assert_close(
            &engine.describe(),
            &engine.parameters(0).unwrap(),
            &reference,
            Tolerance::default(),
        );
    }
    // A run without dropout moves elsewhere: the masks did something.
    let mut plain = CpuEngine::new(
        Setup {
            model: model(0.0),
            ..engines[0].setup(0)
        },
        &init,
    )
    .unwrap();
    for _ in 0..3 {
        plain.step(&streamed).unwrap();
    }
    assert_ne!(plain.parameters(0).unwrap(), reference);
}

#[test]
fn evaluation_and_prediction_ignore_dropout() {
    let ctx = gpu();
    let init = Parameters::init(&model(0.5), 8);
    let x = random(20, 6, 1.0, 9);
    let y = targets(Loss::CrossEntropy, 20, 3, 10);
    let batch = Batch::new(x.view(), y.view());
    for p in [0.5, 0.0] {
        let setup = Setup {
            model: model(p),
            loss: Loss::CrossEntropy,
            optimizer: Optimizer::Sgd(Sgd::default()),
        };
        let mut engines: Vec<Box<dyn Engine>> = vec![
            Box::new(CpuEngine::new(setup.clone(), &init).unwrap()),
            Box::new(GpuEngine::new(&ctx, setup.clone(), &init, 20).unwrap()),
        ];
        let expected = forward(&model(0.0), &init, x.view()).post[1].clone();
        for engine in &mut engines {
            let predicted = engine.predict(0, x.view()).unwrap();
            for (a, b) in predicted.iter().zip(&expected) {
                assert!(Tolerance::default().allows(*a, *b), "{a} vs {b}");
            }
            let metrics = engine.evaluate(&batch).unwrap();
            let twice = engine.evaluate(&batch).unwrap();
            assert_eq!(metrics, twice, "evaluation draws nothing");
        }
    }
}

#[test]
fn dropout_trains_alike_on_every_engine_and_path_and_is_saved() {
    let dir = tempfile::tempdir().unwrap();
    let (x, y) = npy_files(dir.path());
    let mut losses = Vec::new();
    for (device, residency) in [("cpu", "auto"), ("gpu", "resident"), ("gpu", "streamed")] {
        let saved = dir.path().join(format!("{device}-{residency}.safetensors"));
        let out = ok(&[
            "train",
            "--features",
            s(&x),
            "--targets",
            s(&y),
            "--layers",
            "5,16,3",
            "--dropout",
            "0.25",
            "--epochs",
            "3",
            "--batch-size",
            "16",
            "--device",
            device,
            "--residency",
            residency,
            "--save",
            s(&saved),
        ]);
        let line = out
            .lines()
            .find_map(|l| l.strip_prefix("train_loss "))
            .unwrap_or_else(|| panic!("no train_loss in {out}"));
        losses.push(line.parse::<f32>().unwrap());
        let checkpoint = downhill::checkpoint::load_model(&saved).unwrap();
        assert_eq!(checkpoint.model.dropout(), 0.25);
    }
    for loss in &losses[1..] {
        assert!(
            Tolerance::default().allows(*loss, losses[0]),
            "{losses:?}: the engines drew different masks"
        );
    }
    let out = downhill(&[
        "train",
        "--features",
        s(&x),
        "--targets",
        s(&y),
        "--dropout",
        "1.5",
    ]);
    assert!(!out.status.success());
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.contains("outside [0, 1]"), "{stderr}");
}
