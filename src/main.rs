//! The `downhill` command line: a thin face on the library.

mod cli;

use std::process::ExitCode;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

use clap::Parser;
use cli::args::{Cli, Command};

/// Prints an error and its causes, the way every command reports failure.
fn report(error: &dyn std::error::Error) {
    eprintln!("error: {error}");
    let mut source = error.source();
    while let Some(cause) = source {
        eprintln!("  caused by: {cause}");
        source = cause.source();
    }
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    let result = match &cli.command {
        Command::Train(args) => {
            let interrupted = Arc::new(AtomicBool::new(false));
            let flag = Arc::clone(&interrupted);
            if let Err(e) = ctrlc::set_handler(move || flag.store(true, Ordering::SeqCst)) {
                eprintln!("warning: Ctrl-C will not stop training cleanly: {e}");
            }
            cli::train::run(args, interrupted).map(|outcome| match outcome {
                cli::train::Outcome::Done => ExitCode::SUCCESS,
                cli::train::Outcome::Interrupted(path) => {
                    eprintln!(
                        "interrupted: training state written to {}; continue with --resume {}",
                        path.display(),
                        path.display()
                    );
                    ExitCode::from(130)
                }
            })
        }
        Command::Eval(args) => cli::eval::eval(args).map(|()| ExitCode::SUCCESS),
        Command::Predict(args) => cli::eval::predict(args).map(|()| ExitCode::SUCCESS),
        Command::Check(args) => cli::check::run(args).map(|passed| {
            if passed {
                ExitCode::SUCCESS
            } else {
                ExitCode::from(1)
            }
        }),
        Command::Bench(args) => match &args.what {
            cli::args::BenchCommand::Gemm(a) => cli::bench::gemm(a),
            cli::args::BenchCommand::BatchSize(a) => cli::bench::batch_size(a),
        }
        .map(|()| ExitCode::SUCCESS),
        Command::Devices => {
            cli::devices::print_devices(&downhill::tools::list_devices());
            Ok(ExitCode::SUCCESS)
        }
    };
    result.unwrap_or_else(|e| {
        report(&e);
        ExitCode::FAILURE
    })
}
