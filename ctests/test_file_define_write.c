/* FILE: NCZarr's create, nczmap_defineobj(key) then nczmap_write(key),
 * through the public header (issue 14).
 *
 * The FILE backend keeps the file a defineobj created open for the write of
 * the same key that follows (README "FILE backend"). This test shows that
 * the shortcut changes no outcome a user can see:
 * - define then write (at 0, and past the end: the gap reads as zeros);
 * - define, remove, write: a new object, written in full;
 * - define, another key's define and write, then the first key's write;
 * - define, then another process unlinks the file and puts a FIFO (with a
 *   reader attached, so a write-open would deliver) or a link leading out
 *   of the dataset at the key: the write answers NC_EINVAL and nothing
 *   reaches the FIFO or the link's target;
 * - define, then the file is unlinked: the write makes the object anew;
 * - define twice, write: an existing object is left as it was by define. */
// zmap-test-backends: file
#include "harness.h"

#include <errno.h>
#include <fcntl.h>
#include <sys/stat.h>
#include <sys/types.h>

static char ds[4096];

static void path_in(char *out, size_t n, const char *name) {
    snprintf(out, n, "%s/%s", ds, name);
}

/* The object `key` holds exactly `want` (n bytes). */
static void check_content(NCZMAP *map, const char *key, const char *want, size_t n) {
    size64_t len = 0;
    char buf[64] = {0};
    CHECK_OK(nczmap_len(map, key, &len));
    CHECK(len == n);
    if (len != n || n > sizeof buf) return;
    CHECK_OK(nczmap_read(map, key, 0, n, buf));
    CHECK(memcmp(buf, want, n) == 0);
}

int main(int argc, char **argv) {
    (void)argc;
    (void)argv;
    zt_dataset("file", "define_write", ds, sizeof ds);
    NCZMAP *map = NULL;
    CHECK_OK(nczmap_create(NCZM_FILE, ds, 0, 0, NULL, &map));
    if (!map) return zt_finish("test_file_define_write");

    /* Define then write, at 0 and with a gap. */
    CHECK_OK(nczmap_defineobj(map, "/g/v/c.0"));
    CHECK_OK(nczmap_write(map, "/g/v/c.0", 0, 5, "chunk"));
    check_content(map, "/g/v/c.0", "chunk", 5);
    CHECK_OK(nczmap_defineobj(map, "/g/v/c.1"));
    CHECK_OK(nczmap_write(map, "/g/v/c.1", 3, 2, "xy"));
    check_content(map, "/g/v/c.1", "\0\0\0xy", 5);

    /* Define, remove, write: a new object. */
    CHECK_OK(nczmap_defineobj(map, "/g/v/c.2"));
    CHECK_OK(nczmap_remove(map, "/g/v/c.2"));
    CHECK_CODE(nczmap_exists(map, "/g/v/c.2"), NC_EEMPTY);
    CHECK_OK(nczmap_write(map, "/g/v/c.2", 0, 3, "new"));
    check_content(map, "/g/v/c.2", "new", 3);

    /* Interleaved with another key. */
    CHECK_OK(nczmap_defineobj(map, "/g/v/c.3"));
    CHECK_OK(nczmap_defineobj(map, "/g/w/c.0"));
    CHECK_OK(nczmap_write(map, "/g/w/c.0", 0, 1, "w"));
    CHECK_OK(nczmap_write(map, "/g/v/c.3", 0, 1, "v"));
    check_content(map, "/g/w/c.0", "w", 1);
    check_content(map, "/g/v/c.3", "v", 1);

    /* Replaced by a FIFO with a reader: refused, no byte delivered. */
    char path[4200];
    CHECK_OK(nczmap_defineobj(map, "/g/v/fifo"));
    path_in(path, sizeof path, "g/v/fifo");
    CHECK(unlink(path) == 0);
    CHECK(mkfifo(path, 0600) == 0);
    int reader = open(path, O_RDONLY | O_NONBLOCK);
    CHECK(reader >= 0);
    CHECK_CODE(nczmap_write(map, "/g/v/fifo", 0, 6, "pwned!"), NC_EINVAL);
    char got[16];
    CHECK(read(reader, got, sizeof got) <= 0);
    struct stat st;
    CHECK(lstat(path, &st) == 0 && S_ISFIFO(st.st_mode));
    if (reader >= 0) close(reader);

    /* Replaced by a link leading out of the dataset: refused, target kept. */
    char outside[4200];
    snprintf(outside, sizeof outside, "%s/outside", zt_tmpdir());
    FILE *f = fopen(outside, "w");
    CHECK(f != NULL);
    if (f != NULL) {
        fputs("secret", f);
        fclose(f);
    }
    CHECK_OK(nczmap_defineobj(map, "/g/v/link"));
    path_in(path, sizeof path, "g/v/link");
    CHECK(unlink(path) == 0);
    CHECK(symlink(outside, path) == 0);
    CHECK_CODE(nczmap_write(map, "/g/v/link", 0, 6, "pwned!"), NC_EINVAL);
    char secret[16] = {0};
    f = fopen(outside, "r");
    CHECK(f != NULL && fread(secret, 1, sizeof secret - 1, f) == 6);
    if (f != NULL) fclose(f);
    CHECK(strcmp(secret, "secret") == 0);

    /* Unlinked: the write makes it anew. */
    CHECK_OK(nczmap_defineobj(map, "/g/v/gone"));
    path_in(path, sizeof path, "g/v/gone");
    CHECK(unlink(path) == 0);
    CHECK_OK(nczmap_write(map, "/g/v/gone", 0, 4, "back"));
    check_content(map, "/g/v/gone", "back", 4);

    /* A second define of an existing object changes nothing. */
    CHECK_OK(nczmap_defineobj(map, "/g/v/c.0"));
    check_content(map, "/g/v/c.0", "chunk", 5);
    CHECK_OK(nczmap_write(map, "/g/v/c.0", 0, 1, "C"));
    check_content(map, "/g/v/c.0", "Chunk", 5);

    /* All of it survives close and reopen. */
    CHECK_OK(nczmap_close(map, 0));
    map = NULL;
    CHECK_OK(nczmap_open(NCZM_FILE, ds, NC_WRITE, 0, NULL, &map));
    if (map != NULL) {
        check_content(map, "/g/v/c.1", "\0\0\0xy", 5);
        check_content(map, "/g/v/c.2", "new", 3);
        check_content(map, "/g/v/gone", "back", 4);
        zt_mark_for_delete(NCZM_FILE, ds);
        CHECK_OK(nczmap_close(map, 1));
    }
    zt_cleanup();
    return zt_finish("test_file_define_write");
}
