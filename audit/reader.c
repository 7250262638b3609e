/* Reading and verifying audit segments (see reader.h). The segment walk is shared by the
 * verifier and by the writer's crash recovery, so "what a valid prefix is" has one definition. */
#include "reader.h"

#include <dirent.h>
#include <errno.h>
#include <inttypes.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

static const unsigned char zero_hash[AUDIT_HASH_LEN];

/* ---- Listing ------------------------------------------------------------------------------- */

static int cmp_names(const void *a, const void *b)
{
    /* Fixed-width decimal names sort in sequence order. */
    return strcmp(*(const char *const *)a, *(const char *const *)b);
}

enum bst_status audit_list_segments(const char *dir, char ***out, size_t *out_n,
                                    struct bst_err *err)
{
    DIR *d = opendir(dir);
    struct dirent *de;
    char **names = NULL;
    size_t n = 0, cap = 0;

    *out = NULL;
    *out_n = 0;
    if (d == NULL)
        return bst_errf(err, errno == ENOENT ? BST_NOT_FOUND : BST_INTERNAL, "%s: %s", dir,
                        strerror(errno));
    while ((de = readdir(d)) != NULL) {
        uint64_t seq;
        if (!audit_segment_name_parse(de->d_name, &seq))
            continue;
        if (n == cap) {
            size_t c2 = cap ? 2 * cap : 16;
            char **p = realloc(names, c2 * sizeof(*p));
            if (p == NULL)
                goto oom;
            names = p;
            cap = c2;
        }
        names[n] = strdup(de->d_name);
        if (names[n] == NULL)
            goto oom;
        n++;
    }
    closedir(d);
    if (n > 0)
        qsort(names, n, sizeof(*names), cmp_names);
    *out = names;
    *out_n = n;
    return BST_OK;
oom:
    closedir(d);
    for (size_t i = 0; i < n; i++)
        free(names[i]);
    free(names);
    return bst_errf(err, BST_RESOURCE_EXHAUSTED, "out of memory");
}

static void free_names(char **names, size_t n)
{
    for (size_t i = 0; i < n; i++)
        free(names[i]);
    free(names);
}

static FILE *open_in(const char *dir, const char *name)
{
    char path[4096];
    if (snprintf(path, sizeof(path), "%s/%s", dir, name) >= (int)sizeof(path)) {
        errno = ENAMETOOLONG;
        return NULL;
    }
    return fopen(path, "rbe");
}

/* ---- Unpacking ----------------------------------------------------------------------------- */

/* Unpacks payload as d through a (re-initialised: the previous message must be freed). */
static ProtobufCMessage *unpack(const ProtobufCMessageDescriptor *d, const unsigned char *p,
                                size_t n, struct bst_pballoc *a)
{
    bst_pballoc_init(a, AUDIT_UNPACK_BUDGET);
    return protobuf_c_message_unpack(d, &a->base, n, p);
}

static void unpack_free(ProtobufCMessage **m, struct bst_pballoc *a)
{
    if (*m != NULL)
        protobuf_c_message_free_unpacked(*m, &a->base);
    *m = NULL;
}

/* Fills the message pointers of item from an unpacked message of its kind. */
static void set_message(struct audit_item *item, ProtobufCMessage *m)
{
    item->record = NULL;
    item->checkpoint = NULL;
    item->header = NULL;
    if (m == NULL)
        return;
    if (item->kind == AUDIT_FRAME_RECORD) {
        item->record = (const Bastion__V1__AuditRecord *)m;
        if (item->record->has_sequence)
            item->sequence = item->record->sequence;
    } else if (item->kind == AUDIT_FRAME_CHECKPOINT) {
        item->checkpoint = (const Bastion__V1__AuditCheckpoint *)m;
        if (item->checkpoint->has_sequence)
            item->sequence = item->checkpoint->sequence;
    } else {
        item->header = (const Bastion__V1__AuditSegmentHeader *)m;
        if (item->header->has_first_sequence)
            item->sequence = item->header->first_sequence;
    }
}

static const ProtobufCMessageDescriptor *descriptor_of(unsigned kind)
{
    switch (kind) {
    case AUDIT_FRAME_HEADER:
        return &bastion__v1__audit_segment_header__descriptor;
    case AUDIT_FRAME_RECORD:
        return &bastion__v1__audit_record__descriptor;
    default:
        return &bastion__v1__audit_checkpoint__descriptor;
    }
}

/* ---- Walking one segment ------------------------------------------------------------------- */

static enum audit_walk_stop walk_stop(struct audit_walk *w, enum audit_walk_stop stop, uint64_t off,
                                      uint64_t seq, const char *fmt, ...)
    __attribute__((format(printf, 5, 6)));

static enum audit_walk_stop walk_stop(struct audit_walk *w, enum audit_walk_stop stop, uint64_t off,
                                      uint64_t seq, const char *fmt, ...)
{
    va_list ap;
    w->stop = stop;
    w->fault_offset = off;
    w->fault_seq = seq;
    va_start(ap, fmt);
    vsnprintf(w->why, sizeof(w->why), fmt, ap);
    va_end(ap);
    return stop;
}

static enum audit_walk_stop check_header(struct audit_walk *w, const char *name,
                                         const struct audit_frame *fr,
                                         const Bastion__V1__AuditSegmentHeader *h)
{
    unsigned char computed[AUDIT_HASH_LEN];
    uint64_t name_seq = 0;

    if (h == NULL)
        return walk_stop(w, AUDIT_WALK_FAULT, fr->offset, w->next_seq,
                         "the segment header does not parse");
    if (!h->has_format_version || h->format_version != AUDIT_FORMAT_VERSION)
        return walk_stop(w, AUDIT_WALK_FAULT, fr->offset, w->next_seq,
                         "segment format version %u is not supported (this reader knows %d)",
                         h->has_format_version ? h->format_version : 0, AUDIT_FORMAT_VERSION);
    if (!h->has_first_sequence || h->first_sequence == 0 || !h->has_previous_hash ||
        h->previous_hash.len != AUDIT_HASH_LEN)
        return walk_stop(w, AUDIT_WALK_FAULT, fr->offset, w->next_seq,
                         "the segment header lacks its first sequence or previous hash");
    audit_chain_hash(h->previous_hash.data, fr->kind, fr->payload, fr->len, computed);
    if (memcmp(computed, fr->hash, AUDIT_HASH_LEN) != 0)
        return walk_stop(w, AUDIT_WALK_FAULT, fr->offset, h->first_sequence,
                         "the segment header was altered (chain hash mismatch)");
    if (w->have_prev) {
        w->link_fault = 1;
        if (memcmp(h->previous_hash.data, w->prev_hash, AUDIT_HASH_LEN) != 0)
            return walk_stop(w, AUDIT_WALK_FAULT, fr->offset, w->next_seq,
                             "the header's previous_hash is not the chain hash that ended the "
                             "previous segment");
        if (h->first_sequence != w->next_seq)
            return walk_stop(w, AUDIT_WALK_FAULT, fr->offset, w->next_seq,
                             "the segment starts at sequence %" PRIu64
                             " but the previous one ended at %" PRIu64,
                             h->first_sequence, w->next_seq - 1);
        w->link_fault = 0;
    } else {
        w->have_prev = 1;
        w->next_seq = h->first_sequence;
    }
    if (name != NULL && audit_segment_name_parse(name, &name_seq) && name_seq != h->first_sequence)
        return walk_stop(w, AUDIT_WALK_FAULT, fr->offset, h->first_sequence,
                         "the file name says sequence %" PRIu64 " but the header says %" PRIu64
                         " (renamed segment)",
                         name_seq, h->first_sequence);
    w->has_header = 1;
    w->header_first_seq = h->first_sequence;
    w->header_floor = h->has_retained_from_sequence ? h->retained_from_sequence : 0;
    memcpy(w->header_prev, h->previous_hash.data, AUDIT_HASH_LEN);
    return AUDIT_WALK_END;
}

static enum audit_walk_stop check_record(struct audit_walk *w, const struct audit_frame *fr,
                                         const Bastion__V1__AuditRecord *r)
{
    unsigned char computed[AUDIT_HASH_LEN];
    int chained;

    audit_chain_hash(w->prev_hash, fr->kind, fr->payload, fr->len, computed);
    chained = memcmp(computed, fr->hash, AUDIT_HASH_LEN) == 0;
    if (r == NULL || !r->has_sequence) {
        if (!chained)
            return walk_stop(w, AUDIT_WALK_FAULT, fr->offset, w->next_seq,
                             "record %" PRIu64 " was altered (chain hash mismatch)", w->next_seq);
        return walk_stop(w, AUDIT_WALK_FAULT, fr->offset, w->next_seq,
                         "record %" PRIu64 " does not parse or has no sequence", w->next_seq);
    }
    if (r->sequence > w->next_seq)
        return walk_stop(w, AUDIT_WALK_FAULT, fr->offset, w->next_seq,
                         "expected sequence %" PRIu64 ", found %" PRIu64
                         ": records were deleted or reordered",
                         w->next_seq, r->sequence);
    if (r->sequence < w->next_seq)
        return walk_stop(w, AUDIT_WALK_FAULT, fr->offset, w->next_seq,
                         "expected sequence %" PRIu64 ", found %" PRIu64
                         ": records were replayed or reordered",
                         w->next_seq, r->sequence);
    if (!chained)
        return walk_stop(w, AUDIT_WALK_FAULT, fr->offset, w->next_seq,
                         "record %" PRIu64 " was altered (chain hash mismatch)", w->next_seq);
    return AUDIT_WALK_END;
}

static enum audit_walk_stop check_checkpoint(struct audit_walk *w, const struct audit_frame *fr,
                                             const Bastion__V1__AuditCheckpoint *cp)
{
    unsigned char computed[AUDIT_HASH_LEN];
    uint64_t last = w->next_seq - 1;

    audit_chain_hash(w->prev_hash, fr->kind, fr->payload, fr->len, computed);
    if (memcmp(computed, fr->hash, AUDIT_HASH_LEN) != 0)
        return walk_stop(
            w, AUDIT_WALK_FAULT, fr->offset, last,
            "the checkpoint after sequence %" PRIu64 " was altered (chain hash mismatch)", last);
    if (cp == NULL || !cp->has_sequence || !cp->has_chain_hash ||
        cp->chain_hash.len != AUDIT_HASH_LEN)
        return walk_stop(w, AUDIT_WALK_FAULT, fr->offset, last,
                         "the checkpoint after sequence %" PRIu64 " does not parse", last);
    if (w->last_kind != AUDIT_FRAME_RECORD || cp->sequence != last ||
        memcmp(cp->chain_hash.data, w->prev_hash, AUDIT_HASH_LEN) != 0)
        return walk_stop(w, AUDIT_WALK_FAULT, fr->offset, last,
                         "the checkpoint names sequence %" PRIu64
                         " and a chain hash that are not those of the record before it",
                         cp->sequence);
    return AUDIT_WALK_END;
}

enum audit_walk_stop audit_walk_segment(FILE *f, const char *name, struct audit_walk *w)
{
    struct audit_buf buf = {NULL, 0, 0};
    struct bst_pballoc alloc;
    ProtobufCMessage *m = NULL;
    uint64_t off = 0;
    enum audit_frame_rc rc;
    enum audit_walk_stop stop;

    w->valid_len = 0;
    w->stop = AUDIT_WALK_END;
    rc = audit_magic_read(f);
    if (rc == AUDIT_FRAME_TORN) {
        stop = walk_stop(w, AUDIT_WALK_TORN, 0, w->next_seq, "the file ends inside its magic");
        goto out;
    }
    if (rc != AUDIT_FRAME_OK) {
        stop = walk_stop(w, AUDIT_WALK_FAULT, 0, w->next_seq,
                         rc == AUDIT_FRAME_IO ? "read error: %s" : "not an audit segment%s",
                         rc == AUDIT_FRAME_IO ? strerror(errno) : " (bad magic)");
        goto out;
    }
    off = AUDIT_MAGIC_LEN;
    w->valid_len = off;
    for (;;) {
        struct audit_frame fr;
        struct audit_item item;
        uint64_t frame_off = off;

        rc = audit_frame_read(f, &off, &buf, &fr);
        if (rc == AUDIT_FRAME_END) {
            if (!w->has_header) {
                stop = walk_stop(w, AUDIT_WALK_TORN, frame_off, w->next_seq,
                                 "the segment ends before its header");
                goto out;
            }
            stop = w->stop = AUDIT_WALK_END;
            goto out;
        }
        if (rc == AUDIT_FRAME_TORN) {
            stop = walk_stop(w, AUDIT_WALK_TORN, frame_off, w->next_seq,
                             "the segment ends inside the frame at offset %" PRIu64
                             " (truncated after sequence %" PRIu64 ")",
                             frame_off, w->next_seq - 1);
            goto out;
        }
        if (rc == AUDIT_FRAME_MALFORMED) {
            stop = walk_stop(w, AUDIT_WALK_FAULT, frame_off, w->next_seq,
                             "malformed frame at offset %" PRIu64
                             " (unknown kind or oversized length) where sequence %" PRIu64
                             " was expected",
                             frame_off, w->next_seq);
            goto out;
        }
        if (rc != AUDIT_FRAME_OK) {
            stop = walk_stop(w, AUDIT_WALK_FAULT, frame_off, w->next_seq, "read error: %s",
                             strerror(errno));
            goto out;
        }
        unpack_free(&m, &alloc);
        m = unpack(descriptor_of(fr.kind), fr.payload, fr.len, &alloc);
        memset(&item, 0, sizeof(item));
        item.kind = (enum audit_frame_kind)fr.kind;
        item.segment = name;
        item.offset = fr.offset;
        memcpy(item.chain_hash, fr.hash, AUDIT_HASH_LEN);
        item.payload = fr.payload;
        item.payload_len = fr.len;
        set_message(&item, m);

        if (!w->has_header) {
            if (fr.kind != AUDIT_FRAME_HEADER) {
                stop = walk_stop(w, AUDIT_WALK_FAULT, fr.offset, w->next_seq,
                                 "the first frame is not a segment header");
                goto out;
            }
            stop = check_header(w, name, &fr, item.header);
        } else if (fr.kind == AUDIT_FRAME_RECORD) {
            stop = check_record(w, &fr, item.record);
        } else if (fr.kind == AUDIT_FRAME_CHECKPOINT) {
            stop = check_checkpoint(w, &fr, item.checkpoint);
        } else {
            stop = walk_stop(w, AUDIT_WALK_FAULT, fr.offset, w->next_seq,
                             "a second segment header at offset %" PRIu64, fr.offset);
        }
        if (stop != AUDIT_WALK_END)
            goto out;
        if (w->on_frame != NULL && w->on_frame(w->ctx, &item, w->why, sizeof(w->why)) != 0) {
            w->stop = stop = AUDIT_WALK_FAULT;
            w->fault_offset = fr.offset;
            w->fault_seq = fr.kind == AUDIT_FRAME_CHECKPOINT ? w->next_seq - 1 : w->next_seq;
            goto out;
        }
        memcpy(w->prev_hash, fr.hash, AUDIT_HASH_LEN);
        if (fr.kind == AUDIT_FRAME_RECORD) {
            w->next_seq++;
            w->records++;
        } else if (fr.kind == AUDIT_FRAME_CHECKPOINT) {
            w->checkpoints++;
        }
        w->last_kind = fr.kind;
        w->valid_len = off;
    }
out:
    if (stop == AUDIT_WALK_FAULT) {
        /* Tell a torn last write (what a crash leaves) from invalid data: count the complete
         * frames after the fault, structurally. */
        struct audit_frame fr;
        uint64_t o = w->fault_offset;
        w->frames_after = 0;
        if (fseeko(f, (off_t)o, SEEK_SET) == 0) {
            while (w->frames_after < 1000000 &&
                   audit_frame_read(f, &o, &buf, &fr) == AUDIT_FRAME_OK)
                w->frames_after++;
        }
        if (w->frames_after == 0)
            w->frames_after = 1; /* the fault itself is at least one bad frame */
    }
    unpack_free(&m, &alloc);
    audit_buf_free(&buf);
    return stop;
}

/* ---- Verifying ----------------------------------------------------------------------------- */

struct verify_ctx {
    const struct audit_verify_opts *o;
    struct audit_verify_result *res;
    unsigned char *anchor_seen; /* per anchor */
};

static int verify_frame(void *ctx, const struct audit_item *item, char *why, size_t why_size)
{
    struct verify_ctx *v = ctx;
    struct audit_verify_result *res = v->res;

    if (item->kind == AUDIT_FRAME_RECORD) {
        if (res->records == 0)
            res->first_sequence = item->sequence;
        res->records++;
        res->last_sequence = item->sequence;
        memcpy(res->head_hash, item->chain_hash, AUDIT_HASH_LEN);
        for (size_t i = 0; i < v->o->n_anchors; i++) {
            const struct audit_anchor *an = &v->o->anchors[i];
            if (an->sequence != item->sequence)
                continue;
            v->anchor_seen[i] = 1;
            res->anchors_checked++;
            if (memcmp(an->hash, item->chain_hash, AUDIT_HASH_LEN) != 0) {
                snprintf(why, why_size,
                         "anchor %" PRIu64 ": the chain hash differs (the log was rewritten)",
                         an->sequence);
                return -1;
            }
        }
        return 0;
    }
    if (item->kind != AUDIT_FRAME_CHECKPOINT)
        return 0;
    res->checkpoints++;
    {
        const Bastion__V1__AuditCheckpoint *cp = item->checkpoint;
        int is_signed = cp->key_id != NULL && cp->key_id[0] != '\0' && cp->has_signature;
        int ok;

        if (is_signed)
            res->signed_checkpoints++;
        if (v->o->keys == NULL)
            return 0;
        if (!is_signed) {
            snprintf(why, why_size,
                     "the checkpoint of sequence %" PRIu64
                     " is unsigned (public keys were given, so signatures are required)",
                     cp->sequence);
            return -1;
        }
        ok = audit_pubkeys_verify(v->o->keys, cp->key_id, cp->sequence, cp->chain_hash.data,
                                  cp->signature.data, cp->signature.len);
        if (ok < 0) {
            struct audit_buf b = {NULL, 0, 0};
            /* The key id comes from the file: quote it escaped. */
            for (const char *p = cp->key_id; *p != '\0' && b.len < 64; p++)
                audit_buf_putc(&b, (*p >= 0x21 && *p < 0x7f) ? (unsigned char)*p : '?');
            audit_buf_putc(&b, '\0');
            snprintf(why, why_size,
                     "the checkpoint of sequence %" PRIu64 " is signed by unknown key id '%s'",
                     cp->sequence, b.data != NULL ? (char *)b.data : "");
            audit_buf_free(&b);
            return -1;
        }
        if (ok == 0) {
            snprintf(why, why_size,
                     "the checkpoint signature of sequence %" PRIu64
                     " does not verify (the chain before it was rewritten)",
                     cp->sequence);
            return -1;
        }
        res->verified_checkpoints++;
        res->last_verified_sequence = cp->sequence;
    }
    return 0;
}

static void fault(struct audit_verify_result *res, const char *segment, uint64_t seq,
                  uint64_t offset, const char *fmt, ...) __attribute__((format(printf, 5, 6)));

static void fault(struct audit_verify_result *res, const char *segment, uint64_t seq,
                  uint64_t offset, const char *fmt, ...)
{
    va_list ap;
    res->ok = 0;
    snprintf(res->segment, sizeof(res->segment), "%s", segment != NULL ? segment : "");
    res->sequence = seq;
    res->offset = offset;
    va_start(ap, fmt);
    vsnprintf(res->message, sizeof(res->message), fmt, ap);
    va_end(ap);
}

static void note(struct audit_verify_result *res, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));

static void note(struct audit_verify_result *res, const char *fmt, ...)
{
    size_t used = strlen(res->notes);
    va_list ap;
    if (used + 3 >= sizeof(res->notes))
        return;
    if (used > 0) {
        memcpy(res->notes + used, "; ", 3);
        used += 2;
    }
    va_start(ap, fmt);
    vsnprintf(res->notes + used, sizeof(res->notes) - used, fmt, ap);
    va_end(ap);
}

/* The highest retention floor any segment header declares (headers are checked by the walk
 * later; a forged floor would break the chain there). */
static uint64_t max_floor(const char *dir, char **names, size_t n)
{
    struct audit_buf buf = {NULL, 0, 0};
    struct bst_pballoc alloc;
    uint64_t floor = 0;

    for (size_t i = 0; i < n; i++) {
        FILE *f = open_in(dir, names[i]);
        struct audit_frame fr;
        uint64_t off = AUDIT_MAGIC_LEN;
        ProtobufCMessage *m;

        if (f == NULL)
            continue;
        if (audit_magic_read(f) == AUDIT_FRAME_OK &&
            audit_frame_read(f, &off, &buf, &fr) == AUDIT_FRAME_OK &&
            fr.kind == AUDIT_FRAME_HEADER &&
            (m = unpack(&bastion__v1__audit_segment_header__descriptor, fr.payload, fr.len,
                        &alloc)) != NULL) {
            const Bastion__V1__AuditSegmentHeader *h = (const void *)m;
            if (h->has_retained_from_sequence && h->retained_from_sequence > floor)
                floor = h->retained_from_sequence;
            unpack_free(&m, &alloc);
        }
        fclose(f);
    }
    audit_buf_free(&buf);
    return floor;
}

enum bst_status audit_verify(const struct audit_verify_opts *o, struct audit_verify_result *res,
                             struct bst_err *err)
{
    struct verify_ctx v = {o, res, NULL};
    struct audit_walk w;
    char **names = NULL;
    size_t n = 0;
    enum bst_status rv;
    const char *prev_name = NULL;

    memset(res, 0, sizeof(*res));
    res->ok = 1;
    rv = audit_list_segments(o->dir, &names, &n, err);
    if (rv != BST_OK)
        return rv;
    res->segments = n;
    if (n == 0) {
        fault(res, "", 0, 0, "no segment files in %s", o->dir);
        goto out;
    }
    if (o->n_anchors > 0) {
        v.anchor_seen = calloc(o->n_anchors, 1);
        if (v.anchor_seen == NULL) {
            rv = bst_errf(err, BST_RESOURCE_EXHAUSTED, "out of memory");
            goto out;
        }
    }
    res->retained_from = max_floor(o->dir, names, n);
    memset(&w, 0, sizeof(w));
    w.on_frame = verify_frame;
    w.ctx = &v;
    for (size_t i = 0; i < n; i++) {
        FILE *f = open_in(o->dir, names[i]);
        enum audit_walk_stop stop;
        int had_prev = w.have_prev;

        if (f == NULL) {
            rv = bst_errf(err, BST_INTERNAL, "%s/%s: %s", o->dir, names[i], strerror(errno));
            goto out;
        }
        w.has_header = 0;
        w.link_fault = 0;
        stop = audit_walk_segment(f, names[i], &w);
        fclose(f);
        if (i == 0 && w.has_header) {
            /* Where the log starts: sequence 1 from nothing, or after what retention removed. */
            if (w.header_first_seq == 1) {
                if (memcmp(w.header_prev, zero_hash, AUDIT_HASH_LEN) != 0) {
                    fault(res, names[i], 1, AUDIT_MAGIC_LEN,
                          "the first segment starts at sequence 1 but links to a previous "
                          "segment");
                    goto out;
                }
                res->genesis = 1;
            } else if (w.header_first_seq > res->retained_from) {
                fault(res, names[i], w.header_first_seq, AUDIT_MAGIC_LEN,
                      "records before sequence %" PRIu64
                      " are missing and no retention removed them (highest retention floor "
                      "%" PRIu64 "): segments were deleted",
                      w.header_first_seq, res->retained_from);
                goto out;
            }
        }
        if (stop == AUDIT_WALK_FAULT) {
            if (had_prev && w.link_fault && prev_name != NULL)
                fault(res, names[i], w.fault_seq, w.fault_offset,
                      "%s; %s was replaced or altered, or segments between them are missing", w.why,
                      prev_name);
            else
                fault(res, names[i], w.fault_seq, w.fault_offset, "%s", w.why);
            goto out;
        }
        if (stop == AUDIT_WALK_TORN) {
            if (i + 1 == n && o->allow_torn_tail) {
                res->torn_tail = 1;
                note(res, "%s: %s (allowed: a crash leaves this; bastiond cuts it at start)",
                     names[i], w.why);
            } else {
                fault(res, names[i], w.fault_seq, w.fault_offset, "%s", w.why);
                goto out;
            }
        }
        prev_name = names[i];
    }
    for (size_t i = 0; i < o->n_anchors; i++) {
        const struct audit_anchor *an = &o->anchors[i];
        if (v.anchor_seen[i])
            continue;
        if (res->records == 0 || an->sequence > res->last_sequence) {
            fault(res, names[n - 1], an->sequence, 0,
                  "anchor %" PRIu64 " is beyond the end of the log (last sequence %" PRIu64
                  "): the log was truncated",
                  an->sequence, res->last_sequence);
            goto out;
        }
        note(res, "anchor %" PRIu64 " predates the retained records", an->sequence);
    }
    if (o->keys != NULL && res->records > 0 && res->verified_checkpoints == 0) {
        fault(res, names[n - 1], res->last_sequence, 0,
              "no signed checkpoint in the log although public keys were given");
        goto out;
    }
    if (o->keys == NULL && res->checkpoints > 0)
        note(res, "signatures not checked (no public keys given)");
out:
    free(v.anchor_seen);
    free_names(names, n);
    return rv;
}

/* ---- Iterating ----------------------------------------------------------------------------- */

struct audit_reader {
    char *dir;
    int follow;
    char **names;
    size_t n, idx;
    FILE *f;
    uint64_t off;
    int magic_done;
    char current[AUDIT_SEGMENT_NAME_LEN + 1];
    struct audit_buf buf;
    struct bst_pballoc alloc;
    ProtobufCMessage *msg;
};

enum bst_status audit_reader_open(struct audit_reader **out, const char *dir, int follow,
                                  struct bst_err *err)
{
    struct audit_reader *r = calloc(1, sizeof(*r));
    enum bst_status rv;

    *out = NULL;
    if (r == NULL || (r->dir = strdup(dir)) == NULL) {
        free(r);
        return bst_errf(err, BST_RESOURCE_EXHAUSTED, "out of memory");
    }
    r->follow = follow;
    rv = audit_list_segments(dir, &r->names, &r->n, err);
    if (rv != BST_OK) {
        audit_reader_free(r);
        return rv;
    }
    *out = r;
    return BST_OK;
}

void audit_reader_start_at_end(struct audit_reader *r, int skip)
{
    struct audit_frame fr;

    if (r->n == 0 || r->f != NULL)
        return;
    r->idx = r->n - 1;
    if (!skip)
        return;
    r->f = open_in(r->dir, r->names[r->idx]);
    if (r->f == NULL)
        return;
    snprintf(r->current, sizeof(r->current), "%s", r->names[r->idx]);
    if (audit_magic_read(r->f) != AUDIT_FRAME_OK) {
        fclose(r->f);
        r->f = NULL;
        return;
    }
    r->magic_done = 1;
    r->off = AUDIT_MAGIC_LEN;
    for (;;) {
        uint64_t before = r->off;
        if (audit_frame_read(r->f, &r->off, &r->buf, &fr) != AUDIT_FRAME_OK) {
            r->off = before;
            fseeko(r->f, (off_t)before, SEEK_SET);
            clearerr(r->f);
            return;
        }
    }
}

/* Re-lists the directory and appends segments newer than the last known one. */
static void refresh(struct audit_reader *r)
{
    char **names = NULL;
    size_t n = 0;
    const char *last = r->n > 0 ? r->names[r->n - 1] : "";

    if (audit_list_segments(r->dir, &names, &n, NULL) != BST_OK)
        return;
    for (size_t i = 0; i < n; i++) {
        if (strcmp(names[i], last) <= 0)
            continue;
        char **p = realloc(r->names, (r->n + 1) * sizeof(*p));
        if (p == NULL)
            break;
        r->names = p;
        r->names[r->n++] = names[i];
        names[i] = NULL;
    }
    free_names(names, n);
}

static void close_current(struct audit_reader *r)
{
    if (r->f != NULL)
        fclose(r->f);
    r->f = NULL;
    r->magic_done = 0;
    r->off = 0;
    r->idx++;
}

enum bst_status audit_reader_next(struct audit_reader *r, struct audit_item *item,
                                  struct bst_err *err)
{
    unpack_free(&r->msg, &r->alloc);
    for (;;) {
        struct audit_frame fr;
        enum audit_frame_rc rc;
        uint64_t before;
        int last;

        if (r->f == NULL) {
            if (r->idx >= r->n && r->follow)
                refresh(r);
            if (r->idx >= r->n)
                return r->follow ? BST_UNAVAILABLE : BST_OUT_OF_RANGE;
            r->f = open_in(r->dir, r->names[r->idx]);
            if (r->f == NULL) {
                /* Removed by retention since we listed it: go on. */
                if (errno == ENOENT) {
                    r->idx++;
                    continue;
                }
                return bst_errf(err, BST_INTERNAL, "%s/%s: %s", r->dir, r->names[r->idx],
                                strerror(errno));
            }
            snprintf(r->current, sizeof(r->current), "%s", r->names[r->idx]);
        }
        last = r->idx + 1 >= r->n;
        if (!r->magic_done) {
            rc = audit_magic_read(r->f);
            if (rc == AUDIT_FRAME_TORN && last && r->follow) {
                /* A segment being created: its magic is not all there yet. */
                fseeko(r->f, 0, SEEK_SET);
                clearerr(r->f);
                return BST_UNAVAILABLE;
            }
            if (rc != AUDIT_FRAME_OK) {
                bst_errf(err, BST_DATA_LOSS, "%s: not an audit segment (bad or short magic)",
                         r->current);
                close_current(r);
                return BST_DATA_LOSS;
            }
            r->magic_done = 1;
            r->off = AUDIT_MAGIC_LEN;
        }
        before = r->off;
        rc = audit_frame_read(r->f, &r->off, &r->buf, &fr);
        if (rc == AUDIT_FRAME_OK) {
            memset(item, 0, sizeof(*item));
            item->kind = (enum audit_frame_kind)fr.kind;
            item->segment = r->current;
            item->offset = fr.offset;
            memcpy(item->chain_hash, fr.hash, AUDIT_HASH_LEN);
            item->payload = fr.payload;
            item->payload_len = fr.len;
            r->msg = unpack(descriptor_of(fr.kind), fr.payload, fr.len, &r->alloc);
            set_message(item, r->msg);
            return BST_OK;
        }
        if ((rc == AUDIT_FRAME_END || rc == AUDIT_FRAME_TORN) && last && r->follow) {
            /* The directory is listed again only here, at the end of what we know. */
            refresh(r);
            last = r->idx + 1 >= r->n;
        }
        if ((rc == AUDIT_FRAME_END || rc == AUDIT_FRAME_TORN) && last && r->follow) {
            /* The writer may be in the middle of this frame: come back for it. */
            r->off = before;
            fseeko(r->f, (off_t)before, SEEK_SET);
            clearerr(r->f);
            return BST_UNAVAILABLE;
        }
        if (rc == AUDIT_FRAME_END) {
            close_current(r);
            continue;
        }
        if (rc == AUDIT_FRAME_IO)
            bst_errf(err, BST_INTERNAL, "%s: read error at offset %" PRIu64 ": %s", r->current,
                     before, strerror(errno));
        else
            bst_errf(err, BST_DATA_LOSS, "%s: %s frame at offset %" PRIu64, r->current,
                     rc == AUDIT_FRAME_TORN ? "truncated" : "malformed", before);
        close_current(r);
        return rc == AUDIT_FRAME_IO ? BST_INTERNAL : BST_DATA_LOSS;
    }
}

void audit_reader_free(struct audit_reader *r)
{
    if (r == NULL)
        return;
    unpack_free(&r->msg, &r->alloc);
    if (r->f != NULL)
        fclose(r->f);
    free_names(r->names, r->n);
    audit_buf_free(&r->buf);
    free(r->dir);
    free(r);
}
