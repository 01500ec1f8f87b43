/* GNZ crash safety (gnz-format.md Part 2b, src/store/gnz/DESIGN.md "Commit").
 *
 * Writer processes commit generation after generation of a deterministic
 * dataset (every object's presence, length and bytes are a function of the
 * generation number, which the object /gen holds) and append each
 * generation to a side file, fsync'ed, once its nczmap_flush has returned.
 * They are killed:
 *  with SIGKILL at random moments (in the middle of writes, commits,
 *  compactions, or the open that recovers the previous crash).
 * After each death the file is reopened (read-only, or writable, which
 * repairs the header at 0) and every object is checked byte for byte
 * against the generation /gen names, which must be the last one the side
 * file records or the one in flight: never older, never a mix. After a
 * complete commit the record is gone (DESIGN.md step 4), so garbage at 0
 * is then not recoverable: the open must fail with NC_ENOTNC, not crash and
 * not change the file.
 *
 * What a power loss leaves (lost, reordered and torn writes since the last
 * sync) is checked in-process at every write by the Rust crash simulation
 * (src/store/gnz/crash_tests.rs).
 *
 * Usage: test_gnz_crash gnz [ROUNDS]   (ROUNDS random kills, default 220)
 * Environment: ZMAP_CRASH_SEED picks the random seed (printed).
 */
// zmap-test-backends: gnz
// zmap-test-no-valgrind
#include "harness.h"

#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdint.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <sys/types.h>
#include <sys/wait.h>
#include <time.h>

#define NKEYS 24
#define NMANY 120          /* extra keys that push the header past a page */
#define ROUNDS_DEFAULT 220 /* random SIGKILLs */
#define ROTATE 30          /* a fresh file every ROTATE random kills */
#define MAX_DELAY_US 40000 /* a random kill comes within this after the fork */
#define TRAILER_LEN 32

/* ---- randomness ------------------------------------------------------------ */

static uint64_t rng_state;
static uint64_t rnd(void) { /* xorshift64* */
    rng_state ^= rng_state >> 12;
    rng_state ^= rng_state << 25;
    rng_state ^= rng_state >> 27;
    return rng_state * 2685821657736338717ULL;
}

static uint64_t mix(uint64_t a, uint64_t b, uint64_t c) {
    uint64_t h = a * 0x9E3779B97F4A7C15ULL ^ (b + 0x632BE59BD9B4E019ULL) * 0xC2B2AE3D27D4EB4FULL;
    h ^= c * 0x165667B19E3779F9ULL;
    h ^= h >> 29;
    h *= 0xBF58476D1CE4E5B9ULL;
    h ^= h >> 32;
    return h;
}

/* ---- the dataset of generation g ------------------------------------------- */

static const size_t size_classes[] = {0, 1, 15, 100, 4095, 4096, 5000, 20000, 70000};
#define NCLASSES (sizeof size_classes / sizeof size_classes[0])

static void key_name(int i, char *out, size_t n) {
    switch (i % 3) {
    case 0: snprintf(out, n, "/d/k%02d", i); break;
    case 1: snprintf(out, n, "/d/sub.%d/c.%d.0", i % 4, i); break;
    default: snprintf(out, n, "/z%02d.bin", i); break;
    }
}

static void many_name(int j, char *out, size_t n) {
    snprintf(out, n, "/many/a.rather.long.key.name.that.grows.the.header.%03d", j);
}

/* Key i keeps its "epoch" for 3 generations: within one it only grows at
 * the end (appends after a commit), across epochs it is rewritten. */
static uint64_t epoch(int i, uint64_t g) { return (g + (uint64_t)i) / 3; }

static int key_exists(int i, uint64_t g) { return mix(i, epoch(i, g), 1) % 5 != 0; }

static size_t key_len(int i, uint64_t g) {
    size_t base = size_classes[mix(i, epoch(i, g), 2) % NCLASSES];
    size_t step = base / 4 + (base ? 1 : 0);
    return base + ((g + (uint64_t)i) % 3) * step;
}

/* Every 4th key carries the generation in its first 8 bytes: rewritten in
 * place after each commit (copy-on-write of committed bytes). */
static int stamped(int i) { return i % 4 == 0; }

static unsigned char key_byte(int i, uint64_t g, size_t k) {
    if (stamped(i) && k < 8) return (unsigned char)(g >> (8 * k));
    return (unsigned char)(mix(i, epoch(i, g), k / 8 + 3) >> (8 * (k % 8)));
}

/* The extra keys: none, NMANY/2 or NMANY, changing every 8 generations. */
static int many_count(uint64_t g) {
    static const int counts[] = {0, NMANY / 2, NMANY, 0, NMANY};
    return counts[(g / 8) % 5];
}
static size_t many_len(int j) { return 16 + (size_t)(j % 5); }
static unsigned char many_byte(int j, uint64_t g, size_t k) {
    return (unsigned char)mix(1000 + j, g / 8, k);
}

static void fill(int i, uint64_t g, size_t from, size_t to, unsigned char *buf) {
    for (size_t k = from; k < to; k++) buf[k - from] = key_byte(i, g, k);
}

/* ---- the writer child ---------------------------------------------------------- */

static unsigned char *scratch; /* 256 KiB */
#define SCRATCH_LEN (256 * 1024)

static void child_fail(const char *what, int rc) {
    fprintf(stderr, "writer %ld: %s: %d (%s)\n", (long)getpid(), what, rc, nczmap_strerror(rc));
    _exit(20);
}

#define CHILD_OK(expr, what)              \
    do {                                  \
        int child_rc = (expr);            \
        if (child_rc != NC_NOERR) child_fail(what, child_rc); \
    } while (0)

/* Turns generation g into g + 1 through the map, as a mix of rewrites,
 * appends, in-place overwrites, truncations, removals and definitions. */
static void advance(NCZMAP *map, uint64_t g) {
    char key[128];
    uint64_t n = g + 1;
    for (int i = 0; i < NKEYS; i++) {
        key_name(i, key, sizeof key);
        int had = key_exists(i, g), has = key_exists(i, n);
        size_t old = had ? key_len(i, g) : 0, len = key_len(i, n);
        if (!has) {
            if (had) CHILD_OK(nczmap_remove(map, key), "remove");
            continue;
        }
        if (!had || epoch(i, g) != epoch(i, n)) {
            if (had && mix(i, n, 9) % 2) {
                CHILD_OK(nczmap_remove(map, key), "remove before rewrite");
                had = 0;
            }
            if (len == 0) {
                if (had) CHILD_OK(nczmap_truncate(map, key, 0), "truncate to 0");
                else CHILD_OK(nczmap_defineobj(map, key), "defineobj");
                continue;
            }
            /* In pieces of at most SCRATCH_LEN, the tail first. */
            size_t cut = len / 2;
            fill(i, n, cut, len, scratch);
            CHILD_OK(nczmap_write(map, key, cut, len - cut, scratch), "write tail");
            fill(i, n, 0, cut, scratch);
            CHILD_OK(nczmap_write(map, key, 0, cut, scratch), "write head");
            if (had && old > len) CHILD_OK(nczmap_truncate(map, key, len), "truncate");
            continue;
        }
        /* Same epoch: appends, then the stamp. */
        if (len > old) {
            fill(i, n, old, len, scratch);
            CHILD_OK(nczmap_write(map, key, old, len - old, scratch), "append");
        } else if (len < old) {
            CHILD_OK(nczmap_truncate(map, key, len), "shrink");
        }
        if (stamped(i) && len > 0) {
            size_t m = len < 8 ? len : 8;
            fill(i, n, 0, m, scratch);
            CHILD_OK(nczmap_write(map, key, 0, m, scratch), "stamp");
        }
    }
    int had_many = many_count(g), has_many = many_count(n);
    for (int j = 0; j < (had_many > has_many ? had_many : has_many); j++) {
        many_name(j, key, sizeof key);
        if (j >= has_many) {
            CHILD_OK(nczmap_remove(map, key), "remove many");
        } else if (j >= had_many || g / 8 != n / 8) {
            for (size_t k = 0; k < many_len(j); k++) scratch[k] = many_byte(j, n, k);
            CHILD_OK(nczmap_write(map, key, 0, many_len(j), scratch), "write many");
        }
    }
    unsigned char stamp[8];
    for (int k = 0; k < 8; k++) stamp[k] = (unsigned char)(n >> (8 * k));
    CHILD_OK(nczmap_write(map, "/gen", 0, 8, stamp), "write /gen");
}

static uint64_t read_gen(NCZMAP *map, int *ok) {
    unsigned char b[8];
    size64_t len = 0;
    *ok = nczmap_len(map, "/gen", &len) == NC_NOERR && len == 8 &&
          nczmap_read(map, "/gen", 0, 8, b) == NC_NOERR;
    uint64_t g = 0;
    for (int k = 0; k < 8; k++) g |= (uint64_t)b[k] << (8 * k);
    return *ok ? g : 0;
}

/* The child: commits generations until killed (or, with `once`, commits one
 * and compacts when `compact` is set). */
static int child_main(const char *path, const char *side, int once, int compact) {
    struct rlimit nocore = {0, 0};
    setrlimit(RLIMIT_CORE, &nocore);
    scratch = malloc(SCRATCH_LEN);
    if (scratch == NULL) _exit(21);
    int fd = open(side, O_WRONLY | O_APPEND);
    if (fd < 0) _exit(22);
    NCZMAP *map = NULL;
    CHILD_OK(nczmap_open(NCZM_GNZ, path, NC_WRITE, 0, NULL, &map), "open");
    int ok;
    uint64_t g = read_gen(map, &ok);
    if (!ok) _exit(23);
    for (int round = 0; round < 100000; round++) {
        advance(map, g);
        CHILD_OK(nczmap_flush(map), "flush");
        g++;
        if (write(fd, &g, sizeof g) != (ssize_t)sizeof g || fsync(fd) != 0) _exit(24);
        if (compact || (!once && g % 7 == 0)) {
            size64_t before, after;
            CHILD_OK(nczmap_compact(map, &before, &after), "compact");
        }
        if (once) break;
    }
    CHILD_OK(nczmap_close(map, 0), "close");
    _exit(0);
}

/* ---- the parent ---------------------------------------------------------------- */

static char path[4096], side[4096];
static long kills, losses, unopenable, mixed;
static long in_window, in_flight_new, generations;
static int file_has_record(void);

/* Starts a writer on `path`; `once`: one commit then exit. */
static pid_t spawn(int once, int compact) {
    int fd = open(side, O_WRONLY | O_CREAT | O_TRUNC, 0644);
    if (fd < 0) {
        perror("side file");
        exit(2);
    }
    close(fd);
    fflush(stdout);
    fflush(stderr);
    pid_t pid = fork();
    if (pid < 0) {
        perror("fork");
        exit(2);
    }
    if (pid == 0) {
        char *argv[] = {"test_gnz_crash", "--child", path, side, once ? "1" : "0",
                        compact ? "1" : "0", NULL};
        execv("/proc/self/exe", argv);
        _exit(25);
    }
    return pid;
}

/* The last generation the side file records, or `none`. */
static uint64_t side_last(uint64_t none) {
    int fd = open(side, O_RDONLY);
    if (fd < 0) return none;
    struct stat st;
    uint64_t g = none;
    if (fstat(fd, &st) == 0 && st.st_size >= 8) {
        off_t at = (st.st_size / 8 - 1) * 8;
        if (pread(fd, &g, sizeof g, at) != (ssize_t)sizeof g) g = none;
    }
    close(fd);
    return g;
}

/* Opens the file (writable: recovery writes the header back) and checks
 * that it holds exactly one generation in [lo, hi], every byte. Returns
 * the generation, or UINT64_MAX after counting the failure. */
static uint64_t verify(uint64_t lo, uint64_t hi, int writable, const char *when) {
    NCZMAP *map = NULL;
    int rc = nczmap_open(NCZM_GNZ, path, writable ? NC_WRITE : NC_NOWRITE, 0, NULL, &map);
    if (rc != NC_NOERR) {
        unopenable++;
        CHECK_OK(rc);
        fprintf(stderr, "  %s: the file does not open\n", when);
        return UINT64_MAX;
    }
    int ok;
    uint64_t g = read_gen(map, &ok);
    if (!ok || g < lo || g > hi) {
        losses++;
        CHECK(ok && g >= lo && g <= hi);
        fprintf(stderr, "  %s: /gen is %llu (readable %d), expected %llu..%llu\n", when,
                (unsigned long long)g, ok, (unsigned long long)lo, (unsigned long long)hi);
        nczmap_close(map, 0);
        return UINT64_MAX;
    }
    /* Every object of generation g, byte for byte, and nothing else. */
    int bad = 0, expected = 1; /* /gen */
    char key[128];
    for (int i = 0; i < NKEYS && !bad; i++) {
        key_name(i, key, sizeof key);
        size64_t len = 0;
        rc = nczmap_len(map, key, &len);
        if (!key_exists(i, g)) {
            if (rc != NC_EEMPTY) bad = 1;
            continue;
        }
        expected++;
        if (rc != NC_NOERR || len != key_len(i, g)) {
            bad = 2;
            break;
        }
        if (len > 0 && nczmap_read(map, key, 0, len, scratch) != NC_NOERR) bad = 3;
        for (size_t k = 0; k < len && !bad; k++)
            if (scratch[k] != key_byte(i, g, k)) bad = 4;
        if (bad) fprintf(stderr, "  %s: %s is wrong (%d)\n", when, key, bad);
    }
    for (int j = 0; j < NMANY && !bad; j++) {
        many_name(j, key, sizeof key);
        size64_t len = 0;
        rc = nczmap_len(map, key, &len);
        if (j >= many_count(g)) {
            if (rc != NC_EEMPTY) bad = 5;
            continue;
        }
        expected++;
        if (rc != NC_NOERR || len != many_len(j) ||
            nczmap_read(map, key, 0, len, scratch) != NC_NOERR)
            bad = 6;
        for (size_t k = 0; k < len && !bad; k++)
            if (scratch[k] != many_byte(j, g, k)) bad = 7;
    }
    /* No object outside the model: count them all. */
    int found = 0;
    NClist *stack = nclistnew(), *kids = nclistnew();
    nclistpush(stack, strdup("/"));
    while (!bad && nclistlength(stack) > 0) {
        char *prefix = nclistpop(stack);
        nclistclear(kids);
        if (nczmap_search(map, prefix, kids) != NC_NOERR) bad = 8;
        for (size_t k = 0; k < nclistlength(kids); k++) {
            char *child = nclistget(kids, k);
            if (nczmap_exists(map, child) == NC_NOERR) found++;
            nclistpush(stack, child);
        }
        free(prefix);
    }
    nclistfreeall(stack);
    nclistfree(kids);
    if (!bad && found != expected) bad = 9;
    if (bad) {
        mixed++;
        fprintf(stderr, "  %s: generation %llu is not intact (check %d, %d objects, %d expected)\n",
                when, (unsigned long long)g, bad, found, expected);
    }
    CHECK(bad == 0);
    CHECK_OK(nczmap_close(map, 0));
    return bad ? UINT64_MAX : g;
}

/* A new file holding generation 0 (the writers advance from there). */
static void fresh_file(void) {
    NCZMAP *map = NULL;
    unsigned char zero[8] = {0};
    char key[128];
    unlink(path);
    CHECK_OK(nczmap_create(NCZM_GNZ, path, 0, 0, NULL, &map));
    CHECK_OK(nczmap_write(map, "/gen", 0, 8, zero));
    for (int i = 0; i < NKEYS; i++) {
        if (!key_exists(i, 0)) continue;
        key_name(i, key, sizeof key);
        size_t len = key_len(i, 0);
        fill(i, 0, 0, len, scratch);
        if (len) CHECK_OK(nczmap_write(map, key, 0, len, scratch));
        else CHECK_OK(nczmap_defineobj(map, key));
    }
    CHECK_OK(nczmap_close(map, 0));
}

/* Waits for a child; 1 if it died of `sig`. */
static int reap(pid_t pid, int sig, const char *what) {
    int status;
    while (waitpid(pid, &status, 0) < 0 && errno == EINTR) {
    }
    if (WIFSIGNALED(status) && WTERMSIG(status) == sig) return 1;
    if (WIFEXITED(status) && WEXITSTATUS(status) == 0 && sig == 0) return 1;
    fprintf(stderr, "  %s: writer %s %d (expected %s)\n", what,
            WIFEXITED(status) ? "exited with" : "died of signal",
            WIFEXITED(status) ? WEXITSTATUS(status) : WTERMSIG(status),
            sig ? strsignal(sig) : "a clean exit");
    return 0;
}

static void sleep_us(long us) {
    struct timespec ts = {us / 1000000, (us % 1000000) * 1000};
    while (nanosleep(&ts, &ts) != 0 && errno == EINTR) {
    }
}

/* ---- scenarios ------------------------------------------------------------------ */

static uint64_t current; /* the generation the file holds (verified) */

static void random_kills(int rounds) {
    for (int r = 0; r < rounds; r++) {
        if (r % ROTATE == 0) {
            fresh_file();
            current = verify(0, 0, 0, "fresh file");
        }
        pid_t pid = spawn(0, 0);
        sleep_us((long)(rnd() % MAX_DELAY_US));
        kill(pid, SIGKILL);
        if (reap(pid, SIGKILL, "random kill")) kills++;
        else CHECK(0);
        uint64_t done = side_last(current);
        uint64_t lo = done > current ? done : current;
        if (file_has_record()) in_window++;
        char when[64];
        snprintf(when, sizeof when, "random kill %d", r);
        uint64_t g = verify(lo, lo + 1, r % 3 == 2, when);
        if (g == lo + 1) in_flight_new++;
        generations += g != UINT64_MAX && g > current ? g - current : 0;
        if (g == UINT64_MAX) {
            fresh_file(); /* go on from a known state */
            current = 0;
        } else {
            current = g;
        }
    }
}

static int file_has_record(void) {
    int fd = open(path, O_RDONLY);
    struct stat st;
    char t[8] = {0};
    int yes = fd >= 0 && fstat(fd, &st) == 0 && st.st_size >= TRAILER_LEN &&
              pread(fd, t, 8, st.st_size - TRAILER_LEN) == 8 && memcmp(t, "GNZ1COPY", 8) == 0;
    if (fd >= 0) close(fd);
    return yes;
}

static void scribble(off_t at, size_t n, int garbage) {
    int fd = open(path, O_WRONLY);
    unsigned char buf[8192];
    for (size_t k = 0; k < n && k < sizeof buf; k++)
        buf[k] = garbage ? (unsigned char)rnd() : 0;
    CHECK(fd >= 0 && pwrite(fd, buf, n, at) == (ssize_t)n);
    if (fd >= 0) close(fd);
}

/* Torn or overwritten headers with the record of the new commit at the
 * tail: every one opens as the new commit. */
/* After a complete commit no record is left, so garbage at offset 0 is a
 * corrupt file: NC_ENOTNC, and the failed open leaves the file as it was. */
static void unrecoverable_header(void) {
    fresh_file();
    pid_t pid = spawn(1, 0);
    CHECK(reap(pid, 0, "clean commit"));
    CHECK(!file_has_record());
    scribble(0, 64, 1);
    size_t before_len, after_len;
    unsigned char *before = zt_slurp(path, &before_len);
    NCZMAP *map = NULL;
    CHECK_CODE(nczmap_open(NCZM_GNZ, path, NC_NOWRITE, 0, NULL, &map), NC_ENOTNC);
    CHECK_CODE(nczmap_open(NCZM_GNZ, path, NC_WRITE, 0, NULL, &map), NC_ENOTNC);
    unsigned char *after = zt_slurp(path, &after_len);
    CHECK(before && after && before_len == after_len && memcmp(before, after, before_len) == 0);
    free(before);
    free(after);
}

int main(int argc, char **argv) {
    if (argc == 6 && strcmp(argv[1], "--child") == 0) {
        snprintf(path, sizeof path, "%s", argv[2]);
        return child_main(argv[2], argv[3], atoi(argv[4]), atoi(argv[5]));
    }
    if (argc < 2) {
        fprintf(stderr, "usage: %s gnz [ROUNDS]\n", argv[0]);
        return 2;
    }
    if (zt_backend(argv[1]) != NCZM_GNZ) {
        printf("skipped: crash safety is a GNZ test\n");
        return 77;
    }
    int rounds = argc > 2 ? atoi(argv[2]) : ROUNDS_DEFAULT;
    const char *seed_env = getenv("ZMAP_CRASH_SEED");
    rng_state = seed_env ? strtoull(seed_env, NULL, 0) : (uint64_t)time(NULL) ^ (uint64_t)getpid() << 20;
    if (rng_state == 0) rng_state = 1;
    printf("seed: ZMAP_CRASH_SEED=%llu\n", (unsigned long long)rng_state);
    scratch = malloc(SCRATCH_LEN);
    if (scratch == NULL) return 2;
    zt_dataset(argv[1], "crash", path, sizeof path);
    snprintf(side, sizeof side, "%s/side.gen", zt_tmpdir());

    unrecoverable_header();
    random_kills(rounds);
    printf("random kills: %ld SIGKILLs (%d requested), %ld generations committed; %ld kills "
           "left a commit record at the tail (header-commit window), %ld found the in-flight "
           "commit durable; losses %ld, mixed/garbage %ld, unopenable %ld\n",
           kills, rounds, generations, in_window, in_flight_new, losses, mixed, unopenable);
    CHECK(kills == rounds);
    CHECK(losses == 0 && mixed == 0 && unopenable == 0);
    free(scratch);
    zt_cleanup();
    return zt_finish("test_gnz_crash");
}
