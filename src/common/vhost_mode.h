/* vhost_mode: whether a TAP NIC's rings are served by the host kernel's vhost-net, as the
 * monitor's --net tap=IF,vhost= and a definition's [nic] vhost = both spell it: one list of
 * names for the two programs. */
#ifndef SHOJI_COMMON_VHOST_MODE_H
#define SHOJI_COMMON_VHOST_MODE_H

#include <string.h>

enum vhost_mode {
	VHOST_AUTO, /* vhost-net where /dev/vhost-net opens, the monitor's own path otherwise */
	VHOST_ON,   /* vhost-net or an error */
	VHOST_OFF,  /* the monitor serves the rings */
};

static const char *const vhost_mode_names[] = {[VHOST_AUTO] = "auto", [VHOST_ON] = "on", [VHOST_OFF] = "off"};

/* The mode a name spells, or -1 when it is none of auto, on, off. Any thread. */
static inline int vhost_mode_parse(const char *name)
{
	for (unsigned i = 0; i < sizeof(vhost_mode_names) / sizeof(vhost_mode_names[0]); i++)
		if (strcmp(name, vhost_mode_names[i]) == 0)
			return (int)i;
	return -1;
}

#endif
