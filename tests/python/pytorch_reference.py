#!/usr/bin/env python3
"""The PyTorch side of cilp's weight interchange, checked with real torch.

Usage: pytorch_reference.py DIR SEED_STATE_DICTS_JSON

DIR is what `cargo test -p cilp-interop --test torch_reference` writes (set CILP_TORCH_CHECK_OUT
to keep it): `cilp/MODEL.safetensors` (+ sidecar) for every zoo classifier, cilp's logits
`cilp/MODEL.logits.npy` on the inputs `cilp/{rgb,xyza,depth}.npy`.

1. cilp -> PyTorch: every export loads with `load_state_dict(strict=True)` into the PyTorch class
   below (the original study's classes, REFERENCE §2 / §7 / §8; NVIDIA's `lidar_cnn.pt`
   Sequential; cilp's own models in the same style), whose `state_dict()` keys, shapes and order
   equal the sidecar's (and, for the original's classes, `seed_state_dicts.json`); PyTorch's
   logits equal cilp's within 1e-4.
2. PyTorch -> cilp: for every model, `torch.manual_seed(1000 + i)`, the class's default init, the
   weights scaled by the same gain cilp's test uses (so the logits depend on the input), saved as
   `torch/MODEL.pt` (torch.save of the state dict) and `torch/MODEL.safetensors`, with inputs
   `torch/{rgb,xyza,depth}.npy` and PyTorch's logits `torch/MODEL.logits.npy`. The Rust test
   loads both files into cilp and compares.

Writes DIR/pytorch_reference.json (max |diff| per model). Needs: pip install torch safetensors numpy
"""

import collections
import json
import pathlib
import sys

import numpy as np
import torch
import torch.nn as nn
import torch.nn.functional as F
from safetensors.torch import load_file, save_file

TOLERANCE = 1e-4


def conv3x3(cin, cout, stride=1):
    return nn.Conv2d(cin, cout, 3, stride=stride, padding=1)


class Embedder(nn.Module):
    """The original's Embedder(in_ch, out): (conv3x3, ReLU, MaxPool2d(2)) x 3 with channels
    25, 50, 100; flatten 6400 (view(B, -1) on NCHW); fc1 1000, ReLU, fc2 100, ReLU, fc3 out."""

    def __init__(self, in_ch, out):
        super().__init__()
        self.conv1 = conv3x3(in_ch, 25)
        self.conv2 = conv3x3(25, 50)
        self.conv3 = conv3x3(50, 100)
        self.pool = nn.MaxPool2d(2)
        self.fc1 = nn.Linear(6400, 1000)
        self.fc2 = nn.Linear(1000, 100)
        self.fc3 = nn.Linear(100, out)

    def trunk(self, x):
        for conv in (self.conv1, self.conv2, self.conv3):
            x = self.pool(F.relu(conv(x)))
        return x

    def forward(self, x):
        x = self.trunk(x)
        x = x.view(x.shape[0], -1)
        return self.fc3(F.relu(self.fc2(F.relu(self.fc1(x)))))


class EmbedderStrided(Embedder):
    """The original's EmbedderStrided(in_ch, out): each pool replaced by a learnable
    Conv2d(C, C, 3, stride 2, padding 1) without ReLU (down1..3, declared after conv1..3)."""

    def __init__(self, in_ch, out):
        super().__init__(in_ch, out)
        del self.pool
        # Re-register the linears after the downs, as the original declares them (state-dict order).
        fc1, fc2, fc3 = self.fc1, self.fc2, self.fc3
        del self.fc1, self.fc2, self.fc3
        self.down1 = conv3x3(25, 25, 2)
        self.down2 = conv3x3(50, 50, 2)
        self.down3 = conv3x3(100, 100, 2)
        self.fc1, self.fc2, self.fc3 = fc1, fc2, fc3

    def trunk(self, x):
        for conv, down in ((self.conv1, self.down1), (self.conv2, self.down2), (self.conv3, self.down3)):
            x = down(F.relu(conv(x)))
        return x


class EmbedderStridedConv(Embedder):
    """cilp's `-strided-conv` variant: the main convolutions have stride 2 and there is no pool."""

    def __init__(self, in_ch, out):
        super().__init__(in_ch, out)
        del self.pool
        for conv in (self.conv1, self.conv2, self.conv3):
            conv.stride = (2, 2)

    def trunk(self, x):
        for conv in (self.conv1, self.conv2, self.conv3):
            x = F.relu(conv(x))
        return x


EMBEDDERS = {"": Embedder, "-strided": EmbedderStrided, "-strided-conv": EmbedderStridedConv}


class LateFusionModel(nn.Module):
    """LateFusionModel[Strided](): rgb_Embedder and lidar_Embedder = Embedder(4, 100);
    concatenate (RGB first) -> classifier = Linear 200->50, ReLU, Linear 50->2."""

    def __init__(self, suffix=""):
        super().__init__()
        self.rgb_Embedder = EMBEDDERS[suffix](4, 100)
        self.lidar_Embedder = EMBEDDERS[suffix](4, 100)
        self.classifier = nn.Sequential(nn.Linear(200, 50), nn.ReLU(), nn.Linear(50, 2))

    def forward(self, rgb, xyza):
        return self.classifier(torch.cat([self.rgb_Embedder(rgb), self.lidar_Embedder(xyza)], dim=1))


class IntermediateFusionModel(nn.Module):
    """IntermediateFusionModel[Strided](mode): rgb_conv1..3, lidar_conv1..3 (then rgb_down1..3,
    lidar_down1..3 when strided), each conv followed by ReLU and the downsampling; fuse the two
    [100, 8, 8] maps (concat RGB first / add / multiply, no activation after), flatten,
    fc1 ->1000, ReLU, fc2 ->100, ReLU, fc3 ->2."""

    def __init__(self, mode, suffix=""):
        super().__init__()
        self.mode, self.suffix = mode, suffix
        stride = 2 if suffix == "-strided-conv" else 1
        for branch in ("rgb", "lidar"):
            for i, (cin, cout) in enumerate(((4, 25), (25, 50), (50, 100)), start=1):
                setattr(self, f"{branch}_conv{i}", conv3x3(cin, cout, stride))
        if suffix == "-strided":
            for branch in ("rgb", "lidar"):
                for i, c in enumerate((25, 50, 100), start=1):
                    setattr(self, f"{branch}_down{i}", conv3x3(c, c, 2))
        self.pool = nn.MaxPool2d(2)
        channels = 200 if mode == "concat" else 100
        self.fc1 = nn.Linear(channels * 8 * 8, 1000)
        self.fc2 = nn.Linear(1000, 100)
        self.fc3 = nn.Linear(100, 2)

    def branch(self, x, name):
        for i in (1, 2, 3):
            x = F.relu(getattr(self, f"{name}_conv{i}")(x))
            if self.suffix == "":
                x = self.pool(x)
            elif self.suffix == "-strided":
                x = getattr(self, f"{name}_down{i}")(x)
        return x

    def forward(self, rgb, xyza):
        a, b = self.branch(rgb, "rgb"), self.branch(xyza, "lidar")
        x = {"concat": lambda: torch.cat([a, b], dim=1), "add": lambda: a + b, "multiply": lambda: a * b}[self.mode]()
        x = x.view(x.shape[0], -1)
        return self.fc3(F.relu(self.fc2(F.relu(self.fc1(x)))))


class EarlyFusion(nn.Module):
    """cilp's early fusion: RGB and XYZA stacked to 8 channels into one Embedder(8, 2) (no prefix)."""

    def __init__(self, suffix=""):
        super().__init__()
        self.net = EMBEDDERS[suffix](8, 2)

    def forward(self, rgb, xyza):
        return self.net(torch.cat([rgb, xyza], dim=1))

    # The keys have no prefix: load into / save from the inner embedder.
    def state_dict(self, *args, **kwargs):
        return self.net.state_dict(*args, **kwargs)

    def load_state_dict(self, sd, strict=True):
        return self.net.load_state_dict(sd, strict=strict)


def nvidia_trunk(in_ch):
    """NVIDIA's conv trunk: (Conv 3x3 pad 1, ReLU, MaxPool2d(2)) x 4, channels 50, 100, 200, 200,
    then Flatten (3200): items 0, 3, 6, 9 hold the weights."""
    layers, c = [], in_ch
    for out in (50, 100, 200, 200):
        layers += [conv3x3(c, out), nn.ReLU(), nn.MaxPool2d(2)]
        c = out
    return nn.Sequential(*layers, nn.Flatten())


def nvidia_lidar_classifier():
    """NVIDIA's `lidar_cnn.pt`: embedder (the trunk on 1-channel raw depth), classifier =
    Linear 3200->100, ReLU, Linear 100->1."""
    return nn.Sequential(
        collections.OrderedDict(
            embedder=nvidia_trunk(1), classifier=nn.Sequential(nn.Linear(3200, 100), nn.ReLU(), nn.Linear(100, 1))
        )
    )


class NvidiaEmbedder(nn.Module):
    """NVIDIA's CILP embedder (cilp's names): embedder (trunk), dense_emb = Linear 3200->100,
    ReLU, Linear 100->200; L2-normalised."""

    def __init__(self, in_ch):
        super().__init__()
        self.embedder = nvidia_trunk(in_ch)
        self.dense_emb = nn.Sequential(nn.Linear(3200, 100), nn.ReLU(), nn.Linear(100, 200))

    def forward(self, x):
        return F.normalize(self.dense_emb(self.embedder(x)), dim=1)


class RgbToLidar(nn.Module):
    """cilp's rgb-to-lidar: img_embedder -> projector (200->1000->500->3200) -> classifier (the
    LiDAR classifier's head, 3200->100->1)."""

    def __init__(self):
        super().__init__()
        self.img_embedder = NvidiaEmbedder(4)
        self.projector = nn.Sequential(
            nn.Linear(200, 1000), nn.ReLU(), nn.Linear(1000, 500), nn.ReLU(), nn.Linear(500, 3200)
        )
        self.classifier = nn.Sequential(nn.Linear(3200, 100), nn.ReLU(), nn.Linear(100, 1))

    def forward(self, rgb):
        return self.classifier(self.projector(self.img_embedder(rgb)))


class Projector(nn.Module):
    """The original's Projector(200, 100): model = Linear 200->1000, ReLU, 1000->500, ReLU, 500->100."""

    def __init__(self, cin, cout):
        super().__init__()
        self.model = nn.Sequential(nn.Linear(cin, 1000), nn.ReLU(), nn.Linear(1000, 500), nn.ReLU(), nn.Linear(500, cout))

    def forward(self, x):
        return self.model(x)


class SeedRgbToLidar(nn.Module):
    """The seed assessment's chain (cilp's names): img_embedder = EmbedderStrided(4, 200) (no
    normalisation), projector = Projector(200, 100), fc3 = the LiDAR classifier's fc3 (100->2),
    no ReLU before it (REFERENCE §7)."""

    def __init__(self):
        super().__init__()
        self.img_embedder = EmbedderStrided(4, 200)
        self.projector = Projector(200, 100)
        self.fc3 = nn.Linear(100, 2)

    def forward(self, rgb):
        return self.fc3(self.projector(self.img_embedder(rgb)))


class Single(nn.Module):
    """A bare embedder on one input (keys without prefix)."""

    def __init__(self, net):
        super().__init__()
        self.net = net

    def forward(self, x):
        return self.net(x)

    def state_dict(self, *args, **kwargs):
        return self.net.state_dict(*args, **kwargs)

    def load_state_dict(self, sd, strict=True):
        return self.net.load_state_dict(sd, strict=strict)


def build(name):
    """The PyTorch model of a zoo classifier, and the key in seed_state_dicts.json (or None)."""
    for suffix in ("-strided-conv", "-strided", ""):
        if name == "late-fusion" + suffix:
            return LateFusionModel(suffix), (name if suffix != "-strided-conv" else None)
        for mode, torch_mode in (("concat", "concat"), ("add", "add"), ("hadamard", "multiply")):
            if name == f"intermediate-{mode}{suffix}":
                return IntermediateFusionModel(torch_mode, suffix), (name if suffix != "-strided-conv" else None)
        if name == "early-fusion" + suffix:
            return EarlyFusion(suffix), None
    return {
        "embedder-rgb": lambda: (Single(Embedder(4, 2)), "embedder(4,2)"),
        "embedder-lidar": lambda: (Single(Embedder(4, 2)), "embedder(4,2)"),
        "seed-lidar-classifier": lambda: (Single(EmbedderStrided(4, 2)), "embedder-strided(4,2)"),
        "nvidia-lidar-classifier": lambda: (nvidia_lidar_classifier(), None),
        "rgb-to-lidar": lambda: (RgbToLidar(), None),
        "seed-rgb-to-lidar": lambda: (SeedRgbToLidar(), None),
    }[name]()


def gain(name):
    """The weight gain cilp's test applies (`common::with_gain`): keeps the signal O(1) through
    the layers so the logits depend on the input."""
    return {"nvidia-lidar-classifier": 1.8, "rgb-to-lidar": 5.0}.get(name, 6**0.5)


def shapes(sd):
    return [(k, list(v.shape)) for k, v in sd.items()]


def main(folder, reference_path):
    torch.set_num_threads(max(1, torch.get_num_threads()))
    folder = pathlib.Path(folder)
    reference = json.loads(pathlib.Path(reference_path).read_text())["models"]
    cilp_dir, torch_dir = folder / "cilp", folder / "torch"
    torch_dir.mkdir(exist_ok=True)
    names = sorted(p.name[: -len(".safetensors")] for p in cilp_dir.glob("*.safetensors"))
    report, failures = {"torch": torch.__version__, "tolerance": TOLERANCE, "cilp_to_torch": {}}, []

    # 1. cilp -> PyTorch.
    inputs = {n: torch.from_numpy(np.load(cilp_dir / f"{n}.npy")) for n in ("rgb", "xyza", "depth")}
    for name in names:
        model, ref_key = build(name)
        side = json.loads((cilp_dir / f"{name}.safetensors.json").read_text())
        own = shapes(model.state_dict())
        assert own == [(k, list(s)) for k, s in side["state_dict"]], f"{name}: the PyTorch class's state_dict differs from the sidecar's"
        if ref_key is not None:
            assert own == [(k, list(s)) for k, s in reference[ref_key]["state_dict"]], f"{name}: differs from seed_state_dicts.json"
        model.load_state_dict(load_file(str(cilp_dir / f"{name}.safetensors")), strict=True)
        model.eval()
        with torch.no_grad():
            got = model(*[inputs[i["name"]] for i in side["inputs"]]).double().numpy()
        want = np.load(cilp_dir / f"{name}.logits.npy")
        diff = float(np.abs(got - want).max())
        spread = float(np.abs(want - want.mean(axis=0)).max())
        ok = diff <= TOLERANCE and spread >= 10 * TOLERANCE
        report["cilp_to_torch"][name] = {"max_abs_diff": diff, "logit_spread": spread, "strict_load": True}
        print(f"{'ok  ' if ok else 'FAIL'} cilp->torch {name:<34} strict load, max|diff| {diff:.1e} (spread over the batch {spread:.3g})")
        if not ok:
            failures.append(name)

    # 2. PyTorch -> cilp: weights made by torch.
    torch.manual_seed(7)
    made_inputs = {
        "rgb": torch.rand(3, 4, 64, 64),
        "xyza": torch.rand(3, 4, 64, 64) * 2 - 1,
        "depth": (torch.rand(3, 1, 64, 64) * 60).clamp(max=50),
    }
    for n, x in made_inputs.items():
        np.save(torch_dir / f"{n}.npy", x.numpy())
    for i, name in enumerate(names):
        torch.manual_seed(1000 + i)
        model, _ = build(name)
        with torch.no_grad():
            for p in model.parameters():
                if p.dim() >= 2:
                    p.mul_(gain(name))
        model.eval()
        side = json.loads((cilp_dir / f"{name}.safetensors.json").read_text())
        with torch.no_grad():
            logits = model(*[made_inputs[i["name"]] for i in side["inputs"]])
        sd = {k: v.contiguous() for k, v in model.state_dict().items()}
        torch.save(sd, torch_dir / f"{name}.pt")
        save_file(sd, str(torch_dir / f"{name}.safetensors"))
        np.save(torch_dir / f"{name}.logits.npy", logits.numpy())
        print(f"made torch/{name}.pt and .safetensors ({sum(v.numel() for v in sd.values())} parameters)")

    (folder / "pytorch_reference.json").write_text(json.dumps(report, indent=1) + "\n")
    if failures:
        print(f"FAIL {len(failures)} of {len(names)} cilp exports: {', '.join(failures)}")
        return 1
    print(f"ok   all {len(names)} cilp exports load in PyTorch {torch.__version__} (strict) with cilp's logits")
    return 0


if __name__ == "__main__":
    if len(sys.argv) != 3:
        print(__doc__)
        sys.exit(2)
    sys.exit(main(sys.argv[1], sys.argv[2]))
