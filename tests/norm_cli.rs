//! `--norm` end to end: a plain PyTorch-layout start with norms, training on both engines, the
//! saved model's tensors and metadata, `eval` of it, `predict` against the equations in f64,
//! and the refusals and warnings.

mod common;

use common::cli::{downhill, npy_files, ok, s, write_plain};
use downhill::checkpoint::load_model;
use downhill::{Activation, Layer, ModelSpec, Norm, Parameters};

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
    let text = refused(&["--layers", "5,3", "--dropout", "0.5"]);
    assert!(text.contains("dropout follows each hidden layer"), "{text}");
    let text = refused(&["--norm", "layer", "--norm-eps", "0"]);
    assert!(text.contains("--norm-eps 0"), "{text}");
    let text = refused(&["--norm", "batch", "--norm-momentum", "1.5"]);
    assert!(text.contains("--norm-momentum 1.5"), "{text}");
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
    // A norm's flag that does not apply is ignored with a warning.
    for (extra, warning) in [
        (
            &["--norm-eps", "1e-3"][..],
            "warning: --norm-eps does not apply without --norm and is ignored",
        ),
        (
            &["--norm", "layer", "--norm-momentum", "0.2"][..],
            "warning: --norm-momentum does not apply to --norm layer and is ignored",
        ),
    ] {
        let out = downhill(&[&["train"], &data[..], extra].concat());
        assert!(out.status.success());
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert!(stderr.contains(warning), "{stderr}");
    }
}

/// A saved model with norms and dropout evaluated by the equations in f64 from its own tensors
/// (each `Linear`, then its norm with the running statistics or the row's, then ReLU; dropout
/// passing through, as in evaluation) gives `predict`'s outputs.
#[test]
fn predict_of_a_normed_model_is_the_equations_in_f64() {
    let dir = tempfile::tempdir().unwrap();
    let (x, y) = npy_files(dir.path());
    for norm in ["layer", "batch"] {
        let saved = dir.path().join(format!("{norm}.safetensors"));
        let predictions = dir.path().join(format!("{norm}.csv"));
        ok(&[
            "train",
            "--features",
            s(&x),
            "--targets",
            s(&y),
            "--layers",
            "5,12,7,3",
            "--norm",
            norm,
            "--dropout",
            "0.1",
            "--epochs",
            "3",
            "--batch-size",
            "16",
            "--device",
            "cpu",
            "--save",
            s(&saved),
        ]);
        ok(&[
            "predict",
            "--model",
            s(&saved),
            "--features",
            s(&x),
            "--output",
            s(&predictions),
        ]);
        let model = load_model(&saved).unwrap();
        let tensor = |name: &str| -> Vec<f64> {
            let t = model.parameters.tensor(name).unwrap();
            t.values.iter().map(|&v| f64::from(v)).collect()
        };
        let features = downhill::data::builtin::blobs(150, 5, 3, 4).features;
        let csv = std::fs::read_to_string(&predictions).unwrap();
        for (row, line) in features.rows().into_iter().zip(csv.lines().skip(1)) {
            let mut a: Vec<f64> = row.iter().map(|&v| f64::from(v)).collect();
            for i in 0..3 {
                let (w, b) = (
                    tensor(&format!("layers.{i}.weight")),
                    tensor(&format!("layers.{i}.bias")),
                );
                let inputs = a.len();
                let mut z: Vec<f64> = (0..b.len())
                    .map(|o| b[o] + (0..inputs).map(|j| w[o * inputs + j] * a[j]).sum::<f64>())
                    .collect();
                if i < 2 {
                    let (g, beta) = (
                        tensor(&format!("norms.{i}.weight")),
                        tensor(&format!("norms.{i}.bias")),
                    );
                    let n = z.len() as f64;
                    let (mean, var): (Vec<f64>, Vec<f64>) = if norm == "layer" {
                        let m = z.iter().sum::<f64>() / n;
                        let v = z.iter().map(|x| (x - m) * (x - m)).sum::<f64>() / n;
                        (vec![m; z.len()], vec![v; z.len()])
                    } else {
                        (
                            tensor(&format!("norms.{i}.running_mean")),
                            tensor(&format!("norms.{i}.running_var")),
                        )
                    };
                    for c in 0..z.len() {
                        let x_hat = (z[c] - mean[c]) / (var[c] + 1e-5).sqrt();
                        z[c] = (g[c] * x_hat + beta[c]).max(0.0);
                    }
                }
                a = z;
            }
            let got: Vec<f64> = line.split(',').map(|v| v.parse().unwrap()).collect();
            assert_eq!(got.len(), 3, "{line}");
            for (g, e) in got.iter().zip(&a) {
                assert!(
                    (g - e).abs() <= 1e-5 * e.abs().max(1.0),
                    "--norm {norm}: predict gives {g}, the equations {e}"
                );
            }
        }
    }
}

/// A checkpoint whose architecture names a norm with an ε that is no number above 0, or a
/// momentum outside [0, 1] (a file edited by hand), is refused with the entry, not evaluated
/// into NaN.
#[test]
fn a_checkpoint_with_an_impossible_norm_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    let (x, y) = npy_files(dir.path());
    let saved = dir.path().join("batch.safetensors");
    ok(&[
        "train",
        "--features",
        s(&x),
        "--targets",
        s(&y),
        "--layers",
        "5,8,3",
        "--norm",
        "batch",
        "--epochs",
        "1",
        "--device",
        "cpu",
        "--save",
        s(&saved),
    ]);
    let bytes = std::fs::read(&saved).unwrap();
    let (_, header) = safetensors::SafeTensors::read_metadata(&bytes).unwrap();
    let tensors = safetensors::SafeTensors::deserialize(&bytes).unwrap();
    for (key, bad) in [("eps", -1.0), ("momentum", 1.5)] {
        let mut meta = header.metadata().clone().unwrap();
        let mut architecture: serde_json::Value =
            serde_json::from_str(&meta["architecture"]).unwrap();
        architecture[1][key] = serde_json::json!(bad);
        meta.insert("architecture".into(), architecture.to_string());
        let views: Vec<_> = tensors.tensors().into_iter().collect();
        let edited = dir.path().join(format!("{key}.safetensors"));
        std::fs::write(&edited, safetensors::serialize(views, Some(meta)).unwrap()).unwrap();
        let out = downhill(&[
            "eval",
            "--model",
            s(&edited),
            "--features",
            s(&x),
            "--targets",
            s(&y),
        ]);
        assert!(!out.status.success(), "{key} {bad} was accepted");
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert!(
            stderr.contains("unreadable layer in its architecture") && stderr.contains(key),
            "{stderr}"
        );
    }
}
