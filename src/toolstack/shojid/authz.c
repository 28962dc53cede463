/* authz: who may do what through shojid's API, decided in one place before a request is
 * handled. Root and the daemon's own uid may do everything. A member of the group acts on the
 * VMs it created (their owner, recorded in state.json); VMs from before owners were recorded
 * are root's. The seat's user (--seat-user) also sees every VM that has a display and may take
 * their displays (to show them and send them the user's input) and move the clipboard between
 * them (the user's copy and paste), but acts on none it does not own. Nobody else takes a
 * display, moves a clipboard or moves a USB device between the host and a VM: the devices
 * plugged into the PC are the user's at the seat (a VM owner could otherwise take the seat's
 * keyboard into a VM whose policy it writes). Main thread. */
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include "daemon.h"

bool authz_privileged(const struct daemon *d, uid_t uid)
{
	(void)d;
	return uid == 0 || uid == geteuid();
}

uid_t authz_owner(struct daemon *d, const char *name)
{
	const struct vm_entry *vm = vm_find(d, name, false);
	return vm ? vm->owner : 0;
}

bool authz_owns(struct daemon *d, uid_t uid, const char *name)
{
	return authz_privileged(d, uid) || authz_owner(d, name) == uid;
}

static bool has_display(struct daemon *d, const char *name)
{
	struct vmdef def;
	enum proto_code code;
	struct err e;
	return vm_load_definition(d, name, &def, &code, &e) == 0 && def.display;
}

bool authz_is_seat(const struct daemon *d, uid_t uid)
{
	return authz_privileged(d, uid) || (d->have_seat_user && uid == d->seat_uid);
}

bool authz_may_see(struct daemon *d, uid_t uid, const char *name)
{
	return authz_owns(d, uid, name) || (authz_is_seat(d, uid) && has_display(d, name));
}

/* What a command needs of its caller. */
enum need { NEED_MEMBER, NEED_OWNER, NEED_SEAT, NEED_OWNER_IF_NAMED };

static enum need need_of(enum proto_cmd cmd)
{
	switch (cmd) {
	case PROTO_INFO:
	case PROTO_DEFINITION:
	case PROTO_REPLACE:
	case PROTO_SET:
	case PROTO_DELETE:
	case PROTO_START:
	case PROTO_STOP:
	case PROTO_KILL:
	case PROTO_PAUSE:
	case PROTO_RESUME:
	case PROTO_CONSOLE:
	case PROTO_LOGS:
	case PROTO_SNAPSHOT_CREATE:
	case PROTO_SNAPSHOT_LIST:
	case PROTO_SNAPSHOT_REVERT:
	case PROTO_SNAPSHOT_DELETE: return NEED_OWNER;
	case PROTO_EVENTS:
	case PROTO_USB_LIST: return NEED_OWNER_IF_NAMED;
	case PROTO_DISPLAY:
	case PROTO_CLIPBOARD:
	case PROTO_CLIPBOARD_COPY:
	case PROTO_CLIPBOARD_PASTE:
	case PROTO_CLIPBOARD_CLEAR:
	case PROTO_USB_ATTACH:
	case PROTO_USB_DETACH:
	case PROTO_SEAT_FOCUS: return NEED_SEAT;
	default: return NEED_MEMBER; /* ping, list and net (filtered), create, run, templates */
	}
}

int authz_check(struct daemon *d, const struct client *c, const struct proto_request *r, enum proto_code *code,
		struct err *e)
{
	if (authz_privileged(d, c->uid))
		return 0;
	enum need n = need_of(r->cmd);
	*code = PROTO_PERMISSION;
	if (n == NEED_SEAT) {
		if (authz_is_seat(d, c->uid))
			return 0;
		return err_set(e, "only the seat's user (shojid --seat-user) or root may %s; uid %u is neither",
			       r->cmd == PROTO_DISPLAY ? "take a VM's display"
				       : r->cmd == PROTO_USB_ATTACH || r->cmd == PROTO_USB_DETACH
				       ? "move the PC's USB devices between the host and VMs"
				       : r->cmd == PROTO_SEAT_FOCUS ? "say which VM the seat shows"
								    : "move the clipboard between VMs",
			       (unsigned)c->uid);
	}
	if (n == NEED_MEMBER || (n == NEED_OWNER_IF_NAMED && !r->name[0]) || !vm_find(d, r->name, false))
		return 0; /* a VM shojid does not know is answered "not found" by the handler */
	if (authz_owns(d, c->uid, r->name))
		return 0;
	return err_set(e, "VM '%s' belongs to uid %u; only its owner or root may %s it", r->name,
		       (unsigned)authz_owner(d, r->name), proto_cmd_name(r->cmd));
}
