/* The drivers of the zmap benchmark (see bench.h):
 *   floor   the physical floor with plain syscalls, one file per object, the
 *           same tree the FILE backend makes: openat/pwrite/close per write
 *           (mkdirat of a missing parent), openat/pread/close per read,
 *           fstatat for exists+len, readdir for search, unlinkat, syncfs;
 *   memcpy  the memory floor for the 16 MiB objects: memcpy into fresh
 *           buffers, memcpy out of them;
 *   zmap    libzmap through include/zmap.h (any NCZM_IMPL);
 *   netcdf  netCDF-C 4.9's own zmap (libnetcdf.so.19, dlopen'ed with
 *           RTLD_DEEPBIND so that its NClist and nczmap_* stay its own). */
#include "bench.h"

#include <dirent.h>
#include <dlfcn.h>
#include <errno.h>
#include <fcntl.h>
#include <ftw.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/types.h>
#include <unistd.h>

/* --- helpers ------------------------------------------------------------------ */

static double size_sum;

static int size_visit(const char *path, const struct stat *st, int type, struct FTW *ftw) {
    (void)path;
    (void)ftw;
    if (type == FTW_F && S_ISREG(st->st_mode)) size_sum += (double)st->st_size;
    return 0;
}

double tree_size(const char *path) {
    struct stat st;
    if (lstat(path, &st) != 0) return -1;
    if (S_ISREG(st.st_mode)) return (double)st.st_size;
    size_sum = 0;
    if (nftw(path, size_visit, 16, FTW_PHYS) != 0) return -1;
    return size_sum;
}

static int remove_visit(const char *path, const struct stat *st, int type, struct FTW *ftw) {
    (void)st;
    (void)type;
    (void)ftw;
    return remove(path) == 0 || errno == ENOENT ? 0 : -1;
}

int remove_tree(const char *path) {
    struct stat st;
    if (lstat(path, &st) != 0) return errno == ENOENT ? 0 : -1;
    if (!S_ISDIR(st.st_mode)) return unlink(path);
    return nftw(path, remove_visit, 16, FTW_DEPTH | FTW_PHYS);
}

static const char *errno_message(int code) {
    return strerror(code < 0 ? -code : code);
}

/* --- floor: plain syscalls ------------------------------------------------------ */

typedef struct FloorHandle {
    int root;
    int writable;
    char path[PATH_MAX];
} FloorHandle;

static int floor_start(const char *loc, int writable, int create, void **h) {
    if (create) {
        if (remove_tree(loc) != 0 || mkdir(loc, 0755) != 0) return -errno;
    }
    FloorHandle *f = calloc(1, sizeof *f);
    if (f == NULL) return -ENOMEM;
    f->root = open(loc, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    if (f->root < 0) {
        int e = errno;
        free(f);
        return -e;
    }
    f->writable = writable;
    snprintf(f->path, sizeof f->path, "%s", loc);
    *h = f;
    return 0;
}

static int floor_create(Driver *d, const char *loc, void **h) {
    (void)d;
    return floor_start(loc, 1, 1, h);
}

static int floor_open(Driver *d, const char *loc, int writable, void **h) {
    (void)d;
    return floor_start(loc, writable, 0, h);
}

static int floor_close(Driver *d, void *h, int deleteit) {
    (void)d;
    FloorHandle *f = h;
    int st = 0;
    if (deleteit) {
        close(f->root);
        if (remove_tree(f->path) != 0) st = -errno;
    } else {
        if (f->writable && syncfs(f->root) != 0) st = -errno;
        close(f->root);
    }
    free(f);
    return st;
}

/* mkdirat every missing parent of rel (relative to root). */
static int floor_parents(int root, const char *rel) {
    char path[1024];
    size_t n = strlen(rel);
    if (n >= sizeof path) return -ENAMETOOLONG;
    memcpy(path, rel, n + 1);
    for (char *p = strchr(path, '/'); p != NULL; p = strchr(p + 1, '/')) {
        *p = '\0';
        if (mkdirat(root, path, 0755) != 0 && errno != EEXIST) return -errno;
        *p = '/';
    }
    return 0;
}

static int floor_write(void *h, const char *key, uint64_t start, uint64_t count, const void *buf) {
    FloorHandle *f = h;
    const char *rel = key + (key[0] == '/');
    int fd = openat(f->root, rel, O_WRONLY | O_CREAT | O_CLOEXEC, 0644);
    if (fd < 0 && errno == ENOENT) {
        int st = floor_parents(f->root, rel);
        if (st != 0) return st;
        fd = openat(f->root, rel, O_WRONLY | O_CREAT | O_CLOEXEC, 0644);
    }
    if (fd < 0) return -errno;
    const char *p = buf;
    while (count > 0) {
        ssize_t w = pwrite(fd, p, count, (off_t)start);
        if (w <= 0) {
            int e = w < 0 ? errno : EIO;
            close(fd);
            return -e;
        }
        p += w;
        start += (uint64_t)w;
        count -= (uint64_t)w;
    }
    return close(fd) == 0 ? 0 : -errno;
}

static int floor_read(void *h, const char *key, uint64_t start, uint64_t count, void *buf) {
    FloorHandle *f = h;
    int fd = openat(f->root, key + (key[0] == '/'), O_RDONLY | O_CLOEXEC);
    if (fd < 0) return -errno;
    char *p = buf;
    while (count > 0) {
        ssize_t r = pread(fd, p, count, (off_t)start);
        if (r <= 0) {
            int e = r < 0 ? errno : EIO;
            close(fd);
            return -e;
        }
        p += r;
        start += (uint64_t)r;
        count -= (uint64_t)r;
    }
    close(fd);
    return 0;
}

static int floor_exists_len(void *h, const char *key, uint64_t *len) {
    FloorHandle *f = h;
    struct stat st;
    if (fstatat(f->root, key + (key[0] == '/'), &st, AT_SYMLINK_NOFOLLOW) != 0) return -errno;
    if (!S_ISREG(st.st_mode)) return -ENOENT;
    *len = (uint64_t)st.st_size;
    return 0;
}

static int floor_search(void *h, const char *prefix, size_t *count) {
    FloorHandle *f = h;
    const char *rel = prefix[0] == '/' ? prefix + 1 : prefix;
    int fd = openat(f->root, rel[0] ? rel : ".", O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    if (fd < 0) return -errno;
    DIR *dir = fdopendir(fd);
    if (dir == NULL) {
        int e = errno;
        close(fd);
        return -e;
    }
    size_t n = 0;
    struct dirent *e;
    while ((e = readdir(dir)) != NULL) {
        if (e->d_name[0] == '.' && (e->d_name[1] == '\0' || (e->d_name[1] == '.' && e->d_name[2] == '\0')))
            continue;
        n++;
    }
    closedir(dir);
    *count = n;
    return 0;
}

static int floor_remove(void *h, const char *key) {
    FloorHandle *f = h;
    return unlinkat(f->root, key + (key[0] == '/'), 0) == 0 ? 0 : -errno;
}

const Ops floor_ops = {
    floor_create, floor_open, floor_close, floor_write, floor_read,
    floor_exists_len, floor_search, floor_remove, NULL, errno_message, NULL,
};

/* --- memcpy: the memory floor of the 16 MiB phases ------------------------------- */

/* One dataset at a time: big objects named "....{j}", j < MEMCPY_MAX. The
 * buffer of an object is allocated at its first write with the final size
 * (the floor knows it), so every write is one memcpy into fresh memory. */
#define MEMCPY_MAX 4096
uint64_t memcpy_object_size;
static struct {
    char *buf[MEMCPY_MAX];
    uint64_t len[MEMCPY_MAX];
} memstore;

static int memcpy_index(const char *key) {
    const char *dot = strrchr(key, '.');
    if (dot == NULL) return -1;
    long j = strtol(dot + 1, NULL, 10);
    return j >= 0 && j < MEMCPY_MAX ? (int)j : -1;
}

static int memcpy_create(Driver *d, const char *loc, void **h) {
    (void)d;
    (void)loc;
    *h = &memstore;
    return 0;
}

static int memcpy_open(Driver *d, const char *loc, int writable, void **h) {
    (void)writable;
    return memcpy_create(d, loc, h);
}

static int memcpy_close(Driver *d, void *h, int deleteit) {
    (void)d;
    (void)h;
    if (deleteit) {
        for (int j = 0; j < MEMCPY_MAX; j++) {
            free(memstore.buf[j]);
            memstore.buf[j] = NULL;
            memstore.len[j] = 0;
        }
    }
    return 0;
}

static int memcpy_write(void *h, const char *key, uint64_t start, uint64_t count, const void *buf) {
    (void)h;
    int j = memcpy_index(key);
    if (j < 0) return -EINVAL;
    if (memstore.buf[j] == NULL) {
        uint64_t size = memcpy_object_size > start + count ? memcpy_object_size : start + count;
        memstore.buf[j] = malloc(size);
        if (memstore.buf[j] == NULL) return -ENOMEM;
    }
    if (start + count > memcpy_object_size) return -EINVAL;
    memcpy(memstore.buf[j] + start, buf, count);
    if (start + count > memstore.len[j]) memstore.len[j] = start + count;
    return 0;
}

static int memcpy_read(void *h, const char *key, uint64_t start, uint64_t count, void *buf) {
    (void)h;
    int j = memcpy_index(key);
    if (j < 0 || memstore.buf[j] == NULL) return -ENOENT;
    if (start + count > memstore.len[j]) return -EINVAL;
    memcpy(buf, memstore.buf[j] + start, count);
    return 0;
}

const Ops memcpy_ops = {
    memcpy_create, memcpy_open, memcpy_close, memcpy_write, memcpy_read,
    NULL, NULL, NULL, NULL, errno_message, NULL,
};

/* --- zmap: libzmap through its public header -------------------------------------- */

typedef struct ZmapHandle {
    NCZMAP *map;
    NClist *list;
} ZmapHandle;

static int zmap_wrap(NCZMAP *map, void **h) {
    ZmapHandle *z = calloc(1, sizeof *z);
    if (z == NULL || (z->list = nclistnew()) == NULL) {
        free(z);
        nczmap_close(map, 0);
        return NC_ENOMEM;
    }
    z->map = map;
    *h = z;
    return NC_NOERR;
}

static int zmap_create(Driver *d, const char *loc, void **h) {
    NCZMAP *map = NULL;
    int st = nczmap_create((NCZM_IMPL)d->impl, loc, NC_CLOBBER, 0, NULL, &map);
    return st != NC_NOERR ? st : zmap_wrap(map, h);
}

static int zmap_open(Driver *d, const char *loc, int writable, void **h) {
    NCZMAP *map = NULL;
    int st = nczmap_open((NCZM_IMPL)d->impl, loc, writable ? NC_WRITE : NC_NOWRITE, 0, NULL, &map);
    return st != NC_NOERR ? st : zmap_wrap(map, h);
}

static int zmap_close(Driver *d, void *h, int deleteit) {
    (void)d;
    ZmapHandle *z = h;
    int st = nczmap_close(z->map, deleteit);
    nclistfreeall(z->list);
    free(z);
    return st;
}

static int zmap_write(void *h, const char *key, uint64_t start, uint64_t count, const void *buf) {
    return nczmap_write(((ZmapHandle *)h)->map, key, start, count, buf);
}

static int zmap_read(void *h, const char *key, uint64_t start, uint64_t count, void *buf) {
    return nczmap_read(((ZmapHandle *)h)->map, key, start, count, buf);
}

static int zmap_exists_len(void *h, const char *key, uint64_t *len) {
    NCZMAP *map = ((ZmapHandle *)h)->map;
    size64_t n = 0;
    int st = nczmap_exists(map, key);
    if (st == NC_NOERR) st = nczmap_len(map, key, &n);
    *len = n;
    return st;
}

static int zmap_search(void *h, const char *prefix, size_t *count) {
    ZmapHandle *z = h;
    int st = nczmap_search(z->map, prefix, z->list);
    *count = nclistlength(z->list);
    for (size_t i = 0; i < z->list->length; i++) free(z->list->content[i]);
    z->list->length = 0;
    return st;
}

static int zmap_remove(void *h, const char *key) {
    return nczmap_remove(((ZmapHandle *)h)->map, key);
}

static int zmap_compact(void *h) {
    size64_t before = 0, after = 0;
    return nczmap_compact(((ZmapHandle *)h)->map, &before, &after);
}

/* NCZarr 2020's way to make an object: nczmap_defineobj, then nczmap_write of the same key. */
static int zmap_define_write(void *h, const char *key, uint64_t count, const void *buf) {
    NCZMAP *map = ((ZmapHandle *)h)->map;
    int st = nczmap_defineobj(map, key);
    return st != NC_NOERR ? st : nczmap_write(map, key, 0, count, buf);
}

const Ops zmap_ops = {
    zmap_create, zmap_open, zmap_close, zmap_write, zmap_read,
    zmap_exists_len, zmap_search, zmap_remove, zmap_compact, nczmap_strerror,
    zmap_define_write,
};

/* --- netCDF-C 4.9's zmap ------------------------------------------------------------ */

/* netCDF-C 4.9's zmap.h: NCZM_FILE = 1; the map is an opaque pointer here. */
#define NC49_NCZM_FILE 1

static struct {
    void *lib;
    int (*initialize)(void);
    const char *(*libvers)(void);
    const char *(*strerror)(int);
    int (*create)(int impl, const char *path, int mode, unsigned long long flags, void *params, void **mapp);
    int (*open)(int impl, const char *path, int mode, unsigned long long flags, void *params, void **mapp);
    int (*close)(void *map, int deleteit);
    int (*exists)(void *map, const char *key);
    int (*len)(void *map, const char *key, unsigned long long *sizep);
    int (*read)(void *map, const char *key, unsigned long long start, unsigned long long count, void *content);
    int (*write)(void *map, const char *key, unsigned long long start, unsigned long long count, const void *content);
    int (*search)(void *map, const char *prefix, NClist *matches);
    NClist *(*listnew)(void);
    int (*listfreeall)(NClist *l);
} nc;

int netcdf_load(char *why, size_t whylen, char *version, size_t versionlen) {
    static const char *names[] = {"libnetcdf.so.19", "libnetcdf.so"};
    for (size_t i = 0; i < sizeof names / sizeof names[0] && nc.lib == NULL; i++)
        nc.lib = dlopen(names[i], RTLD_NOW | RTLD_LOCAL | RTLD_DEEPBIND);
    if (nc.lib == NULL) {
        snprintf(why, whylen, "libnetcdf not installed (%s)", dlerror());
        return -1;
    }
#define NC_SYM(field, name)                                                  \
    do {                                                                     \
        *(void **)&nc.field = dlsym(nc.lib, name);                           \
        if (nc.field == NULL) {                                              \
            snprintf(why, whylen, "libnetcdf has no %s: not built with NCZarr", name); \
            return -1;                                                       \
        }                                                                    \
    } while (0)
    NC_SYM(libvers, "nc_inq_libvers");
    snprintf(version, versionlen, "%s", nc.libvers());
    char *space = strchr(version, ' ');
    if (space != NULL) *space = '\0';
    if (strncmp(version, "4.9.", 4) != 0) {
        snprintf(why, whylen, "libnetcdf %s: only 4.9's zmap API is known here", version);
        return -1;
    }
    NC_SYM(initialize, "nc_initialize");
    NC_SYM(strerror, "nc_strerror");
    NC_SYM(create, "nczmap_create");
    NC_SYM(open, "nczmap_open");
    NC_SYM(close, "nczmap_close");
    NC_SYM(exists, "nczmap_exists");
    NC_SYM(len, "nczmap_len");
    NC_SYM(read, "nczmap_read");
    NC_SYM(write, "nczmap_write");
    NC_SYM(search, "nczmap_search");
    NC_SYM(listnew, "nclistnew");
    NC_SYM(listfreeall, "nclistfreeall");
#undef NC_SYM
    int st = nc.initialize();
    if (st != 0) {
        snprintf(why, whylen, "nc_initialize: %d", st);
        return -1;
    }
    return 0;
}

typedef struct NcHandle {
    void *map;
    NClist *list;
} NcHandle;

/* 4.9 takes a file: URL with the NCZarr mode fragment. */
static void nc_url(const char *loc, char *url, size_t n) {
    snprintf(url, n, "file://%s#mode=nczarr,file", loc);
}

static int nc_wrap(void *map, void **h) {
    NcHandle *x = calloc(1, sizeof *x);
    if (x == NULL || (x->list = nc.listnew()) == NULL) {
        free(x);
        nc.close(map, 0);
        return NC_ENOMEM;
    }
    x->map = map;
    *h = x;
    return 0;
}

static int netcdf_create(Driver *d, const char *loc, void **h) {
    (void)d;
    char url[PATH_MAX + 64];
    void *map = NULL;
    nc_url(loc, url, sizeof url);
    int st = nc.create(NC49_NCZM_FILE, url, NC_CLOBBER, 0, NULL, &map);
    return st != 0 ? st : nc_wrap(map, h);
}

static int netcdf_open(Driver *d, const char *loc, int writable, void **h) {
    (void)d;
    char url[PATH_MAX + 64];
    void *map = NULL;
    nc_url(loc, url, sizeof url);
    int st = nc.open(NC49_NCZM_FILE, url, writable ? NC_WRITE : NC_NOWRITE, 0, NULL, &map);
    return st != 0 ? st : nc_wrap(map, h);
}

static int netcdf_close(Driver *d, void *h, int deleteit) {
    (void)d;
    NcHandle *x = h;
    int st = nc.close(x->map, deleteit);
    nc.listfreeall(x->list);
    free(x);
    return st;
}

static int netcdf_write(void *h, const char *key, uint64_t start, uint64_t count, const void *buf) {
    return nc.write(((NcHandle *)h)->map, key, start, count, buf);
}

static int netcdf_read(void *h, const char *key, uint64_t start, uint64_t count, void *buf) {
    return nc.read(((NcHandle *)h)->map, key, start, count, buf);
}

static int netcdf_exists_len(void *h, const char *key, uint64_t *len) {
    void *map = ((NcHandle *)h)->map;
    unsigned long long n = 0;
    int st = nc.exists(map, key);
    if (st == 0) st = nc.len(map, key, &n);
    *len = n;
    return st;
}

static int netcdf_search(void *h, const char *prefix, size_t *count) {
    NcHandle *x = h;
    int st = nc.search(x->map, prefix, x->list);
    *count = x->list->length;
    for (size_t i = 0; i < x->list->length; i++) free(x->list->content[i]);
    x->list->length = 0;
    return st;
}

static const char *netcdf_strerror(int code) {
    return nc.strerror != NULL ? nc.strerror(code) : "netCDF error";
}

/* 4.9's zmap has no remove and no compaction. */
const Ops netcdf_ops = {
    netcdf_create, netcdf_open, netcdf_close, netcdf_write, netcdf_read,
    netcdf_exists_len, netcdf_search, NULL, NULL, netcdf_strerror, NULL,
};
