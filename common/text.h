/* UTF-8 validation and text sanitising: one strict decoder (RFC 3629: no overlong forms, no
 * surrogates, nothing above U+10FFFF, no truncated sequence) for everything that checks or
 * echoes text from outside. */
#ifndef BASTION_COMMON_TEXT_H
#define BASTION_COMMON_TEXT_H

#include <stddef.h>

/* Returns 1 if s[0..len) is valid UTF-8 (NUL bytes are valid UTF-8; callers that cannot hold
 * them check separately). */
int bst_utf8_valid(const char *s, size_t len);

/* Returns the offset of the first byte of s[0..len) that does not start a well-formed UTF-8
 * character, or len when all of it is valid. */
size_t bst_utf8_bad_offset(const char *s, size_t len);

/* Copies at most dstlen-1 bytes of src into dst, NUL-terminated, replacing every invalid UTF-8
 * sequence with U+FFFD and every C0/C1 control character and DEL with '?' (so anything echoed
 * to a peer, a log or a terminal is printable); a multi-byte character is never cut in half.
 * Returns the number of bytes written, excluding the NUL. */
size_t bst_text_sanitize(char *dst, size_t dstlen, const char *src, size_t srclen);

/* Writes n bytes as 2n lower-case hex digits and a NUL into out (2n + 1 bytes). */
void bst_hex_encode(char *out, const void *in, size_t n);

/* Returns the value of one hex digit (either case), or -1. */
int bst_hex_value(int c);

/* Decodes exactly 2n hex digits of s into out[0..n). Returns 0, or -1 (out then undefined). */
int bst_hex_decode(const char *s, unsigned char *out, size_t n);

#endif
