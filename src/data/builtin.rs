//! Data that ships with downhill, so the main job runs with no download: the 8×8 handwritten
//! digits (UCI, CC BY 4.0; see `data/README.md`), and seeded synthetic generators.

use std::io::Read;

use ndarray::{Array1, Array2};
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;
use rand_distr::{Distribution, Normal};

use super::Dataset;
use crate::error::{Error, Result};
use crate::loss::Targets;

const DIGITS_CSV_GZ: &[u8] = include_bytes!("../../data/digits.csv.gz");

/// The names [`load`] accepts.
pub const NAMES: [&str; 4] = ["digits", "linear", "blobs", "spirals"];

/// A built-in dataset by name; the synthetic ones are drawn from `seed`.
pub fn load(name: &str, seed: u64) -> Result<Dataset> {
    match name {
        "digits" => digits(),
        "linear" => Ok(linear(1000, 8, 0.1, seed).0),
        "blobs" => Ok(blobs(1000, 8, 4, seed)),
        "spirals" => Ok(spirals(300, 3, seed)),
        other => Err(Error::Data {
            source_name: format!("--dataset {other}"),
            message: format!(
                "is not a built-in dataset; choose one of {}",
                NAMES.join(", ")
            ),
        }),
    }
}

/// The 1,797 8×8 handwritten digits: 64 pixel features (0..16), classes 0..9.
pub fn digits() -> Result<Dataset> {
    let mut csv = Vec::new();
    flate2::read::GzDecoder::new(DIGITS_CSV_GZ)
        .read_to_end(&mut csv)
        .map_err(|e| Error::Data {
            source_name: "built-in digits".into(),
            message: format!("could not be decompressed: {e}"),
        })?;
    let data = super::csv::parse(&csv, "built-in digits", &Default::default())?;
    let classes = data.targets.iter().map(|&v| v as u32).collect();
    Ok(Dataset {
        name: "digits".into(),
        features: data.features,
        targets: Targets::Classes(classes),
    })
}

/// Linear regression `y = x·w + b + ε`, `x ~ U(−1, 1)`, `ε ~ N(0, noise²)`, with `w` and `b`
/// drawn from `N(0, 1)`; returns the data and the true `(w, b)`.
pub fn linear(rows: usize, inputs: usize, noise: f32, seed: u64) -> (Dataset, (Array1<f32>, f32)) {
    let mut rng = ChaCha8Rng::seed_from_u64(seed);
    let normal = Normal::new(0.0f32, 1.0).expect("unit normal");
    let weights = Array1::from_shape_fn(inputs, |_| normal.sample(&mut rng));
    let bias = normal.sample(&mut rng);
    let features = Array2::from_shape_fn((rows, inputs), |_| rng.random_range(-1.0..1.0));
    let targets = (features.dot(&weights) + bias).mapv(|v| v + noise * normal.sample(&mut rng));
    let dataset = Dataset {
        name: "linear".into(),
        features,
        targets: Targets::Dense(targets.insert_axis(ndarray::Axis(1))),
    };
    (dataset, (weights, bias))
}

/// `classes` Gaussian blobs (unit spread) in `inputs` dimensions around centres drawn from
/// `U(−4, 4)`; `rows` samples, classes in turn.
pub fn blobs(rows: usize, inputs: usize, classes: usize, seed: u64) -> Dataset {
    let mut rng = ChaCha8Rng::seed_from_u64(seed);
    let normal = Normal::new(0.0f32, 1.0).expect("unit normal");
    let centres = Array2::from_shape_fn((classes, inputs), |_| rng.random_range(-4.0..4.0));
    let labels: Vec<u32> = (0..rows).map(|i| (i % classes) as u32).collect();
    let features = Array2::from_shape_fn((rows, inputs), |(r, c)| {
        centres[[labels[r] as usize, c]] + normal.sample(&mut rng)
    });
    Dataset {
        name: "blobs".into(),
        features,
        targets: Targets::Classes(labels),
    }
}

/// `classes` interleaved spirals in the plane, `points` per class, with seeded angular noise.
pub fn spirals(points: usize, classes: usize, seed: u64) -> Dataset {
    let mut rng = ChaCha8Rng::seed_from_u64(seed);
    let mut features = Array2::zeros((points * classes, 2));
    let mut labels = Vec::with_capacity(points * classes);
    for class in 0..classes {
        for i in 0..points {
            let r = i as f32 / points as f32;
            let angle = class as f32 * std::f32::consts::TAU / classes as f32
                + 4.0 * r
                + rng.random_range(-0.2..0.2);
            let row = class * points + i;
            features[[row, 0]] = r * angle.cos();
            features[[row, 1]] = r * angle.sin();
            labels.push(class as u32);
        }
    }
    Dataset {
        name: "spirals".into(),
        features,
        targets: Targets::Classes(labels),
    }
}
