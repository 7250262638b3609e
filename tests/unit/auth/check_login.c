/* Password login (auth/authn.c, users.c, scrypt.c, limiter.c, pool.c): right and wrong
 * passwords, an unknown user costing what a known one costs, lockouts and their expiry under an
 * injected monotonic clock, the exemption that keeps an attacker from locking the owner out, a
 * full pool queue, concurrent logins from threads, and the issued token verifying as ours. */
#include "authn_internal.h"
#include "authtest.h"

#include <check.h>
#include <pthread.h>
#include <semaphore.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

static struct authn *A;
static struct authn_config CFG;
static char alice_hash[128], bob_hash[128];

/* Hashes with a lower cost than the default so the suite stays quick (ln=12: 4 MiB). */
static void cheap_hash(const char *pw, char *out, size_t len)
{
    struct scrypt_params sp = {1u << 12, 8, 1};
    unsigned char salt[16], hash[32];
    char s64[32], h64[64];
    for (int i = 0; i < 16; i++)
        salt[i] = (unsigned char)(pw[0] + i);
    ck_assert_int_eq(auth_scrypt(pw, strlen(pw), salt, 16, &sp, 64 << 20, hash, 32), 0);
    auth_b64url_encode(s64, sizeof(s64), salt, 16);
    auth_b64url_encode(h64, sizeof(h64), hash, 32);
    snprintf(out, len, "$scrypt$ln=12,r=8,p=1$%s$%s", s64, h64);
}

static void write_users(void)
{
    char buf[1024];
    snprintf(buf, sizeof(buf),
             "users:\n"
             "  - username: alice\n    password_hash: \"%s\"\n    groups: [operators]\n"
             "    tenant: team-a\n"
             "  - username: bob\n    password_hash: \"%s\"\n    enabled: false\n",
             alice_hash, bob_hash);
    free(at_write_str("users.yaml", buf, 0600));
}

static void files_setup(void)
{
    EVP_PKEY *k = EVP_EC_gen("P-256");
    char *pem;

    at_make_dir();
    cheap_hash("correct horse", alice_hash, sizeof(alice_hash));
    cheap_hash("bobs password", bob_hash, sizeof(bob_hash));
    write_users();
    pem = at_pem(k, 1);
    free(at_write_str("signing.pem", pem, 0600));
    free(pem);
    EVP_PKEY_free(k);
}

static void files_teardown(void)
{
    at_remove_dir();
}

static void start(int threads, int queue, int per_user, int per_address)
{
    struct bst_err err;
    char *p;
    at_use_fake_clocks();
    at_config_defaults(&CFG);
    p = at_path("users.yaml");
    at_set(&CFG.users, p);
    free(p);
    p = at_path("signing.pem");
    at_set(&CFG.token.signing_key, p);
    free(p);
    at_set(&CFG.token.kid, "login-test-1");
    CFG.require_client_certificate = 0;
    CFG.login.scrypt_threads = threads;
    CFG.login.scrypt_queue = queue;
    CFG.login.max_failures_per_user = per_user;
    CFG.login.max_failures_per_address = per_address;
    if (authn_new(&A, &CFG, &err) != BST_OK)
        ck_abort_msg("authn_new: %s", err.msg);
}

static void authn_setup(void)
{
    start(2, 32, 3, 100);
}

static void authn_teardown(void)
{
    bst_reload_clear();
    authn_free(A);
    A = NULL;
    bst_yaml_decoded_free(authn_config_fields, &CFG);
}

/* ---- a synchronous wrapper ----------------------------------------------------------------- */

struct result {
    sem_t done;
    atomic_int calls;
    enum bst_status st;
    char token[4096];
    int64_t exp;
    char message[256];
    char reason[512];
    sem_t *hold; /* when set, the callback blocks on it (keeps a pool thread busy) */
    sem_t *entered;
};

static void on_done(void *arg, enum bst_status st, const char *token, int64_t exp,
                    const char *message, const char *reason)
{
    struct result *r = arg;
    r->st = st;
    snprintf(r->token, sizeof(r->token), "%s", token != NULL ? token : "");
    r->exp = exp;
    snprintf(r->message, sizeof(r->message), "%s", message);
    snprintf(r->reason, sizeof(r->reason), "%s", reason);
    atomic_fetch_add(&r->calls, 1);
    if (r->entered != NULL)
        sem_post(r->entered);
    if (r->hold != NULL)
        sem_wait(r->hold);
    sem_post(&r->done);
}

/* Logs in and waits. Returns the synchronous status, or the callback's when it was queued. */
static enum bst_status login(const char *user, const char *pw, const char *peer, struct result *r,
                             struct bst_err *err)
{
    enum bst_status rv;
    memset(r, 0, sizeof(*r));
    sem_init(&r->done, 0, 0);
    rv = authn_login_start(A, user, pw, peer, 0, on_done, r, err);
    if (rv != BST_OK) {
        ck_assert_int_eq(atomic_load(&r->calls), 0);
        return rv;
    }
    sem_wait(&r->done);
    ck_assert_int_eq(atomic_load(&r->calls), 1);
    sem_destroy(&r->done);
    return r->st;
}

START_TEST(test_login_right_password_issues_a_token_that_verifies_as_ours)
{
    struct result r;
    struct bst_err err;
    struct bst_principal out;
    char reason[256];

    ck_assert_int_eq(login("alice", "correct horse", "10.1.1.1:5", &r, &err), BST_OK);
    ck_assert_int_eq(r.exp, AT_NOW + 15 * 60);
    ck_assert_int_eq(at_auth_bearer(A, r.token, NULL, &out, reason, sizeof(reason), &err), BST_OK);
    ck_assert_str_eq(out.name, "alice");
    ck_assert_int_eq(out.mechanism, BST_MECH_JWT);
    ck_assert_uint_eq(out.n_groups, 1);
    ck_assert_str_eq(out.groups[0], "operators");
    ck_assert_str_eq(out.tenant, "team-a");
    bst_principal_dispose(&out);
    /* Signed with the active key: its kid is in the header. */
    {
        unsigned char hdr[256];
        size_t hl;
        const char *dot = strchr(r.token, '.');
        ck_assert_int_eq(
            auth_b64url_decode(r.token, (size_t)(dot - r.token), hdr, sizeof(hdr) - 1, &hl), 0);
        hdr[hl] = '\0';
        ck_assert_ptr_nonnull(strstr((char *)hdr, "\"kid\":\"login-test-1\""));
        ck_assert_ptr_nonnull(strstr((char *)hdr, "ES256"));
    }
    /* Requested ttl is capped at max_ttl (1 h). */
    memset(&r, 0, sizeof(r));
    sem_init(&r.done, 0, 0);
    ck_assert_int_eq(
        authn_login_start(A, "alice", "correct horse", "10.1.1.1:5", 86400, on_done, &r, &err),
        BST_OK);
    sem_wait(&r.done);
    ck_assert_int_eq(r.st, BST_OK);
    ck_assert_int_eq(r.exp, AT_NOW + 3600);
}
END_TEST

START_TEST(test_login_wrong_password_unknown_and_disabled_users_get_one_message)
{
    struct result r;
    struct bst_err err;
    char first[256];

    ck_assert_int_eq(login("alice", "wrong", "10.1.1.2:5", &r, &err), BST_UNAUTHENTICATED);
    ck_assert_str_eq(r.reason, "wrong password");
    snprintf(first, sizeof(first), "%s", r.message);
    ck_assert_int_eq(login("mallory", "x", "10.1.1.2:5", &r, &err), BST_UNAUTHENTICATED);
    ck_assert_str_eq(r.reason, "unknown user");
    ck_assert_str_eq(r.message, first);
    ck_assert_int_eq(login("bob", "bobs password", "10.1.1.2:5", &r, &err), BST_UNAUTHENTICATED);
    ck_assert_str_eq(r.reason, "user is disabled");
    ck_assert_str_eq(r.message, first);
    ck_assert_str_eq(r.token, "");
    ck_assert_int_eq(login("", "x", "10.1.1.2:5", &r, &err), BST_INVALID_ARGUMENT);
    ck_assert_int_eq(login("alice", "", "10.1.1.2:5", &r, &err), BST_INVALID_ARGUMENT);
    ck_assert_int_eq(login("al\nice", "x", "10.1.1.2:5", &r, &err), BST_INVALID_ARGUMENT);
}
END_TEST

static int64_t wall_now(void)
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

START_TEST(test_login_unknown_user_takes_as_long_as_a_known_user)
{
    enum { N = 15 };
    int64_t known[N], unknown[N];
    struct result r;
    struct bst_err err;
    double ratio;

    for (int i = 0; i < N; i++) {
        char who[32];
        int64_t t0 = wall_now();
        ck_assert_int_eq(login("alice", "not it", "10.9.9.9:1", &r, &err), BST_UNAUTHENTICATED);
        known[i] = wall_now() - t0;
        snprintf(who, sizeof(who), "ghost-%d", i);
        t0 = wall_now();
        ck_assert_int_eq(login(who, "not it", "10.9.9.9:1", &r, &err), BST_UNAUTHENTICATED);
        unknown[i] = wall_now() - t0;
        /* Keep alice under her failure limit: a success clears her failures. */
        ck_assert_int_eq(login("alice", "correct horse", "10.9.9.9:1", &r, &err), BST_OK);
    }
    qsort(known, N, sizeof(int64_t), cmp_i64);
    qsort(unknown, N, sizeof(int64_t), cmp_i64);
    ratio = (double)unknown[N / 2] / (double)known[N / 2];
    printf("login timing: known user, wrong password %.2f ms; unknown user %.2f ms (medians of "
           "%d), ratio %.3f\n",
           known[N / 2] / 1e6, unknown[N / 2] / 1e6, N, ratio);
    ck_assert(ratio > 0.6 && ratio < 1.67);
}
END_TEST

START_TEST(test_login_lockout_refuses_before_scrypt_and_expires)
{
    struct result r;
    struct bst_err err;

    for (int i = 0; i < 3; i++)
        ck_assert_int_eq(login("alice", "guess", "203.0.113.5:1", &r, &err), BST_UNAUTHENTICATED);
    /* Locked: refused synchronously (no callback, no scrypt), even with the right password. */
    ck_assert_int_eq(login("alice", "correct horse", "203.0.113.5:1", &r, &err),
                     BST_RESOURCE_EXHAUSTED);
    ck_assert_ptr_nonnull(strstr(err.msg, "try again"));
    /* An unknown username locks the same way, so a lock reveals nothing. */
    for (int i = 0; i < 3; i++)
        ck_assert_int_eq(login("nobody", "guess", "203.0.113.6:1", &r, &err), BST_UNAUTHENTICATED);
    ck_assert_int_eq(login("nobody", "guess", "203.0.113.6:1", &r, &err), BST_RESOURCE_EXHAUSTED);
    /* Attempts during the lock do not extend it. */
    atomic_fetch_add(&at_mono_ns, 4 * 60 * BST_NS_PER_S);
    ck_assert_int_eq(login("alice", "guess", "203.0.113.5:1", &r, &err), BST_RESOURCE_EXHAUSTED);
    atomic_fetch_add(&at_mono_ns, 60 * BST_NS_PER_S + 1);
    ck_assert_int_eq(login("alice", "correct horse", "203.0.113.5:1", &r, &err), BST_OK);
}
END_TEST

START_TEST(test_login_attacker_cannot_lock_the_owner_out_of_a_known_address)
{
    struct result r;
    struct bst_err err;

    ck_assert_int_eq(login("alice", "correct horse", "192.0.2.10:1", &r, &err), BST_OK);
    for (int i = 0; i < 3; i++)
        ck_assert_int_eq(login("alice", "guess", "198.51.100.66:1", &r, &err), BST_UNAUTHENTICATED);
    ck_assert_int_eq(login("alice", "guess", "198.51.100.66:1", &r, &err), BST_RESOURCE_EXHAUSTED);
    /* The owner's address has logged in before: the lock does not apply to it. */
    ck_assert_int_eq(login("alice", "correct horse", "192.0.2.10:2", &r, &err), BST_OK);
    /* A third address is locked out like the attacker. */
    ck_assert_int_eq(login("alice", "correct horse", "192.0.2.99:1", &r, &err),
                     BST_RESOURCE_EXHAUSTED);
}
END_TEST

START_TEST(test_login_failures_per_address_lock_that_address_for_every_user)
{
    struct result r;
    struct bst_err err;

    authn_teardown();
    start(2, 32, 100, 4);
    for (int i = 0; i < 4; i++) {
        char who[16];
        snprintf(who, sizeof(who), "spray%d", i);
        ck_assert_int_eq(login(who, "guess", "[2001:db8::1]:443", &r, &err), BST_UNAUTHENTICATED);
    }
    ck_assert_int_eq(login("alice", "correct horse", "[2001:db8::1]:80", &r, &err),
                     BST_RESOURCE_EXHAUSTED);
    ck_assert_int_eq(login("alice", "correct horse", "[2001:db8::2]:80", &r, &err), BST_OK);
    atomic_fetch_add(&at_mono_ns, 5 * 60 * BST_NS_PER_S + 1);
    ck_assert_int_eq(login("alice", "correct horse", "[2001:db8::1]:80", &r, &err), BST_OK);
}
END_TEST

START_TEST(test_login_full_queue_is_resource_exhausted)
{
    sem_t hold, entered;
    struct result busy, queued, r;
    struct bst_err err;

    authn_teardown();
    start(1, 1, 100, 100);
    sem_init(&hold, 0, 0);
    sem_init(&entered, 0, 0);
    memset(&busy, 0, sizeof(busy));
    memset(&queued, 0, sizeof(queued));
    sem_init(&busy.done, 0, 0);
    sem_init(&queued.done, 0, 0);
    busy.hold = &hold;
    busy.entered = &entered;
    /* The only pool thread is held inside the first callback... */
    ck_assert_int_eq(authn_login_start(A, "alice", "x", "10.0.0.1:1", 0, on_done, &busy, &err),
                     BST_OK);
    sem_wait(&entered);
    /* ...the second login fills the queue of one, the third finds it full. */
    ck_assert_int_eq(authn_login_start(A, "alice", "x", "10.0.0.1:1", 0, on_done, &queued, &err),
                     BST_OK);
    ck_assert_int_eq(login("alice", "correct horse", "10.0.0.2:1", &r, &err),
                     BST_RESOURCE_EXHAUSTED);
    ck_assert_ptr_nonnull(strstr(err.msg, "too many logins in progress"));
    sem_post(&hold);
    sem_wait(&busy.done);
    sem_wait(&queued.done);
    ck_assert_int_eq(atomic_load(&busy.calls), 1);
    ck_assert_int_eq(atomic_load(&queued.calls), 1);
    /* The refused login was not counted as a failure or left in flight. */
    ck_assert_int_eq(login("alice", "correct horse", "10.0.0.2:1", &r, &err), BST_OK);
}
END_TEST

START_TEST(test_login_queued_logins_get_unavailable_at_shutdown)
{
    sem_t hold, entered;
    struct result busy, queued;
    struct bst_err err;

    authn_teardown();
    start(1, 4, 100, 100);
    sem_init(&hold, 0, 0);
    sem_init(&entered, 0, 0);
    memset(&busy, 0, sizeof(busy));
    memset(&queued, 0, sizeof(queued));
    sem_init(&busy.done, 0, 0);
    sem_init(&queued.done, 0, 0);
    busy.hold = &hold;
    busy.entered = &entered;
    ck_assert_int_eq(authn_login_start(A, "alice", "x", "10.0.0.1:1", 0, on_done, &busy, &err),
                     BST_OK);
    sem_wait(&entered);
    ck_assert_int_eq(authn_login_start(A, "alice", "x", "10.0.0.1:1", 0, on_done, &queued, &err),
                     BST_OK);
    sem_post(&hold); /* the running login finishes while authn_free waits for it */
    bst_reload_clear();
    authn_free(A);
    A = NULL;
    ck_assert_int_eq(atomic_load(&busy.calls), 1);
    ck_assert_int_eq(atomic_load(&queued.calls), 1);
    ck_assert(queued.st == BST_UNAVAILABLE || queued.st == BST_UNAUTHENTICATED);
}
END_TEST

struct worker_arg {
    int id;
    int ok;
};

static void *login_worker(void *p)
{
    struct worker_arg *w = p;
    char peer[32];
    snprintf(peer, sizeof(peer), "10.2.0.%d:1", w->id);
    for (int i = 0; i < 4; i++) {
        struct result r;
        struct bst_err err;
        if (login("alice", "correct horse", peer, &r, &err) == BST_OK && r.token[0] != '\0')
            w->ok++;
    }
    return NULL;
}

START_TEST(test_login_concurrent_logins_from_threads_each_complete_once)
{
    pthread_t t[8];
    struct worker_arg w[8];
    int total = 0;

    /* Attempts in flight count against the per-user limit, so 8 parallel logins need 8. */
    authn_teardown();
    start(2, 32, 8, 100);
    for (int i = 0; i < 8; i++) {
        w[i].id = i;
        w[i].ok = 0;
        ck_assert_int_eq(pthread_create(&t[i], NULL, login_worker, &w[i]), 0);
    }
    for (int i = 0; i < 8; i++) {
        pthread_join(t[i], NULL);
        total += w[i].ok;
    }
    ck_assert_int_eq(total, 32);
}
END_TEST

START_TEST(test_login_failures_in_flight_count_across_threads)
{
    /* Eight wrong guesses at once against a limit of 3: at most 3 reach scrypt. */
    struct result r[8];
    struct bst_err err;
    int queued = 0, refused = 0;

    for (int i = 0; i < 8; i++) {
        memset(&r[i], 0, sizeof(r[i]));
        sem_init(&r[i].done, 0, 0);
        enum bst_status st =
            authn_login_start(A, "alice", "guess", "10.3.0.1:1", 0, on_done, &r[i], &err);
        if (st == BST_OK)
            queued++;
        else if (st == BST_RESOURCE_EXHAUSTED)
            refused++;
    }
    for (int i = 0; i < queued; i++)
        sem_wait(&r[i].done);
    ck_assert_int_le(queued, 3);
    ck_assert_int_eq(queued + refused, 8);
}
END_TEST

START_TEST(test_password_hash_format_and_verification)
{
    char h[128];
    struct scrypt_params sp;
    unsigned char salt[64], hash[64], again[32];
    size_t sl, hl;
    const char *why;

    ck_assert_int_eq(authn_password_hash("s3cret pass", h, sizeof(h)), BST_OK);
    ck_assert_int_eq(strncmp(h, "$scrypt$ln=15,r=8,p=1$", 22), 0);
    ck_assert_int_eq(auth_scrypt_parse(h, &sp, salt, &sl, hash, &hl, &why), 0);
    ck_assert_uint_eq(sp.n, 32768);
    ck_assert_uint_eq(sl, 16);
    ck_assert_uint_eq(hl, 32);
    ck_assert_int_eq(auth_scrypt("s3cret pass", 11, salt, sl, &sp, 64 << 20, again, 32), 0);
    ck_assert_int_eq(memcmp(again, hash, 32), 0);
    ck_assert_int_eq(authn_password_hash("", h, sizeof(h)), BST_INVALID_ARGUMENT);
    ck_assert_int_eq(authn_password_hash("x", h, 40), BST_OUT_OF_RANGE);
    ck_assert_int_eq(auth_scrypt_parse("$scrypt$ln=30,r=8,p=1$AAAAAAAAAAAAAAAAAAAAAA$AAAA", &sp,
                                       salt, &sl, hash, &hl, &why),
                     -1);
    ck_assert_int_eq(auth_scrypt_parse("$2b$10$abc", &sp, salt, &sl, hash, &hl, &why), -1);
}
END_TEST

START_TEST(test_login_users_file_needing_more_memory_than_allowed_is_refused)
{
    struct user_set *s = NULL;
    struct bst_err err;
    char *p = at_write_str("big.yaml",
                           "users:\n  - username: x\n    password_hash: "
                           "\"$scrypt$ln=20,r=8,p=1$AAAAAAAAAAAAAAAAAAAAAA$"
                           "AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA\"\n",
                           0600);
    ck_assert_int_eq(user_set_load(p, 64 << 20, &s, &err), BST_INVALID_ARGUMENT);
    ck_assert_ptr_nonnull(strstr(err.msg, "scrypt_max_memory"));
    free(p);
}
END_TEST

Suite *login_suite(void)
{
    Suite *s = suite_create("auth_login");
    TCase *tc = tcase_create("login");
    tcase_add_unchecked_fixture(tc, files_setup, files_teardown);
    tcase_add_checked_fixture(tc, authn_setup, authn_teardown);
    tcase_set_timeout(tc, 120);
    tcase_add_test(tc, test_login_right_password_issues_a_token_that_verifies_as_ours);
    tcase_add_test(tc, test_login_wrong_password_unknown_and_disabled_users_get_one_message);
    tcase_add_test(tc, test_login_unknown_user_takes_as_long_as_a_known_user);
    tcase_add_test(tc, test_login_lockout_refuses_before_scrypt_and_expires);
    tcase_add_test(tc, test_login_attacker_cannot_lock_the_owner_out_of_a_known_address);
    tcase_add_test(tc, test_login_failures_per_address_lock_that_address_for_every_user);
    tcase_add_test(tc, test_login_full_queue_is_resource_exhausted);
    tcase_add_test(tc, test_login_queued_logins_get_unavailable_at_shutdown);
    tcase_add_test(tc, test_login_concurrent_logins_from_threads_each_complete_once);
    tcase_add_test(tc, test_login_failures_in_flight_count_across_threads);
    tcase_add_test(tc, test_password_hash_format_and_verification);
    tcase_add_test(tc, test_login_users_file_needing_more_memory_than_allowed_is_refused);
    suite_add_tcase(s, tc);
    return s;
}

int main(void)
{
    SRunner *sr = srunner_create(login_suite());
    int failed;
    srunner_run_all(sr, CK_NORMAL);
    failed = srunner_ntests_failed(sr);
    srunner_free(sr);
    return failed == 0 ? EXIT_SUCCESS : EXIT_FAILURE;
}
