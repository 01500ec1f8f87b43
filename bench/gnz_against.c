/* One GNZ create+commit, timed: N objects of S bytes under
 * /g0/v{i%100}/c.{i} written into a new GNZ file, then nczmap_close(map, 0)
 * (everything durable). Prints the median of R rounds in one process.
 *
 * Written only against calls every libzmap had (create, write, close), so
 * that scripts/bench_against.sh can build it against an older commit's
 * header too and compare two builds in one session on one machine.
 *
 *   gnz_against DIR [ROUNDS [N [SIZE]]]
 * Output, one line: "create_ms close_ms total_ms objects_per_second". */
#define _POSIX_C_SOURCE 200809L /* clock_gettime, getpid, unlink under -std=c11 */

#include <zmap.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#define MAX_ROUNDS 200

static double now(void) {
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return (double)t.tv_sec + (double)t.tv_nsec * 1e-9;
}

static int by_value(const void *a, const void *b) {
    double x = *(const double *)a, y = *(const double *)b;
    return (x > y) - (x < y);
}

static double median(double *v, int n) {
    qsort(v, (size_t)n, sizeof *v, by_value);
    return n % 2 ? v[n / 2] : (v[n / 2 - 1] + v[n / 2]) / 2;
}

int main(int argc, char **argv) {
    if (argc < 2) {
        fprintf(stderr, "usage: %s DIR [ROUNDS [N [SIZE]]]\n", argv[0]);
        return 2;
    }
    const char *dir = argv[1];
    int rounds = argc > 2 ? atoi(argv[2]) : 21;
    long n = argc > 3 ? atol(argv[3]) : 10000;
    long size = argc > 4 ? atol(argv[4]) : 1024;
    if (rounds < 1 || rounds > MAX_ROUNDS || n < 1 || size < 1) {
        fprintf(stderr, "%s: bad ROUNDS, N or SIZE\n", argv[0]);
        return 2;
    }
    unsigned char *data = malloc((size_t)size);
    if (data == NULL) return 1;
    memset(data, 7, (size_t)size);
    static double creates[MAX_ROUNDS], closes[MAX_ROUNDS], totals[MAX_ROUNDS];
    char path[4096], key[64];
    for (int r = 0; r < rounds; r++) {
        snprintf(path, sizeof path, "%s/gnz-against-%ld-%d.gnz", dir, (long)getpid(), r);
        NCZMAP *map = NULL;
        double t0 = now();
        if (nczmap_create(NCZM_GNZ, path, NC_CLOBBER, 0, NULL, &map) != NC_NOERR) {
            fprintf(stderr, "%s: create %s failed\n", argv[0], path);
            return 1;
        }
        for (long i = 0; i < n; i++) {
            snprintf(key, sizeof key, "/g0/v%ld/c.%ld", i % 100, i);
            memcpy(data, &i, size >= (long)sizeof i ? sizeof i : (size_t)size);
            if (nczmap_write(map, key, 0, (size64_t)size, data) != NC_NOERR) {
                fprintf(stderr, "%s: write %s failed\n", argv[0], key);
                return 1;
            }
        }
        double t1 = now();
        if (nczmap_close(map, 0) != NC_NOERR) {
            fprintf(stderr, "%s: close failed\n", argv[0]);
            return 1;
        }
        double t2 = now();
        unlink(path);
        creates[r] = t1 - t0;
        closes[r] = t2 - t1;
        totals[r] = t2 - t0;
    }
    double total = median(totals, rounds);
    printf("%.3f %.3f %.3f %.0f\n", median(creates, rounds) * 1e3, median(closes, rounds) * 1e3, total * 1e3,
           (double)n / total);
    free(data);
    return 0;
}
