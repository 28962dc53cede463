/* fuzz_offload: what another VM's monitor sends on a link that carries headers: a virtio-net
 * header (10 bytes) and the frame after it, checked and, where it passes, its checksum
 * completed and its segment cut (net/offload.h). Nothing may read or write outside the frame or
 * the piece; the pieces put together carry exactly the segment's payload, each at most the
 * headers and gso_size long; and cutting a frame no check passed gives nothing or stays in
 * bounds. */
#include <stdlib.h>
#include <string.h>

#include "vmm/net/offload.h"

#define MAX 65550

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct virtio_net_hdr h;
	if (size < sizeof(h) || size - sizeof(h) > MAX)
		return 0;
	memcpy(&h, data, sizeof(h));
	size_t len = size - sizeof(h);
	uint8_t *frame = malloc(len ? len : 1); /* exactly its size: ASan sees any overrun */
	static uint8_t piece[MAX];
	if (!frame)
		abort();
	memcpy(frame, data + sizeof(h), len);
	int need = offload_check(&h, frame, len);
	if (need == OFFLOAD_CSUM) {
		offload_csum(&h, frame, len);
	} else if (need == OFFLOAD_TSO4 || need == OFFLOAD_TSO6) {
		struct offload_seg s;
		offload_seg_init(&s, &h, frame, len);
		size_t n, carried = 0, hdrs = h.hdr_len;
		while ((n = offload_seg_next(&s, piece))) {
			if (n <= hdrs || n > hdrs + h.gso_size || n > len)
				abort();
			carried += n - hdrs;
		}
		if (carried != len - hdrs)
			abort();
	} else if (need != OFFLOAD_NONE && need != -1) {
		abort();
	}
	struct offload_seg s; /* cutting what offload_check did not pass: nothing, or within bounds */
	memcpy(&h, data, sizeof(h));
	bool cut = offload_seg_init(&s, &h, frame, len);
	for (unsigned i = 0; offload_seg_next(&s, piece); i++)
		if (!cut || i > len)
			abort();
	free(frame);
	return 0;
}
