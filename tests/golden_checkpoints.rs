//! The bytes a fixed set of commands writes do not change: SHA-256 of the checkpoints of a GPU
//! run (resident and streamed), a CPU run, a sweep's best model, and a resumed run with its
//! training state. A change to the code's structure must leave every bit of every result where
//! it was; a change that means to move them updates the table below and says why.
//!
//! The figures depend on the arithmetic of the machine that computes them: they were recorded on
//! x86_64 with Mesa's lavapipe (llvmpipe) as the GPU, as CI runs. On another machine (a hardware
//! GPU, another CPU architecture) the table does not apply, and the test checks instead that
//! every command, run twice, writes the same bytes both times.
//!
//! `DOWNHILL_BLESS=1 cargo test --test golden_checkpoints` prints the current table.

mod common;

use std::path::Path;

use common::binary::ok;
use sha2::{Digest, Sha256};

/// The GPU flags: the fixed matrix tiles, so that the bits do not depend on an autotune cache.
const GPU: &[&str] = &["--device", "gpu", "--no-autotune"];

/// What every run shares: a small MLP on the built-in digits, one seed.
const RUN: &[&str] = &[
    "--dataset",
    "digits",
    "--layers",
    "64,24,10",
    "--seed",
    "5",
    "--epochs",
    "2",
    "--quiet",
];

/// Each command (after `RUN`'s flags) and the file whose bytes it pins.
fn commands() -> Vec<(&'static str, Vec<&'static str>, &'static str)> {
    let with = |first: &[&'static str], rest: &[&'static str]| {
        let mut args = first.to_vec();
        args.extend_from_slice(RUN);
        args.extend_from_slice(rest);
        args
    };
    vec![
        (
            "gpu resident adam",
            with(
                &["train"],
                &[
                    GPU,
                    &["--residency", "resident"],
                    &[
                        "--optimizer",
                        "adam",
                        "--lr",
                        "0.003",
                        "--save",
                        "gpu_resident.safetensors",
                    ],
                ]
                .concat(),
            ),
            "gpu_resident.safetensors",
        ),
        (
            "gpu streamed adam",
            with(
                &["train"],
                &[
                    GPU,
                    &["--residency", "streamed"],
                    &[
                        "--optimizer",
                        "adam",
                        "--lr",
                        "0.003",
                        "--save",
                        "gpu_streamed.safetensors",
                    ],
                ]
                .concat(),
            ),
            "gpu_streamed.safetensors",
        ),
        (
            "cpu sgd with momentum and clipping",
            with(
                &["train", "--device", "cpu"],
                &[
                    "--momentum",
                    "0.9",
                    "--clip-norm",
                    "1",
                    "--save",
                    "cpu.safetensors",
                ],
            ),
            "cpu.safetensors",
        ),
        (
            "gpu sweep's best model",
            with(
                &["sweep"],
                &[
                    GPU,
                    &["--lr", "0.01,0.1,0.5", "--save", "sweep_best.safetensors"],
                ]
                .concat(),
            ),
            "sweep_best.safetensors",
        ),
        (
            "cpu run stopped at step 70 (its state)",
            with(
                &["train", "--device", "cpu"],
                &[
                    "--optimizer",
                    "rmsprop",
                    "--lr",
                    "0.001",
                    "--max-steps",
                    "70",
                    "--checkpoint-every",
                    "70",
                    "--checkpoint",
                    "run.state.safetensors",
                    "--save",
                    "stopped.safetensors",
                ],
            ),
            "run.state.safetensors",
        ),
        (
            "the same run resumed to its end",
            vec![
                "train",
                "--resume",
                "run.state.safetensors",
                "--max-steps",
                "1000",
                "--save",
                "resumed.safetensors",
                "--quiet",
            ],
            "resumed.safetensors",
        ),
    ]
}

/// The recorded SHA-256 of each command's file, in `commands()` order (x86_64, llvmpipe).
const GOLDEN: &[&str] = &[
    "b35b02cf9b1686a7e7f4911a5b3446231d08e1aa427a1bb2afd668c341af7c4c", // gpu resident adam
    "b35b02cf9b1686a7e7f4911a5b3446231d08e1aa427a1bb2afd668c341af7c4c", // gpu streamed adam
    "af1bc78509bdfa35bf41e954f8137eddbf6e78b65eb02e70b3c8bd368c82f4d1", // cpu sgd with momentum and clipping
    "7f020c0d2b27ffb23a49f192e0b3f06a3db83dacc4d0718076699a741201d24d", // gpu sweep's best model
    "53bff646b75e4ba20b155d670faa7770dcb075c8a48681baaa3fe75bbe20f68f", // cpu run stopped at step 70 (its state)
    "248f2ccb3756ec93e3c9fed88d83b029d7f9aa09fa721bcd4bf07ecf6ea6eaa1", // the same run resumed to its end
];

/// The hex SHA-256 of a file.
fn sha256(path: &Path) -> String {
    let bytes = std::fs::read(path).expect("the run wrote its file");
    Sha256::digest(&bytes)
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect()
}

/// Every command run in a fresh folder, in order, and the hash of each one's file.
fn run_all() -> Vec<String> {
    let dir = tempfile::tempdir().unwrap();
    commands()
        .into_iter()
        .map(|(_, args, file)| {
            ok(&args, dir.path());
            sha256(&dir.path().join(file))
        })
        .collect()
}

/// Whether this machine computes as the one the table was recorded on.
fn recorded_here() -> bool {
    let adapter = common::gpu().info().name.to_lowercase();
    cfg!(target_arch = "x86_64") && adapter.contains("llvmpipe")
}

#[test]
fn checkpoints_keep_their_bytes() {
    let hashes = run_all();
    let names: Vec<&str> = commands().iter().map(|(name, _, _)| *name).collect();
    if std::env::var_os("DOWNHILL_BLESS").is_some() {
        for (name, hash) in names.iter().zip(&hashes) {
            println!("    \"{hash}\", // {name}");
        }
        return;
    }
    if !recorded_here() {
        let again = run_all();
        for ((name, first), second) in names.iter().zip(&hashes).zip(&again) {
            assert_eq!(first, second, "{name}: two runs wrote different bytes");
        }
        return;
    }
    assert_eq!(GOLDEN.len(), hashes.len(), "one recorded hash per command");
    for ((name, recorded), now) in names.iter().zip(GOLDEN).zip(&hashes) {
        assert_eq!(
            now, recorded,
            "{name}: the checkpoint's bytes changed (recorded {recorded}, now {now})"
        );
    }
}
