/* FILE: only regular files are objects and only directories are
 * intermediate keys (issue 10, item 1).
 *
 * A FIFO, a socket and (when mknod is permitted) a character device are
 * placed at keys of an open dataset. Every operation on such a key
 * (exists, len, read, write, defineobj, truncate, remove) answers the one
 * documented code NC_EINVAL, and none of them is ever opened for writing:
 * a FIFO with a reader attached receives no byte, a device node is left as
 * it was. Keys below such a file are missing (NC_EEMPTY) to queries and
 * refused (NC_EINVAL) to writes; search lists none of them; close(map, 1)
 * unlinks them without opening them. */
// zmap-test-backends: file
#define _DEFAULT_SOURCE /* mknod, S_IFCHR */
#include "harness.h"

#include <errno.h>
#include <fcntl.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/sysmacros.h>
#include <sys/types.h>
#include <sys/un.h>

static char ds[4096];

/* Every operation on `key` (a non-regular file) gives NC_EINVAL. */
static void check_refused(NCZMAP *map, const char *key) {
    size64_t len = 0;
    char buf[8] = "unread!";
    CHECK_CODE(nczmap_exists(map, key), NC_EINVAL);
    CHECK_CODE(nczmap_len(map, key, &len), NC_EINVAL);
    CHECK_CODE(nczmap_read(map, key, 0, 4, buf), NC_EINVAL);
    CHECK_CODE(nczmap_read(map, key, 0, 0, buf), NC_EINVAL);
    CHECK(memcmp(buf, "unread!", 8) == 0);
    CHECK_CODE(nczmap_write(map, key, 0, 6, "pwned!"), NC_EINVAL);
    CHECK_CODE(nczmap_write(map, key, 100, 6, "pwned!"), NC_EINVAL);
    CHECK_CODE(nczmap_defineobj(map, key), NC_EINVAL);
    CHECK_CODE(nczmap_truncate(map, key, 0), NC_EINVAL);
    CHECK_CODE(nczmap_truncate(map, key, 10), NC_EINVAL);
    CHECK_CODE(nczmap_remove(map, key), NC_EINVAL);
}

/* A key below a non-directory is no intermediate key. */
static void check_below(NCZMAP *map, const char *key) {
    CHECK_CODE(nczmap_exists(map, key), NC_EEMPTY);
    CHECK_CODE(nczmap_write(map, key, 0, 1, "x"), NC_EINVAL);
    CHECK_CODE(nczmap_defineobj(map, key), NC_EINVAL);
}

static void path_in(char *out, size_t n, const char *name) {
    snprintf(out, n, "%s/%s", ds, name);
}

int main(int argc, char **argv) {
    (void)argc;
    (void)argv;
    zt_dataset("file", "special", ds, sizeof ds);
    NCZMAP *map = NULL;
    CHECK_OK(nczmap_create(NCZM_FILE, ds, 0, 0, NULL, &map));
    if (!map) return zt_finish("test_file_special");
    CHECK_OK(nczmap_write(map, "/.zgroup", 0, 2, "{}"));
    CHECK_OK(nczmap_write(map, "/obj", 0, 4, "data"));

    /* A FIFO with a reader: a write-open would succeed and deliver. */
    char fifo[4200];
    path_in(fifo, sizeof fifo, "fifo");
    CHECK(mkfifo(fifo, 0600) == 0);
    int reader = open(fifo, O_RDONLY | O_NONBLOCK);
    CHECK(reader >= 0);
    check_refused(map, "/fifo");
    check_below(map, "/fifo/below");
    char got[64];
    ssize_t n = read(reader, got, sizeof got);
    CHECK(n <= 0); /* no byte reached the FIFO */
    struct stat st;
    CHECK(lstat(fifo, &st) == 0 && S_ISFIFO(st.st_mode));

    /* A socket. */
    char sock[4200];
    path_in(sock, sizeof sock, "sock");
    int sfd = socket(AF_UNIX, SOCK_STREAM, 0);
    struct sockaddr_un addr;
    memset(&addr, 0, sizeof addr);
    addr.sun_family = AF_UNIX;
    int bound = -1;
    if (strlen(sock) < sizeof addr.sun_path) {
        memcpy(addr.sun_path, sock, strlen(sock) + 1);
        bound = bind(sfd, (struct sockaddr *)&addr, sizeof addr);
    }
    if (bound == 0) {
        check_refused(map, "/sock");
        check_below(map, "/sock/below");
        CHECK(lstat(sock, &st) == 0 && S_ISSOCK(st.st_mode));
    } else {
        printf("skipped socket sub-check: %s\n", strerror(errno));
    }

    /* A character device with /dev/null's numbers (needs CAP_MKNOD). */
    char dev[4200];
    path_in(dev, sizeof dev, "dev");
    struct stat null_st;
    int have_dev = stat("/dev/null", &null_st) == 0 && S_ISCHR(null_st.st_mode) &&
                   mknod(dev, S_IFCHR | 0666, null_st.st_rdev) == 0;
    if (have_dev) {
        check_refused(map, "/dev");
        check_below(map, "/dev/below");
        CHECK(lstat(dev, &st) == 0 && S_ISCHR(st.st_mode) &&
              st.st_rdev == null_st.st_rdev);
    } else {
        printf("skipped device sub-check: %s\n", strerror(errno));
    }

    /* Only the objects are listed, and they are untouched. */
    NClist *list = nclistnew();
    CHECK_OK(nczmap_search(map, "/", list));
    CHECK(nclistlength(list) == 2);
    if (nclistlength(list) == 2) {
        CHECK(strcmp((const char *)nclistget(list, 0), "/.zgroup") == 0);
        CHECK(strcmp((const char *)nclistget(list, 1), "/obj") == 0);
    }
    nclistfreeall(list);
    char buf[4];
    CHECK_OK(nczmap_read(map, "/obj", 0, 4, buf));
    CHECK(memcmp(buf, "data", 4) == 0);

    /* Delete unlinks them without opening them (the FIFO reader stays). */
    CHECK_OK(nczmap_close(map, 1));
    CHECK(access(ds, F_OK) != 0);
    n = read(reader, got, sizeof got);
    CHECK(n <= 0);
    if (reader >= 0) close(reader);
    if (sfd >= 0) close(sfd);
    zt_cleanup();
    return zt_finish("test_file_special");
}
