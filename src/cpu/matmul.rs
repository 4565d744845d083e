//! The CPU engine's matrix products, `C = A·B`, through the `gemm` crate.
//!
//! `gemm` picks its kernels at run time for the CPU it finds (AVX-512 where present, with
//! the `x86-v4` feature; AVX2+FMA, NEON or scalar otherwise) and splits the output over the
//! cores. Every output entry is still one dot product summed along `k` by a single core, so
//! the bits do not depend on the number of threads.

use std::mem::MaybeUninit;

use ndarray::{Array2, ArrayView2, ShapeBuilder};
use rayon::prelude::*;

use super::elementwise::shared;

/// `C = A·B` for `A` of shape `[m, k]` and `B` of shape `[k, n]`, in any strides (so transposed
/// views cost no copy); `C` is a new row-major `[m, n]` array.
///
/// # Panics
/// If the inner dimensions differ, which is a bug in the caller rather than a user error.
pub fn product(a: ArrayView2<'_, f32>, b: ArrayView2<'_, f32>) -> Array2<f32> {
    product_in(a, b, false)
}

/// `C = A·B` as [`product`] gives it (the same bits, row-major), computed into a column-major
/// `C` and then copied. gemm arranges every product so that it writes `C` down its columns,
/// packing into its kernels' layout the operand that is not already in it: for `x·Wᵀ`, a
/// batch `x` through a layer's weight `W [out, in]`, a row-major `C` means packing all of `W`
/// and a column-major one packing the rows of `x`. For a batch of few rows the second is far
/// less work: the CPU step of a 784-512-512-10 MLP measured 1.56×, 1.31× and 1.12× faster at
/// 32, 64 and 128 rows this way, but 0.96× and 0.85× at 256 and 1024 rows, where `x` is no
/// longer small beside `W` (BENCHMARKS.md).
pub fn product_of_few_rows(a: ArrayView2<'_, f32>, b: ArrayView2<'_, f32>) -> Array2<f32> {
    product_in(a, b, true).as_standard_layout().into_owned()
}

/// `aᵀ` as a new row-major array, [`TILE`]×[`TILE`] blocks at a time: the block's rows of `a`
/// stay in cache while it is written as contiguous pieces of rows of `aᵀ`. Bands of [`TILE`]
/// rows of the result are shared among the pool's threads as the element-wise passes share
/// their blocks ([`shared`]: on the pool, more than a task's worth).
pub fn transposed(a: ArrayView2<'_, f32>) -> Array2<f32> {
    let (rows, cols) = a.dim();
    let mut out = Array2::<f32>::uninit((cols, rows));
    if rows == 0 || cols == 0 {
        // SAFETY: an array without elements has nothing to initialise.
        return unsafe { out.assume_init() };
    }
    let a = a.as_standard_layout();
    let values = a.as_slice().expect("standard layout");
    // Band `band` of the result: its rows `band·TILE..`, the columns `band·TILE..` of `a`.
    let fill = |band: usize, out: &mut [MaybeUninit<f32>]| {
        let (first, width) = (band * TILE, out.len() / rows);
        let mut top = 0;
        while top < rows {
            let height = TILE.min(rows - top);
            let mut block = [[0.0f32; TILE]; TILE];
            if width == TILE {
                for (i, held) in block.iter_mut().enumerate().take(height) {
                    let start = (top + i) * cols + first;
                    *held = values[start..start + TILE]
                        .try_into()
                        .expect("a tile's width");
                }
            } else {
                for (i, held) in block.iter_mut().enumerate().take(height) {
                    let start = (top + i) * cols + first;
                    for (h, &v) in held.iter_mut().zip(&values[start..start + width]) {
                        *h = v;
                    }
                }
            }
            for j in 0..width {
                let row = &mut out[j * rows + top..j * rows + top + height];
                for (i, value) in row.iter_mut().enumerate() {
                    value.write(block[i][j]);
                }
            }
            top += TILE;
        }
    };
    let out_values = out.as_slice_mut().expect("a new array is row-major");
    if shared(out_values.len()) {
        out_values
            .par_chunks_mut(TILE * rows)
            .enumerate()
            .for_each(|(band, out)| fill(band, out));
    } else {
        for (band, out) in out_values.chunks_mut(TILE * rows).enumerate() {
            fill(band, out);
        }
    }
    // SAFETY: the bands cover `out`, and each writes every one of its `width × rows` elements.
    unsafe { out.assume_init() }
}

/// The side of the square blocks [`transposed`] moves at a time.
const TILE: usize = 16;

/// Whether gemm splits a product of `multiply_adds` multiply-adds over threads (its threading
/// threshold, 48·48·256 unless set otherwise): smaller ones run on one thread.
pub fn threaded(multiply_adds: usize) -> bool {
    multiply_adds >= gemm::get_threading_threshold()
}

/// `C = A·B` into a new `C`, column-major when `by_columns`, else row-major.
fn product_in(a: ArrayView2<'_, f32>, b: ArrayView2<'_, f32>, by_columns: bool) -> Array2<f32> {
    let ((m, k), (k_b, n)) = (a.dim(), b.dim());
    assert_eq!(k, k_b, "inner dimensions of a matrix product");
    if k == 0 {
        // An empty sum is zero; said here rather than left to the library.
        return Array2::zeros((m, n));
    }
    let (mut c, [c_rs, c_cs]) = if by_columns {
        (Array2::<f32>::uninit((m, n).f()), [1, m as isize])
    } else {
        (Array2::<f32>::uninit((m, n)), [n as isize, 1])
    };
    let ([a_rs, a_cs], [b_rs, b_cs]) = (
        [a.strides()[0], a.strides()[1]],
        [b.strides()[0], b.strides()[1]],
    );
    // SAFETY: `a` and `b` are live views of `[m, k]` and `[k, n]` elements at the strides
    // given, `c` is a fresh `[m, n]` array at strides `c_rs`, `c_cs` that aliases neither, and with
    // `read_dst = false` and `k > 0` gemm writes every element of `c` without reading it (on
    // every path of gemm 0.19: packed, gemv, gevv, horizontal), so `c` is initialised when it
    // returns.
    unsafe {
        gemm::gemm(
            m,
            n,
            k,
            c.as_mut_ptr().cast::<f32>(),
            c_cs,
            c_rs,
            false,
            a.as_ptr(),
            a_cs,
            a_rs,
            b.as_ptr(),
            b_cs,
            b_rs,
            0.0,
            1.0,
            false,
            false,
            false,
            // As many threads as rayon's pool has (one per core unless told otherwise).
            gemm::Parallelism::Rayon(0),
        );
        c.assume_init()
    }
}

#[cfg(test)]
mod tests {
    use ndarray::Array2;

    use super::*;

    /// A `[rows, cols]` matrix of varied values in [-0.5, 0.5).
    fn varied(rows: usize, cols: usize, seed: usize) -> Array2<f32> {
        Array2::from_shape_fn((rows, cols), |(i, j)| {
            ((i * 7919 + j * 104_729 + seed * 1_299_709) % 1009) as f32 / 1009.0 - 0.5
        })
    }

    #[test]
    fn a_transposed_copy_holds_the_transpose_on_any_pool() {
        for (rows, cols) in [(0, 3), (1, 1), (5, 17), (784, 512), (33, 100)] {
            let a = varied(rows, cols, 3);
            for threads in [1, 2, 3] {
                let pool = rayon::ThreadPoolBuilder::new().num_threads(threads).build();
                let t = pool.expect("a pool").install(|| transposed(a.view()));
                assert!(t.is_standard_layout(), "row-major");
                assert_eq!(t, a.t(), "{rows}x{cols} on {threads} threads");
            }
            assert_eq!(transposed(a.t()), a, "{rows}x{cols} read column-major");
        }
    }

    #[test]
    fn a_product_against_a_transposed_copy_has_the_bits_of_the_product_through_a_view() {
        // x·Wᵀ for a batch x [rows, in] through a layer W [out, in], as the forward pass takes
        // it for many rows; an `in` of 1500 is summed by gemm in more than one block along K.
        for (rows, inputs, outputs) in [(300, 784, 512), (129, 1500, 70), (1024, 512, 10)] {
            let (x, w) = (varied(rows, inputs, 1), varied(outputs, inputs, 2));
            let through_view = product(x.view(), w.t());
            let through_copy = product(x.view(), transposed(w.view()).view());
            let bits = |c: &Array2<f32>| c.iter().map(|v| v.to_bits()).collect::<Vec<_>>();
            assert_eq!(
                bits(&through_copy),
                bits(&through_view),
                "{rows}x{inputs}x{outputs}"
            );
        }
    }

    #[test]
    fn a_product_of_few_rows_has_the_bits_of_the_row_major_product() {
        // x·Wᵀ for a batch x [rows, in] through a layer W [out, in]; an `in` of 1500 is summed
        // by gemm in more than one block along K.
        for (rows, inputs, outputs) in [(1, 3, 5), (64, 784, 512), (100, 1500, 70)] {
            let (x, w) = (varied(rows, inputs, 1), varied(outputs, inputs, 2));
            let expected = product(x.view(), w.t());
            let few = product_of_few_rows(x.view(), w.t());
            assert!(few.is_standard_layout(), "row-major");
            assert_eq!(few.dim(), (rows, outputs));
            let bits = |c: &Array2<f32>| c.iter().map(|v| v.to_bits()).collect::<Vec<_>>();
            assert_eq!(
                bits(&few),
                bits(&expected),
                "{rows}x{inputs} by {inputs}x{outputs}"
            );
        }
    }
}
