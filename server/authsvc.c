/* Auth.IssueToken and Auth.CanI. */
#include "authsvc.h"
#include "authn.h"
#include "chain.h"

#include "bastion/v1/auth.pb-c.h"

#include <stdio.h>
#include <string.h>

/* Runs on a pool thread: the call is pending, so this thread owns its fields until
 * call_resume hands it back to the loop. */
static void login_done(void *arg, enum bst_status st, const char *token, int64_t expires_at_unix,
                       const char *message, const char *reason)
{
    struct call *c = arg;
    Bastion__V1__IssueTokenResponse *r;

    snprintf(c->detail, sizeof(c->detail), "%s", reason != NULL ? reason : "");
    if (st != BST_OK) {
        call_fail(c, st, "%s", message != NULL ? message : "login failed");
        call_resume(c, CALL_DONE);
        return;
    }
    r = call_alloc(c, sizeof(*r));
    if (r != NULL) {
        bastion__v1__issue_token_response__init(r);
        r->token = call_strdup(c, token);
        r->token_type = "Bearer";
        r->has_expires_at_unix = 1;
        r->expires_at_unix = expires_at_unix;
    }
    if (r == NULL || r->token == NULL) {
        call_fail(c, BST_RESOURCE_EXHAUSTED, "response too large");
        call_resume(c, CALL_DONE);
        return;
    }
    c->response = &r->base;
    call_resume(c, CALL_NEXT);
}

enum call_next authsvc_issue_token(struct call *c)
{
    const Bastion__V1__IssueTokenRequest *req = (const void *)c->request;
    struct authn *a = chain_authn();
    struct bst_err err = {BST_OK, ""};
    enum bst_status rv;

    if (a == NULL)
        return call_fail(c, BST_FAILED_PRECONDITION, "password login is not configured");
    rv = authn_login_start(a, req->username != NULL ? req->username : "",
                           req->password != NULL ? req->password : "", c->peer,
                           req->has_ttl_seconds ? req->ttl_seconds : 0, login_done, c, &err);
    if (rv != BST_OK)
        return call_fail(c, rv, "%s", err.msg);
    return CALL_PENDING;
}

enum call_next authsvc_can_i(struct call *c)
{
    const Bastion__V1__CanIRequest *req = (const void *)c->request;
    Bastion__V1__CanIResponse *r = call_alloc(c, sizeof(*r));
    struct bst_decision d;

    if (r == NULL)
        return call_fail(c, BST_RESOURCE_EXHAUSTED, "response too large");
    if (req->permission == NULL || req->permission[0] == '\0')
        return call_fail(c, BST_INVALID_ARGUMENT, "permission: required, e.g. k8s:pods:list");
    bastion__v1__can_iresponse__init(r);
    /* An absent namespace asks about cluster scope; "" is an invalid namespace, never "all". */
    chain_decide(c, req->permission, req->namespace_, &d);
    r->has_allowed = 1;
    r->allowed = d.verdict == BST_VERDICT_ALLOW;
    r->reason = call_strdup(c, d.reason);
    r->rule = call_strdup(c, d.rule);
    if (r->reason == NULL || r->rule == NULL)
        return call_fail(c, BST_RESOURCE_EXHAUSTED, "response too large");
    c->response = &r->base;
    return CALL_NEXT;
}
