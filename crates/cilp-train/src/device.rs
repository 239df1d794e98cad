//! Picking the compute device at run time (`--device cpu|wgpu|cuda`).
//!
//! `cuda` is an opt-in cargo feature that does not build on machines without network access:
//! cubecl-cuda's build script downloads an LLVM bundle. `wgpu` (Vulkan) is the tested GPU path.

use burn::tensor::Device;

use crate::error::{Result, TrainError};

/// Devices this build can use.
pub fn available_devices() -> Vec<&'static str> {
    let mut v = vec!["cpu"];
    if cfg!(feature = "wgpu") {
        v.push("wgpu");
    }
    if cfg!(feature = "cuda") {
        v.push("cuda");
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
        #[cfg(feature = "cuda")]
        "cuda" => Ok(Device::cuda(burn::tensor::DeviceIndex::Default)),
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
