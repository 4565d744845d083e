//! `downhill eval` and `downhill predict`.

use downhill::checkpoint::load_model;
use downhill::data::csv::read as read_csv;
use downhill::data::load::{adapt_targets, load_features};
use downhill::data::npy;
use downhill::optim::Sgd;
use downhill::{Batch, Error, Optimizer, Result, Setup};
use ndarray::{Array2, Axis};

use super::args::{EvalArgs, PredictArgs};
use super::common::{csv_options, dataset, engine};
use crate::cli::output::{errln, outln};

/// An optimizer for engines that only run forward passes.
fn inference(model: &downhill::ModelSpec, loss: downhill::Loss) -> Setup {
    Setup {
        model: model.clone(),
        loss,
        optimizer: Optimizer::Sgd(Sgd::default()),
    }
}

pub fn eval(a: &EvalArgs) -> Result<()> {
    let checkpoint = load_model(&a.model)?;
    let mut data = dataset(&a.data, 0)?.ok_or_else(|| {
        Error::Usage(
            "name the data to evaluate on: --features with --targets, --data or --dataset".into(),
        )
    })?;
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
    let setup = inference(&checkpoint.model, checkpoint.loss);
    let mut engine = engine(
        &a.device,
        setup,
        &checkpoint.parameters,
        data.rows().clamp(1, 4096),
        false,
    )?;
    let metrics = engine.evaluate(&Batch::new(data.features.view(), data.targets.view()))?;
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
    outln!("rows {}", metrics.rows);
    outln!("loss {:.6}", metrics.loss());
    if let Some(acc) = metrics.accuracy(checkpoint.loss) {
        outln!("accuracy {:.2}%", 100.0 * acc);
    }
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

pub fn predict(a: &PredictArgs) -> Result<()> {
    super::outputs::check_outputs(&[("--output", Some(&a.output))])?;
    let checkpoint = load_model(&a.model)?;
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
    let mut engine = engine(
        &a.device,
        setup,
        &checkpoint.parameters,
        features.nrows().clamp(1, 4096),
        true,
    )?;
    let outputs = engine.predict(features.view())?;
    let result = if a.classes {
        outputs
            .map_axis(Axis(1), |row| {
                (1..row.len()).fold(0, |best, c| if row[c] > row[best] { c } else { best }) as f32
            })
            .insert_axis(Axis(1))
    } else {
        outputs
    };
    write_predictions(&a.output, &result, a.classes)?;
    errln!(
        "wrote {} predictions to {}",
        result.nrows(),
        a.output.display()
    );
    Ok(())
}

fn write_predictions(path: &std::path::Path, values: &Array2<f32>, classes: bool) -> Result<()> {
    match path.extension().and_then(|e| e.to_str()) {
        Some("npy") => npy::write(path, values),
        Some("csv") => {
            let header: Vec<String> = if classes {
                vec!["class".into()]
            } else {
                (0..values.ncols()).map(|j| format!("output_{j}")).collect()
            };
            let mut text = header.join(",") + "\n";
            for row in values.rows() {
                let cells: Vec<String> = row
                    .iter()
                    .map(|v| {
                        if classes {
                            format!("{}", *v as u32)
                        } else {
                            v.to_string()
                        }
                    })
                    .collect();
                text += &(cells.join(",") + "\n");
            }
            downhill::fsio::write_atomic(path, text.as_bytes())
        }
        _ => Err(Error::Usage(format!(
            "--output {} must end in .npy or .csv",
            path.display()
        ))),
    }
}
