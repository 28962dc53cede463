/* vmdef_keys: the keys of each definition section and how a value is applied; shared by the
 * INI reader (vmdef_ini.c) and single edits (vmdef.c). Private to vmdef. */
#ifndef SHOJI_TOOLSTACK_VMDEF_KEYS_H
#define SHOJI_TOOLSTACK_VMDEF_KEYS_H

#include "vmdef.h"

enum vmdef_section { VMDEF_SEC_NONE, VMDEF_SEC_VM, VMDEF_SEC_DISK, VMDEF_SEC_NIC, VMDEF_SEC_POLICY };

/* The index of key in the section's key list, or -1 with an error listing the known keys. */
int vmdef_key_index(enum vmdef_section sec, const char *key, struct err *e);
/* True for keys that may be given several times (a NIC's forward). */
bool vmdef_key_repeats(enum vmdef_section sec, int index);

/* Apply one value. append: the value continues the previous line (only cmdline may). */
int vmdef_apply_vm(struct vmdef *d, const char *key, const char *value, bool append, struct err *e);
int vmdef_apply_disk(struct vmdef_disk *k, const char *key, const char *value, struct err *e);
int vmdef_apply_nic(struct vmdef_nic *n, const char *key, const char *value, struct err *e);

/* Adds a device with this ID (checked: charset, unique, count), returning it. */
struct vmdef_disk *vmdef_new_disk(struct vmdef *d, const char *id, struct err *e);
struct vmdef_nic *vmdef_new_nic(struct vmdef *d, const char *id, struct err *e);

#endif
