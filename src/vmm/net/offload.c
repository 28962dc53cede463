/* net/offload: a frame's checksum and TCP segmentation done in software (see offload.h). */
#include "offload.h"

#include <endian.h>
#include <string.h>

#include <linux/if_ether.h> /* ETH_HLEN, ETH_P_IP, ETH_P_IPV6, ETH_P_8021Q */

#define IPPROTO_TCP_   6
#define TCP_CSUM_OFF   16
#define TCP_FIN        0x01
#define TCP_PSH        0x08
#define TCP_CWR        0x80
#define TCP_MIN_MSS    48     /* the least a sender's stack cuts to (Linux's TCP_MIN_SND_MSS) */
#define IP_MAX_LEN     0xffff /* an IPv4 total or IPv6 payload length; gso_size's GSO_BY_FRAGS */
#define GSO_KIND(type) ((type) & ~VIRTIO_NET_HDR_GSO_ECN)

static uint16_t get16(const uint8_t *p)
{
	return (uint16_t)(p[0] << 8 | p[1]);
}

static void put16(uint8_t *p, uint32_t v)
{
	p[0] = (uint8_t)(v >> 8);
	p[1] = (uint8_t)v;
}

/* The ones' complement sum of n bytes (big-endian words, an odd last byte padded), added to acc. */
static uint32_t sum16(const uint8_t *p, size_t n, uint32_t acc)
{
	uint64_t s = acc;
	for (; n >= 2; p += 2, n -= 2)
		s += get16(p);
	if (n)
		s += (uint32_t)p[0] << 8;
	while (s >> 16)
		s = (s & 0xffff) + (s >> 16);
	return (uint32_t)s;
}

/* The checksum field's value for sum s: its complement, never 0 (0 means "none" to UDP). */
static uint16_t csum_of(uint32_t s)
{
	uint16_t c = (uint16_t)~s;
	return c ? c : 0xffff;
}

/* Where frame's IP and TCP headers and its payload begin, for a TCP segment over IPv4 (v6
 * false) or IPv6 with no extension header; false where the frame is not one. */
static bool tcp_frame(const uint8_t *f, size_t len, bool v6, size_t *l3, size_t *l4, size_t *payload)
{
	if (len < ETH_HLEN)
		return false;
	size_t at = ETH_HLEN;
	uint16_t type = get16(f + 12);
	if (type == ETH_P_8021Q) {
		if (len < ETH_HLEN + 4)
			return false;
		type = get16(f + 16);
		at += 4;
	}
	*l3 = at;
	if (!v6) {
		size_t ihl = at < len ? (size_t)(f[at] & 0xf) * 4 : 0;
		if (type != ETH_P_IP || ihl < 20 || at + ihl > len || f[at] >> 4 != 4 || f[at + 9] != IPPROTO_TCP_ ||
		    (get16(f + at + 6) & 0x3fff)) /* a fragment: more fragments, or an offset */
			return false;
		at += ihl;
	} else {
		if (type != ETH_P_IPV6 || at + 40 > len || f[at] >> 4 != 6 || f[at + 6] != IPPROTO_TCP_)
			return false;
		at += 40;
	}
	*l4 = at;
	size_t doff = at + 13 <= len ? (size_t)(f[at + 12] >> 4) * 4 : 0;
	if (doff < 20 || at + doff > len)
		return false;
	*payload = at + doff;
	return true;
}

int offload_check(struct virtio_net_hdr *h, const uint8_t *frame, size_t len)
{
	uint8_t kind = GSO_KIND(h->gso_type);
	bool csum = h->flags & VIRTIO_NET_HDR_F_NEEDS_CSUM;
	uint16_t start = le16toh(h->csum_start), off = le16toh(h->csum_offset);
	h->flags = csum ? VIRTIO_NET_HDR_F_NEEDS_CSUM : 0; /* DATA_VALID is not another VM's to say */
	if (csum && ((size_t)start + off + 2 > len || off & 1))
		return -1;
	if (kind == VIRTIO_NET_HDR_GSO_NONE) {
		if (h->gso_type) /* ECN without a segment */
			return -1;
		h->hdr_len = h->gso_size = 0;
		return csum ? OFFLOAD_CSUM : OFFLOAD_NONE;
	}
	size_t l3, l4, payload, mss = le16toh(h->gso_size);
	bool v6 = kind == VIRTIO_NET_HDR_GSO_TCPV6;
	if ((kind != VIRTIO_NET_HDR_GSO_TCPV4 && !v6) || !csum || !tcp_frame(frame, len, v6, &l3, &l4, &payload) ||
	    start != l4 || off != TCP_CSUM_OFF || mss < TCP_MIN_MSS || mss >= IP_MAX_LEN ||
	    len - (v6 ? l4 : l3) > IP_MAX_LEN) /* its IP length field could not say it */
		return -1;
	if (len - payload <= mss) { /* not a segment to cut: a frame with a checksum to complete */
		h->gso_type = h->gso_size = h->hdr_len = 0;
		return OFFLOAD_CSUM;
	}
	h->hdr_len = htole16((uint16_t)payload);
	return v6 ? OFFLOAD_TSO6 : OFFLOAD_TSO4;
}

bool offload_guest_takes(enum offload_need need, const struct virtio_net_hdr *h, uint64_t features)
{
#define HAS(f) ((features >> (f)) & 1)
	switch (need) {
	case OFFLOAD_NONE: return true;
	case OFFLOAD_CSUM: return HAS(VIRTIO_NET_F_GUEST_CSUM);
	case OFFLOAD_TSO4:
	case OFFLOAD_TSO6:
		return HAS(VIRTIO_NET_F_GUEST_CSUM) &&
			HAS(need == OFFLOAD_TSO4 ? VIRTIO_NET_F_GUEST_TSO4 : VIRTIO_NET_F_GUEST_TSO6) &&
			(!(h->gso_type & VIRTIO_NET_HDR_GSO_ECN) || HAS(VIRTIO_NET_F_GUEST_ECN));
	}
	return false;
#undef HAS
}

void offload_csum(const struct virtio_net_hdr *h, uint8_t *frame, size_t len)
{
	size_t start = le16toh(h->csum_start), at = start + le16toh(h->csum_offset);
	/* The field holds the pseudo-header's sum, as the sender's stack left it. */
	put16(frame + at, csum_of(sum16(frame + start, len - start, 0)));
}

bool offload_seg_init(struct offload_seg *s, const struct virtio_net_hdr *h, const uint8_t *frame, size_t len)
{
	memset(s, 0, sizeof(*s));
	s->frame = frame;
	s->len = len;
	s->v6 = GSO_KIND(h->gso_type) == VIRTIO_NET_HDR_GSO_TCPV6;
	s->mss = le16toh(h->gso_size);
	if (s->mss && tcp_frame(frame, len, s->v6, &s->l3, &s->l4, &s->payload))
		return true;
	s->off = s->len = s->payload = 0; /* nothing to cut: offload_seg_next gives none */
	return false;
}

/* Segment out's IP header (its length, and IPv4's id and checksum) for tcp_len bytes of TCP. */
static void seg_ip(const struct offload_seg *s, uint8_t *out, size_t tcp_len)
{
	uint8_t *ip = out + s->l3;
	size_t ihl = s->l4 - s->l3;
	if (s->v6) {
		put16(ip + 4, (uint32_t)tcp_len);
		return;
	}
	put16(ip + 2, (uint32_t)(ihl + tcp_len));
	put16(ip + 4, get16(ip + 4) + s->i);
	put16(ip + 10, 0);
	put16(ip + 10, (uint16_t)~sum16(ip, ihl, 0));
}

/* The TCP checksum of segment out: the pseudo-header, then the TCP header and payload. */
static uint16_t seg_tcp_csum(const struct offload_seg *s, const uint8_t *out, size_t tcp_len)
{
	const uint8_t *ip = out + s->l3;
	uint8_t tail[4] = {0, IPPROTO_TCP_};
	uint32_t acc = s->v6 ? sum16(ip + 8, 32, 0) : sum16(ip + 12, 8, 0);
	acc = sum16(tail, 2, acc);
	acc += (uint32_t)tcp_len; /* (IPv6's is 32 bits, but a segment is under 64 KiB) */
	return csum_of(sum16(out + s->l4, tcp_len, acc));
}

size_t offload_seg_next(struct offload_seg *s, uint8_t *out)
{
	size_t total = s->len - s->payload;
	if (s->off >= total)
		return 0;
	size_t n = total - s->off < s->mss ? total - s->off : s->mss;
	size_t tcp_len = s->payload - s->l4 + n;
	memcpy(out, s->frame, s->payload);
	memcpy(out + s->payload, s->frame + s->payload + s->off, n);
	seg_ip(s, out, tcp_len);
	uint8_t *tcp = out + s->l4;
	uint32_t seq = (uint32_t)tcp[4] << 24 | (uint32_t)tcp[5] << 16 | (uint32_t)tcp[6] << 8 | tcp[7];
	seq += (uint32_t)s->off;
	tcp[4] = (uint8_t)(seq >> 24), tcp[5] = (uint8_t)(seq >> 16), tcp[6] = (uint8_t)(seq >> 8),
	tcp[7] = (uint8_t)seq;
	if (s->off + n < total)
		tcp[13] &= (uint8_t) ~(TCP_FIN | TCP_PSH); /* the last segment's */
	if (s->i)
		tcp[13] &= (uint8_t)~TCP_CWR; /* the first's */
	put16(tcp + TCP_CSUM_OFF, 0);
	put16(tcp + TCP_CSUM_OFF, seg_tcp_csum(s, out, tcp_len));
	s->off += n;
	s->i++;
	return s->payload + n;
}
