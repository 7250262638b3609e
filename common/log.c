/* JSON-lines logger built on jansson. */
#include "log.h"
#include "clock.h"

#include <jansson.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

static atomic_int min_level = BST_LOG_INFO;

static const char *const level_names[] = {"debug", "info", "warn", "error"};

void bst_log_set_level(enum bst_log_level level)
{
    atomic_store(&min_level, (int)level);
}

int bst_log_level_parse(const char *s, enum bst_log_level *out)
{
    for (int i = 0; i < 4; i++) {
        if (strcmp(s, level_names[i]) == 0) {
            *out = (enum bst_log_level)i;
            return 0;
        }
    }
    return -1;
}

int bst_log_enabled(enum bst_log_level level)
{
    return (int)level >= atomic_load(&min_level);
}

void bst_log(enum bst_log_level level, const char *event, ...)
{
    char ts[40];
    int64_t now;
    time_t secs;
    struct tm tm;
    json_t *obj;
    char *line;
    va_list ap;

    if (!bst_log_enabled(level))
        return;
    now = bst_wall_ns();
    secs = (time_t)(now / BST_NS_PER_S);
    gmtime_r(&secs, &tm);
    strftime(ts, 24, "%Y-%m-%dT%H:%M:%S", &tm);
    snprintf(ts + 19, sizeof(ts) - 19, ".%06ldZ", (long)((now % BST_NS_PER_S) / 1000));

    obj = json_object();
    if (obj == NULL)
        return;
    json_object_set_new(obj, "ts", json_string(ts));
    json_object_set_new(obj, "level", json_string(level_names[level]));
    /* json_stringn_nocheck is not used: invalid UTF-8 from a peer must not reach the log raw,
     * and json_string() returns NULL for it, which we replace with a marker. */
    json_object_set_new(obj, "event", json_string(event));
    va_start(ap, event);
    for (;;) {
        const char *k = va_arg(ap, const char *);
        const char *v;
        json_t *jv;
        if (k == NULL)
            break;
        v = va_arg(ap, const char *);
        if (v == NULL)
            continue;
        jv = json_string(v);
        json_object_set_new(obj, k, jv != NULL ? jv : json_string("<invalid utf-8>"));
    }
    va_end(ap);
    line = json_dumps(obj, JSON_COMPACT | JSON_PRESERVE_ORDER);
    json_decref(obj);
    if (line == NULL)
        return;
    {
        size_t n = strlen(line);
        char *buf = malloc(n + 1);
        if (buf != NULL) {
            memcpy(buf, line, n);
            buf[n] = '\n';
            /* One write per line: atomic with respect to other threads' lines. */
            ssize_t w = write(STDERR_FILENO, buf, n + 1);
            (void)w;
            free(buf);
        }
    }
    free(line);
}
