/* slirp_loop: libslirp on one socket (slirp_loop.h). */
#include "slirp_loop.h"

#include <arpa/inet.h>
#include <errno.h>
#include <poll.h>
#include <slirp/libslirp.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>

#include "../common/log.h"

#define MAX_TIMERS  16
#define MAX_POLLFDS 512
#define FRAME_MAX   (USERNET_MTU + 14)

/* Frames for the guest that did not fit in the socket, in order, until it has room. */
struct queued_frame {
	struct queued_frame *next;
	size_t len;
	uint8_t data[];
};

struct slirp_timer {
	SlirpTimerCb cb;
	void *opaque;
	int64_t expire_ms; /* -1: not armed */
	bool used;
};

struct slirp_loop {
	Slirp *slirp;
	int fd;
	struct slirp_timer timers[MAX_TIMERS];
	struct pollfd pfd[MAX_POLLFDS];
	unsigned npfd;
	uint8_t frame[FRAME_MAX];
	struct queued_frame *q_head, *q_tail;
	size_t q_bytes;
	unsigned long long dropped;
};

static int64_t now_ns(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (int64_t)ts.tv_sec * 1000000000 + ts.tv_nsec;
}

/* Sends the queued frames while the socket has room. */
static void queue_flush(struct slirp_loop *s)
{
	while (s->q_head) {
		struct queued_frame *f = s->q_head;
		if (send(s->fd, f->data, f->len, MSG_DONTWAIT | MSG_NOSIGNAL) < 0) {
			if (errno == EAGAIN || errno == ENOBUFS || errno == EINTR)
				return;
			s->dropped++; /* the NIC is gone: nothing will ever take it */
		}
		s->q_head = f->next;
		s->q_bytes -= f->len;
		free(f);
	}
	s->q_tail = NULL;
}

static ssize_t cb_send_packet(const void *buf, size_t len, void *opaque)
{
	struct slirp_loop *s = opaque;
	if (!s->q_head && send(s->fd, buf, len, MSG_DONTWAIT | MSG_NOSIGNAL) >= 0)
		return (ssize_t)len;
	struct queued_frame *f = NULL;
	if (s->q_bytes + len <= SLIRP_LOOP_QUEUE_MAX)
		f = malloc(sizeof(*f) + len);
	if (!f) { /* the guest is far behind: drop, as a full NIC would (TCP sends again) */
		s->dropped++;
		return (ssize_t)len;
	}
	f->next = NULL;
	f->len = len;
	memcpy(f->data, buf, len);
	if (s->q_tail)
		s->q_tail->next = f;
	else
		s->q_head = f;
	s->q_tail = f;
	s->q_bytes += len;
	return (ssize_t)len;
}

static void cb_guest_error(const char *msg, void *opaque)
{
	(void)opaque;
	log_guest(LOG_WARN, "the guest sent a bad frame: %s", msg);
}

static int64_t cb_clock_get_ns(void *opaque)
{
	(void)opaque;
	return now_ns();
}

static void *cb_timer_new(SlirpTimerCb cb, void *cb_opaque, void *opaque)
{
	struct slirp_loop *s = opaque;
	for (unsigned i = 0; i < MAX_TIMERS; i++) {
		if (!s->timers[i].used) {
			s->timers[i] =
				(struct slirp_timer){.cb = cb, .opaque = cb_opaque, .expire_ms = -1, .used = true};
			return &s->timers[i];
		}
	}
	log_error("out of slirp timers");
	return NULL;
}

static void cb_timer_free(void *timer, void *opaque)
{
	(void)opaque;
	if (timer)
		((struct slirp_timer *)timer)->used = false;
}

static void cb_timer_mod(void *timer, int64_t expire_ms, void *opaque)
{
	(void)opaque;
	if (timer)
		((struct slirp_timer *)timer)->expire_ms = expire_ms;
}

static void cb_nothing_fd(int fd, void *opaque)
{
	(void)fd, (void)opaque;
}

static void cb_notify(void *opaque)
{
	(void)opaque;
}

static const SlirpCb callbacks = {
	.send_packet = cb_send_packet,
	.guest_error = cb_guest_error,
	.clock_get_ns = cb_clock_get_ns,
	.timer_new = cb_timer_new,
	.timer_free = cb_timer_free,
	.timer_mod = cb_timer_mod,
	.register_poll_fd = cb_nothing_fd,
	.unregister_poll_fd = cb_nothing_fd,
	.notify = cb_notify,
};

static short to_poll(int ev)
{
	return (short)(((ev & SLIRP_POLL_IN) ? POLLIN : 0) | ((ev & SLIRP_POLL_OUT) ? POLLOUT : 0) |
		       ((ev & SLIRP_POLL_PRI) ? POLLPRI : 0));
}

static int cb_add_poll(int fd, int events, void *opaque)
{
	struct slirp_loop *s = opaque;
	if (s->npfd == MAX_POLLFDS)
		return -1; /* slirp then skips the socket this round */
	s->pfd[s->npfd] = (struct pollfd){.fd = fd, .events = to_poll(events)};
	return (int)s->npfd++;
}

static int cb_get_revents(int idx, void *opaque)
{
	struct slirp_loop *s = opaque;
	if (idx < 0 || (unsigned)idx >= s->npfd)
		return 0;
	short r = s->pfd[idx].revents;
	return ((r & POLLIN) ? SLIRP_POLL_IN : 0) | ((r & POLLOUT) ? SLIRP_POLL_OUT : 0) |
		((r & POLLPRI) ? SLIRP_POLL_PRI : 0) | ((r & POLLERR) ? SLIRP_POLL_ERR : 0) |
		((r & POLLHUP) ? SLIRP_POLL_HUP : 0);
}

/* Runs the timers that are due; returns the milliseconds to the next one (or `cap`). */
static uint32_t run_timers(struct slirp_loop *s, uint32_t cap)
{
	int64_t now = now_ns() / 1000000;
	uint32_t next = cap;
	for (unsigned i = 0; i < MAX_TIMERS; i++) {
		struct slirp_timer *t = &s->timers[i];
		if (!t->used || t->expire_ms < 0)
			continue;
		if (t->expire_ms <= now) {
			t->expire_ms = -1;
			t->cb(t->opaque);
		} else if ((uint64_t)(t->expire_ms - now) < next) {
			next = (uint32_t)(t->expire_ms - now);
		}
	}
	return next;
}

/* The guest's frames waiting on the socket (at most 64 a round): false once its end closed. */
static bool take_frames(struct slirp_loop *s)
{
	for (int i = 0; i < 64; i++) {
		ssize_t len = recv(s->fd, s->frame, sizeof(s->frame), MSG_DONTWAIT);
		if (len == 0 || (len < 0 && errno != EAGAIN && errno != EINTR))
			return false;
		if (len < 0)
			break;
		slirp_input(s->slirp, s->frame, (int)len);
	}
	return true;
}

int slirp_loop_run(struct slirp_loop *s, struct err *e)
{
	for (;;) {
		uint32_t timeout = run_timers(s, 1000);
		s->npfd = 0;
		cb_add_poll(s->fd, SLIRP_POLL_IN | (s->q_head ? SLIRP_POLL_OUT : 0), s);
		slirp_pollfds_fill(s->slirp, &timeout, cb_add_poll, s);
		int n = poll(s->pfd, s->npfd, (int)timeout);
		if (n < 0 && errno != EINTR)
			return err_errno(e, errno, "poll");
		short own = n > 0 ? s->pfd[0].revents : 0;
		if (own & POLLOUT)
			queue_flush(s);
		if ((own & (POLLIN | POLLHUP | POLLERR)) && !take_frames(s))
			return 0;
		slirp_pollfds_poll(s->slirp, n < 0, cb_get_revents, s);
	}
}

/* libslirp's network: QEMU's addresses (10.0.2.0/24, fec0::/64), the NIC's MTU, and the host's
 * loopback out of the guest's reach unless asked for. */
static SlirpConfig slirp_config(const struct slirp_loop_config *c)
{
	SlirpConfig cfg = {.version = 1,
			   .in_enabled = true,
			   .in6_enabled = true,
			   .vprefix_len = 64,
			   .if_mtu = c->mtu,
			   .if_mru = c->mtu,
			   /* 10.0.2.2 is not the host's loopback unless asked for: a guest must not
			    * reach services that trust 127.0.0.1 by default */
			   .disable_host_loopback = !c->host_loopback};
	inet_pton(AF_INET, USERNET_NETWORK, &cfg.vnetwork);
	inet_pton(AF_INET, USERNET_NETMASK, &cfg.vnetmask);
	inet_pton(AF_INET, USERNET_HOST, &cfg.vhost);
	inet_pton(AF_INET, USERNET_GUEST, &cfg.vdhcp_start);
	inet_pton(AF_INET, USERNET_DNS, &cfg.vnameserver);
	inet_pton(AF_INET6, "fec0::", &cfg.vprefix_addr6);
	inet_pton(AF_INET6, "fec0::2", &cfg.vhost6);
	inet_pton(AF_INET6, "fec0::3", &cfg.vnameserver6);
	return cfg;
}

/* The port forwards, from the host's ports to the guest's address. */
static int add_forwards(Slirp *slirp, const struct slirp_loop_config *c, struct err *e)
{
	struct in_addr guest;
	inet_pton(AF_INET, USERNET_GUEST, &guest);
	for (unsigned i = 0; i < c->nfwd; i++) {
		const struct portfwd *f = &c->fwd[i];
		struct in_addr host = {.s_addr = f->has_addr ? f->addr.s_addr : htonl(INADDR_LOOPBACK)};
		if (slirp_add_hostfwd(slirp, f->udp, host, f->host_port, guest, f->guest_port) < 0) {
			char addr[INET_ADDRSTRLEN];
			inet_ntop(AF_INET, &host, addr, sizeof(addr));
			return err_set(e,
				       "cannot forward host %s %s:%u to the guest's port %u: the port is in use "
				       "or not allowed; pick another host port",
				       f->udp ? "udp" : "tcp", addr, f->host_port, f->guest_port);
		}
	}
	return 0;
}

struct slirp_loop *slirp_loop_open(const struct slirp_loop_config *c, struct err *e)
{
	struct slirp_loop *s = calloc(1, sizeof(*s));
	if (!s)
		return err_set(e, "out of memory"), NULL;
	s->fd = c->fd;
	SlirpConfig cfg = slirp_config(c);
	if (!(s->slirp = slirp_new(&cfg, &callbacks, s))) {
		err_set(e, "libslirp cannot start the user-mode network");
		free(s);
		return NULL;
	}
	if (add_forwards(s->slirp, c, e) < 0) {
		slirp_loop_close(s);
		return NULL;
	}
	return s;
}

void slirp_loop_close(struct slirp_loop *s)
{
	if (!s)
		return;
	if (s->slirp)
		slirp_cleanup(s->slirp);
	while (s->q_head) {
		struct queued_frame *f = s->q_head;
		s->q_head = f->next;
		free(f);
	}
	free(s);
}

unsigned long long slirp_loop_dropped(const struct slirp_loop *s)
{
	return s->dropped;
}
