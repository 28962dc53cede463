/* slirp_filter: shoji-slirp's confinement, entered once its forwards are bound and before it
 * reads a guest's frame.
 * - Files (Landlock, where the kernel has it): only reading, and only beneath the directory of
 *   the host's resolver file (/etc/resolv.conf, followed) and /dev/urandom; nothing else of the
 *   host's files, whatever their modes.
 * - System calls (libseccomp): what libslirp does with the guest's connections: IPv4 and IPv6
 *   sockets (no Unix, netlink or packet socket), connect and accept but no bind or listen,
 *   files opened read-only, memory, time, poll. No exec, fork, ptrace, kill or namespace; any
 *   other call kills the process (its NIC's link then goes down).
 * Also no_new_privs and, outside sanitizer builds, not dumpable. */
#ifndef SHOJI_SLIRP_SLIRP_FILTER_H
#define SHOJI_SLIRP_SLIRP_FILTER_H

#include "../common/err.h"

/* The Landlock part alone: 1 when in force, 0 on a kernel without Landlock, -1 (e) on failure. */
int slirp_filter_landlock(struct err *e);
/* Both parts, Landlock's where the kernel has it: 0, or -1 (e). */
int slirp_filter_enter(struct err *e);

#endif
