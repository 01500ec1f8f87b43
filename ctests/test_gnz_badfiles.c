/* GNZ: bad files through the C API, beyond tests/gnz_badfiles.rs (which
 * covers truncations and every class of bad header at offset 0):
 *
 * - the commit record at the tail (DESIGN.md "Recovery"): with a broken
 *   header at 0, a record with a bad CRC, an absurd or too large length, a
 *   generation that its JSON does not name, malformed JSON or offsets past
 *   the file, non-zero padding, or bytes after it, is no commit: NC_ENOTNC,
 *   and neither a read-only nor a writable open changes the file. A good
 *   record (CRC-32 computed here, independently of the library) opens, so
 *   the refusals are about the damage, not the construction. A record older
 *   than the header at 0 is ignored.
 * - things at the path that are not files: a FIFO (must not block: the
 *   open runs in a child bounded by alarm()), a character device, a
 *   symlink loop;
 * - an array name with a NUL character (not a key: the file opens
 *   read-only — mutations NC_EPERM, and no NC_WRITE in map->mode — and the
 *   other arrays are readable).
 */
// zmap-test-backends: gnz
#include "harness.h"

#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdint.h>
#include <sys/stat.h>
#include <sys/types.h>
#include <sys/wait.h>

static char dir[4096];

/* ---- building files ------------------------------------------------------- */

typedef struct {
    unsigned char *b;
    size_t len;
} Buf;

static void put(Buf *f, size_t at, const void *p, size_t n) {
    if (at + n > f->len) {
        f->b = realloc(f->b, at + n);
        if (f->b == NULL) exit(2);
        memset(f->b + f->len, 0, at + n - f->len);
        f->len = at + n;
    }
    memcpy(f->b + at, p, n);
}

static void put_u32(Buf *f, size_t at, uint32_t v) {
    unsigned char b[4];
    for (int i = 0; i < 4; i++) b[i] = (unsigned char)(v >> (8 * i));
    put(f, at, b, 4);
}

static void put_u64(Buf *f, size_t at, uint64_t v) {
    unsigned char b[8];
    for (int i = 0; i < 8; i++) b[i] = (unsigned char)(v >> (8 * i));
    put(f, at, b, 8);
}

/* `"GNZ1" | len | json` at offset 0. */
static void put_header(Buf *f, const char *json) {
    put(f, 0, "GNZ1", 4);
    put_u32(f, 4, (uint32_t)strlen(json));
    put(f, 8, json, strlen(json));
}

typedef struct {
    uint64_t len_field;   /* as written in the trailer */
    uint64_t generation;  /* as written in the trailer */
    uint32_t crc_xor;     /* flips CRC bits */
    unsigned char pad0;   /* first padding byte */
} Trailer;

/* Appends a commit record (json, then the 32-byte trailer) at the next
 * multiple of 8, as DESIGN.md step 2 writes it. */
static void put_record(Buf *f, const char *json, Trailer t) {
    size_t at = (f->len + 7) / 8 * 8;
    size_t n = strlen(json);
    put(f, at, json, n);
    size_t tr = at + n;
    put(f, tr, "GNZ1COPY", 8);
    put_u64(f, tr + 8, t.len_field);
    put_u64(f, tr + 16, t.generation);
    uint32_t crc = (uint32_t)zt_crc32(0, f->b + at, n);
    crc = (uint32_t)zt_crc32(crc, f->b + tr, 24);
    put_u32(f, tr + 24, crc ^ t.crc_xor);
    unsigned char pad[4] = {t.pad0, 0, 0, 0};
    put(f, tr + 28, pad, 4);
}

static void write_file(const char *path, const Buf *f) {
    FILE *out = fopen(path, "wb");
    CHECK(out != NULL && fwrite(f->b, 1, f->len, out) == f->len);
    if (out) fclose(out);
}

static int file_equals(const char *path, const Buf *f) {
    FILE *in = fopen(path, "rb");
    if (!in) return 0;
    unsigned char *b = malloc(f->len + 1);
    size_t n = b ? fread(b, 1, f->len + 1, in) : 0;
    fclose(in);
    int same = b && n == f->len && memcmp(b, f->b, n) == 0;
    free(b);
    return same;
}

/* ---- records --------------------------------------------------------------------- */

/* The data every record below describes: /a at 4096, 100 bytes. */
#define REC_JSON(gen) \
    "{\"arrays\": {\"/a\": {\"dtype\": \"|u1\", \"offset\": 4096, \"order\": \"C\", " \
    "\"shape\": [100]}}, \"metadata\": {\"zmap\": {\"generation\": " #gen "}}, \"version\": 1}"

static Buf base_file(int header_ok) {
    Buf f = {NULL, 0};
    unsigned char data[100];
    for (int i = 0; i < 100; i++) data[i] = (unsigned char)(i * 3 + 1);
    put(&f, 4096, data, sizeof data);
    put(&f, 4196, "\0\0\0\0", 4);
    if (header_ok) {
        /* An older commit: /a is 50 bytes. */
        put_header(&f, "{\"arrays\": {\"/a\": {\"dtype\": \"|u1\", \"offset\": 4096, "
                       "\"order\": \"C\", \"shape\": [50]}}, \"metadata\": {\"zmap\": "
                       "{\"generation\": 1}}, \"version\": 1}");
    } else {
        /* A torn header: the magic and a length, then zeros. */
        put(&f, 0, "GNZ1", 4);
        put_u32(&f, 4, 300);
    }
    return f;
}

static Trailer good(const char *json, uint64_t gen) {
    Trailer t = {strlen(json), gen, 0, 0};
    return t;
}

/* Opening `f` read-only and writable gives `want` and leaves it as it is;
 * on success /a has `alen` bytes, 3i+1. */
static void expect_open(const char *what, const Buf *f, int want, size64_t alen) {
    char path[4200];
    snprintf(path, sizeof path, "%s/record.gnz", dir);
    write_file(path, f);
    for (int writable = 0; writable < 2; writable++) {
        NCZMAP *map = NULL;
        int rc = nczmap_open(NCZM_GNZ, path, writable ? NC_WRITE : NC_NOWRITE, 0, NULL, &map);
        if (rc != want)
            fprintf(stderr, "  %s (%s open)\n", what, writable ? "writable" : "read-only");
        CHECK_CODE(rc, want);
        if (rc == NC_NOERR) {
            size64_t len = 0;
            unsigned char buf[100];
            CHECK_OK(nczmap_len(map, "/a", &len));
            CHECK(len == alen);
            if (len == alen && alen <= sizeof buf) {
                CHECK_OK(nczmap_read(map, "/a", 0, alen, buf));
                int same = 1;
                for (size64_t i = 0; i < alen; i++) same &= buf[i] == (unsigned char)(i * 3 + 1);
                CHECK(same);
            }
            CHECK_OK(nczmap_close(map, 0));
        } else {
            CHECK(map == NULL);
            if (!file_equals(path, f)) fprintf(stderr, "  %s: a failed open changed the file\n", what);
            CHECK(file_equals(path, f));
        }
        if (rc == NC_NOERR) write_file(path, f); /* the writable open may repair */
    }
}

static void records(void) {
    const char *json = REC_JSON(2);
    Buf f;

    /* Controls: a good record wins over a torn header, and over an older
     * valid header. */
    f = base_file(0);
    put_record(&f, json, good(json, 2));
    expect_open("good record, torn header", &f, NC_NOERR, 100);
    free(f.b);
    f = base_file(1);
    put_record(&f, json, good(json, 2));
    expect_open("good record, older header", &f, NC_NOERR, 100);
    free(f.b);
    /* No record: the torn header alone is not a GNZ file. */
    f = base_file(0);
    expect_open("torn header, no record", &f, NC_ENOTNC, 0);
    free(f.b);

    /* A record older than the header at 0 is left alone. */
    f = base_file(1);
    {
        const char *old = REC_JSON(0);
        put_record(&f, old, good(old, 0));
    }
    expect_open("record older than the header", &f, NC_NOERR, 50);
    free(f.b);

    static const struct {
        const char *what;
        int field; /* 0 crc, 1 len, 2 gen, 3 pad */
        uint64_t value;
    } damage[] = {
        {"record with a bad CRC", 0, 1},
        {"record length 2^64-1", 1, UINT64_MAX},
        {"record length 2^63", 1, (uint64_t)1 << 63},
        {"record length past the start of the file", 1, 1u << 20},
        {"record length one short", 1, 0},  /* len - 1, set below */
        {"record generation that its JSON does not name", 2, 3},
        {"record generation 0", 2, 0},
        {"record with non-zero padding", 3, 1},
    };
    for (size_t d = 0; d < sizeof damage / sizeof damage[0]; d++) {
        Trailer t = good(json, 2);
        switch (damage[d].field) {
        case 0: t.crc_xor = (uint32_t)damage[d].value; break;
        case 1: t.len_field = damage[d].value ? damage[d].value : strlen(json) - 1; break;
        case 2: t.generation = damage[d].value; break;
        default: t.pad0 = (unsigned char)damage[d].value; break;
        }
        f = base_file(0);
        put_record(&f, json, t);
        expect_open(damage[d].what, &f, NC_ENOTNC, 0);
        free(f.b);
    }

    /* Valid CRCs over bad content. */
    static const char *bad_json[] = {
        "{\"arrays\": {\"/a\": {\"dtype\": \"|u1\", \"offset\": 4096, \"shape\": [100]}}, "
        "\"metadata\": {\"zmap\": {\"generation\": 2}}, \"version\": 1",
        "{\"arrays\": {\"/a\": {\"dtype\": \"|u1\", \"offset\": 999999, \"shape\": [100]}}, "
        "\"metadata\": {\"zmap\": {\"generation\": 2}}, \"version\": 1}",
        "{\"arrays\": {\"/a\": {\"dtype\": \"|u1\", \"offset\": 4, \"shape\": [100]}}, "
        "\"metadata\": {\"zmap\": {\"generation\": 2}}, \"version\": 1}",
        "{\"arrays\": {\"/a\": {\"dtype\": \"<x8\", \"offset\": 4096, \"shape\": [1]}}, "
        "\"metadata\": {\"zmap\": {\"generation\": 2}}, \"version\": 1}",
        "{\"arrays\": {}, \"metadata\": {\"zmap\": {\"generation\": 2}}, \"version\": 7}",
        "[{\"metadata\": {\"zmap\": {\"generation\": 2}}}]",
        "",
    };
    for (size_t j = 0; j < sizeof bad_json / sizeof bad_json[0]; j++) {
        f = base_file(0);
        put_record(&f, bad_json[j], good(bad_json[j], 2));
        char what[64];
        snprintf(what, sizeof what, "record with a valid CRC over bad JSON #%zu", j);
        expect_open(what, &f, NC_ENOTNC, 0);
        free(f.b);
    }

    /* Bytes after the record: it is not at the tail any more. */
    f = base_file(0);
    put_record(&f, json, good(json, 2));
    put(&f, f.len, "\0", 1);
    expect_open("a byte after the record", &f, NC_ENOTNC, 0);
    free(f.b);
}

/* ---- not files ------------------------------------------------------------------- */

/* Runs nczmap_open (or create) on `path` in a child bounded by alarm(5).
 * Returns the status code, or 1 if the child blocked or crashed. */
static int open_in_child(const char *path, int mode, int create) {
    int fds[2];
    if (pipe(fds) != 0) return 1;
    fflush(stdout);
    fflush(stderr);
    pid_t pid = fork();
    if (pid == 0) {
        close(fds[0]);
        alarm(5);
        NCZMAP *map = NULL;
        int rc = create ? nczmap_create(NCZM_GNZ, path, mode, 0, NULL, &map)
                        : nczmap_open(NCZM_GNZ, path, mode, 0, NULL, &map);
        if (rc == NC_NOERR) nczmap_close(map, 0);
        if (write(fds[1], &rc, sizeof rc) != (ssize_t)sizeof rc) _exit(3);
        _exit(0);
    }
    close(fds[1]);
    int rc = 1, status = 0;
    if (read(fds[0], &rc, sizeof rc) != (ssize_t)sizeof rc) rc = 1;
    close(fds[0]);
    while (waitpid(pid, &status, 0) < 0 && errno == EINTR) {
    }
    if (!WIFEXITED(status) || WEXITSTATUS(status) != 0) {
        fprintf(stderr, "  %s %s (mode %d): the child %s %d\n", create ? "create" : "open", path,
                mode, WIFSIGNALED(status) ? "died of signal" : "exited with",
                WIFSIGNALED(status) ? WTERMSIG(status) : WEXITSTATUS(status));
        rc = 1;
    }
    return rc;
}

static void not_files(void) {
    char path[4200];
    snprintf(path, sizeof path, "%s/fifo.gnz", dir);
    CHECK(mkfifo(path, 0600) == 0);
    /* A FIFO is not a GNZ file; opening it must not wait for a writer. */
    CHECK_CODE(open_in_child(path, NC_NOWRITE, 0), NC_ENOTNC);
    CHECK_CODE(open_in_child(path, NC_WRITE, 0), NC_ENOTNC);
    /* create refuses what is not a GNZ file (NC_EEXIST), touching nothing. */
    int rc = open_in_child(path, NC_NOCLOBBER, 1);
    if (rc != NC_ENOTNC && rc != NC_EEXIST)
        fprintf(stderr, "  create on a FIFO gave %d (%s), not NC_EEXIST/NC_ENOTNC\n", rc,
                nczmap_strerror(rc));
    CHECK(rc == NC_ENOTNC || rc == NC_EEXIST);
    struct stat st;
    CHECK(stat(path, &st) == 0 && S_ISFIFO(st.st_mode));

    CHECK_CODE(open_in_child("/dev/null", NC_NOWRITE, 0), NC_ENOTNC);
    CHECK_CODE(open_in_child("/dev/zero", NC_NOWRITE, 0), NC_ENOTNC);

    snprintf(path, sizeof path, "%s/loop.gnz", dir);
    CHECK(symlink("loop.gnz", path) == 0);
    rc = open_in_child(path, NC_NOWRITE, 0);
    CHECK(rc < 0);
    rc = open_in_child(path, NC_WRITE, 0);
    CHECK(rc < 0);
}

/* ---- names -------------------------------------------------------------------------- */

static void nul_in_a_name(void) {
    Buf f = {NULL, 0};
    put_header(&f, "{\"arrays\": {\"a\\u0000b\": {\"dtype\": \"|u1\", \"offset\": 4096, "
                   "\"shape\": [4]}, \"ok\": {\"dtype\": \"<i4\", \"offset\": 8192, "
                   "\"shape\": []}}, \"metadata\": {}, \"version\": 1}");
    put(&f, 4096, "abcd", 4);
    put(&f, 8192, "\x2a\0\0\0", 4);
    put(&f, 12284, "\0\0\0\0", 4);
    char path[4200];
    snprintf(path, sizeof path, "%s/nul.gnz", dir);
    write_file(path, &f);
    for (int writable = 0; writable < 2; writable++) {
        NCZMAP *map = NULL;
        CHECK_OK(nczmap_open(NCZM_GNZ, path, writable ? NC_WRITE : NC_NOWRITE, 0, NULL, &map));
        if (map == NULL) continue;
        size64_t len = 0;
        unsigned char b[4] = {0};
        CHECK_OK(nczmap_len(map, "/ok", &len));
        CHECK(len == 4);
        CHECK_OK(nczmap_read(map, "/ok", 0, 4, b));
        CHECK(b[0] == 0x2a);
        CHECK_CODE(nczmap_exists(map, "/a"), NC_EEMPTY);
        CHECK_CODE(nczmap_write(map, "/ok", 0, 1, "x"), NC_EPERM);
        /* map->mode's NC_WRITE says what the map really allows (src/ffi). */
        if (map->mode & NC_WRITE)
            fprintf(stderr, "  a GNZ file made read-only by its names has NC_WRITE in map->mode\n");
        CHECK((map->mode & NC_WRITE) == 0);
        CHECK_OK(nczmap_close(map, 0));
    }
    CHECK(file_equals(path, &f));
    free(f.b);
}

int main(int argc, char **argv) {
    if (argc < 2 || zt_backend(argv[1]) != NCZM_GNZ) {
        printf("skipped: a GNZ test\n");
        return 77;
    }
    snprintf(dir, sizeof dir, "%s", zt_tmpdir());
    records();
    not_files();
    nul_in_a_name();
    zt_cleanup();
    return zt_finish("test_gnz_badfiles");
}
