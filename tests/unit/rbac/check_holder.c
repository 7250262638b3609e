/* Tests for rbac/holder.c: the reloadable policy holder. A refused file keeps the old policy;
 * the holder reloads through the registry; readers that hold a policy across swaps keep a
 * valid one; and threads deciding continuously while the file flips between two versions (and
 * a broken one) never fail and never see half of one policy and half of another. */
#include "rbac.h"

#include "log.h"
#include "reload.h"

#include <check.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

static const char *const known[] = {"k8s:pods:list", "k8s:pods:get", "k8s:pods:delete"};
#define N_KNOWN 3

/* v1 lets alice list; v2 lets her list and get. Each version's rules name it, so a decision
 * shows which policy made it. */
static const char *const v1 =
    "roles: [{name: v1, permissions: [k8s:pods:list], namespaces: [default]}]\n"
    "bindings: [{name: b1, subjects: [{user: alice}], roles: [v1]}]\n";
static const char *const v2 =
    "roles: [{name: v2, permissions: [k8s:pods:list, k8s:pods:get], namespaces: [default]}]\n"
    "bindings: [{name: b2, subjects: [{user: alice}], roles: [v2]}]\n";
static const char *const broken =
    "roles: [{name: v3, permissions: [k8s:pods:lst]}]\n"; /* unknown permission */

static char dir[] = "/tmp/check_rbac_holder.XXXXXX";
static char path[256];

static void write_policy(const char *text)
{
    char tmp[300];
    FILE *f;

    /* Written aside and renamed in, as an operator's deploy would: readers of the file never
     * see it half-written (the holder's atomicity is about the compiled policy). */
    snprintf(tmp, sizeof(tmp), "%s.tmp", path);
    f = fopen(tmp, "w");
    ck_assert_ptr_nonnull(f);
    ck_assert_int_eq(fputs(text, f) >= 0, 1);
    ck_assert_int_eq(fclose(f), 0);
    ck_assert_int_eq(rename(tmp, path), 0);
}

static void setup(void)
{
    ck_assert_ptr_nonnull(mkdtemp(dir));
    snprintf(path, sizeof(path), "%s/rbac.yaml", dir);
}

static void teardown(void)
{
    char tmp[300];
    snprintf(tmp, sizeof(tmp), "%s.tmp", path);
    unlink(path);
    unlink(tmp);
    rmdir(dir);
    memcpy(dir + strlen(dir) - 6, "XXXXXX", 6);
    bst_reload_clear();
}

static struct bst_principal alice;

static void alice_init(void)
{
    bst_principal_init(&alice);
    ck_assert_int_eq(bst_principal_set_name(&alice, "alice", BST_MECH_JWT), BST_OK);
}

/* Returns the version (1 or 2) the policy answers as, or 0 if its answers are inconsistent. */
static int version_of(const struct rbac_policy *p)
{
    struct bst_decision list, get, del;

    rbac_decide(p, &alice, "k8s:pods:list", "default", &list);
    rbac_decide(p, &alice, "k8s:pods:get", "default", &get);
    rbac_decide(p, &alice, "k8s:pods:delete", "default", &del);
    if (del.verdict != BST_VERDICT_DENY || list.verdict != BST_VERDICT_ALLOW)
        return 0;
    if (strcmp(list.rule, "role:v1 via binding:b1") == 0 && get.verdict == BST_VERDICT_DENY &&
        strcmp(get.rule, "no rule matched") == 0)
        return 1;
    if (strcmp(list.rule, "role:v2 via binding:b2") == 0 && get.verdict == BST_VERDICT_ALLOW &&
        strcmp(get.rule, "role:v2 via binding:b2") == 0)
        return 2;
    return 0;
}

static int current_version(struct rbac *r)
{
    const struct rbac_policy *p = rbac_acquire(r);
    int v = version_of(p);
    rbac_release(r, p);
    return v;
}

START_TEST(test_rbac_holder_refuses_a_bad_file_and_keeps_the_old_policy)
{
    struct rbac *r = NULL;
    struct bst_err err = {BST_OK, ""};

    alice_init();
    write_policy(broken);
    ck_assert_int_eq(rbac_new(&r, path, known, N_KNOWN, &err), BST_INVALID_ARGUMENT);
    ck_assert_ptr_null(r);
    ck_assert_msg(strstr(err.msg, "rbac.yaml:1:") != NULL, "%s", err.msg);

    write_policy(v1);
    ck_assert_msg(rbac_new(&r, path, known, N_KNOWN, &err) == BST_OK, "%s", err.msg);
    ck_assert_int_eq(current_version(r), 1);

    write_policy(broken);
    ck_assert_int_eq(rbac_reload(r, &err), BST_INVALID_ARGUMENT);
    ck_assert_ptr_nonnull(strstr(err.msg, "unknown permission 'k8s:pods:lst'"));
    ck_assert_int_eq(current_version(r), 1);

    /* Through the registry: one component refused, old policy in force. */
    ck_assert_int_eq(bst_reload_all(), 1);
    ck_assert_int_eq(current_version(r), 1);
    write_policy(v2);
    ck_assert_int_eq(bst_reload_all(), 0);
    ck_assert_int_eq(current_version(r), 2);
    unlink(path);
    ck_assert_int_eq(bst_reload_all(), 1);
    ck_assert_int_eq(current_version(r), 2);

    bst_reload_clear();
    rbac_free(r);
    rbac_free(NULL);
    bst_principal_dispose(&alice);
}
END_TEST

START_TEST(test_rbac_holder_reader_keeps_its_policy_across_swaps)
{
    struct rbac *r = NULL;
    struct bst_err err = {BST_OK, ""};
    const struct rbac_policy *old;

    alice_init();
    write_policy(v1);
    ck_assert_msg(rbac_new(&r, path, known, N_KNOWN, &err) == BST_OK, "%s", err.msg);
    old = rbac_acquire(r);
    write_policy(v2);
    ck_assert_int_eq(rbac_reload(r, &err), BST_OK);
    write_policy(v1);
    ck_assert_int_eq(rbac_reload(r, &err), BST_OK);
    write_policy(v2);
    ck_assert_int_eq(rbac_reload(r, &err), BST_OK);
    /* Swapped three times; the reader's policy is still whole (ASan would see a free). */
    ck_assert_int_eq(version_of(old), 1);
    ck_assert_int_eq(current_version(r), 2);
    rbac_release(r, old);
    bst_reload_clear();
    rbac_free(r);
    bst_principal_dispose(&alice);
}
END_TEST

struct reader {
    pthread_t thread;
    struct rbac *r;
    atomic_int *stop;
    long decisions;
    long failures;
    long seen[3];
};

static void *reader_main(void *arg)
{
    struct reader *rd = arg;
    while (!atomic_load(rd->stop)) {
        const struct rbac_policy *p = rbac_acquire(rd->r);
        int v = version_of(p);
        rbac_release(rd->r, p);
        rd->decisions += 3;
        rd->seen[v]++;
        if (v == 0)
            rd->failures++;
    }
    return NULL;
}

START_TEST(test_rbac_holder_concurrent_decisions_while_reloading_never_fail_or_tear)
{
    enum { READERS = 4, RELOADS = 300 };
    struct reader rd[READERS];
    struct rbac *r = NULL;
    struct bst_err err = {BST_OK, ""};
    atomic_int stop = 0;
    long decisions = 0, failures = 0, seen1 = 0, seen2 = 0;
    int expect = 1, refused = 0;

    alice_init();
    write_policy(v1);
    ck_assert_msg(rbac_new(&r, path, known, N_KNOWN, &err) == BST_OK, "%s", err.msg);
    for (int i = 0; i < READERS; i++) {
        memset(&rd[i], 0, sizeof(rd[i]));
        rd[i].r = r;
        rd[i].stop = &stop;
        ck_assert_int_eq(pthread_create(&rd[i].thread, NULL, reader_main, &rd[i]), 0);
    }
    for (int i = 0; i < RELOADS; i++) {
        int pick = i % 3 == 2 ? 0 : 1 + (i % 2); /* v2, v1... with a broken file every third */
        enum bst_status rv;

        write_policy(pick == 0 ? broken : pick == 1 ? v1 : v2);
        if (i % 10 == 0)
            rv = bst_reload_all() == 0 ? BST_OK : BST_INVALID_ARGUMENT;
        else
            rv = rbac_reload(r, &err);
        if (pick == 0) {
            ck_assert_int_ne(rv, BST_OK);
            refused++;
        } else {
            ck_assert_int_eq(rv, BST_OK);
            expect = pick;
        }
        ck_assert_int_eq(current_version(r), expect);
    }
    atomic_store(&stop, 1);
    for (int i = 0; i < READERS; i++) {
        ck_assert_int_eq(pthread_join(rd[i].thread, NULL), 0);
        decisions += rd[i].decisions;
        failures += rd[i].failures;
        seen1 += rd[i].seen[1];
        seen2 += rd[i].seen[2];
    }
    ck_assert_int_eq(failures, 0);
    ck_assert_int_gt(decisions, 1000);
    ck_assert_int_gt(refused, 50);
    /* Both versions were really in force while the readers ran. */
    ck_assert_int_gt(seen1, 0);
    ck_assert_int_gt(seen2, 0);
    bst_reload_clear();
    rbac_free(r);
    bst_principal_dispose(&alice);
}
END_TEST

int main(void)
{
    Suite *s = suite_create("rbac_holder");
    TCase *tc = tcase_create("holder");
    SRunner *sr;
    int failed;

    bst_log_set_level(BST_LOG_ERROR); /* reload_ok lines would drown the output */
    tcase_set_timeout(tc, 120);
    tcase_add_checked_fixture(tc, setup, teardown);
    tcase_add_test(tc, test_rbac_holder_refuses_a_bad_file_and_keeps_the_old_policy);
    tcase_add_test(tc, test_rbac_holder_reader_keeps_its_policy_across_swaps);
    tcase_add_test(tc, test_rbac_holder_concurrent_decisions_while_reloading_never_fail_or_tear);
    suite_add_tcase(s, tc);
    sr = srunner_create(s);
    srunner_run_all(sr, CK_NORMAL);
    failed = srunner_ntests_failed(sr);
    srunner_free(sr);
    return failed == 0 ? 0 : 1;
}
