#!/usr/bin/env python3
"""Replays cilp's first seed-CILP training steps in PyTorch and compares them step by step.

Input: the folder written by
    cargo run --release -p cilp-assess --example seed_cilp_trajectory -- DATA OUT [STEPS] [SEED]
(init.safetensors: cilp's initial weights under the original's PyTorch names; inputs.f32: every
step's RGB and XYZA batch; trajectory.json: cilp's loss and logit scale per step).

PyTorch runs the same steps with the original study's code for this stage (REFERENCE.md §7:
ContrastivePretraining(200, 'strided'), Adam(lr, eps) defaults, no clamp) from the same weights
on the same inputs, and prints where the two trajectories part. As a yardstick for how fast two
runs of the *same* computation part, `--perturb 1e-7` starts PyTorch from weights multiplied by
(1 + 1e-7 * noise), i.e. about one float32 rounding away.

    python scripts/seed_cilp_trajectory.py OUT [--perturb 1e-7] [--threads 2] [--json FILE]
        [--check-inputs DATA]

`--check-inputs DATA` first reads every sample of the run from the dataset's files the way
REFERENCE §7 describes (RGBA / 255; XYZA in the seed convention) and compares with cilp's inputs.
`--data DATA` reads the steps past the dumped ones (`dumped_steps`) from the files the same way
(needed when the run is longer than 100 steps), and then puts both frameworks' image embeddings
through the seed assessment's class probe (15 nearest training embeddings, scikit-learn).
"""
import argparse
import json
import math
import os

import numpy as np
import torch
import torch.nn as nn
import torch.nn.functional as F
from safetensors.torch import load_file


class EmbedderStrided(nn.Module):
    """REFERENCE §7: three (conv3x3 pad 1, ReLU, conv3x3 stride 2 pad 1) stages, 25/50/100
    channels, flatten 6400, fc1 1000 ReLU, fc2 100 ReLU, fc3 out."""

    def __init__(self, in_ch, out):
        super().__init__()
        self.conv1 = nn.Conv2d(in_ch, 25, 3, padding=1)
        self.conv2 = nn.Conv2d(25, 50, 3, padding=1)
        self.conv3 = nn.Conv2d(50, 100, 3, padding=1)
        self.down1 = nn.Conv2d(25, 25, 3, stride=2, padding=1)
        self.down2 = nn.Conv2d(50, 50, 3, stride=2, padding=1)
        self.down3 = nn.Conv2d(100, 100, 3, stride=2, padding=1)
        self.fc1 = nn.Linear(6400, 1000)
        self.fc2 = nn.Linear(1000, 100)
        self.fc3 = nn.Linear(100, out)

    def forward(self, x):
        x = self.down1(F.relu(self.conv1(x)))
        x = self.down2(F.relu(self.conv2(x)))
        x = self.down3(F.relu(self.conv3(x)))
        x = x.view(x.shape[0], -1)
        x = F.relu(self.fc1(x))
        x = F.relu(self.fc2(x))
        return self.fc3(x)


class ContrastivePretraining(nn.Module):
    def __init__(self, emb=200):
        super().__init__()
        self.logit_scale = nn.Parameter(torch.ones([]) * math.log(1 / 0.07))
        self.img_embedder = EmbedderStrided(4, emb)
        self.lidar_embedder = EmbedderStrided(4, emb)

    def loss(self, rgb, xyza):
        img = F.normalize(self.img_embedder(rgb), dim=1)
        lid = F.normalize(self.lidar_embedder(xyza), dim=1)
        logits = self.logit_scale.exp() * img @ lid.t()
        labels = torch.arange(logits.shape[0])
        return (F.cross_entropy(logits, labels) + F.cross_entropy(logits.t(), labels)) / 2


def original_inputs(data, name):
    """One sample as REFERENCE §7 reads it: RGBA in [0, 1]; XYZA with x = d sin(-az) cos(-ze),
    y = d cos(-az) cos(-ze), z = d sin(-ze), xyz zeroed where d >= 50, divided by 50, A = mask."""
    from PIL import Image
    cls, stem = name.split("/")
    rgb = np.asarray(Image.open(os.path.join(data, cls, "rgb", stem + ".png")).convert("RGBA"), dtype=np.float32)
    rgb = np.ascontiguousarray(rgb.transpose(2, 0, 1)) / 255.0
    d = np.load(os.path.join(data, cls, "lidar", stem + ".npy")).astype(np.float32)
    az = np.load(os.path.join(data, cls, "azimuth.npy")).astype(np.float32)[:, None]
    ze = np.load(os.path.join(data, cls, "zenith.npy")).astype(np.float32)[None, :]
    x = d * np.sin(-az) * np.cos(-ze)
    y = d * np.cos(-az) * np.cos(-ze)
    z = d * np.sin(-ze)
    mask = (d < 50).astype(np.float32)
    xyza = np.stack([x * mask / 50, y * mask / 50, z * mask / 50, mask])
    return rgb, xyza


def check_inputs(data, meta, inputs, plane, limit):
    b = meta["batch_size"]
    worst_rgb = worst_xyza = 0.0
    n = min(limit, len(meta["files"]), meta.get("dumped_steps", meta["steps"]) * b)
    for k in range(n):
        s, j = divmod(k, b)
        base = s * 2 * plane + j * 4 * 64 * 64
        ours_rgb = np.asarray(inputs[base:base + 4 * 4096]).reshape(4, 64, 64)
        ours_xyza = np.asarray(inputs[base + plane:base + plane + 4 * 4096]).reshape(4, 64, 64)
        rgb, xyza = original_inputs(data, meta["files"][k])
        worst_rgb = max(worst_rgb, float(np.abs(ours_rgb - rgb).max()))
        worst_xyza = max(worst_xyza, float(np.abs(ours_xyza - xyza).max()))
    print(f"inputs of {n} samples against the files read as in REFERENCE §7: "
          f"largest difference RGB {worst_rgb:.3g}, XYZA {worst_xyza:.3g}")
    return worst_rgb, worst_xyza


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("dir")
    ap.add_argument("--perturb", type=float, default=0.0)
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--json", help="write PyTorch's losses and the comparison here")
    ap.add_argument("--check-inputs", metavar="DATA", help="compare cilp's inputs with the files read in Python")
    ap.add_argument("--check-limit", type=int, default=640, help="samples to check (default 640)")
    ap.add_argument("--data", help="dataset root: inputs past the dumped steps, and the class probe")
    a = ap.parse_args()
    torch.set_num_threads(a.threads)
    torch.manual_seed(0)
    meta = json.load(open(os.path.join(a.dir, "trajectory.json")))
    b, steps = meta["batch_size"], meta["steps"]
    model = ContrastivePretraining()
    sd = load_file(os.path.join(a.dir, "init.safetensors"))
    sd = {k: (v.reshape([]) if k == "logit_scale" else v) for k, v in sd.items()}
    model.load_state_dict(sd, strict=True)
    if a.perturb:
        with torch.no_grad():
            for p in model.parameters():
                p.mul_(1 + a.perturb * torch.randn_like(p))
    opt = torch.optim.Adam(model.parameters(), lr=meta["lr"], eps=meta["adam_epsilon"])
    plane = b * 4 * 64 * 64
    inputs = np.memmap(os.path.join(a.dir, "inputs.f32"), dtype="<f4", mode="r")
    dumped = meta.get("dumped_steps", steps)
    assert inputs.size == dumped * 2 * plane, f"inputs.f32 holds {inputs.size} floats, expected {dumped * 2 * plane}"
    if dumped < steps and not a.data:
        ap.error(f"{steps} steps but only {dumped} dumped: pass --data DATA to read the others")
    if a.check_inputs:
        check_inputs(a.check_inputs, meta, inputs, plane, a.check_limit)
    losses, scales = [], []
    for s in range(steps):
        if s < dumped:
            base = s * 2 * plane
            rgb = torch.from_numpy(np.array(inputs[base:base + plane])).view(b, 4, 64, 64)
            xyza = torch.from_numpy(np.array(inputs[base + plane:base + 2 * plane])).view(b, 4, 64, 64)
        else:
            pairs = [original_inputs(a.data, n) for n in meta["files"][s * b:(s + 1) * b]]
            rgb = torch.from_numpy(np.stack([p[0] for p in pairs]))
            xyza = torch.from_numpy(np.stack([p[1] for p in pairs]))
        loss = model.loss(rgb, xyza)
        opt.zero_grad()
        loss.backward()
        opt.step()
        losses.append(loss.item())
        scales.append(model.logit_scale.item())
    ours, theirs = np.array(meta["loss"]), np.array(losses)
    rel = np.abs(ours - theirs) / np.abs(theirs)
    srel = np.abs(np.array(meta["logit_scale"]) - np.array(scales)) / np.abs(np.array(scales))
    print(f"{'step':>5} {'cilp loss':>12} {'PyTorch loss':>12} {'rel. diff':>10} {'scale rel. diff':>15}")
    for s in sorted(set(list(range(0, steps, max(1, steps // 20))) + [steps - 1])):
        print(f"{s:5d} {ours[s]:12.6f} {theirs[s]:12.6f} {rel[s]:10.2e} {srel[s]:15.2e}")
    for bound in (1e-5, 1e-4, 1e-3, 1e-2, 1e-1):
        over = np.nonzero(rel > bound)[0]
        print(f"first step with loss rel. diff > {bound:g}: {over[0] if over.size else 'none'}")
    print(f"mean loss over the {steps} steps: cilp {ours.mean():.6f}, PyTorch {theirs.mean():.6f}")
    probe = None
    if a.data and "train_files" in meta:
        probe = class_probe(a, meta, model)
    if a.json:
        json.dump({"perturb": a.perturb, "torch_loss": losses, "torch_logit_scale": scales,
                   "rel_diff": rel.tolist(), "probe": probe}, open(a.json, "w"))


def class_probe(a, meta, model):
    """15-NN class probe of the image embeddings after the last step, cilp's and PyTorch's."""
    from sklearn.neighbors import KNeighborsClassifier
    names = meta["train_files"] + meta["val_files"]
    n_train = len(meta["train_files"])
    ours = np.fromfile(os.path.join(a.dir, "embeddings.f32"), dtype="<f4").reshape(len(names), -1)
    model.eval()
    theirs = []
    with torch.no_grad():
        for k in range(0, len(names), 256):
            rgb = np.stack([original_inputs(a.data, n)[0] for n in names[k:k + 256]])
            theirs.append(model.img_embedder(torch.from_numpy(rgb)).numpy())
    theirs = np.concatenate(theirs)
    out = {}
    for who, e in (("cilp", ours), ("PyTorch", theirs)):
        knn = KNeighborsClassifier(15).fit(e[:n_train], meta["train_labels"])
        acc = float((knn.predict(e[n_train:]) == np.array(meta["val_labels"])).mean())
        out[who] = acc
        print(f"class probe (15-NN) of the image embedding after {meta['steps']} steps, {who}: {100 * acc:.2f}%")
    return out


if __name__ == "__main__":
    main()
