//! `--norm layer` end to end: a plain PyTorch-layout start with norms, training on both engines,
//! the saved model's tensors and metadata, `eval` of it, and the refusals.

mod common;

use std::path::Path;

use common::cli::{downhill, npy_files, ok, s};
use downhill::checkpoint::load_model;
use downhill::{Activation, Layer, ModelSpec, Norm, Parameters};

/// Writes `params` as a plain safetensors file: tensors only, no downhill metadata.
fn write_plain(path: &Path, params: &Parameters) {
    let bytes: Vec<(String, Vec<usize>, Vec<u8>)> = params
        .named_tensors()
        .iter()
        .map(|t| {
            (
                t.name.clone(),
                t.shape.clone(),
                t.values.iter().flat_map(|v| v.to_le_bytes()).collect(),
            )
        })
        .collect();
    let views: Vec<_> = bytes
        .iter()
        .map(|(n, shape, b)| {
            (
                n.clone(),
                safetensors::tensor::TensorView::new(safetensors::Dtype::F32, shape.clone(), b)
                    .unwrap(),
            )
        })
        .collect();
    std::fs::write(path, safetensors::serialize(views, None).unwrap()).unwrap();
}

/// The value of `key` in `out`'s summary lines (`key value`).
fn summary(out: &str, key: &str) -> String {
    out.lines()
        .find_map(|l| l.strip_prefix(&format!("{key} ")))
        .unwrap_or_else(|| panic!("no {key} in {out:?}"))
        .to_string()
}

#[test]
fn layer_norm_trains_from_a_plain_start_on_both_engines_and_saves_its_norms() {
    let dir = tempfile::tempdir().unwrap();
    let (x, y) = npy_files(dir.path());
    let model = ModelSpec::mlp(
        &[5, 16, 3],
        Activation::Relu,
        Activation::Identity,
        Norm::Layer { eps: 1e-5 },
        0.0,
    )
    .unwrap();
    // A start whose norms are not PyTorch's 1 and 0, so that loading them shows.
    let mut start = Parameters::init(&model, 3);
    start
        .tensor_mut("norms.0.weight")
        .unwrap()
        .iter_mut()
        .enumerate()
        .for_each(|(i, v)| *v = 0.5 + 0.1 * i as f32);
    let plain = dir.path().join("plain.safetensors");
    write_plain(&plain, &start);
    let mut losses = Vec::new();
    for device in ["cpu", "gpu"] {
        let saved = dir.path().join(format!("{device}.safetensors"));
        let out = ok(&[
            "train",
            "--features",
            s(&x),
            "--targets",
            s(&y),
            "--layers",
            "5,16,3",
            "--norm",
            "layer",
            "--init",
            s(&plain),
            "--epochs",
            "2",
            "--batch-size",
            "16",
            "--device",
            device,
            "--save",
            s(&saved),
        ]);
        losses.push(summary(&out, "train_loss").parse::<f64>().unwrap());
        let checkpoint = load_model(&saved).unwrap();
        assert_eq!(
            checkpoint.model, model,
            "{device}: the architecture read back"
        );
        let names: Vec<_> = checkpoint
            .parameters
            .named_tensors()
            .iter()
            .map(|t| t.name.clone())
            .collect();
        assert_eq!(
            names,
            [
                "layers.0.weight",
                "layers.0.bias",
                "norms.0.weight",
                "norms.0.bias",
                "layers.1.weight",
                "layers.1.bias"
            ]
        );
        assert!(
            matches!(checkpoint.model.layers()[1], Layer::LayerNorm(n) if n.width == 16),
            "{:?}",
            checkpoint.model
        );
        // eval reads the whole model back, its norms included.
        let eval = ok(&[
            "eval",
            "--model",
            s(&saved),
            "--features",
            s(&x),
            "--targets",
            s(&y),
        ]);
        assert!(eval.contains("loss "), "{eval}");
    }
    let (cpu, gpu) = (losses[0], losses[1]);
    assert!(
        (cpu - gpu).abs() <= 1e-4 * cpu.abs().max(1.0),
        "the last loss is {cpu} on the CPU but {gpu} on the GPU"
    );
}

#[test]
fn norm_flags_that_do_not_fit_are_refused_or_warned_about() {
    let dir = tempfile::tempdir().unwrap();
    let (x, y) = npy_files(dir.path());
    let data = ["--features", s(&x), "--targets", s(&y), "--epochs", "1"];
    let refused = |extra: &[&str]| {
        let out = downhill(&[&["train"], &data[..], extra].concat());
        assert!(!out.status.success(), "{extra:?} was accepted");
        String::from_utf8_lossy(&out.stderr).into_owned()
    };
    let text = refused(&["--layers", "5,3", "--norm", "layer"]);
    assert!(text.contains("a norm follows each hidden layer"), "{text}");
    let text = refused(&["--norm", "layer", "--norm-eps", "0"]);
    assert!(text.contains("--norm-eps 0"), "{text}");
    // A plain file with norms is refused by a model without them, saying what to pass.
    let model = ModelSpec::mlp(
        &[5, 16, 3],
        Activation::Relu,
        Activation::Identity,
        Norm::Layer { eps: 1e-5 },
        0.0,
    )
    .unwrap();
    let plain = dir.path().join("plain.safetensors");
    write_plain(&plain, &Parameters::init(&model, 1));
    let text = refused(&["--init", s(&plain)]);
    assert!(
        text.contains("`norms.0.bias` that the model does not have")
            && text.contains("--norm layer"),
        "{text}"
    );
    // --norm-eps without a norm is ignored with a warning.
    let out = downhill(&[&["train"], &data[..], &["--norm-eps", "1e-3"]].concat());
    assert!(out.status.success());
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr.contains("warning: --norm-eps does not apply without --norm and is ignored"),
        "{stderr}"
    );
}
