/* GNZ: the library deletes, truncates or writes only what it can prove is
 * its own dataset, accepts only writes it can commit, bounds its work by what
 * a file holds, and has no test hooks (issue 10, items 4, 5, 8, 10, 11).
 *
 * - delete by identity (item 4): nczmap_close(map, 1) removes the file the
 *   map holds open, never another file that has its name now: after the
 *   host changed its working directory (relative path), after the dataset's
 *   directory was renamed, after the dataset was renamed and another file
 *   put at its name (NC_EEMPTY: nothing deleted, the dataset keeps its
 *   last commit), after it was removed by
 *   someone else (NC_NOERR). A path through a symbolic link names the file
 *   the link points to, resolved when the map opens: delete removes that
 *   file, not the link; create through a dangling link is NC_EEXIST and
 *   creates nothing.
 * - create never clobbers what it cannot parse (item 5): a GNZ file of
 *   version 2, one with dtype "|O", one with a torn header: NC_EEXIST with
 *   and without NC_NOCLOBBER, the file unchanged byte for byte.
 * - no writes that cannot be committed (item 8): a header whose
 *   zmap.generation is 2^64-1 (or 2^63) opens read-only, but a writable
 *   open or a create gives NC_ENOTNC, the file unchanged; 2^63-1 is
 *   writable, and its commit makes it 2^63.
 * - no test hooks (item 10): with ZMAP_GNZ_FAULT set to each crash point,
 *   commits and a compaction succeed (a child process: a hook would abort
 *   it), and the library file does not even hold the variable's name.
 * - bounded open (item 11): a 4 KiB sparse file whose header and commit
 *   record claim lengths near 1 GiB is NC_ENOTNC after reading a few
 *   MiB (/proc/self/io), not 2 GiB.
 * - gaps take no disk: an object cut and grown back to 1 GiB, and one
 *   written 1 GiB past its start, leave holes (zeros when read), not a GiB
 *   of written zeros.
 */
// zmap-test-backends: gnz
#include "harness.h"

#include <errno.h>
#include <fcntl.h>
#include <stdint.h>
#include <sys/stat.h>
#include <sys/types.h>
#include <sys/wait.h>

static char dir[4096];

/* ---- helpers ---------------------------------------------------------------- */

static void at(char *out, size_t n, const char *name) {
    snprintf(out, n, "%s/%s", dir, name);
}

static void write_bytes(const char *path, const void *p, size_t n) {
    FILE *f = fopen(path, "wb");
    if (f == NULL || fwrite(p, 1, n, f) != n || fclose(f) != 0) {
        perror(path);
        exit(2);
    }
}

static int has_content(const char *path, const char *text) {
    size_t n;
    unsigned char *b = zt_slurp(path, &n);
    int same = b && n == strlen(text) && memcmp(b, text, n) == 0;
    free(b);
    return same;
}

static int exists_nofollow(const char *path) {
    struct stat st;
    return lstat(path, &st) == 0;
}

/* A GNZ file: "GNZ1", the JSON's length, the JSON, zeros to 4096, then
 * `data` at 4096. */
static size_t gnz_file(unsigned char *out, const char *json, const char *data) {
    size_t len = strlen(json);
    memset(out, 0, 8192);
    memcpy(out, "GNZ1", 4);
    for (int i = 0; i < 4; i++) out[4 + i] = (unsigned char)(len >> (8 * i));
    memcpy(out + 8, json, len);
    memcpy(out + 4096, data, strlen(data));
    return 8192;
}

static NCZMAP *make(const char *path, const char *text) {
    NCZMAP *map = NULL;
    CHECK_OK(nczmap_create(NCZM_GNZ, path, 0, 0, NULL, &map));
    if (map) CHECK_OK(nczmap_write(map, "/.zgroup", 0, strlen(text), text));
    return map;
}

/* The dataset at `path` opens and holds `text` at /.zgroup. */
static int dataset_holds(const char *path, const char *text) {
    NCZMAP *map = NULL;
    if (nczmap_open(NCZM_GNZ, path, 0, 0, NULL, &map) != NC_NOERR) return 0;
    char buf[64] = {0};
    size64_t len = 0;
    int ok = nczmap_len(map, "/.zgroup", &len) == NC_NOERR && len == strlen(text) &&
             len < sizeof buf && nczmap_read(map, "/.zgroup", 0, len, buf) == NC_NOERR &&
             memcmp(buf, text, len) == 0;
    nczmap_close(map, 0);
    return ok;
}

/* ---- item 4: delete by identity ------------------------------------------------ */

static void delete_after_chdir(void) {
    char a[4200], b[4200], ds[4300], stranger[4300], cwd[4096];
    at(a, sizeof a, "cwd-a");
    at(b, sizeof b, "cwd-b");
    mkdir(a, 0755);
    mkdir(b, 0755);
    snprintf(ds, sizeof ds, "%s/rel.gnz", a);
    snprintf(stranger, sizeof stranger, "%s/rel.gnz", b);
    write_bytes(stranger, "stranger", 8);
    if (getcwd(cwd, sizeof cwd) == NULL || chdir(a) != 0) exit(2);
    NCZMAP *map = make("rel.gnz", "{}");
    if (chdir(b) != 0) exit(2);
    CHECK_OK(nczmap_close(map, 1));
    if (chdir(cwd) != 0) exit(2);
    CHECK(!exists_nofollow(ds));            /* the dataset is gone */
    CHECK(has_content(stranger, "stranger")); /* the file in the new cwd is not */
}

static void delete_after_rename_and_replace(int writable) {
    char ds[4200], moved[4200];
    at(ds, sizeof ds, writable ? "renamed-w.gnz" : "renamed-r.gnz");
    at(moved, sizeof moved, writable ? "moved-w.gnz" : "moved-r.gnz");
    NCZMAP *map = make(ds, "{}");
    if (writable) {
        CHECK_OK(nczmap_flush(map));
    } else {
        CHECK_OK(nczmap_close(map, 0));
        CHECK_OK(nczmap_open(NCZM_GNZ, ds, 0, 0, NULL, &map));
    }
    CHECK(rename(ds, moved) == 0);
    write_bytes(ds, "stranger", 8);
    /* The dataset is no longer at its path: nothing is deleted. */
    CHECK_CODE(nczmap_close(map, 1), NC_EEMPTY);
    CHECK(has_content(ds, "stranger"));
    CHECK(dataset_holds(moved, "{}"));
}

static void delete_after_directory_rename(void) {
    char d1[4200], d2[4200], ds[4300], now[4300];
    at(d1, sizeof d1, "dir-before");
    at(d2, sizeof d2, "dir-after");
    mkdir(d1, 0755);
    snprintf(ds, sizeof ds, "%s/x.gnz", d1);
    snprintf(now, sizeof now, "%s/x.gnz", d2);
    NCZMAP *map = make(ds, "{}");
    CHECK(rename(d1, d2) == 0);
    CHECK_OK(nczmap_close(map, 1));
    CHECK(!exists_nofollow(now)); /* the dataset it opened is deleted */
}

static void delete_after_someone_else_did(void) {
    char ds[4200];
    at(ds, sizeof ds, "gone.gnz");
    NCZMAP *map = make(ds, "{}");
    CHECK(unlink(ds) == 0);
    CHECK_OK(nczmap_close(map, 1));
    CHECK(!exists_nofollow(ds));
}

static void symlinks(void) {
    char target[4200], link[4200], dangling[4200], nowhere[4200];
    at(target, sizeof target, "target.gnz");
    at(link, sizeof link, "link.gnz");
    at(dangling, sizeof dangling, "dangling.gnz");
    at(nowhere, sizeof nowhere, "nowhere.gnz");
    NCZMAP *map = make(target, "{}");
    CHECK_OK(nczmap_close(map, 0));
    CHECK(symlink("target.gnz", link) == 0);
    /* Through the link: the dataset is the target. */
    CHECK(dataset_holds(link, "{}"));
    CHECK_OK(nczmap_open(NCZM_GNZ, link, NC_WRITE, 0, NULL, &map));
    CHECK_OK(nczmap_close(map, 1));
    CHECK(!exists_nofollow(target)); /* the dataset is deleted */
    CHECK(exists_nofollow(link));    /* the link, not a dataset, stays */
    CHECK_CODE(nczmap_open(NCZM_GNZ, link, 0, 0, NULL, &map), NC_EEMPTY);
    unlink(link);
    /* A dangling link: nothing is created where it points. */
    CHECK(symlink("nowhere.gnz", dangling) == 0);
    map = NULL;
    CHECK_CODE(nczmap_create(NCZM_GNZ, dangling, 0, 0, NULL, &map), NC_EEXIST);
    CHECK(map == NULL);
    CHECK_CODE(nczmap_create(NCZM_GNZ, dangling, NC_NOCLOBBER, 0, NULL, &map), NC_EEXIST);
    CHECK(!exists_nofollow(nowhere));
    CHECK(exists_nofollow(dangling));
}

/* ---- item 5: create never clobbers what it cannot parse --------------------- */

static void unparsable_is_not_ours(const char *what, const unsigned char *bytes, size_t n) {
    char path[4200];
    at(path, sizeof path, "unparsable.gnz");
    write_bytes(path, bytes, n);
    NCZMAP *map = NULL;
    int rc = nczmap_create(NCZM_GNZ, path, 0, 0, NULL, &map);
    if (rc != NC_EEXIST) fprintf(stderr, "%s: create gave %d\n", what, rc);
    CHECK(rc == NC_EEXIST && map == NULL);
    if (map) nczmap_close(map, 0);
    map = NULL;
    rc = nczmap_create(NCZM_GNZ, path, NC_NOCLOBBER, 0, NULL, &map);
    if (rc != NC_EEXIST) fprintf(stderr, "%s: create(NC_NOCLOBBER) gave %d\n", what, rc);
    CHECK(rc == NC_EEXIST && map == NULL);
    if (map) nczmap_close(map, 0);
    size_t len;
    unsigned char *after = zt_slurp(path, &len);
    int same = after && len == n && memcmp(after, bytes, n) == 0;
    if (!same) fprintf(stderr, "%s: the file changed\n", what);
    CHECK(same);
    free(after);
}

static void create_refuses_unparsable(void) {
    static unsigned char b[8192];
    size_t n = gnz_file(b,
                        "{\"arrays\": {\".zgroup\": {\"dtype\": \"|u1\", \"offset\": 4096, "
                        "\"order\": \"C\", \"shape\": [2]}}, \"metadata\": {}, \"version\": 2}",
                        "{}");
    unparsable_is_not_ours("version 2", b, n);
    n = gnz_file(b,
                 "{\"arrays\": {\".zgroup\": {\"dtype\": \"|O\", \"offset\": 4096, "
                 "\"order\": \"C\", \"shape\": [1]}}, \"metadata\": {}, \"version\": 1}",
                 "12345678");
    unparsable_is_not_ours("dtype |O", b, n);
    n = gnz_file(b, "{\"arrays\": {\".zgroup\": {\"dtype\": \"|u1\", \"off", "{}");
    unparsable_is_not_ours("torn header", b, n);
    /* What it can parse and holds its dataset marker is still emptied. */
    n = gnz_file(b,
                 "{\"arrays\": {\".zgroup\": {\"dtype\": \"|u1\", \"offset\": 4096, "
                 "\"order\": \"C\", \"shape\": [2]}}, \"metadata\": {}, \"version\": 1}",
                 "{}");
    char path[4200];
    at(path, sizeof path, "parsable.gnz");
    write_bytes(path, b, n);
    NCZMAP *map = NULL;
    CHECK_OK(nczmap_create(NCZM_GNZ, path, 0, 0, NULL, &map));
    CHECK_CODE(nczmap_exists(map, "/.zgroup"), NC_EEMPTY);
    CHECK_OK(nczmap_close(map, 0));
}

/* ---- item 8: no writes that cannot be committed ----------------------------- */

static void generation(const char *gen, int writable) {
    static unsigned char b[8192];
    char json[512], path[4200];
    snprintf(json, sizeof json,
             "{\"arrays\": {\".zgroup\": {\"dtype\": \"|u1\", \"offset\": 4096, "
             "\"order\": \"C\", \"shape\": [2]}}, \"metadata\": {\"zmap\": "
             "{\"generation\": %s, \"revision\": 1}}, \"version\": 1}",
             gen);
    size_t n = gnz_file(b, json, "{}");
    at(path, sizeof path, "generation.gnz");
    write_bytes(path, b, n);
    NCZMAP *map = NULL;
    /* Read-only: fine. */
    CHECK_OK(nczmap_open(NCZM_GNZ, path, 0, 0, NULL, &map));
    CHECK_OK(nczmap_close(map, 0));
    CHECK(dataset_holds(path, "{}"));
    map = NULL;
    if (writable) {
        CHECK_OK(nczmap_open(NCZM_GNZ, path, NC_WRITE, 0, NULL, &map));
        CHECK_OK(nczmap_write(map, "/x", 0, 1, "1"));
        CHECK_OK(nczmap_close(map, 0));
        CHECK(dataset_holds(path, "{}"));
        return;
    }
    int rc = nczmap_open(NCZM_GNZ, path, NC_WRITE, 0, NULL, &map);
    if (rc != NC_ENOTNC) fprintf(stderr, "generation %s: open(NC_WRITE) gave %d\n", gen, rc);
    CHECK(rc == NC_ENOTNC && map == NULL);
    if (map) {
        /* What the defect did: writes accepted, then every commit failed. */
        nczmap_write(map, "/x", 0, 1, "1");
        nczmap_close(map, 0);
        map = NULL;
    }
    CHECK_CODE(nczmap_create(NCZM_GNZ, path, 0, 0, NULL, &map), NC_ENOTNC);
    CHECK_CODE(nczmap_create(NCZM_GNZ, path, NC_NOCLOBBER, 0, NULL, &map), NC_ENOTNC);
    size_t len;
    unsigned char *after = zt_slurp(path, &len);
    CHECK(after && len == n && memcmp(after, b, n) == 0);
    free(after);
}

static void generations(void) {
    generation("18446744073709551615", 0); /* 2^64-1 */
    generation("9223372036854775808", 0);  /* 2^63 */
    generation("9223372036854775807", 1);  /* 2^63-1: one commit to 2^63 */
    char path[4200];
    at(path, sizeof path, "generation.gnz");
    NCZMAP *map = NULL;
    CHECK_CODE(nczmap_open(NCZM_GNZ, path, NC_WRITE, 0, NULL, &map), NC_ENOTNC);
}

/* ---- item 10: no test hooks ------------------------------------------------- */

static const char *points[] = {"before-copy", "mid-copy",     "after-copy",     "after-header-copy",
                               "mid-header",  "after-header", "compact-between"};

static void fault_variable_is_ignored(void) {
    for (size_t p = 0; p < sizeof points / sizeof points[0]; p++) {
        char path[4200];
        at(path, sizeof path, "fault.gnz");
        fflush(NULL);
        pid_t pid = fork();
        if (pid == 0) {
            setenv("ZMAP_GNZ_FAULT", points[p], 1);
            NCZMAP *map = NULL;
            int ok = nczmap_create(NCZM_GNZ, path, 0, 0, NULL, &map) == NC_NOERR;
            for (int i = 0; ok && i < 40; i++) {
                char key[32];
                snprintf(key, sizeof key, "/k%02d", i);
                ok = nczmap_write(map, key, 0, 3, "abc") == NC_NOERR;
            }
            ok = ok && nczmap_flush(map) == NC_NOERR;
            for (int i = 0; ok && i < 40; i += 2) {
                char key[32];
                snprintf(key, sizeof key, "/k%02d", i);
                ok = nczmap_remove(map, key) == NC_NOERR;
            }
            ok = ok && nczmap_flush(map) == NC_NOERR;
            size64_t before = 0, after = 0;
            ok = ok && nczmap_compact(map, &before, &after) == NC_NOERR;
            ok = ok && nczmap_write(map, "/.zgroup", 0, 2, "{}") == NC_NOERR;
            ok = ok && nczmap_close(map, 0) == NC_NOERR;
            _exit(ok ? 0 : 3);
        }
        int status = 0;
        CHECK(pid > 0 && waitpid(pid, &status, 0) == pid);
        if (!(WIFEXITED(status) && WEXITSTATUS(status) == 0))
            fprintf(stderr, "ZMAP_GNZ_FAULT=%s: the child ended with status %#x\n", points[p],
                    status);
        CHECK(WIFEXITED(status) && WEXITSTATUS(status) == 0);
        CHECK(dataset_holds(path, "{}"));
    }
}

/* The library this process runs (from /proc/self/maps) does not hold the
 * variable's name: nothing in it can read it. */
static void library_has_no_hook(void) {
    FILE *maps = fopen("/proc/self/maps", "r");
    CHECK(maps != NULL);
    if (maps == NULL) return;
    char line[8192], lib[4096] = "";
    while (fgets(line, sizeof line, maps)) {
        char *p = strchr(line, '/');
        if (p && strstr(p, "libzmap.so")) {
            p[strcspn(p, "\n")] = '\0';
            snprintf(lib, sizeof lib, "%s", p);
            break;
        }
    }
    fclose(maps);
    CHECK(lib[0] != '\0');
    if (lib[0] == '\0') return;
    size_t n;
    unsigned char *b = zt_slurp(lib, &n);
    CHECK(b != NULL && n > 0);
    const char *needle = "ZMAP_GNZ_FAULT";
    size_t k = strlen(needle);
    int found = 0;
    for (size_t i = 0; b && i + k <= n && !found; i++) {
        unsigned char *z = memchr(b + i, 'Z', n - k + 1 - i);
        if (z == NULL) break;
        i = (size_t)(z - b);
        found = memcmp(z, needle, k) == 0;
    }
    if (found) fprintf(stderr, "%s holds \"%s\"\n", lib, needle);
    CHECK(!found);
    free(b);
}

/* ---- item 11: the open path reads what the file holds ------------------------ */

/* Bytes this process has read through system calls so far. */
static long long rchar(void) {
    FILE *f = fopen("/proc/self/io", "r");
    if (f == NULL) return -1;
    char line[256];
    long long v = -1;
    while (fgets(line, sizeof line, f))
        if (sscanf(line, "rchar: %lld", &v) == 1) break;
    fclose(f);
    return v;
}

static void sparse_claims_are_bounded(void) {
    char path[4200];
    at(path, sizeof path, "sparse.gnz");
    const uint64_t claim = (1u << 30) - (1u << 20); /* just under 1 GiB */
    const uint64_t size = (uint64_t)1 << 31;
    int fd = open(path, O_CREAT | O_TRUNC | O_WRONLY, 0644);
    CHECK(fd >= 0);
    if (fd < 0) return;
    unsigned char head[8] = {'G', 'N', 'Z', '1'};
    for (int i = 0; i < 4; i++) head[4 + i] = (unsigned char)(claim >> (8 * i));
    unsigned char tail[32] = {'G', 'N', 'Z', '1', 'C', 'O', 'P', 'Y'};
    for (int i = 0; i < 8; i++) tail[8 + i] = (unsigned char)(claim >> (8 * i));
    tail[16] = 1; /* generation 1; CRC 0 */
    int ok = pwrite(fd, head, 8, 0) == 8 && ftruncate(fd, (off_t)size) == 0 &&
             pwrite(fd, tail, 32, (off_t)(size - 32)) == 32;
    close(fd);
    CHECK(ok);
    long long r0 = rchar();
    CHECK(r0 >= 0);
    for (int mode = 0; mode < 2; mode++) {
        NCZMAP *map = NULL;
        CHECK_CODE(nczmap_open(NCZM_GNZ, path, mode ? NC_WRITE : 0, 0, NULL, &map), NC_ENOTNC);
        CHECK_CODE(nczmap_create(NCZM_GNZ, path, NC_NOCLOBBER, 0, NULL, &map), NC_EEXIST);
    }
    long long read = rchar() - r0;
    /* Four opens of a file claiming 2 x 1 GiB: a few MiB each at most. */
    if (read > (32LL << 20)) fprintf(stderr, "the opens read %lld bytes\n", read);
    CHECK(read >= 0 && read <= (32LL << 20));
    unlink(path);
}

/* ---- gaps take no disk ------------------------------------------------------ */

/* Blocks the file at `path` holds, in bytes (-1 if it cannot be asked). */
static long long allocated(const char *path) {
    struct stat st;
    return stat(path, &st) == 0 ? (long long)st.st_blocks * 512 : -1;
}

/* An object truncated to 1 GiB, cut to 2 bytes and grown to 1 GiB again,
 * and an object written 1 GiB past its start: both read as zeros in their
 * gaps, and the file holds a few blocks, not a GiB of written zeros (the
 * second growth wrote 1 GiB of zeros where the first had left a hole). */
static void gaps_take_no_disk(void) {
    char path[4200];
    at(path, sizeof path, "gaps.gnz");
    const size64_t gib = (size64_t)1 << 30;
    NCZMAP *map = NULL;
    CHECK_OK(nczmap_create(NCZM_GNZ, path, NC_CLOBBER, 0, NULL, &map));
    if (map == NULL) return;
    CHECK_OK(nczmap_write(map, "/a", 0, 2, "ab"));
    CHECK_OK(nczmap_write(map, "/b", 0, 2, "cd"));
    CHECK_OK(nczmap_truncate(map, "/a", gib));
    CHECK_OK(nczmap_truncate(map, "/a", 2));
    CHECK_OK(nczmap_truncate(map, "/a", gib));
    CHECK_OK(nczmap_write(map, "/c", gib, 1, "x"));
    long long held = allocated(path);
    if (held > (16LL << 20)) fprintf(stderr, "%s holds %lld bytes\n", path, held);
    CHECK(held >= 0 && held <= (16LL << 20));
    CHECK_OK(nczmap_close(map, 0));
    held = allocated(path);
    CHECK(held >= 0 && held <= (16LL << 20));

    CHECK_OK(nczmap_open(NCZM_GNZ, path, 0, 0, NULL, &map));
    if (map == NULL) return;
    size64_t len = 0;
    CHECK_OK(nczmap_len(map, "/a", &len));
    CHECK(len == gib);
    CHECK_OK(nczmap_len(map, "/c", &len));
    CHECK(len == gib + 1);
    static const size64_t probes[] = {2, 4096, (size64_t)1 << 29, ((size64_t)1 << 30) - 16};
    for (size_t i = 0; i < sizeof probes / sizeof probes[0]; i++) {
        unsigned char got[16], zeros[16] = {0};
        memset(got, 0xa5, sizeof got);
        CHECK_OK(nczmap_read(map, "/a", probes[i], sizeof got, got));
        CHECK(memcmp(got, zeros, sizeof got) == 0);
        memset(got, 0xa5, sizeof got);
        CHECK_OK(nczmap_read(map, "/c", probes[i], sizeof got, got));
        CHECK(memcmp(got, zeros, sizeof got) == 0);
    }
    unsigned char two[2];
    CHECK_OK(nczmap_read(map, "/a", 0, 2, two));
    CHECK(memcmp(two, "ab", 2) == 0);
    CHECK_OK(nczmap_read(map, "/c", gib, 1, two));
    CHECK(two[0] == 'x');
    CHECK_OK(nczmap_close(map, 0));
    unlink(path);
}

int main(int argc, char **argv) {
    if (argc < 2) {
        fprintf(stderr, "usage: %s gnz\n", argv[0]);
        return 2;
    }
    if (zt_backend(argv[1]) != NCZM_GNZ) {
        printf("skipped: a GNZ test\n");
        return 77;
    }
    snprintf(dir, sizeof dir, "%s", zt_tmpdir());
    delete_after_chdir();
    delete_after_rename_and_replace(1);
    delete_after_rename_and_replace(0);
    delete_after_directory_rename();
    delete_after_someone_else_did();
    symlinks();
    create_refuses_unparsable();
    generations();
    fault_variable_is_ignored();
    library_has_no_hook();
    sparse_claims_are_bounded();
    gaps_take_no_disk();
    zt_cleanup();
    return zt_finish("test_gnz_safety");
}
