#!/usr/bin/env python3
"""Writes the small seed corpus of the `pytorch` fuzz target (fuzz/corpus/pytorch/).

No torch needed: stand-in `torch` modules make `pickle` emit exactly the globals and
persistent ids `torch.save` writes (protocol 2, `_rebuild_tensor_v2`, `FloatStorage`,
`OrderedDict`), packed in the three containers the loader reads: ZIP (torch >= 1.6), the
legacy pickle stream and a plain pickle. Also hostile seeds (a `posix.system` payload, an
extension-registry opcode, a STACK_GLOBAL) and truncated/corrupt variants.

    python3 fuzz/make_pytorch_seeds.py
"""
import collections
import io
import os
import pickle
import struct
import sys
import types
import zipfile

OUT = os.path.join(os.path.dirname(os.path.abspath(__file__)), "corpus", "pytorch")

torch = types.ModuleType("torch")
utils = types.ModuleType("torch._utils")


def _rebuild_tensor_v2(*args):
    raise RuntimeError("stand-in")


_rebuild_tensor_v2.__module__ = "torch._utils"
_rebuild_tensor_v2.__qualname__ = "_rebuild_tensor_v2"
utils._rebuild_tensor_v2 = _rebuild_tensor_v2


class FloatStorage:
    pass


class DoubleStorage:
    pass


FloatStorage.__module__ = DoubleStorage.__module__ = "torch"
torch.FloatStorage, torch.DoubleStorage = FloatStorage, DoubleStorage
torch._utils = utils
sys.modules["torch"], sys.modules["torch._utils"] = torch, utils


class Storage:
    def __init__(self, key, cls, numel):
        self.key, self.cls, self.numel = key, cls, numel


class Tensor:
    def __init__(self, storage, shape, offset=0):
        self.storage, self.shape, self.offset = storage, shape, offset

    def __reduce__(self):
        stride, acc = [], 1
        for d in reversed(self.shape):
            stride.insert(0, acc)
            acc *= d
        return (_rebuild_tensor_v2,
                (self.storage, self.offset, tuple(self.shape), tuple(stride), False, collections.OrderedDict()))


class Pickler(pickle.Pickler):
    def persistent_id(self, obj):
        if isinstance(obj, Storage):
            return ("storage", obj.cls, obj.key, "cpu", obj.numel)
        return None


def dumps(obj):
    buf = io.BytesIO()
    Pickler(buf, protocol=2).dump(obj)
    return buf.getvalue()


def state_dict():
    s0, s1 = Storage("0", FloatStorage, 6), Storage("1", DoubleStorage, 2)
    sd = collections.OrderedDict()
    sd["layer.weight"] = Tensor(s0, [2, 3])
    sd["layer.bias"] = Tensor(s1, [2])
    sd["layer.view"] = Tensor(s0, [2], offset=4)
    data = {"0": struct.pack("<6f", *range(6)), "1": struct.pack("<2d", 0.5, -0.5)}
    return sd, data


def write(name, data):
    with open(os.path.join(OUT, name), "wb") as f:
        f.write(data)


def zip_checkpoint(pkl, data, root="archive/"):
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w", zipfile.ZIP_STORED) as z:
        z.writestr(root + "data.pkl", pkl)
        z.writestr(root + "byteorder", "little")
        for k, v in data.items():
            z.writestr(root + "data/" + k, v)
        z.writestr(root + "version", "3\n")
    return buf.getvalue()


def legacy_checkpoint(sd, data):
    out = io.BytesIO()
    for header in (0x1950A86A20F9469CFC6C, 1001,
                   {"protocol_version": 1001, "little_endian": True,
                    "type_sizes": {"short": 2, "int": 4, "long": 4}}):
        pickle.dump(header, out, protocol=2)
    keys = []

    class LegacyPickler(Pickler):
        def persistent_id(self, obj):
            if isinstance(obj, Storage):
                keys.append(obj.key) if obj.key not in keys else None
                return ("storage", obj.cls, obj.key, "cpu", obj.numel, None)
            return None

    LegacyPickler(out, protocol=2).dump(sd)
    pickle.dump(keys, out, protocol=2)
    for k in keys:
        raw = data[k]
        numel = len(raw) // (4 if k == "0" else 8)
        out.write(struct.pack("<q", numel))
        out.write(raw)
    return out.getvalue()


def main():
    os.makedirs(OUT, exist_ok=True)
    sd, data = state_dict()
    pkl = dumps(sd)
    good_zip = zip_checkpoint(pkl, data)
    write("valid_zip.pt", good_zip)
    write("valid_zip_root.pt", zip_checkpoint(pkl, data, root=""))
    write("valid_legacy.pt", legacy_checkpoint(sd, data))
    write("valid_plain_pickle.pt", dumps(collections.OrderedDict([("a", 1), ("b", [1.5, "x"])])))
    # Protocol 4 framing, memo and STACK_GLOBAL (as torch.save(..., pickle_protocol=4)).
    p4 = io.BytesIO()
    Pickler(p4, protocol=4).dump(sd)
    write("valid_zip_protocol4.pt", zip_checkpoint(p4.getvalue(), data))
    # Hostile: a payload that would run a shell command in Python, spliced before the data.
    evil = b"\x80\x02cposix\nsystem\nX\x04\x00\x00\x00true\x85R0" + pkl[2:]
    write("bad_posix_system.pt", zip_checkpoint(evil, data))
    write("bad_exec_stack_global.pt",
          b"\x80\x04\x8c\x08builtins\x94\x8c\x04exec\x94\x93\x8c\x04pass\x85R.")
    write("bad_ext1.pt", b"\x80\x02\x82\x01)R.")
    # Corrupt: truncated ZIP, wrong storage size, a huge claimed tensor, garbage.
    write("bad_truncated_zip.pt", good_zip[: len(good_zip) // 2])
    write("bad_short_storage.pt", zip_checkpoint(pkl, {"0": b"\0" * 8, "1": data["1"]}))
    huge = Storage("0", FloatStorage, 1 << 40)
    write("bad_huge_tensor.pt", zip_checkpoint(dumps({"w": Tensor(huge, [1 << 20, 1 << 20])}), data))
    write("bad_opcode.pt", b"\x80\x02\xff.")


if __name__ == "__main__":
    main()
