/* The audit webhook sink (see webhook.h): a bounded queue filled by the writer thread and a
 * thread of its own that POSTs batches with a libcurl easy handle. Blocking curl calls are fine
 * here: nothing else runs on this thread, and the writer never waits for it. */
#include "webhook.h"
#include "clock.h"
#include "log.h"
#include "render.h"

#include "bastion_version.h"
#include "bastion/v1/audit.pb-c.h"
#include "bastion/v1/audit_log.pb-c.h"

#include <curl/curl.h>
#include <errno.h>
#include <inttypes.h>
#include <openssl/evp.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

/* Bookkeeping charged per entry on top of its payload, so that many tiny entries also hit the
 * memory cap. */
#define ENTRY_OVERHEAD 64

struct wentry {
    struct wentry *next;
    unsigned kind;
    size_t len;
    unsigned char hash[AUDIT_HASH_LEN];
    unsigned char payload[];
};

struct audit_webhook {
    char *url;
    char *ca_file;
    int format;
    size_t batch_records;
    int64_t batch_wait_ms, timeout_ms, backoff_ms, max_backoff_ms;
    size_t mem_cap;
    char instance[128];

    pthread_mutex_t mu;
    pthread_cond_t cv;
    struct wentry *head, *tail;
    size_t n;
    size_t bytes;       /* queued and in flight */
    int64_t first_mono; /* arrival of the oldest queued entry */
    int stopping;
    int64_t stop_deadline; /* mono; after it, what is left is lost */
    pthread_t thread;

    atomic_uint_least64_t sent, failed, lost;
    CURL *curl;
    int failing; /* for logging transitions only */
};

static pthread_once_t curl_once = PTHREAD_ONCE_INIT;
static CURLcode curl_init_rc;

/* libcurl's global init is not thread-safe in every build; it runs once per process and is
 * never undone (other modules may use libcurl too). */
static void curl_init(void)
{
    curl_init_rc = curl_global_init(CURL_GLOBAL_DEFAULT);
}

static struct timespec abs_after_ms(int64_t ms)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    if (ms < 0)
        ms = 0;
    ts.tv_sec += (time_t)(ms / 1000);
    ts.tv_nsec += (long)((ms % 1000) * 1000000);
    if (ts.tv_nsec >= 1000000000L) {
        ts.tv_sec++;
        ts.tv_nsec -= 1000000000L;
    }
    return ts;
}

void audit_webhook_push(struct audit_webhook *w, unsigned kind, const unsigned char *payload,
                        size_t len, const unsigned char hash[AUDIT_HASH_LEN])
{
    struct wentry *e;
    size_t cost = len + ENTRY_OVERHEAD;

    if (w == NULL || (kind != AUDIT_FRAME_RECORD && kind != AUDIT_FRAME_CHECKPOINT))
        return;
    pthread_mutex_lock(&w->mu);
    if (w->stopping || w->bytes + cost > w->mem_cap) {
        pthread_mutex_unlock(&w->mu);
        atomic_fetch_add(&w->lost, 1);
        return;
    }
    w->bytes += cost; /* reserved before the copy, so the cap holds under concurrency */
    pthread_mutex_unlock(&w->mu);
    e = malloc(sizeof(*e) + len);
    if (e == NULL) {
        pthread_mutex_lock(&w->mu);
        w->bytes -= cost;
        pthread_mutex_unlock(&w->mu);
        atomic_fetch_add(&w->lost, 1);
        return;
    }
    e->next = NULL;
    e->kind = kind;
    e->len = len;
    memcpy(e->hash, hash, AUDIT_HASH_LEN);
    memcpy(e->payload, payload, len);
    pthread_mutex_lock(&w->mu);
    if (w->tail != NULL)
        w->tail->next = e;
    else
        w->head = e;
    w->tail = e;
    if (w->n++ == 0)
        w->first_mono = bst_mono_ns();
    if (w->n >= w->batch_records)
        pthread_cond_signal(&w->cv);
    else if (w->n == 1)
        pthread_cond_signal(&w->cv);
    pthread_mutex_unlock(&w->mu);
}

/* ---- Bodies -------------------------------------------------------------------------------- */

static int put_varint(struct audit_buf *b, uint64_t v)
{
    unsigned char tmp[10];
    size_t n = 0;
    do {
        tmp[n] = (unsigned char)(v & 0x7f);
        v >>= 7;
        if (v != 0)
            tmp[n] |= 0x80;
        n++;
    } while (v != 0);
    return audit_buf_put(b, tmp, n);
}

static size_t varint_len(uint64_t v)
{
    size_t n = 1;
    while (v >= 0x80) {
        v >>= 7;
        n++;
    }
    return n;
}

/* A length-delimited field: tag (field << 3 | 2), length, bytes. */
static int put_ld(struct audit_buf *b, unsigned field, const void *p, size_t len)
{
    return put_varint(b, (uint64_t)field << 3 | 2) || put_varint(b, len) || audit_buf_put(b, p, len)
               ? -1
               : 0;
}

/* AuditWebhookBatch, encoded by hand so the record bytes are exactly those written. */
static int body_protobuf(const struct audit_webhook *w, struct wentry *list, struct audit_buf *b)
{
    for (struct wentry *e = list; e != NULL; e = e->next) {
        size_t inner;
        if (e->kind == AUDIT_FRAME_RECORD) {
            inner =
                1 + varint_len(e->len) + e->len + 1 + varint_len(AUDIT_HASH_LEN) + AUDIT_HASH_LEN;
            if (put_varint(b, 1 << 3 | 2) || put_varint(b, inner) ||
                put_ld(b, 1, e->payload, e->len) || put_ld(b, 2, e->hash, AUDIT_HASH_LEN))
                return -1;
        } else {
            inner = 1 + varint_len(e->len) + e->len;
            if (put_varint(b, 1 << 3 | 2) || put_varint(b, inner) ||
                put_ld(b, 3, e->payload, e->len))
                return -1;
        }
    }
    return put_ld(b, 2, w->instance, strlen(w->instance));
}

/* One AuditWebhookEntry per line in the protobuf JSON mapping. */
static int body_jsonl(struct wentry *list, struct audit_buf *b)
{
    for (struct wentry *e = list; e != NULL; e = e->next) {
        const ProtobufCMessageDescriptor *d = e->kind == AUDIT_FRAME_RECORD
                                                  ? &bastion__v1__audit_record__descriptor
                                                  : &bastion__v1__audit_checkpoint__descriptor;
        ProtobufCMessage *m = protobuf_c_message_unpack(d, NULL, e->len, e->payload);
        int rc;

        if (m == NULL)
            continue; /* our own bytes; cannot happen short of memory */
        if (e->kind == AUDIT_FRAME_RECORD) {
            unsigned char b64[4 * ((AUDIT_HASH_LEN + 2) / 3) + 1];
            EVP_EncodeBlock(b64, e->hash, AUDIT_HASH_LEN);
            rc = audit_buf_puts(b, "{\"record\":") || audit_json_message(b, m) ||
                 audit_buf_printf(b, ",\"chain_hash\":\"%s\"}\n", b64);
        } else {
            rc = audit_buf_puts(b, "{\"checkpoint\":") || audit_json_message(b, m) ||
                 audit_buf_puts(b, "}\n");
        }
        protobuf_c_message_free_unpacked(m, NULL);
        if (rc)
            return -1;
    }
    return 0;
}

/* ---- Posting ------------------------------------------------------------------------------- */

static size_t discard(char *p, size_t size, size_t n, void *ud)
{
    (void)p;
    (void)ud;
    return size * n;
}

enum post_rc { POST_OK = 0, POST_RETRY, POST_PERMANENT };

static enum post_rc post(struct audit_webhook *w, const struct audit_buf *body, char *why,
                         size_t why_size)
{
    struct curl_slist *hdrs = NULL;
    char inst[160];
    long code = 0;
    CURLcode rc;

    curl_easy_reset(w->curl);
    hdrs = curl_slist_append(hdrs, w->format == AUDIT_WEBHOOK_PROTOBUF
                                       ? "Content-Type: application/x-protobuf"
                                       : "Content-Type: application/x-ndjson");
    snprintf(inst, sizeof(inst), "X-Bastion-Audit-Instance: %s", w->instance);
    hdrs = curl_slist_append(hdrs, inst);
    hdrs = curl_slist_append(hdrs, "Expect:");
    curl_easy_setopt(w->curl, CURLOPT_URL, w->url);
    curl_easy_setopt(w->curl, CURLOPT_HTTPHEADER, hdrs);
    curl_easy_setopt(w->curl, CURLOPT_POST, 1L);
    curl_easy_setopt(w->curl, CURLOPT_POSTFIELDS, body->data != NULL ? (char *)body->data : "");
    curl_easy_setopt(w->curl, CURLOPT_POSTFIELDSIZE_LARGE, (curl_off_t)body->len);
    curl_easy_setopt(w->curl, CURLOPT_TIMEOUT_MS, (long)w->timeout_ms);
    curl_easy_setopt(w->curl, CURLOPT_CONNECTTIMEOUT_MS,
                     (long)(w->timeout_ms < 10000 ? w->timeout_ms : 10000));
    curl_easy_setopt(w->curl, CURLOPT_NOSIGNAL, 1L);
    curl_easy_setopt(w->curl, CURLOPT_PROTOCOLS_STR, "http,https");
    curl_easy_setopt(w->curl, CURLOPT_FOLLOWLOCATION, 0L);
    /* Audit data goes where the config says, not through a proxy named by the environment. */
    curl_easy_setopt(w->curl, CURLOPT_PROXY, "");
    curl_easy_setopt(w->curl, CURLOPT_WRITEFUNCTION, discard);
    curl_easy_setopt(w->curl, CURLOPT_USERAGENT, "bastion-audit/" BASTION_VERSION);
    if (w->ca_file != NULL && w->ca_file[0] != '\0')
        curl_easy_setopt(w->curl, CURLOPT_CAINFO, w->ca_file);
    rc = curl_easy_perform(w->curl);
    if (rc == CURLE_OK)
        curl_easy_getinfo(w->curl, CURLINFO_RESPONSE_CODE, &code);
    curl_slist_free_all(hdrs);
    if (rc != CURLE_OK) {
        snprintf(why, why_size, "%s", curl_easy_strerror(rc));
        return POST_RETRY;
    }
    if (code >= 200 && code < 300)
        return POST_OK;
    snprintf(why, why_size, "HTTP status %ld", code);
    if (code == 408 || code == 429 || code >= 500)
        return POST_RETRY;
    return POST_PERMANENT;
}

static void free_list(struct wentry *e)
{
    while (e != NULL) {
        struct wentry *next = e->next;
        free(e);
        e = next;
    }
}

static void *webhook_main(void *arg)
{
    struct audit_webhook *w = arg;

    pthread_mutex_lock(&w->mu);
    for (;;) {
        struct wentry *batch, *last;
        size_t k = 0, cost = 0;
        struct audit_buf body = {NULL, 0, 0};
        int64_t backoff = w->backoff_ms;
        char why[256] = "";
        int built;

        while (!w->stopping &&
               (w->n == 0 || (w->n < w->batch_records &&
                              bst_mono_ns() < w->first_mono + w->batch_wait_ms * BST_NS_PER_MS))) {
            if (w->n == 0) {
                pthread_cond_wait(&w->cv, &w->mu);
            } else {
                int64_t left = (w->first_mono + w->batch_wait_ms * BST_NS_PER_MS - bst_mono_ns()) /
                               BST_NS_PER_MS;
                struct timespec ts = abs_after_ms(left + 1);
                pthread_cond_timedwait(&w->cv, &w->mu, &ts);
            }
        }
        if (w->n == 0)
            break; /* stopping, nothing left */
        batch = last = w->head;
        for (;;) {
            k++;
            cost += last->len + ENTRY_OVERHEAD;
            if (k == w->batch_records || last->next == NULL)
                break;
            last = last->next;
        }
        w->head = last->next;
        if (w->head == NULL)
            w->tail = NULL;
        last->next = NULL;
        w->n -= k;
        w->first_mono = bst_mono_ns();
        pthread_mutex_unlock(&w->mu);

        built = w->format == AUDIT_WEBHOOK_PROTOBUF ? body_protobuf(w, batch, &body)
                                                    : body_jsonl(batch, &body);
        for (;;) {
            enum post_rc rc;
            int stopping;

            if (built != 0) {
                atomic_fetch_add(&w->lost, k);
                bst_log(BST_LOG_ERROR, "audit_webhook_lost", "reason", "out of memory", NULL);
                break;
            }
            pthread_mutex_lock(&w->mu);
            stopping = w->stopping;
            if (stopping && bst_mono_ns() > w->stop_deadline) {
                pthread_mutex_unlock(&w->mu);
                atomic_fetch_add(&w->lost, k);
                break;
            }
            pthread_mutex_unlock(&w->mu);
            rc = post(w, &body, why, sizeof(why));
            if (rc == POST_OK) {
                atomic_fetch_add(&w->sent, k);
                if (w->failing) {
                    w->failing = 0;
                    bst_log(BST_LOG_INFO, "audit_webhook_recovered", NULL);
                }
                break;
            }
            atomic_fetch_add(&w->failed, 1);
            if (!w->failing) {
                w->failing = 1;
                bst_log(BST_LOG_WARN, "audit_webhook_failed", "reason", why, NULL);
            }
            if (rc == POST_PERMANENT || stopping) {
                /* A refused batch would be refused again; at shutdown there is no time. */
                atomic_fetch_add(&w->lost, k);
                if (rc == POST_PERMANENT)
                    bst_log(BST_LOG_ERROR, "audit_webhook_lost", "reason", why, NULL);
                break;
            }
            pthread_mutex_lock(&w->mu);
            if (!w->stopping) {
                struct timespec ts = abs_after_ms(backoff);
                pthread_cond_timedwait(&w->cv, &w->mu, &ts);
            }
            pthread_mutex_unlock(&w->mu);
            backoff = backoff * 2 > w->max_backoff_ms ? w->max_backoff_ms : backoff * 2;
        }
        audit_buf_free(&body);
        free_list(batch);
        pthread_mutex_lock(&w->mu);
        w->bytes -= cost;
        if (w->stopping && bst_mono_ns() > w->stop_deadline && w->n > 0) {
            atomic_fetch_add(&w->lost, w->n);
            free_list(w->head);
            w->head = w->tail = NULL;
            w->bytes = 0;
            w->n = 0;
        }
    }
    pthread_mutex_unlock(&w->mu);
    return NULL;
}

enum bst_status audit_webhook_new(struct audit_webhook **out, const struct audit_config *cfg,
                                  const char *instance, struct bst_err *err)
{
    struct audit_webhook *w;
    pthread_condattr_t ca;

    *out = NULL;
    pthread_once(&curl_once, curl_init);
    if (curl_init_rc != CURLE_OK)
        return bst_errf(err, BST_INTERNAL, "libcurl initialisation failed");
    w = calloc(1, sizeof(*w));
    if (w == NULL)
        return bst_errf(err, BST_RESOURCE_EXHAUSTED, "out of memory");
    w->url = strdup(cfg->webhook.url);
    w->ca_file = strdup(cfg->webhook.ca_file != NULL ? cfg->webhook.ca_file : "");
    w->curl = curl_easy_init();
    if (w->url == NULL || w->ca_file == NULL || w->curl == NULL) {
        curl_easy_cleanup(w->curl);
        free(w->url);
        free(w->ca_file);
        free(w);
        return bst_errf(err, BST_RESOURCE_EXHAUSTED, "out of memory");
    }
    w->format = cfg->webhook.format;
    w->batch_records = (size_t)cfg->webhook.batch_records;
    w->batch_wait_ms = cfg->webhook.batch_wait_ms;
    w->timeout_ms = cfg->webhook.timeout_ms;
    w->backoff_ms = cfg->webhook.retry_backoff_ms;
    w->max_backoff_ms = cfg->webhook.retry_max_backoff_ms;
    w->mem_cap = (size_t)cfg->webhook.memory_bytes;
    /* The instance goes into an HTTP header: keep it to printable ASCII without separators. */
    for (size_t i = 0, j = 0; instance[i] != '\0' && j + 1 < sizeof(w->instance); i++) {
        char c = instance[i];
        w->instance[j++] = (c > 0x20 && c < 0x7f && c != ':') ? c : '_';
        w->instance[j] = '\0';
    }
    pthread_mutex_init(&w->mu, NULL);
    pthread_condattr_init(&ca);
    pthread_condattr_setclock(&ca, CLOCK_MONOTONIC);
    pthread_cond_init(&w->cv, &ca);
    pthread_condattr_destroy(&ca);
    if (pthread_create(&w->thread, NULL, webhook_main, w) != 0) {
        pthread_cond_destroy(&w->cv);
        pthread_mutex_destroy(&w->mu);
        curl_easy_cleanup(w->curl);
        free(w->url);
        free(w->ca_file);
        free(w);
        return bst_errf(err, BST_INTERNAL, "cannot start the webhook thread");
    }
    *out = w;
    return BST_OK;
}

void audit_webhook_free(struct audit_webhook *w)
{
    if (w == NULL)
        return;
    pthread_mutex_lock(&w->mu);
    w->stopping = 1;
    w->stop_deadline = bst_mono_ns() + w->timeout_ms * BST_NS_PER_MS;
    pthread_cond_broadcast(&w->cv);
    pthread_mutex_unlock(&w->mu);
    pthread_join(w->thread, NULL);
    free_list(w->head);
    curl_easy_cleanup(w->curl);
    pthread_cond_destroy(&w->cv);
    pthread_mutex_destroy(&w->mu);
    free(w->url);
    free(w->ca_file);
    free(w);
}

void audit_webhook_stats(struct audit_webhook *w, struct audit_webhook_stats *out)
{
    memset(out, 0, sizeof(*out));
    if (w == NULL)
        return;
    out->sent = atomic_load(&w->sent);
    out->failed = atomic_load(&w->failed);
    out->lost = atomic_load(&w->lost);
    pthread_mutex_lock(&w->mu);
    out->queued_bytes = w->bytes;
    pthread_mutex_unlock(&w->mu);
}
