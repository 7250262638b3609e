/* How the simulated cluster's objects look from outside: pod states derived from behaviour and
 * age, the proto messages tools return (kube/backend.h), and Kubernetes JSON for resources,
 * shaped as the API server writes it (kubectl get -o json). Callers hold the lock. */
#include "sim_internal.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

void sim_rfc3339(int64_t t, char *buf, size_t len)
{
    time_t tt = (time_t)t;
    struct tm tm;
    if (gmtime_r(&tt, &tm) == NULL || strftime(buf, len, "%Y-%m-%dT%H:%M:%SZ", &tm) == 0)
        snprintf(buf, len, "1970-01-01T00:00:00Z");
}

char *sim_rv_str(const struct kube_ctx *ctx, uint64_t v)
{
    char buf[24];
    snprintf(buf, sizeof(buf), "%llu", (unsigned long long)v);
    return kube_strdup(ctx, buf);
}

static char *ts(const struct kube_ctx *ctx, int64_t t)
{
    char buf[32];
    sim_rfc3339(t, buf, sizeof(buf));
    return kube_strdup(ctx, buf);
}

/* ---- pod state ----------------------------------------------------------------------------- */

#define CRASH_RUN_SECONDS 3
#define BACKOFF_FIRST 10
#define BACKOFF_MAX 300

uint32_t sim_crashloop_restarts(int64_t age, int64_t *cur_start_off, int64_t *prev_start_off)
{
    int64_t t = 0, backoff = BACKOFF_FIRST, prev = -1;
    uint32_t restarts = 0;

    for (;;) {
        int64_t next = t + CRASH_RUN_SECONDS + backoff;
        if (age < next)
            break;
        /* Once the back-off is at its cap every cycle is equal: skip whole cycles at once. */
        if (backoff == BACKOFF_MAX) {
            int64_t cycle = CRASH_RUN_SECONDS + BACKOFF_MAX;
            int64_t k = (age - t) / cycle;
            if (k > 1) {
                restarts += (uint32_t)(k - 1);
                t += (k - 1) * cycle;
                continue;
            }
        }
        restarts++;
        prev = t;
        t = next;
        backoff = backoff * 2 > BACKOFF_MAX ? BACKOFF_MAX : backoff * 2;
    }
    *cur_start_off = t;
    *prev_start_off = prev >= 0 ? prev : 0;
    if (restarts > 0 && prev < 0)
        *prev_start_off = t - CRASH_RUN_SECONDS - BACKOFF_MAX;
    return restarts;
}

void sim_pod_state(const struct sim_obj *p, int64_t now, struct sim_pod_state *st)
{
    const struct sim_pod *pod = &p->u.pod;
    int64_t up = p->meta.created + SIM_CREATING_SECONDS, age = now - up;
    uint32_t n = (uint32_t)pod->t.n_containers;

    memset(st, 0, sizeof(*st));
    st->started = up;
    st->restarts = pod->base_restarts;
    if (pod->t.behavior == SB_UNSCHEDULABLE || pod->node == NULL) {
        st->phase = "Pending";
        st->status = "Pending";
        return;
    }
    if (age < 0) {
        st->phase = "Pending";
        st->status = "ContainerCreating";
        st->waiting_reason = "ContainerCreating";
        return;
    }
    switch (pod->t.behavior) {
    case SB_CRASHLOOP: {
        int64_t cur, prev;
        st->restarts = sim_crashloop_restarts(age, &cur, &prev);
        st->phase = "Running";
        st->running = 1;
        st->started = up + cur;
        st->prev_start = up + prev;
        st->prev_end = up + prev + CRASH_RUN_SECONDS;
        if (age - cur < CRASH_RUN_SECONDS) {
            st->status = "Running";
            st->ready = n;
        } else {
            st->status = "CrashLoopBackOff";
            st->waiting_reason = "CrashLoopBackOff";
            st->ready = n - 1;
        }
        return;
    }
    case SB_IMAGE_PULL:
        st->phase = "Pending";
        st->status = age < 10 ? "ErrImagePull" : "ImagePullBackOff";
        st->waiting_reason = st->status;
        st->ready = n - 1;
        return;
    case SB_COMPLETED:
        st->phase = "Succeeded";
        st->status = "Completed";
        st->running = 1;
        return;
    default:
        st->phase = "Running";
        st->status = "Running";
        st->ready = n;
        st->running = 1;
        if (st->restarts > 0) {
            /* The previous instance ended a while ago; the current one has run since. */
            st->prev_start = up + age / 3;
            st->prev_end = st->started = up + age / 3 * 2;
        }
        return;
    }
}

/* ---- proto views --------------------------------------------------------------------------- */

static Bastion__V1__Label **labels_view(const struct sim_kvs *kv, size_t *n,
                                        const struct kube_ctx *ctx, int *fail)
{
    Bastion__V1__Label **v = kube_alloc(ctx, (kv->n ? kv->n : 1) * sizeof(*v));
    *n = 0;
    if (v == NULL) {
        *fail = 1;
        return NULL;
    }
    for (size_t i = 0; i < kv->n; i++) {
        Bastion__V1__Label *l = kube_alloc(ctx, sizeof(*l));
        if (l == NULL) {
            *fail = 1;
            return v;
        }
        bastion__v1__label__init(l);
        l->key = kube_strdup(ctx, kv->v[i].key);
        l->value = kube_strdup(ctx, kv->v[i].value);
        *fail |= l->key == NULL || l->value == NULL;
        v[(*n)++] = l;
    }
    return v;
}

#define SET_STR(dst, src)                                                                          \
    do {                                                                                           \
        (dst) = kube_strdup(ctx, (src));                                                           \
        fail |= (src) != NULL && (dst) == NULL;                                                    \
    } while (0)

static const char *owner_kind(enum sim_kind k)
{
    return kube_kind_title((enum kube_kind)k);
}

Bastion__V1__Pod *sim_view_pod(const struct sim *s, const struct sim_obj *p, int64_t now,
                               const struct kube_ctx *ctx)
{
    Bastion__V1__Pod *m = kube_alloc(ctx, sizeof(*m));
    const struct sim_pod *pod = &p->u.pod;
    struct sim_pod_state st;
    int fail = 0;
    uint32_t total_restarts;

    (void)s;
    if (m == NULL)
        return NULL;
    bastion__v1__pod__init(m);
    sim_pod_state(p, now, &st);
    SET_STR(m->name, p->meta.name);
    SET_STR(m->namespace_, p->meta.namespace_);
    SET_STR(m->phase, pod->deleted ? "Running" : st.phase);
    SET_STR(m->status, pod->deleted ? "Terminating" : st.status);
    SET_STR(m->node, pod->node != NULL ? pod->node : "");
    SET_STR(m->ip, pod->node != NULL && (st.running || st.phase[0] != 'P' ||
                                         (st.waiting_reason != NULL &&
                                          strcmp(st.waiting_reason, "ContainerCreating") != 0))
                       ? pod->ip
                       : "");
    SET_STR(m->uid, p->meta.uid);
    m->resource_version = sim_rv_str(ctx, p->meta.rv);
    m->creation_timestamp = ts(ctx, p->meta.created);
    SET_STR(m->service_account, pod->t.service_account);
    if (pod->deleted)
        m->deletion_timestamp = ts(ctx, pod->deleted);
    m->has_start_time_unix = 1;
    m->start_time_unix = p->meta.created;
    m->labels = labels_view(&p->meta.labels, &m->n_labels, ctx, &fail);
    m->annotations = labels_view(&p->meta.annotations, &m->n_annotations, ctx, &fail);
    m->containers =
        kube_alloc(ctx, (pod->t.n_containers ? pod->t.n_containers : 1) * sizeof(*m->containers));
    if (m->containers == NULL)
        return NULL;
    total_restarts = 0;
    for (size_t i = 0; i < pod->t.n_containers; i++) {
        Bastion__V1__ContainerStatus *c = kube_alloc(ctx, sizeof(*c));
        const struct sim_container *sc = &pod->t.containers[i];
        int first = i == 0;
        if (c == NULL)
            return NULL;
        bastion__v1__container_status__init(c);
        SET_STR(c->name, sc->name);
        SET_STR(c->image, sc->image);
        c->has_ready = c->has_restart_count = 1;
        c->restart_count = first ? st.restarts : 0;
        total_restarts += c->restart_count;
        if (!first && pod->node != NULL && st.status != NULL &&
            strcmp(st.status, "ContainerCreating") != 0) {
            /* Sidecars run whatever the first container does. */
            c->ready = 1;
            SET_STR(c->state, "Running");
            c->started_at = ts(ctx, p->meta.created + SIM_CREATING_SECONDS);
        } else if (first && st.waiting_reason == NULL && st.running) {
            int done = pod->t.behavior == SB_COMPLETED;
            c->ready = !done;
            SET_STR(c->state, done ? "Terminated" : "Running");
            if (done)
                SET_STR(c->reason, "Completed");
            c->started_at = ts(ctx, st.started);
        } else {
            SET_STR(c->state, "Waiting");
            if (first && st.waiting_reason != NULL)
                SET_STR(c->reason, st.waiting_reason);
            else if (st.status != NULL && strcmp(st.status, "ContainerCreating") == 0)
                SET_STR(c->reason, "ContainerCreating");
        }
        if (first && c->restart_count > 0) {
            char last[96];
            snprintf(last, sizeof(last), "Terminated: %s (exit code %d)", pod->last_reason,
                     strcmp(pod->last_reason, "OOMKilled") == 0 ? 137 : 1);
            SET_STR(c->last_state, last);
        }
        m->containers[m->n_containers++] = c;
    }
    m->has_restarts = m->has_ready_containers = m->has_total_containers = 1;
    m->restarts = total_restarts;
    m->ready_containers = pod->deleted ? 0 : st.ready;
    m->total_containers = (uint32_t)pod->t.n_containers;
    if (p->meta.owner.kind != SK_COUNT) {
        Bastion__V1__OwnerReference *o = kube_alloc(ctx, sizeof(*o));
        if (o == NULL)
            return NULL;
        bastion__v1__owner_reference__init(o);
        SET_STR(o->kind, owner_kind(p->meta.owner.kind));
        SET_STR(o->name, p->meta.owner.name);
        SET_STR(o->uid, p->meta.owner.uid);
        o->has_controller = o->controller = 1;
        m->owner = o;
    }
    return fail ? NULL : m;
}

static struct sim_obj *current_rs(const struct sim *s, const struct sim_obj *d)
{
    const struct sim_list *rss = &s->lists[SK_REPLICASET];
    struct sim_obj *best = NULL;
    for (size_t i = 0; i < rss->n; i++) {
        struct sim_obj *rs = rss->v[i];
        if (rs->meta.owner.kind == SK_DEPLOYMENT && strcmp(rs->meta.owner.uid, d->meta.uid) == 0 &&
            (best == NULL || rs->u.rs.revision > best->u.rs.revision))
            best = rs;
    }
    return best;
}

Bastion__V1__Deployment *sim_view_deployment(const struct sim *s, const struct sim_obj *d,
                                             int64_t now, const struct kube_ctx *ctx)
{
    Bastion__V1__Deployment *m = kube_alloc(ctx, sizeof(*m));
    const struct sim_deploy *dep = &d->u.dep;
    const struct sim_obj *cur = current_rs(s, d);
    int32_t total, ready, updated = 0, updated_ready;
    char sel[1024];
    int fail = 0;

    if (m == NULL)
        return NULL;
    bastion__v1__deployment__init(m);
    sim_count_pods(s, d, now, &total, &ready);
    if (cur != NULL)
        sim_count_pods(s, cur, now, &updated, &updated_ready);
    SET_STR(m->name, d->meta.name);
    SET_STR(m->namespace_, d->meta.namespace_);
    SET_STR(m->uid, d->meta.uid);
    m->resource_version = sim_rv_str(ctx, d->meta.rv);
    m->creation_timestamp = ts(ctx, d->meta.created);
    m->labels = labels_view(&d->meta.labels, &m->n_labels, ctx, &fail);
    m->has_replicas = m->has_ready_replicas = m->has_updated_replicas = 1;
    m->has_available_replicas = 1;
    m->replicas = dep->replicas;
    m->ready_replicas = ready;
    m->updated_replicas = updated;
    m->available_replicas = ready;
    if (kube_selector_format(dep->selector.v, dep->selector.n, sel, sizeof(sel)) == 0)
        SET_STR(m->selector, sel);
    m->containers =
        kube_alloc(ctx, (dep->t.n_containers ? dep->t.n_containers : 1) * sizeof(*m->containers));
    if (m->containers == NULL)
        return NULL;
    for (size_t i = 0; i < dep->t.n_containers; i++) {
        Bastion__V1__ContainerImage *c = kube_alloc(ctx, sizeof(*c));
        if (c == NULL)
            return NULL;
        bastion__v1__container_image__init(c);
        SET_STR(c->name, dep->t.containers[i].name);
        SET_STR(c->image, dep->t.containers[i].image);
        m->containers[m->n_containers++] = c;
    }
    m->has_generation = m->has_observed_generation = 1;
    m->generation = d->meta.generation;
    m->observed_generation = dep->observed_generation;
    SET_STR(m->restarted_at, sim_kvs_get(&dep->t.annotations, "kubectl.kubernetes.io/restartedAt"));
    SET_STR(m->strategy, dep->strategy);
    if (cur != NULL)
        SET_STR(m->current_replica_set, cur->meta.name);
    return fail ? NULL : m;
}

Bastion__V1__Service *sim_view_service(const struct sim_obj *o, const struct kube_ctx *ctx)
{
    Bastion__V1__Service *m = kube_alloc(ctx, sizeof(*m));
    const struct sim_service *svc = &o->u.svc;
    int fail = 0;

    if (m == NULL)
        return NULL;
    bastion__v1__service__init(m);
    SET_STR(m->name, o->meta.name);
    SET_STR(m->namespace_, o->meta.namespace_);
    SET_STR(m->uid, o->meta.uid);
    m->resource_version = sim_rv_str(ctx, o->meta.rv);
    m->creation_timestamp = ts(ctx, o->meta.created);
    m->labels = labels_view(&o->meta.labels, &m->n_labels, ctx, &fail);
    SET_STR(m->type, svc->type);
    SET_STR(m->cluster_ip, svc->cluster_ip);
    SET_STR(m->external_ip, svc->external_ip);
    m->selector = labels_view(&svc->selector, &m->n_selector, ctx, &fail);
    m->ports = kube_alloc(ctx, (svc->n_ports ? svc->n_ports : 1) * sizeof(*m->ports));
    if (m->ports == NULL)
        return NULL;
    for (size_t i = 0; i < svc->n_ports; i++) {
        Bastion__V1__ServicePort *p = kube_alloc(ctx, sizeof(*p));
        if (p == NULL)
            return NULL;
        bastion__v1__service_port__init(p);
        SET_STR(p->name, svc->ports[i].name);
        SET_STR(p->protocol, svc->ports[i].protocol);
        SET_STR(p->target_port, svc->ports[i].target_port);
        p->has_port = 1;
        p->port = svc->ports[i].port;
        if (svc->ports[i].node_port > 0) {
            p->has_node_port = 1;
            p->node_port = svc->ports[i].node_port;
        }
        m->ports[m->n_ports++] = p;
    }
    return fail ? NULL : m;
}

static const char *kind_title(enum sim_kind k)
{
    if (k == SK_NAMESPACE)
        return "Namespace";
    return kube_kind_title((enum kube_kind)k);
}

Bastion__V1__Event *sim_view_event(const struct sim_obj *o, const struct kube_ctx *ctx)
{
    Bastion__V1__Event *m = kube_alloc(ctx, sizeof(*m));
    const struct sim_event *ev = &o->u.ev;
    int fail = 0;

    if (m == NULL)
        return NULL;
    bastion__v1__event__init(m);
    SET_STR(m->name, o->meta.name);
    SET_STR(m->namespace_, o->meta.namespace_);
    SET_STR(m->type, ev->type);
    SET_STR(m->reason, ev->reason);
    SET_STR(m->message, ev->message);
    SET_STR(m->object_kind, kind_title(ev->involved_kind));
    SET_STR(m->object_name, ev->involved_name);
    m->has_count = 1;
    m->count = ev->count;
    m->first_timestamp = ts(ctx, ev->first);
    m->last_timestamp = ts(ctx, ev->last);
    SET_STR(m->source, ev->source);
    m->resource_version = sim_rv_str(ctx, o->meta.rv);
    return fail ? NULL : m;
}

Bastion__V1__Namespace *sim_view_namespace(const struct sim_obj *o, const struct kube_ctx *ctx)
{
    Bastion__V1__Namespace *m = kube_alloc(ctx, sizeof(*m));
    int fail = 0;

    if (m == NULL)
        return NULL;
    bastion__v1__namespace__init(m);
    SET_STR(m->name, o->meta.name);
    SET_STR(m->phase, "Active");
    m->labels = labels_view(&o->meta.labels, &m->n_labels, ctx, &fail);
    SET_STR(m->uid, o->meta.uid);
    m->resource_version = sim_rv_str(ctx, o->meta.rv);
    m->creation_timestamp = ts(ctx, o->meta.created);
    return fail ? NULL : m;
}

Bastion__V1__Secret *sim_view_secret(const struct sim_obj *o, const struct kube_ctx *ctx)
{
    Bastion__V1__Secret *m = kube_alloc(ctx, sizeof(*m));
    const struct sim_data *d = &o->u.data;
    int fail = 0;

    if (m == NULL)
        return NULL;
    bastion__v1__secret__init(m);
    SET_STR(m->name, o->meta.name);
    SET_STR(m->namespace_, o->meta.namespace_);
    SET_STR(m->type, d->type);
    SET_STR(m->uid, o->meta.uid);
    m->resource_version = sim_rv_str(ctx, o->meta.rv);
    m->creation_timestamp = ts(ctx, o->meta.created);
    m->labels = labels_view(&o->meta.labels, &m->n_labels, ctx, &fail);
    /* Key names only: values are write-only. */
    m->keys = kube_alloc(ctx, (d->data.n ? d->data.n : 1) * sizeof(*m->keys));
    if (m->keys == NULL)
        return NULL;
    for (size_t i = 0; i < d->data.n; i++) {
        SET_STR(m->keys[i], d->data.v[i].key);
        m->n_keys = i + 1;
    }
    return fail ? NULL : m;
}

/* ---- Kubernetes JSON ----------------------------------------------------------------------- */

static json_t *kvs_json(const struct sim_kvs *kv)
{
    json_t *o = json_object();
    for (size_t i = 0; o != NULL && i < kv->n; i++)
        if (json_object_set_new(o, kv->v[i].key, json_string(kv->v[i].value)) != 0) {
            json_decref(o);
            return NULL;
        }
    return o;
}

static json_t *time_json(int64_t t)
{
    char buf[32];
    sim_rfc3339(t, buf, sizeof(buf));
    return json_string(buf);
}

static json_t *meta_json(const struct sim_obj *o)
{
    char rv[24];
    json_t *m;

    snprintf(rv, sizeof(rv), "%llu", (unsigned long long)o->meta.rv);
    m = json_pack("{s:s, s:s, s:s, s:o}", "name", o->meta.name, "uid", o->meta.uid,
                  "resourceVersion", rv, "creationTimestamp", time_json(o->meta.created));
    if (m == NULL)
        return NULL;
    if (o->meta.namespace_ != NULL)
        json_object_set_new(m, "namespace", json_string(o->meta.namespace_));
    if (o->kind == SK_DEPLOYMENT || o->kind == SK_REPLICASET)
        json_object_set_new(m, "generation", json_integer(o->meta.generation));
    if (o->meta.labels.n > 0)
        json_object_set_new(m, "labels", kvs_json(&o->meta.labels));
    if (o->meta.annotations.n > 0)
        json_object_set_new(m, "annotations", kvs_json(&o->meta.annotations));
    if (o->meta.owner.kind != SK_COUNT)
        json_object_set_new(m, "ownerReferences",
                            json_pack("[{s:s, s:s, s:s, s:s, s:b, s:b}]", "apiVersion", "apps/v1",
                                      "kind", owner_kind(o->meta.owner.kind), "name",
                                      o->meta.owner.name, "uid", o->meta.owner.uid, "controller", 1,
                                      "blockOwnerDeletion", 1));
    return m;
}

/* The container ID the runtime would report: stable per pod, container and instance. */
static void container_id(const struct sim_obj *p, size_t i, uint32_t restarts, char out[80])
{
    uint64_t h = p->u.pod.log_seed ^ ((uint64_t)(i + 1) * 0x9e3779b97f4a7c15ULL) ^ restarts;
    int o = snprintf(out, 80, "containerd://");
    for (int k = 0; k < 4; k++) {
        h ^= h >> 33;
        h *= 0xff51afd7ed558ccdULL;
        h ^= h >> 33;
        o += snprintf(out + o, (size_t)(80 - o), "%016llx", (unsigned long long)h);
    }
}

/* The image ID the runtime reports: the fully qualified repository (docker.io/library/ for
 * short names) without the tag, and a digest. */
static void image_ref(const char *image, const char *digest, char *out, size_t len)
{
    const char *slash = strchr(image, '/'), *colon;
    char repo[200];
    size_t n;

    colon = strrchr(image, ':');
    if (colon != NULL && slash != NULL && colon < strrchr(image, '/'))
        colon = NULL; /* a registry port, not a tag */
    n = colon != NULL ? (size_t)(colon - image) : strlen(image);
    if (n >= sizeof(repo))
        n = sizeof(repo) - 1;
    memcpy(repo, image, n);
    repo[n] = '\0';
    if (slash == NULL)
        snprintf(out, len, "docker.io/library/%s@sha256:%.64s", repo, digest);
    else if (memchr(image, '.', (size_t)(slash - image)) == NULL &&
             memchr(image, ':', (size_t)(slash - image)) == NULL)
        snprintf(out, len, "docker.io/%s@sha256:%.64s", repo, digest);
    else
        snprintf(out, len, "%s@sha256:%.64s", repo, digest);
}

static json_t *pod_status_json(const struct sim *s, const struct sim_obj *p, int64_t now)
{
    const struct sim_pod *pod = &p->u.pod;
    struct sim_pod_state st;
    json_t *status, *conds, *statuses;
    char host_ip[16] = "";
    int ready;

    sim_pod_state(p, now, &st);
    ready = st.ready == pod->t.n_containers && st.ready > 0;
    for (size_t i = 0; i < s->n_nodes; i++)
        if (pod->node != NULL && strcmp(s->nodes[i].name, pod->node) == 0)
            snprintf(host_ip, sizeof(host_ip), "172.18.0.%zu", i + 2);
    status = json_pack("{s:s}", "phase", st.phase);
    conds = json_array();
    if (status == NULL || conds == NULL) {
        json_decref(status);
        json_decref(conds);
        return NULL;
    }
    json_object_set_new(status, "conditions", conds);
    if (pod->node == NULL) {
        json_array_append_new(conds, json_pack("{s:s, s:s, s:n, s:o, s:s, s:s}", "type",
                                               "PodScheduled", "status", "False", "lastProbeTime",
                                               "lastTransitionTime", time_json(p->meta.created),
                                               "reason", "Unschedulable", "message",
                                               "0/4 nodes are available: 3 Insufficient memory."));
        json_object_set_new(status, "qosClass", json_string("Burstable"));
        return status;
    }
    json_array_append_new(conds,
                          json_pack("{s:s, s:s, s:n, s:o}", "type", "PodReadyToStartContainers",
                                    "status", "True", "lastProbeTime", "lastTransitionTime",
                                    time_json(p->meta.created + 1)));
    json_array_append_new(conds, json_pack("{s:s, s:s, s:n, s:o}", "type", "Initialized", "status",
                                           "True", "lastProbeTime", "lastTransitionTime",
                                           time_json(p->meta.created)));
    json_array_append_new(conds, json_pack("{s:s, s:s, s:n, s:o}", "type", "Ready", "status",
                                           ready ? "True" : "False", "lastProbeTime",
                                           "lastTransitionTime", time_json(st.started)));
    json_array_append_new(conds, json_pack("{s:s, s:s, s:n, s:o}", "type", "ContainersReady",
                                           "status", ready ? "True" : "False", "lastProbeTime",
                                           "lastTransitionTime", time_json(st.started)));
    json_array_append_new(conds, json_pack("{s:s, s:s, s:n, s:o}", "type", "PodScheduled", "status",
                                           "True", "lastProbeTime", "lastTransitionTime",
                                           time_json(p->meta.created)));
    if (host_ip[0] != '\0') {
        json_object_set_new(status, "hostIP", json_string(host_ip));
        json_object_set_new(status, "hostIPs", json_pack("[{s:s}]", "ip", host_ip));
    }
    if (strcmp(st.status, "ContainerCreating") != 0) {
        json_object_set_new(status, "podIP", json_string(pod->ip));
        json_object_set_new(status, "podIPs", json_pack("[{s:s}]", "ip", pod->ip));
    }
    json_object_set_new(status, "startTime", time_json(p->meta.created));
    statuses = json_array();
    json_object_set_new(status, "containerStatuses", statuses);
    for (size_t i = 0; statuses != NULL && i < pod->t.n_containers; i++) {
        const struct sim_container *c = &pod->t.containers[i];
        uint32_t restarts = i == 0 ? st.restarts : 0;
        int waiting =
            (i == 0 && st.waiting_reason != NULL) || strcmp(st.status, "ContainerCreating") == 0;
        int terminated = i == 0 && pod->t.behavior == SB_COMPLETED;
        char cid[80], image_id[320];
        json_t *cs, *state;

        container_id(p, i, restarts, cid);
        image_ref(c->image, cid + 13, image_id, sizeof(image_id));
        if (waiting)
            state = json_pack("{s:{s:s}}", "waiting", "reason",
                              i == 0 && st.waiting_reason != NULL ? st.waiting_reason
                                                                  : "ContainerCreating");
        else if (terminated)
            state = json_pack("{s:{s:i, s:s, s:o, s:o, s:s}}", "terminated", "exitCode", 0,
                              "reason", "Completed", "startedAt", time_json(st.started),
                              "finishedAt", time_json(st.started + 5), "containerID", cid);
        else
            state = json_pack("{s:{s:o}}", "running", "startedAt",
                              time_json(i == 0 ? st.started : p->meta.created + 2));
        cs = json_pack("{s:s, s:o, s:b, s:i, s:s, s:b}", "name", c->name, "state", state, "ready",
                       waiting || terminated ? 0 : (i == 0 ? st.ready > 0 : 1), "restartCount",
                       (int)restarts, "image", c->image, "started", !waiting && !terminated);
        if (cs == NULL)
            continue;
        if (!waiting) {
            json_object_set_new(cs, "imageID", json_string(image_id));
            json_object_set_new(cs, "containerID", json_string(cid));
        } else {
            json_object_set_new(cs, "imageID", json_string(""));
        }
        if (restarts > 0)
            json_object_set_new(cs, "lastState",
                                json_pack("{s:{s:i, s:s, s:o, s:o}}", "terminated", "exitCode",
                                          strcmp(pod->last_reason, "OOMKilled") == 0 ? 137 : 1,
                                          "reason", pod->last_reason, "startedAt",
                                          time_json(st.prev_start), "finishedAt",
                                          time_json(st.prev_end)));
        else
            json_object_set_new(cs, "lastState", json_object());
        json_array_append_new(statuses, cs);
    }
    json_object_set_new(status, "qosClass", json_string("Burstable"));
    return status;
}

static json_t *pod_spec_json(const struct sim_obj *p)
{
    json_t *spec = p->u.pod.t.spec != NULL ? json_deep_copy(p->u.pod.t.spec) : json_object();
    if (spec == NULL)
        return NULL;
    if (p->u.pod.node != NULL)
        json_object_set_new(spec, "nodeName", json_string(p->u.pod.node));
    if (json_object_get(spec, "serviceAccountName") == NULL)
        json_object_set_new(spec, "serviceAccountName",
                            json_string(p->u.pod.t.service_account != NULL
                                            ? p->u.pod.t.service_account
                                            : "default"));
    return spec;
}

static json_t *template_json(const struct sim_template *t)
{
    json_t *meta = json_object();
    if (meta == NULL)
        return NULL;
    if (t->labels.n > 0)
        json_object_set_new(meta, "labels", kvs_json(&t->labels));
    if (t->annotations.n > 0)
        json_object_set_new(meta, "annotations", kvs_json(&t->annotations));
    return json_pack("{s:o, s:o}", "metadata", meta, "spec",
                     t->spec != NULL ? json_deep_copy(t->spec) : json_object());
}

static json_t *deploy_spec_json(const struct sim_obj *d)
{
    const struct sim_deploy *dep = &d->u.dep;
    return json_pack("{s:i, s:{s:o}, s:o, s:{s:s, s:{s:s, s:s}}, s:i, s:i}", "replicas",
                     dep->replicas, "selector", "matchLabels", kvs_json(&dep->selector), "template",
                     template_json(&dep->t), "strategy", "type", dep->strategy, "rollingUpdate",
                     "maxSurge", "25%", "maxUnavailable", "25%", "revisionHistoryLimit",
                     dep->history_limit, "progressDeadlineSeconds", 600);
}

static json_t *deploy_status_json(const struct sim *s, const struct sim_obj *d, int64_t now)
{
    const struct sim_deploy *dep = &d->u.dep;
    int32_t total, ready, updated = 0, uready = 0;
    const struct sim_obj *cur = current_rs(s, d);
    char since[32], msg[400];
    int ok;

    sim_count_pods(s, d, now, &total, &ready);
    if (cur != NULL)
        sim_count_pods(s, cur, now, &updated, &uready);
    ok = ready >= dep->replicas;
    sim_rfc3339(d->meta.created, since, sizeof(since));
    snprintf(msg, sizeof(msg), "ReplicaSet \"%s\" has successfully progressed.",
             cur != NULL ? cur->meta.name : d->meta.name);
    return json_pack("{s:I, s:i, s:i, s:i, s:i, s:[{s:s, s:s, s:s, s:s, s:s, s:s}, "
                     "{s:s, s:s, s:s, s:s, s:s, s:s}]}",
                     "observedGeneration", (json_int_t)dep->observed_generation, "replicas", total,
                     "updatedReplicas", updated, "readyReplicas", ready, "availableReplicas", ready,
                     "conditions", "type", "Available", "status", ok ? "True" : "False",
                     "lastUpdateTime", since, "lastTransitionTime", since, "reason",
                     ok ? "MinimumReplicasAvailable" : "MinimumReplicasUnavailable", "message",
                     ok ? "Deployment has minimum availability."
                        : "Deployment does not have minimum availability.",
                     "type", "Progressing", "status", "True", "lastUpdateTime", since,
                     "lastTransitionTime", since, "reason", "NewReplicaSetAvailable", "message",
                     msg);
}

json_t *sim_json(const struct sim *s, const struct sim_obj *o, int64_t now)
{
    json_t *meta = meta_json(o);
    int32_t total, ready;

    if (meta == NULL)
        return NULL;
    switch (o->kind) {
    case SK_POD:
        return json_pack("{s:s, s:s, s:o, s:o, s:o}", "apiVersion", "v1", "kind", "Pod", "metadata",
                         meta, "spec", pod_spec_json(o), "status", pod_status_json(s, o, now));
    case SK_DEPLOYMENT:
        return json_pack("{s:s, s:s, s:o, s:o, s:o}", "apiVersion", "apps/v1", "kind", "Deployment",
                         "metadata", meta, "spec", deploy_spec_json(o), "status",
                         deploy_status_json(s, o, now));
    case SK_REPLICASET: {
        json_t *sel = kvs_json(&o->u.rs.t.labels);
        sim_count_pods(s, o, now, &total, &ready);
        return json_pack("{s:s, s:s, s:o, s:{s:i, s:{s:o}, s:o}, s:{s:i, s:i, s:i, s:i, s:I}}",
                         "apiVersion", "apps/v1", "kind", "ReplicaSet", "metadata", meta, "spec",
                         "replicas", o->u.rs.replicas, "selector", "matchLabels", sel, "template",
                         template_json(&o->u.rs.t), "status", "replicas", total,
                         "fullyLabeledReplicas", total, "readyReplicas", ready, "availableReplicas",
                         ready, "observedGeneration", (json_int_t)o->meta.generation);
    }
    case SK_SERVICE: {
        const struct sim_service *svc = &o->u.svc;
        json_t *ports = json_array(), *spec;
        for (size_t i = 0; ports != NULL && i < svc->n_ports; i++) {
            const struct sim_svc_port *p = &svc->ports[i];
            char *end;
            long tp = strtol(p->target_port != NULL ? p->target_port : "", &end, 10);
            json_t *pj = json_pack("{s:s, s:i}", "protocol", p->protocol, "port", p->port);
            if (pj == NULL)
                continue;
            if (p->name != NULL)
                json_object_set_new(pj, "name", json_string(p->name));
            json_object_set_new(pj, "targetPort",
                                p->target_port != NULL && *end == '\0' && end != p->target_port
                                    ? json_integer(tp)
                                    : json_string(p->target_port != NULL ? p->target_port : ""));
            if (p->node_port > 0)
                json_object_set_new(pj, "nodePort", json_integer(p->node_port));
            json_array_append_new(ports, pj);
        }
        spec = json_pack("{s:s, s:s, s:[s], s:o, s:s, s:[s], s:s, s:s}", "type", svc->type,
                         "clusterIP", svc->cluster_ip, "clusterIPs", svc->cluster_ip, "ports",
                         ports, "sessionAffinity", "None", "ipFamilies", "IPv4", "ipFamilyPolicy",
                         "SingleStack", "internalTrafficPolicy", "Cluster");
        if (spec != NULL && svc->selector.n > 0)
            json_object_set_new(spec, "selector", kvs_json(&svc->selector));
        return json_pack("{s:s, s:s, s:o, s:o, s:{s:o}}", "apiVersion", "v1", "kind", "Service",
                         "metadata", meta, "spec", spec, "status", "loadBalancer",
                         svc->external_ip != NULL ? json_pack("{s:[{s:s, s:s}]}", "ingress", "ip",
                                                              svc->external_ip, "ipMode", "VIP")
                                                  : json_object());
    }
    case SK_CONFIGMAP:
        return json_pack("{s:s, s:s, s:o, s:o}", "apiVersion", "v1", "kind", "ConfigMap",
                         "metadata", meta, "data", kvs_json(&o->u.data.data));
    case SK_SECRET:
        /* The data is removed: values never leave the gateway. */
        return json_pack("{s:s, s:s, s:o, s:s}", "apiVersion", "v1", "kind", "Secret", "metadata",
                         meta, "type", o->u.data.type);
    default:
        json_decref(meta);
        return NULL;
    }
}
