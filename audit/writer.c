/* The audit writer (audit.h): record preparation on the caller's thread, a queue bounded in
 * records and bytes, and one writer thread that frames, chains, writes, syncs, checkpoints,
 * rotates and prunes segment files, then hands committed frames to the webhook sink.
 *
 * Writing is transactional per group: frames are staged in a buffer with a working copy of the
 * chain state, written with pwrite at the committed end of the segment and synced; any failure
 * truncates the file back to that end and restores the committed chain state, so a failed write
 * never leaves a hole or a half frame behind a later good one. */
#include "audit.h"
#include "clock.h"
#include "format.h"
#include "log.h"
#include "reader.h"
#include "reqid.h"
#include "sign.h"
#include "text.h"
#include "webhook.h"

#include "bastion_version.h"
#include "bastion/v1/audit_log.pb-c.h"

#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#define N_EVENT_TYPES 7
#define MAX_TAGS 32
/* Truncation of an oversized record starts by cutting strings to this many bytes and lists to
 * this many entries, halving both until it fits. */
#define TRUNC_STRING_START 2048
#define TRUNC_LIST_START 64
/* Retry delays of a failed write in batch mode (records are kept and written later). */
/* The sequence the writer puts in front of a record: a tag byte and a varint. */
#define SEQ_PREFIX_MAX 11
#define RETRY_MIN_MS 50
#define RETRY_MAX_MS 2000

struct entry {
    struct entry *next;
    unsigned char *body; /* the record serialized without its sequence */
    size_t len;
    audit_done_fn done;
    void *arg;
    int admin; /* exempt from the queue limits, never dropped */
    int acked; /* done was called already (batch, best-effort) or there is none */
};

struct queue {
    struct entry *head, *tail;
    size_t n, bytes;
};

struct tagset {
    char *v[MAX_TAGS];
    size_t n;
};

struct chain {
    uint64_t next_seq;
    unsigned char head[AUDIT_HASH_LEN];
    unsigned last_kind;
    uint64_t since_checkpoint;
};

struct segment {
    int fd;
    char name[AUDIT_SEGMENT_NAME_LEN + 1];
    uint64_t size;    /* committed bytes */
    uint64_t records; /* committed records */
    int64_t opened_mono;
};

/* A frame staged in the write buffer. */
struct staged {
    unsigned kind;
    size_t off; /* of the payload in the buffer */
    size_t len;
    unsigned char hash[AUDIT_HASH_LEN];
    uint64_t seq;
};

struct audit {
    struct audit_config cfg; /* a deep copy */
    char instance[128];
    struct tagset tags[N_EVENT_TYPES];

    pthread_mutex_t mu;
    pthread_cond_t work;     /* the writer waits for entries, rotation, shutdown */
    pthread_cond_t progress; /* audit_flush waits for the writer */
    struct queue q;          /* admitted: the writer takes all of it */
    struct queue w;          /* waiting for room (blocking, batch) */
    int stopping;
    struct audit_signer *new_signer;
    unsigned char cur_pub[AUDIT_PUBKEY_LEN]; /* of the key in force or handed over */
    char cur_key_id[AUDIT_KEY_ID_MAX + 1];
    int cur_key_explicit;
    int have_key;
    uint64_t enqueued, finished; /* entries, for audit_flush */
    int64_t retry_at;            /* mono ns: no write attempt before (batch-mode retries) */
    int64_t retry_ms;
    pthread_t thread;
    int thread_started;

    atomic_uint_least64_t written, dropped, filtered, truncated, violations, write_errors,
        checkpoints, seg_created, seg_removed, last_seq;
    atomic_int healthy;

    /* Writer thread only (and audit_new before the thread starts). */
    int dirfd, lockfd;
    struct segment seg;
    struct chain c;  /* working */
    struct chain cc; /* committed */
    uint64_t floor;  /* retention floor written into headers */
    int64_t last_cp_mono;
    int64_t last_sync_mono;
    int dirty; /* written, not synced */
    struct audit_signer *signer;
    struct {
        int active;
        int64_t since_wall;
        uint64_t refused, dropped;
        char error[160];
    } outage;
    struct audit_buf wbuf;
    struct staged *st;
    size_t n_st, cap_st;
    struct audit_webhook *wh;
};

static int need_sync(const struct audit *a)
{
    return a->cfg.mode == AUDIT_MODE_BLOCKING || a->cfg.fsync.policy == AUDIT_FSYNC_ALWAYS;
}

/* ---- Configuration copy and tags ----------------------------------------------------------- */

/* Sets every string member to NULL (before copying, so a failed copy frees only copies). */
static void clear_strings(const struct bst_field *t, void *dst)
{
    static char *const none = NULL;
    for (; t->name != NULL; t++) {
        if (t->type == BST_F_SECTION)
            clear_strings(t->section, (char *)dst + t->offset);
        else if (t->type == BST_F_STRING)
            memcpy((char *)dst + t->offset, &none, sizeof(none));
    }
}

/* Duplicates every string of a decoded config (found through the field table) so that the
 * writer owns its copy. */
static int copy_strings(const struct bst_field *t, void *dst, const void *src)
{
    for (; t->name != NULL; t++) {
        if (t->type == BST_F_SECTION) {
            if (copy_strings(t->section, (char *)dst + t->offset, (const char *)src + t->offset) !=
                0)
                return -1;
        } else if (t->type == BST_F_STRING) {
            char *s, *copy = NULL;
            memcpy(&s, (const char *)src + t->offset, sizeof(s));
            if (s != NULL && (copy = strdup(s)) == NULL) {
                memcpy((char *)dst + t->offset, &copy, sizeof(copy));
                return -1;
            }
            memcpy((char *)dst + t->offset, &copy, sizeof(copy));
        }
    }
    return 0;
}

/* Splits "a, b,c" into trimmed tags. */
static enum bst_status parse_tags(struct tagset *ts, const char *list, const char *key,
                                  struct bst_err *err)
{
    const char *p = list != NULL ? list : "";

    while (*p != '\0') {
        const char *start, *end;
        while (*p == ' ' || *p == ',')
            p++;
        if (*p == '\0')
            break;
        start = p;
        while (*p != '\0' && *p != ',')
            p++;
        end = p;
        while (end > start && end[-1] == ' ')
            end--;
        if (ts->n >= MAX_TAGS)
            return bst_errf(err, BST_INVALID_ARGUMENT, "audit.compliance_tags.%s: more than %d",
                            key, MAX_TAGS);
        ts->v[ts->n] = strndup(start, (size_t)(end - start));
        if (ts->v[ts->n] == NULL)
            return bst_errf(err, BST_RESOURCE_EXHAUSTED, "out of memory");
        ts->n++;
    }
    return BST_OK;
}

/* ---- Record preparation (caller's thread) -------------------------------------------------- */

/* Returns 1 if every string in m (recursively) is valid UTF-8. */
static int strings_valid(const ProtobufCMessage *m, int depth)
{
    const ProtobufCMessageDescriptor *d = m->descriptor;
    const char *base = (const char *)m;

    if (depth > 8)
        return 1;
    for (unsigned i = 0; i < d->n_fields; i++) {
        const ProtobufCFieldDescriptor *f = &d->fields[i];
        size_t n = 1;
        void *const *vals;

        if (f->type != PROTOBUF_C_TYPE_STRING && f->type != PROTOBUF_C_TYPE_MESSAGE)
            continue;
        if (f->label == PROTOBUF_C_LABEL_REPEATED) {
            n = *(const size_t *)(base + f->quantifier_offset);
            vals = *(void *const *const *)(base + f->offset);
        } else {
            vals = (void *const *)(base + f->offset);
        }
        for (size_t j = 0; j < n && vals != NULL; j++) {
            if (vals[j] == NULL)
                continue;
            if (f->type == PROTOBUF_C_TYPE_STRING) {
                const char *s = vals[j];
                if (!bst_utf8_valid(s, strlen(s)))
                    return 0;
            } else if (!strings_valid(vals[j], depth + 1)) {
                return 0;
            }
        }
    }
    return 1;
}

/* A malloc'd copy of s with every invalid UTF-8 byte replaced by U+FFFD. */
static char *utf8_fix(const char *s)
{
    size_t len = strlen(s), i = 0, o = 0;
    char *out = malloc(3 * len + 1);

    if (out == NULL)
        return NULL;
    while (i < len) {
        size_t ok = bst_utf8_bad_offset(s + i, len - i);
        memcpy(out + o, s + i, ok);
        o += ok;
        i += ok;
        if (i < len) {
            memcpy(out + o, "\xef\xbf\xbd", 3);
            o += 3;
            i++;
        }
    }
    out[o] = '\0';
    return out;
}

/* A malloc'd copy of valid UTF-8 s cut to at most cap bytes on a character boundary. */
static char *utf8_cut(const char *s, size_t cap)
{
    size_t len = strlen(s);
    char *out;

    if (len > cap) {
        len = cap;
        while (len > 0 && ((unsigned char)s[len] & 0xc0) == 0x80)
            len--;
    }
    out = malloc(len + 1);
    if (out != NULL) {
        memcpy(out, s, len);
        out[len] = '\0';
    }
    return out;
}

/* Walks an unpacked message (system allocator) and rewrites strings: fixes UTF-8 (cap == 0) or
 * cuts strings to cap bytes and lists to max_list entries. Returns 0 or -1 (out of memory). */
static int rewrite(ProtobufCMessage *m, size_t cap, size_t max_list, int depth)
{
    const ProtobufCMessageDescriptor *d = m->descriptor;
    char *base = (char *)m;

    if (depth > 8)
        return 0;
    for (unsigned i = 0; i < d->n_fields; i++) {
        const ProtobufCFieldDescriptor *f = &d->fields[i];
        size_t n = 1;
        void **vals;

        if (f->type != PROTOBUF_C_TYPE_STRING && f->type != PROTOBUF_C_TYPE_MESSAGE)
            continue;
        if (f->label == PROTOBUF_C_LABEL_REPEATED) {
            size_t *np = (size_t *)(base + f->quantifier_offset);
            vals = *(void ***)(base + f->offset);
            if (cap > 0 && *np > max_list) {
                for (size_t j = max_list; j < *np; j++) {
                    if (f->type == PROTOBUF_C_TYPE_STRING)
                        free(vals[j]);
                    else
                        protobuf_c_message_free_unpacked(vals[j], NULL);
                }
                *np = max_list;
            }
            n = *np;
        } else {
            vals = (void **)(base + f->offset);
        }
        for (size_t j = 0; j < n && vals != NULL; j++) {
            if (vals[j] == NULL)
                continue;
            if (f->type == PROTOBUF_C_TYPE_STRING) {
                char *s = vals[j], *fixed;
                if (cap == 0 && bst_utf8_valid(s, strlen(s)))
                    continue;
                if (cap > 0 && strlen(s) <= cap)
                    continue;
                fixed = cap == 0 ? utf8_fix(s) : utf8_cut(s, cap);
                if (fixed == NULL)
                    return -1;
                /* A string equal to the descriptor's default is not ours to free. */
                if (s != f->default_value)
                    free(s);
                vals[j] = fixed;
            } else if (rewrite(vals[j], cap, max_list, depth + 1) != 0) {
                return -1;
            }
        }
    }
    return 0;
}

/* The slow path: a record with invalid UTF-8 or above the size limit is packed, unpacked into
 * memory we own, repaired, and packed again. */
static enum bst_status repair(struct audit *a, const Bastion__V1__AuditRecord *r, size_t size,
                              unsigned char **out, size_t *out_len)
{
    unsigned char *tmp = malloc(size > 0 ? size : 1);
    Bastion__V1__AuditRecord *copy;
    size_t cap = TRUNC_STRING_START, list = TRUNC_LIST_START;
    size_t max = (size_t)a->cfg.max_record_bytes - SEQ_PREFIX_MAX;

    if (tmp == NULL)
        return BST_RESOURCE_EXHAUSTED;
    protobuf_c_message_pack(&r->base, tmp);
    copy = bastion__v1__audit_record__unpack(NULL, size, tmp);
    free(tmp);
    if (copy == NULL)
        return BST_INTERNAL;
    if (rewrite(&copy->base, 0, 0, 0) != 0)
        goto oom;
    size = protobuf_c_message_get_packed_size(&copy->base);
    if (size > max) {
        atomic_fetch_add(&a->truncated, 1);
        copy->has_truncated = 1;
        copy->truncated = 1;
        while ((size = protobuf_c_message_get_packed_size(&copy->base)) > max) {
            if (cap < 16)
                goto toobig;
            if (rewrite(&copy->base, cap, list, 0) != 0)
                goto oom;
            cap /= 2;
            list = list > 1 ? list / 2 : 1;
        }
    }
    *out = malloc(size > 0 ? size : 1);
    if (*out == NULL)
        goto oom;
    *out_len = protobuf_c_message_pack(&copy->base, *out);
    bastion__v1__audit_record__free_unpacked(copy, NULL);
    return BST_OK;
oom:
    bastion__v1__audit_record__free_unpacked(copy, NULL);
    return BST_RESOURCE_EXHAUSTED;
toobig:
    bastion__v1__audit_record__free_unpacked(copy, NULL);
    return BST_INTERNAL;
}

/* Serializes rec without its sequence (the writer prepends it), with time, event id and tags
 * filled in. *out is malloc'd. */
static enum bst_status prepare(struct audit *a, const Bastion__V1__AuditRecord *rec,
                               unsigned char **out, size_t *out_len)
{
    Bastion__V1__AuditRecord r = *rec;
    char *tags_local[64 + MAX_TAGS];
    char **tags = NULL;
    struct bst_reqid id;
    char event_id[BST_REQID_HEX_LEN + 1];
    const struct tagset *ts;
    size_t size;
    enum bst_status rv;

    r.has_sequence = 0;
    r.sequence = 0;
    if (!r.has_time_unix_nano) {
        r.has_time_unix_nano = 1;
        r.time_unix_nano = bst_wall_ns();
    }
    if (r.event_id == NULL || r.event_id[0] == '\0') {
        if (bst_reqid_new(&id) != BST_OK)
            return BST_INTERNAL;
        memcpy(event_id, id.hex, sizeof(event_id));
        r.event_id = event_id;
    }
    ts = (r.has_event_type && (int)r.event_type >= 0 && (int)r.event_type < N_EVENT_TYPES)
             ? &a->tags[r.event_type]
             : NULL;
    if (ts != NULL && ts->n > 0) {
        size_t n = 0, total = r.n_compliance_tags + ts->n;
        tags = total <= sizeof(tags_local) / sizeof(tags_local[0]) ? tags_local
                                                                   : malloc(total * sizeof(*tags));
        if (tags == NULL)
            return BST_RESOURCE_EXHAUSTED;
        for (size_t i = 0; i < r.n_compliance_tags; i++)
            tags[n++] = r.compliance_tags[i];
        for (size_t i = 0; i < ts->n; i++) {
            int dup = 0;
            for (size_t j = 0; j < r.n_compliance_tags && !dup; j++)
                dup = r.compliance_tags[j] != NULL && strcmp(r.compliance_tags[j], ts->v[i]) == 0;
            if (!dup)
                tags[n++] = ts->v[i];
        }
        r.compliance_tags = tags;
        r.n_compliance_tags = n;
    }
    size = protobuf_c_message_get_packed_size(&r.base);
    if (size <= (size_t)a->cfg.max_record_bytes - SEQ_PREFIX_MAX && strings_valid(&r.base, 0)) {
        *out = malloc(size > 0 ? size : 1);
        rv = *out != NULL ? BST_OK : BST_RESOURCE_EXHAUSTED;
        if (rv == BST_OK)
            *out_len = protobuf_c_message_pack(&r.base, *out);
    } else {
        rv = repair(a, &r, size, out, out_len);
    }
    if (tags != tags_local)
        free(tags);
    return rv;
}

static struct entry *entry_new(unsigned char *body, size_t len, audit_done_fn done, void *arg)
{
    struct entry *e = calloc(1, sizeof(*e));
    if (e == NULL)
        return NULL;
    e->body = body;
    e->len = len;
    e->done = done;
    e->arg = arg;
    e->acked = done == NULL;
    return e;
}

static void entry_free(struct entry *e)
{
    if (e == NULL)
        return;
    free(e->body);
    free(e);
}

static void q_push(struct queue *q, struct entry *e)
{
    e->next = NULL;
    if (q->tail != NULL)
        q->tail->next = e;
    else
        q->head = e;
    q->tail = e;
    q->n++;
    q->bytes += e->len;
}

static struct entry *q_pop(struct queue *q)
{
    struct entry *e = q->head;
    if (e == NULL)
        return NULL;
    q->head = e->next;
    if (q->head == NULL)
        q->tail = NULL;
    q->n--;
    q->bytes -= e->len;
    e->next = NULL;
    return e;
}

/* Puts list (in order) back in front of q. */
static void q_prepend(struct queue *q, struct entry *list)
{
    struct entry *last = NULL;
    size_t n = 0, bytes = 0;

    for (struct entry *e = list; e != NULL; e = e->next) {
        last = e;
        n++;
        bytes += e->len;
    }
    if (last == NULL)
        return;
    last->next = q->head;
    q->head = list;
    if (q->tail == NULL)
        q->tail = last;
    q->n += n;
    q->bytes += bytes;
}

/* An admin or violation record made by the library itself. */
static struct entry *internal_record(struct audit *a, Bastion__V1__AuditEventType type,
                                     const char *action, const char *detail)
{
    Bastion__V1__AuditRecord r = BASTION__V1__AUDIT_RECORD__INIT;
    unsigned char *body = NULL;
    size_t len = 0;
    struct entry *e;

    r.has_event_type = 1;
    r.event_type = type;
    r.action = (char *)action;
    r.detail = (char *)detail;
    r.result =
        (char *)(type == BASTION__V1__AUDIT_EVENT_TYPE__AUDIT_EVENT_SECURITY_VIOLATION ? "violation"
                                                                                       : "ok");
    if (prepare(a, &r, &body, &len) != BST_OK)
        return NULL;
    e = entry_new(body, len, NULL, NULL);
    if (e == NULL)
        free(body);
    else
        e->admin = 1;
    return e;
}

/* ---- Staging and committing (writer thread) ------------------------------------------------ */

static int put_varint(struct audit_buf *b, uint64_t v)
{
    unsigned char tmp[10];
    size_t n = 0;
    do {
        tmp[n] = (unsigned char)(v & 0x7f);
        v >>= 7;
        if (v != 0)
            tmp[n] |= 0x80;
        n++;
    } while (v != 0);
    return audit_buf_put(b, tmp, n);
}

static int remember(struct audit *a, unsigned kind, size_t off, size_t len, uint64_t seq)
{
    struct staged *s;
    if (a->n_st == a->cap_st) {
        size_t cap = a->cap_st ? 2 * a->cap_st : 64;
        struct staged *p = realloc(a->st, cap * sizeof(*p));
        if (p == NULL)
            return -1;
        a->st = p;
        a->cap_st = cap;
    }
    s = &a->st[a->n_st++];
    s->kind = kind;
    s->off = off;
    s->len = len;
    s->seq = seq;
    memcpy(s->hash, a->c.head, AUDIT_HASH_LEN);
    return 0;
}

/* Stages one frame whose payload is prefix || body, chained on the working state. */
static int stage(struct audit *a, unsigned kind, const unsigned char *prefix, size_t plen,
                 const unsigned char *body, size_t blen, uint64_t seq)
{
    size_t start = a->wbuf.len, len = plen + blen;
    unsigned char head[AUDIT_FRAME_HEAD] = {(unsigned char)kind, (unsigned char)(len >> 24),
                                            (unsigned char)(len >> 16), (unsigned char)(len >> 8),
                                            (unsigned char)len};
    unsigned char hash[AUDIT_HASH_LEN];

    if (audit_buf_put(&a->wbuf, head, sizeof(head)) != 0 ||
        audit_buf_put(&a->wbuf, prefix, plen) != 0 || audit_buf_put(&a->wbuf, body, blen) != 0)
        goto fail;
    audit_chain_hash(a->c.head, kind, a->wbuf.data + start + AUDIT_FRAME_HEAD, len, hash);
    if (audit_buf_put(&a->wbuf, hash, sizeof(hash)) != 0)
        goto fail;
    memcpy(a->c.head, hash, AUDIT_HASH_LEN);
    a->c.last_kind = kind;
    if (remember(a, kind, start + AUDIT_FRAME_HEAD, len, seq) != 0)
        goto fail;
    return 0;
fail:
    a->wbuf.len = start;
    errno = ENOMEM;
    return -1;
}

static int stage_record(struct audit *a, const struct entry *e)
{
    struct audit_buf prefix = {NULL, 0, 0};
    uint64_t seq = a->c.next_seq;
    int rc;

    /* Field 1 (sequence), varint: the body was packed without it, and protobuf merges fields
     * in any order, so prefix || body is the whole record. */
    if (audit_buf_putc(&prefix, 0x08) != 0 || put_varint(&prefix, seq) != 0) {
        audit_buf_free(&prefix);
        errno = ENOMEM;
        return -1;
    }
    rc = stage(a, AUDIT_FRAME_RECORD, prefix.data, prefix.len, e->body, e->len, seq);
    audit_buf_free(&prefix);
    if (rc == 0) {
        a->c.next_seq++;
        a->c.since_checkpoint++;
    }
    return rc;
}

/* Stages a checkpoint of the working chain head (which must be a record). */
static int stage_checkpoint(struct audit *a)
{
    Bastion__V1__AuditCheckpoint cp = BASTION__V1__AUDIT_CHECKPOINT__INIT;
    unsigned char sig[AUDIT_SIG_LEN];
    unsigned char buf[256];
    size_t n;

    if (a->c.last_kind != AUDIT_FRAME_RECORD)
        return 0;
    cp.has_sequence = 1;
    cp.sequence = a->c.next_seq - 1;
    cp.has_chain_hash = 1;
    cp.chain_hash.data = a->c.head;
    cp.chain_hash.len = AUDIT_HASH_LEN;
    cp.has_time_unix_nano = 1;
    cp.time_unix_nano = bst_wall_ns();
    if (a->signer != NULL) {
        if (audit_signer_sign(a->signer, cp.sequence, a->c.head, sig) != BST_OK) {
            bst_log(BST_LOG_ERROR, "audit_sign_failed", NULL);
        } else {
            cp.key_id = a->signer->key_id;
            cp.has_signature = 1;
            cp.signature.data = sig;
            cp.signature.len = AUDIT_SIG_LEN;
        }
    }
    n = protobuf_c_message_get_packed_size(&cp.base);
    if (n > sizeof(buf)) {
        errno = EOVERFLOW;
        return -1;
    }
    protobuf_c_message_pack(&cp.base, buf);
    if (stage(a, AUDIT_FRAME_CHECKPOINT, buf, n, NULL, 0, cp.sequence) != 0)
        return -1;
    a->c.since_checkpoint = 0;
    return 0;
}

static void discard_staged(struct audit *a)
{
    a->wbuf.len = 0;
    a->n_st = 0;
    a->c = a->cc;
}

static int sync_segment(struct audit *a)
{
    if (a->seg.fd < 0)
        return 0;
    if (fdatasync(a->seg.fd) != 0)
        return -1;
    a->dirty = 0;
    a->last_sync_mono = bst_mono_ns();
    return 0;
}

/* Writes the staged frames at the committed end of the segment and syncs when asked. On
 * success the working chain state becomes the committed one and the frames go to the webhook.
 * On failure the file is cut back to its committed end and the staged frames are discarded;
 * returns -1 with errno. */
static int commit(struct audit *a, int sync)
{
    size_t done = 0;
    int e;

    while (done < a->wbuf.len) {
        ssize_t n =
            pwrite(a->seg.fd, a->wbuf.data + done, a->wbuf.len - done, (off_t)(a->seg.size + done));
        if (n < 0 && errno == EINTR)
            continue;
        if (n <= 0) {
            if (n == 0)
                errno = EIO;
            goto fail;
        }
        done += (size_t)n;
    }
    if (sync && a->wbuf.len > 0 && sync_segment(a) != 0)
        goto fail;
    if (!sync && a->wbuf.len > 0)
        a->dirty = 1;
    a->seg.size += a->wbuf.len;
    for (size_t i = 0; i < a->n_st; i++) {
        const struct staged *s = &a->st[i];
        if (s->kind == AUDIT_FRAME_RECORD) {
            a->seg.records++;
            atomic_fetch_add(&a->written, 1);
            atomic_store(&a->last_seq, s->seq);
        } else if (s->kind == AUDIT_FRAME_CHECKPOINT) {
            atomic_fetch_add(&a->checkpoints, 1);
            a->last_cp_mono = bst_mono_ns();
        }
        if (a->wh != NULL)
            audit_webhook_push(a->wh, s->kind, a->wbuf.data + s->off, s->len, s->hash);
    }
    a->cc = a->c;
    a->wbuf.len = 0;
    a->n_st = 0;
    return 0;
fail:
    e = errno;
    atomic_fetch_add(&a->write_errors, 1);
    /* Cut whatever part of the group reached the file; a later group must follow the last
     * committed frame directly. */
    if (ftruncate(a->seg.fd, (off_t)a->seg.size) != 0)
        bst_log(BST_LOG_ERROR, "audit_truncate_failed", "segment", a->seg.name, "error",
                strerror(errno), NULL);
    discard_staged(a);
    errno = e;
    return -1;
}

/* ---- Segments ------------------------------------------------------------------------------ */

static int sync_dir(struct audit *a)
{
    return fsync(a->dirfd);
}

/* Chooses the oldest segments that retention removes (never the newest existing one's
 * successor, which is about to be created). Returns how many of names[0..n) go, and the
 * retention floor that results. */
static size_t retention_plan(struct audit *a, char **names, size_t n, uint64_t *floor)
{
    size_t drop = 0;
    int64_t now_s = bst_wall_ns() / BST_NS_PER_S;

    if (a->cfg.retention.segments > 0 && n + 1 > (size_t)a->cfg.retention.segments)
        drop = n + 1 - (size_t)a->cfg.retention.segments;
    if (a->cfg.retention.max_age_ms > 0) {
        /* Oldest first, stopping at the first young one, so what remains stays contiguous. */
        while (drop < n) {
            struct stat st;
            if (fstatat(a->dirfd, names[drop], &st, AT_SYMLINK_NOFOLLOW) != 0)
                break;
            if ((int64_t)st.st_mtime * 1000 + a->cfg.retention.max_age_ms >= now_s * 1000)
                break;
            drop++;
        }
    }
    *floor = a->floor;
    if (drop > 0) {
        uint64_t first = a->c.next_seq;
        if (drop < n)
            audit_segment_name_parse(names[drop], &first);
        if (first > *floor)
            *floor = first;
    }
    return drop;
}

/* Creates the next segment (its header chained on the current head), applying retention first.
 * Returns 0, or -1 with errno (nothing is left behind). */
static int open_segment(struct audit *a)
{
    Bastion__V1__AuditSegmentHeader h = BASTION__V1__AUDIT_SEGMENT_HEADER__INIT;
    char writer[256];
    char **names = NULL;
    size_t n = 0, drop = 0;
    uint64_t floor = a->floor;
    unsigned char *payload = NULL;
    size_t plen;
    int e;

    if (audit_list_segments(a->cfg.directory, &names, &n, NULL) == BST_OK)
        drop = retention_plan(a, names, n, &floor);
    audit_segment_name(a->seg.name, a->c.next_seq);
    a->seg.fd =
        openat(a->dirfd, a->seg.name, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC | O_NOFOLLOW, 0600);
    if (a->seg.fd < 0)
        goto fail;
    a->seg.size = 0;
    a->seg.records = 0;
    snprintf(writer, sizeof(writer), "bastiond %s pid %ld on %s", BASTION_VERSION, (long)getpid(),
             a->instance);
    h.has_format_version = 1;
    h.format_version = AUDIT_FORMAT_VERSION;
    h.has_first_sequence = 1;
    h.first_sequence = a->c.next_seq;
    h.has_previous_hash = 1;
    h.previous_hash.data = a->c.head;
    h.previous_hash.len = AUDIT_HASH_LEN;
    h.has_created_unix_nano = 1;
    h.created_unix_nano = bst_wall_ns();
    h.has_retained_from_sequence = 1;
    h.retained_from_sequence = floor;
    h.writer = writer;
    plen = protobuf_c_message_get_packed_size(&h.base);
    payload = malloc(plen);
    if (payload == NULL) {
        errno = ENOMEM;
        goto fail;
    }
    protobuf_c_message_pack(&h.base, payload);
    discard_staged(a);
    if (audit_buf_put(&a->wbuf, AUDIT_MAGIC, AUDIT_MAGIC_LEN) != 0 ||
        stage(a, AUDIT_FRAME_HEADER, payload, plen, NULL, 0, a->c.next_seq) != 0) {
        discard_staged(a);
        errno = ENOMEM;
        goto fail;
    }
    if (commit(a, 1) != 0 || sync_dir(a) != 0)
        goto fail;
    a->floor = floor;
    a->seg.opened_mono = bst_mono_ns();
    atomic_fetch_add(&a->seg_created, 1);
    for (size_t i = 0; i < drop; i++) {
        if (unlinkat(a->dirfd, names[i], 0) == 0) {
            atomic_fetch_add(&a->seg_removed, 1);
            bst_log(BST_LOG_INFO, "audit_segment_removed", "segment", names[i], "reason",
                    "retention", NULL);
        }
    }
    if (drop > 0)
        sync_dir(a);
    free(payload);
    for (size_t i = 0; i < n; i++)
        free(names[i]);
    free(names);
    return 0;
fail:
    e = errno;
    if (a->seg.fd >= 0) {
        close(a->seg.fd);
        unlinkat(a->dirfd, a->seg.name, 0);
    }
    a->seg.fd = -1;
    a->seg.size = 0;
    free(payload);
    for (size_t i = 0; i < n; i++)
        free(names[i]);
    free(names);
    errno = e;
    return -1;
}

/* Closes the current segment with a checkpoint of its last record and a sync. */
static void close_segment(struct audit *a)
{
    if (a->seg.fd < 0)
        return;
    if (a->cc.since_checkpoint > 0 && a->cc.last_kind == AUDIT_FRAME_RECORD) {
        if (stage_checkpoint(a) != 0 || commit(a, 1) != 0)
            bst_log(BST_LOG_WARN, "audit_checkpoint_failed", "segment", a->seg.name, NULL);
    }
    if (sync_segment(a) != 0)
        bst_log(BST_LOG_ERROR, "audit_sync_failed", "segment", a->seg.name, "error",
                strerror(errno), NULL);
    close(a->seg.fd);
    a->seg.fd = -1;
}

static int rotation_due(const struct audit *a, size_t more, int64_t now)
{
    if (a->seg.fd < 0 || a->seg.records == 0)
        return 0;
    return a->seg.size + a->wbuf.len + more > (uint64_t)a->cfg.segment.max_bytes ||
           now - a->seg.opened_mono >= a->cfg.segment.max_age_ms * BST_NS_PER_MS;
}

/* ---- Groups -------------------------------------------------------------------------------- */

static void note_failure(struct audit *a, int err)
{
    if (!a->outage.active) {
        a->outage.active = 1;
        a->outage.since_wall = bst_wall_ns();
        a->outage.refused = 0;
        a->outage.dropped = 0;
        snprintf(a->outage.error, sizeof(a->outage.error), "%s", strerror(err));
        bst_log(BST_LOG_ERROR, "audit_write_failed", "directory", a->cfg.directory, "error",
                a->outage.error, "mode",
                a->cfg.mode == AUDIT_MODE_BLOCKING ? "blocking (calls fail closed)"
                : a->cfg.mode == AUDIT_MODE_BATCH  ? "batch (records kept, retried)"
                                                   : "best-effort (records dropped)",
                NULL);
    }
    atomic_store(&a->healthy, 0);
}

/* Completes entries whose frames were committed. */
static void complete_ok(struct audit *a, struct entry *from, struct entry *to)
{
    for (struct entry *e = from; e != to;) {
        struct entry *next = e->next;
        if (!e->acked && e->done != NULL)
            e->done(e->arg, BST_OK);
        entry_free(e);
        e = next;
    }
}

/* Handles entries that could not be written, per mode. Returns how many were finished (the
 * rest were put back in the queue for a retry). */
static size_t complete_failed(struct audit *a, struct entry *list, int stopping)
{
    size_t finished = 0;
    struct entry *keep = NULL, **kt = &keep;

    for (struct entry *e = list; e != NULL;) {
        struct entry *next = e->next;
        e->next = NULL;
        if (a->cfg.mode == AUDIT_MODE_BATCH && !stopping) {
            *kt = e;
            kt = &e->next;
            e = next;
            continue;
        }
        if (!e->acked) {
            atomic_fetch_add(&a->violations, 1);
            a->outage.refused++;
            if (e->done != NULL)
                e->done(e->arg, BST_UNAVAILABLE);
        } else if (!e->admin) {
            atomic_fetch_add(&a->dropped, 1);
            a->outage.dropped++;
        }
        entry_free(e);
        finished++;
        e = next;
    }
    if (keep != NULL) {
        pthread_mutex_lock(&a->mu);
        q_prepend(&a->q, keep);
        a->retry_ms = a->retry_ms == 0
                          ? RETRY_MIN_MS
                          : (a->retry_ms * 2 > RETRY_MAX_MS ? RETRY_MAX_MS : a->retry_ms * 2);
        a->retry_at = bst_mono_ns() + a->retry_ms * BST_NS_PER_MS;
        pthread_mutex_unlock(&a->mu);
    }
    return finished;
}

/* Writes a group of entries (in order). Returns how many entries were finished. */
static size_t write_group(struct audit *a, struct entry *list, int stopping)
{
    struct entry *first_uncommitted = list, *e = list;
    struct entry *outage_e = NULL;
    size_t finished = 0;
    int sync = need_sync(a);
    int err = 0;

    if (list == NULL)
        return 0;
    if (a->outage.active) {
        char detail[400];
        char when[32];
        time_t t = (time_t)(a->outage.since_wall / BST_NS_PER_S);
        struct tm tm;
        gmtime_r(&t, &tm);
        strftime(when, sizeof(when), "%Y-%m-%dT%H:%M:%SZ", &tm);
        snprintf(detail, sizeof(detail),
                 "audit writes failed from %s until now (%s): %" PRIu64
                 " submissions refused, %" PRIu64 " records dropped",
                 when, a->outage.error, a->outage.refused, a->outage.dropped);
        outage_e = internal_record(a, BASTION__V1__AUDIT_EVENT_TYPE__AUDIT_EVENT_SECURITY_VIOLATION,
                                   "write_failed", detail);
    }
    if (a->seg.fd < 0 && open_segment(a) != 0) {
        err = errno;
        goto fail;
    }
    if (outage_e != NULL && stage_record(a, outage_e) != 0) {
        err = errno;
        goto fail;
    }
    for (e = list; e != NULL; e = e->next) {
        int64_t now = bst_mono_ns();
        if (rotation_due(a, e->len + AUDIT_FRAME_OVERHEAD + 12, now)) {
            if (a->wbuf.len > 0) {
                if (commit(a, sync) != 0) {
                    err = errno;
                    goto fail;
                }
                for (struct entry *x = first_uncommitted; x != e; x = x->next)
                    finished++;
                complete_ok(a, first_uncommitted, e);
                first_uncommitted = e;
            }
            close_segment(a);
            if (open_segment(a) != 0) {
                err = errno;
                goto fail;
            }
        }
        if (stage_record(a, e) != 0) {
            err = errno;
            goto fail;
        }
        if (a->c.since_checkpoint >= (uint64_t)a->cfg.checkpoint.records &&
            stage_checkpoint(a) != 0) {
            err = errno;
            goto fail;
        }
    }
    if (commit(a, sync) != 0) {
        err = errno;
        goto fail;
    }
    if (a->outage.active && outage_e != NULL) {
        a->outage.active = 0;
        bst_log(BST_LOG_INFO, "audit_write_recovered", "directory", a->cfg.directory, NULL);
    }
    entry_free(outage_e);
    atomic_store(&a->healthy, 1);
    a->retry_ms = 0;
    /* complete_ok frees the entries, so count first. */
    for (struct entry *x = first_uncommitted; x != NULL; x = x->next)
        finished++;
    complete_ok(a, first_uncommitted, NULL);
    return finished;
fail:
    discard_staged(a);
    entry_free(outage_e);
    note_failure(a, err);
    /* A partial group was cut back; a segment whose header could not be made durable is gone.
     * Both are retried with the next group. */
    return finished + complete_failed(a, first_uncommitted, stopping);
}

/* A checkpoint now (timer, rotation of the key, shutdown), when records came since the last. */
static void checkpoint_now(struct audit *a)
{
    if (a->seg.fd < 0 || a->cc.since_checkpoint == 0 || a->cc.last_kind != AUDIT_FRAME_RECORD)
        return;
    if (stage_checkpoint(a) != 0 || commit(a, need_sync(a)) != 0) {
        discard_staged(a);
        bst_log(BST_LOG_WARN, "audit_checkpoint_failed", "error", strerror(errno), NULL);
    }
}

/* Writes one internal record now, followed by a checkpoint. */
static int write_internal(struct audit *a, Bastion__V1__AuditEventType type, const char *action,
                          const char *detail)
{
    struct entry *e = internal_record(a, type, action, detail);
    uint64_t before = atomic_load(&a->written);

    if (e == NULL)
        return -1;
    write_group(a, e, 1);
    return atomic_load(&a->written) > before ? 0 : -1;
}

static void apply_key(struct audit *a, struct audit_signer *s)
{
    char detail[300];
    char pubhex[2 * AUDIT_PUBKEY_LEN + 1];
    char old_id[AUDIT_KEY_ID_MAX + 1];
    struct bst_err err;

    snprintf(old_id, sizeof(old_id), "%s", a->signer != NULL ? a->signer->key_id : "(unsigned)");
    /* The head so far is signed by the old key before the new one takes over. */
    checkpoint_now(a);
    if (a->cfg.signing.public_keys_dir != NULL && a->cfg.signing.public_keys_dir[0] != '\0' &&
        audit_signer_export(s, a->cfg.signing.public_keys_dir, &err) != BST_OK)
        bst_log(BST_LOG_ERROR, "audit_key_export_failed", "error", err.msg, NULL);
    audit_signer_free(a->signer);
    a->signer = s;
    bst_hex_encode(pubhex, s->pub, AUDIT_PUBKEY_LEN);
    snprintf(detail, sizeof(detail),
             "checkpoint signing key changed from %s to %s (Ed25519 public key %s)", old_id,
             s->key_id, pubhex);
    bst_log(BST_LOG_INFO, "audit_key_rotation", "old_key_id", old_id, "key_id", s->key_id, NULL);
    if (write_internal(a, BASTION__V1__AUDIT_EVENT_TYPE__AUDIT_EVENT_ADMIN, "key_rotation",
                       detail) == 0)
        checkpoint_now(a);
}

/* ---- The writer thread --------------------------------------------------------------------- */

static struct timespec abs_after_ns(int64_t ns)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    if (ns < 0)
        ns = 0;
    ts.tv_sec += (time_t)(ns / BST_NS_PER_S);
    ts.tv_nsec += (long)(ns % BST_NS_PER_S);
    if (ts.tv_nsec >= 1000000000L) {
        ts.tv_sec++;
        ts.tv_nsec -= 1000000000L;
    }
    return ts;
}

/* The earliest time a timer needs the writer (mono ns), or INT64_MAX. */
static int64_t next_timer(const struct audit *a)
{
    int64_t t = INT64_MAX;

    if (a->cc.since_checkpoint > 0 && a->seg.fd >= 0) {
        int64_t due = a->last_cp_mono + a->cfg.checkpoint.interval_ms * BST_NS_PER_MS;
        if (due < t)
            t = due;
    }
    if (a->dirty && a->cfg.fsync.policy == AUDIT_FSYNC_INTERVAL) {
        int64_t due = a->last_sync_mono + a->cfg.fsync.interval_ms * BST_NS_PER_MS;
        if (due < t)
            t = due;
    }
    if (a->seg.fd >= 0 && a->seg.records > 0) {
        int64_t due = a->seg.opened_mono + a->cfg.segment.max_age_ms * BST_NS_PER_MS;
        if (due < t)
            t = due;
    }
    return t;
}

static void run_timers(struct audit *a)
{
    int64_t now = bst_mono_ns();

    if (a->cc.since_checkpoint > 0 &&
        now >= a->last_cp_mono + a->cfg.checkpoint.interval_ms * BST_NS_PER_MS)
        checkpoint_now(a);
    if (a->dirty && a->cfg.fsync.policy == AUDIT_FSYNC_INTERVAL &&
        now >= a->last_sync_mono + a->cfg.fsync.interval_ms * BST_NS_PER_MS &&
        sync_segment(a) != 0) {
        atomic_fetch_add(&a->write_errors, 1);
        bst_log(BST_LOG_ERROR, "audit_sync_failed", "segment", a->seg.name, "error",
                strerror(errno), NULL);
        a->last_sync_mono = now;
    }
    if (rotation_due(a, 0, now)) {
        close_segment(a);
        if (open_segment(a) != 0)
            note_failure(a, errno);
    }
}

/* Pairs of done callbacks to call outside the lock. */
struct acks {
    audit_done_fn *fn;
    void **arg;
    size_t n, cap;
};

static void acks_add(struct acks *k, audit_done_fn fn, void *arg)
{
    if (k->n == k->cap) {
        size_t cap = k->cap ? 2 * k->cap : 64;
        audit_done_fn *f = realloc(k->fn, cap * sizeof(*f));
        void **p;
        if (f == NULL)
            return;
        k->fn = f;
        p = realloc(k->arg, cap * sizeof(*p));
        if (p == NULL)
            return;
        k->arg = p;
        k->cap = cap;
    }
    k->fn[k->n] = fn;
    k->arg[k->n] = arg;
    k->n++;
}

/* Moves waiting entries into the (now emptier) queue while it has room. Under the lock. Batch
 * mode acknowledges them: they are queued now. */
static void admit_waiting(struct audit *a, struct acks *k)
{
    while (a->w.head != NULL) {
        struct entry *e = a->w.head;
        if (a->q.n >= (size_t)a->cfg.queue.records ||
            (a->q.n > 0 && a->q.bytes + e->len > (size_t)a->cfg.queue.bytes))
            break;
        q_pop(&a->w);
        if (a->cfg.mode == AUDIT_MODE_BATCH && !e->acked) {
            e->acked = 1;
            acks_add(k, e->done, e->arg);
        }
        q_push(&a->q, e);
    }
}

static void *writer_main(void *arg)
{
    struct audit *a = arg;
    struct acks k = {NULL, NULL, 0, 0};

    pthread_mutex_lock(&a->mu);
    for (;;) {
        struct entry *group;
        struct audit_signer *s;
        size_t finished;
        int stopping;

        for (;;) {
            int64_t now = bst_mono_ns(), due;
            int ready = a->q.head != NULL && (now >= a->retry_at || a->stopping);
            if (ready || a->new_signer != NULL || (a->stopping && a->q.head == NULL))
                break;
            due = next_timer(a);
            if (a->q.head != NULL && a->retry_at < due)
                due = a->retry_at;
            if (due <= now)
                break;
            if (due == INT64_MAX) {
                pthread_cond_wait(&a->work, &a->mu);
            } else {
                struct timespec ts = abs_after_ns(due - now);
                pthread_cond_timedwait(&a->work, &a->mu, &ts);
            }
        }
        /* Group commit window: let more records join the first one. */
        if (a->cfg.fsync.group_commit_ms > 0 && a->q.head != NULL && !a->stopping) {
            int64_t until = bst_mono_ns() + a->cfg.fsync.group_commit_ms * BST_NS_PER_MS;
            while (!a->stopping && a->q.n < (size_t)a->cfg.queue.records && bst_mono_ns() < until) {
                struct timespec ts = abs_after_ns(until - bst_mono_ns());
                pthread_cond_timedwait(&a->work, &a->mu, &ts);
            }
        }
        group = NULL;
        if (a->q.head != NULL && (bst_mono_ns() >= a->retry_at || a->stopping)) {
            group = a->q.head;
            a->q.head = a->q.tail = NULL;
            a->q.n = a->q.bytes = 0;
        }
        k.n = 0;
        admit_waiting(a, &k);
        s = a->new_signer;
        a->new_signer = NULL;
        stopping = a->stopping;
        pthread_mutex_unlock(&a->mu);

        for (size_t i = 0; i < k.n; i++)
            k.fn[i](k.arg[i], BST_OK);
        if (s != NULL)
            apply_key(a, s);
        finished = write_group(a, group, stopping);
        run_timers(a);

        pthread_mutex_lock(&a->mu);
        a->finished += finished;
        pthread_cond_broadcast(&a->progress);
        if (a->stopping && a->q.head == NULL && a->w.head == NULL && a->new_signer == NULL)
            break;
    }
    pthread_mutex_unlock(&a->mu);
    free(k.fn);
    free(k.arg);

    if (write_internal(a, BASTION__V1__AUDIT_EVENT_TYPE__AUDIT_EVENT_ADMIN, "shutdown",
                       "audit writer stopped; everything queued was written") != 0)
        bst_log(BST_LOG_ERROR, "audit_shutdown_record_failed", NULL);
    close_segment(a);
    sync_dir(a);
    pthread_mutex_lock(&a->mu);
    pthread_cond_broadcast(&a->progress);
    pthread_mutex_unlock(&a->mu);
    return NULL;
}

/* ---- Start-up: directory, lock, recovery --------------------------------------------------- */

/* mkdir -p with mode 0700 for every directory created. */
static int make_dirs(const char *path)
{
    char *p = strdup(path);
    int rc = 0;

    if (p == NULL)
        return -1;
    for (char *s = p + 1; *s != '\0'; s++) {
        if (*s != '/')
            continue;
        *s = '\0';
        if (mkdir(p, 0700) != 0 && errno != EEXIST)
            rc = -1;
        *s = '/';
        if (rc != 0)
            break;
    }
    if (rc == 0 && mkdir(p, 0700) != 0 && errno != EEXIST)
        rc = -1;
    free(p);
    return rc;
}

/* Copies the bytes from off to the end of the segment into a file beside it, so a cut tail
 * stays available for inspection. Returns 0 or -1. */
static int keep_tail(struct audit *a, const char *name, uint64_t off, char *kept, size_t kept_size)
{
    int in = openat(a->dirfd, name, O_RDONLY | O_CLOEXEC | O_NOFOLLOW);
    int out = -1, rc = -1;
    unsigned char buf[65536];
    ssize_t n;

    snprintf(kept, kept_size, "%s.torn-%" PRId64, name, bst_wall_ns());
    if (in < 0)
        return -1;
    out = openat(a->dirfd, kept, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC | O_NOFOLLOW, 0600);
    if (out < 0 || lseek(in, (off_t)off, SEEK_SET) < 0)
        goto out;
    while ((n = read(in, buf, sizeof(buf))) > 0) {
        if (write(out, buf, (size_t)n) != n)
            goto out;
    }
    if (n == 0 && fsync(out) == 0)
        rc = 0;
out:
    if (out >= 0)
        close(out);
    close(in);
    return rc;
}

/* Finds where the chain ends, cutting a torn or invalid tail of the last segment. Fills
 * detail (empty when nothing was cut) and *violation (invalid data rather than a torn write). */
static enum bst_status recover(struct audit *a, char *detail, size_t detail_size, int *violation,
                               struct bst_err *err)
{
    char **names = NULL;
    size_t n = 0;
    enum bst_status rv;
    size_t used = 0;

    detail[0] = '\0';
    *violation = 0;
    rv = audit_list_segments(a->cfg.directory, &names, &n, err);
    if (rv != BST_OK)
        return rv;
    memset(&a->c, 0, sizeof(a->c));
    a->c.next_seq = 1;
    a->floor = 1;
    while (n > 0) {
        const char *name = names[n - 1];
        struct audit_walk w;
        FILE *f;
        int fd = openat(a->dirfd, name, O_RDWR | O_CLOEXEC | O_NOFOLLOW);
        struct stat st;
        char kept[AUDIT_SEGMENT_NAME_LEN + 32];

        if (fd < 0 || fstat(fd, &st) != 0 || (f = fdopen(dup(fd), "rb")) == NULL) {
            rv = bst_errf(err, BST_UNAVAILABLE, "%s/%s: %s", a->cfg.directory, name,
                          strerror(errno));
            if (fd >= 0)
                close(fd);
            goto out;
        }
        memset(&w, 0, sizeof(w));
        audit_walk_segment(f, name, &w);
        fclose(f);
        if (!w.has_header) {
            /* Not even a header: a crash right after the file was created, or garbage. The
             * chain ends in the segment before; the file is kept under another name. */
            snprintf(kept, sizeof(kept), "%s.torn-%" PRId64, name, bst_wall_ns());
            close(fd);
            if (renameat(a->dirfd, name, a->dirfd, kept) != 0) {
                rv = bst_errf(err, BST_UNAVAILABLE, "cannot move %s aside: %s", name,
                              strerror(errno));
                goto out;
            }
            sync_dir(a);
            used += (size_t)snprintf(detail + used, used < detail_size ? detail_size - used : 0,
                                     "%ssegment %s had no valid header (%s): moved to %s",
                                     used > 0 ? "; " : "", name, w.why, kept);
            if (used >= detail_size)
                used = detail_size - 1;
            *violation |= st.st_size > AUDIT_MAGIC_LEN + AUDIT_FRAME_OVERHEAD + 256;
            free(names[--n]);
            continue;
        }
        a->c.next_seq = w.next_seq;
        memcpy(a->c.head, w.prev_hash, AUDIT_HASH_LEN);
        a->c.last_kind = w.last_kind;
        a->floor = w.header_floor > 0 ? w.header_floor : 1;
        if (w.stop != AUDIT_WALK_END && (uint64_t)st.st_size > w.valid_len) {
            uint64_t cut = (uint64_t)st.st_size - w.valid_len;
            int kept_ok = keep_tail(a, name, w.valid_len, kept, sizeof(kept)) == 0;
            if (ftruncate(fd, (off_t)w.valid_len) != 0 || fsync(fd) != 0) {
                rv = bst_errf(err, BST_UNAVAILABLE, "cannot cut the torn tail of %s: %s", name,
                              strerror(errno));
                close(fd);
                goto out;
            }
            sync_dir(a);
            *violation |= w.stop == AUDIT_WALK_FAULT;
            snprintf(detail + used, used < detail_size ? detail_size - used : 0,
                     "%ssegment %s: cut %" PRIu64 " bytes at offset %" PRIu64
                     " after sequence %" PRIu64 " (%s: %s); %s",
                     used > 0 ? "; " : "", name, cut, w.valid_len, w.next_seq - 1,
                     w.stop == AUDIT_WALK_TORN ? "an incomplete last write" : "invalid data", w.why,
                     kept_ok ? kept : "the cut bytes could not be kept");
        }
        close(fd);
        if (w.records == 0 && w.checkpoints == 0) {
            /* Only a header: the segment created next replaces it, with the same name and the
             * same link to the segment before. */
            a->c.next_seq = w.header_first_seq;
            memcpy(a->c.head, w.header_prev, AUDIT_HASH_LEN);
            a->c.last_kind = 0;
            unlinkat(a->dirfd, name, 0);
            sync_dir(a);
        }
        break;
    }
    rv = BST_OK;
out:
    for (size_t i = 0; i < n; i++)
        free(names[i]);
    free(names);
    a->cc = a->c;
    return rv;
}

/* ---- Public API ---------------------------------------------------------------------------- */

static void free_audit(struct audit *a)
{
    for (int i = 0; i < N_EVENT_TYPES; i++)
        for (size_t j = 0; j < a->tags[i].n; j++)
            free(a->tags[i].v[j]);
    audit_signer_free(a->signer);
    audit_signer_free(a->new_signer);
    audit_buf_free(&a->wbuf);
    free(a->st);
    if (a->seg.fd >= 0)
        close(a->seg.fd);
    if (a->lockfd >= 0)
        close(a->lockfd); /* releases the flock */
    if (a->dirfd >= 0)
        close(a->dirfd);
    audit_config_dispose(&a->cfg);
    pthread_cond_destroy(&a->work);
    pthread_cond_destroy(&a->progress);
    pthread_mutex_destroy(&a->mu);
    free(a);
}

enum bst_status audit_new(struct audit **out, const struct audit_config *cfg, struct bst_err *err)
{
    struct audit *a;
    pthread_condattr_t ca;
    enum bst_status rv;
    char torn[1024];
    int violation = 0;
    struct stat st;
    static const char *const tag_keys[N_EVENT_TYPES] = {
        NULL,    "authentication", "authorization", "request", "security_violation",
        "admin", "connection"};

    *out = NULL;
    rv = audit_config_check(cfg, err);
    if (rv != BST_OK)
        return rv;
    a = calloc(1, sizeof(*a));
    if (a == NULL)
        return bst_errf(err, BST_RESOURCE_EXHAUSTED, "out of memory");
    a->dirfd = a->lockfd = a->seg.fd = -1;
    pthread_mutex_init(&a->mu, NULL);
    pthread_condattr_init(&ca);
    pthread_condattr_setclock(&ca, CLOCK_MONOTONIC);
    pthread_cond_init(&a->work, &ca);
    pthread_cond_init(&a->progress, &ca);
    pthread_condattr_destroy(&ca);
    a->cfg = *cfg;
    clear_strings(audit_config_fields, &a->cfg);
    if (copy_strings(audit_config_fields, &a->cfg, cfg) != 0) {
        rv = bst_errf(err, BST_RESOURCE_EXHAUSTED, "out of memory");
        goto fail;
    }
    if (a->cfg.instance != NULL && a->cfg.instance[0] != '\0')
        snprintf(a->instance, sizeof(a->instance), "%s", a->cfg.instance);
    else if (gethostname(a->instance, sizeof(a->instance) - 1) != 0)
        snprintf(a->instance, sizeof(a->instance), "unknown");
    {
        const char *lists[N_EVENT_TYPES] = {
            NULL,
            a->cfg.compliance_tags.authentication,
            a->cfg.compliance_tags.authorization,
            a->cfg.compliance_tags.request,
            a->cfg.compliance_tags.security_violation,
            a->cfg.compliance_tags.admin,
            a->cfg.compliance_tags.connection,
        };
        for (int i = 1; i < N_EVENT_TYPES; i++) {
            rv = parse_tags(&a->tags[i], lists[i], tag_keys[i], err);
            if (rv != BST_OK)
                goto fail;
        }
    }
    if (a->cfg.signing.key != NULL && a->cfg.signing.key[0] != '\0') {
        rv = audit_signer_load(&a->signer, a->cfg.signing.key, a->cfg.signing.key_id, err);
        if (rv != BST_OK)
            goto fail;
        memcpy(a->cur_pub, a->signer->pub, AUDIT_PUBKEY_LEN);
        snprintf(a->cur_key_id, sizeof(a->cur_key_id), "%s", a->signer->key_id);
        a->cur_key_explicit = !a->signer->key_id_derived;
        a->have_key = 1;
        if (a->cfg.signing.public_keys_dir != NULL && a->cfg.signing.public_keys_dir[0] != '\0') {
            rv = audit_signer_export(a->signer, a->cfg.signing.public_keys_dir, err);
            if (rv != BST_OK)
                goto fail;
        }
    }
    if (make_dirs(a->cfg.directory) != 0 ||
        (a->dirfd = open(a->cfg.directory, O_RDONLY | O_DIRECTORY | O_CLOEXEC)) < 0) {
        rv = bst_errf(err, BST_UNAVAILABLE, "audit directory %s: %s", a->cfg.directory,
                      strerror(errno));
        goto fail;
    }
    if (fstat(a->dirfd, &st) == 0 && (st.st_mode & 077) != 0)
        bst_log(BST_LOG_WARN, "audit_directory_open_to_others", "directory", a->cfg.directory,
                "hint", "chmod 0700: records name users and resources", NULL);
    a->lockfd = openat(a->dirfd, ".lock", O_RDWR | O_CREAT | O_CLOEXEC | O_NOFOLLOW, 0600);
    if (a->lockfd < 0) {
        rv = bst_errf(err, BST_UNAVAILABLE, "audit directory %s: cannot create .lock: %s",
                      a->cfg.directory, strerror(errno));
        goto fail;
    }
    if (flock(a->lockfd, LOCK_EX | LOCK_NB) != 0) {
        rv = bst_errf(err, errno == EWOULDBLOCK ? BST_FAILED_PRECONDITION : BST_UNAVAILABLE,
                      "audit directory %s is in use by another writer", a->cfg.directory);
        goto fail;
    }
    rv = recover(a, torn, sizeof(torn), &violation, err);
    if (rv != BST_OK)
        goto fail;
    atomic_store(&a->last_seq, a->c.next_seq - 1);
    a->last_cp_mono = a->last_sync_mono = bst_mono_ns();
    if (a->cfg.webhook.url != NULL && a->cfg.webhook.url[0] != '\0') {
        rv = audit_webhook_new(&a->wh, &a->cfg, a->instance, err);
        if (rv != BST_OK)
            goto fail;
    }
    {
        char detail[512];
        snprintf(detail, sizeof(detail),
                 "audit writer started: mode %s, resuming after sequence %" PRIu64
                 ", signing key %s",
                 a->cfg.mode == AUDIT_MODE_BLOCKING ? "blocking"
                 : a->cfg.mode == AUDIT_MODE_BATCH  ? "batch"
                                                    : "best-effort",
                 a->c.next_seq - 1, a->signer != NULL ? a->signer->key_id : "(none: unsigned)");
        if (write_internal(a, BASTION__V1__AUDIT_EVENT_TYPE__AUDIT_EVENT_ADMIN, "startup",
                           detail) != 0) {
            rv = bst_errf(err, BST_UNAVAILABLE, "audit directory %s: cannot write: %s",
                          a->cfg.directory,
                          a->outage.error[0] != '\0' ? a->outage.error : "unknown error");
            goto fail;
        }
    }
    if (torn[0] != '\0') {
        bst_log(BST_LOG_WARN, "audit_torn_tail", "detail", torn, NULL);
        if (write_internal(a,
                           violation ? BASTION__V1__AUDIT_EVENT_TYPE__AUDIT_EVENT_SECURITY_VIOLATION
                                     : BASTION__V1__AUDIT_EVENT_TYPE__AUDIT_EVENT_ADMIN,
                           "torn_tail", torn) != 0) {
            rv = bst_errf(err, BST_UNAVAILABLE, "audit directory %s: cannot write",
                          a->cfg.directory);
            goto fail;
        }
    }
    checkpoint_now(a);
    atomic_store(&a->healthy, 1);
    if (pthread_create(&a->thread, NULL, writer_main, a) != 0) {
        rv = bst_errf(err, BST_INTERNAL, "cannot start the audit writer thread");
        goto fail;
    }
    a->thread_started = 1;
    *out = a;
    return BST_OK;
fail:
    if (a->seg.fd >= 0) {
        sync_segment(a);
        close(a->seg.fd);
        a->seg.fd = -1;
    }
    audit_webhook_free(a->wh);
    free_audit(a);
    return rv;
}

void audit_free(struct audit *a)
{
    struct entry *e;

    if (a == NULL)
        return;
    pthread_mutex_lock(&a->mu);
    a->stopping = 1;
    pthread_cond_broadcast(&a->work);
    pthread_mutex_unlock(&a->mu);
    if (a->thread_started)
        pthread_join(a->thread, NULL);
    /* Nothing is left unless the thread never started. */
    while ((e = q_pop(&a->q)) != NULL || (e = q_pop(&a->w)) != NULL) {
        if (!e->acked && e->done != NULL)
            e->done(e->arg, BST_UNAVAILABLE);
        entry_free(e);
    }
    audit_webhook_free(a->wh);
    free_audit(a);
}

int audit_wants(const struct audit *a, Bastion__V1__AuditEventType type, int failure)
{
    int ev;

    if (type == BASTION__V1__AUDIT_EVENT_TYPE__AUDIT_EVENT_AUTHENTICATION)
        ev = a->cfg.events.authentication;
    else if (type == BASTION__V1__AUDIT_EVENT_TYPE__AUDIT_EVENT_AUTHORIZATION)
        ev = a->cfg.events.authorization;
    else
        return 1;
    return ev == AUDIT_EVENTS_ALL || (ev == AUDIT_EVENTS_FAILURES && failure);
}

/* Queues e, or refuses it. Returns the status for done; *ack_now says whether the caller calls
 * done(BST_OK) now (batch with room, best-effort). */
static enum bst_status enqueue(struct audit *a, struct entry *e, int *ack_now)
{
    enum bst_status rv = BST_OK;

    *ack_now = 0;
    pthread_mutex_lock(&a->mu);
    if (a->stopping) {
        rv = BST_UNAVAILABLE;
    } else if (e->admin || (a->w.head == NULL && a->q.n < (size_t)a->cfg.queue.records &&
                            (a->q.n == 0 || a->q.bytes + e->len <= (size_t)a->cfg.queue.bytes))) {
        if (!e->admin && a->cfg.mode != AUDIT_MODE_BLOCKING) {
            *ack_now = !e->acked;
            e->acked = 1;
        }
        q_push(&a->q, e);
        a->enqueued++;
        pthread_cond_signal(&a->work);
    } else if (a->cfg.mode == AUDIT_MODE_BEST_EFFORT) {
        atomic_fetch_add(&a->dropped, 1);
        *ack_now = 1;
        rv = BST_RESOURCE_EXHAUSTED; /* internal: dropped, answered OK */
    } else if (a->w.n >= (size_t)a->cfg.queue.waiting) {
        atomic_fetch_add(&a->violations, 1);
        rv = BST_UNAVAILABLE;
    } else {
        q_push(&a->w, e);
        a->enqueued++;
        pthread_cond_signal(&a->work);
    }
    pthread_mutex_unlock(&a->mu);
    return rv;
}

enum bst_status audit_submit(struct audit *a, const Bastion__V1__AuditRecord *rec,
                             audit_done_fn done, void *arg)
{
    unsigned char *body = NULL;
    size_t len = 0;
    struct entry *e;
    enum bst_status rv;
    int ack_now, failure = 0;

    if (rec->has_event_type &&
        (rec->event_type == BASTION__V1__AUDIT_EVENT_TYPE__AUDIT_EVENT_AUTHENTICATION ||
         rec->event_type == BASTION__V1__AUDIT_EVENT_TYPE__AUDIT_EVENT_AUTHORIZATION)) {
        failure = (rec->has_grpc_status && rec->grpc_status != 0) ||
                  (rec->has_decision &&
                   rec->decision == BASTION__V1__AUDIT_DECISION__AUDIT_DECISION_DENY);
        if (!audit_wants(a, rec->event_type, failure)) {
            atomic_fetch_add(&a->filtered, 1);
            if (done != NULL)
                done(arg, BST_OK);
            return BST_OK;
        }
    }
    rv = prepare(a, rec, &body, &len);
    e = rv == BST_OK ? entry_new(body, len, done, arg) : NULL;
    if (e == NULL) {
        free(body);
        atomic_fetch_add(&a->violations, 1);
        if (a->cfg.mode == AUDIT_MODE_BEST_EFFORT) {
            atomic_fetch_add(&a->dropped, 1);
            if (done != NULL)
                done(arg, BST_OK);
            return BST_OK;
        }
        if (done != NULL)
            done(arg, BST_UNAVAILABLE);
        return BST_UNAVAILABLE;
    }
    rv = enqueue(a, e, &ack_now);
    if (rv != BST_OK) {
        entry_free(e);
        if (rv == BST_RESOURCE_EXHAUSTED) {
            /* best-effort drop: the caller goes on */
            if (done != NULL)
                done(arg, BST_OK);
            return BST_OK;
        }
        if (done != NULL)
            done(arg, rv);
        return rv;
    }
    if (ack_now && done != NULL)
        done(arg, BST_OK);
    return BST_OK;
}

enum bst_status audit_admin_event(struct audit *a, const char *action, const char *detail)
{
    struct entry *e =
        internal_record(a, BASTION__V1__AUDIT_EVENT_TYPE__AUDIT_EVENT_ADMIN, action, detail);
    int ack_now;
    enum bst_status rv;

    if (e == NULL)
        return BST_RESOURCE_EXHAUSTED;
    rv = enqueue(a, e, &ack_now);
    if (rv != BST_OK)
        entry_free(e);
    return rv;
}

enum bst_status audit_rotate_key(struct audit *a, const char *key_path, const char *key_id,
                                 struct bst_err *err)
{
    struct audit_signer *s = NULL;
    enum bst_status rv;
    const char *path = key_path != NULL ? key_path : a->cfg.signing.key;
    const char *id = key_id != NULL ? key_id : (key_path == NULL ? a->cfg.signing.key_id : "");

    if (path == NULL || path[0] == '\0')
        return BST_OK; /* unsigned by configuration: nothing to reload */
    rv = audit_signer_load(&s, path, id, err);
    if (rv != BST_OK)
        return rv;
    pthread_mutex_lock(&a->mu);
    if (a->have_key && memcmp(a->cur_pub, s->pub, AUDIT_PUBKEY_LEN) == 0 &&
        strcmp(a->cur_key_id, s->key_id) == 0) {
        pthread_mutex_unlock(&a->mu);
        audit_signer_free(s);
        return BST_OK;
    }
    if (a->have_key && !s->key_id_derived && strcmp(a->cur_key_id, s->key_id) == 0) {
        pthread_mutex_unlock(&a->mu);
        audit_signer_free(s);
        return bst_errf(err, BST_INVALID_ARGUMENT,
                        "the signing key changed but its key id '%s' did not: give the new key "
                        "a new audit.signing.key_id (or leave it empty to derive one)",
                        id);
    }
    if (a->stopping) {
        pthread_mutex_unlock(&a->mu);
        audit_signer_free(s);
        return bst_errf(err, BST_UNAVAILABLE, "the audit writer is stopping");
    }
    audit_signer_free(a->new_signer);
    a->new_signer = s;
    memcpy(a->cur_pub, s->pub, AUDIT_PUBKEY_LEN);
    snprintf(a->cur_key_id, sizeof(a->cur_key_id), "%s", s->key_id);
    a->have_key = 1;
    pthread_cond_signal(&a->work);
    pthread_mutex_unlock(&a->mu);
    return BST_OK;
}

enum bst_status audit_reload(void *ctx, struct bst_err *err)
{
    return audit_rotate_key(ctx, NULL, NULL, err);
}

void audit_stats(struct audit *a, struct audit_stats *out)
{
    struct audit_webhook_stats ws;

    memset(out, 0, sizeof(*out));
    out->records_written = atomic_load(&a->written);
    out->records_dropped = atomic_load(&a->dropped);
    out->records_filtered = atomic_load(&a->filtered);
    out->records_truncated = atomic_load(&a->truncated);
    out->violations = atomic_load(&a->violations);
    out->write_errors = atomic_load(&a->write_errors);
    out->checkpoints = atomic_load(&a->checkpoints);
    out->segments_created = atomic_load(&a->seg_created);
    out->segments_removed = atomic_load(&a->seg_removed);
    out->last_sequence = atomic_load(&a->last_seq);
    out->healthy = atomic_load(&a->healthy);
    pthread_mutex_lock(&a->mu);
    out->queue_records = a->q.n;
    out->queue_bytes = a->q.bytes;
    out->waiting = a->w.n;
    pthread_mutex_unlock(&a->mu);
    audit_webhook_stats(a->wh, &ws);
    out->webhook_sent = ws.sent;
    out->webhook_failed = ws.failed;
    out->webhook_lost = ws.lost;
    out->webhook_queue_bytes = ws.queued_bytes;
}

enum bst_status audit_flush(struct audit *a, int64_t timeout_ms)
{
    int64_t until = bst_mono_ns() + timeout_ms * BST_NS_PER_MS;
    enum bst_status rv = BST_OK;
    uint64_t target;

    pthread_mutex_lock(&a->mu);
    target = a->enqueued;
    while (a->finished < target) {
        int64_t left = until - bst_mono_ns();
        struct timespec ts;
        if (left <= 0) {
            rv = BST_DEADLINE_EXCEEDED;
            break;
        }
        ts = abs_after_ns(left);
        pthread_cond_timedwait(&a->progress, &a->mu, &ts);
    }
    pthread_mutex_unlock(&a->mu);
    return rv;
}
