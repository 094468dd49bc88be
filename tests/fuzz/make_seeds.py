#!/usr/bin/env python3
"""make_seeds.py -- seed corpora for the libFuzzer harnesses (see README.md in this folder).

    python3 tests/fuzz/make_seeds.py /tmp/cp /tmp/cs

/tmp/cp (fuzz_pth): every fixture .pth as a whole file (prefix byte 0), its data.pkl alone (prefix 1),
and hand-made pickles in torch's layout with negative/huge sizes, strides and offsets, a stride-0 view
and a 4-D f16 tensor (prefix 1; the harness wraps them in a zip with storages data/0..3 of 64 bytes).
/tmp/cs (fuzz_safetensors): the fixture .safetensors files. Uses only the standard library.
"""
import glob
import os
import struct
import sys
import zipfile

FIX = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "fixtures", "tensorfile")


def pk_int(x):
    return b"J" + struct.pack("<i", x) if -2**31 <= x < 2**31 else b"\x8a\x08" + struct.pack("<q", x)


def pk_str(s):
    return b"X" + struct.pack("<I", len(s)) + s.encode()


def pk_global(mod, name):
    return b"c" + mod.encode() + b"\n" + name.encode() + b"\n"


def tensor_pickle(shape, stride, offset, numel, storage="FloatStorage", key="0"):
    b = b"\x80\x02}(" + pk_str("w") + pk_global("torch._utils", "_rebuild_tensor_v2") + b"(("
    b += pk_str("storage") + pk_global("torch", storage) + pk_str(key) + pk_str("cpu") + pk_int(numel)
    b += b"tQ" + pk_int(offset) + b"(" + b"".join(pk_int(x) for x in shape) + b"t("
    b += b"".join(pk_int(x) for x in stride) + b"t\x89" + pk_global("collections", "OrderedDict") + b")Rt"
    return b + b"Ru."


def main(cp, cs):
    os.makedirs(cp, exist_ok=True)
    os.makedirs(cs, exist_ok=True)
    for f in glob.glob(os.path.join(FIX, "*.pth")):
        data = open(f, "rb").read()
        open(os.path.join(cp, "raw_" + os.path.basename(f)), "wb").write(b"\x00" + data)
        try:
            z = zipfile.ZipFile(f)
        except zipfile.BadZipFile:
            continue
        pkl = [n for n in z.namelist() if n.endswith("/data.pkl")]
        if pkl:
            try:
                open(os.path.join(cp, "pkl_" + os.path.basename(f)), "wb").write(b"\x01" + z.read(pkl[0]))
            except (NotImplementedError, zipfile.BadZipFile, RuntimeError):
                pass
    seeds = {
        "neg_shape": tensor_pickle([-2, 3], [3, 1], 0, 6),
        "neg_stride": tensor_pickle([2, 3], [-3, 1], 0, 6),
        "neg_offset": tensor_pickle([2, 3], [3, 1], -1, 6),
        "huge_stride": tensor_pickle([2, 3], [2**62, 2**62], 0, 6),
        "huge_shape": tensor_pickle([2**40, 2**40], [1, 1], 0, 6),
        "f16_4d": tensor_pickle([1, 2, 2, 2], [8, 4, 2, 1], 0, 8, "HalfStorage", "3"),
        "stride0": tensor_pickle([1000], [0], 0, 16, "BFloat16Storage", "2"),
    }
    for k, v in seeds.items():
        open(os.path.join(cp, "seed_" + k), "wb").write(b"\x01" + v)
    for f in glob.glob(os.path.join(FIX, "*.safetensors")):
        open(os.path.join(cs, os.path.basename(f)), "wb").write(open(f, "rb").read())


if __name__ == "__main__":
    main(sys.argv[1] if len(sys.argv) > 1 else "/tmp/cp", sys.argv[2] if len(sys.argv) > 2 else "/tmp/cs")
