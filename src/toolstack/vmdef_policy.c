/* vmdef_policy: a definition's [policy] section: its keys' values, the section written back,
 * and the clipboard's decisions shojid makes when the user copies or pastes at the seat.
 *
 *   clipboard-out = allow | deny | allow PEER... | deny PEER...
 *   clipboard-in  = (the same)
 *   clipboard-max = BYTES (K, M suffixes; at most SHOJI_CLIPBOARD_MAX)
 *
 *   usb-allow, usb-deny, usb-storage, usb-auto   (src/usb/usb_policy.h)
 *
 * A PEER is a VM's name or label:COLOUR (every VM with that label). "allow PEER..." lets only
 * those through, "deny PEER..." all but those. vmdef_format.c writes the section back. Pure. */
#include <ctype.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "vmdef.h"

#define LABEL_PREFIX "label:"

void vmdef_policy_defaults(struct vmdef_policy *p)
{
	*p = (struct vmdef_policy){.clip_max = SHOJI_CLIPBOARD_MAX};
}

static int parse_peer(const char *w, char out[VMDEF_PEER_MAX], struct err *e)
{
	if (strncmp(w, LABEL_PREFIX, strlen(LABEL_PREFIX)) == 0) {
		char label[8];
		if (vmdef_parse_label(w + strlen(LABEL_PREFIX), label, e) < 0)
			return -1;
		snprintf(out, VMDEF_PEER_MAX, LABEL_PREFIX "%s", label);
		return 0;
	}
	if (!vmdef_name_ok(w))
		return err_set(e, "'%.40s' is neither a VM name nor label:COLOUR", w);
	snprintf(out, VMDEF_PEER_MAX, "%s", w);
	return 0;
}

static int parse_peers(const char *value, struct vmdef_peers *out, struct err *e)
{
	char buf[512];
	if (snprintf(buf, sizeof(buf), "%s", value) >= (int)sizeof(buf))
		return err_set(e, "the value is too long; name at most %d peers", VMDEF_MAX_PEERS);
	struct vmdef_peers p = {0};
	char *save = NULL, *w = strtok_r(buf, " ,", &save);
	bool allow = w && strcmp(w, "allow") == 0;
	if (!w || (!allow && strcmp(w, "deny") != 0))
		return err_set(e,
			       "'%.60s' is not a rule; write allow, deny, allow PEER... or deny PEER... "
			       "(a PEER is a VM's name or label:COLOUR)",
			       value);
	while ((w = strtok_r(NULL, " ,", &save)) != NULL) {
		if (p.n == VMDEF_MAX_PEERS)
			return err_set(e, "more than %d peers; name at most %d (a label covers many VMs)",
				       VMDEF_MAX_PEERS, VMDEF_MAX_PEERS);
		if (parse_peer(w, p.peer[p.n], e) < 0)
			return -1;
		p.n++;
	}
	p.mode = p.n ? (allow ? VMDEF_PEERS_ONLY : VMDEF_PEERS_EXCEPT) : (allow ? VMDEF_PEERS_ALL : VMDEF_PEERS_NONE);
	*out = p;
	return 0;
}

static int parse_bytes(const char *s, uint32_t *out, struct err *e)
{
	char *end;
	errno = 0;
	unsigned long long v = strtoull(s, &end, 10);
	unsigned long long mult = toupper((unsigned char)*end) == 'K' ? 1024
		: toupper((unsigned char)*end) == 'M'                 ? 1 << 20
								      : 1;
	if (mult > 1)
		end++;
	if (!isdigit((unsigned char)*s) || errno || *end || v == 0 || v > SHOJI_CLIPBOARD_MAX ||
	    v * mult > SHOJI_CLIPBOARD_MAX)
		return err_set(e, "'%.40s' is not a size from 1 byte to %uK; write e.g. 65536, 64K or 256K", s,
			       SHOJI_CLIPBOARD_MAX >> 10);
	*out = (uint32_t)(v * mult);
	return 0;
}

int vmdef_apply_policy(struct vmdef_policy *p, const char *key, const char *value, struct err *e)
{
	if (strcmp(key, "clipboard-out") == 0)
		return parse_peers(value, &p->clip_out, e);
	if (strcmp(key, "clipboard-in") == 0)
		return parse_peers(value, &p->clip_in, e);
	if (strcmp(key, "clipboard-max") == 0)
		return parse_bytes(value, &p->clip_max, e);
	bool known;
	int r = usb_policy_apply(&p->usb, key, value, &known, e);
	if (known)
		return r;
	return err_set(e,
		       "unknown key '%s'; known keys here: clipboard-out, clipboard-in, clipboard-max, usb-allow, "
		       "usb-deny, usb-storage, usb-auto",
		       key);
}

static bool listed(const struct vmdef_peers *r, const struct vmdef *vm)
{
	for (unsigned i = 0; i < r->n; i++) {
		const char *w = r->peer[i];
		bool by_label = strncmp(w, LABEL_PREFIX, strlen(LABEL_PREFIX)) == 0;
		if (by_label ? vm->label[0] && strcmp(w + strlen(LABEL_PREFIX), vm->label) == 0
			     : strcmp(w, vm->name) == 0)
			return true;
	}
	return false;
}

static bool lets_through(const struct vmdef_peers *r, const struct vmdef *vm)
{
	switch (r->mode) {
	case VMDEF_PEERS_ALL: return true;
	case VMDEF_PEERS_NONE: return false;
	case VMDEF_PEERS_ONLY: return listed(r, vm);
	case VMDEF_PEERS_EXCEPT: return !listed(r, vm);
	}
	return false;
}

bool vmdef_clipboard_may_copy(const struct vmdef *src, size_t bytes, char *why, size_t why_size)
{
	if (src->policy.clip_out.mode == VMDEF_PEERS_NONE) {
		snprintf(why, why_size, "%s's policy keeps its clipboard in (clipboard-out = deny)", src->name);
		return false;
	}
	if (bytes > src->policy.clip_max) {
		snprintf(why, why_size, "%zu bytes are more than %s's clipboard-max (%u)", bytes, src->name,
			 src->policy.clip_max);
		return false;
	}
	return true;
}

bool vmdef_clipboard_may_paste(const struct vmdef *src, const struct vmdef *dst, size_t bytes, char *why,
			       size_t why_size)
{
	if (!vmdef_clipboard_may_copy(src, bytes, why, why_size))
		return false;
	if (!lets_through(&src->policy.clip_out, dst)) {
		snprintf(why, why_size, "%s's clipboard-out does not let its clipboard into %s", src->name, dst->name);
		return false;
	}
	if (!lets_through(&dst->policy.clip_in, src)) {
		snprintf(why, why_size, "%s's clipboard-in does not take %s's clipboard", dst->name, src->name);
		return false;
	}
	if (bytes > dst->policy.clip_max) {
		snprintf(why, why_size, "%zu bytes are more than %s's clipboard-max (%u)", bytes, dst->name,
			 dst->policy.clip_max);
		return false;
	}
	return true;
}
