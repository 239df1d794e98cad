//! Peak memory of the process (Linux: the resident-set high-water mark, `VmHWM`).

/// Resets the peak-RSS counter so that the next reading covers only what follows (Linux 4.0+;
/// a no-op elsewhere).
pub fn reset_peak() {
    let _ = std::fs::write("/proc/self/clear_refs", "5");
}

/// Peak resident memory in bytes since start or the last [`reset_peak`], if the OS tells.
pub fn peak_bytes() -> Option<u64> {
    let status = std::fs::read_to_string("/proc/self/status").ok()?;
    let line = status.lines().find(|l| l.starts_with("VmHWM:"))?;
    let kb: u64 = line.split_whitespace().nth(1)?.parse().ok()?;
    Some(kb * 1024)
}
