//! `downhill sweep` under mpirun: each rank trains its contiguous share of the grid's models
//! side by side on its own device, on every row (no communication while training); rank 0 then
//! gathers every model's run, chooses the best over all of them, receives its parameters from
//! the rank that trained it, and writes every output. In one process, the whole grid.

use std::ops::Range;

use downhill::data::scheduler::Share;
use downhill::train::sweep::SweepReport;
use downhill::{Engine, Error, Parameters, Result};

/// What rank 0 reports: every model's run, and the best one's parameters.
pub struct Gathered {
    /// Every model of the grid, in its order, the best chosen over all.
    pub report: SweepReport,
    /// The best model's parameters, when one did not diverge.
    pub best_parameters: Option<Parameters>,
}

/// The models of a grid of `models` this process trains: all of them in one process, this
/// rank's share under mpirun (refused when there are more ranks than models).
pub fn share(models: usize) -> Result<Range<usize>> {
    let Some(rank) = super::ranks::get() else {
        return Ok(0..models);
    };
    if models < rank.size {
        return Err(Error::Usage(format!(
            "a sweep of {models} model{} over {} ranks: each rank trains at least one model; \
             launch at most {models} ranks, or sweep more settings",
            if models == 1 { "" } else { "s" },
            rank.size
        )));
    }
    Ok(Share {
        rank: rank.rank,
        ranks: rank.size,
    }
    .of(models))
}

/// The signal that stopped this process's sweep, or under mpirun any rank's (the largest
/// signal number), so that rank 0 says the results are those of an interrupted sweep whichever
/// rank was stopped. Collective under mpirun.
pub fn interrupted_anywhere(signal: Option<usize>) -> Option<usize> {
    #[cfg(feature = "mpi")]
    if super::ranks::get().is_some() {
        use mpi::collective::SystemOperation;
        use mpi::topology::SimpleCommunicator;
        use mpi::traits::*;
        let mut any = 0u64;
        SimpleCommunicator::world().all_reduce_into(
            &(signal.unwrap_or(0) as u64),
            &mut any,
            SystemOperation::max(),
        );
        return (any != 0).then_some(any as usize);
    }
    signal
}

/// Every model's run and the best one's parameters, on rank 0 (or in one process) from
/// `report`, this process's run of its `share` of the grid's `models` models on `pack`; `None`
/// on the other ranks, once they have sent theirs.
pub fn gather(
    report: SweepReport,
    share: Range<usize>,
    models: usize,
    pack: &mut dyn Engine,
) -> Result<Option<Gathered>> {
    #[cfg(feature = "mpi")]
    if let Some(rank) = super::ranks::get() {
        return across_ranks(report, share, models, pack, rank);
    }
    let _ = (share, models);
    let best_parameters = report.best.map(|b| pack.parameters(b)).transpose()?;
    Ok(Some(Gathered {
        report,
        best_parameters,
    }))
}

/// [`gather`] over the ranks of the job.
#[cfg(feature = "mpi")]
fn across_ranks(
    report: SweepReport,
    share: Range<usize>,
    models: usize,
    pack: &mut dyn Engine,
    rank: super::ranks::Rank,
) -> Result<Option<Gathered>> {
    use downhill::distributed::{gather_runs, share_parameters};
    use downhill::train::sweep::best_of;
    use mpi::topology::SimpleCommunicator;
    use mpi::traits::*;

    let world = SimpleCommunicator::world();
    let gathered = gather_runs(&world, &report.models, report.steps)?;
    // Rank 0 chooses; -1: every model diverged.
    let mut best = gathered
        .as_ref()
        .and_then(|(runs, _)| best_of(runs))
        .map_or(-1, |b| b as i64);
    world.process_at_rank(0).broadcast_into(&mut best);
    let best_parameters = match usize::try_from(best) {
        Ok(best) => {
            let owner = (0..rank.size)
                .find(|&r| {
                    Share {
                        rank: r,
                        ranks: rank.size,
                    }
                    .of(models)
                    .contains(&best)
                })
                .expect("every model is some rank's");
            let mine = (owner == rank.rank)
                .then(|| pack.parameters(best - share.start))
                .transpose()?;
            let model = pack.setup(0).model;
            Some(share_parameters(&world, owner, mine, &model))
        }
        Err(_) => None,
    };
    Ok(gathered.map(|(runs, steps)| Gathered {
        report: SweepReport {
            best: best_of(&runs),
            models: runs,
            steps,
            ..report
        },
        best_parameters,
    }))
}
