"""How much class information the CILP image embedding of a seed assessment holds.

The seed assessment's chain (image embedder -> projector -> LiDAR fc3) reads the CILP image
embedder's un-normalised 200-d output. `cilp assess --variant seed` reports one probe of it (the
15-NN vote, `image_embedding_probe` in summary.json); this script adds two that train something
(a logistic regression on standardised embeddings, and an MLP of the projector's shape,
200-1000-500-2, Adam 5e-4, batch 32, 15 epochs, 3 seeds) and checks the 15-NN number
independently (scikit-learn). It needs PyTorch, scikit-learn, Pillow and safetensors.

    cilp export --checkpoint OUT/seed-rgb-to-lidar --out chain.safetensors
    python3 scripts/seed_embedding_probe.py chain.safetensors DATA [threads]

Split as the seed assessment's full preset: per class, the last 320 pairs (sorted names) validate.
Prints one JSON line: {"knn15": ..., "logistic": ..., "mlp_200_1000_500_2": [3 seeds]}.
"""
import sys, json, time
import numpy as np, torch, torch.nn as nn, torch.nn.functional as F
from PIL import Image
from safetensors.torch import load_file
from sklearn.linear_model import LogisticRegression
from sklearn.neighbors import KNeighborsClassifier

w, data = sys.argv[1], sys.argv[2]
torch.set_num_threads(int(sys.argv[3]) if len(sys.argv) > 3 else 2)
sd = {k[len("img_embedder."):]: v for k, v in load_file(w).items() if k.startswith("img_embedder.")}

def embed(x):
    for i in (1, 2, 3):
        x = F.relu(F.conv2d(x, sd[f"conv{i}.weight"], sd[f"conv{i}.bias"], padding=1))
        x = F.conv2d(x, sd[f"down{i}.weight"], sd[f"down{i}.bias"], stride=2, padding=1)
    x = x.reshape(x.shape[0], -1)
    x = F.relu(F.linear(x, sd["fc1.weight"], sd["fc1.bias"]))
    x = F.relu(F.linear(x, sd["fc2.weight"], sd["fc2.bias"]))
    return F.linear(x, sd["fc3.weight"], sd["fc3.bias"])

def load(cls):
    import os
    names = sorted(os.listdir(f"{data}/{cls}/rgb"))
    imgs = np.stack([np.asarray(Image.open(f"{data}/{cls}/rgb/{n}").convert("RGBA")) for n in names])
    return torch.from_numpy(imgs).permute(0, 3, 1, 2).float() / 255.0

t = time.time()
X = {}; Y = {}
for label, cls in enumerate(["cubes", "spheres"]):
    x = load(cls)
    n_train = len(x) - 320
    with torch.no_grad():
        e = torch.cat([embed(x[i:i + 256]) for i in range(0, len(x), 256)]).numpy()
    X.setdefault("train", []).append(e[:n_train]); Y.setdefault("train", []).append(np.full(n_train, label))
    X.setdefault("val", []).append(e[n_train:]); Y.setdefault("val", []).append(np.full(320, label))
Xtr, Ytr = np.concatenate(X["train"]), np.concatenate(Y["train"])
Xva, Yva = np.concatenate(X["val"]), np.concatenate(Y["val"])
print(f"embedded {len(Xtr)} + {len(Xva)} in {time.time()-t:.0f}s", file=sys.stderr)
res = {}
res["knn15"] = float((KNeighborsClassifier(15).fit(Xtr, Ytr).predict(Xva) == Yva).mean())
mu, sd_ = Xtr.mean(0), Xtr.std(0) + 1e-8
lr = LogisticRegression(max_iter=3000).fit((Xtr - mu) / sd_, Ytr)
res["logistic"] = float((lr.predict((Xva - mu) / sd_) == Yva).mean())
accs = []
for seed in (0, 1, 2):
    torch.manual_seed(seed)
    mlp = nn.Sequential(nn.Linear(200, 1000), nn.ReLU(), nn.Linear(1000, 500), nn.ReLU(), nn.Linear(500, 2))
    opt = torch.optim.Adam(mlp.parameters(), 5e-4)
    xt, yt = torch.from_numpy(Xtr), torch.from_numpy(Ytr).long()
    for ep in range(15):
        perm = torch.randperm(len(xt))
        for i in range(0, len(xt), 32):
            b = perm[i:i + 32]
            opt.zero_grad(); F.cross_entropy(mlp(xt[b]), yt[b]).backward(); opt.step()
    with torch.no_grad():
        accs.append(float((mlp(torch.from_numpy(Xva)).argmax(1).numpy() == Yva).mean()))
res["mlp_200_1000_500_2"] = accs
print(json.dumps(res))
