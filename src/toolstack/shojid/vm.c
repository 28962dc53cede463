/* vm: the lifecycle of each VM in shojid: start (lock, keeper, monitor, wait for its control
 * socket), stop (ACPI shutdown, then "stop", then SIGKILL), kill, pause/resume, the end of a
 * monitor as its keeper reports it, the per-VM state file, and adoption of running VMs when
 * the daemon starts. */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

#include "../../common/rpc.h"
#include "../statefile.h"
#include "../vmm_args.h"
#include "daemon.h"

static int pidfd_open_(pid_t pid)
{
	return (int)syscall(SYS_pidfd_open, pid, 0);
}

static int pidfd_kill(int pidfd, int sig)
{
	return (int)syscall(SYS_pidfd_send_signal, pidfd, sig, NULL, 0);
}

const char *vm_state_name(enum vm_state s)
{
	static const char *const names[] = {"stopped", "starting", "running", "paused", "stopping"};
	return names[s];
}

bool vm_active(const struct vm_entry *vm)
{
	return vm->state != VM_STOPPED;
}

struct vm_entry *vm_find(struct daemon *d, const char *name, bool add)
{
	struct vm_entry *free_slot = NULL;
	for (int i = 0; i < DAEMON_MAX_VMS; i++) {
		if (d->vms[i].used && strcmp(d->vms[i].name, name) == 0)
			return &d->vms[i];
		if (!d->vms[i].used && !free_slot)
			free_slot = &d->vms[i];
	}
	if (!add || !free_slot)
		return NULL;
	*free_slot = (struct vm_entry){.used = true, .keeper_pidfd = -1, .monitor_pidfd = -1};
	strcpy(free_slot->name, name);
	return free_slot;
}

static int path(struct daemon *d, enum paths_file f, const char *name, char *buf, size_t size)
{
	return paths_get(&d->paths, f, name, buf, size, NULL);
}

int vm_load_definition(struct daemon *d, const char *name, struct vmdef *def, enum proto_code *code, struct err *e)
{
	char file[512], *text;
	size_t len;
	int en;
	*code = PROTO_ERROR;
	if (path(d, PATHS_DEFINITION, name, file, sizeof(file)) < 0)
		return err_set(e, "VM name '%s' makes a path too long", name);
	struct err sub;
	if (statefile_read(file, 256 * 1024, &text, &len, &en, &sub) < 0) {
		if (en == ENOENT)
			return *code = PROTO_NOT_FOUND,
			       err_set(e, "there is no VM '%s'; see 'shoji list' or create it", name);
		return err_set(e, "%s", sub.msg);
	}
	int r = vmdef_parse(text, file, def, e);
	free(text);
	if (r == 0 && strcmp(def->name, name))
		r = err_set(e, "%s names the VM '%s', not '%s'; fix its name key", file, def->name, name);
	return r;
}

int vm_set_owner(struct daemon *d, const char *name, uid_t owner, struct err *e)
{
	struct vm_entry *vm = vm_find(d, name, true);
	if (!vm)
		return err_set(e, "shojid supervises at most %d VMs", DAEMON_MAX_VMS);
	vm->owner = owner;
	vm_save(d, vm);
	return 0;
}

void vm_save(struct daemon *d, struct vm_entry *vm)
{
	char file[512], dir[512];
	if (path(d, PATHS_VM_STATE, vm->name, file, sizeof(file)) < 0 ||
	    path(d, PATHS_VM_DIR, vm->name, dir, sizeof(dir)) < 0)
		return;
	mkdir(dir, 0750); /* a VM just created has none yet: its owner is recorded at once */
	struct json_object *o = json_object_new_object();
	json_object_object_add(o, "state", json_object_new_string(vm_state_name(vm->state)));
	json_object_object_add(o, "keeper_pid", json_object_new_int(vm->keeper));
	json_object_object_add(o, "monitor_pid", json_object_new_int(vm->monitor));
	json_object_object_add(o, "started", json_object_new_double(vm->started_at));
	json_object_object_add(o, "last_exit", json_object_new_string(vm->last_exit));
	json_object_object_add(o, "disposable", json_object_new_boolean(vm->disposable));
	struct json_object *uses = json_object_new_array();
	for (unsigned i = 0; i < vm->nuses; i++)
		json_object_array_add(uses, json_object_new_string(vm->uses[i]));
	json_object_object_add(o, "uses", uses);
	if (vm->jail_assigned)
		json_object_object_add(o, "jail_uid", json_object_new_int64(vm->jail_uid));
	if (vm->net_assigned)
		json_object_object_add(o, "net_uid", json_object_new_int64(vm->net_uid));
	if (vm->vsock_cid && vm_active(vm))
		json_object_object_add(o, "vsock_cid", json_object_new_int64(vm->vsock_cid));
	json_object_object_add(o, "owner", json_object_new_int64(vm->owner));
	const char *s = json_object_to_json_string_ext(o, JSON_C_TO_STRING_PLAIN);
	struct err e;
	if (statefile_write(file, s, strlen(s), false, &e) < 0)
		fprintf(stderr, "shojid: %s\n", e.msg);
	json_object_put(o);
}

int vm_control(struct daemon *d, struct vm_entry *vm, enum control_cmd cmd, struct json_object **reply, struct err *e)
{
	struct json_object *req = json_object_new_object();
	json_object_object_add(req, "cmd", json_object_new_string(control_cmd_name(cmd)));
	return vm_control_req(d, vm, req, -1, reply, e);
}

int vm_control_req(struct daemon *d, struct vm_entry *vm, struct json_object *req, int send_fd,
		   struct json_object **reply, struct err *e)
{
	char sock[512];
	int fd, en;
	struct err sub;
	struct json_object *c;
	const char *cmd = json_object_object_get_ex(req, "cmd", &c) ? json_object_get_string(c) : "?";
	if (path(d, PATHS_CONTROL, vm->name, sock, sizeof(sock)) < 0) {
		json_object_put(req);
		return err_set(e, "control socket path too long");
	}
	/* A monitor that let a call time out (hung, or hostile) would hold up every client of
	 * shojid for DAEMON_CONTROL_TIMEOUT_MS a call: it is not asked again for a while. */
	long long now = daemon_now_ms();
	if (now < vm->quiet_until_ms) {
		json_object_put(req);
		return err_set(e, "VM '%s': its monitor did not answer a call in %d s; not asked again for %lld s",
			       vm->name, DAEMON_CONTROL_TIMEOUT_MS / 1000, (vm->quiet_until_ms - now + 999) / 1000);
	}
	if (rpc_connect(sock, &fd, &en, &sub) < 0) {
		json_object_put(req);
		return err_set(e, "VM '%s': the monitor's control socket: %s", vm->name, sub.msg);
	}
	struct json_object *rep = NULL;
	int r = rpc_call_fd(fd, NULL, req, send_fd, DAEMON_CONTROL_TIMEOUT_MS, "the monitor", &rep, NULL, &sub);
	if (r < 0 && errno == ETIMEDOUT)
		vm->quiet_until_ms = daemon_now_ms() + DAEMON_CONTROL_QUIET_MS;
	close(fd);
	if (r < 0) {
		json_object_put(req);
		return err_set(e, "VM '%s': %s", vm->name, sub.msg);
	}
	struct json_object *ok, *msg;
	if (!json_object_object_get_ex(rep, "ok", &ok) || !json_object_get_boolean(ok)) {
		char why[256]; /* the monitor's words: printable ASCII only, cut */
		snprintf(why, sizeof(why), "%s",
			 json_object_object_get_ex(rep, "error", &msg) ? json_object_get_string(msg)
								       : "no reason given");
		for (char *p = why; *p; p++)
			if (*p < 0x20 || *p > 0x7e)
				*p = '?';
		r = err_set(e, "VM '%s': the monitor refused '%s': %s", vm->name, cmd, why);
		json_object_put(rep);
		json_object_put(req);
		return r;
	}
	json_object_put(req);
	if (reply)
		*reply = rep;
	else
		json_object_put(rep);
	return 0;
}

static void close_pidfds(struct vm_entry *vm)
{
	if (vm->keeper_pidfd >= 0)
		close(vm->keeper_pidfd);
	if (vm->monitor_pidfd >= 0)
		close(vm->monitor_pidfd);
	vm->keeper_pidfd = vm->monitor_pidfd = -1;
}

static struct json_object *ok_reply(struct vm_entry *vm)
{
	struct json_object *o = json_object_new_object();
	json_object_object_add(o, "ok", json_object_new_boolean(1));
	json_object_object_add(o, "name", json_object_new_string(vm->name));
	json_object_object_add(o, "state", json_object_new_string(vm_state_name(vm->state)));
	if (vm->monitor)
		json_object_object_add(o, "pid", json_object_new_int(vm->monitor));
	return o;
}

/* "started", with the vsock CID the guest agent is reached at (or why it has none). */
static void started_event(struct daemon *d, struct vm_entry *vm)
{
	if (vm->vsock_cid)
		events_add(d, vm->name, "started", "monitor pid %d, vsock CID %u", (int)vm->monitor,
			   (unsigned)vm->vsock_cid);
	else if (vm->vsock_unavailable)
		events_add(d, vm->name, "started",
			   "monitor pid %d, no vsock device (vsock-cid = auto, but this host has no %s: "
			   "modprobe vhost_vsock)",
			   (int)vm->monitor, VSOCKCID_DEVICE);
	else
		events_add(d, vm->name, "started", "monitor pid %d", (int)vm->monitor);
}

static void answer_waiter(struct daemon *d, struct vm_entry *vm, struct json_object *reply)
{
	client_answer(d, &vm->waiter, reply);
}

static void fail_waiter(struct daemon *d, struct vm_entry *vm, const char *msg)
{
	client_answer_error(d, &vm->waiter, PROTO_ERROR, msg);
}

/* The monitor's directories, sockets left by a previous run removed, a fresh exit record. */
static int prepare_files(struct daemon *d, struct vm_entry *vm, struct err *e)
{
	char p[512];
	path(d, PATHS_VM_DIR, vm->name, p, sizeof(p));
	mkdir(p, 0750);
	if (path(d, PATHS_RUN_DIR, vm->name, p, sizeof(p)) < 0 || path(d, PATHS_SERIAL, vm->name, p, sizeof(p)) < 0)
		return err_set(e,
			       "VM '%s': the socket paths under %s are too long; use a shorter "
			       "--runtime-dir",
			       vm->name, d->paths.runtime);
	path(d, PATHS_RUN_DIR, vm->name, p, sizeof(p));
	mkdir(p, 0700);
	path(d, PATHS_CONTROL, vm->name, p, sizeof(p));
	unlink(p);
	path(d, PATHS_SERIAL, vm->name, p, sizeof(p));
	unlink(p);
	path(d, PATHS_VM_EXIT, vm->name, p, sizeof(p));
	unlink(p);
	path(d, PATHS_SERIAL_LOG, vm->name, p, sizeof(p));
	int fd = open(p, O_WRONLY | O_CREAT | O_APPEND | O_NOFOLLOW | O_CLOEXEC, 0600);
	if (fd < 0)
		return err_errno(e, errno, "cannot create %s", p);
	close(fd);
	return jailfiles_give(d, vm, e); /* with a jail: all of them to the VM's own uid */
}

/* With a jail, the monitor opens the VM's files as the VM's jail uid with the jail gid only:
 * say so now, clearly, for any it could not open (the jail shows each file itself, so only the
 * file's own mode counts). A file the VM writes belongs to its uid alone; one that several VMs
 * read (a kernel) may be open to the jail gid, which every monitor has. */
static int jail_can_open(const struct vm_entry *vm, const struct jail_id *id, const char *what, const char *file,
			 bool write, struct err *e)
{
	struct stat st;
	if (!id)
		return 0;
	if (stat(file, &st) < 0)
		return err_errno(e, errno, "cannot use %s '%s'", what, file);
	mode_t bits = st.st_uid == id->uid ? (st.st_mode >> 6) : st.st_gid == id->gid ? (st.st_mode >> 3) : st.st_mode;
	if ((bits & 4) && (!write || (bits & 2)))
		return 0;
	if (write)
		return err_set(e,
			       "%s '%s' is not writable by jail uid %u (VM '%s' runs as it); give it to that "
			       "uid alone (chown %u '%s'; chmod u+rw,go-rwx '%s')",
			       what, file, (unsigned)id->uid, vm->name, (unsigned)id->uid, file, file);
	return err_set(e,
		       "%s '%s' is not readable by jail uid %u gid %u (VM '%s' runs as them); give it to "
		       "that uid (chown %u '%s') or, to share it between VMs, open it to the gid (chgrp %u "
		       "'%s'; chmod g+r '%s')",
		       what, file, (unsigned)id->uid, (unsigned)id->gid, vm->name, (unsigned)id->uid, file,
		       (unsigned)id->gid, file, file);
}

static int jail_check(struct daemon *d, const struct vm_entry *vm, const struct vmdef *def, struct err *e)
{
	struct jail_id idv, *id = NULL;
	if (d->jail) {
		if (vm_jail_identity(d, vm->name, &idv, e) < 0)
			return -1;
		id = &idv;
	}
	const char *code, *vars_template; /* the template is root's to read, the copy the VM's */
	if ((def->kernel[0] && jail_can_open(vm, id, "kernel", def->kernel, false, e) < 0) ||
	    (def->initrd[0] && jail_can_open(vm, id, "initrd", def->initrd, false, e) < 0) ||
	    (vmdef_firmware_files(def, &code, &vars_template) && jail_can_open(vm, id, "firmware", code, false, e) < 0))
		return -1;
	for (unsigned i = 0; i < def->ndisks; i++) {
		const struct vmdef_disk *k = &def->disks[i];
		if (jail_can_open(vm, id, "disk", k->path, !k->readonly && !k->template_name[0], e) < 0)
			return -1;
	}
	/* udev makes /dev/vhost-vsock 0666 (group kvm); a bare devtmpfs leaves it root's. */
	struct err sub = {{0}};
	if (def->vsock_cid && jail_can_open(vm, id, "device", "/dev/vhost-vsock", true, &sub) < 0)
		return err_set(e,
			       "vsock: %s (udev's default rule is: chmod 0666 /dev/vhost-vsock; or "
			       "'modprobe vhost_vsock' if it is missing)",
			       sub.msg);
	return 0;
}

/* Opens the VM's lock file and takes its lock without waiting. Returns the fd, -2 when it
 * is held (the VM runs), -1 on error. */
static int take_lock(struct daemon *d, const char *name, struct err *e)
{
	char p[512];
	path(d, PATHS_VM_DIR, name, p, sizeof(p));
	mkdir(p, 0750);
	path(d, PATHS_VM_LOCK, name, p, sizeof(p));
	int fd = open(p, O_RDWR | O_CREAT | O_CLOEXEC, 0600);
	if (fd < 0)
		return err_errno(e, errno, "cannot open %s", p);
	if (flock(fd, LOCK_EX | LOCK_NB) < 0) {
		int saved = errno;
		close(fd);
		if (saved == EWOULDBLOCK)
			return -2;
		return err_errno(e, saved, "cannot lock %s", p);
	}
	return fd;
}

/* A keeper that could not start the monitor wrote why to the monitor's log (past at). */
static void keeper_failed(const char *mlog, off_t at, const char *name, struct err *e)
{
	struct stat st;
	size_t len;
	char *text =
		stat(mlog, &st) == 0 && st.st_size > at ? statefile_tail(mlog, (size_t)(st.st_size - at), &len) : NULL;
	if (text && strncmp(text, "shoji-keeper: ", 14) == 0) {
		text[strcspn(text, "\n")] = '\0';
		err_set(e, "VM '%s' did not start: %s", name, text + 14);
	}
	free(text);
}

/* The VM's cgroup, its keeper and monitor; the VM is starting once this returns 0. */
static int launch(struct daemon *d, struct vm_entry *vm, const struct vmdef *def, int lock, struct vmm_args *args,
		  struct err *e)
{
	char control[512], serial[512], slog[512], mlog[512], exitf[512], display[512], vol[512], vars[512];
	if (fwvars_path(d, vm, vars, sizeof(vars), e) < 0 || uplinks_prepare(d, vm, def, e) < 0)
		return -1;
	path(d, PATHS_CONTROL, vm->name, control, sizeof(control));
	path(d, PATHS_DISPLAY, vm->name, display, sizeof(display));
	path(d, PATHS_SERIAL, vm->name, serial, sizeof(serial));
	path(d, PATHS_SERIAL_LOG, vm->name, slog, sizeof(slog));
	path(d, PATHS_MONITOR_LOG, vm->name, mlog, sizeof(mlog));
	path(d, PATHS_VM_EXIT, vm->name, exitf, sizeof(exitf));
	path(d, PATHS_VM_VOLATILE, vm->name, vol, sizeof(vol));
	struct vmm_args_in in = {.vmm = d->vmm,
				 .control = control,
				 .serial_socket = serial,
				 .serial_log = slog,
				 .display = display,
				 .jail = d->jail,
				 .jail_uid = vm->jail_uid,
				 .jail_gid = d->jail_gid,
				 .net_uid = vm->net_assigned ? vm->net_uid : 0,
				 .volatile_dir = vm->disposable ? vol : NULL,
				 .firmware_vars = vars};
	if (vmm_args_build(def, &in, args, e) < 0)
		return -1;
	struct keeper_start ks = {.argv = args->argv,
				  .monitor_log = mlog,
				  .exit_file = exitf,
				  .lock_fd = lock,
				  .cgroup_procs_fd = -1,
				  .pid_ns = d->jail};
	pid_t keeper = 0, monitor = 0;
	struct stat st;
	off_t logged = stat(mlog, &st) == 0 ? st.st_size : 0;
	if (cgroup_vm_create(d, vm, def, &ks.cgroup_procs_fd, e) < 0)
		return -1;
	int r = keeper_spawn(&ks, &keeper, &monitor, e);
	if (ks.cgroup_procs_fd >= 0)
		close(ks.cgroup_procs_fd);
	if (r < 0) {
		if (keeper > 0)
			waitpid(keeper, NULL, 0);
		cgroup_vm_remove(d, vm);
		keeper_failed(mlog, logged, vm->name, e);
		return -1;
	}
	vm->keeper = keeper;
	vm->monitor = monitor;
	vm->our_child = true;
	vm->keeper_pidfd = pidfd_open_(keeper);
	vm->monitor_pidfd = pidfd_open_(monitor);
	vm->state = VM_STARTING;
	vm->started_at = daemon_wall();
	vm->start_ms = daemon_now_ms();
	vm->deadline_ms = vm->start_ms + DAEMON_START_TIMEOUT_MS;
	vm->stop_phase = 0;
	vm->stop_requested = vm->kill_requested = false;
	vm_save(d, vm);
	if (vm->keeper_pidfd < 0) /* cannot supervise it: end it at once */
		kill(monitor, SIGKILL);
	return 0;
}

int vm_start(struct daemon *d, struct vm_entry *vm, struct client *c, enum proto_code *code, struct err *e)
{
	*code = PROTO_STATE;
	if (vm_active(vm))
		return err_set(e, "VM '%s' is already %s", vm->name, vm_state_name(vm->state));
	struct vmdef *def = malloc(sizeof(*def));
	if (!def)
		return *code = PROTO_ERROR, err_set(e, "out of memory");
	if (vm_load_definition(d, vm->name, def, code, e) < 0) {
		free(def);
		return -1;
	}
	*code = PROTO_ERROR;
	if (fwvars_available(def, e) < 0) {
		free(def);
		return -1;
	}
	return pathcheck_start(d, vm, def, c, e); /* which goes on in vm_start_checked */
}

int vm_start_checked(struct daemon *d, struct vm_entry *vm, struct vmdef *def, struct client *c, enum proto_code *code,
		     struct err *e)
{
	struct vmm_args *args = malloc(sizeof(*args));
	int lock = -1, r = -1;
	char p0[512];
	*code = PROTO_STATE;
	if (vm_active(vm)) {
		err_set(e, "VM '%s' is already %s", vm->name, vm_state_name(vm->state));
		goto out;
	}
	*code = PROTO_ERROR;
	if (!args) {
		err_set(e, "out of memory");
		goto out;
	}
	char vol[512];
	path(d, PATHS_VM_VOLATILE, vm->name, vol, sizeof(vol));
	path(d, PATHS_VM_DIR, vm->name, p0, sizeof(p0));
	mkdir(p0, 0750);
	if (vm->disposable)
		mkdir(vol, 0700);
	if (jailuid_assign(d, vm, e) < 0 || template_apply(d, vm, def, code, e) < 0)
		goto out;
	*code = PROTO_ERROR;
	vsockcid_assign(d, vm, def);
	if (snapshot_apply(d, vm->name, def, e) < 0 || jail_check(d, vm, def, e) < 0)
		goto out;
	lock = take_lock(d, vm->name, e);
	if (lock == -2) {
		*code = PROTO_STATE;
		err_set(e, "VM '%s' is already running (its lock is held by another process)", vm->name);
		goto out;
	}
	if (lock < 0 || fwvars_create(d, vm, def, e) < 0 || prepare_files(d, vm, e) < 0)
		goto out;
	if (launch(d, vm, def, lock, args, e) < 0)
		goto out;
	vm->quiet_until_ms = 0; /* a new monitor */
	vm->waiter = c;
	vm->start_pending = true;
	r = 0;
out:
	if (r < 0)
		vm->nuses = 0;
	if (lock >= 0)
		close(lock); /* the keeper holds its own copy */
	free(args);
	return r;
}

/* Sends the next stop escalation. */
static void stop_step(struct daemon *d, struct vm_entry *vm)
{
	struct err e;
	vm->stop_phase++;
	if (vm->stop_phase == 2) {
		if (vm_control(d, vm, CONTROL_STOP, NULL, &e) == 0) {
			vm->deadline_ms = daemon_now_ms() + DAEMON_HARD_STOP_MS;
			return;
		}
		vm->stop_phase = 3;
	}
	if (vm->stop_phase >= 3) {
		if (vm->monitor_pidfd >= 0)
			pidfd_kill(vm->monitor_pidfd, SIGKILL);
		vm->deadline_ms = daemon_now_ms() + 60000;
	}
}

int vm_stop(struct daemon *d, struct vm_entry *vm, struct client *c, int timeout_s, enum proto_code *code,
	    struct err *e)
{
	*code = PROTO_STATE;
	if (vm->state == VM_STOPPED)
		return err_set(e, "VM '%s' is not running", vm->name);
	if (vm->waiter)
		return err_set(e, "VM '%s' is %s for another caller; try again when it is done", vm->name,
			       vm_state_name(vm->state));
	vm->stop_requested = true;
	vm->state = VM_STOPPING;
	vm->waiter = c;
	vm_save(d, vm);
	struct err sub;
	if (timeout_s > 0) {
		vm_control(d, vm, CONTROL_RESUME, NULL, &sub); /* a paused guest cannot see the button */
		struct json_object *rep, *via;
		if (vm_control(d, vm, CONTROL_SHUTDOWN, &rep, &sub) == 0) {
			/* the monitor says whether the guest's agent or the ACPI button was asked */
			const char *how = json_object_object_get_ex(rep, CONTROL_R_VIA, &via) &&
					json_object_is_type(via, json_type_string) &&
					strcmp(json_object_get_string(via), "agent") == 0
				? "the guest agent"
				: "the ACPI power button";
			events_add(d, vm->name, "shutdown", "asked through %s; hard stop after %d s", how, timeout_s);
			json_object_put(rep);
			vm->stop_phase = 1;
			vm->deadline_ms = daemon_now_ms() + (long long)timeout_s * 1000;
			return 0;
		}
	}
	vm->stop_phase = 1;
	stop_step(d, vm);
	return 0;
}

int vm_kill(struct daemon *d, struct vm_entry *vm, struct client *c, enum proto_code *code, struct err *e)
{
	*code = PROTO_STATE;
	if (vm->state == VM_STOPPED)
		return err_set(e, "VM '%s' is not running", vm->name);
	if (vm->monitor_pidfd < 0 || pidfd_kill(vm->monitor_pidfd, SIGKILL) < 0)
		return *code = PROTO_ERROR, err_errno(e, errno, "cannot kill the monitor of '%s'", vm->name);
	vm->kill_requested = true;
	vm->state = VM_STOPPING;
	vm->stop_phase = 3;
	vm->deadline_ms = daemon_now_ms() + 60000;
	if (!vm->waiter)
		vm->waiter = c; /* else the caller is answered at once: the other waiter gets the end */
	vm_save(d, vm);
	return 0;
}

int vm_pause(struct daemon *d, struct vm_entry *vm, bool pause, enum proto_code *code, struct err *e)
{
	*code = PROTO_STATE;
	if (vm->state != VM_RUNNING && vm->state != VM_PAUSED)
		return err_set(e, "VM '%s' is %s; only a running VM can be %s", vm->name, vm_state_name(vm->state),
			       pause ? "paused" : "resumed");
	*code = PROTO_ERROR;
	struct json_object *rep;
	if (vm_control(d, vm, pause ? CONTROL_PAUSE : CONTROL_RESUME, &rep, e) < 0)
		return -1;
	json_object_put(rep);
	enum vm_state was = vm->state;
	vm->state = pause ? VM_PAUSED : VM_RUNNING;
	if (was != vm->state) {
		vm_save(d, vm);
		events_add(d, vm->name, pause ? "paused" : "resumed", "%s", "");
	}
	return 0;
}

static const char *signal_text(int sig)
{
	switch (sig) {
	case SIGKILL: return "SIGKILL";
	case SIGSYS: return "SIGSYS: a system call outside the monitor's seccomp allow-list";
	case SIGSEGV: return "SIGSEGV";
	case SIGABRT: return "SIGABRT";
	case SIGTERM: return "SIGTERM";
	case SIGBUS: return "SIGBUS";
	default: return strsignal(sig);
	}
}

/* The last non-empty line of the monitor's log: its one-line reason. */
static void monitor_reason(struct daemon *d, const char *name, char *out, size_t size)
{
	char p[512], *text;
	size_t len;
	int en;
	out[0] = '\0';
	if (path(d, PATHS_MONITOR_LOG, name, p, sizeof(p)) < 0 ||
	    statefile_read(p, 16u << 20, &text, &len, &en, NULL) < 0)
		return;
	while (len && (text[len - 1] == '\n' || text[len - 1] == '\r'))
		text[--len] = '\0';
	char *nl = strrchr(text, '\n');
	snprintf(out, size, "%s", nl ? nl + 1 : text);
	free(text);
}

void vm_on_keeper_exit(struct daemon *d, struct vm_entry *vm)
{
	char p[512], reason[200];
	int status = 0, sig = 0;
	if (vm->our_child)
		waitpid(vm->keeper, NULL, WNOHANG);
	path(d, PATHS_VM_EXIT, vm->name, p, sizeof(p));
	bool known = keeper_read_exit(p, &status, &sig) == 0;
	if (!known && vm->monitor_pidfd >= 0)
		pidfd_kill(vm->monitor_pidfd, SIGKILL); /* the keeper is gone: do not leave an orphan */
	monitor_reason(d, vm->name, reason, sizeof(reason));
	enum vm_state was = vm->state;
	const char *event;
	if (!known) {
		event = "crashed";
		snprintf(vm->last_exit, sizeof(vm->last_exit), "the VM's keeper ended unexpectedly");
	} else if (sig) {
		bool asked = vm->kill_requested || vm->stop_phase >= 3;
		event = asked ? "stopped" : "crashed";
		snprintf(vm->last_exit, sizeof(vm->last_exit), "%s by signal %d (%s)",
			 asked ? "killed on request" : "monitor killed", sig, signal_text(sig));
	} else {
		static const char *const what[] = {"guest powered off",
						   "monitor could not start",
						   "guest rebooted",
						   "guest panicked",
						   "triple fault",
						   "KVM error",
						   "stopped"};
		const char *w = status >= 0 && status <= 6 ? what[status] : "unknown exit status";
		event = status == 0 || status == 6 || status == 2 ? "stopped" : status == 1 ? "failed" : "crashed";
		snprintf(vm->last_exit, sizeof(vm->last_exit), "exit status %d (%s)%s%s", status, w,
			 status && reason[0] ? ": " : "", status ? reason : "");
	}
	vm->state = VM_STOPPED;
	vm->keeper = vm->monitor = 0;
	vm->nuses = 0;
	close_pidfds(vm);
	usbassign_release_vm(d, vm->name);
	cgroup_vm_remove(d, vm);
	vm_save(d, vm);
	events_add(d, vm->name, event, "%s", vm->last_exit);
	netlinks_vm_stopped(d, vm->name);
	if (was == VM_STARTING || vm->start_pending) { /* ended (or was killed) while starting */
		vm->start_pending = false;
		char msg[400];
		snprintf(msg, sizeof(msg), "VM '%s' did not start: %s", vm->name, vm->last_exit);
		fail_waiter(d, vm, msg);
	} else {
		answer_waiter(d, vm, ok_reply(vm));
	}
	template_gc(d); /* template versions it alone kept */
	if (vm->disposable) {
		char name[VMDEF_NAME_MAX + 1];
		strcpy(name, vm->name);
		vm_remove(d, name);
		events_add(d, name, "removed", "disposable VM removed");
	}
}

/* Removes the files in dir (not following a symbolic link to it). */
static void empty_dir(const char *dir)
{
	int fd = open(dir, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
	DIR *dh = fd >= 0 ? fdopendir(fd) : NULL;
	struct dirent *de;
	while (dh && (de = readdir(dh)))
		if (strcmp(de->d_name, ".") && strcmp(de->d_name, ".."))
			unlinkat(dirfd(dh), de->d_name, 0);
	if (dh)
		closedir(dh);
	else if (fd >= 0)
		close(fd);
}

void vm_remove(struct daemon *d, const char *name)
{
	static const enum paths_file files[] = {PATHS_DEFINITION,    PATHS_VM_STATE,        PATHS_VM_LOCK,
						PATHS_VM_EXIT,       PATHS_SERIAL_LOG,      PATHS_MONITOR_LOG,
						PATHS_CONTROL,       PATHS_SERIAL,          PATHS_DISPLAY,
						PATHS_VM_DISPOSABLE, PATHS_SERIAL_LOG_OLD,  PATHS_MONITOR_LOG_OLD,
						PATHS_VM_UEFI_VARS,  PATHS_VM_UEFI_VARS_NEW};
	static const enum paths_file dirs[] = {PATHS_VM_VOLATILE, PATHS_VM_DISKS, PATHS_VM_DIR, PATHS_RUN_DIR};
	char p[512];
	snapshot_remove_all(d, name);
	/* Template roots and stray overlays; whatever a monitor named in its volatile directory. */
	if (path(d, PATHS_VM_DISKS, name, p, sizeof(p)) == 0)
		empty_dir(p);
	if (path(d, PATHS_VM_VOLATILE, name, p, sizeof(p)) == 0)
		empty_dir(p);
	for (size_t i = 0; i < sizeof(files) / sizeof(files[0]); i++)
		if (path(d, files[i], name, p, sizeof(p)) == 0 && unlink(p) < 0 && errno != ENOENT)
			fprintf(stderr, "shojid: cannot remove %s: %s\n", p, strerror(errno));
	for (size_t i = 0; i < sizeof(dirs) / sizeof(dirs[0]); i++)
		if (path(d, dirs[i], name, p, sizeof(p)) == 0 && rmdir(p) < 0 && errno != ENOENT)
			fprintf(stderr, "shojid: cannot remove %s: %s\n", p, strerror(errno));
	struct vm_entry *vm = vm_find(d, name, false);
	if (vm)
		vm->used = false;
}

int vm_run_disposable(struct daemon *d, const char *definition, struct client *c, enum proto_code *code, struct err *e)
{
	struct vmdef *def = malloc(sizeof(*def));
	char *text = malloc(65536), name[VMDEF_NAME_MAX + 1] = "", p[512];
	int r = -1;
	*code = PROTO_USAGE;
	if (!def || !text) {
		err_set(e, "out of memory");
		goto out;
	}
	if (vmdef_parse(definition, "disposable", def, e) < 0)
		goto out;
	if (def->ndisks == 0 || !def->disks[0].template_name[0]) {
		err_set(e, "a disposable VM's first disk must be on a template");
		goto out;
	}
	*code = PROTO_ERROR;
	for (unsigned n = 1; n < 100000 && !name[0]; n++) {
		snprintf(name, sizeof(name), "disp%u", n);
		path(d, PATHS_DEFINITION, name, p, sizeof(p));
		if (access(p, F_OK) == 0 || vm_find(d, name, false))
			name[0] = '\0';
	}
	strcpy(def->name, name);
	if (vmdef_format(def, text, 65536) < 0) {
		err_set(e, "the definition is too large");
		goto out;
	}
	struct vm_entry *vm = vm_find(d, name, true);
	if (!vm) {
		err_set(e, "shojid supervises at most %d VMs", DAEMON_MAX_VMS);
		goto out;
	}
	vm->disposable = true;
	vm->owner = c->uid; /* saved with its state below */
	path(d, PATHS_VMS, NULL, p, sizeof(p));
	mkdir(p, 0750);
	path(d, PATHS_VM_DIR, name, p, sizeof(p));
	mkdir(p, 0750);
	/* The mark first: a daemon that dies now finds a disposable to remove, not a VM. */
	path(d, PATHS_VM_DISPOSABLE, name, p, sizeof(p));
	if (statefile_write(p, "", 0, false, e) < 0) {
		vm_remove(d, name);
		goto out;
	}
	path(d, PATHS_DEFINITION, name, p, sizeof(p));
	if (statefile_write(p, text, strlen(text), true, e) < 0 || vm_start(d, vm, c, code, e) < 0) {
		vm_remove(d, name);
		goto out;
	}
	events_add(d, name, "created", "disposable, on template %s", def->disks[0].template_name);
	r = 0;
out:
	free(def);
	free(text);
	return r;
}

static void start_progress(struct daemon *d, struct vm_entry *vm)
{
	struct json_object *rep;
	struct err e;
	if (vm_control(d, vm, CONTROL_STATUS, &rep, &e) == 0) {
		struct json_object *st;
		vm->state = json_object_object_get_ex(rep, CONTROL_R_STATE, &st) &&
				strcmp(json_object_get_string(st), "paused") == 0
			? VM_PAUSED
			: VM_RUNNING;
		json_object_put(rep);
		vm_save(d, vm);
		started_event(d, vm);
		vm->start_pending = false;
		uplinks_vm_running(d, vm); /* its user-mode network before start returns */
		answer_waiter(d, vm, ok_reply(vm));
		netlinks_vm_running(d, vm);
		return;
	}
	if (daemon_now_ms() > vm->deadline_ms) {
		snprintf(vm->last_exit, sizeof(vm->last_exit), "its control socket did not answer in %d s",
			 DAEMON_START_TIMEOUT_MS / 1000);
		if (vm->monitor_pidfd >= 0)
			pidfd_kill(vm->monitor_pidfd, SIGKILL);
		vm->stop_phase = 3;
	}
}

int vm_start_poll_ms(const struct daemon *d)
{
	long long now = daemon_now_ms(), soonest = -1;
	for (int i = 0; i < DAEMON_MAX_VMS; i++) {
		const struct vm_entry *vm = &d->vms[i];
		if (!vm->used || vm->state != VM_STARTING || vm->stop_phase != 0)
			continue;
		long long ms = (now - vm->start_ms) / 10;
		ms = ms < 5 ? 5 : ms > 50 ? 50 : ms;
		soonest = soonest < 0 || ms < soonest ? ms : soonest;
	}
	return (int)soonest;
}

void vm_tick(struct daemon *d)
{
	for (int i = 0; i < DAEMON_MAX_VMS; i++) {
		struct vm_entry *vm = &d->vms[i];
		if (!vm->used)
			continue;
		if (vm->state == VM_STARTING && vm->stop_phase == 0)
			start_progress(d, vm);
		else if (vm->state == VM_STOPPING && vm->stop_phase < 3 && daemon_now_ms() > vm->deadline_ms)
			stop_step(d, vm);
	}
	uplinks_tick(d);
	cgroup_tick(d);
}

/* True when pid is the monitor of this VM: its parent is the keeper and its command line
 * carries this VM's control socket. */
static bool is_our_monitor(struct daemon *d, const char *name, pid_t pid, pid_t keeper)
{
	char p[64], control[512], buf[16384];
	snprintf(p, sizeof(p), "/proc/%d/stat", (int)pid);
	FILE *f = fopen(p, "r");
	if (!f)
		return false;
	size_t n = fread(buf, 1, sizeof(buf) - 1, f);
	fclose(f);
	buf[n] = '\0';
	char *close_paren = strrchr(buf, ')');
	int ppid = 0;
	if (!close_paren || sscanf(close_paren + 1, " %*c %d", &ppid) != 1 || ppid != keeper)
		return false;
	snprintf(p, sizeof(p), "/proc/%d/cmdline", (int)pid);
	f = fopen(p, "r");
	if (!f)
		return false;
	n = fread(buf, 1, sizeof(buf), f);
	fclose(f);
	path(d, PATHS_CONTROL, name, control, sizeof(control));
	for (size_t i = 0; i < n;) {
		const char *arg = buf + i;
		size_t len = strnlen(arg, n - i);
		if (strcmp(arg, "--control-socket") == 0 && i + len + 1 < n &&
		    strncmp(buf + i + len + 1, control, n - i - len - 1) == 0)
			return true;
		i += len + 1;
	}
	return false;
}

/* What a VM's state file says of its last run, for its adoption. */
struct recorded_run {
	char state[32], last_exit[256];
	pid_t keeper, monitor;
	double started;
};

/* o's integer key when it lies in (lo, hi): true and *out; false otherwise (absent, other type). */
static bool json_int_between(struct json_object *o, const char *key, long long lo, long long hi, long long *out)
{
	struct json_object *v;
	if (!o || !json_object_object_get_ex(o, key, &v) || !json_object_is_type(v, json_type_int))
		return false;
	*out = json_object_get_int64(v);
	return *out > lo && *out < hi;
}

/* The state file's record of the VM's last run into *run, and what the entry keeps from it
 * (the disks it used, its owner, its vsock CID, its jail uids). The file is shojid's own, but
 * each value is checked as if it were not. */
static void read_recorded_run(struct daemon *d, struct vm_entry *vm, struct json_object *o, struct recorded_run *run)
{
	struct json_object *v;
	long long n;
	if (o && json_object_object_get_ex(o, "state", &v))
		snprintf(run->state, sizeof(run->state), "%s", json_object_get_string(v));
	if (o && json_object_object_get_ex(o, "keeper_pid", &v))
		run->keeper = json_object_get_int(v);
	if (o && json_object_object_get_ex(o, "monitor_pid", &v))
		run->monitor = json_object_get_int(v);
	if (o && json_object_object_get_ex(o, "last_exit", &v))
		snprintf(run->last_exit, sizeof(run->last_exit), "%s", json_object_get_string(v));
	run->started = o && json_object_object_get_ex(o, "started", &v) ? json_object_get_double(v) : 0;
	if (o && json_object_object_get_ex(o, "uses", &v))
		for (size_t i = 0; i < json_object_array_length(v) && vm->nuses < VMDEF_MAX_DISKS; i++)
			snprintf(vm->uses[vm->nuses++], sizeof(vm->uses[0]), "%s",
				 json_object_get_string(json_object_array_get_idx(v, i)));
	if (json_int_between(o, "owner", -1, 0x7fffffff, &n))
		vm->owner = (uid_t)n; /* absent: root's, from before owners */
	if (json_int_between(o, "vsock_cid", 2, 0xFFFFFFFFll, &n))
		vm->vsock_cid = (uint32_t)n; /* running: kept from other autos */
	if (json_int_between(o, "jail_uid", 0, 0x7fffffff, &n))
		jailuid_recorded(d, vm, (uid_t)n);
	if (json_int_between(o, "net_uid", 0, 0x7fffffff, &n))
		jailuid_recorded_net(d, vm, (uid_t)n);
}

/* Nobody holds the VM's lock: it is not running. A disposable VM left by a daemon that ended
 * before it could remove it is removed; one that ended while no daemon watched it is seen
 * ending now. */
static void adopt_unlocked(struct daemon *d, struct vm_entry *vm, const char *name, const char *state)
{
	bool stopped = !state[0] || strcmp(state, "stopped") == 0;
	if (vm->disposable && stopped) {
		vm_remove(d, name);
		events_add(d, name, "removed", "disposable VM removed");
		return;
	}
	if (stopped)
		return;
	vm->state = VM_RUNNING;
	vm->our_child = false;
	vm_on_keeper_exit(d, vm);
}

/* The VM's lock is held: its keeper and monitor run. The keeper's own record of the pids wins
 * over the state file (which a daemon killed at the wrong moment may not have written); the
 * processes are taken back only where they are still this VM's. */
static void adopt_running(struct daemon *d, struct vm_entry *vm, const char *name, const struct recorded_run *run)
{
	char p[512], *pids;
	size_t len;
	int en;
	pid_t keeper = run->keeper, monitor = run->monitor;
	if (path(d, PATHS_VM_LOCK, name, p, sizeof(p)) == 0 && statefile_read(p, 64, &pids, &len, &en, NULL) == 0) {
		int k, m;
		if (sscanf(pids, "%d %d", &k, &m) == 2 && k > 0 && m > 0) {
			keeper = k;
			monitor = m;
		}
		free(pids);
	}
	int kfd = keeper > 0 ? pidfd_open_(keeper) : -1;
	int mfd = monitor > 0 ? pidfd_open_(monitor) : -1;
	if (kfd < 0 || mfd < 0 || !is_our_monitor(d, name, monitor, keeper)) {
		if (kfd >= 0)
			close(kfd);
		if (mfd >= 0)
			close(mfd);
		fprintf(stderr,
			"shojid: VM '%s' is locked but its recorded monitor (pid %d) is not there; leaving it alone\n",
			name, (int)monitor);
		return;
	}
	vm->keeper = keeper;
	vm->monitor = monitor;
	vm->keeper_pidfd = kfd;
	vm->monitor_pidfd = mfd;
	vm->our_child = false;
	vm->started_at = run->started;
	vm->state = VM_RUNNING;
	cgroup_vm_adopt(vm, keeper);
	struct json_object *rep, *v;
	struct err e;
	if (vm_control(d, vm, CONTROL_STATUS, &rep, &e) == 0) {
		if (json_object_object_get_ex(rep, CONTROL_R_STATE, &v) &&
		    strcmp(json_object_get_string(v), "paused") == 0)
			vm->state = VM_PAUSED;
		json_object_put(rep);
	}
	vm_save(d, vm);
	events_add(d, name, "adopted", "monitor pid %d", (int)monitor);
	uplinks_vm_running(d, vm);
	netlinks_vm_running(d, vm);
}

static void adopt(struct daemon *d, const char *name)
{
	char p[512], *text;
	size_t len;
	int en;
	if (path(d, PATHS_VM_STATE, name, p, sizeof(p)) < 0)
		return;
	struct json_object *o = NULL;
	if (statefile_read(p, 65536, &text, &len, &en, NULL) == 0) { /* else: never started */
		o = json_tokener_parse(text);
		free(text);
	}
	struct vm_entry *vm = vm_find(d, name, true);
	if (!vm) {
		json_object_put(o);
		return;
	}
	struct recorded_run run = {0};
	read_recorded_run(d, vm, o, &run);
	json_object_put(o);
	if (path(d, PATHS_VM_DISPOSABLE, name, p, sizeof(p)) == 0 && access(p, F_OK) == 0)
		vm->disposable = true;
	snprintf(vm->last_exit, sizeof(vm->last_exit), "%s", run.last_exit);
	struct err e;
	int lock = take_lock(d, name, &e);
	if (lock >= 0) {
		close(lock);
		adopt_unlocked(d, vm, name, run.state);
	} else {
		adopt_running(d, vm, name, &run);
	}
}

void vm_each_defined(struct daemon *d, void (*fn)(struct daemon *, const char *, void *), void *arg)
{
	char dir[512];
	path(d, PATHS_VMS, NULL, dir, sizeof(dir));
	struct dirent **list;
	int n = scandir(dir, &list, NULL, alphasort);
	for (int i = 0; i < n; i++) {
		size_t len = strlen(list[i]->d_name);
		if (len > 4 && strcmp(list[i]->d_name + len - 4, ".ini") == 0) {
			list[i]->d_name[len - 4] = '\0';
			if (vmdef_name_ok(list[i]->d_name))
				fn(d, list[i]->d_name, arg);
		}
		free(list[i]);
	}
	if (n >= 0)
		free(list);
}

static void adopt_one(struct daemon *d, const char *name, void *arg)
{
	(void)arg;
	adopt(d, name);
}

void vm_adopt_all(struct daemon *d)
{
	vm_each_defined(d, adopt_one, NULL);
}
