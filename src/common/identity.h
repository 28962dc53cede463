/* identity: how a shoji process gives up root for another user, the one way all do it (the
 * monitor's jail, its shoji-slirp, shojid's confined children and passt): the supplementary
 * groups first, then the group, then the user, each real, effective and saved, so that no
 * capability and no way back remain; and the parent-death signal, which a change of identity
 * clears, set again afterwards. Any thread of a process that has one (a fresh child). */
#ifndef SHOJI_COMMON_IDENTITY_H
#define SHOJI_COMMON_IDENTITY_H

#include <stdbool.h>
#include <stddef.h>
#include <sys/types.h>

/* nobody and nogroup: whom root becomes where no uid of its own is given (an unjailed monitor's
 * shoji-slirp, shojid's passt or shoji-slirp without jails, its USB and template workers). */
#define IDENTITY_NOBODY 65534

/* Becomes uid/gid with groups[0..ngroups) as its only supplementary groups: 0, or -1 (errno). */
int identity_become(uid_t uid, gid_t gid, const gid_t *groups, size_t ngroups);
/* SIGKILL when the parent ends, set after identity_become; false when the parent (pid parent)
 * has ended already, before it was set. */
bool identity_die_with(pid_t parent);

#endif
