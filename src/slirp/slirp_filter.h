/* slirp_filter: shoji-slirp's confinement, entered once its forwards are bound and before it
 * reads a guest's frame.
 * - Files (Landlock, where the kernel has it): only reading, and only beneath /etc, the
 *   directory of the host's resolver file (/etc/resolv.conf, followed) and the other places
 *   network managers keep it (/run/systemd/resolve, /run/NetworkManager, /run/resolvconf), and
 *   /dev/urandom; nothing else of the host's files, whatever their modes.
 * - System calls (libseccomp): what libslirp does with the guest's connections: IPv4 and IPv6
 *   sockets, connect and accept, files opened read-only, ioctl FIONREAD and FIONBIO, memory,
 *   time, poll. What only a process taken over would do kills it (exec, fork, ptrace, kill,
 *   bind, listen, namespaces, mounts, module loading, a change of identity); any other call
 *   fails with EPERM (a Unix socket, a file opened for writing, another ioctl), so that a
 *   library's harmless surprise does not take the guest's network down.
 * Also no_new_privs and, outside sanitizer builds, not dumpable. */
#ifndef SHOJI_SLIRP_SLIRP_FILTER_H
#define SHOJI_SLIRP_SLIRP_FILTER_H

#include "../common/err.h"

/* The Landlock part alone: 1 when in force, 0 on a kernel without Landlock, -1 (e) on failure. */
int slirp_filter_landlock(struct err *e);
/* Both parts, Landlock's where the kernel has it: 0, or -1 (e). */
int slirp_filter_enter(struct err *e);

#endif
