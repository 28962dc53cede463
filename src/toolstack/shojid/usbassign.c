/* usbassign: which VM holds which USB device, and the moves between the host and a VM
 * (common/usbip_handoff.h). An attach judges the device as a fresh scan sees it under the VM's
 * policy and the host's, binds it to the host kernel's usbip-host (taking it from its host
 * driver), connects from a privileged port to the guest agent's USB port on the VM's vsock CID,
 * and, once the agent says it takes the device, starts the jailed relay (usbrelay.c) that passes
 * the guest's USB/IP messages on to usbip-host only once they passed usb/usbip_filter.c;
 * usbip-host gets its end of the relay's socket pair, and the relay the guest's connection.
 *
 * A device goes back to the host when the user detaches it, when its VM stops, and when the
 * relay ends (the guest let go or broke a rule, or the device was unplugged, which usbip-host
 * answers by closing its end): usbip-host lets go of it, and the kernel's probe gives it to its
 * own driver. An event says which.
 *
 * The sysfs files written are the kernel's, under /sys/bus/usb, named by a port that passed
 * usb_port_ok; nothing a device or a guest wrote is read here (the scan's child and the relay
 * read those), save the agent's one-byte answer, looked up in a table.
 * All on shojid's one thread; an attach holds it at most USBIP_CONNECT_MS + USBIP_ANSWER_MS. */
#include <errno.h>
#include <fcntl.h>
#include <linux/vm_sockets.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <unistd.h>

#include "../../common/log.h"
#include "../../common/usbip_handoff.h"
#include "../../usb/usb_sysfs.h"
#include "daemon.h"

#define BUS        "/sys/bus/usb"
#define USBIP_HOST BUS "/drivers/usbip-host" /* the host kernel's USB/IP exporter */
#define SETTLE_MS  300                       /* an attach stands this long before it is reported done */
#define VM_END_MS  200                       /* for a VM's monitor to be seen ended once its connection was reset */
#define RELEASE_MS 1000                      /* for usbip-host to let go of a device after it was told to */
#define PLUG_MS    1000                      /* for the host's driver to take a device just plugged in */

/* Writes text to a sysfs file: 0, or -errno (with e set when given). */
static int put(const char *file, const char *text, struct err *e)
{
	int fd = open(file, O_WRONLY | O_CLOEXEC | O_NOFOLLOW);
	ssize_t n = fd < 0 ? -1 : write(fd, text, strlen(text));
	int en = n == (ssize_t)strlen(text) ? 0 : errno ? errno : EIO;
	if (fd >= 0)
		close(fd);
	if (en && e)
		err_errno(e, en, "cannot write '%s' to %s", text, file);
	return -en;
}

/* A number the kernel keeps in the device's sysfs directory (devnum, usbip_status); -1 when the
 * device or the file is not there. */
static long device_number(const char *port, const char *file)
{
	char p[128], buf[24];
	snprintf(p, sizeof(p), BUS "/devices/%s/%s", port, file);
	int fd = open(p, O_RDONLY | O_CLOEXEC | O_NOFOLLOW);
	ssize_t n = fd < 0 ? -1 : read(fd, buf, sizeof(buf) - 1);
	if (fd >= 0)
		close(fd);
	if (n <= 0)
		return -1;
	buf[n] = '\0';
	char *end;
	long v = strtol(buf, &end, 10);
	return end == buf ? -1 : v;
}

/* Takes the device at port from usbip-host and lets the kernel find it its own driver, as
 * usbip's own unbind does (unbind, forget the port, rebind; drivers_probe where the kernel has no
 * rebind); what fails is logged (a device unplugged meanwhile fails, which is no fault). */
static void give_back(const char *port)
{
	char text[USB_PORT_MAX + 8];
	struct err e;
	bool here = device_number(port, "devnum") >= 0;
	int r;
	snprintf(text, sizeof(text), "del %s", port);
	if ((r = put(USBIP_HOST "/unbind", port, &e)) < 0 && here && r != -ENODEV)
		log_warn("USB %s: %s", port, e.msg);
	if ((r = put(USBIP_HOST "/match_busid", text, &e)) < 0 && r != -ENODEV)
		log_warn("USB %s: %s", port, e.msg);
	if (here && put(USBIP_HOST "/rebind", port, NULL) < 0 && put(BUS "/drivers_probe", port, &e) < 0)
		log_warn("USB %s: %s; it has no host driver now (replug it)", port, e.msg);
}

/* give_back once usbip-host has let go of the device (its connection ended or was ended), or
 * RELEASE_MS have gone: it resets the device as it lets go. */
static void give_back_released(const char *port)
{
	for (long long end = daemon_now_ms() + RELEASE_MS;
	     device_number(port, "usbip_status") == 2 && daemon_now_ms() < end;)
		usleep(10000);
	give_back(port);
}

/* Binds the device at port to usbip-host, from whatever driver had it, and checks that it is
 * still the device judged (devnum: a replug gives a new one). */
static int bind_usbip_host(const struct usb_device_info *dev, struct err *e)
{
	const char *port = dev->port;
	char text[USB_PORT_MAX + 8], link[160], target[160];
	struct stat st;
	if (stat(USBIP_HOST, &st) < 0)
		return err_set(e,
			       "the host has no usbip-host driver, which gives USB devices to VMs; load it "
			       "(modprobe usbip-host, or list it in /etc/modules-load.d) and try again");
	snprintf(link, sizeof(link), BUS "/devices/%s/driver", port);
	ssize_t n = readlink(link, target, sizeof(target) - 1);
	target[n > 0 ? n : 0] = '\0';
	if (n > 0 && strcmp(strrchr(target, '/') ? strrchr(target, '/') + 1 : target, "usbip-host") == 0)
		return err_set(e,
			       "the USB device at %s is bound to usbip-host by someone else than shojid (usbip, "
			       "or a shojid since restarted); end that first (usbip unbind -b %s)",
			       port, port);
	snprintf(text, sizeof(text), "add %s", port);
	int r = put(USBIP_HOST "/match_busid", text, e);
	if (r == -ENOMEM)
		return err_set(e,
			       "usbip-host's table of ports is full; reload it (modprobe -r usbip-host; "
			       "modprobe usbip-host) while no device is attached");
	if (r < 0)
		return -1;
	snprintf(link, sizeof(link), BUS "/devices/%s/driver/unbind", port);
	if ((n > 0 && put(link, port, e) < 0) || put(USBIP_HOST "/bind", port, e) < 0) {
		give_back(port);
		return -1;
	}
	if (device_number(port, "devnum") != (long)dev->devnum || device_number(port, "usbip_status") != 1) {
		give_back(port);
		return err_set(e,
			       "the USB device at %s changed while it was being attached (plugged again?); try again",
			       port);
	}
	return 0;
}

/* Waits for events on fd until deadline_ms (one look when it has passed: 0 asks "now?"): 1
 * when they came, 0 at the deadline or for fd -1, -1 on error. */
static int wait_for(int fd, short events, long long deadline_ms)
{
	if (fd < 0)
		return 0;
	for (;;) {
		long long left = deadline_ms - daemon_now_ms();
		struct pollfd p = {.fd = fd, .events = events};
		int r = poll(&p, 1, left > 0 ? (int)left : 0);
		if (r < 0 && errno == EINTR)
			continue;
		return r < 0 ? -1 : r;
	}
}

/* A connection from one of the host's privileged ports (the agent believes only those) to the
 * guest agent's USB port. */
static int connect_guest(const struct vm_entry *vm, struct err *e)
{
	int s = socket(AF_VSOCK, SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
	if (s < 0)
		return err_errno(e, errno, "cannot open a vsock socket for VM '%s'", vm->name);
	struct sockaddr_vm a = {.svm_family = AF_VSOCK, .svm_cid = VMADDR_CID_ANY, .svm_port = USBIP_HOST_PORT_MAX};
	int b;
	while ((b = bind(s, (struct sockaddr *)&a, sizeof(a))) < 0 && errno == EADDRINUSE &&
	       a.svm_port > USBIP_HOST_PORT_MIN)
		a.svm_port--;
	if (b < 0) {
		int en = errno;
		close(s);
		return err_errno(e, en, "cannot bind a privileged vsock port (%u-%u) to reach VM '%s'",
				 USBIP_HOST_PORT_MIN, USBIP_HOST_PORT_MAX, vm->name);
	}
	int en = 0;
	socklen_t len = sizeof(en);
	struct sockaddr_vm to = {.svm_family = AF_VSOCK, .svm_cid = vm->vsock_cid, .svm_port = USBIP_VSOCK_PORT};
	if (connect(s, (struct sockaddr *)&to, sizeof(to)) < 0 && errno != EINPROGRESS)
		en = errno;
	else if (wait_for(s, POLLOUT, daemon_now_ms() + USBIP_CONNECT_MS) <= 0)
		en = ETIMEDOUT;
	else if (getsockopt(s, SOL_SOCKET, SO_ERROR, &en, &len) < 0)
		en = errno;
	if (en == 0)
		return s;
	close(s);
	return err_errno(e, en,
			 "VM '%s' does not take USB devices: no shoji-agent answers on its vsock port %u (is the "
			 "guest up, with shoji-agent running?)",
			 vm->name, USBIP_VSOCK_PORT);
}

/* The request, and the agent's one-byte answer. */
static int handoff(int s, const struct vm_entry *vm, const struct usb_device_info *dev, struct err *e)
{
	uint8_t req[USBIP_REQ_SIZE], answer;
	usbip_req_encode(req, dev->busnum << 16 | dev->devnum, dev->speed);
	if (send(s, req, sizeof(req), MSG_NOSIGNAL | MSG_DONTWAIT) != (ssize_t)sizeof(req))
		return err_errno(e, errno, "VM '%s': cannot send the USB request to its agent", vm->name);
	int r = wait_for(s, POLLIN, daemon_now_ms() + USBIP_ANSWER_MS);
	ssize_t n = r > 0 ? recv(s, &answer, 1, MSG_DONTWAIT) : -1;
	if (n == 0)
		return err_set(e,
			       "VM '%s': its agent closed the USB request without an answer (an old agent, or "
			       "it did not believe this host; see the guest's log)",
			       vm->name);
	if (n != 1)
		return err_set(e, "VM '%s': its agent did not answer the USB request within %d ms", vm->name,
			       USBIP_ANSWER_MS);
	if (answer != USBIP_TAKING)
		return err_set(e, "VM '%s' did not take the USB device: %s", vm->name, usbip_answer_text(answer));
	return 0;
}

/* The configuration values the device's interfaces belong to: the ones a guest may choose. */
static unsigned configs_of(const struct usb_device_info *dev, uint8_t *out)
{
	unsigned n = 0;
	for (unsigned i = 0; i < dev->n_ifaces; i++) {
		unsigned k = 0;
		while (k < n && out[k] != dev->ifaces[i].config)
			k++;
		if (k == n)
			out[n++] = dev->ifaces[i].config;
	}
	return n;
}

/* Gives usbip-host its end of the relay's socket pair: it serves the device on it from now. */
static int give_usbip_host(const char *port, int host_end, struct err *e)
{
	char fdtext[16], file[160];
	snprintf(file, sizeof(file), BUS "/devices/%s/usbip_sockfd", port);
	snprintf(fdtext, sizeof(fdtext), "%d", host_end);
	return put(file, fdtext, e);
}

/* A guest whose vhci-hcd refuses the device closes the connection at once: an attach is done
 * only once it has stood SETTLE_MS. 0, or -1 with e (the relay ended, the device given back). */
static int settled(struct usbrelay *relay, const char *port, struct err *e)
{
	if (wait_for(relay->pidfd, POLLIN, daemon_now_ms() + SETTLE_MS) != 1)
		return 0;
	char why[200];
	usbrelay_end(relay, why, sizeof(why));
	give_back_released(port);
	return err_set(e, "the guest did not keep the USB device at %s: %s; see the guest's log", port, why);
}

static struct usb_hold *hold_of(struct daemon *d, const char *port)
{
	for (int i = 0; i < DAEMON_MAX_USB; i++)
		if (d->usb[i].used && strcmp(d->usb[i].port, port) == 0)
			return &d->usb[i];
	return NULL;
}

const char *usbassign_holder(struct daemon *d, const char *port)
{
	const struct usb_hold *h = hold_of(d, port);
	return h ? h->vm : NULL;
}

/* The device at port as a fresh scan sees it, and whether vm may have it (an event says when
 * not). */
static int judge(struct daemon *d, const struct vmdef *def, const char *port, struct usb_device_info *out,
		 enum proto_code *code, struct err *e)
{
	static struct usb_device_info devs[USB_MAX_DEVICES];
	struct usb_policy host;
	bool have_host;
	unsigned n;
	*code = PROTO_ERROR;
	if (usbhost_policy(d, &host, &have_host, e) < 0 || usbscan_run(devs, USB_MAX_DEVICES, &n, e) < 0)
		return -1;
	unsigned i = 0;
	while (i < n && strcmp(devs[i].port, port) != 0)
		i++;
	if (i == n) {
		*code = PROTO_NOT_FOUND;
		return err_set(e, "no USB device at port %s; shoji usb list shows the host's", port);
	}
	*out = devs[i];
	struct usb_verdict v = usb_policy_decide(&def->policy.usb, have_host ? &host : NULL, def->name, out);
	if (!v.allowed) {
		*code = PROTO_REFUSED;
		events_add(d, def->name, "usb-refused", "%s %04x:%04x: %s", port, out->vid, out->pid, v.why);
		return err_set(e, "%s", v.why);
	}
	return 0;
}

/* What a VM must be to take a device: known and running (its monitor not just ended: its CID
 * would be free for anyone to take); vm_reachable then says whether it has a vsock CID. */
static int vm_ready(struct daemon *d, const char *name, struct vm_entry **vm, enum proto_code *code, struct err *e)
{
	*vm = vm_find(d, name, false);
	*code = PROTO_STATE;
	if (!*vm || !vm_active(*vm)) {
		if (!*vm)
			*code = PROTO_NOT_FOUND;
		return err_set(e, *vm ? "VM '%s' is not running; start it first" : "no VM named '%s'", name);
	}
	if ((*vm)->state != VM_RUNNING)
		return err_set(e, "VM '%s' is %s; give it USB devices once it runs", name, vm_state_name((*vm)->state));
	if (wait_for((*vm)->keeper_pidfd, POLLIN, 0) == 1)
		return err_set(e, "VM '%s' has just stopped", name);
	return 0;
}

static int vm_reachable(const struct vm_entry *vm, enum proto_code *code, struct err *e)
{
	*code = PROTO_STATE;
	if (!vm->vsock_cid)
		return err_set(e,
			       "VM '%s' has no vsock device, over which USB devices reach a guest; set "
			       "vsock-cid=auto and restart it",
			       vm->name);
	return 0;
}

int usbassign_attach(struct daemon *d, const char *name, const char *port, enum proto_code *code, struct err *e)
{
	static struct vmdef def;
	struct vm_entry *vm;
	struct usb_device_info dev;
	const struct usb_hold *held = hold_of(d, port);
	if (vm_ready(d, name, &vm, code, e) < 0)
		return -1;
	if (held)
		return *code = PROTO_STATE,
		       err_set(e, "the USB device at %s is %s; detach it first (shoji usb detach %s)", port,
			       strcmp(held->vm, name) ? "attached to another VM" : "already attached to it", port);
	if (vm_load_definition(d, name, &def, code, e) < 0 || judge(d, &def, port, &dev, code, e) < 0 ||
	    vm_reachable(vm, code, e) < 0) /* a refusal first: what no restart mends */
		return -1;
	*code = PROTO_ERROR;
	if (dev.speed == 0)
		return err_set(e, "the USB device at %s runs at a speed shoji cannot give a VM", port);
	int s = -1, slot = 0;
	while (slot < DAEMON_MAX_USB && d->usb[slot].used)
		slot++;
	if (slot == DAEMON_MAX_USB)
		return err_set(e, "%d USB devices are attached already; detach one first", DAEMON_MAX_USB);
	if (bind_usbip_host(&dev, e) < 0)
		return -1;
	uint8_t configs[USB_MAX_IFACES];
	unsigned nconfigs = configs_of(&dev, configs);
	struct usbrelay relay = {.pid = -1};
	int host_end = -1;
	if ((s = connect_guest(vm, e)) < 0 || handoff(s, vm, &dev, e) < 0 ||
	    usbrelay_start(&relay, s, dev.busnum << 16 | dev.devnum, configs, nconfigs, &host_end, e) < 0 ||
	    give_usbip_host(port, host_end, e) < 0) {
		usbrelay_end(&relay, NULL, 0);
		if (s >= 0)
			close(s);
		if (host_end >= 0)
			close(host_end);
		give_back(port);
		return -1;
	}
	close(s); /* the relay holds the guest's connection, usbip-host its own end */
	close(host_end);
	if (settled(&relay, port, e) < 0)
		return -1;
	struct usb_hold *h = &d->usb[slot];
	*h = (struct usb_hold){.used = true, .relay = relay, .vid = dev.vid, .pid = dev.pid, .devnum = dev.devnum};
	snprintf(h->port, sizeof(h->port), "%s", port);
	snprintf(h->vm, sizeof(h->vm), "%s", name);
	events_add(d, name, "usb-attach", "%s %04x:%04x %s", port, dev.vid, dev.pid, dev.product);
	return 0;
}

/* Ends h: usbip-host is told to let go (unless the connection is gone already), the relay is
 * ended, the device is given back to the host, and an event says why (the relay's own word when
 * why is NULL: it ended by itself). */
static void release(struct daemon *d, struct usb_hold *h, const char *why)
{
	char file[160], relay_why[200];
	snprintf(file, sizeof(file), BUS "/devices/%s/usbip_sockfd", h->port);
	if (device_number(h->port, "usbip_status") == 2)
		put(file, "-1", NULL);
	usbrelay_end(&h->relay, relay_why, sizeof(relay_why));
	give_back_released(h->port);
	bool unplugged = device_number(h->port, "devnum") != (long)h->devnum;
	events_add(d, h->vm, "usb-detach", "%s %04x:%04x: %s", h->port, h->vid, h->pid,
		   why                 ? why
			   : unplugged ? "unplugged"
				       : relay_why);
	*h = (struct usb_hold){.relay = {.pid = -1, .pidfd = -1, .why = -1}};
}

int usbassign_detach(struct daemon *d, const char *port, enum proto_code *code, struct err *e)
{
	struct usb_hold *h = hold_of(d, port);
	if (!h) {
		*code = PROTO_STATE;
		return err_set(e, "the USB device at %s is not attached to a VM", port);
	}
	release(d, h, "detached on request");
	return 0;
}

void usbassign_release_vm(struct daemon *d, const char *name)
{
	for (int i = 0; i < DAEMON_MAX_USB; i++)
		if (d->usb[i].used && strcmp(d->usb[i].vm, name) == 0)
			release(d, &d->usb[i], "the VM stopped");
}

int usbassign_pollfds(struct daemon *d, struct pollfd *fds, void **who, int room)
{
	int n = 0;
	for (int i = 0; i < DAEMON_MAX_USB && n < room; i++)
		if (d->usb[i].used) {
			fds[n] = (struct pollfd){.fd = d->usb[i].relay.pidfd, .events = POLLIN};
			who[n++] = &d->usb[i];
		}
	return n;
}

void usbassign_io(struct daemon *d, struct usb_hold *h)
{
	/* the slot may hold a newer attach since the poll (one made while serving this pass) */
	if (!h->used || wait_for(h->relay.pidfd, POLLIN, 0) != 1)
		return;
	/* A VM that dies resets its connections before its monitor's pidfd says so: a moment's
	 * wait tells its end from the guest letting go. */
	const struct vm_entry *vm = vm_find(d, h->vm, false);
	bool ended = !vm || !vm_active(vm) || wait_for(vm->monitor_pidfd, POLLIN, daemon_now_ms() + VM_END_MS) == 1;
	release(d, h, ended ? "the VM stopped" : NULL);
}

/* Whether the device at port has a driver yet (the kernel's generic USB driver takes it moments
 * after it appears), waiting up to PLUG_MS for one. */
static bool has_driver(const char *port)
{
	char link[160];
	struct stat st;
	snprintf(link, sizeof(link), BUS "/devices/%s/driver", port);
	for (long long end = daemon_now_ms() + PLUG_MS;; usleep(20000)) {
		if (lstat(link, &st) == 0)
			return true;
		if (daemon_now_ms() >= end)
			return false;
	}
}

void usbassign_plugged(struct daemon *d, const char *port)
{
	static struct vmdef def;
	struct usb_policy host;
	bool have_host;
	enum proto_code code;
	struct err e;
	const struct vm_entry *vm = d->focus[0] ? vm_find(d, d->focus, false) : NULL;
	if (!vm || !vm_active(vm) || vm->state != VM_RUNNING)
		return; /* the seat shows no VM that runs */
	if (vm_load_definition(d, d->focus, &def, &code, &e) < 0 || usbhost_policy(d, &host, &have_host, &e) < 0) {
		log_warn("USB %s plugged in: %s", port, e.msg);
		return;
	}
	if (!usb_policy_auto_focused(&def.policy.usb, have_host ? &host : NULL))
		return;
	if (!has_driver(port))
		log_warn("USB %s: no host driver took it within %d ms; attaching it all the same", port, PLUG_MS);
	if (usbassign_attach(d, d->focus, port, &code, &e) < 0 && code != PROTO_REFUSED) /* a refusal is its event */
		events_add(d, d->focus, "usb-attach-failed", "%s: %s", port, e.msg);
}

void usbassign_unplugged(struct daemon *d, const char *port, unsigned devnum)
{
	struct usb_hold *h = hold_of(d, port);
	if (h && h->devnum == devnum) /* not a device plugged there since */
		release(d, h, "unplugged");
}
