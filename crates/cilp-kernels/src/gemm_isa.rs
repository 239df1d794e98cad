//! Which of the gemm crate's micro-kernels computes a product: chosen per CPU and per kind of
//! product, at run time.
//!
//! The gemm crate picks one kernel set per process (AVX-512 wherever the CPU has it, once its
//! `x86-v4` level is compiled in), and lets its products split themselves over the threads. That
//! was not the fastest choice everywhere: on the Intel Xeons this project measured, its AVX-512
//! kernels trained the projector's small (32-row) products 16-22% slower, and on an AMD EPYC
//! Zen 4 (512-bit operations on 256-bit units) training about 15% slower (docs/performance.md).
//! So cilp calls the micro-kernel sets itself, through `gemm_common::gemm::gemm_basic_generic`
//! with gemm-f32's public kernels and its own split over the threads, and picks one set per
//! [`Op`] and [`Pass`] ([`isa_for`]): [`auto_isa`] by default, or what [`set_isa`] (the binary's
//! `CILP_GEMM`) says. The choice depends only on the CPU and the settings, never on timing, so a
//! run stays bit-identical for one build, CPU and setting.

use std::sync::atomic::{AtomicU8, Ordering};

pub use gemm::Parallelism;

/// A set of GEMM micro-kernels.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Isa {
    /// Whatever the gemm crate's own dispatch picks (the only choice off x86-64).
    Gemm,
    /// 256-bit AVX2 + FMA kernels (8 f32 lanes).
    Avx2,
    /// 512-bit AVX-512F kernels (16 f32 lanes).
    Avx512,
    /// cilp's bfloat16 products with f32 sums on AVX512_BF16 ([`crate::bf16`]): about twice the
    /// multiply-adds per instruction, rounding each operand to 8 significant bits. Opt-in only:
    /// [`auto_isa`] never picks it.
    Bf16,
}

impl Isa {
    /// Its name in `CILP_GEMM` and in reports.
    pub fn name(self) -> &'static str {
        match self {
            Isa::Gemm => "gemm",
            Isa::Avx2 => "avx2",
            Isa::Avx512 => "avx512",
            Isa::Bf16 => "bf16",
        }
    }

    /// Parses [`Isa::name`].
    pub fn parse(s: &str) -> Option<Isa> {
        match s {
            "gemm" => Some(Isa::Gemm),
            "avx2" => Some(Isa::Avx2),
            "avx512" => Some(Isa::Avx512),
            "bf16" => Some(Isa::Bf16),
            _ => None,
        }
    }

    /// This set if the CPU runs it, else the best one below it that it runs (`bf16` falls back
    /// to f32 AVX-512, then AVX2).
    pub fn supported(self) -> Isa {
        self.supported_on(Cpu::this())
    }

    /// [`Isa::supported`] on `cpu`.
    pub fn supported_on(self, cpu: Cpu) -> Isa {
        match self {
            Isa::Bf16 if cpu.avx512bf16 && cpu.avx512f && cpu.fma => Isa::Bf16,
            Isa::Bf16 | Isa::Avx512 if cpu.avx512f && cpu.fma => Isa::Avx512,
            Isa::Bf16 | Isa::Avx512 | Isa::Avx2 if cpu.fma => Isa::Avx2,
            _ => Isa::Gemm,
        }
    }
}

/// What kind of layer a product belongs to.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Op {
    /// Convolutions (im2col and Winograd products).
    Conv,
    /// Linear layers.
    Linear,
}

/// Whether a product belongs to training (a forward pass that records gradients, or a
/// backward pass) or to inference.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Pass {
    Train,
    Infer,
}

/// Every (op, pass), in the order of [`set_isa`]'s table.
pub const SLOTS: [(Op, Pass); 4] = [(Op::Conv, Pass::Train), (Op::Conv, Pass::Infer), (Op::Linear, Pass::Train), (Op::Linear, Pass::Infer)];

fn slot(op: Op, pass: Pass) -> usize {
    SLOTS.iter().position(|&s| s == (op, pass)).expect("every (op, pass) has a slot")
}

/// What the choice depends on.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Cpu {
    pub fma: bool,
    pub avx512f: bool,
    /// AVX512_BF16 (only [`Isa::Bf16`] uses it, when asked for).
    pub avx512bf16: bool,
}

impl Cpu {
    /// This machine's CPU.
    pub fn this() -> Cpu {
        #[cfg(target_arch = "x86_64")]
        {
            Cpu {
                fma: is_x86_feature_detected!("fma") && is_x86_feature_detected!("avx2"),
                avx512f: is_x86_feature_detected!("avx512f"),
                avx512bf16: is_x86_feature_detected!("avx512bf16"),
            }
        }
        #[cfg(not(target_arch = "x86_64"))]
        {
            Cpu { fma: false, avx512f: false, avx512bf16: false }
        }
    }
}

/// The default choice for `cpu`, from this project's measurements (docs/performance.md): the
/// widest set the CPU runs, AVX-512, then AVX2 + FMA, then the gemm crate's own dispatch. With
/// cilp's split over the threads, AVX-512 trained faster than AVX2 on the Intel Xeons (the
/// fusion models 2-12%, the projector 16-25%, session 19) and on an AMD EPYC Zen 4 (8 models,
/// 2 threads batch 32: 13 of 15 pairs, geometric mean 1.07x; 1 thread batch 16: 3 of 3, 1.12x;
/// session 26); until then Zen 4 trained on AVX2, from a measurement made with the gemm
/// crate's own split. Never [`Isa::Bf16`]: it rounds differently, so a user asks for it.
pub fn auto_isa(_op: Op, _pass: Pass, cpu: Cpu) -> Isa {
    if cpu.avx512f && cpu.fma {
        Isa::Avx512
    } else if cpu.fma {
        Isa::Avx2
    } else {
        Isa::Gemm
    }
}

/// Per slot: 0 while not chosen yet, else [`encode`]d.
static CHOICE: [AtomicU8; 4] = [AtomicU8::new(0), AtomicU8::new(0), AtomicU8::new(0), AtomicU8::new(0)];

fn encode(isa: Isa) -> u8 {
    match isa {
        Isa::Gemm => 1,
        Isa::Avx2 => 2,
        Isa::Avx512 => 3,
        Isa::Bf16 => 4,
    }
}

fn decode(v: u8) -> Option<Isa> {
    match v {
        1 => Some(Isa::Gemm),
        2 => Some(Isa::Avx2),
        3 => Some(Isa::Avx512),
        4 => Some(Isa::Bf16),
        _ => None,
    }
}

/// The micro-kernels that compute `op`'s products in `pass` (what [`set_isa`] chose, or
/// [`auto_isa`] for this CPU; always one the CPU runs).
pub fn isa_for(op: Op, pass: Pass) -> Isa {
    let s = &CHOICE[slot(op, pass)];
    if let Some(isa) = decode(s.load(Ordering::Relaxed)) {
        return isa;
    }
    let isa = auto_isa(op, pass, Cpu::this());
    s.store(encode(isa), Ordering::Relaxed);
    isa
}

/// Makes `op`'s products in `pass` use `isa` (or the best set below it that the CPU runs); `None`
/// returns to [`auto_isa`]. Set it before the first model runs: a run is bit-identical only for
/// one choice.
pub fn set_isa(op: Op, pass: Pass, isa: Option<Isa>) {
    let v = isa.map(|i| encode(i.supported())).unwrap_or(0);
    CHOICE[slot(op, pass)].store(v, Ordering::Relaxed);
}

/// The choice for every (op, pass), e.g. `conv-train avx512, conv-infer avx512, linear-train
/// avx2, linear-infer avx512` (for the bench's header).
pub fn describe() -> String {
    SLOTS.iter().map(|&(op, pass)| format!("{} {}", slot_name(op, pass), isa_for(op, pass).name())).collect::<Vec<_>>().join(", ")
}

/// Every slot's name, for messages: `conv-train, conv-infer, linear-train, linear-infer`.
fn slot_names() -> String {
    SLOTS.iter().map(|&(op, pass)| slot_name(op, pass)).collect::<Vec<_>>().join(", ")
}

/// `conv-train`, `conv-infer`, `linear-train`, `linear-infer`.
pub fn slot_name(op: Op, pass: Pass) -> &'static str {
    match (op, pass) {
        (Op::Conv, Pass::Train) => "conv-train",
        (Op::Conv, Pass::Infer) => "conv-infer",
        (Op::Linear, Pass::Train) => "linear-train",
        (Op::Linear, Pass::Infer) => "linear-infer",
    }
}

/// A slot whose requested kernel set this CPU does not run, and the set it runs instead (the
/// best one below it: `bf16` falls back to f32 AVX-512, then AVX2; see [`Isa::supported_on`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Fallback {
    /// The slot's name ([`slot_name`]).
    pub slot: &'static str,
    pub requested: Isa,
    pub used: Isa,
}

/// Parses a `CILP_GEMM` setting into one choice per slot (in [`SLOTS`] order; `None`:
/// automatic). Returns why a setting is not understood.
fn parse_setting(setting: &str) -> Result<[Option<Isa>; 4], String> {
    let setting = setting.trim();
    let mut table: [Option<Isa>; 4] = [None; 4];
    if setting.is_empty() || setting == "auto" {
        // every slot automatic
    } else if let Some(isa) = Isa::parse(setting) {
        table = [Some(isa); 4];
    } else {
        for part in setting.split(',') {
            let (name, value) = part.split_once('=').ok_or_else(|| format!("`{part}`: expected SLOT=SET (slots: {})", slot_names()))?;
            let i = SLOTS
                .iter()
                .position(|&(op, pass)| slot_name(op, pass) == name.trim())
                .ok_or_else(|| format!("`{name}`: not a slot ({})", slot_names()))?;
            let v = value.trim();
            table[i] = if v == "auto" {
                None
            } else {
                Some(Isa::parse(v).ok_or_else(|| format!("`{v}`: not a kernel set (auto, avx2, avx512, gemm, bf16)"))?)
            };
        }
    }
    Ok(table)
}

/// The slots of a parsed setting that `cpu` cannot run as asked.
fn fallbacks_on(table: &[Option<Isa>; 4], cpu: Cpu) -> Vec<Fallback> {
    SLOTS
        .iter()
        .zip(table)
        .filter_map(|(&(op, pass), isa)| {
            let requested = (*isa)?;
            let used = requested.supported_on(cpu);
            (used != requested).then_some(Fallback { slot: slot_name(op, pass), requested, used })
        })
        .collect()
}

/// Applies a `CILP_GEMM` setting: `auto`, one set for everything (`avx2`, `avx512`,
/// `gemm`, `bf16`), or comma-separated `SLOT=SET` pairs (`conv-train=avx512,linear-train=avx2`;
/// slots not named stay automatic). Returns the slots this CPU runs on another set than asked
/// (for a warning: [`set_isa`] takes the best set below), or why a setting is not understood
/// (nothing is applied then).
pub fn apply_setting(setting: &str) -> Result<Vec<Fallback>, String> {
    let table = parse_setting(setting)?;
    for (&(op, pass), isa) in SLOTS.iter().zip(table) {
        set_isa(op, pass, isa);
    }
    Ok(fallbacks_on(&table, Cpu::this()))
}

/// `gemm::gemm` for f32 (the same arguments: `dst[m, n] = alpha·dst + beta·lhs[m, k]·rhs[k, n]`,
/// `alpha` ignored unless `read_dst`) with the micro-kernels `isa`.
///
/// # Safety
///
/// As `gemm::gemm`: every element the strides address for `(r, c) < (m, n)` of `dst`,
/// `(m, k)` of `lhs` and `(k, n)` of `rhs` lies in live memory, `dst`'s exclusively; and `isa`
/// is one the CPU runs ([`isa_for`] and [`Isa::supported`] only return such).
#[allow(clippy::too_many_arguments)]
pub unsafe fn sgemm(
    isa: Isa,
    m: usize,
    n: usize,
    k: usize,
    dst: *mut f32,
    dst_cs: isize,
    dst_rs: isize,
    read_dst: bool,
    lhs: *const f32,
    lhs_cs: isize,
    lhs_rs: isize,
    rhs: *const f32,
    rhs_cs: isize,
    rhs_rs: isize,
    alpha: f32,
    beta: f32,
    par: Parallelism,
) {
    #[cfg(target_arch = "x86_64")]
    if isa == Isa::Bf16 {
        // SAFETY: the caller's contract (the same as `sgemm_bf16`'s, which checks the CPU).
        unsafe {
            crate::bf16::sgemm_bf16(m, n, k, dst, dst_cs, dst_rs, read_dst, lhs, lhs_cs, lhs_rs, rhs, rhs_cs, rhs_rs, alpha, beta, par)
        };
        return;
    }
    #[cfg(target_arch = "x86_64")]
    if isa != Isa::Gemm {
        // What `gemm::gemm` does before its kernels: the micro-kernels prefer a column-major
        // destination, so a row-major one is computed as dstᵀ = rhsᵀ·lhsᵀ (cilp's products are
        // row-major: without this they ran 25-35% slower). cilp passes no negative strides.
        debug_assert!(dst_cs >= 0 && dst_rs >= 0 && lhs_cs >= 0 && lhs_rs >= 0 && rhs_cs >= 0 && rhs_rs >= 0);
        let (m, n, dst_cs, dst_rs, lhs, lhs_cs, lhs_rs, rhs, rhs_cs, rhs_rs) = if dst_cs.abs() < dst_rs.abs() {
            (n, m, dst_rs, dst_cs, rhs, rhs_rs, rhs_cs, lhs, lhs_rs, lhs_cs)
        } else {
            (m, n, dst_cs, dst_rs, lhs, lhs_cs, lhs_rs, rhs, rhs_cs, rhs_rs)
        };
        // One kernel set: gemm-f32's micro-kernels `$uk` with `$lanes` f32 lanes, on the SIMD
        // level `$simd` (checked present by `try_new`): the call gemm-f32 makes for that set.
        macro_rules! with_kernels {
            ($simd:ty, $lanes:literal, $uk:path, $what:literal) => {{
                use $uk as uk;
                let simd = <$simd>::try_new().expect(concat!("sgemm: ", $what, " chosen on a CPU without it"));
                // SAFETY: the caller's contract (valid pointers) and a CPU with these kernels' SIMD
                // level (checked above).
                unsafe {
                    gemm_common::gemm::gemm_basic_generic::<
                        _,
                        f32,
                        $lanes,
                        { uk::MR_DIV_N * $lanes },
                        { uk::NR },
                        { uk::MR_DIV_N },
                        { uk::H_M },
                        { uk::H_N },
                    >(
                        simd,
                        m,
                        n,
                        k,
                        dst,
                        dst_cs,
                        dst_rs,
                        read_dst,
                        lhs,
                        lhs_cs,
                        lhs_rs,
                        rhs,
                        rhs_cs,
                        rhs_rs,
                        alpha,
                        beta,
                        false,
                        false,
                        false,
                        |a, b, c| a * b + c,
                        &uk::UKR,
                        &uk::H_UKR,
                        false,
                        par,
                    )
                };
                return;
            }};
        }
        match isa {
            Isa::Avx512 => with_kernels!(gemm_common::simd::V4, 16, gemm_f32::microkernel::avx512f::f32, "AVX-512F"),
            Isa::Avx2 => with_kernels!(gemm_common::simd::V3, 8, gemm_f32::microkernel::fma::f32, "AVX2 + FMA"),
            Isa::Gemm | Isa::Bf16 => {}
        }
    }
    let _ = isa;
    // SAFETY: the caller's contract.
    unsafe {
        gemm::gemm(m, n, k, dst, dst_cs, dst_rs, read_dst, lhs, lhs_cs, lhs_rs, rhs, rhs_cs, rhs_rs, alpha, beta, false, false, false, par)
    };
}

/// `lhs[m, k] · rhs[k, n]`, all row-major, with the micro-kernels `isa` (or the best set below it
/// that the CPU runs), on the calling thread: for tests and measurements.
pub fn matmul(isa: Isa, m: usize, n: usize, k: usize, lhs: &[f32], rhs: &[f32]) -> Vec<f32> {
    matmul_with(isa, m, n, k, lhs, rhs, Parallelism::None)
}

/// [`matmul`] with the given parallelism.
pub fn matmul_with(isa: Isa, m: usize, n: usize, k: usize, lhs: &[f32], rhs: &[f32], par: Parallelism) -> Vec<f32> {
    assert_eq!(lhs.len(), m * k, "matmul: lhs is not [m, k]");
    assert_eq!(rhs.len(), k * n, "matmul: rhs is not [k, n]");
    let mut dst = vec![0.0f32; m * n];
    if m * n > 0 {
        // SAFETY: row-major buffers of exactly [m, k], [k, n] and [m, n] (asserted above), the
        // destination exclusively borrowed; `supported` returns a set this CPU runs.
        unsafe {
            sgemm(
                isa.supported(),
                m,
                n,
                k,
                dst.as_mut_ptr(),
                1,
                n as isize,
                false,
                lhs.as_ptr(),
                1,
                k as isize,
                rhs.as_ptr(),
                1,
                n as isize,
                0.0,
                1.0,
                par,
            )
        };
    }
    dst
}

#[cfg(test)]
mod tests {
    use super::*;

    fn cpu(fma: bool, avx512f: bool) -> Cpu {
        Cpu { fma, avx512f, avx512bf16: false }
    }

    #[test]
    fn auto_choice_is_the_widest_set_the_cpu_runs() {
        for (op, pass) in SLOTS {
            assert_eq!(auto_isa(op, pass, cpu(true, true)), Isa::Avx512, "{}", slot_name(op, pass));
            assert_eq!(auto_isa(op, pass, cpu(true, false)), Isa::Avx2, "{}", slot_name(op, pass));
            assert_eq!(auto_isa(op, pass, cpu(false, false)), Isa::Gemm, "{}", slot_name(op, pass));
            // AVX-512F without FMA + AVX2 does not exist; the choice never names a set the CPU lacks
            assert_eq!(auto_isa(op, pass, cpu(false, true)), Isa::Gemm, "{}", slot_name(op, pass));
            // bf16 is never automatic, even where the CPU has it
            assert_eq!(auto_isa(op, pass, Cpu { fma: true, avx512f: true, avx512bf16: true }), Isa::Avx512, "{}", slot_name(op, pass));
        }
    }

    #[test]
    fn bf16_falls_back_to_f32_where_the_cpu_lacks_it() {
        let all = Cpu { fma: true, avx512f: true, avx512bf16: true };
        assert_eq!(Isa::Bf16.supported_on(all), Isa::Bf16);
        assert_eq!(Isa::Bf16.supported_on(cpu(true, true)), Isa::Avx512);
        assert_eq!(Isa::Bf16.supported_on(cpu(true, false)), Isa::Avx2);
        assert_eq!(Isa::Bf16.supported_on(cpu(false, false)), Isa::Gemm);
        assert_eq!(Isa::parse("bf16"), Some(Isa::Bf16));
        assert_eq!(Isa::Bf16.name(), "bf16");
    }

    #[test]
    fn a_setting_names_the_slots_the_cpu_runs_on_another_set() {
        let table = parse_setting("conv-train=avx512,linear-infer=bf16").unwrap();
        assert_eq!(table, [Some(Isa::Avx512), None, None, Some(Isa::Bf16)]);
        // An AVX-512 CPU without AVX512_BF16: only the bf16 slot falls back.
        assert_eq!(fallbacks_on(&table, cpu(true, true)), vec![Fallback { slot: "linear-infer", requested: Isa::Bf16, used: Isa::Avx512 }]);
        // An AVX2-only CPU: both named slots, each to AVX2; automatic slots are never listed.
        let fb = fallbacks_on(&table, cpu(true, false));
        assert_eq!(
            fb.iter().map(|f| (f.slot, f.requested, f.used)).collect::<Vec<_>>(),
            vec![("conv-train", Isa::Avx512, Isa::Avx2), ("linear-infer", Isa::Bf16, Isa::Avx2)]
        );
        // A CPU with everything runs every setting as asked.
        assert!(fallbacks_on(&parse_setting("bf16").unwrap(), Cpu { fma: true, avx512f: true, avx512bf16: true }).is_empty());
        assert_eq!(fallbacks_on(&parse_setting("avx2").unwrap(), cpu(false, false)).len(), 4);
        assert!(fallbacks_on(&parse_setting("auto").unwrap(), cpu(false, false)).is_empty());
    }

    #[test]
    fn settings_parse_or_say_why_not() {
        assert!(apply_setting("conv-train=avx9").unwrap_err().contains("avx9"));
        assert!(apply_setting("conv=avx2").unwrap_err().contains("not a slot"));
        assert!(apply_setting("avx2,avx512").unwrap_err().contains("SLOT=SET"));
        assert_eq!(Isa::parse("avx512"), Some(Isa::Avx512));
        assert_eq!(Isa::parse(Isa::Avx2.name()), Some(Isa::Avx2));
    }

    #[test]
    fn every_kernel_set_computes_the_product() {
        // Shapes around the micro-kernels' tile sizes (16 / 64 rows, 6 columns) and odd ones.
        for &(m, n, k) in &[(1, 1, 1), (7, 5, 3), (16, 6, 9), (33, 70, 17), (64, 12, 200), (100, 3, 31)] {
            let lhs: Vec<f32> = (0..m * k).map(|i| ((i * 37 % 101) as f32 - 50.0) / 25.0).collect();
            let rhs: Vec<f32> = (0..k * n).map(|i| ((i * 53 % 97) as f32 - 48.0) / 24.0).collect();
            let exact: Vec<f64> = (0..m * n)
                .map(|i| {
                    let (r, c) = (i / n, i % n);
                    (0..k).map(|j| lhs[r * k + j] as f64 * rhs[j * n + c] as f64).sum()
                })
                .collect();
            let scale = exact.iter().fold(1.0f64, |a, v| a.max(v.abs()));
            for isa in [Isa::Gemm, Isa::Avx2, Isa::Avx512] {
                let got = matmul(isa, m, n, k, &lhs, &rhs);
                let worst = got.iter().zip(&exact).map(|(g, e)| (*g as f64 - e).abs()).fold(0.0, f64::max);
                assert!(worst <= 1e-5 * scale, "{isa:?} ({:?} on this CPU) {m}x{n}x{k}: off by {worst}", isa.supported());
            }
        }
    }

    #[test]
    fn every_kernel_set_gives_the_same_bits_at_any_thread_count() {
        let (m, n, k) = (96, 200, 75);
        let lhs: Vec<f32> = (0..m * k).map(|i| (i % 13) as f32 * 0.37 - 2.0).collect();
        let rhs: Vec<f32> = (0..k * n).map(|i| (i % 7) as f32 * 0.51 - 1.5).collect();
        for isa in [Isa::Gemm, Isa::Avx2, Isa::Avx512] {
            let one = matmul(isa, m, n, k, &lhs, &rhs);
            for threads in [2, 3] {
                let pool = rayon::ThreadPoolBuilder::new().num_threads(threads).build().unwrap();
                let many = pool.install(|| matmul_with(isa, m, n, k, &lhs, &rhs, Parallelism::Rayon(threads)));
                assert!(one == many, "{isa:?} at {threads} threads differs from one thread");
            }
        }
    }
}
