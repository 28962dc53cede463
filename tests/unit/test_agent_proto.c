/* agent_proto: the guest agent protocol's frames read back whole from any split of the stream,
 * every header violation (magic, version, type, over-long payload) ending the stream, payload
 * sizes per type, the info text's rules, clipboard text (UTF-8) and base64 (the clipboard's
 * form on the control socket). */
#include "unit.h"

#include "common/agent_proto.h"
#include "common/base64.h"

/* A frame of type with payload p[0..len) appended to out at *n. */
static void frame(uint8_t *out, size_t *n, uint8_t type, const void *p, uint32_t len)
{
	struct err e;
	assert_int_equal(agent_header(out + *n, type, len, &e), 0);
	if (len)
		memcpy(out + *n + AGENT_HEADER_SIZE, p, len);
	*n += AGENT_HEADER_SIZE + len;
}

/* Three frames fed in pieces of every size from 1 to the whole come out whole, in order. */
static void frames_from_any_split(void **state)
{
	(void)state;
	uint8_t stream[256];
	size_t n = 0;
	uint32_t caps = AGENT_CAP_INFO | AGENT_CAP_CLIPBOARD;
	frame(stream, &n, AGENT_HELLO, &caps, 4);
	frame(stream, &n, AGENT_SHUTDOWN, NULL, 0);
	frame(stream, &n, AGENT_INFO, "os=debian\nuptime=12\n", 20);
	for (size_t piece = 1; piece <= n; piece++) {
		struct agent_reader r;
		agent_reader_init(&r, 1024);
		struct err e;
		int seen = 0;
		for (size_t at = 0; at < n;) {
			size_t len = n - at < piece ? n - at : piece, used;
			struct agent_msg m;
			enum agent_feed f = agent_reader_feed(&r, stream + at, len, &used, &m, &e);
			assert_int_not_equal(f, AGENT_FEED_ERROR);
			assert_true(used <= len);
			at += used;
			if (f != AGENT_FEED_MSG)
				continue;
			static const uint8_t types[] = {AGENT_HELLO, AGENT_SHUTDOWN, AGENT_INFO};
			assert_int_equal(m.type, types[seen]);
			assert_int_equal(agent_check_payload(&m, &e), 0);
			if (m.type == AGENT_INFO)
				assert_memory_equal(m.payload, "os=debian\nuptime=12\n", 20);
			seen++;
		}
		assert_int_equal(seen, 3);
		agent_reader_free(&r);
	}
}

/* A header with one field wrong ends the stream with an error naming it, and so does every
 * later call. */
static void header_violations(void **state)
{
	(void)state;
	static const struct {
		uint8_t hdr[AGENT_HEADER_SIZE];
		const char *says;
	} cases[] = {
		{{0x41, 0x54, 1, 1, 4, 0, 0, 0}, "magic"},
		{{0x41, 0x53, 2, 1, 4, 0, 0, 0}, "version"},
		{{0x41, 0x53, 1, 0, 0, 0, 0, 0}, "type"},
		{{0x41, 0x53, 1, AGENT_TYPE_MAX + 1, 0, 0, 0, 0}, "type"},
		{{0x41, 0x53, 1, 9, 0x01, 0x04, 0, 0}, "limit"}, /* 1025 bytes, over the reader's 1024 */
		{{0x41, 0x53, 1, 9, 0xff, 0xff, 0xff, 0xff}, "limit"},
	};
	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		struct agent_reader r;
		agent_reader_init(&r, 1024);
		struct err e = {""};
		struct agent_msg m;
		size_t used;
		assert_int_equal(agent_reader_feed(&r, cases[i].hdr, AGENT_HEADER_SIZE, &used, &m, &e),
				 AGENT_FEED_ERROR);
		assert_contains(e.msg, cases[i].says);
		assert_int_equal(agent_reader_feed(&r, cases[i].hdr, 1, &used, &m, &e), AGENT_FEED_ERROR);
		agent_reader_free(&r);
	}
	uint8_t h[AGENT_HEADER_SIZE];
	struct err e;
	assert_int_equal(agent_header(h, 0, 0, &e), -1);
	assert_int_equal(agent_header(h, AGENT_CLIP_DATA, AGENT_MAX_PAYLOAD + 1, &e), -1);
}

static void payload_sizes(void **state)
{
	(void)state;
	struct err e = {""};
	struct agent_msg ok[] = {{AGENT_HELLO, 4, NULL},   {AGENT_TIME_SET, 8, NULL},  {AGENT_RESIZE, 8, NULL},
				 {AGENT_ACK, 2, NULL},     {AGENT_CLIP_DATA, 1, NULL}, {AGENT_INFO, 1, NULL},
				 {AGENT_INFO_REQ, 0, NULL}};
	for (size_t i = 0; i < sizeof(ok) / sizeof(ok[0]); i++)
		assert_int_equal(agent_check_payload(&ok[i], &e), 0);
	struct agent_msg bad[] = {{AGENT_HELLO, 3, NULL},     {AGENT_TIME_SET, 9, NULL}, {AGENT_SHUTDOWN, 1, NULL},
				  {AGENT_CLIP_DATA, 0, NULL}, {AGENT_INFO, 0, NULL},     {0, 0, NULL}};
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++)
		assert_int_equal(agent_check_payload(&bad[i], &e), -1);
}

static int info_fails(const char *text, const char *says)
{
	struct agent_info_entry out[AGENT_INFO_MAX_ENTRIES];
	struct err e = {""};
	if (agent_info_parse((const uint8_t *)text, (uint32_t)strlen(text), out, &e) >= 0)
		return 0;
	assert_contains(e.msg, says);
	return 1;
}

static void info_text(void **state)
{
	(void)state;
	struct agent_info_entry out[AGENT_INFO_MAX_ENTRIES];
	struct err e;
	const char *text = "os=Debian GNU/Linux 12\naddress-enp0s4=10.0.2.15/24\nuptime=42\n";
	assert_int_equal(agent_info_parse((const uint8_t *)text, (uint32_t)strlen(text), out, &e), 3);
	assert_string_equal(out[1].key, "address-enp0s4");
	assert_string_equal(out[0].value, "Debian GNU/Linux 12");
	assert_true(info_fails("os=x", "newline"));
	assert_true(info_fails("OS=x\n", "key"));
	assert_true(info_fails("=x\n", "key"));
	assert_true(info_fails("os\n", "key"));
	assert_true(info_fails("os=a\tb\n", "printable"));
	assert_true(info_fails("os=a\nos=b\n", "twice"));
	char longkey[64], longval[300], many[AGENT_INFO_MAX_ENTRIES * 8 + 16] = "";
	snprintf(longkey, sizeof(longkey), "%033d=x\n", 0);
	assert_true(info_fails(longkey, "key"));
	memset(longval, 'v', sizeof(longval));
	memcpy(longval, "k=", 2);
	memcpy(longval + 2 + 257, "\n", 2);
	assert_true(info_fails(longval, "over"));
	longval[2 + 256] = '\n';
	longval[2 + 257] = 0;
	assert_int_equal(agent_info_parse((const uint8_t *)longval, (uint32_t)strlen(longval), out, &e), 1);
	for (int i = 0; i <= AGENT_INFO_MAX_ENTRIES; i++)
		snprintf(many + strlen(many), sizeof(many) - strlen(many), "k%d=1\n", i);
	assert_true(info_fails(many, "more than"));
	assert_int_equal(agent_info_parse((const uint8_t *)"", 0, out, &e), 0);
}

static bool text_ok(const char *s)
{
	return agent_text_ok((const uint8_t *)s, strlen(s));
}

/* Clipboard text is well-formed UTF-8 without NUL: every malformed form is refused. */
static void clipboard_text(void **state)
{
	(void)state;
	assert_true(text_ok(""));
	assert_true(text_ok("plain\ttext\n"));
	assert_true(text_ok("\xc3\xa9t\xc3\xa9 \xe2\x82\xac \xf0\x9f\x98\x80 \xf4\x8f\xbf\xbf"));
	assert_false(agent_text_ok((const uint8_t *)"a\0b", 3));
	assert_false(text_ok("\xc0\x80"));         /* overlong NUL */
	assert_false(text_ok("\xc1\xbf"));         /* overlong */
	assert_false(text_ok("\xe0\x80\xaf"));     /* overlong '/' */
	assert_false(text_ok("\xed\xa0\x80"));     /* surrogate */
	assert_false(text_ok("\xf4\x90\x80\x80")); /* above U+10FFFF */
	assert_false(text_ok("\xf5\x80\x80\x80"));
	assert_false(text_ok("\x80"));         /* a lone continuation */
	assert_false(text_ok("abc\xe2\x82"));  /* cut short */
	assert_false(text_ok("\xe2\x28\xa1")); /* a bad continuation */
	assert_false(text_ok("\xff"));
}

/* base64 round-trips every length, and only canonical text decodes. */
static void base64_forms(void **state)
{
	(void)state;
	uint8_t in[64] = {0}, out[64];
	char text[128];
	for (size_t n = 0; n <= sizeof(in); n++) {
		for (size_t i = 0; i < n; i++)
			in[i] = (uint8_t)(i * 37 + n);
		base64_encode(in, n, text);
		assert_int_equal(strlen(text), base64_encoded_len(n));
		assert_int_equal(base64_decode(text, strlen(text), out, sizeof(out)), (long)n);
		assert_memory_equal(in, out, n);
		if (n) /* one byte less room than needed */
			assert_int_equal(base64_decode(text, strlen(text), out, n - 1), -1);
	}
	base64_encode((const uint8_t *)"foobar", 6, text);
	assert_string_equal(text, "Zm9vYmFy");
	base64_encode((const uint8_t *)"fo", 2, text);
	assert_string_equal(text, "Zm8=");
	static const char *const bad[] = {"Zm8", "Zm9=", "Zg==Zg==", "Z===", "Zm 8", "Zm8\n", "=Zm8", "Zm-_"};
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++)
		assert_int_equal(base64_decode(bad[i], strlen(bad[i]), out, sizeof(out)), -1);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(frames_from_any_split), cmocka_unit_test(header_violations),
		cmocka_unit_test(payload_sizes),         cmocka_unit_test(info_text),
		cmocka_unit_test(clipboard_text),        cmocka_unit_test(base64_forms),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
