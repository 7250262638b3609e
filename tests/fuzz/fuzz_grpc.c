/* Fuzz target for the gRPC framing helpers (server/grpc.c): the length-prefixed message reader
 * fed in peer-chosen chunks, grpc-timeout parsing, content-type checks and grpc-message
 * encoding. The first input byte picks the chunk size and the maximum message size. */
#include "grpc.h"

#include <stdint.h>
#include <stdlib.h>
#include <string.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    struct grpc_reader r;
    struct bst_err err;
    size_t chunk, max;
    int64_t ns;
    char out[3 * GRPC_MAX_MESSAGE_MESSAGE + 1];
    char *text;

    if (size == 0)
        return 0;
    chunk = (size_t)(data[0] & 0x0f) + 1;
    max = (size_t)(data[0] >> 4) * 64;
    data++;
    size--;
    grpc_reader_init(&r, max);
    for (size_t o = 0; o < size; o += chunk) {
        size_t k = size - o < chunk ? size - o : chunk;
        if (grpc_reader_feed(&r, data + o, k, &err) != BST_OK)
            break;
    }
    if (grpc_reader_finish(&r, &err) == BST_OK && r.msg_len > max)
        abort(); /* a message above the limit must never be accepted */
    grpc_reader_dispose(&r);

    grpc_timeout_parse((const char *)data, size, &ns);
    grpc_content_type_ok((const char *)data, size);
    grpc_content_type_is_grpc((const char *)data, size);
    text = malloc(size + 1);
    if (text != NULL) {
        memcpy(text, data, size);
        text[size] = '\0';
        grpc_message_encode(out, sizeof(out), text);
        for (const char *p = out; *p; p++) {
            if (*p < 0x20 || *p > 0x7e)
                abort(); /* the encoded message is always printable ASCII */
        }
        free(text);
    }
    return 0;
}
