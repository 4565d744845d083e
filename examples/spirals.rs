//! Trains a 2-32-32-3 tanh MLP on three interleaved spirals with Adam, on the GPU and on the
//! CPU reference side by side from the same start, and shows that both give the same numbers.
//!
//! cargo run --release --example spirals

use downhill::optim::Adam;
use downhill::{
    Activation, AdapterRequest, Batch, CpuEngine, Engine, GpuContext, GpuEngine, Loss, ModelSpec,
    Optimizer, Parameters, Setup, Targets, TargetsView, Tolerance, worst_difference,
};
use ndarray::Array2;

/// The fraction of rows whose largest output is the true class.
fn accuracy(outputs: Array2<f32>, classes: &[u32]) -> f64 {
    let correct = outputs
        .rows()
        .into_iter()
        .zip(classes)
        .filter(|(row, class)| {
            let best = row
                .iter()
                .enumerate()
                .max_by(|a, b| a.1.total_cmp(b.1))
                .map(|(i, _)| i);
            best == Some(**class as usize)
        })
        .count();
    correct as f64 / classes.len() as f64
}

fn main() -> downhill::Result<()> {
    let data = downhill::data::builtin::spirals(100, 3, 0);
    let x = data.features;
    let Targets::Classes(y) = data.targets else {
        unreachable!("spirals are labelled by class")
    };
    let setup = Setup {
        model: ModelSpec::from_widths(&[2, 32, 32, 3], Activation::Tanh, Activation::Identity)?,
        loss: Loss::CrossEntropy,
        optimizer: Optimizer::Adam(Adam {
            lr: 0.01,
            ..Adam::default()
        }),
    };
    let init = Parameters::init(&setup.model, 42);
    let ctx = GpuContext::new(&AdapterRequest::default())?;
    let mut gpu = GpuEngine::new(&ctx, setup.clone(), &init, x.nrows())?;
    let mut cpu = CpuEngine::new(setup, &init)?;
    println!("gpu: {}\ncpu: {}\n", ctx.describe(), cpu.describe());
    println!("{:>5}  {:>12}  {:>12}", "step", "gpu loss", "cpu loss");
    let batch = Batch::new(x.view(), TargetsView::Classes(&y));
    for step in 1..=500 {
        gpu.step(&batch)?;
        cpu.step(&batch)?;
        if step % 50 == 0 {
            println!(
                "{step:>5}  {:>12.6}  {:>12.6}",
                gpu.last_loss()?,
                cpu.last_loss()?
            );
        }
    }
    for engine in [&mut gpu as &mut dyn Engine, &mut cpu] {
        println!(
            "train accuracy on {}: {:.1}%",
            engine.describe(),
            100.0 * accuracy(engine.predict(x.view())?, &y)
        );
    }
    // Exact agreement is promised over the first steps (tests/trajectories.rs); over hundreds of
    // Adam steps, rounding differences in near-zero gradients grow into small parameter drift.
    let worst = worst_difference(
        &gpu.parameters()?,
        &cpu.parameters()?,
        Tolerance { rel: 0.0, abs: 1.0 },
    );
    println!(
        "largest parameter difference after 500 steps: {:.2e} at {}[{}]",
        (worst.value - worst.reference).abs(),
        worst.tensor,
        worst.index
    );
    Ok(())
}
