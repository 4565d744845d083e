//! Property tests of every file reader on random and mutated bytes: each returns a value or an
//! error, never panics, and never makes an allocation larger than the file warrants (a header
//! claiming 10^12 elements is refused before anything that size is asked for).
//!
//! The bound is checked with a global allocator that records the largest single allocation made
//! on the current thread.

use std::alloc::{GlobalAlloc, Layout, System};
use std::cell::Cell;
use std::io::Write;

use downhill::checkpoint::{ModelCheckpoint, load_init, load_model, load_state, save_model};
use downhill::data::csv::{self, Column, CsvOptions};
use downhill::data::load::{load_features, load_targets};
use downhill::data::mapped::MappedNpy;
use downhill::data::{idx, npy};
use downhill::{Activation, Loss, ModelSpec, Parameters, Targets};
use proptest::prelude::*;

struct LargestAllocation;

thread_local! {
    static LARGEST: Cell<usize> = const { Cell::new(0) };
}

fn note(size: usize) {
    let _ = LARGEST.try_with(|l| l.set(l.get().max(size)));
}

// SAFETY: every call is forwarded unchanged to the system allocator.
unsafe impl GlobalAlloc for LargestAllocation {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        note(layout.size());
        unsafe { System.alloc(layout) }
    }
    unsafe fn alloc_zeroed(&self, layout: Layout) -> *mut u8 {
        note(layout.size());
        unsafe { System.alloc_zeroed(layout) }
    }
    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        note(new_size);
        unsafe { System.realloc(ptr, layout, new_size) }
    }
    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        unsafe { System.dealloc(ptr, layout) }
    }
}

#[global_allocator]
static ALLOCATOR: LargestAllocation = LargestAllocation;

/// Runs `read` and checks that no single allocation exceeded `bound` bytes.
fn bounded<T>(bound: usize, read: impl FnOnce() -> T) -> Result<T, TestCaseError> {
    LARGEST.with(|l| l.set(0));
    let value = read();
    let largest = LARGEST.with(Cell::get);
    prop_assert!(
        largest <= bound,
        "allocated {largest} bytes at once for input warranting {bound}"
    );
    Ok(value)
}

/// What a file of `len` bytes may hold once decoded: every byte a value, every value an f32 or
/// index in a few copies (parse, convert, transpose), plus a fixed allowance.
fn warrant(len: usize) -> usize {
    16 * len + (1 << 16)
}

/// A `.npy` header with a random dtype, order and shape (including impossible sizes), then
/// random data bytes.
fn npy_files() -> impl Strategy<Value = Vec<u8>> {
    let descr = prop::sample::select(vec![
        "<f4", ">f4", "<f8", ">f8", "<i8", "|u1", "|i1", "<u2", ">i4", "|b1", "<c8", "|O", "<f2",
        "<U3", "bogus",
    ]);
    let dim = prop::sample::select(vec![0u64, 1, 2, 3, 7, 1 << 20, 1 << 40, u64::MAX]);
    let shape = prop::collection::vec(dim, 0..4);
    let version = prop::sample::select(vec![1u8, 2, 3, 4]);
    (
        descr,
        any::<bool>(),
        shape,
        version,
        prop::collection::vec(any::<u8>(), 0..256),
    )
        .prop_map(|(descr, fortran, shape, version, data)| {
            let dims: Vec<String> = shape.iter().map(u64::to_string).collect();
            let shape = match dims.len() {
                1 => format!("({},)", dims[0]),
                _ => format!("({})", dims.join(", ")),
            };
            let order = if fortran { "True" } else { "False" };
            let dict =
                format!("{{'descr': '{descr}', 'fortran_order': {order}, 'shape': {shape}, }}\n");
            let mut out = b"\x93NUMPY".to_vec();
            out.extend_from_slice(&[version, 0]);
            if version == 1 {
                out.extend_from_slice(&(dict.len() as u16).to_le_bytes());
            } else {
                out.extend_from_slice(&(dict.len() as u32).to_le_bytes());
            }
            out.extend_from_slice(dict.as_bytes());
            out.extend_from_slice(&data);
            out
        })
}

/// An IDX file with a random element type, dimensions and data, raw or gzip-compressed.
fn idx_files() -> impl Strategy<Value = Vec<u8>> {
    let kind = prop::sample::select(vec![0x08u8, 0x09, 0x0B, 0x0C, 0x0D, 0x0E, 0x07]);
    let dim = prop::sample::select(vec![0u32, 1, 2, 3, 28, 60000, u32::MAX]);
    (
        kind,
        prop::collection::vec(dim, 0..5),
        prop::collection::vec(any::<u8>(), 0..512),
        any::<bool>(),
    )
        .prop_map(|(kind, dims, data, gzip)| {
            let mut out = vec![0, 0, kind, dims.len() as u8];
            for d in dims {
                out.extend_from_slice(&d.to_be_bytes());
            }
            out.extend_from_slice(&data);
            if gzip {
                let mut z = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
                z.write_all(&out).unwrap();
                out = z.finish().unwrap();
            }
            out
        })
}

/// Bytes from `seed` with some overwritten and the end possibly cut off.
fn mutated(seed: Vec<u8>) -> impl Strategy<Value = Vec<u8>> {
    let len = seed.len();
    (prop::collection::vec((0..len, any::<u8>()), 0..8), 0..=len).prop_map(
        move |(changes, keep)| {
            let mut bytes = seed.clone();
            for (at, value) in changes {
                bytes[at] = value;
            }
            bytes.truncate(keep.max(1));
            bytes
        },
    )
}

/// A small valid `.npy` file of f32 values.
fn valid_npy() -> Vec<u8> {
    npy::to_bytes(&ndarray::Array2::from_shape_fn((5, 3), |(r, c)| {
        (r * 3 + c) as f32
    }))
}

/// A small valid downhill checkpoint, as bytes.
fn valid_checkpoint() -> Vec<u8> {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("m.safetensors");
    let model = ModelSpec::from_widths(&[3, 4, 2], Activation::Tanh, Activation::Identity).unwrap();
    save_model(
        &path,
        &ModelCheckpoint {
            parameters: Parameters::init(&model, 0),
            model,
            loss: Loss::Mse,
            standardizer: None,
            target_standardizer: None,
        },
    )
    .unwrap();
    std::fs::read(path).unwrap()
}

/// The readers that take a path, on `bytes` written to a file.
fn read_as_files(bytes: &[u8]) -> Result<(), TestCaseError> {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("f");
    std::fs::write(&path, bytes).unwrap();
    let bound = warrant(bytes.len());
    bounded(bound, || {
        let _ = load_features(&path);
        let _ = load_targets(&path);
        if let Ok(m) = MappedNpy::open(&path, Targets::Classes(vec![0; 5])) {
            let _ = m.fit_standardizer();
        }
    })?;
    bounded(bound, || {
        let _ = load_model(&path);
        let _ = load_state(&path);
        let _ = load_init(
            &path,
            Activation::Relu,
            (downhill::Norm::None, 0.0),
            Loss::Mse,
        );
    })?;
    Ok(())
}

fn read_npy(bytes: Vec<u8>) -> Result<(), TestCaseError> {
    let bound = warrant(bytes.len());
    bounded(bound, || {
        if let Ok(n) = npy::Npy::from_bytes(bytes, "fuzz.npy") {
            let _ = n.to_matrix();
            let _ = n.to_classes();
        }
    })
}

fn read_idx(bytes: &[u8]) -> Result<(), TestCaseError> {
    // gzip expands by at most deflate's ratio; the reader refuses claims beyond it.
    let expansion = if bytes.starts_with(&[0x1f, 0x8b]) {
        1032
    } else {
        1
    };
    bounded(warrant(bytes.len() * expansion), || {
        if let Ok(i) = idx::parse(bytes, "fuzz.idx") {
            let _ = i.to_matrix();
            let _ = i.to_classes("fuzz.idx");
        }
    })
}

fn csv_options() -> impl Strategy<Value = CsvOptions> {
    let column = prop_oneof![
        (-4i64..4).prop_map(Column::Index),
        "[a-c]{1,2}".prop_map(Column::Name),
    ];
    (
        prop::option::of(any::<bool>()),
        prop::collection::vec(column, 0..3),
        any::<bool>(),
    )
        .prop_map(|(header, targets, drop_nonfinite)| CsvOptions {
            header,
            targets,
            drop_nonfinite,
        })
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(192))]

    #[test]
    fn npy_reader_on_generated_headers(bytes in npy_files()) {
        read_npy(bytes)?;
    }

    #[test]
    fn npy_reader_on_mutated_files(bytes in mutated(valid_npy())) {
        read_npy(bytes)?;
    }

    #[test]
    fn idx_reader_on_generated_files(bytes in idx_files()) {
        read_idx(&bytes)?;
    }

    #[test]
    fn csv_reader_on_random_text(
        text in "[0-9a-c.,eE+\\-\" \n\tNaninf]{0,200}",
        options in csv_options(),
    ) {
        bounded(warrant(text.len()), || {
            let _ = csv::parse(text.as_bytes(), "fuzz.csv", &options);
        })?;
    }

    #[test]
    fn every_reader_on_random_bytes(bytes in prop::collection::vec(any::<u8>(), 0..300)) {
        read_npy(bytes.clone())?;
        read_idx(&bytes)?;
        bounded(warrant(bytes.len()), || {
            let _ = csv::parse(&bytes, "fuzz.csv", &CsvOptions::default());
        })?;
        read_as_files(&bytes)?;
    }

    #[test]
    fn path_readers_on_mutated_npy_files(bytes in mutated(valid_npy())) {
        read_as_files(&bytes)?;
    }

    #[test]
    fn checkpoint_readers_on_mutated_checkpoints(bytes in mutated(valid_checkpoint())) {
        read_as_files(&bytes)?;
    }
}

#[test]
fn a_header_claiming_a_trillion_elements_is_refused_before_allocating() {
    let dict = "{'descr': '<f4', 'fortran_order': False, 'shape': (1000000, 1000000), }\n";
    let mut bytes = b"\x93NUMPY\x01\x00".to_vec();
    bytes.extend_from_slice(&(dict.len() as u16).to_le_bytes());
    bytes.extend_from_slice(dict.as_bytes());
    bytes.extend_from_slice(&[0; 64]);
    let len = bytes.len();
    let result = bounded(warrant(len), || npy::Npy::from_bytes(bytes, "huge.npy")).unwrap();
    assert!(result.is_err());

    let mut idx = vec![0, 0, 0x0D, 2];
    idx.extend_from_slice(&1_000_000u32.to_be_bytes());
    idx.extend_from_slice(&1_000_000u32.to_be_bytes());
    let mut z = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
    z.write_all(&idx).unwrap();
    let gz = z.finish().unwrap();
    let result = bounded(warrant(gz.len() * 1032), || idx::parse(&gz, "huge.idx.gz")).unwrap();
    assert!(result.is_err());
}

#[test]
fn the_allocation_bound_catches_an_oversized_allocation() {
    let caught = bounded(1000, || vec![0u8; 4096].len());
    assert!(caught.is_err());
    assert_eq!(bounded(1 << 20, || vec![0u8; 4096].len()).unwrap(), 4096);
}
