/* `bastion`: the command-line client of Bastion, built on libbastion. One command per run: it
 * opens a channel, makes one or a few calls and prints the result as a table (text for humans)
 * or JSON (protobuf JSON conventions, through common/pbjson). Errors go to stderr as
 * "STATUS_NAME: message" and the exit code says which class of failure happened, so scripts can
 * branch on it (see usage() and docs/client.md). Everything the server sends is sanitised before
 * it reaches the terminal.
 *
 * This file is the command line: flags (each also an environment variable), the command table,
 * and dispatch to remote.c (commands that call a server) and admin.c (offline commands). */
#include "cli.h"

#include <bastion/version.h>

#include <stdlib.h>
#include <string.h>

#define DEFAULT_SERVER "localhost:8443"
#define DEFAULT_TIMEOUT_MS 30000

static void usage(FILE *f)
{
    fprintf(
        f,
        "Usage: bastion [flags] COMMAND [ARGS]\n"
        "\n"
        "Commands that call the server:\n"
        "  ping                       check that the server answers (Mcp.Ping)\n"
        "  tools                      list the tools and the permission each needs\n"
        "  call TOOL [key=value ...]  call a tool; keys are fields of its argument message,\n"
        "                             dotted for nested fields (bastion call list_pods\n"
        "                             namespace=default)\n"
        "  call TOOL --json '{...}'   the same, arguments as a JSON object ('-' reads stdin)\n"
        "  resources                  list the resources: one per object,\n"
        "                             k8s://NAMESPACE/KIND/NAME\n"
        "  read URI                   read a resource as Kubernetes JSON, e.g.\n"
        "                             k8s://default/deployment/web (bastion resources lists them)\n"
        "  whoami                     show the identity the server resolved for you: principal,\n"
        "                             mechanism, groups, tenant, certificate, expiry\n"
        "  can-i PERMISSION [-n NS]   ask the policy whether you hold PERMISSION (e.g.\n"
        "                             k8s:pods:delete) in namespace NS; without -n: at cluster\n"
        "                             scope (all namespaces). Exit 0 allowed, 4 denied\n"
        "  login USERNAME             exchange a password for a token (Auth.IssueToken). The\n"
        "                             password is read from the terminal without echo, or from\n"
        "                             stdin with --password-stdin, never from the command line.\n"
        "                             --ttl DURATION asks for a lifetime; -o env prints\n"
        "                             export BASTION_TOKEN=... for eval\n"
        "\n"
        "Offline administration (no server):\n"
        "  keys generate --id ID      make an API key: prints the key (shown only this once)\n"
        "                             and the entry to paste into the API keys file\n"
        "  keys jwks --config FILE    print the public half of auth.token.signing_key of the\n"
        "                             server's configuration FILE as a JWKS (key rotation)\n"
        "  users hash                 read a password twice without echo (once from stdin with\n"
        "                             --password-stdin) and print its scrypt hash for the\n"
        "                             users file\n"
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
        "  -o, --output FORMAT   table (default) or json; env for login\n"
        "  -n, --namespace NS    can-i: the namespace asked about\n"
        "  --ttl DURATION        login: the token's lifetime (whole seconds, e.g. 90s, 1h)\n"
        "  --password-stdin      login, users hash: read the password from standard input\n"
        "  --id ID               keys generate: the key's id\n"
        "  --config FILE         keys jwks: the server's configuration file\n"
        "  -h, --help            this help;  --version  the client version\n"
        "\n"
        "login sends no token or API key (only the client certificate), so an expired\n"
        "BASTION_TOKEN does not stand in the way of getting a new one.\n"
        "\n"
        "Errors are printed to stderr as STATUS_NAME: message. Exit codes:\n"
        "  0  success                       6  NOT_FOUND, ALREADY_EXISTS\n"
        "  1  usage or local file error     7  DEADLINE_EXCEEDED, CANCELLED\n"
        "  2  cannot reach the server       8  RESOURCE_EXHAUSTED, ABORTED (retry later)\n"
        "     (E_CONNECT, E_TLS, UNAVAILABLE) 9  UNIMPLEMENTED\n"
        "  3  UNAUTHENTICATED              10  INTERNAL, UNKNOWN, DATA_LOSS, E_PROTOCOL\n"
        "  4  PERMISSION_DENIED, or can-i  11  the tool reported an error (is_error)\n"
        "     answered denied\n"
        "  5  INVALID_ARGUMENT, OUT_OF_RANGE, FAILED_PRECONDITION\n",
        DEFAULT_SERVER);
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

/* Flags that belong to one command (a bit each), so that a misplaced one is an error rather
 * than silently ignored. */
enum {
    F_JSON = 1 << 0,
    F_NAMESPACE = 1 << 1,
    F_TTL = 1 << 2,
    F_PASSWORD_STDIN = 1 << 3,
    F_ID = 1 << 4,
    F_CONFIG = 1 << 5,
    F_OUTPUT_ENV = 1 << 6,
};

static const struct {
    unsigned bit;
    const char *name;
} flag_names[] = {
    {F_JSON, "--json"},       {F_NAMESPACE, "-n/--namespace"},
    {F_TTL, "--ttl"},         {F_PASSWORD_STDIN, "--password-stdin"},
    {F_ID, "--id"},           {F_CONFIG, "--config"},
    {F_OUTPUT_ENV, "-o env"},
};

enum cmd_id {
    C_PING,
    C_TOOLS,
    C_RESOURCES,
    C_WHOAMI,
    C_READ,
    C_CALL,
    C_CAN_I,
    C_LOGIN,
    C_KEYS_GENERATE,
    C_KEYS_JWKS,
    C_USERS_HASH,
};

static const struct command {
    enum cmd_id id;
    const char *name, *sub; /* sub: the second word of two-word commands */
    size_t min, max;        /* arguments after the command word(s) */
    const char *args;       /* for "takes ..." errors */
    unsigned flags;         /* command-specific flags it accepts */
    int offline;            /* needs no server */
} commands[] = {
    {C_PING, "ping", NULL, 0, 0, "no arguments", 0, 0},
    {C_TOOLS, "tools", NULL, 0, 0, "no arguments", 0, 0},
    {C_RESOURCES, "resources", NULL, 0, 0, "no arguments", 0, 0},
    {C_WHOAMI, "whoami", NULL, 0, 0, "no arguments", 0, 0},
    {C_READ, "read", NULL, 1, 1, "one URI (k8s://NAMESPACE/KIND/NAME)", 0, 0},
    {C_CALL, "call", NULL, 1, SIZE_MAX, "TOOL [key=value ...]", F_JSON, 0},
    {C_CAN_I, "can-i", NULL, 1, 1, "one PERMISSION, e.g. k8s:pods:delete", F_NAMESPACE, 0},
    {C_LOGIN, "login", NULL, 1, 1, "one USERNAME", F_TTL | F_PASSWORD_STDIN | F_OUTPUT_ENV, 0},
    {C_KEYS_GENERATE, "keys", "generate", 0, 0, "no arguments besides --id ID", F_ID, 1},
    {C_KEYS_JWKS, "keys", "jwks", 0, 0, "no arguments besides --config FILE", F_CONFIG, 1},
    {C_USERS_HASH, "users", "hash", 0, 0, "no arguments", F_PASSWORD_STDIN, 1},
};
#define N_COMMANDS (sizeof(commands) / sizeof(commands[0]))

/* Finds the command named by pos[0] (and pos[1] for two-word commands). Returns NULL after
 * reporting the error. */
static const struct command *find_command(char **pos, size_t npos, int *rc)
{
    const struct command *c = NULL;
    size_t words;
    int known = 0;

    for (size_t k = 0; k < N_COMMANDS && c == NULL; k++) {
        if (strcmp(commands[k].name, pos[0]) != 0)
            continue;
        known = 1;
        if (commands[k].sub == NULL || (npos > 1 && strcmp(commands[k].sub, pos[1]) == 0))
            c = &commands[k];
    }
    if (c == NULL && !known) {
        *rc = cli_usage_error("unknown command '%s'", pos[0]);
        return NULL;
    }
    if (c == NULL) {
        *rc = strcmp(pos[0], "keys") == 0
                  ? cli_usage_error("keys takes a subcommand: generate --id ID, or jwks "
                                    "--config FILE")
                  : cli_usage_error("users takes a subcommand: hash");
        return NULL;
    }
    words = c->sub != NULL ? 2 : 1;
    if (npos - words < c->min || npos - words > c->max) {
        *rc = c->sub != NULL ? cli_usage_error("%s %s takes %s", c->name, c->sub, c->args)
                             : cli_usage_error("%s takes %s", c->name, c->args);
        return NULL;
    }
    return c;
}

static int run(struct cli *cli, const struct command *c, char **pos, size_t npos)
{
    int rc;

    if (c->offline) {
        /* No channel: the server flags and variables are not even looked at. */
        if (c->id == C_KEYS_GENERATE)
            return cli_cmd_keys_generate(cli);
        if (c->id == C_KEYS_JWKS)
            return cli_cmd_keys_jwks(cli);
        return cli_cmd_users_hash(cli);
    }
    if ((cli->cert == NULL) != (cli->key == NULL))
        return cli_usage_error("--cert and --key go together");
    if (c->id == C_LOGIN) {
        /* IssueToken needs no token, and a stale one would fail the call before the login. */
        cli->token = NULL;
        cli->api_key = NULL;
    }
    rc = cli_open_channel(cli);
    if (rc != EXIT_OK)
        return rc;
    switch (c->id) {
    case C_PING:
        return cli_cmd_ping(cli);
    case C_TOOLS:
        return cli_cmd_tools(cli);
    case C_RESOURCES:
        return cli_cmd_resources(cli);
    case C_WHOAMI:
        return cli_cmd_whoami(cli);
    case C_READ:
        return cli_cmd_read(cli, pos[1]);
    case C_CAN_I:
        return cli_cmd_can_i(cli, pos[1]);
    case C_LOGIN:
        return cli_cmd_login(cli, pos[1]);
    default:
        return cli_cmd_call(cli, pos[1], pos + 2, npos - 2);
    }
}

int main(int argc, char **argv)
{
    struct cli cli;
    char **pos;
    size_t npos = 0;
    int rc = EXIT_USAGE, only_pos = 0;
    unsigned used = 0;
    const char *output = "table", *timeout = NULL, *ttl = NULL;
    const struct command *c;
    /* Flags that take a value; each points at where its value goes. */
    const struct {
        const char *name, *shortname;
        const char **dest;
        unsigned bit; /* command-specific flags: F_* */
    } vflags[] = {
        {"--server", NULL, &cli.server, 0},
        {"--ca", NULL, &cli.ca, 0},
        {"--cert", NULL, &cli.cert, 0},
        {"--key", NULL, &cli.key, 0},
        {"--token", NULL, &cli.token, 0},
        {"--api-key", NULL, &cli.api_key, 0},
        {"--server-name", NULL, &cli.server_name, 0},
        {"--timeout", NULL, &timeout, 0},
        {"--output", "-o", &output, 0},
        {"--json", NULL, &cli.json_args, F_JSON},
        {"--namespace", "-n", &cli.namespace_, F_NAMESPACE},
        {"--ttl", NULL, &ttl, F_TTL},
        {"--id", NULL, &cli.id, F_ID},
        {"--config", NULL, &cli.config, F_CONFIG},
    };
    const size_t n_vflags = sizeof(vflags) / sizeof(vflags[0]);

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
        } else if (strcmp(a, "--password-stdin") == 0) {
            cli.password_stdin = 1;
            used |= F_PASSWORD_STDIN;
        } else {
            size_t k = 0;
            while (k < n_vflags && !flag(argc, argv, &i, vflags[k].name, vflags[k].shortname,
                                         vflags[k].dest, &missing))
                k++;
            if (k == n_vflags) {
                rc = cli_usage_error("unknown flag '%s'", a);
                goto out;
            }
            if (missing) {
                rc = cli_usage_error("%s needs a value", a);
                goto out;
            }
            used |= vflags[k].bit;
        }
    }
    if (strcmp(output, "json") == 0) {
        cli.output = CLI_OUT_JSON;
    } else if (strcmp(output, "env") == 0) {
        cli.output = CLI_OUT_ENV;
        used |= F_OUTPUT_ENV;
    } else if (strcmp(output, "table") != 0) {
        rc = cli_usage_error("-o: expected table, json or env, not '%s'", output);
        goto out;
    }
    if (timeout != NULL && cli_parse_duration(timeout, &cli.timeout_ms) != 0) {
        rc = cli_usage_error("--timeout: '%s' is not a duration such as 500ms, 10s or 2m", timeout);
        goto out;
    }
    /* The server counts lifetimes in seconds: a fraction of one would be silently dropped. */
    if (ttl != NULL && (cli_parse_duration(ttl, &cli.ttl_ms) != 0 || cli.ttl_ms % 1000 != 0 ||
                        cli.ttl_ms / 1000 > UINT32_MAX)) {
        rc = cli_usage_error("--ttl: '%s' is not a whole number of seconds such as 90s, 15m "
                             "or 1h",
                             ttl);
        goto out;
    }
    if (npos == 0) {
        usage(stderr);
        goto out;
    }
    if ((c = find_command(pos, npos, &rc)) == NULL)
        goto out;
    for (size_t k = 0; k < sizeof(flag_names) / sizeof(flag_names[0]); k++)
        if ((used & flag_names[k].bit) && !(c->flags & flag_names[k].bit)) {
            rc = flag_names[k].bit == F_JSON
                     ? cli_usage_error("--json is for `bastion call`")
                     : cli_usage_error("%s does not apply to `%s%s%s`", flag_names[k].name, c->name,
                                       c->sub ? " " : "", c->sub ? c->sub : "");
            goto out;
        }
    rc = run(&cli, c, pos, npos);
out:
    bastion_channel_free(cli.ch);
    bastion_call_options_free(cli.co);
    free(pos);
    return rc;
}
