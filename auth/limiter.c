/* Failure counters with lockout, shared by every thread of the server (one mutex per limiter),
 * so more workers never mean more attempts. Attempts in flight count against the limit, so a
 * burst of parallel guesses cannot slip in before the first failure is recorded. A lock lasts a
 * fixed time and is never extended by attempts made while it holds (those are refused without
 * being counted); an address that has logged in as a user before is exempt from that user's
 * lock, so an attacker cannot keep the owner out. Memory is bounded: when the table is full,
 * the entry idle longest is forgotten. Keys are hashed with a per-limiter random seed. */
#include "authn_internal.h"

#include <openssl/rand.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define MAX_VIA 4
#define VIA_LEN 64

struct lim_entry {
    struct lim_entry *next;
    char *key;
    int64_t window_start;
    int64_t locked_until; /* 0 = not locked */
    int64_t last_touch;
    int64_t failures;
    int64_t pending;
    char via[MAX_VIA][VIA_LEN];
};

struct limiter {
    pthread_mutex_t lock;
    struct lim_entry **buckets;
    size_t n_buckets;
    size_t count, capacity;
    int64_t max, window, lockout;
    uint64_t seed;
};

enum bst_status limiter_new(struct limiter **out, size_t capacity, int64_t max, int64_t window_ns,
                            int64_t lockout_ns)
{
    struct limiter *l = calloc(1, sizeof(*l));

    *out = NULL;
    if (l == NULL)
        return BST_RESOURCE_EXHAUSTED;
    l->n_buckets = 64;
    while (l->n_buckets < capacity)
        l->n_buckets *= 2;
    l->buckets = calloc(l->n_buckets, sizeof(*l->buckets));
    if (l->buckets == NULL || RAND_bytes((unsigned char *)&l->seed, sizeof(l->seed)) != 1) {
        free(l->buckets);
        free(l);
        return BST_RESOURCE_EXHAUSTED;
    }
    pthread_mutex_init(&l->lock, NULL);
    l->capacity = capacity;
    l->max = max;
    l->window = window_ns;
    l->lockout = lockout_ns;
    *out = l;
    return BST_OK;
}

void limiter_free(struct limiter *l)
{
    if (l == NULL)
        return;
    for (size_t i = 0; i < l->n_buckets; i++) {
        struct lim_entry *e = l->buckets[i];
        while (e != NULL) {
            struct lim_entry *next = e->next;
            free(e->key);
            free(e);
            e = next;
        }
    }
    free(l->buckets);
    pthread_mutex_destroy(&l->lock);
    free(l);
}

static size_t bucket_of(const struct limiter *l, const char *key)
{
    uint64_t h = 1469598103934665603ULL ^ l->seed;
    for (const unsigned char *p = (const unsigned char *)key; *p != '\0'; p++) {
        h ^= *p;
        h *= 1099511628211ULL;
    }
    h ^= h >> 29;
    return (size_t)(h & (l->n_buckets - 1));
}

static struct lim_entry *find(struct limiter *l, const char *key)
{
    for (struct lim_entry *e = l->buckets[bucket_of(l, key)]; e != NULL; e = e->next)
        if (strcmp(e->key, key) == 0)
            return e;
    return NULL;
}

/* Forgets the entry idle longest that has nothing in flight, preferring one that is not
 * locked, so that filling the table with fresh keys does not easily lift a lock. Returns 0, or
 * -1 if none can go. */
static int evict_one(struct limiter *l, int64_t now)
{
    struct lim_entry **victim = NULL;
    int victim_locked = 1;
    for (size_t i = 0; i < l->n_buckets; i++) {
        for (struct lim_entry **pp = &l->buckets[i]; *pp != NULL; pp = &(*pp)->next) {
            int locked = (*pp)->locked_until > now;
            if ((*pp)->pending != 0)
                continue;
            if (victim == NULL || (victim_locked && !locked) ||
                (locked == victim_locked && (*pp)->last_touch < (*victim)->last_touch)) {
                victim = pp;
                victim_locked = locked;
            }
        }
    }
    if (victim == NULL)
        return -1;
    struct lim_entry *e = *victim;
    *victim = e->next;
    free(e->key);
    free(e);
    l->count--;
    return 0;
}

static struct lim_entry *find_or_add(struct limiter *l, const char *key, int64_t now)
{
    struct lim_entry *e = find(l, key);
    size_t b;

    if (e != NULL)
        return e;
    if (l->count >= l->capacity && evict_one(l, now) != 0)
        return NULL;
    e = calloc(1, sizeof(*e));
    if (e == NULL || (e->key = strdup(key)) == NULL) {
        free(e);
        return NULL;
    }
    e->window_start = now;
    b = bucket_of(l, key);
    e->next = l->buckets[b];
    l->buckets[b] = e;
    l->count++;
    return e;
}

static void refresh(const struct limiter *l, struct lim_entry *e, int64_t now)
{
    if (e->locked_until != 0 && now >= e->locked_until) {
        e->locked_until = 0;
        e->failures = 0;
        e->window_start = now;
    }
    if (e->locked_until == 0 && now - e->window_start > l->window) {
        e->failures = 0;
        e->window_start = now;
    }
}

static int known_via(const struct lim_entry *e, const char *via)
{
    if (via == NULL || via[0] == '\0')
        return 0;
    for (int i = 0; i < MAX_VIA; i++)
        if (e->via[i][0] != '\0' && strncmp(e->via[i], via, VIA_LEN) == 0)
            return 1;
    return 0;
}

int limiter_admit(struct limiter *l, const char *key, const char *via, int64_t now_ns,
                  int64_t *retry_s)
{
    struct lim_entry *e;
    int ok = 0, trusted;

    *retry_s = 0;
    pthread_mutex_lock(&l->lock);
    e = find_or_add(l, key, now_ns);
    if (e == NULL) {
        *retry_s = 1; /* table full of attempts in flight: refuse rather than forget counts */
        goto done;
    }
    refresh(l, e, now_ns);
    e->last_touch = now_ns;
    trusted = known_via(e, via);
    if (!trusted && e->locked_until > now_ns) {
        *retry_s = (e->locked_until - now_ns + 999999999) / 1000000000;
        goto done;
    }
    if (!trusted && e->failures + e->pending >= l->max) {
        *retry_s = 1;
        goto done;
    }
    e->pending++;
    ok = 1;
done:
    pthread_mutex_unlock(&l->lock);
    return ok;
}

void limiter_finish(struct limiter *l, const char *key, const char *via, int success, int remember,
                    int64_t now_ns)
{
    struct lim_entry *e;

    pthread_mutex_lock(&l->lock);
    e = find(l, key);
    if (e == NULL)
        goto done; /* cannot happen: entries with attempts in flight are never evicted */
    if (e->pending > 0)
        e->pending--;
    e->last_touch = now_ns;
    refresh(l, e, now_ns);
    if (success) {
        e->failures = 0;
        if (remember && via != NULL && via[0] != '\0' && !known_via(e, via)) {
            memmove(e->via[1], e->via[0], (MAX_VIA - 1) * VIA_LEN);
            snprintf(e->via[0], VIA_LEN, "%s", via);
        }
        goto done;
    }
    e->failures++;
    if (e->failures >= l->max && e->locked_until <= now_ns)
        e->locked_until = now_ns + l->lockout;
done:
    pthread_mutex_unlock(&l->lock);
}

void limiter_cancel(struct limiter *l, const char *key)
{
    struct lim_entry *e;

    pthread_mutex_lock(&l->lock);
    e = find(l, key);
    if (e != NULL && e->pending > 0)
        e->pending--;
    pthread_mutex_unlock(&l->lock);
}
