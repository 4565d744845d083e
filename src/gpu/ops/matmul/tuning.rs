//! Matmul autotuning: the first time a product of some shape class is met on an adapter, the
//! candidate tiles are timed on it in interleaved rounds (`rounds.rs`) and the fastest is kept,
//! in memory and in a cache file per adapter and driver (`cache.rs`), so later runs start with
//! the choice made; a cached tile found far slower than its record is timed again. Every tile computes the same bits (each output is the same
//! sum in the same order), so tuning never changes a result. Progress is reported through the
//! context, and its cancel flag stops the timing between runs.

use std::path::PathBuf;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use ndarray::Array2;

use super::MatmulOp;
use super::cache::{self, Choice, Table, adapter_key, read_table, store};
use super::rounds::{SHAPE_BUDGET, SHAPE_CAP, pick};
use super::staged::Staged;
use super::tile::MatmulTile;
use super::variant::{Epilogue, MatmulVariant};
use crate::error::Result;
use crate::fsio;
use crate::gpu::device::Device;
use crate::gpu::progress::{Cancel, OnProgress, Progress};

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

/// A cached choice whose tile now takes more than this many times its recorded time per product
/// is timed afresh (it was chosen under load, or the driver changed underneath it).
const STALE_FACTOR: f64 = 2.0;

/// Products faster than this are not re-timed whatever their record says: their timing is
/// mostly the launch's, too noisy to judge by, and their tile matters little.
const STALE_FLOOR: Duration = Duration::from_micros(200);

/// One matrix product an engine runs, as the tuner sees it: `C[m,n] = op(A)[m,k]·op(B)[k,n]`
/// with `variant`, reading vec4s when `vec4`, for `models` side by side.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Product {
    /// Layouts, epilogue and activation.
    pub variant: MatmulVariant,
    /// `(m, n, k)` at the largest batch the engine runs.
    pub shape: (usize, usize, usize),
    /// Whether the operands are read as vec4s.
    pub vec4: bool,
    /// Models side by side.
    pub models: usize,
    /// A weight or input gradient: only training runs it.
    pub training: bool,
}

impl Product {
    /// `784x512 by 512x64` (op(A) by op(B)), with ` (4 models)` for a pack.
    fn describe(&self) -> String {
        let (m, n, k) = self.shape;
        let pack = match self.models {
            1 => String::new(),
            k => format!(" ({k} models)"),
        };
        format!("{m}x{k} by {k}x{n}{pack}")
    }
}

/// A candidate tile and its fastest time per product over the rounds (`None`: not timed).
pub type CandidateTime = (MatmulTile, Option<Duration>);

/// What timing one shape class found, as `downhill tune` shows it.
#[derive(Debug, Clone, PartialEq)]
pub struct TunedShape {
    /// The product timed, `784x512 by 512x64` (op(A) by op(B)), with its models side by side.
    pub product: String,
    /// The shape class the choice is cached under (layouts, vec4 reads, sizes rounded up to
    /// powers of two).
    pub class: String,
    /// The tile the cache held for the class before, if any.
    pub previous: Option<MatmulTile>,
    /// Each candidate with its fastest time per product over the rounds (`None`: not timed),
    /// the fixed default first.
    pub candidates: Vec<CandidateTime>,
    /// The tile chosen: the fastest timed candidate.
    pub chosen: MatmulTile,
}

impl TunedShape {
    /// The fixed default's fastest time per product, when it was timed.
    pub fn default_time(&self) -> Option<Duration> {
        self.candidates.first().and_then(|&(_, t)| t)
    }

    /// The chosen tile's fastest time per product, when it was timed.
    pub fn chosen_time(&self) -> Option<Duration> {
        self.candidates
            .iter()
            .find(|&&(tile, _)| tile == self.chosen)
            .and_then(|&(_, t)| t)
    }
}

/// Chooses tiles for one context (shared by its clones).
#[derive(Clone)]
pub(crate) struct Tuner {
    tuning: Tuning,
    choices: Arc<Mutex<Table>>,
    /// The shape classes whose cached choice this context has checked against its record.
    verified: Arc<Mutex<std::collections::BTreeSet<String>>>,
    /// Only products that evaluation and prediction run are timed; the training products take
    /// the fixed default (see
    /// [`GpuContext::for_inference`](crate::gpu::GpuContext::for_inference)).
    inference: bool,
    /// Every shape class met is timed afresh (once per context), whatever the cache holds.
    retune: bool,
    /// What each timing found, in the order the classes were timed.
    timed: Arc<Mutex<Vec<TunedShape>>>,
    /// Where progress of the timing goes.
    progress: Option<OnProgress>,
    /// Stops the timing between runs when set.
    cancel: Option<Cancel>,
}

/// Each candidate's timing in a round runs about this long (at least one product), best of two.
const TIMING_BUDGET: Duration = Duration::from_millis(10);

impl Tuner {
    /// A tuner for `tuning`, starting from its cache file when there is a readable one (a
    /// missing or unreadable cache is the same as an empty one: it is only ever re-derived);
    /// it reports its timing to `progress` and stops it once `cancel` is set.
    pub fn new(tuning: Tuning, progress: Option<OnProgress>, cancel: Option<Cancel>) -> Self {
        let table = match &tuning {
            Tuning::Autotune { cache: Some(path) } => {
                // Temporaries of a cache write that a killed process left behind (under the
                // lock, so that another process's write under way is not taken for one).
                {
                    let _lock = cache::lock(path);
                    fsio::remove_stale_temporaries(path);
                }
                std::fs::read(path)
                    .ok()
                    .and_then(|bytes| read_table(&bytes))
                    .unwrap_or_default()
            }
            _ => Table::new(),
        };
        Self {
            tuning,
            choices: Arc::new(Mutex::new(table)),
            verified: Arc::default(),
            inference: false,
            retune: false,
            timed: Arc::default(),
            progress,
            cancel,
        }
    }

    /// The same choices, timing only the products that evaluation and prediction run.
    pub fn for_inference(&self) -> Self {
        Self {
            inference: true,
            ..self.clone()
        }
    }

    /// The same choices, timing every shape class afresh the first time this context meets it
    /// (under [`Tuning::Autotune`]; the new choices replace the cached ones).
    pub fn retuning(&self) -> Self {
        Self {
            retune: true,
            // Its own record of the classes settled, so that every class is timed here once.
            verified: Arc::default(),
            ..self.clone()
        }
    }

    /// What every timing on this tuner (and its clones) found so far.
    pub fn timed(&self) -> Vec<TunedShape> {
        self.timed.lock().unwrap_or_else(|e| e.into_inner()).clone()
    }

    /// The tile for `product`: the fixed default, the pinned tile, or with autotuning the
    /// fastest candidate for the shape's class (timed now when the class is new).
    pub fn tile(&self, device: &Device, op: &MatmulOp, product: &Product) -> Result<MatmulTile> {
        self.tune(device, op, std::slice::from_ref(product))?;
        let (m, n, _) = product.shape;
        Ok(self
            .settled(device, product)
            .unwrap_or_else(|_| MatmulTile::for_shape(m, n)))
    }

    /// Times every product among `products` whose shape class is new (each class once),
    /// reporting progress and stopping with [`Error::Cancelled`](crate::Error::Cancelled) when
    /// the cancel flag is set; each choice is cached as soon as it is made.
    pub fn tune(&self, device: &Device, op: &MatmulOp, products: &[Product]) -> Result<()> {
        for product in products {
            self.verify(device, op, product)?;
        }
        let mut new: Vec<(String, &Product)> = Vec::new();
        for product in products {
            if let Err(class) = self.settled(device, product)
                && !new.iter().any(|(c, _)| *c == class)
            {
                new.push((class, product));
            }
        }
        if new.is_empty() {
            return Ok(());
        }
        let started = Instant::now();
        let total = new.len();
        for (index, (class, product)) in new.into_iter().enumerate() {
            self.report(&Progress::Tuning {
                index: index + 1,
                total,
                product: product.describe(),
            });
            let key = adapter_key(device.info());
            let previous = self
                .lock()
                .get(&key)
                .and_then(|t| t.get(&class))
                .and_then(|choice| MatmulTile::from_name(choice.tile()));
            let (tile, candidates) = self.fastest(device, op, product)?;
            let per_run = candidates
                .iter()
                .find(|&&(t, _)| t == tile)
                .and_then(|&(_, time)| time);
            self.store(device, class.clone(), tile, per_run);
            self.timed
                .lock()
                .unwrap_or_else(|e| e.into_inner())
                .push(TunedShape {
                    product: product.describe(),
                    class,
                    previous,
                    candidates,
                    chosen: tile,
                });
        }
        self.report(&Progress::Tuned {
            total,
            seconds: started.elapsed().as_secs_f64(),
        });
        Ok(())
    }

    /// The tile for `product` without timing anything, or the shape class that needs timing.
    fn settled(&self, device: &Device, product: &Product) -> Result<MatmulTile, String> {
        let (m, n, _) = product.shape;
        let shuffles = device.has_shuffles();
        match &self.tuning {
            Tuning::Fixed => return Ok(MatmulTile::for_shape(m, n)),
            Tuning::Pinned(tile) if tile.runs(shuffles) => return Ok(*tile),
            Tuning::Pinned(_) => return Ok(MatmulTile::for_shape(m, n)),
            Tuning::Autotune { .. } if self.inference && product.training => {
                return Ok(MatmulTile::for_shape(m, n));
            }
            Tuning::Autotune { .. } => {}
        }
        let class = shape_class(product);
        if self.retune && !self.verified_lock().contains(&class) {
            return Err(class);
        }
        // A cached choice this context cannot run (a file edited by hand) is timed afresh.
        self.lock()
            .get(&adapter_key(device.info()))
            .and_then(|t| t.get(&class))
            .and_then(|choice| MatmulTile::from_name(choice.tile()))
            .filter(|&tile| tile.runs(shuffles))
            .ok_or(class)
    }

    /// Times the cached choice for `product`'s shape class once per context, when its record
    /// has a time, and forgets it when its tile now takes more than [`STALE_FACTOR`] times
    /// that (and at least [`STALE_FLOOR`]): [`Tuner::tune`] then times the class afresh.
    fn verify(&self, device: &Device, op: &MatmulOp, product: &Product) -> Result<()> {
        if self.retune
            || !matches!(self.tuning, Tuning::Autotune { .. })
            || self.settled(device, product).is_err()
        {
            return Ok(());
        }
        let class = shape_class(product);
        if !self.verified_lock().insert(class.clone()) {
            return Ok(());
        }
        let key = adapter_key(device.info());
        let recorded = match self.lock().get(&key).and_then(|t| t.get(&class)) {
            Some(Choice::Measured {
                tile,
                ns_per_product,
            }) => MatmulTile::from_name(tile).map(|tile| (tile, *ns_per_product)),
            _ => None,
        };
        let Some((tile, recorded)) = recorded else {
            return Ok(());
        };
        let plain = MatmulVariant {
            epilogue: Epilogue::Plain,
            ..product.variant
        };
        let before = device.allocated_bytes();
        let (a, b) = operands(product);
        let timed = self.time_tile(device, op, plain, tile, product, (&a, &b))?;
        device.released(device.allocated_bytes() - before);
        let stale = timed.is_some_and(|now| {
            now >= STALE_FLOOR && now.as_nanos() as f64 > STALE_FACTOR * recorded
        });
        if stale && let Some(classes) = self.lock().get_mut(&key) {
            classes.remove(&class);
        }
        Ok(())
    }

    fn verified_lock(&self) -> std::sync::MutexGuard<'_, std::collections::BTreeSet<String>> {
        self.verified.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Keeps `tile` for `class`, with its time per product when measured, in memory and in the
    /// cache file.
    fn store(&self, device: &Device, class: String, tile: MatmulTile, per_run: Option<Duration>) {
        let choice = match per_run {
            Some(per_run) => Choice::Measured {
                tile: tile.name(),
                ns_per_product: per_run.as_nanos() as f64,
            },
            None => Choice::Named(tile.name()),
        };
        self.verified_lock().insert(class.clone());
        let adapter = adapter_key(device.info());
        self.lock()
            .entry(adapter.clone())
            .or_default()
            .insert(class.clone(), choice.clone());
        if let Tuning::Autotune { cache: Some(path) } = &self.tuning {
            // A cache that cannot be written costs a re-tune next run, nothing more.
            let _ = store(path, &adapter, &class, &choice);
        }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Table> {
        self.choices.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Times the candidate tiles on the product, for its models side by side as a pack runs it
    /// (epilogue left out: it is the same work for all), the fixed default first, in
    /// interleaved rounds within [`SHAPE_BUDGET`] ([`pick`]), and returns the fastest; the fixed
    /// default when the product cannot be staged on its own. With the tile, every candidate's
    /// fastest time per product (`None` where it was not timed), the fixed default first.
    fn fastest(
        &self,
        device: &Device,
        op: &MatmulOp,
        product: &Product,
    ) -> Result<(MatmulTile, Vec<CandidateTime>)> {
        let plain = MatmulVariant {
            epilogue: Epilogue::Plain,
            ..product.variant
        };
        let (m, n, _) = product.shape;
        let (a, b) = operands(product);
        let default = MatmulTile::for_shape(m, n);
        let candidates: Vec<MatmulTile> = std::iter::once(default)
            .chain(
                MatmulTile::candidates(m, n, device.has_shuffles())
                    .into_iter()
                    .filter(|&tile| tile != default),
            )
            .collect();
        let started = Instant::now();
        let mut figures: Vec<CandidateTime> = candidates.iter().map(|&tile| (tile, None)).collect();
        let (tile, _) = pick(
            &candidates,
            (SHAPE_BUDGET, SHAPE_CAP),
            || started.elapsed(),
            |tile| {
                self.check_cancel()?;
                let before = device.allocated_bytes();
                let timed = self.time_tile(device, op, plain, tile, product, (&a, &b));
                // The scratch buffers are gone (dropped in time_tile), whatever happened.
                device.released(device.allocated_bytes() - before);
                if let Ok(Some(now)) = timed
                    && let Some((_, best)) = figures.iter_mut().find(|(t, _)| *t == tile)
                {
                    *best = Some(best.map_or(now, |b| b.min(now)));
                }
                timed
            },
        )?;
        Ok((tile, figures))
    }

    /// Time per product of `tile` on scratch operands `a` and `b`: after a warm-up, one run when
    /// that alone takes [`TIMING_BUDGET`], else the best of two timings of about that long;
    /// `None` when the product cannot be staged on this device. The cancel flag is checked between
    /// runs.
    fn time_tile(
        &self,
        device: &Device,
        op: &MatmulOp,
        variant: MatmulVariant,
        tile: MatmulTile,
        product: &Product,
        (a, b): (&Array2<f32>, &Array2<f32>),
    ) -> Result<Option<Duration>> {
        let Ok(gemm) = Staged::new(
            device,
            op,
            variant,
            tile,
            product.vec4,
            product.shape,
            product.models,
        ) else {
            return Ok(None);
        };
        gemm.upload(a.view(), b.view(), None)?;
        gemm.run(1)?;
        self.check_cancel()?;
        let once = time(|| gemm.run(1))?;
        if once >= TIMING_BUDGET {
            return Ok(Some(once));
        }
        let repeats = (TIMING_BUDGET.as_secs_f64() / once.as_secs_f64().max(1e-6)).clamp(1.0, 50.0);
        let repeats = repeats as usize;
        self.check_cancel()?;
        let first = time(|| gemm.run(repeats))?;
        self.check_cancel()?;
        let best = first.min(time(|| gemm.run(repeats))?);
        Ok(Some(best / repeats as u32))
    }

    /// Passes `event` to the progress callback, if any.
    fn report(&self, event: &Progress) {
        if let Some(progress) = &self.progress {
            progress.report(event);
        }
    }

    /// [`Error::Cancelled`](crate::Error::Cancelled) once the cancel flag is set.
    fn check_cancel(&self) -> Result<()> {
        self.cancel
            .as_ref()
            .map_or(Ok(()), |c| c.check("timing matmul tiles"))
    }
}

/// The class a product's shape falls in: layouts, vec4 reads, each size rounded up to a power
/// of two (so batches of 200 and 256 share a choice), and the models side by side, likewise.
fn shape_class(product: &Product) -> String {
    let (m, n, k) = product.shape;
    let layout = |transposed: bool| if transposed { 'T' } else { 'N' };
    let pack = match product.models {
        1 => String::new(),
        k => format!(" x{}", k.next_power_of_two()),
    };
    format!(
        "{}{}{} m{} n{} k{}{pack}",
        layout(product.variant.transpose_a),
        layout(product.variant.transpose_b),
        if product.vec4 { " vec4" } else { "" },
        m.next_power_of_two(),
        n.next_power_of_two(),
        k.next_power_of_two()
    )
}

/// Scratch operands for timing `product`: `op(A)` and `op(B)` laid out as it reads them.
fn operands(product: &Product) -> (Array2<f32>, Array2<f32>) {
    let (m, n, k) = product.shape;
    let variant = product.variant;
    let (a_shape, b_shape) = (
        if variant.transpose_a { (k, m) } else { (m, k) },
        if variant.transpose_b { (n, k) } else { (k, n) },
    );
    let fill = |(rows, cols): (usize, usize)| {
        Array2::from_shape_fn((rows, cols), |(i, j)| ((i * 7 + j * 3) % 17) as f32 / 17.0)
    };
    (fill(a_shape), fill(b_shape))
}

fn time(run: impl FnOnce() -> Result<()>) -> Result<Duration> {
    let start = Instant::now();
    run()?;
    Ok(start.elapsed())
}
