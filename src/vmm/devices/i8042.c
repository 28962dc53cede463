/* i8042: the keyboard controller with its PS/2 keyboard and mouse (see i8042.h). Our own model:
 * no library in Debian emulates an i8042 (the emulators that have one keep it inside their own
 * program). Written from the IBM PC/AT and PS/2 technical references (controller commands,
 * status and output port bits, scan code sets 1 and 2 and the controller's set 2 to set 1
 * translation, the mouse's commands and packets), and checked against how OVMF's Ps2KeyboardDxe
 * and Linux's i8042, atkbd and psmouse drivers probe. */
#include "i8042.h"

#include <linux/input.h> /* KEY_*, BTN_*, EV_*, REL_* */
#include <string.h>

#define ARRAY_SIZE(a) (sizeof(a) / sizeof((a)[0]))

/* Status register (port 0x64, read). */
#define STAT_OBF      0x01 /* output buffer full */
#define STAT_SYS      0x04 /* system flag: set by the self-test or the command byte */
#define STAT_CMD      0x08 /* the last write was to port 0x64 */
#define STAT_UNLOCKED 0x10 /* keyboard not inhibited by the key lock */
#define STAT_AUX_OBF  0x20 /* the byte in the output buffer is the mouse's */

/* Command byte (controller RAM byte 0). */
#define CB_KBD_INT 0x01
#define CB_AUX_INT 0x02
#define CB_SYS     0x04
#define CB_KBD_DIS 0x10
#define CB_AUX_DIS 0x20
#define CB_XLATE   0x40

/* Output port. Lines 2, 3, 6 and 7 are the devices' clock and data lines, idle high. */
#define OUT_RESET   0x01 /* low: the processor is held in reset */
#define OUT_A20     0x02 /* kept as written: KVM has no A20 gate */
#define OUT_OBF     0x10 /* IRQ 1 line */
#define OUT_AUX_OBF 0x20 /* IRQ 12 line */
#define OUT_IDLE    0xcc

#define AUX_FLAG 0x100 /* in the controller's queue: a byte for the output buffer as the mouse's */

/* Device replies. */
#define ACK    0xfa
#define RESEND 0xfe
#define BAT_OK 0xaa
#define ECHO   0xee

#define MOTION_CAP 2048 /* motion summed while the guest does not read, per axis */

/* --- queues ---------------------------------------------------------------------------- */

static void queue_clear(struct i8042_queue *q)
{
	q->head = q->count = 0;
}

static unsigned queue_room(const struct i8042_queue *q)
{
	return I8042_QUEUE - q->count;
}

/* Queues all n bytes (or'ed with flag), or none when they do not fit. */
static bool queue_push(struct i8042_queue *q, const uint8_t *b, unsigned n, uint16_t flag)
{
	if (n > queue_room(q))
		return false;
	for (unsigned i = 0; i < n; i++)
		q->buf[(q->head + q->count++) % I8042_QUEUE] = b[i] | flag;
	return true;
}

static bool queue_pop(struct i8042_queue *q, uint16_t *v)
{
	if (!q->count)
		return false;
	*v = q->buf[q->head];
	q->head = (q->head + 1) % I8042_QUEUE;
	q->count--;
	return true;
}

static void enqueue(struct i8042_queue *q, uint64_t *dropped, const uint8_t *b, unsigned n, uint16_t flag)
{
	if (!queue_push(q, b, n, flag))
		(*dropped)++;
}

#define BYTES(...)              (const uint8_t[]){__VA_ARGS__}, sizeof((const uint8_t[]){__VA_ARGS__})
#define KBD_SEND(k, ...)        enqueue(&(k)->kbd.q, &(k)->kbd_dropped, BYTES(__VA_ARGS__), 0)
#define MOUSE_SEND(k, ...)      enqueue(&(k)->mouse.q, &(k)->mouse_dropped, BYTES(__VA_ARGS__), 0)
#define CTRL_SEND(k, flag, ...) enqueue(&(k)->ctrl, &(k)->ctrl_dropped, BYTES(__VA_ARGS__), flag)

/* --- scan codes ------------------------------------------------------------------------ */

/* Each key's scan code in set 2 (after 0xE0 where e0 is set) and in set 1: the set 1 column
 * is what the controller's translation makes of the set 2 code, so that one table serves the
 * keys and the translation. Pause and Print Screen send sequences of their own (below). */
struct scancode {
	uint8_t set2, set1, e0;
};

#define K(s2, s1)                                                                                                      \
	{                                                                                                              \
		s2, s1, 0                                                                                              \
	}
#define E(s2, s1)                                                                                                      \
	{                                                                                                              \
		s2, s1, 1                                                                                              \
	}
/* The rows follow the keyboard: laid out by hand. */
/* clang-format off */
static const struct scancode keys[KEY_MEDIA + 1] = {
	[KEY_ESC] = K(0x76, 0x01),
	[KEY_F1] = K(0x05, 0x3b), [KEY_F2] = K(0x06, 0x3c), [KEY_F3] = K(0x04, 0x3d), [KEY_F4] = K(0x0c, 0x3e),
	[KEY_F5] = K(0x03, 0x3f), [KEY_F6] = K(0x0b, 0x40), [KEY_F7] = K(0x83, 0x41), [KEY_F8] = K(0x0a, 0x42),
	[KEY_F9] = K(0x01, 0x43), [KEY_F10] = K(0x09, 0x44), [KEY_F11] = K(0x78, 0x57), [KEY_F12] = K(0x07, 0x58),
	[KEY_GRAVE] = K(0x0e, 0x29), [KEY_1] = K(0x16, 0x02), [KEY_2] = K(0x1e, 0x03), [KEY_3] = K(0x26, 0x04),
	[KEY_4] = K(0x25, 0x05), [KEY_5] = K(0x2e, 0x06), [KEY_6] = K(0x36, 0x07), [KEY_7] = K(0x3d, 0x08),
	[KEY_8] = K(0x3e, 0x09), [KEY_9] = K(0x46, 0x0a), [KEY_0] = K(0x45, 0x0b), [KEY_MINUS] = K(0x4e, 0x0c),
	[KEY_EQUAL] = K(0x55, 0x0d), [KEY_BACKSPACE] = K(0x66, 0x0e),
	[KEY_TAB] = K(0x0d, 0x0f), [KEY_Q] = K(0x15, 0x10), [KEY_W] = K(0x1d, 0x11), [KEY_E] = K(0x24, 0x12),
	[KEY_R] = K(0x2d, 0x13), [KEY_T] = K(0x2c, 0x14), [KEY_Y] = K(0x35, 0x15), [KEY_U] = K(0x3c, 0x16),
	[KEY_I] = K(0x43, 0x17), [KEY_O] = K(0x44, 0x18), [KEY_P] = K(0x4d, 0x19), [KEY_LEFTBRACE] = K(0x54, 0x1a),
	[KEY_RIGHTBRACE] = K(0x5b, 0x1b), [KEY_BACKSLASH] = K(0x5d, 0x2b),
	[KEY_CAPSLOCK] = K(0x58, 0x3a), [KEY_A] = K(0x1c, 0x1e), [KEY_S] = K(0x1b, 0x1f), [KEY_D] = K(0x23, 0x20),
	[KEY_F] = K(0x2b, 0x21), [KEY_G] = K(0x34, 0x22), [KEY_H] = K(0x33, 0x23), [KEY_J] = K(0x3b, 0x24),
	[KEY_K] = K(0x42, 0x25), [KEY_L] = K(0x4b, 0x26), [KEY_SEMICOLON] = K(0x4c, 0x27),
	[KEY_APOSTROPHE] = K(0x52, 0x28), [KEY_ENTER] = K(0x5a, 0x1c),
	[KEY_LEFTSHIFT] = K(0x12, 0x2a), [KEY_102ND] = K(0x61, 0x56), [KEY_Z] = K(0x1a, 0x2c), [KEY_X] = K(0x22, 0x2d),
	[KEY_C] = K(0x21, 0x2e), [KEY_V] = K(0x2a, 0x2f), [KEY_B] = K(0x32, 0x30), [KEY_N] = K(0x31, 0x31),
	[KEY_M] = K(0x3a, 0x32), [KEY_COMMA] = K(0x41, 0x33), [KEY_DOT] = K(0x49, 0x34), [KEY_SLASH] = K(0x4a, 0x35),
	[KEY_RIGHTSHIFT] = K(0x59, 0x36),
	[KEY_LEFTCTRL] = K(0x14, 0x1d), [KEY_LEFTMETA] = E(0x1f, 0x5b), [KEY_LEFTALT] = K(0x11, 0x38),
	[KEY_SPACE] = K(0x29, 0x39), [KEY_RIGHTALT] = E(0x11, 0x38), [KEY_RIGHTMETA] = E(0x27, 0x5c),
	[KEY_COMPOSE] = E(0x2f, 0x5d), [KEY_RIGHTCTRL] = E(0x14, 0x1d),
	/* the editing and cursor block (Print Screen and Pause below) */
	[KEY_SCROLLLOCK] = K(0x7e, 0x46),
	[KEY_INSERT] = E(0x70, 0x52), [KEY_HOME] = E(0x6c, 0x47), [KEY_PAGEUP] = E(0x7d, 0x49),
	[KEY_DELETE] = E(0x71, 0x53), [KEY_END] = E(0x69, 0x4f), [KEY_PAGEDOWN] = E(0x7a, 0x51),
	[KEY_UP] = E(0x75, 0x48), [KEY_LEFT] = E(0x6b, 0x4b), [KEY_DOWN] = E(0x72, 0x50), [KEY_RIGHT] = E(0x74, 0x4d),
	/* the keypad */
	[KEY_NUMLOCK] = K(0x77, 0x45), [KEY_KPSLASH] = E(0x4a, 0x35), [KEY_KPASTERISK] = K(0x7c, 0x37),
	[KEY_KPMINUS] = K(0x7b, 0x4a), [KEY_KP7] = K(0x6c, 0x47), [KEY_KP8] = K(0x75, 0x48), [KEY_KP9] = K(0x7d, 0x49),
	[KEY_KPPLUS] = K(0x79, 0x4e), [KEY_KP4] = K(0x6b, 0x4b), [KEY_KP5] = K(0x73, 0x4c), [KEY_KP6] = K(0x74, 0x4d),
	[KEY_KP1] = K(0x69, 0x4f), [KEY_KP2] = K(0x72, 0x50), [KEY_KP3] = K(0x7a, 0x51), [KEY_KPENTER] = E(0x5a, 0x1c),
	[KEY_KP0] = K(0x70, 0x52), [KEY_KPDOT] = K(0x71, 0x53), [KEY_KPEQUAL] = K(0x0f, 0x59),
	[KEY_KPCOMMA] = K(0x6d, 0x7e),
	/* Japanese keyboards */
	[KEY_RO] = K(0x51, 0x73), [KEY_KATAKANAHIRAGANA] = K(0x13, 0x70), [KEY_HENKAN] = K(0x64, 0x79),
	[KEY_MUHENKAN] = K(0x67, 0x7b), [KEY_YEN] = K(0x6a, 0x7d),
	/* F13 to F24 */
	[KEY_F13] = K(0x08, 0x64), [KEY_F14] = K(0x10, 0x65), [KEY_F15] = K(0x18, 0x66), [KEY_F16] = K(0x20, 0x67),
	[KEY_F17] = K(0x28, 0x68), [KEY_F18] = K(0x30, 0x69), [KEY_F19] = K(0x38, 0x6a), [KEY_F20] = K(0x40, 0x6b),
	[KEY_F21] = K(0x48, 0x6c), [KEY_F22] = K(0x50, 0x6d), [KEY_F23] = K(0x57, 0x6e), [KEY_F24] = K(0x5f, 0x76),
	/* power and multimedia keys */
	[KEY_POWER] = E(0x37, 0x5e), [KEY_SLEEP] = E(0x3f, 0x5f), [KEY_WAKEUP] = E(0x5e, 0x63),
	[KEY_MUTE] = E(0x23, 0x20), [KEY_VOLUMEDOWN] = E(0x21, 0x2e), [KEY_VOLUMEUP] = E(0x32, 0x30),
	[KEY_NEXTSONG] = E(0x4d, 0x19), [KEY_PREVIOUSSONG] = E(0x15, 0x10), [KEY_PLAYPAUSE] = E(0x34, 0x22),
	[KEY_STOPCD] = E(0x3b, 0x24), [KEY_MEDIA] = E(0x50, 0x6d), [KEY_CALC] = E(0x2b, 0x21),
	[KEY_MAIL] = E(0x48, 0x6c), [KEY_COMPUTER] = E(0x40, 0x6b), [KEY_SEARCH] = E(0x10, 0x65),
	[KEY_HOMEPAGE] = E(0x3a, 0x32), [KEY_BACK] = E(0x38, 0x6a), [KEY_FORWARD] = E(0x30, 0x69),
	[KEY_STOP] = E(0x28, 0x68), [KEY_REFRESH] = E(0x20, 0x67), [KEY_BOOKMARKS] = E(0x18, 0x66),
};

/* Print Screen is a fake shift and the keypad's '*' behind 0xE0; Pause sends Ctrl and Num Lock
 * behind 0xE1, press and release at once, and nothing when let go. */
static const uint8_t print_make[] = {0xe0, 0x12, 0xe0, 0x7c};
static const uint8_t print_break[] = {0xe0, 0xf0, 0x7c, 0xe0, 0xf0, 0x12};
static const uint8_t pause_make[] = {0xe1, 0x14, 0x77, 0xe1, 0xf0, 0x14, 0xf0, 0x77};
/* clang-format on */
#undef K
#undef E

#define SEQ_MAX 8

/* The controller's translation of one set 2 code to set 1, found in the key table. Bytes from
 * 0x80 up (replies, prefixes) pass unchanged but 0x83 (F7, and the ID's second byte) and 0x84
 * (Alt+SysRq); 0x00 (overrun) becomes 0xFF and the set query's answer 2 becomes 0x41, as the
 * 8042's table has them. */
static uint8_t translate(uint8_t b)
{
	if (b == 0x00)
		return 0xff;
	if (b == 0x02)
		return 0x41;
	if (b == 0x84)
		return 0x54;
	if (b >= 0x80 && b != 0x83)
		return b;
	for (size_t i = 0; i < ARRAY_SIZE(keys); i++)
		if (keys[i].set2 == b)
			return keys[i].set1;
	return 0xff; /* a code no key of this keyboard sends */
}

/* Translates b, remembering a release prefix in *brk; false when b was that prefix. */
static bool translate_byte(bool *brk, uint8_t b, uint8_t *out)
{
	if (b == 0xf0) {
		*brk = true;
		return false;
	}
	*out = (uint8_t)(translate(b) | (*brk ? 0x80 : 0));
	*brk = false;
	return true;
}

static int copy_sequence(uint8_t out[SEQ_MAX], const uint8_t *seq, size_t n)
{
	memcpy(out, seq, n);
	return (int)n;
}

/* The set 2 bytes for a key press or release; -1 for a key this keyboard does not have. */
static int set2_sequence(uint16_t code, bool pressed, uint8_t out[SEQ_MAX])
{
	if (code == KEY_PAUSE)
		return pressed ? copy_sequence(out, pause_make, sizeof(pause_make)) : 0;
	if (code == KEY_SYSRQ)
		return pressed ? copy_sequence(out, print_make, sizeof(print_make))
			       : copy_sequence(out, print_break, sizeof(print_break));
	if (code >= ARRAY_SIZE(keys) || !keys[code].set2)
		return -1;
	int n = 0;
	if (keys[code].e0)
		out[n++] = 0xe0;
	if (!pressed)
		out[n++] = 0xf0;
	out[n++] = keys[code].set2;
	return n;
}

/* The key's bytes in scan code set `set` (1 or 2); -1 for an unknown key. Set 1 is what the
 * controller's translation makes of set 2. */
static int key_sequence(uint8_t set, uint16_t code, bool pressed, uint8_t out[SEQ_MAX])
{
	if (set == 2)
		return set2_sequence(code, pressed, out);
	uint8_t s2[SEQ_MAX];
	int n = set2_sequence(code, pressed, s2), m = 0;
	bool brk = false;
	for (int i = 0; i < n; i++)
		if (translate_byte(&brk, s2[i], &out[m]))
			m++;
	return n < 0 ? -1 : m;
}

/* --- the output buffer and interrupts ------------------------------------------------- */

static void set_line(struct i8042 *k, unsigned i, bool level)
{
	if (k->irq_level[i] == level)
		return;
	k->irq_level[i] = level;
	k->machine->set_irq(k->machine, i ? I8042_IRQ_MOUSE : I8042_IRQ_KEYBOARD, level);
}

static void sync_irqs(struct i8042 *k)
{
	bool full = k->status & STAT_OBF, aux = k->status & STAT_AUX_OBF;
	set_line(k, 0, full && !aux && (k->ram[0] & CB_KBD_INT));
	set_line(k, 1, full && aux && (k->ram[0] & CB_AUX_INT));
}

/* The keyboard's next byte as the controller passes it on (translated when asked to). */
static bool keyboard_byte(struct i8042 *k, uint8_t *out)
{
	uint16_t v;
	while (queue_pop(&k->kbd.q, &v)) {
		k->kbd.last = (uint8_t)v;
		if (!(k->ram[0] & CB_XLATE)) {
			*out = (uint8_t)v;
			return true;
		}
		if (translate_byte(&k->xlate_break, (uint8_t)v, out))
			return true;
	}
	return false;
}

/* Fills an empty output buffer: the controller's replies first, then the keyboard, then the
 * mouse, each device only while its interface is enabled. */
static void refill(struct i8042 *k)
{
	if (k->status & STAT_OBF)
		return;
	uint16_t v;
	uint8_t b;
	bool aux;
	if (queue_pop(&k->ctrl, &v)) {
		b = (uint8_t)v, aux = v & AUX_FLAG;
	} else if (!(k->ram[0] & CB_KBD_DIS) && keyboard_byte(k, &b)) {
		aux = false;
	} else if (!(k->ram[0] & CB_AUX_DIS) && queue_pop(&k->mouse.q, &v)) {
		b = (uint8_t)v, aux = true;
		k->mouse.last = b;
	} else {
		return;
	}
	k->obuf = b;
	k->status = (uint8_t)((k->status & ~STAT_AUX_OBF) | STAT_OBF | (aux ? STAT_AUX_OBF : 0));
}

static void mouse_stream(struct i8042 *k);

/* After any change: stream the mouse's motion, refill the output buffer, set the lines. */
static void update(struct i8042 *k)
{
	mouse_stream(k);
	refill(k);
	sync_irqs(k);
}

/* --- the keyboard ---------------------------------------------------------------------- */

static void keyboard_defaults(struct i8042_keyboard *kb, bool scanning)
{
	queue_clear(&kb->q);
	kb->pending = 0;
	kb->set = 2;
	kb->leds = 0;
	kb->typematic = 0x2b; /* 10.9 characters a second after 500 ms */
	kb->scanning = scanning;
}

static void keyboard_parameter(struct i8042 *k, uint8_t cmd, uint8_t b)
{
	struct i8042_keyboard *kb = &k->kbd;
	if (cmd == 0xed) {
		kb->leds = b & 7;
	} else if (cmd == 0xf3) {
		kb->typematic = b;
	} else if (b == 0) { /* 0xF0 0: which set */
		KBD_SEND(k, ACK, kb->set);
		return;
	} else if (b == 1 || b == 2) {
		kb->set = b;
	} else {
		KBD_SEND(k, RESEND); /* set 3 is not offered */
		return;
	}
	KBD_SEND(k, ACK);
}

/* A byte the guest wrote to the keyboard: a command, or the parameter one waits for (a byte
 * with the top bit set is a new command instead, as on a real keyboard). */
static void keyboard_write(struct i8042 *k, uint8_t b)
{
	struct i8042_keyboard *kb = &k->kbd;
	uint8_t cmd = kb->pending;
	kb->pending = 0;
	if (cmd && !(b & 0x80)) {
		keyboard_parameter(k, cmd, b);
		return;
	}
	switch (b) {
	case 0xed: /* LEDs */
	case 0xf0: /* scan code set */
	case 0xf3: /* typematic rate */
		kb->pending = b;
		KBD_SEND(k, ACK);
		break;
	case 0xee: KBD_SEND(k, ECHO); break;
	case 0xf2: KBD_SEND(k, ACK, 0xab, 0x83); break; /* an MF2 keyboard */
	case 0xf4:
		queue_clear(&kb->q);
		kb->scanning = true;
		KBD_SEND(k, ACK);
		break;
	case 0xf5: /* defaults, and stop scanning */
	case 0xf6: /* defaults, scanning */
		keyboard_defaults(kb, b == 0xf6);
		KBD_SEND(k, ACK);
		break;
	case 0xfe: KBD_SEND(k, kb->last); break;
	case 0xff:
		keyboard_defaults(kb, true);
		KBD_SEND(k, ACK, BAT_OK);
		break;
	default: KBD_SEND(k, RESEND); break;
	}
}

/* --- the mouse ------------------------------------------------------------------------- */

static int clamp(int v, int lo, int hi)
{
	return v < lo ? lo : v > hi ? hi : v;
}

static void mouse_clear_motion(struct i8042_mouse *ms)
{
	ms->dx = ms->dy = ms->dz = 0;
	ms->sent_buttons = ms->buttons;
}

static void mouse_defaults(struct i8042_mouse *ms)
{
	ms->pending = 0;
	ms->rate = 100;
	ms->resolution = 2; /* 4 counts a millimetre */
	ms->scale21 = ms->remote = ms->reporting = false;
	mouse_clear_motion(ms);
}

/* Takes what one packet can carry of *acc (lo..hi); *over when more was there. */
static int take(int *acc, int lo, int hi, bool *over)
{
	int v = clamp(*acc, lo, hi);
	*over = v != *acc;
	*acc -= v;
	return v;
}

/* 2:1 scaling of a stream report: small moves as the PS/2 mouse's table has them, then double. */
static int scale21(int v)
{
	static const int small[] = {0, 1, 1, 3, 6, 9};
	int m = v < 0 ? -v : v;
	int s = m < 6 ? small[m] : 2 * m;
	return v < 0 ? -s : s;
}

static unsigned mouse_packet(struct i8042_mouse *ms, bool stream, uint8_t p[4])
{
	bool xo, yo, zo;
	int x = take(&ms->dx, -256, 255, &xo), y = take(&ms->dy, -256, 255, &yo), z = take(&ms->dz, -8, 7, &zo);
	if (stream && ms->scale21) {
		int sx = scale21(x), sy = scale21(y);
		x = clamp(sx, -256, 255), y = clamp(sy, -256, 255);
		xo |= x != sx, yo |= y != sy;
	}
	unsigned b = ms->buttons;
	ms->sent_buttons = b;
	p[0] = (uint8_t)(0x08 | (b & 7) | (x < 0 ? 0x10 : 0) | (y < 0 ? 0x20 : 0) | (xo ? 0x40 : 0) | (yo ? 0x80 : 0));
	p[1] = (uint8_t)x;
	p[2] = (uint8_t)y;
	p[3] = (uint8_t)z;
	return ms->id == 3 ? 4 : 3;
}

/* Stream mode with reporting on: queue packets while there is news and room (what does not
 * fit waits, summed, for the guest to read). */
static void mouse_stream(struct i8042 *k)
{
	struct i8042_mouse *ms = &k->mouse;
	unsigned size = ms->id == 3 ? 4 : 3;
	uint8_t p[4];
	while (ms->reporting && !ms->remote && !ms->wrap && queue_room(&ms->q) >= size &&
	       (ms->dx || ms->dy || ms->dz || ms->buttons != ms->sent_buttons))
		queue_push(&ms->q, p, mouse_packet(ms, true, p), 0);
}

static void mouse_parameter(struct i8042 *k, uint8_t cmd, uint8_t b)
{
	struct i8042_mouse *ms = &k->mouse;
	if (cmd == 0xe8) {
		if (b > 3) {
			MOUSE_SEND(k, RESEND);
			return;
		}
		ms->resolution = b;
	} else {
		ms->rate = b;
		memmove(ms->rates, ms->rates + 1, 2);
		ms->rates[2] = b;
		if (ms->rates[0] == 200 && ms->rates[1] == 100 && ms->rates[2] == 80)
			ms->id = 3; /* the IntelliMouse knock */
	}
	MOUSE_SEND(k, ACK);
}

static void mouse_status(struct i8042 *k)
{
	struct i8042_mouse *ms = &k->mouse;
	unsigned b = ms->buttons;
	uint8_t s = (uint8_t)((ms->remote ? 0x40 : 0) | (ms->reporting ? 0x20 : 0) | (ms->scale21 ? 0x10 : 0) |
			      (b & I8042_BUTTON_LEFT ? 4 : 0) | (b & I8042_BUTTON_MIDDLE ? 2 : 0) |
			      (b & I8042_BUTTON_RIGHT ? 1 : 0));
	MOUSE_SEND(k, ACK, s, ms->resolution, ms->rate);
}

static void mouse_command(struct i8042 *k, uint8_t b)
{
	struct i8042_mouse *ms = &k->mouse;
	uint8_t p[5];
	switch (b) {
	case 0xe6: ms->scale21 = false; break;
	case 0xe7: ms->scale21 = true; break;
	case 0xe8: /* resolution */
	case 0xf3: /* sample rate */ ms->pending = b; break;
	case 0xe9: mouse_status(k); return;
	case 0xea: /* stream mode */
	case 0xf0: /* remote mode */
		ms->remote = b == 0xf0;
		mouse_clear_motion(ms);
		break;
	case 0xeb: /* read data: a packet whatever the mode */
		p[0] = ACK;
		enqueue(&ms->q, &k->mouse_dropped, p, 1 + mouse_packet(ms, false, p + 1), 0);
		return;
	case 0xec: ms->wrap = false; break;
	case 0xee: ms->wrap = true; break;
	case 0xf2: MOUSE_SEND(k, ACK, ms->id); return;
	case 0xf4:
	case 0xf5:
		ms->reporting = b == 0xf4;
		mouse_clear_motion(ms);
		break;
	case 0xf6: mouse_defaults(ms); break;
	case 0xfe: MOUSE_SEND(k, ms->last); return;
	case 0xff:
		mouse_defaults(ms);
		ms->id = 0;
		ms->wrap = false;
		MOUSE_SEND(k, ACK, BAT_OK, 0x00);
		return;
	default: MOUSE_SEND(k, RESEND); return;
	}
	MOUSE_SEND(k, ACK);
}

/* A byte the guest sent to the mouse (0xD4): echoed in wrap mode; a parameter; a command, which
 * discards the bytes the mouse had not sent yet (changes of mode also its motion). */
static void mouse_write(struct i8042 *k, uint8_t b)
{
	struct i8042_mouse *ms = &k->mouse;
	if (ms->wrap && b != 0xec && b != 0xff) {
		MOUSE_SEND(k, b);
		return;
	}
	uint8_t cmd = ms->pending;
	ms->pending = 0;
	if (cmd) {
		mouse_parameter(k, cmd, b);
		return;
	}
	if (b != 0xfe)
		queue_clear(&ms->q);
	mouse_command(k, b);
}

/* --- the controller -------------------------------------------------------------------- */

static void reset_machine(struct i8042 *k, const char *why)
{
	k->machine->request_exit(k->machine, MACHINE_REBOOT, why);
}

static uint8_t output_port(const struct i8042 *k)
{
	return (uint8_t)((k->outport & ~(OUT_OBF | OUT_AUX_OBF)) | (k->irq_level[0] ? OUT_OBF : 0) |
			 (k->irq_level[1] ? OUT_AUX_OBF : 0));
}

static void controller_command(struct i8042 *k, uint8_t c)
{
	k->pending = 0;
	if (c >= 0x20 && c < 0x40) { /* read controller RAM (0x20: the command byte) */
		CTRL_SEND(k, 0, k->ram[c & 0x1f]);
	} else if ((c >= 0x60 && c < 0x80) || (c >= 0xd1 && c <= 0xd4)) {
		k->pending = c; /* its data byte follows on port 0x60 */
	} else if (c >= 0xf0) { /* pulse output lines 0-3 where the bit is clear; line 0 resets */
		if (!(c & 1))
			reset_machine(k, "guest reset the machine (keyboard controller)");
	} else {
		switch (c) {
		case 0xa7: k->ram[0] |= CB_AUX_DIS; break;
		case 0xa8: k->ram[0] &= (uint8_t)~CB_AUX_DIS; break;
		case 0xa9: /* mouse interface test */
		case 0xab: /* keyboard interface test */ CTRL_SEND(k, 0, 0x00); break;
		case 0xaa:
			k->status |= STAT_SYS;
			CTRL_SEND(k, 0, 0x55);
			break;
		case 0xad: k->ram[0] |= CB_KBD_DIS; break;
		case 0xae: k->ram[0] &= (uint8_t)~CB_KBD_DIS; break;
		case 0xc0: CTRL_SEND(k, 0, 0x80); break; /* input port: keyboard not inhibited */
		case 0xd0: CTRL_SEND(k, 0, output_port(k)); break;
		case 0xdd: k->outport &= (uint8_t)~OUT_A20; break;
		case 0xdf: k->outport |= OUT_A20; break;
		default: k->unknown_commands++; break;
		}
	}
}

static void data_write(struct i8042 *k, uint8_t b)
{
	uint8_t c = k->pending;
	k->pending = 0;
	if (c >= 0x60 && c < 0x80) {
		k->ram[c & 0x1f] = b;
		if (c == 0x60)
			k->status = (uint8_t)((k->status & ~STAT_SYS) | (b & CB_SYS));
		return;
	}
	switch (c) {
	case 0xd1:
		k->outport = b;
		if (!(b & OUT_RESET))
			reset_machine(k, "guest reset the machine (keyboard controller output port)");
		break;
	case 0xd2: CTRL_SEND(k, 0, b); break;
	case 0xd3: CTRL_SEND(k, AUX_FLAG, b); break;
	case 0xd4: mouse_write(k, b); break;
	default: keyboard_write(k, b); break;
	}
}

/* The byte in the output buffer; reading empties it (its line falls) and the next one, if
 * any, takes its place. Read with nothing there, it gives the last byte again. */
static uint8_t data_read(struct i8042 *k)
{
	uint8_t b = k->obuf;
	if (k->status & STAT_OBF) {
		k->status &= (uint8_t) ~(STAT_OBF | STAT_AUX_OBF);
		sync_irqs(k);
	}
	return b;
}

static void port_access(struct i8042 *k, bool command_port, uint8_t *data, uint32_t len, bool is_write)
{
	pthread_mutex_lock(&k->lock);
	if (is_write && command_port) {
		k->status |= STAT_CMD;
		controller_command(k, data[0]);
	} else if (is_write) {
		k->status &= (uint8_t)~STAT_CMD;
		data_write(k, data[0]);
	} else {
		memset(data, 0xff, len);
		data[0] = command_port ? k->status : data_read(k);
	}
	update(k);
	pthread_mutex_unlock(&k->lock);
}

void i8042_data_io(void *opaque, uint64_t offset, uint8_t *data, uint32_t len, bool is_write)
{
	(void)offset;
	if (len)
		port_access(opaque, false, data, len, is_write);
}

void i8042_cmd_io(void *opaque, uint64_t offset, uint8_t *data, uint32_t len, bool is_write)
{
	(void)offset;
	if (len)
		port_access(opaque, true, data, len, is_write);
}

void i8042_init(struct i8042 *k, struct machine *m)
{
	memset(k, 0, sizeof(*k));
	pthread_mutex_init(&k->lock, NULL);
	k->machine = m;
	k->status = STAT_UNLOCKED;
	k->ram[0] = CB_KBD_DIS | CB_AUX_DIS | CB_XLATE; /* quiet until the firmware sets it up */
	k->outport = OUT_RESET | OUT_A20 | OUT_IDLE;
	keyboard_defaults(&k->kbd, true);
	mouse_defaults(&k->mouse);
}

void i8042_destroy(struct i8042 *k)
{
	pthread_mutex_destroy(&k->lock);
}

/* --- the seat's side ------------------------------------------------------------------- */

void i8042_key(struct i8042 *k, uint16_t linux_keycode, bool pressed)
{
	pthread_mutex_lock(&k->lock);
	uint8_t seq[SEQ_MAX];
	int n = key_sequence(k->kbd.set, linux_keycode, pressed, seq);
	if (n < 0)
		k->unknown_keys++;
	else if (k->kbd.scanning && n > 0)
		enqueue(&k->kbd.q, &k->kbd_dropped, seq, (unsigned)n, 0);
	update(k);
	pthread_mutex_unlock(&k->lock);
}

void i8042_mouse(struct i8042 *k, int dx, int dy, int wheel, unsigned buttons)
{
	pthread_mutex_lock(&k->lock);
	struct i8042_mouse *ms = &k->mouse;
	ms->buttons = buttons & 7;
	if (ms->reporting || ms->remote) {
		/* Packets count y up and the wheel towards the user. */
		dx = clamp(dx, -MOTION_CAP, MOTION_CAP);
		dy = clamp(dy, -MOTION_CAP, MOTION_CAP);
		wheel = ms->id == 3 ? clamp(wheel, -MOTION_CAP, MOTION_CAP) : 0;
		ms->dx = clamp(ms->dx + dx, -MOTION_CAP, MOTION_CAP);
		ms->dy = clamp(ms->dy - dy, -MOTION_CAP, MOTION_CAP);
		ms->dz = clamp(ms->dz - wheel, -MOTION_CAP, MOTION_CAP);
	}
	update(k);
	pthread_mutex_unlock(&k->lock);
}

static unsigned button_bit(uint16_t code)
{
	switch (code) {
	case BTN_LEFT: return I8042_BUTTON_LEFT;
	case BTN_RIGHT: return I8042_BUTTON_RIGHT;
	case BTN_MIDDLE: return I8042_BUTTON_MIDDLE;
	default: return 0;
	}
}

/* Adds an event's value to one of the batch's sums, within what i8042_mouse keeps anyway. */
static void add_motion(int *sum, int32_t value)
{
	*sum = clamp(*sum + clamp(value, -MOTION_CAP, MOTION_CAP), -MOTION_CAP, MOTION_CAP);
}

static void mouse_events(struct i8042 *k, const struct display_input_event *ev, unsigned n)
{
	int dx = 0, dy = 0, wheel = 0;
	bool news = false;
	for (unsigned i = 0; i < n; i++) {
		const struct display_input_event *e = &ev[i];
		if (e->type == EV_REL && (e->code == REL_X || e->code == REL_Y || e->code == REL_WHEEL)) {
			add_motion(e->code == REL_X ? &dx : e->code == REL_Y ? &dy : &wheel, e->value);
			news = true;
		} else if (e->type == EV_KEY && button_bit(e->code)) {
			if (e->value)
				k->seat_buttons |= button_bit(e->code);
			else
				k->seat_buttons &= ~button_bit(e->code);
			news = true;
		} else if (e->type == EV_SYN && e->code == SYN_REPORT && news) {
			i8042_mouse(k, dx, dy, wheel, k->seat_buttons);
			dx = dy = wheel = 0;
			news = false;
		}
	}
	if (news)
		i8042_mouse(k, dx, dy, wheel, k->seat_buttons);
}

void i8042_input(struct i8042 *k, uint32_t device, const struct display_input_event *ev, unsigned n)
{
	if (device == DISPLAY_INPUT_MOUSE) {
		mouse_events(k, ev, n);
		return;
	}
	if (device != DISPLAY_INPUT_KEYBOARD)
		return;
	for (unsigned i = 0; i < n; i++)
		if (ev[i].type == EV_KEY)
			i8042_key(k, ev[i].code, ev[i].value != 0);
}

bool i8042_keyboard_active(struct i8042 *k)
{
	pthread_mutex_lock(&k->lock);
	bool on = !(k->ram[0] & CB_KBD_DIS) && (k->ram[0] & CB_KBD_INT) && k->kbd.scanning;
	pthread_mutex_unlock(&k->lock);
	return on;
}

bool i8042_mouse_active(struct i8042 *k)
{
	pthread_mutex_lock(&k->lock);
	bool on = !(k->ram[0] & CB_AUX_DIS) && (k->ram[0] & CB_AUX_INT) && k->mouse.reporting;
	pthread_mutex_unlock(&k->lock);
	return on;
}
