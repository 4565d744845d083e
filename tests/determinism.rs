//! The same seed gives the same numbers: initialisation everywhere, and bit-identical
//! parameters after training on the same adapter (no float atomics anywhere).

mod common;

use common::{gpu, random, targets};
use downhill::optim::Adam;
use downhill::{
    Activation, Batch, Engine, GpuEngine, Loss, ModelSpec, Optimizer, Parameters, Setup,
};

fn setup() -> Setup {
    Setup {
        model: ModelSpec::from_widths(&[20, 70, 33, 5], Activation::Gelu, Activation::Identity)
            .unwrap(),
        loss: Loss::CrossEntropy,
        optimizer: Optimizer::Adam(Adam {
            lr: 0.01,
            ..Adam::default()
        }),
    }
}

#[test]
fn initialisation_is_seeded() {
    let model = setup().model;
    assert_eq!(Parameters::init(&model, 7), Parameters::init(&model, 7));
    assert_ne!(Parameters::init(&model, 7), Parameters::init(&model, 8));
    // PyTorch's nn.Linear default: every value within ±1/√in of its layer.
    let params = Parameters::init(&model, 7);
    for (own, layer) in params.by_layer(&model).into_iter().zip(model.layers()) {
        let bound = 1.0 / (layer.inputs() as f32).sqrt();
        let values = || own.iter().flat_map(|t| &t.values);
        assert!(values().all(|v| v.abs() <= bound));
        assert!(
            values().any(|v| v.abs() > 0.9 * bound),
            "values spread to the bound"
        );
    }
}

fn train_once() -> (Parameters, Vec<f32>) {
    let ctx = gpu();
    let setup = setup();
    let mut engine =
        GpuEngine::new(&ctx, setup.clone(), &Parameters::init(&setup.model, 3), 130).unwrap();
    let mut losses = Vec::new();
    for step in 0..10u64 {
        let rows = if step % 3 == 2 { 67 } else { 130 };
        let x = random(rows, 20, 1.0, step);
        let y = targets(setup.loss, rows, 5, step + 100);
        engine.step(&Batch::new(x.view(), y.view())).unwrap();
        losses.push(engine.last_loss().unwrap());
    }
    (engine.parameters(0).unwrap(), losses)
}

#[test]
fn same_seed_gives_bit_identical_gpu_parameters() {
    let (first, first_losses) = train_once();
    let (second, second_losses) = train_once();
    let bits = |p: &Parameters| -> Vec<u32> {
        p.named_tensors()
            .iter()
            .flat_map(|t| t.values.iter().map(|v| v.to_bits()))
            .collect()
    };
    assert_eq!(bits(&first), bits(&second));
    assert_eq!(
        first_losses.iter().map(|v| v.to_bits()).collect::<Vec<_>>(),
        second_losses
            .iter()
            .map(|v| v.to_bits())
            .collect::<Vec<_>>()
    );
}
