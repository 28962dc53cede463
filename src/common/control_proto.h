/* control_proto: the monitor's control protocol (`shoji-vmm --control-socket PATH`), shared by
 * the monitor that serves it (src/vmm/control.c, control_server.c) and shojid that calls it
 * (src/toolstack/shojid/vm.c, snapshots.c), as display_proto.h is for the display channel.
 * A Unix stream socket, mode 0600; one JSON object a line each way (jsonl.h's rules), a request
 * {"cmd":NAME, fields...}, its reply {"ok":true, fields...} or {"ok":false,"error":MSG}.
 *
 *   status         -> state ("running"/"paused"), pid, cpus, memory_mib, uptime_s, agent (the
 *                  guest agent: state "none"/"connecting"/"ready"/"unresponsive", and when
 *                  known caps, seen_s_ago, info {key: value}, info_s_ago, faults, time_syncs,
 *                  error; every string printable ASCII, checked by the monitor), nics (one
 *                  object a NIC, in order: kind "slirp"/"tap"/"link"/"passt", mac, link "up"/"down",
 *                  takes_socket (whether net-link may serve it), offload (a link NIC: whether
 *                  net-link's offload is known to it), rx_dropped, tx_dropped)
 *   pause, resume  -> state (a resume sets the guest's clock through its agent)
 *   shutdown       the guest is asked to power off: through its agent where one is ready,
 *                  else the ACPI power button -> via ("agent"/"acpi"); an agent that does not
 *                  acknowledge within 5 s is followed by the power button
 *   stop           the monitor stops the machine at once
 *   disk-snapshot  fields disk (a disk's serial or index) and backing (the name the new image
 *                  records for the current one); the new top image's descriptor comes with the
 *                  request (SCM_RIGHTS) -> paused_ms (how long the disk's requests were held)
 *   clipboard-get  the guest's clipboard, through its agent -> kind ("text"), bytes (its length)
 *                  and data (the bytes, base64); at most SHOJI_CLIPBOARD_MAX bytes of UTF-8
 *                  text without NUL, checked by the monitor. The reply comes when the agent
 *                  has answered, within CONTROL_CLIPBOARD_MS, or says why not (no agent, no
 *                  clipboard function, the agent's refusal, a late or malformed answer)
 *   clipboard-set  field data (base64 of at most SHOJI_CLIPBOARD_MAX bytes of such text): the
 *                  guest's clipboard is set through its agent; the reply comes once the agent
 *                  acknowledged it, within CONTROL_CLIPBOARD_MS
 *                  One clipboard request at a time per monitor: another meanwhile is refused.
 *   net-link       field nic (a NIC's index); the link's socket comes with the request
 *                  (SCM_RIGHTS): a SOCK_SEQPACKET Unix socket whose other end is another VM's
 *                  NIC for a link NIC (--net link), a SOCK_STREAM one to a passt process for a
 *                  passt NIC (--net passt); the NIC takes it and its link is up, replacing any
 *                  socket it had; it goes down by itself when the other end closes. Field
 *                  offload (optional, true: a link's only, where status says offload for both
 *                  ends): each frame crosses after its virtio-net header (net/offload.h)
 *
 * Both sides treat every field from the other as untrusted. */
#ifndef SHOJI_COMMON_CONTROL_PROTO_H
#define SHOJI_COMMON_CONTROL_PROTO_H

#include "limits.h"

/* bytes a request line may have, newline excluded: a clipboard-set's base64 and some room */
#define CONTROL_MAX_LINE     (4 * ((SHOJI_CLIPBOARD_MAX + 2) / 3) + 4096)
#define CONTROL_CLIPBOARD_MS 2000 /* a clipboard request's answer from the agent at most */
#define CONTROL_MAX_NAME     1023 /* bytes of a disk-snapshot's backing file name */
#define CONTROL_MAX_DISK_ID  31   /* bytes of a disk-snapshot's disk (serial or index) */
#define CONTROL_MAX_CLIENTS  8    /* connections at once */

enum control_cmd {
	CONTROL_STATUS,
	CONTROL_PAUSE,
	CONTROL_RESUME,
	CONTROL_SHUTDOWN,
	CONTROL_STOP,
	CONTROL_DISK_SNAPSHOT,
	CONTROL_CLIPBOARD_GET,
	CONTROL_CLIPBOARD_SET,
	CONTROL_NET_LINK,
	CONTROL_TEST_FORBIDDEN_SYSCALL, /* only in builds with -Dtest_hooks=true */
	CONTROL_NCMDS
};

/* The commands' names on the wire, as designated initializers by enum control_cmd; the test
 * hook's is CONTROL_CMD_TEST_HOOK, known only to monitors built with it. */
#define CONTROL_CMD_NAMES_LIST                                                                                         \
	[CONTROL_STATUS] = "status", [CONTROL_PAUSE] = "pause", [CONTROL_RESUME] = "resume",                           \
	[CONTROL_SHUTDOWN] = "shutdown", [CONTROL_STOP] = "stop", [CONTROL_DISK_SNAPSHOT] = "disk-snapshot",           \
	[CONTROL_CLIPBOARD_GET] = "clipboard-get", [CONTROL_CLIPBOARD_SET] = "clipboard-set",                          \
	[CONTROL_NET_LINK] = "net-link"
#define CONTROL_CMD_TEST_HOOK "test-forbidden-syscall"

static inline const char *control_cmd_name(enum control_cmd cmd)
{
	static const char *const names[CONTROL_NCMDS] =
		{CONTROL_CMD_NAMES_LIST, [CONTROL_TEST_FORBIDDEN_SYSCALL] = CONTROL_CMD_TEST_HOOK};
	return (unsigned)cmd < CONTROL_NCMDS ? names[cmd] : "?";
}

/* Request fields. */
#define CONTROL_F_DISK    "disk"
#define CONTROL_F_BACKING "backing"
#define CONTROL_F_DATA    "data"
#define CONTROL_F_NIC     "nic"
#define CONTROL_F_OFFLOAD "offload"
/* Reply fields. */
#define CONTROL_R_STATE      "state"
#define CONTROL_R_PID        "pid"
#define CONTROL_R_CPUS       "cpus"
#define CONTROL_R_MEMORY_MIB "memory_mib"
#define CONTROL_R_UPTIME_S   "uptime_s"
#define CONTROL_R_PAUSED_MS  "paused_ms"
#define CONTROL_R_AGENT      "agent"
#define CONTROL_R_VIA        "via"
#define CONTROL_R_KIND       "kind"
#define CONTROL_R_BYTES      "bytes"
#define CONTROL_R_DATA       "data"
#define CONTROL_R_NICS       "nics"
#define CONTROL_R_LINK       "link"
#define CONTROL_R_MAC        "mac"
#define CONTROL_R_TAKES      "takes_socket" /* a NIC that net-link may serve again */
#define CONTROL_R_OFFLOAD    "offload"      /* a link NIC that net-link may give headers */

#endif
