/* jail: confines the monitor before it builds the VM (--jail-uid/--jail-gid): a private mount
 * namespace whose root is a fresh tmpfs holding only the paths the VM uses, bound at the same
 * absolute paths (read-only unless they must be written), the device nodes it needs and a
 * /proc of its own; then the monitor becomes JAIL_UID/JAIL_GID with no supplementary groups
 * and no_new_privs set, so it holds no capabilities and can never gain any. It also gets IPC and
 * UTS namespaces of its own, and an empty network namespace unless its VM has a TAP NIC (whose
 * interface is the host's; a user-mode NIC's host sockets are shoji-slirp's or passt's); a PID namespace is the
 * keeper's to give (shojid starts a jailed monitor as the first process of a new one). */
#ifndef SHOJI_VMM_SANDBOX_JAIL_H
#define SHOJI_VMM_SANDBOX_JAIL_H

#include <stdbool.h>
#include <sys/types.h>

#include "../../common/err.h"

#define JAIL_MAX_PATHS 64

struct jail_path {
	const char *path; /* absolute, without symbolic links (realpath), or an alias's name */
	const char *src;  /* an alias: the real path bound at path; NULL: path itself */
	bool writable;
};

struct jail {
	uid_t uid;
	gid_t gid;
	bool own_net; /* a network namespace of its own (empty): the VM needs no host sockets */
	struct jail_path paths[JAIL_MAX_PATHS];
	unsigned npaths;
	char *owned[2 * JAIL_MAX_PATHS]; /* the real paths jail_add_file made */
	unsigned nowned;
};

/* Adds path (an absolute real path that exists) to what the jail shows. */
int jail_add(struct jail *j, const char *path, bool writable, struct err *e);
/* Adds the file at *path and points *path at its absolute real path, the one the jail shows.
 * socket: *path is a socket to be created; its directory is added (writable, so that the
 * socket can be made and removed there). */
int jail_add_file(struct jail *j, const char **path, bool writable, bool socket, struct err *e);
/* Also shows the file at `real` (added already) at `path`, an absolute name that reaches it
 * through symbolic links (read-only). */
int jail_add_alias(struct jail *j, const char *path, const char *real, struct err *e);
void jail_free(struct jail *j);
/* Enters the jail; on failure the process is left half-confined and must exit. */
int jail_enter(const struct jail *j, struct err *e);

#endif
