/* netCDF-C's 2020 conformance suites ut_map and ut_mapapi (zmap-api.md Part
 * B §9.2, §9.3), step by step, as scenarios in one program, with the
 * outputs the 2020 scripts compared: the search listings, a zmapio-style
 * recursive dump and, for the file backend, the `find | sort` view of the
 * on-disk tree (which must hold nothing but the dataset's directories and
 * files).
 */
// zmap-test-backends: mem file gnz zip s3 nc4
#include "harness.h"

#include <dirent.h>
#include <errno.h>
#include <stdarg.h>
#include <sys/stat.h>

static const char *backend;
static NCZM_IMPL impl;
static int is_file;
static int is_nc4;

/* The suites' constants. */
#define NCZMETAROOT "/.nczarr"
#define META1 "/meta1"
#define META2 "/meta2"
#define DATA1 "/data1"
static const char metadata1[] =
    "{\n\"foo\": 42,\n\"bar\": \"apples\",\n\"baz\": [1, 2, 3, 4]}";
static const char metadata2[] =
    "{\n\"foo\": 42,\n\"bar\": \"apples\",\n\"baz\": [1, 2, 3, 4],\n"
    "\"extra\": 137}";
static const char metaarray1[] = "{\n\"shape\": [1,2,3],\n\"dtype\": \"<1\"}";
/* 25 ints 0..24, little-endian, as the refs show them. */
static unsigned char data1[100];
#define DATA1HEX                                               \
    "00000000010000000200000003000000040000000500000006000000" \
    "0700000008000000090000000a0000000b0000000c0000000d000000" \
    "0e0000000f0000001000000011000000120000001300000014000000" \
    "15000000160000001700000018000000"
/* (The literal above is checked against data1 in main: 200 digits.) */

/* The refs' JSON as `find | sort` printed it: CR/LF turned into spaces. */
#define METADATA1_FLAT \
    "{ \"foo\": 42, \"bar\": \"apples\", \"baz\": [1, 2, 3, 4]}"
#define METADATA2_FLAT                                                  \
    "{ \"foo\": 42, \"bar\": \"apples\", \"baz\": [1, 2, 3, 4], \"extra\": " \
    "137}"
#define METAARRAY1_FLAT "{ \"shape\": [1,2,3], \"dtype\": \"<1\"}"

/* ------------------------------------------------------- growing strings */

typedef struct {
    char *s;
    size_t len, cap;
} Buf;

static void buf_add(Buf *b, const char *fmt, ...) {
    va_list ap;
    va_start(ap, fmt);
    int n = vsnprintf(NULL, 0, fmt, ap);
    va_end(ap);
    if (n < 0) return;
    if (b->len + (size_t)n + 1 > b->cap) {
        size_t cap = b->cap ? b->cap : 256;
        while (cap < b->len + (size_t)n + 1) cap *= 2;
        char *s = realloc(b->s, cap);
        if (!s) abort();
        b->s = s;
        b->cap = cap;
    }
    va_start(ap, fmt);
    vsnprintf(b->s + b->len, (size_t)n + 1, fmt, ap);
    va_end(ap);
    b->len += (size_t)n;
}

static void buf_bytes(Buf *b, const unsigned char *p, size_t n, int raw) {
    for (size_t i = 0; i < n; i++) {
        if (raw)
            buf_add(b, "%c", p[i]);
        else
            buf_add(b, "%02x", p[i]);
    }
}

static const char *buf_str(Buf *b) { return b->s ? b->s : ""; }

/* Compares a produced text with the expected one, showing both on failure. */
static void check_text_at(const char *what, const char *got,
                          const char *want, int line) {
    if (strcmp(got, want) == 0) {
        zt_passed++;
    } else {
        zt_failed++;
        fprintf(stderr,
                "%s:%d: %s differs\n--- expected:\n%s--- got:\n%s---\n",
                __FILE__, line, what, want, got);
    }
}
#define CHECK_TEXT(what, got, want) check_text_at((what), (got), (want), __LINE__)

static int cmpstr(const void *a, const void *b) {
    return strcmp(*(const char *const *)a, *(const char *const *)b);
}

static void sort_list(NClist *l) {
    if (l != NULL && l->content != NULL && l->length > 1)
        qsort(l->content, l->length, sizeof(void *), cmpstr);
}

/* ------------------------------------------------ dataset URLs, open/close */

static char dsdir[4096]; /* the tmpdir holding file datasets */

/* The URL the 2020 harness built: file://<abs>#mode=nczarr,nzf (file), or
 * a process-unique in-memory name. */
static void make_url(const char *name, char *out, size_t outlen) {
    if (is_file)
        snprintf(out, outlen, "file://%s/%s.nzf#mode=nczarr,nzf", dsdir, name);
    else if (is_nc4)
        snprintf(out, outlen, "file://%s/%s.nz4#mode=nczarr,nz4", dsdir, name);
    else
        zt_dataset(backend, name, out, outlen);
}

/* zmapio picks the backend from the fragment's mode list (split as zmapio
 * split it, with nczm_split_delim). */
static NCZM_IMPL impl_from_url(const char *url) {
    const char *frag = strstr(url, "#mode=");
    if (!frag) return impl;
    char modes[256];
    snprintf(modes, sizeof modes, "%s", frag + 6);
    char *amp = strchr(modes, '&');
    if (amp) *amp = '\0';
    NCZM_IMPL found = impl;
    NClist *parts = nclistnew();
    CHECK_OK(nczm_split_delim(modes, ',', parts));
    for (size_t i = 0; i < nclistlength(parts); i++) {
        const char *tok = nclistget(parts, i);
        if (strcmp(tok, "nzf") == 0) found = NCZM_FILE;
        else if (strcmp(tok, "nz4") == 0) found = NCZM_NC4;
        else if (strcmp(tok, "s3") == 0) found = NCZM_S3;
        else if (strcmp(tok, "gnz") == 0) found = NCZM_GNZ;
        else if (strcmp(tok, "zip") == 0) found = NCZM_ZIP;
        else if (strcmp(tok, "mem") == 0) found = NCZM_MEM;
    }
    nclistfreeall(parts);
    return found;
}

/* ----------------------------------------------- ut_map's recursive search */

static int collect(NCZMAP *map, const char *prefix, NClist *all, int sortlevels) {
    nclistpush(all, strdup(prefix));
    NClist *level = nclistnew();
    int rc = nczmap_search(map, prefix, level);
    if (rc != NC_NOERR) {
        fprintf(stderr, "search(%s) = %d (%s)\n", prefix, rc,
                nczmap_strerror(rc));
        nclistfreeall(level);
        return rc;
    }
    if (sortlevels) sort_list(level);
    for (size_t i = 0; i < nclistlength(level) && rc == NC_NOERR; i++)
        rc = collect(map, nclistget(level, i), all, sortlevels);
    nclistfreeall(level);
    return rc;
}

/* `[i] key` lines of the sorted recursive search, or NULL on failure. */
static void search_listing(const char *url, Buf *out) {
    NCZMAP *map = NULL;
    CHECK_OK(nczmap_open(impl_from_url(url), url, 0, 0, NULL, &map));
    if (!map) return;
    NClist *all = nclistnew();
    CHECK_OK(collect(map, "/", all, 0));
    sort_list(all);
    for (size_t i = 0; i < nclistlength(all); i++)
        buf_add(out, "[%zu] %s\n", i, (const char *)nclistget(all, i));
    nclistfreeall(all);
    CHECK_OK(nczmap_close(map, 0));
}

/* ----------------------------------------------------------- zmapio dump */

static void zmapio_dump(const char *url, Buf *out) {
    NCZMAP *map = NULL;
    /* zmapio opens with NC_NOCLOBBER: read-only. */
    CHECK_OK(nczmap_open(impl_from_url(url), url, NC_NOCLOBBER, 0, NULL, &map));
    if (!map) return;
    CHECK((map->mode & NC_WRITE) == 0);
    NClist *keys = nclistnew();
    CHECK_OK(collect(map, "/", keys, 1));
    for (size_t i = 0; i < nclistlength(keys); i++) {
        const char *key = nclistget(keys, i);
        size64_t len = 0;
        int rc = nczmap_len(map, key, &len);
        if (rc == NC_EEMPTY) continue;
        if (rc != NC_NOERR) {
            CHECK_OK(rc);
            continue;
        }
        unsigned char *content = malloc(len + 1);
        CHECK_OK(nczmap_read(map, key, 0, len, content));
        /* The last segment, as zmapio found it: nczm_divide_at(key, -1). */
        char *last = NULL;
        CHECK_OK(nczm_divide_at(key, -1, NULL, &last));
        const char *name = last ? last : "";
        if (name[0] == '/') name++;
        buf_add(out, "[%zu] %s : (%llu) |", i, key, len);
        buf_bytes(out, content, len, name[0] == '.');
        free(last);
        buf_add(out, "|\n");
        free(content);
    }
    nclistfreeall(keys);
    CHECK_OK(nczmap_close(map, 0));
}

#define CHECK_DUMP(url, want)                \
    do {                                     \
        Buf zt_b = {0};                      \
        zmapio_dump((url), &zt_b);           \
        CHECK_TEXT("zmapio dump", buf_str(&zt_b), (want)); \
        free(zt_b.s);                        \
    } while (0)

#define CHECK_SEARCH(url, want)              \
    do {                                     \
        Buf zt_b = {0};                      \
        search_listing((url), &zt_b);        \
        CHECK_TEXT("search listing", buf_str(&zt_b), (want)); \
        free(zt_b.s);                        \
    } while (0)

/* ---------------------------------------------- `find | sort` of the tree */

/* JSON-looking content (what zisjson accepted) is shown flat, else hex. */
static void show_file(Buf *b, const char *path) {
    FILE *f = fopen(path, "rb");
    if (!f) {
        buf_add(b, "<unreadable>");
        return;
    }
    unsigned char chunk[4096];
    Buf content = {0};
    size_t n;
    while ((n = fread(chunk, 1, sizeof chunk, f)) > 0)
        for (size_t i = 0; i < n; i++) buf_add(&content, "%c", chunk[i]);
    fclose(f);
    const char *s = buf_str(&content);
    size_t j = 0;
    while (j < content.len && (s[j] == ' ' || s[j] == '\n' || s[j] == '\r')) j++;
    int json = j < content.len && (s[j] == '{' || s[j] == '[');
    for (size_t i = 0; i < content.len; i++) {
        if (json)
            buf_add(b, "%c", (s[i] == '\n' || s[i] == '\r') ? ' ' : s[i]);
        else
            buf_add(b, "%02x", (unsigned char)s[i]);
    }
    free(content.s);
}

/* Lines for `rel` (relative to dsdir) and everything below it. */
static void find_walk(const char *rel, NClist *lines) {
    char full[8192];
    snprintf(full, sizeof full, "%s/%s", dsdir, rel);
    struct stat st;
    Buf line = {0};
    if (lstat(full, &st) != 0) {
        buf_add(&line, "%s <lstat failed: %s>", rel, strerror(errno));
    } else if (S_ISDIR(st.st_mode)) {
        buf_add(&line, "%s", rel);
        DIR *d = opendir(full);
        if (d) {
            struct dirent *e;
            while ((e = readdir(d)) != NULL) {
                if (!strcmp(e->d_name, ".") || !strcmp(e->d_name, "..")) continue;
                char child[8192];
                snprintf(child, sizeof child, "%s/%s", rel, e->d_name);
                find_walk(child, lines);
            }
            closedir(d);
        }
    } else if (S_ISREG(st.st_mode)) {
        buf_add(&line, "%s : |", rel);
        show_file(&line, full);
        buf_add(&line, "|");
    } else {
        buf_add(&line, "%s <not a file or directory: mode %o>", rel,
                (unsigned)st.st_mode);
    }
    nclistpush(lines, line.s);
}

static void find_sort(const char *dirname, Buf *out) {
    NClist *lines = nclistnew();
    find_walk(dirname, lines);
    sort_list(lines);
    for (size_t i = 0; i < nclistlength(lines); i++)
        buf_add(out, "%s\n", (const char *)nclistget(lines, i));
    nclistfreeall(lines);
}

#define CHECK_TREE(dirname, want)                         \
    do {                                                  \
        if (is_file) {                                    \
            Buf zt_b = {0};                               \
            find_sort((dirname), &zt_b);                  \
            CHECK_TEXT("find | sort", buf_str(&zt_b), (want)); \
            free(zt_b.s);                                 \
        }                                                 \
    } while (0)

/* ------------------------------------------------- `ncdump` of an nz4 file */
/* What `ncdump` prints after each step: nc4-layout.md's example layout (one
 * group per segment, '.' stored as '_', an object holding data_dim and
 * ubyte data), in creation order (the 2020 nz4 refs' order). */
#define NCDUMP_1 \
    "netcdf testmap {\n" \
    "\n" \
    "group: _nczarr {\n" \
    "  dimensions:\n" \
    "  \tdata_dim = UNLIMITED ; // (0 currently)\n" \
    "  variables:\n" \
    "  \tubyte data(data_dim) ;\n" \
    "  data:\n" \
    "  } // group _nczarr\n" \
    "}\n"
#define NCDUMP_2 \
    "netcdf testmap {\n" \
    "\n" \
    "group: _nczarr {\n" \
    "  dimensions:\n" \
    "  \tdata_dim = UNLIMITED ; // (0 currently)\n" \
    "  variables:\n" \
    "  \tubyte data(data_dim) ;\n" \
    "  data:\n" \
    "  } // group _nczarr\n" \
    "}\n"
#define NCDUMP_3 \
    "netcdf testmap {\n" \
    "\n" \
    "group: _nczarr {\n" \
    "  dimensions:\n" \
    "  \tdata_dim = UNLIMITED ; // (0 currently)\n" \
    "  variables:\n" \
    "  \tubyte data(data_dim) ;\n" \
    "  data:\n" \
    "  } // group _nczarr\n" \
    "\n" \
    "group: meta1 {\n" \
    "\n" \
    "  group: _zarray {\n" \
    "    dimensions:\n" \
    "    \tdata_dim = UNLIMITED ; // (50 currently)\n" \
    "    variables:\n" \
    "    \tubyte data(data_dim) ;\n" \
    "    data:\n" \
    "\n" \
    "     data = 123, 10, 34, 102, 111, 111, 34, 58, 32, 52, 50, 44, 10, 34, 98, \n" \
    "        97, 114, 34, 58, 32, 34, 97, 112, 112, 108, 101, 115, 34, 44, 10, 34, \n" \
    "        98, 97, 122, 34, 58, 32, 91, 49, 44, 32, 50, 44, 32, 51, 44, 32, 52, \n" \
    "        93, 125 ;\n" \
    "    } // group _zarray\n" \
    "  } // group meta1\n" \
    "}\n"
#define NCDUMP_4 \
    "netcdf testmap {\n" \
    "\n" \
    "group: _nczarr {\n" \
    "  dimensions:\n" \
    "  \tdata_dim = UNLIMITED ; // (0 currently)\n" \
    "  variables:\n" \
    "  \tubyte data(data_dim) ;\n" \
    "  data:\n" \
    "  } // group _nczarr\n" \
    "\n" \
    "group: meta1 {\n" \
    "\n" \
    "  group: _zarray {\n" \
    "    dimensions:\n" \
    "    \tdata_dim = UNLIMITED ; // (50 currently)\n" \
    "    variables:\n" \
    "    \tubyte data(data_dim) ;\n" \
    "    data:\n" \
    "\n" \
    "     data = 123, 10, 34, 102, 111, 111, 34, 58, 32, 52, 50, 44, 10, 34, 98, \n" \
    "        97, 114, 34, 58, 32, 34, 97, 112, 112, 108, 101, 115, 34, 44, 10, 34, \n" \
    "        98, 97, 122, 34, 58, 32, 91, 49, 44, 32, 50, 44, 32, 51, 44, 32, 52, \n" \
    "        93, 125 ;\n" \
    "    } // group _zarray\n" \
    "  } // group meta1\n" \
    "\n" \
    "group: meta2 {\n" \
    "\n" \
    "  group: _nczvar {\n" \
    "    dimensions:\n" \
    "    \tdata_dim = UNLIMITED ; // (64 currently)\n" \
    "    variables:\n" \
    "    \tubyte data(data_dim) ;\n" \
    "    data:\n" \
    "\n" \
    "     data = 123, 10, 34, 102, 111, 111, 34, 58, 32, 52, 50, 44, 10, 34, 98, \n" \
    "        97, 114, 34, 58, 32, 34, 97, 112, 112, 108, 101, 115, 34, 44, 10, 34, \n" \
    "        98, 97, 122, 34, 58, 32, 91, 49, 44, 32, 50, 44, 32, 51, 44, 32, 52, \n" \
    "        93, 44, 10, 34, 101, 120, 116, 114, 97, 34, 58, 32, 49, 51, 55, 125 ;\n" \
    "    } // group _nczvar\n" \
    "  } // group meta2\n" \
    "}\n"
#define NCDUMP_5 \
    "netcdf testmap {\n" \
    "\n" \
    "group: _nczarr {\n" \
    "  dimensions:\n" \
    "  \tdata_dim = UNLIMITED ; // (0 currently)\n" \
    "  variables:\n" \
    "  \tubyte data(data_dim) ;\n" \
    "  data:\n" \
    "  } // group _nczarr\n" \
    "\n" \
    "group: meta1 {\n" \
    "\n" \
    "  group: _zarray {\n" \
    "    dimensions:\n" \
    "    \tdata_dim = UNLIMITED ; // (50 currently)\n" \
    "    variables:\n" \
    "    \tubyte data(data_dim) ;\n" \
    "    data:\n" \
    "\n" \
    "     data = 123, 10, 34, 102, 111, 111, 34, 58, 32, 52, 50, 44, 10, 34, 98, \n" \
    "        97, 114, 34, 58, 32, 34, 97, 112, 112, 108, 101, 115, 34, 44, 10, 34, \n" \
    "        98, 97, 122, 34, 58, 32, 91, 49, 44, 32, 50, 44, 32, 51, 44, 32, 52, \n" \
    "        93, 125 ;\n" \
    "    } // group _zarray\n" \
    "  } // group meta1\n" \
    "\n" \
    "group: meta2 {\n" \
    "\n" \
    "  group: _nczvar {\n" \
    "    dimensions:\n" \
    "    \tdata_dim = UNLIMITED ; // (64 currently)\n" \
    "    variables:\n" \
    "    \tubyte data(data_dim) ;\n" \
    "    data:\n" \
    "\n" \
    "     data = 123, 10, 34, 102, 111, 111, 34, 58, 32, 52, 50, 44, 10, 34, 98, \n" \
    "        97, 114, 34, 58, 32, 34, 97, 112, 112, 108, 101, 115, 34, 44, 10, 34, \n" \
    "        98, 97, 122, 34, 58, 32, 91, 49, 44, 32, 50, 44, 32, 51, 44, 32, 52, \n" \
    "        93, 44, 10, 34, 101, 120, 116, 114, 97, 34, 58, 32, 49, 51, 55, 125 ;\n" \
    "    } // group _nczvar\n" \
    "  } // group meta2\n" \
    "\n" \
    "group: data1 {\n" \
    "\n" \
    "  group: \\0 {\n" \
    "    dimensions:\n" \
    "    \tdata_dim = UNLIMITED ; // (100 currently)\n" \
    "    variables:\n" \
    "    \tubyte data(data_dim) ;\n" \
    "    data:\n" \
    "\n" \
    "     data = 0, 0, 0, 0, 1, 0, 0, 0, 2, 0, 0, 0, 3, 0, 0, 0, 4, 0, 0, 0, 5, 0, \n" \
    "        0, 0, 6, 0, 0, 0, 7, 0, 0, 0, 8, 0, 0, 0, 9, 0, 0, 0, 10, 0, 0, 0, \n" \
    "        11, 0, 0, 0, 12, 0, 0, 0, 13, 0, 0, 0, 14, 0, 0, 0, 15, 0, 0, 0, 16, \n" \
    "        0, 0, 0, 17, 0, 0, 0, 18, 0, 0, 0, 19, 0, 0, 0, 20, 0, 0, 0, 21, 0, \n" \
    "        0, 0, 22, 0, 0, 0, 23, 0, 0, 0, 24, 0, 0, 0 ;\n" \
    "    } // group \\0\n" \
    "  } // group data1\n" \
    "}\n"
#define NCDUMP_6 \
    "netcdf testmap {\n" \
    "\n" \
    "group: _nczarr {\n" \
    "  dimensions:\n" \
    "  \tdata_dim = UNLIMITED ; // (0 currently)\n" \
    "  variables:\n" \
    "  \tubyte data(data_dim) ;\n" \
    "  data:\n" \
    "  } // group _nczarr\n" \
    "\n" \
    "group: meta1 {\n" \
    "\n" \
    "  group: _zarray {\n" \
    "    dimensions:\n" \
    "    \tdata_dim = UNLIMITED ; // (50 currently)\n" \
    "    variables:\n" \
    "    \tubyte data(data_dim) ;\n" \
    "    data:\n" \
    "\n" \
    "     data = 123, 10, 34, 102, 111, 111, 34, 58, 32, 52, 50, 44, 10, 34, 98, \n" \
    "        97, 114, 34, 58, 32, 34, 97, 112, 112, 108, 101, 115, 34, 44, 10, 34, \n" \
    "        98, 97, 122, 34, 58, 32, 91, 49, 44, 32, 50, 44, 32, 51, 44, 32, 52, \n" \
    "        93, 125 ;\n" \
    "    } // group _zarray\n" \
    "  } // group meta1\n" \
    "\n" \
    "group: meta2 {\n" \
    "\n" \
    "  group: _nczvar {\n" \
    "    dimensions:\n" \
    "    \tdata_dim = UNLIMITED ; // (64 currently)\n" \
    "    variables:\n" \
    "    \tubyte data(data_dim) ;\n" \
    "    data:\n" \
    "\n" \
    "     data = 123, 10, 34, 102, 111, 111, 34, 58, 32, 52, 50, 44, 10, 34, 98, \n" \
    "        97, 114, 34, 58, 32, 34, 97, 112, 112, 108, 101, 115, 34, 44, 10, 34, \n" \
    "        98, 97, 122, 34, 58, 32, 91, 49, 44, 32, 50, 44, 32, 51, 44, 32, 52, \n" \
    "        93, 44, 10, 34, 101, 120, 116, 114, 97, 34, 58, 32, 49, 51, 55, 125 ;\n" \
    "    } // group _nczvar\n" \
    "  } // group meta2\n" \
    "\n" \
    "group: data1 {\n" \
    "\n" \
    "  group: \\0 {\n" \
    "    dimensions:\n" \
    "    \tdata_dim = UNLIMITED ; // (100 currently)\n" \
    "    variables:\n" \
    "    \tubyte data(data_dim) ;\n" \
    "    data:\n" \
    "\n" \
    "     data = 0, 0, 0, 0, 1, 0, 0, 0, 2, 0, 0, 0, 3, 0, 0, 0, 4, 0, 0, 0, 5, 0, \n" \
    "        0, 0, 6, 0, 0, 0, 7, 0, 0, 0, 8, 0, 0, 0, 9, 0, 0, 0, 10, 0, 0, 0, \n" \
    "        11, 0, 0, 0, 12, 0, 0, 0, 13, 0, 0, 0, 14, 0, 0, 0, 15, 0, 0, 0, 16, \n" \
    "        0, 0, 0, 17, 0, 0, 0, 18, 0, 0, 0, 19, 0, 0, 0, 20, 0, 0, 0, 21, 0, \n" \
    "        0, 0, 22, 0, 0, 0, 23, 0, 0, 0, 24, 0, 0, 0 ;\n" \
    "    } // group \\0\n" \
    "  } // group data1\n" \
    "}\n"


/* The nz4 variants of the 2020 script compared `ncdump testmap.nz4` with a
 * reference. ncdump is the one CMake found (ZMAP_TEST_NCDUMP); without it
 * the check is skipped, saying so. */
static void ncdump_of(const char *name, Buf *out) {
    const char *ncdump = getenv("ZMAP_TEST_NCDUMP");
    char cmd[8400];
    snprintf(cmd, sizeof cmd, "'%s' '%s/%s' 2>&1", ncdump, dsdir, name);
    FILE *p = popen(cmd, "r");
    if (!p) {
        buf_add(out, "<popen failed>");
        return;
    }
    char line[4096];
    while (fgets(line, sizeof line, p) != NULL) buf_add(out, "%s", line);
    if (pclose(p) != 0) buf_add(out, "<ncdump failed>");
}

#define CHECK_NCDUMP(name, want)                                  \
    do {                                                          \
        if (is_nc4 && getenv("ZMAP_TEST_NCDUMP") != NULL) {       \
            Buf zt_b = {0};                                       \
            ncdump_of((name), &zt_b);                             \
            CHECK_TEXT("ncdump", buf_str(&zt_b), (want));         \
            free(zt_b.s);                                         \
        }                                                         \
    } while (0)

static int path_exists(const char *dirname) {
    char full[8192];
    struct stat st;
    snprintf(full, sizeof full, "%s/%s", dsdir, dirname);
    return lstat(full, &st) == 0;
}

/* -------------------------------------------------------------- ut_map */

static void check_all_calls_ok(int rc, int *ok) {
    if (rc != NC_NOERR) *ok = 0;
}

/* Runs one step; every call must return NC_NOERR (as ut_map required). */
static void utmap_create(const char *url) {
    NCZMAP *map = NULL;
    CHECK_OK(nczmap_create(impl_from_url(url), url, 0, 0, NULL, &map));
    if (!map) return;
    CHECK_OK(nczmap_defineobj(map, NCZMETAROOT));
    CHECK_OK(nczmap_close(map, 0));
}

static void test_ut_map(void) {
    char url[4200];
    make_url("testmap", url, sizeof url);

    /* create */
    utmap_create(url);
    CHECK_TREE("testmap.nzf", "testmap.nzf\n"
                              "testmap.nzf/.nczarr : ||\n");
    CHECK_NCDUMP("testmap.nz4", NCDUMP_1);
    CHECK_DUMP(url, "[1] /.nczarr : (0) ||\n");

    /* delete */
    {
        NCZMAP *map = NULL;
        CHECK_OK(nczmap_open(impl_from_url(url), url, 0, 0, NULL, &map));
        if (map) CHECK_OK(nczmap_close(map, 1));
        if (is_file) {
            CHECK(!path_exists("testmap.nzf"));
            CHECK(access(dsdir, F_OK) == 0); /* only the dataset went */
        }
        map = NULL;
        CHECK_CODE(nczmap_open(impl_from_url(url), url, 0, 0, NULL, &map),
                   NC_EEMPTY);
        CHECK(map == NULL);
    }
    /* (the script re-runs create) */
    utmap_create(url);
    CHECK_TREE("testmap.nzf", "testmap.nzf\n"
                              "testmap.nzf/.nczarr : ||\n");
    CHECK_NCDUMP("testmap.nz4", NCDUMP_2);

    /* writemeta: create again (clobbering), define, write */
    {
        NCZMAP *map = NULL;
        int ok = 1;
        CHECK_OK(nczmap_create(impl_from_url(url), url, 0, 0, NULL, &map));
        if (map) {
            check_all_calls_ok(nczmap_defineobj(map, NCZMETAROOT), &ok);
            check_all_calls_ok(nczmap_defineobj(map, META1 "/.zarray"), &ok);
            check_all_calls_ok(nczmap_write(map, META1 "/.zarray", 0,
                                            sizeof metadata1 - 1, metadata1),
                               &ok);
            CHECK(ok);
            CHECK_OK(nczmap_close(map, 0));
        }
    }
    CHECK_TREE("testmap.nzf",
               "testmap.nzf\n"
               "testmap.nzf/.nczarr : ||\n"
               "testmap.nzf/meta1\n"
               "testmap.nzf/meta1/.zarray : |" METADATA1_FLAT "|\n");
    CHECK_NCDUMP("testmap.nz4", NCDUMP_3);

    /* writemeta2 */
    {
        NCZMAP *map = NULL;
        int ok = 1;
        CHECK_OK(nczmap_open(impl_from_url(url), url, NC_WRITE, 0, NULL, &map));
        if (map) {
            check_all_calls_ok(nczmap_defineobj(map, META2 "/.nczvar"), &ok);
            check_all_calls_ok(nczmap_write(map, META2 "/.nczvar", 0,
                                            sizeof metadata2 - 1, metadata2),
                               &ok);
            CHECK(ok);
            CHECK_OK(nczmap_close(map, 0));
        }
    }
    CHECK_TREE("testmap.nzf",
               "testmap.nzf\n"
               "testmap.nzf/.nczarr : ||\n"
               "testmap.nzf/meta1\n"
               "testmap.nzf/meta1/.zarray : |" METADATA1_FLAT "|\n"
               "testmap.nzf/meta2\n"
               "testmap.nzf/meta2/.nczvar : |" METADATA2_FLAT "|\n");
    CHECK_NCDUMP("testmap.nz4", NCDUMP_4);

    /* readmeta: prints "/meta1/.zarray: |content|" */
    {
        NCZMAP *map = NULL;
        CHECK_OK(nczmap_open(impl_from_url(url), url, 0, 0, NULL, &map));
        if (map) {
            size64_t len = 0;
            CHECK_OK(nczmap_len(map, META1 "/.zarray", &len));
            CHECK(len == 50);
            char *content = calloc(1, len + 1);
            CHECK_OK(nczmap_read(map, META1 "/.zarray", 0, len, content));
            Buf out = {0};
            buf_add(&out, "%s: |%s|\n", META1 "/.zarray", content);
            CHECK_TEXT("readmeta", buf_str(&out),
                       "/meta1/.zarray: |{\n\"foo\": 42,\n\"bar\": "
                       "\"apples\",\n\"baz\": [1, 2, 3, 4]}|\n");
            free(out.s);
            free(content);
            CHECK_OK(nczmap_close(map, 0));
        }
    }

    /* writedata: three slices, each at the current end */
    {
        NCZMAP *map = NULL;
        CHECK_OK(nczmap_open(impl_from_url(url), url, NC_WRITE, 0, NULL, &map));
        if (map) {
            CHECK_OK(nczmap_defineobj(map, DATA1 "/0"));
            for (size64_t start = 0; start < 100; start += 34) {
                size64_t count = start + 34 > 100 ? 100 - start : 34;
                size64_t len = 1;
                CHECK_OK(nczmap_len(map, DATA1 "/0", &len));
                CHECK(len == start);
                CHECK_OK(nczmap_write(map, DATA1 "/0", start, count,
                                      data1 + start));
            }
            CHECK_OK(nczmap_close(map, 0));
        }
    }
    const char *tree_after_data =
        "testmap.nzf\n"
        "testmap.nzf/.nczarr : ||\n"
        "testmap.nzf/data1\n"
        "testmap.nzf/data1/0 : |" DATA1HEX "|\n"
        "testmap.nzf/meta1\n"
        "testmap.nzf/meta1/.zarray : |" METADATA1_FLAT "|\n"
        "testmap.nzf/meta2\n"
        "testmap.nzf/meta2/.nczvar : |" METADATA2_FLAT "|\n";
    CHECK_TREE("testmap.nzf", tree_after_data);
    CHECK_NCDUMP("testmap.nz4", NCDUMP_5);

    /* readdata: exists, then reads [0,36) [36,72) [72,100) */
    {
        NCZMAP *map = NULL;
        CHECK_OK(nczmap_open(impl_from_url(url), url, 0, 0, NULL, &map));
        if (map) {
            CHECK_OK(nczmap_exists(map, DATA1 "/0"));
            int ints[25];
            unsigned char *p = (unsigned char *)ints;
            memset(ints, 0xff, sizeof ints);
            CHECK_OK(nczmap_read(map, DATA1 "/0", 0, 36, p));
            CHECK_OK(nczmap_read(map, DATA1 "/0", 36, 36, p + 36));
            CHECK_OK(nczmap_read(map, DATA1 "/0", 72, 28, p + 72));
            int good = memcmp(p, data1, 100) == 0;
            for (int i = 0; i < 25 && good; i++)
                good = p[4 * i] == i && !p[4 * i + 1] && !p[4 * i + 2] &&
                       !p[4 * i + 3];
            CHECK(good);
            CHECK_OK(nczmap_close(map, 0));
        }
    }

    /* search */
    CHECK_SEARCH(url, "[0] /\n"
                      "[1] /.nczarr\n"
                      "[2] /data1\n"
                      "[3] /data1/0\n"
                      "[4] /meta1\n"
                      "[5] /meta1/.zarray\n"
                      "[6] /meta2\n"
                      "[7] /meta2/.nczvar\n");
    CHECK_DUMP(url, "[1] /.nczarr : (0) ||\n"
                    "[3] /data1/0 : (100) |" DATA1HEX "|\n"
                    "[5] /meta1/.zarray : (50) |{\n\"foo\": 42,\n\"bar\": "
                    "\"apples\",\n\"baz\": [1, 2, 3, 4]}|\n"
                    "[7] /meta2/.nczvar : (64) |{\n\"foo\": 42,\n\"bar\": "
                    "\"apples\",\n\"baz\": [1, 2, 3, 4],\n\"extra\": 137}|\n");
    /* Reading and searching left the tree as it was. */
    CHECK_TREE("testmap.nzf", tree_after_data);
    CHECK_NCDUMP("testmap.nz4", NCDUMP_6);

    /* Done: delete, and nothing is left. */
    {
        NCZMAP *map = NULL;
        CHECK_OK(nczmap_open(impl_from_url(url), url, 0, 0, NULL, &map));
        if (map) CHECK_OK(nczmap_close(map, 1));
        if (is_file) CHECK(!path_exists("testmap.nzf"));
        if (is_nc4) CHECK(!path_exists("testmap.nz4"));
    }
}

/* ----------------------------------------------------------- ut_mapapi */

static void mapapi_create(const char *url) {
    NCZMAP *map = NULL;
    int rc = nczmap_create(impl_from_url(url), url, 0, 0, NULL, &map);
    CHECK_OK(rc);
    if (!map) return;
    CHECK_OK(nczmap_defineobj(map, NCZMETAROOT));
    CHECK_OK(nczmap_close(map, 0));
    map = NULL;
    CHECK_OK(nczmap_open(impl_from_url(url), url, 0, 0, NULL, &map));
    if (!map) return;
    CHECK_OK(nczmap_exists(map, NCZMETAROOT));
    CHECK_OK(nczmap_close(map, 0));
}

static void check_object(NCZMAP *map, const char *key, const void *want,
                         size64_t wantlen) {
    size64_t len = 0;
    CHECK_OK(nczmap_exists(map, key));
    CHECK_OK(nczmap_len(map, key, &len));
    CHECK(len == wantlen);
    if (len != wantlen) return;
    unsigned char *buf = malloc(len + 1);
    CHECK_OK(nczmap_read(map, key, 0, len, buf));
    CHECK(memcmp(buf, want, len) == 0);
    free(buf);
}

static void test_ut_mapapi(void) {
    char url[4200];
    make_url("testmapapi", url, sizeof url);
    /* zmapio was run with the relative URL, from the test directory. */
    char ioUrl[4200];
    if (is_file)
        snprintf(ioUrl, sizeof ioUrl, "file://testmapapi.nzf#mode=nczarr,nzf");
    else
        snprintf(ioUrl, sizeof ioUrl, "%s", url);
    char cwd[4096];
    if (!getcwd(cwd, sizeof cwd)) cwd[0] = '\0';

    /* create */
    mapapi_create(url);
    CHECK(chdir(dsdir) == 0);
    CHECK_DUMP(ioUrl, "[1] /.nczarr : (0) ||\n");
    CHECK(chdir(cwd) == 0);
    CHECK_TREE("testmapapi.nzf", "testmapapi.nzf\n"
                                 "testmapapi.nzf/.nczarr : ||\n");

    /* delete: open, close(1), open must be exactly NC_EEMPTY */
    {
        NCZMAP *map = NULL;
        CHECK_OK(nczmap_open(impl_from_url(url), url, 0, 0, NULL, &map));
        if (map) CHECK_OK(nczmap_close(map, 1));
        map = NULL;
        CHECK_CODE(nczmap_open(impl_from_url(url), url, 0, 0, NULL, &map),
                   NC_EEMPTY);
        CHECK(map == NULL);
        map = NULL;
        CHECK_CODE(nczmap_open(impl_from_url(url), url, NC_WRITE, 0, NULL,
                               &map),
                   NC_EEMPTY);
        CHECK(map == NULL);
        if (is_file) CHECK(!path_exists("testmapapi.nzf"));
        if (is_nc4) CHECK(!path_exists("testmapapi.nz4"));
    }
    /* (the script re-creates with -x create) */
    mapapi_create(url);

    /* simplemeta */
    {
        NCZMAP *map = NULL;
        /* ut_mapapi built its keys with nczm_concat. */
        char *rootkey = NULL, *arraykey = NULL;
        CHECK_OK(nczm_concat(NULL, NCZMETAROOT, &rootkey));
        CHECK_OK(nczm_concat(META1, ".zarray", &arraykey));
        CHECK(rootkey && strcmp(rootkey, "/.nczarr") == 0);
        CHECK(arraykey && strcmp(arraykey, "/meta1/.zarray") == 0);
        CHECK_OK(nczmap_open(impl_from_url(url), url, NC_WRITE, 0, NULL, &map));
        if (map && rootkey && arraykey) {
            CHECK_OK(nczmap_defineobj(map, rootkey)); /* already there */
            CHECK_OK(nczmap_defineobj(map, arraykey));
            CHECK_OK(nczmap_write(map, rootkey, 0, 50, metadata1));
            CHECK_OK(nczmap_write(map, arraykey, 0, 34, metaarray1));
        }
        if (map) CHECK_OK(nczmap_close(map, 0));
        free(rootkey);
        free(arraykey);
        map = NULL;
        CHECK_OK(nczmap_open(impl_from_url(url), url, 0, 0, NULL, &map));
        if (map) {
            check_object(map, NCZMETAROOT, metadata1, 50);
            check_object(map, META1 "/.zarray", metaarray1, 34);
            CHECK_OK(nczmap_close(map, 0));
        }
    }
    CHECK(chdir(dsdir) == 0);
    CHECK_DUMP(ioUrl, "[1] /.nczarr : (50) |{\n\"foo\": 42,\n\"bar\": "
                      "\"apples\",\n\"baz\": [1, 2, 3, 4]}|\n"
                      "[3] /meta1/.zarray : (34) |{\n\"shape\": [1,2,3],\n"
                      "\"dtype\": \"<1\"}|\n");
    CHECK(chdir(cwd) == 0);
    CHECK_TREE("testmapapi.nzf",
               "testmapapi.nzf\n"
               "testmapapi.nzf/.nczarr : |" METADATA1_FLAT "|\n"
               "testmapapi.nzf/meta1\n"
               "testmapapi.nzf/meta1/.zarray : |" METAARRAY1_FLAT "|\n");

    /* simpledata: /data1 is a top-level leaf here */
    {
        NCZMAP *map = NULL;
        CHECK_OK(nczmap_open(impl_from_url(url), url, NC_WRITE, 0, NULL, &map));
        if (map) {
            CHECK_OK(nczmap_defineobj(map, DATA1));
            CHECK_OK(nczmap_write(map, DATA1, 0, 34, data1));
            CHECK_OK(nczmap_write(map, DATA1, 34, 34, data1 + 34));
            CHECK_OK(nczmap_write(map, DATA1, 68, 32, data1 + 68));
            CHECK_OK(nczmap_close(map, 0));
        }
        map = NULL;
        CHECK_OK(nczmap_open(impl_from_url(url), url, 0, 0, NULL, &map));
        if (map) {
            check_object(map, DATA1, data1, 100);
            CHECK_OK(nczmap_close(map, 0));
        }
    }
    const char *dump_after_data =
        "[1] /.nczarr : (50) |{\n\"foo\": 42,\n\"bar\": \"apples\",\n\"baz\": "
        "[1, 2, 3, 4]}|\n"
        "[2] /data1 : (100) |" DATA1HEX "|\n"
        "[4] /meta1/.zarray : (34) |{\n\"shape\": [1,2,3],\n\"dtype\": "
        "\"<1\"}|\n";
    CHECK(chdir(dsdir) == 0);
    CHECK_DUMP(ioUrl, dump_after_data);
    CHECK(chdir(cwd) == 0);
    const char *tree_after_data =
        "testmapapi.nzf\n"
        "testmapapi.nzf/.nczarr : |" METADATA1_FLAT "|\n"
        "testmapapi.nzf/data1 : |" DATA1HEX "|\n"
        "testmapapi.nzf/meta1\n"
        "testmapapi.nzf/meta1/.zarray : |" METAARRAY1_FLAT "|\n";
    CHECK_TREE("testmapapi.nzf", tree_after_data);

    /* search: every search call must return NC_NOERR (leaves included) */
    const char *listing = "[0] /\n"
                          "[1] /.nczarr\n"
                          "[2] /data1\n"
                          "[3] /meta1\n"
                          "[4] /meta1/.zarray\n";
    CHECK_SEARCH(url, listing);

    if (is_file) {
        /* The same dataset through every location form of Part A2. */
        char alt[4400];
        const char *forms[] = {"%s/testmapapi.nzf", "file://%s/testmapapi.nzf",
                               "file:%s/testmapapi.nzf",
                               "file://%s/testmapapi.nzf?x=1#mode=nczarr,nzf",
                               "FILE://%s/testmapapi.nzf"};
        for (size_t i = 0; i < sizeof forms / sizeof forms[0]; i++) {
            snprintf(alt, sizeof alt, forms[i], dsdir);
            CHECK_DUMP(alt, dump_after_data);
        }
        /* Relative forms, from the directory holding the dataset. */
        CHECK(chdir(dsdir) == 0);
        CHECK_SEARCH("file://testmapapi.nzf#mode=nczarr,nzf", listing);
        CHECK_SEARCH("file://testmapapi.nzf", listing);
        CHECK_SEARCH("testmapapi.nzf", listing);
        CHECK_SEARCH("./testmapapi.nzf", listing);
        /* A relative writable map, then its content from elsewhere. The
         * relative root is resolved once, at open: a later chdir does not
         * move the dataset (2020 weakness §11.5). */
        {
            NCZMAP *map = NULL;
            CHECK_OK(nczmap_open(NCZM_FILE,
                                 "file://testmapapi.nzf#mode=nczarr,nzf",
                                 NC_WRITE, 0, NULL, &map));
            CHECK(chdir(cwd) == 0);
            if (map) {
                CHECK(map->format == NCZM_FILE);
                CHECK(map->url != NULL &&
                      strstr(map->url, "testmapapi.nzf") != NULL);
                CHECK_OK(nczmap_write(map, "/rel/obj", 0, 3, "rel"));
                check_object(map, "/rel/obj", "rel", 3);
                check_object(map, DATA1, data1, 100);
                NClist *l = nclistnew();
                CHECK_OK(nczmap_search(map, "/", l));
                CHECK(nclistlength(l) == 4 && nclistmatch(l, "/rel", 1));
                nclistfreeall(l);
                CHECK_OK(nczmap_close(map, 0));
            }
        }
        {
            NCZMAP *map = NULL;
            CHECK_OK(nczmap_open(impl_from_url(url), url, NC_WRITE, 0, NULL,
                                 &map));
            if (map) {
                check_object(map, "/rel/obj", "rel", 3);
                CHECK_OK(nczmap_remove(map, "/rel/obj"));
                CHECK_OK(nczmap_close(map, 0));
            }
        }
        CHECK_TREE("testmapapi.nzf", tree_after_data);
    }

    /* Clean up: the dataset goes, nothing else. */
    {
        NCZMAP *map = NULL;
        CHECK_OK(nczmap_open(impl_from_url(url), url, 0, 0, NULL, &map));
        if (map) CHECK_OK(nczmap_close(map, 1));
        map = NULL;
        CHECK_CODE(nczmap_open(impl_from_url(url), url, 0, 0, NULL, &map),
                   NC_EEMPTY);
        if (is_file) CHECK(!path_exists("testmapapi.nzf"));
        if (is_nc4) CHECK(!path_exists("testmapapi.nz4"));
    }
}

int main(int argc, char **argv) {
    if (argc < 2) {
        fprintf(stderr, "usage: %s mem|file|gnz|s3\n", argv[0]);
        return 2;
    }
    backend = argv[1];
    impl = zt_backend(backend);
    is_file = strcmp(backend, "file") == 0;
    is_nc4 = strcmp(backend, "nc4") == 0;
    if (is_nc4 && getenv("ZMAP_TEST_NCDUMP") == NULL)
        printf("ZMAP_TEST_NCDUMP is not set: the ncdump layout checks are skipped\n");
    snprintf(dsdir, sizeof dsdir, "%s", zt_tmpdir());

    /* The constants are what the spec says they are. */
    CHECK(sizeof metadata1 - 1 == 50);
    CHECK(sizeof metadata2 - 1 == 64);
    CHECK(sizeof metaarray1 - 1 == 34);
    for (int i = 0; i < 25; i++) {
        data1[4 * i] = (unsigned char)i;
        data1[4 * i + 1] = data1[4 * i + 2] = data1[4 * i + 3] = 0;
    }
    {
        Buf hex = {0};
        buf_bytes(&hex, data1, 100, 0);
        CHECK(strlen(DATA1HEX) == 200);
        CHECK_TEXT("DATA1HEX", buf_str(&hex), DATA1HEX);
        free(hex.s);
    }

    test_ut_map();
    test_ut_mapapi();

    zt_cleanup();
    return zt_finish("utmap");
}
