/* Channel and call options: typed setters with bounds, target parsing, credential wiping. */
#include "internal.h"
#include "wire.h"

#include <arpa/inet.h>
#include <openssl/crypto.h>
#include <stdlib.h>
#include <string.h>

#define DEFAULT_CONNECT_TIMEOUT_MS 10000
#define DEFAULT_KEEPALIVE_MS 30000
#define DEFAULT_KEEPALIVE_TIMEOUT_MS 10000
#define DEFAULT_MAX_MESSAGE (4u * 1024 * 1024)

void bcl_free_secret(char *s)
{
    if (s == NULL)
        return;
    OPENSSL_cleanse(s, strlen(s));
    free(s);
}

/* Replaces *slot with a copy of s (NULL clears). Returns BASTION_OK or E_NOMEM. */
static bastion_status set_str(char **slot, const char *s, int secret)
{
    char *copy = NULL;
    if (s != NULL && (copy = strdup(s)) == NULL)
        return BASTION_E_NOMEM;
    if (secret)
        bcl_free_secret(*slot);
    else
        free(*slot);
    *slot = copy;
    return BASTION_OK;
}

int bcl_is_ip_literal(const char *s)
{
    unsigned char buf[16];
    return inet_pton(AF_INET, s, buf) == 1 || inet_pton(AF_INET6, s, buf) == 1;
}

static int host_ok(const char *h)
{
    size_t len = strlen(h);
    if (len == 0 || len > BCL_MAX_HOST)
        return 0;
    if (bcl_is_ip_literal(h))
        return 1;
    for (size_t i = 0; i < len; i++) {
        char c = h[i];
        if (!((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
              c == '-' || c == '.' || c == '_'))
            return 0;
    }
    return h[0] != '-' && h[0] != '.';
}

static int port_parse(const char *s, int *port)
{
    long v = 0;
    if (*s == '\0' || strlen(s) > 5)
        return -1;
    for (; *s != '\0'; s++) {
        if (*s < '0' || *s > '9')
            return -1;
        v = v * 10 + (*s - '0');
    }
    if (v < 1 || v > 65535)
        return -1;
    *port = (int)v;
    return 0;
}

int bcl_target_parse(const char *target, char *host, size_t hostlen, int *port)
{
    const char *colon;
    size_t hl;
    unsigned char buf[16];

    *port = BCL_DEFAULT_PORT;
    if (target == NULL || target[0] == '\0' || strlen(target) > BCL_MAX_HOST + 8)
        return -1;
    if (target[0] == '[') {
        const char *end = strchr(target, ']');
        if (end == NULL)
            return -1;
        hl = (size_t)(end - target - 1);
        if (hl == 0 || hl >= hostlen)
            return -1;
        memcpy(host, target + 1, hl);
        host[hl] = '\0';
        if (inet_pton(AF_INET6, host, buf) != 1)
            return -1;
        if (end[1] == '\0')
            return 0;
        if (end[1] != ':')
            return -1;
        return port_parse(end + 2, port);
    }
    if (inet_pton(AF_INET6, target, buf) == 1) { /* a bare IPv6 literal: no port */
        if (strlen(target) >= hostlen)
            return -1;
        memcpy(host, target, strlen(target) + 1);
        return 0;
    }
    colon = strchr(target, ':');
    if (colon != NULL && strchr(colon + 1, ':') != NULL)
        return -1;
    hl = colon != NULL ? (size_t)(colon - target) : strlen(target);
    if (hl == 0 || hl >= hostlen)
        return -1;
    memcpy(host, target, hl);
    host[hl] = '\0';
    if (!host_ok(host))
        return -1;
    if (colon != NULL)
        return port_parse(colon + 1, port);
    return 0;
}

bastion_status bastion_options_new(bastion_options **out)
{
    bastion_options *o;
    if (out == NULL)
        return BASTION_E_ARGUMENT;
    *out = NULL;
    o = calloc(1, sizeof(*o));
    if (o == NULL)
        return BASTION_E_NOMEM;
    memcpy(o->host, "localhost", sizeof("localhost"));
    o->port = BCL_DEFAULT_PORT;
    o->connect_timeout_ms = DEFAULT_CONNECT_TIMEOUT_MS;
    o->keepalive_interval_ms = DEFAULT_KEEPALIVE_MS;
    o->keepalive_timeout_ms = DEFAULT_KEEPALIVE_TIMEOUT_MS;
    o->max_message_bytes = DEFAULT_MAX_MESSAGE;
    *out = o;
    return BASTION_OK;
}

void bcl_options_dispose(struct bastion_options *o)
{
    free(o->ca_file);
    free(o->cert_file);
    free(o->key_file);
    free(o->server_name);
    bcl_free_secret(o->token);
    bcl_free_secret(o->api_key);
    o->ca_file = o->cert_file = o->key_file = o->server_name = o->token = o->api_key = NULL;
}

void bastion_options_free(bastion_options *opts)
{
    if (opts == NULL)
        return;
    bcl_options_dispose(opts);
    free(opts);
}

bastion_status bcl_options_copy(struct bastion_options *dst, const struct bastion_options *src)
{
    *dst = *src;
    dst->ca_file = dst->cert_file = dst->key_file = dst->server_name = NULL;
    dst->token = dst->api_key = NULL;
    if (set_str(&dst->ca_file, src->ca_file, 0) != BASTION_OK ||
        set_str(&dst->cert_file, src->cert_file, 0) != BASTION_OK ||
        set_str(&dst->key_file, src->key_file, 0) != BASTION_OK ||
        set_str(&dst->server_name, src->server_name, 0) != BASTION_OK ||
        set_str(&dst->token, src->token, 1) != BASTION_OK ||
        set_str(&dst->api_key, src->api_key, 1) != BASTION_OK) {
        bcl_options_dispose(dst);
        return BASTION_E_NOMEM;
    }
    return BASTION_OK;
}

bastion_status bastion_options_set_target(bastion_options *opts, const char *target)
{
    char host[BCL_MAX_HOST + 1];
    int port;
    if (opts == NULL || bcl_target_parse(target, host, sizeof(host), &port) != 0)
        return BASTION_E_ARGUMENT;
    memcpy(opts->host, host, sizeof(host));
    opts->port = port;
    return BASTION_OK;
}

static int path_ok(const char *p)
{
    return p != NULL && p[0] != '\0' && strlen(p) < 4096;
}

bastion_status bastion_options_set_ca_file(bastion_options *opts, const char *path)
{
    if (opts == NULL || (path != NULL && !path_ok(path)))
        return BASTION_E_ARGUMENT;
    return set_str(&opts->ca_file, path, 0);
}

bastion_status bastion_options_set_client_cert(bastion_options *opts, const char *cert_file,
                                               const char *key_file)
{
    char *c = NULL, *k = NULL;
    if (opts == NULL || (cert_file == NULL) != (key_file == NULL))
        return BASTION_E_ARGUMENT;
    if (cert_file != NULL && (!path_ok(cert_file) || !path_ok(key_file)))
        return BASTION_E_ARGUMENT;
    if (set_str(&c, cert_file, 0) != BASTION_OK || set_str(&k, key_file, 0) != BASTION_OK) {
        free(c);
        return BASTION_E_NOMEM;
    }
    free(opts->cert_file);
    free(opts->key_file);
    opts->cert_file = c;
    opts->key_file = k;
    return BASTION_OK;
}

bastion_status bastion_options_set_server_name(bastion_options *opts, const char *name)
{
    if (opts == NULL || (name != NULL && !host_ok(name)))
        return BASTION_E_ARGUMENT;
    return set_str(&opts->server_name, name, 0);
}

bastion_status bastion_options_set_default_deadline_ms(bastion_options *opts, int64_t ms)
{
    if (opts == NULL || ms < 0 || ms > BCL_MAX_DEADLINE_MS)
        return BASTION_E_ARGUMENT;
    opts->default_deadline_ms = ms;
    return BASTION_OK;
}

bastion_status bastion_options_set_connect_timeout_ms(bastion_options *opts, int64_t ms)
{
    if (opts == NULL || ms < 1 || ms > 600000)
        return BASTION_E_ARGUMENT;
    opts->connect_timeout_ms = ms;
    return BASTION_OK;
}

bastion_status bastion_options_set_keepalive(bastion_options *opts, int64_t interval_ms,
                                             int64_t timeout_ms)
{
    if (opts == NULL || (interval_ms != 0 && (interval_ms < 1000 || interval_ms > 86400000)) ||
        timeout_ms < 1 || timeout_ms > 600000)
        return BASTION_E_ARGUMENT;
    opts->keepalive_interval_ms = interval_ms;
    opts->keepalive_timeout_ms = timeout_ms;
    return BASTION_OK;
}

bastion_status bastion_options_set_max_message_bytes(bastion_options *opts, size_t bytes)
{
    if (opts == NULL || bytes < 1024 || bytes > 64u * 1024 * 1024)
        return BASTION_E_ARGUMENT;
    opts->max_message_bytes = bytes;
    return BASTION_OK;
}

static int credential_ok(const char *s)
{
    return s == NULL || (s[0] != '\0' && bcl_md_value_ok(s, BCL_MAX_CREDENTIAL));
}

bastion_status bastion_options_set_bearer_token(bastion_options *opts, const char *token)
{
    if (opts == NULL || !credential_ok(token))
        return BASTION_E_ARGUMENT;
    return set_str(&opts->token, token, 1);
}

bastion_status bastion_options_set_api_key(bastion_options *opts, const char *key)
{
    if (opts == NULL || !credential_ok(key))
        return BASTION_E_ARGUMENT;
    return set_str(&opts->api_key, key, 1);
}

/* ---- call options ---------------------------------------------------------------------------- */

bastion_status bastion_call_options_new(bastion_call_options **out)
{
    if (out == NULL)
        return BASTION_E_ARGUMENT;
    *out = calloc(1, sizeof(**out));
    return *out != NULL ? BASTION_OK : BASTION_E_NOMEM;
}

void bastion_call_options_free(bastion_call_options *co)
{
    if (co == NULL)
        return;
    bcl_free_secret(co->token);
    bcl_free_secret(co->api_key);
    for (size_t i = 0; i < co->n_md; i++) {
        free(co->md[i].name);
        free(co->md[i].value);
    }
    free(co);
}

bastion_status bastion_call_options_set_deadline_ms(bastion_call_options *co, int64_t ms)
{
    if (co == NULL || ms < 0 || ms > BCL_MAX_DEADLINE_MS)
        return BASTION_E_ARGUMENT;
    co->deadline_ms = ms;
    return BASTION_OK;
}

bastion_status bastion_call_options_set_bearer_token(bastion_call_options *co, const char *token)
{
    if (co == NULL || !credential_ok(token))
        return BASTION_E_ARGUMENT;
    return set_str(&co->token, token, 1);
}

bastion_status bastion_call_options_set_api_key(bastion_call_options *co, const char *key)
{
    if (co == NULL || !credential_ok(key))
        return BASTION_E_ARGUMENT;
    return set_str(&co->api_key, key, 1);
}

bastion_status bastion_call_options_add_metadata(bastion_call_options *co, const char *name,
                                                 const char *value)
{
    struct bcl_md *m;
    size_t add;
    if (co == NULL || name == NULL || value == NULL || !bcl_md_name_ok(name) ||
        !bcl_md_value_ok(value, BCL_MAX_METADATA_BYTES))
        return BASTION_E_ARGUMENT;
    add = strlen(name) + strlen(value) + 32;
    if (co->n_md >= BCL_MAX_METADATA || co->md_bytes + add > BCL_MAX_METADATA_BYTES)
        return BASTION_E_ARGUMENT;
    m = &co->md[co->n_md];
    m->name = strdup(name);
    m->value = strdup(value);
    if (m->name == NULL || m->value == NULL) {
        free(m->name);
        free(m->value);
        return BASTION_E_NOMEM;
    }
    m->secret = 0;
    co->n_md++;
    co->md_bytes += add;
    return BASTION_OK;
}

bastion_status bcl_call_options_copy(bastion_call_options **out, const bastion_call_options *co)
{
    bastion_call_options *c;
    bastion_status rv = bastion_call_options_new(&c);
    if (rv != BASTION_OK)
        return rv;
    c->deadline_ms = co->deadline_ms;
    if (set_str(&c->token, co->token, 1) != BASTION_OK ||
        set_str(&c->api_key, co->api_key, 1) != BASTION_OK)
        goto fail;
    for (size_t i = 0; i < co->n_md; i++) {
        if (bastion_call_options_add_metadata(c, co->md[i].name, co->md[i].value) != BASTION_OK)
            goto fail;
    }
    *out = c;
    return BASTION_OK;
fail:
    bastion_call_options_free(c);
    return BASTION_E_NOMEM;
}
