//! Sizes as people read them. A leaf, so that error messages anywhere can use it.

/// `12.3 MiB`: `bytes / 2^20`, to one decimal.
pub fn mib(bytes: u64) -> String {
    format!("{:.1} MiB", bytes as f64 / (1u64 << 20) as f64)
}
