//! The GPU engine's memory estimate, made before anything is allocated: it covers what the
//! engine then allocates (dense models, packs, norms' parameters, running statistics and
//! scratch, dropout's activations) and not by much more, and a budget under it refuses the
//! model before allocating.

mod common;

use std::sync::Arc;

use common::{gpu, random, targets};
use downhill::data::Dataset;
use downhill::optim::{Adam, RmsProp, Sgd};
use downhill::{Activation, Engine, GpuEngine, Loss, ModelSpec, Optimizer, Parameters, Setup};

/// The estimate made before allocating covers what the engine then allocates, and not by much
/// more; a budget under it refuses the model before anything is allocated.
#[test]
fn the_memory_estimate_covers_what_is_allocated_and_refuses_too_large_models() {
    use downhill::gpu::MemoryEstimate;
    use downhill::{Member, PackSetup};
    let ctx = gpu();
    let align = u64::from(ctx.limits().min_storage_buffer_offset_alignment);
    let batch_norm = downhill::Norm::Batch {
        eps: 1e-5,
        momentum: 0.1,
    };
    let layer_norm = downhill::Norm::Layer { eps: 1e-5 };
    let none = downhill::Norm::None;
    for (widths, optimizer, models, max_batch, (norm, dropout)) in [
        (
            &[6, 12, 4][..],
            Optimizer::Sgd(Sgd::default()),
            1,
            8,
            (none, 0.0),
        ),
        (
            &[64, 300, 200, 10][..],
            Optimizer::Adam(Adam::default()),
            1,
            256,
            (none, 0.0),
        ),
        (
            &[20, 40, 3][..],
            Optimizer::RmsProp(RmsProp::default()),
            3,
            64,
            (none, 0.0),
        ),
        // The norms' parameters, running statistics and scratch, and dropout's activations.
        (
            &[64, 300, 200, 10][..],
            Optimizer::Adam(Adam::default()),
            1,
            256,
            (batch_norm, 0.2),
        ),
        (
            &[20, 40, 3][..],
            Optimizer::RmsProp(RmsProp::default()),
            3,
            64,
            (layer_norm, 0.1),
        ),
    ] {
        let model = ModelSpec::mlp(
            widths,
            Activation::Relu,
            Activation::Identity,
            norm,
            dropout,
        )
        .unwrap();
        let init = Parameters::init(&model, 1);
        let setup = PackSetup {
            model: model.clone(),
            loss: Loss::CrossEntropy,
            members: (0..models)
                .map(|_| Member {
                    optimizer,
                    parameters: init.clone(),
                })
                .collect(),
        };
        let estimate = MemoryEstimate::for_pack(&setup, max_batch, align);
        let before = ctx.allocated_bytes();
        let pack = downhill::GpuEngine::pack(&ctx, setup, max_batch).unwrap();
        let allocated = ctx.allocated_bytes() - before;
        let what = format!(
            "{widths:?} {norm:?} dropout {dropout} x{models} batch {max_batch}: {}",
            estimate.breakdown()
        );
        assert!(
            estimate.total() >= allocated,
            "{what}: {allocated} allocated"
        );
        assert!(
            estimate.total() <= allocated + allocated / 10 + (64 << 10),
            "{what}: {} estimated, {allocated} allocated",
            estimate.total()
        );
        drop(pack);
    }

    let model = ModelSpec::from_widths(
        &[64, 1000, 1000, 10],
        Activation::Relu,
        Activation::Identity,
    )
    .unwrap();
    let setup = Setup {
        model: model.clone(),
        loss: Loss::CrossEntropy,
        optimizer: Optimizer::Adam(Adam::default()),
    };
    let small = downhill::GpuContext::new(&downhill::AdapterRequest {
        device_memory: Some(8 << 20),
        ..Default::default()
    })
    .unwrap();
    let init = Parameters::init(&model, 1);
    let err = GpuEngine::new(&small, setup.clone(), &init, 32).unwrap_err();
    assert_eq!(small.allocated_bytes(), 0, "refused before allocating");
    let message = err.to_string();
    assert!(
        message.contains("of device memory") && message.contains("optimizer state"),
        "{message}"
    );
    // Within budget, but not with the dataset resident on the device.
    let roomy = downhill::GpuContext::new(&downhill::AdapterRequest {
        device_memory: Some(40 << 20),
        ..Default::default()
    })
    .unwrap();
    let mut engine = GpuEngine::new(&roomy, setup, &init, 32).unwrap();
    let data = Dataset::new(
        "large",
        random(100_000, 64, 1.0, 2),
        targets(Loss::CrossEntropy, 100_000, 10, 3),
    )
    .unwrap();
    let err = engine
        .load_resident(Arc::new(data))
        .unwrap_err()
        .to_string();
    assert!(
        err.contains("resident data") && err.contains("--residency streamed"),
        "{err}"
    );
}
