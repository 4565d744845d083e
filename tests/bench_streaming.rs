//! `downhill bench batch-size` on data that is not resident on the engine: streamed on request,
//! streamed because the device's memory cannot hold it, streamed from a memory-mapped file. Each
//! measures every column, says that it streamed and why, and trains as the resident run does.

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use downhill::data::npy;
use ndarray::Array2;

fn run(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_downhill"))
        .args(args)
        .env("XDG_RUNTIME_DIR", std::env::temp_dir())
        .output()
        .expect("the downhill binary runs")
}

/// Standard output and error of a run that must succeed.
fn ok(args: &[&str]) -> (String, String) {
    let out = run(args);
    let stderr = String::from_utf8_lossy(&out.stderr).into_owned();
    assert!(out.status.success(), "downhill {args:?} failed:\n{stderr}");
    (String::from_utf8(out.stdout).unwrap(), stderr)
}

fn s(p: &Path) -> &str {
    p.to_str().unwrap()
}

/// 6,000 rows of 48 features in 4 classes: 6,000 × (48 + 4 + 1) × 4 bytes ≈ 1.2 MiB resident,
/// over a 1 MiB device, while a 48-16-4 model and its batches take about 0.2 MiB.
fn larger_than_a_mebibyte(dir: &Path) -> (PathBuf, PathBuf) {
    let rows = 6000;
    let features = Array2::from_shape_fn((rows, 48), |(r, c)| {
        let class = (r % 4) as f32;
        ((r * 31 + c * 17) % 101) as f32 / 101.0 - 0.5 + if c % 4 == r % 4 { class } else { 0.0 }
    });
    let classes: Vec<i64> = (0..rows).map(|r| (r % 4) as i64).collect();
    let (x, y) = (dir.join("x.npy"), dir.join("y.npy"));
    npy::write(&x, &features).unwrap();
    npy::write_int_vector(&y, &classes).unwrap();
    (x, y)
}

/// The benchmark's JSON results, and its standard error.
fn bench(args: &[&str]) -> (Vec<serde_json::Value>, String) {
    let (stdout, stderr) = ok(&[&["bench", "batch-size", "--format", "json"], args].concat());
    let json: serde_json::Value = serde_json::from_str(&stdout).unwrap();
    (json["results"].as_array().unwrap().clone(), stderr)
}

/// Asserts that `r` measured every column that applies to its engine, with batches streamed
/// from the host because of something containing `because`.
fn assert_streamed_and_complete(r: &serde_json::Value, because: &str) {
    assert_eq!(r["data"], "streamed", "{r}");
    assert!(
        r["streamed_because"].as_str().unwrap().contains(because),
        "{because:?} in {r}"
    );
    for key in [
        "samples_per_second",
        "step_ms_median",
        "step_ms_p10",
        "step_ms_p90",
        "final_loss",
        "train_seconds",
    ] {
        assert!(r[key].as_f64().is_some_and(f64::is_finite), "{key} in {r}");
    }
    assert!(r["samples_per_second"].as_f64().unwrap() > 0.0, "{r}");
    assert!(!r["loss_curve"].as_array().unwrap().is_empty(), "{r}");
    assert!(r["resident_samples_per_second"].is_null(), "{r}");
    if r["engine"] == "gpu" {
        assert!(r["device_bytes"].as_u64().unwrap() > 0, "{r}");
        // Two layers, streamed: no gather launch.
        assert_eq!(r["dispatches"], 10, "{r}");
        assert!(r["gpu_ms_median"].as_f64().unwrap() > 0.0, "{r}");
        let profile = r["gpu_profile_ms"].as_object().unwrap();
        assert!(
            profile.contains_key("matmul") && !profile.contains_key("gather"),
            "{r}"
        );
        assert!(r["matmul_share"].as_f64().unwrap() > 0.0, "{r}");
        assert!(
            r["streamed_samples_per_second"].as_f64().unwrap() > 0.0,
            "{r}"
        );
    }
}

#[test]
fn streamed_on_request_measures_every_column_on_both_engines() {
    let base = [
        "--dataset",
        "blobs",
        "--layers",
        "8,16,4",
        "--batch-sizes",
        "8,50",
        "--device",
        "gpu,cpu",
        "--steps",
        "4",
        "--warmup-steps",
        "1",
        "--epochs",
        "2",
        "--target-loss",
        "10",
        "--no-autotune",
    ];
    let (rows, stderr) = bench(&[&base[..], &["--residency", "streamed"]].concat());
    assert_eq!(rows.len(), 4, "two batch sizes on two engines");
    for r in &rows {
        assert_streamed_and_complete(r, "asked for");
        assert!(r["seconds_to_target"].as_f64().is_some(), "{r}");
    }
    for engine in ["gpu", "cpu"] {
        let line = format!(
            "data: {engine} batches of 8, 50 streamed from the host, not resident because asked for"
        );
        assert!(stderr.contains(&line), "{line:?} in {stderr}");
    }
    // The same batches from the same start: streaming trains what residency trains.
    let (resident, stderr) = bench(&base);
    assert!(!stderr.contains("streamed from the host"), "{stderr}");
    for (r, s) in resident.iter().zip(&rows) {
        assert_eq!(r["data"], "resident", "{r}");
        assert!(r["streamed_because"].is_null(), "{r}");
        assert_eq!(r["final_loss"], s["final_loss"], "{r}\n{s}");
    }
    let (csv, _) = ok(&[
        &["bench", "batch-size", "--format", "csv"],
        &base[..],
        &["--residency", "streamed"],
    ]
    .concat());
    let lines: Vec<&str> = csv.lines().collect();
    assert_eq!(lines.len(), 5, "{csv}");
    assert!(lines.iter().all(|l| l.split(',').count() == 17), "{csv}");
}

#[test]
fn data_over_the_device_memory_streams_where_train_would() {
    let dir = tempfile::tempdir().unwrap();
    let (x, y) = larger_than_a_mebibyte(dir.path());
    let base = [
        "--features",
        s(&x),
        "--targets",
        s(&y),
        "--layers",
        "48,16,4",
        "--batch-sizes",
        "64,256",
        "--device",
        "gpu",
        "--steps",
        "3",
        "--warmup-steps",
        "1",
        "--epochs",
        "1",
        "--no-autotune",
    ];
    let small = [&base[..], &["--gpu-memory", "1"]].concat();
    let (rows, stderr) = bench(&small);
    assert_eq!(rows.len(), 2);
    for r in &rows {
        assert_streamed_and_complete(r, "over the 1.0 MiB available");
        assert!(
            r["device_bytes"].as_u64().unwrap() < 1 << 20,
            "the engine fits in 1 MiB without the data: {r}"
        );
    }
    assert!(
        stderr.contains("data: gpu batches of 64 streamed from the host, not resident because")
            && stderr.contains("resident data 1.2 MiB"),
        "{stderr}"
    );
    // Resident where the memory allows, and the same training either way.
    let (resident, _) = bench(&base);
    for (r, s) in resident.iter().zip(&rows) {
        assert_eq!(r["data"], "resident", "{r}");
        assert!(
            r["resident_samples_per_second"].as_f64().unwrap() > 0.0,
            "{r}"
        );
        assert_eq!(r["final_loss"], s["final_loss"], "{r}\n{s}");
    }
    // Residency demanded where it cannot be had is an error that says why.
    let out = run(&[
        &["bench", "batch-size"],
        &small[..],
        &["--residency", "resident"],
    ]
    .concat());
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "{stderr}");
    assert!(stderr.contains("over the 1.0 MiB available"), "{stderr}");
}

#[test]
fn memory_mapped_features_stream_from_disk() {
    let dir = tempfile::tempdir().unwrap();
    let (x, y) = larger_than_a_mebibyte(dir.path());
    let base = [
        "--features",
        s(&x),
        "--targets",
        s(&y),
        "--layers",
        "48,16,4",
        "--batch-sizes",
        "100",
        "--device",
        "cpu",
        "--steps",
        "3",
        "--warmup-steps",
        "1",
        "--epochs",
        "1",
    ];
    let (mapped, stderr) = bench(&[&base[..], &["--mmap"]].concat());
    assert_streamed_and_complete(&mapped[0], "the features are memory-mapped");
    assert!(
        stderr.contains("not resident because the features are memory-mapped"),
        "{stderr}"
    );
    let (loaded, _) = bench(&base);
    assert_eq!(loaded[0]["data"], "resident");
    assert_eq!(loaded[0]["final_loss"], mapped[0]["final_loss"]);
}
