/* test_slirp: a slirp NIC against shoji-slirp, the real program (its path in SHOJI_SLIRP),
 * started as the monitor starts it (net_slirp_spawn): it is confined (seccomp, no_new_privs)
 * before it reads a frame; the guest's DHCP discover brings its offer into the guest's receive
 * buffer; when it ends, the NIC's link goes down; a forward on a port already taken is a
 * start-up error that names the port and the fix. */
#include "unit.h"

#include <netinet/in.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include "usernet_fixture.h"

static const char *helper(void)
{
	const char *h = getenv("SHOJI_SLIRP");
	assert_non_null(h);
	return h;
}

/* /proc/PID/status's line that starts with key, its value. */
static int status_field(pid_t pid, const char *key)
{
	char path[64], line[256];
	snprintf(path, sizeof(path), "/proc/%d/status", (int)pid);
	FILE *f = fopen(path, "r");
	int v = -1;
	while (f && fgets(line, sizeof(line), f))
		if (!strncmp(line, key, strlen(key)))
			v = atoi(line + strlen(key));
	if (f)
		fclose(f);
	return v;
}

static void dhcp_through_shoji_slirp(void **state)
{
	(void)state;
	struct vfx v;
	struct virtio_net n;
	struct net_config c;
	struct err e;
	assert_int_equal(net_config_parse(&c, "slirp,mac=52:54:00:aa:bb:cc", 0, &e), 0);
	assert_int_equal(net_slirp_spawn(&c, helper(), NULL, &e), 0);
	assert_true(c.helper_pid > 0);
	/* confined before it read a frame: seccomp's filter mode, no_new_privs */
	assert_int_equal(status_field(c.helper_pid, "Seccomp:"), 2);
	assert_int_equal(status_field(c.helper_pid, "NoNewPrivs:"), 1);
	usernet_nic_up(&v, &n, &c);
	assert_true(n.link_up);
	assert_true(usernet_dhcp_offered(&v, &n));

	kill(c.helper_pid, SIGKILL); /* the helper ends: the link goes down */
	waitpid(c.helper_pid, NULL, 0);
	bool up = true;
	uint64_t rx, tx;
	for (int i = 0; i < 50 && up; i++) {
		struct pollfd p = {.fd = n.backend.fd, .events = POLLIN};
		if (poll(&p, 1, 100) > 0) {
			pthread_mutex_lock(&n.vdev.lock);
			n.vdev.ops->fd_ready(&n.vdev, 0);
			pthread_mutex_unlock(&n.vdev.lock);
		}
		virtio_net_state(&n, &up, &rx, &tx);
	}
	assert_false(up);
	virtio_net_destroy(&n);
	close(c.helper_fd);
	vfx_destroy(&v);
}

static void slirp_forward_taken(void **state)
{
	(void)state;
	struct net_config c;
	struct err e;
	int s = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
	struct sockaddr_in at = {.sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
	socklen_t len = sizeof(at);
	assert_int_equal(bind(s, (struct sockaddr *)&at, sizeof(at)), 0);
	assert_int_equal(listen(s, 1), 0);
	assert_int_equal(getsockname(s, (struct sockaddr *)&at, &len), 0);
	char spec[96];
	snprintf(spec, sizeof(spec), "slirp,fwd=tcp:%u:22", ntohs(at.sin_port));
	assert_int_equal(net_config_parse(&c, spec, 0, &e), 0);
	assert_int_equal(net_slirp_spawn(&c, helper(), NULL, &e), -1);
	assert_contains(e.msg, "did not start");
	char port[16];
	snprintf(port, sizeof(port), ":%u", ntohs(at.sin_port));
	assert_contains(e.msg, port);
	assert_contains(e.msg, "pick another host port");
	assert_int_equal(c.helper_fd, -1);
	close(s);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(dhcp_through_shoji_slirp),
		cmocka_unit_test(slirp_forward_taken),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
