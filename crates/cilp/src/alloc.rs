//! glibc allocator tuning for tensor workloads.
//!
//! The CPU backend allocates and frees many multi-megabyte buffers per training step
//! (activations, im2col tiles, gradients). With glibc's defaults, blocks above the dynamic
//! mmap threshold are `mmap`ed and `munmap`ed every time, so each step pays fresh page faults
//! and kernel page zeroing, and freed heap memory is trimmed back to the OS. Raising the mmap
//! threshold to its maximum (32 MiB), keeping up to 1 GiB of free heap and growing the heap in
//! 256 MiB steps lets the allocator reuse the same pages step after step (measured +25-45 %
//! samples/s on the NVIDIA embedder; see bench/README.md).
//!
//! `CILP_SYSTEM_MALLOC=1` keeps glibc's defaults (see [`crate::switches`]). A no-op on other platforms. The choice of
//! allocator belongs to the program, not to a library (ripgrep keeps its own in `main`), so this
//! lives in the binary.

/// Apply the tuning when `enabled` (call once, early in `main`). Returns whether it was applied.
#[allow(unsafe_code)]
pub fn tune_allocator(enabled: bool) -> bool {
    if !enabled {
        return false;
    }
    #[cfg(all(target_os = "linux", target_env = "gnu"))]
    {
        // SAFETY: mallopt only changes allocator parameters; it is called before any other
        // thread exists and with documented parameter values.
        unsafe {
            libc::mallopt(libc::M_MMAP_THRESHOLD, 32 << 20) == 1
                && libc::mallopt(libc::M_TRIM_THRESHOLD, 1 << 30) == 1
                && libc::mallopt(libc::M_TOP_PAD, 256 << 20) == 1
        }
    }
    #[cfg(not(all(target_os = "linux", target_env = "gnu")))]
    {
        false
    }
}
