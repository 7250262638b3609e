/* Authorization: a YAML RBAC policy (roles, bindings, tenants, deny rules) compiled at load time
 * into an immutable object that answers "may this principal use this permission in this
 * namespace?" with no allocation and no I/O, plus a reloadable holder, explain and lint.
 *
 * The library knows nothing of HTTP/2 or of the tool catalogue: the caller passes the list of
 * permissions its tools use (the catalogue's) at load time, and a policy naming any other
 * permission is refused. Semantics, with examples, are in docs/security.md ("Authorization"):
 *
 *   1. a namespace, when given, must be a DNS-1123 label, else DENY;
 *   2. tenants confine before any role: outside the tenant's namespaces, DENY;
 *   3. deny rules beat every allow;
 *   4. a role bound to the principal (or its carried permissions) allows;
 *   5. otherwise DENY ("no rule matched").
 *
 * A namespace of NULL means cluster scope or all namespaces at once and needs a grant with no
 * namespace restriction; "" is an invalid namespace, never "all". */
#ifndef BASTION_RBAC_RBAC_H
#define BASTION_RBAC_RBAC_H

#include "decision.h"
#include "principal.h"
#include "status.h"

#include <stddef.h>
#include <stdio.h>

/* Caps on a policy (beyond the strict YAML reader's 1 MiB / depth 32 / 100 000 nodes). */
#define RBAC_MAX_KNOWN 1024     /* permissions passed by the caller */
#define RBAC_MAX_ROLES 10000    /* also bindings */
#define RBAC_MAX_RULES 1000     /* deny rules, tenants */
#define RBAC_MAX_LIST 1024      /* entries in one list (permissions, namespaces, subjects) */
#define RBAC_MAX_NAME 63        /* role, binding, tenant and deny rule names */
#define RBAC_MAX_SUBJECT 1024   /* bytes in one subject value (a SPIFFE URI, a user name) */
#define RBAC_MAX_PERMISSION 127 /* bytes in one permission name */

/* A compiled policy: immutable after load, so any number of threads may call rbac_decide() on
 * it at once. */
struct rbac_policy;

/* Loads and compiles the policy at path through the strict YAML reader. known lists the n_known
 * permissions the caller's tools use (`k8s:<resource>:<verb>`, no wildcards; repeats are fine); the
 * policy may name only these and wildcards that match at least one of them. The list is copied.
 * On success *out is owned by the caller (rbac_policy_free). Returns BST_OK;
 * BST_INVALID_ARGUMENT with err->msg "path:line:col: what is wrong" for a bad policy, or
 * without a position for a bad known list; BST_RESOURCE_EXHAUSTED for a size limit or out of
 * memory; BST_NOT_FOUND / BST_PERMISSION_DENIED / BST_INTERNAL when the file cannot be read. */
enum bst_status rbac_policy_load(const char *path, const char *const *known, size_t n_known,
                                 struct rbac_policy **out, struct bst_err *err);

/* Same as rbac_policy_load for buf[0..len); name is used in messages (tests, fuzzing). */
enum bst_status rbac_policy_parse(const char *name, const char *buf, size_t len,
                                  const char *const *known, size_t n_known,
                                  struct rbac_policy **out, struct bst_err *err);

/* Frees a policy. NULL is a no-op. */
void rbac_policy_free(struct rbac_policy *p);

/* Counts of what a policy holds (for logs and the tool). Any pointer may be NULL. */
void rbac_policy_stats(const struct rbac_policy *p, size_t *roles, size_t *bindings, size_t *denies,
                       size_t *tenants);

/* Decides whether who may use permission in namespace_ (NULL = cluster scope / all namespaces).
 * Fills *out (verdict, the deciding rule, one sentence) and returns out->verdict, which is
 * BST_VERDICT_ALLOW or BST_VERDICT_DENY, never NONE. Costs O(bindings and roles bound to the
 * principal + deny rules that name it or the permission); allocates nothing; thread-safe. Any
 * NULL argument other than namespace_ is a DENY. Text copied from the request into out->reason
 * is sanitised (no control characters) and truncated. */
enum bst_verdict rbac_decide(const struct rbac_policy *p, const struct bst_principal *who,
                             const char *permission, const char *namespace_,
                             struct bst_decision *out);

/* Writes to out, for a human, every step of the decision for this request: namespace
 * validation, each tenant, deny rule and binding (with its roles) considered and why it matched
 * or not, carried permissions, and the final verdict and rule, which are those of
 * rbac_decide(). Returns the verdict. */
enum bst_verdict rbac_explain(const struct rbac_policy *p, const struct bst_principal *who,
                              const char *permission, const char *namespace_, FILE *out);

/* Writes one line per finding to out: roles no binding uses, permission entries that match no
 * permission in known (a list narrower than the one the policy was loaded with, e.g. another
 * server build's), deny rules that overlap another deny rule, bindings whose namespaces leave a
 * role nothing, permissions in known that no role grants (notes, not counted). Bindings to
 * unknown roles and unknown permissions never reach here: they are load errors. Returns the
 * number of findings (0 = clean). */
int rbac_lint(const struct rbac_policy *p, const char *const *known, size_t n_known, FILE *out);

/* ---- Reloadable holder --------------------------------------------------------------------- */

/* Holds the current compiled policy for path, swapped atomically on reload. */
struct rbac;

/* Loads path (as rbac_policy_load; known is copied) and registers "rbac" with the reload
 * registry, so bst_reload_all() rebuilds it: an invalid file is refused there and the old
 * policy stays in force. On success *out is owned by the caller (rbac_free). Returns the
 * statuses of rbac_policy_load, or BST_RESOURCE_EXHAUSTED when the registry is full. */
enum bst_status rbac_new(struct rbac **out, const char *path, const char *const *known,
                         size_t n_known, struct bst_err *err);

/* Reloads now (what the registry calls). Returns BST_OK after the swap, or the load error with
 * the old policy still in force. Serialised with other reloads of the same holder. */
enum bst_status rbac_reload(struct rbac *r, struct bst_err *err);

/* Returns the current policy with a reference: the caller must hand it back with
 * rbac_release() and may use it until then, even across a reload. Never NULL. */
const struct rbac_policy *rbac_acquire(struct rbac *r);

/* Drops a reference obtained from rbac_acquire(r). */
void rbac_release(struct rbac *r, const struct rbac_policy *p);

/* Frees the holder and its policy. Every reader must have released, and the reload registry
 * must no longer call it (bst_reload_clear() at shutdown; the registry has no unregister).
 * NULL is a no-op. */
void rbac_free(struct rbac *r);

/* ---- Building blocks (exposed for the tool, tests and docs) --------------------------------- */

/* Returns 1 if ns is a DNS-1123 label: 1 to 63 characters of [a-z0-9-], alphanumeric at both
 * ends. NULL and "" are not. */
int rbac_namespace_valid(const char *ns);

/* Returns 1 if pattern is a namespace pattern the policy accepts: a DNS-1123 label (exact),
 * "*" (any one namespace), or "<prefix>*" with a prefix of [a-z0-9-] starting alphanumeric. */
int rbac_ns_pattern_valid(const char *pattern);

/* Returns 1 only if pattern is valid, ns is a DNS-1123 label, and pattern matches ns. A "*" in
 * a pattern matches zero or more characters of the label alphabet and nothing else, so
 * "feature-*" never matches "feature-x/../prod", "feature-x\n", "FEATURE-x" or "". */
int rbac_ns_pattern_match(const char *pattern, const char *ns);

/* Returns 1 if perm follows the grammar `k8s:<resource>:<verb>` (segments of [a-z0-9-],
 * starting with a letter); with allow_wildcard, also `k8s:<resource>:*` and `k8s:*`. */
int rbac_permission_valid(const char *perm, int allow_wildcard);

/* Returns 1 if the permission or wildcard pattern grants permission (both must be valid):
 * "k8s:pods:*" grants "k8s:pods:list", "k8s:*" grants every permission. */
int rbac_permission_grants(const char *pattern, const char *permission);

#endif
