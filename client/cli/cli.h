/* Internal header of the `bastion` CLI: the exit codes, the parsed command line, and the
 * helpers the command files share (output, errors, durations, password input). Not installed;
 * the CLI's files are bastion.c (command line and dispatch), output.c, remote.c (commands that
 * call a server), admin.c (offline key and user commands) and password.c (terminal input). */
#ifndef BASTION_CLI_CLI_H
#define BASTION_CLI_CLI_H

#include <bastion/bastion.h>

#include <jansson.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

/* Exit codes: stable, documented in usage() and docs/client.md. */
enum {
    EXIT_OK = 0,
    EXIT_USAGE = 1,       /* bad command line or unreadable local files */
    EXIT_CONNECT = 2,     /* cannot reach the server: connection, TLS, UNAVAILABLE */
    EXIT_AUTHN = 3,       /* UNAUTHENTICATED */
    EXIT_DENIED = 4,      /* PERMISSION_DENIED; also `can-i` answering "denied" */
    EXIT_INVALID = 5,     /* INVALID_ARGUMENT, OUT_OF_RANGE, FAILED_PRECONDITION */
    EXIT_NOT_FOUND = 6,   /* NOT_FOUND, ALREADY_EXISTS */
    EXIT_DEADLINE = 7,    /* DEADLINE_EXCEEDED, CANCELLED */
    EXIT_EXHAUSTED = 8,   /* RESOURCE_EXHAUSTED, ABORTED: try again later */
    EXIT_UNSUPPORTED = 9, /* UNIMPLEMENTED */
    EXIT_SERVER = 10,     /* INTERNAL, UNKNOWN, DATA_LOSS, a protocol violation */
    EXIT_TOOL_ERROR = 11, /* the call worked, the tool reported a failure (is_error) */
};

/* Output formats (-o). ENV exists for `login` only. */
enum cli_output { CLI_OUT_TABLE = 0, CLI_OUT_JSON, CLI_OUT_ENV };

/* The longest password the server accepts (auth/authn.h: 1-1024 bytes). */
#define CLI_PASSWORD_MAX 1024

/* The command line, parsed. Strings point into argv or the environment (never freed); ch and
 * co are owned and freed by main(). */
struct cli {
    const char *server, *ca, *cert, *key, *token, *api_key, *server_name;
    int64_t timeout_ms;
    enum cli_output output;
    const char *json_args;  /* call --json */
    const char *namespace_; /* can-i -n; NULL = cluster scope */
    const char *id;         /* keys generate --id */
    const char *config;     /* keys jwks --config */
    int64_t ttl_ms;         /* login --ttl; 0 = the server's default */
    int password_stdin;     /* login, users hash: read the password from stdin */
    bastion_channel *ch;
    bastion_call_options *co;
};

/* ---- output.c: errors and printing ----------------------------------------------------------- */

/* The exit code of a status (the table in usage()). */
int cli_exit_code(bastion_status s);

/* Prints "bastion: <message>" and the --help hint to stderr; returns EXIT_USAGE. */
int cli_usage_error(const char *fmt, ...) __attribute__((format(printf, 1, 2)));

/* Prints a failed status as "NAME: message (request id ID)" to stderr (msg is already
 * sanitised; request_id may be NULL or ""); returns its exit code. */
int cli_report(bastion_status st, const char *msg, const char *request_id);

/* Writes text (from a server) with control characters neutralised, keeping its lines, each
 * ending in a newline. NULL writes nothing. */
void cli_print_text(FILE *f, const char *s);

/* An aligned table of sanitised cells (at most 8 columns; each cell truncated to 511 bytes).
 * Initialise with {cols, 0, 0, NULL}; cli_table_print_free prints and frees it, cli_table_free
 * only frees it. */
struct cli_table {
    size_t cols, rows, cap;
    char **cells; /* rows * cols, owned */
};
int cli_table_add(struct cli_table *t, const char *const *row);
void cli_table_print_free(struct cli_table *t);
void cli_table_free(struct cli_table *t);

/* Prints j (a reference this call takes over; NULL means it could not be built) as indented,
 * ASCII-only JSON on stdout. Returns EXIT_OK or EXIT_SERVER. */
int cli_print_json(json_t *j);

/* Formats a Unix time as RFC 3339 UTC ("-" for 0 or less). */
void cli_fmt_time(int64_t unix_s, char *buf, size_t len);

/* Formats the time left until unix_s as "in 14m59s" or "expired 3s ago". */
void cli_fmt_remaining(int64_t unix_s, char *buf, size_t len);

/* Parses "500ms", "10s", "2m", "1h" or plain milliseconds (1 ms .. 100 days). Returns 0 or -1. */
int cli_parse_duration(const char *s, int64_t *ms);

/* ---- password.c ------------------------------------------------------------------------------ */

/* Reads one password, at most CLI_PASSWORD_MAX bytes, into buf (cap >= CLI_PASSWORD_MAX + 2;
 * NUL-terminated, the line ending removed). from_stdin: one line from standard input (echo
 * turned off if it is a terminal). Otherwise: prompt is written to the controlling terminal
 * (/dev/tty) and the answer read from it with echo off; the terminal's settings are restored
 * afterwards, also when a signal ends the program meanwhile. The password never passes through
 * a stdio buffer. The caller wipes buf (OPENSSL_cleanse). Returns 0, or -1 with a sentence in
 * why (buf then holds nothing). */
int cli_read_password(int from_stdin, const char *prompt, char *buf, size_t cap, char *why,
                      size_t why_len);

/* ---- remote.c: commands that call a server (each returns an exit code) ----------------------- */

/* Opens cli->ch and cli->co from the flags. Returns EXIT_OK or an exit code (reported). */
int cli_open_channel(struct cli *cli);

int cli_cmd_ping(struct cli *cli);
int cli_cmd_tools(struct cli *cli);
int cli_cmd_resources(struct cli *cli);
int cli_cmd_read(struct cli *cli, const char *uri);
int cli_cmd_whoami(struct cli *cli);
int cli_cmd_call(struct cli *cli, const char *tool, char **kv, size_t n);
int cli_cmd_can_i(struct cli *cli, const char *permission);
int cli_cmd_login(struct cli *cli, const char *username);

/* ---- admin.c: offline commands (no server) --------------------------------------------------- */

int cli_cmd_keys_generate(struct cli *cli);
int cli_cmd_keys_jwks(struct cli *cli);
int cli_cmd_users_hash(struct cli *cli);

#endif
