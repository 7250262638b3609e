/* Fuzz target for common/pbcheck.c: arbitrary bytes unpacked as the two requests every client
 * sends first (CallToolRequest, InitializeRequest) through a 1 MiB capped allocator, then the
 * same bytes through the UTF-8 helpers. Beyond "no crash, no leak" it checks the promises the
 * rest of the server relies on:
 *   - the budget is never exceeded and every byte goes back to the allocator;
 *   - a message that was accepted validates again, packs, and unpacks again to the same bytes;
 *   - bst_text_sanitize output is valid UTF-8 without control characters, within dstlen. */
#include "pbcheck.h"

#include "bastion/v1/mcp.pb-c.h"

#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#define BUDGET (1024 * 1024)

static void check_message(const ProtobufCMessageDescriptor *d, const uint8_t *data, size_t size)
{
    struct bst_pballoc a;
    struct bst_err err;
    ProtobufCMessage *m = NULL;
    enum bst_status rv;

    bst_pballoc_init(&a, BUDGET);
    rv = bst_pb_unpack(d, data, size, &a, &m, &err);
    if (rv == BST_OK) {
        size_t n = protobuf_c_message_get_packed_size(m);
        uint8_t *buf = malloc(n > 0 ? n : 1);
        uint8_t *buf2 = malloc(n > 0 ? n : 1);
        struct bst_pballoc b;
        ProtobufCMessage *again = NULL;

        if (buf == NULL || buf2 == NULL || bst_pb_validate(m, &err) != BST_OK)
            abort();
        if (protobuf_c_message_pack(m, buf) != n)
            abort();
        /* What we accepted re-encodes to bytes we accept again, and that encoding is stable. */
        bst_pballoc_init(&b, BUDGET);
        if (bst_pb_unpack(d, buf, n, &b, &again, &err) != BST_OK)
            abort();
        if (protobuf_c_message_get_packed_size(again) != n ||
            protobuf_c_message_pack(again, buf2) != n || memcmp(buf, buf2, n) != 0)
            abort();
        bst_pb_free(again, &b);
        if (b.used != 0)
            abort();
        free(buf);
        free(buf2);
    } else {
        if (m != NULL)
            abort();
        if (rv != BST_INVALID_ARGUMENT && rv != BST_RESOURCE_EXHAUSTED)
            abort();
        if (rv == BST_RESOURCE_EXHAUSTED && !a.exhausted)
            abort();
    }
    bst_pb_free(m, &a);
    if (a.used != 0 || a.peak > a.cap)
        abort();
}

static void check_sanitize(const uint8_t *data, size_t size)
{
    char dst[256];
    /* Vary the room so that cuts at every position of a multi-byte character are reached. */
    size_t dstlen = size > 0 ? (size_t)data[0] % sizeof(dst) + 1 : sizeof(dst);
    size_t n = bst_text_sanitize(dst, dstlen, (const char *)data, size);

    if (n >= dstlen || dst[n] != '\0' || !bst_utf8_valid(dst, n))
        abort();
    for (size_t i = 0; i < n; i++) {
        unsigned char c = (unsigned char)dst[i];
        if (c < 0x20 || c == 0x7f)
            abort();
        if (c == 0xC2 && (unsigned char)dst[i + 1] < 0xA0) /* U+0080..U+009F */
            abort();
    }
    /* Valid text without controls passes through unchanged when it fits. In valid UTF-8, 0xC2
     * is always a lead byte, so C2 80..9F is exactly the C1 range. */
    if (size < sizeof(dst) && bst_utf8_valid((const char *)data, size)) {
        int controls = 0;
        for (size_t i = 0; i < size; i++)
            if (data[i] < 0x20 || data[i] == 0x7f ||
                (data[i] == 0xC2 && i + 1 < size && data[i + 1] < 0xA0))
                controls = 1;
        n = bst_text_sanitize(dst, sizeof(dst), (const char *)data, size);
        if (!controls && (n != size || memcmp(dst, data, size) != 0))
            abort();
    }
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    check_message(&bastion__v1__call_tool_request__descriptor, data, size);
    check_message(&bastion__v1__initialize_request__descriptor, data, size);
    check_sanitize(data, size);
    return 0;
}
