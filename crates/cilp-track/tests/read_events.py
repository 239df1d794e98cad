#!/usr/bin/env python3
"""Read a cilp-written TensorBoard logdir with the real `tensorboard` package and
check it against the expectations written by tests/tensorboard_interop.rs.

Usage: read_events.py <logdir> <expected.json>

Exit status: 0 ok, 1 mismatch, 3 tensorboard not importable.
"""
import json
import os
import sys

try:
    from tensorboard.backend.event_processing import event_accumulator as ea_mod
    from tensorboard.backend.event_processing import event_file_loader
    from tensorboard.backend.event_processing import plugin_event_accumulator as pea_mod
    from tensorboard.plugins.hparams import metadata as hp_metadata
    from tensorboard.plugins.hparams import api_pb2
    from tensorboard.util import tensor_util
except ImportError as e:  # pragma: no cover
    print(f"tensorboard not importable: {e}", file=sys.stderr)
    sys.exit(3)

failures = []


def check(cond, msg):
    if not cond:
        failures.append(msg)


def pb_value(v):
    kind = v.WhichOneof("kind")
    return {"number_value": v.number_value, "string_value": v.string_value, "bool_value": v.bool_value}.get(kind)


def main():
    logdir, expected_path = sys.argv[1], sys.argv[2]
    with open(expected_path) as f:
        exp = json.load(f)
    run_dir = os.path.join(logdir, exp["run"])

    # ---- legacy EventAccumulator: scalars, images, text tensors, plugin content
    acc = ea_mod.EventAccumulator(run_dir, size_guidance={
        ea_mod.SCALARS: 0, ea_mod.IMAGES: 0, ea_mod.TENSORS: 0, ea_mod.HISTOGRAMS: 0,
        ea_mod.COMPRESSED_HISTOGRAMS: 0, ea_mod.AUDIO: 0,
    })
    acc.Reload()
    tags = acc.Tags()
    # EventAccumulator parses "brain.Event:2" into 2.0; check the raw header too.
    want_version = float(exp["file_version"].split(":")[-1])
    check(acc.file_version == want_version, f"file_version {acc.file_version!r} != {want_version!r}")
    event_files = sorted(f for f in os.listdir(run_dir) if "tfevents" in f)
    check(len(event_files) >= 1, f"no event files in {run_dir}")
    for name in event_files:
        first = next(iter(event_file_loader.EventFileLoader(os.path.join(run_dir, name)).Load()))
        check(first.file_version == exp["file_version"], f"{name}: first event {first}")

    for tag, points in exp["scalars"].items():
        if tag not in tags["scalars"]:
            check(False, f"scalar tag {tag} missing; have {tags['scalars']}")
            continue
        got = [(e.step, e.value) for e in acc.Scalars(tag)]
        want = [(int(s), float(v)) for s, v in points]
        check(got == want, f"scalar {tag}: got {got}, want {want}")

    for tag, img in exp["images"].items():
        if tag not in tags["images"]:
            check(False, f"image tag {tag} missing; have {tags['images']}")
            continue
        evs = acc.Images(tag)
        check(len(evs) == 1, f"image {tag}: {len(evs)} events")
        e = evs[-1]
        check(e.step == img["step"], f"image {tag} step {e.step} != {img['step']}")
        check((e.width, e.height) == (img["width"], img["height"]),
              f"image {tag} dims {(e.width, e.height)} != {(img['width'], img['height'])}")
        check(e.encoded_image_string == bytes.fromhex(img["png_hex"]), f"image {tag}: PNG bytes differ")

    for tag, text in exp["texts"].items():
        if tag not in tags["tensors"]:
            check(False, f"text tag {tag} missing; have {tags['tensors']}")
            continue
        arr = tensor_util.make_ndarray(acc.Tensors(tag)[-1].tensor_proto)
        got = arr.item().decode("utf-8")
        check(got == text, f"text {tag}: {got!r} != {text!r}")
        check(tag in acc.PluginTagToContent("text"), f"text {tag} lacks text plugin metadata")

    # ---- hparams plugin data
    hp = exp["hparams"]
    content = acc.PluginTagToContent("hparams")
    check(hp_metadata.SESSION_START_INFO_TAG in content, f"no session_start_info; have {list(content)}")
    if hp_metadata.SESSION_START_INFO_TAG in content:
        ssi = hp_metadata.parse_session_start_info_plugin_data(content[hp_metadata.SESSION_START_INFO_TAG])
        got = {k: pb_value(v) for k, v in ssi.hparams.items()}
        check(got == hp["values"], f"hparams {got} != {hp['values']}")
        check(ssi.group_name == hp["group_name"], f"group_name {ssi.group_name!r}")
        check(ssi.start_time_secs > 0, "start_time_secs not set")
    if hp_metadata.EXPERIMENT_TAG in content:
        e = hp_metadata.parse_experiment_plugin_data(content[hp_metadata.EXPERIMENT_TAG])
        check([m.name.tag for m in e.metric_infos] == hp["metrics"],
              f"experiment metrics {[m.name.tag for m in e.metric_infos]} != {hp['metrics']}")
        check(sorted(h.name for h in e.hparam_infos) == sorted(hp["values"]),
              f"experiment hparams {[h.name for h in e.hparam_infos]}")
    else:
        check(not hp["metrics"], "no experiment summary")
    if hp.get("status"):
        check(hp_metadata.SESSION_END_INFO_TAG in content, "no session_end_info")
        if hp_metadata.SESSION_END_INFO_TAG in content:
            sei = hp_metadata.parse_session_end_info_plugin_data(content[hp_metadata.SESSION_END_INFO_TAG])
            check(api_pb2.Status.Name(sei.status) == hp["status"], f"status {sei.status}")

    # ---- the data path the TensorBoard server uses (data_compat migration)
    pacc = pea_mod.EventAccumulator(run_dir, size_guidance={pea_mod.TENSORS: 0})
    pacc.Reload()
    ptags = pacc.Tags()["tensors"]
    for tag in list(exp["scalars"]) + list(exp["images"]) + list(exp["texts"]):
        check(tag in ptags, f"plugin accumulator lacks {tag}")
    for tag, points in exp["scalars"].items():
        if tag in ptags:
            got = [(e.step, float(tensor_util.make_ndarray(e.tensor_proto).item())) for e in pacc.Tensors(tag)]
            want = [(int(s), float(v)) for s, v in points]
            check(got == want, f"plugin scalar {tag}: got {got}, want {want}")

    # ---- best effort: the hparams dashboard backend itself (internal API)
    try:
        from tensorboard import context
        from tensorboard.backend.event_processing import data_provider, plugin_event_multiplexer
        from tensorboard.plugins import base_plugin
        from tensorboard.plugins.hparams import backend_context
    except ImportError as e:
        print(f"note: hparams backend check skipped: {e}")
    else:
        mux = plugin_event_multiplexer.EventMultiplexer()
        mux.AddRunsFromDirectory(logdir)
        mux.Reload()
        prov = data_provider.MultiplexerDataProvider(mux, logdir)
        bctx = backend_context.Context(base_plugin.TBContext(logdir=logdir, data_provider=prov, multiplexer=mux))
        rctx = context.RequestContext()
        try:
            md = bctx.hparams_metadata(rctx, "")
            experiment = bctx.experiment_from_metadata(rctx, "", True, md, bctx.hparams_from_data_provider(rctx, "", None))
        except (TypeError, AttributeError) as e:
            print(f"note: hparams backend API differs ({e}); check skipped")
        else:
            names = sorted(h.name for h in experiment.hparam_infos)
            check(names == sorted(hp["values"]), f"hparams dashboard sees {names}")
            check(exp["run"] in md and hp_metadata.SESSION_START_INFO_TAG in md[exp["run"]],
                  f"hparams dashboard runs: {list(md)}")
            print(f"hparams dashboard backend sees hparams {names}")

    if failures:
        print("FAILED:\n  " + "\n  ".join(failures))
        sys.exit(1)
    print(f"ok: {sum(len(v) for v in exp['scalars'].values())} scalar points, "
          f"{len(exp['images'])} images, {len(exp['texts'])} texts, {len(hp['values'])} hparams")


if __name__ == "__main__":
    main()
