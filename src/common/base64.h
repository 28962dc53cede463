/* base64: RFC 4648 base64 (standard alphabet, '=' padding), for the clipboard's bytes on the
 * JSON-lines sockets (the monitor's control socket): binary-safe, and its size is known before
 * the bytes are seen (4 characters per 3 bytes), where a JSON string's escapes can make text six
 * times longer. Written here rather than linked: glibc's b64_pton is an undocumented libresolv
 * internal, and a Debian library for 60 lines would be a larger dependency than the code.
 * Pure; any thread. */
#ifndef SHOJI_COMMON_BASE64_H
#define SHOJI_COMMON_BASE64_H

#include <stddef.h>
#include <stdint.h>

/* Characters base64_encode writes for n bytes, NUL excluded. */
static inline size_t base64_encoded_len(size_t n)
{
	return (n + 2) / 3 * 4;
}

/* Writes the encoding of in[0..n) and a NUL to out (base64_encoded_len(n) + 1 bytes). */
void base64_encode(const uint8_t *in, size_t n, char *out);

/* Decodes len characters (no whitespace, padded to a multiple of 4, padding bits zero) into
 * out, at most max bytes. Returns the number of bytes, or -1 when the text is not canonical
 * base64 or decodes to more than max bytes. */
long base64_decode(const char *in, size_t len, uint8_t *out, size_t max);

#endif
