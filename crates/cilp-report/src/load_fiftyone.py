#!/usr/bin/env python3
"""Load a cilp FiftyOne export as a grouped FiftyOne dataset.

Written by `cilp_report::fiftyone::export_fiftyone` next to `samples.json`, `rgb/` and `lidar/`.
Each sample pair becomes one group with two slices:

  * ``rgb``   - the 64x64 RGB PNG
  * ``lidar`` - the LiDAR hit points: a ``.fo3d`` scene holding the PCD file (FiftyOne >= 0.24),
                or the ``.pcd`` file itself with ``--pcd-slices`` / older FiftyOne

Both slices carry ``ground_truth`` (``fo.Classification``), ``label`` (0 cubes, 1 spheres),
``stem`` and the split as a tag (``train`` / ``val``).

Usage:
    pip install fiftyone
    python load_fiftyone.py [--name NAME] [--pcd-slices] [--launch]
"""

import argparse
import json
import os

import fiftyone as fo


def main():
    here = os.path.dirname(os.path.abspath(__file__))
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--name", default=None, help="dataset name (default: from samples.json)")
    parser.add_argument("--pcd-slices", action="store_true", help="use the .pcd files directly as the lidar slice")
    parser.add_argument("--launch", action="store_true", help="open the FiftyOne App when done")
    args = parser.parse_args()

    with open(os.path.join(here, "samples.json"), encoding="utf-8") as f:
        manifest = json.load(f)
    name = args.name or manifest["name"]
    use_scenes = hasattr(fo, "Scene") and hasattr(fo, "PointCloud") and not args.pcd_slices

    dataset = fo.Dataset(name, overwrite=True)
    dataset.add_group_field("group", default="rgb")
    samples = []
    for s in manifest["samples"]:
        group = fo.Group()
        rgb_path = os.path.join(here, s["rgb"])
        pcd_path = os.path.join(here, s["lidar"])
        lidar_path = pcd_path
        if use_scenes:
            lidar_path = os.path.splitext(pcd_path)[0] + ".fo3d"
            scene = fo.Scene()
            scene.add(fo.PointCloud("lidar", pcd_path))
            scene.write(lidar_path)
        common = dict(
            ground_truth=fo.Classification(label=s["class"]),
            label=s["label"],
            stem=s["stem"],
            lidar_points=s["points"],
            tags=[s["split"]],
        )
        samples.append(fo.Sample(filepath=rgb_path, group=group.element("rgb"), **common))
        samples.append(fo.Sample(filepath=lidar_path, group=group.element("lidar"), **common))
    dataset.add_samples(samples)
    dataset.default_group_slice = "rgb"
    dataset.info = {k: v for k, v in manifest.items() if k != "samples"}
    dataset.save()
    print(dataset)
    print("tags:", dataset.count_sample_tags())
    if args.launch:
        session = fo.launch_app(dataset)
        session.wait()


if __name__ == "__main__":
    main()
