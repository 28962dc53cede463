/* disks: the VM's disk images, opened once after the jail is entered and kept for the
 * monitor's life (across guest reboots): plain images, volatile disks (the image read-only
 * under an unnamed qcow2 overlay that vanishes with the monitor), the backing chains a jail
 * must show, and the live snapshot of a running VM's disk (control command disk-snapshot). */
#ifndef SHOJI_VMM_DISKS_H
#define SHOJI_VMM_DISKS_H

#include "../common/err.h"
#include "sandbox/jail.h"
#include "vm.h"

/* Opens each disk's image (and, for a volatile disk, makes its overlay: O_TMPFILE in its
 * directory, so nothing is left there however the monitor ends). On failure nothing is left
 * open. */
int disks_open(struct vm_disk_config *d, unsigned n, struct err *e);
void disks_close(struct vm_disk_config *d, unsigned n);

/* Shows the disks in the jail: each image and its whole backing chain (read-only but for a
 * writable top image), bound both at its real path and where the chain names it, and each
 * volatile directory (writable). Points the paths at the ones the jail shows. */
int disks_jail(struct jail *j, struct vm_disk_config *d, unsigned n, struct err *e);

/* The disk called `id`: its serial= value, or its index in --disk order; -1 when none. */
int disks_find(const struct vm_disk_config *d, unsigned n, const char *id);

/* The live snapshot: writes a qcow2 overlay into fd (empty, O_RDWR) whose backing file is
 * `backing` (as given) and format the current top's, and opens it over the current top, while
 * the guest runs; then holds the disk's requests (the vCPUs run on), waits for those being served
 * (at most one a worker: those not started wait, and run on the new top), flushes the old top,
 * makes it read-only and the overlay the disk's top. *paused_ms: how long the requests were held. On failure the disk
 * is unchanged and fd closed; on success fd is the disk's. Raw, read-only and volatile disks are refused. Main thread. */
int disk_snapshot(struct vm *vm, const char *id, const char *backing, int fd, double *paused_ms, struct err *e);

#endif
