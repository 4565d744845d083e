//! The `downhill` command line: a thin face on the library.

mod cli;

use std::process::ExitCode;

use crate::cli::output::errln;
use clap::{CommandFactory, FromArgMatches};
use cli::args::{Cli, Command};

/// Prints an error and its causes, the way every command reports failure.
/// Under mpirun, the lines start with the rank's name, and go out in one write, so that ranks
/// failing at once do not interleave their messages.
fn report(error: &dyn std::error::Error) {
    let mut text = match cli::ranks::get() {
        Some(r) => format!("rank {} of {} failed:\n", r.rank, r.size),
        None => String::new(),
    };
    text += &format!("error: {error}");
    let mut source = error.source();
    while let Some(cause) = source {
        text += &format!("\n  caused by: {cause}");
        source = cause.source();
    }
    cli::output::failure(format_args!("{text}"));
}

/// MPI's ranks when a launcher started this process among several: recorded for the commands,
/// with the host's cores shared among its ranks (the CPU engine's and the products' threads).
#[cfg(feature = "mpi")]
fn launched() -> Option<downhill::distributed::Ranks> {
    let ranks = downhill::distributed::launched_ranks()?;
    cli::ranks::set(cli::ranks::Rank {
        rank: ranks.rank,
        size: ranks.size,
        local_rank: ranks.local_rank,
        threaded: ranks.threaded,
    });
    // A rank the launcher bound to some cores has those; an unbound one shares the host's.
    let allowed = std::thread::available_parallelism().map_or(1, usize::from);
    // SAFETY: sysconf has no preconditions.
    let online = usize::try_from(unsafe { libc::sysconf(libc::_SC_NPROCESSORS_ONLN) }).unwrap_or(1);
    let threads = if allowed < online {
        allowed
    } else {
        (online / ranks.local_size).max(1)
    };
    // A pool already built keeps its threads; nothing has built one yet.
    let _ = rayon::ThreadPoolBuilder::new()
        .num_threads(threads)
        .build_global();
    Some(ranks)
}

fn main() -> ExitCode {
    // SAFETY: first thing in `main`: no other thread exists yet.
    unsafe { cli::runtime_dir::ensure() };
    let matches = Cli::command().get_matches();
    let cli = Cli::from_arg_matches(&matches).unwrap_or_else(|e| e.exit());
    #[cfg(feature = "mpi")]
    let ranks = launched();
    #[cfg(not(feature = "mpi"))]
    if let Some(n) = downhill::distributed::launcher_ranks().filter(|&n| n > 1) {
        report(&downhill::Error::Usage(format!(
            "this downhill was built without the mpi feature, and a launcher started it as one \
             of {n} processes: each would train the whole run alone and write the same files; \
             build it with `cargo build --release --features mpi` for data-parallel training"
        )));
        return ExitCode::FAILURE;
    }
    let result = run(&cli, &matches);
    result.unwrap_or_else(|e| {
        report(&e);
        // The other ranks would wait for this one in their next collective: end them all.
        #[cfg(feature = "mpi")]
        if let Some(ranks) = &ranks {
            ranks.abort(1);
        }
        ExitCode::FAILURE
    })
}

/// Runs the command `cli` names (`matches` are its flags as given).
fn run(cli: &Cli, matches: &clap::ArgMatches) -> downhill::Result<ExitCode> {
    if !matches!(cli.command, Command::Train(_) | Command::Sweep(_)) {
        cli::ranks::single_process(matches.subcommand_name().unwrap_or("this command"))?;
    }
    match &cli.command {
        Command::Train(_) => matches
            .subcommand_matches("train")
            .ok_or_else(|| downhill::Error::Usage("train's flags are missing".into()))
            .and_then(cli::resume_flags::resolve)
            .and_then(|(args, flags)| {
            let (signal, failure) = cli::signals::StopSignal::install(true);
            if let Some(e) = failure {
                errln!("warning: Ctrl-C and SIGTERM will not stop training cleanly: {e}");
            }
            cli::common::stop_tuning_on(&signal);
            cli::train::run(&args, signal, flags).map(|outcome| match outcome {
                cli::train::Outcome::Done => ExitCode::SUCCESS,
                cli::train::Outcome::Interrupted(path, signal) => {
                    errln!(
                        "interrupted by {}: training state written to {}; continue with --resume {}",
                        cli::signals::name(signal),
                        path.display(),
                        path.display()
                    );
                    ExitCode::from(cli::signals::exit_status(signal))
                }
                cli::train::Outcome::InterruptedWithoutState(signal, note) => {
                    errln!("interrupted by {}: {note}", cli::signals::name(signal));
                    ExitCode::from(cli::signals::exit_status(signal))
                }
            })
        }),
        Command::Sweep(args) => {
            let (signal, failure) = cli::signals::StopSignal::install(false);
            if let Some(e) = failure {
                errln!("warning: Ctrl-C and SIGTERM will not stop the sweep cleanly: {e}");
            }
            cli::common::stop_tuning_on(&signal);
            cli::sweep::run(args, signal).map(|outcome| match outcome {
                cli::sweep::Outcome::Done => ExitCode::SUCCESS,
                cli::sweep::Outcome::Interrupted(signal) => {
                    errln!(
                        "interrupted by {}: the results above are the models' as they stood",
                        cli::signals::name(signal)
                    );
                    ExitCode::from(cli::signals::exit_status(signal))
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
            cli::args::BenchCommand::Sweep(a) => cli::bench::packs(a),
        }
        .map(|()| ExitCode::SUCCESS),
        Command::LrFind(args) => cli::lr_find::run(args).map(|()| ExitCode::SUCCESS),
        Command::Tune(args) => cli::tune::run(args).map(|()| ExitCode::SUCCESS),
        Command::Devices => {
            cli::devices::print_devices(&downhill::tools::list_devices());
            Ok(ExitCode::SUCCESS)
        }
    }
}
