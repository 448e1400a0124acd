/*
 * fuzz_handshake.c — libFuzzer driver for the peer transport's handshake
 * decoder (net_wire_frame_size, net_wire_decode; src/net/wire.c), the MAC
 * checks the acceptor and the dialer make on what it decodes (net_auth_check
 * for HELLO and WELCOME; src/net/secret.c), and the sealed-record layer that
 * follows a handshake with a secret (net_record_size, net_open). Every byte a
 * peer port receives from anyone goes through them first.
 *
 * The input's first byte chooses a mode, the second a frame kind; the rest is
 * a would-be frame. Each input is decoded three ways: as given (so framing
 * and malformed headers are explored), as the payload of a frame with a
 * valid header of the chosen kind (or the decoder's length checks would hide
 * everything behind them), and, for HELLO and WELCOME, with the real MAC of
 * the decoded fields written in. Properties:
 *   - frame_size and decode agree; an accepted frame re-encodes to the very
 *     same bytes (one encoding per message);
 *   - a HELLO or WELCOME is accepted only with the MAC of exactly its
 *     fields under the secret and its own label: the input's MAC passes
 *     exactly when it is that MAC, the real one written in passes, and it stops passing if any covered byte
 *     changes or the other label is used (no reflection);
 *   - a record the fuzzer made never opens under the connection's key; the
 *     input sealed for real opens to itself once, and not after one bit of
 *     it is flipped or a second time (no replay).
 */
#include "fuzz.h"

#include "net/internal.h"

#include <string.h>

static const uint8_t fz_hs_secret[] = "fuzzing-secret-0123456789";
#define FZ_HS_SECRET_LEN (sizeof fz_hs_secret - 1)

/* The acceptor's side of the transcript: its nonce and identity, as the
 * CHALLENGE it sent carried them. */
static void fz_hs_transcript(const struct net_wire_msg *hello, struct net_transcript *t)
{
    memset(t, 0, sizeof *t);
    t->from = hello->from;
    t->to = hello->to;
    for (int i = 0; i < NET_NONCE_BYTES; i++)
        t->acceptor_nonce[i] = (uint8_t)(0xA0 + i);
    memcpy(t->dialer_nonce, hello->nonce, NET_NONCE_BYTES);
    struct net_identity mine = { .cluster = { 7, 7, 7 }, .incarnation = { 9 }, .cluster_known = true };
    net_wire_put_identity(&mine, t->acceptor_identity);
    net_wire_put_identity(&hello->identity, t->dialer_identity);
}

/* Decodes buf and checks what the decoder says. Returns 1 with *w filled if
 * it accepted the frame. */
static int fz_hs_decode(const uint8_t *buf, size_t len, struct net_wire_msg *w)
{
    long fs = net_wire_frame_size(buf, len);
    int rc = net_wire_decode(buf, len, w);
    FUZZ_CHECK(rc == 0 || rc == -1);
    FUZZ_CHECK(fs >= -1 && fs <= (long)NET_WIRE_MAX_FRAME);
    if (fs < 0)
        FUZZ_CHECK(rc == -1);
    if (rc != 0)
        return 0;
    FUZZ_CHECK(fs > 0 && (size_t)fs == len);
    FUZZ_CHECK(w->kind >= NET_WIRE_CHALLENGE && w->kind <= NET_WIRE_PONG);
    FUZZ_CHECK(net_wire_is_control(buf, len));
    uint8_t again[NET_WIRE_MAX_FRAME];
    size_t n = net_wire_encode(w, again, sizeof again);
    FUZZ_CHECK(n == len && memcmp(again, buf, len) == 0);
    if (w->kind == NET_WIRE_REFUSE)
        FUZZ_CHECK(net_refuse_name(w->reason) != NULL);
    return 1;
}

/* A HELLO (acceptor's check) or WELCOME (dialer's check, on the transcript
 * of the HELLO it sent, here the same fields) with the MAC as decoded. */
static int fz_hs_mac_ok(const struct net_wire_msg *w, const struct net_transcript *t)
{
    const char *label = w->kind == NET_WIRE_HELLO ? "linkraft-hello" : "linkraft-welcome";
    return net_auth_check(fz_hs_secret, FZ_HS_SECRET_LEN, label, t, w->mac);
}

/* The MAC properties of an accepted HELLO or WELCOME held in frame. */
static void fz_hs_check_proof(uint8_t *frame, size_t len, const struct net_wire_msg *w, uint8_t flip)
{
    struct net_transcript t;
    fz_hs_transcript(w, &t);
    const char *label = w->kind == NET_WIRE_HELLO ? "linkraft-hello" : "linkraft-welcome";
    const char *other = w->kind == NET_WIRE_HELLO ? "linkraft-welcome" : "linkraft-hello";
    uint8_t mac[NET_MAC_BYTES];
    net_auth_mac(fz_hs_secret, FZ_HS_SECRET_LEN, label, &t, mac);
    /* What the input carried passes exactly when it is that proof (the
     * fuzzer cannot find it without the secret; a seed may carry it). */
    FUZZ_CHECK(fz_hs_mac_ok(w, &t) == (memcmp(w->mac, mac, NET_MAC_BYTES) == 0));

    /* The real proof written into the frame's MAC field passes ... */
    memcpy(frame + len - NET_MAC_BYTES, mac, NET_MAC_BYTES);
    struct net_wire_msg v;
    FUZZ_CHECK(fz_hs_decode(frame, len, &v));
    FUZZ_CHECK(fz_hs_mac_ok(&v, &t));
    /* ... not under the other label (a WELCOME is no HELLO) ... */
    FUZZ_CHECK(!net_auth_check(fz_hs_secret, FZ_HS_SECRET_LEN, other, &t, v.mac));
    /* ... and not once a bit of the frame after its header changes: the MAC
     * itself, or a field it covers. */
    size_t at = NET_WIRE_HEADER_BYTES + (size_t)flip % (len - NET_WIRE_HEADER_BYTES);
    frame[at] ^= (uint8_t)(1u << (flip % 8));
    if (fz_hs_decode(frame, len, &v)) {
        struct net_transcript t2;
        fz_hs_transcript(&v, &t2);
        /* The acceptor's half of the transcript is its own, unchanged. */
        FUZZ_CHECK(!fz_hs_mac_ok(&v, &t2));
    }
}

/* Records: the input as bytes arriving after a handshake, then sealed. */
static void fz_hs_records(const uint8_t *data, size_t size, uint8_t flip)
{
    struct net_transcript t = { .from = 1, .to = 2 };
    struct net_seal d2a, a2d;
    net_session_keys(fz_hs_secret, FZ_HS_SECRET_LEN, &t, &d2a, &a2d);

    const size_t max_plain = 4096;
    long rl = net_record_size(data, size, max_plain);
    FUZZ_CHECK(rl >= -1);
    if (rl > 0) {
        FUZZ_CHECK((size_t)rl <= size && (size_t)rl >= NET_SEAL_OVERHEAD &&
                   (size_t)rl - NET_SEAL_OVERHEAD <= max_plain);
        uint8_t *rec = malloc((size_t)rl);
        FUZZ_CHECK(rec);
        memcpy(rec, data, (size_t)rl);
        struct net_seal rx = d2a;
        FUZZ_CHECK(net_open(&rx, rec, (size_t)rl) != 0); /* forged */
        FUZZ_CHECK(rx.counter == 0);
        free(rec);
    }

    if (size > max_plain)
        size = max_plain;
    uint8_t *sealed = malloc(size + NET_SEAL_OVERHEAD);
    FUZZ_CHECK(sealed);
    struct net_seal tx = d2a, rx = d2a, wrong = a2d;
    net_seal(&tx, data, size, sealed);
    FUZZ_CHECK(net_record_size(sealed, size + NET_SEAL_OVERHEAD, max_plain) == (long)(size + NET_SEAL_OVERHEAD));
    uint8_t *copy = malloc(size + NET_SEAL_OVERHEAD);
    FUZZ_CHECK(copy);
    memcpy(copy, sealed, size + NET_SEAL_OVERHEAD);
    /* Not under the other direction's key. */
    FUZZ_CHECK(net_open(&wrong, copy, size + NET_SEAL_OVERHEAD) != 0);
    memcpy(copy, sealed, size + NET_SEAL_OVERHEAD);
    FUZZ_CHECK(net_open(&rx, copy, size + NET_SEAL_OVERHEAD) == 0);
    FUZZ_CHECK(size == 0 || memcmp(copy + 4, data, size) == 0);
    /* Opened once: the same record again is a replay. */
    memcpy(copy, sealed, size + NET_SEAL_OVERHEAD);
    FUZZ_CHECK(net_open(&rx, copy, size + NET_SEAL_OVERHEAD) != 0);
    /* One bit flipped anywhere (length, ciphertext, tag): refused. */
    struct net_seal fresh = d2a;
    memcpy(copy, sealed, size + NET_SEAL_OVERHEAD);
    copy[(size_t)flip * 7 % (size + NET_SEAL_OVERHEAD)] ^= (uint8_t)(1u << (flip % 8));
    FUZZ_CHECK(net_open(&fresh, copy, size + NET_SEAL_OVERHEAD) != 0);
    free(copy);
    free(sealed);
}

int FUZZ_ENTRY(const uint8_t *data, size_t size)
{
    struct net_wire_msg w;
    uint8_t frame[NET_WIRE_MAX_FRAME];

    /* As given. */
    if (fz_hs_decode(data, size, &w) && (w.kind == NET_WIRE_HELLO || w.kind == NET_WIRE_WELCOME)) {
        memcpy(frame, data, size);
        fz_hs_check_proof(frame, size, &w, size ? data[size - 1] : 0);
    }
    if (size < 2)
        return 0;

    /* As the payload of a frame of the chosen kind with a valid header. */
    uint8_t mode = data[0];
    struct net_wire_msg kind = { .kind = (uint8_t)(NET_WIRE_CHALLENGE + data[1] % 6) };
    size_t len = net_wire_encode(&kind, frame, sizeof frame);
    FUZZ_CHECK(len >= NET_WIRE_HEADER_BYTES);
    size_t plen = len - NET_WIRE_HEADER_BYTES, have = size - 2 < plen ? size - 2 : plen;
    memcpy(frame + NET_WIRE_HEADER_BYTES, data + 2, have);
    memset(frame + NET_WIRE_HEADER_BYTES + have, 0, plen - have);
    /* Mode bit 0: keep the identity's flags byte valid, so the MAC checks
     * are reached more often than 1 in 64. */
    if (mode & 1) {
        size_t id_flags = kind.kind == NET_WIRE_CHALLENGE ? 1 + NET_NONCE_BYTES + 2 * NET_ID_BYTES
                          : kind.kind == NET_WIRE_HELLO  ? 16 + NET_NONCE_BYTES + 2 * NET_ID_BYTES
                                                         : 0;
        if (id_flags)
            frame[NET_WIRE_HEADER_BYTES + id_flags] &= NET_WIRE_ID_KNOWN | NET_WIRE_ID_JOINED;
    }
    if (fz_hs_decode(frame, len, &w) && (w.kind == NET_WIRE_HELLO || w.kind == NET_WIRE_WELCOME))
        fz_hs_check_proof(frame, len, &w, mode);

    /* Mode bit 1: the rest of the input as sealed records instead. */
    if (mode & 2)
        fz_hs_records(data + 2, size - 2, mode);
    return 0;
}
