/* test_offload: a virtio-net header's checksum and segmentation asks, checked and done in
 * software (net/offload.h). A 64 KiB-class TCP segment over IPv4, IPv6 and a VLAN is cut into
 * frames whose checksums verify (summed here independently), whose payloads put together are
 * the original, with sequence numbers, IPv4 ids and flags as a NIC's TSO makes them; a checksum
 * left partial is completed; every header that does not match its frame, or asks what the
 * device does not offer, is refused. */
#include "unit.h"

#include "offload_fixture.h"
#include "vmm/net/offload.h"

#define MSS     FX_MSS
#define PAYLOAD FX_PAYLOAD

static void cut_and_check(bool v6, bool vlan)
{
	static uint8_t f[8192], out[8192], joined[PAYLOAD];
	struct virtio_net_hdr h;
	size_t len = fx_segment(f, v6, vlan, &h);
	size_t l3 = vlan ? 18 : 14, l4 = l3 + (v6 ? 40 : 20), hdrs = l4 + 20;
	assert_int_equal(offload_check(&h, f, len), v6 ? OFFLOAD_TSO6 : OFFLOAD_TSO4);
	assert_int_equal(h.flags, VIRTIO_NET_HDR_F_NEEDS_CSUM); /* DATA_VALID is not the sender's to say */
	assert_int_equal(h.hdr_len, hdrs);
	struct offload_seg s;
	offload_seg_init(&s, &h, f, len);
	size_t n, got = 0;
	unsigned i = 0;
	while ((n = offload_seg_next(&s, out))) {
		size_t pay = n - hdrs, tcp_len = n - l4;
		assert_true(pay == MSS || (pay == PAYLOAD % MSS && got + pay == PAYLOAD));
		memcpy(joined + got, out + hdrs, pay);
		uint32_t pseudo;
		if (v6) {
			assert_int_equal(out[l3 + 4] << 8 | out[l3 + 5], tcp_len);
			pseudo = fx_sum(out + l3 + 8, 32, 6 + (uint32_t)tcp_len);
		} else {
			assert_int_equal(out[l3 + 2] << 8 | out[l3 + 3], 20 + tcp_len);
			assert_int_equal(out[l3 + 4] << 8 | out[l3 + 5], 0x1234 + i);
			assert_int_equal(fx_sum(out + l3, 20, 0), 0xffff);
			pseudo = fx_sum(out + l3 + 12, 8, 6 + (uint32_t)tcp_len);
		}
		assert_int_equal(fx_sum(out + l4, tcp_len, pseudo), 0xffff);
		uint32_t seq =
			(uint32_t)out[l4 + 4] << 24 | (uint32_t)out[l4 + 5] << 16 | out[l4 + 6] << 8 | out[l4 + 7];
		assert_int_equal(seq, 0xffffff00u + (uint32_t)got); /* wrapping past 2^32 */
		bool last = got + pay == PAYLOAD;
		assert_int_equal(out[l4 + 13], 0x10 | (last ? 0x09 : 0) | (i == 0 ? 0x80 : 0));
		assert_memory_equal(out, f, l3); /* Ethernet (and VLAN) as they were */
		got += pay;
		i++;
	}
	assert_int_equal(i, (PAYLOAD + MSS - 1) / MSS);
	assert_int_equal(got, PAYLOAD);
	assert_memory_equal(joined, f + hdrs, PAYLOAD);
}

static void tcp4_segment_is_cut(void **state)
{
	(void)state;
	cut_and_check(false, false);
}

static void tcp6_segment_is_cut(void **state)
{
	(void)state;
	cut_and_check(true, false);
}

static void segment_after_a_vlan_tag_is_cut(void **state)
{
	(void)state;
	cut_and_check(false, true);
}

static void partial_checksum_is_completed(void **state)
{
	(void)state;
	static uint8_t f[8192];
	struct virtio_net_hdr h;
	fx_segment(f, false, false, &h);
	size_t len = 14 + 20 + 20 + 77; /* an ordinary frame: 77 bytes of payload */
	f[14 + 2] = 0, f[14 + 3] = (uint8_t)(len - 14);
	uint32_t pseudo = fx_sum(f + 14 + 12, 8, 6 + 20 + 77);
	f[34 + 16] = (uint8_t)(pseudo >> 8), f[34 + 17] = (uint8_t)pseudo; /* as the sender's stack leaves it */
	h.gso_type = VIRTIO_NET_HDR_GSO_NONE;
	h.gso_size = 0;
	assert_int_equal(offload_check(&h, f, len), OFFLOAD_CSUM);
	assert_int_equal(h.hdr_len, 0);
	offload_csum(&h, f, len);
	assert_int_equal(fx_sum(f + 34, 20 + 77, fx_sum(f + 14 + 12, 8, 6 + 20 + 77)), 0xffff);
}

/* Each header that does not match its frame, or asks for what the NIC does not offer. */
static void mismatched_headers_are_refused(void **state)
{
	(void)state;
	uint8_t f[8192];
	struct virtio_net_hdr h, good;
	size_t len = fx_segment(f, false, false, &good);
	h = good, h.flags = 0;
	assert_int_equal(offload_check(&h, f, len), -1); /* a segment with no checksum to complete */
	h = good, h.gso_type = VIRTIO_NET_HDR_GSO_UDP;
	assert_int_equal(offload_check(&h, f, len), -1);
	h = good, h.gso_type = 5; /* UDP_L4 */
	assert_int_equal(offload_check(&h, f, len), -1);
	h = good, h.gso_type = VIRTIO_NET_HDR_GSO_TCPV6; /* the frame is IPv4 */
	assert_int_equal(offload_check(&h, f, len), -1);
	h = good, h.csum_start = 14;
	assert_int_equal(offload_check(&h, f, len), -1);
	h = good, h.csum_offset = 6;
	assert_int_equal(offload_check(&h, f, len), -1);
	h = good, h.gso_size = 1;
	assert_int_equal(offload_check(&h, f, len), -1);
	h = good, h.gso_type = VIRTIO_NET_HDR_GSO_ECN;
	assert_int_equal(offload_check(&h, f, len), -1); /* ECN without a segment */
	h = good, h.gso_type = VIRTIO_NET_HDR_GSO_NONE, h.csum_start = (uint16_t)(len - 1);
	assert_int_equal(offload_check(&h, f, len), -1); /* the checksum's field past the end */
	h = good, h.gso_type = VIRTIO_NET_HDR_GSO_NONE, h.csum_offset = 7;
	assert_int_equal(offload_check(&h, f, len), -1);
	h = good, h.gso_size = 0xffff; /* Linux's GSO_BY_FRAGS */
	assert_int_equal(offload_check(&h, f, len), -1);
	h = good;
	assert_int_equal(offload_check(&h, f, 14 + 20 + 20 + MSS), OFFLOAD_CSUM); /* one piece: not a segment */
	assert_int_equal(h.gso_type | h.gso_size | h.hdr_len, 0);
	h = good;
	assert_int_equal(offload_check(&h, f, 14 + 20 + 20), OFFLOAD_CSUM); /* headers only: nothing to cut */
	h = good;
	assert_int_equal(offload_check(&h, f, 14 + 20 + 10), -1); /* a TCP header cut short */
	assert_int_equal(offload_check(&h, f, 13), -1);
	f[14 + 9] = 17; /* UDP, not TCP */
	assert_int_equal(offload_check(&h, f, len), -1);
	f[14 + 9] = 6, f[14 + 6] = 0x20; /* a fragment (more fragments) */
	h = good;
	assert_int_equal(offload_check(&h, f, len), -1);
	f[14 + 6] = 0x40, f[14] = 0x44; /* an IPv4 header of 16 bytes */
	h = good;
	assert_int_equal(offload_check(&h, f, len), -1);
	f[14] = 0x45, f[34 + 12] = 0x40; /* a TCP header of 16 bytes */
	h = good;
	assert_int_equal(offload_check(&h, f, len), -1);
	f[34 + 12] = 0x50;
	h = good;
	assert_int_equal(offload_check(&h, f, len), OFFLOAD_TSO4);
	static uint8_t big[65550];
	memcpy(big, f, len);
	h = good; /* an IPv4 segment longer than its total length field can say */
	assert_int_equal(offload_check(&h, big, 14 + 65536), -1);
	h = good;
	assert_int_equal(offload_check(&h, big, 14 + 65535), OFFLOAD_TSO4);
}

/* Nothing to cut where the frame is not a TCP segment or no size is given. */
static void no_cut_without_a_segment(void **state)
{
	(void)state;
	uint8_t f[8192], out[8192];
	struct virtio_net_hdr h;
	size_t len = fx_segment(f, false, false, &h);
	struct offload_seg s;
	f[14 + 9] = 17;
	assert_false(offload_seg_init(&s, &h, f, len));
	assert_int_equal(offload_seg_next(&s, out), 0);
	f[14 + 9] = 6, h.gso_size = 0;
	assert_false(offload_seg_init(&s, &h, f, len));
	assert_int_equal(offload_seg_next(&s, out), 0);
}

static void guest_features_decide(void **state)
{
	(void)state;
	struct virtio_net_hdr h = {.gso_type = VIRTIO_NET_HDR_GSO_TCPV4 | VIRTIO_NET_HDR_GSO_ECN};
	uint64_t csum = 1ull << VIRTIO_NET_F_GUEST_CSUM, tso4 = 1ull << VIRTIO_NET_F_GUEST_TSO4,
		 ecn = 1ull << VIRTIO_NET_F_GUEST_ECN;
	assert_true(offload_guest_takes(OFFLOAD_NONE, &h, 0));
	assert_false(offload_guest_takes(OFFLOAD_CSUM, &h, 0));
	assert_true(offload_guest_takes(OFFLOAD_CSUM, &h, csum));
	assert_false(offload_guest_takes(OFFLOAD_TSO4, &h, csum | tso4)); /* ECN asked */
	assert_true(offload_guest_takes(OFFLOAD_TSO4, &h, csum | tso4 | ecn));
	assert_false(offload_guest_takes(OFFLOAD_TSO6, &h, csum | tso4 | ecn));
	h.gso_type = VIRTIO_NET_HDR_GSO_TCPV4;
	assert_true(offload_guest_takes(OFFLOAD_TSO4, &h, csum | tso4));
	assert_false(offload_guest_takes(OFFLOAD_TSO4, &h, tso4));
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(tcp4_segment_is_cut),
		cmocka_unit_test(tcp6_segment_is_cut),
		cmocka_unit_test(segment_after_a_vlan_tag_is_cut),
		cmocka_unit_test(partial_checksum_is_completed),
		cmocka_unit_test(mismatched_headers_are_refused),
		cmocka_unit_test(guest_features_decide),
		cmocka_unit_test(no_cut_without_a_segment),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
