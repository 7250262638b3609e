/* Request ids from the OpenSSL CSPRNG. */
#include "reqid.h"
#include "text.h"

#include <openssl/rand.h>

enum bst_status bst_reqid_new(struct bst_reqid *id)
{
    if (RAND_bytes(id->bytes, sizeof(id->bytes)) != 1)
        return BST_INTERNAL;
    bst_hex_encode(id->hex, id->bytes, sizeof(id->bytes));
    return BST_OK;
}
