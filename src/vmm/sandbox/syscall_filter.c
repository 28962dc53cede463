/* syscall_filter: the allow-list (see syscall_filter.h). Each group says who needs it. The
 * default action is SCMP_ACT_KILL_PROCESS. */
#include "syscall_filter.h"

#include <errno.h>
#include <seccomp.h>
#include <stddef.h>

#include "sanitizers.h"

static const char *const allowed[] = {
	/* memory: guest RAM, run areas, file mappings, malloc, thread stacks; which guest pages are
	 * resident (--stats) */
	"mmap", "munmap", "mprotect", "mremap", "madvise", "brk", "mincore",
	/* files: kernel and initrd (opened again on each boot), disks (opened once; a volatile
	 * disk's O_TMPFILE overlay), the serial output and log,
	 * /proc/self/statm (--stats), /proc/cpuinfo (kvm_open) */
	"openat", "open", "close", "read", "write", "readv", "writev", "pread64", "pwrite64",
	"preadv", "pwritev", "preadv2", "pwritev2", "lseek", "fstat", "newfstatat", "stat", "lstat",
	"statx", "fcntl", "dup", "dup3", "fsync", "fdatasync", "fallocate", "ftruncate", "unlink",
	"unlinkat", "chmod", "fchmodat", "readlink", "readlinkat", "getdents64", "getdents",
	/* KVM and its file descriptors */
	"ioctl", "eventfd2", "memfd_create",
	/* event loops: the main thread's poll, the I/O threads' epoll, signals */
	"poll", "ppoll", "epoll_create1", "epoll_ctl", "epoll_wait", "epoll_pwait", "signalfd4",
	"rt_sigaction", "rt_sigprocmask", "rt_sigreturn", "sigaltstack", "tgkill", "tkill",
	/* Unix sockets: control, serial and virtio-console (listened on again on each boot) */
	"socket", "bind", "listen", "accept", "accept4", "sendto", "sendmsg", "recvfrom", "recvmsg",
	"shutdown", "getsockopt", "setsockopt", "getsockname",
	/* network backends: libslirp's outbound connections, its socketpair wake-up */
	"connect", "getpeername", "socketpair",
	/* threads and their synchronisation */
	"clone", "clone3", "set_robust_list", "rseq", "futex", "exit", "exit_group", "sched_yield",
	"sched_getaffinity", "prctl", "gettid", "getpid", "set_tid_address",
	/* time, entropy and identity */
	"clock_gettime", "clock_nanosleep", "nanosleep", "gettimeofday", "getrandom", "getuid",
	"geteuid", "getgid", "getegid", "uname", "prlimit64", "getrlimit", "restart_syscall",
};

/* What the AddressSanitizer/LeakSanitizer run-time adds: LeakSanitizer's check at exit stops the
 * threads with ptrace from a helper it clones, and reads /proc/self. */
static const char *const allowed_sanitized[] = {
	"ptrace", "wait4", "waitid", "getppid", "kill", "pipe2", "sched_getparam",
	"process_vm_readv", "msync", "getcwd",
};

static unsigned count;

static int add_all(scmp_filter_ctx ctx, const char *const *names, size_t n, struct err *e)
{
	for (size_t i = 0; i < n; i++) {
		int nr = seccomp_syscall_resolve_name(names[i]);
		if (nr == __NR_SCMP_ERROR)
			continue; /* not on this architecture */
		int r = seccomp_rule_add(ctx, SCMP_ACT_ALLOW, nr, 0);
		if (r < 0)
			return err_errno(e, -r, "seccomp: cannot allow %s", names[i]);
		count++;
	}
	return 0;
}

int syscall_filter_install(struct err *e)
{
	scmp_filter_ctx ctx = seccomp_init(SCMP_ACT_KILL_PROCESS);
	if (!ctx)
		return err_set(e, "seccomp: cannot create a filter (libseccomp)");
	count = 0;
	int r = seccomp_attr_set(ctx, SCMP_FLTATR_CTL_TSYNC, 1); /* every thread, not just this one */
	if (r < 0)
		r = err_errno(e, -r, "seccomp: cannot ask for the filter on every thread");
	if (r == 0)
		r = add_all(ctx, allowed, sizeof(allowed) / sizeof(allowed[0]), e);
	if (r == 0 && SHOJI_SANITIZED)
		r = add_all(ctx, allowed_sanitized, sizeof(allowed_sanitized) / sizeof(allowed_sanitized[0]), e);
	if (r == 0) {
		int l = seccomp_load(ctx); /* sets no_new_privs first */
		if (l < 0)
			r = err_errno(e, -l, "seccomp: cannot install the system call filter (use "
					     "--no-seccomp on a kernel without seccomp)");
	}
	seccomp_release(ctx);
	return r;
}

unsigned syscall_filter_count(void) { return count; }
