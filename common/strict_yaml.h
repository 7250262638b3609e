/* The strict YAML reader every configuration and policy file goes through.
 *
 * libyaml 0.2.5 on its own accepts alias bombs and cyclic aliases, lets duplicate keys pass,
 * and is quadratic in nesting depth. This reader streams libyaml *events* and refuses, with
 * file:line:column, before building anything large: anchors, aliases and tags; more than one
 * document or none; NUL bytes and invalid UTF-8; nesting deeper than max_depth (checked per
 * event, so a 100 000-deep document fails in milliseconds); more than max_nodes nodes; input
 * larger than max_bytes; scalars longer than max_scalar; duplicate keys; non-scalar keys.
 *
 * The result is a small immutable tree with positions. bst_yaml_decode() maps a mapping node
 * onto a C struct through a field table (name, type, bounds, default), refusing unknown keys,
 * wrong types and out-of-range values, so every config file is read the same way. */
#ifndef BASTION_COMMON_STRICT_YAML_H
#define BASTION_COMMON_STRICT_YAML_H

#include "status.h"

#include <stddef.h>
#include <stdint.h>

enum bst_yaml_kind { BST_YAML_SCALAR = 1, BST_YAML_MAP, BST_YAML_SEQ };

struct bst_yaml_node {
    enum bst_yaml_kind kind;
    int line; /* 1-based position of the node's start */
    int col;
    /* SCALAR: value is NUL-terminated (it never contains NUL); len excludes the NUL.
     * plain is 1 for an unquoted scalar (only plain scalars may be null/bool/int). */
    char *value;
    size_t len;
    int plain;
    /* MAP: n pairs, keys[i] (always SCALAR, unique) maps to items[i].
     * SEQ: n entries in items[i]; keys is NULL. */
    size_t n;
    struct bst_yaml_node **keys;
    struct bst_yaml_node **items;
};

struct bst_yaml_limits {
    size_t max_bytes;  /* whole input; default 1 MiB */
    size_t max_depth;  /* nesting of maps/sequences; default 32 */
    size_t max_nodes;  /* default 100 000 */
    size_t max_scalar; /* bytes in one scalar; default 64 KiB */
};

struct bst_yaml_doc {
    char *name; /* file name used in error messages */
    struct bst_yaml_node *root;
};

/* Fills lim with the defaults above. */
void bst_yaml_limits_default(struct bst_yaml_limits *lim);

/* Parses buf[0..len) (name is used in messages, e.g. the path). lim may be NULL for defaults.
 * On success *out is owned by the caller (bst_yaml_free). Returns BST_OK or
 * BST_INVALID_ARGUMENT with err->msg "name:line:col: what is wrong"; BST_RESOURCE_EXHAUSTED for
 * a limit (also with a position). */
enum bst_status bst_yaml_parse(const char *name, const char *buf, size_t len,
                               const struct bst_yaml_limits *lim, struct bst_yaml_doc **out,
                               struct bst_err *err);

/* Reads and parses a file (bst_file_read, capped at lim->max_bytes). */
enum bst_status bst_yaml_load_file(const char *path, const struct bst_yaml_limits *lim,
                                   struct bst_yaml_doc **out, struct bst_err *err);

/* Same for a secret file (bst_secret_read's ownership and mode rules; the raw bytes are wiped).
 * Scalars in the tree are wiped by bst_yaml_free. */
enum bst_status bst_yaml_load_secret(const char *path, const struct bst_yaml_limits *lim,
                                     struct bst_yaml_doc **out, struct bst_err *err);

/* Frees the document and every node (wiping scalar bytes). NULL is a no-op. */
void bst_yaml_free(struct bst_yaml_doc *doc);

/* Returns the value for key in a MAP node, or NULL (also when node is not a MAP). */
const struct bst_yaml_node *bst_yaml_get(const struct bst_yaml_node *map, const char *key);

/* Typed scalar readers. Each returns BST_OK, or BST_INVALID_ARGUMENT with
 * "name:line:col: <what> ..." in err. Booleans accept only plain `true`/`false` (YAML 1.1
 * spellings such as on/off/yes/no are refused, as is a quoted "true"). Integers accept only
 * plain decimal digits with an optional leading '-', within [min, max]. Strings refuse plain
 * scalars that YAML 1.1 would read as booleans or null (y, yes, on, off, no, n, ~, null...),
 * asking for quotes; an empty string is allowed only when allow_empty. */
enum bst_status bst_yaml_bool(const struct bst_yaml_doc *doc, const struct bst_yaml_node *n,
                              int *out, struct bst_err *err);
enum bst_status bst_yaml_int(const struct bst_yaml_doc *doc, const struct bst_yaml_node *n,
                             int64_t min, int64_t max, int64_t *out, struct bst_err *err);
enum bst_status bst_yaml_str(const struct bst_yaml_doc *doc, const struct bst_yaml_node *n,
                             int allow_empty, const char **out, struct bst_err *err);

/* Formats "name:line:col: " + message into err with the given code and returns code. */
enum bst_status bst_yaml_errf(struct bst_err *err, enum bst_status code,
                              const struct bst_yaml_doc *doc, const struct bst_yaml_node *n,
                              const char *fmt, ...) __attribute__((format(printf, 5, 6)));

/* ---- Table-driven decoding (house style: one table of name, type, bounds, default) ---------- */

enum bst_field_type {
    BST_F_STRING,      /* char *, malloc'd copy */
    BST_F_INT,         /* int64_t within [min, max] */
    BST_F_BOOL,        /* int, 0 or 1 */
    BST_F_ENUM,        /* int, index into enum_names */
    BST_F_DURATION_MS, /* int64_t milliseconds; YAML "250ms", "10s", "5m", "1h" or plain ms */
    BST_F_SIZE,        /* int64_t bytes; YAML "512", "64KiB", "4MiB", "1GiB" */
    BST_F_SECTION,     /* nested mapping decoded with `section` into target + offset: 0 for a
                        * section of the same struct, offsetof(...) for an embedded struct whose
                        * own table (e.g. a library's config) has offsets relative to it */
};

struct bst_field {
    const char *name;
    enum bst_field_type type;
    size_t offset;                   /* offsetof into the target struct (SECTION: see above) */
    int64_t min, max;                /* INT, DURATION_MS, SIZE bounds (inclusive) */
    const char *def;                 /* default, written as YAML text would be; NULL = none */
    const char *const *enum_names;   /* ENUM: NULL-terminated */
    const struct bst_field *section; /* SECTION: table, terminated by a {NULL} entry */
    int required;                    /* absent key is an error (no default applies) */
    const char *doc;                 /* one sentence for the configuration reference */
};

/* Applies every default of table (recursively through sections) to target, then decodes map
 * (which may be NULL: defaults only) into target. Unknown keys, wrong types and out-of-range
 * values are BST_INVALID_ARGUMENT with "name:line:col: key 'x': ...". On failure, strings
 * already stored are left for bst_yaml_decoded_free. */
enum bst_status bst_yaml_decode(const struct bst_yaml_doc *doc, const struct bst_yaml_node *map,
                                const struct bst_field *table, void *target, struct bst_err *err);

/* Makes *path (a malloc'd string read from the file at config_path) relative to that file's
 * directory when it is relative; absolute paths and "" are left alone. Every path in every
 * configuration file is resolved this way. Returns 0, or -1 when out of memory (*path kept). */
int bst_yaml_resolve_path(char **path, const char *config_path);

/* Frees the BST_F_STRING members that bst_yaml_decode stored in target. */
void bst_yaml_decoded_free(const struct bst_field *table, void *target);

#endif
