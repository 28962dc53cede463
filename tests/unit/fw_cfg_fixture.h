/* fw_cfg_fixture: a fw_cfg device over a small guest RAM, and the accesses a firmware makes to
 * it: selecting an item, reading the data port, starting a DMA transfer as OVMF does (the high
 * half of the structure's address, then the low half). */
#ifndef SHOJI_TESTS_FW_CFG_FIXTURE_H
#define SHOJI_TESTS_FW_CFG_FIXTURE_H

#include <stdint.h>

#include "vmm/devices/fw_cfg.h"

struct fcx {
	struct guest_mem mem;
	struct fw_cfg f;
	struct err e;
};

/* RAM of ram_size bytes and an empty device; 0 or -1 with x->e set. */
int fcx_init(struct fcx *x, uint64_t ram_size);
void fcx_free(struct fcx *x);

/* The host address of [addr, addr+len) in the fixture's RAM; fails the test when outside. */
uint8_t *fcx_gpa(struct fcx *x, uint64_t addr, uint64_t len);
void fcx_select(struct fcx *x, uint16_t key);
/* n bytes from the data port, one access a byte. */
void fcx_read(struct fcx *x, void *out, size_t n);
/* Writes a DMA structure at `at` (when it lies in RAM) and starts it. */
void fcx_dma(struct fcx *x, uint64_t at, uint32_t control, uint32_t length, uint64_t addr);
/* The control word of the DMA structure at `at`, in host order. */
uint32_t fcx_control(struct fcx *x, uint64_t at);

#endif
