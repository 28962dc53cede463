/* shoji-agent: the guest's side of the agent protocol (common/agent_proto.h). It listens on
 * vsock port AGENT_VSOCK_PORT, takes one connection at a time from the host (CID 2: the VM's
 * monitor), and answers: guest info, power-off and reboot, the wall clock set after a pause or
 * a host suspend, the display resized, the clipboard read or written. It also takes the USB
 * devices the host gives the VM (agent_usb.c, on its own port). The host side is not
 * trusted either: every message is framed, bounded and checked before it is acted on.
 *
 * What the guest's desktop does (clipboard, resize, power) is done by commands given on the
 * command line, so that one agent serves a busybox test system, a Wayland desktop (wl-paste,
 * wl-copy, wlr-randr) and a systemd image (systemctl) alike. Single-threaded. */
#ifndef SHOJI_AGENT_AGENT_H
#define SHOJI_AGENT_AGENT_H

#include <stddef.h>
#include <stdint.h>

#include "../common/agent_proto.h"

/* Commands run through /bin/sh -c; NULL: the function is not offered (not in HELLO). */
struct agent_config {
	unsigned port;
	const char *clip_get;        /* prints the clipboard's text on stdout */
	const char *clip_set;        /* takes the new clipboard text on stdin */
	const char *resize;          /* run with W and H in the environment (SHOJI_WIDTH, SHOJI_HEIGHT) */
	const char *poweroff;        /* NULL: systemctl poweroff under systemd, else sync and power off */
	const char *reboot;          /* the same for reboot */
	uint32_t clip_max;           /* the most clipboard bytes taken or given (at most SHOJI_CLIPBOARD_MAX) */
	char token[AGENT_TOKEN_LEN]; /* this VM's, which the host's hello must carry */
};

/* agent_token.c: this boot's token, from the kernel command line (AGENT_TOKEN_ARG) or fw_cfg
 * (AGENT_TOKEN_FW_CFG under /sys/firmware/qemu_fw_cfg). 0, or -1 when there is none. */
int agent_token_load(char token[AGENT_TOKEN_LEN]);

/* A reply to send: type and payload (owned by the caller of agent_handle until sent). */
struct agent_out {
	uint8_t type;
	uint8_t *payload;
	uint32_t len;
	int owned; /* payload was allocated for this reply */
	/* after the reply is sent: 0 nothing, else AGENT_SHUTDOWN or AGENT_REBOOT to carry out */
	uint8_t then;
};

/* agent_ops.c: what a checked message asks. Fills *out with the reply (out->type 0: none). */
void agent_handle(const struct agent_config *c, const struct agent_msg *m, struct agent_out *out);
/* The capability bits this configuration offers. */
uint32_t agent_caps(const struct agent_config *c);
/* Powers off or reboots the guest (AGENT_SHUTDOWN / AGENT_REBOOT); returns only on failure. */
void agent_power(const struct agent_config *c, uint8_t what);
/* The guest's info text (agent_info_parse's format) into buf; its length. */
uint32_t agent_info_text(char *buf, uint32_t size);

/* agent_cmd.c: the agent's clock for deadlines (CLOCK_MONOTONIC, ms). */
long agent_now_ms(void);

/* agent_usb.c: the listener for USB devices the host gives (common/usbip_handoff.h), or -1 with
 * a word on stderr (the agent then serves without it); and one connection on it served. */
int agent_usb_listen(void);
void agent_usb_serve(int ls);

/* agent_cmd.c: runs cmd through /bin/sh -c with input on its stdin (NULL: /dev/null), its stdout
 * read into a buffer of at most max bytes (*out, *out_len; out NULL: discarded), killed after
 * timeout_ms. Returns its exit status, or -1 when it could not run, timed out or said more. */
int agent_run(const char *cmd, const uint8_t *input, uint32_t in_len, uint8_t **out, uint32_t *out_len, uint32_t max,
	      int timeout_ms, char *const envp_extra[]);

#endif
