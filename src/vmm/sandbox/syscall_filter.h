/* syscall_filter: the monitor's system-call allow-list (libseccomp). Installed once, before any guest
 * code runs, for every thread of the process; any other system call kills the whole process
 * with SIGSYS. It covers a whole run including the rebuild of the VM on a guest reboot. */
#ifndef SHOJI_VMM_SANDBOX_SYSCALL_FILTER_H
#define SHOJI_VMM_SANDBOX_SYSCALL_FILTER_H

#include <stdbool.h>

#include "../../common/err.h"

/* What this VM's devices need beyond the base: the allow-list's arguments follow from it. */
struct syscall_needs {
	bool tap;   /* a TAP NIC: the TUN ioctls */
	bool vsock; /* vhost-vsock: AF_VSOCK sockets (the agent link) */
	bool vhost; /* vhost-vsock or vhost-net: the VHOST ioctls */
};

/* Arguments are filtered too: clone only for threads (no namespace flag ever; and, outside
 * sanitizer builds, CLONE_THREAD always), clone3 answered ENOSYS (its flags are behind a
 * pointer; glibc then uses clone), socket and socketpair only AF_UNIX (and socket AF_VSOCK with
 * needs->vsock, for the agent link; never an internet socket), ioctl only the requests the
 * monitor makes (KVM, and TUN and VHOST as needed, the terminal's TCGETS/TCSETS*). */
int syscall_filter_install(const struct syscall_needs *needs, struct err *e);
/* How many system calls the installed list allows (for --stats and the docs). */
unsigned syscall_filter_count(void);

#endif
