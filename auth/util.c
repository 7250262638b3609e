/* Small helpers of the authentication library: strict base64url, hex, timestamps, peer
 * addresses, and the YAML shapes (string lists, allowed keys) its files use. */
#include "authn_internal.h"
#include "text.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

static const char b64url_chars[] =
    "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";

size_t auth_b64url_encode(char *out, size_t out_len, const unsigned char *in, size_t n)
{
    size_t need = (n / 3) * 4 + (n % 3 == 0 ? 0 : n % 3 + 1);
    size_t o = 0;

    if (out_len < need + 1)
        return 0;
    for (size_t i = 0; i < n; i += 3) {
        uint32_t v = (uint32_t)in[i] << 16;
        size_t rem = n - i;
        if (rem > 1)
            v |= (uint32_t)in[i + 1] << 8;
        if (rem > 2)
            v |= in[i + 2];
        out[o++] = b64url_chars[(v >> 18) & 63];
        out[o++] = b64url_chars[(v >> 12) & 63];
        if (rem > 1)
            out[o++] = b64url_chars[(v >> 6) & 63];
        if (rem > 2)
            out[o++] = b64url_chars[v & 63];
    }
    out[o] = '\0';
    return o;
}

static int b64url_value(unsigned char c)
{
    if (c >= 'A' && c <= 'Z')
        return c - 'A';
    if (c >= 'a' && c <= 'z')
        return c - 'a' + 26;
    if (c >= '0' && c <= '9')
        return c - '0' + 52;
    if (c == '-')
        return 62;
    if (c == '_')
        return 63;
    return -1;
}

int auth_b64url_decode(const char *in, size_t n, unsigned char *out, size_t cap, size_t *len)
{
    size_t o = 0;
    uint32_t acc = 0;
    int bits = 0;

    if (n % 4 == 1 || (n / 4) * 3 + (n % 4 == 0 ? 0 : n % 4 - 1) > cap)
        return -1;
    for (size_t i = 0; i < n; i++) {
        int v = b64url_value((unsigned char)in[i]);
        if (v < 0)
            return -1;
        acc = (acc << 6) | (uint32_t)v;
        bits += 6;
        if (bits >= 8) {
            bits -= 8;
            out[o++] = (unsigned char)(acc >> bits);
            acc &= (1u << bits) - 1;
        }
    }
    /* Leftover bits must be zero, so each byte string has exactly one encoding. */
    if (acc != 0)
        return -1;
    *len = o;
    return 0;
}

int auth_unhex32(const char *s, unsigned char out[32])
{
    if (strlen(s) != 64)
        return -1;
    return bst_hex_decode(s, out, 32);
}

int auth_printable(const char *s, size_t len, size_t max)
{
    if (len == 0 || len > max || !bst_utf8_valid(s, len))
        return 0;
    for (size_t i = 0; i < len; i++) {
        unsigned char c = (unsigned char)s[i];
        if (c < 0x20 || c == 0x7f)
            return 0;
        /* C1 controls are U+0080..U+009F, encoded 0xC2 0x80..0x9F. */
        if (c == 0xc2 && i + 1 < len && (unsigned char)s[i + 1] < 0xa0)
            return 0;
    }
    return 1;
}

static int digits(const char *s, int n, int *out)
{
    int v = 0;
    for (int i = 0; i < n; i++) {
        if (s[i] < '0' || s[i] > '9')
            return -1;
        v = v * 10 + (s[i] - '0');
    }
    *out = v;
    return 0;
}

int auth_parse_time(const char *s, int64_t *out)
{
    static const int mdays[] = {31, 29, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31};
    int y, mo, d, h, mi, se;
    struct tm tm;
    time_t t;

    if (strlen(s) != 20 || s[4] != '-' || s[7] != '-' || s[10] != 'T' || s[13] != ':' ||
        s[16] != ':' || s[19] != 'Z')
        return -1;
    if (digits(s, 4, &y) || digits(s + 5, 2, &mo) || digits(s + 8, 2, &d) ||
        digits(s + 11, 2, &h) || digits(s + 14, 2, &mi) || digits(s + 17, 2, &se))
        return -1;
    if (y < 1970 || mo < 1 || mo > 12 || d < 1 || d > mdays[mo - 1] || h > 23 || mi > 59 || se > 59)
        return -1;
    if (mo == 2 && d == 29 && !(y % 4 == 0 && (y % 100 != 0 || y % 400 == 0)))
        return -1;
    memset(&tm, 0, sizeof(tm));
    tm.tm_year = y - 1900;
    tm.tm_mon = mo - 1;
    tm.tm_mday = d;
    tm.tm_hour = h;
    tm.tm_min = mi;
    tm.tm_sec = se;
    t = timegm(&tm);
    if (t == (time_t)-1)
        return -1;
    *out = (int64_t)t;
    return 0;
}

void auth_peer_address(const char *peer, char *out, size_t out_len)
{
    const char *end;
    size_t n;

    if (out_len == 0)
        return;
    out[0] = '\0';
    if (peer == NULL)
        return;
    if (peer[0] == '[') {
        end = strchr(peer, ']');
        if (end != NULL) {
            peer++;
        } else {
            end = peer + strlen(peer);
        }
    } else {
        /* One colon: "ip:port". More than one: a bare IPv6 address, kept whole. */
        const char *colon = strchr(peer, ':');
        if (colon != NULL && strchr(colon + 1, ':') == NULL)
            end = colon;
        else
            end = peer + strlen(peer);
    }
    n = (size_t)(end - peer);
    if (n >= out_len)
        n = out_len - 1;
    memcpy(out, peer, n);
    out[n] = '\0';
}

void auth_excerpt(char *out, size_t out_len, const char *s, size_t len)
{
    size_t cap = out_len < 49 ? out_len : 49;
    size_t n = len < cap - 1 ? len : cap - 1;
    bst_text_sanitize(out, cap, s, n);
}

void auth_free_list(char **v, size_t n)
{
    for (size_t i = 0; i < n; i++)
        free(v[i]);
    free(v);
}

enum bst_status auth_yaml_strdup(const struct bst_yaml_doc *doc, const struct bst_yaml_node *n,
                                 const char *key, size_t max_len, int allow_empty, char **out,
                                 struct bst_err *err)
{
    const char *s;
    enum bst_status rv = bst_yaml_str(doc, n, allow_empty, &s, err);

    if (rv != BST_OK)
        return rv;
    if (!(allow_empty && n->len == 0) && !auth_printable(s, n->len, max_len))
        return bst_yaml_errf(err, BST_INVALID_ARGUMENT, doc, n,
                             "key '%s': must be 1-%zu printable characters", key, max_len);
    *out = strdup(s);
    if (*out == NULL)
        return bst_errf(err, BST_RESOURCE_EXHAUSTED, "out of memory");
    return BST_OK;
}

enum bst_status auth_yaml_str_list(const struct bst_yaml_doc *doc, const struct bst_yaml_node *n,
                                   const char *key, int allow_scalar, size_t max_items,
                                   size_t max_len, char ***out, size_t *n_out, struct bst_err *err)
{
    const struct bst_yaml_node *one[1];
    const struct bst_yaml_node *const *items;
    size_t count;
    char **v;
    enum bst_status rv;

    if (n->kind == BST_YAML_SCALAR && allow_scalar) {
        one[0] = n;
        items = one;
        count = 1;
    } else if (n->kind == BST_YAML_SEQ) {
        items = (const struct bst_yaml_node *const *)n->items;
        count = n->n;
    } else {
        return bst_yaml_errf(err, BST_INVALID_ARGUMENT, doc, n, "key '%s': expected a list%s", key,
                             allow_scalar ? " or a string" : " of strings");
    }
    if (count > max_items)
        return bst_yaml_errf(err, BST_INVALID_ARGUMENT, doc, n,
                             "key '%s': at most %zu entries are allowed", key, max_items);
    v = calloc(count > 0 ? count : 1, sizeof(*v));
    if (v == NULL)
        return bst_errf(err, BST_RESOURCE_EXHAUSTED, "out of memory");
    for (size_t i = 0; i < count; i++) {
        rv = auth_yaml_strdup(doc, items[i], key, max_len, 0, &v[i], err);
        if (rv != BST_OK) {
            auth_free_list(v, i);
            return rv;
        }
        for (size_t j = 0; j < i; j++) {
            if (strcmp(v[j], v[i]) == 0) {
                auth_free_list(v, i + 1);
                return bst_yaml_errf(err, BST_INVALID_ARGUMENT, doc, items[i],
                                     "key '%s': duplicate entry", key);
            }
        }
    }
    *out = v;
    *n_out = count;
    return BST_OK;
}

enum bst_status auth_yaml_only_keys(const struct bst_yaml_doc *doc, const struct bst_yaml_node *map,
                                    const char *const *names, struct bst_err *err)
{
    char list[256];
    size_t used = 0;

    if (map->kind != BST_YAML_MAP)
        return bst_yaml_errf(err, BST_INVALID_ARGUMENT, doc, map, "expected a mapping");
    for (size_t i = 0; i < map->n; i++) {
        int known = 0;
        for (const char *const *nm = names; *nm != NULL; nm++)
            if (strcmp(*nm, map->keys[i]->value) == 0)
                known = 1;
        if (known)
            continue;
        list[0] = '\0';
        for (const char *const *nm = names; *nm != NULL && used < sizeof(list); nm++) {
            int w = snprintf(list + used, sizeof(list) - used, "%s%s", used ? ", " : "", *nm);
            if (w < 0)
                break;
            used += (size_t)w;
        }
        char shown[64];
        auth_excerpt(shown, sizeof(shown), map->keys[i]->value, map->keys[i]->len);
        return bst_yaml_errf(err, BST_INVALID_ARGUMENT, doc, map->keys[i],
                             "unknown key '%s' (expected one of: %s)", shown, list);
    }
    return BST_OK;
}
