//! A run's standardisation: the features' statistics and the regression targets', each the
//! starting checkpoint's or fitted to the training rows, applied to training and validation
//! rows alike.

use crate::checkpoint::ModelCheckpoint;
use crate::data::Standardizer;
use crate::error::{Error, Result};
use crate::loss::{Loss, Targets};

use super::rows::Rows;

/// The feature statistics: the starting checkpoint's, or, when `standardize`, fitted to the
/// training rows (in one streaming pass when they are memory-mapped); applied to the training
/// and validation features (as each batch is read, when memory-mapped).
pub(super) fn scale_features(
    init: Option<&ModelCheckpoint>,
    standardize: bool,
    rows: &mut Rows,
) -> Result<Option<Standardizer>> {
    let stats = match (init, standardize, &rows.mapped) {
        (Some(c), _, _) if c.standardizer.is_some() => c.standardizer.clone(),
        (_, true, Some(source)) => Some(source.fit_standardizer()),
        (_, true, None) => Some(Standardizer::fit(&rows.train.features)),
        _ => None,
    };
    if let Some(s) = &stats {
        if rows.mapped.is_none() {
            s.apply(&mut rows.train.features)?;
        }
        if let Some(v) = &mut rows.validation {
            s.apply(&mut v.features)?;
        }
    }
    if let Some(source) = &mut rows.mapped {
        source.set_targets(rows.train.targets.clone(), &rows.train.name)?;
        source.set_standardizer(stats.clone())?;
    }
    Ok(stats)
}

/// The regression targets' statistics: the starting checkpoint's, or, when `standardize`,
/// fitted to the training targets (values under mse only); applied to the training and
/// validation targets.
pub(super) fn scale_targets(
    init: Option<&ModelCheckpoint>,
    standardize: bool,
    loss: Loss,
    rows: &mut Rows,
) -> Result<Option<Standardizer>> {
    let stats = match init {
        Some(c) if standardize && c.target_standardizer.is_none() => {
            return Err(Error::Usage(
                "--standardize-targets cannot apply to a model that starts from a checkpoint \
                 trained on the targets as they are (--init or --resume): drop it"
                    .into(),
            ));
        }
        Some(c) => c.target_standardizer.clone(),
        None if standardize => {
            let Targets::Dense(values) = &rows.train.targets else {
                return Err(Error::Usage(
                    "--standardize-targets is for regression targets (values), and these are \
                     class labels: drop it, or give --task regression"
                        .into(),
                ));
            };
            if loss.classifies() {
                return Err(Error::Usage(format!(
                    "--standardize-targets is for regression (a loss such as mse), and the loss \
                     is {}",
                    loss.name()
                )));
            }
            Some(Standardizer::fit(values))
        }
        None => None,
    };
    if let Some(s) = &stats {
        for targets in std::iter::once(&mut rows.train.targets)
            .chain(rows.validation.as_mut().map(|v| &mut v.targets))
        {
            if let Targets::Dense(values) = targets {
                s.apply(values)?;
            }
        }
    }
    Ok(stats)
}
