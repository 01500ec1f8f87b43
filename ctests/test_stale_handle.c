/* A closed handle never reaches another map (README, "Handles are
 * checked"): after nczmap_close(A), the next 65,536 maps created (and
 * closed) never get A's address, every call through A — the nczmap_*
 * functions and A->api — gives NC_EBADID, and the maps created meanwhile
 * keep exactly what they were given (a close-with-delete through A deletes
 * nothing). The first maps of the loop are on the backend under test, the
 * rest in memory (the handle is the same whatever the backend). A's memory
 * stays readable: A->api is still the table and A->url is NULL.
 * Under valgrind (whose allocator never hands an address out again soon,
 * so the window proves nothing there) the loop is 1,000 maps long: valgrind
 * checks that every access to A's memory is to memory still allocated.
 */
// zmap-test-backends: mem file gnz
#include "harness.h"

/* The window README promises: closes after A's during which A's address
 * is not handed out again. */
#define WINDOW 65536
#define ON_BACKEND 20

static int stale_calls_refused(NCZMAP *a) {
    unsigned char buf[4] = {0};
    size64_t len = 7;
    size64_t before = 0, after = 0;
    NClist *list = nclistnew();
    int bad = 0;
    bad += nczmap_exists(a, "/k") != NC_EBADID;
    bad += nczmap_len(a, "/k", &len) != NC_EBADID || len != 0;
    bad += nczmap_read(a, "/k", 0, 4, buf) != NC_EBADID;
    bad += nczmap_write(a, "/k", 0, 4, "evil") != NC_EBADID;
    bad += nczmap_defineobj(a, "/evil") != NC_EBADID;
    bad += nczmap_search(a, "/", list) != NC_EBADID || nclistlength(list) != 0;
    bad += nczmap_flush(a) != NC_EBADID;
    bad += nczmap_remove(a, "/k") != NC_EBADID;
    bad += nczmap_truncate(a, "/k", 0) != NC_EBADID;
    bad += nczmap_compact(a, &before, &after) != NC_EBADID;
    bad += a->api->exists(a, "/k") != NC_EBADID;
    bad += a->api->write(a, "/k", 0, 4, "evil") != NC_EBADID;
    bad += a->api->close(a, 1) != NC_EBADID;
    bad += nczmap_close(a, 1) != NC_EBADID;
    nclistfreeall(list);
    return bad;
}

/* The map holds "/k" = "good" and nothing else. */
static int intact(NCZMAP *map) {
    unsigned char buf[4] = {0};
    size64_t len = 0;
    NClist *list = nclistnew();
    int ok = nczmap_len(map, "/k", &len) == NC_NOERR && len == 4 &&
             nczmap_read(map, "/k", 0, 4, buf) == NC_NOERR && memcmp(buf, "good", 4) == 0 &&
             nczmap_search(map, "/", list) == NC_NOERR && nclistlength(list) == 1;
    nclistfreeall(list);
    return ok;
}

int main(int argc, char **argv) {
    if (argc < 2) {
        fprintf(stderr, "usage: test_stale_handle BACKEND\n");
        return 2;
    }
    const char *backend = argv[1];
    NCZM_IMPL impl = zt_backend(backend);
    char path[4200];
    zt_dataset(backend, "stale-a", path, sizeof path);

    NCZMAP *a = NULL;
    CHECK_OK(nczmap_create(impl, path, NC_CLOBBER, 0, NULL, &a));
    if (a == NULL) return zt_finish("test_stale_handle");
    CHECK_OK(nczmap_write(a, "/k", 0, 4, "good"));
    const NCZMAP_API *api = a->api;
    CHECK_OK(nczmap_close(a, 0));

    /* The closed handle's memory is kept, with the same operation table. */
    CHECK(a->api == api);
    CHECK(a->url == NULL);

    const char *preload = getenv("LD_PRELOAD");
    int window = preload != NULL && strstr(preload, "vgpreload") != NULL ? 1000 : WINDOW;
    int reused = 0, refused = 0, damaged = 0, failed = 0;
    for (int i = 0; i < window; i++) {
        NCZM_IMPL where = i < ON_BACKEND ? impl : NCZM_MEM;
        const char *name = i < ON_BACKEND ? backend : "mem";
        char b_path[4200];
        zt_dataset(name, i < ON_BACKEND ? "stale-b" : "stale-m", b_path, sizeof b_path);
        NCZMAP *b = NULL;
        if (nczmap_create(where, b_path, NC_CLOBBER, 0, NULL, &b) != NC_NOERR ||
            nczmap_write(b, "/k", 0, 4, "good") != NC_NOERR) {
            failed++;
            if (b != NULL) nczmap_close(b, 1);
            continue;
        }
        reused += b == a;
        /* Every call through A on the first maps; then every 64th (the
         * address check above covers each one). */
        if (i < 1000 || i % 64 == 0) {
            refused += stale_calls_refused(a);
            damaged += !intact(b);
        }
        if (nczmap_close(b, 1) != NC_NOERR) failed++;
    }
    if (reused) fprintf(stderr, "  a new map got the closed handle's address %d times\n", reused);
    if (refused) fprintf(stderr, "  %d calls through the closed handle were not NC_EBADID\n", refused);
    if (damaged) fprintf(stderr, "  %d new maps were changed through the closed handle\n", damaged);
    CHECK(reused == 0);
    CHECK(refused == 0);
    CHECK(damaged == 0);
    CHECK(failed == 0);

    /* The dataset A was on is as A left it. */
    NCZMAP *again = NULL;
    CHECK_OK(nczmap_open(impl, path, NC_WRITE, 0, NULL, &again));
    if (again != NULL) {
        CHECK(intact(again));
        zt_mark_for_delete(impl, path);
        CHECK_OK(nczmap_close(again, 1));
    }
    zt_cleanup();
    return zt_finish("test_stale_handle");
}
