//! `downhill` end to end, the tools: `devices`, `bench`, memory-mapped features, `check`.

mod common;

use common::cli::{downhill, npy_files, ok, s};
use downhill::checkpoint::load_model;
use downhill::gpu::MatmulTile;

#[test]
fn devices_lists_every_adapter_and_the_software_one_when_installed() {
    let out = ok(&["devices"]);
    assert!(
        out.contains("[0] ")
            && out.contains("max storage binding")
            && out.contains("timestamp queries"),
        "{out}"
    );
    let lavapipe = std::fs::read_dir("/usr/share/vulkan/icd.d")
        .map(|d| {
            d.flatten()
                .any(|e| e.file_name().to_string_lossy().starts_with("lvp_icd"))
        })
        .unwrap_or(false);
    if lavapipe {
        assert!(
            out.contains("llvmpipe") && out.contains("Vulkan") && out.contains("Cpu"),
            "{out}"
        );
    }
}

#[test]
fn bench_gemm_writes_complete_json_and_csv() {
    let json: serde_json::Value = serde_json::from_str(&ok(&[
        "bench",
        "gemm",
        "--device",
        "gpu",
        "--sizes",
        "32,65",
        "--seconds",
        "0.05",
        "--format",
        "json",
    ]))
    .unwrap();
    for key in [
        "adapter", "backend", "driver", "model", "data", "version", "date",
    ] {
        assert!(
            json["run"][key].as_str().is_some_and(|v| !v.is_empty()),
            "run.{key} in {json}"
        );
    }
    let results = json["results"].as_array().unwrap();
    assert_eq!(results.len(), 2);
    for r in results {
        assert!(
            r["gpu_gflops"].as_f64().unwrap() > 0.0
                && r["fixed_tile_gflops"].as_f64().unwrap() > 0.0
                && r["cpu_gflops"].as_f64().unwrap() > 0.0
                && r["cpu_engine_gflops"].as_f64().unwrap() > 0.0
                && MatmulTile::from_name(r["tile"].as_str().unwrap()).is_some(),
            "{r}"
        );
    }
    let csv = ok(&[
        "bench",
        "gemm",
        "--sizes",
        "32",
        "--seconds",
        "0.05",
        "--format",
        "csv",
    ]);
    let lines: Vec<&str> = csv.lines().collect();
    assert_eq!(
        lines[0],
        "n,tile,gpu GFLOP/s,fixed tile GFLOP/s,ndarray GFLOP/s,cpu engine GFLOP/s,gpu/ndarray %,gpu ms,ndarray ms"
    );
    assert_eq!(lines.len(), 2);
    assert_eq!(lines[1].split(',').count(), 9);
}

#[test]
fn bench_batch_size_writes_json_csv_and_a_plot() {
    let dir = tempfile::tempdir().unwrap();
    let plot = dir.path().join("bench.svg");
    let base = [
        "bench",
        "batch-size",
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
    ];
    let json: serde_json::Value =
        serde_json::from_str(&ok(
            &[&base[..], &["--format", "json", "--plot", s(&plot)]].concat()
        ))
        .unwrap();
    assert!(json["run"]["adapter"].as_str().unwrap().len() > 1);
    assert!(
        json["run"]["model"]
            .as_str()
            .unwrap()
            .starts_with("8-16-4 relu, cross-entropy, Adam")
    );
    let results = json["results"].as_array().unwrap();
    assert_eq!(results.len(), 4, "two batch sizes on two engines");
    for r in results {
        for key in [
            "samples_per_second",
            "step_ms_median",
            "step_ms_p10",
            "step_ms_p90",
            "final_loss",
            "train_seconds",
            "seconds_to_target",
        ] {
            assert!(r[key].as_f64().is_some_and(f64::is_finite), "{key} in {r}");
        }
        assert!(r["step_ms_p10"].as_f64() <= r["step_ms_p90"].as_f64());
        assert!(!r["loss_curve"].as_array().unwrap().is_empty());
        match r["engine"].as_str().unwrap() {
            "gpu" => {
                assert!(r["device_bytes"].as_u64().unwrap() > 0 && r["timing"].as_str().is_some());
                // Two layers: 2 forward, 2 loss, 2 weight and 2 bias gradients, 1 input
                // gradient, 1 fused update.
                assert_eq!(r["dispatches"], 10, "{r}");
                // Lavapipe has timestamp queries: every launch of a step is profiled.
                let profile = r["gpu_profile_ms"].as_object().unwrap();
                for kind in [
                    "matmul",
                    "loss",
                    "bias gradient",
                    "optimizer update",
                    "gather",
                ] {
                    assert!(profile[kind].as_f64().unwrap() >= 0.0, "{kind} in {r}");
                }
                for key in ["resident_samples_per_second", "streamed_samples_per_second"] {
                    assert!(r[key].as_f64().unwrap() > 0.0, "{key} in {r}");
                }
                let share = r["matmul_share"].as_f64().unwrap();
                assert!(share > 0.0 && share <= 1.0, "{r}");
            }
            "cpu" => {
                assert_eq!(r["timing"], "host");
                assert!(r["dispatches"].is_null() && r["gpu_profile_ms"].is_null());
                assert!(r["streamed_samples_per_second"].is_null());
            }
            other => panic!("engine {other}"),
        }
    }
    let svg = std::fs::read_to_string(&plot).unwrap();
    assert!(svg.starts_with("<svg") && svg.trim_end().ends_with("</svg>"));
    for text in [
        "samples per second",
        "batch size (rows)",
        "wall time (s)",
        "batch 8",
        "batch 50",
    ] {
        assert!(svg.contains(text), "the plot lacks {text:?}");
    }
    let csv = ok(&[&base[..], &["--format", "csv"]].concat());
    let lines: Vec<&str> = csv.lines().collect();
    assert_eq!(lines.len(), 5);
    assert!(lines[0].starts_with(
        "engine,batch,samples/s,step ms,latency ms,p10 ms,p90 ms,gpu ms,timing,device MiB,dispatches,matmul %,norm+dropout %,streamed/resident,loss@2ep"
    ));
    assert!(
        lines[1..].iter().all(|l| l.split(',').count() == 17),
        "{csv}"
    );
}

#[test]
fn memory_mapped_features_train_the_same_model() {
    let dir = tempfile::tempdir().unwrap();
    let (x, y) = npy_files(dir.path());
    let path = |name: &str| dir.path().join(name);
    let common = [
        "train",
        "--features",
        s(&x),
        "--targets",
        s(&y),
        "--epochs",
        "2",
        "--quiet",
    ];
    ok(&[
        &common[..],
        &["--mmap", "--save", s(&path("mapped.safetensors"))],
    ]
    .concat());
    ok(&[&common[..], &["--save", s(&path("loaded.safetensors"))]].concat());
    let model = |name: &str| load_model(&path(name)).unwrap();
    assert_eq!(
        model("mapped.safetensors").parameters,
        model("loaded.safetensors").parameters
    );
    // Standardised: fitted in one streaming pass over the mapped file, applied as rows stream.
    ok(&[
        &common[..],
        &[
            "--mmap",
            "--standardize",
            "--save",
            s(&path("mapped_std.safetensors")),
        ],
    ]
    .concat());
    ok(&[
        &common[..],
        &[
            "--standardize",
            "--save",
            s(&path("loaded_std.safetensors")),
        ],
    ]
    .concat());
    let (mapped, loaded) = (
        model("mapped_std.safetensors"),
        model("loaded_std.safetensors"),
    );
    assert_eq!(mapped.standardizer, loaded.standardizer);
    assert!(mapped.standardizer.is_some());
    assert_eq!(mapped.parameters, loaded.parameters);
    // Starting from a standardised checkpoint applies its statistics to the mapped rows too.
    let (from_mapped, from_loaded) = (
        path("from_mapped.safetensors"),
        path("from_loaded.safetensors"),
    );
    let init = path("loaded_std.safetensors");
    ok(&[
        &common[..],
        &["--mmap", "--init", s(&init), "--save", s(&from_mapped)],
    ]
    .concat());
    ok(&[
        &common[..],
        &["--init", s(&init), "--save", s(&from_loaded)],
    ]
    .concat());
    assert_eq!(
        load_model(&from_mapped).unwrap().parameters,
        load_model(&from_loaded).unwrap().parameters
    );
}

#[test]
fn check_passes_for_every_optimizer_loss_and_activation_and_writes_json() {
    let combos: [&[&str]; 6] = [
        &[
            "--optimizer",
            "sgd",
            "--momentum",
            "0.9",
            "--nesterov",
            "--activation",
            "relu",
            "--loss",
            "cross-entropy",
        ],
        &[
            "--optimizer",
            "adam",
            "--amsgrad",
            "--activation",
            "tanh",
            "--loss",
            "mse",
        ],
        &[
            "--optimizer",
            "adamw",
            "--activation",
            "gelu",
            "--loss",
            "bce-logits",
        ],
        &[
            "--optimizer",
            "rmsprop",
            "--centered",
            "--momentum",
            "0.5",
            "--activation",
            "sigmoid",
        ],
        &[
            "--optimizer",
            "adagrad",
            "--lr-decay",
            "0.01",
            "--activation",
            "leaky_relu(0.2)",
        ],
        &[
            "--optimizer",
            "sgd",
            "--weight-decay",
            "0.01",
            "--activation",
            "identity",
            "--clip-norm",
            "0.5",
        ],
    ];
    for extra in combos {
        let args = [
            &[
                "check",
                "--dataset",
                "blobs",
                "--layers",
                "8,12,4",
                "--steps",
                "3",
                "--batch-size",
                "50",
                "--format",
                "json",
            ][..],
            extra,
        ]
        .concat();
        let out = downhill(&args);
        let stdout = String::from_utf8_lossy(&out.stdout);
        assert_eq!(
            out.status.code(),
            Some(0),
            "{args:?}: {stdout}{}",
            String::from_utf8_lossy(&out.stderr)
        );
        let report: serde_json::Value = serde_json::from_str(&stdout).unwrap();
        assert_eq!(report["passed"], true);
        let steps = report["models"][0]["steps"].as_array().unwrap();
        assert_eq!(steps.len(), 3);
        for key in ["loss", "gradients", "parameters"] {
            for field in [
                "max_abs",
                "max_rel",
                "worst_tensor",
                "worst_index",
                "gpu",
                "cpu",
                "passed",
            ] {
                assert!(
                    !steps[2][key][field].is_null(),
                    "{key}.{field} missing in {stdout}"
                );
            }
        }
        assert!(report["gpu"].as_str().unwrap().contains("gpu"));
    }
}

#[test]
fn check_fails_and_names_the_tensor_when_a_difference_is_planted() {
    let out = downhill(&[
        "check",
        "--steps",
        "2",
        "--format",
        "json",
        "--perturb",
        "layers.1.weight:3:0.01",
    ]);
    assert_eq!(
        out.status.code(),
        Some(1),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let report: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(report["passed"], false);
    let first = &report["models"][0]["steps"][0]["parameters"];
    assert_eq!(
        (
            first["worst_tensor"].as_str(),
            first["worst_index"].as_u64()
        ),
        (Some("layers.1.weight"), Some(3))
    );
    assert_eq!(first["passed"], false);
    let table = ok(&[
        "check",
        "--steps",
        "2",
        "--dataset",
        "spirals",
        "--layers",
        "2,8,3",
    ]);
    assert!(
        table.contains("check passed") && table.contains("worst parameter"),
        "{table}"
    );
    let bad = downhill(&["check", "--perturb", "layers.9.weight:0:1"]);
    assert!(String::from_utf8_lossy(&bad.stderr).contains("no tensor `layers.9.weight`"));
}

#[test]
fn check_reports_a_run_that_diverges_and_fails() {
    let out = downhill(&[
        "check",
        "--dataset",
        "digits",
        "--steps",
        "3",
        "--optimizer",
        "sgd",
        "--lr",
        "1e30",
        "--format",
        "json",
    ]);
    assert_eq!(out.status.code(), Some(1), "a diverged check fails");
    let json: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    let model = &json["models"][0];
    assert_eq!(model["passed"], false);
    assert!(
        model["diverged"]["what"]
            .as_str()
            .is_some_and(|w| !w.is_empty()),
        "{model}"
    );
}

/// A build without the mpi feature, started by a launcher as one of several processes, stops
/// at once and says how to build for data-parallel training, rather than letting every
/// process train the whole run and write the same files.
#[cfg(not(feature = "mpi"))]
#[test]
fn a_build_without_mpi_refuses_to_run_as_one_of_several_ranks() {
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_downhill"))
        .args(["train", "--dataset", "digits", "--epochs", "1"])
        .env("OMPI_COMM_WORLD_SIZE", "2")
        .env("XDG_RUNTIME_DIR", std::env::temp_dir())
        .output()
        .unwrap();
    assert!(!out.status.success());
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr.contains("built without the mpi feature") && stderr.contains("--features mpi"),
        "{stderr}"
    );
}
