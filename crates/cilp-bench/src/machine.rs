//! The machine the benchmark runs on, and its theoretical f32 peak.

use serde::{Deserialize, Serialize};

/// CPU description and theoretical single-precision peak.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Machine {
    /// `model name` from /proc/cpuinfo.
    pub cpu: String,
    /// Logical CPUs this process may use.
    pub cores: usize,
    /// Clock in GHz (`cpu MHz` of /proc/cpuinfo, else the `@ x.xxGHz` of the model name).
    pub ghz: f64,
    /// f32 lanes per SIMD register (16 with AVX-512, 8 with AVX2, 4 otherwise).
    pub simd_f32_lanes: usize,
    /// Theoretical peak in GFLOP/s: `cores * 2 FMA units * lanes * 2 FLOP/FMA * GHz`.
    /// Theoretical: turbo, AVX-512 down-clocking and a shared core's other load are ignored.
    pub peak_gflops: f64,
}

impl Machine {
    /// Read /proc/cpuinfo (falls back to 1 GHz / 4 lanes where it cannot be read).
    pub fn detect() -> Machine {
        let info = std::fs::read_to_string("/proc/cpuinfo").unwrap_or_default();
        let cores = std::thread::available_parallelism().map_or(1, |n| n.get());
        Self::from_cpuinfo(&info, cores)
    }

    /// Parse a /proc/cpuinfo text.
    pub fn from_cpuinfo(info: &str, cores: usize) -> Machine {
        let field = |name: &str| {
            info.lines()
                .find(|l| l.split(':').next().is_some_and(|k| k.trim() == name))
                .and_then(|l| l.split_once(':'))
                .map(|(_, v)| v.trim().to_string())
        };
        let cpu = field("model name").unwrap_or_else(|| "unknown".into());
        let from_name = cpu.split('@').nth(1).and_then(|s| s.trim().trim_end_matches("GHz").trim().parse::<f64>().ok());
        let mhz = field("cpu MHz").and_then(|s| s.parse::<f64>().ok());
        let ghz = mhz.map(|m| m / 1000.0).or(from_name).unwrap_or(1.0);
        let flags = field("flags").unwrap_or_default();
        let has = |f: &str| flags.split_whitespace().any(|x| x == f);
        let simd_f32_lanes = if has("avx512f") {
            16
        } else if has("avx2") {
            8
        } else {
            4
        };
        let peak_gflops = cores as f64 * 2.0 * simd_f32_lanes as f64 * 2.0 * ghz;
        Machine { cpu, cores, ghz, simd_f32_lanes, peak_gflops }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn peak_from_cpuinfo() {
        let info = "model name\t: Intel(R) Xeon(R) CPU @ 2.20GHz\ncpu MHz\t\t: 2200.000\nflags\t\t: fpu avx2 avx512f\n";
        let m = Machine::from_cpuinfo(info, 2);
        assert_eq!(m.simd_f32_lanes, 16);
        // 2 cores * 2 FMA * 16 lanes * 2 * 2.2 GHz
        assert!((m.peak_gflops - 281.6).abs() < 1e-9);
    }
}
