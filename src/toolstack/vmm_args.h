/* vmm_args: the shoji-vmm command line for a VM definition (docs/ARCHITECTURE.md, "shojid"):
 * its kernel or firmware, control socket, serial socket and serial log, display socket, disks,
 * NICs, vsock and the jail. Pure. */
#ifndef SHOJI_TOOLSTACK_VMM_ARGS_H
#define SHOJI_TOOLSTACK_VMM_ARGS_H

#include <stdbool.h>
#include <sys/types.h>

#include "../common/err.h"
#include "vmdef.h"

#define VMM_ARGS_MAX 80

struct vmm_args_in {
	const char *vmm; /* the shoji-vmm binary */
	const char *control, *serial_socket, *serial_log;
	const char *display; /* the display socket, passed when the definition has display = on */
	bool jail;           /* pass --jail-uid/--jail-gid */
	uid_t jail_uid;
	gid_t jail_gid;
	uid_t net_uid; /* with jail, a slirp NIC's NAT runs as this (--net-uid); 0: the jail's uid */
	/* A disk with both a template name and a path is a template resolved to its image:
	 * it gets ",volatile=DIR" (writes to an unnamed overlay in DIR) when this is set. */
	const char *volatile_dir;
	/* With firmware: the VM's variable store (shojid's copy of the template), passed as
	 * --firmware CODE,vars=THIS instead of --kernel/--initrd/--cmdline. */
	const char *firmware_vars;
};

struct vmm_args {
	char *argv[VMM_ARGS_MAX + 1]; /* NULL-terminated, pointing into buf */
	int argc;
	char buf[16384];
	size_t used;
};

int vmm_args_build(const struct vmdef *d, const struct vmm_args_in *in, struct vmm_args *out, struct err *e);
/* The command line of the passt (binary passt) that serves NIC n of type passt, its socket at
 * descriptor 3: slirp's addresses, the NIC's forwards and host-loopback; -1 if it does not fit. */
int vmm_args_passt(const char *passt, const struct vmdef_nic *n, struct vmm_args *out);
/* The command line of the shoji-slirp (binary helper) that serves NIC n of type slirp again, its
 * socket at descriptor 3: the NIC's forwards and host-loopback, as the monitor gave its first;
 * -1 if it does not fit. */
int vmm_args_slirp(const char *helper, const struct vmdef_nic *n, struct vmm_args *out);

#endif
