//! Element-wise loops compiled for the widest vector instructions the CPU has, chosen at run
//! time.

/// Compiles the functions it wraps once for each of AVX2 and SSE4.2 (x86-64) besides the
/// portable build (which on AArch64 already has NEON), and has each call run the widest version this CPU supports
/// (detected once): a function's loops over slices are vectorised at that width, where the
/// portable x86-64 build uses 128-bit SSE2. (AVX-512 was measured no faster: these loops are
/// bound by memory, not by the width of the arithmetic.)
///
/// The results do not depend on the version that runs: each lane performs the IEEE-754
/// operations of the scalar code, in the same order (Rust never fuses a multiply and an add on
/// its own, whatever the target features), so every engine's bits stay what they were.
macro_rules! widest {
    ($($function:item)*) => {
        $(
            #[multiversion::multiversion(targets(
                "x86_64+avx2+fma",
                "x86_64+sse4.2",
            ))]
            $function
        )*
    };
}
pub(crate) use widest;
