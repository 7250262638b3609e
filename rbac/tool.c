/* bastion-rbac: check, explain and lint a policy file offline, with the same library the server
 * enforces with.
 *
 *   bastion-rbac check   --policy FILE --subject KIND:VALUE... --permission P [--namespace NS]
 *   bastion-rbac explain --policy FILE --subject KIND:VALUE... --permission P [--namespace NS]
 *   bastion-rbac lint    FILE
 *
 * Exit status: check/explain 0 allow, 1 deny, 2 error; lint 0 clean, 1 findings, 2 error. */
#include "rbac.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* The permissions of the tool table (docs/architecture.md). The server passes its catalogue's
 * list at load time; --known overrides this copy when the two differ. */
static const char *const default_known[] = {
    "k8s:namespaces:list",     "k8s:pods:list",     "k8s:pods:get",         "k8s:pods:logs",
    "k8s:pods:delete",         "k8s:pods:restart",  "k8s:deployments:list", "k8s:deployments:scale",
    "k8s:deployments:restart", "k8s:services:list", "k8s:events:list",      "k8s:secrets:manage",
    "k8s:resources:create",
};

#define MAX_KNOWN 1024

static void usage(FILE *f)
{
    fprintf(f, "usage:\n"
               "  bastion-rbac check   --policy FILE --subject KIND:VALUE [--subject ...]\n"
               "                       [--group G]... [--tenant T] [--carries PERM]...\n"
               "                       --permission P [--namespace NS] [--known P1,P2,...]\n"
               "  bastion-rbac explain (the same options as check)\n"
               "  bastion-rbac lint    FILE [--known P1,P2,...] [--tools P1,P2,...]\n"
               "\n"
               "KIND is user, group, cert or apikey. Without --namespace the request is for all\n"
               "namespaces / cluster scope. --known is the permission list the policy is loaded\n"
               "with (default: the tool table's); lint's --tools is the list it checks use\n"
               "against (default: --known).\n"
               "exit status: check/explain 0 allow, 1 deny, 2 error; lint 0 clean, 1 findings,\n"
               "2 error\n");
}

/* Splits a comma-separated list in place into v (at most max entries). Returns the count, or
 * -1 when there are too many or an entry is empty. */
static int split_list(char *s, const char **v, int max)
{
    int n = 0;
    char *p = s;

    for (;;) {
        char *comma = strchr(p, ',');
        if (comma != NULL)
            *comma = '\0';
        if (*p == '\0' || n == max)
            return -1;
        v[n++] = p;
        if (comma == NULL)
            return n;
        p = comma + 1;
    }
}

struct request {
    const char *policy;
    const char *permission;
    const char *namespace_;
    const char *user, *cert, *apikey, *tenant;
    const char *groups[BST_PRINCIPAL_MAX_GROUPS];
    int n_groups;
    const char *carries[BST_PRINCIPAL_MAX_PERMS];
    int n_carries;
};

static int add_subject(struct request *rq, const char *arg)
{
    const char *colon = strchr(arg, ':');
    const char *v = colon != NULL ? colon + 1 : NULL;
    size_t klen = colon != NULL ? (size_t)(colon - arg) : 0;

    if (v == NULL || *v == '\0') {
        fprintf(stderr, "bastion-rbac: --subject wants KIND:VALUE, got '%s'\n", arg);
        return -1;
    }
    if (klen == 4 && strncmp(arg, "user", 4) == 0) {
        rq->user = v;
    } else if (klen == 4 && strncmp(arg, "cert", 4) == 0) {
        rq->cert = v;
    } else if (klen == 6 && strncmp(arg, "apikey", 6) == 0) {
        rq->apikey = v;
    } else if (klen == 5 && strncmp(arg, "group", 5) == 0) {
        if (rq->n_groups == BST_PRINCIPAL_MAX_GROUPS)
            return -1;
        rq->groups[rq->n_groups++] = v;
    } else {
        fprintf(stderr, "bastion-rbac: unknown subject kind in '%s' (user, group, cert, apikey)\n",
                arg);
        return -1;
    }
    return 0;
}

/* Builds the principal the server would: mTLS sets the name to the certificate identity, an
 * API key sets the mechanism that apikey subjects need, and carried permissions take the
 * source of the credential that would carry them. */
static int build_principal(const struct request *rq, struct bst_principal *p)
{
    enum bst_mechanism mech = BST_MECH_MTLS;
    const char *name = rq->user != NULL ? rq->user : rq->cert;

    if (rq->apikey != NULL)
        mech = BST_MECH_API_KEY;
    else if (rq->user != NULL && (rq->cert == NULL || strcmp(rq->user, rq->cert) != 0))
        mech = BST_MECH_JWT;
    if (name != NULL && bst_principal_set_name(p, name, mech) != BST_OK)
        return -1;
    p->mechanism = mech;
    if (rq->cert != NULL && (p->cert_identity = strdup(rq->cert)) == NULL)
        return -1;
    if (rq->apikey != NULL) {
        if (strlen(rq->apikey) >= sizeof(p->credential_id)) {
            fprintf(stderr, "bastion-rbac: an API key id is at most %zu characters\n",
                    sizeof(p->credential_id) - 1);
            return -1;
        }
        memcpy(p->credential_id, rq->apikey, strlen(rq->apikey) + 1);
    }
    for (int i = 0; i < rq->n_groups; i++)
        if (bst_principal_add_group(p, rq->groups[i]) != BST_OK)
            return -1;
    if (rq->tenant != NULL && bst_principal_set_tenant(p, rq->tenant) != BST_OK)
        return -1;
    for (int i = 0; i < rq->n_carries; i++)
        if (bst_principal_add_permission(p, rq->carries[i]) != BST_OK)
            return -1;
    if (rq->n_carries > 0)
        p->permissions_source =
            mech == BST_MECH_API_KEY ? BST_PERMS_API_KEY_FILE : BST_PERMS_JWT_ISSUER;
    return 0;
}

static int load(const char *path, const char *const *known, int n_known, struct rbac_policy **out)
{
    struct bst_err err = {BST_OK, ""};
    if (rbac_policy_load(path, known, (size_t)n_known, out, &err) != BST_OK) {
        fprintf(stderr, "bastion-rbac: %s\n", err.msg);
        return -1;
    }
    return 0;
}

static int cmd_check(int argc, char **argv, int explain)
{
    static const char *known_buf[MAX_KNOWN];
    const char *const *known = default_known;
    int n_known = (int)(sizeof(default_known) / sizeof(default_known[0]));
    struct request rq;
    struct bst_principal who;
    struct rbac_policy *p = NULL;
    struct bst_decision d;
    int rc = 2;

    memset(&rq, 0, sizeof(rq));
    bst_principal_init(&who);
    for (int i = 0; i < argc; i++) {
        const char *opt = argv[i];
        char *val = i + 1 < argc ? argv[i + 1] : NULL;
        if (strcmp(opt, "-h") == 0 || strcmp(opt, "--help") == 0) {
            usage(stdout);
            return 0;
        }
        if (val == NULL) {
            fprintf(stderr, "bastion-rbac: %s needs a value\n", opt);
            goto out;
        }
        i++;
        if (strcmp(opt, "--policy") == 0) {
            rq.policy = val;
        } else if (strcmp(opt, "--subject") == 0) {
            if (add_subject(&rq, val) != 0)
                goto out;
        } else if (strcmp(opt, "--group") == 0) {
            if (rq.n_groups == BST_PRINCIPAL_MAX_GROUPS)
                goto out;
            rq.groups[rq.n_groups++] = val;
        } else if (strcmp(opt, "--tenant") == 0) {
            rq.tenant = val;
        } else if (strcmp(opt, "--carries") == 0) {
            if (rq.n_carries == BST_PRINCIPAL_MAX_PERMS)
                goto out;
            rq.carries[rq.n_carries++] = val;
        } else if (strcmp(opt, "--permission") == 0) {
            rq.permission = val;
        } else if (strcmp(opt, "--namespace") == 0 || strcmp(opt, "-n") == 0) {
            rq.namespace_ = val;
        } else if (strcmp(opt, "--known") == 0) {
            if ((n_known = split_list(val, known_buf, MAX_KNOWN)) < 0) {
                fprintf(stderr, "bastion-rbac: bad --known list\n");
                goto out;
            }
            known = known_buf;
        } else {
            fprintf(stderr, "bastion-rbac: unknown option '%s'\n", opt);
            usage(stderr);
            goto out;
        }
    }
    if (rq.policy == NULL || rq.permission == NULL ||
        (rq.user == NULL && rq.cert == NULL && rq.apikey == NULL && rq.n_groups == 0)) {
        fprintf(stderr, "bastion-rbac: --policy, --subject and --permission are required\n");
        usage(stderr);
        goto out;
    }
    if (build_principal(&rq, &who) != 0) {
        fprintf(stderr, "bastion-rbac: cannot build the principal\n");
        goto out;
    }
    if (load(rq.policy, known, n_known, &p) != 0)
        goto out;
    if (explain) {
        rc = rbac_explain(p, &who, rq.permission, rq.namespace_, stdout) == BST_VERDICT_ALLOW ? 0
                                                                                              : 1;
    } else {
        rc = rbac_decide(p, &who, rq.permission, rq.namespace_, &d) == BST_VERDICT_ALLOW ? 0 : 1;
        printf("%s\nrule: %s\nreason: %s\n", rc == 0 ? "allow" : "deny", d.rule, d.reason);
    }
out:
    rbac_policy_free(p);
    bst_principal_dispose(&who);
    return rc;
}

static int cmd_lint(int argc, char **argv)
{
    static const char *known_buf[MAX_KNOWN], *tools_buf[MAX_KNOWN];
    const char *const *known = default_known, *const *tools = NULL;
    int n_known = (int)(sizeof(default_known) / sizeof(default_known[0])), n_tools = 0;
    const char *path = NULL;
    struct rbac_policy *p = NULL;
    int findings;

    for (int i = 0; i < argc; i++) {
        if (strcmp(argv[i], "--known") == 0 && i + 1 < argc) {
            if ((n_known = split_list(argv[++i], known_buf, MAX_KNOWN)) < 0)
                return 2;
            known = known_buf;
        } else if (strcmp(argv[i], "--tools") == 0 && i + 1 < argc) {
            if ((n_tools = split_list(argv[++i], tools_buf, MAX_KNOWN)) < 0)
                return 2;
            tools = tools_buf;
        } else if (argv[i][0] != '-' && path == NULL) {
            path = argv[i];
        } else {
            usage(stderr);
            return 2;
        }
    }
    if (path == NULL) {
        usage(stderr);
        return 2;
    }
    if (tools == NULL) {
        tools = known;
        n_tools = n_known;
    }
    if (load(path, known, n_known, &p) != 0)
        return 2;
    findings = rbac_lint(p, tools, (size_t)n_tools, stdout);
    printf("%d finding%s\n", findings, findings == 1 ? "" : "s");
    rbac_policy_free(p);
    return findings > 0 ? 1 : 0;
}

int main(int argc, char **argv)
{
    if (argc < 2) {
        usage(stderr);
        return 2;
    }
    if (strcmp(argv[1], "check") == 0)
        return cmd_check(argc - 2, argv + 2, 0);
    if (strcmp(argv[1], "explain") == 0)
        return cmd_check(argc - 2, argv + 2, 1);
    if (strcmp(argv[1], "lint") == 0)
        return cmd_lint(argc - 2, argv + 2);
    if (strcmp(argv[1], "-h") == 0 || strcmp(argv[1], "--help") == 0) {
        usage(stdout);
        return 0;
    }
    usage(stderr);
    return 2;
}
