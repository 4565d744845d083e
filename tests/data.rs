//! The data readers on small files made here, good and bad, and the built-in data.

use std::io::Write;

use downhill::data::csv::{Column, CsvOptions};
use downhill::data::{Dataset, Standardizer, builtin, csv, idx, npy, targets_for};
use downhill::{Loss, Targets};
use ndarray::{Array2, array};

/// A `.npy` file with the given header dictionary and data bytes (version 1).
fn npy_bytes(dict: &str, data: &[u8]) -> Vec<u8> {
    let mut out = b"\x93NUMPY\x01\x00".to_vec();
    let header = format!("{dict}\n");
    out.extend_from_slice(&(header.len() as u16).to_le_bytes());
    out.extend_from_slice(header.as_bytes());
    out.extend_from_slice(data);
    out
}

fn err(result: downhill::Result<impl std::fmt::Debug>) -> String {
    result.expect_err("expected an error").to_string()
}

#[test]
fn npy_round_trip_through_the_writer() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("x.npy");
    let x = array![[1.0f32, -2.5, 3.0], [4.0, 5.0, 6.25]];
    npy::write(&path, &x).unwrap();
    let bytes = std::fs::read(&path).unwrap();
    assert_eq!(
        (bytes.len() - x.len() * 4) % 64,
        0,
        "data starts 64-byte aligned"
    );
    assert_eq!(npy::Npy::read(&path).unwrap().to_matrix().unwrap(), x);
}

#[test]
fn npy_dtypes_orders_and_versions() {
    let f64s: Vec<u8> = [1.5f64, 2.0, -3.0, 4.0]
        .iter()
        .flat_map(|v| v.to_le_bytes())
        .collect();
    let m = npy::Npy::from_bytes(
        npy_bytes(
            "{'descr': '<f8', 'fortran_order': False, 'shape': (2, 2), }",
            &f64s,
        ),
        "f8",
    )
    .unwrap();
    assert_eq!(m.to_matrix().unwrap(), array![[1.5f32, 2.0], [-3.0, 4.0]]);
    // Fortran order is converted: column-major [[1.5, -3], [2, 4]] read back row-major.
    let f = npy::Npy::from_bytes(
        npy_bytes(
            "{'descr': '<f8', 'fortran_order': True, 'shape': (2, 2), }",
            &f64s,
        ),
        "f",
    )
    .unwrap();
    assert_eq!(f.to_matrix().unwrap(), array![[1.5f32, -3.0], [2.0, 4.0]]);
    // Big-endian is converted.
    let be: Vec<u8> = [7.0f32, -1.0]
        .iter()
        .flat_map(|v| v.to_be_bytes())
        .collect();
    let b = npy::Npy::from_bytes(
        npy_bytes(
            "{'descr': '>f4', 'fortran_order': False, 'shape': (2,), }",
            &be,
        ),
        "be",
    )
    .unwrap();
    assert_eq!(b.to_matrix().unwrap(), array![[7.0f32], [-1.0]]);
    // Integer class indices, 1-D, of several widths and signedness.
    let i64s: Vec<u8> = [0i64, 3, 9].iter().flat_map(|v| v.to_le_bytes()).collect();
    let c = npy::Npy::from_bytes(
        npy_bytes(
            "{'descr': '<i8', 'fortran_order': False, 'shape': (3,), }",
            &i64s,
        ),
        "i8",
    )
    .unwrap();
    assert_eq!(c.to_classes().unwrap(), vec![0, 3, 9]);
    let u8s = npy::Npy::from_bytes(
        npy_bytes(
            "{'descr': '|u1', 'fortran_order': False, 'shape': (3,), }",
            &[2, 0, 255],
        ),
        "u1",
    )
    .unwrap();
    assert_eq!(u8s.to_classes().unwrap(), vec![2, 0, 255]);
    let i16s: Vec<u8> = [-2i16, 5].iter().flat_map(|v| v.to_le_bytes()).collect();
    let neg = npy::Npy::from_bytes(
        npy_bytes(
            "{'descr': '<i2', 'fortran_order': False, 'shape': (2,), }",
            &i16s,
        ),
        "i2",
    )
    .unwrap();
    assert_eq!(neg.to_matrix().unwrap(), array![[-2.0f32], [5.0]]);
    assert!(err(neg.to_classes()).contains("row 0: class index -2 is negative"));
    // Version 2 headers have a 4-byte length.
    let mut v2 = b"\x93NUMPY\x02\x00".to_vec();
    let dict = "{'descr': '<f4', 'fortran_order': False, 'shape': (1, 1), }\n";
    v2.extend_from_slice(&(dict.len() as u32).to_le_bytes());
    v2.extend_from_slice(dict.as_bytes());
    v2.extend_from_slice(&0.5f32.to_le_bytes());
    assert_eq!(
        npy::Npy::from_bytes(v2, "v2").unwrap().to_matrix().unwrap(),
        array![[0.5f32]]
    );
}

#[test]
fn bad_npy_files_say_what_is_wrong() {
    let data = [0u8; 16];
    let cases: Vec<(Vec<u8>, &str)> = vec![
        (b"PK\x03\x04 not numpy".to_vec(), "is not a NumPy .npy file"),
        (
            b"\x93NUMPY\x07\x00\x10\x00".to_vec(),
            "uses .npy format version 7.0",
        ),
        (
            b"\x93NUMPY\x01\x00\xff\x00{'descr'".to_vec(),
            "is truncated: its header claims 255 bytes",
        ),
        (
            npy_bytes(
                "{'descr': '<c8', 'fortran_order': False, 'shape': (2,), }",
                &data,
            ),
            "has dtype '<c8'",
        ),
        (
            npy_bytes(
                "{'descr': '|O', 'fortran_order': False, 'shape': (2,), }",
                &data,
            ),
            "has dtype '|O'",
        ),
        (
            npy_bytes(
                "{'descr': '<f4', 'fortran_order': False, 'shape': (2, 3), }",
                &data,
            ),
            "is truncated: shape [2, 3]",
        ),
        (
            npy_bytes(
                "{'descr': '<f4', 'fortran_order': False, 'shape': (1000000, 1000000), }",
                &data,
            ),
            "needs 4000000000000 bytes of data but the file has 16",
        ),
        (
            npy_bytes(
                "{'descr': '<f4', 'fortran_order': False, 'shape': (99999999999999999999, 9), }",
                &data,
            ),
            "unreadable shape",
        ),
    ];
    for (bytes, expected) in cases {
        let text = err(npy::Npy::from_bytes(bytes, "f.npy"));
        assert!(
            text.starts_with("f.npy: ") && text.contains(expected),
            "{text:?} should contain {expected:?}"
        );
    }
    let three_d = npy::Npy::from_bytes(
        npy_bytes(
            "{'descr': '<f4', 'fortran_order': False, 'shape': (2, 1, 2), }",
            &data,
        ),
        "t",
    )
    .unwrap();
    assert!(err(three_d.to_matrix()).contains("has shape [2, 1, 2]; downhill reads 1-D"));
    let floats = npy::Npy::from_bytes(
        npy_bytes(
            "{'descr': '<f4', 'fortran_order': False, 'shape': (2,), }",
            &data,
        ),
        "fl",
    )
    .unwrap();
    assert!(err(floats.to_classes()).contains("class indices must be a 1-D integer array"));
}

#[test]
fn csv_with_and_without_header_and_chosen_targets() {
    let with_header = b"a,b,label\n1,2,0\n3,4.5,1\n";
    let data = csv::parse(with_header, "h.csv", &CsvOptions::default()).unwrap();
    assert_eq!(data.features, array![[1.0f32, 2.0], [3.0, 4.5]]);
    assert_eq!(data.targets, array![[0.0f32], [1.0]]);
    assert_eq!(data.feature_names, vec!["a", "b"]);
    let by_name = CsvOptions {
        targets: vec![Column::Name("a".into()), "b".parse().unwrap()],
        ..Default::default()
    };
    let data = csv::parse(with_header, "h.csv", &by_name).unwrap();
    assert_eq!(data.features, array![[0.0f32], [1.0]]);
    assert_eq!(data.targets, array![[1.0f32, 2.0], [3.0, 4.5]]);
    let no_header = csv::parse(
        b"1,2,3\n4,5,6\n",
        "n.csv",
        &CsvOptions {
            targets: vec![Column::Index(0)],
            ..Default::default()
        },
    )
    .unwrap();
    assert_eq!(no_header.features, array![[2.0f32, 3.0], [5.0, 6.0]]);
    assert_eq!(no_header.targets, array![[1.0f32], [4.0]]);
}

#[test]
fn bad_csv_files_name_the_line_and_column() {
    let cases: Vec<(&[u8], CsvOptions, &str)> = vec![
        (b"", CsvOptions::default(), "is empty"),
        (
            b"a,b\n",
            CsvOptions::default(),
            "has a header but no data rows",
        ),
        (
            b"1,2,3\n4,5\n",
            CsvOptions::default(),
            "line 2 has 2 columns but the first row has 3",
        ),
        (
            b"x,y\n1,2\n3,oops\n",
            CsvOptions::default(),
            "line 3, column 2 (`y`): `oops` is not a number",
        ),
        (
            b"x,y\n1,2\n",
            CsvOptions {
                targets: vec![Column::Name("label".into())],
                ..Default::default()
            },
            "has no target column named `label`; columns are [\"x\", \"y\"]",
        ),
        (
            b"1,2\n",
            CsvOptions {
                targets: vec![Column::Index(5)],
                ..Default::default()
            },
            "has no target column 5",
        ),
        (
            b"x,y\n1,NaN\n",
            CsvOptions::default(),
            "line 2, column 2 (`y`): NaN is not finite",
        ),
        (
            b"x,y\n1,inf\n",
            CsvOptions::default(),
            "pass --drop-nonfinite",
        ),
        (b"5\n", CsvOptions::default(), "leaves no feature columns"),
    ];
    for (bytes, options, expected) in cases {
        let text = err(csv::parse(bytes, "d.csv", &options));
        assert!(
            text.contains(expected),
            "{text:?} should contain {expected:?}"
        );
    }
    let dropped = csv::parse(
        b"x,y\n1,2\n1,NaN\n3,4\n",
        "d.csv",
        &CsvOptions {
            drop_nonfinite: true,
            ..Default::default()
        },
    )
    .unwrap();
    assert_eq!((dropped.features.nrows(), dropped.dropped), (2, 1));
}

fn idx_bytes(kind: u8, dims: &[u32], data: &[u8]) -> Vec<u8> {
    let mut out = vec![0, 0, kind, dims.len() as u8];
    for d in dims {
        out.extend_from_slice(&d.to_be_bytes());
    }
    out.extend_from_slice(data);
    out
}

#[test]
fn idx_images_and_labels_raw_and_gzip() {
    let images = idx_bytes(
        0x08,
        &[2, 2, 3],
        &[0, 1, 2, 3, 4, 5, 250, 251, 252, 253, 254, 255],
    );
    let parsed = idx::parse(&images, "img").unwrap();
    assert_eq!(
        parsed.to_matrix(),
        array![
            [0.0f32, 1., 2., 3., 4., 5.],
            [250., 251., 252., 253., 254., 255.]
        ]
    );
    let mut gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::default());
    gz.write_all(&images).unwrap();
    assert_eq!(idx::parse(&gz.finish().unwrap(), "img.gz").unwrap(), parsed);
    let labels = idx::parse(&idx_bytes(0x08, &[3], &[7, 0, 9]), "lbl").unwrap();
    assert_eq!(labels.to_classes("lbl").unwrap(), vec![7, 0, 9]);
    assert!(err(parsed.to_classes("img")).contains("labels must be one-dimensional"));
}

#[test]
fn bad_idx_files_are_refused() {
    let cases: Vec<(Vec<u8>, &str)> = vec![
        (vec![1, 2, 8, 1, 0, 0, 0, 1, 5], "is not an IDX file"),
        (vec![0, 0, 0x08], "is too short"),
        (idx_bytes(0x42, &[1], &[0]), "unknown IDX element type 0x42"),
        (idx_bytes(0x08, &[2, 2, 2], &[0; 5]), "is truncated"),
        (
            idx_bytes(0x08, &[4_000_000_000, 4_000_000_000], &[0; 5]),
            "claims impossible dimensions [4000000000, 4000000000]",
        ),
        (
            idx_bytes(0x08, &[4_000_000_000, 2], &[0; 5]),
            "is truncated: dimensions [4000000000, 2] need 8000000000 bytes",
        ),
        (
            vec![0, 0, 0x08, 2, 0, 0, 0, 1],
            "is truncated inside its dimensions",
        ),
    ];
    for (bytes, expected) in cases {
        let text = err(idx::parse(&bytes, "x.idx"));
        assert!(
            text.contains(expected),
            "{text:?} should contain {expected:?}"
        );
    }
}

#[test]
fn builtin_digits_and_generators() {
    let digits = builtin::digits().unwrap();
    assert_eq!(digits.features.dim(), (1797, 64));
    let Targets::Classes(classes) = &digits.targets else {
        panic!("digits have class labels")
    };
    assert_eq!(classes.iter().max(), Some(&9));
    assert!(digits.features.iter().all(|&v| (0.0..=16.0).contains(&v)));
    let (linear, (w, b)) = builtin::linear(200, 3, 0.0, 5);
    let Targets::Dense(y) = &linear.targets else {
        panic!("dense")
    };
    let expected = linear.features.dot(&w) + b;
    assert!(
        y.column(0)
            .iter()
            .zip(&expected)
            .all(|(a, e)| (a - e).abs() < 1e-5),
        "noise-free targets are x·w + b"
    );
    assert_eq!(builtin::blobs(100, 4, 3, 1), builtin::blobs(100, 4, 3, 1));
    assert_ne!(builtin::spirals(50, 3, 1), builtin::spirals(50, 3, 2));
    assert!(
        err(builtin::load("mnist", 0)).contains("is not a built-in dataset; choose one of digits")
    );
}

#[test]
fn seeded_split_standardizer_and_targets() {
    let data = Dataset::new(
        "d",
        Array2::from_shape_fn((10, 2), |(r, c)| (r * 2 + c) as f32),
        Targets::Classes((0..10).collect()),
    )
    .unwrap();
    let (train, val) = data.split(0.3, 7).unwrap();
    assert_eq!((train.rows(), val.rows()), (7, 3));
    assert_eq!(data.split(0.3, 7).unwrap(), (train.clone(), val.clone()));
    assert_ne!(data.split(0.3, 8).unwrap().1, val);
    let Targets::Classes(mut all) = train.targets.clone() else {
        panic!()
    };
    let Targets::Classes(v) = val.targets.clone() else {
        panic!()
    };
    all.extend(v);
    all.sort_unstable();
    assert_eq!(
        all,
        (0..10).collect::<Vec<_>>(),
        "train and validation partition the rows"
    );
    let s = Standardizer::fit(&train.features);
    let mut x = train.features.clone();
    s.apply(&mut x).unwrap();
    let wrong = s.apply(&mut Array2::zeros((3, 5))).unwrap_err().to_string();
    assert!(
        wrong.contains("the columns the statistics were fitted on"),
        "{wrong}"
    );
    for c in 0..2 {
        let col = x.column(c);
        assert!(col.mean().unwrap().abs() < 1e-6 && (col.std(0.0) - 1.0).abs() < 1e-5);
    }
    assert!(err(data.split(1.0, 0)).contains("must be between 0 and 1"));
    assert!(
        matches!(targets_for(array![[0.0f32], [2.0]], Loss::CrossEntropy, "t").unwrap(), Targets::Classes(c) if c == vec![0, 2])
    );
    assert!(
        err(targets_for(array![[0.5f32]], Loss::CrossEntropy, "t"))
            .contains("row 0: target 0.5 is not a class index")
    );
    assert!(matches!(
        targets_for(array![[0.5f32]], Loss::Mse, "t").unwrap(),
        Targets::Dense(_)
    ));
    assert!(
        err(Dataset::new(
            "d",
            Array2::zeros((3, 1)),
            Targets::Classes(vec![0])
        ))
        .contains("3 feature rows but 1 targets")
    );
}
