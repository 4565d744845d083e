//! Where a benchmark's training batches come from: the engines it builds, one step on a batch
//! gathered on the device or streamed from the host, and the training loop's throughput with the
//! data resident and streamed.

use std::time::Instant;

use super::bench_engine::BenchEngine;
use crate::CpuEngine;
use crate::engine::{Engine, Setup};
use crate::error::Result;
use crate::gpu::GpuEngine;
use crate::model::Parameters;
use crate::train::{Residency, TrainConfig, TrainData, train};

/// An engine built for one batch size of `bench batch-size`, kept concrete so the GPU one can
/// turn on timestamps.
pub(super) enum Built {
    /// The GPU engine.
    Gpu(Box<GpuEngine>),
    /// The CPU reference.
    Cpu(Box<CpuEngine>),
}

impl Built {
    /// A fresh engine of `kind` for `setup` from `init`, for batches of up to `batch` rows.
    pub(super) fn new(
        kind: &BenchEngine,
        setup: &Setup,
        init: &Parameters,
        batch: usize,
    ) -> Result<Self> {
        Ok(match kind {
            BenchEngine::Gpu(ctx) => {
                Built::Gpu(Box::new(GpuEngine::new(ctx, setup.clone(), init, batch)?))
            }
            BenchEngine::Cpu => Built::Cpu(Box::new(CpuEngine::new(setup.clone(), init)?)),
        })
    }

    /// The engine behind the trait.
    pub(super) fn engine(&mut self) -> &mut dyn Engine {
        match self {
            Built::Gpu(g) => g.as_mut(),
            Built::Cpu(c) => c.as_mut(),
        }
    }

    /// `gpu` or `cpu`.
    pub(super) fn name(&self) -> &'static str {
        match self {
            Built::Gpu(_) => "gpu",
            Built::Cpu(_) => "cpu",
        }
    }
}

/// The training loop's throughput with resident and with streamed data.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct ResidencyThroughput {
    /// Samples/s with the dataset on the device and batches gathered there; `None` when the
    /// data streamed (see [`super::BatchRow::streamed_because`]), so was not made resident.
    pub resident: Option<f64>,
    /// Samples/s with batches gathered on the host by the prefetch thread and uploaded.
    pub streamed: f64,
}

/// Rounds of the residency comparison; each runs both, and the faster of each is kept.
const RESIDENCY_ROUNDS: usize = 2;

/// Trains fresh engines with `config`, resident (when `resident`) and streamed in turn, and keeps
/// each one's best samples/s over [`RESIDENCY_ROUNDS`] rounds.
pub(super) fn resident_and_streamed(
    kind: &BenchEngine,
    setup: &Setup,
    init: &Parameters,
    data: &TrainData,
    config: &TrainConfig,
    resident: bool,
) -> Result<ResidencyThroughput> {
    let mut best = [0.0f64; 2];
    let modes: &[Residency] = if resident {
        &[Residency::Resident, Residency::Streamed]
    } else {
        &[Residency::Streamed]
    };
    for _ in 0..RESIDENCY_ROUNDS {
        for &residency in modes {
            let mut engine = Built::new(kind, setup, init, config.batch_size)?;
            let config = TrainConfig {
                residency,
                ..config.clone()
            };
            let start = Instant::now();
            let report = train(
                engine.engine(),
                data,
                None,
                &config,
                None,
                &mut crate::train::Silent,
            )?;
            let rows: f64 = report.epochs().len() as f64 * (data.rows() as f64);
            let i = usize::from(residency == Residency::Streamed);
            best[i] = best[i].max(rows / start.elapsed().as_secs_f64());
        }
    }
    Ok(ResidencyThroughput {
        resident: resident.then_some(best[0]),
        streamed: best[1],
    })
}
