#!/usr/bin/env bash
# cilp's GPU path on a real GPU, in one command, on a machine with no network.
#
#   scripts/gpu-check.sh --bundle DIR    # here (cargo, network): build and pack what travels
#   DIR/gpu-check.sh [--out OUT]         # there (a GPU, a driver, no network): run the checks
#
# --bundle builds `cilp` with `--features wgpu` (release), strips it and copies it with this script
# and the Vulkan loader (libvulkan.so.1, used only where the GPU machine has none) into DIR, and
# packs DIR into DIR.tar.gz (what travels).
# On the GPU machine the script, timing each step:
#   1. prints the adapters (nvidia-smi, then the Vulkan adapter cilp's wgpu backend picks);
#   2. runs the agreement check (`cilp device-check`: outputs, loss, gradients and one Adam step
#      of all 21 zoo models on the GPU against the CPU);
#   3. runs `cilp bench --device wgpu` (samples/s per architecture) and the same on the CPU for
#      the ratio;
#   4. generates the quick preset's data and runs the quick fusion study on the GPU;
#   5. writes OUT/gpu-check.json (steps, seconds, exit codes, adapter, results) and prints it.
# It exits non-zero when a step fails. GPU_CHECK_CPU_BENCH=0 skips the CPU bench; GPU_CHECK_PER_CLASS,
# GPU_CHECK_BENCH_ARGS and GPU_CHECK_FUSION_ARGS shrink the work (for a try on a software device).
set -uo pipefail

here="$(cd "$(dirname "$0")" && pwd)"
out="gpu-check-out"
bundle=""
cilp=""
while [ $# -gt 0 ]; do
  case "$1" in
    --bundle) bundle="$2"; shift 2 ;;
    --out) out="$2"; shift 2 ;;
    --cilp) cilp="$2"; shift 2 ;;
    -h|--help) sed -n '2,20p' "$0"; exit 0 ;;
    *) echo "gpu-check: unknown argument $1 (see --help)" >&2; exit 2 ;;
  esac
done

if [ -n "$bundle" ]; then
  root="$(cd "$here/.." && pwd)"
  (cd "$root" && cargo build --release -p cilp --features wgpu) || exit 1
  mkdir -p "$bundle"
  cp "$root/target/release/cilp" "$bundle/cilp"
  strip "$bundle/cilp" 2>/dev/null || echo "gpu-check: strip not found; the binary keeps its symbols" >&2
  cp "$here/gpu-check.sh" "$bundle/gpu-check.sh"
  loader="$(ldconfig -p 2>/dev/null | awk '/libvulkan\.so\.1 .*x86-64/ {print $NF; exit}')"
  if [ -n "$loader" ]; then
    cp -L "$loader" "$bundle/libvulkan.so.1"
  else
    echo "gpu-check: no libvulkan.so.1 here (Debian: libvulkan1); the GPU machine must have one" >&2
  fi
  tar -C "$(dirname "$bundle")" -czf "$bundle.tar.gz" "$(basename "$bundle")"
  du -sh "$bundle"/* "$bundle.tar.gz"
  echo "bundle ready: copy $bundle.tar.gz to the GPU machine, unpack it and run $(basename "$bundle")/gpu-check.sh --out OUT"
  exit 0
fi

if [ -z "$cilp" ]; then
  if [ -x "$here/cilp" ]; then cilp="$here/cilp"; else cilp="$here/../target/release/cilp"; fi
fi
[ -x "$cilp" ] || { echo "gpu-check: no cilp binary at $cilp (build one with --bundle DIR)" >&2; exit 2; }
mkdir -p "$out"
out="$(cd "$out" && pwd)"
log="$out/gpu-check.log"
: > "$log"

# The Vulkan loader: the system's, else the one that travelled with the bundle.
if ! ldconfig -p 2>/dev/null | grep -q 'libvulkan\.so\.1' && [ -f "$here/libvulkan.so.1" ]; then
  export LD_LIBRARY_PATH="$here${LD_LIBRARY_PATH:+:$LD_LIBRARY_PATH}"
fi
# NVIDIA's Vulkan driver: containers often ship the driver library without its ICD file.
if ! cat /usr/share/vulkan/icd.d/*.json /etc/vulkan/icd.d/*.json 2>/dev/null | grep -q nvidia; then
  glx="$(ldconfig -p 2>/dev/null | awk '/libGLX_nvidia\.so\.0/ {print $NF; exit}')"
  if [ -n "$glx" ]; then
    mkdir -p "$out/icd"
    printf '{"file_format_version":"1.0.0","ICD":{"library_path":"%s","api_version":"1.3"}}\n' "$glx" > "$out/icd/nvidia_icd.json"
    export VK_DRIVER_FILES="$out/icd/nvidia_icd.json" VK_ICD_FILENAMES="$out/icd/nvidia_icd.json"
    echo "gpu-check: wrote an NVIDIA Vulkan ICD file for $glx" | tee -a "$log"
  fi
fi

steps=()
failed=0
now() { date +%s.%N; }
# step NAME CMD...: runs CMD with its output to the terminal and the log, records seconds and rc.
step() {
  local name="$1"; shift
  echo "== $name: $*" | tee -a "$log"
  local t0 rc
  t0="$(now)"
  "$@" 2>&1 | tee -a "$log"
  rc=${PIPESTATUS[0]}
  local secs
  secs="$(awk -v a="$t0" -v b="$(now)" 'BEGIN {printf "%.1f", b - a}')"
  echo "== $name: exit $rc, $secs s" | tee -a "$log"
  steps+=("{\"step\": \"$name\", \"seconds\": $secs, \"exit\": $rc}")
  [ "$rc" -eq 0 ] || failed=1
  return "$rc"
}

t_start="$(now)"
if command -v nvidia-smi >/dev/null 2>&1; then
  step nvidia-smi nvidia-smi --query-gpu=name,driver_version,memory.total --format=csv
fi
step adapter "$cilp" device-check --device wgpu --adapters
adapter="$("$cilp" device-check --device wgpu --adapters 2>/dev/null | sed 's/^wgpu: //')"
case "$adapter" in
  *"(Cpu,"*) echo "gpu-check: WARNING: the adapter is a software one ($adapter), not a GPU" | tee -a "$log" ;;
  "no adapter found"|"") echo "gpu-check: no Vulkan adapter: is the NVIDIA driver's Vulkan ICD installed?" | tee -a "$log" ;;
esac
step agreement "$cilp" device-check --device wgpu --out "$out/agreement.json"
# GPU_CHECK_BENCH_ARGS: extra `cilp bench` flags for both benches (e.g. "--models projector --steps 2").
read -r -a bench_extra <<< "${GPU_CHECK_BENCH_ARGS:-}"
step bench-wgpu "$cilp" bench --device wgpu --out "$out/bench-wgpu.json" "${bench_extra[@]}"
if [ "${GPU_CHECK_CPU_BENCH:-1}" != 0 ]; then
  step bench-cpu "$cilp" bench --device cpu --out "$out/bench-cpu.json" "${bench_extra[@]}" \
    && "$cilp" bench --from "$out/bench-wgpu.json" --compare "$out/bench-cpu.json" | tee -a "$log"
fi
step generate "$cilp" generate --out "$out/data" --per-class "${GPU_CHECK_PER_CLASS:-500}" --seed 51
# GPU_CHECK_FUSION_ARGS: extra flags, split on spaces (e.g. "--seeds 51 --models late-fusion").
read -r -a fusion_extra <<< "${GPU_CHECK_FUSION_ARGS:-}"
step fusion "$cilp" fusion --data "$out/data" --preset quick --device wgpu --out "$out/fusion" "${fusion_extra[@]}"
total="$(awk -v a="$t_start" -v b="$(now)" 'BEGIN {printf "%.1f", b - a}')"

json_str() { python3 -c 'import json,sys; print(json.dumps(sys.argv[1]))' "$1" 2>/dev/null || printf '"%s"' "${1//\"/\'}"; }
{
  echo "{"
  echo "  \"cilp\": $(json_str "$("$cilp" --version 2>/dev/null)"),"
  echo "  \"date\": \"$(date -u +%Y-%m-%dT%H:%M:%SZ)\","
  echo "  \"host_cpu\": $(json_str "$(awk -F': ' '/model name/ {print $2; exit}' /proc/cpuinfo)"),"
  echo "  \"cpu_cores\": $(nproc),"
  echo "  \"adapter\": $(json_str "$adapter"),"
  echo "  \"total_seconds\": $total,"
  echo "  \"ok\": $([ "$failed" -eq 0 ] && echo true || echo false),"
  echo "  \"files\": {\"agreement\": \"agreement.json\", \"bench_wgpu\": \"bench-wgpu.json\", \"bench_cpu\": \"bench-cpu.json\", \"fusion\": \"fusion/summary.json\", \"log\": \"gpu-check.log\"},"
  echo "  \"steps\": ["
  for i in "${!steps[@]}"; do
    sep=","; [ "$i" -eq $((${#steps[@]} - 1)) ] && sep=""
    echo "    ${steps[$i]}$sep"
  done
  echo "  ]"
  echo "}"
} > "$out/gpu-check.json"
cat "$out/gpu-check.json"
echo "gpu-check: $([ "$failed" -eq 0 ] && echo "all steps passed" || echo "a step FAILED") in $total s; results in $out"
exit "$failed"
