"""Helpers of the GNZ interop tests (tests/gnz_interop/run.py).

Three independent pieces, none of which uses libzmap's own reading or writing
code to check libzmap:

- `read_gnz`: a reader written from Part 1 of the format only
  (the GNZ format): magic, u32 LE length, JSON header,
  `numpy.memmap` at each array's offset with its dtype, shape and order.
- `write_original`: a writer that lays files out as the original Python
  GnzWriter does (4096 alignment, zero padding, arrays in insertion order, a
  header past 4088 bytes shifting the data by whole pages, the file cut at
  the last aligned boundary, `json.dumps(sort_keys=True)`).
- `Zmap`: libzmap's C API through ctypes (nczmap_create/open/write/...).
"""

import ctypes
import json
import os
import struct

import numpy as np

MAGIC = b"GNZ1"
ALIGNMENT = 4096


# ---- Part 1 reader -------------------------------------------------------------------

class FormatError(Exception):
    pass


def read_header(path):
    """The JSON header at offset 0, as the original reader parses it."""
    with open(path, "rb") as f:
        magic = f.read(4)
        if magic != MAGIC:
            raise FormatError(f"{path}: magic {magic!r}")
        raw = f.read(4)
        if len(raw) != 4:
            raise FormatError(f"{path}: no header length")
        (length,) = struct.unpack("<I", raw)
        data = f.read(length)
        if len(data) != length:
            raise FormatError(f"{path}: header length {length} past the end")
    header = json.loads(data.decode("utf-8"))
    if not isinstance(header, dict) or not isinstance(header.get("arrays", {}), dict):
        raise FormatError(f"{path}: header is not a GNZ header")
    return header


def nbytes_of(info):
    dtype = np.dtype(info["dtype"])
    return int(np.prod(info["shape"], dtype=np.int64)) * dtype.itemsize


def get_array(path, info):
    """numpy.memmap of one array, exactly as the original GnzReader.get_array."""
    return np.memmap(path, dtype=np.dtype(info["dtype"]), mode="r",
                     offset=info["offset"], shape=tuple(info["shape"]),
                     order=info.get("order", "C"))


def read_gnz(path):
    """{name: (info, memmap)} for every array, and the header."""
    header = read_header(path)
    size = os.path.getsize(path)
    out = {}
    for name, info in header.get("arrays", {}).items():
        end = info["offset"] + nbytes_of(info)
        if info["offset"] < 0 or end > size:
            raise FormatError(f"{path}: array {name!r} at {info['offset']}..{end} "
                              f"past the end ({size})")
        out[name] = (info, get_array(path, info))
    return header, out


def raw_bytes(arr, info):
    """The bytes an array occupies in the file, in file order."""
    return np.asarray(arr).tobytes(order="F" if info.get("order") == "F" else "C")


# ---- the original writer's layout --------------------------------------------------------

def write_original(path, arrays, metadata=None, allow_nan=True):
    """Writes `arrays` (a list of (name, numpy array)) as GnzWriter.write()
    does. Returns the header dict that was written."""
    metadata = {} if metadata is None else metadata
    infos = {}
    current = ALIGNMENT
    for name, data in arrays:
        dt = data.dtype
        nbytes = int(np.prod(data.shape) * dt.itemsize)
        infos[name] = {"offset": current, "shape": list(data.shape),
                       "dtype": dt.str, "order": "C"}
        nxt = current + nbytes
        current = nxt + (ALIGNMENT - nxt % ALIGNMENT) % ALIGNMENT
    header = {"version": 1, "metadata": metadata, "arrays": infos}
    blob = json.dumps(header, sort_keys=True, allow_nan=allow_nan).encode("utf-8")
    if len(blob) > ALIGNMENT - 8:
        pages = (len(blob) + 8 + ALIGNMENT - 1) // ALIGNMENT
        data_start = pages * ALIGNMENT
        shift = data_start - ALIGNMENT
        for info in infos.values():
            info["offset"] += shift
        blob = json.dumps(header, sort_keys=True, allow_nan=allow_nan).encode("utf-8")
        total = current + shift
    else:
        data_start = ALIGNMENT
        total = current
    if 8 + len(blob) > data_start:
        raise ValueError("header outgrew its pages (the original writer's own limit)")
    with open(path, "wb") as f:
        f.write(MAGIC)
        f.write(struct.pack("<I", len(blob)))
        f.write(blob)
        f.write(b"\0" * (data_start - f.tell()))
        f.truncate(total)
    for name, data in arrays:
        info = infos[name]
        if nbytes_of(info) == 0:
            continue
        mm = np.memmap(path, dtype=np.dtype(info["dtype"]), mode="r+",
                       offset=info["offset"], shape=tuple(info["shape"]))
        mm[...] = data
        mm.flush()
        del mm
    return header


# ---- libzmap through ctypes ----------------------------------------------------------------

NC_NOERR = 0
NC_WRITE = 0x0001
NC_NOCLOBBER = 0x0004
NCZM_GNZ = 4


class NClist(ctypes.Structure):
    _fields_ = [("alloc", ctypes.c_size_t), ("length", ctypes.c_size_t),
                ("content", ctypes.POINTER(ctypes.c_void_p))]


class ZmapError(Exception):
    def __init__(self, what, code, message):
        super().__init__(f"{what}: {code} ({message})")
        self.code = code


class _LinkNames:
    """libzmap's functions by their C names: the library exports each as zmap_<name>
    (README: "Linking libzmap together with libnetcdf")."""

    def __init__(self, cdll):
        self._cdll = cdll

    def __getattr__(self, name):
        fn = getattr(self._cdll, "zmap_" + name)
        setattr(self, name, fn)
        return fn


class Zmap:
    """One map of libzmap, opened on a GNZ file."""

    lib = None

    @classmethod
    def load(cls, path):
        lib = _LinkNames(ctypes.CDLL(path))
        u64, p, c = ctypes.c_ulonglong, ctypes.c_void_p, ctypes.c_char_p
        for name, args in {
            "nczmap_create": [ctypes.c_int, c, ctypes.c_int, u64, p, ctypes.POINTER(p)],
            "nczmap_open": [ctypes.c_int, c, ctypes.c_int, u64, p, ctypes.POINTER(p)],
            "nczmap_close": [p, ctypes.c_int],
            "nczmap_flush": [p],
            "nczmap_write": [p, c, u64, u64, p],
            "nczmap_read": [p, c, u64, u64, p],
            "nczmap_len": [p, c, ctypes.POINTER(u64)],
            "nczmap_exists": [p, c],
            "nczmap_remove": [p, c],
            "nczmap_truncate": [p, c, u64],
            "nczmap_defineobj": [p, c],
            "nczmap_search": [p, c, ctypes.POINTER(NClist)],
            "nczmap_compact": [p, ctypes.POINTER(u64), ctypes.POINTER(u64)],
        }.items():
            fn = getattr(lib, name)
            fn.argtypes = args
            fn.restype = ctypes.c_int
        lib.nczmap_strerror.argtypes = [ctypes.c_int]
        lib.nczmap_strerror.restype = c
        lib.nclistnew.restype = ctypes.POINTER(NClist)
        lib.nclistfreeall.argtypes = [ctypes.POINTER(NClist)]
        lib.nclistget.argtypes = [ctypes.POINTER(NClist), ctypes.c_size_t]
        lib.nclistget.restype = p
        cls.lib = lib

    def __init__(self, path, create=False, mode=0):
        self.map = ctypes.c_void_p()
        fn = self.lib.nczmap_create if create else self.lib.nczmap_open
        self._ok(fn(NCZM_GNZ, os.fsencode(path), mode, 0, None, ctypes.byref(self.map)),
                 f"{'create' if create else 'open'} {path}")

    def _ok(self, rc, what):
        if rc != NC_NOERR:
            raise ZmapError(what, rc, self.lib.nczmap_strerror(rc).decode())

    def write(self, key, data, start=0):
        data = bytes(data)
        buf = ctypes.create_string_buffer(data, len(data)) if data else None
        self._ok(self.lib.nczmap_write(self.map, key.encode(), start, len(data), buf),
                 f"write {key}")

    def length(self, key):
        n = ctypes.c_ulonglong()
        self._ok(self.lib.nczmap_len(self.map, key.encode(), ctypes.byref(n)), f"len {key}")
        return n.value

    def read(self, key, start=0, count=None):
        if count is None:
            count = self.length(key) - start
        buf = ctypes.create_string_buffer(max(count, 1))
        self._ok(self.lib.nczmap_read(self.map, key.encode(), start, count, buf), f"read {key}")
        return buf.raw[:count]

    def exists(self, key):
        return self.lib.nczmap_exists(self.map, key.encode()) == NC_NOERR

    def remove(self, key):
        self._ok(self.lib.nczmap_remove(self.map, key.encode()), f"remove {key}")

    def truncate(self, key, n):
        self._ok(self.lib.nczmap_truncate(self.map, key.encode(), n), f"truncate {key}")

    def define(self, key):
        self._ok(self.lib.nczmap_defineobj(self.map, key.encode()), f"defineobj {key}")

    def search(self, prefix):
        lst = self.lib.nclistnew()
        try:
            self._ok(self.lib.nczmap_search(self.map, prefix.encode(), lst), f"search {prefix}")
            return [ctypes.string_at(self.lib.nclistget(lst, i)).decode()
                    for i in range(lst.contents.length)]
        finally:
            self.lib.nclistfreeall(lst)

    def objects(self, prefix="/"):
        """Every object's full key below prefix, recursively."""
        out = []
        for child in self.search(prefix):
            if self.exists(child):
                out.append(child)
            out.extend(self.objects(child))
        return sorted(out)

    def flush(self):
        self._ok(self.lib.nczmap_flush(self.map), "flush")

    def compact(self):
        before, after = ctypes.c_ulonglong(), ctypes.c_ulonglong()
        self._ok(self.lib.nczmap_compact(self.map, ctypes.byref(before), ctypes.byref(after)),
                 "compact")
        return before.value, after.value

    def close(self, delete=False):
        if self.map:
            rc = self.lib.nczmap_close(self.map, 1 if delete else 0)
            self.map = ctypes.c_void_p()
            self._ok(rc, "close")

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()
