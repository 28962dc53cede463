/* pflash: the firmware's flash just below 4 GiB, laid out as QEMU's pc machine does it for OVMF:
 * the code image at the top, read-only, and under it the variable store, a CFI flash with the
 * Intel/Sharp command set (the one QEMU's pflash_cfi01 offers and OVMF's
 * QemuFlashFvbServicesRuntimeDxe drives) whose content lives in the VM's own file, so that what
 * the firmware stores there (boot entries, its settings) survives power-off. Our own code: no
 * Debian library emulates a CFI flash.
 *
 *   [base, base + vars_size)            variable store: KVM slot PFLASH_SLOT_VARS, read-only
 *   [base + vars_size, 4 GiB)           code: KVM slot PFLASH_SLOT_CODE, read-only, never unmapped
 *
 * Reads are fast: in read-array mode both parts are read-only memory slots, reads hit memory and
 * only writes exit (KVM_EXIT_MMIO, is_write) to pflash_mmio, which takes them as commands. A
 * command after which reads return something else (status, identifier, CFI query, a program or
 * erase under way) removes the store's slot, so that its reads exit to pflash_mmio as well; the
 * return to read-array mode maps it again (QEMU's "ROMD" mode). The code part ignores writes.
 *
 * Commands (first cycle: the access's low byte, at any address of the store): 0x10/0x40 program
 * (the next write is stored as it is, at its address, 1 to 8 bytes), 0x20 block erase and 0xD0
 * confirm (the 4 KiB block of the confirm's address becomes 0xFF), 0x70 read status, 0x50 clear
 * status, 0x90 read identifier (all zero, as QEMU's pc flash), 0x98 CFI query, 0xFF (and 0x00,
 * 0xF0) read array. Any other command returns to read-array mode, as real parts do. Status:
 * 0x80 ready, 0x20 erase error, 0x10 program error, 0x02 the address was not in the store; 0x50
 * clears it to 0, which OVMF's detection expects.
 *
 * Durability: a program or erase is written to the file at once (pwrite); an erase is made
 * durable (fdatasync) before its confirm returns, programs when their sequence ends: at the next
 * command other than another program (OVMF ends each write with 0xFF), at the first read of the
 * status, or at pflash_close. Why, and what it costs: pflash.c. */
#ifndef SHOJI_VMM_DEVICES_PFLASH_H
#define SHOJI_VMM_DEVICES_PFLASH_H

#include <pthread.h>
#include <stdbool.h>
#include <stdint.h>

#include "../../common/err.h"
#include "../io/bus.h"
#include "../machine.h"
#include "../memory.h"

#define PFLASH_BLOCK_SIZE 0x1000u /* erase block: OVMF's PcdOvmfFirmwareBlockSize */
#define PFLASH_SLOT_VARS  GUEST_MEM_SLOTS
#define PFLASH_SLOT_CODE  (GUEST_MEM_SLOTS + 1)
#define PFLASH_CFI_LEN    0x40

enum pflash_mode {
	PFLASH_READ_ARRAY, /* reads return the store's bytes (mapped) */
	PFLASH_READ_STATUS,
	PFLASH_READ_ID,
	PFLASH_READ_CFI,
	PFLASH_PROGRAM, /* 0x10 seen: the next write is data; reads return status */
	PFLASH_ERASE,   /* 0x20 seen: the next write should be 0xD0; reads return status */
};

/* Where the parts lie in guest-physical memory. */
struct pflash_layout {
	uint64_t vars_gpa, vars_size;
	uint64_t code_gpa, code_size; /* code_gpa + code_size == 4 GiB */
};

struct pflash {
	/* Fixed by pflash_open and pflash_attach. */
	uint8_t *code; /* anonymous copy of the code file, read-only */
	uint8_t *vars; /* anonymous copy of the store: what the guest reads; written only after the file */
	uint64_t code_size, vars_size, base;
	int vars_fd;
	char *vars_path;
	uint8_t cfi[PFLASH_CFI_LEN];
	struct machine *m; /* NULL until attached */
	/* The rest under lock. */
	pthread_mutex_t lock;
	enum pflash_mode mode;
	uint8_t status;
	bool mapped; /* the store's slot is in KVM */
	bool dirty;  /* programs written to the file since the last fdatasync */
	uint64_t programs, erases, syncs, errors;
};

/* Main thread, before any vCPU runs: checks and reads the code file (kept as a copy, so that a
 * file changed on disk cannot change a running firmware) and opens the store read-write, locked
 * against a second VM, with errors that name the file and the fix: missing, a directory, FIFO or
 * other non-file, empty, not whole 4 KiB blocks, the two over LAYOUT_FIRMWARE_MAX together or
 * not from one build, a store that is not writable or in use. On failure nothing is left open. */
int pflash_open(struct pflash *f, const char *code_path, const char *vars_path, struct err *e);
struct pflash_layout pflash_layout(const struct pflash *f);
/* Main thread, before any vCPU runs: registers [vars_gpa, 4 GiB) on the MMIO bus (pflash_mmio)
 * and maps both parts through m->map_rom. */
int pflash_attach(struct pflash *f, struct machine *m, struct io_bus *mmio, struct err *e);
/* The MMIO handler; offset is from vars_gpa. vCPU threads; takes the lock. */
void pflash_mmio(void *opaque, uint64_t offset, uint8_t *data, uint32_t len, bool is_write);
/* Main thread, once no vCPU runs: makes pending programs durable, removes the slots, closes the
 * store and frees. Safe on a struct that pflash_open failed on or never saw (zeroed). */
void pflash_close(struct pflash *f);

#endif
