/* usbexport: the child of shojid that serves one attached device to its guest (usb/usb_libusb.c:
 * the guest's USB/IP messages, checked by usb/usbip_filter.c, become transfers on the host's
 * usbfs). It opens the device's usbfs node while still root and checks it is the device judged
 * (so the kernel records this child, not shojid, as the opener a disconnect signal would go
 * to), gives up root before it reads a byte of the guest's or the device's (confine.c: nobody,
 * no groups, no_new_privs, an allow-list with what libusb's start and the connection need
 * added), takes the device's interfaces from their host drivers and drops its usbfs privileges
 * to those, then narrows itself to what serving needs: no file opened any more, and of usbfs
 * only the transfer, alternate-setting and halt calls (confine_narrow). It holds the guest's
 * connection, the device and the pipe on which it says, at its end, why it ended; nothing
 * else. shojid watches it by a pidfd (main thread). */
#include <errno.h>
#include <fcntl.h>
#include <linux/usbdevice_fs.h>
#include <signal.h>
#include <stdio.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/sysmacros.h>
#include <sys/wait.h>
#include <unistd.h>

#include "../../common/file.h"
#include "../../common/identity.h"
#include "../../common/log.h"
#include "../../usb/usb_libusb.h"
#include "../../usb/usb_sysfs.h"
#include "daemon.h"

#define USB_DEVICE_MAJOR 189 /* the kernel's usbfs device nodes */

/* What libusb's start (usbfs's directory, the kernel's version, its event and timer), the
 * connection and the second filter need beyond confine.c's list. */
static const char *const start_calls[] = {"poll",     "ppoll",          "recvfrom",        "sendto",          "recvmsg",
					  "sendmsg",  "ioctl",          "getdents64",      "statfs",          "uname",
					  "eventfd2", "timerfd_create", "timerfd_settime", "timerfd_gettime", "pipe2",
					  "seccomp"};

/* What serving needs, and nothing else: the connection, libusb's event and timer, memory. */
static const char *const serve_calls[] = {
	"poll",          "ppoll",       "read",   "write",  "recvfrom",        "sendto",
	"recvmsg",       "sendmsg",     "close",  "fcntl",  "timerfd_settime", "timerfd_gettime",
	"clock_gettime", "mmap",        "munmap", "mremap", "madvise",         "brk",
	"futex",         "sched_yield", "getpid", "gettid", "rt_sigreturn",    "rt_sigprocmask",
	"exit",          "exit_group",
};

/* The usbfs calls serving needs: transfers, their ends, alternate settings, halts. */
static const unsigned long serve_ioctls[] = {
	USBDEVFS_SUBMITURB,  USBDEVFS_REAPURB,      USBDEVFS_REAPURBNDELAY,
	USBDEVFS_DISCARDURB, USBDEVFS_SETINTERFACE, USBDEVFS_CLEAR_HALT,
};

/* The device's usbfs node, opened as fd 4 and checked to be the device judged: the USB device
 * numbered as the scan saw it (a replug gives another number). 0, or -1 with e. */
static int open_usbfs(const struct usbexport_device *dev, struct err *e)
{
	char node[40];
	struct stat st;
	snprintf(node, sizeof(node), "/dev/bus/usb/%03u/%03u", dev->busnum, dev->devnum);
	int fd = open(node, O_RDWR | O_CLOEXEC | O_NOFOLLOW | O_NOCTTY);
	if (fd < 0)
		return err_errno(e, errno, "cannot open the USB device at %s (%s)", dev->port, node);
	if (fstat(fd, &st) < 0 || !S_ISCHR(st.st_mode) || major(st.st_rdev) != USB_DEVICE_MAJOR ||
	    minor(st.st_rdev) != (dev->busnum - 1) * 128 + dev->devnum - 1 ||
	    usb_sysfs_number(dev->port, "devnum") != (long)dev->devnum) {
		close(fd);
		return err_set(e,
			       "the USB device at %s changed while it was being attached (plugged again?); try again",
			       dev->port);
	}
	int r = fd == 4 ? 0 : dup2(fd, 4);
	if (fd != 4)
		close(fd);
	return r < 0 ? err_errno(e, errno, "cannot keep the USB device's descriptor") : 0;
}

/* In the child: fds 3 (the guest) and 5 (why it ended); the device becomes fd 4. */
static void child(const struct usbexport_device *dev, const uint8_t *configs, unsigned nconfigs)
{
	const struct jail_id nobody = {IDENTITY_NOBODY, IDENTITY_NOBODY};
	struct err e = {""};
	enum usbip_end end = USBIP_END_FAILED;
	file_close_from(6);
	if (open_usbfs(dev, &e) == 0 &&
	    confine_child("USB exporter", geteuid() == 0 ? &nobody : NULL, NULL, 0, start_calls,
			  sizeof(start_calls) / sizeof(start_calls[0]), &e) == 0 &&
	    usb_libusb_open(4, &e) == 0 &&
	    confine_narrow("USB exporter", serve_calls, sizeof(serve_calls) / sizeof(serve_calls[0]), serve_ioctls,
			   sizeof(serve_ioctls) / sizeof(serve_ioctls[0]), &e) == 0)
		end = usb_libusb_serve(3, dev->busnum << 16 | dev->devnum, configs, nconfigs, &e);
	char why[sizeof(e.msg) + 32];
	int n = snprintf(why, sizeof(why), "%d %s", (int)end, e.msg);
	file_write_all(5, why, (size_t)n < sizeof(why) ? (size_t)n : sizeof(why) - 1);
	_exit(0);
}

int usbexport_start(struct usbexport *x, int guest, const struct usbexport_device *dev, const uint8_t *configs,
		    unsigned nconfigs, struct err *e)
{
	int why[2];
	*x = (struct usbexport){.pid = -1, .pidfd = -1, .why = -1};
	if (pipe2(why, O_CLOEXEC | O_NONBLOCK) < 0)
		return err_errno(e, errno, "cannot make the USB exporter's pipe");
	pid_t pid = fork();
	if (pid == 0) { /* above 5 first, so that neither lands on the other's number */
		int g = fcntl(guest, F_DUPFD, 10), w = fcntl(why[1], F_DUPFD, 10);
		if (g < 0 || w < 0 || dup2(g, 3) < 0 || dup2(w, 5) < 0)
			_exit(1);
		child(dev, configs, nconfigs);
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
