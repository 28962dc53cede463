/* usbexport: the child of shojid that serves one attached device to its guest (usb/usb_libusb.c:
 * the guest's USB/IP messages, checked by usb/usbip_filter.c, become transfers on the host's
 * usbfs). It parses the guest's bytes and the device's, so it gives up root before it reads one
 * (confine.c: nobody, no groups, no_new_privs, an allow-list with the calls libusb and the
 * connection need added), then takes the device's interfaces from their host drivers, then
 * refuses itself the usbfs calls that would give them back or change the configuration. It holds the guest's
 * connection, the device's usbfs descriptor (which shojid opened) and the pipe on which it says, at its end, why it
 * ended; nothing else. shojid watches it by a pidfd (main thread). */
#include <errno.h>
#include <fcntl.h>
#include <linux/usbdevice_fs.h>
#include <seccomp.h>
#include <signal.h>
#include <stdio.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

#include "../../common/file.h"
#include "../../common/log.h"
#include "../../usb/usb_libusb.h"
#include "daemon.h"

/* What libusb's start (usbfs's directory, the kernel's version, its event and timer), the
 * connection and the second filter (seccomp, which can only narrow) need beyond confine.c's
 * list. */
static const char *const export_calls[] =
	{"poll",   "ppoll", "recvfrom", "sendto",         "recvmsg",         "sendmsg",         "ioctl", "getdents64",
	 "statfs", "uname", "eventfd2", "timerfd_create", "timerfd_settime", "timerfd_gettime", "pipe2", "seccomp"};

/* The usbfs calls that change more than a transfer once the interfaces are taken: giving an
 * interface back to a host driver (or taking one), a reset, another configuration (whose
 * interfaces the host's drivers would take). */
static const unsigned long usbfs_refused[] = {
	USBDEVFS_IOCTL,
	USBDEVFS_DISCONNECT_CLAIM,
	USBDEVFS_RESET,
	USBDEVFS_SETCONFIGURATION,
};

/* A second filter, on top of confine.c's: those calls fail with EPERM from now on. (libseccomp
 * takes no rule whose action is its filter's default, so this one refuses by command rather than
 * allowing by it.) */
static int narrow_ioctl(struct err *e)
{
	scmp_filter_ctx ctx = seccomp_init(SCMP_ACT_ALLOW);
	/* no_new_privs is set already (confine.c), and prctl is not allowed: libseccomp sets it no
	 * more */
	int r = !ctx || seccomp_attr_set(ctx, SCMP_FLTATR_CTL_NNP, 0) < 0;
	for (size_t i = 0; !r && i < sizeof(usbfs_refused) / sizeof(usbfs_refused[0]); i++)
		r = seccomp_rule_add(ctx, SCMP_ACT_ERRNO(EPERM), SCMP_SYS(ioctl), 1,
				     SCMP_A1(SCMP_CMP_EQ, usbfs_refused[i])) < 0;
	r = r || seccomp_load(ctx) < 0;
	if (ctx)
		seccomp_release(ctx);
	return r ? err_set(e, "USB exporter: cannot narrow its ioctl calls") : 0;
}

/* In the child: fds 3 (the guest), 4 (the device's usbfs node), 5 (why it ended). */
static void child(uint32_t devid, const uint8_t *configs, unsigned nconfigs)
{
	const struct jail_id nobody = {65534, 65534};
	struct err e = {""};
	enum usbip_end end = USBIP_END_FAILED;
	file_close_from(6);
	if (confine_child("USB exporter", geteuid() == 0 ? &nobody : NULL, NULL, 0, export_calls,
			  sizeof(export_calls) / sizeof(export_calls[0]), &e) == 0 &&
	    usb_libusb_open(4, &e) == 0 && narrow_ioctl(&e) == 0)
		end = usb_libusb_serve(3, devid, configs, nconfigs, &e);
	char why[sizeof(e.msg) + 32];
	int n = snprintf(why, sizeof(why), "%d %s", (int)end, e.msg);
	file_write_all(5, why, (size_t)n < sizeof(why) ? (size_t)n : sizeof(why) - 1);
	_exit(0);
}

int usbexport_start(struct usbexport *x, int guest, int usbfs, uint32_t devid, const uint8_t *configs,
		    unsigned nconfigs, struct err *e)
{
	int why[2];
	*x = (struct usbexport){.pid = -1, .pidfd = -1, .why = -1};
	if (pipe2(why, O_CLOEXEC | O_NONBLOCK) < 0)
		return err_errno(e, errno, "cannot make the USB exporter's pipe");
	pid_t pid = fork();
	if (pid == 0) {
		if (dup2(guest, 3) < 0 || dup2(usbfs, 4) < 0 || dup2(why[1], 5) < 0)
			_exit(1);
		child(devid, configs, nconfigs);
	}
	close(why[1]);
	if (pid < 0) {
		close(why[0]);
		return err_errno(e, errno, "cannot start the USB exporter");
	}
	x->pid = pid;
	x->pidfd = (int)syscall(SYS_pidfd_open, pid, 0);
	x->why = why[0];
	if (x->pidfd < 0) {
		int en = errno;
		usbexport_end(x, NULL, 0);
		return err_errno(e, en, "cannot watch the USB exporter (pidfd_open)");
	}
	return 0;
}

/* The exporter's word on why it ended, made a sentence for an event (printable only). */
static void read_why(int fd, char *out, size_t size)
{
	char buf[300];
	ssize_t n = read(fd, buf, sizeof(buf) - 1);
	int end = -1, at = 0;
	buf[n > 0 ? n : 0] = '\0';
	if (n <= 0 || sscanf(buf, "%d %n", &end, &at) < 1) {
		snprintf(out, size, "the USB exporter ended without a word (see shojid's log)");
		return;
	}
	for (char *p = buf + at; *p; p++)
		if ((unsigned char)*p < 0x20 || (unsigned char)*p >= 0x7f)
			*p = '?';
	if (end == USBIP_END_BROKE)
		snprintf(out, size, "the guest broke the USB/IP rules (%.120s)", buf + at);
	else if (end == USBIP_END_FAILED)
		snprintf(out, size, "the USB exporter failed (%.120s)", buf + at);
	else
		snprintf(out, size, "its connection ended (%.120s)", buf + at);
}

void usbexport_end(struct usbexport *x, char *why, size_t size)
{
	if (x->pid <= 0)
		return;
	if (x->pidfd >= 0 && syscall(SYS_pidfd_send_signal, x->pidfd, SIGKILL, NULL, 0) < 0 && errno != ESRCH)
		kill(x->pid, SIGKILL);
	else if (x->pidfd < 0)
		kill(x->pid, SIGKILL);
	int status = 0;
	while (waitpid(x->pid, &status, 0) < 0 && errno == EINTR)
		;
	if (WIFSIGNALED(status) && WTERMSIG(status) != SIGKILL)
		log_warn("USB exporter %d: ended by signal %d%s", (int)x->pid, WTERMSIG(status),
			 WTERMSIG(status) == SIGSYS ? " (a system call its filter does not allow)" : "");
	if (why)
		read_why(x->why, why, size);
	if (x->pidfd >= 0)
		close(x->pidfd);
	close(x->why);
	*x = (struct usbexport){.pid = -1, .pidfd = -1, .why = -1};
}
