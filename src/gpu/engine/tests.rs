//! Gradient accumulation on the GPU pack: batches accumulated into one group train as the
//! group's rows in one step; a whole group is an ordinary step, bit for bit.

use std::sync::Arc;

use super::GpuEngine;
use crate::accumulate::Part;
use crate::compare::{Tolerance, worst_difference};
use crate::data::Dataset;
use crate::engine::{Engine, PackSetup};
use crate::error::Error;
use crate::gpu::testing::{classes, context, random};
use crate::loss::{Batch, Targets};
use crate::model::{Activation, ModelSpec, Parameters};
use crate::optim::{Adam, Optimizer, Sgd};

/// 5 inputs, a hidden layer of 7, 3 outputs.
fn model() -> ModelSpec {
    ModelSpec::from_widths(&[5, 7, 3], Activation::Tanh, Activation::Identity)
        .expect("a valid model")
}

fn pack(loss: crate::loss::Loss, optimizer: Optimizer, clip: Option<f32>) -> GpuEngine {
    let model = model();
    let setup = PackSetup {
        members: vec![crate::engine::Member {
            optimizer,
            parameters: Parameters::init(&model, 3),
        }],
        model,
        loss,
    };
    let mut pack = GpuEngine::pack(&context(), setup, 37).expect("a pack");
    pack.set_clip_norm(clip).expect("a valid norm");
    pack
}

/// 37 rows: dense targets for mse, classes for cross-entropy.
fn data(loss: crate::loss::Loss) -> Dataset {
    let targets = match loss {
        crate::loss::Loss::CrossEntropy => Targets::Classes(classes(37, 3, 2)),
        _ => Targets::Dense(random(37, 3, 2)),
    };
    Dataset::new("test", random(37, 5, 1), targets).expect("matching rows")
}

fn rows(data: &Dataset, range: std::ops::Range<usize>) -> Dataset {
    data.subset(&range.collect::<Vec<_>>())
}

fn batch(data: &Dataset) -> Batch<'_> {
    Batch::new(data.features.view(), data.targets.view())
}

/// `f` of each pair of values of `a` and `b`.
fn combine(a: &Parameters, b: &Parameters, f: impl Fn(f32, f32) -> f32) -> Parameters {
    let values = a
        .named_tensors()
        .iter()
        .zip(b.named_tensors())
        .map(|(x, y)| {
            x.values
                .iter()
                .zip(&y.values)
                .map(|(&p, &q)| f(p, q))
                .collect()
        });
    Parameters::from_values(&model(), values)
}

/// The batches of each group: 8, 8, 8, 8 and a partial 5.
const CUTS: [usize; 6] = [0, 8, 16, 24, 32, 37];

#[test]
fn accumulated_batches_train_as_their_rows_in_one_step() {
    let sgd = Optimizer::Sgd(Sgd {
        lr: 0.1,
        momentum: 0.9,
        ..Sgd::default()
    });
    let adam = Optimizer::Adam(Adam {
        lr: 0.01,
        ..Adam::default()
    });
    let cases = [
        (crate::loss::Loss::Mse, sgd, None),
        (crate::loss::Loss::CrossEntropy, adam, Some(0.5)),
    ];
    for (loss, optimizer, clip) in cases {
        let all = data(loss);
        let mut whole = pack(loss, optimizer, clip);
        let mut accumulated = pack(loss, optimizer, clip);
        // Two groups, so that the optimizer's state carries from one to the next.
        for _ in 0..2 {
            whole.step(&batch(&all)).expect("a step");
            for (i, pair) in CUTS.windows(2).enumerate() {
                let part = Part {
                    group_rows: 37,
                    first: i == 0,
                    last: pair[1] == 37,
                };
                let piece = rows(&all, pair[0]..pair[1]);
                accumulated
                    .accumulate(&batch(&piece), part)
                    .expect("a part");
            }
        }
        assert_eq!(accumulated.steps(), 2);
        let (tested, reference) = (
            accumulated.parameters(0).expect("parameters"),
            whole.parameters(0).expect("parameters"),
        );
        let worst = worst_difference(&tested, &reference, Tolerance::default());
        assert!(worst.ratio <= 1.0, "{}: {worst:?}", optimizer.name());
    }
}

#[test]
fn a_whole_group_is_a_step_bit_for_bit() {
    let loss = crate::loss::Loss::CrossEntropy;
    let all = data(loss);
    let adam = Optimizer::Adam(Adam::default());
    let mut stepped = pack(loss, adam, Some(1.0));
    let mut whole = pack(loss, adam, Some(1.0));
    let mut updated = pack(loss, adam, Some(1.0));
    for _ in 0..2 {
        stepped.step(&batch(&all)).expect("a step");
        whole
            .accumulate(&batch(&all), Part::whole(37))
            .expect("a whole group");
        let open = Part {
            last: false,
            ..Part::whole(37)
        };
        updated.accumulate(&batch(&all), open).expect("a part");
        updated.apply_update().expect("an update");
    }
    let reference = stepped.parameters(0).expect("parameters");
    for other in [&mut whole, &mut updated] {
        assert_eq!(other.parameters(0).expect("parameters"), reference);
        assert_eq!(other.steps(), 2);
    }
}

#[test]
fn resident_batches_accumulate_as_streamed_ones() {
    let loss = crate::loss::Loss::Mse;
    let all = data(loss);
    let sgd = Optimizer::Sgd(Sgd {
        momentum: 0.5,
        ..Sgd::default()
    });
    let mut streamed = pack(loss, sgd, None);
    let mut resident = pack(loss, sgd, None);
    resident
        .load_resident(Arc::new(all.clone()))
        .expect("room on the device");
    for (i, pair) in CUTS.windows(2).enumerate() {
        let part = Part {
            group_rows: 37,
            first: i == 0,
            last: pair[1] == 37,
        };
        let indices: Vec<u32> = (pair[0] as u32..pair[1] as u32).collect();
        resident
            .accumulate_resident(&indices, part)
            .expect("a part");
        let piece = rows(&all, pair[0]..pair[1]);
        streamed.accumulate(&batch(&piece), part).expect("a part");
    }
    assert_eq!(
        resident.parameters(0).expect("parameters"),
        streamed.parameters(0).expect("parameters")
    );
}

#[test]
fn gradients_set_are_the_gradients_updated_with() {
    let loss = crate::loss::Loss::Mse;
    let all = data(loss);
    let sgd = Optimizer::Sgd(Sgd::default());
    let mut pack = pack(loss, sgd, None);
    let open = Part {
        last: false,
        ..Part::whole(37)
    };
    pack.accumulate(&batch(&all), open).expect("a part");
    let gradients = pack.gradients(0).expect("gradients");
    let doubled = combine(&gradients, &gradients, |g, _| 2.0 * g);
    pack.set_gradients(0, &doubled).expect("gradients that fit");
    assert_eq!(pack.gradients(0).expect("gradients"), doubled);
    let before = pack.parameters(0).expect("parameters");
    pack.apply_update().expect("an update");
    // Plain SGD: θ ← θ − γ·g.
    let expected = combine(&before, &doubled, |p, g| p - 1e-3 * g);
    let worst = worst_difference(
        &pack.parameters(0).expect("parameters"),
        &expected,
        Tolerance::default(),
    );
    assert!(worst.ratio <= 1.0, "{worst:?}");
}

#[test]
fn a_group_smaller_than_its_batch_is_refused() {
    let loss = crate::loss::Loss::Mse;
    let all = data(loss);
    let mut pack = pack(loss, Optimizer::Sgd(Sgd::default()), None);
    let part = Part {
        group_rows: 36,
        ..Part::whole(37)
    };
    let error = pack.accumulate(&batch(&all), part).expect_err("refused");
    assert!(matches!(error, Error::Usage(_)), "{error}");
    assert_eq!(pack.steps(), 0);
}
