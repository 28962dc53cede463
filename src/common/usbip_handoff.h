/* usbip_handoff: how shojid hands a USB device to a guest. shojid binds the device to the host
 * kernel's usbip-host, connects to the guest agent's USB port over vsock and sends one request;
 * the agent answers with one byte and, when it takes the device, gives the same connection to
 * the guest kernel's vhci-hcd, after which both kernels speak USB/IP on it. Nothing else is ever
 * said on the connection by either program.
 *
 * Who may hand a guest a device: vsock has no permissions on the host, so any host process can
 * connect to a guest's port. The agent takes a request only from the host (CID 2) on a source
 * port of at most USBIP_HOST_PORT_MAX, which the host kernel lets only a process with
 * CAP_NET_BIND_SERVICE bind: shojid, not a jailed monitor nor a user's process, which could
 * otherwise play a hostile USB device to the guest's kernel.
 *
 * The request, USBIP_REQ_SIZE bytes:
 *   0  "SUSB"
 *   4  u8  version (USBIP_HANDOFF_VERSION)
 *   5  u8  speed (the kernel's enum usb_device_speed: 1 low, 2 full, 3 high, 5 super; a super+
 *          device is sent as 5, which every vhci-hcd takes and serves on the same ports)
 *   6  u16 0
 *   8  u32 devid, little-endian: the host's busnum << 16 | devnum (USB/IP's name for it)
 *  12  u32 0
 * The answer: one byte of enum usbip_answer. Pure; any thread. */
#ifndef SHOJI_COMMON_USBIP_HANDOFF_H
#define SHOJI_COMMON_USBIP_HANDOFF_H

#include <stdbool.h>
#include <stdint.h>
#include <string.h>

#define USBIP_VSOCK_PORT      5901u /* the agent's USB port in the guest */
#define USBIP_HOST_PORT_MAX   1023u /* the host's source ports only a privileged process may bind */
#define USBIP_HOST_PORT_MIN   600u  /* ... of which shojid uses these */
#define USBIP_HANDOFF_VERSION 1u
#define USBIP_REQ_SIZE        16u
#define USBIP_CONNECT_MS      2000 /* shojid: to the agent's port */
#define USBIP_ANSWER_MS       3000 /* shojid: for the agent's answer; the agent: for the request */

enum usbip_answer {
	USBIP_TAKING = 0,      /* it gives the connection to vhci-hcd now */
	USBIP_NO_VHCI = 1,     /* the guest has no vhci-hcd */
	USBIP_NO_PORT = 2,     /* every vhci-hcd port of the device's speed is in use */
	USBIP_BAD_REQUEST = 3, /* not a request of this version */
	USBIP_ANSWERS
};

static inline const char *usbip_answer_text(uint8_t a)
{
	static const char *const text[USBIP_ANSWERS] = {
		[USBIP_TAKING] = "taken",
		[USBIP_NO_VHCI] = "the guest has no vhci-hcd; load it there (modprobe vhci-hcd)",
		[USBIP_NO_PORT] = "every virtual USB port of the guest is in use; detach a device from it first",
		[USBIP_BAD_REQUEST] = "the guest's agent speaks another version of the USB handoff; update it",
	};
	return a < USBIP_ANSWERS ? text[a] : "the guest's agent gave an unknown answer";
}

static inline void usbip_req_encode(uint8_t out[USBIP_REQ_SIZE], uint32_t devid, uint8_t speed)
{
	memset(out, 0, USBIP_REQ_SIZE);
	memcpy(out, "SUSB", 4);
	out[4] = USBIP_HANDOFF_VERSION;
	out[5] = speed > 5 ? 5 : speed;
	for (int i = 0; i < 4; i++)
		out[8 + i] = (uint8_t)(devid >> (8 * i));
}

/* Whether in is a request of this version with a speed vhci-hcd knows; its fields then. */
static inline bool usbip_req_decode(const uint8_t in[USBIP_REQ_SIZE], uint32_t *devid, uint8_t *speed)
{
	static const uint8_t zero[4];
	if (memcmp(in, "SUSB", 4) != 0 || in[4] != USBIP_HANDOFF_VERSION || in[6] || in[7] ||
	    memcmp(in + 12, zero, 4) != 0 || in[5] < 1 || in[5] > 5 || in[5] == 4)
		return false;
	*speed = in[5];
	*devid = (uint32_t)in[8] | (uint32_t)in[9] << 8 | (uint32_t)in[10] << 16 | (uint32_t)in[11] << 24;
	return true;
}

#endif
