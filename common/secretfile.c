/* Secret-file loader: open, then fstat the descriptor, then read. */
#include "secretfile.h"

#include <errno.h>
#include <fcntl.h>
#include <openssl/crypto.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

static enum bst_status read_fd(int fd, const char *path, size_t max, off_t size,
                               unsigned char **out, size_t *len, struct bst_err *err)
{
    unsigned char *buf;
    size_t got = 0;

    if (size < 0 || (size_t)size > max)
        return bst_errf(err, BST_RESOURCE_EXHAUSTED, "%s: file larger than %zu bytes", path, max);
    buf = malloc((size_t)size + 1);
    if (buf == NULL)
        return bst_errf(err, BST_RESOURCE_EXHAUSTED, "%s: out of memory", path);
    while (got < (size_t)size) {
        ssize_t n = read(fd, buf + got, (size_t)size - got);
        if (n < 0 && errno == EINTR)
            continue;
        if (n <= 0) {
            OPENSSL_cleanse(buf, (size_t)size + 1);
            free(buf);
            return bst_errf(err, BST_INTERNAL, "%s: read failed: %s", path,
                            n == 0 ? "file shrank while reading" : strerror(errno));
        }
        got += (size_t)n;
    }
    buf[got] = '\0';
    *out = buf;
    *len = got;
    return BST_OK;
}

static enum bst_status open_checked(const char *path, int *fd_out, struct stat *st,
                                    struct bst_err *err)
{
    int fd = open(path, O_RDONLY | O_CLOEXEC | O_NOCTTY);
    if (fd < 0) {
        if (errno == ENOENT)
            return bst_errf(err, BST_NOT_FOUND, "%s: no such file", path);
        return bst_errf(err, errno == EACCES ? BST_PERMISSION_DENIED : BST_INTERNAL,
                        "%s: cannot open: %s", path, strerror(errno));
    }
    if (fstat(fd, st) != 0) {
        int e = errno;
        close(fd);
        return bst_errf(err, BST_INTERNAL, "%s: fstat failed: %s", path, strerror(e));
    }
    if (!S_ISREG(st->st_mode)) {
        close(fd);
        return bst_errf(err, BST_PERMISSION_DENIED, "%s: not a regular file", path);
    }
    *fd_out = fd;
    return BST_OK;
}

enum bst_status bst_secret_read(const char *path, struct bst_secret *out, struct bst_err *err)
{
    struct stat st;
    int fd = -1;
    enum bst_status rv;

    out->data = NULL;
    out->len = 0;
    rv = open_checked(path, &fd, &st, err);
    if (rv != BST_OK)
        return rv;
    if (st.st_uid != geteuid() && st.st_uid != 0) {
        close(fd);
        return bst_errf(err, BST_PERMISSION_DENIED,
                        "%s: owned by uid %u; a secret file must be owned by us (uid %u) or root",
                        path, (unsigned)st.st_uid, (unsigned)geteuid());
    }
    if ((st.st_mode & 077) != 0) {
        close(fd);
        return bst_errf(err, BST_PERMISSION_DENIED,
                        "%s: mode %04o gives access to group or others; use chmod 600", path,
                        (unsigned)(st.st_mode & 07777));
    }
    rv = read_fd(fd, path, BST_SECRET_MAX_BYTES, st.st_size, &out->data, &out->len, err);
    close(fd);
    return rv;
}

void bst_secret_free(struct bst_secret *s)
{
    if (s == NULL || s->data == NULL)
        return;
    OPENSSL_cleanse(s->data, s->len + 1);
    free(s->data);
    s->data = NULL;
    s->len = 0;
}

enum bst_status bst_file_read(const char *path, size_t max, char **out, size_t *len,
                              struct bst_err *err)
{
    struct stat st;
    int fd = -1;
    enum bst_status rv;
    unsigned char *buf = NULL;

    *out = NULL;
    *len = 0;
    rv = open_checked(path, &fd, &st, err);
    if (rv != BST_OK)
        return rv;
    rv = read_fd(fd, path, max, st.st_size, &buf, len, err);
    close(fd);
    *out = (char *)buf;
    return rv;
}
