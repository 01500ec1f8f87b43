/* zmap.h and netCDF's netcdf.h in one translation unit, in either order,
 * compile cleanly under -std=c11 -pedantic -Wall -Wextra -Werror and agree on
 * every status code and mode flag. Built and run by the header_compat_*
 * tests (CMakeLists.txt), which define ZMAP_HEADER_ORDER_netcdf_first or
 * ZMAP_HEADER_ORDER_zmap_first. */
#if defined(ZMAP_HEADER_ORDER_netcdf_first)
#include <netcdf.h>
#include "zmap.h"
#elif defined(ZMAP_HEADER_ORDER_zmap_first)
#include "zmap.h"
#include <netcdf.h>
#else
#error "define ZMAP_HEADER_ORDER_netcdf_first or ZMAP_HEADER_ORDER_zmap_first"
#endif

#include <stdio.h>
#include <string.h>

/* netcdf.h really was included (zmap.h does not define these). */
_Static_assert(NC_MAX_NAME == 256, "netcdf.h provides NC_MAX_NAME");
_Static_assert(NC_INT == 4, "netcdf.h provides NC_INT");

/* The codes zmap.h defines have netCDF's values, whoever defined them. */
_Static_assert(NC_NOERR == 0, "NC_NOERR");
_Static_assert(NC_EBADID == -33, "NC_EBADID");
_Static_assert(NC_EEXIST == -35, "NC_EEXIST");
_Static_assert(NC_EINVAL == -36, "NC_EINVAL");
_Static_assert(NC_EPERM == -37, "NC_EPERM");
_Static_assert(NC_ENOTNC == -51, "NC_ENOTNC");
_Static_assert(NC_EEDGE == -57, "NC_EEDGE");
_Static_assert(NC_ENOMEM == -61, "NC_ENOMEM");
_Static_assert(NC_EIO == -68, "NC_EIO");
_Static_assert(NC_EDAPURL == -74, "NC_EDAPURL");
_Static_assert(NC_EURL == NC_EDAPURL, "NC_EURL");
_Static_assert(NC_EACCESS == -77, "NC_EACCESS");
_Static_assert(NC_EAUTH == -78, "NC_EAUTH");
_Static_assert(NC_ENOTFOUND == -90, "NC_ENOTFOUND");
_Static_assert(NC_EINTERNAL == -92, "NC_EINTERNAL");
_Static_assert(NC_ENOTBUILT == -128, "NC_ENOTBUILT");
_Static_assert(NC_ENCZARR == -137, "NC_ENCZARR");
_Static_assert(NC_ES3 == -138, "NC_ES3");
_Static_assert(NC_EEMPTY == -139, "NC_EEMPTY");
_Static_assert(NC_NOWRITE == 0 && NC_WRITE == 1, "NC_NOWRITE, NC_WRITE");
_Static_assert(NC_CLOBBER == 0 && NC_NOCLOBBER == 4, "NC_CLOBBER, NC_NOCLOBBER");
_Static_assert(NC_NETCDF4 == 0x1000, "NC_NETCDF4");

/* The seed's ABI: enum values and the LP64 struct layout. */
_Static_assert(NCZM_UNDEF == 0 && NCZM_MEM == 0 && NCZM_S3 == 1 && NCZM_NC4 == 2 &&
                   NCZM_FILE == 3 && NCZM_GNZ == 4 && NCZM_DEFAULT == NCZM_GNZ,
               "NCZM_IMPL values");
_Static_assert(sizeof(size64_t) == 8, "size64_t");
_Static_assert(sizeof(NClist) == 3 * sizeof(void *), "NClist");

int main(void) {
    NCZMAP *map = NULL;
    NClist *keys = nclistnew();
    const char *message = nczmap_strerror(NC_EEMPTY);
    int status;

    if (keys == NULL) return 1;
    if (strcmp(message, "NetCDF: Attempt to read empty NCZarr map key") != 0) {
        fprintf(stderr, "unexpected message for NC_EEMPTY: %s\n", message);
        return 1;
    }
    status = nczmap_create(NCZM_MEM, "mem://header-compat", NC_CLOBBER, 0, NULL, &map);
    if (status == NC_NOERR) status = nczmap_write(map, "/k", 0, 2, "hi");
    if (status == NC_NOERR) status = nczmap_search(map, "/", keys);
    if (status == NC_NOERR && nclistlength(keys) != 1) status = NC_EINTERNAL;
    if (map != NULL) {
        int closed = nczmap_close(map, 1);
        if (status == NC_NOERR) status = closed;
    }
    nclistfreeall(keys);
    if (status != NC_NOERR) {
        fprintf(stderr, "zmap calls failed: %s\n", nczmap_strerror(status));
        return 1;
    }
    printf("header_compat: zmap %s with netcdf.h: ok\n", nczmap_version());
    return 0;
}
