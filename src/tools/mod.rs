//! Library functions behind the command-line tools; they return plain structs and leave
//! formatting to the caller.

mod devices;

pub use devices::{DeviceReport, list_devices};
