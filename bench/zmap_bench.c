/* zmap_bench: one workload on every zmap backend, against the physical floor
 * (raw syscalls, memcpy), netCDF-C 4.9's own zmap and zarr-python's stores,
 * with every figure's ratio to its baseline measured in the same run.
 *
 * The workload (defaults; see --help):
 *   create      N = 10,000 objects of S = 1 KiB, keys /g0/v{i%G}/c.{i}, G = 100
 *   commit      close(map, 0): everything made durable (fsync/syncfs)
 *   open        open read-only
 *   read        every object, whole
 *   exists+len  nczmap_exists + nczmap_len of every object
 *   search      "/", "/g0" and every group "/g0/v{j}"
 *   16 MiB      B = 64 objects of 16 MiB written in 1 MiB pieces, committed,
 *               then read whole from a read-only map
 *   size        the dataset's bytes on the file system / payload (and after
 *               nczmap_compact where the backend has it)
 *   delete      every object removed one by one, then close(map, 1)
 *   define+write NCZarr 2020's own create, in a fresh dataset: for each of the
 *               N keys nczmap_defineobj(key), then nczmap_write(key, 0, S);
 *               its ratio to the floor is against the floor's create
 * Runs are interleaved (run r of every backend, then run r+1) and every
 * figure is the median of R runs; a ratio is the median of the per-run
 * ratios, so a slow moment of the machine hits both sides of it. Within a
 * run, every C backend's small-object phases come first, then zarr-python's
 * runs, then the rest of each C backend's run (16 MiB objects onwards), so
 * that no small-object phase follows another backend's 1 GiB of 16 MiB
 * objects in the same run (see run_c).
 *
 * The backends that run HDF5 (nc4, netcdf) run each part in a child
 * process of their own (--together: in this one): HDF5 leaves glibc's heap
 * so fragmented that every later malloc of a kilobyte or more in the
 * process is slow, and the backends measured after it would show that
 * rather than their own speed (BENCHMARKS.md, "HDF5 in the same process").
 *
 * Each run also measures the one-file floor of a create+commit (the N
 * objects copied into 1 MiB pwrites to one fresh file, fdatasync): what GNZ,
 * which writes the same bytes plus a header into one file, is held against.
 *
 * --scaling 1000,10000,100000,1000000 runs the small-object phases at each N
 * instead and prints the cost per object, to show it stays flat.
 *
 * Output: Markdown on stdout (progress on stderr). Exit status 1 if any
 * backend failed an operation or returned wrong data; figures are never
 * judged by the exit status. */
#include "bench.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/statfs.h>
#include <sys/utsname.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#ifndef ZMAP_BENCH_SOURCE_DIR
#define ZMAP_BENCH_SOURCE_DIR "."
#endif

#define MiB (1024.0 * 1024.0)

/* --- parameters ------------------------------------------------------------------ */

typedef struct Params {
    size_t n;          /* small objects */
    size_t size;       /* bytes each */
    size_t groups;     /* G */
    size_t big_count;  /* B (0: no big phases) */
    size_t big_size;   /* bytes each */
    size_t piece;      /* write size of the big objects */
} Params;

static Params P = {10000, 1024, 100, 64, 16u << 20, 1u << 20};
static int runs = 5;
static const char *base_dir;
static char work_dir[PATH_MAX];
static const char *zarr2_python, *zarr3_python, *zarr_script;
static const char *s3_url;
static const char *title;
static int quick;
static int no_targets;
/* --together: the HDF5 backends in this process too (see run_part). */
static int together;
static size_t scaling_n[16];
static int scaling_count;
static size_t scaling_file_max = 100000;
static int scaling_runs = 3;
static const char *backend_list;
static int any_failure;

/* --- drivers --------------------------------------------------------------------- */

static Driver drivers[] = {
    {.id = "floor", .label = "floor: raw syscalls", .kind = K_FLOOR, .small = 1, .big = 1, .ops = &floor_ops},
    {.id = "memcpy", .label = "floor: memcpy", .kind = K_MEMCPY, .small = 0, .big = 1, .ops = &memcpy_ops},
    {.id = "mem", .label = "zmap MEM", .kind = K_ZMAP, .impl = NCZM_UNDEF, .small = 1, .big = 1, .ops = &zmap_ops},
    {.id = "file", .label = "zmap FILE", .kind = K_ZMAP, .impl = NCZM_FILE, .small = 1, .big = 1, .ops = &zmap_ops},
    {.id = "gnz", .label = "zmap GNZ", .kind = K_ZMAP, .impl = NCZM_GNZ, .small = 1, .big = 1, .ops = &zmap_ops},
    {.id = "zip", .label = "zmap ZIP", .kind = K_ZMAP, .impl = NCZM_ZIP, .small = 1, .big = 1, .ops = &zmap_ops},
    {.id = "s3", .label = "zmap S3", .kind = K_ZMAP, .impl = NCZM_S3, .small = 1, .big = 1, .ops = &zmap_ops},
    {.id = "nc4", .label = "zmap NC4", .kind = K_ZMAP, .impl = NCZM_NC4, .small = 1, .big = 1, .ops = &zmap_ops},
    {.id = "netcdf", .label = "netCDF-C file", .kind = K_NETCDF, .small = 1, .big = 1, .ops = &netcdf_ops},
    {.id = "zarr2-dir", .label = "zarr 2 DirectoryStore", .kind = K_ZARR, .store = "zarr2-dir", .small = 1, .big = 1},
    {.id = "zarr2-zip", .label = "zarr 2 ZipStore", .kind = K_ZARR, .store = "zarr2-zip", .small = 1, .big = 1},
    {.id = "zarr2-mem", .label = "zarr 2 MemoryStore", .kind = K_ZARR, .store = "zarr2-mem", .small = 1, .big = 1},
    {.id = "zarr3-local", .label = "zarr 3 LocalStore", .kind = K_ZARR, .store = "zarr3-local", .small = 1, .big = 1},
    {.id = "zarr3-zip", .label = "zarr 3 ZipStore", .kind = K_ZARR, .store = "zarr3-zip", .small = 1, .big = 1},
    {.id = "zarr3-mem", .label = "zarr 3 MemoryStore", .kind = K_ZARR, .store = "zarr3-mem", .small = 1, .big = 1},
};
#define NDRIVERS ((int)(sizeof drivers / sizeof drivers[0]))

static Driver *driver(const char *id) {
    for (int i = 0; i < NDRIVERS; i++)
        if (strcmp(drivers[i].id, id) == 0) return &drivers[i];
    return NULL;
}

static int usable(const Driver *d) {
    return d != NULL && d->selected && d->available;
}

static const char *phase_names[PH_COUNT] = {
    "create", "commit", "open", "read", "stat", "search", "bigwrite", "bigcommit",
    "bigread", "size", "compact", "size_compacted", "delete", "drop", "defwrite",
};

/* --- small utilities --------------------------------------------------------------- */

static double now(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec * 1e-9;
}

static void progress(const char *fmt, ...) {
    va_list ap;
    va_start(ap, fmt);
    vfprintf(stderr, fmt, ap);
    va_end(ap);
    fflush(stderr);
}

static int cmp_double(const void *a, const void *b) {
    double x = *(const double *)a, y = *(const double *)b;
    return x < y ? -1 : x > y;
}

typedef struct Stat3 {
    double min, med, max;
    int count;
} Stat3;

static Stat3 stats(const double *v, int n) {
    double s[MAX_RUNS];
    int k = 0;
    for (int i = 0; i < n; i++)
        if (isfinite(v[i])) s[k++] = v[i];
    Stat3 r = {NAN, NAN, NAN, k};
    if (k == 0) return r;
    qsort(s, (size_t)k, sizeof s[0], cmp_double);
    r.min = s[0];
    r.max = s[k - 1];
    r.med = k % 2 ? s[k / 2] : (s[k / 2 - 1] + s[k / 2]) / 2;
    return r;
}

static size_t parse_size(const char *s) {
    char *end = NULL;
    double v = strtod(s, &end);
    if (end != NULL) {
        if (*end == 'k' || *end == 'K') v *= 1024;
        else if (*end == 'm' || *end == 'M') v *= 1024 * 1024;
        else if (*end == 'g' || *end == 'G') v *= 1024.0 * 1024 * 1024;
    }
    return v < 0 ? 0 : (size_t)v;
}

/* --- keys and content ---------------------------------------------------------------- */

#define KEY_STRIDE 40
static char *keys;        /* keys[i] at keys + i * KEY_STRIDE */
static size_t keys_made;
static char (*group_keys)[32];
static size_t groups_made;

static const char *key(size_t i) {
    return keys + i * KEY_STRIDE;
}

static void make_keys(size_t n, size_t groups) {
    if (n > keys_made || groups != groups_made) {
        free(keys);
        free(group_keys);
        keys = malloc(n * KEY_STRIDE);
        group_keys = malloc((groups + 1) * sizeof *group_keys);
        if (keys == NULL || group_keys == NULL) {
            fprintf(stderr, "out of memory for %zu keys\n", n);
            exit(2);
        }
        for (size_t i = 0; i < n; i++)
            if (snprintf(keys + i * KEY_STRIDE, KEY_STRIDE, "/g0/v%zu/c.%zu", i % groups, i) >= KEY_STRIDE) exit(2);
        for (size_t j = 0; j < groups; j++)
            if (snprintf(group_keys[j], sizeof group_keys[j], "/g0/v%zu", j) >= (int)sizeof group_keys[j]) exit(2);
        keys_made = n;
        groups_made = groups;
    }
}

static void big_key(char *buf, size_t n, size_t j) {
    snprintf(buf, n, "/big/b.%zu", j);
}

static unsigned char *small_buf, *read_buf, *big_src, *big_dst;

static void make_buffers(const Params *p) {
    static size_t small_have, big_have;
    if (p->size > small_have) {
        free(small_buf);
        free(read_buf);
        small_buf = malloc(p->size + 8);
        read_buf = malloc(p->size + 8);
        if (small_buf == NULL || read_buf == NULL) exit(2);
        for (size_t i = 0; i < p->size + 8; i++) small_buf[i] = (unsigned char)(i * 131 + 7);
        memset(read_buf, 0, p->size + 8);
        small_have = p->size;
    }
    if (p->big_count > 0 && p->big_size > big_have) {
        free(big_src);
        free(big_dst);
        big_src = malloc(p->big_size);
        big_dst = malloc(p->big_size);
        if (big_src == NULL || big_dst == NULL) exit(2);
        for (size_t i = 0; i < p->big_size; i++) big_src[i] = (unsigned char)(i * 31 + 3);
        memset(big_dst, 0, p->big_size); /* resident: reads measure copying, not page faults */
        big_have = p->big_size;
    }
}

/* The first 8 bytes of object i (and of piece p of big object j) say which it is. */
static void stamp(unsigned char *buf, size_t len, uint64_t v) {
    if (len >= 8) memcpy(buf, &v, 8);
}

static int stamped(const unsigned char *buf, size_t len, uint64_t v) {
    uint64_t got;
    if (len < 8) return 1;
    memcpy(&got, buf, 8);
    return got == v;
}

/* --- one run of the workload on a C driver -------------------------------------------- */

static void location(const Driver *d, int run, size_t n, char *loc, size_t len) {
    int w;
    if (d->kind == K_ZMAP && d->impl == NCZM_UNDEF)
        w = snprintf(loc, len, "mem://zmap-bench-%ld-%s-%zu-%d", (long)getpid(), d->id, n, run);
    else if (d->kind == K_ZMAP && d->impl == NCZM_S3)
        w = snprintf(loc, len, "%s/zmap-bench-%ld-%zu-%d", s3_url, (long)getpid(), n, run);
    else if (d->kind == K_ZMAP && d->impl == NCZM_GNZ)
        w = snprintf(loc, len, "%s/%s-%zu-%d.gnz", work_dir, d->id, n, run);
    else if (d->kind == K_ZMAP && d->impl == NCZM_NC4)
        w = snprintf(loc, len, "%s/%s-%zu-%d.nc", work_dir, d->id, n, run);
    else if (d->kind == K_ZMAP && d->impl == NCZM_ZIP)
        w = snprintf(loc, len, "%s/%s-%zu-%d.zip", work_dir, d->id, n, run);
    else
        w = snprintf(loc, len, "%s/%s-%zu-%d", work_dir, d->id, n, run);
    if (w < 0 || (size_t)w >= len) {
        fprintf(stderr, "dataset path too long\n");
        exit(2);
    }
}

static int check(Driver *d, int st, const char *what, const char *key_, int run) {
    if (st == 0) return 0;
    fprintf(stderr, "\nerror: %s, run %d: %s %s: %s (%d)\n", d->label, run + 1, what,
            key_ ? key_ : "", d->ops->strerror(st), st);
    d->failed++;
    any_failure = 1;
    return -1;
}

static int wrong(Driver *d, const char *what, const char *key_, int run) {
    fprintf(stderr, "\nerror: %s, run %d: %s %s: wrong result\n", d->label, run + 1, what, key_);
    d->failed++;
    any_failure = 1;
    return -1;
}

/* The parts of one run of a C driver: the small-object phases (create to
 * search), then the rest (16 MiB objects, size, compaction, delete,
 * define+write) on the same dataset. The main table runs every backend's
 * first part before any backend's second. */
enum { PART_SMALL = 1, PART_REST = 2, PART_ALL = 3 };

/* Runs `parts` of the workload once; t[phase][run] receives the figures.
 * Returns 0, or -1 if a part failed (its dataset is then removed). */
static int run_c(Driver *d, int run, const Params *p, double (*t)[MAX_RUNS], int parts) {
    const Ops *o = d->ops;
    char loc[PATH_MAX], bk[64];
    void *h = NULL;
    double t0;
    size_t expect_group;
    int small = d->small && p->n > 0, big = d->big && p->big_count > 0;
    int st;

    location(d, run, p->n, loc, sizeof loc);
    memcpy_object_size = p->big_size;
    if (!(parts & PART_SMALL)) goto rest;
    if (check(d, o->create(d, loc, &h), "create", loc, run)) goto fail;

    if (small) {
        t0 = now();
        for (size_t i = 0; i < p->n; i++) {
            stamp(small_buf, p->size, i);
            if (check(d, o->write(h, key(i), 0, p->size, small_buf), "write", key(i), run)) goto fail;
        }
        t[PH_CREATE][run] = now() - t0;
    }
    t0 = now();
    st = o->close(d, h, 0);
    h = NULL;
    if (check(d, st, "close", loc, run)) goto fail;
    if (small) t[PH_COMMIT][run] = now() - t0;

    if (small) {
        t0 = now();
        if (check(d, o->open(d, loc, 0, &h), "open", loc, run)) goto fail;
        t[PH_OPEN][run] = now() - t0;

        t0 = now();
        for (size_t i = 0; i < p->n; i++) {
            if (check(d, o->read(h, key(i), 0, p->size, read_buf), "read", key(i), run)) goto fail;
            if (!stamped(read_buf, p->size, i)) {
                wrong(d, "read", key(i), run);
                goto fail;
            }
        }
        t[PH_READ][run] = now() - t0;

        t0 = now();
        for (size_t i = 0; i < p->n; i++) {
            uint64_t len = 0;
            if (check(d, o->exists_len(h, key(i), &len), "exists+len", key(i), run)) goto fail;
            if (len != p->size) {
                wrong(d, "exists+len", key(i), run);
                goto fail;
            }
        }
        t[PH_STAT][run] = now() - t0;

        size_t count = 0, groups = p->groups < p->n ? p->groups : p->n;
        t0 = now();
        if (check(d, o->search(h, "/", &count), "search", "/", run)) goto fail;
        if (count != 1) {
            wrong(d, "search", "/", run);
            goto fail;
        }
        if (check(d, o->search(h, "/g0", &count), "search", "/g0", run)) goto fail;
        if (count != groups) {
            wrong(d, "search", "/g0", run);
            goto fail;
        }
        for (size_t j = 0; j < groups; j++) {
            if (check(d, o->search(h, group_keys[j], &count), "search", group_keys[j], run)) goto fail;
            expect_group = p->n / p->groups + (j < p->n % p->groups);
            if (count != expect_group) {
                wrong(d, "search", group_keys[j], run);
                goto fail;
            }
        }
        t[PH_SEARCH][run] = now() - t0;
        st = o->close(d, h, 0);
        h = NULL;
        if (check(d, st, "close", loc, run)) goto fail;
    }
    if (!(parts & PART_REST)) return 0;

rest:
    if (big) {
        size_t pieces = (p->big_size + p->piece - 1) / p->piece;
        if (check(d, o->open(d, loc, 1, &h), "open", loc, run)) goto fail;
        t0 = now();
        for (size_t j = 0; j < p->big_count; j++) {
            big_key(bk, sizeof bk, j);
            for (size_t q = 0; q < pieces; q++) {
                size_t off = q * p->piece, len = p->big_size - off < p->piece ? p->big_size - off : p->piece;
                stamp(big_src + off, len, (uint64_t)j << 32 | q);
                if (check(d, o->write(h, bk, off, len, big_src + off), "write", bk, run)) goto fail;
            }
        }
        t[PH_BIGWRITE][run] = now() - t0;
        t0 = now();
        st = o->close(d, h, 0);
        h = NULL;
        if (check(d, st, "close", loc, run)) goto fail;
        t[PH_BIGCOMMIT][run] = now() - t0;

        if (check(d, o->open(d, loc, 0, &h), "open", loc, run)) goto fail;
        t0 = now();
        for (size_t j = 0; j < p->big_count; j++) {
            big_key(bk, sizeof bk, j);
            if (check(d, o->read(h, bk, 0, p->big_size, big_dst), "read", bk, run)) goto fail;
            for (size_t q = 0; q < pieces; q++) {
                size_t off = q * p->piece;
                if (!stamped(big_dst + off, p->big_size - off, (uint64_t)j << 32 | q)) {
                    wrong(d, "read", bk, run);
                    goto fail;
                }
            }
        }
        t[PH_BIGREAD][run] = now() - t0;
        st = o->close(d, h, 0);
        h = NULL;
        if (check(d, st, "close", loc, run)) goto fail;
    }

    if (d->kind != K_MEMCPY && !(d->kind == K_ZMAP && (d->impl == NCZM_UNDEF || d->impl == NCZM_S3)))
        t[PH_SIZE][run] = tree_size(loc);

    /* Compaction after the 16 MiB objects (their pieces leave holes); not in the scaling runs. */
    if (big && o->compact != NULL && d->kind == K_ZMAP && d->impl == NCZM_GNZ) {
        if (check(d, o->open(d, loc, 1, &h), "open", loc, run)) goto fail;
        t0 = now();
        st = o->compact(h);
        double took = now() - t0;
        if (check(d, st, "compact", loc, run)) goto fail;
        t0 = now();
        st = o->close(d, h, 0);
        h = NULL;
        if (check(d, st, "close", loc, run)) goto fail;
        if (st == 0) {
            t[PH_COMPACT][run] = took + (now() - t0);
            t[PH_SIZE_COMPACTED][run] = tree_size(loc);
        }
    }

    if (check(d, o->open(d, loc, 1, &h), "open", loc, run)) goto fail;
    /* FILE deletes only a dataset: a reopened one needs its marker (README). */
    if (d->kind == K_ZMAP && d->impl == NCZM_FILE &&
        check(d, o->write(h, "/.zgroup", 0, 2, "{}"), "write", "/.zgroup", run))
        goto fail;
    if (o->remove != NULL) {
        t0 = now();
        if (small)
            for (size_t i = 0; i < p->n; i++)
                if (check(d, o->remove(h, key(i)), "remove", key(i), run)) goto fail;
        if (big)
            for (size_t j = 0; j < p->big_count; j++) {
                big_key(bk, sizeof bk, j);
                if (check(d, o->remove(h, bk), "remove", bk, run)) goto fail;
            }
        t[PH_DELETE][run] = now() - t0;
    }
    t0 = now();
    st = o->close(d, h, 1);
    h = NULL;
    if (check(d, st, "close(delete)", loc, run)) goto fail;
    t[PH_DROP][run] = now() - t0;

    if (small && o->define_write != NULL) {
        /* A fresh dataset next to the first one (a .gnz name keeps its suffix). */
        size_t len = strlen(loc);
        int gnz = len > 4 && strcmp(loc + len - 4, ".gnz") == 0;
        if (snprintf(loc + len - (gnz ? 4 : 0), sizeof loc - len + (gnz ? 4 : 0), "-dw%s", gnz ? ".gnz" : "") < 0)
            goto fail;
        if (check(d, o->create(d, loc, &h), "create", loc, run)) goto fail;
        t0 = now();
        for (size_t i = 0; i < p->n; i++) {
            stamp(small_buf, p->size, i);
            if (check(d, o->define_write(h, key(i), p->size, small_buf), "define+write", key(i), run)) goto fail;
        }
        t[PH_DEFWRITE][run] = now() - t0;
        if (check(d, o->read(h, key(p->n - 1), 0, p->size, read_buf), "read", key(p->n - 1), run)) goto fail;
        if (!stamped(read_buf, p->size, p->n - 1)) {
            wrong(d, "read after define+write", key(p->n - 1), run);
            goto fail;
        }
        st = o->close(d, h, 1);
        h = NULL;
        if (check(d, st, "close(delete)", loc, run)) goto fail;
    }
    return 0;

fail:
    if (h != NULL) o->close(d, h, 1);
    if (d->kind == K_FLOOR || d->kind == K_NETCDF || (d->kind == K_ZMAP && d->impl != NCZM_UNDEF && d->impl != NCZM_S3))
        remove_tree(loc);
    if (d->kind == K_MEMCPY) o->close(d, NULL, 1);
    return -1;
}

/* True for the backends that run HDF5 in the process (netCDF-4 files). */
static int runs_hdf5(const Driver *d) {
    return d->kind == K_NETCDF || (d->kind == K_ZMAP && d->impl == NCZM_NC4);
}

/* Says where the HDF5 backends ran (run_part), if any was measured. */
static void print_process_note(void) {
    int any = 0;
    for (int i = 0; i < NDRIVERS; i++) any |= usable(&drivers[i]) && runs_hdf5(&drivers[i]);
    if (!any) return;
    printf("- %s\n", together ? "nc4 and netcdf (HDF5) ran in this process (`--together`): the backends measured after "
                                 "them pay for the heap HDF5 leaves"
                               : "nc4 and netcdf (HDF5) ran each part of a run in a child process of their own, so that "
                                 "the heap HDF5 leaves does not slow the other backends (`--together`: in one process)");
}

/* What a child process of run_part reports back. */
typedef struct {
    int status, failed, any_failure;
    double t[PH_COUNT];
} PartResult;

/* run_c, in a child process for the backends that run HDF5 (unless
 * --together): the heap HDF5 leaves behind (hundreds of thousands of free
 * chunks) made glibc's malloc of every later request of a kilobyte or more
 * take up to milliseconds, and MEM's and GNZ's phases after an NC4 one ran
 * 10 to 20 times slower in the same process. Their datasets are files, so
 * the parts of one run can be separate processes. */
static int run_part(Driver *d, int run, const Params *p, double (*t)[MAX_RUNS], int parts) {
    if (together || !runs_hdf5(d)) return run_c(d, run, p, t, parts);
    int fds[2];
    fflush(stdout);
    fflush(stderr);
    pid_t pid = pipe(fds) == 0 ? fork() : -1;
    if (pid == 0) {
        close(fds[0]);
        PartResult out = {0};
        out.status = run_c(d, run, p, t, parts);
        out.failed = d->failed;
        out.any_failure = any_failure;
        for (int k = 0; k < PH_COUNT; k++) out.t[k] = t[k][run];
        ssize_t put = write(fds[1], &out, sizeof out);
        _exit(put == (ssize_t)sizeof out ? 0 : 1);
    }
    if (pid < 0) {
        fprintf(stderr, "\nerror: %s, run %d: no child process (%s)\n", d->label, run + 1, strerror(errno));
        d->failed++;
        any_failure = 1;
        return -1;
    }
    close(fds[1]);
    PartResult in;
    size_t got = 0;
    while (got < sizeof in) {
        ssize_t n = read(fds[0], (char *)&in + got, sizeof in - got);
        if (n < 0 && errno == EINTR) continue;
        if (n <= 0) break;
        got += (size_t)n;
    }
    close(fds[0]);
    int wstatus = 0;
    while (waitpid(pid, &wstatus, 0) < 0 && errno == EINTR) {
    }
    if (got != sizeof in || !WIFEXITED(wstatus) || WEXITSTATUS(wstatus) != 0) {
        fprintf(stderr, "\nerror: %s, run %d: its child process ended without a result\n", d->label, run + 1);
        d->failed++;
        any_failure = 1;
        return -1;
    }
    for (int k = 0; k < PH_COUNT; k++)
        if (!isnan(in.t[k])) t[k][run] = in.t[k];
    d->failed = in.failed;
    any_failure |= in.any_failure;
    return in.status;
}

/* --- zarr-python, through bench/zarr_bench.py -------------------------------------------- */

/* Runs argv, calling line() for each line of its stdout. Returns the exit status. */
static int run_lines(char *const argv[], void (*line)(char *text, void *ctx), void *ctx) {
    int fds[2];
    if (pipe(fds) != 0) return -1;
    pid_t pid = fork();
    if (pid < 0) return -1;
    if (pid == 0) {
        dup2(fds[1], 1);
        close(fds[0]);
        close(fds[1]);
        execv(argv[0], argv);
        _exit(127);
    }
    close(fds[1]);
    FILE *in = fdopen(fds[0], "r");
    char buf[4096];
    while (in != NULL && fgets(buf, sizeof buf, in) != NULL) {
        buf[strcspn(buf, "\n")] = '\0';
        line(buf, ctx);
    }
    if (in != NULL) fclose(in);
    int status = 0;
    waitpid(pid, &status, 0);
    return WIFEXITED(status) ? WEXITSTATUS(status) : 128;
}

typedef struct ZarrCtx {
    const char *python;
    int run;
    double (*(*table)(Driver *))[MAX_RUNS];
    char version[32];
} ZarrCtx;

static Driver *zarr_driver(const char *python, const char *store) {
    for (int i = 0; i < NDRIVERS; i++)
        if (drivers[i].kind == K_ZARR && drivers[i].python == python && strcmp(drivers[i].store, store) == 0)
            return &drivers[i];
    return NULL;
}

static double (*main_table(Driver *d))[MAX_RUNS] {
    return d->t;
}

static void zarr_line(char *text, void *vctx) {
    ZarrCtx *ctx = vctx;
    char word[16], store[32], rest[1024];
    rest[0] = '\0';
    if (sscanf(text, "%15s %31s %1023[^\n]", word, store, rest) < 2) return;
    if (strcmp(word, "VERSION") == 0) {
        snprintf(ctx->version, sizeof ctx->version, "%s", store);
        return;
    }
    Driver *d = zarr_driver(ctx->python, store);
    if (d == NULL) return;
    if (strcmp(word, "RESULT") == 0) {
        char phase[32];
        double v;
        if (sscanf(rest, "%31s %lf", phase, &v) != 2) return;
        for (int k = 0; k < PH_COUNT; k++)
            if (strcmp(phase, phase_names[k]) == 0 && ctx->run >= 0) ctx->table(d)[k][ctx->run] = v;
    } else if (strcmp(word, "NOTE") == 0) {
        if (strstr(d->note, rest) == NULL) {
            size_t len = strlen(d->note);
            snprintf(d->note + len, sizeof d->note - len, "%s%s", len ? "; " : "", rest);
        }
    } else if (strcmp(word, "ERROR") == 0) {
        fprintf(stderr, "\nerror: %s, run %d: %s\n", d->label, ctx->run + 1, rest);
        d->failed++;
        any_failure = 1;
    }
}

/* Runs every selected store of one interpreter once (run `run`, n objects). */
static int run_zarr(const char *python, int run, const Params *p, double (*(*table)(Driver *))[MAX_RUNS],
                    char *version, size_t versionlen) {
    char stores[256] = "", a_run[16], a_n[32], a_size[32], a_g[32], a_b[32], a_bs[32], a_piece[32];
    for (int i = 0; i < NDRIVERS; i++) {
        Driver *d = &drivers[i];
        if (d->kind == K_ZARR && d->python == python && d->selected && (run < 0 || d->available)) {
            size_t len = strlen(stores);
            snprintf(stores + len, sizeof stores - len, "%s%s", len ? "," : "", d->store);
        }
    }
    if (stores[0] == '\0') return 0;
    snprintf(a_run, sizeof a_run, "%d", run);
    snprintf(a_n, sizeof a_n, "%zu", p->n);
    snprintf(a_size, sizeof a_size, "%zu", p->size);
    snprintf(a_g, sizeof a_g, "%zu", p->groups);
    snprintf(a_b, sizeof a_b, "%zu", p->big_count);
    snprintf(a_bs, sizeof a_bs, "%zu", p->big_size);
    snprintf(a_piece, sizeof a_piece, "%zu", p->piece);
    char *argv[] = {(char *)python, (char *)zarr_script, "--dir", work_dir, "--run", a_run,
                    "--n", a_n, "--size", a_size, "--groups", a_g, "--big-count", a_b,
                    "--big-size", a_bs, "--piece", a_piece, "--stores", stores,
                    run < 0 ? "--probe" : NULL, NULL};
    ZarrCtx ctx = {python, run, table, ""};
    int status = run_lines(argv, zarr_line, &ctx);
    if (version != NULL) snprintf(version, versionlen, "%s", ctx.version);
    if (status != 0 && run >= 0) {
        fprintf(stderr, "\nerror: %s %s exited with status %d\n", python, zarr_script, status);
        any_failure = 1;
        for (int i = 0; i < NDRIVERS; i++)
            if (drivers[i].kind == K_ZARR && drivers[i].python == python) drivers[i].failed++;
    }
    return status;
}

/* --- availability ---------------------------------------------------------------------- */

static char netcdf_version[64];
static char zarr_versions[2][32];

static void probe(Driver *d) {
    char loc[PATH_MAX];
    unsigned char back[16] = {0};
    void *h = NULL;
    location(d, 999, 0, loc, sizeof loc);
    memcpy_object_size = 16;
    int st = d->ops->create(d, loc, &h);
    if (st == NC_ENOTBUILT) {
        snprintf(d->note, sizeof d->note, "not built into this libzmap");
        return;
    }
    if (st == 0) st = d->ops->write(h, "/probe/x.1", 0, 5, "hello");
    if (st == 0) st = d->ops->write(h, "/probe/x.1", 5, 6, " world");
    if (st == 0) st = d->ops->close(d, h, 0), h = NULL;
    if (st == 0) st = d->ops->open(d, loc, 0, &h);
    if (st == 0) st = d->ops->read(h, "/probe/x.1", 0, 11, back);
    if (h != NULL) d->ops->close(d, h, 1);
    else remove_tree(loc);
    if (st != 0) {
        snprintf(d->note, sizeof d->note, "does not work here: %s (%d)", d->ops->strerror(st), st);
        return;
    }
    if (memcmp(back, "hello world", 11) != 0) {
        snprintf(d->note, sizeof d->note, "does not work here: wrong data read back");
        return;
    }
    d->available = 1;
}

static void find_backends(void) {
    /* Selection. */
    for (int i = 0; i < NDRIVERS; i++) drivers[i].selected = backend_list == NULL;
    if (backend_list != NULL) {
        char *list = strdup(backend_list), *save = NULL;
        for (char *id = strtok_r(list, ",", &save); id != NULL; id = strtok_r(NULL, ",", &save)) {
            int found = 0;
            for (int i = 0; i < NDRIVERS; i++)
                if (strcmp(drivers[i].id, id) == 0 || (strcmp(id, "zarr") == 0 && drivers[i].kind == K_ZARR) ||
                    (strcmp(id, "zarr2") == 0 && strncmp(drivers[i].id, "zarr2", 5) == 0) ||
                    (strcmp(id, "zarr3") == 0 && strncmp(drivers[i].id, "zarr3", 5) == 0))
                    drivers[i].selected = found = 1;
            if (!found) {
                fprintf(stderr, "unknown backend '%s'\n", id);
                exit(2);
            }
        }
        free(list);
    }

    for (int i = 0; i < NDRIVERS; i++) {
        Driver *d = &drivers[i];
        if (!d->selected) continue;
        switch (d->kind) {
        case K_FLOOR:
        case K_MEMCPY:
            d->available = 1;
            break;
        case K_ZMAP:
            if (d->impl == NCZM_S3 && s3_url == NULL) {
                snprintf(d->note, sizeof d->note, "ZMAP_TEST_S3_URL not set (scripts/seaweedfs.sh run ...)");
                break;
            }
            probe(d);
            break;
        case K_NETCDF: {
            char why[256];
            if (netcdf_load(why, sizeof why, netcdf_version, sizeof netcdf_version) != 0) {
                snprintf(d->note, sizeof d->note, "%s", why);
                break;
            }
            snprintf(d->label, sizeof d->label, "netCDF-C %s file", netcdf_version);
            probe(d);
            break;
        }
        case K_ZARR:
            break;
        }
    }

    /* zarr: one probe per interpreter. */
    const char *pythons[2] = {zarr2_python, zarr3_python};
    for (int v = 0; v < 2; v++) {
        const char *prefix = v == 0 ? "zarr2" : "zarr3";
        int wanted = 0;
        for (int i = 0; i < NDRIVERS; i++)
            if (strncmp(drivers[i].id, prefix, 5) == 0) {
                drivers[i].python = pythons[v];
                wanted |= drivers[i].selected;
            }
        if (!wanted) continue;
        const char *why = NULL;
        if (pythons[v] == NULL || access(pythons[v], X_OK) != 0) why = "no Python with zarr (run scripts/setup.sh)";
        else if (access(zarr_script, R_OK) != 0) why = "bench/zarr_bench.py not found";
        else if (run_zarr(pythons[v], -1, &P, main_table, zarr_versions[v], sizeof zarr_versions[v]) != 0 ||
                 zarr_versions[v][0] == '\0')
            why = "zarr is not importable";
        for (int i = 0; i < NDRIVERS; i++) {
            Driver *d = &drivers[i];
            if (strncmp(d->id, prefix, 5) != 0 || !d->selected) continue;
            if (why != NULL) {
                snprintf(d->note, sizeof d->note, "%s", why);
            } else {
                char kind[64];
                const char *space = strchr(d->label, ' ');
                space = space ? strchr(space + 1, ' ') : NULL;
                snprintf(kind, sizeof kind, "%s", space ? space + 1 : d->label);
                if (snprintf(d->label, sizeof d->label, "zarr %s %s", zarr_versions[v], kind) < 0) continue;
                d->available = 1;
            }
        }
    }
}

/* --- the report -------------------------------------------------------------------------- */

enum col {
    C_CREATE, C_DEFWRITE, C_CREATE_COMMIT, C_READ, C_STAT, C_SEARCH, C_BIGWRITE, C_BIGREAD, C_DELETE, C_NCOLS
};
static const char *col_titles[C_NCOLS] = {
    "create obj/s", "define+write obj/s", "create+commit obj/s", "read obj/s", "exists+len obj/s", "search calls/s",
    "16 MiB write MiB/s", "16 MiB read MiB/s", "delete obj/s",
};

static size_t search_calls(const Params *p) {
    return (p->groups < p->n ? p->groups : p->n) + 2;
}

/* The figure of column c for run r (a rate; NAN when not measured). */
static double rate(const Driver *d, int c, int r, const Params *p) {
    const double (*t)[MAX_RUNS] = d->t;
    double mib = (double)p->big_count * (double)p->big_size / MiB;
    switch (c) {
    case C_CREATE: return (double)p->n / t[PH_CREATE][r];
    case C_DEFWRITE: return (double)p->n / t[PH_DEFWRITE][r];
    case C_CREATE_COMMIT: return (double)p->n / (t[PH_CREATE][r] + t[PH_COMMIT][r]);
    case C_READ: return (double)p->n / t[PH_READ][r];
    case C_STAT: return (double)p->n / t[PH_STAT][r];
    case C_SEARCH: return (double)search_calls(p) / t[PH_SEARCH][r];
    case C_BIGWRITE: return mib / t[PH_BIGWRITE][r];
    case C_BIGREAD: return mib / t[PH_BIGREAD][r];
    case C_DELETE: return (double)((d->small ? p->n : 0) + (d->big ? p->big_count : 0)) / t[PH_DELETE][r];
    }
    return NAN;
}

static void fmt_num(char *buf, size_t n, double v) {
    if (!isfinite(v)) snprintf(buf, n, "–");
    else if (v >= 1e7) snprintf(buf, n, "%.1fM", v / 1e6);
    else if (v >= 1e6) snprintf(buf, n, "%.2fM", v / 1e6);
    else if (v >= 1e5) snprintf(buf, n, "%.0fk", v / 1e3);
    else if (v >= 1e4) snprintf(buf, n, "%.1fk", v / 1e3);
    else if (v >= 1e3) snprintf(buf, n, "%.2fk", v / 1e3);
    else if (v >= 100) snprintf(buf, n, "%.0f", v);
    else if (v >= 10) snprintf(buf, n, "%.1f", v);
    else snprintf(buf, n, "%.2f", v);
}

static void fmt_ratio(char *buf, size_t n, double v) {
    if (!isfinite(v)) snprintf(buf, n, "–");
    else if (v >= 100) snprintf(buf, n, "%.0f×", v);
    else if (v >= 10) snprintf(buf, n, "%.1f×", v);
    else snprintf(buf, n, "%.2f×", v);
}

static void cell_stat(char *buf, size_t n, Stat3 s, void (*fmt)(char *, size_t, double)) {
    char a[32], b[32], c[32];
    fmt(a, sizeof a, s.med);
    if (s.count > 1) {
        fmt(b, sizeof b, s.min);
        fmt(c, sizeof c, s.max);
        snprintf(buf, n, "%s (%s–%s)", a, b, c);
    } else {
        snprintf(buf, n, "%s", a);
    }
}

static Stat3 rate_stat(const Driver *d, int c, const Params *p) {
    double v[MAX_RUNS];
    for (int r = 0; r < runs; r++) v[r] = rate(d, c, r, p);
    return stats(v, runs);
}

/* The per-run reference rate of column c for a named baseline. */
typedef double (*RefFn)(int c, int r, const Params *p);

static double ref_driver(const char *id, int c, int r, const Params *p) {
    Driver *d = driver(id);
    return usable(d) ? rate(d, c, r, p) : NAN;
}

/* define+write is measured against the floor's create: its open/write/close is the least an object costs. */
static double ref_floor(int c, int r, const Params *p) {
    if (c == C_DEFWRITE) c = C_CREATE;
    return c == C_BIGWRITE || c == C_BIGREAD ? ref_driver("memcpy", c, r, p) : ref_driver("floor", c, r, p);
}

static double ref_netcdf(int c, int r, const Params *p) {
    return ref_driver("netcdf", c, r, p);
}

static double ref_file(int c, int r, const Params *p) {
    return ref_driver("file", c, r, p);
}

static double ref_gnz(int c, int r, const Params *p) {
    return ref_driver("gnz", c, r, p);
}

/* zarr's memory stores: the faster of 2.x and 3.x, run by run. */
static double ref_zarr_mem(int c, int r, const Params *p) {
    double a = ref_driver("zarr2-mem", c, r, p), b = ref_driver("zarr3-mem", c, r, p);
    if (!isfinite(a)) return b;
    if (!isfinite(b)) return a;
    return a > b ? a : b;
}

static Stat3 ratio_stat(const Driver *d, int c, RefFn ref, const Params *p) {
    double v[MAX_RUNS];
    for (int r = 0; r < runs; r++) v[r] = rate(d, c, r, p) / ref(c, r, p);
    return stats(v, runs);
}

static int shown(const Driver *d) {
    return d->selected && d->available;
}

static void print_rates(const Params *p) {
    char cell[128];
    printf("| backend |");
    for (int c = 0; c < C_NCOLS; c++) printf(" %s |", col_titles[c]);
    printf("\n|---|");
    for (int c = 0; c < C_NCOLS; c++) printf("---:|");
    printf("\n");
    for (int i = 0; i < NDRIVERS; i++) {
        Driver *d = &drivers[i];
        if (!shown(d)) continue;
        printf("| %s |", d->label);
        for (int c = 0; c < C_NCOLS; c++) {
            cell_stat(cell, sizeof cell, rate_stat(d, c, p), fmt_num);
            printf(" %s |", cell);
        }
        printf("\n");
    }
}

static void print_ratios(const char *what, RefFn ref, const char *skip_id, const Params *p) {
    char cell[128];
    printf("\n%s\n\n| backend |", what);
    for (int c = 0; c < C_NCOLS; c++) printf(" %s |", col_titles[c]);
    printf("\n|---|");
    for (int c = 0; c < C_NCOLS; c++) printf("---:|");
    printf("\n");
    for (int i = 0; i < NDRIVERS; i++) {
        Driver *d = &drivers[i];
        if (!shown(d) || (skip_id != NULL && strcmp(d->id, skip_id) == 0)) continue;
        int any = 0;
        for (int c = 0; c < C_NCOLS; c++) any |= isfinite(ratio_stat(d, c, ref, p).med);
        if (!any) continue;
        printf("| %s |", d->label);
        for (int c = 0; c < C_NCOLS; c++) {
            cell_stat(cell, sizeof cell, ratio_stat(d, c, ref, p), fmt_ratio);
            printf(" %s |", cell);
        }
        printf("\n");
    }
}

static void fmt_ms(char *buf, size_t n, double seconds) {
    if (!isfinite(seconds)) snprintf(buf, n, "–");
    else if (seconds * 1e3 >= 100) snprintf(buf, n, "%.0f", seconds * 1e3);
    else if (seconds * 1e3 >= 10) snprintf(buf, n, "%.1f", seconds * 1e3);
    else snprintf(buf, n, "%.2f", seconds * 1e3);
}

static void fmt_plain_ratio(char *buf, size_t n, double v) {
    if (!isfinite(v)) snprintf(buf, n, "–");
    else snprintf(buf, n, "%.3f", v);
}

static void print_durability(const Params *p) {
    static const struct {
        const char *title;
        int phase;
        int is_size;
    } cols[] = {
        {"commit of the small objects ms", PH_COMMIT, 0},
        {"commit of the 16 MiB objects ms", PH_BIGCOMMIT, 0},
        {"open (read-only) ms", PH_OPEN, 0},
        {"drop (close+delete) ms", PH_DROP, 0},
        {"size / payload", PH_SIZE, 1},
        {"compact ms", PH_COMPACT, 0},
        {"size / payload after compact", PH_SIZE_COMPACTED, 1},
    };
    double payload = (double)p->n * (double)p->size + (double)p->big_count * (double)p->big_size;
    char cell[128];
    printf("| backend |");
    for (size_t c = 0; c < sizeof cols / sizeof cols[0]; c++) printf(" %s |", cols[c].title);
    printf("\n|---|");
    for (size_t c = 0; c < sizeof cols / sizeof cols[0]; c++) printf("---:|");
    printf("\n");
    for (int i = 0; i < NDRIVERS; i++) {
        Driver *d = &drivers[i];
        if (!shown(d)) continue;
        printf("| %s |", d->label);
        for (size_t c = 0; c < sizeof cols / sizeof cols[0]; c++) {
            double v[MAX_RUNS];
            for (int r = 0; r < runs; r++) v[r] = d->t[cols[c].phase][r] / (cols[c].is_size ? payload : 1);
            Stat3 s = stats(v, runs);
            if (cols[c].is_size) cell_stat(cell, sizeof cell, s, fmt_plain_ratio);
            else cell_stat(cell, sizeof cell, s, fmt_ms);
            printf(" %s |", cell);
        }
        printf("\n");
    }
}

/* --- targets --------------------------------------------------------------------------- */

enum where { ANY_FS, TMPFS_ONLY, DISK_ONLY };

typedef struct Target {
    const char *text;
    const char *id;   /* the backend measured */
    int col;          /* its column (-1: size after compaction) */
    RefFn ref;        /* NULL: an absolute figure */
    int ref_col;      /* the reference's column */
    double bound;
    int at_most;      /* the figure must be <= bound */
    enum where where;
} Target;

static double ref_one_file(int c, int r, const Params *p);

static const Target targets[] = {
    {"FILE create ≥ 0.8× raw open/write/close", "file", C_CREATE, ref_floor, C_CREATE, 0.8, 0, TMPFS_ONLY},
    {"FILE define+write (NCZarr's create) ≥ 0.8× raw open/write/close", "file", C_DEFWRITE, ref_floor, C_CREATE, 0.8, 0,
     TMPFS_ONLY},
    {"FILE read ≥ 0.8× raw open/read/close", "file", C_READ, ref_floor, C_READ, 0.8, 0, TMPFS_ONLY},
    {"GNZ create+commit ≥ 50× netCDF-C file create", "gnz", C_CREATE_COMMIT, ref_netcdf, C_CREATE, 50, 0, DISK_ONLY},
    {"MEM create ≥ 2× zarr MemoryStore (faster of 2.x/3.x)", "mem", C_CREATE, ref_zarr_mem, C_CREATE, 2, 0, ANY_FS},
    {"MEM read ≥ 2× zarr MemoryStore (faster of 2.x/3.x)", "mem", C_READ, ref_zarr_mem, C_READ, 2, 0, ANY_FS},
    {"MEM 16 MiB read ≥ 0.8× memcpy", "mem", C_BIGREAD, ref_floor, C_BIGREAD, 0.8, 0, ANY_FS},
    {"GNZ 16 MiB read ≥ 0.8× memcpy", "gnz", C_BIGREAD, ref_floor, C_BIGREAD, 0.8, 0, ANY_FS},
    {"GNZ create+commit ≥ 500,000 obj/s", "gnz", C_CREATE_COMMIT, NULL, 0, 500000, 0, ANY_FS},
    {"MEM create ≥ 2,000,000 obj/s (C API)", "mem", C_CREATE, NULL, 0, 2000000, 0, ANY_FS},
    {"GNZ create+commit ≥ 1,500,000 obj/s (tmpfs)", "gnz", C_CREATE_COMMIT, NULL, 0, 1500000, 0, TMPFS_ONLY},
    {"GNZ create+commit ≥ 0.7× one-file floor (same bytes: 1 MiB pwrites + fdatasync)", "gnz", C_CREATE_COMMIT,
     ref_one_file, C_CREATE, 0.7, 0, ANY_FS},
    {"GNZ read (read-only map) ≥ 2,000,000 obj/s", "gnz", C_READ, NULL, 0, 2000000, 0, ANY_FS},
    {"GNZ search ≥ 200,000 calls/s", "gnz", C_SEARCH, NULL, 0, 200000, 0, ANY_FS},
    {"GNZ file size after compaction ≤ 1.3× payload", "gnz", -1, NULL, 0, 1.3, 1, ANY_FS},
};

static int on_tmpfs;

static void print_targets(const Params *p) {
    printf("| target | measured | met? |\n|---|---:|---|\n");
    double payload = (double)p->n * (double)p->size + (double)p->big_count * (double)p->big_size;
    for (size_t k = 0; k < sizeof targets / sizeof targets[0]; k++) {
        const Target *t = &targets[k];
        Driver *d = driver(t->id);
        char got[64], status[1024];
        if (d == NULL || !d->selected) continue;
        double v[MAX_RUNS];
        for (int r = 0; r < runs; r++) {
            if (!usable(d)) v[r] = NAN;
            else if (t->col < 0) v[r] = d->t[PH_SIZE_COMPACTED][r] / payload;
            else if (t->ref == NULL) v[r] = rate(d, t->col, r, p);
            else v[r] = rate(d, t->col, r, p) / t->ref(t->ref_col, r, p);
        }
        Stat3 s = stats(v, runs);
        if (t->col < 0) fmt_plain_ratio(got, sizeof got, s.med);
        else if (t->ref == NULL) fmt_num(got, sizeof got, s.med);
        else fmt_ratio(got, sizeof got, s.med);
        if (!usable(d)) snprintf(status, sizeof status, "n/a: %s %s", d ? d->label : t->id, d ? d->note : "");
        else if (!isfinite(s.med)) snprintf(status, sizeof status, "n/a: not measured (baseline or feature missing)");
        else {
            int met = t->at_most ? s.med <= t->bound : s.med >= t->bound;
            snprintf(status, sizeof status, "%s", met ? "met" : "**missed**");
        }
        const char *where = "";
        if (t->where == TMPFS_ONLY && !on_tmpfs) where = " (the target is set on tmpfs)";
        if (t->where == DISK_ONLY && on_tmpfs) where = " (the target is set on the disk)";
        printf("| %s | %s | %s%s |\n", t->text, got, status, where);
    }
}

/* --- the machine -------------------------------------------------------------------------- */

static const char *fs_name(const char *path) {
    struct statfs s;
    if (statfs(path, &s) != 0) return "unknown";
    switch ((unsigned long)s.f_type) {
    case 0x01021994UL: on_tmpfs = 1; return "tmpfs";
    case 0xEF53UL: return "ext4";
    case 0x58465342UL: return "xfs";
    case 0x9123683EUL: return "btrfs";
    case 0x794C7630UL: return "overlayfs";
    case 0x2FC12FC1UL: return "zfs";
    default: return "other";
    }
}

static void machine(char *buf, size_t n) {
    char model[256] = "unknown CPU", line[512];
    FILE *f = fopen("/proc/cpuinfo", "r");
    while (f != NULL && fgets(line, sizeof line, f) != NULL) {
        if (strncmp(line, "model name", 10) == 0) {
            char *colon = strchr(line, ':');
            if (colon != NULL) {
                snprintf(model, sizeof model, "%s", colon + 2);
                model[strcspn(model, "\n")] = '\0';
            }
            break;
        }
    }
    if (f != NULL) fclose(f);
    struct utsname u;
    uname(&u);
    long cpus = sysconf(_SC_NPROCESSORS_ONLN);
    double mem = (double)sysconf(_SC_PHYS_PAGES) * (double)sysconf(_SC_PAGESIZE) / (1024.0 * 1024 * 1024);
    snprintf(buf, n, "%s, %ld cores, %.0f GiB RAM, %s %s %s", model, cpus, mem, u.sysname, u.release, u.machine);
}

/* The load average, as /proc/loadavg says it (other work on the machine moves the figures). */
static void loadavg(char *buf, size_t n) {
    FILE *f = fopen("/proc/loadavg", "r");
    double a = 0, b = 0, c = 0;
    if (f == NULL || fscanf(f, "%lf %lf %lf", &a, &b, &c) != 3) snprintf(buf, n, "unknown");
    else snprintf(buf, n, "%.2f %.2f %.2f", a, b, c);
    if (f != NULL) fclose(f);
}

static void print_notes(void) {
    int any = 0;
    for (int i = 0; i < NDRIVERS; i++) {
        Driver *d = &drivers[i];
        if (!d->selected || d->note[0] == '\0') continue;
        if (!any) printf("\nNotes:\n");
        any = 1;
        printf("- %s: %s%s\n", d->label, d->available ? "" : "skipped: ", d->note);
    }
    for (int i = 0; i < NDRIVERS; i++)
        if (drivers[i].failed) printf("- %s: **%d failure(s)**: see the program's stderr\n", drivers[i].label, drivers[i].failed);
}

/* --- the main workload ----------------------------------------------------------------------- */

/* The one-file floor of a create+commit: the same N objects copied into a
 * 1 MiB buffer and written to one fresh file with one pwrite per MiB, then
 * fdatasync and close. GNZ (one file, staged writes) cannot be faster than
 * this on the same file system: it writes the same bytes and a header. */
static double one_file_t[MAX_RUNS];

static void one_file_floor(int run, const Params *p) {
    char path[PATH_MAX + 32];
    snprintf(path, sizeof path, "%s/one-file-floor-%d", work_dir, run);
    size_t cap = 1u << 20;
    unsigned char *buf = malloc(cap);
    if (buf == NULL) return;
    double t0 = now();
    int fd = open(path, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0644);
    if (fd < 0) {
        free(buf);
        return;
    }
    size_t used = 0;
    off_t at = 0;
    int ok = 1;
    for (size_t i = 0; i < p->n && ok; i++) {
        stamp(small_buf, p->size, i);
        if (used + p->size > cap) {
            ok = pwrite(fd, buf, used, at) == (ssize_t)used;
            at += (off_t)used;
            used = 0;
        }
        memcpy(buf + used, small_buf, p->size);
        used += p->size;
    }
    if (ok && used > 0) ok = pwrite(fd, buf, used, at) == (ssize_t)used;
    if (ok) ok = fdatasync(fd) == 0;
    ok = close(fd) == 0 && ok;
    double took = now() - t0;
    unlink(path);
    free(buf);
    one_file_t[run] = ok ? took : NAN;
}

static double ref_one_file(int c, int r, const Params *p) {
    (void)c;
    return isfinite(one_file_t[r]) ? (double)p->n / one_file_t[r] : NAN;
}

static void run_main(const char *fs) {
    make_keys(P.n, P.groups);
    make_buffers(&P);
    for (int i = 0; i < NDRIVERS; i++)
        for (int k = 0; k < PH_COUNT; k++)
            for (int r = 0; r < MAX_RUNS; r++) drivers[i].t[k][r] = NAN;

    char load_before[64], load_after[64];
    loadavg(load_before, sizeof load_before);
    double started = now();
    for (int r = 0; r < runs; r++) {
        progress("run %d/%d:", r + 1, runs);
        /* Rotate the order so that no backend always runs first or last.
         * Every C backend's small-object phases first, then zarr-python's
         * runs (their own processes, small objects first too), then the
         * rest of each C backend's run: no small-object phase follows
         * another backend's 1 GiB of 16 MiB objects in the same run. */
        int small_failed[NDRIVERS] = {0};
        one_file_t[r] = NAN;
        if (usable(driver("gnz"))) one_file_floor(r, &P);
        for (int k = 0; k < NDRIVERS; k++) {
            int i = (k + r) % NDRIVERS;
            if (!usable(&drivers[i]) || drivers[i].kind == K_ZARR) continue;
            progress(" %s", drivers[i].id);
            small_failed[i] = run_part(&drivers[i], r, &P, drivers[i].t, PART_SMALL) != 0;
        }
        int done_python[2] = {0, 0};
        for (int k = 0; k < NDRIVERS; k++) {
            Driver *d = &drivers[(k + r) % NDRIVERS];
            if (!usable(d) || d->kind != K_ZARR) continue;
            int v = strncmp(d->id, "zarr2", 5) == 0 ? 0 : 1;
            if (done_python[v]) continue;
            done_python[v] = 1;
            progress(" zarr%d", v + 2);
            run_zarr(d->python, r, &P, main_table, NULL, 0);
        }
        progress(" |");
        for (int k = 0; k < NDRIVERS; k++) {
            int i = (k + r) % NDRIVERS;
            if (!usable(&drivers[i]) || drivers[i].kind == K_ZARR || small_failed[i]) continue;
            progress(" %s", drivers[i].id);
            run_part(&drivers[i], r, &P, drivers[i].t, PART_REST);
        }
        progress(" (%.0f s)\n", now() - started);
    }

    double took = now() - started;
    loadavg(load_after, sizeof load_after);
    char host[512];
    machine(host, sizeof host);
    time_t t = time(NULL);
    char date[64];
    strftime(date, sizeof date, "%Y-%m-%d %H:%M UTC", gmtime(&t));
    printf("## %s%s%s\n\n", title ? title : fs, title ? "" : " ", title ? "" : work_dir);
    printf("- file system: **%s** (`%s`)\n", fs, base_dir);
    printf("- machine: %s; load average %s before, %s after (%.0f s)\n", host, load_before, load_after, took);
    printf("- libzmap %s%s%s; %s\n", nczmap_version(), netcdf_version[0] ? "; netCDF-C " : "", netcdf_version,
           date);
    printf("- workload: %zu objects × %zu B under `/g0/v{i%%%zu}/c.{i}`; %zu × %.0f MiB written in %.0f MiB pieces; "
           "%d run(s), interleaved; each figure is the median (min–max) of the runs, each ratio the median "
           "(min–max) of the per-run ratios\n",
           P.n, P.size, P.groups, P.big_count, (double)P.big_size / MiB, (double)P.piece / MiB, runs);
    printf("- search: %zu calls per run (`/`, `/g0`, each group); exists+len: two calls per object\n",
           search_calls(&P));
    print_process_note();
    if (usable(driver("gnz"))) {
        double v[MAX_RUNS];
        for (int r = 0; r < runs; r++) v[r] = ref_one_file(C_CREATE, r, &P);
        char cell[160];
        cell_stat(cell, sizeof cell, stats(v, runs), fmt_num);
        printf("- one-file floor of a create+commit (the same objects copied into 1 MiB pwrites to one fresh file, "
               "fdatasync, close), measured in each run: %s obj/s\n",
               cell);
    }
    printf("\n");

    printf("### Rates\n\n");
    print_rates(&P);
    print_ratios("### Ratio to the floor (raw syscalls; memcpy for the 16 MiB columns)", ref_floor, NULL, &P);
    if (usable(driver("netcdf"))) print_ratios("### Ratio to netCDF-C's own zmap file backend", ref_netcdf, "netcdf", &P);
    if (usable(driver("zarr2-mem")) || usable(driver("zarr3-mem")))
        print_ratios("### Ratio to zarr's MemoryStore (the faster of 2.x and 3.x, run by run)", ref_zarr_mem, NULL, &P);
    if (usable(driver("file")) && usable(driver("gnz")))
        print_ratios("### Ratio to the FILE (directory) backend", ref_file, "file", &P);
    if (usable(driver("nc4")) && usable(driver("gnz")))
        print_ratios("### Ratio to the GNZ backend", ref_gnz, "gnz", &P);
    printf("\n### Durability, open, delete, size\n\n");
    print_durability(&P);
    int any_target = 0;
    for (size_t k = 0; k < sizeof targets / sizeof targets[0]; k++) {
        Driver *d = driver(targets[k].id);
        any_target |= d != NULL && d->selected;
    }
    if (any_target && !no_targets) {
        printf("\n### Targets\n\n");
        print_targets(&P);
    }
    print_notes();
    printf("\n");
}

/* --- scaling ------------------------------------------------------------------------------- */

static int scaling_disk_tree(const Driver *d) {
    return d->kind == K_FLOOR || d->kind == K_NETCDF || (d->kind == K_ZMAP && d->impl == NCZM_FILE);
}

static void run_scaling(const char *fs) {
    static double tab[NDRIVERS][16][PH_COUNT][MAX_RUNS];
    Params p = P;
    p.big_count = 0;
    int saved_runs = runs;
    runs = scaling_runs;
    for (int i = 0; i < NDRIVERS; i++)
        for (int s = 0; s < 16; s++)
            for (int k = 0; k < PH_COUNT; k++)
                for (int r = 0; r < MAX_RUNS; r++) tab[i][s][k][r] = NAN;
    char load_before[64], load_after[64], host[512];
    loadavg(load_before, sizeof load_before);
    machine(host, sizeof host);
    double started = now();
    for (int s = 0; s < scaling_count; s++) {
        p.n = scaling_n[s];
        make_keys(p.n, p.groups);
        make_buffers(&p);
        for (int r = 0; r < runs; r++) {
            progress("N=%zu run %d/%d:", p.n, r + 1, runs);
            for (int i = 0; i < NDRIVERS; i++) {
                Driver *d = &drivers[i];
                if (!usable(d) || !d->small || d->kind == K_ZARR) continue;
                if (scaling_disk_tree(d) && p.n > scaling_file_max) continue;
                progress(" %s", d->id);
                run_part(d, r, &p, tab[i][s], PART_ALL);
            }
            progress(" (%.0f s)\n", now() - started);
        }
    }

    /* growth: of the per-object operations only; commit, open and drop are one call each,
     * a fixed cost for most backends, and their cost per object is shown, not judged. */
    static const struct {
        const char *title;
        int phase;
        int per_entry;
        int growth;
    } cols[] = {
        {"create", PH_CREATE, 0, 1}, {"commit", PH_COMMIT, 0, 0}, {"open", PH_OPEN, 0, 0},
        {"read", PH_READ, 0, 1},     {"exists+len", PH_STAT, 0, 1}, {"search (per entry)", PH_SEARCH, 1, 1},
        {"delete", PH_DELETE, 0, 1}, {"drop", PH_DROP, 0, 0},   {"define+write", PH_DEFWRITE, 0, 1},
    };
    const int ncols = (int)(sizeof cols / sizeof cols[0]);
    loadavg(load_after, sizeof load_after);
    printf("## %s%s%s\n\n", title ? title : "Scaling on ", title ? "" : fs, "");
    printf("- file system: **%s** (`%s`); machine: %s; load average %s before, %s after (%.0f s); libzmap %s\n\n",
           fs, base_dir, host, load_before, load_after, now() - started, nczmap_version());
    print_process_note();
    printf("\n");
    printf("Small-object phases only, G = %zu groups, %zu B objects, median of %d runs. Cost per object in ns "
           "(search: per listed entry, %zu calls listing 1 + G + N entries). The last column is the largest "
           "growth of the cost of create, read, exists+len, search, delete or define+write from the smallest N to this N "
           "(1.0 = flat; an O(n²) step grows about 10× per decade). commit, open and drop are one call "
           "each: their cost per object is shown, not counted in the growth.\n\n",
           p.groups, p.size, runs, p.groups + 2);
    printf("| backend | N |");
    for (int c = 0; c < ncols; c++) printf(" %s |", cols[c].title);
    printf(" growth |\n|---|---:|");
    for (int c = 0; c < ncols; c++) printf("---:|");
    printf("---:|\n");
    for (int i = 0; i < NDRIVERS; i++) {
        Driver *d = &drivers[i];
        if (!usable(d) || !d->small || d->kind == K_ZARR) continue;
        double first[16];
        int have_first = 0;
        for (int s = 0; s < scaling_count; s++) {
            size_t n = scaling_n[s];
            if (scaling_disk_tree(d) && n > scaling_file_max) continue;
            double entries = 1.0 + (double)(p.groups < n ? p.groups : n) + (double)n;
            double growth = 0;
            printf("| %s | %zu |", d->label, n);
            for (int c = 0; c < ncols; c++) {
                Stat3 st = stats(tab[i][s][cols[c].phase], runs);
                double per = st.med / (cols[c].per_entry ? entries : (double)n) * 1e9;
                char cell[32];
                if (!isfinite(per)) snprintf(cell, sizeof cell, "–");
                else if (per >= 100) snprintf(cell, sizeof cell, "%.0f", per);
                else snprintf(cell, sizeof cell, "%.1f", per);
                printf(" %s |", cell);
                if (!have_first) first[c] = per;
                else if (cols[c].growth && isfinite(per) && isfinite(first[c]) && first[c] > 0 &&
                         per / first[c] > growth)
                    growth = per / first[c];
            }
            if (!have_first) printf(" 1.0 |\n");
            else printf(" %.2f |\n", growth);
            have_first = 1;
        }
    }
    printf("\n");
    print_notes();
    printf("\n");
    runs = saved_runs;
}

/* --- main ------------------------------------------------------------------------------------ */

static void usage(FILE *to) {
    fprintf(to,
            "usage: zmap_bench [options]\n"
            "  --dir DIR            where datasets are made (default /dev/shm, else /tmp)\n"
            "  --n N --size S --groups G      small objects (10000, 1024, 100)\n"
            "  --big-count B --big-size BS --piece P   big objects (64, 16M, 1M)\n"
            "  --runs R             runs per backend, interleaved (5, at most %d)\n"
            "  --backends LIST      comma-separated: floor,memcpy,mem,file,gnz,zip,s3,nc4,netcdf,zarr2-dir,\n"
            "                       zarr2-zip,zarr2-mem,zarr3-local,zarr3-zip,zarr3-mem (or zarr, zarr2, zarr3)\n"
            "  --zarr2-python PY --zarr3-python PY   interpreters with zarr 2.x / 3.x\n"
            "                       (default: the repository's .venv-zarr2 / .venv-zarr3)\n"
            "  --zarr-script PATH   bench/zarr_bench.py\n"
            "  --scaling LIST       e.g. 1000,10000,100000,1000000: per-object cost at each N instead\n"
            "  --scaling-runs R     runs per N (3)\n"
            "  --scaling-file-max N largest N for the one-file-per-object backends (100000)\n"
            "  --title TEXT         the heading of the report\n"
            "  --no-targets         leave the targets table out\n"
            "  --together           run nc4 and netcdf (HDF5) in this process too, not in a child\n"
            "                       process per part (HDF5's heap then slows every backend after it)\n"
            "  --quick              a smoke run: N=300, G=10, 2 × 4 MiB, 1 run\n"
            "S3: set ZMAP_TEST_S3_URL (scripts/seaweedfs.sh run ...) with a libzmap built with the s3 feature.\n",
            MAX_RUNS);
}

int main(int argc, char **argv) {
    static char py2[PATH_MAX], py3[PATH_MAX], script[PATH_MAX];
    snprintf(py2, sizeof py2, "%s/.venv-zarr2/bin/python", ZMAP_BENCH_SOURCE_DIR);
    snprintf(py3, sizeof py3, "%s/.venv-zarr3/bin/python", ZMAP_BENCH_SOURCE_DIR);
    snprintf(script, sizeof script, "%s/bench/zarr_bench.py", ZMAP_BENCH_SOURCE_DIR);
    zarr2_python = py2;
    zarr3_python = py3;
    zarr_script = script;
    s3_url = getenv("ZMAP_TEST_S3_URL");
    if (s3_url != NULL && s3_url[0] == '\0') s3_url = NULL;

    for (int i = 1; i < argc; i++) {
        const char *a = argv[i];
        const char *v = i + 1 < argc ? argv[i + 1] : NULL;
#define VALUE()                                                    \
    do {                                                           \
        if (v == NULL) {                                           \
            fprintf(stderr, "%s needs a value\n", a);              \
            return 2;                                              \
        }                                                          \
        i++;                                                       \
    } while (0)
        if (strcmp(a, "--help") == 0 || strcmp(a, "-h") == 0) {
            usage(stdout);
            return 0;
        } else if (strcmp(a, "--no-targets") == 0) {
            no_targets = 1;
        } else if (strcmp(a, "--together") == 0) {
            together = 1;
        } else if (strcmp(a, "--quick") == 0) {
            quick = 1;
            P.n = 300;
            P.groups = 10;
            P.big_count = 2;
            P.big_size = 4u << 20;
            runs = 1;
        } else if (strcmp(a, "--dir") == 0) { VALUE(); base_dir = v;
        } else if (strcmp(a, "--n") == 0) { VALUE(); P.n = parse_size(v);
        } else if (strcmp(a, "--size") == 0) { VALUE(); P.size = parse_size(v);
        } else if (strcmp(a, "--groups") == 0) { VALUE(); P.groups = parse_size(v);
        } else if (strcmp(a, "--big-count") == 0) { VALUE(); P.big_count = parse_size(v);
        } else if (strcmp(a, "--big-size") == 0) { VALUE(); P.big_size = parse_size(v);
        } else if (strcmp(a, "--piece") == 0) { VALUE(); P.piece = parse_size(v);
        } else if (strcmp(a, "--runs") == 0) { VALUE(); runs = atoi(v);
        } else if (strcmp(a, "--backends") == 0) { VALUE(); backend_list = v;
        } else if (strcmp(a, "--zarr2-python") == 0) { VALUE(); zarr2_python = v;
        } else if (strcmp(a, "--zarr3-python") == 0) { VALUE(); zarr3_python = v;
        } else if (strcmp(a, "--zarr-script") == 0) { VALUE(); zarr_script = v;
        } else if (strcmp(a, "--title") == 0) { VALUE(); title = v;
        } else if (strcmp(a, "--scaling-runs") == 0) { VALUE(); scaling_runs = atoi(v);
        } else if (strcmp(a, "--scaling-file-max") == 0) { VALUE(); scaling_file_max = parse_size(v);
        } else if (strcmp(a, "--scaling") == 0) {
            VALUE();
            char *list = strdup(v), *save = NULL;
            for (char *x = strtok_r(list, ",", &save); x != NULL && scaling_count < 16; x = strtok_r(NULL, ",", &save))
                scaling_n[scaling_count++] = parse_size(x);
            free(list);
        } else {
            fprintf(stderr, "unknown option %s\n", a);
            usage(stderr);
            return 2;
        }
#undef VALUE
    }
    if (runs < 1 || runs > MAX_RUNS || scaling_runs < 1 || scaling_runs > MAX_RUNS || P.groups < 1 ||
        P.size < 1 || P.piece < 1 || P.big_size < 1) {
        fprintf(stderr, "bad parameters\n");
        return 2;
    }
    if (base_dir == NULL) base_dir = access("/dev/shm", W_OK) == 0 ? "/dev/shm" : "/tmp";
    char resolved[PATH_MAX];
    if (realpath(base_dir, resolved) == NULL) {
        fprintf(stderr, "--dir %s: %s\n", base_dir, strerror(errno));
        return 2;
    }
    if (snprintf(work_dir, sizeof work_dir, "%s/zmap-bench.XXXXXX", resolved) >= (int)sizeof work_dir ||
        mkdtemp(work_dir) == NULL) {
        fprintf(stderr, "mkdtemp in %s: %s\n", resolved, strerror(errno));
        return 2;
    }
    const char *fs = fs_name(work_dir);
    progress("zmap_bench: %s (%s), libzmap %s\n", work_dir, fs, nczmap_version());

    find_backends();
    for (int i = 0; i < NDRIVERS; i++)
        if (drivers[i].selected && !drivers[i].available)
            progress("  skipped %s: %s\n", drivers[i].label, drivers[i].note);

    if (scaling_count > 0) run_scaling(fs);
    else run_main(fs);

    remove_tree(work_dir);
    if (any_failure) progress("zmap_bench: some backends FAILED (see above)\n");
    return any_failure ? 1 : 0;
}
