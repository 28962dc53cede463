/* api: what each shojid request does. Requests arrive parsed and checked (proto.c); replies are
 * {"ok":true,...} or an error with a code the CLI turns into its exit status. */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <unistd.h>

#include "../../common/rpc.h"
#include "../agentview.h"
#include "../statefile.h"
#include "daemon.h"

static struct json_object *ok_object(void)
{
	struct json_object *o = json_object_new_object();
	json_object_object_add(o, "ok", json_object_new_boolean(1));
	return o;
}

static void add_str(struct json_object *o, const char *k, const char *v)
{
	json_object_object_add(o, k, json_object_new_string(v));
}

static void add_int(struct json_object *o, const char *k, int64_t v)
{
	json_object_object_add(o, k, json_object_new_int64(v));
}

static int vm_path(struct daemon *d, enum paths_file f, const char *name, char *buf, size_t size)
{
	return paths_get(&d->paths, f, name, buf, size, NULL);
}

/* The VM's summary: definition facts and run state; for a VM with a display, its display
 * socket, which the seat connects to. */
static struct json_object *summary(struct daemon *d, const char *name)
{
	struct json_object *o = json_object_new_object();
	struct vmdef *def = malloc(sizeof(*def));
	enum proto_code code;
	struct err e;
	struct vm_entry *vm = vm_find(d, name, false);
	add_str(o, "name", name);
	add_str(o, "state", vm ? vm_state_name(vm->state) : "stopped");
	if (vm && vm->monitor)
		add_int(o, "pid", vm->monitor);
	if (def && vm_load_definition(d, name, def, &code, &e) == 0) {
		add_int(o, "memory_mib", def->memory_mib);
		add_int(o, "cpus", def->cpus);
		add_str(o, "label", def->label);
		add_str(o, "firmware", def->firmware[0] ? def->firmware : "none");
		add_str(o, "boot", vmdef_boot_of(def) == VMDEF_BOOT_DISK ? "disk" : "kernel");
		char vars[512];
		if (def->firmware[0] && vm && fwvars_path(d, vm, vars, sizeof(vars), NULL) == 0)
			add_str(o, "firmware_vars", vars); /* the VM's own store */
		json_object_object_add(o, "display", json_object_new_boolean(def->display));
		if (def->display) {
			char p[512];
			if (vm_path(d, PATHS_DISPLAY, name, p, sizeof(p)) == 0)
				add_str(o, "display_socket", p);
		}
		json_object_object_add(o, "autostart", json_object_new_boolean(def->autostart));
		add_int(o, "disks", def->ndisks);
		add_int(o, "nics", def->nnics);
		/* the CID the guest agent is reached at: a running VM's own, else the definition's */
		uint32_t cid = vm && vm_active(vm) ? vm->vsock_cid : def->vsock_cid;
		if (cid)
			add_int(o, "vsock_cid", cid);
		if (def->vsock_auto)
			json_object_object_add(o, "vsock_auto", json_object_new_boolean(true));
	} else {
		add_str(o, "error", def ? e.msg : "out of memory");
	}
	if (vm && vm->last_exit[0])
		add_str(o, "last_exit", vm->last_exit);
	if (vm && vm->jail_assigned)
		add_int(o, "jail_uid", vm->jail_uid);
	if (vm && vm->net_assigned)
		add_int(o, "net_uid", vm->net_uid);
	add_int(o, "owner", authz_owner(d, name));
	free(def);
	return o;
}

struct list_ctx {
	struct json_object *arr;
	uid_t viewer;
};

static void list_one(struct daemon *d, const char *name, void *arg)
{
	struct list_ctx *l = arg;
	if (authz_may_see(d, l->viewer, name))
		json_object_array_add(l->arr, summary(d, name));
}

/* The VMs the caller may see: all for root, its own for a member, and for the seat's user
 * also every VM with a display. */
static struct json_object *do_list(struct daemon *d, uid_t viewer)
{
	struct list_ctx l = {json_object_new_array(), viewer};
	struct json_object *o = ok_object();
	vm_each_defined(d, list_one, &l);
	json_object_object_add(o, "vms", l.arr);
	if (authz_is_seat(d, viewer)) { /* what the seat's bar shows as held */
		struct json_object *clip = clipboard_status(d);
		json_object_object_del(clip, "ok");
		json_object_object_add(o, "clipboard", clip);
	}
	return o;
}

/* The last `bytes` of a log kept in two parts (older: PATH.1, rotated by its writer). */
static void add_tail(struct json_object *o, const char *key, const char *older, const char *file, long bytes)
{
	size_t len = 0, olen = 0;
	char *t = statefile_tail(file, (size_t)bytes, &len);
	char *ot = len < (size_t)bytes ? statefile_tail(older, (size_t)bytes - len, &olen) : NULL;
	char *all = malloc(olen + len + 1);
	if (all) {
		if (olen)
			memcpy(all, ot, olen);
		if (len)
			memcpy(all + olen, t, len);
	}
	json_object_object_add(o, key, json_object_new_string_len(all ? all : "", all ? (int)(olen + len) : 0));
	free(all);
	free(ot);
	free(t);
}

static int exists(struct daemon *d, const char *name, enum proto_code *code, struct err *e)
{
	char file[512];
	vm_path(d, PATHS_DEFINITION, name, file, sizeof(file));
	if (access(file, F_OK) == 0)
		return 0;
	*code = PROTO_NOT_FOUND;
	return err_set(e, "there is no VM '%s'; see 'shoji list' or create it", name);
}

static struct json_object *do_info(struct daemon *d, const char *name, enum proto_code *code, struct err *e)
{
	if (exists(d, name, code, e) < 0)
		return NULL;
	struct json_object *o = ok_object(), *s = summary(d, name);
	struct vm_entry *vm = vm_find(d, name, false);
	char p[512];
	struct err sub;
	if (vm && (vm->state == VM_RUNNING || vm->state == VM_PAUSED)) {
		struct json_object *st, *v;
		if (vm_control(d, vm, CONTROL_STATUS, &st, &sub) == 0) {
			if (json_object_object_get_ex(st, CONTROL_R_UPTIME_S, &v) &&
			    (json_object_is_type(v, json_type_double) || json_object_is_type(v, json_type_int)))
				json_object_object_add(s, "uptime_s",
						       json_object_new_double(json_object_get_double(v)));
			struct json_object *agent = agent_view(st);
			if (agent)
				json_object_object_add(s, "agent", agent);
			json_object_put(st);
		}
	}
	vm_path(d, PATHS_DEFINITION, name, p, sizeof(p));
	add_str(s, "definition", p);
	vm_path(d, PATHS_SERIAL_LOG, name, p, sizeof(p));
	add_str(s, "serial_log", p);
	vm_path(d, PATHS_SERIAL, name, p, sizeof(p));
	add_str(s, "serial_socket", p);
	vm_path(d, PATHS_CONTROL, name, p, sizeof(p));
	add_str(s, "control_socket", p);
	if (vm)
		cgroup_describe(vm, s);
	json_object_object_add(o, "vm", s);
	json_object_object_add(o, "events", events_recent(d, name, 10, 0));
	return o;
}

static int write_definition(struct daemon *d, const char *name, const char *text, bool create, enum proto_code *code,
			    struct err *e)
{
	char file[512], dir[512];
	struct vmdef *def = malloc(sizeof(*def));
	if (!def)
		return err_set(e, "out of memory");
	vm_path(d, PATHS_DEFINITION, name, file, sizeof(file));
	int r = vmdef_parse(text, file, def, e);
	if (r == 0 && strcmp(def->name, name))
		r = err_set(e, "the definition names the VM '%s', not '%s'; make them the same", def->name, name);
	if (r == 0 && !create && access(file, F_OK) < 0)
		r = exists(d, name, code, e);
	free(def);
	if (r < 0)
		return -1;
	vm_path(d, PATHS_VMS, NULL, dir, sizeof(dir));
	mkdir(dir, 0750);
	struct err sub;
	if (statefile_write(file, text, strlen(text), create, &sub) < 0) {
		if (create && errno == EEXIST)
			return *code = PROTO_EXISTS,
			       err_set(e,
				       "VM '%s' already exists; pick another name "
				       "or delete it first",
				       name);
		return err_set(e, "%s", sub.msg);
	}
	return 0;
}

static int do_set(struct daemon *d, const struct proto_request *r, enum proto_code *code, struct err *e)
{
	struct vmdef *def = malloc(sizeof(*def));
	char *text = malloc(65536);
	int rc = -1;
	if (!def || !text) {
		err_set(e, "out of memory");
		goto out;
	}
	if (vm_load_definition(d, r->name, def, code, e) < 0)
		goto out;
	*code = PROTO_USAGE;
	if (vmdef_set_all(def, r->assign, r->nassign, e) < 0) /* checked once, as a whole */
		goto out;
	*code = PROTO_ERROR;
	if (vmdef_format(def, text, 65536) < 0) {
		err_set(e, "the definition became too large");
		goto out;
	}
	rc = write_definition(d, r->name, text, false, code, e);
out:
	free(def);
	free(text);
	return rc;
}

static int do_delete(struct daemon *d, const char *name, enum proto_code *code, struct err *e)
{
	if (exists(d, name, code, e) < 0)
		return -1;
	struct vm_entry *vm = vm_find(d, name, false);
	if (vm && vm_active(vm))
		return *code = PROTO_STATE,
		       err_set(e, "VM '%s' is %s; stop it first (shoji stop %s)", name, vm_state_name(vm->state), name);
	if (snapshot_any(d, name))
		return *code = PROTO_STATE,
		       err_set(e,
			       "VM '%s' has snapshots, and its disks' latest writes are in their overlays; "
			       "delete the snapshots first (shoji snapshot delete %s NAME folds them into its images)",
			       name, name);
	vm_remove(d, name);
	events_add(d, name, "deleted", "%s", "");
	return 0;
}

/* console and display: connects to one of a running VM's sockets (in its runtime directory,
 * which only root and the jail may enter) and passes the connection to the caller, whom the
 * daemon has already authorized (root or the shoji group). */
static int pass_socket(struct daemon *d, struct client *c, const char *name, enum paths_file f, int type,
		       const char *what, enum proto_code *code, struct err *e)
{
	if (exists(d, name, code, e) < 0)
		return -1;
	struct vm_entry *vm = vm_find(d, name, false);
	if (!vm || (vm->state != VM_RUNNING && vm->state != VM_PAUSED))
		return *code = PROTO_STATE, err_set(e, "VM '%s' is not running; start it first", name);
	char sock[512];
	int fd, en;
	struct err sub;
	vm_path(d, f, name, sock, sizeof(sock));
	if (rpc_connect_type(sock, type, &fd, &en, &sub) < 0) {
		if (f == PATHS_DISPLAY && en == ENOENT)
			return *code = PROTO_STATE,
			       err_set(e,
				       "VM '%s' has no display; set display = on (shoji set %s display=on) and "
				       "start it again",
				       name, name);
		return *code = PROTO_ERROR, err_set(e, "VM '%s': the %s: %s", name, what, sub.msg);
	}
	struct json_object *o = ok_object();
	add_str(o, "name", name);
	int r = client_send_fd(c, o, fd);
	close(fd);
	if (r < 0)
		return *code = PROTO_ERROR, err_set(e, "cannot pass the %s to the caller", what);
	return 0;
}

static struct json_object *do_logs(struct daemon *d, const struct proto_request *r, enum proto_code *code,
				   struct err *e)
{
	if (exists(d, r->name, code, e) < 0)
		return NULL;
	char p[512], old[512];
	struct json_object *o = ok_object();
	vm_path(d, PATHS_SERIAL_LOG_OLD, r->name, old, sizeof(old));
	vm_path(d, PATHS_SERIAL_LOG, r->name, p, sizeof(p));
	add_tail(o, "serial", old, p, r->bytes);
	vm_path(d, PATHS_MONITOR_LOG_OLD, r->name, old, sizeof(old));
	vm_path(d, PATHS_MONITOR_LOG, r->name, p, sizeof(p));
	add_tail(o, "monitor", old, p, 4096);
	json_object_object_add(o, "events", events_recent(d, r->name, 20, 0));
	return o;
}

/* One request being handled: what a handler reads, and what it leaves. */
struct call {
	struct daemon *d;
	struct client *c;
	const struct proto_request *r;
	struct vm_entry *vm;       /* ON_VM commands: the VM's slot */
	struct json_object *reply; /* API_REPLY */
	enum proto_code code;      /* API_FAILED */
	struct err e;
};

static enum api_outcome reply_with(struct call *k, struct json_object *o)
{
	k->reply = o;
	return o ? API_REPLY : API_FAILED;
}

static enum api_outcome ok_or_failed(struct call *k, int r)
{
	return reply_with(k, r < 0 ? NULL : ok_object());
}

static enum api_outcome h_ping(struct call *k)
{
	struct json_object *o = ok_object();
	add_int(o, "pid", getpid());
	return reply_with(k, o);
}

static enum api_outcome h_list(struct call *k)
{
	return reply_with(k, do_list(k->d, k->c->uid));
}

static enum api_outcome h_net(struct call *k)
{
	struct json_object *o = ok_object();
	json_object_object_add(o, "links", netlinks_list(k->d, k->c->uid));
	return reply_with(k, o);
}

static enum api_outcome h_usb_list(struct call *k)
{
	struct json_object *devices = usbscan_list(k->d, k->r->name[0] ? k->r->name : NULL, &k->code, &k->e);
	if (!devices)
		return API_FAILED;
	struct json_object *o = ok_object();
	json_object_object_add(o, "devices", devices);
	if (authz_is_seat(k->d, k->c->uid)) /* which VM is in front is the seat's to know */
		json_object_object_add(o, "seat_focus", k->d->focus[0] ? json_object_new_string(k->d->focus) : NULL);
	return reply_with(k, o);
}

static enum api_outcome h_seat_focus(struct call *k)
{
	seatfocus_forget(k->d, k->c); /* this connection's earlier word goes, whatever comes of this one */
	if (k->r->name[0] && exists(k->d, k->r->name, &k->code, &k->e) < 0)
		return API_FAILED;
	return seatfocus_say(k->d, k->c, k->r->name, &k->code, &k->e) < 0 ? API_FAILED : reply_with(k, ok_object());
}

static enum api_outcome h_usb_move(struct call *k)
{
	if (k->r->cmd == PROTO_USB_ATTACH) /* answered when the hand-over ends */
		return usbassign_attach(k->d, k->r->name, k->r->device, k->c, &k->code, &k->e) < 0 ? API_FAILED
												   : API_PARKED;
	return usbassign_detach(k->d, k->r->device, &k->code, &k->e) < 0 ? API_FAILED : reply_with(k, ok_object());
}

static enum api_outcome h_info(struct call *k)
{
	return reply_with(k, do_info(k->d, k->r->name, &k->code, &k->e));
}

static enum api_outcome h_create(struct call *k)
{
	struct daemon *d = k->d;
	const struct proto_request *r = k->r;
	bool create = r->cmd == PROTO_CREATE;
	if (write_definition(d, r->name, r->definition, create, &k->code, &k->e) < 0)
		return API_FAILED;
	if (create && (vm_set_owner(d, r->name, k->c->uid, &k->e) < 0 || jailuid_assign_new(d, r->name, &k->e) < 0)) {
		vm_remove(d, r->name); /* no VM without its owner and its own uid */
		return API_FAILED;
	}
	events_add(d, r->name, create ? "created" : "edited", "%s", "");
	return reply_with(k, ok_object());
}

static enum api_outcome h_definition(struct call *k)
{
	char file[512], *text;
	size_t len;
	int en;
	if (exists(k->d, k->r->name, &k->code, &k->e) < 0)
		return API_FAILED;
	vm_path(k->d, PATHS_DEFINITION, k->r->name, file, sizeof(file));
	if (statefile_read(file, PROTO_MAX_DEFINITION, &text, &len, &en, &k->e) < 0)
		return API_FAILED;
	struct json_object *o = ok_object();
	json_object_object_add(o, "definition", json_object_new_string_len(text, (int)len));
	free(text);
	return reply_with(k, o);
}

static enum api_outcome h_set(struct call *k)
{
	if (do_set(k->d, k->r, &k->code, &k->e) < 0)
		return API_FAILED;
	events_add(k->d, k->r->name, "edited", "set %s%s", k->r->assign[0], k->r->nassign > 1 ? " ..." : "");
	return reply_with(k, ok_object());
}

static enum api_outcome h_delete(struct call *k)
{
	return ok_or_failed(k, do_delete(k->d, k->r->name, &k->code, &k->e));
}

static enum api_outcome h_start(struct call *k)
{
	return vm_start(k->d, k->vm, k->c, &k->code, &k->e) < 0 ? API_FAILED : API_PARKED;
}

/* stop and kill: answered when the VM has ended, or at once when another caller waits for it. */
static enum api_outcome h_stop(struct call *k)
{
	int r = k->r->cmd == PROTO_STOP ? vm_stop(k->d, k->vm, k->c, k->r->timeout_s, &k->code, &k->e)
					: vm_kill(k->d, k->vm, k->c, &k->code, &k->e);
	if (r < 0)
		return API_FAILED;
	return k->vm->waiter == k->c ? API_PARKED : reply_with(k, ok_object());
}

static enum api_outcome h_pause(struct call *k)
{
	if (vm_pause(k->d, k->vm, k->r->cmd == PROTO_PAUSE, &k->code, &k->e) < 0)
		return API_FAILED;
	struct json_object *o = ok_object();
	add_str(o, "state", vm_state_name(k->vm->state));
	return reply_with(k, o);
}

static enum api_outcome h_console(struct call *k)
{
	bool console = k->r->cmd == PROTO_CONSOLE;
	return pass_socket(k->d, k->c, k->r->name, console ? PATHS_SERIAL : PATHS_DISPLAY,
			   console ? SOCK_STREAM : SOCK_SEQPACKET, console ? "serial console" : "display", &k->code,
			   &k->e) < 0
		? API_FAILED
		: API_ANSWERED;
}

static enum api_outcome h_logs(struct call *k)
{
	return reply_with(k, do_logs(k->d, k->r, &k->code, &k->e));
}

static enum api_outcome h_template_begin(struct call *k)
{
	int version = 0, fd = -1;
	if (template_begin(k->d, k->r->name, k->r->replace, &version, &fd, &k->code, &k->e) < 0)
		return API_FAILED;
	struct json_object *o = ok_object();
	add_int(o, "version", version);
	int sent = client_send_fd(k->c, o, fd);
	close(fd);
	if (sent < 0)
		return err_set(&k->e, "cannot pass the new template file to the caller"), API_FAILED;
	return API_ANSWERED;
}

static enum api_outcome h_template_commit(struct call *k)
{
	const struct proto_request *r = k->r;
	return template_commit(k->d, k->c, r->name, r->version, r->source, &k->code, &k->e) < 0 ? API_FAILED
												: API_PARKED;
}

static enum api_outcome h_template_list(struct call *k)
{
	struct json_object *o = ok_object();
	json_object_object_add(o, "templates", template_list(k->d));
	return reply_with(k, o);
}

static enum api_outcome h_template_info(struct call *k)
{
	struct json_object *t = template_info(k->d, k->r->name, &k->code, &k->e), *o;
	if (!t)
		return API_FAILED;
	o = ok_object();
	json_object_object_add(o, "template", t);
	return reply_with(k, o);
}

static enum api_outcome h_template_delete(struct call *k)
{
	return ok_or_failed(k, template_delete(k->d, k->r->name, &k->code, &k->e));
}

static enum api_outcome h_snapshot(struct call *k)
{
	const struct proto_request *r = k->r;
	if (exists(k->d, r->name, &k->code, &k->e) < 0)
		return API_FAILED;
	switch (r->cmd) {
	case PROTO_SNAPSHOT_LIST: return reply_with(k, snapshot_list(k->d, r->name, &k->code, &k->e));
	case PROTO_SNAPSHOT_CREATE:
		return snapshot_create(k->d, k->c, r->name, r->snapshot, &k->reply, &k->code, &k->e);
	case PROTO_SNAPSHOT_REVERT: return snapshot_revert(k->d, k->c, r->name, r->snapshot, &k->code, &k->e);
	default: return snapshot_delete(k->d, k->c, r->name, r->snapshot, &k->code, &k->e);
	}
}

static enum api_outcome h_run(struct call *k)
{
	return vm_run_disposable(k->d, k->r->definition, k->c, &k->code, &k->e) < 0 ? API_FAILED : API_PARKED;
}

static enum api_outcome h_events(struct call *k)
{
	const struct proto_request *r = k->r;
	struct json_object *o = ok_object();
	json_object_object_add(o, "events",
			       events_recent(k->d, r->name[0] ? r->name : NULL, r->follow ? 20 : 200, k->c->uid));
	if (r->follow) {
		k->c->subscriber = true;
		strcpy(k->c->filter, r->name);
	}
	return reply_with(k, o);
}

static enum api_outcome h_clipboard(struct call *k)
{
	struct json_object *o;
	switch (k->r->cmd) {
	case PROTO_CLIPBOARD_COPY: o = clipboard_copy(k->d, k->vm, &k->code, &k->e); break;
	case PROTO_CLIPBOARD_PASTE: o = clipboard_paste(k->d, k->vm, &k->code, &k->e); break;
	case PROTO_CLIPBOARD_CLEAR:
		if (k->d->clip.held)
			events_add(k->d, k->d->clip.from, "clipboard-cleared", "%zu bytes from %s dropped unpasted",
				   k->d->clip.len, k->d->clip.from);
		clipboard_clear(k->d);
		o = clipboard_status(k->d);
		break;
	default: o = clipboard_status(k->d); break;
	}
	return o ? reply_with(k, o) : API_FAILED;
}

/* What each command needs before its handler runs. */
enum {
	READS = 1,       /* only reads: goes ahead while an image job works on its VM or template */
	ON_VM = 2,       /* acts on a defined VM: it must exist, and gets its slot */
	ON_TEMPLATE = 4, /* its name is a template's (what a job may hold busy) */
};

static const struct command {
	enum api_outcome (*fn)(struct call *k);
	unsigned flags;
} commands[] = {
	[PROTO_PING] = {h_ping, READS},
	[PROTO_LIST] = {h_list, READS},
	[PROTO_INFO] = {h_info, READS},
	[PROTO_CREATE] = {h_create, 0},
	[PROTO_DEFINITION] = {h_definition, READS},
	[PROTO_REPLACE] = {h_create, 0},
	[PROTO_SET] = {h_set, 0},
	[PROTO_DELETE] = {h_delete, 0},
	[PROTO_START] = {h_start, ON_VM},
	[PROTO_STOP] = {h_stop, ON_VM},
	[PROTO_KILL] = {h_stop, ON_VM},
	[PROTO_PAUSE] = {h_pause, ON_VM},
	[PROTO_RESUME] = {h_pause, ON_VM},
	[PROTO_CONSOLE] = {h_console, 0},
	[PROTO_DISPLAY] = {h_console, 0},
	[PROTO_LOGS] = {h_logs, READS},
	[PROTO_EVENTS] = {h_events, READS},
	[PROTO_TEMPLATE_BEGIN] = {h_template_begin, ON_TEMPLATE},
	[PROTO_TEMPLATE_COMMIT] = {h_template_commit, ON_TEMPLATE},
	[PROTO_TEMPLATE_LIST] = {h_template_list, READS},
	[PROTO_TEMPLATE_INFO] = {h_template_info, READS},
	[PROTO_TEMPLATE_DELETE] = {h_template_delete, ON_TEMPLATE},
	[PROTO_SNAPSHOT_CREATE] = {h_snapshot, 0},
	[PROTO_SNAPSHOT_LIST] = {h_snapshot, READS},
	[PROTO_SNAPSHOT_REVERT] = {h_snapshot, 0},
	[PROTO_SNAPSHOT_DELETE] = {h_snapshot, 0},
	[PROTO_RUN] = {h_run, READS}, /* a new VM: nothing a job holds */
	[PROTO_CLIPBOARD] = {h_clipboard, READS},
	[PROTO_CLIPBOARD_COPY] = {h_clipboard, ON_VM | READS},
	[PROTO_CLIPBOARD_PASTE] = {h_clipboard, ON_VM | READS},
	[PROTO_CLIPBOARD_CLEAR] = {h_clipboard, READS},
	[PROTO_NET] = {h_net, READS},
	[PROTO_USB_LIST] = {h_usb_list, READS},
	[PROTO_USB_ATTACH] = {h_usb_move, ON_VM | READS}, /* no file of the VM is touched */
	[PROTO_USB_DETACH] = {h_usb_move, READS},
	[PROTO_SEAT_FOCUS] = {h_seat_focus, READS},
};

/* A request that would change a VM (or a template) an image job is working on is refused at
 * once, saying what is under way. */
static int not_busy(struct call *k, unsigned flags)
{
	bool tmpl = flags & ON_TEMPLATE;
	char key[VMDEF_NAME_MAX + 16];
	snprintf(key, sizeof(key), "%s%s", tmpl ? "template " : "", k->r->name);
	const struct image_op *op = image_job_busy(k->d, key);
	if (!op)
		return 0;
	k->code = PROTO_STATE;
	if (k->r->cmd == PROTO_START && op->starts_the_vm)
		return err_set(&k->e, "VM '%s' is already %s", k->r->name, op->what);
	return err_set(&k->e, "%s '%s' is busy %s; try again when that has ended", tmpl ? "template" : "VM", k->r->name,
		       op->what);
}

static enum api_outcome dispatch(struct call *k)
{
	const struct command *cmd =
		(size_t)k->r->cmd < sizeof(commands) / sizeof(commands[0]) ? &commands[k->r->cmd] : NULL;
	k->code = PROTO_ERROR;
	if (!cmd || !cmd->fn)
		return err_set(&k->e, "unhandled command"), API_FAILED;
	if (!(cmd->flags & READS) && not_busy(k, cmd->flags) < 0)
		return API_FAILED;
	if (cmd->flags & ON_VM) {
		if (exists(k->d, k->r->name, &k->code, &k->e) < 0)
			return API_FAILED;
		if (!(k->vm = vm_find(k->d, k->r->name, true)))
			return err_set(&k->e, "shojid supervises at most %d VMs", DAEMON_MAX_VMS), API_FAILED;
	}
	return cmd->fn(k);
}

void api_handle(struct daemon *d, struct client *c, const char *line, size_t len)
{
	struct proto_request r;
	enum proto_code code;
	struct err e = {""};
	if (len && line[len - 1] == '\r')
		len--;
	if (len == 0)
		return; /* blank lines are ignored */
	if (proto_parse_request(line, len, &r, &code, &e) < 0) {
		client_send_error(c, code, e.msg);
		return;
	}
	struct call k = {.d = d, .c = c, .r = &r, .code = PROTO_ERROR};
	enum api_outcome how = authz_check(d, c, &r, &k.code, &k.e) < 0 ? API_FAILED : dispatch(&k);
	switch (how) {
	case API_REPLY: client_send(c, k.reply); break;
	case API_PARKED: client_park(c); break;
	case API_ANSWERED: break;
	case API_FAILED: client_send_error(c, k.code, k.e.msg[0] ? k.e.msg : "the request failed"); break;
	}
	proto_request_free(&r);
}
