#!/usr/bin/env python3
"""Generate lidar_cnn_reference.json: NVIDIA's pretrained LiDAR CNN run by PyTorch on four
deterministic depth maps, for crates/cilp-models/tests/pytorch_import.rs.

Run once (output is committed):
    /opt/pyref/bin/python crates/cilp-models/tests/data/make_lidar_reference.py \
        ../shared/fixtures/lidar_cnn.pt

The inputs are not stored: they are built from the formulas below, whose values are all exactly
representable in float32, and the Rust test rebuilds them the same way (it also checks the sums
stored here).
"""
import json
import os
import sys

import numpy as np
import torch
from torch import nn

SIDE = 64


def depth_maps():
    i, j = np.meshgrid(np.arange(SIDE), np.arange(SIDE), indexing="ij")  # i = row, j = column
    background = np.full((SIDE, SIDE), 50.0)

    # 1. No return anywhere.
    empty = background.copy()

    # 2. Sphere-like disc: centre (row 20, col 40), squared radius < 36, depth 24 + 0.25 * d^2.
    d2 = (i - 20) ** 2 + (j - 40) ** 2
    disc = np.where(d2 < 36, 24.0 + 0.25 * d2, 50.0)

    # 3. Square patch: rows 28..40, cols 10..22, depth 22 + 0.5 * (row - 28).
    square = background.copy()
    mask = (i >= 28) & (i < 40) & (j >= 10) & (j < 22)
    square[mask] = 22.0 + 0.5 * (i[mask] - 28)

    # 4. Ramp: depth 20 + 0.5 * row + 0.25 * column, capped at 50.
    ramp = np.minimum(20.0 + 0.5 * i + 0.25 * j, 50.0)

    maps = [("empty", empty), ("disc", disc), ("square", square), ("ramp", ramp)]
    return [(name, m.astype(np.float32)) for name, m in maps]


class LidarCnn(nn.Module):
    def __init__(self):
        super().__init__()
        self.embedder = nn.Sequential(
            nn.Conv2d(1, 50, 3, padding=1), nn.ReLU(), nn.MaxPool2d(2),
            nn.Conv2d(50, 100, 3, padding=1), nn.ReLU(), nn.MaxPool2d(2),
            nn.Conv2d(100, 200, 3, padding=1), nn.ReLU(), nn.MaxPool2d(2),
            nn.Conv2d(200, 200, 3, padding=1), nn.ReLU(), nn.MaxPool2d(2),
            nn.Flatten(),
        )
        self.classifier = nn.Sequential(nn.Linear(200 * 4 * 4, 100), nn.ReLU(), nn.Linear(100, 1))

    def forward(self, x):
        return self.classifier(self.embedder(x))


def main():
    weights = sys.argv[1] if len(sys.argv) > 1 else os.path.join(
        os.path.dirname(__file__), "../../../../../shared/fixtures/lidar_cnn.pt")
    state = torch.load(weights, map_location="cpu", weights_only=True)
    model = LidarCnn()
    model.load_state_dict(state, strict=True)
    model.eval()
    n_params = sum(p.numel() for p in model.parameters())

    maps = depth_maps()
    x = torch.from_numpy(np.stack([m for _, m in maps])[:, None])  # [4, 1, 64, 64]
    with torch.no_grad():
        emb = model.embedder(x)
        logits = model.classifier(emb)

    out = {
        "source": "make_lidar_reference.py with torch " + torch.__version__,
        "parameters": n_params,
        "cases": [
            {
                "name": name,
                "input_sum": float(m.astype(np.float64).sum()),
                "logit": float(logits[k, 0]),
                "embedding_sum": float(emb[k].double().sum()),
                "embedding_first16": [float(v) for v in emb[k, :16]],
                # The first 16 entries are often 0 (ReLU); also keep the 16 largest.
                "embedding_top16": [
                    [int(i), float(emb[k, i])] for i in torch.argsort(emb[k], descending=True)[:16]
                ],
            }
            for k, (name, m) in enumerate(maps)
        ],
    }
    path = os.path.join(os.path.dirname(os.path.abspath(__file__)), "lidar_cnn_reference.json")
    with open(path, "w") as f:
        json.dump(out, f, indent=1)
        f.write("\n")
    print(json.dumps(out["cases"][1], indent=1)[:400])
    print("parameters", n_params, "->", path)


if __name__ == "__main__":
    main()
