/* usbrelay: the child of shojid that stands between an attached device's guest connection and
 * usbip-host (usb/usbip_relay.c): it parses the guest's USB/IP messages, so it gives up root
 * first (confine.c: nobody, no groups, no_new_privs, an allow-list with only the socket calls
 * the copy needs added) and holds nothing but its two sockets and the pipe on which it says, at
 * its end, why it ended. shojid watches it by a pidfd (main thread). */
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

#include "../../common/file.h"
#include "../../common/log.h"
#include "../../usb/usbip_relay.h"
#include "daemon.h"

static const char *const relay_calls[] = {"poll", "ppoll", "recvfrom", "sendto", "recvmsg", "sendmsg"};

/* In the child: fds 3 (guest), 4 (usbip-host's peer), 5 (why it ended). */
static void child(uint32_t devid, const uint8_t *configs, unsigned nconfigs)
{
	static struct usbip_filter f;
	const struct jail_id nobody = {65534, 65534};
	struct err e = {""};
	enum usbip_relay_end end = USBIP_RELAY_FAILED;
	file_close_from(6);
	int fl = fcntl(3, F_GETFL); /* the relay blocks on its writes (usbip_relay.h) */
	if (fl >= 0)
		fcntl(3, F_SETFL, fl & ~O_NONBLOCK);
	if (confine_child("USB relay", geteuid() == 0 ? &nobody : NULL, NULL, 0, relay_calls,
			  sizeof(relay_calls) / sizeof(relay_calls[0]), &e) == 0) {
		if (usbip_filter_init(&f, devid, configs, nconfigs) < 0)
			err_set(&e, "out of memory");
		else
			end = usbip_relay(3, 4, &f, &e);
	}
	char why[sizeof(e.msg) + 32];
	int n = snprintf(why, sizeof(why), "%d %s", (int)end, e.msg);
	file_write_all(5, why, (size_t)n < sizeof(why) ? (size_t)n : sizeof(why) - 1);
	_exit(0);
}

int usbrelay_start(struct usbrelay *r, int guest, uint32_t devid, const uint8_t *configs, unsigned nconfigs,
		   int *host_end, struct err *e)
{
	int sp[2], why[2];
	*r = (struct usbrelay){.pid = -1, .pidfd = -1, .why = -1};
	if (socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sp) < 0)
		return err_errno(e, errno, "cannot make the USB relay's socket pair");
	if (pipe2(why, O_CLOEXEC | O_NONBLOCK) < 0) {
		close(sp[0]), close(sp[1]);
		return err_errno(e, errno, "cannot make the USB relay's pipe");
	}
	pid_t pid = fork();
	if (pid == 0) {
		if (dup2(guest, 3) < 0 || dup2(sp[1], 4) < 0 || dup2(why[1], 5) < 0)
			_exit(1);
		child(devid, configs, nconfigs);
	}
	close(sp[1]);
	close(why[1]);
	if (pid < 0) {
		close(sp[0]), close(why[0]);
		return err_errno(e, errno, "cannot start the USB relay");
	}
	r->pid = pid;
	r->pidfd = (int)syscall(SYS_pidfd_open, pid, 0);
	r->why = why[0];
	*host_end = sp[0];
	if (r->pidfd < 0) {
		int en = errno;
		usbrelay_end(r, NULL, 0);
		close(sp[0]);
		*host_end = -1;
		return err_errno(e, en, "cannot watch the USB relay (pidfd_open)");
	}
	return 0;
}

/* The relay's word on why it ended, made a sentence for an event (printable only). */
static void read_why(int fd, char *out, size_t size)
{
	char buf[300];
	ssize_t n = read(fd, buf, sizeof(buf) - 1);
	int end = -1, at = 0;
	buf[n > 0 ? n : 0] = '\0';
	if (n <= 0 || sscanf(buf, "%d %n", &end, &at) < 1) {
		snprintf(out, size, "the USB relay ended without a word (see shojid's log)");
		return;
	}
	for (char *p = buf + at; *p; p++)
		if ((unsigned char)*p < 0x20 || (unsigned char)*p >= 0x7f)
			*p = '?';
	if (end == USBIP_RELAY_BROKE)
		snprintf(out, size, "the guest broke the USB/IP rules (%.120s)", buf + at);
	else if (end == USBIP_RELAY_FAILED)
		snprintf(out, size, "the USB relay failed (%.120s)", buf + at);
	else
		snprintf(out, size, "its connection ended (%.120s)", buf + at);
}

void usbrelay_end(struct usbrelay *r, char *why, size_t size)
{
	if (r->pid <= 0)
		return;
	if (r->pidfd >= 0 && syscall(SYS_pidfd_send_signal, r->pidfd, SIGKILL, NULL, 0) < 0 && errno != ESRCH)
		kill(r->pid, SIGKILL);
	else if (r->pidfd < 0)
		kill(r->pid, SIGKILL);
	int status = 0;
	while (waitpid(r->pid, &status, 0) < 0 && errno == EINTR)
		;
	if (WIFSIGNALED(status) && WTERMSIG(status) != SIGKILL)
		log_warn("USB relay %d: ended by signal %d%s", (int)r->pid, WTERMSIG(status),
			 WTERMSIG(status) == SIGSYS ? " (a system call its filter does not allow)" : "");
	if (why)
		read_why(r->why, why, size);
	if (r->pidfd >= 0)
		close(r->pidfd);
	close(r->why);
	*r = (struct usbrelay){.pid = -1, .pidfd = -1, .why = -1};
}
