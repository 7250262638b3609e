/* The simulated cluster's operations (kube/backend.h): each takes the lock (shared for reads,
 * exclusive for writes), works on the store, and writes its typed result into the caller's
 * arena. Messages follow the API server's wording ("pods \"x\" not found"). */
#include "sim_internal.h"
#include "manifest.h"
#include "names.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define RLOCK(s) pthread_rwlock_rdlock(&(s)->lock)
#define WLOCK(s) pthread_rwlock_wrlock(&(s)->lock)
#define UNLOCK(s) pthread_rwlock_unlock(&(s)->lock)

static struct sim *SIM(struct kube_backend *b)
{
    return (struct sim *)b;
}

static enum bst_status oom(struct bst_err *err)
{
    return bst_errf(err, BST_RESOURCE_EXHAUSTED, "result too large");
}

#define NEW(ctx, T, init)                                                                          \
    ({                                                                                             \
        T *m_ = kube_alloc((ctx), sizeof(T));                                                      \
        if (m_ != NULL)                                                                            \
            init(m_);                                                                              \
        m_;                                                                                        \
    })

/* Resolves the scope of a list: one existing namespace, or all of them when all is set. An
 * empty namespace never means "all". */
static enum bst_status scope(struct sim *s, const char *ns, int all, const char **out,
                             struct bst_err *err)
{
    *out = NULL;
    if (all) {
        if (ns != NULL && ns[0] != '\0')
            return bst_errf(err, BST_INVALID_ARGUMENT,
                            "give a namespace or all_namespaces, not both");
        return BST_OK;
    }
    if (ns == NULL || ns[0] == '\0')
        return bst_errf(err, BST_INVALID_ARGUMENT, "namespace: required");
    if (sim_namespace(s, ns) == NULL)
        return bst_errf(err, BST_NOT_FOUND, "namespaces \"%s\" not found", ns);
    *out = ns;
    return BST_OK;
}

static enum bst_status selector(const char *text, struct kube_selector **out, struct bst_err *err)
{
    return kube_selector_parse(text != NULL ? text : "", out, err);
}

static int in_scope(const struct sim_obj *o, const char *ns)
{
    return ns == NULL || strcmp(o->meta.namespace_, ns) == 0;
}

static enum bst_status need_ns(struct sim *s, const char *ns, struct bst_err *err)
{
    if (ns == NULL || ns[0] == '\0')
        return bst_errf(err, BST_INVALID_ARGUMENT, "namespace: required");
    if (sim_namespace(s, ns) == NULL)
        return bst_errf(err, BST_NOT_FOUND, "namespaces \"%s\" not found", ns);
    return BST_OK;
}

static struct sim_obj *find_or(struct sim *s, enum sim_kind k, const char *ns, const char *name,
                               const char *resource, struct bst_err *err, enum bst_status *rv)
{
    struct sim_obj *o;
    if ((*rv = need_ns(s, ns, err)) != BST_OK)
        return NULL;
    o = name != NULL ? sim_find(s, k, ns, name) : NULL;
    if (o == NULL)
        *rv =
            bst_errf(err, BST_NOT_FOUND, "%s \"%s\" not found", resource, name != NULL ? name : "");
    return o;
}

/* Collects the objects of kind k in scope that match sel, in store order. */
static struct sim_obj **collect(struct sim *s, enum sim_kind k, const char *ns,
                                const struct kube_selector *sel, size_t *n)
{
    struct sim_list *l = &s->lists[k];
    struct sim_obj **v = malloc((l->n ? l->n : 1) * sizeof(*v));
    *n = 0;
    if (v == NULL)
        return NULL;
    for (size_t i = 0; i < l->n; i++)
        if (in_scope(l->v[i], ns) &&
            kube_selector_matches(sel, l->v[i]->meta.labels.v, l->v[i]->meta.labels.n))
            v[(*n)++] = l->v[i];
    return v;
}

/* ---- list calls ---------------------------------------------------------------------------- */

/* How a list call names its namespace. */
enum list_scope {
    LIST_CLUSTER,   /* cluster-scoped objects: no namespace */
    LIST_NS_OR_ALL, /* one namespace, or all of them when asked explicitly */
    LIST_NS,        /* exactly one namespace */
};

/* The part every list call shares: the label selector, the read lock, the namespace check and
 * the matching objects of one kind. list_begin leaves the lock taken whatever it returns;
 * list_end releases everything. */
struct listing {
    struct kube_selector *sel;
    struct sim_obj **v;
    size_t n;
    int locked;
};

static enum bst_status list_begin(struct sim *s, enum sim_kind k, enum list_scope sc,
                                  const char *label_selector, const char *namespace_, int all,
                                  struct listing *l, struct bst_err *err)
{
    const char *ns = NULL;
    enum bst_status rv;

    memset(l, 0, sizeof(*l));
    if ((rv = selector(label_selector, &l->sel, err)) != BST_OK)
        return rv;
    RLOCK(s);
    l->locked = 1;
    if (sc == LIST_NS_OR_ALL)
        rv = scope(s, namespace_, all, &ns, err);
    else if (sc == LIST_NS)
        rv = need_ns(s, ns = namespace_, err);
    if (rv != BST_OK)
        return rv;
    if ((l->v = collect(s, k, ns, l->sel, &l->n)) == NULL)
        return oom(err);
    return BST_OK;
}

static void list_end(struct sim *s, struct listing *l)
{
    if (l->locked)
        UNLOCK(s);
    free(l->v);
    kube_selector_free(l->sel);
}

/* The result's array of n object pointers, in ctx memory. */
static void *list_array(const struct kube_ctx *ctx, size_t n)
{
    return kube_alloc(ctx, (n ? n : 1) * sizeof(void *));
}

/* ---- namespaces and pods ------------------------------------------------------------------- */

static enum bst_status sim_list_namespaces(struct kube_backend *b, const struct kube_ctx *ctx,
                                           const Bastion__V1__ListNamespacesArgs *a,
                                           Bastion__V1__ListNamespacesResult **out,
                                           struct bst_err *err)
{
    struct sim *s = SIM(b);
    Bastion__V1__ListNamespacesResult *r = NULL;
    struct listing l;
    enum bst_status rv;

    rv = list_begin(s, SK_NAMESPACE, LIST_CLUSTER, a->label_selector, NULL, 0, &l, err);
    if (rv == BST_OK && ((r = NEW(ctx, Bastion__V1__ListNamespacesResult,
                                  bastion__v1__list_namespaces_result__init)) == NULL ||
                         (r->namespaces = list_array(ctx, l.n)) == NULL))
        rv = oom(err);
    for (size_t i = 0; rv == BST_OK && i < l.n; i++)
        if ((r->namespaces[r->n_namespaces++] = sim_view_namespace(l.v[i], ctx)) == NULL)
            rv = oom(err);
    if (rv == BST_OK) {
        r->resource_version = sim_rv_str(ctx, s->rv);
        *out = r;
    }
    list_end(s, &l);
    return rv;
}

static enum bst_status sim_list_pods(struct kube_backend *b, const struct kube_ctx *ctx,
                                     const Bastion__V1__ListPodsArgs *a,
                                     Bastion__V1__ListPodsResult **out, struct bst_err *err)
{
    struct sim *s = SIM(b);
    Bastion__V1__ListPodsResult *r = NULL;
    int64_t now = sim_now();
    struct listing l;
    enum bst_status rv;

    rv = list_begin(s, SK_POD, LIST_NS_OR_ALL, a->label_selector, a->namespace_,
                    a->has_all_namespaces && a->all_namespaces, &l, err);
    if (rv == BST_OK &&
        ((r = NEW(ctx, Bastion__V1__ListPodsResult, bastion__v1__list_pods_result__init)) == NULL ||
         (r->pods = list_array(ctx, l.n)) == NULL))
        rv = oom(err);
    for (size_t i = 0; rv == BST_OK && i < l.n; i++)
        if ((r->pods[r->n_pods++] = sim_view_pod(s, l.v[i], now, ctx)) == NULL)
            rv = oom(err);
    if (rv == BST_OK) {
        r->resource_version = sim_rv_str(ctx, s->rv);
        *out = r;
    }
    list_end(s, &l);
    return rv;
}

/* Events about the object with this UID, oldest first, into ctx memory. */
static Bastion__V1__Event **events_of(struct sim *s, const char *uid, size_t *n,
                                      const struct kube_ctx *ctx)
{
    struct sim_list *l = &s->lists[SK_EVENT];
    Bastion__V1__Event **v = kube_alloc(ctx, (l->n ? l->n : 1) * sizeof(*v));
    uint64_t last = 0;
    *n = 0;
    if (v == NULL)
        return NULL;
    /* Selection by increasing sequence: events are few, a quadratic pass is fine. */
    for (;;) {
        const struct sim_obj *next = NULL;
        for (size_t i = 0; i < l->n; i++) {
            const struct sim_obj *e = l->v[i];
            if (strcmp(e->u.ev.involved_uid, uid) == 0 && e->u.ev.seq > last &&
                (next == NULL || e->u.ev.seq < next->u.ev.seq))
                next = e;
        }
        if (next == NULL)
            return v;
        last = next->u.ev.seq;
        if ((v[*n] = sim_view_event(next, ctx)) == NULL)
            return NULL;
        (*n)++;
    }
}

static enum bst_status sim_get_pod(struct kube_backend *b, const struct kube_ctx *ctx,
                                   const Bastion__V1__GetPodArgs *a,
                                   Bastion__V1__GetPodResult **out, struct bst_err *err)
{
    struct sim *s = SIM(b);
    Bastion__V1__GetPodResult *r;
    struct sim_obj *p;
    enum bst_status rv;

    RLOCK(s);
    if ((p = find_or(s, SK_POD, a->namespace_, a->name, "pods", err, &rv)) == NULL)
        goto out;
    r = NEW(ctx, Bastion__V1__GetPodResult, bastion__v1__get_pod_result__init);
    if (r == NULL || (r->pod = sim_view_pod(s, p, sim_now(), ctx)) == NULL ||
        (r->events = events_of(s, p->meta.uid, &r->n_events, ctx)) == NULL) {
        rv = oom(err);
        goto out;
    }
    *out = r;
out:
    UNLOCK(s);
    return rv;
}

static enum bst_status sim_get_pod_logs(struct kube_backend *b, const struct kube_ctx *ctx,
                                        const Bastion__V1__GetPodLogsArgs *a,
                                        Bastion__V1__GetPodLogsResult **out, struct bst_err *err)
{
    struct sim *s = SIM(b);
    Bastion__V1__GetPodLogsResult *r;
    const struct sim_container *c = NULL;
    struct sim_instance inst;
    struct sim_pod_state st;
    struct sim_obj *p;
    size_t ci = 0;
    int64_t now = sim_now();
    int truncated = 0;
    enum bst_status rv;

    RLOCK(s);
    if ((p = find_or(s, SK_POD, a->namespace_, a->name, "pods", err, &rv)) == NULL)
        goto out;
    if (a->container != NULL && a->container[0] != '\0') {
        for (ci = 0; ci < p->u.pod.t.n_containers; ci++)
            if (strcmp(p->u.pod.t.containers[ci].name, a->container) == 0)
                break;
        if (ci == p->u.pod.t.n_containers) {
            rv = bst_errf(err, BST_INVALID_ARGUMENT, "container %s is not valid for pod %s",
                          a->container, p->meta.name);
            goto out;
        }
    } else if (p->u.pod.t.n_containers > 1) {
        const char *def =
            sim_kvs_get(&p->meta.annotations, "kubectl.kubernetes.io/default-container");
        char names[512] = "";
        size_t used = 0;
        for (ci = 0; def != NULL && ci < p->u.pod.t.n_containers; ci++)
            if (strcmp(p->u.pod.t.containers[ci].name, def) == 0)
                break;
        if (def == NULL || ci == p->u.pod.t.n_containers) {
            for (size_t i = 0; i < p->u.pod.t.n_containers && used < sizeof(names); i++)
                used += (size_t)snprintf(names + used, sizeof(names) - used, "%s%s", i ? " " : "",
                                         p->u.pod.t.containers[i].name);
            rv = bst_errf(err, BST_INVALID_ARGUMENT,
                          "a container name must be specified for pod %s, choose one of: [%s]",
                          p->meta.name, names);
            goto out;
        }
    }
    c = &p->u.pod.t.containers[ci];
    sim_pod_state(p, now, &st);
    memset(&inst, 0, sizeof(inst));
    if (p->u.pod.node == NULL) {
        rv = bst_errf(err, BST_FAILED_PRECONDITION, "pod %s does not have a host assigned",
                      p->meta.name);
        goto out;
    }
    if (a->has_previous && a->previous) {
        if (ci != 0 || st.restarts == 0) {
            rv = bst_errf(err, BST_FAILED_PRECONDITION,
                          "previous terminated container \"%s\" in pod \"%s\" not found", c->name,
                          p->meta.name);
            goto out;
        }
        inst.start = st.prev_start;
        inst.end = st.prev_end;
        /* An OOM kill ends the process without a word; an error exit says why. */
        inst.crashed = strcmp(p->u.pod.last_reason, "OOMKilled") != 0;
        inst.end_reason = p->u.pod.last_reason;
    } else if (ci == 0 && !st.running) {
        rv = bst_errf(err, BST_FAILED_PRECONDITION,
                      "container \"%s\" in pod \"%s\" is waiting to start: %s", c->name,
                      p->meta.name, st.waiting_reason != NULL ? st.waiting_reason : st.status);
        goto out;
    } else if (ci != 0 && strcmp(st.status, "ContainerCreating") == 0) {
        rv = bst_errf(err, BST_FAILED_PRECONDITION,
                      "container \"%s\" in pod \"%s\" is waiting to start: ContainerCreating",
                      c->name, p->meta.name);
        goto out;
    } else if (ci == 0) {
        inst.start = st.started;
        inst.end = now;
        if (p->u.pod.t.behavior == SB_CRASHLOOP && now - st.started >= 3) {
            inst.end = st.started + 3;
            inst.crashed = 1;
        } else if (p->u.pod.t.behavior == SB_COMPLETED) {
            inst.end = st.started + 5 < now ? st.started + 5 : now;
        }
    } else {
        inst.start = p->meta.created + SIM_CREATING_SECONDS;
        inst.end = now;
    }
    r = NEW(ctx, Bastion__V1__GetPodLogsResult, bastion__v1__get_pod_logs_result__init);
    if (r == NULL) {
        rv = oom(err);
        goto out;
    }
    rv = sim_logs_render(
        p, c, ci, &inst, a->has_tail_lines ? (int64_t)a->tail_lines : -1,
        a->has_since_seconds && a->since_seconds > 0 ? now - (int64_t)a->since_seconds : 0,
        a->has_timestamps && a->timestamps, a->has_limit_bytes ? a->limit_bytes : 0, ctx, &r->logs,
        &r->lines, &truncated);
    if (rv != BST_OK) {
        rv = oom(err);
        goto out;
    }
    r->has_lines = r->has_truncated = r->has_previous = 1;
    r->truncated = truncated;
    r->previous = a->has_previous && a->previous;
    r->namespace_ = kube_strdup(ctx, p->meta.namespace_);
    r->pod = kube_strdup(ctx, p->meta.name);
    r->container = kube_strdup(ctx, c->name);
    if (r->namespace_ == NULL || r->pod == NULL || r->container == NULL) {
        rv = oom(err);
        goto out;
    }
    *out = r;
out:
    UNLOCK(s);
    return rv;
}

static enum bst_status sim_delete_pod_op(struct kube_backend *b, const struct kube_ctx *ctx,
                                         const Bastion__V1__DeletePodArgs *a,
                                         Bastion__V1__DeletePodResult **out, struct bst_err *err)
{
    struct sim *s = SIM(b);
    Bastion__V1__DeletePodResult *r;
    struct sim_obj *p, *repl;
    int64_t now = sim_now();
    enum bst_status rv;

    WLOCK(s);
    if ((p = find_or(s, SK_POD, a->namespace_, a->name, "pods", err, &rv)) == NULL)
        goto out;
    r = NEW(ctx, Bastion__V1__DeletePodResult, bastion__v1__delete_pod_result__init);
    /* The answer is the pod as the API server returns it: marked for deletion. */
    p->u.pod.deleted = now;
    if (r == NULL || (r->pod = sim_view_pod(s, p, now, ctx)) == NULL) {
        p->u.pod.deleted = 0;
        rv = oom(err);
        goto out;
    }
    rv = sim_delete_pod(s, p, now, &repl, err);
    if (rv == BST_OK)
        *out = r;
out:
    UNLOCK(s);
    return rv;
}

static enum bst_status sim_restart_pod(struct kube_backend *b, const struct kube_ctx *ctx,
                                       const Bastion__V1__RestartPodArgs *a,
                                       Bastion__V1__RestartPodResult **out, struct bst_err *err)
{
    struct sim *s = SIM(b);
    Bastion__V1__RestartPodResult *r;
    struct sim_obj *p, *repl = NULL;
    struct sim_template t;
    struct sim_kvs labels = {NULL, 0}, annotations = {NULL, 0};
    int64_t now = sim_now();
    char *name = NULL;
    enum bst_status rv;

    memset(&t, 0, sizeof(t));
    WLOCK(s);
    if ((p = find_or(s, SK_POD, a->namespace_, a->name, "pods", err, &rv)) == NULL)
        goto out;
    r = NEW(ctx, Bastion__V1__RestartPodResult, bastion__v1__restart_pod_result__init);
    if (r == NULL || (r->deleted_pod = kube_strdup(ctx, p->meta.name)) == NULL) {
        rv = oom(err);
        goto out;
    }
    if (p->meta.owner.kind == SK_REPLICASET) {
        if ((rv = sim_delete_pod(s, p, now, &repl, err)) != BST_OK)
            goto out;
    } else {
        /* A pod without a controller comes back as itself: same name and spec, new UID. */
        if (sim_template_copy(&t, &p->u.pod.t) != BST_OK ||
            sim_kvs_copy(&labels, &p->meta.labels) != BST_OK ||
            sim_kvs_copy(&annotations, &p->meta.annotations) != BST_OK ||
            (name = strdup(p->meta.name)) == NULL) {
            rv = oom(err);
            goto out;
        }
        if ((rv = sim_delete_pod(s, p, now, &repl, err)) != BST_OK ||
            (rv = sim_create_pod(s, a->namespace_, name, &t, NULL, now, &repl, err)) != BST_OK)
            goto out;
        sim_kvs_dispose(&repl->meta.labels);
        sim_kvs_dispose(&repl->meta.annotations);
        repl->meta.labels = labels;
        repl->meta.annotations = annotations;
        labels.v = annotations.v = NULL;
        labels.n = annotations.n = 0;
    }
    if (repl != NULL && (r->pod = sim_view_pod(s, repl, now, ctx)) == NULL) {
        rv = oom(err);
        goto out;
    }
    *out = r;
out:
    UNLOCK(s);
    free(name);
    sim_template_dispose(&t);
    sim_kvs_dispose(&labels);
    sim_kvs_dispose(&annotations);
    return rv;
}

/* ---- deployments --------------------------------------------------------------------------- */

static enum bst_status sim_list_deployments(struct kube_backend *b, const struct kube_ctx *ctx,
                                            const Bastion__V1__ListDeploymentsArgs *a,
                                            Bastion__V1__ListDeploymentsResult **out,
                                            struct bst_err *err)
{
    struct sim *s = SIM(b);
    Bastion__V1__ListDeploymentsResult *r = NULL;
    int64_t now = sim_now();
    struct listing l;
    enum bst_status rv;

    rv = list_begin(s, SK_DEPLOYMENT, LIST_NS_OR_ALL, a->label_selector, a->namespace_,
                    a->has_all_namespaces && a->all_namespaces, &l, err);
    if (rv == BST_OK && ((r = NEW(ctx, Bastion__V1__ListDeploymentsResult,
                                  bastion__v1__list_deployments_result__init)) == NULL ||
                         (r->deployments = list_array(ctx, l.n)) == NULL))
        rv = oom(err);
    for (size_t i = 0; rv == BST_OK && i < l.n; i++)
        if ((r->deployments[r->n_deployments++] = sim_view_deployment(s, l.v[i], now, ctx)) == NULL)
            rv = oom(err);
    if (rv == BST_OK) {
        r->resource_version = sim_rv_str(ctx, s->rv);
        *out = r;
    }
    list_end(s, &l);
    return rv;
}

static enum bst_status sim_scale_deployment(struct kube_backend *b, const struct kube_ctx *ctx,
                                            const Bastion__V1__ScaleDeploymentArgs *a,
                                            Bastion__V1__ScaleDeploymentResult **out,
                                            struct bst_err *err)
{
    struct sim *s = SIM(b);
    Bastion__V1__ScaleDeploymentResult *r;
    struct sim_obj *d;
    int64_t now = sim_now();
    enum bst_status rv;

    if (!a->has_replicas || a->replicas < 0)
        return bst_errf(err, BST_INVALID_ARGUMENT, "replicas: required, 0 or more");
    WLOCK(s);
    if ((d = find_or(s, SK_DEPLOYMENT, a->namespace_, a->name, "deployments.apps", err, &rv)) ==
        NULL)
        goto out;
    r = NEW(ctx, Bastion__V1__ScaleDeploymentResult, bastion__v1__scale_deployment_result__init);
    if (r == NULL) {
        rv = oom(err);
        goto out;
    }
    r->has_previous_replicas = 1;
    r->previous_replicas = d->u.dep.replicas;
    if (d->u.dep.replicas != a->replicas) {
        /* A spec change: a new generation the controller observes at once. */
        d->u.dep.replicas = a->replicas;
        d->meta.generation++;
        d->meta.rv = ++s->rv;
        if ((rv = sim_reconcile_deployment(s, d, now, err)) != BST_OK)
            goto out;
    }
    if ((r->deployment = sim_view_deployment(s, d, now, ctx)) == NULL) {
        rv = oom(err);
        goto out;
    }
    *out = r;
out:
    UNLOCK(s);
    return rv;
}

static enum bst_status sim_restart_deployment(struct kube_backend *b, const struct kube_ctx *ctx,
                                              const Bastion__V1__RestartDeploymentArgs *a,
                                              Bastion__V1__RestartDeploymentResult **out,
                                              struct bst_err *err)
{
    struct sim *s = SIM(b);
    Bastion__V1__RestartDeploymentResult *r;
    struct sim_obj *d;
    int64_t now = sim_now();
    char when[32];
    enum bst_status rv;

    WLOCK(s);
    if ((d = find_or(s, SK_DEPLOYMENT, a->namespace_, a->name, "deployments.apps", err, &rv)) ==
        NULL)
        goto out;
    r = NEW(ctx, Bastion__V1__RestartDeploymentResult,
            bastion__v1__restart_deployment_result__init);
    sim_rfc3339(now, when, sizeof(when));
    if (r == NULL || (r->restarted_at = kube_strdup(ctx, when)) == NULL) {
        rv = oom(err);
        goto out;
    }
    /* What `kubectl rollout restart` patches: a new template, so a new replica set. */
    {
        const char *prev =
            sim_kvs_get(&d->u.dep.t.annotations, "kubectl.kubernetes.io/restartedAt");
        if (prev == NULL || strcmp(prev, when) != 0) {
            if (sim_kvs_set(&d->u.dep.t.annotations, "kubectl.kubernetes.io/restartedAt", when) !=
                0) {
                rv = bst_errf(err, BST_RESOURCE_EXHAUSTED, "out of memory");
                goto out;
            }
            d->meta.generation++;
            d->meta.rv = ++s->rv;
            if ((rv = sim_reconcile_deployment(s, d, now, err)) != BST_OK)
                goto out;
        }
    }
    if ((r->deployment = sim_view_deployment(s, d, now, ctx)) == NULL) {
        rv = oom(err);
        goto out;
    }
    *out = r;
out:
    UNLOCK(s);
    return rv;
}

/* ---- services, events, secrets ------------------------------------------------------------- */

static enum bst_status sim_list_services(struct kube_backend *b, const struct kube_ctx *ctx,
                                         const Bastion__V1__ListServicesArgs *a,
                                         Bastion__V1__ListServicesResult **out, struct bst_err *err)
{
    struct sim *s = SIM(b);
    Bastion__V1__ListServicesResult *r = NULL;
    struct listing l;
    enum bst_status rv;

    rv = list_begin(s, SK_SERVICE, LIST_NS_OR_ALL, a->label_selector, a->namespace_,
                    a->has_all_namespaces && a->all_namespaces, &l, err);
    if (rv == BST_OK && ((r = NEW(ctx, Bastion__V1__ListServicesResult,
                                  bastion__v1__list_services_result__init)) == NULL ||
                         (r->services = list_array(ctx, l.n)) == NULL))
        rv = oom(err);
    for (size_t i = 0; rv == BST_OK && i < l.n; i++)
        if ((r->services[r->n_services++] = sim_view_service(l.v[i], ctx)) == NULL)
            rv = oom(err);
    if (rv == BST_OK) {
        r->resource_version = sim_rv_str(ctx, s->rv);
        *out = r;
    }
    list_end(s, &l);
    return rv;
}

static int by_seq(const void *x, const void *y)
{
    const struct sim_obj *a = *(struct sim_obj *const *)x, *b = *(struct sim_obj *const *)y;
    if (a->u.ev.last != b->u.ev.last)
        return a->u.ev.last < b->u.ev.last ? -1 : 1;
    return a->u.ev.seq < b->u.ev.seq ? -1 : a->u.ev.seq > b->u.ev.seq;
}

static enum bst_status sim_list_events(struct kube_backend *b, const struct kube_ctx *ctx,
                                       const Bastion__V1__ListEventsArgs *a,
                                       Bastion__V1__ListEventsResult **out, struct bst_err *err)
{
    struct sim *s = SIM(b);
    Bastion__V1__ListEventsResult *r;
    struct sim_obj **v = NULL;
    const char *ns;
    size_t n = 0, first = 0;
    enum bst_status rv;

    RLOCK(s);
    if ((rv = scope(s, a->namespace_, a->has_all_namespaces && a->all_namespaces, &ns, err)) !=
        BST_OK)
        goto out;
    if ((v = malloc((s->lists[SK_EVENT].n ? s->lists[SK_EVENT].n : 1) * sizeof(*v))) == NULL) {
        rv = oom(err);
        goto out;
    }
    for (size_t i = 0; i < s->lists[SK_EVENT].n; i++) {
        struct sim_obj *e = s->lists[SK_EVENT].v[i];
        const char *kind = e->u.ev.involved_kind == SK_NAMESPACE
                               ? "Namespace"
                               : kube_kind_title((enum kube_kind)e->u.ev.involved_kind);
        if (!in_scope(e, ns))
            continue;
        if (a->object_kind != NULL && a->object_kind[0] != '\0' &&
            (kind == NULL || strcasecmp(kind, a->object_kind) != 0))
            continue;
        if (a->object_name != NULL && a->object_name[0] != '\0' &&
            strcmp(e->u.ev.involved_name, a->object_name) != 0)
            continue;
        if (a->type != NULL && a->type[0] != '\0' && strcmp(e->u.ev.type, a->type) != 0)
            continue;
        v[n++] = e;
    }
    qsort(v, n, sizeof(*v), by_seq);
    /* The newest `limit`, still oldest first. */
    if (a->has_limit && a->limit > 0 && n > a->limit)
        first = n - a->limit;
    r = NEW(ctx, Bastion__V1__ListEventsResult, bastion__v1__list_events_result__init);
    if (r == NULL || (r->events = kube_alloc(ctx, (n ? n : 1) * sizeof(void *))) == NULL) {
        rv = oom(err);
        goto out;
    }
    for (size_t i = first; i < n; i++)
        if ((r->events[r->n_events++] = sim_view_event(v[i], ctx)) == NULL) {
            rv = oom(err);
            goto out;
        }
    r->resource_version = sim_rv_str(ctx, s->rv);
    *out = r;
out:
    UNLOCK(s);
    free(v);
    return rv;
}

static enum bst_status sim_list_secrets(struct kube_backend *b, const struct kube_ctx *ctx,
                                        const Bastion__V1__ListSecretsArgs *a,
                                        Bastion__V1__ListSecretsResult **out, struct bst_err *err)
{
    struct sim *s = SIM(b);
    Bastion__V1__ListSecretsResult *r = NULL;
    struct listing l;
    enum bst_status rv;

    rv = list_begin(s, SK_SECRET, LIST_NS, a->label_selector, a->namespace_, 0, &l, err);
    if (rv == BST_OK && ((r = NEW(ctx, Bastion__V1__ListSecretsResult,
                                  bastion__v1__list_secrets_result__init)) == NULL ||
                         (r->secrets = list_array(ctx, l.n)) == NULL))
        rv = oom(err);
    for (size_t i = 0; rv == BST_OK && i < l.n; i++)
        if ((r->secrets[r->n_secrets++] = sim_view_secret(l.v[i], ctx)) == NULL)
            rv = oom(err);
    if (rv == BST_OK) {
        r->resource_version = sim_rv_str(ctx, s->rv);
        *out = r;
    }
    list_end(s, &l);
    return rv;
}

/* Keys each secret type requires (the API server's validation). */
static enum bst_status check_secret_type(const char *name, const char *type,
                                         const Bastion__V1__CreateSecretArgs *a,
                                         struct bst_err *err)
{
    static const struct {
        const char *type;
        const char *keys[3];
    } rules[] = {
        {"Opaque", {NULL, NULL, NULL}},
        {"kubernetes.io/tls", {"tls.crt", "tls.key", NULL}},
        {"kubernetes.io/dockerconfigjson", {".dockerconfigjson", NULL, NULL}},
        {"kubernetes.io/basic-auth", {NULL, NULL, NULL}},
        {"kubernetes.io/ssh-auth", {"ssh-privatekey", NULL, NULL}},
    };
    for (size_t i = 0; i < sizeof(rules) / sizeof(rules[0]); i++) {
        if (strcmp(rules[i].type, type) != 0)
            continue;
        for (size_t k = 0; rules[i].keys[k] != NULL; k++) {
            int found = 0;
            for (size_t d = 0; d < a->n_data && !found; d++)
                found = a->data[d]->key != NULL && strcmp(a->data[d]->key, rules[i].keys[k]) == 0;
            if (!found)
                return bst_errf(err, BST_INVALID_ARGUMENT,
                                "Secret \"%s\" is invalid: data[%s]: Required value", name,
                                rules[i].keys[k]);
        }
        return BST_OK;
    }
    return bst_errf(err, BST_INVALID_ARGUMENT,
                    "Secret \"%s\" is invalid: type: Unsupported value: supported values: "
                    "\"Opaque\", \"kubernetes.io/tls\", \"kubernetes.io/dockerconfigjson\", "
                    "\"kubernetes.io/basic-auth\", \"kubernetes.io/ssh-auth\"",
                    name);
}

static enum bst_status sim_create_secret(struct kube_backend *b, const struct kube_ctx *ctx,
                                         const Bastion__V1__CreateSecretArgs *a,
                                         Bastion__V1__CreateSecretResult **out, struct bst_err *err)
{
    struct sim *s = SIM(b);
    Bastion__V1__CreateSecretResult *r;
    const char *type = a->type != NULL && a->type[0] != '\0' ? a->type : "Opaque";
    struct sim_obj *o = NULL;
    size_t total = 0;
    enum bst_status rv;

    if (a->name == NULL || !kube_dns1123_subdomain_ok(a->name))
        return bst_errf(err, BST_INVALID_ARGUMENT, "name: must be a DNS-1123 subdomain");
    for (size_t i = 0; i < a->n_data; i++) {
        const char *k = a->data[i]->key;
        if (k == NULL || !kube_config_key_ok(k))
            return bst_errf(err, BST_INVALID_ARGUMENT,
                            "Secret \"%s\" is invalid: data[%zu]: a key must be 1-253 of "
                            "A-Z, a-z, 0-9, '-', '_', '.'",
                            a->name, i);
        for (size_t j = 0; j < i; j++)
            if (strcmp(a->data[j]->key, k) == 0)
                return bst_errf(err, BST_INVALID_ARGUMENT,
                                "Secret \"%s\" is invalid: data[%s]: Duplicate value", a->name, k);
        total += strlen(k) + (a->data[i]->value != NULL ? strlen(a->data[i]->value) : 0);
    }
    if (total > 1024 * 1024)
        return bst_errf(err, BST_INVALID_ARGUMENT,
                        "Secret \"%s\" is invalid: data: Too long: must have at most 1048576 bytes",
                        a->name);
    if ((rv = check_secret_type(a->name, type, a, err)) != BST_OK)
        return rv;
    WLOCK(s);
    if ((rv = need_ns(s, a->namespace_, err)) != BST_OK)
        goto out;
    if ((o = sim_obj_new(s, SK_SECRET, a->namespace_, a->name, sim_now())) == NULL ||
        (o->u.data.type = strdup(type)) == NULL)
        goto oom;
    for (size_t i = 0; i < a->n_labels; i++)
        if (a->labels[i]->key == NULL || !kube_label_key_ok(a->labels[i]->key) ||
            !kube_label_value_ok(a->labels[i]->value != NULL ? a->labels[i]->value : "")) {
            rv = bst_errf(err, BST_INVALID_ARGUMENT, "labels[%zu]: invalid label key or value", i);
            goto out;
        } else if (sim_kvs_set(&o->meta.labels, a->labels[i]->key,
                               a->labels[i]->value != NULL ? a->labels[i]->value : "") != 0) {
            goto oom;
        }
    for (size_t i = 0; i < a->n_data; i++)
        if (sim_kvs_set(&o->u.data.data, a->data[i]->key,
                        a->data[i]->value != NULL ? a->data[i]->value : "") != 0)
            goto oom;
    if ((rv = sim_insert(s, o, err)) != BST_OK)
        goto out;
    r = NEW(ctx, Bastion__V1__CreateSecretResult, bastion__v1__create_secret_result__init);
    if (r == NULL || (r->secret = sim_view_secret(o, ctx)) == NULL) {
        o = NULL; /* in the store now */
        rv = oom(err);
        goto out;
    }
    o = NULL;
    *out = r;
    goto out;
oom:
    rv = bst_errf(err, BST_RESOURCE_EXHAUSTED, "out of memory");
out:
    UNLOCK(s);
    sim_obj_free(o);
    return rv;
}

static enum bst_status sim_delete_secret(struct kube_backend *b, const struct kube_ctx *ctx,
                                         const Bastion__V1__DeleteSecretArgs *a,
                                         Bastion__V1__DeleteSecretResult **out, struct bst_err *err)
{
    struct sim *s = SIM(b);
    Bastion__V1__DeleteSecretResult *r;
    struct sim_obj *o;
    enum bst_status rv;

    WLOCK(s);
    if ((o = find_or(s, SK_SECRET, a->namespace_, a->name, "secrets", err, &rv)) == NULL)
        goto out;
    r = NEW(ctx, Bastion__V1__DeleteSecretResult, bastion__v1__delete_secret_result__init);
    if (r == NULL || (r->secret = sim_view_secret(o, ctx)) == NULL) {
        rv = oom(err);
        goto out;
    }
    sim_remove(s, o);
    *out = r;
out:
    UNLOCK(s);
    return rv;
}

/* ---- create_resource ----------------------------------------------------------------------- */

static enum bst_status kvs_from_json(struct sim_kvs *kv, const json_t *obj)
{
    const char *k;
    json_t *v;
    json_object_foreach((json_t *)obj, k, v)
    {
        if (json_is_string(v) && sim_kvs_set(kv, k, json_string_value(v)) != 0)
            return BST_RESOURCE_EXHAUSTED;
    }
    return BST_OK;
}

/* A pod template from a checked PodTemplateSpec-like pair (metadata may be NULL). */
static enum bst_status template_from_json(struct sim_template *t, const json_t *meta,
                                          const json_t *spec)
{
    const json_t *containers = json_object_get(spec, "containers");
    const json_t *sa = json_object_get(spec, "serviceAccountName");

    memset(t, 0, sizeof(*t));
    if (meta != NULL &&
        ((json_object_get(meta, "labels") != NULL &&
          kvs_from_json(&t->labels, json_object_get(meta, "labels")) != BST_OK) ||
         (json_object_get(meta, "annotations") != NULL &&
          kvs_from_json(&t->annotations, json_object_get(meta, "annotations")) != BST_OK)))
        return BST_RESOURCE_EXHAUSTED;
    t->service_account = strdup(sa != NULL ? json_string_value(sa) : "default");
    t->spec = json_deep_copy(spec);
    t->containers = calloc(json_array_size(containers) ? json_array_size(containers) : 1,
                           sizeof(*t->containers));
    if (t->service_account == NULL || t->spec == NULL || t->containers == NULL)
        return BST_RESOURCE_EXHAUSTED;
    for (size_t i = 0; i < json_array_size(containers); i++) {
        const json_t *c = json_array_get(containers, i), *ports = json_object_get(c, "ports");
        struct sim_container *sc = &t->containers[i];
        t->n_containers = i + 1;
        sc->name = strdup(json_string_value(json_object_get(c, "name")));
        sc->image = strdup(json_string_value(json_object_get(c, "image")));
        if (sc->name == NULL || sc->image == NULL ||
            (sc->log_profile = strdup(sim_log_profile_for_image(sc->image))) == NULL)
            return BST_RESOURCE_EXHAUSTED;
        if ((sc->ports = calloc(json_array_size(ports) ? json_array_size(ports) : 1,
                                sizeof(*sc->ports))) == NULL)
            return BST_RESOURCE_EXHAUSTED;
        for (size_t k = 0; k < json_array_size(ports); k++) {
            const json_t *p = json_array_get(ports, k), *pn = json_object_get(p, "name"),
                         *pp = json_object_get(p, "protocol");
            sc->n_ports = k + 1;
            sc->ports[k].port = (int32_t)json_integer_value(json_object_get(p, "containerPort"));
            sc->ports[k].protocol = strdup(pp != NULL ? json_string_value(pp) : "TCP");
            sc->ports[k].name = pn != NULL ? strdup(json_string_value(pn)) : NULL;
            if (sc->ports[k].protocol == NULL || (pn != NULL && sc->ports[k].name == NULL))
                return BST_RESOURCE_EXHAUSTED;
        }
    }
    return BST_OK;
}

static enum bst_status build_service(struct sim *s, struct sim_obj *o, const json_t *spec,
                                     struct bst_err *err)
{
    const json_t *ports = json_object_get(spec, "ports"), *type = json_object_get(spec, "type"),
                 *ip = json_object_get(spec, "clusterIP");
    const char *t = type != NULL ? json_string_value(type) : "ClusterIP";
    const struct sim_list *l = &s->lists[SK_SERVICE];

    if ((o->u.svc.type = strdup(t)) == NULL ||
        (json_object_get(spec, "selector") != NULL &&
         kvs_from_json(&o->u.svc.selector, json_object_get(spec, "selector")) != BST_OK) ||
        (o->u.svc.ports = calloc(json_array_size(ports), sizeof(*o->u.svc.ports))) == NULL)
        return bst_errf(err, BST_RESOURCE_EXHAUSTED, "out of memory");
    if (ip != NULL && json_string_length(ip) > 0) {
        snprintf(o->u.svc.cluster_ip, sizeof(o->u.svc.cluster_ip), "%s", json_string_value(ip));
        for (size_t i = 0; strcmp(o->u.svc.cluster_ip, "None") != 0 && i < l->n; i++)
            if (strcmp(l->v[i]->u.svc.cluster_ip, o->u.svc.cluster_ip) == 0)
                return bst_errf(err, BST_ALREADY_EXISTS,
                                "Service \"%s\" is invalid: spec.clusterIPs: Invalid value: "
                                "failed to allocate IP %s: provided IP is already allocated",
                                o->meta.name, o->u.svc.cluster_ip);
    } else {
        sim_alloc_service_ip(s, o->u.svc.cluster_ip);
    }
    if (strcmp(t, "LoadBalancer") == 0) {
        char ext[20];
        snprintf(ext, sizeof(ext), "203.0.113.%u", (unsigned)(sim_rand(s) % 200) + 30);
        if ((o->u.svc.external_ip = strdup(ext)) == NULL)
            return bst_errf(err, BST_RESOURCE_EXHAUSTED, "out of memory");
    }
    for (size_t i = 0; i < json_array_size(ports); i++) {
        const json_t *p = json_array_get(ports, i), *tp = json_object_get(p, "targetPort"),
                     *np = json_object_get(p, "nodePort"), *pn = json_object_get(p, "name"),
                     *pp = json_object_get(p, "protocol");
        struct sim_svc_port *sp = &o->u.svc.ports[i];
        char buf[24];
        o->u.svc.n_ports = i + 1;
        sp->port = (int32_t)json_integer_value(json_object_get(p, "port"));
        if (tp == NULL)
            snprintf(buf, sizeof(buf), "%d", sp->port);
        else if (json_is_integer(tp))
            snprintf(buf, sizeof(buf), "%lld", (long long)json_integer_value(tp));
        else
            snprintf(buf, sizeof(buf), "%s", json_string_value(tp));
        if (np != NULL)
            sp->node_port = (int32_t)json_integer_value(np);
        else if (strcmp(t, "ClusterIP") != 0)
            sp->node_port = 30000 + (int32_t)(sim_rand(s) % 2768);
        sp->target_port = strdup(buf);
        sp->protocol = strdup(pp != NULL ? json_string_value(pp) : "TCP");
        sp->name = pn != NULL ? strdup(json_string_value(pn)) : NULL;
        if (sp->target_port == NULL || sp->protocol == NULL || (pn != NULL && sp->name == NULL))
            return bst_errf(err, BST_RESOURCE_EXHAUSTED, "out of memory");
    }
    return BST_OK;
}

static enum bst_status sim_create_resource(struct kube_backend *b, const struct kube_ctx *ctx,
                                           const char *ns, enum kube_kind kind, const json_t *obj,
                                           int dry_run, Bastion__V1__CreateResourceResult **out,
                                           struct bst_err *err)
{
    static const char *const resources[KUBE_KIND_COUNT] = {
        "pods", "deployments.apps", "replicasets.apps", "services", "configmaps", "secrets"};
    struct sim *s = SIM(b);
    const json_t *meta = json_object_get(obj, "metadata"), *spec = json_object_get(obj, "spec");
    const char *name = json_string_value(json_object_get(meta, "name"));
    Bastion__V1__CreateResourceResult *r;
    struct sim_obj *o = NULL, *inserted = NULL;
    struct sim_template t;
    int64_t now = sim_now();
    enum bst_status rv;

    memset(&t, 0, sizeof(t));
    if (name == NULL || (kind != KUBE_KIND_POD && kind != KUBE_KIND_DEPLOYMENT &&
                         kind != KUBE_KIND_SERVICE && kind != KUBE_KIND_CONFIGMAP))
        return bst_errf(err, BST_INVALID_ARGUMENT, "manifest: not a checked object");
    WLOCK(s);
    if ((rv = need_ns(s, ns, err)) != BST_OK)
        goto out;
    if (sim_find(s, (enum sim_kind)kind, ns, name) != NULL) {
        rv = bst_errf(err, BST_ALREADY_EXISTS, "%s \"%s\" already exists", resources[kind], name);
        goto out;
    }
    if (s->n_objects >= s->max_objects) {
        rv = bst_errf(err, BST_FAILED_PRECONDITION,
                      "%s \"%s\" is forbidden: exceeded quota: the simulated cluster holds at "
                      "most %zu objects",
                      resources[kind], name, s->max_objects);
        goto out;
    }
    r = NEW(ctx, Bastion__V1__CreateResourceResult, bastion__v1__create_resource_result__init);
    if (r == NULL) {
        rv = oom(err);
        goto out;
    }
    r->kind = kube_strdup(ctx, kube_kind_title(kind));
    r->name = kube_strdup(ctx, name);
    r->namespace_ = kube_strdup(ctx, ns);
    r->has_created = 1;
    if (dry_run) {
        *out = r;
        goto out;
    }
    switch (kind) {
    case KUBE_KIND_POD:
        if (template_from_json(&t, meta, spec) != BST_OK)
            goto oom;
        if ((rv = sim_create_pod(s, ns, name, &t, NULL, now, &inserted, err)) != BST_OK)
            goto out;
        break;
    case KUBE_KIND_DEPLOYMENT: {
        const json_t *tmpl = json_object_get(spec, "template"),
                     *rep = json_object_get(spec, "replicas"),
                     *rhl = json_object_get(spec, "revisionHistoryLimit"),
                     *strat = json_object_get(json_object_get(spec, "strategy"), "type");
        if ((o = sim_obj_new(s, SK_DEPLOYMENT, ns, name, now)) == NULL ||
            template_from_json(&o->u.dep.t, json_object_get(tmpl, "metadata"),
                               json_object_get(tmpl, "spec")) != BST_OK ||
            kvs_from_json(&o->u.dep.selector, json_object_get(json_object_get(spec, "selector"),
                                                              "matchLabels")) != BST_OK ||
            (o->u.dep.strategy =
                 strdup(strat != NULL ? json_string_value(strat) : "RollingUpdate")) == NULL ||
            sim_kvs_set(&o->meta.annotations, "deployment.kubernetes.io/revision", "1") != 0)
            goto oom;
        o->u.dep.replicas = rep != NULL ? (int32_t)json_integer_value(rep) : 1;
        o->u.dep.history_limit = rhl != NULL ? (int32_t)json_integer_value(rhl) : 10;
        break;
    }
    case KUBE_KIND_SERVICE:
        if ((o = sim_obj_new(s, SK_SERVICE, ns, name, now)) == NULL)
            goto oom;
        if ((rv = build_service(s, o, spec, err)) != BST_OK)
            goto out;
        break;
    default:
        if ((o = sim_obj_new(s, SK_CONFIGMAP, ns, name, now)) == NULL)
            goto oom;
        if (json_object_get(obj, "data") != NULL &&
            kvs_from_json(&o->u.data.data, json_object_get(obj, "data")) != BST_OK)
            goto oom;
        break;
    }
    if (o != NULL) {
        if ((json_object_get(meta, "labels") != NULL &&
             kvs_from_json(&o->meta.labels, json_object_get(meta, "labels")) != BST_OK) ||
            (json_object_get(meta, "annotations") != NULL &&
             kvs_from_json(&o->meta.annotations, json_object_get(meta, "annotations")) != BST_OK))
            goto oom;
        if ((rv = sim_insert(s, o, err)) != BST_OK)
            goto out;
        inserted = o;
        o = NULL;
        if (inserted->kind == SK_DEPLOYMENT &&
            (rv = sim_reconcile_deployment(s, inserted, now, err)) != BST_OK)
            goto out;
    } else if (inserted != NULL) {
        /* A bare pod keeps its manifest's labels and annotations (already in the template). */
    }
    r->uid = kube_strdup(ctx, inserted->meta.uid);
    r->resource_version = sim_rv_str(ctx, inserted->meta.rv);
    r->created = 1;
    *out = r;
    goto out;
oom:
    rv = bst_errf(err, BST_RESOURCE_EXHAUSTED, "out of memory");
out:
    UNLOCK(s);
    sim_obj_free(o);
    sim_template_dispose(&t);
    return rv;
}

/* ---- resources ----------------------------------------------------------------------------- */

struct ref {
    enum kube_kind kind;
    const struct sim_obj *o;
    char uri[340]; /* k8s:// + a 63-byte namespace + a kind + a 253-byte name */
};

static int by_uri(const void *a, const void *b)
{
    return strcmp(((const struct ref *)a)->uri, ((const struct ref *)b)->uri);
}

static enum bst_status sim_list_objects(struct kube_backend *b, const struct kube_ctx *ctx,
                                        const char *after, size_t limit,
                                        struct kube_object_ref **out, size_t *n, int *more,
                                        struct bst_err *err)
{
    struct sim *s = SIM(b);
    struct ref *refs = NULL;
    size_t total = 0, k = 0, first = 0;
    enum bst_status rv = BST_OK;

    *out = NULL;
    *n = 0;
    *more = 0;
    RLOCK(s);
    for (int kind = 0; kind < KUBE_KIND_COUNT; kind++)
        total += s->lists[kind].n;
    if ((refs = malloc((total ? total : 1) * sizeof(*refs))) == NULL) {
        rv = oom(err);
        goto out;
    }
    for (int kind = 0; kind < KUBE_KIND_COUNT; kind++)
        for (size_t i = 0; i < s->lists[kind].n; i++) {
            const struct sim_obj *o = s->lists[kind].v[i];
            refs[k].kind = (enum kube_kind)kind;
            refs[k].o = o;
            snprintf(refs[k].uri, sizeof(refs[k].uri), "k8s://%s/%s/%s", o->meta.namespace_,
                     kube_kind_name((enum kube_kind)kind), o->meta.name);
            k++;
        }
    qsort(refs, total, sizeof(*refs), by_uri);
    while (after != NULL && after[0] != '\0' && first < total &&
           strcmp(refs[first].uri, after) <= 0)
        first++;
    if ((*out = kube_alloc(ctx, (limit ? limit : 1) * sizeof(**out))) == NULL) {
        rv = oom(err);
        goto out;
    }
    for (size_t i = first; i < total && *n < limit; i++) {
        struct kube_object_ref *r = &(*out)[(*n)++];
        r->kind = refs[i].kind;
        r->namespace_ = kube_strdup(ctx, refs[i].o->meta.namespace_);
        r->name = kube_strdup(ctx, refs[i].o->meta.name);
        if (r->namespace_ == NULL || r->name == NULL) {
            rv = oom(err);
            goto out;
        }
    }
    *more = first + *n < total;
out:
    UNLOCK(s);
    free(refs);
    return rv;
}

static enum bst_status sim_get_object(struct kube_backend *b, const struct kube_ctx *ctx,
                                      enum kube_kind kind, const char *ns, const char *name,
                                      json_t **out, struct bst_err *err)
{
    struct sim *s = SIM(b);
    const struct sim_obj *o;
    enum bst_status rv = BST_OK;

    (void)ctx;
    *out = NULL;
    if ((unsigned)kind >= KUBE_KIND_COUNT)
        return bst_errf(err, BST_NOT_FOUND, "no such kind");
    RLOCK(s);
    o = sim_find(s, (enum sim_kind)kind, ns, name);
    if (o == NULL)
        rv = bst_errf(err, BST_NOT_FOUND, "%s \"%s\" not found", kube_kind_name(kind), name);
    else if ((*out = sim_json(s, o, sim_now())) == NULL)
        rv = oom(err);
    UNLOCK(s);
    return rv;
}

/* ---- life cycle ---------------------------------------------------------------------------- */

static void sim_destroy(struct kube_backend *b)
{
    struct sim *s = SIM(b);
    for (int k = 0; k < SK_COUNT; k++) {
        for (size_t i = 0; i < s->lists[k].n; i++)
            sim_obj_free(s->lists[k].v[i]);
        free(s->lists[k].v);
    }
    for (size_t i = 0; i < s->n_nodes; i++)
        free(s->nodes[i].name);
    free(s->nodes);
    free(s->version);
    pthread_rwlock_destroy(&s->lock);
    free(s);
}

static const struct kube_backend_ops sim_ops = {
    .name = "sim",
    .flags = KUBE_BACKEND_NONBLOCKING,
    .list_namespaces = sim_list_namespaces,
    .list_pods = sim_list_pods,
    .get_pod = sim_get_pod,
    .get_pod_logs = sim_get_pod_logs,
    .delete_pod = sim_delete_pod_op,
    .restart_pod = sim_restart_pod,
    .list_deployments = sim_list_deployments,
    .scale_deployment = sim_scale_deployment,
    .restart_deployment = sim_restart_deployment,
    .list_services = sim_list_services,
    .list_events = sim_list_events,
    .list_secrets = sim_list_secrets,
    .create_secret = sim_create_secret,
    .delete_secret = sim_delete_secret,
    .create_resource = sim_create_resource,
    .list_objects = sim_list_objects,
    .get_object = sim_get_object,
    .destroy = sim_destroy,
};

enum bst_status kube_sim_new(struct kube_backend **out, const struct kube_sim_options *opts,
                             struct bst_err *err)
{
    struct sim *s = calloc(1, sizeof(*s));
    enum bst_status rv;

    *out = NULL;
    if (s == NULL)
        return bst_errf(err, BST_RESOURCE_EXHAUSTED, "out of memory");
    if (pthread_rwlock_init(&s->lock, NULL) != 0) {
        free(s);
        return bst_errf(err, BST_RESOURCE_EXHAUSTED, "cannot create a lock");
    }
    s->base.ops = &sim_ops;
    s->max_objects = opts != NULL && opts->max_objects > 0 ? opts->max_objects : 10000;
    s->max_events = opts != NULL && opts->max_events > 0 ? opts->max_events : 1000;
    s->t0 = sim_now();
    s->rv = 1000;
    if ((rv = sim_seed_load(s, opts != NULL ? opts->seed_path : NULL, err)) != BST_OK) {
        sim_destroy(&s->base);
        return rv;
    }
    *out = &s->base;
    return BST_OK;
}
