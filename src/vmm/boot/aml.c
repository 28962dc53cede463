/* aml: ACPI Machine Language encoding (see aml.h; ACPI 6.x chapter 20). */
#include "aml.h"

#include <string.h>

#define AML_NAME_OP       0x08
#define AML_BYTE_PREFIX   0x0a
#define AML_WORD_PREFIX   0x0b
#define AML_DWORD_PREFIX  0x0c
#define AML_STRING_PREFIX 0x0d
#define AML_QWORD_PREFIX  0x0e
#define AML_SCOPE_OP      0x10
#define AML_BUFFER_OP     0x11
#define AML_PACKAGE_OP    0x12
#define AML_EXT_PREFIX    0x5b
#define AML_DEVICE_OP     0x82
#define AML_METHOD_OP     0x14
#define AML_NOTIFY_OP     0x86
#define AML_DUAL_NAME     0x2e
#define AML_MULTI_NAME    0x2f

void aml_bytes(struct aml *a, const void *data, size_t n)
{
	if (a->overflow || n > sizeof(a->buf) - a->len) {
		a->overflow = 1;
		return;
	}
	memcpy(a->buf + a->len, data, n);
	a->len += n;
}

void aml_byte(struct aml *a, uint8_t b)
{
	aml_bytes(a, &b, 1);
}

static void name_seg(struct aml *a, const char *s, size_t n)
{
	char seg[4] = {'_', '_', '_', '_'};
	memcpy(seg, s, n > 4 ? 4 : n);
	aml_bytes(a, seg, 4);
}

void aml_name(struct aml *a, const char *path)
{
	if (*path == '\\') {
		aml_byte(a, '\\');
		path++;
	}
	const char *segs[8];
	size_t lens[8];
	unsigned n = 0;
	while (*path && n < 8) {
		const char *dot = strchr(path, '.');
		size_t len = dot ? (size_t)(dot - path) : strlen(path);
		segs[n] = path;
		lens[n++] = len;
		path += len + (dot ? 1 : 0);
	}
	if (n == 2)
		aml_byte(a, AML_DUAL_NAME);
	else if (n > 2) {
		aml_byte(a, AML_MULTI_NAME);
		aml_byte(a, (uint8_t)n);
	}
	for (unsigned i = 0; i < n; i++)
		name_seg(a, segs[i], lens[i]);
	if (n == 0)
		aml_byte(a, 0); /* NullName */
}

void aml_integer(struct aml *a, uint64_t v)
{
	if (v == 0 || v == 1) {
		aml_byte(a, (uint8_t)v); /* ZeroOp, OneOp */
	} else if (v <= 0xff) {
		aml_byte(a, AML_BYTE_PREFIX);
		aml_byte(a, (uint8_t)v);
	} else if (v <= 0xffff) {
		aml_byte(a, AML_WORD_PREFIX);
		aml_bytes(a, &v, 2);
	} else if (v <= 0xffffffffu) {
		aml_byte(a, AML_DWORD_PREFIX);
		aml_bytes(a, &v, 4);
	} else {
		aml_byte(a, AML_QWORD_PREFIX);
		aml_bytes(a, &v, 8);
	}
}

void aml_string(struct aml *a, const char *s)
{
	aml_byte(a, AML_STRING_PREFIX);
	aml_bytes(a, s, strlen(s) + 1);
}

static unsigned hex_digit(char c)
{
	return c >= '0' && c <= '9' ? (unsigned)(c - '0') : (unsigned)((c | 0x20) - 'a' + 10) & 0xf;
}

void aml_eisa_id(struct aml *a, const char *id)
{
	uint32_t v = ((uint32_t)(id[0] - 0x40) & 0x1f) << 26 | ((uint32_t)(id[1] - 0x40) & 0x1f) << 21 |
		((uint32_t)(id[2] - 0x40) & 0x1f) << 16;
	for (int i = 0; i < 4; i++)
		v |= hex_digit(id[3 + i]) << (12 - 4 * i);
	aml_byte(a, AML_DWORD_PREFIX);
	uint8_t be[4] = {(uint8_t)(v >> 24), (uint8_t)(v >> 16), (uint8_t)(v >> 8), (uint8_t)v};
	aml_bytes(a, be, 4);
}

void aml_name_decl(struct aml *a, const char *name, const struct aml *value)
{
	aml_byte(a, AML_NAME_OP);
	aml_name(a, name);
	aml_bytes(a, value->buf, value->len);
	a->overflow |= value->overflow;
}

/* PkgLength covers itself and what follows (ACPI 20.2.4). */
static void pkg_length(struct aml *a, size_t content)
{
	size_t total;
	if (content + 1 < 0x40) {
		aml_byte(a, (uint8_t)(content + 1));
		return;
	}
	if (content + 2 < 0x1000) {
		total = content + 2;
		aml_byte(a, (uint8_t)(0x40 | (total & 0xf)));
		aml_byte(a, (uint8_t)(total >> 4));
		return;
	}
	total = content + 3;
	aml_byte(a, (uint8_t)(0x80 | (total & 0xf)));
	aml_byte(a, (uint8_t)(total >> 4));
	aml_byte(a, (uint8_t)(total >> 12));
}

static void wrap(struct aml *a, const uint8_t *op, size_t oplen, const char *name, const struct aml *body)
{
	struct aml head = {0};
	if (name)
		aml_name(&head, name);
	aml_bytes(a, op, oplen);
	pkg_length(a, head.len + body->len);
	aml_bytes(a, head.buf, head.len);
	aml_bytes(a, body->buf, body->len);
	a->overflow |= body->overflow | head.overflow;
}

void aml_package_ints(struct aml *a, const uint64_t *v, unsigned n)
{
	struct aml body = {0};
	aml_byte(&body, (uint8_t)n);
	for (unsigned i = 0; i < n; i++)
		aml_integer(&body, v[i]);
	static const uint8_t op[] = {AML_PACKAGE_OP};
	wrap(a, op, sizeof(op), NULL, &body);
}

void aml_scope(struct aml *a, const char *name, const struct aml *body)
{
	static const uint8_t op[] = {AML_SCOPE_OP};
	wrap(a, op, sizeof(op), name, body);
}

void aml_device(struct aml *a, const char *name, const struct aml *body)
{
	static const uint8_t op[] = {AML_EXT_PREFIX, AML_DEVICE_OP};
	wrap(a, op, sizeof(op), name, body);
}

void aml_method(struct aml *a, const char *name, unsigned nargs, const struct aml *body)
{
	struct aml flagged = {0};
	aml_byte(&flagged, (uint8_t)(nargs & 7)); /* MethodFlags: not serialized */
	aml_bytes(&flagged, body->buf, body->len);
	flagged.overflow |= body->overflow;
	static const uint8_t op[] = {AML_METHOD_OP};
	wrap(a, op, sizeof(op), name, &flagged);
}

void aml_notify(struct aml *a, const char *target, uint64_t value)
{
	aml_byte(a, AML_NOTIFY_OP);
	aml_name(a, target);
	aml_integer(a, value);
}

void aml_rt_io(struct aml *rt, uint16_t base, uint8_t len)
{
	const uint8_t d[] = {
		0x47,          0x01,                 /* I/O port descriptor, 16-bit decode */
		(uint8_t)base, (uint8_t)(base >> 8), /* minimum */
		(uint8_t)base, (uint8_t)(base >> 8), /* maximum */
		0x01,          len,                  /* alignment, length */
	};
	aml_bytes(rt, d, sizeof(d));
}

void aml_rt_irq(struct aml *rt, unsigned irq)
{
	uint16_t mask = irq < 16 ? (uint16_t)(1u << irq) : 0;
	const uint8_t d[] = {0x22, (uint8_t)mask, (uint8_t)(mask >> 8)}; /* edge, active high */
	aml_bytes(rt, d, sizeof(d));
}

void aml_rt_interrupt(struct aml *rt, uint32_t gsi)
{
	const uint8_t d[] = {
		0x89,
		6,
		0,    /* extended interrupt descriptor */
		0x03, /* consumer, edge-triggered, active high, exclusive */
		1,    /* one interrupt */
		(uint8_t)gsi,
		(uint8_t)(gsi >> 8),
		(uint8_t)(gsi >> 16),
		(uint8_t)(gsi >> 24),
	};
	aml_bytes(rt, d, sizeof(d));
}

/* General flags of an address space descriptor: producer, MinFixed, MaxFixed. */
#define ADDR_FIXED_PRODUCER 0x0c

void aml_rt_bus_numbers(struct aml *rt, uint16_t first, uint16_t last)
{
	uint16_t len = (uint16_t)(last - first + 1);
	const uint8_t d[] = {
		0x88,
		13,
		0, /* word address space descriptor */
		2, /* bus number range */
		ADDR_FIXED_PRODUCER,
		0,
		0,
		0, /* granularity */
		(uint8_t)first,
		(uint8_t)(first >> 8),
		(uint8_t)last,
		(uint8_t)(last >> 8),
		0,
		0, /* translation */
		(uint8_t)len,
		(uint8_t)(len >> 8),
	};
	aml_bytes(rt, d, sizeof(d));
}

void aml_rt_memory32(struct aml *rt, uint32_t base, uint32_t size)
{
	uint8_t d[26] = {
		0x87,
		23,
		0, /* dword address space descriptor */
		0, /* memory range */
		ADDR_FIXED_PRODUCER,
		0x01, /* read-write, non-cacheable */
	};
	uint32_t fields[] = {0, base, base + size - 1, 0, size}; /* gran, min, max, transl, len */
	memcpy(d + 6, fields, sizeof(fields));
	aml_bytes(rt, d, sizeof(d));
}

void aml_rt_memory32_fixed(struct aml *rt, uint32_t base, uint32_t size)
{
	uint8_t d[12] = {0x86, 9, 0, 0x01}; /* 32-bit fixed memory range descriptor, read-write */
	memcpy(d + 4, &base, 4);
	memcpy(d + 8, &size, 4);
	aml_bytes(rt, d, sizeof(d));
}

void aml_resource_template(struct aml *a, const struct aml *rt)
{
	struct aml body = {0};
	aml_integer(&body, rt->len + 2);
	aml_bytes(&body, rt->buf, rt->len);
	aml_byte(&body, 0x79); /* end tag */
	aml_byte(&body, 0x00); /* checksum: none */
	body.overflow |= rt->overflow;
	static const uint8_t op[] = {AML_BUFFER_OP};
	wrap(a, op, sizeof(op), NULL, &body);
}

void aml_io_resource(struct aml *a, uint16_t base, uint8_t len, int irq)
{
	struct aml rt = {0};
	aml_rt_io(&rt, base, len);
	if (irq >= 0)
		aml_rt_irq(&rt, (unsigned)irq);
	aml_resource_template(a, &rt);
}
