/* libzmap and netCDF-C's libnetcdf in one process (README: "Linking libzmap
 * together with libnetcdf"). Both export nczmap_*, nczm_* and nclist* with
 * different ABIs; this program proves that netCDF's NCZarr keeps its own
 * implementation and that zmap.h's calls reach libzmap's 2020 ABI.
 *
 * Built several times by CMakeLists.txt ("netCDF coexistence" block):
 *   ZMAP_LINKED / NETCDF_LINKED  the library is linked (in the link order the
 *                                build chose), else it is dlopen()ed here.
 * argv: <libzmap path> <libnetcdf path> <how libzmap is dlopen()ed: local|global>
 * Without NETCDF_LINKED libnetcdf is dlopen()ed RTLD_LAZY|RTLD_LOCAL (as a
 * Python extension module loads it) before libzmap is used; with lazy
 * binding, netCDF's calls to its own zmap functions are bound at their first
 * use, after libzmap is loaded. */
#define _GNU_SOURCE
#include "harness.h"

#include <dlfcn.h>
#include <netcdf.h>
#include <sys/stat.h>

typedef struct {
    int (*create)(NCZM_IMPL, const char *, int, size64_t, void *, NCZMAP **);
    int (*open)(NCZM_IMPL, const char *, int, size64_t, void *, NCZMAP **);
    int (*close)(NCZMAP *, int);
    int (*write)(NCZMAP *, const char *, size64_t, size64_t, const void *);
    int (*read)(NCZMAP *, const char *, size64_t, size64_t, void *);
    int (*search)(NCZMAP *, const char *, NClist *);
    NClist *(*listnew)(void);
    int (*listfreeall)(NClist *);
    const char *(*version)(void);
} zmap_api;

typedef struct {
    int (*create)(const char *, int, int *);
    int (*open)(const char *, int, int *);
    int (*def_dim)(int, const char *, size_t, int *);
    int (*def_var)(int, const char *, nc_type, int, const int *, int *);
    int (*put_att_text)(int, int, const char *, size_t, const char *);
    int (*enddef)(int);
    int (*put_var_int)(int, int, const int *);
    int (*get_var_int)(int, int, int *);
    int (*inq_varid)(int, const char *, int *);
    int (*get_att_text)(int, int, const char *, char *);
    int (*close)(int);
    const char *(*strerror)(int);
} netcdf_api;

static zmap_api z;
static netcdf_api nc;

#if !defined(ZMAP_LINKED) || !defined(NETCDF_LINKED)
/* dlsym() that fails the test (exit 1) when the symbol is missing. */
static void *need(void *handle, const char *name) {
    void *sym = dlsym(handle, name);
    if (sym == NULL) {
        fprintf(stderr, "dlsym(%s): %s\n", name, dlerror());
        exit(1);
    }
    return sym;
}
#endif

/* The file name of the object that holds `addr`. */
static const char *object_of(const void *addr) {
    Dl_info info;
    if (addr == NULL || dladdr(addr, &info) == 0 || info.dli_fname == NULL) return "?";
    return info.dli_fname;
}

static void load_zmap(const char *path, const char *how) {
#ifdef ZMAP_LINKED
    (void)path;
    (void)how;
    z.create = nczmap_create;
    z.open = nczmap_open;
    z.close = nczmap_close;
    z.write = nczmap_write;
    z.read = nczmap_read;
    z.search = nczmap_search;
    z.listnew = nclistnew;
    z.listfreeall = nclistfreeall;
    z.version = nczmap_version;
#else
    int flags = RTLD_LAZY | (strcmp(how, "global") == 0 ? RTLD_GLOBAL : RTLD_LOCAL);
    void *h = dlopen(path, flags);
    if (h == NULL) {
        fprintf(stderr, "dlopen(%s): %s\n", path, dlerror());
        exit(1);
    }
    /* What zmap.h's link names are; the 2020 names are hidden versions. */
    *(void **)&z.create = need(h, "zmap_nczmap_create");
    *(void **)&z.open = need(h, "zmap_nczmap_open");
    *(void **)&z.close = need(h, "zmap_nczmap_close");
    *(void **)&z.write = need(h, "zmap_nczmap_write");
    *(void **)&z.read = need(h, "zmap_nczmap_read");
    *(void **)&z.search = need(h, "zmap_nczmap_search");
    *(void **)&z.listnew = need(h, "zmap_nclistnew");
    *(void **)&z.listfreeall = need(h, "zmap_nclistfreeall");
    *(void **)&z.version = need(h, "zmap_nczmap_version");
    CHECK(dlvsym(h, "nczmap_create", "ZMAP_1") == *(void **)&z.create);
    CHECK(dlvsym(h, "nclistnew", "ZMAP_1") == *(void **)&z.listnew);
    CHECK(dlsym(h, "nczmap_version") == NULL);
#endif
}

static void load_netcdf(const char *path) {
#ifdef NETCDF_LINKED
    (void)path;
    nc.create = nc_create;
    nc.open = nc_open;
    nc.def_dim = nc_def_dim;
    nc.def_var = nc_def_var;
    nc.put_att_text = nc_put_att_text;
    nc.enddef = nc_enddef;
    nc.put_var_int = nc_put_var_int;
    nc.get_var_int = nc_get_var_int;
    nc.inq_varid = nc_inq_varid;
    nc.get_att_text = nc_get_att_text;
    nc.close = nc_close;
    nc.strerror = nc_strerror;
#else
    void *h = dlopen(path, RTLD_LAZY | RTLD_LOCAL);
    if (h == NULL) {
        fprintf(stderr, "dlopen(%s): %s\n", path, dlerror());
        exit(1);
    }
    *(void **)&nc.create = need(h, "nc_create");
    *(void **)&nc.open = need(h, "nc_open");
    *(void **)&nc.def_dim = need(h, "nc_def_dim");
    *(void **)&nc.def_var = need(h, "nc_def_var");
    *(void **)&nc.put_att_text = need(h, "nc_put_att_text");
    *(void **)&nc.enddef = need(h, "nc_enddef");
    *(void **)&nc.put_var_int = need(h, "nc_put_var_int");
    *(void **)&nc.get_var_int = need(h, "nc_get_var_int");
    *(void **)&nc.inq_varid = need(h, "nc_inq_varid");
    *(void **)&nc.get_att_text = need(h, "nc_get_att_text");
    *(void **)&nc.close = need(h, "nc_close");
    *(void **)&nc.strerror = need(h, "nc_strerror");
#endif
}

#define CHECK_NC(expr)                                                          \
    do {                                                                        \
        int nc_status = (expr);                                                 \
        if (nc_status != NC_NOERR)                                              \
            fprintf(stderr, "%s:%d: %s: %d (%s)\n", __FILE__, __LINE__, #expr, \
                    nc_status, nc.strerror(nc_status));                        \
        CHECK(nc_status == NC_NOERR);                                           \
    } while (0)

/* netCDF's NCZarr writes and reads a dataset in a directory with its own
 * FILE map (its nczmap_* functions, called from inside libnetcdf). */
static void netcdf_nczarr_roundtrip(int round) {
    char dir[4200], url[4400], marker[4300];
    snprintf(dir, sizeof dir, "%s/nczarr-%d.file", zt_tmpdir(), round);
    snprintf(url, sizeof url, "file://%s#mode=nczarr,file", dir);
    int ncid = -1, dim = -1, var = -1;
    int data[6] = {1, 2, 3, 5, 8, 13}, back[6] = {0};
    char title[16] = {0};
    CHECK_NC(nc.create(url, NC_CLOBBER | NC_NETCDF4, &ncid));
    CHECK_NC(nc.def_dim(ncid, "x", 6, &dim));
    CHECK_NC(nc.def_var(ncid, "v", NC_INT, 1, &dim, &var));
    CHECK_NC(nc.put_att_text(ncid, NC_GLOBAL, "title", 8, "coexist"));
    CHECK_NC(nc.enddef(ncid));
    CHECK_NC(nc.put_var_int(ncid, var, data));
    CHECK_NC(nc.close(ncid));

    CHECK_NC(nc.open(url, NC_NOWRITE, &ncid));
    CHECK_NC(nc.inq_varid(ncid, "v", &var));
    CHECK_NC(nc.get_var_int(ncid, var, back));
    CHECK(memcmp(data, back, sizeof data) == 0);
    CHECK_NC(nc.get_att_text(ncid, NC_GLOBAL, "title", title));
    CHECK(strcmp(title, "coexist") == 0);
    CHECK_NC(nc.close(ncid));

    /* netCDF's own FILE map: a directory holding Zarr's metadata objects. */
    struct stat st;
    snprintf(marker, sizeof marker, "%s/.zgroup", dir);
    CHECK(stat(marker, &st) == 0 && S_ISREG(st.st_mode));
}

/* libzmap's 2020 ABI: enum values netCDF 4.9 does not have (MEM = 0,
 * GNZ = 4), `start` in write, full keys from search. */
static void zmap_roundtrip(int round) {
    char name[64], gnz[4200], buf[12] = {0};
    NCZMAP *map = NULL;
    snprintf(name, sizeof name, "mem://coexist-%ld-%d", (long)getpid(), round);
    CHECK(z.create(NCZM_MEM, name, NC_CLOBBER, 0, NULL, &map) == NC_NOERR);
    if (map != NULL) {
        CHECK(z.write(map, "/a/b", 0, 5, "hello") == NC_NOERR);
        CHECK(z.write(map, "/a/b", 5, 6, " world") == NC_NOERR);
        CHECK(z.read(map, "/a/b", 0, 11, buf) == NC_NOERR);
        CHECK(memcmp(buf, "hello world", 11) == 0);
        NClist *keys = z.listnew();
        CHECK(z.search(map, "/a", keys) == NC_NOERR);
        CHECK(keys != NULL && keys->length == 1 && strcmp((char *)keys->content[0], "/a/b") == 0);
        z.listfreeall(keys);
        CHECK(z.close(map, 1) == NC_NOERR);
    }
    snprintf(gnz, sizeof gnz, "%s/zmap-%d.gnz", zt_tmpdir(), round);
    map = NULL;
    CHECK(z.create(NCZM_GNZ, gnz, NC_CLOBBER, 0, NULL, &map) == NC_NOERR);
    if (map != NULL) {
        CHECK(z.write(map, "/k", 0, 3, "abc") == NC_NOERR);
        CHECK(z.close(map, 0) == NC_NOERR);
    }
    map = NULL;
    CHECK(z.open(NCZM_GNZ, gnz, NC_NOWRITE, 0, NULL, &map) == NC_NOERR);
    if (map != NULL) {
        memset(buf, 0, sizeof buf);
        CHECK(z.read(map, "/k", 0, 3, buf) == NC_NOERR && memcmp(buf, "abc", 3) == 0);
        CHECK(z.close(map, 1) == NC_NOERR);
    }
    CHECK(z.version != NULL && z.version() != NULL);
}

int main(int argc, char **argv) {
    if (argc < 4) {
        fprintf(stderr, "usage: %s LIBZMAP LIBNETCDF local|global\n", argv[0]);
        return 2;
    }
    /* netCDF first when it is linked or dlopen()ed first (Python's order). */
    load_netcdf(argv[2]);
    load_zmap(argv[1], argv[3]);

    zmap_roundtrip(1);
    netcdf_nczarr_roundtrip(1);
    zmap_roundtrip(2);
    netcdf_nczarr_roundtrip(2);

    /* Each library's functions are its own. */
    const char *zmap_object = object_of(*(void **)&z.create);
    const char *netcdf_object = object_of(*(void **)&nc.create);
    CHECK(strstr(zmap_object, "libzmap") != NULL);
    CHECK(strstr(netcdf_object, "libnetcdf") != NULL);

    zt_cleanup();
    return zt_finish(argv[0]);
}
