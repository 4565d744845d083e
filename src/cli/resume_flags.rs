//! `downhill train --resume FILE` alone continues a run. A training state records the flags of
//! the run that wrote it (paths made absolute); on a resume they are the run's flags again, and
//! each flag given beside `--resume` overrides its recorded value, with a warning when that makes
//! the result differ from a run that never stopped.

use std::ffi::OsString;
use std::path::Path;

use clap::parser::ValueSource;
use clap::{ArgMatches, CommandFactory, FromArgMatches};
use downhill::checkpoint::load_state;
use downhill::{Error, Result};

use super::args::{Cli, TrainArgs};
use crate::cli::output::errln;

/// Flags whose value names a file or folder: recorded as absolute paths, so that a resume from
/// another working folder finds the same files.
const PATHS: &[&str] = &[
    "features",
    "targets",
    "data",
    "val_features",
    "val_targets",
    "val_data",
    "init",
    "save",
    "checkpoint",
    "metrics",
    "plot",
    "tensorboard",
];

/// Flags that change what is trained from the resumed state on; any other flag (run length,
/// outputs, logging, the device, which changes only the rounding) can change freely.
const CHANGES_THE_RESULT: &[&str] = &[
    "task",
    "standardize_targets",
    "early_stopping",
    "val_features",
    "val_targets",
    "val_data",
    "features",
    "targets",
    "data",
    "target_column",
    "no_header",
    "drop_nonfinite",
    "dataset",
    "val_split",
    "standardize",
    "layers",
    "activation",
    "loss",
    "optimizer",
    "lr",
    "beta1",
    "beta2",
    "eps",
    "weight_decay",
    "momentum",
    "dampening",
    "nesterov",
    "alpha",
    "centered",
    "amsgrad",
    "lr_decay",
    "initial_accumulator_value",
    "rho",
    "batch_size",
    "no_shuffle",
    "drop_last",
    "seed",
    "schedule",
    "warmup",
    "clip_norm",
];

/// The `train` command's definition, as clap sees it.
fn train_command() -> clap::Command {
    Cli::command()
        .find_subcommand("train")
        .cloned()
        .unwrap_or_else(|| clap::Command::new("train"))
}

/// The flags given on the command line in `matches` (train's), as `--name=value` words (a
/// switch as `--name`), `--resume` left out. Paths are absolute, or relative to `base` (the
/// training state's folder) when they lie inside it, so that a folder holding a run's state and
/// outputs can move and still resume, and two runs that differ only in where they write record
/// the same flags.
pub fn recorded(matches: &ArgMatches, base: Option<&Path>) -> Vec<String> {
    let command = train_command();
    let mut words = Vec::new();
    for arg in command.get_arguments() {
        let id = arg.get_id().as_str();
        let Some(long) = arg.get_long() else {
            continue;
        };
        // The resume itself, and a check or the buckets of one launch (which builds without the mpi feature
        // do not know), are not the run's flags.
        if id == "resume"
            || id == "check_replicas"
            || id == "bucket_mib"
            || id == "overlap"
            || matches.value_source(id) != Some(ValueSource::CommandLine)
        {
            continue;
        }
        if !arg.get_action().takes_values() {
            words.push(format!("--{long}"));
            continue;
        }
        let Some(values) = matches.get_raw(id) else {
            continue;
        };
        for value in values {
            let value = if PATHS.contains(&id) {
                recorded_path(Path::new(value), base)
            } else {
                value.to_os_string()
            };
            words.push(format!("--{long}={}", value.to_string_lossy()));
        }
    }
    words
}

/// `path` made absolute, then relative to `base` when inside it.
fn recorded_path(path: &Path, base: Option<&Path>) -> OsString {
    let absolute = std::path::absolute(path).unwrap_or_else(|_| path.to_path_buf());
    base.and_then(|b| absolute.strip_prefix(b).ok())
        .map_or_else(
            || absolute.clone().into_os_string(),
            |p| p.as_os_str().to_os_string(),
        )
}

/// Recorded `words` with their relative paths resolved against `folder` (the state's).
fn rebased(words: Vec<String>, folder: &Path) -> Vec<String> {
    let command = train_command();
    words
        .into_iter()
        .map(|word| {
            let Some((name, value)) = word.split_once('=') else {
                return word;
            };
            let long = name.trim_start_matches("--");
            let is_path = command
                .get_arguments()
                .any(|a| a.get_long() == Some(long) && PATHS.contains(&a.get_id().as_str()));
            if is_path && Path::new(value).is_relative() {
                format!("{name}={}", folder.join(value).display())
            } else {
                word
            }
        })
        .collect()
}

/// The folder of the training state that `args` write, made absolute.
fn state_folder(args: &TrainArgs) -> Option<std::path::PathBuf> {
    let state = super::common::state_path(
        args.checkpoints.checkpoint.as_deref(),
        args.outputs.save.as_deref(),
    );
    let absolute = std::path::absolute(state).ok()?;
    absolute.parent().map(Path::to_path_buf)
}

/// The run's flags for `given` (train's matches): unchanged without `--resume` or when the state
/// recorded no flags; else the recorded flags with those given now in their place, each change
/// that alters the result warned of. Returns the flags and their words, for the next state.
pub fn resolve(given: &ArgMatches) -> Result<(TrainArgs, Vec<String>)> {
    let parse = |matches: &ArgMatches| {
        TrainArgs::from_arg_matches(matches).map_err(|e| Error::Usage(e.to_string()))
    };
    let args = parse(given)?;
    let saved = match &args.checkpoints.resume {
        Some(path) => load_state(path)?.run_flags.map(|flags| (path, flags)),
        None => None,
    };
    let Some((path, saved)) = saved else {
        let words = recorded(given, state_folder(&args).as_deref());
        return Ok((args, words));
    };
    let folder = std::path::absolute(path)
        .ok()
        .and_then(|p| p.parent().map(Path::to_path_buf))
        .unwrap_or_default();
    let saved_matches = matches_of(&rebased(saved, &folder), path)?;
    // The run's length is one choice: --epochs or --max-steps given now replaces both.
    let length_given = RUN_LENGTH
        .iter()
        .any(|id| given.value_source(id) == Some(ValueSource::CommandLine));
    let mut words: Vec<String> = recorded(&saved_matches, None)
        .into_iter()
        .filter(|w| !(given_now(w, given) || length_given && sets_one_of(w, RUN_LENGTH)))
        .collect();
    words.extend(recorded(given, None));
    warn_of_changes(&saved_matches, given, path);
    let merged = matches_of(&words, path)?;
    let mut args = parse(&merged)?;
    args.checkpoints.resume = Some(path.clone());
    let words = recorded(&merged, state_folder(&args).as_deref());
    Ok((args, words))
}

/// Warns of each flag in `given` whose value differs from the one the run had (recorded, or its
/// default) and changes what is trained from here on.
fn warn_of_changes(saved: &ArgMatches, given: &ArgMatches, state: &Path) {
    let mut changes: Vec<String> = CHANGES_THE_RESULT
        .iter()
        .filter(|id| given.value_source(id) == Some(ValueSource::CommandLine))
        .filter_map(|id| {
            let then = raw(saved, id).or_else(|| default_of(id, saved));
            let now = raw(given, id);
            let flag = id.replace('_', "-");
            (then != now).then(|| match (now.as_deref(), then) {
                (Some("true"), _) => format!("--{flag} was not set in the run"),
                (now, Some(then)) => format!("--{flag} {} replaces `{then}`", now.unwrap_or("")),
                (now, None) => format!("--{flag} {} was not set in the run", now.unwrap_or("")),
            })
        })
        .collect();
    // A schedule over the whole run changes with the run's length.
    let schedule = raw(saved, "schedule").unwrap_or_default();
    let length_changed = RUN_LENGTH.iter().any(|id| {
        given.value_source(id) == Some(ValueSource::CommandLine) && raw(saved, id) != raw(given, id)
    });
    if length_changed && schedule.starts_with("cosine") {
        changes.push(format!(
            "a new run length changes the rates of --schedule {schedule}, which spans the run"
        ));
    }
    for change in changes {
        errln!(
            "warning: {change}: from here on the run differs from one that never stopped (its \
             flags are recorded in {})",
            state.display()
        );
    }
}

/// The value flag `id` had in a run that did not give it: clap's default, or for `--val-split`
/// the 20% the built-in default run holds out.
fn default_of(id: &str, saved: &ArgMatches) -> Option<String> {
    let names_data = ["features", "targets", "data", "dataset"]
        .iter()
        .any(|d| saved.value_source(d) == Some(ValueSource::CommandLine));
    if id == "val_split" && !names_data {
        return Some("0.2".into());
    }
    let command = train_command();
    let arg = command.get_arguments().find(|a| a.get_id() == id)?;
    let defaults: Vec<String> = arg
        .get_default_values()
        .iter()
        .map(|v| v.to_string_lossy().into_owned())
        .collect();
    (!defaults.is_empty()).then(|| defaults.join(","))
}

/// The flags that together set a run's length.
const RUN_LENGTH: &[&str] = &["epochs", "max_steps"];

/// Whether `word` (`--name=value`) sets one of the flags `ids`.
fn sets_one_of(word: &str, ids: &[&str]) -> bool {
    let long = word
        .trim_start_matches("--")
        .split('=')
        .next()
        .unwrap_or_default();
    ids.iter().any(|id| id.replace('_', "-") == long)
}

/// Train's matches for `words` (recorded flags), naming the state when they no longer parse.
fn matches_of(words: &[String], state: &Path) -> Result<ArgMatches> {
    train_command()
        .no_binary_name(true)
        .try_get_matches_from(words)
        .map_err(|e| {
            Error::Usage(format!(
                "the flags recorded in {} no longer parse ({}); resume with the flags of that run \
                 given in full",
                state.display(),
                e.kind()
            ))
        })
}

/// Whether `word` (`--name=value` or `--name`) sets a flag that `given` sets on its command line.
fn given_now(word: &str, given: &ArgMatches) -> bool {
    let long = word
        .trim_start_matches("--")
        .split('=')
        .next()
        .unwrap_or_default();
    train_command()
        .get_arguments()
        .find(|a| a.get_long() == Some(long))
        .is_some_and(|a| given.value_source(a.get_id().as_str()) == Some(ValueSource::CommandLine))
}

/// A flag's values as given, joined by commas; `None` when it was not on that command line.
fn raw(matches: &ArgMatches, id: &str) -> Option<String> {
    if matches.value_source(id) != Some(ValueSource::CommandLine) {
        return None;
    }
    Some(match matches.get_raw(id) {
        Some(values) => values
            .map(|v| v.to_string_lossy().into_owned())
            .collect::<Vec<_>>()
            .join(","),
        None => "on".into(),
    })
}
