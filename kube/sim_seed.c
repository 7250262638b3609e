/* The seed of the simulated cluster (configs/cluster-seed.yaml, or the built-in copy of it):
 * nodes, namespaces and their workloads, read through the strict YAML reader. Every mapping is
 * checked against the keys it may have, so a typo is an error with file:line:column, never a
 * silently ignored setting. Ages count back from the moment the cluster is created, so the
 * cluster always looks as if it had been running for a while. */
#include "sim_internal.h"
#include "names.h"
#include "strict_yaml.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

struct seed {
    struct sim *s;
    const struct bst_yaml_doc *doc;
    struct bst_err *err;
};

#define SEED_MAX_BYTES (1024 * 1024)
#define DAY (24 * 3600)

static enum bst_status fail_at(struct seed *sd, const struct bst_yaml_node *n, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

static enum bst_status fail_at(struct seed *sd, const struct bst_yaml_node *n, const char *fmt, ...)
{
    char msg[400];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof(msg), fmt, ap);
    va_end(ap);
    return bst_yaml_errf(sd->err, BST_INVALID_ARGUMENT, sd->doc, n, "%s", msg);
}

static enum bst_status oom(struct seed *sd)
{
    return bst_errf(sd->err, BST_RESOURCE_EXHAUSTED, "out of memory");
}

/* The mapping n may only have the listed keys. */
static enum bst_status keys_only(struct seed *sd, const struct bst_yaml_node *n, const char *what,
                                 const char *const *allowed)
{
    if (n == NULL || n->kind != BST_YAML_MAP)
        return fail_at(sd, n, "%s must be a mapping", what);
    for (size_t i = 0; i < n->n; i++) {
        int ok = 0;
        for (size_t k = 0; allowed[k] != NULL && !ok; k++)
            ok = strcmp(n->keys[i]->value, allowed[k]) == 0;
        if (!ok) {
            char list[256] = "";
            size_t used = 0;
            for (size_t k = 0; allowed[k] != NULL && used < sizeof(list); k++)
                used += (size_t)snprintf(list + used, sizeof(list) - used, "%s%s", k ? ", " : "",
                                         allowed[k]);
            return fail_at(sd, n->keys[i], "unknown key '%s' in %s (expected: %s)",
                           n->keys[i]->value, what, list);
        }
    }
    return BST_OK;
}

static enum bst_status str_at(struct seed *sd, const struct bst_yaml_node *map, const char *key,
                              int required, const char **out)
{
    const struct bst_yaml_node *n = bst_yaml_get(map, key);
    *out = NULL;
    if (n == NULL)
        return required ? fail_at(sd, map, "missing key '%s'", key) : BST_OK;
    return bst_yaml_str(sd->doc, n, 0, out, sd->err);
}

static enum bst_status int_at(struct seed *sd, const struct bst_yaml_node *map, const char *key,
                              int64_t lo, int64_t hi, int64_t def, int64_t *out)
{
    const struct bst_yaml_node *n = bst_yaml_get(map, key);
    *out = def;
    return n == NULL ? BST_OK : bst_yaml_int(sd->doc, n, lo, hi, out, sd->err);
}

static enum bst_status bool_at(struct seed *sd, const struct bst_yaml_node *map, const char *key,
                               int *out)
{
    const struct bst_yaml_node *n = bst_yaml_get(map, key);
    *out = 0;
    return n == NULL ? BST_OK : bst_yaml_bool(sd->doc, n, out, sd->err);
}

/* An age: digits and a unit, s, m, h or d ("90s", "26h", "3d"); at most a year. */
static enum bst_status age_at(struct seed *sd, const struct bst_yaml_node *map, const char *key,
                              int64_t def, int64_t *out)
{
    const struct bst_yaml_node *n = bst_yaml_get(map, key);
    int64_t mult, v = 0;
    size_t len;

    *out = def;
    if (n == NULL)
        return BST_OK;
    if (n->kind != BST_YAML_SCALAR || n->len < 2)
        return fail_at(sd, n, "%s: expected an age such as 90s, 45m, 26h or 3d", key);
    len = n->len - 1;
    switch (n->value[len]) {
    case 's':
        mult = 1;
        break;
    case 'm':
        mult = 60;
        break;
    case 'h':
        mult = 3600;
        break;
    case 'd':
        mult = DAY;
        break;
    default:
        return fail_at(sd, n, "%s: expected an age such as 90s, 45m, 26h or 3d", key);
    }
    for (size_t i = 0; i < len; i++) {
        if (n->value[i] < '0' || n->value[i] > '9' || v > 366LL * DAY)
            return fail_at(sd, n, "%s: expected an age such as 90s, 45m, 26h or 3d", key);
        v = v * 10 + (n->value[i] - '0');
    }
    if (v * mult > 366LL * DAY)
        return fail_at(sd, n, "%s: at most a year", key);
    *out = v * mult;
    return BST_OK;
}

/* A mapping of strings (labels, selectors, data); label keys and values are checked when
 * labels is set, config keys otherwise. */
static enum bst_status map_at(struct seed *sd, const struct bst_yaml_node *map, const char *key,
                              int labels, struct sim_kvs *out)
{
    const struct bst_yaml_node *n = bst_yaml_get(map, key);
    if (n == NULL)
        return BST_OK;
    if (n->kind != BST_YAML_MAP)
        return fail_at(sd, n, "%s must be a mapping", key);
    for (size_t i = 0; i < n->n; i++) {
        const char *k = n->keys[i]->value, *v;
        enum bst_status rv = bst_yaml_str(sd->doc, n->items[i], 1, &v, sd->err);
        if (rv != BST_OK)
            return rv;
        if (labels ? !kube_label_key_ok(k) : !kube_config_key_ok(k))
            return fail_at(sd, n->keys[i], "%s: '%s' is not a valid key", key, k);
        if (labels && !kube_label_value_ok(v))
            return fail_at(sd, n->items[i], "%s: the value of '%s' is not a valid label value", key,
                           k);
        if (sim_kvs_set(out, k, v) != 0)
            return oom(sd);
    }
    return BST_OK;
}

static enum bst_status seq_at(struct seed *sd, const struct bst_yaml_node *map, const char *key,
                              const struct bst_yaml_node **out)
{
    const struct bst_yaml_node *n = bst_yaml_get(map, key);
    *out = NULL;
    if (n == NULL)
        return BST_OK;
    if (n->kind != BST_YAML_SEQ)
        return fail_at(sd, n, "%s must be a list", key);
    *out = n;
    return BST_OK;
}

static enum bst_status name_at(struct seed *sd, const struct bst_yaml_node *map,
                               int (*ok)(const char *), const char **out)
{
    enum bst_status rv = str_at(sd, map, "name", 1, out);
    if (rv == BST_OK && !ok(*out))
        return fail_at(sd, bst_yaml_get(map, "name"), "'%s' is not a valid name here", *out);
    return rv;
}

/* ---- pod templates ------------------------------------------------------------------------- */

static const char *const container_keys[] = {"name", "image", "logs", "ports", NULL};
static const char *const port_keys[] = {"name", "port", "protocol", NULL};

static const char *const behaviors[] = {"healthy",       "crashloop", "image-pull-error",
                                        "unschedulable", "completed", NULL};

static enum bst_status parse_container(struct seed *sd, const struct bst_yaml_node *n,
                                       struct sim_container *c, json_t *spec_containers)
{
    const char *name, *image, *logs, *proto, *pname;
    const struct bst_yaml_node *ports;
    json_t *cj, *pj = NULL;
    enum bst_status rv;

    if ((rv = keys_only(sd, n, "a container", container_keys)) != BST_OK ||
        (rv = name_at(sd, n, kube_dns1123_label_ok, &name)) != BST_OK ||
        (rv = str_at(sd, n, "image", 1, &image)) != BST_OK ||
        (rv = str_at(sd, n, "logs", 0, &logs)) != BST_OK || (rv = seq_at(sd, n, "ports", &ports)))
        return rv;
    if (logs == NULL)
        logs = sim_log_profile_for_image(image);
    c->name = strdup(name);
    c->image = strdup(image);
    c->log_profile = strdup(logs);
    cj = json_pack("{s:s, s:s, s:s, s:{s:{s:s, s:s}}, s:s, s:s}", "name", name, "image", image,
                   "imagePullPolicy", "IfNotPresent", "resources", "requests", "cpu", "100m",
                   "memory", "128Mi", "terminationMessagePath", "/dev/termination-log",
                   "terminationMessagePolicy", "File");
    if (c->name == NULL || c->image == NULL || c->log_profile == NULL || cj == NULL ||
        json_array_append_new(spec_containers, cj) != 0)
        return oom(sd);
    if (ports == NULL)
        return BST_OK;
    if ((c->ports = calloc(ports->n ? ports->n : 1, sizeof(*c->ports))) == NULL ||
        (pj = json_array()) == NULL || json_object_set_new(cj, "ports", pj) != 0)
        return oom(sd);
    for (size_t i = 0; i < ports->n; i++) {
        const struct bst_yaml_node *p = ports->items[i];
        int64_t port;
        if ((rv = keys_only(sd, p, "a container port", port_keys)) != BST_OK ||
            (rv = int_at(sd, p, "port", 1, 65535, 0, &port)) != BST_OK ||
            (rv = str_at(sd, p, "protocol", 0, &proto)) != BST_OK ||
            (rv = str_at(sd, p, "name", 0, &pname)) != BST_OK)
            return rv;
        if (port == 0)
            return fail_at(sd, p, "missing key 'port'");
        c->ports[i].port = (int32_t)port;
        c->ports[i].protocol = strdup(proto != NULL ? proto : "TCP");
        c->ports[i].name = pname != NULL ? strdup(pname) : NULL;
        c->n_ports = i + 1;
        if (c->ports[i].protocol == NULL || (pname != NULL && c->ports[i].name == NULL) ||
            json_array_append_new(pj, json_pack("{s:i, s:s}", "containerPort", (int)port,
                                                "protocol", c->ports[i].protocol)) != 0)
            return oom(sd);
        if (pname != NULL)
            json_object_set_new(json_array_get(pj, i), "name", json_string(pname));
    }
    return BST_OK;
}

/* Reads the pod-template part of a workload (labels, containers, state, service_account). */
static enum bst_status parse_template(struct seed *sd, const struct bst_yaml_node *n,
                                      struct sim_template *t)
{
    const struct bst_yaml_node *containers, *state;
    const char *sa;
    json_t *cs;
    enum bst_status rv;

    if ((rv = map_at(sd, n, "labels", 1, &t->labels)) != BST_OK ||
        (rv = seq_at(sd, n, "containers", &containers)) != BST_OK ||
        (rv = str_at(sd, n, "service_account", 0, &sa)) != BST_OK)
        return rv;
    if (containers == NULL || containers->n == 0)
        return fail_at(sd, n, "at least one container is required");
    t->service_account = strdup(sa != NULL ? sa : "default");
    t->spec =
        json_pack("{s:[], s:s, s:i, s:s, s:s, s:s, s:{}, s:s, s:b}", "containers", "restartPolicy",
                  "Always", "terminationGracePeriodSeconds", 30, "dnsPolicy", "ClusterFirst",
                  "serviceAccountName", t->service_account, "serviceAccount", t->service_account,
                  "securityContext", "schedulerName", "default-scheduler", "enableServiceLinks", 1);
    if (t->service_account == NULL || t->spec == NULL ||
        (t->containers = calloc(containers->n, sizeof(*t->containers))) == NULL)
        return oom(sd);
    cs = json_object_get(t->spec, "containers");
    for (size_t i = 0; i < containers->n; i++) {
        t->n_containers = i + 1;
        if ((rv = parse_container(sd, containers->items[i], &t->containers[i], cs)) != BST_OK)
            return rv;
    }
    t->behavior = SB_HEALTHY;
    if ((state = bst_yaml_get(n, "state")) != NULL) {
        const char *v;
        size_t k;
        if ((rv = bst_yaml_str(sd->doc, state, 0, &v, sd->err)) != BST_OK)
            return rv;
        for (k = 0; behaviors[k] != NULL && strcmp(behaviors[k], v) != 0; k++)
            ;
        if (behaviors[k] == NULL)
            return fail_at(sd, state,
                           "state must be healthy, crashloop, image-pull-error, unschedulable or "
                           "completed");
        t->behavior = (enum sim_behavior)k;
    }
    return BST_OK;
}

static int by_rv(const void *a, const void *b)
{
    const struct sim_obj *x = *(struct sim_obj *const *)a, *y = *(struct sim_obj *const *)b;
    return x->meta.rv < y->meta.rv ? -1 : x->meta.rv > y->meta.rv;
}

/* Applies the seed's per-pod restart counts to the pods of replica set rs, oldest first. */
static enum bst_status apply_restarts(struct seed *sd, const struct bst_yaml_node *n,
                                      const struct sim_obj *rs)
{
    const struct bst_yaml_node *restarts;
    const char *reason;
    struct sim_list *pods = &sd->s->lists[SK_POD];
    struct sim_obj **mine;
    size_t count = 0;
    enum bst_status rv;

    if ((rv = seq_at(sd, n, "restarts", &restarts)) != BST_OK ||
        (rv = str_at(sd, n, "last_reason", 0, &reason)) != BST_OK)
        return rv;
    if (reason != NULL && strcmp(reason, "Error") != 0 && strcmp(reason, "OOMKilled") != 0)
        return fail_at(sd, bst_yaml_get(n, "last_reason"),
                       "last_reason must be Error or OOMKilled");
    if (restarts == NULL)
        return BST_OK;
    if ((mine = calloc(pods->n ? pods->n : 1, sizeof(*mine))) == NULL)
        return oom(sd);
    for (size_t i = 0; i < pods->n; i++)
        if (pods->v[i]->meta.owner.kind == SK_REPLICASET &&
            strcmp(pods->v[i]->meta.owner.uid, rs->meta.uid) == 0)
            mine[count++] = pods->v[i];
    /* Creation order: the store's resourceVersion says which came first. */
    qsort(mine, count, sizeof(*mine), by_rv);
    for (size_t k = 0; k < restarts->n && rv == BST_OK; k++) {
        int64_t v;
        if ((rv = bst_yaml_int(sd->doc, restarts->items[k], 0, 10000, &v, sd->err)) != BST_OK)
            break;
        if (k >= count) {
            rv = fail_at(sd, restarts->items[k], "more restart counts than replicas");
            break;
        }
        mine[k]->u.pod.base_restarts = (uint32_t)v;
        if (reason != NULL && strcmp(reason, "OOMKilled") == 0)
            mine[k]->u.pod.last_reason = "OOMKilled";
    }
    free(mine);
    return rv;
}

static const char *const deploy_keys[] = {
    "name",  "age",      "replicas",    "labels",          "selector", "containers",
    "state", "restarts", "last_reason", "service_account", NULL};

static enum bst_status parse_deployment(struct seed *sd, const char *ns,
                                        const struct bst_yaml_node *n, int64_t ns_age)
{
    struct sim *s = sd->s;
    const char *name;
    int64_t age, replicas;
    struct sim_obj *d = NULL, *rs = NULL;
    enum bst_status rv;

    if ((rv = keys_only(sd, n, "a deployment", deploy_keys)) != BST_OK ||
        (rv = name_at(sd, n, kube_dns1123_subdomain_ok, &name)) != BST_OK ||
        (rv = age_at(sd, n, "age", ns_age, &age)) != BST_OK ||
        (rv = int_at(sd, n, "replicas", 0, 100, 1, &replicas)) != BST_OK)
        return rv;
    if ((d = sim_obj_new(s, SK_DEPLOYMENT, ns, name, s->t0 - age)) == NULL)
        return oom(sd);
    if ((rv = parse_template(sd, n, &d->u.dep.t)) != BST_OK ||
        (rv = map_at(sd, n, "selector", 1, &d->u.dep.selector)) != BST_OK)
        goto fail;
    if (d->u.dep.t.labels.n == 0 && sim_kvs_set(&d->u.dep.t.labels, "app", name) != 0)
        goto oom;
    if (d->u.dep.selector.n == 0) {
        const char *app = sim_kvs_get(&d->u.dep.t.labels, "app");
        if (sim_kvs_set(&d->u.dep.selector, "app", app != NULL ? app : name) != 0)
            goto oom;
    }
    for (size_t i = 0; i < d->u.dep.selector.n; i++)
        if (sim_kvs_set(&d->u.dep.t.labels, d->u.dep.selector.v[i].key,
                        d->u.dep.selector.v[i].value) != 0)
            goto oom;
    if (sim_kvs_copy(&d->meta.labels, &d->u.dep.t.labels) != BST_OK ||
        sim_kvs_set(&d->meta.annotations, "deployment.kubernetes.io/revision", "1") != 0 ||
        (d->u.dep.strategy = strdup("RollingUpdate")) == NULL)
        goto oom;
    d->u.dep.replicas = (int32_t)replicas;
    d->u.dep.history_limit = 10;
    if ((rv = sim_insert(s, d, sd->err)) != BST_OK)
        goto fail;
    /* The controller runs as it did when the deployment was created. */
    if ((rv = sim_reconcile_deployment(s, d, d->meta.created, sd->err)) != BST_OK)
        return rv;
    for (size_t i = 0; i < s->lists[SK_REPLICASET].n; i++) {
        struct sim_obj *x = s->lists[SK_REPLICASET].v[i];
        if (strcmp(x->meta.owner.uid, d->meta.uid) == 0)
            rs = x;
    }
    return rs != NULL ? apply_restarts(sd, n, rs) : BST_OK;
oom:
    rv = oom(sd);
fail:
    sim_obj_free(d);
    return rv;
}

static const char *const pod_keys[] = {"name",  "age",      "labels",      "containers",
                                       "state", "restarts", "last_reason", "service_account",
                                       "node",  NULL};

static enum bst_status parse_pod(struct seed *sd, const char *ns, const struct bst_yaml_node *n,
                                 int64_t ns_age)
{
    struct sim *s = sd->s;
    struct sim_template t;
    const char *name, *node;
    const struct bst_yaml_node *restarts;
    int64_t age;
    struct sim_obj *p;
    enum bst_status rv;

    memset(&t, 0, sizeof(t));
    if ((rv = keys_only(sd, n, "a pod", pod_keys)) != BST_OK ||
        (rv = name_at(sd, n, kube_dns1123_subdomain_ok, &name)) != BST_OK ||
        (rv = age_at(sd, n, "age", ns_age, &age)) != BST_OK ||
        (rv = str_at(sd, n, "node", 0, &node)) != BST_OK ||
        (rv = seq_at(sd, n, "restarts", &restarts)) != BST_OK ||
        (rv = parse_template(sd, n, &t)) != BST_OK)
        goto out;
    if ((rv = sim_create_pod(s, ns, name, &t, NULL, s->t0 - age, &p, sd->err)) != BST_OK)
        goto out;
    if (node != NULL) {
        /* Pinned (static pods, daemon pods): move it to its node. */
        size_t i;
        for (i = 0; i < s->n_nodes && strcmp(s->nodes[i].name, node) != 0; i++)
            ;
        if (i == s->n_nodes) {
            rv = fail_at(sd, bst_yaml_get(n, "node"), "no node named '%s'", node);
            goto out;
        }
        if (p->u.pod.node != NULL && strcmp(p->u.pod.node, node) != 0) {
            const char *dot = strrchr(p->u.pod.ip, '.');
            for (size_t k = 0; k < s->n_nodes; k++)
                if (strcmp(s->nodes[k].name, p->u.pod.node) == 0 && dot != NULL)
                    s->nodes[k].ip_used[(unsigned char)strtoul(dot + 1, NULL, 10)] = 0;
            p->u.pod.node = s->nodes[i].name;
            p->u.pod.ip[0] = '\0';
            for (unsigned h = 2; h < 255; h++)
                if (!s->nodes[i].ip_used[h]) {
                    s->nodes[i].ip_used[h] = 1;
                    snprintf(p->u.pod.ip, sizeof(p->u.pod.ip), "10.244.%zu.%u", i, h);
                    break;
                }
        }
    }
    if (restarts != NULL && restarts->n > 0) {
        int64_t v;
        if ((rv = bst_yaml_int(sd->doc, restarts->items[0], 0, 10000, &v, sd->err)) != BST_OK)
            goto out;
        p->u.pod.base_restarts = (uint32_t)v;
    }
out:
    sim_template_dispose(&t);
    return rv;
}

static const char *const svc_keys[] = {"name",   "age",      "type",  "cluster_ip", "external_ip",
                                       "labels", "selector", "ports", NULL};
static const char *const svc_port_keys[] = {"name",     "port",      "target_port",
                                            "protocol", "node_port", NULL};

static enum bst_status parse_service(struct seed *sd, const char *ns, const struct bst_yaml_node *n,
                                     int64_t ns_age)
{
    struct sim *s = sd->s;
    const char *name, *type, *ip, *ext;
    const struct bst_yaml_node *ports;
    int64_t age;
    struct sim_obj *o = NULL;
    enum bst_status rv;

    if ((rv = keys_only(sd, n, "a service", svc_keys)) != BST_OK ||
        (rv = name_at(sd, n, kube_dns1035_label_ok, &name)) != BST_OK ||
        (rv = age_at(sd, n, "age", ns_age, &age)) != BST_OK ||
        (rv = str_at(sd, n, "type", 0, &type)) != BST_OK ||
        (rv = str_at(sd, n, "cluster_ip", 0, &ip)) != BST_OK ||
        (rv = str_at(sd, n, "external_ip", 0, &ext)) != BST_OK ||
        (rv = seq_at(sd, n, "ports", &ports)) != BST_OK)
        return rv;
    if (type != NULL && strcmp(type, "ClusterIP") != 0 && strcmp(type, "NodePort") != 0 &&
        strcmp(type, "LoadBalancer") != 0)
        return fail_at(sd, bst_yaml_get(n, "type"),
                       "type must be ClusterIP, NodePort or "
                       "LoadBalancer");
    if ((o = sim_obj_new(s, SK_SERVICE, ns, name, s->t0 - age)) == NULL)
        return oom(sd);
    if ((rv = map_at(sd, n, "labels", 1, &o->meta.labels)) != BST_OK ||
        (rv = map_at(sd, n, "selector", 1, &o->u.svc.selector)) != BST_OK)
        goto fail;
    if ((o->u.svc.type = strdup(type != NULL ? type : "ClusterIP")) == NULL ||
        (ext != NULL && (o->u.svc.external_ip = strdup(ext)) == NULL))
        goto oom;
    if (ip != NULL)
        snprintf(o->u.svc.cluster_ip, sizeof(o->u.svc.cluster_ip), "%s", ip);
    else
        sim_alloc_service_ip(s, o->u.svc.cluster_ip);
    if (ports == NULL || ports->n == 0) {
        rv = fail_at(sd, n, "a service needs at least one port");
        goto fail;
    }
    if ((o->u.svc.ports = calloc(ports->n, sizeof(*o->u.svc.ports))) == NULL)
        goto oom;
    for (size_t i = 0; i < ports->n; i++) {
        const struct bst_yaml_node *p = ports->items[i], *tp;
        struct sim_svc_port *sp = &o->u.svc.ports[i];
        const char *pname, *proto;
        int64_t port, np;
        char buf[24];
        o->u.svc.n_ports = i + 1;
        if ((rv = keys_only(sd, p, "a service port", svc_port_keys)) != BST_OK ||
            (rv = int_at(sd, p, "port", 1, 65535, 0, &port)) != BST_OK ||
            (rv = int_at(sd, p, "node_port", 30000, 32767, 0, &np)) != BST_OK ||
            (rv = str_at(sd, p, "name", 0, &pname)) != BST_OK ||
            (rv = str_at(sd, p, "protocol", 0, &proto)) != BST_OK)
            goto fail;
        if (port == 0) {
            rv = fail_at(sd, p, "missing key 'port'");
            goto fail;
        }
        sp->port = (int32_t)port;
        sp->node_port = (int32_t)np;
        tp = bst_yaml_get(p, "target_port");
        snprintf(buf, sizeof(buf), "%d", (int)port);
        sp->target_port = strdup(tp != NULL && tp->kind == BST_YAML_SCALAR ? tp->value : buf);
        sp->protocol = strdup(proto != NULL ? proto : "TCP");
        sp->name = pname != NULL ? strdup(pname) : NULL;
        if (sp->target_port == NULL || sp->protocol == NULL || (pname != NULL && sp->name == NULL))
            goto oom;
    }
    if ((rv = sim_insert(s, o, sd->err)) != BST_OK)
        goto fail;
    return BST_OK;
oom:
    rv = oom(sd);
fail:
    sim_obj_free(o);
    return rv;
}

static const char *const data_keys[] = {"name", "age", "type", "labels", "data", NULL};

static enum bst_status parse_data(struct seed *sd, const char *ns, const struct bst_yaml_node *n,
                                  int64_t ns_age, enum sim_kind kind)
{
    struct sim *s = sd->s;
    const char *name, *type;
    int64_t age;
    struct sim_obj *o;
    enum bst_status rv;

    if ((rv = keys_only(sd, n, kind == SK_SECRET ? "a secret" : "a config map", data_keys)) !=
            BST_OK ||
        (rv = name_at(sd, n, kube_dns1123_subdomain_ok, &name)) != BST_OK ||
        (rv = age_at(sd, n, "age", ns_age, &age)) != BST_OK ||
        (rv = str_at(sd, n, "type", 0, &type)) != BST_OK)
        return rv;
    if (type != NULL && kind != SK_SECRET)
        return fail_at(sd, bst_yaml_get(n, "type"), "only secrets have a type");
    if ((o = sim_obj_new(s, kind, ns, name, s->t0 - age)) == NULL)
        return oom(sd);
    if ((rv = map_at(sd, n, "labels", 1, &o->meta.labels)) != BST_OK ||
        (rv = map_at(sd, n, "data", 0, &o->u.data.data)) != BST_OK)
        goto fail;
    if (kind == SK_SECRET && (o->u.data.type = strdup(type != NULL ? type : "Opaque")) == NULL) {
        rv = oom(sd);
        goto fail;
    }
    if ((rv = sim_insert(s, o, sd->err)) == BST_OK)
        return BST_OK;
fail:
    sim_obj_free(o);
    return rv;
}

static const char *const ns_keys[] = {"name",     "age",     "labels",     "deployments", "pods",
                                      "services", "secrets", "configmaps", NULL};

static enum bst_status parse_namespace(struct seed *sd, const struct bst_yaml_node *n)
{
    struct sim *s = sd->s;
    struct sim_kvs labels = {NULL, 0};
    const struct bst_yaml_node *list;
    const char *name;
    int64_t age;
    enum bst_status rv;

    if ((rv = keys_only(sd, n, "a namespace", ns_keys)) != BST_OK ||
        (rv = name_at(sd, n, kube_dns1123_label_ok, &name)) != BST_OK ||
        (rv = age_at(sd, n, "age", 45 * DAY, &age)) != BST_OK ||
        (rv = map_at(sd, n, "labels", 1, &labels)) != BST_OK)
        goto out;
    if (sim_namespace(s, name) != NULL) {
        rv = fail_at(sd, bst_yaml_get(n, "name"), "namespace '%s' is listed twice", name);
        goto out;
    }
    if ((rv = sim_create_namespace(s, name, &labels, s->t0 - age, sd->err)) != BST_OK)
        goto out;
    if ((rv = seq_at(sd, n, "services", &list)) != BST_OK)
        goto out;
    for (size_t i = 0; list != NULL && i < list->n && rv == BST_OK; i++)
        rv = parse_service(sd, name, list->items[i], age);
    if (rv == BST_OK && (rv = seq_at(sd, n, "secrets", &list)) == BST_OK)
        for (size_t i = 0; list != NULL && i < list->n && rv == BST_OK; i++)
            rv = parse_data(sd, name, list->items[i], age, SK_SECRET);
    if (rv == BST_OK && (rv = seq_at(sd, n, "configmaps", &list)) == BST_OK)
        for (size_t i = 0; list != NULL && i < list->n && rv == BST_OK; i++)
            rv = parse_data(sd, name, list->items[i], age, SK_CONFIGMAP);
    if (rv == BST_OK && (rv = seq_at(sd, n, "pods", &list)) == BST_OK)
        for (size_t i = 0; list != NULL && i < list->n && rv == BST_OK; i++)
            rv = parse_pod(sd, name, list->items[i], age);
    if (rv == BST_OK && (rv = seq_at(sd, n, "deployments", &list)) == BST_OK)
        for (size_t i = 0; list != NULL && i < list->n && rv == BST_OK; i++)
            rv = parse_deployment(sd, name, list->items[i], age);
out:
    sim_kvs_dispose(&labels);
    return rv;
}

static const char *const top_keys[] = {"cluster", "namespaces", NULL};
static const char *const cluster_keys[] = {"version", "random_seed", "nodes", NULL};
static const char *const node_keys[] = {"name", "control_plane", NULL};

static enum bst_status parse_cluster(struct seed *sd, const struct bst_yaml_node *n)
{
    struct sim *s = sd->s;
    const struct bst_yaml_node *nodes;
    const char *version;
    int64_t seed;
    enum bst_status rv;

    if ((rv = keys_only(sd, n, "cluster", cluster_keys)) != BST_OK ||
        (rv = str_at(sd, n, "version", 0, &version)) != BST_OK ||
        (rv = int_at(sd, n, "random_seed", 0, INT64_MAX, 1, &seed)) != BST_OK ||
        (rv = seq_at(sd, n, "nodes", &nodes)) != BST_OK)
        return rv;
    s->rng = (uint64_t)seed;
    if ((s->version = strdup(version != NULL ? version : "v1.31.4")) == NULL)
        return oom(sd);
    if (nodes == NULL || nodes->n == 0 || nodes->n > 64)
        return fail_at(sd, n, "cluster.nodes: give 1 to 64 nodes");
    if ((s->nodes = calloc(nodes->n, sizeof(*s->nodes))) == NULL)
        return oom(sd);
    for (size_t i = 0; i < nodes->n; i++) {
        const char *name;
        int cp;
        if ((rv = keys_only(sd, nodes->items[i], "a node", node_keys)) != BST_OK ||
            (rv = name_at(sd, nodes->items[i], kube_dns1123_subdomain_ok, &name)) != BST_OK ||
            (rv = bool_at(sd, nodes->items[i], "control_plane", &cp)) != BST_OK)
            return rv;
        if ((s->nodes[i].name = strdup(name)) == NULL)
            return oom(sd);
        s->nodes[i].control_plane = cp;
        s->n_nodes = i + 1;
    }
    return BST_OK;
}

/* Seeded history older than an hour is gone in a real cluster (the event TTL). */
static void expire_events(struct sim *s)
{
    struct sim_list *l = &s->lists[SK_EVENT];
    for (size_t i = l->n; i-- > 0;)
        if (l->v[i]->u.ev.last < s->t0 - 3600)
            sim_remove(s, l->v[i]);
}

/* Recurring warnings of pods that misbehave, as their kubelet keeps reporting them. */
static void recurring_events(struct sim *s)
{
    struct sim_list *pods = &s->lists[SK_POD];
    for (size_t i = 0; i < pods->n; i++) {
        struct sim_obj *p = pods->v[i];
        struct sim_pod_state st;
        const struct sim_container *c = &p->u.pod.t.containers[0];
        sim_pod_state(p, s->t0, &st);
        switch (p->u.pod.t.behavior) {
        case SB_CRASHLOOP:
            for (uint32_t k = 0; k < st.restarts && k < 200; k++)
                sim_event(s, p, "Warning", "BackOff", "kubelet", s->t0 - (int64_t)k * 300,
                          "Back-off restarting failed container %s in pod %s_%s(%s)", c->name,
                          p->meta.name, p->meta.namespace_, p->meta.uid);
            break;
        case SB_IMAGE_PULL:
            sim_event(s, p, "Normal", "BackOff", "kubelet", s->t0, "Back-off pulling image \"%s\"",
                      c->image);
            sim_event(s, p, "Warning", "Failed", "kubelet", s->t0, "Error: ImagePullBackOff");
            break;
        case SB_UNSCHEDULABLE:
            sim_event(s, p, "Warning", "FailedScheduling", "default-scheduler", s->t0,
                      "0/%zu nodes are available: 1 node(s) had untolerated taint "
                      "{node-role.kubernetes.io/control-plane: }, %zu Insufficient memory. "
                      "preemption: 0/%zu nodes are available: 1 Preemption is not helpful for "
                      "scheduling, %zu No preemption victims found for incoming pod.",
                      s->n_nodes, s->n_nodes - 1, s->n_nodes, s->n_nodes - 1);
            break;
        default:
            break;
        }
    }
}

enum bst_status sim_seed_load(struct sim *s, const char *path, struct bst_err *err)
{
    struct bst_yaml_limits lim;
    struct bst_yaml_doc *doc = NULL;
    struct seed sd;
    const struct bst_yaml_node *root, *nss;
    enum bst_status rv;

    bst_yaml_limits_default(&lim);
    lim.max_bytes = SEED_MAX_BYTES;
    if (path != NULL)
        rv = bst_yaml_load_file(path, &lim, &doc, err);
    else
        rv = bst_yaml_parse("built-in cluster seed", (const char *)sim_builtin_seed,
                            sim_builtin_seed_len, &lim, &doc, err);
    if (rv != BST_OK)
        return rv;
    sd.s = s;
    sd.doc = doc;
    sd.err = err;
    root = doc->root;
    if ((rv = keys_only(&sd, root, "the seed", top_keys)) != BST_OK)
        goto out;
    if (bst_yaml_get(root, "cluster") == NULL) {
        rv = fail_at(&sd, root, "missing key 'cluster'");
        goto out;
    }
    if ((rv = parse_cluster(&sd, bst_yaml_get(root, "cluster"))) != BST_OK ||
        (rv = seq_at(&sd, root, "namespaces", &nss)) != BST_OK)
        goto out;
    for (size_t i = 0; nss != NULL && i < nss->n && rv == BST_OK; i++)
        rv = parse_namespace(&sd, nss->items[i]);
    if (rv == BST_OK && sim_namespace(s, "default") == NULL)
        rv = fail_at(&sd, root, "the seed must have a namespace 'default'");
    if (rv == BST_OK) {
        expire_events(s);
        recurring_events(s);
    }
out:
    bst_yaml_free(doc);
    return rv;
}
