//! Trains a 2-32-32-3 tanh MLP on three interleaved spirals with Adam, on the GPU and on the
//! CPU reference side by side from the same start, and shows that both give the same numbers.
//!
//! cargo run --release --example spirals

use downhill::optim::Adam;
use downhill::{
    Activation, AdapterRequest, Batch, CpuEngine, Engine, GpuContext, GpuEngine, Loss, ModelSpec,
    Optimizer, Parameters, Setup, Tolerance, worst_difference,
};

fn main() -> downhill::Result<()> {
    let data = downhill::data::builtin::spirals(100, 3, 0);
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
    let mut gpu = GpuEngine::new(&ctx, setup.clone(), &init, data.rows())?;
    let mut cpu = CpuEngine::new(setup, &init)?;
    println!("gpu: {}\ncpu: {}\n", ctx.describe(), cpu.describe());
    println!("{:>5}  {:>12}  {:>12}", "step", "gpu loss", "cpu loss");
    let batch = Batch::new(data.features.view(), data.targets.view());
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
        let metrics = engine.evaluate(&batch)?[0];
        let accuracy = metrics.accuracy(Loss::CrossEntropy).unwrap_or(0.0);
        println!(
            "train accuracy on {}: {:.1}%",
            engine.describe(),
            100.0 * accuracy
        );
    }
    // Exact agreement is promised over the first steps (tests/trajectories.rs); over hundreds of
    // Adam steps, rounding differences in near-zero gradients grow into small parameter drift.
    let worst = worst_difference(
        &gpu.parameters(0)?,
        &cpu.parameters(0)?,
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
