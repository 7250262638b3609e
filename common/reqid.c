/* Request ids from the OpenSSL CSPRNG. */
#include "reqid.h"

#include <openssl/rand.h>

enum bst_status bst_reqid_new(struct bst_reqid *id)
{
    static const char digits[] = "0123456789abcdef";

    if (RAND_bytes(id->bytes, sizeof(id->bytes)) != 1)
        return BST_INTERNAL;
    for (size_t i = 0; i < sizeof(id->bytes); i++) {
        id->hex[2 * i] = digits[id->bytes[i] >> 4];
        id->hex[2 * i + 1] = digits[id->bytes[i] & 0xf];
    }
    id->hex[BST_REQID_HEX_LEN] = '\0';
    return BST_OK;
}
