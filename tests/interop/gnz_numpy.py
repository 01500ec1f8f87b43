"""A GNZ reader in a few lines of numpy, written from the format alone
(the GNZ format, as the original Python writer has it), to check that files libzmap writes stay
readable by the original kind of reader:

    bytes 0..4  b"GNZ1"
    bytes 4..8  header length H, u32 little-endian
    bytes 8..   H bytes of JSON: {"version": 1, "metadata": {...},
                "arrays": {NAME: {"offset", "shape", "dtype", "order"}}}
    array data at absolute offsets, read with numpy.memmap

    gnz_numpy.py FILE.gnz DIR   every array of FILE.gnz equals the file
                                DIR/NAME byte for byte, and every file below
                                DIR is an array of FILE.gnz
    gnz_numpy.py FILE.gnz DIR ARRAY.zarray
                                additionally reads the uncompressed Zarr v2
                                array whose metadata key is given straight
                                from the memory map (chunk keys assembled
                                from the .zarray) and compares it with zarr's
                                reading of DIR
"""

import json
import os
import struct
import sys

import numpy as np


def read_header(path):
    with open(path, "rb") as f:
        magic = f.read(4)
        if magic != b"GNZ1":
            raise SystemExit(f"gnz_numpy: {path}: magic {magic!r} is not GNZ1")
        (length,) = struct.unpack("<I", f.read(4))
        size = os.fstat(f.fileno()).st_size
        if 8 + length > size:
            raise SystemExit(f"gnz_numpy: {path}: header length {length} past the end")
        header = json.loads(f.read(length).decode("utf-8"))
    if header.get("version") != 1 or not isinstance(header.get("arrays"), dict):
        raise SystemExit(f"gnz_numpy: {path}: not a version-1 GNZ header")
    return header, size


def memmap(path, entry, size):
    dtype = np.dtype(entry["dtype"])
    shape = tuple(entry["shape"])
    nbytes = int(np.prod(shape, dtype=np.int64)) * dtype.itemsize
    offset = entry["offset"]
    if offset < 0 or offset + nbytes > size:
        raise SystemExit(f"gnz_numpy: {path}: array at {offset}+{nbytes} past the end")
    if nbytes == 0:
        return np.zeros(shape, dtype=dtype)
    return np.memmap(path, dtype=dtype, mode="r", offset=offset, shape=shape,
                     order=entry.get("order", "C"))


def local_files(root):
    found = {}
    for dirpath, _, files in os.walk(root):
        for name in files:
            full = os.path.join(dirpath, name)
            key = "/" + os.path.relpath(full, root).replace(os.sep, "/")
            found[key] = full
    return found


def compare_all(path, root):
    header, size = read_header(path)
    arrays = header["arrays"]
    files = local_files(root)
    names = {("/" + n.lstrip("/")): n for n in arrays}
    if sorted(names) != sorted(files):
        missing = sorted(set(files) - set(names))
        extra = sorted(set(names) - set(files))
        raise SystemExit(f"gnz_numpy: keys differ: missing {missing}, extra {extra}")
    total = 0
    for key, name in names.items():
        data = memmap(path, arrays[name], size)
        with open(files[key], "rb") as f:
            want = f.read()
        if data.tobytes() != want:
            raise SystemExit(f"gnz_numpy: {key}: bytes differ")
        total += len(want)
    print(f"gnz_numpy: {len(names)} arrays, {total} bytes equal via numpy.memmap")
    return header, size


def read_zarr_array(path, header, size, zarray_key):
    """Assembles an uncompressed, unfiltered Zarr v2 array from memmapped chunks."""
    arrays = {("/" + n.lstrip("/")): e for n, e in header["arrays"].items()}
    meta = json.loads(memmap(path, arrays[zarray_key], size).tobytes())
    if meta.get("compressor") is not None or meta.get("filters"):
        raise SystemExit(f"gnz_numpy: {zarray_key} is compressed")
    dtype = np.dtype(meta["dtype"])
    shape, chunks = meta["shape"], meta["chunks"]
    sep = meta.get("dimension_separator", ".")
    prefix = zarray_key[: -len(".zarray")]
    out = np.full(shape, meta["fill_value"], dtype=dtype)
    grid = [-(-s // c) for s, c in zip(shape, chunks)]
    for index in np.ndindex(*grid):
        key = prefix + sep.join(str(i) for i in index)
        if key not in arrays:
            continue
        raw = memmap(path, arrays[key], size)
        chunk = np.frombuffer(raw, dtype=dtype).reshape(chunks, order=meta["order"])
        region = tuple(slice(i * c, min((i + 1) * c, s))
                       for i, c, s in zip(index, chunks, shape))
        out[region] = chunk[tuple(slice(0, r.stop - r.start) for r in region)]
    return out


def main(argv):
    if len(argv) not in (3, 4):
        print(__doc__, file=sys.stderr)
        return 2
    header, size = compare_all(argv[1], argv[2])
    if len(argv) == 4:
        import zarr

        key = "/" + argv[3].lstrip("/")
        got = read_zarr_array(argv[1], header, size, key)
        name = key[1: -len("/.zarray")]
        want = zarr.open_group(argv[2], mode="r")[name][...]
        if got.dtype != want.dtype or not np.array_equal(got, want):
            raise SystemExit(f"gnz_numpy: {name} from memmapped chunks != zarr's\n{got}\n{want}")
        print(f"gnz_numpy: {name} {got.dtype}{list(got.shape)} from memmapped chunks = zarr's")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
