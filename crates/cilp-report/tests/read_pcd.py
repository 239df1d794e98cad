"""Reads PCD files with pypcd4 (a PCD reader independent of cilp) and prints, as JSON, for each
path: the field names, the point count and all points (float32 values widened to float)."""
import json
import sys

from pypcd4 import PointCloud

out = {}
for path in sys.argv[1:]:
    pc = PointCloud.from_path(path)
    arr = pc.numpy()
    out[path] = {
        "fields": list(pc.fields),
        "points": int(pc.points),
        "data": [[float(v) for v in row] for row in arr.tolist()],
    }
json.dump(out, sys.stdout)
