/* Rendering audit data as JSON for humans, jq and the webhook. Records come from files that may
 * have been tampered with, so everything is escaped: control characters (C0, DEL and C1, which
 * include the ESC and CSI that start ANSI sequences), line and paragraph separators and bidi
 * overrides become \uXXXX; invalid UTF-8 becomes \ufffd. The output of one message is one line.
 *
 * Messages are rendered with the protobuf JSON mapping (original field names, enum value names,
 * bytes as base64, 64-bit integers as numbers when exact in a double and as strings otherwise),
 * so a line parses back into the message with any protobuf JSON parser. */
#ifndef BASTION_AUDIT_RENDER_H
#define BASTION_AUDIT_RENDER_H

#include "format.h"

#include <protobuf-c/protobuf-c.h>

/* Appends s[0..len) as a JSON string literal (with quotes). Returns 0 or -1 (out of memory). */
int audit_json_string(struct audit_buf *out, const char *s, size_t len);

/* Appends m as a JSON object (no newline). Returns 0 or -1. */
int audit_json_message(struct audit_buf *out, const ProtobufCMessage *m);

/* Short lower-case name of an AuditEventType value ("request", "admin", ...), or NULL. */
const char *audit_event_type_name(int type);

/* Parses a short ("request") or full ("AUDIT_EVENT_REQUEST") event type name; -1 if unknown. */
int audit_event_type_parse(const char *name);

#endif
