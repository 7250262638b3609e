/* rbac_bench: authorization decisions per second on generated policies.
 *
 * Generates a 10-role policy (the peer) and a 1,000-role one with the same shape: each role 3
 * permissions and, for most roles, namespace patterns; one binding per role to one of a pool of
 * groups, so every principal is bound to a handful of roles; deny rules for everyone and for
 * some groups; two tenants. Each principal of a fixed pool asks a fixed random mix of
 * (permission, namespace) questions, including cluster scope and invalid namespaces. Prints the
 * median of several runs, plus two reference rows: a principal bound to all 1,000 roles (the
 * O(roles bound) worst case) and the un-indexed linear walk explain uses.
 *
 *   rbac_bench [runs] [decisions-per-run]      (defaults 5 and 2,000,000) */
#include "rbac.h"
#include "rbac_internal.h"

#include "clock.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static const char *const known[] = {
    "k8s:namespaces:list",     "k8s:pods:list",     "k8s:pods:get",         "k8s:pods:logs",
    "k8s:pods:delete",         "k8s:pods:restart",  "k8s:deployments:list", "k8s:deployments:scale",
    "k8s:deployments:restart", "k8s:services:list", "k8s:events:list",      "k8s:secrets:manage",
    "k8s:resources:create",
};
#define N_KNOWN (sizeof(known) / sizeof(known[0]))

#define N_PRINCIPALS 64
#define N_REQUESTS 4096

static unsigned seed = 42;

static unsigned rnd(void)
{
    seed = seed * 1103515245u + 12345u;
    return (seed >> 16) & 0x7fff;
}

struct buf {
    char *s;
    size_t len, cap;
};

static void put(struct buf *b, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

static void put(struct buf *b, const char *fmt, ...)
{
    va_list ap;
    int n;

    for (;;) {
        va_start(ap, fmt);
        n = vsnprintf(b->s + b->len, b->cap - b->len, fmt, ap);
        va_end(ap);
        if (n >= 0 && (size_t)n < b->cap - b->len)
            break;
        b->cap = b->cap * 2 + (size_t)n + 1;
        b->s = realloc(b->s, b->cap);
        if (b->s == NULL)
            abort();
    }
    b->len += (size_t)n;
}

/* Roles r0..r(n-1); binding b_i binds role i to group g(i % groups). One binding "all" binds
 * every role to group "everything". */
static char *generate(int n_roles, int n_groups)
{
    struct buf b = {malloc(1 << 16), 0, 1 << 16};

    put(&b, "roles:\n");
    for (int i = 0; i < n_roles; i++) {
        put(&b, "  - name: r%d\n    permissions: [", i);
        for (int k = 0; k < 3; k++)
            put(&b, "%s\"%s\"", k > 0 ? ", " : "",
                rnd() % 8 == 0 ? "k8s:pods:*" : known[rnd() % N_KNOWN]);
        put(&b, "]\n");
        if (i % 5 != 0)
            put(&b, "    namespaces: [ns-%u, team-%u-*, \"feature-*\"]\n", rnd() % 40, rnd() % 20);
    }
    put(&b, "bindings:\n");
    for (int i = 0; i < n_roles; i++)
        put(&b, "  - {name: b%d, subjects: [{group: g%d}, {user: user-%d}], roles: [r%d]}\n", i,
            i % n_groups, i % 97, i);
    put(&b, "  - name: all\n    subjects: [{group: everything}]\n    roles: [");
    for (int i = 0; i < n_roles; i++)
        put(&b, "%sr%d", i > 0 ? ", " : "", i);
    put(&b, "]\ndeny:\n");
    put(&b, "  - {name: no-kube-system, permissions: [k8s:pods:delete, k8s:secrets:manage], "
            "namespaces: [kube-system]}\n");
    put(&b,
        "  - {name: no-secrets-g1, subjects: [{group: g1}], permissions: [k8s:secrets:manage]}\n");
    put(&b, "  - {name: no-prod-writes, permissions: [\"k8s:deployments:*\"], namespaces: "
            "[\"prod-*\"]}\n");
    put(&b, "tenants:\n");
    put(&b, "  - {name: acme, namespaces: [\"acme-*\"], members: [{group: acme}]}\n");
    put(&b, "  - {name: globex, namespaces: [\"globex-*\"]}\n");
    return b.s;
}

struct request {
    int who;
    const char *perm;
    const char *ns;
};

static const char *const ns_pool[] = {
    "ns-1",    "ns-7",     "team-3-a", "team-12-x", "feature-login",     "kube-system",
    "prod-eu", "acme-web", "default",  NULL,        "feature-x/../prod", ""};

static void make_principals(struct bst_principal *v, int n_groups, const char *extra_group)
{
    for (int i = 0; i < N_PRINCIPALS; i++) {
        char name[32], g[32];
        bst_principal_init(&v[i]);
        snprintf(name, sizeof(name), "user-%d", i);
        bst_principal_set_name(&v[i], name, BST_MECH_JWT);
        for (int k = 0; k < 3; k++) {
            snprintf(g, sizeof(g), "g%u", rnd() % (unsigned)n_groups);
            bst_principal_add_group(&v[i], g);
        }
        if (i % 16 == 0)
            bst_principal_add_group(&v[i], "acme");
        if (i % 8 == 1) {
            bst_principal_add_permission(&v[i], "k8s:pods:list");
            v[i].permissions_source = BST_PERMS_API_KEY_FILE;
        }
        if (extra_group != NULL)
            bst_principal_add_group(&v[i], extra_group);
    }
}

static int cmp_double(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;
    return x < y ? -1 : x > y;
}

/* Returns the median decisions per second over runs. */
static double measure(const struct rbac_policy *p, const struct bst_principal *who,
                      const struct request *rq, int runs, long per_run, int walk, double *allow)
{
    double rates[32];
    long allowed = 0;

    for (int r = 0; r < runs; r++) {
        int64_t t0 = bst_mono_ns(), dt;
        struct bst_decision d;
        for (long i = 0; i < per_run; i++) {
            const struct request *q = &rq[i % N_REQUESTS];
            enum bst_verdict v = walk ? rbac_walk(p, &who[q->who], q->perm, q->ns, NULL, &d)
                                      : rbac_decide(p, &who[q->who], q->perm, q->ns, &d);
            allowed += v == BST_VERDICT_ALLOW;
        }
        dt = bst_mono_ns() - t0;
        rates[r] = (double)per_run * 1e9 / (double)(dt > 0 ? dt : 1);
    }
    qsort(rates, (size_t)runs, sizeof(rates[0]), cmp_double);
    *allow = (double)allowed / ((double)per_run * runs);
    return rates[runs / 2];
}

static struct rbac_policy *compile_timed(const char *text, double *ms)
{
    struct rbac_policy *p = NULL;
    struct bst_err err;
    int64_t t0 = bst_mono_ns();

    if (rbac_policy_parse("generated.yaml", text, strlen(text), known, N_KNOWN, &p, &err) !=
        BST_OK) {
        fprintf(stderr, "rbac_bench: %s\n", err.msg);
        exit(2);
    }
    *ms = (double)(bst_mono_ns() - t0) / 1e6;
    return p;
}

static void row(const char *label, const struct rbac_policy *p, double rate, double allow,
                double load_ms)
{
    size_t roles, bindings, denies, tenants;
    rbac_policy_stats(p, &roles, &bindings, &denies, &tenants);
    printf("%-34s %6zu %9zu %12.0f %12.1f %8.0f%% %10.2f\n", label, roles, bindings, rate,
           1e9 / rate, allow * 100.0, load_ms);
}

int main(int argc, char **argv)
{
    int runs = argc > 1 ? (int)strtol(argv[1], NULL, 10) : 5;
    long per_run = argc > 2 ? strtol(argv[2], NULL, 10) : 2000000;
    struct bst_principal small_who[N_PRINCIPALS], big_who[N_PRINCIPALS], all_who[N_PRINCIPALS];
    struct request rq[N_REQUESTS];
    char *small_text, *big_text;
    struct rbac_policy *small, *big;
    double ms_small, ms_big, rate, allow;

    if (runs < 1 || runs > 31 || per_run < 1) {
        fprintf(stderr, "usage: rbac_bench [runs 1-31] [decisions-per-run]\n");
        return 2;
    }
    small_text = generate(10, 4);
    big_text = generate(1000, 200);
    small = compile_timed(small_text, &ms_small);
    big = compile_timed(big_text, &ms_big);
    make_principals(small_who, 4, NULL);
    make_principals(big_who, 200, NULL);
    make_principals(all_who, 200, "everything");
    for (int i = 0; i < N_REQUESTS; i++) {
        rq[i].who = (int)(rnd() % N_PRINCIPALS);
        rq[i].perm = known[rnd() % N_KNOWN];
        rq[i].ns = ns_pool[rnd() % (sizeof(ns_pool) / sizeof(ns_pool[0]))];
    }

    printf("rbac_bench: median of %d runs x %ld decisions, one thread; policy text %zu and %zu "
           "bytes\n",
           runs, per_run, strlen(small_text), strlen(big_text));
    printf("%-34s %6s %9s %12s %12s %9s %10s\n", "policy / principals", "roles", "bindings",
           "decisions/s", "ns/decision", "allowed", "load ms");
    rate = measure(small, small_who, rq, runs, per_run, 0, &allow);
    row("10 roles (peer)", small, rate, allow, ms_small);
    rate = measure(big, big_who, rq, runs, per_run, 0, &allow);
    row("1,000 roles", big, rate, allow, ms_big);
    rate = measure(big, all_who, rq, runs, per_run, 0, &allow);
    row("1,000 roles, bound to all 1,000", big, rate, allow, ms_big);
    rate = measure(big, big_who, rq, runs, per_run / 20 > 0 ? per_run / 20 : 1, 1, &allow);
    row("1,000 roles, linear walk (explain)", big, rate, allow, ms_big);

    for (int i = 0; i < N_PRINCIPALS; i++) {
        bst_principal_dispose(&small_who[i]);
        bst_principal_dispose(&big_who[i]);
        bst_principal_dispose(&all_who[i]);
    }
    rbac_policy_free(small);
    rbac_policy_free(big);
    free(small_text);
    free(big_text);
    return 0;
}
