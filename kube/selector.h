/* Kubernetes label selectors, parsed strictly the way the API server parses them
 * (k8s.io/apimachinery/pkg/labels): requirements separated by commas, each one of
 *   key  !key  key=value  key==value  key!=value  key in (a,b)  key notin (a,b)  key>1  key<1
 * with keys and values checked as label keys and values. "" selects everything. Anything else
 * is BST_INVALID_ARGUMENT with the byte position named. Selectors come from peers: the input is
 * capped, parsing is linear, and errors quote no input. */
#ifndef BASTION_KUBE_SELECTOR_H
#define BASTION_KUBE_SELECTOR_H

#include "status.h"

#include <stddef.h>

/* A key and a value (labels, annotations, config data). */
struct kube_kv {
    char *key;
    char *value;
};

#define KUBE_SELECTOR_MAX_BYTES 1024
#define KUBE_SELECTOR_MAX_REQUIREMENTS 32
#define KUBE_SELECTOR_MAX_VALUES 64

struct kube_selector;

/* Parses s. On success *out is owned by the caller (kube_selector_free); an empty or all-blank
 * s gives a selector that matches everything. Returns BST_OK, BST_INVALID_ARGUMENT ("label
 * selector: ... at position N") or BST_RESOURCE_EXHAUSTED. */
enum bst_status kube_selector_parse(const char *s, struct kube_selector **out, struct bst_err *err);

/* Returns 1 if the n labels satisfy every requirement of sel (NULL matches everything). */
int kube_selector_matches(const struct kube_selector *sel, const struct kube_kv *labels, size_t n);

/* Returns 1 if s parses as a selector (for syntax checks that need no detail). */
int kube_selector_ok(const char *s);

/* Renders a matchLabels map as a selector ("app=web,tier=db") into buf; returns 0, or -1 if it
 * does not fit. */
int kube_selector_format(const struct kube_kv *labels, size_t n, char *buf, size_t len);

/* NULL is a no-op. */
void kube_selector_free(struct kube_selector *sel);

#endif
