/* Fuzz target for the kube/ parsers of peer input: create_resource manifests (YAML or JSON,
 * kube/manifest.c) and label selectors (kube/selector.c). The first byte picks the parser.
 * Beyond "no crash, no leak" it checks the promises callers rely on:
 *   - an accepted manifest is a JSON object whose kind is the one reported, whose
 *     metadata.namespace is the argument, and which is accepted again when written back as
 *     JSON (the checks are a property of the tree, not of the syntax it came in);
 *   - a refusal is INVALID_ARGUMENT (or RESOURCE_EXHAUSTED) with a message, and never returns
 *     an object;
 *   - a selector that parses matches deterministically, and kube_selector_ok agrees. */
#include "manifest.h"
#include "selector.h"

#include <stdint.h>
#include <stdlib.h>
#include <string.h>

static const char *const kinds[] = {"Pod",     "Deployment", "ReplicaSet",
                                    "Service", "ConfigMap",  "Secret"};

static void check_manifest(const char *text, size_t len)
{
    struct kube_manifest_limits lim = {0, 100};
    enum kube_kind kind;
    json_t *obj = NULL;
    struct bst_err err = {BST_OK, ""};
    enum bst_status rv = kube_manifest_parse(text, len, "default", &lim, &kind, &obj, &err);

    if (rv != BST_OK) {
        if (obj != NULL || err.msg[0] == '\0' ||
            (rv != BST_INVALID_ARGUMENT && rv != BST_RESOURCE_EXHAUSTED))
            abort();
        return;
    }
    {
        const json_t *meta = json_object_get(obj, "metadata");
        const char *ns = json_string_value(json_object_get(meta, "namespace"));
        const char *k = json_string_value(json_object_get(obj, "kind"));
        char *again;
        json_t *obj2 = NULL;
        enum kube_kind kind2;

        if (!json_is_object(obj) || ns == NULL || strcmp(ns, "default") != 0 || k == NULL ||
            (unsigned)kind >= sizeof(kinds) / sizeof(kinds[0]) || strcmp(kinds[kind], k) != 0)
            abort();
        again = json_dumps(obj, JSON_COMPACT);
        if (again == NULL)
            abort();
        if (kube_manifest_parse(again, strlen(again), "default", &lim, &kind2, &obj2, &err) !=
                BST_OK ||
            kind2 != kind || !json_equal(obj, obj2))
            abort();
        free(again);
        json_decref(obj2);
    }
    json_decref(obj);
}

static void check_selector(const char *text)
{
    static struct kube_kv labels[] = {{"app", "web"}, {"tier", "db"}, {"n", "7"}, {"e", ""}};
    struct kube_selector *s = NULL;
    struct bst_err err;
    enum bst_status rv = kube_selector_parse(text, &s, &err);

    if ((rv == BST_OK) != kube_selector_ok(text))
        abort();
    if (rv != BST_OK) {
        if (s != NULL)
            abort();
        return;
    }
    if (kube_selector_matches(s, labels, 4) != kube_selector_matches(s, labels, 4))
        abort();
    kube_selector_free(s);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    char *text;
    if (size == 0)
        return 0;
    if ((text = malloc(size)) == NULL)
        return 0;
    memcpy(text, data + 1, size - 1);
    text[size - 1] = '\0';
    if (data[0] % 2 == 0)
        check_manifest(text, size - 1);
    else
        check_selector(text);
    free(text);
    return 0;
}
