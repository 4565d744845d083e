//! A recorded kernel launch: the pipeline, the bind group, and how many workgroups it takes as
//! a function of the batch, recorded into a compute pass as many times as steps are run.

/// What a kernel launch computes, for profiles.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum KernelKind {
    /// A matrix product (forward with bias and activation, weight gradient, input gradient).
    Matmul,
    /// The loss: per-row loss and output gradient, then the mean.
    Loss,
    /// A bias gradient (column sums).
    BiasGradient,
    /// A norm's forward or backward pass.
    Norm,
    /// Dropout's forward or backward pass.
    Dropout,
    /// Clipping by global norm.
    Clip,
    /// The fused optimizer update.
    Update,
    /// Gathering a batch from resident data.
    Gather,
}

impl KernelKind {
    /// Its name in reports.
    pub fn name(self) -> &'static str {
        match self {
            KernelKind::Matmul => "matmul",
            KernelKind::Loss => "loss",
            KernelKind::BiasGradient => "bias gradient",
            KernelKind::Norm => "norm",
            KernelKind::Dropout => "dropout",
            KernelKind::Clip => "clip",
            KernelKind::Update => "optimizer update",
            KernelKind::Gather => "gather",
        }
    }
}

/// A size that is either the current batch's row count or fixed by the model.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Extent {
    /// The batch's rows.
    Batch,
    /// This many.
    Fixed(u32),
}

impl Extent {
    /// The size for a batch of `rows` rows.
    pub fn at(self, rows: u32) -> u32 {
        match self {
            Extent::Batch => rows,
            Extent::Fixed(n) => n,
        }
    }

    /// The size when it does not depend on the batch.
    pub fn fixed(self) -> Option<u32> {
        match self {
            Extent::Batch => None,
            Extent::Fixed(n) => Some(n),
        }
    }
}

/// How many workgroups a dispatch launches, as a function of the batch; every grid but
/// [`Grid::Once`] and [`Grid::Rows`] repeats for each model of the pack in z.
#[derive(Debug, Clone, Copy)]
pub(crate) enum Grid {
    /// One workgroup per `rows × cols` tile of an `m × n` product.
    Tiles {
        m: Extent,
        n: Extent,
        rows: u32,
        cols: u32,
    },
    /// One invocation per item, `group` to a workgroup.
    Items { count: Extent, group: u32 },
    /// One workgroup.
    Single,
    /// One workgroup, once (not per model).
    Once,
    /// One invocation per column of each batch row: `(width / group, rows)` workgroups, once.
    Rows { width: u32, group: u32 },
    /// One invocation per item of each of `models` (in z, instead of the pack's): `per_model`
    /// items, `group` to a workgroup, spread over x and y to stay under the per-dimension
    /// limit.
    Spread {
        per_model: u64,
        models: u32,
        group: u32,
    },
}

impl Grid {
    /// Workgroups in x, y and z for a batch of `rows` rows of a pack of `models`.
    pub fn workgroups(self, rows: u32, max_per_dim: u32, models: u32) -> (u32, u32, u32) {
        match self {
            Grid::Tiles {
                m,
                n,
                rows: tile_rows,
                cols,
            } => (
                n.at(rows).div_ceil(cols),
                m.at(rows).div_ceil(tile_rows),
                models,
            ),
            Grid::Items { count, group } => (count.at(rows).div_ceil(group), 1, models),
            Grid::Single => (1, 1, models),
            Grid::Once => (1, 1, 1),
            Grid::Rows { width, group } => (width.div_ceil(group), rows, 1),
            Grid::Spread {
                per_model,
                models,
                group,
            } => {
                let groups = per_model.div_ceil(u64::from(group));
                let x = groups.min(u64::from(max_per_dim));
                (x as u32, groups.div_ceil(x.max(1)) as u32, models)
            }
        }
    }
}

/// One recorded kernel launch.
#[derive(Clone)]
pub(crate) struct Dispatch {
    /// What it computes.
    pub kind: KernelKind,
    /// The specialised kernel.
    pub pipeline: wgpu::ComputePipeline,
    /// Its bindings.
    pub bind_group: wgpu::BindGroup,
    /// Its workgroups.
    pub grid: Grid,
}

impl Dispatch {
    /// Records the launch into `pass` for a batch of `rows` rows of a pack of `models`.
    pub fn record(
        &self,
        pass: &mut wgpu::ComputePass<'_>,
        rows: u32,
        max_per_dim: u32,
        models: u32,
    ) {
        let (x, y, z) = self.grid.workgroups(rows, max_per_dim, models);
        pass.set_pipeline(&self.pipeline);
        pass.set_bind_group(0, &self.bind_group, &[]);
        pass.dispatch_workgroups(x, y, z);
    }
}
