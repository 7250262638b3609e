/* Unit tests of client-certificate identity extraction (auth/identity.c). Certificates are
 * built in memory with OpenSSL, so each case states exactly the names it carries. */
#include "identity.h"

#include <check.h>
#include <openssl/evp.h>
#include <openssl/x509v3.h>
#include <string.h>

static EVP_PKEY *key(void)
{
    static EVP_PKEY *k;
    if (k == NULL)
        k = EVP_EC_gen("P-256");
    return k;
}

/* Builds a self-signed certificate with the given CNs (NULL-terminated, may be empty) and a
 * subjectAltName value in OpenSSL config syntax (NULL for none). */
static X509 *make_cert(const char *const *cns, const char *san)
{
    X509 *x = X509_new();
    X509_NAME *name = X509_NAME_new();
    X509V3_CTX ctx;

    ck_assert_ptr_nonnull(x);
    X509_set_version(x, 2);
    ASN1_INTEGER_set(X509_get_serialNumber(x), 1);
    X509_gmtime_adj(X509_getm_notBefore(x), 0);
    X509_gmtime_adj(X509_getm_notAfter(x), 3600);
    for (size_t i = 0; cns != NULL && cns[i] != NULL; i++)
        X509_NAME_add_entry_by_txt(name, "CN", MBSTRING_UTF8, (const unsigned char *)cns[i], -1, -1,
                                   0);
    X509_set_subject_name(x, name);
    X509_set_issuer_name(x, name);
    X509_NAME_free(name);
    X509_set_pubkey(x, key());
    if (san != NULL) {
        X509_EXTENSION *ext;
        X509V3_set_ctx(&ctx, x, x, NULL, NULL, 0);
        ext = X509V3_EXT_conf_nid(NULL, &ctx, NID_subject_alt_name, san);
        ck_assert_ptr_nonnull(ext);
        X509_add_ext(x, ext, -1);
        X509_EXTENSION_free(ext);
    }
    ck_assert_int_gt(X509_sign(x, key(), EVP_sha256()), 0);
    return x;
}

static enum bst_status identify(const char *const *cns, const char *san, struct bst_principal *p,
                                struct bst_err *err)
{
    X509 *x = make_cert(cns, san);
    enum bst_status rv;
    bst_principal_init(p);
    rv = authn_cert_identity(x, p, err);
    X509_free(x);
    return rv;
}

START_TEST(test_identity_single_uri_san_names_the_caller)
{
    static const char *const cns[] = {"admin", NULL};
    struct bst_principal p;
    struct bst_err err;
    ck_assert_int_eq(
        identify(cns, "URI:spiffe://bastion.local/user/admin,DNS:ignored.example", &p, &err),
        BST_OK);
    ck_assert_str_eq(p.name, "spiffe://bastion.local/user/admin");
    ck_assert_str_eq(p.cert_identity, "spiffe://bastion.local/user/admin");
    ck_assert_int_eq(p.mechanism, BST_MECH_MTLS);
    ck_assert_uint_eq(strlen(p.fingerprint), 64);
    ck_assert_int_gt(p.expires_at_ns, 0);
    bst_principal_dispose(&p);
}
END_TEST

START_TEST(test_identity_falls_back_to_cn_without_uri_san)
{
    static const char *const cns[] = {"build-bot", NULL};
    struct bst_principal p;
    struct bst_err err;
    ck_assert_int_eq(identify(cns, "DNS:bot.example", &p, &err), BST_OK);
    ck_assert_str_eq(p.name, "build-bot");
    bst_principal_dispose(&p);
    ck_assert_int_eq(identify(cns, NULL, &p, &err), BST_OK);
    ck_assert_str_eq(p.name, "build-bot");
    bst_principal_dispose(&p);
}
END_TEST

START_TEST(test_identity_several_uri_sans_refused)
{
    static const char *const cns[] = {"a", NULL};
    struct bst_principal p;
    struct bst_err err;
    ck_assert_int_eq(identify(cns, "URI:spiffe://x/user/a,URI:spiffe://x/user/admin", &p, &err),
                     BST_UNAUTHENTICATED);
    ck_assert_ptr_nonnull(strstr(err.msg, "2 URI SANs"));
    ck_assert_ptr_null(p.name);
    bst_principal_dispose(&p);
}
END_TEST

START_TEST(test_identity_no_uri_and_no_cn_refused)
{
    static const char *const none[] = {NULL};
    struct bst_principal p;
    struct bst_err err;
    ck_assert_int_eq(identify(none, "DNS:only.example", &p, &err), BST_UNAUTHENTICATED);
    ck_assert_ptr_null(p.name);
    bst_principal_dispose(&p);
}
END_TEST

START_TEST(test_identity_two_cns_refused)
{
    static const char *const cns[] = {"viewer", "admin", NULL};
    struct bst_principal p;
    struct bst_err err;
    ck_assert_int_eq(identify(cns, NULL, &p, &err), BST_UNAUTHENTICATED);
    ck_assert_ptr_nonnull(strstr(err.msg, "several"));
    bst_principal_dispose(&p);
}
END_TEST

START_TEST(test_identity_control_characters_refused)
{
    static const char *const cns[] = {"evil\nname", NULL};
    static const char *const ok[] = {"x", NULL};
    struct bst_principal p;
    struct bst_err err;
    ck_assert_int_eq(identify(cns, NULL, &p, &err), BST_UNAUTHENTICATED);
    bst_principal_dispose(&p);
    ck_assert_int_eq(identify(ok, "URI:spiffe://x/\x1b[31m", &p, &err), BST_UNAUTHENTICATED);
    bst_principal_dispose(&p);
}
END_TEST

START_TEST(test_identity_overlong_identity_refused)
{
    static const char *const cns[] = {"x", NULL};
    char san[AUTHN_MAX_IDENTITY + 64];
    struct bst_principal p;
    struct bst_err err;
    memset(san, 'a', sizeof(san) - 1);
    san[sizeof(san) - 1] = '\0';
    memcpy(san, "URI:spiffe://x/", 15);
    ck_assert_int_eq(identify(cns, san, &p, &err), BST_UNAUTHENTICATED);
    bst_principal_dispose(&p);
}
END_TEST

START_TEST(test_identity_fingerprints_differ_per_certificate)
{
    static const char *const cns[] = {"same", NULL};
    struct bst_principal a, b;
    struct bst_err err;
    ck_assert_int_eq(identify(cns, NULL, &a, &err), BST_OK);
    ck_assert_int_eq(identify(cns, "DNS:other", &b, &err), BST_OK);
    ck_assert_str_ne(a.fingerprint, b.fingerprint);
    bst_principal_dispose(&a);
    bst_principal_dispose(&b);
}
END_TEST

int main(void)
{
    Suite *s = suite_create("identity");
    TCase *tc = tcase_create("identity");
    SRunner *sr;
    int failed;

    tcase_add_test(tc, test_identity_single_uri_san_names_the_caller);
    tcase_add_test(tc, test_identity_falls_back_to_cn_without_uri_san);
    tcase_add_test(tc, test_identity_several_uri_sans_refused);
    tcase_add_test(tc, test_identity_no_uri_and_no_cn_refused);
    tcase_add_test(tc, test_identity_two_cns_refused);
    tcase_add_test(tc, test_identity_control_characters_refused);
    tcase_add_test(tc, test_identity_overlong_identity_refused);
    tcase_add_test(tc, test_identity_fingerprints_differ_per_certificate);
    suite_add_tcase(s, tc);
    sr = srunner_create(s);
    srunner_set_fork_status(sr, CK_NOFORK);
    srunner_run_all(sr, CK_NORMAL);
    failed = srunner_ntests_failed(sr);
    srunner_free(sr);
    EVP_PKEY_free(key());
    return failed == 0 ? 0 : 1;
}
