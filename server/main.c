/* bastiond: load the configuration, build TLS, start the workers, then wait for signals on the
 * main thread: SIGHUP reloads every registered component, SIGTERM/SIGINT drain and exit. */
#include "accesslog.h"
#include "audit.h"
#include "auditlog.h"
#include "authn.h"
#include "bastion_version.h"
#include "catalogue.h"
#include "chain.h"
#include "config.h"
#include "log.h"
#include "rbac.h"
#include "reload.h"
#include "server.h"
#include "services.h"
#include "tls.h"
#include "worker.h"

#include <event2/event.h>
#include <getopt.h>
#include <openssl/opensslv.h>
#include <nghttp2/nghttp2ver.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/resource.h>
#include <unistd.h>

static void usage(FILE *f)
{
    fprintf(f,
            "Usage: bastiond [options]\n"
            "Hardened gRPC gateway through which AI agents and services operate Kubernetes.\n\n"
            "  -c, --config FILE     configuration file (default configs/bastion.yaml)\n"
            "  -l, --listen ADDR     override `listen` (host:port; port 0 picks a free port)\n"
            "      --port-file FILE  write the bound port to FILE once listening\n"
            "      --check-config    validate the configuration, certificates and keys, then exit\n"
            "      --help-config     print every configuration key with its default and bounds\n"
            "  -V, --version         print the version and exit\n"
            "  -h, --help            print this help and exit\n\n"
            "Signals: SIGHUP reloads certificates and keys; SIGTERM drains and exits.\n");
}

struct signals {
    struct server *srv;
    struct event_base *base;
    int draining;
};

static void on_sighup(evutil_socket_t sig, short what, void *arg)
{
    struct audit *audit = arg;
    char detail[96];
    int refused;
    (void)sig;
    (void)what;
    bst_log(BST_LOG_INFO, "reload_start", "trigger", "SIGHUP", NULL);
    refused = bst_reload_all();
    snprintf(detail, sizeof(detail), "SIGHUP: %d component(s) refused their new input%s", refused,
             refused ? " and kept the previous snapshot (see the log)" : "");
    if (audit != NULL)
        audit_admin_event(audit, "reload", detail);
}

static void on_sigterm(evutil_socket_t sig, short what, void *arg)
{
    struct signals *s = arg;
    (void)what;
    if (s->draining) {
        bst_log(BST_LOG_WARN, "shutdown_forced", "signal", sig == SIGINT ? "SIGINT" : "SIGTERM",
                NULL);
        _exit(1);
    }
    s->draining = 1;
    bst_log(BST_LOG_INFO, "drain_start", "signal", sig == SIGINT ? "SIGINT" : "SIGTERM", NULL);
    atomic_store(&s->srv->draining, 1);
    services_set_serving(0);
    workers_drain(s->srv);
    event_base_loopexit(s->base, NULL);
}

static int write_port_file(const char *path, int port)
{
    char tmp[4096];
    FILE *f;
    if (snprintf(tmp, sizeof(tmp), "%s.tmp", path) >= (int)sizeof(tmp))
        return -1;
    f = fopen(tmp, "w");
    if (f == NULL)
        return -1;
    fprintf(f, "%d\n", port);
    if (fclose(f) != 0)
        return -1;
    return rename(tmp, path);
}

/* Loads the authorization policy against the permissions the catalogue uses (tools and
 * resources), so a policy that
 * names a permission no tool has is refused at load time. */
static enum bst_status policy_open(const struct config *cfg, struct rbac **out, struct bst_err *err)
{
    const char *known[256];
    size_t n = 0;

    *out = NULL;
    if (cfg->rbac_policy == NULL || cfg->rbac_policy[0] == '\0') {
        bst_log(BST_LOG_WARN, "rbac_no_policy", "detail",
                "rbac.policy is not set: every call that needs a permission is denied", NULL);
        return BST_OK;
    }
    n = catalogue_permissions(known, sizeof(known) / sizeof(known[0]));
    return rbac_new(out, cfg->rbac_policy, known, n, err);
}

static void harden_process(void)
{
    struct rlimit no_core = {0, 0};
    /* Keys live in this process's memory: no core dumps, no ptrace by other users. */
    setrlimit(RLIMIT_CORE, &no_core);
    prctl(PR_SET_DUMPABLE, 0, 0, 0, 0);
    signal(SIGPIPE, SIG_IGN);
    /* A file-size limit must fail the audit write (EFBIG: calls fail closed), not kill us. */
    signal(SIGXFSZ, SIG_IGN);
}

int main(int argc, char **argv)
{
    static const struct option opts[] = {
        {"config", required_argument, NULL, 'c'},
        {"listen", required_argument, NULL, 'l'},
        {"port-file", required_argument, NULL, 'p'},
        {"check-config", no_argument, NULL, 'C'},
        {"help-config", no_argument, NULL, 'H'},
        {"version", no_argument, NULL, 'V'},
        {"help", no_argument, NULL, 'h'},
        {NULL, 0, NULL, 0},
    };
    const char *config_path = "configs/bastion.yaml", *listen_override = NULL;
    const char *port_file = NULL;
    int check_only = 0, opt, rc = 1;
    struct server srv;
    struct bst_err err = {BST_OK, ""};
    struct kube_backend *kube = NULL;
    struct rbac *rbac = NULL;
    struct authn *authn = NULL;
    struct audit *audit = NULL;
    struct event_base *main_base = NULL;
    struct event *ev_hup = NULL, *ev_term = NULL, *ev_int = NULL;
    struct signals sigs;
    enum bst_log_level level;

    memset(&srv, 0, sizeof(srv));
    while ((opt = getopt_long(argc, argv, "c:l:Vh", opts, NULL)) != -1) {
        switch (opt) {
        case 'c':
            config_path = optarg;
            break;
        case 'l':
            listen_override = optarg;
            break;
        case 'p':
            port_file = optarg;
            break;
        case 'C':
            check_only = 1;
            break;
        case 'H':
            config_print_reference();
            return 0;
        case 'V':
            printf("bastiond %s (OpenSSL %s, nghttp2 %s, libevent %s)\n", BASTION_VERSION,
                   OPENSSL_VERSION_STR, NGHTTP2_VERSION, event_get_version());
            return 0;
        case 'h':
            usage(stdout);
            return 0;
        default:
            usage(stderr);
            return 2;
        }
    }
    if (optind != argc) {
        usage(stderr);
        return 2;
    }
    harden_process();

    if (config_load(config_path, &srv.cfg, &err) != BST_OK) {
        fprintf(stderr, "bastiond: %s\n", err.msg);
        return 1;
    }
    if (listen_override != NULL) {
        free(srv.cfg.listen);
        srv.cfg.listen = strdup(listen_override);
        if (srv.cfg.listen == NULL)
            goto out;
    }
    if (bst_log_level_parse(srv.cfg.log_level, &level) != 0) {
        fprintf(stderr, "bastiond: %s: log_level must be debug, info, warn or error\n",
                config_path);
        goto out;
    }
    bst_log_set_level(level);
    if (tls_holder_new(&srv.tls, &srv.cfg, &err) != BST_OK) {
        fprintf(stderr, "bastiond: %s\n", err.msg);
        goto out;
    }
    if (policy_open(&srv.cfg, &rbac, &err) != BST_OK) {
        fprintf(stderr, "bastiond: %s\n", err.msg);
        goto out;
    }
    chain_set_rbac(rbac);
    if (authn_new(&authn, &srv.cfg.auth, &err) != BST_OK) {
        fprintf(stderr, "bastiond: %s\n", err.msg);
        goto out;
    }
    chain_set_authn(authn);
    /* The cluster comes before --check-config returns: a bad seed file is a config error. */
    {
        struct kube_sim_options so = {NULL, 0, 0};
        so.seed_path = srv.cfg.cluster_seed[0] != '\0' ? srv.cfg.cluster_seed : NULL;
        so.max_objects = (size_t)srv.cfg.cluster_max_objects;
        if (kube_sim_new(&kube, &so, &err) != BST_OK) {
            fprintf(stderr, "bastiond: cluster: %s\n", err.msg);
            goto out;
        }
    }
    if (check_only) {
        printf("bastiond: configuration %s is valid\n", config_path);
        rc = 0;
        goto out;
    }
    catalogue_set_backend(kube);
    catalogue_set_replica_bounds((int32_t)srv.cfg.cluster_min_replicas,
                                 (int32_t)srv.cfg.cluster_max_replicas);
    accesslog_install();
    /* The audit log opens last and closes first: it records startup and shutdown itself. */
    if (audit_new(&audit, &srv.cfg.audit, &err) != BST_OK) {
        fprintf(stderr, "bastiond: audit: %s\n", err.msg);
        goto out;
    }
    if (bst_reload_register("audit", audit_reload, audit) != BST_OK) {
        fprintf(stderr, "bastiond: reload registry full\n");
        goto out;
    }
    auditlog_install(audit);

    if (workers_start(&srv, &err) != BST_OK) {
        fprintf(stderr, "bastiond: %s\n", err.msg);
        goto out;
    }
    {
        char port[16], workers[16];
        snprintf(port, sizeof(port), "%d", srv.port);
        snprintf(workers, sizeof(workers), "%zu", srv.n_workers);
        bst_log(BST_LOG_INFO, "listening", "address", srv.cfg.listen, "port", port, "workers",
                workers, "backend", kube->ops->name, "version", BASTION_VERSION, NULL);
    }
    if (port_file != NULL && write_port_file(port_file, srv.port) != 0) {
        fprintf(stderr, "bastiond: cannot write %s\n", port_file);
        workers_drain(&srv);
        workers_join(&srv);
        goto out;
    }

    main_base = event_base_new();
    sigs.srv = &srv;
    sigs.base = main_base;
    sigs.draining = 0;
    ev_hup = evsignal_new(main_base, SIGHUP, on_sighup, audit);
    ev_term = evsignal_new(main_base, SIGTERM, on_sigterm, &sigs);
    ev_int = evsignal_new(main_base, SIGINT, on_sigterm, &sigs);
    if (main_base == NULL || ev_hup == NULL || ev_term == NULL || ev_int == NULL ||
        evsignal_add(ev_hup, NULL) != 0 || evsignal_add(ev_term, NULL) != 0 ||
        evsignal_add(ev_int, NULL) != 0) {
        fprintf(stderr, "bastiond: cannot install signal handlers\n");
        workers_drain(&srv);
        workers_join(&srv);
        goto out;
    }
    event_base_dispatch(main_base);
    evsignal_del(ev_hup);
    workers_join(&srv);
    bst_log(BST_LOG_INFO, "stopped", NULL);
    rc = 0;
out:
    if (ev_hup != NULL)
        event_free(ev_hup);
    if (ev_term != NULL)
        event_free(ev_term);
    if (ev_int != NULL)
        event_free(ev_int);
    if (main_base != NULL)
        event_base_free(main_base);
    /* The registry has no per-component removal: clear it before freeing what it points to. */
    bst_reload_clear();
    /* The loops have stopped, but calls whose streams are gone may still be held elsewhere.
     * Stop each producer of resumptions in turn and finish what it hands back, so every call
     * is recorded exactly once and nothing is resumed onto freed memory: first the scrypt pool
     * (queued logins are answered UNAVAILABLE), then the audit log (writes what is queued and
     * answers every record still waiting). */
    chain_set_authn(NULL);
    authn_free(authn);
    workers_finish_resumed(&srv);
    auditlog_install(NULL);
    audit_free(audit);
    workers_finish_resumed(&srv);
    workers_free(&srv);
    tls_holder_free(srv.tls);
    chain_set_rbac(NULL);
    rbac_free(rbac);
    kube_backend_free(kube);
    catalogue_shutdown();
    config_dispose(&srv.cfg);
    return rc;
}
