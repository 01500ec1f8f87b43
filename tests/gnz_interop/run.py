"""GNZ interop, both directions (scripts/gnz_interop.sh runs this).

    run.py LIBZMAP.so WORKDIR

A. libzmap writes (C API through ctypes), a reader written from Part 1 of
   the format reads: objects of 0 B, 1 B, 4095 B, 4096 B and 5 MiB, keys with
   dots and nesting; every byte, after create, after a flush with the map
   still open (grown, moved, cut, removed objects, a header that outgrows
   its first page), while uncommitted writes are pending (the reader still
   sees the last commit), after close and after compaction.
B. A writer with the original's layout writes (`<f8` [3,5], `<i4` scalars,
   zero-size arrays, names without a leading `/`, a header past 4088 bytes),
   libzmap opens: the right keys, lengths and bytes; after libzmap changes
   one object and commits, the reader still reads every array (the others
   with their dtype, shape and values, and the metadata as it was).

Closes with "gnz-interop: N passed, N failed".
"""

import json
import math
import os
import random
import sys
import traceback

import numpy as np

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from gnz_lib import (NC_WRITE, Zmap, ZmapError, get_array, nbytes_of,  # noqa: E402
                     raw_bytes, read_gnz, read_header, write_original)

passed = 0
failed = 0


def check(name, cond, detail=""):
    global passed, failed
    if cond:
        passed += 1
    else:
        failed += 1
        print(f"FAIL  {name}{': ' + detail if detail else ''}")


def step(name, fn):
    """Runs one scenario; an exception is one more failure."""
    global failed
    before = failed
    try:
        fn()
    except Exception:  # noqa: BLE001 - any error fails the scenario
        failed += 1
        print(f"FAIL  {name}: exception")
        traceback.print_exc(file=sys.stdout)
    print(f"{'PASS' if failed == before else 'FAIL'}  {name}")


def rand_bytes(rng, n):
    return rng.getrandbits(8 * n).to_bytes(n, "little") if n else b""


# ---- A. libzmap -> Part 1 reader --------------------------------------------------------

def reader_view(path):
    """{key: bytes} as the Part 1 reader sees the file, checking each array
    is a zmap object array (|u1, [len], C) and that extents do not overlap."""
    header, arrays = read_gnz(path)
    check(f"{path}: version 1", header.get("version") == 1)
    out = {}
    extents = []
    for name, (info, arr) in arrays.items():
        ok = (info["dtype"] == "|u1" and info["shape"] == [nbytes_of(info)]
              and info.get("order", "C") == "C")
        check(f"{name}: |u1 [len] C", ok, json.dumps(info))
        data = raw_bytes(arr, info)
        out[name] = data
        n = len(data)
        if n >= 4096:
            check(f"{name}: {n} bytes start on a 4096 boundary", info["offset"] % 4096 == 0,
                  str(info["offset"]))
        if n:
            extents.append((info["offset"], info["offset"] + n, name))
    extents.sort()
    with open(path, "rb") as f:
        f.seek(4)
        header_end = 8 + int.from_bytes(f.read(4), "little")
    prev_end, prev = header_end, "the header"
    for start, end, name in extents:
        check(f"{name} does not overlap {prev}", start >= prev_end, f"{start} < {prev_end}")
        prev_end, prev = end, name
    return out


def same_objects(what, got, want):
    check(f"{what}: keys", sorted(got) == sorted(want),
          f"missing {sorted(set(want) - set(got))[:5]}, extra {sorted(set(got) - set(want))[:5]}")
    for key, data in want.items():
        if key in got:
            check(f"{what}: {key} ({len(data)} B) byte for byte", got[key] == data,
                  f"{len(got[key])} B read")


def libzmap_to_reader(work):
    rng = random.Random(20240601)
    path = os.path.join(work, "written-by-libzmap.gnz")
    want = {
        "/.nczarr": b'{"nczarr_format": "2.0.0"}',
        "/empty": b"",
        "/one": b"\x7f",
        "/g/a.b/x.y": rand_bytes(rng, 4095),
        "/g/a.b/page": rand_bytes(rng, 4096),
        "/big/five.mib": rand_bytes(rng, 5 * 1024 * 1024),
        "/meta1/.zarray": b'{"zarr_format": 2, "shape": [3]}',
        "/meta1/.zattrs": b"{}",
        "/meta1/0.0.1": rand_bytes(rng, 100),
        "/d.e.f/.g/h.i.j": rand_bytes(rng, 17),
        "/deep/a/b/c/d/e/f/g/leaf": rand_bytes(rng, 4097),
    }
    z = Zmap(path, create=True)
    for key, data in want.items():
        if data:
            # In a few pieces, the last one first: gaps are filled later.
            cut = len(data) // 3
            z.write(key, data[cut:], start=cut)
            z.write(key, data[:cut])
        else:
            z.define(key)
    z.close()
    same_objects("A after create+close", reader_view(path), want)

    # Changes with the map left open: a flush is a commit the reader sees.
    z = Zmap(path, mode=NC_WRITE)
    check("A libzmap lists what it wrote", z.objects() == sorted(want), str(z.objects()[:5]))
    grown = rand_bytes(rng, 9000)
    z.write("/one", grown[1:], start=1)                  # 1 B -> 9000 B: moves
    want["/one"] = want["/one"] + grown[1:]
    patch = rand_bytes(rng, 3000)
    at = 3 * 1024 * 1024 - 1000                          # inside the 5 MiB object
    z.write("/big/five.mib", patch, start=at)
    b = want["/big/five.mib"]
    want["/big/five.mib"] = b[:at] + patch + b[at + len(patch):]
    z.write("/g/a.b/x.y", b"\x01\x02", start=4095)      # 4095 -> 4097 B
    want["/g/a.b/x.y"] += b"\x01\x02"
    z.remove("/g/a.b/page")
    del want["/g/a.b/page"]
    z.truncate("/deep/a/b/c/d/e/f/g/leaf", 10)
    want["/deep/a/b/c/d/e/f/g/leaf"] = want["/deep/a/b/c/d/e/f/g/leaf"][:10]
    # Enough keys that the header outgrows its first page (objects move).
    for i in range(150):
        key = f"/many/chunk.{i:04d}.with.a.rather.long.name/{i % 7}.{i % 5}"
        data = rand_bytes(rng, 1 + (i * 37) % 700)
        z.write(key, data)
        want[key] = data
    z.flush()
    got = reader_view(path)
    with open(path, "rb") as f:
        f.seek(4)
        header_len = int.from_bytes(f.read(4), "little")
    check("A header past the first page after the flush", 8 + header_len > 4096, str(header_len))
    same_objects("A after flush (map open)", got, want)

    committed = dict(want)
    z.write("/one", b"", start=0)
    z.write("/empty", b"now\x00full")
    want["/empty"] = b"now\x00full"
    for i in range(0, 150, 3):
        key = f"/many/chunk.{i:04d}.with.a.rather.long.name/{i % 7}.{i % 5}"
        z.remove(key)
        del want[key]
    patch = rand_bytes(rng, 5000)
    z.write("/big/five.mib", patch, start=100)           # committed bytes, not committed yet
    b = want["/big/five.mib"]
    want["/big/five.mib"] = b[:100] + patch + b[5100:]
    # Uncommitted changes touch nothing the committed header references.
    same_objects("A after uncommitted writes (map open)", reader_view(path), committed)
    z.close()
    same_objects("A after close", reader_view(path), want)

    z = Zmap(path, mode=NC_WRITE)
    before, after = z.compact()
    check("A compaction reports sizes", before >= after > 0, f"{before} -> {after}")
    check("A file size after compaction", os.path.getsize(path) == after,
          f"{os.path.getsize(path)} != {after}")
    z.close()
    same_objects("A after compaction", reader_view(path), want)

    z = Zmap(path)
    check("A libzmap reads its own keys back", z.objects() == sorted(want))
    check("A libzmap reads its own bytes back",
          all(z.read(k) == v for k, v in want.items()))
    z.close()


# ---- B. original layout -> libzmap ------------------------------------------------------

def original_arrays(rng, extra=0):
    arrays = [
        ("temperature", np.arange(15, dtype="<f8").reshape(3, 5) * 1.5 - 3),
        ("count", np.array(42, dtype="<i4")),
        ("offset", np.array(-7, dtype="<i4")),
        ("empty", np.zeros((0,), dtype="<f8")),
        ("empty2d", np.zeros((0, 3), dtype="<i4")),
        ("raw", np.frombuffer(rand_bytes(rng, 4096), dtype="|u1")),
        ("grid/x", np.linspace(0, 1, 7, dtype="<f4")),
        ("/absolute", np.array([1, -2, 3], dtype="<i2")),
        ("a.b.c", np.array([2 ** 40, 7], dtype="<u8")),
        ("big", np.frombuffer(rand_bytes(rng, 24000), dtype="<f8").reshape(1000, 3)),
        ("flags", np.array([True, False, True], dtype="|b1")),
        ("z", np.array([1 + 2j, -3j], dtype="<c16")),
        ("labels", np.array([b"abc", b"de"], dtype="|S3")),
    ]
    for i in range(extra):
        name = f"group_{i // 10}/a_rather_long_variable_name_{i:03d}"
        arrays.append((name, np.full((i % 4 + 1,), i, dtype="<i8")))
    return arrays


def key_of(name):
    return name if name.startswith("/") else "/" + name


def check_libzmap_reads(what, path, arrays):
    for mode in (0, NC_WRITE):
        z = Zmap(path, mode=mode)
        want = sorted(key_of(n) for n, _ in arrays)
        check(f"{what}: libzmap keys (mode {mode})", z.objects() == want,
              f"{z.objects()[:6]} != {want[:6]}")
        for name, data in arrays:
            k = key_of(name)
            if not z.exists(k):
                continue
            check(f"{what}: {k} length", z.length(k) == data.nbytes,
                  f"{z.length(k)} != {data.nbytes}")
            check(f"{what}: {k} bytes", z.read(k) == data.tobytes())
        z.close()


def check_reader_reads(what, path, arrays, changed=None):
    """The reader sees every array with its dtype/shape/values, except
    `changed` = (name, dtype, shape, values)."""
    header, got = read_gnz(path)
    for name, data in arrays:
        if changed and name == changed[0]:
            continue
        check(f"{what}: {name} listed", name in got)
        if name not in got:
            continue
        info, arr = got[name]
        check(f"{what}: {name} dtype/shape/order kept",
              (info["dtype"], info["shape"], info.get("order", "C"))
              == (data.dtype.str, list(data.shape), "C"), json.dumps(info))
        check(f"{what}: {name} values", np.asarray(arr).tobytes() == data.tobytes())
    if changed:
        name, dtype, shape, values = changed
        info, arr = got[name]
        check(f"{what}: {name} is {dtype} {shape}",
              (info["dtype"], info["shape"]) == (dtype, shape), json.dumps(info))
        check(f"{what}: {name} new values", np.asarray(arr).tobytes() == values.tobytes())
    check(f"{what}: no other arrays", sorted(got) == sorted(n for n, _ in arrays),
          str(sorted(set(got) - {n for n, _ in arrays})))
    return header


METADATA = {
    "title": "original writer",
    "nested": {"list": [1, 2.5, "x", None, True], "empty": {}},
    "unicode": "h\u00e9llo \u2603 \U0001F600",
    "ints": [0, -1, 2 ** 31, 2 ** 53 + 1, -(2 ** 63), 2 ** 64 - 1],
}


def original_small_header(work):
    rng = random.Random(7)
    path = os.path.join(work, "original-small.gnz")
    arrays = original_arrays(rng)
    header = write_original(path, arrays, METADATA)
    info = header["arrays"]
    check("B small: first array at 4096", info["temperature"]["offset"] == 4096)
    check("B small: zero-size arrays share the next offset",
          info["empty"]["offset"] == info["empty2d"]["offset"] == info["raw"]["offset"])
    check("B small: file ends on a 4096 boundary", os.path.getsize(path) % 4096 == 0)
    check("B small: scalar shape []", info["count"]["shape"] == [])
    check_reader_reads("B small (as written)", path, arrays)
    check_libzmap_reads("B small", path, arrays)

    # One object changed in place, same length: dtype/shape/order stay.
    new_t = np.arange(15, dtype="<f8").reshape(3, 5) ** 2
    z = Zmap(path, mode=NC_WRITE)
    z.write("/temperature", new_t.tobytes())
    z.flush()
    z.close()
    arrays = [(n, new_t if n == "temperature" else d) for n, d in arrays]
    h = check_reader_reads("B small after a same-length rewrite", path, arrays)
    check("B small: metadata kept after a commit", strip_zmap(h["metadata"]) == METADATA,
          json.dumps(strip_zmap(h["metadata"]))[:300])
    check_libzmap_reads("B small after rewrite", path, arrays)

    # One object grows: it becomes |u1 [len], the rest stay as they were.
    z = Zmap(path, mode=NC_WRITE)
    z.write("/count", b"\x01\x02\x03\x04\x05\x06", start=4)
    z.close()
    grown = np.frombuffer(np.array(42, dtype="<i4").tobytes() + b"\x01\x02\x03\x04\x05\x06",
                          dtype="|u1")
    check_reader_reads("B small after growth", path, arrays,
                       changed=("count", "|u1", [10], grown))


def original_large_header(work):
    rng = random.Random(8)
    path = os.path.join(work, "original-large.gnz")
    arrays = original_arrays(rng, extra=90)
    header = write_original(path, arrays, METADATA)
    blob_len = len(json.dumps(header, sort_keys=True))
    first = min(i["offset"] for i in header["arrays"].values())
    check("B large: header over 4088 bytes", blob_len > 4088, str(blob_len))
    check("B large: data starts past the first page", first >= 8192 and first % 4096 == 0,
          str(first))
    check_reader_reads("B large (as written)", path, arrays)
    check_libzmap_reads("B large", path, arrays)

    # Change one object (a different length) and commit.
    z = Zmap(path, mode=NC_WRITE)
    name = "group_3/a_rather_long_variable_name_031"
    values = np.frombuffer(rand_bytes(rng, 5000), dtype="|u1")
    z.write("/" + name, values.tobytes())
    z.close()
    h = check_reader_reads("B large after one change", path, arrays,
                           changed=(name, "|u1", [5000], values))
    check("B large: metadata kept after a commit", strip_zmap(h["metadata"]) == METADATA)
    check_libzmap_reads("B large after change", path,
                        [(n, values if n == name else d) for n, d in arrays])


def strip_zmap(metadata):
    return {k: v for k, v in metadata.items() if k != "zmap"}


def original_metadata_numbers(work):
    """Numbers of the original's metadata survive a libzmap commit exactly:
    Python reads back the same ints and the same floats."""
    rng = random.Random(9)
    path = os.path.join(work, "original-numbers.gnz")
    floats = [rng.random() * 10.0 ** rng.randint(-300, 300) for _ in range(200)]
    floats += [0.1, 1 / 3, 2.0 ** -1074, 1.7976931348623157e308, -0.0, 5e-324, 1e16]
    md = {"floats": floats, "bigint": 2 ** 70, "negbig": -(2 ** 65) - 1}
    write_original(path, [("a", np.arange(3, dtype="<f8"))], md)
    z = Zmap(path, mode=NC_WRITE)
    z.write("/a", b"\x00" * 24)
    z.close()
    got = read_header(path)["metadata"]
    changed = [(a, b) for a, b in zip(floats, got["floats"])
               if a != b or math.copysign(1, a) != math.copysign(1, b)]
    check("B numbers: floats kept exactly", not changed,
          f"{len(changed)} of {len(floats)} changed, e.g. {changed[:2]}")
    for k in ("bigint", "negbig"):
        check(f"B numbers: {k} kept as the same integer",
              type(got[k]) is int and got[k] == md[k], f"{md[k]!r} became {got[k]!r}")


# NaN and Infinity in metadata: Python's json.dumps writes them as bare
# NaN/Infinity/-Infinity (allow_nan is the default) and the original reader
# reads them back; libzmap keeps them as written through its own commits.


def original_non_finite(work):
    """NaN/Infinity metadata: opened, kept through a commit, still readable."""
    path = os.path.join(work, "original-nan.gnz")
    arrays = [("v", np.array([1.0, np.nan], dtype="<f8"))]
    write_original(path, arrays, {"_FillValue": float("nan"), "max": float("inf"),
                                  "min": float("-inf"), "n": [1, float("nan")]})
    read_gnz(path)  # the original kind of reader has no problem
    try:
        z = Zmap(path, mode=NC_WRITE)
    except ZmapError as e:
        check("B NaN metadata: libzmap opens the file", False, str(e))
        return
    got = z.read("/v")
    check("B NaN metadata: libzmap reads the array (NaN bits included)",
          got == arrays[0][1].tobytes(), repr(got))
    z.write("/w", b"x")
    z.close()
    md = read_header(path)["metadata"]
    check("B NaN metadata kept through a commit",
          math.isnan(md.get("_FillValue", 0.0)) and md.get("max") == math.inf
          and md.get("min") == -math.inf and md.get("n", [0, 0])[0] == 1
          and math.isnan(md["n"][1]), repr(md))
    _, back = read_gnz(path)
    check("B NaN metadata: the original reader still reads every array",
          sorted(back) == ["/w", "v"]
          and raw_bytes(back["v"][1], back["v"][0]) == arrays[0][1].tobytes()
          and raw_bytes(back["/w"][1], back["/w"][0]) == b"x", repr(sorted(back)))


def main(argv):
    if len(argv) != 3:
        print(__doc__, file=sys.stderr)
        return 2
    Zmap.load(argv[1])
    work = argv[2]
    os.makedirs(work, exist_ok=True)
    step("A libzmap -> numpy reader", lambda: libzmap_to_reader(work))
    step("B original layout, small header", lambda: original_small_header(work))
    step("B original layout, header past 4088 bytes", lambda: original_large_header(work))
    step("B original metadata numbers survive a commit", lambda: original_metadata_numbers(work))
    step("B original NaN/Infinity metadata", lambda: original_non_finite(work))
    print(f"gnz-interop: {passed} passed, {failed} failed")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
