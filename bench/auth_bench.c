/* auth_bench: how fast the authentication library is on this machine, through its public entry
 * points. Reports the median of several rounds of
 *   - JWT verifications per second for HS256 and ES256: a token seen for the first time (the
 *     signature checked through libjwt, jwt_verify without the cache) and a repeated token
 *     (authn_authenticate with `Bearer <jwt>`, served from the verified-token cache),
 *   - API key verifications per second,
 *   - the latency of one password login (authn_login_start to its callback; scrypt N=2^15,
 *     r=8, p=1, the defaults of `bastion users hash`).
 * Usage: auth_bench [seconds-per-round]   (default 1; 5 rounds each)
 * Build: the `auth_bench` target (cmake --build BUILD --target auth_bench); use a release build
 * (-DCMAKE_BUILD_TYPE=Release, no sanitizers) for numbers worth quoting. */
#include "authn.h"
#include "authn_internal.h"
#include "clock.h"
#include "reload.h"

#include <fcntl.h>
#include <openssl/evp.h>
#include <openssl/pem.h>
#include <semaphore.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#define ROUNDS 5

static char dir[] = "/tmp/auth-bench-XXXXXX";

static char *path(const char *name)
{
    size_t n = strlen(dir) + strlen(name) + 2;
    char *p = malloc(n);
    if (p == NULL)
        abort();
    snprintf(p, n, "%s/%s", dir, name);
    return p;
}

static char *write_file(const char *name, const char *data)
{
    char *p = path(name);
    int fd = open(p, O_WRONLY | O_CREAT | O_TRUNC, 0600);
    if (fd < 0 || write(fd, data, strlen(data)) != (ssize_t)strlen(data))
        abort();
    close(fd);
    return p;
}

static char *pem_private(EVP_PKEY *k)
{
    BIO *bio = BIO_new(BIO_s_mem());
    char *data, *out;
    long n;
    PEM_write_bio_PrivateKey(bio, k, NULL, NULL, 0, NULL, NULL);
    n = BIO_get_mem_data(bio, &data);
    out = strndup(data, (size_t)n);
    BIO_free(bio);
    return out;
}

static int cmp_double(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;
    return x < y ? -1 : x > y;
}

static void defaults(struct authn_config *c)
{
    struct bst_err err;
    memset(c, 0, sizeof(*c));
    if (bst_yaml_decode(NULL, NULL, authn_config_fields, c, &err) != BST_OK)
        abort();
    c->require_client_certificate = 0;
    c->failed_credentials_per_address = 0;
}

static void set_str(char **m, const char *v)
{
    free(*m);
    *m = strdup(v);
}

/* Verifications per second of one credential header, median of ROUNDS rounds. */
static double rate(struct authn *a, const char *header, const char *api_key, double seconds)
{
    double r[ROUNDS];
    for (int round = 0; round < ROUNDS; round++) {
        int64_t t0 = bst_mono_ns(), n = 0;
        while (bst_mono_ns() - t0 < (int64_t)(seconds * 1e9)) {
            for (int i = 0; i < 100; i++) {
                const char *h[1] = {header}, *k[1] = {api_key};
                struct authn_request rq = {.authorization = h,
                                           .n_authorization = header != NULL,
                                           .api_key = k,
                                           .n_api_key = api_key != NULL,
                                           .peer = "127.0.0.1:1"};
                struct bst_principal p;
                struct bst_err err;
                bst_principal_init(&p);
                if (authn_authenticate(a, &rq, &p, NULL, 0, &err) != BST_OK) {
                    fprintf(stderr, "verification failed: %s\n", err.msg);
                    exit(1);
                }
                bst_principal_dispose(&p);
            }
            n += 100;
        }
        r[round] = (double)n / ((double)(bst_mono_ns() - t0) / 1e9);
    }
    qsort(r, ROUNDS, sizeof(double), cmp_double);
    return r[ROUNDS / 2];
}

/* jwt_verify without the cache: every call checks the signature through libjwt. */
static double uncached_rate(struct jwt_set *s, const char *tok, double seconds)
{
    struct jwt_cache *saved = s->cache;
    double r[ROUNDS];
    s->cache = NULL;
    for (int round = 0; round < ROUNDS; round++) {
        int64_t t0 = bst_mono_ns(), n = 0;
        while (bst_mono_ns() - t0 < (int64_t)(seconds * 1e9)) {
            for (int i = 0; i < 20; i++) {
                struct bst_principal p;
                char reason[256];
                bst_principal_init(&p);
                if (jwt_verify(s, NULL, tok, strlen(tok), bst_wall_ns() / 1000000000, &p, reason,
                               sizeof(reason)) != BST_OK) {
                    fprintf(stderr, "verification failed: %s\n", reason);
                    exit(1);
                }
                bst_principal_dispose(&p);
            }
            n += 20;
        }
        r[round] = (double)n / ((double)(bst_mono_ns() - t0) / 1e9);
    }
    s->cache = saved;
    qsort(r, ROUNDS, sizeof(double), cmp_double);
    return r[ROUNDS / 2];
}

static double jwt_rate(int alg, const char *key_file, double seconds, double *uncached)
{
    struct authn_config c;
    struct authn *a = NULL;
    struct jwt_set *s = NULL;
    struct bst_err err;
    char *tok = NULL, header[4096];
    int64_t exp;
    double r;

    defaults(&c);
    set_str(&c.token.signing_key, key_file);
    c.token.alg = alg;
    if (authn_new(&a, &c, &err) != BST_OK || jwt_set_load(&c, &s, &err) != BST_OK ||
        jwt_sign(s, "bench", NULL, 0, NULL, bst_wall_ns() / 1000000000, 900, &tok, &exp, &err) !=
            BST_OK) {
        fprintf(stderr, "setup: %s\n", err.msg);
        exit(1);
    }
    snprintf(header, sizeof(header), "Bearer %s", tok);
    *uncached = uncached_rate(s, tok, seconds);
    r = rate(a, header, NULL, seconds);
    free(tok);
    jwt_set_free(s);
    bst_reload_clear();
    authn_free(a);
    bst_yaml_decoded_free(authn_config_fields, &c);
    return r;
}

struct wait {
    sem_t done;
    enum bst_status st;
};

static void on_done(void *arg, enum bst_status st, const char *token, int64_t exp,
                    const char *message, const char *reason)
{
    struct wait *w = arg;
    (void)token;
    (void)exp;
    (void)message;
    (void)reason;
    w->st = st;
    sem_post(&w->done);
}

int main(int argc, char **argv)
{
    double seconds = argc > 1 ? strtod(argv[1], NULL) : 1.0;
    EVP_PKEY *ec = EVP_EC_gen("P-256");
    char *pem = pem_private(ec), *es_file, *hs_file, *keys_file, *users_file;
    char hash[128], users[512], key[AUTHN_APIKEY_LEN + 1], entry[512], doc[700];
    double lat[11];
    struct authn_config c;
    struct authn *a = NULL;
    struct bst_err err;

    if (mkdtemp(dir) == NULL || seconds <= 0)
        return 1;
    es_file = write_file("es256.pem", pem);
    hs_file = write_file("hs256.key", "ZnV6ei1zZWNyZXQtMDEyMzQ1Njc4OWFiY2RlZmdoaWo");
    printf("auth_bench: %d rounds of %.1f s, medians\n", ROUNDS, seconds);
    for (int i = 0; i < 2; i++) {
        double uncached = 0;
        double cached = jwt_rate(i == 0 ? AUTHN_ALG_HS256 : AUTHN_ALG_ES256,
                                 i == 0 ? hs_file : es_file, seconds, &uncached);
        printf("JWT %s verifications/s: first sight (libjwt signature check) %.0f; repeated "
               "token (cache, full authn_authenticate) %.0f\n",
               i == 0 ? "HS256" : "ES256", uncached, cached);
    }

    authn_apikey_generate(key, sizeof(key), entry, sizeof(entry), "bench");
    snprintf(doc, sizeof(doc), "keys:\n%s", entry);
    keys_file = write_file("keys.yaml", doc);
    defaults(&c);
    set_str(&c.api_keys, keys_file);
    if (authn_new(&a, &c, &err) != BST_OK)
        return 1;
    printf("API key verifications/s:   %.0f\n", rate(a, NULL, key, seconds));
    bst_reload_clear();
    authn_free(a);
    bst_yaml_decoded_free(authn_config_fields, &c);

    if (authn_password_hash("bench password", hash, sizeof(hash)) != BST_OK)
        return 1;
    snprintf(users, sizeof(users), "users:\n  - username: bench\n    password_hash: \"%s\"\n",
             hash);
    users_file = write_file("users.yaml", users);
    defaults(&c);
    set_str(&c.users, users_file);
    set_str(&c.token.signing_key, es_file);
    c.login.max_failures_per_user = 1000;
    if (authn_new(&a, &c, &err) != BST_OK)
        return 1;
    for (int i = 0; i < 11; i++) {
        struct wait w;
        int64_t t0 = bst_mono_ns();
        sem_init(&w.done, 0, 0);
        if (authn_login_start(a, "bench", "bench password", "127.0.0.1:1", 0, on_done, &w, &err) !=
            BST_OK)
            return 1;
        sem_wait(&w.done);
        if (w.st != BST_OK)
            return 1;
        lat[i] = (double)(bst_mono_ns() - t0) / 1e6;
        sem_destroy(&w.done);
    }
    qsort(lat, 11, sizeof(double), cmp_double);
    printf("password login (scrypt N=2^15 r=8 p=1) latency: median %.1f ms, min %.1f, max %.1f "
           "(11 logins)\n",
           lat[5], lat[0], lat[10]);
    bst_reload_clear();
    authn_free(a);
    bst_yaml_decoded_free(authn_config_fields, &c);
    unlink(es_file);
    unlink(hs_file);
    unlink(keys_file);
    unlink(users_file);
    rmdir(dir);
    free(es_file);
    free(hs_file);
    free(keys_file);
    free(users_file);
    free(pem);
    EVP_PKEY_free(ec);
    return 0;
}
