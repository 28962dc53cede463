/* templates: shojid's template store. STATE/templates/NAME/ holds the template's versions
 * (vN.qcow2, standalone qcow2 images, never written once published) and template.json (the
 * current version, where it came from, when). An import is written by the caller into a
 * file the daemon creates (vN.qcow2.part, passed as a descriptor); at the commit its bytes are
 * copied into a file only the daemon holds (vN.qcow2.copy), the .part removed, the copy
 * checked by an image job as nobody, and published root's and read-only (0444) by a rename;
 * no descriptor a client was given reaches a published version;
 * so an update never touches a version a running VM reads: VMs get the current version at
 * their next start, and an old version is removed once no running VM uses it. */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <linux/fs.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/stat.h>
#include <unistd.h>

#include "../../block/block.h"
#include "../../block/qcow2.h"
#include "../../common/identity.h"
#include "../statefile.h"
#include "daemon.h"

static int tpath(struct daemon *d, enum paths_file f, const char *name, char *buf, size_t size)
{
	return paths_get(&d->paths, f, name, buf, size, NULL);
}

static int version_path(struct daemon *d, const char *name, int v, bool part, char *buf, size_t size)
{
	char dir[448]; /* room left in a 512-byte path for the version's file name */
	if (tpath(d, PATHS_TEMPLATE_DIR, name, dir, sizeof(dir)) < 0)
		return -1;
	int n = snprintf(buf, size, "%s/v%d.qcow2%s", dir, v, part ? ".part" : "");
	return n < 0 || (size_t)n >= size ? -1 : 0;
}

/* The current version (0: the template does not exist) and the record's fields. */
static int current_version(struct daemon *d, const char *name, struct json_object **meta)
{
	char p[512], *text;
	size_t len;
	int en;
	if (meta)
		*meta = NULL;
	if (tpath(d, PATHS_TEMPLATE_META, name, p, sizeof(p)) < 0 ||
	    statefile_read(p, 65536, &text, &len, &en, NULL) < 0)
		return 0;
	struct json_object *o = json_tokener_parse(text), *v;
	free(text);
	int cur = o && json_object_object_get_ex(o, "current", &v) ? json_object_get_int(v) : 0;
	if (meta)
		*meta = o;
	else
		json_object_put(o);
	return cur > 0 ? cur : 0;
}

/* The current version's virtual size, as its check measured it (0: none recorded). */
static uint64_t current_size(struct daemon *d, const char *name)
{
	struct json_object *meta, *v;
	uint64_t size = 0;
	if (current_version(d, name, &meta) && json_object_object_get_ex(meta, "size", &v))
		size = (uint64_t)json_object_get_int64(v);
	json_object_put(meta);
	return size;
}

/* Versions present (published or being written), highest first; *n of them. */
static int list_versions(struct daemon *d, const char *name, int *out, int cap, bool with_parts)
{
	char dir[512];
	tpath(d, PATHS_TEMPLATE_DIR, name, dir, sizeof(dir));
	DIR *dh = opendir(dir);
	int n = 0;
	if (!dh)
		return 0;
	struct dirent *de;
	while ((de = readdir(dh)) && n < cap) {
		int v, used = 0;
		if (sscanf(de->d_name, "v%d.qcow2%n", &v, &used) != 1 || v < 1)
			continue;
		bool part = strcmp(de->d_name + used, ".part") == 0;
		if (de->d_name[used] && !(part && with_parts))
			continue;
		out[n++] = v;
	}
	closedir(dh);
	for (int i = 1; i < n; i++) /* highest first */
		for (int j = i; j > 0 && out[j] > out[j - 1]; j--) {
			int t = out[j];
			out[j] = out[j - 1];
			out[j - 1] = t;
		}
	return n;
}

static bool template_name_ok(const char *name, struct err *e)
{
	if (vmdef_name_ok(name))
		return true;
	err_set(e, "'%s' is not a template name (1 to %d of A-Z a-z 0-9 . _ -)", name, VMDEF_NAME_MAX);
	return false;
}

int template_current(struct daemon *d, const char *name, char *path, size_t size, enum proto_code *code, struct err *e)
{
	int v = current_version(d, name, NULL);
	if (!v)
		return *code = PROTO_NOT_FOUND,
		       err_set(e,
			       "there is no template '%s'; import it (shoji "
			       "template import %s IMAGE)",
			       name, name);
	if (version_path(d, name, v, false, path, size) < 0)
		return *code = PROTO_ERROR, err_set(e, "template '%s': path too long", name);
	if (access(path, R_OK) < 0)
		return *code = PROTO_ERROR, err_errno(e, errno, "template '%s': its image %s", name, path);
	return 0;
}

bool template_file_in_use(struct daemon *d, const char *file)
{
	for (int i = 0; i < DAEMON_MAX_VMS; i++) {
		const struct vm_entry *vm = &d->vms[i];
		if (!vm->used || !vm_active(vm))
			continue;
		for (unsigned k = 0; k < vm->nuses; k++)
			if (strcmp(vm->uses[k], file) == 0)
				return true;
	}
	return false;
}

static void gc_one(struct daemon *d, const char *name)
{
	int cur = current_version(d, name, NULL), vs[256];
	int n = list_versions(d, name, vs, 256, false);
	for (int i = 0; i < n; i++) {
		char p[512];
		if (vs[i] == cur || version_path(d, name, vs[i], false, p, sizeof(p)) < 0 || template_file_in_use(d, p))
			continue;
		if (unlink(p) == 0)
			events_add(d, NULL, "template-gc", "template %s: version %d removed (no VM uses it)", name,
				   vs[i]);
	}
}

/* Calls fn for each template directory name. */
static void each_template(struct daemon *d, void (*fn)(struct daemon *, const char *, void *), void *arg)
{
	char dir[512];
	tpath(d, PATHS_TEMPLATES, NULL, dir, sizeof(dir));
	struct dirent **list;
	int n = scandir(dir, &list, NULL, alphasort);
	for (int i = 0; i < n; i++) {
		if (vmdef_name_ok(list[i]->d_name))
			fn(d, list[i]->d_name, arg);
		free(list[i]);
	}
	if (n >= 0)
		free(list);
}

static void gc_fn(struct daemon *d, const char *name, void *arg)
{
	(void)arg;
	gc_one(d, name);
}

void template_gc(struct daemon *d)
{
	each_template(d, gc_fn, NULL);
}

static void clean_parts(struct daemon *d, const char *name, void *arg)
{
	(void)arg;
	int vs[256], n = list_versions(d, name, vs, 256, true);
	for (int i = 0; i < n; i++) {
		char p[512];
		if (version_path(d, name, vs[i], true, p, sizeof(p)) == 0)
			unlink(p);
	}
	if (!current_version(d, name, NULL)) { /* an import that never finished: nothing left */
		char dir[512];
		tpath(d, PATHS_TEMPLATE_DIR, name, dir, sizeof(dir));
		rmdir(dir);
	}
}

void template_startup(struct daemon *d)
{
	each_template(d, clean_parts, NULL);
	template_gc(d);
}

int template_begin(struct daemon *d, const char *name, bool replace, int *version, int *fd, enum proto_code *code,
		   struct err *e)
{
	char dir[512], p[512];
	*code = PROTO_USAGE;
	if (!template_name_ok(name, e))
		return -1;
	*code = PROTO_EXISTS;
	if (current_version(d, name, NULL) && !replace)
		return err_set(e,
			       "template '%s' exists; add --replace to import a new version of it "
			       "(running VMs keep theirs until their next start)",
			       name);
	*code = PROTO_ERROR;
	tpath(d, PATHS_TEMPLATES, NULL, dir, sizeof(dir));
	mkdir(dir, 0755);
	if (tpath(d, PATHS_TEMPLATE_DIR, name, dir, sizeof(dir)) < 0)
		return err_set(e, "template name makes a path too long");
	if (mkdir(dir, 0755) < 0 && errno != EEXIST)
		return err_errno(e, errno, "cannot create %s", dir);
	int vs[256], n = list_versions(d, name, vs, 256, true), cur = current_version(d, name, NULL);
	*version = (n && vs[0] > cur ? vs[0] : cur) + 1;
	if (version_path(d, name, *version, true, p, sizeof(p)) < 0)
		return err_set(e, "template name makes a path too long");
	*fd = open(p, O_RDWR | O_CREAT | O_EXCL | O_CLOEXEC, 0644);
	if (*fd < 0)
		return err_errno(e, errno, "cannot create %s", p);
	return 0;
}

/* In an image job (as nobody): the copy must be a standalone qcow2 image; its size is the result. */
static int check_job(void *arg, struct err *e)
{
	struct block_dev *b;
	struct err sub;
	if (block_open(&b, arg, BLOCK_FORMAT_QCOW2, BLOCK_OPEN_RDONLY | BLOCK_OPEN_SKIP_BACKING, &sub) < 0)
		return err_set(e, "the imported image is not usable: %s", sub.msg);
	bool backed = qcow2_of(b)->backing_name != NULL;
	uint64_t size = b->size;
	block_close(b);
	if (backed)
		return err_set(e, "a template image must stand alone, without a backing file");
	snprintf(e->msg, sizeof(e->msg), "%llu", (unsigned long long)size);
	return 0;
}

/* Copies the bytes of the importer's file (reflinked where the file system can) into a new file
 * only shojid holds; the importer's file is removed, so no descriptor a client was given
 * reaches what is published. */
static int copy_part(const char *part, const char *copy, struct err *e)
{
	int in = open(part, O_RDONLY | O_NOFOLLOW | O_NONBLOCK | O_NOCTTY | O_CLOEXEC);
	struct stat st;
	if (in < 0 || fstat(in, &st) < 0 || !S_ISREG(st.st_mode)) {
		if (in >= 0)
			close(in);
		return err_set(e, "the import %s is gone or not a file; import again", part);
	}
	unlink(copy);
	int out = open(copy, O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, 0644);
	int r = out < 0 ? -1 : 0;
	if (r == 0 && ioctl(out, FICLONE, in) < 0) {
		off_t off = 0;
		while (r == 0 && off < st.st_size) {
			ssize_t n = copy_file_range(in, &off, out, NULL, (size_t)(st.st_size - off), 0);
			r = n > 0 ? 0 : -1;
		}
	}
	if (r == 0 && fsync(out) < 0)
		r = -1;
	int en = errno;
	close(in);
	if (out >= 0)
		close(out);
	unlink(part);
	if (r < 0) {
		unlink(copy);
		return err_errno(e, en, "cannot copy the import into %s", copy);
	}
	return 0;
}

struct commit_job {
	char name[VMDEF_NAME_MAX + 1];
	int version;
	char source[PROTO_MAX_SOURCE + 1];
	char copy[600], final[560];
};

static int check_step(void *ctx, unsigned step, struct err *e)
{
	(void)step;
	return check_job(((struct commit_job *)ctx)->copy, e);
}

/* The check passed: the copy published as the version, the record updated. */
static struct json_object *publish(struct daemon *d, struct commit_job *j, uint64_t size, struct err *e)
{
	char meta[512];
	if (chmod(j->copy, 0444) < 0 || rename(j->copy, j->final) < 0)
		return err_errno(e, errno, "cannot publish %s", j->final), NULL;
	int old = current_version(d, j->name, NULL);
	struct json_object *o = json_object_new_object();
	json_object_object_add(o, "name", json_object_new_string(j->name));
	json_object_object_add(o, "current", json_object_new_int(j->version));
	json_object_object_add(o, "source", json_object_new_string(j->source));
	json_object_object_add(o, "imported", json_object_new_double(daemon_wall()));
	json_object_object_add(o, "size", json_object_new_int64((int64_t)size));
	const char *s = json_object_to_json_string_ext(o, JSON_C_TO_STRING_PLAIN);
	tpath(d, PATHS_TEMPLATE_META, j->name, meta, sizeof(meta));
	int r = statefile_write(meta, s, strlen(s), false, e);
	json_object_put(o);
	if (r < 0) {
		unlink(j->final);
		return NULL;
	}
	struct json_object *reply = json_object_new_object();
	json_object_object_add(reply, "ok", json_object_new_boolean(1));
	json_object_object_add(reply, "version", json_object_new_int(j->version));
	json_object_object_add(reply, "size", json_object_new_int64((int64_t)size));
	if (old)
		json_object_object_add(reply, "replaced", json_object_new_int(old));
	events_add(d, NULL, "template", "template %s: version %d imported from %s", j->name, j->version, j->source);
	template_gc(d);
	return reply;
}

static enum image_end commit_finish(struct daemon *d, void *ctx, struct client *c, bool ok, const char *msg,
				    struct json_object **reply, enum proto_code *code, struct err *e)
{
	struct commit_job *j = ctx;
	(void)c;
	*code = PROTO_ERROR;
	if (!ok)
		err_set(e, "%s", msg);
	else
		*reply = publish(d, j, strtoull(msg, NULL, 10), e);
	if (!*reply)
		unlink(j->copy);
	free(j);
	return *reply ? IMAGE_REPLY : IMAGE_FAILED;
}

static const struct image_op commit_op = {.what = "checking the imported image",
					  .work = check_step,
					  .finish = commit_finish};

int template_commit(struct daemon *d, struct client *c, const char *name, int version, const char *source,
		    enum proto_code *code, struct err *e)
{
	char part[512];
	*code = PROTO_USAGE;
	if (!template_name_ok(name, e))
		return -1;
	*code = PROTO_NOT_FOUND;
	if (version_path(d, name, version, true, part, sizeof(part)) < 0 || access(part, F_OK) < 0)
		return err_set(e,
			       "template '%s' has no import of version %d in progress; start again "
			       "with shoji template import",
			       name, version);
	*code = PROTO_ERROR;
	struct commit_job *j = calloc(1, sizeof(*j));
	if (!j)
		return err_set(e, "out of memory");
	snprintf(j->name, sizeof(j->name), "%s", name);
	snprintf(j->source, sizeof(j->source), "%s", source);
	j->version = version;
	version_path(d, name, version, false, j->final, sizeof(j->final));
	snprintf(j->copy, sizeof(j->copy), "%s.copy", j->final);
	char key[VMDEF_NAME_MAX + 16];
	snprintf(key, sizeof(key), "template %s", name);
	/* Checked as nobody: the image's bytes are the importer's. */
	struct image_job_spec spec = {.op = &commit_op,
				      .ctx = j,
				      .nsteps = 1,
				      .key = key,
				      .vm = NULL,
				      .id = {IDENTITY_NOBODY, IDENTITY_NOBODY}};
	if (copy_part(part, j->copy, e) < 0 || image_job_start(d, c, &spec, e) < 0) {
		unlink(j->copy);
		free(j);
		return -1;
	}
	return 0;
}

struct users {
	const char *name;
	struct json_object *arr;
};

static void user_fn(struct daemon *d, const char *vmname, void *arg)
{
	struct users *u = arg;
	struct vmdef *def = malloc(sizeof(*def));
	enum proto_code code;
	struct err e;
	if (def && vm_load_definition(d, vmname, def, &code, &e) == 0) {
		for (unsigned i = 0; i < def->ndisks; i++)
			if (strcmp(def->disks[i].template_name, u->name) == 0) {
				json_object_array_add(u->arr, json_object_new_string(vmname));
				break;
			}
	}
	free(def);
}

/* The VMs whose definition has a disk on the template. */
static struct json_object *template_users(struct daemon *d, const char *name)
{
	struct users u = {name, json_object_new_array()};
	vm_each_defined(d, user_fn, &u);
	return u.arr;
}

static struct json_object *summary(struct daemon *d, const char *name)
{
	struct json_object *meta, *o = json_object_new_object(), *v, *vers = json_object_new_array();
	int cur = current_version(d, name, &meta), vs[256], n = list_versions(d, name, vs, 256, false);
	json_object_object_add(o, "name", json_object_new_string(name));
	json_object_object_add(o, "current", json_object_new_int(cur));
	static const char *const keys[] = {"source", "imported", "size"};
	for (size_t i = 0; i < 3; i++)
		if (meta && json_object_object_get_ex(meta, keys[i], &v))
			json_object_object_add(o, keys[i], json_object_get(v));
	for (int i = 0; i < n; i++) {
		struct json_object *ver = json_object_new_object();
		char p[512];
		struct stat st;
		version_path(d, name, vs[i], false, p, sizeof(p));
		json_object_object_add(ver, "version", json_object_new_int(vs[i]));
		json_object_object_add(ver, "path", json_object_new_string(p));
		if (stat(p, &st) == 0)
			json_object_object_add(ver, "file_bytes", json_object_new_int64((int64_t)st.st_blocks * 512));
		json_object_object_add(ver, "in_use", json_object_new_boolean(template_file_in_use(d, p)));
		json_object_array_add(vers, ver);
	}
	json_object_object_add(o, "versions", vers);
	json_object_object_add(o, "vms", template_users(d, name));
	json_object_put(meta);
	return o;
}

static void list_fn(struct daemon *d, const char *name, void *arr)
{
	if (current_version(d, name, NULL))
		json_object_array_add(arr, summary(d, name));
}

struct json_object *template_list(struct daemon *d)
{
	struct json_object *arr = json_object_new_array();
	each_template(d, list_fn, arr);
	return arr;
}

struct json_object *template_info(struct daemon *d, const char *name, enum proto_code *code, struct err *e)
{
	char p[512];
	if (!current_version(d, name, NULL))
		return *code = PROTO_NOT_FOUND, template_current(d, name, p, sizeof(p), code, e), NULL;
	return summary(d, name);
}

int template_delete(struct daemon *d, const char *name, enum proto_code *code, struct err *e)
{
	char p[512];
	if (!current_version(d, name, NULL))
		return template_current(d, name, p, sizeof(p), code, e);
	struct json_object *users = template_users(d, name);
	size_t n = json_object_array_length(users);
	if (n) {
		err_set(e, "template '%s' is used by VM '%s'%s; delete %s or point %s disk elsewhere first", name,
			json_object_get_string(json_object_array_get_idx(users, 0)), n > 1 ? " and others" : "",
			n > 1 ? "them" : "it", n > 1 ? "their" : "its");
		json_object_put(users);
		return *code = PROTO_STATE, -1;
	}
	json_object_put(users);
	int vs[256], nv = list_versions(d, name, vs, 256, true);
	for (int i = 0; i < nv; i++) {
		version_path(d, name, vs[i], false, p, sizeof(p));
		if (template_file_in_use(d, p))
			return *code = PROTO_STATE,
			       err_set(e,
				       "template '%s' version %d is in use by a running disposable VM; "
				       "try again when it has stopped",
				       name, vs[i]);
	}
	/* The record first: from then on the template does not exist, whatever is left. */
	tpath(d, PATHS_TEMPLATE_META, name, p, sizeof(p));
	if (unlink(p) < 0)
		return *code = PROTO_ERROR, err_errno(e, errno, "cannot remove %s", p);
	for (int i = 0; i < nv; i++) {
		version_path(d, name, vs[i], false, p, sizeof(p));
		unlink(p);
		version_path(d, name, vs[i], true, p, sizeof(p));
		unlink(p);
	}
	tpath(d, PATHS_TEMPLATE_DIR, name, p, sizeof(p));
	rmdir(p);
	events_add(d, NULL, "template", "template %s deleted", name);
	return 0;
}

int template_apply(struct daemon *d, struct vm_entry *vm, struct vmdef *def, enum proto_code *code, struct err *e)
{
	struct err sub;
	vm->nuses = 0;
	for (unsigned i = 0; i < def->ndisks; i++) {
		struct vmdef_disk *k = &def->disks[i];
		char image[512], overlay[512], dir[512];
		if (!k->template_name[0])
			continue;
		if (template_current(d, k->template_name, image, sizeof(image), code, &sub) < 0)
			return err_set(e, "VM '%s' disk '%s': %s", vm->name, k->id, sub.msg);
		uint64_t size = current_size(d, k->template_name);
		if (!size)
			return err_set(e, "VM '%s' disk '%s': template '%s' records no size; import it again", vm->name,
				       k->id, k->template_name);
		size_t len = strlen(image);
		if (len >= sizeof(vm->uses[0]))
			return err_set(e, "template image path %s is too long; use a shorter --state-dir", image);
		memcpy(vm->uses[vm->nuses++], image, len + 1);
		if (vm->disposable) { /* opened read-only with the writes in an unnamed overlay */
			if (strlen(image) >= sizeof(k->path))
				return err_set(e, "template image path %s is too long; use a shorter --state-dir",
					       image);
			strcpy(k->path, image);
			continue;
		}
		/* A fresh overlay at each start: the root is volatile, the template's current
		 * version underneath. */
		tpath(d, PATHS_VM_DISKS, vm->name, dir, sizeof(dir));
		mkdir(dir, 0750);
		int n = snprintf(overlay, sizeof(overlay), "%s/%s.volatile.qcow2", dir, k->id);
		if (n < 0 || (size_t)n >= sizeof(k->path))
			return err_set(e,
				       "the state directory's path is too long for disk files; use a shorter --state-dir");
		/* Root writes the header: the template's size is its record's (measured when it
		 * was checked), so no header is read. */
		if (overlay_create_sized(d, vm->name, overlay, image, size, e) < 0)
			return -1;
		strcpy(k->path, overlay);
		k->format = VMDEF_DISK_QCOW2;
		k->template_name[0] = '\0';
	}
	return 0;
}
