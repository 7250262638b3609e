/* A small fixed pool of threads with a bounded FIFO queue, for scrypt: it costs tens of MiB and
 * milliseconds, so it must never run on an event loop, and the number running at once (memory)
 * and waiting (latency) must both be capped. */
#include "authn_internal.h"

#include <pthread.h>
#include <stdlib.h>

struct pool {
    pthread_mutex_t lock;
    pthread_cond_t wake;
    pthread_t *threads;
    size_t n_threads;
    struct pool_job *head, *tail;
    size_t queued, cap;
    int stopping;
};

static void *worker(void *arg)
{
    struct pool *p = arg;

    for (;;) {
        struct pool_job *job;
        pthread_mutex_lock(&p->lock);
        while (p->head == NULL && !p->stopping)
            pthread_cond_wait(&p->wake, &p->lock);
        if (p->head == NULL) {
            pthread_mutex_unlock(&p->lock);
            return NULL;
        }
        job = p->head;
        p->head = job->next;
        if (p->head == NULL)
            p->tail = NULL;
        p->queued--;
        pthread_mutex_unlock(&p->lock);
        job->run(job);
    }
}

enum bst_status pool_new(struct pool **out, size_t threads, size_t queue_cap)
{
    struct pool *p = calloc(1, sizeof(*p));

    *out = NULL;
    if (p == NULL)
        return BST_RESOURCE_EXHAUSTED;
    p->threads = calloc(threads, sizeof(*p->threads));
    if (p->threads == NULL) {
        free(p);
        return BST_RESOURCE_EXHAUSTED;
    }
    pthread_mutex_init(&p->lock, NULL);
    pthread_cond_init(&p->wake, NULL);
    p->cap = queue_cap;
    for (size_t i = 0; i < threads; i++) {
        if (pthread_create(&p->threads[i], NULL, worker, p) != 0) {
            pool_free(p);
            return BST_INTERNAL;
        }
        p->n_threads++;
    }
    *out = p;
    return BST_OK;
}

enum bst_status pool_submit(struct pool *p, struct pool_job *job)
{
    enum bst_status rv = BST_OK;

    pthread_mutex_lock(&p->lock);
    if (p->stopping) {
        rv = BST_UNAVAILABLE;
    } else if (p->queued >= p->cap) {
        rv = BST_RESOURCE_EXHAUSTED;
    } else {
        job->next = NULL;
        if (p->tail != NULL)
            p->tail->next = job;
        else
            p->head = job;
        p->tail = job;
        p->queued++;
        pthread_cond_signal(&p->wake);
    }
    pthread_mutex_unlock(&p->lock);
    return rv;
}

void pool_free(struct pool *p)
{
    struct pool_job *job;

    if (p == NULL)
        return;
    pthread_mutex_lock(&p->lock);
    p->stopping = 1;
    job = p->head;
    p->head = p->tail = NULL;
    p->queued = 0;
    pthread_cond_broadcast(&p->wake);
    pthread_mutex_unlock(&p->lock);
    while (job != NULL) {
        struct pool_job *next = job->next;
        job->cancel(job);
        job = next;
    }
    for (size_t i = 0; i < p->n_threads; i++)
        pthread_join(p->threads[i], NULL);
    pthread_cond_destroy(&p->wake);
    pthread_mutex_destroy(&p->lock);
    free(p->threads);
    free(p);
}
