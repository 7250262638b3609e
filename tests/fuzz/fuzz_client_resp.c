/* Fuzz target for the client's response parsing (client/wire.c): a hostile server's header
 * blocks, DATA chunks and stream end, in any order, reaching the response state machine as
 * nghttp2 would deliver them; plus grpc-message decoding and grpc-status parsing of raw bytes.
 *
 * Input: a sequence of records, each starting with an opcode byte:
 *   0 B N L1 L2 name[N] value[L]  header field of block B&1 (value length L = L1<<8|L2)
 *   1 B E                         end of header block B&1, END_STREAM if E&1
 *   2 L1 L2 data[L]               DATA payload
 * and the stream ends (normally, or reset with a code from the last byte) when input runs out.
 * Checked: the result is a valid status, its message is NUL-terminated and free of control
 * characters, and an accepted message never exceeds the limit. */
#include "wire.h"

#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#define MAX_MSG 4096

static size_t take(const uint8_t **p, size_t *n, size_t want)
{
    size_t k = want < *n ? want : *n;
    *p += k;
    *n -= k;
    return k;
}

static void check_text(const char *s, size_t cap)
{
    size_t len = strnlen(s, cap);
    if (len == cap)
        abort(); /* not NUL-terminated */
    for (size_t i = 0; i < len; i++) {
        unsigned char c = (unsigned char)s[i];
        if (c < 0x20 || c == 0x7f ||
            (c == 0xc2 && i + 1 < len && (unsigned char)s[i + 1] >= 0x80 &&
             (unsigned char)s[i + 1] <= 0x9f))
            abort(); /* a C0/C1 control character would reach the caller's terminal */
    }
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    struct bcl_resp r;
    const uint8_t *p = data;
    size_t n = size;
    char msg[BCL_MESSAGE_MAX];
    bastion_status st;
    int code;

    bcl_resp_init(&r, MAX_MSG);
    while (n > 0) {
        uint8_t op = *p;
        take(&p, &n, 1);
        if (op == 0 && n >= 4) {
            enum bcl_block b = (p[0] & 1) ? BCL_BLOCK_TRAILERS : BCL_BLOCK_HEADERS;
            size_t nl = p[1], vl = (size_t)p[2] << 8 | p[3];
            const uint8_t *name, *value;
            take(&p, &n, 4);
            name = p;
            nl = take(&p, &n, nl);
            value = p;
            vl = take(&p, &n, vl);
            bcl_resp_header(&r, b, name, nl, value, vl);
        } else if (op == 1 && n >= 2) {
            bcl_resp_block_end(&r, (p[0] & 1) ? BCL_BLOCK_TRAILERS : BCL_BLOCK_HEADERS, p[1] & 1);
            take(&p, &n, 2);
        } else if (op == 2 && n >= 2) {
            size_t len = (size_t)p[0] << 8 | p[1];
            const uint8_t *d;
            take(&p, &n, 2);
            d = p;
            len = take(&p, &n, len);
            bcl_resp_data(&r, d, len);
        } else {
            break;
        }
    }
    st = bcl_resp_finish(&r, size > 0 ? data[size - 1] & 1 : 1, size > 0 ? data[size - 1] >> 1 : 0,
                         msg, sizeof(msg));
    if (!((unsigned)st <= BASTION_UNAUTHENTICATED ||
          (st >= BASTION_E_ARGUMENT && st <= BASTION_E_CLOSED)))
        abort();
    check_text(msg, sizeof(msg));
    if (st == BASTION_OK && (r.msg_len > MAX_MSG || r.n_messages != 1 || r.http_status != 200))
        abort();
    for (size_t i = 0; i < r.n_kept; i++)
        check_text(r.kept[i].value, BCL_MAX_KEPT_VALUE);
    bcl_resp_dispose(&r);

    /* The raw input as a grpc-message and a grpc-status value. */
    bcl_grpc_message_decode(msg, sizeof(msg), data, size);
    check_text(msg, sizeof(msg));
    if (bcl_grpc_status_parse(data, size, &code) == 0 && (code < 0 || code > 16))
        abort();
    return 0;
}
