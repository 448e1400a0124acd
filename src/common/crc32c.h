/* crc32c.h — CRC-32C (Castagnoli), the checksum of log records, frames and
 * snapshots. Pure computation, no state. */
#ifndef LINKRAFT_CRC32C_H
#define LINKRAFT_CRC32C_H
#include <stddef.h>
#include <stdint.h>

/* Continues a running CRC: start with crc = 0. crc32c_extend(crc32c_extend(0, a), b)
 * equals the CRC of a followed by b. */
uint32_t crc32c_extend(uint32_t crc, const void *buf, size_t len);

/* The same CRC from the table alone, whatever the CPU offers (crc32c_extend
 * uses the CPU's crc32 instruction when it has one): for tests. */
uint32_t crc32c_extend_table(uint32_t crc, const void *buf, size_t len);

static inline uint32_t crc32c(const void *buf, size_t len) { return crc32c_extend(0, buf, len); }
#endif
