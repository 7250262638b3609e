/* The `audit:` configuration section: one field table (name, type, bounds, default, doc) that
 * bastiond embeds in its own table and bastion-audit reads on its own, plus the cross-field
 * checks a table cannot express. */
#include "audit.h"
#include "sign.h"

#include <curl/curl.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define KiB (INT64_C(1024))
#define MiB (1024 * KiB)
#define GiB (1024 * MiB)
#define SEC INT64_C(1000)
#define HOUR (3600 * SEC)
#define DAY (24 * HOUR)

static const char *const mode_names[] = {"blocking", "batch", "best-effort", NULL};
static const char *const fsync_names[] = {"always", "interval", "never", NULL};
static const char *const format_names[] = {"jsonl", "protobuf", NULL};
static const char *const authn_names[] = {"none", "failures", "all", NULL};
static const char *const authz_names[] = {"none", "denials", "all", NULL};

#define F(name, type, member, lo, hi, def, doc)                                                    \
    {                                                                                              \
        name, type, offsetof(struct audit_config, member), lo, hi, def, NULL, NULL, 0, doc         \
    }
#define E(name, member, names, def, doc)                                                           \
    {                                                                                              \
        name, BST_F_ENUM, offsetof(struct audit_config, member), 0, 0, def, names, NULL, 0, doc    \
    }
/* Nested sections decode into the same struct: their tables hold offsets into audit_config. */
#define S(name, table, doc)                                                                        \
    {                                                                                              \
        name, BST_F_SECTION, 0, 0, 0, NULL, NULL, table, 0, doc                                    \
    }
#define END                                                                                        \
    {                                                                                              \
        NULL, 0, 0, 0, 0, NULL, NULL, NULL, 0, NULL                                                \
    }

static const struct bst_field queue_fields[] = {
    F("records", BST_F_INT, queue.records, 1, 10000000, "10000",
      "Records the writer holds before callers must wait (blocking, batch) or records are "
      "dropped (best-effort)."),
    F("bytes", BST_F_SIZE, queue.bytes, 64 * KiB, 4 * GiB, "64MiB",
      "Serialized bytes the writer holds, the same way."),
    F("waiting", BST_F_INT, queue.waiting, 0, 10000000, "100000",
      "Callers that may wait for room; beyond it a submission fails closed with UNAVAILABLE."),
    END,
};

static const struct bst_field segment_fields[] = {
    F("max_bytes", BST_F_SIZE, segment.max_bytes, 64 * KiB, 64 * GiB, "64MiB",
      "A segment file is closed and a new one started once it reaches this size."),
    F("max_age", BST_F_DURATION_MS, segment.max_age_ms, SEC, 365 * DAY, "24h",
      "... or once its first record is this old."),
    END,
};

static const struct bst_field retention_fields[] = {
    F("segments", BST_F_INT, retention.segments, 0, 10000000, "0",
      "Keep at most this many segment files (the oldest go first); 0 keeps all."),
    F("max_age", BST_F_DURATION_MS, retention.max_age_ms, 0, 100LL * 365 * DAY, "0",
      "Remove segment files last written longer ago than this; 0 keeps them."),
    END,
};

static const struct bst_field fsync_fields[] = {
    E("policy", fsync.policy, fsync_names, "interval",
      "batch and best-effort modes: sync every group (always), every `interval`, or leave it to "
      "the kernel (never). blocking mode syncs every group whatever this says."),
    F("interval", BST_F_DURATION_MS, fsync.interval_ms, 1, HOUR, "1s",
      "Sync period for policy interval."),
    F("group_commit_window", BST_F_DURATION_MS, fsync.group_commit_ms, 0, 1000, "0",
      "Wait this long after the first record of a group for more before writing and syncing; 0 "
      "writes at once (records arriving during a sync still share the next one)."),
    END,
};

static const struct bst_field checkpoint_fields[] = {
    F("records", BST_F_INT, checkpoint.records, 1, 100000000, "1000",
      "A signed checkpoint of the chain head after this many records..."),
    F("interval", BST_F_DURATION_MS, checkpoint.interval_ms, 100, DAY, "1m",
      "... or this long after the previous one, when records were written since."),
    END,
};

static const struct bst_field signing_fields[] = {
    F("key", BST_F_STRING, signing.key, 0, 0, "",
      "Ed25519 private key (PEM) that signs checkpoints; a secret file (0600, ours or root's). "
      "Empty: checkpoints are unsigned. Re-read on SIGHUP: a new key starts a new key id."),
    F("key_id", BST_F_STRING, signing.key_id, 0, 0, "",
      "Id written with each signature; empty derives ed25519-<16 hex of SHA-256(public key)>."),
    F("public_keys_dir", BST_F_STRING, signing.public_keys_dir, 0, 0, "",
      "Directory of public keys (<key id>.pem) for verification; the writer adds its own key "
      "there, so rotated keys keep verifying."),
    END,
};

static const struct bst_field webhook_fields[] = {
    F("url", BST_F_STRING, webhook.url, 0, 0, "",
      "Where batches are POSTed (https://, or http:// to loopback); empty disables the webhook."),
    E("format", webhook.format, format_names, "jsonl",
      "jsonl: one JSON object per line (application/x-ndjson); protobuf: one "
      "bastion.v1.AuditWebhookBatch (application/x-protobuf)."),
    F("batch_records", BST_F_INT, webhook.batch_records, 1, 100000, "500",
      "Entries per POST at most."),
    F("batch_wait", BST_F_DURATION_MS, webhook.batch_wait_ms, 0, HOUR, "1s",
      "How long the first entry of a batch waits for more."),
    F("timeout", BST_F_DURATION_MS, webhook.timeout_ms, 100, 10 * 60 * SEC, "10s",
      "Time allowed for one POST."),
    F("retry_backoff", BST_F_DURATION_MS, webhook.retry_backoff_ms, 10, HOUR, "500ms",
      "First wait after a failed POST; doubled after each failure."),
    F("retry_max_backoff", BST_F_DURATION_MS, webhook.retry_max_backoff_ms, 10, DAY, "30s",
      "Longest wait between retries."),
    F("memory", BST_F_SIZE, webhook.memory_bytes, 64 * KiB, 4 * GiB, "16MiB",
      "Bytes of entries held for the webhook; beyond it new entries are lost (counted)."),
    F("ca_file", BST_F_STRING, webhook.ca_file, 0, 0, "",
      "CA bundle for an https webhook; empty uses the system store."),
    F("allow_insecure_http", BST_F_BOOL, webhook.allow_insecure_http, 0, 0, "false",
      "Allow http:// to a host other than loopback (records then cross the network in clear)."),
    END,
};

static const struct bst_field tag_fields[] = {
    F("authentication", BST_F_STRING, compliance_tags.authentication, 0, 0, "",
      "Comma-separated tags (e.g. SOC 2 control ids such as CC6.1) for authentication events."),
    F("authorization", BST_F_STRING, compliance_tags.authorization, 0, 0, "",
      "Tags for authorization events."),
    F("request", BST_F_STRING, compliance_tags.request, 0, 0, "", "Tags for request records."),
    F("security_violation", BST_F_STRING, compliance_tags.security_violation, 0, 0, "",
      "Tags for security violations."),
    F("admin", BST_F_STRING, compliance_tags.admin, 0, 0, "", "Tags for admin events."),
    F("connection", BST_F_STRING, compliance_tags.connection, 0, 0, "",
      "Tags for connection events (refused TLS handshakes)."),
    END,
};

static const struct bst_field event_fields[] = {
    E("authentication", events.authentication, authn_names, "failures",
      "Authentication events recorded beside each request record: none, failures or all."),
    E("authorization", events.authorization, authz_names, "denials",
      "Authorization events recorded beside each request record: none, denials or all."),
    END,
};

const struct bst_field audit_config_fields[] = {
    F("directory", BST_F_STRING, directory, 0, 0, "/var/lib/bastion/audit",
      "Directory of the segment files; created 0700 when missing, locked by one writer."),
    E("mode", mode, mode_names, "blocking",
      "blocking: a call is answered only after its record is durable (fails closed with "
      "UNAVAILABLE when it cannot be); batch: after it is queued; best-effort: at once, "
      "dropping records that do not fit (counted)."),
    F("instance", BST_F_STRING, instance, 0, 0, "",
      "Name of this gateway in segment headers and webhook batches; empty uses the host name."),
    F("max_record_bytes", BST_F_SIZE, max_record_bytes, 4 * KiB, 512 * KiB, "64KiB",
      "A larger record is shortened (long strings cut, long lists capped) and marked truncated."),
    S("queue", queue_fields, "The writer's queue."),
    S("segment", segment_fields, "Segment rotation."),
    S("retention", retention_fields, "Removal of old segments."),
    S("fsync", fsync_fields, "Durability in batch and best-effort modes; group commit."),
    S("checkpoint", checkpoint_fields, "Signed checkpoints of the chain head."),
    S("signing", signing_fields, "Checkpoint signing keys."),
    S("webhook", webhook_fields, "A copy of every record and checkpoint POSTed in batches."),
    S("compliance_tags", tag_fields, "Tags added to records by event type."),
    S("events", event_fields, "Which authentication and authorization events are recorded."),
    END,
};

enum bst_status audit_config_defaults(struct audit_config *cfg, struct bst_err *err)
{
    enum bst_status rv;

    memset(cfg, 0, sizeof(*cfg));
    rv = bst_yaml_decode(NULL, NULL, audit_config_fields, cfg, err);
    if (rv != BST_OK)
        audit_config_dispose(cfg);
    return rv;
}

void audit_config_dispose(struct audit_config *cfg)
{
    if (cfg == NULL)
        return;
    bst_yaml_decoded_free(audit_config_fields, cfg);
}

/* Resolves every path member against the configuration file (bst_yaml_resolve_path). */
enum bst_status audit_config_resolve(struct audit_config *cfg, const char *config_path)
{
    if (bst_yaml_resolve_path(&cfg->directory, config_path) != 0 ||
        bst_yaml_resolve_path(&cfg->signing.key, config_path) != 0 ||
        bst_yaml_resolve_path(&cfg->signing.public_keys_dir, config_path) != 0 ||
        bst_yaml_resolve_path(&cfg->webhook.ca_file, config_path) != 0)
        return BST_RESOURCE_EXHAUSTED;
    return BST_OK;
}

enum bst_status audit_config_load(const char *path, struct audit_config *cfg, struct bst_err *err)
{
    struct bst_yaml_doc *doc = NULL;
    enum bst_status rv;

    memset(cfg, 0, sizeof(*cfg));
    rv = bst_yaml_load_file(path, NULL, &doc, err);
    if (rv != BST_OK)
        return rv;
    if (doc->root == NULL || doc->root->kind != BST_YAML_MAP) {
        rv = bst_yaml_errf(err, BST_INVALID_ARGUMENT, doc, doc->root, "expected a mapping");
        goto out;
    }
    rv = bst_yaml_decode(doc, bst_yaml_get(doc->root, "audit"), audit_config_fields, cfg, err);
    if (rv == BST_OK && audit_config_resolve(cfg, path) != BST_OK)
        rv = bst_errf(err, BST_RESOURCE_EXHAUSTED, "out of memory");
out:
    bst_yaml_free(doc);
    if (rv != BST_OK)
        audit_config_dispose(cfg);
    return rv;
}

static int is_loopback(const char *host)
{
    return strcmp(host, "127.0.0.1") == 0 || strcmp(host, "[::1]") == 0 ||
           strcmp(host, "::1") == 0 || strcmp(host, "localhost") == 0 ||
           strncmp(host, "127.", 4) == 0;
}

static enum bst_status check_url(const struct audit_config *cfg, struct bst_err *err)
{
    CURLU *u = curl_url();
    char *scheme = NULL, *host = NULL;
    enum bst_status rv = BST_OK;

    if (u == NULL)
        return bst_errf(err, BST_RESOURCE_EXHAUSTED, "out of memory");
    if (curl_url_set(u, CURLUPART_URL, cfg->webhook.url, 0) != CURLUE_OK ||
        curl_url_get(u, CURLUPART_SCHEME, &scheme, 0) != CURLUE_OK ||
        curl_url_get(u, CURLUPART_HOST, &host, 0) != CURLUE_OK) {
        rv = bst_errf(err, BST_INVALID_ARGUMENT, "audit.webhook.url: not a valid URL");
        goto out;
    }
    if (strcmp(scheme, "https") != 0 && strcmp(scheme, "http") != 0) {
        rv = bst_errf(err, BST_INVALID_ARGUMENT, "audit.webhook.url: scheme must be https or http");
        goto out;
    }
    if (strcmp(scheme, "http") == 0 && !is_loopback(host) && !cfg->webhook.allow_insecure_http)
        rv = bst_errf(err, BST_INVALID_ARGUMENT,
                      "audit.webhook.url: http:// only to a loopback address (records would "
                      "cross the network in clear); use https or set allow_insecure_http");
out:
    curl_free(scheme);
    curl_free(host);
    curl_url_cleanup(u);
    return rv;
}

enum bst_status audit_config_check(const struct audit_config *cfg, struct bst_err *err)
{
    if (cfg->directory == NULL || cfg->directory[0] == '\0')
        return bst_errf(err, BST_INVALID_ARGUMENT, "audit.directory: must not be empty");
    if (cfg->signing.key_id != NULL && cfg->signing.key_id[0] != '\0' &&
        !audit_key_id_valid(cfg->signing.key_id))
        return bst_errf(err, BST_INVALID_ARGUMENT,
                        "audit.signing.key_id: 1-64 characters of A-Z a-z 0-9 . _ - not starting "
                        "with '.'");
    if (cfg->signing.key_id != NULL && cfg->signing.key_id[0] != '\0' &&
        (cfg->signing.key == NULL || cfg->signing.key[0] == '\0'))
        return bst_errf(err, BST_INVALID_ARGUMENT,
                        "audit.signing.key_id: set without audit.signing.key");
    if (cfg->queue.bytes < cfg->max_record_bytes)
        return bst_errf(err, BST_INVALID_ARGUMENT,
                        "audit.queue.bytes: smaller than audit.max_record_bytes");
    if (cfg->segment.max_bytes < cfg->max_record_bytes)
        return bst_errf(err, BST_INVALID_ARGUMENT,
                        "audit.segment.max_bytes: smaller than audit.max_record_bytes");
    if (cfg->webhook.retry_max_backoff_ms < cfg->webhook.retry_backoff_ms)
        return bst_errf(err, BST_INVALID_ARGUMENT,
                        "audit.webhook.retry_max_backoff: shorter than retry_backoff");
    if (cfg->webhook.url != NULL && cfg->webhook.url[0] != '\0')
        return check_url(cfg, err);
    return BST_OK;
}
