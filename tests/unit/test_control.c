/* Unit tests for the control protocol (control.c): every command and every error path with
 * hostile input, clipboard-set's data and clipboard-get's reply; and for its server
 * (control_server.c) over a real socket: framing, an over-long line, a client that hangs up
 * mid-line, too many clients, a clipboard request parked until its outcome (one at a time, its
 * client gone meanwhile, a reply larger than the socket takes at once). */
#include "unit.h"

#include <errno.h>
#include <fcntl.h>
#include <json-c/json.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>

#include "common/base64.h"
#include "vmm/control.h"
#include "vmm/control_server.h"

static char reply[CONTROL_REPLY_MAX];

static struct control_request last_req;

static int parse_n(const char *s, size_t n, enum control_cmd *cmd)
{
	control_request_free(&last_req);
	int r = control_parse(s, n, &last_req, reply);
	if (r == 0)
		*cmd = last_req.cmd;
	return r;
}

static int parse(const char *s, enum control_cmd *cmd)
{
	memset(reply, 0, sizeof(reply));
	return parse_n(s, strlen(s), cmd);
}

/* The reply is one line of JSON: an object with ok=false and a one-line error. */
static void assert_error_reply(const char *contains)
{
	size_t n = strlen(reply);
	assert_true(n > 0 && reply[n - 1] == '\n');
	assert_null(memchr(reply, '\n', n - 1));
	json_object *o = json_tokener_parse(reply);
	assert_non_null(o);
	json_object *ok, *err;
	assert_true(json_object_object_get_ex(o, "ok", &ok));
	assert_false(json_object_get_boolean(ok));
	assert_true(json_object_object_get_ex(o, "error", &err));
	const char *msg = json_object_get_string(err);
	if (contains && !strstr(msg, contains))
		fail_msg("error '%s' does not say '%s'", msg, contains);
	for (const char *p = msg; *p; p++)
		assert_true(*p >= 0x20 && *p < 0x7f);
	json_object_put(o);
}

static void test_commands(void **state)
{
	(void)state;
	static const struct {
		const char *req;
		enum control_cmd cmd;
	} ok[] = {
		{"{\"cmd\":\"status\"}", CONTROL_STATUS},
		{"{\"cmd\":\"pause\"}", CONTROL_PAUSE},
		{"{\"cmd\":\"resume\"}", CONTROL_RESUME},
		{"{\"cmd\":\"shutdown\"}", CONTROL_SHUTDOWN},
		{"{\"cmd\":\"stop\"}", CONTROL_STOP},
		{"  { \"cmd\" : \"status\" }  ", CONTROL_STATUS},
		{"{\"cmd\":\"stop\"}\r", CONTROL_STOP},
		{"{\"cmd\":\"disk-snapshot\",\"disk\":\"0\",\"backing\":\"a.qcow2\"}", CONTROL_DISK_SNAPSHOT},
		{"{\"cmd\":\"net-link\",\"nic\":\"0\"}", CONTROL_NET_LINK},
	};
	for (size_t i = 0; i < sizeof(ok) / sizeof(ok[0]); i++) {
		enum control_cmd cmd = CONTROL_STATUS;
		assert_int_equal(parse(ok[i].req, &cmd), 0);
		assert_int_equal(cmd, ok[i].cmd);
	}
	enum control_cmd cmd;
	assert_int_equal(parse("{\"cmd\":\"disk-snapshot\",\"disk\":\"root\",\"backing\":\"../t/x y.qcow2\"}", &cmd),
			 0);
	assert_string_equal(last_req.disk, "root");
	assert_string_equal(last_req.backing, "../t/x y.qcow2");
	assert_int_equal(parse("{\"cmd\":\"net-link\",\"nic\":\"3\"}", &cmd), 0);
	assert_int_equal(last_req.nic, 3);
}

static void test_replies(void **state)
{
	(void)state;
	struct control_status st = {.paused = false, .pid = 4321, .cpus = 2, .memory_mib = 512, .uptime_s = 12.3456};
	control_reply(CONTROL_STATUS, &st, reply);
	assert_string_equal(reply,
			    "{\"ok\":true,\"state\":\"running\",\"pid\":4321,\"cpus\":2,"
			    "\"memory_mib\":512,\"uptime_s\":12.346}\n");
	st.paused = true;
	control_reply(CONTROL_PAUSE, &st, reply);
	assert_string_equal(reply, "{\"ok\":true,\"state\":\"paused\"}\n");
	st.paused = false;
	control_reply(CONTROL_RESUME, &st, reply);
	assert_string_equal(reply, "{\"ok\":true,\"state\":\"running\"}\n");
	control_reply(CONTROL_SHUTDOWN, &st, reply);
	assert_string_equal(reply, "{\"ok\":true}\n");
	control_reply(CONTROL_STOP, &st, reply);
	assert_string_equal(reply, "{\"ok\":true}\n");
	st.paused_ms = 1.23456;
	control_reply(CONTROL_DISK_SNAPSHOT, &st, reply);
	assert_string_equal(reply, "{\"ok\":true,\"paused_ms\":1.235}\n");
	st.uptime_s = -1; /* never negative */
	control_reply(CONTROL_STATUS, &st, reply);
	assert_non_null(strstr(reply, "\"uptime_s\":0.000"));
}

static void test_errors(void **state)
{
	(void)state;
	static const struct {
		const char *req, *says;
	} bad[] = {
		{"", "not valid JSON"},
		{"garbage", "not valid JSON"},
		{"{\"cmd\":", "not valid JSON"},
		{"{\"cmd\":\"status\"", "not valid JSON"},
		{"{\"cmd\":\"status\"} x", "more after"},
		{"{\"cmd\":\"status\"}{\"cmd\":\"stop\"}", "more after"},
		{"[\"status\"]", "JSON object"},
		{"\"status\"", "JSON object"},
		{"null", "JSON object"},
		{"{}", "needs \"cmd\""},
		{"{\"command\":\"status\"}", "needs \"cmd\""},
		{"{\"cmd\":1}", "needs \"cmd\""},
		{"{\"cmd\":null}", "needs \"cmd\""},
		{"{\"cmd\":[\"status\"]}", "needs \"cmd\""},
		{"{\"cmd\":\"reboot\"}", "unknown command 'reboot'"},
		{"{\"cmd\":\"STATUS\"}", "unknown command"},
		{"{\"cmd\":\"\"}", "unknown command"},
		{"{\"cmd\":\"status \"}", "unknown command"},
		{"{\"cmd\":\"st\\u0000atus\"}", "unknown command"},
		{"{\"cmd\":\"\\\"\\n\\u00e9\\ud83d\\ude00\"}", "unknown command"},
		{"{\"cmd\":\"\xff\xfe\"}", NULL},
		{"{\"cmd\":\"status\",\"extra\":[1,{\"x\":null}]}", "takes no field 'extra'"},
		{"{\"cmd\":\"stop\",\"disk\":\"0\"}", "takes no field 'disk'"},
		{"{\"cmd\":\"disk-snapshot\",\"backing\":\"a\"}", "'disk'"},
		{"{\"cmd\":\"disk-snapshot\",\"disk\":\"0\"}", "'backing'"},
		{"{\"cmd\":\"disk-snapshot\",\"disk\":0,\"backing\":\"a\"}", "'disk'"},
		{"{\"cmd\":\"disk-snapshot\",\"disk\":\"0\",\"backing\":\"\"}", "empty"},
		{"{\"cmd\":\"disk-snapshot\",\"disk\":\"0\",\"backing\":\"a\\u0000b\"}", "NUL"},
		{"{\"cmd\":\"disk-snapshot\",\"disk\":\"0123456789012345678901234567890123\",\"backing\":\"a\"}",
		 "over 31 bytes"},
		{"{\"cmd\":\"net-link\"}", "'nic'"},
		{"{\"cmd\":\"net-link\",\"nic\":0}", "'nic'"},
		{"{\"cmd\":\"net-link\",\"nic\":\"4\"}", "from 0 to 3"},
		{"{\"cmd\":\"net-link\",\"nic\":\"01\"}", "from 0 to 3"},
		{"{\"cmd\":\"net-link\",\"nic\":\"-1\"}", "from 0 to 3"},
		{"{\"cmd\":\"net-link\",\"nic\":\" 1\"}", "from 0 to 3"},
		{"{\"cmd\":\"net-link\",\"nic\":\"1\",\"disk\":\"0\"}", "takes no field 'disk'"},
#ifndef SHOJI_TEST_HOOKS
		{"{\"cmd\":\"test-forbidden-syscall\"}", "unknown command"},
#endif
	};
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		enum control_cmd cmd;
		if (parse(bad[i].req, &cmd) != -1)
			fail_msg("'%s' was accepted", bad[i].req);
		assert_error_reply(bad[i].says);
	}
}

/* A clipboard-set of data (base64 of len bytes): the reply, or the text decoded. */
static int parse_clipboard_set(const uint8_t *text, size_t len)
{
	char *line = malloc(base64_encoded_len(len) + 64);
	int n = sprintf(line, "{\"cmd\":\"clipboard-set\",\"data\":\"");
	base64_encode(text, len, line + n);
	strcat(line, "\"}");
	enum control_cmd cmd;
	memset(reply, 0, sizeof(reply));
	int r = parse_n(line, strlen(line), &cmd);
	free(line);
	return r;
}

static void test_clipboard(void **state)
{
	(void)state;
	enum control_cmd cmd;
	assert_int_equal(parse("{\"cmd\":\"clipboard-get\"}", &cmd), 0);
	assert_int_equal(cmd, CONTROL_CLIPBOARD_GET);
	assert_null(last_req.data);
	assert_int_equal(parse("{\"cmd\":\"clipboard-set\",\"data\":\"aMOpbGxvCndvcmxk\"}", &cmd), 0);
	assert_int_equal(cmd, CONTROL_CLIPBOARD_SET);
	assert_int_equal(last_req.data_len, 12);
	assert_memory_equal(last_req.data, "h\xc3\xa9llo\nworld", 12);
	assert_int_equal(parse("{\"cmd\":\"clipboard-set\",\"data\":\"\"}", &cmd), 0); /* empty */
	assert_int_equal(last_req.data_len, 0);
	/* the largest clipboard, and one byte more */
	uint8_t *big = malloc(SHOJI_CLIPBOARD_MAX + 3);
	memset(big, 'z', SHOJI_CLIPBOARD_MAX + 3);
	assert_int_equal(parse_clipboard_set(big, SHOJI_CLIPBOARD_MAX), 0);
	assert_int_equal(last_req.data_len, SHOJI_CLIPBOARD_MAX);
	assert_int_equal(parse_clipboard_set(big, SHOJI_CLIPBOARD_MAX + 1), -1);
	assert_error_reply("longer than 262144 bytes");
	assert_int_equal(parse_clipboard_set(big, SHOJI_CLIPBOARD_MAX + 3), -1);
	assert_error_reply("over 349528 bytes");
	free(big);
	static const struct {
		const char *req, *says;
	} bad[] = {
		{"{\"cmd\":\"clipboard-set\"}", "needs the field 'data'"},
		{"{\"cmd\":\"clipboard-set\",\"data\":1}", "must be a string"},
		{"{\"cmd\":\"clipboard-set\",\"data\":null}", "must be a string"},
		{"{\"cmd\":\"clipboard-set\",\"data\":\"abc\"}", "not base64"},
		{"{\"cmd\":\"clipboard-set\",\"data\":\"aGk=aGk=\"}", "not base64"},
		{"{\"cmd\":\"clipboard-set\",\"data\":\"aGl=\"}", "not base64"}, /* padding bits set */
		{"{\"cmd\":\"clipboard-set\",\"data\":\"aG k\"}", "not base64"},
		{"{\"cmd\":\"clipboard-set\",\"data\":\"aGk\\n\"}", "not base64"},
		{"{\"cmd\":\"clipboard-set\",\"data\":\"YQBi\"}", "not UTF-8 text"}, /* a\0b */
		{"{\"cmd\":\"clipboard-set\",\"data\":\"/w==\"}", "not UTF-8 text"}, /* \xff */
		{"{\"cmd\":\"clipboard-set\",\"data\":\"7aCA\"}", "not UTF-8 text"}, /* a surrogate */
		{"{\"cmd\":\"clipboard-set\",\"data\":\"aGk=\",\"kind\":\"text\"}", "takes no field 'kind'"},
		{"{\"cmd\":\"clipboard-get\",\"data\":\"aGk=\"}", "takes no field 'data'"},
		{"{\"cmd\":\"status\",\"data\":\"aGk=\"}", "takes no field 'data'"},
	};
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		if (parse(bad[i].req, &cmd) != -1)
			fail_msg("'%s' was accepted", bad[i].req);
		assert_error_reply(bad[i].says);
		assert_null(last_req.data);
	}
	/* the replies: clipboard-get's on the heap, clipboard-set's as any other */
	size_t n;
	char *line = control_reply_clipboard((const uint8_t *)"h\xc3\xa9llo\nworld", 12, &n);
	assert_string_equal(line, "{\"ok\":true,\"kind\":\"text\",\"bytes\":12,\"data\":\"aMOpbGxvCndvcmxk\"}\n");
	assert_int_equal(n, strlen(line));
	free(line);
	line = control_reply_clipboard(NULL, 0, &n);
	assert_string_equal(line, "{\"ok\":true,\"kind\":\"text\",\"bytes\":0,\"data\":\"\"}\n");
	free(line);
	struct control_status st = {0};
	control_reply(CONTROL_CLIPBOARD_SET, &st, reply);
	assert_string_equal(reply, "{\"ok\":true}\n");
	control_request_free(&last_req);
}

static void test_hostile_sizes(void **state)
{
	(void)state;
	enum control_cmd cmd;
	/* A NUL byte inside the line. */
	static const char nul[] = "{\"cmd\":\"status\"}\0{\"cmd\":\"stop\"}";
	assert_int_equal(parse_n(nul, sizeof(nul) - 1, &cmd), -1);
	assert_error_reply("NUL");
	/* Over 64 KiB, even if it is valid JSON. */
	size_t n = CONTROL_MAX_LINE + 1;
	char *big = malloc(n + 1);
	memset(big, ' ', n);
	memcpy(big, "{\"cmd\":\"status\"}", 16);
	big[n] = '\0';
	assert_int_equal(parse_n(big, n, &cmd), -1);
	assert_error_reply("longer");
	/* Exactly 64 KiB is allowed. */
	if (parse_n(big, n - 1, &cmd) != 0)
		fail_msg("64 KiB refused: %s", reply);
	assert_int_equal(cmd, CONTROL_STATUS);
	/* A long unknown command name is cut in the reply. */
	big[0] = '{';
	memcpy(big, "{\"cmd\":\"", 8);
	for (size_t i = 8; i < 8 + 60000; i++) /* (a loop: gcc's bounds warning misreads memset here) */
		big[i] = 'a';
	memcpy(big + 8 + 60000, "\"}", 3);
	assert_int_equal(parse_n(big, strlen(big), &cmd), -1);
	assert_error_reply("unknown command 'aaaa");
	assert_true(strlen(reply) < 300); /* the error is cut at 255 bytes */
	/* Deep nesting is refused by the parser, not a stack overflow. */
	memset(big, '[', n);
	assert_int_equal(parse_n(big, n - 1, &cmd), -1);
	assert_error_reply("not valid JSON");
	/* A long error message is cut, and the reply still fits. */
	memset(big, 'e', 5000);
	big[5000] = '\0';
	control_reply_error(big, reply);
	assert_error_reply("eee");
	free(big);
}

/* --- the server, over a real socket --- */

static int exec_calls;

static int passed_fds;

static int fake_exec(void *ctx, const struct control_request *req, int fd, struct control_status *st, char *why)
{
	(void)ctx;
	exec_calls++;
	if (fd >= 0) {
		passed_fds++;
		close(fd);
	}
	if (req->cmd == CONTROL_PAUSE) {
		snprintf(why, 128, "cannot pause");
		return -1;
	}
	if (req->cmd == CONTROL_CLIPBOARD_GET || req->cmd == CONTROL_CLIPBOARD_SET)
		return CONTROL_PARKED;
	st->cpus = 3;
	st->memory_mib = 64;
	return 0;
}

static char sock_path[108];

static void serve_once(struct control_server *s, int ms)
{
	struct pollfd fds[CONTROL_POLL_FDS];
	int timeout = -1;
	unsigned n = control_server_poll_fds(s, fds, &timeout);
	if (poll(fds, n, ms) > 0)
		control_server_serve(s, fds, n, fake_exec, NULL);
}

static int client(void)
{
	return unit_connect(sock_path);
}

/* Serves until fd has a whole line (or closes); returns what it read. */
static char *read_reply(struct control_server *s, int fd, char *buf, size_t size)
{
	size_t len = 0;
	buf[0] = '\0';
	for (int i = 0; i < 200 && !strchr(buf, '\n'); i++) {
		serve_once(s, 10);
		ssize_t r = recv(fd, buf + len, size - 1 - len, MSG_DONTWAIT);
		if (r == 0)
			break;
		if (r > 0)
			len += (size_t)r;
		buf[len] = '\0';
	}
	return buf;
}

static int server_setup(void **state)
{
	(void)state;
	char name[64];
	snprintf(name, sizeof(name), "shoji-test-control-%d.sock", (int)getpid());
	unit_tmp_path(sock_path, sizeof(sock_path), name);
	return 0;
}

static void test_server(void **state)
{
	(void)state;
	struct control_server s;
	struct err e;
	assert_int_equal(control_server_open(&s, sock_path, &e), 0);
	struct stat st;
	assert_int_equal(stat(sock_path, &st), 0);
	assert_int_equal(st.st_mode & 0777, 0600);
	char buf[4096];

	int c = client();
	/* Two requests in one write, and a request split over writes. */
	assert_int_equal(send(c, "{\"cmd\":\"status\"}\n{\"cmd\":\"pause\"}\n", 33, 0), 33);
	read_reply(&s, c, buf, sizeof(buf));
	for (int i = 0; i < 20 && !strstr(buf, "cannot pause"); i++)
		read_reply(&s, c, buf + strlen(buf), sizeof(buf) - strlen(buf));
	assert_non_null(strstr(buf, "\"cpus\":3"));
	assert_non_null(strstr(buf, "{\"ok\":false,\"error\":\"cannot pause\"}\n"));
	send(c, "{\"cmd\":", 7, 0);
	serve_once(&s, 10);
	send(c, "\"stop\"}\n", 8, 0);
	assert_string_equal(read_reply(&s, c, buf, sizeof(buf)), "{\"ok\":true}\n");
	/* A descriptor passed with a request reaches the command; one passed with a line that
	 * fails to parse is closed by the server. */
	int fds[2];
	assert_int_equal(pipe(fds), 0);
	for (int k = 0; k < 2; k++) {
		const char *line = k ? "nonsense\n" : "{\"cmd\":\"status\"}\n";
		struct iovec v = {(void *)line, strlen(line)};
		union {
			struct cmsghdr h;
			char b[CMSG_SPACE(sizeof(int))];
		} cm;
		memset(&cm, 0, sizeof(cm));
		struct msghdr m = {.msg_iov = &v, .msg_iovlen = 1, .msg_control = &cm, .msg_controllen = sizeof(cm)};
		struct cmsghdr *h = CMSG_FIRSTHDR(&m);
		h->cmsg_level = SOL_SOCKET;
		h->cmsg_type = SCM_RIGHTS;
		h->cmsg_len = CMSG_LEN(sizeof(int));
		memcpy(CMSG_DATA(h), &fds[0], sizeof(int));
		int before = passed_fds;
		assert_int_equal(sendmsg(c, &m, 0), (ssize_t)strlen(line));
		read_reply(&s, c, buf, sizeof(buf));
		assert_int_equal(passed_fds, before + (k ? 0 : 1));
	}
	close(fds[0]);
	close(fds[1]);
	/* A bad line answers with an error and keeps the connection. */
	send(c, "nonsense\n", 9, 0);
	assert_non_null(strstr(read_reply(&s, c, buf, sizeof(buf)), "\"ok\":false"));
	send(c, "{\"cmd\":\"status\"}\n", 17, 0);
	assert_non_null(strstr(read_reply(&s, c, buf, sizeof(buf)), "\"ok\":true"));

	/* A line over CONTROL_MAX_LINE: error, then closed; the command in it is never run. */
	int big = client();
	char *junk = malloc(CONTROL_MAX_LINE + 100);
	memset(junk, 'x', CONTROL_MAX_LINE + 100);
	memcpy(junk, "{\"cmd\":\"stop\"}", 14);
	int calls = exec_calls;
	size_t sent = 0;
	for (int i = 0; i < 5000 && sent < CONTROL_MAX_LINE + 100; i++) {
		ssize_t r = send(big, junk + sent, CONTROL_MAX_LINE + 100 - sent, MSG_DONTWAIT);
		if (r > 0)
			sent += (size_t)r;
		serve_once(&s, 1);
	}
	free(junk);
	assert_non_null(strstr(read_reply(&s, big, buf, sizeof(buf)), "longer than"));
	assert_int_equal(exec_calls, calls);
	ssize_t r = 0;
	for (int i = 0; i < 100; i++) {
		serve_once(&s, 1);
		r = recv(big, buf, sizeof(buf), MSG_DONTWAIT);
		if (r == 0 || (r < 0 && errno != EAGAIN))
			break;
	}
	assert_true(r == 0 || (r < 0 && errno == ECONNRESET));
	close(big);

	/* A client that hangs up mid-line: dropped, nothing run. */
	int half = client();
	send(half, "{\"cmd\":\"sto", 11, 0);
	serve_once(&s, 10);
	close(half);
	for (int i = 0; i < 5; i++)
		serve_once(&s, 5);
	assert_int_equal(exec_calls, calls);

	/* Too many clients: the ones beyond the limit are told and closed. */
	int many[CONTROL_MAX_CLIENTS + 2];
	for (unsigned i = 0; i < CONTROL_MAX_CLIENTS + 2; i++) {
		many[i] = client();
		serve_once(&s, 10);
	}
	int refused = 0;
	for (unsigned i = 0; i < CONTROL_MAX_CLIENTS + 2; i++) {
		ssize_t k = recv(many[i], buf, sizeof(buf) - 1, MSG_DONTWAIT);
		if (k > 0) {
			buf[k] = '\0';
			refused += strstr(buf, "too many") != NULL;
		}
		close(many[i]);
	}
	assert_int_equal(refused, 3); /* c holds one of the slots */
	for (int i = 0; i < 20; i++)
		serve_once(&s, 1);
	/* The first client is still served. */
	send(c, "{\"cmd\":\"status\"}\n", 17, 0);
	assert_non_null(strstr(read_reply(&s, c, buf, sizeof(buf)), "\"ok\":true"));
	close(c);

	control_server_close(&s);
	assert_int_equal(access(sock_path, F_OK), -1);
}

/* Nothing comes on fd while the server is served for a while. */
static void assert_no_reply(struct control_server *s, int fd)
{
	char b[64];
	for (int i = 0; i < 5; i++)
		serve_once(s, 2);
	assert_int_equal(recv(fd, b, sizeof(b), MSG_DONTWAIT), -1);
	assert_int_equal(errno, EAGAIN);
}

/* A clipboard request parks its client until the owner has the outcome: the client's further
 * requests wait, the other clients are served, another clipboard request is refused; a client
 * gone meanwhile is forgotten; a reply larger than the socket takes at once is queued. */
static void test_server_parked(void **state)
{
	(void)state;
	struct control_server s;
	struct err e;
	assert_int_equal(control_server_open(&s, sock_path, &e), 0);
	char buf[4096];
	int a = client(), b = client();
	const char *two = "{\"cmd\":\"clipboard-get\"}\n{\"cmd\":\"stop\"}\n";
	assert_int_equal(send(a, two, strlen(two), 0), (ssize_t)strlen(two));
	int calls = exec_calls;
	assert_no_reply(&s, a);
	assert_int_equal(exec_calls, calls + 1); /* the stop waits behind the parked request */
	assert_true(control_server_parked(&s));
	send(b, "{\"cmd\":\"status\"}\n", 17, 0);
	assert_non_null(strstr(read_reply(&s, b, buf, sizeof(buf)), "\"ok\":true"));
	const char *set = "{\"cmd\":\"clipboard-set\",\"data\":\"aGk=\"}\n";
	send(b, set, strlen(set), 0);
	assert_non_null(strstr(read_reply(&s, b, buf, sizeof(buf)), "a clipboard request is already in progress"));
	size_t n;
	char *line = control_reply_clipboard((const uint8_t *)"hi", 2, &n);
	control_server_finish(&s, line, n, NULL, fake_exec, NULL);
	free(line);
	assert_false(control_server_parked(&s));
	read_reply(&s, a, buf, sizeof(buf));
	for (int i = 0; i < 20 && !strstr(buf, "}\n{"); i++)
		read_reply(&s, a, buf + strlen(buf), sizeof(buf) - strlen(buf));
	assert_string_equal(buf, "{\"ok\":true,\"kind\":\"text\",\"bytes\":2,\"data\":\"aGk=\"}\n{\"ok\":true}\n");
	assert_int_equal(exec_calls, calls + 3); /* the refused set never reached it */
	/* an error outcome; then a set, whose client goes before its outcome */
	send(b, set, strlen(set), 0);
	assert_no_reply(&s, b);
	control_server_finish(&s, NULL, 0, "the guest agent did not answer", fake_exec, NULL);
	assert_string_equal(read_reply(&s, b, buf, sizeof(buf)),
			    "{\"ok\":false,\"error\":\"the guest agent did not answer\"}\n");
	send(b, set, strlen(set), 0);
	assert_no_reply(&s, b);
	close(b);
	for (int i = 0; i < 5 && control_server_parked(&s); i++)
		serve_once(&s, 5);
	assert_false(control_server_parked(&s));
	control_server_finish(&s, NULL, 0, NULL, fake_exec, NULL); /* dropped */
	/* the largest reply, to a client that reads it only later */
	send(a, "{\"cmd\":\"clipboard-get\"}\n", 25, 0);
	assert_no_reply(&s, a);
	uint8_t *text = malloc(SHOJI_CLIPBOARD_MAX);
	memset(text, 'q', SHOJI_CLIPBOARD_MAX);
	line = control_reply_clipboard(text, SHOJI_CLIPBOARD_MAX, &n);
	control_server_finish(&s, line, n, NULL, fake_exec, NULL);
	char *got = malloc(n + 1);
	size_t have = 0;
	for (int i = 0; i < 2000 && have < n; i++) {
		serve_once(&s, 1);
		ssize_t r = recv(a, got + have, n - have, MSG_DONTWAIT);
		have += r > 0 ? (size_t)r : 0;
	}
	assert_int_equal(have, n);
	assert_memory_equal(got, line, n);
	free(got);
	free(line);
	free(text);
	close(a);
	control_server_close(&s);
}

static void test_server_without_socket(void **state)
{
	(void)state;
	struct control_server s;
	struct err e;
	assert_int_equal(control_server_open(&s, NULL, &e), 0);
	struct pollfd fds[CONTROL_POLL_FDS];
	int timeout = -1;
	assert_int_equal(control_server_poll_fds(&s, fds, &timeout), 0);
	control_server_serve(&s, fds, 0, fake_exec, NULL);
	control_server_close(&s);
}

static void test_server_bad_path(void **state)
{
	(void)state;
	struct control_server s;
	struct err e;
	int fd = open(sock_path, O_WRONLY | O_CREAT | O_TRUNC, 0600); /* a plain file is in the way */
	close(fd);
	assert_int_equal(control_server_open(&s, sock_path, &e), -1);
	assert_non_null(strstr(e.msg, "not a socket"));
	control_server_close(&s);
	assert_int_equal(access(sock_path, F_OK), 0); /* not removed: it is not ours */
	unlink(sock_path);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_commands),
		cmocka_unit_test(test_replies),
		cmocka_unit_test(test_errors),
		cmocka_unit_test(test_hostile_sizes),
		cmocka_unit_test(test_clipboard),
		cmocka_unit_test_setup(test_server, server_setup),
		cmocka_unit_test_setup(test_server_parked, server_setup),
		cmocka_unit_test_setup(test_server_without_socket, server_setup),
		cmocka_unit_test_setup(test_server_bad_path, server_setup),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
