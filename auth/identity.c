/* Client-certificate identity extraction. */
#include "identity.h"
#include "text.h"

#include <openssl/evp.h>
#include <openssl/x509v3.h>
#include <string.h>
#include <time.h>

/* An identity must be printable: no control characters, valid UTF-8, no NUL inside. */
static int identity_ok(const unsigned char *s, int len)
{
    if (len <= 0 || len > AUTHN_MAX_IDENTITY)
        return 0;
    if (!bst_utf8_valid((const char *)s, (size_t)len))
        return 0;
    for (int i = 0; i < len; i++) {
        if (s[i] < 0x20 || s[i] == 0x7f)
            return 0;
    }
    return 1;
}

static enum bst_status san_uri(X509 *cert, char **out, struct bst_err *err)
{
    GENERAL_NAMES *names = X509_get_ext_d2i(cert, NID_subject_alt_name, NULL, NULL);
    const ASN1_IA5STRING *uri = NULL;
    int n_uri = 0;
    enum bst_status rv = BST_OK;

    *out = NULL;
    if (names == NULL)
        return BST_OK;
    for (int i = 0; i < sk_GENERAL_NAME_num(names); i++) {
        const GENERAL_NAME *gn = sk_GENERAL_NAME_value(names, i);
        if (gn->type == GEN_URI) {
            n_uri++;
            uri = gn->d.uniformResourceIdentifier;
        }
    }
    if (n_uri > 1) {
        rv = bst_errf(err, BST_UNAUTHENTICATED,
                      "client certificate has %d URI SANs; exactly one may name the caller", n_uri);
    } else if (n_uri == 1) {
        if (!identity_ok(ASN1_STRING_get0_data(uri), ASN1_STRING_length(uri))) {
            rv = bst_errf(err, BST_UNAUTHENTICATED,
                          "client certificate URI SAN is empty, too long or not printable");
        } else if ((*out = strndup((const char *)ASN1_STRING_get0_data(uri),
                                   (size_t)ASN1_STRING_length(uri))) == NULL) {
            rv = bst_errf(err, BST_RESOURCE_EXHAUSTED, "out of memory");
        }
    }
    GENERAL_NAMES_free(names);
    return rv;
}

static enum bst_status subject_cn(X509 *cert, char **out, struct bst_err *err)
{
    const X509_NAME *subj = X509_get_subject_name(cert);
    int idx = X509_NAME_get_index_by_NID(subj, NID_commonName, -1);
    unsigned char *utf8 = NULL;
    int len;

    *out = NULL;
    if (idx < 0)
        return bst_errf(err, BST_UNAUTHENTICATED,
                        "client certificate has neither a URI SAN nor a subject CN");
    if (X509_NAME_get_index_by_NID(subj, NID_commonName, idx) >= 0)
        return bst_errf(err, BST_UNAUTHENTICATED, "client certificate has several subject CNs");
    len = ASN1_STRING_to_UTF8(&utf8, X509_NAME_ENTRY_get_data(X509_NAME_get_entry(subj, idx)));
    if (len < 0)
        return bst_errf(err, BST_UNAUTHENTICATED, "client certificate CN is not a valid string");
    if (!identity_ok(utf8, len) || memchr(utf8, '\0', (size_t)len) != NULL) {
        OPENSSL_free(utf8);
        return bst_errf(err, BST_UNAUTHENTICATED,
                        "client certificate CN is empty, too long or not printable");
    }
    *out = strndup((const char *)utf8, (size_t)len);
    OPENSSL_free(utf8);
    if (*out == NULL)
        return bst_errf(err, BST_RESOURCE_EXHAUSTED, "out of memory");
    return BST_OK;
}

enum bst_status authn_cert_identity(X509 *cert, struct bst_principal *p, struct bst_err *err)
{
    unsigned char md[EVP_MAX_MD_SIZE];
    unsigned int mdlen = 0;
    char *id = NULL;
    struct tm tm;
    enum bst_status rv;

    rv = san_uri(cert, &id, err);
    if (rv == BST_OK && id == NULL)
        rv = subject_cn(cert, &id, err);
    if (rv != BST_OK)
        return rv;
    if (X509_digest(cert, EVP_sha256(), md, &mdlen) != 1 || mdlen != 32) {
        free(id);
        return bst_errf(err, BST_INTERNAL, "cannot hash the client certificate");
    }
    bst_hex_encode(p->fingerprint, md, mdlen);
    if (ASN1_TIME_to_tm(X509_get0_notAfter(cert), &tm) == 1)
        p->expires_at_ns = (int64_t)timegm(&tm) * 1000000000;
    free(p->cert_identity);
    p->cert_identity = id;
    if (bst_principal_set_name(p, id, BST_MECH_MTLS) != BST_OK)
        return bst_errf(err, BST_RESOURCE_EXHAUSTED, "out of memory");
    return BST_OK;
}
