#!/usr/bin/env python3
"""Checks cilp's safetensors exports with the real `safetensors` package, without torch.

Usage: check_safetensors.py DIR SEED_STATE_DICTS_JSON

DIR is what `cargo test -p cilp-interop --test python_check` writes (set CILP_PY_CHECK_OUT to
keep it): exports `*.safetensors` with their sidecars `*.safetensors.json`, and for
late-fusion the input batch (`rgb.npy`, `xyza.npy`, [N, 4, 64, 64] float32) and cilp's logits
(`logits.npy`, [N, 2]).

1. Every export whose model is in seed_state_dicts.json has exactly its keys and shapes.
2. late-fusion's logits, recomputed in numpy (float64) from the exported weights and the saved
   input, equal cilp's within 1e-4.

Needs: pip install safetensors numpy
"""

import json
import pathlib
import sys

import numpy as np
from safetensors.numpy import load_file

TOLERANCE = 1e-4


def conv3x3(x, w, b, stride=1):
    """PyTorch Conv2d(k=3, padding=1): x [N, C, H, W], w [O, C, 3, 3]."""
    xp = np.pad(x, ((0, 0), (0, 0), (1, 1), (1, 1)))
    win = np.lib.stride_tricks.sliding_window_view(xp, (3, 3), axis=(2, 3))  # [N, C, H, W, 3, 3]
    win = win[:, :, ::stride, ::stride]
    return np.einsum("nchwij,ocij->nohw", win, w, optimize=True) + b[None, :, None, None]


def maxpool2(x):
    n, c, h, w = x.shape
    return x.reshape(n, c, h // 2, 2, w // 2, 2).max(axis=(3, 5))


def relu(x):
    return np.maximum(x, 0.0)


def linear(x, sd, key):
    # PyTorch layout: weight [out, in].
    return x @ sd[key + ".weight"].T + sd[key + ".bias"]


def embedder(x, sd, prefix):
    """The original's Embedder: (conv, ReLU, MaxPool2d(2)) x 3, flatten channel-major, fc1..3."""
    for i in (1, 2, 3):
        x = maxpool2(relu(conv3x3(x, sd[f"{prefix}conv{i}.weight"], sd[f"{prefix}conv{i}.bias"])))
    x = x.reshape(x.shape[0], -1)  # view(B, -1) on NCHW
    x = relu(linear(x, sd, prefix + "fc1"))
    x = relu(linear(x, sd, prefix + "fc2"))
    return linear(x, sd, prefix + "fc3")


def late_fusion(rgb, xyza, sd):
    a = embedder(rgb, sd, "rgb_Embedder.")
    b = embedder(xyza, sd, "lidar_Embedder.")
    h = relu(linear(np.concatenate([a, b], axis=1), sd, "classifier.0"))
    return linear(h, sd, "classifier.2")


def main():
    out, ref_path = pathlib.Path(sys.argv[1]), pathlib.Path(sys.argv[2])
    reference = json.loads(ref_path.read_text())["models"]
    failures = 0
    checked = 0
    for path in sorted(out.glob("*.safetensors")):
        side = json.loads(pathlib.Path(str(path) + ".json").read_text())
        sd = load_file(str(path))
        model = side["model"]
        ref_name = {"embedder-rgb": "embedder(4,2)", "embedder-lidar": "embedder(4,2)",
                    "seed-lidar-classifier": "embedder-strided(4,2)"}.get(model, model)
        got = {k: list(v.shape) for k, v in sd.items()}
        if any(v.dtype != np.float32 for v in sd.values()):
            print(f"FAIL {path.name}: not all float32")
            failures += 1
        if ref_name in reference:
            want = {k: s for k, s in reference[ref_name]["state_dict"]}
            if got != want:
                print(f"FAIL {path.name}: keys/shapes differ from {ref_name}: "
                      f"missing {sorted(set(want) - set(got))}, unexpected {sorted(set(got) - set(want))}, "
                      f"mis-shaped {sorted(k for k in set(want) & set(got) if want[k] != got[k])}")
                failures += 1
            else:
                print(f"ok   {path.name}: {len(got)} keys and shapes equal {ref_name} ({reference[ref_name]['constructor']})")
            checked += 1
        # The sidecar's state_dict lists the same keys and shapes, in PyTorch order.
        if {k: s for k, s in side["state_dict"]} != got:
            print(f"FAIL {path.name}: the sidecar's state_dict differs from the file")
            failures += 1
        if model == "late-fusion":
            rgb = np.load(out / "rgb.npy").astype(np.float64)
            xyza = np.load(out / "xyza.npy").astype(np.float64)
            cilp = np.load(out / "logits.npy").astype(np.float64)
            sd64 = {k: v.astype(np.float64) for k, v in sd.items()}
            mine = late_fusion(rgb, xyza, sd64)
            diff = np.abs(mine - cilp).max()
            status = "ok  " if diff <= TOLERANCE else "FAIL"
            failures += diff > TOLERANCE
            print(f"{status} late-fusion logits: numpy vs cilp max |diff| = {diff:.3g} over {cilp.size} logits "
                  f"(tolerance {TOLERANCE}); cilp {cilp.ravel()[:4]}, numpy {mine.ravel()[:4]}")
    if checked == 0:
        print("FAIL: no export of a reference model found in", out)
        failures += 1
    sys.exit(1 if failures else 0)


if __name__ == "__main__":
    main()
