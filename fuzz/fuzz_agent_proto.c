/* fuzz_agent_proto: libFuzzer target for the guest agent protocol's reader (common/agent_proto.c)
 * as the monitor runs it on what a hostile agent sends: the first input byte sets the size of
 * the pieces the rest is fed in (1 to 256 bytes), and every whole message is checked for its
 * type's payload size and, for info, parsed. Nothing may read outside the input or the reader's
 * buffer, take more bytes than given, or go on after an error; a message's header must encode
 * back to the bytes read. */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/agent_proto.h"

#ifndef FUZZ_AGENT_PROTO_SEED

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static void check_msg(const struct agent_msg *m)
{
	struct err e;
	uint8_t hdr[AGENT_HEADER_SIZE];
	if (agent_header(hdr, m->type, m->len, &e) < 0 || m->len > 4096)
		abort(); /* the reader let through a type or a length it must refuse */
	if (agent_check_payload(m, &e) == 0 && m->type == AGENT_INFO) {
		struct agent_info_entry out[AGENT_INFO_MAX_ENTRIES];
		int n = agent_info_parse(m->payload, m->len, out, &e);
		for (int i = 0; i < n; i++)
			if (!out[i].key[0] || strlen(out[i].key) > AGENT_INFO_KEY_MAX ||
			    strlen(out[i].value) > AGENT_INFO_VALUE_MAX)
				abort();
	}
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	if (size < 1)
		return 0;
	size_t piece = (size_t)data[0] + 1;
	data++;
	size--;
	struct agent_reader r;
	agent_reader_init(&r, 4096);
	for (size_t at = 0; at < size;) {
		size_t len = size - at < piece ? size - at : piece, used;
		struct agent_msg m;
		struct err e;
		enum agent_feed f = agent_reader_feed(&r, data + at, len, &used, &m, &e);
		if (used > len)
			abort();
		if (f == AGENT_FEED_ERROR)
			break;
		if (f == AGENT_FEED_MORE && used != len)
			abort(); /* "more" takes everything */
		if (f == AGENT_FEED_MSG)
			check_msg(&m);
		at += used;
	}
	agent_reader_free(&r);
	return 0;
}

#else /* the seed writer: a hello and an info request, an info answer, a clipboard, each whole */

static void put(const char *dir, const char *name, uint8_t piece, const uint8_t (*msgs)[2], const char *const *payloads,
		size_t n)
{
	char path[512];
	snprintf(path, sizeof(path), "%s/%s", dir, name);
	FILE *f = fopen(path, "wb");
	if (!f)
		exit(1);
	fputc(piece, f);
	for (size_t i = 0; i < n; i++) {
		uint8_t hdr[AGENT_HEADER_SIZE];
		uint32_t len = msgs[i][1];
		struct err e;
		if (agent_header(hdr, msgs[i][0], len, &e) < 0)
			exit(1);
		fwrite(hdr, 1, sizeof(hdr), f);
		fwrite(payloads[i], 1, len, f);
	}
	if (fclose(f) != 0)
		exit(1);
}

int main(int argc, char **argv)
{
	if (argc != 2)
		return 2;
	static const uint8_t hello[][2] = {{AGENT_HELLO, 4}, {AGENT_INFO_REQ, 0}};
	static const char *const hello_p[] = {"\x1f\0\0\0", ""};
	static const uint8_t info[][2] = {{AGENT_INFO, 20}};
	static const char *const info_p[] = {"os=debian\nuptime=12\n"};
	static const uint8_t clip[][2] = {{AGENT_CLIP_DATA, 6}, {AGENT_ACK, 2}};
	static const char *const clip_p[] = {"\0hello", "\x09\0"};
	put(argv[1], "hello-info-req", 3, hello, hello_p, 2);
	put(argv[1], "info", 255, info, info_p, 1);
	put(argv[1], "clip", 0, clip, clip_p, 2);
	return 0;
}

#endif
