/* Password hashing with scrypt through OpenSSL's EVP_KDF "SCRYPT", and the hash string format
 * of the users file: "$scrypt$ln=15,r=8,p=1$<salt>$<hash>" (base64url without padding). */
#include "authn_internal.h"

#include <openssl/core_names.h>
#include <openssl/crypto.h>
#include <openssl/kdf.h>
#include <openssl/params.h>
#include <openssl/rand.h>
#include <stdio.h>
#include <string.h>

uint64_t auth_scrypt_memory(const struct scrypt_params *sp)
{
    /* OpenSSL's own accounting: 128 * r * (N + p + 2) bytes, plus slack. */
    return 128ULL * sp->r * (sp->n + sp->p + 2) + 65536;
}

int auth_scrypt(const char *pw, size_t pwlen, const unsigned char *salt, size_t saltlen,
                const struct scrypt_params *sp, uint64_t maxmem, unsigned char *out, size_t outlen)
{
    EVP_KDF *kdf = EVP_KDF_fetch(NULL, "SCRYPT", NULL);
    EVP_KDF_CTX *ctx = kdf != NULL ? EVP_KDF_CTX_new(kdf) : NULL;
    uint64_t n = sp->n, mm = maxmem;
    uint32_t r = sp->r, p = sp->p;
    OSSL_PARAM params[7];
    int rv = -1;

    if (ctx == NULL)
        goto fail;
    /* An empty password is valid input to scrypt; OpenSSL wants a non-NULL pointer. */
    params[0] =
        OSSL_PARAM_construct_octet_string(OSSL_KDF_PARAM_PASSWORD, (void *)(pw ? pw : ""), pwlen);
    params[1] = OSSL_PARAM_construct_octet_string(OSSL_KDF_PARAM_SALT, (void *)salt, saltlen);
    params[2] = OSSL_PARAM_construct_uint64(OSSL_KDF_PARAM_SCRYPT_N, &n);
    params[3] = OSSL_PARAM_construct_uint32(OSSL_KDF_PARAM_SCRYPT_R, &r);
    params[4] = OSSL_PARAM_construct_uint32(OSSL_KDF_PARAM_SCRYPT_P, &p);
    params[5] = OSSL_PARAM_construct_uint64(OSSL_KDF_PARAM_SCRYPT_MAXMEM, &mm);
    params[6] = OSSL_PARAM_construct_end();
    if (EVP_KDF_derive(ctx, out, outlen, params) == 1)
        rv = 0;
fail:
    EVP_KDF_CTX_free(ctx);
    EVP_KDF_free(kdf);
    return rv;
}

/* Reads a decimal number of at most 10 digits ending at one of the stop characters. */
static int read_num(const char **s, uint64_t *out)
{
    uint64_t v = 0;
    int nd = 0;
    while (**s >= '0' && **s <= '9' && nd < 10) {
        v = v * 10 + (uint64_t)(**s - '0');
        (*s)++;
        nd++;
    }
    if (nd == 0 || (**s >= '0' && **s <= '9'))
        return -1;
    *out = v;
    return 0;
}

int auth_scrypt_parse(const char *s, struct scrypt_params *sp, unsigned char *salt,
                      size_t *salt_len, unsigned char *hash, size_t *hash_len, const char **why)
{
    uint64_t ln, r, p;
    const char *salt_b64, *hash_b64, *dollar;

    if (strncmp(s, "$scrypt$ln=", 11) != 0) {
        *why = "expected \"$scrypt$ln=...\" (make one with `bastion users hash`)";
        return -1;
    }
    s += 11;
    if (read_num(&s, &ln) != 0 || strncmp(s, ",r=", 3) != 0) {
        *why = "bad ln parameter";
        return -1;
    }
    s += 3;
    if (read_num(&s, &r) != 0 || strncmp(s, ",p=", 3) != 0) {
        *why = "bad r parameter";
        return -1;
    }
    s += 3;
    if (read_num(&s, &p) != 0 || *s != '$') {
        *why = "bad p parameter";
        return -1;
    }
    /* Bounds: from "too weak to be worth having" to "more than a login may cost". */
    if (ln < 10 || ln > 22 || r < 1 || r > 32 || p < 1 || p > 16) {
        *why = "parameters out of range (ln 10-22, r 1-32, p 1-16)";
        return -1;
    }
    salt_b64 = s + 1;
    dollar = strchr(salt_b64, '$');
    if (dollar == NULL) {
        *why = "missing hash";
        return -1;
    }
    hash_b64 = dollar + 1;
    if (auth_b64url_decode(salt_b64, (size_t)(dollar - salt_b64), salt, 64, salt_len) != 0 ||
        *salt_len < 16) {
        *why = "salt must be base64url of 16-48 bytes";
        return -1;
    }
    if (auth_b64url_decode(hash_b64, strlen(hash_b64), hash, 64, hash_len) != 0 || *hash_len < 16) {
        *why = "hash must be base64url of 16-48 bytes";
        return -1;
    }
    sp->n = 1ULL << ln;
    sp->r = (uint32_t)r;
    sp->p = (uint32_t)p;
    return 0;
}

enum bst_status authn_password_hash(const char *password, char *out, size_t out_len)
{
    struct scrypt_params sp = {1ULL << AUTH_SCRYPT_DEFAULT_LN, 8, 1};
    unsigned char salt[AUTH_SCRYPT_SALT_LEN], hash[AUTH_SCRYPT_HASH_LEN];
    char salt_b64[32], hash_b64[64];
    size_t pwlen;
    int w;

    if (password == NULL || (pwlen = strlen(password)) == 0 || pwlen > AUTH_MAX_PASSWORD)
        return BST_INVALID_ARGUMENT;
    if (out_len < 128)
        return BST_OUT_OF_RANGE;
    if (RAND_bytes(salt, sizeof(salt)) != 1)
        return BST_INTERNAL;
    if (auth_scrypt(password, pwlen, salt, sizeof(salt), &sp, 2 * auth_scrypt_memory(&sp), hash,
                    sizeof(hash)) != 0)
        return BST_INTERNAL;
    auth_b64url_encode(salt_b64, sizeof(salt_b64), salt, sizeof(salt));
    auth_b64url_encode(hash_b64, sizeof(hash_b64), hash, sizeof(hash));
    OPENSSL_cleanse(hash, sizeof(hash));
    w = snprintf(out, out_len, "$scrypt$ln=%d,r=%u,p=%u$%s$%s", AUTH_SCRYPT_DEFAULT_LN, sp.r, sp.p,
                 salt_b64, hash_b64);
    if (w < 0 || (size_t)w >= out_len)
        return BST_OUT_OF_RANGE;
    return BST_OK;
}
