/* Identity of a verified client certificate: the mTLS part of authentication. The identity is
 * the certificate's single SAN URI (e.g. spiffe://bastion.local/user/admin), else its subject
 * CN; a certificate with several URI SANs is refused, because which one names the caller would
 * be ambiguous. Knows X.509, not HTTP/2. */
#ifndef BASTION_AUTH_IDENTITY_H
#define BASTION_AUTH_IDENTITY_H

#include "principal.h"
#include "status.h"

#include <openssl/x509.h>

/* Longest identity accepted (URI SAN or CN), in bytes. */
#define AUTHN_MAX_IDENTITY 1024

/* Fills p->cert_identity, p->fingerprint and p->expires_at_ns from cert (already verified by
 * TLS), and sets p->name to the identity with mechanism BST_MECH_MTLS. Does not take ownership
 * of cert. Returns BST_OK; BST_UNAUTHENTICATED when the certificate names no usable identity
 * (several URI SANs, no URI and no CN, several CNs, an identity that is not printable UTF-8 or
 * is too long), with the reason in err; BST_RESOURCE_EXHAUSTED when out of memory. */
enum bst_status authn_cert_identity(X509 *cert, struct bst_principal *p, struct bst_err *err);

#endif
