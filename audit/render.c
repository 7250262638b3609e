/* JSON rendering of audit messages (see render.h): a generic walk over protobuf-c descriptors and
 * a string escaper that leaves nothing a terminal would interpret. */
#include "render.h"
#include "text.h"

#include "bastion/v1/audit.pb-c.h"

#include <inttypes.h>
#include <math.h>
#include <openssl/evp.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#define MAX_DEPTH 16
#define EXACT_DOUBLE (INT64_C(1) << 53)

/* Code points escaped although JSON allows them raw: C1 controls (0x9B is CSI, an ANSI escape
 * introducer on its own), line/paragraph separators (line breaks for some readers) and the
 * invisible direction marks and overrides that make text display other than it reads. */
static int must_escape(uint32_t cp)
{
    return cp < 0x20 || cp == 0x7f || (cp >= 0x80 && cp <= 0x9f) || cp == 0x061c || cp == 0x200e ||
           cp == 0x200f || cp == 0x2028 || cp == 0x2029 || (cp >= 0x202a && cp <= 0x202e) ||
           (cp >= 0x2066 && cp <= 0x2069) || cp == 0xfeff;
}

/* Decodes one character of valid UTF-8 (the caller checked validity); returns its length. */
static size_t decode(const unsigned char *s, uint32_t *cp)
{
    if (s[0] < 0x80) {
        *cp = s[0];
        return 1;
    }
    if (s[0] < 0xe0) {
        *cp = (uint32_t)(s[0] & 0x1f) << 6 | (s[1] & 0x3f);
        return 2;
    }
    if (s[0] < 0xf0) {
        *cp = (uint32_t)(s[0] & 0x0f) << 12 | (uint32_t)(s[1] & 0x3f) << 6 | (s[2] & 0x3f);
        return 3;
    }
    *cp = (uint32_t)(s[0] & 0x07) << 18 | (uint32_t)(s[1] & 0x3f) << 12 |
          (uint32_t)(s[2] & 0x3f) << 6 | (s[3] & 0x3f);
    return 4;
}

int audit_json_string(struct audit_buf *out, const char *str, size_t len)
{
    const unsigned char *s = (const unsigned char *)str;
    size_t i = 0;

    if (audit_buf_putc(out, '"') != 0)
        return -1;
    while (i < len) {
        size_t valid = bst_utf8_bad_offset((const char *)s + i, len - i);
        size_t end = i + valid;
        while (i < end) {
            uint32_t cp;
            size_t n = decode(s + i, &cp);
            int rc;
            if (cp == '"')
                rc = audit_buf_puts(out, "\\\"");
            else if (cp == '\\')
                rc = audit_buf_puts(out, "\\\\");
            else if (cp == '\n')
                rc = audit_buf_puts(out, "\\n");
            else if (cp == '\r')
                rc = audit_buf_puts(out, "\\r");
            else if (cp == '\t')
                rc = audit_buf_puts(out, "\\t");
            else if (must_escape(cp))
                rc = audit_buf_printf(out, "\\u%04x", (unsigned)cp);
            else
                rc = audit_buf_put(out, s + i, n);
            if (rc != 0)
                return -1;
            i += n;
        }
        if (i < len) {
            /* One invalid byte at a time becomes U+FFFD; the reader goes on after it. */
            if (audit_buf_puts(out, "\\ufffd") != 0)
                return -1;
            i++;
        }
    }
    return audit_buf_putc(out, '"');
}

static int put_i64(struct audit_buf *out, int64_t v)
{
    if (v > EXACT_DOUBLE || v < -EXACT_DOUBLE)
        return audit_buf_printf(out, "\"%" PRId64 "\"", v);
    return audit_buf_printf(out, "%" PRId64, v);
}

static int put_u64(struct audit_buf *out, uint64_t v)
{
    if (v > (uint64_t)EXACT_DOUBLE)
        return audit_buf_printf(out, "\"%" PRIu64 "\"", v);
    return audit_buf_printf(out, "%" PRIu64, v);
}

static int put_double(struct audit_buf *out, double v)
{
    if (isnan(v))
        return audit_buf_puts(out, "\"NaN\"");
    if (isinf(v))
        return audit_buf_puts(out, v > 0 ? "\"Infinity\"" : "\"-Infinity\"");
    return audit_buf_printf(out, "%.17g", v);
}

static int put_bytes(struct audit_buf *out, const ProtobufCBinaryData *b)
{
    size_t n = 4 * ((b->len + 2) / 3) + 1;
    unsigned char *enc;
    int rc;

    if (b->len > (size_t)INT32_MAX / 2)
        return -1;
    enc = malloc(n);
    if (enc == NULL)
        return -1;
    EVP_EncodeBlock(enc, b->data, (int)b->len);
    rc = audit_buf_putc(out, '"') || audit_buf_puts(out, (const char *)enc) ||
                 audit_buf_putc(out, '"')
             ? -1
             : 0;
    free(enc);
    return rc;
}

static int put_message(struct audit_buf *out, const ProtobufCMessage *m, int depth);

/* Appends one value of field f found at p (a pointer to the member or array element). */
static int put_value(struct audit_buf *out, const ProtobufCFieldDescriptor *f, const void *p,
                     int depth)
{
    switch (f->type) {
    case PROTOBUF_C_TYPE_INT32:
    case PROTOBUF_C_TYPE_SINT32:
    case PROTOBUF_C_TYPE_SFIXED32:
        return audit_buf_printf(out, "%" PRId32, *(const int32_t *)p);
    case PROTOBUF_C_TYPE_UINT32:
    case PROTOBUF_C_TYPE_FIXED32:
        return audit_buf_printf(out, "%" PRIu32, *(const uint32_t *)p);
    case PROTOBUF_C_TYPE_INT64:
    case PROTOBUF_C_TYPE_SINT64:
    case PROTOBUF_C_TYPE_SFIXED64:
        return put_i64(out, *(const int64_t *)p);
    case PROTOBUF_C_TYPE_UINT64:
    case PROTOBUF_C_TYPE_FIXED64:
        return put_u64(out, *(const uint64_t *)p);
    case PROTOBUF_C_TYPE_FLOAT:
        return put_double(out, *(const float *)p);
    case PROTOBUF_C_TYPE_DOUBLE:
        return put_double(out, *(const double *)p);
    case PROTOBUF_C_TYPE_BOOL:
        return audit_buf_puts(out, *(const protobuf_c_boolean *)p ? "true" : "false");
    case PROTOBUF_C_TYPE_ENUM: {
        int v = *(const int *)p;
        const ProtobufCEnumValue *ev =
            protobuf_c_enum_descriptor_get_value((const ProtobufCEnumDescriptor *)f->descriptor, v);
        if (ev != NULL)
            return audit_json_string(out, ev->name, strlen(ev->name));
        return audit_buf_printf(out, "%d", v);
    }
    case PROTOBUF_C_TYPE_STRING: {
        const char *s = *(char *const *)p;
        return s != NULL ? audit_json_string(out, s, strlen(s)) : audit_buf_puts(out, "\"\"");
    }
    case PROTOBUF_C_TYPE_BYTES:
        return put_bytes(out, (const ProtobufCBinaryData *)p);
    case PROTOBUF_C_TYPE_MESSAGE: {
        const ProtobufCMessage *sub = *(ProtobufCMessage *const *)p;
        if (sub == NULL)
            return audit_buf_puts(out, "{}");
        return put_message(out, sub, depth + 1);
    }
    }
    return -1;
}

static size_t elem_size(ProtobufCType t)
{
    switch (t) {
    case PROTOBUF_C_TYPE_INT32:
    case PROTOBUF_C_TYPE_SINT32:
    case PROTOBUF_C_TYPE_SFIXED32:
    case PROTOBUF_C_TYPE_UINT32:
    case PROTOBUF_C_TYPE_FIXED32:
    case PROTOBUF_C_TYPE_FLOAT:
    case PROTOBUF_C_TYPE_ENUM:
        return 4;
    case PROTOBUF_C_TYPE_INT64:
    case PROTOBUF_C_TYPE_SINT64:
    case PROTOBUF_C_TYPE_SFIXED64:
    case PROTOBUF_C_TYPE_UINT64:
    case PROTOBUF_C_TYPE_FIXED64:
    case PROTOBUF_C_TYPE_DOUBLE:
        return 8;
    case PROTOBUF_C_TYPE_BOOL:
        return sizeof(protobuf_c_boolean);
    case PROTOBUF_C_TYPE_STRING:
    case PROTOBUF_C_TYPE_MESSAGE:
        return sizeof(void *);
    case PROTOBUF_C_TYPE_BYTES:
        return sizeof(ProtobufCBinaryData);
    }
    return 0;
}

/* Whether a singular field is present, by protobuf-c's conventions for proto2. */
static int present(const ProtobufCMessage *m, const ProtobufCFieldDescriptor *f)
{
    const char *base = (const char *)m;

    if (f->flags & PROTOBUF_C_FIELD_FLAG_ONEOF)
        return *(const uint32_t *)(base + f->quantifier_offset) == f->id;
    if (f->label == PROTOBUF_C_LABEL_REQUIRED)
        return 1;
    if (f->type == PROTOBUF_C_TYPE_STRING || f->type == PROTOBUF_C_TYPE_MESSAGE)
        return *(void *const *)(base + f->offset) != NULL;
    return *(const protobuf_c_boolean *)(base + f->quantifier_offset) != 0;
}

static int put_message(struct audit_buf *out, const ProtobufCMessage *m, int depth)
{
    const ProtobufCMessageDescriptor *d = m->descriptor;
    const char *base = (const char *)m;
    int first = 1;

    if (depth > MAX_DEPTH)
        return audit_buf_puts(out, "{}");
    if (audit_buf_putc(out, '{') != 0)
        return -1;
    for (unsigned i = 0; i < d->n_fields; i++) {
        const ProtobufCFieldDescriptor *f = &d->fields[i];
        if (f->label == PROTOBUF_C_LABEL_REPEATED) {
            size_t n = *(const size_t *)(base + f->quantifier_offset);
            const char *arr = *(char *const *)(base + f->offset);
            size_t es = elem_size(f->type);
            if (n == 0 || arr == NULL)
                continue;
            if ((!first && audit_buf_putc(out, ',') != 0) ||
                audit_json_string(out, f->name, strlen(f->name)) != 0 ||
                audit_buf_puts(out, ":[") != 0)
                return -1;
            for (size_t j = 0; j < n; j++) {
                if ((j > 0 && audit_buf_putc(out, ',') != 0) ||
                    put_value(out, f, arr + j * es, depth) != 0)
                    return -1;
            }
            if (audit_buf_putc(out, ']') != 0)
                return -1;
            first = 0;
            continue;
        }
        if (!present(m, f))
            continue;
        if ((!first && audit_buf_putc(out, ',') != 0) ||
            audit_json_string(out, f->name, strlen(f->name)) != 0 ||
            audit_buf_putc(out, ':') != 0 || put_value(out, f, base + f->offset, depth) != 0)
            return -1;
        first = 0;
    }
    return audit_buf_putc(out, '}');
}

int audit_json_message(struct audit_buf *out, const ProtobufCMessage *m)
{
    return put_message(out, m, 0);
}

static const char *const type_names[] = {
    [BASTION__V1__AUDIT_EVENT_TYPE__AUDIT_EVENT_TYPE_UNSPECIFIED] = "unspecified",
    [BASTION__V1__AUDIT_EVENT_TYPE__AUDIT_EVENT_AUTHENTICATION] = "authentication",
    [BASTION__V1__AUDIT_EVENT_TYPE__AUDIT_EVENT_AUTHORIZATION] = "authorization",
    [BASTION__V1__AUDIT_EVENT_TYPE__AUDIT_EVENT_REQUEST] = "request",
    [BASTION__V1__AUDIT_EVENT_TYPE__AUDIT_EVENT_SECURITY_VIOLATION] = "security_violation",
    [BASTION__V1__AUDIT_EVENT_TYPE__AUDIT_EVENT_ADMIN] = "admin",
    [BASTION__V1__AUDIT_EVENT_TYPE__AUDIT_EVENT_CONNECTION] = "connection",
};
#define N_TYPES ((int)(sizeof(type_names) / sizeof(type_names[0])))

const char *audit_event_type_name(int type)
{
    if (type < 0 || type >= N_TYPES)
        return NULL;
    return type_names[type];
}

int audit_event_type_parse(const char *name)
{
    const ProtobufCEnumValue *ev;

    for (int i = 0; i < N_TYPES; i++)
        if (strcasecmp(name, type_names[i]) == 0)
            return i;
    ev = protobuf_c_enum_descriptor_get_value_by_name(&bastion__v1__audit_event_type__descriptor,
                                                      name);
    return ev != NULL ? ev->value : -1;
}
