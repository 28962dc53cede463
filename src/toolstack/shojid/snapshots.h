/* snapshots.h: the record of a VM's disk chains and snapshots (STATE/vms/NAME/snapshots.json),
 * shared by snapshots.c (the record, the requests, live snapshots) and snapjobs.c (the image
 * jobs that change the files: offline create, revert, delete). All on shojid's main thread. */
#ifndef SHOJI_SHOJID_SNAPSHOTS_H
#define SHOJI_SHOJID_SNAPSHOTS_H

#include "daemon.h"

#define SNAP_MAX  12 /* snapshots of one VM: a chain is at most BLOCK_MAX_CHAIN files */
#define SNAP_PATH 512

struct snap_chain {
	char id[VMDEF_NAME_MAX + 1];
	char files[SNAP_MAX + 2][SNAP_PATH]; /* bottom (the definition's path) first */
	unsigned n;
};

struct snap_entry {
	char name[VMDEF_NAME_MAX + 1];
	double time;
	char files[VMDEF_MAX_DISKS][SNAP_PATH]; /* per chain: the frozen file ("" : not in it) */
};

struct snap_state {
	unsigned seq; /* names new overlay files */
	struct snap_chain chains[VMDEF_MAX_DISKS];
	unsigned nchains;
	struct snap_entry snaps[SNAP_MAX];
	unsigned nsnaps;
};

int snap_load(struct daemon *d, const char *name, struct snap_state *st, struct err *e);
int snap_save(struct daemon *d, const char *name, const struct snap_state *st, struct err *e);
int snap_find_chain(const struct snap_state *st, const char *id);
int snap_find_snap(const struct snap_state *st, const char *name);
int snap_find_file(const struct snap_chain *ch, const char *file);
/* Copies src (NULL: empty), cut to size; the two may share an array of the state. */
void snap_copy_str(char *dst, size_t size, const char *src);
/* A new overlay file name for disk id: STATE/vms/NAME/disks/ID.SEQ.qcow2. */
int snap_new_file(struct daemon *d, const char *name, struct snap_state *st, const char *id, char *out, struct err *e);
/* The chain of disk k (a new one, of its file alone, when it has none yet). */
int snap_chain_for(struct snap_state *st, const struct vmdef_disk *k);
/* Which of the definition's disks snapshots cover: writable disks on files. */
bool snap_covered(const struct vmdef_disk *k);
/* file is one of the overlays shojid made for the VM (not the definition's own image). */
bool snap_in_disks_dir(struct daemon *d, const char *name, const char *file);
/* Root makes path, empty, in the VM's disks directory, and gives it to the VM's jail uid; an
 * image job writes it. */
int snap_overlay_file(struct daemon *d, const char *vm, const char *path, struct err *e);
struct json_object *snap_reply_ok(void);

/* snapjobs.c: the requests that change files, parked on an image job: 0 (c is answered when it
 * ends), or -1 with code and e. st is the record as loaded (the job takes a copy). */
int snapjob_create(struct daemon *d, struct client *c, const char *name, const struct snap_state *st,
		   const struct vmdef *def, const struct snap_entry *se, enum proto_code *code, struct err *e);
int snapjob_revert(struct daemon *d, struct client *c, const char *name, const struct snap_state *st, int s,
		   enum proto_code *code, struct err *e);
int snapjob_delete(struct daemon *d, struct client *c, const char *name, const struct snap_state *st, int s,
		   enum proto_code *code, struct err *e);

#endif
