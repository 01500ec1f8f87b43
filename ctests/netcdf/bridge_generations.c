/* The bridge against both zmap ABI generations and an unknown version,
 * with a stand-in libnetcdf (fake_netcdf.c) linked after the bridge:
 *   argv[1] = 490: netCDF 4.9.0-4.9.2, write(map, key, start, count, content)
 *             493: netCDF 4.9.3+, write(map, key, count, content), truncate
 *             481: a version the bridge does not know: everything passes through
 * The functions are called by their netCDF 4.9 names and prototypes, as
 * libnetcdf calls them. */
#define _POSIX_C_SOURCE 200809L
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#define FAKE_CODE (-9999)
#define NC_EEMPTY (-139)
#define NC_EINVAL (-36)
#define NCZM_FILE 1
#define NCZM_ZIP 2

typedef struct NCZMAP NCZMAP;
typedef struct NClist {
    size_t alloc, length;
    void **content;
} NClist;

int nczmap_create(int, const char *, int, unsigned long long, void *, NCZMAP **);
int nczmap_open(int, const char *, int, unsigned long long, void *, NCZMAP **);
int nczmap_close(NCZMAP *, int);
int nczmap_exists(NCZMAP *, const char *);
int nczmap_len(NCZMAP *, const char *, unsigned long long *);
int nczmap_read(NCZMAP *, const char *, unsigned long long, unsigned long long, void *);
int nczmap_write(NCZMAP *, const char *, unsigned long long, unsigned long long, const void *);
int nczmap_search(NCZMAP *, const char *, NClist *);

typedef int (*write493)(NCZMAP *, const char *, unsigned long long, const void *);

static int failed;
#define EXPECT(expr, want)                                                              \
    do {                                                                                \
        int got_ = (expr);                                                              \
        if (got_ != (want)) {                                                           \
            fprintf(stderr, "%s:%d: %s = %d, expected %d\n", __FILE__, __LINE__, #expr, \
                    got_, (want));                                                      \
            failed++;                                                                   \
        }                                                                               \
    } while (0)

int main(int argc, char **argv) {
    int generation = argc > 1 ? atoi(argv[1]) : 490;
    const char *base = getenv("ZMAP_TEST_TMPDIR");
    char url[4200], path[4100];
    NCZMAP *map = NULL;
    unsigned long long len = 0;
    char buf[16] = {0};
    NClist list = {0, 0, NULL};

    snprintf(path, sizeof path, "%s/generations-%d-%ld.gnz", base ? base : "/tmp", generation,
             (long)getpid());
    snprintf(url, sizeof url, "file://%s#mode=nczarr,file", path);
    /* What the bridge never serves goes to netCDF's own (here: the fake). */
    EXPECT(nczmap_create(NCZM_ZIP, url, 0, 0, NULL, &map), FAKE_CODE);
    EXPECT(nczmap_exists((NCZMAP *)&list, "/x"), FAKE_CODE);
    EXPECT(nczmap_close(NULL, 1), 0);

    if (generation == 481) {
        EXPECT(nczmap_create(NCZM_FILE, url, 0, 0, NULL, &map), FAKE_CODE);
        EXPECT(access(path, F_OK), -1);
    } else {
        EXPECT(nczmap_create(NCZM_FILE, url, 0, 0, NULL, &map), 0);
        if (map == NULL) return 1;
        if (generation == 490) {
            EXPECT(nczmap_write(map, "/g/.zattrs", 0, 11, "{\"a\": 1234}"), 0);
            EXPECT(nczmap_write(map, "/g/.zattrs", 0, 2, "{}"), 0); /* replaces */
            EXPECT(nczmap_write(map, "/g/x/0", 4, 2, "zz"), 0);      /* at an offset */
            EXPECT(nczmap_len(map, "/g/x/0", &len), 0);
            EXPECT((int)len, 6);
        } else {
            /* As 4.9.3 declares it (via a generic function pointer type). */
            write493 w = (write493)(void (*)(void))nczmap_write;
            EXPECT(w(map, "/g/.zattrs", 11, "{\"a\": 1234}"), 0);
            EXPECT(w(map, "/g/.zattrs", 2, "{}"), 0);
            EXPECT(w(map, "/g/x/0", 2, "zz"), 0);
            EXPECT(nczmap_len(map, "/g/x/0", &len), 0);
            EXPECT((int)len, 2);
        }
        EXPECT(nczmap_len(map, "/g/.zattrs", &len), 0);
        EXPECT((int)len, 2);
        EXPECT(nczmap_read(map, "/g/.zattrs", 0, 2, buf), 0);
        EXPECT(memcmp(buf, "{}", 2), 0);
        EXPECT(nczmap_exists(map, "/g"), NC_EEMPTY);
        EXPECT(nczmap_exists(map, "/nothing"), NC_EEMPTY);
        EXPECT(nczmap_exists(map, "/../x"), NC_EINVAL);
        EXPECT(nczmap_search(map, "/g", &list), 0);
        EXPECT((int)list.length, 2);
        if (list.length == 2) {
            EXPECT(strcmp(list.content[0], ".zattrs"), 0);
            EXPECT(strcmp(list.content[1], "x"), 0);
        }
        for (size_t i = 0; i < list.length; i++) free(list.content[i]);
        free(list.content);
        EXPECT(nczmap_close(map, 0), 0);
        EXPECT(nczmap_open(NCZM_FILE, url, 0, 0, NULL, &map), 0);
        if (map) EXPECT(nczmap_close(map, 1), 0); /* deletes the dataset */
        EXPECT(access(path, F_OK), -1);
    }
    printf("bridge_generations %d: %s\n", generation, failed ? "FAILED" : "ok");
    return failed ? 1 : 0;
}
