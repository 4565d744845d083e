//! Matmul autotuning: the first time a product of some shape class is met on an adapter, every
//! candidate tile is timed on it and the fastest is kept, in memory and in a cache file per
//! adapter and driver, so later runs start with the choice made. Every tile computes the same
//! bits (each output is the same sum in the same order), so tuning never changes a result.

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use ndarray::Array2;

use super::context::GpuContext;
use super::gemm::Gemm;
use super::kernels::{MatmulTile, MatmulVariant};
use crate::error::Result;
use crate::fsio;

/// How the engine picks each product's matmul tile.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub enum Tuning {
    /// The fixed default, [`MatmulTile::for_shape`]: no timing, the same on every adapter.
    #[default]
    Fixed,
    /// Time the candidate tiles on the adapter once per shape class and keep the fastest, cached
    /// in `cache` (a JSON file; `None` keeps choices for the life of the context only).
    Autotune {
        /// The cache file.
        cache: Option<PathBuf>,
    },
    /// Every product in this one tile, where the adapter can run it (the fixed default
    /// elsewhere): to test or time one tile across a whole model.
    Pinned(MatmulTile),
}

impl Tuning {
    /// Autotuning cached in the user's cache directory: `$DOWNHILL_CACHE_DIR`, else
    /// `$XDG_CACHE_HOME/downhill`, else `~/.cache/downhill`, file `autotune.json`; without any
    /// of them, choices last for the run.
    pub fn autotune_cached() -> Self {
        let var = |name| {
            std::env::var_os(name)
                .filter(|v| !v.is_empty())
                .map(PathBuf::from)
        };
        let dir = var("DOWNHILL_CACHE_DIR")
            .or_else(|| var("XDG_CACHE_HOME").map(|d| d.join("downhill")))
            .or_else(|| var("HOME").map(|d| d.join(".cache").join("downhill")));
        Tuning::Autotune {
            cache: dir.map(|d| d.join("autotune.json")),
        }
    }
}

/// The shapes a tuner has settled, per adapter key, as the cache file stores them:
/// `{ adapter: { shape class: tile name } }`.
type Table = BTreeMap<String, BTreeMap<String, String>>;

/// Chooses tiles for one context (shared by its clones).
#[derive(Debug, Clone)]
pub(crate) struct Tuner {
    tuning: Tuning,
    choices: Arc<Mutex<Table>>,
}

/// Each candidate's timing runs about this long (at least one product), best of two.
const TIMING_BUDGET: Duration = Duration::from_millis(20);

impl Tuner {
    /// A tuner for `tuning`, starting from its cache file when there is a readable one (a
    /// missing or unreadable cache is the same as an empty one: it is only ever re-derived).
    pub fn new(tuning: Tuning) -> Self {
        let table = match &tuning {
            Tuning::Autotune { cache: Some(path) } => std::fs::read(path)
                .ok()
                .and_then(|bytes| serde_json::from_slice(&bytes).ok())
                .unwrap_or_default(),
            _ => Table::new(),
        };
        Self {
            tuning,
            choices: Arc::new(Mutex::new(table)),
        }
    }

    /// The tile for `C[m,n] = op(A)[m,k]·op(B)[k,n]` with `variant`, reading vec4s when `vec4`,
    /// for `models` side by side: the fixed default, the pinned tile, or with autotuning the
    /// fastest candidate for the shape's class (timed now when the class is new).
    pub fn tile(
        &self,
        ctx: &GpuContext,
        variant: MatmulVariant,
        (m, n, k): (usize, usize, usize),
        vec4: bool,
        models: usize,
    ) -> Result<MatmulTile> {
        let cache = match &self.tuning {
            Tuning::Fixed => return Ok(MatmulTile::for_shape(m, n)),
            Tuning::Pinned(tile) if ctx.runs(*tile) => return Ok(*tile),
            Tuning::Pinned(_) => return Ok(MatmulTile::for_shape(m, n)),
            Tuning::Autotune { cache } => cache,
        };
        let adapter = adapter_key(ctx.info());
        let class = shape_class(variant, (m, n, k), vec4, models);
        let known = self
            .lock()
            .get(&adapter)
            .and_then(|t| t.get(&class))
            .cloned();
        // A cached choice this context cannot run (a file edited by hand) is timed afresh.
        if let Some(tile) = known
            .as_deref()
            .and_then(MatmulTile::from_name)
            .filter(|&tile| ctx.runs(tile))
        {
            return Ok(tile);
        }
        let tile = fastest(ctx, variant, (m, n, k), vec4, models)?;
        let table = {
            let mut table = self.lock();
            table.entry(adapter).or_default().insert(class, tile.name());
            table.clone()
        };
        if let Some(path) = cache {
            // A cache that cannot be written costs a re-tune next run, nothing more.
            let _ = save(path, &table);
        }
        Ok(tile)
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Table> {
        self.choices.lock().unwrap_or_else(|e| e.into_inner())
    }
}

fn save(path: &std::path::Path, table: &Table) -> Result<()> {
    if let Some(dir) = path.parent() {
        std::fs::create_dir_all(dir).map_err(|source| crate::Error::Io {
            action: "could not create",
            path: dir.display().to_string(),
            source,
        })?;
    }
    let json = serde_json::to_vec_pretty(table).expect("a table of strings serialises");
    fsio::write_atomic(path, &json)
}

/// The adapter and driver a choice holds for: name, backend, driver and its version.
fn adapter_key(info: &wgpu::AdapterInfo) -> String {
    format!(
        "{} / {:?} / {} {}",
        info.name, info.backend, info.driver, info.driver_info
    )
}

/// The class a product's shape falls in: layouts, vec4 reads, each size rounded up to a power
/// of two (so batches of 200 and 256 share a choice), and the models side by side, likewise.
fn shape_class(
    variant: MatmulVariant,
    (m, n, k): (usize, usize, usize),
    vec4: bool,
    models: usize,
) -> String {
    let layout = |transposed: bool| if transposed { 'T' } else { 'N' };
    let pack = match models {
        1 => String::new(),
        k => format!(" x{}", k.next_power_of_two()),
    };
    format!(
        "{}{}{} m{} n{} k{}{pack}",
        layout(variant.transpose_a),
        layout(variant.transpose_b),
        if vec4 { " vec4" } else { "" },
        m.next_power_of_two(),
        n.next_power_of_two(),
        k.next_power_of_two()
    )
}

/// Times every candidate tile on the product, for `models` side by side as a pack runs it
/// (epilogue left out: it is the same work for all), and returns the fastest; the fixed default when the product cannot be staged on its own.
fn fastest(
    ctx: &GpuContext,
    variant: MatmulVariant,
    (m, n, k): (usize, usize, usize),
    vec4: bool,
    models: usize,
) -> Result<MatmulTile> {
    let plain = MatmulVariant {
        epilogue: super::Epilogue::Plain,
        ..variant
    };
    let (a_shape, b_shape) = (
        if plain.transpose_a { (k, m) } else { (m, k) },
        if plain.transpose_b { (n, k) } else { (k, n) },
    );
    let fill = |(rows, cols): (usize, usize)| {
        Array2::from_shape_fn((rows, cols), |(i, j)| ((i * 7 + j * 3) % 17) as f32 / 17.0)
    };
    let (a, b) = (fill(a_shape), fill(b_shape));
    let mut best: Option<(Duration, MatmulTile)> = None;
    for tile in MatmulTile::candidates(m, n, ctx.has_shuffles()) {
        let before = ctx.allocated_bytes();
        let timed = time_tile(ctx, plain, tile, vec4, (m, n, k), models, (&a, &b));
        // The scratch buffers are gone (dropped in time_tile), whatever happened.
        ctx.released(ctx.allocated_bytes() - before);
        // A product whose scratch operands do not fit this device's buffers (the blocks of a
        // split layer can be larger than a binding allows for C) keeps the fixed default.
        let Some(per_run) = timed? else {
            return Ok(MatmulTile::for_shape(m, n));
        };
        if best.is_none_or(|(t, _)| per_run < t) {
            best = Some((per_run, tile));
        }
    }
    Ok(best.expect("at least the three square tiles").1)
}

/// Time per product of `tile` on scratch operands `a` and `b` (best of two timings of about
/// [`TIMING_BUDGET`] after a warm-up); `None` when the product cannot be staged on this device.
fn time_tile(
    ctx: &GpuContext,
    variant: MatmulVariant,
    tile: MatmulTile,
    vec4: bool,
    shape: (usize, usize, usize),
    models: usize,
    (a, b): (&Array2<f32>, &Array2<f32>),
) -> Result<Option<Duration>> {
    let Ok(gemm) = Gemm::build_for_models(ctx, variant, tile, vec4, shape, models) else {
        return Ok(None);
    };
    gemm.upload(a.view(), b.view(), None)?;
    gemm.run(1)?;
    let once = time(|| gemm.run(1))?;
    let repeats = (TIMING_BUDGET.as_secs_f64() / once.as_secs_f64().max(1e-6)).clamp(1.0, 50.0);
    let repeats = repeats as usize;
    let best = time(|| gemm.run(repeats))?.min(time(|| gemm.run(repeats))?);
    Ok(Some(best / repeats as u32))
}

fn time(run: impl FnOnce() -> Result<()>) -> Result<Duration> {
    let start = Instant::now();
    run()?;
    Ok(start.elapsed())
}
