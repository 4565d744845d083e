//! How long and in what order the candidate tiles of one shape are timed: interleaved rounds,
//! each candidate keeping its fastest, within a budget and a cap per shape.

use std::time::Duration;

use super::tile::MatmulTile;
use crate::error::Result;

/// Once this much time has gone into one shape, no further round of timing starts (every
/// candidate has had its first).
pub(super) const SHAPE_BUDGET: Duration = Duration::from_secs(2);

/// Once this much time has gone into one shape, no candidate is timed at all: the fastest so far
/// is kept. A slow default (a large product in the fixed tile on a slow adapter) can take the
/// whole of [`SHAPE_BUDGET`] by itself; the cap lets every candidate be timed once after it.
pub(super) const SHAPE_CAP: Duration = Duration::from_secs(10);

/// Rounds of timing per shape: each round times the candidates in turn, so that a spell of load
/// on the machine falls on every candidate alike rather than on one, and a candidate's figure
/// is its fastest round.
const ROUNDS: usize = 3;

/// Before the rounds, the first candidate is timed until a timing is within this fraction of
/// the one before it: a GPU clocks up from idle under load, and a candidate timed before it has
/// would look slower than it is.
const SETTLED: f64 = 0.1;

/// The warm-up lasts at least this long, so that two timings alike at an idle clock do not end
/// it.
const WARM_UP_MIN: Duration = Duration::from_millis(100);

/// The warm-up stops after this long, or this many timings, settled or not. Its timings are the
/// first candidate's timings of the first round: a slow default is not timed twice before the
/// others.
const WARM_UP_LIMIT: (Duration, usize) = (Duration::from_secs(1), 64);

/// The fastest of `candidates` as `time` measures them (per product; `None`: the product
/// cannot be staged, so the first candidate stands), over [`ROUNDS`] interleaved rounds, each
/// candidate's figure its minimum. The rounds start once the device has warmed up: the first
/// candidate is timed until its time settles ([`SETTLED`], within [`WARM_UP_LIMIT`]). The first
/// round times every candidate unless `elapsed()` reaches `cap`; a later round starts only
/// while it is under `budget`, so the first candidate (the fixed default) is timed in every
/// round any other is: a choice made under load, or on a GPU still clocking up, is never one
/// timed more favourably than the default.
pub(super) fn pick(
    candidates: &[MatmulTile],
    (budget, cap): (Duration, Duration),
    elapsed: impl Fn() -> Duration,
    mut time: impl FnMut(MatmulTile) -> Result<Option<Duration>>,
) -> Result<(MatmulTile, Option<Duration>)> {
    let first = candidates.first().copied().unwrap_or(MatmulTile::Large);
    let mut fastest: Vec<Option<Duration>> = vec![None; candidates.len()];
    let warm_up_started = elapsed();
    let mut previous: Option<Duration> = None;
    for _ in 0..WARM_UP_LIMIT.1 {
        if elapsed() >= warm_up_started + WARM_UP_LIMIT.0 {
            break;
        }
        let Some(per_run) = time(first)? else {
            return Ok((first, None));
        };
        fastest[0] = Some(fastest[0].map_or(per_run, |best| best.min(per_run)));
        let settled = previous
            .is_some_and(|before| per_run.as_secs_f64() >= before.as_secs_f64() * (1.0 - SETTLED));
        if settled && elapsed() >= warm_up_started + WARM_UP_MIN {
            break;
        }
        previous = Some(per_run);
    }
    'rounds: for round in 0..ROUNDS {
        if round > 0 && elapsed() >= budget {
            break;
        }
        for (i, &tile) in candidates.iter().enumerate() {
            if i > 0 && elapsed() >= cap {
                break 'rounds;
            }
            // A candidate the first round did not reach is not timed later; the warm-up was
            // the first candidate's first round.
            if (round > 0 && fastest[i].is_none()) || (round == 0 && i == 0) {
                continue;
            }
            // A product whose scratch operands do not fit this device's buffers (the blocks of
            // a split layer can be larger than a binding allows for C) keeps the first
            // candidate.
            let Some(per_run) = time(tile)? else {
                return Ok((first, None));
            };
            fastest[i] = Some(fastest[i].map_or(per_run, |best| best.min(per_run)));
        }
    }
    let mut best: Option<(Duration, MatmulTile)> = None;
    for (&tile, figure) in candidates.iter().zip(fastest) {
        if let Some(per_run) = figure
            && best.is_none_or(|(t, _)| per_run < t)
        {
            best = Some((per_run, tile));
        }
    }
    Ok(best.map_or((first, None), |(per_run, tile)| (tile, Some(per_run))))
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::cell::Cell;

    const TILES: [MatmulTile; 3] = [MatmulTile::Small, MatmulTile::Large, MatmulTile::Tiny];

    /// Candidates that each take `cost` of the clock to time and measure `per_run`.
    fn run(
        cost: Duration,
        per_run: [u64; 3],
        limits: (Duration, Duration),
    ) -> (MatmulTile, Vec<MatmulTile>) {
        run_measuring(cost, limits, |i, _| per_run[i])
    }

    /// The tuner's own limits.
    const LIMITS: (Duration, Duration) = (SHAPE_BUDGET, SHAPE_CAP);

    /// Candidates that each take `cost` of the clock to time, candidate `i`'s `n`-th timing
    /// measuring `per_run(i, n)` microseconds.
    fn run_measuring(
        cost: Duration,
        limits: (Duration, Duration),
        per_run: impl Fn(usize, usize) -> u64,
    ) -> (MatmulTile, Vec<MatmulTile>) {
        let clock = Cell::new(Duration::ZERO);
        let mut timed = Vec::new();
        let (chosen, _) = pick(
            &TILES,
            limits,
            || clock.get(),
            |tile| {
                clock.set(clock.get() + cost);
                let i = TILES.iter().position(|&t| t == tile).unwrap_or(0);
                let n = timed.iter().filter(|&&t| t == tile).count();
                timed.push(tile);
                Ok(Some(Duration::from_micros(per_run(i, n))))
            },
        )
        .unwrap();
        (chosen, timed)
    }

    #[test]
    fn the_fastest_candidate_wins_within_the_budget() {
        let (chosen, timed) = run(Duration::from_millis(100), [30, 10, 20], LIMITS);
        assert_eq!(chosen, MatmulTile::Large);
        // The default's warm-up (two timings alike, past its minimum) is its first round; then
        // the others, and two more rounds, the candidates in turn in each.
        let warm_up = [MatmulTile::Small; 2];
        assert_eq!(timed, [&warm_up[..], &TILES[1..], &TILES, &TILES].concat());
    }

    #[test]
    fn a_spell_of_load_in_one_round_does_not_decide() {
        // The fastest tile (Large) is timed under load in the first round, three times slower
        // than the default; its later rounds show what it is.
        let (chosen, _) = run_measuring(Duration::from_millis(100), LIMITS, |i, n| match (i, n) {
            (1, 0) => 90,
            (1, _) => 10,
            (0, _) => 30,
            _ => 40,
        });
        assert_eq!(chosen, MatmulTile::Large);
        // Load that slows every candidate in a round alike changes nothing either.
        let (chosen, _) = run_measuring(Duration::from_millis(100), LIMITS, |i, n| {
            let load = if n == 1 { 5 } else { 1 };
            [30, 10, 20][i] * load
        });
        assert_eq!(chosen, MatmulTile::Large);
    }

    #[test]
    fn the_default_is_timed_in_every_round_another_candidate_is() {
        // The budget spent during the second round, which, once started, is finished (under
        // the cap): the default (first) has as many timings as any other candidate.
        let (_, timed) = run(Duration::from_millis(300), [30, 10, 20], LIMITS);
        // Round one: the default's warm-up, then the others; round two, all three.
        let (small, large, tiny) = (MatmulTile::Small, MatmulTile::Large, MatmulTile::Tiny);
        assert_eq!(timed, [small, small, large, tiny, small, large, tiny]);
    }

    #[test]
    fn every_candidate_is_timed_once_and_no_later_round_starts_past_the_budget() {
        // Each candidate costs a second of a two-second budget: the warm-up ends after one
        // timing of the default (its first round), the others are timed once, and no second
        // round starts; the fastest stands.
        let (chosen, timed) = run(Duration::from_secs(1), [30, 10, 5], LIMITS);
        assert_eq!(timed, TILES);
        assert_eq!(chosen, MatmulTile::Tiny);
        // A default slower than the whole budget leaves every other candidate its timing.
        let (chosen, timed) =
            run_measuring(Duration::from_secs(1), LIMITS, |i, _| [3000, 10, 20][i]);
        assert_eq!((chosen, timed.len()), (MatmulTile::Large, 3));
        // A default costing 4 s, timed once, still leaves the others their timing before the
        // 10 s cap.
        let (_, timed) = run(Duration::from_secs(4), [30, 10, 5], LIMITS);
        assert_eq!(timed, TILES);
        // Past the cap nothing more is timed: the first candidate, timed whatever the cost,
        // stands.
        let (chosen, timed) = run(Duration::from_secs(11), [30, 10, 5], LIMITS);
        assert_eq!(
            (chosen, timed),
            (MatmulTile::Small, vec![MatmulTile::Small])
        );
    }

    #[test]
    fn the_rounds_wait_for_a_device_clocking_up() {
        // The device runs 5x, then 3x slower than it will (a GPU leaving its idle clock), and
        // the budget leaves one round: timed cold, the default (truly the fastest) would lose
        // to the candidates timed after it. The warm-up runs it until its time settles.
        let limits = (Duration::from_millis(500), SHAPE_CAP);
        let timings = Cell::new(0u64);
        let (chosen, timed) = run_measuring(Duration::from_millis(100), limits, |i, _| {
            let k = timings.get();
            timings.set(k + 1);
            [10, 12, 14][i] * 5u64.saturating_sub(2 * k).max(1)
        });
        assert_eq!(chosen, MatmulTile::Small, "{timed:?}");
        // 50, 30, 10 and 10 µs: settled at the fourth timing, well before the warm-up's limit;
        // the round goes on with the other two.
        assert_eq!(timed.len(), 4 + 2, "{timed:?}");
    }

    #[test]
    fn two_timings_alike_at_once_do_not_end_the_warm_up() {
        // Equal timings 2 ms apart: the warm-up goes on to its minimum, 100 ms, before the
        // round.
        let (_, timed) = run(Duration::from_millis(2), [30, 10, 20], LIMITS);
        let warm_up = timed
            .iter()
            .take_while(|&&t| t == MatmulTile::Small)
            .count();
        assert_eq!(warm_up, 50, "{timed:?}");
    }

    #[test]
    fn a_product_that_cannot_be_staged_keeps_the_first_candidate() {
        let chosen = pick(
            &TILES,
            LIMITS,
            || Duration::ZERO,
            |tile| Ok((tile == MatmulTile::Small).then_some(Duration::from_micros(50))),
        )
        .unwrap();
        assert_eq!(chosen, (MatmulTile::Small, None));
    }
}
