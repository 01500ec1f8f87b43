/* A minimal test harness for the C tests: checks that count, a closing line
 * "name: N passed, N failed", and dataset locations for every backend.
 *
 * Conventions (CMakeLists.txt relies on them):
 * - every ctests/test_<name>.c is one executable;
 * - a file with a line "// zmap-test-backends: mem file ..." is registered
 *   once per listed backend with the backend name as argv[1];
 * - exit 0 = pass, 1 = fail, 77 = skipped (e.g. no S3 server configured). */
#ifndef ZMAP_TEST_HARNESS_H
#define ZMAP_TEST_HARNESS_H

/* mkdtemp & co. under -std=c11: include this header before any other. */
#if !defined(_POSIX_C_SOURCE) && !defined(_XOPEN_SOURCE) && \
    !defined(_GNU_SOURCE) && !defined(_DEFAULT_SOURCE)
#define _POSIX_C_SOURCE 200809L
#endif

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "zmap.h"

static int zt_passed, zt_failed;

#define CHECK(cond)                                                          \
    do {                                                                     \
        if (cond) {                                                          \
            zt_passed++;                                                     \
        } else {                                                             \
            zt_failed++;                                                     \
            fprintf(stderr, "%s:%d: CHECK failed: %s\n", __FILE__, __LINE__, \
                    #cond);                                                  \
        }                                                                    \
    } while (0)

#define CHECK_CODE(expr, want)                                                 \
    do {                                                                       \
        int zt_got = (expr);                                                   \
        int zt_want = (want);                                                  \
        if (zt_got == zt_want) {                                               \
            zt_passed++;                                                       \
        } else {                                                               \
            zt_failed++;                                                       \
            fprintf(stderr, "%s:%d: %s returned %d (%s), expected %d (%s)\n", \
                    __FILE__, __LINE__, #expr, zt_got,                         \
                    nczmap_strerror(zt_got), zt_want,                          \
                    nczmap_strerror(zt_want));                                 \
        }                                                                      \
    } while (0)

#define CHECK_OK(expr) CHECK_CODE((expr), NC_NOERR)

/* Prints the closing line and gives the exit status. */
static inline int zt_finish(const char *name) {
    printf("%s: %d passed, %d failed\n", name, zt_passed, zt_failed);
    return zt_failed ? 1 : 0;
}

/* True when the library has the NCZM_NC4 backend (opening a dataset that
 * cannot exist gives NC_ENOTBUILT only when it has not). */
static inline int zt_nc4_built(void) {
    NCZMAP *probe = NULL;
    return nczmap_open(NCZM_NC4, "/nonexistent/zmap-nc4-probe.nc", 0, 0, NULL,
                       &probe) != NC_ENOTBUILT;
}

/* The backend named by a test's argv[1]; exits 77 (skip) when the backend
 * cannot run here, 2 for an unknown name. */
static inline NCZM_IMPL zt_backend(const char *name) {
    if (strcmp(name, "mem") == 0) return NCZM_MEM;
    if (strcmp(name, "file") == 0) return NCZM_FILE;
    if (strcmp(name, "gnz") == 0) return NCZM_GNZ;
    if (strcmp(name, "nc4") == 0) {
        /* CMake registers nc4 tests only when the backend is built. */
        if (!zt_nc4_built()) {
            printf("skipped: NCZM_NC4 is not built in\n");
            exit(77);
        }
        return NCZM_NC4;
    }
    if (strcmp(name, "zip") == 0) return NCZM_ZIP;
    if (strcmp(name, "s3") == 0) {
        if (getenv("ZMAP_TEST_S3_URL") == NULL) {
            printf("skipped: ZMAP_TEST_S3_URL is not set\n");
            exit(77);
        }
        return NCZM_S3;
    }
    fprintf(stderr, "unknown backend %s\n", name);
    exit(2);
}

/* A fresh private directory for this test process (made once). */
static inline const char *zt_tmpdir(void) {
    static char dir[4096];
    if (dir[0] == '\0') {
        const char *base = getenv("ZMAP_TEST_TMPDIR");
        if (base == NULL) base = getenv("TMPDIR");
        if (base == NULL) base = "/tmp";
        snprintf(dir, sizeof dir, "%s/zmap-ctest-XXXXXX", base);
        if (mkdtemp(dir) == NULL) {
            perror("mkdtemp");
            exit(2);
        }
    }
    return dir;
}

/* Writes into `out` a location for a dataset called `name` in `backend`:
 * a directory (file), a .gnz file (gnz), a .nc file (nc4), a .zip archive (zip), a
 * process-unique name (mem) or a
 * prefix under $ZMAP_TEST_S3_URL (s3). */
static inline void zt_dataset(const char *backend, const char *name, char *out,
                       size_t outlen) {
    if (strcmp(backend, "mem") == 0)
        snprintf(out, outlen, "mem://%s-%ld", name, (long)getpid());
    else if (strcmp(backend, "file") == 0)
        snprintf(out, outlen, "%s/%s.nzf", zt_tmpdir(), name);
    else if (strcmp(backend, "gnz") == 0)
        snprintf(out, outlen, "%s/%s.gnz", zt_tmpdir(), name);
    else if (strcmp(backend, "nc4") == 0)
        snprintf(out, outlen, "%s/%s.nc", zt_tmpdir(), name);
    else if (strcmp(backend, "zip") == 0)
        snprintf(out, outlen, "%s/%s.zip", zt_tmpdir(), name);
    else
        snprintf(out, outlen, "%s/%s-%ld", getenv("ZMAP_TEST_S3_URL"), name,
                 (long)getpid());
}

/* Removes the private directory (and anything left in it). */
static inline void zt_cleanup(void) {
    const char *dir = zt_tmpdir();
    char cmd[4200];
    snprintf(cmd, sizeof cmd, "rm -rf '%s'", dir);
    if (system(cmd) != 0) fprintf(stderr, "could not remove %s\n", dir);
}

/* FILE's nczmap_close(map, 1) deletes only a dataset (README "Deviations"):
 * a directory with a marker (.zgroup, ...) at its top, or one the deleting
 * map created. A test that wrote a dataset without a marker, reopened it and
 * then deletes it marks it first (after its checks, behind the map's back).
 * Other backends: nothing to do. */
static inline void zt_mark_for_delete(NCZM_IMPL impl, const char *path) {
    if (impl != NCZM_FILE) return;
    char marker[4200];
    if (snprintf(marker, sizeof marker, "%s/.zgroup", path) >= (int)sizeof marker)
        return;
    FILE *f = fopen(marker, "w");
    if (f == NULL) {
        perror(marker);
        return;
    }
    fputs("{}", f);
    fclose(f);
}

/* The whole file at `path`, malloc()ed, its length in *len; NULL if it
 * cannot be opened or read (an empty file gives a non-NULL buffer). */
static inline unsigned char *zt_slurp(const char *path, size_t *len) {
    FILE *f = fopen(path, "rb");
    if (f == NULL) return NULL;
    size_t cap = 4096, n = 0, got;
    unsigned char *b = malloc(cap);
    while (b != NULL && (got = fread(b + n, 1, cap - n, f)) > 0) {
        n += got;
        if (n == cap) {
            unsigned char *grown = realloc(b, cap *= 2);
            if (grown == NULL) free(b);
            b = grown;
        }
    }
    if (b != NULL && ferror(f)) {
        free(b);
        b = NULL;
    }
    fclose(f);
    *len = n;
    return b;
}

/* CRC-32 as zlib computes it (reflected, polynomial 0xEDB88320), going on
 * from `crc` (0 to start): computed here, independently of the library. */
static inline unsigned long zt_crc32(unsigned long crc, const unsigned char *p, size_t n) {
    crc = ~crc & 0xFFFFFFFFul;
    for (size_t i = 0; i < n; i++) {
        crc ^= p[i];
        for (int k = 0; k < 8; k++) crc = (crc >> 1) ^ (0xEDB88320ul & (0ul - (crc & 1ul)));
    }
    return ~crc & 0xFFFFFFFFul;
}

#endif /* ZMAP_TEST_HARNESS_H */
