/* Ed25519 checkpoint signing and verification (see sign.h). Key ids found in a log file are
 * untrusted: they are only ever compared with ids of keys already loaded, never used to open a
 * file. */
#include "sign.h"
#include "secretfile.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <openssl/bio.h>
#include <openssl/evp.h>
#include <openssl/pem.h>
#include <openssl/sha.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#define PUBKEY_FILE_MAX (64 * 1024)
#define PUBKEYS_MAX 1024

int audit_key_id_valid(const char *id)
{
    size_t n = id != NULL ? strlen(id) : 0;

    if (n == 0 || n > AUDIT_KEY_ID_MAX || id[0] == '.')
        return 0;
    for (size_t i = 0; i < n; i++) {
        char c = id[i];
        if (!((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
              c == '.' || c == '_' || c == '-'))
            return 0;
    }
    return 1;
}

void audit_key_id_derive(const unsigned char pub[AUDIT_PUBKEY_LEN], char out[AUDIT_KEY_ID_MAX + 1])
{
    unsigned char d[SHA256_DIGEST_LENGTH];

    EVP_Digest(pub, AUDIT_PUBKEY_LEN, d, NULL, EVP_sha256(), NULL);
    memcpy(out, "ed25519-", 8);
    bst_hex_encode(out + 8, d, 8);
}

static int raw_public(EVP_PKEY *pkey, unsigned char pub[AUDIT_PUBKEY_LEN])
{
    size_t n = AUDIT_PUBKEY_LEN;
    return EVP_PKEY_get_raw_public_key(pkey, pub, &n) == 1 && n == AUDIT_PUBKEY_LEN ? 0 : -1;
}

enum bst_status audit_signer_load(struct audit_signer **out, const char *path, const char *key_id,
                                  struct bst_err *err)
{
    struct bst_secret sec = {NULL, 0};
    struct audit_signer *s = NULL;
    EVP_PKEY *pkey = NULL;
    BIO *bio = NULL;
    enum bst_status rv;

    *out = NULL;
    if (key_id != NULL && key_id[0] != '\0' && !audit_key_id_valid(key_id))
        return bst_errf(err, BST_INVALID_ARGUMENT,
                        "signing key id '%.64s' must be 1-64 characters of A-Z a-z 0-9 . _ - "
                        "and not start with '.'",
                        key_id);
    rv = bst_secret_read(path, &sec, err);
    if (rv != BST_OK) {
        bst_err_prefix(err, "signing key");
        return rv;
    }
    bio = BIO_new_mem_buf(sec.data, (int)sec.len);
    if (bio != NULL)
        pkey = PEM_read_bio_PrivateKey(bio, NULL, NULL, NULL);
    BIO_free(bio);
    bst_secret_free(&sec);
    if (pkey == NULL || EVP_PKEY_get_base_id(pkey) != EVP_PKEY_ED25519) {
        rv = bst_errf(err, BST_INVALID_ARGUMENT, "signing key %s: not an Ed25519 private key (PEM)",
                      path);
        goto fail;
    }
    s = calloc(1, sizeof(*s));
    if (s == NULL) {
        rv = bst_errf(err, BST_RESOURCE_EXHAUSTED, "out of memory");
        goto fail;
    }
    if (raw_public(pkey, s->pub) != 0) {
        rv = bst_errf(err, BST_INTERNAL, "signing key %s: cannot derive the public key", path);
        goto fail;
    }
    if (key_id != NULL && key_id[0] != '\0') {
        snprintf(s->key_id, sizeof(s->key_id), "%s", key_id);
    } else {
        audit_key_id_derive(s->pub, s->key_id);
        s->key_id_derived = 1;
    }
    s->pkey = pkey;
    *out = s;
    return BST_OK;
fail:
    free(s);
    EVP_PKEY_free(pkey);
    return rv;
}

void audit_signer_free(struct audit_signer *s)
{
    if (s == NULL)
        return;
    EVP_PKEY_free(s->pkey);
    free(s);
}

enum bst_status audit_signer_sign(const struct audit_signer *s, uint64_t sequence,
                                  const unsigned char hash[AUDIT_HASH_LEN],
                                  unsigned char sig[AUDIT_SIG_LEN])
{
    unsigned char tbs[AUDIT_TBS_MAX];
    size_t n = audit_checkpoint_tbs(tbs, sequence, hash, s->key_id);
    size_t siglen = AUDIT_SIG_LEN;
    EVP_MD_CTX *ctx = EVP_MD_CTX_new();
    int ok;

    if (ctx == NULL)
        return BST_INTERNAL;
    /* Ed25519 is a one-shot scheme: no digest is named and EVP_DigestSign does it all. */
    ok = EVP_DigestSignInit(ctx, NULL, NULL, NULL, s->pkey) == 1 &&
         EVP_DigestSign(ctx, sig, &siglen, tbs, n) == 1 && siglen == AUDIT_SIG_LEN;
    EVP_MD_CTX_free(ctx);
    return ok ? BST_OK : BST_INTERNAL;
}

static char *pubkey_pem(EVP_PKEY *pkey)
{
    BIO *bio = BIO_new(BIO_s_mem());
    char *data = NULL, *copy = NULL;
    long n;

    if (bio == NULL)
        return NULL;
    if (PEM_write_bio_PUBKEY(bio, pkey) == 1) {
        n = BIO_get_mem_data(bio, &data);
        if (n > 0 && (copy = malloc((size_t)n + 1)) != NULL) {
            memcpy(copy, data, (size_t)n);
            copy[n] = '\0';
        }
    }
    BIO_free(bio);
    return copy;
}

char *audit_signer_public_pem(const struct audit_signer *s)
{
    return pubkey_pem(s->pkey);
}

/* Reads an Ed25519 public key PEM file (bounded) into a raw key. Returns 0 or -1. */
static int read_pubkey_file(const char *path, unsigned char pub[AUDIT_PUBKEY_LEN])
{
    char *data = NULL;
    size_t len = 0;
    BIO *bio;
    EVP_PKEY *pkey = NULL;
    int rc = -1;

    if (bst_file_read(path, PUBKEY_FILE_MAX, &data, &len, NULL) != BST_OK)
        return -1;
    bio = BIO_new_mem_buf(data, (int)len);
    if (bio != NULL)
        pkey = PEM_read_bio_PUBKEY(bio, NULL, NULL, NULL);
    if (pkey != NULL && EVP_PKEY_get_base_id(pkey) == EVP_PKEY_ED25519 &&
        raw_public(pkey, pub) == 0)
        rc = 0;
    EVP_PKEY_free(pkey);
    BIO_free(bio);
    free(data);
    return rc;
}

enum bst_status audit_signer_export(const struct audit_signer *s, const char *dir,
                                    struct bst_err *err)
{
    char path[4096], tmp[4200];
    unsigned char existing[AUDIT_PUBKEY_LEN];
    char *pem = NULL;
    size_t n;
    int fd = -1;
    enum bst_status rv = BST_OK;

    if (snprintf(path, sizeof(path), "%s/%s.pem", dir, s->key_id) >= (int)sizeof(path))
        return bst_errf(err, BST_INVALID_ARGUMENT, "public keys directory path too long");
    if (access(path, F_OK) == 0) {
        if (read_pubkey_file(path, existing) == 0 &&
            memcmp(existing, s->pub, AUDIT_PUBKEY_LEN) == 0)
            return BST_OK;
        return bst_errf(err, BST_ALREADY_EXISTS,
                        "%s holds another key: key id '%s' was used for a different key", path,
                        s->key_id);
    }
    if (mkdir(dir, 0755) != 0 && errno != EEXIST)
        return bst_errf(err, BST_UNAVAILABLE, "cannot create %s: %s", dir, strerror(errno));
    pem = pubkey_pem(s->pkey);
    if (pem == NULL)
        return bst_errf(err, BST_INTERNAL, "cannot encode the public key");
    /* Written under a temporary name and renamed, so a reader never sees half a key. */
    snprintf(tmp, sizeof(tmp), "%s.tmp.%ld", path, (long)getpid());
    fd = open(tmp, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC | O_NOFOLLOW, 0644);
    n = strlen(pem);
    if (fd < 0 || write(fd, pem, n) != (ssize_t)n || fsync(fd) != 0) {
        rv = bst_errf(err, BST_UNAVAILABLE, "cannot write %s: %s", tmp, strerror(errno));
        unlink(tmp);
        goto out;
    }
    if (rename(tmp, path) != 0) {
        rv = bst_errf(err, BST_UNAVAILABLE, "cannot rename %s: %s", tmp, strerror(errno));
        unlink(tmp);
    }
out:
    if (fd >= 0)
        close(fd);
    free(pem);
    return rv;
}

/* ---- Public key sets ----------------------------------------------------------------------- */

struct pubkey {
    char name[AUDIT_KEY_ID_MAX + 1];    /* file stem, "" if unusable as an id */
    char derived[AUDIT_KEY_ID_MAX + 1]; /* ed25519-... */
    EVP_PKEY *pkey;
};

struct audit_pubkeys {
    struct pubkey *keys;
    size_t n, cap;
};

struct audit_pubkeys *audit_pubkeys_new(void)
{
    return calloc(1, sizeof(struct audit_pubkeys));
}

void audit_pubkeys_free(struct audit_pubkeys *k)
{
    if (k == NULL)
        return;
    for (size_t i = 0; i < k->n; i++)
        EVP_PKEY_free(k->keys[i].pkey);
    free(k->keys);
    free(k);
}

size_t audit_pubkeys_count(const struct audit_pubkeys *k)
{
    return k != NULL ? k->n : 0;
}

enum bst_status audit_pubkeys_add_file(struct audit_pubkeys *k, const char *path,
                                       struct bst_err *err)
{
    unsigned char pub[AUDIT_PUBKEY_LEN];
    const char *base = strrchr(path, '/');
    struct pubkey *pk;
    size_t stem;

    if (k->n >= PUBKEYS_MAX)
        return bst_errf(err, BST_RESOURCE_EXHAUSTED, "more than %d public keys", PUBKEYS_MAX);
    if (read_pubkey_file(path, pub) != 0)
        return bst_errf(err, BST_INVALID_ARGUMENT, "%s: not an Ed25519 public key (PEM)", path);
    if (k->n == k->cap) {
        size_t cap = k->cap ? 2 * k->cap : 8;
        struct pubkey *p = realloc(k->keys, cap * sizeof(*p));
        if (p == NULL)
            return bst_errf(err, BST_RESOURCE_EXHAUSTED, "out of memory");
        k->keys = p;
        k->cap = cap;
    }
    pk = &k->keys[k->n];
    memset(pk, 0, sizeof(*pk));
    pk->pkey = EVP_PKEY_new_raw_public_key(EVP_PKEY_ED25519, NULL, pub, sizeof(pub));
    if (pk->pkey == NULL)
        return bst_errf(err, BST_RESOURCE_EXHAUSTED, "out of memory");
    base = base != NULL ? base + 1 : path;
    stem = strlen(base);
    if (stem > 4 && strcmp(base + stem - 4, ".pem") == 0)
        stem -= 4;
    if (stem <= AUDIT_KEY_ID_MAX) {
        memcpy(pk->name, base, stem);
        pk->name[stem] = '\0';
        if (!audit_key_id_valid(pk->name))
            pk->name[0] = '\0';
    }
    audit_key_id_derive(pub, pk->derived);
    k->n++;
    return BST_OK;
}

static int cmp_names(const void *a, const void *b)
{
    return strcmp(*(const char *const *)a, *(const char *const *)b);
}

enum bst_status audit_pubkeys_load(struct audit_pubkeys **out, const char *dir, struct bst_err *err)
{
    struct audit_pubkeys *k;
    DIR *d = opendir(dir);
    struct dirent *de;
    char **names = NULL;
    size_t n = 0, cap = 0;
    enum bst_status rv = BST_OK;

    *out = NULL;
    if (d == NULL)
        return bst_errf(err, BST_NOT_FOUND, "public keys directory %s: %s", dir, strerror(errno));
    k = audit_pubkeys_new();
    if (k == NULL) {
        closedir(d);
        return bst_errf(err, BST_RESOURCE_EXHAUSTED, "out of memory");
    }
    while ((de = readdir(d)) != NULL) {
        size_t l = strlen(de->d_name);
        if (l <= 4 || strcmp(de->d_name + l - 4, ".pem") != 0 || de->d_name[0] == '.')
            continue;
        if (n >= PUBKEYS_MAX)
            break;
        if (n == cap) {
            size_t c2 = cap ? 2 * cap : 16;
            char **p = realloc(names, c2 * sizeof(*p));
            if (p == NULL) {
                rv = bst_errf(err, BST_RESOURCE_EXHAUSTED, "out of memory");
                goto out;
            }
            names = p;
            cap = c2;
        }
        names[n] = strdup(de->d_name);
        if (names[n] == NULL) {
            rv = bst_errf(err, BST_RESOURCE_EXHAUSTED, "out of memory");
            goto out;
        }
        n++;
    }
    if (n > 0)
        qsort(names, n, sizeof(*names), cmp_names);
    for (size_t i = 0; i < n; i++) {
        char path[4096];
        struct bst_err ignored;
        if (snprintf(path, sizeof(path), "%s/%s", dir, names[i]) >= (int)sizeof(path))
            continue;
        /* A file that holds no Ed25519 public key is skipped: the directory may hold others. */
        (void)audit_pubkeys_add_file(k, path, &ignored);
    }
    if (k->n == 0)
        rv = bst_errf(err, BST_NOT_FOUND, "no Ed25519 public key (*.pem) in %s", dir);
out:
    closedir(d);
    for (size_t i = 0; i < n; i++)
        free(names[i]);
    free(names);
    if (rv != BST_OK) {
        audit_pubkeys_free(k);
        return rv;
    }
    *out = k;
    return BST_OK;
}

int audit_pubkeys_verify(const struct audit_pubkeys *k, const char *key_id, uint64_t sequence,
                         const unsigned char hash[AUDIT_HASH_LEN], const unsigned char *sig,
                         size_t sig_len)
{
    unsigned char tbs[AUDIT_TBS_MAX];
    size_t n;
    int found = 0;

    if (k == NULL || key_id == NULL || strlen(key_id) > 255)
        return -1;
    n = audit_checkpoint_tbs(tbs, sequence, hash, key_id);
    for (size_t i = 0; i < k->n; i++) {
        const struct pubkey *pk = &k->keys[i];
        EVP_MD_CTX *ctx;
        int ok;

        if (strcmp(pk->name, key_id) != 0 && strcmp(pk->derived, key_id) != 0)
            continue;
        found = 1;
        ctx = EVP_MD_CTX_new();
        if (ctx == NULL)
            return 0;
        ok = EVP_DigestVerifyInit(ctx, NULL, NULL, NULL, pk->pkey) == 1 &&
             EVP_DigestVerify(ctx, sig, sig_len, tbs, n) == 1;
        EVP_MD_CTX_free(ctx);
        if (ok)
            return 1;
    }
    return found ? 0 : -1;
}
