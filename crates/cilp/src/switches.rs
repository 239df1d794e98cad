//! Every `CILP_*` environment switch of cilp, read in this one place when the program starts and
//! handed to the libraries as options (the libraries read no environment variables).
//!
//! | variable | effect |
//! |---|---|
//! | `CILP_SYSTEM_MALLOC=1` | keep glibc's allocator defaults ([`crate::alloc`]) |
//! | `CILP_BURN_CONV=1` | burn's own convolution instead of cilp-kernels' (for comparisons) |
//! | `CILP_BURN_LINEAR=1` | burn's own linear layer instead of cilp-kernels' (same results on the same GEMM kernels, e.g. with `CILP_GEMM=gemm`; for comparisons) |
//! | `CILP_REFERENCE_FORWARD=1` | training forward passes in Winograd F(2x2) where F(4x4) applies (the rounding before session 28; what `cilp device-check` compares with; `cilp_kernels::winograd::set_reference_forward`) |
//! | `CILP_CONV_DIRECT=1` | cilp-kernels' direct (im2col) convolution everywhere, no Winograd (for comparisons) |
//! | `CILP_KEEP_DENORMALS=1` | do not flush subnormal floats to zero (for comparisons; see `cilp_kernels::flush_denormals`) |
//! | `CILP_BURN_ADAM=1` | burn's Adam instead of the fused one (for comparisons) |
//! | `CILP_GEMM=SETTING` | the GEMM micro-kernels: `auto` (default, per CPU), `avx2`, `avx512`, `gemm`, `bf16` (opt-in bfloat16 products on AVX512_BF16 CPUs, `cilp_kernels::bf16`; e.g. `linear-infer=bf16`), or `SLOT=SET,...` with slots `conv-train`, `conv-infer`, `linear-train`, `linear-infer` (`cilp_kernels::gemm_isa`) |
//! | `CILP_CHECKPOINT_EVERY=SECONDS` | the least time between two checkpoint commits of a run (default 60; `0`: every epoch; the last epoch always commits; `cilp_train::fit::FitSettings::commit_every`) |
//! | `CILP_TEST_ABORT_AT=E:S` | test hook: abort (like SIGKILL) at step S of epoch E |
//! | `CILP_TEST_NAN_AT=E:S` | test hook: that step's loss becomes NaN |

use std::sync::OnceLock;

use cilp_train::fit::TestHooks;

/// The switches, as read from the environment.
#[derive(Debug, Clone, Copy)]
pub struct Switches {
    pub system_malloc: bool,
    pub burn_conv: bool,
    pub burn_linear: bool,
    pub conv_direct: bool,
    pub reference_forward: bool,
    pub keep_denormals: bool,
    pub burn_adam: bool,
    /// `CILP_GEMM`, when set.
    pub gemm: Option<&'static str>,
    pub hooks: TestHooks,
    /// `CILP_CHECKPOINT_EVERY`, when set.
    pub checkpoint_every: Option<&'static str>,
}

static SWITCHES: OnceLock<Switches> = OnceLock::new();

/// True when `var` is set to anything but empty or `0`.
fn on(var: &str) -> bool {
    std::env::var_os(var).is_some_and(|v| !v.is_empty() && v != "0")
}

/// A number of seconds (`0`, `60`, `2.5`): finite and not negative.
fn parse_seconds(v: &str) -> Result<std::time::Duration, String> {
    match v.trim().parse::<f64>() {
        Ok(x) if (0.0..=1e9).contains(&x) => Ok(std::time::Duration::from_secs_f64(x)),
        _ => Err("expected a number of seconds (0 or more, e.g. 60; 0 commits every epoch)".into()),
    }
}

/// `EPOCH:STEP` in `var`; `None` when unset or malformed.
fn at(var: &str) -> Option<(usize, usize)> {
    let v = std::env::var(var).ok()?;
    let (e, s) = v.split_once(':')?;
    Some((e.parse().ok()?, s.parse().ok()?))
}

impl Switches {
    fn from_env() -> Switches {
        Switches {
            system_malloc: on("CILP_SYSTEM_MALLOC"),
            burn_conv: on("CILP_BURN_CONV"),
            burn_linear: on("CILP_BURN_LINEAR"),
            conv_direct: on("CILP_CONV_DIRECT"),
            reference_forward: on("CILP_REFERENCE_FORWARD"),
            keep_denormals: on("CILP_KEEP_DENORMALS"),
            burn_adam: on("CILP_BURN_ADAM"),
            // Read once per process; leaked so that the switches stay `Copy`.
            gemm: std::env::var("CILP_GEMM").ok().map(|v| &*Box::leak(v.into_boxed_str())),
            hooks: TestHooks { abort_at: at("CILP_TEST_ABORT_AT"), nan_at: at("CILP_TEST_NAN_AT") },
            checkpoint_every: std::env::var("CILP_CHECKPOINT_EVERY").ok().map(|v| &*Box::leak(v.into_boxed_str())),
        }
    }
}

/// Reads the switches (once) and applies the process-wide ones: the allocator and the kernels.
pub fn init() -> Switches {
    let s = *SWITCHES.get_or_init(Switches::from_env);
    crate::alloc::tune_allocator(!s.system_malloc);
    cilp_kernels::set_fast_conv(!s.burn_conv);
    cilp_kernels::set_fast_linear(!s.burn_linear);
    cilp_kernels::winograd::set_winograd(!s.conv_direct);
    cilp_kernels::winograd::set_reference_forward(s.reference_forward);
    cilp_kernels::set_flush_denormals(!s.keep_denormals);
    cilp_kernels::adam::set_fused_adam(!s.burn_adam);
    if let Some(setting) = s.gemm {
        match cilp_kernels::gemm_isa::apply_setting(setting) {
            Ok(fallbacks) => {
                for line in fallback_warnings(setting, &fallbacks) {
                    eprintln!("{line}");
                }
            }
            Err(why) => {
                eprintln!("error: CILP_GEMM={setting}: {why}");
                std::process::exit(2);
            }
        }
    }
    if let Some(setting) = s.checkpoint_every {
        match parse_seconds(setting) {
            Ok(every) => cilp_train::fit::set_commit_every(every),
            Err(why) => {
                eprintln!("error: CILP_CHECKPOINT_EVERY={setting}: {why}");
                std::process::exit(2);
            }
        }
    }
    s
}

/// One warning per kernel set this CPU does not run, naming the slots that run another set:
/// `warning: CILP_GEMM=bf16: this CPU does not run the bf16 kernels (AVX512_BF16); conv-train,
/// ... products run avx512 instead`.
fn fallback_warnings(setting: &str, fallbacks: &[cilp_kernels::gemm_isa::Fallback]) -> Vec<String> {
    use cilp_kernels::gemm_isa::Isa;
    let mut pairs: Vec<(Isa, Isa)> = Vec::new();
    for f in fallbacks {
        if !pairs.contains(&(f.requested, f.used)) {
            pairs.push((f.requested, f.used));
        }
    }
    pairs
        .into_iter()
        .map(|(requested, used)| {
            let needs = match requested {
                Isa::Bf16 => " (AVX512_BF16)",
                Isa::Avx512 => " (AVX-512F)",
                Isa::Avx2 => " (AVX2 and FMA)",
                Isa::Gemm => "",
            };
            let slots: Vec<&str> = fallbacks.iter().filter(|f| (f.requested, f.used) == (requested, used)).map(|f| f.slot).collect();
            format!(
                "warning: CILP_GEMM={setting}: this CPU does not run the {} kernels{needs}; {} products run {} instead",
                requested.name(),
                slots.join(", "),
                used.name()
            )
        })
        .collect()
}

/// The test hooks for the training options (none unless a test set them).
pub fn hooks() -> TestHooks {
    SWITCHES.get_or_init(Switches::from_env).hooks
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn checkpoint_intervals_are_seconds_zero_or_more() {
        assert_eq!(parse_seconds("60"), Ok(std::time::Duration::from_secs(60)));
        assert_eq!(parse_seconds("0"), Ok(std::time::Duration::ZERO));
        assert_eq!(parse_seconds(" 2.5 "), Ok(std::time::Duration::from_millis(2500)));
        for bad in ["", "-1", "soon", "inf", "NaN", "1e12"] {
            assert!(parse_seconds(bad).unwrap_err().contains("seconds"), "{bad:?} is refused");
        }
    }

    #[test]
    fn a_kernel_set_the_cpu_lacks_is_one_warning_naming_its_slots() {
        use cilp_kernels::gemm_isa::{Fallback, Isa};
        assert!(fallback_warnings("avx512", &[]).is_empty());
        let fb = [
            Fallback { slot: "conv-train", requested: Isa::Bf16, used: Isa::Avx2 },
            Fallback { slot: "linear-infer", requested: Isa::Bf16, used: Isa::Avx2 },
            Fallback { slot: "linear-train", requested: Isa::Avx512, used: Isa::Avx2 },
        ];
        let w = fallback_warnings("conv-train=bf16,linear-infer=bf16,linear-train=avx512", &fb);
        assert_eq!(w.len(), 2, "{w:?}");
        assert_eq!(
            w[0],
            "warning: CILP_GEMM=conv-train=bf16,linear-infer=bf16,linear-train=avx512: this CPU does not run the bf16 kernels (AVX512_BF16); conv-train, linear-infer products run avx2 instead"
        );
        assert!(w[1].contains("the avx512 kernels (AVX-512F); linear-train products run avx2 instead"), "{}", w[1]);
    }
}
