/* Unit tests of the call object and the stage chain (server/call.c). The host here is a test
 * double of the HTTP/2 stream: post() queues the call for the "loop" (the test's main thread,
 * woken through a condition variable) exactly as the worker's wake event does. */
#include "call.h"

#include <check.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>

static const struct call_method test_method = {"/test.v1.T/M", NULL, NULL, 0, NULL, NULL, 0};

struct host {
    pthread_mutex_t lock;
    pthread_cond_t cond;
    struct call *queued;
    int finishes;
    enum bst_status finish_status;
    char finish_message[256];
};

static struct host H;
static int observed;
static enum bst_status observed_status;
static char trace[64];
static pthread_t loop_thread;
static int ran_on_loop;

static void host_post(struct call *c)
{
    pthread_mutex_lock(&H.lock);
    H.queued = c;
    pthread_cond_signal(&H.cond);
    pthread_mutex_unlock(&H.lock);
}

static void host_finish(struct call *c, enum bst_status status, const char *message)
{
    (void)c;
    H.finishes++;
    H.finish_status = status;
    snprintf(H.finish_message, sizeof(H.finish_message), "%s", message);
}

static const struct call_host_ops host_ops = {host_post, host_finish};

static void observer(const struct call *c)
{
    observed++;
    observed_status = c->status;
}

/* Runs the queued call on the loop thread, like the worker's wake callback. */
static void loop_run_queued(void)
{
    struct call *c;
    pthread_mutex_lock(&H.lock);
    while (H.queued == NULL)
        pthread_cond_wait(&H.cond, &H.lock);
    c = H.queued;
    H.queued = NULL;
    pthread_mutex_unlock(&H.lock);
    call_continue(c);
    call_unref(c);
}

static void setup(void)
{
    static int once;
    memset(&H, 0, sizeof(H));
    pthread_mutex_init(&H.lock, NULL);
    pthread_cond_init(&H.cond, NULL);
    observed = 0;
    observed_status = BST_UNKNOWN;
    trace[0] = '\0';
    loop_thread = pthread_self();
    ran_on_loop = 1;
    if (!once) {
        call_add_observer(observer);
        once = 1;
    }
}

static void mark(const char *s)
{
    strncat(trace, s, sizeof(trace) - strlen(trace) - 1);
    if (!pthread_equal(pthread_self(), loop_thread))
        ran_on_loop = 0;
}

static enum call_next st_a(struct call *c)
{
    (void)c;
    mark("a");
    return CALL_NEXT;
}

static enum call_next st_b(struct call *c)
{
    (void)c;
    mark("b");
    return CALL_NEXT;
}

static enum call_next st_fail(struct call *c)
{
    mark("F");
    return call_fail(c, BST_PERMISSION_DENIED, "denied by %s", "test");
}

/* A stage that finishes on another thread after `delay_ms`. */
static int delay_ms;
static void *worker_thread(void *arg)
{
    struct call *c = arg;
    struct timespec ts = {0, delay_ms * 1000000L};
    nanosleep(&ts, NULL);
    /* The stage owns the call's fields while pending: it may write them. */
    if (!atomic_load(&c->cancelled))
        snprintf(c->message, sizeof(c->message), "%s", "");
    call_resume(c, CALL_NEXT);
    return NULL;
}

static enum call_next st_async(struct call *c)
{
    pthread_t t;
    mark("p");
    ck_assert_int_eq(pthread_create(&t, NULL, worker_thread, c), 0);
    pthread_detach(t);
    return CALL_PENDING;
}

static struct call *new_call(const struct call_stage *stages, size_t n)
{
    struct call *c;
    ck_assert_int_eq(call_new(&c, &test_method, &host_ops, NULL, 1 << 20), BST_OK);
    call_set_stages(c, stages, n);
    return c;
}

START_TEST(test_call_chain_runs_stages_in_order_and_finishes_once)
{
    static const struct call_stage st[] = {{"a", st_a}, {"b", st_b}};
    struct call *c = new_call(st, 2);
    call_continue(c);
    ck_assert_str_eq(trace, "ab");
    ck_assert_int_eq(H.finishes, 1);
    ck_assert_int_eq(H.finish_status, BST_OK);
    ck_assert_int_eq(observed, 1);
    call_continue(c); /* a finished call never runs again */
    ck_assert_int_eq(H.finishes, 1);
    ck_assert_int_eq(observed, 1);
    call_unref(c);
}
END_TEST

START_TEST(test_call_failing_stage_stops_the_chain)
{
    static const struct call_stage st[] = {{"a", st_a}, {"F", st_fail}, {"b", st_b}};
    struct call *c = new_call(st, 3);
    call_continue(c);
    ck_assert_str_eq(trace, "aF");
    ck_assert_int_eq(H.finish_status, BST_PERMISSION_DENIED);
    ck_assert_str_eq(H.finish_message, "denied by test");
    ck_assert_int_eq(observed, 1);
    ck_assert_int_eq(observed_status, BST_PERMISSION_DENIED);
    call_unref(c);
}
END_TEST

START_TEST(test_call_pending_stage_resumes_on_the_loop_thread)
{
    static const struct call_stage st[] = {{"a", st_a}, {"p", st_async}, {"b", st_b}};
    struct call *c = new_call(st, 3);
    delay_ms = 20;
    call_continue(c);
    ck_assert_str_eq(trace, "ap");
    ck_assert_int_eq(H.finishes, 0); /* nothing answered while the stage runs elsewhere */
    ck_assert_int_eq(observed, 0);
    /* The host may drop its reference (stream gone) while the stage is pending. */
    call_unref(c);
    loop_run_queued();
    ck_assert_str_eq(trace, "apb");
    ck_assert(ran_on_loop);
    ck_assert_int_eq(H.finishes, 1);
    ck_assert_int_eq(observed, 1);
    ck_assert_int_eq(observed_status, BST_OK);
}
END_TEST

START_TEST(test_call_abort_while_pending_answers_now_and_records_once_later)
{
    static const struct call_stage st[] = {{"p", st_async}, {"b", st_b}};
    struct call *c = new_call(st, 2);
    delay_ms = 50;
    call_continue(c);
    call_abort(c, BST_DEADLINE_EXCEEDED, "deadline exceeded");
    ck_assert_int_eq(H.finishes, 1); /* the peer hears at once */
    ck_assert_int_eq(H.finish_status, BST_DEADLINE_EXCEEDED);
    ck_assert_int_eq(observed, 0); /* the record waits for the stage to end */
    loop_run_queued();
    ck_assert_str_eq(trace, "p"); /* later stages never run for a cancelled call */
    ck_assert_int_eq(H.finishes, 1);
    ck_assert_int_eq(observed, 1);
    ck_assert_int_eq(observed_status, BST_DEADLINE_EXCEEDED);
    ck_assert_str_eq(c->message, "deadline exceeded");
    call_unref(c);
}
END_TEST

START_TEST(test_call_abort_when_idle_finishes_immediately)
{
    static const struct call_stage st[] = {{"a", st_a}};
    struct call *c = new_call(st, 1);
    call_abort(c, BST_CANCELLED, "stream reset");
    ck_assert_int_eq(H.finishes, 1);
    ck_assert_int_eq(observed, 1);
    ck_assert_int_eq(observed_status, BST_CANCELLED);
    call_continue(c);
    ck_assert_str_eq(trace, "");
    call_unref(c);
}
END_TEST

START_TEST(test_call_arena_is_capped_and_zeroed)
{
    static const struct call_stage st[] = {{"a", st_a}};
    struct call *c = new_call(st, 1);
    unsigned char *p = call_alloc(c, 100);
    size_t got = 0;
    ck_assert_ptr_nonnull(p);
    for (int i = 0; i < 100; i++)
        ck_assert_int_eq(p[i], 0);
    ck_assert_ptr_null(call_alloc(c, CALL_ARENA_CAP + 1));
    ck_assert_ptr_null(call_alloc(c, SIZE_MAX));
    while (call_alloc(c, 1 << 20) != NULL)
        got += 1 << 20;
    ck_assert_uint_le(got, CALL_ARENA_CAP);
    ck_assert_uint_ge(got, CALL_ARENA_CAP - (2u << 20));
    while (call_strdup(c, "small strings too") != NULL)
        ;
    ck_assert_uint_le(c->arena_used, CALL_ARENA_CAP);
    call_unref(c);
}
END_TEST

START_TEST(test_call_ids_are_unique_hex)
{
    static const struct call_stage st[] = {{"a", st_a}};
    struct call *a = new_call(st, 1), *b = new_call(st, 1);
    ck_assert_uint_eq(strlen(a->id.hex), 32);
    ck_assert_str_ne(a->id.hex, b->id.hex);
    call_unref(a);
    call_unref(b);
}
END_TEST

/* A recorder standing in for audit: synchronous, asynchronous (blocking mode), or failing. */
static int recorded;
static int recorder_mode; /* 0 sync, 1 async ok, 2 async failure */
static enum bst_status recorded_status;
static int finishes_when_recorded;

static void *recorder_thread(void *arg)
{
    struct call *c = arg;
    struct timespec ts = {0, 20 * 1000000L};
    nanosleep(&ts, NULL);
    if (recorder_mode == 2)
        call_fail(c, BST_UNAVAILABLE, "audit log unavailable");
    call_resume(c, CALL_NEXT);
    return NULL;
}

static enum call_next test_recorder(struct call *c)
{
    pthread_t t;
    recorded++;
    recorded_status = c->status;
    finishes_when_recorded = H.finishes;
    if (recorder_mode == 0)
        return CALL_NEXT;
    ck_assert_int_eq(pthread_create(&t, NULL, recorder_thread, c), 0);
    pthread_detach(t);
    return CALL_PENDING;
}

static void recorder_setup(int mode)
{
    recorded = 0;
    recorder_mode = mode;
    call_set_recorder(test_recorder);
}

static void recorder_teardown(void)
{
    call_set_recorder(NULL);
}

START_TEST(test_call_recorder_runs_once_before_the_response)
{
    static const struct call_stage st[] = {{"a", st_a}, {"F", st_fail}};
    struct call *c;
    recorder_setup(0);
    c = new_call(st, 2);
    call_continue(c);
    ck_assert_int_eq(recorded, 1);
    ck_assert_int_eq(recorded_status, BST_PERMISSION_DENIED); /* denials are recorded too */
    ck_assert_int_eq(finishes_when_recorded, 0);               /* before the peer hears */
    ck_assert_int_eq(H.finishes, 1);
    ck_assert_int_eq(observed, 1);
    call_unref(c);
    recorder_teardown();
}
END_TEST

START_TEST(test_call_response_waits_for_a_pending_recorder)
{
    static const struct call_stage st[] = {{"a", st_a}};
    struct call *c;
    recorder_setup(1);
    c = new_call(st, 1);
    call_continue(c);
    ck_assert_int_eq(recorded, 1);
    ck_assert_int_eq(H.finishes, 0); /* nothing sent until the record is durable */
    /* A deadline or a reset while recording changes nothing: the answer follows the record. */
    call_abort(c, BST_DEADLINE_EXCEEDED, "deadline exceeded");
    ck_assert_int_eq(H.finishes, 0);
    call_unref(c); /* the stream goes away meanwhile */
    loop_run_queued();
    ck_assert_int_eq(H.finishes, 1);
    ck_assert_int_eq(H.finish_status, BST_OK);
    ck_assert_int_eq(observed, 1);
    ck_assert_int_eq(recorded, 1);
    recorder_teardown();
}
END_TEST

START_TEST(test_call_recorder_failure_fails_the_call_closed)
{
    static const struct call_stage st[] = {{"a", st_a}};
    struct call *c;
    recorder_setup(2);
    c = new_call(st, 1);
    call_continue(c);
    loop_run_queued();
    ck_assert_int_eq(H.finishes, 1);
    ck_assert_int_eq(H.finish_status, BST_UNAVAILABLE);
    ck_assert_int_eq(observed_status, BST_UNAVAILABLE);
    call_unref(c);
    recorder_teardown();
}
END_TEST

START_TEST(test_call_aborted_during_a_pending_stage_is_recorded_once_when_it_ends)
{
    static const struct call_stage st[] = {{"p", st_async}, {"b", st_b}};
    struct call *c;
    recorder_setup(0);
    delay_ms = 30;
    c = new_call(st, 2);
    call_continue(c);
    call_abort(c, BST_DEADLINE_EXCEEDED, "deadline exceeded");
    ck_assert_int_eq(H.finishes, 1);
    ck_assert_int_eq(recorded, 0);
    loop_run_queued();
    ck_assert_int_eq(recorded, 1);
    ck_assert_int_eq(recorded_status, BST_DEADLINE_EXCEEDED);
    ck_assert_int_eq(H.finishes, 1);
    call_unref(c);
    recorder_teardown();
}
END_TEST

START_TEST(test_call_metadata_lookup)
{
    static const struct call_stage st[] = {{"a", st_a}};
    struct call *c = new_call(st, 1);
    struct call_md md[2] = {{"x-api-key", "k1", 2}, {"authorization", "Bearer t", 8}};
    c->md = md;
    c->n_md = 2;
    ck_assert_str_eq(call_md_get(c, "authorization")->value, "Bearer t");
    ck_assert_ptr_null(call_md_get(c, "cookie"));
    c->md = NULL;
    c->n_md = 0;
    call_unref(c);
}
END_TEST

int main(void)
{
    Suite *s = suite_create("call");
    TCase *tc = tcase_create("call");
    SRunner *sr;
    int failed;

    tcase_add_checked_fixture(tc, setup, NULL);
    tcase_add_test(tc, test_call_chain_runs_stages_in_order_and_finishes_once);
    tcase_add_test(tc, test_call_failing_stage_stops_the_chain);
    tcase_add_test(tc, test_call_pending_stage_resumes_on_the_loop_thread);
    tcase_add_test(tc, test_call_abort_while_pending_answers_now_and_records_once_later);
    tcase_add_test(tc, test_call_abort_when_idle_finishes_immediately);
    tcase_add_test(tc, test_call_arena_is_capped_and_zeroed);
    tcase_add_test(tc, test_call_ids_are_unique_hex);
    tcase_add_test(tc, test_call_metadata_lookup);
    tcase_add_test(tc, test_call_recorder_runs_once_before_the_response);
    tcase_add_test(tc, test_call_response_waits_for_a_pending_recorder);
    tcase_add_test(tc, test_call_recorder_failure_fails_the_call_closed);
    tcase_add_test(tc, test_call_aborted_during_a_pending_stage_is_recorded_once_when_it_ends);
    suite_add_tcase(s, tc);
    sr = srunner_create(s);
    srunner_run_all(sr, CK_NORMAL);
    failed = srunner_ntests_failed(sr);
    srunner_free(sr);
    return failed == 0 ? 0 : 1;
}
