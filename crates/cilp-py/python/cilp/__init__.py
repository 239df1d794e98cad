"""cilp from Python: the same Rust core as the ``cilp`` command line (same configs, same
deterministic results, crash-safe run folders), for notebooks.

>>> import cilp
>>> cilp.generate("data/small", per_class=200)
>>> ds = cilp.load_dataset("data/small")
>>> run = cilp.train("late-fusion", "data/small", out="runs", epochs=3, lr=1e-3)
>>> run.metrics_frame()          # pandas DataFrame (or run.metrics, a list of dicts)

Long calls release the GIL; Ctrl-C (KeyboardInterrupt) stops training before its next step and
leaves a resumable run (``resume=True`` continues it). Progress shows with tqdm when it is
installed (``progress=False`` to hide it, or pass a callable that receives a dict).
"""

from __future__ import annotations

import json
import os
import sys
from pathlib import Path
from typing import Any, Callable, Dict, Iterable, List, Optional, Sequence, Union

from . import _cilp
from ._cilp import CilpError, Dataset

__all__ = [
    "CilpError",
    "Dataset",
    "Run",
    "ablation",
    "assess",
    "fusion",
    "generate",
    "load_dataset",
    "models",
    "runs",
    "train",
]
__version__ = _cilp.__version__

PathLike = Union[str, "os.PathLike[str]"]
Progress = Union[bool, Callable[[Dict[str, Any]], None]]


def _toml_load(path: Path) -> Dict[str, Any]:
    if sys.version_info >= (3, 11):
        import tomllib
    else:  # pragma: no cover - Python < 3.11
        import tomli as tomllib  # type: ignore[no-redef]
    with open(path, "rb") as f:
        return tomllib.load(f)


def _mode(resume: bool, force: bool) -> str:
    if resume and force:
        raise ValueError("resume and force exclude each other")
    return "resume" if resume else "force" if force else "new"


class _Bar:
    """A tqdm bar per run (when tqdm is installed), fed by the Rust progress counters."""

    def __init__(self) -> None:
        try:
            from tqdm.auto import tqdm  # type: ignore[import-not-found]
        except ImportError:  # no tqdm: no bar
            tqdm = None
        self._tqdm = tqdm
        self._bar = None
        self._key = None

    def __call__(self, p: Dict[str, Any]) -> None:
        if self._tqdm is None or not p["run"] or not p["steps"]:
            return
        key = (p["run"], p["epoch"])
        if key != self._key:
            self.close()
            self._key = key
            self._bar = self._tqdm(total=p["steps"], desc=f"{p['run']} {p['epoch']}/{p['epochs']}", leave=False)
        self._bar.n = p["step"]
        if p["loss"] == p["loss"]:  # not NaN
            self._bar.set_postfix(loss=f"{p['loss']:.4f}", refresh=False)
        self._bar.refresh()

    def close(self) -> None:
        if self._bar is not None:
            self._bar.close()
            self._bar = None


def _callback(progress: Progress):
    if callable(progress):
        return progress, None
    if progress:
        bar = _Bar()
        return bar, bar
    return None, None


def _supervised(call, progress: Progress):
    cb, bar = _callback(progress)
    try:
        return call(cb)
    finally:
        if bar is not None:
            bar.close()


def generate(out: PathLike, per_class: int = 1000, seed: int = 0, preset: str = "default", force: bool = False) -> Dict[str, Any]:
    """Writes the synthetic dataset (``cilp generate``) into ``out``; returns its report."""
    return json.loads(_cilp.generate(os.fspath(out), per_class, seed, preset, force))


def load_dataset(path: PathLike, limit_per_class: Optional[int] = None) -> Dataset:
    """Reads a dataset folder (``cubes/``, ``spheres/``) into memory.

    The result has ``rgb`` (N, 64, 64, 4) uint8, ``depth`` (N, 64, 64) float32, ``labels`` (N,)
    int64, ``classes``, ``stems``, ``xyza(convention)`` (N, 4, 64, 64) float32,
    ``split(kind, val_fraction, seed)`` and ``report``.
    """
    return Dataset(os.fspath(path), limit_per_class)


def _dataset_report(self: Dataset) -> Dict[str, Any]:
    return json.loads(self.report_json)


Dataset.report = property(_dataset_report)  # type: ignore[attr-defined]


def models() -> List[Dict[str, Any]]:
    """The model zoo: name, inputs, outputs and exact parameter count of every model."""
    return json.loads(_cilp.models())


class Run:
    """A run directory: its config, summary and per-epoch metrics (read from its files)."""

    def __init__(self, path: PathLike) -> None:
        self.path = Path(path)
        if not (self.path / "config.toml").is_file():
            raise CilpError(f"{self.path}: not a run directory (no config.toml)")

    def __repr__(self) -> str:
        s = self.summary
        return f"Run({str(self.path)!r}, model={s.get('model')!r}, status={s.get('status')!r})"

    @property
    def name(self) -> str:
        return self.path.name

    @property
    def config(self) -> Dict[str, Any]:
        """``config.toml``, as a dict."""
        return _toml_load(self.path / "config.toml")

    @property
    def summary(self) -> Dict[str, Any]:
        """``summary.json`` (status, best epoch, best validation loss, times, ...)."""
        p = self.path / "summary.json"
        return json.loads(p.read_text()) if p.is_file() else {}

    @property
    def metrics(self) -> List[Dict[str, Any]]:
        """One dict per epoch and split (``metrics.jsonl``)."""
        p = self.path / "metrics.jsonl"
        if not p.is_file():
            return []
        rows = []
        for line in p.read_text().splitlines():
            try:
                rows.append(json.loads(line))
            except json.JSONDecodeError:  # a torn last line of a killed run
                break
        return rows

    def metrics_frame(self):
        """The metrics as a pandas DataFrame (needs pandas), ``extra`` columns flattened."""
        import pandas as pd  # type: ignore[import-not-found]

        rows = []
        for r in self.metrics:
            r = dict(r)
            r.update(r.pop("extra", {}) or {})
            rows.append(r)
        return pd.DataFrame(rows)

    def predict(self, files: Iterable[PathLike], which: str = "best") -> List[Dict[str, Any]]:
        """Classifies RGB ``.png`` / LiDAR ``.npy`` files with the ``best`` (or ``last``) epoch."""
        return json.loads(_cilp.predict(os.fspath(self.path), [os.fspath(f) for f in files], which))


def _apply(config: Dict[str, Any], overrides: Dict[str, Any], nested: Sequence[str] = ("data",)) -> Dict[str, Any]:
    """Sets ``overrides`` on a config dict: top-level keys, or keys of a nested table (``data``)."""
    for key, value in overrides.items():
        if key in config:
            config[key] = value
            continue
        for table in nested:
            if isinstance(config.get(table), dict) and key in config[table]:
                config[table][key] = value
                break
        else:
            known = sorted(list(config) + [k for t in nested if isinstance(config.get(t), dict) for k in config[t]])
            raise TypeError(f"unknown setting {key!r}; known: {', '.join(known)}")
    return config


def train(
    model: str,
    data: PathLike,
    out: PathLike = "runs",
    name: Optional[str] = None,
    resume: bool = False,
    force: bool = False,
    progress: Progress = True,
    **config: Any,
) -> Run:
    """Trains ``model`` on ``data`` into ``out/<name or model>`` (``cilp train``) and returns the run.

    Keyword arguments set the run config, as ``cilp train`` saves it in ``config.toml``: epochs,
    batch_size, lr, lr_schedule, seed, xyza, ... and the data table's limit_per_class,
    val_fraction, split_seed, ... The same config gives the same numbers as the CLI.
    """
    cfg = _apply(json.loads(_cilp.default_train_config(model, os.fspath(data))), config)
    run_dir = _supervised(
        lambda cb: _cilp.train(json.dumps(cfg), os.fspath(out), name, _mode(resume, force), cb), progress
    )
    return Run(run_dir)


def runs(path: PathLike = "runs") -> List[Dict[str, Any]]:
    """Every run under ``path`` (and one level inside study folders): name, path, summary,
    config and derived stats, as ``cilp runs list --json`` gives them."""
    return json.loads(_cilp.runs(os.fspath(path)))


def compare(path: PathLike = "runs") -> List[Dict[str, Any]]:
    """The runs under ``path`` side by side: one flat dict per run (name, model, status, best
    validation loss, final accuracy, seconds), sorted by best validation loss."""
    rows = []
    for r in runs(path):
        s = r.get("summary") or {}
        stats = r.get("stats") or {}
        rows.append({"name": r["name"], "model": s.get("model"), "status": s.get("status"), **stats})
    return sorted(rows, key=lambda r: (r.get("best_val_loss") is None, r.get("best_val_loss") or 0.0))


def _study_settings(preset: str, data: PathLike, seeds, lr_schedule, overrides: Dict[str, Any]) -> Dict[str, Any]:
    s = json.loads(_cilp.study_settings(preset, os.fspath(data)))
    if seeds is not None:
        s["seeds"] = list(seeds)
    if lr_schedule is not None:
        s["lr_schedule"] = lr_schedule
    if overrides:
        _apply(s, overrides)
        s["preset"] = f"{preset} (overridden)"
    return s


def fusion(
    data: PathLike,
    out: PathLike = "runs/fusion",
    preset: str = "quick",
    models: Optional[Sequence[str]] = None,
    seeds: Optional[Sequence[int]] = None,
    lrs: Optional[Sequence[float]] = None,
    lr_schedules: Optional[Sequence[str]] = None,
    lr_schedule: Optional[str] = None,
    resume: bool = False,
    force: bool = False,
    progress: Progress = True,
    **overrides: Any,
) -> Dict[str, Any]:
    """The fusion study (``cilp fusion``): every model over the same seeds, compared seed by
    seed; with ``lrs`` / ``lr_schedules`` a learning-rate grid. Writes the study folder and
    returns its summary (``summary.json``)."""
    s = _study_settings(preset, data, seeds, lr_schedule, overrides)
    if lrs or lr_schedules:
        points = [(lr, sch) for lr in (lrs or [s["lr"]]) for sch in (lr_schedules or [s.get("lr_schedule", "constant")])]
        if len(points) > 1:
            s["grid"] = [{"lr": lr, "lr_schedule": sch} for lr, sch in points]
        else:
            s["lr"], s["lr_schedule"] = points[0]
    return json.loads(
        _supervised(
            lambda cb: _cilp.study("fusion", json.dumps(s), list(models or []), os.fspath(out), _mode(resume, force), None, cb),
            progress,
        )
    )


def ablation(
    data: PathLike,
    model: str = "late-fusion",
    out: PathLike = "runs/ablation",
    preset: str = "quick",
    seeds: Optional[Sequence[int]] = None,
    fusion_dir: Optional[PathLike] = None,
    lr_schedule: Optional[str] = None,
    resume: bool = False,
    force: bool = False,
    progress: Progress = True,
    **overrides: Any,
) -> Dict[str, Any]:
    """The MaxPool2d-vs-strided ablation of ``model`` (``cilp ablation``); completed runs of the
    same config in ``fusion_dir`` are reused as the MaxPool2d baseline. Returns the summary."""
    s = _study_settings(preset, data, seeds, lr_schedule, overrides)
    reuse = os.fspath(fusion_dir) if fusion_dir is not None else None
    return json.loads(
        _supervised(
            lambda cb: _cilp.study("ablation", json.dumps(s), [model], os.fspath(out), _mode(resume, force), reuse, cb),
            progress,
        )
    )


def assess(
    data: PathLike,
    out: PathLike = "runs/assess",
    preset: str = "quick",
    variant: str = "nvidia",
    resume: bool = False,
    force: bool = False,
    progress: Progress = True,
    **overrides: Any,
) -> Dict[str, Any]:
    """The assessment (``cilp assess``): NVIDIA's graded one (``variant="nvidia"``) or the
    original study's own (``"seed"``). Keyword arguments set its config (``seed``,
    ``batch_size``, and the data table's keys); stage settings are nested tables (``cilp``,
    ``projector``, ...: pass a dict). Returns the summary (``summary.json``)."""
    cfg = json.loads(_cilp.assess_config(preset, variant, os.fspath(data)))
    for key, value in overrides.items():
        if isinstance(value, dict) and isinstance(cfg.get(key), dict):
            cfg[key].update(value)
        else:
            _apply(cfg, {key: value})
    return json.loads(
        _supervised(lambda cb: _cilp.assess(variant, json.dumps(cfg), os.fspath(out), _mode(resume, force), cb), progress)
    )
