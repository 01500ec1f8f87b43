/* FILE crash guarantee, exactly as README ("Durability") and the header
 * (NCZM_FILE) state it (issue 10, item 9).
 *
 * A dataset is written and flushed. Then a child process reopens it
 * writable and, in a loop, overwrites, extends, truncates, removes and
 * re-creates objects, creates new ones and flushes now and then; it is
 * killed with SIGKILL at a random moment. After each death the dataset
 * must open (read-only and writable), and every object that nobody changed
 * after the first flush must be exactly as flushed; the objects the child
 * changed may hold anything (FILE writes in place), so only their keys'
 * sanity is checked (each is an object or missing, reads work). Finally
 * the dataset is deleted with close(map, 1).
 *
 * Usage: test_file_crash file [ROUNDS]   (default 30) */
// zmap-test-backends: file
// zmap-test-no-valgrind
#include "harness.h"

#include <signal.h>
#include <stdint.h>
#include <sys/types.h>
#include <sys/wait.h>
#include <time.h>

#define OBJ_SIZE 65536
#define KEPT 8

static char ds[4096];

/* Deterministic bytes of kept object `i`. */
static void kept_bytes(int i, unsigned char *buf) {
    uint32_t x = 2654435761u * (uint32_t)(i + 1);
    for (int j = 0; j < OBJ_SIZE; j++) {
        x ^= x << 13;
        x ^= x >> 17;
        x ^= x << 5;
        buf[j] = (unsigned char)x;
    }
}

static void kept_key(int i, char *out, size_t n) {
    snprintf(out, n, "/kept/g%d/obj%d", i % 3, i);
}

/* The child: changes /busy/... objects forever (never a kept one). */
static void mutate_forever(int ready_fd) {
    NCZMAP *map = NULL;
    if (nczmap_open(NCZM_FILE, ds, NC_WRITE, 0, NULL, &map) != NC_NOERR) _exit(3);
    static unsigned char buf[OBJ_SIZE];
    int signalled = 0;
    for (unsigned round = 0;; round++) {
        memset(buf, (int)(round & 0xff), sizeof buf);
        char key[64];
        snprintf(key, sizeof key, "/busy/over%u", round % 4);
        if (nczmap_write(map, key, 0, OBJ_SIZE, buf) != NC_NOERR) _exit(4);
        if (nczmap_write(map, "/busy/grow", (size64_t)(round % 64) * 4096, 4096,
                         buf) != NC_NOERR)
            _exit(4);
        if (round % 5 == 0 && nczmap_truncate(map, "/busy/grow", 100) != NC_NOERR)
            _exit(4);
        snprintf(key, sizeof key, "/busy/new/n%u", round % 16);
        (void)nczmap_remove(map, key);
        if (nczmap_write(map, key, 0, 1000, buf) != NC_NOERR) _exit(4);
        (void)nczmap_remove(map, "/busy/gone");
        if (round % 7 == 0 && nczmap_flush(map) != NC_NOERR) _exit(5);
        if (!signalled && round >= 3) {
            signalled = 1;
            if (write(ready_fd, "r", 1) != 1) _exit(6);
        }
    }
}

static void check_after_crash(void) {
    static unsigned char want[OBJ_SIZE], got[OBJ_SIZE];
    for (int writable = 0; writable <= 1; writable++) {
        NCZMAP *map = NULL;
        CHECK_OK(nczmap_open(NCZM_FILE, ds, writable ? NC_WRITE : 0, 0, NULL,
                             &map));
        if (!map) return;
        CHECK_OK(nczmap_exists(map, "/.zgroup"));
        for (int i = 0; i < KEPT; i++) {
            char key[64];
            kept_key(i, key, sizeof key);
            size64_t len = 0;
            CHECK_OK(nczmap_len(map, key, &len));
            CHECK(len == OBJ_SIZE);
            if (len != OBJ_SIZE) continue;
            kept_bytes(i, want);
            CHECK_OK(nczmap_read(map, key, 0, OBJ_SIZE, got));
            CHECK(memcmp(want, got, OBJ_SIZE) == 0);
        }
        /* Changed objects: each is an object that reads, or missing. */
        NClist *list = nclistnew();
        CHECK_OK(nczmap_search(map, "/busy", list));
        for (size_t j = 0; j < nclistlength(list); j++) {
            const char *key = (const char *)nclistget(list, j);
            size64_t len = 0;
            int rc = nczmap_len(map, key, &len);
            CHECK(rc == NC_NOERR || rc == NC_EEMPTY);
            if (rc == NC_NOERR && len > 0 && len <= OBJ_SIZE * 64)
                CHECK_OK(nczmap_read(map, key, 0, len < OBJ_SIZE ? len : OBJ_SIZE,
                                     got));
        }
        nclistfreeall(list);
        CHECK_OK(nczmap_close(map, 0));
    }
}

int main(int argc, char **argv) {
    int rounds = argc > 2 ? atoi(argv[2]) : 30;
    zt_dataset("file", "crash", ds, sizeof ds);
    unsigned seed = (unsigned)time(NULL) ^ (unsigned)getpid();
    if (getenv("ZMAP_CRASH_SEED")) seed = (unsigned)atoi(getenv("ZMAP_CRASH_SEED"));
    printf("seed %u\n", seed);
    srand(seed);

    /* The flushed state. */
    static unsigned char buf[OBJ_SIZE];
    NCZMAP *map = NULL;
    CHECK_OK(nczmap_create(NCZM_FILE, ds, 0, 0, NULL, &map));
    if (!map) return zt_finish("test_file_crash");
    CHECK_OK(nczmap_write(map, "/.zgroup", 0, 2, "{}"));
    for (int i = 0; i < KEPT; i++) {
        char key[64];
        kept_key(i, key, sizeof key);
        kept_bytes(i, buf);
        CHECK_OK(nczmap_write(map, key, 0, OBJ_SIZE, buf));
    }
    memset(buf, 0xAA, sizeof buf);
    CHECK_OK(nczmap_write(map, "/busy/over0", 0, OBJ_SIZE, buf));
    CHECK_OK(nczmap_write(map, "/busy/gone", 0, OBJ_SIZE, buf));
    CHECK_OK(nczmap_flush(map));
    CHECK_OK(nczmap_close(map, 0));

    for (int r = 0; r < rounds && zt_failed == 0; r++) {
        int pipefd[2];
        if (pipe(pipefd) != 0) return 2;
        fflush(stdout);
        pid_t pid = fork();
        if (pid < 0) return 2;
        if (pid == 0) {
            close(pipefd[0]);
            mutate_forever(pipefd[1]);
        }
        close(pipefd[1]);
        char c;
        CHECK(read(pipefd[0], &c, 1) == 1); /* the child is busy */
        close(pipefd[0]);
        struct timespec pause = {0, (long)(rand() % 20000) * 1000L};
        nanosleep(&pause, NULL);
        kill(pid, SIGKILL);
        int status = 0;
        CHECK(waitpid(pid, &status, 0) == pid);
        CHECK(WIFSIGNALED(status) && WTERMSIG(status) == SIGKILL);
        check_after_crash();
    }

    map = NULL;
    CHECK_OK(nczmap_open(NCZM_FILE, ds, 0, 0, NULL, &map));
    if (map) CHECK_OK(nczmap_close(map, 1));
    CHECK(access(ds, F_OK) != 0);
    zt_cleanup();
    return zt_finish("test_file_crash");
}
