/* runloop: the monitor's main thread while a VM runs: waits for an exit request, host signals,
 * console input from the terminal or the serial socket (forwarded to the UART), serial socket
 * connections and control socket requests, then stops the vCPUs. */
#ifndef SHOJI_VMM_RUNLOOP_H
#define SHOJI_VMM_RUNLOOP_H

#include "console.h"
#include "control_server.h"
#include "machine.h"
#include "vm.h"

/* signal_fd: a signalfd for the signals that stop the VM, or -1. ctl: the control socket
 * (possibly without a socket). */
enum machine_exit runloop_run(struct vm *vm, struct console *con, int signal_fd, struct control_server *ctl);

#endif
