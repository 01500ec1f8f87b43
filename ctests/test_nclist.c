/* NClist through the C ABI: every function of zmap-api.md Part B §7 and the
 * header's macros, with netCDF's growth rule, NULL-list safety, and the
 * ownership rules (elements malloc()ed here are released by nclistfreeall;
 * valgrind checks that nothing leaks or is freed twice). */
#include "harness.h"

/* A malloc()ed copy of `s`, as zmap pushes them. */
static char *dup_string(const char *s) {
    char *copy = malloc(strlen(s) + 1);
    if (copy == NULL) {
        fprintf(stderr, "out of memory\n");
        exit(2);
    }
    strcpy(copy, s);
    return copy;
}

/* Whether element `i` of `l` is the string `want`. */
static int is_string(NClist *l, size_t i, const char *want) {
    const char *got = (const char *)nclistget(l, i);
    return got != NULL && strcmp(got, want) == 0;
}

static void test_new_and_free(void) {
    NClist *l = nclistnew();
    CHECK(l != NULL);
    if (l == NULL) return;
    CHECK(l->alloc == 0 && l->length == 0 && l->content == NULL);
    CHECK(nclistlength(l) == 0);
    CHECK(nclistcontents(l) == NULL);
    CHECK(nclistfree(l) == 1);
    l = nclistnew();
    CHECK(nclistfreeall(l) == 1);
}

static void test_push_get_and_growth(void) {
    NClist *l = nclistnew();
    char name[16];
    /* netCDF's growth: 16 when empty, then twice the length. */
    for (int i = 0; i < 40; i++) {
        snprintf(name, sizeof name, "e%d", i);
        CHECK(nclistpush(l, dup_string(name)) == 1);
        if (i == 0) CHECK(l->alloc == 16);
        if (i == 15) CHECK(l->alloc == 16);
        if (i == 16) CHECK(l->alloc == 32);
        if (i == 32) CHECK(l->alloc == 64);
    }
    CHECK(nclistlength(l) == 40);
    CHECK(nclistcontents(l) == l->content);
    int all = 1;
    for (int i = 0; i < 40; i++) {
        snprintf(name, sizeof name, "e%d", i);
        all = all && is_string(l, (size_t)i, name) &&
              nclistcontents(l)[i] == nclistget(l, (size_t)i);
    }
    CHECK(all);
    CHECK(nclistget(l, 40) == NULL);
    CHECK(nclistget(l, (size_t)-1) == NULL);
    CHECK(nclistfreeall(l) == 1);
}

static void test_set_and_length(void) {
    NClist *l = nclistnew();
    char *a = dup_string("a"), *b = dup_string("b"), *c = dup_string("c");
    CHECK(nclistpush(l, a));
    /* Overwrite in place. */
    CHECK(nclistset(l, 0, b) == 1);
    CHECK(nclistget(l, 0) == b && nclistlength(l) == 1);
    free(a);
    /* Past the end: the list grows, the new slots in between are NULL. */
    CHECK(nclistset(l, 20, c) == 1);
    CHECK(nclistlength(l) == 21);
    CHECK(nclistget(l, 20) == c);
    int nulls = 1;
    for (size_t i = 1; i < 20; i++) nulls = nulls && nclistget(l, i) == NULL;
    CHECK(nulls);
    CHECK(nclistset(l, (size_t)-1, c) == 0);

    /* setlength: shrink, then grow again (new slots NULL). */
    CHECK(nclistsetlength(l, 21) == 1);
    CHECK(nclistlength(l) == 21);
    free(nclistget(l, 20));
    CHECK(nclistsetlength(l, 1) == 1);
    CHECK(nclistlength(l) == 1 && nclistget(l, 0) == b);
    CHECK(nclistsetlength(l, 5) == 1);
    CHECK(nclistlength(l) == 5);
    CHECK(nclistget(l, 1) == NULL && nclistget(l, 4) == NULL);
    CHECK(nclistsetlength(l, 100) == 1);
    CHECK(nclistlength(l) == 100 && l->alloc >= 100);
    CHECK(nclistget(l, 99) == NULL);

    /* nclistclear empties the list, keeping its storage. */
    size_t alloc = l->alloc;
    CHECK(nclistclear(l) == 1);
    CHECK(nclistlength(l) == 0 && l->alloc == alloc);
    CHECK(nclistget(l, 0) == NULL);
    free(b);
    /* freeall skips NULL elements. */
    CHECK(nclistset(l, 3, dup_string("d")) == 1);
    CHECK(nclistfreeall(l) == 1);
}

static void test_setalloc_and_extend(void) {
    NClist *l = nclistnew();
    /* 0 means "double, or 16 when empty". */
    CHECK(nclistsetalloc(l, 0) == 1);
    CHECK(l->alloc == 16 && l->length == 0);
    CHECK(nclistsetalloc(l, 100) == 1);
    CHECK(l->alloc == 100);
    /* Never shrinks. */
    CHECK(nclistsetalloc(l, 10) == 1);
    CHECK(l->alloc == 100);
    CHECK(nclistextend(l, 28) == 1);
    CHECK(l->alloc == 128 && nclistlength(l) == 0);
    for (int i = 0; i < 128; i++) nclistpush(l, NULL);
    CHECK(l->alloc == 128 && nclistlength(l) == 128);
    CHECK(nclistpush(l, NULL) == 1);
    CHECK(l->alloc == 256);
    CHECK(nclistfree(l) == 1);
}

static void test_insert_remove(void) {
    NClist *l = nclistnew();
    char *a = dup_string("a"), *b = dup_string("b"), *c = dup_string("c"),
         *d = dup_string("d");
    CHECK(nclistinsert(l, 0, b) == 1);    /* [b] */
    CHECK(nclistinsert(l, 0, a) == 1);    /* [a b] */
    CHECK(nclistinsert(l, 2, d) == 1);    /* [a b d]: at the end */
    CHECK(nclistinsert(l, 2, c) == 1);    /* [a b c d] */
    CHECK(nclistinsert(l, 5, c) == 0);    /* past the end */
    CHECK(nclistlength(l) == 4);
    CHECK(nclistget(l, 0) == a && nclistget(l, 1) == b &&
          nclistget(l, 2) == c && nclistget(l, 3) == d);

    CHECK(nclistremove(l, 1) == b);       /* [a c d] */
    CHECK(nclistlength(l) == 3);
    CHECK(nclistget(l, 1) == c && nclistget(l, 2) == d);
    CHECK(nclistremove(l, 3) == NULL);
    CHECK(nclistremove(l, 2) == d);       /* [a c] */
    CHECK(nclistlength(l) == 2);
    free(b);
    free(d);

    /* top and pop. */
    CHECK(nclisttop(l) == c);
    CHECK(nclistlength(l) == 2);
    CHECK(nclistpop(l) == c);
    CHECK(nclistlength(l) == 1);
    CHECK(nclistpop(l) == a);
    CHECK(nclistpop(l) == NULL);
    CHECK(nclisttop(l) == NULL);
    CHECK(nclistlength(l) == 0);
    free(a);
    free(c);

    /* Many inserts at the front, crossing several growth steps. */
    static int values[50];
    for (int i = 0; i < 50; i++) CHECK(nclistinsert(l, 0, &values[i]) == 1);
    int order = nclistlength(l) == 50;
    for (int i = 0; i < 50; i++)
        order = order && nclistget(l, (size_t)i) == &values[49 - i];
    CHECK(order);
    CHECK(nclistfree(l) == 1);
}

static void test_contains_match_elemremove(void) {
    NClist *l = nclistnew();
    char *abc = dup_string("Abc"), *def = dup_string("def");
    char *other = dup_string("Abc"); /* equal string, other pointer */
    nclistpush(l, abc);
    nclistpush(l, NULL); /* a NULL element never matches */
    nclistpush(l, def);

    CHECK(nclistcontains(l, abc) == 1);
    CHECK(nclistcontains(l, def) == 1);
    CHECK(nclistcontains(l, other) == 0);

    /* nclistmatch compares strings, not pointers. */
    CHECK(nclistmatch(l, "Abc", 1) == 1);
    CHECK(nclistmatch(l, other, 1) == 1);
    CHECK(nclistmatch(l, "abc", 1) == 0);
    CHECK(nclistmatch(l, "abc", 0) == 1);
    CHECK(nclistmatch(l, "DEF", 0) == 1);
    CHECK(nclistmatch(l, "DEF", 1) == 0);
    CHECK(nclistmatch(l, "ab", 0) == 0);
    CHECK(nclistmatch(l, "Abcd", 0) == 0);
    CHECK(nclistmatch(l, "", 0) == 0);

    /* elemremove removes the first occurrence, by pointer. */
    nclistpush(l, abc); /* [abc NULL def abc] */
    CHECK(nclistelemremove(l, other) == 0);
    CHECK(nclistlength(l) == 4);
    CHECK(nclistelemremove(l, abc) == 1);
    CHECK(nclistlength(l) == 3);
    CHECK(nclistget(l, 0) == NULL && nclistget(l, 1) == def &&
          nclistget(l, 2) == abc);
    CHECK(nclistelemremove(l, NULL) == 1);
    CHECK(nclistlength(l) == 2);
    CHECK(nclistget(l, 0) == def && nclistget(l, 1) == abc);
    free(other);
    CHECK(nclistfreeall(l) == 1);
}

static void test_unique(void) {
    NClist *l = nclistnew();
    char *a = dup_string("a"), *b = dup_string("b"), *c = dup_string("c");
    char *a2 = dup_string("a"); /* same text, different pointer: kept */
    char *in[] = {a, b, a, c, b, a2, a, c};
    for (size_t i = 0; i < sizeof in / sizeof in[0]; i++) nclistpush(l, in[i]);
    CHECK(nclistunique(l) == 1);
    CHECK(nclistlength(l) == 4);
    CHECK(nclistget(l, 0) == a && nclistget(l, 1) == b &&
          nclistget(l, 2) == c && nclistget(l, 3) == a2);
    /* Already unique: unchanged. */
    CHECK(nclistunique(l) == 1);
    CHECK(nclistlength(l) == 4);
    CHECK(nclistfreeall(l) == 1);
    /* Empty list. */
    l = nclistnew();
    CHECK(nclistunique(l) == 1);
    CHECK(nclistlength(l) == 0);
    nclistfree(l);
}

static void test_clone(void) {
    NClist *l = nclistnew();
    char name[16];
    for (int i = 0; i < 20; i++) {
        snprintf(name, sizeof name, "s%d", i);
        nclistpush(l, dup_string(name));
    }

    /* Deep: new strings with equal text, and a NULL slot after the last. */
    NClist *deep = nclistclone(l, 1);
    CHECK(deep != NULL && deep != l);
    if (deep != NULL) {
        CHECK(nclistlength(deep) == 20);
        CHECK(deep->alloc >= 21);
        CHECK(deep->content != NULL && deep->content[20] == NULL);
        int copies = 1;
        for (size_t i = 0; i < 20; i++) {
            snprintf(name, sizeof name, "s%zu", i);
            copies = copies && nclistget(deep, i) != nclistget(l, i) &&
                     is_string(deep, i, name);
        }
        CHECK(copies);
        /* Independent of the original. */
        ((char *)nclistget(deep, 0))[0] = 'X';
        CHECK(is_string(l, 0, "s0"));
        CHECK(nclistfreeall(deep) == 1);
    }

    /* Shallow: the same pointers, also with the NULL slot. */
    NClist *shallow = nclistclone(l, 0);
    CHECK(shallow != NULL);
    if (shallow != NULL) {
        CHECK(nclistlength(shallow) == 20);
        CHECK(shallow->content != l->content);
        CHECK(shallow->alloc >= 21 && shallow->content[20] == NULL);
        int same = 1;
        for (size_t i = 0; i < 20; i++)
            same = same && nclistget(shallow, i) == nclistget(l, i);
        CHECK(same);
        CHECK(nclistfree(shallow) == 1); /* the elements stay l's */
    }
    CHECK(is_string(l, 19, "s19"));

    /* NULL elements survive a deep clone as NULL. */
    nclistpush(l, NULL);
    deep = nclistclone(l, 1);
    CHECK(deep != NULL && nclistlength(deep) == 21);
    CHECK(nclistget(deep, 20) == NULL);
    nclistfreeall(deep);
    CHECK(nclistfreeall(l) == 1);

    /* An empty list clones to an empty list with its NULL slot. */
    l = nclistnew();
    NClist *empty = nclistclone(l, 1);
    CHECK(empty != NULL);
    if (empty != NULL) {
        CHECK(nclistlength(empty) == 0);
        CHECK(empty->content != NULL && empty->content[0] == NULL);
        nclistfreeall(empty);
    }
    nclistfree(l);
}

static void test_extract(void) {
    NClist *l = nclistnew();
    char *a = dup_string("a"), *b = dup_string("b");
    nclistpush(l, a);
    nclistpush(l, b);
    void **content = (void **)nclistextract(l);
    CHECK(content != NULL);
    CHECK(nclistlength(l) == 0 && l->alloc == 0 && l->content == NULL);
    if (content != NULL) CHECK(content[0] == a && content[1] == b);
    /* The array is the caller's, to free() (valgrind checks). */
    free(content);
    /* The list is still usable. */
    CHECK(nclistpush(l, a) == 1);
    CHECK(nclistlength(l) == 1 && nclistget(l, 0) == a);
    free(b);
    CHECK(nclistfreeall(l) == 1);
    /* An empty list has no array. */
    l = nclistnew();
    CHECK(nclistextract(l) == NULL);
    nclistfree(l);
}

static void test_null(void) {
    int x;
    CHECK(nclistnull(NULL) == 1);
    CHECK(nclistnull(&x) == 0);
}

/* Every function is safe on a NULL list. */
static void test_null_list(void) {
    NClist *l = NULL;
    int x;
    CHECK(nclistfree(NULL) == 1);
    CHECK(nclistfreeall(NULL) == 1);
    CHECK(nclistsetalloc(NULL, 10) == 0);
    CHECK(nclistsetlength(NULL, 10) == 0);
    CHECK(nclistget(NULL, 0) == NULL);
    CHECK(nclistset(NULL, 0, &x) == 0);
    CHECK(nclistinsert(NULL, 0, &x) == 0);
    CHECK(nclistpush(NULL, &x) == 0);
    CHECK(nclistpop(NULL) == NULL);
    CHECK(nclisttop(NULL) == NULL);
    CHECK(nclistremove(NULL, 0) == NULL);
    CHECK(nclistcontains(NULL, &x) == 0);
    CHECK(nclistmatch(NULL, "a", 1) == 0);
    CHECK(nclistelemremove(NULL, &x) == 0);
    CHECK(nclistunique(NULL) == 1);
    CHECK(nclistclone(NULL, 1) == NULL);
    CHECK(nclistclone(NULL, 0) == NULL);
    CHECK(nclistextract(NULL) == NULL);
    CHECK(nclistlength(l) == 0);
    CHECK(nclistcontents(l) == NULL);
    CHECK(nclistclear(l) == 0);
    /* A NULL string to match never matches. */
    NClist *list = nclistnew();
    nclistpush(list, dup_string("a"));
    CHECK(nclistmatch(list, NULL, 1) == 0);
    nclistfreeall(list);
}

int main(void) {
    test_new_and_free();
    test_push_get_and_growth();
    test_set_and_length();
    test_setalloc_and_extend();
    test_insert_remove();
    test_contains_match_elemremove();
    test_unique();
    test_clone();
    test_extract();
    test_null();
    test_null_list();
    return zt_finish("nclist");
}
