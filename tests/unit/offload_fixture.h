/* offload_fixture: a TCP segment larger than the MTU, as a Linux guest hands it to its NIC
 * with a virtio-net header asking the other side to cut it, and the ones' complement sum a
 * receiver checks (RFC 1071), for the offload tests (test_offload, test_virtio_net). */
#ifndef SHOJI_TESTS_UNIT_OFFLOAD_FIXTURE_H
#define SHOJI_TESTS_UNIT_OFFLOAD_FIXTURE_H

#include <linux/virtio_net.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define FX_MSS     1000
#define FX_PAYLOAD 4500 /* five segments, the last one short */

/* The sum of n bytes at p (big-endian words) added to s, folded. */
uint32_t fx_sum(const uint8_t *p, size_t n, uint32_t s);
/* A TCP segment of FX_PAYLOAD bytes, flags CWR|ACK|PSH|FIN, over IPv4 or IPv6, after a VLAN
 * tag when vlan, into f (room for 8 KiB); its length, and header h as a Linux guest fills it
 * (gso_size FX_MSS, hdr_len wrong, DATA_VALID set). */
size_t fx_segment(uint8_t *f, bool v6, bool vlan, struct virtio_net_hdr *h);

#endif
