//! Library functions behind the command-line tools; they return plain structs and leave
//! formatting to the caller.

mod check;
mod devices;

pub use check::{CheckReport, CheckStep, Difference, check};
pub use devices::{DeviceReport, list_devices};
