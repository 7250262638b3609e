/* Unit tests for common/strict_yaml.c: hostile documents are refused quickly and with the right
 * position, the typed readers refuse YAML 1.1 ambiguities, and the table-driven decoder applies
 * defaults, bounds and units. Every test runs in its own process (Check's fork mode), so the
 * sanitizer build reports a leak in any of them. */
#include "strict_yaml.h"

#include <check.h>
#include <fcntl.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

/* ---- Helpers ------------------------------------------------------------------------------- */

static double now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec * 1e3 + (double)ts.tv_nsec / 1e6;
}

static struct bst_yaml_doc *parse_ok(const char *text)
{
    struct bst_yaml_doc *doc = NULL;
    struct bst_err err = {0};
    enum bst_status rv = bst_yaml_parse("t.yaml", text, strlen(text), NULL, &doc, &err);
    ck_assert_msg(rv == BST_OK, "parse of '%s' failed: %s", text, err.msg);
    ck_assert_ptr_nonnull(doc);
    return doc;
}

/* Parses buf[0..len) with lim and checks that it is refused with code and a message that starts
 * with "t.yaml:<where>: " and contains what. */
static void refused_lim(const char *buf, size_t len, const struct bst_yaml_limits *lim,
                        enum bst_status code, const char *where, const char *what)
{
    struct bst_yaml_doc *doc = (struct bst_yaml_doc *)1;
    struct bst_err err = {0};
    char prefix[64];
    enum bst_status rv = bst_yaml_parse("t.yaml", buf, len, lim, &doc, &err);

    snprintf(prefix, sizeof(prefix), "t.yaml:%s: ", where);
    ck_assert_msg(rv == code, "expected status %d, got %d (%s)", code, rv, err.msg);
    ck_assert_ptr_null(doc);
    ck_assert_int_eq(err.code, code);
    ck_assert_msg(strncmp(err.msg, prefix, strlen(prefix)) == 0, "message '%s' does not start '%s'",
                  err.msg, prefix);
    ck_assert_msg(strstr(err.msg, what) != NULL, "message '%s' lacks '%s'", err.msg, what);
}

static void refused(const char *buf, size_t len, enum bst_status code, const char *where,
                    const char *what)
{
    refused_lim(buf, len, NULL, code, where, what);
}

#define REFUSED(lit, where, what) refused(lit, sizeof(lit) - 1, BST_INVALID_ARGUMENT, where, what)

/* Builds depth '[' followed by depth ']'. */
static char *nested_flow(size_t depth)
{
    char *s = malloc(2 * depth + 1);
    ck_assert_ptr_nonnull(s);
    memset(s, '[', depth);
    memset(s + depth, ']', depth);
    s[2 * depth] = '\0';
    return s;
}

/* Builds depth nested block mappings: "a:\n  a:\n    a: x\n" (one space of indent per level). */
static char *nested_block_map(size_t depth)
{
    size_t cap = depth * (depth + 4) + 8, used = 0;
    char *s = malloc(cap);
    ck_assert_ptr_nonnull(s);
    for (size_t i = 0; i < depth; i++) {
        memset(s + used, ' ', i);
        used += i;
        memcpy(s + used, i + 1 < depth ? "a:\n" : "a: x\n", i + 1 < depth ? 3 : 5);
        used += i + 1 < depth ? 3 : 5;
    }
    s[used] = '\0';
    return s;
}

/* Builds depth compact block sequences on one line: "- - - ... x". */
static char *nested_block_seq(size_t depth)
{
    char *s = malloc(2 * depth + 2);
    ck_assert_ptr_nonnull(s);
    for (size_t i = 0; i < depth; i++) {
        s[2 * i] = '-';
        s[2 * i + 1] = ' ';
    }
    s[2 * depth] = 'x';
    s[2 * depth + 1] = '\0';
    return s;
}

/* ---- Parsing ------------------------------------------------------------------------------- */

START_TEST(test_yaml_builds_tree_with_positions)
{
    struct bst_yaml_doc *doc = parse_ok("a: 1\nb:\n  - x\n  - 'y'\nc: {d: \"e\"}\n");
    const struct bst_yaml_node *r = doc->root, *b, *c;

    ck_assert_str_eq(doc->name, "t.yaml");
    ck_assert_int_eq(r->kind, BST_YAML_MAP);
    ck_assert_uint_eq(r->n, 3);
    ck_assert_int_eq(r->line, 1);
    ck_assert_int_eq(r->col, 1);
    ck_assert_str_eq(r->keys[0]->value, "a");
    ck_assert_str_eq(r->items[0]->value, "1");
    ck_assert_int_eq(r->items[0]->plain, 1);
    ck_assert_int_eq(r->items[0]->line, 1);
    ck_assert_int_eq(r->items[0]->col, 4);
    b = bst_yaml_get(r, "b");
    ck_assert_ptr_nonnull(b);
    ck_assert_int_eq(b->kind, BST_YAML_SEQ);
    ck_assert_ptr_null(b->keys);
    ck_assert_uint_eq(b->n, 2);
    ck_assert_int_eq(b->line, 3);
    ck_assert_int_eq(b->col, 3);
    ck_assert_str_eq(b->items[1]->value, "y");
    ck_assert_uint_eq(b->items[1]->len, 1);
    ck_assert_int_eq(b->items[1]->plain, 0);
    c = bst_yaml_get(r, "c");
    ck_assert_int_eq(c->kind, BST_YAML_MAP);
    ck_assert_int_eq(c->line, 5);
    ck_assert_int_eq(c->col, 4);
    ck_assert_str_eq(bst_yaml_get(c, "d")->value, "e");
    ck_assert_ptr_null(bst_yaml_get(r, "missing"));
    bst_yaml_free(doc);
}
END_TEST

START_TEST(test_yaml_get_returns_null_for_non_map)
{
    struct bst_yaml_doc *doc = parse_ok("[a, b]\n");
    ck_assert_ptr_null(bst_yaml_get(doc->root, "a"));
    ck_assert_ptr_null(bst_yaml_get(doc->root->items[0], "a"));
    ck_assert_ptr_null(bst_yaml_get(NULL, "a"));
    bst_yaml_free(doc);
    bst_yaml_free(NULL);
}
END_TEST

START_TEST(test_yaml_lone_document_marker_is_one_empty_document)
{
    struct bst_yaml_doc *doc = parse_ok("---\n");
    ck_assert_int_eq(doc->root->kind, BST_YAML_SCALAR);
    ck_assert_uint_eq(doc->root->len, 0);
    ck_assert_int_eq(doc->root->plain, 1);
    bst_yaml_free(doc);
}
END_TEST

START_TEST(test_yaml_alias_is_refused)
{
    REFUSED("a: 1\nb: *x\n", "2:4", "aliases (*x) are not allowed");
}
END_TEST

START_TEST(test_yaml_anchor_is_refused)
{
    REFUSED("a: 1\nb: &x 1\nc: *x\n", "2:4", "anchors (&x) are not allowed");
    REFUSED("- &m {a: 1}\n", "1:3", "anchors");
}
END_TEST

START_TEST(test_yaml_cycle_is_refused)
{
    REFUSED("&a [*a]", "1:1", "anchors (&a)");
}
END_TEST

START_TEST(test_yaml_billion_laughs_is_refused_quickly)
{
    static const char bomb[] = "a: &a [\"lol\",\"lol\",\"lol\",\"lol\",\"lol\",\"lol\",\"lol\"]\n"
                               "b: &b [*a,*a,*a,*a,*a,*a,*a,*a,*a]\n"
                               "c: &c [*b,*b,*b,*b,*b,*b,*b,*b,*b]\n"
                               "d: &d [*c,*c,*c,*c,*c,*c,*c,*c,*c]\n"
                               "e: &e [*d,*d,*d,*d,*d,*d,*d,*d,*d]\n"
                               "f: &f [*e,*e,*e,*e,*e,*e,*e,*e,*e]\n"
                               "g: &g [*f,*f,*f,*f,*f,*f,*f,*f,*f]\n"
                               "h: &h [*g,*g,*g,*g,*g,*g,*g,*g,*g]\n"
                               "i: &i [*h,*h,*h,*h,*h,*h,*h,*h,*h]\n";
    double t0 = now_ms(), dt;
    REFUSED(bomb, "1:4", "anchors (&a)");
    dt = now_ms() - t0;
    ck_assert_msg(dt < 1000.0, "took %.1f ms", dt);
}
END_TEST

START_TEST(test_yaml_tags_are_refused)
{
    REFUSED("a: !!str 5\n", "1:4", "tags");
    REFUSED("!foo {a: 1}\n", "1:1", "tags (!foo)");
    REFUSED("a:\n  - ! x\n", "2:5", "tags (!)");
    REFUSED("--- !!map\na: 1\n", "1:5", "tags");
    REFUSED("a: !!binary aGVsbG8=\n", "1:4", "tags");
}
END_TEST

START_TEST(test_yaml_duplicate_key_is_refused)
{
    REFUSED("a: 1\nb: 2\na: 3\n", "3:1", "duplicate key 'a' (first at 1:1)");
    REFUSED("{x: 1, x: 2}", "1:8", "duplicate key 'x' (first at 1:2)");
    REFUSED("outer:\n  k: 1\n  j: 2\n  'k': 3\n", "4:3", "duplicate key 'k' (first at 2:3)");
}
END_TEST

START_TEST(test_yaml_earliest_duplicate_key_is_reported)
{
    REFUSED("c: 1\nb: 1\na: 1\nb: 2\nc: 2\na: 3\n", "4:1", "duplicate key 'b' (first at 2:1)");
}
END_TEST

START_TEST(test_yaml_large_map_duplicate_detection_is_not_quadratic)
{
    const size_t keys = 50000;
    size_t cap = keys * 16 + 32, used = 0;
    char *s = malloc(cap), where[32];
    struct bst_yaml_limits lim;
    struct bst_yaml_doc *doc = NULL;
    struct bst_err err = {0};
    double t0, dt;

    ck_assert_ptr_nonnull(s);
    bst_yaml_limits_default(&lim);
    lim.max_nodes = 4 * keys;
    for (size_t i = 0; i < keys; i++)
        used += (size_t)snprintf(s + used, cap - used, "k%zu: 1\n", i);
    t0 = now_ms();
    ck_assert_int_eq(bst_yaml_parse("t.yaml", s, used, &lim, &doc, &err), BST_OK);
    dt = now_ms() - t0;
    printf("yaml: %zu distinct keys parsed in %.1f ms\n", keys, dt);
    ck_assert_uint_eq(doc->root->n, keys);
    bst_yaml_free(doc);

    used += (size_t)snprintf(s + used, cap - used, "k7: 2\n");
    snprintf(where, sizeof(where), "%zu:1", keys + 1);
    t0 = now_ms();
    refused_lim(s, used, &lim, BST_INVALID_ARGUMENT, where, "duplicate key 'k7' (first at 8:1)");
    dt = now_ms() - t0;
    printf("yaml: duplicate among %zu keys refused in %.1f ms\n", keys, dt);
    ck_assert_msg(dt < 1000.0, "took %.1f ms", dt);
    free(s);
}
END_TEST

START_TEST(test_yaml_non_scalar_key_is_refused)
{
    REFUSED("[a]: 1\n", "1:1", "a key must be a scalar, not a sequence");
    REFUSED("? {a: 1}\n: 1\n", "1:3", "a key must be a scalar, not a mapping");
}
END_TEST

START_TEST(test_yaml_two_documents_are_refused)
{
    REFUSED("a: 1\n---\nb: 2\n", "2:1", "second document");
    REFUSED("--- 1\n--- 2\n", "2:1", "second document");
}
END_TEST

START_TEST(test_yaml_empty_file_is_refused)
{
    REFUSED("", "1:1", "no document");
    refused(NULL, 0, BST_INVALID_ARGUMENT, "1:1", "no document");
}
END_TEST

START_TEST(test_yaml_comments_only_is_refused)
{
    REFUSED("# just\n# comments\n", "3:1", "no document");
    REFUSED("   \n\n", "3:1", "no document");
}
END_TEST

START_TEST(test_yaml_nul_byte_is_refused)
{
    REFUSED("a: 1\nb: x\0y\n", "2:5", "NUL byte");
    REFUSED("\0", "1:1", "NUL byte");
}
END_TEST

START_TEST(test_yaml_escaped_nul_in_scalar_is_refused)
{
    REFUSED("a: \"x\\0y\"\n", "1:4", "NUL character");
    REFUSED("a: \"\\x00\"\n", "1:4", "NUL character");
}
END_TEST

START_TEST(test_yaml_invalid_utf8_is_refused)
{
    REFUSED("a: 1\nbb: \xc3\x28\n", "2:5", "invalid UTF-8 (byte 0xc3)");
    REFUSED("\xc3\xa9t\xc3\xa9: \xff\n", "1:6", "invalid UTF-8 (byte 0xff)");
    REFUSED("a: \xc0\xaf\n", "1:4", "invalid UTF-8");         /* overlong '/' */
    REFUSED("a: \xe0\x80\xaf\n", "1:4", "invalid UTF-8");     /* overlong, 3 bytes */
    REFUSED("a: \xed\xa0\x80\n", "1:4", "invalid UTF-8");     /* UTF-16 surrogate */
    REFUSED("a: \xf4\x90\x80\x80\n", "1:4", "invalid UTF-8"); /* above U+10FFFF */
    REFUSED("a: \xe2\x82", "1:4", "invalid UTF-8");           /* truncated at the end */
    REFUSED("a: 1\r\nb: \x80\n", "2:4", "invalid UTF-8");
}
END_TEST

START_TEST(test_yaml_valid_multibyte_utf8_is_accepted)
{
    struct bst_yaml_doc *doc = parse_ok("name: \"caf\xc3\xa9 \xe2\x82\xac \xf0\x9f\x94\x91\"\n");
    ck_assert_str_eq(bst_yaml_get(doc->root, "name")->value,
                     "caf\xc3\xa9 \xe2\x82\xac \xf0\x9f\x94\x91");
    bst_yaml_free(doc);
}
END_TEST

START_TEST(test_yaml_control_character_is_refused_with_position)
{
    REFUSED("a: 1\nb: x\x01y\n", "2:5", "control characters");
}
END_TEST

START_TEST(test_yaml_syntax_error_has_position)
{
    REFUSED("a: b: c\n", "1:5", "mapping values are not allowed");
    REFUSED("a: [1, 2\n", "2:1", "while parsing a flow sequence at 1:4");
}
END_TEST

START_TEST(test_yaml_depth_32_is_accepted)
{
    char *flow = nested_flow(32), *block = nested_block_map(32);
    struct bst_yaml_doc *doc = parse_ok(flow);
    const struct bst_yaml_node *n = doc->root;
    size_t depth = 1;

    while (n->n > 0) {
        n = n->items[0];
        depth++;
    }
    ck_assert_uint_eq(depth, 32);
    bst_yaml_free(doc);
    doc = parse_ok(block);
    bst_yaml_free(doc);
    free(flow);
    free(block);
}
END_TEST

START_TEST(test_yaml_depth_33_is_refused)
{
    char *flow = nested_flow(33), *block = nested_block_map(33), *seq = nested_block_seq(33);
    refused(flow, strlen(flow), BST_RESOURCE_EXHAUSTED, "1:33", "nesting deeper than 32 levels");
    refused(block, strlen(block), BST_RESOURCE_EXHAUSTED, "33:33", "nesting deeper than 32 levels");
    refused(seq, strlen(seq), BST_RESOURCE_EXHAUSTED, "1:65", "nesting deeper than 32 levels");
    free(flow);
    free(block);
    free(seq);
}
END_TEST

START_TEST(test_yaml_depth_100000_flow_is_refused_quickly)
{
    char *s = nested_flow(100000);
    double t0 = now_ms(), dt;
    refused(s, strlen(s), BST_RESOURCE_EXHAUSTED, "1:33", "nesting deeper");
    dt = now_ms() - t0;
    printf("yaml: depth 100000 flow sequence refused in %.2f ms\n", dt);
    ck_assert_msg(dt < 1000.0, "took %.1f ms", dt);
    free(s);
}
END_TEST

START_TEST(test_yaml_depth_100000_block_is_refused_quickly)
{
    char *s = nested_block_seq(100000);
    double t0 = now_ms(), dt;
    refused(s, strlen(s), BST_RESOURCE_EXHAUSTED, "1:65", "nesting deeper");
    dt = now_ms() - t0;
    printf("yaml: depth 100000 block sequence refused in %.2f ms\n", dt);
    ck_assert_msg(dt < 1000.0, "took %.1f ms", dt);
    free(s);
}
END_TEST

START_TEST(test_yaml_depth_limit_is_configurable)
{
    struct bst_yaml_limits lim;
    bst_yaml_limits_default(&lim);
    lim.max_depth = 2;
    refused_lim("a: {b: {c: 1}}", 14, &lim, BST_RESOURCE_EXHAUSTED, "1:8",
                "nesting deeper than 2 levels");
}
END_TEST

START_TEST(test_yaml_input_over_max_bytes_is_refused_before_parsing)
{
    size_t len = 2 * 1024 * 1024;
    char *s = malloc(len);
    double t0, dt;

    ck_assert_ptr_nonnull(s);
    memset(s, '[', len); /* would be very slow to parse, so a fast refusal shows it was not */
    t0 = now_ms();
    refused(s, len, BST_RESOURCE_EXHAUSTED, "1:1", "larger than the limit of 1048576");
    dt = now_ms() - t0;
    ck_assert_msg(dt < 1000.0, "took %.1f ms", dt);
    free(s);
}
END_TEST

START_TEST(test_yaml_too_many_nodes_is_refused)
{
    const size_t n = 100001;
    char *s = malloc(2 * n + 2);
    struct bst_yaml_limits lim;

    ck_assert_ptr_nonnull(s);
    s[0] = '[';
    for (size_t i = 0; i < n; i++) {
        s[1 + 2 * i] = '0';
        s[2 + 2 * i] = i + 1 < n ? ',' : ']';
    }
    s[2 * n + 1] = '\0';
    /* The sequence is node 1, so the 100 001st node is the 100 000th scalar, at column
     * 2 + 2 * 99 999. */
    refused(s, strlen(s), BST_RESOURCE_EXHAUSTED, "1:200000", "more than 100000 nodes");
    free(s);

    bst_yaml_limits_default(&lim);
    lim.max_nodes = 4;
    refused_lim("a: 1\nb: 2\n", 10, &lim, BST_RESOURCE_EXHAUSTED, "2:4", "more than 4 nodes");
}
END_TEST

START_TEST(test_yaml_long_scalar_is_refused)
{
    struct bst_yaml_limits lim;
    bst_yaml_limits_default(&lim);
    lim.max_scalar = 8;
    refused_lim("a: 123456789\n", 13, &lim, BST_RESOURCE_EXHAUSTED, "1:4",
                "scalar of 9 bytes is longer than the limit of 8");
    lim.max_scalar = 9;
    {
        struct bst_yaml_doc *doc = NULL;
        struct bst_err err;
        ck_assert_int_eq(bst_yaml_parse("t.yaml", "a: 123456789\n", 13, &lim, &doc, &err), BST_OK);
        bst_yaml_free(doc);
    }
}
END_TEST

/* ---- Typed readers ------------------------------------------------------------------------- */

/* Parses "v: <value>" and returns the document; *n is the value node. */
static struct bst_yaml_doc *value_doc(const char *value, const struct bst_yaml_node **n)
{
    char text[256];
    struct bst_yaml_doc *doc;

    snprintf(text, sizeof(text), "v: %s\n", value);
    doc = parse_ok(text);
    *n = bst_yaml_get(doc->root, "v");
    ck_assert_ptr_nonnull(*n);
    return doc;
}

static enum bst_status read_bool(const char *value, int *out, struct bst_err *err)
{
    const struct bst_yaml_node *n;
    struct bst_yaml_doc *doc = value_doc(value, &n);
    enum bst_status rv = bst_yaml_bool(doc, n, out, err);
    bst_yaml_free(doc);
    return rv;
}

static enum bst_status read_int(const char *value, int64_t min, int64_t max, int64_t *out,
                                struct bst_err *err)
{
    const struct bst_yaml_node *n;
    struct bst_yaml_doc *doc = value_doc(value, &n);
    enum bst_status rv = bst_yaml_int(doc, n, min, max, out, err);
    bst_yaml_free(doc);
    return rv;
}

/* Reads a string and copies it to buf (the document is freed before returning). */
static enum bst_status read_str(const char *value, int allow_empty, char *buf, size_t size,
                                struct bst_err *err)
{
    const struct bst_yaml_node *n;
    const char *s = NULL;
    struct bst_yaml_doc *doc = value_doc(value, &n);
    enum bst_status rv = bst_yaml_str(doc, n, allow_empty, &s, err);
    if (rv == BST_OK)
        snprintf(buf, size, "%s", s);
    bst_yaml_free(doc);
    return rv;
}

START_TEST(test_yaml_bool_accepts_only_plain_true_false)
{
    struct bst_err err = {0};
    int v = -1;
    ck_assert_int_eq(read_bool("true", &v, &err), BST_OK);
    ck_assert_int_eq(v, 1);
    ck_assert_int_eq(read_bool("false", &v, &err), BST_OK);
    ck_assert_int_eq(v, 0);
}
END_TEST

START_TEST(test_yaml_bool_refuses_yaml11_spellings)
{
    static const char *const bad[] = {"on", "NO", "yes", "Off", "y", "True", "FALSE", NULL};
    struct bst_err err = {0};
    int v = 7;

    for (size_t i = 0; bad[i] != NULL; i++) {
        ck_assert_int_eq(read_bool(bad[i], &v, &err), BST_INVALID_ARGUMENT);
        ck_assert_msg(strncmp(err.msg, "t.yaml:1:4: ", 12) == 0, "%s", err.msg);
        ck_assert_msg(strstr(err.msg, "write true or false") != NULL, "%s", err.msg);
    }
    ck_assert_int_eq(v, 7);
}
END_TEST

START_TEST(test_yaml_bool_refuses_quoted_and_other_values)
{
    struct bst_err err = {0};
    int v;
    ck_assert_int_eq(read_bool("\"true\"", &v, &err), BST_INVALID_ARGUMENT);
    ck_assert_ptr_nonnull(strstr(err.msg, "quoted"));
    ck_assert_int_eq(read_bool("1", &v, &err), BST_INVALID_ARGUMENT);
    ck_assert_ptr_nonnull(strstr(err.msg, "expected true or false, got '1'"));
    ck_assert_int_eq(read_bool("", &v, &err), BST_INVALID_ARGUMENT);
    ck_assert_int_eq(read_bool("{x: 1}", &v, &err), BST_INVALID_ARGUMENT);
    ck_assert_str_eq(err.msg, "t.yaml:1:4: expected true or false, got a mapping");
}
END_TEST

START_TEST(test_yaml_int_reads_decimal_within_bounds)
{
    struct bst_err err = {0};
    int64_t v = 0;
    ck_assert_int_eq(read_int("42", 0, 100, &v, &err), BST_OK);
    ck_assert_int_eq(v, 42);
    ck_assert_int_eq(read_int("-7", -10, 10, &v, &err), BST_OK);
    ck_assert_int_eq(v, -7);
    ck_assert_int_eq(read_int("0", 0, 0, &v, &err), BST_OK);
    ck_assert_int_eq(v, 0);
    ck_assert_int_eq(read_int("9223372036854775807", INT64_MIN, INT64_MAX, &v, &err), BST_OK);
    ck_assert(v == INT64_MAX);
    ck_assert_int_eq(read_int("-9223372036854775808", INT64_MIN, INT64_MAX, &v, &err), BST_OK);
    ck_assert(v == INT64_MIN);
}
END_TEST

START_TEST(test_yaml_int_refuses_out_of_bounds_and_overflow)
{
    struct bst_err err = {0};
    int64_t v = 5;
    ck_assert_int_eq(read_int("101", 0, 100, &v, &err), BST_INVALID_ARGUMENT);
    ck_assert_str_eq(err.msg, "t.yaml:1:4: 101 is out of range (allowed 0 to 100)");
    ck_assert_int_eq(read_int("-1", 0, 100, &v, &err), BST_INVALID_ARGUMENT);
    ck_assert_int_eq(read_int("9223372036854775808", INT64_MIN, INT64_MAX, &v, &err),
                     BST_INVALID_ARGUMENT);
    ck_assert_ptr_nonnull(strstr(err.msg, "out of range"));
    ck_assert_int_eq(read_int("-9223372036854775809", INT64_MIN, INT64_MAX, &v, &err),
                     BST_INVALID_ARGUMENT);
    ck_assert_int_eq(read_int("99999999999999999999999", INT64_MIN, INT64_MAX, &v, &err),
                     BST_INVALID_ARGUMENT);
    ck_assert_int_eq(v, 5);
}
END_TEST

START_TEST(test_yaml_int_refuses_non_decimal_forms)
{
    static const char *const bad[] = {"+1",    "1.0", "0x10", "1_000", "010", "1e3", "",
                                      "\"5\"", "'5'", "5 6",  "5s",    "-x",  NULL};
    struct bst_err err = {0};
    int64_t v;
    for (size_t i = 0; bad[i] != NULL; i++) {
        enum bst_status rv = read_int(bad[i], INT64_MIN, INT64_MAX, &v, &err);
        ck_assert_msg(rv == BST_INVALID_ARGUMENT, "'%s' was accepted", bad[i]);
        ck_assert_msg(strncmp(err.msg, "t.yaml:1:", 9) == 0, "%s", err.msg);
    }
    ck_assert_int_eq(read_int("010", 0, 100, &v, &err), BST_INVALID_ARGUMENT);
    ck_assert_ptr_nonnull(strstr(err.msg, "octal"));
}
END_TEST

START_TEST(test_yaml_str_refuses_unquoted_yaml11_words)
{
    static const char *const bad[] = {"on", "NO",   "yes",  "Y",    "n", "Off",
                                      "~",  "null", "NULL", "True", NULL};
    struct bst_err err = {0};
    char buf[64];
    for (size_t i = 0; bad[i] != NULL; i++) {
        ck_assert_int_eq(read_str(bad[i], 1, buf, sizeof(buf), &err), BST_INVALID_ARGUMENT);
        ck_assert_msg(strncmp(err.msg, "t.yaml:1:4: ", 12) == 0, "%s", err.msg);
        ck_assert_msg(strstr(err.msg, "quote it") != NULL, "%s", err.msg);
    }
}
END_TEST

START_TEST(test_yaml_str_accepts_quoted_yaml11_words)
{
    struct bst_err err = {0};
    char buf[64];
    ck_assert_int_eq(read_str("\"on\"", 0, buf, sizeof(buf), &err), BST_OK);
    ck_assert_str_eq(buf, "on");
    ck_assert_int_eq(read_str("'yes'", 0, buf, sizeof(buf), &err), BST_OK);
    ck_assert_str_eq(buf, "yes");
    ck_assert_int_eq(read_str("hello world", 0, buf, sizeof(buf), &err), BST_OK);
    ck_assert_str_eq(buf, "hello world");
    ck_assert_int_eq(read_str("|\n  on\n", 0, buf, sizeof(buf), &err), BST_OK);
    ck_assert_str_eq(buf, "on\n");
}
END_TEST

START_TEST(test_yaml_str_empty_only_quoted_and_allowed)
{
    struct bst_err err = {0};
    char buf[64];
    ck_assert_int_eq(read_str("", 0, buf, sizeof(buf), &err), BST_INVALID_ARGUMENT);
    ck_assert_int_eq(read_str("", 1, buf, sizeof(buf), &err), BST_INVALID_ARGUMENT);
    ck_assert_ptr_nonnull(strstr(err.msg, "write \"\""));
    ck_assert_int_eq(read_str("\"\"", 0, buf, sizeof(buf), &err), BST_INVALID_ARGUMENT);
    ck_assert_ptr_nonnull(strstr(err.msg, "non-empty"));
    ck_assert_int_eq(read_str("\"\"", 1, buf, sizeof(buf), &err), BST_OK);
    ck_assert_str_eq(buf, "");
    ck_assert_int_eq(read_str("[a]", 1, buf, sizeof(buf), &err), BST_INVALID_ARGUMENT);
    ck_assert_str_eq(err.msg, "t.yaml:1:4: expected a string, got a sequence");
}
END_TEST

START_TEST(test_yaml_errf_formats_position)
{
    struct bst_yaml_doc *doc = parse_ok("a:\n  b: 1\n");
    struct bst_err err = {0};
    const struct bst_yaml_node *b = bst_yaml_get(bst_yaml_get(doc->root, "a"), "b");
    ck_assert_int_eq(bst_yaml_errf(&err, BST_NOT_FOUND, doc, b, "no %s", "thing"), BST_NOT_FOUND);
    ck_assert_int_eq(err.code, BST_NOT_FOUND);
    ck_assert_str_eq(err.msg, "t.yaml:2:6: no thing");
    bst_yaml_errf(&err, BST_INVALID_ARGUMENT, doc, NULL, "whole file");
    ck_assert_str_eq(err.msg, "t.yaml: whole file");
    ck_assert_int_eq(bst_yaml_errf(NULL, BST_INTERNAL, doc, b, "x"), BST_INTERNAL);
    bst_yaml_free(doc);
}
END_TEST

/* ---- Table-driven decoding ----------------------------------------------------------------- */

struct cfg {
    char *listen;
    int64_t workers;
    int verbose;
    int mode;
    int64_t timeout_ms;
    int64_t max_body;
    char *cert;
    int64_t handshake_ms;
    int verify;
};

static const char *const modes[] = {"permissive", "require", "off", NULL};

static const struct bst_field tls_fields[] = {
    {.name = "cert",
     .type = BST_F_STRING,
     .offset = offsetof(struct cfg, cert),
     .def = "/etc/bastion/tls.crt"},
    {.name = "handshake_timeout",
     .type = BST_F_DURATION_MS,
     .offset = offsetof(struct cfg, handshake_ms),
     .min = 1,
     .max = 60000,
     .def = "10s"},
    {.name = "verify", .type = BST_F_BOOL, .offset = offsetof(struct cfg, verify), .def = "true"},
    {.name = NULL},
};

static const struct bst_field cfg_fields[] = {
    {.name = "listen",
     .type = BST_F_STRING,
     .offset = offsetof(struct cfg, listen),
     .def = "127.0.0.1:8443"},
    {.name = "workers",
     .type = BST_F_INT,
     .offset = offsetof(struct cfg, workers),
     .min = 1,
     .max = 64,
     .def = "4"},
    {.name = "verbose",
     .type = BST_F_BOOL,
     .offset = offsetof(struct cfg, verbose),
     .def = "false"},
    {.name = "mode",
     .type = BST_F_ENUM,
     .offset = offsetof(struct cfg, mode),
     .enum_names = modes,
     .def = "require"},
    {.name = "timeout",
     .type = BST_F_DURATION_MS,
     .offset = offsetof(struct cfg, timeout_ms),
     .min = 0,
     .max = INT64_MAX,
     .def = "30s"},
    {.name = "max_body",
     .type = BST_F_SIZE,
     .offset = offsetof(struct cfg, max_body),
     .min = 1,
     .max = INT64_MAX,
     .def = "4MiB"},
    {.name = "tls", .type = BST_F_SECTION, .section = tls_fields},
    {.name = NULL},
};

/* Decodes text into c with cfg_fields; c is zeroed first. */
static enum bst_status decode_text(const char *text, struct cfg *c, struct bst_err *err)
{
    struct bst_yaml_doc *doc = parse_ok(text);
    enum bst_status rv;
    memset(c, 0, sizeof(*c));
    rv = bst_yaml_decode(doc, doc->root, cfg_fields, c, err);
    bst_yaml_free(doc);
    return rv;
}

/* Decodes "<key>: <value>" and returns the status; c keeps what was stored. */
static enum bst_status decode_kv(const char *key, const char *value, struct cfg *c,
                                 struct bst_err *err)
{
    char text[256];
    snprintf(text, sizeof(text), "%s: %s\n", key, value);
    return decode_text(text, c, err);
}

START_TEST(test_yaml_decode_applies_defaults)
{
    struct cfg c;
    struct bst_err err = {0};
    memset(&c, 0, sizeof(c));
    ck_assert_int_eq(bst_yaml_decode(NULL, NULL, cfg_fields, &c, &err), BST_OK);
    ck_assert_str_eq(c.listen, "127.0.0.1:8443");
    ck_assert_int_eq(c.workers, 4);
    ck_assert_int_eq(c.verbose, 0);
    ck_assert_int_eq(c.mode, 1);
    ck_assert_int_eq(c.timeout_ms, 30000);
    ck_assert_int_eq(c.max_body, 4 * 1024 * 1024);
    ck_assert_str_eq(c.cert, "/etc/bastion/tls.crt");
    ck_assert_int_eq(c.handshake_ms, 10000);
    ck_assert_int_eq(c.verify, 1);
    bst_yaml_decoded_free(cfg_fields, &c);
    ck_assert_ptr_null(c.listen);
    ck_assert_ptr_null(c.cert);
}
END_TEST

START_TEST(test_yaml_decode_reads_every_type)
{
    struct cfg c;
    struct bst_err err = {0};
    ck_assert_int_eq(decode_text("listen: \"0.0.0.0:9000\"\nworkers: 16\nverbose: true\n"
                                 "mode: \"off\"\ntimeout: 250ms\nmax_body: 64KiB\n"
                                 "tls:\n  cert: /run/tls.crt\n  verify: false\n",
                                 &c, &err),
                     BST_OK);
    ck_assert_str_eq(c.listen, "0.0.0.0:9000");
    ck_assert_int_eq(c.workers, 16);
    ck_assert_int_eq(c.verbose, 1);
    ck_assert_int_eq(c.mode, 2);
    ck_assert_int_eq(c.timeout_ms, 250);
    ck_assert_int_eq(c.max_body, 65536);
    ck_assert_str_eq(c.cert, "/run/tls.crt");
    ck_assert_int_eq(c.handshake_ms, 10000); /* default kept inside a present section */
    ck_assert_int_eq(c.verify, 0);
    bst_yaml_decoded_free(cfg_fields, &c);
}
END_TEST

START_TEST(test_yaml_decode_string_default_is_replaced_without_leak)
{
    struct cfg c;
    struct bst_err err = {0};
    struct bst_yaml_doc *doc = parse_ok("listen: \"[::1]:8443\"\n");

    /* Decoding twice into the same struct (a reload) frees what the first decode stored. */
    memset(&c, 0, sizeof(c));
    ck_assert_int_eq(bst_yaml_decode(doc, doc->root, cfg_fields, &c, &err), BST_OK);
    ck_assert_str_eq(c.listen, "[::1]:8443");
    ck_assert_int_eq(bst_yaml_decode(doc, doc->root, cfg_fields, &c, &err), BST_OK);
    ck_assert_str_eq(c.listen, "[::1]:8443");
    ck_assert_str_eq(c.cert, "/etc/bastion/tls.crt");
    bst_yaml_decoded_free(cfg_fields, &c);
    ck_assert_ptr_null(c.listen);
    bst_yaml_decoded_free(cfg_fields, &c);
    bst_yaml_free(doc);
}
END_TEST

START_TEST(test_yaml_decode_unknown_key_names_position_and_choices)
{
    struct cfg c;
    struct bst_err err = {0};
    ck_assert_int_eq(decode_text("workers: 2\nworkres: 3\n", &c, &err), BST_INVALID_ARGUMENT);
    ck_assert_str_eq(err.msg, "t.yaml:2:1: unknown key 'workres' (expected one of: listen, "
                              "workers, verbose, mode, timeout, max_body, tls)");
    bst_yaml_decoded_free(cfg_fields, &c);
    ck_assert_int_eq(decode_text("tls:\n  key: x\n", &c, &err), BST_INVALID_ARGUMENT);
    ck_assert_str_eq(err.msg, "t.yaml:2:3: unknown key 'key' in 'tls' (expected one of: cert, "
                              "handshake_timeout, verify)");
    bst_yaml_decoded_free(cfg_fields, &c);
}
END_TEST

START_TEST(test_yaml_decode_refuses_wrong_type)
{
    struct cfg c;
    struct bst_err err = {0};
    ck_assert_int_eq(decode_kv("workers", "many", &c, &err), BST_INVALID_ARGUMENT);
    ck_assert_str_eq(err.msg, "t.yaml:1:10: key 'workers': expected an integer (decimal digits "
                              "with an optional '-'), got 'many'");
    bst_yaml_decoded_free(cfg_fields, &c);
    ck_assert_int_eq(decode_kv("workers", "[1]", &c, &err), BST_INVALID_ARGUMENT);
    ck_assert_str_eq(err.msg, "t.yaml:1:10: key 'workers': expected an integer, got a sequence");
    bst_yaml_decoded_free(cfg_fields, &c);
    ck_assert_int_eq(decode_kv("tls", "on", &c, &err), BST_INVALID_ARGUMENT);
    ck_assert_str_eq(err.msg, "t.yaml:1:6: key 'tls': expected a mapping, got a scalar");
    bst_yaml_decoded_free(cfg_fields, &c);
    ck_assert_int_eq(decode_kv("verbose", "yes", &c, &err), BST_INVALID_ARGUMENT);
    ck_assert_ptr_nonnull(strstr(err.msg, "key 'verbose': 'yes' is not accepted"));
    bst_yaml_decoded_free(cfg_fields, &c);
    ck_assert_int_eq(decode_kv("listen", "off", &c, &err), BST_INVALID_ARGUMENT);
    ck_assert_ptr_nonnull(strstr(err.msg, "quote it"));
    bst_yaml_decoded_free(cfg_fields, &c);
    ck_assert_int_eq(decode_kv("listen", "\"\"", &c, &err), BST_INVALID_ARGUMENT);
    bst_yaml_decoded_free(cfg_fields, &c);
}
END_TEST

START_TEST(test_yaml_decode_root_must_be_a_mapping)
{
    struct cfg c;
    struct bst_err err = {0};
    ck_assert_int_eq(decode_text("- a\n", &c, &err), BST_INVALID_ARGUMENT);
    ck_assert_str_eq(err.msg, "t.yaml:1:1: expected a mapping, got a sequence");
    bst_yaml_decoded_free(cfg_fields, &c);
}
END_TEST

START_TEST(test_yaml_decode_refuses_out_of_range)
{
    struct cfg c;
    struct bst_err err = {0};
    ck_assert_int_eq(decode_kv("workers", "65", &c, &err), BST_INVALID_ARGUMENT);
    ck_assert_str_eq(err.msg, "t.yaml:1:10: key 'workers': 65 is out of range (allowed 1 to 64)");
    bst_yaml_decoded_free(cfg_fields, &c);
    ck_assert_int_eq(decode_kv("workers", "0", &c, &err), BST_INVALID_ARGUMENT);
    bst_yaml_decoded_free(cfg_fields, &c);
    ck_assert_int_eq(decode_text("tls:\n  handshake_timeout: 2m\n", &c, &err),
                     BST_INVALID_ARGUMENT);
    ck_assert_str_eq(err.msg, "t.yaml:2:22: key 'tls.handshake_timeout': 2m (120000 ms) is out of "
                              "range (allowed 1 to 60000 ms)");
    bst_yaml_decoded_free(cfg_fields, &c);
}
END_TEST

START_TEST(test_yaml_decode_nested_section)
{
    struct cfg c;
    struct bst_err err = {0};
    ck_assert_int_eq(decode_text("tls: {handshake_timeout: 1500, cert: 'a b'}\n", &c, &err),
                     BST_OK);
    ck_assert_int_eq(c.handshake_ms, 1500);
    ck_assert_str_eq(c.cert, "a b");
    ck_assert_int_eq(c.verify, 1);
    ck_assert_int_eq(c.workers, 4);
    bst_yaml_decoded_free(cfg_fields, &c);
    ck_assert_int_eq(decode_text("tls: {verify: maybe}\n", &c, &err), BST_INVALID_ARGUMENT);
    ck_assert_str_eq(err.msg, "t.yaml:1:15: key 'tls.verify': expected true or false, got 'maybe'");
    bst_yaml_decoded_free(cfg_fields, &c);
}
END_TEST

struct req {
    char *token;
    int64_t port;
    char *ca;
};

static const struct bst_field req_auth_fields[] = {
    {.name = "ca", .type = BST_F_STRING, .offset = offsetof(struct req, ca), .required = 1},
    {.name = NULL},
};

static const struct bst_field req_fields[] = {
    {.name = "token",
     .type = BST_F_STRING,
     .offset = offsetof(struct req, token),
     .required = 1,
     .def = "ignored"},
    {.name = "port",
     .type = BST_F_INT,
     .offset = offsetof(struct req, port),
     .min = 1,
     .max = 65535,
     .def = "8443"},
    {.name = "auth", .type = BST_F_SECTION, .section = req_auth_fields},
    {.name = NULL},
};

START_TEST(test_yaml_decode_required_key_missing)
{
    struct req r;
    struct bst_err err = {0};
    struct bst_yaml_doc *doc = parse_ok("# config\nport: 80\nauth:\n  ca: /ca.pem\n");

    memset(&r, 0, sizeof(r));
    ck_assert_int_eq(bst_yaml_decode(doc, doc->root, req_fields, &r, &err), BST_INVALID_ARGUMENT);
    ck_assert_str_eq(err.msg, "t.yaml:2:1: missing required key 'token'");
    ck_assert_ptr_null(r.token); /* a required key's default never applies */
    bst_yaml_decoded_free(req_fields, &r);
    bst_yaml_free(doc);

    doc = parse_ok("token: \"abc\"\nport: 80\n");
    memset(&r, 0, sizeof(r));
    ck_assert_int_eq(bst_yaml_decode(doc, doc->root, req_fields, &r, &err), BST_INVALID_ARGUMENT);
    ck_assert_str_eq(err.msg, "t.yaml:1:1: missing required key 'auth.ca'");
    bst_yaml_decoded_free(req_fields, &r);
    bst_yaml_free(doc);

    doc = parse_ok("token: \"abc\"\nauth:\n  {}\n");
    memset(&r, 0, sizeof(r));
    ck_assert_int_eq(bst_yaml_decode(doc, doc->root, req_fields, &r, &err), BST_INVALID_ARGUMENT);
    ck_assert_str_eq(err.msg, "t.yaml:3:3: missing required key 'auth.ca'");
    bst_yaml_decoded_free(req_fields, &r);
    ck_assert_ptr_null(r.token);
    bst_yaml_free(doc);

    doc = parse_ok("token: abc\nauth: {ca: x}\n");
    memset(&r, 0, sizeof(r));
    ck_assert_int_eq(bst_yaml_decode(doc, doc->root, req_fields, &r, &err), BST_OK);
    ck_assert_str_eq(r.token, "abc");
    ck_assert_str_eq(r.ca, "x");
    ck_assert_int_eq(r.port, 8443);
    bst_yaml_decoded_free(req_fields, &r);
    bst_yaml_free(doc);
}
END_TEST

START_TEST(test_yaml_decode_durations_with_units)
{
    static const struct {
        const char *text;
        int64_t ms;
    } ok[] = {
        {"250ms", 250},  {"10s", 10000}, {"5m", 300000},
        {"1h", 3600000}, {"1500", 1500}, {"\"10s\"", 10000},
        {"'0ms'", 0},    {"0", 0},       {"2562047788015h", INT64_C(2562047788015) * 3600000}};
    struct cfg c;
    struct bst_err err = {0};

    for (size_t i = 0; i < sizeof(ok) / sizeof(ok[0]); i++) {
        ck_assert_msg(decode_kv("timeout", ok[i].text, &c, &err) == BST_OK, "%s: %s", ok[i].text,
                      err.msg);
        ck_assert_msg(c.timeout_ms == ok[i].ms, "%s gave %lld", ok[i].text,
                      (long long)c.timeout_ms);
        bst_yaml_decoded_free(cfg_fields, &c);
    }
}
END_TEST

START_TEST(test_yaml_decode_refuses_bad_durations)
{
    static const char *const bad[] = {"10 s",  "10d",      "1.5s", "-5s",  "s", "10S",
                                      "10sec", "\"1500\"", "010",  "true", "",  NULL};
    struct cfg c;
    struct bst_err err = {0};

    for (size_t i = 0; bad[i] != NULL; i++) {
        ck_assert_msg(decode_kv("timeout", bad[i], &c, &err) == BST_INVALID_ARGUMENT,
                      "'%s' was accepted", bad[i]);
        /* An empty value sits right after the colon, at 1:9. */
        ck_assert_msg(strncmp(err.msg, "t.yaml:1:", 9) == 0, "%s", err.msg);
        ck_assert_msg(strstr(err.msg, ": key 'timeout': ") != NULL, "%s", err.msg);
        bst_yaml_decoded_free(cfg_fields, &c);
    }
    ck_assert_int_eq(decode_kv("timeout", "10d", &c, &err), BST_INVALID_ARGUMENT);
    ck_assert_ptr_nonnull(strstr(err.msg, "ms, s, m, h"));
    bst_yaml_decoded_free(cfg_fields, &c);
}
END_TEST

START_TEST(test_yaml_decode_duration_overflow_is_refused)
{
    struct cfg c;
    struct bst_err err = {0};

    /* Fits in int64 as ms (3.6e17) but is outside the field's bounds. */
    ck_assert_int_eq(decode_text("tls:\n  handshake_timeout: 99999999999h\n", &c, &err),
                     BST_INVALID_ARGUMENT);
    ck_assert_ptr_nonnull(strstr(err.msg, "out of range"));
    bst_yaml_decoded_free(cfg_fields, &c);
    /* Overflows int64 once multiplied. */
    ck_assert_int_eq(decode_kv("timeout", "2562047788016h", &c, &err), BST_INVALID_ARGUMENT);
    ck_assert_ptr_nonnull(strstr(err.msg, "too large"));
    bst_yaml_decoded_free(cfg_fields, &c);
    /* Overflows before any unit applies. */
    ck_assert_int_eq(decode_kv("timeout", "99999999999999999999999ms", &c, &err),
                     BST_INVALID_ARGUMENT);
    ck_assert_ptr_nonnull(strstr(err.msg, "too large"));
    bst_yaml_decoded_free(cfg_fields, &c);
    ck_assert_int_eq(decode_kv("timeout", "9223372036854775808", &c, &err), BST_INVALID_ARGUMENT);
    bst_yaml_decoded_free(cfg_fields, &c);
    ck_assert_int_eq(decode_kv("timeout", "9223372036854775807", &c, &err), BST_OK);
    ck_assert(c.timeout_ms == INT64_MAX);
    bst_yaml_decoded_free(cfg_fields, &c);
}
END_TEST

START_TEST(test_yaml_decode_sizes_with_binary_units)
{
    static const struct {
        const char *text;
        int64_t bytes;
    } ok[] = {{"512", 512},
              {"512B", 512},
              {"64KiB", 65536},
              {"4MiB", 4194304},
              {"1GiB", INT64_C(1073741824)},
              {"'8GiB'", INT64_C(8589934592)},
              {"8589934591GiB", INT64_C(8589934591) << 30}};
    struct cfg c;
    struct bst_err err = {0};

    for (size_t i = 0; i < sizeof(ok) / sizeof(ok[0]); i++) {
        ck_assert_msg(decode_kv("max_body", ok[i].text, &c, &err) == BST_OK, "%s: %s", ok[i].text,
                      err.msg);
        ck_assert_msg(c.max_body == ok[i].bytes, "%s gave %lld", ok[i].text, (long long)c.max_body);
        bst_yaml_decoded_free(cfg_fields, &c);
    }
}
END_TEST

START_TEST(test_yaml_decode_refuses_decimal_size_units_and_overflow)
{
    static const char *const bad[] = {"1KB", "1MB", "1kib", "1 MiB",         "1.5MiB",
                                      "-1",  "0",   "MiB",  "8589934592GiB", "99999999999999999999",
                                      NULL};
    struct cfg c;
    struct bst_err err = {0};

    for (size_t i = 0; bad[i] != NULL; i++) {
        ck_assert_msg(decode_kv("max_body", bad[i], &c, &err) == BST_INVALID_ARGUMENT,
                      "'%s' was accepted", bad[i]);
        bst_yaml_decoded_free(cfg_fields, &c);
    }
    ck_assert_int_eq(decode_kv("max_body", "1MB", &c, &err), BST_INVALID_ARGUMENT);
    ck_assert_ptr_nonnull(strstr(err.msg, "KiB"));
    ck_assert_ptr_nonnull(strstr(err.msg, "decimal units such as KB or MB are not accepted"));
    bst_yaml_decoded_free(cfg_fields, &c);
    ck_assert_int_eq(decode_kv("max_body", "8589934592GiB", &c, &err), BST_INVALID_ARGUMENT);
    ck_assert_ptr_nonnull(strstr(err.msg, "too large"));
    bst_yaml_decoded_free(cfg_fields, &c);
}
END_TEST

START_TEST(test_yaml_decode_enum_by_name)
{
    struct cfg c;
    struct bst_err err = {0};
    ck_assert_int_eq(decode_kv("mode", "permissive", &c, &err), BST_OK);
    ck_assert_int_eq(c.mode, 0);
    bst_yaml_decoded_free(cfg_fields, &c);
    ck_assert_int_eq(decode_kv("mode", "'require'", &c, &err), BST_OK);
    ck_assert_int_eq(c.mode, 1);
    bst_yaml_decoded_free(cfg_fields, &c);
}
END_TEST

START_TEST(test_yaml_decode_unknown_enum_lists_names)
{
    struct cfg c;
    struct bst_err err = {0};
    ck_assert_int_eq(decode_kv("mode", "strict", &c, &err), BST_INVALID_ARGUMENT);
    ck_assert_str_eq(err.msg, "t.yaml:1:7: key 'mode': unknown value 'strict' (expected one of: "
                              "permissive, require, off)");
    bst_yaml_decoded_free(cfg_fields, &c);
    ck_assert_int_eq(decode_kv("mode", "Require", &c, &err), BST_INVALID_ARGUMENT);
    bst_yaml_decoded_free(cfg_fields, &c);
}
END_TEST

START_TEST(test_yaml_decode_failure_leaves_strings_for_decoded_free)
{
    struct cfg c;
    struct bst_err err = {0};
    ck_assert_int_eq(decode_text("listen: \"h:1\"\ntls: {cert: c.pem}\nworkers: 0\n", &c, &err),
                     BST_INVALID_ARGUMENT);
    ck_assert_str_eq(c.listen, "h:1");
    ck_assert_str_eq(c.cert, "c.pem");
    bst_yaml_decoded_free(cfg_fields, &c);
    ck_assert_ptr_null(c.listen);
    ck_assert_ptr_null(c.cert);
}
END_TEST

START_TEST(test_yaml_decode_invalid_default_is_internal_error)
{
    static const struct bst_field bad_fields[] = {
        {.name = "n", .type = BST_F_INT, .offset = 0, .min = 0, .max = 10, .def = "11"},
        {.name = NULL},
    };
    int64_t n = 0;
    struct bst_err err = {0};
    ck_assert_int_eq(bst_yaml_decode(NULL, NULL, bad_fields, &n, &err), BST_INTERNAL);
    ck_assert_ptr_nonnull(strstr(err.msg, "key 'n': built-in default '11' is invalid"));
}
END_TEST

/* ---- Files --------------------------------------------------------------------------------- */

static char tmpdir[64];

static void files_setup(void)
{
    snprintf(tmpdir, sizeof(tmpdir), "/tmp/check_yaml.XXXXXX");
    ck_assert_ptr_nonnull(mkdtemp(tmpdir));
}

static void files_teardown(void)
{
    static const char *const names[] = {"open.yaml", "secret.yaml", "plain.yaml"};
    char p[128];
    for (size_t i = 0; i < sizeof(names) / sizeof(names[0]); i++) {
        snprintf(p, sizeof(p), "%s/%s", tmpdir, names[i]);
        unlink(p);
    }
    rmdir(tmpdir);
}

static void write_file(const char *name, const char *text, mode_t mode, char *path, size_t size)
{
    int fd;
    snprintf(path, size, "%s/%s", tmpdir, name);
    fd = open(path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, mode);
    ck_assert_int_ge(fd, 0);
    ck_assert_int_eq(fchmod(fd, mode), 0); /* the umask may have cleared bits */
    ck_assert_int_eq(write(fd, text, strlen(text)), (ssize_t)strlen(text));
    ck_assert_int_eq(close(fd), 0);
}

START_TEST(test_yaml_load_secret_refuses_world_readable_file)
{
    char path[128];
    struct bst_yaml_doc *doc = (struct bst_yaml_doc *)1;
    struct bst_err err = {0};

    write_file("open.yaml", "key: hunter2\n", 0644, path, sizeof(path));
    ck_assert_int_eq(bst_yaml_load_secret(path, NULL, &doc, &err), BST_PERMISSION_DENIED);
    ck_assert_ptr_null(doc);
    ck_assert_ptr_nonnull(strstr(err.msg, "chmod 600"));
}
END_TEST

START_TEST(test_yaml_load_secret_reads_private_file)
{
    char path[128];
    struct bst_yaml_doc *doc = NULL;
    struct bst_err err = {0};

    write_file("secret.yaml", "key: \"hunter2\"\n", 0600, path, sizeof(path));
    ck_assert_int_eq(bst_yaml_load_secret(path, NULL, &doc, &err), BST_OK);
    ck_assert_str_eq(doc->name, path);
    ck_assert_str_eq(bst_yaml_get(doc->root, "key")->value, "hunter2");
    bst_yaml_free(doc);
}
END_TEST

START_TEST(test_yaml_load_file_reads_and_names_errors_by_path)
{
    char path[128], prefix[160];
    struct bst_yaml_doc *doc = NULL;
    struct bst_err err = {0};
    struct bst_yaml_limits lim;

    write_file("plain.yaml", "a: 1\nb: &x 2\n", 0644, path, sizeof(path));
    ck_assert_int_eq(bst_yaml_load_file(path, NULL, &doc, &err), BST_INVALID_ARGUMENT);
    ck_assert_ptr_null(doc);
    snprintf(prefix, sizeof(prefix), "%s:2:4: anchors", path);
    ck_assert_msg(strncmp(err.msg, prefix, strlen(prefix)) == 0, "%s", err.msg);

    write_file("plain.yaml", "a: 1\n", 0644, path, sizeof(path));
    ck_assert_int_eq(bst_yaml_load_file(path, NULL, &doc, &err), BST_OK);
    ck_assert_str_eq(bst_yaml_get(doc->root, "a")->value, "1");
    bst_yaml_free(doc);

    bst_yaml_limits_default(&lim);
    lim.max_bytes = 4;
    ck_assert_int_eq(bst_yaml_load_file(path, &lim, &doc, &err), BST_RESOURCE_EXHAUSTED);
    ck_assert_ptr_null(doc);

    snprintf(path, sizeof(path), "%s/missing.yaml", tmpdir);
    ck_assert_int_eq(bst_yaml_load_file(path, NULL, &doc, &err), BST_NOT_FOUND);
    ck_assert_ptr_null(doc);
}
END_TEST

static Suite *yaml_suite(void)
{
    Suite *s = suite_create("common");
    TCase *parse = tcase_create("yaml_parse");
    TCase *readers = tcase_create("yaml_readers");
    TCase *decode = tcase_create("yaml_decode");
    TCase *files = tcase_create("yaml_files");

    tcase_add_test(parse, test_yaml_builds_tree_with_positions);
    tcase_add_test(parse, test_yaml_get_returns_null_for_non_map);
    tcase_add_test(parse, test_yaml_lone_document_marker_is_one_empty_document);
    tcase_add_test(parse, test_yaml_alias_is_refused);
    tcase_add_test(parse, test_yaml_anchor_is_refused);
    tcase_add_test(parse, test_yaml_cycle_is_refused);
    tcase_add_test(parse, test_yaml_billion_laughs_is_refused_quickly);
    tcase_add_test(parse, test_yaml_tags_are_refused);
    tcase_add_test(parse, test_yaml_duplicate_key_is_refused);
    tcase_add_test(parse, test_yaml_earliest_duplicate_key_is_reported);
    tcase_add_test(parse, test_yaml_large_map_duplicate_detection_is_not_quadratic);
    tcase_add_test(parse, test_yaml_non_scalar_key_is_refused);
    tcase_add_test(parse, test_yaml_two_documents_are_refused);
    tcase_add_test(parse, test_yaml_empty_file_is_refused);
    tcase_add_test(parse, test_yaml_comments_only_is_refused);
    tcase_add_test(parse, test_yaml_nul_byte_is_refused);
    tcase_add_test(parse, test_yaml_escaped_nul_in_scalar_is_refused);
    tcase_add_test(parse, test_yaml_invalid_utf8_is_refused);
    tcase_add_test(parse, test_yaml_valid_multibyte_utf8_is_accepted);
    tcase_add_test(parse, test_yaml_control_character_is_refused_with_position);
    tcase_add_test(parse, test_yaml_syntax_error_has_position);
    tcase_add_test(parse, test_yaml_depth_32_is_accepted);
    tcase_add_test(parse, test_yaml_depth_33_is_refused);
    tcase_add_test(parse, test_yaml_depth_100000_flow_is_refused_quickly);
    tcase_add_test(parse, test_yaml_depth_100000_block_is_refused_quickly);
    tcase_add_test(parse, test_yaml_depth_limit_is_configurable);
    tcase_add_test(parse, test_yaml_input_over_max_bytes_is_refused_before_parsing);
    tcase_add_test(parse, test_yaml_too_many_nodes_is_refused);
    tcase_add_test(parse, test_yaml_long_scalar_is_refused);
    suite_add_tcase(s, parse);

    tcase_add_test(readers, test_yaml_bool_accepts_only_plain_true_false);
    tcase_add_test(readers, test_yaml_bool_refuses_yaml11_spellings);
    tcase_add_test(readers, test_yaml_bool_refuses_quoted_and_other_values);
    tcase_add_test(readers, test_yaml_int_reads_decimal_within_bounds);
    tcase_add_test(readers, test_yaml_int_refuses_out_of_bounds_and_overflow);
    tcase_add_test(readers, test_yaml_int_refuses_non_decimal_forms);
    tcase_add_test(readers, test_yaml_str_refuses_unquoted_yaml11_words);
    tcase_add_test(readers, test_yaml_str_accepts_quoted_yaml11_words);
    tcase_add_test(readers, test_yaml_str_empty_only_quoted_and_allowed);
    tcase_add_test(readers, test_yaml_errf_formats_position);
    suite_add_tcase(s, readers);

    tcase_add_test(decode, test_yaml_decode_applies_defaults);
    tcase_add_test(decode, test_yaml_decode_reads_every_type);
    tcase_add_test(decode, test_yaml_decode_string_default_is_replaced_without_leak);
    tcase_add_test(decode, test_yaml_decode_unknown_key_names_position_and_choices);
    tcase_add_test(decode, test_yaml_decode_refuses_wrong_type);
    tcase_add_test(decode, test_yaml_decode_root_must_be_a_mapping);
    tcase_add_test(decode, test_yaml_decode_refuses_out_of_range);
    tcase_add_test(decode, test_yaml_decode_nested_section);
    tcase_add_test(decode, test_yaml_decode_required_key_missing);
    tcase_add_test(decode, test_yaml_decode_durations_with_units);
    tcase_add_test(decode, test_yaml_decode_refuses_bad_durations);
    tcase_add_test(decode, test_yaml_decode_duration_overflow_is_refused);
    tcase_add_test(decode, test_yaml_decode_sizes_with_binary_units);
    tcase_add_test(decode, test_yaml_decode_refuses_decimal_size_units_and_overflow);
    tcase_add_test(decode, test_yaml_decode_enum_by_name);
    tcase_add_test(decode, test_yaml_decode_unknown_enum_lists_names);
    tcase_add_test(decode, test_yaml_decode_failure_leaves_strings_for_decoded_free);
    tcase_add_test(decode, test_yaml_decode_invalid_default_is_internal_error);
    suite_add_tcase(s, decode);

    tcase_add_checked_fixture(files, files_setup, files_teardown);
    tcase_add_test(files, test_yaml_load_secret_refuses_world_readable_file);
    tcase_add_test(files, test_yaml_load_secret_reads_private_file);
    tcase_add_test(files, test_yaml_load_file_reads_and_names_errors_by_path);
    suite_add_tcase(s, files);
    return s;
}

int main(void)
{
    SRunner *sr = srunner_create(yaml_suite());
    int failed;

    srunner_run_all(sr, CK_NORMAL);
    failed = srunner_ntests_failed(sr);
    srunner_free(sr);
    return failed == 0 ? EXIT_SUCCESS : EXIT_FAILURE;
}
