/* confine: how a child of shojid that reads what others control (an image job, the USB scan)
 * gives up root before it reads a byte: its standard descriptors go to /dev/null, it becomes the
 * identity it was given with only the groups it was given (or keeps shojid's where none is), dies
 * with shojid (set after the change of uid, which would clear it), sets no_new_privs, and
 * installs a system-call allow-list: file I/O by path and descriptor, memory, time; no socket,
 * exec, ptrace, kill or namespace. A caller may add calls its work needs (the scan's directory
 * reading). Runs in the child, after fork. */
#include <errno.h>
#include <fcntl.h>
#include <seccomp.h>
#include <signal.h>
#include <sys/prctl.h>
#include <unistd.h>

#include "../../common/identity.h"
#include "../../common/sanitizers.h"
#include "daemon.h"

static const char *const child_calls[] = {
	"openat",     "open",         "close",           "read",          "write",     "pread64",   "pwrite64",
	"readv",      "writev",       "preadv",          "pwritev",       "lseek",     "fstat",     "newfstatat",
	"stat",       "lstat",        "statx",           "fcntl",         "fsync",     "fdatasync", "fallocate",
	"ftruncate",  "readlink",     "readlinkat",      "getcwd",        "access",    "faccessat", "faccessat2",
	"mmap",       "munmap",       "mremap",          "mprotect",      "madvise",   "brk",       "exit",
	"exit_group", "rt_sigreturn", "rt_sigprocmask",  "clock_gettime", "getrandom", "getpid",    "gettid",
	"futex",      "sched_yield",  "set_robust_list", "rseq",
};
/* What the sanitizer run-time adds at exit (LeakSanitizer's tracer). */
static const char *const child_calls_sanitized[] = {
	"clone",      "ptrace", "wait4",       "waitid",         "getppid",
	"kill",       "tgkill", "pipe2",       "sched_getparam", "process_vm_readv",
	"msync",      "prctl",  "sigaltstack", "rt_sigaction",   "sched_getaffinity",
	"getdents64", "uname",  "prlimit64",
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

/* Standard input and output to /dev/null, so the child cannot write shojid's log (its journal);
 * standard error too, except in a sanitized build, whose reports must be heard. */
static void quiet_std_fds(void)
{
	int null = open("/dev/null", O_RDWR | O_CLOEXEC);
	if (null < 0)
		return;
	dup2(null, 0);
	dup2(null, 1);
	if (!SHOJI_SANITIZED)
		dup2(null, 2);
	if (null > 2)
		close(null);
}

int confine_child(const char *what, const struct jail_id *id, const gid_t *groups, unsigned ngroups,
		  const char *const *extra, size_t nextra, struct err *e)
{
	pid_t parent = getppid();
	quiet_std_fds();
	if (id && identity_become(id->uid, id->gid, groups, ngroups) < 0)
		return err_errno(e, errno, "%s: cannot become uid %u", what, (unsigned)id->uid);
	/* After the change of uid, which clears it; and if shojid went before it was set, now. */
	if (!identity_die_with(parent))
		_exit(1);
	if (prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) < 0)
		return err_errno(e, errno, "%s: cannot set no_new_privs", what);
	scmp_filter_ctx ctx = seccomp_init(SCMP_ACT_KILL_PROCESS);
	int r = !ctx || allow(ctx, child_calls, sizeof(child_calls) / sizeof(child_calls[0])) < 0 ||
		allow(ctx, extra, nextra) < 0 ||
		(SHOJI_SANITIZED &&
		 allow(ctx, child_calls_sanitized, sizeof(child_calls_sanitized) / sizeof(child_calls_sanitized[0])) <
			 0) ||
		seccomp_load(ctx) < 0;
	if (ctx)
		seccomp_release(ctx);
	return r ? err_set(e, "%s: cannot install its system-call filter", what) : 0;
}

int confine_narrow(const char *what, const char *const *calls, size_t ncalls, const unsigned long *ioctls,
		   size_t nioctls, struct err *e)
{
	scmp_filter_ctx ctx = seccomp_init(SCMP_ACT_KILL_PROCESS);
	/* no_new_privs is set (confine_child), and prctl may not be allowed: libseccomp sets it no more */
	int r = !ctx || seccomp_attr_set(ctx, SCMP_FLTATR_CTL_NNP, 0) < 0 || allow(ctx, calls, ncalls) < 0 ||
		(SHOJI_SANITIZED &&
		 allow(ctx, child_calls_sanitized, sizeof(child_calls_sanitized) / sizeof(child_calls_sanitized[0])) <
			 0);
	/* the kernel reads an ioctl's command as 32 bits: compared so, a command with high bits set
	 * cannot pass as another */
	for (size_t i = 0; !r && i < nioctls; i++)
		r = seccomp_rule_add(ctx, SCMP_ACT_ALLOW, SCMP_SYS(ioctl), 1,
				     SCMP_A1(SCMP_CMP_MASKED_EQ, 0xffffffffu, ioctls[i] & 0xffffffffu)) < 0;
	r = r || seccomp_load(ctx) < 0;
	if (ctx)
		seccomp_release(ctx);
	return r ? err_set(e, "%s: cannot install its narrower system-call filter", what) : 0;
}
