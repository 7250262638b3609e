/* Hostile-input checks for protobuf messages: the per-call capped allocator, the generic
 * descriptor-driven validation walk, and the UTF-8 helpers shared with anything that echoes
 * peer text. */
#include "pbcheck.h"
#include "text.h"

#include <stdalign.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* Every block handed to protobuf-c is preceded by this header. The size lets free return the
 * bytes to the budget; the tag catches a block freed through another allocator. Aligning the
 * header to max_align_t keeps the block behind it as aligned as malloc's own. */
struct blk {
    alignas(max_align_t) size_t size;
    uintptr_t tag;
};

#define BLK_MAGIC ((uintptr_t)0x5b3c9d2e71a4f086ULL)

static uintptr_t blk_tag(const struct bst_pballoc *a)
{
    return (uintptr_t)a ^ BLK_MAGIC;
}

static void *pballoc_alloc(void *data, size_t size)
{
    struct bst_pballoc *a = data;
    size_t room = a->cap > a->used ? a->cap - a->used : 0;
    struct blk *b;

    /* Written as subtractions from the room left so that no sum can wrap. */
    if (room < sizeof(*b) || size > room - sizeof(*b)) {
        a->exhausted = 1;
        return NULL;
    }
    b = malloc(sizeof(*b) + size);
    if (b == NULL) {
        a->exhausted = 1;
        return NULL;
    }
    b->size = size;
    b->tag = blk_tag(a);
    a->used += sizeof(*b) + size;
    if (a->used > a->peak)
        a->peak = a->used;
    return b + 1;
}

static void pballoc_free(void *data, void *p)
{
    struct bst_pballoc *a = data;
    struct blk *b;

    if (p == NULL)
        return;
    b = (struct blk *)p - 1;
    if (b->tag != blk_tag(a) || b->size > a->used || sizeof(*b) > a->used - b->size)
        abort(); /* freed through the wrong allocator, or twice: a bug of ours */
    a->used -= sizeof(*b) + b->size;
    b->tag = 0;
    free(b);
}

void bst_pballoc_init(struct bst_pballoc *a, size_t cap)
{
    a->base.alloc = pballoc_alloc;
    a->base.free = pballoc_free;
    a->base.allocator_data = a;
    a->used = 0;
    a->peak = 0;
    a->cap = cap;
    a->exhausted = 0;
}

/* ---- Validation walk ------------------------------------------------------------------------ */

struct walk {
    /* The allocator every string of the message came from, or NULL when the caller built the
     * message (then the string lengths on the wire are unknown and an embedded NUL cannot be
     * seen). */
    const struct bst_pballoc *a;
    struct bst_err *err;
    char path[256]; /* "tools[3].name"; truncated, never overflowed, on absurd nesting */
    size_t len;
};

static size_t path_push(struct walk *w, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

/* Appends to the path and returns the previous length, to be given to path_pop(). */
static size_t path_push(struct walk *w, const char *fmt, ...)
{
    size_t old = w->len;
    va_list ap;
    int n;

    va_start(ap, fmt);
    n = vsnprintf(w->path + w->len, sizeof(w->path) - w->len, fmt, ap);
    va_end(ap);
    if (n > 0)
        w->len += (size_t)n < sizeof(w->path) - w->len ? (size_t)n : sizeof(w->path) - 1 - w->len;
    w->path[w->len] = '\0';
    return old;
}

static void path_pop(struct walk *w, size_t old)
{
    w->len = old;
    w->path[old] = '\0';
}

static enum bst_status walk_fail(struct walk *w, enum bst_status code, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

static enum bst_status walk_fail(struct walk *w, enum bst_status code, const char *fmt, ...)
{
    char msg[256];
    va_list ap;

    va_start(ap, fmt);
    vsnprintf(msg, sizeof(msg), fmt, ap);
    va_end(ap);
    if (w->len == 0)
        return bst_errf(w->err, code, "%s", msg);
    return bst_errf(w->err, code, "%s: %s", w->path, msg);
}

static enum bst_status walk_string(struct walk *w, const ProtobufCFieldDescriptor *f, const char *s)
{
    size_t len = strlen(s);

    /* protobuf-c copies a wire string of n bytes into a block of n + 1 and keeps no length, so
     * a NUL inside it would silently cut the string for every C consumer (and not for a log
     * or a forwarded copy of the raw bytes). The block header still knows n. Pointers to the
     * field's default or to the shared empty string were not allocated and carry no header. */
    if (w->a != NULL && s != (const char *)f->default_value && s != protobuf_c_empty_string) {
        const struct blk *b = (const struct blk *)s - 1;
        if (b->tag != blk_tag(w->a) || b->size == 0)
            return walk_fail(w, BST_INTERNAL, "string not allocated by the call's allocator");
        if (b->size - 1 != len)
            return walk_fail(w, BST_INVALID_ARGUMENT, "embedded NUL byte in string");
    }
    if (!bst_utf8_valid(s, len))
        return walk_fail(w, BST_INVALID_ARGUMENT, "invalid UTF-8");
    return BST_OK;
}

static enum bst_status walk_message(struct walk *w, const ProtobufCMessage *m, int depth);

/* Checks one value of field f stored at p (the member itself, or one element of its array). */
static enum bst_status walk_value(struct walk *w, const ProtobufCFieldDescriptor *f, const char *p,
                                  int depth)
{
    switch (f->type) {
    case PROTOBUF_C_TYPE_ENUM: {
        const ProtobufCEnumDescriptor *ed = f->descriptor;
        int32_t v;
        memcpy(&v, p, sizeof(v));
        if (protobuf_c_enum_descriptor_get_value(ed, v) == NULL)
            return walk_fail(w, BST_INVALID_ARGUMENT, "value %d is not declared by enum %s", (int)v,
                             ed->name);
        return BST_OK;
    }
    case PROTOBUF_C_TYPE_STRING: {
        const char *s;
        memcpy(&s, p, sizeof(s));
        return s != NULL ? walk_string(w, f, s) : BST_OK;
    }
    case PROTOBUF_C_TYPE_MESSAGE: {
        const ProtobufCMessage *sub;
        memcpy(&sub, p, sizeof(sub));
        return sub != NULL ? walk_message(w, sub, depth + 1) : BST_OK;
    }
    default:
        return BST_OK; /* numbers, bools and bytes have no further rules */
    }
}

static enum bst_status walk_repeated(struct walk *w, const ProtobufCFieldDescriptor *f,
                                     const char *base, int depth)
{
    size_t n, elt;
    const char *arr;

    memcpy(&n, base + f->quantifier_offset, sizeof(n));
    if (n > BST_PB_MAX_REPEATED)
        return walk_fail(w, BST_INVALID_ARGUMENT, "%zu elements, more than the %d allowed", n,
                         BST_PB_MAX_REPEATED);
    switch (f->type) {
    case PROTOBUF_C_TYPE_ENUM:
        elt = sizeof(int32_t);
        break;
    case PROTOBUF_C_TYPE_STRING:
    case PROTOBUF_C_TYPE_MESSAGE:
        elt = sizeof(void *);
        break;
    default:
        return BST_OK;
    }
    memcpy(&arr, base + f->offset, sizeof(arr));
    if (arr == NULL)
        return BST_OK;
    for (size_t i = 0; i < n; i++) {
        size_t old = path_push(w, "[%zu]", i);
        enum bst_status rv = walk_value(w, f, arr + i * elt, depth);
        path_pop(w, old);
        if (rv != BST_OK)
            return rv;
    }
    return BST_OK;
}

/* Whether a non-repeated field holds a value. Oneof members are decided by the caller. */
static int field_present(const ProtobufCFieldDescriptor *f, const char *base)
{
    protobuf_c_boolean has;

    if (f->label != PROTOBUF_C_LABEL_OPTIONAL)
        return 1; /* required, or proto3 without presence */
    if (f->type == PROTOBUF_C_TYPE_STRING || f->type == PROTOBUF_C_TYPE_MESSAGE)
        return 1; /* presence is a non-NULL pointer, checked by walk_value */
    memcpy(&has, base + f->quantifier_offset, sizeof(has));
    return has != 0;
}

static enum bst_status walk_message(struct walk *w, const ProtobufCMessage *m, int depth)
{
    const ProtobufCMessageDescriptor *d = m->descriptor;
    const char *base = (const char *)m;

    if (depth > BST_PB_MAX_DEPTH)
        return walk_fail(w, BST_INVALID_ARGUMENT, "messages nested deeper than %d",
                         BST_PB_MAX_DEPTH);
    if (d == NULL || d->magic != PROTOBUF_C__MESSAGE_DESCRIPTOR_MAGIC)
        return walk_fail(w, BST_INTERNAL, "not a protobuf-c message");
    if (m->n_unknown_fields != 0)
        return walk_fail(w, BST_INVALID_ARGUMENT, "unknown field number %u",
                         (unsigned)m->unknown_fields[0].tag);
    for (unsigned i = 0; i < d->n_fields; i++) {
        const ProtobufCFieldDescriptor *f = &d->fields[i];
        enum bst_status rv = BST_OK;
        size_t old;

        if ((f->flags & PROTOBUF_C_FIELD_FLAG_ONEOF) != 0) {
            uint32_t which;
            memcpy(&which, base + f->quantifier_offset, sizeof(which));
            if (which != f->id)
                continue; /* another member of the oneof, or none, is set */
        } else if (f->label != PROTOBUF_C_LABEL_REPEATED && !field_present(f, base)) {
            continue;
        }
        old = path_push(w, w->len == 0 ? "%s" : ".%s", f->name);
        if (f->label == PROTOBUF_C_LABEL_REPEATED)
            rv = walk_repeated(w, f, base, depth);
        else
            rv = walk_value(w, f, base + f->offset, depth);
        path_pop(w, old);
        if (rv != BST_OK)
            return rv;
    }
    return BST_OK;
}

static enum bst_status validate(const ProtobufCMessage *m, const struct bst_pballoc *a,
                                struct bst_err *err)
{
    struct walk w;

    if (m == NULL)
        return bst_errf(err, BST_INVALID_ARGUMENT, "no message");
    w.a = a;
    w.err = err;
    w.path[0] = '\0';
    w.len = 0;
    return walk_message(&w, m, 1);
}

enum bst_status bst_pb_validate(const ProtobufCMessage *m, struct bst_err *err)
{
    return validate(m, NULL, err);
}

enum bst_status bst_pb_unpack(const ProtobufCMessageDescriptor *d, const uint8_t *data, size_t len,
                              struct bst_pballoc *a, ProtobufCMessage **out, struct bst_err *err)
{
    static const uint8_t empty[1];
    ProtobufCMessage *m;
    enum bst_status rv;
    int was_exhausted = a->exhausted;

    *out = NULL;
    if (data == NULL) {
        if (len != 0)
            return bst_errf(err, BST_INVALID_ARGUMENT, "malformed protobuf message");
        data = empty;
    }
    /* Tell this call's refusals from an earlier call's through the same allocator. */
    a->exhausted = 0;
    m = protobuf_c_message_unpack(d, &a->base, len, data);
    if (m == NULL) {
        int refused = a->exhausted;
        a->exhausted = was_exhausted || refused;
        if (refused)
            return bst_errf(err, BST_RESOURCE_EXHAUSTED,
                            "message needs more than %zu bytes of memory to unpack", a->cap);
        return bst_errf(err, BST_INVALID_ARGUMENT, "malformed protobuf message");
    }
    a->exhausted = was_exhausted;
    rv = validate(m, a, err);
    if (rv != BST_OK) {
        protobuf_c_message_free_unpacked(m, &a->base);
        return rv;
    }
    *out = m;
    return BST_OK;
}

void bst_pb_free(ProtobufCMessage *m, struct bst_pballoc *a)
{
    if (m != NULL)
        protobuf_c_message_free_unpacked(m, &a->base);
}

/* ---- Schema recursion ----------------------------------------------------------------------- */

#define REC_MAX_DEPTH 64
#define REC_MAX_DONE 256

struct rec {
    const ProtobufCMessageDescriptor *stack[REC_MAX_DEPTH]; /* the DFS path */
    size_t depth;
    const ProtobufCMessageDescriptor *done[REC_MAX_DONE]; /* proven to reach no cycle */
    size_t n_done;
};

static int rec_visit(struct rec *r, const ProtobufCMessageDescriptor *d)
{
    for (size_t i = 0; i < r->depth; i++)
        if (r->stack[i] == d)
            return 1;
    for (size_t i = 0; i < r->n_done; i++)
        if (r->done[i] == d)
            return 0;
    /* A schema this deep is not one we serve; answering "recursive" errs on the safe side. */
    if (r->depth == REC_MAX_DEPTH)
        return 1;
    r->stack[r->depth++] = d;
    for (unsigned i = 0; i < d->n_fields; i++) {
        const ProtobufCFieldDescriptor *f = &d->fields[i];
        if (f->type == PROTOBUF_C_TYPE_MESSAGE && f->descriptor != NULL &&
            rec_visit(r, f->descriptor))
            return 1;
    }
    r->depth--;
    /* Without room the answer stays right; shared sub-types are only walked again. */
    if (r->n_done < REC_MAX_DONE)
        r->done[r->n_done++] = d;
    return 0;
}

int bst_pb_is_recursive(const ProtobufCMessageDescriptor *d)
{
    struct rec r;

    r.depth = 0;
    r.n_done = 0;
    return rec_visit(&r, d);
}
