/* One map shared by several threads (zmap-api.md Part A5): each thread
 * writes its own objects and disjoint pieces of one shared object, reads
 * them back and searches while the others write. Every byte is checked
 * after the threads are joined, and again after close and reopen.
 */
// zmap-test-backends: mem file gnz zip s3 nc4
// zmap-test-link: pthread
#include "harness.h"

#include <pthread.h>
#include <stdint.h>

#define NTHREADS 4
#define NOBJECTS 200
#define PIECE 1000     /* bytes per piece of the shared object */
#define NPIECES 25     /* pieces per thread */
#define SHARED "/shared"
#define SHARED_LEN ((size_t)PIECE * NPIECES * NTHREADS)

static const char *backend;
static NCZM_IMPL impl;
static NCZMAP *map;
static pthread_barrier_t barrier;

/* Content of /t{n}/o{i}: 1..300 bytes, a function of (n, i, offset). */
static size_t obj_len(int n, int i) { return 1 + (size_t)((i * 37 + n * 101) % 300); }
static unsigned char obj_byte(int n, int i, size_t k) {
    return (unsigned char)(n * 61 + i * 7 + k * 13 + (k >> 8));
}
/* Piece j of thread n goes at ((j * NTHREADS) + n) * PIECE: interleaved. */
static size64_t piece_start(int n, int j) {
    return ((size64_t)j * NTHREADS + (size64_t)n) * PIECE;
}
static unsigned char shared_byte(size_t off) {
    return (unsigned char)(off * 7 + (off / PIECE) * 3 + 1);
}

typedef struct {
    int n;
    int failures;
    char first_failure[256];
} Worker;

static void fail(Worker *w, const char *what, int rc) {
    if (w->failures++ == 0)
        snprintf(w->first_failure, sizeof w->first_failure,
                 "thread %d: %s (rc %d: %s)", w->n, what, rc,
                 nczmap_strerror(rc));
}

static void *work(void *arg) {
    Worker *w = arg;
    int n = w->n;
    char key[64];
    unsigned char buf[PIECE + 300];
    int rc;
    pthread_barrier_wait(&barrier);

    for (int i = 0; i < NOBJECTS; i++) {
        size_t len = obj_len(n, i);
        for (size_t k = 0; k < len; k++) buf[k] = obj_byte(n, i, k);
        snprintf(key, sizeof key, "/t%d/o%d", n, i);
        /* Every other object: define, then write in two parts. */
        if (i % 2) {
            if ((rc = nczmap_defineobj(map, key)) != NC_NOERR) fail(w, "defineobj", rc);
            size_t half = len / 2;
            if ((rc = nczmap_write(map, key, half, len - half, buf + half)) != NC_NOERR)
                fail(w, "write (second half)", rc);
            if ((rc = nczmap_write(map, key, 0, half, buf)) != NC_NOERR)
                fail(w, "write (first half)", rc);
        } else if ((rc = nczmap_write(map, key, 0, len, buf)) != NC_NOERR) {
            fail(w, "write", rc);
        }
        /* A piece of the shared object now and then. */
        if (i % 8 == 0 && i / 8 < NPIECES) {
            int j = i / 8;
            size64_t start = piece_start(n, j);
            unsigned char piece[PIECE];
            for (size_t k = 0; k < PIECE; k++) piece[k] = shared_byte(start + k);
            if ((rc = nczmap_write(map, SHARED, start, PIECE, piece)) != NC_NOERR)
                fail(w, "write shared piece", rc);
            memset(piece, 0, sizeof piece);
            if ((rc = nczmap_read(map, SHARED, start, PIECE, piece)) != NC_NOERR)
                fail(w, "read shared piece", rc);
            for (size_t k = 0; k < PIECE; k++)
                if (piece[k] != shared_byte(start + k)) {
                    fail(w, "shared piece content", 0);
                    break;
                }
        }
        /* Read back an earlier object of ours. */
        int back = i / 2;
        size_t blen = obj_len(n, back);
        size64_t got = 0;
        snprintf(key, sizeof key, "/t%d/o%d", n, back);
        if ((rc = nczmap_len(map, key, &got)) != NC_NOERR || got != blen)
            fail(w, "len of own object", rc);
        memset(buf, 0, sizeof buf);
        if ((rc = nczmap_read(map, key, 0, blen, buf)) != NC_NOERR)
            fail(w, "read own object", rc);
        for (size_t k = 0; k < blen; k++)
            if (buf[k] != obj_byte(n, back, k)) {
                fail(w, "own object content", 0);
                break;
            }
        /* Search while others write: the root only ever holds /shared and
         * /t0../t3; our own directory holds exactly what we wrote. */
        if (i % 10 == 0) {
            NClist *l = nclistnew();
            if ((rc = nczmap_search(map, "/", l)) != NC_NOERR) fail(w, "search /", rc);
            for (size_t k = 0; k < nclistlength(l); k++) {
                const char *s = nclistget(l, k);
                if (strcmp(s, SHARED) != 0 &&
                    !(strncmp(s, "/t", 2) == 0 && s[2] >= '0' &&
                      s[2] < '0' + NTHREADS && s[3] == '\0'))
                    fail(w, "unexpected key in search /", 0);
                if (k > 0 && strcmp(nclistget(l, k - 1), s) >= 0)
                    fail(w, "search / not sorted", 0);
            }
            nclistfreeall(l);
            l = nclistnew();
            char prefix[16];
            snprintf(prefix, sizeof prefix, "/t%d", n);
            if ((rc = nczmap_search(map, prefix, l)) != NC_NOERR)
                fail(w, "search own", rc);
            if (nclistlength(l) != (size_t)i + 1) fail(w, "search own: count", 0);
            nclistfreeall(l);
            l = nclistnew();
            snprintf(prefix, sizeof prefix, "/t%d", (n + 1) % NTHREADS);
            if ((rc = nczmap_search(map, prefix, l)) != NC_NOERR)
                fail(w, "search other", rc);
            if (nclistlength(l) > NOBJECTS) fail(w, "search other: count", 0);
            nclistfreeall(l);
        }
        /* Someone else's objects: only ever complete or absent. */
        if (i % 5 == 0) {
            int other = (n + 1 + i) % NTHREADS;
            int oi = i / 3;
            size_t olen = obj_len(other, oi);
            snprintf(key, sizeof key, "/t%d/o%d", other, oi);
            rc = nczmap_len(map, key, &got);
            if (rc != NC_NOERR && rc != NC_EEMPTY) fail(w, "len of other's object", rc);
            if (rc == NC_NOERR && got > olen) fail(w, "other's object too long", 0);
        }
    }
    if ((rc = nczmap_flush(map)) != NC_NOERR) fail(w, "flush", rc);
    return NULL;
}

/* Checks every byte of every object through `m`. */
static void verify_all(NCZMAP *m, const char *when) {
    int bad = 0;
    unsigned char buf[300];
    for (int n = 0; n < NTHREADS; n++) {
        char prefix[16];
        snprintf(prefix, sizeof prefix, "/t%d", n);
        NClist *l = nclistnew();
        CHECK_OK(nczmap_search(m, prefix, l));
        CHECK(nclistlength(l) == NOBJECTS);
        nclistfreeall(l);
        for (int i = 0; i < NOBJECTS; i++) {
            char key[64];
            size_t len = obj_len(n, i);
            size64_t got = 0;
            snprintf(key, sizeof key, "/t%d/o%d", n, i);
            if (nczmap_len(m, key, &got) != NC_NOERR || got != len) {
                if (bad++ < 5) fprintf(stderr, "%s: %s has length %llu, expected %zu\n", when, key, got, len);
                continue;
            }
            memset(buf, 0, sizeof buf);
            if (nczmap_read(m, key, 0, len, buf) != NC_NOERR) {
                if (bad++ < 5) fprintf(stderr, "%s: read %s failed\n", when, key);
                continue;
            }
            for (size_t k = 0; k < len; k++)
                if (buf[k] != obj_byte(n, i, k)) {
                    if (bad++ < 5) fprintf(stderr, "%s: %s byte %zu differs\n", when, key, k);
                    break;
                }
        }
    }
    CHECK(bad == 0);

    size64_t got = 0;
    CHECK_OK(nczmap_len(m, SHARED, &got));
    CHECK(got == SHARED_LEN);
    unsigned char *shared = malloc(SHARED_LEN);
    memset(shared, 0, SHARED_LEN);
    CHECK_OK(nczmap_read(m, SHARED, 0, SHARED_LEN, shared));
    size_t wrong = 0;
    for (size_t off = 0; off < SHARED_LEN; off++)
        if (shared[off] != shared_byte(off)) wrong++;
    if (wrong) fprintf(stderr, "%s: %zu bytes of %s differ\n", when, wrong, SHARED);
    CHECK(wrong == 0);
    free(shared);

    NClist *l = nclistnew();
    CHECK_OK(nczmap_search(m, "/", l));
    const char *want[] = {SHARED, "/t0", "/t1", "/t2", "/t3"};
    CHECK(nclistlength(l) == 5);
    for (size_t k = 0; k < 5 && k < nclistlength(l); k++)
        CHECK(strcmp(nclistget(l, k), want[k]) == 0);
    nclistfreeall(l);
}

int main(int argc, char **argv) {
    if (argc < 2) {
        fprintf(stderr, "usage: %s mem|file|gnz|s3\n", argv[0]);
        return 2;
    }
    backend = argv[1];
    impl = zt_backend(backend);

    char path[4200];
    zt_dataset(backend, "threads", path, sizeof path);
    CHECK_OK(nczmap_create(impl, path, 0, 0, NULL, &map));
    if (map) {
        pthread_t threads[NTHREADS];
        Worker workers[NTHREADS];
        pthread_barrier_init(&barrier, NULL, NTHREADS);
        for (int n = 0; n < NTHREADS; n++) {
            memset(&workers[n], 0, sizeof workers[n]);
            workers[n].n = n;
            CHECK(pthread_create(&threads[n], NULL, work, &workers[n]) == 0);
        }
        for (int n = 0; n < NTHREADS; n++) {
            CHECK(pthread_join(threads[n], NULL) == 0);
            if (workers[n].failures)
                fprintf(stderr, "%d failures; first: %s\n", workers[n].failures,
                        workers[n].first_failure);
            CHECK(workers[n].failures == 0);
        }
        pthread_barrier_destroy(&barrier);

        verify_all(map, "after join");
        CHECK_OK(nczmap_close(map, 0));

        map = NULL;
        CHECK_OK(nczmap_open(impl, path, 0, 0, NULL, &map));
        if (map) {
            verify_all(map, "after reopen");
            zt_mark_for_delete(impl, path);
            CHECK_OK(nczmap_close(map, 1));
        }
    }
    zt_cleanup();
    return zt_finish("threads");
}
