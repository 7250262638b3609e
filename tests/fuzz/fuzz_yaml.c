/* libFuzzer target for the strict YAML reader: parses the input and, when it parses, checks the
 * tree's invariants (scalar keys, unique keys, no NUL in scalars, positions from 1), runs every
 * typed reader on every scalar and decodes the root through a small field table that uses every
 * field type. Anything that breaks an invariant aborts, which the fuzzer reports. */
#include "strict_yaml.h"

#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

struct sample {
    char *name;
    int64_t count;
    int enabled;
    int mode;
    int64_t timeout_ms;
    int64_t limit;
    char *inner;
    int64_t inner_ms;
    int64_t id;
};

static const char *const modes[] = {"off", "audit", "enforce", NULL};

static const struct bst_field inner_fields[] = {
    {.name = "value", .type = BST_F_STRING, .offset = offsetof(struct sample, inner), .def = "x"},
    {.name = "wait",
     .type = BST_F_DURATION_MS,
     .offset = offsetof(struct sample, inner_ms),
     .min = 0,
     .max = INT64_MAX,
     .def = "1h"},
    {.name = "id",
     .type = BST_F_INT,
     .offset = offsetof(struct sample, id),
     .max = 99,
     .required = 1},
    {.name = NULL},
};

static const struct bst_field fields[] = {
    {.name = "name", .type = BST_F_STRING, .offset = offsetof(struct sample, name), .def = "n"},
    {.name = "count",
     .type = BST_F_INT,
     .offset = offsetof(struct sample, count),
     .min = -1000,
     .max = 1000,
     .def = "0"},
    {.name = "enabled",
     .type = BST_F_BOOL,
     .offset = offsetof(struct sample, enabled),
     .def = "true"},
    {.name = "mode",
     .type = BST_F_ENUM,
     .offset = offsetof(struct sample, mode),
     .enum_names = modes,
     .def = "audit"},
    {.name = "timeout",
     .type = BST_F_DURATION_MS,
     .offset = offsetof(struct sample, timeout_ms),
     .min = 1,
     .max = 86400000,
     .def = "10s"},
    {.name = "limit",
     .type = BST_F_SIZE,
     .offset = offsetof(struct sample, limit),
     .min = 0,
     .max = INT64_MAX,
     .def = "4MiB"},
    {.name = "inner", .type = BST_F_SECTION, .section = inner_fields},
    {.name = NULL},
};

static void check_message(const struct bst_err *err)
{
    if (memchr(err->msg, '\0', sizeof(err->msg)) == NULL)
        abort();
    for (const char *p = err->msg; *p != '\0'; p++)
        if ((unsigned char)*p < 0x20 || (unsigned char)*p == 0x7f)
            abort();
}

static void walk(const struct bst_yaml_doc *doc, const struct bst_yaml_node *n, size_t depth)
{
    struct bst_err err;
    const char *s;
    int64_t i;
    int b;

    /* Containers nest at most 32 deep (the default limit); scalars sit one level below. */
    if (n == NULL || n->line < 1 || n->col < 1 || depth > 33 ||
        (n->kind != BST_YAML_SCALAR && depth > 32))
        abort();
    switch (n->kind) {
    case BST_YAML_SCALAR:
        if (n->value == NULL || strlen(n->value) != n->len || n->keys != NULL || n->items != NULL)
            abort();
        if (bst_yaml_bool(doc, n, &b, &err) != BST_OK)
            check_message(&err);
        if (bst_yaml_int(doc, n, INT64_MIN, INT64_MAX, &i, &err) != BST_OK)
            check_message(&err);
        if (bst_yaml_str(doc, n, 1, &s, &err) != BST_OK)
            check_message(&err);
        break;
    case BST_YAML_MAP:
        for (size_t k = 0; k < n->n; k++) {
            if (n->keys[k] == NULL || n->keys[k]->kind != BST_YAML_SCALAR)
                abort();
            /* The first key with this text must be this one: keys are unique. */
            if (bst_yaml_get(n, n->keys[k]->value) != n->items[k])
                abort();
            walk(doc, n->keys[k], depth + 1);
            walk(doc, n->items[k], depth + 1);
        }
        break;
    case BST_YAML_SEQ:
        if (n->keys != NULL || bst_yaml_get(n, "a") != NULL)
            abort();
        for (size_t k = 0; k < n->n; k++)
            walk(doc, n->items[k], depth + 1);
        break;
    default:
        abort();
    }
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    struct bst_yaml_doc *doc = NULL;
    struct bst_err err;
    struct sample s;

    if (bst_yaml_parse("fuzz.yaml", (const char *)data, size, NULL, &doc, &err) != BST_OK) {
        if (doc != NULL)
            abort();
        check_message(&err);
        return 0;
    }
    walk(doc, doc->root, 1);
    memset(&s, 0, sizeof(s));
    if (bst_yaml_decode(doc, doc->root, fields, &s, &err) != BST_OK)
        check_message(&err);
    bst_yaml_decoded_free(fields, &s);
    if (s.name != NULL || s.inner != NULL)
        abort();
    bst_yaml_free(doc);
    return 0;
}
