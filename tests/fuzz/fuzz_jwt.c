/* libFuzzer target for the JWT parser and verifier (auth/jwt.c). The input is a token, which
 * goes through jwt_looks_like and jwt_verify against a fixed issuer with an HS256 key and an
 * ES256 key at a fixed time. An input starting with "S\n" is instead "S\n<header JSON>\n<payload
 * JSON>": the harness signs it with the HS256 key first, so the fuzzer also reaches every claim
 * check behind the signature (a mutated raw token never gets past it).
 * Invariants: no crash or leak, a verified token yields a named principal, a refusal leaves the
 * principal empty, and the reason is NUL-terminated and free of control characters (reasons
 * go to logs and audit). */
#include "authn_internal.h"

#include <openssl/hmac.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

/* The seeds in seeds/fuzz_jwt were signed with these keys (the EC private key is not needed). */
static const char hs_secret[] = "fuzz-secret-0123456789abcdefghij"; /* 32 bytes */
static const char es_public[] = "-----BEGIN PUBLIC KEY-----\n"
                                "MFkwEwYHKoZIzj0CAQYIKoZIzj0DAQcDQgAEqsK4Uprs/jtaaieQQ8WmdHH9plj8\n"
                                "WLTNjhcig9eYn42PjfTfmjSb4S0Ievvx/eVgYO4HdS0KNC7gI2KKKtNLxg==\n"
                                "-----END PUBLIC KEY-----\n";
#define NOW INT64_C(1800000000)

static struct jwt_set *set;
static struct jti_denylist deny;
static char *deny_ids[1];

static char *dup(const char *s)
{
    char *p = strdup(s);
    if (p == NULL)
        abort();
    return p;
}

static void init(void)
{
    static struct jwt_issuer is;
    static char *aud[1];
    static struct jwt_key keys[2];
    struct bst_err err;

    set = calloc(1, sizeof(*set));
    if (set == NULL)
        abort();
    if (jwt_key_from_secret(&keys[0], "hs", AUTHN_ALG_HS256, (const unsigned char *)hs_secret, 32,
                            &err) != BST_OK ||
        jwt_key_from_pem(&keys[1], "es", AUTHN_ALG_ES256, es_public, strlen(es_public), &err) !=
            BST_OK)
        abort();
    aud[0] = dup("bastion");
    is.name = dup("https://idp.fuzz");
    is.audiences = aud;
    is.n_audiences = 1;
    is.keys = keys;
    is.n_keys = 2;
    is.trusted_permissions = 1;
    is.identity_claim = dup("sub");
    is.identity_prefix = dup("");
    is.groups_claim = dup("groups");
    is.tenant_claim = dup("tenant");
    is.permissions_claim = dup("permissions");
    is.leeway_s = 30;
    is.max_lifetime_s = 86400;
    set->issuers = &is;
    set->n_issuers = 1;
    deny_ids[0] = dup("revoked");
    deny.ids = deny_ids;
    deny.n = 1;
}

/* Builds b64url(header).b64url(payload).b64url(HMAC) from "S\nheader\npayload". */
static char *sign_input(const uint8_t *data, size_t size, size_t *len)
{
    const uint8_t *h = data + 2, *nl = memchr(h, '\n', size - 2), *pl;
    size_t hl, pll, cap, o;
    unsigned char mac[32];
    unsigned int ml = 0;
    char *tok;

    if (nl == NULL)
        return NULL;
    hl = (size_t)(nl - h);
    pl = nl + 1;
    pll = size - 2 - hl - 1;
    cap = (hl + pll) * 2 + 64;
    tok = malloc(cap);
    if (tok == NULL)
        abort();
    o = auth_b64url_encode(tok, cap, h, hl);
    tok[o++] = '.';
    o += auth_b64url_encode(tok + o, cap - o, pl, pll);
    HMAC(EVP_sha256(), hs_secret, 32, (const unsigned char *)tok, o, mac, &ml);
    tok[o++] = '.';
    o += auth_b64url_encode(tok + o, cap - o, mac, ml);
    *len = o;
    return tok;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    char *signed_tok = NULL;
    size_t signed_len = 0;
    struct bst_principal p;
    char reason[256];
    enum bst_status rv;

    if (set == NULL)
        init();
    if (size >= 2 && data[0] == 'S' && data[1] == '\n' && size < 6000 &&
        (signed_tok = sign_input(data, size, &signed_len)) != NULL) {
        data = (const uint8_t *)signed_tok;
        size = signed_len;
    }
    (void)jwt_looks_like((const char *)data, size);
    bst_principal_init(&p);
    memset(reason, 'x', sizeof(reason));
    reason[0] = '\0';
    rv = jwt_verify(set, &deny, (const char *)data, size, NOW, &p, reason, sizeof(reason));
    if (memchr(reason, '\0', sizeof(reason)) == NULL)
        abort();
    for (const char *c = reason; *c != '\0'; c++)
        if ((unsigned char)*c < 0x20 || *c == 0x7f)
            abort();
    if (rv == BST_OK) {
        if (p.name == NULL || p.mechanism != BST_MECH_JWT || p.expires_at_ns <= 0)
            abort();
    } else if (rv != BST_UNAUTHENTICATED && rv != BST_UNIMPLEMENTED &&
               rv != BST_RESOURCE_EXHAUSTED) {
        abort();
    } else if (reason[0] == '\0') {
        abort(); /* every refusal says why */
    }
    bst_principal_dispose(&p);
    free(signed_tok);
    return 0;
}
