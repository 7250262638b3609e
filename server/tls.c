/* Server SSL_CTX construction and the reloadable holder. */
#include "tls.h"
#include "log.h"
#include "reload.h"
#include "secretfile.h"

#include <openssl/err.h>
#include <openssl/pem.h>
#include <openssl/x509v3.h>
#include <stdlib.h>
#include <string.h>

/* Mozilla server-side TLS guidelines 6.0, "intermediate": TLS 1.2 suites. */
static const char tls12_ciphers[] = "ECDHE-ECDSA-AES128-GCM-SHA256:ECDHE-RSA-AES128-GCM-SHA256:"
                                    "ECDHE-ECDSA-AES256-GCM-SHA384:ECDHE-RSA-AES256-GCM-SHA384:"
                                    "ECDHE-ECDSA-CHACHA20-POLY1305:ECDHE-RSA-CHACHA20-POLY1305";
static const char tls13_suites[] =
    "TLS_AES_128_GCM_SHA256:TLS_AES_256_GCM_SHA384:TLS_CHACHA20_POLY1305_SHA256";
/* X25519MLKEM768 is in 6.0 but absent from OpenSSL 3.0. */
static const char groups[] = "X25519:P-256:P-384";

static const unsigned char session_ctx_id[] = "bastiond";

struct tls_holder {
    struct bst_snap *snap; /* SSL_CTX * */
    struct config paths;   /* only the tls_* members are set */
};

static enum bst_status ssl_err(struct bst_err *err, const char *what, const char *path)
{
    char buf[256];
    unsigned long e = ERR_get_error();
    ERR_error_string_n(e, buf, sizeof(buf));
    ERR_clear_error();
    return bst_errf(err, BST_INVALID_ARGUMENT, "%s%s%s: %s", path ? path : "", path ? ": " : "",
                    what, buf);
}

/* ALPN: h2 only. A client that offers ALPN without h2 gets alert no_application_protocol (120);
 * one that offers no ALPN at all is closed after the handshake (see h2.c). */
static int alpn_select(SSL *ssl, const unsigned char **out, unsigned char *outlen,
                       const unsigned char *in, unsigned int inlen, void *arg)
{
    (void)ssl;
    (void)arg;
    for (unsigned int i = 0; i < inlen;) {
        unsigned int l = in[i];
        if (i + 1 + l > inlen)
            break;
        if (l == 2 && memcmp(in + i + 1, "h2", 2) == 0) {
            *out = in + i + 1;
            *outlen = 2;
            return SSL_TLSEXT_ERR_OK;
        }
        i += 1 + l;
    }
    return SSL_TLSEXT_ERR_ALERT_FATAL;
}

static enum bst_status load_key(SSL_CTX *ctx, const char *path, struct bst_err *err)
{
    struct bst_secret sec = {NULL, 0};
    enum bst_status rv;
    BIO *bio;
    EVP_PKEY *pkey;

    rv = bst_secret_read(path, &sec, err);
    if (rv != BST_OK)
        return rv;
    bio = BIO_new_mem_buf(sec.data, (int)sec.len);
    pkey = bio != NULL ? PEM_read_bio_PrivateKey(bio, NULL, NULL, NULL) : NULL;
    BIO_free(bio);
    bst_secret_free(&sec); /* key material wiped as soon as it is parsed */
    if (pkey == NULL)
        return ssl_err(err, "cannot parse the private key", path);
    if (SSL_CTX_use_PrivateKey(ctx, pkey) != 1) {
        EVP_PKEY_free(pkey);
        return ssl_err(err, "cannot use the private key", path);
    }
    EVP_PKEY_free(pkey);
    if (SSL_CTX_check_private_key(ctx) != 1)
        return ssl_err(err, "the private key does not match the certificate", path);
    return BST_OK;
}

static enum bst_status load_crl(X509_STORE *store, const char *path, struct bst_err *err)
{
    char *buf = NULL;
    size_t len = 0;
    int n = 0;
    enum bst_status rv = bst_file_read(path, 16 * 1024 * 1024, &buf, &len, err);
    BIO *bio;
    X509_CRL *crl;

    if (rv != BST_OK)
        return rv;
    bio = BIO_new_mem_buf(buf, (int)len);
    while (bio != NULL && (crl = PEM_read_bio_X509_CRL(bio, NULL, NULL, NULL)) != NULL) {
        if (X509_STORE_add_crl(store, crl) != 1) {
            X509_CRL_free(crl);
            BIO_free(bio);
            free(buf);
            return ssl_err(err, "cannot add the CRL", path);
        }
        X509_CRL_free(crl);
        n++;
    }
    ERR_clear_error(); /* the loop ends with a "no start line" error */
    BIO_free(bio);
    free(buf);
    if (n == 0)
        return bst_errf(err, BST_INVALID_ARGUMENT, "%s: no CRL found in the file", path);
    /* Check the leaf against its issuer's CRL; a missing CRL for the issuer fails closed. */
    X509_STORE_set_flags(store, X509_V_FLAG_CRL_CHECK);
    return BST_OK;
}

enum bst_status tls_ctx_build(const struct config *cfg, SSL_CTX **out, struct bst_err *err)
{
    SSL_CTX *ctx = SSL_CTX_new(TLS_server_method());
    enum bst_status rv;

    *out = NULL;
    if (ctx == NULL)
        return ssl_err(err, "cannot create an SSL_CTX", NULL);
    if (SSL_CTX_set_min_proto_version(ctx, TLS1_2_VERSION) != 1 ||
        SSL_CTX_set_cipher_list(ctx, tls12_ciphers) != 1 ||
        SSL_CTX_set_ciphersuites(ctx, tls13_suites) != 1 ||
        SSL_CTX_set1_groups_list(ctx, groups) != 1) {
        rv = ssl_err(err, "cannot apply the TLS policy", NULL);
        goto fail;
    }
    /* OpenSSL 3 refuses client-initiated renegotiation unless
     * SSL_OP_ALLOW_CLIENT_RENEGOTIATION is set; NO_RENEGOTIATION also stops ours. */
    SSL_CTX_set_options(ctx, SSL_OP_NO_RENEGOTIATION | SSL_OP_NO_COMPRESSION);
    SSL_CTX_clear_options(ctx, SSL_OP_ALLOW_CLIENT_RENEGOTIATION);
    SSL_CTX_set_max_early_data(ctx, 0);
    SSL_CTX_set_recv_max_early_data(ctx, 0);
    SSL_CTX_set_session_cache_mode(ctx, SSL_SESS_CACHE_SERVER);
    SSL_CTX_set_timeout(ctx, (long)(cfg->tls_session_lifetime_ms / 1000));
    SSL_CTX_set_num_tickets(ctx, cfg->tls_session_lifetime_ms > 0 ? 1 : 0);
    if (cfg->tls_session_lifetime_ms == 0) {
        SSL_CTX_set_options(ctx, SSL_OP_NO_TICKET);
        SSL_CTX_set_session_cache_mode(ctx, SSL_SESS_CACHE_OFF);
    }
    SSL_CTX_set_session_id_context(ctx, session_ctx_id, sizeof(session_ctx_id) - 1);
    SSL_CTX_set_alpn_select_cb(ctx, alpn_select, NULL);

    if (SSL_CTX_use_certificate_chain_file(ctx, cfg->tls_cert) != 1) {
        rv = ssl_err(err, "cannot load the certificate chain", cfg->tls_cert);
        goto fail;
    }
    rv = load_key(ctx, cfg->tls_key, err);
    if (rv != BST_OK)
        goto fail;

    if (cfg->tls_client_auth != CLIENT_AUTH_NONE) {
        X509_STORE *store = SSL_CTX_get_cert_store(ctx);
        STACK_OF(X509_NAME) * names;
        int mode = SSL_VERIFY_PEER;
        if (cfg->tls_client_ca == NULL || cfg->tls_client_ca[0] == '\0') {
            rv = bst_errf(err, BST_INVALID_ARGUMENT,
                          "tls.client_ca is required unless tls.client_auth is none");
            goto fail;
        }
        if (SSL_CTX_load_verify_locations(ctx, cfg->tls_client_ca, NULL) != 1) {
            rv = ssl_err(err, "cannot load the client CA", cfg->tls_client_ca);
            goto fail;
        }
        names = SSL_load_client_CA_file(cfg->tls_client_ca);
        if (names != NULL)
            SSL_CTX_set_client_CA_list(ctx, names);
        if (cfg->tls_crl != NULL && cfg->tls_crl[0] != '\0') {
            rv = load_crl(store, cfg->tls_crl, err);
            if (rv != BST_OK)
                goto fail;
        }
        /* Client certificates must carry the clientAuth EKU (alert 43 otherwise). */
        SSL_CTX_set_purpose(ctx, X509_PURPOSE_SSL_CLIENT);
        if (cfg->tls_client_auth == CLIENT_AUTH_REQUIRE)
            mode |= SSL_VERIFY_FAIL_IF_NO_PEER_CERT;
        SSL_CTX_set_verify(ctx, mode, NULL);
        SSL_CTX_set_verify_depth(ctx, 4);
    } else {
        SSL_CTX_set_verify(ctx, SSL_VERIFY_NONE, NULL);
    }
    *out = ctx;
    return BST_OK;
fail:
    SSL_CTX_free(ctx);
    return rv;
}

static void ctx_destroy(void *obj)
{
    SSL_CTX_free(obj);
}

static enum bst_status holder_reload(void *arg, struct bst_err *err)
{
    struct tls_holder *h = arg;
    SSL_CTX *ctx;
    enum bst_status rv = tls_ctx_build(&h->paths, &ctx, err);
    if (rv != BST_OK)
        return rv;
    bst_snap_swap(h->snap, ctx);
    return BST_OK;
}

static char *dup_or_null(const char *s)
{
    return s != NULL ? strdup(s) : NULL;
}

enum bst_status tls_holder_new(struct tls_holder **out, const struct config *cfg,
                               struct bst_err *err)
{
    struct tls_holder *h = calloc(1, sizeof(*h));
    SSL_CTX *ctx = NULL;
    enum bst_status rv;

    *out = NULL;
    if (h == NULL)
        return bst_errf(err, BST_RESOURCE_EXHAUSTED, "out of memory");
    h->paths.tls_cert = dup_or_null(cfg->tls_cert);
    h->paths.tls_key = dup_or_null(cfg->tls_key);
    h->paths.tls_client_ca = dup_or_null(cfg->tls_client_ca);
    h->paths.tls_crl = dup_or_null(cfg->tls_crl);
    h->paths.tls_client_auth = cfg->tls_client_auth;
    h->paths.tls_session_lifetime_ms = cfg->tls_session_lifetime_ms;
    rv = tls_ctx_build(&h->paths, &ctx, err);
    if (rv != BST_OK)
        goto fail;
    h->snap = bst_snap_new(ctx, ctx_destroy);
    if (h->snap == NULL) {
        SSL_CTX_free(ctx);
        rv = bst_errf(err, BST_RESOURCE_EXHAUSTED, "out of memory");
        goto fail;
    }
    rv = bst_reload_register("tls", holder_reload, h);
    if (rv != BST_OK) {
        bst_errf(err, rv, "reload registry full");
        goto fail;
    }
    if (cfg->tls_client_auth != CLIENT_AUTH_NONE && (cfg->tls_crl == NULL || !cfg->tls_crl[0]))
        bst_log(BST_LOG_WARN, "tls_no_crl", "detail",
                "client certificates are not checked for revocation (tls.crl is empty)", NULL);
    *out = h;
    return BST_OK;
fail:
    tls_holder_free(h);
    return rv;
}

void tls_holder_free(struct tls_holder *h)
{
    if (h == NULL)
        return;
    bst_snap_free(h->snap);
    free(h->paths.tls_cert);
    free(h->paths.tls_key);
    free(h->paths.tls_client_ca);
    free(h->paths.tls_crl);
    free(h);
}

SSL *tls_ssl_new(struct tls_holder *h)
{
    SSL_CTX *ctx = bst_snap_get(h->snap);
    SSL *ssl = SSL_new(ctx); /* takes its own reference to ctx */
    bst_snap_put(h->snap, ctx);
    return ssl;
}
