"""The Python API against the Rust core and the CLI: arrays equal the reader's files, a training
from Python equals the CLI's bit for bit, studies and errors behave as documented.

Run by crates/cilp-py/tests/pytest.rs (which builds the package from the cdylib cargo made and
passes CILP_BIN, the cilp binary, and CILP_TEST_DATA, a small generated dataset)."""

import json
import os
import signal
import subprocess
import threading
from pathlib import Path

import numpy as np
import pytest

import cilp

BIN = os.environ["CILP_BIN"]
DATA = Path(os.environ["CILP_TEST_DATA"])


def test_version_and_zoo():
    assert cilp.__version__
    zoo = {m["name"]: m for m in cilp.models()}
    assert zoo["late-fusion"]["parameters"] == 13_147_202
    assert zoo["seed-lidar-classifier"]["parameters"] == 6_676_927


def test_dataset_arrays_equal_the_files():
    ds = cilp.load_dataset(DATA)
    n = len(ds)
    assert n == 24 and ds.classes == ["cubes", "spheres"]
    assert ds.rgb.shape == (n, 64, 64, 4) and ds.rgb.dtype == np.uint8
    assert ds.depth.shape == (n, 64, 64) and ds.depth.dtype == np.float32
    assert ds.labels.tolist() == [0] * 12 + [1] * 12
    # The depth of sample i is its .npy file, bit for bit.
    for i in (0, 13):
        cls = ds.classes[ds.labels[i]]
        npy = np.load(DATA / cls / "lidar" / f"{ds.stems[i]}.npy")
        assert np.array_equal(npy.astype(np.float32), ds.depth[i])
    xyza = ds.xyza("nvidia")
    assert xyza.shape == (n, 4, 64, 64) and xyza.dtype == np.float32
    # A = 1 where the LiDAR hit something (depth < 50), else 0.
    hit = ds.depth < 50.0
    assert np.array_equal(xyza[:, 3] == 1.0, hit)
    # NVIDIA's formula from the class's angle files (rows = azimuth, columns = zenith).
    for i in (0, 13):
        cls = ds.classes[ds.labels[i]]
        az = np.load(DATA / cls / "azimuth.npy").astype(np.float64)[:, None]
        ze = np.load(DATA / cls / "zenith.npy").astype(np.float64)[None, :]
        d = ds.depth[i].astype(np.float64)
        want = np.stack([d * np.sin(-az), d * np.cos(-az), d * np.sin(-ze)])
        assert np.allclose(xyza[i, :3], want, rtol=1e-5, atol=1e-4)
    # The original study's convention scales hits by 1/50 and zeroes the rest.
    seed = ds.xyza("seed")
    assert np.all(seed[:, :3][np.broadcast_to(~hit[:, None], seed[:, :3].shape)] == 0.0)
    with pytest.raises(cilp.CilpError, match="XYZA"):
        ds.xyza("bogus")
    train, val = ds.split("ratio", val_fraction=0.25, seed=51)
    assert len(train) + len(val) == n and not set(train) & set(val)
    assert np.array_equal(ds.split("ratio", 0.25, 51)[0], train), "seeded"
    report = ds.report
    assert isinstance(report, dict)
    with pytest.raises(cilp.CilpError, match="unknown split"):
        ds.split("bogus")


def test_missing_dataset_names_the_path(tmp_path):
    missing = tmp_path / "nope"
    with pytest.raises(cilp.CilpError) as e:
        cilp.load_dataset(missing)
    assert str(missing) in str(e.value)


def _learning(run_dir):
    rows = [json.loads(line) for line in Path(run_dir, "metrics.jsonl").read_text().splitlines()]
    return [(r["epoch"], r["split"], r["loss"], r["accuracy"]) for r in rows]


def test_training_from_python_equals_the_cli(tmp_path):
    seen = []
    run = cilp.train(
        "early-fusion", DATA, out=tmp_path / "py", epochs=2, batch_size=8, lr=1e-3, seed=7, progress=seen.append
    )
    subprocess.run(
        [BIN, "train", "--model", "early-fusion", "--data", str(DATA), "--out", str(tmp_path / "cli"),
         "--epochs", "2", "--batch-size", "8", "--lr", "1e-3", "--seed", "7"],
        check=True, capture_output=True,
    )
    cli = tmp_path / "cli" / "early-fusion"
    assert run.summary["status"] == "completed"
    assert run.config == cilp.Run(cli).config
    assert _learning(run.path) == _learning(cli), "bit-identical metrics"
    assert [r["epoch"] for r in run.metrics if r["split"] == "train"] == [1, 2]
    frame = run.metrics_frame()
    assert list(frame["epoch"]) == [r["epoch"] for r in run.metrics]
    # Predictions from the best checkpoint, as `cilp predict` gives them.
    pngs = sorted((DATA / "cubes" / "rgb").glob("*.png"))[:2]
    npys = [DATA / "cubes" / "lidar" / (p.stem + ".npy") for p in pngs]
    files = [str(f) for f in pngs + npys]
    preds = run.predict(files)
    assert [p["input"] for p in preds] == files and all(p["prediction"] in ("cubes", "spheres") for p in preds)
    cli_preds = subprocess.run([BIN, "predict", "--checkpoint", str(cli), "--json", *files], check=True, capture_output=True, text=True)
    assert [json.loads(line) for line in cli_preds.stdout.splitlines()] == preds
    # The progress callback saw the run move.
    assert any(p["run"] == "early-fusion" and p["step"] > 0 for p in seen), seen[-3:]
    # Refuses to overwrite; resume reads the completed run back.
    with pytest.raises(cilp.CilpError, match="already"):
        cilp.train("early-fusion", DATA, out=tmp_path / "py", epochs=2, batch_size=8, seed=7, progress=False)
    again = cilp.train("early-fusion", DATA, out=tmp_path / "py", epochs=2, batch_size=8, lr=1e-3, seed=7, resume=True, progress=False)
    assert _learning(again.path) == _learning(cli)
    listed = {r["name"] for r in cilp.runs(tmp_path / "py")}
    assert listed == {"early-fusion"}


def test_unknown_setting_is_refused_by_name():
    with pytest.raises(TypeError, match="epochz"):
        cilp.train("late-fusion", DATA, epochz=3)
    with pytest.raises(cilp.CilpError, match="bogus-model"):
        cilp.train("bogus-model", DATA)


def test_keyboard_interrupt_leaves_a_resumable_run(tmp_path):
    # Ctrl-C from another thread (as a notebook's interrupt button sends SIGINT to the kernel),
    # at the first progress report (every 100 ms) from epoch 2 on. An epoch of this tiny dataset
    # can pass between two reports, so the run has many epochs: the stop lands in one of them.
    epochs = 20

    def interrupt(p):
        if p["epoch"] >= 2:
            os.kill(os.getpid(), signal.SIGINT)

    # Python raises KeyboardInterrupt only with its own SIGINT handler, which it does not install
    # when started with SIGINT ignored (a job started in the background by a non-interactive shell).
    previous = signal.signal(signal.SIGINT, signal.default_int_handler)
    try:
        with pytest.raises(KeyboardInterrupt):
            cilp.train("early-fusion", DATA, out=tmp_path, epochs=epochs, batch_size=4, seed=3, progress=interrupt)
    finally:
        signal.signal(signal.SIGINT, previous)
    run = cilp.Run(tmp_path / "early-fusion")
    assert run.summary["status"] == "interrupted"
    kept = [r["epoch"] for r in run.metrics if r["split"] == "train"]
    assert kept == list(range(1, len(kept) + 1)) and 1 <= len(kept) < epochs, kept
    done = cilp.train("early-fusion", DATA, out=tmp_path, epochs=epochs, batch_size=4, seed=3, resume=True, progress=False)
    assert done.summary["status"] == "completed"
    whole = cilp.train("early-fusion", DATA, out=tmp_path / "whole", epochs=epochs, batch_size=4, seed=3, progress=False)
    assert _learning(done.path) == _learning(whole.path)


def test_fusion_study_and_grid(tmp_path):
    s = cilp.fusion(
        DATA, out=tmp_path / "fusion", models=["early-fusion", "intermediate-add"], seeds=[51, 52],
        epochs=1, batch_size=8, limit_per_class=12, progress=False,
    )
    assert s["study"] == "fusion" and len(s["models"]) == 2
    assert (tmp_path / "fusion" / "results.md").is_file()
    g = cilp.fusion(
        DATA, out=tmp_path / "grid", models=["early-fusion"], seeds=[51, 52], epochs=1, batch_size=8,
        lrs=[1e-3, 1e-5], progress=False,
    )
    assert [m["model"] for m in g["models"]] == ["early-fusion-lr1e-3-constant", "early-fusion-lr1e-5-constant"]
    assert g["columns"][0] == "rank"
