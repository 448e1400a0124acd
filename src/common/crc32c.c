/* crc32c.c — CRC-32C: the SSE4.2 crc32 instruction where the CPU has it,
 * else a table, slicing by 8 bytes at a time. Every checksum of the log, the
 * peer frames and the database pages goes through here; the instruction is
 * several times faster than the table, which showed up in profiles of the
 * write path (each write's bytes are checksummed several times: the frame to
 * each follower, the log record on each node, the page at each checkpoint). */
#include "common/crc32c.h"

#include <string.h>

static uint32_t table[8][256];

uint32_t crc32c_extend_table(uint32_t crc, const void *buf, size_t len)
{
    const uint8_t *p = buf;
    crc = ~crc;
    while (len >= 8) {
        uint32_t lo, hi;
        memcpy(&lo, p, 4);
        memcpy(&hi, p + 4, 4);
        lo ^= crc; /* little-endian hosts only; the build checks __BYTE_ORDER__ */
        crc = table[7][lo & 0xff] ^ table[6][(lo >> 8) & 0xff] ^
              table[5][(lo >> 16) & 0xff] ^ table[4][lo >> 24] ^
              table[3][hi & 0xff] ^ table[2][(hi >> 8) & 0xff] ^
              table[1][(hi >> 16) & 0xff] ^ table[0][hi >> 24];
        p += 8;
        len -= 8;
    }
    while (len--)
        crc = (crc >> 8) ^ table[0][(crc ^ *p++) & 0xff];
    return ~crc;
}

#if defined(__x86_64__)
/* The instruction computes the same reflected CRC-32C (polynomial
 * 0x82F63B78) as the table, 8 bytes per step. */
__attribute__((target("sse4.2"))) static uint32_t crc32c_extend_sse42(uint32_t crc, const void *buf, size_t len)
{
    const uint8_t *p = buf;
    uint64_t c = ~crc;
    while (len >= 8) {
        uint64_t v;
        memcpy(&v, p, 8);
        c = __builtin_ia32_crc32di(c, v);
        p += 8;
        len -= 8;
    }
    uint32_t c32 = (uint32_t)c;
    while (len--)
        c32 = __builtin_ia32_crc32qi(c32, *p++);
    return ~c32;
}
#endif

static uint32_t (*impl)(uint32_t, const void *, size_t) = crc32c_extend_table;

/* Built once when the program loads, before main() and so before any
 * thread: a table built lazily on first use would let a second thread see
 * "ready" before the values (a data race that could fake a checksum error).
 * The implementation is chosen here too, for the same reason. */
__attribute__((constructor)) static void build_table(void)
{
    for (uint32_t i = 0; i < 256; i++) {
        uint32_t c = i;
        for (int k = 0; k < 8; k++)
            c = (c & 1) ? (c >> 1) ^ 0x82F63B78u : c >> 1;
        table[0][i] = c;
    }
    for (uint32_t i = 0; i < 256; i++)
        for (int t = 1; t < 8; t++)
            table[t][i] = (table[t - 1][i] >> 8) ^ table[0][table[t - 1][i] & 0xff];
#if defined(__x86_64__)
    __builtin_cpu_init();
    if (__builtin_cpu_supports("sse4.2"))
        impl = crc32c_extend_sse42;
#endif
}

uint32_t crc32c_extend(uint32_t crc, const void *buf, size_t len) { return impl(crc, buf, len); }

#if !defined(__BYTE_ORDER__) || __BYTE_ORDER__ != __ORDER_LITTLE_ENDIAN__
#error "crc32c.c assumes a little-endian host"
#endif
