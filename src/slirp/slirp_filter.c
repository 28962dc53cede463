/* slirp_filter: shoji-slirp's confinement (slirp_filter.h). */
#include "slirp_filter.h"

#include <errno.h>
#include <fcntl.h>
#include <libgen.h>
#include <limits.h>
#include <linux/landlock.h>
#include <seccomp.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/syscall.h>
#include <unistd.h>

#include "../common/sanitizers.h"

/* clang-format off */
static const char *const allowed[] = {
	/* the frames' socket, the guest's connections and their event loop */
	"read", "write", "readv", "writev", "close", "poll", "ppoll", "recvfrom", "sendto", "recvmsg",
	"sendmsg", "connect", "accept", "accept4", "shutdown", "getsockopt", "setsockopt",
	"getsockname", "getpeername", "fcntl",
	/* /etc/resolv.conf, read again when it changes (openat: read-only, below) */
	"fstat", "newfstatat", "stat", "statx", "lseek",
	/* memory, time, exit */
	"mmap", "munmap", "mprotect", "mremap", "madvise", "brk", "futex", "clock_gettime",
	"gettimeofday", "getrandom", "getpid", "gettid", "rt_sigreturn", "rt_sigprocmask", "exit",
	"exit_group", "restart_syscall",
};
/* What the AddressSanitizer/LeakSanitizer run-time adds at exit (LeakSanitizer's tracer). */
static const char *const allowed_sanitized[] = {
	"clone", "ptrace", "wait4", "waitid", "getppid", "kill", "tgkill", "pipe2", "sched_getparam",
	"process_vm_readv", "msync", "prctl", "sigaltstack", "rt_sigaction", "sched_getaffinity",
	"getdents64", "uname", "prlimit64", "readlink",
};
/* clang-format on */

static int allow_names(scmp_filter_ctx ctx, const char *const *names, size_t n)
{
	for (size_t i = 0; i < n; i++) {
		int nr = seccomp_syscall_resolve_name(names[i]);
		if (nr != __NR_SCMP_ERROR && seccomp_rule_add(ctx, SCMP_ACT_ALLOW, nr, 0) < 0)
			return -1;
	}
	return 0;
}

/* Arguments: sockets of the internet families only; ioctl FIONREAD and FIONBIO; files opened
 * for reading only. */
static int allow_with_arguments(scmp_filter_ctx ctx)
{
	const scmp_datum_t writing = O_ACCMODE | O_CREAT | O_TRUNC | O_APPEND | O_TMPFILE;
	const int families[] = {AF_INET, AF_INET6};
	const unsigned long ioctls[] = {FIONREAD, FIONBIO};
	for (size_t i = 0; i < 2; i++)
		if (seccomp_rule_add(ctx, SCMP_ACT_ALLOW, SCMP_SYS(socket), 1,
				     SCMP_A0(SCMP_CMP_EQ, (scmp_datum_t)families[i])) < 0 ||
		    seccomp_rule_add(ctx, SCMP_ACT_ALLOW, SCMP_SYS(ioctl), 1,
				     SCMP_A1(SCMP_CMP_MASKED_EQ, 0xffffffffu, ioctls[i])) < 0)
			return -1;
	if (seccomp_rule_add(ctx, SCMP_ACT_ALLOW, SCMP_SYS(openat), 1, SCMP_A2(SCMP_CMP_MASKED_EQ, writing, 0)) < 0)
		return -1;
	return seccomp_rule_add(ctx, SCMP_ACT_ALLOW, SCMP_SYS(open), 1, SCMP_A1(SCMP_CMP_MASKED_EQ, writing, 0));
}

/* Reading is allowed beneath path (a file or a directory); where it does not exist, nothing. */
static int landlock_allow_read(int ruleset, const char *path)
{
	struct landlock_path_beneath_attr rule = {.allowed_access = LANDLOCK_ACCESS_FS_READ_FILE,
						  .parent_fd = open(path, O_PATH | O_CLOEXEC)};
	if (rule.parent_fd < 0)
		return 0;
	int r = (int)syscall(SYS_landlock_add_rule, ruleset, LANDLOCK_RULE_PATH_BENEATH, &rule, 0);
	close(rule.parent_fd);
	return r;
}

/* The directory the host's resolver file really lies in (/etc, or /run/systemd/resolve where
 * /etc/resolv.conf is a link there): the file is replaced, not rewritten, when the host's
 * network changes, so the rule names its directory. */
static void resolver_dir(char out[PATH_MAX])
{
	char real[PATH_MAX];
	if (!realpath("/etc/resolv.conf", real))
		strcpy(real, "/etc/resolv.conf");
	strcpy(out, dirname(real));
}

int slirp_filter_landlock(struct err *e)
{
	int abi = (int)syscall(SYS_landlock_create_ruleset, NULL, 0, LANDLOCK_CREATE_RULESET_VERSION);
	if (abi < 0)
		return 0; /* a kernel without Landlock */
	struct landlock_ruleset_attr attr = {
		.handled_access_fs = LANDLOCK_ACCESS_FS_EXECUTE | LANDLOCK_ACCESS_FS_WRITE_FILE |
			LANDLOCK_ACCESS_FS_READ_FILE | LANDLOCK_ACCESS_FS_READ_DIR | LANDLOCK_ACCESS_FS_REMOVE_DIR |
			LANDLOCK_ACCESS_FS_REMOVE_FILE | LANDLOCK_ACCESS_FS_MAKE_CHAR | LANDLOCK_ACCESS_FS_MAKE_DIR |
			LANDLOCK_ACCESS_FS_MAKE_REG | LANDLOCK_ACCESS_FS_MAKE_SOCK | LANDLOCK_ACCESS_FS_MAKE_FIFO |
			LANDLOCK_ACCESS_FS_MAKE_BLOCK | LANDLOCK_ACCESS_FS_MAKE_SYM |
			(abi >= 2 ? LANDLOCK_ACCESS_FS_REFER : 0)};
	int ruleset = (int)syscall(SYS_landlock_create_ruleset, &attr, sizeof(attr), 0);
	if (ruleset < 0)
		return err_errno(e, errno, "landlock: cannot create a ruleset");
	char dir[PATH_MAX];
	resolver_dir(dir);
	int r = landlock_allow_read(ruleset, dir) < 0 || landlock_allow_read(ruleset, "/dev/urandom") < 0 ||
			(SHOJI_SANITIZED && landlock_allow_read(ruleset, "/proc") < 0)
		? err_errno(e, errno, "landlock: cannot add a rule")
		: 0;
	if (r == 0 &&
	    (prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) < 0 || syscall(SYS_landlock_restrict_self, ruleset, 0) < 0))
		r = err_errno(e, errno, "landlock: cannot confine the process");
	close(ruleset);
	return r < 0 ? -1 : 1;
}

int slirp_filter_enter(struct err *e)
{
	/* not dumpable: no process of its uid (the monitor's, when the monitor started it) may
	 * trace it; but LeakSanitizer's own tracer must */
	if (prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) < 0 || (!SHOJI_SANITIZED && prctl(PR_SET_DUMPABLE, 0, 0, 0, 0) < 0))
		return err_set(e, "cannot set no_new_privs");
	if (slirp_filter_landlock(e) < 0)
		return -1;
	scmp_filter_ctx ctx = seccomp_init(SCMP_ACT_KILL_PROCESS);
	if (!ctx)
		return err_set(e, "seccomp: cannot create a filter (libseccomp)");
	int r = allow_names(ctx, allowed, sizeof(allowed) / sizeof(allowed[0])) < 0 || allow_with_arguments(ctx) < 0 ||
			(SHOJI_SANITIZED &&
			 allow_names(ctx, allowed_sanitized, sizeof(allowed_sanitized) / sizeof(allowed_sanitized[0])) <
				 0)
		? -1
		: seccomp_load(ctx);
	seccomp_release(ctx);
	return r < 0 ? err_set(e, "seccomp: cannot install the system-call filter") : 0;
}
