/* What a libzmap user writes first: an in-memory dataset, one object
 * written and read back, and the library's version. */
#include <stdio.h>
#include <string.h>

#include <zmap.h>

static int fail(const char *what, int status) {
    fprintf(stderr, "consumer: %s: %s\n", what, nczmap_strerror(status));
    return 1;
}

int main(void) {
    static const char content[] = "{\"zarr_format\": 2}";
    char back[sizeof content];
    size64_t len = 0;
    NCZMAP *map = NULL;
    int status;

    status = nczmap_create(NCZM_MEM, "mem://consumer", NC_CLOBBER, 0, NULL, &map);
    if (status != NC_NOERR) return fail("nczmap_create", status);
    status = nczmap_write(map, "/.zgroup", 0, sizeof content, content);
    if (status != NC_NOERR) return fail("nczmap_write", status);
    status = nczmap_len(map, "/.zgroup", &len);
    if (status != NC_NOERR) return fail("nczmap_len", status);
    if (len != sizeof content) return fail("nczmap_len gave a wrong length", NC_EINTERNAL);
    status = nczmap_read(map, "/.zgroup", 0, len, back);
    if (status != NC_NOERR) return fail("nczmap_read", status);
    if (memcmp(back, content, sizeof content) != 0)
        return fail("nczmap_read gave other bytes", NC_EINTERNAL);
    status = nczmap_close(map, 1);
    if (status != NC_NOERR) return fail("nczmap_close", status);

    printf("consumer: libzmap %s: wrote and read %llu bytes\n", nczmap_version(),
           (unsigned long long)len);
    return 0;
}
