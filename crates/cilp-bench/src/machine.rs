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
    /// f32 lanes an FMA unit completes per cycle: the register's, except on CPUs that run a
    /// 512-bit operation as two 256-bit halves (AMD Zen 4, `cpu family` 25 with AVX-512: 8).
    /// 0 in reports written before this field (read as `simd_f32_lanes`).
    #[serde(default)]
    pub fma_f32_lanes: usize,
    /// Theoretical peak in GFLOP/s: `cores * 2 FMA units * fma_f32_lanes * 2 FLOP/FMA * GHz`.
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
        // Zen 4 (family 0x19 with AVX-512) splits 512-bit operations over 256-bit units; Zen 3
        // (same family) has no AVX-512, and Zen 5 (family 0x1a) has full-width units.
        let double_pumped =
            field("vendor_id").as_deref() == Some("AuthenticAMD") && field("cpu family").as_deref() == Some("25") && simd_f32_lanes == 16;
        let fma_f32_lanes = if double_pumped { 8 } else { simd_f32_lanes };
        let peak_gflops = cores as f64 * 2.0 * fma_f32_lanes as f64 * 2.0 * ghz;
        Machine { cpu, cores, ghz, simd_f32_lanes, fma_f32_lanes, peak_gflops }
    }

    /// The theoretical peak of `threads` compute threads: [`Machine::peak_gflops`] scaled to
    /// `threads` of the [`Machine::cores`] logical CPUs (a run on one thread of two can reach
    /// half the machine's peak, not all of it).
    pub fn peak_for_threads(&self, threads: usize) -> f64 {
        let cores = self.cores.max(1);
        self.peak_gflops * threads.clamp(1, cores) as f64 / cores as f64
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
        assert_eq!(m.fma_f32_lanes, 16);
        // AMD Zen 4 (the EPYC of the issue): AVX-512 registers, 256-bit FMA units.
        let zen4 = "vendor_id\t: AuthenticAMD\ncpu family\t: 25\nmodel name\t: AMD EPYC 9R14\ncpu MHz\t\t: 2600.000\nflags\t\t: fpu avx2 avx512f\n";
        let m = Machine::from_cpuinfo(zen4, 2);
        assert_eq!((m.simd_f32_lanes, m.fma_f32_lanes), (16, 8));
        assert!((m.peak_gflops - 166.4).abs() < 1e-9, "{}", m.peak_gflops);
        // Zen 3 (same family, AVX2 only) and Zen 5 (family 26, full-width AVX-512) keep their width.
        let m = Machine::from_cpuinfo(&zen4.replace(" avx512f", ""), 2);
        assert_eq!((m.simd_f32_lanes, m.fma_f32_lanes), (8, 8));
        let m = Machine::from_cpuinfo(&zen4.replace(": 25", ": 26"), 2);
        assert_eq!((m.simd_f32_lanes, m.fma_f32_lanes), (16, 16));
    }

    #[test]
    fn the_peak_counts_the_threads_used() {
        let info = "model name\t: Intel(R) Xeon(R) CPU @ 2.20GHz\ncpu MHz\t\t: 2200.000\nflags\t\t: fpu avx2 avx512f\n";
        let m = Machine::from_cpuinfo(info, 4);
        // 1 core * 2 FMA * 16 lanes * 2 * 2.2 GHz per thread
        assert!((m.peak_for_threads(1) - 140.8).abs() < 1e-9, "{}", m.peak_for_threads(1));
        assert!((m.peak_for_threads(2) - 281.6).abs() < 1e-9);
        // more threads than logical CPUs (or a zero) cannot go past the machine / below one CPU
        assert_eq!(m.peak_for_threads(4), m.peak_gflops);
        assert_eq!(m.peak_for_threads(8), m.peak_gflops);
        assert_eq!(m.peak_for_threads(0), m.peak_for_threads(1));
    }
}
