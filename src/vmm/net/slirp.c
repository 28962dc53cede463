/* net/slirp: the user-mode NAT backend (see net.h). libslirp, which parses every frame the guest
 * sends and holds the host sockets of its connections, runs in shoji-slirp, a process of its
 * own (src/slirp/): the monitor starts one a NIC before it confines itself, as --net-uid or the
 * identity it will take, and keeps its end of their SOCK_SEQPACKET socket pair, one frame a message, for the
 * VM's whole run (each boot's NIC takes a duplicate). The monitor then needs no host socket for
 * a slirp NIC, and its jail's network namespace is empty. The helper binds the NIC's forwards
 * before it says it is ready, so a port already taken is a start-up error; it ends when the
 * monitor does (the socket closes, or the monitor's death signal), and a helper that ends first
 * takes the NIC's link down. */
#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include "../../common/file.h"
#include "../../common/identity.h"
#include "../../common/log.h"
#include "../../common/unix_socket.h"
#include "net.h"

#define HELPER       "shoji-slirp"
#define READY_MS     30000
#define HELPER_ARGS  (8 + 2 * NET_MAX_FORWARDS)
#define ARG_TEXT_MAX 48

int net_slirp_helper(char *out, size_t n, struct err *e)
{
	char self[PATH_MAX];
	ssize_t len = readlink("/proc/self/exe", self, sizeof(self) - 1);
	if (len <= 0)
		return err_errno(e, errno, "net: cannot find the monitor's own program (/proc/self/exe)");
	self[len] = '\0';
	char *slash = strrchr(self, '/');
	*slash = '\0';
	if ((size_t)snprintf(out, n, "%s/" HELPER, self) >= n)
		return err_set(e, "net: the monitor's path is too long");
	if (access(out, X_OK) < 0)
		return err_errno(e, errno,
				 "net: the user-mode NAT's program %s cannot run; it comes with shoji-vmm and must "
				 "be installed beside it",
				 out);
	return 0;
}

/* The helper's command line for c (text[] holds the numbers and forwards). */
static void helper_args(const struct net_config *c, const char *path, char *argv[HELPER_ARGS + 1],
			char text[][ARG_TEXT_MAX])
{
	unsigned n = 0, t = 0;
	argv[n++] = (char *)path;
	argv[n++] = "--fd";
	argv[n++] = "3";
	argv[n++] = "--ready";
	argv[n++] = "4";
	argv[n++] = "--mtu";
	snprintf(text[t], ARG_TEXT_MAX, "%u", c->mtu);
	argv[n++] = text[t++];
	if (c->host_loopback)
		argv[n++] = "--host-loopback";
	for (unsigned i = 0; i < c->nfwd; i++) {
		const struct net_forward *f = &c->fwd[i];
		char addr[INET_ADDRSTRLEN];
		inet_ntop(AF_INET, &f->host_addr, addr, sizeof(addr));
		snprintf(text[t], ARG_TEXT_MAX, "%s:%s:%u:%u", f->udp ? "udp" : "tcp", addr, f->host_port,
			 f->guest_port);
		argv[n++] = "--fwd";
		argv[n++] = text[t++];
	}
	argv[n] = NULL;
}

/* In the helper's process: the socket at 3, the ready pipe at 4, standard input and output on
 * /dev/null, standard error the monitor's; dies with the monitor; the identity given; never
 * returns. */
static void helper_exec(char *const argv[], int sock, int ready, const struct net_identity *as, pid_t monitor)
{
	int s = fcntl(sock, F_DUPFD, 10), r = fcntl(ready, F_DUPFD, 10), null = open("/dev/null", O_RDWR);
	sigset_t none;
	sigemptyset(&none);
	if (s < 0 || r < 0 || null < 0 || dup2(null, 0) < 0 || dup2(null, 1) < 0 || dup2(s, 3) < 0 || dup2(r, 4) < 0 ||
	    sigprocmask(SIG_SETMASK, &none, NULL) < 0)
		_exit(127);
	file_close_from(5);
	if (as && as->uid && identity_become(as->uid, as->gid, NULL, 0) < 0) {
		dprintf(4, "cannot become uid %u: %s", (unsigned)as->uid, strerror(errno));
		_exit(127);
	}
	if (!identity_die_with(monitor)) /* after the change of identity, which clears it */
		_exit(127);
	execv(argv[0], argv);
	dprintf(4, "cannot run %s: %s", argv[0], strerror(errno));
	_exit(127);
}

/* What the helper said on its ready pipe, until it closed it: "ok", or why it did not start. */
static void read_ready(int fd, pid_t pid, char *msg, size_t n)
{
	size_t have = 0;
	struct pollfd p = {.fd = fd, .events = POLLIN};
	while (have < n - 1) {
		int r = poll(&p, 1, READY_MS);
		if (r == 0) {
			kill(pid, SIGKILL);
			snprintf(msg, n, "it did not answer in %d s", READY_MS / 1000);
			return;
		}
		ssize_t got = r < 0 ? -1 : read(fd, msg + have, n - 1 - have);
		if (got < 0 && errno == EINTR)
			continue;
		if (got <= 0)
			break;
		have += (size_t)got;
	}
	msg[have] = '\0';
	if (!have)
		snprintf(msg, n, "it ended before it was ready");
}

int net_slirp_spawn(struct net_config *c, const char *helper, const struct net_identity *as, struct err *e)
{
	char text[1 + NET_MAX_FORWARDS][ARG_TEXT_MAX], *argv[HELPER_ARGS + 1], msg[512];
	int sv[2], ready[2];
	helper_args(c, helper, argv, text);
	if (unix_socket_frame_pair(sv, "the user-mode NAT", e) < 0)
		return -1;
	if (pipe2(ready, O_CLOEXEC) < 0) {
		close(sv[0]), close(sv[1]);
		return err_errno(e, errno, "net: cannot create a pipe");
	}
	pid_t monitor = getpid(), pid = fork();
	if (pid == 0)
		helper_exec(argv, sv[1], ready[1], as, monitor);
	int saved = errno;
	close(sv[1]);
	close(ready[1]);
	if (pid > 0)
		read_ready(ready[0], pid, msg, sizeof(msg));
	close(ready[0]);
	if (pid < 0 || strcmp(msg, "ok")) {
		close(sv[0]);
		if (pid > 0)
			waitpid(pid, NULL, 0);
		return pid < 0 ? err_errno(e, saved, "net: cannot start " HELPER)
			       : err_set(e, "net: the user-mode NAT (" HELPER ") did not start: %s", msg);
	}
	int fl = fcntl(sv[0], F_GETFL);
	if (fl < 0 || fcntl(sv[0], F_SETFL, fl | O_NONBLOCK) < 0) {
		close(sv[0]);
		return err_errno(e, errno, "net: cannot make the user-mode NAT's socket non-blocking");
	}
	c->helper_fd = sv[0];
	c->helper_pid = pid;
	return 0;
}

void net_slirp_reap(struct net_config *c, unsigned nic)
{
	int st;
	if (c->kind != NET_SLIRP || c->helper_pid <= 0 || waitpid(c->helper_pid, &st, WNOHANG) != c->helper_pid)
		return;
	if (WIFSIGNALED(st))
		log_warn("net: NIC %u's user-mode NAT (" HELPER ", pid %d) was killed by signal %d (%s)%s", nic,
			 (int)c->helper_pid, WTERMSIG(st), strsignal(WTERMSIG(st)),
			 WTERMSIG(st) == SIGSYS ? ": its system-call filter stopped a call it does not allow" : "");
	else
		log_warn("net: NIC %u's user-mode NAT (" HELPER ", pid %d) ended with status %d (its words are above)",
			 nic, (int)c->helper_pid, WEXITSTATUS(st));
	c->helper_pid = 0;
}

int net_slirp_open(struct net_backend *b, const struct net_config *c, struct err *e)
{
	if (c->helper_fd < 0)
		return err_set(e, "net: the slirp NIC has no user-mode NAT: shoji-slirp was not started");
	b->fd = fcntl(c->helper_fd, F_DUPFD_CLOEXEC, 0);
	if (b->fd < 0)
		return err_errno(e, errno, "net: cannot duplicate the user-mode NAT's socket");
	b->vnet_hdr_len = 0;
	return 0;
}
