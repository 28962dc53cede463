/* aml: a small encoder for the ACPI Machine Language objects the DSDT needs (names, strings,
 * integers, packages, buffers, scopes, devices, methods, Notify, I/O and interrupt resource
 * templates). */
#ifndef SHOJI_VMM_BOOT_AML_H
#define SHOJI_VMM_BOOT_AML_H

#include <stddef.h>
#include <stdint.h>

struct aml {
	uint8_t buf[4096];
	size_t len;
	int overflow; /* set when an append did not fit; the result must not be used */
};

void aml_bytes(struct aml *a, const void *data, size_t n);
void aml_byte(struct aml *a, uint8_t b);
/* A name string: one to four characters per segment, '\\' prefix and '.' separators allowed. */
void aml_name(struct aml *a, const char *path);
void aml_integer(struct aml *a, uint64_t v);
void aml_string(struct aml *a, const char *s);
/* EISAID("PNP0501"): three letters and four hex digits, compressed to a DWORD. */
void aml_eisa_id(struct aml *a, const char *id);
/* Name(NAME, <object already encoded in value>) */
void aml_name_decl(struct aml *a, const char *name, const struct aml *value);
/* Package(){ integers } */
void aml_package_ints(struct aml *a, const uint64_t *v, unsigned n);
/* Scope(NAME){ body } and Device(NAME){ body } */
void aml_scope(struct aml *a, const char *name, const struct aml *body);
void aml_device(struct aml *a, const char *name, const struct aml *body);
/* Method(NAME, nargs){ body } and Notify(target, value) */
void aml_method(struct aml *a, const char *name, unsigned nargs, const struct aml *body);
void aml_notify(struct aml *a, const char *target, uint64_t value);
/* Resource descriptors, appended to `rt` (raw bytes, no end tag yet): */
void aml_rt_io(struct aml *rt, uint16_t base, uint8_t len);               /* IO(Decode16, ...) */
void aml_rt_irq(struct aml *rt, unsigned irq);                            /* IRQNoFlags(){irq} */
void aml_rt_interrupt(struct aml *rt, uint32_t gsi);                      /* Interrupt(edge, high){gsi} */
void aml_rt_bus_numbers(struct aml *rt, uint16_t first, uint16_t last);   /* WordBusNumber */
void aml_rt_memory32(struct aml *rt, uint32_t base, uint32_t size);       /* DWordMemory window */
void aml_rt_memory32_fixed(struct aml *rt, uint32_t base, uint32_t size); /* Memory32Fixed(ReadWrite) */
/* ResourceTemplate(){ the descriptors in rt } */
void aml_resource_template(struct aml *a, const struct aml *rt);
/* ResourceTemplate(){ IO(Decode16, base, base, 1, len) [IRQNoFlags(){irq}] }; irq < 0: none */
void aml_io_resource(struct aml *a, uint16_t base, uint8_t len, int irq);

#endif
