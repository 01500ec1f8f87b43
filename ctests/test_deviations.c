/* Deviations from netCDF-C 2020 (README) not proven elsewhere:
 *
 * - NCZM_NC4 without libnetcdf: NC_ENOTBUILT for create and open; NCZM_DEFAULT
 *   is NCZM_GNZ; NCZM_UNDEF is the in-memory backend;
 * - map->url is the path or URL exactly as given;
 * - keys are never looked up on the host file system: /tmp, /usr,
 *   /dev/null are ordinary objects of the dataset;
 * - count == 0: a read of an empty object and a write are NC_NOERR, and the
 *   write creates nothing;
 * - FILE and GNZ: create makes the missing parent directories;
 * - FILE: new files and directories get 0666/0777 less the umask, and
 *   NC_DEFAULT_CREATE_PERMS / NC_DEFAULT_DIR_PERMS are not read;
 * - only the header's functions are exported: 2020's accidental globals
 *   zmap_nzf, zmap_nz4, zmap_s3sdk, zfilesearch, znc4search are not.
 */
// zmap-test-backends: mem file gnz s3
#define _GNU_SOURCE
#include "harness.h"

#include <dlfcn.h>
#include <sys/stat.h>
#include <sys/types.h>

static void backends(const char *backend) {
    char path[4200];
    zt_dataset(backend, "dev-nc4", path, sizeof path);
    NCZMAP *map = NULL;
    if (!zt_nc4_built()) {
        CHECK_CODE(nczmap_create(NCZM_NC4, path, NC_CLOBBER, 0, NULL, &map), NC_ENOTBUILT);
        CHECK(map == NULL);
        CHECK_CODE(nczmap_open(NCZM_NC4, path, NC_NOWRITE, 0, NULL, &map), NC_ENOTBUILT);
        CHECK(map == NULL);
    }
    CHECK(NCZM_DEFAULT == NCZM_GNZ);
    CHECK(NCZM_UNDEF == NCZM_MEM);
    char mem[256];
    snprintf(mem, sizeof mem, "dev-undef-%ld", (long)getpid());
    CHECK_OK(nczmap_create(NCZM_UNDEF, mem, NC_CLOBBER, 0, NULL, &map));
    if (map != NULL) {
        CHECK(map->format == NCZM_MEM);
        CHECK_OK(nczmap_close(map, 1));
    }
}

static void url_and_keys(NCZM_IMPL impl, const char *backend) {
    char path[4200];
    zt_dataset(backend, "dev-keys", path, sizeof path);
    NCZMAP *map = NULL;
    CHECK_OK(nczmap_create(impl, path, NC_CLOBBER, 0, NULL, &map));
    if (map == NULL) return;
    CHECK(map->url != NULL && strcmp(map->url, path) == 0);

    /* Keys that are host paths are the dataset's keys, nothing else. */
    const char *host_keys[] = {"/tmp", "/usr/bin", "/dev/null", "/etc/passwd"};
    for (size_t i = 0; i < sizeof host_keys / sizeof *host_keys; i++) {
        size64_t len = 9;
        CHECK_CODE(nczmap_exists(map, host_keys[i]), NC_EEMPTY);
        CHECK_OK(nczmap_defineobj(map, host_keys[i]));
        CHECK_OK(nczmap_len(map, host_keys[i], &len));
        CHECK(len == 0);
        CHECK_OK(nczmap_write(map, host_keys[i], 0, 2, "ok"));
    }

    /* count == 0. */
    unsigned char b[1] = {7};
    CHECK_OK(nczmap_defineobj(map, "/empty"));
    CHECK_OK(nczmap_read(map, "/empty", 0, 0, b));
    CHECK(b[0] == 7);
    CHECK_OK(nczmap_write(map, "/never", 0, 0, "x"));
    CHECK_CODE(nczmap_exists(map, "/never"), NC_EEMPTY);
    CHECK_OK(nczmap_close(map, 0));

    /* The same after reopening. */
    CHECK_OK(nczmap_open(impl, path, NC_NOWRITE, 0, NULL, &map));
    if (map == NULL) return;
    size64_t len = 0;
    CHECK_OK(nczmap_len(map, "/dev/null", &len));
    CHECK(len == 2);
    CHECK_CODE(nczmap_exists(map, "/never"), NC_EEMPTY);
    zt_mark_for_delete(impl, path);
    CHECK_OK(nczmap_close(map, 1));
}

static void file_permissions(void) {
    char path[4200], obj[4300], dir[4300];
    zt_dataset("file", "dev-perms", path, sizeof path);
    setenv("NC_DEFAULT_CREATE_PERMS", "384", 1); /* 0600, as 2020 parsed it */
    setenv("NC_DEFAULT_DIR_PERMS", "448", 1);    /* 0700 */
    mode_t old = umask(022);
    NCZMAP *map = NULL;
    CHECK_OK(nczmap_create(NCZM_FILE, path, NC_CLOBBER, 0, NULL, &map));
    if (map != NULL) {
        CHECK_OK(nczmap_write(map, "/g/a", 0, 1, "x"));
        CHECK_OK(nczmap_close(map, 0));
    }
    umask(old);
    unsetenv("NC_DEFAULT_CREATE_PERMS");
    unsetenv("NC_DEFAULT_DIR_PERMS");
    snprintf(obj, sizeof obj, "%s/g/a", path);
    snprintf(dir, sizeof dir, "%s/g", path);
    struct stat so, sd;
    CHECK(stat(obj, &so) == 0 && (so.st_mode & 07777) == 0644);
    CHECK(stat(dir, &sd) == 0 && (sd.st_mode & 07777) == 0755);
    zt_mark_for_delete(NCZM_FILE, path);
    if (nczmap_open(NCZM_FILE, path, NC_WRITE, 0, NULL, &map) == NC_NOERR)
        CHECK_OK(nczmap_close(map, 1));
}

static void create_parents(NCZM_IMPL impl) {
    char deep[4200];
    snprintf(deep, sizeof deep, "%s/q1/q2/q3/deep.%s", zt_tmpdir(),
             impl == NCZM_GNZ ? "gnz" : "nzf");
    NCZMAP *map = NULL;
    CHECK_OK(nczmap_create(impl, deep, NC_CLOBBER, 0, NULL, &map));
    if (map != NULL) {
        CHECK_OK(nczmap_write(map, "/x", 0, 1, "x"));
        CHECK_OK(nczmap_close(map, 0));
    }
    CHECK_OK(nczmap_open(impl, deep, NC_NOWRITE, 0, NULL, &map));
    if (map != NULL) {
        CHECK_OK(nczmap_exists(map, "/x"));
        zt_mark_for_delete(impl, deep);
        CHECK_OK(nczmap_close(map, 1));
    }
}

/* True if `sym` lies in the same loaded object as libzmap's own functions
 * (libnetcdf, which an NC4 build links, exports some of 2020's names itself). */
static int in_libzmap(void *sym) {
    Dl_info ours, theirs;
    if (sym == NULL) return 0;
    if (!dladdr((void *)&nczmap_create, &ours) || !dladdr(sym, &theirs)) return 1;
    return ours.dli_fbase == theirs.dli_fbase;
}

static void exports(void) {
    const char *not_exported[] = {"zmap_nzf", "zmap_nz4", "zmap_s3sdk", "zfilesearch",
                                  "znc4search"};
    for (size_t i = 0; i < sizeof not_exported / sizeof *not_exported; i++) {
        void *sym = dlsym(RTLD_DEFAULT, not_exported[i]);
        if (in_libzmap(sym)) fprintf(stderr, "  %s is exported\n", not_exported[i]);
        CHECK(!in_libzmap(sym));
    }
    /* the lookup works: the link name, and the 2020 name as its hidden version */
    CHECK(dlsym(RTLD_DEFAULT, "zmap_nczmap_create") != NULL);
    CHECK(dlvsym(RTLD_DEFAULT, "nczmap_create", "ZMAP_1") != NULL);
}

int main(int argc, char **argv) {
    if (argc < 2) {
        fprintf(stderr, "usage: test_deviations BACKEND\n");
        return 2;
    }
    NCZM_IMPL impl = zt_backend(argv[1]);
    backends(argv[1]);
    url_and_keys(impl, argv[1]);
    if (impl == NCZM_FILE || impl == NCZM_GNZ) create_parents(impl);
    if (impl == NCZM_FILE) file_permissions();
    if (impl == NCZM_MEM) exports();
    zt_cleanup();
    return zt_finish("test_deviations");
}
