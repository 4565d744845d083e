//! Gradients handed over bucket by bucket during backward (`Engine::accumulate_into`), on both
//! engines: every bucket comes once per model, each model's in backward's order, holding exactly the
//! gradients the engine then reports; a part of a group is added to what came before; frozen
//! and packed models are handed over alike; `set_flat_gradients` puts a flat gradient back, and
//! the update applies it.

mod common;

use common::{gpu, random, targets};
use downhill::gradient_buckets::{GradientBuckets, GradientSink};
use downhill::optim::Sgd;
use downhill::{
    Activation, Batch, CpuEngine, Engine, GpuEngine, Loss, Member, ModelSpec, Optimizer, PackSetup,
    Parameters, Part,
};
use ndarray::Array2;

/// What a sink received: each model's flat gradient as its buckets filled it, and the order of
/// the buckets.
struct Recorder {
    buckets: GradientBuckets,
    flat: Vec<Vec<f32>>,
    order: Vec<(usize, usize)>,
}

impl Recorder {
    fn new(model: &ModelSpec, models: usize, bytes: usize) -> Self {
        let buckets = GradientBuckets::new(model, bytes);
        Self {
            flat: vec![vec![f32::NAN; buckets.total()]; models],
            buckets,
            order: Vec::new(),
        }
    }
}

impl GradientSink for Recorder {
    fn buckets(&self) -> &GradientBuckets {
        &self.buckets
    }

    fn ready<'a>(
        &mut self,
        k: usize,
        bucket: usize,
        tensor: &dyn Fn(usize) -> &'a [f32],
    ) -> downhill::Result<()> {
        self.order.push((k, bucket));
        let b = &self.buckets.buckets()[bucket];
        let mut at = b.values.start;
        for &t in &b.tensors {
            let values = tensor(t);
            self.flat[k][at..at + values.len()].copy_from_slice(values);
            at += values.len();
        }
        assert_eq!(at, b.values.end, "a bucket's tensors fill its values");
        Ok(())
    }
}

/// The trained tensors of `params`, one after another.
fn flat(model: &ModelSpec, params: &Parameters) -> Vec<f32> {
    model
        .tensors()
        .iter()
        .zip(params.named_tensors())
        .filter(|(spec, _)| spec.trained)
        .flat_map(|(_, t)| t.values.iter().copied())
        .collect()
}

/// 6 → 9 → (layer norm) → 7 → 3 with dropout: four tensors' layers and one without.
fn model() -> ModelSpec {
    ModelSpec::mlp(
        &[6, 9, 7, 3],
        Activation::Tanh,
        Activation::Identity,
        downhill::model::Norm::Layer { eps: 1e-5 },
        0.25,
    )
    .expect("a valid model")
}

fn pack(model: &ModelSpec, models: u64) -> PackSetup {
    PackSetup {
        model: model.clone(),
        loss: Loss::CrossEntropy,
        members: (0..models)
            .map(|k| Member {
                optimizer: Optimizer::Sgd(Sgd {
                    lr: 0.1,
                    ..Sgd::default()
                }),
                parameters: Parameters::init(model, 7 + k),
            })
            .collect(),
    }
}

/// Every check, on one engine of two models.
fn hands_over_what_it_accumulated(engine: &mut dyn Engine) {
    let model = engine.setup(0).model;
    let features: Array2<f32> = random(10, 6, 1.0, 1);
    let classes = targets(Loss::CrossEntropy, 10, 3, 2);
    let batch = Batch::new(features.view(), classes.view());
    engine.set_mask_seed(5);
    for bytes in [1, 4 << 20] {
        let mut sink = Recorder::new(&model, 2, bytes);
        let buckets = sink.buckets.buckets().len();
        assert!(bytes > 1 || buckets > 1, "one-byte buckets split the model");
        // A group of two parts: the first accumulated plainly, the second handed over.
        let first = Part {
            last: false,
            ..Part::of(0, 2, 20)
        };
        engine.accumulate(&batch, first).expect("a first part");
        engine
            .accumulate_into(&batch, Part::of(1, 2, 20), &mut sink)
            .expect_err("a last part updates at once: nothing to hand over");
        let second = Part {
            last: false,
            ..Part::of(1, 2, 20)
        };
        engine
            .accumulate_into(&batch, second, &mut sink)
            .expect("a second part handed over");
        for k in 0..2 {
            let order: Vec<usize> = sink
                .order
                .iter()
                .filter(|o| o.0 == k)
                .map(|o| o.1)
                .collect();
            let expected: Vec<usize> = (0..buckets).collect();
            assert_eq!(
                order, expected,
                "model {k}'s buckets once each, in backward's order"
            );
        }
        assert_eq!(sink.order.len(), 2 * buckets);
        for k in 0..2 {
            let gradients = engine.gradients(k).expect("gradients");
            assert_eq!(
                sink.flat[k],
                flat(&model, &gradients),
                "model {k}, {bytes}-byte buckets"
            );
        }
        // Doubled and put back, the update applies them: SGD, θ ← θ − 0.1·g.
        let before = engine.parameters(0).expect("parameters");
        let doubled: Vec<f32> = sink.flat[0].iter().map(|g| 2.0 * g).collect();
        engine
            .set_flat_gradients(0, &doubled)
            .expect("a flat gradient that fits");
        assert_eq!(
            flat(&model, &engine.gradients(0).expect("gradients")),
            doubled
        );
        engine
            .set_flat_gradients(0, &doubled[1..])
            .expect_err("a flat gradient one value short");
        engine.apply_update().expect("an update");
        let after = flat(&model, &engine.parameters(0).expect("parameters"));
        for ((a, p), g) in after.iter().zip(flat(&model, &before)).zip(&doubled) {
            assert!(
                (a - (p - 0.1 * g)).abs() <= 1e-6 * (1.0 + p.abs()),
                "{a} vs {p} − 0.1·{g}"
            );
        }
    }
}

#[test]
fn the_cpu_engine_hands_over_its_gradients_bucket_by_bucket() {
    let model = model();
    let mut engine = CpuEngine::pack(&pack(&model, 2)).expect("an engine");
    hands_over_what_it_accumulated(&mut engine);
}

#[test]
fn the_gpu_engine_hands_over_its_gradients_bucket_by_bucket() {
    let model = model();
    let mut engine = GpuEngine::pack(&gpu(), pack(&model, 2), 16).expect("an engine");
    hands_over_what_it_accumulated(&mut engine);
}

#[test]
fn the_resident_path_hands_over_the_same_gradients() {
    let model = model();
    let features: Array2<f32> = random(10, 6, 1.0, 1);
    let classes = targets(Loss::CrossEntropy, 10, 3, 2);
    let data = std::sync::Arc::new(
        downhill::data::Dataset::new("rows", features, classes).expect("a dataset"),
    );
    let part = Part {
        last: false,
        ..Part::whole(4)
    };
    let rows = [3u32, 0, 7, 9];
    let cpu_engine = CpuEngine::pack(&pack(&model, 2)).expect("an engine");
    let gpu_engine = GpuEngine::pack(&gpu(), pack(&model, 2), 16).expect("an engine");
    for mut engine in [
        Box::new(cpu_engine) as Box<dyn Engine>,
        Box::new(gpu_engine),
    ] {
        engine.load_resident(data.clone()).expect("resident rows");
        let mut sink = Recorder::new(&model, 2, 1);
        engine
            .accumulate_resident_into(&rows, part, &mut sink)
            .expect("handed over");
        for k in 0..2 {
            let gradients = engine.gradients(k).expect("gradients");
            assert_eq!(
                sink.flat[k],
                flat(&model, &gradients),
                "{}",
                engine.describe()
            );
        }
    }
}
