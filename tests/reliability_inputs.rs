//! Inputs that must never hang the process, make it abort, read without end, or pass NaN on to
//! training: each case through the real binary on the CPU engine, where a case needs one.

use std::io::Write;
use std::os::unix::fs::OpenOptionsExt;
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};
use std::time::{Duration, Instant};

use downhill::checkpoint::{ModelCheckpoint, load_state, save_model, save_state};
use downhill::data::load::load_files;
use downhill::data::mapped::MappedNpy;
use downhill::data::npy;
use downhill::{Activation, Loss, ModelSpec, Parameters, Targets};
use ndarray::Array2;

/// Rows of the small dataset the cases use.
const ROWS: usize = 120;

/// `downhill ARGS` (words split at spaces) in `dir`; `train` and `eval` on the CPU engine.
fn command(dir: &Path, args: &str) -> Command {
    let mut words: Vec<&str> = args.split_whitespace().collect();
    if matches!(words.first(), Some(&("train" | "eval"))) {
        words.splice(1..1, ["--device", "cpu"]);
    }
    let mut c = Command::new(env!("CARGO_BIN_EXE_downhill"));
    c.args(words)
        .current_dir(dir)
        .env("XDG_RUNTIME_DIR", std::env::temp_dir())
        .env_remove("DOWNHILL_INPUT_TIMEOUT");
    c
}

fn run(dir: &Path, args: &str) -> Output {
    command(dir, args)
        .output()
        .expect("the downhill binary runs")
}

fn stderr(out: &Output) -> String {
    String::from_utf8_lossy(&out.stderr).into_owned()
}

/// Checks that `out` failed with status 1 (not by a signal or an abort) and returns its stderr.
fn failed(out: &Output) -> String {
    let err = stderr(out);
    assert_eq!(out.status.code(), Some(1), "{err}");
    err
}

/// Runs `downhill ARGS`, checks that it failed with status 1, and returns its stderr.
fn refused(dir: &Path, args: &str) -> String {
    failed(&run(dir, args))
}

fn features() -> Array2<f32> {
    Array2::from_shape_fn((ROWS, 3), |(r, c)| {
        ((r * 7 + c * 3) % 11) as f32 / 5.0 - 1.0
    })
}

/// A version-1 `.npy` file with this header dictionary and data.
fn npy_bytes(descr: &str, shape: &str, data: &[u8]) -> Vec<u8> {
    let dict = format!("{{'descr': '{descr}', 'fortran_order': False, 'shape': {shape}, }}");
    let header = format!("{dict:<117}\n");
    let mut out = b"\x93NUMPY\x01\x00".to_vec();
    out.extend_from_slice(&(header.len() as u16).to_le_bytes());
    out.extend_from_slice(header.as_bytes());
    out.extend_from_slice(data);
    out
}

/// Class indices 0, 1, 2, ... as int64.
fn classes() -> Vec<u8> {
    let values: Vec<u8> = (0..ROWS as i64)
        .flat_map(|i| (i % 3).to_le_bytes())
        .collect();
    npy_bytes("<i8", &format!("({ROWS},)"), &values)
}

/// `x.npy` (3 float columns) and `y.npy` (class indices) in `dir`.
fn write_data(dir: &Path) -> (PathBuf, PathBuf) {
    let (x, y) = (dir.join("x.npy"), dir.join("y.npy"));
    npy::write(&x, &features()).unwrap();
    std::fs::write(&y, classes()).unwrap();
    (x, y)
}

fn mkfifo(path: &Path) {
    let made = Command::new("mkfifo").arg(path).status().unwrap();
    assert!(made.success());
}

#[test]
fn a_gzip_idx_file_claiming_more_data_than_it_holds_is_refused_without_allocating_it() {
    let dir = tempfile::tempdir().unwrap();
    write_data(dir.path());
    // 100 x 40,000,000 bytes claimed (16 GB as f32), 3.9 MB of incompressible data present.
    let mut raw = vec![0, 0, 0x08, 2];
    raw.extend_from_slice(&100u32.to_be_bytes());
    raw.extend_from_slice(&40_000_000u32.to_be_bytes());
    let mut state = 0x2545_f491_4f6c_dd1du64;
    raw.extend((0..3_900_000).map(|_| {
        state ^= state << 13;
        state ^= state >> 7;
        state ^= state << 17;
        state as u8
    }));
    let mut gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
    gz.write_all(&raw).unwrap();
    std::fs::write(dir.path().join("x.idx.gz"), gz.finish().unwrap()).unwrap();
    let started = Instant::now();
    let err = refused(dir.path(), "train --features x.idx.gz --targets y.npy");
    assert!(err.contains("x.idx.gz: "), "{err}");
    // Where the memory is there, the data is read until it runs out; elsewhere it is refused.
    assert!(
        err.contains("is truncated: dimensions [100, 40000000] need 4000000000 bytes of data but it has 3900000")
            || err.contains("of memory to read"),
        "{err}"
    );
    assert!(started.elapsed() < Duration::from_secs(60), "{err}");

    // A claim beyond what the compressed size can expand to is refused outright.
    let mut small = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::best());
    small.write_all(&raw[..1 << 16]).unwrap();
    std::fs::write(dir.path().join("small.idx.gz"), small.finish().unwrap()).unwrap();
    let err = refused(dir.path(), "train --features small.idx.gz --targets y.npy");
    assert!(err.contains("small.idx.gz: is truncated"), "{err}");
}

#[test]
fn a_header_declaring_more_than_memory_holds_is_refused_before_reading_a_pipe() {
    let dir = tempfile::tempdir().unwrap();
    write_data(dir.path());
    let huge = npy_bytes("<f4", "(1000000, 1000000)", &[0; 64]);
    let mut child = command(dir.path(), "train --features /dev/stdin --targets y.npy")
        .stdin(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    child.stdin.take().unwrap().write_all(&huge).unwrap();
    let err = failed(&child.wait_with_output().unwrap());
    assert!(err.contains("/dev/stdin: needs"), "{err}");
    assert!(err.contains("of memory to read, over the"), "{err}");
}

#[test]
fn a_pipe_is_read_once_and_trains() {
    let dir = tempfile::tempdir().unwrap();
    let (x, _) = write_data(dir.path());
    let bytes = std::fs::read(&x).unwrap();
    let pipe_run = |extra: &str| {
        let args =
            format!("train --epochs 1 --quiet --features /dev/stdin --targets y.npy {extra}");
        let mut child = command(dir.path(), &args)
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap();
        // A reader that refuses early closes the pipe: then the write fails, which is fine.
        let _ = child.stdin.take().unwrap().write_all(&bytes);
        child.wait_with_output().unwrap()
    };
    let out = pipe_run("");
    assert!(out.status.success(), "{}", stderr(&out));
    assert!(String::from_utf8_lossy(&out.stdout).contains("train_loss"));
    // A pipe cannot be memory-mapped.
    let err = failed(&pipe_run("--mmap"));
    assert!(err.contains("/dev/stdin: is not a regular file"), "{err}");
}

#[test]
fn dev_zero_is_a_clear_error_not_an_endless_read() {
    let dir = tempfile::tempdir().unwrap();
    write_data(dir.path());
    std::os::unix::fs::symlink("/dev/zero", dir.path().join("zero.npy")).unwrap();
    let started = Instant::now();
    let err = refused(dir.path(), "train --features zero.npy --targets y.npy");
    assert!(
        err.contains("zero.npy: has unknown IDX element type 0x00"),
        "{err}"
    );
    let err = refused(dir.path(), "train --features x.npy --targets zero.npy");
    assert!(err.contains("zero.npy: "), "{err}");
    let err = refused(dir.path(), "train --dataset digits --init zero.npy");
    assert!(
        err.contains("zero.npy: is not a readable safetensors file"),
        "{err}"
    );
    assert!(started.elapsed() < Duration::from_secs(30));
}

#[test]
fn a_fifo_without_a_writer_times_out_with_a_clear_message() {
    let dir = tempfile::tempdir().unwrap();
    write_data(dir.path());
    mkfifo(&dir.path().join("f.npy"));
    let started = Instant::now();
    let out = command(dir.path(), "train --features f.npy --targets y.npy")
        .env("DOWNHILL_INPUT_TIMEOUT", "1")
        .output();
    let err = failed(&out.unwrap());
    assert!(
        err.contains(
            "f.npy: no data arrived from this FIFO within 1 s; is a writer connected? \
             (set DOWNHILL_INPUT_TIMEOUT"
        ),
        "{err}"
    );
    assert!(started.elapsed() < Duration::from_secs(20));
    let out = command(dir.path(), "train --features f.npy --targets y.npy")
        .env("DOWNHILL_INPUT_TIMEOUT", "soon")
        .output();
    let err = failed(&out.unwrap());
    assert!(
        err.contains("DOWNHILL_INPUT_TIMEOUT=\"soon\" is not a number of seconds"),
        "{err}"
    );
}

#[test]
fn a_fifo_with_a_writer_is_read() {
    let dir = tempfile::tempdir().unwrap();
    let (x, _) = write_data(dir.path());
    let fifo = dir.path().join("f.npy");
    mkfifo(&fifo);
    let bytes = std::fs::read(&x).unwrap();
    // The writer comes late and writes in two pieces. Opened without blocking, it gives up if the
    // run never opens the FIFO (rather than blocking this test forever).
    let writer = std::thread::spawn(move || {
        std::thread::sleep(Duration::from_millis(300));
        let deadline = Instant::now() + Duration::from_secs(30);
        let mut file = loop {
            match std::fs::OpenOptions::new()
                .write(true)
                .custom_flags(libc::O_NONBLOCK)
                .open(&fifo)
            {
                Ok(f) => break f,
                Err(_) if Instant::now() < deadline => {
                    std::thread::sleep(Duration::from_millis(20))
                }
                Err(e) => panic!("no reader opened the FIFO: {e}"),
            }
        };
        let half = bytes.len() / 2;
        file.write_all(&bytes[..half]).unwrap();
        std::thread::sleep(Duration::from_millis(300));
        file.write_all(&bytes[half..]).unwrap();
    });
    let out = run(
        dir.path(),
        "train --epochs 1 --quiet --features f.npy --targets y.npy",
    );
    writer.join().unwrap();
    assert!(out.status.success(), "{}", stderr(&out));
}

#[test]
fn directories_and_sockets_are_refused() {
    let dir = tempfile::tempdir().unwrap();
    write_data(dir.path());
    std::fs::create_dir(dir.path().join("folder")).unwrap();
    let err = refused(dir.path(), "train --features folder --targets y.npy");
    assert!(err.contains("folder: is a directory, not a file"), "{err}");
    let _listener = std::os::unix::net::UnixListener::bind(dir.path().join("sock")).unwrap();
    let err = refused(dir.path(), "train --data sock");
    assert!(err.contains("sock: is a socket, not a file"), "{err}");
}

/// `features()` with NaN at row 5, column 1 and infinity at row 9, column 2.
fn nonfinite_features() -> Array2<f32> {
    let mut x = features();
    x[[5, 1]] = f32::NAN;
    x[[9, 2]] = f32::INFINITY;
    x
}

#[test]
fn nonfinite_values_are_reported_where_they_are() {
    let dir = tempfile::tempdir().unwrap();
    write_data(dir.path());
    npy::write(&dir.path().join("nan.npy"), &nonfinite_features()).unwrap();
    for extra in ["", "--standardize", "--mmap", "--mmap --standardize"] {
        let err = refused(
            dir.path(),
            &format!("train --features nan.npy --targets y.npy {extra}"),
        );
        assert!(
            err.contains("nan.npy: row 5, column 1 (counting from 0): NaN is not finite"),
            "{extra:?}: {err}"
        );
        assert!(!err.contains("diverged"), "{err}");
        if extra.contains("--mmap") {
            assert!(
                err.contains("rows cannot be skipped in a memory-mapped file"),
                "{err}"
            );
        } else {
            assert!(err.contains("--drop-nonfinite"), "{err}");
        }
    }
    // Float targets.
    let mut targets = Array2::from_shape_fn((ROWS, 1), |(r, _)| r as f32 / 10.0);
    targets[[7, 0]] = f32::NEG_INFINITY;
    npy::write(&dir.path().join("t.npy"), &targets).unwrap();
    let err = refused(
        dir.path(),
        "train --features x.npy --targets t.npy --loss mse",
    );
    assert!(
        err.contains("t.npy: row 7, column 0 (counting from 0): -inf is not finite"),
        "{err}"
    );
    // Float IDX features (element type 0x0D, big-endian f32).
    let mut idx = vec![0, 0, 0x0D, 2];
    idx.extend_from_slice(&(ROWS as u32).to_be_bytes());
    idx.extend_from_slice(&3u32.to_be_bytes());
    idx.extend(nonfinite_features().iter().flat_map(|v| v.to_be_bytes()));
    std::fs::write(dir.path().join("nan.idx"), idx).unwrap();
    let err = refused(dir.path(), "train --features nan.idx --targets y.npy");
    assert!(
        err.contains("nan.idx: row 5, column 1 (counting from 0): NaN"),
        "{err}"
    );
    // Validation files.
    let err = refused(
        dir.path(),
        "train --features x.npy --targets y.npy --val-features nan.npy --val-targets y.npy",
    );
    assert!(err.contains("nan.npy: row 5, column 1"), "{err}");
}

#[test]
fn drop_nonfinite_skips_the_rows_of_npy_files_in_features_and_targets() {
    let dir = tempfile::tempdir().unwrap();
    let (_, y) = write_data(dir.path());
    let x = dir.path().join("nan.npy");
    npy::write(&x, &nonfinite_features()).unwrap();
    let (data, dropped) = load_files(&x, &y, true).unwrap();
    assert_eq!((data.rows(), dropped), (ROWS - 2, 2));
    let kept: Vec<usize> = (0..ROWS).filter(|&r| r != 5 && r != 9).collect();
    assert_eq!(data.features, features().select(ndarray::Axis(0), &kept));
    let Targets::Classes(c) = &data.targets else {
        panic!("class indices stay class indices")
    };
    assert_eq!(c, &kept.iter().map(|&r| (r % 3) as u32).collect::<Vec<_>>());
    let refused = load_files(&x, &y, false).unwrap_err().to_string();
    assert!(refused.contains("row 5, column 1"), "{refused}");
    // Nothing left is an error, not an empty dataset.
    let all = dir.path().join("all.npy");
    npy::write(&all, &Array2::from_elem((ROWS, 3), f32::NAN)).unwrap();
    let none = load_files(&all, &y, true).unwrap_err().to_string();
    assert!(
        none.contains("has no rows left: all 120 held NaN or infinite values"),
        "{none}"
    );
}

#[test]
fn drop_nonfinite_on_the_command_line_skips_npy_rows_and_says_how_many() {
    let dir = tempfile::tempdir().unwrap();
    let (_, y) = write_data(dir.path());
    npy::write(&dir.path().join("nan.npy"), &nonfinite_features()).unwrap();
    let args = format!(
        "train --features nan.npy --targets {} --epochs 1 --drop-nonfinite",
        y.display()
    );
    let out = run(dir.path(), &args);
    let err = stderr(&out);
    assert!(out.status.success(), "{err}");
    assert!(
        err.contains("dropped 2 row(s) with NaN or infinite values"),
        "{err}"
    );
    let err = refused(dir.path(), &format!("{args} --mmap"));
    assert!(
        err.contains("memory-mapped rows cannot be skipped"),
        "{err}"
    );
}

/// A model checkpoint for the 3-column data, with NaN in `layers.1.bias[2]`.
fn nonfinite_model(path: &Path) {
    let model = ModelSpec::from_widths(&[3, 4, 3], Activation::Tanh, Activation::Identity).unwrap();
    let mut parameters = Parameters::init(&model, 0);
    parameters.tensor_mut("layers.1.bias").unwrap()[2] = f32::NAN;
    save_model(
        path,
        &ModelCheckpoint {
            model,
            loss: Loss::CrossEntropy,
            parameters,
            standardizer: None,
            target_standardizer: None,
        },
    )
    .unwrap();
}

#[test]
fn nonfinite_checkpoints_are_refused_naming_the_tensor_and_index() {
    let dir = tempfile::tempdir().unwrap();
    write_data(dir.path());
    nonfinite_model(&dir.path().join("nan.safetensors"));
    let expected = "nan.safetensors: tensor `layers.1.bias` holds NaN at index [2]";
    let err = refused(
        dir.path(),
        "train --features x.npy --targets y.npy --init nan.safetensors",
    );
    assert!(err.contains(expected), "{err}");
    let err = refused(
        dir.path(),
        "eval --model nan.safetensors --features x.npy --targets y.npy",
    );
    assert!(err.contains(expected), "{err}");

    // A training state whose optimizer state holds infinity.
    let out = run(
        dir.path(),
        "train --features x.npy --targets y.npy --epochs 1 --quiet --checkpoint-every 1 --checkpoint s.safetensors",
    );
    assert!(out.status.success(), "{}", stderr(&out));
    let mut state = load_state(&dir.path().join("s.safetensors")).unwrap();
    let (slot, values) = state
        .state
        .slots
        .first_mut()
        .expect("an optimizer with state");
    let slot = slot.clone();
    let inputs = values.tensor("layers.0.weight").unwrap().shape[1];
    values.tensor_mut("layers.0.weight").unwrap()[inputs + 2] = f32::INFINITY;
    save_state(&dir.path().join("bad.safetensors"), &state).unwrap();
    let err = refused(
        dir.path(),
        "train --features x.npy --targets y.npy --resume bad.safetensors",
    );
    assert!(
        err.contains(&format!(
            "bad.safetensors: tensor `optimizer.{slot}.layers.0.weight` holds inf at index [1, 2]"
        )),
        "{err}"
    );
}

#[test]
fn a_memory_mapped_file_truncated_mid_run_is_reported_and_the_checkpoint_survives() {
    let dir = tempfile::tempdir().unwrap();
    let (x, _) = write_data(dir.path());
    let mapped = dir.path().join("mapped.npy");
    std::fs::copy(&x, &mapped).unwrap();
    let state = dir.path().join("s.safetensors");
    let mut child = command(dir.path(), "train --features mapped.npy --targets y.npy --mmap --epochs 100000 --batch-size 16 --checkpoint-every 1 --checkpoint s.safetensors --quiet")
    .stdout(Stdio::null())
    .stderr(Stdio::piped())
    .spawn()
    .unwrap();
    let deadline = Instant::now() + Duration::from_secs(120);
    while !state.exists() {
        assert!(Instant::now() < deadline, "no checkpoint was written");
        assert!(child.try_wait().unwrap().is_none(), "the run ended early");
        std::thread::sleep(Duration::from_millis(20));
    }
    std::thread::sleep(Duration::from_millis(200));
    std::fs::OpenOptions::new()
        .write(true)
        .open(&mapped)
        .unwrap()
        .set_len(0)
        .unwrap();
    while child.try_wait().unwrap().is_none() {
        if Instant::now() > deadline {
            child.kill().unwrap();
            panic!("the run went on after its memory-mapped features were truncated");
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    // Exit status 1 with a message, not a death by SIGBUS (no code, or 135 from a shell).
    let err = failed(&child.wait_with_output().unwrap());
    assert!(err.contains("mapped.npy"), "{err}");
    assert!(err.contains("changed"), "{err}");
    load_state(&state).expect("the last checkpoint is whole");
    let out = run(
        dir.path(),
        "eval --model s.safetensors --features x.npy --targets y.npy",
    );
    assert!(out.status.success(), "{}", stderr(&out));
}

#[test]
fn a_read_past_the_end_of_a_shrunk_mapping_exits_with_a_message() {
    const CHILD: &str = "DOWNHILL_TEST_SHRINK_MAPPED";
    if let Some(path) = std::env::var_os(CHILD) {
        // In the child: map, shrink, then read past the new end (SIGBUS).
        let path = PathBuf::from(path);
        let mapped = MappedNpy::open(&path, Targets::Classes(vec![0; ROWS])).unwrap();
        std::fs::OpenOptions::new()
            .write(true)
            .open(&path)
            .unwrap()
            .set_len(0)
            .unwrap();
        let _ = mapped.fit_standardizer();
        panic!("reading past the end of the shrunk mapping did not fault");
    }
    let dir = tempfile::tempdir().unwrap();
    let (x, _) = write_data(dir.path());
    let out = Command::new(std::env::current_exe().unwrap())
        .args([
            "--exact",
            "a_read_past_the_end_of_a_shrunk_mapping_exits_with_a_message",
            "--nocapture",
        ])
        .env(CHILD, &x)
        .output()
        .unwrap();
    let err = stderr(&out);
    assert_eq!(out.status.code(), Some(1), "{err}");
    assert!(
        err.contains(&format!(
            "the end of the memory-mapped file {}, which changed or shrank under the run",
            x.display()
        )),
        "{err}"
    );
    assert!(
        err.contains("the last training-state checkpoint written, if any, is intact"),
        "{err}"
    );
}
