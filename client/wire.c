/* The client's gRPC wire rules: response state machine and header-value helpers (see wire.h). */
#include "wire.h"

#include "text.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

/* Records the first violation and returns -1, so every rule reads `return fail(...)`. */
static int fail(struct bcl_resp *r, bastion_status code, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

static int fail(struct bcl_resp *r, bastion_status code, const char *fmt, ...)
{
    if (r->error == BASTION_OK) {
        va_list ap;
        r->error = code;
        va_start(ap, fmt);
        vsnprintf(r->error_msg, sizeof(r->error_msg), fmt, ap);
        va_end(ap);
    }
    return -1;
}

void bcl_resp_init(struct bcl_resp *r, size_t max_msg)
{
    memset(r, 0, sizeof(*r));
    r->max_msg = max_msg;
    r->grpc_status = -1;
}

void bcl_resp_dispose(struct bcl_resp *r)
{
    free(r->msg);
    r->msg = NULL;
    for (size_t i = 0; i < r->n_kept; i++) {
        free(r->kept[i].name);
        free(r->kept[i].value);
    }
    r->n_kept = 0;
}

static int is(const uint8_t *name, size_t len, const char *lit)
{
    return len == strlen(lit) && memcmp(name, lit, len) == 0;
}

int bcl_grpc_status_parse(const uint8_t *v, size_t len, int *out)
{
    int n = 0;
    if (len == 0 || len > 3)
        return -1;
    for (size_t i = 0; i < len; i++) {
        if (v[i] < '0' || v[i] > '9')
            return -1;
        n = n * 10 + (v[i] - '0');
    }
    *out = n > BASTION_UNAUTHENTICATED ? BASTION_UNKNOWN : n;
    return 0;
}

size_t bcl_grpc_message_decode(char *dst, size_t dstlen, const uint8_t *v, size_t len)
{
    /* The decoded text is never longer than the encoded one; cap the work at what can show. */
    char raw[4 * BCL_MESSAGE_MAX];
    size_t o = 0;

    if (dstlen == 0)
        return 0;
    for (size_t i = 0; i < len && o < sizeof(raw); i++) {
        int hi, lo;
        if (v[i] == '%' && i + 2 < len && (hi = bst_hex_value(v[i + 1])) >= 0 &&
            (lo = bst_hex_value(v[i + 2])) >= 0) {
            raw[o++] = (char)(hi << 4 | lo);
            i += 2;
        } else {
            raw[o++] = (char)v[i];
        }
    }
    return bst_text_sanitize(dst, dstlen, raw, o);
}

static int content_type_is_grpc(const uint8_t *v, size_t len)
{
    static const char base[] = "application/grpc";
    const size_t bl = sizeof(base) - 1;
    if (len < bl || strncasecmp((const char *)v, base, bl) != 0)
        return 0;
    return len == bl || v[bl] == '+' || v[bl] == ';';
}

static void keep_header(struct bcl_resp *r, const uint8_t *name, size_t namelen,
                        const uint8_t *value, size_t valuelen)
{
    struct bcl_kept_header *k;
    char clean[BCL_MAX_KEPT_VALUE];

    if (r->n_kept >= BCL_MAX_KEPT_HEADERS || namelen > 128)
        return;
    for (size_t i = 0; i < r->n_kept; i++) {
        if (strlen(r->kept[i].name) == namelen && memcmp(r->kept[i].name, name, namelen) == 0)
            return; /* the first value wins */
    }
    k = &r->kept[r->n_kept];
    k->name = malloc(namelen + 1);
    bst_text_sanitize(clean, sizeof(clean), (const char *)value, valuelen);
    k->value = strdup(clean);
    if (k->name == NULL || k->value == NULL) {
        free(k->name);
        free(k->value);
        return; /* kept headers are a convenience: losing one under memory pressure is fine */
    }
    memcpy(k->name, name, namelen);
    k->name[namelen] = '\0';
    r->n_kept++;
}

int bcl_resp_header(struct bcl_resp *r, enum bcl_block block, const uint8_t *name, size_t namelen,
                    const uint8_t *value, size_t valuelen)
{
    if (r->error != BASTION_OK)
        return -1;
    /* Both counters are bounded before they can wrap: each field adds at most SIZE_MAX/2. */
    if (namelen > BCL_MAX_HEADER_LIST_BYTES || valuelen > BCL_MAX_HEADER_LIST_BYTES)
        return fail(r, BASTION_RESOURCE_EXHAUSTED, "response header of %zu bytes is too large",
                    namelen + valuelen);
    r->hdr_bytes += namelen + valuelen + 32;
    r->hdr_fields++;
    if (r->hdr_bytes > BCL_MAX_HEADER_LIST_BYTES || r->hdr_fields > BCL_MAX_HEADER_FIELDS)
        return fail(r, BASTION_RESOURCE_EXHAUSTED,
                    "response metadata exceeds %d bytes or %d fields", BCL_MAX_HEADER_LIST_BYTES,
                    BCL_MAX_HEADER_FIELDS);
    if (namelen == 0)
        return fail(r, BASTION_E_PROTOCOL, "empty header name in the response");
    if (block == BCL_BLOCK_TRAILERS && r->seen_trailers)
        return fail(r, BASTION_E_PROTOCOL, "a second trailer block in the response");
    if (block == BCL_BLOCK_HEADERS && r->seen_headers)
        return fail(r, BASTION_E_PROTOCOL, "a second header block in the response");
    if (block == BCL_BLOCK_TRAILERS && !r->seen_headers)
        return fail(r, BASTION_E_PROTOCOL, "trailers before the response headers");

    if (name[0] == ':') {
        if (block != BCL_BLOCK_HEADERS || !is(name, namelen, ":status"))
            return fail(r, BASTION_E_PROTOCOL, "unexpected pseudo-header in the response");
        if (r->http_status != 0)
            return fail(r, BASTION_E_PROTOCOL, "duplicate :status in the response");
        if (valuelen != 3 || value[0] < '1' || value[0] > '9' || value[1] < '0' || value[1] > '9' ||
            value[2] < '0' || value[2] > '9')
            return fail(r, BASTION_E_PROTOCOL, "malformed :status in the response");
        r->http_status = (value[0] - '0') * 100 + (value[1] - '0') * 10 + (value[2] - '0');
        if (r->http_status < 200)
            return fail(r, BASTION_E_PROTOCOL, "informational HTTP status %d in a gRPC response",
                        r->http_status);
        return 0;
    }
    if (block == BCL_BLOCK_HEADERS && r->http_status == 0)
        return fail(r, BASTION_E_PROTOCOL, "response header before :status");

    if (is(name, namelen, "grpc-status")) {
        int code;
        if (r->grpc_status >= 0)
            return fail(r, BASTION_E_PROTOCOL, "duplicate grpc-status in the response");
        if (bcl_grpc_status_parse(value, valuelen, &code) != 0)
            return fail(r, BASTION_E_PROTOCOL, "malformed grpc-status in the response");
        r->grpc_status = code;
        return 0;
    }
    if (is(name, namelen, "grpc-message")) {
        if (r->message_seen)
            return fail(r, BASTION_E_PROTOCOL, "duplicate grpc-message in the response");
        r->message_seen = 1;
        bcl_grpc_message_decode(r->message, sizeof(r->message), value, valuelen);
        return 0;
    }
    if (is(name, namelen, "content-type") && block == BCL_BLOCK_HEADERS) {
        if (r->content_type_seen)
            return fail(r, BASTION_E_PROTOCOL, "duplicate content-type in the response");
        r->content_type_seen = 1;
        r->content_type_grpc = content_type_is_grpc(value, valuelen);
        return 0;
    }
    keep_header(r, name, namelen, value, valuelen);
    return 0;
}

int bcl_resp_block_end(struct bcl_resp *r, enum bcl_block block, int end_stream)
{
    if (r->error != BASTION_OK)
        return -1;
    if (block == BCL_BLOCK_HEADERS) {
        if (r->seen_headers)
            return fail(r, BASTION_E_PROTOCOL, "a second header block in the response");
        r->seen_headers = 1;
        if (r->http_status == 0)
            return fail(r, BASTION_E_PROTOCOL, "response without :status");
        /* A non-200 answer (a proxy, a plain HTTP server) is mapped from its HTTP status at the
         * end; only a 200 must be gRPC. */
        if (r->http_status == 200 && !r->content_type_grpc)
            return fail(r, BASTION_E_PROTOCOL, "the response is not gRPC (content-type %s)",
                        r->content_type_seen ? "is not application/grpc" : "missing");
        if (r->grpc_status >= 0 && !end_stream)
            return fail(r, BASTION_E_PROTOCOL,
                        "grpc-status in the response headers of a stream that continues");
        if (r->grpc_status >= 0)
            r->seen_trailers = 1; /* trailers-only */
        return 0;
    }
    if (!r->seen_headers)
        return fail(r, BASTION_E_PROTOCOL, "trailers before the response headers");
    if (r->seen_trailers)
        return fail(r, BASTION_E_PROTOCOL, "a second trailer block in the response");
    if (!end_stream)
        return fail(r, BASTION_E_PROTOCOL, "trailers without END_STREAM");
    r->seen_trailers = 1;
    return 0;
}

int bcl_resp_data(struct bcl_resp *r, const uint8_t *data, size_t len)
{
    if (r->error != BASTION_OK)
        return -1;
    if (!r->seen_headers)
        return fail(r, BASTION_E_PROTOCOL, "response data before the headers");
    if (r->seen_trailers)
        return fail(r, BASTION_E_PROTOCOL, "response data after the trailers");
    if (r->http_status != 200)
        return 0; /* an HTTP error body (a proxy's page): not ours to parse */
    while (len > 0) {
        size_t take;
        if (r->n_messages > 0)
            return fail(r, BASTION_E_PROTOCOL, "more than one response message in a unary call");
        if (r->prefix_got < BCL_PREFIX_LEN) {
            take = BCL_PREFIX_LEN - r->prefix_got;
            if (take > len)
                take = len;
            memcpy(r->prefix + r->prefix_got, data, take);
            r->prefix_got += take;
            data += take;
            len -= take;
            if (r->prefix_got < BCL_PREFIX_LEN)
                return 0;
            if (r->prefix[0] == 1)
                return fail(r, BASTION_E_PROTOCOL,
                            "compressed response message, but no compression was negotiated");
            if (r->prefix[0] != 0)
                return fail(r, BASTION_E_PROTOCOL, "invalid compressed-flag %u in the response",
                            r->prefix[0]);
            r->msg_len = ((uint32_t)r->prefix[1] << 24) | ((uint32_t)r->prefix[2] << 16) |
                         ((uint32_t)r->prefix[3] << 8) | r->prefix[4];
            if (r->msg_len > r->max_msg)
                return fail(r, BASTION_RESOURCE_EXHAUSTED,
                            "response message of %u bytes exceeds the limit of %zu bytes",
                            r->msg_len, r->max_msg);
            if (r->msg_len > 0 && (r->msg = malloc(r->msg_len)) == NULL)
                return fail(r, BASTION_E_NOMEM, "out of memory for a %u-byte response", r->msg_len);
            r->msg_got = 0;
        }
        take = r->msg_len - r->msg_got;
        if (take > len)
            take = len;
        if (take > 0) {
            memcpy(r->msg + r->msg_got, data, take);
            r->msg_got += take;
            data += take;
            len -= take;
        }
        if (r->msg_got == r->msg_len)
            r->n_messages++;
    }
    return 0;
}

const char *bcl_resp_find(const struct bcl_resp *r, const char *name)
{
    for (size_t i = 0; i < r->n_kept; i++) {
        if (strcmp(r->kept[i].name, name) == 0)
            return r->kept[i].value;
    }
    return NULL;
}

static const char *h2_error_name(uint32_t code)
{
    static const char *const names[] = {
        "NO_ERROR",
        "PROTOCOL_ERROR",
        "INTERNAL_ERROR",
        "FLOW_CONTROL_ERROR",
        "SETTINGS_TIMEOUT",
        "STREAM_CLOSED",
        "FRAME_SIZE_ERROR",
        "REFUSED_STREAM",
        "CANCEL",
        "COMPRESSION_ERROR",
        "CONNECT_ERROR",
        "ENHANCE_YOUR_CALM",
        "INADEQUATE_SECURITY",
        "HTTP_1_1_REQUIRED",
    };
    return code < sizeof(names) / sizeof(names[0]) ? names[code] : "unknown error code";
}

bastion_status bcl_rst_to_grpc(uint32_t code)
{
    switch (code) {
    case 0x7: /* REFUSED_STREAM: not processed, safe to retry */
        return BASTION_UNAVAILABLE;
    case 0x8: /* CANCEL */
        return BASTION_CANCELLED;
    case 0xb: /* ENHANCE_YOUR_CALM */
        return BASTION_RESOURCE_EXHAUSTED;
    case 0xc: /* INADEQUATE_SECURITY */
        return BASTION_PERMISSION_DENIED;
    default:
        return BASTION_INTERNAL;
    }
}

bastion_status bcl_http_status_to_grpc(int http_status)
{
    switch (http_status) {
    case 400:
        return BASTION_INTERNAL;
    case 401:
        return BASTION_UNAUTHENTICATED;
    case 403:
        return BASTION_PERMISSION_DENIED;
    case 404:
        return BASTION_UNIMPLEMENTED;
    case 429:
    case 502:
    case 503:
    case 504:
        return BASTION_UNAVAILABLE;
    default:
        return BASTION_UNKNOWN;
    }
}

bastion_status bcl_resp_finish(struct bcl_resp *r, int ended, uint32_t rst_code, char *msg,
                               size_t msglen)
{
    if (msglen > 0)
        msg[0] = '\0';
    if (r->error != BASTION_OK) {
        snprintf(msg, msglen, "%s", r->error_msg);
        return r->error;
    }
    /* A complete status wins over a reset that follows it (a server that answered before the
     * request was complete resets the rest with NO_ERROR). */
    if (r->seen_trailers && r->grpc_status >= 0)
        ended = 1;
    if (!ended) {
        snprintf(msg, msglen, "the server reset the stream (%s)", h2_error_name(rst_code));
        return bcl_rst_to_grpc(rst_code);
    }
    if (r->grpc_status < 0) {
        if (r->http_status != 0 && r->http_status != 200) {
            snprintf(msg, msglen, "the server answered HTTP %d without a gRPC status",
                     r->http_status);
            return bcl_http_status_to_grpc(r->http_status);
        }
        snprintf(msg, msglen, "the response ended without grpc-status");
        return BASTION_E_PROTOCOL;
    }
    if (r->grpc_status != BASTION_OK) {
        snprintf(msg, msglen, "%s", r->message);
        return (bastion_status)r->grpc_status;
    }
    if (r->http_status != 200) {
        snprintf(msg, msglen, "grpc-status 0 with HTTP status %d", r->http_status);
        return BASTION_E_PROTOCOL;
    }
    if (r->n_messages == 0 && r->prefix_got > 0) {
        snprintf(msg, msglen, "truncated response message: %zu of %u bytes", r->msg_got,
                 r->msg_len);
        return BASTION_E_PROTOCOL;
    }
    if (r->n_messages == 0) {
        snprintf(msg, msglen, "the server sent OK without a response message");
        return BASTION_E_PROTOCOL;
    }
    return BASTION_OK;
}

void bcl_timeout_encode(int64_t ns, char *out, size_t outlen)
{
    static const struct {
        char unit;
        int64_t ns;
    } units[] = {
        {'n', 1},
        {'u', INT64_C(1000)},
        {'m', INT64_C(1000000)},
        {'S', INT64_C(1000000000)},
        {'M', INT64_C(60000000000)},
        {'H', INT64_C(3600000000000)},
    };
    if (ns < 1)
        ns = 1;
    for (size_t i = 0; i < sizeof(units) / sizeof(units[0]); i++) {
        /* Rounded up, so the server's deadline is never earlier than ours. */
        int64_t v = ns / units[i].ns + (ns % units[i].ns != 0);
        if (v <= 99999999) {
            snprintf(out, outlen, "%lld%c", (long long)v, units[i].unit);
            return;
        }
    }
    snprintf(out, outlen, "99999999H");
}

int bcl_md_name_ok(const char *name)
{
    static const char *const reserved[] = {
        "content-type",      "te",         "host",
        "connection",        "keep-alive", "proxy-connection",
        "transfer-encoding", "upgrade",    "user-agent",
        "authorization",     "x-api-key",  NULL,
    };
    size_t len = strlen(name);

    if (len == 0 || len > 128)
        return 0;
    for (size_t i = 0; i < len; i++) {
        char c = name[i];
        if (!((c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '-' || c == '_' || c == '.'))
            return 0;
    }
    if (strncmp(name, "grpc-", 5) == 0)
        return 0;
    if (len >= 4 && strcmp(name + len - 4, "-bin") == 0)
        return 0;
    for (size_t i = 0; reserved[i] != NULL; i++) {
        if (strcmp(name, reserved[i]) == 0)
            return 0;
    }
    return 1;
}

int bcl_md_value_ok(const char *value, size_t max)
{
    size_t len = strlen(value);
    if (len > max)
        return 0;
    for (size_t i = 0; i < len; i++) {
        if ((unsigned char)value[i] < 0x20 || (unsigned char)value[i] > 0x7e)
            return 0;
    }
    return 1;
}
