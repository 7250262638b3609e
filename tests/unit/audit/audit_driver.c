/* A tiny driver of the audit library for tests/integration/test_audit_tool.py and for trying
 * the library by hand. It reads the `audit:` section of a YAML file and runs commands in order:
 *
 *   write N        submit N varied records (types, users, results, namespaces), wait for each
 *   hostile        submit records whose strings hold control characters, ANSI escapes,
 *                  newlines, bidi overrides and invalid UTF-8
 *   big            submit one record larger than max_record_bytes
 *   admin ACTION DETAIL
 *   rotate KEY [ID]  switch the checkpoint signing key
 *   loop           submit forever, printing "ack SEQ-INDEX" after each acknowledged record
 *                  (for kill -9 tests)
 *   stats          print the counters as one JSON line
 *
 * Exit status 0, or 1 with a message on stderr. */
#include "audit.h"

#include <inttypes.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

struct wait {
    pthread_mutex_t mu;
    pthread_cond_t cv;
    int done;
    enum bst_status st;
};

static void on_done(void *arg, enum bst_status st)
{
    struct wait *w = arg;
    pthread_mutex_lock(&w->mu);
    w->done = 1;
    w->st = st;
    pthread_cond_signal(&w->cv);
    pthread_mutex_unlock(&w->mu);
}

/* Submits rec and waits for its callback; returns its status. */
static enum bst_status submit_wait(struct audit *a, Bastion__V1__AuditRecord *rec)
{
    struct wait w = {PTHREAD_MUTEX_INITIALIZER, PTHREAD_COND_INITIALIZER, 0, BST_OK};
    audit_submit(a, rec, on_done, &w);
    pthread_mutex_lock(&w.mu);
    while (!w.done)
        pthread_cond_wait(&w.cv, &w.mu);
    pthread_mutex_unlock(&w.mu);
    return w.st;
}

static const char *const users[] = {"alice", "bob", "carol"};
static const char *const namespaces[] = {"default", "prod", "kube-system"};
static const char *const tools[] = {"list_pods", "delete_pod", "scale_deployment"};

/* Record i of a deterministic mix: mostly requests, some authentication failures and
 * authorization denials. */
static void make_record(Bastion__V1__AuditRecord *r, Bastion__V1__AuditPrincipal *p,
                        Bastion__V1__AuditArgument *arg, Bastion__V1__AuditArgument **args,
                        char **groups, char *reqid, size_t reqid_size, size_t i)
{
    bastion__v1__audit_record__init(r);
    bastion__v1__audit_principal__init(p);
    bastion__v1__audit_argument__init(arg);
    p->name = (char *)users[i % 3];
    p->has_mechanism = 1;
    p->mechanism = BASTION__V1__AUTH_MECHANISM__AUTH_MECHANISM_MTLS;
    groups[0] = "system:authenticated";
    p->groups = groups;
    p->n_groups = 1;
    p->credential_id = "k-1a2b3c";
    r->principal = p;
    r->has_event_type = 1;
    snprintf(reqid, reqid_size, "%032zx", i + 1);
    r->request_id = reqid;
    r->peer_address = "127.0.0.1:40000";
    r->grpc_method = "/bastion.v1.Mcp/CallTool";
    r->tool = (char *)tools[i % 3];
    r->namespace_ = (char *)namespaces[(i / 3) % 3];
    r->has_duration_us = 1;
    r->duration_us = 100 + i;
    arg->name = "namespace";
    arg->value = r->namespace_;
    args[0] = arg;
    r->arguments = args;
    r->n_arguments = 1;
    switch (i % 10) {
    case 7:
        r->event_type = BASTION__V1__AUDIT_EVENT_TYPE__AUDIT_EVENT_AUTHENTICATION;
        r->result = "unauthenticated";
        r->has_grpc_status = 1;
        r->grpc_status = 16;
        break;
    case 8:
        r->event_type = BASTION__V1__AUDIT_EVENT_TYPE__AUDIT_EVENT_AUTHORIZATION;
        r->has_decision = 1;
        r->decision = BASTION__V1__AUDIT_DECISION__AUDIT_DECISION_DENY;
        r->decision_rule = "no rule matched";
        r->result = "denied";
        r->has_grpc_status = 1;
        r->grpc_status = 7;
        break;
    default:
        r->event_type = BASTION__V1__AUDIT_EVENT_TYPE__AUDIT_EVENT_REQUEST;
        r->has_decision = 1;
        r->decision = i % 10 == 9 ? BASTION__V1__AUDIT_DECISION__AUDIT_DECISION_DENY
                                  : BASTION__V1__AUDIT_DECISION__AUDIT_DECISION_ALLOW;
        r->result = i % 10 == 9 ? "denied" : "ok";
        r->has_grpc_status = 1;
        r->grpc_status = i % 10 == 9 ? 7 : 0;
        r->permission = "k8s:pods:list";
        break;
    }
}

static int write_n(struct audit *a, size_t n, int print_acks)
{
    for (size_t i = 0; n == 0 || i < n; i++) {
        Bastion__V1__AuditRecord r;
        Bastion__V1__AuditPrincipal p;
        Bastion__V1__AuditArgument arg, *args[1];
        char *groups[1];
        char reqid[40];
        enum bst_status st;

        make_record(&r, &p, &arg, args, groups, reqid, sizeof(reqid), i);
        st = submit_wait(a, &r);
        if (st != BST_OK) {
            fprintf(stderr, "audit_driver: record %zu: %s\n", i, bst_status_name(st));
            return 1;
        }
        if (print_acks) {
            printf("ack %s\n", reqid);
            fflush(stdout);
        }
    }
    return 0;
}

static int hostile(struct audit *a)
{
    static const char *const names[] = {
        "evil\x1b[31mred\x1b[0m", /* ANSI colour */
        "line1\nline2\r\n",       /* newlines */
        "bad\xff\xfe"
        "utf8\xc3", /* invalid UTF-8, truncated sequence */
        "bidi\xe2\x80\xae"
        "evil", /* U+202E RIGHT-TO-LEFT OVERRIDE */
        "c1\xc2\x9b"
        "31mcsi",               /* U+009B CSI */
        "nul-free\x01\x02\x7f", /* C0 and DEL */
        "\xed\xa0\x80"
        "surrogate", /* an encoded surrogate */
    };
    for (size_t i = 0; i < sizeof(names) / sizeof(names[0]); i++) {
        Bastion__V1__AuditRecord r = BASTION__V1__AUDIT_RECORD__INIT;
        Bastion__V1__AuditPrincipal p = BASTION__V1__AUDIT_PRINCIPAL__INIT;
        p.name = (char *)names[i];
        r.principal = &p;
        r.has_event_type = 1;
        r.event_type = BASTION__V1__AUDIT_EVENT_TYPE__AUDIT_EVENT_REQUEST;
        r.result = (char *)names[i];
        r.grpc_message = (char *)names[i];
        if (submit_wait(a, &r) != BST_OK)
            return 1;
    }
    return 0;
}

static int big(struct audit *a)
{
    Bastion__V1__AuditRecord r = BASTION__V1__AUDIT_RECORD__INIT;
    size_t n = 1024 * 1024;
    char *s = malloc(n + 1);
    int rc;

    if (s == NULL)
        return 1;
    memset(s, 'x', n);
    s[n] = '\0';
    r.has_event_type = 1;
    r.event_type = BASTION__V1__AUDIT_EVENT_TYPE__AUDIT_EVENT_REQUEST;
    r.grpc_message = s;
    r.result = "ok";
    rc = submit_wait(a, &r) == BST_OK ? 0 : 1;
    free(s);
    return rc;
}

int main(int argc, char **argv)
{
    struct audit_config cfg;
    struct audit *a = NULL;
    struct audit_stats st;
    struct bst_err err;
    int rc = 0;

    if (argc < 2) {
        fprintf(stderr, "usage: audit_driver CONFIG.yaml COMMAND...\n");
        return 2;
    }
    if (audit_config_load(argv[1], &cfg, &err) != BST_OK || audit_new(&a, &cfg, &err) != BST_OK) {
        fprintf(stderr, "audit_driver: %s\n", err.msg);
        audit_config_dispose(&cfg);
        return 1;
    }
    for (int i = 2; i < argc && rc == 0; i++) {
        const char *c = argv[i];
        if (strcmp(c, "write") == 0 && i + 1 < argc) {
            rc = write_n(a, strtoul(argv[++i], NULL, 10), 0);
        } else if (strcmp(c, "loop") == 0) {
            rc = write_n(a, 0, 1);
        } else if (strcmp(c, "hostile") == 0) {
            rc = hostile(a);
        } else if (strcmp(c, "big") == 0) {
            rc = big(a);
        } else if (strcmp(c, "admin") == 0 && i + 2 < argc) {
            rc = audit_admin_event(a, argv[i + 1], argv[i + 2]) == BST_OK ? 0 : 1;
            i += 2;
        } else if (strcmp(c, "rotate") == 0 && i + 1 < argc) {
            const char *id = i + 2 < argc && strchr(argv[i + 2], '.') == NULL &&
                                     strcmp(argv[i + 2], "write") != 0 &&
                                     strcmp(argv[i + 2], "stats") != 0
                                 ? argv[i + 2]
                                 : NULL;
            if (audit_rotate_key(a, argv[i + 1], id, &err) != BST_OK) {
                fprintf(stderr, "audit_driver: rotate: %s\n", err.msg);
                rc = 1;
            }
            i += id != NULL ? 2 : 1;
        } else if (strcmp(c, "stats") == 0) {
            audit_flush(a, 10000);
            audit_stats(a, &st);
            printf("{\"written\":%" PRIu64 ",\"dropped\":%" PRIu64 ",\"filtered\":%" PRIu64
                   ",\"truncated\":%" PRIu64 ",\"violations\":%" PRIu64 ",\"checkpoints\":%" PRIu64
                   ",\"segments_created\":%" PRIu64 ",\"segments_removed\":%" PRIu64
                   ",\"last_sequence\":%" PRIu64 ",\"webhook_sent\":%" PRIu64
                   ",\"webhook_failed\":%" PRIu64 ",\"webhook_lost\":%" PRIu64 "}\n",
                   st.records_written, st.records_dropped, st.records_filtered,
                   st.records_truncated, st.violations, st.checkpoints, st.segments_created,
                   st.segments_removed, st.last_sequence, st.webhook_sent, st.webhook_failed,
                   st.webhook_lost);
            fflush(stdout);
        } else {
            fprintf(stderr, "audit_driver: unknown command '%s'\n", c);
            rc = 2;
        }
    }
    audit_free(a);
    audit_config_dispose(&cfg);
    return rc;
}
