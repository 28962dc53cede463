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

#include "../rpc.h"
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
	struct vm *vm = vm_find(d, name, false);
	add_str(o, "name", name);
	add_str(o, "state", vm ? vm_state_name(vm->state) : "stopped");
	if (vm && vm->monitor)
		add_int(o, "pid", vm->monitor);
	if (def && vm_load_definition(d, name, def, &code, &e) == 0) {
		add_int(o, "memory_mib", def->memory_mib);
		add_int(o, "cpus", def->cpus);
		add_str(o, "label", def->label);
		json_object_object_add(o, "display", json_object_new_boolean(def->display));
		if (def->display) {
			char p[512];
			if (vm_path(d, PATHS_DISPLAY, name, p, sizeof(p)) == 0)
				add_str(o, "display_socket", p);
		}
		json_object_object_add(o, "autostart", json_object_new_boolean(def->autostart));
		add_int(o, "disks", def->ndisks);
		add_int(o, "nics", def->nnics);
	} else {
		add_str(o, "error", def ? e.msg : "out of memory");
	}
	if (vm && vm->last_exit[0])
		add_str(o, "last_exit", vm->last_exit);
	if (vm && vm->jail_assigned)
		add_int(o, "jail_uid", vm->jail_uid);
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
	return o;
}

/* The last `bytes` of a log kept in two parts (older: PATH.1, rotated by its writer). */
static void add_tail(struct json_object *o, const char *key, const char *older, const char *file,
		     long bytes)
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

static struct json_object *do_info(struct daemon *d, const char *name, enum proto_code *code,
				   struct err *e)
{
	if (exists(d, name, code, e) < 0)
		return NULL;
	struct json_object *o = ok_object(), *s = summary(d, name);
	struct vm *vm = vm_find(d, name, false);
	char p[512];
	struct err sub;
	if (vm && (vm->state == VM_RUNNING || vm->state == VM_PAUSED)) {
		struct json_object *st, *v;
		if (vm_control(d, vm, "status", &st, &sub) == 0) {
			if (json_object_object_get_ex(st, "uptime_s", &v))
				json_object_object_add(s, "uptime_s", json_object_get(v));
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

static int write_definition(struct daemon *d, const char *name, const char *text, bool create,
			    enum proto_code *code, struct err *e)
{
	char file[512], dir[512];
	struct vmdef *def = malloc(sizeof(*def));
	if (!def)
		return err_set(e, "out of memory");
	vm_path(d, PATHS_DEFINITION, name, file, sizeof(file));
	int r = vmdef_parse(text, file, def, e);
	if (r == 0 && strcmp(def->name, name))
		r = err_set(e, "the definition names the VM '%s', not '%s'; make them the same", def->name,
			    name);
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
			return *code = PROTO_EXISTS, err_set(e, "VM '%s' already exists; pick another name "
								"or delete it first", name);
		return err_set(e, "%s", sub.msg);
	}
	return 0;
}

static int do_set(struct daemon *d, const struct proto_request *r, enum proto_code *code,
		  struct err *e)
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
	for (int i = 0; i < r->nassign; i++) {
		if (vmdef_set(def, r->assign[i], e) < 0)
			goto out;
	}
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
	struct vm *vm = vm_find(d, name, false);
	if (vm && vm_active(vm))
		return *code = PROTO_STATE,
		       err_set(e, "VM '%s' is %s; stop it first (shoji stop %s)", name,
			       vm_state_name(vm->state), name);
	if (snapshot_any(d, name))
		return *code = PROTO_STATE,
		       err_set(e, "VM '%s' has snapshots, and its disks' latest writes are in their overlays; "
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
	struct vm *vm = vm_find(d, name, false);
	if (!vm || (vm->state != VM_RUNNING && vm->state != VM_PAUSED))
		return *code = PROTO_STATE, err_set(e, "VM '%s' is not running; start it first", name);
	char sock[512];
	int fd, en;
	struct err sub;
	vm_path(d, f, name, sock, sizeof(sock));
	if (rpc_connect_type(sock, type, &fd, &en, &sub) < 0) {
		if (f == PATHS_DISPLAY && en == ENOENT)
			return *code = PROTO_STATE,
			       err_set(e, "VM '%s' has no display; set display = on (shoji set %s display=on) and "
					  "start it again", name, name);
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

static struct json_object *do_logs(struct daemon *d, const struct proto_request *r,
				   enum proto_code *code, struct err *e)
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

/* A request that would change a VM (or a template) an image job is working on is refused at
 * once, saying what is under way; one that only reads goes ahead. */
static int not_busy(struct daemon *d, const struct proto_request *r, enum proto_code *code, struct err *e)
{
	switch (r->cmd) {
	case PROTO_PING: case PROTO_LIST: case PROTO_INFO: case PROTO_DEFINITION: case PROTO_LOGS:
	case PROTO_EVENTS: case PROTO_SNAPSHOT_LIST: case PROTO_TEMPLATE_LIST: case PROTO_TEMPLATE_INFO:
	case PROTO_RUN:
		return 0;
	default:
		break;
	}
	bool tmpl = r->cmd == PROTO_TEMPLATE_BEGIN || r->cmd == PROTO_TEMPLATE_COMMIT || r->cmd == PROTO_TEMPLATE_DELETE;
	char key[VMDEF_NAME_MAX + 16];
	snprintf(key, sizeof(key), "%s%s", tmpl ? "template " : "", r->name);
	const char *what = image_job_busy(d, key);
	if (!what)
		return 0;
	*code = PROTO_STATE;
	if (r->cmd == PROTO_START && strncmp(what, "starting", 8) == 0)
		return err_set(e, "VM '%s' is already %s", r->name, what);
	return err_set(e, "%s '%s' is busy %s; try again when that has ended", tmpl ? "template" : "VM", r->name,
		       what);
}

/* Runs the request; returns the reply, NULL with *parked when the client waits for a VM or an
 * image job, or NULL with an error. */
static struct json_object *dispatch(struct daemon *d, struct client *c, const struct proto_request *r,
				    bool *parked, enum proto_code *code, struct err *e)
{
	struct vm *vm = NULL;
	*code = PROTO_ERROR;
	if (not_busy(d, r, code, e) < 0)
		return NULL;
	*code = PROTO_ERROR;
	switch (r->cmd) {
	case PROTO_START: case PROTO_STOP: case PROTO_KILL: case PROTO_PAUSE: case PROTO_RESUME:
		if (exists(d, r->name, code, e) < 0)
			return NULL;
		if (!(vm = vm_find(d, r->name, true))) {
			err_set(e, "shojid supervises at most %d VMs", DAEMON_MAX_VMS);
			return NULL;
		}
		break;
	default:
		break;
	}
	switch (r->cmd) {
	case PROTO_PING: {
		struct json_object *o = ok_object();
		add_int(o, "pid", getpid());
		return o;
	}
	case PROTO_LIST: return do_list(d, c->uid);
	case PROTO_INFO: return do_info(d, r->name, code, e);
	case PROTO_CREATE:
	case PROTO_REPLACE:
		if (write_definition(d, r->name, r->definition, r->cmd == PROTO_CREATE, code, e) < 0)
			return NULL;
		if (r->cmd == PROTO_CREATE && (vm_set_owner(d, r->name, c->uid, e) < 0 ||
					       jailuid_assign_new(d, r->name, e) < 0)) {
			vm_remove(d, r->name); /* no VM without its owner and its own uid */
			return NULL;
		}
		events_add(d, r->name, r->cmd == PROTO_CREATE ? "created" : "edited", "%s", "");
		return ok_object();
	case PROTO_DEFINITION: {
		char file[512], *text;
		size_t len;
		int en;
		if (exists(d, r->name, code, e) < 0)
			return NULL;
		vm_path(d, PATHS_DEFINITION, r->name, file, sizeof(file));
		if (statefile_read(file, PROTO_MAX_DEFINITION, &text, &len, &en, e) < 0)
			return NULL;
		struct json_object *o = ok_object();
		json_object_object_add(o, "definition", json_object_new_string_len(text, (int)len));
		free(text);
		return o;
	}
	case PROTO_SET:
		if (do_set(d, r, code, e) < 0)
			return NULL;
		events_add(d, r->name, "edited", "set %s%s", r->assign[0], r->nassign > 1 ? " ..." : "");
		return ok_object();
	case PROTO_DELETE: return do_delete(d, r->name, code, e) < 0 ? NULL : ok_object();
	case PROTO_START:
		if (vm_start(d, vm, c, code, e) < 0)
			return NULL;
		*parked = true;
		return NULL;
	case PROTO_STOP:
		if (vm_stop(d, vm, c, r->timeout_s, code, e) < 0)
			return NULL;
		*parked = vm->waiter == c;
		return *parked ? NULL : ok_object();
	case PROTO_KILL:
		if (vm_kill(d, vm, c, code, e) < 0)
			return NULL;
		*parked = vm->waiter == c;
		return *parked ? NULL : ok_object();
	case PROTO_PAUSE:
	case PROTO_RESUME: {
		if (vm_pause(d, vm, r->cmd == PROTO_PAUSE, code, e) < 0)
			return NULL;
		struct json_object *o = ok_object();
		add_str(o, "state", vm_state_name(vm->state));
		return o;
	}
	case PROTO_CONSOLE:
		pass_socket(d, c, r->name, PATHS_SERIAL, SOCK_STREAM, "serial console", code, e);
		return NULL; /* answered with the descriptor, or an error in e */
	case PROTO_DISPLAY:
		pass_socket(d, c, r->name, PATHS_DISPLAY, SOCK_SEQPACKET, "display", code, e);
		return NULL;
	case PROTO_LOGS: return do_logs(d, r, code, e);
	case PROTO_TEMPLATE_BEGIN: {
		int version = 0, fd = -1;
		if (template_begin(d, r->name, r->replace, &version, &fd, code, e) < 0)
			return NULL;
		struct json_object *o = ok_object();
		add_int(o, "version", version);
		int sent = client_send_fd(c, o, fd);
		close(fd);
		if (sent < 0)
			err_set(e, "cannot pass the new template file to the caller");
		return NULL; /* answered with the descriptor */
	}
	case PROTO_TEMPLATE_COMMIT:
		*parked = template_commit(d, c, r->name, r->version, r->source, code, e) == 0;
		return NULL;
	case PROTO_TEMPLATE_LIST: {
		struct json_object *o = ok_object();
		json_object_object_add(o, "templates", template_list(d));
		return o;
	}
	case PROTO_TEMPLATE_INFO: {
		struct json_object *t = template_info(d, r->name, code, e), *o;
		if (!t)
			return NULL;
		o = ok_object();
		json_object_object_add(o, "template", t);
		return o;
	}
	case PROTO_TEMPLATE_DELETE:
		return template_delete(d, r->name, code, e) < 0 ? NULL : ok_object();
	case PROTO_SNAPSHOT_CREATE:
	case PROTO_SNAPSHOT_LIST:
	case PROTO_SNAPSHOT_REVERT:
	case PROTO_SNAPSHOT_DELETE:
		if (exists(d, r->name, code, e) < 0)
			return NULL;
		return r->cmd == PROTO_SNAPSHOT_CREATE	 ? snapshot_create(d, c, r->name, r->snapshot, parked, code, e)
		       : r->cmd == PROTO_SNAPSHOT_LIST	 ? snapshot_list(d, r->name, code, e)
		       : r->cmd == PROTO_SNAPSHOT_REVERT ? snapshot_revert(d, c, r->name, r->snapshot, parked, code, e)
							 : snapshot_delete(d, c, r->name, r->snapshot, parked, code, e);
	case PROTO_RUN:
		if (vm_run_disposable(d, r->definition, c, code, e) < 0)
			return NULL;
		*parked = true;
		return NULL;
	case PROTO_EVENTS: {
		struct json_object *o = ok_object();
		json_object_object_add(o, "events", events_recent(d, r->name[0] ? r->name : NULL,
								  r->follow ? 20 : 200, c->uid));
		if (r->follow) {
			c->subscriber = true;
			strcpy(c->filter, r->name);
		}
		return o;
	}
	}
	err_set(e, "unhandled command");
	return NULL;
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
	bool parked = false;
	struct json_object *reply = authz_check(d, c, &r, &code, &e) < 0 ? NULL
				    : dispatch(d, c, &r, &parked, &code, &e);
	if (parked)
		c->busy = true;
	else if (reply)
		client_send(c, reply);
	else if (e.msg[0])
		client_send_error(c, code, e.msg);
	proto_request_free(&r);
}
