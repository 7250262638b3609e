/* Tests for the simulated cluster (kube/sim*.c) through kube/backend.h: the deployment and
 * replica-set controllers, deletion and replacement, restarts, label selectors, logs (tail_lines,
 * since_seconds, container, previous, limit_bytes, determinism), resourceVersion, events,
 * secrets staying write-only, resources, quotas, and concurrent mutations. The wall clock is
 * injected, so ages and log lines are exact. */
#include "backend.h"
#include "clock.h"
#include "render.h"
#include "sim_internal.h"

#include <check.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

/* ---- fixtures ------------------------------------------------------------------------------ */

static int64_t fake_now = 1767225600; /* 2026-01-01T00:00:00Z */

static int64_t fake_wall(void)
{
    return fake_now * BST_NS_PER_S;
}

struct arena {
    void **v;
    size_t n, cap;
    pthread_mutex_t lock;
};

static void *arena_alloc(void *arg, size_t n)
{
    struct arena *a = arg;
    void *p = calloc(1, n);
    pthread_mutex_lock(&a->lock);
    if (a->n == a->cap) {
        a->cap = a->cap ? a->cap * 2 : 256;
        a->v = realloc(a->v, a->cap * sizeof(*a->v));
    }
    a->v[a->n++] = p;
    pthread_mutex_unlock(&a->lock);
    return p;
}

static struct arena arena;
static struct kube_ctx ctx;
static struct kube_backend *kb;

static const char small_seed[] =
    "cluster:\n"
    "  random_seed: 7\n"
    "  nodes: [{name: cp, control_plane: true}, {name: w1}, {name: w2}]\n"
    "namespaces:\n"
    "  - name: default\n"
    "    pods:\n"
    "      - name: solo\n"
    "        age: 1h\n"
    "        labels: {app: solo}\n"
    "        containers: [{name: app, image: \"busybox:1.36\"}]\n"
    "    secrets:\n"
    "      - {name: creds, data: {password: seed-canary-value}}\n"
    "    deployments:\n"
    "      - name: web\n"
    "        age: 2d\n"
    "        replicas: 2\n"
    "        labels: {app: web, tier: frontend}\n"
    "        containers: [{name: nginx, image: \"nginx:1.27\"}]\n"
    "        restarts: [3]\n"
    "      - name: multi\n"
    "        age: 1d\n"
    "        labels: {app: multi, tier: backend}\n"
    "        containers:\n"
    "          - {name: app, image: \"ghcr.io/acme/api:1\"}\n"
    "          - {name: sidecar, image: \"fluent/fluent-bit:3\"}\n"
    "  - name: other\n"
    "    deployments:\n"
    "      - name: crash\n"
    "        age: 1h\n"
    "        state: crashloop\n"
    "        containers: [{name: app, image: \"x/api:1\"}]\n";

static struct kube_backend *new_sim(const char *yaml, size_t max_objects)
{
    char path[] = "/tmp/check_sim_seed_XXXXXX";
    int fd = mkstemp(path);
    struct kube_sim_options o = {path, max_objects, 0};
    struct kube_backend *b;
    struct bst_err err = {BST_OK, ""};
    ck_assert_int_ge(fd, 0);
    ck_assert_int_eq(write(fd, yaml, strlen(yaml)), (ssize_t)strlen(yaml));
    close(fd);
    ck_assert_msg(kube_sim_new(&b, &o, &err) == BST_OK, "%s", err.msg);
    unlink(path);
    return b;
}

static void setup(void)
{
    pthread_mutex_init(&arena.lock, NULL);
    ctx.request_id = "test";
    ctx.deadline_mono_ns = 0;
    ctx.alloc = arena_alloc;
    ctx.alloc_arg = &arena;
    fake_now = 1767225600;
    kb = new_sim(small_seed, 0);
}

static void teardown(void)
{
    kube_backend_free(kb);
    for (size_t i = 0; i < arena.n; i++)
        free(arena.v[i]);
    free(arena.v);
    memset(&arena, 0, sizeof(arena));
}

/* ---- helpers ------------------------------------------------------------------------------- */

static Bastion__V1__ListPodsResult *pods(const char *ns, const char *selector)
{
    Bastion__V1__ListPodsArgs a = BASTION__V1__LIST_PODS_ARGS__INIT;
    Bastion__V1__ListPodsResult *r = NULL;
    struct bst_err err = {BST_OK, ""};
    a.namespace_ = (char *)ns;
    a.label_selector = (char *)selector;
    ck_assert_msg(kb->ops->list_pods(kb, &ctx, &a, &r, &err) == BST_OK, "%s", err.msg);
    return r;
}

static Bastion__V1__Deployment *deployment(const char *ns, const char *name)
{
    Bastion__V1__ListDeploymentsArgs a = BASTION__V1__LIST_DEPLOYMENTS_ARGS__INIT;
    Bastion__V1__ListDeploymentsResult *r = NULL;
    struct bst_err err;
    a.namespace_ = (char *)ns;
    ck_assert_int_eq(kb->ops->list_deployments(kb, &ctx, &a, &r, &err), BST_OK);
    for (size_t i = 0; i < r->n_deployments; i++)
        if (strcmp(r->deployments[i]->name, name) == 0)
            return r->deployments[i];
    ck_abort_msg("no deployment %s", name);
    return NULL;
}

static enum bst_status scale(const char *ns, const char *name, int32_t n, struct bst_err *err)
{
    Bastion__V1__ScaleDeploymentArgs a = BASTION__V1__SCALE_DEPLOYMENT_ARGS__INIT;
    Bastion__V1__ScaleDeploymentResult *r = NULL;
    a.namespace_ = (char *)ns;
    a.name = (char *)name;
    a.has_replicas = 1;
    a.replicas = n;
    return kb->ops->scale_deployment(kb, &ctx, &a, &r, err);
}

static enum bst_status delete_pod(const char *ns, const char *name, struct bst_err *err)
{
    Bastion__V1__DeletePodArgs a = BASTION__V1__DELETE_POD_ARGS__INIT;
    Bastion__V1__DeletePodResult *r = NULL;
    a.namespace_ = (char *)ns;
    a.name = (char *)name;
    return kb->ops->delete_pod(kb, &ctx, &a, &r, err);
}

static size_t count_with_prefix(const Bastion__V1__ListPodsResult *r, const char *prefix)
{
    size_t n = 0;
    for (size_t i = 0; i < r->n_pods; i++)
        n += strncmp(r->pods[i]->name, prefix, strlen(prefix)) == 0;
    return n;
}

static int has_pod(const Bastion__V1__ListPodsResult *r, const char *name)
{
    for (size_t i = 0; i < r->n_pods; i++)
        if (strcmp(r->pods[i]->name, name) == 0)
            return 1;
    return 0;
}

static Bastion__V1__ListEventsResult *events(const char *ns, const char *kind, const char *name)
{
    Bastion__V1__ListEventsArgs a = BASTION__V1__LIST_EVENTS_ARGS__INIT;
    Bastion__V1__ListEventsResult *r = NULL;
    struct bst_err err;
    a.namespace_ = (char *)ns;
    a.object_kind = (char *)kind;
    a.object_name = (char *)name;
    ck_assert_int_eq(kb->ops->list_events(kb, &ctx, &a, &r, &err), BST_OK);
    return r;
}

static int has_event(const Bastion__V1__ListEventsResult *r, const char *reason, const char *msg)
{
    for (size_t i = 0; i < r->n_events; i++)
        if (strcmp(r->events[i]->reason, reason) == 0 &&
            (msg == NULL || strstr(r->events[i]->message, msg) != NULL))
            return 1;
    return 0;
}

static Bastion__V1__GetPodLogsResult *logs(const char *ns, const char *pod, const char *container,
                                           int64_t tail, int64_t since, int previous,
                                           int timestamps, uint32_t limit, enum bst_status want,
                                           struct bst_err *err)
{
    Bastion__V1__GetPodLogsArgs a = BASTION__V1__GET_POD_LOGS_ARGS__INIT;
    Bastion__V1__GetPodLogsResult *r = NULL;
    a.namespace_ = (char *)ns;
    a.name = (char *)pod;
    a.container = (char *)container;
    if (tail >= 0)
        a.has_tail_lines = 1, a.tail_lines = (uint32_t)tail;
    if (since > 0)
        a.has_since_seconds = 1, a.since_seconds = (uint32_t)since;
    a.has_previous = 1, a.previous = previous;
    a.has_timestamps = 1, a.timestamps = timestamps;
    if (limit > 0)
        a.has_limit_bytes = 1, a.limit_bytes = limit;
    ck_assert_msg(kb->ops->get_pod_logs(kb, &ctx, &a, &r, err) == want, "%s", err->msg);
    return r;
}

static size_t lines_in(const char *s)
{
    size_t n = 0;
    for (; *s; s++)
        n += *s == '\n';
    return n;
}

static const char *pod_named(const char *ns, const char *prefix)
{
    Bastion__V1__ListPodsResult *r = pods(ns, NULL);
    for (size_t i = 0; i < r->n_pods; i++)
        if (strncmp(r->pods[i]->name, prefix, strlen(prefix)) == 0)
            return r->pods[i]->name;
    ck_abort_msg("no pod %s*", prefix);
    return NULL;
}

/* ---- the controllers ----------------------------------------------------------------------- */

START_TEST(test_sim_builtin_seed_has_the_namespaces_of_the_issue_with_workloads)
{
    static const char *const want[] = {"default",    "development",   "staging",
                                       "production", "feature-login", "kube-system"};
    struct kube_backend *saved = kb, *b;
    Bastion__V1__ListNamespacesArgs a = BASTION__V1__LIST_NAMESPACES_ARGS__INIT;
    Bastion__V1__ListNamespacesResult *r = NULL;
    struct bst_err err = {BST_OK, ""};

    ck_assert_msg(kube_sim_new(&b, NULL, &err) == BST_OK, "%s", err.msg);
    kb = b;
    ck_assert_int_eq(b->ops->list_namespaces(b, &ctx, &a, &r, &err), BST_OK);
    for (size_t i = 0; i < sizeof(want) / sizeof(want[0]); i++) {
        int found = 0;
        for (size_t k = 0; k < r->n_namespaces; k++)
            found |= strcmp(r->namespaces[k]->name, want[i]) == 0;
        ck_assert_msg(found, "no namespace %s", want[i]);
        ck_assert_msg(pods(want[i], NULL)->n_pods > 0, "no pods in %s", want[i]);
    }
    kb = saved;
    kube_backend_free(b);
}
END_TEST

START_TEST(test_sim_scale_up_creates_pods_owned_by_the_current_replica_set)
{
    struct bst_err err;
    Bastion__V1__Deployment *d = deployment("default", "web");
    Bastion__V1__ListPodsResult *r;
    size_t before = count_with_prefix(pods("default", NULL), d->current_replica_set);

    ck_assert_int_eq(before, 2);
    ck_assert_int_eq(scale("default", "web", 5, &err), BST_OK);
    r = pods("default", "app=web");
    ck_assert_uint_eq(r->n_pods, 5);
    for (size_t i = 0; i < r->n_pods; i++) {
        ck_assert_ptr_nonnull(r->pods[i]->owner);
        ck_assert_str_eq(r->pods[i]->owner->kind, "ReplicaSet");
        ck_assert_str_eq(r->pods[i]->owner->name, d->current_replica_set);
    }
    d = deployment("default", "web");
    ck_assert_int_eq(d->replicas, 5);
    ck_assert_int_eq(d->generation, d->observed_generation);
    /* New pods are creating for a moment, then running and ready. */
    ck_assert_int_eq(d->ready_replicas, 2);
    fake_now += SIM_CREATING_SECONDS;
    ck_assert_int_eq(deployment("default", "web")->ready_replicas, 5);
}
END_TEST

START_TEST(test_sim_scale_down_removes_pods_until_replicas_equal_pods)
{
    struct bst_err err;
    ck_assert_int_eq(scale("default", "web", 7, &err), BST_OK);
    ck_assert_int_eq(scale("default", "web", 1, &err), BST_OK);
    ck_assert_uint_eq(pods("default", "app=web")->n_pods, 1);
    ck_assert_int_eq(scale("default", "web", 0, &err), BST_OK);
    ck_assert_uint_eq(pods("default", "app=web")->n_pods, 0);
    ck_assert_int_eq(scale("default", "nope", 1, &err), BST_NOT_FOUND);
    ck_assert_str_eq(err.msg, "deployments.apps \"nope\" not found");
    ck_assert_int_eq(scale("nosuch", "web", 1, &err), BST_NOT_FOUND);
    ck_assert_str_eq(err.msg, "namespaces \"nosuch\" not found");
}
END_TEST

START_TEST(test_sim_deleting_an_owned_pod_gets_a_replacement_with_a_new_name)
{
    struct bst_err err;
    const char *victim = pod_named("default", "web-");
    char name[256];
    Bastion__V1__ListPodsResult *after;

    snprintf(name, sizeof(name), "%s", victim);
    ck_assert_int_eq(delete_pod("default", name, &err), BST_OK);
    after = pods("default", "app=web");
    ck_assert_uint_eq(after->n_pods, 2);
    ck_assert(!has_pod(after, name));
    ck_assert_int_eq(delete_pod("default", name, &err), BST_NOT_FOUND);
    {
        char want[300];
        snprintf(want, sizeof(want), "pods \"%s\" not found", name);
        ck_assert_str_eq(err.msg, want);
    }
    /* The replacement belongs to the same replica set. */
    for (size_t i = 0; i < after->n_pods; i++)
        ck_assert_str_eq(after->pods[i]->owner->name,
                         deployment("default", "web")->current_replica_set);
}
END_TEST

START_TEST(test_sim_deleting_a_bare_pod_is_final)
{
    struct bst_err err;
    ck_assert_int_eq(delete_pod("default", "solo", &err), BST_OK);
    ck_assert(!has_pod(pods("default", NULL), "solo"));
    ck_assert_uint_eq(pods("default", "app=solo")->n_pods, 0);
}
END_TEST

START_TEST(test_sim_restart_deployment_rolls_every_pod_and_sets_restarted_at)
{
    Bastion__V1__RestartDeploymentArgs a = BASTION__V1__RESTART_DEPLOYMENT_ARGS__INIT;
    Bastion__V1__RestartDeploymentResult *r = NULL;
    Bastion__V1__Deployment *before = deployment("default", "web");
    Bastion__V1__ListPodsResult *old = pods("default", "app=web"), *now;
    struct bst_err err;

    fake_now += 60;
    a.namespace_ = "default";
    a.name = "web";
    ck_assert_int_eq(kb->ops->restart_deployment(kb, &ctx, &a, &r, &err), BST_OK);
    ck_assert_str_eq(r->restarted_at, "2026-01-01T00:01:00Z");
    ck_assert_str_eq(r->deployment->restarted_at, "2026-01-01T00:01:00Z");
    ck_assert_str_ne(r->deployment->current_replica_set, before->current_replica_set);
    ck_assert_int_gt(r->deployment->generation, before->generation);
    now = pods("default", "app=web");
    ck_assert_uint_eq(now->n_pods, 2);
    for (size_t i = 0; i < old->n_pods; i++)
        ck_assert_msg(!has_pod(now, old->pods[i]->name), "%s survived", old->pods[i]->name);
    for (size_t i = 0; i < now->n_pods; i++)
        ck_assert_str_eq(now->pods[i]->owner->name, r->deployment->current_replica_set);
    ck_assert(has_event(events("default", "Deployment", "web"), "ScalingReplicaSet",
                        "Scaled down replica set"));
}
END_TEST

START_TEST(test_sim_restart_pod_replaces_owned_and_recreates_bare_pods)
{
    Bastion__V1__RestartPodArgs a = BASTION__V1__RESTART_POD_ARGS__INIT;
    Bastion__V1__RestartPodResult *r = NULL;
    Bastion__V1__ListPodsResult *before = pods("default", "app=solo");
    char old_uid[64];
    struct bst_err err;

    snprintf(old_uid, sizeof(old_uid), "%s", before->pods[0]->uid);
    a.namespace_ = "default";
    a.name = "solo";
    ck_assert_int_eq(kb->ops->restart_pod(kb, &ctx, &a, &r, &err), BST_OK);
    ck_assert_str_eq(r->deleted_pod, "solo");
    ck_assert_str_eq(r->pod->name, "solo");
    ck_assert_str_ne(r->pod->uid, old_uid);
    ck_assert_str_eq(r->pod->labels[0]->key, "app");
    a.name = (char *)pod_named("default", "web-");
    ck_assert_int_eq(kb->ops->restart_pod(kb, &ctx, &a, &r, &err), BST_OK);
    ck_assert_ptr_nonnull(r->pod);
    ck_assert_str_ne(r->pod->name, r->deleted_pod);
    ck_assert_str_eq(r->pod->status, "ContainerCreating");
    ck_assert_uint_eq(pods("default", "app=web")->n_pods, 2);
}
END_TEST

START_TEST(test_sim_resource_version_moves_on_every_write_and_never_on_reads)
{
    struct bst_err err;
    long rv0 = strtol(pods("default", NULL)->resource_version, NULL, 10);
    long rv1 = strtol(pods("default", NULL)->resource_version, NULL, 10);
    long rv2, rv3;
    Bastion__V1__Deployment *d;

    ck_assert_int_eq(rv0, rv1);
    ck_assert_int_eq(scale("default", "web", 3, &err), BST_OK);
    rv2 = strtol(pods("default", NULL)->resource_version, NULL, 10);
    ck_assert_int_gt(rv2, rv1);
    d = deployment("default", "web");
    ck_assert_int_le(strtol(d->resource_version, NULL, 10), rv2);
    /* The deployment itself changed: its own version moved past every earlier one. */
    ck_assert_int_gt(strtol(d->resource_version, NULL, 10), rv1);
    /* The same replicas again is no change: no new version (as a no-op update). */
    ck_assert_int_eq(scale("default", "web", 3, &err), BST_OK);
    ck_assert_int_eq(strtol(pods("default", NULL)->resource_version, NULL, 10), rv2);
    ck_assert_int_eq(delete_pod("default", "solo", &err), BST_OK);
    rv3 = strtol(pods("default", NULL)->resource_version, NULL, 10);
    ck_assert_int_gt(rv3, rv2);
}
END_TEST

START_TEST(test_sim_events_record_scaling_creation_deletion_and_aggregate_repeats)
{
    struct bst_err err;
    Bastion__V1__ListEventsResult *ev;
    const char *victim;
    char name[256];

    ck_assert_int_eq(scale("default", "web", 3, &err), BST_OK);
    ev = events("default", "Deployment", "web");
    ck_assert(has_event(ev, "ScalingReplicaSet", "to 3 from 2"));
    ev = events("default", "ReplicaSet", NULL);
    ck_assert(has_event(ev, "SuccessfulCreate", "Created pod: web-"));
    victim = pod_named("default", "web-");
    snprintf(name, sizeof(name), "%s", victim);
    ck_assert_int_eq(delete_pod("default", name, &err), BST_OK);
    ck_assert(has_event(events("default", "Pod", name), "Killing", "Stopping container nginx"));
    /* A pod deleted by a user is replaced, not "deleted by the controller". */
    ck_assert(!has_event(events("default", NULL, NULL), "SuccessfulDelete", NULL));
    /* Warnings of a crash-looping pod are one event with a count, not many events. */
    ev = events("other", "Pod", NULL);
    for (size_t i = 0; i < ev->n_events; i++)
        if (strcmp(ev->events[i]->reason, "BackOff") == 0)
            ck_assert_uint_gt(ev->events[i]->count, 1);
    ck_assert(has_event(ev, "BackOff", "Back-off restarting failed container app"));
    /* Oldest first. */
    ev = events("default", NULL, NULL);
    for (size_t i = 1; i < ev->n_events; i++)
        ck_assert_int_le(kube_parse_time(ev->events[i - 1]->last_timestamp),
                         kube_parse_time(ev->events[i]->last_timestamp));
}
END_TEST

START_TEST(test_sim_label_selectors_filter_lists_and_malformed_ones_are_refused)
{
    Bastion__V1__ListPodsArgs a = BASTION__V1__LIST_PODS_ARGS__INIT;
    Bastion__V1__ListPodsResult *r = NULL;
    struct bst_err err;

    ck_assert_uint_eq(pods("default", "app=web,tier!=db")->n_pods, 2);
    ck_assert_uint_eq(pods("default", "app in (web,solo)")->n_pods, 3);
    ck_assert_uint_eq(pods("default", "!tier")->n_pods, 1);
    ck_assert_uint_eq(pods("default", "tier notin (frontend)")->n_pods, 2);
    a.namespace_ = "default";
    a.label_selector = "app=web,";
    ck_assert_int_eq(kb->ops->list_pods(kb, &ctx, &a, &r, &err), BST_INVALID_ARGUMENT);
    ck_assert_ptr_nonnull(strstr(err.msg, "label selector"));
}
END_TEST

START_TEST(test_sim_an_empty_namespace_never_means_all)
{
    Bastion__V1__ListPodsArgs a = BASTION__V1__LIST_PODS_ARGS__INIT;
    Bastion__V1__ListPodsResult *r = NULL;
    struct bst_err err;

    a.namespace_ = "";
    ck_assert_int_eq(kb->ops->list_pods(kb, &ctx, &a, &r, &err), BST_INVALID_ARGUMENT);
    a.namespace_ = NULL;
    ck_assert_int_eq(kb->ops->list_pods(kb, &ctx, &a, &r, &err), BST_INVALID_ARGUMENT);
    a.has_all_namespaces = 1;
    a.all_namespaces = 1;
    ck_assert_int_eq(kb->ops->list_pods(kb, &ctx, &a, &r, &err), BST_OK);
    ck_assert_uint_eq(r->n_pods, 5); /* solo, web x2, multi, crash */
    a.namespace_ = "default";
    ck_assert_int_eq(kb->ops->list_pods(kb, &ctx, &a, &r, &err), BST_INVALID_ARGUMENT);
}
END_TEST

/* ---- logs ---------------------------------------------------------------------------------- */

START_TEST(test_sim_logs_tail_lines_returns_the_last_lines_deterministically)
{
    struct bst_err err;
    const char *p = pod_named("default", "web-");
    Bastion__V1__GetPodLogsResult *all = logs("default", p, NULL, -1, 0, 0, 0, 0, BST_OK, &err);
    Bastion__V1__GetPodLogsResult *tail = logs("default", p, NULL, 5, 0, 0, 0, 0, BST_OK, &err);
    Bastion__V1__GetPodLogsResult *again = logs("default", p, NULL, 5, 0, 0, 0, 0, BST_OK, &err);

    ck_assert_uint_eq(tail->lines, 5);
    ck_assert_uint_eq(lines_in(tail->logs), 5);
    ck_assert_str_eq(tail->logs, again->logs);
    /* The tail is the end of the whole log. */
    ck_assert_uint_eq(all->lines, SIM_LOG_RETAINED_LINES);
    ck_assert_str_eq(all->logs + strlen(all->logs) - strlen(tail->logs), tail->logs);
    ck_assert_str_eq(tail->container, "nginx");
    ck_assert_uint_eq(logs("default", p, NULL, 0, 0, 0, 0, 0, BST_OK, &err)->lines, 0);
}
END_TEST

START_TEST(test_sim_logs_since_seconds_and_timestamps)
{
    struct bst_err err;
    const char *p = pod_named("default", "web-");
    Bastion__V1__GetPodLogsResult *r = logs("default", p, NULL, -1, 60, 0, 1, 0, BST_OK, &err);
    const char *line = r->logs;

    ck_assert_uint_gt(r->lines, 3); /* nginx writes every few seconds */
    ck_assert_uint_lt(r->lines, 40);
    while (*line) {
        int64_t t;
        char stamp[21];
        memcpy(stamp, line, 19);
        stamp[19] = 'Z';
        stamp[20] = '\0';
        t = kube_parse_time(stamp);
        ck_assert_int_ge(t, fake_now - 60);
        ck_assert_int_le(t, fake_now);
        ck_assert_int_eq(line[29], 'Z'); /* nanoseconds, as the kubelet writes them */
        line = strchr(line, '\n') + 1;
    }
}
END_TEST

START_TEST(test_sim_logs_need_a_container_name_when_the_pod_has_several)
{
    struct bst_err err;
    const char *p = pod_named("default", "multi-");
    Bastion__V1__GetPodLogsResult *r;

    logs("default", p, NULL, 5, 0, 0, 0, 0, BST_INVALID_ARGUMENT, &err);
    ck_assert_ptr_nonnull(strstr(err.msg, "choose one of: [app sidecar]"));
    logs("default", p, "nope", 5, 0, 0, 0, 0, BST_INVALID_ARGUMENT, &err);
    ck_assert_ptr_nonnull(strstr(err.msg, "container nope is not valid"));
    r = logs("default", p, "sidecar", 5, 0, 0, 0, 0, BST_OK, &err);
    ck_assert_str_eq(r->container, "sidecar");
    ck_assert_uint_eq(r->lines, 5);
    r = logs("default", p, "app", 3, 0, 0, 0, 0, BST_OK, &err);
    ck_assert_ptr_nonnull(strstr(r->logs, "\"level\":")); /* the api profile logs JSON */
}
END_TEST

START_TEST(test_sim_logs_previous_only_after_a_restart)
{
    struct bst_err err;
    Bastion__V1__ListPodsResult *r = pods("default", "app=web");
    const char *restarted = NULL, *fresh = NULL;
    Bastion__V1__GetPodLogsResult *prev, *cur;

    for (size_t i = 0; i < r->n_pods; i++) {
        if (r->pods[i]->restarts == 3)
            restarted = r->pods[i]->name;
        else
            fresh = r->pods[i]->name;
    }
    ck_assert_ptr_nonnull(restarted);
    ck_assert_ptr_nonnull(fresh);
    logs("default", fresh, NULL, 5, 0, 1, 0, 0, BST_FAILED_PRECONDITION, &err);
    ck_assert_ptr_nonnull(strstr(err.msg, "previous terminated container \"nginx\""));
    prev = logs("default", restarted, NULL, 3, 0, 1, 0, 0, BST_OK, &err);
    cur = logs("default", restarted, NULL, 3, 0, 0, 0, 0, BST_OK, &err);
    ck_assert(prev->previous);
    ck_assert_str_ne(prev->logs, cur->logs);
    /* The previous instance ended with an error: its last lines say why. */
    ck_assert_ptr_nonnull(strstr(prev->logs, "[emerg]"));
    /* A crash-looping container shows its last failed run. */
    cur = logs("other", pod_named("other", "crash-"), NULL, 2, 0, 0, 0, 0, BST_OK, &err);
    ck_assert_ptr_nonnull(strstr(cur->logs, "fatal"));
}
END_TEST

START_TEST(test_sim_logs_limit_bytes_truncates_and_creating_pods_have_none)
{
    struct bst_err err;
    const char *p = pod_named("default", "web-");
    Bastion__V1__GetPodLogsResult *r = logs("default", p, NULL, -1, 0, 0, 0, 100, BST_OK, &err);
    Bastion__V1__ScaleDeploymentArgs a = BASTION__V1__SCALE_DEPLOYMENT_ARGS__INIT;

    ck_assert_uint_eq(strlen(r->logs), 100);
    ck_assert(r->truncated);
    (void)a;
    ck_assert_int_eq(scale("default", "web", 3, &err), BST_OK);
    {
        Bastion__V1__ListPodsResult *l = pods("default", "app=web");
        const char *creating = NULL;
        for (size_t i = 0; i < l->n_pods; i++)
            if (strcmp(l->pods[i]->status, "ContainerCreating") == 0)
                creating = l->pods[i]->name;
        ck_assert_ptr_nonnull(creating);
        logs("default", creating, NULL, 5, 0, 0, 0, 0, BST_FAILED_PRECONDITION, &err);
        ck_assert_ptr_nonnull(strstr(err.msg, "is waiting to start: ContainerCreating"));
    }
}
END_TEST

START_TEST(test_sim_crashloop_restarts_follow_the_back_off)
{
    int64_t cur, prev;
    ck_assert_uint_eq(sim_crashloop_restarts(0, &cur, &prev), 0);
    ck_assert_uint_eq(sim_crashloop_restarts(12, &cur, &prev), 0);
    ck_assert_uint_eq(sim_crashloop_restarts(13, &cur, &prev), 1); /* 3 s run + 10 s back-off */
    ck_assert_int_eq(cur, 13);
    ck_assert_uint_eq(sim_crashloop_restarts(36, &cur, &prev), 2); /* + 3 + 20 */
    ck_assert_int_eq(prev, 13);
    /* Capped at 5 minutes: about one restart per 303 s after the ramp. */
    ck_assert_uint_eq(sim_crashloop_restarts(3600, &cur, &prev), 15);
    ck_assert_uint_eq(sim_crashloop_restarts(30 * 86400, &cur, &prev),
                      sim_crashloop_restarts(30 * 86400 - 303, &cur, &prev) + 1);
}
END_TEST

/* ---- secrets, resources, quotas ------------------------------------------------------------ */

START_TEST(test_sim_secret_values_are_write_only)
{
    Bastion__V1__CreateSecretArgs a = BASTION__V1__CREATE_SECRET_ARGS__INIT;
    Bastion__V1__SecretEntry e = BASTION__V1__SECRET_ENTRY__INIT, *data[] = {&e};
    Bastion__V1__CreateSecretResult *r = NULL;
    Bastion__V1__ListSecretsArgs la = BASTION__V1__LIST_SECRETS_ARGS__INIT;
    Bastion__V1__ListSecretsResult *l = NULL;
    struct bst_err err;
    json_t *obj = NULL;
    char *text;

    a.namespace_ = "default";
    a.name = "api-key";
    e.key = "token";
    e.value = "CANARY-value-4711";
    a.data = data;
    a.n_data = 1;
    ck_assert_int_eq(kb->ops->create_secret(kb, &ctx, &a, &r, &err), BST_OK);
    ck_assert_str_eq(r->secret->keys[0], "token");
    ck_assert_int_eq(kb->ops->create_secret(kb, &ctx, &a, &r, &err), BST_ALREADY_EXISTS);
    ck_assert_str_eq(err.msg, "secrets \"api-key\" already exists");
    la.namespace_ = "default";
    ck_assert_int_eq(kb->ops->list_secrets(kb, &ctx, &la, &l, &err), BST_OK);
    ck_assert_uint_eq(l->n_secrets, 2);
    ck_assert_int_eq(
        kb->ops->get_object(kb, &ctx, KUBE_KIND_SECRET, "default", "api-key", &obj, &err), BST_OK);
    text = json_dumps(obj, 0);
    ck_assert_ptr_null(strstr(text, "CANARY"));
    ck_assert_ptr_null(json_object_get(obj, "data"));
    free(text);
    json_decref(obj);
    ck_assert_int_eq(
        kb->ops->get_object(kb, &ctx, KUBE_KIND_SECRET, "default", "creds", &obj, &err), BST_OK);
    text = json_dumps(obj, 0);
    ck_assert_ptr_null(strstr(text, "seed-canary-value"));
    free(text);
    json_decref(obj);
    /* A tls secret must have its keys; the error names the key, never a value. */
    a.name = "tls";
    a.type = "kubernetes.io/tls";
    ck_assert_int_eq(kb->ops->create_secret(kb, &ctx, &a, &r, &err), BST_INVALID_ARGUMENT);
    ck_assert_ptr_nonnull(strstr(err.msg, "data[tls.crt]: Required value"));
    ck_assert_ptr_null(strstr(err.msg, "CANARY"));
}
END_TEST

START_TEST(test_sim_create_resource_deployment_runs_its_controller)
{
    json_t *obj = json_pack("{s:s, s:s, s:{s:s}, s:{s:i, s:{s:{s:s}}, s:{s:{s:{s:s}}, s:{s:[{s:s, "
                            "s:s}]}}}}",
                            "apiVersion", "apps/v1", "kind", "Deployment", "metadata", "name",
                            "shop", "spec", "replicas", 3, "selector", "matchLabels", "app", "shop",
                            "template", "metadata", "labels", "app", "shop", "spec", "containers",
                            "name", "shop", "image", "nginx:1.27");
    Bastion__V1__CreateResourceResult *r = NULL;
    struct bst_err err;

    ck_assert_ptr_nonnull(obj);
    ck_assert_int_eq(
        kb->ops->create_resource(kb, &ctx, "default", KUBE_KIND_DEPLOYMENT, obj, 1, &r, &err),
        BST_OK);
    ck_assert(!r->created);
    ck_assert_uint_eq(pods("default", "app=shop")->n_pods, 0);
    ck_assert_int_eq(
        kb->ops->create_resource(kb, &ctx, "default", KUBE_KIND_DEPLOYMENT, obj, 0, &r, &err),
        BST_OK);
    ck_assert(r->created);
    ck_assert_uint_eq(pods("default", "app=shop")->n_pods, 3);
    ck_assert_int_eq(
        kb->ops->create_resource(kb, &ctx, "default", KUBE_KIND_DEPLOYMENT, obj, 0, &r, &err),
        BST_ALREADY_EXISTS);
    ck_assert_int_eq(
        kb->ops->create_resource(kb, &ctx, "nosuch", KUBE_KIND_DEPLOYMENT, obj, 0, &r, &err),
        BST_NOT_FOUND);
    json_decref(obj);
}
END_TEST

START_TEST(test_sim_resources_are_listed_in_uri_order_and_paginate)
{
    struct kube_object_ref *page = NULL;
    size_t n = 0, total = 0;
    int more = 1;
    char after[600] = "", prev[600] = "";
    struct bst_err err;

    while (more) {
        ck_assert_int_eq(kb->ops->list_objects(kb, &ctx, after, 4, &page, &n, &more, &err), BST_OK);
        for (size_t i = 0; i < n; i++) {
            char uri[600];
            snprintf(uri, sizeof(uri), "k8s://%s/%s/%s", page[i].namespace_,
                     kube_kind_name(page[i].kind), page[i].name);
            ck_assert_int_lt(strcmp(prev, uri), 0);
            snprintf(prev, sizeof(prev), "%s", uri);
        }
        total += n;
        snprintf(after, sizeof(after), "%s", prev);
        ck_assert_int_le(total, 100);
    }
    /* pods 5, deployments 3, replica sets 3, config maps 2 (kube-root-ca.crt), secrets 1 */
    ck_assert_uint_eq(total, 14);
}
END_TEST

START_TEST(test_sim_quota_leaves_replica_sets_short_with_a_failed_create_event)
{
    struct kube_backend *saved = kb;
    struct bst_err err;
    kb = new_sim(small_seed, 100);
    ck_assert_int_eq(scale("default", "web", 100, &err), BST_OK);
    ck_assert_uint_lt(pods("default", "app=web")->n_pods, 100);
    ck_assert(has_event(events("default", "ReplicaSet", NULL), "FailedCreate", "exceeded quota"));
    kube_backend_free(kb);
    kb = saved;
}
END_TEST

START_TEST(test_sim_seed_errors_name_file_line_and_column)
{
    static const struct {
        const char *yaml, *want;
    } bad[] = {
        {"cluster: {nodes: [{name: a}]}\nnamespaces: [{name: default, deploymnets: []}]\n",
         ":2:30: unknown key 'deploymnets'"},
        {"cluster: {nodes: [{name: a}]}\nnamespaces: [{name: default}, {name: default}]\n",
         "listed twice"},
        {"cluster: {nodes: [{name: a}]}\nnamespaces: [{name: Default}]\n", "not a valid name"},
        {"cluster: {nodes: [{name: a}]}\nnamespaces: [{name: x}]\n", "namespace 'default'"},
        {"cluster: {nodes: [{name: a}]}\nnamespaces: [{name: default, age: 3y}]\n", "age"},
        {"cluster: {nodes: []}\nnamespaces: [{name: default}]\n", "1 to 64 nodes"},
        {"cluster: {nodes: [{name: a}]}\nnamespaces:\n  - name: default\n    deployments:\n"
         "      - {name: w, state: sleepy, containers: [{name: c, image: i}]}\n",
         "state must be"},
        {"cluster: {nodes: [{name: a}]}\nnamespaces: &x [{name: default}]\n", "anchor"},
    };
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        char path[] = "/tmp/check_sim_bad_XXXXXX";
        int fd = mkstemp(path);
        struct kube_sim_options o = {path, 0, 0};
        struct kube_backend *b = NULL;
        struct bst_err err = {BST_OK, ""};
        ck_assert_int_eq(write(fd, bad[i].yaml, strlen(bad[i].yaml)), (ssize_t)strlen(bad[i].yaml));
        close(fd);
        ck_assert_msg(kube_sim_new(&b, &o, &err) == BST_INVALID_ARGUMENT, "%zu accepted", i);
        ck_assert_ptr_null(b);
        ck_assert_msg(strstr(err.msg, bad[i].want) != NULL, "%zu: '%s' not in '%s'", i, bad[i].want,
                      err.msg);
        unlink(path);
    }
}
END_TEST

/* ---- concurrency --------------------------------------------------------------------------- */

struct worker {
    unsigned seed;
    int ops;
};

static void *hammer(void *arg)
{
    struct worker *w = arg;
    for (int i = 0; i < w->ops; i++) {
        struct bst_err err;
        unsigned r = (unsigned)rand_r(&w->seed);
        if (r % 3 == 0) {
            scale("default", "web", (int32_t)(r / 3 % 12), &err);
        } else if (r % 3 == 1) {
            Bastion__V1__ListPodsArgs a = BASTION__V1__LIST_PODS_ARGS__INIT;
            Bastion__V1__ListPodsResult *l = NULL;
            a.namespace_ = "default";
            a.label_selector = "app=web";
            if (kb->ops->list_pods(kb, &ctx, &a, &l, &err) == BST_OK && l->n_pods > 0)
                delete_pod("default", l->pods[r / 3 % l->n_pods]->name, &err);
        } else {
            Bastion__V1__RestartDeploymentArgs a = BASTION__V1__RESTART_DEPLOYMENT_ARGS__INIT;
            Bastion__V1__RestartDeploymentResult *rr = NULL;
            a.namespace_ = "default";
            a.name = "web";
            kb->ops->restart_deployment(kb, &ctx, &a, &rr, &err);
        }
    }
    return NULL;
}

START_TEST(test_sim_concurrent_scale_delete_restart_keep_replicas_equal_to_pods)
{
    pthread_t t[8];
    struct worker w[8];
    Bastion__V1__Deployment *d;

    for (int i = 0; i < 8; i++) {
        w[i].seed = (unsigned)i * 7919u + 1;
        w[i].ops = 150;
        ck_assert_int_eq(pthread_create(&t[i], NULL, hammer, &w[i]), 0);
    }
    for (int i = 0; i < 8; i++)
        pthread_join(t[i], NULL);
    d = deployment("default", "web");
    ck_assert_uint_eq(pods("default", "app=web")->n_pods, (size_t)d->replicas);
    ck_assert_uint_eq(count_with_prefix(pods("default", "app=web"), d->current_replica_set),
                      (size_t)d->replicas);
    ck_assert_int_eq(d->generation, d->observed_generation);
}
END_TEST

int main(void)
{
    Suite *s = suite_create("sim");
    TCase *tc = tcase_create("sim");
    SRunner *sr;
    int failed;

    bst_clock_set_wall(fake_wall);
    tcase_add_checked_fixture(tc, setup, teardown);
    tcase_set_timeout(tc, 120);
    tcase_add_test(tc, test_sim_builtin_seed_has_the_namespaces_of_the_issue_with_workloads);
    tcase_add_test(tc, test_sim_scale_up_creates_pods_owned_by_the_current_replica_set);
    tcase_add_test(tc, test_sim_scale_down_removes_pods_until_replicas_equal_pods);
    tcase_add_test(tc, test_sim_deleting_an_owned_pod_gets_a_replacement_with_a_new_name);
    tcase_add_test(tc, test_sim_deleting_a_bare_pod_is_final);
    tcase_add_test(tc, test_sim_restart_deployment_rolls_every_pod_and_sets_restarted_at);
    tcase_add_test(tc, test_sim_restart_pod_replaces_owned_and_recreates_bare_pods);
    tcase_add_test(tc, test_sim_resource_version_moves_on_every_write_and_never_on_reads);
    tcase_add_test(tc, test_sim_events_record_scaling_creation_deletion_and_aggregate_repeats);
    tcase_add_test(tc, test_sim_label_selectors_filter_lists_and_malformed_ones_are_refused);
    tcase_add_test(tc, test_sim_an_empty_namespace_never_means_all);
    tcase_add_test(tc, test_sim_logs_tail_lines_returns_the_last_lines_deterministically);
    tcase_add_test(tc, test_sim_logs_since_seconds_and_timestamps);
    tcase_add_test(tc, test_sim_logs_need_a_container_name_when_the_pod_has_several);
    tcase_add_test(tc, test_sim_logs_previous_only_after_a_restart);
    tcase_add_test(tc, test_sim_logs_limit_bytes_truncates_and_creating_pods_have_none);
    tcase_add_test(tc, test_sim_crashloop_restarts_follow_the_back_off);
    tcase_add_test(tc, test_sim_secret_values_are_write_only);
    tcase_add_test(tc, test_sim_create_resource_deployment_runs_its_controller);
    tcase_add_test(tc, test_sim_resources_are_listed_in_uri_order_and_paginate);
    tcase_add_test(tc, test_sim_quota_leaves_replica_sets_short_with_a_failed_create_event);
    tcase_add_test(tc, test_sim_seed_errors_name_file_line_and_column);
    tcase_add_test(tc, test_sim_concurrent_scale_delete_restart_keep_replicas_equal_to_pods);
    suite_add_tcase(s, tc);
    sr = srunner_create(s);
    srunner_run_all(sr, CK_NORMAL);
    failed = srunner_ntests_failed(sr);
    srunner_free(sr);
    return failed == 0 ? 0 : 1;
}
