/* fwvars: a firmware VM's UEFI variable store. Each VM gets its own copy of its firmware's
 * variable store template (firmware = uefi: Debian's OVMF_VARS_4M.fd), which the monitor maps
 * as the VM's flash and writes as the VM's jail uid. So once made, the store is the jail
 * user's: shojid creates it and never opens it for reading again, not even for snapshots.
 *
 * The template is read by root, so only one that root alone writes and everyone may read is
 * copied (a group member may name the template; what it names must hold nothing it could not
 * read anyway). It is opened O_PATH without following a symbolic link, checked (a regular
 * file, root's, not writable by group or others, readable by all, at most VMDEF_VARS_MAX_BYTES)
 * and only then opened for reading through /proc/self/fd, so a FIFO or a device swapped in is
 * never opened. The copy is written under a temporary name in the VM's root-owned state
 * directory (a disposable VM's: in its volatile directory, still root's when this runs), given
 * to the jail uid, fsynced and renamed into place: the store is whole or absent. */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "../../common/file.h"
#include "daemon.h"

#define VARS_NAME "uefi-vars.fd"
#define VARS_NEW  "uefi-vars.fd.new"

int fwvars_path(struct daemon *d, const struct vm_entry *vm, char *buf, size_t size, struct err *e)
{
	return paths_get(&d->paths, vm->disposable ? PATHS_VM_VOLATILE_UEFI_VARS : PATHS_VM_UEFI_VARS, vm->name, buf,
			 size, e);
}

int fwvars_available(const struct vmdef *def, struct err *e)
{
	static const char *const files[] = {VMDEF_UEFI_CODE, VMDEF_UEFI_VARS};
	if (strcmp(def->firmware, VMDEF_FIRMWARE_UEFI))
		return 0;
	for (size_t i = 0; i < sizeof(files) / sizeof(files[0]); i++) {
		struct stat st;
		if (lstat(files[i], &st) < 0 && errno == ENOENT)
			return err_set(e,
				       "firmware = uefi needs Debian's OVMF, and %s is missing; install it "
				       "(apt install %s)",
				       files[i], VMDEF_UEFI_PACKAGE);
	}
	return 0;
}

/* The template's checks, on its O_PATH descriptor. */
static int template_ok(int fd, const char *path, off_t *size, struct err *e)
{
	struct stat st;
	if (fstat(fd, &st) < 0)
		return err_errno(e, errno, "cannot look at the firmware variable store template '%s'", path);
	if (S_ISLNK(st.st_mode))
		return err_set(e,
			       "the firmware variable store template '%s' is a symbolic link, which shojid "
			       "does not follow; name the file it points to",
			       path);
	if (!S_ISREG(st.st_mode))
		return err_set(e,
			       "the firmware variable store template '%s' is not a regular file; name the "
			       "firmware's template file (such as %s)",
			       path, VMDEF_UEFI_VARS);
	if (st.st_uid != 0 || (st.st_mode & 022))
		return err_set(e,
			       "the firmware variable store template '%s' may be written by others than root, "
			       "and root copies it; give it to root alone (chown root '%s'; chmod go-w '%s')",
			       path, path, path);
	if (!(st.st_mode & 04))
		return err_set(e,
			       "the firmware variable store template '%s' is not readable by all; its copy goes "
			       "to the VM, so it must hold nothing secret (chmod a+r '%s' if it holds none)",
			       path, path);
	if (st.st_size <= 0 || st.st_size > (off_t)VMDEF_VARS_MAX_BYTES)
		return err_set(e,
			       "the firmware variable store template '%s' is %lld bytes; a template is 1 byte to "
			       "%u MiB: name the firmware's own",
			       path, (long long)st.st_size, VMDEF_VARS_MAX_BYTES >> 20);
	*size = st.st_size;
	return 0;
}

/* The template opened for reading once checked: a descriptor, or -1 with e. */
static int open_template(const char *path, off_t *size, struct err *e)
{
	int pfd = open(path, O_PATH | O_NOFOLLOW | O_CLOEXEC); /* a symbolic link: itself */
	if (pfd < 0)
		return err_errno(e, errno, "cannot open the firmware variable store template '%s'", path);
	int fd = -1;
	if (template_ok(pfd, path, size, e) == 0) {
		char self[64];
		snprintf(self, sizeof(self), "/proc/self/fd/%d", pfd);
		fd = open(self, O_RDONLY | O_NONBLOCK | O_CLOEXEC);
		if (fd < 0)
			err_errno(e, errno, "cannot read the firmware variable store template '%s'", path);
	}
	close(pfd);
	return fd;
}

/* size bytes of src into dir/VARS_NEW, given to id (NULL: kept), fsynced; 0 or -1 with e. */
static int write_copy(int dir, const char *dirname, int src, off_t size, const struct jail_id *id, struct err *e)
{
	unlinkat(dir, VARS_NEW, 0); /* a copy an earlier daemon did not finish */
	int out = openat(dir, VARS_NEW, O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, 0600);
	if (out < 0)
		return err_errno(e, errno, "cannot create %s/%s", dirname, VARS_NEW);
	char buf[65536];
	int r = 0;
	for (off_t done = 0; r == 0 && done < size;) {
		size_t want = (size_t)(size - done) < sizeof(buf) ? (size_t)(size - done) : sizeof(buf);
		ssize_t n = pread(src, buf, want, done);
		if (n < 0)
			r = err_errno(e, errno, "cannot read the firmware variable store template");
		else if (n == 0)
			r = err_set(e, "the firmware variable store template shrank while it was copied; start again");
		else if (file_write_all(out, buf, (size_t)n) < 0)
			r = err_errno(e, errno, "cannot write %s/%s", dirname, VARS_NEW);
		done += n > 0 ? n : 0;
	}
	if (r == 0 && ((id && fchown(out, id->uid, id->gid) < 0) || fchmod(out, 0600) < 0))
		r = err_errno(e, errno, "cannot give %s/%s to jail uid %u", dirname, VARS_NEW,
			      id ? (unsigned)id->uid : 0u);
	if (r == 0 && fsync(out) < 0)
		r = err_errno(e, errno, "cannot write %s/%s", dirname, VARS_NEW);
	close(out);
	if (r == 0 && renameat(dir, VARS_NEW, dir, VARS_NAME) < 0)
		r = err_errno(e, errno, "cannot rename %s/%s", dirname, VARS_NEW);
	if (r < 0)
		unlinkat(dir, VARS_NEW, 0);
	else
		fsync(dir);
	return r;
}

int fwvars_create(struct daemon *d, const struct vm_entry *vm, const struct vmdef *def, struct err *e)
{
	const char *code, *tmpl;
	char dirname[512];
	struct jail_id id;
	if (!vmdef_firmware_files(def, &code, &tmpl))
		return 0;
	if (fwvars_path(d, vm, dirname, sizeof(dirname), e) < 0)
		return -1;
	*strrchr(dirname, '/') = '\0';
	if (d->jail && vm_jail_identity(d, vm->name, &id, e) < 0)
		return -1;
	int dir = open(dirname, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
	if (dir < 0)
		return err_errno(e, errno, "cannot open %s", dirname);
	struct stat st;
	int r = 0;
	/* A VM's store persists (it is not looked at); a disposable VM's is new at each start. */
	bool make = vm->disposable || fstatat(dir, VARS_NAME, &st, AT_SYMLINK_NOFOLLOW) < 0;
	if (make && !vm->disposable && errno != ENOENT)
		r = err_errno(e, errno, "cannot look at %s/%s", dirname, VARS_NAME);
	else if (make) {
		off_t size = 0;
		int src = open_template(tmpl, &size, e);
		r = src < 0 ? -1 : write_copy(dir, dirname, src, size, d->jail ? &id : NULL, e);
		if (src >= 0)
			close(src);
	}
	close(dir);
	return r;
}
