/*
 * raft_codec.h — the wire format of raft messages between peers.
 *
 * Every message travels as one frame:
 *
 *   u32 magic "LRF1" | u32 body_len | u32 crc32c(body) | body
 *   body = u8 version | u8 type | fields of that type (little endian) ...
 *
 * The decoder trusts nothing: every length is checked against what is left
 * of the buffer and against RAFT_CODEC_MAX_FRAME before it is used; the
 * checksum is verified before any field is read; counts, flags and enum
 * values are range-checked. A bad frame is an error, never a crash.
 * The layout of each type is documented in docs/wire-format.md.
 */
#ifndef LINKRAFT_RAFT_CODEC_H
#define LINKRAFT_RAFT_CODEC_H

#include "raft.h"

#define RAFT_CODEC_VERSION 1
#define RAFT_CODEC_HEADER_BYTES 12
#define RAFT_CODEC_MAX_FRAME (64u * 1024 * 1024) /* largest body accepted */
#define RAFT_CODEC_MAX_ENTRIES 65536              /* per APPEND */
/* The largest term on the wire: no term at or above 2^63 is ever encoded
 * or decoded (SPEC §3), so none can be adopted from a peer. */
#define RAFT_CODEC_MAX_TERM RAFT_MAX_TERM

/* Bytes raft_codec_encode needs for m (header included). */
size_t raft_codec_size(const struct raft_message *m);

/* Encodes m into buf. Returns the bytes written, or RAFT_EINVAL if cap is too
 * small or m is out of range (unknown type, too many entries, a snapshot chunk
 * with len > 0 but no data, a term above RAFT_CODEC_MAX_TERM). */
int raft_codec_encode(const struct raft_message *m, uint8_t *buf, size_t cap);

/* Looks at the start of a byte stream. Returns:
 *   > 0  a whole frame of that many bytes is available (header included)
 *   0    need more bytes
 *   < 0  RAFT_EMALFORMED (bad magic, or a body length under 2 or over
 *        RAFT_CODEC_MAX_FRAME): close the link
 * Fewer than RAFT_CODEC_HEADER_BYTES bytes always give 0, even if they
 * already show a bad magic. */
long raft_codec_frame_size(const uint8_t *buf, size_t len);

/* Decodes exactly one frame of len bytes (as sized by raft_codec_frame_size)
 * into *m. Entry data and snapshot chunk data point INTO buf (borrowed: valid
 * while buf is); the entries array is allocated and must be released with
 * raft_codec_release(m). On error *m needs no release.
 * Errors: RAFT_EMALFORMED, RAFT_ECHECKSUM, RAFT_EVERSION, RAFT_ENOMEM, and
 * RAFT_EINVAL for a well-formed frame carrying a term above
 * RAFT_CODEC_MAX_TERM (the transport counts those apart). */
int raft_codec_decode(const uint8_t *buf, size_t len, struct raft_message *m);
void raft_codec_release(struct raft_message *m);

#endif
