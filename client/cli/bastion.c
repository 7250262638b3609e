/* `bastion`: the command-line client of Bastion, built on libbastion. One command per run: it
 * opens a channel, makes one or a few calls and prints the result as a table (text for humans)
 * or JSON (protobuf JSON conventions, through common/pbjson). Errors go to stderr as
 * "STATUS_NAME: message" and the exit code says which class of failure happened, so scripts can
 * branch on it (see usage() and docs/client.md). Everything the server sends is sanitised before
 * it reaches the terminal. */
#include <bastion/bastion.h>

#include "bastion/v1/auth.pb-c.h"
#include "bastion/v1/mcp.pb-c.h"
#include "pbjson.h"
#include "text.h"

#include <errno.h>
#include <jansson.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

/* Exit codes: stable, documented in usage() and docs/client.md. */
enum {
    EXIT_OK = 0,
    EXIT_USAGE = 1,       /* bad command line or unreadable local files */
    EXIT_CONNECT = 2,     /* cannot reach the server: connection, TLS, UNAVAILABLE */
    EXIT_AUTHN = 3,       /* UNAUTHENTICATED */
    EXIT_DENIED = 4,      /* PERMISSION_DENIED */
    EXIT_INVALID = 5,     /* INVALID_ARGUMENT, OUT_OF_RANGE, FAILED_PRECONDITION */
    EXIT_NOT_FOUND = 6,   /* NOT_FOUND, ALREADY_EXISTS */
    EXIT_DEADLINE = 7,    /* DEADLINE_EXCEEDED, CANCELLED */
    EXIT_EXHAUSTED = 8,   /* RESOURCE_EXHAUSTED, ABORTED: try again later */
    EXIT_UNSUPPORTED = 9, /* UNIMPLEMENTED */
    EXIT_SERVER = 10,     /* INTERNAL, UNKNOWN, DATA_LOSS, a protocol violation */
    EXIT_TOOL_ERROR = 11, /* the call worked, the tool reported a failure (is_error) */
};

#define DEFAULT_SERVER "localhost:8443"
#define DEFAULT_TIMEOUT_MS 30000
#define MAX_PAGES 1000

struct cli {
    const char *server, *ca, *cert, *key, *token, *api_key, *server_name;
    int64_t timeout_ms;
    int json;
    const char *json_args; /* call --json */
    bastion_channel *ch;
    bastion_call_options *co;
};

static void usage(FILE *f)
{
    fprintf(
        f,
        "Usage: bastion [flags] COMMAND [ARGS]\n"
        "\n"
        "Commands:\n"
        "  ping                       check that the server answers (Mcp.Ping)\n"
        "  tools                      list the tools and the permission each needs\n"
        "  call TOOL [key=value ...]  call a tool; keys are fields of its argument message,\n"
        "                             dotted for nested fields (bastion call list_pods\n"
        "                             namespace=default)\n"
        "  call TOOL --json '{...}'   the same, arguments as a JSON object ('-' reads stdin)\n"
        "  resources                  list the resources\n"
        "  read URI                   read a resource (k8s://namespaces/NS/pods)\n"
        "  whoami                     show the identity the server resolved for you\n"
        "\n"
        "Flags (each also read from the environment variable shown):\n"
        "  --server HOST:PORT    server address (BASTION_SERVER, default %s)\n"
        "  --ca FILE             CA certificate(s) of the server (BASTION_CA; default: the\n"
        "                        system store)\n"
        "  --cert FILE           client certificate, PEM (BASTION_CERT)\n"
        "  --key FILE            its private key, PEM, mode 0600 (BASTION_KEY)\n"
        "  --token TOKEN         bearer token sent as authorization (BASTION_TOKEN; prefer the\n"
        "                        variable: arguments are visible to other users)\n"
        "  --api-key KEY         API key sent as x-api-key (BASTION_API_KEY)\n"
        "  --server-name NAME    name the server certificate must carry (default: the host)\n"
        "  --timeout DURATION    deadline per call, e.g. 500ms, 10s, 2m (default 30s)\n"
        "  -o, --output FORMAT   table (default) or json\n"
        "  -h, --help            this help;  --version  the client version\n"
        "\n"
        "Errors are printed to stderr as STATUS_NAME: message. Exit codes:\n"
        "  0  success                       6  NOT_FOUND, ALREADY_EXISTS\n"
        "  1  usage or local file error     7  DEADLINE_EXCEEDED, CANCELLED\n"
        "  2  cannot reach the server       8  RESOURCE_EXHAUSTED, ABORTED (retry later)\n"
        "     (E_CONNECT, E_TLS, UNAVAILABLE) 9  UNIMPLEMENTED\n"
        "  3  UNAUTHENTICATED              10  INTERNAL, UNKNOWN, DATA_LOSS, E_PROTOCOL\n"
        "  4  PERMISSION_DENIED            11  the tool reported an error (is_error)\n"
        "  5  INVALID_ARGUMENT, OUT_OF_RANGE, FAILED_PRECONDITION\n",
        DEFAULT_SERVER);
}

static int exit_code(bastion_status s)
{
    switch (s) {
    case BASTION_OK:
        return EXIT_OK;
    case BASTION_E_ARGUMENT:
    case BASTION_E_CREDENTIALS:
        return EXIT_USAGE;
    case BASTION_E_CONNECT:
    case BASTION_E_TLS:
    case BASTION_UNAVAILABLE:
        return EXIT_CONNECT;
    case BASTION_UNAUTHENTICATED:
        return EXIT_AUTHN;
    case BASTION_PERMISSION_DENIED:
        return EXIT_DENIED;
    case BASTION_INVALID_ARGUMENT:
    case BASTION_OUT_OF_RANGE:
    case BASTION_FAILED_PRECONDITION:
        return EXIT_INVALID;
    case BASTION_NOT_FOUND:
    case BASTION_ALREADY_EXISTS:
        return EXIT_NOT_FOUND;
    case BASTION_DEADLINE_EXCEEDED:
    case BASTION_CANCELLED:
        return EXIT_DEADLINE;
    case BASTION_RESOURCE_EXHAUSTED:
    case BASTION_ABORTED:
        return EXIT_EXHAUSTED;
    case BASTION_UNIMPLEMENTED:
        return EXIT_UNSUPPORTED;
    default:
        return EXIT_SERVER;
    }
}

static int usage_error(const char *fmt, ...) __attribute__((format(printf, 1, 2)));

static int usage_error(const char *fmt, ...)
{
    va_list ap;
    fputs("bastion: ", stderr);
    va_start(ap, fmt);
    vfprintf(stderr, fmt, ap);
    va_end(ap);
    fputs("\n(bastion --help shows the commands and flags)\n", stderr);
    return EXIT_USAGE;
}

/* Prints a failed status as "NAME: message" (the message is already sanitised). */
static int report(bastion_status st, const char *msg, const char *request_id)
{
    if (request_id != NULL && request_id[0] != '\0')
        fprintf(stderr, "%s: %s (request id %s)\n", bastion_status_name(st),
                msg[0] ? msg : bastion_strerror(st), request_id);
    else
        fprintf(stderr, "%s: %s\n", bastion_status_name(st), msg[0] ? msg : bastion_strerror(st));
    return exit_code(st);
}

/* ---- output -------------------------------------------------------------------------------- */

/* Writes server text with control characters neutralised, keeping its line structure. */
static void print_text(FILE *f, const char *s)
{
    char line[4096];
    while (s != NULL && *s != '\0') {
        const char *nl = strchr(s, '\n');
        size_t len = nl != NULL ? (size_t)(nl - s) : strlen(s);
        /* Long lines are written in pieces; a piece may end inside a character, which the
         * sanitiser then shows as U+FFFD rather than splitting it. */
        size_t off = 0;
        do {
            size_t piece = len - off > 1024 ? 1024 : len - off;
            bst_text_sanitize(line, sizeof(line), s + off, piece);
            fputs(line, f);
            off += piece;
        } while (off < len);
        fputc('\n', f);
        s = nl != NULL ? nl + 1 : NULL;
    }
}

/* A simple aligned table of sanitised cells. */
struct table {
    size_t cols, rows, cap;
    char **cells; /* rows * cols */
};

static int table_add(struct table *t, const char *const *row)
{
    if (t->rows == t->cap) {
        size_t ncap = t->cap ? t->cap * 2 : 16;
        char **n = realloc(t->cells, ncap * t->cols * sizeof(*n));
        if (n == NULL)
            return -1;
        t->cells = n;
        t->cap = ncap;
    }
    for (size_t c = 0; c < t->cols; c++) {
        const char *v = row[c] != NULL ? row[c] : "";
        char buf[512];
        bst_text_sanitize(buf, sizeof(buf), v, strlen(v));
        t->cells[t->rows * t->cols + c] = strdup(buf);
    }
    t->rows++;
    return 0;
}

static void table_print_free(struct table *t)
{
    size_t width[8] = {0};
    for (size_t r = 0; r < t->rows; r++)
        for (size_t c = 0; c < t->cols; c++) {
            const char *v = t->cells[r * t->cols + c];
            size_t w = v != NULL ? strlen(v) : 0;
            if (w > width[c])
                width[c] = w;
        }
    for (size_t r = 0; r < t->rows; r++) {
        for (size_t c = 0; c < t->cols; c++) {
            const char *v = t->cells[r * t->cols + c];
            if (c + 1 < t->cols)
                printf("%-*s  ", (int)width[c], v != NULL ? v : "");
            else
                printf("%s\n", v != NULL ? v : "");
        }
    }
    for (size_t i = 0; i < t->rows * t->cols; i++)
        free(t->cells[i]);
    free(t->cells);
}

/* Prints a JSON value (ASCII only, so no byte reaches the terminal unescaped). */
static int print_json(json_t *j)
{
    char *s;
    if (j == NULL) {
        /* pbjson refuses strings that are not UTF-8: the server sent bytes JSON cannot carry. */
        fprintf(stderr, "E_PROTOCOL: the response cannot be rendered as JSON (invalid UTF-8?)\n");
        return EXIT_SERVER;
    }
    s = json_dumps(j, JSON_INDENT(2) | JSON_ENSURE_ASCII | JSON_PRESERVE_ORDER);
    json_decref(j);
    if (s == NULL) {
        fprintf(stderr, "E_NOMEM: cannot render the response as JSON\n");
        return EXIT_SERVER;
    }
    puts(s);
    free(s);
    return EXIT_OK;
}

static int print_message_json(const ProtobufCMessage *m)
{
    return print_json(bst_pbjson_encode(m, NULL, NULL, 0));
}

/* ---- calls --------------------------------------------------------------------------------- */

static bastion_status rpc(struct cli *cli, const ProtobufCServiceDescriptor *svc,
                          const char *method, const ProtobufCMessage *req, ProtobufCMessage **resp,
                          int *exit_out)
{
    char msg[512], rid[40];
    bastion_status st =
        bastion_call_blocking(cli->ch, svc, method, req, cli->co, resp, msg, sizeof(msg), rid);
    if (st != BASTION_OK)
        *exit_out = report(st, msg, rid);
    return st;
}

static int cmd_ping(struct cli *cli)
{
    Bastion__V1__PingRequest req = BASTION__V1__PING_REQUEST__INIT;
    ProtobufCMessage *resp = NULL;
    struct timespec a, b;
    int rc = EXIT_OK;
    double ms;

    clock_gettime(CLOCK_MONOTONIC, &a);
    if (rpc(cli, &bastion__v1__mcp__descriptor, "Ping", &req.base, &resp, &rc) != BASTION_OK)
        return rc;
    clock_gettime(CLOCK_MONOTONIC, &b);
    ms = (double)(b.tv_sec - a.tv_sec) * 1e3 + (double)(b.tv_nsec - a.tv_nsec) / 1e6;
    if (cli->json) {
        json_t *j = json_pack("{s:s,s:f}", "server", cli->server, "rtt_ms", ms);
        rc = print_json(j);
    } else {
        printf("pong from %s in %.1f ms\n", cli->server, ms);
    }
    bastion_response_free(resp);
    return rc;
}

static const char *hints(const Bastion__V1__ToolAnnotations *a, char *buf, size_t len)
{
    buf[0] = '\0';
    if (a == NULL)
        return buf;
    snprintf(buf, len, "%s%s%s", a->has_read_only_hint && a->read_only_hint ? "read-only " : "",
             a->has_destructive_hint && a->destructive_hint ? "destructive " : "",
             a->has_idempotent_hint && a->idempotent_hint ? "idempotent" : "");
    return buf;
}

static int cmd_tools(struct cli *cli)
{
    Bastion__V1__ListToolsRequest req = BASTION__V1__LIST_TOOLS_REQUEST__INIT;
    struct table t = {4, 0, 0, NULL};
    json_t *all = cli->json ? json_array() : NULL;
    char *cursor = NULL;
    int rc = EXIT_OK;
    static const char *const head[] = {"NAME", "PERMISSION", "HINTS", "TITLE"};

    if (!cli->json)
        table_add(&t, head);
    for (int page = 0; page < MAX_PAGES; page++) {
        ProtobufCMessage *m = NULL;
        Bastion__V1__ListToolsResponse *r;
        req.cursor = cursor;
        if (rpc(cli, &bastion__v1__mcp__descriptor, "ListTools", &req.base, &m, &rc) != BASTION_OK)
            goto out;
        r = (Bastion__V1__ListToolsResponse *)m;
        for (size_t i = 0; i < r->n_tools; i++) {
            const Bastion__V1__Tool *tool = r->tools[i];
            char h[64];
            const char *row[] = {tool->name, tool->permission,
                                 hints(tool->annotations, h, sizeof(h)), tool->title};
            if (all != NULL)
                json_array_append_new(all, bst_pbjson_encode(&tool->base, NULL, NULL, 0));
            else
                table_add(&t, row);
        }
        free(cursor);
        cursor = r->next_cursor != NULL && r->next_cursor[0] ? strdup(r->next_cursor) : NULL;
        bastion_response_free(m);
        if (cursor == NULL)
            break;
    }
    if (all != NULL) {
        rc = print_json(json_pack("{s:O}", "tools", all));
    } else {
        table_print_free(&t);
        t.rows = 0;
    }
out:
    json_decref(all);
    if (t.rows > 0) {
        for (size_t i = 0; i < t.rows * t.cols; i++)
            free(t.cells[i]);
        free(t.cells);
    }
    free(cursor);
    return rc;
}

static int cmd_resources(struct cli *cli)
{
    Bastion__V1__ListResourcesRequest req = BASTION__V1__LIST_RESOURCES_REQUEST__INIT;
    struct table t = {3, 0, 0, NULL};
    json_t *all = cli->json ? json_array() : NULL;
    char *cursor = NULL;
    int rc = EXIT_OK;
    static const char *const head[] = {"URI", "NAME", "DESCRIPTION"};

    if (!cli->json)
        table_add(&t, head);
    for (int page = 0; page < MAX_PAGES; page++) {
        ProtobufCMessage *m = NULL;
        Bastion__V1__ListResourcesResponse *r;
        req.cursor = cursor;
        if (rpc(cli, &bastion__v1__mcp__descriptor, "ListResources", &req.base, &m, &rc) !=
            BASTION_OK)
            goto out;
        r = (Bastion__V1__ListResourcesResponse *)m;
        for (size_t i = 0; i < r->n_resources; i++) {
            const Bastion__V1__Resource *res = r->resources[i];
            const char *row[] = {res->uri, res->name,
                                 res->description != NULL ? res->description : res->title};
            if (all != NULL)
                json_array_append_new(all, bst_pbjson_encode(&res->base, NULL, NULL, 0));
            else
                table_add(&t, row);
        }
        free(cursor);
        cursor = r->next_cursor != NULL && r->next_cursor[0] ? strdup(r->next_cursor) : NULL;
        bastion_response_free(m);
        if (cursor == NULL)
            break;
    }
    if (all != NULL) {
        rc = print_json(json_pack("{s:O}", "resources", all));
    } else {
        table_print_free(&t);
        t.rows = 0;
    }
out:
    json_decref(all);
    if (t.rows > 0) {
        for (size_t i = 0; i < t.rows * t.cols; i++)
            free(t.cells[i]);
        free(t.cells);
    }
    free(cursor);
    return rc;
}

static int cmd_read(struct cli *cli, const char *uri)
{
    Bastion__V1__ReadResourceRequest req = BASTION__V1__READ_RESOURCE_REQUEST__INIT;
    ProtobufCMessage *m = NULL;
    Bastion__V1__ReadResourceResponse *r;
    int rc = EXIT_OK;

    req.uri = (char *)uri;
    if (rpc(cli, &bastion__v1__mcp__descriptor, "ReadResource", &req.base, &m, &rc) != BASTION_OK)
        return rc;
    r = (Bastion__V1__ReadResourceResponse *)m;
    if (cli->json) {
        rc = print_message_json(m);
    } else {
        for (size_t i = 0; i < r->n_contents; i++)
            print_text(stdout, r->contents[i]->text);
    }
    bastion_response_free(m);
    return rc;
}

static void fmt_time(int64_t unix_s, char *buf, size_t len)
{
    time_t t = (time_t)unix_s;
    struct tm tm;
    if (unix_s <= 0 || gmtime_r(&t, &tm) == NULL ||
        strftime(buf, len, "%Y-%m-%dT%H:%M:%SZ", &tm) == 0)
        snprintf(buf, len, "-");
}

static int cmd_whoami(struct cli *cli)
{
    Bastion__V1__WhoAmIRequest req = BASTION__V1__WHO_AM_IREQUEST__INIT;
    ProtobufCMessage *m = NULL;
    Bastion__V1__WhoAmIResponse *r;
    const Bastion__V1__Principal *p;
    struct table t = {2, 0, 0, NULL};
    int rc = EXIT_OK;
    char expires[40], groups[512] = "", perms[1024] = "";

    if (rpc(cli, &bastion__v1__auth__descriptor, "WhoAmI", &req.base, &m, &rc) != BASTION_OK)
        return rc;
    r = (Bastion__V1__WhoAmIResponse *)m;
    if (cli->json) {
        rc = print_message_json(m);
        bastion_response_free(m);
        return rc;
    }
    p = r->principal;
    if (p != NULL) {
        const ProtobufCEnumValue *mech =
            p->has_mechanism ? protobuf_c_enum_descriptor_get_value(
                                   &bastion__v1__auth_mechanism__descriptor, p->mechanism)
                             : NULL;
        char mechanism[32] = "-";
        size_t o = 0;
        /* AUTH_MECHANISM_MTLS -> mtls, as the server's logs spell it. */
        if (mech != NULL && strncmp(mech->name, "AUTH_MECHANISM_", 15) == 0) {
            snprintf(mechanism, sizeof(mechanism), "%s", mech->name + 15);
            for (char *q = mechanism; *q != '\0'; q++)
                *q = (char)(*q >= 'A' && *q <= 'Z' ? *q - 'A' + 'a' : *q);
        }
        for (size_t i = 0; i < p->n_groups && o < sizeof(groups); i++)
            o += (size_t)snprintf(groups + o, sizeof(groups) - o, "%s%s", i ? ", " : "",
                                  p->groups[i]);
        o = 0;
        for (size_t i = 0; i < p->n_permissions && o < sizeof(perms); i++)
            o += (size_t)snprintf(perms + o, sizeof(perms) - o, "%s%s", i ? ", " : "",
                                  p->permissions[i]);
        fmt_time(p->has_expires_at_unix ? p->expires_at_unix : 0, expires, sizeof(expires));
        {
            const char *rows[][2] = {
                {"principal:", p->name},
                {"mechanism:", mechanism},
                {"groups:", groups[0] ? groups : "-"},
                {"tenant:", p->tenant != NULL && p->tenant[0] ? p->tenant : "-"},
                {"permissions:", perms[0] ? perms : "-"},
                {"certificate:", p->certificate_identity},
                {"fingerprint:", p->certificate_fingerprint_sha256},
                {"expires:", expires},
                {"request id:", r->request_id},
            };
            for (size_t i = 0; i < sizeof(rows) / sizeof(rows[0]); i++)
                table_add(&t, rows[i]);
        }
        table_print_free(&t);
    }
    bastion_response_free(m);
    return rc;
}

static char *read_stdin(void)
{
    size_t cap = 4096, len = 0;
    char *buf = malloc(cap);
    while (buf != NULL) {
        size_t n;
        if (len + 1 == cap) {
            char *nb;
            if (cap >= 16 * 1024 * 1024) {
                free(buf);
                return NULL;
            }
            nb = realloc(buf, cap * 2);
            if (nb == NULL) {
                free(buf);
                return NULL;
            }
            buf = nb;
            cap *= 2;
        }
        n = fread(buf + len, 1, cap - 1 - len, stdin);
        len += n;
        if (n == 0)
            break;
    }
    if (buf != NULL)
        buf[len] = '\0';
    return buf;
}

/* Builds the tool's argument message from key=value pairs or JSON. */
static int build_args(struct cli *cli, const ProtobufCFieldDescriptor *f, char **kv, size_t n,
                      ProtobufCMessage **out)
{
    struct bst_err err = {0, ""};
    enum bst_status st;

    if (cli->json_args != NULL) {
        json_error_t je;
        char *text = strcmp(cli->json_args, "-") == 0 ? read_stdin() : NULL;
        json_t *j = json_loads(text != NULL ? text : cli->json_args, JSON_REJECT_DUPLICATES, &je);
        free(text);
        if (j == NULL)
            return usage_error("--json: invalid JSON at line %d column %d: %s", je.line, je.column,
                               je.text);
        if (!json_is_object(j)) {
            json_decref(j);
            return usage_error("--json: the arguments must be a JSON object");
        }
        st = bst_pbjson_decode(f->descriptor, j, NULL, out, &err);
        json_decref(j);
    } else {
        st = bst_pbjson_decode_kv(f->descriptor, kv, n, NULL, out, &err);
    }
    if (st != BST_OK)
        return usage_error("arguments of %s: %s", f->name, err.msg);
    return EXIT_OK;
}

static int cmd_call(struct cli *cli, const char *tool, char **kv, size_t n)
{
    const ProtobufCMessageDescriptor *d = &bastion__v1__call_tool_request__descriptor;
    const ProtobufCFieldDescriptor *f = protobuf_c_message_descriptor_get_field_by_name(d, tool);
    Bastion__V1__CallToolRequest req = BASTION__V1__CALL_TOOL_REQUEST__INIT;
    ProtobufCMessage *args = NULL, *m = NULL;
    Bastion__V1__CallToolResponse *r;
    int rc;

    /* The tool's arguments are the member of the `arguments` oneof named after it. */
    if (f == NULL || f->type != PROTOBUF_C_TYPE_MESSAGE ||
        !(f->flags & PROTOBUF_C_FIELD_FLAG_ONEOF))
        return usage_error("unknown tool '%s' (bastion tools lists them)", tool);
    if (cli->json_args != NULL && n > 0)
        return usage_error("give the arguments either as key=value or with --json, not both");
    if ((rc = build_args(cli, f, kv, n, &args)) != EXIT_OK)
        return rc;
    req.name = (char *)tool;
    *(uint32_t *)((char *)&req + f->quantifier_offset) = f->id;
    *(ProtobufCMessage **)((char *)&req + f->offset) = args;
    rc = EXIT_OK;
    if (rpc(cli, &bastion__v1__mcp__descriptor, "CallTool", &req.base, &m, &rc) != BASTION_OK)
        goto out;
    r = (Bastion__V1__CallToolResponse *)m;
    if (cli->json) {
        rc = print_message_json(m);
        if (rc == EXIT_OK && r->has_is_error && r->is_error)
            rc = EXIT_TOOL_ERROR;
    } else if (r->has_is_error && r->is_error) {
        fputs("TOOL_ERROR: ", stderr);
        print_text(stderr, r->text != NULL && r->text[0] ? r->text : "the tool failed");
        rc = EXIT_TOOL_ERROR;
    } else {
        print_text(stdout, r->text);
    }
out:
    bastion_response_free(m);
    protobuf_c_message_free_unpacked(args, NULL);
    return rc;
}

/* ---- command line -------------------------------------------------------------------------- */

/* Parses "500ms", "10s", "2m", "1h" or plain milliseconds. Returns 0 or -1. */
static int parse_duration(const char *s, int64_t *ms)
{
    char *end;
    long long v;
    int64_t mult = 1;
    errno = 0;
    v = strtoll(s, &end, 10);
    if (errno != 0 || end == s || v <= 0 || v > 100LL * 86400 * 1000)
        return -1;
    if (strcmp(end, "ms") == 0 || *end == '\0')
        mult = 1;
    else if (strcmp(end, "s") == 0)
        mult = 1000;
    else if (strcmp(end, "m") == 0)
        mult = 60000;
    else if (strcmp(end, "h") == 0)
        mult = 3600000;
    else
        return -1;
    if (v > 100LL * 86400 * 1000 / mult)
        return -1;
    *ms = v * mult;
    return 0;
}

static const char *env_or(const char *name, const char *def)
{
    const char *v = getenv(name);
    return v != NULL && v[0] != '\0' ? v : def;
}

/* Matches "--name value" or "--name=value"; advances *i past a separate value. */
static int flag(int argc, char **argv, int *i, const char *name, const char *shortname,
                const char **out, int *missing)
{
    const char *a = argv[*i];
    size_t nl = strlen(name);
    if (strncmp(a, name, nl) == 0 && a[nl] == '=') {
        *out = a + nl + 1;
        return 1;
    }
    if (strcmp(a, name) == 0 || (shortname != NULL && strcmp(a, shortname) == 0)) {
        if (*i + 1 >= argc) {
            *missing = 1;
            return 1;
        }
        *out = argv[++*i];
        return 1;
    }
    return 0;
}

static int open_channel(struct cli *cli)
{
    bastion_options *o = NULL;
    char err[512];
    bastion_status st;

    if (bastion_options_new(&o) != BASTION_OK || bastion_call_options_new(&cli->co) != BASTION_OK) {
        bastion_options_free(o);
        return report(BASTION_E_NOMEM, "", NULL);
    }
    if (bastion_options_set_target(o, cli->server) != BASTION_OK) {
        bastion_options_free(o);
        return usage_error("--server: '%s' is not HOST:PORT", cli->server);
    }
    if ((cli->ca != NULL && bastion_options_set_ca_file(o, cli->ca) != BASTION_OK) ||
        (cli->cert != NULL &&
         bastion_options_set_client_cert(o, cli->cert, cli->key) != BASTION_OK) ||
        (cli->server_name != NULL &&
         bastion_options_set_server_name(o, cli->server_name) != BASTION_OK)) {
        bastion_options_free(o);
        return usage_error("invalid --ca, --cert/--key or --server-name");
    }
    if ((cli->token != NULL && bastion_options_set_bearer_token(o, cli->token) != BASTION_OK) ||
        (cli->api_key != NULL && bastion_options_set_api_key(o, cli->api_key) != BASTION_OK)) {
        bastion_options_free(o);
        return usage_error("the token and API key must be printable ASCII");
    }
    bastion_call_options_set_deadline_ms(cli->co, cli->timeout_ms);
    st = bastion_channel_new(&cli->ch, o, err, sizeof(err));
    bastion_options_free(o);
    if (st != BASTION_OK)
        return report(st, err, NULL);
    return EXIT_OK;
}

int main(int argc, char **argv)
{
    struct cli cli;
    char **pos;
    size_t npos = 0;
    int rc, only_pos = 0;
    const char *output = "table", *timeout = NULL;

    memset(&cli, 0, sizeof(cli));
    cli.server = env_or("BASTION_SERVER", DEFAULT_SERVER);
    cli.ca = env_or("BASTION_CA", NULL);
    cli.cert = env_or("BASTION_CERT", NULL);
    cli.key = env_or("BASTION_KEY", NULL);
    cli.token = env_or("BASTION_TOKEN", NULL);
    cli.api_key = env_or("BASTION_API_KEY", NULL);
    cli.timeout_ms = DEFAULT_TIMEOUT_MS;
    pos = calloc((size_t)argc + 1, sizeof(*pos));
    if (pos == NULL)
        return EXIT_SERVER;

    for (int i = 1; i < argc; i++) {
        int missing = 0;
        const char *a = argv[i];
        if (only_pos || a[0] != '-' || strcmp(a, "-") == 0) {
            pos[npos++] = argv[i];
            continue;
        }
        if (strcmp(a, "--") == 0) {
            only_pos = 1;
        } else if (strcmp(a, "-h") == 0 || strcmp(a, "--help") == 0) {
            usage(stdout);
            free(pos);
            return EXIT_OK;
        } else if (strcmp(a, "--version") == 0) {
            printf("bastion %s (libbastion %s)\n", BASTION_VERSION, bastion_version());
            free(pos);
            return EXIT_OK;
        } else if (flag(argc, argv, &i, "--server", NULL, &cli.server, &missing) ||
                   flag(argc, argv, &i, "--ca", NULL, &cli.ca, &missing) ||
                   flag(argc, argv, &i, "--cert", NULL, &cli.cert, &missing) ||
                   flag(argc, argv, &i, "--key", NULL, &cli.key, &missing) ||
                   flag(argc, argv, &i, "--token", NULL, &cli.token, &missing) ||
                   flag(argc, argv, &i, "--api-key", NULL, &cli.api_key, &missing) ||
                   flag(argc, argv, &i, "--server-name", NULL, &cli.server_name, &missing) ||
                   flag(argc, argv, &i, "--timeout", NULL, &timeout, &missing) ||
                   flag(argc, argv, &i, "--output", "-o", &output, &missing) ||
                   flag(argc, argv, &i, "--json", NULL, &cli.json_args, &missing)) {
            if (missing) {
                free(pos);
                return usage_error("%s needs a value", a);
            }
        } else {
            free(pos);
            return usage_error("unknown flag '%s'", a);
        }
    }
    if (strcmp(output, "json") == 0) {
        cli.json = 1;
    } else if (strcmp(output, "table") != 0) {
        free(pos);
        return usage_error("-o: expected json or table, not '%s'", output);
    }
    if (timeout != NULL && parse_duration(timeout, &cli.timeout_ms) != 0) {
        free(pos);
        return usage_error("--timeout: '%s' is not a duration such as 500ms, 10s or 2m", timeout);
    }
    if ((cli.cert == NULL) != (cli.key == NULL)) {
        free(pos);
        return usage_error("--cert and --key go together");
    }
    if (npos == 0) {
        usage(stderr);
        free(pos);
        return EXIT_USAGE;
    }
    if (cli.json_args != NULL && strcmp(pos[0], "call") != 0) {
        free(pos);
        return usage_error("--json is for `bastion call`");
    }
    {
        static const struct {
            const char *name;
            size_t min, max; /* arguments after the command */
            const char *args;
        } commands[] = {
            {"ping", 0, 0, "no arguments"},      {"tools", 0, 0, "no arguments"},
            {"resources", 0, 0, "no arguments"}, {"whoami", 0, 0, "no arguments"},
            {"read", 1, 1, "one URI"},           {"call", 1, SIZE_MAX, "TOOL [key=value ...]"},
        };
        size_t k = 0, n = sizeof(commands) / sizeof(commands[0]);
        while (k < n && strcmp(commands[k].name, pos[0]) != 0)
            k++;
        if (k == n || npos - 1 < commands[k].min || npos - 1 > commands[k].max) {
            rc = k == n ? usage_error("unknown command '%s'", pos[0])
                        : usage_error("%s takes %s", commands[k].name, commands[k].args);
            free(pos);
            return rc;
        }
    }

    rc = open_channel(&cli);
    if (rc == EXIT_OK) {
        if (strcmp(pos[0], "ping") == 0)
            rc = cmd_ping(&cli);
        else if (strcmp(pos[0], "tools") == 0)
            rc = cmd_tools(&cli);
        else if (strcmp(pos[0], "resources") == 0)
            rc = cmd_resources(&cli);
        else if (strcmp(pos[0], "whoami") == 0)
            rc = cmd_whoami(&cli);
        else if (strcmp(pos[0], "read") == 0)
            rc = cmd_read(&cli, pos[1]);
        else
            rc = cmd_call(&cli, pos[1], pos + 2, npos - 2);
    }
    bastion_channel_free(cli.ch);
    bastion_call_options_free(cli.co);
    free(pos);
    return rc;
}
