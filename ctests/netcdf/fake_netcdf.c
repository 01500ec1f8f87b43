/* A stand-in for libnetcdf in the bridge's generation test: it reports the
 * version FAKE_VERSION (nc_inq_libvers), defines nczmap_truncate only with
 * FAKE_TRUNCATE, and every zmap function answers FAKE_CODE, so a test sees
 * which calls the bridge passed through. */
#include <stddef.h>

#define FAKE_CODE (-9999)

const char *nc_inq_libvers(void) { return FAKE_VERSION " of fake"; }

int nczmap_create(int impl, const char *path, int mode, unsigned long long flags, void *p,
                  void **mapp) {
    (void)impl, (void)path, (void)mode, (void)flags, (void)p, (void)mapp;
    return FAKE_CODE;
}
int nczmap_open(int impl, const char *path, int mode, unsigned long long flags, void *p,
                void **mapp) {
    (void)impl, (void)path, (void)mode, (void)flags, (void)p, (void)mapp;
    return FAKE_CODE;
}
int nczmap_close(void *map, int deleteit) { (void)map, (void)deleteit; return FAKE_CODE; }
int nczmap_exists(void *map, const char *key) { (void)map, (void)key; return FAKE_CODE; }
int nczmap_len(void *map, const char *key, unsigned long long *lenp) {
    (void)map, (void)key, (void)lenp;
    return FAKE_CODE;
}
int nczmap_read(void *map, const char *key, unsigned long long start, unsigned long long count,
                void *content) {
    (void)map, (void)key, (void)start, (void)count, (void)content;
    return FAKE_CODE;
}
int nczmap_write(void *map, const char *key, unsigned long long a, unsigned long long b,
                 const void *c) {
    (void)map, (void)key, (void)a, (void)b, (void)c;
    return FAKE_CODE;
}
int nczmap_search(void *map, const char *prefix, void *matches) {
    (void)map, (void)prefix, (void)matches;
    return FAKE_CODE;
}
unsigned long long nczmap_features(int impl) { (void)impl; return 0; }
#ifdef FAKE_TRUNCATE
int nczmap_truncate(int impl, const char *url) { (void)impl, (void)url; return FAKE_CODE; }
#endif
