/* Plain-text renderings of tool results for LLMs and humans: the tables and summaries kubectl
 * prints (`kubectl get pods`, `describe pod`, `get events`, ...), with kubectl's AGE format.
 * Every cell is sanitised (control characters become '?'), so nothing from a cluster can forge
 * lines or terminal escapes in a rendering. */
#ifndef BASTION_KUBE_RENDER_H
#define BASTION_KUBE_RENDER_H

#include "backend.h"

#include <protobuf-c/protobuf-c.h>
#include <stdint.h>

/* A renderer: args is the tool's argument message, result its result message, now the wall
 * time in seconds. Returns NUL-terminated text in ctx memory, or NULL when out of memory. */
typedef char *(*kube_render_fn)(const ProtobufCMessage *args, const ProtobufCMessage *result,
                                int64_t now, const struct kube_ctx *ctx);

char *kube_render_list_pods(const ProtobufCMessage *args, const ProtobufCMessage *result,
                            int64_t now, const struct kube_ctx *ctx);
char *kube_render_list_namespaces(const ProtobufCMessage *args, const ProtobufCMessage *result,
                                  int64_t now, const struct kube_ctx *ctx);
char *kube_render_get_pod(const ProtobufCMessage *args, const ProtobufCMessage *result, int64_t now,
                          const struct kube_ctx *ctx);
char *kube_render_get_pod_logs(const ProtobufCMessage *args, const ProtobufCMessage *result,
                               int64_t now, const struct kube_ctx *ctx);
char *kube_render_delete_pod(const ProtobufCMessage *args, const ProtobufCMessage *result,
                             int64_t now, const struct kube_ctx *ctx);
char *kube_render_restart_pod(const ProtobufCMessage *args, const ProtobufCMessage *result,
                              int64_t now, const struct kube_ctx *ctx);
char *kube_render_list_deployments(const ProtobufCMessage *args, const ProtobufCMessage *result,
                                   int64_t now, const struct kube_ctx *ctx);
char *kube_render_scale_deployment(const ProtobufCMessage *args, const ProtobufCMessage *result,
                                   int64_t now, const struct kube_ctx *ctx);
char *kube_render_restart_deployment(const ProtobufCMessage *args, const ProtobufCMessage *result,
                                     int64_t now, const struct kube_ctx *ctx);
char *kube_render_list_services(const ProtobufCMessage *args, const ProtobufCMessage *result,
                                int64_t now, const struct kube_ctx *ctx);
char *kube_render_list_events(const ProtobufCMessage *args, const ProtobufCMessage *result,
                              int64_t now, const struct kube_ctx *ctx);
char *kube_render_list_secrets(const ProtobufCMessage *args, const ProtobufCMessage *result,
                               int64_t now, const struct kube_ctx *ctx);
char *kube_render_create_secret(const ProtobufCMessage *args, const ProtobufCMessage *result,
                                int64_t now, const struct kube_ctx *ctx);
char *kube_render_delete_secret(const ProtobufCMessage *args, const ProtobufCMessage *result,
                                int64_t now, const struct kube_ctx *ctx);
char *kube_render_create_resource(const ProtobufCMessage *args, const ProtobufCMessage *result,
                                  int64_t now, const struct kube_ctx *ctx);

/* kubectl's AGE ("45s", "3m12s", "26h", "3d4h", "62d") of a duration in seconds into buf. */
void kube_human_age(int64_t seconds, char *buf, size_t len);

/* Seconds since the epoch of an RFC 3339 UTC time ("2025-01-01T00:00:00Z"), or -1. */
int64_t kube_parse_time(const char *s);

/* Copies text into ctx memory with control characters other than '\n' and '\t' replaced (log
 * text from a cluster); NULL when out of memory. */
char *kube_sanitize_text(const char *text, const struct kube_ctx *ctx);

#endif
