/* Definitions shared by libbastion's source files and its unit tests; not installed. Prefix
 * bcl_ for everything with external linkage that is not public API (hidden in the shared
 * library by -fvisibility=hidden). */
#ifndef BASTION_CLIENT_INTERNAL_H
#define BASTION_CLIENT_INTERNAL_H

#include <bastion/bastion.h>

#include <stddef.h>
#include <stdint.h>

#define BCL_DEFAULT_PORT 8443
#define BCL_MAX_HOST 253
#define BCL_MAX_CREDENTIAL 8192
#define BCL_MAX_METADATA 64
#define BCL_MAX_METADATA_BYTES 8192
#define BCL_MAX_DEADLINE_MS (INT64_C(100) * 86400 * 1000)

struct bastion_options {
    char host[BCL_MAX_HOST + 1]; /* DNS name or IP literal, without brackets */
    int port;
    char *ca_file;
    char *cert_file;
    char *key_file;
    char *server_name; /* NULL: the host */
    int64_t default_deadline_ms;
    int64_t connect_timeout_ms;
    int64_t keepalive_interval_ms;
    int64_t keepalive_timeout_ms;
    size_t max_message_bytes;
    char *token;   /* wiped on free */
    char *api_key; /* wiped on free */
};

struct bcl_md {
    char *name;
    char *value;
    int secret; /* credentials: wiped on free and sent never-indexed */
};

struct bastion_call_options {
    int64_t deadline_ms;
    char *token;
    char *api_key;
    struct bcl_md md[BCL_MAX_METADATA];
    size_t n_md;
    size_t md_bytes;
};

/* Test hook (tests/integration/client_driver.c): extra nanoseconds before a call's local
 * deadline fires, so that a test can watch the server enforce the grpc-timeout it was sent
 * (which is always the true deadline). Zero in every real program. */
extern int64_t bcl_test_deadline_slack_ns;

/* Test hook (tests/fuzz/fuzz_client_h2.c): when set, a new connection skips resolution, TCP and
 * TLS and speaks HTTP/2 over the bufferevent this returns, created on base by the I/O thread.
 * NULL in every real program. */
struct bufferevent;
struct event_base;
extern struct bufferevent *(*bcl_test_transport)(struct event_base *base);

/* Parses "host:port", "[v6]:port", "host" or "[v6]" into host (no brackets) and port. Returns 0,
 * or -1 for anything malformed (empty host, bad characters, port outside 1..65535). */
int bcl_target_parse(const char *target, char *host, size_t hostlen, int *port);

/* Returns 1 if s is an IPv4 or IPv6 literal. */
int bcl_is_ip_literal(const char *s);

/* Copies the default-initialised options into *dst (strings duplicated). Returns BASTION_OK or
 * BASTION_E_NOMEM (dst is then disposed). */
bastion_status bcl_options_copy(struct bastion_options *dst, const struct bastion_options *src);

/* Frees the strings inside o (wiping credentials), not o itself. */
void bcl_options_dispose(struct bastion_options *o);

/* Copies call options into a new object the caller owns. BASTION_OK or E_NOMEM. */
bastion_status bcl_call_options_copy(bastion_call_options **out, const bastion_call_options *co);

/* Frees a malloc'd string after wiping it. NULL is a no-op. */
void bcl_free_secret(char *s);

/* Writes a printf-style sentence into a caller's error buffer (NULL or 0 length: nothing). */
void bcl_errbuf(char *buf, size_t len, const char *fmt, ...) __attribute__((format(printf, 3, 4)));

#endif
