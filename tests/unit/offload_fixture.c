/* offload_fixture: see offload_fixture.h. */
#include "offload_fixture.h"

#include <string.h>

uint32_t fx_sum(const uint8_t *p, size_t n, uint32_t s)
{
	for (size_t i = 0; i + 1 < n; i += 2)
		s += (uint32_t)(p[i] << 8 | p[i + 1]);
	if (n & 1)
		s += (uint32_t)p[n - 1] << 8;
	while (s >> 16)
		s = (s & 0xffff) + (s >> 16);
	return s;
}

size_t fx_segment(uint8_t *f, bool v6, bool vlan, struct virtio_net_hdr *h)
{
	size_t at = 12;
	memset(f, 0, 200);
	memcpy(f, "\x52\x54\x00\x00\x00\x02\x52\x54\x00\x00\x00\x01", 12);
	if (vlan) {
		memcpy(f + at, "\x81\x00\x00\x05", 4);
		at += 4;
	}
	memcpy(f + at, v6 ? "\x86\xdd" : "\x08\x00", 2);
	size_t l3 = at + 2, l4 = l3 + (v6 ? 40 : 20);
	if (v6) {
		f[l3] = 0x60, f[l3 + 6] = 6, f[l3 + 7] = 64;
		f[l3 + 23] = 1, f[l3 + 39] = 2; /* ::1 to ::2 */
	} else {
		memcpy(f + l3, "\x45\x00\xff\xff\x12\x34\x40\x00\x40\x06\x00\x00\x0a\x09\x01\x01\x0a\x09\x01\x02", 20);
	}
	memcpy(f + l4, "\x1f\x90\xc3\x50\xff\xff\xff\x00\x00\x00\x00\x01\x50\x99\xff\xff", 16);
	for (size_t i = 0; i < FX_PAYLOAD; i++)
		f[l4 + 20 + i] = (uint8_t)(i * 7 + 3);
	*h = (struct virtio_net_hdr){.flags = VIRTIO_NET_HDR_F_NEEDS_CSUM | VIRTIO_NET_HDR_F_DATA_VALID,
				     .gso_type = v6 ? VIRTIO_NET_HDR_GSO_TCPV6 : VIRTIO_NET_HDR_GSO_TCPV4,
				     .hdr_len = 9999,
				     .gso_size = FX_MSS,
				     .csum_start = (uint16_t)l4,
				     .csum_offset = 16};
	return l4 + 20 + FX_PAYLOAD;
}
