/* portfwd: a user-mode NIC's port forward, "tcp|udp:[HOSTADDR:]HOSTPORT:GUESTPORT", parsed in
 * one place for the monitor's --net and the toolstack's definitions. */
#ifndef SHOJI_COMMON_PORTFWD_H
#define SHOJI_COMMON_PORTFWD_H

#include <netinet/in.h>
#include <stdbool.h>
#include <stdint.h>

#include "err.h"

struct portfwd {
	bool udp;
	bool has_addr; /* HOSTADDR was given (else the user of it picks: 127.0.0.1) */
	struct in_addr addr;
	uint16_t host_port, guest_port;
};

/* A whole number from 1 to 65535 (digits only): 0, or -1. */
int portfwd_number(const char *s, uint16_t *out);
/* 0, or -1 with a message naming s and the form it should have. */
int portfwd_parse(const char *s, struct portfwd *out, struct err *e);

#endif
