/* TLS for bastiond: one SSL_CTX, shared by every worker and replaced atomically on reload
 * (certificate and CRL rotation without restarts). Policy: TLS 1.2 minimum set explicitly,
 * Mozilla intermediate 6.0 suites (ECDHE + AEAD only, no DHE), groups X25519, P-256, P-384,
 * ALPN h2 only, renegotiation off, no 0-RTT, short session lifetime, client certificates
 * required by default and verified against the client CA, its CRL and the clientAuth purpose. */
#ifndef BASTION_SERVER_TLS_H
#define BASTION_SERVER_TLS_H

#include "config.h"
#include "status.h"

#include <openssl/ssl.h>

struct tls_holder;

/* Builds the first SSL_CTX from cfg (paths are copied) and registers the holder with the
 * reload registry as "tls". Returns BST_OK or an error naming the file at fault. */
enum bst_status tls_holder_new(struct tls_holder **out, const struct config *cfg,
                               struct bst_err *err);

/* Frees the holder; NULL is a no-op. */
void tls_holder_free(struct tls_holder *h);

/* Returns a new SSL for an accepted connection from the current SSL_CTX (the SSL holds its own
 * reference to the context), or NULL. */
SSL *tls_ssl_new(struct tls_holder *h);

/* Builds an SSL_CTX from cfg without installing it (used by the holder and by
 * --check-config). The caller owns the result. */
enum bst_status tls_ctx_build(const struct config *cfg, SSL_CTX **out, struct bst_err *err);

#endif
