/* The `bastion` commands that call a server: ping, tools, resources, read, whoami, call, can-i
 * and login. Each makes one or a few blocking calls over the channel main() opened and prints
 * the answer as a table (for humans) or JSON (protobuf JSON conventions, common/pbjson). */
#include "cli.h"

#include "bastion/v1/auth.pb-c.h"
#include "bastion/v1/mcp.pb-c.h"
#include "pbjson.h"

#include <openssl/crypto.h>

#include <stdlib.h>
#include <string.h>
#include <time.h>

#define MAX_PAGES 1000

/* Largest token `login` prints: the server refuses longer ones (AUTHN_MAX_TOKEN_BYTES). */
#define MAX_TOKEN_BYTES 8192

static bastion_status rpc(struct cli *cli, const ProtobufCServiceDescriptor *svc,
                          const char *method, const ProtobufCMessage *req, ProtobufCMessage **resp,
                          int *exit_out)
{
    char msg[512], rid[40];
    bastion_status st =
        bastion_call_blocking(cli->ch, svc, method, req, cli->co, resp, msg, sizeof(msg), rid);
    if (st != BASTION_OK)
        *exit_out = cli_report(st, msg, rid);
    return st;
}

static int print_message_json(const ProtobufCMessage *m)
{
    return cli_print_json(bst_pbjson_encode(m, NULL, NULL, 0));
}

int cli_open_channel(struct cli *cli)
{
    bastion_options *o = NULL;
    char err[512];
    bastion_status st;

    if (bastion_options_new(&o) != BASTION_OK || bastion_call_options_new(&cli->co) != BASTION_OK) {
        bastion_options_free(o);
        return cli_report(BASTION_E_NOMEM, "", NULL);
    }
    if (bastion_options_set_target(o, cli->server) != BASTION_OK) {
        bastion_options_free(o);
        return cli_usage_error("--server: '%s' is not HOST:PORT", cli->server);
    }
    if ((cli->ca != NULL && bastion_options_set_ca_file(o, cli->ca) != BASTION_OK) ||
        (cli->cert != NULL &&
         bastion_options_set_client_cert(o, cli->cert, cli->key) != BASTION_OK) ||
        (cli->server_name != NULL &&
         bastion_options_set_server_name(o, cli->server_name) != BASTION_OK)) {
        bastion_options_free(o);
        return cli_usage_error("invalid --ca, --cert/--key or --server-name");
    }
    if ((cli->token != NULL && bastion_options_set_bearer_token(o, cli->token) != BASTION_OK) ||
        (cli->api_key != NULL && bastion_options_set_api_key(o, cli->api_key) != BASTION_OK)) {
        bastion_options_free(o);
        return cli_usage_error("the token and API key must be printable ASCII");
    }
    bastion_call_options_set_deadline_ms(cli->co, cli->timeout_ms);
    st = bastion_channel_new(&cli->ch, o, err, sizeof(err));
    bastion_options_free(o);
    if (st != BASTION_OK)
        return cli_report(st, err, NULL);
    return EXIT_OK;
}

int cli_cmd_ping(struct cli *cli)
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
    if (cli->output == CLI_OUT_JSON) {
        json_t *j = json_pack("{s:s,s:f}", "server", cli->server, "rtt_ms", ms);
        rc = cli_print_json(j);
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

int cli_cmd_tools(struct cli *cli)
{
    Bastion__V1__ListToolsRequest req = BASTION__V1__LIST_TOOLS_REQUEST__INIT;
    struct cli_table t = {4, 0, 0, NULL};
    json_t *all = cli->output == CLI_OUT_JSON ? json_array() : NULL;
    char *cursor = NULL;
    int rc = EXIT_OK;
    static const char *const head[] = {"NAME", "PERMISSION", "HINTS", "TITLE"};

    if (all == NULL)
        cli_table_add(&t, head);
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
                cli_table_add(&t, row);
        }
        free(cursor);
        cursor = r->next_cursor != NULL && r->next_cursor[0] ? strdup(r->next_cursor) : NULL;
        bastion_response_free(m);
        if (cursor == NULL)
            break;
    }
    if (all != NULL)
        rc = cli_print_json(json_pack("{s:O}", "tools", all));
    else
        cli_table_print_free(&t);
out:
    json_decref(all);
    cli_table_free(&t);
    free(cursor);
    return rc;
}

int cli_cmd_resources(struct cli *cli)
{
    Bastion__V1__ListResourcesRequest req = BASTION__V1__LIST_RESOURCES_REQUEST__INIT;
    struct cli_table t = {3, 0, 0, NULL};
    json_t *all = cli->output == CLI_OUT_JSON ? json_array() : NULL;
    char *cursor = NULL;
    int rc = EXIT_OK;
    static const char *const head[] = {"URI", "NAME", "DESCRIPTION"};

    if (all == NULL)
        cli_table_add(&t, head);
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
                cli_table_add(&t, row);
        }
        free(cursor);
        cursor = r->next_cursor != NULL && r->next_cursor[0] ? strdup(r->next_cursor) : NULL;
        bastion_response_free(m);
        if (cursor == NULL)
            break;
    }
    if (all != NULL)
        rc = cli_print_json(json_pack("{s:O}", "resources", all));
    else
        cli_table_print_free(&t);
out:
    json_decref(all);
    cli_table_free(&t);
    free(cursor);
    return rc;
}

int cli_cmd_read(struct cli *cli, const char *uri)
{
    Bastion__V1__ReadResourceRequest req = BASTION__V1__READ_RESOURCE_REQUEST__INIT;
    ProtobufCMessage *m = NULL;
    Bastion__V1__ReadResourceResponse *r;
    int rc = EXIT_OK;

    req.uri = (char *)uri;
    if (rpc(cli, &bastion__v1__mcp__descriptor, "ReadResource", &req.base, &m, &rc) != BASTION_OK)
        return rc;
    r = (Bastion__V1__ReadResourceResponse *)m;
    if (cli->output == CLI_OUT_JSON) {
        rc = print_message_json(m);
    } else {
        for (size_t i = 0; i < r->n_contents; i++)
            cli_print_text(stdout, r->contents[i]->text);
    }
    bastion_response_free(m);
    return rc;
}

/* "a, b, c" from a string list, truncated to fit (never past len). */
static const char *join(char *const *v, size_t n, char *buf, size_t len)
{
    size_t o = 0;
    buf[0] = '\0';
    for (size_t i = 0; i < n && o + 1 < len; i++) {
        int w = snprintf(buf + o, len - o, "%s%s", i ? ", " : "", v[i]);
        if (w < 0)
            break;
        o += (size_t)w;
    }
    return buf[0] != '\0' ? buf : "-";
}

static const char *or_dash(const char *s)
{
    return s != NULL && s[0] != '\0' ? s : "-";
}

int cli_cmd_whoami(struct cli *cli)
{
    Bastion__V1__WhoAmIRequest req = BASTION__V1__WHO_AM_IREQUEST__INIT;
    ProtobufCMessage *m = NULL;
    Bastion__V1__WhoAmIResponse *r;
    const Bastion__V1__Principal *p;
    struct cli_table t = {2, 0, 0, NULL};
    int rc = EXIT_OK;
    char expires[96], when[40], left[48], groups[512], perms[1024], mechanism[32] = "-";
    const ProtobufCEnumValue *mech;

    if (rpc(cli, &bastion__v1__auth__descriptor, "WhoAmI", &req.base, &m, &rc) != BASTION_OK)
        return rc;
    r = (Bastion__V1__WhoAmIResponse *)m;
    if (cli->output == CLI_OUT_JSON || r->principal == NULL) {
        rc = print_message_json(m);
        bastion_response_free(m);
        return rc;
    }
    p = r->principal;
    mech = p->has_mechanism ? protobuf_c_enum_descriptor_get_value(
                                  &bastion__v1__auth_mechanism__descriptor, (int)p->mechanism)
                            : NULL;
    /* AUTH_MECHANISM_MTLS -> mtls, as the server's logs spell it. */
    if (mech != NULL && strncmp(mech->name, "AUTH_MECHANISM_", 15) == 0) {
        snprintf(mechanism, sizeof(mechanism), "%s", mech->name + 15);
        for (char *q = mechanism; *q != '\0'; q++)
            *q = (char)(*q >= 'A' && *q <= 'Z' ? *q - 'A' + 'a' : *q);
    }
    if (p->has_expires_at_unix && p->expires_at_unix > 0) {
        /* The credential's expiry: the token's or API key's, else the certificate's. */
        cli_fmt_time(p->expires_at_unix, when, sizeof(when));
        cli_fmt_remaining(p->expires_at_unix, left, sizeof(left));
        snprintf(expires, sizeof(expires), "%s (%s)", when, left);
    } else {
        snprintf(expires, sizeof(expires), "-");
    }
    {
        const char *rows[][2] = {
            {"principal:", or_dash(p->name)},
            {"mechanism:", mechanism},
            {"groups:", join(p->groups, p->n_groups, groups, sizeof(groups))},
            {"tenant:", or_dash(p->tenant)},
            {"permissions:", join(p->permissions, p->n_permissions, perms, sizeof(perms))},
            {"certificate:", or_dash(p->certificate_identity)},
            {"fingerprint:", or_dash(p->certificate_fingerprint_sha256)},
            {"expires:", expires},
            {"request id:", or_dash(r->request_id)},
        };
        for (size_t i = 0; i < sizeof(rows) / sizeof(rows[0]); i++)
            cli_table_add(&t, rows[i]);
    }
    cli_table_print_free(&t);
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
        json_t *j;
        if (strcmp(cli->json_args, "-") == 0 && text == NULL)
            return cli_usage_error("--json -: cannot read the arguments (over 16 MiB?)");
        j = json_loads(text != NULL ? text : cli->json_args, JSON_REJECT_DUPLICATES, &je);
        free(text);
        if (j == NULL)
            return cli_usage_error("--json: invalid JSON at line %d column %d: %s", je.line,
                                   je.column, je.text);
        if (!json_is_object(j)) {
            json_decref(j);
            return cli_usage_error("--json: the arguments must be a JSON object");
        }
        st = bst_pbjson_decode(f->descriptor, j, NULL, out, &err);
        json_decref(j);
    } else {
        st = bst_pbjson_decode_kv(f->descriptor, kv, n, NULL, out, &err);
    }
    if (st != BST_OK)
        return cli_usage_error("arguments of %s: %s", f->name, err.msg);
    return EXIT_OK;
}

int cli_cmd_call(struct cli *cli, const char *tool, char **kv, size_t n)
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
        return cli_usage_error("unknown tool '%s' (bastion tools lists them)", tool);
    if (cli->json_args != NULL && n > 0)
        return cli_usage_error("give the arguments either as key=value or with --json, not both");
    if ((rc = build_args(cli, f, kv, n, &args)) != EXIT_OK)
        return rc;
    req.name = (char *)tool;
    *(uint32_t *)((char *)&req + f->quantifier_offset) = f->id;
    *(ProtobufCMessage **)((char *)&req + f->offset) = args;
    rc = EXIT_OK;
    if (rpc(cli, &bastion__v1__mcp__descriptor, "CallTool", &req.base, &m, &rc) != BASTION_OK)
        goto out;
    r = (Bastion__V1__CallToolResponse *)m;
    if (cli->output == CLI_OUT_JSON) {
        rc = print_message_json(m);
        if (rc == EXIT_OK && r->has_is_error && r->is_error)
            rc = EXIT_TOOL_ERROR;
    } else if (r->has_is_error && r->is_error) {
        fputs("TOOL_ERROR: ", stderr);
        cli_print_text(stderr, r->text != NULL && r->text[0] ? r->text : "the tool failed");
        rc = EXIT_TOOL_ERROR;
    } else {
        cli_print_text(stdout, r->text);
    }
out:
    bastion_response_free(m);
    protobuf_c_message_free_unpacked(args, NULL);
    return rc;
}

int cli_cmd_can_i(struct cli *cli, const char *permission)
{
    Bastion__V1__CanIRequest req = BASTION__V1__CAN_IREQUEST__INIT;
    ProtobufCMessage *m = NULL;
    Bastion__V1__CanIResponse *r;
    int rc = EXIT_OK, allowed;
    char scope[160];

    req.permission = (char *)permission;
    /* Without -n the question is about cluster scope (every namespace at once); the server
     * tells an absent namespace from "", which is an invalid namespace and never "all". */
    req.namespace_ = (char *)cli->namespace_;
    if (rpc(cli, &bastion__v1__auth__descriptor, "CanI", &req.base, &m, &rc) != BASTION_OK)
        return rc;
    r = (Bastion__V1__CanIResponse *)m;
    allowed = r->has_allowed && r->allowed;
    if (cli->output == CLI_OUT_JSON) {
        rc = print_message_json(m);
    } else {
        struct cli_table t = {2, 0, 0, NULL};
        if (cli->namespace_ != NULL)
            snprintf(scope, sizeof(scope), "%s in namespace %s", permission, cli->namespace_);
        else
            snprintf(scope, sizeof(scope), "%s at cluster scope (all namespaces)", permission);
        {
            const char *rows[][2] = {
                {allowed ? "allowed:" : "denied:", scope},
                {"rule:", or_dash(r->rule)},
                {"reason:", or_dash(r->reason)},
            };
            for (size_t i = 0; i < sizeof(rows) / sizeof(rows[0]); i++)
                cli_table_add(&t, rows[i]);
        }
        cli_table_print_free(&t);
    }
    if (rc == EXIT_OK && !allowed)
        rc = EXIT_DENIED;
    bastion_response_free(m);
    return rc;
}

/* A JWT is three base64url segments: nothing a shell would interpret, so `-o env` may print it
 * for eval. Anything else from the server is refused rather than quoted. */
static int token_printable(const char *t)
{
    size_t n = 0;
    if (t == NULL || t[0] == '\0')
        return 0;
    for (; t[n] != '\0'; n++) {
        char c = t[n];
        if (!((c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') ||
              c == '-' || c == '_' || c == '.'))
            return 0;
        if (n >= MAX_TOKEN_BYTES)
            return 0;
    }
    return 1;
}

int cli_cmd_login(struct cli *cli, const char *username)
{
    Bastion__V1__IssueTokenRequest req = BASTION__V1__ISSUE_TOKEN_REQUEST__INIT;
    ProtobufCMessage *m = NULL;
    Bastion__V1__IssueTokenResponse *r;
    char password[CLI_PASSWORD_MAX + 2], prompt[200], why[160], when[40], left[48];
    int rc = EXIT_OK;

    snprintf(prompt, sizeof(prompt), "Password for %s: ", username);
    if (cli_read_password(cli->password_stdin, prompt, password, sizeof(password), why,
                          sizeof(why)) != 0) {
        OPENSSL_cleanse(password, sizeof(password));
        return cli_usage_error("login: %s", why);
    }
    req.username = (char *)username;
    req.password = password;
    if (cli->ttl_ms > 0) {
        req.has_ttl_seconds = 1;
        req.ttl_seconds = (uint32_t)(cli->ttl_ms / 1000);
    }
    rpc(cli, &bastion__v1__auth__descriptor, "IssueToken", &req.base, &m, &rc);
    /* libbastion serialised the request (and wipes its copy); ours goes now. */
    OPENSSL_cleanse(password, sizeof(password));
    if (m == NULL)
        return rc;
    r = (Bastion__V1__IssueTokenResponse *)m;
    if (!token_printable(r->token)) {
        fprintf(stderr, "E_PROTOCOL: the server's token is not a JWT (base64url segments)\n");
        rc = EXIT_SERVER;
        goto out;
    }
    cli_fmt_time(r->has_expires_at_unix ? r->expires_at_unix : 0, when, sizeof(when));
    cli_fmt_remaining(r->has_expires_at_unix ? r->expires_at_unix : 0, left, sizeof(left));
    switch (cli->output) {
    case CLI_OUT_ENV:
        /* For eval "$(bastion login -o env NAME)"; the expiry as a shell comment. */
        printf("export BASTION_TOKEN='%s'\n# expires %s (%s)\n", r->token, when, left);
        break;
    case CLI_OUT_JSON:
        rc = print_message_json(m);
        break;
    default:
        /* The token is too long for a table cell: printed as is (checked above). */
        printf("token:    %s\ntype:     %s\nexpires:  %s (%s)\n", r->token,
               r->token_type != NULL && token_printable(r->token_type) ? r->token_type : "-", when,
               left);
        break;
    }
out:
    if (r->token != NULL)
        OPENSSL_cleanse(r->token, strlen(r->token));
    bastion_response_free(m);
    return rc;
}
