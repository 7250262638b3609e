/* Fuzz target for the audit segment reader (audit/format.c, audit/reader.c): arbitrary bytes are
 * walked as a segment file with the chain, sequence and checkpoint checks, every record that
 * passes is rendered to JSON (the renderer sees hostile strings), and the bytes are walked a
 * second time as the successor of the first walk (the header-link checks). Beyond "no crash, no
 * leak" it checks the promises recovery relies on:
 *   - the valid prefix never exceeds the input, and a clean end means the whole input is valid;
 *   - walking just the valid prefix again ends cleanly at the same place with the same head;
 *   - rendered JSON is one line of printable ASCII or UTF-8 without control characters. */
#include "format.h"
#include "reader.h"
#include "render.h"

#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static int render_frame(void *ctx, const struct audit_item *item, char *why, size_t why_size)
{
    struct audit_buf *b = ctx;
    const ProtobufCMessage *m = item->record != NULL       ? &item->record->base
                                : item->checkpoint != NULL ? &item->checkpoint->base
                                : item->header != NULL     ? &item->header->base
                                                           : NULL;
    (void)why;
    (void)why_size;
    if (m == NULL)
        return 0;
    b->len = 0;
    if (audit_json_message(b, m) != 0)
        return 0;
    for (size_t i = 0; i < b->len; i++) {
        if (b->data[i] < 0x20 || b->data[i] == 0x7f)
            abort(); /* a raw control character reached the output */
    }
    return 0;
}

/* Every complete frame, chained or not, unpacked through a capped allocator and rendered: the
 * fuzzer cannot forge SHA-256 chains, so this is how hostile messages reach the renderer. */
static void render_all(const uint8_t *data, size_t size, struct audit_buf *b)
{
    FILE *f = fmemopen((void *)data, size, "rb");
    struct audit_buf fb = {NULL, 0, 0};
    struct audit_frame fr;
    uint64_t off = AUDIT_MAGIC_LEN;
    static const ProtobufCMessageDescriptor *const d[] = {
        &bastion__v1__audit_segment_header__descriptor, &bastion__v1__audit_record__descriptor,
        &bastion__v1__audit_checkpoint__descriptor};

    if (f == NULL)
        return;
    if (audit_magic_read(f) == AUDIT_FRAME_OK) {
        while (audit_frame_read(f, &off, &fb, &fr) == AUDIT_FRAME_OK) {
            struct bst_pballoc a;
            ProtobufCMessage *m;
            struct audit_item item;
            bst_pballoc_init(&a, AUDIT_UNPACK_BUDGET);
            m = protobuf_c_message_unpack(d[fr.kind - 1], &a.base, fr.len, fr.payload);
            if (m == NULL)
                continue;
            memset(&item, 0, sizeof(item));
            if (fr.kind == AUDIT_FRAME_RECORD)
                item.record = (const void *)m;
            else if (fr.kind == AUDIT_FRAME_CHECKPOINT)
                item.checkpoint = (const void *)m;
            else
                item.header = (const void *)m;
            render_frame(b, &item, NULL, 0);
            protobuf_c_message_free_unpacked(m, &a.base);
            if (a.used != 0)
                abort(); /* every byte goes back to the allocator */
        }
    }
    audit_buf_free(&fb);
    fclose(f);
}

static void walk(const uint8_t *data, size_t size, struct audit_walk *w, struct audit_buf *b)
{
    FILE *f = fmemopen((void *)data, size, "rb");
    if (f == NULL)
        return;
    w->on_frame = render_frame;
    w->ctx = b;
    w->has_header = 0;
    audit_walk_segment(f, "audit-00000000000000000001.seg", w);
    fclose(f);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    struct audit_walk w, again, next;
    struct audit_buf b = {NULL, 0, 0};

    if (size == 0)
        return 0; /* fmemopen refuses empty buffers */
    render_all(data, size, &b);
    memset(&w, 0, sizeof(w));
    walk(data, size, &w, &b);
    if (w.valid_len > size)
        abort();
    if (w.stop == AUDIT_WALK_END && w.valid_len != size)
        abort();
    if (w.has_header && w.valid_len > 0) {
        memset(&again, 0, sizeof(again));
        walk(data, (size_t)w.valid_len, &again, &b);
        if (again.stop != AUDIT_WALK_END || again.valid_len != w.valid_len ||
            again.next_seq != w.next_seq || memcmp(again.prev_hash, w.prev_hash, 32) != 0)
            abort();
        /* The same bytes as the successor of themselves: the link must be refused unless the
         * header happens to name this very head. */
        next = w;
        walk(data, size, &next, &b);
    }
    if (size < 200) {
        char text[201];
        uint64_t seq;
        unsigned char h[AUDIT_HASH_LEN];
        memcpy(text, data, size);
        text[size] = '\0';
        audit_anchor_parse(text, &seq, h, NULL);
    }
    audit_buf_free(&b);
    return 0;
}
