/* audit_bench: throughput of the audit writer on a real file system.
 *
 * Rows, each the median (with min and max) of several runs in a fresh directory:
 *   batch        records per second: one thread submits as fast as it can (answered when
 *                queued) until everything is written; fsync every second (the default)
 *   best-effort  the same in best-effort mode, the peer: what is dropped is reported
 *   blocking     calls per second with C calls in flight, each waiting until its record is
 *                durable (group commit: one fdatasync for every record that arrived meanwhile);
 *                with C = 1 it is one fdatasync per call, the reference group commit beats
 *
 *   audit_bench [runs] [records] [dir]       (defaults 5, 100000, $TMPDIR or /tmp)
 *
 * Figures depend on the disk's fdatasync latency above all; quote them with the command and
 * the file system. */
#include "audit.h"
#include "clock.h"

#include <errno.h>
#include <ftw.h>
#include <inttypes.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/statfs.h>
#include <unistd.h>

static const char *base_dir = "/tmp";

static int rm_one(const char *p, const struct stat *st, int flag, struct FTW *ftw)
{
    (void)st;
    (void)flag;
    (void)ftw;
    return remove(p);
}

/* A representative request record: principal with groups, tool, namespace, arguments. */
struct rec {
    Bastion__V1__AuditRecord r;
    Bastion__V1__AuditPrincipal p;
    Bastion__V1__AuditArgument a[2];
    Bastion__V1__AuditArgument *args[2];
    char *groups[2];
};

static void make_record(struct rec *x)
{
    bastion__v1__audit_record__init(&x->r);
    bastion__v1__audit_principal__init(&x->p);
    bastion__v1__audit_argument__init(&x->a[0]);
    bastion__v1__audit_argument__init(&x->a[1]);
    x->p.name = "spiffe://example.org/agent/ops-assistant";
    x->p.has_mechanism = 1;
    x->p.mechanism = BASTION__V1__AUTH_MECHANISM__AUTH_MECHANISM_MTLS;
    x->groups[0] = "system:authenticated";
    x->groups[1] = "ops";
    x->p.groups = x->groups;
    x->p.n_groups = 2;
    x->p.certificate_fingerprint_sha256 =
        "9f86d081884c7d659a2feaa0c55ad015a3bf4f1b2b0b822cd15d6c15b0f00a08";
    x->r.principal = &x->p;
    x->r.has_event_type = 1;
    x->r.event_type = BASTION__V1__AUDIT_EVENT_TYPE__AUDIT_EVENT_REQUEST;
    x->r.peer_address = "10.1.2.3:51234";
    x->r.grpc_method = "/bastion.v1.Mcp/CallTool";
    x->r.tool = "scale_deployment";
    x->r.permission = "k8s:deployments:scale";
    x->r.namespace_ = "payments";
    x->r.object_name = "api";
    x->r.has_decision = 1;
    x->r.decision = BASTION__V1__AUDIT_DECISION__AUDIT_DECISION_ALLOW;
    x->r.decision_rule = "role:operator via binding:ops";
    x->r.result = "ok";
    x->r.has_grpc_status = 1;
    x->r.has_duration_us = 1;
    x->r.duration_us = 1834;
    x->r.request_id = "6f1c2a9e0b7d4e5f8a3b1c2d3e4f5a6b";
    x->a[0].name = "name";
    x->a[0].value = "api";
    x->a[1].name = "replicas";
    x->a[1].value = "3";
    x->args[0] = &x->a[0];
    x->args[1] = &x->a[1];
    x->r.arguments = x->args;
    x->r.n_arguments = 2;
}

static struct audit *open_in(char *dir, size_t dir_size, int mode, int64_t waiting)
{
    struct audit_config cfg;
    struct audit *a = NULL;
    struct bst_err err;

    snprintf(dir, dir_size, "%s/audit_bench.XXXXXX", base_dir);
    if (mkdtemp(dir) == NULL || audit_config_defaults(&cfg, &err) != BST_OK) {
        perror("audit_bench: mkdtemp");
        exit(1);
    }
    free(cfg.directory);
    cfg.directory = strdup(dir);
    cfg.mode = mode;
    cfg.queue.waiting = waiting;
    if (audit_new(&a, &cfg, &err) != BST_OK) {
        fprintf(stderr, "audit_bench: %s\n", err.msg);
        exit(1);
    }
    audit_config_dispose(&cfg);
    return a;
}

static void close_and_remove(struct audit *a, const char *dir)
{
    audit_free(a);
    nftw(dir, rm_one, 16, FTW_DEPTH | FTW_PHYS);
}

/* ---- batch and best-effort: one fast submitter -------------------------------------------- */

static void ignore_done(void *arg, enum bst_status st)
{
    (void)arg;
    (void)st;
}

/* Returns records per second from the first submit until everything is written. */
static double run_async(int mode, long n, uint64_t *dropped)
{
    char dir[512];
    struct audit *a = open_in(dir, sizeof(dir), mode, n + 1);
    struct audit_stats st;
    struct rec x;
    int64_t t0, t1;

    make_record(&x);
    t0 = bst_mono_ns();
    for (long i = 0; i < n; i++)
        audit_submit(a, &x.r, ignore_done, NULL);
    if (audit_flush(a, 600000) != BST_OK) {
        fprintf(stderr, "audit_bench: flush timed out\n");
        exit(1);
    }
    t1 = bst_mono_ns();
    audit_stats(a, &st);
    *dropped = st.records_dropped;
    close_and_remove(a, dir);
    return (double)n / ((double)(t1 - t0) / 1e9);
}

/* ---- blocking: C callers in flight --------------------------------------------------------- */

struct caller {
    struct audit *a;
    atomic_long *left;
    pthread_mutex_t mu;
    pthread_cond_t cv;
    int done;
    enum bst_status st;
    int64_t *lat; /* latencies (ns) this caller measured */
    size_t n_lat, cap_lat;
    int failures;
};

static void caller_done(void *arg, enum bst_status st)
{
    struct caller *c = arg;
    pthread_mutex_lock(&c->mu);
    c->done = 1;
    c->st = st;
    pthread_cond_signal(&c->cv);
    pthread_mutex_unlock(&c->mu);
}

static void *caller_main(void *arg)
{
    struct caller *c = arg;
    struct rec x;

    make_record(&x);
    while (atomic_fetch_sub(c->left, 1) > 0) {
        int64_t t0 = bst_mono_ns();
        c->done = 0;
        audit_submit(c->a, &x.r, caller_done, c);
        pthread_mutex_lock(&c->mu);
        while (!c->done)
            pthread_cond_wait(&c->cv, &c->mu);
        pthread_mutex_unlock(&c->mu);
        if (c->st != BST_OK)
            c->failures++;
        if (c->n_lat < c->cap_lat)
            c->lat[c->n_lat++] = bst_mono_ns() - t0;
    }
    return NULL;
}

static int cmp_i64(const void *a, const void *b)
{
    int64_t x = *(const int64_t *)a, y = *(const int64_t *)b;
    return x < y ? -1 : x > y;
}

/* Returns calls per second; *p50 and *p99 get the latency percentiles in microseconds. */
static double run_blocking(int callers, long n, double *p50, double *p99)
{
    char dir[512];
    struct audit *a = open_in(dir, sizeof(dir), AUDIT_MODE_BLOCKING, 100000);
    struct caller *c = calloc((size_t)callers, sizeof(*c));
    pthread_t *th = calloc((size_t)callers, sizeof(*th));
    atomic_long left = n;
    int64_t t0, t1, *all;
    size_t total = 0;
    int failures = 0;

    for (int i = 0; i < callers; i++) {
        c[i].a = a;
        c[i].left = &left;
        pthread_mutex_init(&c[i].mu, NULL);
        pthread_cond_init(&c[i].cv, NULL);
        c[i].cap_lat = (size_t)n;
        c[i].lat = malloc((size_t)n * sizeof(int64_t));
    }
    t0 = bst_mono_ns();
    for (int i = 0; i < callers; i++)
        pthread_create(&th[i], NULL, caller_main, &c[i]);
    for (int i = 0; i < callers; i++)
        pthread_join(th[i], NULL);
    t1 = bst_mono_ns();
    all = malloc((size_t)n * sizeof(int64_t));
    for (int i = 0; i < callers; i++) {
        memcpy(all + total, c[i].lat, c[i].n_lat * sizeof(int64_t));
        total += c[i].n_lat;
        failures += c[i].failures;
        free(c[i].lat);
    }
    if (failures > 0)
        fprintf(stderr, "audit_bench: %d blocking calls failed\n", failures);
    qsort(all, total, sizeof(*all), cmp_i64);
    *p50 = total ? (double)all[total / 2] / 1e3 : 0;
    *p99 = total ? (double)all[total * 99 / 100] / 1e3 : 0;
    free(all);
    free(c);
    free(th);
    close_and_remove(a, dir);
    return (double)n / ((double)(t1 - t0) / 1e9);
}

static int cmp_d(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;
    return x < y ? -1 : x > y;
}

static void row(const char *name, double *v, int runs, const char *unit, const char *extra)
{
    qsort(v, (size_t)runs, sizeof(*v), cmp_d);
    printf("%-30s %12.0f %12.0f %12.0f  %s%s\n", name, v[runs / 2], v[0], v[runs - 1], unit, extra);
}

int main(int argc, char **argv)
{
    int runs = argc > 1 ? (int)strtol(argv[1], NULL, 10) : 5;
    long n = argc > 2 ? strtol(argv[2], NULL, 10) : 100000;
    double batch[32], be[32], blk64[32], blk8[32], blk1[32];
    double p50[32], p99[32], tmp;
    uint64_t dropped[32];
    char extra[128];
    struct rec x;
    struct statfs sf;

    if (argc > 3)
        base_dir = argv[3];
    else if (getenv("TMPDIR") != NULL)
        base_dir = getenv("TMPDIR");
    if (runs < 1 || runs > 32 || n < 100) {
        fprintf(stderr, "usage: audit_bench [runs 1-32] [records >= 100] [dir]\n");
        return 2;
    }
    make_record(&x);
    printf("audit_bench: %d runs, %ld records per run, directory %s (statfs type 0x%lx), "
           "record %zu bytes serialized\n",
           runs, n, base_dir, statfs(base_dir, &sf) == 0 ? (unsigned long)sf.f_type : 0UL,
           bastion__v1__audit_record__get_packed_size(&x.r));
    printf("%-30s %12s %12s %12s\n", "mode", "median", "min", "max");
    /* The modes run interleaved, so drift of the machine affects each the same. */
    for (int i = 0; i < runs; i++) {
        batch[i] = run_async(AUDIT_MODE_BATCH, n, &dropped[i]);
        be[i] = run_async(AUDIT_MODE_BEST_EFFORT, n, &dropped[i]);
        blk64[i] = run_blocking(64, n / 5, &p50[i], &p99[i]);
        blk8[i] = run_blocking(8, n / 20, &tmp, &tmp);
        blk1[i] = run_blocking(1, n / 50 > 2000 ? 2000 : n / 50, &tmp, &tmp);
    }
    row("batch (fsync every 1s)", batch, runs, "records/s", "");
    qsort(dropped, (size_t)runs, sizeof(*dropped), cmp_i64);
    snprintf(extra, sizeof(extra), "  (dropped, median: %" PRIu64 ")", dropped[runs / 2]);
    row("best-effort (fsync every 1s)", be, runs, "records/s", extra);
    qsort(p50, (size_t)runs, sizeof(*p50), cmp_d);
    qsort(p99, (size_t)runs, sizeof(*p99), cmp_d);
    snprintf(extra, sizeof(extra), "  (latency p50 %.0f us, p99 %.0f us)", p50[runs / 2],
             p99[runs / 2]);
    row("blocking, 64 calls in flight", blk64, runs, "calls/s", extra);
    row("blocking, 8 calls in flight", blk8, runs, "calls/s", "");
    row("blocking, 1 call in flight", blk1, runs, "calls/s", "  (one fdatasync per call)");
    return 0;
}
