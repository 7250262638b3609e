/* bastion-audit: reads an audit directory written by bastiond.
 *
 *   cat     records as JSON lines (protobuf JSON mapping) for jq, with filters
 *   tail    the last records of the newest segment; -f follows new ones
 *   verify  the chain, sequences, segments, checkpoint signatures and anchors; exit 1 naming
 *           the segment file and sequence of the first fault
 *   stats   counts by event type, user and result
 *   keygen  an Ed25519 checkpoint signing key (0600) and its public key
 *
 * The files are treated as hostile: every string is escaped on output (control characters,
 * ANSI escapes, newlines, bidi overrides), and the reader bounds every allocation. */
#include "audit.h"
#include "clock.h"
#include "reader.h"
#include "render.h"
#include "sign.h"

#include "bastion_version.h"

#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <openssl/evp.h>
#include <openssl/pem.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>
#include <unistd.h>

#define EXIT_FAULT 1
#define EXIT_USAGE 2
#define MAX_ANCHORS 64
#define STATS_MAX_KEYS 10000

static const char usage[] =
    "usage: bastion-audit COMMAND [--dir DIR | --config bastion.yaml] [options]\n"
    "\n"
    "commands:\n"
    "  cat     print records as JSON lines (one AuditRecord per line, protobuf JSON mapping)\n"
    "  tail    print the last records (-n N, default 10); -f keeps following new records\n"
    "  verify  check the hash chain, sequences, segments, signatures and anchors\n"
    "  stats   count records by event type, user and result\n"
    "  keygen  write a new Ed25519 signing key: --out KEY.pem [--pub PUBLIC.pem]\n"
    "\n"
    "filters (cat, tail, stats):\n"
    "  --type T        authentication, authorization, request, security_violation, admin,\n"
    "                  connection (or the full enum name)\n"
    "  --user NAME     principal name, exactly\n"
    "  --result R      result, exactly (ok, denied, ...)\n"
    "  --namespace NS  namespace, exactly\n"
    "  --since TIME    RFC 3339 (2025-01-02T03:04:05Z), Unix seconds, or an age (30s, 15m,\n"
    "  --until TIME    2h, 7d) meaning that long ago\n"
    "\n"
    "verify options:\n"
    "  --keys DIR           public keys (*.pem) that checkpoints must be signed with (default:\n"
    "                       audit.signing.public_keys_dir of --config)\n"
    "  --anchor SEQ:HASH    the chain hash of record SEQ as known from elsewhere (the webhook,\n"
    "                       an earlier verify); detects truncation and rewriting (repeatable)\n"
    "  --allow-torn-tail    a torn end of the last segment (a crash) is a warning\n"
    "\n"
    "stats options: --json\n"
    "\n"
    "exit status: 0 ok, 1 a fault was found (verify) or a segment could not be read, 2 usage or\n"
    "I/O error.\n";

struct filters {
    int type; /* -1 = any */
    const char *user, *result, *ns;
    int64_t since, until; /* ns; 0 = unbounded */
};

struct opts {
    const char *cmd;
    const char *dir;
    const char *config;
    struct filters f;
    const char *keys;
    struct audit_anchor anchors[MAX_ANCHORS];
    size_t n_anchors;
    int allow_torn;
    int follow;
    long lines;
    int json;
    const char *out, *pub;
};

static int fail_usage(const char *fmt, ...) __attribute__((format(printf, 1, 2)));

static int fail_usage(const char *fmt, ...)
{
    va_list ap;
    fprintf(stderr, "bastion-audit: ");
    va_start(ap, fmt);
    vfprintf(stderr, fmt, ap);
    va_end(ap);
    fprintf(stderr, "\n(bastion-audit --help for usage)\n");
    return EXIT_USAGE;
}

/* ---- Times --------------------------------------------------------------------------------- */

static int digits(const char *s, int n, int *out)
{
    int v = 0;
    for (int i = 0; i < n; i++) {
        if (s[i] < '0' || s[i] > '9')
            return -1;
        v = v * 10 + (s[i] - '0');
    }
    *out = v;
    return 0;
}

/* Parses RFC 3339, Unix seconds, or an age ("15m") into wall-clock nanoseconds. */
static int parse_time(const char *s, int64_t *out)
{
    size_t len = strlen(s);
    char *end;

    if (len == 0 || len > 64)
        return -1;
    if (strchr("smhd", s[len - 1]) != NULL && s[0] >= '0' && s[0] <= '9') {
        long long v;
        int64_t unit = s[len - 1] == 's'   ? BST_NS_PER_S
                       : s[len - 1] == 'm' ? 60 * BST_NS_PER_S
                       : s[len - 1] == 'h' ? 3600 * BST_NS_PER_S
                                           : 86400 * BST_NS_PER_S;
        errno = 0;
        v = strtoll(s, &end, 10);
        if (errno != 0 || end != s + len - 1 || v < 0 || v > INT64_MAX / unit)
            return -1;
        *out = bst_wall_ns() - v * unit;
        return 0;
    }
    if (strspn(s, "0123456789") == len) {
        long long v;
        errno = 0;
        v = strtoll(s, &end, 10);
        if (errno != 0 || v > INT64_MAX / BST_NS_PER_S)
            return -1;
        *out = v * BST_NS_PER_S;
        return 0;
    }
    {
        struct tm tm;
        int y, mo, d, h, mi, sec, oh = 0, om = 0;
        int64_t frac = 0, scale = BST_NS_PER_S;
        const char *p = s + 19;
        time_t t;

        memset(&tm, 0, sizeof(tm));
        if (len < 20 || digits(s, 4, &y) || s[4] != '-' || digits(s + 5, 2, &mo) || s[7] != '-' ||
            digits(s + 8, 2, &d) || (s[10] != 'T' && s[10] != 't' && s[10] != ' ') ||
            digits(s + 11, 2, &h) || s[13] != ':' || digits(s + 14, 2, &mi) || s[16] != ':' ||
            digits(s + 17, 2, &sec))
            return -1;
        if (mo < 1 || mo > 12 || d < 1 || d > 31 || h > 23 || mi > 59 || sec > 60)
            return -1;
        if (*p == '.') {
            p++;
            if (*p < '0' || *p > '9')
                return -1;
            while (*p >= '0' && *p <= '9') {
                if (scale > 1) {
                    scale /= 10;
                    frac += (*p - '0') * scale;
                }
                p++;
            }
        }
        if (*p == 'Z' || *p == 'z') {
            p++;
        } else if (*p == '+' || *p == '-') {
            if (digits(p + 1, 2, &oh) || p[3] != ':' || digits(p + 4, 2, &om) || oh > 23 || om > 59)
                return -1;
            if (*p == '-') {
                oh = -oh;
                om = -om;
            }
            p += 6;
        } else {
            return -1;
        }
        if (*p != '\0')
            return -1;
        tm.tm_year = y - 1900;
        tm.tm_mon = mo - 1;
        tm.tm_mday = d;
        tm.tm_hour = h;
        tm.tm_min = mi;
        tm.tm_sec = sec;
        t = timegm(&tm);
        if (t == (time_t)-1)
            return -1;
        t -= (time_t)(oh * 3600 + om * 60);
        /* Nanoseconds since 1970 in an int64 end in 2262: later times mean "never". */
        if ((int64_t)t >= INT64_MAX / BST_NS_PER_S)
            *out = INT64_MAX;
        else if ((int64_t)t <= INT64_MIN / BST_NS_PER_S)
            *out = INT64_MIN + 1;
        else
            *out = (int64_t)t * BST_NS_PER_S + frac;
        return 0;
    }
}

static void format_time(char *out, size_t size, int64_t ns)
{
    time_t t = (time_t)(ns / BST_NS_PER_S);
    struct tm tm;
    if (gmtime_r(&t, &tm) == NULL || strftime(out, size, "%Y-%m-%dT%H:%M:%SZ", &tm) == 0)
        snprintf(out, size, "?");
}

/* ---- Options ------------------------------------------------------------------------------- */

static int parse_args(int argc, char **argv, struct opts *o)
{
    struct bst_err err;

    memset(o, 0, sizeof(*o));
    o->f.type = -1;
    o->lines = 10;
    if (argc < 2)
        return fail_usage("%s", "no command");
    o->cmd = argv[1];
    for (int i = 2; i < argc; i++) {
        const char *a = argv[i];
        const char *v = i + 1 < argc ? argv[i + 1] : NULL;
#define NEED_VALUE()                                                                               \
    do {                                                                                           \
        if (v == NULL)                                                                             \
            return fail_usage("%s needs a value", a);                                              \
        i++;                                                                                       \
    } while (0)
        if (strcmp(a, "--dir") == 0) {
            NEED_VALUE();
            o->dir = v;
        } else if (strcmp(a, "--config") == 0) {
            NEED_VALUE();
            o->config = v;
        } else if (strcmp(a, "--type") == 0) {
            NEED_VALUE();
            o->f.type = audit_event_type_parse(v);
            if (o->f.type < 0)
                return fail_usage("unknown event type '%s'", v);
        } else if (strcmp(a, "--user") == 0) {
            NEED_VALUE();
            o->f.user = v;
        } else if (strcmp(a, "--result") == 0) {
            NEED_VALUE();
            o->f.result = v;
        } else if (strcmp(a, "--namespace") == 0) {
            NEED_VALUE();
            o->f.ns = v;
        } else if (strcmp(a, "--since") == 0 || strcmp(a, "--until") == 0) {
            NEED_VALUE();
            if (parse_time(v, a[2] == 's' ? &o->f.since : &o->f.until) != 0)
                return fail_usage("cannot read the time '%s' (RFC 3339, Unix seconds or an age "
                                  "such as 15m)",
                                  v);
        } else if (strcmp(a, "--keys") == 0) {
            NEED_VALUE();
            o->keys = v;
        } else if (strcmp(a, "--anchor") == 0) {
            NEED_VALUE();
            if (o->n_anchors == MAX_ANCHORS)
                return fail_usage("%s", "too many anchors");
            if (audit_anchor_parse(v, &o->anchors[o->n_anchors].sequence,
                                   o->anchors[o->n_anchors].hash, &err) != BST_OK)
                return fail_usage("%s", err.msg);
            o->n_anchors++;
        } else if (strcmp(a, "--allow-torn-tail") == 0) {
            o->allow_torn = 1;
        } else if (strcmp(a, "-f") == 0 || strcmp(a, "--follow") == 0) {
            o->follow = 1;
        } else if (strcmp(a, "-n") == 0 || strcmp(a, "--lines") == 0) {
            char *end;
            NEED_VALUE();
            o->lines = strtol(v, &end, 10);
            if (*end != '\0' || o->lines < 0 || o->lines > 1000000)
                return fail_usage("-n wants a count up to 1000000, not '%s'", v);
        } else if (strcmp(a, "--json") == 0) {
            o->json = 1;
        } else if (strcmp(a, "--out") == 0) {
            NEED_VALUE();
            o->out = v;
        } else if (strcmp(a, "--pub") == 0) {
            NEED_VALUE();
            o->pub = v;
        } else {
            return fail_usage("unknown option '%s'", a);
        }
#undef NEED_VALUE
    }
    return 0;
}

/* Resolves the directory (and default keys) from --dir or --config. Returns 0 or an exit code. */
static int resolve_dir(struct opts *o, struct audit_config *cfg, int *have_cfg)
{
    struct bst_err err;

    *have_cfg = 0;
    if (o->config != NULL) {
        if (audit_config_load(o->config, cfg, &err) != BST_OK) {
            fprintf(stderr, "bastion-audit: %s\n", err.msg);
            return EXIT_USAGE;
        }
        *have_cfg = 1;
        if (o->dir == NULL)
            o->dir = cfg->directory;
        if (o->keys == NULL && cfg->signing.public_keys_dir != NULL &&
            cfg->signing.public_keys_dir[0] != '\0')
            o->keys = cfg->signing.public_keys_dir;
    }
    if (o->dir == NULL)
        return fail_usage("%s", "--dir or --config is required");
    return 0;
}

static int matches(const struct filters *f, const Bastion__V1__AuditRecord *r)
{
    if (f->type >= 0 && (!r->has_event_type || (int)r->event_type != f->type))
        return 0;
    if (f->user != NULL &&
        (r->principal == NULL || r->principal->name == NULL || strcmp(r->principal->name, f->user)))
        return 0;
    if (f->result != NULL && (r->result == NULL || strcmp(r->result, f->result) != 0))
        return 0;
    if (f->ns != NULL && (r->namespace_ == NULL || strcmp(r->namespace_, f->ns) != 0))
        return 0;
    if (f->since != 0 && (!r->has_time_unix_nano || r->time_unix_nano < f->since))
        return 0;
    if (f->until != 0 && (!r->has_time_unix_nano || r->time_unix_nano > f->until))
        return 0;
    return 1;
}

/* ---- cat and tail -------------------------------------------------------------------------- */

static int render_line(struct audit_buf *b, const Bastion__V1__AuditRecord *r)
{
    b->len = 0;
    return audit_json_message(b, &r->base) != 0 || audit_buf_putc(b, '\n') != 0 ? -1 : 0;
}

static void warn_loss(const struct bst_err *err)
{
    fprintf(stderr, "bastion-audit: %s\n", err->msg);
}

static int cmd_cat(struct opts *o)
{
    struct audit_reader *r;
    struct audit_item it;
    struct audit_buf b = {NULL, 0, 0};
    struct bst_err err;
    enum bst_status rv;
    int rc = 0;

    if (audit_reader_open(&r, o->dir, 0, &err) != BST_OK) {
        fprintf(stderr, "bastion-audit: %s\n", err.msg);
        return EXIT_USAGE;
    }
    while ((rv = audit_reader_next(r, &it, &err)) != BST_OUT_OF_RANGE) {
        if (rv != BST_OK) {
            warn_loss(&err);
            rc = EXIT_FAULT;
            if (rv == BST_INTERNAL)
                break;
            continue;
        }
        if (it.kind != AUDIT_FRAME_RECORD)
            continue;
        if (it.record == NULL) {
            fprintf(stderr, "bastion-audit: %s: the record at offset %" PRIu64 " does not parse\n",
                    it.segment, it.offset);
            rc = EXIT_FAULT;
            continue;
        }
        if (!matches(&o->f, it.record))
            continue;
        if (render_line(&b, it.record) != 0 || fwrite(b.data, 1, b.len, stdout) != b.len) {
            rc = EXIT_USAGE;
            break;
        }
    }
    audit_buf_free(&b);
    audit_reader_free(r);
    if (fflush(stdout) != 0)
        rc = EXIT_USAGE;
    return rc;
}

static int cmd_tail(struct opts *o)
{
    struct audit_reader *r;
    struct audit_item it;
    struct audit_buf b = {NULL, 0, 0};
    struct audit_buf *ring = NULL;
    size_t ring_n = 0, ring_at = 0;
    struct bst_err err;
    enum bst_status rv;
    int rc = 0, backlog = 1;

    if (audit_reader_open(&r, o->dir, o->follow, &err) != BST_OK) {
        fprintf(stderr, "bastion-audit: %s\n", err.msg);
        return EXIT_USAGE;
    }
    audit_reader_start_at_end(r, o->lines == 0);
    if (o->lines > 0 && (ring = calloc((size_t)o->lines, sizeof(*ring))) == NULL) {
        audit_reader_free(r);
        return EXIT_USAGE;
    }
    for (;;) {
        rv = audit_reader_next(r, &it, &err);
        if (rv == BST_OUT_OF_RANGE || rv == BST_UNAVAILABLE) {
            if (backlog) {
                /* The backlog of the newest segment is read: print its last lines. */
                for (size_t i = 0; i < ring_n; i++) {
                    struct audit_buf *l = &ring[(ring_at + i) % ring_n];
                    fwrite(l->data, 1, l->len, stdout);
                }
                fflush(stdout);
                backlog = 0;
            }
            if (rv == BST_OUT_OF_RANGE)
                break;
            {
                struct timespec ts = {0, 200 * 1000 * 1000};
                nanosleep(&ts, NULL);
            }
            continue;
        }
        if (rv != BST_OK) {
            warn_loss(&err);
            rc = EXIT_FAULT;
            if (rv == BST_INTERNAL)
                break;
            continue;
        }
        if (it.kind != AUDIT_FRAME_RECORD || it.record == NULL || !matches(&o->f, it.record))
            continue;
        if (render_line(&b, it.record) != 0) {
            rc = EXIT_USAGE;
            break;
        }
        if (backlog) {
            struct audit_buf *slot;
            if (o->lines == 0)
                continue;
            if (ring_n < (size_t)o->lines) {
                slot = &ring[ring_n++];
            } else {
                slot = &ring[ring_at];
                ring_at = (ring_at + 1) % ring_n;
            }
            slot->len = 0;
            audit_buf_put(slot, b.data, b.len);
        } else {
            if (fwrite(b.data, 1, b.len, stdout) != b.len || fflush(stdout) != 0) {
                rc = EXIT_USAGE;
                break;
            }
        }
    }
    for (long i = 0; ring != NULL && i < o->lines; i++)
        audit_buf_free(&ring[i]);
    free(ring);
    audit_buf_free(&b);
    audit_reader_free(r);
    return rc;
}

/* ---- verify -------------------------------------------------------------------------------- */

static int cmd_verify(struct opts *o)
{
    struct audit_verify_opts vo;
    struct audit_verify_result res;
    struct audit_pubkeys *keys = NULL;
    struct bst_err err;
    char hex[2 * AUDIT_HASH_LEN + 1];

    if (o->keys != NULL && audit_pubkeys_load(&keys, o->keys, &err) != BST_OK) {
        fprintf(stderr, "bastion-audit: %s\n", err.msg);
        return EXIT_USAGE;
    }
    memset(&vo, 0, sizeof(vo));
    vo.dir = o->dir;
    vo.keys = keys;
    vo.anchors = o->anchors;
    vo.n_anchors = o->n_anchors;
    vo.allow_torn_tail = o->allow_torn;
    if (audit_verify(&vo, &res, &err) != BST_OK) {
        fprintf(stderr, "bastion-audit: %s\n", err.msg);
        audit_pubkeys_free(keys);
        return EXIT_USAGE;
    }
    audit_pubkeys_free(keys);
    if (!res.ok) {
        printf("FAULT segment=%s sequence=%" PRIu64 " offset=%" PRIu64 ": %s\n",
               res.segment[0] != '\0' ? res.segment : "-", res.sequence, res.offset, res.message);
        printf("checked before the fault: %zu segments, %" PRIu64 " records, %" PRIu64
               " checkpoints\n",
               res.segments, res.records, res.checkpoints);
        return EXIT_FAULT;
    }
    bst_hex_encode(hex, res.head_hash, AUDIT_HASH_LEN);
    printf("OK %zu segments, %" PRIu64 " records (sequence %" PRIu64 "..%" PRIu64 "%s), %" PRIu64
           " checkpoints",
           res.segments, res.records, res.first_sequence, res.last_sequence,
           res.genesis ? ", from the first" : ", earlier ones removed by retention",
           res.checkpoints);
    if (keys != NULL || o->keys != NULL)
        printf(", %" PRIu64 " signatures verified (last covers sequence %" PRIu64 ")",
               res.verified_checkpoints, res.last_verified_sequence);
    if (res.anchors_checked > 0)
        printf(", %" PRIu64 " anchors matched", res.anchors_checked);
    printf("\nhead %" PRIu64 ":%s\n", res.last_sequence, hex);
    if (res.notes[0] != '\0')
        printf("note: %s\n", res.notes);
    return 0;
}

/* ---- stats --------------------------------------------------------------------------------- */

struct counter {
    char *key;
    uint64_t n;
};

struct table {
    struct counter *v;
    size_t n, cap;
    uint64_t other; /* past STATS_MAX_KEYS distinct keys */
};

static void count(struct table *t, const char *key)
{
    for (size_t i = 0; i < t->n; i++) {
        if (strcmp(t->v[i].key, key) == 0) {
            t->v[i].n++;
            return;
        }
    }
    if (t->n >= STATS_MAX_KEYS) {
        t->other++;
        return;
    }
    if (t->n == t->cap) {
        size_t cap = t->cap ? 2 * t->cap : 16;
        struct counter *p = realloc(t->v, cap * sizeof(*p));
        if (p == NULL) {
            t->other++;
            return;
        }
        t->v = p;
        t->cap = cap;
    }
    t->v[t->n].key = strdup(key);
    if (t->v[t->n].key == NULL) {
        t->other++;
        return;
    }
    t->v[t->n++].n = 1;
}

static int by_count(const void *a, const void *b)
{
    const struct counter *x = a, *y = b;
    if (x->n != y->n)
        return x->n < y->n ? 1 : -1;
    return strcmp(x->key, y->key);
}

static void print_table(const char *title, struct table *t, int json, int first)
{
    struct audit_buf b = {NULL, 0, 0};

    qsort(t->v, t->n, sizeof(*t->v), by_count);
    if (json) {
        printf("%s\"%s\":{", first ? "" : ",", title);
        for (size_t i = 0; i < t->n; i++) {
            b.len = 0;
            audit_json_string(&b, t->v[i].key, strlen(t->v[i].key));
            printf("%s%.*s:%" PRIu64, i > 0 ? "," : "", (int)b.len, (const char *)b.data,
                   t->v[i].n);
        }
        if (t->other > 0)
            printf("%s\"(other)\":%" PRIu64, t->n > 0 ? "," : "", t->other);
        printf("}");
    } else {
        printf("by %s:\n", title);
        for (size_t i = 0; i < t->n; i++) {
            b.len = 0;
            audit_json_string(&b, t->v[i].key, strlen(t->v[i].key));
            printf("  %-40.*s %10" PRIu64 "\n", (int)b.len, (const char *)b.data, t->v[i].n);
        }
        if (t->other > 0)
            printf("  %-40s %10" PRIu64 "\n", "(other)", t->other);
    }
    audit_buf_free(&b);
}

static void free_table(struct table *t)
{
    for (size_t i = 0; i < t->n; i++)
        free(t->v[i].key);
    free(t->v);
}

static int cmd_stats(struct opts *o)
{
    struct audit_reader *r;
    struct audit_item it;
    struct bst_err err;
    enum bst_status rv;
    struct table types = {0}, users = {0}, results = {0};
    uint64_t total = 0, first_seq = 0, last_seq = 0;
    int64_t first_t = 0, last_t = 0;
    int rc = 0;
    char a[32], b[32];

    if (audit_reader_open(&r, o->dir, 0, &err) != BST_OK) {
        fprintf(stderr, "bastion-audit: %s\n", err.msg);
        return EXIT_USAGE;
    }
    while ((rv = audit_reader_next(r, &it, &err)) != BST_OUT_OF_RANGE) {
        const Bastion__V1__AuditRecord *rec = it.record;
        const char *tn;
        if (rv != BST_OK) {
            warn_loss(&err);
            rc = EXIT_FAULT;
            if (rv == BST_INTERNAL)
                break;
            continue;
        }
        if (it.kind != AUDIT_FRAME_RECORD || rec == NULL || !matches(&o->f, rec))
            continue;
        if (total++ == 0) {
            first_seq = rec->sequence;
            first_t = rec->time_unix_nano;
        }
        last_seq = rec->sequence;
        last_t = rec->time_unix_nano;
        tn = rec->has_event_type ? audit_event_type_name(rec->event_type) : "unspecified";
        count(&types, tn != NULL ? tn : "unknown");
        count(&users,
              rec->principal != NULL && rec->principal->name != NULL ? rec->principal->name : "");
        count(&results, rec->result != NULL ? rec->result : "");
    }
    audit_reader_free(r);
    format_time(a, sizeof(a), first_t);
    format_time(b, sizeof(b), last_t);
    if (o->json) {
        printf("{\"records\":%" PRIu64 ",\"first_sequence\":%" PRIu64 ",\"last_sequence\":%" PRIu64
               ",\"first_time\":\"%s\",\"last_time\":\"%s\"",
               total, first_seq, last_seq, total ? a : "", total ? b : "");
        print_table("type", &types, 1, 0);
        print_table("user", &users, 1, 0);
        print_table("result", &results, 1, 0);
        printf("}\n");
    } else {
        printf("records: %" PRIu64, total);
        if (total > 0)
            printf(" (sequence %" PRIu64 "..%" PRIu64 ", %s .. %s)", first_seq, last_seq, a, b);
        printf("\n");
        print_table("type", &types, 0, 1);
        print_table("user", &users, 0, 1);
        print_table("result", &results, 0, 1);
    }
    free_table(&types);
    free_table(&users);
    free_table(&results);
    return rc;
}

/* ---- keygen -------------------------------------------------------------------------------- */

static int write_new_file(const char *path, const char *data, size_t len, mode_t mode)
{
    int fd = open(path, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC | O_NOFOLLOW, mode);
    int ok;
    if (fd < 0) {
        fprintf(stderr, "bastion-audit: %s: %s\n", path, strerror(errno));
        return -1;
    }
    ok = write(fd, data, len) == (ssize_t)len && fsync(fd) == 0;
    close(fd);
    if (!ok) {
        fprintf(stderr, "bastion-audit: %s: write failed\n", path);
        unlink(path);
        return -1;
    }
    return 0;
}

static int bio_to_file(BIO *bio, const char *path, mode_t mode)
{
    char *data;
    long n = BIO_get_mem_data(bio, &data);
    int rc = n > 0 ? write_new_file(path, data, (size_t)n, mode) : -1;
    OPENSSL_cleanse(data, n > 0 ? (size_t)n : 0);
    return rc;
}

static int cmd_keygen(struct opts *o)
{
    EVP_PKEY *pkey;
    BIO *priv = NULL, *pub = NULL;
    unsigned char raw[AUDIT_PUBKEY_LEN];
    size_t rawlen = sizeof(raw);
    char id[AUDIT_KEY_ID_MAX + 1];
    int rc = EXIT_USAGE;

    if (o->out == NULL)
        return fail_usage("%s", "keygen needs --out KEY.pem");
    pkey = EVP_PKEY_Q_keygen(NULL, NULL, "ED25519");
    if (pkey == NULL) {
        fprintf(stderr, "bastion-audit: key generation failed\n");
        return EXIT_USAGE;
    }
    priv = BIO_new(BIO_s_secmem());
    pub = BIO_new(BIO_s_mem());
    if (priv == NULL || pub == NULL ||
        PEM_write_bio_PrivateKey(priv, pkey, NULL, NULL, 0, NULL, NULL) != 1 ||
        PEM_write_bio_PUBKEY(pub, pkey) != 1 ||
        EVP_PKEY_get_raw_public_key(pkey, raw, &rawlen) != 1)
        goto out;
    if (bio_to_file(priv, o->out, 0600) != 0)
        goto out;
    if (o->pub != NULL && bio_to_file(pub, o->pub, 0644) != 0)
        goto out;
    audit_key_id_derive(raw, id);
    printf("%s\n", id);
    rc = 0;
out:
    BIO_free(priv);
    BIO_free(pub);
    EVP_PKEY_free(pkey);
    return rc;
}

int main(int argc, char **argv)
{
    struct opts o;
    struct audit_config cfg;
    int have_cfg = 0, rc;

    if (argc >= 2 && (strcmp(argv[1], "--help") == 0 || strcmp(argv[1], "-h") == 0 ||
                      strcmp(argv[1], "help") == 0)) {
        fputs(usage, stdout);
        return 0;
    }
    if (argc >= 2 && strcmp(argv[1], "--version") == 0) {
        printf("bastion-audit %s (audit segment format %d)\n", BASTION_VERSION,
               AUDIT_FORMAT_VERSION);
        return 0;
    }
    rc = parse_args(argc, argv, &o);
    if (rc != 0)
        return rc;
    if (strcmp(o.cmd, "keygen") == 0)
        return cmd_keygen(&o);
    if (strcmp(o.cmd, "cat") != 0 && strcmp(o.cmd, "tail") != 0 && strcmp(o.cmd, "verify") != 0 &&
        strcmp(o.cmd, "stats") != 0)
        return fail_usage("unknown command '%s'", o.cmd);
    rc = resolve_dir(&o, &cfg, &have_cfg);
    if (rc == 0) {
        if (strcmp(o.cmd, "cat") == 0)
            rc = cmd_cat(&o);
        else if (strcmp(o.cmd, "tail") == 0)
            rc = cmd_tail(&o);
        else if (strcmp(o.cmd, "verify") == 0)
            rc = cmd_verify(&o);
        else
            rc = cmd_stats(&o);
    }
    if (have_cfg)
        audit_config_dispose(&cfg);
    return rc;
}
