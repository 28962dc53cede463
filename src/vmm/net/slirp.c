/* net/slirp: the user-mode NAT backend (see net.h). libslirp runs on a thread of its own, which
 * is the only one to touch it; the NIC reaches it through a SOCK_SEQPACKET socket pair, one frame
 * per message, so the device model treats it as it treats a TAP. The guest's network is
 * 10.0.2.0/24 with DHCP and DNS, and a 64 KiB MTU by default; 10.0.2.2 is the host, its loopback
 * included; host port forwards
 * are set up before the thread starts, so a port already taken is a start-up error. Frames for
 * the guest wait in a queue (up to 8 MiB) while the socket pair is full, and are dropped past
 * that, as a full NIC would drop them (TCP sends again). */
#include <arpa/inet.h>
#include <errno.h>
#include <poll.h>
#include <pthread.h>
#include <slirp/libslirp.h>
#include <stdlib.h>
#include <string.h>
#include <sys/eventfd.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include "../../common/log.h"
#include "../../common/thread.h"
#include "net.h"

#define MAX_TIMERS      16
#define MAX_POLLFDS     512
#define FRAME_MAX       (NET_SLIRP_MTU + 14)
#define SOCKBUF         (1 << 20)
#define QUEUE_MAX_BYTES (8u << 20) /* frames held for a guest that is not reading */

/* Frames for the guest that did not fit in the socket pair, in order, until it has room. */
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

struct slirp_net {
	Slirp *slirp;
	int fd;      /* our end of the pair */
	int stop_fd; /* eventfd: leave the loop */
	pthread_t thread;
	bool started;
	struct slirp_timer timers[MAX_TIMERS];
	struct pollfd pfd[MAX_POLLFDS];
	unsigned npfd;
	uint8_t frame[FRAME_MAX];
	struct queued_frame *q_head, *q_tail;
	size_t q_bytes;
	uint64_t dropped;
};

static int64_t now_ns(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (int64_t)ts.tv_sec * 1000000000 + ts.tv_nsec;
}

/* Sends the queued frames while the socket pair has room; true when none is left. */
static bool queue_flush(struct slirp_net *s)
{
	while (s->q_head) {
		struct queued_frame *f = s->q_head;
		if (send(s->fd, f->data, f->len, MSG_DONTWAIT | MSG_NOSIGNAL) < 0) {
			if (errno == EAGAIN || errno == ENOBUFS || errno == EINTR)
				return false;
			s->dropped++; /* the NIC is gone: nothing will ever take it */
		}
		s->q_head = f->next;
		s->q_bytes -= f->len;
		free(f);
	}
	s->q_tail = NULL;
	return true;
}

static ssize_t cb_send_packet(const void *buf, size_t len, void *opaque)
{
	struct slirp_net *s = opaque;
	if (!s->q_head && send(s->fd, buf, len, MSG_DONTWAIT | MSG_NOSIGNAL) >= 0)
		return (ssize_t)len;
	struct queued_frame *f = NULL;
	if (s->q_bytes + len <= QUEUE_MAX_BYTES)
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
	log_guest(LOG_WARN, "net: the guest sent a bad frame: %s", msg);
}

static int64_t cb_clock_get_ns(void *opaque)
{
	(void)opaque;
	return now_ns();
}

static void *cb_timer_new(SlirpTimerCb cb, void *cb_opaque, void *opaque)
{
	struct slirp_net *s = opaque;
	for (unsigned i = 0; i < MAX_TIMERS; i++) {
		if (!s->timers[i].used) {
			s->timers[i] =
				(struct slirp_timer){.cb = cb, .opaque = cb_opaque, .expire_ms = -1, .used = true};
			return &s->timers[i];
		}
	}
	log_error("net: out of slirp timers");
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

static void cb_register_poll_fd(int fd, void *opaque)
{
	(void)fd, (void)opaque;
}
static void cb_unregister_poll_fd(int fd, void *opaque)
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
	.register_poll_fd = cb_register_poll_fd,
	.unregister_poll_fd = cb_unregister_poll_fd,
	.notify = cb_notify,
};

static short to_poll(int ev)
{
	return (short)(((ev & SLIRP_POLL_IN) ? POLLIN : 0) | ((ev & SLIRP_POLL_OUT) ? POLLOUT : 0) |
		       ((ev & SLIRP_POLL_PRI) ? POLLPRI : 0));
}

static int cb_add_poll(int fd, int events, void *opaque)
{
	struct slirp_net *s = opaque;
	if (s->npfd == MAX_POLLFDS)
		return -1; /* slirp then skips the socket this round */
	s->pfd[s->npfd] = (struct pollfd){.fd = fd, .events = to_poll(events)};
	return (int)s->npfd++;
}

static int cb_get_revents(int idx, void *opaque)
{
	struct slirp_net *s = opaque;
	if (idx < 0 || (unsigned)idx >= s->npfd)
		return 0;
	short r = s->pfd[idx].revents;
	return ((r & POLLIN) ? SLIRP_POLL_IN : 0) | ((r & POLLOUT) ? SLIRP_POLL_OUT : 0) |
		((r & POLLPRI) ? SLIRP_POLL_PRI : 0) | ((r & POLLERR) ? SLIRP_POLL_ERR : 0) |
		((r & POLLHUP) ? SLIRP_POLL_HUP : 0);
}

/* Runs the timers that are due; returns the milliseconds to the next one (or `cap`). */
static uint32_t run_timers(struct slirp_net *s, uint32_t cap)
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

static void *slirp_thread(void *arg)
{
	struct slirp_net *s = arg;
	pthread_setname_np(pthread_self(), "net-slirp");
	for (;;) {
		uint32_t timeout = run_timers(s, 1000);
		s->npfd = 0;
		cb_add_poll(s->stop_fd, SLIRP_POLL_IN, s);
		cb_add_poll(s->fd, SLIRP_POLL_IN | (s->q_head ? SLIRP_POLL_OUT : 0), s);
		slirp_pollfds_fill(s->slirp, &timeout, cb_add_poll, s);
		int n = poll(s->pfd, s->npfd, (int)timeout);
		if (n < 0 && errno != EINTR)
			log_warn("net: poll: %s", strerror(errno));
		if (n > 0 && (s->pfd[0].revents & POLLIN))
			break;
		if (n > 0 && (s->pfd[1].revents & POLLOUT))
			queue_flush(s);
		if (n > 0 && (s->pfd[1].revents & POLLIN)) {
			for (int i = 0; i < 64; i++) { /* frames from the guest */
				ssize_t len = recv(s->fd, s->frame, sizeof(s->frame), MSG_DONTWAIT);
				if (len <= 0)
					break;
				slirp_input(s->slirp, s->frame, (int)len);
			}
		}
		slirp_pollfds_poll(s->slirp, n < 0, cb_get_revents, s);
	}
	return NULL;
}

static void slirp_net_free(struct slirp_net *s)
{
	if (s->started) {
		uint64_t one = 1;
		if (write(s->stop_fd, &one, sizeof(one)) < 0)
			log_warn("net: cannot stop the slirp thread: %s", strerror(errno));
		pthread_join(s->thread, NULL);
	}
	if (s->slirp)
		slirp_cleanup(s->slirp);
	while (s->q_head) {
		struct queued_frame *f = s->q_head;
		s->q_head = f->next;
		free(f);
	}
	if (s->fd >= 0)
		close(s->fd);
	if (s->stop_fd >= 0)
		close(s->stop_fd);
	free(s);
}

/* libslirp's network for a NIC: QEMU's addresses (10.0.2.0/24, fec0::/64), the NIC's MTU, and
 * the host's loopback out of the guest's reach unless the NIC says so. */
static SlirpConfig slirp_config(const struct net_config *c)
{
	SlirpConfig cfg = {.version = 1,
			   .in_enabled = true,
			   .in6_enabled = true,
			   .vprefix_len = 64,
			   .if_mtu = c->mtu,
			   .if_mru = c->mtu,
			   /* 10.0.2.2 is not the host's loopback unless the NIC says so: a guest
			    * must not reach services that trust 127.0.0.1 by default */
			   .disable_host_loopback = !c->host_loopback};
	inet_pton(AF_INET, NET_SLIRP_NETWORK, &cfg.vnetwork);
	inet_pton(AF_INET, "255.255.255.0", &cfg.vnetmask);
	inet_pton(AF_INET, "10.0.2.2", &cfg.vhost);
	inet_pton(AF_INET, NET_SLIRP_GUEST, &cfg.vdhcp_start);
	inet_pton(AF_INET, "10.0.2.3", &cfg.vnameserver);
	inet_pton(AF_INET6, "fec0::", &cfg.vprefix_addr6);
	inet_pton(AF_INET6, "fec0::2", &cfg.vhost6);
	inet_pton(AF_INET6, "fec0::3", &cfg.vnameserver6);
	return cfg;
}

/* The NIC's port forwards, from the host's ports to the guest's address. */
static int add_forwards(Slirp *slirp, const struct net_config *c, struct err *e)
{
	struct in_addr guest;
	inet_pton(AF_INET, NET_SLIRP_GUEST, &guest);
	for (unsigned i = 0; i < c->nfwd; i++) {
		const struct net_forward *f = &c->fwd[i];
		if (slirp_add_hostfwd(slirp, f->udp, f->host_addr, f->host_port, guest, f->guest_port) < 0) {
			char addr[INET_ADDRSTRLEN];
			inet_ntop(AF_INET, &f->host_addr, addr, sizeof(addr));
			return err_set(e,
				       "net: cannot forward host %s %s:%u to the guest's port %u: the port is in use "
				       "or not allowed; pick another host port",
				       f->udp ? "udp" : "tcp", addr, f->host_port, f->guest_port);
		}
	}
	return 0;
}

int net_slirp_open(struct net_backend *b, const struct net_config *c, struct err *e)
{
	struct slirp_net *s = calloc(1, sizeof(*s));
	if (!s)
		return err_set(e, "out of memory");
	s->fd = s->stop_fd = -1;
	int pair[2];
	if (socketpair(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC | SOCK_NONBLOCK, 0, pair) < 0) {
		free(s);
		return err_errno(e, errno, "net: cannot create the slirp socket pair");
	}
	int sz = SOCKBUF;
	for (int i = 0; i < 2; i++) {
		setsockopt(pair[i], SOL_SOCKET, SO_SNDBUF, &sz, sizeof(sz));
		setsockopt(pair[i], SOL_SOCKET, SO_RCVBUF, &sz, sizeof(sz));
	}
	s->fd = pair[1];
	b->fd = pair[0];
	b->vnet_hdr_len = 0;
	b->priv = s;
	s->stop_fd = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
	if (s->stop_fd < 0) {
		err_errno(e, errno, "net: cannot create an eventfd");
		goto fail;
	}

	SlirpConfig cfg = slirp_config(c);
	s->slirp = slirp_new(&cfg, &callbacks, s);
	if (!s->slirp) {
		err_set(e, "net: cannot start the user-mode network (libslirp)");
		goto fail;
	}
	if (add_forwards(s->slirp, c, e) < 0)
		goto fail;
	int r = thread_start(&s->thread, slirp_thread, s);
	if (r) {
		err_errno(e, r, "net: cannot start the slirp thread");
		goto fail;
	}
	s->started = true;
	return 0;
fail:
	close(b->fd);
	b->fd = -1;
	b->priv = NULL;
	slirp_net_free(s);
	return -1;
}

void net_slirp_close(struct net_backend *b)
{
	if (b->fd >= 0)
		close(b->fd);
	b->fd = -1;
	if (b->priv)
		slirp_net_free(b->priv);
	b->priv = NULL;
}
