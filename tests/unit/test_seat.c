/* Unit tests for the seat's pure parts: the display channel checks against hostile monitors
 * (short, long, lying lengths, unknown types, descriptors where none belong, surfaces whose rows
 * overflow or run past their memfd, unsealed memfds), damage clipping, the packets the seat
 * builds, the key table, the hot key and the font. */
#include <SDL.h>
#include <fcntl.h>
#include <stdio.h>

#include "seat/font.h"
#include "seat/hotkey.h"
#include "seat/keymap.h"
#include "seat/seat_proto.h"
#include "unit.h"

static size_t pkt(uint8_t *buf, uint32_t type, const void *body, size_t len)
{
	struct display_msg_header h = {type, (uint32_t)len};
	memcpy(buf, &h, sizeof(h));
	if (len)
		memcpy(buf + sizeof(h), body, len);
	return sizeof(h) + len;
}

static const struct display_surface good_surface = {.width = 640,
						    .height = 480,
						    .stride = 2560,
						    .format = DISPLAY_FORMAT_XRGB8888,
						    .offset = 0,
						    .size = 2560 * 480};

static void test_parse_good(void **state)
{
	(void)state;
	static uint8_t buf[DISPLAY_MSG_MAX];
	struct seat_msg m;
	struct err e;
	struct display_hello h = {DISPLAY_PROTO_VERSION, 0, 1024, 768};
	assert_int_equal(seat_proto_parse(buf, pkt(buf, DISPLAY_MSG_HELLO, &h, sizeof(h)), false, &m, &e), 0);
	assert_int_equal(m.type, DISPLAY_MSG_HELLO);
	assert_int_equal(m.u.hello.width, 1024);
	assert_int_equal(seat_proto_parse(buf, pkt(buf, DISPLAY_MSG_SURFACE, &good_surface, sizeof(good_surface)), true,
					  &m, &e),
			 0);
	assert_int_equal(m.u.surface.stride, 2560);
	struct display_damage d = {7, 1, 2, 3, 4};
	assert_int_equal(seat_proto_parse(buf, pkt(buf, DISPLAY_MSG_DAMAGE, &d, sizeof(d)), false, &m, &e), 0);
	assert_int_equal(m.u.damage.seq, 7);
	assert_int_equal(seat_proto_parse(buf, pkt(buf, DISPLAY_MSG_DISABLE, NULL, 0), false, &m, &e), 0);
	/* a cursor: hidden without pixels, visible with them */
	uint8_t body[sizeof(struct display_cursor) + DISPLAY_CURSOR_SIZE * DISPLAY_CURSOR_SIZE * 4] = {0};
	struct display_cursor c = {1, 1, 5, 5, 0};
	memcpy(body, &c, sizeof(c));
	assert_int_equal(seat_proto_parse(buf, pkt(buf, DISPLAY_MSG_CURSOR, body, sizeof(c)), false, &m, &e), 0);
	assert_null(m.cursor_pixels);
	c.visible = 1;
	memcpy(body, &c, sizeof(c));
	assert_int_equal(seat_proto_parse(buf, pkt(buf, DISPLAY_MSG_CURSOR, body, sizeof(body)), false, &m, &e), 0);
	assert_non_null(m.cursor_pixels);
}

static void test_parse_hostile(void **state)
{
	(void)state;
	static uint8_t buf[DISPLAY_MSG_MAX + 16];
	struct seat_msg m;
	struct err e;
	assert_int_equal(seat_proto_parse(buf, 3, false, &m, &e), -1);
	assert_contains(e.msg, "shorter than a header");
	struct display_hello h = {DISPLAY_PROTO_VERSION, 0, 1, 1};
	size_t n = pkt(buf, DISPLAY_MSG_HELLO, &h, sizeof(h));
	assert_int_equal(seat_proto_parse(buf, n - 1, false, &m, &e), -1); /* the length lies */
	assert_contains(e.msg, "body bytes");
	assert_int_equal(seat_proto_parse(buf, DISPLAY_MSG_MAX + 1, false, &m, &e), -1);
	assert_int_equal(seat_proto_parse(buf, n, true, &m, &e), -1); /* a descriptor on HELLO */
	assert_contains(e.msg, "carries a descriptor");
	h.version = 2;
	assert_int_equal(seat_proto_parse(buf, pkt(buf, DISPLAY_MSG_HELLO, &h, sizeof(h)), false, &m, &e), -1);
	assert_contains(e.msg, "version");
	assert_int_equal(seat_proto_parse(buf, pkt(buf, 99, NULL, 0), false, &m, &e), -1);
	assert_contains(e.msg, "unknown packet type 99");
	assert_int_equal(seat_proto_parse(buf, pkt(buf, DISPLAY_MSG_INPUT, NULL, 0), false, &m, &e), -1);
	/* a header whose len is huge: must not be trusted for anything */
	struct display_msg_header big = {DISPLAY_MSG_DAMAGE, 0xffffffffu};
	memcpy(buf, &big, sizeof(big));
	assert_int_equal(seat_proto_parse(buf, 28, false, &m, &e), -1);
	/* SURFACE without its memfd */
	assert_int_equal(seat_proto_parse(buf, pkt(buf, DISPLAY_MSG_SURFACE, &good_surface, sizeof(good_surface)),
					  false, &m, &e),
			 -1);
	assert_contains(e.msg, "lacks a descriptor");
	/* a visible cursor without pixels; a hot spot outside it */
	struct display_cursor c = {1, 1, 0, 0, 1};
	assert_int_equal(seat_proto_parse(buf, pkt(buf, DISPLAY_MSG_CURSOR, &c, sizeof(c)), false, &m, &e), -1);
	c = (struct display_cursor){64, 0, 0, 0, 0};
	assert_int_equal(seat_proto_parse(buf, pkt(buf, DISPLAY_MSG_CURSOR, &c, sizeof(c)), false, &m, &e), -1);
}

static int surface(struct display_surface s, struct err *e)
{
	static uint8_t buf[256];
	struct seat_msg m;
	return seat_proto_parse(buf, pkt(buf, DISPLAY_MSG_SURFACE, &s, sizeof(s)), true, &m, e);
}

static void test_surface_bounds(void **state)
{
	(void)state;
	struct err e;
	struct display_surface s = good_surface;
	assert_int_equal(surface(s, &e), 0);
	s.width = 0;
	assert_int_equal(surface(s, &e), -1);
	s = good_surface;
	s.width = DISPLAY_MAX_WIDTH + 1;
	s.stride = s.width * 4;
	assert_int_equal(surface(s, &e), -1);
	s = good_surface;
	s.stride = 640 * 4 - 4; /* rows overlap */
	assert_int_equal(surface(s, &e), -1);
	s = good_surface;
	s.format = 0x34324241; /* AB24 */
	assert_int_equal(surface(s, &e), -1);
	assert_contains(e.msg, "format");
	s = good_surface;
	s.size -= 1; /* the last row runs one byte past */
	assert_int_equal(surface(s, &e), -1);
	assert_contains(e.msg, "run past");
	s = good_surface;
	s.offset = 4; /* the same, by the offset */
	assert_int_equal(surface(s, &e), -1);
	s = good_surface;
	s.offset = UINT64_MAX - 100; /* offset + rows would wrap */
	assert_int_equal(surface(s, &e), -1);
	s = good_surface;
	s.stride = 0xfffffffcu; /* stride * height beyond 32 bits */
	s.height = DISPLAY_MAX_HEIGHT;
	s.size = UINT64_MAX;
	assert_int_equal(surface(s, &e), -1); /* consistent on paper, but 32 TiB to map */
	assert_contains(e.msg, "any display needs");
	s = good_surface;
	s.size = 1u << 20; /* consistent on paper... */
	s.height = 400;
	assert_int_equal(surface(s, &e), 0);
	assert_int_equal(seat_proto_check_memfd(&s, 1u << 19, F_SEAL_SHRINK, &e), -1); /* ...not in the file */
	assert_contains(e.msg, "beyond its memfd");
	s = good_surface;
	s.offset = 2;
	s.size += 4;
	assert_int_equal(surface(s, &e), -1);
	assert_contains(e.msg, "aligned");
}

static void test_memfd(void **state)
{
	(void)state;
	struct err e;
	assert_int_equal(seat_proto_check_memfd(&good_surface, good_surface.size, F_SEAL_SHRINK, &e), 0);
	assert_int_equal(seat_proto_check_memfd(&good_surface, good_surface.size - 1, F_SEAL_SHRINK, &e), -1);
	assert_int_equal(seat_proto_check_memfd(&good_surface, good_surface.size, F_SEAL_GROW, &e), -1);
	assert_contains(e.msg, "sealed");
}

static void test_clip_union(void **state)
{
	(void)state;
	uint32_t r[4];
	struct display_damage d = {1, 600, 400, 100, 100};
	assert_true(seat_proto_clip(&d, 640, 480, r));
	assert_int_equal(r[2], 40);
	assert_int_equal(r[3], 80);
	d = (struct display_damage){1, 640, 0, 1, 1};
	assert_false(seat_proto_clip(&d, 640, 480, r));
	d = (struct display_damage){1, 10, 10, 0xffffffffu, 0xffffffffu}; /* x + width wraps */
	assert_true(seat_proto_clip(&d, 640, 480, r));
	assert_int_equal(r[0] + r[2], 640);
	assert_int_equal(r[1] + r[3], 480);
	d = (struct display_damage){1, 0, 0, 0, 5};
	assert_false(seat_proto_clip(&d, 640, 480, r));
	uint32_t acc[4] = {0, 0, 0, 0}, a[4] = {10, 10, 5, 5}, b[4] = {0, 20, 2, 2};
	seat_rect_union(acc, a);
	assert_memory_equal(acc, a, sizeof(a));
	seat_rect_union(acc, b);
	uint32_t want[4] = {0, 10, 15, 12};
	assert_memory_equal(acc, want, sizeof(want));
}

static void test_build(void **state)
{
	(void)state;
	static uint8_t buf[DISPLAY_MSG_MAX];
	struct display_msg_header h;
	assert_int_equal(seat_proto_ack(buf, 42), 12);
	memcpy(&h, buf, sizeof(h));
	assert_int_equal(h.type, DISPLAY_MSG_ACK);
	assert_int_equal(h.len, 4);
	struct display_input_event ev[2] = {{1, 30, 1}, {0, 0, 0}};
	size_t n = seat_proto_input(buf, DISPLAY_INPUT_KEYBOARD, ev, 2);
	assert_int_equal(n, 8 + 8 + 16);
	memcpy(&h, buf, sizeof(h));
	assert_int_equal(h.len, n - 8);
	struct display_input in;
	memcpy(&in, buf + 8, sizeof(in));
	assert_int_equal(in.count, 2);
	assert_int_equal(seat_proto_size(buf, 800, 600), 16);
}

static void test_keymap(void **state)
{
	(void)state;
	assert_int_equal(keymap_hid_to_evdev(SDL_SCANCODE_A), 30);
	assert_int_equal(keymap_hid_to_evdev(SDL_SCANCODE_Z), 44);
	assert_int_equal(keymap_hid_to_evdev(SDL_SCANCODE_1), 2);
	assert_int_equal(keymap_hid_to_evdev(SDL_SCANCODE_0), 11);
	assert_int_equal(keymap_hid_to_evdev(SDL_SCANCODE_SPACE), 57);
	assert_int_equal(keymap_hid_to_evdev(SDL_SCANCODE_ESCAPE), 1);
	assert_int_equal(keymap_hid_to_evdev(SDL_SCANCODE_F12), 88);
	assert_int_equal(keymap_hid_to_evdev(SDL_SCANCODE_LCTRL), 29);
	assert_int_equal(keymap_hid_to_evdev(SDL_SCANCODE_RGUI), 126);
	assert_int_equal(keymap_hid_to_evdev(SDL_SCANCODE_UP), 103);
	assert_int_equal(keymap_hid_to_evdev(-1), 0);
	assert_int_equal(keymap_hid_to_evdev(100000), 0);
	for (int u = 0; u < 512; u++)
		assert_true(keymap_hid_to_evdev(u) < KEYMAP_MAX_EVDEV);
}

static void test_hotkey(void **state)
{
	(void)state;
	struct hotkey h;
	struct err e;
	assert_int_equal(hotkey_parse(HOTKEY_DEFAULT, &h, &e), 0);
	assert_int_equal(h.mods, HOTKEY_CTRL | HOTKEY_ALT);
	assert_int_equal(h.scancode, SDL_SCANCODE_SPACE);
	assert_true(hotkey_match(&h, SDL_SCANCODE_SPACE, KMOD_LCTRL | KMOD_RALT));
	assert_false(hotkey_match(&h, SDL_SCANCODE_SPACE, KMOD_LCTRL));
	assert_false(hotkey_match(&h, SDL_SCANCODE_SPACE, KMOD_LCTRL | KMOD_LALT | KMOD_LSHIFT));
	assert_int_equal(hotkey_parse("Super+F12", &h, &e), 0);
	assert_int_equal(h.scancode, SDL_SCANCODE_F12);
	assert_int_equal(hotkey_parse("space", &h, &e), -1);
	assert_contains(e.msg, "no modifier");
	assert_int_equal(hotkey_parse("ctrl+alt", &h, &e), -1);
	assert_contains(e.msg, "has no key");
	assert_int_equal(hotkey_parse("ctrl+nosuchkey", &h, &e), -1);
	assert_contains(e.msg, "not a key name");
	assert_int_equal(hotkey_parse("ctrl+a+b", &h, &e), -1);
	assert_contains(e.msg, "two keys");
}

static void test_font(void **state)
{
	(void)state;
	uint8_t a[FONT_H], b[FONT_H];
	assert_true(font_glyph('W', a));
	assert_true(font_glyph('w', b));
	assert_memory_equal(a, b, FONT_H);
	for (const char *c = "ABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789 ._-:/()!?#,=+"; *c; c++) {
		assert_true(font_glyph(*c, a));
		for (int r = 0; r < FONT_H; r++)
			assert_true(a[r] < 32);
	}
	assert_false(font_glyph('\x01', a));
	assert_int_equal(a[0], 0x1f);
	assert_int_equal(font_width("work", 3), (4 * FONT_ADVANCE - 1) * 3);
	assert_int_equal(font_width("", 3), 0);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_parse_good),     cmocka_unit_test(test_parse_hostile),
		cmocka_unit_test(test_surface_bounds), cmocka_unit_test(test_memfd),
		cmocka_unit_test(test_clip_union),     cmocka_unit_test(test_build),
		cmocka_unit_test(test_keymap),         cmocka_unit_test(test_hotkey),
		cmocka_unit_test(test_font),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
