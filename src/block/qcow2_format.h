/* qcow2_format: the qcow2 on-disk layout (version 3, docs/interop/qcow2.txt in QEMU): header
 * field offsets, feature bits, header-extension types and table-entry bits. All on-disk
 * integers are big-endian. */
#ifndef SHOJI_VMM_BLOCK_QCOW2_FORMAT_H
#define SHOJI_VMM_BLOCK_QCOW2_FORMAT_H

#include <stdint.h>

#define QCOW2_MAGIC       0x514649fbu
#define QCOW2_MAGIC_BYTES "QFI\xfb"

/* Header field offsets. */
#define QH_MAGIC            0
#define QH_VERSION          4
#define QH_BACKING_OFFSET   8
#define QH_BACKING_SIZE     16
#define QH_CLUSTER_BITS     20
#define QH_SIZE             24
#define QH_CRYPT            32
#define QH_L1_SIZE          36
#define QH_L1_OFFSET        40
#define QH_RT_OFFSET        48
#define QH_RT_CLUSTERS      56
#define QH_NB_SNAPSHOTS     60
#define QH_SNAPSHOTS_OFFSET 64
#define QH_INCOMPAT         72
#define QH_COMPAT           80
#define QH_AUTOCLEAR        88
#define QH_REFCOUNT_ORDER   96
#define QH_HEADER_LENGTH    100
#define QH_COMPRESSION_TYPE 104
#define QCOW2_HEADER_V3_MIN 104
#define QCOW2_HEADER_LEN    112 /* what shoji writes: with the compression type, padded */

#define QCOW2_INCOMPAT_DIRTY        (1ull << 0)
#define QCOW2_INCOMPAT_CORRUPT      (1ull << 1)
#define QCOW2_INCOMPAT_DATA_FILE    (1ull << 2)
#define QCOW2_INCOMPAT_COMPRESSION  (1ull << 3)
#define QCOW2_INCOMPAT_EXTL2        (1ull << 4)
#define QCOW2_COMPAT_LAZY_REFCOUNTS (1ull << 0)

#define QCOW2_EXT_END            0u
#define QCOW2_EXT_BACKING_FORMAT 0xe2792acau
#define QCOW2_EXT_FEATURE_TABLE  0x6803f857u
#define QCOW2_EXT_BITMAPS        0x23852875u
#define QCOW2_EXT_CRYPTO         0x0537be77u
#define QCOW2_EXT_DATA_FILE      0x44415441u

#define QCOW2_MIN_CLUSTER_BITS 9
#define QCOW2_MAX_CLUSTER_BITS 21
#define QCOW2_MAX_BACKING_NAME 1023
#define QCOW2_MAX_L1_BYTES     (32u << 20)
#define QCOW2_MAX_RT_BYTES     (8u << 20)

/* L1 and L2 entries. */
#define QCOW2_OFLAG_COPIED     (1ull << 63)
#define QCOW2_OFLAG_COMPRESSED (1ull << 62)
#define QCOW2_OFLAG_ZERO       1ull
#define QCOW2_OFFSET_MASK      0x00fffffffffffe00ull /* bits 9-55 */
#define QCOW2_L1_RESERVED      0x7f000000000001ffull /* bits 0-8, 56-62 */
#define QCOW2_L2_RESERVED      0x3f000000000001feull /* bits 1-8, 56-61 (standard clusters) */
#define QCOW2_RT_RESERVED      0x00000000000001ffull

static inline uint64_t qcow2_be64(const uint8_t *p)
{
	uint64_t v = 0;
	for (int i = 0; i < 8; i++)
		v = v << 8 | p[i];
	return v;
}
static inline uint32_t qcow2_be32(const uint8_t *p)
{
	return (uint32_t)p[0] << 24 | (uint32_t)p[1] << 16 | (uint32_t)p[2] << 8 | p[3];
}
static inline uint16_t qcow2_be16(const uint8_t *p)
{
	return (uint16_t)(p[0] << 8 | p[1]);
}
static inline void qcow2_put64(uint8_t *p, uint64_t v)
{
	for (int i = 7; i >= 0; i--, v >>= 8)
		p[i] = (uint8_t)v;
}
static inline void qcow2_put32(uint8_t *p, uint32_t v)
{
	for (int i = 3; i >= 0; i--, v >>= 8)
		p[i] = (uint8_t)v;
}
static inline void qcow2_put16(uint8_t *p, uint16_t v)
{
	p[0] = (uint8_t)(v >> 8);
	p[1] = (uint8_t)v;
}

#endif
