/* fw_cfg_fixture: a fw_cfg device and a firmware's accesses to it (see fw_cfg_fixture.h). */
#include "fw_cfg_fixture.h"

#include "unit.h"

#include <endian.h>

int fcx_init(struct fcx *x, uint64_t ram_size)
{
	memset(x, 0, sizeof(*x));
	if (guest_mem_init(&x->mem, ram_size, &x->e) < 0)
		return -1;
	if (fw_cfg_init(&x->f, &x->mem, &x->e) < 0) {
		guest_mem_free(&x->mem);
		return -1;
	}
	return 0;
}

void fcx_free(struct fcx *x)
{
	fw_cfg_destroy(&x->f);
	guest_mem_free(&x->mem);
}

uint8_t *fcx_gpa(struct fcx *x, uint64_t addr, uint64_t len)
{
	uint8_t *p = guest_mem_ptr(&x->mem, addr, len);
	assert_non_null(p);
	return p;
}

void fcx_select(struct fcx *x, uint16_t key)
{
	key = htole16(key);
	fw_cfg_io(&x->f, FW_CFG_PORT_SELECTOR, (uint8_t *)&key, 2, true);
}

void fcx_read(struct fcx *x, void *out, size_t n)
{
	for (size_t i = 0; i < n; i++)
		fw_cfg_io(&x->f, FW_CFG_PORT_DATA, (uint8_t *)out + i, 1, false);
}

void fcx_dma(struct fcx *x, uint64_t at, uint32_t control, uint32_t length, uint64_t addr)
{
	uint8_t *p = guest_mem_ptr(&x->mem, at, FW_CFG_DMA_ACCESS_SIZE);
	if (p) {
		uint32_t c = htobe32(control), l = htobe32(length);
		uint64_t a = htobe64(addr);
		memcpy(p, &c, 4);
		memcpy(p + 4, &l, 4);
		memcpy(p + 8, &a, 8);
	}
	uint32_t hi = htobe32((uint32_t)(at >> 32)), lo = htobe32((uint32_t)at);
	fw_cfg_io(&x->f, FW_CFG_PORT_DMA, (uint8_t *)&hi, 4, true);
	fw_cfg_io(&x->f, FW_CFG_PORT_DMA + 4, (uint8_t *)&lo, 4, true);
}

uint32_t fcx_control(struct fcx *x, uint64_t at)
{
	uint32_t c;
	memcpy(&c, fcx_gpa(x, at, 4), 4);
	return be32toh(c);
}
