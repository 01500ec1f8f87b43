"""zarr-python side of the zmap interop tests (zarr 2.x and 3.x).

    zarr_io.py write DIR        writes a group of arrays (several dtypes,
                                chunkings, compressors, nested groups,
                                attributes, never-written chunks) to DIR
    zarr_io.py check DIR        opens DIR with zarr and checks every array,
                                attribute and group against what `write`
                                writes; nothing more, nothing less
    zarr_io.py quickstart DIR   checks the dataset libzmap's C quickstart
                                writes: temperature = float32 0..15, 4x4

zarr 2 writes format 2 (DirectoryStore); zarr 3 writes format 3 (LocalStore).
A DIR ending in `.zip` is a ZipStore instead (stored entries; deflated ones
when it ends in `.deflated.zip`).
Exit status 0 when everything matched; otherwise the first difference is
printed and the status is 1.
"""

import sys
import zipfile

import numpy as np
import zarr

ZARR3 = int(zarr.__version__.split(".")[0]) >= 3

# (path, dtype, shape, chunks, compressed, fill_value, region written or None for all)
ARRAYS = [
    ("i1", "i1", (37,), (10,), True, 0, None),
    ("f4", "<f4", (100,), (33,), False, 0, None),
    ("f8", "<f8", (12, 9), (5, 5), True, 0, None),
    ("flags", "bool", (50,), (16,), True, False, None),
    ("c16", "<c16", (9,), (4,), False, 0, None),
    ("sparse", "<f8", (40,), (10,), True, -1.0, (10, 20)),
    ("grid/u2", "<u2", (20, 30), (7, 8), True, 0, None),
    ("grid/i4", ">i4", (16, 16), (16, 16), False, 0, None),
    ("grid/deep/i8", "<i8", (5, 6, 7), (2, 3, 4), True, 0, None),
]

GROUP_ATTRS = {"title": "zmap interop", "n": 3, "nested": {"a": [1, 2]}}


def expected(dtype, shape):
    n = int(np.prod(shape))
    base = np.arange(n, dtype=np.int64)
    kind = np.dtype(dtype).kind
    if kind == "b":
        values = base % 3 == 0
    elif kind == "c":
        values = base + 1j * (n - base)
    elif kind == "f":
        values = base * 0.5 - 7.25
    else:
        size = np.dtype(dtype).itemsize
        span = min(2 ** (8 * size), 2 ** 31)
        values = (base * 7919) % span
        if kind == "i":
            values -= span // 2
        if size == 8:
            values *= 1000003  # beyond 32 bits
    return np.asarray(values).astype(dtype).reshape(shape)


def full_expected(dtype, shape, fill, region):
    values = expected(dtype, shape)
    if region is None:
        return values
    out = np.full(shape, fill, dtype=dtype)
    out[region[0]:region[1]] = values[region[0]:region[1]]
    return out


def zip_store(path, mode):
    """zarr's ZipStore over the archive `path` (closed by the caller)."""
    compression = zipfile.ZIP_DEFLATED if path.endswith(".deflated.zip") else zipfile.ZIP_STORED
    if ZARR3:
        return zarr.storage.ZipStore(path, mode=mode, compression=compression)
    return zarr.ZipStore(path, mode=mode, compression=compression)


OPEN_STORES = []


def open_group(path, mode):
    if path.endswith(".zip"):
        store = zip_store(path, mode)
        OPEN_STORES.append(store)
        if ZARR3:
            return zarr.open_group(store=store, mode=mode,
                                   **({} if mode == "r" else {"zarr_format": 3}))
        return zarr.open_group(store=store, mode=mode)
    if ZARR3:
        store = zarr.storage.LocalStore(path, read_only=(mode == "r"))
        if mode == "r":
            return zarr.open_group(store=store, mode="r")
        return zarr.open_group(store=store, mode=mode, zarr_format=3)
    return zarr.open_group(store=zarr.DirectoryStore(path), mode=mode)


def write(path):
    root = open_group(path, "w")
    root.attrs.update(GROUP_ATTRS)
    for name, dtype, shape, chunks, compressed, fill, region in ARRAYS:
        group = root
        parts = name.split("/")
        for part in parts[:-1]:
            group = group.require_group(part)
        if ZARR3:
            kwargs = {} if compressed else {"compressors": None}
            array = group.create_array(
                parts[-1], shape=shape, chunks=chunks, dtype=dtype,
                fill_value=fill, **kwargs)
        else:
            kwargs = {} if compressed else {"compressor": None}
            array = group.create_dataset(
                parts[-1], shape=shape, chunks=chunks, dtype=dtype,
                fill_value=fill, **kwargs)
        array.attrs["units"] = "u-" + parts[-1]
        values = expected(dtype, shape)
        if region is None:
            array[...] = values
        else:
            array[region[0]:region[1]] = values[region[0]:region[1]]
    root["grid"].attrs["role"] = "container"


def fail(message):
    print("zarr_io: " + message, file=sys.stderr)
    sys.exit(1)


def array_paths(group, prefix=""):
    found = []
    for name, array in group.arrays():
        found.append(prefix + name)
    for name, sub in group.groups():
        found.extend(array_paths(sub, prefix + name + "/"))
    return found


def check(path):
    root = open_group(path, "r")
    if dict(root.attrs) != GROUP_ATTRS:
        fail(f"group attributes {dict(root.attrs)} != {GROUP_ATTRS}")
    if root["grid"].attrs.get("role") != "container":
        fail("attribute of group /grid lost")
    want = sorted(a[0] for a in ARRAYS)
    have = sorted(array_paths(root))
    if have != want:
        fail(f"arrays {have} != {want}")
    for name, dtype, shape, chunks, compressed, fill, region in ARRAYS:
        array = root[name]
        if array.shape != shape or tuple(array.chunks) != chunks:
            fail(f"{name}: shape/chunks {array.shape}/{array.chunks}")
        if np.dtype(array.dtype) != np.dtype(dtype).newbyteorder("=") and \
                np.dtype(array.dtype) != np.dtype(dtype):
            fail(f"{name}: dtype {array.dtype} != {dtype}")
        if array.attrs.get("units") != "u-" + name.split("/")[-1]:
            fail(f"{name}: attributes {dict(array.attrs)}")
        values = array[...]
        want_values = full_expected(dtype, shape, fill, region)
        if not np.array_equal(values, want_values):
            fail(f"{name}: values differ:\n{values}\n!=\n{want_values}")
    print(f"zarr {zarr.__version__}: {len(ARRAYS)} arrays equal in {path}")


def quickstart(path):
    if ZARR3:
        root = zarr.open_group(store=zarr.storage.LocalStore(path, read_only=True),
                               mode="r", zarr_format=2)
    else:
        root = zarr.open_group(store=zarr.DirectoryStore(path), mode="r")
    temperature = root["temperature"]
    want = np.arange(16, dtype="<f4").reshape(4, 4)
    got = temperature[...]
    if temperature.dtype != np.dtype("<f4") or not np.array_equal(got, want):
        fail(f"quickstart temperature {temperature.dtype}\n{got}\n!=\n{want}")
    print(f"zarr {zarr.__version__}: quickstart temperature = 0..15 in {path}")


def main(argv):
    if len(argv) != 3 or argv[1] not in ("write", "check", "quickstart"):
        print(__doc__, file=sys.stderr)
        return 2
    {"write": write, "check": check, "quickstart": quickstart}[argv[1]](argv[2])
    for store in OPEN_STORES:
        store.close()
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
