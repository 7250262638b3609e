/* Label selector parser and matcher: a small lexer over the bounded input, then a recursive
 * descent over requirements, following k8s.io/apimachinery/pkg/labels/selector.go. */
#include "selector.h"
#include "names.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

enum op { OP_EXISTS, OP_NOT_EXISTS, OP_EQ, OP_NE, OP_IN, OP_NOTIN, OP_GT, OP_LT };

struct req {
    char *key;
    enum op op;
    char **values;
    size_t n_values;
    long long number; /* OP_GT / OP_LT */
};

struct kube_selector {
    struct req *reqs;
    size_t n;
};

enum tok {
    T_END,
    T_IDENT,
    T_COMMA,
    T_OPEN,
    T_CLOSE,
    T_EQ,    /* = */
    T_DEQ,   /* == */
    T_NE,    /* != */
    T_NOT,   /* ! */
    T_GT,    /* > */
    T_LT,    /* < */
    T_IN,    /* in */
    T_NOTIN, /* notin */
    T_BAD,
};

struct lex {
    const char *s;
    size_t pos;
    enum tok tok;
    size_t start, len; /* of the current token */
};

static int special(char c)
{
    return c == ',' || c == '(' || c == ')' || c == '=' || c == '!' || c == '<' || c == '>';
}

static int blank(char c)
{
    return c == ' ' || c == '\t' || c == '\n' || c == '\r';
}

static void next(struct lex *l)
{
    const char *s = l->s;
    while (blank(s[l->pos]))
        l->pos++;
    l->start = l->pos;
    switch (s[l->pos]) {
    case '\0':
        l->tok = T_END;
        l->len = 0;
        return;
    case ',':
        l->tok = T_COMMA;
        break;
    case '(':
        l->tok = T_OPEN;
        break;
    case ')':
        l->tok = T_CLOSE;
        break;
    case '>':
        l->tok = T_GT;
        break;
    case '<':
        l->tok = T_LT;
        break;
    case '=':
        if (s[l->pos + 1] == '=') {
            l->tok = T_DEQ;
            l->pos += 2;
            l->len = 2;
            return;
        }
        l->tok = T_EQ;
        break;
    case '!':
        if (s[l->pos + 1] == '=') {
            l->tok = T_NE;
            l->pos += 2;
            l->len = 2;
            return;
        }
        l->tok = T_NOT;
        break;
    default: {
        size_t i = l->pos;
        while (s[i] != '\0' && !special(s[i]) && !blank(s[i]))
            i++;
        l->len = i - l->pos;
        l->pos = i;
        if (l->len == 2 && strncmp(s + l->start, "in", 2) == 0)
            l->tok = T_IN;
        else if (l->len == 5 && strncmp(s + l->start, "notin", 5) == 0)
            l->tok = T_NOTIN;
        else
            l->tok = T_IDENT;
        return;
    }
    }
    l->pos++;
    l->len = 1;
}

static enum bst_status fail(struct bst_err *err, const struct lex *l, const char *what)
{
    return bst_errf(err, BST_INVALID_ARGUMENT, "label selector: %s at position %zu", what,
                    l->start + 1);
}

static char *dup_tok(const struct lex *l)
{
    return strndup(l->s + l->start, l->len);
}

/* A value token: an identifier, or the empty value right before ',' ')' or the end. */
static enum bst_status take_value(struct lex *l, char **out, struct bst_err *err)
{
    if (l->tok == T_IDENT || l->tok == T_IN || l->tok == T_NOTIN) {
        if (!kube_label_value_okn(l->s + l->start, l->len))
            return fail(err, l, "invalid label value");
        *out = dup_tok(l);
        next(l);
    } else if (l->tok == T_COMMA || l->tok == T_END || l->tok == T_CLOSE) {
        *out = strdup("");
    } else {
        return fail(err, l, "expected a value");
    }
    return *out != NULL ? BST_OK : bst_errf(err, BST_RESOURCE_EXHAUSTED, "out of memory");
}

static enum bst_status add_value(struct req *r, char *v, struct bst_err *err)
{
    char **nv;
    if (v == NULL)
        return bst_errf(err, BST_RESOURCE_EXHAUSTED, "out of memory");
    nv = realloc(r->values, (r->n_values + 1) * sizeof(*nv));
    if (nv == NULL) {
        free(v);
        return bst_errf(err, BST_RESOURCE_EXHAUSTED, "out of memory");
    }
    r->values = nv;
    r->values[r->n_values++] = v;
    return BST_OK;
}

static enum bst_status parse_set(struct lex *l, struct req *r, struct bst_err *err)
{
    enum bst_status rv;
    if (l->tok != T_OPEN)
        return fail(err, l, "expected '('");
    next(l);
    if (l->tok == T_CLOSE)
        return fail(err, l, "a set of values cannot be empty");
    for (;;) {
        char *v = NULL;
        if (r->n_values == KUBE_SELECTOR_MAX_VALUES)
            return fail(err, l, "too many values in a set");
        if ((rv = take_value(l, &v, err)) != BST_OK)
            return rv;
        if ((rv = add_value(r, v, err)) != BST_OK)
            return rv;
        if (l->tok == T_CLOSE) {
            next(l);
            return BST_OK;
        }
        if (l->tok != T_COMMA)
            return fail(err, l, "expected ',' or ')'");
        next(l);
    }
}

static enum bst_status parse_number(struct lex *l, struct req *r, struct bst_err *err)
{
    char buf[24], *end;
    if (l->tok != T_IDENT || l->len == 0 || l->len >= sizeof(buf))
        return fail(err, l, "expected an integer");
    memcpy(buf, l->s + l->start, l->len);
    buf[l->len] = '\0';
    r->number = strtoll(buf, &end, 10);
    if (*end != '\0' || (buf[0] != '-' && (buf[0] < '0' || buf[0] > '9')))
        return fail(err, l, "expected an integer");
    next(l);
    return BST_OK;
}

static enum bst_status parse_req(struct lex *l, struct req *r, struct bst_err *err)
{
    enum bst_status rv;
    char *v = NULL;

    if (l->tok == T_NOT) {
        next(l);
        r->op = OP_NOT_EXISTS;
    }
    if (l->tok != T_IDENT)
        return fail(err, l, "expected a label key");
    if (!kube_label_key_okn(l->s + l->start, l->len))
        return fail(err, l, "invalid label key");
    if ((r->key = dup_tok(l)) == NULL)
        return bst_errf(err, BST_RESOURCE_EXHAUSTED, "out of memory");
    next(l);
    if (r->op == OP_NOT_EXISTS) {
        if (l->tok != T_COMMA && l->tok != T_END)
            return fail(err, l, "'!key' takes no operator");
        return BST_OK;
    }
    switch (l->tok) {
    case T_COMMA:
    case T_END:
        r->op = OP_EXISTS;
        return BST_OK;
    case T_EQ:
    case T_DEQ:
    case T_NE:
        r->op = l->tok == T_NE ? OP_NE : OP_EQ;
        next(l);
        if ((rv = take_value(l, &v, err)) != BST_OK)
            return rv;
        return add_value(r, v, err);
    case T_IN:
    case T_NOTIN:
        r->op = l->tok == T_IN ? OP_IN : OP_NOTIN;
        next(l);
        return parse_set(l, r, err);
    case T_GT:
    case T_LT:
        r->op = l->tok == T_GT ? OP_GT : OP_LT;
        next(l);
        return parse_number(l, r, err);
    default:
        return fail(err, l, "expected an operator (=, ==, !=, in, notin, >, <) or ','");
    }
}

void kube_selector_free(struct kube_selector *sel)
{
    if (sel == NULL)
        return;
    for (size_t i = 0; i < sel->n; i++) {
        free(sel->reqs[i].key);
        for (size_t k = 0; k < sel->reqs[i].n_values; k++)
            free(sel->reqs[i].values[k]);
        free(sel->reqs[i].values);
    }
    free(sel->reqs);
    free(sel);
}

enum bst_status kube_selector_parse(const char *s, struct kube_selector **out, struct bst_err *err)
{
    struct kube_selector *sel;
    struct lex l = {s, 0, T_END, 0, 0};
    enum bst_status rv = BST_OK;

    *out = NULL;
    if (strlen(s) > KUBE_SELECTOR_MAX_BYTES)
        return bst_errf(err, BST_INVALID_ARGUMENT, "label selector: longer than %d bytes",
                        KUBE_SELECTOR_MAX_BYTES);
    if ((sel = calloc(1, sizeof(*sel))) == NULL)
        return bst_errf(err, BST_RESOURCE_EXHAUSTED, "out of memory");
    next(&l);
    if (l.tok == T_END) {
        *out = sel;
        return BST_OK;
    }
    if ((sel->reqs = calloc(KUBE_SELECTOR_MAX_REQUIREMENTS, sizeof(*sel->reqs))) == NULL) {
        free(sel);
        return bst_errf(err, BST_RESOURCE_EXHAUSTED, "out of memory");
    }
    for (;;) {
        if (sel->n == KUBE_SELECTOR_MAX_REQUIREMENTS) {
            rv = fail(err, &l, "too many requirements");
            break;
        }
        rv = parse_req(&l, &sel->reqs[sel->n++], err);
        if (rv != BST_OK)
            break;
        if (l.tok == T_END)
            break;
        if (l.tok != T_COMMA) {
            rv = fail(err, &l, "expected ','");
            break;
        }
        next(&l);
    }
    if (rv != BST_OK) {
        kube_selector_free(sel);
        return rv;
    }
    *out = sel;
    return BST_OK;
}

int kube_selector_ok(const char *s)
{
    struct kube_selector *sel;
    if (kube_selector_parse(s, &sel, NULL) != BST_OK)
        return 0;
    kube_selector_free(sel);
    return 1;
}

static const char *label_get(const struct kube_kv *labels, size_t n, const char *key)
{
    for (size_t i = 0; i < n; i++)
        if (strcmp(labels[i].key, key) == 0)
            return labels[i].value;
    return NULL;
}

static int in_values(const struct req *r, const char *v)
{
    for (size_t i = 0; i < r->n_values; i++)
        if (strcmp(r->values[i], v) == 0)
            return 1;
    return 0;
}

static int req_matches(const struct req *r, const struct kube_kv *labels, size_t n)
{
    const char *v = label_get(labels, n, r->key);
    char *end;
    long long num;

    switch (r->op) {
    case OP_EXISTS:
        return v != NULL;
    case OP_NOT_EXISTS:
        return v == NULL;
    case OP_EQ:
    case OP_IN:
        return v != NULL && in_values(r, v);
    case OP_NE:
    case OP_NOTIN:
        /* As in Kubernetes: objects without the key match != and notin. */
        return v == NULL || !in_values(r, v);
    case OP_GT:
    case OP_LT:
        if (v == NULL || v[0] == '\0')
            return 0;
        num = strtoll(v, &end, 10);
        if (*end != '\0')
            return 0;
        return r->op == OP_GT ? num > r->number : num < r->number;
    }
    return 0;
}

int kube_selector_matches(const struct kube_selector *sel, const struct kube_kv *labels, size_t n)
{
    if (sel == NULL)
        return 1;
    for (size_t i = 0; i < sel->n; i++)
        if (!req_matches(&sel->reqs[i], labels, n))
            return 0;
    return 1;
}

int kube_selector_format(const struct kube_kv *labels, size_t n, char *buf, size_t len)
{
    size_t used = 0;
    if (len == 0)
        return -1;
    buf[0] = '\0';
    for (size_t i = 0; i < n; i++) {
        int w = snprintf(buf + used, len - used, "%s%s=%s", i ? "," : "", labels[i].key,
                         labels[i].value);
        if (w < 0 || (size_t)w >= len - used)
            return -1;
        used += (size_t)w;
    }
    return 0;
}
