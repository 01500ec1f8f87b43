/* FILE: nczmap_close(map, 1) deletes the dataset the map opened, and
 * nothing else (issue 10, items 2 and 3).
 *
 * Item 2, a directory that is not a dataset: nczmap_open of a plain
 * directory without a dataset marker (.nczarr, .zgroup, .zarray, .zattrs,
 * .zmetadata, zarr.json at its top) works, read-only or writable, but
 * close(map, 1) refuses with NC_EPERM and removes nothing, whether the
 * directory holds files or is empty. A dataset (marked) opened read-only
 * is deleted, as netCDF's 2020 ut_map requires; a dataset this map
 * created is deleted even before it has a marker.
 *
 * Item 3, identity, not name: the dataset directory is renamed while the
 * map is open and something else (a user's file, an empty directory,
 * another dataset) is put at the old name; close(map, 1) deletes the
 * contents of the directory it opened (found by its held descriptor) and
 * leaves whatever has the old name now untouched.
 *
 * A failed create makes nothing: `.` or `..` after a missing directory in
 * the dataset path is NC_EINVAL before any directory is made. */
// zmap-test-backends: file
#include "harness.h"

#include <fcntl.h>
#include <stdio.h>
#include <sys/stat.h>
#include <sys/types.h>

static void put_file(const char *dir, const char *name, const char *text) {
    char path[4400];
    snprintf(path, sizeof path, "%s/%s", dir, name);
    FILE *f = fopen(path, "w");
    CHECK(f != NULL);
    if (!f) return;
    fputs(text, f);
    fclose(f);
}

/* 1 if `dir/name` is a regular file holding exactly `text`. */
static int has_file(const char *dir, const char *name, const char *text) {
    char path[4400];
    if (name)
        snprintf(path, sizeof path, "%s/%s", dir, name);
    else
        snprintf(path, sizeof path, "%s", dir);
    FILE *f = fopen(path, "r");
    if (!f) return 0;
    char buf[256];
    size_t n = fread(buf, 1, sizeof buf - 1, f);
    fclose(f);
    buf[n] = '\0';
    return strcmp(buf, text) == 0;
}

static int is_dir(const char *path) {
    struct stat st;
    return lstat(path, &st) == 0 && S_ISDIR(st.st_mode);
}

/* Number of entries in `dir` besides . and .. (-1 if it cannot be read). */
static int entries(const char *dir) {
    char cmd[4400];
    snprintf(cmd, sizeof cmd, "ls -A '%s' | wc -l", dir);
    FILE *p = popen(cmd, "r");
    if (!p) return -1;
    int n = -1;
    if (fscanf(p, "%d", &n) != 1) n = -1;
    pclose(p);
    return n;
}

static void test_not_a_dataset(void) {
    char home[4200], docs[4300];
    snprintf(home, sizeof home, "%s/home", zt_tmpdir());
    snprintf(docs, sizeof docs, "%s/docs", home);
    CHECK(mkdir(home, 0700) == 0);
    CHECK(mkdir(docs, 0700) == 0);
    put_file(docs, "thesis.tex", "years of work");
    put_file(home, "notes", "keep");
    for (int writable = 0; writable <= 1; writable++) {
        NCZMAP *map = NULL;
        /* Open works: reading a plain directory harms nothing. */
        CHECK_OK(nczmap_open(NCZM_FILE, home, writable ? NC_WRITE : 0, 0, NULL,
                             &map));
        if (!map) continue;
        size64_t len = 0;
        CHECK_OK(nczmap_len(map, "/notes", &len));
        CHECK(len == 4);
        CHECK_CODE(nczmap_close(map, 1), NC_EPERM);
        CHECK(has_file(docs, "thesis.tex", "years of work"));
        CHECK(has_file(home, "notes", "keep"));
        CHECK(entries(home) == 2);
    }
    /* An empty plain directory is no dataset either. */
    char empty[4200];
    snprintf(empty, sizeof empty, "%s/empty", zt_tmpdir());
    CHECK(mkdir(empty, 0700) == 0);
    NCZMAP *map = NULL;
    CHECK_OK(nczmap_open(NCZM_FILE, empty, NC_WRITE, 0, NULL, &map));
    if (map) CHECK_CODE(nczmap_close(map, 1), NC_EPERM);
    CHECK(is_dir(empty));
    /* A marker makes it a dataset: deleted, also through a read-only map. */
    put_file(home, ".zgroup", "{}");
    map = NULL;
    CHECK_OK(nczmap_open(NCZM_FILE, home, 0, 0, NULL, &map));
    if (map) CHECK_OK(nczmap_close(map, 1));
    CHECK(access(home, F_OK) != 0);
    /* A dataset this map created is its own, marker or not. */
    map = NULL;
    CHECK_OK(nczmap_create(NCZM_FILE, empty, 0, 0, NULL, &map));
    if (map) CHECK_OK(nczmap_close(map, 1));
    CHECK(access(empty, F_OK) != 0);
}

/* Opens (or creates) a dataset at `ds` with objects, renames it to
 * `ds.moved`, lets `replace` put something at `ds`, closes with delete. */
static void rename_then_delete(int created, const char *what) {
    char ds[4200], moved[4300];
    snprintf(ds, sizeof ds, "%s/renamed-%s-%d.nzf", zt_tmpdir(), what, created);
    snprintf(moved, sizeof moved, "%s.moved", ds);
    NCZMAP *map = NULL;
    CHECK_OK(nczmap_create(NCZM_FILE, ds, 0, 0, NULL, &map));
    if (!map) return;
    CHECK_OK(nczmap_write(map, "/.zgroup", 0, 2, "{}"));
    CHECK_OK(nczmap_write(map, "/a/obj", 0, 4, "data"));
    if (!created) {
        CHECK_OK(nczmap_close(map, 0));
        map = NULL;
        CHECK_OK(nczmap_open(NCZM_FILE, ds, NC_WRITE, 0, NULL, &map));
        if (!map) return;
    }
    CHECK(rename(ds, moved) == 0);
    if (strcmp(what, "file") == 0) {
        put_file(zt_tmpdir(), strrchr(ds, '/') + 1, "the user's new file");
    } else if (strcmp(what, "emptydir") == 0) {
        CHECK(mkdir(ds, 0700) == 0);
    } else { /* another dataset */
        CHECK(mkdir(ds, 0700) == 0);
        put_file(ds, ".zgroup", "{\"other\": 1}");
    }
    CHECK_OK(nczmap_close(map, 1));
    if (strcmp(what, "file") == 0) {
        CHECK(has_file(ds, NULL, "the user's new file"));
    } else if (strcmp(what, "emptydir") == 0) {
        CHECK(is_dir(ds) && entries(ds) == 0);
    } else {
        CHECK(has_file(ds, ".zgroup", "{\"other\": 1}") && entries(ds) == 1);
    }
    /* The dataset it opened lost its objects (its directory stays, under a
     * name the map does not know). */
    CHECK(is_dir(moved) && entries(moved) == 0);
}

/* A failed create makes nothing: a `.` or `..` after a directory that does
 * not exist is NC_EINVAL before any directory is made (`p/new/..` used to
 * make `p/new` and then refuse `p`, a directory holding a file). */
static void test_create_with_dots_makes_nothing(void) {
    char p[4200], path[4400];
    snprintf(p, sizeof p, "%s/dots", zt_tmpdir());
    CHECK(mkdir(p, 0755) == 0);
    put_file(p, "keep", "keep");
    const char *rels[] = {"new/..", "a/b/../c", "x/./.."};
    for (size_t i = 0; i < sizeof rels / sizeof rels[0]; i++) {
        snprintf(path, sizeof path, "%s/%s", p, rels[i]);
        NCZMAP *map = NULL;
        CHECK_CODE(nczmap_create(NCZM_FILE, path, 0, 0, NULL, &map), NC_EINVAL);
        CHECK(map == NULL);
        CHECK(entries(p) == 1);
    }
}

int main(int argc, char **argv) {
    (void)argc;
    (void)argv;
    test_not_a_dataset();
    test_create_with_dots_makes_nothing();
    for (int created = 0; created <= 1; created++) {
        rename_then_delete(created, "file");
        rename_then_delete(created, "emptydir");
        rename_then_delete(created, "dataset");
    }
    zt_cleanup();
    return zt_finish("test_file_delete");
}
