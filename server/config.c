/* The bastiond configuration table and loader. */
#include "config.h"
#include "strict_yaml.h"

#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static const char *const client_auth_names[] = {"require", "optional", "none", NULL};

#define F(name, type, member, lo, hi, def, doc)                                                    \
    {                                                                                              \
        name, type, offsetof(struct config, member), lo, hi, def, NULL, NULL, 0, doc               \
    }
#define KiB 1024
#define MiB (1024 * 1024)
#define H 3600000

static const struct bst_field tls_fields[] = {
    {"cert", BST_F_STRING, offsetof(struct config, tls_cert), 0, 0, NULL, NULL, NULL, 1,
     "Server certificate chain (PEM). Relative paths are relative to the config file."},
    {"key", BST_F_STRING, offsetof(struct config, tls_key), 0, 0, NULL, NULL, NULL, 1,
     "Server private key (PEM); a secret file: mode 0600, owned by us or root."},
    F("client_ca", BST_F_STRING, tls_client_ca, 0, 0, "",
      "CA bundle that client certificates must chain to; required unless client_auth is none."),
    F("crl", BST_F_STRING, tls_crl, 0, 0, "",
      "Certificate revocation list(s) of the client CA (PEM); leave the key out to disable CRL "
      "checks (a warning is logged)."),
    {"client_auth", BST_F_ENUM, offsetof(struct config, tls_client_auth), 0, 0, "require",
     client_auth_names, NULL, 0,
     "require: every connection presents a valid client certificate; optional: verified when "
     "presented; none: not requested."},
    F("session_lifetime", BST_F_DURATION_MS, tls_session_lifetime_ms, 0, H, "5m",
      "Lifetime of TLS sessions and tickets; short, so a revoked certificate cannot resume."),
    {NULL, 0, 0, 0, 0, NULL, NULL, NULL, 0, NULL},
};

static const struct bst_field limit_fields[] = {
    F("max_message_bytes", BST_F_SIZE, max_message_bytes, 1, 64 * MiB, "4MiB",
      "Largest request message; larger ones fail with RESOURCE_EXHAUSTED before allocation."),
    F("max_concurrent_streams", BST_F_INT, max_concurrent_streams, 1, 10000, "100",
      "HTTP/2 SETTINGS_MAX_CONCURRENT_STREAMS; streams beyond it are refused."),
    F("max_header_list_bytes", BST_F_SIZE, max_header_list_bytes, 1 * KiB, 1 * MiB, "16KiB",
      "Decoded request header bytes per stream (RFC 9113 accounting); the stream is reset "
      "beyond it."),
    F("max_header_fields", BST_F_INT, max_header_fields, 8, 10000, "100",
      "Request header fields per stream; the stream is reset beyond it."),
    F("max_connections", BST_F_INT, max_connections, 1, 1000000, "1024",
      "Open connections across all workers; new ones are closed at once beyond it."),
    F("stream_window_bytes", BST_F_SIZE, stream_window_bytes, 64 * KiB, 64 * MiB, "1MiB",
      "HTTP/2 initial stream flow-control window."),
    F("connection_window_bytes", BST_F_SIZE, connection_window_bytes, 64 * KiB, 256 * MiB, "8MiB",
      "HTTP/2 connection flow-control window."),
    F("connection_buffer_bytes", BST_F_SIZE, connection_buffer_bytes, 64 * KiB, 1024 * MiB, "16MiB",
      "Request-body bytes buffered per connection across its streams (RESOURCE_EXHAUSTED "
      "beyond)."),
    F("server_buffer_bytes", BST_F_SIZE, server_buffer_bytes, 1 * MiB, 64LL * 1024 * MiB, "256MiB",
      "Request-body bytes buffered across all connections (RESOURCE_EXHAUSTED "
      "beyond)."),
    F("output_buffer_bytes", BST_F_SIZE, output_buffer_bytes, 16 * KiB, 256 * MiB, "1MiB",
      "Bytes queued for a peer before the server stops producing output for it."),
    F("handshake_timeout", BST_F_DURATION_MS, handshake_timeout_ms, 100, 60000, "10s",
      "Time allowed for the TLS handshake."),
    F("header_timeout", BST_F_DURATION_MS, header_timeout_ms, 100, 60000, "10s",
      "Time allowed between a stream's first and last header frame, and for the request body."),
    F("idle_timeout", BST_F_DURATION_MS, idle_timeout_ms, 1000, 24 * H, "5m",
      "A connection with no open stream for this long is closed with GOAWAY."),
    F("write_timeout", BST_F_DURATION_MS, write_timeout_ms, 100, 600000, "10s",
      "A peer that accepts none of our pending output for this long is cut off."),
    F("reset_burst", BST_F_INT, reset_burst, 1, 100000, "200",
      "Client RST_STREAM burst before GOAWAY (rapid reset, CVE-2023-44487)."),
    F("reset_rate", BST_F_INT, reset_rate, 1, 100000, "33",
      "Client RST_STREAM per second sustained."),
    F("glitch_burst", BST_F_INT, glitch_burst, 1, 1000000, "1000",
      "Budget of frames without payload (empty DATA, PRIORITY, PING, SETTINGS, excess "
      "WINDOW_UPDATE) and of server-side stream resets before GOAWAY ENHANCE_YOUR_CALM."),
    F("glitch_rate", BST_F_INT, glitch_rate, 1, 1000000, "100",
      "Refill of that budget per second."),
    {NULL, 0, 0, 0, 0, NULL, NULL, NULL, 0, NULL},
};

static const struct bst_field rbac_fields[] = {
    F("policy", BST_F_STRING, rbac_policy, 0, 0, "",
      "RBAC policy file (roles, bindings, tenants, deny rules; see docs/security.md). Without "
      "one every call that needs a permission is denied."),
    {NULL, 0, 0, 0, 0, NULL, NULL, NULL, 0, NULL},
};

static const char *const cluster_backend_names[] = {"sim", NULL};

static const struct bst_field cluster_fields[] = {
    {"backend", BST_F_ENUM, offsetof(struct config, cluster_backend), 0, 0, "sim",
     cluster_backend_names, NULL, 0, "sim: the embedded simulated cluster (the only one so far)."},
    F("seed", BST_F_STRING, cluster_seed, 0, 0, "",
      "sim: the cluster seed file (YAML); empty = the built-in copy of configs/cluster-seed.yaml. "
      "Relative paths are relative to the config file."),
    F("min_replicas", BST_F_INT, cluster_min_replicas, 0, 10000, "0",
      "Fewest replicas scale_deployment and create_resource accept."),
    F("max_replicas", BST_F_INT, cluster_max_replicas, 0, 10000, "100",
      "Most replicas scale_deployment and create_resource accept."),
    F("max_objects", BST_F_INT, cluster_max_objects, 100, 1000000, "10000",
      "sim: objects (pods, deployments, services, ...) the simulated cluster holds at most; "
      "creations beyond fail as an exceeded quota."),
    {NULL, 0, 0, 0, 0, NULL, NULL, NULL, 0, NULL},
};

static const struct bst_field top_fields[] = {
    F("listen", BST_F_STRING, listen, 0, 0, "127.0.0.1:8443",
      "Address and port of the gRPC/HTTP/2 listener; port 0 picks a free port."),
    F("workers", BST_F_INT, workers, 0, 256, "0",
      "Worker threads, each with its own event loop and listener; 0 = one per core."),
    F("log_level", BST_F_STRING, log_level, 0, 0, "info", "debug, info, warn or error."),
    F("drain_timeout", BST_F_DURATION_MS, drain_timeout_ms, 0, 600000, "10s",
      "On SIGTERM, time in-flight calls get to finish before connections are closed."),
    {"tls", BST_F_SECTION, 0, 0, 0, NULL, NULL, tls_fields, 1, "TLS and client certificates."},
    {"limits", BST_F_SECTION, 0, 0, 0, NULL, NULL, limit_fields, 0,
     "HTTP/2, gRPC and connection limits."},
    {"rbac", BST_F_SECTION, 0, 0, 0, NULL, NULL, rbac_fields, 0, "Authorization."},
    {"auth", BST_F_SECTION, offsetof(struct config, auth), 0, 0, NULL, NULL, authn_config_fields, 0,
     "Authentication beyond client certificates: API keys, JWT, password login "
     "(docs/authentication.md)."},
    {"audit", BST_F_SECTION, offsetof(struct config, audit), 0, 0, NULL, NULL, audit_config_fields,
     0, "The tamper-evident audit log (docs/audit.md)."},
    {"cluster", BST_F_SECTION, 0, 0, 0, NULL, NULL, cluster_fields, 0,
     "The cluster the tools act on."},
    {NULL, 0, 0, 0, 0, NULL, NULL, NULL, 0, NULL},
};

enum bst_status config_load(const char *path, struct config *cfg, struct bst_err *err)
{
    struct bst_yaml_doc *doc = NULL;
    enum bst_status rv;

    memset(cfg, 0, sizeof(*cfg));
    rv = bst_yaml_load_file(path, NULL, &doc, err);
    if (rv != BST_OK)
        return rv;
    rv = bst_yaml_decode(doc, doc->root, top_fields, cfg, err);
    bst_yaml_free(doc);
    if (rv != BST_OK)
        goto fail;
    if (bst_yaml_resolve_path(&cfg->tls_cert, path) != 0 ||
        bst_yaml_resolve_path(&cfg->tls_key, path) != 0 ||
        bst_yaml_resolve_path(&cfg->tls_client_ca, path) != 0 ||
        bst_yaml_resolve_path(&cfg->tls_crl, path) != 0 ||
        bst_yaml_resolve_path(&cfg->rbac_policy, path) != 0 ||
        bst_yaml_resolve_path(&cfg->cluster_seed, path) != 0 ||
        authn_config_resolve_paths(&cfg->auth, path) != BST_OK ||
        audit_config_resolve(&cfg->audit, path) != BST_OK) {
        rv = bst_errf(err, BST_RESOURCE_EXHAUSTED, "out of memory");
        goto fail;
    }
    rv = authn_config_check(&cfg->auth, err);
    if (rv == BST_OK)
        rv = audit_config_check(&cfg->audit, err);
    if (rv == BST_OK && cfg->tls_client_auth == CLIENT_AUTH_NONE &&
        cfg->auth.require_client_certificate)
        rv = bst_errf(err, BST_INVALID_ARGUMENT,
                      "tls.client_auth is none, so no client certificate can ever arrive, but "
                      "auth.require_client_certificate is true: set it to false (and usually "
                      "auth.require_token to true)");
    if (rv != BST_OK) {
        bst_err_prefix(err, "%s", path);
        goto fail;
    }
    if (cfg->cluster_min_replicas > cfg->cluster_max_replicas) {
        rv = bst_errf(err, BST_INVALID_ARGUMENT,
                      "%s: cluster.min_replicas is larger than cluster.max_replicas", path);
        goto fail;
    }
    return BST_OK;
fail:
    config_dispose(cfg);
    return rv;
}

void config_dispose(struct config *cfg)
{
    bst_yaml_decoded_free(top_fields, cfg);
}

static void print_table(const struct bst_field *t, const char *prefix)
{
    static const char *const types[] = {"string",   "integer", "boolean", "enum",
                                        "duration", "size",    "section"};
    for (; t->name != NULL; t++) {
        if (t->type == BST_F_SECTION) {
            char p[64];
            snprintf(p, sizeof(p), "%s%s.", prefix, t->name);
            printf("%s%s: (section) %s\n", prefix, t->name, t->doc);
            print_table(t->section, p);
            continue;
        }
        printf("%s%s: %s, default \"%s\"", prefix, t->name, types[t->type],
               t->def != NULL ? t->def : "");
        if (t->type == BST_F_INT || t->type == BST_F_SIZE || t->type == BST_F_DURATION_MS)
            printf(", %lld..%lld%s", (long long)t->min, (long long)t->max,
                   t->type == BST_F_DURATION_MS ? " ms" : (t->type == BST_F_SIZE ? " bytes" : ""));
        if (t->type == BST_F_ENUM) {
            printf(", one of");
            for (const char *const *e = t->enum_names; *e != NULL; e++)
                printf(" %s", *e);
        }
        printf("\n    %s\n", t->doc);
    }
}

void config_print_reference(void)
{
    print_table(top_fields, "");
}
