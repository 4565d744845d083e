//! `downhill predict` through the binary: what it writes for each kind of model (dtype and shape
//! of the `.npy`, columns of the CSV), classes that agree with `eval`, probabilities, refusals;
//! and the README's PyTorch module loading checkpoints strictly and giving `predict`'s outputs.

mod common;

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use common::torch::require_torch;
use downhill::Targets;
use downhill::data::{builtin, npy};
use ndarray::{Array2, Axis};

fn run(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_downhill"))
        .args(args)
        .env("XDG_RUNTIME_DIR", std::env::temp_dir())
        .output()
        .expect("the downhill binary runs")
}

fn ok(args: &[&str]) -> String {
    let out = run(args);
    assert!(
        out.status.success(),
        "downhill {args:?} failed:\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout).unwrap()
}

/// Runs `args`, expecting failure, and returns standard error.
fn refused(args: &[&str]) -> String {
    let out = run(args);
    let stderr = String::from_utf8_lossy(&out.stderr).into_owned();
    assert_eq!(out.status.code(), Some(1), "downhill {args:?}: {stderr}");
    assert!(!stderr.contains("panicked"), "{stderr}");
    stderr
}

fn s(p: &Path) -> &str {
    p.to_str().unwrap()
}

/// The dtype and shape an `.npy` file declares, read from its header's text.
fn header(path: &Path) -> (String, Vec<usize>) {
    let bytes = std::fs::read(path).unwrap();
    assert_eq!(&bytes[..8], b"\x93NUMPY\x01\x00", "{}", path.display());
    let len = usize::from(u16::from_le_bytes([bytes[8], bytes[9]]));
    let dict = std::str::from_utf8(&bytes[10..10 + len]).unwrap();
    let after = |key: &str| &dict[dict.find(key).unwrap() + key.len()..];
    let descr = after("'descr': '").split('\'').next().unwrap().to_string();
    let shape = after("'shape': (")
        .split(')')
        .next()
        .unwrap()
        .split(',')
        .map(str::trim)
        .filter(|d| !d.is_empty())
        .map(|d| d.parse().unwrap())
        .collect();
    assert!(
        dict.contains("'fortran_order': False"),
        "C order expected: {dict}"
    );
    (descr, shape)
}

/// Every value of an `.npy` file, in order, as f64.
fn values(path: &Path) -> Vec<f64> {
    let file = npy::Npy::read(path).unwrap();
    let n = file.header.elements().unwrap();
    (0..n)
        .map(|i| npy::value(&file.data, &file.header, i))
        .collect()
}

/// The lines of a CSV file: the header, then the rows.
fn csv(path: &Path) -> Vec<String> {
    std::fs::read_to_string(path)
        .unwrap()
        .lines()
        .map(str::to_string)
        .collect()
}

/// Writes features and dense targets as float32 `.npy` files in `dir`.
fn write_data(dir: &Path, features: &Array2<f32>, targets: &Array2<f32>) -> (PathBuf, PathBuf) {
    let (x, y) = (dir.join("x.npy"), dir.join("y.npy"));
    npy::write(&x, features).unwrap();
    npy::write(&y, targets).unwrap();
    (x, y)
}

/// Rows of `linear` data whose targets are at least `margin` from 0, with 0/1 labels for the
/// sign of each of `outputs` linear functions (seeds `seed`, `seed + 1`, ...): separable by a
/// margin.
fn separable(rows: usize, outputs: usize, seed: u64) -> (Array2<f32>, Array2<f32>) {
    let (data, _) = builtin::linear(rows, 3, 0.0, seed);
    let scores: Vec<Vec<f32>> = (0..outputs as u64)
        .map(|k| {
            let w = builtin::linear(1, 3, 0.0, seed + k).1;
            data.features.dot(&w.0).mapv(|v| v + w.1).to_vec()
        })
        .collect();
    let keep: Vec<usize> = (0..rows)
        .filter(|&r| scores.iter().all(|s| s[r].abs() > 0.2))
        .collect();
    let features = data.features.select(Axis(0), &keep);
    let labels = Array2::from_shape_fn((keep.len(), outputs), |(i, k)| {
        f32::from(u8::from(scores[k][keep[i]] > 0.0))
    });
    (features, labels)
}

/// Trains a model on `x`/`y` on the CPU engine with `flags` and returns its path.
fn train(dir: &Path, x: &Path, y: &Path, flags: &[&str]) -> PathBuf {
    let model = dir.join("model.safetensors");
    let common = [
        "train",
        "--features",
        s(x),
        "--targets",
        s(y),
        "--device",
        "cpu",
        "--quiet",
        "--save",
        s(&model),
    ];
    ok(&[&common[..], flags].concat());
    model
}

/// `downhill predict` of `model` on `x` to `output` with `flags`.
fn predict(model: &Path, x: &Path, output: &Path, flags: &[&str]) {
    let common = [
        "predict",
        "--model",
        s(model),
        "--features",
        s(x),
        "--output",
        s(output),
        "--device",
        "cpu",
    ];
    ok(&[&common[..], flags].concat());
}

#[test]
fn one_output_bce_classes_threshold_the_logit_and_agree_with_eval() {
    let dir = tempfile::tempdir().unwrap();
    let (features, labels) = separable(400, 1, 5);
    let n = features.nrows();
    let (x, y) = write_data(dir.path(), &features, &labels);
    let model = train(
        dir.path(),
        &x,
        &y,
        &[
            "--loss",
            "bce-logits",
            "--layers",
            "3,8,1",
            "--standardize",
            "--lr",
            "0.05",
            "--epochs",
            "20",
        ],
    );
    let eval: serde_json::Value = serde_json::from_str(&ok(&[
        "eval",
        "--model",
        s(&model),
        "--features",
        s(&x),
        "--targets",
        s(&y),
        "--device",
        "cpu",
        "--format",
        "json",
    ]))
    .unwrap();
    let eval_accuracy = eval["accuracy"].as_f64().unwrap();
    assert!(eval_accuracy > 0.9, "a separable problem: {eval}");

    let path = |name: &str| dir.path().join(name);
    predict(&model, &x, &path("classes.npy"), &["--classes"]);
    assert_eq!(header(&path("classes.npy")), ("<i8".into(), vec![n]));
    let classes = values(&path("classes.npy"));
    let right = classes
        .iter()
        .zip(labels.column(0))
        .filter(|(c, t)| **c == f64::from(**t))
        .count();
    assert_eq!(
        right,
        (eval_accuracy * n as f64).round() as usize,
        "predict --classes must count the rows eval's accuracy counts"
    );
    assert!(classes.contains(&0.0) && classes.contains(&1.0));

    predict(&model, &x, &path("logits.npy"), &[]);
    assert_eq!(header(&path("logits.npy")), ("<f4".into(), vec![n]));
    let logits = values(&path("logits.npy"));
    for (c, z) in classes.iter().zip(&logits) {
        assert_eq!(*c, f64::from(u8::from(*z > 0.0)), "logit {z}");
    }
    predict(&model, &x, &path("p.npy"), &["--proba"]);
    assert_eq!(header(&path("p.npy")), ("<f4".into(), vec![n]));
    for (p, z) in values(&path("p.npy")).iter().zip(&logits) {
        assert!(
            (p - 1.0 / (1.0 + (-z).exp())).abs() < 1e-6,
            "{p} for logit {z}"
        );
    }

    for (flags, column) in [
        (&[][..], "output"),
        (&["--classes"], "class"),
        (&["--proba"], "p"),
    ] {
        let file = path(&format!("{column}.csv"));
        predict(&model, &x, &file, flags);
        let lines = csv(&file);
        assert_eq!(lines[0], column, "{flags:?}");
        assert_eq!(lines.len(), n + 1);
        let first: f64 = lines[1].parse().unwrap();
        let expected = match column {
            "output" => logits[0],
            "class" => classes[0],
            _ => 1.0 / (1.0 + (-logits[0]).exp()),
        };
        assert!(
            (first - expected).abs() < 1e-6,
            "{column}: {first} {expected}"
        );
    }
}

#[test]
fn cross_entropy_writes_outputs_classes_and_probabilities_that_sum_to_one() {
    let dir = tempfile::tempdir().unwrap();
    let data = builtin::blobs(120, 5, 3, 2);
    let Targets::Classes(c) = &data.targets else {
        unreachable!()
    };
    let targets = Array2::from_shape_fn((c.len(), 1), |(r, _)| c[r] as f32);
    let (x, _) = write_data(dir.path(), &data.features, &targets);
    let y = dir.path().join("classes.npy");
    let classes: Vec<i64> = c.iter().map(|&c| i64::from(c)).collect();
    npy::write_int_vector(&y, &classes).unwrap();
    let model = train(dir.path(), &x, &y, &["--layers", "5,16,3", "--epochs", "3"]);
    let path = |name: &str| dir.path().join(name);

    predict(&model, &x, &path("out.npy"), &[]);
    assert_eq!(header(&path("out.npy")), ("<f4".into(), vec![120, 3]));
    let outputs = values(&path("out.npy"));
    predict(&model, &x, &path("classes_out.npy"), &["--classes"]);
    assert_eq!(header(&path("classes_out.npy")), ("<i8".into(), vec![120]));
    let predicted = values(&path("classes_out.npy"));
    predict(&model, &x, &path("p.npy"), &["--proba"]);
    assert_eq!(header(&path("p.npy")), ("<f4".into(), vec![120, 3]));
    let p = values(&path("p.npy"));
    for row in 0..120 {
        let (z, q) = (&outputs[3 * row..3 * row + 3], &p[3 * row..3 * row + 3]);
        let sum: f64 = q.iter().sum();
        assert!((sum - 1.0).abs() < 1e-6, "row {row}: {q:?} sums to {sum}");
        let argmax = |v: &[f64]| (0..3).fold(0, |b, j| if v[j] > v[b] { j } else { b });
        assert_eq!(predicted[row], argmax(z) as f64, "row {row}");
        assert_eq!(argmax(q), argmax(z), "row {row}");
        // softmax: p_j / p_0 = exp(z_j − z_0).
        assert!(
            ((q[1] / q[0]).ln() - (z[1] - z[0])).abs() < 1e-4,
            "row {row}"
        );
    }

    predict(&model, &x, &path("out.csv"), &[]);
    assert_eq!(csv(&path("out.csv"))[0], "output_0,output_1,output_2");
    predict(&model, &x, &path("p.csv"), &["--proba"]);
    let lines = csv(&path("p.csv"));
    assert_eq!(lines[0], "p_0,p_1,p_2");
    let sum: f64 = lines[1].split(',').map(|v| v.parse::<f64>().unwrap()).sum();
    assert!((sum - 1.0).abs() < 1e-6, "{}", lines[1]);
    predict(&model, &x, &path("c.csv"), &["--classes"]);
    let lines = csv(&path("c.csv"));
    assert_eq!((lines[0].as_str(), lines.len()), ("class", 121));
    assert_eq!(lines[1].parse::<f64>().unwrap(), predicted[0]);
}

#[test]
fn several_bce_outputs_are_labels_one_per_output() {
    let dir = tempfile::tempdir().unwrap();
    let (features, labels) = separable(300, 3, 11);
    let n = features.nrows();
    let (x, y) = write_data(dir.path(), &features, &labels);
    let model = train(
        dir.path(),
        &x,
        &y,
        &[
            "--loss",
            "bce-logits",
            "--layers",
            "3,3",
            "--epochs",
            "5",
            "--lr",
            "0.05",
        ],
    );
    let path = |name: &str| dir.path().join(name);
    predict(&model, &x, &path("out.npy"), &[]);
    assert_eq!(header(&path("out.npy")), ("<f4".into(), vec![n, 3]));
    predict(&model, &x, &path("labels.npy"), &["--classes"]);
    assert_eq!(header(&path("labels.npy")), ("<i8".into(), vec![n, 3]));
    predict(&model, &x, &path("p.npy"), &["--proba"]);
    assert_eq!(header(&path("p.npy")), ("<f4".into(), vec![n, 3]));
    let (z, l, p) = (
        values(&path("out.npy")),
        values(&path("labels.npy")),
        values(&path("p.npy")),
    );
    for i in 0..z.len() {
        assert_eq!(l[i], f64::from(u8::from(z[i] > 0.0)), "entry {i}");
        assert!(
            (p[i] - 1.0 / (1.0 + (-z[i]).exp())).abs() < 1e-6,
            "entry {i}"
        );
    }
    predict(&model, &x, &path("labels.csv"), &["--classes"]);
    let lines = csv(&path("labels.csv"));
    assert_eq!(lines[0], "class_0,class_1,class_2");
    assert_eq!(lines[1], format!("{},{},{}", l[0], l[1], l[2]));
}

#[test]
fn regression_writes_one_value_per_row_and_refuses_classes_and_probabilities() {
    let dir = tempfile::tempdir().unwrap();
    let (data, _) = builtin::linear(80, 4, 0.05, 3);
    let Targets::Dense(targets) = &data.targets else {
        unreachable!()
    };
    let (x, y) = write_data(dir.path(), &data.features, targets);
    let model = train(dir.path(), &x, &y, &["--layers", "4,1", "--epochs", "2"]);
    let path = |name: &str| dir.path().join(name);
    predict(&model, &x, &path("out.npy"), &[]);
    assert_eq!(header(&path("out.npy")), ("<f4".into(), vec![80]));
    predict(&model, &x, &path("out.csv"), &[]);
    assert_eq!(csv(&path("out.csv"))[0], "output");

    let base = [
        "predict",
        "--model",
        s(&model),
        "--features",
        s(&x),
        "--device",
        "cpu",
        "--output",
    ];
    for flag in ["--proba", "--classes"] {
        let err = refused(&[&base[..], &[s(&path("no.npy")), flag]].concat());
        assert!(
            err.contains(flag) && err.contains("mse") && err.contains(&format!("drop {flag}")),
            "{err}"
        );
    }
    let err = refused(&[&base[..], &[s(&path("no.npy")), "--proba", "--classes"]].concat());
    assert!(err.contains("--classes and --proba"), "{err}");
    let err = refused(&[&base[..], &[s(&path("out.txt"))]].concat());
    assert!(err.contains(".npy or .csv"), "{err}");
    assert!(!path("no.npy").exists() && !path("out.txt").exists());
}

/// The Python code between the README's `pytorch-example` markers, without its fence.
fn readme_snippet() -> String {
    let readme = std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/README.md"))
        .expect("README.md is readable");
    let (begin, end) = (
        "<!-- pytorch-example:begin -->",
        "<!-- pytorch-example:end -->",
    );
    let start = readme
        .find(begin)
        .unwrap_or_else(|| panic!("README.md has no {begin} marker"));
    let stop = readme
        .find(end)
        .unwrap_or_else(|| panic!("README.md has no {end} marker"));
    let block = readme[start + begin.len()..stop].trim();
    block
        .strip_prefix("```python")
        .and_then(|b| b.strip_suffix("```"))
        .unwrap_or_else(|| panic!("the README's PyTorch example is not one ```python block"))
        .to_string()
}

/// Training targets: class indices or values.
#[derive(Clone, Copy)]
enum Y<'a> {
    Classes(&'a [i64]),
    Dense(&'a Array2<f32>),
}

#[test]
fn readme_pytorch_module_loads_checkpoints_strictly_and_matches_predict() {
    require_torch();
    let snippet = readme_snippet();
    let blobs = builtin::blobs(90, 6, 3, 7);
    let Targets::Classes(c) = &blobs.targets else {
        unreachable!()
    };
    let blob_classes: Vec<i64> = c.iter().map(|&c| i64::from(c)).collect();
    let (binary, binary_labels) = separable(150, 1, 13);
    let (linear, _) = builtin::linear(90, 6, 0.1, 4);
    let Targets::Dense(linear_targets) = &linear.targets else {
        unreachable!()
    };
    let linear_targets = linear_targets.mapv(|v| 5.0 * v + 20.0);
    let classes = Y::Classes(&blob_classes);
    let cases: [(&str, &Array2<f32>, Y<'_>, &[&str]); 10] = [
        (
            "relu, cross-entropy, standardised features",
            &blobs.features,
            classes,
            &["--layers", "6,16,8,3", "--standardize"],
        ),
        (
            "leaky_relu(0.2), cross-entropy",
            &blobs.features,
            classes,
            &["--layers", "6,16,3", "--activation", "leaky_relu(0.2)"],
        ),
        (
            "gelu, one bce-logits output",
            &binary,
            Y::Dense(&binary_labels),
            &[
                "--layers",
                "3,16,1",
                "--activation",
                "gelu",
                "--loss",
                "bce-logits",
            ],
        ),
        (
            "tanh, mse, standardised features and targets",
            &linear.features,
            Y::Dense(&linear_targets),
            &[
                "--layers",
                "6,8,1",
                "--activation",
                "tanh",
                "--standardize",
                "--standardize-targets",
            ],
        ),
        (
            "sigmoid, mse",
            &linear.features,
            Y::Dense(&linear_targets),
            &["--layers", "6,8,8,1", "--activation", "sigmoid"],
        ),
        (
            "relu with layer norms, cross-entropy, standardised features",
            &blobs.features,
            classes,
            &["--layers", "6,16,8,3", "--norm", "layer", "--standardize"],
        ),
        (
            "gelu with layer norms and dropout, cross-entropy",
            &blobs.features,
            classes,
            &[
                "--layers",
                "6,16,8,3",
                "--activation",
                "gelu",
                "--norm",
                "layer",
                "--dropout",
                "0.2",
            ],
        ),
        (
            "relu with batch norms, cross-entropy, standardised features",
            &blobs.features,
            classes,
            &["--layers", "6,16,8,3", "--norm", "batch", "--standardize"],
        ),
        (
            "sigmoid with a batch norm of momentum 0.3 and dropout, mse",
            &linear.features,
            Y::Dense(&linear_targets),
            &[
                "--layers",
                "6,8,1",
                "--activation",
                "sigmoid",
                "--norm",
                "batch",
                "--norm-momentum",
                "0.3",
                "--dropout",
                "0.1",
            ],
        ),
        (
            "tanh with a layer norm of eps 1e-3, mse",
            &linear.features,
            Y::Dense(&linear_targets),
            &[
                "--layers",
                "6,8,1",
                "--activation",
                "tanh",
                "--norm",
                "layer",
                "--norm-eps",
                "1e-3",
            ],
        ),
    ];
    for (name, features, targets, flags) in cases {
        let dir = tempfile::tempdir().unwrap();
        let path = |name: &str| dir.path().join(name);
        // The names the README's example reads.
        let x = path("features.npy");
        npy::write(&x, features).unwrap();
        let y = path("targets.npy");
        match targets {
            Y::Classes(c) => npy::write_int_vector(&y, c).unwrap(),
            Y::Dense(d) => npy::write(&y, d).unwrap(),
        }
        let model = train(dir.path(), &x, &y, &[flags, &["--epochs", "5"]].concat());
        assert_eq!(model, path("model.safetensors"));
        predict(&model, &x, &path("downhill.npy"), &[]);

        let script = format!("{snippet}\nnp.save(\"torch.npy\", outputs.numpy())\n");
        std::fs::write(path("example.py"), script).unwrap();
        let out = Command::new("python3")
            .arg("example.py")
            .current_dir(dir.path())
            .output()
            .unwrap();
        assert!(
            out.status.success(),
            "{name}: the README's PyTorch example failed:\n{}",
            String::from_utf8_lossy(&out.stderr)
        );
        let (ours, theirs) = (path("downhill.npy"), path("torch.npy"));
        let (h_ours, h_theirs) = (header(&ours), header(&theirs));
        assert_eq!(
            h_ours.1.iter().product::<usize>(),
            h_theirs.1.iter().product::<usize>()
        );
        let (a, b) = (values(&ours), values(&theirs));
        for (i, (a, b)) in a.iter().zip(&b).enumerate() {
            assert!(
                (a - b).abs() <= 1e-5 * a.abs().max(1.0),
                "{name}: output {i} is {a} from downhill predict but {b} from PyTorch"
            );
        }
    }
}
