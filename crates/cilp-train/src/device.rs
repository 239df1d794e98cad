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

/// The adapter `spec` runs on, in words (`"NVIDIA H200 (DiscreteGpu, Vulkan, driver NVIDIA 570.x)"`,
/// `"llvmpipe (LLVM 15.0.6, 256 bits) (Cpu, Vulkan, ...)"`): for `wgpu` the adapter burn's default
/// device picks (the first GPU of the first graphics API that has one, else the first software
/// one), `None` where none is found; the CPU's model name for `cpu`.
pub fn adapter(spec: DeviceSpec) -> Option<String> {
    match spec {
        DeviceSpec::Cpu => std::fs::read_to_string("/proc/cpuinfo")
            .ok()?
            .lines()
            .find(|l| l.starts_with("model name"))
            .and_then(|l| l.split_once(':'))
            .map(|(_, v)| v.trim().to_string()),
        #[cfg(feature = "wgpu")]
        DeviceSpec::Wgpu => {
            let all = wgpu_adapters();
            let pick = all.iter().find(|a| a.device_type != wgpu::DeviceType::Cpu).or(all.first())?;
            Some(format!("{} ({:?}, {:?}, driver {} {})", pick.name, pick.device_type, pick.backend, pick.driver, pick.driver_info))
        }
        #[allow(unreachable_patterns)]
        _ => None,
    }
}

/// Every adapter wgpu finds on this machine through the primary graphics APIs (Vulkan, Metal, DX12).
#[cfg(feature = "wgpu")]
pub fn wgpu_adapters() -> Vec<wgpu::AdapterInfo> {
    let instance = wgpu::Instance::new(wgpu::InstanceDescriptor {
        backends: wgpu::Backends::PRIMARY,
        ..wgpu::InstanceDescriptor::new_without_display_handle()
    });
    futures_lite::future::block_on(instance.enumerate_adapters(wgpu::Backends::PRIMARY)).iter().map(wgpu::Adapter::get_info).collect()
}

/// Builds a model with `seed`'s initial weights on `device`. The weights are always drawn on the
/// CPU (burn's flex random stream, seeded with `seed`) and copied to another device, so a seed
/// starts from the same weights on every device: a run on `wgpu` and one on `cpu` differ only by
/// rounding. On the CPU this is exactly `device.seed(seed); build(device)`.
pub fn init_seeded<M: burn::module::Module>(device: &Device, seed: u64, build: impl FnOnce(&Device) -> Result<M>) -> Result<M> {
    let cpu = if device.is_autodiff() { Device::flex().autodiff() } else { Device::flex() };
    device.seed(seed);
    if *device == cpu {
        return build(device);
    }
    cpu.seed(seed);
    Ok(build(&cpu)?.fork(device))
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
