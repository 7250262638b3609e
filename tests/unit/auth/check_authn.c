/* The authenticator as the server sees it (auth/authn.c, authn_config.c, certmap.c): the
 * `auth:` table inside a host config, path resolution, the per-listener requirements,
 * certificate identity mapping, and rotation of our own signing key and of the jti denylist
 * through the reload registry. */
#include "authn_internal.h"
#include "authtest.h"
#include "secretfile.h"

#include <check.h>
#include <semaphore.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* A host config embedding the auth section, as the server's struct config will. */
struct host {
    char *listen;
    struct authn_config auth;
};

static const struct bst_field host_fields[] = {
    {.name = "listen", .type = BST_F_STRING, .offset = offsetof(struct host, listen), .def = "x"},
    {.name = "auth",
     .type = BST_F_SECTION,
     .offset = offsetof(struct host, auth),
     .section = authn_config_fields},
    {.name = NULL},
};

static enum bst_status decode(const char *yaml, struct host *h, struct bst_err *err)
{
    struct bst_yaml_doc *doc = NULL;
    enum bst_status rv = bst_yaml_parse("bastion.yaml", yaml, strlen(yaml), NULL, &doc, err);
    memset(h, 0, sizeof(*h));
    if (rv == BST_OK)
        rv = bst_yaml_decode(doc, doc->root, host_fields, h, err);
    bst_yaml_free(doc);
    return rv;
}

START_TEST(test_authn_config_section_decodes_with_defaults_and_bounds)
{
    struct host h;
    struct bst_err err;

    ck_assert_int_eq(decode("listen: a\n", &h, &err), BST_OK);
    ck_assert_int_eq(h.auth.jwt_leeway_ms, 30000);
    ck_assert_int_eq(h.auth.token.ttl_ms, 15 * 60000);
    ck_assert_int_eq(h.auth.require_client_certificate, 1);
    ck_assert_int_eq(h.auth.require_token, 0);
    ck_assert_int_eq(h.auth.token.alg, AUTHN_ALG_ES256);
    ck_assert_str_eq(h.auth.api_keys, "");
    ck_assert_int_eq(h.auth.login.scrypt_threads, 2);
    bst_yaml_decoded_free(host_fields, &h);

    ck_assert_int_eq(decode("auth:\n  api_keys: keys.yaml\n  jwt_leeway: 2m\n  token:\n"
                            "    alg: RS256\n    ttl: 5m\n  login:\n    scrypt_queue: 8\n",
                            &h, &err),
                     BST_OK);
    ck_assert_str_eq(h.auth.api_keys, "keys.yaml");
    ck_assert_int_eq(h.auth.jwt_leeway_ms, 120000);
    ck_assert_int_eq(h.auth.token.alg, AUTHN_ALG_RS256);
    ck_assert_int_eq(h.auth.login.scrypt_queue, 8);
    bst_yaml_decoded_free(host_fields, &h);

    ck_assert_int_eq(decode("auth:\n  jwt_leeway: 121s\n", &h, &err), BST_INVALID_ARGUMENT);
    ck_assert_ptr_nonnull(strstr(err.msg, "auth.jwt_leeway"));
    bst_yaml_decoded_free(host_fields, &h);
    ck_assert_int_eq(decode("auth:\n  token:\n    alg: PS256\n", &h, &err), BST_INVALID_ARGUMENT);
    bst_yaml_decoded_free(host_fields, &h);
    ck_assert_int_eq(decode("auth:\n  api_key: x\n", &h, &err), BST_INVALID_ARGUMENT);
    ck_assert_ptr_nonnull(strstr(err.msg, "bastion.yaml:2:3"));
    bst_yaml_decoded_free(host_fields, &h);
}
END_TEST

START_TEST(test_authn_config_paths_resolve_against_the_config_file)
{
    struct host h;
    struct bst_err err;

    ck_assert_int_eq(decode("auth:\n  api_keys: keys.yaml\n  users: /etc/b/users.yaml\n"
                            "  token:\n    signing_key: ../secrets/sign.pem\n",
                            &h, &err),
                     BST_OK);
    ck_assert_int_eq(authn_config_resolve_paths(&h.auth, "/srv/bastion/bastion.yaml"), BST_OK);
    ck_assert_str_eq(h.auth.api_keys, "/srv/bastion/keys.yaml");
    ck_assert_str_eq(h.auth.users, "/etc/b/users.yaml");
    ck_assert_str_eq(h.auth.token.signing_key, "/srv/bastion/../secrets/sign.pem");
    ck_assert_str_eq(h.auth.jwt_issuers, "");
    bst_yaml_decoded_free(host_fields, &h);
}
END_TEST

START_TEST(test_authn_config_check_refuses_inconsistent_settings)
{
    struct authn_config c;
    struct bst_err err;
    struct authn *a = NULL;

    at_config_defaults(&c);
    c.token.ttl_ms = 2 * 3600000;
    ck_assert_int_eq(authn_config_check(&c, &err), BST_INVALID_ARGUMENT);
    c.token.ttl_ms = 60000;
    at_set(&c.users, "/nonexistent/users.yaml");
    ck_assert_int_eq(authn_config_check(&c, &err), BST_INVALID_ARGUMENT);
    ck_assert_ptr_nonnull(strstr(err.msg, "signing_key"));
    ck_assert_int_eq(authn_new(&a, &c, &err), BST_INVALID_ARGUMENT);
    ck_assert_ptr_null(a);
    at_set(&c.users, "");
    at_set(&c.api_keys, "/nonexistent/keys.yaml");
    ck_assert_int_eq(authn_new(&a, &c, &err), BST_NOT_FOUND);
    bst_yaml_decoded_free(authn_config_fields, &c);
}
END_TEST

/* ---- with an authenticator ----------------------------------------------------------------- */

static struct authn *A;
static struct authn_config CFG;
static EVP_PKEY *key1, *key2;

static void files_setup(void)
{
    char *pem;
    at_keys();
    at_make_dir();
    key1 = EVP_EC_gen("P-256");
    key2 = EVP_EC_gen("P-256");
    pem = at_pem(key1, 1);
    free(at_write_str("signing.pem", pem, 0600));
    free(pem);
    free(at_write_str("certs.yaml",
                      "identities:\n"
                      "  - certificate: \"spiffe://bastion.local/user/admin\"\n"
                      "    name: admin\n    groups: [admins, oncall]\n    tenant: platform\n"
                      "  - certificate: \"legacy-cn\"\n    groups: [legacy]\n",
                      0644));
    free(at_write_str("deny.txt", "", 0644));
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
    p = at_path("signing.pem");
    at_set(&CFG.token.signing_key, p);
    free(p);
    p = at_path("certs.yaml");
    at_set(&CFG.certificate_identities, p);
    free(p);
    p = at_path("deny.txt");
    at_set(&CFG.jti_denylist, p);
    free(p);
    CFG.failed_credentials_per_address = 0;
    CFG.require_client_certificate = 0;
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

START_TEST(test_authn_certificate_identity_is_mapped_or_kept)
{
    struct bst_principal cert, out;
    struct bst_err err;
    char reason[256];

    at_cert_principal(&cert, "spiffe://bastion.local/user/admin");
    ck_assert_int_eq(at_auth_header(A, NULL, &cert, &out, reason, sizeof(reason), &err), BST_OK);
    ck_assert_str_eq(out.name, "admin");
    ck_assert_int_eq(out.mechanism, BST_MECH_MTLS);
    ck_assert_uint_eq(out.n_groups, 2);
    ck_assert_str_eq(out.tenant, "platform");
    ck_assert_str_eq(out.cert_identity, "spiffe://bastion.local/user/admin");
    ck_assert_str_eq(out.fingerprint, cert.fingerprint);
    ck_assert_int_eq(out.expires_at_ns, cert.expires_at_ns);
    bst_principal_dispose(&out);
    bst_principal_dispose(&cert);

    at_cert_principal(&cert, "legacy-cn");
    ck_assert_int_eq(at_auth_header(A, NULL, &cert, &out, reason, sizeof(reason), &err), BST_OK);
    ck_assert_str_eq(out.name, "legacy-cn");
    ck_assert_str_eq(out.groups[0], "legacy");
    bst_principal_dispose(&out);
    bst_principal_dispose(&cert);

    at_cert_principal(&cert, "spiffe://bastion.local/user/nobody");
    ck_assert_int_eq(at_auth_header(A, NULL, &cert, &out, reason, sizeof(reason), &err), BST_OK);
    ck_assert_str_eq(out.name, "spiffe://bastion.local/user/nobody");
    ck_assert_uint_eq(out.n_groups, 0);
    ck_assert_ptr_null(out.tenant);
    bst_principal_dispose(&out);
    bst_principal_dispose(&cert);
}
END_TEST

START_TEST(test_authn_requirements_per_listener)
{
    struct bst_principal cert, out;
    struct bst_err err;
    char reason[256];
    const char *none[1] = {NULL};
    struct authn_request rq = {.authorization = none, .peer = "127.0.0.1:1"};

    /* require_client_certificate (the default): no certificate, no service. */
    bst_reload_clear();
    authn_free(A);
    CFG.require_client_certificate = 1;
    ck_assert_int_eq(authn_new(&A, &CFG, &err), BST_OK);
    ck_assert_int_eq(at_auth_header(A, NULL, NULL, &out, reason, sizeof(reason), &err),
                     BST_UNAUTHENTICATED);
    ck_assert_str_eq(err.msg, "a client certificate is required");
    /* An identity-stage principal without a certificate identity counts as no certificate. */
    bst_principal_init(&cert);
    rq.certificate = &cert;
    bst_principal_init(&out);
    ck_assert_int_eq(authn_authenticate(A, &rq, &out, reason, sizeof(reason), &err),
                     BST_UNAUTHENTICATED);
    rq.certificate = NULL;
    authn_teardown();

    /* Nothing required and nothing presented: anonymous, the chain decides. */
    authn_setup();
    bst_reload_clear();
    authn_free(A);
    CFG.require_client_certificate = 0;
    ck_assert_int_eq(authn_new(&A, &CFG, &err), BST_OK);
    bst_principal_init(&out);
    ck_assert_int_eq(authn_authenticate(A, &rq, &out, reason, sizeof(reason), &err), BST_OK);
    ck_assert_ptr_null(out.name);
    ck_assert_int_eq(out.mechanism, BST_MECH_NONE);

    /* require_token: a certificate alone is not enough, except where a token is minted. */
    bst_reload_clear();
    authn_free(A);
    CFG.require_client_certificate = 1;
    CFG.require_token = 1;
    ck_assert_int_eq(authn_new(&A, &CFG, &err), BST_OK);
    at_cert_principal(&cert, "spiffe://bastion.local/user/admin");
    rq.certificate = &cert;
    ck_assert_int_eq(authn_authenticate(A, &rq, &out, reason, sizeof(reason), &err),
                     BST_UNAUTHENTICATED);
    ck_assert_str_eq(err.msg, "an API key or a token is required");
    rq.token_optional = 1;
    ck_assert_int_eq(authn_authenticate(A, &rq, &out, reason, sizeof(reason), &err), BST_OK);
    ck_assert_str_eq(out.name, "admin");
    bst_principal_dispose(&out);
    bst_principal_dispose(&cert);
}
END_TEST

static char *own_token(const char *kid, enum at_signer s, const char *jti)
{
    char hdr[256], pl[512];
    snprintf(hdr, sizeof(hdr), "{\"alg\":\"ES256\",\"kid\":\"%s\"}", kid);
    snprintf(pl, sizeof(pl),
             "{\"iss\":\"bastion\",\"aud\":\"bastion\",\"sub\":\"carol\",\"iat\":%lld,"
             "\"exp\":%lld,\"jti\":\"%s\"}",
             (long long)AT_NOW, (long long)AT_NOW + 600, jti);
    return at_token(hdr, pl, s);
}

/* The kid authn derives for a key: from its published JWKS. */
static void kid_of(const char *signing_path, char *kid, size_t len, char *jwks, size_t jlen)
{
    struct authn_config c;
    struct bst_err err;
    const char *k, *e;

    at_config_defaults(&c);
    at_set(&c.token.signing_key, signing_path);
    ck_assert_int_eq(authn_signing_jwks(&c, jwks, jlen, &err), BST_OK);
    k = strstr(jwks, "\"kid\": \"");
    ck_assert_ptr_nonnull(k);
    k += 8;
    e = strchr(k, '"');
    snprintf(kid, len, "%.*s", (int)(e - k), k);
    bst_yaml_decoded_free(authn_config_fields, &c);
}

START_TEST(test_authn_signing_key_rotation_keeps_previous_tokens_until_removed)
{
    char kid1[64], kid2[64], jwks1[4096], jwks2[4096], reason[256], *p, *t1, *t2;
    struct bst_principal out;
    struct bst_err err;
    EVP_PKEY *saved = at_ec256;

    p = at_path("signing.pem");
    kid_of(p, kid1, sizeof(kid1), jwks1, sizeof(jwks1));
    ck_assert_uint_eq(strlen(kid1), 43); /* an RFC 7638 thumbprint */
    at_ec256 = key1;                     /* the test signer stands in for our own signing */
    t1 = own_token(kid1, AT_ES256, "t1");
    ck_assert_int_eq(at_auth_bearer(A, t1, NULL, &out, reason, sizeof(reason), &err), BST_OK);
    ck_assert_str_eq(out.name, "carol");
    bst_principal_dispose(&out);

    /* Rotate: new key in place, the old public key in verify_jwks, SIGHUP. */
    {
        char *pem = at_pem(key2, 1);
        free(at_write_str("signing.pem", pem, 0600));
        free(pem);
    }
    free(at_write_str("previous.jwks", jwks1, 0644));
    /* verify_jwks is a config path, so it needs a new authenticator; a later reload re-reads
     * its contents. */
    bst_reload_clear();
    authn_free(A);
    {
        char *jp = at_path("previous.jwks");
        at_set(&CFG.token.verify_jwks, jp);
        free(jp);
    }
    ck_assert_int_eq(authn_new(&A, &CFG, &err), BST_OK);
    kid_of(p, kid2, sizeof(kid2), jwks2, sizeof(jwks2));
    ck_assert_str_ne(kid1, kid2);
    at_ec256 = key2;
    t2 = own_token(kid2, AT_ES256, "t2");
    ck_assert_int_eq(at_auth_bearer(A, t2, NULL, &out, reason, sizeof(reason), &err), BST_OK);
    bst_principal_dispose(&out);
    ck_assert_int_eq(at_auth_bearer(A, t1, NULL, &out, reason, sizeof(reason), &err), BST_OK);
    bst_principal_dispose(&out);

    /* The rotation ends: the old key leaves verify_jwks; on reload its tokens stop working. */
    free(at_write_str("previous.jwks", "{\"keys\":[]}", 0644));
    ck_assert_int_eq(bst_reload_all(), 0);
    ck_assert_int_eq(at_auth_bearer(A, t1, NULL, &out, reason, sizeof(reason), &err),
                     BST_UNAUTHENTICATED);
    ck_assert_ptr_nonnull(strstr(reason, "no key with kid"));
    ck_assert_int_eq(at_auth_bearer(A, t2, NULL, &out, reason, sizeof(reason), &err), BST_OK);
    bst_principal_dispose(&out);

    /* A broken signing key file is refused; the previous key stays in force. */
    free(at_write_str("signing.pem", "not a key", 0600));
    ck_assert_int_eq(bst_reload_all(), 1);
    ck_assert_int_eq(at_auth_bearer(A, t2, NULL, &out, reason, sizeof(reason), &err), BST_OK);
    bst_principal_dispose(&out);
    {
        char *pem = at_pem(key1, 1);
        free(at_write_str("signing.pem", pem, 0600));
        free(pem);
    }
    at_ec256 = saved;
    free(p);
    free(t1);
    free(t2);
}
END_TEST

START_TEST(test_authn_jti_denylist_reload_revokes_a_token)
{
    char kid[64], jwks[4096], reason[256], *p, *t;
    struct bst_principal out;
    struct bst_err err;
    EVP_PKEY *saved = at_ec256;

    p = at_path("signing.pem");
    kid_of(p, kid, sizeof(kid), jwks, sizeof(jwks));
    at_ec256 = key1;
    t = own_token(kid, AT_ES256, "abc123");
    ck_assert_int_eq(at_auth_bearer(A, t, NULL, &out, reason, sizeof(reason), &err), BST_OK);
    bst_principal_dispose(&out);
    free(at_write_str("deny.txt", "# incident 42\nabc123\n", 0644));
    ck_assert_int_eq(bst_reload_all(), 0);
    ck_assert_int_eq(at_auth_bearer(A, t, NULL, &out, reason, sizeof(reason), &err),
                     BST_UNAUTHENTICATED);
    ck_assert_ptr_nonnull(strstr(reason, "denylist"));
    free(at_write_str("deny.txt", "bad\x01line\n", 0644));
    ck_assert_int_eq(bst_reload_all(), 1);
    ck_assert_int_eq(at_auth_bearer(A, t, NULL, &out, reason, sizeof(reason), &err),
                     BST_UNAUTHENTICATED);
    free(at_write_str("deny.txt", "", 0644));
    at_ec256 = saved;
    free(p);
    free(t);
}
END_TEST

START_TEST(test_authn_hs_signing_jwks_is_refused_and_kid_derived)
{
    struct authn_config c;
    struct bst_err err;
    char out[4096];

    at_config_defaults(&c);
    ck_assert_int_eq(authn_signing_jwks(&c, out, sizeof(out), &err), BST_FAILED_PRECONDITION);
    at_set(&c.token.signing_key, "x");
    c.token.alg = AUTHN_ALG_HS256;
    ck_assert_int_eq(authn_signing_jwks(&c, out, sizeof(out), &err), BST_FAILED_PRECONDITION);
    bst_yaml_decoded_free(authn_config_fields, &c);
}
END_TEST

/* ---- the dev secrets script ---------------------------------------------------------------- */

struct login_wait {
    sem_t done;
    enum bst_status st;
};

static void login_done(void *arg, enum bst_status st, const char *token, int64_t exp,
                       const char *message, const char *reason)
{
    struct login_wait *w = arg;
    (void)token;
    (void)exp;
    (void)message;
    (void)reason;
    w->st = st;
    sem_post(&w->done);
}

START_TEST(test_authn_dev_secrets_script_output_loads_and_verifies)
{
    /* scripts/gen-dev-secrets.sh hashes with the openssl command line: an independent scrypt
     * and SHA-256 whose output our loaders and verifiers must accept. */
    const char *src = getenv("BASTION_SRC");
    char cmd[1024], line[512], key[128] = "", pw[128] = "", hdr[160], reason[256], *out;
    struct authn_config c;
    struct authn *a = NULL;
    struct bst_principal p;
    struct bst_err err;
    struct login_wait w;
    FILE *f;

    if (src == NULL)
        src = ".";
    at_make_dir();
    out = at_path("dev");
    snprintf(cmd, sizeof(cmd), "%s/scripts/gen-dev-secrets.sh %s >/dev/null", src, out);
    ck_assert_int_eq(system(cmd), 0);
    snprintf(cmd, sizeof(cmd), "%s/dev-credentials.txt", out);
    f = fopen(cmd, "r");
    ck_assert_ptr_nonnull(f);
    while (fgets(line, sizeof(line), f) != NULL) {
        if (strncmp(line, "api_key  viewer", 15) == 0)
            sscanf(line + 15, "%127s", key);
        if (strncmp(line, "password viewer", 15) == 0)
            sscanf(line + 15, "%127s", pw);
    }
    fclose(f);
    ck_assert_int_eq(strncmp(key, "bst_", 4), 0);
    ck_assert_uint_gt(strlen(pw), 8);

    at_config_defaults(&c);
    c.require_client_certificate = 0;
    snprintf(cmd, sizeof(cmd), "%s/api-keys.yaml", out);
    at_set(&c.api_keys, cmd);
    snprintf(cmd, sizeof(cmd), "%s/users.yaml", out);
    at_set(&c.users, cmd);
    snprintf(cmd, sizeof(cmd), "%s/token-signing.pem", out);
    at_set(&c.token.signing_key, cmd);
    snprintf(cmd, sizeof(cmd), "%s/jti-denylist.txt", out);
    at_set(&c.jti_denylist, cmd);
    snprintf(cmd, sizeof(cmd), "%s/certificate-identities.yaml", out);
    at_set(&c.certificate_identities, cmd);
    if (authn_new(&a, &c, &err) != BST_OK)
        ck_abort_msg("authn_new on the script's files: %s", err.msg);
    snprintf(hdr, sizeof(hdr), "Bearer %s", key);
    ck_assert_int_eq(at_auth_header(a, hdr, NULL, &p, reason, sizeof(reason), &err), BST_OK);
    ck_assert_str_eq(p.name, "viewer");
    bst_principal_dispose(&p);
    sem_init(&w.done, 0, 0);
    ck_assert_int_eq(authn_login_start(a, "viewer", pw, "127.0.0.1:1", 0, login_done, &w, &err),
                     BST_OK);
    sem_wait(&w.done);
    ck_assert_int_eq(w.st, BST_OK);
    bst_reload_clear();
    authn_free(a);
    bst_yaml_decoded_free(authn_config_fields, &c);
    free(out);
    at_remove_dir();
}
END_TEST

START_TEST(test_authn_example_config_files_parse_and_hold_no_usable_entry)
{
    const char *src = getenv("BASTION_SRC");
    char path[1024], *buf = NULL, *copy;
    size_t len = 0;
    struct apikey_set *keys = NULL;
    struct user_set *users = NULL;
    struct bst_err err;

    snprintf(path, sizeof(path), "%s/configs/api-keys.yaml", src ? src : ".");
    ck_assert_int_eq(bst_file_read(path, 1 << 20, &buf, &len, &err), BST_OK);
    ck_assert_int_eq(apikey_set_parse(path, buf, len, &keys, &err), BST_OK);
    ck_assert_uint_eq(keys->n, 1);
    ck_assert_int_eq(keys->keys[0].enabled, 0);
    apikey_set_free(keys);
    free(buf);
    snprintf(path, sizeof(path), "%s/configs/users.yaml", src ? src : ".");
    ck_assert_int_eq(bst_file_read(path, 1 << 20, &buf, &len, &err), BST_OK);
    at_make_dir();
    copy = at_write("users.yaml", buf, len, 0600);
    if (user_set_load(copy, 64 << 20, &users, &err) != BST_OK)
        ck_abort_msg("%s", err.msg);
    ck_assert_uint_eq(users->n, 1);
    ck_assert_int_eq(users->users[0].enabled, 0);
    user_set_free(users);
    free(buf);
    free(copy);
    at_remove_dir();
}
END_TEST

Suite *authn_suite(void)
{
    Suite *s = suite_create("auth_authn");
    TCase *cfg = tcase_create("config");
    TCase *tc = tcase_create("authn");
    tcase_add_test(cfg, test_authn_config_section_decodes_with_defaults_and_bounds);
    tcase_add_test(cfg, test_authn_config_paths_resolve_against_the_config_file);
    tcase_add_test(cfg, test_authn_config_check_refuses_inconsistent_settings);
    tcase_add_test(cfg, test_authn_hs_signing_jwks_is_refused_and_kid_derived);
    tcase_add_test(cfg, test_authn_dev_secrets_script_output_loads_and_verifies);
    tcase_add_test(cfg, test_authn_example_config_files_parse_and_hold_no_usable_entry);
    tcase_set_timeout(cfg, 60);
    suite_add_tcase(s, cfg);
    tcase_add_unchecked_fixture(tc, files_setup, files_teardown);
    tcase_add_checked_fixture(tc, authn_setup, authn_teardown);
    tcase_add_test(tc, test_authn_certificate_identity_is_mapped_or_kept);
    tcase_add_test(tc, test_authn_requirements_per_listener);
    tcase_add_test(tc, test_authn_signing_key_rotation_keeps_previous_tokens_until_removed);
    tcase_add_test(tc, test_authn_jti_denylist_reload_revokes_a_token);
    suite_add_tcase(s, tc);
    return s;
}

int main(void)
{
    SRunner *sr = srunner_create(authn_suite());
    int failed;
    srunner_run_all(sr, CK_NORMAL);
    failed = srunner_ntests_failed(sr);
    srunner_free(sr);
    return failed == 0 ? EXIT_SUCCESS : EXIT_FAILURE;
}
