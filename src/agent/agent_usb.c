/* agent_usb: the guest's half of a USB device given by the host (common/usbip_handoff.h). The
 * agent listens on USBIP_VSOCK_PORT; a connection from the host's privileged ports brings one
 * request, which is answered with one byte, and the connection is then given to the guest
 * kernel's vhci-hcd on a free port of the device's speed. From then on the kernels speak USB/IP
 * on it: the device appears as if plugged in, and goes when the host closes the connection.
 * A connection from anywhere else, or a request that does not come whole in time, is closed
 * without a word. Single-threaded, in the agent's loop; each connection is served at once and
 * holds the agent at most USBIP_ANSWER_MS. */
#include <errno.h>
#include <fcntl.h>
#include <linux/vm_sockets.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h> /* time(): the refusals' rate */
#include <unistd.h>

#include "../common/usbip_handoff.h"
#include "agent.h"

#define VHCI_DIR "/sys/devices/platform/vhci_hcd.0"

int agent_usb_listen(void)
{
	int ls = socket(AF_VSOCK, SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
	struct sockaddr_vm a = {.svm_family = AF_VSOCK, .svm_cid = VMADDR_CID_ANY, .svm_port = USBIP_VSOCK_PORT};
	if (ls < 0 || bind(ls, (struct sockaddr *)&a, sizeof(a)) < 0 || listen(ls, 16) < 0) {
		fprintf(stderr, "shoji-agent: cannot listen on vsock port %u for USB devices: %s\n", USBIP_VSOCK_PORT,
			strerror(errno));
		if (ls >= 0)
			close(ls);
		return -1;
	}
	return ls;
}

/* Reads exactly n bytes within USBIP_ANSWER_MS: 0, or -1. */
static int read_exact(int fd, uint8_t *p, size_t n)
{
	long deadline = agent_now_ms() + USBIP_ANSWER_MS;
	while (n) {
		long left = deadline - agent_now_ms();
		struct pollfd pf = {.fd = fd, .events = POLLIN};
		int r = left > 0 ? poll(&pf, 1, (int)left) : 0;
		if (r < 0 && errno == EINTR)
			continue;
		if (r <= 0)
			return -1;
		ssize_t got = recv(fd, p, n, MSG_DONTWAIT);
		if (got < 0 && (errno == EINTR || errno == EAGAIN))
			continue;
		if (got <= 0)
			return -1;
		p += got;
		n -= (size_t)got;
	}
	return 0;
}

/* A free vhci-hcd port for the speed (super speed ports for 5 and 6, high speed ones else),
 * from its status lines "hs  0000 004 ...": hub, port, state (4: free). -1: none; *no_vhci
 * when vhci-hcd is not there. */
static int free_port(uint8_t speed, bool *no_vhci)
{
	FILE *f = fopen(VHCI_DIR "/status", "re");
	*no_vhci = f == NULL;
	if (!f)
		return -1;
	char line[256], hub[8];
	unsigned port, state;
	int found = -1;
	const char *want = speed >= 5 ? "ss" : "hs";
	while (found < 0 && fgets(line, sizeof(line), f))
		if (sscanf(line, "%7s %u %u", hub, &port, &state) == 3 && strcmp(hub, want) == 0 && state == 4 &&
		    port < 65536)
			found = (int)port;
	fclose(f);
	return found;
}

static int vhci_attach(int port, int sock, uint32_t devid, uint8_t speed)
{
	char text[64];
	int n = snprintf(text, sizeof(text), "%d %d %u %u", port, sock, devid, speed);
	int fd = open(VHCI_DIR "/attach", O_WRONLY | O_CLOEXEC);
	int r = fd >= 0 && write(fd, text, (size_t)n) == n ? 0 : -1;
	if (r < 0)
		fprintf(stderr, "shoji-agent: vhci-hcd refused the USB device %u on port %d: %s\n", devid, port,
			strerror(errno));
	if (fd >= 0)
		close(fd);
	return r;
}

void agent_usb_serve(int ls)
{
	struct sockaddr_vm peer;
	socklen_t len = sizeof(peer);
	int fd = accept4(ls, (struct sockaddr *)&peer, &len, SOCK_CLOEXEC);
	if (fd < 0)
		return;
	if (peer.svm_family != AF_VSOCK || peer.svm_cid != VMADDR_CID_HOST || peer.svm_port > USBIP_HOST_PORT_MAX) {
		static time_t said; /* a flood of them says so once a second at most */
		time_t now = time(NULL);
		if (now != said)
			fprintf(stderr,
				"shoji-agent: refused a USB connection from CID %u port %u (only the host's "
				"toolstack, on a privileged port, may give USB devices)\n",
				peer.svm_cid, peer.svm_port);
		said = now;
		close(fd);
		return;
	}
	uint8_t req[USBIP_REQ_SIZE], answer = USBIP_TAKING, speed = 0;
	uint32_t devid = 0;
	bool no_vhci = false;
	int port = -1;
	if (read_exact(fd, req, sizeof(req)) < 0) {
		close(fd);
		return;
	}
	if (!usbip_req_decode(req, &devid, &speed))
		answer = USBIP_BAD_REQUEST;
	else if ((port = free_port(speed, &no_vhci)) < 0)
		answer = no_vhci ? USBIP_NO_VHCI : USBIP_NO_PORT;
	if (send(fd, &answer, 1, MSG_NOSIGNAL | MSG_DONTWAIT) == 1 && answer == USBIP_TAKING &&
	    vhci_attach(port, fd, devid, speed) == 0)
		fprintf(stderr, "shoji-agent: USB device %u attached on virtual port %d\n", devid, port);
	else if (answer != USBIP_TAKING)
		fprintf(stderr, "shoji-agent: a USB device was not taken: %s\n", usbip_answer_text(answer));
	close(fd); /* vhci-hcd holds the connection it took */
}
