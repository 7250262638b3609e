/* The default chain of stages every call passes (see call.h) and the security components they
 * consult: the authenticator (auth/) and the authorization policy (rbac/). main() installs the
 * components once at startup; each keeps its own reloadable snapshots. */
#ifndef BASTION_SERVER_CHAIN_H
#define BASTION_SERVER_CHAIN_H

#include "call.h"

struct authn;
struct rbac;

/* Installs the authenticator the authn stage and Auth.IssueToken use (not owned). Without one,
 * only client certificates authenticate. */
void chain_set_authn(struct authn *a);
struct authn *chain_authn(void);

/* Installs the policy the authz stage and Auth.CanI consult (not owned). Without one, every
 * call that needs a permission is denied: there is no implicit allow. */
void chain_set_rbac(struct rbac *r);

/* Decides whether the caller of c holds permission in namespace_ (NULL: cluster scope or all
 * namespaces) under the current policy, filling out. Used by the authz stage and by CanI. */
enum bst_verdict chain_decide(const struct call *c, const char *permission,
                              const char *namespace_, struct bst_decision *out);

#endif
