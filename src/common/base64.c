/* base64: see base64.h. */
#include "base64.h"

#include <stdbool.h>

static const char alphabet[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";

void base64_encode(const uint8_t *in, size_t n, char *out)
{
	size_t o = 0;
	for (size_t i = 0; i < n; i += 3) {
		uint32_t v = (uint32_t)in[i] << 16;
		if (i + 1 < n)
			v |= (uint32_t)in[i + 1] << 8;
		if (i + 2 < n)
			v |= in[i + 2];
		out[o++] = alphabet[v >> 18 & 63];
		out[o++] = alphabet[v >> 12 & 63];
		out[o++] = i + 1 < n ? alphabet[v >> 6 & 63] : '=';
		out[o++] = i + 2 < n ? alphabet[v & 63] : '=';
	}
	out[o] = 0;
}

static int value_of(char c)
{
	if (c >= 'A' && c <= 'Z')
		return c - 'A';
	if (c >= 'a' && c <= 'z')
		return c - 'a' + 26;
	if (c >= '0' && c <= '9')
		return c - '0' + 52;
	return c == '+' ? 62 : c == '/' ? 63 : -1;
}

/* One group of 4 characters (pad: how many of the last are '='); -1 when not canonical. */
static int group(const char *g, int pad, uint32_t *v)
{
	*v = 0;
	for (int k = 0; k < 4; k++) {
		int x = k >= 4 - pad ? 0 : value_of(g[k]);
		if (x < 0)
			return -1;
		*v = *v << 6 | (uint32_t)x;
	}
	/* the bits under the padding must be zero, so that each byte string has one encoding */
	return (pad == 1 && (*v & 0xff)) || (pad == 2 && (*v & 0xffff)) ? -1 : 0;
}

long base64_decode(const char *in, size_t len, uint8_t *out, size_t max)
{
	if (len % 4)
		return -1;
	size_t o = 0;
	for (size_t i = 0; i < len; i += 4) {
		bool last = i + 4 == len;
		int pad = !last ? 0 : in[i + 3] != '=' ? 0 : in[i + 2] == '=' ? 2 : 1;
		uint32_t v;
		if (group(in + i, pad, &v) < 0 || o + (size_t)(3 - pad) > max)
			return -1;
		out[o++] = (uint8_t)(v >> 16);
		if (pad < 2)
			out[o++] = (uint8_t)(v >> 8);
		if (pad < 1)
			out[o++] = (uint8_t)v;
	}
	return (long)o;
}
