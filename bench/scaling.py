#!/usr/bin/env python3
"""Scaling of cilp and PyTorch with batch size and threads, as markdown tables.

For every model, batch size and thread count, runs `cilp bench` and `bench/pytorch_bench.py`
once each, in separate processes (one model per process, so each peak-memory figure is that
model's alone), at the same batch size for training and inference, and prints (or writes with
--out) two tables: training and inference samples/s, cilp / PyTorch ratio per thread count, and
both tools' peak resident memory at the largest thread count.

    cargo build --release -p cilp
    python3 bench/scaling.py --python /path/to/python-with-torch --out bench/scaling.md

The two tools alternate (cilp, then PyTorch, per point), so a drift in the machine's speed
reaches both. Measure on an otherwise idle machine (`uptime`).
"""
import argparse
import json
import os
import pathlib
import subprocess
import sys

HERE = pathlib.Path(__file__).resolve().parent


def run_json(cmd, env=None):
    out = subprocess.run(cmd, check=True, capture_output=True, text=True, env=env)
    return json.loads(out.stdout)["results"][0]


def main():
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--models", default="nvidia-embedder,late-fusion,projector")
    p.add_argument("--batches", default="8,32,128,256")
    p.add_argument("--threads", default="1,2")
    p.add_argument("--cilp", default=str(HERE.parent / "target" / "release" / "cilp"))
    p.add_argument("--python", default=sys.executable, help="a Python with torch, for pytorch_bench.py")
    p.add_argument("--steps", type=int, default=3)
    p.add_argument("--warmup", type=int, default=1)
    p.add_argument("--repeats", type=int, default=2)
    p.add_argument("--out", help="write the markdown here too")
    args = p.parse_args()
    models = [m for m in args.models.split(",") if m]
    batches = [int(b) for b in args.batches.split(",")]
    threads = [int(t) for t in args.threads.split(",")]
    timing = ["--steps", str(args.steps), "--warmup", str(args.warmup), "--repeats", str(args.repeats)]
    res = {}
    for m in models:
        for b in batches:
            for t in threads:
                size = ["--models", m, "--batch-size", str(b), "--infer-batch-size", str(b)]
                env = dict(os.environ, RAYON_NUM_THREADS=str(t))
                c = run_json([args.cilp, "bench", *size, *timing, "--json"], env)
                py = run_json([args.python, str(HERE / "pytorch_bench.py"), *size, *timing, "--threads", str(t), "--json"])
                res[m, b, t] = (c, py)
                print(f"{m} batch {b} threads {t}: cilp {c['train_samples_per_s']:.1f} / {c['infer_samples_per_s']:.1f}, "
                      f"pytorch {py['train_samples_per_s']:.1f} / {py['infer_samples_per_s']:.1f} samples/s", file=sys.stderr, flush=True)
    tmax = max(threads)
    mib = lambda b: "-" if b is None else f"{b / 2**20:.0f}"
    lines = []
    for phase in ("train", "infer"):
        key = f"{phase}_samples_per_s"
        head = "| model | batch | " + " | ".join(f"cilp {t}T | PyTorch {t}T | ratio {t}T" for t in threads)
        head += f" | cilp MiB ({tmax}T) | PyTorch MiB ({tmax}T) |"
        lines += [f"**{'Training' if phase == 'train' else 'Inference'}** (samples/s)", "", head,
                  "|---|---:|" + "---:|" * (3 * len(threads) + 2)]
        for m in models:
            for b in batches:
                cells = []
                for t in threads:
                    c, py = res[m, b, t]
                    cells += [f"{c[key]:.1f}", f"{py[key]:.1f}", f"**{c[key] / py[key]:.2f}x**"]
                c, py = res[m, b, tmax]
                cells += [mib(c.get(f"{phase}_peak_rss_bytes")), mib(py.get(f"{phase}_peak_rss_bytes"))]
                lines.append(f"| {m} | {b} | " + " | ".join(cells) + " |")
        lines.append("")
    text = "\n".join(lines)
    print(text)
    if args.out:
        pathlib.Path(args.out).write_text(text + "\n")


if __name__ == "__main__":
    main()
