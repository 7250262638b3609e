/* Generic protobuf-c <-> JSON mapping, JSON Schemas of messages, and rule checks from a
 * per-field table. Everything is derived from descriptors at run time; nothing here knows a
 * particular message. */
#include "pbjson.h"
#include "text.h"

#include <errno.h>
#include <float.h>
#include <inttypes.h>
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* ---- Shared helpers ------------------------------------------------------------------------ */

/* A JSON path such as "list_pods.labels[2].key", built as the walk descends. Truncated (never
 * overflowed) on absurd nesting. */
struct path {
    char buf[256];
    size_t len;
};

static size_t path_push(struct path *p, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

/* Appends to the path and returns the previous length, for path_pop(). */
static size_t path_push(struct path *p, const char *fmt, ...)
{
    size_t old = p->len;
    va_list ap;
    int n;

    va_start(ap, fmt);
    n = vsnprintf(p->buf + p->len, sizeof(p->buf) - p->len, fmt, ap);
    va_end(ap);
    if (n > 0)
        p->len += (size_t)n < sizeof(p->buf) - p->len ? (size_t)n : sizeof(p->buf) - 1 - p->len;
    p->buf[p->len] = '\0';
    return old;
}

static void path_pop(struct path *p, size_t old)
{
    p->len = old;
    p->buf[old] = '\0';
}

static size_t path_field(struct path *p, const char *name)
{
    return path_push(p, p->len == 0 ? "%s" : ".%s", name);
}

static enum bst_status path_fail(const struct path *p, struct bst_err *err, enum bst_status code,
                                 const char *fmt, ...) __attribute__((format(printf, 4, 5)));

static enum bst_status path_fail(const struct path *p, struct bst_err *err, enum bst_status code,
                                 const char *fmt, ...)
{
    char msg[256];
    va_list ap;

    va_start(ap, fmt);
    vsnprintf(msg, sizeof(msg), fmt, ap);
    va_end(ap);
    if (p->len == 0)
        return bst_errf(err, code, "%s", msg);
    return bst_errf(err, code, "%s: %s", p->buf, msg);
}

static const struct bst_pbjson_field_info *field_info(bst_pbjson_lookup_fn lookup, void *arg,
                                                      const ProtobufCMessageDescriptor *d,
                                                      const ProtobufCFieldDescriptor *f)
{
    return lookup != NULL ? lookup(d, f, arg) : NULL;
}

static int is_message(const ProtobufCMessage *m)
{
    return m != NULL && m->descriptor != NULL &&
           m->descriptor->magic == PROTOBUF_C__MESSAGE_DESCRIPTOR_MAGIC;
}

/* Bytes one element of a field of this type takes in a repeated array (and in the message). */
static size_t elt_size(ProtobufCType t)
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
    case PROTOBUF_C_TYPE_BOOL:
        return sizeof(protobuf_c_boolean);
    case PROTOBUF_C_TYPE_INT64:
    case PROTOBUF_C_TYPE_SINT64:
    case PROTOBUF_C_TYPE_SFIXED64:
    case PROTOBUF_C_TYPE_UINT64:
    case PROTOBUF_C_TYPE_FIXED64:
    case PROTOBUF_C_TYPE_DOUBLE:
        return 8;
    case PROTOBUF_C_TYPE_STRING:
        return sizeof(char *);
    case PROTOBUF_C_TYPE_BYTES:
        return sizeof(ProtobufCBinaryData);
    case PROTOBUF_C_TYPE_MESSAGE:
        return sizeof(ProtobufCMessage *);
    }
    return 0;
}

static int is_64bit_int(ProtobufCType t)
{
    return t == PROTOBUF_C_TYPE_INT64 || t == PROTOBUF_C_TYPE_SINT64 ||
           t == PROTOBUF_C_TYPE_SFIXED64 || t == PROTOBUF_C_TYPE_UINT64 ||
           t == PROTOBUF_C_TYPE_FIXED64;
}

static int is_unsigned(ProtobufCType t)
{
    return t == PROTOBUF_C_TYPE_UINT32 || t == PROTOBUF_C_TYPE_FIXED32 ||
           t == PROTOBUF_C_TYPE_UINT64 || t == PROTOBUF_C_TYPE_FIXED64;
}

static int is_integer(ProtobufCType t)
{
    return t == PROTOBUF_C_TYPE_INT32 || t == PROTOBUF_C_TYPE_SINT32 ||
           t == PROTOBUF_C_TYPE_SFIXED32 || t == PROTOBUF_C_TYPE_UINT32 ||
           t == PROTOBUF_C_TYPE_FIXED32 || is_64bit_int(t);
}

/* The range of an integer type, as int64 (uint64 above INT64_MAX is handled apart). */
static void int_range(ProtobufCType t, int64_t *lo, int64_t *hi)
{
    switch (t) {
    case PROTOBUF_C_TYPE_INT32:
    case PROTOBUF_C_TYPE_SINT32:
    case PROTOBUF_C_TYPE_SFIXED32:
        *lo = INT32_MIN;
        *hi = INT32_MAX;
        return;
    case PROTOBUF_C_TYPE_UINT32:
    case PROTOBUF_C_TYPE_FIXED32:
        *lo = 0;
        *hi = UINT32_MAX;
        return;
    case PROTOBUF_C_TYPE_UINT64:
    case PROTOBUF_C_TYPE_FIXED64:
        *lo = 0;
        *hi = INT64_MAX;
        return;
    default:
        *lo = INT64_MIN;
        *hi = INT64_MAX;
        return;
    }
}

/* Whether a non-repeated field holds a value, the way protobuf-c's packer decides. */
static int field_present(const ProtobufCFieldDescriptor *f, const char *base)
{
    const void *member = base + f->offset;

    if (f->flags & PROTOBUF_C_FIELD_FLAG_ONEOF) {
        uint32_t which;
        memcpy(&which, base + f->quantifier_offset, sizeof(which));
        return which == f->id;
    }
    if (f->type == PROTOBUF_C_TYPE_STRING || f->type == PROTOBUF_C_TYPE_MESSAGE) {
        const void *ptr;
        memcpy(&ptr, member, sizeof(ptr));
        if (ptr == NULL)
            return 0;
        if (f->label == PROTOBUF_C_LABEL_REQUIRED)
            return 1;
        if (f->label == PROTOBUF_C_LABEL_NONE && f->type == PROTOBUF_C_TYPE_STRING)
            return ((const char *)ptr)[0] != '\0';
        return ptr != f->default_value;
    }
    if (f->label == PROTOBUF_C_LABEL_REQUIRED)
        return 1;
    if (f->label == PROTOBUF_C_LABEL_OPTIONAL) {
        protobuf_c_boolean has;
        memcpy(&has, base + f->quantifier_offset, sizeof(has));
        return has != 0;
    }
    /* proto3 without presence: present when not the zero value. */
    if (f->type == PROTOBUF_C_TYPE_BYTES) {
        ProtobufCBinaryData bd;
        memcpy(&bd, member, sizeof(bd));
        return bd.len != 0;
    }
    {
        static const unsigned char zero[8];
        return memcmp(member, zero, elt_size(f->type)) != 0;
    }
}

/* ---- Base64 -------------------------------------------------------------------------------- */

static const char b64_alphabet[] =
    "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";

static json_t *b64_encode(const uint8_t *data, size_t len)
{
    size_t out_len = 4 * ((len + 2) / 3);
    char *out = malloc(out_len + 1);
    size_t o = 0;
    json_t *j;

    if (out == NULL)
        return NULL;
    for (size_t i = 0; i < len; i += 3) {
        uint32_t v = (uint32_t)data[i] << 16;
        if (i + 1 < len)
            v |= (uint32_t)data[i + 1] << 8;
        if (i + 2 < len)
            v |= data[i + 2];
        out[o++] = b64_alphabet[(v >> 18) & 63];
        out[o++] = b64_alphabet[(v >> 12) & 63];
        out[o++] = i + 1 < len ? b64_alphabet[(v >> 6) & 63] : '=';
        out[o++] = i + 2 < len ? b64_alphabet[v & 63] : '=';
    }
    out[o] = '\0';
    j = json_stringn(out, o);
    free(out);
    return j;
}

static int b64_value(char c)
{
    if (c >= 'A' && c <= 'Z')
        return c - 'A';
    if (c >= 'a' && c <= 'z')
        return c - 'a' + 26;
    if (c >= '0' && c <= '9')
        return c - '0' + 52;
    if (c == '+' || c == '-')
        return 62;
    if (c == '/' || c == '_')
        return 63;
    return -1;
}

/* Decodes standard or URL-safe base64, padded or not, into out (room for len * 3 / 4 + 3 bytes).
 * Returns the decoded length, or -1 for anything that is not base64. */
static long b64_decode(const char *s, size_t len, uint8_t *out)
{
    size_t pad = 0, o = 0;
    uint32_t acc = 0;
    int bits = 0;

    if (len > 0 && s[len - 1] == '=') {
        pad = (len > 1 && s[len - 2] == '=') ? 2 : 1;
        if (len % 4 != 0)
            return -1;
        len -= pad;
    }
    if (len % 4 == 1)
        return -1;
    for (size_t i = 0; i < len; i++) {
        int v = b64_value(s[i]);
        if (v < 0)
            return -1;
        acc = (acc << 6) | (uint32_t)v;
        bits += 6;
        if (bits >= 8) {
            bits -= 8;
            out[o++] = (uint8_t)(acc >> bits);
            acc &= (1u << bits) - 1;
        }
    }
    return (long)o;
}

/* ---- Encoding ------------------------------------------------------------------------------ */

struct enc {
    bst_pbjson_lookup_fn lookup;
    void *arg;
    unsigned flags;
};

static json_t *enc_message(const struct enc *e, const ProtobufCMessage *m, int depth);

static json_t *enc_double(double v)
{
    if (isnan(v))
        return json_string("NaN");
    if (isinf(v))
        return json_string(v > 0 ? "Infinity" : "-Infinity");
    return json_real(v);
}

/* Encodes the value of field f stored at p (the member itself or one array element). */
static json_t *enc_value(const struct enc *e, const ProtobufCFieldDescriptor *f, const char *p,
                         int depth)
{
    char buf[32];

    switch (f->type) {
    case PROTOBUF_C_TYPE_INT32:
    case PROTOBUF_C_TYPE_SINT32:
    case PROTOBUF_C_TYPE_SFIXED32: {
        int32_t v;
        memcpy(&v, p, sizeof(v));
        return json_integer(v);
    }
    case PROTOBUF_C_TYPE_UINT32:
    case PROTOBUF_C_TYPE_FIXED32: {
        uint32_t v;
        memcpy(&v, p, sizeof(v));
        return json_integer((json_int_t)v);
    }
    case PROTOBUF_C_TYPE_INT64:
    case PROTOBUF_C_TYPE_SINT64:
    case PROTOBUF_C_TYPE_SFIXED64: {
        int64_t v;
        memcpy(&v, p, sizeof(v));
        snprintf(buf, sizeof(buf), "%" PRId64, v);
        return json_string(buf);
    }
    case PROTOBUF_C_TYPE_UINT64:
    case PROTOBUF_C_TYPE_FIXED64: {
        uint64_t v;
        memcpy(&v, p, sizeof(v));
        snprintf(buf, sizeof(buf), "%" PRIu64, v);
        return json_string(buf);
    }
    case PROTOBUF_C_TYPE_FLOAT: {
        float v;
        memcpy(&v, p, sizeof(v));
        return enc_double((double)v);
    }
    case PROTOBUF_C_TYPE_DOUBLE: {
        double v;
        memcpy(&v, p, sizeof(v));
        return enc_double(v);
    }
    case PROTOBUF_C_TYPE_BOOL: {
        protobuf_c_boolean v;
        memcpy(&v, p, sizeof(v));
        return json_boolean(v != 0);
    }
    case PROTOBUF_C_TYPE_ENUM: {
        int32_t v;
        const ProtobufCEnumValue *ev;
        memcpy(&v, p, sizeof(v));
        ev = protobuf_c_enum_descriptor_get_value(f->descriptor, v);
        /* An undeclared number has no name: the JSON mapping writes the number. */
        return ev != NULL ? json_string(ev->name) : json_integer(v);
    }
    case PROTOBUF_C_TYPE_STRING: {
        const char *s;
        memcpy(&s, p, sizeof(s));
        /* Messages we build may carry text from anywhere; never emit invalid UTF-8. */
        if (s == NULL || !bst_utf8_valid(s, strlen(s)))
            return NULL;
        return json_string(s);
    }
    case PROTOBUF_C_TYPE_BYTES: {
        ProtobufCBinaryData bd;
        memcpy(&bd, p, sizeof(bd));
        return b64_encode(bd.data, bd.data != NULL ? bd.len : 0);
    }
    case PROTOBUF_C_TYPE_MESSAGE: {
        const ProtobufCMessage *sub;
        memcpy(&sub, p, sizeof(sub));
        return sub != NULL ? enc_message(e, sub, depth + 1) : NULL;
    }
    }
    return NULL;
}

static json_t *enc_message(const struct enc *e, const ProtobufCMessage *m, int depth)
{
    const ProtobufCMessageDescriptor *d;
    const char *base = (const char *)m;
    json_t *obj;

    if (!is_message(m) || depth > BST_PBJSON_MAX_DEPTH)
        return NULL;
    d = m->descriptor;
    if ((obj = json_object()) == NULL)
        return NULL;
    for (unsigned i = 0; i < d->n_fields; i++) {
        const ProtobufCFieldDescriptor *f = &d->fields[i];
        const struct bst_pbjson_field_info *inf;
        json_t *v;

        if (f->label == PROTOBUF_C_LABEL_REPEATED) {
            size_t n;
            const char *arr;
            memcpy(&n, base + f->quantifier_offset, sizeof(n));
            memcpy(&arr, base + f->offset, sizeof(arr));
            if (n == 0 || arr == NULL)
                continue;
            inf = field_info(e->lookup, e->arg, d, f);
            if ((e->flags & BST_PBJSON_REDACT) && inf != NULL && inf->sensitive)
                continue;
            if ((v = json_array()) == NULL)
                goto fail;
            for (size_t k = 0; k < n; k++) {
                if (json_array_append_new(v, enc_value(e, f, arr + k * elt_size(f->type), depth)) !=
                    0) {
                    json_decref(v);
                    goto fail;
                }
            }
        } else {
            if (!field_present(f, base))
                continue;
            inf = field_info(e->lookup, e->arg, d, f);
            if ((e->flags & BST_PBJSON_REDACT) && inf != NULL && inf->sensitive)
                continue;
            if ((v = enc_value(e, f, base + f->offset, depth)) == NULL)
                goto fail;
        }
        if (json_object_set_new(obj, f->name, v) != 0)
            goto fail;
    }
    return obj;
fail:
    json_decref(obj);
    return NULL;
}

json_t *bst_pbjson_encode(const ProtobufCMessage *m, bst_pbjson_lookup_fn lookup, void *arg,
                          unsigned flags)
{
    struct enc e = {lookup, arg, flags};
    return enc_message(&e, m, 1);
}

/* ---- Decoding ------------------------------------------------------------------------------ */

struct dec {
    ProtobufCAllocator *a;
    struct bst_err *err;
    struct path path;
};

static void *sys_alloc(void *data, size_t size)
{
    (void)data;
    return malloc(size);
}

static void sys_free(void *data, void *p)
{
    (void)data;
    free(p);
}

/* protobuf-c frees a NULL allocator's messages with malloc's free, so this one matches it. */
static ProtobufCAllocator sys_allocator = {sys_alloc, sys_free, NULL};

static void *dec_alloc(struct dec *d, size_t n)
{
    void *p = d->a->alloc(d->a->allocator_data, n > 0 ? n : 1);
    if (p == NULL)
        path_fail(&d->path, d->err, BST_RESOURCE_EXHAUSTED, "out of memory decoding JSON");
    return p;
}

#define DEC_FAIL(d, ...) path_fail(&(d)->path, (d)->err, BST_INVALID_ARGUMENT, __VA_ARGS__)

/* Strict decimal integer: -?(0|[1-9][0-9]*). Returns 0 and sets *neg and *mag, -1 for bad
 * syntax, or -2 when the magnitude does not fit 64 bits. */
static int parse_decimal(const char *s, int *neg, uint64_t *mag)
{
    size_t i = 0, digits = 0;
    uint64_t v = 0;

    *neg = 0;
    *mag = 0;
    if (s[i] == '-') {
        *neg = 1;
        i++;
    }
    if (s[i] == '0' && s[i + 1] != '\0')
        return -1;
    for (; s[i] != '\0'; i++, digits++) {
        unsigned dgt;
        if (s[i] < '0' || s[i] > '9')
            return -1;
        dgt = (unsigned)(s[i] - '0');
        if (v > (UINT64_MAX - dgt) / 10)
            return -2;
        v = v * 10 + dgt;
    }
    if (digits == 0)
        return -1;
    *mag = v;
    return 0;
}

/* Reads an integer field value from j into *sv (signed types) or *uv (unsigned), checking the
 * type's range. */
static enum bst_status dec_int(struct dec *d, const ProtobufCFieldDescriptor *f, const json_t *j,
                               int64_t *sv, uint64_t *uv)
{
    const char *tname = is_64bit_int(f->type) ? (is_unsigned(f->type) ? "uint64" : "int64")
                                              : (is_unsigned(f->type) ? "uint32" : "int32");
    int neg = 0;
    uint64_t mag = 0;
    int64_t lo, hi;

    if (json_is_integer(j)) {
        json_int_t v = json_integer_value(j);
        neg = v < 0;
        mag = neg ? (uint64_t)(-(v + 1)) + 1 : (uint64_t)v;
    } else if (json_is_real(j)) {
        double r = json_real_value(j);
        /* Integral reals (3.0) are integers to JSON; beyond 2^53 they are not exact. */
        if (!isfinite(r) || r != floor(r) || fabs(r) > 9007199254740992.0)
            return DEC_FAIL(d, "expected an integer (%s)", tname);
        neg = r < 0;
        mag = (uint64_t)fabs(r);
    } else if (json_is_string(j)) {
        int prv = parse_decimal(json_string_value(j), &neg, &mag);
        if (prv == -2)
            return DEC_FAIL(d, "out of range for %s", tname);
        if (prv != 0 || strlen(json_string_value(j)) != json_string_length(j))
            return DEC_FAIL(d, "expected an integer (%s) as a number or a decimal string", tname);
    } else {
        return DEC_FAIL(d, "expected an integer (%s)", tname);
    }
    if (neg && mag == 0)
        neg = 0;
    if (is_unsigned(f->type)) {
        uint64_t max = is_64bit_int(f->type) ? UINT64_MAX : UINT32_MAX;
        if (neg || mag > max)
            return DEC_FAIL(d, "out of range for %s", tname);
        *uv = mag;
        return BST_OK;
    }
    int_range(f->type, &lo, &hi);
    if (neg) {
        /* -lo as an unsigned magnitude; INT64_MIN's is 2^63. */
        uint64_t max_neg = (uint64_t)(-(lo + 1)) + 1;
        if (mag > max_neg)
            return DEC_FAIL(d, "out of range for %s", tname);
        *sv = (int64_t)(0 - mag); /* two's complement: exact for every magnitude up to 2^63 */
    } else {
        if (mag > (uint64_t)hi)
            return DEC_FAIL(d, "out of range for %s", tname);
        *sv = (int64_t)mag;
    }
    return BST_OK;
}

/* JSON number syntax, for floats given as strings: -?(0|[1-9]\d*)(\.\d+)?([eE][+-]?\d+)? */
static int json_number_syntax(const char *s)
{
    size_t i = 0;
    if (s[i] == '-')
        i++;
    if (s[i] == '0')
        i++;
    else if (s[i] >= '1' && s[i] <= '9')
        while (s[i] >= '0' && s[i] <= '9')
            i++;
    else
        return 0;
    if (s[i] == '.') {
        i++;
        if (s[i] < '0' || s[i] > '9')
            return 0;
        while (s[i] >= '0' && s[i] <= '9')
            i++;
    }
    if (s[i] == 'e' || s[i] == 'E') {
        i++;
        if (s[i] == '+' || s[i] == '-')
            i++;
        if (s[i] < '0' || s[i] > '9')
            return 0;
        while (s[i] >= '0' && s[i] <= '9')
            i++;
    }
    return s[i] == '\0' && i <= 64;
}

static enum bst_status dec_double(struct dec *d, const ProtobufCFieldDescriptor *f, const json_t *j,
                                  double *out)
{
    const char *tname = f->type == PROTOBUF_C_TYPE_FLOAT ? "float" : "double";
    double v;

    if (json_is_number(j)) {
        v = json_number_value(j);
    } else if (json_is_string(j)) {
        const char *s = json_string_value(j);
        if (strlen(s) != json_string_length(j))
            return DEC_FAIL(d, "expected a number (%s)", tname);
        if (strcmp(s, "NaN") == 0)
            v = NAN;
        else if (strcmp(s, "Infinity") == 0)
            v = INFINITY;
        else if (strcmp(s, "-Infinity") == 0)
            v = -INFINITY;
        else if (json_number_syntax(s)) {
            errno = 0;
            v = strtod(s, NULL);
            if (errno == ERANGE && isinf(v))
                return DEC_FAIL(d, "out of range for %s", tname);
        } else
            return DEC_FAIL(d, "expected a number (%s)", tname);
    } else {
        return DEC_FAIL(d, "expected a number (%s)", tname);
    }
    if (f->type == PROTOBUF_C_TYPE_FLOAT && isfinite(v) && fabs(v) > FLT_MAX)
        return DEC_FAIL(d, "out of range for float");
    *out = v;
    return BST_OK;
}

static enum bst_status dec_message(struct dec *d, const ProtobufCMessageDescriptor *desc,
                                   const json_t *j, ProtobufCMessage **out, int depth);

/* Decodes j as one value of field f into p (the member or an array element, zeroed). */
static enum bst_status dec_value(struct dec *d, const ProtobufCFieldDescriptor *f, const json_t *j,
                                 char *p, int depth)
{
    switch (f->type) {
    case PROTOBUF_C_TYPE_INT32:
    case PROTOBUF_C_TYPE_SINT32:
    case PROTOBUF_C_TYPE_SFIXED32:
    case PROTOBUF_C_TYPE_UINT32:
    case PROTOBUF_C_TYPE_FIXED32:
    case PROTOBUF_C_TYPE_INT64:
    case PROTOBUF_C_TYPE_SINT64:
    case PROTOBUF_C_TYPE_SFIXED64:
    case PROTOBUF_C_TYPE_UINT64:
    case PROTOBUF_C_TYPE_FIXED64: {
        int64_t sv = 0;
        uint64_t uv = 0;
        enum bst_status rv = dec_int(d, f, j, &sv, &uv);
        if (rv != BST_OK)
            return rv;
        if (elt_size(f->type) == 4) {
            uint32_t v32 = is_unsigned(f->type) ? (uint32_t)uv : (uint32_t)(int32_t)sv;
            memcpy(p, &v32, sizeof(v32));
        } else if (is_unsigned(f->type)) {
            memcpy(p, &uv, sizeof(uv));
        } else {
            memcpy(p, &sv, sizeof(sv));
        }
        return BST_OK;
    }
    case PROTOBUF_C_TYPE_FLOAT:
    case PROTOBUF_C_TYPE_DOUBLE: {
        double v = 0;
        enum bst_status rv = dec_double(d, f, j, &v);
        if (rv != BST_OK)
            return rv;
        if (f->type == PROTOBUF_C_TYPE_FLOAT) {
            float fv = (float)v;
            memcpy(p, &fv, sizeof(fv));
        } else {
            memcpy(p, &v, sizeof(v));
        }
        return BST_OK;
    }
    case PROTOBUF_C_TYPE_BOOL: {
        protobuf_c_boolean v;
        if (!json_is_boolean(j))
            return DEC_FAIL(d, "expected true or false");
        v = json_is_true(j);
        memcpy(p, &v, sizeof(v));
        return BST_OK;
    }
    case PROTOBUF_C_TYPE_ENUM: {
        const ProtobufCEnumDescriptor *ed = f->descriptor;
        const ProtobufCEnumValue *ev;
        int32_t v;
        if (!json_is_string(j))
            return DEC_FAIL(d, "expected the name of a %s value", ed->name);
        if (strlen(json_string_value(j)) != json_string_length(j) ||
            (ev = protobuf_c_enum_descriptor_get_value_by_name(ed, json_string_value(j))) == NULL)
            return DEC_FAIL(d, "not a value of enum %s", ed->name);
        v = ev->value;
        memcpy(p, &v, sizeof(v));
        return BST_OK;
    }
    case PROTOBUF_C_TYPE_STRING: {
        const char *s;
        size_t len;
        char *copy;
        if (!json_is_string(j))
            return DEC_FAIL(d, "expected a string");
        s = json_string_value(j);
        len = json_string_length(j);
        if (memchr(s, '\0', len) != NULL)
            return DEC_FAIL(d, "NUL character in string");
        if (!bst_utf8_valid(s, len))
            return DEC_FAIL(d, "invalid UTF-8");
        if ((copy = dec_alloc(d, len + 1)) == NULL)
            return BST_RESOURCE_EXHAUSTED;
        memcpy(copy, s, len + 1);
        memcpy(p, &copy, sizeof(copy));
        return BST_OK;
    }
    case PROTOBUF_C_TYPE_BYTES: {
        ProtobufCBinaryData bd = {0, NULL};
        const char *s;
        size_t len;
        long n;
        if (!json_is_string(j))
            return DEC_FAIL(d, "expected a base64 string");
        s = json_string_value(j);
        len = json_string_length(j);
        if (len > 0) {
            if ((bd.data = dec_alloc(d, len / 4 * 3 + 3)) == NULL)
                return BST_RESOURCE_EXHAUSTED;
            n = b64_decode(s, len, bd.data);
            if (n < 0) {
                d->a->free(d->a->allocator_data, bd.data);
                return DEC_FAIL(d, "not base64");
            }
            bd.len = (size_t)n;
        }
        memcpy(p, &bd, sizeof(bd));
        return BST_OK;
    }
    case PROTOBUF_C_TYPE_MESSAGE:
        return dec_message(d, f->descriptor, j, (ProtobufCMessage **)(void *)p, depth + 1);
    }
    return DEC_FAIL(d, "unsupported field type");
}

static enum bst_status dec_repeated(struct dec *d, const ProtobufCFieldDescriptor *f,
                                    const json_t *j, char *base, int depth)
{
    size_t n, elt = elt_size(f->type);
    char *arr;

    if (!json_is_array(j))
        return DEC_FAIL(d, "expected an array");
    n = json_array_size(j);
    if (n > BST_PBJSON_MAX_ITEMS)
        return DEC_FAIL(d, "more than %d elements", BST_PBJSON_MAX_ITEMS);
    if (n == 0)
        return BST_OK;
    if ((arr = dec_alloc(d, n * elt)) == NULL)
        return BST_RESOURCE_EXHAUSTED;
    /* Zeroed and counted before filling, so that freeing the message after a failure midway
     * releases exactly what was built (protobuf-c frees NULL elements as nothing). */
    memset(arr, 0, n * elt);
    memcpy(base + f->offset, &arr, sizeof(arr));
    memcpy(base + f->quantifier_offset, &n, sizeof(n));
    for (size_t i = 0; i < n; i++) {
        const json_t *item = json_array_get(j, i);
        size_t old = path_push(&d->path, "[%zu]", i);
        enum bst_status rv;
        if (json_is_null(item))
            rv = DEC_FAIL(d, "null is not allowed in an array");
        else
            rv = dec_value(d, f, item, arr + i * elt, depth);
        if (rv != BST_OK)
            return rv;
        path_pop(&d->path, old);
    }
    return BST_OK;
}

/* Returns the member of f's oneof that is set in base, or NULL. */
static const ProtobufCFieldDescriptor *oneof_set_member(const ProtobufCMessageDescriptor *desc,
                                                        const ProtobufCFieldDescriptor *f,
                                                        const char *base)
{
    uint32_t which;
    memcpy(&which, base + f->quantifier_offset, sizeof(which));
    return which != 0 ? protobuf_c_message_descriptor_get_field(desc, which) : NULL;
}

static enum bst_status dec_message(struct dec *d, const ProtobufCMessageDescriptor *desc,
                                   const json_t *j, ProtobufCMessage **out, int depth)
{
    ProtobufCMessage *m;
    const char *key;
    json_t *val;
    char *base;

    if (depth > BST_PBJSON_MAX_DEPTH)
        return DEC_FAIL(d, "messages nested deeper than %d", BST_PBJSON_MAX_DEPTH);
    if (!json_is_object(j))
        return DEC_FAIL(d, "expected an object");
    if ((m = dec_alloc(d, desc->sizeof_message)) == NULL)
        return BST_RESOURCE_EXHAUSTED;
    desc->message_init(m);
    *out = m; /* from here on, the caller's cleanup frees whatever is built */
    base = (char *)m;
    json_object_foreach((json_t *)j, key, val)
    {
        const ProtobufCFieldDescriptor *f =
            protobuf_c_message_descriptor_get_field_by_name(desc, key);
        size_t old = path_field(&d->path, key);
        enum bst_status rv;

        if (f == NULL)
            return DEC_FAIL(d, "unknown field");
        if (json_is_null(val)) {
            path_pop(&d->path, old);
            continue; /* null means absent in the JSON mapping */
        }
        if (f->label == PROTOBUF_C_LABEL_REPEATED) {
            rv = dec_repeated(d, f, val, base, depth);
        } else {
            if (f->flags & PROTOBUF_C_FIELD_FLAG_ONEOF) {
                const ProtobufCFieldDescriptor *other = oneof_set_member(desc, f, base);
                uint32_t id = f->id;
                if (other != NULL) {
                    path_pop(&d->path, old);
                    return DEC_FAIL(d, "%s and %s are members of one oneof: set only one",
                                    other->name, f->name);
                }
                /* The case first: protobuf-c frees a oneof member only when it is selected. */
                memcpy(base + f->quantifier_offset, &id, sizeof(id));
            }
            rv = dec_value(d, f, val, base + f->offset, depth);
            if (rv == BST_OK && f->label == PROTOBUF_C_LABEL_OPTIONAL &&
                !(f->flags & PROTOBUF_C_FIELD_FLAG_ONEOF) && f->type != PROTOBUF_C_TYPE_STRING &&
                f->type != PROTOBUF_C_TYPE_MESSAGE) {
                protobuf_c_boolean has = 1;
                memcpy(base + f->quantifier_offset, &has, sizeof(has));
            }
        }
        if (rv != BST_OK)
            return rv;
        path_pop(&d->path, old);
    }
    return BST_OK;
}

enum bst_status bst_pbjson_decode(const ProtobufCMessageDescriptor *desc, const json_t *in,
                                  ProtobufCAllocator *alloc, ProtobufCMessage **out,
                                  struct bst_err *err)
{
    struct dec d;
    ProtobufCMessage *m = NULL;
    enum bst_status rv;

    *out = NULL;
    d.a = alloc != NULL ? alloc : &sys_allocator;
    d.err = err;
    d.path.buf[0] = '\0';
    d.path.len = 0;
    if (desc == NULL || desc->magic != PROTOBUF_C__MESSAGE_DESCRIPTOR_MAGIC)
        return bst_errf(err, BST_INTERNAL, "not a message descriptor");
    if (in == NULL)
        return bst_errf(err, BST_INVALID_ARGUMENT, "expected an object");
    rv = dec_message(&d, desc, in, &m, 1);
    if (rv != BST_OK) {
        if (m != NULL)
            protobuf_c_message_free_unpacked(m, alloc);
        return rv;
    }
    *out = m;
    return BST_OK;
}

/* ---- key=value ----------------------------------------------------------------------------- */

/* Converts the text of a key=value pair to the JSON value bst_pbjson_decode expects for f. */
static json_t *kv_value(const struct path *p, const ProtobufCFieldDescriptor *f, const char *v,
                        struct bst_err *err)
{
    json_t *j;

    switch (f->type) {
    case PROTOBUF_C_TYPE_BOOL:
        if (strcmp(v, "true") == 0)
            return json_true();
        if (strcmp(v, "false") == 0)
            return json_false();
        path_fail(p, err, BST_INVALID_ARGUMENT, "expected true or false");
        return NULL;
    case PROTOBUF_C_TYPE_MESSAGE: {
        json_error_t jerr;
        j = json_loads(v, JSON_REJECT_DUPLICATES, &jerr);
        if (j == NULL || !json_is_object(j)) {
            json_decref(j);
            path_fail(p, err, BST_INVALID_ARGUMENT,
                      "a message field takes a JSON object as its value");
            return NULL;
        }
        return j;
    }
    default:
        /* Strings, bytes, enums and numbers travel as JSON strings: the decoder accepts
         * decimal strings for numbers, so there is one strict number parser. */
        j = json_string(v);
        if (j == NULL)
            path_fail(p, err, BST_INVALID_ARGUMENT, "invalid UTF-8");
        return j;
    }
}

/* Whether j is one of the n objects that came whole from a JSON value. */
static int came_whole(json_t *const *whole, size_t n, const json_t *j)
{
    for (size_t i = 0; i < n; i++)
        if (whole[i] == j)
            return 1;
    return 0;
}

enum bst_status bst_pbjson_decode_kv(const ProtobufCMessageDescriptor *desc, char *const *kv,
                                     size_t n, ProtobufCAllocator *alloc, ProtobufCMessage **out,
                                     struct bst_err *err)
{
    json_t *root = json_object();
    json_t **whole = calloc(n > 0 ? n : 1, sizeof(*whole));
    size_t n_whole = 0;
    enum bst_status rv = BST_OK;
    char key[BST_PBJSON_MAX_KV_KEY + 1];

    *out = NULL;
    if (root == NULL || whole == NULL) {
        rv = bst_errf(err, BST_RESOURCE_EXHAUSTED, "out of memory");
        goto done;
    }
    for (size_t i = 0; i < n && rv == BST_OK; i++) {
        const char *eq = strchr(kv[i], '=');
        const ProtobufCMessageDescriptor *cur = desc;
        json_t *obj = root;
        struct path p = {"", 0};
        size_t klen;
        char *seg, *next;

        /* The pair is never quoted back: it may be a secret typed in the wrong place. */
        if (eq == NULL) {
            rv = bst_errf(err, BST_INVALID_ARGUMENT, "argument %zu: expected key=value", i + 1);
            break;
        }
        klen = (size_t)(eq - kv[i]);
        if (klen == 0 || klen > BST_PBJSON_MAX_KV_KEY) {
            rv = bst_errf(err, BST_INVALID_ARGUMENT, "argument %zu: the key must be 1 to %d bytes",
                          i + 1, BST_PBJSON_MAX_KV_KEY);
            break;
        }
        memcpy(key, kv[i], klen);
        key[klen] = '\0';
        if (!bst_utf8_valid(key, klen)) {
            rv = bst_errf(err, BST_INVALID_ARGUMENT, "argument %zu: key is not UTF-8", i + 1);
            break;
        }
        for (seg = key; seg != NULL && rv == BST_OK; seg = next) {
            const ProtobufCFieldDescriptor *f;
            json_t *child;

            next = strchr(seg, '.');
            if (next != NULL)
                *next++ = '\0';
            if (seg[0] == '\0') {
                rv = bst_errf(err, BST_INVALID_ARGUMENT, "argument %zu: empty key segment", i + 1);
                break;
            }
            path_field(&p, seg);
            if ((f = protobuf_c_message_descriptor_get_field_by_name(cur, seg)) == NULL) {
                rv = path_fail(&p, err, BST_INVALID_ARGUMENT, "unknown field");
                break;
            }
            child = json_object_get(obj, seg);
            if (next != NULL) {
                if (f->type != PROTOBUF_C_TYPE_MESSAGE) {
                    rv = path_fail(&p, err, BST_INVALID_ARGUMENT, "not a message: no sub-fields");
                    break;
                }
                if (f->label == PROTOBUF_C_LABEL_REPEATED) {
                    rv = path_fail(&p, err, BST_INVALID_ARGUMENT,
                                   "a repeated message field takes each element as a JSON "
                                   "object, e.g. %s={...}",
                                   p.buf);
                    break;
                }
                if (child == NULL) {
                    child = json_object();
                    if (child == NULL || json_object_set_new(obj, seg, child) != 0) {
                        rv = bst_errf(err, BST_RESOURCE_EXHAUSTED, "out of memory");
                        break;
                    }
                } else if (came_whole(whole, n_whole, child)) {
                    rv = path_fail(&p, err, BST_INVALID_ARGUMENT,
                                   "given both as a JSON object and field by field");
                    break;
                }
                obj = child;
                cur = f->descriptor;
                continue;
            }
            {
                json_t *v = kv_value(&p, f, eq + 1, err);
                if (v == NULL) {
                    rv = err != NULL && err->code != BST_OK ? err->code : BST_INVALID_ARGUMENT;
                    break;
                }
                if (f->type == PROTOBUF_C_TYPE_MESSAGE)
                    whole[n_whole++] = v;
                if (f->label == PROTOBUF_C_LABEL_REPEATED) {
                    if (child == NULL) {
                        child = json_array();
                        if (child == NULL || json_object_set_new(obj, seg, child) != 0) {
                            json_decref(v);
                            rv = bst_errf(err, BST_RESOURCE_EXHAUSTED, "out of memory");
                            break;
                        }
                    }
                    if (json_array_append_new(child, v) != 0)
                        rv = bst_errf(err, BST_RESOURCE_EXHAUSTED, "out of memory");
                } else if (child != NULL) {
                    json_decref(v);
                    rv = path_fail(&p, err, BST_INVALID_ARGUMENT, "given twice");
                } else if (json_object_set_new(obj, seg, v) != 0) {
                    rv = bst_errf(err, BST_RESOURCE_EXHAUSTED, "out of memory");
                }
            }
        }
    }
    if (rv == BST_OK)
        rv = bst_pbjson_decode(desc, root, alloc, out, err);
done:
    free(whole);
    json_decref(root);
    return rv;
}

/* ---- JSON Schema --------------------------------------------------------------------------- */

static int set_new(json_t *o, const char *k, json_t *v)
{
    return v == NULL || json_object_set_new(o, k, v) != 0 ? -1 : 0;
}

static json_t *schema_message(const ProtobufCMessageDescriptor *d, bst_pbjson_lookup_fn lookup,
                              void *arg, int depth);

static json_t *schema_value(const ProtobufCFieldDescriptor *f,
                            const struct bst_pbjson_field_info *inf, bst_pbjson_lookup_fn lookup,
                            void *arg, int depth)
{
    json_t *s;

    if (f->type == PROTOBUF_C_TYPE_MESSAGE)
        return schema_message(f->descriptor, lookup, arg, depth + 1);
    if ((s = json_object()) == NULL)
        return NULL;
    if (is_integer(f->type)) {
        int64_t lo, hi;
        int_range(f->type, &lo, &hi);
        if (is_64bit_int(f->type)) {
            /* The JSON mapping writes 64-bit integers as strings and reads either form. */
            json_t *types = json_pack("[ss]", "integer", "string");
            if (set_new(s, "type", types) != 0 ||
                set_new(s, "format", json_string(is_unsigned(f->type) ? "uint64" : "int64")) != 0 ||
                set_new(s, "pattern",
                        json_string(is_unsigned(f->type) ? "^[0-9]+$" : "^-?[0-9]+$")) != 0)
                goto fail;
            if (inf == NULL || !inf->has_bounds)
                return s;
        } else if (set_new(s, "type", json_string("integer")) != 0) {
            goto fail;
        }
        if (inf != NULL && inf->has_bounds) {
            lo = inf->min > lo ? inf->min : lo;
            hi = inf->max < hi ? inf->max : hi;
        }
        if (set_new(s, "minimum", json_integer(lo)) != 0 ||
            set_new(s, "maximum", json_integer(hi)) != 0)
            goto fail;
        return s;
    }
    switch (f->type) {
    case PROTOBUF_C_TYPE_FLOAT:
    case PROTOBUF_C_TYPE_DOUBLE:
        if (set_new(s, "type", json_string("number")) != 0)
            goto fail;
        return s;
    case PROTOBUF_C_TYPE_BOOL:
        if (set_new(s, "type", json_string("boolean")) != 0)
            goto fail;
        return s;
    case PROTOBUF_C_TYPE_ENUM: {
        const ProtobufCEnumDescriptor *ed = f->descriptor;
        json_t *names = json_array();
        if (set_new(s, "type", json_string("string")) != 0 || set_new(s, "enum", names) != 0)
            goto fail;
        for (unsigned i = 0; i < ed->n_values; i++)
            if (json_array_append_new(names, json_string(ed->values[i].name)) != 0)
                goto fail;
        return s;
    }
    case PROTOBUF_C_TYPE_STRING:
        if (set_new(s, "type", json_string("string")) != 0)
            goto fail;
        /* maxLength counts characters and the server counts bytes: the schema is never
         * stricter than the server. */
        if (inf != NULL && inf->max_len > 0 &&
            set_new(s, "maxLength", json_integer((json_int_t)inf->max_len)) != 0)
            goto fail;
        if (inf != NULL && inf->pattern != NULL &&
            set_new(s, "pattern", json_string(inf->pattern)) != 0)
            goto fail;
        return s;
    case PROTOBUF_C_TYPE_BYTES:
        if (set_new(s, "type", json_string("string")) != 0 ||
            set_new(s, "contentEncoding", json_string("base64")) != 0)
            goto fail;
        if (inf != NULL && inf->max_len > 0 &&
            set_new(s, "maxLength", json_integer((json_int_t)(4 * ((inf->max_len + 2) / 3)))) != 0)
            goto fail;
        return s;
    default:
        break;
    }
fail:
    json_decref(s);
    return NULL;
}

/* Adds the "at most one member of each oneof" rule: not (a and b) for every pair. */
static int schema_oneofs(json_t *obj, const ProtobufCMessageDescriptor *d)
{
    json_t *pairs = json_array(), *nt;

    if (pairs == NULL)
        return -1;
    for (unsigned i = 0; i < d->n_fields; i++) {
        const ProtobufCFieldDescriptor *a = &d->fields[i];
        if (!(a->flags & PROTOBUF_C_FIELD_FLAG_ONEOF))
            continue;
        for (unsigned k = i + 1; k < d->n_fields; k++) {
            const ProtobufCFieldDescriptor *b = &d->fields[k];
            if (!(b->flags & PROTOBUF_C_FIELD_FLAG_ONEOF) ||
                b->quantifier_offset != a->quantifier_offset)
                continue;
            if (json_array_append_new(pairs, json_pack("{s[ss]}", "required", a->name, b->name)) !=
                0) {
                json_decref(pairs);
                return -1;
            }
        }
    }
    if (json_array_size(pairs) == 0) {
        json_decref(pairs);
        return 0;
    }
    nt = json_object();
    if (nt == NULL || set_new(nt, "anyOf", pairs) != 0) {
        json_decref(nt);
        return -1;
    }
    return set_new(obj, "not", nt);
}

static json_t *schema_message(const ProtobufCMessageDescriptor *d, bst_pbjson_lookup_fn lookup,
                              void *arg, int depth)
{
    json_t *obj, *props = json_object(), *req = json_array();

    if (depth > BST_PBJSON_MAX_DEPTH || d == NULL ||
        d->magic != PROTOBUF_C__MESSAGE_DESCRIPTOR_MAGIC) {
        json_decref(props);
        json_decref(req);
        return NULL;
    }
    /* props and req are owned by obj from here on; the pointers stay usable while it lives. */
    obj = json_pack("{s:s}", "type", "object");
    if (obj == NULL || set_new(obj, "properties", props) != 0 || set_new(obj, "required", req) != 0)
        goto fail;
    for (unsigned i = 0; i < d->n_fields; i++) {
        const ProtobufCFieldDescriptor *f = &d->fields[i];
        const struct bst_pbjson_field_info *inf = field_info(lookup, arg, d, f);
        json_t *s = schema_value(f, inf, lookup, arg, depth);

        if (s == NULL)
            goto fail;
        if (f->label == PROTOBUF_C_LABEL_REPEATED) {
            size_t max = inf != NULL && inf->max_items > 0 ? inf->max_items : BST_PBJSON_MAX_ITEMS;
            json_t *arr = json_pack("{s:s}", "type", "array");
            if (set_new(arr, "items", s) != 0) {
                json_decref(arr);
                goto fail;
            }
            s = arr;
            if (set_new(s, "maxItems", json_integer((json_int_t)max)) != 0) {
                json_decref(s);
                goto fail;
            }
        }
        if (set_new(props, f->name, s) != 0)
            goto fail;
        if (inf != NULL && inf->description != NULL &&
            set_new(s, "description", json_string(inf->description)) != 0)
            goto fail;
        if (inf != NULL && inf->default_json != NULL &&
            set_new(s, "default", json_loads(inf->default_json, JSON_DECODE_ANY, NULL)) != 0)
            goto fail;
        if (inf != NULL && inf->sensitive && set_new(s, "writeOnly", json_true()) != 0)
            goto fail;
        if ((f->label == PROTOBUF_C_LABEL_REQUIRED || (inf != NULL && inf->required)) &&
            json_array_append_new(req, json_string(f->name)) != 0)
            goto fail;
    }
    if (json_array_size(req) == 0)
        json_object_del(obj, "required");
    if (schema_oneofs(obj, d) != 0 || set_new(obj, "additionalProperties", json_false()) != 0)
        goto fail;
    return obj;
fail:
    json_decref(obj);
    return NULL;
}

json_t *bst_pbjson_schema(const ProtobufCMessageDescriptor *d, bst_pbjson_lookup_fn lookup,
                          void *arg)
{
    json_t *body = schema_message(d, lookup, arg, 1), *s;

    if (body == NULL)
        return NULL;
    /* "$schema" first, for readers that look at the top of the document. */
    s = json_pack("{s:s}", "$schema", "https://json-schema.org/draft/2020-12/schema");
    if (s == NULL || json_object_update(s, body) != 0) {
        json_decref(s);
        s = NULL;
    }
    json_decref(body);
    return s;
}

/* ---- Rule checks --------------------------------------------------------------------------- */

struct chk {
    bst_pbjson_lookup_fn lookup;
    void *arg;
    struct bst_err *err;
    struct path path;
};

#define CHK_FAIL(c, ...) path_fail(&(c)->path, (c)->err, BST_INVALID_ARGUMENT, __VA_ARGS__)

static enum bst_status chk_message(struct chk *c, const ProtobufCMessage *m, int depth);

static enum bst_status chk_value(struct chk *c, const ProtobufCFieldDescriptor *f,
                                 const struct bst_pbjson_field_info *inf, const char *p,
                                 int repeated, int depth)
{
    if (f->type == PROTOBUF_C_TYPE_MESSAGE) {
        const ProtobufCMessage *sub;
        memcpy(&sub, p, sizeof(sub));
        return sub != NULL ? chk_message(c, sub, depth + 1) : BST_OK;
    }
    if (inf == NULL)
        return BST_OK;
    if (f->type == PROTOBUF_C_TYPE_STRING) {
        const char *s;
        size_t len;
        memcpy(&s, p, sizeof(s));
        len = s != NULL ? strlen(s) : 0;
        if (inf->required && !repeated && len == 0)
            return CHK_FAIL(c, "required");
        if (inf->max_len > 0 && len > inf->max_len)
            return CHK_FAIL(c, "longer than %zu bytes", inf->max_len);
        if (inf->valid != NULL && s != NULL && !inf->valid(s))
            return CHK_FAIL(c, "must be %s", inf->syntax != NULL ? inf->syntax : "well-formed");
        return BST_OK;
    }
    if (f->type == PROTOBUF_C_TYPE_BYTES) {
        ProtobufCBinaryData bd;
        memcpy(&bd, p, sizeof(bd));
        if (inf->max_len > 0 && bd.len > inf->max_len)
            return CHK_FAIL(c, "longer than %zu bytes", inf->max_len);
        return BST_OK;
    }
    if (is_integer(f->type) && inf->has_bounds) {
        int ok;
        if (elt_size(f->type) == 4) {
            int64_t v;
            if (is_unsigned(f->type)) {
                uint32_t u;
                memcpy(&u, p, sizeof(u));
                v = u;
            } else {
                int32_t s;
                memcpy(&s, p, sizeof(s));
                v = s;
            }
            ok = v >= inf->min && v <= inf->max;
        } else if (is_unsigned(f->type)) {
            uint64_t u;
            memcpy(&u, p, sizeof(u));
            ok = u <= (uint64_t)INT64_MAX && (int64_t)u >= inf->min && (int64_t)u <= inf->max;
        } else {
            int64_t v;
            memcpy(&v, p, sizeof(v));
            ok = v >= inf->min && v <= inf->max;
        }
        if (!ok)
            return CHK_FAIL(c, "must be between %" PRId64 " and %" PRId64, inf->min, inf->max);
    }
    return BST_OK;
}

static enum bst_status chk_message(struct chk *c, const ProtobufCMessage *m, int depth)
{
    const ProtobufCMessageDescriptor *d;
    const char *base = (const char *)m;

    if (!is_message(m))
        return CHK_FAIL(c, "not a message");
    if (depth > BST_PBJSON_MAX_DEPTH)
        return CHK_FAIL(c, "messages nested deeper than %d", BST_PBJSON_MAX_DEPTH);
    d = m->descriptor;
    for (unsigned i = 0; i < d->n_fields; i++) {
        const ProtobufCFieldDescriptor *f = &d->fields[i];
        const struct bst_pbjson_field_info *inf = field_info(c->lookup, c->arg, d, f);
        size_t old = path_field(&c->path, f->name);
        enum bst_status rv = BST_OK;

        if (f->label == PROTOBUF_C_LABEL_REPEATED) {
            size_t n;
            const char *arr;
            memcpy(&n, base + f->quantifier_offset, sizeof(n));
            memcpy(&arr, base + f->offset, sizeof(arr));
            if (n == 0 && inf != NULL && inf->required)
                rv = CHK_FAIL(c, "required");
            else if (inf != NULL && inf->max_items > 0 && n > inf->max_items)
                rv = CHK_FAIL(c, "at most %zu elements", inf->max_items);
            for (size_t k = 0; rv == BST_OK && arr != NULL && k < n; k++) {
                size_t o2 = path_push(&c->path, "[%zu]", k);
                rv = chk_value(c, f, inf, arr + k * elt_size(f->type), 1, depth);
                if (rv == BST_OK)
                    path_pop(&c->path, o2);
            }
        } else if (!field_present(f, base)) {
            /* Oneof members that are not selected are simply absent. */
            if (inf != NULL && inf->required && !(f->flags & PROTOBUF_C_FIELD_FLAG_ONEOF))
                rv = CHK_FAIL(c, "required");
        } else {
            rv = chk_value(c, f, inf, base + f->offset, 0, depth);
        }
        if (rv != BST_OK)
            return rv;
        path_pop(&c->path, old);
    }
    return BST_OK;
}

enum bst_status bst_pbjson_check(const ProtobufCMessage *m, bst_pbjson_lookup_fn lookup, void *arg,
                                 struct bst_err *err)
{
    struct chk c;
    c.lookup = lookup;
    c.arg = arg;
    c.err = err;
    c.path.buf[0] = '\0';
    c.path.len = 0;
    return chk_message(&c, m, 1);
}
