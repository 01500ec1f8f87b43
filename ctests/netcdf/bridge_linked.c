/* A program linked with the netCDF bridge, libnetcdf and libzmap (no
 * preload; link order -lzmap_netcdf -lnetcdf -lzmap, README "Using libzmap
 * from netCDF"): netCDF's nc_* API writes and reads a dataset on GNZ or S3
 * through the bridge, and the same process uses libzmap's 2020 API
 * (zmap.h's nczmap_*) directly.
 * argv[1]: gnz | s3 (s3 needs ZMAP_TEST_S3_URL and the AWS_* variables). */
#define _GNU_SOURCE
#include "harness.h"

#include <dlfcn.h>
#include <netcdf.h>

#define NX 6
#define NY 4

static void netcdf_roundtrip(const char *url) {
    int ncid, dx, dy, dz, grp, vf, vi, vd;
    int dims[2];
    float f[NX][NY], fr[NX][NY];
    int iv[NY] = {1, -2, 3, -4}, ir[NY];
    double d[2] = {2.5, -0.25}, dr[2] = {0, 0};
    char title[32] = {0};
    for (int x = 0; x < NX; x++)
        for (int y = 0; y < NY; y++) f[x][y] = (float)(x * 10 + y) + 0.5f;

    CHECK_OK(nc_create(url, NC_CLOBBER | NC_NETCDF4, &ncid));
    CHECK_OK(nc_def_dim(ncid, "x", NX, &dx));
    CHECK_OK(nc_def_dim(ncid, "y", NY, &dy));
    dims[0] = dx;
    dims[1] = dy;
    CHECK_OK(nc_def_var(ncid, "f", NC_FLOAT, 2, dims, &vf));
    CHECK_OK(nc_put_att_text(ncid, NC_GLOBAL, "title", 6, "linked"));
    CHECK_OK(nc_def_grp(ncid, "sub", &grp));
    CHECK_OK(nc_def_var(grp, "i", NC_INT, 1, &dy, &vi));
    /* No scalar: NCZarr 4.9.0 crashes reading one back (netCDF alone too). */
    CHECK_OK(nc_def_dim(grp, "z", 2, &dz));
    CHECK_OK(nc_def_var(grp, "d", NC_DOUBLE, 1, &dz, &vd));
    CHECK_OK(nc_enddef(ncid));
    CHECK_OK(nc_put_var_float(ncid, vf, &f[0][0]));
    CHECK_OK(nc_put_var_int(grp, vi, iv));
    CHECK_OK(nc_put_var_double(grp, vd, d));
    CHECK_OK(nc_close(ncid));

    CHECK_OK(nc_open(url, NC_NOWRITE, &ncid));
    CHECK_OK(nc_inq_varid(ncid, "f", &vf));
    CHECK_OK(nc_get_var_float(ncid, vf, &fr[0][0]));
    CHECK(memcmp(f, fr, sizeof f) == 0);
    CHECK_OK(nc_get_att_text(ncid, NC_GLOBAL, "title", title));
    CHECK(strcmp(title, "linked") == 0);
    CHECK_OK(nc_inq_grp_ncid(ncid, "sub", &grp));
    CHECK_OK(nc_inq_varid(grp, "i", &vi));
    CHECK_OK(nc_get_var_int(grp, vi, ir));
    CHECK(memcmp(iv, ir, sizeof iv) == 0);
    CHECK_OK(nc_inq_varid(grp, "d", &vd));
    CHECK_OK(nc_get_var_double(grp, vd, dr));
    CHECK(dr[0] == 2.5 && dr[1] == -0.25);
    CHECK_OK(nc_close(ncid));
}

/* libzmap's own API in the same process: the 2020 ABI (NCZM_GNZ, write with
 * start), unaffected by the bridge's 4.9 names. */
static void zmap_roundtrip(const char *backend) {
    char location[4200];
    NCZMAP *map = NULL;
    char buf[8] = {0};
    zt_dataset(backend, "direct", location, sizeof location);
    CHECK_OK(nczmap_create(zt_backend(backend), location, NC_CLOBBER, 0, NULL, &map));
    CHECK_OK(nczmap_write(map, "/a/b", 0, 5, "hello"));
    CHECK_OK(nczmap_read(map, "/a/b", 1, 4, buf));
    CHECK(memcmp(buf, "ello", 4) == 0);
    CHECK_OK(nczmap_close(map, 1));
}

/* The names libnetcdf calls resolve to the bridge, which takes bad input
 * without crashing: nczmap_close(NULL, 1) is a no-op (NCZarr calls it after
 * a failed create), a NULL map is NC_EINVAL (netCDF's own would crash). */
static void bridge_bad_input(void) {
    int (*close_fn)(void *, int) = (int (*)(void *, int))dlsym(RTLD_DEFAULT, "nczmap_close");
    int (*exists_fn)(void *, const char *) =
        (int (*)(void *, const char *))dlsym(RTLD_DEFAULT, "nczmap_exists");
    Dl_info info;
    CHECK(close_fn != NULL && exists_fn != NULL);
    if (close_fn == NULL || exists_fn == NULL) return;
    CHECK(dladdr((void *)close_fn, &info) != 0 && strstr(info.dli_fname, "zmap_netcdf") != NULL);
    CHECK_OK(close_fn(NULL, 1));
    CHECK_CODE(exists_fn(NULL, "/x"), NC_EINVAL);
}

int main(int argc, char **argv) {
    const char *backend = argc > 1 ? argv[1] : "gnz";
    char url[4300];
    zt_backend(backend); /* skips s3 without a server */
    if (strcmp(backend, "gnz") == 0) {
        char path[4200];
        snprintf(path, sizeof path, "%s/linked.gnz", zt_tmpdir());
        snprintf(url, sizeof url, "file://%s#mode=nczarr,file", path);
        netcdf_roundtrip(url);
        /* The dataset is one GNZ file, not netCDF's directory. */
        FILE *file = fopen(path, "rb");
        char magic[4] = {0};
        CHECK(file != NULL && fread(magic, 1, 4, file) == 4 && memcmp(magic, "GNZ1", 4) == 0);
        if (file) fclose(file);
    } else {
        snprintf(url, sizeof url, "%s/linked-%ld#mode=nczarr,s3", getenv("ZMAP_TEST_S3_URL"),
                 (long)getpid());
        netcdf_roundtrip(url);
    }
    zmap_roundtrip(backend);
    bridge_bad_input();
    zt_cleanup();
    return zt_finish("bridge_linked");
}
