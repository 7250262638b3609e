/* Tests for common/reload.c: the reload registry (order, failure counting, the failing component
 * keeping its snapshot) and the refcounted snapshot holder, including readers racing a writer. */
#include "reload.h"

#include <check.h>
#include <pthread.h>
#include <sched.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* ---- Snapshots used by the tests ------------------------------------------------------------ */

#define SNAP_MAGIC 0x5eed5eedu

struct snapshot {
    unsigned magic; /* cleared on destroy, so a use after destroy is visible even without ASan */
    int version;
};

static atomic_int destroyed;

static struct snapshot *snapshot_new(int version)
{
    struct snapshot *s = malloc(sizeof(*s));
    ck_assert_ptr_nonnull(s);
    s->magic = SNAP_MAGIC;
    s->version = version;
    return s;
}

static void snapshot_destroy(void *obj)
{
    struct snapshot *s = obj;
    ck_assert_uint_eq(s->magic, SNAP_MAGIC); /* destroyed once, never twice */
    s->magic = 0;
    free(s);
    atomic_fetch_add(&destroyed, 1);
}

/* ---- Registry ------------------------------------------------------------------------------- */

/* A component whose reload builds version+1, or refuses when `refuse` is set. */
struct component {
    const char *name;
    int refuse;
    struct bst_snap *snap;
    int next_version;
};

static const char *call_order[16];
static int n_calls;

static enum bst_status component_reload(void *ctx, struct bst_err *err)
{
    struct component *c = ctx;

    ck_assert_int_lt(n_calls, 16);
    call_order[n_calls++] = c->name;
    if (c->refuse)
        return bst_errf(err, BST_INVALID_ARGUMENT, "%s: line 3: unknown key", c->name);
    bst_snap_swap(c->snap, snapshot_new(c->next_version++));
    return BST_OK;
}

static int current_version(struct component *c)
{
    struct snapshot *s = bst_snap_get(c->snap);
    int v = s->version;
    bst_snap_put(c->snap, s);
    return v;
}

static void registry_setup(void)
{
    bst_reload_clear();
    n_calls = 0;
    atomic_store(&destroyed, 0);
}

START_TEST(test_reload_calls_every_component_in_order_and_counts_failures)
{
    struct component tls = {"tls", 0, NULL, 2};
    struct component policy = {"policy", 1, NULL, 2};
    struct component users = {"users", 0, NULL, 2};
    struct component *all[] = {&tls, &policy, &users};

    for (int i = 0; i < 3; i++) {
        all[i]->snap = bst_snap_new(snapshot_new(1), snapshot_destroy);
        ck_assert_ptr_nonnull(all[i]->snap);
        ck_assert_int_eq(bst_reload_register(all[i]->name, component_reload, all[i]), BST_OK);
    }

    /* The failure of "policy" does not stop "users" after it. */
    ck_assert_int_eq(bst_reload_all(), 1);
    ck_assert_int_eq(n_calls, 3);
    ck_assert_str_eq(call_order[0], "tls");
    ck_assert_str_eq(call_order[1], "policy");
    ck_assert_str_eq(call_order[2], "users");
    ck_assert_int_eq(current_version(&tls), 2);
    ck_assert_int_eq(current_version(&policy), 1); /* kept the previous snapshot */
    ck_assert_int_eq(current_version(&users), 2);

    /* Once its input is fixed the component reloads like the others. */
    policy.refuse = 1;
    users.refuse = 1;
    ck_assert_int_eq(bst_reload_all(), 2);
    ck_assert_int_eq(current_version(&users), 2);
    policy.refuse = 0;
    users.refuse = 0;
    ck_assert_int_eq(bst_reload_all(), 0);
    ck_assert_int_eq(current_version(&tls), 4);
    ck_assert_int_eq(current_version(&policy), 2);
    ck_assert_int_eq(current_version(&users), 3);

    for (int i = 0; i < 3; i++)
        bst_snap_free(all[i]->snap);
    /* tls: 1,2,3,4; policy: 1,2; users: 1,2,3 — every one destroyed exactly once. */
    ck_assert_int_eq(atomic_load(&destroyed), 9);
    bst_reload_clear();
}
END_TEST

START_TEST(test_reload_clear_removes_every_registration)
{
    struct component c = {"tls", 0, NULL, 2};

    c.snap = bst_snap_new(snapshot_new(1), snapshot_destroy);
    ck_assert_int_eq(bst_reload_register(c.name, component_reload, &c), BST_OK);
    bst_reload_clear();
    ck_assert_int_eq(bst_reload_all(), 0);
    ck_assert_int_eq(n_calls, 0);
    bst_snap_free(c.snap);
}
END_TEST

static int n_refusals;

static enum bst_status refuse_reload(void *ctx, struct bst_err *err)
{
    n_refusals++;
    return bst_errf(err, BST_FAILED_PRECONDITION, "component %d not ready", *(int *)ctx);
}

START_TEST(test_reload_registry_full_is_resource_exhausted)
{
    static int ids[200];
    int registered = 0;
    enum bst_status rv = BST_OK;

    for (int i = 0; i < 200; i++) {
        ids[i] = i;
        rv = bst_reload_register("component", refuse_reload, &ids[i]);
        if (rv != BST_OK)
            break;
        registered++;
    }
    ck_assert_int_eq(rv, BST_RESOURCE_EXHAUSTED);
    ck_assert_int_ge(registered, 8); /* room for every component we have, and then some */
    /* A full registry still reloads everything it holds. */
    n_refusals = 0;
    ck_assert_int_eq(bst_reload_all(), registered);
    ck_assert_int_eq(n_refusals, registered);
    bst_reload_clear();
    ck_assert_int_eq(bst_reload_register("component", refuse_reload, &ids[0]), BST_OK);
    bst_reload_clear();
}
END_TEST

/* ---- Snapshot holder ------------------------------------------------------------------------ */

START_TEST(test_snap_get_returns_current_and_swap_replaces_it)
{
    struct bst_snap *s = bst_snap_new(snapshot_new(1), snapshot_destroy);
    struct snapshot *a, *b;

    atomic_store(&destroyed, 0);
    a = bst_snap_get(s);
    ck_assert_int_eq(a->version, 1);
    bst_snap_put(s, a);
    ck_assert_int_eq(atomic_load(&destroyed), 0); /* the holder still references it */

    bst_snap_swap(s, snapshot_new(2));
    ck_assert_int_eq(atomic_load(&destroyed), 1); /* no reader held version 1 */
    b = bst_snap_get(s);
    ck_assert_int_eq(b->version, 2);
    bst_snap_put(s, b);
    bst_snap_put(s, NULL); /* no-op */
    bst_snap_free(s);
    ck_assert_int_eq(atomic_load(&destroyed), 2);
    bst_snap_free(NULL);
}
END_TEST

START_TEST(test_snap_reader_keeps_old_snapshot_valid_across_swaps)
{
    struct bst_snap *s = bst_snap_new(snapshot_new(1), snapshot_destroy);
    struct snapshot *old, *old2, *mid;

    atomic_store(&destroyed, 0);
    old = bst_snap_get(s);
    old2 = bst_snap_get(s); /* two references from two readers */
    bst_snap_swap(s, snapshot_new(2));
    mid = bst_snap_get(s);
    bst_snap_swap(s, snapshot_new(3));

    /* Both retired snapshots are still readable. */
    ck_assert_int_eq(atomic_load(&destroyed), 0);
    ck_assert_uint_eq(old->magic, SNAP_MAGIC);
    ck_assert_int_eq(old->version, 1);
    ck_assert_int_eq(mid->version, 2);

    bst_snap_put(s, old);
    ck_assert_int_eq(atomic_load(&destroyed), 0); /* old2 still holds version 1 */
    bst_snap_put(s, mid);
    ck_assert_int_eq(atomic_load(&destroyed), 1); /* version 2 went with its last reader */
    ck_assert_int_eq(old2->version, 1);
    bst_snap_put(s, old2);
    ck_assert_int_eq(atomic_load(&destroyed), 2);

    mid = bst_snap_get(s);
    ck_assert_int_eq(mid->version, 3);
    bst_snap_put(s, mid);
    bst_snap_free(s);
    ck_assert_int_eq(atomic_load(&destroyed), 3);
}
END_TEST

#define READERS 4
#define SWAPS 1000

struct reader {
    struct bst_snap *snap;
    atomic_int *stop;
    atomic_int *started; /* readers that have done their first read */
    long reads;
    int bad; /* a snapshot seen destroyed, or a version going backwards */
};

static void *reader_main(void *arg)
{
    struct reader *r = arg;
    int last = 0;

    while (!atomic_load(r->stop)) {
        struct snapshot *s = bst_snap_get(r->snap);
        if (s->magic != SNAP_MAGIC || s->version < last)
            r->bad = 1;
        last = s->version;
        if (r->reads++ == 0)
            atomic_fetch_add(r->started, 1);
        bst_snap_put(r->snap, s);
    }
    return NULL;
}

START_TEST(test_snap_survives_readers_racing_a_thousand_swaps)
{
    struct bst_snap *s = bst_snap_new(snapshot_new(0), snapshot_destroy);
    struct reader r[READERS];
    pthread_t t[READERS];
    atomic_int stop = 0, started = 0;

    atomic_store(&destroyed, 0);
    for (int i = 0; i < READERS; i++) {
        r[i] = (struct reader){s, &stop, &started, 0, 0};
        ck_assert_int_eq(pthread_create(&t[i], NULL, reader_main, &r[i]), 0);
    }
    /* Swap only once every reader is in its loop, and let them run between swaps, so that
     * the swaps really race the reads. */
    while (atomic_load(&started) < READERS)
        sched_yield();
    for (int v = 1; v <= SWAPS; v++) {
        bst_snap_swap(s, snapshot_new(v));
        if (v % 8 == 0)
            sched_yield();
    }
    atomic_store(&stop, 1);
    for (int i = 0; i < READERS; i++) {
        ck_assert_int_eq(pthread_join(t[i], NULL), 0);
        ck_assert_int_eq(r[i].bad, 0);
        ck_assert_int_gt(r[i].reads, 0);
    }
    /* Every replaced snapshot is gone once its readers are; the current one is not. */
    ck_assert_int_eq(atomic_load(&destroyed), SWAPS);
    bst_snap_free(s);
    ck_assert_int_eq(atomic_load(&destroyed), SWAPS + 1);
}
END_TEST

static Suite *reload_suite(void)
{
    Suite *s = suite_create("reload");
    TCase *tc = tcase_create("registry");
    tcase_add_checked_fixture(tc, registry_setup, NULL);
    tcase_add_test(tc, test_reload_calls_every_component_in_order_and_counts_failures);
    tcase_add_test(tc, test_reload_clear_removes_every_registration);
    tcase_add_test(tc, test_reload_registry_full_is_resource_exhausted);
    suite_add_tcase(s, tc);

    tc = tcase_create("snap");
    tcase_set_timeout(tc, 60);
    tcase_add_test(tc, test_snap_get_returns_current_and_swap_replaces_it);
    tcase_add_test(tc, test_snap_reader_keeps_old_snapshot_valid_across_swaps);
    tcase_add_test(tc, test_snap_survives_readers_racing_a_thousand_swaps);
    suite_add_tcase(s, tc);
    return s;
}

int main(void)
{
    SRunner *sr = srunner_create(reload_suite());
    int failed;

    srunner_run_all(sr, CK_NORMAL);
    failed = srunner_ntests_failed(sr);
    srunner_free(sr);
    return failed == 0 ? EXIT_SUCCESS : EXIT_FAILURE;
}
