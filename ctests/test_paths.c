/* The nczm_* path utilities through the C ABI: every example of
 * zmap-api.md Part B §3.2, NULL handling, and malloc ownership (every result
 * is released here with free() or nclistfreeall, so valgrind sees any
 * result that was not malloc()ed or that leaks). */
#include "harness.h"

/* A pointer no function may write: outputs that must stay untouched start
 * as this. */
static char untouched_storage;
#define UNTOUCHED (&untouched_storage)

/* Checks that `got` is the string `want`, then frees it. */
static void check_string(char *got, const char *want, int line) {
    if (got != NULL && got != UNTOUCHED && strcmp(got, want) == 0) {
        zt_passed++;
    } else {
        zt_failed++;
        fprintf(stderr, "%s:%d: got \"%s\", expected \"%s\"\n", __FILE__, line,
                got == NULL ? "(NULL)" : got == UNTOUCHED ? "(untouched)" : got,
                want);
    }
    if (got != UNTOUCHED) free(got);
}
#define CHECK_STRING(got, want) check_string((got), (want), __LINE__)

/* Checks that `list` holds exactly the `n` strings of `want`. */
static void check_list(NClist *list, const char *const *want, size_t n,
                       int line) {
    int ok = nclistlength(list) == n;
    for (size_t i = 0; ok && i < n; i++) {
        const char *got = (const char *)nclistget(list, i);
        ok = got != NULL && strcmp(got, want[i]) == 0;
    }
    if (ok) {
        zt_passed++;
    } else {
        zt_failed++;
        fprintf(stderr, "%s:%d: list of %zu [", __FILE__, line,
                nclistlength(list));
        for (size_t i = 0; i < nclistlength(list); i++)
            fprintf(stderr, "%s\"%s\"", i ? ", " : "",
                    (const char *)nclistget(list, i));
        fprintf(stderr, "], expected %zu\n", n);
    }
}

/* nczm_split_delim(path, delim) must return `code` having produced the `n`
 * pieces of `want`. */
static void check_split(const char *path, char delim, int code,
                        const char *const *want, size_t n, int line) {
    NClist *list = nclistnew();
    int got = nczm_split_delim(path, delim, list);
    if (got == code) {
        zt_passed++;
    } else {
        zt_failed++;
        fprintf(stderr, "%s:%d: split \"%s\" returned %d, expected %d\n",
                __FILE__, line, path, got, code);
    }
    check_list(list, want, n, line);
    nclistfreeall(list);
}
#define N(a) (sizeof(a) / sizeof((a)[0]))
#define SPLIT(path, code, ...)                                             \
    do {                                                                   \
        static const char *const want_[] = {__VA_ARGS__ "" /* pad */};     \
        check_split((path), '/', (code), want_, N(want_) - 1, __LINE__);   \
    } while (0)
#define SPLIT_DELIM(path, delim, code, ...)                                \
    do {                                                                   \
        static const char *const want_[] = {__VA_ARGS__ ""};               \
        check_split((path), (delim), (code), want_, N(want_) - 1, __LINE__); \
    } while (0)

static void test_split(void) {
    /* The examples of §3.2. */
    SPLIT("/a/b", NC_NOERR, "a", "b", );
    SPLIT("a/b/", NC_NOERR, "a", "b", );
    SPLIT("/", NC_NOERR, );
    SPLIT("//a", NC_EURL, );
    SPLIT("/a//b", NC_EURL, "a", );
    SPLIT(".", NC_NOERR, ".", );
    SPLIT("..", NC_NOERR, "..", );
    SPLIT("/./..", NC_NOERR, ".", "..", );
    /* More. */
    SPLIT("a", NC_NOERR, "a", );
    SPLIT("/a/", NC_NOERR, "a", );
    SPLIT("/a//", NC_EURL, "a", );
    SPLIT("//", NC_EURL, );
    SPLIT("/meta1/.zarray", NC_NOERR, "meta1", ".zarray", );
    SPLIT("/\xff/\x80x", NC_NOERR, "\xff", "\x80x", );
    /* zmapio splits the URL fragment at ','. */
    SPLIT_DELIM("mode=nczarr,nzf", ',', NC_NOERR, "mode=nczarr", "nzf", );
    SPLIT_DELIM(",a,b,", ',', NC_NOERR, "a", "b", );
    SPLIT_DELIM("/a,b", ',', NC_NOERR, "/a", "b", );
    SPLIT_DELIM("a,,b", ',', NC_EURL, "a", );

    /* NULL and "" paths, NULL list: NC_EINVAL, nothing appended. */
    NClist *list = nclistnew();
    CHECK_CODE(nczm_split(NULL, list), NC_EINVAL);
    CHECK_CODE(nczm_split("", list), NC_EINVAL);
    CHECK_CODE(nczm_split_delim(NULL, ',', list), NC_EINVAL);
    CHECK_CODE(nczm_split_delim("", ',', list), NC_EINVAL);
    CHECK(nclistlength(list) == 0);
    CHECK_CODE(nczm_split("/a", NULL), NC_EINVAL);
    CHECK_CODE(nczm_split_delim("/a", '/', NULL), NC_EINVAL);

    /* The list is appended to, not cleared. */
    char *first = malloc(2);
    CHECK(first != NULL);
    if (first == NULL) return;
    strcpy(first, "x");
    CHECK(nclistpush(list, first));
    CHECK_OK(nczm_split("/a/b", list));
    CHECK_CODE(nczm_split("/c//d", list), NC_EURL);
    static const char *const appended[] = {"x", "a", "b", "c"};
    check_list(list, appended, N(appended), __LINE__);
    CHECK(nclistget(list, 0) == first);
    nclistfreeall(list);

    /* More pieces than one list allocation step. */
    list = nclistnew();
    CHECK_OK(nczm_split("/0/1/2/3/4/5/6/7/8/9/a/b/c/d/e/f/g/h/i/j", list));
    CHECK(nclistlength(list) == 20);
    CHECK(nclistget(list, 19) != NULL &&
          strcmp((const char *)nclistget(list, 19), "j") == 0);
    nclistfreeall(list);
}

/* Builds a list of copies of the `n` strings (NULL stays NULL). */
static NClist *make_list(const char *const *strings, size_t n) {
    NClist *list = nclistnew();
    for (size_t i = 0; i < n; i++) {
        char *copy = NULL;
        if (strings[i] != NULL) {
            copy = malloc(strlen(strings[i]) + 1);
            if (copy != NULL) strcpy(copy, strings[i]);
        }
        nclistpush(list, copy);
    }
    return list;
}

typedef int (*join_fn)(NClist *, char **);

/* join(strings) must give `want`. */
static void check_join(join_fn join, const char *const *strings, size_t n,
                       const char *want, int line) {
    NClist *list = make_list(strings, n);
    char *path = UNTOUCHED;
    int code = join(list, &path);
    if (code != NC_NOERR) {
        zt_failed++;
        fprintf(stderr, "%s:%d: join returned %d\n", __FILE__, line, code);
    }
    check_string(path, want, line);
    nclistfreeall(list);
}
#define JOIN(fn, want, ...)                                                 \
    do {                                                                    \
        static const char *const in_[] = {__VA_ARGS__ ""};                  \
        check_join((fn), in_, N(in_) - 1, (want), __LINE__);               \
    } while (0)

static void check_join_errors(join_fn join) {
    char *path = UNTOUCHED;
    CHECK_CODE(join(NULL, &path), NC_EINVAL);
    CHECK(path == UNTOUCHED);
    static const char *const with_null[] = {"a", NULL, "b"};
    NClist *list = make_list(with_null, N(with_null));
    CHECK_CODE(join(list, &path), NC_EINVAL);
    CHECK(path == UNTOUCHED);
    nclistfreeall(list);
    /* pathp NULL: success, the result is not kept (valgrind: no leak). */
    static const char *const ab[] = {"a", "b"};
    list = make_list(ab, N(ab));
    CHECK_OK(join(list, NULL));
    nclistfreeall(list);
}

static void test_join(void) {
    JOIN(nczm_join, "/", );
    JOIN(nczm_join, "/a/b", "a", "b", );
    JOIN(nczm_join, "/a/b", "/a", "b", );
    JOIN(nczm_join, "/a/b", "a", "/b", );
    JOIN(nczm_join, "/a", "a", );
    JOIN(nczm_join, "/a/", "a", "", );
    JOIN(nczm_join, "/C:/a", "C:", "a", );
    JOIN(nczm_join, "/meta1/.zarray", "meta1", ".zarray", );
    check_join_errors(nczm_join);

    /* split then join gives the path back. */
    NClist *list = nclistnew();
    char *path = NULL;
    CHECK_OK(nczm_split("/data1/0/x", list));
    CHECK_OK(nczm_join(list, &path));
    CHECK_STRING(path, "/data1/0/x");
    nclistfreeall(list);
}

static void test_joinpath(void) {
    /* A first segment that is exactly a drive is not preceded by '/'. */
    JOIN(nczm_joinpath, "C:/a", "C:", "a", );
    JOIN(nczm_joinpath, "z:/a/b", "z:", "a", "b", );
    JOIN(nczm_joinpath, "C:/a", "C:", "/a", );
    JOIN(nczm_joinpath, "C:/", "C:", );
    /* Otherwise as nczm_join. */
    JOIN(nczm_joinpath, "/", );
    JOIN(nczm_joinpath, "/a/b", "a", "b", );
    JOIN(nczm_joinpath, "/a/b", "/a", "b", );
    JOIN(nczm_joinpath, "/a/C:", "a", "C:", );
    JOIN(nczm_joinpath, "/C:x/a", "C:x", "a", );
    JOIN(nczm_joinpath, "/1:/a", "1:", "a", );
    check_join_errors(nczm_joinpath);

    NClist *list = nclistnew();
    char *path = NULL;
    CHECK_OK(nczm_split("C:/data/x.nzf", list));
    CHECK_OK(nczm_joinpath(list, &path));
    CHECK_STRING(path, "C:/data/x.nzf");
    nclistfreeall(list);
}

static void check_concat(const char *prefix, const char *suffix,
                         const char *want, int line) {
    char *path = UNTOUCHED;
    int code = nczm_concat(prefix, suffix, &path);
    if (code != NC_NOERR) {
        zt_failed++;
        fprintf(stderr, "%s:%d: concat returned %d\n", __FILE__, line, code);
    }
    check_string(path, want, line);
}
#define CONCAT(p, s, want) check_concat((p), (s), (want), __LINE__)

static void test_concat(void) {
    /* The examples of §3.2. */
    CONCAT(NULL, "/.nczarr", "/.nczarr");
    CONCAT("/meta1", ".zarray", "/meta1/.zarray");
    CONCAT("/a/", "/b", "/a/b");
    CONCAT("a", "b", "a/b");
    CONCAT("/a//", "b", "/a//b");
    CONCAT("/", NULL, "");
    CONCAT("/a", NULL, "/a");
    /* More. */
    CONCAT("", "/x", "/x");
    CONCAT(NULL, "x", "/x");
    CONCAT(NULL, NULL, "");
    CONCAT("/a", "", "/a");
    CONCAT("/a/", "", "/a");
    CONCAT("/", "b", "/b");
    CONCAT("/a", "//b", "/a//b");
    CHECK_OK(nczm_concat("/a", "b", NULL));
}

static void check_divide(const char *key, int nsegs, const char *prefix,
                         const char *suffix, int line) {
    char *p = UNTOUCHED, *s = UNTOUCHED;
    int code = nczm_divide_at(key, nsegs, &p, &s);
    if (code != NC_NOERR) {
        zt_failed++;
        fprintf(stderr, "%s:%d: divide_at(\"%s\", %d) returned %d\n",
                __FILE__, line, key, nsegs, code);
    }
    check_string(p, prefix, line);
    check_string(s, suffix, line);
}
#define DIVIDE(key, n, p, s) check_divide((key), (n), (p), (s), __LINE__)

static void test_divide_at(void) {
    /* The examples of §3.2. */
    DIVIDE("/a/b/c", -1, "/a/b", "/c");
    DIVIDE("/a/b", 1, "/a", "/b");
    DIVIDE("/a", 0, "", "/a");
    DIVIDE("/a", 1, "/a", "");
    DIVIDE("a/b/c", 1, "a", "/b/c");
    /* Segment counts: "/" has 1, "/a/b/" has 3. */
    DIVIDE("/", 1, "/", "");
    DIVIDE("/", -1, "", "/");
    DIVIDE("/a/b/", 3, "/a/b/", "");
    DIVIDE("/a/b/", -1, "/a/b", "/");
    DIVIDE("/a/b/c", 3, "/a/b/c", "");
    DIVIDE("/a/b/c", -3, "", "/a/b/c");
    DIVIDE("/a/b/c", -2, "/a", "/b/c");
    DIVIDE("/meta1/.zarray", -1, "/meta1", "/.zarray");
    DIVIDE("a", -1, "", "a");

    /* Too many segments: NC_EINVAL, outputs untouched. */
    char *p = UNTOUCHED, *s = UNTOUCHED;
    CHECK_CODE(nczm_divide_at("/", 2, &p, &s), NC_EINVAL);
    CHECK_CODE(nczm_divide_at("/a/b/", 4, &p, &s), NC_EINVAL);
    CHECK_CODE(nczm_divide_at("/a/b/c", -4, &p, &s), NC_EINVAL);
    CHECK_CODE(nczm_divide_at("/a/b/c", -2147483647 - 1, &p, &s), NC_EINVAL);
    CHECK(p == UNTOUCHED && s == UNTOUCHED);
    /* NULL or "" key: success, outputs untouched. */
    CHECK_OK(nczm_divide_at(NULL, 1, &p, &s));
    CHECK_OK(nczm_divide_at("", 0, &p, &s));
    CHECK_OK(nczm_divide_at("", 5, &p, &s));
    CHECK(p == UNTOUCHED && s == UNTOUCHED);
    /* Each output only when asked for. */
    CHECK_OK(nczm_divide_at("/a/b", -1, NULL, &s));
    CHECK_STRING(s, "/b");
    CHECK_OK(nczm_divide_at("/a/b", -1, &p, NULL));
    CHECK_STRING(p, "/a");
    CHECK_OK(nczm_divide_at("/a/b", -1, NULL, NULL));
}

static void test_clear(void) {
    NCZMAP map;
    memset(&map, 0, sizeof map);
    map.url = malloc(8);
    CHECK(map.url != NULL);
    if (map.url != NULL) strcpy(map.url, "mem://x");
    map.mode = 5;
    CHECK_OK(nczm_clear(&map));
    CHECK(map.url == NULL); /* freed: valgrind reports a leak otherwise */
    CHECK(map.mode == 5);
    CHECK_OK(nczm_clear(&map));
    CHECK_OK(nczm_clear(NULL));
}

static void test_isabsolutepath(void) {
    CHECK(nczm_isabsolutepath("/") == 1);
    CHECK(nczm_isabsolutepath("/a/b") == 1);
    CHECK(nczm_isabsolutepath("\\a") == 1);
    CHECK(nczm_isabsolutepath("C:") == 1);
    CHECK(nczm_isabsolutepath("c:/x") == 1);
    CHECK(nczm_isabsolutepath("Z:\\x") == 1);
    CHECK(nczm_isabsolutepath(NULL) == 0);
    CHECK(nczm_isabsolutepath("") == 0);
    CHECK(nczm_isabsolutepath("a/b") == 0);
    CHECK(nczm_isabsolutepath("./a") == 0);
    CHECK(nczm_isabsolutepath("1:/x") == 0);
    CHECK(nczm_isabsolutepath("C") == 0);
}

static void check_localize(const char *path, int local, const char *want,
                           int line) {
    char *out = UNTOUCHED;
    int code = nczm_localize(path, &out, local);
    if (code != NC_NOERR) {
        zt_failed++;
        fprintf(stderr, "%s:%d: localize returned %d\n", __FILE__, line, code);
    }
    check_string(out, want, line);
}

static void test_localize(void) {
    /* On Linux '\' becomes '/' whatever `local` says. */
    for (int local = 0; local <= LOCALIZE; local++) {
        check_localize("/C:/x/y", local, "C:/x/y", __LINE__);
        check_localize("/c:", local, "c:", __LINE__);
        check_localize("a\\b\\c", local, "a/b/c", __LINE__);
        check_localize("/C:\\x", local, "C:/x", __LINE__);
        check_localize("\\C:\\x", local, "/C:/x", __LINE__);
        check_localize("/a/b", local, "/a/b", __LINE__);
        check_localize("/1:/x", local, "/1:/x", __LINE__);
        check_localize("//C:/x", local, "//C:/x", __LINE__);
        check_localize("", local, "", __LINE__);
    }
    char *out = UNTOUCHED;
    CHECK_CODE(nczm_localize(NULL, &out, 0), NC_EINVAL);
    CHECK(out == UNTOUCHED);
    CHECK_OK(nczm_localize("a\\b", NULL, 0));
}

static void check_canonical(const char *path, const char *want, int line) {
    char *out = UNTOUCHED;
    int code = nczm_canonicalpath(path, &out);
    if (code != NC_NOERR) {
        zt_failed++;
        fprintf(stderr, "%s:%d: canonicalpath returned %d\n", __FILE__, line,
                code);
    }
    check_string(out, want, line);
}
#define CANONICAL(path, want) check_canonical((path), (want), __LINE__)

static void test_canonicalpath(void) {
    /* No MSYS or Cygwin drive rewriting on Linux (zmap-api.md A2). */
    CANONICAL("/d/data", "/d/data");
    CANONICAL("/w", "/w");
    CANONICAL("/cygdrive/c/x", "/cygdrive/c/x");
    /* Otherwise as nczm_localize. */
    CANONICAL("/C:/x", "C:/x");
    CANONICAL("C:/x", "C:/x");
    CANONICAL("a\\b", "a/b");
    CANONICAL("rel/x.nzf", "rel/x.nzf");
    CANONICAL("./x", "./x");
    CANONICAL("", "");
    /* NULL path: success, output untouched (as netCDF). */
    char *out = UNTOUCHED;
    CHECK_OK(nczm_canonicalpath(NULL, &out));
    CHECK(out == UNTOUCHED);
    CHECK_OK(nczm_canonicalpath("/a", NULL));
}

int main(void) {
    test_split();
    test_join();
    test_joinpath();
    test_concat();
    test_divide_at();
    test_clear();
    test_isabsolutepath();
    test_localize();
    test_canonicalpath();
    return zt_finish("paths");
}
