/* usernet: the user-mode network a guest NIC sees behind a NAT (shoji-slirp's, or passt's with
 * the same addresses): the guest is 10.0.2.15/24, the host (and its loopback, when asked for)
 * 10.0.2.2, DNS 10.0.2.3, as QEMU's user networking has them. One source for the monitor's
 * --net parser and shoji-slirp. */
#ifndef SHOJI_COMMON_USERNET_H
#define SHOJI_COMMON_USERNET_H

#include "limits.h"

#define USERNET_NETWORK "10.0.2.0"
#define USERNET_NETMASK "255.255.255.0"
#define USERNET_PREFIX  "24" /* the netmask's length */
#define USERNET_HOST    "10.0.2.2"
#define USERNET_DNS     "10.0.2.3"
#define USERNET_GUEST   "10.0.2.15"
/* The default MTU: the NAT ends the guest's TCP connections on the host, so no real link limits
 * it, and 64 KiB frames cut the per-packet work and exits (passt does the same). */
#define USERNET_MTU          65520
#define USERNET_MAX_FORWARDS SHOJI_MAX_FWDS

#endif
