//! The cost of training K models side by side against one: packs of restarts of one setup
//! trained by [`crate::train::sweep::sweep`] for the same run, timed in one process, interleaved.

use std::sync::Arc;
use std::time::Instant;

use super::bench_engine::BenchEngine;
use crate::cpu::CpuEngine;
use crate::data::Dataset;
use crate::engine::Setup;
use crate::engine::{Engine, Member, PackSetup};
use crate::error::{Error, Result};
use crate::gpu::GpuEngine;
use crate::model::Parameters;
use crate::train::sweep::sweep;
use crate::train::{Silent, TrainConfig, TrainData};

/// One pack size on one engine.
#[derive(Debug, Clone, PartialEq)]
pub struct PackRow {
    /// `gpu` or `cpu`.
    pub engine: String,
    /// Models trained side by side.
    pub models: usize,
    /// Steps of the run.
    pub steps: u64,
    /// Fastest wall time of the whole run over the repeats, seconds.
    pub seconds: f64,
    /// Model-steps per second: `models · steps / seconds`.
    pub model_steps_per_second: f64,
    /// `seconds` over the one-model run's `seconds` on the same engine.
    pub ratio_to_one: f64,
}

/// A pack of `models` restarts of `setup` (seeds `seed`, `seed + 1`, ...) on `engine`.
fn build(
    engine: &BenchEngine,
    setup: &Setup,
    models: usize,
    max_batch: usize,
    seed: u64,
) -> Result<Box<dyn Engine>> {
    let members: Vec<Member> = (0..models as u64)
        .map(|restart| Member {
            optimizer: setup.optimizer,
            parameters: Parameters::init(&setup.model, seed.wrapping_add(restart)),
        })
        .collect();
    let setup = PackSetup {
        model: setup.model.clone(),
        loss: setup.loss,
        members,
    };
    Ok(match engine {
        BenchEngine::Gpu(ctx) => Box::new(GpuEngine::pack(ctx, setup, max_batch)?),
        BenchEngine::Cpu => Box::new(CpuEngine::pack(&setup)?),
    })
}

/// Times the run `config` describes for a pack of one and of each of `sizes` on every engine,
/// `repeats` times each with the sizes interleaved, and keeps the fastest of each.
pub fn bench_packs(
    engines: &[BenchEngine],
    setup: &Setup,
    data: Arc<Dataset>,
    sizes: &[usize],
    config: &TrainConfig,
    repeats: usize,
) -> Result<Vec<PackRow>> {
    if sizes.contains(&0) || repeats == 0 {
        return Err(Error::Usage(
            "pack sizes and repeats must be at least 1".into(),
        ));
    }
    let mut all = vec![1];
    all.extend(sizes.iter().copied().filter(|&k| k != 1));
    let max_batch = config.batch_size.min(data.rows().max(1));
    let data = TrainData::Memory(data);
    let mut rows = Vec::new();
    for engine in engines {
        let name = match engine {
            BenchEngine::Gpu(_) => "gpu",
            BenchEngine::Cpu => "cpu",
        };
        let mut best = vec![(f64::INFINITY, 0u64); all.len()];
        for _ in 0..repeats {
            for (i, &models) in all.iter().enumerate() {
                let mut pack = build(engine, setup, models, max_batch, config.seed)?;
                let start = Instant::now();
                let report = sweep(pack.as_mut(), &data, None, config, &mut Silent)?;
                pack.synchronize()?;
                let seconds = start.elapsed().as_secs_f64();
                if seconds < best[i].0 {
                    best[i] = (seconds, report.steps);
                }
            }
        }
        let one = best[0].0;
        rows.extend(
            all.iter()
                .zip(&best)
                .map(|(&models, &(seconds, steps))| PackRow {
                    engine: name.to_string(),
                    models,
                    steps,
                    seconds,
                    model_steps_per_second: models as f64 * steps as f64 / seconds,
                    ratio_to_one: seconds / one,
                }),
        );
    }
    Ok(rows)
}
