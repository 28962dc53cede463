/* display_proto: the display channel between one shoji-vmm (its virtio-gpu scanout and
 * virtio-input devices) and shoji-seat. A SOCK_SEQPACKET Unix socket, one message a packet:
 * a struct display_msg_header then the body its type names, all little-endian (x86 host byte
 * order). The monitor listens (`--display socket:PATH`, mode 0600, made before the jail); the
 * seat connects. Pixels never travel on the socket: the monitor shares each scanout surface as a
 * sealed memfd, and sends damage rectangles as the guest flushes. Both sides treat every field
 * from the other as untrusted. */
#ifndef SHOJI_COMMON_DISPLAY_PROTO_H
#define SHOJI_COMMON_DISPLAY_PROTO_H

#include <stdint.h>

#define DISPLAY_PROTO_VERSION 1
#define DISPLAY_MSG_MAX       32768 /* no packet is larger, header included */
#define DISPLAY_MAX_WIDTH     8192
#define DISPLAY_MAX_HEIGHT    8192
#define DISPLAY_DAMAGE_WINDOW                                                                                          \
	1                      /* damage messages in flight before the seat's ACK: the                                 \
				  monitor never writes a surface the seat may be reading */
#define DISPLAY_CURSOR_SIZE 64 /* cursor images are 64x64 XRGB8888 with alpha in X */
#define DISPLAY_INPUT_MAX   64 /* events in one INPUT message */

enum display_msg_type {
	/* monitor -> seat */
	DISPLAY_MSG_HELLO = 1,       /* struct display_hello; first packet on a connection */
	DISPLAY_MSG_SURFACE = 2,     /* struct display_surface + one memfd (SCM_RIGHTS) */
	DISPLAY_MSG_DAMAGE = 3,      /* struct display_damage */
	DISPLAY_MSG_DISABLE = 4,     /* no body: the scanout is off (guest disabled it) */
	DISPLAY_MSG_CURSOR = 5,      /* struct display_cursor + 64*64*4 bytes of pixels */
	DISPLAY_MSG_CURSOR_MOVE = 6, /* struct display_cursor_move */
	/* seat -> monitor */
	DISPLAY_MSG_INPUT = 64,          /* struct display_input + count * struct display_input_event */
	DISPLAY_MSG_ACK = 65,            /* struct display_ack: damage up to seq is copied out of the
					    surface (the monitor may write it again) */
	DISPLAY_MSG_PREFERRED_SIZE = 66, /* struct display_size: the seat's area for this VM */
};

struct display_msg_header {
	uint32_t type; /* enum display_msg_type */
	uint32_t len;  /* bytes of body after this header */
};

struct display_hello {
	uint32_t version;       /* DISPLAY_PROTO_VERSION */
	uint32_t flags;         /* none defined; 0 */
	uint32_t width, height; /* the preferred mode the monitor offers the guest */
};

/* DRM fourcc little-endian formats; the monitor sends only XRGB8888 for now. */
#define DISPLAY_FORMAT_XRGB8888 0x34325258u /* 'XR24': bytes B, G, R, X */

struct display_surface {
	uint32_t width, height; /* 1..DISPLAY_MAX_* */
	uint32_t stride;        /* bytes a row, >= width * 4 */
	uint32_t format;        /* DISPLAY_FORMAT_* */
	uint64_t offset;        /* of pixel (0,0) in the memfd */
	uint64_t size;          /* bytes the seat may map from offset 0; the memfd is sealed
				   against shrinking, so mapping [0, size) is safe */
};

struct display_damage {
	uint32_t seq;                 /* increases by one each DAMAGE message */
	uint32_t x, y, width, height; /* within the current surface */
};

struct display_cursor {
	uint32_t hot_x, hot_y;
	int32_t x, y;     /* position on the surface */
	uint32_t visible; /* 0 hides the cursor (pixels may then be absent) */
};

struct display_cursor_move {
	int32_t x, y;
};

enum display_input_device {
	DISPLAY_INPUT_KEYBOARD = 0, /* EV_KEY key codes, EV_SYN */
	DISPLAY_INPUT_TABLET = 1,   /* EV_ABS ABS_X/ABS_Y in 0..32767, EV_KEY BTN_*, EV_REL wheel */
	DISPLAY_INPUT_MOUSE = 2,    /* EV_REL REL_X/REL_Y/REL_WHEEL, EV_KEY BTN_* */
};

struct display_input_event { /* a Linux evdev event, as virtio-input carries it */
	uint16_t type, code;
	int32_t value;
};

struct display_input {
	uint32_t device; /* enum display_input_device */
	uint32_t count;  /* 1..DISPLAY_INPUT_MAX events follow; a batch ends with
			    EV_SYN/SYN_REPORT */
};

struct display_ack {
	uint32_t seq; /* the last DAMAGE seq the seat has presented */
};

struct display_size {
	uint32_t width, height;
};

#endif
