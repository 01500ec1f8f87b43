#!/usr/bin/env python3
"""zarr-python's stores under the workload of bench/zmap_bench.c, which runs this
script once per run and interpreter and reads its output:

    VERSION <zarr version>
    RESULT <store> <phase> <seconds, or bytes for size>
    NOTE <store> <text>
    ERROR <store> <text>

Stores: zarr2-dir, zarr2-zip, zarr2-mem (zarr 2.x: DirectoryStore, ZipStore,
MemoryStore) and zarr3-local, zarr3-zip, zarr3-mem (zarr 3.x: LocalStore,
ZipStore, MemoryStore). The phases are the C program's; where a store has no
such operation the phase is left out and a NOTE says why. zarr 3.x's stores
are asynchronous: every call is awaited in turn inside one event loop (the
cheapest way to drive them one object at a time, as the C API does).
"""
import argparse
import asyncio
import os
import shutil
import struct
import sys
import time

now = time.perf_counter


def emit(*words):
    print(*words, flush=True)


def tree_size(path):
    if os.path.isfile(path):
        return os.path.getsize(path)
    total = 0
    for root, _dirs, files in os.walk(path):
        for name in files:
            total += os.path.getsize(os.path.join(root, name))
    return total


class Workload:
    def __init__(self, a):
        self.n, self.size, self.groups = a.n, a.size, a.groups
        self.big_count, self.big_size, self.piece = a.big_count, a.big_size, a.piece
        self.keys = [f"g0/v{i % a.groups}/c.{i}" for i in range(a.n)]
        groups = min(a.groups, a.n)
        self.group_keys = [f"g0/v{j}" for j in range(groups)]
        self.group_counts = [a.n // a.groups + (j < a.n % a.groups) for j in range(groups)]
        base = bytearray((i * 131 + 7) & 0xFF for i in range(a.size))
        self.values = []
        for i in range(a.n):
            if a.size >= 8:
                struct.pack_into("<Q", base, 0, i)
            self.values.append(bytes(base))
        self.big_keys = [f"big/b.{j}" for j in range(a.big_count)]
        self.pieces = (a.big_size + a.piece - 1) // a.piece
        self.big_buf = bytearray((i * 31 + 3) & 0xFF for i in range(a.big_size)) if a.big_count else None

    def stamp_big(self, j):
        """The value of big object j: every piece stamped as the C program does."""
        for q in range(self.pieces):
            off = q * self.piece
            if self.big_size - off >= 8:
                struct.pack_into("<Q", self.big_buf, off, (j << 32) | q)
        return bytes(self.big_buf)

    def check_big(self, j, data):
        for q in range(self.pieces):
            off = q * self.piece
            if self.big_size - off >= 8 and struct.unpack_from("<Q", data, off)[0] != (j << 32) | q:
                raise RuntimeError(f"big object {j}: wrong data")

    def check_small(self, i, data):
        if self.size >= 8 and struct.unpack_from("<Q", data, 0)[0] != i:
            raise RuntimeError(f"{self.keys[i]}: wrong data")


# --- zarr 2.x ----------------------------------------------------------------------------


def run_zarr2(name, w, path):
    import zarr.storage as zs

    result = {}

    def make(mode):
        if name == "zarr2-dir":
            return zs.DirectoryStore(path)
        if name == "zarr2-zip":
            return zs.ZipStore(path, mode=mode)
        return memory

    memory = zs.MemoryStore() if name == "zarr2-mem" else None
    if name == "zarr2-dir":
        shutil.rmtree(path, ignore_errors=True)
    elif name == "zarr2-zip" and os.path.exists(path):
        os.remove(path)

    store = make("w")
    t0 = now()
    for k, v in zip(w.keys, w.values):
        store[k] = v
    result["create"] = now() - t0
    t0 = now()
    store.close()
    result["commit"] = now() - t0

    t0 = now()
    store = make("r")
    result["open"] = now() - t0
    t0 = now()
    for i, k in enumerate(w.keys):
        w.check_small(i, store[k])
    result["read"] = now() - t0
    t0 = now()
    if name == "zarr2-zip":
        # ZipStore.getsize lists the whole archive per call (quadratic): take the value's length.
        for k in w.keys:
            if k not in store or len(store[k]) != w.size:
                raise RuntimeError(f"{k}: exists+len")
    else:
        for k in w.keys:
            if k not in store or store.getsize(k) != w.size:
                raise RuntimeError(f"{k}: exists+len")
    result["stat"] = now() - t0
    t0 = now()
    if len(store.listdir("")) != 1 or len(store.listdir("g0")) != len(w.group_keys):
        raise RuntimeError("search: wrong count")
    for g, count in zip(w.group_keys, w.group_counts):
        if len(store.listdir(g)) != count:
            raise RuntimeError(f"search {g}: wrong count")
    result["search"] = now() - t0
    store.close()

    if w.big_count:
        store = make("a")
        t0 = now()
        for j, k in enumerate(w.big_keys):
            store[k] = w.stamp_big(j)
        result["bigwrite"] = now() - t0
        t0 = now()
        store.close()
        result["bigcommit"] = now() - t0
        store = make("r")
        t0 = now()
        for j, k in enumerate(w.big_keys):
            w.check_big(j, store[k])
        result["bigread"] = now() - t0
        store.close()

    if name != "zarr2-mem":
        result["size"] = tree_size(path)

    store = make("a")
    if name == "zarr2-zip":
        emit("NOTE", name, "no delete (ZipStore cannot remove members)")
    else:
        t0 = now()
        for k in w.keys + w.big_keys:
            del store[k]
        result["delete"] = now() - t0
    t0 = now()
    store.close()
    if name == "zarr2-dir":
        shutil.rmtree(path)
    elif name == "zarr2-zip":
        os.remove(path)
    else:
        store.clear()
    result["drop"] = now() - t0
    return result


# --- zarr 3.x ----------------------------------------------------------------------------


async def run_zarr3(name, w, path):
    import zarr.storage as zs
    from zarr.core.buffer import default_buffer_prototype

    proto = default_buffer_prototype()
    from_bytes = proto.buffer.from_bytes
    result = {}
    memory = {}

    async def make(read_only):
        if name == "zarr3-local":
            return await zs.LocalStore.open(path, read_only=read_only)
        if name == "zarr3-zip":
            mode = "r" if read_only else ("w" if not os.path.exists(path) else "a")
            return await zs.ZipStore.open(path, mode=mode)
        return await zs.MemoryStore.open(store_dict=memory, read_only=read_only)

    if name == "zarr3-local":
        shutil.rmtree(path, ignore_errors=True)
    elif name == "zarr3-zip" and os.path.exists(path):
        os.remove(path)

    store = await make(False)
    t0 = now()
    for k, v in zip(w.keys, w.values):
        await store.set(k, from_bytes(v))
    result["create"] = now() - t0
    t0 = now()
    store.close()
    result["commit"] = now() - t0

    t0 = now()
    store = await make(True)
    result["open"] = now() - t0
    t0 = now()
    for i, k in enumerate(w.keys):
        w.check_small(i, (await store.get(k, prototype=proto)).as_numpy_array())
    result["read"] = now() - t0
    t0 = now()
    for k in w.keys:
        if not await store.exists(k) or await store.getsize(k) != w.size:
            raise RuntimeError(f"{k}: exists+len")
    result["stat"] = now() - t0

    async def count(prefix):
        return len([x async for x in store.list_dir(prefix)])

    t0 = now()
    if await count("") != 1 or await count("g0") != len(w.group_keys):
        raise RuntimeError("search: wrong count")
    for g, c in zip(w.group_keys, w.group_counts):
        if await count(g) != c:
            raise RuntimeError(f"search {g}: wrong count")
    result["search"] = now() - t0
    store.close()

    if w.big_count:
        store = await make(False)
        t0 = now()
        for j, k in enumerate(w.big_keys):
            await store.set(k, from_bytes(w.stamp_big(j)))
        result["bigwrite"] = now() - t0
        t0 = now()
        store.close()
        result["bigcommit"] = now() - t0
        store = await make(True)
        t0 = now()
        for j, k in enumerate(w.big_keys):
            w.check_big(j, (await store.get(k, prototype=proto)).as_numpy_array())
        result["bigread"] = now() - t0
        store.close()

    if name != "zarr3-mem":
        result["size"] = tree_size(path)

    store = await make(False)
    if name == "zarr3-zip":
        emit("NOTE", name, "no delete (ZipStore cannot remove members)")
    else:
        t0 = now()
        for k in w.keys + w.big_keys:
            await store.delete(k)
        result["delete"] = now() - t0
    t0 = now()
    store.close()
    if name == "zarr3-local":
        shutil.rmtree(path)
    elif name == "zarr3-zip":
        os.remove(path)
    else:
        memory.clear()
    result["drop"] = now() - t0
    return result


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--dir", required=True)
    ap.add_argument("--run", type=int, default=0)
    ap.add_argument("--n", type=int, default=10000)
    ap.add_argument("--size", type=int, default=1024)
    ap.add_argument("--groups", type=int, default=100)
    ap.add_argument("--big-count", type=int, default=64)
    ap.add_argument("--big-size", type=int, default=16 << 20)
    ap.add_argument("--piece", type=int, default=1 << 20)
    ap.add_argument("--stores", default="")
    ap.add_argument("--probe", action="store_true", help="print the zarr version and stop")
    a = ap.parse_args()

    import zarr

    emit("VERSION", zarr.__version__)
    if a.probe:
        return 0
    major = int(zarr.__version__.split(".")[0])
    w = Workload(a)
    for name in filter(None, a.stores.split(",")):
        if not name.startswith(f"zarr{major}-"):
            emit("ERROR", name, f"needs zarr {name[4]}.x, this is {zarr.__version__}")
            continue
        suffix = ".zip" if name.endswith("-zip") else ""
        path = os.path.join(a.dir, f"{name}-{a.n}-{a.run}{suffix}")
        try:
            if major == 2:
                result = run_zarr2(name, w, path)
            else:
                result = asyncio.run(run_zarr3(name, w, path))
        except Exception as e:  # reported, and the next store still runs
            emit("ERROR", name, f"{type(e).__name__}: {e}")
            shutil.rmtree(path, ignore_errors=True)
            if os.path.isfile(path):
                os.remove(path)
            continue
        for phase, value in result.items():
            emit("RESULT", name, phase, repr(float(value)))
        if a.big_count:
            emit("NOTE", name, "16 MiB objects are set whole (zarr stores have no partial writes)")
        emit("NOTE", name, "no fsync: commit is close()")
    return 0


if __name__ == "__main__":
    sys.exit(main())
