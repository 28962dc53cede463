/* jail: mount namespace, new root and dropped privileges (see jail.h). The new root is built
 * the way bubblewrap does it: a tmpfs on /tmp (in the private namespace only) becomes the root,
 * with the old root under /oldroot, from where each path is bound into a second tmpfs that
 * finally becomes the root; the old root is then detached. */
#include "jail.h"
#include "../../common/identity.h"
#include "../../common/sanitizers.h"

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <sched.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mount.h>
#include <sys/prctl.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <unistd.h>

/* Device nodes a monitor may open; those that do not exist here are left out. */
static const char *const devices[] = {"/dev/kvm",     "/dev/urandom",     "/dev/null",
				      "/dev/net/tun", "/dev/vhost-vsock", "/dev/vhost-net"};

int jail_add(struct jail *j, const char *path, bool writable, struct err *e)
{
	if (j->npaths == JAIL_MAX_PATHS)
		return err_set(e, "the jail holds at most %d paths", JAIL_MAX_PATHS);
	if (path[0] != '/')
		return err_set(e, "jail path '%s' is not absolute", path);
	for (unsigned i = 0; i < j->npaths; i++)
		if (strcmp(j->paths[i].path, path) == 0) {
			j->paths[i].writable |= writable;
			return 0;
		}
	j->paths[j->npaths++] = (struct jail_path){.path = path, .writable = writable};
	return 0;
}

int jail_add_file(struct jail *j, const char **path, bool writable, bool socket, struct err *e)
{
	if (j->nowned + 2 > 2 * JAIL_MAX_PATHS)
		return err_set(e, "the jail holds at most %d paths", JAIL_MAX_PATHS);
	char dir[PATH_MAX];
	const char *base = NULL;
	snprintf(dir, sizeof(dir), "%s", *path);
	if (socket) {
		char *slash = strrchr(dir, '/');
		base = slash ? *path + (slash - dir) + 1 : *path;
		if (slash == dir)
			dir[1] = '\0';
		else if (slash)
			*slash = '\0';
		else
			strcpy(dir, ".");
	}
	char *real = realpath(dir, NULL);
	if (!real)
		return err_errno(e, errno, "cannot find '%s' to show it in the jail", dir);
	char *full = real;
	if (socket) {
		full = malloc(strlen(real) + strlen(base) + 2);
		if (full)
			sprintf(full, "%s%s%s", real, strcmp(real, "/") ? "/" : "", base);
	}
	if (!full) {
		free(real);
		return err_set(e, "out of memory");
	}
	if (socket)
		j->owned[j->nowned++] = real;
	j->owned[j->nowned++] = full;
	int r = jail_add(j, real, writable || socket, e);
	*path = full;
	return r;
}

int jail_add_alias(struct jail *j, const char *path, const char *real, struct err *e)
{
	if (path[0] != '/')
		return err_set(e, "jail path '%s' is not absolute", path);
	if (j->npaths == JAIL_MAX_PATHS || j->nowned == 2 * JAIL_MAX_PATHS)
		return err_set(e, "the jail holds at most %d paths", JAIL_MAX_PATHS);
	for (unsigned i = 0; i < j->npaths; i++)
		if (strcmp(j->paths[i].path, path) == 0)
			return 0;
	char *copy = strdup(path);
	if (!copy)
		return err_set(e, "out of memory");
	j->owned[j->nowned++] = copy;
	j->paths[j->npaths++] = (struct jail_path){.path = copy, .src = real};
	return 0;
}

void jail_free(struct jail *j)
{
	for (unsigned i = 0; i < j->nowned; i++)
		free(j->owned[i]);
	j->nowned = 0;
	j->npaths = 0;
}

/* mkdir -p of dir (absolute) */
static int make_dirs(const char *dir)
{
	char p[PATH_MAX];
	if (snprintf(p, sizeof(p), "%s", dir) >= (int)sizeof(p))
		return -1;
	for (char *s = p + 1;; s++) {
		if (*s == '/' || *s == '\0') {
			char c = *s;
			*s = '\0';
			if (mkdir(p, 0755) < 0 && errno != EEXIST)
				return -1;
			*s = c;
			if (!c)
				return 0;
		}
	}
}

/* Binds /oldroot/SRC (SRC: the real path, path itself unless an alias) onto /newroot/PATH,
 * creating the mount point (a directory or an empty file) when missing, then makes the bind
 * read-only unless writable. */
static int bind_path(const char *path, const char *real, bool writable, struct err *e)
{
	char src[PATH_MAX], dst[PATH_MAX];
	snprintf(src, sizeof(src), "/oldroot%s", real ? real : path);
	snprintf(dst, sizeof(dst), "/newroot%s", path);
	struct stat st;
	if (stat(src, &st) < 0)
		return err_errno(e, errno, "jail: cannot find '%s'", path);
	if (real && lstat(dst, &st) == 0 && S_ISLNK(st.st_mode))
		return 0;          /* an alias inside a directory bound already: its link leads to the real path */
	if (lstat(dst, &st) < 0) { /* not inside a directory bound already */
		char parent[PATH_MAX];
		snprintf(parent, sizeof(parent), "%s", dst);
		*strrchr(parent, '/') = '\0';
		if (make_dirs(parent) < 0)
			return err_errno(e, errno, "jail: cannot create '%s'", parent);
		struct stat sst;
		stat(src, &sst);
		int r = S_ISDIR(sst.st_mode) ? mkdir(dst, 0755) : mknod(dst, S_IFREG | 0644, 0);
		if (r < 0)
			return err_errno(e, errno, "jail: cannot create the mount point of '%s'", path);
	}
	if (mount(src, dst, NULL, MS_BIND, NULL) < 0)
		return err_errno(e, errno, "jail: cannot bind '%s'", path);
	unsigned long ro = writable ? 0 : MS_RDONLY;
	if (mount(NULL, dst, NULL, MS_REMOUNT | MS_BIND | MS_NOSUID | ro, NULL) < 0)
		return err_errno(e, errno, "jail: cannot restrict '%s'", path);
	return 0;
}

static int path_depth_cmp(const void *a, const void *b)
{
	const struct jail_path *x = a, *y = b;
	return strcmp(x->path, y->path); /* a directory sorts before what lies inside it */
}

static int build_root(const struct jail *j, struct err *e)
{
	struct jail_path paths[JAIL_MAX_PATHS + sizeof(devices) / sizeof(devices[0])];
	unsigned n = 0;
	for (unsigned i = 0; i < j->npaths; i++)
		paths[n++] = j->paths[i];
	for (size_t i = 0; i < sizeof(devices) / sizeof(devices[0]); i++)
		if (access(devices[i], F_OK) == 0)
			paths[n++] = (struct jail_path){.path = devices[i], .writable = true};
	qsort(paths, n, sizeof(paths[0]), path_depth_cmp);

	if (mount("tmpfs", "/tmp", "tmpfs", MS_NOSUID | MS_NODEV, "mode=0755,size=1m") < 0 ||
	    mkdir("/tmp/oldroot", 0755) < 0 || mkdir("/tmp/newroot", 0755) < 0 ||
	    mount("tmpfs", "/tmp/newroot", "tmpfs", MS_NOSUID | MS_NODEV, "mode=0755,size=1m") < 0)
		return err_errno(e, errno, "jail: cannot create the new root");
	if (syscall(SYS_pivot_root, "/tmp", "/tmp/oldroot") < 0 || chdir("/") < 0)
		return err_errno(e, errno, "jail: pivot_root failed");
	for (unsigned i = 0; i < n; i++)
		if (bind_path(paths[i].path, paths[i].src, paths[i].writable, e) < 0)
			return -1;
	/* Its own /proc, showing only processes of the jail's user (hidepid). */
	if (mkdir("/newroot/proc", 0555) < 0 ||
	    mount("proc", "/newroot/proc", "proc", MS_NOSUID | MS_NODEV | MS_NOEXEC, "hidepid=2") < 0)
		return err_errno(e, errno, "jail: cannot mount /proc");
	if (chdir("/newroot") < 0 || syscall(SYS_pivot_root, ".", ".") < 0 || umount2(".", MNT_DETACH) < 0 ||
	    chdir("/") < 0)
		return err_errno(e, errno, "jail: cannot switch to the new root");
	if (mount(NULL, "/", NULL, MS_REMOUNT | MS_RDONLY | MS_NOSUID | MS_NODEV, NULL) < 0)
		return err_errno(e, errno, "jail: cannot make the new root read-only");
	return 0;
}

int jail_enter(const struct jail *j, struct err *e)
{
	if (j->uid == 0 || j->gid == 0)
		return err_set(e, "--jail-uid and --jail-gid must not be 0 (root)");
	if (unshare(CLONE_NEWNS) < 0)
		return err_errno(e, errno, "jail: cannot create a mount namespace (the jail needs root)");
	if (unshare(CLONE_NEWIPC | CLONE_NEWUTS | (j->own_net ? CLONE_NEWNET : 0)) < 0)
		return err_errno(e, errno, "jail: cannot create IPC, UTS%s namespaces",
				 j->own_net ? " and network" : "");
	if (mount(NULL, "/", NULL, MS_REC | MS_PRIVATE, NULL) < 0)
		return err_errno(e, errno, "jail: cannot make the mounts private");
	if (build_root(j, e) < 0)
		return -1;
	if (identity_become(j->uid, j->gid, NULL, 0) < 0)
		return err_errno(e, errno, "jail: cannot become uid %u gid %u", (unsigned)j->uid, (unsigned)j->gid);
	if (prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) < 0)
		return err_errno(e, errno, "jail: cannot set no_new_privs");
	/* Sanitizer builds only: LeakSanitizer inspects the process at exit with ptrace, which a
	 * process that changed its user may not undergo unless it is dumpable again. */
	if (SHOJI_SANITIZED)
		prctl(PR_SET_DUMPABLE, 1, 0, 0, 0);
	return 0;
}
