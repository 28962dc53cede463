/* usbassign: which VM holds which USB device, and the moves between the host and a VM
 * (common/usbip_handoff.h). An attach judges the device as a fresh scan sees it under the VM's
 * policy and the host's, opens its usbfs node, connects from a privileged port to the guest
 * agent's USB port on the VM's vsock CID, and, once the agent says it takes the device, starts
 * the jailed exporter (usbexport.c) with the guest's connection and the device: it takes the
 * device's interfaces from their host drivers and serves the guest's USB/IP from userspace
 * (usb/usb_libusb.c), so the host kernel sees only usbfs calls, never the guest's words.
 *
 * A device goes back to the host when the user detaches it, when its VM stops, when the
 * exporter ends (the guest let go or broke a rule, or the device went) and when it is
 * unplugged: the exporter is ended, which lets go of the device, and the host's drivers are
 * offered its interfaces again. An event says which.
 *
 * The sysfs files written are the kernel's, under /sys/bus/usb, named by a port that passed
 * usb_port_ok; nothing a device or a guest wrote is read here (the scan's child and the
 * exporter read those), save the agent's one-byte answer, looked up in a table.
 * All on shojid's one thread. An attach's checks run at once (a fresh scan, and for a device just
 * plugged in up to PLUG_MS for the host to configure it); the hand-over, which waits on the
 * guest, goes step by step from shojid's loop (struct usb_hold's step), so that a guest whose
 * agent is slow or never answers holds up only its own attach, never shojid's other callers. */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <linux/usbdevice_fs.h>
#include <linux/vm_sockets.h>
#include <poll.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <unistd.h>

#include "../../common/log.h"
#include "../../common/usbip_handoff.h"
#include "../../usb/usb_sysfs.h"
#include "../statefile.h"
#include "daemon.h"

#define BUS       "/sys/bus/usb"
#define SETTLE_MS 300  /* an attach stands this long before it is reported done */
#define VM_END_MS 200  /* for a VM's monitor to be seen ended once its connection was reset */
#define PLUG_MS   1000 /* for the host's driver to take a device just plugged in */

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

/* The usbfs node of device devnum on bus busnum. */
static void usbfs_node(unsigned busnum, unsigned devnum, char node[40])
{
	snprintf(node, 40, "/dev/bus/usb/%03u/%03u", busnum, devnum);
}

/* Calls fn with each interface of the device at port, as sysfs lists it under the device ("1-2:1.0"),
 * until fn returns true: whether one did. */
static bool each_interface(const char *port, bool (*fn)(const char *iface, void *ctx), void *ctx)
{
	char dir[96], prefix[USB_PORT_MAX + 2];
	snprintf(dir, sizeof(dir), BUS "/devices/%s", port);
	snprintf(prefix, sizeof(prefix), "%s:", port);
	DIR *dp = opendir(dir);
	struct dirent *de;
	bool done = false;
	while (dp && !done && (de = readdir(dp)))
		done = strncmp(de->d_name, prefix, strlen(prefix)) == 0 && fn(de->d_name, ctx);
	if (dp)
		closedir(dp);
	return done;
}

static bool offer_to_host(const char *iface, void *ctx)
{
	struct err e;
	if (put(BUS "/drivers_probe", iface, &e) < 0)
		log_warn("USB %s: %s; it has no host driver now (replug it)", (const char *)ctx, e.msg);
	return false;
}

/* Gives the device at port (numbered busnum, devnum when it was taken) back to the host: reset,
 * since the guest may have left it in any state (as usbip's own exporter does), then offered to
 * the host's drivers interface by interface (its exporter had them; the kernel does not offer
 * them by itself): each interface's name written to drivers_probe. What fails is logged; a
 * device unplugged meanwhile is left be. */
static void give_back(const char *port, unsigned busnum, unsigned devnum)
{
	char node[40];
	if (usb_sysfs_number(port, "devnum") != (long)devnum)
		return; /* gone, or another device there now */
	usbfs_node(busnum, devnum, node);
	int fd = open(node, O_RDWR | O_CLOEXEC | O_NOFOLLOW | O_NOCTTY);
	if (fd < 0 || ioctl(fd, USBDEVFS_RESET, 0) < 0)
		log_warn("USB %s: cannot reset it (%s): %s", port, node, strerror(errno));
	if (fd >= 0)
		close(fd);
	each_interface(port, offer_to_host, (void *)port);
}

/* Whether iface's driver (its sysfs link, which the kernel makes) is usbfs: a program holds it;
 * its name then goes to ctx (64 bytes). */
static bool claimed_through_usbfs(const char *iface, void *ctx)
{
	char link[300], target[128];
	snprintf(link, sizeof(link), BUS "/devices/%s/driver", iface);
	ssize_t n = readlink(link, target, sizeof(target) - 1);
	target[n > 0 ? n : 0] = '\0';
	const char *base = strrchr(target, '/') ? strrchr(target, '/') + 1 : target;
	if (n <= 0 || strcmp(base, "usbfs") != 0)
		return false;
	snprintf(ctx, 64, "%.63s", iface);
	return true;
}

/* Whether another program on the host holds one of the device's interfaces through usbfs; the
 * first such interface's name in which. */
static bool held_through_usbfs(const char *port, char which[64])
{
	which[0] = '\0';
	return each_interface(port, claimed_through_usbfs, which);
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

static const char *no_agent = "VM '%s' does not take USB devices: no shoji-agent answers on its vsock port %u (is the "
			      "guest up, with shoji-agent running?)";

/* A connection begun from one of the host's privileged ports (the agent believes only those) to
 * the guest agent's USB port: the socket (non-blocking), writable once connected. */
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
	struct sockaddr_vm to = {.svm_family = AF_VSOCK, .svm_cid = vm->vsock_cid, .svm_port = USBIP_VSOCK_PORT};
	if (connect(s, (struct sockaddr *)&to, sizeof(to)) == 0 || errno == EINPROGRESS)
		return s;
	int en = errno;
	close(s);
	return err_errno(e, en, no_agent, vm->name, USBIP_VSOCK_PORT);
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

/* The holds whose exporter has the device, one line each ("PORT BUSNUM DEVNUM VVVV PPPP VM"), in
 * the runtime directory, so that a shojid started again gives back what one that stopped had
 * given (its exporters ended with it); written whole on each change. */
static void save_holds(struct daemon *d)
{
	char path[PATHS_MAX + 16], text[DAEMON_MAX_USB * (USB_PORT_MAX + VMDEF_NAME_MAX + 40)];
	size_t len = 0;
	for (int i = 0; i < DAEMON_MAX_USB; i++) {
		const struct usb_hold *h = &d->usb[i];
		if (h->used && (h->step == USB_HELD || h->step == USB_SETTLING)) /* the exporter has it */
			len += (size_t)snprintf(text + len, sizeof(text) - len, "%s %u %u %04x %04x %s\n", h->port,
						h->busnum, h->devnum, h->vid, h->pid, h->vm);
	}
	struct err e;
	if (paths_get(&d->paths, PATHS_USB_HOLDS, NULL, path, sizeof(path), &e) < 0 ||
	    statefile_write(path, text, len, false, &e) < 0)
		log_warn("USB: cannot record the devices given to VMs: %s", e.msg);
}

/* Whether the device at port is configured yet (the host's generic driver chooses a configuration
 * moments after it appears), waiting up to PLUG_MS. */
static bool configured(const char *port)
{
	for (long long end = daemon_now_ms() + PLUG_MS;; usleep(20000)) {
		if (usb_sysfs_number(port, "bConfigurationValue") > 0)
			return true;
		if (daemon_now_ms() >= end)
			return false;
	}
}

/* A device just plugged in, judged: never an input device (the user gives one by hand), and only
 * once it is configured (its exporter serves the configuration the host chose). */
static int plugged_ok(struct daemon *d, const char *vm, const struct usb_device_info *dev, enum proto_code *code,
		      struct err *e)
{
	if (usb_device_has_class(dev, USB_CLASS_HID)) {
		*code = PROTO_REFUSED;
		err_set(e,
			"an input device goes to a VM only by the user's act (shoji usb attach), never when "
			"plugged in");
		events_add(d, vm, "usb-refused", "%s %04x:%04x: %s", dev->port, dev->vid, dev->pid, e->msg);
		return -1;
	}
	if (!configured(dev->port))
		return err_set(e, "the USB device at %s was not configured by the host within %d ms", dev->port,
			       PLUG_MS);
	return 0;
}

/* Everything an attach checks before it touches the device: the VM, the device's holder, the
 * verdict (a refusal first: what no restart mends), the VM's vsock, the speed, a free slot.
 * The slot's index, or -1 with code and e. */
static int attach_checks(struct daemon *d, const char *name, const char *port, bool plugged, struct vm_entry **vm,
			 struct usb_device_info *dev, enum proto_code *code, struct err *e)
{
	static struct vmdef def;
	const struct usb_hold *held = hold_of(d, port);
	if (vm_ready(d, name, vm, code, e) < 0)
		return -1;
	if (held && held->step != USB_HELD)
		return *code = PROTO_STATE,
		       err_set(e, "the USB device at %s is being given to VM '%s'; wait for that to end", port,
			       held->vm);
	if (held)
		return *code = PROTO_STATE,
		       err_set(e, "the USB device at %s is %s; detach it first (shoji usb detach %s)", port,
			       strcmp(held->vm, name) ? "attached to another VM" : "already attached to it", port);
	if (vm_load_definition(d, name, &def, code, e) < 0 || judge(d, &def, port, dev, code, e) < 0 ||
	    (plugged && plugged_ok(d, name, dev, code, e) < 0) || vm_reachable(*vm, code, e) < 0)
		return -1;
	*code = PROTO_ERROR;
	char iface[64];
	if (held_through_usbfs(port, iface))
		return *code = PROTO_STATE,
		       err_set(e,
			       "the USB device at %s is in use by a program on the host (its "
			       "interface %s is claimed through usbfs); end that first",
			       port, iface);
	if (dev->speed == 0)
		return err_set(e, "the USB device at %s runs at a speed shoji cannot give a VM", port);
	int slot = 0;
	while (slot < DAEMON_MAX_USB && d->usb[slot].used)
		slot++;
	if (slot == DAEMON_MAX_USB)
		return err_set(e, "%d USB devices are attached already; detach one first", DAEMON_MAX_USB);
	return slot;
}

static void free_slot(struct usb_hold *h)
{
	*h = (struct usb_hold){.exporter = {.pid = -1, .pidfd = -1, .why = -1}, .sock = -1};
}

/* The attach under way in h did not get there (msg says why): what it had begun is undone (the
 * exporter, which has the device while SETTLING, ended and the device given back), its caller
 * told, a plug's attach an event. */
static void attach_failed(struct daemon *d, struct usb_hold *h, enum proto_code code, const char *msg)
{
	bool taken = h->step == USB_SETTLING;
	struct client *waiter = h->waiter;
	if (h->sock >= 0)
		close(h->sock);
	if (taken) {
		usbexport_end(&h->exporter, NULL, 0); /* nothing when it has ended already */
		give_back(h->port, h->busnum, h->devnum);
	}
	if (h->plugged)
		events_add(d, h->vm, "usb-attach-failed", "%s: %s", h->port, msg);
	else if (!waiter)
		log_warn("USB %s to %s: %s", h->port, h->vm, msg);
	free_slot(h);
	if (taken)
		save_holds(d);
	client_answer_error(d, &waiter, code, msg);
}

static void attach_failedf(struct daemon *d, struct usb_hold *h, const char *fmt, ...)
	__attribute__((format(printf, 3, 4)));
static void attach_failedf(struct daemon *d, struct usb_hold *h, const char *fmt, ...)
{
	char msg[sizeof(((struct err *)0)->msg)];
	va_list ap;
	va_start(ap, fmt);
	vsnprintf(msg, sizeof(msg), fmt, ap);
	va_end(ap);
	attach_failed(d, h, PROTO_ERROR, msg);
}

static void next_step(struct usb_hold *h, enum usb_step step, int ms)
{
	h->step = step;
	h->deadline_ms = daemon_now_ms() + ms;
}

/* CONNECTING: connected (or refused): the request goes to the agent. */
static void connected(struct daemon *d, struct usb_hold *h)
{
	int en = 0;
	socklen_t len = sizeof(en);
	if (wait_for(h->sock, POLLOUT, 0) != 1)
		return; /* not yet (the slot was taken again since the poll) */
	if (getsockopt(h->sock, SOL_SOCKET, SO_ERROR, &en, &len) < 0)
		en = errno;
	if (en)
		return attach_failedf(d, h, no_agent, h->vm, USBIP_VSOCK_PORT);
	uint8_t req[USBIP_REQ_SIZE];
	usbip_req_encode(req, h->busnum << 16 | h->devnum, h->speed);
	if (send(h->sock, req, sizeof(req), MSG_NOSIGNAL | MSG_DONTWAIT) != (ssize_t)sizeof(req))
		return attach_failedf(d, h, "VM '%s': cannot send the USB request to its agent (%s)", h->vm,
				      strerror(errno));
	next_step(h, USB_ASKING, USBIP_ANSWER_MS);
}

/* ASKING: the agent's one-byte answer; when it takes the device, the exporter starts with the
 * guest's connection. */
static void answered(struct daemon *d, struct usb_hold *h)
{
	uint8_t answer;
	ssize_t n = recv(h->sock, &answer, 1, MSG_DONTWAIT);
	if (n < 0 && (errno == EAGAIN || errno == EINTR))
		return;
	if (n <= 0)
		return attach_failedf(d, h,
				      "VM '%s': its agent closed the USB request without an answer (an old agent, "
				      "or it did not believe this host; see the guest's log)",
				      h->vm);
	if (answer != USBIP_TAKING)
		return attach_failedf(d, h, "VM '%s' did not take the USB device: %s", h->vm,
				      usbip_answer_text(answer));
	struct usbexport_device xd = {h->port, h->busnum, h->devnum};
	struct err e;
	int r = usbexport_start(&h->exporter, h->sock, &xd, h->configs, h->nconfigs, &e);
	close(h->sock); /* the exporter holds the guest's connection, or nobody does */
	h->sock = -1;
	if (r < 0)
		return attach_failed(d, h, PROTO_ERROR, e.msg);
	next_step(h, USB_SETTLING, SETTLE_MS);
	save_holds(d); /* the exporter has the device: a shojid that stops now gives it back */
}

/* SETTLING: a guest whose vhci-hcd refuses the device closes the connection at once, so the
 * exporter ended: the device was not kept (the attach fails, saying why). Whether it had. */
static bool not_kept(struct daemon *d, struct usb_hold *h)
{
	if (wait_for(h->exporter.pidfd, POLLIN, 0) != 1)
		return false;
	char why[200];
	usbexport_end(&h->exporter, why, sizeof(why));
	attach_failedf(d, h, "the USB device at %s was not kept: %s; see the guest's log and shojid's", h->port, why);
	return true;
}

/* SETTLING for SETTLE_MS with the exporter serving: attached. */
static void attached(struct daemon *d, struct usb_hold *h)
{
	h->step = USB_HELD;
	save_holds(d);
	events_add(d, h->vm, "usb-attach", "%s %04x:%04x %s%s", h->port, h->vid, h->pid, h->product,
		   h->plugged ? " (when plugged in)" : "");
	client_answer(d, &h->waiter, json_tokener_parse("{\"ok\":true}"));
}

/* The checks, then the connection to the agent begun in a slot of its own, which the loop
 * takes on from there; c (NULL: none) parked on it. */
static int attach(struct daemon *d, const char *name, const char *port, bool plugged, struct client *c,
		  enum proto_code *code, struct err *e)
{
	struct vm_entry *vm;
	struct usb_device_info dev;
	int slot = attach_checks(d, name, port, plugged, &vm, &dev, code, e);
	if (slot < 0)
		return -1;
	int s = connect_guest(vm, e);
	if (s < 0)
		return -1;
	struct usb_hold *h = &d->usb[slot];
	free_slot(h);
	h->used = true;
	h->sock = s;
	h->waiter = c;
	h->plugged = plugged;
	h->vid = dev.vid;
	h->pid = dev.pid;
	h->busnum = dev.busnum;
	h->devnum = dev.devnum;
	h->speed = dev.speed;
	h->nconfigs = configs_of(&dev, h->configs);
	snprintf(h->port, sizeof(h->port), "%s", port);
	snprintf(h->vm, sizeof(h->vm), "%s", name);
	snprintf(h->product, sizeof(h->product), "%s", dev.product);
	next_step(h, USB_CONNECTING, USBIP_CONNECT_MS);
	return 0;
}

int usbassign_attach(struct daemon *d, const char *name, const char *port, struct client *c, enum proto_code *code,
		     struct err *e)
{
	return attach(d, name, port, false, c, code, e);
}

/* Ends h: the exporter is ended (which lets go of the device), the device is given back to the
 * host's drivers, and an event says why (the exporter's own word when why is NULL: it ended by
 * itself). */
static void release(struct daemon *d, struct usb_hold *h, const char *why)
{
	char ended[200];
	usbexport_end(&h->exporter, ended, sizeof(ended));
	bool unplugged = usb_sysfs_number(h->port, "devnum") != (long)h->devnum;
	give_back(h->port, h->busnum, h->devnum);
	events_add(d, h->vm, "usb-detach", "%s %04x:%04x: %s", h->port, h->vid, h->pid,
		   why                 ? why
			   : unplugged ? "unplugged"
				       : ended);
	free_slot(h);
	save_holds(d);
}

/* h ends, whatever its step: released when attached, else its attach failed with why. */
static void end_hold(struct daemon *d, struct usb_hold *h, const char *why)
{
	if (h->step == USB_HELD)
		release(d, h, why);
	else
		attach_failedf(d, h, "the USB device at %s was not given to VM '%s': %s", h->port, h->vm, why);
}

int usbassign_detach(struct daemon *d, const char *port, enum proto_code *code, struct err *e)
{
	struct usb_hold *h = hold_of(d, port);
	if (!h) {
		*code = PROTO_STATE;
		return err_set(e, "the USB device at %s is not attached to a VM", port);
	}
	end_hold(d, h, "detached on request");
	return 0;
}

void usbassign_release_vm(struct daemon *d, const char *name)
{
	for (int i = 0; i < DAEMON_MAX_USB; i++)
		if (d->usb[i].used && strcmp(d->usb[i].vm, name) == 0)
			end_hold(d, &d->usb[i], "the VM stopped");
}

int usbassign_pollfds(struct daemon *d, struct pollfd *fds, void **who, int room)
{
	int n = 0;
	for (int i = 0; i < DAEMON_MAX_USB && n < room; i++) {
		const struct usb_hold *h = &d->usb[i];
		if (!h->used)
			continue;
		if (h->step == USB_CONNECTING || h->step == USB_ASKING)
			fds[n] = (struct pollfd){.fd = h->sock, .events = h->step == USB_ASKING ? POLLIN : POLLOUT};
		else
			fds[n] = (struct pollfd){.fd = h->exporter.pidfd, .events = POLLIN};
		who[n++] = &d->usb[i];
	}
	return n;
}

bool usbassign_busy(const struct daemon *d)
{
	for (int i = 0; i < DAEMON_MAX_USB; i++)
		if (d->usb[i].used && d->usb[i].step != USB_HELD)
			return true;
	return false;
}

void usbassign_tick(struct daemon *d)
{
	long long now = daemon_now_ms();
	for (int i = 0; i < DAEMON_MAX_USB; i++) {
		struct usb_hold *h = &d->usb[i];
		if (!h->used || h->step == USB_HELD || now < h->deadline_ms)
			continue;
		if (h->step == USB_CONNECTING)
			attach_failedf(d, h, no_agent, h->vm, USBIP_VSOCK_PORT);
		else if (h->step == USB_ASKING)
			attach_failedf(d, h, "VM '%s': its agent did not answer the USB request within %d ms", h->vm,
				       USBIP_ANSWER_MS);
		else if (!not_kept(d, h))
			attached(d, h);
	}
}

void usbassign_forget(struct daemon *d, const struct client *c)
{
	for (int i = 0; i < DAEMON_MAX_USB; i++)
		if (d->usb[i].waiter == c)
			d->usb[i].waiter = NULL;
}

void usbassign_io(struct daemon *d, struct usb_hold *h)
{
	/* the slot may hold a newer attach since the poll (one made while serving this pass): each
	 * step looks again */
	if (!h->used)
		return;
	if (h->step == USB_CONNECTING)
		return connected(d, h);
	if (h->step == USB_ASKING)
		return answered(d, h);
	if (h->step == USB_SETTLING) {
		not_kept(d, h);
		return;
	}
	if (wait_for(h->exporter.pidfd, POLLIN, 0) != 1)
		return;
	/* A VM that dies resets its connections before its monitor's pidfd says so: a moment's
	 * wait tells its end from the guest letting go. */
	const struct vm_entry *vm = vm_find(d, h->vm, false);
	bool ended = !vm || !vm_active(vm) || wait_for(vm->monitor_pidfd, POLLIN, daemon_now_ms() + VM_END_MS) == 1;
	release(d, h, ended ? "the VM stopped" : NULL);
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
	/* A VM's owner writes its usb-auto: only the seat's user's VMs and root's take what the
	 * user plugs in (another member's VM in front could otherwise catch a security key). */
	if (!authz_is_seat(d, authz_owner(d, d->focus))) {
		log_info("USB %s plugged in: not given to %s, which is neither root's nor the seat user's", port,
			 d->focus);
		return;
	}
	if (attach(d, d->focus, port, true, NULL, &code, &e) < 0 && code != PROTO_REFUSED) /* a refusal is its event */
		events_add(d, d->focus, "usb-attach-failed", "%s: %s", port, e.msg);
}

void usbassign_unplugged(struct daemon *d, const char *port, unsigned devnum)
{
	struct usb_hold *h = hold_of(d, port);
	if (h && h->devnum == devnum) /* not a device plugged there since */
		end_hold(d, h, "unplugged");
}

void usbassign_release_all(struct daemon *d, const char *why)
{
	for (int i = 0; i < DAEMON_MAX_USB; i++)
		if (d->usb[i].used)
			end_hold(d, &d->usb[i], why);
}

/* One line of the record a shojid that stopped left: the device given back if it is still the
 * one it had (its number unchanged), with an event for its VM. */
static void recover_one(struct daemon *d, const char *line)
{
	char port[USB_PORT_MAX], vm[VMDEF_NAME_MAX + 1];
	unsigned busnum, devnum, vid, pid;
	if (sscanf(line, "%31s %u %u %4x %4x %32s", port, &busnum, &devnum, &vid, &pid, vm) != 6 ||
	    !usb_port_ok(port) || !vmdef_name_ok(vm) || busnum == 0 || busnum > 255 || devnum == 0 || devnum > 127)
		return;
	if (usb_sysfs_number(port, "devnum") != (long)devnum)
		return; /* unplugged meanwhile: the host has it as a new device */
	give_back(port, busnum, devnum);
	events_add(d, vm, "usb-detach", "%s %04x:%04x: shojid stopped while the VM held it", port, vid, pid);
}

void usbassign_recover(struct daemon *d)
{
	char path[PATHS_MAX + 16], *text = NULL;
	size_t len;
	int en;
	struct err e;
	if (paths_get(&d->paths, PATHS_USB_HOLDS, NULL, path, sizeof(path), &e) < 0 ||
	    statefile_read(path, 64u << 10, &text, &len, &en, &e) < 0)
		return; /* none recorded */
	for (char *save = NULL, *line = strtok_r(text, "\n", &save); line; line = strtok_r(NULL, "\n", &save))
		recover_one(d, line);
	free(text);
	save_holds(d); /* none now */
}
