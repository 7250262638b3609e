/* The stages of the default chain: identity, authn, validate, authz, handler. */
#include "chain.h"
#include "authn.h"
#include "identity.h"
#include "rbac.h"

#include <stdatomic.h>
#include <stdio.h>
#include <string.h>

static struct rbac *_Atomic policy_holder;
static struct authn *_Atomic authenticator;

void chain_set_authn(struct authn *a)
{
    atomic_store(&authenticator, a);
}

struct authn *chain_authn(void)
{
    return atomic_load(&authenticator);
}

void chain_set_rbac(struct rbac *r)
{
    atomic_store(&policy_holder, r);
}

enum bst_verdict chain_decide(const struct call *c, const char *permission, const char *namespace_,
                              struct bst_decision *out)
{
    struct rbac *r = atomic_load(&policy_holder);
    const struct rbac_policy *p;
    enum bst_verdict v;

    if (r == NULL) {
        memset(out, 0, sizeof(*out));
        out->verdict = BST_VERDICT_DENY;
        snprintf(out->rule, sizeof(out->rule), "no policy loaded");
        snprintf(out->reason, sizeof(out->reason), "no authorization policy is configured");
        return BST_VERDICT_DENY;
    }
    p = rbac_acquire(r);
    v = rbac_decide(p, &c->principal, permission, namespace_, out);
    rbac_release(r, p);
    return v;
}

static enum call_next stage_identity(struct call *c)
{
    struct bst_err err = {BST_OK, ""};
    if (c->peer_cert == NULL)
        return CALL_NEXT;
    if (authn_cert_identity(c->peer_cert, &c->principal, &err) != BST_OK) {
        c->authn_outcome = CALL_AUTHN_FAILED;
        snprintf(c->detail, sizeof(c->detail), "client certificate: %.200s", err.msg);
        return call_fail(
            c, err.code == BST_RESOURCE_EXHAUSTED ? BST_RESOURCE_EXHAUSTED : BST_UNAUTHENTICATED,
            "%s", err.msg);
    }
    return CALL_NEXT;
}

#define MAX_CREDENTIAL_HEADERS 8

/* Tokens and API keys (auth/): the principal becomes the token's identity when one is presented,
 * keeping the certificate identity as the calling workload. The precise reason for a refusal
 * goes to c->detail (logs, audit); the caller gets one generic message. */
static enum call_next stage_authn(struct call *c)
{
    struct authn *a = atomic_load(&authenticator);
    const char *authz[MAX_CREDENTIAL_HEADERS], *keys[MAX_CREDENTIAL_HEADERS];
    struct authn_request req = {authz, 0, keys, 0, c->peer, NULL, c->method->token_optional};
    struct bst_principal who;
    struct bst_err err = {BST_OK, ""};
    enum bst_status rv;

    if (a != NULL) {
        for (size_t i = 0; i < c->n_md; i++) {
            const struct call_md *m = &c->md[i];
            int is_authz = strcmp(m->name, "authorization") == 0;
            if (!is_authz && strcmp(m->name, "x-api-key") != 0)
                continue;
            /* More than a few credential headers is an attack, not a client. */
            if ((is_authz ? req.n_authorization : req.n_api_key) == MAX_CREDENTIAL_HEADERS ||
                memchr(m->value, '\0', m->value_len) != NULL) {
                c->authn_outcome = CALL_AUTHN_FAILED;
                snprintf(c->detail, sizeof(c->detail), "too many or malformed credential headers");
                return call_fail(c, BST_UNAUTHENTICATED, "malformed credentials");
            }
            if (is_authz)
                authz[req.n_authorization++] = m->value;
            else
                keys[req.n_api_key++] = m->value;
        }
        req.certificate = c->principal.name != NULL ? &c->principal : NULL;
        bst_principal_init(&who);
        rv = authn_authenticate(a, &req, &who, c->detail, sizeof(c->detail), &err);
        if (rv != BST_OK) {
            bst_principal_dispose(&who);
            c->authn_outcome = CALL_AUTHN_FAILED;
            return call_fail(c, rv, "%s", err.msg);
        }
        bst_principal_dispose(&c->principal);
        c->principal = who;
    }
    if (c->method->requires_principal && c->principal.name == NULL) {
        c->authn_outcome = CALL_AUTHN_FAILED;
        snprintf(c->detail, sizeof(c->detail), "no credentials");
        return call_fail(c, BST_UNAUTHENTICATED,
                         "this method needs an authenticated caller (a client certificate, an "
                         "API key or a token)");
    }
    c->authn_outcome = CALL_AUTHN_OK;
    return CALL_NEXT;
}

static enum call_next stage_validate(struct call *c)
{
    if (c->method->bind == NULL)
        return CALL_NEXT;
    if (c->method->bind(c) != BST_OK) {
        if (c->status == BST_OK)
            return call_fail(c, BST_INTERNAL, "request validation failed");
        return CALL_DONE;
    }
    return CALL_NEXT;
}

/* Methods that bound no permission (Ping, Initialize, ListTools, WhoAmI, CanI, Health) need
 * none; every other call is decided by the policy, with the permission taken from the tool
 * table and never from the request. */
static enum call_next stage_authz(struct call *c)
{
    if (c->permission == NULL)
        return CALL_NEXT;
    if (chain_decide(c, c->permission, c->namespace_, &c->decision) == BST_VERDICT_ALLOW)
        return CALL_NEXT;
    if (c->namespace_ != NULL)
        return call_fail(c, BST_PERMISSION_DENIED, "permission %s denied in namespace %s",
                         c->permission, c->namespace_);
    return call_fail(c, BST_PERMISSION_DENIED,
                     "permission %s denied across all namespaces (cluster scope)", c->permission);
}

static enum call_next stage_handler(struct call *c)
{
    return c->method->handle(c);
}

const struct call_stage call_default_stages[] = {
    {"identity", stage_identity}, {"authn", stage_authn},     {"validate", stage_validate},
    {"authz", stage_authz},       {"handler", stage_handler},
};
const size_t call_default_n_stages = sizeof(call_default_stages) / sizeof(call_default_stages[0]);
