//! `downhill` end to end: train, save, eval, predict, load the checkpoint back, resume, stop.

mod common;

use std::process::Command;

use common::assert_close;
use common::cli::{downhill, npy_files, ok, s, write_plain};
use downhill::checkpoint::load_model;
use downhill::data::{builtin, npy};
use downhill::{Targets, Tolerance};

#[test]
fn default_run_trains_on_digits_to_at_least_95_percent() {
    let out = ok(&["train", "--quiet"]);
    let line = out
        .lines()
        .find(|l| l.starts_with("val_accuracy "))
        .unwrap_or_else(|| panic!("no val_accuracy in {out:?}"));
    let accuracy: f64 = line
        .trim_start_matches("val_accuracy ")
        .trim_end_matches('%')
        .parse()
        .unwrap();
    assert!(accuracy >= 95.0, "{line}");
}

#[test]
fn train_with_every_flag_then_save_eval_predict_and_load() {
    let dir = tempfile::tempdir().unwrap();
    let (x, y) = npy_files(dir.path());
    let (start, out) = (
        dir.path().join("start.safetensors"),
        dir.path().join("out.safetensors"),
    );
    // A starting point in plain PyTorch layout: only the tensors, no downhill metadata.
    let model = downhill::ModelSpec::from_widths(
        &[5, 16, 3],
        downhill::Activation::Relu,
        downhill::Activation::Identity,
    )
    .unwrap();
    let init = downhill::Parameters::init(&model, 11);
    write_plain(&start, &init);

    let args = [
        "train",
        "--features",
        s(&x),
        "--targets",
        s(&y),
        "--layers",
        "5,16,3",
        "--activation",
        "relu",
        "--loss",
        "cross-entropy",
        "--optimizer",
        "adam",
        "--lr",
        "0.01",
        "--beta1",
        "0.9",
        "--beta2",
        "0.999",
        "--eps",
        "1e-8",
        "--weight-decay",
        "0",
        "--momentum",
        "0.9",
        "--nesterov",
        "--dampening",
        "0",
        "--alpha",
        "0.99",
        "--centered",
        "--amsgrad",
        "--batch-size",
        "32",
        "--epochs",
        "3",
        "--no-shuffle",
        "--seed",
        "1",
        "--init",
        s(&start),
        "--save",
        s(&out),
        "--device",
        "gpu",
    ];
    let run = downhill(&args);
    assert!(
        run.status.success(),
        "{}",
        String::from_utf8_lossy(&run.stderr)
    );
    let stderr = String::from_utf8_lossy(&run.stderr);
    assert!(stderr.contains("--momentum, --dampening, --nesterov, --alpha, --centered do not apply to Adam and are ignored"), "{stderr}");

    // The checkpoint is nn.Linear-shaped and loads back.
    let saved = load_model(&out).unwrap();
    assert_eq!(saved.model, model);
    assert_eq!(saved.loss, downhill::Loss::CrossEntropy);
    let names: Vec<_> = saved
        .parameters
        .named_tensors()
        .iter()
        .map(|t| (t.name.clone(), t.shape.clone()))
        .collect();
    assert_eq!(names[0], ("layers.0.weight".to_string(), vec![16, 5]));
    assert_eq!(names[3], ("layers.1.bias".to_string(), vec![3]));
    assert_ne!(saved.parameters, init, "training moved the parameters");

    // The same run on the CPU gives the same parameters.
    let cpu_out = dir.path().join("cpu.safetensors");
    let mut cpu_args = args.to_vec();
    let at = cpu_args.len() - 3;
    cpu_args[at] = s(&cpu_out);
    *cpu_args.last_mut().unwrap() = "cpu";
    ok(&cpu_args);
    assert_close(
        "cli gpu vs cpu",
        &saved.parameters,
        &load_model(&cpu_out).unwrap().parameters,
        Tolerance::default(),
    );

    let eval = ok(&[
        "eval",
        "--model",
        s(&out),
        "--features",
        s(&x),
        "--targets",
        s(&y),
    ]);
    assert!(
        eval.contains("rows 150") && eval.contains("loss ") && eval.contains("accuracy "),
        "{eval}"
    );

    let (pred_npy, pred_csv) = (dir.path().join("p.npy"), dir.path().join("p.csv"));
    ok(&[
        "predict",
        "--model",
        s(&out),
        "--features",
        s(&x),
        "--output",
        s(&pred_npy),
    ]);
    let outputs = npy::Npy::read(&pred_npy).unwrap().to_matrix().unwrap();
    assert_eq!(outputs.dim(), (150, 3));
    ok(&[
        "predict",
        "--model",
        s(&out),
        "--features",
        s(&x),
        "--output",
        s(&pred_csv),
        "--classes",
    ]);
    let csv = std::fs::read_to_string(&pred_csv).unwrap();
    assert_eq!(csv.lines().next(), Some("class"));
    assert_eq!(csv.lines().count(), 151);
}

#[test]
fn csv_data_validation_split_metrics_and_plot() {
    let dir = tempfile::tempdir().unwrap();
    let data = builtin::linear(120, 3, 0.05, 2).0;
    let Targets::Dense(y) = &data.targets else {
        unreachable!()
    };
    let mut text = String::from("a,b,c,price\n");
    for (row, t) in data.features.rows().into_iter().zip(y.column(0)) {
        text += &format!("{},{},{},{t}\n", row[0], row[1], row[2]);
    }
    let csv = dir.path().join("d.csv");
    std::fs::write(&csv, text).unwrap();
    let (metrics, plot, model) = (
        dir.path().join("m.jsonl"),
        dir.path().join("loss.svg"),
        dir.path().join("lin.safetensors"),
    );
    let out = ok(&[
        "train",
        "--data",
        s(&csv),
        "--target-column",
        "price",
        "--layers",
        "3,1",
        "--optimizer",
        "sgd",
        "--lr",
        "0.1",
        "--epochs",
        "20",
        "--val-split",
        "0.25",
        "--standardize",
        "--schedule",
        "cosine",
        "--warmup",
        "5",
        "--quiet",
        "--metrics",
        s(&metrics),
        "--plot",
        s(&plot),
        "--save",
        s(&model),
    ]);
    let val_loss: f64 = out
        .lines()
        .find_map(|l| l.strip_prefix("val_loss "))
        .unwrap()
        .parse()
        .unwrap();
    assert!(val_loss < 0.05, "linear regression should fit: {out}");
    let lines: Vec<serde_json::Value> = std::fs::read_to_string(&metrics)
        .unwrap()
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    assert_eq!(lines.len(), 20);
    assert!(lines[19]["val_loss"].as_f64().unwrap() < lines[0]["val_loss"].as_f64().unwrap());
    let svg = std::fs::read_to_string(&plot).unwrap();
    assert!(
        svg.starts_with("<svg")
            && svg.contains("train loss")
            && svg.contains("validation loss")
            && svg.contains("epoch")
    );
    // The statistics travel with the model: eval on the raw CSV applies them.
    assert!(load_model(&model).unwrap().standardizer.is_some());
    let eval = ok(&[
        "eval",
        "--model",
        s(&model),
        "--data",
        s(&csv),
        "--target-column",
        "price",
    ]);
    let loss: f64 = eval
        .lines()
        .find_map(|l| l.strip_prefix("loss "))
        .unwrap()
        .parse()
        .unwrap();
    assert!(loss < 0.05, "{eval}");
}

#[test]
fn resume_continues_exactly_where_a_checkpoint_left_off() {
    let dir = tempfile::tempdir().unwrap();
    let (x, y) = npy_files(dir.path());
    let common = [
        "train",
        "--features",
        s(&x),
        "--targets",
        s(&y),
        "--epochs",
        "4",
        "--batch-size",
        "20",
        "--seed",
        "3",
        "--quiet",
    ];
    let (whole, part, state, resumed) = (
        dir.path().join("whole.safetensors"),
        dir.path().join("part.safetensors"),
        dir.path().join("state.safetensors"),
        dir.path().join("resumed.safetensors"),
    );
    ok(&[&common[..], &["--save", s(&whole)]].concat());
    ok(&[
        &common[..],
        &[
            "--max-steps",
            "12",
            "--checkpoint-every",
            "12",
            "--checkpoint",
            s(&state),
            "--save",
            s(&part),
        ],
    ]
    .concat());
    ok(&[&common[..], &["--resume", s(&state), "--save", s(&resumed)]].concat());
    assert_eq!(
        load_model(&resumed).unwrap().parameters,
        load_model(&whole).unwrap().parameters
    );
}

#[test]
fn sigint_and_sigterm_write_a_training_state_and_exit_130_and_143() {
    for (signal, status) in [("INT", 130), ("TERM", 143)] {
        let dir = tempfile::tempdir().unwrap();
        let state = dir.path().join("s.safetensors");
        let mut child = Command::new(env!("CARGO_BIN_EXE_downhill"))
            .args([
                "train",
                "--dataset",
                "spirals",
                "--epochs",
                "1000000",
                "--checkpoint",
                s(&state),
            ])
            .env("XDG_RUNTIME_DIR", std::env::temp_dir())
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::piped())
            .spawn()
            .unwrap();
        // A signal before training starts ends the process at once (nothing to save): wait for
        // the line that says where the batches come from, printed as the first step starts.
        let mut lines = std::io::BufReader::new(child.stderr.take().unwrap());
        let mut stderr = String::new();
        while !stderr.contains("batches, steps") {
            let read = std::io::BufRead::read_line(&mut lines, &mut stderr).unwrap();
            assert!(read > 0, "the run ended before training: {stderr}");
        }
        Command::new("kill")
            .args([&format!("-{signal}"), &child.id().to_string()])
            .status()
            .unwrap();
        std::io::Read::read_to_string(&mut lines, &mut stderr).unwrap();
        let out = child.wait_with_output().unwrap();
        assert_eq!(out.status.code(), Some(status), "{stderr}");
        assert!(
            stderr.contains(&format!("interrupted by SIG{signal}"))
                && stderr.contains(&format!("continue with --resume {}", s(&state))),
            "{stderr}"
        );
        let saved = downhill::checkpoint::load_state(&state).unwrap();
        assert!(saved.state.steps > 0);
    }
}

#[test]
fn a_run_killed_at_any_moment_leaves_a_checkpoint_that_loads_and_resumes() {
    use rand::{Rng, SeedableRng};
    let dir = tempfile::tempdir().unwrap();
    let state = dir.path().join("state.safetensors");
    // A model large enough that writing its state (about 1.3 MB, every step) takes a while, so
    // that some kills land in the middle of a write.
    let run = |extra: &[&str]| {
        let mut args = vec![
            "train",
            "--dataset",
            "digits",
            "--layers",
            "64,256,256,10",
            "--device",
            "cpu",
            "--batch-size",
            "16",
            "--epochs",
            "1000",
            "--quiet",
            "--checkpoint-every",
            "1",
            "--checkpoint",
            s(&state),
        ];
        args.extend_from_slice(extra);
        args.iter().map(|a| a.to_string()).collect::<Vec<_>>()
    };
    let mut rng = rand_chacha::ChaCha8Rng::seed_from_u64(7);
    for _ in 0..5 {
        let _ = std::fs::remove_file(&state);
        let mut child = Command::new(env!("CARGO_BIN_EXE_downhill"))
            .args(run(&[]))
            .stderr(std::process::Stdio::null())
            .spawn()
            .unwrap();
        // Once a first checkpoint exists, kill at a random moment of the steps and writes after.
        let started = std::time::Instant::now();
        while !state.exists() && started.elapsed().as_secs() < 60 {
            std::thread::sleep(std::time::Duration::from_millis(10));
        }
        std::thread::sleep(std::time::Duration::from_millis(rng.random_range(0..800)));
        child.kill().unwrap(); // SIGKILL
        child.wait().unwrap();
        let saved = downhill::checkpoint::load_state(&state)
            .unwrap_or_else(|e| panic!("the checkpoint left by a killed run must load: {e}"));
        let target = (saved.state.steps + 2).to_string();
        let resume = s(&state).to_string();
        let out = downhill(
            &run(&["--resume", &resume, "--max-steps", &target])
                .iter()
                .map(String::as_str)
                .collect::<Vec<_>>(),
        );
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
        let after = downhill::checkpoint::load_state(&state).unwrap();
        assert_eq!(after.state.steps, saved.state.steps + 2);
    }
}

#[test]
fn the_same_seed_and_flags_give_bit_identical_checkpoint_files_run_after_run() {
    let dir = tempfile::tempdir().unwrap();
    let (x, y) = npy_files(dir.path());
    let path = |name: &str| dir.path().join(name);
    let bytes = |name: &str| std::fs::read(path(name)).unwrap();
    // Shuffled every epoch (the default), on the GPU: resident, streamed from memory and streamed
    // from a memory-mapped file.
    for (run, extra) in [
        ("resident", &["--residency", "resident"][..]),
        ("streamed", &["--residency", "streamed"][..]),
        ("mapped", &["--mmap", "--standardize"][..]),
    ] {
        for attempt in 0..2 {
            // Each attempt writes the same file names in a folder of its own: a training state
            // records the run's flags, outputs relative to its folder.
            std::fs::create_dir_all(path(&format!("{attempt}"))).unwrap();
            let (model, state) = (
                format!("{attempt}/{run}.safetensors"),
                format!("{attempt}/{run}.state.safetensors"),
            );
            let mut args = vec![
                "train",
                "--features",
                s(&x),
                "--targets",
                s(&y),
                "--device",
                "gpu",
                "--epochs",
                "3",
                "--batch-size",
                "16",
                "--seed",
                "5",
                "--quiet",
                "--checkpoint-every",
                "7",
            ];
            args.extend_from_slice(extra);
            let (model_path, state_path) = (path(&model), path(&state));
            args.extend_from_slice(&["--save", s(&model_path), "--checkpoint", s(&state_path)]);
            ok(&args);
        }
        for file in ["", ".state"] {
            assert!(
                bytes(&format!("0/{run}{file}.safetensors"))
                    == bytes(&format!("1/{run}{file}.safetensors")),
                "{run}{file}: two runs differ"
            );
        }
    }
    // The data fingerprint is the same whether the rows were in memory or memory-mapped.
    let fingerprint = |name: &str| {
        downhill::checkpoint::load_state(&path(name))
            .unwrap()
            .data_checksum
    };
    assert_eq!(
        fingerprint("0/streamed.state.safetensors"),
        fingerprint("0/resident.state.safetensors")
    );
    ok(&[
        "train",
        "--features",
        s(&x),
        "--targets",
        s(&y),
        "--device",
        "gpu",
        "--epochs",
        "1",
        "--standardize",
        "--quiet",
        "--checkpoint-every",
        "1",
        "--max-steps",
        "1",
        "--checkpoint",
        s(&path("in_memory_std.state.safetensors")),
    ]);
    assert_eq!(
        fingerprint("0/mapped.state.safetensors"),
        fingerprint("in_memory_std.state.safetensors")
    );
}
