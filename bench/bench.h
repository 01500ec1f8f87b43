/* The zmap benchmark: shared types of bench/zmap_bench.c (the workload,
 * the runs and the report) and bench/drivers.c (one driver per thing that
 * is measured: libzmap's backends through the public header, the raw
 * syscall and memcpy floors, and netCDF-C 4.9's own zmap through dlopen).
 * zarr-python's stores run in bench/zarr_bench.py; their figures come back
 * through a pipe into the same tables. */
#ifndef ZMAP_BENCH_H
#define ZMAP_BENCH_H

#define _GNU_SOURCE 1

#include <stddef.h>
#include <stdint.h>

#include "zmap.h"

#define MAX_RUNS 64

/* The measured phases, in workload order. Each holds seconds, except
 * PH_SIZE and PH_SIZE_COMPACTED (bytes on the file system). */
enum phase {
    PH_CREATE,         /* N writes of S bytes, keys /g0/v{i%G}/c.{i} */
    PH_COMMIT,         /* close(map, 0) after them: durability of the small objects */
    PH_OPEN,           /* open read-only */
    PH_READ,           /* N reads */
    PH_STAT,           /* N × (exists + len) */
    PH_SEARCH,         /* search "/", "/g0" and each of the G groups */
    PH_BIGWRITE,       /* B objects of BS bytes, written in P-byte pieces */
    PH_BIGCOMMIT,      /* close(map, 0) after them */
    PH_BIGREAD,        /* each big object read whole, from a read-only map */
    PH_SIZE,           /* bytes the dataset takes (apparent size) */
    PH_COMPACT,        /* nczmap_compact where the backend has it */
    PH_SIZE_COMPACTED, /* bytes after compaction */
    PH_DELETE,         /* remove every object, one by one */
    PH_DROP,           /* close(map, 1): delete the dataset */
    PH_DEFWRITE,       /* NCZarr's pattern in a fresh dataset: N × (defineobj(k), write(k)) */
    PH_COUNT
};

enum kind { K_FLOOR, K_MEMCPY, K_ZMAP, K_NETCDF, K_ZARR };

typedef struct Driver Driver;

/* Operations of a driver. Codes: 0 = success; anything else is an error
 * that `strerror` explains. Handles are whatever the driver needs. */
typedef struct Ops {
    int (*create)(Driver *d, const char *loc, void **h);
    int (*open)(Driver *d, const char *loc, int writable, void **h);
    int (*close)(Driver *d, void *h, int deleteit);
    int (*write)(void *h, const char *key, uint64_t start, uint64_t count, const void *buf);
    int (*read)(void *h, const char *key, uint64_t start, uint64_t count, void *buf);
    int (*exists_len)(void *h, const char *key, uint64_t *len);
    /* Lists the immediate children of prefix; *count = how many. */
    int (*search)(void *h, const char *prefix, size_t *count);
    int (*remove)(void *h, const char *key);   /* NULL: not supported */
    int (*compact)(void *h);                   /* NULL: not supported */
    const char *(*strerror)(int code);
    /* NCZarr's create of an object: define the key, then write all of it.
     * NULL: the driver has no define step (its plain write is its create). */
    int (*define_write)(void *h, const char *key, uint64_t count, const void *buf);
} Ops;

struct Driver {
    const char *id;    /* command-line name */
    char label[96];    /* row label in the tables */
    enum kind kind;
    int impl;          /* NCZM_IMPL for K_ZMAP */
    int small;         /* runs the small-object phases */
    int big;           /* runs the 16 MiB phases */
    int selected;      /* chosen with --backends (or by default) */
    int available;     /* usable here (built, installed) */
    const Ops *ops;
    const char *python;    /* K_ZARR: the interpreter */
    const char *store;     /* K_ZARR: the store's name in zarr_bench.py */
    char note[512];        /* why skipped / what to know */
    double t[PH_COUNT][MAX_RUNS];
    int failed;
};

/* drivers.c */
extern const Ops floor_ops, memcpy_ops, zmap_ops;
/* The memcpy floor allocates each big object with this size at its first write. */
extern uint64_t memcpy_object_size;
int netcdf_load(char *why, size_t whylen, char *version, size_t versionlen);
extern const Ops netcdf_ops;
/* The dataset's apparent size in bytes (regular files' st_size), -1 if none. */
double tree_size(const char *path);
/* Removes a directory tree or file; 0 on success. */
int remove_tree(const char *path);

#endif
