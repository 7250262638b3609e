/* kubectl-like text renderings of tool results (see render.h). A small table builder sizes
 * columns to their widest cell and separates them with three spaces, as kubectl does. */
#include "render.h"
#include "text.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

/* ---- string builder ------------------------------------------------------------------------ */

#define RENDER_MAX (4u * 1024 * 1024)

struct sb {
    char *p;
    size_t len, cap;
    int failed;
};

static void sb_add(struct sb *b, const char *s, size_t n)
{
    if (b->failed)
        return;
    if (b->len + n + 1 > b->cap) {
        size_t cap = b->cap ? b->cap : 1024;
        char *np;
        while (cap < b->len + n + 1)
            cap *= 2;
        if (cap > RENDER_MAX || (np = realloc(b->p, cap)) == NULL) {
            b->failed = 1;
            return;
        }
        b->p = np;
        b->cap = cap;
    }
    memcpy(b->p + b->len, s, n);
    b->len += n;
    b->p[b->len] = '\0';
}

static void sb_printf(struct sb *b, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

static void sb_printf(struct sb *b, const char *fmt, ...)
{
    char buf[2048];
    va_list ap;
    int n;
    va_start(ap, fmt);
    n = vsnprintf(buf, sizeof(buf), fmt, ap);
    va_end(ap);
    if (n > 0)
        sb_add(b, buf, (size_t)n < sizeof(buf) ? (size_t)n : sizeof(buf) - 1);
}

/* Appends s with control characters replaced, so no cell can break the layout. */
static void sb_cell(struct sb *b, const char *s)
{
    char buf[1024];
    size_t n = bst_text_sanitize(buf, sizeof(buf), s != NULL ? s : "", s != NULL ? strlen(s) : 0);
    sb_add(b, buf, n);
}

/* Moves the built text into ctx memory. */
static char *sb_finish(struct sb *b, const struct kube_ctx *ctx)
{
    char *out = NULL;
    if (!b->failed && (out = kube_alloc(ctx, b->len + 1)) != NULL) {
        if (b->len > 0)
            memcpy(out, b->p, b->len);
        out[b->len] = '\0';
    }
    free(b->p);
    return out;
}

/* ---- tables -------------------------------------------------------------------------------- */

#define MAX_COLS 10

struct table {
    size_t cols;
    char **cells; /* rows * cols, sanitised copies */
    size_t rows, cap;
    int failed;
};

static void row(struct table *t, ...)
{
    va_list ap;
    if (t->failed)
        return;
    if (t->rows == t->cap) {
        size_t cap = t->cap ? t->cap * 2 : 16;
        char **nc = realloc(t->cells, cap * t->cols * sizeof(*nc));
        if (nc == NULL) {
            t->failed = 1;
            return;
        }
        t->cells = nc;
        t->cap = cap;
    }
    va_start(ap, t);
    for (size_t c = 0; c < t->cols; c++) {
        const char *s = va_arg(ap, const char *);
        char buf[1024];
        size_t n =
            bst_text_sanitize(buf, sizeof(buf), s != NULL ? s : "", s != NULL ? strlen(s) : 0);
        char *d = malloc(n + 1);
        if (d == NULL)
            t->failed = 1;
        else
            memcpy(d, buf, n + 1);
        t->cells[t->rows * t->cols + c] = d;
    }
    va_end(ap);
    t->rows++;
}

/* Writes the table; frees its cells. The last column is not padded. */
static void table_out(struct table *t, struct sb *b)
{
    size_t w[MAX_COLS] = {0};
    for (size_t r = 0; r < t->rows; r++)
        for (size_t c = 0; c < t->cols; c++) {
            const char *s = t->cells[r * t->cols + c];
            size_t n = s != NULL ? strlen(s) : 0;
            if (n > w[c])
                w[c] = n;
        }
    for (size_t r = 0; r < t->rows; r++) {
        for (size_t c = 0; c < t->cols; c++) {
            const char *s = t->cells[r * t->cols + c];
            if (c + 1 < t->cols)
                sb_printf(b, "%-*s   ", (int)w[c], s != NULL ? s : "");
            else
                sb_printf(b, "%s", s != NULL ? s : "");
        }
        /* Cells longer than the printf buffer are cut there; the layout stays a table. */
        while (b->len > 0 && b->p[b->len - 1] == ' ')
            b->p[--b->len] = '\0';
        sb_add(b, "\n", 1);
    }
    for (size_t i = 0; i < t->rows * t->cols; i++)
        free(t->cells[i]);
    free(t->cells);
    if (t->failed)
        b->failed = 1;
}

/* ---- times --------------------------------------------------------------------------------- */

int64_t kube_parse_time(const char *s)
{
    struct tm tm;
    char tail;
    memset(&tm, 0, sizeof(tm));
    if (s == NULL ||
        sscanf(s, "%4d-%2d-%2dT%2d:%2d:%2d%c", &tm.tm_year, &tm.tm_mon, &tm.tm_mday, &tm.tm_hour,
               &tm.tm_min, &tm.tm_sec, &tail) != 7 ||
        tail != 'Z')
        return -1;
    tm.tm_year -= 1900;
    tm.tm_mon -= 1;
    return (int64_t)timegm(&tm);
}

/* k8s.io/apimachinery/pkg/util/duration.HumanDuration. */
void kube_human_age(int64_t d, char *buf, size_t len)
{
    long long s = d < 0 ? 0 : (long long)d, m = s / 60, h = s / 3600;
    if (s < 120)
        snprintf(buf, len, "%llds", s);
    else if (m < 10) {
        if (s % 60 == 0)
            snprintf(buf, len, "%lldm", m);
        else
            snprintf(buf, len, "%lldm%llds", m, s % 60);
    } else if (m < 3 * 60)
        snprintf(buf, len, "%lldm", m);
    else if (h < 8) {
        if (m % 60 == 0)
            snprintf(buf, len, "%lldh", h);
        else
            snprintf(buf, len, "%lldh%lldm", h, m % 60);
    } else if (h < 48)
        snprintf(buf, len, "%lldh", h);
    else if (h < 8 * 24) {
        if (h % 24 == 0)
            snprintf(buf, len, "%lldd", h / 24);
        else
            snprintf(buf, len, "%lldd%lldh", h / 24, h % 24);
    } else if (h < 2 * 365 * 24)
        snprintf(buf, len, "%lldd", h / 24);
    else if (h < 8 * 365 * 24) {
        long long dd = h / 24 - (h / 24 / 365) * 365;
        if (dd == 0)
            snprintf(buf, len, "%lldy", h / 24 / 365);
        else
            snprintf(buf, len, "%lldy%lldd", h / 24 / 365, dd);
    } else
        snprintf(buf, len, "%lldy", h / 24 / 365);
}

static const char *age(const char *ts, int64_t now, char *buf, size_t len)
{
    int64_t t = kube_parse_time(ts);
    if (t < 0)
        return "<unknown>";
    kube_human_age(now - t, buf, len);
    return buf;
}

char *kube_sanitize_text(const char *text, const struct kube_ctx *ctx)
{
    size_t n = strlen(text);
    char *out = kube_alloc(ctx, n + 1);
    if (out == NULL)
        return NULL;
    /* Log text is ours or the cluster's: keep lines and tabs, neutralise every other control
     * character and invalid UTF-8, byte for byte (the length never grows: '?' for each). */
    for (size_t i = 0; i < n;) {
        size_t bad = bst_utf8_bad_offset(text + i, n - i);
        for (size_t k = 0; k < bad; k++) {
            unsigned char c = (unsigned char)text[i + k];
            out[i + k] = (c < 0x20 && c != '\n' && c != '\t') || c == 0x7f ? '?' : (char)c;
        }
        i += bad;
        if (i < n)
            out[i++] = '?';
    }
    out[n] = '\0';
    return out;
}

/* ---- renderers ----------------------------------------------------------------------------- */

static int all_namespaces(const ProtobufCMessage *args)
{
    const ProtobufCFieldDescriptor *f =
        protobuf_c_message_descriptor_get_field_by_name(args->descriptor, "all_namespaces");
    protobuf_c_boolean has, v;
    if (f == NULL)
        return 0;
    memcpy(&has, (const char *)args + f->quantifier_offset, sizeof(has));
    memcpy(&v, (const char *)args + f->offset, sizeof(v));
    return has && v;
}

static const char *arg_namespace(const ProtobufCMessage *args)
{
    const ProtobufCFieldDescriptor *f =
        protobuf_c_message_descriptor_get_field_by_name(args->descriptor, "namespace");
    const char *ns = NULL;
    if (f != NULL)
        memcpy(&ns, (const char *)args + f->offset, sizeof(ns));
    return ns != NULL ? ns : "";
}

static void none_found(struct sb *b, const ProtobufCMessage *args)
{
    if (all_namespaces(args))
        sb_printf(b, "No resources found\n");
    else
        sb_printf(b, "No resources found in %s namespace.\n", arg_namespace(args));
}

char *kube_render_list_pods(const ProtobufCMessage *args, const ProtobufCMessage *result,
                            int64_t now, const struct kube_ctx *ctx)
{
    const Bastion__V1__ListPodsResult *r = (const void *)result;
    int all = all_namespaces(args);
    struct table t = {all ? 8 : 7, NULL, 0, 0, 0};
    struct sb b = {NULL, 0, 0, 0};

    if (r->n_pods == 0) {
        none_found(&b, args);
        return sb_finish(&b, ctx);
    }
    if (all)
        row(&t, "NAMESPACE", "NAME", "READY", "STATUS", "RESTARTS", "AGE", "IP", "NODE");
    else
        row(&t, "NAME", "READY", "STATUS", "RESTARTS", "AGE", "IP", "NODE");
    for (size_t i = 0; i < r->n_pods; i++) {
        const Bastion__V1__Pod *p = r->pods[i];
        char ready[24], restarts[16], a[24];
        snprintf(ready, sizeof(ready), "%u/%u", p->ready_containers, p->total_containers);
        snprintf(restarts, sizeof(restarts), "%u", p->restarts);
        age(p->creation_timestamp, now, a, sizeof(a));
        if (all)
            row(&t, p->namespace_, p->name, ready, p->status, restarts, a,
                p->ip && *p->ip ? p->ip : "<none>", p->node && *p->node ? p->node : "<none>");
        else
            row(&t, p->name, ready, p->status, restarts, a, p->ip && *p->ip ? p->ip : "<none>",
                p->node && *p->node ? p->node : "<none>");
    }
    table_out(&t, &b);
    return sb_finish(&b, ctx);
}

char *kube_render_list_namespaces(const ProtobufCMessage *args, const ProtobufCMessage *result,
                                  int64_t now, const struct kube_ctx *ctx)
{
    const Bastion__V1__ListNamespacesResult *r = (const void *)result;
    struct table t = {3, NULL, 0, 0, 0};
    struct sb b = {NULL, 0, 0, 0};
    (void)args;
    if (r->n_namespaces == 0) {
        sb_printf(&b, "No resources found\n");
        return sb_finish(&b, ctx);
    }
    row(&t, "NAME", "STATUS", "AGE");
    for (size_t i = 0; i < r->n_namespaces; i++) {
        char a[24];
        row(&t, r->namespaces[i]->name, r->namespaces[i]->phase,
            age(r->namespaces[i]->creation_timestamp, now, a, sizeof(a)));
    }
    table_out(&t, &b);
    return sb_finish(&b, ctx);
}

static void labels_line(struct sb *b, const char *title, Bastion__V1__Label *const *l, size_t n)
{
    sb_printf(b, "%-18s", title);
    if (n == 0)
        sb_add(b, "<none>", 6);
    for (size_t i = 0; i < n; i++) {
        if (i > 0)
            sb_printf(b, "\n%-18s", "");
        sb_cell(b, l[i]->key);
        sb_add(b, "=", 1);
        sb_cell(b, l[i]->value);
    }
    sb_add(b, "\n", 1);
}

static void events_table(struct sb *b, Bastion__V1__Event *const *ev, size_t n, int64_t now)
{
    struct table t = {5, NULL, 0, 0, 0};
    if (n == 0) {
        sb_printf(b, "Events:           <none>\n");
        return;
    }
    sb_printf(b, "Events:\n");
    row(&t, "  Type", "Reason", "Age", "From", "Message");
    row(&t, "  ----", "------", "----", "----", "-------");
    for (size_t i = 0; i < n; i++) {
        char a[24], type[32], when[96];
        snprintf(type, sizeof(type), "  %s", ev[i]->type != NULL ? ev[i]->type : "");
        age(ev[i]->last_timestamp, now, a, sizeof(a));
        if (ev[i]->count > 1) {
            char first[24];
            age(ev[i]->first_timestamp, now, first, sizeof(first));
            snprintf(when, sizeof(when), "%s (x%u over %s)", a, ev[i]->count, first);
        } else {
            snprintf(when, sizeof(when), "%s", a);
        }
        row(&t, type, ev[i]->reason, when, ev[i]->source, ev[i]->message);
    }
    table_out(&t, b);
}

char *kube_render_get_pod(const ProtobufCMessage *args, const ProtobufCMessage *result, int64_t now,
                          const struct kube_ctx *ctx)
{
    const Bastion__V1__GetPodResult *r = (const void *)result;
    const Bastion__V1__Pod *p = r->pod;
    struct sb b = {NULL, 0, 0, 0};
    (void)args;

#define FIELD(title, value)                                                                        \
    do {                                                                                           \
        sb_printf(&b, "%-18s", title);                                                             \
        sb_cell(&b, (value) != NULL && *(value) ? (value) : "<none>");                             \
        sb_add(&b, "\n", 1);                                                                       \
    } while (0)
#define SUB(indent, title, value)                                                                  \
    do {                                                                                           \
        sb_printf(&b, "%*s%-*s", (indent), "", 20 - (indent), title);                              \
        sb_cell(&b, value);                                                                        \
        sb_add(&b, "\n", 1);                                                                       \
    } while (0)

    FIELD("Name:", p->name);
    FIELD("Namespace:", p->namespace_);
    FIELD("Service Account:", p->service_account);
    FIELD("Node:", p->node);
    FIELD("Start Time:", p->creation_timestamp);
    labels_line(&b, "Labels:", p->labels, p->n_labels);
    FIELD("Status:", p->status);
    FIELD("IP:", p->ip);
    if (p->owner != NULL) {
        char ctl[400];
        snprintf(ctl, sizeof(ctl), "%s/%s", p->owner->kind, p->owner->name);
        FIELD("Controlled By:", ctl);
    }
    sb_printf(&b, "Containers:\n");
    for (size_t i = 0; i < p->n_containers; i++) {
        const Bastion__V1__ContainerStatus *c = p->containers[i];
        char restarts[16];
        sb_add(&b, "  ", 2);
        sb_cell(&b, c->name);
        sb_add(&b, ":\n", 2);
        SUB(4, "Image:", c->image);
        SUB(4, "State:", c->state);
        if (c->reason != NULL)
            SUB(6, "Reason:", c->reason);
        if (c->started_at != NULL)
            SUB(6, "Started:", c->started_at);
        if (c->last_state != NULL)
            SUB(4, "Last State:", c->last_state);
        SUB(4, "Ready:", c->ready ? "True" : "False");
        snprintf(restarts, sizeof(restarts), "%u", c->restart_count);
        SUB(4, "Restart Count:", restarts);
    }
    events_table(&b, r->events, r->n_events, now);
    return sb_finish(&b, ctx);
#undef FIELD
#undef SUB
}

char *kube_render_get_pod_logs(const ProtobufCMessage *args, const ProtobufCMessage *result,
                               int64_t now, const struct kube_ctx *ctx)
{
    const Bastion__V1__GetPodLogsResult *r = (const void *)result;
    struct sb b = {NULL, 0, 0, 0};
    char *logs;
    (void)args;
    (void)now;
    if (r->logs == NULL || r->logs[0] == '\0') {
        sb_printf(&b, "(no log lines from container %s of pod %s)\n", r->container, r->pod);
        return sb_finish(&b, ctx);
    }
    if ((logs = kube_sanitize_text(r->logs, ctx)) == NULL)
        return NULL;
    sb_add(&b, logs, strlen(logs));
    if (r->truncated)
        sb_printf(&b, "%s[output truncated after %u lines]\n",
                  b.len > 0 && b.p[b.len - 1] == '\n' ? "" : "\n", r->lines);
    return sb_finish(&b, ctx);
}

char *kube_render_delete_pod(const ProtobufCMessage *args, const ProtobufCMessage *result,
                             int64_t now, const struct kube_ctx *ctx)
{
    const Bastion__V1__DeletePodResult *r = (const void *)result;
    struct sb b = {NULL, 0, 0, 0};
    (void)args;
    (void)now;
    sb_add(&b, "pod \"", 5);
    sb_cell(&b, r->pod->name);
    sb_add(&b, "\" deleted\n", 10);
    return sb_finish(&b, ctx);
}

char *kube_render_restart_pod(const ProtobufCMessage *args, const ProtobufCMessage *result,
                              int64_t now, const struct kube_ctx *ctx)
{
    const Bastion__V1__RestartPodResult *r = (const void *)result;
    struct sb b = {NULL, 0, 0, 0};
    (void)args;
    (void)now;
    sb_add(&b, "pod \"", 5);
    sb_cell(&b, r->deleted_pod);
    sb_add(&b, "\" deleted", 9);
    if (r->pod != NULL) {
        sb_add(&b, "; replaced by pod \"", 19);
        sb_cell(&b, r->pod->name);
        sb_add(&b, "\" (", 3);
        sb_cell(&b, r->pod->status);
        sb_add(&b, ")", 1);
    }
    sb_add(&b, "\n", 1);
    return sb_finish(&b, ctx);
}

char *kube_render_list_deployments(const ProtobufCMessage *args, const ProtobufCMessage *result,
                                   int64_t now, const struct kube_ctx *ctx)
{
    const Bastion__V1__ListDeploymentsResult *r = (const void *)result;
    int all = all_namespaces(args);
    struct table t = {all ? 7 : 6, NULL, 0, 0, 0};
    struct sb b = {NULL, 0, 0, 0};

    if (r->n_deployments == 0) {
        none_found(&b, args);
        return sb_finish(&b, ctx);
    }
    if (all)
        row(&t, "NAMESPACE", "NAME", "READY", "UP-TO-DATE", "AVAILABLE", "AGE", "IMAGES");
    else
        row(&t, "NAME", "READY", "UP-TO-DATE", "AVAILABLE", "AGE", "IMAGES");
    for (size_t i = 0; i < r->n_deployments; i++) {
        const Bastion__V1__Deployment *d = r->deployments[i];
        char ready[32], upd[16], avail[16], a[24], images[512] = "";
        size_t used = 0;
        snprintf(ready, sizeof(ready), "%d/%d", d->ready_replicas, d->replicas);
        snprintf(upd, sizeof(upd), "%d", d->updated_replicas);
        snprintf(avail, sizeof(avail), "%d", d->available_replicas);
        for (size_t k = 0; k < d->n_containers && used < sizeof(images); k++)
            used += (size_t)snprintf(images + used, sizeof(images) - used, "%s%s", k ? "," : "",
                                     d->containers[k]->image);
        age(d->creation_timestamp, now, a, sizeof(a));
        if (all)
            row(&t, d->namespace_, d->name, ready, upd, avail, a, images);
        else
            row(&t, d->name, ready, upd, avail, a, images);
    }
    table_out(&t, &b);
    return sb_finish(&b, ctx);
}

char *kube_render_scale_deployment(const ProtobufCMessage *args, const ProtobufCMessage *result,
                                   int64_t now, const struct kube_ctx *ctx)
{
    const Bastion__V1__ScaleDeploymentResult *r = (const void *)result;
    struct sb b = {NULL, 0, 0, 0};
    (void)args;
    (void)now;
    sb_add(&b, "deployment.apps/", 16);
    sb_cell(&b, r->deployment->name);
    if (r->previous_replicas == r->deployment->replicas)
        sb_printf(&b, " unchanged (%d replicas)\n", r->deployment->replicas);
    else
        sb_printf(&b, " scaled from %d to %d replicas\n", r->previous_replicas,
                  r->deployment->replicas);
    return sb_finish(&b, ctx);
}

char *kube_render_restart_deployment(const ProtobufCMessage *args, const ProtobufCMessage *result,
                                     int64_t now, const struct kube_ctx *ctx)
{
    const Bastion__V1__RestartDeploymentResult *r = (const void *)result;
    struct sb b = {NULL, 0, 0, 0};
    (void)args;
    (void)now;
    sb_add(&b, "deployment.apps/", 16);
    sb_cell(&b, r->deployment->name);
    sb_add(&b, " restarted at ", 14);
    sb_cell(&b, r->restarted_at);
    if (r->deployment->current_replica_set != NULL) {
        sb_add(&b, " (new replica set ", 18);
        sb_cell(&b, r->deployment->current_replica_set);
        sb_add(&b, ")", 1);
    }
    sb_add(&b, "\n", 1);
    return sb_finish(&b, ctx);
}

char *kube_render_list_services(const ProtobufCMessage *args, const ProtobufCMessage *result,
                                int64_t now, const struct kube_ctx *ctx)
{
    const Bastion__V1__ListServicesResult *r = (const void *)result;
    int all = all_namespaces(args);
    struct table t = {all ? 7 : 6, NULL, 0, 0, 0};
    struct sb b = {NULL, 0, 0, 0};

    if (r->n_services == 0) {
        none_found(&b, args);
        return sb_finish(&b, ctx);
    }
    if (all)
        row(&t, "NAMESPACE", "NAME", "TYPE", "CLUSTER-IP", "EXTERNAL-IP", "PORT(S)", "AGE");
    else
        row(&t, "NAME", "TYPE", "CLUSTER-IP", "EXTERNAL-IP", "PORT(S)", "AGE");
    for (size_t i = 0; i < r->n_services; i++) {
        const Bastion__V1__Service *s = r->services[i];
        char ports[512] = "", a[24];
        const char *ext =
            s->external_ip != NULL && *s->external_ip
                ? s->external_ip
                : (s->type != NULL && strcmp(s->type, "LoadBalancer") == 0 ? "<pending>"
                                                                           : "<none>");
        size_t used = 0;
        for (size_t k = 0; k < s->n_ports && used < sizeof(ports); k++) {
            const Bastion__V1__ServicePort *p = s->ports[k];
            if (p->has_node_port)
                used += (size_t)snprintf(ports + used, sizeof(ports) - used, "%s%d:%d/%s",
                                         k ? "," : "", p->port, p->node_port, p->protocol);
            else
                used += (size_t)snprintf(ports + used, sizeof(ports) - used, "%s%d/%s",
                                         k ? "," : "", p->port, p->protocol);
        }
        age(s->creation_timestamp, now, a, sizeof(a));
        if (all)
            row(&t, s->namespace_, s->name, s->type, s->cluster_ip, ext, ports, a);
        else
            row(&t, s->name, s->type, s->cluster_ip, ext, ports, a);
    }
    table_out(&t, &b);
    return sb_finish(&b, ctx);
}

char *kube_render_list_events(const ProtobufCMessage *args, const ProtobufCMessage *result,
                              int64_t now, const struct kube_ctx *ctx)
{
    const Bastion__V1__ListEventsResult *r = (const void *)result;
    int all = all_namespaces(args);
    struct table t = {all ? 6 : 5, NULL, 0, 0, 0};
    struct sb b = {NULL, 0, 0, 0};

    if (r->n_events == 0) {
        none_found(&b, args);
        return sb_finish(&b, ctx);
    }
    if (all)
        row(&t, "NAMESPACE", "LAST SEEN", "TYPE", "REASON", "OBJECT", "MESSAGE");
    else
        row(&t, "LAST SEEN", "TYPE", "REASON", "OBJECT", "MESSAGE");
    for (size_t i = 0; i < r->n_events; i++) {
        const Bastion__V1__Event *e = r->events[i];
        char a[24], obj[400], kind[64];
        size_t k;
        snprintf(kind, sizeof(kind), "%s", e->object_kind != NULL ? e->object_kind : "");
        for (k = 0; kind[k]; k++)
            kind[k] = (char)(kind[k] >= 'A' && kind[k] <= 'Z' ? kind[k] + 32 : kind[k]);
        snprintf(obj, sizeof(obj), "%s/%s", kind, e->object_name != NULL ? e->object_name : "");
        age(e->last_timestamp, now, a, sizeof(a));
        if (all)
            row(&t, e->namespace_, a, e->type, e->reason, obj, e->message);
        else
            row(&t, a, e->type, e->reason, obj, e->message);
    }
    table_out(&t, &b);
    return sb_finish(&b, ctx);
}

char *kube_render_list_secrets(const ProtobufCMessage *args, const ProtobufCMessage *result,
                               int64_t now, const struct kube_ctx *ctx)
{
    const Bastion__V1__ListSecretsResult *r = (const void *)result;
    struct table t = {5, NULL, 0, 0, 0};
    struct sb b = {NULL, 0, 0, 0};

    if (r->n_secrets == 0) {
        none_found(&b, args);
        return sb_finish(&b, ctx);
    }
    row(&t, "NAME", "TYPE", "DATA", "AGE", "KEYS");
    for (size_t i = 0; i < r->n_secrets; i++) {
        const Bastion__V1__Secret *s = r->secrets[i];
        char data[16], a[24], keys[512] = "";
        size_t used = 0;
        snprintf(data, sizeof(data), "%zu", s->n_keys);
        for (size_t k = 0; k < s->n_keys && used < sizeof(keys); k++)
            used += (size_t)snprintf(keys + used, sizeof(keys) - used, "%s%s", k ? "," : "",
                                     s->keys[k]);
        row(&t, s->name, s->type, data, age(s->creation_timestamp, now, a, sizeof(a)), keys);
    }
    table_out(&t, &b);
    sb_printf(&b, "(values are write-only and never shown)\n");
    return sb_finish(&b, ctx);
}

char *kube_render_create_secret(const ProtobufCMessage *args, const ProtobufCMessage *result,
                                int64_t now, const struct kube_ctx *ctx)
{
    const Bastion__V1__CreateSecretResult *r = (const void *)result;
    struct sb b = {NULL, 0, 0, 0};
    (void)args;
    (void)now;
    sb_add(&b, "secret/", 7);
    sb_cell(&b, r->secret->name);
    sb_printf(&b, " created (%zu key%s)\n", r->secret->n_keys, r->secret->n_keys == 1 ? "" : "s");
    return sb_finish(&b, ctx);
}

char *kube_render_delete_secret(const ProtobufCMessage *args, const ProtobufCMessage *result,
                                int64_t now, const struct kube_ctx *ctx)
{
    const Bastion__V1__DeleteSecretResult *r = (const void *)result;
    struct sb b = {NULL, 0, 0, 0};
    (void)args;
    (void)now;
    sb_add(&b, "secret \"", 8);
    sb_cell(&b, r->secret->name);
    sb_add(&b, "\" deleted\n", 10);
    return sb_finish(&b, ctx);
}

char *kube_render_create_resource(const ProtobufCMessage *args, const ProtobufCMessage *result,
                                  int64_t now, const struct kube_ctx *ctx)
{
    const Bastion__V1__CreateResourceResult *r = (const void *)result;
    struct sb b = {NULL, 0, 0, 0};
    char kind[64];
    size_t k;
    (void)args;
    (void)now;
    snprintf(kind, sizeof(kind), "%s", r->kind != NULL ? r->kind : "");
    for (k = 0; kind[k]; k++)
        kind[k] = (char)(kind[k] >= 'A' && kind[k] <= 'Z' ? kind[k] + 32 : kind[k]);
    sb_cell(&b, kind);
    if (strcmp(kind, "deployment") == 0)
        sb_add(&b, ".apps", 5);
    sb_add(&b, "/", 1);
    sb_cell(&b, r->name);
    sb_printf(&b, " %s\n", r->created ? "created" : "checked (dry run): nothing was created");
    return sb_finish(&b, ctx);
}
