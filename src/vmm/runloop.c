/* runloop: event loop of the main thread (see runloop.h). */
#include "runloop.h"

#include <errno.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <string.h>
#include <sys/signalfd.h>
#include <unistd.h>

#include "../common/log.h"

static void on_signal(struct vm *vm, int signal_fd)
{
	struct signalfd_siginfo si;
	if (read(signal_fd, &si, sizeof(si)) != (ssize_t)sizeof(si))
		return;
	char why[64];
	snprintf(why, sizeof(why), "stopped by signal %s", strsignal((int)si.ssi_signo));
	vm->machine.request_exit(&vm->machine, MACHINE_STOPPED, why);
}

static void on_input(struct vm *vm, struct console *con)
{
	uint8_t in[1024], out[1024];
	size_t space = serial_rx_space(&vm->serial);
	if (space > sizeof(in))
		space = sizeof(in);
	ssize_t n = read(con->in_fd, in, space);
	if (n < 0 && (errno == EINTR || errno == EAGAIN))
		return;
	if (n <= 0) {
		con->eof = true; /* the guest keeps running without input */
		return;
	}
	bool quit;
	size_t m = console_filter(con, in, (size_t)n, out, &quit);
	serial_receive(&vm->serial, out, m);
	if (quit)
		vm->machine.request_exit(&vm->machine, MACHINE_STOPPED, "stopped from the console (Ctrl-A x)");
}

enum machine_exit runloop_run(struct vm *vm, struct console *con, int signal_fd)
{
	while (!vm_stopping(vm)) {
		struct pollfd fds[3];
		nfds_t n = 0;
		fds[n++] = (struct pollfd){.fd = vm->stop_fd, .events = POLLIN};
		if (signal_fd >= 0)
			fds[n++] = (struct pollfd){.fd = signal_fd, .events = POLLIN};
		int timeout = -1;
		nfds_t input = n;
		if (con->in_fd >= 0 && !con->eof) {
			if (serial_rx_space(&vm->serial) > 0)
				fds[n++] = (struct pollfd){.fd = con->in_fd, .events = POLLIN};
			else
				timeout = 10; /* the guest has not drained its input yet */
		}
		int r = poll(fds, n, timeout);
		if (r < 0 && errno != EINTR) {
			log_error("poll failed: %s", strerror(errno));
			vm->machine.request_exit(&vm->machine, MACHINE_INTERNAL_ERROR, "monitor event loop failed");
			break;
		}
		if (r <= 0)
			continue;
		if (signal_fd >= 0 && (fds[1].revents & POLLIN))
			on_signal(vm, signal_fd);
		if (input < n && (fds[input].revents & (POLLIN | POLLHUP | POLLERR)))
			on_input(vm, con);
	}
	vm_stop(vm);
	return (enum machine_exit)__atomic_load_n(&vm->exit_reason, __ATOMIC_ACQUIRE);
}
