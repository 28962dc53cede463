/* shoji-slirp: the user-mode NAT of one guest NIC, in a process of its own. libslirp parses
 * every frame the guest sends (IP, TCP, UDP, ICMP, DHCP, DNS) and holds the host sockets of
 * the guest's connections; here it does so without the guest's memory, KVM or the monitor's
 * other descriptors, under its own system-call filter (slirp_filter.h), so that the monitor
 * itself needs no host socket and runs in an empty network namespace. Started by the monitor
 * before it confines itself (net/slirp.c), as the VM's net uid (--net-uid) or the identity the
 * monitor will take.
 *
 *   shoji-slirp --fd N [--ready N] [--mtu N] [--host-loopback] [--fwd tcp|udp:[ADDR:]HOST:GUEST]...
 *
 * --fd: a SOCK_SEQPACKET socket carrying the NIC's frames, one a message; it serves until the
 * other end closes it. --ready: a pipe on which it writes "ok" once its forwards are bound and
 * it is confined, or the error that stopped it, then closes it. Forwards without an address
 * listen on 127.0.0.1. */
#include <errno.h>
#include <glib.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <unistd.h>

#include "../common/file.h"
#include "../common/log.h"
#include "../common/sanitizers.h"
#include "../common/version.h"
#include "slirp_filter.h"
#include "slirp_loop.h"

static int number(const char *opt, const char *s, unsigned min, unsigned max, unsigned *out, struct err *e)
{
	char *end;
	unsigned long v = s ? strtoul(s, &end, 10) : 0;
	if (!s || !*s || *end || v < min || v > max)
		return err_set(e, "%s wants a number from %u to %u", opt, min, max);
	*out = (unsigned)v;
	return 0;
}

static const char usage[] =
	"Usage: shoji-slirp --fd N [--ready N] [--mtu N] [--host-loopback] [--fwd SPEC]...\n"
	"The user-mode NAT of one guest NIC (libslirp), in a process of its own: shoji-vmm starts one\n"
	"for each --net slirp NIC before it confines itself. The guest is 10.0.2.15/24 (DHCP), the\n"
	"gateway 10.0.2.2, DNS 10.0.2.3 (the host's resolvers).\n"
	"\n"
	"  --fd N             the NIC's frames: a SOCK_SEQPACKET socket, one frame a message; served\n"
	"                     until its other end closes\n"
	"  --ready N          a pipe on which it writes \"ok\" once its forwards are bound and it is\n"
	"                     confined, or why it could not start, then closes it\n"
	"  --mtu N            the guest's MTU (576 to 65520; default 65520)\n"
	"  --host-loopback    10.0.2.2 reaches the host's own loopback services (off by default)\n"
	"  --fwd tcp|udp:[ADDR:]HOSTPORT:GUESTPORT\n"
	"                     forward a host port to the guest's (on 127.0.0.1 unless ADDR is given)\n"
	"  --help             this text\n"
	"  --version          the version\n";

static int parse(int argc, char **argv, struct slirp_loop_config *c, int *ready, struct err *e)
{
	unsigned fd = 0, rfd = 0;
	*c = (struct slirp_loop_config){.fd = -1, .mtu = USERNET_MTU};
	*ready = -1;
	for (int i = 1; i < argc; i++) {
		const char *a = argv[i], *v = i + 1 < argc ? argv[i + 1] : NULL;
		int r;
		if (!strcmp(a, "--host-loopback")) {
			c->host_loopback = true;
			continue;
		}
		if (!strcmp(a, "--help") || !strcmp(a, "--version")) {
			if (a[2] == 'h')
				fputs(usage, stdout);
			else
				version_print("shoji-slirp");
			exit(0);
		}
		if (!strcmp(a, "--fd"))
			r = number(a, v, 0, 65535, &fd, e), c->fd = (int)fd;
		else if (!strcmp(a, "--ready"))
			r = number(a, v, 0, 65535, &rfd, e), *ready = (int)rfd;
		else if (!strcmp(a, "--mtu"))
			r = number(a, v, 576, USERNET_MTU, &c->mtu, e);
		else if (!strcmp(a, "--fwd") && c->nfwd == USERNET_MAX_FORWARDS)
			r = err_set(e, "more than %d forwards", USERNET_MAX_FORWARDS);
		else if (!strcmp(a, "--fwd"))
			r = v ? portfwd_parse(v, &c->fwd[c->nfwd++], e)
			      : err_set(e, "--fwd wants tcp|udp:[ADDR:]HOST:GUEST");
		else
			r = err_set(e, "unknown option '%s' (shoji-slirp --help lists them)", a);
		if (r < 0)
			return -1;
		i++;
	}
	return c->fd < 0 ? err_set(e, "--fd N is needed: the NIC's socket") : 0;
}

/* glib's messages (libslirp's warnings about what a guest sent) through the rate-limited log,
 * not glib's own writer, which asks whether stderr is a terminal or a journal. */
static GLogWriterOutput log_writer(GLogLevelFlags level, const GLogField *fields, gsize n, gpointer data)
{
	(void)data;
	for (gsize i = 0; i < n; i++)
		if (!strcmp(fields[i].key, "MESSAGE") && fields[i].length < 0)
			log_guest(level & (G_LOG_LEVEL_ERROR | G_LOG_LEVEL_CRITICAL) ? LOG_WARN : LOG_INFO,
				  "libslirp: %s", (const char *)fields[i].value);
	return G_LOG_WRITER_HANDLED;
}

/* Says on the ready pipe how the start went, and closes it; without one, says an error on
 * standard error. */
static void tell(int ready, const char *what)
{
	if (ready < 0) {
		if (strcmp(what, "ok"))
			fprintf(stderr, "shoji-slirp: %s\n", what);
		return;
	}
	if (file_write_all(ready, what, strlen(what)) < 0)
		log_warn("cannot tell the monitor how the start went: %s", strerror(errno));
	close(ready);
}

int main(int argc, char **argv)
{
	if (!SHOJI_SANITIZED) /* before anything of the guest's: nobody of its uid may trace it */
		prctl(PR_SET_DUMPABLE, 0, 0, 0, 0);
	log_set_prefix("shoji-slirp");
	signal(SIGPIPE, SIG_IGN);
	g_log_set_writer_func(log_writer, NULL, NULL);
	struct slirp_loop_config c;
	struct err e = {{0}};
	int ready;
	if (parse(argc, argv, &c, &ready, &e) < 0) {
		tell(ready, e.msg);
		return 2;
	}
	struct slirp_loop *s = slirp_loop_open(&c, &e);
	if (!s || slirp_filter_enter(&e) < 0) {
		tell(ready, e.msg);
		slirp_loop_close(s);
		return 1;
	}
	tell(ready, "ok");
	int r = slirp_loop_run(s, &e);
	if (r < 0)
		log_error("%s", e.msg);
	if (slirp_loop_dropped(s))
		log_info("dropped %llu frames the guest did not take", slirp_loop_dropped(s));
	slirp_loop_close(s);
	return r < 0 ? 1 : 0;
}
