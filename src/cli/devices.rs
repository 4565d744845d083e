//! `downhill devices`.

use crate::cli::output::outln;
use downhill::tools::DeviceReport;

fn mib(bytes: u64) -> String {
    format!("{} MiB", bytes / (1 << 20))
}

/// Prints every adapter and its limits, marking the one `--device auto` uses (or saying that it
/// uses the CPU engine).
pub fn print_devices(devices: &[DeviceReport]) {
    if devices.is_empty() {
        match std::env::var("WGPU_BACKEND") {
            Ok(backends) => outln!(
                "no GPU adapters found on the backends WGPU_BACKEND={backends} names; unset it \
                 to see those on every backend"
            ),
            Err(_) => outln!(
                "no GPU adapters found; on Debian/Ubuntu install the software Vulkan driver \
                 with `apt-get install mesa-vulkan-drivers`"
            ),
        }
        return;
    }
    for d in devices {
        let chosen = match (d.auto, d.gpu) {
            (true, true) => "  (--device auto and gpu use this one)",
            (true, false) => "  (--device auto uses this one)",
            (false, true) => "  (--device gpu uses this one)",
            (false, false) => "",
        };
        outln!("[{}] {}{chosen}", d.index, d.name);
        let rows = [
            ("backend", d.backend.clone()),
            ("type", d.device_type.clone()),
            ("driver", d.driver.clone()),
            ("max buffer", mib(d.max_buffer_size)),
            ("max storage binding", mib(d.max_storage_binding)),
            (
                "max workgroup",
                format!(
                    "{}x{}x{}, {} invocations",
                    d.max_workgroup_size[0],
                    d.max_workgroup_size[1],
                    d.max_workgroup_size[2],
                    d.max_invocations_per_workgroup
                ),
            ),
            (
                "workgroup storage",
                format!("{} KiB", d.max_workgroup_storage / 1024),
            ),
            (
                "timestamp queries",
                if d.timestamps { "yes" } else { "no" }.to_string(),
            ),
        ];
        for (key, value) in rows {
            outln!("    {key:<20} {value}");
        }
    }
    if !devices.iter().any(|d| d.auto) {
        outln!(
            "--device auto uses the CPU engine: none of these is a hardware GPU, and software \
             adapters run slower than it"
        );
    }
}
