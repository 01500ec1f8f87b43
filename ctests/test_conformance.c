/* The object contract of zmap-api.md Part A4 (plus the dataset rules of A2
 * and the additions of A1), through the public header, on the backend named
 * by argv[1]. Every backend must give exactly the same answers.
 */
// zmap-test-backends: mem file gnz zip s3 nc4
#include "harness.h"

#include <dirent.h>
#include <stdint.h>
#include <sys/stat.h>

static const char *backend;
static NCZM_IMPL impl;

/* ------------------------------------------------------------------ helpers */

/* Creates a fresh dataset `name` (mode 0); its location goes to `path`. */
static NCZMAP *make(const char *name, char *path, size_t pathlen) {
    NCZMAP *map = NULL;
    zt_dataset(backend, name, path, pathlen);
    CHECK_OK(nczmap_create(impl, path, 0, 0, NULL, &map));
    CHECK(map != NULL);
    return map;
}

static NCZMAP *reopen(const char *path, int mode) {
    NCZMAP *map = NULL;
    CHECK_OK(nczmap_open(impl, path, mode, 0, NULL, &map));
    CHECK(map != NULL);
    return map;
}

/* Writes a NUL-terminated string as the whole content of `key`. */
static void put(NCZMAP *map, const char *key, const char *text) {
    CHECK_OK(nczmap_write(map, key, 0, strlen(text), text));
}

/* Checks that `key` is an object of exactly `len` bytes equal to `want`. */
static void check_content_at(NCZMAP *map, const char *key, const void *want,
                             size64_t len, int line) {
    size64_t got = 12345;
    int rc = nczmap_len(map, key, &got);
    if (rc != NC_NOERR || got != len) {
        zt_failed++;
        fprintf(stderr, "%s:%d: len(%s) = %d, %llu; expected 0, %llu\n",
                __FILE__, line, key, rc, got, len);
        return;
    }
    zt_passed++;
    unsigned char *buf = malloc(len + 1);
    rc = nczmap_read(map, key, 0, len, buf);
    if (rc != NC_NOERR || (len && memcmp(buf, want, len) != 0)) {
        zt_failed++;
        fprintf(stderr, "%s:%d: read(%s) = %d or content differs\n", __FILE__,
                line, key, rc);
    } else {
        zt_passed++;
    }
    free(buf);
}
#define check_content(map, key, want, len) \
    check_content_at((map), (key), (want), (len), __LINE__)
#define check_text(map, key, text) \
    check_content_at((map), (key), (text), strlen(text), __LINE__)

/* Checks that search(prefix) adds exactly the NULL-terminated list `want`
 * (in that order) to a list that already holds one element, which must stay. */
static void check_search_at(NCZMAP *map, const char *prefix,
                            const char *const *want, int line) {
    NClist *l = nclistnew();
    char *first = strdup("already-there");
    nclistpush(l, first);
    int rc = nczmap_search(map, prefix, l);
    size_t n = 0;
    while (want[n]) n++;
    int ok = rc == NC_NOERR && nclistlength(l) == n + 1 &&
             nclistget(l, 0) == first && strcmp(first, "already-there") == 0;
    for (size_t i = 0; ok && i < n; i++)
        ok = nclistget(l, i + 1) != NULL &&
             strcmp((const char *)nclistget(l, i + 1), want[i]) == 0;
    if (ok) {
        zt_passed++;
    } else {
        zt_failed++;
        fprintf(stderr, "%s:%d: search(%s) = %d, got [", __FILE__, line,
                prefix ? prefix : "NULL", rc);
        for (size_t i = 1; i < nclistlength(l); i++)
            fprintf(stderr, "%s\"%s\"", i > 1 ? ", " : "",
                    (const char *)nclistget(l, i));
        fprintf(stderr, "], expected [");
        for (size_t i = 0; i < n; i++)
            fprintf(stderr, "%s\"%s\"", i ? ", " : "", want[i]);
        fprintf(stderr, "]\n");
    }
    nclistfreeall(l);
}
#define check_search(map, prefix, ...)                               \
    do {                                                             \
        const char *const zt_want[] = {__VA_ARGS__, NULL};           \
        check_search_at((map), (prefix), zt_want, __LINE__);         \
    } while (0)
#define check_search_none(map, prefix)                               \
    do {                                                             \
        const char *const zt_want[] = {NULL};                        \
        check_search_at((map), (prefix), zt_want, __LINE__);         \
    } while (0)

static int is_zero(const unsigned char *p, size_t n) {
    for (size_t i = 0; i < n; i++)
        if (p[i]) return 0;
    return 1;
}

static int all_byte(const unsigned char *p, size_t n, unsigned char b) {
    for (size_t i = 0; i < n; i++)
        if (p[i] != b) return 0;
    return 1;
}


/* ------------------------------------------- the FILE backend's disk tree */

static int cmpstr(const void *a, const void *b) {
    return strcmp(*(const char *const *)a, *(const char *const *)b);
}

static void tree_walk(const char *full, const char *rel, int times,
                      NClist *lines) {
    DIR *d = opendir(full);
    if (!d) return;
    struct dirent *e;
    while ((e = readdir(d)) != NULL) {
        if (!strcmp(e->d_name, ".") || !strcmp(e->d_name, "..")) continue;
        char cfull[8192], crel[8192], line[8400];
        snprintf(cfull, sizeof cfull, "%s/%s", full, e->d_name);
        snprintf(crel, sizeof crel, "%s%s%s", rel, *rel ? "/" : "", e->d_name);
        struct stat st;
        if (lstat(cfull, &st) != 0)
            snprintf(line, sizeof line, "%s ?", crel);
        else if (S_ISDIR(st.st_mode))
            snprintf(line, sizeof line, "%s/", crel);
        else if (S_ISREG(st.st_mode))
            snprintf(line, sizeof line, "%s %lld", crel, (long long)st.st_size);
        else
            snprintf(line, sizeof line, "%s <mode %o>", crel, (unsigned)st.st_mode);
        if (times && lstat(cfull, &st) == 0) {
            size_t n = strlen(line);
            snprintf(line + n, sizeof line - n, " @%lld.%09ld",
                     (long long)st.st_mtim.tv_sec, (long)st.st_mtim.tv_nsec);
        }
        nclistpush(lines, strdup(line));
        if (S_ISDIR(st.st_mode)) tree_walk(cfull, crel, times, lines);
    }
    closedir(d);
}

/* The dataset directory's content, one sorted line per entry: "dir/" or
 * "file size" (with mtimes if `times`), relative to the root. */
static char *tree(const char *root, int times) {
    NClist *lines = nclistnew();
    tree_walk(root, "", times, lines);
    if (times) {
        struct stat st;
        char line[100];
        if (stat(root, &st) == 0) {
            snprintf(line, sizeof line, ". @%lld.%09ld",
                     (long long)st.st_mtim.tv_sec, (long)st.st_mtim.tv_nsec);
            nclistpush(lines, strdup(line));
        }
    }
    if (nclistlength(lines) > 1)
        qsort(lines->content, lines->length, sizeof(void *), cmpstr);
    size_t total = 1;
    for (size_t i = 0; i < nclistlength(lines); i++)
        total += strlen(nclistget(lines, i)) + 1;
    char *out = malloc(total), *p = out;
    for (size_t i = 0; i < nclistlength(lines); i++)
        p += sprintf(p, "%s\n", (const char *)nclistget(lines, i));
    *p = '\0';
    nclistfreeall(lines);
    return out;
}

/* File backend only: the tree holds exactly one directory per intermediate
 * key and one regular file per object, nothing else (Part A4). */
static void check_tree_at(const char *root, const char *want, int line) {
    if (strcmp(backend, "file") != 0) return;
    char *got = tree(root, 0);
    if (strcmp(got, want) == 0) {
        zt_passed++;
    } else {
        zt_failed++;
        fprintf(stderr, "%s:%d: tree of %s\n--- expected:\n%s--- got:\n%s---\n",
                __FILE__, line, root, want, got);
    }
    free(got);
}
#define check_tree(root, want) check_tree_at((root), (want), __LINE__)

/* ----------------------------------------------------------- exists / len */

static void test_exists_len(void) {
    char path[4096];
    NCZMAP *map = make("existslen", path, sizeof path);
    if (!map) return;
    put(map, "/a/b", "abc");
    CHECK_OK(nczmap_exists(map, "/a/b"));
    CHECK_OK(nczmap_exists(map, "a/b"));   /* leading '/' optional */
    CHECK_OK(nczmap_exists(map, "/a/b/")); /* one trailing '/' ignored */
    CHECK_CODE(nczmap_exists(map, "/a"), NC_EEMPTY);  /* intermediate */
    CHECK_CODE(nczmap_exists(map, "/a/"), NC_EEMPTY);
    CHECK_CODE(nczmap_exists(map, "/"), NC_EEMPTY);   /* root */
    CHECK_CODE(nczmap_exists(map, "/missing"), NC_EEMPTY);
    CHECK_CODE(nczmap_exists(map, "/a/missing"), NC_EEMPTY);
    CHECK_CODE(nczmap_exists(map, "/a/b/c"), NC_EEMPTY); /* below an object */
    CHECK_CODE(nczmap_exists(map, "/A/b"), NC_EEMPTY);   /* case matters */
    CHECK_CODE(nczmap_exists(map, "/a/bc"), NC_EEMPTY);

    size64_t n = 999;
    CHECK_OK(nczmap_len(map, "/a/b", &n));
    CHECK(n == 3);
    CHECK_OK(nczmap_len(map, "/a/b", NULL)); /* sizep may be NULL */
    n = 999;
    CHECK_CODE(nczmap_len(map, "/missing", &n), NC_EEMPTY);
    CHECK(n == 0);
    n = 999;
    CHECK_CODE(nczmap_len(map, "/a", &n), NC_EEMPTY);
    CHECK(n == 0);
    n = 999;
    CHECK_CODE(nczmap_len(map, "/", &n), NC_EEMPTY);
    CHECK(n == 0);
    n = 999;
    CHECK_CODE(nczmap_len(map, "/a/b/c", &n), NC_EEMPTY);
    CHECK(n == 0);
    CHECK_CODE(nczmap_len(map, "/missing", NULL), NC_EEMPTY);
    CHECK_OK(nczmap_close(map, 1));
}

/* --------------------------------------------------------------- defineobj */

static void test_defineobj(void) {
    char path[4096];
    NCZMAP *map = make("define", path, sizeof path);
    if (!map) return;
    CHECK_OK(nczmap_defineobj(map, "/d/e/f"));
    CHECK_OK(nczmap_exists(map, "/d/e/f"));
    check_content(map, "/d/e/f", "", 0);
    CHECK_CODE(nczmap_exists(map, "/d"), NC_EEMPTY);
    CHECK_CODE(nczmap_exists(map, "/d/e"), NC_EEMPTY);
    check_search(map, "/", "/d");
    check_search(map, "/d", "/d/e");
    check_search(map, "/d/e", "/d/e/f");
    /* Idempotent. */
    CHECK_OK(nczmap_defineobj(map, "/d/e/f"));
    CHECK_OK(nczmap_defineobj(map, "d/e/f"));
    check_content(map, "/d/e/f", "", 0);
    check_search(map, "/d/e", "/d/e/f");
    /* Never truncates. */
    put(map, "/d/e/f", "hello");
    CHECK_OK(nczmap_defineobj(map, "/d/e/f"));
    CHECK_OK(nczmap_defineobj(map, "/d/e/f/"));
    check_text(map, "/d/e/f", "hello");
    /* A sibling next to an existing object, at the top level too. */
    CHECK_OK(nczmap_defineobj(map, "/d/e/g"));
    CHECK_OK(nczmap_defineobj(map, "top"));
    check_search(map, "/d/e", "/d/e/f", "/d/e/g");
    check_search(map, "/", "/d", "/top");
    check_text(map, "/d/e/f", "hello");
    CHECK_OK(nczmap_close(map, 0));
    /* Still there, still intact, after close/open. */
    map = reopen(path, 0);
    check_text(map, "/d/e/f", "hello");
    check_content(map, "/d/e/g", "", 0);
    check_content(map, "/top", "", 0);
    zt_mark_for_delete(impl, path);
    CHECK_OK(nczmap_close(map, 1));
}

/* ------------------------------------------------------------------- write */

static void test_write(void) {
    char path[4096];
    NCZMAP *map = make("write", path, sizeof path);
    if (!map) return;
    /* Implicit creation, with intermediates. */
    CHECK_CODE(nczmap_exists(map, "/w/x"), NC_EEMPTY);
    CHECK_OK(nczmap_write(map, "/w/x", 0, 4, "ABCD"));
    check_content(map, "/w/x", "ABCD", 4);
    check_search(map, "/", "/w");
    /* Extend at the end. */
    CHECK_OK(nczmap_write(map, "/w/x", 4, 4, "EFGH"));
    check_content(map, "/w/x", "ABCDEFGH", 8);
    /* A gap past the end reads as zeros. */
    CHECK_OK(nczmap_write(map, "/w/x", 20, 2, "YZ"));
    {
        unsigned char want[22];
        memcpy(want, "ABCDEFGH", 8);
        memset(want + 8, 0, 12);
        memcpy(want + 20, "YZ", 2);
        check_content(map, "/w/x", want, 22);
    }
    /* Overwrite inside: length stays. */
    CHECK_OK(nczmap_write(map, "/w/x", 2, 2, "zz"));
    /* Shorter rewrite at 0 never shrinks. */
    CHECK_OK(nczmap_write(map, "/w/x", 0, 1, "a"));
    {
        unsigned char want[22];
        memcpy(want, "aBzzEFGH", 8);
        memset(want + 8, 0, 12);
        memcpy(want + 20, "YZ", 2);
        check_content(map, "/w/x", want, 22);
    }
    /* An object created by a write starting past 0: a leading hole. */
    CHECK_OK(nczmap_write(map, "/w/hole", 1000, 3, "end"));
    {
        unsigned char buf[1003];
        size64_t n = 0;
        CHECK_OK(nczmap_len(map, "/w/hole", &n));
        CHECK(n == 1003);
        memset(buf, 0x5a, sizeof buf);
        CHECK_OK(nczmap_read(map, "/w/hole", 0, 1003, buf));
        CHECK(is_zero(buf, 1000));
        CHECK(memcmp(buf + 1000, "end", 3) == 0);
    }
    /* count 0 changes nothing and creates nothing. */
    CHECK_OK(nczmap_write(map, "/w/x", 0, 0, "qqqq"));
    CHECK_OK(nczmap_write(map, "/w/x", 100, 0, "qqqq"));
    CHECK_OK(nczmap_write(map, "/w/x", 0, 0, NULL));
    {
        size64_t n = 0;
        CHECK_OK(nczmap_len(map, "/w/x", &n));
        CHECK(n == 22);
    }
    CHECK_OK(nczmap_write(map, "/w/none", 0, 0, "qqqq"));
    CHECK_OK(nczmap_write(map, "/w/none", 5, 0, NULL));
    CHECK_CODE(nczmap_exists(map, "/w/none"), NC_EEMPTY);
    CHECK_CODE(nczmap_exists(map, "/z/none"), NC_EEMPTY);
    CHECK_OK(nczmap_write(map, "/z/none", 0, 0, "q"));
    check_search(map, "/", "/w");
    check_search(map, "/w", "/w/hole", "/w/x");
    /* NULL buffer with count > 0. */
    CHECK_CODE(nczmap_write(map, "/w/x", 0, 1, NULL), NC_EINVAL);
    CHECK_CODE(nczmap_write(map, "/w/nullbuf", 0, 4, NULL), NC_EINVAL);
    CHECK_CODE(nczmap_exists(map, "/w/nullbuf"), NC_EEMPTY);
    /* Root is not an object. */
    CHECK(nczmap_write(map, "/", 0, 1, "x") != NC_NOERR);
    check_search(map, "/w", "/w/hole", "/w/x");
    /* Durable after close. */
    CHECK_OK(nczmap_close(map, 0));
    check_tree(path, "w/\nw/hole 1003\nw/x 22\n");
    map = reopen(path, 0);
    {
        unsigned char want[22];
        memcpy(want, "aBzzEFGH", 8);
        memset(want + 8, 0, 12);
        memcpy(want + 20, "YZ", 2);
        check_content(map, "/w/x", want, 22);
    }
    zt_mark_for_delete(impl, path);
    CHECK_OK(nczmap_close(map, 1));
}

/* -------------------------------------------------------------------- read */

static void test_read(void) {
    char path[4096];
    NCZMAP *map = make("read", path, sizeof path);
    if (!map) return;
    put(map, "/r/obj", "0123456789");
    unsigned char buf[64];

    memset(buf, 0xab, sizeof buf);
    CHECK_OK(nczmap_read(map, "/r/obj", 3, 4, buf));
    CHECK(memcmp(buf, "3456", 4) == 0);
    CHECK(all_byte(buf + 4, sizeof buf - 4, 0xab)); /* nothing past count */

    CHECK_OK(nczmap_read(map, "/r/obj", 9, 1, buf));
    CHECK(buf[0] == '9');

    /* Past the end: NC_EEDGE, buffer untouched. */
    memset(buf, 0xab, sizeof buf);
    CHECK_CODE(nczmap_read(map, "/r/obj", 5, 10, buf), NC_EEDGE);
    CHECK(all_byte(buf, sizeof buf, 0xab));
    CHECK_CODE(nczmap_read(map, "/r/obj", 0, 11, buf), NC_EEDGE);
    CHECK(all_byte(buf, sizeof buf, 0xab));
    CHECK_CODE(nczmap_read(map, "/r/obj", 10, 1, buf), NC_EEDGE);
    CHECK(all_byte(buf, sizeof buf, 0xab));
    CHECK_CODE(nczmap_read(map, "/r/obj", 1000, 1, buf), NC_EEDGE);
    CHECK(all_byte(buf, sizeof buf, 0xab));

    /* count 0. */
    CHECK_OK(nczmap_read(map, "/r/obj", 0, 0, buf));
    CHECK_OK(nczmap_read(map, "/r/obj", 10, 0, buf));
    CHECK_OK(nczmap_read(map, "/r/obj", 0, 0, NULL));
    CHECK(all_byte(buf, sizeof buf, 0xab));

    /* Not an object. */
    CHECK_CODE(nczmap_read(map, "/r/missing", 0, 1, buf), NC_EEMPTY);
    CHECK_CODE(nczmap_read(map, "/r/missing", 0, 0, buf), NC_EEMPTY);
    CHECK_CODE(nczmap_read(map, "/r", 0, 1, buf), NC_EEMPTY);
    CHECK_CODE(nczmap_read(map, "/", 0, 1, buf), NC_EEMPTY);
    CHECK_CODE(nczmap_read(map, "/r/obj/below", 0, 1, buf), NC_EEMPTY);
    CHECK(all_byte(buf, sizeof buf, 0xab));

    /* start + count overflows. */
    CHECK_CODE(nczmap_read(map, "/r/obj", UINT64_MAX, 2, buf), NC_EINVAL);
    CHECK_CODE(nczmap_read(map, "/r/obj", UINT64_MAX - 3, 8, buf), NC_EINVAL);
    CHECK_CODE(nczmap_write(map, "/r/obj", UINT64_MAX, 2, "xx"), NC_EINVAL);
    CHECK(all_byte(buf, sizeof buf, 0xab));
    check_text(map, "/r/obj", "0123456789");

    /* A read-only map reads the same. */
    CHECK_OK(nczmap_close(map, 0));
    map = reopen(path, 0);
    memset(buf, 0xab, sizeof buf);
    CHECK_OK(nczmap_read(map, "/r/obj", 2, 3, buf));
    CHECK(memcmp(buf, "234", 3) == 0);
    CHECK_CODE(nczmap_read(map, "/r/obj", 8, 3, buf + 10), NC_EEDGE);
    CHECK(all_byte(buf + 3, sizeof buf - 3, 0xab));
    zt_mark_for_delete(impl, path);
    CHECK_OK(nczmap_close(map, 1));
}

/* ------------------------------------------------------------------ search */

static void test_search(void) {
    char path[4096];
    NCZMAP *map = make("search", path, sizeof path);
    if (!map) return;
    CHECK_OK(nczmap_defineobj(map, "/.nczarr"));
    put(map, "/meta1/.zarray", "{}");
    put(map, "/meta2/.nczvar", "{}");
    CHECK_OK(nczmap_defineobj(map, "/data1/0"));
    CHECK_OK(nczmap_defineobj(map, "/data1/1"));
    CHECK_OK(nczmap_defineobj(map, "/data1/10"));
    CHECK_OK(nczmap_defineobj(map, "/data1/2"));
    CHECK_OK(nczmap_defineobj(map, "/B"));
    /* NC4 refuses a segment starting with '_' (README: it would read back
     * as '.'); the other backends store it. */
    int underscore = strcmp(backend, "nc4") != 0;
    CHECK_CODE(nczmap_defineobj(map, "/_x"), underscore ? NC_NOERR : NC_EINVAL);
    CHECK_OK(nczmap_defineobj(map, "/deep/x/y/z"));
    CHECK_OK(nczmap_defineobj(map, "/meta1-"));

    /* Byte order; intermediate keys included; only the next level. */
    if (underscore) {
        check_search(map, "/", "/.nczarr", "/B", "/_x", "/data1", "/deep",
                     "/meta1", "/meta1-", "/meta2");
        check_search(map, NULL, "/.nczarr", "/B", "/_x", "/data1", "/deep",
                     "/meta1", "/meta1-", "/meta2");
        check_search(map, "", "/.nczarr", "/B", "/_x", "/data1", "/deep",
                     "/meta1", "/meta1-", "/meta2");
    } else {
        check_search(map, "/", "/.nczarr", "/B", "/data1", "/deep", "/meta1",
                     "/meta1-", "/meta2");
        check_search(map, NULL, "/.nczarr", "/B", "/data1", "/deep", "/meta1",
                     "/meta1-", "/meta2");
        check_search(map, "", "/.nczarr", "/B", "/data1", "/deep", "/meta1",
                     "/meta1-", "/meta2");
    }
    check_search(map, "/data1", "/data1/0", "/data1/1", "/data1/10",
                 "/data1/2");
    check_search(map, "/deep", "/deep/x");
    check_search(map, "/deep/x", "/deep/x/y");
    check_search(map, "/deep/x/y", "/deep/x/y/z");
    /* The prefix is echoed as given. */
    check_search(map, "/meta1", "/meta1/.zarray");
    check_search(map, "/meta1/", "/meta1/.zarray");
    check_search(map, "meta1", "meta1/.zarray");
    check_search(map, "meta1/", "meta1/.zarray");
    check_search(map, "deep/x/", "deep/x/y");
    /* A leaf, a missing prefix, below a leaf: NC_NOERR, nothing added. */
    check_search_none(map, "/meta1/.zarray");
    check_search_none(map, "/.nczarr");
    check_search_none(map, "/nosuch");
    check_search_none(map, "/nosuch/deeper");
    check_search_none(map, "/meta1/.zarray/below");
    check_search_none(map, "/data1/0/x");
    check_search_none(map, "/meta"); /* a string prefix is not a key prefix */
    check_search_none(map, "/dat");

    /* Each string is a separate malloc'd copy (nclistfreeall frees it). */
    {
        NClist *l = nclistnew();
        CHECK_OK(nczmap_search(map, "/data1", l));
        CHECK_OK(nczmap_search(map, "/data1", l)); /* appended, not cleared */
        CHECK(nclistlength(l) == 8);
        if (nclistlength(l) == 8) {
            CHECK(strcmp(nclistget(l, 0), nclistget(l, 4)) == 0);
            CHECK(nclistget(l, 0) != nclistget(l, 4));
            CHECK(strcmp(nclistget(l, 7), "/data1/2") == 0);
        }
        nclistfreeall(l);
    }
    /* Read-only maps search the same. */
    CHECK_OK(nczmap_close(map, 0));
    map = reopen(path, 0);
    if (underscore)
        check_search(map, "/", "/.nczarr", "/B", "/_x", "/data1", "/deep",
                     "/meta1", "/meta1-", "/meta2");
    else
        check_search(map, "/", "/.nczarr", "/B", "/data1", "/deep", "/meta1",
                     "/meta1-", "/meta2");
    check_search(map, "meta2/", "meta2/.nczvar");
    CHECK_OK(nczmap_close(map, 1));

    /* An empty dataset. */
    map = make("search-empty", path, sizeof path);
    if (!map) return;
    check_search_none(map, "/");
    check_search_none(map, NULL);
    CHECK_OK(nczmap_close(map, 1));
}

/* ------------------------------------------------------ prefix/leaf rules */

static void test_prefix_leaf(void) {
    char path[4096];
    NCZMAP *map = make("prefixleaf", path, sizeof path);
    if (!map) return;
    put(map, "/p/q", "leaf");
    /* A proper prefix of an object. */
    CHECK_CODE(nczmap_defineobj(map, "/p"), NC_EINVAL);
    CHECK_CODE(nczmap_defineobj(map, "p/"), NC_EINVAL);
    CHECK_CODE(nczmap_write(map, "/p", 0, 2, "xx"), NC_EINVAL);
    CHECK_CODE(nczmap_defineobj(map, "/"), NC_EINVAL);
    /* Below an object. */
    CHECK_CODE(nczmap_defineobj(map, "/p/q/r"), NC_EINVAL);
    CHECK_CODE(nczmap_write(map, "/p/q/r", 0, 2, "xx"), NC_EINVAL);
    CHECK_CODE(nczmap_defineobj(map, "/p/q/r/s/t"), NC_EINVAL);
    CHECK_CODE(nczmap_write(map, "/p/q/r/s", 3, 2, "xx"), NC_EINVAL);
    /* Nothing changed. */
    check_text(map, "/p/q", "leaf");
    CHECK_CODE(nczmap_exists(map, "/p"), NC_EEMPTY);
    CHECK_CODE(nczmap_exists(map, "/p/q/r"), NC_EEMPTY);
    check_search(map, "/", "/p");
    check_search(map, "/p", "/p/q");
    check_search_none(map, "/p/q");
    /* A deeper chain: every ancestor counts. */
    put(map, "/a/b/c/d", "x");
    CHECK_CODE(nczmap_defineobj(map, "/a/b"), NC_EINVAL);
    CHECK_CODE(nczmap_write(map, "/a/b/c", 0, 1, "y"), NC_EINVAL);
    CHECK_CODE(nczmap_defineobj(map, "/a/b/c/d/e"), NC_EINVAL);
    CHECK_OK(nczmap_defineobj(map, "/a/b/c/e")); /* a sibling is fine */
    CHECK_OK(nczmap_defineobj(map, "/a/bb"));    /* so is a longer name */
    check_search(map, "/a", "/a/b", "/a/bb");
    check_search(map, "/a/b/c", "/a/b/c/d", "/a/b/c/e");
    /* Once the objects below are gone the key is free again. */
    CHECK_OK(nczmap_remove(map, "/p/q"));
    check_search(map, "/", "/a");
    CHECK_OK(nczmap_defineobj(map, "/p"));
    CHECK_OK(nczmap_exists(map, "/p"));
    check_search(map, "/", "/a", "/p");
    CHECK_OK(nczmap_close(map, 0));
    check_tree(path, "a/\na/b/\na/b/c/\na/b/c/d 1\na/b/c/e 0\na/bb 0\np 0\n");
    map = reopen(path, 0);
    check_search(map, "/", "/a", "/p");
    check_search_none(map, "/p");
    check_content(map, "/p", "", 0);
    zt_mark_for_delete(impl, path);
    CHECK_OK(nczmap_close(map, 1));
}

/* ---------------------------------------------------------- read-only maps */

static void test_readonly(void) {
    char path[4096];
    NCZMAP *map = make("readonly", path, sizeof path);
    if (!map) return;
    put(map, "/ro/a", "alpha");
    put(map, "/ro/b", "beta");
    CHECK_OK(nczmap_close(map, 0));
    char *disk_before = strcmp(backend, "file") == 0 ? tree(path, 1) : NULL;

    for (int variant = 0; variant < 2; variant++) {
        map = NULL;
        if (variant == 0) /* no NC_WRITE */
            CHECK_OK(nczmap_open(impl, path, NC_NOWRITE, 0, NULL, &map));
        else /* NC_WRITE but byte-range flag: forced read-only */
            CHECK_OK(nczmap_open(impl, path, NC_WRITE, NCZM_FLAG_BYTERANGE,
                                 NULL, &map));
        if (!map) continue;
        CHECK((map->mode & NC_WRITE) == 0);
        CHECK_CODE(nczmap_defineobj(map, "/ro/a"), NC_EPERM);
        CHECK_CODE(nczmap_defineobj(map, "/ro/new"), NC_EPERM);
        CHECK_CODE(nczmap_defineobj(map, "/fresh/new"), NC_EPERM);
        CHECK_CODE(nczmap_write(map, "/ro/a", 0, 3, "XYZ"), NC_EPERM);
        CHECK_CODE(nczmap_write(map, "/ro/a", 5, 3, "XYZ"), NC_EPERM);
        CHECK_CODE(nczmap_write(map, "/ro/new", 0, 3, "XYZ"), NC_EPERM);
        CHECK_CODE(nczmap_write(map, "/fresh/x", 0, 3, "XYZ"), NC_EPERM);
        CHECK_CODE(nczmap_remove(map, "/ro/b"), NC_EPERM);
        CHECK_CODE(nczmap_truncate(map, "/ro/a", 1), NC_EPERM);
        CHECK_CODE(nczmap_truncate(map, "/ro/a", 100), NC_EPERM);
        CHECK_OK(nczmap_flush(map));
        /* Nothing changed. */
        check_text(map, "/ro/a", "alpha");
        check_text(map, "/ro/b", "beta");
        CHECK_CODE(nczmap_exists(map, "/ro/new"), NC_EEMPTY);
        CHECK_CODE(nczmap_exists(map, "/fresh/new"), NC_EEMPTY);
        check_search(map, "/", "/ro");
        check_search(map, "/ro", "/ro/a", "/ro/b");
        CHECK_OK(nczmap_close(map, 0));
    }
    if (disk_before) {
        /* Not even a lock file came and went: every mtime is the same. */
        char *disk_after = tree(path, 1);
        if (strcmp(disk_before, disk_after) == 0) {
            zt_passed++;
        } else {
            zt_failed++;
            fprintf(stderr, "read-only maps changed the disk\n--- before:\n%s"
                    "--- after:\n%s", disk_before, disk_after);
        }
        free(disk_after);
        free(disk_before);
    }
    check_tree(path, "ro/\nro/a 5\nro/b 4\n");
    /* And nothing changed in the stored dataset either. */
    map = reopen(path, NC_WRITE);
    CHECK((map->mode & NC_WRITE) != 0);
    check_text(map, "/ro/a", "alpha");
    check_text(map, "/ro/b", "beta");
    check_search(map, "/", "/ro");
    check_search(map, "/ro", "/ro/a", "/ro/b");
    /* NC_WRITE makes it writable. */
    CHECK_OK(nczmap_write(map, "/ro/a", 5, 1, "!"));
    check_text(map, "/ro/a", "alpha!");
    zt_mark_for_delete(impl, path);
    CHECK_OK(nczmap_close(map, 1));
}

/* ------------------------------------------------- create / open / delete */

static void test_lifecycle(void) {
    char path[4096];
    NCZMAP *map = make("life", path, sizeof path);
    if (!map) return;
    put(map, "/.nczarr", "{}");
    put(map, "/x/y", "content");
    CHECK_OK(nczmap_close(map, 0));

    /* NC_NOCLOBBER keeps content. */
    map = NULL;
    CHECK_OK(nczmap_create(impl, path, NC_NOCLOBBER, 0, NULL, &map));
    if (map) {
        CHECK((map->mode & NC_WRITE) != 0);
        check_text(map, "/x/y", "content");
        check_text(map, "/.nczarr", "{}");
        put(map, "/x/z", "more");
        CHECK_OK(nczmap_close(map, 0));
    }
    map = reopen(path, 0);
    check_text(map, "/x/y", "content");
    check_text(map, "/x/z", "more");
    CHECK_OK(nczmap_close(map, 0));

    /* Default mode empties an existing dataset. */
    map = NULL;
    CHECK_OK(nczmap_create(impl, path, 0, 0, NULL, &map));
    if (map) {
        CHECK_CODE(nczmap_exists(map, "/x/y"), NC_EEMPTY);
        CHECK_CODE(nczmap_exists(map, "/.nczarr"), NC_EEMPTY);
        check_search_none(map, "/");
        put(map, "/.nczarr", "new");
        CHECK_OK(nczmap_close(map, 0));
    }
    check_tree(path, ".nczarr 3\n");
    map = reopen(path, 0);
    check_search(map, "/", "/.nczarr");
    check_text(map, "/.nczarr", "new");
    CHECK_OK(nczmap_close(map, 0));

    /* Byte-range flag: create is refused and nothing is touched. */
    map = (NCZMAP *)&map; /* any non-NULL value */
    CHECK_CODE(nczmap_create(impl, path, 0, NCZM_FLAG_BYTERANGE, NULL, &map),
               NC_EPERM);
    CHECK(map == NULL);
    map = (NCZMAP *)&map;
    CHECK_CODE(nczmap_create(impl, path, NC_WRITE | NC_NOCLOBBER,
                             NCZM_FLAG_BYTERANGE | 1, NULL, &map),
               NC_EPERM);
    CHECK(map == NULL);
    map = reopen(path, 0);
    check_text(map, "/.nczarr", "new");
    /* close(map, 1) deletes the dataset (also from a read-only map). */
    CHECK_OK(nczmap_close(map, 1));
    map = (NCZMAP *)&map;
    CHECK_CODE(nczmap_open(impl, path, 0, 0, NULL, &map), NC_EEMPTY);
    CHECK(map == NULL);
    map = (NCZMAP *)&map;
    CHECK_CODE(nczmap_open(impl, path, NC_WRITE, 0, NULL, &map), NC_EEMPTY);
    CHECK(map == NULL);

    /* A dataset that never existed. */
    char missing[4096];
    zt_dataset(backend, "never-created", missing, sizeof missing);
    map = (NCZMAP *)&map;
    CHECK_CODE(nczmap_open(impl, missing, 0, 0, NULL, &map), NC_EEMPTY);
    CHECK(map == NULL);

    /* Create makes a missing root and its missing parents. */
    if (strcmp(backend, "file") == 0) {
        char deep[4200];
        snprintf(deep, sizeof deep, "%s/p1/p2/p3/deep.nzf", zt_tmpdir());
        map = NULL;
        CHECK_OK(nczmap_create(impl, deep, 0, 0, NULL, &map));
        if (map) {
            put(map, "/.nczarr", "{}");
            CHECK_OK(nczmap_close(map, 0));
        }
        map = reopen(deep, 0);
        check_text(map, "/.nczarr", "{}");
        CHECK_OK(nczmap_close(map, 1));
    }

    /* Create, close(1) straight away, recreate: a clean slate each time. */
    for (int round = 0; round < 3; round++) {
        map = NULL;
        CHECK_OK(nczmap_create(impl, path, 0, 0, NULL, &map));
        if (!map) break;
        check_search_none(map, "/");
        put(map, "/r", round == 0 ? "zero" : round == 1 ? "one" : "two");
        CHECK_OK(nczmap_close(map, 1));
        map = (NCZMAP *)&map;
        CHECK_CODE(nczmap_open(impl, path, 0, 0, NULL, &map), NC_EEMPTY);
        CHECK(map == NULL);
    }
}

/* ---------------------------------------------------- flush/remove/truncate */

static void test_additions(void) {
    char path[4096];
    NCZMAP *map = make("additions", path, sizeof path);
    if (!map) return;
    put(map, "/t/obj", "0123456789");
    put(map, "/t/other", "other");
    CHECK_OK(nczmap_flush(map));
    CHECK_OK(nczmap_flush(map));

    /* remove */
    CHECK_OK(nczmap_remove(map, "/t/other"));
    CHECK_CODE(nczmap_exists(map, "/t/other"), NC_EEMPTY);
    CHECK_CODE(nczmap_remove(map, "/t/other"), NC_EEMPTY);
    CHECK_CODE(nczmap_remove(map, "/t/missing"), NC_EEMPTY);
    CHECK_CODE(nczmap_remove(map, "/t"), NC_EEMPTY); /* intermediate */
    CHECK_CODE(nczmap_remove(map, "/"), NC_EEMPTY);
    CHECK_CODE(nczmap_remove(map, "/t/obj/below"), NC_EEMPTY);
    check_search(map, "/t", "/t/obj");
    check_text(map, "/t/obj", "0123456789");
    /* A removed key can be written again, starting from nothing. */
    CHECK_OK(nczmap_write(map, "/t/other", 2, 1, "x"));
    check_content(map, "/t/other", "\0\0x", 3);

    /* truncate: shrink, same length, zero-extend, to 0 */
    CHECK_OK(nczmap_truncate(map, "/t/obj", 4));
    check_text(map, "/t/obj", "0123");
    CHECK_OK(nczmap_truncate(map, "/t/obj", 4));
    check_text(map, "/t/obj", "0123");
    CHECK_OK(nczmap_truncate(map, "/t/obj", 8));
    check_content(map, "/t/obj", "0123\0\0\0\0", 8);
    /* Shrinking really drops the tail: growing again gives zeros. */
    CHECK_OK(nczmap_write(map, "/t/obj", 8, 2, "89"));
    CHECK_OK(nczmap_truncate(map, "/t/obj", 2));
    CHECK_OK(nczmap_truncate(map, "/t/obj", 10));
    check_content(map, "/t/obj", "01\0\0\0\0\0\0\0\0", 10);
    CHECK_OK(nczmap_truncate(map, "/t/obj", 0));
    check_content(map, "/t/obj", "", 0);
    CHECK_OK(nczmap_exists(map, "/t/obj"));
    CHECK_CODE(nczmap_truncate(map, "/t/missing", 3), NC_EEMPTY);
    CHECK_CODE(nczmap_exists(map, "/t/missing"), NC_EEMPTY);
    CHECK_CODE(nczmap_truncate(map, "/t", 3), NC_EEMPTY);
    CHECK_CODE(nczmap_truncate(map, "/", 3), NC_EEMPTY);
    CHECK_OK(nczmap_truncate(map, "/t/obj", 6));
    CHECK_OK(nczmap_write(map, "/t/obj", 0, 3, "abc"));
    CHECK_OK(nczmap_flush(map));
    CHECK_OK(nczmap_close(map, 0));
    check_tree(path, "t/\nt/obj 6\nt/other 3\n");
    map = reopen(path, 0);
    check_content(map, "/t/obj", "abc\0\0\0", 6);
    check_content(map, "/t/other", "\0\0x", 3);
    CHECK_OK(nczmap_flush(map)); /* read-only: a no-op */
    zt_mark_for_delete(impl, path);
    CHECK_OK(nczmap_close(map, 1));
}

/* --------------------------------------------------- the function table */

static void test_api_table(void) {
    char path[4096];
    NCZMAP *map = make("apitable", path, sizeof path);
    if (!map) return;
    CHECK(map->api != NULL);
    if (!map->api) return;
    const NCZMAP_API *api = map->api;
    CHECK(api->version == 1);
    CHECK(api->close && api->exists && api->len && api->defineobj &&
          api->read && api->write && api->search);
    if (!(api->close && api->exists && api->len && api->defineobj &&
          api->read && api->write && api->search))
        return;
    CHECK((int)map->format == (int)impl);
    CHECK(map->url != NULL && map->url[0] != '\0');
    if (map->url) CHECK(strstr(map->url, "apitable") != NULL);
    CHECK((map->mode & NC_WRITE) != 0);
    CHECK(map->flags == 0);

    CHECK_OK(api->defineobj(map, "/api/def"));
    CHECK_OK(api->write(map, "/api/obj", 0, 5, "hello"));
    CHECK_OK(api->write(map, "/api/obj", 7, 2, "!!"));
    CHECK_CODE(api->write(map, "/api/obj", 0, 1, NULL), NC_EINVAL);
    CHECK_CODE(api->write(map, "/api/obj/x", 0, 1, "x"), NC_EINVAL);
    CHECK_CODE(api->defineobj(map, "/api"), NC_EINVAL);
    CHECK_CODE(api->defineobj(map, "/../x"), NC_EINVAL);
    CHECK_OK(api->exists(map, "/api/obj"));
    CHECK_CODE(api->exists(map, "/api"), NC_EEMPTY);
    CHECK_CODE(api->exists(map, "/api/none"), NC_EEMPTY);
    size64_t n = 77;
    CHECK_OK(api->len(map, "/api/obj", &n));
    CHECK(n == 9);
    CHECK_OK(api->len(map, "/api/obj", NULL));
    n = 77;
    CHECK_CODE(api->len(map, "/api/none", &n), NC_EEMPTY);
    CHECK(n == 0);
    unsigned char buf[16];
    memset(buf, 0xab, sizeof buf);
    CHECK_OK(api->read(map, "/api/obj", 0, 9, buf));
    CHECK(memcmp(buf, "hello\0\0!!", 9) == 0);
    CHECK(all_byte(buf + 9, sizeof buf - 9, 0xab));
    memset(buf, 0xab, sizeof buf);
    CHECK_CODE(api->read(map, "/api/obj", 5, 5, buf), NC_EEDGE);
    CHECK(all_byte(buf, sizeof buf, 0xab));
    CHECK_CODE(api->read(map, "/api/none", 0, 1, buf), NC_EEMPTY);
    CHECK_OK(api->read(map, "/api/obj", 9, 0, buf));
    CHECK_CODE(api->read(map, "/api/obj", UINT64_MAX, 2, buf), NC_EINVAL);
    {
        NClist *l = nclistnew();
        CHECK_OK(api->search(map, "/api", l));
        CHECK(nclistlength(l) == 2);
        if (nclistlength(l) == 2) {
            CHECK(strcmp(nclistget(l, 0), "/api/def") == 0);
            CHECK(strcmp(nclistget(l, 1), "/api/obj") == 0);
        }
        CHECK_OK(api->search(map, "api/", l));
        CHECK(nclistlength(l) == 4);
        if (nclistlength(l) == 4)
            CHECK(strcmp(nclistget(l, 2), "api/def") == 0);
        CHECK_OK(api->search(map, "/api/obj", l));
        CHECK(nclistlength(l) == 4);
        nclistfreeall(l);
    }
    /* What the table wrote, nczmap_* sees, and the other way round. */
    check_content(map, "/api/obj", "hello\0\0!!", 9);
    check_content(map, "/api/def", "", 0);
    CHECK_OK(nczmap_write(map, "/api/direct", 0, 3, "abc"));
    memset(buf, 0, sizeof buf);
    CHECK_OK(api->read(map, "/api/direct", 0, 3, buf));
    CHECK(memcmp(buf, "abc", 3) == 0);
    /* close through the table. */
    CHECK_OK(api->close(map, 0));

    map = reopen(path, 0);
    if (!map) return;
    api = map->api;
    CHECK(map->api == api);
    CHECK((map->mode & NC_WRITE) == 0);
    CHECK((int)map->format == (int)impl);
    CHECK_CODE(api->write(map, "/api/obj", 0, 1, "x"), NC_EPERM);
    CHECK_CODE(api->defineobj(map, "/api/new"), NC_EPERM);
    check_content(map, "/api/obj", "hello\0\0!!", 9);
    zt_mark_for_delete(impl, path);
    CHECK_OK(api->close(map, 1));
    map = (NCZMAP *)&map;
    CHECK_CODE(nczmap_open(impl, path, 0, 0, NULL, &map), NC_EEMPTY);
    CHECK(map == NULL);

    /* flags are kept as given. */
    map = NULL;
    CHECK_OK(nczmap_create(impl, path, 0, 1 | 2 | 4, NULL, &map));
    if (map) {
        CHECK(map->flags == 7);
        CHECK((int)map->format == (int)impl);
        CHECK_OK(nczmap_close(map, 1));
    }
}

/* ------------------------------------------------ strerror and version */

static void test_strerror_version(void) {
    static const struct {
        int code;
        const char *text; /* NULL: any non-empty message */
    } codes[] = {
        {NC_NOERR, NULL},
        {NC_EBADID, NULL},
        {NC_EEXIST, "NetCDF: File exists && NC_NOCLOBBER"},
        {NC_EINVAL, "NetCDF: Invalid argument"},
        {NC_EPERM, "NetCDF: Write to read only"},
        {NC_ENOTNC, NULL},
        {NC_EEDGE, NULL},
        {NC_ENOMEM, NULL},
        {NC_EIO, NULL},
        {NC_EURL, "NetCDF: Malformed URL"},
        {NC_EACCESS, "NetCDF: Access failure"},
        {NC_EAUTH, "NetCDF: Authorization failure"},
        {NC_ENOTFOUND, "NetCDF: file not found"},
        {NC_EINTERNAL, NULL},
        {NC_ENOTBUILT, "NetCDF: Attempt to use feature that was not turned "
                       "on when netCDF was built."},
        {NC_ENCZARR, NULL},
        {NC_ES3, "NetCDF: AWS S3 error"},
        {NC_EEMPTY, "NetCDF: Attempt to read empty NCZarr map key"},
    };
    size_t n = sizeof codes / sizeof codes[0];
    for (size_t i = 0; i < n; i++) {
        const char *msg = nczmap_strerror(codes[i].code);
        CHECK(msg != NULL && msg[0] != '\0');
        if (!msg) continue;
        if (codes[i].text && strcmp(msg, codes[i].text) != 0) {
            zt_failed++;
            fprintf(stderr, "strerror(%d) = \"%s\", expected \"%s\"\n",
                    codes[i].code, msg, codes[i].text);
        } else {
            zt_passed++;
        }
        /* Static: same pointer every time. */
        CHECK(nczmap_strerror(codes[i].code) == msg);
        /* Distinct codes, distinct messages. */
        for (size_t j = 0; j < i; j++) {
            const char *other = nczmap_strerror(codes[j].code);
            if (other && strcmp(other, msg) == 0) {
                zt_failed++;
                fprintf(stderr, "strerror(%d) == strerror(%d)\n",
                        codes[i].code, codes[j].code);
            }
        }
    }
    /* Codes it does not know: still a message. */
    const int unknown[] = {1, 2, 17, 21, -1, -1000, 12345, -2147483647 - 1};
    for (size_t i = 0; i < sizeof unknown / sizeof unknown[0]; i++) {
        const char *msg = nczmap_strerror(unknown[i]);
        CHECK(msg != NULL && msg[0] != '\0');
    }
    const char *v = nczmap_version();
    CHECK(v != NULL && v[0] != '\0');
    if (v) CHECK(strchr(v, '.') != NULL);
    CHECK(nczmap_version() == v);
}

/* ------------------------------------- zero-length, odd keys, big objects */

static void test_zero_length(void) {
    char path[4096];
    NCZMAP *map = make("zerolen", path, sizeof path);
    if (!map) return;
    CHECK_OK(nczmap_defineobj(map, "/.nczarr"));
    CHECK_OK(nczmap_defineobj(map, "/z/empty"));
    unsigned char buf[4] = {7, 7, 7, 7};
    CHECK_OK(nczmap_exists(map, "/z/empty"));
    size64_t n = 9;
    CHECK_OK(nczmap_len(map, "/z/empty", &n));
    CHECK(n == 0);
    CHECK_OK(nczmap_read(map, "/z/empty", 0, 0, buf));
    CHECK_CODE(nczmap_read(map, "/z/empty", 0, 1, buf), NC_EEDGE);
    CHECK(all_byte(buf, 4, 7));
    check_search(map, "/", "/.nczarr", "/z");
    check_search(map, "/z", "/z/empty");
    /* Truncate to 0 keeps an empty object. */
    put(map, "/z/cut", "abc");
    CHECK_OK(nczmap_truncate(map, "/z/cut", 0));
    CHECK_OK(nczmap_close(map, 0));
    map = reopen(path, 0);
    check_content(map, "/.nczarr", "", 0);
    check_content(map, "/z/empty", "", 0);
    check_content(map, "/z/cut", "", 0);
    check_search(map, "/z", "/z/cut", "/z/empty");
    CHECK_OK(nczmap_close(map, 1));
}

static void test_odd_keys(void) {
    char path[4096];
    NCZMAP *map = make("oddkeys", path, sizeof path);
    if (!map) return;
    /* Dots that are not '.' or '..' segments. */
    const char *dotted[] = {"/a.b/.c/..d/e..f", "/a.b/...", "/a.b/.x.y."};
    put(map, dotted[0], "one");
    put(map, dotted[1], "two");
    put(map, dotted[2], "three");
    check_text(map, "/a.b/.c/..d/e..f", "one");
    check_text(map, "a.b/...", "two");
    check_text(map, "/a.b/.x.y.", "three");
    check_search(map, "/", "/a.b");
    check_search(map, "/a.b", "/a.b/...", "/a.b/.c", "/a.b/.x.y.");
    check_search(map, "/a.b/.c", "/a.b/.c/..d");
    check_search(map, "/a.b/.c/..d", "/a.b/.c/..d/e..f");
    /* Spaces, punctuation, UTF-8. */
    put(map, "/sp ace/x-y_z=1,2;3:4@5+6~7%20", "punct");
    put(map, "/donn\xc3\xa9" "es/\xd0\xba\xd0\xbb\xd1\x8e\xd1\x87", "utf8");
    check_text(map, "/sp ace/x-y_z=1,2;3:4@5+6~7%20", "punct");
    check_text(map, "/donn\xc3\xa9" "es/\xd0\xba\xd0\xbb\xd1\x8e\xd1\x87",
               "utf8");
    check_search(map, "/donn\xc3\xa9" "es",
                 "/donn\xc3\xa9" "es/\xd0\xba\xd0\xbb\xd1\x8e\xd1\x87");
    /* Deep nesting: 60 levels. */
    char key[1024] = "";
    for (int i = 0; i < 60; i++) {
        char seg[16];
        snprintf(seg, sizeof seg, "/l%02d", i);
        strcat(key, seg);
    }
    put(map, key, "deep");
    check_text(map, key, "deep");
    {
        /* Every level lists exactly the next one. */
        char prefix[1024] = "";
        int ok = 1;
        for (int i = 0; i < 60 && ok; i++) {
            char seg[16], want[1100];
            snprintf(seg, sizeof seg, "/l%02d", i);
            snprintf(want, sizeof want, "%s%s", prefix, seg);
            NClist *l = nclistnew();
            int rc = nczmap_search(map, i ? prefix : "/", l);
            ok = rc == NC_NOERR &&
                 nclistlength(l) == (i == 0 ? 4u : 1u) &&
                 nclistmatch(l, want, 1);
            if (!ok)
                fprintf(stderr, "deep search at level %d: rc %d, %zu items\n",
                        i, rc, (size_t)nclistlength(l));
            nclistfreeall(l);
            strcat(prefix, seg);
        }
        CHECK(ok);
    }
    /* Limits that must still be accepted: a 255-byte segment, a 1024-byte
     * key. */
    char seg255[300];
    memset(seg255, 's', 255);
    seg255[255] = '\0';
    char k255[400];
    snprintf(k255, sizeof k255, "/long/%s", seg255);
    put(map, k255, "255");
    check_text(map, k255, "255");
    char k1024[1100];
    /* "/" + 3 * (255 + "/") + 251 = 1024 */
    memset(seg255, 'k', 255);
    snprintf(k1024, sizeof k1024, "/%s/%s/%s/", seg255, seg255, seg255);
    size_t have = strlen(k1024);
    memset(k1024 + have, 'm', 1024 - have);
    k1024[1024] = '\0';
    CHECK(strlen(k1024) == 1024);
    if (strcmp(backend, "s3") == 0) { /* S3: root + key <= 1024 bytes */
        CHECK_CODE(nczmap_write(map, k1024, 0, 4, "1024"), NC_EINVAL);
        k1024[1024 - 100] = '\0'; /* fits below this test's dataset root */
    }
    put(map, k1024, "1024");
    check_text(map, k1024, "1024");
    CHECK_OK(nczmap_close(map, 0));
    map = reopen(path, 0);
    check_text(map, key, "deep");
    check_text(map, k255, "255");
    check_text(map, k1024, "1024");
    check_text(map, "/a.b/.c/..d/e..f", "one");
    check_text(map, "/donn\xc3\xa9" "es/\xd0\xba\xd0\xbb\xd1\x8e\xd1\x87",
               "utf8");
    zt_mark_for_delete(impl, path);
    CHECK_OK(nczmap_close(map, 1));
}

static void test_big_object(void) {
    char path[4096];
    NCZMAP *map = make("big", path, sizeof path);
    if (!map) return;
    const size_t MiB = 1024 * 1024, total = 5 * MiB;
    unsigned char *data = malloc(total), *back = malloc(total);
    if (!data || !back) {
        CHECK(!"out of memory");
        free(data);
        free(back);
        return;
    }
    uint32_t x = 2463534242u; /* xorshift: no period at 1 MiB boundaries */
    for (size_t i = 0; i < total; i++) {
        x ^= x << 13;
        x ^= x >> 17;
        x ^= x << 5;
        data[i] = (unsigned char)x;
    }
    for (size_t piece = 0; piece < 5; piece++)
        CHECK_OK(nczmap_write(map, "/big/chunk", piece * MiB, MiB,
                              data + piece * MiB));
    size64_t n = 0;
    CHECK_OK(nczmap_len(map, "/big/chunk", &n));
    CHECK(n == total);
    memset(back, 0, total);
    CHECK_OK(nczmap_read(map, "/big/chunk", 0, total, back));
    CHECK(memcmp(back, data, total) == 0);
    CHECK_OK(nczmap_close(map, 0));
    check_tree(path, "big/\nbig/chunk 5242880\n");

    map = reopen(path, 0);
    /* Reads across piece boundaries. */
    memset(back, 0, total);
    CHECK_OK(nczmap_read(map, "/big/chunk", MiB - 10, 2 * MiB + 20, back));
    CHECK(memcmp(back, data + MiB - 10, 2 * MiB + 20) == 0);
    CHECK_OK(nczmap_read(map, "/big/chunk", total - 1, 1, back));
    CHECK(back[0] == data[total - 1]);
    CHECK_CODE(nczmap_read(map, "/big/chunk", total - 1, 2, back), NC_EEDGE);
    memset(back, 0, total);
    CHECK_OK(nczmap_read(map, "/big/chunk", 0, total, back));
    CHECK(memcmp(back, data, total) == 0);
    zt_mark_for_delete(impl, path);
    CHECK_OK(nczmap_close(map, 1));
    free(data);
    free(back);
}

int main(int argc, char **argv) {
    if (argc < 2) {
        fprintf(stderr, "usage: %s mem|file|gnz|s3\n", argv[0]);
        return 2;
    }
    backend = argv[1];
    impl = zt_backend(backend);

    test_exists_len();
    test_defineobj();
    test_write();
    test_read();
    test_search();
    test_prefix_leaf();
    test_readonly();
    test_lifecycle();
    test_additions();
    test_api_table();
    test_strerror_version();
    test_zero_length();
    test_odd_keys();
    test_big_object();

    zt_cleanup();
    return zt_finish("conformance");
}
