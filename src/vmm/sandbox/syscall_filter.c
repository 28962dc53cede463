/* syscall_filter: the allow-list (see syscall_filter.h). Each group says who needs it. The
 * default action is SCMP_ACT_KILL_PROCESS. */
#include "syscall_filter.h"

#include <errno.h>
#include <linux/if_tun.h>
#include <linux/kvm.h>
#include <linux/vhost.h>
#include <sched.h>
#include <seccomp.h>
#include <stddef.h>
#include <sys/ioctl.h>
#include <sys/socket.h>
#include <termios.h>

#include "../../common/sanitizers.h"

/* The lists are grouped by purpose, one comment a group: laid out by hand. */
/* clang-format off */
static const char *const allowed[] = {
	/* memory: guest RAM, run areas, file mappings, malloc, thread stacks; which guest pages are
	 * resident (--stats) */
	"mmap", "munmap", "mprotect", "mremap", "madvise", "brk", "mincore",
	/* files: kernel and initrd (opened again on each boot), disks (opened once; a volatile
	 * disk's O_TMPFILE overlay), the serial output and log,
	 * /proc/self/statm, smaps, status and exe (--stats), /proc/cpuinfo (kvm_open) */
	"openat", "open", "close", "read", "write", "readv", "writev", "pread64", "pwrite64",
	"preadv", "pwritev", "preadv2", "pwritev2", "lseek", "fstat", "newfstatat", "stat", "lstat",
	"statx", "fcntl", "dup", "dup3", "fsync", "fdatasync", "fallocate", "ftruncate", "unlink",
	"unlinkat", "chmod", "fchmodat", "readlink", "readlinkat", "getdents64", "getdents",
	/* KVM and its file descriptors (ioctl: by request, below) */
	"eventfd2", "memfd_create",
	/* event loops: the main thread's poll, the I/O threads' epoll, signals */
	"poll", "ppoll", "epoll_create1", "epoll_ctl", "epoll_wait", "epoll_pwait", "signalfd4",
	"rt_sigaction", "rt_sigprocmask", "rt_sigreturn", "sigaltstack", "tgkill", "tkill",
	/* Unix sockets: control, serial and virtio-console (listened on again on each boot);
	 * socket and socketpair: by family, below */
	"bind", "listen", "accept", "accept4", "sendto", "sendmsg", "recvfrom", "recvmsg",
	"shutdown", "getsockopt", "setsockopt", "getsockname",
	/* the agent link's vsock connection */
	"connect",
	/* threads and their synchronisation (clone: by flags, below) */
	"set_robust_list", "rseq", "futex", "exit", "exit_group", "sched_yield",
	"sched_getaffinity", "prctl", "gettid", "getpid", "set_tid_address",
	/* time, entropy and identity */
	"clock_gettime", "clock_nanosleep", "nanosleep", "gettimeofday", "getrandom", "getuid",
	"geteuid", "getgid", "getegid", "uname", "prlimit64", "getrlimit", "restart_syscall",
	/* reaping its own children, its slirp NICs' shoji-slirp (net_slirp_reap) */
	"wait4",
};

/* What the AddressSanitizer/LeakSanitizer run-time adds: LeakSanitizer's check at exit stops the
 * threads with ptrace from a helper it clones, and reads /proc/self. */
static const char *const allowed_sanitized[] = {
	"ptrace", "waitid", "getppid", "kill", "pipe2", "sched_getparam",
	"process_vm_readv", "msync", "getcwd",
};

static unsigned count;

/* The requests the monitor makes of KVM (kvm/, cpu/, vm.c, virtio_pci.c, vm_control.c). */
static const unsigned long kvm_ioctls[] = {
	KVM_GET_API_VERSION, KVM_CHECK_EXTENSION, KVM_CREATE_VM, KVM_GET_VCPU_MMAP_SIZE,
	KVM_GET_SUPPORTED_CPUID, KVM_SET_USER_MEMORY_REGION, KVM_SET_TSS_ADDR,
	KVM_SET_IDENTITY_MAP_ADDR, KVM_CREATE_IRQCHIP, KVM_CREATE_PIT2, KVM_CREATE_VCPU,
	KVM_SET_GSI_ROUTING, KVM_IRQFD, KVM_IOEVENTFD, KVM_IRQ_LINE, KVM_GET_CLOCK, KVM_SET_CLOCK,
	KVM_RUN, KVM_GET_REGS, KVM_SET_REGS, KVM_GET_SREGS, KVM_SET_SREGS, KVM_SET_MSRS,
	KVM_SET_FPU, KVM_SET_CPUID2, KVM_GET_LAPIC, KVM_SET_LAPIC,
	/* the console's terminal: isatty, raw mode and its restore */
	TCGETS, TCSETS, TCSETSW, TCSETSF,
};
static const unsigned long tap_ioctls[] = {TUNSETIFF, TUNSETOFFLOAD, TUNSETVNETHDRSZ, TUNSETQUEUE};
static const unsigned long vhost_ioctls[] = {
	VHOST_SET_OWNER, VHOST_GET_FEATURES, VHOST_SET_FEATURES, VHOST_SET_MEM_TABLE,
	VHOST_SET_VRING_NUM, VHOST_SET_VRING_ADDR, VHOST_SET_VRING_BASE, VHOST_SET_VRING_KICK,
	VHOST_SET_VRING_CALL, VHOST_VSOCK_SET_GUEST_CID, VHOST_VSOCK_SET_RUNNING, VHOST_NET_SET_BACKEND,
};
/* clang-format on */

/* Adds one rule; r carries the first error through a chain of calls. */
static int rule(scmp_filter_ctx ctx, uint32_t action, const char *name, unsigned n, const struct scmp_arg_cmp *cmp,
		struct err *e)
{
	int nr = seccomp_syscall_resolve_name(name);
	if (nr == __NR_SCMP_ERROR)
		return 0; /* not on this architecture */
	int r = seccomp_rule_add_array(ctx, action, nr, n, cmp);
	if (r < 0)
		return err_errno(e, -r, "seccomp: cannot add the rule for %s", name);
	count++;
	return 0;
}

static int allow_ioctls(scmp_filter_ctx ctx, const unsigned long *req, size_t n, struct err *e)
{
	for (size_t i = 0; i < n; i++) {
		/* the kernel reads the request as 32 bits: compare those */
		struct scmp_arg_cmp c = SCMP_A1(SCMP_CMP_MASKED_EQ, 0xffffffffu, req[i] & 0xffffffffu);
		if (rule(ctx, SCMP_ACT_ALLOW, "ioctl", 1, &c, e) < 0)
			return -1;
	}
	return 0;
}

/* AF_UNIX always; AF_VSOCK for the link to the guest's agent. No internet socket ever: a slirp
 * NIC's host sockets are shoji-slirp's, a passt NIC's passt's. */
static int allow_families(scmp_filter_ctx ctx, const struct syscall_needs *needs, struct err *e)
{
	const int families[] = {AF_UNIX, needs->vsock ? AF_VSOCK : -1};
	for (size_t i = 0; i < sizeof(families) / sizeof(families[0]); i++) {
		if (families[i] < 0)
			continue;
		struct scmp_arg_cmp c = SCMP_A0(SCMP_CMP_EQ, (scmp_datum_t)families[i]);
		if (rule(ctx, SCMP_ACT_ALLOW, "socket", 1, &c, e) < 0 ||
		    (families[i] == AF_UNIX && rule(ctx, SCMP_ACT_ALLOW, "socketpair", 1, &c, e) < 0))
			return -1;
	}
	return 0;
}

/* clone: never a new namespace; a thread (CLONE_THREAD) unless the sanitizer's run-time, which
 * clones a tracer at exit, is in the build. clone3: ENOSYS, so that glibc uses clone. */
static int allow_threads(scmp_filter_ctx ctx, struct err *e)
{
	const scmp_datum_t ns = CLONE_NEWNS | CLONE_NEWCGROUP | CLONE_NEWUTS | CLONE_NEWIPC | CLONE_NEWUSER |
		CLONE_NEWPID | CLONE_NEWNET;
	struct scmp_arg_cmp c = SHOJI_SANITIZED ? SCMP_A0(SCMP_CMP_MASKED_EQ, ns, 0)
						: SCMP_A0(SCMP_CMP_MASKED_EQ, ns | CLONE_THREAD, CLONE_THREAD);
	if (rule(ctx, SCMP_ACT_ALLOW, "clone", 1, &c, e) < 0)
		return -1;
	return rule(ctx, SCMP_ACT_ERRNO(ENOSYS), "clone3", 0, NULL, e);
}

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

int syscall_filter_install(const struct syscall_needs *needs, struct err *e)
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
	if (r == 0)
		r = allow_families(ctx, needs, e);
	if (r == 0)
		r = allow_threads(ctx, e);
	if (r == 0)
		r = allow_ioctls(ctx, kvm_ioctls, sizeof(kvm_ioctls) / sizeof(kvm_ioctls[0]), e);
	if (r == 0 && needs->tap)
		r = allow_ioctls(ctx, tap_ioctls, sizeof(tap_ioctls) / sizeof(tap_ioctls[0]), e);
	if (r == 0 && needs->vhost)
		r = allow_ioctls(ctx, vhost_ioctls, sizeof(vhost_ioctls) / sizeof(vhost_ioctls[0]), e);
	if (r == 0 && SHOJI_SANITIZED)
		r = add_all(ctx, allowed_sanitized, sizeof(allowed_sanitized) / sizeof(allowed_sanitized[0]), e);
	if (r == 0) {
		int l = seccomp_load(ctx); /* sets no_new_privs first */
		if (l < 0)
			r = err_errno(e, -l,
				      "seccomp: cannot install the system call filter (use "
				      "--no-seccomp on a kernel without seccomp)");
	}
	seccomp_release(ctx);
	return r;
}

unsigned syscall_filter_count(void)
{
	return count;
}
