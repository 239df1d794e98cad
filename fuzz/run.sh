#!/usr/bin/env bash
# Runs each fuzz target for a bounded time (default 60 s each) with cargo-fuzz on nightly.
#   fuzz/run.sh [SECONDS]
# Needs: rustup toolchain nightly, `cargo install cargo-fuzz`.
# Uses its own target dir (CARGO_TARGET_DIR, default /work/target-fuzz) so it never blocks the
# main workspace's build. New inputs go to fuzz/corpus/<target>/.generated (git-ignored) so the
# committed seed corpus stays small; crashes land in fuzz/artifacts/<target>/.
set -euo pipefail
cd "$(dirname "$0")"
secs="${1:-60}"
export CARGO_TARGET_DIR="${CARGO_TARGET_DIR:-/work/target-fuzz}"
for t in npy png pytorch config; do
    mkdir -p "corpus/$t/.generated"
    echo "== fuzzing $t for ${secs}s"
    cargo +nightly fuzz run "$t" "corpus/$t/.generated" "corpus/$t" -- \
        -max_total_time="$secs" -max_len=65536 -timeout=10 -rss_limit_mb=2048
done
# The pytorch target's scratch files (one per fuzzing process).
rm -f /dev/shm/cilp-fuzz-*.pt
