/* proto: the shojid API's messages. A request is one JSON object on one line; a reply is one
 * JSON object on one line, {"ok":true,...} or {"ok":false,"code":CODE,"error":"one line"}.
 * Parsing checks everything (type of every field, unknown fields, sizes, VM names) so that
 * the daemon only ever sees well-formed requests. Pure: no I/O. */
#ifndef SHOJI_TOOLSTACK_PROTO_H
#define SHOJI_TOOLSTACK_PROTO_H

#include <stdbool.h>
#include <stddef.h>

#include "../common/err.h"
#include "../usb/usb_policy.h"
#include "vmdef.h"

#define PROTO_MAX_LINE       (128 * 1024) /* a request line, definition text included */
#define PROTO_MAX_DEFINITION (64 * 1024)
#define PROTO_MAX_ASSIGN     32
#define PROTO_MAX_TIMEOUT_S  3600
#define PROTO_MAX_LOG_BYTES  (256 * 1024)
#define PROTO_MAX_SOURCE     1024 /* template-commit: where the image came from, for the record */

enum proto_cmd {
	PROTO_PING,
	PROTO_LIST,
	PROTO_INFO,
	PROTO_CREATE,
	PROTO_DEFINITION,
	PROTO_REPLACE,
	PROTO_SET,
	PROTO_DELETE,
	PROTO_START,
	PROTO_STOP,
	PROTO_KILL,
	PROTO_PAUSE,
	PROTO_RESUME,
	PROTO_CONSOLE,
	PROTO_LOGS,
	PROTO_EVENTS,
	PROTO_TEMPLATE_BEGIN,
	PROTO_TEMPLATE_COMMIT,
	PROTO_TEMPLATE_LIST,
	PROTO_TEMPLATE_INFO,
	PROTO_TEMPLATE_DELETE,
	PROTO_SNAPSHOT_CREATE,
	PROTO_SNAPSHOT_LIST,
	PROTO_SNAPSHOT_REVERT,
	PROTO_SNAPSHOT_DELETE,
	PROTO_RUN,
	PROTO_DISPLAY,
	PROTO_CLIPBOARD,
	PROTO_CLIPBOARD_COPY,
	PROTO_CLIPBOARD_PASTE,
	PROTO_CLIPBOARD_CLEAR,
	PROTO_NET,
	PROTO_USB_LIST,
	PROTO_USB_ATTACH,
	PROTO_USB_DETACH,
	PROTO_SEAT_FOCUS,
	PROTO_NCMDS
};

/* Reply codes, and the CLI exit status each maps to (docs/shoji.1). */
enum proto_code {
	PROTO_OK = 0,
	PROTO_ERROR = 1,      /* anything else */
	PROTO_USAGE = 2,      /* a malformed request */
	PROTO_NOT_FOUND = 3,  /* no such VM */
	PROTO_STATE = 4,      /* the VM is in the wrong state (running, stopped, ...) */
	PROTO_PERMISSION = 5, /* caller not root nor in the shoji group */
	PROTO_EXISTS = 7,     /* create: the name is taken */
	PROTO_REFUSED = 8,    /* a VM's policy forbids it (the clipboard) */
};

const char *proto_code_name(enum proto_code code);
/* The code named in a reply; PROTO_ERROR for anything unknown. */
enum proto_code proto_code_parse(const char *name);

struct proto_request {
	enum proto_cmd cmd;
	char name[VMDEF_NAME_MAX + 1];  /* empty when the command takes none */
	char *definition;               /* create, replace (owned) */
	char *assign[PROTO_MAX_ASSIGN]; /* set (owned) */
	int nassign;
	int timeout_s;                     /* stop: seconds before the hard stop (default 30) */
	bool follow;                       /* events: keep streaming */
	long bytes;                        /* logs: how much of the serial log's end */
	bool replace;                      /* template-begin: a new version of an existing template */
	int version;                       /* template-commit: the version template-begin gave */
	char snapshot[VMDEF_NAME_MAX + 1]; /* snapshot-*: its name (create: empty for an automatic one) */
	char source[PROTO_MAX_SOURCE];     /* template-commit */
	char device[USB_PORT_MAX];         /* usb-attach, usb-detach: a USB device's port (usb_port_ok) */
};

/* Parses one request line (len bytes, no newline). On error, *code says which kind. */
int proto_parse_request(const char *line, size_t len, struct proto_request *req, enum proto_code *code, struct err *e);
void proto_request_free(struct proto_request *req);
const char *proto_cmd_name(enum proto_cmd cmd);

/* An error reply line (with '\n'), malloc'd. */
char *proto_error_reply(enum proto_code code, const char *msg);

#endif
