/* snapshots: external snapshots of a VM's persistent qcow2 disks. Each such disk is a chain
 * of files, its definition's path at the bottom and overlays in STATE/vms/NAME/disks above;
 * the VM writes the top one. A snapshot freezes the top file of each disk and puts a new,
 * empty overlay on it (O(1) in the disk's size): offline when the VM is stopped, or through
 * the monitor's disk-snapshot command while it runs. Revert drops the files above the
 * snapshot's and starts a fresh overlay on it; delete folds the snapshot's file into the one
 * above it (block_merge), or, for the definition's own image at the bottom, folds the file
 * above into it (block_commit), so the definition's path stays in use and no whole disk is
 * copied. The chains and snapshots are kept in STATE/vms/NAME/snapshots.json, written
 * atomically after the files they name exist and before the files they drop are removed. */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "../../block/block.h"
#include "../../block/block_merge.h"
#include "../../block/qcow2.h"
#include "../statefile.h"
#include "snapshots.h"

static int spath(struct daemon *d, enum paths_file f, const char *name, char *buf, size_t size)
{
	return paths_get(&d->paths, f, name, buf, size, NULL);
}

/* Copies src (NULL: empty), cut to size; the two may share an array of the state. */
void snap_copy_str(char *dst, size_t size, const char *src)
{
	size_t n = 0;
	while (src && n + 1 < size && src[n])
		n++;
	if (n)
		memmove(dst, src, n);
	dst[n] = '\0';
}

int snap_load(struct daemon *d, const char *name, struct snap_state *st, struct err *e)
{
	char p[512], *text;
	size_t len;
	int en;
	memset(st, 0, sizeof(*st));
	spath(d, PATHS_VM_SNAPSHOTS, name, p, sizeof(p));
	struct err sub;
	if (statefile_read(p, 1u << 20, &text, &len, &en, &sub) < 0)
		return en == ENOENT ? 0 : err_set(e, "%s", sub.msg);
	struct json_object *o = json_tokener_parse(text), *v, *arr;
	free(text);
	if (!o)
		return err_set(e, "%s is not valid JSON; restore it or remove it (losing the snapshots)", p);
	if (json_object_object_get_ex(o, "seq", &v))
		st->seq = (unsigned)json_object_get_int(v);
	if (json_object_object_get_ex(o, "disks", &arr))
		for (size_t i = 0; i < json_object_array_length(arr) && st->nchains < VMDEF_MAX_DISKS; i++) {
			struct json_object *c = json_object_array_get_idx(arr, i), *files;
			struct snap_chain *ch = &st->chains[st->nchains++];
			snap_copy_str(ch->id, sizeof(ch->id),
				      json_object_object_get_ex(c, "id", &v) ? json_object_get_string(v) : "");
			if (json_object_object_get_ex(c, "chain", &files))
				for (size_t k = 0; k < json_object_array_length(files) && ch->n < SNAP_MAX + 2; k++)
					snap_copy_str(ch->files[ch->n++], SNAP_PATH,
						      json_object_get_string(json_object_array_get_idx(files, k)));
		}
	if (json_object_object_get_ex(o, "snapshots", &arr))
		for (size_t i = 0; i < json_object_array_length(arr) && st->nsnaps < SNAP_MAX; i++) {
			struct json_object *s = json_object_array_get_idx(arr, i), *files;
			struct snap_entry *se = &st->snaps[st->nsnaps++];
			snap_copy_str(se->name, sizeof(se->name),
				      json_object_object_get_ex(s, "name", &v) ? json_object_get_string(v) : "");
			se->time = json_object_object_get_ex(s, "time", &v) ? json_object_get_double(v) : 0;
			for (unsigned c = 0; c < st->nchains; c++)
				if (json_object_object_get_ex(s, "files", &files) &&
				    json_object_object_get_ex(files, st->chains[c].id, &v))
					snap_copy_str(se->files[c], SNAP_PATH, json_object_get_string(v));
		}
	json_object_put(o);
	return 0;
}

static struct json_object *chains_json(const struct snap_state *st)
{
	struct json_object *disks = json_object_new_array();
	for (unsigned c = 0; c < st->nchains; c++) {
		struct json_object *ch = json_object_new_object(), *files = json_object_new_array();
		json_object_object_add(ch, "id", json_object_new_string(st->chains[c].id));
		for (unsigned k = 0; k < st->chains[c].n; k++)
			json_object_array_add(files, json_object_new_string(st->chains[c].files[k]));
		json_object_object_add(ch, "chain", files);
		json_object_array_add(disks, ch);
	}
	return disks;
}

int snap_save(struct daemon *d, const char *name, const struct snap_state *st, struct err *e)
{
	char p[512];
	spath(d, PATHS_VM_SNAPSHOTS, name, p, sizeof(p));
	bool empty = st->nsnaps == 0;
	for (unsigned c = 0; c < st->nchains; c++)
		empty = empty && st->chains[c].n <= 1;
	if (empty)
		return unlink(p) < 0 && errno != ENOENT ? err_errno(e, errno, "cannot remove %s", p) : 0;
	struct json_object *o = json_object_new_object(), *snaps = json_object_new_array();
	json_object_object_add(o, "seq", json_object_new_int((int)st->seq));
	for (unsigned i = 0; i < st->nsnaps; i++) {
		struct json_object *s = json_object_new_object(), *files = json_object_new_object();
		json_object_object_add(s, "name", json_object_new_string(st->snaps[i].name));
		json_object_object_add(s, "time", json_object_new_double(st->snaps[i].time));
		for (unsigned c = 0; c < st->nchains; c++)
			if (st->snaps[i].files[c][0])
				json_object_object_add(files, st->chains[c].id,
						       json_object_new_string(st->snaps[i].files[c]));
		json_object_object_add(s, "files", files);
		json_object_array_add(snaps, s);
	}
	json_object_object_add(o, "disks", chains_json(st));
	json_object_object_add(o, "snapshots", snaps);
	const char *s = json_object_to_json_string_ext(o, JSON_C_TO_STRING_PRETTY | JSON_C_TO_STRING_NOSLASHESCAPE);
	int r = statefile_write(p, s, strlen(s), false, e);
	json_object_put(o);
	return r;
}

int snap_find_chain(const struct snap_state *st, const char *id)
{
	for (unsigned c = 0; c < st->nchains; c++)
		if (strcmp(st->chains[c].id, id) == 0)
			return (int)c;
	return -1;
}

int snap_find_snap(const struct snap_state *st, const char *name)
{
	for (unsigned i = 0; i < st->nsnaps; i++)
		if (strcmp(st->snaps[i].name, name) == 0)
			return (int)i;
	return -1;
}

int snap_find_file(const struct snap_chain *ch, const char *file)
{
	for (unsigned k = 0; k < ch->n; k++)
		if (strcmp(ch->files[k], file) == 0)
			return (int)k;
	return -1;
}

/* Root makes path, new and empty, and gives it to the VM's jail uid: its descriptor (root's), or
 * -1 with e. */
static int owned_file(struct daemon *d, const char *vm, const char *path, struct err *e)
{
	struct jail_id id;
	if (d->jail && vm_jail_identity(d, vm, &id, e) < 0)
		return -1;
	unlink(path);
	int fd = open(path, O_RDWR | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, 0600);
	if (fd < 0)
		return err_errno(e, errno, "cannot create %s", path);
	if (d->jail && fchown(fd, id.uid, id.gid) < 0) {
		int en = errno;
		close(fd);
		unlink(path);
		return err_errno(e, en, "cannot give %s to jail uid %u", path, (unsigned)id.uid);
	}
	return fd;
}

int snap_overlay_file(struct daemon *d, const char *vm, const char *path, struct err *e)
{
	int fd = owned_file(d, vm, path, e);
	if (fd < 0)
		return -1;
	close(fd);
	return 0;
}

int overlay_create_sized(struct daemon *d, const char *vm, const char *path, const char *backing, uint64_t size,
			 struct err *e)
{
	int fd = owned_file(d, vm, path, e);
	if (fd < 0)
		return -1;
	struct qcow2_create_opts o = {.size = size, .backing = backing, .backing_format = "qcow2"};
	int r = qcow2_create_fd(fd, path, &o, e);
	close(fd);
	if (r < 0)
		unlink(path);
	return r;
}

/* A new overlay file name for disk id: STATE/vms/NAME/disks/ID.SEQ.qcow2. */
int snap_new_file(struct daemon *d, const char *name, struct snap_state *st, const char *id, char *out, struct err *e)
{
	char dir[512];
	spath(d, PATHS_VM_DIR, name, dir, sizeof(dir));
	mkdir(dir, 0750);
	spath(d, PATHS_VM_DISKS, name, dir, sizeof(dir));
	mkdir(dir, 0750);
	int n = snprintf(out, VMDEF_PATH_MAX, "%s/%s.%u.qcow2", dir, id, ++st->seq);
	if (n < 0 || n >= VMDEF_PATH_MAX)
		return err_set(e, "the state directory's path is too long for disk files; use a shorter --state-dir");
	return 0;
}

int snap_chain_for(struct snap_state *st, const struct vmdef_disk *k)
{
	int c = snap_find_chain(st, k->id);
	if (c < 0) {
		c = (int)st->nchains++;
		memset(&st->chains[c], 0, sizeof(st->chains[c]));
		snap_copy_str(st->chains[c].id, sizeof(st->chains[c].id), k->id);
		snap_copy_str(st->chains[c].files[0], SNAP_PATH, k->path);
		st->chains[c].n = 1;
	}
	return c;
}

/* Which of the definition's disks snapshots cover: writable disks on files (template disks
 * are volatile, read-only ones never change). Raw ones cannot be. */
bool snap_covered(const struct vmdef_disk *k)
{
	return !k->template_name[0] && !k->readonly;
}

static int check_disks(const struct vmdef *def, const struct snap_state *st, enum proto_code *code, struct err *e)
{
	unsigned n = 0;
	*code = PROTO_USAGE;
	for (unsigned i = 0; i < def->ndisks; i++) {
		const struct vmdef_disk *k = &def->disks[i];
		if (!snap_covered(k))
			continue;
		if (k->format != VMDEF_DISK_QCOW2)
			return err_set(e,
				       "VM '%s': disk '%s' is raw, and snapshots need qcow2; convert it "
				       "(qemu-img convert -O qcow2 %s NEW.qcow2), then shoji set %s disk.%s.path=NEW.qcow2 "
				       "disk.%s.format=qcow2",
				       def->name, k->id, k->path, def->name, k->id, k->id);
		int c = snap_find_chain(st, k->id);
		if (c >= 0 && strcmp(st->chains[c].files[0], k->path))
			return *code = PROTO_STATE,
			       err_set(e,
				       "VM '%s': disk '%s' has snapshots of %s but its path is now %s; set the path "
				       "back or delete its snapshots",
				       def->name, k->id, st->chains[c].files[0], k->path);
		n++;
	}
	if (!n)
		return err_set(e, "VM '%s' has no writable qcow2 disk to snapshot (template disks are volatile)",
			       def->name);
	return 0;
}

int snapshot_apply(struct daemon *d, const char *name, struct vmdef *def, struct err *e)
{
	struct snap_state *st = malloc(sizeof(*st));
	int r = -1;
	if (!st)
		return err_set(e, "out of memory");
	if (snap_load(d, name, st, e) < 0)
		goto out;
	r = 0;
	for (unsigned i = 0; i < def->ndisks && r == 0; i++) {
		struct vmdef_disk *k = &def->disks[i];
		int c = snap_find_chain(st, k->id);
		if (c < 0 || st->chains[c].n <= 1 || !snap_covered(k))
			continue;
		if (strcmp(st->chains[c].files[0], k->path) || k->format != VMDEF_DISK_QCOW2)
			r = err_set(e,
				    "VM '%s': disk '%s' has snapshots of %s (qcow2) but is now %s (%s); set it back "
				    "or delete its snapshots",
				    name, k->id, st->chains[c].files[0], k->path,
				    k->format == VMDEF_DISK_QCOW2 ? "qcow2" : "raw");
		else
			snap_copy_str(k->path, sizeof(k->path), st->chains[c].files[st->chains[c].n - 1]);
	}
out:
	free(st);
	return r;
}

/* disk-snapshot through the monitor: the new empty file passed as a descriptor. */
static int live_snapshot(struct daemon *d, struct vm_entry *vm, unsigned index, const char *file, const char *backing,
			 double *paused_ms, struct err *e)
{
	int fd = owned_file(d, vm->name, file, e);
	if (fd < 0)
		return -1;
	struct json_object *req = json_object_new_object(), *rep = NULL, *v;
	char disk[16];
	snprintf(disk, sizeof(disk), "%u", index);
	json_object_object_add(req, "cmd", json_object_new_string(control_cmd_name(CONTROL_DISK_SNAPSHOT)));
	json_object_object_add(req, CONTROL_F_DISK, json_object_new_string(disk));
	json_object_object_add(req, CONTROL_F_BACKING, json_object_new_string(backing));
	int r = vm_control_req(d, vm, req, fd, &rep, e);
	close(fd);
	if (r < 0) {
		unlink(file);
		return -1;
	}
	if (json_object_object_get_ex(rep, CONTROL_R_PAUSED_MS, &v))
		*paused_ms += json_object_get_double(v);
	json_object_put(rep);
	return 0;
}

struct json_object *snap_reply_ok(void)
{
	struct json_object *o = json_object_new_object();
	json_object_object_add(o, "ok", json_object_new_boolean(1));
	return o;
}

static int load_both(struct daemon *d, const char *name, struct vmdef *def, struct snap_state *st,
		     enum proto_code *code, struct err *e)
{
	if (vm_load_definition(d, name, def, code, e) < 0)
		return -1;
	*code = PROTO_ERROR;
	return snap_load(d, name, st, e);
}

/* The definition changed after the VM started: its disk order may not be the monitor's. */
static bool edited_since_start(struct daemon *d, const struct vm_entry *vm)
{
	char p[512];
	struct stat s;
	spath(d, PATHS_DEFINITION, vm->name, p, sizeof(p));
	return stat(p, &s) == 0 && (double)s.st_mtim.tv_sec + s.st_mtim.tv_nsec / 1e9 > vm->started_at;
}

/* While the VM runs: each disk switched to a new overlay by its monitor. */
static struct json_object *live_create(struct daemon *d, struct vm_entry *vm, const struct vmdef *def,
				       struct snap_state *st, struct snap_entry *se, enum proto_code *code,
				       struct err *e)
{
	unsigned ncovered = 0;
	double paused_ms = 0;
	bool paused_here = false;
	struct json_object *reply = NULL;
	for (unsigned i = 0; i < def->ndisks; i++)
		ncovered += snap_covered(&def->disks[i]);
	/* The monitor holds each disk's requests for its switch while the vCPUs run on; several
	 * disks switch at one guest instant only when the whole VM is paused around them (the
	 * reply's paused_ms is then the sum of the disks' holds, not this pause). */
	if (vm->state == VM_RUNNING && ncovered > 1) {
		if (vm_pause(d, vm, true, code, e) < 0)
			return NULL;
		paused_here = true;
	}
	*code = PROTO_ERROR;
	unsigned i;
	for (i = 0; i < def->ndisks; i++) {
		const struct vmdef_disk *k = &def->disks[i];
		if (!snap_covered(k))
			continue;
		int c = snap_chain_for(st, k);
		struct snap_chain *ch = &st->chains[c];
		char file[VMDEF_PATH_MAX];
		const char *top = ch->files[ch->n - 1];
		if (snap_new_file(d, vm->name, st, k->id, file, e) < 0 ||
		    live_snapshot(d, vm, i, file, top, &paused_ms, e) < 0)
			break;
		snap_copy_str(se->files[c], SNAP_PATH, top);
		snap_copy_str(ch->files[ch->n++], SNAP_PATH, file);
	}
	if (i < def->ndisks) {
		/* Disks already switched keep their new overlays (the chains say so); no snapshot
		 * is recorded. */
		struct err ignored;
		snap_save(d, vm->name, st, &ignored);
	} else {
		st->snaps[st->nsnaps++] = *se;
		if (snap_save(d, vm->name, st, e) == 0) {
			reply = snap_reply_ok();
			json_object_object_add(reply, "name", json_object_new_string(vm->name));
			json_object_object_add(reply, "snapshot", json_object_new_string(se->name));
			json_object_object_add(reply, "live", json_object_new_boolean(1));
			json_object_object_add(reply, "paused_ms", json_object_new_double(paused_ms));
			events_add(d, vm->name, "snapshot", "created %s (live)", se->name);
		}
	}
	if (paused_here) {
		enum proto_code c2;
		struct err e2;
		vm_pause(d, vm, false, &c2, &e2);
	}
	return reply;
}

/* The snapshot's name (given, or the first free snapN), not taken, with room for it. */
static int name_snapshot(const char *name, const struct snap_state *st, const char *want, struct snap_entry *se,
			 enum proto_code *code, struct err *e)
{
	memset(se, 0, sizeof(*se));
	se->time = daemon_wall();
	if (want[0])
		snap_copy_str(se->name, sizeof(se->name), want);
	else
		for (unsigned n = st->nsnaps + 1; !se->name[0] || snap_find_snap(st, se->name) >= 0; n++)
			snprintf(se->name, sizeof(se->name), "snap%u", n);
	if (snap_find_snap(st, se->name) >= 0)
		return *code = PROTO_EXISTS,
		       err_set(e, "VM '%s' already has a snapshot '%s'; pick another name", name, se->name);
	if (st->nsnaps == SNAP_MAX)
		return *code = PROTO_STATE,
		       err_set(e, "VM '%s' has %d snapshots, the most shoji keeps; delete one first", name, SNAP_MAX);
	return 0;
}

enum api_outcome snapshot_create(struct daemon *d, struct client *c, const char *name, const char *want,
				 struct json_object **reply, enum proto_code *code, struct err *e)
{
	struct vmdef *def = malloc(sizeof(*def));
	struct snap_state *st = malloc(sizeof(*st));
	struct snap_entry *se = malloc(sizeof(*se));
	enum api_outcome how = API_FAILED;
	struct vm_entry *vm = vm_find(d, name, false);
	bool live = vm && vm_active(vm);
	*code = PROTO_ERROR;
	if (!def || !st || !se) {
		err_set(e, "out of memory");
		goto out;
	}
	if (load_both(d, name, def, st, code, e) < 0 || check_disks(def, st, code, e) < 0)
		goto out;
	*code = PROTO_STATE;
	if (live && vm->state != VM_RUNNING && vm->state != VM_PAUSED) {
		err_set(e, "VM '%s' is %s; try again when it is running or stopped", name, vm_state_name(vm->state));
		goto out;
	}
	if (live && edited_since_start(d, vm)) {
		err_set(e,
			"VM '%s' was edited since it started, so its disks may not be the running ones; "
			"stop it to take a snapshot",
			name);
		goto out;
	}
	if (name_snapshot(name, st, want, se, code, e) < 0)
		goto out;
	if (live)
		how = (*reply = live_create(d, vm, def, st, se, code, e)) ? API_REPLY : API_FAILED;
	else if (snapjob_create(d, c, name, st, def, se, code, e) == 0)
		how = API_PARKED;
out:
	free(def);
	free(st);
	free(se);
	return how;
}

struct json_object *snapshot_list(struct daemon *d, const char *name, enum proto_code *code, struct err *e)
{
	struct vmdef *def = malloc(sizeof(*def));
	struct snap_state *st = malloc(sizeof(*st));
	struct json_object *reply = NULL;
	if (!def || !st) {
		err_set(e, "out of memory");
	} else if (load_both(d, name, def, st, code, e) == 0) {
		struct json_object *arr = json_object_new_array();
		for (unsigned i = 0; i < st->nsnaps; i++) {
			struct json_object *s = json_object_new_object(), *disks = json_object_new_array();
			json_object_object_add(s, "name", json_object_new_string(st->snaps[i].name));
			json_object_object_add(s, "time", json_object_new_double(st->snaps[i].time));
			for (unsigned c = 0; c < st->nchains; c++)
				if (st->snaps[i].files[c][0])
					json_object_array_add(disks, json_object_new_string(st->chains[c].id));
			json_object_object_add(s, "disks", disks);
			json_object_array_add(arr, s);
		}
		reply = snap_reply_ok();
		json_object_object_add(reply, "snapshots", arr);
		json_object_object_add(reply, "disks", chains_json(st));
	}
	free(def);
	free(st);
	return reply;
}

/* Revert and delete change files the monitor would have open. */
static int must_be_stopped(struct daemon *d, const char *name, const char *what, enum proto_code *code, struct err *e)
{
	struct vm_entry *vm = vm_find(d, name, false);
	if (vm && vm_active(vm))
		return *code = PROTO_STATE,
		       err_set(e, "VM '%s' is %s; stop it to %s a snapshot (shoji stop %s)", name,
			       vm_state_name(vm->state), what, name);
	return 0;
}

static int snap_or_fail(struct snap_state *st, const char *name, const char *snap, enum proto_code *code, struct err *e)
{
	int s = snap_find_snap(st, snap);
	if (s < 0)
		*code = PROTO_NOT_FOUND,
		err_set(e, "VM '%s' has no snapshot '%s'; see shoji snapshot list %s", name, snap, name);
	return s;
}

bool snap_in_disks_dir(struct daemon *d, const char *name, const char *file)
{
	char dir[512];
	spath(d, PATHS_VM_DISKS, name, dir, sizeof(dir));
	size_t n = strlen(dir);
	return strncmp(file, dir, n) == 0 && file[n] == '/';
}

/* revert and delete: the record loaded and checked here, the files changed in an image job. */
static enum api_outcome change(struct daemon *d, struct client *c, const char *name, const char *snap, bool revert,
			       enum proto_code *code, struct err *e)
{
	struct vmdef *def = malloc(sizeof(*def));
	struct snap_state *st = malloc(sizeof(*st));
	enum api_outcome how = API_FAILED;
	int s;
	if (!def || !st)
		err_set(e, "out of memory");
	else if (load_both(d, name, def, st, code, e) == 0 &&
		 must_be_stopped(d, name, revert ? "revert to" : "delete", code, e) == 0 &&
		 (s = snap_or_fail(st, name, snap, code, e)) >= 0 &&
		 (revert ? snapjob_revert(d, c, name, st, s, code, e) : snapjob_delete(d, c, name, st, s, code, e)) ==
			 0)
		how = API_PARKED;
	free(def);
	free(st);
	return how;
}

enum api_outcome snapshot_revert(struct daemon *d, struct client *c, const char *name, const char *snap,
				 enum proto_code *code, struct err *e)
{
	return change(d, c, name, snap, true, code, e);
}

enum api_outcome snapshot_delete(struct daemon *d, struct client *c, const char *name, const char *snap,
				 enum proto_code *code, struct err *e)
{
	return change(d, c, name, snap, false, code, e);
}

void snapshot_remove_all(struct daemon *d, const char *name)
{
	struct snap_state *st = malloc(sizeof(*st));
	struct err e;
	if (st && snap_load(d, name, st, &e) == 0)
		for (unsigned c = 0; c < st->nchains; c++)
			for (unsigned k = 1; k < st->chains[c].n; k++)
				if (snap_in_disks_dir(d, name, st->chains[c].files[k]))
					unlink(st->chains[c].files[k]);
	free(st);
	char p[512];
	spath(d, PATHS_VM_SNAPSHOTS, name, p, sizeof(p));
	unlink(p);
}

bool snapshot_any(struct daemon *d, const char *name)
{
	char p[512];
	spath(d, PATHS_VM_SNAPSHOTS, name, p, sizeof(p));
	return access(p, F_OK) == 0;
}
