/* paths: the toolstack's directories and file names (see paths.h). */
#include "paths.h"

#include <stdio.h>
#include <stdlib.h>
#include <sys/un.h>

static int pick(char *dst, const char *explicit_dir, const char *env, const char *def, struct err *e)
{
	const char *v = explicit_dir && *explicit_dir ? explicit_dir : getenv(env);
	if (!v || !*v)
		v = def;
	if (v[0] != '/')
		return err_set(e, "directory '%s' is relative; give an absolute path", v);
	if (snprintf(dst, PATHS_MAX, "%s", v) >= PATHS_MAX - 64)
		return err_set(e, "directory '%.60s...' is too long; use a shorter path", v);
	return 0;
}

int paths_init(struct paths *p, const char *state_dir, const char *runtime_dir, struct err *e)
{
	if (pick(p->state, state_dir, "SHOJI_STATE_DIR", "/var/lib/shoji", e) < 0)
		return -1;
	return pick(p->runtime, runtime_dir, "SHOJI_RUNTIME_DIR", "/run/shoji", e);
}

int paths_get(const struct paths *p, enum paths_file f, const char *name, char *buf, size_t size, struct err *e)
{
	static const struct {
		int runtime;
		const char *fmt;
	} t[] = {
		[PATHS_DAEMON_SOCKET] = {1, "%s/shojid.sock"},
		[PATHS_DAEMON_LOCK] = {0, "%s/shojid.lock"},
		[PATHS_EVENTS] = {0, "%s/events.log"},
		[PATHS_VMS] = {0, "%s/vms"},
		[PATHS_DEFINITION] = {0, "%s/vms/%s.ini"},
		[PATHS_VM_DIR] = {0, "%s/vms/%s"},
		[PATHS_VM_STATE] = {0, "%s/vms/%s/state.json"},
		[PATHS_VM_LOCK] = {0, "%s/vms/%s/lock"},
		[PATHS_VM_EXIT] = {0, "%s/vms/%s/exit.json"},
		[PATHS_SERIAL_LOG] = {0, "%s/vms/%s/serial.log"},
		[PATHS_MONITOR_LOG] = {0, "%s/vms/%s/monitor.log"},
		[PATHS_RUN_DIR] = {1, "%s/%s"},
		[PATHS_CONTROL] = {1, "%s/%s/control.sock"},
		[PATHS_SERIAL] = {1, "%s/%s/serial.sock"},
		[PATHS_TEMPLATES] = {0, "%s/templates"},
		[PATHS_TEMPLATE_DIR] = {0, "%s/templates/%s"},
		[PATHS_TEMPLATE_META] = {0, "%s/templates/%s/template.json"},
		[PATHS_VM_DISKS] = {0, "%s/vms/%s/disks"},
		[PATHS_VM_SNAPSHOTS] = {0, "%s/vms/%s/snapshots.json"},
		[PATHS_VM_DISPOSABLE] = {0, "%s/vms/%s/disposable"},
		[PATHS_VM_VOLATILE] = {0, "%s/vms/%s/volatile"},
		[PATHS_DISPLAY] = {1, "%s/%s/display.sock"},
		[PATHS_SEAT_DIR] = {1, "%s/seat"},
		[PATHS_SEAT_CONTROL] = {1, "%s/seat/control.sock"},
		[PATHS_JAIL_UIDS] = {0, "%s/jail-uids.json"},
		[PATHS_SERIAL_LOG_OLD] = {0, "%s/vms/%s/serial.log.1"},
		[PATHS_MONITOR_LOG_OLD] = {0, "%s/vms/%s/monitor.log.1"},
		[PATHS_VM_UEFI_VARS] = {0, "%s/vms/%s/uefi-vars.fd"},
		[PATHS_VM_UEFI_VARS_NEW] = {0, "%s/vms/%s/uefi-vars.fd.new"},
		[PATHS_VM_VOLATILE_UEFI_VARS] = {0, "%s/vms/%s/volatile/uefi-vars.fd"},
		[PATHS_USB_HOLDS] = {1, "%s/usb-holds"},
	};
	size_t limit = size;
	if (f == PATHS_DAEMON_SOCKET || f == PATHS_CONTROL || f == PATHS_SERIAL || f == PATHS_DISPLAY ||
	    f == PATHS_SEAT_CONTROL)
		limit = sizeof(((struct sockaddr_un *)0)->sun_path);
	if (limit > size)
		limit = size;
	int n = snprintf(buf, size, t[f].fmt, t[f].runtime ? p->runtime : p->state, name ? name : "");
	if (n < 0 || (size_t)n >= limit)
		return err_set(e,
			       "path '%.60s...' is too long for a socket or buffer; use a shorter "
			       "--runtime-dir or --state-dir",
			       buf);
	return 0;
}
