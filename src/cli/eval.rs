//! `downhill eval` and `downhill predict`.

use downhill::checkpoint::load_model;
use downhill::data::csv::read as read_csv;
use downhill::data::load::{adapt_targets, load_features};
use downhill::data::npy;
use downhill::optim::Sgd;
use downhill::{Batch, Error, Loss, Optimizer, Result, Setup, Targets};
use ndarray::Array2;

use super::args::{EvalArgs, PredictArgs};
use super::common::{csv_options, dataset, inference_engine};
use super::eval_report::{Scores, print as print_scores};
use crate::cli::output::errln;

/// An optimizer for engines that only run forward passes.
fn inference(model: &downhill::ModelSpec, loss: downhill::Loss) -> Setup {
    Setup {
        model: model.clone(),
        loss,
        optimizer: Optimizer::Sgd(Sgd::default()),
    }
}

/// `downhill eval`: the loss and the scores of a saved model on data.
pub fn eval(a: &EvalArgs) -> Result<()> {
    let checkpoint = load_model(&a.model)?;
    let mut data = dataset(&a.data, 0)?.ok_or_else(|| {
        Error::Usage(
            "name the data to evaluate on: --features with --targets, --data or --dataset".into(),
        )
    })?;
    if data.rows() == 0 {
        return Err(Error::Data {
            source_name: data.name,
            message: "has no rows: there is nothing to evaluate".into(),
        });
    }
    check_width(checkpoint.model.inputs(), data.features.ncols(), &data.name)?;
    data.targets = adapt_targets(
        data.targets,
        checkpoint.loss,
        checkpoint.model.outputs(),
        &data.name,
    )?;
    if let Some(s) = &checkpoint.standardizer {
        s.apply(&mut data.features)?;
    }
    // The loss is on the scale the model was trained on (standardised targets, if they were);
    // the scores are in the targets' own units.
    let targets = data.targets.clone();
    if let (Some(s), Targets::Dense(values)) = (&checkpoint.target_standardizer, &mut data.targets)
    {
        s.apply(values)?;
    }
    let setup = inference(&checkpoint.model, checkpoint.loss);
    let mut engine = inference_engine(
        &a.device,
        setup,
        &checkpoint.parameters,
        data.rows().clamp(1, 4096),
    )?;
    let metrics = engine.evaluate(&Batch::new(data.features.view(), data.targets.view()))?[0];
    if !metrics.loss().is_finite() {
        return Err(Error::Data {
            source_name: data.name,
            message: format!(
                "the model's mean loss on these {} rows is {}: its outputs overflow on them; are \
                 these features on the scale the model was trained on?",
                metrics.rows,
                metrics.loss()
            ),
        });
    }
    let mut outputs = engine.predict(0, data.features.view())?;
    if let Some(s) = &checkpoint.target_standardizer {
        s.invert(&mut outputs);
    }
    let scores = Scores::new(outputs.view(), &targets.view(), checkpoint.loss);
    print_scores(&metrics, checkpoint.loss, scores.as_ref(), a.format);
    Ok(())
}

fn check_width(inputs: usize, columns: usize, name: &str) -> Result<()> {
    if inputs != columns {
        return Err(Error::InvalidModel(format!(
            "the model takes {inputs} inputs but {name} has {columns} feature columns"
        )));
    }
    Ok(())
}

/// `downhill predict`: a saved model's outputs, classes or probabilities for data, written to
/// `--output`.
pub fn predict(a: &PredictArgs) -> Result<()> {
    super::outputs::check_outputs(&[("--output", Some(&a.output))])?;
    super::outputs::check_distinct(
        &[("--output", Some(&a.output))],
        &[
            ("--model", Some(&a.model)),
            ("--features", a.features.as_deref()),
            ("--data", a.data.as_deref()),
        ],
    )?;
    let format = format_of(&a.output)?;
    if a.classes && a.proba {
        return Err(Error::Usage(
            "--classes and --proba ask for different outputs: give one (--classes writes each \
             row's predicted class, --proba the probabilities)"
                .into(),
        ));
    }
    let checkpoint = load_model(&a.model)?;
    if (a.classes || a.proba) && !checkpoint.loss.classifies() {
        let flag = if a.classes { "--classes" } else { "--proba" };
        return Err(Error::Usage(format!(
            "{flag} needs a classification model (trained with cross-entropy or bce-logits), but \
             {} was trained with {}: its outputs are values, not class scores; drop {flag}",
            a.model.display(),
            checkpoint.loss.name()
        )));
    }
    let (mut features, name) = match (&a.features, &a.data) {
        (Some(path), None) => (load_features(path)?, path.display().to_string()),
        (None, Some(path)) => {
            let options = csv_options(&a.target_column, false, false, vec![]);
            (
                read_csv(path, &options)?.features,
                path.display().to_string(),
            )
        }
        _ => {
            return Err(Error::Usage(
                "give the features to predict for: --features FILE or --data FILE.csv".into(),
            ));
        }
    };
    check_width(checkpoint.model.inputs(), features.ncols(), &name)?;
    if let Some(s) = &checkpoint.standardizer {
        s.apply(&mut features)?;
    }
    let setup = inference(&checkpoint.model, checkpoint.loss);
    let mut engine = inference_engine(
        &a.device,
        setup,
        &checkpoint.parameters,
        features.nrows().clamp(1, 4096),
    )?;
    let mut outputs = engine.predict(0, features.view())?;
    if let Some(s) = &checkpoint.target_standardizer {
        s.invert(&mut outputs);
    }
    let rows = outputs.nrows();
    let predictions = if a.classes {
        Predictions::classes(outputs, checkpoint.loss)
    } else if a.proba {
        Predictions::probabilities(outputs, checkpoint.loss)
    } else {
        Predictions::values(outputs, "output")
    };
    write_predictions(&a.output, format, &predictions)?;
    errln!("wrote {rows} predictions to {}", a.output.display());
    Ok(())
}

/// What `predict` writes: one value or class per row (a 1-D array, one CSV column), or one per
/// output (a 2-D array, a CSV column per output).
enum Predictions {
    /// A one-output model's values or probabilities, under the CSV column `name`.
    Vector(Vec<f32>, &'static str),
    /// Values or probabilities per output, under the CSV columns `name_j`.
    Matrix(Array2<f32>, &'static str),
    /// Each row's predicted class (CSV column `class`).
    Classes(Vec<u32>),
    /// 0 or 1 per output for a multi-label model (CSV columns `class_j`).
    Labels(Array2<i64>),
}

impl Predictions {
    /// `values` as they are: 1-D for one output, else 2-D.
    fn values(values: Array2<f32>, name: &'static str) -> Self {
        if values.ncols() == 1 {
            Predictions::Vector(values.into_iter().collect(), name)
        } else {
            Predictions::Matrix(values, name)
        }
    }

    /// The predicted classes of the `outputs` of a classification model trained with `loss`:
    /// the largest output for cross-entropy, each logit above 0 for bce-logits (one class of two
    /// for one output, a 0/1 label per output for several).
    fn classes(outputs: Array2<f32>, loss: Loss) -> Self {
        match loss.classes(outputs.view()) {
            Some(classes) => Predictions::Classes(classes),
            None => Predictions::Labels(outputs.mapv(|z| i64::from(z > 0.0))),
        }
    }

    /// Probabilities from the logits `outputs` of a classification model trained with `loss`
    /// ([`Loss::probabilities`]; a regression model's outputs are refused before).
    fn probabilities(outputs: Array2<f32>, loss: Loss) -> Self {
        let outputs = loss
            .probabilities(outputs)
            .expect("--proba is refused for a regression loss");
        Predictions::values(outputs, "p")
    }

    /// The CSV header and one line per row.
    fn csv(&self) -> String {
        let columns = |name: &str, n: usize| -> Vec<String> {
            (0..n).map(|j| format!("{name}_{j}")).collect()
        };
        let (header, lines): (Vec<String>, Vec<String>) = match self {
            Predictions::Vector(v, name) => (
                vec![name.to_string()],
                v.iter().map(f32::to_string).collect(),
            ),
            Predictions::Classes(c) => {
                (vec!["class".into()], c.iter().map(u32::to_string).collect())
            }
            Predictions::Matrix(m, name) => (columns(name, m.ncols()), csv_rows(m)),
            Predictions::Labels(m) => (columns("class", m.ncols()), csv_rows(m)),
        };
        let mut text = header.join(",") + "\n";
        for line in lines {
            text += &line;
            text.push('\n');
        }
        text
    }
}

/// Each row of `m` as comma-separated values.
fn csv_rows<T: ToString>(m: &Array2<T>) -> Vec<String> {
    m.rows()
        .into_iter()
        .map(|row| row.iter().map(T::to_string).collect::<Vec<_>>().join(","))
        .collect()
}

/// The file formats `predict` writes.
#[derive(Clone, Copy)]
enum Format {
    /// NumPy: float32 values and probabilities, int64 classes.
    Npy,
    /// A header line, then one line per row.
    Csv,
}

/// The format `path`'s extension names, or an error saying which ones there are.
fn format_of(path: &std::path::Path) -> Result<Format> {
    match path.extension().and_then(|e| e.to_str()) {
        Some("npy") => Ok(Format::Npy),
        Some("csv") => Ok(Format::Csv),
        _ => Err(Error::Usage(format!(
            "--output {} must end in .npy or .csv",
            path.display()
        ))),
    }
}

/// Writes `predictions` to `path` in `format`, atomically.
fn write_predictions(
    path: &std::path::Path,
    format: Format,
    predictions: &Predictions,
) -> Result<()> {
    match format {
        Format::Npy => match predictions {
            Predictions::Vector(v, _) => npy::write_vector(path, v),
            Predictions::Matrix(m, _) => npy::write(path, m),
            Predictions::Classes(c) => {
                let classes: Vec<i64> = c.iter().map(|&c| i64::from(c)).collect();
                npy::write_int_vector(path, &classes)
            }
            Predictions::Labels(m) => npy::write_int_matrix(path, m),
        },
        Format::Csv => downhill::fsio::write_atomic(path, predictions.csv().as_bytes()),
    }
}
