/* Who is calling: the principal every stage after authentication reads. Filled by the mTLS
 * identity stage (server, from auth/identity.c) and by authentication (API key, JWT); read by
 * authorization (groups, tenant, carried permissions) and audit (everything, never a secret).
 * A principal is owned by its call; strings are malloc'd copies freed by bst_principal_dispose. */
#ifndef BASTION_COMMON_PRINCIPAL_H
#define BASTION_COMMON_PRINCIPAL_H

#include "status.h"

#include <stddef.h>
#include <stdint.h>

/* How the principal's name was established. Values match bastion.v1.AuthMechanism. */
enum bst_mechanism {
    BST_MECH_NONE = 0, /* anonymous: nothing authenticated the caller */
    BST_MECH_MTLS = 1,
    BST_MECH_API_KEY = 2,
    BST_MECH_JWT = 3,
};

/* Where carried permissions came from. Authorization honours them only when the authentication
 * config trusts that source; the source is recorded so the audit can say why. */
enum bst_perm_source {
    BST_PERMS_NONE = 0,
    BST_PERMS_API_KEY_FILE, /* permissions on an API key entry */
    BST_PERMS_JWT_ISSUER,   /* a `permissions` claim from an issuer the config trusts */
};

#define BST_PRINCIPAL_MAX_GROUPS 64
#define BST_PRINCIPAL_MAX_PERMS 128

struct bst_principal {
    char *name; /* NULL while anonymous */
    enum bst_mechanism mechanism;
    char **groups; /* n_groups entries */
    size_t n_groups;
    char *tenant;       /* NULL = no tenant confinement */
    char **permissions; /* carried permissions, n_permissions entries */
    size_t n_permissions;
    enum bst_perm_source permissions_source;
    char *permissions_issuer; /* the JWT issuer or the API key file, for audit */
    /* The client certificate (the calling workload), kept even when a token names the user. */
    char *cert_identity;      /* the single SAN URI, else the subject CN */
    char fingerprint[64 + 1]; /* SHA-256 of the DER certificate, lower-case hex, or "" */
    /* A short hash of the token or the API key id: enough to correlate, never the secret. */
    char credential_id[32 + 1];
    int64_t expires_at_ns; /* wall clock; 0 = no expiry (certificates: notAfter) */
};

/* Zeroes p. */
void bst_principal_init(struct bst_principal *p);

/* Frees every string p owns and zeroes it. */
void bst_principal_dispose(struct bst_principal *p);

/* Setters copy their arguments. Each returns BST_OK, BST_RESOURCE_EXHAUSTED (out of memory or
 * past the caps above). */
enum bst_status bst_principal_set_name(struct bst_principal *p, const char *name,
                                       enum bst_mechanism mech);
enum bst_status bst_principal_set_tenant(struct bst_principal *p, const char *tenant);
enum bst_status bst_principal_add_group(struct bst_principal *p, const char *group);
enum bst_status bst_principal_add_permission(struct bst_principal *p, const char *perm);

/* Returns "none", "mtls", "api_key" or "jwt". */
const char *bst_mechanism_name(enum bst_mechanism m);

#endif
