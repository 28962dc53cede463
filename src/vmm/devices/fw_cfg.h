/* fw_cfg: QEMU's firmware configuration device, the channel through which OVMF (and SeaBIOS)
 * learn the machine: named blobs ("files") and a few numbered items, read through the selector
 * and data ports or by DMA. It is written from the interface specification (QEMU's
 * docs/specs/fw_cfg.rst) and from what the firmware's client library does, because no Debian
 * library provides the device side. Which items and files a firmware boot fills, and why, is
 * in boot/fw_cfg_setup.h.
 *
 * Ports (x86), from PORT_FW_CFG (platform.h), one range of PORT_FW_CFG_LEN bytes:
 *   +0  selector, 16-bit write: selects an item (bit 14, the old write channel, is ignored;
 *       bit 15 selects the architecture-specific keys, of which there are none) and rewinds it;
 *   +1  data, byte reads: the next byte of the item, 0 past its end; writes are ignored;
 *   +4  DMA address, 8 bytes big-endian, written as two 32-bit writes (high half at +4, then
 *       low half at +8, which starts the transfer) or one 64-bit write; reads give "QEMU CFG".
 * DMA: the address names a 16-byte structure in guest RAM, big-endian: control (bit 0 error,
 * 1 read, 2 skip, 3 select with the key in bits 16-31, 4 write), length, guest address. Select
 * comes first, then one of read (the item's bytes, zeros past its end), write or skip. Nothing
 * here is writable, so a write fails. When done, control is written back as 0, or as the error
 * bit when the transfer's buffer is not wholly in RAM or the request is refused. A structure
 * outside RAM is ignored (its control word gets the error bit if that much lies in RAM).
 *
 * Threads: fw_cfg_init, fw_cfg_add_* and fw_cfg_destroy run on the thread that builds the
 * machine, with no vCPU running; fw_cfg_io runs on vCPU threads. fw_cfg_add_* and fw_cfg_io
 * take the device's lock for the whole access (a DMA transfer included). */
#ifndef SHOJI_VMM_DEVICES_FW_CFG_H
#define SHOJI_VMM_DEVICES_FW_CFG_H

#include <pthread.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "../../common/err.h"
#include "../memory.h"

/* Numbered items. */
#define FW_CFG_SIGNATURE  0x0000 /* "QEMU" */
#define FW_CFG_ID         0x0001 /* 32-bit little-endian feature bits */
#define FW_CFG_RAM_SIZE   0x0003 /* 64-bit little-endian */
#define FW_CFG_NB_CPUS    0x0005 /* 16-bit little-endian: vCPUs at boot */
#define FW_CFG_MAX_CPUS   0x000f /* 16-bit little-endian: vCPUs possible */
#define FW_CFG_FILE_DIR   0x0019 /* the directory of files, made by the device */
#define FW_CFG_FILE_FIRST 0x0020 /* the first file's key */

#define FW_CFG_ID_TRADITIONAL 0x1u
#define FW_CFG_ID_DMA         0x2u

#define FW_CFG_DMA_ERROR  0x01u
#define FW_CFG_DMA_READ   0x02u
#define FW_CFG_DMA_SKIP   0x04u
#define FW_CFG_DMA_SELECT 0x08u
#define FW_CFG_DMA_WRITE  0x10u

#define FW_CFG_DMA_ACCESS_SIZE 16
#define FW_CFG_DMA_SIGNATURE   "QEMU CFG"

/* Offsets of the registers from PORT_FW_CFG. */
#define FW_CFG_PORT_SELECTOR 0
#define FW_CFG_PORT_DATA     1
#define FW_CFG_PORT_DMA      4

#define FW_CFG_NAME_SIZE 56 /* a file's name with its NUL */
#define FW_CFG_MAX_FILES 32
#define FW_CFG_MAX_KEYS  (FW_CFG_FILE_FIRST + FW_CFG_MAX_FILES)

struct fw_cfg_item {
	uint8_t *data;
	uint32_t len;
	bool present;
};

struct fw_cfg {
	pthread_mutex_t lock;
	const struct guest_mem *mem; /* where DMA reads and writes */
	struct fw_cfg_item items[FW_CFG_MAX_KEYS];
	char names[FW_CFG_MAX_FILES][FW_CFG_NAME_SIZE];
	unsigned nfiles;
	uint16_t key;    /* selected */
	uint32_t offset; /* in the selected item, at most its length */
	uint8_t dma[8];  /* the DMA address register, big-endian */
};

/* An empty device (signature, ID with DMA, an empty directory) doing DMA into mem. */
int fw_cfg_init(struct fw_cfg *f, const struct guest_mem *mem, struct err *e);
void fw_cfg_destroy(struct fw_cfg *f);

/* Adds a numbered item, a copy of data. Refuses keys at or above FW_CFG_FILE_FIRST, the
 * directory's key and keys already present. */
int fw_cfg_add_item(struct fw_cfg *f, uint16_t key, const void *data, size_t len, struct err *e);
/* Adds a file, a copy of data, at the next free key, and lists it in the directory. Refuses an
 * empty name, one of FW_CFG_NAME_SIZE bytes or more, a name already there, more than
 * FW_CFG_MAX_FILES files and more than 4 GiB of data. */
int fw_cfg_add_file(struct fw_cfg *f, const char *name, const void *data, size_t len, struct err *e);

/* The port handler (io/bus.h) for [PORT_FW_CFG, PORT_FW_CFG + PORT_FW_CFG_LEN). */
void fw_cfg_io(void *opaque, uint64_t offset, uint8_t *data, uint32_t len, bool is_write);

#endif
