/* pathcheck: the files a VM definition names are looked at with the rights of the VM's owner
 * before a start, never root's: a group member must not reach, through the monitor's jail (which
 * binds each file and skips the directories above it), a file it could not open itself, nor
 * any file of shojid's state directory (those are reached only through templates and
 * snapshots). The check is an image job (imagejob.c) with the owner's uid, primary gid and
 * groups (from its passwd entry; none when it has none; root's VMs keep root's, so only the
 * checks of type and place apply): it opens each path O_PATH (which opens no device and waits
 * on no FIFO), refuses anything but a regular file, and checks read (and write) access for that
 * uid. The start is parked on it, so a path on a hung file system holds the VM, not shojid;
 * when it passes, the start goes on (vm_start_checked). Main thread (check_*: the job). */
#include <errno.h>
#include <fcntl.h>
#include <grp.h>
#include <limits.h>
#include <pwd.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "daemon.h"

struct pathcheck {
	char vm[VMDEF_NAME_MAX + 1];
	char state_dir[PATH_MAX];
	struct vmdef *def;
};

/* One path as the caller: 0, or -1 with the reason in e. */
static int check_one(const char *key, const char *path, bool write, const char *state_dir, struct err *e)
{
	char real[PATH_MAX];
	size_t sl = strlen(state_dir);
	if (realpath(path, real) && strncmp(real, state_dir, sl) == 0 && (real[sl] == '/' || !real[sl]))
		return err_set(e,
			       "%s '%s' lies in shoji's state directory; use template = NAME or snapshots "
			       "for what is kept there",
			       key, path);
	int fd = open(path, O_PATH | O_CLOEXEC);
	struct stat st;
	if (fd < 0 || fstat(fd, &st) < 0)
		return err_errno(e, errno, "%s '%s' cannot be opened by the VM's owner", key, path);
	close(fd);
	if (!S_ISREG(st.st_mode))
		return err_set(e, "%s '%s' is not a regular file (%s); name a file", key, path,
			       S_ISFIFO(st.st_mode)          ? "a FIFO"
				       : S_ISCHR(st.st_mode) ? "a character device"
				       : S_ISBLK(st.st_mode) ? "a block device"
							     : "a directory or other");
	if (faccessat(AT_FDCWD, path, write ? R_OK | W_OK : R_OK, AT_EACCESS) < 0)
		return err_errno(e, errno, "%s '%s' is not %s by the VM's owner", key, path,
				 write ? "readable and writable" : "readable");
	return 0;
}

static int check_all(void *ctx, unsigned step, struct err *e)
{
	const struct pathcheck *p = ctx;
	const struct vmdef *def = p->def;
	const char *code, *vars_template;
	(void)step;
	if ((def->kernel[0] && check_one("kernel", def->kernel, false, p->state_dir, e) < 0) ||
	    (def->initrd[0] && check_one("initrd", def->initrd, false, p->state_dir, e) < 0))
		return -1;
	/* The template too: root copies it (fwvars.c), for a VM whose owner may read it. */
	if (vmdef_firmware_files(def, &code, &vars_template) &&
	    (check_one("firmware", code, false, p->state_dir, e) < 0 ||
	     check_one("firmware-vars", vars_template, false, p->state_dir, e) < 0))
		return -1;
	for (unsigned i = 0; i < def->ndisks; i++) {
		const struct vmdef_disk *k = &def->disks[i];
		char key[VMDEF_NAME_MAX + 16];
		snprintf(key, sizeof(key), "disk %s", k->id);
		if (!k->template_name[0] && check_one(key, k->path, !k->readonly, p->state_dir, e) < 0)
			return -1;
	}
	return 0;
}

static enum image_end passed(struct daemon *d, void *ctx, struct client *c, bool ok, const char *msg,
			     struct json_object **reply, enum proto_code *code, struct err *e)
{
	struct pathcheck *p = ctx;
	struct vm_entry *vm = vm_find(d, p->vm, false);
	int r = -1;
	(void)reply;
	*code = PROTO_ERROR;
	if (!ok)
		err_set(e, "VM '%s' was not started: %s", p->vm, msg);
	else if (!vm)
		err_set(e, "VM '%s' is gone", p->vm);
	else
		r = vm_start_checked(d, vm, p->def, c, code, e);
	if (r < 0 && vm && vm->disposable && !vm_active(vm))
		vm_remove(d, p->vm); /* a disposable VM exists only to run */
	free(p->def);
	free(p);
	return r < 0 ? IMAGE_FAILED : IMAGE_PASSED_ON;
}

static const struct image_op check_op = {.what = "starting (checking the files it names)",
					 .starts_the_vm = true,
					 .work = check_all,
					 .finish = passed};

/* The owner's identity: its uid, primary gid and groups (none without a passwd entry). */
static void owner_identity(uid_t owner, struct image_job_spec *spec)
{
	struct passwd *pw = getpwuid(owner);
	spec->id.uid = owner;
	spec->id.gid = pw ? pw->pw_gid : (gid_t)owner;
	int n = IMAGE_JOB_MAX_GROUPS;
	if (!pw || getgrouplist(pw->pw_name, spec->id.gid, spec->groups, &n) < 0)
		n = 0;
	spec->ngroups = (unsigned)n;
	spec->stay = owner == 0;
}

int pathcheck_start(struct daemon *d, struct vm_entry *vm, struct vmdef *def, struct client *c, struct err *e)
{
	struct pathcheck *p = calloc(1, sizeof(*p));
	struct image_job_spec *spec = calloc(1, sizeof(*spec));
	int r = -1;
	if (!p || !spec) {
		err_set(e, "out of memory");
	} else {
		snprintf(p->vm, sizeof(p->vm), "%s", vm->name);
		if (!realpath(d->paths.state, p->state_dir))
			snprintf(p->state_dir, sizeof(p->state_dir), "%s", d->paths.state);
		p->def = def;
		*spec = (struct image_job_spec){.op = &check_op, .ctx = p, .nsteps = 1, .key = vm->name};
		owner_identity(vm->owner, spec);
		r = image_job_start(d, c, spec, e);
	}
	if (r < 0) {
		free(p);
		free(def);
	}
	free(spec);
	return r;
}
