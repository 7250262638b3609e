/* API keys (auth/apikeys.c through authn_authenticate): the three ways to present a key, one
 * peer message for every bad key, timing that does not depend on a matching prefix, the
 * secret-file rules, the generator, and reloads that swap the whole set atomically or keep the
 * old one. */
#include "authn_internal.h"
#include "authtest.h"

#include <check.h>
#include <openssl/sha.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#define GENERIC "invalid API key"

/* Five keys with their roles in the tests. Made once (generator), written into the file. */
enum { K_OK, K_DISABLED, K_EXPIRED, K_FUTURE, K_SECOND, N_KEYS };
static char keys[N_KEYS][AUTHN_APIKEY_LEN + 1];
static char hexes[N_KEYS][65];
static struct authn *A;
static struct authn_config CFG;

static void hex_of(const char *key, char out[65])
{
    unsigned char d[32];
    SHA256((const unsigned char *)key, strlen(key), d);
    bst_hex_encode(out, d, 32);
}

/* Writes the keys file holding the entries named by mask (bit i = key i). */
static char *write_keys(unsigned mask, mode_t mode)
{
    static const char *const extra[N_KEYS] = {
        "    groups: [deployers, viewers]\n    tenant: team-a\n"
        "    permissions: [\"k8s:pods:list\"]\n",
        "    enabled: false\n",
        "    expires_at: \"2026-01-01T00:00:00Z\"\n",
        "    not_before: \"2030-01-01T00:00:00Z\"\n",
        "    expires_at: \"2030-01-01T00:00:00Z\"\n",
    };
    static const char *const ids[N_KEYS] = {"ci-1", "off-1", "old-1", "new-1", "ci-2"};
    char buf[4096];
    size_t o = (size_t)snprintf(buf, sizeof(buf), "keys:\n");

    if (mask == 0)
        o = (size_t)snprintf(buf, sizeof(buf), "keys: []\n");
    for (int i = 0; i < N_KEYS; i++) {
        if (!(mask & (1u << i)))
            continue;
        o += (size_t)snprintf(buf + o, sizeof(buf) - o,
                              "  - id: %s\n    sha256: \"%s\"\n    identity: %s\n%s", ids[i],
                              hexes[i], i == K_SECOND ? "ci-bot" : "ci-bot", extra[i]);
    }
    return at_write_str("api-keys.yaml", buf, mode);
}

static void files_setup(void)
{
    char entry[512];
    at_make_dir();
    for (int i = 0; i < N_KEYS; i++) {
        ck_assert_int_eq(
            authn_apikey_generate(keys[i], sizeof(keys[i]), entry, sizeof(entry), "gen"), BST_OK);
        hex_of(keys[i], hexes[i]);
    }
}

static void files_teardown(void)
{
    at_remove_dir();
}

static void authn_setup(void)
{
    struct bst_err err;
    char *p = write_keys((1u << N_KEYS) - 1, 0600);
    at_use_fake_clocks();
    at_config_defaults(&CFG);
    at_set(&CFG.api_keys, p);
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

static enum bst_status via_x_api_key(const char *key, struct bst_principal *out, char *reason,
                                     struct bst_err *err)
{
    const char *k[1] = {key};
    struct authn_request rq = {.api_key = k, .n_api_key = 1, .peer = "192.0.2.7:4000"};
    bst_principal_init(out);
    return authn_authenticate(A, &rq, out, reason, 256, err);
}

START_TEST(test_apikey_accepted_as_bearer_apikey_scheme_and_x_api_key)
{
    char hdr[128], reason[256];
    struct bst_principal out;
    struct bst_err err;

    snprintf(hdr, sizeof(hdr), "Bearer %s", keys[K_OK]);
    ck_assert_int_eq(at_auth_header(A, hdr, NULL, &out, reason, sizeof(reason), &err), BST_OK);
    ck_assert_int_eq(out.mechanism, BST_MECH_API_KEY);
    ck_assert_str_eq(out.name, "ci-bot");
    ck_assert_str_eq(out.credential_id, "ci-1");
    ck_assert_uint_eq(out.n_groups, 2);
    ck_assert_str_eq(out.tenant, "team-a");
    ck_assert_uint_eq(out.n_permissions, 1);
    ck_assert_int_eq(out.permissions_source, BST_PERMS_API_KEY_FILE);
    ck_assert_ptr_nonnull(strstr(out.permissions_issuer, "api-keys.yaml"));
    bst_principal_dispose(&out);
    snprintf(hdr, sizeof(hdr), "apikey %s", keys[K_OK]);
    ck_assert_int_eq(at_auth_header(A, hdr, NULL, &out, reason, sizeof(reason), &err), BST_OK);
    bst_principal_dispose(&out);
    ck_assert_int_eq(via_x_api_key(keys[K_OK], &out, reason, &err), BST_OK);
    /* Several keys per identity: the second key of ci-bot works too. */
    bst_principal_dispose(&out);
    ck_assert_int_eq(via_x_api_key(keys[K_SECOND], &out, reason, &err), BST_OK);
    ck_assert_str_eq(out.credential_id, "ci-2");
    ck_assert_int_eq(out.expires_at_ns, INT64_C(1893456000) * BST_NS_PER_S);
    bst_principal_dispose(&out);
}
END_TEST

START_TEST(test_apikey_unknown_disabled_expired_and_future_keys_get_one_message)
{
    const char *bad[] = {keys[K_DISABLED], keys[K_EXPIRED],
                         keys[K_FUTURE],   "bst_AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA",
                         "bst_short",      "sk_live_notours_0123456789"};
    const char *why[] = {"disabled", "expired",    "not valid before",
                         "unknown",  "not 'bst_'", "not 'bst_'"};
    char reason[256];
    struct bst_principal out;
    struct bst_err err;

    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        ck_assert_int_eq(via_x_api_key(bad[i], &out, reason, &err), BST_UNAUTHENTICATED);
        ck_assert_str_eq(err.msg, GENERIC);
        if (strstr(reason, why[i]) == NULL)
            ck_abort_msg("key %zu: reason '%s' lacks '%s'", i, reason, why[i]);
        ck_assert_ptr_null(strstr(reason, bad[i])); /* never the key itself */
        ck_assert_ptr_null(out.name);
    }
}
END_TEST

START_TEST(test_apikey_validity_window_follows_the_wall_clock)
{
    char reason[256];
    struct bst_principal out;
    struct bst_err err;

    atomic_store(&at_wall_ns, INT64_C(1893456000) * BST_NS_PER_S); /* 2030-01-01 */
    ck_assert_int_eq(via_x_api_key(keys[K_FUTURE], &out, reason, &err), BST_OK);
    bst_principal_dispose(&out);
    ck_assert_int_eq(via_x_api_key(keys[K_SECOND], &out, reason, &err), BST_UNAUTHENTICATED);
    atomic_store(&at_wall_ns, (INT64_C(1893456000) - 1) * BST_NS_PER_S);
    ck_assert_int_eq(via_x_api_key(keys[K_SECOND], &out, reason, &err), BST_OK);
    bst_principal_dispose(&out);
}
END_TEST

static int64_t now_ns(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000000000 + ts.tv_nsec;
}

static int cmp_i64(const void *a, const void *b)
{
    int64_t x = *(const int64_t *)a, y = *(const int64_t *)b;
    return x < y ? -1 : x > y;
}

START_TEST(test_apikey_wrong_key_timing_does_not_depend_on_matching_prefix)
{
    /* Two wrong keys: one shares 40 of 47 characters with a real key, one shares only "bst_".
     * Batches alternate, so drift hits both alike; medians are compared loosely. */
    enum { BATCHES = 41, PER_BATCH = 400 };
    char near[AUTHN_APIKEY_LEN + 1], far[AUTHN_APIKEY_LEN + 1], reason[256];
    int64_t t_near[BATCHES], t_far[BATCHES];
    struct bst_principal out;
    struct bst_err err;
    double ratio;

    memcpy(near, keys[K_OK], sizeof(near));
    memcpy(near + 40, "XXXXXXX", 7);
    memcpy(far, keys[K_OK], sizeof(far));
    for (int i = 4; i < AUTHN_APIKEY_LEN; i++)
        far[i] = keys[K_OK][i] == 'Q' ? 'R' : 'Q';
    for (int b = 0; b < BATCHES; b++) {
        for (int pass = 0; pass < 2; pass++) {
            const char *k = pass == 0 ? near : far;
            int64_t t0 = now_ns();
            for (int i = 0; i < PER_BATCH; i++) {
                ck_assert_int_eq(via_x_api_key(k, &out, reason, &err), BST_UNAUTHENTICATED);
            }
            (pass == 0 ? t_near : t_far)[b] = (now_ns() - t0) / PER_BATCH;
        }
    }
    qsort(t_near, BATCHES, sizeof(int64_t), cmp_i64);
    qsort(t_far, BATCHES, sizeof(int64_t), cmp_i64);
    ratio = (double)t_near[BATCHES / 2] / (double)t_far[BATCHES / 2];
    printf("apikey timing: wrong key sharing 40 chars %lld ns, sharing 4 chars %lld ns (median "
           "per call), ratio %.3f\n",
           (long long)t_near[BATCHES / 2], (long long)t_far[BATCHES / 2], ratio);
    ck_assert(ratio > 0.7 && ratio < 1.43);
}
END_TEST

START_TEST(test_apikey_file_readable_by_others_is_refused)
{
    struct authn *b = NULL;
    struct bst_err err;
    char *p = write_keys(1, 0640);

    at_set(&CFG.api_keys, p);
    ck_assert_int_eq(authn_new(&b, &CFG, &err), BST_PERMISSION_DENIED);
    ck_assert_ptr_null(b);
    ck_assert_ptr_nonnull(strstr(err.msg, "api-keys.yaml"));
    free(p);
}
END_TEST

START_TEST(test_apikey_file_errors_name_the_line)
{
    struct apikey_set *s = NULL;
    struct bst_err err;
    static const char dup_id[] =
        "keys:\n  - id: a\n    sha256: \""
        "0000000000000000000000000000000000000000000000000000000000000000"
        "\"\n    identity: x\n  - id: a\n    sha256: \""
        "1111111111111111111111111111111111111111111111111111111111111111\"\n    identity: yy\n";
    static const char bad_hex[] = "keys:\n  - id: a\n    sha256: \"zz\"\n    identity: x\n";
    static const char typo[] = "keys:\n  - id: a\n    sha265: \"00\"\n    identity: x\n";
    static const char bad_time[] =
        "keys:\n  - id: a\n    sha256: \""
        "0000000000000000000000000000000000000000000000000000000000000000\"\n    identity: x\n"
        "    expires_at: \"2026-02-30T00:00:00Z\"\n";

    ck_assert_int_eq(apikey_set_parse("k.yaml", dup_id, strlen(dup_id), &s, &err),
                     BST_INVALID_ARGUMENT);
    if (strstr(err.msg, "k.yaml:5:") == NULL)
        ck_abort_msg("%s", err.msg);
    ck_assert_int_eq(apikey_set_parse("k.yaml", bad_hex, strlen(bad_hex), &s, &err),
                     BST_INVALID_ARGUMENT);
    ck_assert_ptr_nonnull(strstr(err.msg, "k.yaml:3:"));
    ck_assert_int_eq(apikey_set_parse("k.yaml", typo, strlen(typo), &s, &err),
                     BST_INVALID_ARGUMENT);
    ck_assert_ptr_nonnull(strstr(err.msg, "sha265"));
    ck_assert_int_eq(apikey_set_parse("k.yaml", bad_time, strlen(bad_time), &s, &err),
                     BST_INVALID_ARGUMENT);
    ck_assert_ptr_null(s);
}
END_TEST

START_TEST(test_apikey_generator_makes_prefixed_keys_whose_entry_loads)
{
    char key[AUTHN_APIKEY_LEN + 1], key2[AUTHN_APIKEY_LEN + 1], entry[512], doc[600], hx[65];
    struct apikey_set *s = NULL;
    struct bst_err err;

    ck_assert_int_eq(authn_apikey_generate(key, sizeof(key), entry, sizeof(entry), "deploy.2026"),
                     BST_OK);
    ck_assert_int_eq(authn_apikey_generate(key2, sizeof(key2), entry + 0, sizeof(entry), "x"),
                     BST_OK);
    ck_assert_str_ne(key, key2);
    ck_assert_uint_eq(strlen(key), AUTHN_APIKEY_LEN);
    ck_assert_int_eq(strncmp(key, "bst_", 4), 0);
    ck_assert_int_eq(authn_apikey_generate(key, sizeof(key), entry, sizeof(entry), "deploy.2026"),
                     BST_OK);
    hex_of(key, hx);
    ck_assert_ptr_nonnull(strstr(entry, hx));
    ck_assert_ptr_null(strstr(entry, key + 4)); /* the entry never holds the key */
    snprintf(doc, sizeof(doc), "keys:\n%s", entry);
    ck_assert_int_eq(apikey_set_parse("gen.yaml", doc, strlen(doc), &s, &err), BST_OK);
    ck_assert_ptr_nonnull(apikey_find(s, key, strlen(key)));
    ck_assert_ptr_null(apikey_find(s, key2, strlen(key2)));
    apikey_set_free(s);
    ck_assert_int_eq(authn_apikey_generate(key, sizeof(key), entry, sizeof(entry), "bad id"),
                     BST_INVALID_ARGUMENT);
    ck_assert_int_eq(authn_apikey_generate(key, 10, entry, sizeof(entry), "a"), BST_OUT_OF_RANGE);
    ck_assert_int_eq(authn_apikey_generate(key, sizeof(key), entry, 20, "a"), BST_OUT_OF_RANGE);
}
END_TEST

START_TEST(test_apikey_broken_reload_keeps_the_old_set_and_removal_revokes)
{
    char reason[256];
    struct bst_principal out;
    struct bst_err err;
    char *p;

    /* A broken file: refused, the old keys still work. */
    free(at_write_str("api-keys.yaml", "keys:\n  - id: [\n", 0600));
    ck_assert_int_eq(bst_reload_all(), 1);
    ck_assert_int_eq(via_x_api_key(keys[K_OK], &out, reason, &err), BST_OK);
    bst_principal_dispose(&out);
    /* A file that became readable by others: refused too. */
    free(write_keys(1u << K_SECOND, 0644));
    ck_assert_int_eq(bst_reload_all(), 1);
    ck_assert_int_eq(via_x_api_key(keys[K_OK], &out, reason, &err), BST_OK);
    bst_principal_dispose(&out);
    /* A good file without K_OK: K_OK is revoked at once. */
    p = write_keys(1u << K_SECOND, 0600);
    ck_assert_int_eq(bst_reload_all(), 0);
    ck_assert_int_eq(via_x_api_key(keys[K_OK], &out, reason, &err), BST_UNAUTHENTICATED);
    ck_assert_int_eq(via_x_api_key(keys[K_SECOND], &out, reason, &err), BST_OK);
    bst_principal_dispose(&out);
    free(p);
}
END_TEST

static atomic_int stop_flag, failures, calls;

static void *caller(void *arg)
{
    (void)arg;
    while (!atomic_load(&stop_flag)) {
        struct bst_principal out;
        struct bst_err err;
        char reason[256];
        if (via_x_api_key(keys[K_SECOND], &out, reason, &err) != BST_OK)
            atomic_fetch_add(&failures, 1);
        bst_principal_dispose(&out);
        atomic_fetch_add(&calls, 1);
    }
    return NULL;
}

START_TEST(test_apikey_reload_under_a_stream_of_calls_has_zero_failures)
{
    pthread_t t[2];
    atomic_store(&stop_flag, 0);
    atomic_store(&failures, 0);
    atomic_store(&calls, 0);
    for (int i = 0; i < 2; i++)
        ck_assert_int_eq(pthread_create(&t[i], NULL, caller, NULL), 0);
    for (int r = 0; r < 40; r++) {
        /* Alternate between two sets that both hold K_SECOND. */
        free(write_keys((1u << K_SECOND) | (r % 2 ? 1u << K_OK : 1u << K_DISABLED), 0600));
        ck_assert_int_eq(bst_reload_all(), 0);
    }
    atomic_store(&stop_flag, 1);
    for (int i = 0; i < 2; i++)
        pthread_join(t[i], NULL);
    printf("apikey reload: %d calls during 40 reloads, %d failures\n", atomic_load(&calls),
           atomic_load(&failures));
    ck_assert_int_gt(atomic_load(&calls), 40);
    ck_assert_int_eq(atomic_load(&failures), 0);
}
END_TEST

START_TEST(test_apikey_too_many_bad_keys_from_one_address_are_refused_for_a_while)
{
    struct authn *b = NULL;
    struct bst_err err;
    struct bst_principal out;
    char reason[256];
    const char *k[1];
    struct authn_request rq = {.api_key = k, .n_api_key = 1, .peer = "198.51.100.9:1234"};
    int i;

    CFG.failed_credentials_per_address = 5;
    bst_reload_clear();
    ck_assert_int_eq(authn_new(&b, &CFG, &err), BST_OK);
    k[0] = "bst_AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA";
    for (i = 0; i < 5; i++) {
        bst_principal_init(&out);
        ck_assert_int_eq(authn_authenticate(b, &rq, &out, reason, sizeof(reason), &err),
                         BST_UNAUTHENTICATED);
    }
    /* Locked: even a good key from that address waits out the lockout. */
    k[0] = keys[K_OK];
    ck_assert_int_eq(authn_authenticate(b, &rq, &out, reason, sizeof(reason), &err),
                     BST_RESOURCE_EXHAUSTED);
    ck_assert_ptr_nonnull(strstr(reason, "198.51.100.9"));
    /* Another address is not affected. */
    rq.peer = "198.51.100.10:1234";
    ck_assert_int_eq(authn_authenticate(b, &rq, &out, reason, sizeof(reason), &err), BST_OK);
    bst_principal_dispose(&out);
    /* After the lockout, the first address is served again. */
    atomic_fetch_add(&at_mono_ns, 5 * 60 * BST_NS_PER_S + 1);
    rq.peer = "198.51.100.9:1234";
    ck_assert_int_eq(authn_authenticate(b, &rq, &out, reason, sizeof(reason), &err), BST_OK);
    bst_principal_dispose(&out);
    authn_free(b);
}
END_TEST

Suite *apikeys_suite(void)
{
    Suite *s = suite_create("auth_apikeys");
    TCase *tc = tcase_create("apikeys");
    tcase_add_unchecked_fixture(tc, files_setup, files_teardown);
    tcase_add_checked_fixture(tc, authn_setup, authn_teardown);
    tcase_set_timeout(tc, 120);
    tcase_add_test(tc, test_apikey_accepted_as_bearer_apikey_scheme_and_x_api_key);
    tcase_add_test(tc, test_apikey_unknown_disabled_expired_and_future_keys_get_one_message);
    tcase_add_test(tc, test_apikey_validity_window_follows_the_wall_clock);
    tcase_add_test(tc, test_apikey_wrong_key_timing_does_not_depend_on_matching_prefix);
    tcase_add_test(tc, test_apikey_file_readable_by_others_is_refused);
    tcase_add_test(tc, test_apikey_file_errors_name_the_line);
    tcase_add_test(tc, test_apikey_generator_makes_prefixed_keys_whose_entry_loads);
    tcase_add_test(tc, test_apikey_broken_reload_keeps_the_old_set_and_removal_revokes);
    tcase_add_test(tc, test_apikey_reload_under_a_stream_of_calls_has_zero_failures);
    tcase_add_test(tc, test_apikey_too_many_bad_keys_from_one_address_are_refused_for_a_while);
    suite_add_tcase(s, tc);
    return s;
}

int main(void)
{
    SRunner *sr = srunner_create(apikeys_suite());
    int failed;
    srunner_run_all(sr, CK_NORMAL);
    failed = srunner_ntests_failed(sr);
    srunner_free(sr);
    return failed == 0 ? EXIT_SUCCESS : EXIT_FAILURE;
}
