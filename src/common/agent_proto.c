/* agent_proto: the guest agent protocol's framing and checks (see agent_proto.h). Our own: the
 * agent's messages are few and small, and a general RPC library in the guest and the jailed
 * monitor would add more parser than it saves. */
#include "agent_proto.h"

#include <stdlib.h>
#include <string.h>

void agent_reader_init(struct agent_reader *r, uint32_t max_len)
{
	memset(r, 0, sizeof(*r));
	r->max_len = max_len < AGENT_MAX_PAYLOAD ? max_len : AGENT_MAX_PAYLOAD;
}

void agent_reader_free(struct agent_reader *r)
{
	free(r->buf);
	r->buf = NULL;
}

void agent_reader_trim(struct agent_reader *r, uint32_t keep)
{
	if (r->hdr_got || r->cap <= keep)
		return;
	free(r->buf);
	r->buf = NULL;
	r->cap = 0;
}

static int fail(struct agent_reader *r, struct err *e, const char *what, uint32_t v)
{
	r->failed = 1;
	return err_set(e, "agent stream: %s (%u)", what, v);
}

/* Checks a complete header and sets up for its payload. */
static int header_done(struct agent_reader *r, struct err *e)
{
	uint16_t magic = (uint16_t)(r->hdr[0] | r->hdr[1] << 8);
	uint32_t len = agent_le32(r->hdr + 4);
	if (magic != AGENT_PROTO_MAGIC)
		return fail(r, e, "bad magic", magic);
	if (r->hdr[2] != AGENT_PROTO_VERSION)
		return fail(r, e, "unsupported version", r->hdr[2]);
	if (r->hdr[3] == 0 || r->hdr[3] > AGENT_TYPE_MAX)
		return fail(r, e, "unknown message type", r->hdr[3]);
	if (len > r->max_len)
		return fail(r, e, "payload longer than the limit", len);
	if (len > r->cap) {
		uint8_t *b = realloc(r->buf, len);
		if (!b)
			return fail(r, e, "out of memory for a payload of", len);
		r->buf = b;
		r->cap = len;
	}
	r->want = len;
	r->got = 0;
	return 0;
}

enum agent_feed agent_reader_feed(struct agent_reader *r, const uint8_t *data, size_t n, size_t *used,
				  struct agent_msg *msg, struct err *e)
{
	size_t i = 0;
	*used = 0;
	if (r->failed) {
		err_set(e, "agent stream: already dropped");
		return AGENT_FEED_ERROR;
	}
	while (r->hdr_got < AGENT_HEADER_SIZE && i < n) {
		r->hdr[r->hdr_got++] = data[i++];
		if (r->hdr_got == AGENT_HEADER_SIZE && header_done(r, e) < 0) {
			*used = i;
			return AGENT_FEED_ERROR;
		}
	}
	if (r->hdr_got == AGENT_HEADER_SIZE) {
		size_t take = n - i < r->want - r->got ? n - i : r->want - r->got;
		if (take)
			memcpy(r->buf + r->got, data + i, take);
		r->got += (uint32_t)take;
		i += take;
		if (r->got == r->want) {
			static const uint8_t empty[1];
			*msg = (struct agent_msg){.type = r->hdr[3],
						  .len = r->want,
						  .payload = r->want ? r->buf : empty};
			r->hdr_got = 0;
			*used = i;
			return AGENT_FEED_MSG;
		}
	}
	*used = i;
	return AGENT_FEED_MORE;
}

int agent_header(uint8_t out[AGENT_HEADER_SIZE], uint8_t type, uint32_t len, struct err *e)
{
	if (type == 0 || type > AGENT_TYPE_MAX)
		return err_set(e, "agent message type %u is unknown", type);
	if (len > AGENT_MAX_PAYLOAD)
		return err_set(e, "agent message of %u bytes is over the %u-byte limit", len, AGENT_MAX_PAYLOAD);
	out[0] = AGENT_PROTO_MAGIC & 0xff;
	out[1] = AGENT_PROTO_MAGIC >> 8;
	out[2] = AGENT_PROTO_VERSION;
	out[3] = type;
	for (int k = 0; k < 4; k++)
		out[4 + k] = (uint8_t)(len >> (8 * k));
	return 0;
}

int agent_check_payload(const struct agent_msg *m, struct err *e)
{
	/* The payload size of each type: exact, or the least (with a negative sign). */
	static const int size[AGENT_TYPE_MAX + 1] = {
		[AGENT_HELLO] = 4,      [AGENT_INFO_REQ] = 0, [AGENT_INFO] = -1,  [AGENT_SHUTDOWN] = 0,
		[AGENT_REBOOT] = 0,     [AGENT_TIME_SET] = 8, [AGENT_RESIZE] = 8, [AGENT_CLIP_GET] = 0,
		[AGENT_CLIP_DATA] = -1, [AGENT_ACK] = 2,
	};
	if (m->type == 0 || m->type > AGENT_TYPE_MAX)
		return err_set(e, "agent message type %u is unknown", m->type);
	int s = size[m->type];
	if (m->type == AGENT_HELLO && m->len == 4 + AGENT_TOKEN_LEN)
		return 0;
	if ((s >= 0 && m->len != (uint32_t)s) || (s < 0 && m->len < (uint32_t)-s))
		return err_set(e, "agent message type %u: %u payload bytes, expected %s%d", m->type, m->len,
			       s < 0 ? "at least " : "", s < 0 ? -s : s);
	return 0;
}

static int key_char(uint8_t c)
{
	return (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '-';
}

/* One "key=value\n" line at p[0..len) into *out; the bytes it took, or -1 with e set. */
static long info_line(const uint8_t *p, uint32_t len, struct agent_info_entry *out, struct err *e)
{
	uint32_t k = 0, v;
	while (k < len && key_char(p[k]) && k <= AGENT_INFO_KEY_MAX)
		k++;
	if (k == 0 || k > AGENT_INFO_KEY_MAX || k == len || p[k] != '=')
		return err_set(e, "agent info: a line does not start with a key (a-z, 0-9, -; 1 to %d bytes) and '='",
			       AGENT_INFO_KEY_MAX);
	for (v = k + 1; v < len && p[v] != '\n'; v++)
		if (p[v] < 0x20 || p[v] > 0x7e || v - k - 1 >= AGENT_INFO_VALUE_MAX)
			return err_set(e, "agent info: the value of %.*s is not printable or over %d bytes", (int)k,
				       (const char *)p, AGENT_INFO_VALUE_MAX);
	if (v == len)
		return err_set(e, "agent info: the last line has no newline");
	memcpy(out->key, p, k);
	out->key[k] = 0;
	memcpy(out->value, p + k + 1, v - k - 1);
	out->value[v - k - 1] = 0;
	return (long)v + 1;
}

int agent_info_parse(const uint8_t *p, uint32_t len, struct agent_info_entry *out, struct err *e)
{
	int n = 0;
	uint32_t at = 0;
	while (at < len) {
		if (n == AGENT_INFO_MAX_ENTRIES)
			return err_set(e, "agent info: more than %d lines", AGENT_INFO_MAX_ENTRIES);
		long used = info_line(p + at, len - at, &out[n], e);
		if (used < 0)
			return -1;
		for (int i = 0; i < n; i++)
			if (strcmp(out[i].key, out[n].key) == 0)
				return err_set(e, "agent info: key %s given twice", out[n].key);
		at += (uint32_t)used;
		n++;
	}
	return n;
}

int agent_info_entry_ok(const char *key, const char *value)
{
	size_t k = strlen(key), v = strlen(value);
	if (k == 0 || k > AGENT_INFO_KEY_MAX || v > AGENT_INFO_VALUE_MAX)
		return 0;
	for (size_t i = 0; i < k; i++)
		if (!key_char((uint8_t)key[i]))
			return 0;
	for (size_t i = 0; i < v; i++)
		if (value[i] < 0x20 || value[i] > 0x7e)
			return 0;
	return 1;
}

/* The length of the UTF-8 sequence at p (at most n bytes), 0 when it is not one: no overlong
 * form, no surrogate, nothing above U+10FFFF. */
static size_t utf8_seq(const uint8_t *p, size_t n)
{
	uint8_t c = p[0];
	size_t len = c < 0x80 ? 1 : (c & 0xe0) == 0xc0 ? 2 : (c & 0xf0) == 0xe0 ? 3 : (c & 0xf8) == 0xf0 ? 4 : 0;
	if (!len || len > n || (len == 2 && c < 0xc2) || (len == 4 && c > 0xf4))
		return 0;
	for (size_t i = 1; i < len; i++)
		if ((p[i] & 0xc0) != 0x80)
			return 0;
	if (len == 3 && ((c == 0xe0 && p[1] < 0xa0) || (c == 0xed && p[1] >= 0xa0)))
		return 0; /* overlong, or a surrogate */
	if (len == 4 && ((c == 0xf0 && p[1] < 0x90) || (c == 0xf4 && p[1] >= 0x90)))
		return 0; /* overlong, or beyond U+10FFFF */
	return len;
}

bool agent_text_ok(const uint8_t *p, size_t n)
{
	for (size_t i = 0; i < n;) {
		size_t len = p[i] ? utf8_seq(p + i, n - i) : 0;
		if (!len)
			return false;
		i += len;
	}
	return true;
}
