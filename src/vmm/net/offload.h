/* net/offload: what a virtio-net header asks of a frame (virtio 1.x 5.1.6.2: a checksum left
 * for the other side to complete, NEEDS_CSUM; a TCP segment larger than the MTU left for it to
 * cut, GSO TCPv4/TCPv6), checked and, where the side that receives cannot do it, done here. A
 * link between two VMs carries each frame with its header (net-link's offload), so a guest's
 * 64 KiB TCP segment crosses as one message and reaches a peer guest that takes such segments
 * as one; a guest that does not (firmware's driver, features turned off), or a link whose other
 * monitor sends bare frames, gets ordinary frames cut here. The header comes from another VM:
 * every field is checked against the frame itself, and the frame is parsed here (Ethernet,
 * optionally one VLAN tag, IPv4 or IPv6 without extension headers, TCP), not believed. Written
 * here because no library in Debian segments a frame outside a kernel. Pure functions: any
 * thread. */
#ifndef SHOJI_VMM_NET_OFFLOAD_H
#define SHOJI_VMM_NET_OFFLOAD_H

#include <linux/virtio_net.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/* What the header of a frame asks. */
enum offload_need {
	OFFLOAD_NONE, /* an ordinary frame */
	OFFLOAD_CSUM, /* a checksum to complete (NEEDS_CSUM) */
	OFFLOAD_TSO4, /* a TCP over IPv4 segment to cut at gso_size (and its checksums) */
	OFFLOAD_TSO6, /* the same over IPv6 */
};

/* A frame's TCP segment being cut into frames of at most mss bytes of payload. */
struct offload_seg {
	const uint8_t *frame;
	size_t len;
	size_t l3, l4, payload; /* offsets of the IP header, the TCP header and the payload */
	bool v6;
	unsigned mss;
	size_t off; /* of the payload, cut so far */
	unsigned i; /* segments cut so far */
};

/* Checks header h of frame (len bytes, header not included) and puts it in the form the other
 * side may take: flags other than NEEDS_CSUM cleared, hdr_len set to the frame's own header
 * length for a segment, a "segment" whose payload fits one piece made a checksum to complete.
 * Returns what it asks, or -1 (the frame is to be dropped) where it asks for something else or
 * does not match the frame. Dropped too, though a sender may mean them: segments cut below 48
 * bytes (kernels before Linux 5.2 could) and IPv6 segments with extension headers. */
int offload_check(struct virtio_net_hdr *h, const uint8_t *frame, size_t len);

/* Whether a driver with features (VIRTIO_NET_F_GUEST_*) takes a frame that asks `need` (and
 * h's ECN bit) as it is. */
bool offload_guest_takes(enum offload_need need, const struct virtio_net_hdr *h, uint64_t features);

/* Completes the checksum h asks for (OFFLOAD_CSUM, checked) in frame. */
void offload_csum(const struct virtio_net_hdr *h, uint8_t *frame, size_t len);

/* Starts cutting the segment frame (checked: OFFLOAD_TSO4 or OFFLOAD_TSO6); false, and nothing
 * to cut, where it is not a TCP segment with a segment size. */
bool offload_seg_init(struct offload_seg *s, const struct virtio_net_hdr *h, const uint8_t *frame, size_t len);
/* The next frame into out (room for len bytes, the segment's own length, is always enough), with
 * its IP and TCP checksums; returns its length, 0 when none is left. */
size_t offload_seg_next(struct offload_seg *s, uint8_t *out);

#endif
