/* clipboard: the one clipboard that moves between VMs. shojid holds it: the user's copy at the
 * seat (API clipboard-copy, for the seat's user and root alone) asks the VM's monitor for its
 * guest's clipboard (through the guest agent) and holds what came, with where it came from;
 * the user's paste (clipboard-paste) hands it to the target VM's monitor, and the hold is then
 * emptied, so one copy serves one paste. No VM can ask for another's clipboard: nothing here
 * runs but on those two requests.
 *
 * Policy: the definitions' [policy] (vmdef_policy.c), read afresh at each copy and paste: a
 * copy is refused before the guest is asked when its clipboard-out is deny, or when what came
 * is over its clipboard-max; a paste when either side's rule or size says no. Every copy,
 * paste and refusal is an event saying who, from where, to where and how many bytes, never
 * the content. The bytes are never parsed here: the monitor checked them (UTF-8 text of at most
 * SHOJI_CLIPBOARD_MAX bytes), and the target's monitor and agent check them again.
 *
 * The monitor's reply comes within CONTROL_CLIPBOARD_MS (its agent's deadline), under the 3 s
 * every control call has; shojid waits for it (a synchronous control call, as for status).
 * Main thread. */
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "../../common/base64.h"
#include "daemon.h"

static void add_str(struct json_object *o, const char *k, const char *v)
{
	json_object_object_add(o, k, json_object_new_string(v));
}

void clipboard_clear(struct daemon *d)
{
	free(d->clip.data);
	d->clip = (struct clip_hold){0};
}

/* The running VM's definition, or -1 with code and e. */
static int running_def(struct daemon *d, struct vm_entry *vm, struct vmdef *def, enum proto_code *code, struct err *e)
{
	if (vm->state != VM_RUNNING) {
		*code = PROTO_STATE;
		return err_set(e, "VM '%s' is %s; its clipboard moves only while it runs", vm->name,
			       vm_state_name(vm->state));
	}
	return vm_load_definition(d, vm->name, def, code, e);
}

static int refused(struct daemon *d, const char *vm, enum proto_code *code, struct err *e, const char *fmt, ...)
	__attribute__((format(printf, 5, 6)));
static int refused(struct daemon *d, const char *vm, enum proto_code *code, struct err *e, const char *fmt, ...)
{
	va_list ap;
	char msg[400];
	va_start(ap, fmt);
	vsnprintf(msg, sizeof(msg), fmt, ap);
	va_end(ap);
	events_add(d, vm, "clipboard-refused", "%s", msg);
	*code = PROTO_REFUSED;
	return err_set(e, "%s", msg);
}

/* The text out of a clipboard-get reply, malloc'd into *data; -1 with e for a malformed one. */
static int take_reply(struct json_object *rep, uint8_t **data, size_t *len, struct err *e)
{
	struct json_object *kind, *b64, *bytes;
	if (!json_object_object_get_ex(rep, CONTROL_R_KIND, &kind) || !json_object_is_type(kind, json_type_string) ||
	    strcmp(json_object_get_string(kind), "text") != 0 ||
	    !json_object_object_get_ex(rep, CONTROL_R_DATA, &b64) || !json_object_is_type(b64, json_type_string) ||
	    !json_object_object_get_ex(rep, CONTROL_R_BYTES, &bytes) || !json_object_is_type(bytes, json_type_int))
		return err_set(e, "the monitor's clipboard reply is malformed");
	size_t n = (size_t)json_object_get_string_len(b64);
	uint8_t *buf = n <= base64_encoded_len(SHOJI_CLIPBOARD_MAX) ? malloc(n / 4 * 3 + 1) : NULL;
	long got = buf ? base64_decode(json_object_get_string(b64), n, buf, SHOJI_CLIPBOARD_MAX) : -1;
	if (got < 0 || got != json_object_get_int64(bytes)) {
		free(buf);
		return err_set(e, "the monitor's clipboard reply is malformed");
	}
	*data = buf;
	*len = (size_t)got;
	return 0;
}

struct json_object *clipboard_copy(struct daemon *d, struct vm_entry *vm, enum proto_code *code, struct err *e)
{
	struct vmdef *def = malloc(sizeof(*def));
	char why[300];
	struct json_object *rep = NULL, *o = NULL;
	uint8_t *data = NULL;
	size_t len = 0;
	if (!def || running_def(d, vm, def, code, e) < 0)
		goto out;
	if (!vmdef_clipboard_may_copy(def, 0, why, sizeof(why))) {
		refused(d, vm->name, code, e, "copy from %s refused: %s", vm->name, why);
		goto out;
	}
	struct json_object *req = json_object_new_object();
	add_str(req, "cmd", control_cmd_name(CONTROL_CLIPBOARD_GET));
	if (vm_control_req(d, vm, req, -1, &rep, e) < 0 || take_reply(rep, &data, &len, e) < 0)
		goto out;
	if (!vmdef_clipboard_may_copy(def, len, why, sizeof(why))) {
		refused(d, vm->name, code, e, "copy from %s refused: %s", vm->name, why);
		free(data);
		goto out;
	}
	clipboard_clear(d);
	d->clip = (struct clip_hold){.held = true, .data = data, .len = len, .at = daemon_wall()};
	snprintf(d->clip.from, sizeof(d->clip.from), "%s", vm->name);
	events_add(d, vm->name, "clipboard-copy", "%zu bytes copied from %s, held for one paste", len, vm->name);
	o = clipboard_status(d);
out:
	if (rep)
		json_object_put(rep);
	free(def);
	return o;
}

/* Whether the held clipboard may go into dst (its definition loaded): 0, or -1 refused. */
static int paste_allowed(struct daemon *d, const struct vmdef *dst, enum proto_code *code, struct err *e)
{
	struct vmdef *src = malloc(sizeof(*src));
	enum proto_code sub_code;
	struct err sub;
	char why[300];
	int r = 0;
	if (!src)
		return err_set(e, "out of memory");
	if (vm_load_definition(d, d->clip.from, src, &sub_code, &sub) < 0)
		r = refused(d, dst->name, code, e,
			    "paste of %zu bytes from %s into %s refused: %s's definition is gone", d->clip.len,
			    d->clip.from, dst->name, d->clip.from);
	else if (!vmdef_clipboard_may_paste(src, dst, d->clip.len, why, sizeof(why)))
		r = refused(d, dst->name, code, e, "paste of %zu bytes from %s into %s refused: %s", d->clip.len,
			    d->clip.from, dst->name, why);
	free(src);
	return r;
}

static struct json_object *set_request(const struct clip_hold *h)
{
	char *b64 = malloc(base64_encoded_len(h->len) + 1);
	if (!b64)
		return NULL;
	base64_encode(h->data, h->len, b64);
	struct json_object *req = json_object_new_object();
	add_str(req, "cmd", control_cmd_name(CONTROL_CLIPBOARD_SET));
	add_str(req, CONTROL_F_DATA, b64);
	free(b64);
	return req;
}

struct json_object *clipboard_paste(struct daemon *d, struct vm_entry *vm, enum proto_code *code, struct err *e)
{
	struct vmdef *def = malloc(sizeof(*def));
	struct json_object *o = NULL, *req;
	if (!def || running_def(d, vm, def, code, e) < 0)
		goto out;
	if (!d->clip.held) {
		*code = PROTO_STATE;
		err_set(e, "nothing is held to paste; copy from a VM first");
		goto out;
	}
	if (paste_allowed(d, def, code, e) < 0)
		goto out;
	if (!(req = set_request(&d->clip))) {
		err_set(e, "out of memory");
		goto out;
	}
	if (vm_control_req(d, vm, req, -1, NULL, e) < 0)
		goto out;
	events_add(d, vm->name, "clipboard-paste", "%zu bytes from %s pasted into %s", d->clip.len, d->clip.from,
		   vm->name);
	o = json_object_new_object();
	json_object_object_add(o, "ok", json_object_new_boolean(1));
	add_str(o, "from", d->clip.from);
	add_str(o, "to", vm->name);
	json_object_object_add(o, "bytes", json_object_new_int64((int64_t)d->clip.len));
	clipboard_clear(d);
out:
	free(def);
	return o;
}

struct json_object *clipboard_status(struct daemon *d)
{
	struct json_object *o = json_object_new_object();
	json_object_object_add(o, "ok", json_object_new_boolean(1));
	json_object_object_add(o, "held", json_object_new_boolean(d->clip.held));
	if (d->clip.held) {
		add_str(o, "from", d->clip.from);
		json_object_object_add(o, "bytes", json_object_new_int64((int64_t)d->clip.len));
		json_object_object_add(o, "age_s", json_object_new_int64((int64_t)(daemon_wall() - d->clip.at)));
	}
	return o;
}
