/* paths: where the toolstack keeps things. The state directory (default /var/lib/shoji,
 * --state-dir or SHOJI_STATE_DIR) holds definitions, per-VM state, logs and events; the
 * runtime directory (default /run/shoji, --runtime-dir or SHOJI_RUNTIME_DIR) holds sockets. */
#ifndef SHOJI_TOOLSTACK_PATHS_H
#define SHOJI_TOOLSTACK_PATHS_H

#include <stddef.h>

#include "../common/err.h"

#define PATHS_MAX 256

struct paths {
	char state[PATHS_MAX], runtime[PATHS_MAX];
};

/* Explicit directories win over the environment, which wins over the defaults. */
int paths_init(struct paths *p, const char *state_dir, const char *runtime_dir, struct err *e);

enum paths_file {
	PATHS_DAEMON_SOCKET,         /* runtime/shojid.sock */
	PATHS_DAEMON_LOCK,           /* state/shojid.lock */
	PATHS_EVENTS,                /* state/events.log */
	PATHS_VMS,                   /* state/vms */
	PATHS_DEFINITION,            /* state/vms/NAME.ini */
	PATHS_VM_DIR,                /* state/vms/NAME */
	PATHS_VM_STATE,              /* state/vms/NAME/state.json */
	PATHS_VM_LOCK,               /* state/vms/NAME/lock: held by the VM's keeper while it runs */
	PATHS_VM_EXIT,               /* state/vms/NAME/exit.json: how the monitor ended */
	PATHS_SERIAL_LOG,            /* state/vms/NAME/serial.log */
	PATHS_MONITOR_LOG,           /* state/vms/NAME/monitor.log: the monitor's stderr */
	PATHS_RUN_DIR,               /* runtime/NAME */
	PATHS_CONTROL,               /* runtime/NAME/control.sock */
	PATHS_SERIAL,                /* runtime/NAME/serial.sock */
	PATHS_TEMPLATES,             /* state/templates */
	PATHS_TEMPLATE_DIR,          /* state/templates/NAME: its versions vN.qcow2 */
	PATHS_TEMPLATE_META,         /* state/templates/NAME/template.json: the current version */
	PATHS_VM_DISKS,              /* state/vms/NAME/disks: overlays (snapshots, template roots) */
	PATHS_VM_SNAPSHOTS,          /* state/vms/NAME/snapshots.json: disk chains and snapshots */
	PATHS_VM_DISPOSABLE,         /* state/vms/NAME/disposable: the VM is removed when it stops */
	PATHS_VM_VOLATILE,           /* state/vms/NAME/volatile: where a disposable's monitor keeps its
				      * unnamed overlays */
	PATHS_DISPLAY,               /* runtime/NAME/display.sock: the monitor's display channel (display = on) */
	PATHS_SEAT_DIR,              /* runtime/seat: the seat's own directory, root:shoji 2770 */
	PATHS_SEAT_CONTROL,          /* runtime/seat/control.sock: shoji-seat's control socket */
	PATHS_JAIL_UIDS,             /* state/jail-uids.json: where the search for a free jail uid goes on */
	PATHS_SERIAL_LOG_OLD,        /* state/vms/NAME/serial.log.1: the serial log's older part */
	PATHS_MONITOR_LOG_OLD,       /* state/vms/NAME/monitor.log.1: earlier runs' diagnostics */
	PATHS_VM_UEFI_VARS,          /* state/vms/NAME/uefi-vars.fd: a firmware VM's variable store */
	PATHS_VM_UEFI_VARS_NEW,      /* state/vms/NAME/uefi-vars.fd.new: the store while it is copied */
	PATHS_VM_VOLATILE_UEFI_VARS, /* state/vms/NAME/volatile/uefi-vars.fd: a disposable's store */
	PATHS_USB_HOLDS,             /* runtime/usb-holds: the USB devices given to VMs, for a restart */
};

/* Writes the path (name is ignored for the daemon-wide ones); fails when it would not fit
 * (sockets: sun_path). */
int paths_get(const struct paths *p, enum paths_file f, const char *name, char *buf, size_t size, struct err *e);

#endif
