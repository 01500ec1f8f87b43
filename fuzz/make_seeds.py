"""Writes the seed inputs of the gnz_open fuzz target into fuzz/seeds/.

    python make_seeds.py LIBZMAP.so     (a Python with numpy: .venv-zarr2)

Inputs are in the target's encoding (fuzz_targets/gnz_open.rs, build_file):
byte 0 selects helpers (1: header framing with a u16 JSON length, 2: a
commit record with a correct CRC and a u16 JSON length, 4: page padding),
byte 0 = 0 is a file as it is. Seeds: files in the original writer's layout
(tests/gnz_interop/gnz_lib.py), files libzmap wrote, files left by a crash
in the middle of a commit (record at the tail, torn header), and compact
framed headers with every dtype kind, names that are not keys, metadata.
The seeds are committed; run this again only to change them.
"""

import json
import os
import struct
import sys
import tempfile
import zlib

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(HERE, "..", "tests", "gnz_interop"))

import numpy as np  # noqa: E402
from gnz_lib import NC_WRITE, Zmap, write_original  # noqa: E402

OUT = os.path.join(HERE, "seeds")


def save(name, data):
    with open(os.path.join(OUT, name), "wb") as f:
        f.write(data)


def raw(path):
    with open(path, "rb") as f:
        return b"\x00" + f.read()


def framed(header, tail=b"", record=None, pad=True):
    """Mode 1 (+2, +4): header JSON framed, optional record JSON."""
    mode = 1 | (2 if record is not None else 0) | (4 if pad else 0)
    hj = json.dumps(header, sort_keys=True).encode()
    out = bytes([mode]) + struct.pack("<H", len(hj))
    if record is not None:
        rj = json.dumps(record, sort_keys=True).encode()
        out += struct.pack("<H", len(rj))
    out += hj + tail
    if record is not None:
        out += rj
    return out


def arr(offset, shape, dtype="|u1", order=None):
    a = {"offset": offset, "shape": shape, "dtype": dtype}
    if order:
        a["order"] = order
    return a


def main():
    if len(sys.argv) != 2:
        print(__doc__, file=sys.stderr)
        return 2
    lib = sys.argv[1]
    Zmap.load(lib)
    os.makedirs(OUT, exist_ok=True)
    work = tempfile.mkdtemp()
    rng = np.random.default_rng(5)

    # The original writer's layout.
    p = os.path.join(work, "orig.gnz")
    write_original(p, [("temperature", np.arange(15, dtype="<f8").reshape(3, 5)),
                       ("count", np.array(7, dtype="<i4")),
                       ("empty", np.zeros((0,), dtype="<f8"))],
                   {"title": "x", "n": [1, 2.5, None]})
    save("original-small", raw(p))

    # Compact framed headers (arrays inside the first page).
    body = rng.integers(0, 256, 3000, dtype=np.uint8).tobytes()
    kinds = {
        "/f8": arr(1024, [3, 5], "<f8"), "i4": arr(1144, [], "<i4"),
        "s": arr(1152, [2], "|S3"), "t": arr(1160, [1], "<M8[ns]"),
        "u": arr(1168, [1], "<U2"), "b": arr(1176, [3], "|b1"),
        "c": arr(1184, [1], "<c16"), "f": arr(1200, [2, 2], ">f4", "F"),
        "zero": arr(0, [0, 4], "<i8"), "g/h.i/j": arr(1216, [10], "|u1", "C"),
        "td": arr(1232, [1], "<m8[10us]"), "v": arr(1240, [1], "|V8"),
    }
    save("framed-dtypes", framed({"arrays": kinds, "metadata": {}, "version": 1}, body))
    save("framed-names", framed({"arrays": {
        "a": arr(1024, [4]), "/a": arr(1028, [4]), "x//y": arr(1032, [4]),
        "": arr(1036, [4]), "/b/c": arr(1040, [4]), "/b": arr(1044, [4]),
        "n\u0000ul": arr(1048, [4]), "\u00e9t\u00e9": arr(1052, [4]),
    }, "version": 1}, body))
    save("framed-metadata", framed({"arrays": {"/m": arr(2048, [16])}, "metadata": {
        "zmap": {"generation": 5, "revision": 1}, "attrs": {"k": [1, 2.5, "s", None, True]},
    }, "version": 1, "extra": {"kept": 1}}, body))
    save("framed-empty", framed({}, b""))
    save("framed-record", framed(
        {"arrays": {"/a": arr(1024, [8])}, "metadata": {"zmap": {"generation": 1}}, "version": 1},
        body,
        record={"arrays": {"/a": arr(1024, [8]), "/b": arr(2048, [100])},
                "metadata": {"zmap": {"generation": 2}}, "version": 1}))
    # A record with a torn header (no framing of the header).
    rj = json.dumps({"arrays": {"/r": arr(512, [64])}, "metadata": {"zmap": {"generation": 3}},
                     "version": 1}, sort_keys=True).encode()
    save("record-torn-header", bytes([2 | 4]) + struct.pack("<H", len(rj))
         + b"GNZ1\x40\x00\x00\x00{\"arr" + body[:1000] + rj)

    # libzmap's own files.
    p = os.path.join(work, "zmap.gnz")
    z = Zmap(p, create=True)
    z.write("/.zgroup", b'{"zarr_format": 2}')
    z.define("/empty")
    z.write("/one", b"\x01")
    z.write("/v/0.0", bytes(range(256)) * 2)
    z.write("/v/big", b"\x07" * 5000)
    z.close()
    save("zmap-written", raw(p))

    # Crash states of a commit, as a power loss leaves them (the crash
    # simulation, src/store/gnz/crash_tests.rs, checks them all): the new
    # commit's record at the tail, and at offset 0 the previous header
    # (after the commit point), half of the new one over it (torn), or the
    # new one complete (before the record is cut away).
    with open(p, "rb") as f:
        old = f.read()
    q = os.path.join(work, "next.gnz")
    with open(q, "wb") as g:
        g.write(old)
    z = Zmap(q, mode=NC_WRITE)
    z.write("/one", b"grown" * 300)
    z.write("/new/obj", b"n" * 40)
    z.remove("/v/0.0")
    z.close()
    with open(q, "rb") as f:
        new = f.read()
    old_header = old[:8 + struct.unpack("<I", old[4:8])[0]]
    new_len = struct.unpack("<I", new[4:8])[0]
    new_header, new_json = new[:8 + new_len], new[8:8 + new_len]
    generation = json.loads(new_json)["metadata"]["zmap"]["generation"]
    trailer = b"GNZ1COPY" + struct.pack("<QQ", len(new_json), generation)
    trailer += struct.pack("<I", zlib.crc32(new_json + trailer)) + bytes(4)
    body = new + bytes(-len(new) % 8)
    half = new_header[:len(new_header) // 2]
    for name, at_zero in (("after-copy", old_header), ("mid-header", half),
                          ("after-header", new_header)):
        state = bytearray(body)
        state[:len(at_zero)] = at_zero
        save(f"crash-{name}", b"\x00" + bytes(state) + new_json + trailer)
    z = Zmap(p, mode=NC_WRITE)
    z.compact()
    z.close()
    save("zmap-compacted", raw(p))
    print(f"seeds: {len(os.listdir(OUT))} files in {OUT}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
