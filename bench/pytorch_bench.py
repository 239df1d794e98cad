#!/usr/bin/env python3
"""PyTorch twin of `cilp bench`: the same architectures (REFERENCE section 2), the same
method and the same output (table, or JSON with --json / --out) so that

    python3 bench/pytorch_bench.py --out bench/pytorch.json
    cilp bench --compare bench/pytorch.json

prints the cilp / PyTorch throughput ratio measured on the same machine.

Method (identical to cilp): random inputs built once; Adam (lr 1e-4) training steps (forward,
loss, backward, step) at --batch-size; forward-only inference under torch.inference_mode() at
--infer-batch-size; --warmup untimed iterations, then --repeats timed runs of --steps
iterations; the best run is reported. FLOPs: 2 per multiply-add, conv and linear layers only;
a training sample costs forward + weight gradient + input gradient (no input gradient for the
first layer of each input branch). Needs only torch (numpy is not used).
"""

import argparse
import json
import os
import platform
import time

import torch
import torch.nn as nn
import torch.nn.functional as F

SEED = [25, 50, 100]
NVIDIA = [50, 100, 200, 200]
DEFAULT_MODELS = [
    "nvidia-embedder",
    "late-fusion",
    "intermediate-add",
    "intermediate-concat",
    "intermediate-hadamard",
    "early-fusion",
    "nvidia-lidar-classifier",
    "projector",
]


def all_models():
    v = list(DEFAULT_MODELS)
    for suffix in ["-strided", "-strided-conv"]:
        for base in ["late-fusion", "intermediate-add", "intermediate-concat",
                     "intermediate-hadamard", "early-fusion"]:
            v.append(base + suffix)
    v.append("cilp")
    return v


# ---------------------------------------------------------------------------------------------
# Architectures (each also returns its FLOP model: list of branches + shared layers)
# ---------------------------------------------------------------------------------------------

def conv_layer_flops(cin, cout, side_out):
    return 2 * cin * 9 * cout * side_out * side_out


def trunk(cin, channels, down):
    """3x3/pad-1 conv blocks; down in {'pool', 'strided', 'strided-conv'}. Returns (module, flops list)."""
    layers, flops, c, s = [], [], cin, 64
    for cout in channels:
        half = s // 2
        if down == "pool":
            layers += [nn.Conv2d(c, cout, 3, padding=1), nn.ReLU(), nn.MaxPool2d(2)]
            flops.append(conv_layer_flops(c, cout, s))
        elif down == "strided":
            layers += [nn.Conv2d(c, cout, 3, padding=1), nn.ReLU(),
                       nn.Conv2d(cout, cout, 3, stride=2, padding=1)]
            flops += [conv_layer_flops(c, cout, s), conv_layer_flops(cout, cout, half)]
        else:
            layers += [nn.Conv2d(c, cout, 3, stride=2, padding=1), nn.ReLU()]
            flops.append(conv_layer_flops(c, cout, half))
        c, s = cout, half
    return nn.Sequential(*layers), flops


def mlp(widths):
    layers, flops = [], []
    for i, (a, b) in enumerate(zip(widths[:-1], widths[1:])):
        layers.append(nn.Linear(a, b))
        if i + 2 < len(widths):
            layers.append(nn.ReLU())
        flops.append(2 * a * b)
    return nn.Sequential(*layers), flops


class Embedder(nn.Module):
    def __init__(self, cin, out, down):
        super().__init__()
        self.trunk, f1 = trunk(cin, SEED, down)
        self.head, f2 = mlp([6400, 1000, 100, out])
        self.flops = f1 + f2

    def forward(self, x):
        return self.head(self.trunk(x).flatten(1))


class NvidiaEmbedder(nn.Module):
    def __init__(self, cin):
        super().__init__()
        self.trunk, f1 = trunk(cin, NVIDIA, "pool")
        self.head, f2 = mlp([3200, 100, 200])
        self.flops = f1 + f2

    def forward(self, x):
        return F.normalize(self.head(self.trunk(x).flatten(1)), dim=1)


class LateFusion(nn.Module):
    def __init__(self, down):
        super().__init__()
        self.rgb, self.xyza = Embedder(4, 100, down), Embedder(4, 100, down)
        self.head, f = mlp([200, 50, 2])
        self.branches, self.shared = [self.rgb.flops, self.xyza.flops], f

    def forward(self, b):
        return self.head(torch.cat([self.rgb(b["rgb"]), self.xyza(b["xyza"])], 1))


class Intermediate(nn.Module):
    def __init__(self, mode, down):
        super().__init__()
        self.mode = mode
        self.rgb, f1 = trunk(4, SEED, down)
        self.xyza, f2 = trunk(4, SEED, down)
        self.head, f3 = mlp([(200 if mode == "concat" else 100) * 64, 1000, 100, 2])
        self.branches, self.shared = [f1, f2], f3

    def forward(self, b):
        a, c = self.rgb(b["rgb"]), self.xyza(b["xyza"])
        x = torch.cat([a, c], 1) if self.mode == "concat" else (a + c if self.mode == "add" else a * c)
        return self.head(x.flatten(1))


class EarlyFusion(nn.Module):
    def __init__(self, down):
        super().__init__()
        self.net = Embedder(8, 2, down)
        self.branches, self.shared = [self.net.flops], []

    def forward(self, b):
        return self.net(torch.cat([b["rgb"], b["xyza"]], 1))


class LidarClassifier(nn.Module):
    def __init__(self):
        super().__init__()
        self.embedder, f1 = trunk(1, NVIDIA, "pool")
        self.classifier, f2 = mlp([3200, 100, 1])
        self.branches, self.shared = [f1 + f2], []

    def forward(self, b):
        return self.classifier(self.embedder(b["depth"]).flatten(1))


class EmbedderModel(nn.Module):
    def __init__(self):
        super().__init__()
        self.net = NvidiaEmbedder(4)
        self.branches, self.shared = [self.net.flops], []

    def forward(self, b):
        return self.net(b["rgb"])


class Projector(nn.Module):
    def __init__(self):
        super().__init__()
        self.mlp, f = mlp([200, 1000, 500, 3200])
        self.branches, self.shared = [f], []

    def forward(self, b):
        return self.mlp(b["embedding"])


class Cilp(nn.Module):
    def __init__(self):
        super().__init__()
        self.image, self.lidar = NvidiaEmbedder(4), NvidiaEmbedder(1)
        self.branches, self.shared = [self.image.flops, self.lidar.flops], []

    def forward(self, b):
        return self.image(b["rgb"]), self.lidar(b["depth"])


def build(name):
    down = "pool"
    for suffix, d in [("-strided-conv", "strided-conv"), ("-strided", "strided")]:
        if name.endswith(suffix):
            name, down = name[: -len(suffix)], d
            break
    if name == "nvidia-embedder":
        return EmbedderModel(), "mse-embedding"
    if name == "projector":
        return Projector(), "mse-projector"
    if name == "cilp":
        return Cilp(), "cilp"
    if name == "late-fusion":
        return LateFusion(down), "ce"
    if name.startswith("intermediate-"):
        return Intermediate(name[len("intermediate-"):], down), "ce"
    if name == "early-fusion":
        return EarlyFusion(down), "ce"
    if name == "nvidia-lidar-classifier":
        return LidarClassifier(), "bce"
    raise SystemExit(f"unknown model {name!r}; known: {', '.join(all_models())}")


def cilp_loss(img, lidar):
    logits = (img @ lidar.t() + 1) / 2  # already L2-normalised
    t = torch.arange(img.shape[0])
    return (F.cross_entropy(logits, t) + F.cross_entropy(logits.t(), t)) / 2


def batch(b):
    return {
        "rgb": torch.rand(b, 4, 64, 64),
        "xyza": torch.rand(b, 4, 64, 64),
        "depth": torch.rand(b, 1, 64, 64) * 30 + 20,
        "embedding": torch.randn(b, 200),
        "targets": torch.arange(b) % 2,
        "embed_target": torch.randn(b, 200) * 0.1,
        "projector_target": torch.randn(b, 3200),
    }


def loss_of(kind, out, b):
    if kind == "ce":
        return F.cross_entropy(out, b["targets"])
    if kind == "bce":
        return F.binary_cross_entropy_with_logits(out.squeeze(1), b["targets"].float())
    if kind == "mse-embedding":
        return F.mse_loss(out, b["embed_target"])
    if kind == "mse-projector":
        return F.mse_loss(out, b["projector_target"])
    return cilp_loss(*out)


def time_runs(args, f):
    for _ in range(args.warmup):
        f()
    runs = []
    for _ in range(max(1, args.repeats)):
        t = time.perf_counter()
        for _ in range(max(1, args.steps)):
            f()
        runs.append((time.perf_counter() - t) / max(1, args.steps))
    return runs


def machine():
    cpu, mhz, flags, vendor, family = "unknown", None, "", "", ""
    try:
        with open("/proc/cpuinfo") as fh:
            for line in fh:
                k, _, v = line.partition(":")
                k, v = k.strip(), v.strip()
                if k == "model name" and cpu == "unknown":
                    cpu = v
                elif k == "cpu MHz" and mhz is None:
                    mhz = float(v)
                elif k == "flags" and not flags:
                    flags = v
                elif k == "vendor_id" and not vendor:
                    vendor = v
                elif k == "cpu family" and not family:
                    family = v
    except OSError:
        pass
    ghz = mhz / 1000 if mhz else 1.0
    if mhz is None and "@" in cpu:
        try:
            ghz = float(cpu.split("@")[1].strip().rstrip("GHz").strip())
        except ValueError:
            pass
    fl = flags.split()
    lanes = 16 if "avx512f" in fl else (8 if "avx2" in fl else 4)
    # AMD Zen 4 (family 25 with AVX-512) runs 512-bit operations on 256-bit FMA units (as cilp's machine.rs).
    fma_lanes = 8 if (vendor == "AuthenticAMD" and family == "25" and lanes == 16) else lanes
    cores = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count()
    return {"cpu": cpu, "cores": cores, "ghz": ghz, "simd_f32_lanes": lanes, "fma_f32_lanes": fma_lanes,
            "peak_gflops": cores * 2 * fma_lanes * 2 * ghz}


def peak_for_threads(mach, threads):
    """The theoretical peak of `threads` compute threads: the machine's scaled to `threads` of its
    logical CPUs (as cilp's Machine::peak_for_threads)."""
    cores = max(mach["cores"], 1)
    return mach["peak_gflops"] * min(max(threads, 1), cores) / cores


def reset_peak():
    """Resets the process's peak-RSS counter (Linux VmHWM), like cilp's memory::reset_peak."""
    try:
        with open("/proc/self/clear_refs", "w") as fh:
            fh.write("5")
    except OSError:
        pass


def peak_bytes():
    """Peak resident memory since the last reset_peak (Linux VmHWM), or None."""
    try:
        with open("/proc/self/status") as fh:
            for line in fh:
                if line.startswith("VmHWM:"):
                    return int(line.split()[1]) * 1024
    except OSError:
        pass
    return None


def run_model(name, args, mach):
    model, kind = build(name)
    params = sum(p.numel() for p in model.parameters())
    fwd = sum(sum(b) for b in model.branches) + sum(model.shared)
    train_flops = 3 * fwd - sum(b[0] for b in model.branches if b)
    train_runs, infer_runs = [], []
    train_peak = infer_peak = None
    if not args.no_train:
        reset_peak()
        model.train()
        opt = torch.optim.Adam(model.parameters(), lr=1e-4)
        b = batch(args.batch_size)

        def step():
            opt.zero_grad(set_to_none=True)
            loss_of(kind, model(b), b).backward()
            opt.step()

        train_runs = [args.batch_size / s for s in time_runs(args, step)]
        train_peak = peak_bytes()
    if not args.no_infer:
        model.eval()
        reset_peak()
        b = batch(args.infer_batch_size)

        def infer():
            with torch.inference_mode():
                model(b)

        infer_runs = [args.infer_batch_size / s for s in time_runs(args, infer)]
        infer_peak = peak_bytes()
    train = max(train_runs) if train_runs else None
    infer = max(infer_runs) if infer_runs else None
    gf = lambda sps, fl: None if sps is None else sps * fl / 1e9
    frac = lambda g: None if g is None else g / peak_for_threads(mach, torch.get_num_threads())
    return {
        "model": name, "parameters": params,
        "train_flops_per_sample": train_flops, "infer_flops_per_sample": fwd,
        "train_samples_per_s": train, "infer_samples_per_s": infer,
        "train_gflops": gf(train, train_flops), "infer_gflops": gf(infer, fwd),
        "train_peak_fraction": frac(gf(train, train_flops)),
        "infer_peak_fraction": frac(gf(infer, fwd)),
        "train_runs": train_runs, "infer_runs": infer_runs,
        "train_peak_rss_bytes": train_peak, "infer_peak_rss_bytes": infer_peak,
    }


def fmt(v, p=1):
    return "-" if v is None else f"{v:.{p}f}"


def pct(v):
    return "-" if v is None else f"{100 * v:.1f}%"


def spread(runs):
    return "-" if len(runs) < 2 else f"{100 * (max(runs) - min(runs)) / max(runs):.0f}%"


def print_report(r):
    m = r["machine"]
    t = r["threads"]
    fma = m.get("fma_f32_lanes", m["simd_f32_lanes"])
    units = f" on {fma}-lane FMA units" if fma and fma != m["simd_f32_lanes"] else ""
    base = f" on {t} of them" if t < m["cores"] else ""
    print(f"{r['tool']} {r['version']} | {t} thread{'' if t == 1 else 's'} | {m['cpu']} ({m['cores']} logical CPUs, "
          f"{m['ghz']:.2f} GHz, {m['simd_f32_lanes']}-lane f32 SIMD{units}), "
          f"theoretical peak {peak_for_threads(m, t):.1f} GFLOP/s{base}")
    print(f"train batch {r['batch_size']}, inference batch {r['infer_batch_size']}, {r['warmup']} warm-up + "
          f"best of {r['repeats']} x {r['steps']} iterations")
    mib = lambda b: "-" if b is None else f"{b / 2**20:.0f}"
    print(f"{'model':<24} {'params':>11} {'train/s':>10} {'spread':>6} {'GFLOP/s':>8} {'peak':>6} {'MiB':>6} | "
          f"{'infer/s':>10} {'spread':>6} {'GFLOP/s':>8} {'peak':>6} {'MiB':>6}")
    for x in r["results"]:
        print(f"{x['model']:<24} {x['parameters']:>11} {fmt(x['train_samples_per_s']):>10} "
              f"{spread(x['train_runs']):>6} {fmt(x['train_gflops']):>8} {pct(x['train_peak_fraction']):>6} "
              f"{mib(x.get('train_peak_rss_bytes')):>6} | "
              f"{fmt(x['infer_samples_per_s']):>10} {spread(x['infer_runs']):>6} "
              f"{fmt(x['infer_gflops']):>8} {pct(x['infer_peak_fraction']):>6} {mib(x.get('infer_peak_rss_bytes')):>6}")

def main():
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--models", default=",".join(DEFAULT_MODELS), help="comma-separated, or 'all'")
    p.add_argument("--batch-size", type=int, default=32)
    p.add_argument("--infer-batch-size", type=int, default=256)
    p.add_argument("--steps", type=int, default=5)
    p.add_argument("--warmup", type=int, default=2)
    p.add_argument("--repeats", type=int, default=3)
    p.add_argument("--threads", type=int, default=0, help="torch intra-op threads (0: all logical CPUs)")
    p.add_argument("--no-train", action="store_true")
    p.add_argument("--no-infer", action="store_true")
    p.add_argument("--json", action="store_true", help="print the JSON report instead of the table")
    p.add_argument("--out", help="also write the JSON report here")
    args = p.parse_args()
    mach = machine()
    torch.set_num_threads(args.threads or mach["cores"])
    torch.manual_seed(0)
    models = all_models() if args.models == "all" else [m for m in args.models.split(",") if m]
    results = []
    for name in models:
        results.append(run_model(name, args, mach))
        if not args.json:
            x = results[-1]
            print(f"  {name:<24} train {fmt(x['train_samples_per_s']):>8} samples/s, "
                  f"inference {fmt(x['infer_samples_per_s']):>8} samples/s", flush=True)
    report = {
        "tool": "pytorch", "version": f"{torch.__version__} (python {platform.python_version()})",
        "threads": torch.get_num_threads(), "machine": mach,
        "batch_size": args.batch_size, "infer_batch_size": args.infer_batch_size,
        "warmup": args.warmup, "steps": args.steps, "repeats": args.repeats, "results": results,
    }
    if args.out:
        with open(args.out, "w") as fh:
            json.dump(report, fh, indent=2)
    if args.json:
        print(json.dumps(report, indent=2))
    else:
        print_report(report)


if __name__ == "__main__":
    main()
