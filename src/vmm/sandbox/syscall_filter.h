/* syscall_filter: the monitor's system-call allow-list (libseccomp). Installed once, before any guest
 * code runs, for every thread of the process; any other system call kills the whole process
 * with SIGSYS. It covers a whole run including the rebuild of the VM on a guest reboot. */
#ifndef SHOJI_VMM_SANDBOX_SYSCALL_FILTER_H
#define SHOJI_VMM_SANDBOX_SYSCALL_FILTER_H

#include "../../common/err.h"

int syscall_filter_install(struct err *e);
/* How many system calls the installed list allows (for --stats and the docs). */
unsigned syscall_filter_count(void);

#endif
