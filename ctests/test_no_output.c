/* The library never writes to its host's stdout or stderr (README,
 * "Diagnostics"):
 *
 * - a workload of every operation, successes and refusals, with fd 1 and
 *   fd 2 redirected to files: both stay empty (on S3 with ZMAP_S3_STATS=1,
 *   which made 0.1 print request counts);
 * - GNZ: a file whose arrays are not all valid keys (a NUL in a name, a
 *   `..` segment) opens read-only (no NC_WRITE in map->mode, writes
 *   NC_EPERM), and prints nothing;
 * - GNZ: the same open with fd 2 a pipe whose reader is gone: with SIGPIPE
 *   at its default the host is not killed, and with SIGPIPE ignored the open
 *   still succeeds (it gave NC_EINTERNAL when the library printed a warning).
 */
// zmap-test-backends: mem file gnz s3
#include "harness.h"

#include <fcntl.h>
#include <signal.h>
#include <stdint.h>
#include <sys/stat.h>
#include <sys/types.h>
#include <sys/wait.h>

static char out_path[4200], err_path[4200];
static int saved_out = -1, saved_err = -1;

/* fd 1 and fd 2 go to fresh files until `restore_std`. */
static void capture_std(void) {
    fflush(stdout);
    fflush(stderr);
    snprintf(out_path, sizeof out_path, "%s/stdout.txt", zt_tmpdir());
    snprintf(err_path, sizeof err_path, "%s/stderr.txt", zt_tmpdir());
    int out = open(out_path, O_WRONLY | O_CREAT | O_TRUNC, 0600);
    int err = open(err_path, O_WRONLY | O_CREAT | O_TRUNC, 0600);
    if (out < 0 || err < 0) exit(2);
    saved_out = dup(1);
    saved_err = dup(2);
    if (saved_out < 0 || saved_err < 0 || dup2(out, 1) < 0 || dup2(err, 2) < 0) exit(2);
    close(out);
    close(err);
}

static void restore_std(void) {
    fflush(stdout);
    fflush(stderr);
    if (dup2(saved_out, 1) < 0 || dup2(saved_err, 2) < 0) exit(2);
    close(saved_out);
    close(saved_err);
}

static long long size_of(const char *path) {
    struct stat st;
    return stat(path, &st) == 0 ? (long long)st.st_size : -1;
}

/* Prints a captured file's content (after restore_std), for the log. */
static void show(const char *what, const char *path) {
    FILE *in = fopen(path, "rb");
    char buf[512];
    size_t n = in ? fread(buf, 1, sizeof buf - 1, in) : 0;
    if (in) fclose(in);
    buf[n] = '\0';
    fprintf(stderr, "  the library wrote to %s: %s\n", what, buf);
}

static int check_quiet(const char *what) {
    restore_std();
    long long out = size_of(out_path), err = size_of(err_path);
    if (out != 0) show("stdout", out_path);
    if (err != 0) show("stderr", err_path);
    if (out != 0 || err != 0) fprintf(stderr, "  (%s)\n", what);
    CHECK(out == 0);
    CHECK(err == 0);
    return out == 0 && err == 0;
}

/* Every operation, with successes and refusals. */
static void workload(NCZM_IMPL impl, const char *backend) {
    char path[4200], other[4200];
    zt_dataset(backend, "quiet", path, sizeof path);
    zt_dataset(backend, "quiet-missing", other, sizeof other);
    NCZMAP *map = NULL;
    unsigned char buf[8];
    size64_t len = 0;
    capture_std();
    int created = nczmap_create(impl, path, NC_CLOBBER, 0, NULL, &map);
    int wrote = created == NC_NOERR ? nczmap_write(map, "/g/a/0", 0, 4, "abcd") : created;
    int refusals = 0, ok = 0;
    if (map != NULL) {
        NClist *list = nclistnew();
        ok += nczmap_read(map, "/g/a/0", 0, 4, buf) == NC_NOERR;
        ok += nczmap_len(map, "/g/a/0", &len) == NC_NOERR;
        ok += nczmap_search(map, "/g", list) == NC_NOERR;
        ok += nczmap_flush(map) == NC_NOERR;
        refusals += nczmap_read(map, "/g/a/0", 2, 4, buf) == NC_EEDGE;
        refusals += nczmap_write(map, "/../x", 0, 1, "x") == NC_EINVAL;
        refusals += nczmap_write(map, "/g/a/0/b", 0, 1, "x") == NC_EINVAL;
        refusals += nczmap_exists(map, "/nothing") == NC_EEMPTY;
        refusals += nczmap_defineobj(map, NULL) == NC_EINVAL;
        nclistfreeall(list);
    }
    NCZMAP *missing = NULL;
    refusals += nczmap_open(impl, other, NC_NOWRITE, 0, NULL, &missing) == NC_EEMPTY;
    refusals += nczmap_open((NCZM_IMPL)99, path, NC_NOWRITE, 0, NULL, &missing) == NC_ENOTBUILT;
    refusals += nczmap_exists(NULL, "/x") == NC_EINVAL;
    int closed = map != NULL ? nczmap_close(map, 1) : NC_NOERR;
    check_quiet("the workload");
    CHECK_OK(created);
    CHECK_OK(wrote);
    CHECK_OK(closed);
    CHECK(ok == 4);
    CHECK(refusals == 8);
}

/* ---- GNZ files whose arrays are not all keys ------------------------------------- */

static void put_u32(unsigned char *b, uint32_t v) {
    for (int i = 0; i < 4; i++) b[i] = (unsigned char)(v >> (8 * i));
}

/* Arrays "a\0b" and "x/../y" (not keys) besides "ok" (4 bytes, 42). */
static void write_unkeyed_gnz(const char *path) {
    static const char json[] =
        "{\"arrays\": {\"a\\u0000b\": {\"dtype\": \"|u1\", \"offset\": 4096, \"shape\": [4]}, "
        "\"x/../y\": {\"dtype\": \"|u1\", \"offset\": 4100, \"shape\": [4]}, "
        "\"ok\": {\"dtype\": \"<i4\", \"offset\": 8192, \"shape\": []}}, "
        "\"metadata\": {}, \"version\": 1}";
    static unsigned char file[8196];
    memset(file, 0, sizeof file);
    memcpy(file, "GNZ1", 4);
    put_u32(file + 4, (uint32_t)strlen(json));
    memcpy(file + 8, json, strlen(json));
    memcpy(file + 4096, "abcdefgh", 8);
    file[8192] = 42;
    FILE *out = fopen(path, "wb");
    if (out == NULL || fwrite(file, 1, sizeof file, out) != sizeof file) exit(2);
    fclose(out);
}

/* Opens the file (writable when asked) and checks what the map is:
 * 0 when all is as documented, else a bit per difference. */
static int open_unkeyed(const char *path, int writable) {
    NCZMAP *map = NULL;
    int rc = nczmap_open(NCZM_GNZ, path, writable ? NC_WRITE : NC_NOWRITE, 0, NULL, &map);
    if (rc != NC_NOERR) return 1;
    int bad = 0;
    unsigned char b[4] = {0};
    if (nczmap_read(map, "/ok", 0, 4, b) != NC_NOERR || b[0] != 42) bad |= 2;
    if (nczmap_write(map, "/ok", 0, 1, "x") != NC_EPERM) bad |= 4;
    if (map->mode & NC_WRITE) bad |= 8;
    if (nczmap_close(map, 0) != NC_NOERR) bad |= 16;
    return bad;
}

static void unkeyed_arrays_print_nothing(void) {
    char path[4200];
    snprintf(path, sizeof path, "%s/unkeyed.gnz", zt_tmpdir());
    write_unkeyed_gnz(path);
    for (int writable = 0; writable < 2; writable++) {
        capture_std();
        int bad = open_unkeyed(path, writable);
        check_quiet(writable ? "writable open" : "read-only open");
        CHECK(bad == 0);
    }
}

/* In a child whose fd 2 is a pipe nobody reads, SIGPIPE as given: the
 * child's exit status is open_unkeyed's result (both opens). */
static void closed_pipe_stderr(int ignore_sigpipe) {
    char path[4200];
    snprintf(path, sizeof path, "%s/unkeyed.gnz", zt_tmpdir());
    write_unkeyed_gnz(path);
    fflush(stdout);
    fflush(stderr);
    pid_t pid = fork();
    if (pid < 0) exit(2);
    if (pid == 0) {
        int fds[2];
        if (pipe(fds) != 0) _exit(100);
        close(fds[0]);
        if (dup2(fds[1], 2) < 0) _exit(101);
        close(fds[1]);
        signal(SIGPIPE, ignore_sigpipe ? SIG_IGN : SIG_DFL);
        int bad = open_unkeyed(path, 0) | open_unkeyed(path, 1);
        _exit(bad);
    }
    int status = 0;
    if (waitpid(pid, &status, 0) != pid) exit(2);
    if (WIFSIGNALED(status))
        fprintf(stderr, "  SIGPIPE %s: the host died of signal %d\n",
                ignore_sigpipe ? "ignored" : "default", WTERMSIG(status));
    else if (WEXITSTATUS(status) != 0)
        fprintf(stderr, "  SIGPIPE %s: the opens went wrong (bits %d)\n",
                ignore_sigpipe ? "ignored" : "default", WEXITSTATUS(status));
    CHECK(WIFEXITED(status) && WEXITSTATUS(status) == 0);
}

int main(int argc, char **argv) {
    if (argc < 2) {
        fprintf(stderr, "usage: test_no_output BACKEND\n");
        return 2;
    }
    NCZM_IMPL impl = zt_backend(argv[1]);
    setenv("ZMAP_S3_STATS", "1", 1);
    workload(impl, argv[1]);
    if (impl == NCZM_GNZ) {
        unkeyed_arrays_print_nothing();
        closed_pipe_stderr(0);
        closed_pipe_stderr(1);
    }
    zt_cleanup();
    return zt_finish("test_no_output");
}
