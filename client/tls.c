/* Channel TLS contexts and per-connection SSL objects (see tls.h). */
#include "tls.h"

#include "secretfile.h"

#include <openssl/err.h>
#include <openssl/pem.h>
#include <openssl/x509v3.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define MAX_PEM_FILE (1024 * 1024)

/* Mozilla intermediate 6.0 for TLS 1.2 (ECDHE with AEAD only); TLS 1.3 suites are OpenSSL's
 * defaults, all AEAD. */
static const char tls12_ciphers[] =
    "ECDHE-ECDSA-AES128-GCM-SHA256:ECDHE-RSA-AES128-GCM-SHA256:ECDHE-ECDSA-AES256-GCM-SHA384:"
    "ECDHE-RSA-AES256-GCM-SHA384:ECDHE-ECDSA-CHACHA20-POLY1305:ECDHE-RSA-CHACHA20-POLY1305";

/* A passphrase prompt on a terminal would hang a library: encrypted keys are refused. */
static int no_passphrase(char *buf, int size, int rwflag, void *u)
{
    (void)buf;
    (void)size;
    (void)rwflag;
    (void)u;
    return -1;
}

static const char *ossl_reason(void)
{
    unsigned long e = ERR_peek_last_error();
    const char *r = e != 0 ? ERR_reason_error_string(e) : NULL;
    return r != NULL ? r : "unknown OpenSSL error";
}

static bastion_status cred_err(char *err, size_t errlen, const char *what, const char *path,
                               const char *why)
{
    bcl_errbuf(err, errlen, "%s %s: %s", what, path, why);
    ERR_clear_error();
    return BASTION_E_CREDENTIALS;
}

static bastion_status read_pem(const char *what, const char *path, BIO **out, char **buf, char *err,
                               size_t errlen)
{
    struct bst_err e = {0, ""};
    size_t len;
    if (bst_file_read(path, MAX_PEM_FILE, buf, &len, &e) != 0)
        return cred_err(err, errlen, what, path, e.msg);
    *out = BIO_new_mem_buf(*buf, (int)len);
    if (*out == NULL) {
        free(*buf);
        *buf = NULL;
        return BASTION_E_NOMEM;
    }
    return BASTION_OK;
}

static bastion_status load_ca(SSL_CTX *ctx, const char *path, char *err, size_t errlen)
{
    BIO *bio = NULL;
    char *buf = NULL;
    STACK_OF(X509_INFO) * infos;
    X509_STORE *store = SSL_CTX_get_cert_store(ctx);
    int n = 0;
    bastion_status rv = read_pem("CA file", path, &bio, &buf, err, errlen);

    if (rv != BASTION_OK)
        return rv;
    infos = PEM_X509_INFO_read_bio(bio, NULL, no_passphrase, NULL);
    BIO_free(bio);
    free(buf);
    if (infos == NULL)
        return cred_err(err, errlen, "CA file", path, ossl_reason());
    for (int i = 0; i < sk_X509_INFO_num(infos); i++) {
        X509_INFO *info = sk_X509_INFO_value(infos, i);
        if (info->x509 != NULL && X509_STORE_add_cert(store, info->x509) == 1)
            n++;
    }
    sk_X509_INFO_pop_free(infos, X509_INFO_free);
    if (n == 0)
        return cred_err(err, errlen, "CA file", path, "no certificate in the file");
    return BASTION_OK;
}

static bastion_status load_cert(SSL_CTX *ctx, const char *path, char *err, size_t errlen)
{
    BIO *bio = NULL;
    char *buf = NULL;
    X509 *leaf, *extra;
    bastion_status rv = read_pem("client certificate", path, &bio, &buf, err, errlen);

    if (rv != BASTION_OK)
        return rv;
    leaf = PEM_read_bio_X509(bio, NULL, no_passphrase, NULL);
    if (leaf == NULL || SSL_CTX_use_certificate(ctx, leaf) != 1) {
        rv = cred_err(err, errlen, "client certificate", path,
                      leaf == NULL ? "no PEM certificate in the file" : ossl_reason());
        goto out;
    }
    /* Intermediates after the leaf are sent with it. */
    while ((extra = PEM_read_bio_X509(bio, NULL, no_passphrase, NULL)) != NULL) {
        if (SSL_CTX_add0_chain_cert(ctx, extra) != 1) {
            X509_free(extra);
            rv = cred_err(err, errlen, "client certificate", path, ossl_reason());
            goto out;
        }
    }
    ERR_clear_error(); /* the end of the file is reported as an error */
out:
    X509_free(leaf);
    BIO_free(bio);
    free(buf);
    return rv;
}

static bastion_status load_key(SSL_CTX *ctx, const char *path, char *err, size_t errlen)
{
    struct bst_secret s = {NULL, 0};
    struct bst_err e = {0, ""};
    BIO *bio;
    EVP_PKEY *key;
    bastion_status rv = BASTION_OK;

    if (bst_secret_read(path, &s, &e) != 0)
        return cred_err(err, errlen, "private key", path, e.msg);
    bio = BIO_new_mem_buf(s.data, (int)s.len);
    if (bio == NULL) {
        bst_secret_free(&s);
        return BASTION_E_NOMEM;
    }
    key = PEM_read_bio_PrivateKey(bio, NULL, no_passphrase, NULL);
    BIO_free(bio);
    bst_secret_free(&s);
    if (key == NULL)
        return cred_err(err, errlen, "private key", path, "not an unencrypted PEM private key");
    if (SSL_CTX_use_PrivateKey(ctx, key) != 1)
        rv = cred_err(err, errlen, "private key", path,
                      ERR_GET_REASON(ERR_peek_last_error()) == X509_R_KEY_VALUES_MISMATCH
                          ? "does not match the client certificate"
                          : ossl_reason());
    else if (SSL_CTX_check_private_key(ctx) != 1)
        rv = cred_err(err, errlen, "private key", path, "does not match the client certificate");
    EVP_PKEY_free(key);
    return rv;
}

bastion_status bcl_tls_ctx_new(SSL_CTX **out, const struct bastion_options *o, char *err,
                               size_t errlen)
{
    static const unsigned char alpn[] = {2, 'h', '2'};
    SSL_CTX *ctx = SSL_CTX_new(TLS_client_method());
    bastion_status rv;

    *out = NULL;
    if (ctx == NULL)
        return BASTION_E_NOMEM;
    SSL_CTX_set_min_proto_version(ctx, TLS1_2_VERSION);
    SSL_CTX_set_options(ctx, SSL_OP_NO_RENEGOTIATION | SSL_OP_NO_COMPRESSION | SSL_OP_NO_TICKET);
    if (SSL_CTX_set_cipher_list(ctx, tls12_ciphers) != 1 ||
        SSL_CTX_set1_groups_list(ctx, "X25519:P-256:P-384") != 1 ||
        SSL_CTX_set_alpn_protos(ctx, alpn, sizeof(alpn)) != 0) { /* alpn: 0 is success */
        rv = BASTION_E_NOMEM;
        goto fail;
    }
    SSL_CTX_set_verify(ctx, SSL_VERIFY_PEER, NULL);
    if (o->ca_file != NULL) {
        if ((rv = load_ca(ctx, o->ca_file, err, errlen)) != BASTION_OK)
            goto fail;
    } else if (SSL_CTX_set_default_verify_paths(ctx) != 1) {
        rv = cred_err(err, errlen, "system CA store", "", ossl_reason());
        goto fail;
    }
    if (o->cert_file != NULL) {
        if ((rv = load_cert(ctx, o->cert_file, err, errlen)) != BASTION_OK ||
            (rv = load_key(ctx, o->key_file, err, errlen)) != BASTION_OK)
            goto fail;
    }
    *out = ctx;
    return BASTION_OK;
fail:
    SSL_CTX_free(ctx);
    return rv;
}

SSL *bcl_tls_ssl_new(SSL_CTX *ctx, const char *name)
{
    SSL *ssl = SSL_new(ctx);
    X509_VERIFY_PARAM *param;
    if (ssl == NULL)
        return NULL;
    param = SSL_get0_param(ssl);
    X509_VERIFY_PARAM_set_hostflags(param, X509_CHECK_FLAG_NO_PARTIAL_WILDCARDS);
    if (bcl_is_ip_literal(name)) {
        /* RFC 6066 forbids IP literals in SNI; the certificate needs the address as an IP SAN. */
        if (X509_VERIFY_PARAM_set1_ip_asc(param, name) != 1)
            goto fail;
    } else if (X509_VERIFY_PARAM_set1_host(param, name, 0) != 1 ||
               SSL_set_tlsext_host_name(ssl, name) != 1) {
        goto fail;
    }
    return ssl;
fail:
    SSL_free(ssl);
    return NULL;
}

const char *bcl_tls_error_string(unsigned long e, char *buf, size_t len)
{
    const char *r;
    if (e == 0)
        return NULL;
    /* OpenSSL 3 packs errno values of failed socket calls; they have no reason string. */
    if (ERR_SYSTEM_ERROR(e)) {
        snprintf(buf, len, "%s", strerror((int)ERR_GET_REASON(e)));
        return buf;
    }
    /* libevent's OpenSSL bufferevent also reports bare SSL_get_error() values. */
    if (ERR_GET_LIB(e) == 0) {
        snprintf(buf, len, "%s",
                 e == SSL_ERROR_SYSCALL       ? "the connection was reset or closed abruptly"
                 : e == SSL_ERROR_ZERO_RETURN ? "the server closed the TLS session"
                                              : "TLS protocol error");
        return buf;
    }
    r = ERR_reason_error_string(e);
    if (r == NULL) {
        ERR_error_string_n(e, buf, len);
        return buf;
    }
    return r;
}

void bcl_tls_describe(SSL *ssl, unsigned long ossl_err, const char *name, char *buf, size_t len)
{
    long vr = ssl != NULL ? SSL_get_verify_result(ssl) : X509_V_OK;
    char ebuf[256];
    const char *reason = bcl_tls_error_string(ossl_err, ebuf, sizeof(ebuf));

    if (vr != X509_V_OK) {
        if (vr == X509_V_ERR_HOSTNAME_MISMATCH || vr == X509_V_ERR_IP_ADDRESS_MISMATCH)
            snprintf(buf, len,
                     "server certificate verification failed: %s (the certificate is not "
                     "valid for '%s')",
                     X509_verify_cert_error_string(vr), name);
        else
            snprintf(buf, len, "server certificate verification failed: %s",
                     X509_verify_cert_error_string(vr));
        return;
    }
    if (reason != NULL) {
        /* Alerts after our part of the handshake are the server refusing us, typically our
         * client certificate (TLS 1.3 sends them after the client considers itself done). */
        if (strstr(reason, "alert") != NULL)
            snprintf(buf, len, "the server refused the TLS connection: %s", reason);
        else
            snprintf(buf, len, "TLS handshake failed: %s", reason);
        return;
    }
    snprintf(buf, len,
             "the server closed the connection during the TLS handshake (it may have "
             "refused the client certificate)");
}
