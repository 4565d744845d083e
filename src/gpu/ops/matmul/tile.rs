//! The output tiles a matmul workgroup computes: their sizes, names, the fixed default for a
//! shape, and the candidates autotuning times.

/// The output tile one matmul workgroup computes, and how it is fed.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum MatmulTile {
    /// 64×64, 4×4 outputs per invocation of a 16×16 workgroup, staging K-slices in workgroup
    /// memory: the most arithmetic per load on GPUs.
    Large,
    /// 32×32, 4×4 per invocation of an 8×8 workgroup reading storage directly: for products so
    /// small that a 64-wide tile would mostly compute padding (a batch of 32 rows through a
    /// layer of 32, say).
    Small,
    /// 16×16, 4×4 per invocation of a 4×4 workgroup reading storage directly: for the narrowest
    /// products (a layer of 10 outputs).
    Tiny,
    /// `8·row_groups × 4·width`: `width` invocations in a row, each owning four columns of every
    /// row, sharing rows of op(A) through subgroup shuffles (`shuffle.wgsl`); far the fastest
    /// on CPU rasterisers. Needs a device with subgroups
    /// ([`Device::has_shuffles`](crate::gpu::Device::has_shuffles)).
    Shuffle {
        /// Groups of 8 rows: 1, 2 or 4.
        row_groups: u32,
        /// Invocations per workgroup: 8, 16, 32 or 64.
        width: u32,
    },
}

impl MatmulTile {
    /// Rows of C per workgroup.
    pub fn rows(self) -> u32 {
        match self {
            MatmulTile::Large => 64,
            MatmulTile::Small => 32,
            MatmulTile::Tiny => 16,
            MatmulTile::Shuffle { row_groups, .. } => 8 * row_groups,
        }
    }

    /// Columns of C per workgroup.
    pub fn cols(self) -> u32 {
        match self {
            MatmulTile::Shuffle { width, .. } => 4 * width,
            square => square.rows(),
        }
    }

    /// Whether this tile runs on a device with (`shuffles`) or without subgroups of at least 8
    /// invocations: every square tile does, the shuffle tiles only with them.
    pub fn runs(self, shuffles: bool) -> bool {
        shuffles || !matches!(self, MatmulTile::Shuffle { .. })
    }

    /// The fewest rows or columns any tile has: bounds the workgroups a dispatch can need.
    pub const MIN_SIDE: u32 = 8;

    /// The fixed default: among the tiles every adapter runs (no shuffles), the one that
    /// computes the least padding for an `m × n` product, the larger one on a tie.
    pub fn for_shape(m: usize, n: usize) -> Self {
        [MatmulTile::Large, MatmulTile::Small, MatmulTile::Tiny]
            .into_iter()
            .min_by_key(|&t| t.padded(m, n))
            .expect("three tiles")
    }

    /// Every tile worth timing for an `m × n` product: the square ones, and with `shuffles` the
    /// shuffle tiles whose padding is less than the product itself (narrow tiles for narrow
    /// products).
    pub fn candidates(m: usize, n: usize, shuffles: bool) -> Vec<Self> {
        let mut tiles = vec![MatmulTile::Large, MatmulTile::Small, MatmulTile::Tiny];
        if shuffles {
            for row_groups in [1, 2, 4] {
                for width in [8, 16, 32, 64] {
                    let tile = MatmulTile::Shuffle { row_groups, width };
                    if width == 8 || tile.padded(m, n) < 2 * m * n {
                        tiles.push(tile);
                    }
                }
            }
        }
        tiles
    }

    /// Elements of C computed, padding included.
    fn padded(self, m: usize, n: usize) -> usize {
        m.next_multiple_of(self.rows() as usize) * n.next_multiple_of(self.cols() as usize)
    }

    /// A short name for reports and the tuning cache: `large`, `small`, `tiny`, `shuffle16x256`.
    pub fn name(self) -> String {
        match self {
            MatmulTile::Large => "large".into(),
            MatmulTile::Small => "small".into(),
            MatmulTile::Tiny => "tiny".into(),
            MatmulTile::Shuffle { .. } => format!("shuffle{}x{}", self.rows(), self.cols()),
        }
    }

    /// The tile [`name`](Self::name) gives, if any.
    pub fn from_name(name: &str) -> Option<Self> {
        match name {
            "large" => Some(MatmulTile::Large),
            "small" => Some(MatmulTile::Small),
            "tiny" => Some(MatmulTile::Tiny),
            _ => {
                let (rows, cols) = name.strip_prefix("shuffle")?.split_once('x')?;
                let (rows, cols): (u32, u32) = (rows.parse().ok()?, cols.parse().ok()?);
                let tile = MatmulTile::Shuffle {
                    row_groups: rows / 8,
                    width: cols / 4,
                };
                (matches!(rows, 8 | 16 | 32) && matches!(cols, 32 | 64 | 128 | 256)).then_some(tile)
            }
        }
    }
}
