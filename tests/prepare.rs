//! Run preparation through the library alone, without the command line: a model inferred from
//! `.npy` files, the built-in default run, a resume from a state that `train` wrote, and refusals
//! that say what to change.

use std::path::Path;

use downhill::checkpoint::load_state;
use downhill::data::csv::CsvOptions;
use downhill::data::load::DataSpec;
use downhill::data::npy;
use downhill::data::task::{Inferred, Task};
use downhill::optim::Adam;
use downhill::prepare::{MemoryMap, ModelRequest, Note, PreparedRun, Validation, prepare};
use downhill::train::{CheckpointPlan, Silent, TrainConfig, TrainData, train};
use downhill::{
    Activation, CpuEngine, Error, Loss, Norm, Optimizer, Parameters, RunRequest, Targets,
};
use ndarray::Array2;

/// A request for the rows in `x.npy` and `y.npy` under `dir`, everything else at its default.
fn request(dir: &Path) -> RunRequest {
    RunRequest {
        data: Some(DataSpec::Files {
            features: dir.join("x.npy"),
            targets: dir.join("y.npy"),
            drop_nonfinite: false,
        }),
        validation: Validation::None,
        memory_map: MemoryMap::Auto,
        model: ModelRequest {
            task: Task::Auto,
            layers: vec![],
            activation: Activation::Relu,
            norm: Norm::None,
            dropout: 0.0,
            loss: None,
            init: None,
        },
        standardize: false,
        standardize_targets: false,
        resume: None,
        optimizer: Optimizer::Adam(Adam::default()),
        models: 1,
        cpu_engine: true,
        batch_size: 8,
        seed: 3,
        epochs: None,
        max_steps: None,
    }
}

/// Writes 40 rows of 3 features, and as targets `target(row)` in one float column.
fn write_rows(dir: &Path, target: impl Fn(usize) -> f32) {
    let x = Array2::from_shape_fn((40, 3), |(r, c)| (r * 3 + c) as f32 / 10.0);
    npy::write(&dir.join("x.npy"), &x).unwrap();
    let y = Array2::from_shape_fn((40, 1), |(r, _)| target(r));
    npy::write(&dir.join("y.npy"), &y).unwrap();
}

/// Prepares `request`, collecting its notes.
fn prepared(request: &RunRequest) -> (PreparedRun, Vec<Note>) {
    let mut notes = Vec::new();
    let run = prepare(request, &mut |note| notes.push(note)).unwrap();
    (run, notes)
}

fn widths(run: &PreparedRun) -> Vec<usize> {
    let model = &run.setup.model;
    std::iter::once(model.inputs())
        .chain(model.layers().iter().map(|l| l.outputs()))
        .collect()
}

#[test]
fn a_classifier_is_inferred_from_whole_number_targets() {
    let dir = tempfile::tempdir().unwrap();
    write_rows(dir.path(), |r| (r % 3) as f32);
    let (run, notes) = prepared(&RunRequest {
        validation: Validation::Split(0.25),
        standardize: true,
        ..request(dir.path())
    });
    assert_eq!(
        notes,
        [Note::Classes(Inferred {
            distinct: 3,
            largest: 2
        })]
    );
    assert_eq!(widths(&run), [3, 64, 3]);
    assert_eq!(run.setup.loss, Loss::CrossEntropy);
    assert_eq!(run.epochs, 10);
    assert_eq!(run.data.rows(), 30);
    let validation = run.validation.as_ref().expect("a validation split");
    assert_eq!(validation.rows(), 10);
    assert!(matches!(validation.targets, Targets::Classes(_)));
    assert!(run.standardizer.is_some());
    assert!(run.resume.is_none());
    assert_eq!(run.start, Parameters::init(&run.setup.model, 3));
    let TrainData::Memory(rows) = &run.data else {
        panic!("a small file is read whole");
    };
    // Standardised: each column's mean over the training rows is 0.
    for mean in rows.features.mean_axis(ndarray::Axis(0)).unwrap() {
        assert!(mean.abs() < 1e-5, "{mean}");
    }
}

#[test]
fn no_data_is_the_default_run_on_digits() {
    let dir = tempfile::tempdir().unwrap();
    let (run, notes) = prepared(&RunRequest {
        data: None,
        ..request(dir.path())
    });
    assert_eq!(notes, [Note::DefaultRun]);
    assert_eq!(run.epochs, 30);
    assert_eq!(widths(&run), [64, 64, 10]);
    assert_eq!(run.data.rows() + run.validation.unwrap().rows(), 1797);
    assert!(run.standardizer.is_some());
}

#[test]
fn a_run_resumes_from_the_state_train_wrote() {
    let dir = tempfile::tempdir().unwrap();
    write_rows(dir.path(), |r| (r as f32 * 0.37).sin());
    let first = RunRequest {
        model: ModelRequest {
            layers: vec![3, 8, 1],
            ..request(dir.path()).model
        },
        standardize_targets: true,
        ..request(dir.path())
    };
    let (run, notes) = prepared(&first);
    assert!(notes.is_empty(), "{notes:?}");
    assert_eq!(run.setup.loss, Loss::Mse);
    let state_path = dir.path().join("run.state.safetensors");
    let mut engine = CpuEngine::new(run.setup.clone(), &run.start).unwrap();
    let config = TrainConfig {
        epochs: 1,
        batch_size: 8,
        checkpoint: Some(CheckpointPlan {
            path: state_path.clone(),
            every_steps: 2,
            writes: true,
            standardizer: run.standardizer.clone(),
            target_standardizer: run.target_standardizer.clone(),
            run_flags: None,
        }),
        ..TrainConfig::default()
    };
    train(&mut engine, &run.data, None, &config, None, &mut Silent).unwrap();
    let state = load_state(&state_path).unwrap();

    // Resumed: the state's model, parameters and statistics, whatever the request's layers.
    let (resumed, _) = prepared(&RunRequest {
        resume: Some(state_path.clone()),
        standardize_targets: false,
        ..request(dir.path())
    });
    assert_eq!(resumed.setup.model, run.setup.model);
    assert_eq!(resumed.start, state.checkpoint.parameters);
    assert_ne!(resumed.start, run.start);
    assert_eq!(resumed.target_standardizer, run.target_standardizer);
    assert_eq!(resumed.resume, Some(state));

    // Layers that differ from the state's are refused, naming it.
    let err = prepare(
        &RunRequest {
            resume: Some(state_path.clone()),
            model: ModelRequest {
                layers: vec![3, 16, 1],
                ..request(dir.path()).model
            },
            ..request(dir.path())
        },
        &mut |_| {},
    )
    .err()
    .expect("refused");
    assert_eq!(
        err.to_string(),
        format!(
            "invalid model: --layers [3, 16, 1] differs from the architecture of the --resume \
             checkpoint {}, [3, 8, 1]; drop --layers or give the layers it was trained with",
            state_path.display()
        )
    );
}

#[test]
fn refusals_say_what_to_change() {
    let dir = tempfile::tempdir().unwrap();
    write_rows(dir.path(), |r| (r % 3) as f32);
    let refused = |request: RunRequest| {
        let mut notes = Vec::new();
        let err = prepare(&request, &mut |note| notes.push(note))
            .err()
            .expect("refused");
        (err, notes)
    };

    let (err, _) = refused(RunRequest {
        batch_size: 0,
        ..request(dir.path())
    });
    assert!(matches!(err, Error::Usage(_)));
    assert_eq!(err.to_string(), "--batch-size must be at least 1");

    let csv = dir.path().join("data.csv");
    std::fs::write(&csv, "a,b\n1,0\n2,1\n").unwrap();
    let (err, _) = refused(RunRequest {
        data: Some(DataSpec::Csv {
            path: csv,
            options: CsvOptions::default(),
        }),
        memory_map: MemoryMap::Always,
        ..request(dir.path())
    });
    assert_eq!(
        err.to_string(),
        "--mmap streams a --features .npy file: give --features and --targets"
    );

    // The task is inferred (and said) before the targets are found to be classes.
    let (err, notes) = refused(RunRequest {
        standardize_targets: true,
        ..request(dir.path())
    });
    assert_eq!(notes.len(), 1, "{notes:?}");
    assert!(
        err.to_string()
            .starts_with("--standardize-targets is for regression targets (values)"),
        "{err}"
    );

    let (err, _) = refused(RunRequest {
        resume: Some(dir.path().join("missing.safetensors")),
        ..request(dir.path())
    });
    assert!(err.to_string().contains("missing.safetensors"), "{err}");
}
