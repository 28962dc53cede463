/* agent_link: connection, framing and deadlines of the monitor's link to shoji-agent (see
 * agent_link.h). */
#include "agent_link.h"

#include <errno.h>
#include <linux/vm_sockets.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include "../common/log.h"

#define RETRY_MAX_MS     8000 /* the longest wait between attempts after faults in a row */
#define SUSPEND_SLACK_MS 2000 /* a jump of the boot clock over the monotonic one beyond this: a host suspend */

int64_t agent_link_now_ms(void)
{
	struct timespec t;
	clock_gettime(CLOCK_MONOTONIC, &t);
	return (int64_t)t.tv_sec * 1000 + t.tv_nsec / 1000000;
}

static int64_t suspended_ms(void)
{
	struct timespec b, m;
	clock_gettime(CLOCK_BOOTTIME, &b);
	clock_gettime(CLOCK_MONOTONIC, &m);
	return ((int64_t)b.tv_sec - m.tv_sec) * 1000 + (b.tv_nsec - m.tv_nsec) / 1000000;
}

void agent_link_init(struct agent_link *l, uint32_t cid, const char *token)
{
	memset(l, 0, sizeof(*l));
	l->cid = cid;
	memcpy(l->token, token, strnlen(token, AGENT_TOKEN_LEN));
	l->fd = -1;
	l->state = cid ? AGENT_LINK_CONNECTING : AGENT_LINK_NONE;
	l->suspend_ref_ms = suspended_ms();
	agent_reader_init(&l->rd, AGENT_LINK_IN_MAX);
}

/* The clipboard request in progress fails (nothing when none is): its answer, should it still
 * come, is dropped. */
static void clip_fail(struct agent_link *l, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static void clip_fail(struct agent_link *l, const char *fmt, ...)
{
	if (l->clip_state != AGENT_CLIP_WAITING)
		return;
	va_list ap;
	va_start(ap, fmt);
	vsnprintf(l->clip_error, sizeof(l->clip_error), fmt, ap);
	va_end(ap);
	l->clip_state = AGENT_CLIP_FAILED;
	for (unsigned i = 0; i < l->npending; i++)
		l->pending[i].clip = false;
	log_info("guest agent: clipboard request failed: %s", l->clip_error);
}

static void out_free(struct agent_link *l)
{
	free(l->out);
	l->out = NULL;
	l->out_len = l->out_cap = 0;
}

/* Forgets the connection's state (not its descriptor). */
static void reset(struct agent_link *l)
{
	clip_fail(l, "the guest agent's connection was dropped");
	l->fd = -1;
	l->connected = l->hello = false;
	out_free(l);
	l->npending = 0;
	l->caps = 0;
	agent_reader_free(&l->rd);
	agent_reader_init(&l->rd, AGENT_LINK_IN_MAX);
}

static void disconnect(struct agent_link *l)
{
	if (l->fd >= 0)
		close(l->fd);
	reset(l);
}

void agent_link_close(struct agent_link *l)
{
	disconnect(l);
	agent_reader_free(&l->rd);
	free(l->clip_text);
	l->clip_text = NULL;
}

/* Drops the connection for a fault of the agent's (or of the link): counted, reported, and the
 * next attempt put off longer with each fault in a row. */
static void fault(struct agent_link *l, int64_t now, const char *fmt, ...) __attribute__((format(printf, 3, 4)));
static void fault(struct agent_link *l, int64_t now, const char *fmt, ...)
{
	va_list ap;
	va_start(ap, fmt);
	vsnprintf(l->last_error, sizeof(l->last_error), fmt, ap);
	va_end(ap);
	log_warn("guest agent: %s; the connection is dropped", l->last_error);
	clip_fail(l, "%s", l->last_error);
	if (l->power_sent)
		l->power_failed = true;
	l->power_sent = 0;
	disconnect(l);
	l->faults++;
	l->faults_row++;
	l->state = AGENT_LINK_UNRESPONSIVE;
	int64_t wait = AGENT_RETRY_MS;
	for (unsigned i = 1; i < l->faults_row && wait < RETRY_MAX_MS; i++)
		wait *= 2;
	l->next_try_ms = now + (wait < RETRY_MAX_MS ? wait : RETRY_MAX_MS);
}

/* The agent went away (closed, or no agent listens): not a fault; try again soon. */
static void gone(struct agent_link *l, int64_t now, const char *why)
{
	if (l->hello)
		log_info("guest agent: %s", why);
	if (l->hello || l->state != AGENT_LINK_UNRESPONSIVE) {
		snprintf(l->last_error, sizeof(l->last_error), "%s", why);
		l->state = AGENT_LINK_CONNECTING;
	}
	clip_fail(l, "the guest agent's connection ended before it answered (%s)", why);
	if (l->power_sent) /* it may be powering off right now: no fallback yet */
		l->power_sent = 0;
	disconnect(l);
	l->next_try_ms = now + AGENT_RETRY_MS;
}

/* Room for n more bytes in the out queue, which grows on the heap (n fits under the limit). */
static int out_room(struct agent_link *l, uint32_t n)
{
	uint32_t need = l->out_len + n, cap = l->out_cap ? l->out_cap : 4096;
	if (need <= l->out_cap)
		return 0;
	while (cap < need)
		cap *= 2;
	cap = cap < AGENT_LINK_OUT_MAX ? cap : AGENT_LINK_OUT_MAX;
	uint8_t *b = realloc(l->out, cap);
	if (!b)
		return -1;
	l->out = b;
	l->out_cap = cap;
	return 0;
}

static int queue(struct agent_link *l, uint8_t type, const void *payload, uint32_t len, int64_t now)
{
	uint8_t h[AGENT_HEADER_SIZE];
	if (agent_header(h, type, len, NULL) < 0 || len > AGENT_LINK_OUT_MAX - AGENT_HEADER_SIZE)
		return -1;
	if (l->out_len + AGENT_HEADER_SIZE + len > AGENT_LINK_OUT_MAX) {
		fault(l, now, "the agent does not take what is sent to it (%u bytes queued)", l->out_len);
		return -1;
	}
	if (out_room(l, AGENT_HEADER_SIZE + len) < 0) {
		fault(l, now, "out of memory for %u bytes to the agent", len);
		return -1;
	}
	memcpy(l->out + l->out_len, h, sizeof(h));
	if (len)
		memcpy(l->out + l->out_len + sizeof(h), payload, len);
	l->out_len += AGENT_HEADER_SIZE + len;
	return 0;
}

/* A request whose answer is awaited, in order; -1 when too many are outstanding. */
static int request(struct agent_link *l, uint8_t type, const void *payload, uint32_t len, int64_t now)
{
	if (l->npending == AGENT_LINK_PENDING_MAX || queue(l, type, payload, len, now) < 0)
		return -1;
	l->pending[l->npending].type = type;
	l->pending[l->npending].deadline_ms = now + AGENT_REPLY_MS;
	l->npending++;
	return 0;
}

void agent_link_attach(struct agent_link *l, int fd, int64_t now)
{
	if (l->fd != fd)
		disconnect(l);
	reset(l);
	l->fd = fd;
	l->connected = true;
	l->since_ms = now;
	uint32_t caps = AGENT_CAP_INFO | AGENT_CAP_POWER | AGENT_CAP_TIME | AGENT_CAP_RESIZE | AGENT_CAP_CLIPBOARD;
	uint8_t b[4 + AGENT_TOKEN_LEN] = {(uint8_t)caps, (uint8_t)(caps >> 8), (uint8_t)(caps >> 16),
					  (uint8_t)(caps >> 24)};
	memcpy(b + 4, l->token, AGENT_TOKEN_LEN);
	queue(l, AGENT_HELLO, b, sizeof(b), now);
}

static void try_connect(struct agent_link *l, int64_t now)
{
	l->next_try_ms = now + AGENT_RETRY_MS;
	int fd = socket(AF_VSOCK, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
	if (fd < 0) {
		snprintf(l->last_error, sizeof(l->last_error), "cannot make a vsock socket: %s", strerror(errno));
		return;
	}
	struct sockaddr_vm a = {.svm_family = AF_VSOCK, .svm_cid = l->cid, .svm_port = AGENT_VSOCK_PORT};
	if (connect(fd, (struct sockaddr *)&a, sizeof(a)) < 0 && errno != EINPROGRESS) {
		if (l->state != AGENT_LINK_UNRESPONSIVE) /* keep a fault's reason */
			snprintf(l->last_error, sizeof(l->last_error), "no agent is listening in the guest (%s)",
				 strerror(errno));
		close(fd);
		return;
	}
	disconnect(l);
	l->fd = fd;
	l->since_ms = now;
}

int agent_link_poll_fd(struct agent_link *l, struct pollfd *p, int *timeout_ms, int64_t now)
{
	if (!l->cid && l->fd < 0)
		return 0;
	if (l->paused_since_ms) { /* nothing is due while paused (deadlines): no wake-ups */
		if (l->fd < 0)
			return 0;
		*p = (struct pollfd){.fd = l->fd, .events = l->connected ? POLLIN : POLLOUT};
		return 1;
	}
	int64_t due = l->fd < 0 ? l->next_try_ms : (l->hello ? l->info_due_ms : l->since_ms + AGENT_HELLO_MS);
	if (l->npending && l->pending[0].deadline_ms < due)
		due = l->pending[0].deadline_ms;
	if (l->clip_state == AGENT_CLIP_WAITING && l->clip_deadline_ms < due)
		due = l->clip_deadline_ms;
	int64_t wait = due > now ? due - now : 0;
	if (*timeout_ms < 0 || wait < *timeout_ms)
		*timeout_ms = (int)wait;
	if (l->fd < 0)
		return 0;
	short ev = l->connected ? POLLIN : POLLOUT;
	if (l->connected && l->out_len)
		ev |= POLLOUT;
	*p = (struct pollfd){.fd = l->fd, .events = ev};
	return 1;
}

static int resize_next(struct agent_link *l, int64_t now);

/* The guest's clipboard (CLIP_DATA, the answer to a get; live: the request still awaited): text
 * within the limit, else a fault. */
static int clip_data(struct agent_link *l, const struct agent_msg *m, bool live, int64_t now)
{
	const uint8_t *text = m->payload + 1;
	uint32_t len = m->len - 1;
	const char *bad = m->payload[0] != AGENT_CLIP_TEXT ? "of a kind other than text"
		: len > SHOJI_CLIPBOARD_MAX                ? "longer than the limit"
		: !agent_text_ok(text, len)                ? "not UTF-8 text without NUL"
							   : NULL;
	if (bad) {
		fault(l, now, "the agent's clipboard (%u bytes) is %s", len, bad);
		return -1;
	}
	if (!live)
		return 0;
	uint8_t *copy = malloc(len ? len : 1);
	if (!copy) {
		clip_fail(l, "out of memory for the guest's clipboard");
		return 0;
	}
	memcpy(copy, text, len);
	l->clip_text = copy;
	l->clip_len = len;
	l->clip_state = AGENT_CLIP_DONE;
	return 0;
}

/* The agent's acknowledgement of a clipboard request: only a set's with status 0 is success
 * (a get is answered with its text). */
static void clip_acked(struct agent_link *l, uint8_t asked, uint8_t status, bool live)
{
	if (!live)
		return;
	if (asked == AGENT_CLIP_DATA && status == 0) {
		l->clip_state = AGENT_CLIP_DONE;
		return;
	}
	if (asked == AGENT_CLIP_GET)
		clip_fail(l, "the guest agent did not give its clipboard (status %u)", status);
	else
		clip_fail(l, "the guest agent refused to set the clipboard (status %u)", status);
}

/* The answer m to the oldest request: it must be that request's. */
static int answer(struct agent_link *l, const struct agent_msg *m, int64_t now)
{
	uint8_t asked = m->type == AGENT_ACK ? m->payload[0] : m->type == AGENT_INFO ? AGENT_INFO_REQ : AGENT_CLIP_GET;
	if (!l->npending || l->pending[0].type != asked) {
		fault(l, now, "the agent answered a request (type %u) that was not the one awaited", asked);
		return -1;
	}
	bool live = l->pending[0].clip && l->clip_state == AGENT_CLIP_WAITING;
	memmove(l->pending, l->pending + 1, (l->npending - 1) * sizeof(l->pending[0]));
	l->npending--;
	if (m->type == AGENT_CLIP_DATA)
		return clip_data(l, m, live, now);
	if (m->type != AGENT_ACK)
		return 0;
	uint8_t status = m->payload[1];
	if (asked == AGENT_CLIP_GET || asked == AGENT_CLIP_DATA) {
		clip_acked(l, asked, status, live);
		return 0;
	}
	if (asked == AGENT_TIME_SET && status == 0)
		l->time_syncs++;
	if (asked == AGENT_RESIZE) {
		if (status == 0 && strncmp(l->last_error, "the agent's resize", 18) == 0)
			l->last_error[0] = '\0'; /* a later resize went through */
		else if (status != 0) {
			snprintf(l->last_error, sizeof(l->last_error), "the agent's resize to %ux%u failed (status %u)",
				 (unsigned)(l->sent_size >> 32), (unsigned)(uint32_t)l->sent_size, status);
			log_warn("guest agent: %s", l->last_error);
		}
		return resize_next(l, now);
	}
	if ((asked == AGENT_SHUTDOWN || asked == AGENT_REBOOT) && l->power_sent == asked) {
		/* done when the guest goes: if it is still here after AGENT_POWER_MS, the owner
		 * falls back to ACPI (an agent that acknowledged and then failed) */
		l->power_deadline_ms = status == 0 ? now + AGENT_POWER_MS : 0;
		l->power_sent = 0;
		if (status != 0) {
			l->power_failed = true;
			snprintf(l->last_error, sizeof(l->last_error), "the agent refused the %s (status %u)",
				 asked == AGENT_REBOOT ? "reboot" : "power-off", status);
		}
	}
	return 0;
}

/* Sends the seat's latest area if it is not the one last sent and no resize is in flight:
 * a burst of sizes becomes at most one request at a time, ending with the last. */
static int resize_next(struct agent_link *l, int64_t now)
{
	bool in_flight = false;
	for (unsigned i = 0; i < l->npending; i++)
		in_flight |= l->pending[i].type == AGENT_RESIZE;
	if (in_flight || l->state != AGENT_LINK_READY || !(l->caps & AGENT_CAP_RESIZE) || !l->want_size ||
	    l->want_size == l->sent_size)
		return 0;
	uint8_t b[8];
	uint32_t w = (uint32_t)(l->want_size >> 32), h = (uint32_t)l->want_size;
	for (int i = 0; i < 4; i++) {
		b[i] = (uint8_t)(w >> (8 * i));
		b[4 + i] = (uint8_t)(h >> (8 * i));
	}
	if (request(l, AGENT_RESIZE, b, sizeof(b), now) == 0)
		l->sent_size = l->want_size;
	return 0;
}

static int on_info(struct agent_link *l, const struct agent_msg *m, int64_t now)
{
	struct agent_info_entry tmp[AGENT_INFO_MAX_ENTRIES];
	struct err e;
	int n = agent_info_parse(m->payload, m->len, tmp, &e);
	if (n < 0) {
		fault(l, now, "%s", e.msg);
		return -1;
	}
	if (answer(l, m, now) < 0)
		return -1;
	memcpy(l->info, tmp, (size_t)n * sizeof(tmp[0]));
	l->ninfo = n;
	l->info_ms = now;
	l->faults_row = 0; /* a good answer: the next fault starts the back-off afresh */
	return 0;
}

/* One whole message from the agent: 0, or -1 when the connection was dropped. */
static int on_msg(struct agent_link *l, const struct agent_msg *m, int64_t now)
{
	struct err e;
	if (agent_check_payload(m, &e) < 0) {
		fault(l, now, "%s", e.msg);
		return -1;
	}
	if (!l->hello && m->type != AGENT_HELLO) {
		fault(l, now, "the agent sent message type %u before its hello", m->type);
		return -1;
	}
	l->heard_ms = now;
	switch (m->type) {
	case AGENT_HELLO:
		if (m->len != 4) {
			fault(l, now, "the agent's hello has %u bytes, not 4", m->len);
			return -1;
		}
		if (l->hello) {
			fault(l, now, "the agent said hello twice");
			return -1;
		}
		l->hello = true;
		l->caps = agent_le32(m->payload);
		l->state = AGENT_LINK_READY;
		l->connects++;
		l->last_error[0] = 0;
		l->info_due_ms = now;
		log_info("guest agent: connected (capabilities 0x%x)", l->caps);
		if (l->time_owed)
			agent_link_sync_time(l, now);
		l->sent_size = 0; /* a new agent gets the seat's area at once */
		return resize_next(l, now);
	case AGENT_INFO: return on_info(l, m, now);
	case AGENT_ACK:
	case AGENT_CLIP_DATA: return answer(l, m, now);
	default: fault(l, now, "the agent sent message type %u, which only the host sends", m->type); return -1;
	}
}

static void on_readable(struct agent_link *l, int64_t now)
{
	uint8_t buf[16384];
	ssize_t n = recv(l->fd, buf, sizeof(buf), MSG_DONTWAIT);
	if (n < 0 && (errno == EINTR || errno == EAGAIN))
		return;
	if (n <= 0) {
		gone(l, now, n == 0 ? "the agent closed the connection" : "the agent's connection failed");
		return;
	}
	size_t at = 0;
	while (at < (size_t)n && l->fd >= 0) {
		size_t used;
		struct agent_msg m;
		struct err e;
		enum agent_feed f = agent_reader_feed(&l->rd, buf + at, (size_t)n - at, &used, &m, &e);
		at += used;
		if (f == AGENT_FEED_ERROR)
			fault(l, now, "%s", e.msg);
		else if (f == AGENT_FEED_MSG && on_msg(l, &m, now) < 0)
			break;
		else if (f == AGENT_FEED_MSG)
			agent_reader_trim(&l->rd, AGENT_LINK_KEEP); /* after a clipboard's */
	}
}

static void on_writable(struct agent_link *l, int64_t now)
{
	ssize_t w = send(l->fd, l->out, l->out_len, MSG_DONTWAIT | MSG_NOSIGNAL);
	if (w < 0 && (errno == EINTR || errno == EAGAIN))
		return;
	if (w <= 0) {
		gone(l, now, "the agent's connection failed");
		return;
	}
	memmove(l->out, l->out + w, l->out_len - (size_t)w);
	l->out_len -= (uint32_t)w;
	if (!l->out_len && l->out_cap > AGENT_LINK_KEEP) /* a clipboard's went */
		out_free(l);
}

/* A non-blocking connect finished: up, or no agent there (yet). */
static void on_connected(struct agent_link *l, int64_t now)
{
	int err = 0;
	socklen_t len = sizeof(err);
	if (getsockopt(l->fd, SOL_SOCKET, SO_ERROR, &err, &len) < 0 || err) {
		gone(l, now, "no agent is listening in the guest");
		return;
	}
	agent_link_attach(l, l->fd, now);
}

void agent_link_paused(struct agent_link *l, bool paused, int64_t now)
{
	if (paused && !l->paused_since_ms) {
		l->paused_since_ms = now > 0 ? now : 1;
		clip_fail(l, "the VM was paused"); /* its answer would come after the requester's patience */
		return;
	}
	if (paused || !l->paused_since_ms)
		return;
	int64_t d = now - l->paused_since_ms;
	l->paused_since_ms = 0;
	l->since_ms += d;
	l->info_due_ms += d;
	if (l->power_deadline_ms)
		l->power_deadline_ms += d;
	for (unsigned i = 0; i < l->npending; i++)
		l->pending[i].deadline_ms += d;
}

static void deadlines(struct agent_link *l, int64_t now)
{
	if (l->paused_since_ms) /* a paused guest answers nothing: nothing is due */
		return;
	if (l->fd >= 0 && !l->hello && now >= l->since_ms + AGENT_HELLO_MS) {
		if (l->connected)
			fault(l, now, "the agent did not say hello within %d ms", AGENT_HELLO_MS);
		else
			gone(l, now, "the connection to the agent did not complete");
	}
	if (l->clip_state == AGENT_CLIP_WAITING && now >= l->clip_deadline_ms)
		clip_fail(l, "the guest agent did not answer the clipboard request within %d ms", CONTROL_CLIPBOARD_MS);
	if (l->fd >= 0 && l->npending && now >= l->pending[0].deadline_ms)
		fault(l, now, "the agent did not answer a request (type %u) within %d ms", l->pending[0].type,
		      AGENT_REPLY_MS);
	if (l->power_deadline_ms && now >= l->power_deadline_ms) {
		l->power_deadline_ms = 0;
		l->power_failed = true;
		snprintf(l->last_error, sizeof(l->last_error),
			 "the guest was still running %d ms after its agent "
			 "acknowledged the power-off",
			 AGENT_POWER_MS);
	}
	if (l->hello && now >= l->info_due_ms) {
		l->info_due_ms = now + AGENT_PING_MS;
		request(l, AGENT_INFO_REQ, NULL, 0, now);
	}
	if (l->fd < 0 && l->cid && now >= l->next_try_ms)
		try_connect(l, now);
	int64_t s = suspended_ms();
	if (s - l->suspend_ref_ms > SUSPEND_SLACK_MS) {
		log_info("the host was suspended for %lld ms: the guest's clock is set again",
			 (long long)(s - l->suspend_ref_ms));
		agent_link_sync_time(l, now);
	}
	l->suspend_ref_ms = s;
}

void agent_link_serve(struct agent_link *l, short revents, int64_t now)
{
	if (!l->cid && l->fd < 0)
		return;
	if (l->fd >= 0 && !l->connected && (revents & (POLLOUT | POLLERR | POLLHUP)))
		on_connected(l, now);
	else if (l->fd >= 0 && l->connected && (revents & (POLLIN | POLLHUP | POLLERR)))
		on_readable(l, now);
	deadlines(l, now);
	if (l->fd >= 0 && l->connected && l->out_len) /* non-blocking: what does not fit waits for POLLOUT */
		on_writable(l, now);
}

int agent_link_power(struct agent_link *l, uint8_t what, int64_t now)
{
	if (l->state != AGENT_LINK_READY || !(l->caps & AGENT_CAP_POWER))
		return -1;
	if (request(l, what, NULL, 0, now) < 0)
		return -1;
	l->power_sent = what;
	l->power_failed = false;
	return 0;
}

void agent_link_sync_time(struct agent_link *l, int64_t now)
{
	if (l->state != AGENT_LINK_READY || !(l->caps & AGENT_CAP_TIME)) {
		l->time_owed = true; /* for the next agent that says hello */
		return;
	}
	l->time_owed = false;
	struct timespec t;
	clock_gettime(CLOCK_REALTIME, &t);
	uint64_t ns = (uint64_t)t.tv_sec * 1000000000ull + (uint64_t)t.tv_nsec;
	uint8_t b[8];
	for (int i = 0; i < 8; i++)
		b[i] = (uint8_t)(ns >> (8 * i));
	if (request(l, AGENT_TIME_SET, b, sizeof(b), now) == 0)
		l->info_due_ms = now; /* the info that follows shows the guest's clock as set */
}

void agent_link_resize(struct agent_link *l, uint32_t width, uint32_t height, int64_t now)
{
	l->want_size = (uint64_t)width << 32 | height;
	resize_next(l, now);
}

/* Why a clipboard request cannot be made now (-1 with e set), or 0. */
static int clip_refused(const struct agent_link *l, struct err *e)
{
	if (l->clip_state != AGENT_CLIP_IDLE)
		return err_set(e, "a clipboard request is already in progress");
	if (l->paused_since_ms)
		return err_set(e, "the VM is paused");
	if (l->state == AGENT_LINK_NONE && l->fd < 0)
		return err_set(e, "the VM has no guest agent (no vsock device)");
	if (l->state != AGENT_LINK_READY)
		return err_set(e, "no guest agent is connected%s%s%s", l->last_error[0] ? " (" : "", l->last_error,
			       l->last_error[0] ? ")" : "");
	if (!(l->caps & AGENT_CAP_CLIPBOARD))
		return err_set(e, "the guest agent offers no clipboard");
	return 0;
}

/* Sends a clipboard request (payload: a set's kind and text) whose outcome is then awaited. */
static int clip_request(struct agent_link *l, uint8_t type, const uint8_t *payload, uint32_t len, int64_t now,
			struct err *e)
{
	if (request(l, type, payload, len, now) < 0)
		return err_set(e, "the guest agent cannot take the request now%s%s", l->fd < 0 ? ": " : "",
			       l->fd < 0 ? l->last_error : "");
	l->pending[l->npending - 1].clip = true;
	l->clip_state = AGENT_CLIP_WAITING;
	l->clip_op = type;
	l->clip_deadline_ms = now + CONTROL_CLIPBOARD_MS;
	return 0;
}

int agent_link_clip_get(struct agent_link *l, int64_t now, struct err *e)
{
	if (clip_refused(l, e) < 0)
		return -1;
	return clip_request(l, AGENT_CLIP_GET, NULL, 0, now, e);
}

int agent_link_clip_set(struct agent_link *l, const uint8_t *text, uint32_t len, int64_t now, struct err *e)
{
	if (clip_refused(l, e) < 0)
		return -1;
	if (len > SHOJI_CLIPBOARD_MAX || !agent_text_ok(text, len))
		return err_set(e, "the clipboard is not UTF-8 text without NUL of at most %u bytes",
			       SHOJI_CLIPBOARD_MAX);
	uint8_t *b = malloc((size_t)len + 1);
	if (!b)
		return err_set(e, "out of memory for the clipboard");
	b[0] = AGENT_CLIP_TEXT;
	if (len)
		memcpy(b + 1, text, len);
	int r = clip_request(l, AGENT_CLIP_DATA, b, len + 1, now, e);
	free(b);
	return r;
}

enum agent_clip_state agent_link_clip_take(struct agent_link *l, uint8_t **text, uint32_t *len, char *why, size_t size)
{
	enum agent_clip_state s = l->clip_state;
	*text = NULL;
	*len = 0;
	if (s == AGENT_CLIP_DONE) {
		*text = l->clip_text;
		*len = l->clip_len;
		l->clip_text = NULL;
		l->clip_len = 0;
	} else if (s == AGENT_CLIP_FAILED) {
		snprintf(why, size, "%s", l->clip_error);
	}
	if (s == AGENT_CLIP_DONE || s == AGENT_CLIP_FAILED)
		l->clip_state = AGENT_CLIP_IDLE;
	return s;
}

const char *agent_link_state_name(enum agent_link_state s)
{
	static const char *const names[] = {"none", "connecting", "ready", "unresponsive"};
	return (unsigned)s < sizeof(names) / sizeof(names[0]) ? names[s] : "?";
}

json_object *agent_link_describe(const struct agent_link *l, int64_t now)
{
	static const char *const cap_names[] = {"info", "power", "time", "resize", "clipboard"};
	json_object *o = json_object_new_object();
	json_object_object_add(o, "state", json_object_new_string(agent_link_state_name(l->state)));
	if (l->state == AGENT_LINK_READY) {
		json_object *caps = json_object_new_array();
		for (unsigned i = 0; i < sizeof(cap_names) / sizeof(cap_names[0]); i++)
			if (l->caps & (1u << i))
				json_object_array_add(caps, json_object_new_string(cap_names[i]));
		json_object_object_add(o, "caps", caps);
		json_object_object_add(o, "seen_s_ago", json_object_new_int64((now - l->heard_ms) / 1000));
	}
	if (l->ninfo) {
		json_object *info = json_object_new_object();
		for (int i = 0; i < l->ninfo; i++)
			json_object_object_add(info, l->info[i].key, json_object_new_string(l->info[i].value));
		json_object_object_add(o, "info", info);
		json_object_object_add(o, "info_s_ago", json_object_new_int64((now - l->info_ms) / 1000));
	}
	json_object_object_add(o, "faults", json_object_new_int64(l->faults));
	json_object_object_add(o, "time_syncs", json_object_new_int64(l->time_syncs));
	if (l->last_error[0])
		json_object_object_add(o, "error", json_object_new_string(l->last_error));
	return o;
}
