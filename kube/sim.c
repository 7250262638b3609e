/* The simulated cluster's store and controllers: objects kept sorted per kind, the cluster-wide
 * resourceVersion, events with aggregation, pod scheduling and IPs, and the deployment and
 * replica-set controllers that run synchronously inside every mutation (the callers hold the
 * write lock; see sim_internal.h). */
#include "sim_internal.h"
#include "clock.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

int64_t sim_now(void)
{
    return bst_wall_ns() / BST_NS_PER_S;
}

/* splitmix64: small, fast, and deterministic for a given seed. */
uint64_t sim_rand(struct sim *s)
{
    uint64_t z = (s->rng += 0x9e3779b97f4a7c15ULL);
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ULL;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebULL;
    return z ^ (z >> 31);
}

void sim_uid(struct sim *s, char out[40])
{
    uint64_t a = sim_rand(s), b = sim_rand(s);
    /* RFC 4122 version 4 shape, as the API server's UIDs have. */
    snprintf(out, 40, "%08x-%04x-4%03x-%04x-%012llx", (unsigned)(a >> 32),
             (unsigned)((a >> 16) & 0xffff), (unsigned)(a & 0xfff),
             (unsigned)(0x8000 | ((b >> 48) & 0x3fff)),
             (unsigned long long)(b & 0xffffffffffffULL));
}

/* ---- key/value sets ------------------------------------------------------------------------ */

void sim_kvs_dispose(struct sim_kvs *kv)
{
    for (size_t i = 0; i < kv->n; i++) {
        free(kv->v[i].key);
        free(kv->v[i].value);
    }
    free(kv->v);
    kv->v = NULL;
    kv->n = 0;
}

/* Like sim_kvs_dispose, but wipes the values first (secret data). */
static void kvs_wipe(struct sim_kvs *kv)
{
    for (size_t i = 0; i < kv->n; i++)
        if (kv->v[i].value != NULL)
            explicit_bzero(kv->v[i].value, strlen(kv->v[i].value));
    sim_kvs_dispose(kv);
}

const char *sim_kvs_get(const struct sim_kvs *kv, const char *key)
{
    for (size_t i = 0; i < kv->n; i++)
        if (strcmp(kv->v[i].key, key) == 0)
            return kv->v[i].value;
    return NULL;
}

int sim_kvs_set(struct sim_kvs *kv, const char *key, const char *value)
{
    char *v = strdup(value), *k;
    struct kube_kv *nv;
    if (v == NULL)
        return -1;
    for (size_t i = 0; i < kv->n; i++) {
        if (strcmp(kv->v[i].key, key) == 0) {
            free(kv->v[i].value);
            kv->v[i].value = v;
            return 0;
        }
    }
    k = strdup(key);
    nv = realloc(kv->v, (kv->n + 1) * sizeof(*nv));
    if (k == NULL || nv == NULL) {
        free(k);
        free(v);
        if (nv != NULL)
            kv->v = nv;
        return -1;
    }
    kv->v = nv;
    kv->v[kv->n].key = k;
    kv->v[kv->n].value = v;
    kv->n++;
    return 0;
}

enum bst_status sim_kvs_copy(struct sim_kvs *dst, const struct sim_kvs *src)
{
    dst->v = NULL;
    dst->n = 0;
    for (size_t i = 0; i < src->n; i++) {
        if (sim_kvs_set(dst, src->v[i].key, src->v[i].value) != 0) {
            sim_kvs_dispose(dst);
            return BST_RESOURCE_EXHAUSTED;
        }
    }
    return BST_OK;
}

/* ---- templates ----------------------------------------------------------------------------- */

void sim_template_dispose(struct sim_template *t)
{
    sim_kvs_dispose(&t->labels);
    sim_kvs_dispose(&t->annotations);
    for (size_t i = 0; i < t->n_containers; i++) {
        struct sim_container *c = &t->containers[i];
        free(c->name);
        free(c->image);
        free(c->log_profile);
        for (size_t k = 0; k < c->n_ports; k++) {
            free(c->ports[k].name);
            free(c->ports[k].protocol);
        }
        free(c->ports);
    }
    free(t->containers);
    free(t->service_account);
    json_decref(t->spec);
    memset(t, 0, sizeof(*t));
}

static char *dup_or_null(const char *s, int *fail)
{
    char *d;
    if (s == NULL)
        return NULL;
    if ((d = strdup(s)) == NULL)
        *fail = 1;
    return d;
}

enum bst_status sim_template_copy(struct sim_template *dst, const struct sim_template *src)
{
    int fail = 0;
    memset(dst, 0, sizeof(*dst));
    if (sim_kvs_copy(&dst->labels, &src->labels) != BST_OK ||
        sim_kvs_copy(&dst->annotations, &src->annotations) != BST_OK)
        goto oom;
    dst->containers = calloc(src->n_containers ? src->n_containers : 1, sizeof(*dst->containers));
    if (dst->containers == NULL)
        goto oom;
    dst->n_containers = src->n_containers;
    for (size_t i = 0; i < src->n_containers; i++) {
        const struct sim_container *s = &src->containers[i];
        struct sim_container *d = &dst->containers[i];
        d->name = dup_or_null(s->name, &fail);
        d->image = dup_or_null(s->image, &fail);
        d->log_profile = dup_or_null(s->log_profile, &fail);
        d->ports = calloc(s->n_ports ? s->n_ports : 1, sizeof(*d->ports));
        if (d->ports == NULL)
            goto oom;
        d->n_ports = s->n_ports;
        for (size_t k = 0; k < s->n_ports; k++) {
            d->ports[k].name = dup_or_null(s->ports[k].name, &fail);
            d->ports[k].protocol = dup_or_null(s->ports[k].protocol, &fail);
            d->ports[k].port = s->ports[k].port;
        }
    }
    dst->service_account = dup_or_null(src->service_account, &fail);
    dst->behavior = src->behavior;
    if (src->spec != NULL && (dst->spec = json_deep_copy(src->spec)) == NULL)
        goto oom;
    if (fail)
        goto oom;
    return BST_OK;
oom:
    sim_template_dispose(dst);
    return BST_RESOURCE_EXHAUSTED;
}

/* FNV-1a over the template, as the deployment controller's pod-template-hash. */
static uint32_t fnv(uint32_t h, const char *s)
{
    for (; s != NULL && *s; s++) {
        h ^= (unsigned char)*s;
        h *= 16777619u;
    }
    h ^= 0xff; /* field separator */
    h *= 16777619u;
    return h;
}

/* The pod-template-hash: the decimal hash mapped onto Kubernetes' safe alphabet the way
 * rand.SafeEncodeString does, which is why real hashes look like "7d4b9c6f5". */
static void template_hash(const struct sim_template *t, char out[16])
{
    static const char alphabet[] = "bcdfghjklmnpqrstvwxz2456789";
    uint32_t h = 2166136261u;
    char dec[16];
    size_t i;

    for (i = 0; i < t->labels.n; i++)
        h = fnv(fnv(h, t->labels.v[i].key), t->labels.v[i].value);
    for (i = 0; i < t->annotations.n; i++)
        h = fnv(fnv(h, t->annotations.v[i].key), t->annotations.v[i].value);
    for (i = 0; i < t->n_containers; i++)
        h = fnv(fnv(h, t->containers[i].name), t->containers[i].image);
    h = fnv(h, t->service_account);
    snprintf(dec, sizeof(dec), "%u", h);
    for (i = 0; dec[i] != '\0'; i++)
        out[i] = alphabet[(unsigned char)dec[i] % (sizeof(alphabet) - 1)];
    out[i] = '\0';
}

/* ---- objects and lists --------------------------------------------------------------------- */

static int obj_cmp(const char *ns_a, const char *name_a, const char *ns_b, const char *name_b)
{
    int c = strcmp(ns_a != NULL ? ns_a : "", ns_b != NULL ? ns_b : "");
    return c != 0 ? c : strcmp(name_a, name_b);
}

/* Index of (ns, name) in l, or where it would be inserted (*found = 0). */
static size_t list_search(const struct sim_list *l, const char *ns, const char *name, int *found)
{
    size_t lo = 0, hi = l->n;
    while (lo < hi) {
        size_t mid = lo + (hi - lo) / 2;
        int c = obj_cmp(l->v[mid]->meta.namespace_, l->v[mid]->meta.name, ns, name);
        if (c == 0) {
            *found = 1;
            return mid;
        }
        if (c < 0)
            lo = mid + 1;
        else
            hi = mid;
    }
    *found = 0;
    return lo;
}

struct sim_obj *sim_find(struct sim *s, enum sim_kind k, const char *ns, const char *name)
{
    int found;
    size_t i = list_search(&s->lists[k], ns, name, &found);
    return found ? s->lists[k].v[i] : NULL;
}

struct sim_obj *sim_namespace(struct sim *s, const char *ns)
{
    return ns != NULL ? sim_find(s, SK_NAMESPACE, NULL, ns) : NULL;
}

struct sim_obj *sim_obj_new(struct sim *s, enum sim_kind k, const char *ns, const char *name,
                            int64_t created)
{
    struct sim_obj *o = calloc(1, sizeof(*o));
    if (o == NULL)
        return NULL;
    o->kind = k;
    o->meta.owner.kind = SK_COUNT;
    o->meta.name = strdup(name);
    o->meta.namespace_ = ns != NULL ? strdup(ns) : NULL;
    o->meta.created = created;
    o->meta.generation = 1;
    sim_uid(s, o->meta.uid);
    if (o->meta.name == NULL || (ns != NULL && o->meta.namespace_ == NULL)) {
        sim_obj_free(o);
        return NULL;
    }
    return o;
}

void sim_obj_free(struct sim_obj *o)
{
    if (o == NULL)
        return;
    free(o->meta.name);
    free(o->meta.namespace_);
    free(o->meta.owner.name);
    sim_kvs_dispose(&o->meta.labels);
    sim_kvs_dispose(&o->meta.annotations);
    switch (o->kind) {
    case SK_POD:
        sim_template_dispose(&o->u.pod.t);
        break;
    case SK_REPLICASET:
        sim_template_dispose(&o->u.rs.t);
        break;
    case SK_DEPLOYMENT:
        sim_template_dispose(&o->u.dep.t);
        sim_kvs_dispose(&o->u.dep.selector);
        free(o->u.dep.strategy);
        break;
    case SK_SERVICE:
        free(o->u.svc.type);
        free(o->u.svc.external_ip);
        for (size_t i = 0; i < o->u.svc.n_ports; i++) {
            free(o->u.svc.ports[i].name);
            free(o->u.svc.ports[i].protocol);
            free(o->u.svc.ports[i].target_port);
        }
        free(o->u.svc.ports);
        sim_kvs_dispose(&o->u.svc.selector);
        break;
    case SK_SECRET:
        kvs_wipe(&o->u.data.data);
        free(o->u.data.type);
        break;
    case SK_CONFIGMAP:
        sim_kvs_dispose(&o->u.data.data);
        free(o->u.data.type);
        break;
    case SK_EVENT:
        free(o->u.ev.type);
        free(o->u.ev.reason);
        free(o->u.ev.message);
        free(o->u.ev.involved_name);
        free(o->u.ev.source);
        break;
    default:
        break;
    }
    free(o);
}

/* The plural resource name Kubernetes uses in messages ("pods", "deployments.apps"). */
static const char *resource_name(enum sim_kind k)
{
    static const char *const names[SK_COUNT] = {
        "pods",       "deployments.apps", "replicasets.apps", "services",
        "configmaps", "secrets",          "namespaces",       "events",
    };
    return (unsigned)k < SK_COUNT ? names[k] : "objects";
}

static int counted(enum sim_kind k)
{
    return k != SK_NAMESPACE && k != SK_EVENT;
}

enum bst_status sim_insert(struct sim *s, struct sim_obj *o, struct bst_err *err)
{
    struct sim_list *l = &s->lists[o->kind];
    int found;
    size_t at = list_search(l, o->meta.namespace_, o->meta.name, &found);

    if (found)
        return bst_errf(err, BST_ALREADY_EXISTS, "%s \"%s\" already exists", resource_name(o->kind),
                        o->meta.name);
    /* A quota refusal is the cluster's answer (403 Forbidden), not a server failure. */
    if (counted(o->kind) && s->n_objects >= s->max_objects)
        return bst_errf(err, BST_FAILED_PRECONDITION,
                        "%s \"%s\" is forbidden: exceeded quota: the simulated cluster holds at "
                        "most %zu objects",
                        resource_name(o->kind), o->meta.name, s->max_objects);
    if (l->n == l->cap) {
        size_t cap = l->cap ? l->cap * 2 : 16;
        struct sim_obj **nv = realloc(l->v, cap * sizeof(*nv));
        if (nv == NULL)
            return bst_errf(err, BST_RESOURCE_EXHAUSTED, "out of memory");
        l->v = nv;
        l->cap = cap;
    }
    memmove(&l->v[at + 1], &l->v[at], (l->n - at) * sizeof(*l->v));
    l->v[at] = o;
    l->n++;
    if (counted(o->kind))
        s->n_objects++;
    o->meta.rv = ++s->rv;
    return BST_OK;
}

static void free_ip(struct sim *s, const struct sim_obj *p)
{
    if (p->u.pod.node == NULL || p->u.pod.ip[0] == '\0')
        return;
    for (size_t i = 0; i < s->n_nodes; i++) {
        if (strcmp(s->nodes[i].name, p->u.pod.node) == 0) {
            const char *dot = strrchr(p->u.pod.ip, '.');
            if (dot != NULL)
                s->nodes[i].ip_used[(unsigned char)strtoul(dot + 1, NULL, 10)] = 0;
        }
    }
}

void sim_remove(struct sim *s, struct sim_obj *o)
{
    struct sim_list *l = &s->lists[o->kind];
    int found;
    size_t at = list_search(l, o->meta.namespace_, o->meta.name, &found);

    if (!found || l->v[at] != o)
        abort(); /* an object we hold must be in its list */
    memmove(&l->v[at], &l->v[at + 1], (l->n - at - 1) * sizeof(*l->v));
    l->n--;
    if (counted(o->kind))
        s->n_objects--;
    if (o->kind == SK_POD)
        free_ip(s, o);
    s->rv++;
    sim_obj_free(o);
}

/* ---- events -------------------------------------------------------------------------------- */

static void drop_oldest_event(struct sim *s)
{
    struct sim_list *l = &s->lists[SK_EVENT];
    struct sim_obj *oldest = NULL;
    for (size_t i = 0; i < l->n; i++)
        if (oldest == NULL || l->v[i]->u.ev.seq < oldest->u.ev.seq)
            oldest = l->v[i];
    if (oldest != NULL)
        sim_remove(s, oldest);
}

void sim_event(struct sim *s, const struct sim_obj *o, const char *type, const char *reason,
               const char *source, int64_t when, const char *fmt, ...)
{
    struct sim_list *l = &s->lists[SK_EVENT];
    char msg[512], name[320];
    struct sim_obj *e;
    va_list ap;

    va_start(ap, fmt);
    vsnprintf(msg, sizeof(msg), fmt, ap);
    va_end(ap);
    /* Kubernetes aggregates repeats of one event about one object: count and lastTimestamp. */
    for (size_t i = 0; i < l->n; i++) {
        struct sim_event *ev = &l->v[i]->u.ev;
        if (strcmp(ev->involved_uid, o->meta.uid) == 0 && strcmp(ev->reason, reason) == 0 &&
            strcmp(ev->type, type) == 0 && strcmp(ev->message, msg) == 0) {
            ev->count++;
            if (when > ev->last)
                ev->last = when;
            l->v[i]->meta.rv = ++s->rv;
            return;
        }
    }
    while (s->max_events > 0 && l->n >= s->max_events)
        drop_oldest_event(s);
    /* Event names are the object's name and a hex time stamp, as the API server makes them. */
    snprintf(name, sizeof(name), "%.250s.%016llx", o->meta.name,
             (unsigned long long)(when * 1000000000LL + (int64_t)(s->event_seq % 1000000000ULL)));
    e = sim_obj_new(s, SK_EVENT, o->meta.namespace_ != NULL ? o->meta.namespace_ : "default", name,
                    when);
    if (e == NULL)
        return; /* events are best effort, as in Kubernetes */
    e->u.ev.type = strdup(type);
    e->u.ev.reason = strdup(reason);
    e->u.ev.message = strdup(msg);
    e->u.ev.involved_kind = o->kind;
    e->u.ev.involved_name = strdup(o->meta.name);
    memcpy(e->u.ev.involved_uid, o->meta.uid, sizeof(e->u.ev.involved_uid));
    e->u.ev.count = 1;
    e->u.ev.first = e->u.ev.last = when;
    e->u.ev.source = strdup(source);
    e->u.ev.seq = ++s->event_seq;
    if (e->u.ev.type == NULL || e->u.ev.reason == NULL || e->u.ev.message == NULL ||
        e->u.ev.involved_name == NULL || e->u.ev.source == NULL || sim_insert(s, e, NULL) != BST_OK)
        sim_obj_free(e);
}

/* ---- namespaces and services --------------------------------------------------------------- */

/* The root CA bundle every namespace gets from the root-ca-cert-publisher controller. */
static const char root_ca_pem[] =
    "-----BEGIN CERTIFICATE-----\n"
    "MIIDBTCCAe2gAwIBAgIIbWk2Wn0rLh0wDQYJKoZIhvcNAQELBQAwFTETMBEGA1UE\n"
    "AxMKa3ViZXJuZXRlczAeFw0yNTAxMDEwMDAwMDBaFw0zNTAxMDEwMDAwMDBaMBUx\n"
    "EzARBgNVBAMTCmt1YmVybmV0ZXMwggEiMA0GCSqGSIb3DQEBAQUAA4IBDwAwggEK\n"
    "-----END CERTIFICATE-----\n";

enum bst_status sim_create_namespace(struct sim *s, const char *name, const struct sim_kvs *labels,
                                     int64_t created, struct bst_err *err)
{
    struct sim_obj *ns = sim_obj_new(s, SK_NAMESPACE, NULL, name, created), *cm;
    enum bst_status rv;

    if (ns == NULL)
        return bst_errf(err, BST_RESOURCE_EXHAUSTED, "out of memory");
    if ((labels != NULL && sim_kvs_copy(&ns->meta.labels, labels) != BST_OK) ||
        sim_kvs_set(&ns->meta.labels, "kubernetes.io/metadata.name", name) != 0) {
        sim_obj_free(ns);
        return bst_errf(err, BST_RESOURCE_EXHAUSTED, "out of memory");
    }
    if ((rv = sim_insert(s, ns, err)) != BST_OK) {
        sim_obj_free(ns);
        return rv;
    }
    cm = sim_obj_new(s, SK_CONFIGMAP, name, "kube-root-ca.crt", created);
    if (cm == NULL || sim_kvs_set(&cm->u.data.data, "ca.crt", root_ca_pem) != 0 ||
        sim_kvs_set(&cm->meta.annotations, "kubernetes.io/description",
                    "Contains a CA bundle that can be used to verify the kube-apiserver when "
                    "using internal endpoints such as the internal service IP or "
                    "kubernetes.default.svc. No other usage is guaranteed across distributions "
                    "of Kubernetes clusters.") != 0) {
        sim_obj_free(cm);
        return bst_errf(err, BST_RESOURCE_EXHAUSTED, "out of memory");
    }
    if ((rv = sim_insert(s, cm, err)) != BST_OK)
        sim_obj_free(cm);
    return rv;
}

void sim_alloc_service_ip(struct sim *s, char out[16])
{
    const struct sim_list *l = &s->lists[SK_SERVICE];
    for (;;) {
        uint64_t r = sim_rand(s);
        int used = 0;
        /* 10.96.0.0/12 minus .0 and .1 of the first block (the kubernetes service). */
        unsigned b = 96 + (unsigned)(r % 16), c = (unsigned)((r >> 8) & 0xff),
                 d = 2 + (unsigned)((r >> 16) % 253);
        snprintf(out, 16, "10.%u.%u.%u", b, c, d);
        for (size_t i = 0; i < l->n && !used; i++)
            used = strcmp(l->v[i]->u.svc.cluster_ip, out) == 0;
        if (!used)
            return;
    }
}

/* ---- pods ---------------------------------------------------------------------------------- */

static size_t pods_on(const struct sim *s, const char *node)
{
    size_t n = 0;
    const struct sim_list *l = &s->lists[SK_POD];
    for (size_t i = 0; i < l->n; i++)
        n += l->v[i]->u.pod.node != NULL && strcmp(l->v[i]->u.pod.node, node) == 0;
    return n;
}

/* The scheduler: the worker with the fewest pods; the control plane only for kube-system. */
static struct sim_node *schedule(struct sim *s, const char *ns)
{
    struct sim_node *best = NULL;
    size_t best_n = 0;
    int system = strcmp(ns, "kube-system") == 0;
    for (size_t i = 0; i < s->n_nodes; i++) {
        size_t n;
        if (s->nodes[i].control_plane && !system)
            continue;
        n = pods_on(s, s->nodes[i].name);
        if (best == NULL || n < best_n) {
            best = &s->nodes[i];
            best_n = n;
        }
    }
    return best;
}

static void assign_ip(struct sim_node *node, size_t index, char out[16])
{
    out[0] = '\0';
    for (unsigned host = 2; host < 255; host++) {
        if (!node->ip_used[host]) {
            node->ip_used[host] = 1;
            snprintf(out, 16, "10.244.%zu.%u", index, host);
            return;
        }
    }
}

static void pod_name(struct sim *s, const char *prefix, const char *ns, char *out, size_t len)
{
    static const char alphabet[] = "bcdfghjklmnpqrstvwxz2456789";
    do {
        char sfx[6];
        uint64_t r = sim_rand(s);
        for (int i = 0; i < 5; i++) {
            sfx[i] = alphabet[r % (sizeof(alphabet) - 1)];
            r /= sizeof(alphabet) - 1;
        }
        sfx[5] = '\0';
        snprintf(out, len, "%.240s-%s", prefix, sfx);
    } while (sim_find(s, SK_POD, ns, out) != NULL);
}

void sim_pod_events(struct sim *s, const struct sim_obj *p, int64_t t)
{
    const struct sim_template *tp = &p->u.pod.t;
    if (tp->behavior == SB_UNSCHEDULABLE) {
        sim_event(s, p, "Warning", "FailedScheduling", "default-scheduler", t,
                  "0/%zu nodes are available: 1 node(s) had untolerated taint "
                  "{node-role.kubernetes.io/control-plane: }, %zu Insufficient memory. "
                  "preemption: 0/%zu nodes are available: 1 Preemption is not helpful for "
                  "scheduling, %zu No preemption victims found for incoming pod.",
                  s->n_nodes, s->n_nodes > 0 ? s->n_nodes - 1 : 0, s->n_nodes,
                  s->n_nodes > 0 ? s->n_nodes - 1 : 0);
        return;
    }
    sim_event(s, p, "Normal", "Scheduled", "default-scheduler", t,
              "Successfully assigned %s/%s to %s", p->meta.namespace_, p->meta.name, p->u.pod.node);
    for (size_t i = 0; i < tp->n_containers; i++) {
        const struct sim_container *c = &tp->containers[i];
        if (i == 0 && tp->behavior == SB_IMAGE_PULL) {
            sim_event(s, p, "Normal", "Pulling", "kubelet", t, "Pulling image \"%s\"", c->image);
            sim_event(s, p, "Warning", "Failed", "kubelet", t,
                      "Failed to pull image \"%s\": rpc error: code = NotFound desc = failed to "
                      "pull and unpack image \"%s\": failed to resolve reference \"%s\": not "
                      "found",
                      c->image, c->image, c->image);
            sim_event(s, p, "Warning", "Failed", "kubelet", t, "Error: ErrImagePull");
            sim_event(s, p, "Normal", "BackOff", "kubelet", t, "Back-off pulling image \"%s\"",
                      c->image);
            sim_event(s, p, "Warning", "Failed", "kubelet", t, "Error: ImagePullBackOff");
            continue;
        }
        sim_event(s, p, "Normal", "Pulled", "kubelet", t,
                  "Container image \"%s\" already present on machine", c->image);
        sim_event(s, p, "Normal", "Created", "kubelet", t, "Created container %s", c->name);
        sim_event(s, p, "Normal", "Started", "kubelet", t, "Started container %s", c->name);
        if (i == 0 && tp->behavior == SB_CRASHLOOP)
            sim_event(s, p, "Warning", "BackOff", "kubelet", t,
                      "Back-off restarting failed container %s in pod %s_%s(%s)", c->name,
                      p->meta.name, p->meta.namespace_, p->meta.uid);
    }
}

enum bst_status sim_create_pod(struct sim *s, const char *ns, const char *name,
                               const struct sim_template *t, const struct sim_obj *owner,
                               int64_t created, struct sim_obj **out, struct bst_err *err)
{
    char generated[320];
    struct sim_obj *p;
    enum bst_status rv;

    if (name == NULL) {
        pod_name(s, owner != NULL ? owner->meta.name : "pod", ns, generated, sizeof(generated));
        name = generated;
    }
    if ((p = sim_obj_new(s, SK_POD, ns, name, created)) == NULL)
        return bst_errf(err, BST_RESOURCE_EXHAUSTED, "out of memory");
    if (sim_template_copy(&p->u.pod.t, t) != BST_OK ||
        sim_kvs_copy(&p->meta.labels, &t->labels) != BST_OK ||
        sim_kvs_copy(&p->meta.annotations, &t->annotations) != BST_OK)
        goto oom;
    if (owner != NULL) {
        p->meta.owner.kind = owner->kind;
        if ((p->meta.owner.name = strdup(owner->meta.name)) == NULL)
            goto oom;
        memcpy(p->meta.owner.uid, owner->meta.uid, sizeof(p->meta.owner.uid));
    }
    p->u.pod.log_seed = sim_rand(s);
    p->u.pod.last_reason = "Error";
    if (t->behavior != SB_UNSCHEDULABLE) {
        struct sim_node *node = schedule(s, ns);
        if (node != NULL) {
            p->u.pod.node = node->name;
            assign_ip(node, (size_t)(node - s->nodes), p->u.pod.ip);
        }
    }
    if ((rv = sim_insert(s, p, err)) != BST_OK) {
        free_ip(s, p);
        sim_obj_free(p);
        return rv;
    }
    if (owner == NULL)
        sim_pod_events(s, p, created);
    if (out != NULL)
        *out = p;
    return BST_OK;
oom:
    sim_obj_free(p);
    return bst_errf(err, BST_RESOURCE_EXHAUSTED, "out of memory");
}

/* Deletes pod p: the kubelet stops its containers (events), then it leaves the store. */
static void delete_pod(struct sim *s, struct sim_obj *p, int64_t now)
{
    if (p->u.pod.node != NULL)
        for (size_t i = 0; i < p->u.pod.t.n_containers; i++)
            sim_event(s, p, "Normal", "Killing", "kubelet", now, "Stopping container %s",
                      p->u.pod.t.containers[i].name);
    sim_remove(s, p);
}

static int owned_by(const struct sim_obj *o, const struct sim_obj *owner)
{
    return o->meta.owner.kind == owner->kind && strcmp(o->meta.owner.uid, owner->meta.uid) == 0;
}

void sim_count_pods(const struct sim *s, const struct sim_obj *owner, int64_t now, int32_t *total,
                    int32_t *ready)
{
    const struct sim_list *pods = &s->lists[SK_POD];
    *total = 0;
    *ready = 0;
    for (size_t i = 0; i < pods->n; i++) {
        const struct sim_obj *p = pods->v[i];
        int mine = owned_by(p, owner);
        if (!mine && owner->kind == SK_DEPLOYMENT) {
            /* A deployment owns its replica sets' pods. */
            const struct sim_list *rss = &s->lists[SK_REPLICASET];
            for (size_t k = 0; k < rss->n && !mine; k++)
                mine = owned_by(rss->v[k], owner) && owned_by(p, rss->v[k]);
        }
        if (mine) {
            struct sim_pod_state st;
            sim_pod_state(p, now, &st);
            (*total)++;
            *ready += st.ready == p->u.pod.t.n_containers && st.ready > 0;
        }
    }
}

/* ---- controllers --------------------------------------------------------------------------- */

/* Scale-down victims first: not ready before ready, then the newest (as the replica-set
 * controller ranks them). */
static int victim_cmp(const void *a, const void *b, void *now_p)
{
    const struct sim_obj *pa = *(struct sim_obj *const *)a, *pb = *(struct sim_obj *const *)b;
    int64_t now = *(const int64_t *)now_p;
    struct sim_pod_state sa, sb;
    sim_pod_state(pa, now, &sa);
    sim_pod_state(pb, now, &sb);
    if ((sa.ready > 0) != (sb.ready > 0))
        return sa.ready > 0 ? 1 : -1;
    if (pa->meta.created != pb->meta.created)
        return pa->meta.created > pb->meta.created ? -1 : 1;
    return strcmp(pb->meta.name, pa->meta.name);
}

static enum bst_status reconcile_rs(struct sim *s, struct sim_obj *rs, int64_t now,
                                    struct bst_err *err)
{
    struct sim_list *pods = &s->lists[SK_POD];
    struct sim_obj **mine = NULL;
    size_t n = 0;

    for (size_t i = 0; i < pods->n; i++)
        n += owned_by(pods->v[i], rs);
    if (n > 0) {
        if ((mine = malloc(n * sizeof(*mine))) == NULL)
            return bst_errf(err, BST_RESOURCE_EXHAUSTED, "out of memory");
        n = 0;
        for (size_t i = 0; i < pods->n; i++)
            if (owned_by(pods->v[i], rs))
                mine[n++] = pods->v[i];
    }
    if ((int64_t)n > rs->u.rs.replicas) {
        qsort_r(mine, n, sizeof(*mine), victim_cmp, &now);
        for (size_t i = 0; (int64_t)(n - i) > rs->u.rs.replicas; i++) {
            sim_event(s, rs, "Normal", "SuccessfulDelete", "replicaset-controller", now,
                      "Deleted pod: %s", mine[i]->meta.name);
            delete_pod(s, mine[i], now);
        }
    }
    free(mine);
    for (int64_t have = (int64_t)n; have < rs->u.rs.replicas; have++) {
        struct sim_obj *p;
        struct bst_err perr;
        if (sim_create_pod(s, rs->meta.namespace_, NULL, &rs->u.rs.t, rs, now, &p, &perr) !=
            BST_OK) {
            /* As in Kubernetes: the replica set stays short and says why. */
            sim_event(s, rs, "Warning", "FailedCreate", "replicaset-controller", now,
                      "Error creating: %s", perr.msg);
            return perr.code == BST_FAILED_PRECONDITION ? BST_OK
                                                        : bst_errf(err, perr.code, "%s", perr.msg);
        }
        /* As the controllers record them: the replica set's event, then the pod's. */
        sim_event(s, rs, "Normal", "SuccessfulCreate", "replicaset-controller", now,
                  "Created pod: %s", p->meta.name);
        sim_pod_events(s, p, now);
    }
    return BST_OK;
}

static void scale_rs(struct sim *s, struct sim_obj *d, struct sim_obj *rs, int32_t to, int64_t now)
{
    int32_t from = rs->u.rs.replicas;
    if (from == to)
        return;
    if (to > from && from == 0)
        sim_event(s, d, "Normal", "ScalingReplicaSet", "deployment-controller", now,
                  "Scaled up replica set %s to %d", rs->meta.name, to);
    else
        sim_event(s, d, "Normal", "ScalingReplicaSet", "deployment-controller", now,
                  "Scaled %s replica set %s to %d from %d", to > from ? "up" : "down",
                  rs->meta.name, to, from);
    rs->u.rs.replicas = to;
    rs->meta.generation++;
    rs->meta.rv = ++s->rv;
}

static enum bst_status new_rs(struct sim *s, struct sim_obj *d, const char *hash, int64_t rev,
                              int64_t now, struct sim_obj **out, struct bst_err *err)
{
    char name[320], revs[24];
    struct sim_obj *rs;
    enum bst_status rv;

    snprintf(name, sizeof(name), "%.240s-%s", d->meta.name, hash);
    snprintf(revs, sizeof(revs), "%lld", (long long)rev);
    if ((rs = sim_obj_new(s, SK_REPLICASET, d->meta.namespace_, name, now)) == NULL)
        return bst_errf(err, BST_RESOURCE_EXHAUSTED, "out of memory");
    if (sim_template_copy(&rs->u.rs.t, &d->u.dep.t) != BST_OK ||
        sim_kvs_set(&rs->u.rs.t.labels, "pod-template-hash", hash) != 0 ||
        sim_kvs_copy(&rs->meta.labels, &rs->u.rs.t.labels) != BST_OK ||
        sim_kvs_set(&rs->meta.annotations, "deployment.kubernetes.io/desired-replicas", "0") != 0 ||
        sim_kvs_set(&rs->meta.annotations, "deployment.kubernetes.io/revision", revs) != 0 ||
        (rs->meta.owner.name = strdup(d->meta.name)) == NULL) {
        sim_obj_free(rs);
        return bst_errf(err, BST_RESOURCE_EXHAUSTED, "out of memory");
    }
    rs->meta.owner.kind = SK_DEPLOYMENT;
    memcpy(rs->meta.owner.uid, d->meta.uid, sizeof(rs->meta.owner.uid));
    memcpy(rs->u.rs.hash, hash, sizeof(rs->u.rs.hash));
    rs->u.rs.revision = rev;
    if ((rv = sim_insert(s, rs, err)) != BST_OK) {
        sim_obj_free(rs);
        return rv;
    }
    *out = rs;
    return BST_OK;
}

enum bst_status sim_reconcile_deployment(struct sim *s, struct sim_obj *d, int64_t now,
                                         struct bst_err *err)
{
    struct sim_list *rss = &s->lists[SK_REPLICASET];
    struct sim_obj *cur = NULL;
    char hash[16], desired[16];
    int64_t max_rev = 0;
    enum bst_status rv;
    size_t n_old;

    template_hash(&d->u.dep.t, hash);
    for (size_t i = 0; i < rss->n; i++) {
        struct sim_obj *rs = rss->v[i];
        if (!owned_by(rs, d))
            continue;
        if (rs->u.rs.revision > max_rev)
            max_rev = rs->u.rs.revision;
        if (strcmp(rs->u.rs.hash, hash) == 0)
            cur = rs;
    }
    if (cur == NULL && (rv = new_rs(s, d, hash, max_rev + 1, now, &cur, err)) != BST_OK)
        return rv;
    /* The sim rolls at once: the new replica set scales up, then the old ones down to 0. */
    scale_rs(s, d, cur, d->u.dep.replicas, now);
    snprintf(desired, sizeof(desired), "%d", d->u.dep.replicas);
    sim_kvs_set(&cur->meta.annotations, "deployment.kubernetes.io/desired-replicas", desired);
    if ((rv = reconcile_rs(s, cur, now, err)) != BST_OK)
        return rv;
    for (size_t i = 0; i < rss->n; i++) {
        struct sim_obj *rs = rss->v[i];
        if (rs != cur && owned_by(rs, d) && rs->u.rs.replicas > 0) {
            scale_rs(s, d, rs, 0, now);
            if ((rv = reconcile_rs(s, rs, now, err)) != BST_OK)
                return rv;
        }
    }
    /* Keep revisionHistoryLimit old replica sets; the oldest go first. */
    for (;;) {
        struct sim_obj *oldest = NULL;
        n_old = 0;
        for (size_t i = 0; i < rss->n; i++) {
            struct sim_obj *rs = rss->v[i];
            if (rs == cur || !owned_by(rs, d))
                continue;
            n_old++;
            if (oldest == NULL || rs->u.rs.revision < oldest->u.rs.revision)
                oldest = rs;
        }
        if (oldest == NULL || (int64_t)n_old <= d->u.dep.history_limit)
            break;
        sim_remove(s, oldest);
    }
    if (d->u.dep.observed_generation != d->meta.generation) {
        d->u.dep.observed_generation = d->meta.generation;
        d->meta.rv = ++s->rv;
    }
    return BST_OK;
}

enum bst_status sim_delete_pod(struct sim *s, struct sim_obj *p, int64_t now,
                               struct sim_obj **replacement, struct bst_err *err)
{
    struct sim_obj *rs = NULL;
    const struct sim_list *pods = &s->lists[SK_POD];
    enum bst_status rv;
    size_t before;

    *replacement = NULL;
    if (p->meta.owner.kind == SK_REPLICASET)
        rs = sim_find(s, SK_REPLICASET, p->meta.namespace_, p->meta.owner.name);
    delete_pod(s, p, now);
    if (rs == NULL)
        return BST_OK;
    before = pods->n;
    if ((rv = reconcile_rs(s, rs, now, err)) != BST_OK)
        return rv;
    if (pods->n > before) {
        /* The newest pod of the replica set is the one just created. */
        for (size_t i = 0; i < pods->n; i++) {
            struct sim_obj *c = pods->v[i];
            if (owned_by(c, rs) && c->meta.created == now &&
                (*replacement == NULL || c->meta.rv > (*replacement)->meta.rv))
                *replacement = c;
        }
    }
    return BST_OK;
}
