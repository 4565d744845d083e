//! Matmul autotuning: the choice is timed once per shape class, cached in a file per adapter,
//! driver and version of the kernels, read back by later contexts, rebuilt when the file is
//! unreadable; the fixed default ignores it; and the command line writes the cache unless
//! `--no-autotune`.

mod common;

use std::path::Path;
use std::process::Command;

use common::gpu;
use downhill::gpu::{Epilogue, Gemm, MatmulTile, MatmulVariant, Tuning};
use downhill::{Activation, AdapterRequest, GpuContext};

const PLAIN: MatmulVariant = MatmulVariant {
    transpose_a: false,
    transpose_b: false,
    epilogue: Epilogue::Plain,
    activation: Activation::Identity,
};

fn tuned(cache: &Path) -> GpuContext {
    GpuContext::new(&AdapterRequest {
        tuning: Tuning::Autotune {
            cache: Some(cache.to_path_buf()),
        },
        ..AdapterRequest::default()
    })
    .unwrap()
}

/// The cache as JSON: `{ adapter: { shape class: { "tile", "ns_per_product" } } }`.
fn read(cache: &Path) -> serde_json::Value {
    serde_json::from_slice(&std::fs::read(cache).unwrap()).unwrap()
}

#[test]
fn choices_are_cached_per_adapter_and_read_back() {
    let dir = tempfile::tempdir().unwrap();
    let cache = dir.path().join("tuning").join("autotune.json");
    let first = Gemm::new(&tuned(&cache), PLAIN, 40, 48, 24).unwrap();
    let json = read(&cache);
    let adapters = json.as_object().unwrap();
    assert_eq!(adapters.len(), 1, "{json}");
    let (adapter, classes) = adapters.iter().next().unwrap();
    let ctx = gpu();
    assert!(adapter.contains(&ctx.info().name), "{adapter}");
    assert!(adapter.contains(&ctx.info().driver_info), "{adapter}");
    // Sizes round up to powers of two: 40 x 48 x 24 is the class of 64 x 64 x 32.
    let chosen = classes["NN vec4 m64 n64 k32"]["tile"].as_str().unwrap();
    assert_eq!(MatmulTile::from_name(chosen), Some(first.tile()), "{json}");
    // With the time per product it measured.
    assert!(
        classes["NN vec4 m64 n64 k32"]["ns_per_product"]
            .as_f64()
            .unwrap()
            > 0.0,
        "{json}"
    );

    // A later context takes a cached choice without a time as it stands: plant another.
    let planted = if first.tile() == MatmulTile::Tiny {
        MatmulTile::Small
    } else {
        MatmulTile::Tiny
    };
    let mut edited = json.clone();
    edited[adapter]["NN vec4 m64 n64 k32"] = planted.name().into();
    std::fs::write(&cache, serde_json::to_vec(&edited).unwrap()).unwrap();
    let again = Gemm::new(&tuned(&cache), PLAIN, 33, 64, 20).unwrap();
    assert_eq!(again.tile(), planted);

    // The fixed default ignores the cache.
    let fixed = Gemm::new(&ctx, PLAIN, 40, 48, 24).unwrap();
    assert_eq!(fixed.tile(), MatmulTile::for_shape(40, 48));
}

/// Choices are kept per version of the kernels (a fingerprint of their source in the adapter's
/// key): one cached for other kernels is not taken, its shape is timed afresh, and the other
/// version's entries stay as they were.
#[test]
fn a_choice_cached_for_other_kernels_is_timed_afresh() {
    let dir = tempfile::tempdir().unwrap();
    let cache = dir.path().join("autotune.json");
    Gemm::new(&tuned(&cache), PLAIN, 40, 48, 24).unwrap();
    let json = read(&cache);
    let adapter = json.as_object().unwrap().keys().next().unwrap().clone();
    let (same_driver, fingerprint) = adapter.rsplit_once(" / kernels ").expect("{adapter}");
    assert_eq!(fingerprint.len(), 16, "{adapter}");
    // The same adapter and driver, other kernels: a choice of the slowest tile.
    let other = format!("{same_driver} / kernels 0000000000000000");
    let planted = serde_json::json!({ other.clone(): { "NN vec4 m64 n64 k32": "large" } });
    std::fs::write(&cache, serde_json::to_vec(&planted).unwrap()).unwrap();
    Gemm::new(&tuned(&cache), PLAIN, 40, 48, 24).unwrap();
    let json = read(&cache);
    assert!(
        json[&adapter]["NN vec4 m64 n64 k32"]["ns_per_product"].is_f64(),
        "timed afresh under this version's key: {json}"
    );
    assert_eq!(
        json[&other], planted[&other],
        "the other version's entry kept"
    );
}

#[test]
fn an_unreadable_cache_is_rebuilt() {
    let dir = tempfile::tempdir().unwrap();
    let cache = dir.path().join("autotune.json");
    std::fs::write(&cache, b"{ not json").unwrap();
    let gemm = Gemm::new(&tuned(&cache), PLAIN, 8, 8, 8).unwrap();
    let json = read(&cache);
    let classes = json.as_object().unwrap().values().next().unwrap();
    assert_eq!(
        MatmulTile::from_name(classes["NN vec4 m8 n8 k8"]["tile"].as_str().unwrap()),
        Some(gemm.tile())
    );
}

/// A cached choice whose tile now runs far slower than its record (chosen under load, or a
/// driver changed) is timed afresh by the next context, and the record replaced.
#[test]
fn a_cached_choice_far_slower_than_its_record_is_timed_again() {
    let dir = tempfile::tempdir().unwrap();
    let cache = dir.path().join("autotune.json");
    // A product large enough that its time is the arithmetic's, not the launch's.
    Gemm::new(&tuned(&cache), PLAIN, 512, 512, 512).unwrap();
    let mut json = read(&cache);
    let adapter = json.as_object().unwrap().keys().next().unwrap().clone();
    // Plant the fixed large tile with a record no product can meet: 1 ns.
    json[&adapter]["NN vec4 m512 n512 k512"] =
        serde_json::json!({"tile": MatmulTile::Large.name(), "ns_per_product": 1.0});
    std::fs::write(&cache, serde_json::to_vec(&json).unwrap()).unwrap();
    let again = Gemm::new(&tuned(&cache), PLAIN, 512, 512, 512).unwrap();
    let json = read(&cache);
    let entry = &json[&adapter]["NN vec4 m512 n512 k512"];
    let recorded = entry["ns_per_product"].as_f64().unwrap();
    assert!(recorded > 1.0, "the record was measured again: {entry}");
    assert_eq!(
        MatmulTile::from_name(entry["tile"].as_str().unwrap()),
        Some(again.tile()),
        "{entry}"
    );
}

/// The command line tunes and caches by default and not with `--no-autotune`; both train to the
/// same checkpoint bytes, since every tile computes the same bits.
#[test]
fn the_command_line_tunes_unless_told_not_to() {
    let dir = tempfile::tempdir().unwrap();
    let run = |cache: &Path, extra: &[&str]| {
        let out = Command::new(env!("CARGO_BIN_EXE_downhill"))
            .args([
                "train",
                "--dataset",
                "blobs",
                "--layers",
                "8,16,4",
                "--epochs",
                "2",
                "--device",
                "gpu",
                "--save",
            ])
            .arg(cache.with_extension("safetensors"))
            .args(extra)
            .env("DOWNHILL_CACHE_DIR", cache)
            .env("XDG_RUNTIME_DIR", std::env::temp_dir())
            .output()
            .unwrap();
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
        std::fs::read(cache.with_extension("safetensors")).unwrap()
    };
    let (tuned_dir, fixed_dir) = (dir.path().join("tuned"), dir.path().join("fixed"));
    let tuned_model = run(&tuned_dir, &[]);
    assert!(tuned_dir.join("autotune.json").exists());
    let fixed_model = run(&fixed_dir, &["--no-autotune"]);
    assert!(!fixed_dir.join("autotune.json").exists());
    assert_eq!(tuned_model, fixed_model, "the same checkpoint bytes");
}

/// A pack of models is tuned as it runs, all models side by side: its own shape classes.
#[test]
fn packs_are_tuned_with_their_models_side_by_side() {
    use downhill::optim::Sgd;
    use downhill::{Loss, ModelSpec, Optimizer, Parameters};
    use downhill::{Member, PackSetup};
    let dir = tempfile::tempdir().unwrap();
    let cache = dir.path().join("autotune.json");
    let model =
        ModelSpec::from_widths(&[8, 12, 3], Activation::Relu, Activation::Identity).unwrap();
    let setup = PackSetup {
        model: model.clone(),
        loss: Loss::CrossEntropy,
        members: (0..3)
            .map(|seed| Member {
                optimizer: Optimizer::Sgd(Sgd::default()),
                parameters: Parameters::init(&model, seed),
            })
            .collect(),
    };
    downhill::GpuEngine::pack(&tuned(&cache), setup, 16).unwrap();
    let json = read(&cache);
    let classes = json.as_object().unwrap().values().next().unwrap();
    let keys: Vec<&String> = classes.as_object().unwrap().keys().collect();
    // Forward, weight gradient and input gradient products of two layers, three models
    // rounded up to four.
    assert!(
        keys.len() >= 3 && keys.iter().all(|k| k.ends_with(" x4")),
        "{keys:?}"
    );
}

/// `tools::retune` (what `downhill tune` runs) times every shape class of a model's products
/// afresh, whatever the cache holds, reports each candidate's time with the cached tile it
/// replaces, never keeps a tile slower than the fixed default in its own timing, and leaves each
/// choice in the cache with its time.
#[test]
fn retuning_times_every_class_afresh_and_keeps_nothing_slower_than_the_default() {
    use downhill::optim::Sgd;
    use downhill::{Loss, ModelSpec, Optimizer, Parameters, Setup};
    let dir = tempfile::tempdir().unwrap();
    let cache = dir.path().join("autotune.json");
    let model =
        ModelSpec::from_widths(&[8, 12, 3], Activation::Relu, Activation::Identity).unwrap();
    let setup = Setup {
        model: model.clone(),
        loss: Loss::CrossEntropy,
        optimizer: Optimizer::Sgd(Sgd::default()),
    };
    let start = Parameters::init(&model, 0);
    let ctx = tuned(&cache);
    let first = downhill::tools::retune(&ctx, &setup, &start, 1, 16).unwrap();
    // Forward products of two layers, two weight gradients and one input gradient.
    assert_eq!(first.len(), 5, "{first:#?}");
    let mut json = read(&cache);
    let adapter = json.as_object().unwrap().keys().next().unwrap().clone();
    // Plant a tile by name alone (no record to check it against): an ordinary context keeps
    // it, a retuning one times its class again.
    let planted = &first[0].class;
    json[&adapter][planted] = serde_json::json!(MatmulTile::Tiny.name());
    std::fs::write(&cache, serde_json::to_vec(&json).unwrap()).unwrap();
    let ctx = tuned(&cache);
    let again = downhill::tools::retune(&ctx, &setup, &start, 1, 16).unwrap();
    assert_eq!(again.len(), first.len(), "every class timed again");
    assert_eq!(again[0].previous, Some(MatmulTile::Tiny));
    let json = read(&cache);
    for shape in &again {
        let default = shape.default_time().expect("the default is always timed");
        let chosen = shape.chosen_time().expect("the chosen tile was timed");
        assert!(chosen <= default, "{shape:#?}");
        let entry = &json[&adapter][&shape.class];
        assert_eq!(
            entry["tile"].as_str(),
            Some(shape.chosen.name().as_str()),
            "{entry}"
        );
        assert!(entry["ns_per_product"].as_f64().unwrap() > 0.0, "{entry}");
    }
    // An engine built on the same context after it takes what was timed: nothing is new.
    downhill::GpuEngine::new(&ctx, setup, &start, 16).unwrap();
    assert_eq!(ctx.tuned_shapes().len(), again.len());
}

/// `downhill tune` shows the table of a model's products (here as JSON) and names the cache
/// it wrote; `--no-autotune` is refused as a contradiction.
#[test]
fn the_tune_command_reports_each_product_and_writes_the_cache() {
    let dir = tempfile::tempdir().unwrap();
    let tune = |extra: &[&str]| {
        Command::new(env!("CARGO_BIN_EXE_downhill"))
            .args(["tune", "--dataset", "blobs", "--layers", "8,16,4"])
            .args(extra)
            .env("DOWNHILL_CACHE_DIR", dir.path())
            .env("XDG_RUNTIME_DIR", std::env::temp_dir())
            .output()
            .unwrap()
    };
    let out = tune(&["--batch-size", "24", "--models", "2", "--format", "json"]);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "{stderr}");
    let report: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    let rows = report["results"].as_array().unwrap();
    assert_eq!(rows.len(), 5, "{report:#}");
    for row in rows {
        assert!(
            row["product"].as_str().unwrap().ends_with("(2 models)"),
            "{row}"
        );
        assert!(row["cached"].is_null(), "an empty cache: {row}");
        let chosen = row["chosen"].as_str().unwrap();
        assert!(
            row["candidates"]
                .as_array()
                .unwrap()
                .iter()
                .any(|c| c["tile"] == chosen && c["ns_per_product"].as_f64().unwrap() > 0.0),
            "{row}"
        );
    }
    let cache = dir.path().join("autotune.json");
    assert!(
        stderr.contains(&format!("choices kept in {}", cache.display())),
        "{stderr}"
    );
    assert!(
        read(&cache)
            .as_object()
            .unwrap()
            .values()
            .next()
            .unwrap()
            .as_object()
            .unwrap()
            .len()
            >= 5
    );
    // Again: the table now shows what the cache held.
    let out = tune(&["--batch-size", "24", "--models", "2", "--format", "csv"]);
    let csv = String::from_utf8_lossy(&out.stdout);
    assert!(csv.starts_with("product,class,cached,chosen,"), "{csv}");
    assert!(
        csv.lines()
            .skip(1)
            .all(|l| l.split(',').nth(2).is_some_and(|c| !c.is_empty())),
        "{csv}"
    );
    let refused = tune(&["--no-autotune"]);
    assert!(!refused.status.success());
    assert!(String::from_utf8_lossy(&refused.stderr).contains("--no-autotune"));
}
