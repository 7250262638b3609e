/* Fuzz target for common/pbjson.c. The first byte picks the mode:
 *   even: the rest is JSON, decoded as a test message with every protobuf type
 *         (tests/unit/common/pbjson_test.proto) and as a CallToolRequest;
 *   odd:  the rest is newline-separated key=value pairs, decoded the same way.
 * Beyond "no crash, no leak" it checks the promises callers rely on:
 *   - decoding through a capped allocator never exceeds it and returns every byte;
 *   - what was accepted encodes to JSON that decodes again, and that encoding is stable
 *     (JSON -> message -> JSON -> message -> JSON gives the same text twice);
 *   - an accepted message also passes the protobuf validation a peer's wire message gets
 *     (valid UTF-8, declared enums), so JSON is no way around it;
 *   - the schema of each type is produced. */
#include "pbcheck.h"
#include "pbjson.h"

#include "bastion/v1/mcp.pb-c.h"
#include "pbjson_test.pb-c.h"

#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#define BUDGET (1024 * 1024)
#define MAX_PAIRS 64

static char *canon(const json_t *j)
{
    return json_dumps(j, JSON_COMPACT | JSON_SORT_KEYS);
}

static void check_accepted(const ProtobufCMessageDescriptor *d, ProtobufCMessage *m)
{
    struct bst_err err;
    json_t *j1 = bst_pbjson_encode(m, NULL, NULL, 0), *j2;
    ProtobufCMessage *again = NULL;
    char *t1, *t2;

    if (j1 == NULL || bst_pb_validate(m, &err) != BST_OK)
        abort();
    if (bst_pbjson_decode(d, j1, NULL, &again, &err) != BST_OK)
        abort();
    j2 = bst_pbjson_encode(again, NULL, NULL, 0);
    t1 = canon(j1);
    t2 = j2 != NULL ? canon(j2) : NULL;
    if (t1 == NULL || t2 == NULL || strcmp(t1, t2) != 0)
        abort();
    free(t1);
    free(t2);
    json_decref(j1);
    json_decref(j2);
    protobuf_c_message_free_unpacked(again, NULL);
}

static void finish(const ProtobufCMessageDescriptor *d, struct bst_pballoc *a, enum bst_status rv,
                   ProtobufCMessage *m)
{
    if (rv == BST_OK) {
        check_accepted(d, m);
        protobuf_c_message_free_unpacked(m, &a->base);
    } else if (m != NULL || (rv != BST_INVALID_ARGUMENT && rv != BST_RESOURCE_EXHAUSTED)) {
        abort();
    }
    if (a->used != 0 || a->peak > a->cap)
        abort();
}

static void fuzz_json(const ProtobufCMessageDescriptor *d, const json_t *j)
{
    struct bst_pballoc a;
    struct bst_err err;
    ProtobufCMessage *m = NULL;

    enum bst_status rv;

    bst_pballoc_init(&a, BUDGET);
    rv = bst_pbjson_decode(d, j, &a.base, &m, &err);
    finish(d, &a, rv, m);
}

static void fuzz_kv(const ProtobufCMessageDescriptor *d, char **pairs, size_t n)
{
    struct bst_pballoc a;
    struct bst_err err;
    ProtobufCMessage *m = NULL;

    enum bst_status rv;

    bst_pballoc_init(&a, BUDGET);
    rv = bst_pbjson_decode_kv(d, pairs, n, &a.base, &m, &err);
    finish(d, &a, rv, m);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    const ProtobufCMessageDescriptor *types[] = {&bastion__test__everything__descriptor,
                                                 &bastion__v1__call_tool_request__descriptor};
    if (size == 0)
        return 0;
    if (data[0] % 2 == 0) {
        json_error_t e;
        json_t *j = json_loadb((const char *)data + 1, size - 1,
                               JSON_REJECT_DUPLICATES | JSON_ALLOW_NUL, &e);
        if (j != NULL) {
            for (size_t i = 0; i < sizeof(types) / sizeof(types[0]); i++)
                fuzz_json(types[i], j);
            json_decref(j);
        }
    } else {
        char *text = malloc(size), *pairs[MAX_PAIRS], *p;
        size_t n = 0;
        if (text == NULL)
            return 0;
        memcpy(text, data + 1, size - 1);
        text[size - 1] = '\0';
        for (p = text; n < MAX_PAIRS;) {
            char *nl = strchr(p, '\n');
            pairs[n++] = p;
            if (nl == NULL)
                break;
            *nl = '\0';
            p = nl + 1;
        }
        for (size_t i = 0; i < sizeof(types) / sizeof(types[0]); i++)
            fuzz_kv(types[i], pairs, n);
        free(text);
    }
    for (size_t i = 0; i < sizeof(types) / sizeof(types[0]); i++) {
        json_t *s = bst_pbjson_schema(types[i], NULL, NULL);
        if (s == NULL)
            abort();
        json_decref(s);
    }
    return 0;
}
