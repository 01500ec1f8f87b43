/* ZIP: the archive libzmap writes, read back here byte by byte, without
 * libzmap, as another ZIP reader would (the format: PKWARE APPNOTE 6.3):
 *
 * - one central directory entry per object, named by its key without the
 *   leading '/' (the root layout of zarr's ZipStore), stored (method 0);
 * - each entry's CRC-32 (computed here) and sizes match the object's bytes,
 *   and its local header says the same as its central directory entry;
 * - entries are dated when written: the DOS date's year is the current
 *   year, within a day (UTC), not 1980 (a zero date, which tools show as
 *   1980-00-00 and some refuse);
 * - close(map, 1) of an archive renamed away, another file at its name:
 *   NC_EEMPTY, both files kept;
 * - temporary files a killed writer left (even at names this process would
 *   once have used) do not make a flush fail, and are left alone.
 */
// zmap-test-backends: zip
#include "harness.h"

#include <stdint.h>
#include <time.h>

static unsigned u16(const unsigned char *p) { return (unsigned)p[0] | (unsigned)p[1] << 8; }
static uint32_t u32(const unsigned char *p) { return (uint32_t)u16(p) | (uint32_t)u16(p + 2) << 16; }

static int utc_year(time_t t) {
    struct tm tm;
    return gmtime_r(&t, &tm) ? tm.tm_year + 1900 : -1;
}

/* close(map, 1) of an archive renamed away, another file at its name:
 * NC_EEMPTY, and neither file is removed (the map deletes only the archive
 * it holds, and only at its name). */
static void delete_after_rename(NCZM_IMPL impl) {
    char path[4200], moved[4300];
    zt_dataset("zip", "renamed", path, sizeof path);
    snprintf(moved, sizeof moved, "%s.moved", path);
    NCZMAP *map = NULL;
    CHECK_OK(nczmap_create(impl, path, NC_CLOBBER, 0, NULL, &map));
    if (map == NULL) return;
    CHECK_OK(nczmap_write(map, "/.zgroup", 0, 2, "{}"));
    CHECK_OK(nczmap_flush(map));
    CHECK(rename(path, moved) == 0);
    FILE *f = fopen(path, "wb");
    CHECK(f != NULL && fputs("not yours", f) >= 0);
    if (f) fclose(f);
    CHECK_CODE(nczmap_close(map, 1), NC_EEMPTY);
    size_t len = 0;
    unsigned char *other = zt_slurp(path, &len);
    CHECK(other != NULL && len == 9 && memcmp(other, "not yours", 9) == 0);
    free(other);
    NCZMAP *again = NULL;
    CHECK_OK(nczmap_open(impl, moved, 0, 0, NULL, &again));
    if (again) CHECK_OK(nczmap_exists(again, "/.zgroup"));
    if (again) CHECK_OK(nczmap_close(again, 0));
}

/* A writer killed during a rewrite leaves its temporary file beside the
 * archive; a later process may have the same id (a new container). Files at
 * every name such a process could have used must neither make its flush
 * fail nor be touched: here, stale files named as this process's first 64
 * rewrites were named before (.NAME.zmap-PID-N.tmp), and the close after a
 * flush succeeds and keeps what was written. */
static void stale_temporary_files(NCZM_IMPL impl) {
    char path[4200], stale[4400];
    zt_dataset("zip", "stale", path, sizeof path);
    const char *slash = strrchr(path, '/');
    size_t dirlen = (size_t)(slash - path);
    for (int n = 0; n < 64; n++) {
        snprintf(stale, sizeof stale, "%.*s/.%s.zmap-%ld-%d.tmp", (int)dirlen, path, slash + 1,
                 (long)getpid(), n);
        FILE *f = fopen(stale, "wb");
        CHECK(f != NULL);
        if (f) fclose(f);
    }
    NCZMAP *map = NULL;
    CHECK_OK(nczmap_create(impl, path, NC_CLOBBER, 0, NULL, &map));
    if (map == NULL) return;
    CHECK_OK(nczmap_write(map, "/.zgroup", 0, 2, "{}"));
    CHECK_OK(nczmap_flush(map));
    CHECK_OK(nczmap_write(map, "/x", 0, 3, "abc"));
    CHECK_OK(nczmap_close(map, 0));
    NCZMAP *again = NULL;
    CHECK_OK(nczmap_open(impl, path, 0, 0, NULL, &again));
    unsigned char got[3] = {0};
    if (again) CHECK_OK(nczmap_read(again, "/x", 0, 3, got));
    CHECK(memcmp(got, "abc", 3) == 0);
    if (again) CHECK_OK(nczmap_close(again, 0));
    /* The stale files are not the library's to remove. */
    snprintf(stale, sizeof stale, "%.*s/.%s.zmap-%ld-0.tmp", (int)dirlen, path, slash + 1,
             (long)getpid());
    CHECK(access(stale, F_OK) == 0);
}

#define OBJECTS 3
static const char *const keys[OBJECTS] = {"/.zgroup", "/v/.zarray", "/v/0.0"};

int main(int argc, char **argv) {
    NCZM_IMPL impl = zt_backend(argc > 1 ? argv[1] : "zip");
    char path[4200];
    zt_dataset("zip", "archive", path, sizeof path);
    unsigned char data[OBJECTS][300];
    size_t sizes[OBJECTS] = {24, 120, sizeof data[2]};
    for (int i = 0; i < OBJECTS; i++)
        for (size_t j = 0; j < sizes[i]; j++) data[i][j] = (unsigned char)(i * 31 + j * 7);

    NCZMAP *map = NULL;
    CHECK_OK(nczmap_create(impl, path, NC_CLOBBER, 0, NULL, &map));
    for (int i = 0; i < OBJECTS && map; i++)
        CHECK_OK(nczmap_write(map, keys[i], 0, (size64_t)sizes[i], data[i]));
    if (map) CHECK_OK(nczmap_close(map, 0));
    time_t written = time(NULL);

    size_t len = 0;
    unsigned char *z = zt_slurp(path, &len);
    CHECK(z != NULL && len >= 22);
    if (z == NULL || len < 22) {
        free(z);
        zt_cleanup();
        return zt_finish("test_zip_archive");
    }

    /* End of central directory: the last 22 bytes (libzmap writes no comment). */
    const unsigned char *eocd = z + len - 22;
    CHECK(u32(eocd) == 0x06054b50u);
    unsigned count = u16(eocd + 10);
    uint32_t cd_size = u32(eocd + 12), cd_at = u32(eocd + 16);
    CHECK(count == OBJECTS);
    CHECK((size_t)cd_at + cd_size == len - 22);

    int low = utc_year(written - 86400), high = utc_year(written + 86400);
    int seen[OBJECTS] = {0};
    size_t at = cd_at;
    for (unsigned e = 0; e < count && at + 46 <= len - 22; e++) {
        const unsigned char *c = z + at;
        CHECK(u32(c) == 0x02014b50u);
        unsigned method = u16(c + 10), dos_date = u16(c + 14);
        uint32_t crc = u32(c + 16), packed = u32(c + 20), size = u32(c + 24);
        unsigned name_len = u16(c + 28), extra_len = u16(c + 30), comment_len = u16(c + 32);
        uint32_t local_at = u32(c + 42);
        const char *name = (const char *)c + 46;
        int year = 1980 + (int)(dos_date >> 9);
        CHECK(method == 0);
        CHECK(year >= low && year <= high);
        if (year < low || year > high) fprintf(stderr, "entry %u dated %d\n", e, year);

        int which = -1;
        for (int i = 0; i < OBJECTS; i++)
            if (strlen(keys[i] + 1) == name_len && memcmp(name, keys[i] + 1, name_len) == 0) which = i;
        CHECK(which >= 0);
        if (which >= 0) {
            seen[which]++;
            CHECK(size == sizes[which] && packed == sizes[which]);
            CHECK(crc == zt_crc32(0, data[which], sizes[which]));
            /* The local header says the same, and the bytes follow it. */
            const unsigned char *l = z + local_at;
            CHECK(local_at + 30u <= cd_at && u32(l) == 0x04034b50u);
            if (local_at + 30u <= cd_at && u32(l) == 0x04034b50u) {
                unsigned l_name = u16(l + 26), l_extra = u16(l + 28);
                CHECK(u16(l + 8) == 0 && u16(l + 12) == dos_date);
                CHECK(l_name == name_len && memcmp(l + 30, name, name_len) == 0);
                size_t start = local_at + 30u + l_name + l_extra;
                CHECK(start + size <= cd_at);
                if (start + size <= cd_at) CHECK(zt_crc32(0, z + start, size) == crc);
            }
        }
        at += 46u + name_len + extra_len + comment_len;
    }
    for (int i = 0; i < OBJECTS; i++) CHECK(seen[i] == 1);

    free(z);
    delete_after_rename(impl);
    stale_temporary_files(impl);
    zt_cleanup();
    return zt_finish("test_zip_archive");
}
