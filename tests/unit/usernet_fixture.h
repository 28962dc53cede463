/* usernet_fixture: a NIC of the fake machine (virtio_fixture) behind a user-mode NAT, and the
 * DHCP exchange that shows the NAT serves it: shared by the passt and shoji-slirp tests. */
#ifndef SHOJI_TESTS_USERNET_FIXTURE_H
#define SHOJI_TESTS_USERNET_FIXTURE_H

#include <stdbool.h>

#include "virtio_fixture.h"
#include "vmm/devices/virtio_net.h"

/* The NIC's MAC: 52:54:00:aa:bb:cc. */
extern const uint8_t usernet_mac[6];

/* The NIC n of configuration c on a fresh fake machine v, its queues up. */
void usernet_nic_up(struct vfx *v, struct virtio_net *n, struct net_config *c);
/* n sends a DHCP discover and takes the NAT's answer: true when an offer came, addressed to it. */
bool usernet_dhcp_offered(struct vfx *v, struct virtio_net *n);

#endif
