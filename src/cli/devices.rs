//! `downhill devices`.

use crate::cli::output::outln;
use downhill::tools::DeviceReport;

fn mib(bytes: u64) -> String {
    format!("{} MiB", bytes / (1 << 20))
}

pub fn print_devices(devices: &[DeviceReport]) {
    if devices.is_empty() {
        outln!(
            "no GPU adapters found; on Debian/Ubuntu install the software Vulkan driver with \
             `apt-get install mesa-vulkan-drivers`"
        );
        return;
    }
    for d in devices {
        outln!("[{}] {}", d.index, d.name);
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
}
