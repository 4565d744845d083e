//! The GPU context every benchmark runs on: the default adapter, tiles tuned and cached.

use downhill::gpu::Tuning;
use downhill::{AdapterRequest, GpuContext};

/// The default adapter with tiles tuned and cached as the command line does; `bench` names the
/// benchmark in the panic when there is no adapter.
pub fn tuned_context(bench: &str) -> GpuContext {
    let ctx = GpuContext::new(&AdapterRequest {
        tuning: Tuning::autotune_cached(),
        ..AdapterRequest::default()
    })
    .unwrap_or_else(|e| panic!("the {bench} benchmark needs a GPU adapter: {e}"));
    eprintln!("adapter: {}", ctx.describe());
    ctx
}
