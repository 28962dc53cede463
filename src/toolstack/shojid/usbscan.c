/* usbscan: the host's USB devices as shojid knows them. What a device says of itself (its
 * descriptors, its names) is hostile, so root never reads it: a child confined as nobody
 * (confine.c, with directory reading added; a shojid that is not root keeps its own uid) scans
 * sysfs (usb/usb_sysfs.c) and writes the result back on a pipe as fixed records; shojid takes
 * only what passes the records' checks (a port's name, names NUL-terminated and printable,
 * counts within bounds) and answers `usb-list` with them. A scan that does not end in
 * USBSCAN_TIMEOUT_MS is killed and its caller told. Main thread. */
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "../../common/file.h"
#include "../../common/identity.h"
#include "../../common/log.h"
#include "../../usb/usb_sysfs.h"
#include "daemon.h"

#define USBSCAN_TIMEOUT_MS 3000
#define USBSCAN_EXIT_MS    500 /* after its answer, to end by itself */

struct scan_result {
	int32_t ok; /* 1: n records follow; 0: msg says why */
	uint32_t n;
	char msg[sizeof(((struct err *)0)->msg)];
	struct usb_device_info dev[USB_MAX_DEVICES];
};

static const char *sysfs_dir(void)
{
#ifdef SHOJI_TEST_HOOKS
	const char *t = getenv("SHOJI_TEST_USB_SYSFS"); /* a test's own tree of devices */
	if (t && *t)
		return t;
#endif
	return USB_SYSFS_DEVICES;
}

static void child(int out, const char *dir)
{
	static struct scan_result r;
	static const char *const extra[] = {"getdents64", "getdents"};
	const struct jail_id nobody = {IDENTITY_NOBODY, IDENTITY_NOBODY};
	struct err e = {""};
	unsigned n = 0;
	file_close_from(4);
	if (confine_child("USB scan", geteuid() == 0 ? &nobody : NULL, NULL, 0, extra, 2, &e) < 0 ||
	    usb_sysfs_scan(dir, r.dev, USB_MAX_DEVICES, &n, &e) < 0) {
		snprintf(r.msg, sizeof(r.msg), "%s", e.msg);
	} else {
		r.ok = 1;
		r.n = n;
	}
	size_t len = offsetof(struct scan_result, dev) + (r.ok ? n * sizeof(r.dev[0]) : 0);
	_exit(file_write_all(out, &r, len) < 0 ? 1 : 0);
}

static long long now_ms(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (long long)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

/* All the child writes, until it closes the pipe or the deadline; the bytes read. */
static size_t read_until_eof(int fd, void *buf, size_t cap, bool *timed_out)
{
	long long deadline = now_ms() + USBSCAN_TIMEOUT_MS;
	size_t got = 0;
	*timed_out = false;
	for (;;) {
		long long left = deadline - now_ms();
		struct pollfd p = {.fd = fd, .events = POLLIN};
		int ready = left > 0 ? poll(&p, 1, (int)left) : 0;
		if (ready < 0 && errno == EINTR)
			continue;
		if (ready <= 0) {
			*timed_out = ready == 0;
			return got;
		}
		ssize_t r = read(fd, (char *)buf + got, cap - got);
		if (r < 0 && errno == EINTR)
			continue;
		if (r <= 0 || (got += (size_t)r) == cap)
			return got;
	}
}

static bool printable(const char *s, size_t size)
{
	size_t len = strnlen(s, size);
	if (len == size)
		return false;
	for (size_t i = 0; i < len; i++)
		if ((unsigned char)s[i] < 0x20 || (unsigned char)s[i] >= 0x7f)
			return false;
	return true;
}

/* A record from the child is believed only as far as these checks go: a port's name, not one
 * seen before; names NUL-terminated and printable; counts and speed within bounds; a flag 0 or 1 (read as
 * a byte: any other value in a bool is undefined). */
static bool record_ok(const struct usb_device_info *d, const struct usb_device_info *kept, unsigned nkept)
{
	uint8_t flag;
	memcpy(&flag, &d->ifaces_truncated, 1);
	if (!printable(d->port, sizeof(d->port)) || !usb_port_ok(d->port) || flag > 1 ||
	    !printable(d->manufacturer, sizeof(d->manufacturer)) || !printable(d->product, sizeof(d->product)) ||
	    d->n_ifaces > USB_MAX_IFACES || d->speed > 6)
		return false;
	for (unsigned i = 0; i < nkept; i++)
		if (strcmp(kept[i].port, d->port) == 0)
			return false;
	return true;
}

static int take(const struct scan_result *r, size_t got, struct usb_device_info *out, unsigned cap, unsigned *n,
		struct err *e)
{
	size_t head = offsetof(struct scan_result, dev);
	if (got >= head && r->ok == 0) /* the child's words, shown only if printable */
		return printable(r->msg, sizeof(r->msg)) ? err_set(e, "%s", r->msg)
							 : err_set(e, "the USB scan failed; see shojid's log");
	if (got < head || r->ok != 1 || r->n > USB_MAX_DEVICES || got != head + r->n * sizeof(r->dev[0])) {
		log_warn("USB scan: its answer is malformed (%zu bytes)", got);
		return err_set(e, "the USB scan's answer is malformed; see shojid's log");
	}
	*n = 0;
	for (unsigned i = 0; i < r->n && *n < cap; i++)
		if (record_ok(&r->dev[i], out, *n))
			out[(*n)++] = r->dev[i];
		else
			log_warn("USB scan: a device's record failed its checks; left out");
	return 0;
}

/* The child's wait status: it has exit_ms to end after closing its pipe (it closes it by
 * ending), then it is killed; shojid never waits on it without bound. */
static int reap(pid_t pid, int exit_ms)
{
	int status = 0;
	for (int waited = 0; waited < exit_ms; waited += 5) {
		if (waitpid(pid, &status, WNOHANG) == pid)
			return status;
		usleep(5000);
	}
	kill(pid, SIGKILL);
	while (waitpid(pid, &status, 0) < 0 && errno == EINTR)
		;
	return status;
}

int usbscan_run(struct usb_device_info *out, unsigned cap, unsigned *n, struct err *e)
{
	int fds[2];
	if (pipe2(fds, O_CLOEXEC) < 0)
		return err_errno(e, errno, "cannot scan the USB devices: pipe");
	const char *dir = sysfs_dir();
	pid_t pid = fork();
	if (pid < 0) {
		close(fds[0]), close(fds[1]);
		return err_errno(e, errno, "cannot scan the USB devices: fork");
	}
	if (pid == 0) {
		dup2(fds[1], 3);
		child(3, dir);
	}
	close(fds[1]);
	static struct scan_result r;
	bool timed_out;
	memset(&r, 0, sizeof(r));
	size_t got = read_until_eof(fds[0], &r, sizeof(r), &timed_out);
	close(fds[0]);
	int status = reap(pid, timed_out ? 0 : USBSCAN_EXIT_MS);
	if (timed_out)
		return err_set(e, "the USB scan did not end within %d ms; try again", USBSCAN_TIMEOUT_MS);
	if (!WIFEXITED(status) || WEXITSTATUS(status) != 0) {
		log_warn("USB scan: the child ended with %s %d", WIFSIGNALED(status) ? "signal" : "status",
			 WIFSIGNALED(status) ? WTERMSIG(status) : WEXITSTATUS(status));
		return err_set(e, "the USB scan failed; see shojid's log");
	}
	return take(&r, got, out, cap, n, e);
}

/* Each class once, by name where it has one ("storage") or in hex ("e1"): the interfaces', then
 * the device's own where it says more than they do. */
static struct json_object *classes_json(const struct usb_device_info *d)
{
	struct json_object *a = json_object_new_array();
	bool seen[256] = {false};
	for (unsigned i = 0; i <= d->n_ifaces; i++) {
		bool dev = i == d->n_ifaces;
		uint8_t c = dev ? d->dev_class : d->ifaces[i].cls;
		if (seen[c] || (dev && usb_dev_class_neutral(c) && (c == USB_CLASS_PER_IFACE || d->n_ifaces)))
			continue;
		seen[c] = true;
		char hex[4];
		snprintf(hex, sizeof(hex), "%02x", c);
		json_object_array_add(a, json_object_new_string(usb_class_name(c) ? usb_class_name(c) : hex));
	}
	return a;
}

static struct json_object *interfaces_json(const struct usb_device_info *d)
{
	struct json_object *a = json_object_new_array();
	for (unsigned i = 0; i < d->n_ifaces; i++) {
		const struct usb_iface *f = &d->ifaces[i];
		char text[40];
		snprintf(text, sizeof(text), "%u.%u alt %u: %02x/%02x/%02x", f->config, f->number, f->alt, f->cls,
			 f->subclass, f->protocol);
		json_object_array_add(a, json_object_new_string(text));
	}
	return a;
}

static struct json_object *device_json(struct daemon *dm, const struct usb_device_info *d, const struct vmdef *def,
				       const struct usb_policy *host)
{
	const char *holder = usbassign_holder(dm, d->port);
	struct json_object *o = json_object_new_object();
	char id[16];
	snprintf(id, sizeof(id), "%04x:%04x", d->vid, d->pid);
	json_object_object_add(o, "port", json_object_new_string(d->port));
	json_object_object_add(o, "id", json_object_new_string(id));
	json_object_object_add(o, "bus", json_object_new_int((int)d->busnum));
	json_object_object_add(o, "device", json_object_new_int((int)d->devnum));
	json_object_object_add(o, "manufacturer", json_object_new_string(d->manufacturer));
	json_object_object_add(o, "product", json_object_new_string(d->product));
	json_object_object_add(o, "classes", classes_json(d));
	json_object_object_add(o, "interfaces", interfaces_json(d));
	json_object_object_add(o, "complete", json_object_new_boolean(!d->ifaces_truncated));
	json_object_object_add(o, "holder", json_object_new_string(holder ? holder : "host"));
	if (def) {
		struct usb_verdict v = usb_policy_decide(&def->policy.usb, host, def->name, d);
		json_object_object_add(o, "allowed", json_object_new_boolean(v.allowed));
		if (!v.allowed)
			json_object_object_add(o, "why", json_object_new_string(v.why));
	}
	return o;
}

struct json_object *usbscan_list(struct daemon *d, const char *vm, enum proto_code *code, struct err *e)
{
	static struct vmdef def;
	static struct usb_device_info devs[USB_MAX_DEVICES];
	struct usb_policy host;
	bool have_host;
	unsigned n = 0;
	if (vm && vm_load_definition(d, vm, &def, code, e) < 0)
		return NULL;
	if (vm && usbhost_policy(d, &host, &have_host, e) < 0) {
		*code = PROTO_ERROR;
		return NULL;
	}
	if (usbscan_run(devs, USB_MAX_DEVICES, &n, e) < 0) {
		*code = PROTO_ERROR;
		return NULL;
	}
	struct json_object *a = json_object_new_array();
	for (unsigned i = 0; i < n; i++)
		json_object_array_add(a, device_json(d, &devs[i], vm ? &def : NULL, vm && have_host ? &host : NULL));
	return a;
}
