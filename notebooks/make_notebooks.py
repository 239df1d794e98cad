import nbformat as nbf
from nbformat.v4 import new_notebook, new_markdown_cell, new_code_cell

SETUP = '''import os
from pathlib import Path
import cilp

# CI runs these notebooks on a tiny dataset (CILP_NOTEBOOK_SMALL=1); by default they use the
# dataset the main job generates (data/default), made here if it is missing.
SMALL = bool(os.environ.get("CILP_NOTEBOOK_SMALL"))
DATA = Path(os.environ.get("CILP_DATA", "data/default"))
RUNS = Path(os.environ.get("CILP_RUNS", "runs/notebooks"))
if not DATA.exists():
    cilp.generate(DATA, per_class=100 if SMALL else 10000)
print("cilp", cilp.__version__, "| data", DATA, "| small" if SMALL else "")'''

def nb(title, intro, cells):
    n = new_notebook()
    n.metadata["kernelspec"] = {"name": "python3", "display_name": "Python 3", "language": "python"}
    n.cells = [new_markdown_cell(f"# {title}\n\n{intro}"), new_code_cell(SETUP)]
    for kind, text in cells:
        n.cells.append(new_markdown_cell(text) if kind == "md" else new_code_cell(text))
    return n

explore = nb("01 · Dataset exploration",
 "The original's notebook 01 looked at the data with FiftyOne: the two classes, RGB images, LiDAR depth maps and their point clouds. Here the same with `cilp.load_dataset` and matplotlib.",
 [("code", '''import numpy as np
import matplotlib.pyplot as plt

ds = cilp.load_dataset(DATA, limit_per_class=200 if not SMALL else None)
print(len(ds), "pairs; classes", ds.classes, "; per class", np.bincount(ds.labels))
print("rgb", ds.rgb.shape, ds.rgb.dtype, "| depth", ds.depth.shape, ds.depth.dtype)'''),
  ("md", "A few samples of each class: the RGB image and the LiDAR depth map (no return = 50 m)."),
  ("code", '''fig, axes = plt.subplots(2, 4, figsize=(10, 5))
for row, c in enumerate(ds.classes):
    idx = np.flatnonzero(ds.labels == row)[:2]
    for k, i in enumerate(idx):
        axes[row, 2 * k].imshow(ds.rgb[i, :, :, :3]); axes[row, 2 * k].set_title(f"{c} {ds.stems[i]} rgb")
        axes[row, 2 * k + 1].imshow(np.minimum(ds.depth[i], 50), cmap="viridis"); axes[row, 2 * k + 1].set_title("depth")
for a in axes.flat: a.axis("off")
plt.tight_layout(); plt.show()'''),
  ("md", "LiDAR hit statistics per class and one point cloud from the XYZA tensor the models see."),
  ("code", '''hits = (ds.depth < 50).reshape(len(ds), -1).mean(axis=1)
for c, name in enumerate(ds.classes):
    print(f"{name}: LiDAR hit fraction {hits[ds.labels == c].mean():.3f} ± {hits[ds.labels == c].std():.3f}")
xyza = ds.xyza("nvidia")
i = int(np.flatnonzero(ds.labels == 1)[0])
pts = xyza[i, :3][:, xyza[i, 3] > 0].T
fig = plt.figure(figsize=(4, 4)); ax = fig.add_subplot(projection="3d")
ax.scatter(pts[:, 0], pts[:, 1], pts[:, 2], s=2); ax.set_title(f"{ds.classes[1]} {ds.stems[i]}: {len(pts)} points")
plt.show()'''),
  ("code", '''train, val = ds.split("ratio", val_fraction=0.2, seed=51)
print(len(train), "train /", len(val), "validation (seeded, stratified)")
assert len(train) + len(val) == len(ds)'''),
 ])

fusion = nb("02 · Fusion comparison",
 "The original's notebook 02 trained early, late and intermediate fusion models and compared them in Weights & Biases, sweeping Adam lr 1e-4 / 1e-5 / 1e-6, constant and cosine. Here the study runs over seeds and compares the models seed by seed.",
 [("code", '''kw = dict(seeds=[51, 52], epochs=1, batch_size=8, limit_per_class=16) if SMALL else {}
summary = cilp.fusion(DATA, out=RUNS / "fusion", preset="quick", resume=True, **kw)
print(summary["title"])
for n in summary["notes"][1:4]: print("-", n)'''),
  ("code", '''import pandas as pd
pd.DataFrame(summary["rows"], columns=summary["columns"])'''),
  ("code", '''import matplotlib.pyplot as plt
for m in summary["models"]:
    plt.plot(range(1, len(m["mean_val_loss_curve"]) + 1), m["mean_val_loss_curve"], marker="o", label=m["label"])
plt.xlabel("epoch"); plt.ylabel("validation loss (mean over seeds)"); plt.legend(); plt.show()'''),
  ("md", "A learning-rate grid as the original swept it (each point an ordinary run, ranked with the same paired statistics)."),
  ("code", '''grid_kw = dict(models=["late-fusion"], seeds=[51, 52], epochs=1, batch_size=8, limit_per_class=16) if SMALL else dict(models=["late-fusion"], epochs=15)
grid = cilp.fusion(DATA, out=RUNS / "grid", preset="quick", lrs=[1e-4, 1e-5, 1e-6], lr_schedules=["constant", "cosine"], resume=True, **grid_kw)
pd.DataFrame(grid["rows"], columns=grid["columns"])[["rank", "model", "best val loss", "verdict (val loss)"]]'''),
 ])

ablation = nb("03 · Ablation: MaxPool2d vs strided convolutions",
 "The original's notebook 03 replaced MaxPool2d by strided convolutions in the best fusion model. Here the ablation trains the model and its two strided variants over the same seeds.",
 [("code", '''kw = dict(seeds=[51, 52], epochs=1, batch_size=8, limit_per_class=16) if SMALL else {}
summary = cilp.ablation(DATA, model="intermediate-concat", out=RUNS / "ablation", resume=True, **kw)
import pandas as pd
pd.DataFrame(summary["rows"], columns=summary["columns"])'''),
  ("code", '''import matplotlib.pyplot as plt
labels = [m["label"] for m in summary["models"]]
secs = [m["metrics"]["seconds_per_epoch"]["mean"] for m in summary["models"]]
params = [m["parameters"] for m in summary["models"]]
fig, (a, b) = plt.subplots(1, 2, figsize=(9, 3))
a.bar(labels, secs); a.set_ylabel("s / epoch")
b.bar(labels, params); b.set_ylabel("parameters")
plt.tight_layout(); plt.show()'''),
  ("code", '''for run in cilp.compare(RUNS / "ablation"):
    print(run["name"], run["status"], run.get("best_val_loss"))'''),
 ])

assess = nb("04 · Assessment: contrastive pretraining, projector, RGB to LiDAR classifier",
 "NVIDIA's graded assessment (CILP, projector, RGB classification through the LiDAR classifier) and the original study's own variant, as the original's notebook 04 ran them.",
 [("code", '''kw = dict(limit_per_class=16, batch_size=8) if SMALL else {}
small_stages = dict(cilp={"epochs": 1}, lidar={"epochs": 1}, projector={"epochs": 1}, finetune={"epochs": 0}) if SMALL else {}
summary = cilp.assess(DATA, out=RUNS / "assess", preset="quick", force=True, **kw, **small_stages)
print(summary.get("verdict") or summary.get("title"))
for row in summary.get("thresholds", []):
    print(row)'''),
  ("code", '''seed_stages = dict(cilp={"epochs": 1}, lidar={"epochs": 1}, projector={"epochs": 1}) if SMALL else {}
seed = cilp.assess(DATA, out=RUNS / "assess-seed", preset="quick", variant="seed", force=True, **kw, **seed_stages)
print(sorted(seed))'''),
  ("code", '''import matplotlib.pyplot as plt
run = cilp.Run(RUNS / "assess" / "cilp")
df = run.metrics_frame()
val = df[df.split == "val"]
plt.plot(val.epoch, val.loss, marker="o"); plt.xlabel("epoch"); plt.ylabel("CILP validation loss"); plt.show()'''),
 ])

for name, n in [("01_explore", explore), ("02_fusion", fusion), ("03_ablation", ablation), ("04_assessment", assess)]:
    nbf.write(n, f"notebooks/{name}.ipynb")
print("written")
