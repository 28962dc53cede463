/* control: the monitor's side of the control protocol (common/control_proto.h), as pure
 * functions: one request line in, a command or an error out, and the reply line for a command
 * once it has been carried out. A reply fits in CONTROL_REPLY_MAX bytes but a clipboard-get's,
 * which is made on the heap for its size (control_reply_clipboard). Any thread. */
#ifndef SHOJI_VMM_CONTROL_H
#define SHOJI_VMM_CONTROL_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <json-c/json.h>

#include "../common/control_proto.h"

/* Room a reply needs, newline and NUL included: a status with the agent's info (at most 32
 * entries of a 32-byte key and a 256-byte printable value, escaped) fits. */
#define CONTROL_REPLY_MAX 24576
/* The longest reply of all: a clipboard-get's, the base64 of SHOJI_CLIPBOARD_MAX bytes. */
#define CONTROL_CLIPBOARD_REPLY_MAX (4 * ((SHOJI_CLIPBOARD_MAX + 2) / 3) + 128)

/* A parsed request: the command and its arguments. */
struct control_request {
	enum control_cmd cmd;
	char disk[CONTROL_MAX_DISK_ID + 1]; /* disk-snapshot: the disk's serial or index */
	char backing[CONTROL_MAX_NAME + 1]; /* disk-snapshot: the new image's backing file name */
	unsigned nic;                       /* net-link: the NIC's index (below SHOJI_MAX_NICS) */
	bool offload;                       /* net-link: frames after their headers (a link's) */
	uint8_t *data;                      /* clipboard-set: the text (agent_text_ok; heap) */
	uint32_t data_len;                  /* ... its bytes, at most SHOJI_CLIPBOARD_MAX */
};

/* What a reply reports about the machine. */
struct control_status {
	bool paused;
	long pid;
	unsigned cpus;
	uint64_t memory_mib;
	double uptime_s;
	double paused_ms;   /* disk-snapshot: how long the disk's requests were held */
	const char *via;    /* shutdown: "agent" or "acpi" */
	json_object *agent; /* status: the guest agent link's state (agent_link_describe); owned */
	json_object *nics;  /* status: the NICs' state (an array); owned */
};

/* Parses one request (len bytes, no newline; it may hold any bytes). Returns 0 and fills *req
 * (released with control_request_free), or -1 with the error reply already written to reply
 * (CONTROL_REPLY_MAX bytes) and nothing to release. */
int control_parse(const char *line, size_t len, struct control_request *req, char *reply);
void control_request_free(struct control_request *req);
/* The reply to a command that was carried out, given the machine's state afterwards (st->agent
 * is released). */
void control_reply(enum control_cmd cmd, struct control_status *st, char *reply);
/* A clipboard-get's reply for text[0..len): {"ok":true,"kind":"text","bytes":len,"data":BASE64}
 * and its newline, malloc'd (its length in *n); NULL when out of memory. */
char *control_reply_clipboard(const uint8_t *text, uint32_t len, size_t *n);
/* {"ok":false,"error":msg} (msg cut to fit). */
void control_reply_error(const char *msg, char *reply);

#endif
