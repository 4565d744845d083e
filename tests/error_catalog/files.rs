//! The bad (and good) input files the catalog's cases run on, written by hand as each format's
//! writer would, then broken.

use std::path::Path;

use super::downhill;

use downhill::checkpoint::{ModelCheckpoint, save_model};
use downhill::{Activation, Loss, ModelSpec, Parameters};

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
pub fn write_files(dir: &Path) {
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
