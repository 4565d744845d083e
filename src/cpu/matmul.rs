//! The CPU engine's matrix products, `C = A·B`, through the `gemm` crate.
//!
//! `gemm` picks its kernels at run time for the CPU it finds (AVX-512 where present, with
//! the `x86-v4` feature; AVX2+FMA, NEON or scalar otherwise) and splits the output over the
//! cores. Every output entry is still one dot product summed along `k` by a single core, so
//! the bits do not depend on the number of threads.

use ndarray::{Array2, ArrayView2};

/// `C = A·B` for `A` of shape `[m, k]` and `B` of shape `[k, n]`, in any strides (so transposed
/// views cost no copy); `C` is a new row-major `[m, n]` array.
///
/// # Panics
/// If the inner dimensions differ, which is a bug in the caller rather than a user error.
pub fn product(a: ArrayView2<'_, f32>, b: ArrayView2<'_, f32>) -> Array2<f32> {
    let ((m, k), (k_b, n)) = (a.dim(), b.dim());
    assert_eq!(k, k_b, "inner dimensions of a matrix product");
    if k == 0 {
        // An empty sum is zero; said here rather than left to the library.
        return Array2::zeros((m, n));
    }
    let mut c = Array2::<f32>::uninit((m, n));
    let ([a_rs, a_cs], [b_rs, b_cs]) = (
        [a.strides()[0], a.strides()[1]],
        [b.strides()[0], b.strides()[1]],
    );
    // SAFETY: `a` and `b` are live views of `[m, k]` and `[k, n]` elements at the strides
    // given, `c` is a fresh row-major `[m, n]` array that aliases neither, and with
    // `read_dst = false` and `k > 0` gemm writes every element of `c` without reading it (on
    // every path of gemm 0.19: packed, gemv, gevv, horizontal), so `c` is initialised when it
    // returns.
    unsafe {
        gemm::gemm(
            m,
            n,
            k,
            c.as_mut_ptr().cast::<f32>(),
            1,
            n as isize,
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
