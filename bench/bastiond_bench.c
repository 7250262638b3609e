/* bastiond_bench: calls per second through the real bastiond in each audit mode, side by side.
 *
 * Every round starts one bastiond per audit mode (blocking, batch, best-effort; the order
 * rotates between rounds), each on a fresh audit directory, and drives it with libbastion: C
 * channels (one mutual-TLS HTTP/2 connection each) keeping W unary calls in flight, a new call
 * started from each completion callback. After a warm-up, completed calls are counted for S
 * seconds. The figures are the medians over the rounds, with the ratio blocking/batch: what
 * waiting for a durable record (group commit, one fdatasync per group) costs a caller.
 *
 *   bastiond_bench [--rounds N] [--seconds S] [--channels C] [--inflight W] [--workers K]
 *                  [--method ping|list_pods] [--dir DIR] [--certs DIR] [--bastiond PATH]
 *
 * Defaults: 3 rounds, 3 s, 4 channels x 16 in flight, 2 workers, Ping, audit directories under
 * $TMPDIR or /tmp, certificates made by certs/gen-dev-certs.sh into a temporary directory,
 * bastiond from the directory of this program. Each audit log is then checked with
 * `bastion-audit verify` (beside bastiond) and its record count printed: in best-effort mode
 * fewer records than calls means records were dropped. Figures depend on the file system's
 * fdatasync latency above all: quote them with the command and the file system. */
#include "clock.h"

#include <bastion/bastion.h>
#include <bastion/v1/mcp.pb-c.h>

#include <errno.h>
#include <ftw.h>
#include <inttypes.h>
#include <limits.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/statfs.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#define MAX_ROUNDS 50
#define MAX_CHANNELS 64
#define MAX_INFLIGHT 1024
#define N_MODES 3
#define WARMUP_NS (500 * BST_NS_PER_MS)

static const char *const mode_names[N_MODES] = {"blocking", "batch", "best-effort"};

struct opts {
    int rounds;
    int seconds;
    int channels;
    int inflight;
    int workers;
    int list_pods; /* CallTool list_pods in namespace default, instead of Ping */
    const char *dir;
    const char *certs;
    char bastiond[PATH_MAX];
    char tool[PATH_MAX];
};

struct run;

/* One channel and the calls it keeps in flight (the completion callback's user pointer). */
struct lane {
    struct run *run;
    bastion_channel *ch;
};

/* One bastiond under load. Counters are bumped from the channels' I/O threads. */
struct run {
    const struct opts *o;
    struct lane lanes[MAX_CHANNELS];
    atomic_int stopping;
    atomic_long in_flight;
    atomic_long ok;
    atomic_long failed;
    atomic_int first_error; /* bastion_status of the first failure, for the report */
    Bastion__V1__PingRequest ping;
    Bastion__V1__CallToolRequest call_tool;
    Bastion__V1__ListPodsArgs list_pods;
};

/* What one measurement produced. */
struct result {
    double calls_per_s;
    long ok;       /* all successful calls, warm-up included */
    long failed;   /* all failed calls */
    long records;  /* records in the audit log (bastion-audit verify); -1 if unknown */
    int verify_rc; /* exit status of bastion-audit verify */
    int first_error;
};

static void sleep_ns(int64_t ns)
{
    struct timespec ts = {(time_t)(ns / BST_NS_PER_S), (long)(ns % BST_NS_PER_S)};
    while (nanosleep(&ts, &ts) != 0 && errno == EINTR)
        ;
}

/* out = dir "/" name; -1 when it does not fit. */
static int path_of(char *out, size_t size, const char *dir, const char *name)
{
    int n = snprintf(out, size, "%s/%s", dir, name);
    return n >= 0 && (size_t)n < size ? 0 : -1;
}

static int rm_one(const char *p, const struct stat *st, int flag, struct FTW *ftw)
{
    (void)st;
    (void)flag;
    (void)ftw;
    return remove(p);
}

static void rm_tree(const char *dir)
{
    nftw(dir, rm_one, 16, FTW_DEPTH | FTW_PHYS);
}

static int start_call(struct lane *l);

/* Completion callback, on a channel's I/O thread: count, then keep the window full. */
static void on_done(bastion_call *call, bastion_status status, const char *message,
                    ProtobufCMessage *response, void *user)
{
    struct lane *l = user;
    struct run *r = l->run;
    int none = 0;
    (void)call;
    (void)message;
    if (status == BASTION_OK) {
        atomic_fetch_add(&r->ok, 1);
    } else {
        atomic_fetch_add(&r->failed, 1);
        atomic_compare_exchange_strong(&r->first_error, &none, (int)status);
    }
    bastion_response_free(response);
    if (atomic_load(&r->stopping) || start_call(l) != 0)
        atomic_fetch_sub(&r->in_flight, 1);
}

static int start_call(struct lane *l)
{
    struct run *r = l->run;
    const ProtobufCMessage *req = r->o->list_pods ? &r->call_tool.base : &r->ping.base;
    return bastion_call_start(l->ch, &bastion__v1__mcp__descriptor,
                              r->o->list_pods ? "CallTool" : "Ping", req, NULL, on_done, l,
                              NULL) == BASTION_OK
               ? 0
               : -1;
}

/* Runs argv with stdout and stderr to log (or inherited when NULL); returns the pid or -1. */
static pid_t spawn(char *const argv[], const char *log)
{
    pid_t pid;
    fflush(NULL); /* or the child's freopen writes our buffered output a second time */
    pid = fork();
    if (pid != 0)
        return pid;
    if (log != NULL) {
        FILE *f = freopen(log, "w", stdout);
        if (f == NULL || dup2(STDOUT_FILENO, STDERR_FILENO) < 0)
            _exit(127);
    }
    execv(argv[0], argv);
    _exit(127);
}

static int wait_exit(pid_t pid, int64_t timeout_ms)
{
    int64_t deadline = bst_mono_ns() + timeout_ms * BST_NS_PER_MS;
    int status;
    for (;;) {
        pid_t w = waitpid(pid, &status, WNOHANG);
        if (w == pid)
            return WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status);
        if (w < 0)
            return -1;
        if (bst_mono_ns() > deadline) {
            kill(pid, SIGKILL);
            waitpid(pid, &status, 0);
            return -1;
        }
        sleep_ns(10 * BST_NS_PER_MS);
    }
}

static int write_config(const char *path, const struct opts *o, const char *audit_dir,
                        const char *mode)
{
    FILE *f = fopen(path, "w");
    if (f == NULL)
        return -1;
    fprintf(f,
            "listen: \"127.0.0.1:0\"\nworkers: %d\nlog_level: warn\ndrain_timeout: 5s\n"
            "tls:\n  cert: %s/server.crt\n  key: %s/server.key\n  client_ca: %s/ca.crt\n"
            "  client_auth: require\n"
            "limits:\n  max_concurrent_streams: %d\n"
            "rbac:\n  policy: %s/configs/rbac-policies.yaml\n"
            "audit:\n  directory: %s\n  mode: %s\n",
            o->workers, o->certs, o->certs, o->certs, o->inflight > 100 ? o->inflight : 100,
            BASTION_SOURCE_DIR, audit_dir, mode);
    return fclose(f) == 0 ? 0 : -1;
}

/* Starts bastiond on config; waits for its port file. Returns the pid, or -1. */
static pid_t start_server(const struct opts *o, const char *root, int *port)
{
    char config[PATH_MAX], port_file[PATH_MAX], log[PATH_MAX];
    char *argv[6];
    pid_t pid;
    int64_t deadline = bst_mono_ns() + 20 * BST_NS_PER_S;

    if (path_of(config, sizeof(config), root, "bastion.yaml") != 0 ||
        path_of(port_file, sizeof(port_file), root, "port") != 0 ||
        path_of(log, sizeof(log), root, "bastiond.log") != 0)
        return -1;
    argv[0] = (char *)o->bastiond;
    argv[1] = "--config";
    argv[2] = config;
    argv[3] = "--port-file";
    argv[4] = port_file;
    argv[5] = NULL;
    if ((pid = spawn(argv, log)) < 0)
        return -1;
    while (bst_mono_ns() < deadline) {
        FILE *f = fopen(port_file, "r");
        if (f != NULL) {
            int ok = fscanf(f, "%d", port) == 1;
            fclose(f);
            if (ok)
                return pid;
        }
        if (waitpid(pid, NULL, WNOHANG) == pid) {
            fprintf(stderr, "bastiond_bench: bastiond exited at start; see %s\n", log);
            return -1;
        }
        sleep_ns(10 * BST_NS_PER_MS);
    }
    fprintf(stderr, "bastiond_bench: bastiond did not start; see %s\n", log);
    kill(pid, SIGKILL);
    waitpid(pid, NULL, 0);
    return -1;
}

/* Counts the records of an audit directory with `bastion-audit verify`; -1 if unknown. */
static long verify_log(const struct opts *o, const char *audit_dir, int *rc)
{
    char line[512];
    char *argv[5] = {(char *)o->tool, "verify", "--dir", (char *)audit_dir, NULL};
    long segments = 0, records = -1;
    int fds[2];
    pid_t pid;
    FILE *p;

    *rc = -1;
    if (pipe(fds) != 0)
        return -1;
    fflush(NULL);
    if ((pid = fork()) == 0) {
        if (dup2(fds[1], STDOUT_FILENO) < 0 || dup2(fds[1], STDERR_FILENO) < 0)
            _exit(127);
        close(fds[0]);
        close(fds[1]);
        execv(argv[0], argv);
        _exit(127);
    }
    close(fds[1]);
    if (pid < 0 || (p = fdopen(fds[0], "r")) == NULL) {
        close(fds[0]);
        if (pid > 0)
            wait_exit(pid, 60000);
        return -1;
    }
    while (fgets(line, sizeof(line), p) != NULL)
        if (records < 0 && sscanf(line, "OK %ld segments, %ld records", &segments, &records) != 2)
            records = -1;
    fclose(p);
    *rc = wait_exit(pid, 60000);
    return records;
}

static int open_channels(struct run *r, int port)
{
    bastion_options *opts = NULL;
    char target[64], ca[PATH_MAX], crt[PATH_MAX], key[PATH_MAX], err[256] = "";
    int rc = -1;

    snprintf(target, sizeof(target), "127.0.0.1:%d", port);
    if (path_of(ca, sizeof(ca), r->o->certs, "ca.crt") != 0 ||
        path_of(crt, sizeof(crt), r->o->certs, "admin.crt") != 0 ||
        path_of(key, sizeof(key), r->o->certs, "admin.key") != 0 ||
        bastion_options_new(&opts) != BASTION_OK ||
        bastion_options_set_target(opts, target) != BASTION_OK ||
        bastion_options_set_server_name(opts, "localhost") != BASTION_OK ||
        bastion_options_set_ca_file(opts, ca) != BASTION_OK ||
        bastion_options_set_client_cert(opts, crt, key) != BASTION_OK ||
        bastion_options_set_default_deadline_ms(opts, 30000) != BASTION_OK)
        goto fail;
    for (int i = 0; i < r->o->channels; i++) {
        r->lanes[i].run = r;
        if (bastion_channel_new(&r->lanes[i].ch, opts, err, sizeof(err)) != BASTION_OK) {
            fprintf(stderr, "bastiond_bench: channel: %s\n", err);
            goto fail;
        }
    }
    rc = 0;
fail:
    bastion_options_free(opts);
    return rc;
}

/* One bastiond in one audit mode: start, load, measure, stop, verify. */
static int measure(const struct opts *o, int mode, struct result *res)
{
    struct run r;
    char root[PATH_MAX], audit_dir[PATH_MAX + 16], config[PATH_MAX + 16];
    int port = 0, rc = -1;
    pid_t pid = -1;
    long ok0, ok1;
    int64_t t0, t1;

    memset(&r, 0, sizeof(r));
    memset(res, 0, sizeof(*res));
    res->records = -1;
    r.o = o;
    bastion__v1__ping_request__init(&r.ping);
    bastion__v1__call_tool_request__init(&r.call_tool);
    bastion__v1__list_pods_args__init(&r.list_pods);
    r.list_pods.namespace_ = "default";
    r.call_tool.name = "list_pods";
    r.call_tool.arguments_case = BASTION__V1__CALL_TOOL_REQUEST__ARGUMENTS_LIST_PODS;
    r.call_tool.list_pods = &r.list_pods;

    if (path_of(root, sizeof(root), o->dir, "bastiond-bench-XXXXXX") != 0 ||
        mkdtemp(root) == NULL) {
        fprintf(stderr, "bastiond_bench: mkdtemp %s: %s\n", root, strerror(errno));
        return -1;
    }
    if (path_of(audit_dir, sizeof(audit_dir), root, "audit") != 0 ||
        path_of(config, sizeof(config), root, "bastion.yaml") != 0 ||
        write_config(config, o, audit_dir, mode_names[mode]) != 0 ||
        (pid = start_server(o, root, &port)) < 0 || open_channels(&r, port) != 0)
        goto out;

    atomic_store(&r.in_flight, (long)o->channels * o->inflight);
    for (int i = 0; i < o->channels; i++)
        for (int j = 0; j < o->inflight; j++)
            if (start_call(&r.lanes[i]) != 0)
                atomic_fetch_sub(&r.in_flight, 1);
    sleep_ns(WARMUP_NS);
    t0 = bst_mono_ns();
    ok0 = atomic_load(&r.ok);
    sleep_ns((int64_t)o->seconds * BST_NS_PER_S);
    ok1 = atomic_load(&r.ok);
    t1 = bst_mono_ns();
    atomic_store(&r.stopping, 1);
    for (int64_t until = bst_mono_ns() + 30 * BST_NS_PER_S;
         atomic_load(&r.in_flight) > 0 && bst_mono_ns() < until;)
        sleep_ns(BST_NS_PER_MS);
    res->calls_per_s = (double)(ok1 - ok0) / ((double)(t1 - t0) / 1e9);
    res->ok = atomic_load(&r.ok);
    res->failed = atomic_load(&r.failed);
    res->first_error = atomic_load(&r.first_error);
    rc = 0;
out:
    for (int i = 0; i < o->channels; i++)
        bastion_channel_free(r.lanes[i].ch);
    if (pid > 0) {
        kill(pid, SIGTERM);
        if (wait_exit(pid, 20000) != 0) {
            fprintf(stderr, "bastiond_bench: bastiond (%s) did not exit cleanly; kept %s\n",
                    mode_names[mode], root);
            return -1;
        }
        if (rc == 0)
            res->records = verify_log(o, audit_dir, &res->verify_rc);
    }
    if (rc == 0)
        rm_tree(root);
    return rc;
}

static int cmp_double(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;
    return (x > y) - (x < y);
}

static double median(const double *v, int n)
{
    double s[MAX_ROUNDS];
    memcpy(s, v, (size_t)n * sizeof(*v));
    qsort(s, (size_t)n, sizeof(*s), cmp_double);
    return n % 2 ? s[n / 2] : (s[n / 2 - 1] + s[n / 2]) / 2;
}

static int int_arg(const char *s, int lo, int hi, int *out)
{
    char *end;
    long v;
    errno = 0;
    v = strtol(s, &end, 10);
    if (errno != 0 || end == s || *end != '\0' || v < lo || v > hi)
        return -1;
    *out = (int)v;
    return 0;
}

static void usage(FILE *f)
{
    fprintf(f, "usage: bastiond_bench [--rounds N] [--seconds S] [--channels C] [--inflight W]\n"
               "                      [--workers K] [--method ping|list_pods] [--dir DIR]\n"
               "                      [--certs DIR] [--bastiond PATH]\n");
}

/* Fills the paths of bastiond and bastion-audit from the directory of this program. */
static int sibling(char *out, size_t size, const char *name)
{
    char self[PATH_MAX];
    ssize_t n = readlink("/proc/self/exe", self, sizeof(self) - 1);
    char *slash;
    if (n <= 0)
        return -1;
    self[n] = '\0';
    if ((slash = strrchr(self, '/')) == NULL)
        return -1;
    *slash = '\0';
    return path_of(out, size, self, name);
}

/* Makes dev certificates with certs/gen-dev-certs.sh in tmp/pki, tmp a new temporary directory
 * (the caller removes it). */
static int make_certs(const char *base, char *tmp, char *out, size_t size)
{
    char script[PATH_MAX];
    char *argv[3];
    pid_t pid;

    if (path_of(tmp, size, base, "bastiond-bench-pki-XXXXXX") != 0 || mkdtemp(tmp) == NULL ||
        path_of(out, size, tmp, "pki") != 0 ||
        path_of(script, sizeof(script), BASTION_SOURCE_DIR, "certs/gen-dev-certs.sh") != 0)
        return -1;
    argv[0] = script;
    argv[1] = out;
    argv[2] = NULL;
    if ((pid = spawn(argv, "/dev/null")) < 0 || wait_exit(pid, 120000) != 0) {
        fprintf(stderr, "bastiond_bench: %s failed\n", script);
        return -1;
    }
    return 0;
}

int main(int argc, char **argv)
{
    struct opts o = {.rounds = 3, .seconds = 3, .channels = 4, .inflight = 16, .workers = 2};
    static char certs[PATH_MAX], certs_root[PATH_MAX];
    double cps[N_MODES][MAX_ROUNDS];
    struct result res[N_MODES][MAX_ROUNDS];
    struct statfs sf;
    int bad = 0;

    signal(SIGPIPE, SIG_IGN);
    o.dir = getenv("TMPDIR") != NULL && getenv("TMPDIR")[0] != '\0' ? getenv("TMPDIR") : "/tmp";
    if (sibling(o.bastiond, sizeof(o.bastiond), "bastiond") != 0 ||
        sibling(o.tool, sizeof(o.tool), "bastion-audit") != 0) {
        fprintf(stderr, "bastiond_bench: cannot find this program's directory\n");
        return 2;
    }
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i], *v = i + 1 < argc ? argv[i + 1] : NULL;
        int bad_arg = 0;
        if (strcmp(a, "-h") == 0 || strcmp(a, "--help") == 0) {
            usage(stdout);
            return 0;
        }
        if (v == NULL)
            bad_arg = 1;
        else if (strcmp(a, "--rounds") == 0)
            bad_arg = int_arg(v, 1, MAX_ROUNDS, &o.rounds);
        else if (strcmp(a, "--seconds") == 0)
            bad_arg = int_arg(v, 1, 3600, &o.seconds);
        else if (strcmp(a, "--channels") == 0)
            bad_arg = int_arg(v, 1, MAX_CHANNELS, &o.channels);
        else if (strcmp(a, "--inflight") == 0)
            bad_arg = int_arg(v, 1, MAX_INFLIGHT, &o.inflight);
        else if (strcmp(a, "--workers") == 0)
            bad_arg = int_arg(v, 1, 256, &o.workers);
        else if (strcmp(a, "--method") == 0 && strcmp(v, "ping") == 0)
            o.list_pods = 0;
        else if (strcmp(a, "--method") == 0 && strcmp(v, "list_pods") == 0)
            o.list_pods = 1;
        else if (strcmp(a, "--dir") == 0)
            o.dir = v;
        else if (strcmp(a, "--certs") == 0)
            o.certs = v;
        else if (strcmp(a, "--bastiond") == 0)
            bad_arg = snprintf(o.bastiond, sizeof(o.bastiond), "%s", v) >= (int)sizeof(o.bastiond);
        else
            bad_arg = 1;
        if (bad_arg) {
            fprintf(stderr, "bastiond_bench: bad argument %s\n", a);
            usage(stderr);
            return 2;
        }
        i++;
    }
    if (o.certs == NULL) {
        if (make_certs(o.dir, certs_root, certs, sizeof(certs)) != 0) {
            if (certs_root[0] != '\0')
                rm_tree(certs_root);
            return 2;
        }
        o.certs = certs;
    }

    printf("bastiond_bench: %d rounds x %d s (after %d ms warm-up), %d channels x %d calls in "
           "flight, %s, %d workers\naudit directories under %s (statfs type 0x%lx), "
           "bastiond %s\n\n",
           o.rounds, o.seconds, (int)(WARMUP_NS / BST_NS_PER_MS), o.channels, o.inflight,
           o.list_pods ? "CallTool list_pods" : "Mcp.Ping", o.workers, o.dir,
           statfs(o.dir, &sf) == 0 ? (unsigned long)sf.f_type : 0UL, o.bastiond);
    printf("%-6s %-12s %12s %10s %8s %10s  %s\n", "round", "mode", "calls/s", "calls", "failed",
           "records", "verify");
    for (int round = 0; round < o.rounds; round++) {
        for (int k = 0; k < N_MODES; k++) {
            int m = (k + round) % N_MODES; /* rotate the order: no mode always goes first */
            struct result *x = &res[m][round];
            if (measure(&o, m, x) != 0) {
                bad = 1;
                goto done;
            }
            cps[m][round] = x->calls_per_s;
            printf("%-6d %-12s %12.0f %10ld %8ld %10ld  %s", round + 1, mode_names[m],
                   x->calls_per_s, x->ok, x->failed, x->records,
                   x->verify_rc == 0 ? "OK" : "FAULT");
            if (x->failed != 0)
                printf("  (first failure: %s)", bastion_status_name(x->first_error));
            printf("\n");
            fflush(stdout);
            /* Every successful call has its record: blocking and batch never drop one. */
            if (x->verify_rc != 0 || (m != 2 && x->records < x->ok))
                bad = 1;
        }
    }
    printf("\nmedian calls/s over %d rounds:\n", o.rounds);
    for (int m = 0; m < N_MODES; m++)
        printf("  %-12s %10.0f\n", mode_names[m], median(cps[m], o.rounds));
    printf("  blocking/batch = %.3f   best-effort/batch = %.3f\n",
           median(cps[0], o.rounds) / median(cps[1], o.rounds),
           median(cps[2], o.rounds) / median(cps[1], o.rounds));
    if (bad)
        fprintf(stderr, "bastiond_bench: an audit log failed verification or lost records\n");
done:
    if (certs_root[0] != '\0')
        rm_tree(certs_root);
    return bad;
}
