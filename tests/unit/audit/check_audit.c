/* Tests for the audit library (audit/): framing, the hash chain, sequence assignment, record
 * preparation (UTF-8, truncation, tags, event filters), segment rotation and retention, torn-tail
 * recovery, every tamper the verifier must locate, checkpoint signatures and key rotation,
 * anchors, disk full in each mode, queue behaviour per mode, concurrency, the webhook never
 * stalling the writer, configuration and rendering. Each test works in its own directory. */
#include "audit.h"
#include "format.h"
#include "reader.h"
#include "render.h"
#include "sign.h"

#include "bastion/v1/audit_log.pb-c.h"

#include <arpa/inet.h>
#include <check.h>
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <ftw.h>
#include <inttypes.h>
#include <netinet/in.h>
#include <openssl/evp.h>
#include <openssl/pem.h>
#include <pthread.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

/* ---- Helpers ------------------------------------------------------------------------------- */

static char dir[128];     /* the test's directory */
static char logdir[160];  /* dir/log: the audit directory */
static char keysdir[160]; /* dir/keys */

static void setup(void)
{
    snprintf(dir, sizeof(dir), "/tmp/check_audit.XXXXXX");
    ck_assert_ptr_nonnull(mkdtemp(dir));
    snprintf(logdir, sizeof(logdir), "%s/log", dir);
    snprintf(keysdir, sizeof(keysdir), "%s/keys", dir);
}

static int rm_one(const char *p, const struct stat *st, int flag, struct FTW *ftw)
{
    (void)st;
    (void)flag;
    (void)ftw;
    return remove(p);
}

static void teardown(void)
{
    nftw(dir, rm_one, 16, FTW_DEPTH | FTW_PHYS);
}

static const char *path_in(const char *d, const char *name)
{
    static char p[4][512];
    static int i;
    char tmp[512]; /* d may be an earlier result: never format into what is being read */
    i = (i + 1) % 4;
    snprintf(tmp, sizeof(tmp), "%s/%s", d, name);
    memcpy(p[i], tmp, sizeof(tmp));
    return p[i];
}

static void set_str(char **field, const char *v)
{
    free(*field);
    *field = strdup(v);
}

/* Defaults, the test's log directory, small segments, immediate syncs. */
static void config(struct audit_config *cfg)
{
    struct bst_err err;
    ck_assert_int_eq(audit_config_defaults(cfg, &err), BST_OK);
    set_str(&cfg->directory, logdir);
    cfg->max_record_bytes = 4096;
    cfg->segment.max_bytes = 64 * 1024;
}

static struct audit *open_audit(const struct audit_config *cfg)
{
    struct audit *a = NULL;
    struct bst_err err = {BST_OK, ""};
    enum bst_status rv = audit_new(&a, cfg, &err);
    ck_assert_msg(rv == BST_OK, "audit_new: %s", err.msg);
    return a;
}

struct waiter {
    pthread_mutex_t mu;
    pthread_cond_t cv;
    int calls;
    enum bst_status st;
};

#define WAITER_INIT                                                                                \
    {                                                                                              \
        PTHREAD_MUTEX_INITIALIZER, PTHREAD_COND_INITIALIZER, 0, BST_OK                             \
    }

static void on_done(void *arg, enum bst_status st)
{
    struct waiter *w = arg;
    pthread_mutex_lock(&w->mu);
    w->calls++;
    w->st = st;
    pthread_cond_broadcast(&w->cv);
    pthread_mutex_unlock(&w->mu);
}

static enum bst_status wait_done(struct waiter *w)
{
    pthread_mutex_lock(&w->mu);
    while (w->calls == 0)
        pthread_cond_wait(&w->cv, &w->mu);
    pthread_mutex_unlock(&w->mu);
    return w->st;
}

static void request(Bastion__V1__AuditRecord *r, Bastion__V1__AuditPrincipal *p, const char *user,
                    const char *reqid)
{
    bastion__v1__audit_record__init(r);
    bastion__v1__audit_principal__init(p);
    p->name = (char *)user;
    r->principal = p;
    r->has_event_type = 1;
    r->event_type = BASTION__V1__AUDIT_EVENT_TYPE__AUDIT_EVENT_REQUEST;
    r->request_id = (char *)reqid;
    r->grpc_method = "/bastion.v1.Mcp/CallTool";
    r->tool = "list_pods";
    r->namespace_ = "default";
    r->result = "ok";
    r->has_grpc_status = 1;
    r->grpc_status = 0;
}

static enum bst_status submit_wait(struct audit *a, const Bastion__V1__AuditRecord *r)
{
    struct waiter w = WAITER_INIT;
    audit_submit(a, r, on_done, &w);
    return wait_done(&w);
}

/* Submits n request records and waits for each. */
static void write_requests(struct audit *a, int n, const char *user)
{
    for (int i = 0; i < n; i++) {
        Bastion__V1__AuditRecord r;
        Bastion__V1__AuditPrincipal p;
        char id[40];
        snprintf(id, sizeof(id), "req-%d", i);
        request(&r, &p, user, id);
        ck_assert_int_eq(submit_wait(a, &r), BST_OK);
    }
}

/* All records of the directory, in order: sequences and copies of action/user strings. */
struct seen {
    uint64_t seq[20000];
    int type[20000];
    char *action[20000];
    char *user[20000];
    char *reqid[20000];
    size_t n;
    int data_loss;
};

static struct seen *read_all(const char *d)
{
    struct seen *s = calloc(1, sizeof(*s));
    struct audit_reader *r;
    struct audit_item it;
    struct bst_err err;
    enum bst_status rv;

    ck_assert_ptr_nonnull(s);
    ck_assert_int_eq(audit_reader_open(&r, d, 0, &err), BST_OK);
    while ((rv = audit_reader_next(r, &it, &err)) != BST_OUT_OF_RANGE) {
        if (rv != BST_OK) {
            s->data_loss++;
            continue;
        }
        if (it.kind != AUDIT_FRAME_RECORD)
            continue;
        ck_assert_ptr_nonnull(it.record);
        ck_assert_uint_lt(s->n, 20000);
        s->seq[s->n] = it.record->sequence;
        s->type[s->n] = it.record->event_type;
        s->action[s->n] = it.record->action ? strdup(it.record->action) : NULL;
        s->user[s->n] = it.record->principal && it.record->principal->name
                            ? strdup(it.record->principal->name)
                            : NULL;
        s->reqid[s->n] = it.record->request_id ? strdup(it.record->request_id) : NULL;
        s->n++;
    }
    audit_reader_free(r);
    return s;
}

static void seen_free(struct seen *s)
{
    for (size_t i = 0; i < s->n; i++) {
        free(s->action[i]);
        free(s->user[i]);
        free(s->reqid[i]);
    }
    free(s);
}

static size_t count_action(const struct seen *s, const char *action)
{
    size_t n = 0;
    for (size_t i = 0; i < s->n; i++)
        n += s->action[i] != NULL && strcmp(s->action[i], action) == 0;
    return n;
}

static struct audit_verify_result verify(const struct audit_pubkeys *keys,
                                         const struct audit_anchor *anchors, size_t n_anchors,
                                         int allow_torn)
{
    struct audit_verify_opts o = {logdir, keys, anchors, n_anchors, allow_torn};
    struct audit_verify_result res;
    struct bst_err err;
    ck_assert_int_eq(audit_verify(&o, &res, &err), BST_OK);
    return res;
}

static void assert_ok(const struct audit_verify_result *res)
{
    ck_assert_msg(res->ok, "verify: %s at %s seq %" PRIu64 ": %s", res->message, res->segment,
                  res->sequence, res->notes);
}

static char **segments(size_t *n)
{
    char **names;
    struct bst_err err;
    ck_assert_int_eq(audit_list_segments(logdir, &names, n, &err), BST_OK);
    return names;
}

static void free_names(char **names, size_t n)
{
    for (size_t i = 0; i < n; i++)
        free(names[i]);
    free(names);
}

static unsigned char *slurp(const char *p, size_t *len)
{
    FILE *f = fopen(p, "rb");
    unsigned char *buf;
    long n;
    ck_assert_ptr_nonnull(f);
    fseek(f, 0, SEEK_END);
    n = ftell(f);
    fseek(f, 0, SEEK_SET);
    buf = malloc((size_t)n + 1);
    ck_assert_ptr_nonnull(buf);
    ck_assert_uint_eq(fread(buf, 1, (size_t)n, f), (size_t)n);
    fclose(f);
    *len = (size_t)n;
    return buf;
}

static void spit(const char *p, const unsigned char *buf, size_t len)
{
    FILE *f = fopen(p, "wb");
    ck_assert_ptr_nonnull(f);
    ck_assert_uint_eq(fwrite(buf, 1, len, f), len);
    fclose(f);
}

/* The frames of a segment file: offsets, total lengths (with envelope), kinds, sequences. */
struct frames {
    size_t off[4096], len[4096];
    unsigned kind[4096];
    uint64_t seq[4096];
    size_t n;
};

static void frames_of(const unsigned char *buf, size_t len, struct frames *fs)
{
    size_t off = AUDIT_MAGIC_LEN;
    fs->n = 0;
    while (off + AUDIT_FRAME_OVERHEAD <= len) {
        size_t plen = (size_t)buf[off + 1] << 24 | (size_t)buf[off + 2] << 16 |
                      (size_t)buf[off + 3] << 8 | buf[off + 4];
        ck_assert_uint_le(off + AUDIT_FRAME_OVERHEAD + plen, len);
        fs->off[fs->n] = off;
        fs->len[fs->n] = plen + AUDIT_FRAME_OVERHEAD;
        fs->kind[fs->n] = buf[off];
        fs->seq[fs->n] = 0;
        if (buf[off] == AUDIT_FRAME_RECORD) {
            Bastion__V1__AuditRecord *r =
                bastion__v1__audit_record__unpack(NULL, plen, buf + off + AUDIT_FRAME_HEAD);
            ck_assert_ptr_nonnull(r);
            fs->seq[fs->n] = r->sequence;
            bastion__v1__audit_record__free_unpacked(r, NULL);
        }
        fs->n++;
        off += plen + AUDIT_FRAME_OVERHEAD;
    }
}

/* Index of the k-th record frame. */
static size_t nth_record(const struct frames *fs, size_t k)
{
    for (size_t i = 0; i < fs->n; i++)
        if (fs->kind[i] == AUDIT_FRAME_RECORD && k-- == 0)
            return i;
    ck_abort_msg("no such record");
    return 0;
}

/* Writes 1000 records in 64 KiB segments (three or more) and returns the segment names. */
static char **multi_segment_log(size_t *n, struct audit_config *cfg)
{
    struct audit *a;
    char **names;
    a = open_audit(cfg);
    write_requests(a, 1000, "alice");
    audit_free(a);
    names = segments(n);
    ck_assert_uint_ge(*n, 3);
    return names;
}

/* Writes an Ed25519 key pair: private PEM (0600) at priv, public PEM at pub (if not NULL). */
static void make_key(const char *priv, const char *pub)
{
    EVP_PKEY *k = EVP_PKEY_Q_keygen(NULL, NULL, "ED25519");
    FILE *f;
    int fd;
    ck_assert_ptr_nonnull(k);
    fd = open(priv, O_WRONLY | O_CREAT | O_TRUNC, 0600);
    ck_assert_int_ge(fd, 0);
    f = fdopen(fd, "w");
    ck_assert_int_eq(PEM_write_PrivateKey(f, k, NULL, NULL, 0, NULL, NULL), 1);
    fclose(f);
    if (pub != NULL) {
        f = fopen(pub, "w");
        ck_assert_int_eq(PEM_write_PUBKEY(f, k), 1);
        fclose(f);
    }
    EVP_PKEY_free(k);
}

static struct audit_pubkeys *load_keys(const char *d)
{
    struct audit_pubkeys *k = NULL;
    struct bst_err err;
    ck_assert_msg(audit_pubkeys_load(&k, d, &err) == BST_OK, "%s", err.msg);
    return k;
}

/* ---- Framing ------------------------------------------------------------------------------- */

START_TEST(test_frame_roundtrip_keeps_bytes_and_chains_on_the_previous_hash)
{
    unsigned char prev[AUDIT_HASH_LEN] = {1, 2, 3};
    unsigned char buf[AUDIT_MAGIC_LEN + 64], h1[AUDIT_HASH_LEN], h2[AUDIT_HASH_LEN];
    struct audit_buf rb = {NULL, 0, 0};
    struct audit_frame fr;
    uint64_t off = AUDIT_MAGIC_LEN;
    size_t n;
    FILE *f;

    memcpy(buf, AUDIT_MAGIC, AUDIT_MAGIC_LEN);
    n = audit_frame_encode(buf + AUDIT_MAGIC_LEN, AUDIT_FRAME_RECORD,
                           (const unsigned char *)"payload", 7, prev, h1);
    ck_assert_uint_eq(n, 7 + AUDIT_FRAME_OVERHEAD);
    f = fmemopen(buf, AUDIT_MAGIC_LEN + n, "rb");
    ck_assert_int_eq(audit_magic_read(f), AUDIT_FRAME_OK);
    ck_assert_int_eq(audit_frame_read(f, &off, &rb, &fr), AUDIT_FRAME_OK);
    ck_assert_uint_eq(fr.len, 7);
    ck_assert_mem_eq(fr.payload, "payload", 7);
    ck_assert_mem_eq(fr.hash, h1, AUDIT_HASH_LEN);
    ck_assert_uint_eq(off, AUDIT_MAGIC_LEN + n);
    ck_assert_int_eq(audit_frame_read(f, &off, &rb, &fr), AUDIT_FRAME_END);
    fclose(f);
    /* The hash depends on the previous hash, the kind and the payload. */
    prev[0] ^= 1;
    audit_chain_hash(prev, AUDIT_FRAME_RECORD, (const unsigned char *)"payload", 7, h2);
    ck_assert_int_ne(memcmp(h1, h2, AUDIT_HASH_LEN), 0);
    prev[0] ^= 1;
    audit_chain_hash(prev, AUDIT_FRAME_CHECKPOINT, (const unsigned char *)"payload", 7, h2);
    ck_assert_int_ne(memcmp(h1, h2, AUDIT_HASH_LEN), 0);
    audit_buf_free(&rb);
}
END_TEST

START_TEST(test_frame_reader_refuses_a_huge_length_and_reports_a_torn_frame)
{
    unsigned char huge[] = {AUDIT_FRAME_RECORD, 0xff, 0xff, 0xff, 0xff, 0, 0};
    unsigned char torn[] = {AUDIT_FRAME_RECORD, 0, 0, 0, 10, 'a', 'b'};
    unsigned char kind[] = {9, 0, 0, 0, 0};
    struct audit_buf rb = {NULL, 0, 0};
    struct audit_frame fr;
    uint64_t off = 0;
    FILE *f;

    f = fmemopen(huge, sizeof(huge), "rb");
    ck_assert_int_eq(audit_frame_read(f, &off, &rb, &fr), AUDIT_FRAME_MALFORMED);
    ck_assert_uint_eq(rb.cap, 0); /* refused before allocating */
    fclose(f);
    f = fmemopen(torn, sizeof(torn), "rb");
    ck_assert_int_eq(audit_frame_read(f, &off, &rb, &fr), AUDIT_FRAME_TORN);
    ck_assert_uint_eq(off, 0);
    fclose(f);
    f = fmemopen(kind, sizeof(kind), "rb");
    ck_assert_int_eq(audit_frame_read(f, &off, &rb, &fr), AUDIT_FRAME_MALFORMED);
    fclose(f);
    audit_buf_free(&rb);
}
END_TEST

START_TEST(test_segment_names_parse_only_in_the_exact_form)
{
    char name[AUDIT_SEGMENT_NAME_LEN + 1];
    uint64_t seq = 0;

    audit_segment_name(name, 42);
    ck_assert_str_eq(name, "audit-00000000000000000042.seg");
    ck_assert_int_eq(audit_segment_name_parse(name, &seq), 1);
    ck_assert_uint_eq(seq, 42);
    ck_assert_int_eq(audit_segment_name_parse("audit-42.seg", &seq), 0);
    ck_assert_int_eq(audit_segment_name_parse("audit-00000000000000000042.seg.torn-1", &seq), 0);
    ck_assert_int_eq(audit_segment_name_parse("audit-0000000000000000004x.seg", &seq), 0);
    ck_assert_int_eq(audit_segment_name_parse("audit-99999999999999999999.seg", &seq), 0);
}
END_TEST

START_TEST(test_anchor_parses_hex_and_base64_and_refuses_the_rest)
{
    unsigned char h[AUDIT_HASH_LEN];
    uint64_t seq;
    struct bst_err err;
    char text[128];

    snprintf(text, sizeof(text), "12:%s",
             "00112233445566778899aabbccddeeff00112233445566778899aabbccddeeff");
    ck_assert_int_eq(audit_anchor_parse(text, &seq, h, &err), BST_OK);
    ck_assert_uint_eq(seq, 12);
    ck_assert_uint_eq(h[1], 0x11);
    ck_assert_int_eq(
        audit_anchor_parse("7:ABEiM0RVZneImaq7zN3u/wARIjNEVWZ3iJmqu8zd7v8=", &seq, h, &err),
        BST_OK);
    ck_assert_uint_eq(seq, 7);
    ck_assert_uint_eq(h[31], 0xff);
    ck_assert_int_eq(audit_anchor_parse("12", &seq, h, &err), BST_INVALID_ARGUMENT);
    ck_assert_int_eq(audit_anchor_parse("0:00", &seq, h, &err), BST_INVALID_ARGUMENT);
    ck_assert_int_eq(audit_anchor_parse("x:00", &seq, h, &err), BST_INVALID_ARGUMENT);
    ck_assert_int_eq(audit_anchor_parse("1:zz112233445566778899aabbccddeeff00112233445566778899aab"
                                        "bccddeeff",
                                        &seq, h, &err),
                     BST_INVALID_ARGUMENT);
}
END_TEST

/* ---- Writing and the chain ----------------------------------------------------------------- */

START_TEST(test_records_get_consecutive_sequences_between_startup_and_shutdown_events)
{
    struct audit_config cfg;
    struct audit *a;
    struct seen *s;
    struct audit_stats st;
    struct audit_verify_result res;

    config(&cfg);
    a = open_audit(&cfg);
    write_requests(a, 20, "alice");
    audit_stats(a, &st);
    ck_assert_uint_eq(st.records_written, 21); /* startup + 20 */
    ck_assert_uint_eq(st.last_sequence, 21);
    ck_assert_int_eq(st.healthy, 1);
    audit_free(a);
    s = read_all(logdir);
    ck_assert_uint_eq(s->n, 22);
    for (size_t i = 0; i < s->n; i++)
        ck_assert_uint_eq(s->seq[i], i + 1);
    ck_assert_str_eq(s->action[0], "startup");
    ck_assert_str_eq(s->action[21], "shutdown");
    ck_assert_int_eq(s->type[21], BASTION__V1__AUDIT_EVENT_TYPE__AUDIT_EVENT_ADMIN);
    seen_free(s);
    res = verify(NULL, NULL, 0, 0);
    assert_ok(&res);
    ck_assert_uint_eq(res.records, 22);
    ck_assert_int_eq(res.genesis, 1);

    /* A second run continues the sequence and the chain. */
    a = open_audit(&cfg);
    write_requests(a, 5, "bob");
    audit_free(a);
    s = read_all(logdir);
    ck_assert_uint_eq(s->n, 29);
    ck_assert_uint_eq(s->seq[28], 29);
    ck_assert_str_eq(s->action[22], "startup");
    seen_free(s);
    res = verify(NULL, NULL, 0, 0);
    assert_ok(&res);
    ck_assert_uint_eq(res.segments, 2);
    audit_config_dispose(&cfg);
}
END_TEST

START_TEST(test_library_assigns_sequence_and_fills_absent_event_id_and_time_only)
{
    struct audit_config cfg;
    struct audit *a;
    Bastion__V1__AuditRecord r;
    Bastion__V1__AuditPrincipal p;
    struct audit_reader *rd;
    struct audit_item it;
    struct bst_err err;
    int found_given = 0, found_filled = 0;

    config(&cfg);
    a = open_audit(&cfg);
    request(&r, &p, "alice", "given");
    r.has_sequence = 1;
    r.sequence = 999; /* never trusted */
    r.event_id = "my-event";
    r.has_time_unix_nano = 1;
    r.time_unix_nano = 1234;
    ck_assert_int_eq(submit_wait(a, &r), BST_OK);
    request(&r, &p, "alice", "filled");
    ck_assert_int_eq(submit_wait(a, &r), BST_OK);
    audit_free(a);
    ck_assert_int_eq(audit_reader_open(&rd, logdir, 0, &err), BST_OK);
    while (audit_reader_next(rd, &it, &err) == BST_OK) {
        const Bastion__V1__AuditRecord *x = it.record;
        if (it.kind != AUDIT_FRAME_RECORD || x->request_id == NULL)
            continue;
        if (strcmp(x->request_id, "given") == 0) {
            found_given = 1;
            ck_assert_uint_eq(x->sequence, 2);
            ck_assert_str_eq(x->event_id, "my-event");
            ck_assert_int_eq(x->time_unix_nano, 1234);
        } else {
            found_filled = 1;
            ck_assert_uint_eq(x->sequence, 3);
            ck_assert_uint_eq(strlen(x->event_id), 32);
            ck_assert(x->has_time_unix_nano && x->time_unix_nano > 1700000000LL * 1000000000LL);
        }
    }
    audit_reader_free(rd);
    ck_assert(found_given && found_filled);
    audit_config_dispose(&cfg);
}
END_TEST

START_TEST(test_invalid_utf8_is_replaced_before_the_record_is_written)
{
    struct audit_config cfg;
    struct audit *a;
    Bastion__V1__AuditRecord r;
    Bastion__V1__AuditPrincipal p;
    Bastion__V1__AuditArgument arg = BASTION__V1__AUDIT_ARGUMENT__INIT, *args[1] = {&arg};
    char *groups[2] = {"ok-group", "bad\xc3"};
    struct audit_reader *rd;
    struct audit_item it;
    struct bst_err err;
    int checked = 0;

    config(&cfg);
    a = open_audit(&cfg);
    request(&r, &p, "mal\xff\xfeory", "utf8");
    p.groups = groups;
    p.n_groups = 2;
    arg.name = "label";
    arg.value = "\xed\xa0\x80";
    r.arguments = args;
    r.n_arguments = 1;
    r.grpc_message = "fine \xe2\x82\xac";
    ck_assert_int_eq(submit_wait(a, &r), BST_OK);
    audit_free(a);
    ck_assert_int_eq(audit_reader_open(&rd, logdir, 0, &err), BST_OK);
    while (audit_reader_next(rd, &it, &err) == BST_OK) {
        if (it.kind != AUDIT_FRAME_RECORD || it.record->request_id == NULL)
            continue;
        /* pbcheck's walk is what a strict reader does: every string must be UTF-8. */
        ck_assert_int_eq(bst_pb_validate(&it.record->base, &err), BST_OK);
        ck_assert_str_eq(it.record->principal->name, "mal\xef\xbf\xbd\xef\xbf\xbdory");
        ck_assert_str_eq(it.record->principal->groups[0], "ok-group");
        ck_assert_str_eq(it.record->principal->groups[1], "bad\xef\xbf\xbd");
        ck_assert_str_eq(it.record->arguments[0]->value, "\xef\xbf\xbd\xef\xbf\xbd\xef\xbf\xbd");
        ck_assert_str_eq(it.record->grpc_message, "fine \xe2\x82\xac");
        checked = 1;
    }
    audit_reader_free(rd);
    ck_assert(checked);
    audit_config_dispose(&cfg);
}
END_TEST

START_TEST(test_oversized_record_is_shortened_and_marked_truncated)
{
    struct audit_config cfg;
    struct audit *a;
    Bastion__V1__AuditRecord r;
    Bastion__V1__AuditPrincipal p;
    char *big = malloc(100000);
    char *groups[500];
    struct audit_reader *rd;
    struct audit_item it;
    struct bst_err err;
    struct audit_stats st;
    int checked = 0;

    memset(big, 'x', 99999);
    big[99999] = '\0';
    /* A multi-byte character across every cut point must not be split. */
    for (int i = 0; i + 2 < 99999; i += 3)
        memcpy(big + i, "\xe2\x82\xac", 3);
    for (int i = 0; i < 500; i++)
        groups[i] = "group";
    config(&cfg);
    a = open_audit(&cfg);
    request(&r, &p, "alice", "big");
    r.grpc_message = big;
    p.groups = groups;
    p.n_groups = 500;
    ck_assert_int_eq(submit_wait(a, &r), BST_OK);
    audit_stats(a, &st);
    ck_assert_uint_eq(st.records_truncated, 1);
    audit_free(a);
    ck_assert_int_eq(audit_reader_open(&rd, logdir, 0, &err), BST_OK);
    while (audit_reader_next(rd, &it, &err) == BST_OK) {
        if (it.kind != AUDIT_FRAME_RECORD || it.record->request_id == NULL)
            continue;
        ck_assert_uint_le(it.payload_len, 4096);
        ck_assert(it.record->has_truncated && it.record->truncated);
        ck_assert_str_eq(it.record->principal->name, "alice");
        ck_assert_uint_gt(strlen(it.record->grpc_message), 100);
        ck_assert_int_eq(bst_pb_validate(&it.record->base, &err), BST_OK);
        checked = 1;
    }
    audit_reader_free(rd);
    ck_assert(checked);
    free(big);
    audit_config_dispose(&cfg);
}
END_TEST

START_TEST(test_compliance_tags_are_added_by_event_type)
{
    struct audit_config cfg;
    struct audit *a;
    Bastion__V1__AuditRecord r;
    Bastion__V1__AuditPrincipal p;
    char *own[1] = {"CC6.1"};
    struct audit_reader *rd;
    struct audit_item it;
    struct bst_err err;
    int checked = 0;

    config(&cfg);
    set_str(&cfg.compliance_tags.request, " CC6.1, CC7.2 ,");
    set_str(&cfg.compliance_tags.admin, "CC8.1");
    a = open_audit(&cfg);
    request(&r, &p, "alice", "tags");
    r.compliance_tags = own;
    r.n_compliance_tags = 1;
    ck_assert_int_eq(submit_wait(a, &r), BST_OK);
    audit_free(a);
    ck_assert_int_eq(audit_reader_open(&rd, logdir, 0, &err), BST_OK);
    while (audit_reader_next(rd, &it, &err) == BST_OK) {
        if (it.kind != AUDIT_FRAME_RECORD)
            continue;
        if (it.record->event_type == BASTION__V1__AUDIT_EVENT_TYPE__AUDIT_EVENT_ADMIN) {
            ck_assert_uint_eq(it.record->n_compliance_tags, 1);
            ck_assert_str_eq(it.record->compliance_tags[0], "CC8.1");
        } else {
            ck_assert_uint_eq(it.record->n_compliance_tags, 2); /* CC6.1 once */
            ck_assert_str_eq(it.record->compliance_tags[0], "CC6.1");
            ck_assert_str_eq(it.record->compliance_tags[1], "CC7.2");
            checked = 1;
        }
    }
    audit_reader_free(rd);
    ck_assert(checked);
    audit_config_dispose(&cfg);
}
END_TEST

START_TEST(test_event_settings_filter_authentication_successes_but_not_failures)
{
    struct audit_config cfg;
    struct audit *a;
    Bastion__V1__AuditRecord r;
    Bastion__V1__AuditPrincipal p;
    struct audit_stats st;
    struct seen *s;

    config(&cfg); /* authentication: failures, authorization: denials */
    a = open_audit(&cfg);
    ck_assert_int_eq(audit_wants(a, BASTION__V1__AUDIT_EVENT_TYPE__AUDIT_EVENT_AUTHENTICATION, 0),
                     0);
    ck_assert_int_eq(audit_wants(a, BASTION__V1__AUDIT_EVENT_TYPE__AUDIT_EVENT_AUTHENTICATION, 1),
                     1);
    ck_assert_int_eq(audit_wants(a, BASTION__V1__AUDIT_EVENT_TYPE__AUDIT_EVENT_REQUEST, 0), 1);
    request(&r, &p, "ok-user", "authn-ok");
    r.event_type = BASTION__V1__AUDIT_EVENT_TYPE__AUDIT_EVENT_AUTHENTICATION;
    ck_assert_int_eq(submit_wait(a, &r), BST_OK);
    request(&r, &p, "bad-user", "authn-fail");
    r.event_type = BASTION__V1__AUDIT_EVENT_TYPE__AUDIT_EVENT_AUTHENTICATION;
    r.grpc_status = 16;
    ck_assert_int_eq(submit_wait(a, &r), BST_OK);
    request(&r, &p, "denied-user", "authz-deny");
    r.event_type = BASTION__V1__AUDIT_EVENT_TYPE__AUDIT_EVENT_AUTHORIZATION;
    r.has_decision = 1;
    r.decision = BASTION__V1__AUDIT_DECISION__AUDIT_DECISION_DENY;
    ck_assert_int_eq(submit_wait(a, &r), BST_OK);
    request(&r, &p, "allowed-user", "authz-allow");
    r.event_type = BASTION__V1__AUDIT_EVENT_TYPE__AUDIT_EVENT_AUTHORIZATION;
    r.has_decision = 1;
    r.decision = BASTION__V1__AUDIT_DECISION__AUDIT_DECISION_ALLOW;
    ck_assert_int_eq(submit_wait(a, &r), BST_OK);
    audit_stats(a, &st);
    ck_assert_uint_eq(st.records_filtered, 2);
    audit_free(a);
    s = read_all(logdir);
    ck_assert_uint_eq(s->n, 4); /* startup, failure, denial, shutdown */
    ck_assert_str_eq(s->user[1], "bad-user");
    ck_assert_str_eq(s->user[2], "denied-user");
    seen_free(s);
    audit_config_dispose(&cfg);
}
END_TEST

START_TEST(test_files_are_0600_in_a_0700_directory_locked_against_a_second_writer)
{
    struct audit_config cfg;
    struct audit *a, *b = NULL;
    struct stat st;
    struct bst_err err;
    char **names;
    size_t n;

    config(&cfg);
    set_str(&cfg.directory, path_in(dir, "deep/er/log"));
    a = open_audit(&cfg);
    ck_assert_int_eq(stat(path_in(dir, "deep/er/log"), &st), 0);
    ck_assert_uint_eq(st.st_mode & 0777, 0700);
    ck_assert_int_eq(stat(path_in(dir, "deep"), &st), 0);
    ck_assert_uint_eq(st.st_mode & 0777, 0700);
    ck_assert_int_eq(audit_new(&b, &cfg, &err), BST_FAILED_PRECONDITION);
    ck_assert_ptr_null(b);
    audit_free(a);
    ck_assert_int_eq(audit_list_segments(path_in(dir, "deep/er/log"), &names, &n, &err), BST_OK);
    ck_assert_uint_eq(n, 1);
    ck_assert_int_eq(stat(path_in(path_in(dir, "deep/er/log"), names[0]), &st), 0);
    ck_assert_uint_eq(st.st_mode & 0777, 0600);
    free_names(names, n);
    /* Once the first writer is gone, the directory can be opened again. */
    a = open_audit(&cfg);
    audit_free(a);
    audit_config_dispose(&cfg);
}
END_TEST

/* ---- Rotation and retention ---------------------------------------------------------------- */

START_TEST(test_segments_rotate_by_size_each_ending_with_a_checkpoint)
{
    struct audit_config cfg;
    char **names;
    size_t n;
    struct audit_verify_result res;

    config(&cfg);
    names = multi_segment_log(&n, &cfg);
    for (size_t i = 0; i < n; i++) {
        size_t len;
        unsigned char *buf = slurp(path_in(logdir, names[i]), &len);
        struct frames *fs = malloc(sizeof(*fs));
        frames_of(buf, len, fs);
        /* Size bound: the limit, plus at most the record that crossed it. */
        ck_assert_uint_le(len, 64 * 1024 + 4096 + 256);
        ck_assert_uint_eq(fs->kind[0], AUDIT_FRAME_HEADER);
        ck_assert_uint_eq(fs->kind[fs->n - 1], AUDIT_FRAME_CHECKPOINT);
        free(fs);
        free(buf);
    }
    res = verify(NULL, NULL, 0, 0);
    assert_ok(&res);
    ck_assert_uint_eq(res.segments, n);
    ck_assert_uint_eq(res.records, 1002);
    free_names(names, n);
    audit_config_dispose(&cfg);
}
END_TEST

START_TEST(test_segments_rotate_by_age_on_the_writer_timer)
{
    struct audit_config cfg;
    struct audit *a;
    struct audit_stats st;
    struct timespec ts = {1, 400 * 1000 * 1000};

    config(&cfg);
    cfg.segment.max_age_ms = 1000;
    a = open_audit(&cfg);
    write_requests(a, 3, "alice");
    nanosleep(&ts, NULL);
    audit_stats(a, &st);
    ck_assert_uint_eq(st.segments_created, 2); /* rotated with no new record */
    write_requests(a, 3, "alice");
    audit_free(a);
    {
        struct audit_verify_result res = verify(NULL, NULL, 0, 0);
        assert_ok(&res);
        ck_assert_uint_eq(res.segments, 2);
    }
    audit_config_dispose(&cfg);
}
END_TEST

START_TEST(test_retention_by_count_keeps_the_newest_and_verify_accepts_the_rest)
{
    struct audit_config cfg;
    char **names;
    size_t n;
    struct audit_verify_result res;
    struct audit *a;
    struct audit_stats st;

    config(&cfg);
    cfg.retention.segments = 2;
    a = open_audit(&cfg);
    write_requests(a, 900, "alice");
    audit_stats(a, &st);
    audit_free(a);
    ck_assert_uint_gt(st.segments_removed, 0);
    names = segments(&n);
    ck_assert_uint_eq(n, 2);
    res = verify(NULL, NULL, 0, 0);
    assert_ok(&res);
    ck_assert_int_eq(res.genesis, 0);
    ck_assert_uint_gt(res.first_sequence, 1);
    ck_assert_uint_ge(res.retained_from, res.first_sequence);
    free_names(names, n);
    audit_config_dispose(&cfg);
}
END_TEST

START_TEST(test_retention_by_age_removes_segments_written_long_ago)
{
    struct audit_config cfg;
    char **names;
    size_t n;
    struct timespec old[2] = {{1000, 0}, {1000, 0}};
    struct audit *a;

    config(&cfg);
    names = multi_segment_log(&n, &cfg);
    /* The two oldest look written in 1970. */
    ck_assert_int_eq(utimensat(AT_FDCWD, path_in(logdir, names[0]), old, 0), 0);
    ck_assert_int_eq(utimensat(AT_FDCWD, path_in(logdir, names[1]), old, 0), 0);
    free_names(names, n);
    cfg.retention.max_age_ms = 3600 * 1000;
    a = open_audit(&cfg);
    audit_free(a);
    {
        size_t n2;
        char **after = segments(&n2);
        ck_assert_uint_eq(n2, n - 2 + 1);
        free_names(after, n2);
    }
    {
        struct audit_verify_result res = verify(NULL, NULL, 0, 0);
        assert_ok(&res);
    }
    audit_config_dispose(&cfg);
}
END_TEST

START_TEST(test_deleting_the_oldest_segment_without_retention_is_detected)
{
    struct audit_config cfg;
    char **names;
    size_t n;
    struct audit_verify_result res;

    config(&cfg);
    names = multi_segment_log(&n, &cfg);
    ck_assert_int_eq(unlink(path_in(logdir, names[0])), 0);
    res = verify(NULL, NULL, 0, 0);
    ck_assert_int_eq(res.ok, 0);
    ck_assert_str_eq(res.segment, names[1]);
    ck_assert_ptr_nonnull(strstr(res.message, "no retention removed them"));
    free_names(names, n);
    audit_config_dispose(&cfg);
}
END_TEST

/* ---- Torn tails ---------------------------------------------------------------------------- */

START_TEST(test_torn_tail_is_cut_at_restart_with_an_admin_event_and_kept_aside)
{
    struct audit_config cfg;
    struct audit *a;
    char **names;
    size_t n, len;
    unsigned char *buf;
    struct frames *fs = malloc(sizeof(*fs));
    struct audit_verify_result res;
    struct seen *s;
    uint64_t last_seq;
    size_t k;

    config(&cfg);
    a = open_audit(&cfg);
    write_requests(a, 30, "alice");
    audit_free(a);
    names = segments(&n);
    buf = slurp(path_in(logdir, names[n - 1]), &len);
    frames_of(buf, len, fs);
    /* Cut in the middle of the 20th record, as a crash during its write would. */
    k = nth_record(fs, 20);
    last_seq = fs->seq[k] - 1;
    ck_assert_int_eq(truncate(path_in(logdir, names[n - 1]), (off_t)(fs->off[k] + 9)), 0);

    res = verify(NULL, NULL, 0, 0);
    ck_assert_int_eq(res.ok, 0);
    ck_assert_str_eq(res.segment, names[n - 1]);
    ck_assert_uint_eq(res.sequence, last_seq + 1);
    ck_assert_uint_eq(res.offset, fs->off[k]);
    ck_assert_ptr_nonnull(strstr(res.message, "truncated"));
    res = verify(NULL, NULL, 0, 1);
    assert_ok(&res);
    ck_assert_int_eq(res.torn_tail, 1);
    /* The reader accepts every complete record and flags the torn one. */
    s = read_all(logdir);
    ck_assert_uint_eq(s->n, last_seq);
    ck_assert_int_eq(s->data_loss, 1);
    seen_free(s);

    a = open_audit(&cfg);
    audit_free(a);
    res = verify(NULL, NULL, 0, 0);
    assert_ok(&res);
    s = read_all(logdir);
    ck_assert_uint_eq(s->seq[last_seq], last_seq + 1); /* the sequence resumes after the cut */
    ck_assert_uint_eq(count_action(s, "torn_tail"), 1);
    for (size_t i = 0; i < s->n; i++)
        if (s->action[i] != NULL && strcmp(s->action[i], "torn_tail") == 0)
            ck_assert_int_eq(s->type[i], BASTION__V1__AUDIT_EVENT_TYPE__AUDIT_EVENT_ADMIN);
    ck_assert_int_eq(s->data_loss, 0);
    seen_free(s);
    {
        /* The cut bytes are kept beside the segment. */
        DIR *d = opendir(logdir);
        struct dirent *de;
        int kept = 0;
        ck_assert_ptr_nonnull(d);
        while ((de = readdir(d)) != NULL)
            kept += strstr(de->d_name, ".torn-") != NULL;
        closedir(d);
        ck_assert_int_eq(kept, 1);
    }
    free(fs);
    free(buf);
    free_names(names, n);
    audit_config_dispose(&cfg);
}
END_TEST

START_TEST(test_invalid_data_after_the_chain_is_cut_as_a_security_violation)
{
    struct audit_config cfg;
    struct audit *a;
    char **names;
    size_t n;
    struct seen *s;
    FILE *f;
    unsigned char junk[AUDIT_FRAME_OVERHEAD + 4] = {AUDIT_FRAME_RECORD, 0, 0, 0, 4, 1, 2, 3, 4};

    config(&cfg);
    a = open_audit(&cfg);
    write_requests(a, 3, "alice");
    audit_free(a);
    names = segments(&n);
    f = fopen(path_in(logdir, names[n - 1]), "ab");
    fwrite(junk, 1, sizeof(junk), f); /* a complete frame with a wrong hash */
    fwrite(junk, 1, sizeof(junk), f);
    fclose(f);
    a = open_audit(&cfg);
    audit_free(a);
    s = read_all(logdir);
    for (size_t i = 0; i < s->n; i++)
        if (s->action[i] != NULL && strcmp(s->action[i], "torn_tail") == 0)
            ck_assert_int_eq(s->type[i],
                             BASTION__V1__AUDIT_EVENT_TYPE__AUDIT_EVENT_SECURITY_VIOLATION);
    ck_assert_uint_eq(count_action(s, "torn_tail"), 1);
    seen_free(s);
    {
        struct audit_verify_result res = verify(NULL, NULL, 0, 0);
        assert_ok(&res);
    }
    free_names(names, n);
    audit_config_dispose(&cfg);
}
END_TEST

START_TEST(test_a_segment_with_no_header_is_moved_aside_and_the_chain_continues)
{
    struct audit_config cfg;
    struct audit *a;
    FILE *f;
    char name[AUDIT_SEGMENT_NAME_LEN + 1];
    struct audit_verify_result res;

    config(&cfg);
    a = open_audit(&cfg);
    write_requests(a, 3, "alice");
    audit_free(a);
    /* A crash right after creating the next segment: only part of the magic made it. */
    audit_segment_name(name, 6);
    f = fopen(path_in(logdir, name), "wb");
    fwrite("BSTA", 1, 4, f);
    fclose(f);
    a = open_audit(&cfg);
    write_requests(a, 2, "bob");
    audit_free(a);
    res = verify(NULL, NULL, 0, 0);
    assert_ok(&res);
    ck_assert_uint_eq(res.last_sequence, 10); /* 5 + startup, torn_tail, 2, shutdown */
    audit_config_dispose(&cfg);
}
END_TEST

/* ---- Tampering: each is detected and located ----------------------------------------------- */

/* A 3+ segment log; returns the middle segment's bytes and frames. */
struct tamper {
    struct audit_config cfg;
    char **names;
    size_t n;
    char *mid; /* path of names[1] */
    unsigned char *buf;
    size_t len;
    struct frames *fs;
};

static void tamper_setup(struct tamper *t)
{
    config(&t->cfg);
    t->names = multi_segment_log(&t->n, &t->cfg);
    t->mid = strdup(path_in(logdir, t->names[1]));
    t->buf = slurp(t->mid, &t->len);
    t->fs = malloc(sizeof(*t->fs));
    frames_of(t->buf, t->len, t->fs);
}

static void tamper_free(struct tamper *t)
{
    free_names(t->names, t->n);
    free(t->mid);
    free(t->buf);
    free(t->fs);
    audit_config_dispose(&t->cfg);
}

static void expect_fault(const char *segment, uint64_t seq, const char *words)
{
    struct audit_verify_result res = verify(NULL, NULL, 0, 0);
    ck_assert_msg(!res.ok, "tampering not detected");
    ck_assert_str_eq(res.segment, segment);
    ck_assert_uint_eq(res.sequence, seq);
    ck_assert_msg(strstr(res.message, words) != NULL, "message '%s' lacks '%s'", res.message,
                  words);
}

START_TEST(test_verify_locates_a_flipped_byte)
{
    struct tamper t;
    size_t k;

    tamper_setup(&t);
    k = nth_record(t.fs, 10);
    t.buf[t.fs->off[k] + AUDIT_FRAME_HEAD + 20] ^= 0x01;
    spit(t.mid, t.buf, t.len);
    expect_fault(t.names[1], t.fs->seq[k], "altered");
    tamper_free(&t);
}
END_TEST

START_TEST(test_verify_locates_a_deleted_record)
{
    struct tamper t;
    size_t k;

    tamper_setup(&t);
    k = nth_record(t.fs, 10);
    memmove(t.buf + t.fs->off[k], t.buf + t.fs->off[k] + t.fs->len[k],
            t.len - t.fs->off[k] - t.fs->len[k]);
    spit(t.mid, t.buf, t.len - t.fs->len[k]);
    expect_fault(t.names[1], t.fs->seq[k], "deleted");
    tamper_free(&t);
}
END_TEST

START_TEST(test_verify_locates_reordered_records)
{
    struct tamper t;
    size_t k;
    unsigned char *copy;

    tamper_setup(&t);
    k = nth_record(t.fs, 10);
    ck_assert_uint_eq(t.fs->kind[k + 1], AUDIT_FRAME_RECORD);
    copy = malloc(t.len);
    memcpy(copy, t.buf, t.len);
    /* Frames k and k+1 swapped. */
    memcpy(copy + t.fs->off[k], t.buf + t.fs->off[k + 1], t.fs->len[k + 1]);
    memcpy(copy + t.fs->off[k] + t.fs->len[k + 1], t.buf + t.fs->off[k], t.fs->len[k]);
    spit(t.mid, copy, t.len);
    expect_fault(t.names[1], t.fs->seq[k], "reordered");
    free(copy);
    tamper_free(&t);
}
END_TEST

START_TEST(test_verify_locates_a_truncated_record_inside_the_log)
{
    struct tamper t;
    size_t k;

    tamper_setup(&t);
    k = nth_record(t.fs, 10);
    /* Bytes cut out of the middle of a record: its length now runs into the next frames. */
    memmove(t.buf + t.fs->off[k] + 20, t.buf + t.fs->off[k] + 40, t.len - t.fs->off[k] - 40);
    spit(t.mid, t.buf, t.len - 20);
    {
        struct audit_verify_result res = verify(NULL, NULL, 0, 0);
        ck_assert(!res.ok);
        ck_assert_str_eq(res.segment, t.names[1]);
        ck_assert_uint_eq(res.sequence, t.fs->seq[k]);
        ck_assert_uint_eq(res.offset, t.fs->off[k]);
    }
    /* The end of a segment other than the last cut off is a fault even when allowed for the
     * last one. */
    ck_assert_int_eq(truncate(t.mid, (off_t)(t.fs->off[k] + 9)), 0);
    {
        struct audit_verify_result res = verify(NULL, NULL, 0, 1);
        ck_assert(!res.ok);
        ck_assert_str_eq(res.segment, t.names[1]);
        ck_assert_uint_eq(res.sequence, t.fs->seq[k]);
        ck_assert_ptr_nonnull(strstr(res.message, "truncated"));
    }
    tamper_free(&t);
}
END_TEST

/* Rewrites the segment at path with record k's payload changed, recomputing the whole chain of
 * the segment from its header (what an attacker without the signing key can do). */
static void rechain(const char *path, size_t k_record)
{
    size_t len;
    unsigned char *buf = slurp(path, &len);
    struct frames *fs = malloc(sizeof(*fs));
    unsigned char prev[AUDIT_HASH_LEN];
    Bastion__V1__AuditSegmentHeader *h;
    size_t k;

    frames_of(buf, len, fs);
    h = bastion__v1__audit_segment_header__unpack(NULL, fs->len[0] - AUDIT_FRAME_OVERHEAD,
                                                  buf + fs->off[0] + AUDIT_FRAME_HEAD);
    ck_assert_ptr_nonnull(h);
    memcpy(prev, h->previous_hash.data, AUDIT_HASH_LEN);
    bastion__v1__audit_segment_header__free_unpacked(h, NULL);
    k = nth_record(fs, k_record);
    {
        /* "ok" becomes "OK" in the record's result. */
        unsigned char *p = buf + fs->off[k] + AUDIT_FRAME_HEAD;
        size_t plen = fs->len[k] - AUDIT_FRAME_OVERHEAD;
        unsigned char *hit = memmem(p, plen, "\x72\x02ok", 4);
        ck_assert_ptr_nonnull(hit);
        hit[2] = 'O';
        hit[3] = 'K';
    }
    for (size_t i = 0; i < fs->n; i++) {
        unsigned char *f = buf + fs->off[i];
        size_t plen = fs->len[i] - AUDIT_FRAME_OVERHEAD;
        unsigned char *payload = malloc(plen + 1);
        memcpy(payload, f + AUDIT_FRAME_HEAD, plen);
        if (f[0] == AUDIT_FRAME_CHECKPOINT) {
            /* Checkpoints name the hash of the record before them: fix that too, keeping the
             * signature, which the attacker cannot make. */
            Bastion__V1__AuditCheckpoint *cp =
                bastion__v1__audit_checkpoint__unpack(NULL, plen, payload);
            ck_assert_ptr_nonnull(cp);
            ck_assert_uint_eq(cp->chain_hash.len, AUDIT_HASH_LEN);
            memcpy(cp->chain_hash.data, prev, AUDIT_HASH_LEN);
            ck_assert_uint_eq(bastion__v1__audit_checkpoint__pack(cp, payload), plen);
            bastion__v1__audit_checkpoint__free_unpacked(cp, NULL);
        }
        audit_frame_encode(f, f[0], payload, plen, prev, prev);
        free(payload);
    }
    spit(path, buf, len);
    free(fs);
    free(buf);
}

START_TEST(test_verify_names_a_replaced_segment_at_the_next_segment_header)
{
    struct tamper t;

    tamper_setup(&t);
    /* Segment 2 rewritten with a self-consistent chain (unsigned log): only the link from
     * segment 3 shows it. */
    rechain(t.mid, 5);
    {
        struct audit_verify_result res = verify(NULL, NULL, 0, 0);
        ck_assert(!res.ok);
        ck_assert_str_eq(res.segment, t.names[2]);
        ck_assert_ptr_nonnull(strstr(res.message, t.names[1]));
        ck_assert_ptr_nonnull(strstr(res.message, "replaced"));
    }
    tamper_free(&t);
}
END_TEST

START_TEST(test_verify_detects_a_renamed_segment)
{
    struct tamper t;
    char other[AUDIT_SEGMENT_NAME_LEN + 1];

    tamper_setup(&t);
    audit_segment_name(other, 5);
    ck_assert_int_eq(rename(path_in(logdir, t.names[0]), path_in(logdir, other)), 0);
    {
        struct audit_verify_result res = verify(NULL, NULL, 0, 0);
        ck_assert(!res.ok);
        ck_assert_str_eq(res.segment, other);
        ck_assert_ptr_nonnull(strstr(res.message, "renamed"));
    }
    tamper_free(&t);
}
END_TEST

/* ---- Signatures, key rotation, anchors ----------------------------------------------------- */

START_TEST(test_signed_checkpoints_verify_and_a_rewritten_chain_does_not)
{
    struct audit_config cfg;
    struct audit *a;
    struct audit_pubkeys *keys;
    struct audit_verify_result res;
    char **names;
    size_t n;

    make_key(path_in(dir, "k1.pem"), NULL);
    config(&cfg);
    set_str(&cfg.signing.key, path_in(dir, "k1.pem"));
    set_str(&cfg.signing.public_keys_dir, keysdir);
    cfg.checkpoint.records = 50;
    a = open_audit(&cfg);
    write_requests(a, 600, "alice");
    audit_free(a);
    keys = load_keys(keysdir); /* the writer exported its public key */
    ck_assert_uint_eq(audit_pubkeys_count(keys), 1);
    res = verify(keys, NULL, 0, 0);
    assert_ok(&res);
    ck_assert_uint_gt(res.verified_checkpoints, 10);
    ck_assert_uint_eq(res.verified_checkpoints, res.checkpoints);
    ck_assert_uint_eq(res.last_verified_sequence, res.last_sequence);

    names = segments(&n);
    rechain(path_in(logdir, names[n - 1]), 3);
    res = verify(keys, NULL, 0, 0);
    ck_assert(!res.ok);
    ck_assert_str_eq(res.segment, names[n - 1]);
    ck_assert_ptr_nonnull(strstr(res.message, "signature"));
    audit_pubkeys_free(keys);
    free_names(names, n);
    audit_config_dispose(&cfg);
}
END_TEST

START_TEST(test_key_rotation_starts_a_new_key_id_and_old_keys_still_verify)
{
    struct audit_config cfg;
    struct audit *a;
    struct audit_pubkeys *keys;
    struct audit_verify_result res;
    struct bst_err err;
    struct seen *s;
    char **names;
    size_t n;

    make_key(path_in(dir, "k1.pem"), NULL);
    make_key(path_in(dir, "k2.pem"), path_in(dir, "k2.pub"));
    config(&cfg);
    set_str(&cfg.signing.key, path_in(dir, "k1.pem"));
    set_str(&cfg.signing.public_keys_dir, keysdir);
    a = open_audit(&cfg);
    write_requests(a, 10, "alice");
    /* The same key again is no rotation. */
    ck_assert_int_eq(audit_rotate_key(a, NULL, NULL, &err), BST_OK);
    ck_assert_int_eq(audit_rotate_key(a, path_in(dir, "k2.pem"), NULL, &err), BST_OK);
    write_requests(a, 10, "bob");
    audit_free(a);
    s = read_all(logdir);
    ck_assert_uint_eq(count_action(s, "key_rotation"), 1);
    seen_free(s);
    keys = load_keys(keysdir);
    ck_assert_uint_eq(audit_pubkeys_count(keys), 2);
    res = verify(keys, NULL, 0, 0);
    assert_ok(&res);
    audit_pubkeys_free(keys);

    /* With only the new public key, the old checkpoints name an unknown key. */
    keys = audit_pubkeys_new();
    ck_assert_int_eq(audit_pubkeys_add_file(keys, path_in(dir, "k2.pub"), &err), BST_OK);
    res = verify(keys, NULL, 0, 0);
    ck_assert(!res.ok);
    ck_assert_ptr_nonnull(strstr(res.message, "unknown key id"));
    names = segments(&n);
    ck_assert_str_eq(res.segment, names[0]);
    free_names(names, n);
    audit_pubkeys_free(keys);
    audit_config_dispose(&cfg);
}
END_TEST

START_TEST(test_a_new_key_under_the_same_explicit_key_id_is_refused)
{
    struct audit_config cfg;
    struct audit *a;
    struct bst_err err;

    make_key(path_in(dir, "k1.pem"), NULL);
    make_key(path_in(dir, "k2.pem"), NULL);
    config(&cfg);
    set_str(&cfg.signing.key, path_in(dir, "k1.pem"));
    set_str(&cfg.signing.key_id, "prod-2024");
    a = open_audit(&cfg);
    ck_assert_int_eq(audit_rotate_key(a, path_in(dir, "k2.pem"), "prod-2024", &err),
                     BST_INVALID_ARGUMENT);
    ck_assert_int_eq(audit_rotate_key(a, path_in(dir, "k2.pem"), "prod-2025", &err), BST_OK);
    ck_assert_int_eq(audit_rotate_key(a, path_in(dir, "k2.pem"), "../../etc", &err),
                     BST_INVALID_ARGUMENT);
    audit_free(a);
    audit_config_dispose(&cfg);
}
END_TEST

START_TEST(test_signing_key_readable_by_others_is_refused)
{
    struct audit_config cfg;
    struct audit *a = NULL;
    struct bst_err err;

    make_key(path_in(dir, "k1.pem"), NULL);
    ck_assert_int_eq(chmod(path_in(dir, "k1.pem"), 0644), 0);
    config(&cfg);
    set_str(&cfg.signing.key, path_in(dir, "k1.pem"));
    ck_assert_int_eq(audit_new(&a, &cfg, &err), BST_PERMISSION_DENIED);
    ck_assert_ptr_null(a);
    audit_config_dispose(&cfg);
}
END_TEST

START_TEST(test_anchor_detects_truncation_after_it_and_a_rewritten_head)
{
    struct audit_config cfg;
    struct audit *a;
    struct audit_verify_result res;
    struct audit_anchor an;
    char **names;
    size_t n;

    config(&cfg);
    a = open_audit(&cfg);
    write_requests(a, 600, "alice");
    audit_free(a);
    res = verify(NULL, NULL, 0, 0);
    assert_ok(&res);
    an.sequence = res.last_sequence;
    memcpy(an.hash, res.head_hash, AUDIT_HASH_LEN);
    res = verify(NULL, &an, 1, 0);
    assert_ok(&res);
    ck_assert_uint_eq(res.anchors_checked, 1);

    /* The last segment removed: the chain is still consistent, only the anchor sees it. */
    names = segments(&n);
    ck_assert_int_eq(unlink(path_in(logdir, names[n - 1])), 0);
    res = verify(NULL, NULL, 0, 0);
    assert_ok(&res);
    res = verify(NULL, &an, 1, 0);
    ck_assert(!res.ok);
    ck_assert_ptr_nonnull(strstr(res.message, "truncated"));
    ck_assert_uint_eq(res.sequence, an.sequence);

    /* An anchor whose hash differs. */
    an.sequence = 5;
    res = verify(NULL, &an, 1, 0);
    ck_assert(!res.ok);
    ck_assert_uint_eq(res.sequence, 5);
    ck_assert_ptr_nonnull(strstr(res.message, "rewritten"));
    free_names(names, n);
    audit_config_dispose(&cfg);
}
END_TEST

/* ---- Disk full ----------------------------------------------------------------------------- */

/* Runs body in a child process (RLIMIT_FSIZE must not leak into other tests) and checks that it
 * exited 0. */
static void in_child(void (*body)(void))
{
    pid_t pid = fork();
    int status = 0;
    ck_assert_int_ge(pid, 0);
    if (pid == 0) {
        body();
        _exit(0);
    }
    ck_assert_int_eq(waitpid(pid, &status, 0), pid);
    ck_assert_msg(WIFEXITED(status), "child died with signal %d", WTERMSIG(status));
    ck_assert_msg(WEXITSTATUS(status) == 0, "child failed at step %d", WEXITSTATUS(status));
}

#define CHILD_CHECK(cond, step)                                                                    \
    do {                                                                                           \
        if (!(cond)) {                                                                             \
            fprintf(stderr, "child check failed: %s\n", #cond);                                    \
            _exit(step);                                                                           \
        }                                                                                          \
    } while (0)

/* Limits the file size to the current segment's size plus room for a couple of records. */
static void limit_file_size(void)
{
    char **names;
    size_t n;
    struct stat st;
    struct rlimit rl;
    struct bst_err err;

    CHILD_CHECK(audit_list_segments(logdir, &names, &n, &err) == BST_OK && n > 0, 90);
    CHILD_CHECK(stat(path_in(logdir, names[n - 1]), &st) == 0, 91);
    free_names(names, n);
    getrlimit(RLIMIT_FSIZE, &rl);
    rl.rlim_cur = (rlim_t)st.st_size + 400;
    CHILD_CHECK(setrlimit(RLIMIT_FSIZE, &rl) == 0, 92);
}

static void unlimit_file_size(void)
{
    struct rlimit rl;
    getrlimit(RLIMIT_FSIZE, &rl);
    rl.rlim_cur = rl.rlim_max;
    CHILD_CHECK(setrlimit(RLIMIT_FSIZE, &rl) == 0, 93);
}

static void disk_full_blocking(void)
{
    struct audit_config cfg;
    struct audit *a;
    struct audit_stats st;
    int ok = 0, refused = 0;
    struct seen *s;
    struct audit_verify_result res;

    signal(SIGXFSZ, SIG_IGN);
    config(&cfg);
    a = open_audit(&cfg);
    write_requests(a, 3, "alice");
    limit_file_size();
    for (int i = 0; i < 40; i++) {
        Bastion__V1__AuditRecord r;
        Bastion__V1__AuditPrincipal p;
        request(&r, &p, "during", "full");
        if (submit_wait(a, &r) == BST_OK)
            ok++;
        else
            refused++;
    }
    CHILD_CHECK(refused > 30, 1); /* fail closed */
    audit_stats(a, &st);
    CHILD_CHECK(st.violations == (uint64_t)refused, 2);
    CHILD_CHECK(st.healthy == 0, 3);
    CHILD_CHECK(st.write_errors > 0, 4);
    /* What a failed write left was cut: the log ends at a frame boundary, no torn tail. */
    res = verify(NULL, NULL, 0, 0);
    CHILD_CHECK(res.ok, 10);
    unlimit_file_size();
    write_requests(a, 3, "after"); /* recovers by itself */
    audit_stats(a, &st);
    CHILD_CHECK(st.healthy == 1, 5);
    audit_free(a);
    res = verify(NULL, NULL, 0, 0);
    CHILD_CHECK(res.ok, 6);
    s = read_all(logdir);
    CHILD_CHECK(count_action(s, "write_failed") == 1, 7);
    {
        /* Exactly the acknowledged records are in the log. */
        size_t during = 0, after = 0;
        for (size_t i = 0; i < s->n; i++) {
            during += s->user[i] != NULL && strcmp(s->user[i], "during") == 0;
            after += s->user[i] != NULL && strcmp(s->user[i], "after") == 0;
        }
        CHILD_CHECK(during == (size_t)ok, 8);
        CHILD_CHECK(after == 3, 9);
    }
    seen_free(s);
    audit_config_dispose(&cfg);
}

START_TEST(test_disk_full_fails_closed_in_blocking_mode_and_recovers)
{
    in_child(disk_full_blocking);
}
END_TEST

static void disk_full_best_effort(void)
{
    struct audit_config cfg;
    struct audit *a;
    struct audit_stats st;

    signal(SIGXFSZ, SIG_IGN);
    config(&cfg);
    cfg.mode = AUDIT_MODE_BEST_EFFORT;
    cfg.fsync.policy = AUDIT_FSYNC_ALWAYS;
    a = open_audit(&cfg);
    limit_file_size();
    for (int i = 0; i < 40; i++) {
        Bastion__V1__AuditRecord r;
        Bastion__V1__AuditPrincipal p;
        request(&r, &p, "during", "full");
        CHILD_CHECK(submit_wait(a, &r) == BST_OK, 1); /* never refused */
    }
    CHILD_CHECK(audit_flush(a, 10000) == BST_OK, 2);
    audit_stats(a, &st);
    CHILD_CHECK(st.records_dropped > 30, 3);
    CHILD_CHECK(st.violations == 0, 4);
    /* Every record is written or dropped (written may include the outage record). */
    CHILD_CHECK(st.records_written + st.records_dropped >= 41, 5);
    CHILD_CHECK(st.records_written + st.records_dropped <= 42, 5);
    unlimit_file_size();
    audit_free(a);
    {
        struct audit_verify_result res = verify(NULL, NULL, 0, 0);
        CHILD_CHECK(res.ok, 6);
    }
    audit_config_dispose(&cfg);
}

START_TEST(test_disk_full_in_best_effort_mode_drops_and_counts)
{
    in_child(disk_full_best_effort);
}
END_TEST

static void disk_full_batch(void)
{
    struct audit_config cfg;
    struct audit *a;
    struct audit_stats st;
    struct seen *s;
    struct timespec ts = {0, 300 * 1000 * 1000};

    signal(SIGXFSZ, SIG_IGN);
    config(&cfg);
    cfg.mode = AUDIT_MODE_BATCH;
    a = open_audit(&cfg);
    limit_file_size();
    for (int i = 0; i < 20; i++) {
        Bastion__V1__AuditRecord r;
        Bastion__V1__AuditPrincipal p;
        request(&r, &p, "during", "full");
        CHILD_CHECK(submit_wait(a, &r) == BST_OK, 1); /* queued */
    }
    nanosleep(&ts, NULL);
    audit_stats(a, &st);
    CHILD_CHECK(st.healthy == 0, 2);
    unlimit_file_size();
    CHILD_CHECK(audit_flush(a, 10000) == BST_OK, 3);
    audit_free(a);
    s = read_all(logdir);
    {
        /* Batch mode keeps the records and writes them once space returns: none is lost. */
        size_t during = 0;
        for (size_t i = 0; i < s->n; i++)
            during += s->user[i] != NULL && strcmp(s->user[i], "during") == 0;
        CHILD_CHECK(during == 20, 4);
    }
    seen_free(s);
    audit_config_dispose(&cfg);
}

START_TEST(test_disk_full_in_batch_mode_keeps_records_until_space_returns)
{
    in_child(disk_full_batch);
}
END_TEST

/* ---- Modes and the queue ------------------------------------------------------------------- */

struct sync_probe {
    struct waiter w;
    atomic_int returned; /* set after audit_submit returned */
    atomic_int called_before_return;
};

static void probe_done(void *arg, enum bst_status st)
{
    struct sync_probe *p = arg;
    if (!p->returned)
        p->called_before_return = 1;
    on_done(&p->w, st);
}

START_TEST(test_batch_mode_answers_when_queued_and_a_full_queue_makes_callers_wait)
{
    enum { N = 50 };
    struct audit_config cfg;
    struct audit *a;
    static struct sync_probe probes[N];
    int waited = 0;

    config(&cfg);
    cfg.mode = AUDIT_MODE_BATCH;
    cfg.queue.records = 1;
    cfg.fsync.policy = AUDIT_FSYNC_ALWAYS; /* a writer much slower than the submitter */
    a = open_audit(&cfg);
    for (int i = 0; i < N; i++) {
        Bastion__V1__AuditRecord r;
        Bastion__V1__AuditPrincipal p;
        pthread_mutex_init(&probes[i].w.mu, NULL);
        pthread_cond_init(&probes[i].w.cv, NULL);
        request(&r, &p, "alice", "q");
        ck_assert_int_eq(audit_submit(a, &r, probe_done, &probes[i]), BST_OK);
        probes[i].returned = 1;
    }
    /* The first fits: answered inside audit_submit. Later ones found the queue full and were
     * answered later, from the writer, without blocking this thread. */
    ck_assert_int_eq(probes[0].called_before_return, 1);
    for (int i = 0; i < N; i++) {
        ck_assert_int_eq(wait_done(&probes[i].w), BST_OK);
        waited += !probes[i].called_before_return;
    }
    ck_assert_int_gt(waited, 0);
    audit_free(a);
    for (int i = 0; i < N; i++)
        ck_assert_int_eq(probes[i].w.calls, 1);
    {
        struct seen *s = read_all(logdir);
        ck_assert_uint_eq(s->n, N + 2);
        seen_free(s);
    }
    audit_config_dispose(&cfg);
}
END_TEST

/* A done callback that holds the writer thread until released. */
struct gate {
    pthread_mutex_t mu;
    pthread_cond_t cv;
    int entered, open;
};

static void gate_done(void *arg, enum bst_status st)
{
    struct gate *g = arg;
    (void)st;
    pthread_mutex_lock(&g->mu);
    g->entered = 1;
    pthread_cond_broadcast(&g->cv);
    while (!g->open)
        pthread_cond_wait(&g->cv, &g->mu);
    pthread_mutex_unlock(&g->mu);
}

START_TEST(test_blocking_mode_refuses_when_the_waiting_list_is_full)
{
    struct audit_config cfg;
    struct audit *a;
    struct gate g = {PTHREAD_MUTEX_INITIALIZER, PTHREAD_COND_INITIALIZER, 0, 0};
    struct waiter w[4] = {WAITER_INIT, WAITER_INIT, WAITER_INIT, WAITER_INIT};
    Bastion__V1__AuditRecord r;
    Bastion__V1__AuditPrincipal p;
    struct audit_stats st;

    config(&cfg);
    cfg.queue.records = 1;
    cfg.queue.waiting = 1;
    a = open_audit(&cfg);
    /* The first record's callback holds the writer: the queue can only fill. */
    request(&r, &p, "alice", "gate");
    audit_submit(a, &r, gate_done, &g);
    pthread_mutex_lock(&g.mu);
    while (!g.entered)
        pthread_cond_wait(&g.cv, &g.mu);
    pthread_mutex_unlock(&g.mu);
    for (int i = 0; i < 4; i++) {
        request(&r, &p, "alice", "q");
        audit_submit(a, &r, on_done, &w[i]);
    }
    /* One queued, one waiting, two refused at once. */
    ck_assert_int_eq(w[0].calls, 0);
    ck_assert_int_eq(w[1].calls, 0);
    ck_assert_int_eq(w[2].calls, 1);
    ck_assert_int_eq(w[2].st, BST_UNAVAILABLE);
    ck_assert_int_eq(w[3].st, BST_UNAVAILABLE);
    audit_stats(a, &st);
    ck_assert_uint_eq(st.violations, 2);
    ck_assert_uint_eq(st.waiting, 1);
    pthread_mutex_lock(&g.mu);
    g.open = 1;
    pthread_cond_broadcast(&g.cv);
    pthread_mutex_unlock(&g.mu);
    ck_assert_int_eq(wait_done(&w[0]), BST_OK);
    ck_assert_int_eq(wait_done(&w[1]), BST_OK);
    audit_free(a);
    audit_config_dispose(&cfg);
}
END_TEST

START_TEST(test_best_effort_answers_at_once_and_counts_what_it_drops)
{
    struct audit_config cfg;
    struct audit *a;
    struct audit_stats st;
    int n = 300;

    config(&cfg);
    cfg.mode = AUDIT_MODE_BEST_EFFORT;
    cfg.queue.records = 1;
    cfg.fsync.policy = AUDIT_FSYNC_ALWAYS; /* a slow writer */
    a = open_audit(&cfg);
    for (int i = 0; i < n; i++) {
        struct sync_probe p;
        Bastion__V1__AuditRecord r;
        Bastion__V1__AuditPrincipal pr;
        memset(&p, 0, sizeof(p));
        pthread_mutex_init(&p.w.mu, NULL);
        pthread_cond_init(&p.w.cv, NULL);
        request(&r, &pr, "alice", "q");
        audit_submit(a, &r, probe_done, &p);
        ck_assert_int_eq(p.called_before_return, 1);
        ck_assert_int_eq(p.w.st, BST_OK);
    }
    ck_assert_int_eq(audit_flush(a, 10000), BST_OK);
    audit_stats(a, &st);
    ck_assert_uint_gt(st.records_dropped, 0);
    ck_assert_uint_eq(st.records_written + st.records_dropped, (uint64_t)n + 1);
    audit_free(a);
    audit_config_dispose(&cfg);
}
END_TEST

struct conc {
    struct audit *a;
    int thread;
    atomic_int *calls;
    int per_thread;
};

static void count_done(void *arg, enum bst_status st)
{
    atomic_int *c = arg;
    if (st == BST_OK)
        atomic_fetch_add(c, 1);
    else
        atomic_fetch_add(c, 1000000);
}

static void *submitter(void *arg)
{
    struct conc *c = arg;
    for (int i = 0; i < c->per_thread; i++) {
        Bastion__V1__AuditRecord r;
        Bastion__V1__AuditPrincipal p;
        char id[40];
        snprintf(id, sizeof(id), "t%d-%d", c->thread, i);
        request(&r, &p, "conc", id);
        audit_submit(c->a, &r, count_done, &c->calls[c->thread * c->per_thread + i]);
    }
    return NULL;
}

START_TEST(test_concurrent_submitters_get_exactly_one_record_each_in_strict_sequence)
{
    enum { THREADS = 8, PER = 400 };
    struct audit_config cfg;
    struct audit *a;
    pthread_t th[THREADS];
    struct conc c[THREADS];
    static atomic_int calls[THREADS * PER];
    struct seen *s;
    static unsigned char hit[THREADS * PER];

    config(&cfg);
    cfg.segment.max_bytes = 256 * 1024;
    a = open_audit(&cfg);
    for (int i = 0; i < THREADS; i++) {
        c[i] = (struct conc){a, i, calls, PER};
        pthread_create(&th[i], NULL, submitter, &c[i]);
    }
    for (int i = 0; i < THREADS; i++)
        pthread_join(th[i], NULL);
    audit_free(a);
    for (int i = 0; i < THREADS * PER; i++)
        ck_assert_int_eq(atomic_load(&calls[i]), 1); /* done exactly once, OK */
    s = read_all(logdir);
    ck_assert_uint_eq(s->n, THREADS * PER + 2);
    for (size_t i = 0; i < s->n; i++) {
        int t, k;
        ck_assert_uint_eq(s->seq[i], i + 1);
        if (s->reqid[i] == NULL)
            continue;
        ck_assert_int_eq(sscanf(s->reqid[i], "t%d-%d", &t, &k), 2);
        ck_assert_int_eq(hit[t * PER + k], 0);
        hit[t * PER + k] = 1;
    }
    seen_free(s);
    {
        struct audit_verify_result res = verify(NULL, NULL, 0, 0);
        assert_ok(&res);
    }
    audit_config_dispose(&cfg);
}
END_TEST

START_TEST(test_admin_events_go_into_the_log)
{
    struct audit_config cfg;
    struct audit *a;

    config(&cfg);
    a = open_audit(&cfg);
    ck_assert_int_eq(audit_admin_event(a, "reload", "configuration reloaded"), BST_OK);
    ck_assert_int_eq(audit_flush(a, 5000), BST_OK);
    audit_free(a);
    {
        struct seen *s = read_all(logdir);
        ck_assert_uint_eq(count_action(s, "reload"), 1);
        seen_free(s);
    }
    audit_config_dispose(&cfg);
}
END_TEST

/* ---- Webhook ------------------------------------------------------------------------------- */

START_TEST(test_an_unresponsive_webhook_never_stalls_the_writer_and_loss_is_counted)
{
    struct audit_config cfg;
    struct audit *a;
    struct audit_stats st;
    struct sockaddr_in sin;
    socklen_t sl = sizeof(sin);
    int s = socket(AF_INET, SOCK_STREAM, 0);
    char url[64];
    struct timespec t0, t1;

    /* A listener that never accepts: connections complete, no answer ever comes. */
    memset(&sin, 0, sizeof(sin));
    sin.sin_family = AF_INET;
    sin.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    ck_assert_int_eq(bind(s, (struct sockaddr *)&sin, sizeof(sin)), 0);
    ck_assert_int_eq(listen(s, 16), 0);
    getsockname(s, (struct sockaddr *)&sin, &sl);
    snprintf(url, sizeof(url), "http://127.0.0.1:%d/audit", ntohs(sin.sin_port));
    config(&cfg);
    set_str(&cfg.webhook.url, url);
    cfg.webhook.memory_bytes = 64 * 1024;
    cfg.webhook.timeout_ms = 1000;
    cfg.webhook.batch_records = 10;
    cfg.webhook.batch_wait_ms = 0;
    cfg.mode = AUDIT_MODE_BATCH;
    cfg.fsync.policy = AUDIT_FSYNC_NEVER;
    a = open_audit(&cfg);
    clock_gettime(CLOCK_MONOTONIC, &t0);
    write_requests(a, 2000, "alice");
    ck_assert_int_eq(audit_flush(a, 10000), BST_OK);
    clock_gettime(CLOCK_MONOTONIC, &t1);
    audit_stats(a, &st);
    ck_assert_uint_eq(st.records_written, 2001);
    ck_assert_uint_gt(st.webhook_lost, 0);
    ck_assert_uint_le(st.webhook_queue_bytes, 64 * 1024);
    /* 2000 records are not held up by 1 s POST timeouts. */
    ck_assert_int_lt(t1.tv_sec - t0.tv_sec, 5);
    audit_free(a);
    close(s);
    audit_config_dispose(&cfg);
}
END_TEST

/* ---- Configuration and rendering ----------------------------------------------------------- */

START_TEST(test_config_section_decodes_nested_keys_and_refuses_unknown_ones)
{
    static const char yaml[] =
        "audit:\n"
        "  directory: /var/log/x\n"
        "  mode: best-effort\n"
        "  queue: {records: 5, bytes: 1MiB}\n"
        "  retention: {segments: 3, max_age: 720h}\n"
        "  fsync: {policy: never, group_commit_window: 2ms}\n"
        "  webhook: {url: 'https://collector.example/audit', format: protobuf}\n"
        "  events: {authentication: all, authorization: none}\n";
    struct bst_yaml_doc *doc;
    struct audit_config cfg;
    struct bst_err err;

    memset(&cfg, 0, sizeof(cfg));
    ck_assert_int_eq(bst_yaml_parse("t.yaml", yaml, strlen(yaml), NULL, &doc, &err), BST_OK);
    ck_assert_msg(bst_yaml_decode(doc, bst_yaml_get(doc->root, "audit"), audit_config_fields, &cfg,
                                  &err) == BST_OK,
                  "%s", err.msg);
    bst_yaml_free(doc);
    ck_assert_str_eq(cfg.directory, "/var/log/x");
    ck_assert_int_eq(cfg.mode, AUDIT_MODE_BEST_EFFORT);
    ck_assert_int_eq(cfg.queue.records, 5);
    ck_assert_int_eq(cfg.queue.bytes, 1024 * 1024);
    ck_assert_int_eq(cfg.queue.waiting, 100000); /* default */
    ck_assert_int_eq(cfg.retention.max_age_ms, 720LL * 3600 * 1000);
    ck_assert_int_eq(cfg.fsync.policy, AUDIT_FSYNC_NEVER);
    ck_assert_int_eq(cfg.fsync.group_commit_ms, 2);
    ck_assert_int_eq(cfg.webhook.format, AUDIT_WEBHOOK_PROTOBUF);
    ck_assert_int_eq(cfg.events.authentication, AUDIT_EVENTS_ALL);
    ck_assert_int_eq(cfg.events.authorization, AUDIT_EVENTS_NONE);
    ck_assert_int_eq(audit_config_check(&cfg, &err), BST_OK);
    audit_config_dispose(&cfg);

    memset(&cfg, 0, sizeof(cfg));
    ck_assert_int_eq(
        bst_yaml_parse("t.yaml", "audit: {queue: {record: 5}}\n", 28, NULL, &doc, &err), BST_OK);
    ck_assert_int_eq(
        bst_yaml_decode(doc, bst_yaml_get(doc->root, "audit"), audit_config_fields, &cfg, &err),
        BST_INVALID_ARGUMENT);
    ck_assert_ptr_nonnull(strstr(err.msg, "t.yaml:1:"));
    ck_assert_ptr_nonnull(strstr(err.msg, "record"));
    bst_yaml_free(doc);
    audit_config_dispose(&cfg);
}
END_TEST

START_TEST(test_config_check_refuses_plain_http_off_loopback_and_bad_key_ids)
{
    struct audit_config cfg;
    struct bst_err err;

    config(&cfg);
    set_str(&cfg.webhook.url, "http://collector.example/audit");
    ck_assert_int_eq(audit_config_check(&cfg, &err), BST_INVALID_ARGUMENT);
    ck_assert_ptr_nonnull(strstr(err.msg, "http://"));
    cfg.webhook.allow_insecure_http = 1;
    ck_assert_int_eq(audit_config_check(&cfg, &err), BST_OK);
    set_str(&cfg.webhook.url, "http://127.0.0.1:9/x");
    cfg.webhook.allow_insecure_http = 0;
    ck_assert_int_eq(audit_config_check(&cfg, &err), BST_OK);
    set_str(&cfg.webhook.url, "ftp://127.0.0.1/x");
    ck_assert_int_eq(audit_config_check(&cfg, &err), BST_INVALID_ARGUMENT);
    set_str(&cfg.webhook.url, "");
    set_str(&cfg.signing.key, "/k.pem");
    set_str(&cfg.signing.key_id, "../x");
    ck_assert_int_eq(audit_config_check(&cfg, &err), BST_INVALID_ARGUMENT);
    audit_config_dispose(&cfg);
}
END_TEST

START_TEST(test_render_escapes_controls_ansi_newlines_bidi_and_bad_utf8)
{
    struct audit_buf b = {NULL, 0, 0};
    static const char in[] = "a\x1b[31m\n\r\t\"\\\x7f\xc2\x9b\xe2\x80\xae\xe2\x80\xa8\xff"
                             "\xc3\xa9";

    ck_assert_int_eq(audit_json_string(&b, in, sizeof(in) - 1), 0);
    audit_buf_putc(&b, '\0');
    ck_assert_str_eq((char *)b.data, "\"a\\u001b[31m\\n\\r\\t\\\"\\\\\\u007f\\u009b\\u202e\\u2028"
                                     "\\ufffd\xc3\xa9\"");
    audit_buf_free(&b);
}
END_TEST

START_TEST(test_reader_following_sees_records_written_after_it_reached_the_end)
{
    struct audit_config cfg;
    struct audit *a;
    struct audit_reader *r;
    struct audit_item it;
    struct bst_err err;
    enum bst_status rv;
    int records = 0;

    config(&cfg);
    a = open_audit(&cfg);
    write_requests(a, 2, "alice");
    ck_assert_int_eq(audit_reader_open(&r, logdir, 1, &err), BST_OK);
    while ((rv = audit_reader_next(r, &it, &err)) == BST_OK)
        records += it.kind == AUDIT_FRAME_RECORD;
    ck_assert_int_eq(rv, BST_UNAVAILABLE);
    ck_assert_int_eq(records, 3);
    write_requests(a, 500, "bob"); /* crosses into new segments */
    while ((rv = audit_reader_next(r, &it, &err)) == BST_OK)
        records += it.kind == AUDIT_FRAME_RECORD;
    ck_assert_int_eq(rv, BST_UNAVAILABLE);
    ck_assert_int_eq(records, 503);
    audit_reader_free(r);
    audit_free(a);
    audit_config_dispose(&cfg);
}
END_TEST

int main(void)
{
    Suite *s = suite_create("audit");
    TCase *tc;
    SRunner *sr;
    int failed;

    tc = tcase_create("format");
    tcase_add_test(tc, test_frame_roundtrip_keeps_bytes_and_chains_on_the_previous_hash);
    tcase_add_test(tc, test_frame_reader_refuses_a_huge_length_and_reports_a_torn_frame);
    tcase_add_test(tc, test_segment_names_parse_only_in_the_exact_form);
    tcase_add_test(tc, test_anchor_parses_hex_and_base64_and_refuses_the_rest);
    tcase_add_test(tc, test_render_escapes_controls_ansi_newlines_bidi_and_bad_utf8);
    tcase_add_test(tc, test_config_section_decodes_nested_keys_and_refuses_unknown_ones);
    suite_add_tcase(s, tc);

    tc = tcase_create("writer");
    tcase_add_checked_fixture(tc, setup, teardown);
    tcase_set_timeout(tc, 60);
    tcase_add_test(tc, test_records_get_consecutive_sequences_between_startup_and_shutdown_events);
    tcase_add_test(tc, test_library_assigns_sequence_and_fills_absent_event_id_and_time_only);
    tcase_add_test(tc, test_invalid_utf8_is_replaced_before_the_record_is_written);
    tcase_add_test(tc, test_oversized_record_is_shortened_and_marked_truncated);
    tcase_add_test(tc, test_compliance_tags_are_added_by_event_type);
    tcase_add_test(tc, test_event_settings_filter_authentication_successes_but_not_failures);
    tcase_add_test(tc, test_files_are_0600_in_a_0700_directory_locked_against_a_second_writer);
    tcase_add_test(tc, test_segments_rotate_by_size_each_ending_with_a_checkpoint);
    tcase_add_test(tc, test_segments_rotate_by_age_on_the_writer_timer);
    tcase_add_test(tc, test_retention_by_count_keeps_the_newest_and_verify_accepts_the_rest);
    tcase_add_test(tc, test_retention_by_age_removes_segments_written_long_ago);
    tcase_add_test(tc, test_deleting_the_oldest_segment_without_retention_is_detected);
    tcase_add_test(tc, test_torn_tail_is_cut_at_restart_with_an_admin_event_and_kept_aside);
    tcase_add_test(tc, test_invalid_data_after_the_chain_is_cut_as_a_security_violation);
    tcase_add_test(tc, test_a_segment_with_no_header_is_moved_aside_and_the_chain_continues);
    tcase_add_test(tc, test_verify_locates_a_flipped_byte);
    tcase_add_test(tc, test_verify_locates_a_deleted_record);
    tcase_add_test(tc, test_verify_locates_reordered_records);
    tcase_add_test(tc, test_verify_locates_a_truncated_record_inside_the_log);
    tcase_add_test(tc, test_verify_names_a_replaced_segment_at_the_next_segment_header);
    tcase_add_test(tc, test_verify_detects_a_renamed_segment);
    tcase_add_test(tc, test_signed_checkpoints_verify_and_a_rewritten_chain_does_not);
    tcase_add_test(tc, test_key_rotation_starts_a_new_key_id_and_old_keys_still_verify);
    tcase_add_test(tc, test_a_new_key_under_the_same_explicit_key_id_is_refused);
    tcase_add_test(tc, test_signing_key_readable_by_others_is_refused);
    tcase_add_test(tc, test_anchor_detects_truncation_after_it_and_a_rewritten_head);
    tcase_add_test(tc, test_disk_full_fails_closed_in_blocking_mode_and_recovers);
    tcase_add_test(tc, test_disk_full_in_best_effort_mode_drops_and_counts);
    tcase_add_test(tc, test_disk_full_in_batch_mode_keeps_records_until_space_returns);
    tcase_add_test(tc, test_batch_mode_answers_when_queued_and_a_full_queue_makes_callers_wait);
    tcase_add_test(tc, test_blocking_mode_refuses_when_the_waiting_list_is_full);
    tcase_add_test(tc, test_best_effort_answers_at_once_and_counts_what_it_drops);
    tcase_add_test(tc, test_concurrent_submitters_get_exactly_one_record_each_in_strict_sequence);
    tcase_add_test(tc, test_admin_events_go_into_the_log);
    tcase_add_test(tc, test_an_unresponsive_webhook_never_stalls_the_writer_and_loss_is_counted);
    tcase_add_test(tc, test_config_check_refuses_plain_http_off_loopback_and_bad_key_ids);
    tcase_add_test(tc, test_reader_following_sees_records_written_after_it_reached_the_end);
    suite_add_tcase(s, tc);

    sr = srunner_create(s);
    srunner_run_all(sr, CK_NORMAL);
    failed = srunner_ntests_failed(sr);
    srunner_free(sr);
    return failed == 0 ? 0 : 1;
}
