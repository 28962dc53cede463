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

#include "../../vmm/block/block.h"
#include "../../vmm/block/block_merge.h"
#include "../../vmm/block/qcow2.h"
#include "../statefile.h"
#include "daemon.h"

#define SNAP_MAX 12  /* snapshots of one VM: a chain is at most BLOCK_MAX_CHAIN files */
#define SNAP_PATH 512

struct snap_chain {
	char id[VMDEF_NAME_MAX + 1];
	char files[SNAP_MAX + 2][SNAP_PATH]; /* bottom (the definition's path) first */
	unsigned n;
};

struct snap_entry {
	char name[VMDEF_NAME_MAX + 1];
	double time;
	char files[VMDEF_MAX_DISKS][SNAP_PATH]; /* per chain: the frozen file ("" : not in it) */
};

struct snap_state {
	unsigned seq; /* names new overlay files */
	struct snap_chain chains[VMDEF_MAX_DISKS];
	unsigned nchains;
	struct snap_entry snaps[SNAP_MAX];
	unsigned nsnaps;
};

static int spath(struct daemon *d, enum paths_file f, const char *name, char *buf, size_t size)
{
	return paths_get(&d->paths, f, name, buf, size, NULL);
}

/* Copies src (NULL: empty), cut to size; the two may share an array of the state. */
static void copy_str(char *dst, size_t size, const char *src)
{
	size_t n = 0;
	while (src && n + 1 < size && src[n])
		n++;
	if (n)
		memmove(dst, src, n);
	dst[n] = '\0';
}

static int load(struct daemon *d, const char *name, struct snap_state *st, struct err *e)
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
			copy_str(ch->id, sizeof(ch->id), json_object_object_get_ex(c, "id", &v) ? json_object_get_string(v) : "");
			if (json_object_object_get_ex(c, "chain", &files))
				for (size_t k = 0; k < json_object_array_length(files) && ch->n < SNAP_MAX + 2; k++)
					copy_str(ch->files[ch->n++], SNAP_PATH,
						 json_object_get_string(json_object_array_get_idx(files, k)));
		}
	if (json_object_object_get_ex(o, "snapshots", &arr))
		for (size_t i = 0; i < json_object_array_length(arr) && st->nsnaps < SNAP_MAX; i++) {
			struct json_object *s = json_object_array_get_idx(arr, i), *files;
			struct snap_entry *se = &st->snaps[st->nsnaps++];
			copy_str(se->name, sizeof(se->name), json_object_object_get_ex(s, "name", &v) ? json_object_get_string(v) : "");
			se->time = json_object_object_get_ex(s, "time", &v) ? json_object_get_double(v) : 0;
			for (unsigned c = 0; c < st->nchains; c++)
				if (json_object_object_get_ex(s, "files", &files) &&
				    json_object_object_get_ex(files, st->chains[c].id, &v))
					copy_str(se->files[c], SNAP_PATH, json_object_get_string(v));
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

static int save(struct daemon *d, const char *name, const struct snap_state *st, struct err *e)
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
				json_object_object_add(files, st->chains[c].id, json_object_new_string(st->snaps[i].files[c]));
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

static int find_chain(const struct snap_state *st, const char *id)
{
	for (unsigned c = 0; c < st->nchains; c++)
		if (strcmp(st->chains[c].id, id) == 0)
			return (int)c;
	return -1;
}

static int find_snap(const struct snap_state *st, const char *name)
{
	for (unsigned i = 0; i < st->nsnaps; i++)
		if (strcmp(st->snaps[i].name, name) == 0)
			return (int)i;
	return -1;
}

static int find_file(const struct snap_chain *ch, const char *file)
{
	for (unsigned k = 0; k < ch->n; k++)
		if (strcmp(ch->files[k], file) == 0)
			return (int)k;
	return -1;
}

struct overlay_job {
	const char *path, *backing;
};

/* In an image job: the overlay's header (reading the backing file's size, which is untrusted). */
static int overlay_job(void *arg, struct err *e)
{
	const struct overlay_job *j = arg;
	struct qcow2_create_opts o = {.size = UINT64_MAX, .backing = j->backing, .backing_format = "qcow2"};
	return qcow2_create(j->path, &o, e);
}

int overlay_create(struct daemon *d, const char *vm, const char *path, const char *backing, struct err *e)
{
	struct jail_id id;
	if (d->jail && vm_jail_identity(d, vm, &id, e) < 0)
		return -1;
	/* Root makes the empty file, in a directory of its own, and gives it to the VM's uid; the
	 * job, as that uid, writes the header. */
	unlink(path);
	int fd = open(path, O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, 0600);
	if (fd < 0)
		return err_errno(e, errno, "cannot create %s", path);
	if (d->jail && fchown(fd, id.uid, id.gid) < 0) {
		int en = errno;
		close(fd);
		unlink(path);
		return err_errno(e, en, "cannot give %s to jail uid %u", path, (unsigned)id.uid);
	}
	close(fd);
	struct overlay_job j = {path, backing};
	if (image_job_run(d, vm, "making a snapshot overlay", overlay_job, &j, e) < 0) {
		unlink(path);
		return -1;
	}
	return 0;
}

/* A new overlay file name for disk id: STATE/vms/NAME/disks/ID.SEQ.qcow2. */
static int new_file(struct daemon *d, const char *name, struct snap_state *st, const char *id, char *out,
		    struct err *e)
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

/* Which of the definition's disks snapshots cover: writable disks on files (template disks
 * are volatile, read-only ones never change). Raw ones cannot be. */
static bool covered(const struct vmdef_disk *k)
{
	return !k->template_name[0] && !k->readonly;
}

static int check_disks(const struct vmdef *def, const struct snap_state *st, enum proto_code *code, struct err *e)
{
	unsigned n = 0;
	*code = PROTO_USAGE;
	for (unsigned i = 0; i < def->ndisks; i++) {
		const struct vmdef_disk *k = &def->disks[i];
		if (!covered(k))
			continue;
		if (k->format != VMDEF_DISK_QCOW2)
			return err_set(e, "VM '%s': disk '%s' is raw, and snapshots need qcow2; convert it "
					  "(qemu-img convert -O qcow2 %s NEW.qcow2), then shoji set %s disk.%s.path=NEW.qcow2 "
					  "disk.%s.format=qcow2", def->name, k->id, k->path, def->name, k->id, k->id);
		int c = find_chain(st, k->id);
		if (c >= 0 && strcmp(st->chains[c].files[0], k->path))
			return *code = PROTO_STATE,
			       err_set(e, "VM '%s': disk '%s' has snapshots of %s but its path is now %s; set the path "
					  "back or delete its snapshots", def->name, k->id, st->chains[c].files[0], k->path);
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
	if (load(d, name, st, e) < 0)
		goto out;
	r = 0;
	for (unsigned i = 0; i < def->ndisks && r == 0; i++) {
		struct vmdef_disk *k = &def->disks[i];
		int c = find_chain(st, k->id);
		if (c < 0 || st->chains[c].n <= 1 || !covered(k))
			continue;
		if (strcmp(st->chains[c].files[0], k->path) || k->format != VMDEF_DISK_QCOW2)
			r = err_set(e, "VM '%s': disk '%s' has snapshots of %s (qcow2) but is now %s (%s); set it back "
				       "or delete its snapshots", name, k->id, st->chains[c].files[0], k->path,
				    k->format == VMDEF_DISK_QCOW2 ? "qcow2" : "raw");
		else
			copy_str(k->path, sizeof(k->path), st->chains[c].files[st->chains[c].n - 1]);
	}
out:
	free(st);
	return r;
}

/* disk-snapshot through the monitor: the new empty file passed as a descriptor. */
static int live_snapshot(struct daemon *d, struct vm *vm, unsigned index, const char *file, const char *backing,
			 double *paused_ms, struct err *e)
{
	struct jail_id id;
	if (d->jail && vm_jail_identity(d, vm->name, &id, e) < 0)
		return -1;
	int fd = open(file, O_RDWR | O_CREAT | O_EXCL | O_CLOEXEC, 0600);
	if (fd < 0)
		return err_errno(e, errno, "cannot create %s", file);
	if (d->jail && fchown(fd, id.uid, id.gid) < 0) {
		int en = errno;
		close(fd);
		unlink(file);
		return err_errno(e, en, "cannot give %s to jail uid %u", file, (unsigned)id.uid);
	}
	struct json_object *req = json_object_new_object(), *rep = NULL, *v;
	char disk[16];
	snprintf(disk, sizeof(disk), "%u", index);
	json_object_object_add(req, "cmd", json_object_new_string("disk-snapshot"));
	json_object_object_add(req, "disk", json_object_new_string(disk));
	json_object_object_add(req, "backing", json_object_new_string(backing));
	int r = vm_control_req(d, vm, req, fd, &rep, e);
	close(fd);
	if (r < 0) {
		unlink(file);
		return -1;
	}
	if (json_object_object_get_ex(rep, "paused_ms", &v))
		*paused_ms += json_object_get_double(v);
	json_object_put(rep);
	return 0;
}

static struct json_object *reply_ok(void)
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
	return load(d, name, st, e);
}

/* The definition changed after the VM started: its disk order may not be the monitor's. */
static bool edited_since_start(struct daemon *d, const struct vm *vm)
{
	char p[512];
	struct stat s;
	spath(d, PATHS_DEFINITION, vm->name, p, sizeof(p));
	return stat(p, &s) == 0 && (double)s.st_mtim.tv_sec + s.st_mtim.tv_nsec / 1e9 > vm->started_at;
}

struct json_object *snapshot_create(struct daemon *d, const char *name, const char *want, enum proto_code *code,
				    struct err *e)
{
	struct vmdef *def = malloc(sizeof(*def));
	struct snap_state *st = malloc(sizeof(*st));
	struct json_object *reply = NULL;
	struct vm *vm = vm_find(d, name, false);
	bool live = vm && vm_active(vm), paused_here = false;
	double paused_ms = 0;
	*code = PROTO_ERROR;
	if (!def || !st) {
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
		err_set(e, "VM '%s' was edited since it started, so its disks may not be the running ones; "
			   "stop it to take a snapshot", name);
		goto out;
	}
	*code = PROTO_EXISTS;
	struct snap_entry se = {.time = daemon_wall()};
	if (want[0])
		copy_str(se.name, sizeof(se.name), want);
	else
		for (unsigned n = st->nsnaps + 1; !se.name[0] || find_snap(st, se.name) >= 0; n++)
			snprintf(se.name, sizeof(se.name), "snap%u", n);
	if (find_snap(st, se.name) >= 0) {
		err_set(e, "VM '%s' already has a snapshot '%s'; pick another name", name, se.name);
		goto out;
	}
	*code = PROTO_STATE;
	if (st->nsnaps == SNAP_MAX) {
		err_set(e, "VM '%s' has %d snapshots, the most shoji keeps; delete one first", name, SNAP_MAX);
		goto out;
	}
	*code = PROTO_ERROR;
	unsigned ncovered = 0;
	for (unsigned i = 0; i < def->ndisks; i++)
		ncovered += covered(&def->disks[i]);
	/* The monitor pauses the guest for each disk's switch; several disks switch at one guest
	 * instant only when the whole VM is paused around them. */
	if (live && vm->state == VM_RUNNING && ncovered > 1) {
		if (vm_pause(d, vm, true, code, e) < 0)
			goto out;
		paused_here = true;
	}
	for (unsigned i = 0; i < def->ndisks; i++) {
		const struct vmdef_disk *k = &def->disks[i];
		if (!covered(k))
			continue;
		int c = find_chain(st, k->id);
		if (c < 0) {
			c = (int)st->nchains++;
			memset(&st->chains[c], 0, sizeof(st->chains[c]));
			copy_str(st->chains[c].id, sizeof(st->chains[c].id), k->id);
			copy_str(st->chains[c].files[0], SNAP_PATH, k->path);
			st->chains[c].n = 1;
		}
		struct snap_chain *ch = &st->chains[c];
		char file[VMDEF_PATH_MAX];
		const char *top = ch->files[ch->n - 1];
		if (new_file(d, name, st, k->id, file, e) < 0 ||
		    (live ? live_snapshot(d, vm, i, file, top, &paused_ms, e) : overlay_create(d, name, file, top, e)) < 0) {
			/* Disks already switched keep their new overlays (the chains say so); no
			 * snapshot is recorded. */
			struct err ignored;
			save(d, name, st, &ignored);
			goto out;
		}
		copy_str(se.files[c], SNAP_PATH, top);
		copy_str(ch->files[ch->n++], SNAP_PATH, file);
	}
	st->snaps[st->nsnaps++] = se;
	if (save(d, name, st, e) < 0)
		goto out;
	reply = reply_ok();
	json_object_object_add(reply, "name", json_object_new_string(name));
	json_object_object_add(reply, "snapshot", json_object_new_string(se.name));
	json_object_object_add(reply, "live", json_object_new_boolean(live));
	if (live)
		json_object_object_add(reply, "paused_ms", json_object_new_double(paused_ms));
	events_add(d, name, "snapshot", "created %s%s", se.name, live ? " (live)" : "");
out:
	if (paused_here) {
		enum proto_code c2;
		struct err e2;
		vm_pause(d, vm, false, &c2, &e2);
	}
	free(def);
	free(st);
	return reply;
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
		reply = reply_ok();
		json_object_object_add(reply, "snapshots", arr);
		json_object_object_add(reply, "disks", chains_json(st));
	}
	free(def);
	free(st);
	return reply;
}

/* Revert and delete change files the monitor would have open. */
static int must_be_stopped(struct daemon *d, const char *name, const char *what, enum proto_code *code,
			   struct err *e)
{
	struct vm *vm = vm_find(d, name, false);
	if (vm && vm_active(vm))
		return *code = PROTO_STATE,
		       err_set(e, "VM '%s' is %s; stop it to %s a snapshot (shoji stop %s)", name,
			       vm_state_name(vm->state), what, name);
	return 0;
}

static int snap_or_fail(struct snap_state *st, const char *name, const char *snap, enum proto_code *code,
			struct err *e)
{
	int s = find_snap(st, snap);
	if (s < 0)
		*code = PROTO_NOT_FOUND, err_set(e, "VM '%s' has no snapshot '%s'; see shoji snapshot list %s", name,
						 snap, name);
	return s;
}

static bool in_disks_dir(struct daemon *d, const char *name, const char *file)
{
	char dir[512];
	spath(d, PATHS_VM_DISKS, name, dir, sizeof(dir));
	size_t n = strlen(dir);
	return strncmp(file, dir, n) == 0 && file[n] == '/';
}

static int delete_in_chain(struct daemon *d, const char *name, struct snap_state *st, unsigned c,
			   const char *frozen, char gone[SNAP_PATH], struct err *e);

/* Disks a snapshot does not cover (added after it) keep their content through a revert to it;
 * the layers that only the later snapshots, which the revert drops, froze in them are folded
 * away first, so that no chain keeps a layer no snapshot needs. */
static int fold_uncovered(struct daemon *d, const char *name, struct snap_state *st, int s, struct err *e)
{
	for (unsigned j = (unsigned)s + 1; j < st->nsnaps; j++)
		for (unsigned c = 0; c < st->nchains; c++) {
			char frozen[SNAP_PATH], gone[SNAP_PATH];
			if (st->snaps[s].files[c][0] || !st->snaps[j].files[c][0])
				continue;
			copy_str(frozen, sizeof(frozen), st->snaps[j].files[c]);
			st->snaps[j].files[c][0] = '\0';
			if (delete_in_chain(d, name, st, c, frozen, gone, e) < 0 || save(d, name, st, e) < 0)
				return -1;
			if (in_disks_dir(d, name, gone))
				unlink(gone);
		}
	return 0;
}

struct json_object *snapshot_revert(struct daemon *d, const char *name, const char *snap, enum proto_code *code,
				    struct err *e)
{
	struct vmdef *def = malloc(sizeof(*def));
	struct snap_state *st = malloc(sizeof(*st));
	struct json_object *reply = NULL;
	char (*drop)[SNAP_PATH] = calloc(VMDEF_MAX_DISKS * (SNAP_MAX + 2), SNAP_PATH);
	unsigned ndrop = 0;
	int s;
	if (!def || !st || !drop) {
		err_set(e, "out of memory");
		goto out;
	}
	if (load_both(d, name, def, st, code, e) < 0 || must_be_stopped(d, name, "revert to", code, e) < 0 ||
	    (s = snap_or_fail(st, name, snap, code, e)) < 0)
		goto out;
	*code = PROTO_ERROR;
	if (fold_uncovered(d, name, st, s, e) < 0)
		goto out;
	struct snap_state *next = malloc(sizeof(*next));
	if (!next) {
		err_set(e, "out of memory");
		goto out;
	}
	*next = *st;
	/* New overlays first: until the state is saved, the old chains stand. */
	char made[VMDEF_MAX_DISKS][VMDEF_PATH_MAX];
	unsigned nmade = 0;
	for (unsigned c = 0; c < next->nchains; c++) {
		const char *frozen = st->snaps[s].files[c];
		struct snap_chain *ch = &next->chains[c];
		int k = frozen[0] ? find_file(ch, frozen) : -1;
		if (k < 0)
			continue; /* a disk the snapshot does not cover: left as it is */
		if (new_file(d, name, next, ch->id, made[nmade], e) < 0 || overlay_create(d, name, made[nmade], frozen, e) < 0)
			goto undo;
		for (unsigned j = (unsigned)k + 1; j < ch->n; j++)
			if (in_disks_dir(d, name, ch->files[j]))
				copy_str(drop[ndrop++], SNAP_PATH, ch->files[j]);
		ch->n = (unsigned)k + 1;
		copy_str(ch->files[ch->n++], SNAP_PATH, made[nmade++]);
	}
	next->nsnaps = (unsigned)s + 1; /* later snapshots were above this one: gone */
	if (save(d, name, next, e) < 0)
		goto undo;
	for (unsigned i = 0; i < ndrop; i++)
		unlink(drop[i]);
	reply = reply_ok();
	json_object_object_add(reply, "dropped_snapshots", json_object_new_int((int)(st->nsnaps - next->nsnaps)));
	events_add(d, name, "snapshot", "reverted to %s", snap);
	free(next);
	goto out;
undo:
	for (unsigned i = 0; i < nmade; i++)
		unlink(made[i]);
	free(next);
out:
	free(drop);
	free(def);
	free(st);
	return reply;
}

/* The chain as the files' headers say it is must be the chain shojid recorded: each overlay
 * names the file below it, in qcow2. Runs in the image job (the headers are untrusted). */
static int verify_chain(const char *vm, const struct snap_chain *ch, struct err *e)
{
	for (unsigned i = 1; i < ch->n; i++) {
		char name[SNAP_PATH], format[16];
		if (block_backing_of(ch->files[i], name, sizeof(name), format, sizeof(format), e) < 0)
			return -1;
		if (strcmp(name, ch->files[i - 1]) || strcmp(format, "qcow2"))
			return err_set(e, "VM '%s' disk '%s': overlay %s names backing '%s' (%s), but the record "
					  "says '%s' (qcow2): the file was changed outside shoji; the VM is left as it was",
				       vm, ch->id, ch->files[i], name, format[0] ? format : "no format", ch->files[i - 1]);
	}
	return 0;
}

struct fold_job {
	const char *vm;
	const struct snap_chain *ch;
	int k;
};

/* In an image job: the chain checked against the record, then file k folded out of it. */
static int fold_job(void *arg, struct err *e)
{
	const struct fold_job *j = arg;
	const struct snap_chain *ch = j->ch;
	struct err sub;
	if (verify_chain(j->vm, ch, e) < 0)
		return -1;
	if (j->k > 0) /* the snapshot's file folded into the one above, which then sits on the one below */
		return block_merge(ch->files[j->k + 1], &sub) < 0
			       ? err_set(e, "VM '%s' disk '%s': %s", j->vm, ch->id, sub.msg) : 0;
	/* The bottom is the definition's own image: the file above is written into it, and
	 * whatever sat on that file now sits on the bottom. */
	if (block_commit(ch->files[1], &sub) < 0 ||
	    (ch->n > 2 && block_set_backing(ch->files[2], ch->files[0], "qcow2", &sub) < 0))
		return err_set(e, "VM '%s' disk '%s': %s", j->vm, ch->id, sub.msg);
	return 0;
}

/* Folds one disk's frozen file out of its chain (in an image job); st changes to match. */
static int delete_in_chain(struct daemon *d, const char *name, struct snap_state *st, unsigned c,
			   const char *frozen, char gone[SNAP_PATH], struct err *e)
{
	struct snap_chain *ch = &st->chains[c];
	int k = find_file(ch, frozen);
	if (k < 0 || (unsigned)k + 1 >= ch->n)
		return err_set(e, "VM '%s': the chain of disk '%s' does not hold %s above its bottom; "
				  "snapshots.json is inconsistent", name, ch->id, frozen);
	struct fold_job j = {name, ch, k};
	if (image_job_run(d, name, "deleting a snapshot", fold_job, &j, e) < 0)
		return -1;
	if (k > 0) {
		copy_str(gone, SNAP_PATH, ch->files[k]);
	} else {
		copy_str(gone, SNAP_PATH, ch->files[1]);
		/* Snapshots that froze that file now find its content in the bottom. */
		for (unsigned i = 0; i < st->nsnaps; i++)
			if (strcmp(st->snaps[i].files[c], gone) == 0)
				copy_str(st->snaps[i].files[c], SNAP_PATH, ch->files[0]);
		k = 1;
	}
	memmove(ch->files[k], ch->files[k + 1], (ch->n - (unsigned)k - 1) * SNAP_PATH);
	ch->n--;
	return 0;
}

struct json_object *snapshot_delete(struct daemon *d, const char *name, const char *snap, enum proto_code *code,
				    struct err *e)
{
	struct vmdef *def = malloc(sizeof(*def));
	struct snap_state *st = malloc(sizeof(*st));
	struct json_object *reply = NULL;
	int s;
	if (!def || !st) {
		err_set(e, "out of memory");
		goto out;
	}
	if (load_both(d, name, def, st, code, e) < 0 || must_be_stopped(d, name, "delete", code, e) < 0 ||
	    (s = snap_or_fail(st, name, snap, code, e)) < 0)
		goto out;
	*code = PROTO_ERROR;
	for (unsigned c = 0; c < st->nchains; c++) {
		char frozen[SNAP_PATH];
		copy_str(frozen, sizeof(frozen), st->snaps[s].files[c]);
		if (!frozen[0])
			continue;
		st->snaps[s].files[c][0] = '\0';
		/* Saved disk by disk: each fold is complete and the files match the state. */
		char gone[SNAP_PATH];
		if (delete_in_chain(d, name, st, c, frozen, gone, e) < 0 || save(d, name, st, e) < 0)
			goto out;
		if (in_disks_dir(d, name, gone))
			unlink(gone); /* once the state no longer names it: a crash before leaves a stray file */
	}
	memmove(&st->snaps[s], &st->snaps[s + 1], (st->nsnaps - (unsigned)s - 1) * sizeof(st->snaps[0]));
	st->nsnaps--;
	if (save(d, name, st, e) < 0)
		goto out;
	reply = reply_ok();
	events_add(d, name, "snapshot", "deleted %s", snap);
out:
	free(def);
	free(st);
	return reply;
}

void snapshot_remove_all(struct daemon *d, const char *name)
{
	struct snap_state *st = malloc(sizeof(*st));
	struct err e;
	if (st && load(d, name, st, &e) == 0)
		for (unsigned c = 0; c < st->nchains; c++)
			for (unsigned k = 1; k < st->chains[c].n; k++)
				if (in_disks_dir(d, name, st->chains[c].files[k]))
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
