/* fuzz_agent_link: libFuzzer target for the monitor's side of the guest agent protocol
 * (src/vmm/agent_link.c) as a hostile agent drives it: the input is what the agent sends,
 * written into a socket pair in pieces (the first byte sets their size, 1 to 256 bytes), the
 * link served after each piece with a clock that moves 700 ms a step (so every deadline is
 * crossed), and the host's own requests sent as the second byte's bits say (at step k, bit
 * k % 8: a clipboard get, a power-off, a clipboard set or a clock setting, by k % 4). The link
 * must never crash, block, queue or await more than its bounds, its description must stay
 * printable JSON, and a clipboard it hands over must be text within the limit, whatever the
 * agent said. */
#include <fcntl.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "common/agent_proto.h"
#include "common/limits.h"
#include "fuzz_check.h"
#include "vmm/agent_link.h"

#ifndef FUZZ_AGENT_LINK_SEED

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static struct agent_link link_;

static void drain(int fd)
{
	uint8_t sink[65536];
	while (read(fd, sink, sizeof(sink)) > 0)
		;
}

static void check_link(int64_t now)
{
	check(link_.npending <= AGENT_LINK_PENDING_MAX);
	check(link_.out_len <= AGENT_LINK_OUT_MAX);
	check(link_.ninfo >= 0 && link_.ninfo <= AGENT_INFO_MAX_ENTRIES);
	check(link_.state <= AGENT_LINK_UNRESPONSIVE);
	json_object *o = agent_link_describe(&link_, now);
	const char *s = json_object_to_json_string_ext(o, JSON_C_TO_STRING_PLAIN);
	for (const char *p = s; *p; p++)
		check(*p >= 0x20 && *p <= 0x7e);
	json_object_put(o);
}

/* The clipboard request's outcome, if it has one: a get's text is text within the limit. */
static void take_clip(void)
{
	uint8_t *text;
	uint32_t len;
	char why[256];
	enum agent_clip_state st = agent_link_clip_take(&link_, &text, &len, why, sizeof(why));
	check(st <= AGENT_CLIP_FAILED);
	if (text)
		check(st == AGENT_CLIP_DONE && len <= SHOJI_CLIPBOARD_MAX && agent_text_ok(text, len));
	if (st == AGENT_CLIP_FAILED)
		check(why[0] != 0);
	free(text);
	check(link_.clip_state <= AGENT_CLIP_WAITING);
}

/* The host's request for step k. */
static void host_request(size_t k, int64_t now)
{
	static const uint8_t text[] = "copied \xe2\x9c\x93\n";
	struct err e;
	switch (k % 4) {
	case 0: agent_link_clip_get(&link_, now, &e); break;
	case 1: agent_link_power(&link_, AGENT_SHUTDOWN, now); break;
	case 2: agent_link_clip_set(&link_, text, sizeof(text) - 1, now, &e); break;
	default: agent_link_sync_time(&link_, now); break;
	}
}

static void serve(int64_t now)
{
	struct pollfd p = {.fd = -1};
	int timeout = -1;
	if (agent_link_poll_fd(&link_, &p, &timeout, now) && p.fd >= 0)
		poll(&p, 1, 0);
	agent_link_serve(&link_, p.fd >= 0 ? p.revents : 0, now);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	if (size < 2)
		return 0;
	size_t piece = (size_t)data[0] + 1;
	uint8_t ops = data[1];
	data += 2;
	size -= 2;
	int sv[2];
	if (socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0, sv) < 0)
		abort();
	agent_link_init(&link_, 0, "0123456789abcdef0123456789abcdef");
	agent_link_attach(&link_, sv[0], 0);
	int64_t now = 0;
	for (size_t at = 0, step = 0; at < size; step++) {
		size_t len = size - at < piece ? size - at : piece;
		ssize_t w = send(sv[1], data + at, len, MSG_NOSIGNAL);
		at += w > 0 ? (size_t)w : len; /* a link that hung up takes nothing more */
		serve(now);
		take_clip();
		if (ops & (1u << (step % 8)))
			host_request(step, now);
		drain(sv[1]);
		check_link(now);
		now += 700;
	}
	serve(now + AGENT_REPLY_MS);
	take_clip();
	check_link(now + AGENT_REPLY_MS);
	agent_link_close(&link_);
	close(sv[1]);
	return 0;
}

#else /* the seed writer: an agent's good conversations */

static void frame(FILE *f, uint8_t type, const void *p, uint32_t len)
{
	uint8_t h[AGENT_HEADER_SIZE];
	if (agent_header(h, type, len, NULL) < 0)
		exit(1);
	fwrite(h, 1, sizeof(h), f);
	fwrite(p, 1, len, f);
}

/* Pieces of 12 bytes, a message each: hello (a get is asked after it), info, the clipboard's
 * text (a set is asked after it), the set's acknowledgement. */
static int clipboard(const char *dir)
{
	char path[512];
	snprintf(path, sizeof(path), "%s/clipboard", dir);
	FILE *f = fopen(path, "wb");
	if (!f)
		return 1;
	fputc(11, f);
	fputc(0x05, f); /* a get at step 0, a set at step 2 */
	uint8_t caps[4] = {0x1f, 0, 0, 0}, ack_set[2] = {AGENT_CLIP_DATA, 0};
	frame(f, AGENT_HELLO, caps, 4);
	frame(f, AGENT_INFO, "a=b\n", 4);
	frame(f, AGENT_CLIP_DATA, "\0h\xc3\xa9", 4);
	frame(f, AGENT_ACK, ack_set, 2);
	return fclose(f) == 0 ? 0 : 1;
}

int main(int argc, char **argv)
{
	if (argc != 2 || clipboard(argv[1]) != 0)
		return 2;
	char path[512];
	snprintf(path, sizeof(path), "%s/conversation", argv[1]);
	FILE *f = fopen(path, "wb");
	if (!f)
		return 1;
	fputc(255, f);  /* whole pieces */
	fputc(0x0a, f); /* a power-off and a clock setting on the way */
	uint8_t caps[4] = {0x1f, 0, 0, 0}, ack_off[2] = {AGENT_SHUTDOWN, 0}, ack_time[2] = {AGENT_TIME_SET, 0};
	const char *info = "os=Debian GNU/Linux 12 (bookworm)\nhostname=work\nuptime-s=12\n";
	frame(f, AGENT_HELLO, caps, 4);
	frame(f, AGENT_INFO, info, (uint32_t)strlen(info));
	frame(f, AGENT_ACK, ack_off, 2);
	frame(f, AGENT_ACK, ack_time, 2);
	frame(f, AGENT_INFO, info, (uint32_t)strlen(info));
	return fclose(f) == 0 ? 0 : 1;
}

#endif
