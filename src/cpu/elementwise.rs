//! The CPU engine's element-wise passes over a batch: a layer's bias and activation, the chain
//! rule through an activation, a bias gradient's sums over the rows. Each is cut into blocks
//! that the pool's threads share when the call runs on the pool ([`super::engine`] hands a
//! step large enough for gemm to thread to the pool), so that no thread waits while another
//! walks a whole batch alone.
//!
//! Every element is the same operations in the same order whatever the blocks: the bits do not
//! depend on the number of threads.

use std::mem::MaybeUninit;

use ndarray::{Array2, ArrayView2};
use rayon::prelude::*;

use crate::activation::Activation;

/// Elements one task takes: enough to outweigh handing the task to a thread, few enough that a
/// batch's layer is shared among the cores (as the optimizer's update, [`super::optim`]).
const TASK: usize = 1 << 15;

/// Whether a pass over `elements` elements is shared among the pool's threads: when it is more
/// than one task's worth and the call already runs on the pool (a pass outside it would have
/// to be handed over and waited for, which costs more than a small step's pass).
pub(super) fn shared(elements: usize) -> bool {
    elements > TASK && rayon::current_thread_index().is_some()
}

/// The elements of a block of whole rows of `cols` values, about [`TASK`] of them.
fn block_of_rows(cols: usize) -> usize {
    (TASK / cols).max(1) * cols
}

/// `a`'s values in row-major order, after making `a` row-major if it is not.
fn row_major(a: &mut Array2<f32>) -> &mut [f32] {
    if !a.is_standard_layout() {
        *a = a.as_standard_layout().into_owned();
    }
    a.as_slice_mut()
        .expect("a standard-layout array is one slice")
}

crate::simd::widest! {
    /// `row[j] += add[j]` for every `j`.
    fn add_to(row: &mut [f32], add: &[f32]) {
        for (value, &added) in row.iter_mut().zip(add) {
            *value += added;
        }
    }
}

/// A dense layer's `z ← z + b` (the bias `b` added to every row of `z`) and `a = f(z)`: returns
/// `a`. Each block of rows gets its bias and then its activation while it is in cache.
pub fn add_bias_and_activate(
    z: &mut Array2<f32>,
    bias: &[f32],
    activation: Activation,
) -> Array2<f32> {
    assert_eq!(z.ncols(), bias.len(), "a layer's outputs and its bias");
    map_rows(z, activation, |rows| {
        for row in rows.chunks_exact_mut(bias.len()) {
            add_to(row, bias);
        }
    })
}

/// `a = f(z)`, element by element (`z` made row-major if it is not, its values unchanged).
pub fn activate(z: &mut Array2<f32>, activation: Activation) -> Array2<f32> {
    map_rows(z, activation, |_| {})
}

/// `f(z)` of each block of rows of `z` into a new array, after `prepare` has changed the
/// block in place.
fn map_rows(
    z: &mut Array2<f32>,
    activation: Activation,
    prepare: impl Fn(&mut [f32]) + Sync,
) -> Array2<f32> {
    let (dim, cols) = (z.raw_dim(), z.ncols());
    let mut post = Array2::<f32>::uninit(dim);
    let (values, out) = (
        row_major(z),
        post.as_slice_mut().expect("a new array is row-major"),
    );
    if !out.is_empty() {
        let each = |(z, out): (&mut [f32], &mut [MaybeUninit<f32>])| {
            prepare(z);
            activation.apply_into(z, out);
        };
        if shared(out.len()) {
            let block = block_of_rows(cols);
            values
                .par_chunks_mut(block)
                .zip(out.par_chunks_mut(block))
                .for_each(each);
        } else {
            each((values, out));
        }
    }
    // SAFETY: the blocks cover `out`, and `apply_into` writes every element of its block (an
    // array without elements has none to write).
    unsafe { post.assume_init() }
}

/// `g ← g ⊙ f'(z)`, element by element: the chain rule through the activation, `∂L/∂z` from
/// `g = ∂L/∂f(z)`.
///
/// # Panics
/// If `g` and `z` differ in shape, which is a bug in the caller.
pub fn chain_through_activation(g: &mut Array2<f32>, z: &Array2<f32>, activation: Activation) {
    assert_eq!(g.dim(), z.dim(), "a gradient and its pre-activations");
    let cols = g.ncols();
    let z = z.as_standard_layout();
    let (g, z) = (row_major(g), z.as_slice().expect("standard layout"));
    if shared(g.len()) {
        let block = block_of_rows(cols);
        g.par_chunks_mut(block)
            .zip(z.par_chunks(block))
            .for_each(|(g, z)| activation.scale_by_derivative(g, z));
    } else {
        activation.scale_by_derivative(g, z);
    }
}

/// `Σ_rows m`, the sum of each column over the rows, from zero, first row first (a dense
/// layer's `∂L/∂b = Σ_rows δ`): the bits of ndarray's `sum_axis(Axis(0))` of a row-major
/// array. Blocks of columns are summed side by side, each over every row in order.
pub fn column_sums(m: ArrayView2<'_, f32>) -> Vec<f32> {
    let (rows, cols) = m.dim();
    let mut sums = vec![0.0f32; cols];
    let m = m.as_standard_layout();
    let values = m.as_slice().expect("standard layout");
    if rows == 0 || cols == 0 {
        return sums;
    }
    let sum_block = |first: usize, block: &mut [f32]| {
        for row in values.chunks_exact(cols) {
            add_to(block, &row[first..first + block.len()]);
        }
    };
    if shared(values.len()) {
        // Blocks of a multiple of 16 columns, about a task's worth of elements each.
        let width = (TASK / rows).max(1).next_multiple_of(16).min(cols);
        sums.par_chunks_mut(width)
            .enumerate()
            .for_each(|(i, block)| sum_block(i * width, block));
    } else {
        sum_block(0, &mut sums);
    }
    sums
}

#[cfg(test)]
mod tests {
    use ndarray::{Array1, Array2, Axis};

    use super::*;

    /// A `[rows, cols]` matrix of varied values in [-2, 2), with some exact zeros and negative
    /// zeros.
    fn varied(rows: usize, cols: usize, seed: usize) -> Array2<f32> {
        Array2::from_shape_fn((rows, cols), |(i, j)| {
            match (i * 7919 + j * 104_729 + seed * 1_299_709) % 1009 {
                0 => 0.0,
                1 => -0.0,
                v => v as f32 / 252.25 - 2.0,
            }
        })
    }

    fn bits(values: impl IntoIterator<Item = f32>) -> Vec<u32> {
        values.into_iter().map(f32::to_bits).collect()
    }

    /// Runs `f` on a pool of `threads` threads, as the engine runs a step.
    fn on_threads<R: Send>(threads: usize, f: impl FnOnce() -> R + Send) -> R {
        rayon::ThreadPoolBuilder::new()
            .num_threads(threads)
            .build()
            .expect("a pool")
            .install(f)
    }

    /// Sizes below a task, at one, and large enough for many blocks (with rows that do not
    /// divide a task).
    const SHAPES: [(usize, usize); 4] = [(3, 5), (64, 512), (1024, 512), (777, 130)];

    #[test]
    fn bias_and_activation_match_the_plain_element_by_element_arithmetic_on_any_pool() {
        let activation = Activation::Gelu;
        for (rows, cols) in SHAPES {
            let (z, bias) = (
                varied(rows, cols, 1),
                varied(1, cols, 2).into_raw_vec_and_offset().0,
            );
            let expected_z = &z + &Array1::from(bias.clone());
            let expected_a = expected_z.mapv(|v| activation.apply(v));
            for threads in [1, 2, 3] {
                let (got_z, got_a) = on_threads(threads, || {
                    let mut z = z.clone();
                    let a = add_bias_and_activate(&mut z, &bias, activation);
                    (z, a)
                });
                assert_eq!(
                    bits(got_z),
                    bits(expected_z.iter().copied()),
                    "{rows}x{cols}"
                );
                assert_eq!(
                    bits(got_a),
                    bits(expected_a.iter().copied()),
                    "{rows}x{cols}"
                );
            }
        }
    }

    #[test]
    fn a_transposed_input_is_activated_as_its_values_read() {
        let z = varied(40, 30, 3);
        let got = activate(&mut z.t().to_owned(), Activation::Tanh);
        assert_eq!(got, z.t().mapv(|v| Activation::Tanh.apply(v)));
    }

    #[test]
    fn the_chain_rule_matches_the_plain_element_by_element_arithmetic_on_any_pool() {
        let activation = Activation::LeakyRelu { slope: 0.1 };
        for (rows, cols) in SHAPES {
            let (g, z) = (varied(rows, cols, 4), varied(rows, cols, 5));
            let expected = bits(g.iter().zip(&z).map(|(g, &z)| g * activation.derivative(z)));
            for threads in [1, 2, 3] {
                let got = on_threads(threads, || {
                    let mut g = g.clone();
                    chain_through_activation(&mut g, &z, activation);
                    g
                });
                assert_eq!(bits(got), expected, "{rows}x{cols} on {threads} threads");
            }
        }
    }

    #[test]
    fn column_sums_have_the_bits_of_ndarrays_sum_over_rows_on_any_pool() {
        for (rows, cols) in SHAPES.into_iter().chain([(0, 4), (4096, 10)]) {
            let m = varied(rows, cols, 6);
            let expected = bits(m.sum_axis(Axis(0)));
            for threads in [1, 2, 3] {
                let got = on_threads(threads, || column_sums(m.view()));
                assert_eq!(bits(got), expected, "{rows}x{cols} on {threads} threads");
            }
            let column_major = m.t().as_standard_layout().into_owned();
            let got = column_sums(column_major.t());
            assert_eq!(bits(got), expected, "{rows}x{cols} read column-major");
        }
    }
}
