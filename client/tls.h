/* TLS for libbastion channels: one SSL_CTX per channel built from its options (TLS 1.2+, Mozilla
 * intermediate suites, ALPN h2 only, server certificate verified against the CA with its name
 * checked), one SSL per connection, and sentences for failed handshakes. */
#ifndef BASTION_CLIENT_TLS_H
#define BASTION_CLIENT_TLS_H

#include "internal.h"

#include <openssl/ssl.h>

/* Builds the channel's context: loads the CA file (or the system store), the client certificate
 * chain and its private key (read with bst_secret_read's ownership and mode rules, wiped after
 * use). On success *out is the caller's (SSL_CTX_free). Returns BASTION_OK, E_CREDENTIALS with a
 * sentence naming the file in err, or E_NOMEM. */
bastion_status bcl_tls_ctx_new(SSL_CTX **out, const struct bastion_options *o, char *err,
                               size_t errlen);

/* Creates the SSL of one connection, expecting the server certificate to carry `name` (a DNS
 * name, also sent as SNI, or an IP literal matched against IP SANs). NULL when out of memory. */
SSL *bcl_tls_ssl_new(SSL_CTX *ctx, const char *name);

/* Describes why a handshake failed, from the certificate verification result of ssl (may be NULL)
 * and an OpenSSL error code (0 if none): "server certificate verification failed: hostname
 * mismatch (expected ...)". Writes a NUL-terminated sentence. */
void bcl_tls_describe(SSL *ssl, unsigned long ossl_err, const char *name, char *buf, size_t len);

/* Returns a short text for an OpenSSL error code (0: NULL), using buf when it must format one. */
const char *bcl_tls_error_string(unsigned long e, char *buf, size_t len);

#endif
