/* NCZM_NC4 against netCDF's own API: a file in the 2020 layout written with
 * libnetcdf (nc4-layout.md's example) reads through libzmap with the right
 * keys and bytes, and what libzmap writes reads back through libnetcdf; the
 * '_' rule for key segments; create and close(delete) touch only what is
 * the map's own file (by identity), never a stranger that has its name.
 * Built only when the library has NCZM_NC4 (CMake: ZMAP_WITH_NC4).
 */
// zmap-test-backends: nc4
#include "harness.h"

#include <netcdf.h>
#include <stdio.h>
#include <sys/stat.h>

static const char metadata1[] =
    "{\n\"foo\": 42,\n\"bar\": \"apples\",\n\"baz\": [1, 2, 3, 4]}";

/* ------------------------------------------------- netCDF's side of things */

#define NC(call) CHECK_CODE((call), NC_NOERR)

/* An object in the 2020 layout below `parent`: group `name` holding
 * data_dim (unlimited) and ubyte data(data_dim) with `len` bytes. */
static void nc_object(int parent, const char *name, const void *bytes,
                      size_t len) {
    int grp = -1, dim = -1, var = -1;
    NC(nc_def_grp(parent, name, &grp));
    NC(nc_def_dim(grp, "data_dim", NC_UNLIMITED, &dim));
    NC(nc_def_var(grp, "data", NC_UBYTE, 1, &dim, &var));
    if (len > 0) {
        size_t start = 0, count = len;
        NC(nc_put_vara_uchar(grp, var, &start, &count, bytes));
    }
}

/* The spec's example, written with libnetcdf: /.nczarr (0 bytes),
 * /meta1/.zarray (50 bytes), and /data1/0 (100 bytes). */
static void write_2020_file(const char *path, const unsigned char *data) {
    int ncid = -1, meta1 = -1, data1 = -1;
    NC(nc_create(path, NC_NETCDF4 | NC_CLOBBER, &ncid));
    nc_object(ncid, "_nczarr", NULL, 0);
    NC(nc_def_grp(ncid, "meta1", &meta1));
    nc_object(meta1, "_zarray", metadata1, 50);
    NC(nc_def_grp(ncid, "data1", &data1));
    nc_object(data1, "0", data, 100);
    NC(nc_close(ncid));
}

/* The bytes of the object group at `path` ("meta1/_zarray"), via libnetcdf;
 * *len is its data_dim length. Returns a malloc'd buffer or NULL. */
static unsigned char *nc_read_object(const char *file, const char *grp_path,
                                     size_t *len) {
    int ncid = -1, grp = -1, var = -1, dim = -1;
    *len = 0;
    if (nc_open(file, NC_NOWRITE, &ncid) != NC_NOERR) return NULL;
    unsigned char *out = NULL;
    char copy[256];
    snprintf(copy, sizeof copy, "%s", grp_path);
    grp = ncid;
    int ok = 1;
    for (char *seg = strtok(copy, "/"); seg && ok; seg = strtok(NULL, "/"))
        ok = nc_inq_grp_ncid(grp, seg, &grp) == NC_NOERR;
    if (ok && nc_inq_varid(grp, "data", &var) == NC_NOERR &&
        nc_inq_dimid(grp, "data_dim", &dim) == NC_NOERR &&
        nc_inq_dimlen(grp, dim, len) == NC_NOERR) {
        out = malloc(*len + 1);
        size_t start = 0;
        if (out && *len > 0 &&
            nc_get_vara_uchar(grp, var, &start, len, out) != NC_NOERR) {
            free(out);
            out = NULL;
        }
    }
    nc_close(ncid);
    return out;
}

/* ------------------------------------------------------------------ tests */

static void check_search(NCZMAP *map, const char *prefix, const char *want) {
    NClist *l = nclistnew();
    CHECK_OK(nczmap_search(map, prefix, l));
    char got[1024] = "";
    for (size_t i = 0; i < nclistlength(l); i++) {
        if (i) strncat(got, " ", sizeof got - strlen(got) - 1);
        strncat(got, nclistget(l, i), sizeof got - strlen(got) - 1);
    }
    if (strcmp(got, want) != 0)
        fprintf(stderr, "search(%s): got [%s], expected [%s]\n", prefix, got,
                want);
    CHECK(strcmp(got, want) == 0);
    nclistfreeall(l);
}

static void test_reads_a_file_written_by_netcdf(void) {
    char path[4200];
    zt_dataset("nc4", "from-netcdf", path, sizeof path);
    unsigned char data[100];
    for (int i = 0; i < 100; i++) data[i] = (unsigned char)(i * 7);
    write_2020_file(path, data);

    NCZMAP *map = NULL;
    CHECK_OK(nczmap_open(NCZM_NC4, path, 0, 0, NULL, &map));
    if (!map) return;
    check_search(map, "/", "/.nczarr /data1 /meta1");
    check_search(map, "/meta1", "/meta1/.zarray");
    check_search(map, "/data1", "/data1/0");
    size64_t len = 99;
    CHECK_OK(nczmap_len(map, "/.nczarr", &len));
    CHECK(len == 0);
    CHECK_OK(nczmap_len(map, "/meta1/.zarray", &len));
    CHECK(len == 50);
    char meta[51] = {0};
    CHECK_OK(nczmap_read(map, "/meta1/.zarray", 0, 50, meta));
    CHECK(memcmp(meta, metadata1, 50) == 0);
    unsigned char back[100];
    CHECK_OK(nczmap_read(map, "/data1/0", 0, 100, back));
    CHECK(memcmp(back, data, 100) == 0);
    CHECK_CODE(nczmap_exists(map, "/meta1"), NC_EEMPTY);
    /* The stored name is not a key: "_zarray" would be the segment "_zarray". */
    CHECK_CODE(nczmap_exists(map, "/meta1/_zarray"), NC_EINVAL);
    CHECK_OK(nczmap_close(map, 0));

    /* What libzmap writes into it, libnetcdf reads in the same layout. */
    CHECK_OK(nczmap_open(NCZM_NC4, path, NC_WRITE, 0, NULL, &map));
    if (!map) return;
    CHECK_OK(nczmap_write(map, "/meta1/.zarray", 50, 4, "tail"));
    CHECK_OK(nczmap_write(map, "/new/.zattrs", 3, 2, "{}"));
    CHECK_OK(nczmap_close(map, 0));
    size_t n = 0;
    unsigned char *got = nc_read_object(path, "meta1/_zarray", &n);
    CHECK(got != NULL && n == 54 && memcmp(got, metadata1, 50) == 0 &&
          memcmp(got + 50, "tail", 4) == 0);
    free(got);
    got = nc_read_object(path, "new/_zattrs", &n);
    /* A gap reads as zeros (netCDF's ubyte fill value would be 255). */
    CHECK(got != NULL && n == 5 && memcmp(got, "\0\0\0{}", 5) == 0);
    free(got);
    got = nc_read_object(path, "data1/0", &n);
    CHECK(got != NULL && n == 100 && memcmp(got, data, 100) == 0);
    free(got);
}

static void test_underscore_segments_are_invalid(void) {
    char path[4200];
    zt_dataset("nc4", "underscore", path, sizeof path);
    NCZMAP *map = NULL;
    CHECK_OK(nczmap_create(NCZM_NC4, path, 0, 0, NULL, &map));
    if (!map) return;
    const char *keys[] = {"/_x", "/a/_b", "/_", "/__", "/a/_b/c"};
    for (size_t i = 0; i < sizeof keys / sizeof keys[0]; i++) {
        char buf[1] = {'u'};
        size64_t len = 7;
        CHECK_CODE(nczmap_defineobj(map, keys[i]), NC_EINVAL);
        CHECK_CODE(nczmap_write(map, keys[i], 0, 1, "x"), NC_EINVAL);
        CHECK_CODE(nczmap_exists(map, keys[i]), NC_EINVAL);
        CHECK_CODE(nczmap_len(map, keys[i], &len), NC_EINVAL);
        CHECK_CODE(nczmap_read(map, keys[i], 0, 1, buf), NC_EINVAL);
        CHECK(buf[0] == 'u');
        CHECK_CODE(nczmap_remove(map, keys[i]), NC_EINVAL);
        CHECK_CODE(nczmap_truncate(map, keys[i], 0), NC_EINVAL);
        NClist *l = nclistnew();
        CHECK_CODE(nczmap_search(map, keys[i], l), NC_EINVAL);
        CHECK(nclistlength(l) == 0);
        nclistfreeall(l);
    }
    check_search(map, "/", ""); /* nothing was created */
    /* A '_' later in a segment is an ordinary character; a leading '.' is
     * stored as '_'. */
    CHECK_OK(nczmap_write(map, "/a_b/.x_y", 0, 2, "ok"));
    check_search(map, "/", "/a_b");
    check_search(map, "/a_b", "/a_b/.x_y");
    CHECK_OK(nczmap_close(map, 0));
    size_t n = 0;
    unsigned char *got = nc_read_object(path, "a_b/_x_y", &n);
    CHECK(got != NULL && n == 2 && memcmp(got, "ok", 2) == 0);
    free(got);
}

/* netCDF-4 cannot delete a group or shrink a dimension: remove and truncate
 * are applied to the file by the rewrite at flush/close, and then the file
 * holds exactly the live objects. */
static void test_remove_and_truncate_reach_the_file(void) {
    char path[4200];
    zt_dataset("nc4", "rewrite", path, sizeof path);
    NCZMAP *map = NULL;
    CHECK_OK(nczmap_create(NCZM_NC4, path, 0, 0, NULL, &map));
    if (!map) return;
    CHECK_OK(nczmap_write(map, "/.nczarr", 0, 2, "{}"));
    CHECK_OK(nczmap_write(map, "/a/b", 0, 5, "hello"));
    CHECK_OK(nczmap_write(map, "/c", 0, 6, "012345"));
    CHECK_OK(nczmap_write(map, "/d", 0, 3, "old"));
    CHECK_OK(nczmap_remove(map, "/a/b"));
    CHECK_OK(nczmap_truncate(map, "/c", 2));
    CHECK_OK(nczmap_remove(map, "/d"));
    CHECK_OK(nczmap_write(map, "/d", 1, 1, "N")); /* new again: 0 then 'N' */
    CHECK_OK(nczmap_flush(map));
    check_search(map, "/", "/.nczarr /c /d");
    CHECK_OK(nczmap_close(map, 0));
    int ncid = -1, grp = -1;
    NC(nc_open(path, NC_NOWRITE, &ncid));
    CHECK_CODE(nc_inq_grp_ncid(ncid, "a", &grp), NC_ENOGRP);
    NC(nc_close(ncid));
    size_t n = 0;
    unsigned char *got = nc_read_object(path, "c", &n);
    CHECK(got != NULL && n == 2 && memcmp(got, "01", 2) == 0);
    free(got);
    got = nc_read_object(path, "d", &n);
    CHECK(got != NULL && n == 2 && memcmp(got, "\0N", 2) == 0);
    free(got);
    got = nc_read_object(path, "_nczarr", &n);
    CHECK(got != NULL && n == 2 && memcmp(got, "{}", 2) == 0);
    free(got);
}

static int write_text(const char *path, const char *text) {
    FILE *f = fopen(path, "w");
    if (!f) return 0;
    fputs(text, f);
    return fclose(f) == 0;
}

static int has_text(const char *path, const char *text) {
    char buf[256] = {0};
    FILE *f = fopen(path, "r");
    if (!f) return 0;
    size_t n = fread(buf, 1, sizeof buf - 1, f);
    fclose(f);
    return n == strlen(text) && memcmp(buf, text, n) == 0;
}

static void test_only_its_own_file(void) {
    char path[4200], moved[4300];
    zt_dataset("nc4", "identity", path, sizeof path);
    snprintf(moved, sizeof moved, "%s.moved", path);

    /* close(delete) after the name was given to a stranger: NC_EEMPTY (the
     * dataset is not at its name, as for GNZ and ZIP); the stranger stays,
     * and so does the dataset's file under its new name. */
    NCZMAP *map = NULL;
    CHECK_OK(nczmap_create(NCZM_NC4, path, 0, 0, NULL, &map));
    if (!map) return;
    CHECK_OK(nczmap_write(map, "/.nczarr", 0, 2, "{}"));
    CHECK(rename(path, moved) == 0);
    CHECK(write_text(path, "a stranger\n"));
    CHECK_CODE(nczmap_close(map, 1), NC_EEMPTY);
    CHECK(has_text(path, "a stranger\n"));
    struct stat st;
    CHECK(stat(moved, &st) == 0);

    /* create over a file that is not a dataset: NC_EEXIST, untouched. */
    map = NULL;
    CHECK_CODE(nczmap_create(NCZM_NC4, path, 0, 0, NULL, &map), NC_EEXIST);
    CHECK(map == NULL);
    CHECK_CODE(nczmap_create(NCZM_NC4, path, NC_NOCLOBBER, 0, NULL, &map),
               NC_EEXIST);
    CHECK(has_text(path, "a stranger\n"));
    CHECK_CODE(nczmap_open(NCZM_NC4, path, 0, 0, NULL, &map), NC_ENOTNC);
    CHECK(map == NULL);

    /* A netCDF-4 file holding a variable at its top is someone's data. */
    int ncid = -1, dim = -1, var = -1;
    CHECK(remove(path) == 0);
    NC(nc_create(path, NC_NETCDF4, &ncid));
    NC(nc_def_dim(ncid, "x", 3, &dim));
    NC(nc_def_var(ncid, "temperature", NC_FLOAT, 1, &dim, &var));
    NC(nc_close(ncid));
    CHECK_CODE(nczmap_create(NCZM_NC4, path, 0, 0, NULL, &map), NC_EEXIST);
    NC(nc_open(path, NC_NOWRITE, &ncid));
    CHECK(nc_inq_varid(ncid, "temperature", &var) == NC_NOERR);
    NC(nc_close(ncid));

    /* The dataset itself (a 2020 file included) is emptied by create. */
    CHECK_OK(nczmap_open(NCZM_NC4, moved, NC_WRITE, 0, NULL, &map));
    if (map) CHECK_OK(nczmap_close(map, 0));
    CHECK_OK(nczmap_create(NCZM_NC4, moved, 0, 0, NULL, &map));
    if (map) {
        check_search(map, "/", "");
        /* remove rewrites the file; its delete still finds it. */
        CHECK_OK(nczmap_write(map, "/a/b", 0, 1, "1"));
        CHECK_OK(nczmap_write(map, "/c", 0, 1, "2"));
        CHECK_OK(nczmap_remove(map, "/a/b"));
        check_search(map, "/", "/c");
        CHECK_OK(nczmap_close(map, 1));
    }
    CHECK(stat(moved, &st) != 0);
}

int main(int argc, char **argv) {
    if (argc < 2) {
        fprintf(stderr, "usage: %s nc4\n", argv[0]);
        return 2;
    }
    zt_backend(argv[1]);
    test_reads_a_file_written_by_netcdf();
    test_underscore_segments_are_invalid();
    test_remove_and_truncate_reach_the_file();
    test_only_its_own_file();
    zt_cleanup();
    return zt_finish("nc4");
}
