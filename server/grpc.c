/* gRPC framing and header-value helpers. */
#include "grpc.h"
#include "text.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

void grpc_reader_init(struct grpc_reader *r, size_t max_len)
{
    memset(r, 0, sizeof(*r));
    r->max_len = max_len;
    r->identity_only = 1;
}

void grpc_reader_dispose(struct grpc_reader *r)
{
    free(r->msg);
    r->msg = NULL;
}

enum bst_status grpc_reader_feed(struct grpc_reader *r, const unsigned char *data, size_t len,
                                 struct bst_err *err)
{
    while (len > 0 && !r->failed) {
        if (r->n_messages > 0) {
            r->failed = 1;
            return bst_errf(err, BST_INTERNAL, "more than one request message in a unary call");
        }
        if (r->hdr_got < GRPC_PREFIX_LEN) {
            size_t take = GRPC_PREFIX_LEN - r->hdr_got;
            if (take > len)
                take = len;
            memcpy(r->hdr + r->hdr_got, data, take);
            r->hdr_got += take;
            data += take;
            len -= take;
            if (r->hdr_got < GRPC_PREFIX_LEN)
                break;
            if (r->hdr[0] > 1) {
                r->failed = 1;
                return bst_errf(err, BST_INTERNAL, "invalid compressed-flag %u", r->hdr[0]);
            }
            if (r->hdr[0] == 1 && r->identity_only) {
                r->failed = 1;
                return bst_errf(err, BST_INTERNAL, "compressed message without a grpc-encoding");
            }
            r->msg_len = ((uint32_t)r->hdr[1] << 24) | ((uint32_t)r->hdr[2] << 16) |
                         ((uint32_t)r->hdr[3] << 8) | r->hdr[4];
            if (r->msg_len > r->max_len) {
                r->failed = 1;
                return bst_errf(err, BST_RESOURCE_EXHAUSTED,
                                "request message of %u bytes exceeds the limit of %zu bytes",
                                r->msg_len, r->max_len);
            }
            if (r->msg_len > 0 && (r->msg = malloc(r->msg_len)) == NULL) {
                r->failed = 1;
                return bst_errf(err, BST_RESOURCE_EXHAUSTED, "out of memory");
            }
            r->msg_got = 0;
        }
        {
            size_t want = r->msg_len - r->msg_got;
            size_t take = want < len ? want : len;
            if (take > 0) {
                memcpy(r->msg + r->msg_got, data, take);
                r->msg_got += take;
                data += take;
                len -= take;
            }
            if (r->msg_got == r->msg_len)
                r->n_messages++;
        }
    }
    return BST_OK;
}

enum bst_status grpc_reader_finish(struct grpc_reader *r, struct bst_err *err)
{
    if (r->failed)
        return bst_errf(err, BST_INTERNAL, "request body rejected");
    if (r->n_messages == 1)
        return BST_OK;
    if (r->hdr_got == 0)
        return bst_errf(err, BST_INTERNAL, "no request message in a unary call");
    return bst_errf(err, BST_INTERNAL, "request message truncated: %zu of %u bytes", r->msg_got,
                    r->msg_len);
}

int grpc_timeout_parse(const char *v, size_t len, int64_t *ns)
{
    int64_t n = 0, mult;

    if (len < 2 || len > 9)
        return -1;
    for (size_t i = 0; i + 1 < len; i++) {
        if (v[i] < '0' || v[i] > '9')
            return -1;
        n = n * 10 + (v[i] - '0'); /* at most 8 digits: < 1e8, no overflow */
    }
    switch (v[len - 1]) {
    case 'H':
        mult = INT64_C(3600000000000);
        break;
    case 'M':
        mult = INT64_C(60000000000);
        break;
    case 'S':
        mult = INT64_C(1000000000);
        break;
    case 'm':
        mult = INT64_C(1000000);
        break;
    case 'u':
        mult = INT64_C(1000);
        break;
    case 'n':
        mult = 1;
        break;
    default:
        return -1;
    }
    /* 99 999 999 hours is 3.6e20 ns: clamp instead of overflowing. */
    if (n > INT64_MAX / mult)
        *ns = INT64_MAX;
    else
        *ns = n * mult;
    return 0;
}

void grpc_message_encode(char *dst, size_t dstlen, const char *msg)
{
    static const char hex[] = "0123456789ABCDEF";
    char clean[GRPC_MAX_MESSAGE_MESSAGE + 1];
    size_t o = 0;

    if (dstlen == 0)
        return;
    bst_text_sanitize(clean, sizeof(clean), msg, strlen(msg));
    for (const unsigned char *p = (const unsigned char *)clean; *p != '\0'; p++) {
        if (*p >= 0x20 && *p <= 0x7e && *p != '%') {
            if (o + 1 >= dstlen)
                break;
            dst[o++] = (char)*p;
        } else {
            if (o + 3 >= dstlen)
                break;
            dst[o++] = '%';
            dst[o++] = hex[*p >> 4];
            dst[o++] = hex[*p & 0xf];
        }
    }
    dst[o] = '\0';
}

static int ct_prefix(const char *v, size_t len, size_t *rest)
{
    static const char base[] = "application/grpc";
    const size_t bl = sizeof(base) - 1;
    if (len < bl || strncasecmp(v, base, bl) != 0)
        return 0;
    *rest = bl;
    return 1;
}

int grpc_content_type_is_grpc(const char *v, size_t len)
{
    size_t i;
    if (!ct_prefix(v, len, &i))
        return 0;
    return i == len || v[i] == '+' || v[i] == ';';
}

int grpc_content_type_ok(const char *v, size_t len)
{
    size_t i;
    if (!ct_prefix(v, len, &i))
        return 0;
    if (i < len && v[i] == '+') {
        if (len - i < 6 || strncasecmp(v + i, "+proto", 6) != 0)
            return 0;
        i += 6;
    }
    return i == len || v[i] == ';';
}

void grpc_prefix_write(unsigned char out[GRPC_PREFIX_LEN], uint32_t len)
{
    out[0] = 0;
    out[1] = (unsigned char)(len >> 24);
    out[2] = (unsigned char)(len >> 16);
    out[3] = (unsigned char)(len >> 8);
    out[4] = (unsigned char)len;
}
