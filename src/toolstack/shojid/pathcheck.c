/* pathcheck: the files a VM definition names are looked at with the rights of the VM's owner
 * before a start, never root's: a group member must not reach, through the monitor's jail (which
 * binds each file and skips the directories above it), a file it could not open itself, nor
 * any file of shojid's state directory (those are reached only through templates and
 * snapshots). A short-lived child takes the owner's uid, primary gid and groups (from its
 * passwd entry; none when it has none) and opens each path O_PATH (which opens no device and
 * waits on no FIFO), refuses anything but a regular file, and checks read (and write) access
 * for that uid. It is bounded (PATHCHECK_TIMEOUT_MS, then SIGKILL). Main thread. */
#include <errno.h>
#include <fcntl.h>
#include <grp.h>
#include <poll.h>
#include <pwd.h>
#include <signal.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

#include "daemon.h"

#define PATHCHECK_TIMEOUT_MS 3000

/* One path as the caller: 0, or -1 with the reason in e. */
static int check_one(const char *key, const char *path, bool write, const char *state_dir, struct err *e)
{
	char real[4096];
	size_t sl = strlen(state_dir);
	if (realpath(path, real) && strncmp(real, state_dir, sl) == 0 && (real[sl] == '/' || !real[sl]))
		return err_set(e, "%s '%s' lies in shoji's state directory; use template = NAME or snapshots "
				  "for what is kept there", key, path);
	int fd = open(path, O_PATH | O_CLOEXEC);
	struct stat st;
	if (fd < 0 || fstat(fd, &st) < 0)
		return err_errno(e, errno, "%s '%s' cannot be opened by the VM's owner", key, path);
	close(fd);
	if (!S_ISREG(st.st_mode))
		return err_set(e, "%s '%s' is not a regular file (%s); name a file", key, path,
			       S_ISFIFO(st.st_mode) ? "a FIFO" : S_ISCHR(st.st_mode) ? "a character device"
			       : S_ISBLK(st.st_mode) ? "a block device" : "a directory or other");
	if (faccessat(AT_FDCWD, path, write ? R_OK | W_OK : R_OK, AT_EACCESS) < 0)
		return err_errno(e, errno, "%s '%s' is not %s by the VM's owner", key, path,
				 write ? "readable and writable" : "readable");
	return 0;
}

static int check_all(const struct vmdef *def, const char *state_dir, struct err *e)
{
	if (check_one("kernel", def->kernel, false, state_dir, e) < 0 ||
	    (def->initrd[0] && check_one("initrd", def->initrd, false, state_dir, e) < 0))
		return -1;
	for (unsigned i = 0; i < def->ndisks; i++) {
		const struct vmdef_disk *k = &def->disks[i];
		char key[VMDEF_NAME_MAX + 16];
		snprintf(key, sizeof(key), "disk %s", k->id);
		if (!k->template_name[0] && check_one(key, k->path, !k->readonly, state_dir, e) < 0)
			return -1;
	}
	return 0;
}

/* In the child: the owner's identity (root stays root: only the checks of type apply). */
static int become(uid_t owner, struct err *e)
{
	if (owner == 0)
		return 0;
	struct passwd *pw = getpwuid(owner);
	gid_t gid = pw ? pw->pw_gid : (gid_t)owner;
	gid_t groups[64];
	int n = 64;
	if (!pw || getgrouplist(pw->pw_name, gid, groups, &n) < 0)
		n = 0;
	if (setgroups((size_t)n, groups) < 0 || setresgid(gid, gid, gid) < 0 || setresuid(owner, owner, owner) < 0)
		return err_errno(e, errno, "cannot take the rights of uid %u", (unsigned)owner);
	return 0;
}

int pathcheck_as_owner(struct daemon *d, uid_t owner, const struct vmdef *def, struct err *e)
{
	int p[2];
	if (pipe2(p, O_CLOEXEC) < 0)
		return err_errno(e, errno, "pipe");
	pid_t pid = fork();
	if (pid == 0) {
		struct err ce = {""};
		int r = become(owner, &ce) == 0 ? check_all(def, d->paths.state, &ce) : -1;
		(void)!write(p[1], ce.msg, strnlen(ce.msg, sizeof(ce.msg)));
		_exit(r < 0 ? 1 : 0);
	}
	close(p[1]);
	if (pid < 0) {
		close(p[0]);
		return err_errno(e, errno, "cannot fork the path check");
	}
	struct pollfd pf = {.fd = p[0], .events = POLLIN};
	char msg[sizeof(e->msg)] = "";
	bool answered = poll(&pf, 1, PATHCHECK_TIMEOUT_MS) > 0;
	ssize_t n = answered ? read(p[0], msg, sizeof(msg) - 1) : -1;
	msg[n > 0 ? n : 0] = '\0';
	close(p[0]);
	if (!answered)
		kill(pid, SIGKILL);
	int status;
	while (waitpid(pid, &status, 0) < 0 && errno == EINTR)
		;
	if (!answered)
		return err_set(e, "looking at the VM's files took longer than %d ms (a hung file system?)",
			       PATHCHECK_TIMEOUT_MS);
	if (WIFEXITED(status) && WEXITSTATUS(status) == 0)
		return 0;
	return err_set(e, "%s", msg[0] ? msg : "the path check failed");
}
