/* agent_cmd: the agent's helper commands (clipboard, resize, power), run with a bounded input,
 * a bounded output and a deadline, so that a desktop tool that hangs or floods never stalls
 * the agent (see agent.h). */
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "agent.h"

extern char **environ;

long agent_now_ms(void)
{
	struct timespec t;
	clock_gettime(CLOCK_MONOTONIC, &t);
	return t.tv_sec * 1000L + t.tv_nsec / 1000000L;
}

static pid_t spawn(const char *cmd, int in_fd, int out_fd, char *const envp_extra[])
{
	pid_t pid = fork();
	if (pid != 0)
		return pid;
	setpgid(0, 0); /* its own group: a deadline kills the command's children too */
	signal(SIGPIPE, SIG_DFL);
	int null = open("/dev/null", O_RDWR | O_CLOEXEC);
	if (null < 0 || dup2(in_fd >= 0 ? in_fd : null, 0) < 0 || dup2(out_fd >= 0 ? out_fd : null, 1) < 0)
		_exit(127);
	for (size_t i = 0; envp_extra && envp_extra[i]; i++)
		putenv(envp_extra[i]);
	execle("/bin/sh", "sh", "-c", cmd, (char *)NULL, environ);
	_exit(127);
}

struct pump {
	int in, out; /* our ends: -1 once closed */
	const uint8_t *input;
	uint32_t in_len, in_at;
	uint8_t *buf;
	uint32_t got, max;
	int over;
};

/* Moves what poll reported: input to the command, its output into the buffer (or away). */
static void pump_step(struct pump *p, struct pollfd *fds)
{
	if (p->in >= 0 && (fds[0].revents & (POLLOUT | POLLERR | POLLHUP))) {
		ssize_t w = write(p->in, p->input + p->in_at, p->in_len - p->in_at);
		if (w > 0)
			p->in_at += (uint32_t)w;
		if (w <= 0 || p->in_at == p->in_len) {
			close(p->in);
			p->in = -1;
		}
	}
	if (p->out >= 0 && (fds[1].revents & (POLLIN | POLLERR | POLLHUP))) {
		uint8_t scratch[4096];
		uint8_t *dst = p->buf ? p->buf + p->got : scratch;
		size_t room = p->buf ? p->max - p->got : sizeof(scratch);
		ssize_t r = room ? read(p->out, dst, room) : read(p->out, scratch, 1);
		if (r > 0 && !room)
			p->over = 1;
		if (r > 0 && room && p->buf)
			p->got += (uint32_t)r;
		if (r == 0 || (r < 0 && errno != EINTR) || p->over) {
			close(p->out);
			p->out = -1;
		}
	}
}

static int pump_run(struct pump *p, int timeout_ms)
{
	long deadline = agent_now_ms() + timeout_ms;
	while (p->in >= 0 || p->out >= 0) {
		struct pollfd fds[2] = {{.fd = p->in, .events = POLLOUT}, {.fd = p->out, .events = POLLIN}};
		long left = deadline - agent_now_ms();
		if (left <= 0)
			return -1;
		if (poll(fds, 2, (int)left) < 0 && errno != EINTR)
			return -1;
		pump_step(p, fds);
	}
	return p->over ? -1 : 0;
}

static int reap(pid_t pid, int ok, long deadline)
{
	int status = 0;
	while (ok && waitpid(pid, &status, WNOHANG) == 0) {
		if (agent_now_ms() >= deadline) {
			ok = 0;
			break;
		}
		struct timespec ts = {0, 10 * 1000000L};
		nanosleep(&ts, NULL);
	}
	if (!ok) {
		kill(-pid, SIGKILL);
		waitpid(pid, &status, 0);
		return -1;
	}
	return WIFEXITED(status) ? WEXITSTATUS(status) : -1;
}

int agent_run(const char *cmd, const uint8_t *input, uint32_t in_len, uint8_t **out, uint32_t *out_len, uint32_t max,
	      int timeout_ms, char *const envp_extra[])
{
	int inp[2] = {-1, -1}, outp[2] = {-1, -1};
	struct pump p = {.in = -1, .out = -1, .input = input, .in_len = in_len, .max = max};
	/* Output that is not wanted goes to /dev/null, not to a pipe that a background child of
	 * the command (wl-copy serving the selection) would hold open past its end. */
	if ((input && pipe2(inp, O_CLOEXEC) < 0) || (out && pipe2(outp, O_CLOEXEC) < 0) ||
	    (out && !(p.buf = malloc(max ? max : 1)))) {
		for (int i = 0; i < 2; i++) {
			if (inp[i] >= 0)
				close(inp[i]);
			if (outp[i] >= 0)
				close(outp[i]);
		}
		return -1;
	}
	signal(SIGPIPE, SIG_IGN);
	long start = agent_now_ms();
	pid_t pid = spawn(cmd, inp[0], outp[1], envp_extra);
	if (pid > 0)
		setpgid(pid, pid); /* as the child does, whichever runs first */
	if (inp[0] >= 0)
		close(inp[0]);
	if (outp[1] >= 0)
		close(outp[1]);
	p.in = inp[1];
	p.out = outp[0];
	if (p.in >= 0)
		fcntl(p.in, F_SETFL, O_NONBLOCK);
	int ok = pid > 0 && pump_run(&p, timeout_ms) == 0;
	if (p.in >= 0)
		close(p.in);
	if (p.out >= 0)
		close(p.out);
	int status = pid > 0 ? reap(pid, ok, start + timeout_ms) : -1;
	/* to the journal: the host sees only a failed acknowledgement */
	if (status < 0)
		fprintf(stderr, "shoji-agent: '%s' did not finish (not started, killed or over %d ms)\n", cmd,
			timeout_ms);
	else if (status > 0)
		fprintf(stderr, "shoji-agent: '%s' failed (exit status %d)\n", cmd, status);
	if (status < 0 || !out) {
		free(p.buf);
		return status;
	}
	*out = p.buf;
	*out_len = p.got;
	return status;
}
