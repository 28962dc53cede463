/* i8042: the PC keyboard controller at ports 0x60 (data) and 0x64 (status and command), with a
 * PS/2 keyboard on its first port (IRQ 1) and a PS/2 mouse on its auxiliary port (IRQ 12).
 * Firmware needs it: OVMF and boot loaders read keys through the i8042, not virtio-input.
 *
 * The controller: status register, command byte, self and interface tests, interface disable
 * and enable, output port (reset line, A20 kept as written), pulsed reset, the output buffer
 * written as if from either device, and translation of the keyboard's scan code set 2 to set 1
 * when the command byte asks for it. The keyboard: scan code sets 1 and 2, identify, echo, LEDs,
 * typematic, enable, disable, defaults, reset. The mouse: a three-button PS/2 mouse that becomes
 * an IntelliMouse (ID 3, wheel) after the sample rates 200, 100, 80; stream and remote modes,
 * resolution, scaling, status, wrap mode, reset.
 *
 * One byte at a time sits in the output buffer, taken from the controller's own replies first,
 * then the keyboard, then the mouse (each device only while its interface is enabled). Each
 * source has a bounded queue (I8042_QUEUE bytes): what does not fit is dropped and counted; a
 * key's whole sequence is queued or none of it; mouse motion is summed while its queue is full.
 * An interrupt line is high while the output buffer holds a byte of its device and the command
 * byte enables that device's interrupt, and falls when the guest reads it: a fresh edge for each
 * byte, as the ISA interrupt controllers expect.
 *
 * Threads: the port handlers run on vCPU threads; i8042_key, i8042_mouse, i8042_input and the
 * i8042_*_active queries run on the thread that receives the seat's input (the virtio-gpu
 * device's I/O thread, which serves the display channel). Every entry point takes the device's
 * lock and releases it before returning; set_irq and request_exit are called with it held. */
#ifndef SHOJI_VMM_DEVICES_I8042_H
#define SHOJI_VMM_DEVICES_I8042_H

#include <pthread.h>
#include <stdbool.h>
#include <stdint.h>

#include "../../common/display_proto.h"
#include "../machine.h"

#define I8042_IRQ_KEYBOARD 1
#define I8042_IRQ_MOUSE    12
#define I8042_QUEUE        64 /* bytes each source may hold for the output buffer */

/* The mouse's buttons in i8042_mouse, as a PS/2 packet carries them. */
#define I8042_BUTTON_LEFT   0x1
#define I8042_BUTTON_RIGHT  0x2
#define I8042_BUTTON_MIDDLE 0x4

struct i8042_queue {
	uint16_t buf[I8042_QUEUE]; /* a byte, with 0x100 set for the controller's aux replies */
	unsigned head, count;
};

struct i8042_keyboard {
	struct i8042_queue q;
	uint8_t pending; /* a command waiting for its parameter (0xED, 0xF0, 0xF3), or 0 */
	uint8_t set;     /* scan code set: 1 or 2 */
	uint8_t leds, typematic;
	uint8_t last; /* the last byte it sent, for 0xFE (resend) */
	bool scanning;
};

struct i8042_mouse {
	struct i8042_queue q;
	uint8_t pending; /* 0xE8 or 0xF3 waiting for its parameter, or 0 */
	uint8_t rate, resolution, id, last;
	uint8_t rates[3]; /* the last three sample rates set, oldest first */
	bool reporting, remote, scale21, wrap;
	int dx, dy, dz; /* motion not yet sent, in packet orientation (y up, z down) */
	unsigned buttons, sent_buttons;
};

struct i8042 {
	pthread_mutex_t lock;
	struct machine *machine;
	uint8_t status;
	uint8_t ram[32]; /* controller RAM; byte 0 is the command byte */
	uint8_t outport;
	uint8_t pending;   /* a controller command waiting for its data byte (0x60-0x7F, 0xD1-0xD4), or 0 */
	uint8_t obuf;      /* the output buffer; it keeps its last byte once read */
	bool xlate_break;  /* translation saw 0xF0: the next code is a release */
	bool irq_level[2]; /* IRQ 1, IRQ 12 */
	struct i8042_queue ctrl;
	struct i8042_keyboard kbd;
	struct i8042_mouse mouse;
	unsigned seat_buttons; /* i8042_input: the mouse buttons the seat holds (its thread only) */
	/* Counters: bytes or sequences dropped because a queue was full; key codes with no scan
	 * code; controller commands it does not know (ignored). */
	uint64_t ctrl_dropped, kbd_dropped, mouse_dropped, unknown_keys, unknown_commands;
};

void i8042_init(struct i8042 *k, struct machine *m);
void i8042_destroy(struct i8042 *k);

/* Port handlers, `opaque` the struct i8042: i8042_data_io on port 0x60, i8042_cmd_io on port
 * 0x64 (offset 0 is the port; a wider access uses its first byte and reads 0xFF above it). */
void i8042_data_io(void *opaque, uint64_t offset, uint8_t *data, uint32_t len, bool is_write);
void i8042_cmd_io(void *opaque, uint64_t offset, uint8_t *data, uint32_t len, bool is_write);

/* A key of the seat, by its Linux evdev code (KEY_*), pressed or released (a repeat is another
 * press). Sent as the keyboard's current scan code set would (the controller may translate it);
 * dropped while the keyboard does not scan. Unknown codes are dropped and counted. */
void i8042_key(struct i8042 *k, uint16_t linux_keycode, bool pressed);
/* Relative motion as evdev gives it (dx right, dy down, wheel up), and the buttons now held
 * (I8042_BUTTON_*). Reported when the guest enabled reporting: in stream mode as packets now
 * (or once its queue has room), in remote mode when the guest asks (0xEB). */
void i8042_mouse(struct i8042 *k, int dx, int dy, int wheel, unsigned buttons);
/* One batch of the seat's evdev events for `device` (enum display_input_device): keyboard keys
 * go to i8042_key, a relative mouse's motion, wheel and buttons to i8042_mouse at each
 * SYN_REPORT. An absolute tablet's events are ignored: PS/2 has no absolute pointer. */
void i8042_input(struct i8042 *k, uint32_t device, const struct display_input_event *ev, unsigned n);

/* Whether the guest has its keyboard interface enabled with its interrupt, and the keyboard
 * scanning; the same for the mouse with reporting on. The seat sends keys (pointer motion)
 * here only while true, and never to another device at the same time. */
bool i8042_keyboard_active(struct i8042 *k);
bool i8042_mouse_active(struct i8042 *k);

#endif
