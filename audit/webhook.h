/* The webhook sink: a copy of every written record and checkpoint, POSTed in batches by its own
 * thread with libcurl (JSON lines or a protobuf AuditWebhookBatch), retried with exponential
 * backoff. It never stalls the file writer: pushing copies the entry into a queue bounded in
 * bytes, and an entry that does not fit is lost and counted. Checkpoints sent here are anchors
 * outside the files (`bastion-audit verify --anchor SEQ:HASH`). */
#ifndef BASTION_AUDIT_WEBHOOK_H
#define BASTION_AUDIT_WEBHOOK_H

#include "audit.h"
#include "format.h"

#include <stdint.h>

struct audit_webhook;

/* Starts the sink for cfg->webhook (the URL must be set and checked). instance names this
 * writer in protobuf batches. Returns BST_OK, BST_RESOURCE_EXHAUSTED, BST_INTERNAL. */
enum bst_status audit_webhook_new(struct audit_webhook **out, const struct audit_config *cfg,
                                  const char *instance, struct bst_err *err);

/* Queues a copy of one committed frame (AUDIT_FRAME_RECORD or AUDIT_FRAME_CHECKPOINT; other
 * kinds are ignored). Never blocks on I/O; counts the entry lost when the memory cap is reached.
 * Thread-safe. */
void audit_webhook_push(struct audit_webhook *w, unsigned kind, const unsigned char *payload,
                        size_t len, const unsigned char hash[AUDIT_HASH_LEN]);

/* Gives queued entries until the POST timeout to be delivered (no retries), counts the rest
 * lost, stops the thread and frees w. NULL is a no-op. */
void audit_webhook_free(struct audit_webhook *w);

struct audit_webhook_stats {
    uint64_t sent, failed, lost, queued_bytes;
};

void audit_webhook_stats(struct audit_webhook *w, struct audit_webhook_stats *out);

#endif
