// zmap.h from C++ (-std=c++11 -pedantic -Wall -Wextra -Werror): the header
// compiles, its functions have C linkage, and a few calls work.
#include "zmap.h"

#include <cstdio>
#include <cstring>

static_assert(NCZM_DEFAULT == NCZM_GNZ, "NCZM_DEFAULT");
static_assert(sizeof(size64_t) == 8, "size64_t");

int main() {
    NCZMAP *map = nullptr;
    int status = nczmap_create(NCZM_MEM, "mem://cxx-compile", NC_CLOBBER, 0, nullptr, &map);
    if (status != NC_NOERR) {
        std::fprintf(stderr, "nczmap_create: %s\n", nczmap_strerror(status));
        return 1;
    }
    const char text[] = "from C++";
    status = nczmap_write(map, "/group/object", 0, sizeof text, text);
    char back[sizeof text] = {0};
    if (status == NC_NOERR) status = map->api->read(map, "/group/object", 0, sizeof back, back);
    size64_t len = 0;
    if (status == NC_NOERR) status = nczmap_len(map, "group/object", &len);
    NClist *keys = nclistnew();
    if (status == NC_NOERR) status = nczmap_search(map, "/group", keys);
    bool ok = status == NC_NOERR && len == sizeof text && std::memcmp(back, text, sizeof text) == 0 &&
              nclistlength(keys) == 1 &&
              std::strcmp(static_cast<const char *>(nclistget(keys, 0)), "/group/object") == 0;
    nclistfreeall(keys);
    int closed = nczmap_close(map, 1);
    if (!ok || closed != NC_NOERR) {
        std::fprintf(stderr, "C++ check failed: %s\n", nczmap_strerror(status != NC_NOERR ? status : closed));
        return 1;
    }
    std::printf("cxx_compile: zmap %s from C++: ok\n", nczmap_version());
    return 0;
}
