/* Deterministic container logs for the simulated cluster. A container instance's log is a pure
 * function of the pod's log seed, the container, the instance's start and end, and its profile
 * (nginx, postgres, redis, json-api, worker, coredns, generic): startup lines, then steady lines
 * at a profile-specific pace with jitter, then the lines of its exit when it crashed. Line i has
 * a computable time, so tail_lines, since_seconds and rotation never generate lines that are
 * not returned. Everything here is ASCII, so byte limits never split a character. */
#include "sim_internal.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#define NS 1000000000LL
#define MAX_LINE 640

struct lctx {
    const struct sim_obj *pod;
    const struct sim_container *c;
    uint64_t seed;
};

static uint64_t mix(uint64_t x)
{
    x ^= x >> 33;
    x *= 0xff51afd7ed558ccdULL;
    x ^= x >> 33;
    x *= 0xc4ceb9fe1a85ec53ULL;
    x ^= x >> 33;
    return x;
}

static struct tm utc(int64_t t_ns)
{
    time_t t = (time_t)(t_ns / NS);
    struct tm tm;
    if (gmtime_r(&t, &tm) == NULL)
        memset(&tm, 0, sizeof(tm));
    return tm;
}

static const char *const months[] = {"Jan", "Feb", "Mar", "Apr", "May", "Jun",
                                     "Jul", "Aug", "Sep", "Oct", "Nov", "Dec"};

/* 2025/01/01 00:00:00 */
static int ts_slash(char *b, size_t n, int64_t t)
{
    struct tm tm = utc(t);
    return snprintf(b, n, "%04d/%02d/%02d %02d:%02d:%02d", tm.tm_year + 1900, tm.tm_mon + 1,
                    tm.tm_mday, tm.tm_hour, tm.tm_min, tm.tm_sec);
}

/* 2025-01-01 00:00:00.123 */
static int ts_dash_ms(char *b, size_t n, int64_t t, char sep)
{
    struct tm tm = utc(t);
    return snprintf(b, n, "%04d-%02d-%02d%c%02d:%02d:%02d.%03d", tm.tm_year + 1900, tm.tm_mon + 1,
                    tm.tm_mday, sep, tm.tm_hour, tm.tm_min, tm.tm_sec, (int)(t % NS / 1000000));
}

/* ---- profiles ------------------------------------------------------------------------------ */

struct profile {
    const char *name;
    int interval; /* seconds between steady lines, on average */
    size_t n_startup;
    size_t n_crash;
    void (*startup)(const struct lctx *l, size_t i, int64_t t, char *b, size_t n);
    void (*steady)(const struct lctx *l, uint64_t r, int64_t t, char *b, size_t n);
    void (*crash)(const struct lctx *l, size_t i, int64_t t, char *b, size_t n);
};

static const char *pick(uint64_t r, const char *const *v, size_t n)
{
    return v[r % n];
}
#define PICK(r, arr) pick((r), (arr), sizeof(arr) / sizeof((arr)[0]))

static void peer_ip(const struct lctx *l, uint64_t r, char *b, size_t n)
{
    (void)l;
    snprintf(b, n, "10.244.%u.%u", (unsigned)(r % 3) + 1, (unsigned)((r >> 8) % 200) + 2);
}

/* nginx */

static void nginx_startup(const struct lctx *l, size_t i, int64_t t, char *b, size_t n)
{
    static const char *const pre[] = {
        "/docker-entrypoint.sh: /docker-entrypoint.d/ is not empty, will attempt to perform "
        "configuration",
        "/docker-entrypoint.sh: Looking for shell scripts in /docker-entrypoint.d/",
        "/docker-entrypoint.sh: Launching /docker-entrypoint.d/10-listen-on-ipv6-by-default.sh",
        "10-listen-on-ipv6-by-default.sh: info: Getting the checksum of "
        "/etc/nginx/conf.d/default.conf",
        "10-listen-on-ipv6-by-default.sh: info: Enabled listen on IPv6 in "
        "/etc/nginx/conf.d/default.conf",
        "/docker-entrypoint.sh: Sourcing /docker-entrypoint.d/15-local-resolvers.envsh",
        "/docker-entrypoint.sh: Launching /docker-entrypoint.d/20-envsubst-on-templates.sh",
        "/docker-entrypoint.sh: Launching /docker-entrypoint.d/30-tune-worker-processes.sh",
        "/docker-entrypoint.sh: Configuration complete; ready for start up",
    };
    char ts[80];
    const char *img = strchr(l->c->image, ':');
    ts_slash(ts, sizeof(ts), t);
    if (i < 9) {
        snprintf(b, n, "%s", pre[i]);
        return;
    }
    switch (i) {
    case 9:
        snprintf(b, n, "%s [notice] 1#1: using the \"epoll\" event method", ts);
        break;
    case 10:
        snprintf(b, n, "%s [notice] 1#1: nginx/%s", ts, img != NULL ? img + 1 : "1.27.2");
        break;
    case 11:
        snprintf(b, n, "%s [notice] 1#1: built by gcc 12.2.0 (Debian 12.2.0-14)", ts);
        break;
    case 12:
        snprintf(b, n, "%s [notice] 1#1: OS: Linux 6.8.0-1015-gcp", ts);
        break;
    case 13:
        snprintf(b, n, "%s [notice] 1#1: getrlimit(RLIMIT_NOFILE): 1048576:1048576", ts);
        break;
    case 14:
        snprintf(b, n, "%s [notice] 1#1: start worker processes", ts);
        break;
    default:
        snprintf(b, n, "%s [notice] 1#1: start worker process %zu", ts, 29 + (i - 15));
        break;
    }
}

static void nginx_steady(const struct lctx *l, uint64_t r, int64_t t, char *b, size_t n)
{
    static const char *const paths[] = {
        "GET / HTTP/1.1\" 200 615",
        "GET /index.html HTTP/1.1\" 200 615",
        "GET /static/js/main.8f3c2a1b.js HTTP/1.1\" 304 0",
        "GET /static/css/main.4d2e9f10.css HTTP/1.1\" 200 12872",
        "GET /api/products?page=2 HTTP/1.1\" 200 1532",
        "POST /api/cart HTTP/1.1\" 201 87",
        "GET /favicon.ico HTTP/1.1\" 404 153",
        "GET /login HTTP/1.1\" 200 2311",
    };
    static const char *const agents[] = {
        "Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) "
        "Chrome/130.0.0.0 Safari/537.36",
        "Mozilla/5.0 (Macintosh; Intel Mac OS X 14_6) AppleWebKit/605.1.15 (KHTML, like Gecko) "
        "Version/18.0 Safari/605.1.15",
        "curl/8.5.0",
    };
    struct tm tm = utc(t);
    char ip[20];
    (void)l;
    if (r % 3 == 0) {
        snprintf(b, n,
                 "10.244.0.1 - - [%02d/%s/%04d:%02d:%02d:%02d +0000] \"GET /healthz HTTP/1.1\" "
                 "200 2 \"-\" \"kube-probe/1.31\" \"-\"",
                 tm.tm_mday, months[tm.tm_mon], tm.tm_year + 1900, tm.tm_hour, tm.tm_min,
                 tm.tm_sec);
        return;
    }
    if (r % 29 == 1) {
        char ts[80];
        ts_slash(ts, sizeof(ts), t);
        snprintf(b, n,
                 "%s [error] 29#29: *%u open() \"/usr/share/nginx/html/favicon.ico\" failed (2: "
                 "No such file or directory), client: 10.244.1.1, server: localhost, request: "
                 "\"GET /favicon.ico HTTP/1.1\", host: \"%s\"",
                 ts, (unsigned)(r >> 20) % 5000, l->pod->meta.namespace_);
        return;
    }
    peer_ip(l, r >> 4, ip, sizeof(ip));
    snprintf(b, n, "%s - - [%02d/%s/%04d:%02d:%02d:%02d +0000] \"%s \"-\" \"%s\" \"-\"", ip,
             tm.tm_mday, months[tm.tm_mon], tm.tm_year + 1900, tm.tm_hour, tm.tm_min, tm.tm_sec,
             PICK(r >> 12, paths), PICK(r >> 24, agents));
}

static void nginx_crash(const struct lctx *l, size_t i, int64_t t, char *b, size_t n)
{
    char ts[80];
    (void)l;
    ts_slash(ts, sizeof(ts), t);
    if (i == 0)
        snprintf(b, n,
                 "%s [emerg] 1#1: host not found in upstream \"api:8080\" in "
                 "/etc/nginx/conf.d/default.conf:14",
                 ts);
    else
        snprintf(b, n,
                 "nginx: [emerg] host not found in upstream \"api:8080\" in "
                 "/etc/nginx/conf.d/default.conf:14");
}

/* postgres */

static void pg_prefix(char *b, size_t n, int64_t t, unsigned pid)
{
    char ts[80];
    ts_dash_ms(ts, sizeof(ts), t, ' ');
    snprintf(b, n, "%s UTC [%u] ", ts, pid);
}

static void pg_startup(const struct lctx *l, size_t i, int64_t t, char *b, size_t n)
{
    char p[128];
    (void)l;
    if (i == 0) {
        snprintf(b, n,
                 "PostgreSQL Database directory appears to contain a database; Skipping "
                 "initialization");
        return;
    }
    if (i == 1) {
        b[0] = '\0';
        return;
    }
    pg_prefix(p, sizeof(p), t, i == 6 ? 27 : 1);
    switch (i) {
    case 2:
        snprintf(b, n,
                 "%sLOG:  starting PostgreSQL 16.4 (Debian 16.4-1.pgdg120+2) on "
                 "x86_64-pc-linux-gnu, compiled by gcc (Debian 12.2.0-14) 12.2.0, 64-bit",
                 p);
        break;
    case 3:
        snprintf(b, n, "%sLOG:  listening on IPv4 address \"0.0.0.0\", port 5432", p);
        break;
    case 4:
        snprintf(b, n, "%sLOG:  listening on IPv6 address \"::\", port 5432", p);
        break;
    case 5:
        snprintf(b, n, "%sLOG:  listening on Unix socket \"/var/run/postgresql/.s.PGSQL.5432\"", p);
        break;
    case 6:
        snprintf(b, n, "%sLOG:  database system was shut down at %.19s UTC", p, p);
        break;
    default:
        snprintf(b, n, "%sLOG:  database system is ready to accept connections", p);
        break;
    }
}

static void pg_steady(const struct lctx *l, uint64_t r, int64_t t, char *b, size_t n)
{
    char p[128];
    (void)l;
    switch (r % 5) {
    case 0:
    case 1:
        pg_prefix(p, sizeof(p), t, 25);
        snprintf(b, n, "%sLOG:  checkpoint starting: time", p);
        break;
    case 2:
        pg_prefix(p, sizeof(p), t, 25);
        snprintf(b, n,
                 "%sLOG:  checkpoint complete: wrote %u buffers (%u.%u%%); 0 WAL file(s) added, 0 "
                 "removed, %u recycled; write=%u.%03u s, sync=0.004 s, total=%u.%03u s; sync "
                 "files=%u, longest=0.002 s, average=0.001 s; distance=%u kB, estimate=%u kB",
                 p, (unsigned)(r >> 8) % 400 + 10, (unsigned)(r >> 16) % 3,
                 (unsigned)(r >> 20) % 10, (unsigned)(r >> 24) % 3, (unsigned)(r >> 28) % 30,
                 (unsigned)(r >> 32) % 1000, (unsigned)(r >> 28) % 30,
                 (unsigned)(r >> 32) % 1000 + 19, (unsigned)(r >> 40) % 40 + 3,
                 (unsigned)(r >> 44) % 900 + 24, (unsigned)(r >> 44) % 900 + 512);
        break;
    case 3:
        pg_prefix(p, sizeof(p), t, (unsigned)(r >> 10) % 9000 + 1000);
        snprintf(b, n, "%sLOG:  could not receive data from client: Connection reset by peer", p);
        break;
    default:
        pg_prefix(p, sizeof(p), t, (unsigned)(r >> 10) % 9000 + 1000);
        snprintf(b, n, "%sERROR:  duplicate key value violates unique constraint \"orders_pkey\"",
                 p);
        break;
    }
}

static void pg_crash(const struct lctx *l, size_t i, int64_t t, char *b, size_t n)
{
    char p[128];
    (void)l;
    pg_prefix(p, sizeof(p), t, 1);
    if (i == 0)
        snprintf(b, n,
                 "%sFATAL:  could not write lock file \"postmaster.pid\": No space left on "
                 "device",
                 p);
    else
        snprintf(b, n, "%sLOG:  database system is shut down", p);
}

/* redis */

static void redis_ts(char *b, size_t n, int64_t t, const char *role)
{
    struct tm tm = utc(t);
    snprintf(b, n, "1:%s %02d %s %04d %02d:%02d:%02d.%03d", role, tm.tm_mday, months[tm.tm_mon],
             tm.tm_year + 1900, tm.tm_hour, tm.tm_min, tm.tm_sec, (int)(t % NS / 1000000));
}

static void redis_startup(const struct lctx *l, size_t i, int64_t t, char *b, size_t n)
{
    static const char *const lines[] = {
        "* oO0OoO0OoO0Oo Redis is starting oO0OoO0OoO0Oo",
        "* Redis version=7.4.1, bits=64, commit=00000000, modified=0, pid=1, just started",
        "# Warning: no config file specified, using the default config.",
        "* monotonic clock: POSIX clock_gettime",
        "* Running mode=standalone, port=6379.",
        "* Server initialized",
        "* Ready to accept connections tcp",
    };
    char ts[80];
    (void)l;
    redis_ts(ts, sizeof(ts), t, i < 3 ? "C" : "M");
    snprintf(b, n, "%s %s", ts, lines[i]);
}

static void redis_steady(const struct lctx *l, uint64_t r, int64_t t, char *b, size_t n)
{
    char ts[80];
    (void)l;
    switch (r % 4) {
    case 0:
        redis_ts(ts, sizeof(ts), t, "M");
        snprintf(b, n, "%s * 100 changes in 300 seconds. Saving...", ts);
        break;
    case 1:
        redis_ts(ts, sizeof(ts), t, "M");
        snprintf(b, n, "%s * Background saving started by pid %u", ts,
                 (unsigned)(r >> 8) % 900 + 20);
        break;
    case 2:
        redis_ts(ts, sizeof(ts), t, "C");
        snprintf(b, n, "%s * DB saved on disk", ts);
        break;
    default:
        redis_ts(ts, sizeof(ts), t, "M");
        snprintf(b, n, "%s * Background saving terminated with success", ts);
        break;
    }
}

static void redis_crash(const struct lctx *l, size_t i, int64_t t, char *b, size_t n)
{
    char ts[80];
    (void)l;
    (void)i;
    redis_ts(ts, sizeof(ts), t, "M");
    snprintf(b, n, "%s # Out Of Memory allocating 1048576 bytes!", ts);
}

/* json-api: a Go service with structured logs */

static void api_startup(const struct lctx *l, size_t i, int64_t t, char *b, size_t n)
{
    char ts[80];
    const char *img = strchr(l->c->image, ':');
    ts_dash_ms(ts, sizeof(ts), t, 'T');
    switch (i) {
    case 0:
        snprintf(b, n,
                 "{\"level\":\"info\",\"ts\":\"%sZ\",\"caller\":\"cmd/server/main.go:41\","
                 "\"msg\":\"starting %s\",\"version\":\"%s\",\"go\":\"go1.23.4\"}",
                 ts, l->c->name, img != NULL ? img + 1 : "latest");
        break;
    case 1:
        snprintf(
            b, n,
            "{\"level\":\"info\",\"ts\":\"%sZ\",\"caller\":\"internal/db/pool.go:58\","
            "\"msg\":\"connected to database\",\"host\":\"postgres.%s.svc.cluster.local:5432\","
            "\"pool_size\":20}",
            ts, l->pod->meta.namespace_);
        break;
    default:
        snprintf(b, n,
                 "{\"level\":\"info\",\"ts\":\"%sZ\",\"caller\":\"cmd/server/main.go:77\","
                 "\"msg\":\"listening\",\"addr\":\":8080\"}",
                 ts);
        break;
    }
}

static void api_steady(const struct lctx *l, uint64_t r, int64_t t, char *b, size_t n)
{
    static const char *const routes[] = {
        "GET\",\"path\":\"/api/v1/orders\",\"status\":200",
        "GET\",\"path\":\"/api/v1/orders/48213\",\"status\":200",
        "POST\",\"path\":\"/api/v1/orders\",\"status\":201",
        "GET\",\"path\":\"/api/v1/customers/1187\",\"status\":200",
        "PUT\",\"path\":\"/api/v1/cart/77\",\"status\":200",
        "GET\",\"path\":\"/api/v1/orders/99999\",\"status\":404",
        "GET\",\"path\":\"/healthz\",\"status\":200",
    };
    char ts[80];
    (void)l;
    ts_dash_ms(ts, sizeof(ts), t, 'T');
    if (r % 41 == 7) {
        snprintf(b, n,
                 "{\"level\":\"warn\",\"ts\":\"%sZ\",\"caller\":\"internal/db/query.go:112\","
                 "\"msg\":\"slow query\",\"duration_ms\":%u,\"table\":\"orders\"}",
                 ts, (unsigned)(r >> 8) % 2000 + 1000);
        return;
    }
    if (r % 53 == 11) {
        snprintf(b, n,
                 "{\"level\":\"error\",\"ts\":\"%sZ\",\"caller\":\"internal/client/http.go:93\","
                 "\"msg\":\"upstream request failed\",\"upstream\":\"payments-gateway\","
                 "\"error\":\"context deadline exceeded\",\"attempt\":%u}",
                 ts, (unsigned)(r >> 8) % 3 + 1);
        return;
    }
    snprintf(b, n,
             "{\"level\":\"info\",\"ts\":\"%sZ\",\"caller\":\"internal/http/middleware.go:88\","
             "\"msg\":\"request\",\"method\":\"%s,\"duration_ms\":%u.%u,"
             "\"request_id\":\"%016llx\"}",
             ts, PICK(r >> 8, routes), (unsigned)(r >> 16) % 80 + 1, (unsigned)(r >> 24) % 10,
             (unsigned long long)mix(r));
}

static void api_crash(const struct lctx *l, size_t i, int64_t t, char *b, size_t n)
{
    char ts[80];
    ts_dash_ms(ts, sizeof(ts), t, 'T');
    if (i == 0)
        snprintf(b, n,
                 "{\"level\":\"fatal\",\"ts\":\"%sZ\",\"caller\":\"internal/config/config.go:57\","
                 "\"msg\":\"invalid configuration\",\"error\":\"OAUTH_CLIENT_SECRET is not set\"}",
                 ts);
    else
        snprintf(b, n, "exit status 1 (%s)", l->c->name);
}

/* worker: a Python queue worker */

static void worker_ts(char *b, size_t n, int64_t t)
{
    struct tm tm = utc(t);
    snprintf(b, n, "[%04d-%02d-%02d %02d:%02d:%02d,%03d", tm.tm_year + 1900, tm.tm_mon + 1,
             tm.tm_mday, tm.tm_hour, tm.tm_min, tm.tm_sec, (int)(t % NS / 1000000));
}

static void worker_startup(const struct lctx *l, size_t i, int64_t t, char *b, size_t n)
{
    char ts[80];
    worker_ts(ts, sizeof(ts), t);
    if (i == 0)
        snprintf(b, n,
                 "%s: INFO/MainProcess] Connected to redis://redis.%s.svc.cluster.local:6379/0", ts,
                 l->pod->meta.namespace_);
    else if (i == 1)
        snprintf(b, n, "%s: INFO/MainProcess] mingle: searching for neighbors", ts);
    else
        snprintf(b, n, "%s: INFO/MainProcess] %s@%s ready.", ts, l->c->name, l->pod->meta.name);
}

static void worker_steady(const struct lctx *l, uint64_t r, int64_t t, char *b, size_t n)
{
    static const char *const tasks[] = {"reports.generate", "emails.send_receipt",
                                        "billing.sync_invoices", "images.resize"};
    char ts[80];
    (void)l;
    worker_ts(ts, sizeof(ts), t);
    if (r % 2 == 0)
        snprintf(b, n, "%s: INFO/MainProcess] Task %s[%08llx-%04x] received", ts,
                 PICK(r >> 8, tasks), (unsigned long long)(mix(r) >> 32),
                 (unsigned)(r >> 40) & 0xffff);
    else
        snprintf(b, n,
                 "%s: INFO/ForkPoolWorker-%u] Task %s[%08llx-%04x] succeeded in %u.%02us: "
                 "None",
                 ts, (unsigned)(r >> 4) % 4 + 1, PICK(r >> 8, tasks),
                 (unsigned long long)(mix(r - 1) >> 32), (unsigned)((r - 1) >> 40) & 0xffff,
                 (unsigned)(r >> 16) % 9, (unsigned)(r >> 24) % 100);
}

static void worker_crash(const struct lctx *l, size_t i, int64_t t, char *b, size_t n)
{
    char ts[80];
    (void)l;
    worker_ts(ts, sizeof(ts), t);
    if (i == 0)
        snprintf(b, n,
                 "%s: ERROR/MainProcess] consumer: Cannot connect to redis://redis:6379/0: "
                 "Error -2 connecting to redis:6379. Name or service not known.",
                 ts);
    else
        snprintf(b, n,
                 "%s: CRITICAL/MainProcess] Unrecoverable error: OperationalError('Error -2 "
                 "connecting to redis:6379. Name or service not known.')",
                 ts);
}

/* coredns */

static void dns_startup(const struct lctx *l, size_t i, int64_t t, char *b, size_t n)
{
    static const char *const lines[] = {
        ".:53",
        "[INFO] plugin/reload: Running configuration SHA512 = "
        "591cf328cccc12bc490481273e738df59329c62c0b729d94e8b61db9961c2fa5f046dd37f1cf888b953814040"
        "d180f52594972691cd6ff41be96639138a43908",
        "CoreDNS-1.11.3",
        "linux/amd64, go1.21.11, a6338e9",
    };
    (void)l;
    (void)t;
    snprintf(b, n, "%s", lines[i]);
}

static void dns_steady(const struct lctx *l, uint64_t r, int64_t t, char *b, size_t n)
{
    static const char *const names[] = {
        "web.default.svc.cluster.local.", "postgres.production.svc.cluster.local.",
        "kubernetes.default.svc.cluster.local.", "api.development.svc.cluster.local.",
        "redis.staging.svc.cluster.local."};
    char ip[20];
    (void)t;
    peer_ip(l, r >> 4, ip, sizeof(ip));
    snprintf(b, n, "[INFO] %s:%u - %u \"%s IN %s udp %u false 512\" NOERROR qr,aa,rd %u %u.%06us",
             ip, (unsigned)(r >> 12) % 30000 + 32768, (unsigned)(r >> 28) % 65536,
             (r >> 44) % 3 == 0 ? "AAAA" : "A", PICK(r >> 20, names), (unsigned)(r >> 36) % 30 + 40,
             (unsigned)(r >> 40) % 80 + 90, 0u, (unsigned)(r >> 48) % 900 + 80);
}

static void dns_crash(const struct lctx *l, size_t i, int64_t t, char *b, size_t n)
{
    (void)l;
    (void)i;
    (void)t;
    snprintf(b, n, "[FATAL] plugin/loop: Loop (127.0.0.1:53 -> :53) detected for zone \".\"");
}

/* generic */

static void gen_startup(const struct lctx *l, size_t i, int64_t t, char *b, size_t n)
{
    char ts[80];
    (void)i;
    ts_slash(ts, sizeof(ts), t);
    snprintf(b, n, "%s starting %s (%s)", ts, l->c->name, l->c->image);
}

static void gen_steady(const struct lctx *l, uint64_t r, int64_t t, char *b, size_t n)
{
    char ts[80];
    (void)l;
    ts_slash(ts, sizeof(ts), t);
    snprintf(b, n, "%s heartbeat ok (queue depth %u)", ts, (unsigned)(r % 17));
}

static void gen_crash(const struct lctx *l, size_t i, int64_t t, char *b, size_t n)
{
    char ts[80];
    (void)l;
    (void)i;
    ts_slash(ts, sizeof(ts), t);
    snprintf(b, n, "%s fatal: cannot open /etc/app/config.yaml: no such file or directory", ts);
}

static const struct profile profiles[] = {
    {"nginx", 4, 17, 2, nginx_startup, nginx_steady, nginx_crash},
    {"postgres", 45, 8, 2, pg_startup, pg_steady, pg_crash},
    {"redis", 75, 7, 1, redis_startup, redis_steady, redis_crash},
    {"json-api", 6, 3, 2, api_startup, api_steady, api_crash},
    {"worker", 20, 3, 2, worker_startup, worker_steady, worker_crash},
    {"coredns", 9, 4, 1, dns_startup, dns_steady, dns_crash},
    {"generic", 30, 1, 1, gen_startup, gen_steady, gen_crash},
};

static const struct profile *profile_of(const char *name)
{
    for (size_t i = 0; i < sizeof(profiles) / sizeof(profiles[0]); i++)
        if (name != NULL && strcmp(profiles[i].name, name) == 0)
            return &profiles[i];
    return &profiles[sizeof(profiles) / sizeof(profiles[0]) - 1];
}

const char *sim_log_profile_for_image(const char *image)
{
    static const struct {
        const char *needle, *profile;
    } known[] = {{"nginx", "nginx"},     {"postgres", "postgres"}, {"redis", "redis"},
                 {"coredns", "coredns"}, {"worker", "worker"},     {"celery", "worker"},
                 {"api", "json-api"},    {"server", "json-api"},   {"service", "json-api"}};
    const char *slash = strrchr(image, '/');
    const char *base = slash != NULL ? slash + 1 : image;
    for (size_t i = 0; i < sizeof(known) / sizeof(known[0]); i++)
        if (strstr(base, known[i].needle) != NULL)
            return known[i].profile;
    return "generic";
}

/* ---- line model ---------------------------------------------------------------------------- */

struct model {
    const struct profile *p;
    struct lctx l;
    int64_t start_ns, end_ns;
    size_t n_startup, n_steady, n_crash;
    uint64_t seed;
};

static size_t model_total(const struct model *m)
{
    return m->n_startup + m->n_steady + m->n_crash;
}

/* Time of line i (non-decreasing in i). */
static int64_t line_time(const struct model *m, size_t i)
{
    int64_t iv = (int64_t)m->p->interval * NS;
    if (i < m->n_startup)
        return m->start_ns + (int64_t)i * 37000000LL;
    i -= m->n_startup;
    if (i < m->n_steady)
        return m->start_ns + NS + (int64_t)i * iv + (int64_t)(mix(m->seed ^ i) % (uint64_t)iv);
    i -= m->n_steady;
    return m->end_ns - NS / 2 + (int64_t)i * 1000000LL;
}

static void line_text(const struct model *m, size_t i, char *b, size_t n)
{
    int64_t t = line_time(m, i);
    if (i < m->n_startup) {
        m->p->startup(&m->l, i, t, b, n);
        return;
    }
    i -= m->n_startup;
    if (i < m->n_steady) {
        m->p->steady(&m->l, mix(m->seed + 0x51ed27 + i), t, b, n);
        return;
    }
    m->p->crash(&m->l, i - m->n_steady, t, b, n);
}

/* The first line at or after time t_ns (binary search over non-decreasing times). */
static size_t first_at(const struct model *m, size_t lo, size_t hi, int64_t t_ns)
{
    while (lo < hi) {
        size_t mid = lo + (hi - lo) / 2;
        if (line_time(m, mid) < t_ns)
            lo = mid + 1;
        else
            hi = mid;
    }
    return lo;
}

enum bst_status sim_logs_render(const struct sim_obj *p, const struct sim_container *c,
                                size_t container_index, const struct sim_instance *inst,
                                int64_t tail_lines, int64_t since, int timestamps,
                                size_t limit_bytes, const struct kube_ctx *ctx, char **out,
                                uint32_t *lines, int *truncated)
{
    struct model m;
    size_t total, first, cap, used = 0;
    int64_t run;
    char *buf;

    memset(&m, 0, sizeof(m));
    m.p = profile_of(c->log_profile);
    m.l.pod = p;
    m.l.c = c;
    m.seed = mix(p->u.pod.log_seed ^ ((uint64_t)container_index << 56) ^ (uint64_t)inst->start);
    m.start_ns = inst->start * NS;
    m.end_ns = inst->end * NS;
    run = inst->end - inst->start;
    /* A process writes its startup lines in its first moments: a container started this
     * second already has them. */
    m.n_startup = run >= 0 ? m.p->n_startup : 0;
    m.n_crash = inst->crashed ? m.p->n_crash : 0;
    if (run > 2)
        m.n_steady = (size_t)((run - 2) / m.p->interval);
    total = model_total(&m);
    /* Older lines were rotated away, as the kubelet rotates container logs. */
    first = total > SIM_LOG_RETAINED_LINES ? total - SIM_LOG_RETAINED_LINES : 0;
    if (since > 0)
        first = first_at(&m, first, total, since * NS);
    if (tail_lines >= 0 && total - first > (size_t)tail_lines)
        first = total - (size_t)tail_lines;
    cap = SIM_LOG_MAX_BYTES;
    if (limit_bytes > 0 && limit_bytes < cap)
        cap = limit_bytes;
    if ((buf = kube_alloc(ctx, cap + 1)) == NULL)
        return BST_RESOURCE_EXHAUSTED;
    *lines = 0;
    *truncated = 0;
    for (size_t i = first; i < total; i++) {
        char line[MAX_LINE + 64];
        size_t len = 0;
        if (timestamps) {
            int64_t t = line_time(&m, i);
            struct tm tm = utc(t);
            len = (size_t)snprintf(line, sizeof(line), "%04d-%02d-%02dT%02d:%02d:%02d.%09lldZ ",
                                   tm.tm_year + 1900, tm.tm_mon + 1, tm.tm_mday, tm.tm_hour,
                                   tm.tm_min, tm.tm_sec, (long long)(t % NS));
        }
        line_text(&m, i, line + len, MAX_LINE);
        len += strlen(line + len);
        line[len++] = '\n';
        if (used + len > cap) {
            /* As limitBytes does: the answer stops at the limit, even inside a line. */
            memcpy(buf + used, line, cap - used);
            used = cap;
            *truncated = 1;
            break;
        }
        memcpy(buf + used, line, len);
        used += len;
        (*lines)++;
    }
    buf[used] = '\0';
    *out = buf;
    return BST_OK;
}
