/* GNZ with several processes (gnz-format.md Part 2b, DESIGN.md "Locks"):
 *
 * 1. One writer: while a process holds a writable map, a second writer
 *    (another process, or a second open in the same process) is refused at
 *    once with NC_EACCESS — nczmap_open(NC_WRITE) and nczmap_create with or
 *    without NC_NOCLOBBER alike, and the refused create empties nothing. The
 *    attempts run in a child bounded by alarm(): blocking kills it. Readers
 *    are not refused. The lock goes with the writer: after close, and after
 *    the writer process is killed, a new writer gets in.
 * 2. A reader that opens after a commit sees exactly that commit (not the
 *    writer's later, uncommitted writes); after the next commit a new
 *    reader sees the new one.
 * 3. A reader opened before commits keeps its snapshot, byte for byte, while
 *    the writer removes, rewrites, grows and adds objects (reusing freed
 *    space if it could) over several commits and compacts; compaction
 *    works while the reader lives (around its snapshot) and after it
 *    closed. Also when the writer opens after the reader, and for a reader
 *    in the writer's own process.
 *    Also when that commit makes the header region grow (a few new keys
 *    after a compaction), moving objects out of the header's way.
 * 4. Readers opening and closing in a loop while the writer commits 60
 *    generations: each one sees exactly one whole generation, never older
 *    than the previous reader's (the header lock: no half-written header).
 * 5. Space reuse around readers (DESIGN.md, "Reader protocol"): a reader
 *    process holds a 1 MiB object's first version while the writer rewrites
 *    it 200 times with a flush each: the file stays within 3 MiB plus the
 *    1 MiB that snapshot pins, and the snapshot reads back whole. A second
 *    reader process, of a later commit, is killed with SIGKILL: the space
 *    its snapshot pinned is reused after the writer's next commit.
 */
// zmap-test-backends: gnz
#include "harness.h"

#include <errno.h>
#include <signal.h>
#include <stdint.h>
#include <sys/stat.h>
#include <sys/types.h>
#include <sys/wait.h>

static char path[4096];

/* ---- dataset states ------------------------------------------------------------ */

#define MAXOBJ 16
typedef struct {
    const char *key;
    size_t len;
    int version;
} Obj;
typedef struct {
    int n;
    Obj o[MAXOBJ];
} State;

static unsigned char byte_of(const char *key, int version, size_t k) {
    uint64_t h = 1469598103934665603ULL;
    for (const char *p = key; *p; p++) h = (h ^ (unsigned char)*p) * 1099511628211ULL;
    h ^= (uint64_t)version * 0x9E3779B97F4A7C15ULL + (k / 8) * 0xC2B2AE3D27D4EB4FULL;
    h ^= h >> 31;
    h *= 0xBF58476D1CE4E5B9ULL;
    h ^= h >> 29;
    return (unsigned char)(h >> (8 * (k % 8)));
}

static unsigned char *buf; /* 1 MiB */
#define BUFLEN (1024 * 1024)

static int set_obj(NCZMAP *map, State *s, const char *key, size_t len, int version) {
    for (size_t k = 0; k < len; k++) buf[k] = byte_of(key, version, k);
    int rc = len ? nczmap_write(map, key, 0, len, buf) : nczmap_defineobj(map, key);
    int i = 0;
    while (i < s->n && strcmp(s->o[i].key, key) != 0) i++;
    size64_t old = 0;
    if (i < s->n) old = s->o[i].len;
    if (rc == NC_NOERR && old > len) rc = nczmap_truncate(map, key, len);
    if (i == s->n) s->n++;
    s->o[i].key = key;
    s->o[i].len = len;
    s->o[i].version = version;
    return rc;
}

static int remove_obj(NCZMAP *map, State *s, const char *key) {
    for (int i = 0; i < s->n; i++) {
        if (strcmp(s->o[i].key, key) == 0) {
            s->o[i] = s->o[--s->n];
            break;
        }
    }
    return nczmap_remove(map, key);
}

static int count_objects(NCZMAP *map) {
    int found = 0;
    NClist *stack = nclistnew(), *kids = nclistnew();
    nclistpush(stack, strdup("/"));
    while (nclistlength(stack) > 0) {
        char *prefix = nclistpop(stack);
        nclistclear(kids);
        if (nczmap_search(map, prefix, kids) != NC_NOERR) found = -1000;
        for (size_t k = 0; k < nclistlength(kids); k++) {
            char *child = nclistget(kids, k);
            if (nczmap_exists(map, child) == NC_NOERR) found++;
            nclistpush(stack, child);
        }
        free(prefix);
    }
    nclistfreeall(stack);
    nclistfree(kids);
    return found;
}

/* 0 if `map` shows exactly state `s`; else the number of differences
 * (described on stderr, prefixed with `who`). */
static int differs(NCZMAP *map, const State *s, const char *who) {
    int bad = 0;
    for (int i = 0; i < s->n; i++) {
        size64_t len = 0;
        int rc = nczmap_len(map, s->o[i].key, &len);
        if (rc != NC_NOERR || len != s->o[i].len) {
            fprintf(stderr, "  %s: %s: len rc %d, %llu bytes, expected %zu\n", who, s->o[i].key,
                    rc, (unsigned long long)len, s->o[i].len);
            bad++;
            continue;
        }
        if (len && nczmap_read(map, s->o[i].key, 0, len, buf) != NC_NOERR) {
            fprintf(stderr, "  %s: %s: read failed\n", who, s->o[i].key);
            bad++;
            continue;
        }
        for (size_t k = 0; k < len; k++) {
            if (buf[k] != byte_of(s->o[i].key, s->o[i].version, k)) {
                fprintf(stderr, "  %s: %s: byte %zu differs (version %d expected)\n", who,
                        s->o[i].key, k, s->o[i].version);
                bad++;
                break;
            }
        }
    }
    int n = count_objects(map);
    if (n != s->n) {
        fprintf(stderr, "  %s: %d objects, expected %d\n", who, n, s->n);
        bad++;
    }
    return bad;
}

/* ---- processes ---------------------------------------------------------------- */

typedef struct {
    pid_t pid;
    int to_child, from_child;
} Child;

static void send1(int fd) {
    char c = 1;
    if (write(fd, &c, 1) != 1) perror("pipe write");
}

static int recv1(int fd) {
    char c;
    ssize_t n;
    while ((n = read(fd, &c, 1)) < 0 && errno == EINTR) {
    }
    return n == 1;
}

/* Forks a child running fn(arg, from_parent, to_parent) with alarm(20): a
 * child that blocks dies of SIGALRM. Its exit status is its failure count. */
static Child spawn(int (*fn)(void *, int, int), void *arg) {
    int down[2], up[2];
    Child c = {-1, -1, -1};
    if (pipe(down) != 0 || pipe(up) != 0) {
        perror("pipe");
        exit(2);
    }
    fflush(stdout);
    fflush(stderr);
    c.pid = fork();
    if (c.pid < 0) {
        perror("fork");
        exit(2);
    }
    if (c.pid == 0) {
        close(down[1]);
        close(up[0]);
        alarm(20);
        int failures = fn(arg, down[0], up[1]);
        _exit(failures > 100 ? 100 : failures);
    }
    close(down[0]);
    close(up[1]);
    c.to_child = down[1];
    c.from_child = up[0];
    return c;
}

/* Waits for the child; CHECKs that it exited with 0 failures. */
static void reap(Child c, const char *what) {
    int status = 0;
    close(c.to_child);
    close(c.from_child);
    while (waitpid(c.pid, &status, 0) < 0 && errno == EINTR) {
    }
    int ok = WIFEXITED(status) && WEXITSTATUS(status) == 0;
    if (!ok) {
        if (WIFSIGNALED(status))
            fprintf(stderr, "  %s: child died of signal %d%s\n", what, WTERMSIG(status),
                    WTERMSIG(status) == SIGALRM ? " (it blocked)" : "");
        else
            fprintf(stderr, "  %s: child had %d failures\n", what, WEXITSTATUS(status));
    }
    CHECK(ok);
}

/* Child-side checks: count failures instead of the harness counters. */
#define EXPECT(cond, ...)                                \
    do {                                                 \
        if (!(cond)) {                                   \
            fprintf(stderr, "  child: " __VA_ARGS__);    \
            fprintf(stderr, "\n");                       \
            failures++;                                  \
        }                                                \
    } while (0)

/* ---- 1. one writer ------------------------------------------------------------- */

static State committed; /* what the last commit holds */

static int second_writer(void *arg, int in, int out) {
    (void)arg;
    (void)in;
    (void)out;
    int failures = 0, rc;
    NCZMAP *map = NULL;
    rc = nczmap_open(NCZM_GNZ, path, NC_WRITE, 0, NULL, &map);
    EXPECT(rc == NC_EACCESS && map == NULL, "open(NC_WRITE) gave %d, not NC_EACCESS", rc);
    rc = nczmap_create(NCZM_GNZ, path, NC_NOCLOBBER, 0, NULL, &map);
    EXPECT(rc == NC_EACCESS && map == NULL, "create(NC_NOCLOBBER) gave %d, not NC_EACCESS", rc);
    rc = nczmap_create(NCZM_GNZ, path, NC_CLOBBER, 0, NULL, &map);
    EXPECT(rc == NC_EACCESS && map == NULL, "create(NC_CLOBBER) gave %d, not NC_EACCESS", rc);
    /* A reader is welcome, and sees the commit. */
    rc = nczmap_open(NCZM_GNZ, path, NC_NOWRITE, 0, NULL, &map);
    EXPECT(rc == NC_NOERR, "read-only open gave %d", rc);
    if (rc == NC_NOERR) {
        failures += differs(map, &committed, "reader beside a writer");
        EXPECT(nczmap_close(map, 0) == NC_NOERR, "close");
    }
    return failures;
}

static int writer_gets_in(void *arg, int in, int out) {
    int hold = arg != NULL;
    int failures = 0;
    NCZMAP *map = NULL;
    int rc = nczmap_open(NCZM_GNZ, path, NC_WRITE, 0, NULL, &map);
    EXPECT(rc == NC_NOERR, "open(NC_WRITE) gave %d", rc);
    if (rc != NC_NOERR) return failures;
    failures += differs(map, &committed, "new writer");
    if (hold) {
        send1(out);
        recv1(in); /* never comes: the parent kills us */
        failures++;
    }
    EXPECT(nczmap_close(map, 0) == NC_NOERR, "close");
    return failures;
}

static void one_writer(void) {
    NCZMAP *w = NULL, *other = NULL;
    State s = {0, {{0}}};
    CHECK_OK(nczmap_create(NCZM_GNZ, path, 0, 0, NULL, &w));
    CHECK_OK(set_obj(w, &s, "/.zgroup", 20, 1));
    CHECK_OK(set_obj(w, &s, "/s/a", 10000, 1));
    CHECK_OK(set_obj(w, &s, "/s/b", 5000, 1));
    CHECK_OK(set_obj(w, &s, "/s/c", 100, 1));
    CHECK_OK(set_obj(w, &s, "/s/d", 0, 1));
    CHECK_OK(set_obj(w, &s, "/s/e.f/g", 70000, 1));
    CHECK_OK(nczmap_flush(w));
    committed = s;

    reap(spawn(second_writer, NULL), "second writer while the first is open");
    /* A second writer in the same process too. */
    CHECK_CODE(nczmap_open(NCZM_GNZ, path, NC_WRITE, 0, NULL, &other), NC_EACCESS);
    CHECK_CODE(nczmap_create(NCZM_GNZ, path, NC_CLOBBER, 0, NULL, &other), NC_EACCESS);
    CHECK(other == NULL);
    CHECK(differs(w, &committed, "writer after refused creates") == 0);
    CHECK_OK(nczmap_close(w, 0));

    /* The lock goes with close ... */
    reap(spawn(writer_gets_in, NULL), "writer after close");
    /* ... and with the process. */
    Child holder = spawn(writer_gets_in, (void *)1);
    CHECK(recv1(holder.from_child));
    CHECK_CODE(nczmap_open(NCZM_GNZ, path, NC_WRITE, 0, NULL, &other), NC_EACCESS);
    kill(holder.pid, SIGKILL);
    int status;
    while (waitpid(holder.pid, &status, 0) < 0 && errno == EINTR) {
    }
    CHECK(WIFSIGNALED(status) && WTERMSIG(status) == SIGKILL);
    close(holder.to_child);
    close(holder.from_child);
    CHECK_OK(nczmap_open(NCZM_GNZ, path, NC_WRITE, 0, NULL, &other));
    if (other) {
        CHECK(differs(other, &committed, "writer after a killed writer") == 0);
        CHECK_OK(nczmap_close(other, 0));
    }
}

/* ---- 2. readers after a commit ---------------------------------------------------- */

static int reader_sees(void *arg, int in, int out) {
    (void)in;
    (void)out;
    const State *want = arg;
    int failures = 0;
    NCZMAP *map = NULL;
    int rc = nczmap_open(NCZM_GNZ, path, NC_NOWRITE, 0, NULL, &map);
    EXPECT(rc == NC_NOERR, "read-only open gave %d", rc);
    if (rc != NC_NOERR) return failures;
    failures += differs(map, want, "reader after a commit");
    EXPECT(nczmap_close(map, 0) == NC_NOERR, "close");
    return failures;
}

static void readers_after_commit(void) {
    NCZMAP *w = NULL;
    State s = committed;
    CHECK_OK(nczmap_open(NCZM_GNZ, path, NC_WRITE, 0, NULL, &w));
    CHECK_OK(set_obj(w, &s, "/s/a", 12000, 2));
    CHECK_OK(set_obj(w, &s, "/s/c", 50, 2));
    CHECK_OK(remove_obj(w, &s, "/s/d"));
    CHECK_OK(nczmap_flush(w));
    State v2 = s;
    /* Written but not committed: no reader may see it. */
    CHECK_OK(set_obj(w, &s, "/s/a", 12000, 3));
    CHECK_OK(set_obj(w, &s, "/s/new", 3000, 3));
    CHECK_OK(remove_obj(w, &s, "/s/b"));
    reap(spawn(reader_sees, &v2), "reader after a commit, before the next");
    CHECK_OK(nczmap_flush(w));
    reap(spawn(reader_sees, &s), "reader after the next commit");
    committed = s;
    CHECK_OK(nczmap_close(w, 0));
}

/* ---- 3. snapshots ------------------------------------------------------------------ */

static int snapshot_reader(void *arg, int in, int out) {
    const State *want = arg;
    int failures = 0;
    NCZMAP *map = NULL;
    int rc = nczmap_open(NCZM_GNZ, path, NC_NOWRITE, 0, NULL, &map);
    EXPECT(rc == NC_NOERR, "read-only open gave %d", rc);
    if (rc != NC_NOERR) {
        send1(out);
        return failures;
    }
    /* Read half of it now, all of it after the writer's commits. */
    State half = *want;
    half.n = 0;
    for (int i = 0; i < want->n; i += 2) half.o[half.n++] = want->o[i];
    unsigned char probe[16];
    for (int i = 0; i < half.n; i++)
        if (half.o[i].len) nczmap_read(map, half.o[i].key, 0, 1, probe);
    send1(out);
    EXPECT(recv1(in), "no go from the parent");
    failures += differs(map, want, "reader's snapshot after the writer's commits");
    EXPECT(nczmap_close(map, 0) == NC_NOERR, "close");
    return failures;
}

/* Changes that would reuse freed space if they could, in two commits. */
static void churn(NCZMAP *w, State *s, int version) {
    CHECK_OK(remove_obj(w, s, "/s/e.f/g"));                  /* 70000 B freed */
    CHECK_OK(set_obj(w, s, "/s/x", 70000, version));          /* same size */
    CHECK_OK(set_obj(w, s, "/s/a", 12000, version));          /* rewritten */
    CHECK_OK(nczmap_flush(w));
    CHECK_OK(set_obj(w, s, "/s/c", 9000, version));           /* grows, moves */
    CHECK_OK(set_obj(w, s, "/s/e.f/g", 70000, version + 1));  /* back, new bytes */
    CHECK_OK(set_obj(w, s, "/s/big", 300000, version));
    CHECK_OK(remove_obj(w, s, "/s/x"));
    CHECK_OK(nczmap_flush(w));
}

static void snapshots(void) {
    State snap = committed;
    NCZMAP *w = NULL, *r = NULL;
    CHECK_OK(nczmap_open(NCZM_GNZ, path, NC_WRITE, 0, NULL, &w));
    if (!w) return;

    /* A reader in another process, opened while the writer is open. */
    Child reader = spawn(snapshot_reader, &snap);
    CHECK(recv1(reader.from_child));
    State s = snap;
    churn(w, &s, 4);
    size64_t before = 0, after = 0;
    CHECK_OK(nczmap_compact(w, &before, &after));
    CHECK(after > 0 && after <= before);
    send1(reader.to_child);
    reap(reader, "reader opened before the commits");
    CHECK(differs(w, &s, "writer after the churn") == 0);
    CHECK_OK(nczmap_compact(w, &before, &after));
    CHECK(after > 0 && after <= before);
    CHECK(differs(w, &s, "writer after compaction") == 0);
    reap(spawn(reader_sees, &s), "reader after compaction");

    /* A reader in the writer's own process. */
    State snap2 = s;
    CHECK_OK(nczmap_open(NCZM_GNZ, path, NC_NOWRITE, 0, NULL, &r));
    churn(w, &s, 6);
    if (r) {
        CHECK(differs(r, &snap2, "in-process reader's snapshot") == 0);
        CHECK_OK(nczmap_close(r, 0));
    }
    CHECK_OK(nczmap_close(w, 0));
    committed = s;

    /* A reader that was there before the writer opened. */
    snap = committed;
    reader = spawn(snapshot_reader, &snap);
    CHECK(recv1(reader.from_child));
    CHECK_OK(nczmap_open(NCZM_GNZ, path, NC_WRITE, 0, NULL, &w));
    if (!w) return;
    churn(w, &s, 8);
    send1(reader.to_child);
    reap(reader, "reader opened before the writer");
    CHECK_OK(nczmap_close(w, 0));
    committed = s;
    reap(spawn(reader_sees, &committed), "reader at the end");
}

/* ---- 3b. snapshots across a growing header ------------------------------------------ */

/* Compaction leaves only a small margin after the header, so a few new keys
 * make the header region grow at the next commit: the objects in its way
 * move, and the new header is written over their old place. GNZ keeps its
 * header at offset 0, so a reader opened before that commit cannot keep
 * those objects (a known limit, src/store/gnz/DESIGN.md). What it must do:
 * never hand out the new header's bytes as an object's. Every read of the
 * old snapshot gives the snapshot's bytes or NC_EACCESS (reopen), and
 * objects that did not lie in the header's way still read correctly. */
static void snapshot_across_header_growth(void) {
    NCZMAP *w = NULL, *r = NULL;
    State s = {0, {{0}}};
    unlink(path);
    CHECK_OK(nczmap_create(NCZM_GNZ, path, 0, 0, NULL, &w));
    if (!w) return;
    CHECK_OK(set_obj(w, &s, "/.zgroup", 20, 1));
    CHECK_OK(set_obj(w, &s, "/h/small", 300, 1));
    CHECK_OK(set_obj(w, &s, "/h/page", 5000, 1));
    CHECK_OK(nczmap_flush(w));
    size64_t before, after;
    CHECK_OK(nczmap_compact(w, &before, &after));
    State snap = s;
    CHECK_OK(nczmap_open(NCZM_GNZ, path, NC_NOWRITE, 0, NULL, &r));
    static const char *more[] = {
        "/h/a-new-object-whose-key-is-rather-long/0.0.0",
        "/h/a-new-object-whose-key-is-rather-long/0.0.1",
        "/h/a-new-object-whose-key-is-rather-long/0.1.0",
    };
    for (int i = 0; i < 3; i++) CHECK_OK(set_obj(w, &s, more[i], 10, 2));
    /* Enough keys that the header outgrows any slack the region has. */
    /* (Written directly: State holds MAXOBJ objects only.) */
    for (int i = 0; i < 150; i++) {
        char key[96];
        snprintf(key, sizeof key, "/g/another-rather-long-array-name-to-grow-the-header/%d.0.0", i);
        CHECK_OK(nczmap_write(w, key, 0, 4, "grow"));
    }
    CHECK_OK(nczmap_flush(w));
    if (r) {
        int stale = 0, wrong = 0;
        for (int i = 0; i < snap.n; i++) {
            const Obj *o = &snap.o[i];
            memset(buf, 0xA5, o->len);
            int rc = nczmap_read(r, o->key, 0, o->len, buf);
            if (rc == NC_EACCESS) {
                stale++;
                continue;
            }
            CHECK_OK(rc);
            for (size_t k = 0; k < o->len; k++)
                if (buf[k] != byte_of(o->key, o->version, k)) {
                    fprintf(stderr, "  snapshot across a header growth: %s: wrong byte %zu\n",
                            o->key, k);
                    wrong++;
                    break;
                }
        }
        CHECK(wrong == 0);
        /* The header grew over the small objects next to it: their reads
         * must have been refused, not served from the new header. */
        CHECK(stale > 0);
        fprintf(stderr, "  (%d snapshot object(s) lay in the header's way: NC_EACCESS)\n", stale);
        CHECK_OK(nczmap_close(r, 0));
    }
    /* The extra keys go again; a reader opening now sees everything. */
    for (int i = 0; i < 150; i++) {
        char key[96];
        snprintf(key, sizeof key, "/g/another-rather-long-array-name-to-grow-the-header/%d.0.0", i);
        CHECK_OK(nczmap_remove(w, key));
    }
    CHECK_OK(nczmap_flush(w));
    CHECK_OK(nczmap_open(NCZM_GNZ, path, NC_NOWRITE, 0, NULL, &r));
    if (r) {
        CHECK(differs(r, &s, "reader after the header grew") == 0);
        CHECK_OK(nczmap_close(r, 0));
    }
    CHECK(differs(w, &s, "writer after the header grew") == 0);
    CHECK_OK(nczmap_close(w, 0));
}

/* ---- 4. readers opening while the writer commits ---------------------------------- */

#define RACE_GENS 60
#define RACE_KEYS 6
static const char *race_keys[RACE_KEYS] = {"/r/a", "/r/b.c", "/r/d/e", "/r/f", "/r/g", "/r/h"};

static size_t race_len(int i, int g) { return (size_t)((i * 7919 + g * 104729) % 9000) + (i == 0 ? 0 : 1); }

static void race_state(State *s, int g) {
    s->n = 0;
    for (int i = 0; i < RACE_KEYS; i++) {
        s->o[s->n].key = race_keys[i];
        s->o[s->n].len = race_len(i, g);
        s->o[s->n].version = g;
        s->n++;
    }
    s->o[s->n].key = "/r/gen";
    s->o[s->n].len = 8;
    s->o[s->n].version = g;
    s->n++;
}

/* Opens, checks and closes readers until it sees the last generation: each
 * sees one whole generation, never older than the one before. */
static int racing_reader(void *arg, int in, int out) {
    (void)arg;
    (void)in;
    int failures = 0, last = 0, opens = 0;
    send1(out);
    while (last < RACE_GENS && opens < 100000 && failures == 0) {
        NCZMAP *map = NULL;
        int rc = nczmap_open(NCZM_GNZ, path, NC_NOWRITE, 0, NULL, &map);
        EXPECT(rc == NC_NOERR, "read-only open %d gave %d", opens, rc);
        if (rc != NC_NOERR) break;
        opens++;
        unsigned char b[8];
        rc = nczmap_read(map, "/r/gen", 0, 8, b);
        int g = -1;
        if (rc == NC_NOERR) {
            /* /r/gen holds byte_of("/r/gen", g, 0..7): find g. */
            for (int c = 0; c <= RACE_GENS && g < 0; c++) {
                int same = 1;
                for (int k = 0; k < 8; k++) same &= b[k] == byte_of("/r/gen", c, (size_t)k);
                if (same) g = c;
            }
        }
        EXPECT(g >= 0, "open %d: /r/gen names no generation (rc %d)", opens, rc);
        EXPECT(g < 0 || g >= last, "open %d: generation %d after %d", opens, g, last);
        if (g >= 0) {
            State want;
            race_state(&want, g);
            failures += differs(map, &want, "reader opened during commits") ? 1 : 0;
            last = g;
        }
        nczmap_close(map, 0);
    }
    EXPECT(last == RACE_GENS, "saw generation %d of %d after %d opens", last, RACE_GENS, opens);
    return failures;
}

static void racing_readers(void) {
    NCZMAP *w = NULL;
    CHECK_OK(nczmap_create(NCZM_GNZ, path, 0, 0, NULL, &w));
    if (!w) return;
    State s = {0, {{0}}};
    race_state(&s, 0);
    for (int i = 0; i < s.n; i++) {
        State scratch = {0, {{0}}};
        CHECK_OK(set_obj(w, &scratch, s.o[i].key, s.o[i].len, 0));
    }
    CHECK_OK(nczmap_flush(w));
    Child reader = spawn(racing_reader, NULL);
    CHECK(recv1(reader.from_child));
    for (int g = 1; g <= RACE_GENS; g++) {
        State prev, next;
        race_state(&prev, g - 1);
        race_state(&next, g);
        for (int i = 0; i < next.n; i++) {
            State one = {1, {prev.o[i]}};
            CHECK_OK(set_obj(w, &one, next.o[i].key, next.o[i].len, g));
        }
        CHECK_OK(nczmap_flush(w));
    }
    reap(reader, "readers opening during commits");
    CHECK_OK(nczmap_close(w, 0));
}

/* ---- 5. space reuse around readers ------------------------------------------------ */

#define MIB (1024LL * 1024)

static long long file_bytes(void) {
    struct stat st;
    return stat(path, &st) == 0 ? (long long)st.st_size : -1;
}

/* Opens a reader, reads its snapshot, tells the parent, waits for the go
 * (or to be killed) and checks the snapshot again. */
static int pinning_reader(void *arg, int in, int out) {
    const State *want = arg;
    int failures = 0;
    alarm(200); /* lives through 200 commits, each synced */
    NCZMAP *map = NULL;
    int rc = nczmap_open(NCZM_GNZ, path, NC_NOWRITE, 0, NULL, &map);
    EXPECT(rc == NC_NOERR, "read-only open gave %d", rc);
    if (rc == NC_NOERR) failures += differs(map, want, "pinning reader at open");
    send1(out);
    EXPECT(recv1(in), "no go from the parent");
    if (map) {
        failures += differs(map, want, "pinning reader's snapshot after 200 commits");
        EXPECT(nczmap_close(map, 0) == NC_NOERR, "close");
    }
    return failures;
}

/* Version v of /r/obj where no reader checks it: one memset (cheap under
 * valgrind, unlike set_obj's hash per byte). */
static int rewrite_plain(NCZMAP *w, int v) {
    memset(buf, v & 0xff, BUFLEN);
    return nczmap_write(w, "/r/obj", 0, BUFLEN, buf);
}

static void space_reuse(void) {
    NCZMAP *w = NULL;
    unlink(path); /* the racing readers' dataset has no dataset marker */
    CHECK_OK(nczmap_create(NCZM_GNZ, path, 0, 0, NULL, &w));
    if (!w) return;
    State s = {0, {{0}}};
    CHECK_OK(set_obj(w, &s, "/r/obj", BUFLEN, 0));
    CHECK_OK(nczmap_flush(w));
    State first = s;
    Child held = spawn(pinning_reader, &first);
    CHECK(recv1(held.from_child));
    long long largest = 0;
    Child doomed = {-1, -1, -1};
    State mid = s;
    for (int v = 1; v <= 200; v++) {
        if (v == 100) {
            CHECK_OK(set_obj(w, &s, "/r/obj", BUFLEN, v));
        } else {
            CHECK_OK(rewrite_plain(w, v));
        }
        CHECK_OK(nczmap_flush(w));
        long long now = file_bytes();
        if (now > largest) largest = now;
        if (v == 100) {
            mid = s;
            doomed = spawn(pinning_reader, &mid);
            CHECK(recv1(doomed.from_child));
        }
    }
    fprintf(stderr, "  one reader held over 200 rewrites of 1 MiB: file at most %lld bytes\n",
            largest);
    /* 3 MiB + the held snapshot + (after v100) the doomed one's. */
    CHECK(largest > 0 && largest <= 5 * MIB);
    /* kill -9 the later reader; the next commits reuse its space. */
    kill(doomed.pid, SIGKILL);
    int status = 0;
    while (waitpid(doomed.pid, &status, 0) < 0 && errno == EINTR) {
    }
    close(doomed.to_child);
    close(doomed.from_child);
    CHECK(WIFSIGNALED(status) && WTERMSIG(status) == SIGKILL);
    long long killed_at = file_bytes();
    for (int v = 201; v <= 203; v++) {
        CHECK_OK(rewrite_plain(w, v));
        CHECK_OK(nczmap_flush(w));
    }
    memset(buf, 0, BUFLEN);
    CHECK_OK(nczmap_read(w, "/r/obj", 0, BUFLEN, buf));
    CHECK(buf[0] == 203 && buf[BUFLEN - 1] == 203);
    fprintf(stderr, "  reader killed: file %lld -> %lld bytes\n", killed_at, file_bytes());
    CHECK(file_bytes() <= 4 * MIB + 8192);
    send1(held.to_child);
    reap(held, "reader held over 200 commits");
    CHECK_OK(nczmap_close(w, 0));
}

int main(int argc, char **argv) {
    if (argc < 2 || zt_backend(argv[1]) != NCZM_GNZ) {
        printf("skipped: a GNZ test\n");
        return 77;
    }
    buf = malloc(BUFLEN);
    if (buf == NULL) return 2;
    alarm(480); /* the whole test: a hang is a failure, not a stuck ctest */
    zt_dataset(argv[1], "procs", path, sizeof path);
    one_writer();
    readers_after_commit();
    snapshots();
    snapshot_across_header_growth();
    racing_readers();
    space_reuse();
    free(buf);
    zt_cleanup();
    return zt_finish("test_gnz_procs");
}
