//! Every kind of bad input the command line can be given, run through the real binary: each must
//! exit non-zero with a clear message and never panic. The same table, with the message each case
//! prints, is docs/errors.md; this test fails when that file no longer matches what the code says
//! (regenerate it with `DOWNHILL_BLESS=1 cargo test --test error_catalog`).

use std::path::Path;
use std::process::Command;

use downhill::checkpoint::{ModelCheckpoint, save_model};
use downhill::{Activation, Loss, ModelSpec, Parameters};

/// What a case must do.
enum Expect {
    /// Exit non-zero with an error containing this text.
    Refused(&'static str),
    /// Succeed, printing a line (warning or note) containing this text, or anything when empty.
    Accepted(&'static str),
}

struct Case {
    section: &'static str,
    case: &'static str,
    args: &'static str,
    expect: Expect,
}

fn case(section: &'static str, case: &'static str, args: &'static str, expect: Expect) -> Case {
    Case {
        section,
        case,
        args,
        expect,
    }
}

/// A version-1 `.npy` file with this header dictionary and data.
fn npy(dict: &str, data: &[u8]) -> Vec<u8> {
    let mut out = b"\x93NUMPY\x01\x00".to_vec();
    let header = format!("{dict:<117}\n");
    out.extend_from_slice(&(header.len() as u16).to_le_bytes());
    out.extend_from_slice(header.as_bytes());
    out.extend_from_slice(data);
    out
}

fn npy_dict(descr: &str, fortran: bool, shape: &str) -> String {
    let order = if fortran { "True" } else { "False" };
    format!("{{'descr': '{descr}', 'fortran_order': {order}, 'shape': {shape}, }}")
}

fn f32s(values: impl IntoIterator<Item = f32>) -> Vec<u8> {
    values.into_iter().flat_map(f32::to_le_bytes).collect()
}

fn i64s(values: impl IntoIterator<Item = i64>) -> Vec<u8> {
    values.into_iter().flat_map(i64::to_le_bytes).collect()
}

/// An IDX file: element type 0x08 (u8), these dimensions, this data.
fn idx(dims: &[u32], data: &[u8]) -> Vec<u8> {
    let mut out = vec![0, 0, 0x08, dims.len() as u8];
    for d in dims {
        out.extend_from_slice(&d.to_be_bytes());
    }
    out.extend_from_slice(data);
    out
}

/// A safetensors file of f32 (or f64 when `double`) tensors filled with 0.1.
fn safetensors(tensors: &[(&str, &[usize])], double: bool) -> Vec<u8> {
    let dtype = if double {
        safetensors::Dtype::F64
    } else {
        safetensors::Dtype::F32
    };
    let bytes: Vec<(String, Vec<u8>, Vec<usize>)> = tensors
        .iter()
        .map(|(name, shape)| {
            let n: usize = shape.iter().product();
            let data = if double {
                (0..n).flat_map(|_| 0.1f64.to_le_bytes()).collect()
            } else {
                f32s((0..n).map(|_| 0.1))
            };
            (name.to_string(), data, shape.to_vec())
        })
        .collect();
    let views: Vec<_> = bytes
        .iter()
        .map(|(n, b, s)| {
            (
                n.clone(),
                safetensors::tensor::TensorView::new(dtype, s.clone(), b).unwrap(),
            )
        })
        .collect();
    safetensors::serialize(views, None).unwrap()
}

/// The files the cases name, written into `dir`.
fn write_files(dir: &Path) {
    let rows = 12;
    let features = f32s((0..rows * 3).map(|i| (i % 7) as f32 * 0.5 - 1.0));
    let classes: Vec<i64> = (0..rows as i64).map(|i| i % 3).collect();
    let shape = format!("({rows}, 3)");
    let mut files: Vec<(&str, Vec<u8>)> = vec![
        ("x.npy", npy(&npy_dict("<f4", false, &shape), &features)),
        (
            "y.npy",
            npy(
                &npy_dict("<i8", false, &format!("({rows},)")),
                &i64s(classes.clone()),
            ),
        ),
        // NPY
        ("zip.npy", b"PK\x03\x04 this is a zip archive".to_vec()),
        (
            "v7.npy",
            b"\x93NUMPY\x07\x00\x10\x00{'descr': '<f4'".to_vec(),
        ),
        (
            "cut_header.npy",
            b"\x93NUMPY\x01\x00\xff\x00{'descr': '<f4', 'fo".to_vec(),
        ),
        (
            "cut_data.npy",
            npy(&npy_dict("<f4", false, &shape), &features[..20]),
        ),
        (
            "complex.npy",
            npy(
                &npy_dict("<c8", false, &shape),
                &[features.clone(), features.clone()].concat(),
            ),
        ),
        ("object.npy", npy(&npy_dict("|O", false, &shape), &features)),
        (
            "big_endian.npy",
            npy(
                &npy_dict(">f4", false, &shape),
                &features
                    .chunks(4)
                    .flat_map(|c| [c[3], c[2], c[1], c[0]])
                    .collect::<Vec<u8>>(),
            ),
        ),
        (
            "fortran.npy",
            npy(&npy_dict("<f4", true, &shape), &features),
        ),
        (
            "rank3.npy",
            npy(
                &npy_dict("<f4", false, &format!("({rows}, 3, 1)")),
                &features,
            ),
        ),
        (
            "huge.npy",
            npy(&npy_dict("<f4", false, "(1000000, 1000000)"), &features),
        ),
        // CSV
        ("empty.csv", Vec::new()),
        ("header_only.csv", b"a,b,label\n".to_vec()),
        ("ragged.csv", b"a,b,label\n1,2,0\n3,4\n5,6,1\n".to_vec()),
        ("text.csv", b"a,b,label\n1,2,0\n3,four,1\n5,6,1\n".to_vec()),
        (
            "nan.csv",
            b"a,b,label\n1,2,0\n3,NaN,1\n5,6,1\n7,8,0\n".to_vec(),
        ),
        (
            "inf.csv",
            b"a,b,label\n1,2,0\n3,4,1\ninf,6,1\n7,8,0\n".to_vec(),
        ),
        // IDX
        (
            "bad_magic.idx",
            b"\x01\x02\x08\x01\x00\x00\x00\x02ab".to_vec(),
        ),
        ("images.idx", idx(&[rows as u32, 2, 2], &[7u8; 48])),
        (
            "labels.idx",
            idx(&[rows as u32], &[0, 1, 2, 0, 1, 2, 0, 1, 2, 0, 1, 2]),
        ),
        ("labels_2d.idx", idx(&[rows as u32, 1, 1], &[1u8; 12])),
        ("labels_short.idx", idx(&[10], &[1u8; 10])),
        ("images_cut.idx", idx(&[rows as u32, 2, 2], &[7u8; 30])),
        // Targets
        (
            "y_out_of_range.npy",
            npy(
                &npy_dict("<i8", false, &format!("({rows},)")),
                &i64s(classes.iter().map(|&c| if c == 2 { 7 } else { c })),
            ),
        ),
        (
            "y_negative.npy",
            npy(
                &npy_dict("<i8", false, &format!("({rows},)")),
                &i64s(classes.iter().map(|&c| if c == 2 { -1 } else { c })),
            ),
        ),
        (
            "y_float.npy",
            npy(
                &npy_dict("<f4", false, &format!("({rows},)")),
                &f32s(classes.iter().map(|&c| c as f32 + 0.5)),
            ),
        ),
        (
            "y_wide.npy",
            npy(
                &npy_dict("<f4", false, &format!("({rows}, 4)")),
                &f32s((0..rows * 4).map(|i| (i % 2) as f32)),
            ),
        ),
        // Checkpoints
        (
            "garbage.safetensors",
            b"this is not a safetensors file at all".to_vec(),
        ),
        (
            "wrong_shape.safetensors",
            safetensors(
                &[
                    ("layers.0.weight", &[16, 64]),
                    ("layers.0.bias", &[16]),
                    ("layers.1.weight", &[10, 15]),
                    ("layers.1.bias", &[10]),
                ],
                false,
            ),
        ),
        (
            "f64.safetensors",
            safetensors(
                &[
                    ("layers.0.weight", &[16, 64]),
                    ("layers.0.bias", &[16]),
                    ("layers.1.weight", &[10, 16]),
                    ("layers.1.bias", &[10]),
                ],
                true,
            ),
        ),
    ];
    let model =
        ModelSpec::from_widths(&[64, 16, 10], Activation::Relu, Activation::Identity).unwrap();
    let good = dir.join("model.safetensors");
    save_model(
        &good,
        &ModelCheckpoint {
            parameters: Parameters::init(&model, 1),
            model,
            loss: Loss::CrossEntropy,
            standardizer: None,
            target_standardizer: None,
        },
    )
    .unwrap();
    let bytes = std::fs::read(&good).unwrap();
    files.push(("truncated.safetensors", bytes[..bytes.len() / 2].to_vec()));
    files.push(("missing.safetensors", without(&bytes, "layers.1.bias")));
    for (name, bytes) in files {
        std::fs::write(dir.join(name), bytes).unwrap();
    }
    // A training state of a 64-16-10 model on digits.
    let out = downhill(
        dir,
        "train --dataset digits --layers 64,16,10 --max-steps 2 --quiet --device cpu --checkpoint-every 1 --checkpoint state.safetensors",
    );
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
}

/// A safetensors file without one of its tensors, its metadata kept.
fn without(file: &[u8], dropped: &str) -> Vec<u8> {
    let (_, metadata) = safetensors::SafeTensors::read_metadata(file).unwrap();
    let tensors = safetensors::SafeTensors::deserialize(file).unwrap();
    let kept: Vec<_> = tensors
        .tensors()
        .into_iter()
        .filter(|(name, _)| name != dropped)
        .collect();
    safetensors::serialize(kept, metadata.metadata().clone()).unwrap()
}

fn downhill(dir: &Path, args: &str) -> std::process::Output {
    Command::new(env!("CARGO_BIN_EXE_downhill"))
        .args(args.split_whitespace())
        .current_dir(dir)
        .env("XDG_RUNTIME_DIR", std::env::temp_dir())
        .output()
        .expect("the downhill binary runs")
}

fn cases() -> Vec<Case> {
    use Expect::{Accepted, Refused};
    const NPY: &str = "NPY files";
    const CSV: &str = "CSV files";
    const IDX: &str = "IDX files";
    const TARGETS: &str = "Targets";
    const MODEL: &str = "Model and flags";
    const CKPT: &str = "Checkpoints";
    vec![
        case(
            NPY,
            "not a .npy file (bad magic)",
            "train --features zip.npy --targets y.npy",
            Refused("is neither a NumPy .npy file nor an IDX file"),
        ),
        case(
            NPY,
            "unsupported format version",
            "train --features v7.npy --targets y.npy",
            Refused("format version 7.0"),
        ),
        case(
            NPY,
            "header cut short",
            "train --features cut_header.npy --targets y.npy",
            Refused("is truncated"),
        ),
        case(
            NPY,
            "data cut short",
            "train --features cut_data.npy --targets y.npy",
            Refused("is truncated"),
        ),
        case(
            NPY,
            "complex dtype",
            "train --features complex.npy --targets y.npy",
            Refused("has dtype '<c8'"),
        ),
        case(
            NPY,
            "object dtype (pickled Python objects)",
            "train --features object.npy --targets y.npy",
            Refused("has dtype '|O'"),
        ),
        case(
            NPY,
            "big-endian floats",
            "train --features big_endian.npy --targets y.npy --epochs 1",
            Accepted(""),
        ),
        case(
            NPY,
            "Fortran (column-major) order",
            "train --features fortran.npy --targets y.npy --epochs 1",
            Accepted(""),
        ),
        case(
            NPY,
            "features of rank 3",
            "train --features rank3.npy --targets y.npy",
            Refused("[12, 3, 1]"),
        ),
        case(
            NPY,
            "header claiming 10^12 elements",
            "train --features huge.npy --targets y.npy",
            Refused("needs 4000000000000 bytes of data but the file has"),
        ),
        case(
            NPY,
            "file that does not exist",
            "train --features nowhere.npy --targets y.npy",
            Refused("could not read nowhere.npy"),
        ),
        case(
            CSV,
            "empty file",
            "train --data empty.csv",
            Refused("empty.csv"),
        ),
        case(
            CSV,
            "header only",
            "train --data header_only.csv",
            Refused("has a header but no data rows"),
        ),
        case(
            CSV,
            "ragged rows",
            "train --data ragged.csv",
            Refused("line 3"),
        ),
        case(
            CSV,
            "non-numeric cell",
            "train --data text.csv",
            Refused("line 3, column 2"),
        ),
        case(
            CSV,
            "missing target column",
            "train --data text.csv --target-column price",
            Refused("has no target column named `price`"),
        ),
        case(
            CSV,
            "NaN value",
            "train --data nan.csv",
            Refused("line 3, column 2"),
        ),
        case(
            CSV,
            "infinite value",
            "train --data inf.csv",
            Refused("line 4, column 1"),
        ),
        case(
            CSV,
            "NaN value with --drop-nonfinite",
            "train --data nan.csv --drop-nonfinite --epochs 1",
            Accepted("dropped 1 row(s)"),
        ),
        case(
            IDX,
            "bad magic",
            "train --features bad_magic.idx --targets labels.idx",
            Refused("bad_magic.idx"),
        ),
        case(
            IDX,
            "labels with 3 dimensions",
            "train --features images.idx --targets labels_2d.idx --loss cross-entropy",
            Refused("labels_2d.idx: has dimensions [12, 1, 1]"),
        ),
        case(
            IDX,
            "data cut short",
            "train --features images_cut.idx --targets labels.idx",
            Refused("images_cut.idx"),
        ),
        case(
            IDX,
            "images and labels of different counts",
            "train --features images.idx --targets labels_short.idx",
            Refused("has 12 rows but labels_short.idx has 10"),
        ),
        case(
            TARGETS,
            "class index out of range",
            "train --features x.npy --targets y_out_of_range.npy --layers 3,8,3",
            Refused("class index 7 at row 2 is out of range for 3 outputs"),
        ),
        case(
            TARGETS,
            "negative class index",
            "train --features x.npy --targets y_negative.npy",
            Refused("is negative"),
        ),
        case(
            TARGETS,
            "float targets for cross-entropy",
            "train --features x.npy --targets y_float.npy --loss cross-entropy",
            Refused("target 0.5 is not a class index"),
        ),
        case(
            TARGETS,
            "target width not matching the output layer",
            "train --features x.npy --targets y_wide.npy --layers 3,8,2",
            Refused("[12, 4]"),
        ),
        case(
            MODEL,
            "input width not matching the data",
            "train --features x.npy --targets y.npy --layers 4,8,3",
            Refused("the model takes 4 inputs"),
        ),
        case(
            MODEL,
            "a zero width",
            "train --features x.npy --targets y.npy --layers 3,0,3",
            Refused("zero"),
        ),
        case(
            MODEL,
            "batch size 0",
            "train --features x.npy --targets y.npy --batch-size 0",
            Refused("--batch-size must be at least 1"),
        ),
        case(
            MODEL,
            "batch larger than the data with --drop-last",
            "train --features x.npy --targets y.npy --batch-size 64 --drop-last",
            Refused("--drop-last"),
        ),
        case(
            MODEL,
            "unknown optimizer",
            "train --optimizer adamax",
            Refused("invalid value 'adamax' for '--optimizer"),
        ),
        case(
            MODEL,
            "unknown activation",
            "train --activation swish",
            Refused("unknown activation `swish`"),
        ),
        case(
            MODEL,
            "unknown loss",
            "train --loss hinge",
            Refused("hinge"),
        ),
        case(
            MODEL,
            "unknown built-in dataset",
            "train --dataset nope",
            Refused("is not a built-in dataset"),
        ),
        case(
            MODEL,
            "negative learning rate",
            "train --lr -1",
            Refused("lr = -1"),
        ),
        case(
            MODEL,
            "Adam beta1 of 1",
            "train --beta1 1",
            Refused("beta1 = 1"),
        ),
        case(
            MODEL,
            "Nesterov without momentum",
            "train --optimizer sgd --nesterov",
            Refused("nesterov momentum needs momentum > 0"),
        ),
        case(
            MODEL,
            "a model over the device memory given",
            "train --device gpu --layers 64,2048,2048,10 --gpu-memory 16",
            Refused("of device memory"),
        ),
        case(
            MODEL,
            "a list of learning rates to train",
            "train --lr 0.1,0.01",
            Refused("use `downhill sweep --lr 0.1,0.01`"),
        ),
        case(
            MODEL,
            "sweep: momentum for Adam",
            "sweep --optimizer adam --momentum 0.9,0.5",
            Refused("Adam has no momentum"),
        ),
        case(
            MODEL,
            "sweep: a learning rate in the list invalid",
            "sweep --optimizer sgd --lr 0.1,-1",
            Refused("lr = -1"),
        ),
        case(
            MODEL,
            "sweep: no restarts",
            "sweep --restarts 0",
            Refused("--restarts must be at least 1"),
        ),
        case(
            MODEL,
            "sweep: a single-run flag",
            "sweep --early-stopping 3",
            Refused("unexpected argument '--early-stopping'"),
        ),
        case(
            MODEL,
            "check: memory-mapping (check reads its rows whole)",
            "check --dataset digits --mmap",
            Refused("unexpected argument '--mmap'"),
        ),
        case(
            MODEL,
            "eval: memory-mapping (eval reads its rows whole)",
            "eval --model model.safetensors --dataset digits --mmap",
            Refused("unexpected argument '--mmap'"),
        ),
        case(
            MODEL,
            "bench sweep: memory-mapping (it reads its rows whole)",
            "bench sweep --dataset digits --mmap",
            Refused("unexpected argument '--mmap'"),
        ),
        case(
            MODEL,
            "bench sweep: starting parameters (its models are restarts)",
            "bench sweep --init start.safetensors",
            Refused("unexpected argument '--init'"),
        ),
        case(
            MODEL,
            "lr-find: a hyperparameter list",
            "lr-find --optimizer sgd --momentum 0.5,0.9",
            Refused("lr-find trains one model, so --momentum takes one value"),
        ),
        case(
            MODEL,
            "sweep: restarts from one starting checkpoint",
            "sweep --init start.safetensors --restarts 2",
            Refused("drop --init or --restarts"),
        ),
        case(
            MODEL,
            "sweep: every model diverges",
            "sweep --dataset linear --optimizer sgd --lr 1e4,1e5 --epochs 1",
            Refused("every one of the 2 models diverged; try smaller learning rates"),
        ),
        case(
            MODEL,
            "validation fraction of 1",
            "train --val-split 1",
            Refused("validation fraction 1 must be between 0 and 1"),
        ),
        case(
            MODEL,
            "unknown schedule",
            "train --schedule sawtooth",
            Refused("sawtooth"),
        ),
        case(
            MODEL,
            "non-positive clip norm",
            "train --clip-norm 0",
            Refused("clip"),
        ),
        case(
            MODEL,
            "a run that trains nothing",
            "train --epochs 0",
            Refused("--epochs 0 or --max-steps 0 trains nothing"),
        ),
        case(
            MODEL,
            "a learning rate beyond f32",
            "train --lr 1e300",
            Refused("lr = 1e300: is too large"),
        ),
        case(
            MODEL,
            "a schedule that grows the rate out of range",
            "train --schedule exponential:1e300",
            Refused("the learning-rate schedule reaches inf"),
        ),
        case(
            MODEL,
            "a divergence threshold of 1 or less",
            "train --divergence-threshold 0.5",
            Refused("--divergence-threshold 0.5 must be a number above 1"),
        ),
        case(
            MODEL,
            "standardised class labels",
            "train --dataset digits --standardize-targets",
            Refused("--standardize-targets is for regression targets"),
        ),
        case(
            MODEL,
            "an output in a folder that does not exist",
            "train --save missing/m.safetensors",
            Refused("the folder missing does not exist"),
        ),
        case(
            MODEL,
            "a folder as an output",
            "train --metrics .",
            Refused("is a folder, which downhill does not write over"),
        ),
        case(
            MODEL,
            "probabilities and classes together",
            "predict --model start.safetensors --features x.npy --output p.npy --proba --classes",
            Refused("--proba"),
        ),
        case(
            MODEL,
            "--features without --targets",
            "train --features x.npy",
            Refused("--features and --targets go together"),
        ),
        case(
            CKPT,
            "truncated file",
            "eval --model truncated.safetensors --dataset digits",
            Refused("is not a readable safetensors file"),
        ),
        case(
            CKPT,
            "not safetensors",
            "eval --model garbage.safetensors --dataset digits",
            Refused("is not a readable safetensors file"),
        ),
        case(
            CKPT,
            "tensors missing",
            "eval --model missing.safetensors --dataset digits",
            Refused("layers.1.bias"),
        ),
        case(
            CKPT,
            "tensor of the wrong shape",
            "train --dataset digits --layers 64,16,10 --init wrong_shape.safetensors",
            Refused("layers.1.weight"),
        ),
        case(
            CKPT,
            "tensor of the wrong dtype",
            "train --dataset digits --layers 64,16,10 --init f64.safetensors",
            Refused("F64"),
        ),
        case(
            CKPT,
            "architecture different from the flags",
            "train --dataset digits --layers 64,32,10 --init model.safetensors",
            Refused(
                "differs from the architecture of the --init checkpoint model.safetensors, [64, 16, 10]",
            ),
        ),
        case(
            CKPT,
            "training state of a different model",
            "train --dataset digits --layers 64,32,10 --resume state.safetensors",
            Refused("of the --resume checkpoint state.safetensors, [64, 16, 10]"),
        ),
        case(
            CKPT,
            "training state resumed on changed data",
            "train --dataset digits --standardize --layers 64,16,10 --epochs 1 --resume state.safetensors",
            Accepted("the training data differs"),
        ),
        case(
            CKPT,
            "model file that does not exist",
            "eval --model nowhere.safetensors --dataset digits",
            Refused("could not read nowhere.safetensors"),
        ),
    ]
}

/// The line of stderr a case is about: the error when refused, else the line holding the
/// expected text (none when no text is expected).
fn message(stderr: &str, expect: &Expect) -> String {
    let wanted = |l: &&str| match expect {
        Expect::Refused(_) => l.starts_with("error: "),
        Expect::Accepted(text) => !text.is_empty() && l.contains(text),
    };
    stderr.lines().find(wanted).unwrap_or_default().to_string()
}

#[test]
fn every_bad_input_gets_a_clear_error_and_docs_errors_md_lists_them() {
    let dir = tempfile::tempdir().unwrap();
    write_files(dir.path());
    let mut doc = String::from(
        "# What downhill says when input is wrong\n\n\
         Each case below is run by `tests/error_catalog.rs` through the `downhill` binary, from a \
         directory holding the files it names; the message is what that run printed. Every refused \
         case exits with status 1 (2 for flags the parser itself rejects) and never panics. \
         This file is generated by that test and checked against the code on every run: \
         `DOWNHILL_BLESS=1 cargo test --test error_catalog` rewrites it.\n",
    );
    let mut failures = Vec::new();
    let mut section = "";
    for c in cases() {
        if c.section != section {
            section = c.section;
            doc += &format!(
                "\n## {section}\n\n| case | command | exit | message |\n|---|---|---|---|\n"
            );
        }
        let out = downhill(dir.path(), c.args);
        let stderr = String::from_utf8_lossy(&out.stderr);
        let message = message(&stderr, &c.expect);
        let code = out.status.code();
        let problem = if stderr.contains("panicked") {
            Some("panicked".to_string())
        } else {
            match c.expect {
                Expect::Refused(text) => {
                    if out.status.success() {
                        Some("succeeded".into())
                    } else if !message.contains(text) {
                        Some(format!("message lacks {text:?}"))
                    } else {
                        None
                    }
                }
                Expect::Accepted(text) => {
                    if !out.status.success() {
                        Some("failed".into())
                    } else if !stderr.contains(text) {
                        Some(format!("output lacks {text:?}"))
                    } else {
                        None
                    }
                }
            }
        };
        if let Some(problem) = problem {
            failures.push(format!("{} ({}): {problem}\n{stderr}", c.case, c.args));
        }
        let shown = if message.is_empty() {
            "read and converted; trains".to_string()
        } else {
            format!("`{}`", message.replace('|', "\\|").replace('`', "'"))
        };
        doc += &format!(
            "| {} | `downhill {}` | {} | {} |\n",
            c.case,
            c.args,
            code.map_or("signal".into(), |c| c.to_string()),
            shown
        );
    }
    assert!(failures.is_empty(), "{}", failures.join("\n\n"));
    let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("docs/errors.md");
    if std::env::var_os("DOWNHILL_BLESS").is_some() {
        std::fs::write(&path, &doc).unwrap();
    }
    let written = std::fs::read_to_string(&path).unwrap_or_default();
    assert!(
        written == doc,
        "docs/errors.md does not match what the code says; regenerate it with \
         DOWNHILL_BLESS=1 cargo test --test error_catalog"
    );
}
