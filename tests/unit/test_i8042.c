/* test_i8042: the keyboard controller, its keyboard and mouse: the probes OVMF and Linux make,
 * scan codes with and without translation, interrupt edges, mouse packets, the reset lines, and
 * floods of hostile port accesses and of input nobody reads. */
#include "unit.h"

#include <linux/input.h>
#include <pthread.h>

#include "common/log.h"
#include "fake_machine.h"
#include "vmm/devices/i8042.h"
#include "vmm/devices/virtio_gpu.h"

#define STAT_OBF     0x01
#define STAT_IBF     0x02
#define STAT_SYS     0x04
#define STAT_AUX_OBF 0x20

static struct fake_machine fm;
static struct i8042 kbc;
/* Each line's level and how many times it rose, as the interrupt controllers see them. */
static int level[16];
static unsigned rises[16], irq_errors;

static void record_irq(struct machine *m, unsigned gsi, int l)
{
	(void)m;
	if (gsi >= 16 || level[gsi] == l) {
		irq_errors++; /* a line other than 1 and 12, or a call that changes nothing */
		return;
	}
	rises[gsi] += l && !level[gsi];
	level[gsi] = l;
}

static int setup(void **state)
{
	(void)state;
	fake_machine_init(&fm);
	fm.m.set_irq = record_irq;
	memset(level, 0, sizeof(level));
	memset(rises, 0, sizeof(rises));
	irq_errors = 0;
	i8042_init(&kbc, &fm.m);
	return 0;
}

static int teardown(void **state)
{
	(void)state;
	assert_int_equal(irq_errors, 0);
	i8042_destroy(&kbc);
	return 0;
}

static void cmd(uint8_t c)
{
	i8042_cmd_io(&kbc, 0, &c, 1, true);
}

static void data(uint8_t v)
{
	i8042_data_io(&kbc, 0, &v, 1, true);
}

static uint8_t status(void)
{
	uint8_t v = 0;
	i8042_cmd_io(&kbc, 0, &v, 1, false);
	return v;
}

static uint8_t read_data(void)
{
	uint8_t v = 0;
	i8042_data_io(&kbc, 0, &v, 1, false);
	return v;
}

/* Reads the next byte, which must be there and come from the keyboard (aux false) or mouse. */
static uint8_t next(bool aux)
{
	uint8_t s = status();
	if (!(s & STAT_OBF))
		fail_msg("output buffer empty (status 0x%02x)", s);
	if (!!(s & STAT_AUX_OBF) != aux)
		fail_msg("byte from the %s, expected the %s", aux ? "keyboard" : "mouse", aux ? "mouse" : "keyboard");
	return read_data();
}

static void expect_bytes(bool aux, const uint8_t *want, size_t n)
{
	for (size_t i = 0; i < n; i++) {
		uint8_t got = next(aux);
		if (got != want[i])
			fail_msg("byte %zu: 0x%02x, expected 0x%02x", i, got, want[i]);
	}
	if (status() & STAT_OBF)
		fail_msg("more than %zu bytes (next 0x%02x)", n, read_data());
}

#define BYTES(...)      (const uint8_t[]){__VA_ARGS__}, sizeof((const uint8_t[]){__VA_ARGS__})
#define EXPECT(...)     expect_bytes(false, BYTES(__VA_ARGS__))
#define EXPECT_AUX(...) expect_bytes(true, BYTES(__VA_ARGS__))

static void write_command_byte(uint8_t v)
{
	cmd(0x60);
	data(v);
}

static uint8_t read_command_byte(void)
{
	cmd(0x20);
	return next(false);
}

static void mouse(uint8_t v)
{
	cmd(0xd4);
	data(v);
}

static void key(uint16_t code)
{
	i8042_key(&kbc, code, true);
	i8042_key(&kbc, code, false);
}

/* The keyboard's ID (its second byte as the guest sees it) and its scan code set. */
static void identify_and_query_set(uint8_t id2, uint8_t set)
{
	data(0xf2);
	EXPECT(0xfa, 0xab, id2);
	data(0xf0);
	data(0x00);
	EXPECT(0xfa, 0xfa, set);
}

/* The sample rates that make a PS/2 mouse an IntelliMouse. */
static void intellimouse_knock(void)
{
	static const uint8_t knock[] = {200, 100, 80};
	for (int i = 0; i < 3; i++) {
		mouse(0xf3);
		mouse(knock[i]);
		EXPECT_AUX(0xfa, 0xfa);
	}
}

/* As OVMF's Ps2KeyboardDxe finds and sets up the controller on its first start. */
static void ovmf_init(void)
{
	assert_false(status() & STAT_SYS); /* first start: test the controller */
	cmd(0xad);
	cmd(0xa7);
	cmd(0xaa);
	EXPECT(0x55);
	assert_true(status() & STAT_SYS);
	write_command_byte(0x67); /* translation, mouse off, both interrupts, system flag */
	cmd(0xab);
	EXPECT(0x00);
	data(0xf4);
	EXPECT(0xfa);
	data(0xff);
	EXPECT(0xfa, 0xaa);
	data(0xf0);
	EXPECT(0xfa);
	data(0x02);
	EXPECT(0xfa);
	data(0xf4);
	EXPECT(0xfa);
	data(0xed);
	EXPECT(0xfa);
	data(0x00);
	EXPECT(0xfa);
}

static void power_on(void **state)
{
	(void)state;
	assert_int_equal(status(), 0x10); /* empty, not locked, no system flag */
	assert_int_equal(read_command_byte(), 0x70);
	assert_false(i8042_keyboard_active(&kbc));
	assert_false(i8042_mouse_active(&kbc));
	/* Nothing queued: the data port gives its last byte again, and the status stays empty. */
	assert_int_equal(read_data(), 0x70);
	assert_int_equal(read_data(), 0x70);
	assert_int_equal(status() & (STAT_OBF | STAT_IBF), 0);
	/* Keys pressed before the firmware enables the keyboard wait for it. */
	i8042_key(&kbc, KEY_A, true);
	assert_false(status() & STAT_OBF);
	cmd(0xae);
	EXPECT(0x1e);
}

static void ovmf_probe(void **state)
{
	(void)state;
	ovmf_init();
	assert_true(i8042_keyboard_active(&kbc));
	assert_int_equal(read_command_byte(), 0x67);
	/* The driver's second start reads the command byte and keeps the mouse as it was. */
	assert_true(status() & STAT_SYS);
	key(KEY_A);
	EXPECT(0x1e, 0x9e);
	assert_int_equal(fm.exit_calls, 0);
}

/* The seat's keys reach the PS/2 keyboard only once the firmware drives it (here with no
 * virtio-input device at all), and never when the machine has no PS/2 way in. */
static void seat_keys_routed(void **state)
{
	(void)state;
	struct virtio_gpu gpu;
	memset(&gpu, 0, sizeof(gpu));
	gpu.ps2 = &kbc;
	const struct display_input_event batch[] = {
		{.type = EV_KEY, .code = KEY_A, .value = 1},
		{.type = EV_SYN, .code = SYN_REPORT, .value = 0},
	};
	virtio_gpu_seat_input(&gpu, DISPLAY_INPUT_KEYBOARD, batch, 2); /* not driven yet: dropped */
	assert_false(status() & STAT_OBF);
	ovmf_init();
	virtio_gpu_seat_input(&gpu, DISPLAY_INPUT_KEYBOARD, batch, 2);
	EXPECT(0x1e);
	virtio_gpu_seat_input(&gpu, DISPLAY_INPUT_TABLET, batch, 2); /* PS/2 has no tablet */
	virtio_gpu_seat_input(&gpu, 7, batch, 2);                    /* no such device */
	gpu.ps2 = NULL;
	virtio_gpu_seat_input(&gpu, DISPLAY_INPUT_KEYBOARD, batch, 2);
	assert_false(status() & STAT_OBF);
}

static void linux_probe(void **state)
{
	(void)state;
	ovmf_init();
	/* i8042: flush, self-test, command byte read twice and written. */
	cmd(0xaa);
	EXPECT(0x55);
	uint8_t ctr = read_command_byte();
	assert_int_equal(read_command_byte(), ctr);
	write_command_byte((uint8_t)((ctr | 0x10) & ~0x01));
	assert_int_equal(read_command_byte(), (ctr | 0x10) & ~0x01);
	/* The aux port: loopback (as the mouse's, even with its interface off), then the disable
	 * and enable bits. */
	cmd(0xd3);
	data(0x5a);
	EXPECT_AUX(0x5a);
	cmd(0xa7);
	assert_true(read_command_byte() & 0x20);
	cmd(0xa8);
	assert_false(read_command_byte() & 0x20);
	cmd(0xa9);
	EXPECT(0x00);
	/* atkbd, with translation: identify, set query, reset and disable, rate, enable. */
	cmd(0xae);
	identify_and_query_set(0x41, 0x41);
	data(0xf5);
	EXPECT(0xfa);
	data(0xf3);
	data(0x00);
	EXPECT(0xfa, 0xfa);
	data(0xf4);
	EXPECT(0xfa);
	/* Without translation the keyboard's own bytes show. */
	write_command_byte(0x07);
	identify_and_query_set(0x83, 0x02);
	/* psmouse: reset, identify, the IntelliMouse knock, identify again. */
	mouse(0xff);
	EXPECT_AUX(0xfa, 0xaa, 0x00);
	mouse(0xf2);
	EXPECT_AUX(0xfa, 0x00);
	intellimouse_knock();
	mouse(0xf2);
	EXPECT_AUX(0xfa, 0x03);
	mouse(0xe9);
	EXPECT_AUX(0xfa, 0x00, 0x02, 80);
}

static void keyboard_commands(void **state)
{
	(void)state;
	write_command_byte(0x05); /* no translation, keyboard interrupt */
	data(0xee);
	EXPECT(0xee);
	data(0xed); /* LEDs, then a command instead of their byte */
	data(0xf2);
	EXPECT(0xfa, 0xfa, 0xab, 0x83);
	data(0x01);
	EXPECT(0xfe);
	data(0xf7);
	EXPECT(0xfe);
	data(0xfe); /* resend: the last byte again */
	EXPECT(0xfe);
	data(0xf0); /* set 3 is refused; the set stays 2 */
	data(0x03);
	EXPECT(0xfa, 0xfe);
	data(0xf0);
	data(0x00);
	EXPECT(0xfa, 0xfa, 0x02);
	/* Not scanning: keys are dropped, not queued. */
	data(0xf5);
	EXPECT(0xfa);
	key(KEY_A);
	assert_false(status() & STAT_OBF);
	assert_false(i8042_keyboard_active(&kbc));
	data(0xf6);
	EXPECT(0xfa);
	assert_true(i8042_keyboard_active(&kbc));
	/* The keyboard's bytes wait while its interface is disabled. */
	cmd(0xad);
	key(KEY_B);
	assert_false(status() & STAT_OBF);
	cmd(0xae);
	EXPECT(0x32, 0xf0, 0x32);
}

static void keys_translated(void **state)
{
	(void)state;
	write_command_byte(0x45); /* translation, keyboard interrupt */
	key(KEY_ENTER);
	EXPECT(0x1c, 0x9c);
	key(KEY_F7); /* 0x83 in set 2 */
	EXPECT(0x41, 0xc1);
	key(KEY_RIGHTCTRL);
	EXPECT(0xe0, 0x1d, 0xe0, 0x9d);
	key(KEY_DELETE);
	EXPECT(0xe0, 0x53, 0xe0, 0xd3);
	key(KEY_LEFTMETA);
	EXPECT(0xe0, 0x5b, 0xe0, 0xdb);
	key(KEY_PAUSE);
	EXPECT(0xe1, 0x1d, 0x45, 0xe1, 0x9d, 0xc5);
	key(KEY_SYSRQ);
	EXPECT(0xe0, 0x2a, 0xe0, 0x37, 0xe0, 0xb7, 0xe0, 0xaa);
	/* Unknown codes are dropped and counted. */
	i8042_key(&kbc, KEY_MAX, true);
	i8042_key(&kbc, 0, true);
	i8042_key(&kbc, KEY_HANGEUL, true);
	assert_false(status() & STAT_OBF);
	assert_int_equal(kbc.unknown_keys, 3);
}

static void keys_set2_and_set1(void **state)
{
	(void)state;
	write_command_byte(0x05); /* no translation */
	key(KEY_ENTER);
	EXPECT(0x5a, 0xf0, 0x5a);
	key(KEY_RIGHTCTRL);
	EXPECT(0xe0, 0x14, 0xe0, 0xf0, 0x14);
	key(KEY_KPSLASH);
	EXPECT(0xe0, 0x4a, 0xe0, 0xf0, 0x4a);
	key(KEY_PAUSE);
	EXPECT(0xe1, 0x14, 0x77, 0xe1, 0xf0, 0x14, 0xf0, 0x77);
	key(KEY_SYSRQ);
	EXPECT(0xe0, 0x12, 0xe0, 0x7c, 0xe0, 0xf0, 0x7c, 0xe0, 0xf0, 0x12);
	/* The keyboard itself in set 1. */
	data(0xf0);
	data(0x01);
	EXPECT(0xfa, 0xfa);
	key(KEY_UP);
	EXPECT(0xe0, 0x48, 0xe0, 0xc8);
	key(KEY_ESC);
	EXPECT(0x01, 0x81);
}

/* Linux's key codes 1-83 and 86-88 are the set 1 scan codes of those keys: each one, through
 * the controller's translation, must come out as its own code. Every known key's bytes keep
 * the shape of set 1: an optional prefix, then the code, with the top bit on release. */
static void key_table(void **state)
{
	(void)state;
	write_command_byte(0x45);
	for (uint16_t code = 1; code <= 88; code++) {
		if (code == 84 || code == 85)
			continue;
		key(code);
		EXPECT((uint8_t)code, (uint8_t)(code | 0x80));
	}
	unsigned known = 0;
	for (uint16_t code = 0; code < KEY_MAX; code++) {
		if (code == KEY_PAUSE || code == KEY_SYSRQ)
			continue;
		uint64_t unknown = kbc.unknown_keys;
		key(code);
		if (kbc.unknown_keys != unknown)
			continue;
		known++;
		uint8_t b[4];
		int n = 0;
		while ((status() & STAT_OBF) && n < 4)
			b[n++] = read_data();
		bool e0 = n == 4;
		if ((n != 2 && n != 4) || (e0 && (b[0] != 0xe0 || b[2] != 0xe0)) || b[e0 ? 1 : 0] >= 0x80 ||
		    b[e0 ? 3 : 1] != (b[e0 ? 1 : 0] | 0x80))
			fail_msg("key %u: %d bytes, %02x %02x", code, n, b[0], b[1]);
	}
	assert_true(known >= 120);
}

static void keyboard_irq(void **state)
{
	(void)state;
	write_command_byte(0x44); /* translation, no interrupt */
	key(KEY_A);
	assert_int_equal(rises[1], 0);
	write_command_byte(0x45); /* the interrupt enabled with a byte waiting raises the line */
	assert_int_equal(level[1], 1);
	assert_int_equal(rises[1], 1);
	read_data();
	assert_int_equal(level[1], 1); /* the release follows at once: a new edge */
	assert_int_equal(rises[1], 2);
	read_data();
	assert_int_equal(level[1], 0);
	key(KEY_HOME);
	EXPECT(0xe0, 0x47, 0xe0, 0xc7);
	assert_int_equal(rises[1], 6); /* one edge a byte */
	assert_int_equal(level[1], 0);
	assert_int_equal(rises[12], 0);
	/* Controller replies raise IRQ 1 too; the mouse's loopback raises IRQ 12 when enabled. */
	cmd(0xaa);
	assert_int_equal(rises[1], 7);
	read_data();
	cmd(0xd3);
	data(0x11);
	assert_int_equal(rises[12], 0); /* the mouse's interrupt is off */
	assert_int_equal(level[1], 0);
	write_command_byte(0x47);
	assert_int_equal(level[12], 1);
	read_data();
	assert_int_equal(level[12], 0);
}

static void enable_mouse(void)
{
	write_command_byte(0x47); /* both interfaces and interrupts */
	mouse(0xf4);
	EXPECT_AUX(0xfa);
	assert_true(i8042_mouse_active(&kbc));
}

static void mouse_packets(void **state)
{
	(void)state;
	/* Not reporting: motion is not queued. */
	write_command_byte(0x47);
	i8042_mouse(&kbc, 5, 5, 0, 0);
	assert_false(status() & STAT_OBF);
	enable_mouse();
	unsigned before = rises[12];
	i8042_mouse(&kbc, 5, -3, 0, 0); /* right 5, up 3 */
	EXPECT_AUX(0x08, 5, 3);
	assert_int_equal(rises[12], before + 3);
	assert_int_equal(rises[1], 0);
	i8042_mouse(&kbc, -2, 4, 0, I8042_BUTTON_LEFT); /* left, down: both signs */
	EXPECT_AUX(0x39, 0xfe, 0xfc);
	i8042_mouse(&kbc, 0, 0, 0, I8042_BUTTON_RIGHT | I8042_BUTTON_MIDDLE);
	EXPECT_AUX(0x0e, 0, 0);
	i8042_mouse(&kbc, 0, 0, 0, I8042_BUTTON_RIGHT | I8042_BUTTON_MIDDLE); /* nothing new */
	assert_false(status() & STAT_OBF);
	/* Beyond nine bits: the overflow bits, then the rest. */
	i8042_mouse(&kbc, 300, 400, 0, 0);
	EXPECT_AUX(0xe8, 0xff, 0x00, 0x28, 45, 0x70);
	/* Scaling 2:1 in stream mode. */
	mouse(0xe7);
	EXPECT_AUX(0xfa);
	i8042_mouse(&kbc, 3, 0, 0, 0);
	EXPECT_AUX(0x08, 3, 0);
	i8042_mouse(&kbc, 4, 0, 0, 0);
	EXPECT_AUX(0x08, 6, 0);
	mouse(0xe6);
	EXPECT_AUX(0xfa);
}

static void mouse_wheel_and_remote(void **state)
{
	(void)state;
	enable_mouse();
	i8042_mouse(&kbc, 0, 0, 1, 0); /* a standard mouse has no wheel */
	assert_false(status() & STAT_OBF);
	intellimouse_knock();
	i8042_mouse(&kbc, 1, 0, 1, 0); /* wheel up: -1 in the packet */
	EXPECT_AUX(0x08, 1, 0, 0xff);
	i8042_mouse(&kbc, 0, 0, -20, 0); /* four bits at a time */
	EXPECT_AUX(0x08, 0, 0, 7, 0x08, 0, 0, 7, 0x08, 0, 0, 6);
	/* Remote mode: nothing streams; 0xEB reads the sums. */
	mouse(0xf0);
	EXPECT_AUX(0xfa);
	i8042_mouse(&kbc, 7, 0, 0, I8042_BUTTON_LEFT);
	i8042_mouse(&kbc, 1, 2, 0, I8042_BUTTON_LEFT);
	assert_false(status() & STAT_OBF);
	mouse(0xeb);
	EXPECT_AUX(0xfa, 0x29, 8, 0xfe, 0);
	mouse(0xe9);
	EXPECT_AUX(0xfa, 0x64, 0x02, 80);
	/* Wrap mode echoes until 0xEC. */
	mouse(0xee);
	EXPECT_AUX(0xfa);
	mouse(0x42);
	EXPECT_AUX(0x42);
	mouse(0xec);
	EXPECT_AUX(0xfa);
	mouse(0x42);
	EXPECT_AUX(0xfe);
	/* Reset: a plain mouse again. */
	mouse(0xff);
	EXPECT_AUX(0xfa, 0xaa, 0x00);
	mouse(0xf2);
	EXPECT_AUX(0xfa, 0x00);
}

static void output_buffer_writes(void **state)
{
	(void)state;
	write_command_byte(0x03);
	cmd(0xd2);
	data(0x12);
	assert_int_equal(level[1], 1);
	EXPECT(0x12);
	cmd(0xd3);
	data(0x34);
	assert_int_equal(level[12], 1);
	EXPECT_AUX(0x34);
	cmd(0xc0);
	EXPECT(0x80);
	/* A20 is kept as written; the reset line stays high. */
	cmd(0xd1);
	data(0xcd);
	cmd(0xd0);
	assert_int_equal(next(false) & 0x03, 0x01);
	cmd(0xdf);
	cmd(0xd0);
	assert_int_equal(next(false) & 0x03, 0x03);
	/* Controller RAM beyond the command byte. */
	cmd(0x65);
	data(0x99);
	cmd(0x25);
	EXPECT(0x99);
	assert_int_equal(fm.exit_calls, 0);
}

static void reset_pulse(void **state)
{
	(void)state;
	cmd(0xff); /* pulses nothing */
	cmd(0xf1);
	assert_int_equal(fm.exit_calls, 0);
	cmd(0xfe);
	assert_int_equal(fm.exit_calls, 1);
	assert_int_equal(fm.exit_reason, MACHINE_REBOOT);
	cmd(0xf0);
	assert_int_equal(fm.exit_calls, 2);
}

static void reset_output_port(void **state)
{
	(void)state;
	cmd(0xd1);
	data(0xdf); /* A20 on, reset high: the usual write */
	assert_int_equal(fm.exit_calls, 0);
	cmd(0xd1);
	data(0xde);
	assert_int_equal(fm.exit_calls, 1);
	assert_int_equal(fm.exit_reason, MACHINE_REBOOT);
}

static void seat_events(void **state)
{
	(void)state;
	enable_mouse();
	write_command_byte(0x47);
	const struct display_input_event keys[] = {
		{EV_KEY, KEY_LEFTSHIFT, 1}, {EV_KEY, KEY_Q, 1}, {EV_SYN, SYN_REPORT, 0},
		{EV_KEY, KEY_Q, 2},         {EV_KEY, KEY_Q, 0}, {EV_KEY, KEY_LEFTSHIFT, 0},
	};
	i8042_input(&kbc, DISPLAY_INPUT_KEYBOARD, keys, 6);
	EXPECT(0x2a, 0x10, 0x10, 0x90, 0xaa);
	const struct display_input_event moves[] = {
		{EV_REL, REL_X, 3},      {EV_REL, REL_Y, -1},   {EV_KEY, BTN_LEFT, 1},
		{EV_SYN, SYN_REPORT, 0}, {EV_REL, REL_X, 1},    {EV_REL, REL_X, 1},
		{EV_SYN, SYN_REPORT, 0}, {EV_KEY, BTN_LEFT, 0}, {EV_REL, REL_X, 1 << 30},
	};
	i8042_input(&kbc, DISPLAY_INPUT_MOUSE, moves, 9);
	EXPECT_AUX(0x09, 3, 1, 0x09, 2, 0, 0x48, 0xff, 0, 0x48, 0xff, 0, 0x48, 0xff, 0, 0x48, 0xff, 0, 0x48, 0xff, 0,
		   0x48, 0xff, 0, 0x48, 0xff, 0, 0x48, 0xff, 0, 0x08, 8, 0);
	const struct display_input_event tablet[] = {{EV_ABS, ABS_X, 100}, {EV_KEY, BTN_LEFT, 1}};
	i8042_input(&kbc, DISPLAY_INPUT_TABLET, tablet, 2);
	assert_false(status() & STAT_OBF);
}

/* Input nobody reads: the queues stay within their bounds and count what they drop. */
static void input_flood(void **state)
{
	(void)state;
	enable_mouse();
	for (int i = 0; i < 10000; i++) {
		i8042_key(&kbc, (uint16_t)(KEY_ESC + i % 100), i & 1);
		i8042_mouse(&kbc, i % 7 - 3, 3 - i % 5, i % 3 - 1, (unsigned)i & 7);
	}
	assert_true(kbc.kbd.q.count <= I8042_QUEUE);
	assert_true(kbc.mouse.q.count <= I8042_QUEUE);
	assert_true(kbc.kbd_dropped > 0);
	assert_true(kbc.mouse.dx <= 2048 && kbc.mouse.dx >= -2048);
	/* Reading drains it, and the summed motion follows as packets. */
	int n = 0;
	while ((status() & STAT_OBF) && n < 10000) {
		read_data();
		n++;
	}
	assert_true(n < 10000);
	assert_int_equal(kbc.kbd.q.count + kbc.mouse.q.count + kbc.ctrl.count, 0);
}

/* Commands whose replies nobody reads: each queue keeps I8042_QUEUE bytes and counts the rest. */
static void reply_flood(void **state)
{
	(void)state;
	write_command_byte(0x07);
	for (int i = 0; i < 1000; i++)
		cmd(0x20);
	assert_int_equal(kbc.ctrl.count, I8042_QUEUE);
	assert_int_equal(kbc.ctrl_dropped, 1000 - 1 - I8042_QUEUE); /* one is in the output buffer */
	for (int i = 0; i < 1000; i++)
		data(0xee);
	assert_int_equal(kbc.kbd.q.count, I8042_QUEUE);
	assert_int_equal(kbc.kbd_dropped, 1000 - I8042_QUEUE);
	mouse(0xee); /* wrap mode: every byte comes back */
	for (int i = 0; i < 1000; i++)
		mouse(0x42);
	assert_int_equal(kbc.mouse.q.count, I8042_QUEUE);
	assert_int_equal(kbc.mouse_dropped, 1001 - I8042_QUEUE);
	/* The guest reads them all, replies first, and the lines follow. */
	unsigned n = 0;
	while (status() & 0x01) {
		read_data();
		n++;
	}
	assert_int_equal(n, 3 * I8042_QUEUE + 1);
	assert_int_equal(level[1] + level[12], 0);
}

static void *seat_thread(void *arg)
{
	(void)arg;
	for (int i = 0; i < 20000; i++) {
		i8042_key(&kbc, (uint16_t)(KEY_ESC + i % 90), i & 1);
		i8042_mouse(&kbc, i % 5 - 2, 2 - i % 3, 0, (unsigned)i & 1);
		if (i % 64 == 0)
			(void)i8042_keyboard_active(&kbc);
	}
	return NULL;
}

/* The seat's thread injects while a vCPU reads and writes the ports. */
static void seat_and_vcpu(void **state)
{
	(void)state;
	enable_mouse();
	pthread_t t;
	assert_int_equal(pthread_create(&t, NULL, seat_thread, NULL), 0);
	for (int i = 0; i < 100000; i++) {
		if (status() & STAT_OBF)
			read_data();
		if (i % 1000 == 0)
			write_command_byte(i % 2000 ? 0x47 : 0x07);
	}
	pthread_join(t, NULL);
	assert_true(kbc.kbd.q.count <= I8042_QUEUE && kbc.mouse.q.count <= I8042_QUEUE);
	assert_false(level[1] && level[12]);
}

/* Hostile port traffic: any byte to either port, any number of reads. */
static void port_flood(void **state)
{
	(void)state;
	srandom(8042);
	for (int i = 0; i < 300000; i++) {
		long r = random();
		uint8_t v = (uint8_t)(r >> 8);
		switch (r & 7) {
		case 0: cmd(v); break;
		case 1:
		case 2: data(v); break;
		case 3: i8042_key(&kbc, (uint16_t)(v | (r & 0x100)), r & 0x200); break;
		case 4: i8042_mouse(&kbc, v - 128, (int)(r >> 16) % 600 - 300, v % 3 - 1, v); break;
		case 5: status(); break;
		default: read_data(); break;
		}
		assert_false(status() & STAT_IBF);
		assert_true(kbc.kbd.q.count <= I8042_QUEUE && kbc.mouse.q.count <= I8042_QUEUE &&
			    kbc.ctrl.count <= I8042_QUEUE);
		assert_false(level[1] && level[12]); /* one byte, one line */
	}
	assert_true(fm.exit_calls > 0 && kbc.unknown_commands > 0 && kbc.kbd_dropped > 0);
	/* It still answers. */
	cmd(0xa7);
	cmd(0xad);
	int n = 0;
	while ((status() & STAT_OBF) && n++ < 1000)
		read_data();
	cmd(0xaa);
	EXPECT(0x55);
	uint8_t wide[4] = {0};
	i8042_cmd_io(&kbc, 0, wide, 4, false);
	assert_int_equal(wide[3], 0xff);
}

int main(void)
{
	log_set_level(LOG_ERROR);
#define T(fn) cmocka_unit_test_setup_teardown(fn, setup, teardown)
	const struct CMUnitTest tests[] = {
		T(power_on),
		T(ovmf_probe),
		T(seat_keys_routed),
		T(linux_probe),
		T(keyboard_commands),
		T(keys_translated),
		T(keys_set2_and_set1),
		T(key_table),
		T(keyboard_irq),
		T(mouse_packets),
		T(mouse_wheel_and_remote),
		T(output_buffer_writes),
		T(reset_pulse),
		T(reset_output_port),
		T(seat_events),
		T(input_flood),
		T(reply_flood),
		T(seat_and_vcpu),
		T(port_flood),
	};
#undef T
	return cmocka_run_group_tests(tests, NULL, NULL);
}
