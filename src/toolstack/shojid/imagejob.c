/* imagejob: image work on files a VM, its jail uid or a group member controls (snapshot
 * overlays, merges and commits, the definition's own image) is never done by root. It runs in
 * a child process that holds only a pipe back to shojid (every other descriptor closed), has
 * become the VM's own jail uid and the jail gid with no other group and no capability,
 * no_new_privs, dies with shojid, and runs under a system-call allow-list (file I/O by path and
 * descriptor, memory; no socket, exec, ptrace, kill or namespace). What it can reach is what
 * that uid can: the VM's own files, never root's. Its one-line error comes back over the pipe.
 *
 * shojid waits for it (bounded by IMAGE_JOB_TIMEOUT_MS, then SIGKILL and a clear error): its
 * loop is held for the job's duration, as it was when the work ran in the daemon; parking the
 * request instead is still to be done. Main thread. */
#include <errno.h>
#include <fcntl.h>
#include <grp.h>
#include <poll.h>
#include <seccomp.h>
#include <signal.h>
#include <stdio.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "../../vmm/sandbox/sanitizers.h"
#include "daemon.h"

#define IMAGE_JOB_TIMEOUT_MS (10 * 60 * 1000)

static const char *const job_calls[] = {
	"openat", "open", "close", "read", "write", "pread64", "pwrite64", "readv", "writev",
	"preadv", "pwritev", "lseek", "fstat", "newfstatat", "stat", "lstat", "statx", "fcntl",
	"fsync", "fdatasync", "fallocate", "ftruncate", "readlink", "readlinkat", "getcwd",
	"mmap", "munmap", "mremap", "mprotect", "madvise", "brk", "exit", "exit_group",
	"rt_sigreturn", "rt_sigprocmask", "clock_gettime", "getrandom", "getpid", "gettid",
	"futex", "sched_yield", "set_robust_list", "rseq",
};
/* What the sanitizer run-time adds at exit (LeakSanitizer's tracer). */
static const char *const job_calls_sanitized[] = {
	"clone", "ptrace", "wait4", "waitid", "getppid", "kill", "tgkill", "pipe2", "sched_getparam",
	"process_vm_readv", "msync", "prctl", "sigaltstack", "rt_sigaction", "sched_getaffinity",
	"getdents64", "uname", "prlimit64",
};

static int allow(scmp_filter_ctx ctx, const char *const *names, size_t n)
{
	for (size_t i = 0; i < n; i++) {
		int nr = seccomp_syscall_resolve_name(names[i]);
		if (nr != __NR_SCMP_ERROR && seccomp_rule_add(ctx, SCMP_ACT_ALLOW, nr, 0) < 0)
			return -1;
	}
	return 0;
}

/* In the child: becomes the job's identity and confines itself. */
static int confine(const struct jail_id *id, bool drop, struct err *e)
{
	prctl(PR_SET_PDEATHSIG, SIGKILL);
	if (drop && (setgroups(0, NULL) < 0 || setresgid(id->gid, id->gid, id->gid) < 0 ||
		     setresuid(id->uid, id->uid, id->uid) < 0))
		return err_errno(e, errno, "image job: cannot become uid %u", (unsigned)id->uid);
	if (prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) < 0)
		return err_errno(e, errno, "image job: cannot set no_new_privs");
	scmp_filter_ctx ctx = seccomp_init(SCMP_ACT_KILL_PROCESS);
	int r = !ctx || allow(ctx, job_calls, sizeof(job_calls) / sizeof(job_calls[0])) < 0 ||
		(SHOJI_SANITIZED &&
		 allow(ctx, job_calls_sanitized, sizeof(job_calls_sanitized) / sizeof(job_calls_sanitized[0])) < 0) ||
		seccomp_load(ctx) < 0;
	if (ctx)
		seccomp_release(ctx);
	return r ? err_set(e, "image job: cannot install its system-call filter") : 0;
}

static void child(int out, const struct jail_id *id, bool drop, image_job_fn fn, void *arg)
{
	if (dup2(out, 3) < 0)
		_exit(1);
	if (syscall(SYS_close_range, 4, ~0U, 0) < 0)
		for (int fd = 4; fd < 1024; fd++)
			close(fd);
	struct err e = {""};
	int r = confine(id, drop, &e);
	if (r == 0) {
		e.msg[0] = '\0';
		r = fn(arg, &e); /* on success e.msg may hold its result */
	}
	(void)!write(3, e.msg, strnlen(e.msg, sizeof(e.msg)));
	_exit(r < 0 ? 1 : 0);
}

/* Reads the child's message until it closes the pipe or the deadline passes. */
static bool read_result(int fd, char *msg, size_t size)
{
	size_t len = 0;
	struct timespec t0;
	clock_gettime(CLOCK_MONOTONIC, &t0);
	for (;;) {
		struct timespec t;
		clock_gettime(CLOCK_MONOTONIC, &t);
		long long left = IMAGE_JOB_TIMEOUT_MS - ((t.tv_sec - t0.tv_sec) * 1000LL + (t.tv_nsec - t0.tv_nsec) / 1000000);
		struct pollfd p = {.fd = fd, .events = POLLIN};
		if (left <= 0 || (poll(&p, 1, (int)(left > 1000 ? 1000 : left)) < 0 && errno != EINTR))
			return false;
		if (!(p.revents & (POLLIN | POLLHUP)))
			continue;
		ssize_t n = read(fd, msg + len, size - 1 - len);
		if (n < 0 && errno == EINTR)
			continue;
		if (n <= 0 || (len += (size_t)n) == size - 1) {
			msg[len] = '\0';
			return true;
		}
	}
}

/* The job reaches the VM's files by the names shojid recorded (and the images' headers hold):
 * STATE/vms, STATE/vms/NAME and its disks/ are root's, searchable (not listable, not writable)
 * by the jail gid that every jail uid has; what is in them is either root's (0640, 0600) or
 * the VM's own uid's (0600). */
static int open_the_way(struct daemon *d, const char *vm, struct err *e)
{
	static const enum paths_file dirs[] = {PATHS_VMS, PATHS_VM_DIR, PATHS_VM_DISKS};
	char p[512];
	for (size_t i = 0; i < sizeof(dirs) / sizeof(dirs[0]); i++) {
		if (paths_get(&d->paths, dirs[i], vm, p, sizeof(p), NULL) < 0)
			return err_set(e, "VM '%s': a path too long", vm);
		mkdir(p, 0710);
		if (fchownat(AT_FDCWD, p, 0, d->jail_gid, AT_SYMLINK_NOFOLLOW) < 0 || chmod(p, 0710) < 0)
			return err_errno(e, errno, "cannot open %s to the jail gid", p);
	}
	return 0;
}

int image_job_run(struct daemon *d, const char *vm, const char *what, image_job_fn fn, void *arg,
		  struct err *e)
{
	struct jail_id id = {0, 0};
	if (d->jail && (vm_jail_identity(d, vm, &id, e) < 0 || open_the_way(d, vm, e) < 0))
		return -1;
	char who[VMDEF_NAME_MAX + 8];
	snprintf(who, sizeof(who), "VM '%s'", vm);
	return image_job_run_as(d, &id, who, what, fn, arg, NULL, 0, e);
}

int image_job_run_as(struct daemon *d, const struct jail_id *idp, const char *who, const char *what,
		     image_job_fn fn, void *arg, char *result, size_t result_size, struct err *e)
{
	struct jail_id id = *idp;
	const char *vm = who;
	int p[2];
	if (pipe2(p, O_CLOEXEC) < 0)
		return err_errno(e, errno, "image job: pipe");
	pid_t pid = fork();
	if (pid == 0)
		child(p[1], &id, d->jail, fn, arg);
	close(p[1]);
	if (pid < 0) {
		close(p[0]);
		return err_errno(e, errno, "image job: cannot fork");
	}
	char msg[sizeof(e->msg)] = "";
	bool done = read_result(p[0], msg, sizeof(msg));
	close(p[0]);
	if (!done)
		kill(pid, SIGKILL);
	int status;
	while (waitpid(pid, &status, 0) < 0 && errno == EINTR)
		;
	if (!done)
		return err_set(e, "%s: %s took longer than %d s and was stopped", vm, what,
			       IMAGE_JOB_TIMEOUT_MS / 1000);
	if (WIFEXITED(status) && WEXITSTATUS(status) == 0) {
		if (result)
			snprintf(result, result_size, "%s", msg);
		return 0;
	}
	if (msg[0])
		return err_set(e, "%s", msg);
	return err_set(e, "%s: %s ended by %s", vm, what,
		       WIFSIGNALED(status) ? strsignal(WTERMSIG(status)) : "an error");
}
