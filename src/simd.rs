//! Element-wise loops compiled for the widest vector instructions the CPU has, chosen when the
//! process first runs one.

use multiversion::multiversion;

/// Runs `body` compiled for the widest SIMD instruction set this CPU supports (AVX-512, else
/// AVX2, else SSE4.2 on x86-64; NEON on AArch64; the portable baseline elsewhere), detected at
/// run time: a closure of loops over slices is inlined into each version and vectorised at that
/// width, where the portable build would use 128-bit SSE2.
///
/// The results do not depend on the width: each lane performs the IEEE-754 operations of the
/// scalar code, in the same order (Rust never fuses a multiply and an add on its own, whatever
/// the target features), so every engine's bits stay what they were.
#[multiversion(targets = "simd")]
pub fn wide<R, F: FnOnce() -> R>(body: F) -> R {
    body()
}
