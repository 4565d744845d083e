//! The burn side of `scripts/peers/burn_mlp_step.py`: times training steps of an MLP (ReLU hidden
//! layers, cross-entropy, Adam with torch's defaults, lr 1e-3) on burn's wgpu or flex backend,
//! with the batches already on the device, and prints samples per second.
//!
//!     burn-mlp-step wgpu|flex LAYERS BATCH STEPS
//!
//! The data is uniform noise with random labels (a step's time does not depend on the values);
//! three steps warm up (and compile the kernels) before the timed ones, and the timer stops once
//! the last step's loss is read back.

use std::time::Instant;

use burn::nn::loss::CrossEntropyLossConfig;
use burn::nn::{Linear, LinearConfig, Relu};
use burn::optim::{AdamConfig, GradientsParams};
use burn::prelude::*;

/// Linear layers with ReLU between them.
#[derive(Module, Debug)]
struct Mlp {
    layers: Vec<Linear>,
    activation: Relu,
}

impl Mlp {
    fn new(widths: &[usize], device: &Device) -> Self {
        Self {
            layers: widths
                .windows(2)
                .map(|w| LinearConfig::new(w[0], w[1]).init(device))
                .collect(),
            activation: Relu::new(),
        }
    }

    fn forward(&self, mut x: Tensor<2>) -> Tensor<2> {
        let last = self.layers.len() - 1;
        for (i, layer) in self.layers.iter().enumerate() {
            x = layer.forward(x);
            if i < last {
                x = self.activation.forward(x);
            }
        }
        x
    }
}

/// A small xorshift generator: the same noise on every run.
struct Noise(u64);

impl Noise {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0
    }

    fn uniform(&mut self) -> f32 {
        (self.next() >> 40) as f32 / (1u64 << 24) as f32 * 2.0 - 1.0
    }
}

fn main() {
    let args: Vec<String> = std::env::args().collect();
    let usage = "usage: burn-mlp-step wgpu|flex LAYERS BATCH STEPS";
    assert!(args.len() == 5, "{usage}");
    let device = match args[1].as_str() {
        "wgpu" => Device::wgpu(DeviceKind::DefaultDevice),
        "flex" => Device::flex(),
        other => panic!("unknown backend {other}; {usage}"),
    }
    .autodiff();
    let widths: Vec<usize> = args[2]
        .split(',')
        .map(|w| w.parse().expect(usage))
        .collect();
    let batch: usize = args[3].parse().expect(usage);
    let steps: usize = args[4].parse().expect(usage);
    let (inputs, classes) = (widths[0], *widths.last().expect(usage));

    // Four batches on the device, taken in turn.
    let mut noise = Noise(0x9e37_79b9_7f4a_7c15);
    let batches: Vec<(Tensor<2>, Tensor<1, Int>)> = (0..4)
        .map(|_| {
            let x: Vec<f32> = (0..batch * inputs).map(|_| noise.uniform()).collect();
            let y: Vec<i64> = (0..batch)
                .map(|_| (noise.next() % classes as u64) as i64)
                .collect();
            (
                Tensor::from_data(TensorData::new(x, [batch, inputs]), &device),
                Tensor::from_data(TensorData::new(y, [batch]), &device),
            )
        })
        .collect();

    let mut model = Mlp::new(&widths, &device);
    let mut optimizer = AdamConfig::new()
        .with_beta_1(0.9)
        .with_beta_2(0.999)
        .with_epsilon(1e-8)
        .init();
    let loss_fn = CrossEntropyLossConfig::new().init(&device);
    let mut step = |model: Mlp, i: usize| -> (Mlp, Tensor<1>) {
        let (x, y) = &batches[i % batches.len()];
        let loss = loss_fn.forward(model.forward(x.clone()), y.clone());
        let grads = GradientsParams::from_grads(loss.backward(), &model);
        (optimizer.step(1e-3, model, grads), loss)
    };
    for i in 0..3 {
        let (next, loss) = step(model, i);
        model = next;
        let _: f32 = loss.into_scalar();
    }
    let started = Instant::now();
    let mut last = None;
    for i in 0..steps {
        let (next, loss) = step(model, i);
        model = next;
        last = Some(loss);
    }
    let loss: f32 = last.expect("at least one step").into_scalar();
    let seconds = started.elapsed().as_secs_f64();
    println!(
        "{{\"samples_per_second\": {}, \"loss\": {loss}}}",
        (steps * batch) as f64 / seconds
    );
}
