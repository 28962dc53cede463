/* vmdef: a VM definition (one INI file per VM): the structure, parsing and validation with
 * errors that name the file, the line and the fix, single-key edits ("shoji set"), and the
 * INI text written back. Pure: no file or process access, so every path is unit-testable.
 *
 * Layout (docs/vm-definition.md):
 *   [vm]          name memory cpus kernel initrd cmdline firmware firmware-vars boot vsock-cid
 *                 display label autostart param...
 *   [disk ID]     path|template format readonly serial           (up to VMDEF_MAX_DISKS)
 *   [nic ID]      type mac ifname forward host-loopback vhost queues peer   (up to VMDEF_MAX_NICS)
 *   [policy]      clipboard-out clipboard-in clipboard-max          (vmdef_policy.c)
 *                 usb-allow usb-deny usb-storage usb-auto             (src/usb/usb_policy.h) */
#ifndef SHOJI_TOOLSTACK_VMDEF_H
#define SHOJI_TOOLSTACK_VMDEF_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "../common/err.h"
#include "../common/guest_param.h"
#include "../common/limits.h"
#include "../common/vhost_mode.h"
#include "../usb/usb_policy.h"

#define VMDEF_NAME_MAX       32
#define VMDEF_PATH_MAX       181 /* 180 characters: an INI line holds at most 198 */
#define VMDEF_CMDLINE_MAX    2048
#define VMDEF_MAX_DISKS      SHOJI_MAX_DISKS
#define VMDEF_MAX_NICS       SHOJI_MAX_NICS
#define VMDEF_MAX_FWDS       SHOJI_MAX_FWDS
#define VMDEF_SERIAL_MAX     SHOJI_DISK_SERIAL_MAX
#define VMDEF_MIN_MEMORY_MIB SHOJI_MIN_MEMORY_MIB
#define VMDEF_MAX_MEMORY_MIB SHOJI_MAX_MEMORY_MIB
#define VMDEF_MAX_CPUS       SHOJI_MAX_CPUS

/* firmware = uefi: Debian's OVMF (package ovmf), its code image and the template of each VM's
 * variable store. The one place these names are kept. */
#define VMDEF_FIRMWARE_UEFI  "uefi"
#define VMDEF_UEFI_CODE      "/usr/share/OVMF/OVMF_CODE_4M.fd"
#define VMDEF_UEFI_VARS      "/usr/share/OVMF/OVMF_VARS_4M.fd"
#define VMDEF_UEFI_PACKAGE   "ovmf"
#define VMDEF_VARS_MAX_BYTES (16u << 20) /* a variable store template's largest size */

enum vmdef_disk_format { VMDEF_DISK_RAW, VMDEF_DISK_QCOW2 };
/* boot: absent (AUTO: kernel when there is one, else disk when there is firmware), a direct
 * kernel boot, or the firmware booting the disks. */
enum vmdef_boot { VMDEF_BOOT_AUTO, VMDEF_BOOT_KERNEL, VMDEF_BOOT_DISK };
/* vm: a link to a NIC of another VM whose definition names this one back (shojid joins them).
 * slirp and passt: user-mode networking (NAT to the host's network), by libslirp in a
 * shoji-slirp process the monitor starts, or by a passt process that shojid starts beside it;
 * either as the VM's net uid when monitors are jailed. */
enum vmdef_nic_type { VMDEF_NIC_NONE, VMDEF_NIC_SLIRP, VMDEF_NIC_TAP, VMDEF_NIC_VM, VMDEF_NIC_PASST };
/* The types as written in a definition, by enum vmdef_nic_type. */
extern const char *const vmdef_nic_type_names[5];
/* Whether a NIC of type t is user-mode networking (forward and host-loopback apply). */
bool vmdef_nic_user_mode(enum vmdef_nic_type t);
struct vmdef;
/* Whether d has a NIC of type t. */
bool vmdef_has_nic(const struct vmdef *d, enum vmdef_nic_type t);

struct vmdef_disk {
	char id[VMDEF_NAME_MAX + 1];
	char path[VMDEF_PATH_MAX];
	char template_name[VMDEF_NAME_MAX + 1]; /* instead of path: a fresh overlay on this template
						 * at each start (volatile) */
	enum vmdef_disk_format format;
	bool readonly;
	char serial[VMDEF_SERIAL_MAX + 1];
	int line; /* of the section header, for errors found after parsing (0: not from a file) */
};

struct vmdef_fwd {
	char proto[4];      /* "tcp" or "udp" */
	char host_addr[48]; /* empty: the monitor's default */
	uint16_t host_port, guest_port;
};

struct vmdef_nic {
	char id[VMDEF_NAME_MAX + 1];
	enum vmdef_nic_type type;
	char mac[18];    /* empty: the monitor picks one */
	char ifname[16]; /* tap only */
	/* vm only: the peer VM and, optionally, its NIC (empty: its one NIC of type vm that names
	 * this VM back) */
	char peer[VMDEF_NAME_MAX + 1], peer_nic[VMDEF_NAME_MAX + 1];
	struct vmdef_fwd fwds[VMDEF_MAX_FWDS];
	unsigned nfwds;
	bool host_loopback;    /* slirp: the guest may reach the host's loopback (10.0.2.2) */
	enum vhost_mode vhost; /* tap: the kernel's vhost-net serves the rings (where it can: auto) */
	unsigned queues;       /* tap: queue pairs (multiqueue); 0: one a vCPU where the TAP allows */
	int line;
};

/* Which peers a rule lets through: every VM, none, only those listed, or all but those listed.
 * A peer is a VM's name or "label:COLOUR" (every VM with that label). */
#define VMDEF_MAX_PEERS 8
#define VMDEF_PEER_MAX  (VMDEF_NAME_MAX + 7) /* "label:" and a colour, or a name; NUL included */
enum vmdef_peer_mode { VMDEF_PEERS_ALL, VMDEF_PEERS_NONE, VMDEF_PEERS_ONLY, VMDEF_PEERS_EXCEPT };
struct vmdef_peers {
	enum vmdef_peer_mode mode;
	char peer[VMDEF_MAX_PEERS][VMDEF_PEER_MAX];
	unsigned n;
};

/* [policy]: what the VM may share. The clipboard moves only by the user's act at the seat; these
 * say between which VMs it may, and how much. */
struct vmdef_policy {
	struct vmdef_peers clip_out; /* the VMs this VM's clipboard may be pasted into */
	struct vmdef_peers clip_in;  /* the VMs whose clipboard may be pasted into this one */
	uint32_t clip_max;           /* bytes, 1..SHOJI_CLIPBOARD_MAX (the default) */
	struct usb_policy usb;       /* which USB devices it may be given (unset: the host's word) */
};

struct vmdef {
	char name[VMDEF_NAME_MAX + 1];
	uint32_t memory_mib;
	unsigned cpus;
	char kernel[VMDEF_PATH_MAX], initrd[VMDEF_PATH_MAX];
	char firmware[VMDEF_PATH_MAX];      /* "uefi", a code image's path, or "" (none) */
	char firmware_vars[VMDEF_PATH_MAX]; /* with firmware = PATH: its variable store template */
	enum vmdef_boot boot;
	char cmdline[VMDEF_CMDLINE_MAX];
	bool cmdline_given; /* cmdline was set (not the default), which boot = disk refuses */
	uint32_t vsock_cid; /* 0: no vsock device (or, with vsock_auto, none chosen yet) */
	bool vsock_auto;    /* vsock-cid = auto: shojid picks a free CID at each start (vsockcid.c) */
	bool display, autostart;
	char label[8];                              /* a colour name (vmdef_parse_label) or "#rrggbb"; empty for none */
	struct guest_param params[GUEST_PARAM_MAX]; /* param = KEY=VALUE, in order, keys unique */
	unsigned nparams;
	struct vmdef_disk disks[VMDEF_MAX_DISKS];
	unsigned ndisks;
	struct vmdef_nic nics[VMDEF_MAX_NICS];
	unsigned nnics;
	struct vmdef_policy policy;
	int vm_line; /* the [vm] header's line */
};

/* The defaults of a new definition: 512 MiB, 1 vCPU, "console=ttyS0", nothing else. */
void vmdef_init(struct vmdef *d, const char *name);

/* True when name is 1..32 of [A-Za-z0-9._-], starting with a letter or digit. */
bool vmdef_name_ok(const char *name);

/* Parses INI text. file names the file in errors ("FILE:LINE: what; fix"). The result is
 * validated (vmdef_check); nothing is kept on error. */
int vmdef_parse(const char *text, const char *file, struct vmdef *out, struct err *e);

/* Whole-definition checks: a kernel or firmware, disk paths, NIC types, unique IDs. */
int vmdef_check(const struct vmdef *d, const char *file, struct err *e);

/* How the VM boots: boot's value, or when it is absent, KERNEL with a kernel (or without
 * firmware) and DISK with firmware and no kernel. */
enum vmdef_boot vmdef_boot_of(const struct vmdef *d);
/* The MAC NIC n of VM vm has: its own, or one derived from the two names (the same at every
 * start, different between VMs). */
void vmdef_nic_mac(const char *vm, const struct vmdef_nic *n, char out[18]);
/* The firmware's code image and variable store template (firmware = uefi: Debian's OVMF);
 * false when the VM has no firmware. */
bool vmdef_firmware_files(const struct vmdef *d, const char **code, const char **vars_template);

/* Applies one "KEY=VALUE" edit: a [vm] key (memory, cpus, ...), or disk.ID.KEY / nic.ID.KEY
 * (which add the device if it is new), or disk.ID= / nic.ID= (empty: remove it). The result is
 * checked; d is unchanged on error. */
int vmdef_set(struct vmdef *d, const char *assignment, struct err *e);
/* Applies n edits and checks the result once (so that e.g. firmware=uefi boot=disk kernel=
 * switches a VM to firmware boot in one go); d is unchanged on error. */
int vmdef_set_all(struct vmdef *d, char *const *assignments, int n, struct err *e);
/* "uefi" or "CODE,vars=TEMPLATE" (as shoji create --firmware) sets firmware and firmware-vars. */
int vmdef_set_firmware_spec(struct vmdef *d, const char *spec, struct err *e);

/* "PATH[,ro][,serial=ID][,format=raw|qcow2]" (as shoji-vmm's --disk) adds a disk with ID id. */
int vmdef_add_disk_spec(struct vmdef *d, const char *id, const char *spec, struct err *e);
/* "slirp[,mac=MAC][,host-loopback=yes][,fwd=tcp:[ADDR:]HPORT:GPORT]...", "tap=IFNAME[,mac=MAC]" or
 * "vm=PEER[:NIC][,mac=MAC]" adds a NIC. */
int vmdef_add_nic_spec(struct vmdef *d, const char *id, const char *spec, struct err *e);

/* Writes the definition as INI text (parsable by vmdef_parse). Returns the length, or -1 when
 * it does not fit in size bytes. */
int vmdef_format(const struct vmdef *d, char *buf, size_t size);

/* vmdef_policy.c: a [policy] key's value applied (errors name the accepted forms), the
 * defaults (everything allowed, SHOJI_CLIPBOARD_MAX bytes), and the decisions. */
int vmdef_apply_policy(struct vmdef_policy *p, const char *key, const char *value, struct err *e);
void vmdef_policy_defaults(struct vmdef_policy *p);
/* Whether the clipboard may leave src at all (its clipboard-out is not "deny") and whether
 * bytes of it may be copied (clipboard-max); false with why (a sentence) when not. */
bool vmdef_clipboard_may_copy(const struct vmdef *src, size_t bytes, char *why, size_t why_size);
/* Whether bytes of src's clipboard may be pasted into dst: src's clipboard-out lets dst in,
 * dst's clipboard-in lets src in, and dst's clipboard-max holds bytes; false with why. */
bool vmdef_clipboard_may_paste(const struct vmdef *src, const struct vmdef *dst, size_t bytes, char *why,
			       size_t why_size);

/* "512M", "2G", "1024" (MiB) -> MiB. */
int vmdef_parse_size_mib(const char *s, uint32_t *mib, struct err *e);
/* A colour name (blue, green, red, ...) or #rrggbb, stored lower-case. */
int vmdef_parse_label(const char *s, char out[8], struct err *e);
/* The 0xRRGGBB the seat paints for a label (a name or #rrggbb); -1 for anything else. */
int vmdef_label_rgb(const char *label, uint32_t *rgb);
int vmdef_parse_bool(const char *s, bool *out, struct err *e);
/* "aa:bb:cc:dd:ee:ff", unicast. */
int vmdef_parse_mac(const char *s, char out[18], struct err *e);
/* "tcp:[ADDR:]HOSTPORT:GUESTPORT" (or udp). */
int vmdef_parse_fwd(const char *s, struct vmdef_fwd *out, struct err *e);
/* An absolute path of at most VMDEF_PATH_MAX - 1 characters, without ',' or control characters. */
int vmdef_parse_path(const char *s, char out[VMDEF_PATH_MAX], struct err *e);

#endif
