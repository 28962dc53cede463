/* test_net_stream: length-prefixed frames on a stream socket pair (net/stream.h): frames cut
 * anywhere on the way in come out whole, several in one read come out one by one, a length over
 * the limit breaks the stream, a frame the stream takes in part keeps its rest until there is
 * room, and a closed stream says so. */
#include "unit.h"

#include <errno.h>
#include <fcntl.h>
#include <sys/socket.h>
#include <unistd.h>

#include "vmm/net/stream.h"

#define MAX 2000

struct sfx {
	struct net_stream s;
	int fd, peer; /* ours (non-blocking) and the other end */
};

static int setup(void **state)
{
	struct sfx *f = calloc(1, sizeof(*f));
	int sv[2];
	struct err e;
	if (!f || socketpair(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK, 0, sv) < 0 || net_stream_init(&f->s, MAX, &e) < 0)
		return -1;
	f->fd = sv[0];
	f->peer = sv[1];
	*state = f;
	return 0;
}

static int teardown(void **state)
{
	struct sfx *f = *state;
	net_stream_destroy(&f->s);
	close(f->fd);
	if (f->peer >= 0)
		close(f->peer);
	free(f);
	return 0;
}

/* len's frame (filled with fill) after its length, into out; returns the bytes. */
static size_t framed(uint8_t *out, uint32_t len, uint8_t fill)
{
	out[0] = (uint8_t)(len >> 24);
	out[1] = (uint8_t)(len >> 16);
	out[2] = (uint8_t)(len >> 8);
	out[3] = (uint8_t)len;
	memset(out + 4, fill, len);
	return 4 + len;
}

static void frames_cut_anywhere_come_out_whole(void **state)
{
	struct sfx *f = *state;
	uint8_t wire[3 * (4 + MAX)], buf[MAX];
	size_t n = framed(wire, 100, 'a');
	n += framed(wire + n, MAX, 'b');
	n += framed(wire + n, 60, 'c');
	static const struct {
		uint32_t len;
		uint8_t fill;
	} want[] = {{100, 'a'}, {MAX, 'b'}, {60, 'c'}};
	unsigned k = 0;
	uint32_t len;
	for (size_t i = 0; i < n; i += 7) { /* 7 bytes at a time: the cuts fall everywhere */
		size_t part = i + 7 < n ? 7 : n - i;
		assert_int_equal(send(f->peer, wire + i, part, 0), (ssize_t)part);
		enum net_stream_result r;
		while ((r = net_stream_read(&f->s, f->fd, buf, &len)) == NET_STREAM_FRAME) {
			assert_true(k < 3);
			assert_int_equal(len, want[k].len);
			assert_int_equal(buf[0], want[k].fill);
			assert_int_equal(buf[len - 1], want[k].fill);
			k++;
		}
		assert_int_equal(r, NET_STREAM_AGAIN);
		if (i + part < 104)
			assert_int_equal(k, 0); /* the first frame is not whole yet */
	}
	assert_int_equal(k, 3);
}

static void over_the_limit_breaks_the_stream(void **state)
{
	struct sfx *f = *state;
	uint8_t wire[8] = {0, 0, 0x07, 0xd1}, buf[MAX]; /* MAX + 1 */
	uint32_t len;
	assert_int_equal(send(f->peer, wire, sizeof(wire), 0), (ssize_t)sizeof(wire));
	assert_int_equal(net_stream_read(&f->s, f->fd, buf, &len), NET_STREAM_BROKEN);
	assert_int_equal(errno, EPROTO);
}

static void closed_stream(void **state)
{
	struct sfx *f = *state;
	uint8_t buf[MAX];
	uint32_t len;
	close(f->peer);
	f->peer = -1;
	assert_int_equal(net_stream_read(&f->s, f->fd, buf, &len), NET_STREAM_CLOSED);
	struct iovec v = {buf, 10};
	assert_int_equal(net_stream_write(&f->s, f->fd, &v, 1, 10), NET_STREAM_CLOSED);
}

static void written_in_part_keeps_the_rest(void **state)
{
	struct sfx *f = *state;
	int small = 4096;
	setsockopt(f->fd, SOL_SOCKET, SO_SNDBUF, &small, sizeof(small));
	uint8_t a[MAX], b[MAX];
	memset(a, 'x', sizeof(a));
	memset(b, 'y', sizeof(b));
	struct iovec va[2] = {{a, 1000}, {a + 1000, MAX - 1000}}, vb = {b, MAX};
	enum net_stream_result r;
	unsigned sent = 0;
	while ((r = net_stream_write(&f->s, f->fd, va, 2, MAX)) == NET_STREAM_FRAME && !net_stream_pending(&f->s))
		sent++;
	if (r == NET_STREAM_FRAME) { /* taken in part: the rest is held, and nothing else may go */
		sent++;
		assert_int_equal(net_stream_write(&f->s, f->fd, &vb, 1, MAX), NET_STREAM_BROKEN);
		assert_int_equal(errno, EBUSY);
		assert_int_equal(net_stream_flush(&f->s, f->fd), NET_STREAM_AGAIN);
	} else {
		assert_int_equal(r, NET_STREAM_AGAIN); /* nothing of it went: the caller keeps it */
		assert_false(net_stream_pending(&f->s));
	}
	/* The other end reads everything: the frames come out whole, in order. */
	struct net_stream rd;
	struct err e;
	assert_int_equal(net_stream_init(&rd, MAX, &e), 0);
	uint8_t buf[MAX];
	uint32_t len;
	for (unsigned got = 0; got < sent;) {
		r = net_stream_read(&rd, f->peer, buf, &len);
		if (r == NET_STREAM_AGAIN) {
			assert_int_not_equal(net_stream_flush(&f->s, f->fd), NET_STREAM_BROKEN);
			continue;
		}
		assert_int_equal(r, NET_STREAM_FRAME);
		assert_int_equal(len, MAX);
		assert_int_equal(buf[0], 'x');
		assert_int_equal(buf[MAX - 1], 'x');
		got++;
	}
	assert_false(net_stream_pending(&f->s));
	net_stream_destroy(&rd);
}

static void short_iovecs_are_refused(void **state)
{
	struct sfx *f = *state;
	uint8_t a[10];
	struct iovec v = {a, sizeof(a)};
	assert_int_equal(net_stream_write(&f->s, f->fd, &v, 1, 20), NET_STREAM_BROKEN); /* says 20, holds 10 */
	assert_int_equal(errno, EINVAL);
	assert_int_equal(net_stream_write(&f->s, f->fd, &v, 1, MAX + 1), NET_STREAM_BROKEN);
	uint8_t got[4];
	assert_int_equal(recv(f->peer, got, sizeof(got), MSG_DONTWAIT), -1); /* nothing was sent */
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup_teardown(frames_cut_anywhere_come_out_whole, setup, teardown),
		cmocka_unit_test_setup_teardown(over_the_limit_breaks_the_stream, setup, teardown),
		cmocka_unit_test_setup_teardown(closed_stream, setup, teardown),
		cmocka_unit_test_setup_teardown(written_in_part_keeps_the_rest, setup, teardown),
		cmocka_unit_test_setup_teardown(short_iovecs_are_refused, setup, teardown),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
