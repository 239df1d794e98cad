//! Compute threads that grow part-way through a process.
//!
//! `cilp run` trains its assessment in a process of its own beside the studies' workers, each on
//! one core. Whichever side ends first leaves its core idle: the studies take it back by starting
//! a second worker once the assessment has ended; the assessment takes it through this module
//! once the studies have ended ([`start_narrow`], then [`widen`] from another thread). Its stages
//! are bit-identical at any thread count, so where the change falls does not move a result.
//!
//! Without [`start_narrow`] nothing changes: [`run`] calls its closure as it is, on rayon's global
//! pool (`RAYON_NUM_THREADS`).

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Once, OnceLock};

struct Pools {
    narrow: rayon::ThreadPool,
    wide: rayon::ThreadPool,
    /// Set by [`widen`]: computations started from then on run on `wide`.
    widened: AtomicBool,
    /// The wide pool's threads flush subnormal floats as the narrow ones do (once, on first use).
    wide_flushed: Once,
}

static POOLS: OnceLock<Pools> = OnceLock::new();

/// Stack of each pool thread: a main thread's usual 8 MiB (rayon's default is 2 MiB).
const STACK_BYTES: usize = 8 << 20;

/// Runs this process's computations ([`run`]) on `narrow` threads until [`widen`], then on `wide`.
/// Call it once, before the first computation; an error names what failed (a second call, or
/// a pool that could not be started).
pub fn start_narrow(narrow: usize, wide: usize) -> Result<(), String> {
    let build = |n: usize| {
        rayon::ThreadPoolBuilder::new()
            .num_threads(n.max(1))
            .thread_name(move |i| format!("cilp-compute-{n}-{i}"))
            // A whole command may run on one of these threads (as on a main thread's 8 MiB).
            .stack_size(STACK_BYTES)
            .build()
            .map_err(|e| format!("cannot start {n} compute thread(s): {e}"))
    };
    let pools =
        Pools { narrow: build(narrow)?, wide: build(wide.max(narrow))?, widened: AtomicBool::new(false), wide_flushed: Once::new() };
    POOLS.set(pools).map_err(|_| "the compute threads were started twice".to_string())
}

/// From the next [`run`] on, computations take the wide pool (no-op without [`start_narrow`]).
pub fn widen() {
    if let Some(p) = POOLS.get() {
        p.widened.store(true, Ordering::Relaxed);
    }
}

/// Calls `f` on the pool in force now (see [`start_narrow`]): its parallel work, and rayon's
/// `current_num_threads`, are that pool's. Nested calls on the same pool run in place.
pub fn run<R: Send>(f: impl FnOnce() -> R + Send) -> R {
    let Some(p) = POOLS.get() else { return f() };
    if p.widened.load(Ordering::Relaxed) {
        p.wide.install(|| {
            // `flush_denormals` sets the calling thread and broadcasts to the current pool.
            p.wide_flushed.call_once(cilp_kernels::flush_denormals);
            f()
        })
    } else {
        p.narrow.install(f)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// One test: the pools are process-wide and set once.
    #[test]
    fn computations_move_to_the_wide_pool_when_widened() {
        assert_eq!(run(rayon::current_num_threads), rayon::current_num_threads(), "without pools: as called");
        start_narrow(1, 3).unwrap();
        assert!(start_narrow(1, 2).unwrap_err().contains("twice"));
        assert_eq!(run(rayon::current_num_threads), 1);
        // Nested: the inner call runs in place on the same pool.
        assert_eq!(run(|| run(rayon::current_num_threads)), 1);
        // Widened from inside a narrow computation (as the assessment's whole run is one).
        let inner = run(|| {
            widen();
            run(|| (rayon::current_num_threads(), cilp_kernels::denormals_flushed_on_this_thread()))
        });
        assert_eq!(inner.0, 3);
        assert_eq!(run(rayon::current_num_threads), 3, "and every computation after");
        #[cfg(target_arch = "x86_64")]
        assert!(inner.1, "the wide pool flushes subnormals like the narrow one");
        // Every wide thread, not only the one the call landed on.
        let flushed: Vec<bool> = run(|| rayon::broadcast(|_| cilp_kernels::denormals_flushed_on_this_thread()));
        assert_eq!(flushed.len(), 3);
        #[cfg(target_arch = "x86_64")]
        assert!(flushed.iter().all(|&f| f));
    }
}
