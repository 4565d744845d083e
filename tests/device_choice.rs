//! Which device runs, and what the first run on an adapter shows, mostly through the binary:
//! `--device auto` on a hardware GPU or else the CPU engine with its reason, `--device gpu` on
//! whatever adapter is best, `devices` marking both; an adapter or backend named but absent is an
//! error listing those present, whatever `--device` says; the environment variables that steer
//! the choice; autotuning's progress, its cancel flag and Ctrl-C while it runs; `eval` and
//! `predict` tuning only the forward products.

mod common;

use std::io::{BufRead, BufReader};
use std::path::Path;
use std::process::{Command, Output, Stdio};
use std::sync::mpsc;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use common::gpu;
use downhill::gpu::{Cancel, OnProgress, Progress, Tuning};
use downhill::optim::Sgd;
use downhill::tools::{DeviceReport, list_devices};
use downhill::{
    Activation, AdapterRequest, Error, GpuContext, GpuEngine, Loss, ModelSpec, Optimizer,
    Parameters, Setup,
};

/// Runs the binary with `args` (split at spaces) and extra environment variables.
fn downhill(args: &str, env: &[(&str, &Path)]) -> Output {
    let mut command = Command::new(env!("CARGO_BIN_EXE_downhill"));
    command
        .args(args.split_whitespace())
        .env("XDG_RUNTIME_DIR", std::env::temp_dir())
        .env_remove("WGPU_ADAPTER_NAME")
        .env_remove("WGPU_BACKEND")
        .env_remove("WGPU_POWER_PREF");
    for (key, value) in env {
        command.env(key, value);
    }
    command.output().expect("the downhill binary runs")
}

fn stderr(out: &Output) -> String {
    String::from_utf8_lossy(&out.stderr).into_owned()
}

fn succeeded(out: &Output) -> String {
    assert!(out.status.success(), "{}", stderr(out));
    stderr(out)
}

/// The adapters present, failing (never skipping) when there is none.
fn adapters() -> Vec<DeviceReport> {
    let listed = list_devices();
    assert!(
        !listed.is_empty(),
        "these tests need a wgpu adapter and found none. On Debian/Ubuntu: apt-get install \
         mesa-vulkan-drivers (software Vulkan), or run scripts/test, which installs it"
    );
    listed
}

/// The one line of `text` that starts with `device:`.
fn device_line(text: &str) -> &str {
    let lines: Vec<&str> = text.lines().filter(|l| l.starts_with("device:")).collect();
    assert_eq!(lines.len(), 1, "{text}");
    lines[0]
}

const SHORT_RUN: &str = "train --dataset blobs --layers 8,8,4 --max-steps 1";

#[test]
fn auto_runs_on_a_hardware_gpu_or_says_in_one_line_why_it_runs_on_the_cpu() {
    let listed = adapters();
    let dir = tempfile::tempdir().unwrap();
    let out = downhill(SHORT_RUN, &[("DOWNHILL_CACHE_DIR", dir.path())]);
    let text = succeeded(&out);
    let line = device_line(&text);
    match listed.iter().find(|d| d.auto) {
        Some(chosen) => {
            assert!(
                line.starts_with(&format!("device: gpu {}", chosen.name)),
                "{line}"
            );
            assert!(!["Cpu", "Other"].contains(&chosen.device_type.as_str()));
        }
        None => {
            assert!(
                line.starts_with(
                    "device: cpu (ndarray reference engine), because there is no hardware GPU, \
                     only "
                ) && line.ends_with("; --device gpu uses one"),
                "{line}"
            );
            for d in &listed {
                assert!(
                    line.contains(&format!("{} ({})", d.name, d.backend)),
                    "{line}"
                );
            }
        }
    }
}

#[test]
fn gpu_takes_the_best_adapter_even_a_software_one() {
    let listed = adapters();
    let chosen = listed
        .iter()
        .find(|d| d.gpu)
        .expect("--device gpu uses one");
    let dir = tempfile::tempdir().unwrap();
    let args = format!("{SHORT_RUN} --device gpu --no-autotune");
    let text = succeeded(&downhill(&args, &[("DOWNHILL_CACHE_DIR", dir.path())]));
    let line = device_line(&text);
    assert!(
        line.starts_with(&format!(
            "device: gpu {} ({}, {}",
            chosen.name, chosen.backend, chosen.device_type
        )),
        "{line}"
    );
    // A hardware GPU, where there is one, is what auto takes too.
    if listed.iter().any(|d| d.auto) {
        assert!(chosen.auto, "auto and gpu agree on the best hardware GPU");
    }
}

#[test]
fn devices_marks_the_adapters_auto_and_gpu_use() {
    let listed = adapters();
    let out = downhill("devices", &[]);
    assert!(out.status.success(), "{}", stderr(&out));
    let text = String::from_utf8_lossy(&out.stdout);
    for d in &listed {
        let mark = match (d.auto, d.gpu) {
            (true, true) => "  (--device auto and gpu use this one)",
            (true, false) => "  (--device auto uses this one)",
            (false, true) => "  (--device gpu uses this one)",
            (false, false) => "",
        };
        assert!(
            text.lines()
                .any(|l| l == format!("[{}] {}{mark}", d.index, d.name)),
            "{text}"
        );
    }
    assert_eq!(listed.iter().filter(|d| d.gpu).count(), 1, "{text}");
    assert!(listed.iter().filter(|d| d.auto).count() <= 1, "{text}");
    assert_eq!(
        text.contains("--device auto uses the CPU engine: none of these is a hardware GPU"),
        !listed.iter().any(|d| d.auto),
        "{text}"
    );
}

#[test]
fn an_adapter_or_backend_named_but_absent_is_an_error_whatever_the_device() {
    let listed = adapters();
    let vulkan = listed.iter().any(|d| d.backend == "Vulkan");
    let absent_backend = if cfg!(target_os = "macos") {
        "dx12"
    } else {
        "metal"
    };
    let check = |out: &Output, filter: &str| {
        let text = stderr(out);
        assert_eq!(out.status.code(), Some(1), "{text}");
        assert!(!text.contains("device: "), "nothing ran: {text}");
        assert!(
            text.contains(&format!(
                "error: no GPU adapter found {filter}; adapters present: [0] `"
            )),
            "{text}"
        );
        for d in &listed {
            assert!(
                text.contains(&format!(
                    "[{}] `{}` ({}, {})",
                    d.index, d.name, d.backend, d.device_type
                )),
                "{text}"
            );
        }
        // The driver is installed where a Vulkan adapter exists: no advice to install it.
        assert_eq!(text.contains("mesa-vulkan-drivers"), !vulkan, "{text}");
    };
    let dir = tempfile::tempdir().unwrap();
    let cache = [("DOWNHILL_CACHE_DIR", dir.path())];
    for device in ["auto", "gpu", "cpu"] {
        let args = format!("{SHORT_RUN} --device {device} --adapter no-such-adapter");
        check(
            &downhill(&args, &cache),
            "with a name containing `no-such-adapter`",
        );
        let args = format!("{SHORT_RUN} --device {device} --backend {absent_backend}");
        let backend = if absent_backend == "metal" {
            "Metal"
        } else {
            "Dx12"
        };
        check(&downhill(&args, &cache), &format!("on backend {backend}"));
    }
    // By index, one past the last.
    let beyond = listed.len();
    let args = format!("{SHORT_RUN} --adapter {beyond}");
    check(&downhill(&args, &cache), &format!("at index {beyond}"));
    // WGPU_ADAPTER_NAME names one as --adapter does.
    let named = Path::new("no-such-adapter");
    check(
        &downhill(SHORT_RUN, &[("WGPU_ADAPTER_NAME", named)]),
        "with a name containing `no-such-adapter`",
    );
}

#[test]
fn wgpu_backend_limits_the_adapters_seen() {
    let listed = adapters();
    let backend = listed[0].backend.to_lowercase();
    let out = downhill("devices", &[("WGPU_BACKEND", Path::new(&backend))]);
    let text = String::from_utf8_lossy(&out.stdout);
    let backends: Vec<&str> = text
        .lines()
        .filter_map(|l| l.trim().strip_prefix("backend"))
        .map(str::trim)
        .collect();
    assert!(!backends.is_empty(), "{text}");
    assert!(backends.iter().all(|b| *b == listed[0].backend), "{text}");
    // Asking for another backend than the ones WGPU_BACKEND lets wgpu see says so.
    let other = if backend == "gl" { "vulkan" } else { "gl" };
    let args = format!("{SHORT_RUN} --backend {other}");
    let out = downhill(&args, &[("WGPU_BACKEND", Path::new(&backend))]);
    let text = stderr(&out);
    assert_eq!(out.status.code(), Some(1), "{text}");
    assert!(
        text.contains(&format!(
            "WGPU_BACKEND={backend} hides the adapters on other backends"
        )),
        "{text}"
    );
    // A backend with no adapter here: `devices` says WGPU_BACKEND hides the rest, not that a
    // driver is missing.
    let absent = if cfg!(target_os = "macos") {
        "dx12"
    } else {
        "metal"
    };
    let out = downhill("devices", &[("WGPU_BACKEND", Path::new(absent))]);
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(
        text.contains(&format!(
            "no GPU adapters found on the backends WGPU_BACKEND={absent}"
        )) && !text.contains("mesa-vulkan-drivers"),
        "{text}"
    );
}

/// The lines of `text` that report tuning one product.
fn tuning_lines(text: &str) -> Vec<&str> {
    text.lines().filter(|l| l.starts_with("tuning ")).collect()
}

#[test]
fn a_first_gpu_run_shows_its_tuning_once_and_nothing_with_quiet() {
    adapters();
    let dir = tempfile::tempdir().unwrap();
    let cache = [("DOWNHILL_CACHE_DIR", dir.path())];
    let args = format!("{SHORT_RUN} --device gpu");
    let text = succeeded(&downhill(&args, &cache));
    assert!(text.contains("compiling the GPU kernels ..."), "{text}");
    let lines = tuning_lines(&text);
    let total = lines.len();
    assert!(total >= 2, "{text}");
    for (i, line) in lines.iter().enumerate() {
        let prefix = format!(
            "tuning {total} matrix products for this adapter, once: {}/{total} (",
            i + 1
        );
        assert!(
            line.starts_with(&prefix) && line.ends_with(") ..."),
            "{text}"
        );
    }
    let file = dir.path().join("autotune.json");
    assert!(
        text.contains(&format!("tuned {total} matrix products in ",))
            && text.contains(&format!("cached in {}", file.display())),
        "{text}"
    );
    // One line per new shape class: as many as the cache holds.
    let json: serde_json::Value = serde_json::from_slice(&std::fs::read(&file).unwrap()).unwrap();
    let classes = json.as_object().unwrap().values().next().unwrap();
    assert_eq!(classes.as_object().unwrap().len(), total, "{json}");

    // Cached: the next run times nothing.
    records_no_run_falls_behind(&file);
    let text = succeeded(&downhill(&args, &cache));
    assert!(tuning_lines(&text).is_empty(), "{text}");

    // --quiet says nothing of it, and still tunes and caches.
    let quiet_dir = tempfile::tempdir().unwrap();
    let quiet = [("DOWNHILL_CACHE_DIR", quiet_dir.path())];
    let text = succeeded(&downhill(&format!("{args} --quiet"), &quiet));
    assert!(
        tuning_lines(&text).is_empty() && !text.contains("tuned") && !text.contains("compiling"),
        "{text}"
    );
    assert!(quiet_dir.path().join("autotune.json").exists());
}

/// The shape classes in an autotune cache, or none when there is no file.
fn cached_classes(dir: &Path) -> Vec<String> {
    let Ok(bytes) = std::fs::read(dir.join("autotune.json")) else {
        return Vec::new();
    };
    let json: serde_json::Value = serde_json::from_slice(&bytes).unwrap();
    json.as_object()
        .unwrap()
        .values()
        .flat_map(|classes| classes.as_object().unwrap().keys().cloned())
        .collect()
}

#[test]
fn eval_and_predict_tune_only_the_forward_products() {
    adapters();
    let dir = tempfile::tempdir().unwrap();
    let model = dir.path().join("model.safetensors");
    let model = model.display();
    let untuned = dir.path().join("untuned");
    let train =
        format!("train --dataset blobs --layers 8,16,4 --epochs 1 --device gpu --save {model}");
    succeeded(&downhill(
        &format!("{train} --no-autotune"),
        &[("DOWNHILL_CACHE_DIR", &untuned)],
    ));
    assert!(cached_classes(&untuned).is_empty());

    // Forward products read A as is and B (the weights) transposed: "NT". Training's weight
    // gradients are "TN" and its input gradients "NN".
    let forward_only =
        |classes: &[String]| !classes.is_empty() && classes.iter().all(|c| c.starts_with("NT"));
    let eval_cache = dir.path().join("eval");
    let text = succeeded(&downhill(
        &format!("eval --device gpu --model {model} --dataset blobs"),
        &[("DOWNHILL_CACHE_DIR", &eval_cache)],
    ));
    assert!(
        !tuning_lines(&text).is_empty(),
        "eval shows its tuning: {text}"
    );
    let classes = cached_classes(&eval_cache);
    assert!(forward_only(&classes), "{classes:?}");

    let features = dir.path().join("x.npy");
    let x = ndarray::Array2::from_shape_fn((5, 8), |(i, j)| (i + j) as f32);
    downhill::data::npy::write(&features, &x).unwrap();
    let predict_cache = dir.path().join("predict");
    let output = dir.path().join("p.npy");
    succeeded(&downhill(
        &format!(
            "predict --device gpu --model {model} --features {} --output {}",
            features.display(),
            output.display()
        ),
        &[("DOWNHILL_CACHE_DIR", &predict_cache)],
    ));
    let classes = cached_classes(&predict_cache);
    // Forward products at predict's batch of 5 rows (a class of 8).
    assert!(
        forward_only(&classes) && classes.iter().all(|c| c.contains(" m8 ")),
        "{classes:?}"
    );

    // Training the same model tunes its gradient products too.
    let train_cache = dir.path().join("train");
    succeeded(&downhill(&train, &[("DOWNHILL_CACHE_DIR", &train_cache)]));
    let classes = cached_classes(&train_cache);
    assert!(classes.iter().any(|c| c.starts_with("TN")), "{classes:?}");
}

fn small_setup() -> (Setup, Parameters) {
    let model =
        ModelSpec::from_widths(&[8, 24, 3], Activation::Relu, Activation::Identity).unwrap();
    let init = Parameters::init(&model, 0);
    let setup = Setup {
        model,
        loss: Loss::CrossEntropy,
        optimizer: Optimizer::Sgd(Sgd::default()),
    };
    (setup, init)
}

/// A context that autotunes into `cache`, recording progress and stopping on `cancel`.
fn tuned(cache: &Path, events: &Arc<Mutex<Vec<Progress>>>, cancel: Option<Cancel>) -> GpuContext {
    gpu();
    let sink = Arc::clone(events);
    GpuContext::new(&AdapterRequest {
        tuning: Tuning::Autotune {
            cache: Some(cache.to_path_buf()),
        },
        progress: Some(OnProgress::new(move |event| {
            sink.lock().unwrap().push(event.clone());
        })),
        cancel,
        ..AdapterRequest::default()
    })
    .unwrap()
}

/// Sets every measured choice's record in the tuning cache at `cache` to 1,000 s per product.
/// A context checks each cached choice it uses against its record once, and times the shape
/// afresh when the tile now takes more than twice as long: on a test machine busy with other
/// tests, a product of a few microseconds can, and the count of products timed would then
/// depend on the machine's load.
fn records_no_run_falls_behind(cache: &Path) {
    let mut json: serde_json::Value =
        serde_json::from_slice(&std::fs::read(cache).unwrap()).unwrap();
    for classes in json.as_object_mut().unwrap().values_mut() {
        for choice in classes.as_object_mut().unwrap().values_mut() {
            if let Some(ns) = choice.get_mut("ns_per_product") {
                *ns = serde_json::json!(1e12);
            }
        }
    }
    std::fs::write(cache, serde_json::to_vec(&json).unwrap()).unwrap();
}

#[test]
fn progress_counts_each_new_product_once_and_inference_contexts_tune_forward_only() {
    let dir = tempfile::tempdir().unwrap();
    let cache = dir.path().join("autotune.json");
    let events = Arc::new(Mutex::new(Vec::new()));
    let (setup, init) = small_setup();

    let inference = tuned(&cache, &events, None).for_inference();
    GpuEngine::new(&inference, setup.clone(), &init, 16).unwrap();
    let classes = cached_classes(dir.path());
    assert!(
        !classes.is_empty() && classes.iter().all(|c| c.starts_with("NT")),
        "{classes:?}"
    );

    records_no_run_falls_behind(&cache);
    events.lock().unwrap().clear();
    GpuEngine::new(&tuned(&cache, &events, None), setup.clone(), &init, 16).unwrap();
    let seen = events.lock().unwrap().clone();
    let timed: Vec<(usize, usize)> = seen
        .iter()
        .filter_map(|e| match e {
            Progress::Tuning { index, total, .. } => Some((*index, *total)),
            _ => None,
        })
        .collect();
    // The forward products were cached by the inference context: only the gradients are new.
    let total = cached_classes(dir.path()).len() - classes.len();
    assert!(total >= 2, "{seen:?}");
    assert_eq!(
        timed,
        (1..=total).map(|i| (i, total)).collect::<Vec<_>>(),
        "{seen:?}"
    );
    assert!(
        matches!(seen.last(), Some(Progress::Tuned { total: t, .. }) if *t == total),
        "{seen:?}"
    );

    // Everything cached: nothing is timed.
    records_no_run_falls_behind(&cache);
    events.lock().unwrap().clear();
    GpuEngine::new(&tuned(&cache, &events, None), setup, &init, 16).unwrap();
    let seen = events.lock().unwrap().clone();
    assert!(
        !seen.iter().any(|e| matches!(e, Progress::Tuning { .. })),
        "{seen:?}"
    );
}

#[test]
fn a_cancel_flag_set_while_tuning_stops_the_engine_build_promptly() {
    let dir = tempfile::tempdir().unwrap();
    let cache = dir.path().join("autotune.json");
    let events = Arc::new(Mutex::new(Vec::new()));
    // The flag a signal handler records its signal in: any non-zero value stops tuning.
    let flag = Arc::new(std::sync::atomic::AtomicUsize::new(0));
    let cancel = Cancel::from_flag(Arc::clone(&flag));
    let ctx = tuned(&cache, &events, Some(cancel));
    let (setup, init) = small_setup();
    let cancelled_at = Arc::new(Mutex::new(None));
    // Set the flag from another thread once tuning has started.
    let watcher = {
        let (events, cancelled_at) = (Arc::clone(&events), Arc::clone(&cancelled_at));
        std::thread::spawn(move || {
            let deadline = Instant::now() + Duration::from_secs(60);
            while Instant::now() < deadline {
                if events
                    .lock()
                    .unwrap()
                    .iter()
                    .any(|e| matches!(e, Progress::Tuning { .. }))
                {
                    flag.store(2, std::sync::atomic::Ordering::SeqCst);
                    *cancelled_at.lock().unwrap() = Some(Instant::now());
                    return;
                }
                std::thread::sleep(Duration::from_millis(1));
            }
        })
    };
    let result = GpuEngine::new(&ctx, setup, &init, 64);
    let returned = Instant::now();
    watcher.join().unwrap();
    let Err(error) = result else {
        panic!("the engine was built despite the cancel flag");
    };
    assert!(matches!(error, Error::Cancelled { .. }), "{error}");
    assert!(
        error
            .to_string()
            .contains("stopped while timing matmul tiles"),
        "{error}"
    );
    let cancelled_at = cancelled_at.lock().unwrap().expect("tuning started");
    let waited = returned.duration_since(cancelled_at);
    assert!(
        waited < Duration::from_secs(2),
        "stopped {waited:?} after the flag"
    );
}

#[test]
fn ctrl_c_while_tuning_ends_the_run_at_once() {
    adapters();
    let dir = tempfile::tempdir().unwrap();
    let mut child = Command::new(env!("CARGO_BIN_EXE_downhill"))
        .args(
            "train --dataset digits --layers 64,256,256,10 --batch-size 256 --max-steps 1"
                .split(' '),
        )
        .args(["--device", "gpu"])
        .env("XDG_RUNTIME_DIR", std::env::temp_dir())
        .env("DOWNHILL_CACHE_DIR", dir.path())
        .stderr(Stdio::piped())
        .stdout(Stdio::null())
        .spawn()
        .unwrap();
    let (lines, received) = mpsc::channel();
    let stderr = BufReader::new(child.stderr.take().unwrap());
    std::thread::spawn(move || {
        for line in stderr.lines().map_while(std::result::Result::ok) {
            if lines.send(line).is_err() {
                return;
            }
        }
    });
    let mut seen = Vec::new();
    loop {
        let line = received
            .recv_timeout(Duration::from_secs(120))
            .unwrap_or_else(|_| panic!("no tuning line: {seen:?}"));
        let tuning = line.starts_with("tuning ");
        seen.push(line);
        if tuning {
            break;
        }
    }
    let sent = Instant::now();
    let kill = Command::new("kill")
        .args(["-INT", &child.id().to_string()])
        .status()
        .expect("kill runs");
    assert!(kill.success());
    let status = loop {
        if let Some(status) = child.try_wait().unwrap() {
            break status;
        }
        assert!(
            sent.elapsed() < Duration::from_secs(5),
            "still running {:?} after SIGINT",
            sent.elapsed()
        );
        std::thread::sleep(Duration::from_millis(20));
    };
    let waited = sent.elapsed();
    seen.extend(received.try_iter());
    assert_eq!(status.code(), Some(130), "{seen:?}");
    assert!(
        waited < Duration::from_secs(2),
        "exited {waited:?} after SIGINT"
    );
    assert!(
        seen.iter()
            .any(|l| l.contains("interrupted by SIGINT before training started")),
        "{seen:?}"
    );
    // What was cached before the signal is whole.
    if let Ok(bytes) = std::fs::read(dir.path().join("autotune.json")) {
        serde_json::from_slice::<serde_json::Value>(&bytes).expect("a whole cache file");
    }
}

#[test]
fn a_cache_write_that_a_killed_process_left_behind_is_cleared() {
    let dir = tempfile::tempdir().unwrap();
    let cache = dir.path().join("autotune.json");
    let stale = dir.path().join(".autotune.json.Ab12Cd.tmp");
    std::fs::write(&stale, b"torn").unwrap();
    tuned(&cache, &Arc::new(Mutex::new(Vec::new())), None);
    assert!(!stale.exists());
}
