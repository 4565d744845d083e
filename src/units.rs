//! Byte counts as people read them.

/// `512.0 MiB` below a GiB, `1754.6 GiB` above.
pub fn size(bytes: u64) -> String {
    const GIB: f64 = (1u64 << 30) as f64;
    if bytes as f64 >= GIB {
        format!("{:.1} GiB", bytes as f64 / GIB)
    } else {
        crate::gpu::mib(bytes)
    }
}
