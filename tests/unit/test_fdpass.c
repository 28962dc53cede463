/* fdpass: every descriptor a peer sends is either kept (up to what the receiver expects) or
 * closed at once; control data cut short or of another kind fails the receive and leaks nothing.
 * Open descriptors are counted in /proc/self/fd before and after. */
#include "unit.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <sys/socket.h>
#include <unistd.h>

#include "common/fdpass.h"
#include "common/rpc.h"

static int open_fds(void)
{
	DIR *d = opendir("/proc/self/fd");
	assert_non_null(d);
	int n = 0;
	while (readdir(d))
		n++;
	closedir(d);
	return n;
}

/* Sends one byte with n descriptors (dups of /dev/null) over s, closing them here afterwards. */
static void send_nulls(int s, unsigned n, const char *byte)
{
	int fds[256];
	struct iovec iov = {.iov_base = (void *)byte, .iov_len = 1};
	union {
		char b[CMSG_SPACE(sizeof(fds))];
		struct cmsghdr align;
	} cm;
	memset(&cm, 0, sizeof(cm));
	for (unsigned i = 0; i < n; i++)
		assert_true((fds[i] = open("/dev/null", O_RDONLY | O_CLOEXEC)) >= 0);
	struct msghdr mh = {.msg_iov = &iov,
			    .msg_iovlen = 1,
			    .msg_control = cm.b,
			    .msg_controllen = CMSG_SPACE(n * sizeof(int))};
	struct cmsghdr *c = CMSG_FIRSTHDR(&mh);
	c->cmsg_level = SOL_SOCKET;
	c->cmsg_type = SCM_RIGHTS;
	c->cmsg_len = CMSG_LEN(n * sizeof(int));
	memcpy(CMSG_DATA(c), fds, n * sizeof(int));
	assert_int_equal(sendmsg(s, &mh, 0), 1);
	for (unsigned i = 0; i < n; i++)
		close(fds[i]);
}

static void pair(int sv[2], int type)
{
	assert_int_equal(socketpair(AF_UNIX, type | SOCK_CLOEXEC, 0, sv), 0);
}

static void test_surplus_descriptors_are_closed(void **state)
{
	(void)state;
	int sv[2];
	pair(sv, SOCK_STREAM);
	int before = open_fds();
	send_nulls(sv[0], 3, "a");
	char buf[8];
	struct fdpass_msg m;
	assert_int_equal(fdpass_recv(sv[1], buf, sizeof(buf), 1, 0, &m), FDPASS_OK);
	assert_int_equal(m.len, 1);
	assert_int_equal(m.nfds, 1);
	assert_int_equal(m.dropped, 2);
	assert_int_equal(open_fds(), before + 1); /* the one kept */
	assert_true(fcntl(m.fds[0], F_GETFD) & FD_CLOEXEC);
	fdpass_close(&m);
	assert_int_equal(open_fds(), before);
	/* None expected: every one closed. */
	send_nulls(sv[0], 2, "b");
	assert_int_equal(fdpass_recv(sv[1], buf, sizeof(buf), 0, 0, &m), FDPASS_OK);
	assert_int_equal(m.nfds, 0);
	assert_int_equal(m.dropped, 2);
	assert_int_equal(open_fds(), before);
	close(sv[0]);
	close(sv[1]);
}

static void test_truncated_control_data_fails_and_leaks_nothing(void **state)
{
	(void)state;
	int sv[2];
	pair(sv, SOCK_SEQPACKET);
	int before = open_fds();
	send_nulls(sv[0], 200, "c"); /* more than the receiver has room for */
	char buf[8];
	struct fdpass_msg m;
	assert_int_equal(fdpass_recv(sv[1], buf, sizeof(buf), 1, 0, &m), FDPASS_ERROR);
	assert_int_equal(errno, EPROTO);
	assert_int_equal(m.nfds, 0);
	assert_int_equal(open_fds(), before);
	close(sv[0]);
	close(sv[1]);
}

static void test_other_control_data_fails(void **state)
{
	(void)state;
	int sv[2], on = 1;
	pair(sv, SOCK_STREAM);
	/* A receiver that (wrongly) asked for credentials gets an SCM_CREDENTIALS message too. */
	assert_int_equal(setsockopt(sv[1], SOL_SOCKET, SO_PASSCRED, &on, sizeof(on)), 0);
	int before = open_fds();
	send_nulls(sv[0], 1, "d");
	char buf[8];
	struct fdpass_msg m;
	assert_int_equal(fdpass_recv(sv[1], buf, sizeof(buf), 1, 0, &m), FDPASS_ERROR);
	assert_int_equal(errno, EPROTO);
	assert_int_equal(open_fds(), before);
	close(sv[0]);
	close(sv[1]);
}

static void test_plain_bytes_end_and_would_block(void **state)
{
	(void)state;
	int sv[2];
	pair(sv, SOCK_STREAM);
	char buf[8];
	struct fdpass_msg m;
	assert_int_equal(fdpass_recv(sv[1], buf, sizeof(buf), 1, MSG_DONTWAIT, &m), FDPASS_AGAIN);
	assert_int_equal(fdpass_send(sv[0], "xyz", 3, -1, 0), 3);
	assert_int_equal(fdpass_recv(sv[1], buf, sizeof(buf), 1, 0, &m), FDPASS_OK);
	assert_int_equal(m.len, 3);
	assert_int_equal(m.nfds, 0);
	/* One descriptor sent the ordinary way arrives. */
	int fd = open("/dev/null", O_RDONLY | O_CLOEXEC);
	assert_int_equal(fdpass_send(sv[0], "q", 1, fd, 0), 1);
	close(fd);
	assert_int_equal(fdpass_recv(sv[1], buf, sizeof(buf), 1, 0, &m), FDPASS_OK);
	assert_int_equal(m.nfds, 1);
	fdpass_close(&m);
	close(sv[0]);
	assert_int_equal(fdpass_recv(sv[1], buf, sizeof(buf), 1, 0, &m), FDPASS_OK);
	assert_int_equal(m.len, 0); /* end of stream */
	close(sv[1]);
}

/* The JSON-lines reader keeps one descriptor a line, however many arrive with it. */
static void test_rpc_reader_keeps_one_per_line(void **state)
{
	(void)state;
	int sv[2];
	pair(sv, SOCK_STREAM);
	int before = open_fds();
	send_nulls(sv[0], 3, "{");
	send_nulls(sv[0], 2, "}");
	assert_int_equal(send(sv[0], "\n", 1, 0), 1);
	struct rpc_reader r;
	rpc_reader_init(&r, sv[1], 1024);
	char *line = NULL;
	int fd = -1;
	struct err e;
	assert_int_equal(rpc_read_line(&r, 1000, &line, &fd, &e), 1);
	assert_string_equal(line, "{}");
	assert_true(fd >= 0);
	assert_int_equal(open_fds(), before + 1);
	close(fd);
	free(line);
	rpc_reader_free(&r);
	assert_int_equal(open_fds(), before);
	close(sv[0]);
	close(sv[1]);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_surplus_descriptors_are_closed),
		cmocka_unit_test(test_truncated_control_data_fails_and_leaks_nothing),
		cmocka_unit_test(test_other_control_data_fails),
		cmocka_unit_test(test_plain_bytes_end_and_would_block),
		cmocka_unit_test(test_rpc_reader_keeps_one_per_line),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
