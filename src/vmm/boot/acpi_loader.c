/* acpi_loader: the table-loader script for an ACPI blob (see acpi_loader.h). */
#include "acpi_loader.h"

#include <string.h>

#define TABLES_ALIGN 64
#define RSDP_ALIGN   16

struct script {
	uint8_t *out;
	unsigned n;
};

/* A new zeroed entry of `type`, with its first file name. */
static uint8_t *entry(struct script *s, uint32_t type, const char *file)
{
	uint8_t *p = s->out + (size_t)s->n++ * ACPI_LOADER_ENTRY_SIZE;
	memset(p, 0, ACPI_LOADER_ENTRY_SIZE);
	memcpy(p, &type, 4);
	strncpy((char *)p + 4, file, ACPI_LOADER_FNAME_SIZE - 1);
	return p + 4 + ACPI_LOADER_FNAME_SIZE;
}

static void put32(uint8_t *p, uint32_t v)
{
	memcpy(p, &v, 4);
}

static void allocate(struct script *s, const char *file, uint32_t align, uint8_t zone)
{
	uint8_t *p = entry(s, ACPI_LOADER_ALLOCATE, file);
	put32(p, align);
	p[4] = zone;
}

/* The field at `offset` in `file` holds an offset into the tables' blob. */
static void add_pointer(struct script *s, const char *file, uint32_t offset, uint8_t size)
{
	uint8_t *p = entry(s, ACPI_LOADER_ADD_POINTER, file);
	strncpy((char *)p, ACPI_LOADER_TABLES, ACPI_LOADER_FNAME_SIZE - 1);
	put32(p + ACPI_LOADER_FNAME_SIZE, offset);
	p[ACPI_LOADER_FNAME_SIZE + 4] = size;
}

static void add_checksum(struct script *s, const char *file, uint32_t result, uint32_t start, uint32_t len)
{
	uint8_t *p = entry(s, ACPI_LOADER_ADD_CHECKSUM, file);
	put32(p, result);
	put32(p + 4, start);
	put32(p + 8, len);
}

long acpi_loader_script(const struct acpi_blob *b, uint8_t out[ACPI_LOADER_MAX_ENTRIES * ACPI_LOADER_ENTRY_SIZE],
			struct err *e)
{
	struct script s = {.out = out};
	allocate(&s, ACPI_LOADER_TABLES, TABLES_ALIGN, ACPI_LOADER_ZONE_HIGH);
	allocate(&s, ACPI_LOADER_RSDP, RSDP_ALIGN, ACPI_LOADER_ZONE_FSEG);
	unsigned placed = 0;
	for (unsigned t = 0; t < b->ntables && t < ACPI_BLOB_MAX_TABLES; t++) {
		const struct acpi_blob_table *tab = &b->tables[t];
		for (unsigned i = 0; i < b->npointers && i < ACPI_BLOB_MAX_POINTERS; i++) {
			const struct acpi_blob_pointer *ptr = &b->pointers[i];
			if (ptr->offset >= tab->offset && ptr->offset - tab->offset < tab->len) {
				add_pointer(&s, ACPI_LOADER_TABLES, ptr->offset, ptr->size);
				placed++;
			}
		}
		add_checksum(&s, ACPI_LOADER_TABLES, tab->offset + ACPI_HEADER_CSUM, tab->offset, tab->len);
	}
	if (placed != b->npointers)
		return err_set(e, "ACPI blob: %u of its %u pointer fields lie in no table", b->npointers - placed,
			       b->npointers);
	add_pointer(&s, ACPI_LOADER_RSDP, ACPI_RSDP_XSDT, 8);
	add_checksum(&s, ACPI_LOADER_RSDP, ACPI_RSDP_CSUM, 0, ACPI_RSDP_V1_LEN);
	add_checksum(&s, ACPI_LOADER_RSDP, ACPI_RSDP_EXT_CSUM, 0, ACPI_RSDP_SIZE);
	return (long)s.n * ACPI_LOADER_ENTRY_SIZE;
}
