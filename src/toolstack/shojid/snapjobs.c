/* snapjobs: the snapshot requests that change a stopped VM's files, each one image job (see
 * imagejob.c) run as the VM's own jail uid: an offline snapshot (new overlays on the tops of
 * the chains), a revert (the later snapshots' layers folded away where a disk has no file in
 * the snapshot, then new overlays on the snapshot's files) and a delete (the snapshot's file
 * of each disk folded into the one above it, or the one above folded into the definition's
 * own image). Root only makes the new, empty overlay files in the VM's own directory and gives
 * them to the jail uid; the job writes every header and merges every layer, and first compares
 * each header it relies on with the chain shojid recorded, refusing any difference as changed
 * outside shoji (the VM left as it was).
 *
 * A fold is a step: the job folds the files and changes its copy of the record; shojid, told
 * the step is done, makes the same change to its record, saves it and removes the file that
 * left the chain. So the record never names a file the chain no longer holds, and a job cut
 * short leaves a record true to the files. Main thread (the work functions: the job's child). */
#include <errno.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "../../block/block.h"
#include "../../block/block_merge.h"
#include "../../block/qcow2.h"
#include "snapshots.h"

enum snapjob_kind { SNAPJOB_CREATE, SNAPJOB_REVERT, SNAPJOB_DELETE };

struct snapjob {
	enum snapjob_kind kind;
	char name[VMDEF_NAME_MAX + 1];
	struct snap_state st;
	int s;                /* revert, delete: the snapshot */
	struct snap_entry se; /* create: the new snapshot */
	unsigned nfolds;      /* the first steps: snapshot j's file of chain c folded out */
	struct {
		unsigned j, c;
	} folds[SNAP_MAX * VMDEF_MAX_DISKS];
	unsigned nmade; /* then, where there are any, one step writing the new overlays */
	unsigned made_chain[VMDEF_MAX_DISKS];
	char made[VMDEF_MAX_DISKS][VMDEF_PATH_MAX];
	char made_backing[VMDEF_MAX_DISKS][SNAP_PATH];
	char gone[SNAP_PATH]; /* the file the last fold took out of its chain */
};

/* The chain as the files' headers say it is, up to file `upto`, must be the chain shojid
 * recorded: each overlay names the file below it, in qcow2 (the headers are untrusted). */
static int verify_chain(const char *vm, const struct snap_chain *ch, unsigned upto, struct err *e)
{
	for (unsigned i = 1; i <= upto && i < ch->n; i++) {
		char name[SNAP_PATH], format[16];
		if (block_backing_of(ch->files[i], name, sizeof(name), format, sizeof(format), e) < 0)
			return -1;
		if (strcmp(name, ch->files[i - 1]) || strcmp(format, "qcow2"))
			return err_set(e,
				       "VM '%s' disk '%s': overlay %s names backing '%s' (%s), but the record "
				       "says '%s' (qcow2): the file was changed outside shoji; the VM is left as it was",
				       vm, ch->id, ch->files[i], name, format[0] ? format : "no format",
				       ch->files[i - 1]);
	}
	return 0;
}

/* The files' side of folding file k out of the chain (in the job). */
static int fold_files(const char *vm, const struct snap_chain *ch, int k, struct err *e)
{
	struct err sub;
	if (verify_chain(vm, ch, ch->n - 1, e) < 0)
		return -1;
	if (k > 0) /* the snapshot's file folded into the one above, which then sits on the one below */
		return block_merge(ch->files[k + 1], &sub) < 0
			? err_set(e, "VM '%s' disk '%s': %s", vm, ch->id, sub.msg)
			: 0;
	/* The bottom is the definition's own image: the file above is written into it, and
	 * whatever sat on that file now sits on the bottom. */
	if (block_commit(ch->files[1], &sub) < 0 ||
	    (ch->n > 2 && block_set_backing(ch->files[2], ch->files[0], "qcow2", &sub) < 0))
		return err_set(e, "VM '%s' disk '%s': %s", vm, ch->id, sub.msg);
	return 0;
}

/* The record's side: file k of chain c has left it; gone is the file that no longer exists. */
static void fold_record(struct snap_state *st, unsigned c, int k, char gone[SNAP_PATH])
{
	struct snap_chain *ch = &st->chains[c];
	if (k > 0) {
		snap_copy_str(gone, SNAP_PATH, ch->files[k]);
	} else {
		snap_copy_str(gone, SNAP_PATH, ch->files[1]);
		/* Snapshots that froze that file now find its content in the bottom. */
		for (unsigned i = 0; i < st->nsnaps; i++)
			if (strcmp(st->snaps[i].files[c], gone) == 0)
				snap_copy_str(st->snaps[i].files[c], SNAP_PATH, ch->files[0]);
		k = 1;
	}
	memmove(ch->files[k], ch->files[k + 1], (ch->n - (unsigned)k - 1) * SNAP_PATH);
	ch->n--;
}

/* Fold step i: in the job with its files, in shojid on its record alone. */
static int fold_step(struct snapjob *j, unsigned i, bool files, struct err *e)
{
	unsigned c = j->folds[i].c, sj = j->folds[i].j;
	struct snap_chain *ch = &j->st.chains[c];
	char frozen[SNAP_PATH];
	snap_copy_str(frozen, sizeof(frozen), j->st.snaps[sj].files[c]);
	j->st.snaps[sj].files[c][0] = '\0';
	int k = snap_find_file(ch, frozen);
	if (k < 0 || (unsigned)k + 1 >= ch->n)
		return err_set(e,
			       "VM '%s': the chain of disk '%s' does not hold %s above its bottom; "
			       "snapshots.json is inconsistent",
			       j->name, ch->id, frozen);
	if (files && fold_files(j->name, ch, k, e) < 0)
		return -1;
	fold_record(&j->st, c, k, j->gone);
	return 0;
}

/* The last step: each new overlay's header, on its backing file (whose chain is checked). */
static int overlays_step(struct snapjob *j, struct err *e)
{
	for (unsigned m = 0; m < j->nmade; m++) {
		const struct snap_chain *ch = &j->st.chains[j->made_chain[m]];
		int upto = snap_find_file(ch, j->made_backing[m]);
		if (upto < 0 || verify_chain(j->name, ch, (unsigned)upto, e) < 0)
			return upto < 0 ? err_set(e, "VM '%s': %s is not in the chain of disk '%s'", j->name,
						  j->made_backing[m], ch->id)
					: -1;
		struct qcow2_create_opts o = {.size = UINT64_MAX,
					      .backing = j->made_backing[m],
					      .backing_format = "qcow2"};
		if (qcow2_create(j->made[m], &o, e) < 0)
			return -1;
	}
	return 0;
}

static int work(void *ctx, unsigned step, struct err *e)
{
	struct snapjob *j = ctx;
	return step < j->nfolds ? fold_step(j, step, true, e) : overlays_step(j, e);
}

static int step_done(struct daemon *d, void *ctx, unsigned step, struct err *e)
{
	struct snapjob *j = ctx;
	if (step >= j->nfolds)
		return 0;
	if (fold_step(j, step, false, e) < 0 || snap_save(d, j->name, &j->st, e) < 0)
		return -1;
	if (snap_in_disks_dir(d, j->name, j->gone))
		unlink(j->gone); /* once the record no longer names it: a crash before leaves a stray file */
	return 0;
}

static void unlink_made(struct snapjob *j)
{
	for (unsigned m = 0; m < j->nmade; m++)
		unlink(j->made[m]);
}

/* create: each new overlay on top of its chain; the snapshot froze the files below them. */
static struct json_object *finish_create(struct daemon *d, struct snapjob *j, struct err *e)
{
	for (unsigned m = 0; m < j->nmade; m++) {
		struct snap_chain *ch = &j->st.chains[j->made_chain[m]];
		snap_copy_str(j->se.files[j->made_chain[m]], SNAP_PATH, j->made_backing[m]);
		snap_copy_str(ch->files[ch->n++], SNAP_PATH, j->made[m]);
	}
	j->st.snaps[j->st.nsnaps++] = j->se;
	if (snap_save(d, j->name, &j->st, e) < 0)
		return unlink_made(j), NULL;
	struct json_object *reply = snap_reply_ok();
	json_object_object_add(reply, "name", json_object_new_string(j->name));
	json_object_object_add(reply, "snapshot", json_object_new_string(j->se.name));
	json_object_object_add(reply, "live", json_object_new_boolean(0));
	events_add(d, j->name, "snapshot", "created %s", j->se.name);
	return reply;
}

/* revert: each chain cut above the snapshot's file, the new overlay on it; later snapshots gone. */
static struct json_object *finish_revert(struct daemon *d, struct snapjob *j, struct err *e)
{
	char(*drop)[SNAP_PATH] = calloc(VMDEF_MAX_DISKS * (SNAP_MAX + 2), SNAP_PATH);
	unsigned ndrop = 0, before = j->st.nsnaps;
	if (!drop)
		return unlink_made(j), err_set(e, "out of memory"), NULL;
	for (unsigned m = 0; m < j->nmade; m++) {
		struct snap_chain *ch = &j->st.chains[j->made_chain[m]];
		unsigned k = (unsigned)snap_find_file(ch, j->made_backing[m]); /* checked at the start */
		for (unsigned i = k + 1; i < ch->n; i++)
			if (snap_in_disks_dir(d, j->name, ch->files[i]))
				snap_copy_str(drop[ndrop++], SNAP_PATH, ch->files[i]);
		ch->n = k + 1;
		snap_copy_str(ch->files[ch->n++], SNAP_PATH, j->made[m]);
	}
	j->st.nsnaps = (unsigned)j->s + 1; /* later snapshots were above this one: gone */
	struct json_object *reply = NULL;
	if (snap_save(d, j->name, &j->st, e) < 0) {
		unlink_made(j);
	} else {
		for (unsigned i = 0; i < ndrop; i++)
			unlink(drop[i]);
		reply = snap_reply_ok();
		json_object_object_add(reply, "dropped_snapshots", json_object_new_int((int)(before - j->st.nsnaps)));
		events_add(d, j->name, "snapshot", "reverted to %s", j->st.snaps[j->s].name);
	}
	free(drop);
	return reply;
}

static struct json_object *finish_delete(struct daemon *d, struct snapjob *j, struct err *e)
{
	char snap[VMDEF_NAME_MAX + 1];
	snap_copy_str(snap, sizeof(snap), j->st.snaps[j->s].name);
	memmove(&j->st.snaps[j->s], &j->st.snaps[j->s + 1],
		(j->st.nsnaps - (unsigned)j->s - 1) * sizeof(j->st.snaps[0]));
	j->st.nsnaps--;
	if (snap_save(d, j->name, &j->st, e) < 0)
		return NULL;
	events_add(d, j->name, "snapshot", "deleted %s", snap);
	return snap_reply_ok();
}

static enum image_end finish(struct daemon *d, void *ctx, struct client *c, bool ok, const char *msg,
			     struct json_object **reply, enum proto_code *code, struct err *e)
{
	struct snapjob *j = ctx;
	(void)c;
	*code = PROTO_ERROR;
	if (!ok) {
		unlink_made(j);
		err_set(e, "%s", msg);
	} else {
		*reply = j->kind == SNAPJOB_CREATE  ? finish_create(d, j, e)
			: j->kind == SNAPJOB_REVERT ? finish_revert(d, j, e)
						    : finish_delete(d, j, e);
	}
	free(j);
	return *reply ? IMAGE_REPLY : IMAGE_FAILED;
}

static const struct image_op create_op = {.what = "making a snapshot",
					  .work = work,
					  .step_done = step_done,
					  .finish = finish};
static const struct image_op revert_op = {.what = "reverting to a snapshot",
					  .work = work,
					  .step_done = step_done,
					  .finish = finish};
static const struct image_op delete_op = {.what = "deleting a snapshot",
					  .work = work,
					  .step_done = step_done,
					  .finish = finish};

/* A new overlay for chain c on backing, its empty file made by root for the job to write. */
static int add_overlay(struct daemon *d, struct snapjob *j, unsigned c, const char *backing, struct err *e)
{
	unsigned m = j->nmade;
	if (snap_new_file(d, j->name, &j->st, j->st.chains[c].id, j->made[m], e) < 0 ||
	    snap_overlay_file(d, j->name, j->made[m], e) < 0)
		return -1;
	j->made_chain[m] = c;
	snap_copy_str(j->made_backing[m], SNAP_PATH, backing);
	j->nmade++;
	return 0;
}

static int start(struct daemon *d, struct client *c, struct snapjob *j, const struct image_op *op,
		 enum proto_code *code, struct err *e)
{
	struct image_job_spec spec = {.op = op,
				      .ctx = j,
				      .nsteps = j->nfolds + (j->nmade ? 1 : 0),
				      .key = j->name,
				      .vm = j->name};
	*code = PROTO_ERROR;
	if (image_job_start(d, c, &spec, e) == 0)
		return 0;
	unlink_made(j);
	free(j);
	return -1;
}

static struct snapjob *new_job(enum snapjob_kind kind, const char *name, const struct snap_state *st, int s,
			       struct err *e)
{
	struct snapjob *j = calloc(1, sizeof(*j));
	if (!j)
		return err_set(e, "out of memory"), NULL;
	j->kind = kind;
	snap_copy_str(j->name, sizeof(j->name), name);
	j->st = *st;
	j->s = s;
	return j;
}

int snapjob_create(struct daemon *d, struct client *c, const char *name, const struct snap_state *st,
		   const struct vmdef *def, const struct snap_entry *se, enum proto_code *code, struct err *e)
{
	struct snapjob *j = new_job(SNAPJOB_CREATE, name, st, -1, e);
	*code = PROTO_ERROR;
	if (!j)
		return -1;
	j->se = *se;
	for (unsigned i = 0; i < def->ndisks; i++) {
		if (!snap_covered(&def->disks[i]))
			continue;
		int ch = snap_chain_for(&j->st, &def->disks[i]);
		if (add_overlay(d, j, (unsigned)ch, j->st.chains[ch].files[j->st.chains[ch].n - 1], e) < 0) {
			unlink_made(j);
			free(j);
			return -1;
		}
	}
	return start(d, c, j, &create_op, code, e);
}

int snapjob_revert(struct daemon *d, struct client *c, const char *name, const struct snap_state *st, int s,
		   enum proto_code *code, struct err *e)
{
	struct snapjob *j = new_job(SNAPJOB_REVERT, name, st, s, e);
	*code = PROTO_ERROR;
	if (!j)
		return -1;
	/* Disks the snapshot does not cover (added after it) keep their content; the layers that
	 * only the later snapshots froze in them are folded away first. */
	for (unsigned k = (unsigned)s + 1; k < st->nsnaps; k++)
		for (unsigned ch = 0; ch < st->nchains; ch++)
			if (!st->snaps[s].files[ch][0] && st->snaps[k].files[ch][0])
				j->folds[j->nfolds].j = k, j->folds[j->nfolds++].c = ch;
	for (unsigned ch = 0; ch < st->nchains; ch++) {
		const char *frozen = st->snaps[s].files[ch];
		if (frozen[0] && snap_find_file(&st->chains[ch], frozen) >= 0 && add_overlay(d, j, ch, frozen, e) < 0) {
			unlink_made(j);
			free(j);
			return -1;
		}
	}
	return start(d, c, j, &revert_op, code, e);
}

int snapjob_delete(struct daemon *d, struct client *c, const char *name, const struct snap_state *st, int s,
		   enum proto_code *code, struct err *e)
{
	struct snapjob *j = new_job(SNAPJOB_DELETE, name, st, s, e);
	*code = PROTO_ERROR;
	if (!j)
		return -1;
	for (unsigned ch = 0; ch < st->nchains; ch++) {
		const char *frozen = st->snaps[s].files[ch];
		if (!frozen[0])
			continue;
		int k = snap_find_file(&st->chains[ch], frozen);
		if (k < 0 || (unsigned)k + 1 >= st->chains[ch].n) {
			free(j);
			return err_set(e,
				       "VM '%s': the chain of disk '%s' does not hold %s above its bottom; "
				       "snapshots.json is inconsistent",
				       name, st->chains[ch].id, frozen);
		}
		j->folds[j->nfolds].j = (unsigned)s, j->folds[j->nfolds++].c = ch;
	}
	return start(d, c, j, &delete_op, code, e);
}
