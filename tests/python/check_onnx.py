#!/usr/bin/env python3
"""Runs cilp's ONNX exports in onnxruntime and compares their logits with cilp's.

Usage: check_onnx.py DIR

DIR is what `cargo test -p cilp-interop --test onnx_check` writes (set CILP_PY_CHECK_OUT to keep
it): `MODEL.onnx` with its sidecar `MODEL.onnx.json`, cilp's logits on a batch of 3
(`MODEL.logits.npy`), and the inputs (`rgb.npy`, `xyza.npy` [3, 4, 64, 64], `depth.npy`
[3, 1, 64, 64], float32).

For every export:
1. `onnx.checker.check_model(full_check=True)` passes, where the `onnx` package is installed.
2. onnxruntime's logits on the batch of 3 equal cilp's within 1e-4 (max |diff| printed), and
   they differ between the 3 samples by at least 1e-3 (a layout bug would show).
3. Batches of 1 and 5 run (the batch axis is dynamic) and give the batch-3 rows back.

Needs: pip install onnxruntime numpy   (onnx optional)
"""

import json
import pathlib
import sys

import numpy as np
import onnxruntime as ort

TOLERANCE = 1e-4


def main(folder):
    folder = pathlib.Path(folder)
    try:
        import onnx  # optional: structural check
    except ImportError:
        onnx = None
        print("note: the onnx package is not installed; onnx.checker skipped")
    inputs = {name: np.load(folder / f"{name}.npy") for name in ("rgb", "xyza", "depth")}
    exports = sorted(folder.glob("*.onnx"))
    failures = []
    for path in exports:
        model = path.stem
        side = json.loads(pathlib.Path(str(path) + ".json").read_text())
        info = side["onnx"]
        if onnx is not None:
            onnx.checker.check_model(onnx.load(str(path)), full_check=True)
        opts = ort.SessionOptions()
        opts.graph_optimization_level = ort.GraphOptimizationLevel.ORT_DISABLE_ALL
        sess = ort.InferenceSession(str(path), opts, providers=["CPUExecutionProvider"])
        names = [i.name for i in sess.get_inputs()]
        assert names == info["inputs"], (model, names, info["inputs"])
        assert [o.name for o in sess.get_outputs()] == [info["output"]], model
        want = np.load(folder / f"{model}.logits.npy")
        feed = {n: inputs[n] for n in names}
        got = sess.run(None, feed)[0]
        assert got.shape == want.shape, (model, got.shape, want.shape)
        diff = float(np.abs(got.astype(np.float64) - want).max())
        # Dynamic batch: 1 and 5 samples; the rows must be the batch-3 rows.
        one = sess.run(None, {n: x[:1] for n, x in feed.items()})[0]
        five = sess.run(None, {n: np.concatenate([x, x[:2]]) for n, x in feed.items()})[0]
        rows = np.concatenate([got, got[:2]])
        batch_ok = one.shape == (1, want.shape[1]) and five.shape == (5, want.shape[1])
        batch_diff = max(float(np.abs(one - got[:1]).max()), float(np.abs(five - rows).max())) if batch_ok else float("inf")
        # The logits must depend on the input well beyond the tolerance, or a layout bug
        # (flatten order, a transpose) could hide in it.
        spread = float(np.abs(want - want.mean(axis=0)).max())
        ok = diff <= TOLERANCE and batch_diff <= TOLERANCE and spread >= 10 * TOLERANCE
        status = "ok  " if ok else "FAIL"
        print(
            f"{status} {model:<34} max|diff| vs cilp {diff:.1e} (|logits| <= {np.abs(want).max():.3g}, "
            f"spread over the batch {spread:.3g}); "
            f"batches 1 and 5: shapes {one.shape} {five.shape}, max|diff| vs batch 3 {batch_diff:.1e}"
        )
        if not ok:
            failures.append(model)
    if failures:
        print(f"FAIL {len(failures)} of {len(exports)} ONNX exports: {', '.join(failures)}")
        return 1
    print(f"ok   all {len(exports)} ONNX exports (onnxruntime {ort.__version__})")
    return 0


if __name__ == "__main__":
    if len(sys.argv) != 2:
        print(__doc__)
        sys.exit(2)
    sys.exit(main(sys.argv[1]))
