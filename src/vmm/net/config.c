/* net/config: the --net option: backend kind, MAC address and host port forwards (see net.h). */
#include <arpa/inet.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "../../common/portfwd.h"
#include "net.h"

static int parse_mac(uint8_t mac[6], const char *s, struct err *e)
{
	unsigned v[6];
	char end;
	if (sscanf(s, "%2x:%2x:%2x:%2x:%2x:%2x%c", &v[0], &v[1], &v[2], &v[3], &v[4], &v[5], &end) != 6)
		return err_set(e, "--net: bad MAC address '%s': write it as six hex bytes, e.g. 52:54:00:12:34:56", s);
	for (int i = 0; i < 6; i++)
		mac[i] = (uint8_t)v[i];
	if (mac[0] & 1)
		return err_set(e, "--net: MAC address '%s' is a multicast address: the first byte must be even", s);
	return 0;
}

/* "tcp:[ADDR:]HOSTPORT:GUESTPORT", published on this host's loopback unless an address is given. */
static int parse_forward(struct net_forward *f, const char *s, struct err *e)
{
	struct portfwd p;
	struct err sub;
	if (portfwd_parse(s, &p, &sub) < 0)
		return err_set(e, "--net: %s", sub.msg);
	f->udp = p.udp;
	f->host_addr.s_addr = p.has_addr ? p.addr.s_addr : htonl(INADDR_LOOPBACK);
	f->host_port = p.host_port;
	f->guest_port = p.guest_port;
	return 0;
}

/* One "key=value" option after the backend. */
static int parse_option(struct net_config *c, const char *tok, struct err *e)
{
	if (!strncmp(tok, "mac=", 4))
		return parse_mac(c->mac, tok + 4, e);
	if (!strncmp(tok, "mtu=", 4)) {
		uint16_t mtu;
		if (c->kind == NET_TAP)
			return err_set(e,
				       "--net: mtu= applies to the slirp, link and passt backends only; set a TAP's MTU "
				       "on the host ('ip link set IFNAME mtu N')");
		if (portfwd_number(tok + 4, &mtu) < 0 || mtu < NET_MIN_MTU || mtu > NET_SLIRP_MTU)
			return err_set(e, "--net: bad '%s': the MTU must be from %d to %d", tok, NET_MIN_MTU,
				       NET_SLIRP_MTU);
		c->mtu = mtu;
		return 0;
	}
	if (!strncmp(tok, "host-loopback=", 14)) {
		if (c->kind != NET_SLIRP)
			return err_set(e, "--net: host-loopback= applies to the slirp backend only");
		if (strcmp(tok + 14, "on") && strcmp(tok + 14, "off"))
			return err_set(e, "--net: bad '%s': write host-loopback=on or host-loopback=off", tok);
		c->host_loopback = !strcmp(tok + 14, "on");
		return 0;
	}
	if (!strncmp(tok, "vhost=", 6)) {
		if (c->kind != NET_TAP)
			return err_set(e, "--net: vhost= applies to the tap backend only");
		int mode = vhost_mode_parse(tok + 6);
		if (mode < 0)
			return err_set(e, "--net: bad '%s': write vhost=auto, vhost=on or vhost=off", tok);
		c->vhost = (enum vhost_mode)mode;
		return 0;
	}
	if (!strncmp(tok, "queues=", 7)) {
		char *end;
		unsigned long n = strtoul(tok + 7, &end, 10);
		if (c->kind != NET_TAP)
			return err_set(e, "--net: queues= applies to the tap backend only");
		if (tok[7] < '1' || tok[7] > '9' || *end || n > NET_MAX_PAIRS)
			return err_set(e, "--net: bad '%s': queues= is a number of queue pairs from 1 to %d", tok,
				       NET_MAX_PAIRS);
		c->queues = (unsigned)n;
		return 0;
	}
	if (!strncmp(tok, "fwd=", 4)) {
		if (c->kind != NET_SLIRP)
			return err_set(e,
				       "--net: fwd= applies to the slirp backend only; a TAP interface "
				       "is reached directly");
		if (c->nfwd == NET_MAX_FORWARDS)
			return err_set(e, "--net: more than %d forwards on one NIC", NET_MAX_FORWARDS);
		return parse_forward(&c->fwd[c->nfwd++], tok + 4, e);
	}
	return err_set(e, "--net: unknown option '%s': known are mac=, mtu=, host-loopback=, fwd=, vhost= and queues=",
		       tok);
}

/* The backend: the first word. */
static int parse_backend(struct net_config *c, const char *tok, struct err *e)
{
	if (!strcmp(tok, "slirp") || !strcmp(tok, "user")) {
		c->kind = NET_SLIRP;
		c->mtu = NET_SLIRP_MTU;
		return 0;
	}
	if (!strcmp(tok, "link")) {
		c->kind = NET_LINK;
		c->mtu = NET_LINK_MTU;
		return 0;
	}
	if (!strcmp(tok, "passt")) {
		c->kind = NET_PASST;
		c->mtu = NET_SLIRP_MTU; /* passt's own default: it ends the guest's TCP on the host too */
		return 0;
	}
	if (!strncmp(tok, "tap=", 4) && tok[4] && strlen(tok + 4) < sizeof(c->ifname)) {
		c->kind = NET_TAP;
		strcpy(c->ifname, tok + 4);
		return 0;
	}
	return err_set(e,
		       "--net: unknown backend '%s': use 'slirp' (user-mode NAT), "
		       "'tap=IFNAME' (an interface name of at most 15 characters), 'link' (to another "
		       "VM's NIC, joined by shojid) or 'passt' (user-mode NAT in a passt process)",
		       tok);
}

int net_config_parse(struct net_config *c, const char *spec, unsigned index, struct err *e)
{
	memset(c, 0, sizeof(*c));
	c->helper_fd = -1;
	uint8_t mac[6] = {0x52, 0x54, 0x00, 0x12, 0x34, (uint8_t)(0x56 + index)};
	memcpy(c->mac, mac, 6);
	char *copy = strdup(spec), *p = copy, *tok;
	if (!copy)
		return err_set(e, "out of memory");
	int r = 0;
	for (bool first = true; r == 0 && (tok = strsep(&p, ",")) != NULL; first = false)
		r = first ? parse_backend(c, tok, e) : parse_option(c, tok, e);
	free(copy);
	return r;
}

void net_mac_text(const uint8_t mac[6], char out[18])
{
	snprintf(out, 18, "%02x:%02x:%02x:%02x:%02x:%02x", mac[0], mac[1], mac[2], mac[3], mac[4], mac[5]);
}

int net_backend_open(struct net_backend *b, const struct net_config *c, struct err *e)
{
	b->fd = -1;
	b->pairs = 1;
	b->kind = c->kind;
	b->priv = NULL;
	switch (c->kind) {
	case NET_TAP: return net_tap_open(b, c, e);
	case NET_SLIRP: return net_slirp_open(b, c, e);
	case NET_LINK: /* the socket comes later (virtio_net_link_set) */
	case NET_PASST: b->vnet_hdr_len = 0; return 0;
	}
	return err_set(e, "net: unknown backend");
}

void net_backend_close(struct net_backend *b)
{
	if (b->fd >= 0)
		close(b->fd);
	for (unsigned i = 1; i < b->pairs; i++)
		close(b->queue_fd[i - 1]);
	b->fd = -1;
	b->pairs = 1;
}
