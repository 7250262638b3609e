/* Reload registry and refcounted snapshot holders. */
#include "reload.h"
#include "log.h"

#include <pthread.h>
#include <stdlib.h>
#include <string.h>

#define MAX_COMPONENTS 32

struct entry {
    const char *name;
    bst_reload_fn fn;
    void *ctx;
};

static struct entry entries[MAX_COMPONENTS];
static int n_entries;
static pthread_mutex_t reg_lock = PTHREAD_MUTEX_INITIALIZER;

enum bst_status bst_reload_register(const char *name, bst_reload_fn fn, void *ctx)
{
    enum bst_status rv = BST_OK;
    pthread_mutex_lock(&reg_lock);
    if (n_entries == MAX_COMPONENTS) {
        rv = BST_RESOURCE_EXHAUSTED;
    } else {
        entries[n_entries].name = name;
        entries[n_entries].fn = fn;
        entries[n_entries].ctx = ctx;
        n_entries++;
    }
    pthread_mutex_unlock(&reg_lock);
    return rv;
}

void bst_reload_clear(void)
{
    pthread_mutex_lock(&reg_lock);
    n_entries = 0;
    pthread_mutex_unlock(&reg_lock);
}

int bst_reload_all(void)
{
    int failed = 0;
    /* Serialises reloads (two SIGHUPs in a row) as well as registration. */
    pthread_mutex_lock(&reg_lock);
    for (int i = 0; i < n_entries; i++) {
        struct bst_err err = {BST_OK, ""};
        enum bst_status rv = entries[i].fn(entries[i].ctx, &err);
        if (rv == BST_OK) {
            bst_log(BST_LOG_INFO, "reload_ok", "component", entries[i].name, NULL);
        } else {
            failed++;
            bst_log(BST_LOG_ERROR, "reload_refused", "component", entries[i].name, "status",
                    bst_status_name(rv), "error", err.msg, "kept", "previous snapshot", NULL);
        }
    }
    pthread_mutex_unlock(&reg_lock);
    return failed;
}

struct node {
    void *obj;
    long refs;
    struct node *next;
};

struct bst_snap {
    pthread_mutex_t lock;
    struct node *current;
    struct node *retired; /* swapped out but still referenced by readers */
    void (*destroy)(void *obj);
};

struct bst_snap *bst_snap_new(void *first, void (*destroy)(void *obj))
{
    struct bst_snap *s = calloc(1, sizeof(*s));
    struct node *n = calloc(1, sizeof(*n));
    if (s == NULL || n == NULL) {
        free(s);
        free(n);
        return NULL;
    }
    pthread_mutex_init(&s->lock, NULL);
    n->obj = first;
    n->refs = 1; /* the holder's own reference */
    s->current = n;
    s->destroy = destroy;
    return s;
}

void *bst_snap_get(struct bst_snap *s)
{
    void *obj;
    pthread_mutex_lock(&s->lock);
    s->current->refs++;
    obj = s->current->obj;
    pthread_mutex_unlock(&s->lock);
    return obj;
}

/* Called with the lock held; returns the object to destroy (outside the lock) or NULL. */
static void *unref_locked(struct bst_snap *s, struct node *n)
{
    void *obj = NULL;
    if (--n->refs > 0)
        return NULL;
    if (n != s->current) {
        struct node **pp = &s->retired;
        while (*pp != NULL && *pp != n)
            pp = &(*pp)->next;
        if (*pp == n)
            *pp = n->next;
    }
    obj = n->obj;
    free(n);
    return obj;
}

void bst_snap_put(struct bst_snap *s, void *obj)
{
    struct node *n;
    void *dead = NULL;

    if (obj == NULL)
        return;
    pthread_mutex_lock(&s->lock);
    n = s->current;
    if (n->obj != obj) {
        for (n = s->retired; n != NULL && n->obj != obj; n = n->next)
            ;
    }
    if (n != NULL)
        dead = unref_locked(s, n);
    pthread_mutex_unlock(&s->lock);
    if (n == NULL)
        abort(); /* a reference we never handed out: a bug of ours */
    if (dead != NULL)
        s->destroy(dead);
}

void bst_snap_swap(struct bst_snap *s, void *next)
{
    struct node *n = calloc(1, sizeof(*n));
    struct node *old;
    void *dead;

    if (n == NULL)
        abort(); /* a few bytes; the caller has already built a whole snapshot */
    n->obj = next;
    n->refs = 1;
    pthread_mutex_lock(&s->lock);
    old = s->current;
    s->current = n;
    old->next = s->retired;
    s->retired = old;
    dead = unref_locked(s, old);
    pthread_mutex_unlock(&s->lock);
    if (dead != NULL)
        s->destroy(dead);
}

void bst_snap_free(struct bst_snap *s)
{
    if (s == NULL)
        return;
    s->destroy(s->current->obj);
    free(s->current);
    while (s->retired != NULL) {
        struct node *n = s->retired;
        s->retired = n->next;
        s->destroy(n->obj);
        free(n);
    }
    pthread_mutex_destroy(&s->lock);
    free(s);
}
