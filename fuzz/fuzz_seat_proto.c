/* fuzz_seat_proto: a hostile monitor's packets through the seat's checks (seat_proto.c), in
 * order, as the seat reads them: a surface that passes is "mapped" as a heap buffer of exactly
 * the memfd's size, and every damage rectangle that passes clipping is read row by row from it,
 * so that ASan catches any rectangle or surface the checks let through that would read outside
 * the mapping. Input: records of {flags byte, 16-bit length, packet}; flags bit 0 says a
 * descriptor came with the packet, bit 1 that the memfd is sealed, bits 2-7 scale its size. */
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "seat/seat_proto.h"

#define MAX_MAP (8u << 20)

#ifndef FUZZ_SEAT_PROTO_SEED

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static void read_rect(const uint8_t *map, const struct display_surface *s, const uint32_t r[4])
{
	volatile uint8_t sink = 0;
	for (uint32_t y = r[1]; y < r[1] + r[3]; y++) {
		const uint8_t *row = map + s->offset + (uint64_t)y * s->stride + (uint64_t)r[0] * 4;
		sink ^= row[0];
		sink ^= row[(uint64_t)r[2] * 4 - 1];
	}
	(void)sink;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct display_surface cur = {0};
	uint8_t *map = NULL;
	uint32_t dirty[4] = {0};
	while (size >= 3) {
		uint8_t flags = data[0];
		size_t len = (size_t)data[1] | (size_t)data[2] << 8;
		data += 3;
		size -= 3;
		if (len > size)
			len = size;
		struct seat_msg m;
		struct err e;
		if (seat_proto_parse(data, len, flags & 1, &m, &e) == 0) {
			if (m.type == DISPLAY_MSG_SURFACE) {
				uint64_t file = (uint64_t)(flags >> 2) * (MAX_MAP / 63);
				int seals = flags & 2 ? F_SEAL_SHRINK : 0;
				if (seat_proto_check_memfd(&m.u.surface, file, seals, &e) == 0) {
					free(map);
					map = malloc(m.u.surface.size ? m.u.surface.size : 1);
					if (!map)
						abort();
					memset(map, 0, m.u.surface.size);
					cur = m.u.surface;
					memset(dirty, 0, sizeof(dirty));
				}
			} else if (m.type == DISPLAY_MSG_DAMAGE && map) {
				uint32_t r[4];
				if (seat_proto_clip(&m.u.damage, cur.width, cur.height, r)) {
					read_rect(map, &cur, r);
					seat_rect_union(dirty, r);
					read_rect(map, &cur, dirty);
				}
			} else if (m.type == DISPLAY_MSG_CURSOR && m.cursor_pixels) {
				volatile uint8_t last =
					m.cursor_pixels[DISPLAY_CURSOR_SIZE * DISPLAY_CURSOR_SIZE * 4 - 1];
				(void)last;
			}
		}
		data += len;
		size -= len;
	}
	free(map);
	return 0;
}

#else /* the seed writer: a session as a monitor sends it */

static size_t rec(uint8_t *out, uint8_t flags, uint32_t type, const void *body, uint32_t len)
{
	struct display_msg_header h = {type, len};
	size_t n = sizeof(h) + len;
	out[0] = flags;
	out[1] = (uint8_t)n;
	out[2] = (uint8_t)(n >> 8);
	memcpy(out + 3, &h, sizeof(h));
	if (len)
		memcpy(out + 3 + sizeof(h), body, len);
	return 3 + n;
}

static void write_seed(const char *dir, const char *name, const uint8_t *buf, size_t len)
{
	char p[512];
	snprintf(p, sizeof(p), "%s/%s", dir, name);
	FILE *f = fopen(p, "wb");
	if (!f || fwrite(buf, 1, len, f) != len || fclose(f) != 0)
		exit(1);
}

int main(int argc, char **argv)
{
	if (argc != 2)
		return 2;
	static uint8_t buf[65536];
	size_t n = 0;
	struct display_hello h = {DISPLAY_PROTO_VERSION, 0, 64, 48};
	struct display_surface s = {64, 48, 256, DISPLAY_FORMAT_XRGB8888, 0, 256 * 48};
	struct display_damage d1 = {1, 0, 0, 64, 48}, d2 = {2, 60, 40, 100, 100};
	struct display_cursor c = {0, 0, 1, 1, 0};
	n += rec(buf + n, 0, DISPLAY_MSG_HELLO, &h, sizeof(h));
	n += rec(buf + n, 1 | 2 | (1 << 2), DISPLAY_MSG_SURFACE, &s, sizeof(s));
	n += rec(buf + n, 0, DISPLAY_MSG_DAMAGE, &d1, sizeof(d1));
	n += rec(buf + n, 0, DISPLAY_MSG_DAMAGE, &d2, sizeof(d2));
	n += rec(buf + n, 0, DISPLAY_MSG_CURSOR, &c, sizeof(c));
	n += rec(buf + n, 0, DISPLAY_MSG_DISABLE, NULL, 0);
	write_seed(argv[1], "session", buf, n);
	s.offset = 1024;
	s.size += 1024;
	n = rec(buf, 1 | 2 | (1 << 2), DISPLAY_MSG_SURFACE, &s, sizeof(s));
	n += rec(buf + n, 0, DISPLAY_MSG_DAMAGE, &d2, sizeof(d2));
	write_seed(argv[1], "offset", buf, n);
	return 0;
}

#endif
