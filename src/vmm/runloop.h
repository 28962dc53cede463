/* runloop: the monitor's main thread while a VM runs: waits for an exit request, host signals
 * and console input (forwarded to the UART), then stops the vCPUs. */
#ifndef SHOJI_VMM_RUNLOOP_H
#define SHOJI_VMM_RUNLOOP_H

#include "console.h"
#include "machine.h"
#include "vm.h"

/* signal_fd: a signalfd for the signals that stop the VM, or -1. */
enum machine_exit runloop_run(struct vm *vm, struct console *con, int signal_fd);

#endif
