/* Output and error helpers of the `bastion` CLI: exit codes, "STATUS: message" reports, tables
 * and JSON. Everything a server sent passes bst_text_sanitize (tables, text) or is printed as
 * ASCII-only JSON, so no byte from a server reaches the terminal raw. */
#include "cli.h"

#include "text.h"

#include <errno.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

int cli_exit_code(bastion_status s)
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

int cli_usage_error(const char *fmt, ...)
{
    va_list ap;
    fputs("bastion: ", stderr);
    va_start(ap, fmt);
    vfprintf(stderr, fmt, ap);
    va_end(ap);
    fputs("\n(bastion --help shows the commands and flags)\n", stderr);
    return EXIT_USAGE;
}

int cli_report(bastion_status st, const char *msg, const char *request_id)
{
    const char *text = msg != NULL && msg[0] != '\0' ? msg : bastion_strerror(st);
    if (request_id != NULL && request_id[0] != '\0')
        fprintf(stderr, "%s: %s (request id %s)\n", bastion_status_name(st), text, request_id);
    else
        fprintf(stderr, "%s: %s\n", bastion_status_name(st), text);
    return cli_exit_code(st);
}

void cli_print_text(FILE *f, const char *s)
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

int cli_table_add(struct cli_table *t, const char *const *row)
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
        /* A cell that cannot be copied prints as empty rather than failing the command. */
        t->cells[t->rows * t->cols + c] = strdup(buf);
    }
    t->rows++;
    return 0;
}

void cli_table_free(struct cli_table *t)
{
    for (size_t i = 0; i < t->rows * t->cols; i++)
        free(t->cells[i]);
    free(t->cells);
    t->cells = NULL;
    t->rows = t->cap = 0;
}

void cli_table_print_free(struct cli_table *t)
{
    size_t width[8] = {0};
    for (size_t r = 0; r < t->rows; r++)
        for (size_t c = 0; c < t->cols && c < 8; c++) {
            const char *v = t->cells[r * t->cols + c];
            size_t w = v != NULL ? strlen(v) : 0;
            if (w > width[c])
                width[c] = w;
        }
    for (size_t r = 0; r < t->rows; r++) {
        for (size_t c = 0; c < t->cols; c++) {
            const char *v = t->cells[r * t->cols + c];
            if (c + 1 < t->cols)
                printf("%-*s  ", (int)width[c < 8 ? c : 7], v != NULL ? v : "");
            else
                printf("%s\n", v != NULL ? v : "");
        }
    }
    cli_table_free(t);
}

int cli_print_json(json_t *j)
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

void cli_fmt_time(int64_t unix_s, char *buf, size_t len)
{
    time_t t = (time_t)unix_s;
    struct tm tm;
    if (unix_s <= 0 || gmtime_r(&t, &tm) == NULL ||
        strftime(buf, len, "%Y-%m-%dT%H:%M:%SZ", &tm) == 0)
        snprintf(buf, len, "-");
}

void cli_fmt_remaining(int64_t unix_s, char *buf, size_t len)
{
    int64_t d = unix_s - (int64_t)time(NULL);
    int64_t a = d < 0 ? -d : d;
    char span[48];

    if (a >= 86400)
        snprintf(span, sizeof(span), "%lldd%lldh", (long long)(a / 86400),
                 (long long)(a % 86400 / 3600));
    else if (a >= 3600)
        snprintf(span, sizeof(span), "%lldh%lldm", (long long)(a / 3600),
                 (long long)(a % 3600 / 60));
    else if (a >= 60)
        snprintf(span, sizeof(span), "%lldm%llds", (long long)(a / 60), (long long)(a % 60));
    else
        snprintf(span, sizeof(span), "%llds", (long long)a);
    if (d < 0)
        snprintf(buf, len, "expired %s ago", span);
    else
        snprintf(buf, len, "in %s", span);
}

int cli_parse_duration(const char *s, int64_t *ms)
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
