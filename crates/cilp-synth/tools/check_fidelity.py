#!/usr/bin/env python3
"""Classify generated LiDAR depth maps with NVIDIA's pretrained LiDAR classifier.

Usage: check_fidelity.py DATA_DIR [--weights PATH] [--limit N] [--transform NAME]

The classifier (lidar_cnn.pt, REFERENCE section 2) was trained on the REAL scans and is close to
100% accurate on them, so its accuracy on generated data measures how faithful the generator's
geometry (sizes, distances, angle convention, orientation) is. Logit > 0 means sphere.
Prints per-class accuracy and mean logit; exit status 0. `--transform` applies a transpose/flip to
every depth map first (for diagnosing orientation mismatches).
"""
import argparse
import pathlib
import sys

import numpy as np
import torch
from torch import nn

DEFAULT_WEIGHTS = pathlib.Path(__file__).resolve().parents[3] / ".." / "shared" / "fixtures" / "lidar_cnn.pt"
LABELS = {"cubes": 0, "spheres": 1}
TRANSFORMS = {
    "none": lambda d: d,
    "T": lambda d: d.T,
    "flipud": lambda d: d[::-1],
    "fliplr": lambda d: d[:, ::-1],
    "rot180": lambda d: d[::-1, ::-1],
    "T_flipud": lambda d: d.T[::-1],
    "T_fliplr": lambda d: d.T[:, ::-1],
    "T_rot180": lambda d: d.T[::-1, ::-1],
}


class LidarClassifier(nn.Module):
    def __init__(self):
        super().__init__()
        layers = []
        chans = [1, 50, 100, 200, 200]
        for cin, cout in zip(chans[:-1], chans[1:]):
            layers += [nn.Conv2d(cin, cout, 3, padding=1), nn.ReLU(), nn.MaxPool2d(2)]
        layers.append(nn.Flatten())
        self.embedder = nn.Sequential(*layers)  # indices 0, 3, 6, 9 are the convolutions
        self.classifier = nn.Sequential(nn.Linear(3200, 100), nn.ReLU(), nn.Linear(100, 1))

    def forward(self, x):
        return self.classifier(self.embedder(x))


def load_model(path):
    state = torch.load(path, map_location="cpu", weights_only=True)
    model = LidarClassifier()
    model.load_state_dict(state)
    model.eval()
    n = sum(p.numel() for p in model.parameters())
    assert n == 906_201, n
    return model


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("data_dir", type=pathlib.Path)
    ap.add_argument("--weights", type=pathlib.Path, default=DEFAULT_WEIGHTS)
    ap.add_argument("--limit", type=int, default=None)
    ap.add_argument("--transform", choices=sorted(TRANSFORMS), default="none")
    args = ap.parse_args()
    model = load_model(args.weights)
    tf = TRANSFORMS[args.transform]
    worst = 1.0
    for cls, label in LABELS.items():
        files = sorted((args.data_dir / cls / "lidar").glob("*.npy"))[: args.limit]
        if not files:
            print(f"{cls}: no files", file=sys.stderr)
            continue
        x = np.stack([np.ascontiguousarray(tf(np.load(f).astype(np.float32))) for f in files])
        with torch.no_grad():
            logits = model(torch.from_numpy(x)[:, None]).squeeze(1).numpy()
        pred = (logits > 0).astype(int)
        acc = float((pred == label).mean())
        worst = min(worst, acc)
        wrong = [f.stem for f, p in zip(files, pred) if p != label][:10]
        print(f"{cls:8s} n={len(files):5d} accuracy={acc:.4f} mean_logit={logits.mean():+.3f} "
              f"min={logits.min():+.2f} max={logits.max():+.2f} wrong(first 10)={wrong}")
    print(f"worst-class accuracy {worst:.4f} (target >= 0.95)")


if __name__ == "__main__":
    main()
