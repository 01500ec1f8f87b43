/* The GNZ backend through the public header: NCZM_DEFAULT is GNZ; the file
 * is a GNZ file after every commit; what a flush commits, a map opened
 * afterwards sees (and what it has not committed, no one sees); compaction
 * shrinks a file with holes and reports its size before and after; one
 * writer at a time (the lock is per open file description, so a second
 * writable open in the same process is refused as a second process is, shown
 * with fork()); many small objects written behind the writer's back, also
 * across a fork; a forked child's copies of the parent's maps (writes
 * refused, closes that leave the parent's locks alone); bad files and
 * foreign files; delete.
 */
#include "harness.h"

#include <dirent.h>
#include <stdint.h>
#include <sys/stat.h>
#include <sys/wait.h>

static char path[4200];

static long long file_size(const char *p) {
    struct stat st;
    return stat(p, &st) == 0 ? (long long)st.st_size : -1;
}

static void fill(unsigned char *buf, size_t n, unsigned seed) {
    for (size_t i = 0; i < n; i++) buf[i] = (unsigned char)(seed * 31u + i * 7u + (i >> 9));
}

/* 1 if the object `key` of `map` holds `n` bytes made by fill(seed). */
static int holds(NCZMAP *map, const char *key, size_t n, unsigned seed) {
    size64_t len = 0;
    if (nczmap_len(map, key, &len) != NC_NOERR || len != n) return 0;
    unsigned char *want = malloc(n + 1), *got = malloc(n + 1);
    int ok = want && got;
    if (ok) {
        fill(want, n, seed);
        ok = nczmap_read(map, key, 0, n, got) == NC_NOERR && memcmp(want, got, n) == 0;
    }
    free(want);
    free(got);
    return ok;
}

static void write_obj(NCZMAP *map, const char *key, size_t n, unsigned seed) {
    unsigned char *buf = malloc(n + 1);
    fill(buf, n, seed);
    CHECK_OK(nczmap_write(map, key, 0, n, buf));
    free(buf);
}

static void test_default_is_gnz_file(void) {
    NCZMAP *map = NULL;
    CHECK(NCZM_DEFAULT == NCZM_GNZ);
    CHECK_OK(nczmap_create(NCZM_DEFAULT, path, 0, 0, NULL, &map));
    if (map == NULL) return;
    CHECK(map->format == NCZM_GNZ);
    CHECK_OK(nczmap_defineobj(map, "/.nczarr"));
    CHECK_OK(nczmap_write(map, "/meta1/.zarray", 0, 3, "{ }"));
    CHECK_OK(nczmap_close(map, 0));
    /* One regular file, starting with the magic and a JSON header naming
     * the objects as arrays. */
    FILE *f = fopen(path, "rb");
    CHECK(f != NULL);
    if (f == NULL) return;
    unsigned char head[8];
    char json[512] = {0};
    CHECK(fread(head, 1, 8, f) == 8);
    CHECK(memcmp(head, "GNZ1", 4) == 0);
    uint32_t hlen = (uint32_t)head[4] | (uint32_t)head[5] << 8 | (uint32_t)head[6] << 16 |
                    (uint32_t)head[7] << 24;
    CHECK(hlen > 0 && hlen < sizeof json);
    if (hlen < sizeof json) CHECK(fread(json, 1, hlen, f) == hlen);
    fclose(f);
    CHECK(json[0] == '{');
    CHECK(strstr(json, "\"/meta1/.zarray\": {\"dtype\": \"|u1\"") != NULL);
    CHECK(strstr(json, "\"shape\": [3]") != NULL);
    CHECK(file_size(path) % 4096 == 0);
}

static void test_commit_and_reopen(void) {
    NCZMAP *w = NULL, *r = NULL;
    CHECK_OK(nczmap_create(NCZM_GNZ, path, 0, 0, NULL, &w));
    if (w == NULL) return;
    CHECK_OK(nczmap_defineobj(w, "/.zgroup"));
    write_obj(w, "/data/0", 10000, 1);
    write_obj(w, "/data/1", 100, 2);
    CHECK_OK(nczmap_flush(w));
    /* A reader opened after the commit sees it ... */
    CHECK_OK(nczmap_open(NCZM_GNZ, path, 0, 0, NULL, &r));
    CHECK(holds(r, "/data/0", 10000, 1));
    CHECK(holds(r, "/data/1", 100, 2));
    /* ... but not what is written after it, even once committed: it keeps
     * its snapshot. */
    write_obj(w, "/data/0", 10000, 3);
    CHECK_OK(nczmap_remove(w, "/data/1"));
    CHECK_OK(nczmap_flush(w));
    CHECK(holds(r, "/data/0", 10000, 1));
    CHECK(holds(r, "/data/1", 100, 2));
    CHECK_OK(nczmap_close(r, 0));
    r = NULL;
    CHECK_OK(nczmap_open(NCZM_GNZ, path, 0, 0, NULL, &r));
    CHECK(holds(r, "/data/0", 10000, 3));
    CHECK_CODE(nczmap_exists(r, "/data/1"), NC_EEMPTY);
    /* Uncommitted writes stay invisible to new readers. */
    write_obj(w, "/data/2", 50, 4);
    NCZMAP *r2 = NULL;
    CHECK_OK(nczmap_open(NCZM_GNZ, path, 0, 0, NULL, &r2));
    CHECK_CODE(nczmap_exists(r2, "/data/2"), NC_EEMPTY);
    CHECK_OK(nczmap_close(r2, 0));
    CHECK_OK(nczmap_close(w, 0));
    CHECK_OK(nczmap_close(r, 0));
    /* close(map, 0) committed. */
    CHECK_OK(nczmap_open(NCZM_GNZ, path, 0, 0, NULL, &r));
    CHECK(holds(r, "/data/2", 50, 4));
    /* The table API reads the same. */
    unsigned char b[50], want[50];
    fill(want, 50, 4);
    CHECK_OK(r->api->read(r, "/data/2", 0, 50, b));
    CHECK(memcmp(b, want, 50) == 0);
    NClist *names = nclistnew();
    CHECK_OK(nczmap_search(r, "/data", names));
    CHECK(nclistlength(names) == 2);
    nclistfreeall(names);
    CHECK_OK(nczmap_close(r, 0));
}

static void test_compact(void) {
    NCZMAP *map = NULL;
    char key[64];
    size64_t before = 1, after = 1;
    CHECK_OK(nczmap_create(NCZM_GNZ, path, 0, 0, NULL, &map));
    if (map == NULL) return;
    CHECK_OK(nczmap_defineobj(map, "/.zgroup"));
    /* Large objects first, small ones after them: removing the large ones
     * leaves holes in front of the small ones. */
    for (unsigned i = 0; i < 40; i++) {
        unsigned k = i < 20 ? 2 * i : 2 * (i - 20) + 1;
        snprintf(key, sizeof key, "/v/%u", k);
        write_obj(map, key, k % 2 ? 300 : 9000, k);
    }
    CHECK_OK(nczmap_flush(map));
    for (unsigned i = 0; i < 40; i += 2) {
        snprintf(key, sizeof key, "/v/%u", i);
        CHECK_OK(nczmap_remove(map, key));
    }
    CHECK_OK(nczmap_compact(map, &before, &after));
    CHECK(before > 20 * 12288);
    CHECK(after < 3 * 4096);
    CHECK(after < before / 2);
    CHECK((long long)after == file_size(path));
    for (unsigned i = 1; i < 40; i += 2) {
        snprintf(key, sizeof key, "/v/%u", i);
        CHECK(holds(map, key, 300, i));
    }
    /* Nothing left to gain; NULL size pointers are fine. */
    size64_t b2 = 0, a2 = 0;
    CHECK_OK(nczmap_compact(map, &b2, &a2));
    CHECK(b2 == after && a2 == after);
    CHECK_OK(nczmap_compact(map, NULL, NULL));
    /* With a reader open compaction works around its snapshot (packed
     * already: nothing to do), and the reader reads its objects. */
    NCZMAP *r = NULL;
    CHECK_OK(nczmap_open(NCZM_GNZ, path, 0, 0, NULL, &r));
    CHECK_OK(nczmap_compact(map, &b2, &a2));
    CHECK(b2 == after && a2 == after);
    for (unsigned i = 1; i < 40; i += 2) {
        snprintf(key, sizeof key, "/v/%u", i);
        CHECK(holds(r, key, 300, i));
    }
    CHECK_CODE(nczmap_compact(r, NULL, NULL), NC_EPERM);
    CHECK_OK(nczmap_close(r, 0));
    CHECK_OK(nczmap_close(map, 0));
    CHECK_OK(nczmap_open(NCZM_GNZ, path, 0, 0, NULL, &r));
    for (unsigned i = 1; i < 40; i += 2) {
        snprintf(key, sizeof key, "/v/%u", i);
        CHECK(holds(r, key, 300, i));
    }
    CHECK_OK(nczmap_close(r, 0));
    CHECK_CODE(nczmap_compact(NULL, &b2, &a2), NC_EINVAL);
    /* Other backends have nothing to compact. */
    char mem[256];
    zt_dataset("mem", "compact", mem, sizeof mem);
    CHECK_OK(nczmap_create(NCZM_MEM, mem, 0, 0, NULL, &map));
    b2 = a2 = 7;
    CHECK_OK(nczmap_compact(map, &b2, &a2));
    CHECK(b2 == 0 && a2 == 0);
    CHECK_OK(nczmap_close(map, 1));
}

static void test_one_writer(void) {
    NCZMAP *w = NULL, *w2 = NULL, *r = NULL;
    CHECK_OK(nczmap_create(NCZM_GNZ, path, 0, 0, NULL, &w));
    if (w == NULL) return;
    CHECK_OK(nczmap_defineobj(w, "/.zgroup"));
    CHECK_OK(nczmap_flush(w));
    /* Same process, second open: refused at once, *mapp stays NULL. */
    CHECK_CODE(nczmap_open(NCZM_GNZ, path, NC_WRITE, 0, NULL, &w2), NC_EACCESS);
    CHECK(w2 == NULL);
    CHECK_CODE(nczmap_create(NCZM_GNZ, path, 0, 0, NULL, &w2), NC_EACCESS);
    CHECK_CODE(nczmap_create(NCZM_GNZ, path, NC_NOCLOBBER, 0, NULL, &w2), NC_EACCESS);
    /* Readers are welcome. */
    CHECK_OK(nczmap_open(NCZM_GNZ, path, 0, 0, NULL, &r));
    CHECK_OK(nczmap_exists(r, "/.zgroup"));
    /* Another process: refused too. */
    fflush(NULL);
    pid_t pid = fork();
    if (pid == 0) {
        NCZMAP *c = NULL;
        int rc = nczmap_open(NCZM_GNZ, path, NC_WRITE, 0, NULL, &c);
        _exit(rc == NC_EACCESS && c == NULL ? 0 : 1);
    }
    int status = -1;
    CHECK(pid > 0 && waitpid(pid, &status, 0) == pid);
    CHECK(WIFEXITED(status) && WEXITSTATUS(status) == 0);
    CHECK_OK(nczmap_close(w, 0));
    /* Once the writer is gone, another process may write. */
    fflush(NULL);
    pid = fork();
    if (pid == 0) {
        NCZMAP *c = NULL;
        int rc = nczmap_open(NCZM_GNZ, path, NC_WRITE, 0, NULL, &c);
        if (rc == NC_NOERR) rc = nczmap_write(c, "/child", 0, 2, "ok");
        if (rc == NC_NOERR) rc = nczmap_close(c, 0);
        _exit(rc == NC_NOERR ? 0 : 1);
    }
    CHECK(pid > 0 && waitpid(pid, &status, 0) == pid);
    CHECK(WIFEXITED(status) && WEXITSTATUS(status) == 0);
    CHECK_CODE(nczmap_exists(r, "/child"), NC_EEMPTY); /* its snapshot */
    CHECK_OK(nczmap_close(r, 0));
    CHECK_OK(nczmap_open(NCZM_GNZ, path, NC_WRITE, 0, NULL, &w));
    CHECK_OK(nczmap_exists(w, "/child"));
    CHECK_OK(nczmap_close(w, 0));
}

/* Many small objects: each full stage (1 MiB) is written by a worker thread
 * while the writer goes on (DESIGN.md, "Staging"). The writer reads its own
 * writes wherever they are (staged, in flight, in the file); a process forked
 * while a write-out may be in flight answers exists and len through its copy
 * of the map, but reads, writes, commits and deletes nothing (NC_EPERM: the
 * parent's worker writes what was in flight); the parent's commit holds
 * every object. */
/* The threads of this process (Linux: the entries of /proc/self/task). */
static int thread_count(void) {
    DIR *d = opendir("/proc/self/task");
    if (d == NULL) return -1;
    int n = 0;
    for (struct dirent *e; (e = readdir(d)) != NULL;) n += e->d_name[0] != '.';
    closedir(d);
    return n;
}

static void test_many_small_objects_and_fork(void) {
    enum { N = 6000, SIZE = 1000 };
    char many[4300], key[64];
    NCZMAP *w = NULL, *r = NULL;
    snprintf(many, sizeof many, "%s.many", path);
    int threads_before = thread_count();
    CHECK_OK(nczmap_create(NCZM_GNZ, many, 0, 0, NULL, &w));
    if (w == NULL) return;
    for (int i = 0; i < N; i++) {
        snprintf(key, sizeof key, "/v%d/c.%d", i % 10, i);
        write_obj(w, key, SIZE, (unsigned)i);
    }
    int bad = 0;
    for (int i = 0; i < N; i += 7) {
        snprintf(key, sizeof key, "/v%d/c.%d", i % 10, i);
        bad += !holds(w, key, SIZE, (unsigned)i);
    }
    CHECK(bad == 0);
    /* One thread more: the write-behind worker. */
    CHECK(thread_count() == threads_before + 1);
    /* More writes: the last full stage is in flight when the fork comes. */
    for (int i = N; i < N + 1100; i++) {
        snprintf(key, sizeof key, "/v%d/c.%d", i % 10, i);
        write_obj(w, key, SIZE, (unsigned)i);
    }
    fflush(NULL);
    pid_t pid = fork();
    if (pid == 0) {
        /* The parent's writer: the child answers from memory what needs no
         * file, and neither reads, writes, commits nor deletes (the queued
         * write-outs are the parent's worker's to write). */
        int child_bad = 0;
        unsigned char buf[SIZE];
        for (int i = N - 1500; i < N + 1100; i++) {
            snprintf(key, sizeof key, "/v%d/c.%d", i % 10, i);
            size64_t len = 0;
            child_bad += nczmap_exists(w, key) != NC_NOERR;
            child_bad += nczmap_len(w, key, &len) != NC_NOERR || len != SIZE;
            child_bad += nczmap_read(w, key, 0, SIZE, buf) != NC_EPERM;
        }
        child_bad += nczmap_write(w, "/child", 0, 2, "ch") != NC_EPERM;
        child_bad += nczmap_remove(w, "/v0/c.0") != NC_EPERM;
        child_bad += nczmap_flush(w) != NC_EPERM;
        child_bad += nczmap_close(w, 1) != NC_EPERM;
        _exit(child_bad == 0 ? 0 : 1);
    }
    int status = -1;
    CHECK(pid > 0 && waitpid(pid, &status, 0) == pid);
    CHECK(WIFEXITED(status) && WEXITSTATUS(status) == 0);
    CHECK_OK(nczmap_close(w, 0));
    /* The worker ended with the map. */
    CHECK(thread_count() == threads_before);
    CHECK_OK(nczmap_open(NCZM_GNZ, many, 0, 0, NULL, &r));
    if (r == NULL) return;
    bad = 0;
    for (int i = 0; i < N + 1100; i++) {
        snprintf(key, sizeof key, "/v%d/c.%d", i % 10, i);
        bad += !holds(r, key, SIZE, (unsigned)i);
    }
    CHECK(bad == 0);
    CHECK_OK(nczmap_close(r, 1));
    CHECK(file_size(many) == -1);
}

/* A forked child shares the parent's file descriptions, and so its locks:
 * what the child does with its copies of the parent's maps must not end the
 * parent's locks or reach the file. */
static void test_fork_leaves_the_parents_maps_alone(void) {
    char shared[4300];
    snprintf(shared, sizeof shared, "%s.forked", path);
    NCZMAP *w = NULL, *r = NULL, *c = NULL;
    CHECK_OK(nczmap_create(NCZM_GNZ, shared, 0, 0, NULL, &w));
    if (w == NULL) return;
    write_obj(w, "/x", 4096, 1);
    CHECK_OK(nczmap_close(w, 0));
    CHECK_OK(nczmap_open(NCZM_GNZ, shared, 0, 0, NULL, &r));
    CHECK_OK(nczmap_open(NCZM_GNZ, shared, NC_WRITE, 0, NULL, &w));
    if (r == NULL || w == NULL) return;
    /* The child writes and closes both maps, as a child cleaning up would:
     * its write is refused, its closes end only its copies. */
    fflush(NULL);
    pid_t pid = fork();
    if (pid == 0) {
        int bad = nczmap_write(w, "/child", 0, 2, "ch") != NC_EPERM;
        bad += !holds(r, "/x", 4096, 1);
        bad += nczmap_close(w, 0) != NC_NOERR;
        bad += nczmap_close(r, 0) != NC_NOERR;
        _exit(bad == 0 ? 0 : 1);
    }
    int status = -1;
    CHECK(pid > 0 && waitpid(pid, &status, 0) == pid);
    CHECK(WIFEXITED(status) && WEXITSTATUS(status) == 0);
    /* The parent's writer still holds the writer lock... */
    fflush(NULL);
    pid = fork();
    if (pid == 0) {
        int rc = nczmap_open(NCZM_GNZ, shared, NC_WRITE, 0, NULL, &c);
        _exit(rc == NC_EACCESS && c == NULL ? 0 : 1);
    }
    CHECK(pid > 0 && waitpid(pid, &status, 0) == pid);
    CHECK(WIFEXITED(status) && WEXITSTATUS(status) == 0);
    /* ...and its reader its commit: rewrites do not reuse /x's bytes. */
    for (unsigned round = 2; round < 8; round++) {
        write_obj(w, "/x", 4096, round);
        CHECK_OK(nczmap_flush(w));
    }
    CHECK(holds(r, "/x", 4096, 1));
    CHECK_OK(nczmap_close(w, 0));
    CHECK(holds(r, "/x", 4096, 1));
    CHECK_CODE(nczmap_exists(r, "/child"), NC_EEMPTY);
    CHECK_OK(nczmap_close(r, 0));
    /* The child's write is nowhere; the parent's last commit is. */
    CHECK_OK(nczmap_open(NCZM_GNZ, shared, 0, 0, NULL, &r));
    if (r == NULL) return;
    CHECK_CODE(nczmap_exists(r, "/child"), NC_EEMPTY);
    CHECK(holds(r, "/x", 4096, 7));
    CHECK_OK(nczmap_close(r, 1));
}

static void test_bad_and_foreign_files(void) {
    NCZMAP *map = NULL;
    FILE *f = fopen(path, "wb");
    CHECK(f != NULL);
    if (f == NULL) return;
    static const char cut[] = "GNZ1\x05\x00\x00\x00{\"arr"; /* JSON cut short */
    CHECK(fwrite(cut, 1, sizeof cut - 1, f) == sizeof cut - 1);
    fclose(f);
    CHECK_CODE(nczmap_open(NCZM_GNZ, path, 0, 0, NULL, &map), NC_ENOTNC);
    CHECK_CODE(nczmap_open(NCZM_GNZ, path, NC_WRITE, 0, NULL, &map), NC_ENOTNC);
    CHECK(map == NULL);
    f = fopen(path, "wb");
    CHECK(f != NULL);
    if (f == NULL) return;
    fputs("just some text, not a dataset\n", f);
    fclose(f);
    CHECK_CODE(nczmap_open(NCZM_GNZ, path, 0, 0, NULL, &map), NC_ENOTNC);
    CHECK_CODE(nczmap_create(NCZM_GNZ, path, 0, 0, NULL, &map), NC_EEXIST);
    CHECK(file_size(path) == 30);
    CHECK(remove(path) == 0);
    CHECK_CODE(nczmap_open(NCZM_GNZ, path, 0, 0, NULL, &map), NC_EEMPTY);
}

static void test_delete(void) {
    NCZMAP *map = NULL;
    CHECK_OK(nczmap_create(NCZM_GNZ, path, 0, 0, NULL, &map));
    if (map == NULL) return;
    CHECK_OK(nczmap_write(map, "/.nczarr", 0, 2, "{}"));
    CHECK_OK(nczmap_close(map, 1));
    CHECK(file_size(path) == -1);
    CHECK_CODE(nczmap_open(NCZM_GNZ, path, 0, 0, NULL, &map), NC_EEMPTY);
}

int main(void) {
    zt_dataset("gnz", "test_gnz", path, sizeof path);
    test_default_is_gnz_file();
    test_commit_and_reopen();
    test_compact();
    test_one_writer();
    test_many_small_objects_and_fork();
    test_fork_leaves_the_parents_maps_alone();
    test_bad_and_foreign_files();
    test_delete();
    zt_cleanup();
    return zt_finish("test_gnz");
}
