/* test_passt: a passt NIC against the real passt (Debian's), not a stand-in: passt is started
 * on one end of a stream socket pair (--fd), the NIC is handed the other, and the guest's DHCP
 * discover, sent on the transmit queue, brings passt's offer into the guest's receive buffer,
 * addressed to the NIC's MAC. Exits 77 (skipped) where passt is not installed. */
#include "unit.h"

#include <fcntl.h>
#include <signal.h>
#include <stdlib.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include "usernet_fixture.h"

#define PASST "/usr/bin/passt"

static pid_t start_passt(int fd)
{
	pid_t pid = fork();
	if (pid == 0) {
		char arg[16];
		int null = open("/dev/null", O_RDWR);
		dup2(null, 1);
		dup2(null, 2);
		fcntl(fd, F_SETFD, 0);
		snprintf(arg, sizeof(arg), "%d", fd);
		execl(PASST, "passt", "-f", "-1", "-4", "-q", "--fd", arg, (char *)NULL);
		_exit(127);
	}
	return pid;
}

static void dhcp_through_passt(void **state)
{
	(void)state;
	struct vfx v;
	struct virtio_net n;
	struct net_config c;
	struct err e;
	int sv[2];
	assert_int_equal(net_config_parse(&c, "passt,mac=52:54:00:aa:bb:cc", 0, &e), 0);
	usernet_nic_up(&v, &n, &c);
	assert_int_equal(socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sv), 0);
	pid_t pid = start_passt(sv[1]);
	assert_true(pid > 0);
	close(sv[1]);
	assert_int_equal(virtio_net_link_set(&n, sv[0], false, &e), 0);
	bool offered = usernet_dhcp_offered(&v, &n);
	kill(pid, SIGKILL);
	waitpid(pid, NULL, 0);
	assert_true(offered);
	virtio_net_destroy(&n);
	vfx_destroy(&v);
}

int main(void)
{
	if (access(PASST, X_OK) != 0) {
		printf("SKIP: %s is not installed (apt install passt)\n", PASST);
		return 77;
	}
	const struct CMUnitTest tests[] = {cmocka_unit_test(dhcp_through_passt)};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
