//! Everything a caller can get wrong is an error that says what, where and what to do.

mod common;

use common::{gpu, random};
use downhill::optim::{Adadelta, Adagrad, Adam, AdamW, RmsProp, Sgd};
use downhill::{
    Activation, AdapterRequest, Batch, CpuEngine, Engine, Error, GpuContext, GpuEngine, Layer,
    Loss, ModelSpec, Optimizer, Parameters, Setup, TargetsView,
};
use ndarray::array;

fn message(result: downhill::Result<impl std::fmt::Debug>) -> String {
    result.expect_err("expected an error").to_string()
}

#[test]
fn invalid_hyperparameters_name_the_value_and_the_reason() {
    let cases: Vec<(Optimizer, &str)> = vec![
        (
            Optimizer::Sgd(Sgd {
                lr: -0.1,
                ..Sgd::default()
            }),
            "SGD hyperparameter lr = -0.1: the learning rate must be >= 0",
        ),
        (
            Optimizer::Sgd(Sgd {
                nesterov: true,
                ..Sgd::default()
            }),
            "momentum = 0: nesterov momentum needs momentum > 0",
        ),
        (
            Optimizer::Sgd(Sgd {
                nesterov: true,
                momentum: 0.9,
                dampening: 0.1,
                ..Sgd::default()
            }),
            "dampening = 0.1: nesterov momentum needs zero dampening",
        ),
        (
            Optimizer::Sgd(Sgd {
                momentum: -1.0,
                ..Sgd::default()
            }),
            "momentum = -1: must be >= 0",
        ),
        (
            Optimizer::Sgd(Sgd {
                lr: f64::NAN,
                ..Sgd::default()
            }),
            "lr = NaN: must be a finite number",
        ),
        (
            Optimizer::Adam(Adam {
                beta1: 1.0,
                ..Adam::default()
            }),
            "Adam hyperparameter beta1 = 1: must be in [0, 1)",
        ),
        (
            Optimizer::Adam(Adam {
                beta2: -0.5,
                ..Adam::default()
            }),
            "beta2 = -0.5: must be in [0, 1)",
        ),
        (
            Optimizer::Adam(Adam {
                eps: -1e-8,
                ..Adam::default()
            }),
            "eps = -0.00000001: must be >= 0",
        ),
        (
            Optimizer::AdamW(AdamW {
                lr: -1.0,
                ..AdamW::default()
            }),
            "AdamW hyperparameter lr = -1",
        ),
        (
            Optimizer::AdamW(AdamW {
                weight_decay: -0.1,
                ..AdamW::default()
            }),
            "weight_decay = -0.1: must be >= 0",
        ),
        (
            Optimizer::RmsProp(RmsProp {
                alpha: -0.9,
                ..RmsProp::default()
            }),
            "RMSprop hyperparameter alpha = -0.9",
        ),
        (
            Optimizer::RmsProp(RmsProp {
                eps: -1.0,
                ..RmsProp::default()
            }),
            "RMSprop hyperparameter eps = -1",
        ),
        (
            Optimizer::Adagrad(Adagrad {
                lr_decay: -0.1,
                ..Adagrad::default()
            }),
            "Adagrad hyperparameter lr_decay = -0.1",
        ),
        (
            Optimizer::Adagrad(Adagrad {
                initial_accumulator_value: -1.0,
                ..Adagrad::default()
            }),
            "initial_accumulator_value = -1",
        ),
        (
            Optimizer::Adadelta(Adadelta {
                rho: 1.5,
                ..Adadelta::default()
            }),
            "Adadelta hyperparameter rho = 1.5",
        ),
    ];
    let model =
        ModelSpec::from_widths(&[2, 1], Activation::Identity, Activation::Identity).unwrap();
    let init = Parameters::zeros(&model);
    let ctx = gpu();
    for (optimizer, expected) in cases {
        let text = message(optimizer.validate().map(|_| ()));
        assert!(
            text.contains(expected),
            "{text:?} should contain {expected:?}"
        );
        // Both engines refuse to start with it.
        let setup = Setup {
            model: model.clone(),
            loss: Loss::Mse,
            optimizer,
        };
        assert!(message(CpuEngine::new(setup.clone(), &init)).contains(expected));
        assert!(message(GpuEngine::new(&ctx, setup, &init, 4)).contains(expected));
    }
}

#[test]
fn pytorch_defaults_are_valid() {
    for optimizer in [
        Optimizer::Sgd(Sgd::default()),
        Optimizer::Adam(Adam::default()),
        Optimizer::AdamW(AdamW::default()),
        Optimizer::RmsProp(RmsProp::default()),
        Optimizer::Adagrad(Adagrad::default()),
        Optimizer::Adadelta(Adadelta::default()),
    ] {
        optimizer.validate().unwrap();
    }
    assert_eq!(Sgd::default().lr, 1e-3);
    assert_eq!(
        (
            Adam::default().lr,
            Adam::default().beta1,
            Adam::default().beta2,
            Adam::default().eps
        ),
        (1e-3, 0.9, 0.999, 1e-8)
    );
    assert_eq!(AdamW::default().weight_decay, 1e-2);
    assert_eq!(
        (
            RmsProp::default().lr,
            RmsProp::default().alpha,
            RmsProp::default().eps
        ),
        (1e-2, 0.99, 1e-8)
    );
    assert_eq!(
        (Adagrad::default().lr, Adagrad::default().eps),
        (1e-2, 1e-10)
    );
    let adadelta = Adadelta::default();
    assert_eq!(
        (
            adadelta.lr,
            adadelta.rho,
            adadelta.eps,
            adadelta.weight_decay
        ),
        (1.0, 0.9, 1e-6, 0.0)
    );
}

#[test]
fn inconsistent_models_are_refused() {
    let text = message(ModelSpec::from_widths(
        &[4, 0, 2],
        Activation::Relu,
        Activation::Identity,
    ));
    assert!(text.contains("layer 0 has a zero width (4 -> 0)"), "{text}");
    let layer = |inputs, outputs| Layer::dense(inputs, outputs, Activation::Relu);
    let text = message(ModelSpec::new(vec![layer(4, 8), layer(7, 2)]));
    assert!(
        text.contains("layer 0 outputs 8 values but layer 1 expects 7 inputs"),
        "{text}"
    );
    assert!(
        message(ModelSpec::from_widths(
            &[4],
            Activation::Relu,
            Activation::Identity
        ))
        .contains("at least two widths")
    );
    let text = message("softsign".parse::<Activation>());
    assert!(text.contains("unknown activation `softsign`"), "{text}");
    assert_eq!(
        "leaky_relu(0.2)".parse::<Activation>().unwrap(),
        Activation::LeakyRelu { slope: 0.2 }
    );
    assert!(message("hinge".parse::<Loss>()).contains("unknown loss `hinge`"));
}

#[test]
fn parameters_of_the_wrong_shape_name_the_tensor() {
    let model = ModelSpec::from_widths(&[3, 4, 2], Activation::Relu, Activation::Identity).unwrap();
    let wider = ModelSpec::from_widths(&[3, 4, 5], Activation::Relu, Activation::Identity).unwrap();
    let params = Parameters::init(&wider, 0);
    let setup = Setup {
        model,
        loss: Loss::Mse,
        optimizer: Optimizer::Sgd(Sgd::default()),
    };
    let text = message(CpuEngine::new(setup.clone(), &params));
    assert!(
        text.contains("layers.1.weight: expected [2, 4], got [5, 4]"),
        "{text}"
    );
    let text = message(GpuEngine::new(&gpu(), setup, &params, 4));
    assert!(text.contains("layers.1.weight"), "{text}");
}

#[test]
fn bad_batches_are_refused_by_both_engines() {
    let model = ModelSpec::from_widths(&[3, 4], Activation::Relu, Activation::Identity).unwrap();
    let setup = Setup {
        model: model.clone(),
        loss: Loss::CrossEntropy,
        optimizer: Optimizer::Sgd(Sgd::default()),
    };
    let init = Parameters::init(&model, 0);
    let mut engines: Vec<Box<dyn Engine>> = vec![
        Box::new(CpuEngine::new(setup.clone(), &init).unwrap()),
        Box::new(GpuEngine::new(&gpu(), setup, &init, 8).unwrap()),
    ];
    let x = random(5, 3, 1.0, 0);
    let wide = random(5, 2, 1.0, 0);
    let classes = [0u32, 1, 2, 3, 0];
    let out_of_range = [0u32, 1, 4, 3, 0];
    let dense = random(5, 4, 1.0, 0);
    let narrow = random(5, 3, 1.0, 0);
    let big = random(9, 3, 1.0, 0);
    let big_classes = [0u32; 9];
    for engine in &mut engines {
        let name = engine.describe();
        assert!(
            matches!(engine.last_loss(), Err(Error::NoStepYet)),
            "{name}"
        );
        let cases: Vec<(Batch<'_>, &str)> = vec![
            (
                Batch::new(wide.view(), TargetsView::Classes(&classes)),
                "expected [rows, 3] (the first layer's input width), got [5, 2]",
            ),
            (
                Batch::new(x.view(), TargetsView::Classes(&out_of_range)),
                "class index 4 at row 2 is out of range for 4 outputs",
            ),
            (
                Batch::new(x.view(), TargetsView::Classes(&classes[..3])),
                "3 class indices for 5 feature rows",
            ),
            (
                Batch::new(x.view(), TargetsView::Dense(narrow.view())),
                "targets have shape [5, 3] but the batch needs [5, 4]",
            ),
            (
                Batch::new(x.slice(ndarray::s![..0, ..]), TargetsView::Classes(&[])),
                "empty batch",
            ),
        ];
        for (batch, expected) in cases {
            let text = message(engine.step(&batch));
            assert!(
                text.contains(expected),
                "{name}: {text:?} should contain {expected:?}"
            );
        }
        engine
            .step(&Batch::new(x.view(), TargetsView::Dense(dense.view())))
            .unwrap();
        assert!(engine.last_loss().unwrap().is_finite());
    }
    // Only the GPU engine has a fixed maximum batch.
    let text =
        message(engines[1].step(&Batch::new(big.view(), TargetsView::Classes(&big_classes))));
    assert!(
        text.contains("batch of 9 rows exceeds this engine's maximum batch size of 8"),
        "{text}"
    );
    let mse = Setup {
        model,
        loss: Loss::Mse,
        optimizer: Optimizer::Sgd(Sgd::default()),
    };
    let mut cpu = CpuEngine::new(mse, &init).unwrap();
    let text = message(cpu.step(&Batch::new(x.view(), TargetsView::Classes(&classes))));
    assert!(
        text.contains("mse needs float targets of width 4, not class indices"),
        "{text}"
    );
}

#[test]
fn a_tensor_over_the_binding_limit_is_named_with_its_size_and_the_limit() {
    let limits = downhill::wgpu::Limits {
        max_storage_buffer_binding_size: 1 << 20,
        ..Default::default()
    };
    let ctx = GpuContext::new(&AdapterRequest {
        limits: Some(limits),
        ..Default::default()
    })
    .unwrap();
    assert_eq!(ctx.limits().max_storage_buffer_binding_size, 1 << 20);
    let model =
        ModelSpec::from_widths(&[512, 1024, 2], Activation::Relu, Activation::Identity).unwrap();
    let setup = Setup {
        model: model.clone(),
        loss: Loss::Mse,
        optimizer: Optimizer::Sgd(Sgd::default()),
    };
    // A weight matrix over the limit is split into blocks of rows; one row over it is refused.
    GpuEngine::new(&ctx, setup.clone(), &Parameters::zeros(&model), 4).unwrap();
    let wide =
        ModelSpec::from_widths(&[300_000, 2], Activation::Relu, Activation::Identity).unwrap();
    let text = message(GpuEngine::new(
        &ctx,
        Setup {
            model: wide.clone(),
            ..setup.clone()
        },
        &Parameters::zeros(&wide),
        1,
    ));
    assert!(
        text.contains("tensor `one row of layers.0.weight` needs 1200000 bytes, over this device's max_storage_buffer_binding_size of 1048576 bytes; use narrower layers"),
        "{text}"
    );
    // Activations count too: a batch of 1024 rows of width 1024 is 4 MiB.
    let small = ModelSpec::from_widths(&[4, 1024], Activation::Relu, Activation::Identity).unwrap();
    let setup = Setup {
        model: small.clone(),
        ..setup
    };
    let text = message(GpuEngine::new(
        &ctx,
        setup,
        &Parameters::zeros(&small),
        1024,
    ));
    assert!(
        text.contains("pre-activations of layer 0 [1024, 1024]") && text.contains("smaller batch"),
        "{text}"
    );
}

#[test]
fn no_matching_adapter_says_how_to_get_one() {
    let text = message(GpuContext::new(&AdapterRequest {
        name: Some("no-such-adapter-anywhere".into()),
        ..Default::default()
    }));
    assert!(
        text.contains("with a name containing `no-such-adapter-anywhere`"),
        "{text}"
    );
    // Installing Mesa's Vulkan driver is the advice only where no Vulkan adapter exists.
    let vulkan = downhill::tools::list_devices()
        .iter()
        .any(|d| d.backend == "Vulkan");
    assert_eq!(text.contains("mesa-vulkan-drivers"), !vulkan, "{text}");
    assert!(text.contains("adapters present:"), "{text}");
}

#[test]
fn adapters_can_be_chosen_by_name_and_backend() {
    let default = gpu();
    let info = default.info().clone();
    let fragment: String = info.name.chars().take(6).collect();
    let chosen = GpuContext::new(&AdapterRequest {
        backend: Some(info.backend),
        name: Some(fragment.to_uppercase()),
        ..Default::default()
    })
    .unwrap();
    assert_eq!(chosen.info().name, info.name);
    assert_eq!(chosen.info().backend, info.backend);
    // By position in `downhill devices`' list.
    let listed = downhill::tools::list_devices();
    let first = GpuContext::new(&AdapterRequest {
        index: Some(0),
        ..Default::default()
    })
    .unwrap();
    assert_eq!(first.info().name, listed[0].name);
    let beyond = GpuContext::new(&AdapterRequest {
        index: Some(listed.len()),
        ..Default::default()
    });
    assert!(message(beyond).contains(&format!("at index {}", listed.len())));
}

#[test]
fn predict_checks_the_feature_width() {
    let model =
        ModelSpec::from_widths(&[3, 2], Activation::Identity, Activation::Identity).unwrap();
    let setup = Setup {
        model: model.clone(),
        loss: Loss::Mse,
        optimizer: Optimizer::Sgd(Sgd::default()),
    };
    let mut engine = GpuEngine::new(&gpu(), setup, &Parameters::zeros(&model), 2).unwrap();
    let text = message(engine.predict(0, array![[1.0f32, 2.0]].view()));
    assert!(
        text.contains("expected [rows, 3] (the first layer's input width), got [1, 2]"),
        "{text}"
    );
    // More rows than the engine's maximum batch are predicted in chunks.
    let x = random(5, 3, 1.0, 1);
    assert_eq!(engine.predict(0, x.view()).unwrap().dim(), (5, 2));
}

#[test]
fn a_lost_device_is_reported_as_an_error_not_a_hang_or_abort() {
    let ctx = gpu();
    let setup = Setup {
        model: ModelSpec::from_widths(&[4, 8, 3], Activation::Relu, Activation::Identity).unwrap(),
        loss: Loss::CrossEntropy,
        optimizer: Optimizer::Adam(Adam::default()),
    };
    let init = Parameters::init(&setup.model, 0);
    let mut engine = GpuEngine::new(&ctx, setup, &init, 8).unwrap();
    let x = ndarray::Array2::from_elem((8, 4), 0.5f32);
    let y = vec![0u32, 1, 2, 0, 1, 2, 0, 1];
    let batch = Batch::new(x.view(), TargetsView::Classes(&y));
    engine.step(&batch).unwrap();
    engine.synchronize().unwrap();
    ctx.device().destroy();
    let step = engine.step(&batch).and_then(|()| engine.synchronize());
    let read = engine.parameters(0).map(|_| ());
    for result in [step, read] {
        let text = result.expect_err("a lost device must fail").to_string();
        assert!(
            text.starts_with("GPU error while")
                && text.contains("the GPU device was lost (Destroyed)")
                && text.contains("--resume"),
            "{text}"
        );
    }
    // A new engine on the lost device fails the same way.
    let again = GpuEngine::new(&ctx, engine.setup(0).clone(), &init, 8);
    assert!(message(again).contains("device was lost"));
}
