/* agent_link: the monitor's side of the agent protocol driven through a socket pair with a
 * made-up clock: hello both ways, info asked for and kept, power-off acknowledged or refused,
 * the clock set, the clipboard read and written (and refused, late, malformed, paused, one at a
 * time), and every misdeed of an agent (no hello, silence, an answer out of turn, a host's
 * message, a bad frame) dropping the connection, counted and said, without blocking. */
#include "unit.h"

#include <fcntl.h>
#include <unistd.h>

#include "vmm/agent_link.h"

static struct agent_link link_; /* big: not on the stack */
static int peer = -1;

static int setup(void **state)
{
	(void)state;
	int sv[2];
	assert_int_equal(socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sv), 0);
	fcntl(sv[0], F_SETFL, O_NONBLOCK);
	agent_link_init(&link_, 0, "0123456789abcdef0123456789abcdef");
	agent_link_attach(&link_, sv[0], 1000);
	peer = sv[1];
	return 0;
}

static int teardown(void **state)
{
	(void)state;
	agent_link_close(&link_);
	close(peer);
	return 0;
}

/* Runs the link as the main loop would, at time now, with what poll would report. */
static void serve(int64_t now)
{
	struct pollfd p = {.fd = -1};
	int timeout = -1;
	if (agent_link_poll_fd(&link_, &p, &timeout, now) && p.fd >= 0)
		poll(&p, 1, 0);
	agent_link_serve(&link_, p.revents, now);
}

static void send_frame(uint8_t type, const void *payload, uint32_t len)
{
	uint8_t h[AGENT_HEADER_SIZE];
	assert_int_equal(agent_header(h, type, len, NULL), 0);
	assert_int_equal(write(peer, h, sizeof(h)), (ssize_t)sizeof(h));
	if (len)
		assert_int_equal(write(peer, payload, len), (ssize_t)len);
}

/* The next frame the link sent: its type (payload into buf, at most size bytes). */
static uint8_t recv_frame(void *buf, uint32_t size, uint32_t *len)
{
	uint8_t h[AGENT_HEADER_SIZE];
	assert_int_equal(read(peer, h, sizeof(h)), (ssize_t)sizeof(h));
	uint32_t n = (uint32_t)h[4] | (uint32_t)h[5] << 8 | (uint32_t)h[6] << 16 | (uint32_t)h[7] << 24;
	assert_true(n <= size);
	if (n)
		assert_int_equal(read(peer, buf, n), (ssize_t)n);
	*len = n;
	return h[3];
}

static void hello_caps(int64_t now, uint32_t caps)
{
	uint8_t b[64];
	uint32_t n;
	serve(now);
	assert_int_equal(recv_frame(b, sizeof(b), &n), AGENT_HELLO);
	send_frame(AGENT_HELLO, &caps, 4);
	serve(now);
	assert_int_equal(link_.state, AGENT_LINK_READY);
	assert_int_equal(recv_frame(b, sizeof(b), &n), AGENT_INFO_REQ); /* asked at once */
}

static void hello(int64_t now)
{
	hello_caps(now, AGENT_CAP_INFO | AGENT_CAP_POWER | AGENT_CAP_TIME);
}

static void info_kept_and_described(void **state)
{
	(void)state;
	hello(1000);
	const char *text = "os=Debian GNU/Linux 12\nhostname=work\n";
	send_frame(AGENT_INFO, text, (uint32_t)strlen(text));
	serve(1100);
	assert_int_equal(link_.ninfo, 2);
	assert_int_equal(link_.npending, 0);
	json_object *o = agent_link_describe(&link_, 3100);
	const char *s = json_object_to_json_string_ext(o, JSON_C_TO_STRING_PLAIN);
	assert_non_null(strstr(s, "\"state\":\"ready\""));
	assert_non_null(strstr(s, "\"hostname\":\"work\""));
	assert_non_null(strstr(s, "\"seen_s_ago\":2"));
	json_object_put(o);
	/* the next info request comes after AGENT_PING_MS */
	serve(1100 + AGENT_PING_MS);
	uint8_t b[16];
	uint32_t n;
	assert_int_equal(recv_frame(b, sizeof(b), &n), AGENT_INFO_REQ);
}

/* A ready agent that answered its first info request, then a power-off asked of it and
 * acknowledged (status) at time 1100. */
static void power_off_answered(uint8_t status)
{
	hello(1000);
	send_frame(AGENT_INFO, "os=x\n", 5);
	serve(1000);
	assert_int_equal(agent_link_power(&link_, AGENT_SHUTDOWN, 1000), 0);
	serve(1000);
	uint8_t b[16];
	uint32_t n;
	assert_int_equal(recv_frame(b, sizeof(b), &n), AGENT_SHUTDOWN);
	uint8_t ack[2] = {AGENT_SHUTDOWN, status};
	send_frame(AGENT_ACK, ack, 2);
	serve(1100);
}

static void power_off_acknowledged_or_refused(void **state)
{
	(void)state;
	power_off_answered(0);
	assert_int_equal(link_.power_sent, 0);
	assert_false(link_.power_failed);
	uint8_t b[16];
	uint32_t n;
	/* refused: the owner is told to use ACPI */
	assert_int_equal(agent_link_power(&link_, AGENT_REBOOT, 1300), 0);
	serve(1300);
	assert_int_equal(recv_frame(b, sizeof(b), &n), AGENT_REBOOT);
	uint8_t nack[2] = {AGENT_REBOOT, 1};
	send_frame(AGENT_ACK, nack, 2);
	serve(1400);
	assert_true(link_.power_failed);
	assert_int_equal(link_.state, AGENT_LINK_READY);
}

static void power_off_unanswered_falls_back(void **state)
{
	(void)state;
	hello(1000);
	send_frame(AGENT_INFO, "os=x\n", 5);
	serve(1000);
	assert_int_equal(agent_link_power(&link_, AGENT_SHUTDOWN, 1000), 0);
	serve(1000);
	serve(1000 + AGENT_REPLY_MS);
	assert_true(link_.power_failed);
	assert_int_equal(link_.state, AGENT_LINK_UNRESPONSIVE);
	assert_int_equal(link_.faults, 1);
	assert_int_equal(link_.fd, -1);
	/* no ready agent: the caller is told to press the button itself */
	assert_int_equal(agent_link_power(&link_, AGENT_SHUTDOWN, 9000), -1);
}

static void time_set_counted(void **state)
{
	(void)state;
	hello(1000);
	send_frame(AGENT_INFO, "os=x\n", 5);
	serve(1000);
	agent_link_sync_time(&link_, 2000);
	serve(2000);
	uint8_t b[16];
	uint32_t n;
	assert_int_equal(recv_frame(b, sizeof(b), &n), AGENT_TIME_SET);
	assert_int_equal(n, 8);
	uint8_t ack[2] = {AGENT_TIME_SET, 0};
	send_frame(AGENT_ACK, ack, 2);
	serve(2100);
	assert_int_equal(link_.time_syncs, 1);
}

/* A paused guest answers nothing: no deadline runs out during a pause, and at resume the
 * clock is owed to the agent even when it reconnects first. */
static void pause_stops_the_clock(void **state)
{
	(void)state;
	hello(1000); /* an info request is out */
	agent_link_paused(&link_, true, 1100);
	serve(1100 + 60000);
	assert_int_equal(link_.state, AGENT_LINK_READY);
	agent_link_paused(&link_, false, 61100);
	serve(61100 + AGENT_REPLY_MS - 200); /* the request's 5 s had 100 ms gone before the pause */
	assert_int_equal(link_.state, AGENT_LINK_READY);
	serve(61100 + AGENT_REPLY_MS);
	assert_int_equal(link_.state, AGENT_LINK_UNRESPONSIVE);
	agent_link_sync_time(&link_, 66200); /* no agent now: owed */
	assert_true(link_.time_owed);
}

/* A burst of seat sizes: one resize in flight at a time, the last size sent after it. */
static void resizes_coalesce(void **state)
{
	(void)state;
	uint32_t caps = AGENT_CAP_INFO | AGENT_CAP_RESIZE;
	uint8_t b[64];
	uint32_t n;
	serve(1000);
	assert_int_equal(recv_frame(b, sizeof(b), &n), AGENT_HELLO);
	assert_int_equal(n, 4 + AGENT_TOKEN_LEN); /* the token goes with the host's hello */
	assert_memory_equal(b + 4, "0123456789abcdef0123456789abcdef", AGENT_TOKEN_LEN);
	agent_link_resize(&link_, 800, 600, 1000); /* before the agent is there: kept */
	send_frame(AGENT_HELLO, &caps, 4);
	serve(1000);
	assert_int_equal(recv_frame(b, sizeof(b), &n), AGENT_RESIZE); /* sent at hello */
	assert_int_equal(recv_frame(b, sizeof(b), &n), AGENT_INFO_REQ);
	for (uint32_t w = 100; w < 112; w++)
		agent_link_resize(&link_, w, 50, 1100);
	serve(1100);
	assert_int_equal(recv(peer, b, 1, MSG_DONTWAIT), -1); /* nothing more while one is in flight */
	uint8_t ack[2] = {AGENT_RESIZE, 0};
	send_frame(AGENT_ACK, ack, 2);
	serve(1200);
	assert_int_equal(recv_frame(b, sizeof(b), &n), AGENT_RESIZE);
	assert_int_equal(b[0] | b[1] << 8, 111); /* the last of the burst */
	/* the info answered, then that resize refused: said in the status, the link kept */
	send_frame(AGENT_INFO, "os=x\n", 5);
	serve(1300);
	ack[1] = 1;
	send_frame(AGENT_ACK, ack, 2);
	serve(1400);
	assert_string_equal(link_.last_error, "the agent's resize to 111x50 failed (status 1)");
	assert_int_equal(link_.state, AGENT_LINK_READY);
	assert_int_equal(link_.faults, 0);
	/* the next one goes through: the error is no longer said */
	agent_link_resize(&link_, 640, 480, 1500);
	serve(1500);
	assert_int_equal(recv_frame(b, sizeof(b), &n), AGENT_RESIZE);
	ack[1] = 0;
	send_frame(AGENT_ACK, ack, 2);
	serve(1600);
	assert_string_equal(link_.last_error, "");
}

/* An agent that acknowledges a power-off and then does not carry it out. */
static void acknowledged_power_off_that_never_comes(void **state)
{
	(void)state;
	power_off_answered(0);
	assert_false(link_.power_failed);
	serve(1100 + AGENT_POWER_MS);
	assert_true(link_.power_failed);
}

static void no_hello_is_a_fault(void **state)
{
	(void)state;
	serve(1000);
	serve(1000 + AGENT_HELLO_MS);
	assert_int_equal(link_.state, AGENT_LINK_UNRESPONSIVE);
	assert_non_null(strstr(link_.last_error, "hello"));
}

/* Each misdeed after a good hello: the connection dropped, the fault counted and named. */
static void misdeed(uint8_t type, const void *payload, uint32_t len, const char *why)
{
	hello(1000);
	send_frame(type, payload, len);
	serve(1100);
	assert_int_equal(link_.state, AGENT_LINK_UNRESPONSIVE);
	assert_int_equal(link_.faults, 1);
	assert_int_equal(link_.fd, -1);
	assert_non_null(strstr(link_.last_error, why));
	char c;
	assert_int_equal(read(peer, &c, 1) >= 0, 1); /* the peer sees the end (0), not a hang */
}

static void answer_out_of_turn(void **state)
{
	(void)state;
	uint8_t ack[2] = {AGENT_SHUTDOWN, 0};
	misdeed(AGENT_ACK, ack, 2, "not the one awaited");
}

static void host_message_from_agent(void **state)
{
	(void)state;
	misdeed(AGENT_SHUTDOWN, NULL, 0, "only the host sends");
}

static void bad_info(void **state)
{
	(void)state;
	misdeed(AGENT_INFO, "os=\x1b[2J\n", 8, "not printable");
}

static void bad_frame(void **state)
{
	(void)state;
	hello(1000);
	uint8_t junk[8] = {'A', 'S', 1, 3, 0xff, 0xff, 0xff, 0x7f}; /* info of 2 GiB */
	assert_int_equal(write(peer, junk, sizeof(junk)), 8);
	serve(1100);
	assert_int_equal(link_.state, AGENT_LINK_UNRESPONSIVE);
	assert_non_null(strstr(link_.last_error, "longer than the limit"));
}

static void silence_is_a_fault(void **state)
{
	(void)state;
	hello(1000);
	serve(1000 + AGENT_REPLY_MS); /* the first info request is not answered */
	assert_int_equal(link_.state, AGENT_LINK_UNRESPONSIVE);
	assert_non_null(strstr(link_.last_error, "did not answer"));
}

static void closed_is_not_a_fault(void **state)
{
	(void)state;
	hello(1000);
	shutdown(peer, SHUT_WR);
	serve(1100);
	assert_int_equal(link_.state, AGENT_LINK_CONNECTING);
	assert_int_equal(link_.faults, 0);
	assert_non_null(strstr(link_.last_error, "closed"));
}

/* A ready agent with the clipboard function that answered its first info request. */
static void clip_ready(int64_t now)
{
	hello_caps(now, AGENT_CAP_INFO | AGENT_CAP_CLIPBOARD);
	send_frame(AGENT_INFO, "os=x\n", 5);
	serve(now);
	assert_int_equal(link_.npending, 0);
}

/* The clipboard request's outcome: its state, a get's text (owned by the test) and why. */
static enum agent_clip_state clip_take(uint8_t **text, uint32_t *len, char *why)
{
	return agent_link_clip_take(&link_, text, len, why, 256);
}

/* The agent's clipboard (kind, then len bytes of text) as the answer to a get. */
static void send_clip(uint8_t kind, const void *text, uint32_t len)
{
	uint8_t *b = malloc((size_t)len + 1);
	b[0] = kind;
	memcpy(b + 1, text, len);
	send_frame(AGENT_CLIP_DATA, b, len + 1);
	free(b);
}

/* A get asked at now and received by the agent. */
static void clip_get_asked(int64_t now)
{
	struct err e;
	assert_int_equal(agent_link_clip_get(&link_, now, &e), 0);
	assert_int_equal(link_.clip_state, AGENT_CLIP_WAITING);
	serve(now);
	uint8_t b[16];
	uint32_t n;
	assert_int_equal(recv_frame(b, sizeof(b), &n), AGENT_CLIP_GET);
	assert_int_equal(n, 0);
}

static void clipboard_get_returns_the_text(void **state)
{
	(void)state;
	clip_ready(1000);
	clip_get_asked(1100);
	uint8_t *text;
	uint32_t len;
	char why[256];
	assert_int_equal(clip_take(&text, &len, why), AGENT_CLIP_WAITING); /* nothing yet */
	assert_null(text);
	const char *t = "h\xc3\xa9llo\nw\xe2\x9c\x93rld \xf0\x9f\x90\x88\n";
	send_clip(AGENT_CLIP_TEXT, t, (uint32_t)strlen(t));
	serve(1200);
	assert_int_equal(clip_take(&text, &len, why), AGENT_CLIP_DONE);
	assert_int_equal(len, strlen(t));
	assert_memory_equal(text, t, len);
	free(text);
	assert_int_equal(link_.clip_state, AGENT_CLIP_IDLE);
	/* an empty clipboard is one too */
	clip_get_asked(1300);
	send_clip(AGENT_CLIP_TEXT, "", 0);
	serve(1300);
	assert_int_equal(clip_take(&text, &len, why), AGENT_CLIP_DONE);
	assert_int_equal(len, 0);
	free(text);
	assert_int_equal(link_.state, AGENT_LINK_READY);
}

/* A set of the largest clipboard goes through the bounded queue (the agent reading as it
 * comes) and is done at the agent's acknowledgement; the queue's memory is given back. */
static void clipboard_set_acknowledged(void **state)
{
	(void)state;
	clip_ready(1000);
	uint8_t *big = malloc(SHOJI_CLIPBOARD_MAX + 1 + AGENT_HEADER_SIZE);
	memset(big, 'a', SHOJI_CLIPBOARD_MAX);
	for (uint32_t i = 99; i < SHOJI_CLIPBOARD_MAX; i += 100)
		big[i] = '\n';
	struct err e;
	assert_int_equal(agent_link_clip_set(&link_, big, SHOJI_CLIPBOARD_MAX, 1000, &e), 0);
	uint8_t *got = malloc(SHOJI_CLIPBOARD_MAX + 1 + AGENT_HEADER_SIZE);
	size_t have = 0;
	for (int i = 0; i < 10000 && have < SHOJI_CLIPBOARD_MAX + 1 + AGENT_HEADER_SIZE; i++) {
		serve(1000);
		ssize_t r = recv(peer, got + have, SHOJI_CLIPBOARD_MAX + 1 + AGENT_HEADER_SIZE - have, MSG_DONTWAIT);
		have += r > 0 ? (size_t)r : 0;
	}
	assert_int_equal(have, SHOJI_CLIPBOARD_MAX + 1 + AGENT_HEADER_SIZE);
	assert_int_equal(got[3], AGENT_CLIP_DATA);
	assert_int_equal(agent_le32(got + 4), SHOJI_CLIPBOARD_MAX + 1);
	assert_int_equal(got[AGENT_HEADER_SIZE], AGENT_CLIP_TEXT);
	assert_memory_equal(got + AGENT_HEADER_SIZE + 1, big, SHOJI_CLIPBOARD_MAX);
	assert_true(link_.out_cap <= AGENT_LINK_KEEP);
	free(got);
	uint8_t *text;
	uint32_t len;
	char why[256];
	assert_int_equal(clip_take(&text, &len, why), AGENT_CLIP_WAITING);
	uint8_t ack[2] = {AGENT_CLIP_DATA, 0};
	send_frame(AGENT_ACK, ack, 2);
	serve(1100);
	assert_int_equal(clip_take(&text, &len, why), AGENT_CLIP_DONE);
	assert_null(text);
	/* not text: refused before anything is sent */
	big[5] = 0;
	assert_int_equal(agent_link_clip_set(&link_, big, 10, 1200, &e), -1);
	assert_non_null(strstr(e.msg, "not UTF-8 text"));
	free(big);
	assert_int_equal(link_.clip_state, AGENT_CLIP_IDLE);
}

static void clipboard_refused_by_the_agent(void **state)
{
	(void)state;
	clip_ready(1000);
	uint8_t *text;
	uint32_t len;
	char why[256];
	clip_get_asked(1100);
	uint8_t nack_get[2] = {AGENT_CLIP_GET, 1};
	send_frame(AGENT_ACK, nack_get, 2);
	serve(1200);
	assert_int_equal(clip_take(&text, &len, why), AGENT_CLIP_FAILED);
	assert_non_null(strstr(why, "did not give its clipboard (status 1)"));
	struct err e;
	assert_int_equal(agent_link_clip_set(&link_, (const uint8_t *)"x", 1, 1300, &e), 0);
	serve(1300);
	uint8_t b[16];
	uint32_t n;
	assert_int_equal(recv_frame(b, sizeof(b), &n), AGENT_CLIP_DATA);
	uint8_t nack_set[2] = {AGENT_CLIP_DATA, 2};
	send_frame(AGENT_ACK, nack_set, 2);
	serve(1400);
	assert_int_equal(clip_take(&text, &len, why), AGENT_CLIP_FAILED);
	assert_non_null(strstr(why, "refused to set the clipboard (status 2)"));
	assert_int_equal(link_.state, AGENT_LINK_READY); /* a refusal is no fault */
	assert_int_equal(link_.faults, 0);
}

/* An answer later than CONTROL_CLIPBOARD_MS: the request has failed by then, and the answer is
 * dropped when it comes (within AGENT_REPLY_MS: no fault). */
static void clipboard_late_answer(void **state)
{
	(void)state;
	clip_ready(1000);
	clip_get_asked(2000);
	struct pollfd p;
	int timeout = -1;
	agent_link_poll_fd(&link_, &p, &timeout, 2000);
	assert_int_equal(timeout, CONTROL_CLIPBOARD_MS); /* the loop wakes up for it */
	serve(2000 + CONTROL_CLIPBOARD_MS - 1);
	assert_int_equal(link_.clip_state, AGENT_CLIP_WAITING);
	serve(2000 + CONTROL_CLIPBOARD_MS);
	uint8_t *text;
	uint32_t len;
	char why[256];
	assert_int_equal(clip_take(&text, &len, why), AGENT_CLIP_FAILED);
	assert_non_null(strstr(why, "did not answer the clipboard request within 2000 ms"));
	/* the next one is asked behind the late one, which is then answered */
	clip_get_asked(2000 + CONTROL_CLIPBOARD_MS + 100);
	send_clip(AGENT_CLIP_TEXT, "old", 3);
	serve(2000 + CONTROL_CLIPBOARD_MS + 200);
	assert_int_equal(clip_take(&text, &len, why), AGENT_CLIP_WAITING);
	send_clip(AGENT_CLIP_TEXT, "new", 3);
	serve(2000 + CONTROL_CLIPBOARD_MS + 300);
	assert_int_equal(clip_take(&text, &len, why), AGENT_CLIP_DONE);
	assert_memory_equal(text, "new", 3);
	free(text);
	assert_int_equal(link_.state, AGENT_LINK_READY);
	assert_int_equal(link_.faults, 0);
	/* no answer at all: failed at CONTROL_CLIPBOARD_MS, a fault at AGENT_REPLY_MS */
	clip_get_asked(10000);
	serve(10000 + CONTROL_CLIPBOARD_MS);
	assert_int_equal(clip_take(&text, &len, why), AGENT_CLIP_FAILED);
	serve(10000 + AGENT_REPLY_MS);
	assert_int_equal(link_.state, AGENT_LINK_UNRESPONSIVE);
}

/* A clipboard that is not text, or too long: the request fails and the agent is dropped. */
static void clipboard_malformed(uint8_t kind, const char *text, uint32_t len, const char *why_has)
{
	clip_ready(1000);
	clip_get_asked(1100);
	send_clip(kind, text, len);
	serve(1200);
	uint8_t *got;
	uint32_t n;
	char why[256];
	assert_int_equal(clip_take(&got, &n, why), AGENT_CLIP_FAILED);
	assert_null(got);
	assert_non_null(strstr(why, why_has));
	assert_int_equal(link_.state, AGENT_LINK_UNRESPONSIVE);
	assert_int_equal(link_.faults, 1);
	assert_non_null(strstr(link_.last_error, why_has));
}

static void clipboard_not_utf8(void **state)
{
	(void)state;
	clipboard_malformed(AGENT_CLIP_TEXT, "ab\xc0\xafz", 5, "not UTF-8 text");
}

static void clipboard_with_nul(void **state)
{
	(void)state;
	clipboard_malformed(AGENT_CLIP_TEXT, "ab\0cd", 5, "not UTF-8 text");
}

static void clipboard_wrong_kind(void **state)
{
	(void)state;
	clipboard_malformed(1, "<b>x</b>", 8, "other than text");
}

static void clipboard_too_long(void **state)
{
	(void)state;
	clip_ready(1000);
	clip_get_asked(1100);
	uint8_t h[AGENT_HEADER_SIZE];
	assert_int_equal(agent_header(h, AGENT_CLIP_DATA, AGENT_LINK_IN_MAX + 1, NULL), 0);
	assert_int_equal(write(peer, h, sizeof(h)), (ssize_t)sizeof(h));
	serve(1200);
	uint8_t *got;
	uint32_t n;
	char why[256];
	assert_int_equal(clip_take(&got, &n, why), AGENT_CLIP_FAILED);
	assert_non_null(strstr(why, "longer than the limit"));
	assert_int_equal(link_.state, AGENT_LINK_UNRESPONSIVE);
}

/* One at a time; and none without a ready agent that offers it, or while paused. */
static void clipboard_refused_by_the_link(void **state)
{
	(void)state;
	struct err e;
	assert_int_equal(agent_link_clip_get(&link_, 1000, &e), -1); /* no hello yet */
	assert_non_null(strstr(e.msg, "no guest agent is connected"));
	hello_caps(1000, AGENT_CAP_INFO);
	assert_int_equal(agent_link_clip_get(&link_, 1000, &e), -1);
	assert_non_null(strstr(e.msg, "offers no clipboard"));
	teardown(NULL);
	setup(NULL);
	clip_ready(1000);
	clip_get_asked(1100);
	assert_int_equal(agent_link_clip_get(&link_, 1100, &e), -1);
	assert_non_null(strstr(e.msg, "already in progress"));
	assert_int_equal(agent_link_clip_set(&link_, (const uint8_t *)"x", 1, 1100, &e), -1);
	assert_non_null(strstr(e.msg, "already in progress"));
	send_clip(AGENT_CLIP_TEXT, "t", 1);
	serve(1200);
	assert_int_equal(agent_link_clip_get(&link_, 1200, &e), -1); /* its outcome not taken yet */
	assert_non_null(strstr(e.msg, "already in progress"));
	uint8_t *text;
	uint32_t len;
	char why[256];
	assert_int_equal(clip_take(&text, &len, why), AGENT_CLIP_DONE);
	free(text);
	agent_link_paused(&link_, true, 1300);
	assert_int_equal(agent_link_clip_get(&link_, 1300, &e), -1);
	assert_non_null(strstr(e.msg, "paused"));
	struct agent_link none;
	agent_link_init(&none, 0, "0123456789abcdef0123456789abcdef");
	assert_int_equal(agent_link_clip_get(&none, 1000, &e), -1);
	assert_non_null(strstr(e.msg, "no vsock"));
	agent_link_close(&none);
}

/* A pause fails the request at once (the requester would wait for the resume); the agent's
 * answer, which may still come, is dropped. The connection's end fails one too. */
static void clipboard_paused_or_dropped_meanwhile(void **state)
{
	(void)state;
	clip_ready(1000);
	clip_get_asked(1100);
	agent_link_paused(&link_, true, 1200);
	uint8_t *text;
	uint32_t len;
	char why[256];
	assert_int_equal(clip_take(&text, &len, why), AGENT_CLIP_FAILED);
	assert_non_null(strstr(why, "paused"));
	agent_link_paused(&link_, false, 9000);
	send_clip(AGENT_CLIP_TEXT, "t", 1);
	serve(9100);
	assert_int_equal(clip_take(&text, &len, why), AGENT_CLIP_IDLE);
	assert_int_equal(link_.state, AGENT_LINK_READY);
	clip_get_asked(9200);
	shutdown(peer, SHUT_WR);
	serve(9300);
	assert_int_equal(clip_take(&text, &len, why), AGENT_CLIP_FAILED);
	assert_non_null(strstr(why, "connection ended"));
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup_teardown(info_kept_and_described, setup, teardown),
		cmocka_unit_test_setup_teardown(power_off_acknowledged_or_refused, setup, teardown),
		cmocka_unit_test_setup_teardown(power_off_unanswered_falls_back, setup, teardown),
		cmocka_unit_test_setup_teardown(time_set_counted, setup, teardown),
		cmocka_unit_test_setup_teardown(pause_stops_the_clock, setup, teardown),
		cmocka_unit_test_setup_teardown(resizes_coalesce, setup, teardown),
		cmocka_unit_test_setup_teardown(acknowledged_power_off_that_never_comes, setup, teardown),
		cmocka_unit_test_setup_teardown(no_hello_is_a_fault, setup, teardown),
		cmocka_unit_test_setup_teardown(answer_out_of_turn, setup, teardown),
		cmocka_unit_test_setup_teardown(host_message_from_agent, setup, teardown),
		cmocka_unit_test_setup_teardown(bad_info, setup, teardown),
		cmocka_unit_test_setup_teardown(bad_frame, setup, teardown),
		cmocka_unit_test_setup_teardown(silence_is_a_fault, setup, teardown),
		cmocka_unit_test_setup_teardown(closed_is_not_a_fault, setup, teardown),
		cmocka_unit_test_setup_teardown(clipboard_get_returns_the_text, setup, teardown),
		cmocka_unit_test_setup_teardown(clipboard_set_acknowledged, setup, teardown),
		cmocka_unit_test_setup_teardown(clipboard_refused_by_the_agent, setup, teardown),
		cmocka_unit_test_setup_teardown(clipboard_late_answer, setup, teardown),
		cmocka_unit_test_setup_teardown(clipboard_not_utf8, setup, teardown),
		cmocka_unit_test_setup_teardown(clipboard_with_nul, setup, teardown),
		cmocka_unit_test_setup_teardown(clipboard_wrong_kind, setup, teardown),
		cmocka_unit_test_setup_teardown(clipboard_too_long, setup, teardown),
		cmocka_unit_test_setup_teardown(clipboard_refused_by_the_link, setup, teardown),
		cmocka_unit_test_setup_teardown(clipboard_paused_or_dropped_meanwhile, setup, teardown),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
