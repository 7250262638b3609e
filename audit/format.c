/* The audit log's byte format (see format.h): frames, the chain hash, segment names, the bytes
 * a checkpoint signs, and a small growable buffer. Everything here reads hostile files, so a
 * frame's declared length is checked against AUDIT_MAX_PAYLOAD before anything is allocated. */
#include "format.h"
#include "text.h"

#include <errno.h>
#include <inttypes.h>
#include <openssl/evp.h>
#include <openssl/sha.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>

void audit_chain_hash(const unsigned char prev[AUDIT_HASH_LEN], unsigned kind,
                      const unsigned char *payload, size_t len, unsigned char out[AUDIT_HASH_LEN])
{
    SHA256_CTX ctx;
    unsigned char head[AUDIT_FRAME_HEAD];

    head[0] = (unsigned char)kind;
    head[1] = (unsigned char)(len >> 24);
    head[2] = (unsigned char)(len >> 16);
    head[3] = (unsigned char)(len >> 8);
    head[4] = (unsigned char)len;
    /* The low-level SHA-256 interface is deprecated in OpenSSL 3 but is what we want here: no
     * allocation and no failure path for a hash computed once per frame. */
#pragma GCC diagnostic push
#pragma GCC diagnostic ignored "-Wdeprecated-declarations"
    SHA256_Init(&ctx);
    SHA256_Update(&ctx, prev, AUDIT_HASH_LEN);
    SHA256_Update(&ctx, head, sizeof(head));
    if (len > 0)
        SHA256_Update(&ctx, payload, len);
    SHA256_Final(out, &ctx);
#pragma GCC diagnostic pop
}

size_t audit_frame_encode(unsigned char *dst, unsigned kind, const unsigned char *payload,
                          size_t len, const unsigned char prev[AUDIT_HASH_LEN],
                          unsigned char out[AUDIT_HASH_LEN])
{
    dst[0] = (unsigned char)kind;
    dst[1] = (unsigned char)(len >> 24);
    dst[2] = (unsigned char)(len >> 16);
    dst[3] = (unsigned char)(len >> 8);
    dst[4] = (unsigned char)len;
    if (len > 0)
        memcpy(dst + AUDIT_FRAME_HEAD, payload, len);
    audit_chain_hash(prev, kind, payload, len, out);
    memcpy(dst + AUDIT_FRAME_HEAD + len, out, AUDIT_HASH_LEN);
    return len + AUDIT_FRAME_OVERHEAD;
}

/* ---- Buffer -------------------------------------------------------------------------------- */

static int buf_reserve(struct audit_buf *b, size_t extra)
{
    size_t want, cap;
    unsigned char *p;

    if (extra > SIZE_MAX / 2 - b->len)
        return -1;
    want = b->len + extra;
    if (want <= b->cap)
        return 0;
    cap = b->cap > 0 ? b->cap : 256;
    while (cap < want)
        cap *= 2;
    p = realloc(b->data, cap);
    if (p == NULL)
        return -1;
    b->data = p;
    b->cap = cap;
    return 0;
}

int audit_buf_put(struct audit_buf *b, const void *p, size_t n)
{
    if (n == 0)
        return 0;
    if (buf_reserve(b, n) != 0)
        return -1;
    memcpy(b->data + b->len, p, n);
    b->len += n;
    return 0;
}

int audit_buf_putc(struct audit_buf *b, unsigned char c)
{
    return audit_buf_put(b, &c, 1);
}

int audit_buf_puts(struct audit_buf *b, const char *s)
{
    return audit_buf_put(b, s, strlen(s));
}

int audit_buf_printf(struct audit_buf *b, const char *fmt, ...)
{
    va_list ap;
    int n;

    va_start(ap, fmt);
    n = vsnprintf(NULL, 0, fmt, ap);
    va_end(ap);
    if (n < 0 || buf_reserve(b, (size_t)n + 1) != 0)
        return -1;
    va_start(ap, fmt);
    vsnprintf((char *)b->data + b->len, (size_t)n + 1, fmt, ap);
    va_end(ap);
    b->len += (size_t)n;
    return 0;
}

void audit_buf_free(struct audit_buf *b)
{
    free(b->data);
    b->data = NULL;
    b->len = b->cap = 0;
}

/* ---- Reading frames ------------------------------------------------------------------------ */

/* Reads exactly n bytes, or reports how the stream ended. */
static enum audit_frame_rc read_exact(FILE *f, void *p, size_t n, size_t *got)
{
    *got = fread(p, 1, n, f);
    if (*got == n)
        return AUDIT_FRAME_OK;
    if (ferror(f))
        return AUDIT_FRAME_IO;
    return AUDIT_FRAME_TORN;
}

enum audit_frame_rc audit_magic_read(FILE *f)
{
    char magic[AUDIT_MAGIC_LEN];
    size_t got;
    enum audit_frame_rc rc = read_exact(f, magic, sizeof(magic), &got);

    if (rc != AUDIT_FRAME_OK) {
        /* A short file whose bytes so far match the magic is a torn start, anything else is
         * not ours. */
        if (rc == AUDIT_FRAME_TORN && memcmp(magic, AUDIT_MAGIC, got) != 0)
            return AUDIT_FRAME_MALFORMED;
        return rc;
    }
    return memcmp(magic, AUDIT_MAGIC, AUDIT_MAGIC_LEN) == 0 ? AUDIT_FRAME_OK
                                                            : AUDIT_FRAME_MALFORMED;
}

enum audit_frame_rc audit_frame_read(FILE *f, uint64_t *off, struct audit_buf *buf,
                                     struct audit_frame *fr)
{
    unsigned char head[AUDIT_FRAME_HEAD];
    size_t got, len;
    enum audit_frame_rc rc;

    rc = read_exact(f, head, sizeof(head), &got);
    if (rc == AUDIT_FRAME_TORN && got == 0)
        return AUDIT_FRAME_END;
    if (rc != AUDIT_FRAME_OK)
        return rc;
    if (head[0] < AUDIT_FRAME_HEADER || head[0] > AUDIT_FRAME_CHECKPOINT)
        return AUDIT_FRAME_MALFORMED;
    len = ((size_t)head[1] << 24) | ((size_t)head[2] << 16) | ((size_t)head[3] << 8) | head[4];
    if (len > AUDIT_MAX_PAYLOAD)
        return AUDIT_FRAME_MALFORMED;
    buf->len = 0;
    if (buf_reserve(buf, len + AUDIT_HASH_LEN) != 0) {
        errno = ENOMEM;
        return AUDIT_FRAME_IO;
    }
    rc = read_exact(f, buf->data, len + AUDIT_HASH_LEN, &got);
    if (rc != AUDIT_FRAME_OK)
        return rc;
    buf->len = len + AUDIT_HASH_LEN;
    fr->kind = head[0];
    fr->offset = *off;
    fr->payload = buf->data;
    fr->len = len;
    memcpy(fr->hash, buf->data + len, AUDIT_HASH_LEN);
    *off += AUDIT_FRAME_OVERHEAD + len;
    return AUDIT_FRAME_OK;
}

/* ---- Names, signatures, anchors ------------------------------------------------------------ */

void audit_segment_name(char out[AUDIT_SEGMENT_NAME_LEN + 1], uint64_t first_sequence)
{
    snprintf(out, AUDIT_SEGMENT_NAME_LEN + 1, "audit-%020" PRIu64 ".seg", first_sequence);
}

int audit_segment_name_parse(const char *name, uint64_t *first_sequence)
{
    uint64_t v = 0;

    if (strlen(name) != AUDIT_SEGMENT_NAME_LEN || memcmp(name, "audit-", 6) != 0 ||
        strcmp(name + 26, ".seg") != 0)
        return 0;
    for (int i = 6; i < 26; i++) {
        unsigned d;
        if (name[i] < '0' || name[i] > '9')
            return 0;
        d = (unsigned)(name[i] - '0');
        if (v > (UINT64_MAX - d) / 10)
            return 0;
        v = v * 10 + d;
    }
    *first_sequence = v;
    return 1;
}

size_t audit_checkpoint_tbs(unsigned char *out, uint64_t sequence,
                            const unsigned char hash[AUDIT_HASH_LEN], const char *key_id)
{
    size_t n = sizeof(AUDIT_TBS_PREFIX); /* including its NUL, the domain separator */
    size_t klen = key_id != NULL ? strlen(key_id) : 0;

    if (klen > 255)
        klen = 255;
    memcpy(out, AUDIT_TBS_PREFIX, n);
    for (int i = 7; i >= 0; i--)
        out[n++] = (unsigned char)(sequence >> (8 * i));
    memcpy(out + n, hash, AUDIT_HASH_LEN);
    n += AUDIT_HASH_LEN;
    out[n++] = (unsigned char)klen;
    if (klen > 0)
        memcpy(out + n, key_id, klen);
    return n + klen;
}

enum bst_status audit_anchor_parse(const char *text, uint64_t *sequence,
                                   unsigned char hash[AUDIT_HASH_LEN], struct bst_err *err)
{
    const char *colon = strchr(text, ':');
    const char *h;
    uint64_t v = 0;
    size_t hl;

    if (colon == NULL || colon == text || colon - text > 20)
        return bst_errf(err, BST_INVALID_ARGUMENT, "anchor: expected SEQ:HASH");
    for (const char *p = text; p < colon; p++) {
        unsigned d;
        if (*p < '0' || *p > '9')
            return bst_errf(err, BST_INVALID_ARGUMENT, "anchor: the sequence is not a number");
        d = (unsigned)(*p - '0');
        if (v > (UINT64_MAX - d) / 10)
            return bst_errf(err, BST_INVALID_ARGUMENT, "anchor: the sequence is too large");
        v = v * 10 + d;
    }
    if (v == 0)
        return bst_errf(err, BST_INVALID_ARGUMENT, "anchor: sequences start at 1");
    h = colon + 1;
    hl = strlen(h);
    if (hl == 2 * AUDIT_HASH_LEN) {
        for (size_t i = 0; i < AUDIT_HASH_LEN; i++) {
            int hi = bst_hex_value((unsigned char)h[2 * i]),
                lo = bst_hex_value((unsigned char)h[2 * i + 1]);
            if (hi < 0 || lo < 0)
                return bst_errf(err, BST_INVALID_ARGUMENT, "anchor: the hash is not hex");
            hash[i] = (unsigned char)(hi << 4 | lo);
        }
    } else if (hl == 44 && h[43] == '=' && h[42] != '=') {
        unsigned char out[33];
        if (EVP_DecodeBlock(out, (const unsigned char *)h, 44) != 33)
            return bst_errf(err, BST_INVALID_ARGUMENT, "anchor: the hash is not base64");
        memcpy(hash, out, AUDIT_HASH_LEN);
    } else {
        return bst_errf(err, BST_INVALID_ARGUMENT,
                        "anchor: the hash must be 64 hex digits or 44 base64 characters");
    }
    *sequence = v;
    return BST_OK;
}
