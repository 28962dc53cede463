/* fuzz_net_stream: what a passt process (or whatever holds the other end of a passt NIC's
 * stream) sends, read as frames (net/stream.h). The input is cut into the pieces its first
 * bytes say, each sent and read in turn: every frame that comes out lies within the limit and
 * within what was sent, and a broken stream stays broken. */
#include <stdint.h>
#include <stdlib.h>
#include <sys/socket.h>
#include <unistd.h>

#include "vmm/net/stream.h"

#define MAX 9000

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	if (size < 2)
		return 0;
	unsigned cut = 1 + data[0] % 64; /* the bytes each send carries */
	data++;
	size--;
	int sv[2];
	struct net_stream s;
	struct err e;
	if (socketpair(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK, 0, sv) < 0 || net_stream_init(&s, MAX, &e) < 0)
		abort();
	static uint8_t buf[MAX];
	size_t sent = 0, taken = 0;
	bool broken = false;
	while (sent < size && !broken) {
		size_t part = size - sent < cut ? size - sent : cut;
		if (send(sv[1], data + sent, part, 0) != (ssize_t)part)
			abort();
		sent += part;
		uint32_t len;
		enum net_stream_result r;
		while ((r = net_stream_read(&s, sv[0], buf, &len)) == NET_STREAM_FRAME) {
			taken += 4 + (size_t)len;
			if (len > MAX || taken > sent)
				abort();
		}
		broken = r == NET_STREAM_BROKEN;
		if (r == NET_STREAM_CLOSED)
			abort(); /* the other end is still open */
	}
	net_stream_destroy(&s);
	close(sv[0]);
	close(sv[1]);
	return 0;
}
