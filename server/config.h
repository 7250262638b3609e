/* bastiond configuration: parsed from YAML through one field table (server/config.c) into a
 * plain struct, then used to build the runtime objects. The table is the configuration
 * reference: docs and `bastiond --help-config` are generated from it. */
#ifndef BASTION_SERVER_CONFIG_H
#define BASTION_SERVER_CONFIG_H

#include "audit.h"
#include "authn.h"
#include "status.h"

#include <stdint.h>

enum client_auth_mode { CLIENT_AUTH_REQUIRE = 0, CLIENT_AUTH_OPTIONAL, CLIENT_AUTH_NONE };

struct config {
    char *listen;    /* "host:port"; IPv6 as "[::1]:8443" */
    int64_t workers; /* 0 = one per core */
    char *log_level;
    int64_t drain_timeout_ms;

    char *tls_cert;
    char *tls_key; /* a secret file */
    char *tls_client_ca;
    char *tls_crl;       /* optional */
    int tls_client_auth; /* enum client_auth_mode */
    int64_t tls_session_lifetime_ms;

    int64_t max_message_bytes;
    int64_t max_concurrent_streams;
    int64_t max_header_list_bytes;
    int64_t max_header_fields;
    int64_t max_connections;
    int64_t stream_window_bytes;
    int64_t connection_window_bytes;
    int64_t connection_buffer_bytes; /* request bodies buffered per connection */
    int64_t server_buffer_bytes;     /* ... and across the whole server */
    int64_t output_buffer_bytes;
    int64_t handshake_timeout_ms;
    int64_t header_timeout_ms;
    int64_t idle_timeout_ms;
    int64_t write_timeout_ms;
    int64_t reset_burst;
    int64_t reset_rate;
    int64_t glitch_burst;
    int64_t glitch_rate;

    char *rbac_policy; /* "" = no policy: every call that needs a permission is denied */

    /* cluster: the backend every tool calls (kube/backend.h). */
    int cluster_backend; /* enum cluster_backend */
    char *cluster_seed;  /* sim: seed file; "" = the built-in seed */
    int64_t cluster_min_replicas;
    int64_t cluster_max_replicas;
    int64_t cluster_max_objects;

    struct authn_config auth;  /* the `auth:` section, owned by auth/ */
    struct audit_config audit; /* the `audit:` section, owned by audit/ */
};

enum cluster_backend { CLUSTER_BACKEND_SIM = 0 };

/* Loads path into cfg (defaults for absent keys). Relative file paths inside the config are
 * resolved against the directory of the config file. Returns BST_OK or BST_INVALID_ARGUMENT
 * with "file:line:col: ..." in err. On failure cfg is disposed. */
enum bst_status config_load(const char *path, struct config *cfg, struct bst_err *err);

/* Frees the strings in cfg. */
void config_dispose(struct config *cfg);

/* Prints the configuration reference (every key, type, default, bounds, description). */
void config_print_reference(void);

#endif
