/* agent_proto: the framing of the guest agent's protocol (shoji-agent in the guest, over
 * vsock), shared by the agent and the host side, which is the VM's jailed monitor: it is the
 * process that already holds the guest's hostile words under seccomp, and shojid (root) only
 * ever sees what the monitor made of them, as JSON on the control socket.
 *
 * A frame is an 8-byte header, then the payload:
 *
 *   0  u16  magic  0x5341 ("AS" on the wire, little-endian)
 *   2  u8   version (AGENT_PROTO_VERSION, matched exactly: a peer speaking another is refused;
 *           a later version is to be offered in HELLO's capabilities, not here)
 *   3  u8   type (enum agent_msg_type)
 *   4  u32  payload length, little-endian, at most the reader's limit
 *
 * Either side may be hostile: the reader takes any bytes in any pieces, never holds more than
 * one header and one payload of at most its limit, and reports the first violation, after
 * which the stream is to be dropped. Text payloads (info) are key=value lines, checked by
 * agent_info_parse. Pure; any thread, one reader per stream. */
#ifndef SHOJI_COMMON_AGENT_PROTO_H
#define SHOJI_COMMON_AGENT_PROTO_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "err.h"

#define AGENT_PROTO_MAGIC   0x5341u
#define AGENT_PROTO_VERSION 1u
#define AGENT_HEADER_SIZE   8u
/* The largest payload either side sends: a clipboard's content (policy may allow less). */
#define AGENT_MAX_PAYLOAD (4u << 20)
/* The vsock port the agent listens on in the guest. */
#define AGENT_VSOCK_PORT 5900u
/* Any host process may connect to a guest's vsock ports, so the agent serves only a host that
 * knows the VM's token: 32 lowercase hex digits the monitor draws at each boot (getrandom) and
 * gives the guest alone, on the kernel command line of a direct boot (AGENT_TOKEN_ARG) or in the
 * fw_cfg file AGENT_TOKEN_FW_CFG of a firmware boot, never through the host's file system or
 * argv. The agent answers nothing, not even its hello, before the host's hello carries it. */
#define AGENT_TOKEN_LEN    32u
#define AGENT_TOKEN_ARG    "shoji.agent-token="
#define AGENT_TOKEN_FW_CFG "opt/org.shoji/agent-token"

enum agent_msg_type {
	AGENT_HELLO = 1,     /* both ways, first: u32 capability bits (AGENT_CAP_*); from the host
				followed by the VM's token (AGENT_TOKEN_LEN bytes, see below) */
	AGENT_INFO_REQ = 2,  /* host -> agent: empty */
	AGENT_INFO = 3,      /* agent -> host: key=value lines (agent_info_parse) */
	AGENT_SHUTDOWN = 4,  /* host -> agent: empty; the agent powers the guest off */
	AGENT_REBOOT = 5,    /* host -> agent: empty */
	AGENT_TIME_SET = 6,  /* host -> agent: u64 nanoseconds since the epoch (UTC) */
	AGENT_RESIZE = 7,    /* host -> agent: u32 width, u32 height */
	AGENT_CLIP_GET = 8,  /* host -> agent: empty; answered by AGENT_CLIP_DATA */
	AGENT_CLIP_DATA = 9, /* both ways: u8 kind (AGENT_CLIP_TEXT), then the bytes (agent_text_ok) */
	AGENT_ACK = 10,      /* agent -> host: u8 the type acknowledged, u8 status (0 done) */
	AGENT_TYPE_MAX = AGENT_ACK,
};

enum {
	AGENT_CAP_INFO = 1u << 0,
	AGENT_CAP_POWER = 1u << 1,
	AGENT_CAP_TIME = 1u << 2,
	AGENT_CAP_RESIZE = 1u << 3,
	AGENT_CAP_CLIPBOARD = 1u << 4,
};

/* A clipboard's kind: text/plain;charset=utf-8, the only one so far. */
#define AGENT_CLIP_TEXT 0u

/* Little-endian fields of payloads, for both sides. */
static inline uint32_t agent_le32(const uint8_t *p)
{
	return (uint32_t)p[0] | (uint32_t)p[1] << 8 | (uint32_t)p[2] << 16 | (uint32_t)p[3] << 24;
}
static inline uint64_t agent_le64(const uint8_t *p)
{
	return (uint64_t)agent_le32(p) | (uint64_t)agent_le32(p + 4) << 32;
}

/* A whole message; payload is valid until the next call on the reader that made it. */
struct agent_msg {
	uint8_t type;
	uint32_t len;
	const uint8_t *payload;
};

struct agent_reader {
	uint32_t max_len; /* the payload limit, at most AGENT_MAX_PAYLOAD */
	uint8_t hdr[AGENT_HEADER_SIZE];
	size_t hdr_got;
	uint8_t *buf; /* the payload so far: cap bytes, grown to the longest length announced */
	uint32_t cap, want, got;
	int failed; /* set after the first violation: every later call fails */
};

/* A reader whose payloads are at most max_len bytes (clamped to AGENT_MAX_PAYLOAD). */
void agent_reader_init(struct agent_reader *r, uint32_t max_len);
void agent_reader_free(struct agent_reader *r);
/* Between messages, gives back a payload buffer of more than keep bytes (a clipboard's), so
 * that one long message does not stay in memory for the stream's life. */
void agent_reader_trim(struct agent_reader *r, uint32_t keep);

/* The result of feeding bytes to a reader: one of three outcomes, never a count in disguise. */
enum agent_feed {
	AGENT_FEED_MORE,  /* all of the bytes taken, no whole message yet */
	AGENT_FEED_MSG,   /* *used bytes taken and *msg is a whole message; feed the rest again */
	AGENT_FEED_ERROR, /* a violation (e says which): drop the stream */
};

/* Takes bytes from data[0..n) up to the end of the next whole message. */
enum agent_feed agent_reader_feed(struct agent_reader *r, const uint8_t *data, size_t n, size_t *used,
				  struct agent_msg *msg, struct err *e);

/* Writes the header for a message of `type` with a payload of len bytes into out. 0, or -1
 * with e set when the type is unknown or len is over AGENT_MAX_PAYLOAD. */
int agent_header(uint8_t out[AGENT_HEADER_SIZE], uint8_t type, uint32_t len, struct err *e);

/* Checks that a message's payload has its type's size (fixed-size types) or fits (others); a
 * hello may carry a token or not (the receiver decides whether it needs one). */
int agent_check_payload(const struct agent_msg *m, struct err *e);

#define AGENT_INFO_MAX_ENTRIES 32
#define AGENT_INFO_KEY_MAX     32
#define AGENT_INFO_VALUE_MAX   256

struct agent_info_entry {
	char key[AGENT_INFO_KEY_MAX + 1];
	char value[AGENT_INFO_VALUE_MAX + 1];
};

/* Parses an AGENT_INFO payload: lines "key=value\n", keys [a-z0-9-] of 1 to 32 bytes, each
 * once, values printable ASCII of at most 256 bytes, at most 32 lines, the last ending in a
 * newline. Returns the number of entries, or -1 with e set. */
int agent_info_parse(const uint8_t *p, uint32_t len, struct agent_info_entry *out, struct err *e);
/* Whether key and value (NUL-terminated) follow the rules above: for those who receive an
 * entry second-hand (shojid, from the monitor's status). */
int agent_info_entry_ok(const char *key, const char *value);

/* Whether p[0..n) is clipboard text: well-formed UTF-8 (no overlong form, no surrogate, nothing
 * above U+10FFFF) without NUL. Both sides check it, each for what it receives. */
bool agent_text_ok(const uint8_t *p, size_t n);

#endif
