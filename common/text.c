/* UTF-8 validation and text sanitising, shared by every module that checks or echoes text
 * from outside (protobuf strings, YAML files, certificate names, grpc-message, logs). */
#include "text.h"

#include <stdint.h>
#include <string.h>

/* Decodes one character at p[0..len), len >= 1. Returns the bytes it spans and sets *ok. For an
 * ill-formed sequence the return is its maximal valid prefix (at least 1 byte), the unit that
 * Unicode recommends replacing with a single U+FFFD. The second-byte bounds exclude overlongs
 * (E0, F0), surrogates (ED) and code points above U+10FFFF (F4). */
static size_t utf8_next(const unsigned char *p, size_t len, uint32_t *cp, int *ok)
{
    unsigned char c = p[0];
    unsigned char lo = 0x80, hi = 0xBF;
    size_t need;
    uint32_t v;

    *ok = 0;
    if (c < 0x80) {
        *cp = c;
        *ok = 1;
        return 1;
    }
    if (c >= 0xC2 && c <= 0xDF) {
        need = 1;
        v = c & 0x1F;
    } else if (c >= 0xE0 && c <= 0xEF) {
        need = 2;
        v = c & 0x0F;
        if (c == 0xE0)
            lo = 0xA0;
        else if (c == 0xED)
            hi = 0x9F;
    } else if (c >= 0xF0 && c <= 0xF4) {
        need = 3;
        v = c & 0x07;
        if (c == 0xF0)
            lo = 0x90;
        else if (c == 0xF4)
            hi = 0x8F;
    } else {
        return 1; /* continuation byte, C0, C1 or F5..FF as a lead byte */
    }
    for (size_t i = 1; i <= need; i++) {
        if (i >= len || p[i] < lo || p[i] > hi)
            return i;
        v = (v << 6) | (p[i] & 0x3F);
        lo = 0x80;
        hi = 0xBF;
    }
    *cp = v;
    *ok = 1;
    return need + 1;
}

int bst_utf8_valid(const char *s, size_t len)
{
    const unsigned char *p = (const unsigned char *)s;
    size_t i = 0;

    while (i < len) {
        uint32_t cp;
        int ok;
        /* Runs of ASCII are the common case. */
        if (p[i] < 0x80) {
            i++;
            continue;
        }
        i += utf8_next(p + i, len - i, &cp, &ok);
        if (!ok)
            return 0;
    }
    return 1;
}

size_t bst_text_sanitize(char *dst, size_t dstlen, const char *src, size_t srclen)
{
    static const char replacement[] = "\xEF\xBF\xBD"; /* U+FFFD */
    const unsigned char *p = (const unsigned char *)src;
    size_t i = 0, o = 0;

    if (dstlen == 0)
        return 0;
    if (src == NULL)
        srclen = 0;
    while (i < srclen) {
        uint32_t cp = 0;
        int ok;
        size_t n = utf8_next(p + i, srclen - i, &cp, &ok);
        const char *out;
        size_t outlen;

        if (!ok) {
            out = replacement;
            outlen = sizeof(replacement) - 1;
        } else if (cp < 0x20 || (cp >= 0x7F && cp <= 0x9F)) {
            out = "?";
            outlen = 1;
        } else {
            out = (const char *)p + i;
            outlen = n;
        }
        /* Stop rather than cut a character: the output is always a clean prefix. */
        if (outlen > dstlen - 1 - o)
            break;
        memcpy(dst + o, out, outlen);
        o += outlen;
        i += n;
    }
    dst[o] = '\0';
    return o;
}

size_t bst_utf8_bad_offset(const char *s, size_t len)
{
    const unsigned char *p = (const unsigned char *)s;
    size_t i = 0;

    while (i < len) {
        uint32_t cp;
        int ok;
        size_t n;
        if (p[i] < 0x80) {
            i++;
            continue;
        }
        n = utf8_next(p + i, len - i, &cp, &ok);
        if (!ok)
            return i;
        i += n;
    }
    return len;
}

void bst_hex_encode(char *out, const void *in, size_t n)
{
    static const char digits[] = "0123456789abcdef";
    const unsigned char *p = in;
    for (size_t i = 0; i < n; i++) {
        out[2 * i] = digits[p[i] >> 4];
        out[2 * i + 1] = digits[p[i] & 15];
    }
    out[2 * n] = '\0';
}

int bst_hex_value(int c)
{
    if (c >= '0' && c <= '9')
        return c - '0';
    if (c >= 'a' && c <= 'f')
        return c - 'a' + 10;
    if (c >= 'A' && c <= 'F')
        return c - 'A' + 10;
    return -1;
}

int bst_hex_decode(const char *s, unsigned char *out, size_t n)
{
    for (size_t i = 0; i < n; i++) {
        int hi = bst_hex_value((unsigned char)s[2 * i]), lo;
        if (hi < 0 || (lo = bst_hex_value((unsigned char)s[2 * i + 1])) < 0)
            return -1;
        out[i] = (unsigned char)(hi << 4 | lo);
    }
    return 0;
}
