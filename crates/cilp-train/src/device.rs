//! Picking the compute device at run time (`--device cpu|wgpu|cuda`).
//!
//! `cuda` is an opt-in cargo feature that does not build on machines without network access:
//! cubecl-cuda's build script downloads an LLVM bundle. `wgpu` (Vulkan) is the tested GPU path.

use std::fmt;
use std::str::FromStr;

use burn::tensor::Device;
use serde::{Deserialize, Serialize};

use crate::error::{Result, TrainError};

/// The compute device a run asks for (`--device`, `device` in a config). Parsed once at the
/// edge; whether this build has it is checked by [`device`]. Serialised as `"cpu"`, `"wgpu"` or
/// `"cuda"` (`"flex"` and `"gpu"` are read as `cpu` and `wgpu`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum DeviceSpec {
    /// burn's pure-Rust Flex backend with cilp's kernels.
    #[default]
    #[serde(alias = "flex")]
    Cpu,
    /// burn's wgpu backend (Vulkan on Linux); builds with `--features wgpu`.
    #[serde(alias = "gpu")]
    Wgpu,
    /// burn's CUDA backend; builds with `--features cuda` (not offline).
    Cuda,
}

impl DeviceSpec {
    /// `cpu`, `wgpu` or `cuda`.
    pub fn name(self) -> &'static str {
        match self {
            DeviceSpec::Cpu => "cpu",
            DeviceSpec::Wgpu => "wgpu",
            DeviceSpec::Cuda => "cuda",
        }
    }
}

impl fmt::Display for DeviceSpec {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

impl FromStr for DeviceSpec {
    type Err = String;

    fn from_str(s: &str) -> std::result::Result<Self, Self::Err> {
        match s {
            "cpu" | "flex" => Ok(DeviceSpec::Cpu),
            "wgpu" | "gpu" => Ok(DeviceSpec::Wgpu),
            "cuda" => Ok(DeviceSpec::Cuda),
            other => Err(format!("unknown device {other:?} (expected cpu, wgpu or cuda)")),
        }
    }
}

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

/// The inference device: `cpu` (burn's pure-Rust Flex backend), or `wgpu` / `cuda` when this
/// build has them (an error naming the cargo feature otherwise).
pub fn device(spec: DeviceSpec) -> Result<Device> {
    match spec {
        DeviceSpec::Cpu => Ok(Device::flex()),
        #[cfg(feature = "wgpu")]
        DeviceSpec::Wgpu => Ok(Device::wgpu(burn::tensor::DeviceKind::default())),
        #[cfg(feature = "cuda")]
        DeviceSpec::Cuda => Ok(Device::cuda(burn::tensor::DeviceIndex::Default)),
        #[allow(unreachable_patterns)]
        other => Err(TrainError::Config(format!(
            "device {other} is not in this build; it supports: {} (GPU support needs `--features wgpu`)",
            available_devices().join(", ")
        ))),
    }
}

/// The training device (autodiff enabled).
pub fn train_device(spec: DeviceSpec) -> Result<Device> {
    Ok(device(spec)?.autodiff())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn device_names_parse_serialise_and_missing_backends_are_named() {
        for (text, spec) in [
            ("cpu", DeviceSpec::Cpu),
            ("flex", DeviceSpec::Cpu),
            ("wgpu", DeviceSpec::Wgpu),
            ("gpu", DeviceSpec::Wgpu),
            ("cuda", DeviceSpec::Cuda),
        ] {
            assert_eq!(text.parse::<DeviceSpec>().unwrap(), spec);
            let back: DeviceSpec = serde_json::from_value(serde_json::json!(text)).unwrap();
            assert_eq!(back, spec, "{text}");
        }
        assert_eq!(serde_json::to_value(DeviceSpec::Wgpu).unwrap(), "wgpu");
        assert!("tpu".parse::<DeviceSpec>().unwrap_err().contains("expected cpu, wgpu or cuda"));
        assert!(device(DeviceSpec::Cpu).is_ok());
        if !cfg!(feature = "cuda") {
            let e = device(DeviceSpec::Cuda).unwrap_err().to_string();
            assert!(e.contains("device cuda is not in this build"), "{e}");
        }
    }
}
