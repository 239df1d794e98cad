//! Picking the compute device at run time (`--device cpu|wgpu`).

use burn::tensor::Device;

use crate::error::{Result, TrainError};

/// Devices this build can use.
pub fn available_devices() -> Vec<&'static str> {
    let mut v = vec!["cpu"];
    if cfg!(feature = "wgpu") {
        v.push("wgpu");
    }
    v
}

/// The inference device for a name: `cpu` (burn's pure-Rust Flex backend) or `wgpu` (when built
/// with the `wgpu` feature).
pub fn device(name: &str) -> Result<Device> {
    match name {
        "cpu" | "flex" => Ok(Device::flex()),
        #[cfg(feature = "wgpu")]
        "wgpu" | "gpu" => Ok(Device::wgpu(burn::tensor::DeviceKind::default())),
        other => Err(TrainError::Config(format!(
            "unknown device {other:?}; this build supports: {} (GPU support needs `--features wgpu`)",
            available_devices().join(", ")
        ))),
    }
}

/// The training device (autodiff enabled) for a name.
pub fn train_device(name: &str) -> Result<Device> {
    Ok(device(name)?.autodiff())
}
