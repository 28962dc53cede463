/* agent_link: the monitor's side of the guest agent protocol (common/agent_proto.h). The
 * monitor, not shojid, talks to shoji-agent: it is the process that already takes the guest's
 * hostile words, jailed and under seccomp, and it is there for the whole life of the VM. shojid
 * and the seat see only what the monitor made of the agent's words (the control socket's
 * status), never the agent's bytes.
 *
 * The link connects to the guest's vsock port AGENT_VSOCK_PORT (non-blocking), retries while
 * the guest has no agent, and never waits on it: every read and write is non-blocking, what is
 * queued for the agent is bounded, and each request has a deadline. A hello not sent, a
 * request not answered in time, a bad frame or too much queued drops the connection; the link
 * counts it, says why, and connects again later. The state is one of:
 *
 *   none          the VM has no vsock device
 *   connecting    no agent yet (or again): a connection is being tried
 *   ready         the agent said hello; its info is refreshed every AGENT_PING_MS
 *   unresponsive  the last connection was dropped for a fault (why: last_error)
 *
 * The clipboard (agent_link_clip_get, agent_link_clip_set) is one request at a time, for the
 * control socket's clipboard-get and clipboard-set: its outcome (the guest's text, the agent's
 * acknowledgement, or why not) is kept in the link until the owner takes it
 * (agent_link_clip_take), at the latest CONTROL_CLIPBOARD_MS after it was asked. An answer that
 * comes later is dropped; one that does not come within AGENT_REPLY_MS is a fault, as for every
 * request. A clipboard that is not text (agent_text_ok) or is longer than SHOJI_CLIPBOARD_MAX
 * fails the request and is a fault too: the agent checks it before sending.
 *
 * Main thread only (runloop.c); the functions take the time so that tests can drive them. */
#ifndef SHOJI_VMM_AGENT_LINK_H
#define SHOJI_VMM_AGENT_LINK_H

#include <json-c/json.h>
#include <poll.h>
#include <stdbool.h>
#include <stdint.h>

#include "../common/agent_proto.h"
#include "../common/control_proto.h"
#include "../common/err.h"

#define AGENT_RETRY_MS         1000        /* between connection attempts while none is up */
#define AGENT_HELLO_MS         5000        /* from connection to the agent's hello */
#define AGENT_PING_MS          10000       /* between info requests while ready */
#define AGENT_REPLY_MS         5000        /* for an info request's or a command's answer */
#define AGENT_POWER_MS         30000       /* from an acknowledged power-off to the ACPI button's */
#define AGENT_LINK_PENDING_MAX 8           /* requests awaiting an answer at most */
#define AGENT_LINK_KEEP        (16u << 10) /* buffer bytes kept between messages (longer: freed) */
/* The longest message the host takes: a clipboard's (its kind and text). */
#define AGENT_LINK_IN_MAX (1u + SHOJI_CLIPBOARD_MAX)
/* Bytes queued for the agent at most: a clipboard set and the small messages. */
#define AGENT_LINK_OUT_MAX (AGENT_HEADER_SIZE + 1u + SHOJI_CLIPBOARD_MAX + (16u << 10))

enum agent_link_state { AGENT_LINK_NONE, AGENT_LINK_CONNECTING, AGENT_LINK_READY, AGENT_LINK_UNRESPONSIVE };

/* The clipboard request's course. */
enum agent_clip_state {
	AGENT_CLIP_IDLE,    /* none, or its outcome was taken */
	AGENT_CLIP_WAITING, /* sent; the agent's answer is awaited */
	AGENT_CLIP_DONE,    /* answered: the text (a get) or the acknowledgement (a set) */
	AGENT_CLIP_FAILED,  /* not done: why in clip_error */
};

struct agent_link {
	uint32_t cid;                /* the guest's vsock CID; 0: no vsock (state none) */
	char token[AGENT_TOKEN_LEN]; /* this boot's, sent in the hello */
	int fd;                      /* -1: not connected */
	bool connected;              /* the non-blocking connect completed */
	bool hello;                  /* the agent's hello came */
	enum agent_link_state state;
	struct agent_reader rd;
	uint8_t *out; /* out_cap bytes (heap, grown as needed up to AGENT_LINK_OUT_MAX) */
	uint32_t out_len, out_cap;
	uint32_t caps;       /* the agent's capabilities (AGENT_CAP_*) */
	int64_t next_try_ms; /* when to connect again */
	int64_t since_ms;    /* when the connection was made */
	int64_t heard_ms;    /* when the agent last sent a message */
	int64_t info_due_ms; /* when to ask for info next */
	/* The requests sent and not answered yet, oldest first: the agent answers in order. */
	struct {
		uint8_t type;
		bool clip; /* the clipboard request whose outcome is awaited (not one given up) */
		int64_t deadline_ms;
	} pending[AGENT_LINK_PENDING_MAX];
	unsigned npending;
	struct agent_info_entry info[AGENT_INFO_MAX_ENTRIES];
	int ninfo;
	int64_t info_ms;               /* when info came */
	uint8_t power_sent;            /* AGENT_SHUTDOWN/AGENT_REBOOT sent and not acknowledged yet */
	int64_t power_deadline_ms;     /* acknowledged: the guest is to be gone by then (0: none) */
	uint64_t want_size, sent_size; /* the seat's area (width << 32 | height) wanted and last sent */
	bool power_failed;             /* ... and not acknowledged in time: the owner falls back to ACPI */
	unsigned faults;               /* connections dropped for a fault */
	unsigned faults_row;           /* ... since the last hello (the retry backs off with them) */
	unsigned connects;             /* connections that reached ready */
	unsigned time_syncs;           /* clock settings the agent acknowledged */
	char last_error[160];
	int64_t suspend_ref_ms;  /* CLOCK_BOOTTIME - CLOCK_MONOTONIC at the last look (host suspend) */
	int64_t paused_since_ms; /* 0: the VM is not paused */
	bool time_owed;          /* the clock is to be set once an agent is ready */
	enum agent_clip_state clip_state;
	uint8_t clip_op;          /* AGENT_CLIP_GET or AGENT_CLIP_DATA (a set) */
	int64_t clip_deadline_ms; /* waiting: when it fails */
	uint8_t *clip_text;       /* a get's text once done (heap), clip_len bytes */
	uint32_t clip_len;
	char clip_error[256]; /* failed: why */
};

/* cid 0: a link that stays in state none. token: this boot's (AGENT_TOKEN_LEN hex digits),
 * which the host's hello carries. */
void agent_link_init(struct agent_link *l, uint32_t cid, const char *token);
void agent_link_close(struct agent_link *l);
/* The monitor's clock for the link (CLOCK_MONOTONIC, ms). */
int64_t agent_link_now_ms(void);

/* Puts the link's descriptor into *p (returns 1) or nothing (0), and lowers *timeout_ms to its
 * next deadline. */
int agent_link_poll_fd(struct agent_link *l, struct pollfd *p, int *timeout_ms, int64_t now);
/* Serves what poll reported (revents 0 when the link had no descriptor) and the deadlines. */
void agent_link_serve(struct agent_link *l, short revents, int64_t now);
/* Takes over an already connected stream (tests, fuzzing): the link then runs as after a
 * connect. */
void agent_link_attach(struct agent_link *l, int fd, int64_t now);

/* Asks the agent to power the guest off (AGENT_SHUTDOWN) or reboot it (AGENT_REBOOT). 0 when
 * sent; -1 when there is no ready agent that offers power (the caller uses ACPI). If the agent
 * does not acknowledge within AGENT_REPLY_MS, power_failed is set and the connection dropped. */
int agent_link_power(struct agent_link *l, uint8_t what, int64_t now);
/* Sends the host's wall clock (after a resume or a host suspend); nothing without an agent
 * that offers it. */
void agent_link_sync_time(struct agent_link *l, int64_t now);
/* Tells the agent the seat's area for this VM (a guest whose desktop does not follow
 * virtio-gpu's display change resizes through it); nothing without an agent that offers it. */
void agent_link_resize(struct agent_link *l, uint32_t width, uint32_t height, int64_t now);
/* The VM was paused (true) or resumed (false): while paused, nothing is asked of the agent and
 * no deadline runs out; at resume the deadlines move on by the pause's length. */
void agent_link_paused(struct agent_link *l, bool paused, int64_t now);
/* Asks the agent for the guest's clipboard (get) or sets it to text[0..len) (set, which the
 * caller has checked: agent_text_ok, at most SHOJI_CLIPBOARD_MAX bytes). 0 when asked: the
 * outcome follows (agent_link_clip_take); -1 with e set when there is no ready agent with the
 * clipboard function, the VM is paused, or a clipboard request is already in progress. */
int agent_link_clip_get(struct agent_link *l, int64_t now, struct err *e);
int agent_link_clip_set(struct agent_link *l, const uint8_t *text, uint32_t len, int64_t now, struct err *e);
/* The clipboard request's outcome, once it has one: AGENT_CLIP_DONE (a get's text into *text,
 * which the caller frees, and *len; a set's: NULL, 0) or AGENT_CLIP_FAILED (the reason into
 * why, size bytes); the link is then idle again. AGENT_CLIP_IDLE or AGENT_CLIP_WAITING:
 * nothing to take yet. */
enum agent_clip_state agent_link_clip_take(struct agent_link *l, uint8_t **text, uint32_t *len, char *why, size_t size);
/* Adds the link's state to a status reply: {"state":..., "caps":[...], "seen_s_ago":...,
 * "info":{...}, "faults":N, "error":...}. */
json_object *agent_link_describe(const struct agent_link *l, int64_t now);
const char *agent_link_state_name(enum agent_link_state s);

#endif
