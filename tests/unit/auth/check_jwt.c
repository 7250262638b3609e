/* The JWT attack suite (auth/jwt.c through authn_authenticate): every token is built in the
 * test by an independent signer (OpenSSL EVP + EVP_EncodeBlock, see authtest.h) and sent as
 * `authorization: Bearer ...`. Each attack must be UNAUTHENTICATED with the one generic peer
 * message, and the reason must say what was wrong. The wall clock is injected, so expiry edges
 * are tested to the second. */
#include "authn_internal.h"
#include "authtest.h"

#include <check.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define GENERIC "invalid or expired token"
#define ISS "https://idp.test"

static EVP_PKEY *own_key;
static struct authn *A;
static struct authn_config CFG;

/* ---- fixture ------------------------------------------------------------------------------- */

static void write_secret(const char *name, size_t n)
{
    char *b = at_b64url(at_hs_secret, n);
    free(at_write_str(name, b, 0600));
    free(b);
}

static void write_pem(const char *name, EVP_PKEY *k, int private_key, mode_t mode)
{
    char *pem = at_pem(k, private_key);
    free(at_write_str(name, pem, mode));
    free(pem);
}

static const char issuers_yaml[] =
    "issuers:\n"
    "  - issuer: \"" ISS "\"\n"
    "    audiences: [\"bastion\", \"bastion-alt\"]\n"
    "    leeway_seconds: 30\n"
    "    max_lifetime_seconds: 3600\n"
    "    keys:\n"
    "      - kid: hs256\n        alg: HS256\n        file: hs256.key\n"
    "      - kid: hs384\n        alg: HS384\n        file: hs384.key\n"
    "      - kid: hs512\n        alg: HS512\n        file: hs512.key\n"
    "      - kid: rs256\n        alg: RS256\n        file: rs.pem\n"
    "      - kid: rs384\n        alg: RS384\n        file: rs.pem\n"
    "      - kid: rs512\n        alg: RS512\n        file: rs.pem\n"
    "      - kid: es256\n        alg: ES256\n        file: ec256.pem\n"
    "      - kid: es384\n        alg: ES384\n        file: ec384.pem\n"
    "      - kid: es512\n        alg: ES512\n        file: ec521.pem\n"
    "  - issuer: \"https://trusted.test\"\n"
    "    audiences: bastion\n"
    "    trusted_permissions: true\n"
    "    identity_prefix: \"trusted:\"\n"
    "    groups_claim: roles\n"
    "    keys:\n"
    "      - kid: es256\n        alg: ES256\n        file: ec256.pem\n";

static void files_setup(void)
{
    at_keys();
    own_key = EVP_EC_gen("P-256");
    at_make_dir();
    write_secret("hs256.key", 32);
    write_secret("hs384.key", 48);
    write_secret("hs512.key", 64);
    write_pem("rs.pem", at_rsa, 0, 0644);
    write_pem("ec256.pem", at_ec256, 0, 0644);
    write_pem("ec384.pem", at_ec384, 0, 0644);
    write_pem("ec521.pem", at_ec521, 0, 0644);
    write_pem("signing.pem", own_key, 1, 0600);
    free(at_write_str("issuers.yaml", issuers_yaml, 0644));
    free(at_write_str("deny.txt", "# revoked\nrevoked-jti\n", 0644));
}

static void files_teardown(void)
{
    at_remove_dir();
}

static void authn_setup(void)
{
    struct bst_err err;
    char *p;

    at_use_fake_clocks();
    at_config_defaults(&CFG);
    p = at_path("issuers.yaml");
    at_set(&CFG.jwt_issuers, p);
    free(p);
    p = at_path("deny.txt");
    at_set(&CFG.jti_denylist, p);
    free(p);
    p = at_path("signing.pem");
    at_set(&CFG.token.signing_key, p);
    free(p);
    CFG.require_client_certificate = 0;
    CFG.failed_credentials_per_address = 0;
    if (authn_new(&A, &CFG, &err) != BST_OK)
        ck_abort_msg("authn_new: %s", err.msg);
}

static void authn_teardown(void)
{
    bst_reload_clear();
    authn_free(A);
    A = NULL;
    bst_yaml_decoded_free(authn_config_fields, &CFG);
}

/* ---- the table ----------------------------------------------------------------------------- */

/* Replaces "$N", "$N+k" and "$N-k" with AT_NOW, AT_NOW+k, AT_NOW-k. malloc'd. */
static char *expand(const char *t)
{
    size_t cap = strlen(t) + 64 * 8, o = 0;
    char *out = malloc(cap);
    while (*t != '\0') {
        if (t[0] == '$' && t[1] == 'N') {
            long long v = AT_NOW, k = 0;
            t += 2;
            if (*t == '+' || *t == '-') {
                int neg = *t == '-';
                t++;
                while (*t >= '0' && *t <= '9')
                    k = k * 10 + (*t++ - '0');
                v += neg ? -k : k;
            }
            o += (size_t)snprintf(out + o, cap - o, "%lld", v);
        } else {
            out[o++] = *t++;
        }
        ck_assert_uint_lt(o, cap - 32);
    }
    out[o] = '\0';
    return out;
}

#define H(alg, kid) "{\"alg\":\"" alg "\",\"typ\":\"JWT\",\"kid\":\"" kid "\"}"
#define P_OK "{\"iss\":\"" ISS "\",\"aud\":\"bastion\",\"sub\":\"alice\",\"iat\":$N,\"exp\":$N+600}"
#define P_EXP(e) "{\"iss\":\"" ISS "\",\"aud\":\"bastion\",\"sub\":\"alice\",\"exp\":" e "}"

enum mangle {
    M_NONE,
    M_NONCANONICAL,
    M_FLIP_SIG,
    M_TRUNCATE,
    M_TWO_SEGMENTS,
    M_FIVE_SEGMENTS,
    M_BAD_CHAR,
    M_EMPTY_SIG,
    M_PAD
};

struct jcase {
    const char *name;
    const char *header;
    const char *payload;
    enum at_signer signer;
    enum mangle mangle;
    int accept;         /* 1: must verify */
    const char *reason; /* substring of the reason (refusals) */
};

static const struct jcase cases[] = {
    /* Accepted: every algorithm libjwt 1.10.2 has, each with its pinned key. */
    {"HS256 valid", H("HS256", "hs256"), P_OK, AT_HS256, M_NONE, 1, NULL},
    {"HS384 valid", H("HS384", "hs384"), P_OK, AT_HS384, M_NONE, 1, NULL},
    {"HS512 valid", H("HS512", "hs512"), P_OK, AT_HS512, M_NONE, 1, NULL},
    {"RS256 valid", H("RS256", "rs256"), P_OK, AT_RS256, M_NONE, 1, NULL},
    {"RS384 valid", H("RS384", "rs384"), P_OK, AT_RS384, M_NONE, 1, NULL},
    {"RS512 valid", H("RS512", "rs512"), P_OK, AT_RS512, M_NONE, 1, NULL},
    {"ES256 valid", H("ES256", "es256"), P_OK, AT_ES256, M_NONE, 1, NULL},
    {"ES384 valid", H("ES384", "es384"), P_OK, AT_ES384, M_NONE, 1, NULL},
    {"ES512 valid", H("ES512", "es512"), P_OK, AT_ES512, M_NONE, 1, NULL},
    /* alg none in every case, with and without a signature. */
    {"alg none, no signature", H("none", "hs256"), P_OK, AT_NO_SIG, M_NONE, 0, "empty signature"},
    {"alg none, junk signature", H("none", "hs256"), P_OK, AT_JUNK_SIG, M_NONE, 0, "alg none"},
    {"alg NoNe", H("NoNe", "hs256"), P_OK, AT_JUNK_SIG, M_NONE, 0, "alg none"},
    {"alg NONE", H("NONE", "hs256"), P_OK, AT_JUNK_SIG, M_NONE, 0, "alg none"},
    {"alg none without kid", "{\"alg\":\"none\"}", P_OK, AT_JUNK_SIG, M_NONE, 0, "alg none"},
    /* Algorithm confusion and weak keys. */
    {"HS256 signed with the RSA public key PEM", H("HS256", "rs256"), P_OK, AT_HS256_RSA_PEM,
     M_NONE, 0, "pins RS256"},
    {"HS256 with the RSA PEM under an HS kid", H("HS256", "hs256"), P_OK, AT_HS256_RSA_PEM, M_NONE,
     0, "signature does not verify"},
    {"HS256 signed with an empty key", H("HS256", "hs256"), P_OK, AT_HS256_EMPTY, M_NONE, 0,
     "signature does not verify"},
    {"RS256 header on an ES key", H("RS256", "es256"), P_OK, AT_RS256, M_NONE, 0, "pins ES256"},
    {"ES384 signature under an ES256 kid", H("ES384", "es256"), P_OK, AT_ES384, M_NONE, 0,
     "pins ES256"},
    {"PS256 refused, naming libjwt", H("PS256", "rs256"), P_OK, AT_PS256, M_NONE, 0,
     "libjwt 1.10.2 has no PS"},
    {"alg EdDSA", H("EdDSA", "es256"), P_OK, AT_ES256, M_NONE, 0, "not supported"},
    {"alg lower case hs256", H("hs256", "hs256"), P_OK, AT_HS256, M_NONE, 0, "not supported"},
    /* kid games. */
    {"kid ../../dev/null", H("HS256", "../../dev/null"), P_OK, AT_HS256_EMPTY, M_NONE, 0,
     "no key with kid"},
    {"kid with NUL", "{\"alg\":\"HS256\",\"kid\":\"hs256\\u0000x\"}", P_OK, AT_HS256, M_NONE, 0,
     "header is not"},
    {"kid of 200 bytes", NULL /* built in the test */, P_OK, AT_HS256, M_NONE, 0,
     "kid is not 1-128"},
    {"kid of 10 KB", NULL, P_OK, AT_HS256, M_NONE, 0, "8192"},
    {"unknown kid", H("HS256", "nope"), P_OK, AT_HS256, M_NONE, 0, "no key with kid"},
    {"kid missing", "{\"alg\":\"HS256\"}", P_OK, AT_HS256, M_NONE, 0, "no kid"},
    {"kid is a number", "{\"alg\":\"HS256\",\"kid\":7}", P_OK, AT_HS256, M_NONE, 0, "kid is not"},
    /* Header parameters that point at keys, or demand extensions. */
    {"jku header", "{\"alg\":\"HS256\",\"kid\":\"hs256\",\"jku\":\"https://evil/k\"}", P_OK,
     AT_HS256, M_NONE, 0, "'jku' is not accepted"},
    {"x5u header", "{\"alg\":\"HS256\",\"kid\":\"hs256\",\"x5u\":\"https://evil/c\"}", P_OK,
     AT_HS256, M_NONE, 0, "'x5u' is not accepted"},
    {"jwk header", "{\"alg\":\"HS256\",\"kid\":\"hs256\",\"jwk\":{\"kty\":\"oct\",\"k\":\"AA\"}}",
     P_OK, AT_HS256, M_NONE, 0, "'jwk' is not accepted"},
    {"crit header", "{\"alg\":\"HS256\",\"kid\":\"hs256\",\"crit\":[\"exp\"]}", P_OK, AT_HS256,
     M_NONE, 0, "'crit' is not accepted"},
    {"x5c header", "{\"alg\":\"HS256\",\"kid\":\"hs256\",\"x5c\":[\"AA\"]}", P_OK, AT_HS256, M_NONE,
     0, "'x5c' is not accepted"},
    {"duplicate alg in the header", "{\"alg\":\"HS256\",\"kid\":\"hs256\",\"alg\":\"none\"}", P_OK,
     AT_HS256, M_NONE, 0, "header is not"},
    {"typ JWE", "{\"alg\":\"HS256\",\"kid\":\"hs256\",\"typ\":\"JWE\"}", P_OK, AT_HS256, M_NONE, 0,
     "typ"},
    {"header is an array", "[\"HS256\"]", P_OK, AT_HS256, M_NONE, 0, "header is not"},
    /* exp. */
    {"exp missing", H("HS256", "hs256"),
     "{\"iss\":\"" ISS "\",\"aud\":\"bastion\",\"sub\":\"alice\",\"iat\":$N}", AT_HS256, M_NONE, 0,
     "no exp"},
    {"exp as a string", H("HS256", "hs256"), P_EXP("\"$N+600\""), AT_HS256, M_NONE, 0,
     "not an integer"},
    {"exp as a float", H("HS256", "hs256"), P_EXP("$N+600.5"), AT_HS256, M_NONE, 0,
     "not an integer"},
    {"exp negative", H("HS256", "hs256"), P_EXP("-1"), AT_HS256, M_NONE, 0, "not an integer"},
    {"exp absurdly far", H("HS256", "hs256"), P_EXP("99999999999999"), AT_HS256, M_NONE, 0,
     "not an integer"},
    {"expired long ago", H("HS256", "hs256"), P_EXP("$N-3600"), AT_HS256, M_NONE, 0, "expired"},
    {"expired 1 s beyond the leeway", H("HS256", "hs256"), P_EXP("$N-31"), AT_HS256, M_NONE, 0,
     "expired"},
    {"expired exactly at the leeway", H("HS256", "hs256"), P_EXP("$N-30"), AT_HS256, M_NONE, 0,
     "expired"},
    {"expired 1 s inside the leeway", H("HS256", "hs256"), P_EXP("$N-29"), AT_HS256, M_NONE, 1,
     NULL},
    /* nbf and iat. */
    {"nbf 1 s beyond the leeway", H("HS256", "hs256"),
     "{\"iss\":\"" ISS "\",\"aud\":\"bastion\",\"sub\":\"a\",\"nbf\":$N+31,\"exp\":$N+600}",
     AT_HS256, M_NONE, 0, "nbf"},
    {"nbf 1 s inside the leeway", H("HS256", "hs256"),
     "{\"iss\":\"" ISS "\",\"aud\":\"bastion\",\"sub\":\"a\",\"nbf\":$N+29,\"exp\":$N+600}",
     AT_HS256, M_NONE, 1, NULL},
    {"iat in the future", H("HS256", "hs256"),
     "{\"iss\":\"" ISS "\",\"aud\":\"bastion\",\"sub\":\"a\",\"iat\":$N+31,\"exp\":$N+600}",
     AT_HS256, M_NONE, 0, "iat"},
    {"nbf as a string", H("HS256", "hs256"),
     "{\"iss\":\"" ISS "\",\"aud\":\"bastion\",\"sub\":\"a\",\"nbf\":\"0\",\"exp\":$N+600}",
     AT_HS256, M_NONE, 0, "not an integer"},
    /* Lifetime. */
    {"lifetime 1 s over the maximum", H("HS256", "hs256"),
     "{\"iss\":\"" ISS "\",\"aud\":\"bastion\",\"sub\":\"a\",\"iat\":$N,\"exp\":$N+3601}", AT_HS256,
     M_NONE, 0, "lifetime"},
    {"lifetime at the maximum", H("HS256", "hs256"),
     "{\"iss\":\"" ISS "\",\"aud\":\"bastion\",\"sub\":\"a\",\"iat\":$N,\"exp\":$N+3600}", AT_HS256,
     M_NONE, 1, NULL},
    {"no iat and exp far away", H("HS256", "hs256"), P_EXP("$N+86400"), AT_HS256, M_NONE, 0,
     "lifetime"},
    /* Issuer and audience. */
    {"wrong iss", H("HS256", "hs256"),
     "{\"iss\":\"https://evil.test\",\"aud\":\"bastion\",\"sub\":\"a\",\"exp\":$N+60}", AT_HS256,
     M_NONE, 0, "unknown issuer"},
    {"iss missing", H("HS256", "hs256"), "{\"aud\":\"bastion\",\"sub\":\"a\",\"exp\":$N+60}",
     AT_HS256, M_NONE, 0, "no string iss"},
    {"iss with an extra slash", H("HS256", "hs256"),
     "{\"iss\":\"" ISS "/\",\"aud\":\"bastion\",\"sub\":\"a\",\"exp\":$N+60}", AT_HS256, M_NONE, 0,
     "unknown issuer"},
    {"key of another issuer", H("ES256", "es256"),
     "{\"iss\":\"https://trusted.test\",\"aud\":\"bastion\",\"sub\":\"a\",\"exp\":$N+60}", AT_ES256,
     M_NONE, 1, NULL},
    {"wrong aud string", H("HS256", "hs256"),
     "{\"iss\":\"" ISS "\",\"aud\":\"other\",\"sub\":\"a\",\"exp\":$N+60}", AT_HS256, M_NONE, 0,
     "audience"},
    {"wrong aud array", H("HS256", "hs256"),
     "{\"iss\":\"" ISS "\",\"aud\":[\"x\",\"y\"],\"sub\":\"a\",\"exp\":$N+60}", AT_HS256, M_NONE, 0,
     "audience"},
    {"aud array holding ours", H("HS256", "hs256"),
     "{\"iss\":\"" ISS "\",\"aud\":[\"x\",\"bastion-alt\"],\"sub\":\"a\",\"exp\":$N+60}", AT_HS256,
     M_NONE, 1, NULL},
    {"aud array with a non-string", H("HS256", "hs256"),
     "{\"iss\":\"" ISS "\",\"aud\":[\"bastion\",7],\"sub\":\"a\",\"exp\":$N+60}", AT_HS256, M_NONE,
     0, "audience"},
    {"aud empty array", H("HS256", "hs256"),
     "{\"iss\":\"" ISS "\",\"aud\":[],\"sub\":\"a\",\"exp\":$N+60}", AT_HS256, M_NONE, 0,
     "audience"},
    {"aud missing", H("HS256", "hs256"), "{\"iss\":\"" ISS "\",\"sub\":\"a\",\"exp\":$N+60}",
     AT_HS256, M_NONE, 0, "audience"},
    /* Claims. */
    {"duplicate sub", H("HS256", "hs256"),
     "{\"iss\":\"" ISS "\",\"aud\":\"bastion\",\"sub\":\"a\",\"sub\":\"admin\",\"exp\":$N+60}",
     AT_HS256, M_NONE, 0, "payload is not"},
    {"duplicate exp", H("HS256", "hs256"),
     "{\"iss\":\"" ISS "\",\"aud\":\"bastion\",\"sub\":\"a\",\"exp\":$N-999,\"exp\":$N+60}",
     AT_HS256, M_NONE, 0, "payload is not"},
    {"sub missing", H("HS256", "hs256"), "{\"iss\":\"" ISS "\",\"aud\":\"bastion\",\"exp\":$N+60}",
     AT_HS256, M_NONE, 0, "identity claim"},
    {"sub with a newline", H("HS256", "hs256"),
     "{\"iss\":\"" ISS "\",\"aud\":\"bastion\",\"sub\":\"a\\nb\",\"exp\":$N+60}", AT_HS256, M_NONE,
     0, "identity claim"},
    {"groups as a number", H("HS256", "hs256"),
     "{\"iss\":\"" ISS "\",\"aud\":\"bastion\",\"sub\":\"a\",\"groups\":7,\"exp\":$N+60}", AT_HS256,
     M_NONE, 0, "groups"},
    {"revoked jti", H("HS256", "hs256"),
     "{\"iss\":\"" ISS
     "\",\"aud\":\"bastion\",\"sub\":\"a\",\"jti\":\"revoked-jti\",\"exp\":$N+60}",
     AT_HS256, M_NONE, 0, "denylist"},
    {"payload is not JSON", H("HS256", "hs256"), "not json", AT_HS256, M_NONE, 0, "payload is not"},
    /* Shape. */
    {"token over 8 KiB", H("HS256", "hs256"), NULL /* built in the test */, AT_HS256, M_NONE, 0,
     "8192"},
    {"two segments", H("HS256", "hs256"), P_OK, AT_HS256, M_TWO_SEGMENTS, 0, "2 segments"},
    {"five segments", H("HS256", "hs256"), P_OK, AT_HS256, M_FIVE_SEGMENTS, 0, "more than three"},
    {"character outside base64url", H("HS256", "hs256"), P_OK, AT_HS256, M_BAD_CHAR, 0,
     "outside base64url"},
    {"base64 padding", H("HS256", "hs256"), P_OK, AT_HS256, M_PAD, 0, "outside base64url"},
    {"empty signature", H("HS256", "hs256"), P_OK, AT_HS256, M_EMPTY_SIG, 0, "empty signature"},
    {"bad signature", H("HS256", "hs256"), P_OK, AT_HS256, M_FLIP_SIG, 0,
     "signature does not verify"},
    {"bad ES256 signature", H("ES256", "es256"), P_OK, AT_ES256, M_FLIP_SIG, 0,
     "signature does not verify"},
    {"bad RS256 signature", H("RS256", "rs256"), P_OK, AT_RS256, M_FLIP_SIG, 0,
     "signature does not verify"},
    {"truncated token", H("RS256", "rs256"), P_OK, AT_RS256, M_TRUNCATE, 0, ""},
    {"signature with non-zero padding bits", H("HS256", "hs256"), P_OK, AT_HS256, M_NONCANONICAL, 0,
     "not canonical"},
};

#define N_CASES (sizeof(cases) / sizeof(cases[0]))

static char *build_case(const struct jcase *c)
{
    char *hdr = NULL, *pl, *tok, *big = NULL;
    size_t n;

    if (strcmp(c->name, "kid of 200 bytes") == 0 || strcmp(c->name, "kid of 10 KB") == 0) {
        size_t kl = strstr(c->name, "10 KB") != NULL ? 10240 : 200;
        hdr = malloc(kl + 64);
        n = (size_t)snprintf(hdr, kl + 64, "{\"alg\":\"HS256\",\"kid\":\"");
        memset(hdr + n, 'k', kl);
        snprintf(hdr + n + kl, 64, "\"}");
    }
    if (c->payload == NULL) {
        big = malloc(9000);
        n = (size_t)snprintf(big, 9000,
                             "{\"iss\":\"" ISS "\",\"aud\":\"bastion\",\"sub\":\"a\","
                             "\"exp\":$N+60,\"pad\":\"");
        memset(big + n, 'p', 7000);
        snprintf(big + n + 7000, 100, "\"}");
    }
    pl = expand(big != NULL ? big : c->payload);
    tok = at_token(hdr != NULL ? hdr : c->header, pl, c->signer);
    free(hdr);
    free(big);
    free(pl);
    n = strlen(tok);
    switch (c->mangle) {
    case M_NONE:
        break;
    case M_NONCANONICAL: {
        /* HS256: 32 bytes = 43 characters whose last one carries 2 unused bits. Setting one
         * decodes to the same bytes, a second spelling of the same token. */
        static const char abc[] =
            "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";
        tok[n - 1] = abc[(strchr(abc, tok[n - 1]) - abc) | 1];
        break;
    }
    case M_FLIP_SIG: {
        char *last = strrchr(tok, '.') + 3;
        *last = *last == 'A' ? 'B' : 'A';
        break;
    }
    case M_TRUNCATE:
        tok[n - 7] = '\0';
        break;
    case M_TWO_SEGMENTS:
        *strrchr(tok, '.') = '\0';
        break;
    case M_FIVE_SEGMENTS: {
        char *t = malloc(n + 16);
        snprintf(t, n + 16, "%s.AAAA.AAAA", tok);
        free(tok);
        tok = t;
        break;
    }
    case M_BAD_CHAR:
        tok[5] = '+';
        break;
    case M_PAD: {
        char *t = malloc(n + 4);
        snprintf(t, n + 4, "%s==", tok);
        free(tok);
        tok = t;
        break;
    }
    case M_EMPTY_SIG:
        strrchr(tok, '.')[1] = '\0';
        break;
    }
    return tok;
}

START_TEST(test_jwt_attack_table_refuses_attacks_and_accepts_valid_tokens)
{
    const struct jcase *c = &cases[_i];
    struct bst_principal cert, out;
    struct bst_err err = {BST_OK, ""};
    char reason[256] = "";
    char *tok = build_case(c);
    enum bst_status rv;

    at_cert_principal(&cert, "spiffe://bastion.local/user/agent");
    rv = at_auth_bearer(A, tok, &cert, &out, reason, sizeof(reason), &err);
    if (c->accept) {
        if (rv != BST_OK)
            ck_abort_msg("case '%s' refused: %s", c->name, reason);
        ck_assert_int_eq(out.mechanism, BST_MECH_JWT);
        ck_assert_str_eq(out.cert_identity, "spiffe://bastion.local/user/agent");
        ck_assert_int_eq(strncmp(out.credential_id, "jwt:", 4), 0);
        ck_assert_uint_eq(strlen(out.credential_id), 20);
    } else {
        if (rv != BST_UNAUTHENTICATED)
            ck_abort_msg("case '%s' gave %s (reason: %s)", c->name, bst_status_name(rv), reason);
        if (strstr(c->name, "PS256") != NULL) {
            ck_assert_ptr_nonnull(strstr(err.msg, "libjwt 1.10.2"));
        } else if (strcmp(err.msg, GENERIC) != 0) {
            ck_abort_msg("case '%s': peer message '%s' is not the generic one", c->name, err.msg);
        }
        if (c->reason != NULL && strstr(reason, c->reason) == NULL)
            ck_abort_msg("case '%s': reason '%s' lacks '%s'", c->name, reason, c->reason);
        ck_assert_ptr_null(out.name);
        /* The reason never echoes the token. */
        ck_assert_ptr_null(strstr(reason, tok + strlen(tok) - 8));
    }
    bst_principal_dispose(&out);
    bst_principal_dispose(&cert);
    free(tok);
}
END_TEST

/* ---- single behaviours --------------------------------------------------------------------- */

START_TEST(test_jwt_expiry_edge_follows_the_injected_wall_clock)
{
    char *pl = expand(P_EXP("$N"));
    char *tok = at_token(H("ES256", "es256"), pl, AT_ES256);
    struct bst_principal out;
    struct bst_err err;
    char reason[256];

    atomic_store(&at_wall_ns, (AT_NOW + 29) * BST_NS_PER_S + 999999999); /* 29.999 s late */
    ck_assert_int_eq(at_auth_bearer(A, tok, NULL, &out, reason, sizeof(reason), &err), BST_OK);
    bst_principal_dispose(&out);
    atomic_store(&at_wall_ns, (AT_NOW + 30) * BST_NS_PER_S);
    ck_assert_int_eq(at_auth_bearer(A, tok, NULL, &out, reason, sizeof(reason), &err),
                     BST_UNAUTHENTICATED);
    ck_assert_ptr_nonnull(strstr(reason, "expired 30 s ago"));
    atomic_store(&at_wall_ns, (AT_NOW + 31) * BST_NS_PER_S);
    ck_assert_int_eq(at_auth_bearer(A, tok, NULL, &out, reason, sizeof(reason), &err),
                     BST_UNAUTHENTICATED);
    free(pl);
    free(tok);
}
END_TEST

START_TEST(test_jwt_claims_map_to_principal_and_untrusted_permissions_are_ignored)
{
    char *pl = expand("{\"iss\":\"" ISS "\",\"aud\":\"bastion\",\"sub\":\"alice\",\"exp\":$N+60,"
                      "\"groups\":[\"ops\",\"dev\"],\"tenant\":\"team-a\","
                      "\"permissions\":[\"k8s:pods:delete\"]}");
    char *tok = at_token(H("RS256", "rs256"), pl, AT_RS256);
    struct bst_principal out;
    struct bst_err err;
    char reason[256];

    ck_assert_int_eq(at_auth_bearer(A, tok, NULL, &out, reason, sizeof(reason), &err), BST_OK);
    ck_assert_str_eq(out.name, "alice");
    ck_assert_uint_eq(out.n_groups, 2);
    ck_assert_str_eq(out.groups[1], "dev");
    ck_assert_str_eq(out.tenant, "team-a");
    ck_assert_uint_eq(out.n_permissions, 0);
    ck_assert_int_eq(out.permissions_source, BST_PERMS_NONE);
    ck_assert_int_eq(out.expires_at_ns, (AT_NOW + 60) * BST_NS_PER_S);
    ck_assert_ptr_null(out.cert_identity);
    bst_principal_dispose(&out);
    free(pl);
    free(tok);
}
END_TEST

START_TEST(test_jwt_trusted_issuer_carries_permissions_and_its_claim_mapping)
{
    char *pl = expand("{\"iss\":\"https://trusted.test\",\"aud\":\"bastion\",\"sub\":\"bot\","
                      "\"exp\":$N+60,\"roles\":[\"deployers\"],\"groups\":[\"ignored\"],"
                      "\"permissions\":[\"k8s:pods:list\",\"k8s:pods:get\"]}");
    char *tok = at_token(H("ES256", "es256"), pl, AT_ES256);
    struct bst_principal out;
    struct bst_err err;
    char reason[256];

    ck_assert_int_eq(at_auth_bearer(A, tok, NULL, &out, reason, sizeof(reason), &err), BST_OK);
    ck_assert_str_eq(out.name, "trusted:bot");
    ck_assert_uint_eq(out.n_groups, 1);
    ck_assert_str_eq(out.groups[0], "deployers");
    ck_assert_uint_eq(out.n_permissions, 2);
    ck_assert_int_eq(out.permissions_source, BST_PERMS_JWT_ISSUER);
    ck_assert_str_eq(out.permissions_issuer, "https://trusted.test");
    bst_principal_dispose(&out);
    free(pl);
    free(tok);
}
END_TEST

START_TEST(test_jwt_plus_api_key_or_two_authorization_headers_are_refused)
{
    char *pl = expand(P_OK);
    char *tok = at_token(H("HS256", "hs256"), pl, AT_HS256);
    char hdr[1024];
    const char *two[2], *key[1] = {"bst_AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA"};
    struct authn_request rq = {.peer = "10.0.0.1:1"};
    struct bst_principal out;
    struct bst_err err;
    char reason[256];

    snprintf(hdr, sizeof(hdr), "Bearer %s", tok);
    two[0] = hdr;
    two[1] = hdr;
    rq.authorization = two;
    rq.n_authorization = 2;
    bst_principal_init(&out);
    ck_assert_int_eq(authn_authenticate(A, &rq, &out, reason, sizeof(reason), &err),
                     BST_UNAUTHENTICATED);
    ck_assert_ptr_nonnull(strstr(err.msg, "exactly one credential"));
    rq.n_authorization = 1;
    rq.api_key = key;
    rq.n_api_key = 1;
    ck_assert_int_eq(authn_authenticate(A, &rq, &out, reason, sizeof(reason), &err),
                     BST_UNAUTHENTICATED);
    ck_assert_ptr_nonnull(strstr(reason, "1 authorization and 1 x-api-key"));
    /* The same token alone is fine. */
    rq.n_api_key = 0;
    ck_assert_int_eq(authn_authenticate(A, &rq, &out, reason, sizeof(reason), &err), BST_OK);
    bst_principal_dispose(&out);
    free(pl);
    free(tok);
}
END_TEST

START_TEST(test_jwt_unknown_scheme_and_empty_bearer_are_refused)
{
    struct bst_principal out;
    struct bst_err err;
    char reason[256];

    ck_assert_int_eq(
        at_auth_header(A, "Basic YWxpY2U6cHc=", NULL, &out, reason, sizeof(reason), &err),
        BST_UNAUTHENTICATED);
    ck_assert_ptr_nonnull(strstr(err.msg, "Bearer"));
    ck_assert_int_eq(at_auth_header(A, "Bearer ", NULL, &out, reason, sizeof(reason), &err),
                     BST_UNAUTHENTICATED);
    ck_assert_int_eq(at_auth_header(A, "Bearer a.b c", NULL, &out, reason, sizeof(reason), &err),
                     BST_UNAUTHENTICATED);
    ck_assert_int_eq(
        at_auth_header(A, "Bearer not-a-jwt", NULL, &out, reason, sizeof(reason), &err),
        BST_UNAUTHENTICATED);
    ck_assert_str_eq(err.msg, GENERIC);
}
END_TEST

START_TEST(test_jwt_looks_like_needs_three_segments_and_a_json_header)
{
    char *pl = expand(P_OK);
    char *tok = at_token(H("HS256", "hs256"), pl, AT_HS256);
    ck_assert_int_eq(jwt_looks_like(tok, strlen(tok)), 1);
    ck_assert_int_eq(jwt_looks_like("a.b.c", 5), 0);
    ck_assert_int_eq(jwt_looks_like("bst_abc", 7), 0);
    ck_assert_int_eq(jwt_looks_like(tok, strrchr(tok, '.') - tok), 0);
    free(pl);
    free(tok);
}
END_TEST

START_TEST(test_jwt_hs_key_shorter_than_the_hash_and_empty_key_are_refused_at_load)
{
    struct jwt_key k;
    struct bst_err err;
    ck_assert_int_eq(
        jwt_key_from_secret(&k, "k", AUTHN_ALG_HS256, (const unsigned char *)"", 0, &err),
        BST_INVALID_ARGUMENT);
    ck_assert_int_eq(jwt_key_from_secret(&k, "k", AUTHN_ALG_HS256, at_hs_secret, 31, &err),
                     BST_INVALID_ARGUMENT);
    ck_assert_int_eq(jwt_key_from_secret(&k, "k", AUTHN_ALG_HS512, at_hs_secret, 48, &err),
                     BST_INVALID_ARGUMENT);
    ck_assert_int_eq(jwt_key_from_pem(&k, "k", AUTHN_ALG_HS256, "x", 1, &err),
                     BST_INVALID_ARGUMENT);
}
END_TEST

START_TEST(test_jwt_issuers_file_refuses_a_readable_hs_secret_and_mismatched_curves)
{
    struct jwt_set *s = NULL;
    struct bst_err err;
    char *p;

    free(at_write_str("weak.key", "AAAA", 0644));
    p = at_write_str("bad-issuers.yaml",
                     "issuers:\n  - issuer: x\n    audiences: bastion\n    keys:\n"
                     "      - kid: a\n        alg: HS256\n        file: weak.key\n",
                     0644);
    at_set(&CFG.jwt_issuers, p);
    ck_assert_int_eq(jwt_set_load(&CFG, &s, &err), BST_PERMISSION_DENIED);
    free(p);
    p = at_write_str("bad-issuers.yaml",
                     "issuers:\n  - issuer: x\n    audiences: bastion\n    keys:\n"
                     "      - kid: a\n        alg: ES384\n        file: ec256.pem\n",
                     0644);
    ck_assert_int_eq(jwt_set_load(&CFG, &s, &err), BST_INVALID_ARGUMENT);
    ck_assert_ptr_nonnull(strstr(err.msg, "secp384r1"));
    free(at_write_str("bad-issuers.yaml",
                      "issuers:\n  - issuer: x\n    audiences: bastion\n    keys:\n"
                      "      - kid: a\n        alg: PS256\n        file: rs.pem\n",
                      0644));
    ck_assert_int_eq(jwt_set_load(&CFG, &s, &err), BST_INVALID_ARGUMENT);
    ck_assert_ptr_nonnull(strstr(err.msg, "no PS*"));
    free(p);
}
END_TEST

START_TEST(test_jwt_jwks_file_keys_verify_and_private_members_are_refused)
{
    /* A JWKS for the ES256 key and the RSA key, made from the key parameters. */
    BIGNUM *n = NULL, *e = NULL, *x = NULL, *y = NULL;
    unsigned char nb[512], eb[8], xb[32], yb[32];
    char *n64, *e64, *x64, *y64, json[2048], yaml[512], *jp, *p, *pl, *tok;
    struct jwt_set *s = NULL;
    struct bst_principal out;
    struct bst_err err;
    char reason[256];
    int nl, el;

    ck_assert_int_eq(EVP_PKEY_get_bn_param(at_rsa, OSSL_PKEY_PARAM_RSA_N, &n), 1);
    ck_assert_int_eq(EVP_PKEY_get_bn_param(at_rsa, OSSL_PKEY_PARAM_RSA_E, &e), 1);
    ck_assert_int_eq(EVP_PKEY_get_bn_param(at_ec256, OSSL_PKEY_PARAM_EC_PUB_X, &x), 1);
    ck_assert_int_eq(EVP_PKEY_get_bn_param(at_ec256, OSSL_PKEY_PARAM_EC_PUB_Y, &y), 1);
    nl = BN_bn2bin(n, nb);
    el = BN_bn2bin(e, eb);
    BN_bn2binpad(x, xb, 32);
    BN_bn2binpad(y, yb, 32);
    n64 = at_b64url(nb, (size_t)nl);
    e64 = at_b64url(eb, (size_t)el);
    x64 = at_b64url(xb, 32);
    y64 = at_b64url(yb, 32);
    snprintf(json, sizeof(json),
             "{\"keys\":[{\"kty\":\"RSA\",\"kid\":\"j-rs\",\"alg\":\"RS256\",\"use\":\"sig\","
             "\"n\":\"%s\",\"e\":\"%s\"},{\"kty\":\"EC\",\"kid\":\"j-es\",\"alg\":\"ES256\","
             "\"crv\":\"P-256\",\"x\":\"%s\",\"y\":\"%s\"}]}",
             n64, e64, x64, y64);
    jp = at_write_str("keys.jwks", json, 0644);
    snprintf(yaml, sizeof(yaml),
             "issuers:\n  - issuer: \"https://jwks.test\"\n    audiences: bastion\n"
             "    jwks: keys.jwks\n");
    p = at_write_str("jwks-issuers.yaml", yaml, 0644);
    at_set(&CFG.jwt_issuers, p);
    at_set(&CFG.token.signing_key, "");
    ck_assert_int_eq(jwt_set_load(&CFG, &s, &err), BST_OK);
    pl = expand("{\"iss\":\"https://jwks.test\",\"aud\":\"bastion\",\"sub\":\"j\",\"exp\":$N+60}");
    tok = at_token(H("ES256", "j-es"), pl, AT_ES256);
    bst_principal_init(&out);
    ck_assert_int_eq(jwt_verify(s, NULL, tok, strlen(tok), AT_NOW, &out, reason, sizeof(reason)),
                     BST_OK);
    bst_principal_dispose(&out);
    free(tok);
    tok = at_token(H("RS256", "j-rs"), pl, AT_RS256);
    ck_assert_int_eq(jwt_verify(s, NULL, tok, strlen(tok), AT_NOW, &out, reason, sizeof(reason)),
                     BST_OK);
    bst_principal_dispose(&out);
    jwt_set_free(s);
    /* A private member ("d") or a symmetric key in a JWKS is refused. */
    free(at_write_str("keys.jwks",
                      "{\"keys\":[{\"kty\":\"oct\",\"kid\":\"o\",\"alg\":\"HS256\",\"k\":\"AA\"}]}",
                      0644));
    ck_assert_int_ne(jwt_set_load(&CFG, &s, &err), BST_OK);
    snprintf(json, sizeof(json),
             "{\"keys\":[{\"kty\":\"EC\",\"kid\":\"j-es\",\"alg\":\"ES256\",\"crv\":\"P-256\","
             "\"x\":\"%s\",\"y\":\"%s\",\"d\":\"AAAA\"}]}",
             x64, y64);
    free(at_write_str("keys.jwks", json, 0644));
    ck_assert_int_eq(jwt_set_load(&CFG, &s, &err), BST_INVALID_ARGUMENT);
    ck_assert_ptr_nonnull(strstr(err.msg, "'d' is not accepted"));
    BN_free(n);
    BN_free(e);
    BN_free(x);
    BN_free(y);
    free(n64);
    free(e64);
    free(x64);
    free(y64);
    free(jp);
    free(p);
    free(pl);
    free(tok);
}
END_TEST

START_TEST(test_jwt_tokens_from_python3_jwt_verify)
{
    /* The fuzz seeds were made with Debian's python3-jwt (tests/fuzz/fuzz_jwt.c has the keys):
     * a second independent signer, for ES256 in particular (r||s encoding). */
    static const char es_public[] =
        "-----BEGIN PUBLIC KEY-----\n"
        "MFkwEwYHKoZIzj0CAQYIKoZIzj0DAQcDQgAEqsK4Uprs/jtaaieQQ8WmdHH9plj8\n"
        "WLTNjhcig9eYn42PjfTfmjSb4S0Ievvx/eVgYO4HdS0KNC7gI2KKKtNLxg==\n"
        "-----END PUBLIC KEY-----\n";
    static const struct {
        const char *file;
        enum bst_status want;
    } seeds[] = {{"hs256_valid", BST_OK},
                 {"es256_valid", BST_OK},
                 {"hs256_aud_array", BST_OK},
                 {"hs256_expired", BST_UNAUTHENTICATED},
                 {"es256_revoked", BST_UNAUTHENTICATED},
                 {"alg_none", BST_UNAUTHENTICATED},
                 {"dup_sub", BST_UNAUTHENTICATED},
                 {"jku", BST_UNAUTHENTICATED},
                 {"ps256", BST_UNIMPLEMENTED}};
    const char *src = getenv("BASTION_SRC");
    struct jwt_key keys[2];
    char *aud[1] = {"bastion"}, *deny_ids[1] = {"revoked"};
    struct jwt_issuer is = {.name = "https://idp.fuzz",
                            .audiences = aud,
                            .n_audiences = 1,
                            .keys = keys,
                            .n_keys = 2,
                            .identity_claim = "sub",
                            .identity_prefix = "",
                            .groups_claim = "groups",
                            .tenant_claim = "tenant",
                            .permissions_claim = "permissions",
                            .leeway_s = 30,
                            .max_lifetime_s = 86400};
    struct jwt_set set = {.issuers = &is, .n_issuers = 1};
    struct jti_denylist deny = {.ids = deny_ids, .n = 1};
    struct bst_err err;

    ck_assert_int_eq(jwt_key_from_secret(&keys[0], "hs", AUTHN_ALG_HS256,
                                         (const unsigned char *)"fuzz-secret-0123456789abcdefghij",
                                         32, &err),
                     BST_OK);
    ck_assert_int_eq(
        jwt_key_from_pem(&keys[1], "es", AUTHN_ALG_ES256, es_public, strlen(es_public), &err),
        BST_OK);
    for (size_t i = 0; i < sizeof(seeds) / sizeof(seeds[0]); i++) {
        char path[1024], tok[9000], reason[256];
        struct bst_principal p;
        FILE *f;
        size_t n;
        snprintf(path, sizeof(path), "%s/tests/fuzz/seeds/fuzz_jwt/%s", src ? src : ".",
                 seeds[i].file);
        f = fopen(path, "r");
        ck_assert_ptr_nonnull(f);
        n = fread(tok, 1, sizeof(tok) - 1, f);
        fclose(f);
        tok[n] = '\0';
        bst_principal_init(&p);
        if (jwt_verify(&set, &deny, tok, n, AT_NOW, &p, reason, sizeof(reason)) != seeds[i].want)
            ck_abort_msg("%s: unexpected outcome (%s)", seeds[i].file, reason);
        bst_principal_dispose(&p);
    }
    free(keys[0].kid);
    free(keys[0].material);
    free(keys[1].kid);
    free(keys[1].material);
}
END_TEST

START_TEST(test_jwt_repeated_token_is_served_from_cache_with_the_same_principal)
{
    char *pl = expand("{\"iss\":\"https://trusted.test\",\"aud\":\"bastion\",\"sub\":\"bot\","
                      "\"exp\":$N+60,\"roles\":[\"r1\",\"r2\"],\"tenant\":\"t\","
                      "\"permissions\":[\"k8s:pods:list\"],\"jti\":\"once\"}");
    char *tok = at_token(H("ES256", "es256"), pl, AT_ES256);
    struct bst_principal a, b;
    struct bst_err err;
    char reason[256];

    ck_assert_int_eq(at_auth_bearer(A, tok, NULL, &a, reason, sizeof(reason), &err), BST_OK);
    ck_assert_ptr_null(strstr(reason, "cached"));
    ck_assert_int_eq(at_auth_bearer(A, tok, NULL, &b, reason, sizeof(reason), &err), BST_OK);
    ck_assert_ptr_nonnull(strstr(reason, "cached"));
    ck_assert_str_eq(a.name, b.name);
    ck_assert_uint_eq(b.n_groups, 2);
    ck_assert_str_eq(b.groups[1], "r2");
    ck_assert_str_eq(b.tenant, "t");
    ck_assert_uint_eq(b.n_permissions, 1);
    ck_assert_int_eq(b.permissions_source, BST_PERMS_JWT_ISSUER);
    ck_assert_str_eq(b.permissions_issuer, "https://trusted.test");
    ck_assert_int_eq(a.expires_at_ns, b.expires_at_ns);
    ck_assert_str_eq(a.credential_id, b.credential_id);
    bst_principal_dispose(&b);
    /* A token differing in one signature bit is not a cache hit. */
    tok[strlen(tok) - 2] = tok[strlen(tok) - 2] == 'A' ? 'B' : 'A';
    ck_assert_int_eq(at_auth_bearer(A, tok, NULL, &b, reason, sizeof(reason), &err),
                     BST_UNAUTHENTICATED);
    bst_principal_dispose(&a);
    free(pl);
    free(tok);
}
END_TEST

START_TEST(test_jwt_cache_hit_still_honours_the_denylist_and_expiry)
{
    char *pl = expand("{\"iss\":\"" ISS "\",\"aud\":\"bastion\",\"sub\":\"a\",\"jti\":\"j-9\","
                      "\"iat\":$N,\"exp\":$N+60}");
    char *tok = at_token(H("HS256", "hs256"), pl, AT_HS256);
    char *ids[1] = {"j-9"}, reason[256];
    struct jti_denylist deny = {.ids = ids, .n = 1};
    struct jwt_set *s = NULL;
    struct bst_principal p;
    struct bst_err err;

    ck_assert_int_eq(jwt_set_load(&CFG, &s, &err), BST_OK);
    ck_assert_ptr_nonnull(s->cache);
    bst_principal_init(&p);
    ck_assert_int_eq(jwt_verify(s, NULL, tok, strlen(tok), AT_NOW, &p, reason, sizeof(reason)),
                     BST_OK);
    bst_principal_dispose(&p);
    ck_assert_int_eq(jwt_verify(s, NULL, tok, strlen(tok), AT_NOW, &p, reason, sizeof(reason)),
                     BST_OK);
    ck_assert_ptr_nonnull(strstr(reason, "cached"));
    bst_principal_dispose(&p);
    /* The denylist is a separate snapshot: a hit must still consult the current one. */
    ck_assert_int_eq(jwt_verify(s, &deny, tok, strlen(tok), AT_NOW, &p, reason, sizeof(reason)),
                     BST_UNAUTHENTICATED);
    ck_assert_ptr_null(p.name);
    ck_assert_int_eq(jwt_verify(s, NULL, tok, strlen(tok), AT_NOW + 90, &p, reason, sizeof(reason)),
                     BST_UNAUTHENTICATED);
    jwt_set_free(s);
    free(pl);
    free(tok);
}
END_TEST

Suite *jwt_suite(void)
{
    Suite *s = suite_create("auth_jwt");
    TCase *tc = tcase_create("jwt");
    tcase_add_unchecked_fixture(tc, files_setup, files_teardown);
    tcase_add_checked_fixture(tc, authn_setup, authn_teardown);
    tcase_add_loop_test(tc, test_jwt_attack_table_refuses_attacks_and_accepts_valid_tokens, 0,
                        (int)N_CASES);
    tcase_add_test(tc, test_jwt_expiry_edge_follows_the_injected_wall_clock);
    tcase_add_test(tc, test_jwt_claims_map_to_principal_and_untrusted_permissions_are_ignored);
    tcase_add_test(tc, test_jwt_trusted_issuer_carries_permissions_and_its_claim_mapping);
    tcase_add_test(tc, test_jwt_plus_api_key_or_two_authorization_headers_are_refused);
    tcase_add_test(tc, test_jwt_unknown_scheme_and_empty_bearer_are_refused);
    tcase_add_test(tc, test_jwt_looks_like_needs_three_segments_and_a_json_header);
    tcase_add_test(tc, test_jwt_hs_key_shorter_than_the_hash_and_empty_key_are_refused_at_load);
    tcase_add_test(tc, test_jwt_issuers_file_refuses_a_readable_hs_secret_and_mismatched_curves);
    tcase_add_test(tc, test_jwt_jwks_file_keys_verify_and_private_members_are_refused);
    tcase_add_test(tc, test_jwt_tokens_from_python3_jwt_verify);
    tcase_add_test(tc, test_jwt_repeated_token_is_served_from_cache_with_the_same_principal);
    tcase_add_test(tc, test_jwt_cache_hit_still_honours_the_denylist_and_expiry);
    suite_add_tcase(s, tc);
    return s;
}

int main(void)
{
    SRunner *sr = srunner_create(jwt_suite());
    int failed;
    srunner_run_all(sr, CK_NORMAL);
    failed = srunner_ntests_failed(sr);
    srunner_free(sr);
    return failed == 0 ? EXIT_SUCCESS : EXIT_FAILURE;
}
