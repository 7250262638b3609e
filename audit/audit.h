/* The audit writer: one tamper-evident protobuf record per call, made durable in hash-chained
 * segment files by a writer thread, signed at checkpoints, and shipped to an optional webhook.
 *
 * Callers build a Bastion__V1__AuditRecord and hand it to audit_submit(), which copies what it
 * needs (the record is serialized at once) and never blocks the calling thread: the outcome
 * arrives through a callback. The storage format, modes and failure behaviour are described in
 * docs/audit.md; the reader and verifier used by `bastion-audit` are in audit/reader.h. */
#ifndef BASTION_AUDIT_AUDIT_H
#define BASTION_AUDIT_AUDIT_H

#include "status.h"
#include "strict_yaml.h"

#include "bastion/v1/audit.pb-c.h"

#include <stdint.h>

/* When the caller learns the outcome of audit_submit() (see the per-mode notes there). */
enum audit_mode {
    AUDIT_MODE_BLOCKING = 0, /* after the record is durable (fsync, group commit) */
    AUDIT_MODE_BATCH,        /* when it is queued; a full queue makes the caller wait */
    AUDIT_MODE_BEST_EFFORT,  /* at once; a full queue drops the record (counted) */
};

/* fsync policy in batch and best-effort modes (blocking mode always syncs each group). */
enum audit_fsync { AUDIT_FSYNC_ALWAYS = 0, AUDIT_FSYNC_INTERVAL, AUDIT_FSYNC_NEVER };

enum audit_webhook_format { AUDIT_WEBHOOK_JSONL = 0, AUDIT_WEBHOOK_PROTOBUF };

/* Which authentication / authorization events are recorded beside the per-call request record:
 * none, only failures (authentication) or denials (authorization), or all. */
enum audit_events { AUDIT_EVENTS_NONE = 0, AUDIT_EVENTS_FAILURES, AUDIT_EVENTS_ALL };

/* The `audit:` section of bastion.yaml, decoded by the strict YAML reader with
 * audit_config_fields (every nested section's offsets are relative to this struct). Strings are
 * malloc'd and released with audit_config_dispose(). Durations are milliseconds, sizes bytes;
 * 0 means "no limit" where the field's documentation says so. */
struct audit_config {
    char *directory; /* segment files; created 0700 when missing */
    int mode;        /* enum audit_mode */
    char *instance;  /* name of this writer in segment headers and webhook batches; "" = host */
    int64_t max_record_bytes;
    struct {
        int64_t records; /* records the writer may hold */
        int64_t bytes;   /* serialized bytes the writer may hold */
        int64_t waiting; /* callers that may wait for room (blocking, batch) */
    } queue;
    struct {
        int64_t max_bytes;
        int64_t max_age_ms;
    } segment;
    struct {
        int64_t segments;   /* keep at most this many segment files; 0 = all */
        int64_t max_age_ms; /* remove segments last written longer ago; 0 = never */
    } retention;
    struct {
        int policy; /* enum audit_fsync */
        int64_t interval_ms;
        int64_t group_commit_ms; /* wait this long for more records before a group commit */
    } fsync;
    struct {
        int64_t records;     /* a checkpoint after this many records ... */
        int64_t interval_ms; /* ... or this long after the last one (if records were written) */
    } checkpoint;
    struct {
        char *key;             /* Ed25519 private key (PEM), a secret file; "" = unsigned */
        char *key_id;          /* "" = derived from the public key */
        char *public_keys_dir; /* public keys for verification; the writer adds its own */
    } signing;
    struct {
        char *url;  /* "" = no webhook */
        int format; /* enum audit_webhook_format */
        int64_t batch_records;
        int64_t batch_wait_ms;
        int64_t timeout_ms;
        int64_t retry_backoff_ms;
        int64_t retry_max_backoff_ms;
        int64_t memory_bytes;
        char *ca_file;
        int allow_insecure_http; /* http:// to a host other than loopback */
    } webhook;
    struct {
        /* Comma-separated tags (e.g. SOC 2 control ids) added to records of each event type. */
        char *authentication;
        char *authorization;
        char *request;
        char *security_violation;
        char *admin;
        char *connection;
    } compliance_tags;
    struct {
        int authentication; /* enum audit_events: none, failures, all */
        int authorization;  /* enum audit_events: none, denials (= failures), all */
    } events;
};

/* The field table of struct audit_config: {"audit", BST_F_SECTION, offsetof(struct config,
 * audit), ..., audit_config_fields, ...} embeds it in a larger configuration. */
extern const struct bst_field audit_config_fields[];

/* Fills cfg with every default (as if the `audit:` section were empty). Returns BST_OK or
 * BST_RESOURCE_EXHAUSTED. Release with audit_config_dispose(). */
enum bst_status audit_config_defaults(struct audit_config *cfg, struct bst_err *err);

/* Reads only the `audit:` section of a bastiond configuration file (for bastion-audit), with
 * relative paths resolved against the file's directory. On failure cfg is disposed. */
enum bst_status audit_config_load(const char *path, struct audit_config *cfg, struct bst_err *err);

/* Makes the relative paths in cfg (directory, signing key, public keys, webhook CA) relative to
 * the directory of config_path, as the rest of the configuration is. Returns BST_OK or
 * BST_RESOURCE_EXHAUSTED. */
enum bst_status audit_config_resolve(struct audit_config *cfg, const char *config_path);

/* Checks what the table cannot: key id characters, webhook URL scheme and host, and sizes that
 * must agree with each other. Returns BST_OK or BST_INVALID_ARGUMENT naming the key. */
enum bst_status audit_config_check(const struct audit_config *cfg, struct bst_err *err);

/* Frees the strings in cfg (not cfg itself). */
void audit_config_dispose(struct audit_config *cfg);

/* Counters, a snapshot taken by audit_stats(). */
struct audit_stats {
    uint64_t records_written;   /* record frames written (and synced where the mode syncs) */
    uint64_t records_dropped;   /* best-effort: full queue or failed write */
    uint64_t records_filtered;  /* not recorded by the `events` settings */
    uint64_t records_truncated; /* shortened to fit max_record_bytes */
    uint64_t violations;        /* submissions refused (UNAVAILABLE): fail-closed outcomes */
    uint64_t write_errors;      /* failed write or sync attempts */
    uint64_t checkpoints;
    uint64_t segments_created;
    uint64_t segments_removed;
    uint64_t last_sequence;
    uint64_t queue_records; /* now: held by the writer */
    uint64_t queue_bytes;
    uint64_t waiting;        /* now: callers waiting for room */
    int healthy;             /* 1 while the last write succeeded */
    uint64_t webhook_sent;   /* entries (records and checkpoints) delivered */
    uint64_t webhook_failed; /* failed POST attempts */
    uint64_t webhook_lost;   /* entries given up (memory cap, permanent error, shutdown) */
    uint64_t webhook_queue_bytes;
};

struct audit;

/* Outcome of one submission: BST_OK, or BST_UNAVAILABLE when the record was refused (the call
 * must then fail closed). */
typedef void (*audit_done_fn)(void *arg, enum bst_status st);

/* Opens (creating 0700 when missing) and locks cfg->directory, recovers a torn tail left by a
 * crash (cut, with its bytes kept beside the segment and an admin event saying so), starts a new
 * segment, writes the startup admin event, and starts the writer thread (and the webhook
 * thread). cfg is copied. On success *out is owned by the caller (audit_free). Returns BST_OK;
 * BST_INVALID_ARGUMENT for a bad config; BST_FAILED_PRECONDITION when another writer holds the
 * directory; BST_PERMISSION_DENIED / BST_NOT_FOUND for the signing key (bst_secret_read rules);
 * BST_UNAVAILABLE when the directory cannot be written. */
enum bst_status audit_new(struct audit **out, const struct audit_config *cfg, struct bst_err *err);

/* Stops taking records, writes everything queued, the shutdown admin event and a final
 * checkpoint, syncs, gives the webhook up to its timeout to deliver, and frees a. Callbacks of
 * records that could not be written are called with BST_UNAVAILABLE. NULL is a no-op. */
void audit_free(struct audit *a);

/* Submits one record. The library assigns the sequence (always), and the event id and time when
 * absent; adds the compliance tags configured for the event type; makes every string valid UTF-8
 * (invalid sequences become U+FFFD); shortens a record above max_record_bytes (truncated =
 * true). rec stays owned by the caller, who may free it as soon as this returns.
 *
 * done (which may be NULL) is called exactly once:
 *   blocking     from the writer thread, BST_OK once the record is durable (one fsync for the
 *                whole group), BST_UNAVAILABLE when writing failed (disk full) or the waiting
 *                list is full; the writer keeps trying and recovers by itself.
 *   batch        BST_OK synchronously, inside this call, when the queue has room; otherwise from
 *                the writer thread when room appears (the caller waits without blocking its
 *                thread); BST_UNAVAILABLE when the waiting list is full.
 *   best-effort  BST_OK synchronously, always; a record that does not fit is dropped and
 *                counted.
 * Records the `events` settings exclude, and submissions after shutdown began (BST_UNAVAILABLE),
 * are answered synchronously. Returns BST_OK when the record was accepted (queued, waiting,
 * deliberately filtered, or dropped in best-effort mode), else the status given to done.
 * Thread-safe. */
enum bst_status audit_submit(struct audit *a, const Bastion__V1__AuditRecord *rec,
                             audit_done_fn done, void *arg);

/* Returns 1 if an event of this type with this outcome (failure = authentication failed or
 * authorization denied) would be recorded, so callers can skip building it. Request, admin,
 * connection and security-violation events are always recorded. */
int audit_wants(const struct audit *a, Bastion__V1__AuditEventType type, int failure);

/* Records an admin event (startup, shutdown, reload, key_rotation, ...) with a detail sentence.
 * Admin events are never dropped for a full queue. The strings are copied. Returns BST_OK,
 * BST_UNAVAILABLE after shutdown began, BST_RESOURCE_EXHAUSTED when out of memory. */
enum bst_status audit_admin_event(struct audit *a, const char *action, const char *detail);

/* Replaces the signing key with the one in key_path (NULL: the configured path, read again) and
 * key_id (NULL or "": derived from the public key). A different key makes the writer finish the
 * chain head under the old key, record a key_rotation admin event and sign from then on with the
 * new key id; the old public key stays valid for verification. An unchanged key is a no-op.
 * Returns BST_OK, BST_INVALID_ARGUMENT (not an Ed25519 key; a new key under an unchanged
 * explicit key id), or the bst_secret_read statuses; the old key stays in force on failure. */
enum bst_status audit_rotate_key(struct audit *a, const char *key_path, const char *key_id,
                                 struct bst_err *err);

/* A bst_reload_fn (ctx is the struct audit): re-reads the configured signing key, as
 * audit_rotate_key(ctx, NULL, NULL, err). Register with bst_reload_register("audit", ...). */
enum bst_status audit_reload(void *ctx, struct bst_err *err);

/* Fills *out with the current counters. Thread-safe. */
void audit_stats(struct audit *a, struct audit_stats *out);

/* Blocks until everything submitted so far is written (and synced where the mode syncs), or
 * timeout_ms passes. Returns BST_OK or BST_DEADLINE_EXCEEDED. For tests and tools; never call it
 * on an event loop. */
enum bst_status audit_flush(struct audit *a, int64_t timeout_ms);

#endif
