/* Loading secret files (private keys, API key and user files, signing keys). The file is opened
 * first (symlinks followed, as Kubernetes mounts secrets through them) and then checked with
 * fstat on the open descriptor, so there is no window between check and use: it must be a
 * regular file owned by us or by root with no group or other permission bits. The contents are
 * returned in memory that bst_secret_free() wipes. */
#ifndef BASTION_COMMON_SECRETFILE_H
#define BASTION_COMMON_SECRETFILE_H

#include "status.h"

#include <stddef.h>

#define BST_SECRET_MAX_BYTES (1024 * 1024)

struct bst_secret {
    unsigned char *data; /* NUL-terminated for convenience; len excludes the NUL */
    size_t len;
};

/* Reads path into *out. On success the caller owns out->data and must release it with
 * bst_secret_free(). Returns BST_OK; BST_NOT_FOUND if it does not exist; BST_PERMISSION_DENIED
 * for a file that is not regular, has a foreign owner or group/other bits (err says which);
 * BST_RESOURCE_EXHAUSTED above BST_SECRET_MAX_BYTES; BST_INTERNAL for I/O errors. */
enum bst_status bst_secret_read(const char *path, struct bst_secret *out, struct bst_err *err);

/* Wipes and frees s->data; safe on a zeroed struct. */
void bst_secret_free(struct bst_secret *s);

/* Reads a non-secret file (certificates, CRLs, configuration) of at most max bytes into a
 * malloc'd NUL-terminated buffer owned by the caller. Same status codes as bst_secret_read,
 * without the permission rules. */
enum bst_status bst_file_read(const char *path, size_t max, char **out, size_t *len,
                              struct bst_err *err);

#endif
