/* usbip_attach: the guest's half of a USB device given over vsock (USB/IP). It connects to the
 * host (CID 2) on PORT and hands the connected socket to the kernel's vhci-hcd with the device's
 * id and speed on root-hub port RHPORT; from then on the kernel speaks USB/IP on it and the
 * device appears as if plugged in. Used by the harness's USB test (guest/init's usbip action).
 *
 *   usbip_attach PORT DEVID SPEED RHPORT
 *     DEVID: the host's busnum << 16 | devnum; SPEED: 1 low, 2 full, 3 high (vhci's numbers) */
#include <fcntl.h>
#include <linux/vm_sockets.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

int main(int argc, char **argv)
{
	if (argc != 5) {
		fprintf(stderr, "usage: usbip_attach PORT DEVID SPEED RHPORT\n");
		return 2;
	}
	int s = socket(AF_VSOCK, SOCK_STREAM, 0);
	struct sockaddr_vm a = {.svm_family = AF_VSOCK,
				.svm_cid = VMADDR_CID_HOST,
				.svm_port = (unsigned)atoi(argv[1])};
	if (s < 0 || connect(s, (struct sockaddr *)&a, sizeof(a)) < 0) {
		perror("usbip_attach: cannot reach the host over vsock");
		return 1;
	}
	char line[64];
	snprintf(line, sizeof(line), "%s %d %s %s", argv[4], s, argv[2], argv[3]);
	int fd = open("/sys/devices/platform/vhci_hcd.0/attach", O_WRONLY | O_CLOEXEC);
	if (fd < 0 || write(fd, line, strlen(line)) < 0) {
		perror("usbip_attach: vhci-hcd refused the device");
		return 1;
	}
	printf("usbip_attach: attached (%s)\n", line);
	return 0;
}
