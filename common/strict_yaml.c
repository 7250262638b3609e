/* The strict YAML reader (see strict_yaml.h): libyaml events in, a small tree with positions out,
 * and the table-driven decoder that maps a mapping onto a C struct.
 *
 * Everything hostile is refused while streaming events, before anything large is built: the
 * whole buffer is checked for NUL bytes and UTF-8 first, then each event is checked for anchors,
 * aliases, tags, depth, node count and scalar size. Duplicate keys are found when a mapping
 * closes, by sorting its keys once (O(n log n) whatever the keys are, so crafted keys cannot
 * make it quadratic the way they could a hash table with a fixed hash). */
#include "strict_yaml.h"
#include "text.h"
#include "secretfile.h"

#include <yaml.h>

#include <inttypes.h>
#include <limits.h>
#include <openssl/crypto.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* The document as allocated: the public part first, so bst_yaml_free can cast back. Every node
 * is also kept in a flat list, so freeing needs no recursion however deep the tree is. */
struct doc_impl {
    struct bst_yaml_doc pub;
    struct bst_yaml_node **nodes;
    size_t n_nodes;
    size_t cap_nodes;
};

/* One open mapping or sequence while events stream in; cap is the allocated length of the
 * node's items (and keys) arrays. */
struct frame {
    struct bst_yaml_node *node;
    size_t cap;
};

struct builder {
    const struct bst_yaml_limits *lim;
    struct doc_impl *doc;
    const char *name;
    struct frame *stack;
    size_t depth;
    size_t stack_cap;
    int documents;
    struct bst_err *err;
};

/* Room for the reason part of a message; the full message is cut to sizeof(err->msg). */
#define WHY_MAX 400

/* At most this many bytes of a document's text are echoed in a message. */
#define SHOW_MAX 48

void bst_yaml_limits_default(struct bst_yaml_limits *lim)
{
    lim->max_bytes = 1024 * 1024;
    lim->max_depth = 32;
    lim->max_nodes = 100000;
    lim->max_scalar = 64 * 1024;
}

/* ---- Messages ------------------------------------------------------------------------------ */

static enum bst_status verr_at(struct bst_err *err, enum bst_status code, const char *name,
                               int line, int col, const char *fmt, va_list ap)
    __attribute__((format(printf, 6, 0)));

static enum bst_status verr_at(struct bst_err *err, enum bst_status code, const char *name,
                               int line, int col, const char *fmt, va_list ap)
{
    int used;

    if (err == NULL)
        return code;
    err->code = code;
    if (name == NULL)
        name = "<input>";
    if (line > 0)
        used = snprintf(err->msg, sizeof(err->msg), "%s:%d:%d: ", name, line, col);
    else
        used = snprintf(err->msg, sizeof(err->msg), "%s: ", name);
    if (used < 0)
        used = 0;
    if ((size_t)used < sizeof(err->msg) - 1)
        vsnprintf(err->msg + used, sizeof(err->msg) - (size_t)used, fmt, ap);
    return code;
}

static enum bst_status err_at(struct bst_err *err, enum bst_status code, const char *name, int line,
                              int col, const char *fmt, ...) __attribute__((format(printf, 6, 7)));

static enum bst_status err_at(struct bst_err *err, enum bst_status code, const char *name, int line,
                              int col, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    verr_at(err, code, name, line, col, fmt, ap);
    va_end(ap);
    return code;
}

enum bst_status bst_yaml_errf(struct bst_err *err, enum bst_status code,
                              const struct bst_yaml_doc *doc, const struct bst_yaml_node *n,
                              const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    verr_at(err, code, doc != NULL ? doc->name : NULL, n != NULL ? n->line : 0,
            n != NULL ? n->col : 0, fmt, ap);
    va_end(ap);
    return code;
}

/* Writes the reason for a refused value into why and returns BST_INVALID_ARGUMENT. */
static enum bst_status whyf(char *why, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

static enum bst_status whyf(char *why, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(why, WHY_MAX, fmt, ap);
    va_end(ap);
    return BST_INVALID_ARGUMENT;
}

/* Copies document text into buf for a message: printable ASCII only (anything else becomes '?',
 * so a message never carries control characters) and at most SHOW_MAX bytes. */
static const char *show(const char *s, size_t len, char buf[SHOW_MAX + 4])
{
    size_t i, n = len > SHOW_MAX ? SHOW_MAX : len;

    for (i = 0; i < n; i++) {
        unsigned char c = (unsigned char)s[i];
        buf[i] = (c >= 0x20 && c < 0x7f) ? (char)c : '?';
    }
    if (n < len) {
        memcpy(buf + n, "...", 3);
        n += 3;
    }
    buf[n] = '\0';
    return buf;
}

static const char *kind_name(const struct bst_yaml_node *n)
{
    switch (n->kind) {
    case BST_YAML_MAP:
        return "a mapping";
    case BST_YAML_SEQ:
        return "a sequence";
    default:
        return n->plain ? "a scalar" : "a quoted string";
    }
}

/* Appends "a, b, c" (the names of a NULL-terminated list, or of a field table) to buf. */
static void list_names(char *buf, size_t size, const char *const *names,
                       const struct bst_field *table)
{
    size_t used = 0;
    buf[0] = '\0';
    for (size_t i = 0;; i++) {
        const char *nm = names != NULL ? names[i] : table[i].name;
        int w;
        if (nm == NULL)
            break;
        w = snprintf(buf + used, size - used, "%s%s", i > 0 ? ", " : "", nm);
        if (w < 0 || (size_t)w >= size - used)
            break;
        used += (size_t)w;
    }
}

static int clamp_int(size_t v)
{
    return v >= (size_t)INT_MAX ? INT_MAX : (int)v;
}

/* ---- Whole-input checks -------------------------------------------------------------------- */

/* Returns the offset of the first byte that is NUL or not part of well-formed UTF-8, or len. */
static size_t utf8_bad_offset(const unsigned char *s, size_t len)
{
    const unsigned char *nul = memchr(s, 0, len);
    size_t limit = nul != NULL ? (size_t)(nul - s) : len;
    size_t bad = bst_utf8_bad_offset((const char *)s, limit);
    return bad;
}

/* The 1-based line and column of byte offset off, counted as libyaml counts them: columns in
 * characters, lines broken by LF, CR, CR LF, NEL, LS and PS. s[0..off) is valid UTF-8. */
static void offset_pos(const unsigned char *s, size_t len, size_t off, int *line, int *col)
{
    size_t l = 1, c = 1;

    if (off > len)
        off = len;
    for (size_t i = 0; i < off; i++) {
        unsigned char b = s[i];
        int brk = b == '\n' || (b == '\r' && !(i + 1 < len && s[i + 1] == '\n')) ||
                  (b == 0xC2 && i + 1 < len && s[i + 1] == 0x85) ||
                  (b == 0xE2 && i + 2 < len && s[i + 1] == 0x80 &&
                   (s[i + 2] == 0xA8 || s[i + 2] == 0xA9));
        if (brk) {
            l++;
            c = 1;
        } else if ((b & 0xC0) != 0x80 && b != '\r') {
            c++;
        }
    }
    *line = clamp_int(l);
    *col = clamp_int(c);
}

/* ---- Building the tree --------------------------------------------------------------------- */

static enum bst_status fail_mark(struct builder *b, enum bst_status code, const yaml_mark_t *m,
                                 const char *fmt, ...) __attribute__((format(printf, 4, 5)));

static enum bst_status fail_mark(struct builder *b, enum bst_status code, const yaml_mark_t *m,
                                 const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    verr_at(b->err, code, b->name, clamp_int(m->line + 1), clamp_int(m->column + 1), fmt, ap);
    va_end(ap);
    return code;
}

/* Grows *arr (of pointers) so that it holds at least need entries; *cap is its length. */
static int grow_ptrs(struct bst_yaml_node ***arr, size_t *cap, size_t need)
{
    size_t ncap;
    struct bst_yaml_node **p;

    if (need <= *cap)
        return 0;
    ncap = *cap < 4 ? 4 : *cap;
    while (ncap < need) {
        if (ncap > SIZE_MAX / 2 / sizeof(*p))
            return -1;
        ncap *= 2;
    }
    p = realloc(*arr, ncap * sizeof(*p));
    if (p == NULL)
        return -1;
    *arr = p;
    *cap = ncap;
    return 0;
}

/* Allocates a node at the event's position and records it in the document's node list, which
 * owns it from then on. */
static enum bst_status new_node(struct builder *b, const yaml_event_t *ev, enum bst_yaml_kind kind,
                                struct bst_yaml_node **out)
{
    struct doc_impl *d = b->doc;
    struct bst_yaml_node *n;

    if (d->n_nodes >= b->lim->max_nodes)
        return fail_mark(b, BST_RESOURCE_EXHAUSTED, &ev->start_mark, "more than %zu nodes",
                         b->lim->max_nodes);
    if (grow_ptrs(&d->nodes, &d->cap_nodes, d->n_nodes + 1) != 0)
        return fail_mark(b, BST_RESOURCE_EXHAUSTED, &ev->start_mark, "out of memory");
    n = calloc(1, sizeof(*n));
    if (n == NULL)
        return fail_mark(b, BST_RESOURCE_EXHAUSTED, &ev->start_mark, "out of memory");
    d->nodes[d->n_nodes++] = n;
    n->kind = kind;
    n->line = clamp_int(ev->start_mark.line + 1);
    n->col = clamp_int(ev->start_mark.column + 1);
    *out = n;
    return BST_OK;
}

/* Whether the next node completes a key of the innermost open mapping. */
static int expecting_key(const struct builder *b)
{
    const struct bst_yaml_node *p;

    if (b->depth == 0)
        return 0;
    p = b->stack[b->depth - 1].node;
    return p->kind == BST_YAML_MAP && (p->n == 0 || p->items[p->n - 1] != NULL);
}

/* Hangs node under the innermost open container (or makes it the root). A key is stored with a
 * NULL value that the next node fills in, so the tree is always consistent for freeing. */
static enum bst_status attach(struct builder *b, const yaml_event_t *ev, struct bst_yaml_node *node)
{
    struct frame *f;
    struct bst_yaml_node *p;

    if (b->depth == 0) {
        b->doc->pub.root = node;
        return BST_OK;
    }
    f = &b->stack[b->depth - 1];
    p = f->node;
    if (p->kind == BST_YAML_MAP && p->n > 0 && p->items[p->n - 1] == NULL) {
        p->items[p->n - 1] = node;
        return BST_OK;
    }
    if (p->n == SIZE_MAX)
        return fail_mark(b, BST_RESOURCE_EXHAUSTED, &ev->start_mark, "out of memory");
    if (p->kind == BST_YAML_MAP) {
        size_t kcap = f->cap;
        if (grow_ptrs(&p->keys, &kcap, p->n + 1) != 0)
            return fail_mark(b, BST_RESOURCE_EXHAUSTED, &ev->start_mark, "out of memory");
    }
    if (grow_ptrs(&p->items, &f->cap, p->n + 1) != 0)
        return fail_mark(b, BST_RESOURCE_EXHAUSTED, &ev->start_mark, "out of memory");
    if (p->kind == BST_YAML_MAP) {
        p->keys[p->n] = node;
        p->items[p->n] = NULL;
    } else {
        p->items[p->n] = node;
    }
    p->n++;
    return BST_OK;
}

static enum bst_status check_props(struct builder *b, const yaml_event_t *ev,
                                   const yaml_char_t *anchor, const yaml_char_t *tag)
{
    char buf[SHOW_MAX + 4];

    if (anchor != NULL)
        return fail_mark(b, BST_INVALID_ARGUMENT, &ev->start_mark, "anchors (&%s) are not allowed",
                         show((const char *)anchor, strlen((const char *)anchor), buf));
    /* libyaml leaves tag NULL unless the document spells one out (even "!" counts). */
    if (tag != NULL)
        return fail_mark(b, BST_INVALID_ARGUMENT, &ev->start_mark, "tags (%s) are not allowed",
                         show((const char *)tag, strlen((const char *)tag), buf));
    return BST_OK;
}

static enum bst_status on_scalar(struct builder *b, const yaml_event_t *ev)
{
    const unsigned char *v = ev->data.scalar.value;
    size_t len = ev->data.scalar.length;
    struct bst_yaml_node *n;
    enum bst_status rv;

    rv = check_props(b, ev, ev->data.scalar.anchor, ev->data.scalar.tag);
    if (rv != BST_OK)
        return rv;
    if (len > b->lim->max_scalar)
        return fail_mark(b, BST_RESOURCE_EXHAUSTED, &ev->start_mark,
                         "scalar of %zu bytes is longer than the limit of %zu", len,
                         b->lim->max_scalar);
    /* The input has no NUL byte, but a double-quoted "\0" escape makes one. */
    if (len > 0 && memchr(v, 0, len) != NULL)
        return fail_mark(b, BST_INVALID_ARGUMENT, &ev->start_mark,
                         "scalar contains a NUL character");
    rv = new_node(b, ev, BST_YAML_SCALAR, &n);
    if (rv != BST_OK)
        return rv;
    n->value = malloc(len + 1);
    if (n->value == NULL)
        return fail_mark(b, BST_RESOURCE_EXHAUSTED, &ev->start_mark, "out of memory");
    if (len > 0)
        memcpy(n->value, v, len);
    n->value[len] = '\0';
    n->len = len;
    n->plain = ev->data.scalar.style == YAML_PLAIN_SCALAR_STYLE;
    return attach(b, ev, n);
}

static enum bst_status on_start(struct builder *b, const yaml_event_t *ev, enum bst_yaml_kind kind)
{
    struct bst_yaml_node *n;
    enum bst_status rv;

    if (kind == BST_YAML_MAP)
        rv = check_props(b, ev, ev->data.mapping_start.anchor, ev->data.mapping_start.tag);
    else
        rv = check_props(b, ev, ev->data.sequence_start.anchor, ev->data.sequence_start.tag);
    if (rv != BST_OK)
        return rv;
    if (expecting_key(b))
        return fail_mark(b, BST_INVALID_ARGUMENT, &ev->start_mark, "a key must be a scalar, not %s",
                         kind == BST_YAML_MAP ? "a mapping" : "a sequence");
    if (b->depth >= b->lim->max_depth)
        return fail_mark(b, BST_RESOURCE_EXHAUSTED, &ev->start_mark,
                         "nesting deeper than %zu levels", b->lim->max_depth);
    rv = new_node(b, ev, kind, &n);
    if (rv != BST_OK)
        return rv;
    rv = attach(b, ev, n);
    if (rv != BST_OK)
        return rv;
    if (b->depth == b->stack_cap) {
        size_t ncap = b->stack_cap < 8 ? 8 : b->stack_cap * 2;
        struct frame *s;
        if (ncap > SIZE_MAX / sizeof(*s))
            return fail_mark(b, BST_RESOURCE_EXHAUSTED, &ev->start_mark, "out of memory");
        s = realloc(b->stack, ncap * sizeof(*s));
        if (s == NULL)
            return fail_mark(b, BST_RESOURCE_EXHAUSTED, &ev->start_mark, "out of memory");
        b->stack = s;
        b->stack_cap = ncap;
    }
    b->stack[b->depth].node = n;
    b->stack[b->depth].cap = 0;
    b->depth++;
    return BST_OK;
}

struct keyref {
    const struct bst_yaml_node *key;
    size_t idx;
};

static int keyref_cmp(const void *pa, const void *pb)
{
    const struct keyref *a = pa, *b = pb;
    int c;

    if (a->key->len != b->key->len)
        return a->key->len < b->key->len ? -1 : 1;
    c = memcmp(a->key->value, b->key->value, a->key->len);
    if (c != 0)
        return c;
    return a->idx < b->idx ? -1 : (a->idx > b->idx ? 1 : 0);
}

static int same_key(const struct bst_yaml_node *a, const struct bst_yaml_node *b)
{
    return a->len == b->len && memcmp(a->value, b->value, a->len) == 0;
}

/* Refuses a mapping with a repeated key, naming the earliest repetition in document order. */
static enum bst_status check_duplicates(struct builder *b, const struct bst_yaml_node *m)
{
    struct keyref *refs;
    size_t dup = SIZE_MAX, first = 0, group = 0;
    char buf[SHOW_MAX + 4];

    if (m->n < 2)
        return BST_OK;
    if (m->n == 2) {
        if (!same_key(m->keys[0], m->keys[1]))
            return BST_OK;
        dup = 1;
        first = 0;
    } else {
        refs = malloc(m->n * sizeof(*refs));
        if (refs == NULL)
            return err_at(b->err, BST_RESOURCE_EXHAUSTED, b->name, m->line, m->col,
                          "out of memory");
        for (size_t i = 0; i < m->n; i++) {
            refs[i].key = m->keys[i];
            refs[i].idx = i;
        }
        qsort(refs, m->n, sizeof(*refs), keyref_cmp);
        for (size_t i = 1; i < m->n; i++) {
            if (!same_key(refs[i].key, refs[i - 1].key)) {
                group = i;
                continue;
            }
            /* Sorted by position within equal keys: the second of a group is its first
             * repetition. */
            if (i == group + 1 && refs[i].idx < dup) {
                dup = refs[i].idx;
                first = refs[group].idx;
            }
        }
        free(refs);
        if (dup == SIZE_MAX)
            return BST_OK;
    }
    return err_at(b->err, BST_INVALID_ARGUMENT, b->name, m->keys[dup]->line, m->keys[dup]->col,
                  "duplicate key '%s' (first at %d:%d)",
                  show(m->keys[dup]->value, m->keys[dup]->len, buf), m->keys[first]->line,
                  m->keys[first]->col);
}

static enum bst_status on_end(struct builder *b)
{
    struct frame *f;
    struct bst_yaml_node *n;

    if (b->depth == 0)
        return err_at(b->err, BST_INTERNAL, b->name, 0, 0, "unbalanced collection events");
    f = &b->stack[--b->depth];
    n = f->node;
    if (n->kind == BST_YAML_MAP)
        return check_duplicates(b, n);
    return BST_OK;
}

static enum bst_status on_event(struct builder *b, const yaml_event_t *ev)
{
    char buf[SHOW_MAX + 4];

    switch (ev->type) {
    case YAML_DOCUMENT_START_EVENT:
        if (b->documents++ > 0)
            return fail_mark(b, BST_INVALID_ARGUMENT, &ev->start_mark,
                             "a second document starts here; one document per file");
        return BST_OK;
    case YAML_STREAM_END_EVENT:
        if (b->documents == 0)
            return fail_mark(b, BST_INVALID_ARGUMENT, &ev->start_mark,
                             "no document: the input is empty or holds only comments");
        return BST_OK;
    case YAML_ALIAS_EVENT:
        return fail_mark(b, BST_INVALID_ARGUMENT, &ev->start_mark, "aliases (*%s) are not allowed",
                         show((const char *)ev->data.alias.anchor,
                              strlen((const char *)ev->data.alias.anchor), buf));
    case YAML_SCALAR_EVENT:
        return on_scalar(b, ev);
    case YAML_SEQUENCE_START_EVENT:
        return on_start(b, ev, BST_YAML_SEQ);
    case YAML_MAPPING_START_EVENT:
        return on_start(b, ev, BST_YAML_MAP);
    case YAML_SEQUENCE_END_EVENT:
    case YAML_MAPPING_END_EVENT:
        return on_end(b);
    default:
        return BST_OK;
    }
}

static enum bst_status parser_error(const yaml_parser_t *p, const char *name,
                                    const unsigned char *buf, size_t len, struct bst_err *err)
{
    const char *problem = p->problem != NULL ? p->problem : "malformed YAML";
    int line, col;

    switch (p->error) {
    case YAML_MEMORY_ERROR:
        return err_at(err, BST_RESOURCE_EXHAUSTED, name, clamp_int(p->mark.line + 1),
                      clamp_int(p->mark.column + 1), "out of memory");
    case YAML_READER_ERROR:
        offset_pos(buf, len, p->problem_offset, &line, &col);
        return err_at(err, BST_INVALID_ARGUMENT, name, line, col, "%s", problem);
    case YAML_SCANNER_ERROR:
    case YAML_PARSER_ERROR:
        if (p->context != NULL)
            return err_at(err, BST_INVALID_ARGUMENT, name, clamp_int(p->problem_mark.line + 1),
                          clamp_int(p->problem_mark.column + 1), "%s (%s at %d:%d)", problem,
                          p->context, clamp_int(p->context_mark.line + 1),
                          clamp_int(p->context_mark.column + 1));
        return err_at(err, BST_INVALID_ARGUMENT, name, clamp_int(p->problem_mark.line + 1),
                      clamp_int(p->problem_mark.column + 1), "%s", problem);
    default:
        return err_at(err, BST_INVALID_ARGUMENT, name, clamp_int(p->mark.line + 1),
                      clamp_int(p->mark.column + 1), "%s", problem);
    }
}

/* libyaml frees its buffers and queued tokens without wiping them; wipe what can be reached so
 * that a secret file's contents do not linger on the heap. */
static void wipe_parser(yaml_parser_t *p)
{
    if (p->buffer.start != NULL)
        OPENSSL_cleanse(p->buffer.start, (size_t)(p->buffer.end - p->buffer.start));
    if (p->raw_buffer.start != NULL)
        OPENSSL_cleanse(p->raw_buffer.start, (size_t)(p->raw_buffer.end - p->raw_buffer.start));
    for (yaml_token_t *t = p->tokens.head; t != NULL && t != p->tokens.tail; t++)
        if (t->type == YAML_SCALAR_TOKEN && t->data.scalar.value != NULL)
            OPENSSL_cleanse(t->data.scalar.value, t->data.scalar.length);
}

enum bst_status bst_yaml_parse(const char *name, const char *buf, size_t len,
                               const struct bst_yaml_limits *lim, struct bst_yaml_doc **out,
                               struct bst_err *err)
{
    struct bst_yaml_limits deflim;
    const unsigned char *in = (const unsigned char *)(buf != NULL ? buf : "");
    struct builder b;
    struct doc_impl *d;
    yaml_parser_t parser;
    enum bst_status rv = BST_OK;
    size_t bad;
    int line, col;

    *out = NULL;
    if (name == NULL)
        name = "<input>";
    if (lim == NULL) {
        bst_yaml_limits_default(&deflim);
        lim = &deflim;
    }
    if (buf == NULL && len > 0)
        return err_at(err, BST_INVALID_ARGUMENT, name, 0, 0, "no input buffer");
    if (len > lim->max_bytes)
        return err_at(err, BST_RESOURCE_EXHAUSTED, name, 1, 1,
                      "input of %zu bytes is larger than the limit of %zu", len, lim->max_bytes);
    bad = utf8_bad_offset(in, len);
    if (bad < len) {
        offset_pos(in, len, bad, &line, &col);
        if (in[bad] == 0)
            return err_at(err, BST_INVALID_ARGUMENT, name, line, col, "NUL byte in input");
        return err_at(err, BST_INVALID_ARGUMENT, name, line, col, "invalid UTF-8 (byte 0x%02x)",
                      in[bad]);
    }

    d = calloc(1, sizeof(*d));
    if (d == NULL)
        return err_at(err, BST_RESOURCE_EXHAUSTED, name, 0, 0, "out of memory");
    d->pub.name = strdup(name);
    if (d->pub.name == NULL) {
        free(d);
        return err_at(err, BST_RESOURCE_EXHAUSTED, name, 0, 0, "out of memory");
    }
    if (!yaml_parser_initialize(&parser)) {
        bst_yaml_free(&d->pub);
        return err_at(err, BST_RESOURCE_EXHAUSTED, name, 0, 0, "out of memory");
    }
    yaml_parser_set_input_string(&parser, in, len);
    yaml_parser_set_encoding(&parser, YAML_UTF8_ENCODING);

    memset(&b, 0, sizeof(b));
    b.lim = lim;
    b.doc = d;
    b.name = name;
    b.err = err;
    for (;;) {
        yaml_event_t ev;
        int done;

        if (!yaml_parser_parse(&parser, &ev)) {
            rv = parser_error(&parser, name, in, len, err);
            break;
        }
        rv = on_event(&b, &ev);
        done = ev.type == YAML_STREAM_END_EVENT;
        if (ev.type == YAML_SCALAR_EVENT)
            OPENSSL_cleanse(ev.data.scalar.value, ev.data.scalar.length);
        yaml_event_delete(&ev);
        if (rv != BST_OK || done)
            break;
    }
    wipe_parser(&parser);
    yaml_parser_delete(&parser);
    free(b.stack);
    if (rv != BST_OK) {
        bst_yaml_free(&d->pub);
        return rv;
    }
    *out = &d->pub;
    return BST_OK;
}

enum bst_status bst_yaml_load_file(const char *path, const struct bst_yaml_limits *lim,
                                   struct bst_yaml_doc **out, struct bst_err *err)
{
    struct bst_yaml_limits deflim;
    char *buf = NULL;
    size_t len = 0;
    enum bst_status rv;

    *out = NULL;
    if (lim == NULL) {
        bst_yaml_limits_default(&deflim);
        lim = &deflim;
    }
    rv = bst_file_read(path, lim->max_bytes, &buf, &len, err);
    if (rv != BST_OK)
        return rv;
    rv = bst_yaml_parse(path, buf, len, lim, out, err);
    free(buf);
    return rv;
}

enum bst_status bst_yaml_load_secret(const char *path, const struct bst_yaml_limits *lim,
                                     struct bst_yaml_doc **out, struct bst_err *err)
{
    struct bst_secret sec;
    enum bst_status rv;

    *out = NULL;
    rv = bst_secret_read(path, &sec, err);
    if (rv != BST_OK)
        return rv;
    rv = bst_yaml_parse(path, (const char *)sec.data, sec.len, lim, out, err);
    bst_secret_free(&sec);
    return rv;
}

void bst_yaml_free(struct bst_yaml_doc *doc)
{
    struct doc_impl *d = (struct doc_impl *)doc;

    if (d == NULL)
        return;
    for (size_t i = 0; i < d->n_nodes; i++) {
        struct bst_yaml_node *n = d->nodes[i];
        if (n->value != NULL) {
            OPENSSL_cleanse(n->value, n->len);
            free(n->value);
        }
        free(n->keys);
        free(n->items);
        free(n);
    }
    free(d->nodes);
    free(d->pub.name);
    free(d);
}

const struct bst_yaml_node *bst_yaml_get(const struct bst_yaml_node *map, const char *key)
{
    size_t klen;

    if (map == NULL || map->kind != BST_YAML_MAP || key == NULL)
        return NULL;
    klen = strlen(key);
    for (size_t i = 0; i < map->n; i++)
        if (map->keys[i]->len == klen && memcmp(map->keys[i]->value, key, klen) == 0)
            return map->items[i];
    return NULL;
}

/* ---- Scalar text to values ----------------------------------------------------------------- */

/* The plain scalars that YAML 1.1 tools read as booleans or null rather than strings. */
static const char *const yaml11_words[] = {
    "y",  "Y",    "yes",  "Yes",  "YES",   "n",     "N",     "no",   "No",
    "NO", "true", "True", "TRUE", "false", "False", "FALSE", "on",   "On",
    "ON", "off",  "Off",  "OFF",  "~",     "null",  "Null",  "NULL", NULL,
};

static int is_yaml11_word(const char *s, size_t len)
{
    for (size_t i = 0; yaml11_words[i] != NULL; i++)
        if (strlen(yaml11_words[i]) == len && memcmp(yaml11_words[i], s, len) == 0)
            return 1;
    return 0;
}

enum num_result { NUM_OK, NUM_SYNTAX, NUM_RANGE };

/* Parses s[0..len), all decimal digits (at least one), into *out without overflowing. */
static enum num_result parse_digits(const char *s, size_t len, uint64_t limit, uint64_t *out)
{
    uint64_t v = 0;

    if (len == 0)
        return NUM_SYNTAX;
    for (size_t i = 0; i < len; i++)
        if (s[i] < '0' || s[i] > '9')
            return NUM_SYNTAX;
    for (size_t i = 0; i < len; i++) {
        unsigned d = (unsigned)(s[i] - '0');
        if (v > (limit - d) / 10)
            return NUM_RANGE;
        v = v * 10 + d;
    }
    *out = v;
    return NUM_OK;
}

static int all_digits(const char *s, size_t len)
{
    if (len == 0)
        return 0;
    for (size_t i = 0; i < len; i++)
        if (s[i] < '0' || s[i] > '9')
            return 0;
    return 1;
}

static enum bst_status bool_text(const char *s, size_t len, int plain, int *out, char *why)
{
    char buf[SHOW_MAX + 4];

    if (plain && len == 4 && memcmp(s, "true", 4) == 0) {
        *out = 1;
        return BST_OK;
    }
    if (plain && len == 5 && memcmp(s, "false", 5) == 0) {
        *out = 0;
        return BST_OK;
    }
    if (!plain)
        return whyf(why, "expected an unquoted true or false, got a quoted string");
    if (is_yaml11_word(s, len))
        return whyf(why, "'%s' is not accepted as a boolean; write true or false",
                    show(s, len, buf));
    return whyf(why, "expected true or false, got '%s'", show(s, len, buf));
}

static enum bst_status int_text(const char *s, size_t len, int plain, int64_t min, int64_t max,
                                int64_t *out, char *why)
{
    char buf[SHOW_MAX + 4];
    const char *digits = s;
    size_t n = len;
    int neg = 0;
    uint64_t mag;
    int64_t v;

    if (!plain)
        return whyf(why, "expected an unquoted integer, got a quoted string");
    if (n > 0 && digits[0] == '-') {
        neg = 1;
        digits++;
        n--;
    }
    if (!all_digits(digits, n))
        return whyf(why, "expected an integer (decimal digits with an optional '-'), got '%s'",
                    show(s, len, buf));
    if (n > 1 && digits[0] == '0')
        return whyf(why, "'%s' has a leading zero, which YAML 1.1 reads as octal",
                    show(s, len, buf));
    switch (parse_digits(digits, n, neg ? (uint64_t)INT64_MAX + 1 : (uint64_t)INT64_MAX, &mag)) {
    case NUM_OK:
        break;
    case NUM_RANGE:
        return whyf(why, "%s is out of range (allowed %" PRId64 " to %" PRId64 ")",
                    show(s, len, buf), min, max);
    default:
        return whyf(why, "expected an integer, got '%s'", show(s, len, buf));
    }
    if (neg)
        v = mag == (uint64_t)INT64_MAX + 1 ? INT64_MIN : -(int64_t)mag;
    else
        v = (int64_t)mag;
    if (v < min || v > max)
        return whyf(why, "%" PRId64 " is out of range (allowed %" PRId64 " to %" PRId64 ")", v, min,
                    max);
    *out = v;
    return BST_OK;
}

static enum bst_status str_text(const char *s, size_t len, int plain, int allow_empty, char *why)
{
    char buf[SHOW_MAX + 4];

    if (plain && len == 0)
        return whyf(why, allow_empty ? "empty value; write \"\" for an empty string"
                                     : "expected a non-empty string, got an empty value");
    if (plain && is_yaml11_word(s, len))
        return whyf(why,
                    "'%s' is read as a boolean or null by YAML 1.1 tools; quote it (\"%s\") if "
                    "you mean the string",
                    show(s, len, buf), buf);
    if (len == 0 && !allow_empty)
        return whyf(why, "expected a non-empty string");
    return BST_OK;
}

struct unit {
    const char *suffix;
    int64_t factor;
};

static const struct unit duration_units[] = {
    {"ms", 1}, {"s", 1000}, {"m", 60 * 1000}, {"h", 60 * 60 * 1000}, {NULL, 0}};

static const struct unit size_units[] = {{"B", 1},
                                         {"KiB", INT64_C(1) << 10},
                                         {"MiB", INT64_C(1) << 20},
                                         {"GiB", INT64_C(1) << 30},
                                         {NULL, 0}};

/* Parses an amount: unquoted digits (the base unit), or digits directly followed by one of
 * units' suffixes (quoted or not). what names the kind for messages, unit_name the base unit. */
static enum bst_status amount_text(const char *s, size_t len, int plain, const struct unit *units,
                                   const char *what, const char *unit_name, const char *expect,
                                   int64_t min, int64_t max, int64_t *out, char *why)
{
    char buf[SHOW_MAX + 4];
    size_t nd = 0;
    uint64_t v;
    int64_t factor = 0;

    while (nd < len && s[nd] >= '0' && s[nd] <= '9')
        nd++;
    if (nd == 0)
        return whyf(why, "expected %s, got '%s'", expect, show(s, len, buf));
    if (nd == len) {
        if (!plain)
            return whyf(why,
                        "a %s without a unit must be an unquoted integer (%s); got a quoted "
                        "string",
                        what, unit_name);
        if (nd > 1 && s[0] == '0')
            return whyf(why, "'%s' has a leading zero, which YAML 1.1 reads as octal",
                        show(s, len, buf));
        factor = 1;
    } else {
        for (size_t i = 0; units[i].suffix != NULL; i++)
            if (strlen(units[i].suffix) == len - nd &&
                memcmp(units[i].suffix, s + nd, len - nd) == 0)
                factor = units[i].factor;
        if (factor == 0)
            return whyf(why, "expected %s, got '%s'", expect, show(s, len, buf));
    }
    if (parse_digits(s, nd, (uint64_t)INT64_MAX, &v) != NUM_OK ||
        v > (uint64_t)(INT64_MAX / factor))
        return whyf(why, "%s is too large (the most is %" PRId64 " %s)", show(s, len, buf), max,
                    unit_name);
    v *= (uint64_t)factor;
    if ((int64_t)v < min || (int64_t)v > max)
        return whyf(why,
                    "%s (%" PRIu64 " %s) is out of range (allowed %" PRId64 " to %" PRId64 " %s)",
                    show(s, len, buf), v, unit_name, min, max, unit_name);
    *out = (int64_t)v;
    return BST_OK;
}

static enum bst_status duration_text(const char *s, size_t len, int plain, int64_t min, int64_t max,
                                     int64_t *out, char *why)
{
    return amount_text(s, len, plain, duration_units, "duration", "ms",
                       "a duration such as 250ms, 10s, 5m or 1h (units ms, s, m, h; no unit "
                       "means ms)",
                       min, max, out, why);
}

static enum bst_status size_text(const char *s, size_t len, int plain, int64_t min, int64_t max,
                                 int64_t *out, char *why)
{
    return amount_text(s, len, plain, size_units, "size", "bytes",
                       "a size such as 512, 64KiB, 4MiB or 1GiB (units B, KiB, MiB, GiB; "
                       "decimal units such as KB or MB are not accepted)",
                       min, max, out, why);
}

static enum bst_status enum_text(const char *s, size_t len, const char *const *names, int *out,
                                 char *why)
{
    char buf[SHOW_MAX + 4];
    char list[256];

    for (int i = 0; names != NULL && names[i] != NULL && i < INT_MAX; i++) {
        if (strlen(names[i]) == len && memcmp(names[i], s, len) == 0) {
            *out = i;
            return BST_OK;
        }
    }
    if (names == NULL)
        return whyf(why, "enum without names");
    list_names(list, sizeof(list), names, NULL);
    return whyf(why, "unknown value '%s' (expected one of: %s)", show(s, len, buf), list);
}

/* ---- Typed readers ------------------------------------------------------------------------- */

static enum bst_status need_scalar(const struct bst_yaml_doc *doc, const struct bst_yaml_node *n,
                                   const char *expect, struct bst_err *err)
{
    if (n == NULL)
        return bst_yaml_errf(err, BST_INVALID_ARGUMENT, doc, NULL, "expected %s, got nothing",
                             expect);
    if (n->kind != BST_YAML_SCALAR)
        return bst_yaml_errf(err, BST_INVALID_ARGUMENT, doc, n, "expected %s, got %s", expect,
                             kind_name(n));
    return BST_OK;
}

enum bst_status bst_yaml_bool(const struct bst_yaml_doc *doc, const struct bst_yaml_node *n,
                              int *out, struct bst_err *err)
{
    char why[WHY_MAX];
    enum bst_status rv = need_scalar(doc, n, "true or false", err);

    if (rv != BST_OK)
        return rv;
    rv = bool_text(n->value, n->len, n->plain, out, why);
    if (rv != BST_OK)
        return bst_yaml_errf(err, rv, doc, n, "%s", why);
    return BST_OK;
}

enum bst_status bst_yaml_int(const struct bst_yaml_doc *doc, const struct bst_yaml_node *n,
                             int64_t min, int64_t max, int64_t *out, struct bst_err *err)
{
    char why[WHY_MAX];
    enum bst_status rv = need_scalar(doc, n, "an integer", err);

    if (rv != BST_OK)
        return rv;
    rv = int_text(n->value, n->len, n->plain, min, max, out, why);
    if (rv != BST_OK)
        return bst_yaml_errf(err, rv, doc, n, "%s", why);
    return BST_OK;
}

enum bst_status bst_yaml_str(const struct bst_yaml_doc *doc, const struct bst_yaml_node *n,
                             int allow_empty, const char **out, struct bst_err *err)
{
    char why[WHY_MAX];
    enum bst_status rv = need_scalar(doc, n, "a string", err);

    if (rv != BST_OK)
        return rv;
    rv = str_text(n->value, n->len, n->plain, allow_empty, why);
    if (rv != BST_OK)
        return bst_yaml_errf(err, rv, doc, n, "%s", why);
    *out = n->value;
    return BST_OK;
}

/* ---- Table-driven decoding ----------------------------------------------------------------- */

static void *field_ptr(void *target, const struct bst_field *f)
{
    return (char *)target + f->offset;
}

static void put_i64(void *target, const struct bst_field *f, int64_t v)
{
    memcpy(field_ptr(target, f), &v, sizeof(v));
}

static void put_int(void *target, const struct bst_field *f, int v)
{
    memcpy(field_ptr(target, f), &v, sizeof(v));
}

static char *get_str(void *target, const struct bst_field *f)
{
    char *p;
    memcpy(&p, field_ptr(target, f), sizeof(p));
    return p;
}

static void put_str(void *target, const struct bst_field *f, char *p)
{
    memcpy(field_ptr(target, f), &p, sizeof(p));
}

static void clear_str(void *target, const struct bst_field *f)
{
    char *old = get_str(target, f);
    if (old != NULL) {
        OPENSSL_cleanse(old, strlen(old));
        free(old);
    }
    put_str(target, f, NULL);
}

/* Converts scalar text for field f and stores it in target. Strings are copied; the value they
 * replace (a default, or a previous decode's) is freed. */
static enum bst_status store_text(const struct bst_field *f, void *target, const char *s,
                                  size_t len, int plain, char *why)
{
    enum bst_status rv;
    int64_t i64 = 0;
    int iv = 0;

    switch (f->type) {
    case BST_F_STRING: {
        char *copy = malloc(len + 1);
        if (copy == NULL) {
            whyf(why, "out of memory");
            return BST_RESOURCE_EXHAUSTED;
        }
        memcpy(copy, s, len);
        copy[len] = '\0';
        clear_str(target, f);
        put_str(target, f, copy);
        return BST_OK;
    }
    case BST_F_INT:
        rv = int_text(s, len, plain, f->min, f->max, &i64, why);
        break;
    case BST_F_DURATION_MS:
        rv = duration_text(s, len, plain, f->min, f->max, &i64, why);
        break;
    case BST_F_SIZE:
        rv = size_text(s, len, plain, f->min, f->max, &i64, why);
        break;
    case BST_F_BOOL:
        rv = bool_text(s, len, plain, &iv, why);
        if (rv == BST_OK)
            put_int(target, f, iv);
        return rv;
    case BST_F_ENUM:
        rv = enum_text(s, len, f->enum_names, &iv, why);
        if (rv == BST_OK)
            put_int(target, f, iv);
        return rv;
    default:
        return whyf(why, "field type %d cannot hold a scalar", (int)f->type);
    }
    if (rv == BST_OK)
        put_i64(target, f, i64);
    return rv;
}

static const char *expect_name(const struct bst_field *f)
{
    switch (f->type) {
    case BST_F_STRING:
        return "a string";
    case BST_F_INT:
        return "an integer";
    case BST_F_BOOL:
        return "true or false";
    case BST_F_ENUM:
        return "one of the names listed for it";
    case BST_F_DURATION_MS:
        return "a duration";
    case BST_F_SIZE:
        return "a size";
    default:
        return "a mapping";
    }
}

/* Joins prefix and name into "prefix.name" (or "name") for messages. */
static const char *join_path(char *buf, size_t size, const char *prefix, const char *name)
{
    if (prefix == NULL || prefix[0] == '\0')
        snprintf(buf, size, "%s", name);
    else
        snprintf(buf, size, "%s.%s", prefix, name);
    return buf;
}

static enum bst_status apply_defaults(const struct bst_yaml_doc *doc, const struct bst_field *table,
                                      void *target, const char *prefix, struct bst_err *err)
{
    char why[WHY_MAX], path[256];
    enum bst_status rv;

    for (const struct bst_field *f = table; f->name != NULL; f++) {
        join_path(path, sizeof(path), prefix, f->name);
        if (f->type == BST_F_SECTION) {
            if (f->section == NULL)
                return bst_yaml_errf(err, BST_INTERNAL, doc, NULL, "key '%s': section has no table",
                                     path);
            rv = apply_defaults(doc, f->section, (char *)target + f->offset, path, err);
            if (rv != BST_OK)
                return rv;
            continue;
        }
        if (f->def == NULL || f->required)
            continue;
        /* A default is written as it would be in a file; strings are taken as if quoted. */
        rv = store_text(f, target, f->def, strlen(f->def), f->type != BST_F_STRING, why);
        if (rv != BST_OK)
            return bst_yaml_errf(err, BST_INTERNAL, doc, NULL,
                                 "key '%s': built-in default '%s' is invalid: %s", path, f->def,
                                 why);
    }
    return BST_OK;
}

static enum bst_status decode_map(const struct bst_yaml_doc *doc, const struct bst_yaml_node *map,
                                  const struct bst_yaml_node *pos, const struct bst_field *table,
                                  void *target, const char *prefix, struct bst_err *err);

static enum bst_status decode_value(const struct bst_yaml_doc *doc, const struct bst_field *f,
                                    const struct bst_yaml_node *v, void *target, const char *path,
                                    struct bst_err *err)
{
    char why[WHY_MAX];
    enum bst_status rv;

    if (f->type == BST_F_SECTION)
        return decode_map(doc, v, v, f->section, (char *)target + f->offset, path, err);
    if (v->kind != BST_YAML_SCALAR)
        return bst_yaml_errf(err, BST_INVALID_ARGUMENT, doc, v, "key '%s': expected %s, got %s",
                             path, expect_name(f), kind_name(v));
    if (f->type == BST_F_STRING) {
        rv = str_text(v->value, v->len, v->plain, 0, why);
        if (rv != BST_OK)
            return bst_yaml_errf(err, rv, doc, v, "key '%s': %s", path, why);
    }
    rv = store_text(f, target, v->value, v->len, v->plain, why);
    if (rv != BST_OK)
        return bst_yaml_errf(err, rv, doc, v, "key '%s': %s", path, why);
    return BST_OK;
}

/* Decodes map (NULL when the key is absent: then only required keys are checked, reported at
 * pos) into target. prefix is the dotted path of the enclosing sections. */
static enum bst_status decode_map(const struct bst_yaml_doc *doc, const struct bst_yaml_node *map,
                                  const struct bst_yaml_node *pos, const struct bst_field *table,
                                  void *target, const char *prefix, struct bst_err *err)
{
    char path[256], buf[SHOW_MAX + 4], list[256];
    const char *in = prefix != NULL && prefix[0] != '\0' ? prefix : NULL;
    enum bst_status rv;

    if (map != NULL && map->kind != BST_YAML_MAP) {
        if (in != NULL)
            return bst_yaml_errf(err, BST_INVALID_ARGUMENT, doc, map,
                                 "key '%s': expected a mapping, got %s", in, kind_name(map));
        return bst_yaml_errf(err, BST_INVALID_ARGUMENT, doc, map, "expected a mapping, got %s",
                             kind_name(map));
    }
    for (size_t i = 0; map != NULL && i < map->n; i++) {
        const struct bst_yaml_node *k = map->keys[i];
        const struct bst_field *f = NULL;

        for (const struct bst_field *t = table; t->name != NULL; t++) {
            if (strlen(t->name) == k->len && memcmp(t->name, k->value, k->len) == 0) {
                f = t;
                break;
            }
        }
        if (f == NULL) {
            list_names(list, sizeof(list), NULL, table);
            if (in != NULL)
                return bst_yaml_errf(err, BST_INVALID_ARGUMENT, doc, k,
                                     "unknown key '%s' in '%s' (expected one of: %s)",
                                     show(k->value, k->len, buf), in, list);
            return bst_yaml_errf(err, BST_INVALID_ARGUMENT, doc, k,
                                 "unknown key '%s' (expected one of: %s)",
                                 show(k->value, k->len, buf), list);
        }
        rv = decode_value(doc, f, map->items[i], target, join_path(path, sizeof(path), in, f->name),
                          err);
        if (rv != BST_OK)
            return rv;
    }
    for (const struct bst_field *f = table; f->name != NULL; f++) {
        if (bst_yaml_get(map, f->name) != NULL)
            continue;
        join_path(path, sizeof(path), in, f->name);
        if (f->required)
            return bst_yaml_errf(err, BST_INVALID_ARGUMENT, doc, pos, "missing required key '%s'",
                                 path);
        if (f->type == BST_F_SECTION) {
            rv = decode_map(doc, NULL, pos, f->section, (char *)target + f->offset, path, err);
            if (rv != BST_OK)
                return rv;
        }
    }
    return BST_OK;
}

enum bst_status bst_yaml_decode(const struct bst_yaml_doc *doc, const struct bst_yaml_node *map,
                                const struct bst_field *table, void *target, struct bst_err *err)
{
    enum bst_status rv = apply_defaults(doc, table, target, NULL, err);
    if (rv != BST_OK)
        return rv;
    return decode_map(doc, map, map, table, target, NULL, err);
}

void bst_yaml_decoded_free(const struct bst_field *table, void *target)
{
    if (table == NULL || target == NULL)
        return;
    for (const struct bst_field *f = table; f->name != NULL; f++) {
        if (f->type == BST_F_STRING)
            clear_str(target, f);
        else if (f->type == BST_F_SECTION)
            bst_yaml_decoded_free(f->section, (char *)target + f->offset);
    }
}

int bst_yaml_resolve_path(char **path, const char *config_path)
{
    const char *slash = strrchr(config_path, '/');
    char *joined;
    size_t dl, pl;

    if (*path == NULL || (*path)[0] == '\0' || (*path)[0] == '/' || slash == NULL)
        return 0;
    dl = (size_t)(slash - config_path);
    pl = strlen(*path);
    joined = malloc(dl + 1 + pl + 1);
    if (joined == NULL)
        return -1;
    memcpy(joined, config_path, dl);
    joined[dl] = '/';
    memcpy(joined + dl + 1, *path, pl + 1);
    free(*path);
    *path = joined;
    return 0;
}
