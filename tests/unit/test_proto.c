/* Unit tests for the shojid API's messages: request parsing (well-formed requests of every
 * command, and hostile ones: wrong types, unknown fields, huge or truncated input, NUL bytes,
 * deep nesting, bad names, each an error, never a crash), error replies, and the line reader's
 * hand-over of a descriptor passed with a reply that arrives in pieces. */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/socket.h>
#include <unistd.h>

#include "common/fdpass.h"
#include "common/rpc.h"
#include "toolstack/proto.h"
#include "unit.h"

static int parse(const char *s, struct proto_request *r, enum proto_code *code, struct err *e)
{
	return proto_parse_request(s, strlen(s), r, code, e);
}

static void test_good_requests(void **state)
{
	(void)state;
	struct proto_request r;
	enum proto_code code;
	struct err e;
	assert_int_equal(parse("{\"cmd\":\"list\"}", &r, &code, &e), 0);
	assert_int_equal(r.cmd, PROTO_LIST);
	proto_request_free(&r);
	assert_int_equal(parse("{\"cmd\":\"stop\",\"name\":\"work\",\"timeout\":5}", &r, &code, &e), 0);
	assert_int_equal(r.cmd, PROTO_STOP);
	assert_string_equal(r.name, "work");
	assert_int_equal(r.timeout_s, 5);
	proto_request_free(&r);
	assert_int_equal(parse("{\"cmd\":\"stop\",\"name\":\"w\"}", &r, &code, &e), 0);
	assert_int_equal(r.timeout_s, 30);
	proto_request_free(&r);
	assert_int_equal(parse("{\"name\":\"a\",\"cmd\":\"set\",\"assign\":[\"memory=1G\",\"cpus=2\"]}", &r, &code, &e),
			 0);
	assert_int_equal(r.nassign, 2);
	assert_string_equal(r.assign[1], "cpus=2");
	proto_request_free(&r);
	assert_int_equal(parse("{\"cmd\":\"create\",\"name\":\"a\",\"definition\":\"[vm]\\nname=a\\n\"}", &r, &code,
			       &e),
			 0);
	assert_string_equal(r.definition, "[vm]\nname=a\n");
	proto_request_free(&r);
	assert_int_equal(parse("{\"cmd\":\"events\",\"follow\":true}", &r, &code, &e), 0);
	assert_true(r.follow);
	assert_string_equal(r.name, "");
	proto_request_free(&r);
	assert_int_equal(parse("{\"cmd\":\"usb-list\",\"name\":\"work\"}", &r, &code, &e), 0);
	assert_int_equal(r.cmd, PROTO_USB_LIST);
	assert_string_equal(r.name, "work");
	proto_request_free(&r);
	assert_int_equal(parse("{\"cmd\":\"usb-list\"}", &r, &code, &e), 0);
	proto_request_free(&r);
	assert_int_equal(parse("{\"cmd\":\"usb-attach\",\"name\":\"work\",\"device\":\"3-1.4\"}", &r, &code, &e), 0);
	assert_int_equal(r.cmd, PROTO_USB_ATTACH);
	assert_string_equal(r.device, "3-1.4");
	proto_request_free(&r);
	assert_int_equal(parse("{\"cmd\":\"usb-detach\",\"device\":\"1-2\"}", &r, &code, &e), 0);
	assert_string_equal(r.device, "1-2");
	proto_request_free(&r);
	assert_int_equal(parse("{\"cmd\":\"seat-focus\",\"name\":\"work\"}", &r, &code, &e), 0);
	assert_int_equal(r.cmd, PROTO_SEAT_FOCUS);
	assert_string_equal(r.name, "work");
	proto_request_free(&r);
	assert_int_equal(parse("{\"cmd\":\"seat-focus\"}", &r, &code, &e), 0); /* no VM shown */
	assert_string_equal(r.name, "");
	proto_request_free(&r);
	assert_int_equal(parse("  {\"cmd\":\"logs\",\"name\":\"a\",\"bytes\":100}  ", &r, &code, &e), 0);
	assert_int_equal(r.bytes, 100);
	proto_request_free(&r);
	assert_int_equal(parse("{\"cmd\":\"template-begin\",\"name\":\"deb\",\"replace\":true}", &r, &code, &e), 0);
	assert_int_equal(r.cmd, PROTO_TEMPLATE_BEGIN);
	assert_true(r.replace);
	proto_request_free(&r);
	assert_int_equal(parse("{\"cmd\":\"template-commit\",\"name\":\"deb\",\"version\":3,\"source\":\"/x.img\"}", &r,
			       &code, &e),
			 0);
	assert_int_equal(r.version, 3);
	assert_string_equal(r.source, "/x.img");
	proto_request_free(&r);
	assert_int_equal(parse("{\"cmd\":\"snapshot-revert\",\"name\":\"w\",\"snapshot\":\"before-update\"}", &r, &code,
			       &e),
			 0);
	assert_string_equal(r.snapshot, "before-update");
	proto_request_free(&r);
	assert_int_equal(parse("{\"cmd\":\"snapshot-create\",\"name\":\"w\"}", &r, &code, &e), 0);
	assert_string_equal(r.snapshot, "");
	proto_request_free(&r);
	assert_int_equal(parse("{\"cmd\":\"display\",\"name\":\"work\"}", &r, &code, &e), 0);
	assert_int_equal(r.cmd, PROTO_DISPLAY);
	assert_string_equal(r.name, "work");
	proto_request_free(&r);
	for (int c = PROTO_PING; c <= PROTO_DISPLAY; c++)
		assert_string_not_equal(proto_cmd_name((enum proto_cmd)c), "?");
}

static void expect(const char *s, size_t len, const char *words)
{
	struct proto_request r;
	enum proto_code code;
	struct err e = {""};
	if (proto_parse_request(s, len, &r, &code, &e) == 0)
		fail_msg("accepted: %.200s", s);
	assert_int_equal(code, PROTO_USAGE);
	assert_contains(e.msg, words);
	assert_null(strchr(e.msg, '\n'));
}

#define EXPECT(s, w) expect(s, strlen(s), w)

static void test_hostile_requests(void **state)
{
	EXPECT("{\"cmd\":\"snapshot-revert\",\"name\":\"w\"}", "needs the field 'snapshot'");
	EXPECT("{\"cmd\":\"snapshot-delete\",\"name\":\"w\",\"snapshot\":\"../x\"}", "not a valid snapshot name");
	EXPECT("{\"cmd\":\"template-commit\",\"name\":\"t\",\"version\":0}", "from 1 to");
	EXPECT("{\"cmd\":\"template-commit\",\"name\":\"t\",\"version\":\"1\"}", "whole number");
	EXPECT("{\"cmd\":\"template-begin\",\"name\":\"t\",\"replace\":1}", "true or false");
	EXPECT("{\"cmd\":\"template-begin\",\"name\":\"t\",\"version\":1}", "takes no field 'version'");
	EXPECT("{\"cmd\":\"run\"}", "needs the field 'definition'");
	(void)state;
	EXPECT("", "not valid JSON");
	EXPECT("{", "ends too early");
	EXPECT("nonsense", "not valid JSON");
	EXPECT("[1,2]", "is a JSON object");
	EXPECT("\"list\"", "is a JSON object");
	EXPECT("42", "is a JSON object");
	EXPECT("{}", "needs \"cmd\"");
	EXPECT("{\"cmd\":5}", "needs \"cmd\"");
	EXPECT("{\"cmd\":\"reboot-host\"}", "unknown command");
	EXPECT("{\"cmd\":\"list\"}{\"cmd\":\"list\"}", "");
	EXPECT("{\"cmd\":\"list\"} x", "");
	EXPECT("{\"cmd\":\"list\",\"name\":\"a\"}", "'list' takes no field 'name'");
	EXPECT("{\"cmd\":\"start\"}", "needs the field 'name'");
	EXPECT("{\"cmd\":\"start\",\"name\":7}", "'name' must be a string");
	EXPECT("{\"cmd\":\"start\",\"name\":\"../../etc/passwd\"}", "not a valid VM name");
	EXPECT("{\"cmd\":\"start\",\"name\":\"\"}", "not a valid VM name");
	EXPECT("{\"cmd\":\"start\",\"name\":\"a\\u0000b\"}", "not a valid VM name");
	EXPECT("{\"cmd\":\"start\",\"name\":\"a\",\"extra\":1}", "takes no field 'extra'");
	EXPECT("{\"cmd\":\"stop\",\"name\":\"a\",\"timeout\":\"5\"}", "'timeout' must be a whole number");
	EXPECT("{\"cmd\":\"stop\",\"name\":\"a\",\"timeout\":-1}", "from 0 to 3600");
	EXPECT("{\"cmd\":\"stop\",\"name\":\"a\",\"timeout\":1e99}", "whole number");
	EXPECT("{\"cmd\":\"stop\",\"name\":\"a\",\"timeout\":99999999999999999999}", "");
	EXPECT("{\"cmd\":\"logs\",\"name\":\"a\",\"bytes\":10000000}", "from 0 to");
	EXPECT("{\"cmd\":\"events\",\"follow\":1}", "true or false");
	EXPECT("{\"cmd\":\"usb-list\",\"follow\":true}", "takes no field 'follow'");
	EXPECT("{\"cmd\":\"usb-attach\",\"name\":\"a\"}", "device");
	EXPECT("{\"cmd\":\"usb-detach\",\"device\":\"../../x\"}", "a USB device's port");
	EXPECT("{\"cmd\":\"usb-detach\",\"device\":\"1-2\\u0000\"}", "a USB device's port");
	EXPECT("{\"cmd\":\"usb-detach\",\"device\":12}", "a USB device's port");
	EXPECT("{\"cmd\":\"seat-focus\",\"name\":\"../x\"}", "not a valid VM name");
	EXPECT("{\"cmd\":\"set\",\"name\":\"a\",\"assign\":\"memory=1G\"}", "must be an array");
	EXPECT("{\"cmd\":\"set\",\"name\":\"a\",\"assign\":[]}", "1 to 32 strings");
	EXPECT("{\"cmd\":\"set\",\"name\":\"a\",\"assign\":[1]}", "must hold strings");
	EXPECT("{\"cmd\":\"set\",\"name\":\"a\",\"assign\":[\"a=\\u0000\"]}", "must hold strings");
	EXPECT("{\"cmd\":\"create\",\"name\":\"a\",\"definition\":null}", "'definition' must be a string");
	EXPECT("{\"cmd\":\"create\",\"name\":\"a\",\"definition\":\"x\\u0000y\"}", "NUL byte");
	EXPECT("{'cmd':'list'}", "not valid JSON");
	EXPECT("{\"cmd\":\"list\",}", "not valid JSON");

	/* 33 assignments, a NUL in the line, a 200-deep nest, an over-long line, a huge definition. */
	char buf[8192];
	strcpy(buf, "{\"cmd\":\"set\",\"name\":\"a\",\"assign\":[");
	for (int i = 0; i < 33; i++)
		strcat(buf, i ? ",\"a=1\"" : "\"a=1\"");
	strcat(buf, "]}");
	EXPECT(buf, "1 to 32 strings");
	expect("{\"cmd\":\"list\"}\0", 15, "NUL byte");
	memset(buf, '[', 200);
	buf[200] = '\0';
	EXPECT(buf, "not valid JSON");
	size_t big = PROTO_MAX_LINE + 10;
	char *huge = malloc(big + 1);
	if (!huge)
		return fail();
	memset(huge, ' ', big);
	huge[big] = '\0';
	expect(huge, big, "longer than");
	snprintf(huge, big, "{\"cmd\":\"create\",\"name\":\"a\",\"definition\":\"");
	size_t n = strlen(huge);
	memset(huge + n, 'x', PROTO_MAX_DEFINITION + 1);
	strcpy(huge + n + PROTO_MAX_DEFINITION + 1, "\"}");
	EXPECT(huge, "over 65536 bytes");
	free(huge);

	/* Random bytes: always an error, never a crash. */
	unsigned x = 99;
	for (int round = 0; round < 2000; round++) {
		char junk[64];
		for (size_t i = 0; i < sizeof(junk); i++) {
			x = x * 1103515245 + 12345;
			junk[i] = "{}[]\":,0aA\\u \x01\xff"[(x >> 16) % 15];
		}
		struct proto_request r;
		enum proto_code code;
		struct err e;
		if (proto_parse_request(junk, sizeof(junk), &r, &code, &e) == 0)
			proto_request_free(&r);
	}
}

static void test_error_reply(void **state)
{
	(void)state;
	char *line = proto_error_reply(PROTO_NOT_FOUND, "there is no VM \"x\"\n");
	assert_string_equal(line, "{\"ok\":false,\"code\":\"not-found\",\"error\":\"there is no VM \\\"x\\\"\\n\"}\n");
	free(line);
	assert_int_equal(proto_code_parse("state"), PROTO_STATE);
	assert_int_equal(proto_code_parse("permission"), PROTO_PERMISSION);
	assert_int_equal(proto_code_parse("bogus"), PROTO_ERROR);
	assert_int_equal(proto_code_parse(NULL), PROTO_ERROR);
	assert_string_equal(proto_code_name((enum proto_code)99), "error");
}

static void send_part(int sock, const char *text, int fd)
{
	ssize_t n = fd >= 0 ? fdpass_send(sock, text, strlen(text), fd, 0) : send(sock, text, strlen(text), 0);
	assert_int_equal(n, (ssize_t)strlen(text));
}

static bool is_open(int fd)
{
	return fcntl(fd, F_GETFD) >= 0;
}

static void test_reader_passed_fd(void **state)
{
	(void)state;
	int sv[2], pipefd[2];
	assert_int_equal(socketpair(AF_UNIX, SOCK_STREAM, 0, sv), 0);
	assert_int_equal(pipe(pipefd), 0);
	struct rpc_reader rd;
	rpc_reader_init(&rd, sv[0], 1024);
	char *line = NULL;
	int got = 7;
	struct err e;

	/* The descriptor comes with the first half of the answer; the rest comes later. */
	send_part(sv[1], "{\"ok\":", pipefd[0]);
	errno = 0;
	assert_int_equal(rpc_read_line(&rd, 0, &line, &got, &e), -1);
	assert_int_equal(errno, ETIMEDOUT);
	assert_int_equal(got, -1);
	send_part(sv[1], "true}\n{\"next\":1}\n", -1);
	assert_int_equal(rpc_read_line(&rd, 0, &line, &got, &e), 1);
	assert_string_equal(line, "{\"ok\":true}");
	free(line);
	assert_true(got >= 0 && got != pipefd[0]);
	assert_int_equal(write(pipefd[1], "x", 1), 1);
	char c = 0;
	assert_int_equal(read(got, &c, 1), 1); /* the very pipe */
	assert_int_equal(c, 'x');
	close(got);
	/* The next line carried none. */
	assert_int_equal(rpc_read_line(&rd, 0, &line, &got, &e), 1);
	assert_string_equal(line, "{\"next\":1}");
	assert_int_equal(got, -1);
	free(line);

	/* One not yet handed out when the reader is freed is closed with it. */
	send_part(sv[1], "{\"par", pipefd[0]);
	assert_int_equal(rpc_read_line(&rd, 0, &line, &got, &e), -1);
	int held = rd.has_passed_fd ? rd.passed_fd : -1;
	assert_true(held >= 0 && is_open(held));
	rpc_reader_free(&rd);
	assert_false(is_open(held));

	/* A caller that wants none: the descriptor is closed, not leaked. */
	rpc_reader_init(&rd, sv[0], 1024);
	send_part(sv[1], "tial\"}\n", -1); /* the end of the line above */
	assert_int_equal(rpc_read_line(&rd, 0, &line, NULL, &e), 1);
	free(line);
	send_part(sv[1], "{}\n", pipefd[0]);
	assert_int_equal(rpc_read_line(&rd, 0, &line, NULL, &e), 1);
	free(line);
	assert_false(rd.has_passed_fd);
	rpc_reader_free(&rd);
	close(sv[0]);
	close(sv[1]);
	close(pipefd[0]);
	close(pipefd[1]);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_good_requests),
		cmocka_unit_test(test_hostile_requests),
		cmocka_unit_test(test_error_reply),
		cmocka_unit_test(test_reader_passed_fd),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
