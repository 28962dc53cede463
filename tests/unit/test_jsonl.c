/* jsonl: the strict request rules every JSON-lines server parses by, and the one server they
 * all run on (common/jsonl_server.c) over a real socket: requests in order while one is parked,
 * replies queued and a reader that falls behind dropped, a refused connection told why and
 * drained, descriptors beyond one a line closed, every slot given back. */
#include "unit.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#include "common/fdpass.h"
#include "common/jsonl.h"
#include "common/jsonl_server.h"

static int parse_fails(const char *line, const char *says)
{
	struct json_object *o;
	struct err e = {""};
	if (jsonl_parse_object(line, strlen(line), 64, &o, &e) == 0) {
		json_object_put(o);
		return 0;
	}
	if (!strstr(e.msg, says))
		fail_msg("'%s': '%s' does not say '%s'", line, e.msg, says);
	return 1;
}

static void test_parse_rules(void **state)
{
	(void)state;
	assert_true(parse_fails("", "not valid JSON"));
	assert_true(parse_fails("{\"cmd\":", "ends too early"));
	assert_true(parse_fails("{'cmd':'x'}", "not valid JSON"));
	assert_true(parse_fails("{\"cmd\":\"x\",}", "not valid JSON"));
	assert_true(parse_fails("{\"cmd\":\"x\"} y", "more after"));
	assert_true(parse_fails("{}{}", "more after"));
	assert_true(parse_fails("[1]", "JSON object"));
	assert_true(parse_fails("12", "JSON object"));
	assert_true(parse_fails("[[[[[[[[[[[[[[[[[[[[1]]]]]]]]]]]]]]]]]]]", "too deep"));
	assert_true(parse_fails("{\"a\":\"0123456789012345678901234567890123456789012345678901234567890\"}",
				"longer than 64"));
	struct json_object *o;
	struct err e;
	assert_int_equal(jsonl_parse_object("a\0b", 3, 64, &o, &e), -1);
	assert_non_null(strstr(e.msg, "NUL"));
	assert_int_equal(jsonl_parse_object(" {\"cmd\":\"go\",\"n\":\"x\"} \r", 22, 64, &o, &e), 0);

	static const char *const names[] = {"stop", NULL, "go"};
	assert_int_equal(jsonl_command(o, names, 3, &e), 2);
	static const char *const only_m[] = {"m", NULL}, *const only_n[] = {"n", NULL};
	assert_int_equal(jsonl_check_fields(o, "go", only_m, &e), -1);
	assert_non_null(strstr(e.msg, "'go' takes no field 'n'"));
	assert_int_equal(jsonl_check_fields(o, "go", only_n, &e), 0);
	const char *v;
	assert_int_equal(jsonl_string(o, "go", "n", 8, true, &v, &e), 0);
	assert_string_equal(v, "x");
	assert_int_equal(jsonl_string(o, "go", "m", 8, false, &v, &e), 0);
	assert_null(v);
	assert_int_equal(jsonl_string(o, "go", "m", 8, true, &v, &e), -1);
	assert_non_null(strstr(e.msg, "needs the field 'm'"));
	json_object_put(o);

	assert_int_equal(jsonl_parse_object("{\"cmd\":\"g\\u00e9\\u0001\"}", 23, 64, &o, &e), 0);
	assert_int_equal(jsonl_command(o, names, 3, &e), -1);
	assert_non_null(strstr(e.msg,
			       "unknown command 'g??"
			       "?' (one of: stop, go)"));
	json_object_put(o);
}

/* The server under test: a request "park" parks, "fd" reports whether a descriptor came, any
 * other is echoed; "refuse" in the first request's place is refused at accept time by name. */
static int requests, closed_calls, fds_seen;
static bool refuse_next;
static struct jsonl_conn *parked;

static int on_accepted(void *ctx, struct jsonl_conn *c)
{
	(void)ctx;
	if (!refuse_next)
		return 0;
	refuse_next = false;
	jsonl_send(c, "{\"ok\":false,\"error\":\"refused\"}\n", 31);
	return -1;
}

static void on_request(void *ctx, struct jsonl_conn *c, const char *line, size_t len, int fd)
{
	(void)ctx;
	requests++;
	assert_int_equal(strlen(line), len);
	if (fd >= 0) {
		fds_seen++;
		close(fd);
	}
	if (strcmp(line, "park") == 0) {
		jsonl_park(c);
		parked = c;
		return;
	}
	char out[256];
	int n = snprintf(out, sizeof(out), "%s\n", line);
	jsonl_send(c, out, (size_t)n);
}

static void on_closed(void *ctx, struct jsonl_conn *c)
{
	(void)ctx;
	(void)c;
	closed_calls++;
}

static const struct jsonl_server_ops ops = {
	.accepted = on_accepted,
	.request = on_request,
	.closed = on_closed,
};

static char sock_path[108];

static void serve(struct jsonl_server *s, int ms)
{
	struct pollfd fds[16];
	unsigned n = jsonl_server_poll_fds(s, fds, NULL);
	if (poll(fds, n, ms) > 0)
		jsonl_server_serve(s, fds, n);
}

static int client(void)
{
	return unit_connect(sock_path);
}

/* Serves until fd has want bytes or closes; returns what came (NUL-terminated). */
static char *read_some(struct jsonl_server *s, int fd, char *buf, size_t size, size_t want)
{
	size_t len = 0;
	buf[0] = '\0';
	for (int i = 0; i < 300 && len < want; i++) {
		serve(s, 5);
		ssize_t r = recv(fd, buf + len, size - 1 - len, MSG_DONTWAIT);
		if (r == 0)
			break;
		if (r > 0)
			len += (size_t)r;
		buf[len] = '\0';
	}
	return buf;
}

static bool peer_closed(struct jsonl_server *s, int fd, int rounds)
{
	char b[4096];
	for (int i = 0; i < rounds; i++) {
		serve(s, 5);
		ssize_t r = recv(fd, b, sizeof(b), MSG_DONTWAIT);
		if (r == 0 || (r < 0 && errno != EAGAIN))
			return true;
	}
	return false;
}

static void start(struct jsonl_server *s, size_t max_out)
{
	char name[64];
	snprintf(name, sizeof(name), "shoji-test-jsonl-%d.sock", (int)getpid());
	unit_tmp_path(sock_path, sizeof(sock_path), name);
	const struct jsonl_server_config cfg = {
		.what = "test socket",
		.ops = &ops,
		.max_conns = 2,
		.max_line = 32,
		.max_out = max_out,
		.fds_per_line = 1,
	};
	struct err e;
	assert_int_equal(jsonl_server_listen(s, &cfg, sock_path, &e), 0);
	requests = closed_calls = fds_seen = 0;
	parked = NULL;
}

static void test_parked_requests_keep_their_order(void **state)
{
	(void)state;
	struct jsonl_server s;
	start(&s, 1 << 20);
	char buf[512];
	int c = client();
	assert_int_equal(send(c, "a\npark\nb\r\nc\n", 12, 0), 12);
	read_some(&s, c, buf, sizeof(buf), 2);
	assert_string_equal(buf, "a\n");
	for (int i = 0; i < 10; i++)
		serve(&s, 2);
	assert_int_equal(requests, 2); /* b and c wait for the parked request */
	assert_non_null(parked);
	jsonl_send(parked, "parked-done\n", 12);
	jsonl_resume(parked);
	read_some(&s, c, buf, sizeof(buf), 16);
	assert_string_equal(buf, "parked-done\nb\nc\n");
	close(c);
	for (int i = 0; i < 5; i++)
		serve(&s, 2);
	assert_int_equal(closed_calls, 1);
	jsonl_server_close(&s);
	assert_int_equal(access(sock_path, F_OK), -1);
}

static void test_slow_reader_dropped(void **state)
{
	(void)state;
	struct jsonl_server s;
	start(&s, 64); /* 64 bytes queued at most */
	int c = client();
	int small = 1024;
	setsockopt(c, SOL_SOCKET, SO_RCVBUF, &small, sizeof(small));
	char line[40];
	memset(line, 'y', 30);
	line[30] = '\n';
	/* Requests keep coming; the replies are never read: the server drops the client once more
	 * than 64 bytes wait for it. */
	bool gone = false;
	for (int i = 0; i < 20000 && !gone; i++) {
		if (send(c, line, 31, MSG_DONTWAIT | MSG_NOSIGNAL) < 0 && errno != EAGAIN)
			gone = true;
		serve(&s, 0);
		gone = gone || closed_calls == 1;
	}
	assert_true(gone);
	assert_int_equal(closed_calls, 1);
	close(c);
	jsonl_server_close(&s);
}

static void test_refused_and_too_long(void **state)
{
	(void)state;
	struct jsonl_server s;
	start(&s, 1 << 20);
	char buf[512];
	refuse_next = true;
	int r = client();
	read_some(&s, r, buf, sizeof(buf), 31);
	assert_string_equal(buf, "{\"ok\":false,\"error\":\"refused\"}\n");
	send(r, "a\n", 2, MSG_NOSIGNAL);      /* drained, never served */
	assert_true(peer_closed(&s, r, 100)); /* its write side shut: it reads the end */
	assert_int_equal(requests, 0);
	close(r);
	/* A line over 32 bytes: one error line, then the end; nothing in it runs. */
	int t = client();
	char big[64];
	memset(big, 'z', sizeof(big));
	send(t, big, sizeof(big), 0);
	read_some(&s, t, buf, sizeof(buf), 10);
	assert_non_null(strstr(buf, "too long: longer than 32 bytes"));
	assert_true(peer_closed(&s, t, 100));
	assert_int_equal(requests, 0);
	close(t);
	for (int i = 0; i < 10; i++)
		serve(&s, 2);
	/* A refused peer that keeps its end open is closed after JSONL_DRAIN_MS. */
	int held = client();
	send(held, big, sizeof(big), 0);
	for (int i = 0; i < 10; i++)
		serve(&s, 2);
	int before = closed_calls;
	for (int i = 0; i < 400 && closed_calls == before; i++)
		serve(&s, 10);
	assert_int_equal(closed_calls, before + 1);
	close(held);
	/* Beyond max_conns: told and closed. */
	int a = client(), b = client(), extra = client();
	read_some(&s, extra, buf, sizeof(buf), 20);
	assert_non_null(strstr(buf, "too many connections to the test socket"));
	close(a);
	close(b);
	close(extra);
	jsonl_server_close(&s);
}

static void test_one_descriptor_a_line(void **state)
{
	(void)state;
	struct jsonl_server s;
	start(&s, 1 << 20);
	char buf[512];
	int c = client();
	int p[2];
	assert_int_equal(pipe(p), 0);
	int two[2] = {p[0], p[1]};
	struct iovec v = {(void *)"fd\n", 3};
	assert_int_equal(fdpass_sendv(c, &v, 1, two, 2, 0), 3);
	read_some(&s, c, buf, sizeof(buf), 3);
	assert_string_equal(buf, "fd\n");
	assert_int_equal(fds_seen, 1); /* the second was closed on arrival */
	close(p[0]);
	close(p[1]);
	close(c);
	jsonl_server_close(&s);
	assert_int_equal(closed_calls, 1);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_parse_rules),           cmocka_unit_test(test_parked_requests_keep_their_order),
		cmocka_unit_test(test_slow_reader_dropped),   cmocka_unit_test(test_refused_and_too_long),
		cmocka_unit_test(test_one_descriptor_a_line),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
