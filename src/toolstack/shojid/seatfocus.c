/* seatfocus: which VM the seat shows (seat-focus), for usb-auto = focused (usbassign.c). Each
 * connection that says it keeps its own word; shojid goes by the latest word of a connection
 * still open, so a word lasts exactly as long as the connection that said it: the seat that quit
 * or crashed leaves no VM taking devices, and another seat-user connection that spoke and went
 * hands the focus back to the seat's word, not to none. A request that is refused takes back
 * that connection's earlier word too, so a switch shojid refused never leaves devices going to
 * the VM the user left. Main thread. */
#include <stdio.h>
#include <string.h>

#include "../../common/log.h"
#include "daemon.h"

/* d->focus from the latest word of the connections still open. */
static void settle(struct daemon *d)
{
	const struct client *latest = NULL;
	for (int i = 0; i < DAEMON_MAX_CLIENTS; i++) {
		const struct client *c = d->clients[i];
		if (c && c->focus_seq && (!latest || c->focus_seq > latest->focus_seq))
			latest = c;
	}
	const char *name = latest ? latest->focus : "";
	if (strcmp(d->focus, name) != 0)
		log_info("the seat shows %s", name[0] ? name : "no VM");
	snprintf(d->focus, sizeof(d->focus), "%s", name);
}

int seatfocus_say(struct daemon *d, struct client *c, const char *name, enum proto_code *code, struct err *e)
{
	if (name[0] && !authz_privileged(d, c->uid) && !authz_may_see(d, c->uid, name)) {
		*code = PROTO_PERMISSION;
		return err_set(e, "VM '%s' is not one the seat shows (it has no display) nor one of yours", name);
	}
	snprintf(c->focus, sizeof(c->focus), "%s", name);
	c->focus_seq = ++d->focus_seq;
	settle(d);
	return 0;
}

void seatfocus_forget(struct daemon *d, struct client *c)
{
	if (!c->focus_seq)
		return;
	c->focus_seq = 0;
	settle(d);
}
