/* shoji-agent: listens on vsock, serves one host connection at a time (see agent.h).
 *
 *   shoji-agent [--port N] [--clipboard-get CMD] [--clipboard-set CMD] [--clipboard-max BYTES]
 *               [--resize CMD] [--poweroff CMD] [--reboot CMD]
 *
 * Only the host (CID 2) may connect, and it is served only once its hello carries this VM's
 * token (common/agent_proto.h), read at start from the kernel command line or fw_cfg; a new
 * connection that shows it replaces the one before (the monitor reconnects after it lost
 * track), one that does not within AUTH_TIMEOUT_MS is closed without a word. A connection whose
 * peer sends a bad frame, or does not take a reply within WRITE_TIMEOUT_MS, is dropped; the
 * agent goes on listening. */
#include <errno.h>
#include <getopt.h>
#include <linux/vm_sockets.h>
#include <poll.h>
#include <signal.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include "../common/limits.h"
#include "agent.h"

#define WRITE_TIMEOUT_MS 5000
#define AUTH_TIMEOUT_MS  5000 /* for a new connection to show the token */

/* Writes all of p, or fails once WRITE_TIMEOUT_MS have gone (a host that reads a byte at a
 * time does not hold the agent longer). */
static int write_all(int fd, const uint8_t *p, size_t n)
{
	long deadline = agent_now_ms() + WRITE_TIMEOUT_MS;
	while (n) {
		long left = deadline - agent_now_ms();
		struct pollfd pf = {.fd = fd, .events = POLLOUT};
		int r = left > 0 ? poll(&pf, 1, (int)left) : 0;
		if (r < 0 && errno == EINTR)
			continue;
		if (r <= 0)
			return -1;
		ssize_t w = send(fd, p, n, MSG_DONTWAIT | MSG_NOSIGNAL);
		if (w < 0 && (errno == EINTR || errno == EAGAIN))
			continue;
		if (w <= 0)
			return -1;
		p += w;
		n -= (size_t)w;
	}
	return 0;
}

static int send_msg(int fd, uint8_t type, const uint8_t *payload, uint32_t len)
{
	uint8_t h[AGENT_HEADER_SIZE];
	if (agent_header(h, type, len, NULL) < 0)
		return -1;
	return write_all(fd, h, sizeof(h)) < 0 || write_all(fd, payload, len) < 0 ? -1 : 0;
}

static int send_hello(int fd, const struct agent_config *c)
{
	uint32_t caps = agent_caps(c);
	uint8_t b[4] = {(uint8_t)caps, (uint8_t)(caps >> 8), (uint8_t)(caps >> 16), (uint8_t)(caps >> 24)};
	return send_msg(fd, AGENT_HELLO, b, sizeof(b));
}

/* A host connection: the current one (authed), or one that has yet to show the token. */
struct peer {
	int fd;
	bool authed;
	long deadline_ms; /* for the token, while not authed */
	struct agent_reader rd;
};

static void peer_close(struct peer *p)
{
	if (p->fd >= 0)
		close(p->fd);
	agent_reader_free(&p->rd);
	p->fd = -1;
	p->authed = false;
}

static void peer_open(struct peer *p, int fd)
{
	p->fd = fd;
	p->authed = false;
	p->deadline_ms = agent_now_ms() + AUTH_TIMEOUT_MS;
	agent_reader_init(&p->rd, 4 + AGENT_TOKEN_LEN); /* a stranger can make it hold no more */
}

/* The first message of a connection: the host's hello with this VM's token, compared in
 * constant time. 0 when it is (the agent's hello is sent), else -1. */
static int authenticate(struct peer *p, const struct agent_config *c, const struct agent_msg *m)
{
	unsigned diff = m->type != AGENT_HELLO || m->len != 4 + AGENT_TOKEN_LEN;
	for (size_t i = 0; !diff && i < AGENT_TOKEN_LEN; i++)
		diff |= (unsigned)(m->payload[4 + i] ^ (uint8_t)c->token[i]);
	if (diff) {
		fprintf(stderr, "shoji-agent: refused a host connection without this VM's token\n");
		return -1;
	}
	p->authed = true;
	p->rd.max_len = AGENT_MAX_PAYLOAD; /* between messages: the reader holds nothing now */
	return send_hello(p->fd, c);
}

/* One whole message: 0 to go on, -1 to drop the connection. */
static int on_msg(struct peer *p, const struct agent_config *c, const struct agent_msg *m)
{
	struct err e;
	if (agent_check_payload(m, &e) < 0) {
		fprintf(stderr, "shoji-agent: %s; dropping the connection\n", e.msg);
		return -1;
	}
	if (!p->authed)
		return authenticate(p, c, m);
	struct agent_out out;
	agent_handle(c, m, &out);
	int r = out.type ? send_msg(p->fd, out.type, out.payload, out.len) : 0;
	if (out.owned)
		free(out.payload);
	if (out.then) {
		const char *what = out.then == AGENT_REBOOT ? "reboot" : "power-off";
		fprintf(stderr, "shoji-agent: the host asked for a %s\n", what);
		agent_power(c, out.then);
		fprintf(stderr, "shoji-agent: the %s failed\n", what);
	}
	return r;
}

/* Reads what is there and handles every whole message: 0 to go on, -1 at the end or a fault. */
static int on_readable(struct peer *p, const struct agent_config *c)
{
	uint8_t buf[65536];
	ssize_t n = recv(p->fd, buf, sizeof(buf), MSG_DONTWAIT);
	if (n < 0 && (errno == EINTR || errno == EAGAIN))
		return 0;
	if (n <= 0)
		return -1;
	size_t at = 0;
	while (at < (size_t)n) {
		size_t used;
		struct agent_msg m;
		struct err e;
		enum agent_feed f = agent_reader_feed(&p->rd, buf + at, (size_t)n - at, &used, &m, &e);
		at += used;
		if (f == AGENT_FEED_ERROR) {
			fprintf(stderr, "shoji-agent: %s\n", e.msg);
			return -1;
		}
		if (f == AGENT_FEED_MSG && on_msg(p, c, &m) < 0)
			return -1;
	}
	return 0;
}

/* Accepts a connection from the host, or -1 (one from elsewhere is closed). */
static int take(int ls)
{
	struct sockaddr_vm peer;
	socklen_t len = sizeof(peer);
	int fd = accept4(ls, (struct sockaddr *)&peer, &len, SOCK_CLOEXEC | SOCK_NONBLOCK);
	if (fd < 0)
		return -1;
	if (peer.svm_family != AF_VSOCK || peer.svm_cid != VMADDR_CID_HOST) {
		fprintf(stderr, "shoji-agent: refused a connection from CID %u (only the host's is served)\n",
			peer.svm_cid);
		close(fd);
		return -1;
	}
	return fd;
}

/* Serves the current connection (peers[0]) and one newcomer (peers[1]), which replaces the
 * current one only once it has shown the token: a host process without it can neither command
 * the guest nor cut the monitor off. */
static void serve(int ls, int usb_ls, const struct agent_config *c)
{
	struct peer peers[2] = {{.fd = -1}, {.fd = -1}};
	for (;;) {
		struct pollfd p[4] = {{.fd = ls, .events = POLLIN},
				      {.fd = peers[0].fd, .events = POLLIN},
				      {.fd = peers[1].fd, .events = POLLIN},
				      {.fd = usb_ls, .events = POLLIN}};
		int timeout = -1;
		for (int i = 0; i < 2; i++)
			if (peers[i].fd >= 0 && !peers[i].authed) {
				long left = peers[i].deadline_ms - agent_now_ms();
				timeout = left > 0 ? (int)left : 0;
			}
		if (poll(p, 4, timeout) < 0 && errno != EINTR) {
			perror("shoji-agent: poll");
			exit(1);
		}
		for (int i = 0; i < 2; i++)
			if (peers[i].fd >= 0 && (p[1 + i].revents & (POLLIN | POLLHUP | POLLERR)) &&
			    on_readable(&peers[i], c) < 0)
				peer_close(&peers[i]);
		if (peers[1].fd >= 0 && peers[1].authed) { /* the monitor connected again */
			peer_close(&peers[0]);
			peers[0] = peers[1];
			peers[1] = (struct peer){.fd = -1};
		}
		for (int i = 0; i < 2; i++)
			if (peers[i].fd >= 0 && !peers[i].authed && agent_now_ms() >= peers[i].deadline_ms) {
				fprintf(stderr, "shoji-agent: a host connection did not show the token in time\n");
				peer_close(&peers[i]);
			}
		if (p[3].revents & POLLIN)
			agent_usb_serve(usb_ls);
		int fd = (p[0].revents & POLLIN) ? take(ls) : -1;
		if (fd >= 0) {
			peer_close(&peers[peers[0].fd < 0 ? 0 : 1]);
			peer_open(&peers[peers[0].fd < 0 ? 0 : 1], fd);
		}
	}
}

static void usage(FILE *f)
{
	fprintf(f,
		"usage: shoji-agent [--port N] [--clipboard-get CMD] [--clipboard-set CMD] [--clipboard-max BYTES]\n"
		"                   [--resize CMD] [--poweroff CMD] [--reboot CMD]\n"
		"The guest's agent for shoji: serves the VM's monitor over vsock (port %u by default).\n",
		AGENT_VSOCK_PORT);
}

static int parse_args(int argc, char **argv, struct agent_config *c)
{
	static const struct option opts[] = {
		{"port", required_argument, NULL, 'p'},
		{"clipboard-get", required_argument, NULL, 'g'},
		{"clipboard-set", required_argument, NULL, 's'},
		{"clipboard-max", required_argument, NULL, 'm'},
		{"resize", required_argument, NULL, 'r'},
		{"poweroff", required_argument, NULL, 'o'},
		{"reboot", required_argument, NULL, 'b'},
		{"help", no_argument, NULL, 'h'},
		{0},
	};
	*c = (struct agent_config){.port = AGENT_VSOCK_PORT, .clip_max = SHOJI_CLIPBOARD_MAX};
	int o;
	while ((o = getopt_long(argc, argv, "", opts, NULL)) != -1) {
		char *end;
		unsigned long v;
		switch (o) {
		case 'p':
		case 'm':
			v = strtoul(optarg, &end, 10);
			if (*end || !*optarg || v == 0 || (o == 'p' && v > 0xfffffffeul) ||
			    (o == 'm' && v > SHOJI_CLIPBOARD_MAX)) {
				fprintf(stderr, "shoji-agent: --%s %s: give a number from 1 to %lu\n",
					o == 'p' ? "port" : "clipboard-max", optarg,
					o == 'p' ? 0xfffffffeul : (unsigned long)SHOJI_CLIPBOARD_MAX);
				return -1;
			}
			*(o == 'p' ? &c->port : &c->clip_max) = (uint32_t)v;
			break;
		case 'g': c->clip_get = optarg; break;
		case 's': c->clip_set = optarg; break;
		case 'r': c->resize = optarg; break;
		case 'o': c->poweroff = optarg; break;
		case 'b': c->reboot = optarg; break;
		case 'h': usage(stdout); exit(0);
		default: usage(stderr); return -1;
		}
	}
	if (optind != argc) {
		usage(stderr);
		return -1;
	}
	return 0;
}

int main(int argc, char **argv)
{
	struct agent_config c;
	if (parse_args(argc, argv, &c) < 0)
		return 2;
	if (agent_token_load(c.token) < 0) {
		fprintf(stderr,
			"shoji-agent: no token for this VM (" AGENT_TOKEN_ARG " on the kernel command line, or "
			"fw_cfg's " AGENT_TOKEN_FW_CFG " through the qemu_fw_cfg module): the VM's monitor gives "
			"it with a vsock device; not serving\n");
		return 1;
	}
	signal(SIGPIPE, SIG_IGN);
	int ls = socket(AF_VSOCK, SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0); /* accept never blocks */
	struct sockaddr_vm a = {.svm_family = AF_VSOCK, .svm_cid = VMADDR_CID_ANY, .svm_port = c.port};
	if (ls < 0 || bind(ls, (struct sockaddr *)&a, sizeof(a)) < 0 || listen(ls, 2) < 0) {
		fprintf(stderr, "shoji-agent: cannot listen on vsock port %u: %s (is the VM given a vsock device?)\n",
			c.port, strerror(errno));
		return 1;
	}
	fprintf(stderr, "shoji-agent: listening on vsock port %u\n", c.port);
	serve(ls, agent_usb_listen(), &c);
	return 0;
}
