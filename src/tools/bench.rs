//! Benchmarks as library functions: the engine's matrix product against ndarray's, and a sweep
//! of batch sizes measuring steady-state throughput, step-time spread, GPU time (timestamp
//! queries where the adapter has them), device memory, and convergence against wall time.

use std::time::Instant;

use ndarray::Array2;

use crate::data::scheduler::Order;
use crate::engine::{Engine, Setup};
use crate::error::Result;
use crate::gpu::{Epilogue, Gemm, GpuContext, GpuEngine, KernelKind, MatmulTile, MatmulVariant};
use crate::model::{Activation, Parameters};
use crate::train::{Feed, Observer, Progress, Residency, TrainConfig, TrainData, place, train};

use super::bench_engine::BenchEngine;
use super::bench_residency::{Built, ResidencyThroughput, resident_and_streamed};

/// What a benchmark ran on, recorded with every result.
#[derive(Debug, Clone, PartialEq)]
pub struct RunInfo {
    /// Adapter name, or "cpu".
    pub adapter: String,
    /// Backend (`Vulkan`, ...), or "none".
    pub backend: String,
    /// Driver and version.
    pub driver: String,
    /// The model, e.g. `64-64-10 relu, cross-entropy, Adam`.
    pub model: String,
    /// The data, e.g. `digits [1797, 64]`.
    pub data: String,
    /// downhill's version.
    pub version: String,
    /// When, RFC 3339 UTC.
    pub date: String,
}

impl RunInfo {
    /// Describes `ctx` (or the CPU when `None`), `model` and `data`.
    pub fn new(ctx: Option<&GpuContext>, model: String, data: String) -> Self {
        let (adapter, backend, driver) = match ctx {
            Some(c) => {
                let i = c.info();
                (
                    i.name.clone(),
                    format!("{:?}", i.backend),
                    format!("{} {}", i.driver, i.driver_info).trim().to_string(),
                )
            }
            None => ("cpu".into(), "none".into(), "ndarray".into()),
        };
        Self {
            adapter,
            backend,
            driver,
            model,
            data,
            version: env!("CARGO_PKG_VERSION").to_string(),
            date: humantime::format_rfc3339_seconds(std::time::SystemTime::now()).to_string(),
        }
    }
}

/// One matrix size, both implementations.
#[derive(Debug, Clone, PartialEq)]
pub struct GemmRow {
    /// Square size n (an n×n by n×n product).
    pub n: usize,
    /// The GPU's figures, when a GPU was measured.
    pub gpu: Option<GpuGemmFigures>,
    /// GFLOP/s of ndarray's product.
    pub cpu_gflops: f64,
    /// GFLOP/s of the CPU engine's product ([`crate::cpu::product`], the `gemm` crate).
    pub cpu_engine_gflops: f64,
    /// Seconds per product on the CPU (ndarray).
    pub cpu_seconds: f64,
}

/// The GPU's product at one size.
#[derive(Debug, Clone, PartialEq)]
pub struct GpuGemmFigures {
    /// The tile the context's tuning chose (`large` with `--no-autotune`).
    pub tile: String,
    /// GFLOP/s of the engine's kernel in that tile.
    pub gflops: f64,
    /// GFLOP/s of the fixed default tile (the staged 64×64 one at these sizes).
    pub fixed_gflops: f64,
    /// Seconds per product in the chosen tile (host-timed, back-to-back products).
    pub seconds: f64,
}

/// Median seconds per call of each of `runs`, timed in turn (one trial of each, three times,
/// so that a machine's slow spell hits them alike), each trial about `budget / 3` seconds.
fn interleaved_medians(
    runs: &mut [&mut dyn FnMut(usize) -> Result<()>],
    budget: f64,
) -> Result<Vec<f64>> {
    let mut repeats = Vec::new();
    for run in runs.iter_mut() {
        run(1)?;
        let start = Instant::now();
        run(1)?;
        let once = start.elapsed().as_secs_f64().max(1e-6);
        repeats.push(((budget / 3.0 / once).ceil() as usize).clamp(1, 1000));
    }
    let mut trials = vec![Vec::new(); runs.len()];
    for _ in 0..3 {
        for (i, run) in runs.iter_mut().enumerate() {
            let start = Instant::now();
            run(repeats[i])?;
            trials[i].push(start.elapsed().as_secs_f64() / repeats[i] as f64);
        }
    }
    Ok(trials
        .into_iter()
        .map(|mut t| {
            t.sort_by(f64::total_cmp);
            t[1]
        })
        .collect())
}

/// GFLOP/s of `C = A·B` for each square size: on the GPU when `ctx` is given, the kernel in
/// the tile the context's tuning picks and in the fixed default tile; then ndarray's product and
/// the CPU engine's; all timed in turn.
pub fn bench_gemm(
    ctx: Option<&GpuContext>,
    sizes: &[usize],
    budget_seconds: f64,
) -> Result<Vec<GemmRow>> {
    sizes
        .iter()
        .map(|&n| {
            let a = Array2::from_shape_fn((n, n), |(i, j)| {
                ((i * 31 + j * 17) % 97) as f32 / 97.0 - 0.5
            });
            let b =
                Array2::from_shape_fn((n, n), |(i, j)| ((i * 13 + j * 7) % 89) as f32 / 89.0 - 0.5);
            let variant = MatmulVariant {
                transpose_a: false,
                transpose_b: false,
                epilogue: Epilogue::Plain,
                activation: Activation::Identity,
            };
            let gemms = match ctx {
                Some(ctx) => {
                    let chosen = Gemm::new(ctx, variant, n, n, n)?;
                    let fixed =
                        Gemm::with_tile(ctx, variant, MatmulTile::for_shape(n, n), n, n, n)?;
                    for gemm in [&chosen, &fixed] {
                        gemm.upload(a.view(), b.view(), None)?;
                    }
                    Some((chosen, fixed))
                }
                None => None,
            };
            let mut ndarray = |r: usize| {
                for _ in 0..r {
                    std::hint::black_box(a.dot(&b));
                }
                Ok(())
            };
            let mut engine = |r: usize| {
                for _ in 0..r {
                    std::hint::black_box(crate::cpu::product(a.view(), b.view()));
                }
                Ok(())
            };
            let flops = 2.0 * (n as f64).powi(3);
            let (gpu, cpu) = match &gemms {
                Some((chosen, fixed)) => {
                    let s = interleaved_medians(
                        &mut [
                            &mut |r| chosen.run(r),
                            &mut |r| fixed.run(r),
                            &mut ndarray,
                            &mut engine,
                        ],
                        budget_seconds,
                    )?;
                    let gpu = GpuGemmFigures {
                        tile: chosen.tile().name(),
                        gflops: flops / s[0] / 1e9,
                        fixed_gflops: flops / s[1] / 1e9,
                        seconds: s[0],
                    };
                    (Some(gpu), [s[2], s[3]])
                }
                None => {
                    let s = interleaved_medians(&mut [&mut ndarray, &mut engine], budget_seconds)?;
                    (None, [s[0], s[1]])
                }
            };
            Ok(GemmRow {
                n,
                gpu,
                cpu_gflops: flops / cpu[0] / 1e9,
                cpu_engine_gflops: flops / cpu[1] / 1e9,
                cpu_seconds: cpu[0],
            })
        })
        .collect()
}

/// How to sweep.
#[derive(Debug, Clone, PartialEq)]
pub struct BatchSweep {
    /// Batch sizes to measure.
    pub batch_sizes: Vec<usize>,
    /// Steps run before timing.
    pub warmup_steps: usize,
    /// Steps timed (once back to back for throughput, once one by one for the spread).
    pub timed_steps: usize,
    /// Epochs of training for the convergence measurement.
    pub epochs: u64,
    /// Report the wall time until the training loss first reaches this.
    pub target_loss: Option<f64>,
    /// Seed of the epoch order.
    pub seed: u64,
    /// Where the batches come from: gathered on the device from a resident copy of the data
    /// where it can be made resident (`Auto`, as `train` does), else streamed from the host.
    pub residency: Residency,
}

/// One engine at one batch size.
#[derive(Debug, Clone, PartialEq)]
pub struct BatchRow {
    /// `gpu` or `cpu`.
    pub engine: String,
    /// Rows per batch.
    pub batch_size: usize,
    /// Steady-state training rows per second (steps back to back, no waits between them).
    pub samples_per_second: f64,
    /// Median wall time of one step, waited on, in milliseconds.
    pub step_ms_median: f64,
    /// 10th percentile of the same.
    pub step_ms_p10: f64,
    /// 90th percentile of the same.
    pub step_ms_p90: f64,
    /// Median GPU time of one step from timestamp queries, when the adapter has them.
    pub gpu_ms_median: Option<f64>,
    /// GPU milliseconds of one step per kind of kernel (matmul, loss, ...), each launch timed in
    /// a pass of its own (median of the profiled steps), when the adapter has timestamps.
    pub gpu_profile_ms: Option<Vec<(String, f64)>>,
    /// Training samples/s of the whole training loop with the data resident on the device and
    /// with it streamed from host memory (GPU engine only).
    pub residency: Option<ResidencyThroughput>,
    /// Why every step streamed its batch from the host (`asked for`, the features are
    /// memory-mapped, or the device's refusal to hold the data), as `train` says it; `None` when
    /// the data was resident on the engine and each batch gathered there.
    pub streamed_because: Option<String>,
    /// `gpu timestamps` when `gpu_ms_median` is measured on the device, `host` otherwise.
    pub timing: String,
    /// Device memory the engine allocated (parameters, state, activations, resident data), bytes.
    pub device_bytes: Option<u64>,
    /// Kernel launches per training step (GPU; the gather of resident data not counted), all
    /// recorded into the step's one submit.
    pub dispatches: Option<usize>,
    /// Training loss of the last epoch of the convergence run.
    pub final_loss: f64,
    /// Wall seconds of the convergence run.
    pub train_seconds: f64,
    /// Wall seconds until the training loss first reached the target (in a read-back or an
    /// epoch's mean), if it did.
    pub seconds_to_target: Option<f64>,
    /// (wall seconds, mean training loss since the previous read-back) at every read-back
    /// within an epoch of the convergence run; the epochs' means (one batch each) when no epoch
    /// has a read-back within it. One kind of point only, so the curve compares like with like.
    pub curve: Vec<(f64, f64)>,
}

fn percentile(sorted: &[f64], p: f64) -> f64 {
    sorted[((sorted.len() - 1) as f64 * p).round() as usize]
}

impl BatchRow {
    /// The matrix products' share of the profiled GPU time of a step.
    pub fn matmul_share(&self) -> Option<f64> {
        self.share(&[KernelKind::Matmul])
    }

    /// The norms' and dropout's kernels' share of the profiled GPU time of a step.
    pub fn norm_dropout_share(&self) -> Option<f64> {
        self.share(&[KernelKind::Norm, KernelKind::Dropout])
    }

    /// The share of the profiled GPU time of a step taken by the launches of `kinds`; `None`
    /// when nothing was profiled or the step has no such launch.
    fn share(&self, kinds: &[KernelKind]) -> Option<f64> {
        let profile = self.gpu_profile_ms.as_ref()?;
        let total = profile.iter().fold(0.0, |sum, (_, ms)| sum + ms);
        let parts: Vec<f64> = profile
            .iter()
            .filter(|(kind, _)| kinds.iter().any(|k| kind == k.name()))
            .map(|(_, ms)| *ms)
            .collect();
        let part = parts.iter().fold(0.0, |sum, ms| sum + ms);
        (total > 0.0 && !parts.is_empty()).then(|| part / total)
    }
}

/// Records the loss of a training run against wall time: the means over the read-backs within
/// each epoch, and the means of whole epochs, apart.
struct Curve {
    start: Instant,
    windows: Vec<(f64, f64)>,
    epochs: Vec<(f64, f64)>,
}

impl Curve {
    fn new() -> Self {
        Self {
            start: Instant::now(),
            windows: Vec::new(),
            epochs: Vec::new(),
        }
    }

    /// The first time the loss was at or below `target`, in either kind of point.
    fn reached(&self, target: f64) -> Option<f64> {
        let first = |points: &[(f64, f64)]| points.iter().find(|p| p.1 <= target).map(|p| p.0);
        match (first(&self.windows), first(&self.epochs)) {
            (Some(a), Some(b)) => Some(a.min(b)),
            (a, b) => a.or(b),
        }
    }

    /// The points to draw: the read-backs, or the epochs' means when there were none.
    fn into_points(self) -> Vec<(f64, f64)> {
        if self.windows.is_empty() {
            self.epochs
        } else {
            self.windows
        }
    }
}

impl Observer for Curve {
    fn progress(&mut self, p: &Progress) {
        // Read-backs within epochs only; an epoch's mean comes with `epoch_end`.
        if p.epoch_end {
            return;
        }
        self.windows
            .push((self.start.elapsed().as_secs_f64(), p.loss()));
    }
    fn epoch_end(&mut self, records: &[(usize, crate::train::EpochRecord)]) {
        for (_, r) in records {
            self.epochs
                .push((self.start.elapsed().as_secs_f64(), r.train_loss));
        }
    }
}

/// Steps profiled per batch size.
const PROFILED_STEPS: usize = 5;

/// GPU milliseconds of a step per kind of kernel, in the order kinds first launch: each of
/// [`PROFILED_STEPS`] steps (run by `step(engine, i)`) is profiled launch by launch, and each
/// launch's median is summed into its kind. `None` without timestamp queries.
fn profile(
    engine: &mut GpuEngine,
    mut step: impl FnMut(&mut GpuEngine, usize) -> Result<()>,
) -> Result<Option<Vec<(String, f64)>>> {
    let mut runs: Vec<Vec<(KernelKind, f64)>> = Vec::new();
    for i in 0..PROFILED_STEPS {
        if !engine.profile_next_step() {
            return Ok(None);
        }
        step(engine, i)?;
        match engine.take_profile()? {
            Some(launches) => runs.push(launches),
            None => return Ok(None),
        }
    }
    let mut kinds: Vec<(String, f64)> = Vec::new();
    for (i, &(kind, _)) in runs[0].iter().enumerate() {
        let mut times: Vec<f64> = runs.iter().filter_map(|r| r.get(i)).map(|l| l.1).collect();
        times.sort_by(f64::total_cmp);
        let ms = percentile(&times, 0.5) * 1e3;
        match kinds.iter_mut().find(|(name, _)| name == kind.name()) {
            Some((_, total)) => *total += ms,
            None => kinds.push((kind.name().to_string(), ms)),
        }
    }
    Ok(Some(kinds))
}

/// Sweeps `sweep.batch_sizes` on every engine in `engines`, training `setup` from `init` on `data`.
/// Each engine holds the data resident and gathers every batch on the device where
/// `sweep.residency` and the device allow (as [`train`] does); otherwise a producer thread
/// gathers the batches on the host and each step uploads its own, and the row says why.
pub fn bench_batch_sizes(
    engines: &[BenchEngine],
    setup: &Setup,
    init: &Parameters,
    data: &TrainData,
    sweep: &BatchSweep,
) -> Result<Vec<BatchRow>> {
    let mut rows = Vec::new();
    for engine_kind in engines {
        for &batch in &sweep.batch_sizes {
            let batch = batch.min(data.rows());
            let before = match engine_kind {
                BenchEngine::Gpu(ctx) => ctx.allocated_bytes(),
                BenchEngine::Cpu => 0,
            };
            let mut built = Built::new(engine_kind, setup, init, batch)?;
            let name = built.name();
            let streamed_because =
                place(sweep.residency, data, |d| built.engine().load_resident(d))?;
            let device_bytes = match engine_kind {
                BenchEngine::Gpu(ctx) => Some(ctx.allocated_bytes() - before),
                BenchEngine::Cpu => None,
            };
            let dispatches = match &built {
                Built::Gpu(g) => Some(g.dispatches_per_step()),
                Built::Cpu(_) => None,
            };
            // Full batches only, so that every timed step is the same size; gathered on the
            // device, or on the host by the producer thread, one batch per step taken.
            let order = Order::new(data.rows(), batch, true, true, sweep.seed)?;
            let steps = sweep.warmup_steps + 2 * sweep.timed_steps + PROFILED_STEPS;
            let mut feed = Feed::new(
                data,
                order,
                streamed_because.is_none(),
                (0, 0),
                steps as u64,
            );
            let mut taken = 0u64;
            let mut next = |engine: &mut dyn Engine| {
                taken += 1;
                feed.nth(taken - 1, |input| input.step(engine))
            };

            let engine = built.engine();
            for _ in 0..sweep.warmup_steps {
                next(engine)?;
            }
            engine.synchronize()?;
            let start = Instant::now();
            for _ in 0..sweep.timed_steps {
                next(engine)?;
            }
            engine.synchronize()?;
            let samples_per_second =
                (sweep.timed_steps * batch) as f64 / start.elapsed().as_secs_f64();

            // One step at a time, waited on: the spread of step times, and GPU time where the
            // device can timestamp its passes.
            let (mut host, mut device) = (Vec::new(), Vec::new());
            let timestamps = match &mut built {
                Built::Gpu(g) => g.enable_gpu_timing(),
                Built::Cpu(_) => false,
            };
            for _ in 0..sweep.timed_steps {
                let start = Instant::now();
                next(built.engine())?;
                built.engine().synchronize()?;
                host.push(start.elapsed().as_secs_f64() * 1e3);
                if let (true, Built::Gpu(g)) = (timestamps, &mut built)
                    && let Some(seconds) = g.last_gpu_seconds()?
                {
                    device.push(seconds * 1e3);
                }
            }
            host.sort_by(f64::total_cmp);
            device.sort_by(f64::total_cmp);
            let gpu_profile_ms = match &mut built {
                Built::Gpu(g) => profile(g, |g, _| next(g))?,
                Built::Cpu(_) => None,
            };
            drop(feed);

            // Convergence: a fresh engine trained for the sweep's epochs.
            let mut fresh = Built::new(engine_kind, setup, init, batch)?;
            let config = TrainConfig {
                epochs: sweep.epochs,
                batch_size: batch,
                seed: sweep.seed,
                log_every: (data.rows() / batch / 4).max(1) as u64,
                residency: sweep.residency,
                // No reference pass before the first step inside the timed run.
                divergence_threshold: None,
                ..TrainConfig::default()
            };
            let mut curve = Curve::new();
            let report = train(fresh.engine(), data, None, &config, None, &mut curve)?;
            let train_seconds = curve.start.elapsed().as_secs_f64();
            let residency = match engine_kind {
                BenchEngine::Gpu(_) => Some(resident_and_streamed(
                    engine_kind,
                    setup,
                    init,
                    data,
                    &config,
                    streamed_because.is_none(),
                )?),
                BenchEngine::Cpu => None,
            };
            let seconds_to_target = sweep.target_loss.and_then(|target| curve.reached(target));
            rows.push(BatchRow {
                engine: name.to_string(),
                batch_size: batch,
                samples_per_second,
                step_ms_median: percentile(&host, 0.5),
                step_ms_p10: percentile(&host, 0.1),
                step_ms_p90: percentile(&host, 0.9),
                gpu_ms_median: (!device.is_empty()).then(|| percentile(&device, 0.5)),
                timing: if device.is_empty() {
                    "host"
                } else {
                    "gpu timestamps"
                }
                .to_string(),
                device_bytes,
                dispatches,
                gpu_profile_ms,
                residency,
                streamed_because,
                final_loss: report.epochs().last().map_or(f64::NAN, |r| r.train_loss),
                train_seconds,
                seconds_to_target,
                curve: curve.into_points(),
            });
        }
    }
    Ok(rows)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_curve_keeps_read_backs_and_epoch_means_apart() {
        let mut curve = Curve::new();
        let progress = |loss| Progress {
            step: 1,
            total_steps: 4,
            epoch: 1,
            losses: vec![loss],
            samples_per_second: 1.0,
            epoch_end: false,
        };
        curve.progress(&progress(2.0));
        curve.progress(&progress(0.5));
        curve.epoch_end(&[(
            0,
            crate::train::EpochRecord {
                epoch: 1,
                step: 4,
                lr: 0.1,
                train_loss: 1.2,
                train_accuracy: None,
                val_loss: None,
                val_accuracy: None,
                seconds: 0.0,
                samples_per_second: 1.0,
            },
        )]);
        assert!(curve.reached(1.2).is_some() && curve.reached(0.1).is_none());
        let points: Vec<f64> = curve.into_points().iter().map(|p| p.1).collect();
        assert_eq!(points, [2.0, 0.5], "the epoch's mean is not appended");
    }
}
