/* quickstart: a small Zarr v2 dataset in every available zmap backend.
 *
 *   quickstart [DIR]      (DIR defaults to ./quickstart-data)
 *
 * For each backend (mem, file, gnz, nc4; one that gives NC_ENOTBUILT is skipped)
 * it creates a dataset holding a group with one 4x4 float32 array in two
 * chunks, closes it, opens it again read-only, prints its keys as a tree with
 * sizes, reads everything back and checks it. The file, gnz and nc4 (a
 * netCDF-4 file: try `ncdump DIR/quickstart.nc`) datasets stay
 * in DIR for a look; the in-memory one is deleted. On any error it prints
 * nczmap_strerror's message and exits 1.
 */
/* mkdir() under -std=c11. */
#define _POSIX_C_SOURCE 200809L

#include <errno.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "zmap.h"

#define ROWS 4
#define COLS 4
#define CHUNK_ROWS 2
#define NCHUNKS (ROWS / CHUNK_ROWS)
#define CHUNK_VALUES (CHUNK_ROWS * COLS)
#define CHUNK_BYTES (CHUNK_VALUES * 4)

static const char ZGROUP[] = "{\n    \"zarr_format\": 2\n}\n";
static const char ZARRAY[] =
    "{\n"
    "    \"chunks\": [2, 4],\n"
    "    \"compressor\": null,\n"
    "    \"dtype\": \"<f4\",\n"
    "    \"fill_value\": 0,\n"
    "    \"filters\": null,\n"
    "    \"order\": \"C\",\n"
    "    \"shape\": [4, 4],\n"
    "    \"zarr_format\": 2\n"
    "}\n";
static const char *const CHUNK_KEYS[NCHUNKS] = {"/temperature/0.0", "/temperature/1.0"};

struct backend {
    const char *name;
    NCZM_IMPL impl;
};

/* What a run over one backend found. */
struct tally {
    int objects;
    int groups;
    unsigned long long bytes;
};

static int report(const char *backend, const char *what, int status) {
    fprintf(stderr, "quickstart: %s: %s: %s (%d)\n", backend, what, nczmap_strerror(status),
            status);
    return status;
}

/* Chunk `c` of the array as raw little-endian float32: values c*8 .. c*8+7. */
static void make_chunk(int c, unsigned char out[CHUNK_BYTES]) {
    for (int i = 0; i < CHUNK_VALUES; i++) {
        float value = (float)(c * CHUNK_VALUES + i);
        uint32_t bits;
        memcpy(&bits, &value, sizeof bits);
        for (int b = 0; b < 4; b++) out[4 * i + b] = (unsigned char)(bits >> (8 * b));
    }
}

static float read_le_float(const unsigned char *p) {
    uint32_t bits = (uint32_t)p[0] | (uint32_t)p[1] << 8 | (uint32_t)p[2] << 16 |
                    (uint32_t)p[3] << 24;
    float value;
    memcpy(&value, &bits, sizeof value);
    return value;
}

static int write_dataset(const struct backend *be, const char *location) {
    NCZMAP *map = NULL;
    unsigned char chunk[CHUNK_BYTES];
    int status = nczmap_create(be->impl, location, NC_CLOBBER, 0, NULL, &map);
    if (status == NC_ENOTBUILT) return status;
    if (status != NC_NOERR) return report(be->name, "create", status);

    status = nczmap_write(map, "/.zgroup", 0, strlen(ZGROUP), ZGROUP);
    if (status != NC_NOERR) report(be->name, "write /.zgroup", status);
    if (status == NC_NOERR) {
        status = nczmap_write(map, "/temperature/.zarray", 0, strlen(ZARRAY), ZARRAY);
        if (status != NC_NOERR) report(be->name, "write /temperature/.zarray", status);
    }
    for (int c = 0; c < NCHUNKS && status == NC_NOERR; c++) {
        make_chunk(c, chunk);
        status = nczmap_write(map, CHUNK_KEYS[c], 0, CHUNK_BYTES, chunk);
        if (status != NC_NOERR) report(be->name, CHUNK_KEYS[c], status);
    }
    int closed = nczmap_close(map, 0);
    if (closed != NC_NOERR) report(be->name, "close", closed);
    return status != NC_NOERR ? status : closed;
}

/* Prints the keys below `prefix` as a tree, recursing into groups. */
static int print_tree(const struct backend *be, NCZMAP *map, const char *prefix, int depth,
                      struct tally *tally) {
    NClist *children = nclistnew();
    if (children == NULL) return report(be->name, "nclistnew", NC_ENOMEM);
    int status = nczmap_search(map, prefix, children);
    if (status != NC_NOERR) report(be->name, "search", status);
    for (size_t i = 0; i < nclistlength(children) && status == NC_NOERR; i++) {
        const char *key = (const char *)nclistget(children, i);
        const char *name = strrchr(key, '/') != NULL ? strrchr(key, '/') + 1 : key;
        size64_t len = 0;
        int exists = nczmap_len(map, key, &len);
        if (exists == NC_NOERR) {
            printf("  %*s%-*s %6llu bytes\n", 2 * depth, "", 24 - 2 * depth, name,
                   (unsigned long long)len);
            tally->objects++;
            tally->bytes += len;
        } else if (exists == NC_EEMPTY) {
            printf("  %*s%s/\n", 2 * depth, "", name);
            tally->groups++;
            status = print_tree(be, map, key, depth + 1, tally);
        } else {
            status = report(be->name, key, exists);
        }
    }
    nclistfreeall(children);
    return status;
}

/* Reads `key` whole and compares it with `want` (`len` bytes). */
static int check_object(const struct backend *be, NCZMAP *map, const char *key,
                        const void *want, size_t len) {
    size64_t stored = 0;
    int status = nczmap_len(map, key, &stored);
    if (status != NC_NOERR) return report(be->name, key, status);
    if (stored != len) {
        fprintf(stderr, "quickstart: %s: %s holds %llu bytes, expected %zu\n", be->name, key,
                (unsigned long long)stored, len);
        return NC_EINTERNAL;
    }
    unsigned char *buf = malloc(len > 0 ? len : 1);
    if (buf == NULL) return report(be->name, key, NC_ENOMEM);
    status = nczmap_read(map, key, 0, len, buf);
    if (status != NC_NOERR) {
        report(be->name, key, status);
    } else if (memcmp(buf, want, len) != 0) {
        fprintf(stderr, "quickstart: %s: %s holds other bytes than were written\n", be->name,
                key);
        status = NC_EINTERNAL;
    }
    free(buf);
    return status;
}

static int verify_dataset(const struct backend *be, NCZMAP *map, double *sum) {
    unsigned char chunk[CHUNK_BYTES];
    int status = check_object(be, map, "/.zgroup", ZGROUP, strlen(ZGROUP));
    if (status == NC_NOERR)
        status = check_object(be, map, "/temperature/.zarray", ZARRAY, strlen(ZARRAY));
    *sum = 0;
    for (int c = 0; c < NCHUNKS && status == NC_NOERR; c++) {
        status = nczmap_read(map, CHUNK_KEYS[c], 0, CHUNK_BYTES, chunk);
        if (status != NC_NOERR) return report(be->name, CHUNK_KEYS[c], status);
        for (int i = 0; i < CHUNK_VALUES; i++) {
            float value = read_le_float(chunk + 4 * i);
            int want = c * CHUNK_VALUES + i;
            if (value != (float)want) {
                fprintf(stderr, "quickstart: %s: temperature[%d][%d] is %g, expected %d\n",
                        be->name, want / COLS, want % COLS, (double)value, want);
                return NC_EINTERNAL;
            }
            *sum += value;
        }
    }
    /* A read-only map refuses changes. */
    if (status == NC_NOERR) {
        int denied = nczmap_write(map, "/temperature/0.0", 0, 1, "x");
        if (denied != NC_EPERM) {
            fprintf(stderr, "quickstart: %s: write to a read-only map gave %d, not NC_EPERM\n",
                    be->name, denied);
            status = NC_EINTERNAL;
        }
    }
    return status;
}

/* 0: done, 1: skipped (not built), -1: failed. */
static int run_backend(const struct backend *be, const char *dir) {
    char location[4096];
    if (be->impl == NCZM_MEM)
        snprintf(location, sizeof location, "mem://quickstart");
    else
        snprintf(location, sizeof location, "%s/quickstart.%s", dir,
                 be->impl == NCZM_FILE ? "nzf" : be->impl == NCZM_NC4 ? "nc" : be->name);

    int status = write_dataset(be, location);
    if (status == NC_ENOTBUILT) {
        printf("%-4s skipped: %s\n", be->name, nczmap_strerror(status));
        return 1;
    }
    if (status != NC_NOERR) return -1;

    NCZMAP *map = NULL;
    status = nczmap_open(be->impl, location, NC_NOWRITE, 0, NULL, &map);
    if (status != NC_NOERR) {
        report(be->name, "open", status);
        return -1;
    }

    struct tally tally = {0, 0, 0};
    double sum = 0;
    printf("%s (%s)\n", location, be->name);
    status = print_tree(be, map, "/", 0, &tally);
    if (status == NC_NOERR) status = verify_dataset(be, map, &sum);
    /* The in-memory dataset would only live as long as this process. */
    int closed = nczmap_close(map, be->impl == NCZM_MEM);
    if (closed != NC_NOERR) report(be->name, "close", closed);
    if (status != NC_NOERR || closed != NC_NOERR) return -1;

    printf("%-4s ok: %d objects in %d group%s, %llu bytes; temperature[4][4] read back, "
           "sum %g\n\n",
           be->name, tally.objects, tally.groups, tally.groups == 1 ? "" : "s", tally.bytes, sum);
    return 0;
}

int main(int argc, char **argv) {
    static const struct backend backends[] = {
        {"mem", NCZM_MEM},
        {"file", NCZM_FILE},
        {"gnz", NCZM_GNZ},
        {"nc4", NCZM_NC4},
    };
    const char *dir = argc > 1 ? argv[1] : "./quickstart-data";
    int done = 0, skipped = 0;

    if (argc > 2) {
        fprintf(stderr, "usage: %s [DIR]\n", argv[0]);
        return 2;
    }
    if (mkdir(dir, 0777) != 0 && errno != EEXIST) {
        fprintf(stderr, "quickstart: cannot make %s: %s\n", dir, strerror(errno));
        return 1;
    }
    printf("libzmap %s\n\n", nczmap_version());
    for (size_t i = 0; i < sizeof backends / sizeof backends[0]; i++) {
        int outcome = run_backend(&backends[i], dir);
        if (outcome < 0) return 1;
        if (outcome == 0) done++;
        else skipped++;
    }
    printf("quickstart: %d backend%s ok, %d skipped\n", done, done == 1 ? "" : "s", skipped);
    return done > 0 ? 0 : 1;
}
