/* fw_cfg: the firmware configuration device: items, the file directory, the port interface
 * and DMA (see fw_cfg.h). */
#include "fw_cfg.h"

#include <endian.h>
#include <stdlib.h>
#include <string.h>

#include "../platform.h"

#define SELECT_WRITE_CHANNEL 0x4000 /* obsolete: writes through the data port */
#define DIR_ENTRY_SIZE       (4 + 2 + 2 + FW_CFG_NAME_SIZE)

static uint32_t get_be32(const uint8_t *p)
{
	uint32_t v;
	memcpy(&v, p, 4);
	return be32toh(v);
}

static void put_be32(uint8_t *p, uint32_t v)
{
	v = htobe32(v);
	memcpy(p, &v, 4);
}

/* Replaces item `key` with a copy of data. */
static int set_item(struct fw_cfg *f, uint16_t key, const void *data, size_t len, struct err *e)
{
	uint8_t *copy = malloc(len ? len : 1);
	if (!copy)
		return err_set(e, "out of memory for a fw_cfg item of %zu bytes", len);
	if (len)
		memcpy(copy, data, len);
	free(f->items[key].data);
	f->items[key] = (struct fw_cfg_item){.data = copy, .len = (uint32_t)len, .present = true};
	return 0;
}

/* The directory: a big-endian count, then per file its size, key, two reserved bytes and name. */
static int build_dir(struct fw_cfg *f, struct err *e)
{
	uint8_t dir[4 + FW_CFG_MAX_FILES * DIR_ENTRY_SIZE] = {0};
	put_be32(dir, f->nfiles);
	for (unsigned i = 0; i < f->nfiles; i++) {
		uint8_t *d = dir + 4 + i * DIR_ENTRY_SIZE;
		uint16_t key = htobe16((uint16_t)(FW_CFG_FILE_FIRST + i));
		put_be32(d, f->items[FW_CFG_FILE_FIRST + i].len);
		memcpy(d + 4, &key, 2);
		memcpy(d + 8, f->names[i], FW_CFG_NAME_SIZE);
	}
	return set_item(f, FW_CFG_FILE_DIR, dir, 4 + f->nfiles * DIR_ENTRY_SIZE, e);
}

int fw_cfg_init(struct fw_cfg *f, const struct guest_mem *mem, struct err *e)
{
	memset(f, 0, sizeof(*f));
	pthread_mutex_init(&f->lock, NULL);
	f->mem = mem;
	uint32_t id = htole32(FW_CFG_ID_TRADITIONAL | FW_CFG_ID_DMA);
	if (set_item(f, FW_CFG_SIGNATURE, "QEMU", 4, e) < 0 || set_item(f, FW_CFG_ID, &id, 4, e) < 0 ||
	    build_dir(f, e) < 0) {
		fw_cfg_destroy(f);
		return -1;
	}
	return 0;
}

void fw_cfg_destroy(struct fw_cfg *f)
{
	for (unsigned i = 0; i < FW_CFG_MAX_KEYS; i++)
		free(f->items[i].data);
	pthread_mutex_destroy(&f->lock);
	memset(f, 0, sizeof(*f));
}

int fw_cfg_add_item(struct fw_cfg *f, uint16_t key, const void *data, size_t len, struct err *e)
{
	int ret;
	pthread_mutex_lock(&f->lock);
	if (key >= FW_CFG_FILE_FIRST || key == FW_CFG_FILE_DIR)
		ret = err_set(e, "fw_cfg key 0x%04x is not a numbered item's", key);
	else if (f->items[key].present)
		ret = err_set(e, "fw_cfg key 0x%04x is already there", key);
	else if (len > UINT32_MAX)
		ret = err_set(e, "fw_cfg item 0x%04x: %zu bytes is too long", key, len);
	else
		ret = set_item(f, key, data, len, e);
	pthread_mutex_unlock(&f->lock);
	return ret;
}

static int check_file(const struct fw_cfg *f, const char *name, size_t len, struct err *e)
{
	size_t n = strnlen(name, FW_CFG_NAME_SIZE);
	if (n == 0 || n >= FW_CFG_NAME_SIZE)
		return err_set(e, "fw_cfg file name \"%.*s\" is empty or too long", FW_CFG_NAME_SIZE, name);
	if (len > UINT32_MAX)
		return err_set(e, "fw_cfg file %s: %zu bytes is too long", name, len);
	if (f->nfiles == FW_CFG_MAX_FILES)
		return err_set(e, "fw_cfg holds at most %d files: no room for %s", FW_CFG_MAX_FILES, name);
	for (unsigned i = 0; i < f->nfiles; i++)
		if (strcmp(f->names[i], name) == 0)
			return err_set(e, "fw_cfg file %s is already there", name);
	return 0;
}

int fw_cfg_add_file(struct fw_cfg *f, const char *name, const void *data, size_t len, struct err *e)
{
	pthread_mutex_lock(&f->lock);
	int ret = check_file(f, name, len, e);
	if (ret == 0)
		ret = set_item(f, (uint16_t)(FW_CFG_FILE_FIRST + f->nfiles), data, len, e);
	if (ret == 0) {
		strcpy(f->names[f->nfiles++], name);
		ret = build_dir(f, e);
	}
	pthread_mutex_unlock(&f->lock);
	return ret;
}

static void select_key(struct fw_cfg *f, uint16_t key)
{
	f->key = key & ~SELECT_WRITE_CHANNEL;
	f->offset = 0;
}

/* The selected item, or NULL when the key names none (it then reads as empty). */
static const struct fw_cfg_item *selected(const struct fw_cfg *f)
{
	if (f->key >= FW_CFG_MAX_KEYS || !f->items[f->key].present)
		return NULL;
	return &f->items[f->key];
}

/* Copies up to n bytes of the selected item from the offset into out (NULL: skips them),
 * zero-fills the rest of out and advances the offset by what was copied. */
static void take(struct fw_cfg *f, uint8_t *out, uint64_t n)
{
	const struct fw_cfg_item *it = selected(f);
	uint32_t avail = it && f->offset < it->len ? it->len - f->offset : 0;
	uint32_t k = n < avail ? (uint32_t)n : avail;
	if (out) {
		if (k)
			memcpy(out, it->data + f->offset, k);
		memset(out + k, 0, n - k);
	}
	f->offset += k;
}

/* Runs a transfer; returns the control word to write back. */
static uint32_t dma_transfer(struct fw_cfg *f, uint32_t control, uint32_t length, uint64_t addr)
{
	if (control & FW_CFG_DMA_SELECT)
		select_key(f, (uint16_t)(control >> 16));
	if (control & FW_CFG_DMA_READ) {
		if (length == 0)
			return 0;
		uint8_t *buf = guest_mem_ptr(f->mem, addr, length);
		if (!buf)
			return FW_CFG_DMA_ERROR;
		take(f, buf, length);
	} else if (control & FW_CFG_DMA_WRITE) {
		return FW_CFG_DMA_ERROR; /* no item is writable */
	} else if (control & FW_CFG_DMA_SKIP) {
		take(f, NULL, length);
	}
	return 0;
}

static void dma_run(struct fw_cfg *f, uint64_t gpa)
{
	uint8_t *access = guest_mem_ptr(f->mem, gpa, FW_CFG_DMA_ACCESS_SIZE);
	if (!access) {
		uint8_t *control = guest_mem_ptr(f->mem, gpa, 4);
		if (control)
			put_be32(control, FW_CFG_DMA_ERROR);
		return;
	}
	/* One snapshot of the structure: the guest may change it while the transfer runs. */
	uint8_t req[FW_CFG_DMA_ACCESS_SIZE];
	memcpy(req, access, sizeof(req));
	uint64_t addr;
	memcpy(&addr, req + 8, 8);
	uint32_t result = dma_transfer(f, get_be32(req), get_be32(req + 4), be64toh(addr));
	put_be32(access, result);
}

static void port_write(struct fw_cfg *f, uint64_t offset, const uint8_t *data, uint32_t len)
{
	if (offset == FW_CFG_PORT_SELECTOR && len == 2) {
		uint16_t key;
		memcpy(&key, data, 2);
		select_key(f, le16toh(key));
	} else if (offset == FW_CFG_PORT_DMA && (len == 4 || len == 8)) {
		memcpy(f->dma, data, len);
	} else if (offset == FW_CFG_PORT_DMA + 4 && len == 4) {
		memcpy(f->dma + 4, data, 4);
	} else {
		return; /* the data port and odd widths: ignored */
	}
	if (offset + len == FW_CFG_PORT_DMA + 8) {
		uint64_t gpa;
		memcpy(&gpa, f->dma, 8);
		memset(f->dma, 0, sizeof(f->dma)); /* the register reads 0 again after an operation */
		dma_run(f, be64toh(gpa));
	}
}

static uint8_t port_read(struct fw_cfg *f, uint64_t offset)
{
	if (offset == FW_CFG_PORT_DATA) {
		uint8_t b;
		take(f, &b, 1);
		return b;
	}
	if (offset >= FW_CFG_PORT_DMA && offset < PORT_FW_CFG_LEN)
		return (uint8_t)FW_CFG_DMA_SIGNATURE[offset - FW_CFG_PORT_DMA];
	if (offset == FW_CFG_PORT_SELECTOR)
		return 0; /* write-only */
	return 0xff;      /* the two ports between data and DMA: nothing there */
}

void fw_cfg_io(void *opaque, uint64_t offset, uint8_t *data, uint32_t len, bool is_write)
{
	struct fw_cfg *f = opaque;
	pthread_mutex_lock(&f->lock);
	if (is_write)
		port_write(f, offset, data, len);
	else
		for (uint32_t i = 0; i < len; i++)
			data[i] = port_read(f, offset + i);
	pthread_mutex_unlock(&f->lock);
}
