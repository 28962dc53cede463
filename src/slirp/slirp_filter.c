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

#include "../common/log.h"
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
/* What only a process taken over would make: these kill it. Any other call not allowed fails
 * with EPERM, so that a library's harmless surprise (glib asking whether stderr is a terminal,
 * glibc's if_nametoindex making a Unix socket for a scoped resolver address) does not take the
 * guest's network down. */
static const char *const fatal[] = {
	"execve", "execveat", "fork", "vfork", "clone", "clone3", "ptrace", "process_vm_readv",
	"process_vm_writev", "kill", "tkill", "tgkill", "bind", "listen", "socketpair", "unshare",
	"setns", "mount", "umount2", "pivot_root", "chroot", "bpf", "perf_event_open",
	"io_uring_setup", "userfaultfd", "keyctl", "add_key", "request_key", "init_module",
	"finit_module", "delete_module", "kexec_load", "kexec_file_load", "setuid", "setgid",
	"setresuid", "setresgid", "setgroups", "prctl", "seccomp", "memfd_create",
};
/* What the AddressSanitizer/LeakSanitizer run-time adds at exit (LeakSanitizer's tracer). */
static const char *const allowed_sanitized[] = {
	"clone", "ptrace", "wait4", "waitid", "getppid", "kill", "tgkill", "pipe2", "sched_getparam",
	"process_vm_readv", "msync", "prctl", "sigaltstack", "rt_sigaction", "sched_getaffinity",
	"getdents64", "getdents", "uname", "prlimit64", "readlink", "sched_yield",
};
/* clang-format on */

static bool in(const char *name, const char *const *names, size_t n)
{
	for (size_t i = 0; i < n; i++)
		if (!strcmp(name, names[i]))
			return true;
	return false;
}

#define COUNT(a) (sizeof(a) / sizeof((a)[0]))

/* Each of names gets action, but those a sanitized build's run-time needs: they are allowed. */
static int add_names(scmp_filter_ctx ctx, uint32_t action, const char *const *names, size_t n)
{
	for (size_t i = 0; i < n; i++) {
		int nr = seccomp_syscall_resolve_name(names[i]);
		bool sanitizer = SHOJI_SANITIZED && in(names[i], allowed_sanitized, COUNT(allowed_sanitized));
		if (nr != __NR_SCMP_ERROR && seccomp_rule_add(ctx, sanitizer ? SCMP_ACT_ALLOW : action, nr, 0) < 0)
			return -1;
	}
	return 0;
}

/* Arguments: sockets of the internet families only; ioctl FIONREAD and FIONBIO; files opened
 * for reading only (O_TMPFILE's own bit: it holds O_DIRECTORY's too, which opendir sets). */
static int allow_with_arguments(scmp_filter_ctx ctx)
{
	const scmp_datum_t tmpfile_bit = 020000000; /* the kernel's __O_TMPFILE, without O_DIRECTORY */
	const scmp_datum_t writing = O_ACCMODE | O_CREAT | O_TRUNC | O_APPEND | tmpfile_bit;
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

/* Reading files is allowed beneath path (a file or a directory), and with dirs listing
 * directories; where it does not exist, nothing. */
static int landlock_allow_read(int ruleset, const char *path, bool dirs)
{
	struct landlock_path_beneath_attr rule = {.allowed_access = LANDLOCK_ACCESS_FS_READ_FILE |
							  (dirs ? LANDLOCK_ACCESS_FS_READ_DIR : 0),
						  .parent_fd = open(path, O_PATH | O_CLOEXEC)};
	if (rule.parent_fd < 0)
		return 0;
	int r = (int)syscall(SYS_landlock_add_rule, ruleset, LANDLOCK_RULE_PATH_BENEATH, &rule, 0);
	close(rule.parent_fd);
	return r;
}

/* The directory the host's resolver file really lies in (/etc, or /run/systemd/resolve where
 * /etc/resolv.conf is a link there): the file is replaced, not rewritten, when the host's
 * network changes, so the rule names its directory (and the usual others, should the link
 * change). */
static void resolver_dir(char out[PATH_MAX])
{
	char real[PATH_MAX];
	if (!realpath("/etc/resolv.conf", real))
		strcpy(real, "/etc/resolv.conf");
	strcpy(out, dirname(real));
}

/* The rules: every file access of Landlock's first ABI (and REFER from its second) handled;
 * reading allowed beneath the resolver's places and /dev/urandom. The ruleset, or -1. */
static int ruleset_of(int abi)
{
	static const char *const readable[] = {"/etc", "/run/systemd/resolve", "/run/NetworkManager", "/run/resolvconf",
					       "/dev/urandom"};
	struct landlock_ruleset_attr attr = {
		.handled_access_fs = LANDLOCK_ACCESS_FS_EXECUTE | LANDLOCK_ACCESS_FS_WRITE_FILE |
			LANDLOCK_ACCESS_FS_READ_FILE | LANDLOCK_ACCESS_FS_READ_DIR | LANDLOCK_ACCESS_FS_REMOVE_DIR |
			LANDLOCK_ACCESS_FS_REMOVE_FILE | LANDLOCK_ACCESS_FS_MAKE_CHAR | LANDLOCK_ACCESS_FS_MAKE_DIR |
			LANDLOCK_ACCESS_FS_MAKE_REG | LANDLOCK_ACCESS_FS_MAKE_SOCK | LANDLOCK_ACCESS_FS_MAKE_FIFO |
			LANDLOCK_ACCESS_FS_MAKE_BLOCK | LANDLOCK_ACCESS_FS_MAKE_SYM |
			(abi >= 2 ? LANDLOCK_ACCESS_FS_REFER : 0)};
	int ruleset = (int)syscall(SYS_landlock_create_ruleset, &attr, sizeof(attr), 0);
	char dir[PATH_MAX];
	resolver_dir(dir);
	int r = ruleset < 0 ? -1 : landlock_allow_read(ruleset, dir, false);
	for (size_t i = 0; i < COUNT(readable) && r == 0; i++)
		r = landlock_allow_read(ruleset, readable[i], false);
	if (r == 0 && SHOJI_SANITIZED) /* LeakSanitizer's listing of /proc/self/task at exit */
		r = landlock_allow_read(ruleset, "/proc", true);
	if (r < 0 && ruleset >= 0)
		close(ruleset);
	return r < 0 ? -1 : ruleset;
}

int slirp_filter_landlock(struct err *e)
{
	int abi = (int)syscall(SYS_landlock_create_ruleset, NULL, 0, LANDLOCK_CREATE_RULESET_VERSION);
	if (abi < 0) {
		log_info("this kernel has no Landlock (not built in, or not in its lsm= list): the host's "
			 "files are kept from this process by its uid alone");
		return 0;
	}
	int ruleset = ruleset_of(abi);
	if (ruleset < 0)
		return err_errno(e, errno, "landlock: cannot make the rules");
	int r = prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) < 0 || syscall(SYS_landlock_restrict_self, ruleset, 0) < 0
		? err_errno(e, errno, "landlock: cannot confine the process")
		: 1;
	close(ruleset);
	return r;
}

int slirp_filter_enter(struct err *e)
{
	/* not dumpable (again, set first in main): no process of its uid may trace it; but
	 * LeakSanitizer's own tracer must */
	if (prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) < 0 || (!SHOJI_SANITIZED && prctl(PR_SET_DUMPABLE, 0, 0, 0, 0) < 0))
		return err_set(e, "cannot set no_new_privs");
	if (slirp_filter_landlock(e) < 0)
		return -1;
	scmp_filter_ctx ctx = seccomp_init(SCMP_ACT_ERRNO(EPERM));
	if (!ctx)
		return err_set(e, "seccomp: cannot create a filter (libseccomp)");
	int r = add_names(ctx, SCMP_ACT_ALLOW, allowed, COUNT(allowed)) < 0 ||
			add_names(ctx, SCMP_ACT_KILL_PROCESS, fatal, COUNT(fatal)) < 0 ||
			allow_with_arguments(ctx) < 0 ||
			(SHOJI_SANITIZED &&
			 add_names(ctx, SCMP_ACT_ALLOW, allowed_sanitized, COUNT(allowed_sanitized)) < 0)
		? -1
		: seccomp_load(ctx);
	seccomp_release(ctx);
	return r < 0 ? err_set(e, "seccomp: cannot install the system-call filter") : 0;
}
