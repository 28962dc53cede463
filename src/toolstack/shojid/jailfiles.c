/* jailfiles: the files shojid makes for a VM belong to the VM's own jail uid and to no one
 * else: its runtime (socket) directory and volatile directory (0700), its serial log, its UEFI
 * variable store and the overlays in disks/ (0600); their group is the jail gid but gets no
 * access, since every monitor runs with that gid. Done at each start, so that files made before a VM had a uid of
 * its own (or under another one) move to it. The VM's state directory and disks/ stay root's:
 * the monitor creates nothing there (overlays are made by shojid; a live snapshot's arrives as
 * a descriptor). Every name is opened relative to a root-owned directory without following
 * symbolic links, and ownership is changed on the descriptor. Runs on shojid's one thread. */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "daemon.h"

/* Opens (creating when missing) dir/name as a directory or a regular file, and gives it to
 * the jail identity with mode. */
static int give_at(int dir, const char *dirname, const char *name, bool is_dir, const struct jail_id *id, mode_t mode,
		   struct err *e)
{
	int fd;
	if (is_dir) {
		if (mkdirat(dir, name, mode) < 0 && errno != EEXIST)
			return err_errno(e, errno, "cannot create %s/%s", dirname, name);
		fd = openat(dir, name, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
	} else {
		fd = openat(dir, name, O_WRONLY | O_CREAT | O_APPEND | O_NOFOLLOW | O_NONBLOCK | O_CLOEXEC, mode);
	}
	if (fd < 0)
		return err_errno(e, errno, "cannot open %s/%s", dirname, name);
	struct stat st;
	int r = 0;
	if (fstat(fd, &st) < 0 || (is_dir ? !S_ISDIR(st.st_mode) : !S_ISREG(st.st_mode)))
		r = err_set(e, "%s/%s is not a %s; remove it", dirname, name, is_dir ? "directory" : "regular file");
	else if (fchown(fd, id->uid, id->gid) < 0 || fchmod(fd, mode) < 0)
		r = err_errno(e, errno, "cannot give %s/%s to jail uid %u", dirname, name, (unsigned)id->uid);
	close(fd);
	return r;
}

/* Each regular file in the VM's disks/ directory (overlays shojid made) to the jail uid. */
static int give_disks(const char *disks, const struct jail_id *id, struct err *e)
{
	int dfd = open(disks, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
	if (dfd < 0)
		return errno == ENOENT ? 0 : err_errno(e, errno, "cannot open %s", disks);
	DIR *dh = fdopendir(dfd);
	if (!dh) {
		close(dfd);
		return err_errno(e, errno, "cannot read %s", disks);
	}
	int r = 0;
	struct dirent *de;
	while (r == 0 && (de = readdir(dh))) {
		struct stat st;
		if (de->d_name[0] == '.' || fstatat(dfd, de->d_name, &st, AT_SYMLINK_NOFOLLOW) < 0 ||
		    !S_ISREG(st.st_mode))
			continue;
		int fd = openat(dfd, de->d_name, O_RDONLY | O_NOFOLLOW | O_NONBLOCK | O_CLOEXEC);
		if (fd < 0 || fchown(fd, id->uid, id->gid) < 0 || fchmod(fd, 0600) < 0)
			r = err_errno(e, errno, "cannot give %s/%s to jail uid %u", disks, de->d_name,
				      (unsigned)id->uid);
		if (fd >= 0)
			close(fd);
	}
	closedir(dh);
	return r;
}

/* The last component of a path of the VM's. */
static const char *leaf(struct daemon *d, enum paths_file f, const char *name, char *buf, size_t size)
{
	if (paths_get(&d->paths, f, name, buf, size, NULL) < 0)
		return "";
	return strrchr(buf, '/') + 1;
}

int jailfiles_give(struct daemon *d, struct vm_entry *vm, struct err *e)
{
	struct jail_id id;
	char vmdir[512], disks[512];
	if (!d->jail)
		return 0;
	if (vm_jail_identity(d, vm->name, &id, e) < 0)
		return -1;
	char n1[512], n2[512], n3[512], n4[512];
	int rfd = open(d->paths.runtime, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	if (rfd < 0)
		return err_errno(e, errno, "cannot open %s", d->paths.runtime);
	int r = give_at(rfd, d->paths.runtime, leaf(d, PATHS_RUN_DIR, vm->name, n1, sizeof(n1)), true, &id, 0700, e);
	close(rfd);
	if (r < 0 || paths_get(&d->paths, PATHS_VM_DIR, vm->name, vmdir, sizeof(vmdir), e) < 0)
		return -1;
	int vfd = open(vmdir, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
	if (vfd < 0)
		return err_errno(e, errno, "cannot open %s", vmdir);
	const char *vol = leaf(d, PATHS_VM_VOLATILE, vm->name, n3, sizeof(n3));
	r = give_at(vfd, vmdir, leaf(d, PATHS_SERIAL_LOG, vm->name, n2, sizeof(n2)), false, &id, 0600, e);
	struct stat st;
	if (r == 0 && (vm->disposable || fstatat(vfd, vol, &st, AT_SYMLINK_NOFOLLOW) == 0))
		r = give_at(vfd, vmdir, vol, true, &id, 0700, e);
	/* A firmware VM's variable store (fwvars.c), made with the uid it had then. */
	const char *vars = leaf(d, PATHS_VM_UEFI_VARS, vm->name, n4, sizeof(n4));
	if (r == 0 && fstatat(vfd, vars, &st, AT_SYMLINK_NOFOLLOW) == 0)
		r = give_at(vfd, vmdir, vars, false, &id, 0600, e);
	close(vfd);
	if (r == 0 && paths_get(&d->paths, PATHS_VM_DISKS, vm->name, disks, sizeof(disks), e) == 0)
		r = give_disks(disks, &id, e);
	return r;
}
