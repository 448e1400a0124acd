/*
 * test_net.c — the peer transport, end to end over real TCP on 127.0.0.1
 * (and [::1]) ports 20000-20999: two or three transports and hand-written
 * hostile clients share ONE libuv loop in this process, and every wait runs
 * the loop until a condition holds or a generous deadline passes (deadlines
 * only stop a broken test from hanging; no timing is asserted). Covers
 * delivery of every message type in order, queueing and dropping while a
 * peer is down, redial after restart, secrets, garbage of every kind, silent
 * peers and partitions, IPv6 and names, and prints a throughput figure.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <uv.h>
#include <sodium.h>

#include "../harness.h"
#include "common/crc32c.h"
#include "net.h"
#include "net/internal.h"
#include "net/wire.h"
#include "raft_codec.h"

/* ---- The loop and waiting -------------------------------------------------- */

static uv_loop_t loop;
static uv_timer_t deadline;
static int deadline_hit;

static void on_deadline(uv_timer_t *t)
{
    deadline_hit = 1;
}

static void loop_setup(void)
{
    uv_loop_init(&loop);
    uv_timer_init(&loop, &deadline);
}

static void loop_teardown(void)
{
    uv_close((uv_handle_t *)&deadline, NULL);
    uv_run(&loop, UV_RUN_DEFAULT); /* returns once every handle is closed */
    CHECK_EQ_I(uv_loop_close(&loop), 0); /* a leaked handle fails here */
}

static void deadline_start(unsigned ms)
{
    deadline_hit = 0;
    uv_timer_start(&deadline, on_deadline, ms, 0);
}

/* Runs the loop until cond holds or ms pass; evaluates to cond. */
#define WAIT_UNTIL(cond, ms) ({ \
    deadline_start(ms); \
    while (!(cond) && !deadline_hit) \
        uv_run(&loop, UV_RUN_ONCE); \
    uv_timer_stop(&deadline); \
    (cond); })

/* Runs the loop for ms (to let something that must NOT happen have its chance). */
static void run_for(unsigned ms)
{
    deadline_start(ms);
    while (!deadline_hit)
        uv_run(&loop, UV_RUN_ONCE);
}

/* ---- Receivers ------------------------------------------------------------------ */

struct rx {
    size_t count;
    size_t from_count[8];
    uint64_t next_seq[8];  /* per sender: APPENDs carry a sequence number in prev_index */
    size_t out_of_order;
    int keep;              /* keep each message re-encoded, to compare */
    uint8_t **enc;
    size_t *enc_len;
    size_t cap;
};

static void on_recv(void *ctx, const struct raft_message *m)
{
    struct rx *r = ctx;
    if (m->from < 8)
        r->from_count[m->from]++;
    if (m->type == RAFT_MSG_APPEND && !r->keep && m->from < 8) {
        if (m->prev_index != r->next_seq[m->from])
            r->out_of_order++;
        r->next_seq[m->from] = m->prev_index + 1;
    }
    if (r->keep) {
        if (r->count == r->cap) {
            r->cap = r->cap ? 2 * r->cap : 16;
            r->enc = realloc(r->enc, r->cap * sizeof *r->enc);
            r->enc_len = realloc(r->enc_len, r->cap * sizeof *r->enc_len);
        }
        size_t sz = raft_codec_size(m);
        r->enc[r->count] = malloc(sz);
        r->enc_len[r->count] = (size_t)raft_codec_encode(m, r->enc[r->count], sz);
    }
    r->count++;
}

static void rx_free(struct rx *r)
{
    for (size_t i = 0; r->keep && i < r->count; i++)
        free(r->enc[i]);
    free(r->enc);
    free(r->enc_len);
    memset(r, 0, sizeof *r);
}

/* ---- Transports ------------------------------------------------------------------ */

static void on_stopped(void *arg)
{
    (*(int *)arg)++;
}

static void stop_net(struct net *n)
{
    int done = 0;
    net_stop(n, on_stopped, &done);
    CHECK(WAIT_UNTIL(done == 1, 5000));
}

static char addr_buf[8][64];
static const char *addr(int slot, unsigned port)
{
    snprintf(addr_buf[slot], sizeof addr_buf[slot], "127.0.0.1:%u", port);
    return addr_buf[slot];
}

/* Fast timeouts so failures are detected quickly in tests. */
static void fast_options(struct net_options *o, raft_id self, const char *listen)
{
    net_options_default(o, self, listen);
    o->connect_timeout_ms = 300;
    o->idle_timeout_ms = 400;
    o->backoff_min_ms = 10;
    o->backoff_max_ms = 100;
    o->seed = self * 7919;
}

static struct net *start(raft_id self, const char *listen, struct rx *r, const struct net_options *given)
{
    struct net_options o;
    if (given)
        o = *given;
    else
        fast_options(&o, self, listen);
    o.self = self;
    o.listen_addr = listen;
    struct net *n = NULL;
    char err[256] = "";
    if (net_start(&loop, &o, on_recv, r, &n, err, sizeof err) != 0)
        fprintf(stderr, "  net_start %s: %s\n", listen, err);
    /* The tests' transports dial in one direction only: ids 1-8 may dial
     * them (an acceptor refuses ids it does not know: see
     * unknown_ids_are_refused_at_the_handshake). */
    for (raft_id id = 1; n && id <= 8; id++)
        net_allow_id(n, id);
    return n;
}

static struct net_stats stats(const struct net *n)
{
    struct net_stats s;
    net_get_stats(n, &s);
    return s;
}

static uint8_t payload[2u * 1024 * 1024];

static struct raft_message append_msg(raft_id from, raft_id to, uint64_t seq, struct raft_entry *e, uint32_t len)
{
    e->term = 3;
    e->index = seq + 1;
    e->type = RAFT_ENTRY_COMMAND;
    e->len = len;
    e->data = len ? payload + (seq % 1000) : NULL;
    struct raft_message m = { .type = RAFT_MSG_APPEND, .from = from, .to = to, .term = 3, .prev_index = seq,
                              .prev_term = 3, .commit = seq, .n_entries = 1, .entries = e };
    return m;
}

/* Sends count 1 KiB APPENDs numbered from *seq; returns how many were queued. */
static size_t send_appends(struct net *n, raft_id from, raft_id to, uint64_t *seq, size_t count)
{
    size_t ok = 0;
    for (size_t i = 0; i < count; i++) {
        struct raft_entry e;
        struct raft_message m = append_msg(from, to, *seq, &e, 1024);
        int rc = net_send(n, &m);
        if (rc == 0) {
            ok++;
            (*seq)++;
        }
    }
    return ok;
}

/* ---- Hand-written clients and listeners ----------------------------------------- */

/* A raw TCP client that can speak the handshake itself (as node `from`) and
 * then write anything. */
struct raw {
    uv_tcp_t tcp;
    uv_connect_t req;
    int connected, eof, closed, connect_failed;
    int auto_hello;            /* answer CHALLENGE with a HELLO(from, to) */
    raft_id from, to;
    int challenged, welcomed, refused, pongs;
    uint8_t reason;
    uint64_t pong_seq;
    uint8_t in[4096];
    size_t in_len;
};

static void raw_closed(uv_handle_t *h)
{
    ((struct raw *)h->data)->closed = 1;
}

static void raw_close(struct raw *r)
{
    if (!uv_is_closing((uv_handle_t *)&r->tcp))
        uv_close((uv_handle_t *)&r->tcp, raw_closed);
}

struct raw_write {
    uv_write_t req;
    uint8_t data[];
};

static void raw_written(uv_write_t *req, int status)
{
    free(req);
}

static void raw_send(uv_stream_t *s, const void *data, size_t len)
{
    struct raw_write *w = malloc(sizeof *w + len);
    memcpy(w->data, data, len);
    uv_buf_t b = uv_buf_init((char *)w->data, (unsigned)len);
    if (uv_write(&w->req, s, &b, 1, raw_written) != 0)
        free(w);
}

static void raw_send_wire(uv_stream_t *s, const struct net_wire_msg *w)
{
    uint8_t buf[NET_WIRE_MAX_FRAME];
    size_t len = net_wire_encode(w, buf, sizeof buf);
    raw_send(s, buf, len);
}

static void raw_alloc(uv_handle_t *h, size_t suggested, uv_buf_t *b)
{
    struct raw *r = h->data;
    *b = uv_buf_init((char *)r->in + r->in_len, (unsigned)(sizeof r->in - r->in_len));
}

static void raw_read(uv_stream_t *s, ssize_t nread, const uv_buf_t *b)
{
    struct raw *r = s->data;
    if (nread < 0) {
        r->eof = 1;
        raw_close(r);
        return;
    }
    r->in_len += (size_t)nread;
    size_t pos = 0;
    for (;;) {
        long fl = net_wire_frame_size(r->in + pos, r->in_len - pos);
        if (fl <= 0)
            break;
        struct net_wire_msg w;
        if (net_wire_decode(r->in + pos, (size_t)fl, &w) == 0) {
            if (w.kind == NET_WIRE_CHALLENGE) {
                r->challenged = 1;
                if (r->auto_hello) {
                    struct net_wire_msg h = { .kind = NET_WIRE_HELLO, .from = r->from, .to = r->to };
                    raw_send_wire(s, &h);
                }
            } else if (w.kind == NET_WIRE_WELCOME) {
                r->welcomed = 1;
            } else if (w.kind == NET_WIRE_PONG) {
                r->pongs++;
                r->pong_seq = w.seq;
            } else if (w.kind == NET_WIRE_REFUSE) {
                r->refused = 1;
                r->reason = w.reason;
            }
        }
        pos += (size_t)fl;
    }
    memmove(r->in, r->in + pos, r->in_len - pos);
    r->in_len -= pos;
}

static void raw_connected(uv_connect_t *req, int status)
{
    struct raw *r = req->data;
    if (status < 0) {
        r->connect_failed = 1;
        raw_close(r);
        return;
    }
    r->connected = 1;
    uv_read_start((uv_stream_t *)&r->tcp, raw_alloc, raw_read);
}

static void raw_connect(struct raw *r, unsigned port, int auto_hello, raft_id from, raft_id to)
{
    memset(r, 0, sizeof *r);
    r->auto_hello = auto_hello;
    r->from = from;
    r->to = to;
    uv_tcp_init(&loop, &r->tcp);
    r->tcp.data = r;
    r->req.data = r;
    struct sockaddr_in sa;
    uv_ip4_addr("127.0.0.1", (int)port, &sa);
    uv_tcp_connect(&r->req, &r->tcp, (const struct sockaddr *)&sa, raw_connected);
}

/* Waits for the other side to close r; returns 1 if it did. If it does not,
 * r is closed here so that the test can go on (and fail) safely. */
static int raw_wait_closed(struct raw *r)
{
    deadline_start(5000);
    while (!r->closed && !deadline_hit)
        uv_run(&loop, UV_RUN_ONCE);
    uv_timer_stop(&deadline);
    if (r->closed)
        return 1;
    raw_close(r);
    while (!r->closed)
        uv_run(&loop, UV_RUN_ONCE);
    return 0;
}

/* A fake acceptor: listens; either never accepts (mode SILENT: the kernel
 * completes TCP connections into the backlog and nothing answers) or accepts,
 * completes the handshake (no secret) and then never reads or writes again
 * (mode BLACKHOLE: a partition that drops everything after the handshake). */
enum { FAKE_SILENT, FAKE_BLACKHOLE, FAKE_IMPOSTOR /* claims to need a secret it does not know */ };
struct fake_conn {
    uv_tcp_t tcp;
    struct fake *f;
    uint8_t in[256];
    size_t in_len;
    int welcomed;
};
struct fake {
    uv_tcp_t listener;
    int mode;
    size_t accepted, welcomed;
    struct fake_conn *conns[32];
    size_t n_conns;
};

static void fake_conn_alloc(uv_handle_t *h, size_t suggested, uv_buf_t *b)
{
    struct fake_conn *c = h->data;
    *b = uv_buf_init((char *)c->in + c->in_len, (unsigned)(sizeof c->in - c->in_len));
}

static void fake_conn_read(uv_stream_t *s, ssize_t nread, const uv_buf_t *b)
{
    struct fake_conn *c = s->data;
    if (nread < 0) {
        uv_read_stop(s);
        return;
    }
    c->in_len += (size_t)nread;
    long fl = net_wire_frame_size(c->in, c->in_len);
    struct net_wire_msg w;
    if (fl > 0 && net_wire_decode(c->in, (size_t)fl, &w) == 0 && w.kind == NET_WIRE_HELLO) {
        struct net_wire_msg welcome = { .kind = NET_WIRE_WELCOME };
        memset(welcome.mac, 0x42, sizeof welcome.mac); /* a guess; ignored without a secret */
        raw_send_wire(s, &welcome);
        c->welcomed = 1;
        c->f->welcomed++;
        uv_read_stop(s); /* from now on: silence, in both directions */
    }
}

static void fake_on_connection(uv_stream_t *l, int status)
{
    struct fake *f = l->data;
    if (f->mode == FAKE_SILENT || status < 0 || f->n_conns == 32)
        return;
    struct fake_conn *c = calloc(1, sizeof *c);
    c->f = f;
    uv_tcp_init(&loop, &c->tcp);
    c->tcp.data = c;
    uv_accept(l, (uv_stream_t *)&c->tcp);
    f->conns[f->n_conns++] = c;
    f->accepted++;
    struct net_wire_msg ch = { .kind = NET_WIRE_CHALLENGE, .flags = f->mode == FAKE_IMPOSTOR ? NET_CHALLENGE_SECRET : 0 };
    raw_send_wire((uv_stream_t *)&c->tcp, &ch);
    uv_read_start((uv_stream_t *)&c->tcp, fake_conn_alloc, fake_conn_read);
}

static void fake_start(struct fake *f, unsigned port, int mode)
{
    memset(f, 0, sizeof *f);
    f->mode = mode;
    uv_tcp_init(&loop, &f->listener);
    f->listener.data = f;
    struct sockaddr_in sa;
    uv_ip4_addr("127.0.0.1", (int)port, &sa);
    CHECK_EQ_I(uv_tcp_bind(&f->listener, (const struct sockaddr *)&sa, 0), 0);
    CHECK_EQ_I(uv_listen((uv_stream_t *)&f->listener, 16, fake_on_connection), 0);
}

static void fake_conn_closed(uv_handle_t *h)
{
    free(h->data);
}

static void fake_stop(struct fake *f)
{
    for (size_t i = 0; i < f->n_conns; i++)
        uv_close((uv_handle_t *)&f->conns[i]->tcp, fake_conn_closed);
    uv_close((uv_handle_t *)&f->listener, NULL);
}

/* ---- Tests ------------------------------------------------------------------------ */

TEST(wire_frames_round_trip_and_reject_garbage)
{
    uint8_t buf[NET_WIRE_MAX_FRAME];
    int kinds[] = { NET_WIRE_CHALLENGE, NET_WIRE_HELLO, NET_WIRE_WELCOME, NET_WIRE_REFUSE, NET_WIRE_PING,
                    NET_WIRE_PONG };
    for (size_t k = 0; k < sizeof kinds / sizeof kinds[0]; k++) {
        struct net_wire_msg w = { .kind = (uint8_t)kinds[k], .flags = 1, .from = 0x1122334455667788ULL,
                                  .to = 42, .reason = 3, .seq = 99 };
        memset(w.nonce, 0xab, sizeof w.nonce);
        memset(w.mac, 0xcd, sizeof w.mac);
        memset(w.identity.cluster, 0x11, NET_ID_BYTES);
        memset(w.identity.incarnation, 0x22, NET_ID_BYTES);
        w.identity.cluster_known = true;
        w.identity.joined = k % 2;
        size_t len = net_wire_encode(&w, buf, sizeof buf);
        REQUIRE(len > NET_WIRE_HEADER_BYTES);
        CHECK(net_wire_is_control(buf, len));
        for (size_t cut = 0; cut < len; cut++)
            CHECK_EQ_I(net_wire_frame_size(buf, cut), 0); /* truncated: need more */
        CHECK_EQ_I(net_wire_frame_size(buf, len), (long)len);
        struct net_wire_msg got;
        REQUIRE(net_wire_decode(buf, len, &got) == 0);
        CHECK_EQ_U(got.kind, w.kind);
        if (w.kind == NET_WIRE_HELLO) {
            CHECK_EQ_U(got.from, w.from);
            CHECK_EQ_U(got.to, 42);
            CHECK(!memcmp(got.nonce, w.nonce, sizeof w.nonce) && !memcmp(got.mac, w.mac, sizeof w.mac));
        }
        if (w.kind == NET_WIRE_HELLO || w.kind == NET_WIRE_CHALLENGE) {
            CHECK(!memcmp(&got.identity.cluster, w.identity.cluster, NET_ID_BYTES));
            CHECK(!memcmp(&got.identity.incarnation, w.identity.incarnation, NET_ID_BYTES));
            CHECK(got.identity.cluster_known && got.identity.joined == w.identity.joined);
            /* identity flags other than the two defined ones are malformed */
            uint8_t odd[NET_WIRE_MAX_FRAME];
            memcpy(odd, buf, len);
            odd[len - (w.kind == NET_WIRE_HELLO ? NET_MAC_BYTES : 0) - 1] |= 0x80;
            CHECK_EQ_I(net_wire_decode(odd, len, &got), -1);
        }
        if (w.kind == NET_WIRE_PING)
            CHECK_EQ_U(got.seq, 99);
        CHECK_EQ_I(net_wire_decode(buf, len - 1, &got), -1);
        CHECK_EQ_U(net_wire_encode(&w, buf, len - 1), 0); /* cap too small */
        uint8_t bad[NET_WIRE_MAX_FRAME];
        memcpy(bad, buf, len);
        bad[5] = 1; /* version (1 had no identities) */
        CHECK_EQ_I(net_wire_frame_size(bad, len), -1);
        memcpy(bad, buf, len);
        bad[6] ^= 1; /* payload length */
        CHECK_EQ_I(net_wire_frame_size(bad, len), -1);
        memcpy(bad, buf, len);
        bad[4] = 77; /* kind */
        CHECK_EQ_I(net_wire_frame_size(bad, len), -1);
    }
    struct net_wire_msg unknown = { .kind = 0 };
    CHECK_EQ_U(net_wire_encode(&unknown, buf, sizeof buf), 0);
}

TEST(backoff_doubles_to_the_cap_with_jitter)
{
    struct net_options o;
    net_options_default(&o, 1, "127.0.0.1:1");
    o.backoff_min_ms = 50;
    o.backoff_max_ms = 1000;
    unsigned want[] = { 50, 100, 200, 400, 800, 1000, 1000, 1000 };
    for (unsigned f = 1; f <= 8; f++) {
        unsigned d = want[f - 1], lo = ~0u, hi = 0;
        for (uint64_t r = 0; r < 2000; r++) {
            unsigned ms = net__backoff_ms(&o, f, r * 0x9E3779B97F4A7C15ULL);
            lo = ms < lo ? ms : lo;
            hi = ms > hi ? ms : hi;
        }
        CHECK(lo >= d - d / 2 && hi <= d);
        CHECK(hi - lo >= d / 4); /* it is spread, not constant */
    }
    CHECK_EQ_U(net__backoff_ms(&o, 1000000, 0), 500); /* no overflow after many failures */
}

TEST(load_secret_checks_the_file)
{
    char dir[] = "/tmp/test_net_XXXXXX";
    REQUIRE(mkdtemp(dir));
    char path[128], err[256];
    uint8_t *s = NULL;
    size_t len = 0;
    snprintf(path, sizeof path, "%s/secret", dir);

    FILE *f = fopen(path, "w");
    fputs("0123456789abcdefXYZ\n", f);
    fclose(f);
    /* Readable by group or others: refused, saying how to fix it. */
    chmod(path, 0644);
    CHECK_EQ_I(net_load_secret(path, &s, &len, err, sizeof err), -1);
    CHECK(strstr(err, "accessible by group or others (mode 0644)") != NULL);
    CHECK(strstr(err, "chmod 600") != NULL);
    CHECK(s == NULL);
    chmod(path, 0640);
    CHECK_EQ_I(net_load_secret(path, &s, &len, err, sizeof err), -1);
    chmod(path, 0600);
    CHECK_EQ_I(net_load_secret(path, &s, &len, err, sizeof err), 0);
    CHECK_EQ_U(len, 19); /* newline stripped */
    CHECK(s && !memcmp(s, "0123456789abcdefXYZ", 19));
    free(s);

    f = fopen(path, "w");
    fputs("short\n", f);
    fclose(f);
    CHECK_EQ_I(net_load_secret(path, &s, &len, err, sizeof err), -1);
    CHECK(strstr(err, "16 to 1024 bytes") != NULL);
    CHECK(s == NULL);

    f = fopen(path, "w");
    for (int i = 0; i < 2000; i++)
        fputc('x', f);
    fclose(f);
    CHECK_EQ_I(net_load_secret(path, &s, &len, err, sizeof err), -1);
    CHECK(strstr(err, "over 1024") != NULL);

    unlink(path);
    CHECK_EQ_I(net_load_secret(path, &s, &len, err, sizeof err), -1);
    CHECK(strstr(err, "cannot open secret file") != NULL);
    rmdir(dir);
}

TEST(loopback_addresses_are_told_apart)
{
    CHECK(net_addr_is_loopback("127.0.0.1:7001"));
    CHECK(net_addr_is_loopback("127.3.2.1:7001"));
    CHECK(net_addr_is_loopback("[::1]:7001"));
    CHECK(net_addr_is_loopback("localhost:7001"));
    CHECK(!net_addr_is_loopback("10.0.0.1:7001"));
    CHECK(!net_addr_is_loopback("0.0.0.0:7001"));
    CHECK(!net_addr_is_loopback("[::]:7001"));
    CHECK(!net_addr_is_loopback("128.0.0.1:7001"));
    CHECK(!net_addr_is_loopback("node3.example:7001"));
    CHECK(!net_addr_is_loopback("garbage"));
}

TEST(bad_arguments_get_clear_errors)
{
    loop_setup();
    struct net_options o;
    struct net *n = NULL;
    char err[256];
    struct rx r = { 0 };
    net_options_default(&o, 1, "nonsense");
    CHECK_EQ_I(net_start(&loop, &o, on_recv, &r, &n, err, sizeof err), -1);
    CHECK(strstr(err, "cannot listen on nonsense") != NULL);
    net_options_default(&o, 0, "127.0.0.1:20010");
    CHECK_EQ_I(net_start(&loop, &o, on_recv, &r, &n, err, sizeof err), -1);
    CHECK(strstr(err, "must not be 0") != NULL);
    net_options_default(&o, 1, "127.0.0.1:20010");
    o.secret = (const uint8_t *)"short";
    o.secret_len = 5;
    CHECK_EQ_I(net_start(&loop, &o, on_recv, &r, &n, err, sizeof err), -1);
    CHECK(strstr(err, "secret") != NULL);

    struct net *a = start(1, addr(0, 20010), &r, NULL);
    REQUIRE(a);
    /* The port is taken: the second bind fails with the reason. */
    net_options_default(&o, 2, "127.0.0.1:20010");
    CHECK_EQ_I(net_start(&loop, &o, on_recv, &r, &n, err, sizeof err), -1);
    CHECK(strstr(err, "cannot bind 127.0.0.1:20010: address already in use") != NULL);

    CHECK_EQ_I(net_set_peer(a, 2, "no-port"), -1);
    CHECK_EQ_I(net_set_peer(a, 2, "1.2.3.4:99999"), -1);
    CHECK_EQ_I(net_set_peer(a, 1, "127.0.0.1:20011"), -1); /* self */
    CHECK_EQ_I(net_set_peer(a, 0, "127.0.0.1:20011"), -1);

    struct raft_message m = { .type = RAFT_MSG_HEARTBEAT, .from = 1, .to = 9, .term = 1 };
    CHECK_EQ_I(net_send(a, &m), 1); /* unknown peer */
    CHECK_EQ_U(stats(a).dropped_unknown_peer, 1);
    CHECK_EQ_I(net_set_peer(a, 2, "127.0.0.1:20011"), 0); /* nobody there */
    m.to = 2;
    m.from = 3;
    CHECK_EQ_I(net_send(a, &m), -1); /* not from self */
    struct raft_message snap = { .type = RAFT_MSG_SNAPSHOT, .from = 1, .to = 2, .term = 1, .len = 10 };
    CHECK_EQ_I(net_send(a, &snap), -1); /* chunk without data cannot be encoded */
    m.type = 200;
    m.from = 1;
    CHECK_EQ_I(net_send(a, &m), -1);
    CHECK_EQ_U(net_peer_queued_bytes(a, 2), 0);
    /* Removing a peer while it dials (and re-adding, and removing again) leaks nothing. */
    net_remove_peer(a, 2);
    CHECK(!net_peer_connected(a, 2));
    CHECK_EQ_I(net_set_peer(a, 2, "127.0.0.1:20011"), 0);
    run_for(30);
    net_remove_peer(a, 2);
    stop_net(a);
    loop_teardown();
}

/* One message of every type, with entries and chunk data, both directions. */
TEST(every_message_type_arrives_intact_and_in_order)
{
    loop_setup();
    struct rx ra = { .keep = 1 }, rb = { .keep = 1 };
    /* Keepalive ticks every 15 s here: frames must go out without waiting
     * for any timer. */
    struct net_options o;
    fast_options(&o, 1, NULL);
    o.idle_timeout_ms = 60000;
    struct net *a = start(1, addr(0, 20020), &ra, &o);
    struct net *b = start(2, addr(1, 20021), &rb, &o);
    REQUIRE(a && b);
    CHECK_EQ_I(net_set_peer(a, 2, addr(1, 20021)), 0);
    CHECK_EQ_I(net_set_peer(b, 1, addr(0, 20020)), 0);
    for (size_t i = 0; i < sizeof payload; i++)
        payload[i] = (uint8_t)(i * 131 + (i >> 9));

    uint8_t cfg[64];
    struct raft_config c = { .n = 3, .members = { { 1, RAFT_VOTER, 0 }, { 2, RAFT_VOTER, 0 }, { 5, RAFT_LEARNER, 1 } } };
    int cfg_len = raft_config_encode(&c, cfg, sizeof cfg);
    REQUIRE(cfg_len > 0);
    struct raft_entry ents[3] = {
        { .term = 4, .index = 10, .type = RAFT_ENTRY_COMMAND, .len = 300, .data = payload + 7 },
        { .term = 4, .index = 11, .type = RAFT_ENTRY_NOOP },
        { .term = 5, .index = 12, .type = RAFT_ENTRY_CONFIG, .len = (uint32_t)cfg_len, .data = cfg },
    };
    struct raft_entry big = { .term = 5, .index = 13, .type = RAFT_ENTRY_COMMAND, .len = 1u << 20, .data = payload };
    struct raft_message msgs[] = {
        { .type = RAFT_MSG_APPEND, .term = 5, .prev_index = 9, .prev_term = 4, .commit = 8, .n_entries = 3, .entries = ents },
        { .type = RAFT_MSG_APPEND, .term = 5, .prev_index = 12, .prev_term = 5, .commit = 12 },
        { .type = RAFT_MSG_APPEND, .term = 5, .prev_index = 12, .prev_term = 5, .commit = 12, .n_entries = 1, .entries = &big },
        { .type = RAFT_MSG_APPEND_RESP, .term = 5, .reject = 1, .index = 9, .hint_index = 7, .hint_term = 3 },
        { .type = RAFT_MSG_VOTE, .term = 6, .last_index = 13, .last_term = 5, .transfer = 1 },
        { .type = RAFT_MSG_VOTE_RESP, .term = 6, .reject = 1 },
        { .type = RAFT_MSG_PREVOTE, .term = 7, .last_index = 13, .last_term = 5 },
        { .type = RAFT_MSG_PREVOTE_RESP, .term = 7 },
        { .type = RAFT_MSG_HEARTBEAT, .term = 6, .commit = 13, .context = 77 },
        { .type = RAFT_MSG_HEARTBEAT_RESP, .term = 6, .context = 77 },
        { .type = RAFT_MSG_SNAPSHOT, .term = 6, .snapshot = { .index = 100, .term = 6, .config = c, .size = 500000, .crc = 0xdeadbeef },
          .offset = 65536, .len = 5000, .data = payload + 3, .done = 1 },
        { .type = RAFT_MSG_SNAPSHOT_RESP, .term = 6, .index = 100, .offset = 70536, .reject = 0, .done = 1 },
        { .type = RAFT_MSG_TIMEOUT_NOW, .term = 6 },
        { .type = RAFT_MSG_READ_INDEX, .term = 6, .context = 1234567 },
        { .type = RAFT_MSG_READ_INDEX_RESP, .term = 6, .context = 1234567, .index = 99, .reject = 1 },
    };
    size_t nm = sizeof msgs / sizeof msgs[0];
    for (int round = 0; round < 2; round++) { /* round 0 before the link is up (queued), 1 after */
        for (size_t i = 0; i < nm; i++) {
            struct raft_message m = msgs[i];
            m.from = 1;
            m.to = 2;
            CHECK_EQ_I(net_send(a, &m), 0);
            m.from = 2;
            m.to = 1;
            CHECK_EQ_I(net_send(b, &m), 0);
        }
        CHECK(WAIT_UNTIL(rb.count == (round + 1) * nm && ra.count == (round + 1) * nm, 5000));
    }
    REQUIRE(rb.count == 2 * nm && ra.count == 2 * nm);
    for (size_t i = 0; i < 2 * nm; i++) {
        struct raft_message m = msgs[i % nm];
        m.from = 1;
        m.to = 2;
        size_t sz = raft_codec_size(&m);
        uint8_t *want = malloc(sz);
        raft_codec_encode(&m, want, sz);
        CHECK(rb.enc_len[i] == sz && !memcmp(rb.enc[i], want, sz));
        m.from = 2;
        m.to = 1;
        raft_codec_encode(&m, want, sz);
        CHECK(ra.enc_len[i] == sz && !memcmp(ra.enc[i], want, sz));
        free(want);
    }
    struct net_stats sa = stats(a), sb = stats(b);
    CHECK_EQ_U(sa.frames_sent, 2 * nm);
    CHECK_EQ_U(sb.frames_received, 2 * nm);
    CHECK_EQ_U(sa.connects, 1);
    CHECK_EQ_U(sb.inbound_authenticated, 1);
    CHECK_EQ_U(sa.dropped_malformed + sb.dropped_malformed + sa.dropped_queue_full, 0);
    CHECK(net_peer_connected(a, 2) && net_peer_connected(b, 1));
    CHECK_STR(net_peer_last_error(a, 2), "");
    stop_net(a);
    stop_net(b);
    rx_free(&ra);
    rx_free(&rb);
    loop_teardown();
}

TEST(peer_down_queues_to_the_bound_then_delivers_when_it_starts)
{
    loop_setup();
    struct rx ra = { 0 }, rb = { 0 };
    struct net_options o;
    fast_options(&o, 1, addr(0, 20030));
    o.max_queue_bytes = 64 * 1024;
    struct net *a = start(1, addr(0, 20030), &ra, &o);
    REQUIRE(a);
    CHECK_EQ_I(net_set_peer(a, 2, addr(1, 20031)), 0);
    uint64_t seq = 0;
    size_t ok = send_appends(a, 1, 2, &seq, 200);
    CHECK(ok > 0 && ok < 200);
    CHECK_EQ_U(stats(a).dropped_queue_full, 200 - ok);
    CHECK(net_peer_queued_bytes(a, 2) <= o.max_queue_bytes);
    CHECK(net_peer_queued_bytes(a, 2) > o.max_queue_bytes - 2000);
    /* Nobody listens: attempts fail and back off; the queue keeps its frames. */
    CHECK(WAIT_UNTIL(stats(a).dial_failures >= 3, 5000));
    CHECK(strstr(net_peer_last_error(a, 2), "cannot connect to node 2 at 127.0.0.1:20031") != NULL);
    CHECK(!net_peer_connected(a, 2));
    CHECK(net_peer_queued_bytes(a, 2) <= o.max_queue_bytes);

    struct net *b = start(2, addr(1, 20031), &rb, NULL);
    REQUIRE(b);
    CHECK(WAIT_UNTIL(rb.count == ok, 5000));
    CHECK_EQ_U(rb.out_of_order, 0);
    CHECK(net_peer_connected(a, 2));
    CHECK_EQ_U(net_peer_queued_bytes(a, 2), 0);
    size_t more = send_appends(a, 1, 2, &seq, 50);
    CHECK_EQ_U(more, 50);
    CHECK(WAIT_UNTIL(rb.count == ok + 50, 5000));
    CHECK_EQ_U(rb.out_of_order, 0);
    stop_net(a);
    stop_net(b);
    loop_teardown();
}

TEST(restarted_peer_is_redialled)
{
    loop_setup();
    struct rx ra = { 0 }, rb = { 0 }, rb2 = { 0 };
    struct net *a = start(1, addr(0, 20040), &ra, NULL);
    struct net *b = start(2, addr(1, 20041), &rb, NULL);
    REQUIRE(a && b);
    net_set_peer(a, 2, addr(1, 20041));
    uint64_t seq = 0;
    CHECK_EQ_U(send_appends(a, 1, 2, &seq, 10), 10);
    CHECK(WAIT_UNTIL(rb.count == 10, 5000));
    stop_net(b);
    CHECK(WAIT_UNTIL(!net_peer_connected(a, 2), 5000));
    CHECK(WAIT_UNTIL(stats(a).dial_failures >= 1, 5000)); /* refused while down */
    rb2.next_seq[1] = seq;
    b = start(2, addr(1, 20041), &rb2, NULL);
    REQUIRE(b);
    CHECK(WAIT_UNTIL(net_peer_connected(a, 2), 5000));
    CHECK_EQ_U(send_appends(a, 1, 2, &seq, 10), 10);
    CHECK(WAIT_UNTIL(rb2.count == 10, 5000));
    CHECK_EQ_U(rb2.out_of_order, 0);
    struct net_stats s = stats(a);
    CHECK_EQ_U(s.connects, 2);
    CHECK_EQ_U(s.disconnects, 1);
    stop_net(a);
    stop_net(b);
    loop_teardown();
}

TEST(secrets_must_match_in_both_directions)
{
    loop_setup();
    static const uint8_t good[] = "correct horse battery staple";
    static const uint8_t wrong[] = "incorrect horse battery staple";
    struct rx ra = { 0 }, rb = { 0 }, rc = { 0 }, rd = { 0 }, re = { 0 };
    struct net_options o;
    fast_options(&o, 2, NULL);
    o.secret = good;
    o.secret_len = sizeof good - 1;
    struct net *b = start(2, addr(1, 20051), &rb, &o);
    fast_options(&o, 1, NULL);
    o.secret = good;
    o.secret_len = sizeof good - 1;
    struct net *a = start(1, addr(0, 20050), &ra, &o);
    fast_options(&o, 3, NULL);
    o.secret = wrong;
    o.secret_len = sizeof wrong - 1;
    struct net *c = start(3, addr(2, 20052), &rc, &o);
    struct net *d = start(4, addr(3, 20053), &rd, NULL); /* no secret */
    fast_options(&o, 5, NULL);
    o.secret = good;
    o.secret_len = sizeof good - 1;
    struct net *e = start(5, addr(4, 20054), &re, &o);
    REQUIRE(a && b && c && d && e);
    net_set_peer(a, 2, addr(1, 20051));
    net_set_peer(c, 2, addr(1, 20051));
    net_set_peer(d, 2, addr(1, 20051));
    net_set_peer(e, 4, addr(3, 20053)); /* a node with a secret dialing one without */
    uint64_t sa = 0, sc = 0, sd = 0, se = 0;
    CHECK_EQ_U(send_appends(a, 1, 2, &sa, 5), 5);
    CHECK_EQ_U(send_appends(c, 3, 2, &sc, 5), 5);
    CHECK_EQ_U(send_appends(d, 4, 2, &sd, 5), 5);
    CHECK_EQ_U(send_appends(e, 5, 4, &se, 5), 5);
    CHECK(WAIT_UNTIL(rb.from_count[1] == 5 && stats(b).dropped_unauthenticated >= 4 &&
                     stats(c).dial_failures >= 2 && stats(d).dial_failures >= 2 && stats(e).dial_failures >= 2,
                     5000));
    CHECK_EQ_U(rb.from_count[3] + rb.from_count[4] + rd.from_count[5], 0);
    CHECK(!net_peer_connected(c, 2) && !net_peer_connected(d, 2) && !net_peer_connected(e, 4));
    CHECK(net_peer_connected(a, 2));
    CHECK(strstr(net_peer_last_error(c, 2), "refused the handshake: authentication failed") != NULL);
    CHECK(strstr(net_peer_last_error(d, 2), "refused the handshake: authentication failed") != NULL);
    CHECK(strstr(net_peer_last_error(e, 4), "does not use a secret") != NULL);
    CHECK_EQ_U(stats(b).inbound_authenticated, 1);
    CHECK_EQ_U(stats(d).inbound_authenticated, 0);
    /* A node with the secret does not talk to an acceptor that cannot prove
     * it knows the secret (its WELCOME MAC is a guess). */
    struct fake impostor;
    fake_start(&impostor, 20055, FAKE_IMPOSTOR);
    net_set_peer(a, 7, addr(5, 20055));
    CHECK_EQ_U(send_appends(a, 1, 7, &sa, 5), 5);
    CHECK(WAIT_UNTIL(impostor.welcomed >= 2 && stats(a).dial_failures >= 2, 5000));
    CHECK(!net_peer_connected(a, 7));
    CHECK(strstr(net_peer_last_error(a, 7), "does not know the secret") != NULL);
    CHECK_EQ_U(stats(a).frames_sent, 5); /* only the ones to node 2 */
    /* A hand-made HELLO without a MAC is refused too. */
    struct raw r;
    raw_connect(&r, 20051, 1, 6, 2);
    CHECK(raw_wait_closed(&r));
    CHECK(r.refused && r.reason == NET_REFUSE_AUTH && !r.welcomed);
    stop_net(a);
    stop_net(b);
    stop_net(c);
    stop_net(d);
    stop_net(e);
    fake_stop(&impostor);
    loop_teardown();
}

/* Sends a codec frame for m (after the handshake) with an optional corruption. */
static void raw_send_msg(struct raw *r, const struct raft_message *m, int flip_crc, uint32_t fake_len)
{
    size_t sz = raft_codec_size(m);
    uint8_t *b = malloc(sz);
    raft_codec_encode(m, b, sz);
    if (flip_crc)
        b[8] ^= 0x5a;
    if (fake_len) {
        b[4] = (uint8_t)fake_len;
        b[5] = (uint8_t)(fake_len >> 8);
        b[6] = (uint8_t)(fake_len >> 16);
        b[7] = (uint8_t)(fake_len >> 24);
        sz = RAFT_CODEC_HEADER_BYTES; /* and never send the body */
    }
    raw_send((uv_stream_t *)&r->tcp, b, sz);
    free(b);
}

TEST(garbage_is_dropped_counted_and_the_good_peer_keeps_working)
{
    loop_setup();
    struct rx ra = { 0 }, rb = { 0 };
    struct net_options o;
    fast_options(&o, 2, NULL);
    o.max_frame_bytes = 256 * 1024;
    struct net *b = start(2, addr(1, 20061), &rb, &o);
    struct net *a = start(1, addr(0, 20060), &ra, NULL);
    REQUIRE(a && b);
    net_set_peer(a, 2, addr(1, 20061));
    uint64_t seq = 0;
    CHECK_EQ_U(send_appends(a, 1, 2, &seq, 20), 20);
    CHECK(WAIT_UNTIL(rb.count == 20, 5000));
    uint64_t malformed = 0, unauth = 0;
    struct raw r;
    struct raft_entry e;
    struct raft_message good3 = append_msg(3, 2, 0, &e, 100);

    /* 1. random bytes */
    raw_connect(&r, 20061, 0, 0, 0);
    CHECK(WAIT_UNTIL(r.challenged, 5000));
    uint8_t junk[1000];
    uint64_t x = 88172645463325252ULL;
    for (size_t i = 0; i < sizeof junk; i++) {
        x ^= x << 13, x ^= x >> 7, x ^= x << 17;
        junk[i] = (uint8_t)x;
    }
    junk[0] = 'Z';
    raw_send((uv_stream_t *)&r.tcp, junk, sizeof junk);
    CHECK(raw_wait_closed(&r));
    CHECK_EQ_U(stats(b).dropped_malformed, ++malformed);

    /* 2. a Raft frame before any handshake */
    raw_connect(&r, 20061, 0, 0, 0);
    CHECK(WAIT_UNTIL(r.challenged, 5000));
    raw_send_msg(&r, &good3, 0, 0);
    CHECK(raw_wait_closed(&r));
    CHECK_EQ_U(stats(b).dropped_malformed, ++malformed);

    /* 3. a control frame of an unknown kind */
    raw_connect(&r, 20061, 0, 0, 0);
    CHECK(WAIT_UNTIL(r.challenged, 5000));
    uint8_t ctl[NET_WIRE_MAX_FRAME];
    struct net_wire_msg ping = { .kind = NET_WIRE_PING };
    size_t cl = net_wire_encode(&ping, ctl, sizeof ctl);
    ctl[4] = 99;
    raw_send((uv_stream_t *)&r.tcp, ctl, cl);
    CHECK(raw_wait_closed(&r));
    CHECK_EQ_U(stats(b).dropped_malformed, ++malformed);

    /* 4. a HELLO for another node id */
    raw_connect(&r, 20061, 1, 3, 9);
    CHECK(raw_wait_closed(&r));
    CHECK(r.refused && r.reason == NET_REFUSE_WRONG_NODE);
    CHECK_EQ_U(stats(b).dropped_unauthenticated, ++unauth);

    /* 5. a HELLO claiming to be the acceptor itself */
    raw_connect(&r, 20061, 1, 2, 2);
    CHECK(raw_wait_closed(&r));
    CHECK(r.refused && r.reason == NET_REFUSE_BAD_ID);
    CHECK_EQ_U(stats(b).dropped_unauthenticated, ++unauth);

    /* 6. slowloris: part of a HELLO, then nothing: cut at connect_timeout_ms */
    raw_connect(&r, 20061, 0, 0, 0);
    CHECK(WAIT_UNTIL(r.challenged, 5000));
    raw_send((uv_stream_t *)&r.tcp, "LRN", 3);
    CHECK(raw_wait_closed(&r));
    CHECK(r.eof);
    CHECK_EQ_U(stats(b).dropped_unauthenticated, ++unauth);

    /* 7. authenticated as 3, then a header announcing a frame over the limit
     *    (1 MiB > max_frame_bytes 256 KiB), then one over the codec's limit */
    uint32_t lens[] = { 1u << 20, 0xfffffff0u };
    for (int i = 0; i < 2; i++) {
        raw_connect(&r, 20061, 1, 3, 2);
        CHECK(WAIT_UNTIL(r.welcomed, 5000));
        raw_send_msg(&r, &good3, 0, lens[i]);
        CHECK(raw_wait_closed(&r));
        CHECK_EQ_U(stats(b).dropped_malformed, ++malformed);
    }

    /* 8. authenticated as 3: one good frame (delivered), then a bad CRC */
    raw_connect(&r, 20061, 1, 3, 2);
    CHECK(WAIT_UNTIL(r.welcomed, 5000));
    raw_send_msg(&r, &good3, 0, 0);
    CHECK(WAIT_UNTIL(rb.from_count[3] == 1, 5000));
    raw_send_msg(&r, &good3, 1, 0);
    CHECK(raw_wait_closed(&r));
    CHECK_EQ_U(stats(b).dropped_malformed, ++malformed);
    CHECK_EQ_U(rb.from_count[3], 1);

    /* 9. authenticated as 3, frame claiming to be from 4; then one for node 5 */
    for (int i = 0; i < 2; i++) {
        raw_connect(&r, 20061, 1, 3, 2);
        CHECK(WAIT_UNTIL(r.welcomed, 5000));
        struct raft_message lie = append_msg(i == 0 ? 4 : 3, i == 0 ? 2 : 5, 0, &e, 100);
        raw_send_msg(&r, &lie, 0, 0);
        CHECK(raw_wait_closed(&r));
        CHECK_EQ_U(stats(b).dropped_malformed, ++malformed);
    }
    CHECK_EQ_U(rb.from_count[4] + rb.from_count[3], 1);

    /* 10. valid header, body bytes that do not decode (bad fields, good CRC) */
    raw_connect(&r, 20061, 1, 3, 2);
    CHECK(WAIT_UNTIL(r.welcomed, 5000));
    {
        size_t sz = raft_codec_size(&good3);
        uint8_t *fb = malloc(sz);
        raft_codec_encode(&good3, fb, sz);
        fb[RAFT_CODEC_HEADER_BYTES + 1] = 200; /* unknown type, CRC recomputed below */
        uint32_t crc = crc32c(fb + RAFT_CODEC_HEADER_BYTES, sz - RAFT_CODEC_HEADER_BYTES);
        for (int k = 0; k < 4; k++)
            fb[8 + k] = (uint8_t)(crc >> (8 * k));
        raw_send((uv_stream_t *)&r.tcp, fb, sz);
        free(fb);
    }
    CHECK(raw_wait_closed(&r));
    CHECK_EQ_U(stats(b).dropped_malformed, ++malformed);

    /* The good peer never noticed. */
    CHECK_EQ_U(send_appends(a, 1, 2, &seq, 100), 100);
    CHECK(WAIT_UNTIL(rb.from_count[1] == 120, 5000));
    CHECK_EQ_U(rb.out_of_order, 0);
    CHECK_EQ_U(stats(a).connects, 1);
    CHECK_EQ_U(stats(a).disconnects, 0);
    stop_net(a);
    stop_net(b);
    loop_teardown();
}

/* Peers that accept TCP and then say nothing: one never accepts (the
 * handshake times out), one completes the handshake and then drops
 * everything (a partition: detected by the keepalive, redialled). Neither
 * slows the good peer; their queues stay within the bound. */
struct silent_ctx {
    struct net *a;
    uint64_t seq[4];
    size_t sent_b;
    size_t max_queued;
    int sending;
};

static void on_send_tick(uv_timer_t *t)
{
    struct silent_ctx *s = t->data;
    if (!s->sending)
        return;
    s->sent_b += send_appends(s->a, 1, 2, &s->seq[2], 40);
    send_appends(s->a, 1, 3, &s->seq[3], 40);
    send_appends(s->a, 1, 4, &s->seq[1], 40);
    for (raft_id id = 2; id <= 4; id++)
        if (net_peer_queued_bytes(s->a, id) > s->max_queued)
            s->max_queued = net_peer_queued_bytes(s->a, id);
}

TEST(silent_peers_do_not_block_others_and_partitions_are_detected)
{
    loop_setup();
    struct rx ra = { 0 }, rb = { 0 };
    struct net_options o;
    fast_options(&o, 1, NULL);
    o.max_queue_bytes = 256 * 1024;
    struct net *a = start(1, addr(0, 20070), &ra, &o);
    struct net *b = start(2, addr(1, 20071), &rb, NULL);
    REQUIRE(a && b);
    struct fake silent, hole;
    fake_start(&silent, 20072, FAKE_SILENT);
    fake_start(&hole, 20073, FAKE_BLACKHOLE);
    net_set_peer(a, 2, addr(1, 20071));
    net_set_peer(a, 3, addr(2, 20072));
    net_set_peer(a, 4, addr(3, 20073));
    struct silent_ctx s = { .a = a, .sending = 1 };
    uv_timer_t tick;
    uv_timer_init(&loop, &tick);
    tick.data = &s;
    uv_timer_start(&tick, on_send_tick, 5, 5);
    CHECK(WAIT_UNTIL(hole.welcomed >= 1, 5000));
    uv_update_time(&loop);
    uint64_t t_hole = uv_now(&loop);
    CHECK(WAIT_UNTIL(stats(a).keepalive_timeouts >= 1, 5000));
    uv_update_time(&loop);
    fprintf(stderr, "  partition detected %llu ms after the black hole's handshake (idle_timeout_ms %u)\n",
            (unsigned long long)(uv_now(&loop) - t_hole), o.idle_timeout_ms);
    CHECK(WAIT_UNTIL(stats(a).keepalive_timeouts >= 1 && hole.welcomed >= 2 && rb.count >= 2000 &&
                     stats(a).dial_failures >= 2, 10000));
    s.sending = 0;
    uv_timer_stop(&tick);
    uv_close((uv_handle_t *)&tick, NULL);
    /* Everything queued for the good peer arrives, in order. */
    CHECK(WAIT_UNTIL(rb.count == s.sent_b, 5000));
    CHECK_EQ_U(rb.out_of_order, 0);
    CHECK(s.max_queued <= o.max_queue_bytes);
    struct net_stats st = stats(a);
    CHECK(st.dropped_queue_full > 0); /* the silent ones filled up */
    CHECK(!net_peer_connected(a, 3));
    CHECK(strstr(net_peer_last_error(a, 3), "connect timeout") != NULL);
    CHECK_EQ_U(st.disconnects, st.keepalive_timeouts); /* only the black hole's links were lost */
    fprintf(stderr, "  silent peers: %llu frames to the good peer, %llu dropped (queue full), "
            "%llu keepalive timeouts, %llu failed dials\n",
            (unsigned long long)rb.count, (unsigned long long)st.dropped_queue_full,
            (unsigned long long)st.keepalive_timeouts, (unsigned long long)st.dial_failures);
    stop_net(a);
    stop_net(b);
    fake_stop(&silent);
    fake_stop(&hole);
    loop_teardown();
}

TEST(inbound_links_silent_for_idle_timeout_are_closed)
{
    loop_setup();
    struct rx rb = { 0 };
    struct net *b = start(2, addr(1, 20081), &rb, NULL);
    REQUIRE(b);
    struct raw r;
    raw_connect(&r, 20081, 1, 3, 2);
    CHECK(WAIT_UNTIL(r.welcomed, 5000));
    /* A PING is answered with a PONG carrying its number. */
    struct net_wire_msg ping = { .kind = NET_WIRE_PING, .seq = 4242 };
    raw_send_wire((uv_stream_t *)&r.tcp, &ping);
    CHECK(WAIT_UNTIL(r.pongs == 1, 5000));
    CHECK_EQ_U(r.pong_seq, 4242);
    /* then silence: b closes the link (idle_timeout_ms = 400) */
    CHECK(raw_wait_closed(&r));
    CHECK(r.eof);
    /* A second authenticated link from the same node replaces the first
     * (here nothing else would close it: the idle timeout is a minute). */
    stop_net(b);
    struct net_options o;
    fast_options(&o, 2, NULL);
    o.idle_timeout_ms = 60000;
    b = start(2, addr(1, 20082), &rb, &o);
    REQUIRE(b);
    struct raw r2;
    raw_connect(&r, 20082, 1, 3, 2);
    CHECK(WAIT_UNTIL(r.welcomed, 5000));
    raw_connect(&r2, 20082, 1, 3, 2);
    CHECK(WAIT_UNTIL(r2.welcomed, 5000));
    CHECK(raw_wait_closed(&r));
    CHECK(!r2.closed);
    raw_close(&r2);
    CHECK_EQ_U(stats(b).dropped_malformed, 0);
    stop_net(b);
    loop_teardown();
}

TEST(ipv6_loopback_and_names_are_resolved)
{
    loop_setup();
    struct rx ra = { 0 }, rb = { 0 }, rc = { 0 };
    struct net *a = start(1, addr(0, 20090), &ra, NULL);
    REQUIRE(a);
    struct net_options o;
    fast_options(&o, 2, "[::1]:20091");
    struct net *b = NULL;
    char err[256];
    if (net_start(&loop, &o, on_recv, &rb, &b, err, sizeof err) != 0) {
        fprintf(stderr, "  SKIP ipv6 part: this machine has no IPv6 loopback (%s)\n", err);
    } else {
        net_allow_id(b, 1);
        CHECK_EQ_I(net_set_peer(a, 2, "[::1]:20091"), 0);
        uint64_t seq = 0;
        CHECK_EQ_U(send_appends(a, 1, 2, &seq, 10), 10);
        CHECK(WAIT_UNTIL(rb.count == 10, 5000));
        CHECK_EQ_U(rb.out_of_order, 0);
        stop_net(b);
    }
    /* A name: "localhost" may resolve to ::1 and 127.0.0.1 in either order;
     * the dialer tries the addresses in turn until one answers. */
    struct net *c = start(3, "localhost:20092", &rc, NULL);
    REQUIRE(c);
    CHECK_EQ_I(net_set_peer(a, 3, "localhost:20092"), 0);
    uint64_t seq = 0;
    CHECK_EQ_U(send_appends(a, 1, 3, &seq, 10), 10);
    CHECK(WAIT_UNTIL(rc.count == 10, 5000));
    /* and a name that does not resolve is reported as such */
    CHECK_EQ_I(net_set_peer(a, 4, "no-such-host.invalid:20093"), 0);
    CHECK(WAIT_UNTIL(strstr(net_peer_last_error(a, 4), "cannot resolve") != NULL, 5000));
    stop_net(a);
    stop_net(c);
    loop_teardown();
}

TEST(a_crowd_of_unauthenticated_sockets_cannot_lock_peers_out)
{
    loop_setup();
    struct rx ra = { 0 }, rb = { 0 };
    struct net_options o;
    fast_options(&o, 2, NULL);
    o.connect_timeout_ms = 5000; /* the crowd would otherwise time out first */
    struct net *b = start(2, addr(1, 20111), &rb, &o);
    struct net *a = start(1, addr(0, 20110), &ra, NULL);
    REQUIRE(a && b);
    enum { CROWD = 80 };
    static struct raw crowd[CROWD];
    for (int i = 0; i < CROWD; i++)
        raw_connect(&crowd[i], 20111, 0, 0, 0);
    size_t settled = 0;
    CHECK(WAIT_UNTIL(({ settled = 0; for (int i = 0; i < CROWD; i++) settled += crowd[i].challenged || crowd[i].closed;
                        settled == CROWD; }), 5000));
    CHECK(stats(b).dropped_unauthenticated >= CROWD - 64);
    net_set_peer(a, 2, addr(1, 20111));
    uint64_t seq = 0;
    CHECK_EQ_U(send_appends(a, 1, 2, &seq, 10), 10);
    CHECK(WAIT_UNTIL(rb.count == 10, 5000));
    for (int i = 0; i < CROWD; i++)
        raw_close(&crowd[i]);
    stop_net(a);
    stop_net(b);
    loop_teardown();
}

TEST(peers_can_move_and_be_removed)
{
    loop_setup();
    struct rx ra = { 0 }, rb1 = { 0 }, rb2 = { 0 };
    struct net *a = start(1, addr(0, 20120), &ra, NULL);
    struct net *b1 = start(2, addr(1, 20121), &rb1, NULL);
    struct net *b2 = start(2, addr(2, 20122), &rb2, NULL);
    REQUIRE(a && b1 && b2);
    CHECK_EQ_I(net_set_peer(a, 2, addr(1, 20121)), 0);
    CHECK_EQ_I(net_set_peer(a, 2, addr(1, 20121)), 0); /* same address: nothing changes */
    uint64_t seq = 0;
    CHECK_EQ_U(send_appends(a, 1, 2, &seq, 5), 5);
    CHECK(WAIT_UNTIL(rb1.count == 5, 5000));
    CHECK_EQ_I(net_set_peer(a, 2, addr(2, 20122)), 0); /* node 2 moved */
    rb2.next_seq[1] = seq;
    CHECK_EQ_U(send_appends(a, 1, 2, &seq, 5), 5);
    CHECK(WAIT_UNTIL(rb2.count == 5, 5000));
    CHECK_EQ_U(rb1.count, 5);
    CHECK_EQ_U(rb2.out_of_order, 0);
    net_remove_peer(a, 2);
    CHECK(!net_peer_connected(a, 2));
    CHECK_EQ_U(send_appends(a, 1, 2, &seq, 3), 0);
    CHECK_EQ_U(stats(a).dropped_unknown_peer, 3);
    stop_net(a);
    stop_net(b1);
    stop_net(b2);
    loop_teardown();
}

TEST(flipped_bytes_after_the_handshake_never_get_through)
{
    loop_setup();
    struct rx rb = { 0 };
    struct net *b = start(2, addr(1, 20131), &rb, NULL);
    REQUIRE(b);
    struct raft_message hb = { .type = RAFT_MSG_HEARTBEAT, .from = 3, .to = 2, .term = 9, .commit = 77, .context = 5 };
    size_t sz = raft_codec_size(&hb);
    uint8_t frame[128];
    REQUIRE(sz <= sizeof frame);
    raft_codec_encode(&hb, frame, sz);
    uint64_t x = 0x9e3779b97f4a7c15ULL;
    size_t closed = 0;
    for (size_t i = 0; i < 2 * sz; i++) {
        uint8_t bad[128];
        memcpy(bad, frame, sz);
        x ^= x << 13, x ^= x >> 7, x ^= x << 17;
        size_t pos = i % sz;
        bad[pos] ^= (uint8_t)(1u << (x % 8));
        struct raw r;
        raw_connect(&r, 20131, 1, 3, 2);
        CHECK(WAIT_UNTIL(r.welcomed, 5000));
        raw_send((uv_stream_t *)&r.tcp, bad, sz);
        /* Closed at once, or (a length that grew) after idle_timeout_ms. */
        closed += (size_t)raw_wait_closed(&r);
    }
    CHECK_EQ_U(closed, 2 * sz);
    CHECK_EQ_U(rb.count, 0);
    CHECK(stats(b).dropped_malformed > sz); /* all but the too-long lengths */
    /* and the unflipped frame is delivered */
    struct raw r;
    raw_connect(&r, 20131, 1, 3, 2);
    CHECK(WAIT_UNTIL(r.welcomed, 5000));
    raw_send((uv_stream_t *)&r.tcp, frame, sz);
    CHECK(WAIT_UNTIL(rb.count == 1, 5000));
    raw_close(&r);
    stop_net(b);
    loop_teardown();
}

/* A receive callback that stops its own transport: frames already buffered
 * behind the one delivered must not be delivered, and nothing breaks. */
struct stopper {
    struct net *n;
    size_t count;
    int done;
};

static void on_recv_stop(void *ctx, const struct raft_message *m)
{
    struct stopper *s = ctx;
    if (s->count++ == 0)
        net_stop(s->n, on_stopped, &s->done);
}

/* Only peers pass the handshake (SPEC §3): a HELLO from an id the acceptor
 * neither dials nor was told to allow is refused with the reason and
 * counted, and a peer added later is accepted from then on. */
TEST(unknown_ids_are_refused_at_the_handshake)
{
    loop_setup();
    struct rx rb = { 0 };
    struct net_options o;
    fast_options(&o, 2, addr(1, 20140));
    struct net *b = NULL;
    char err[256];
    REQUIRE(net_start(&loop, &o, on_recv, &rb, &b, err, sizeof err) == 0);
    struct raw r;
    raw_connect(&r, 20140, 1, 9, 2);
    CHECK(raw_wait_closed(&r));
    CHECK(r.refused && r.reason == NET_REFUSE_UNKNOWN_ID && !r.welcomed);
    CHECK_EQ_U(stats(b).dropped_unknown_id, 1);
    CHECK_EQ_U(stats(b).inbound_authenticated, 0);
    CHECK(strstr(net_refuse_name(NET_REFUSE_UNKNOWN_ID), "member add") != NULL);
    /* Once 9 is a peer (its address known, as for a member), it may dial in. */
    CHECK_EQ_I(net_set_peer(b, 9, "127.0.0.1:20141"), 0);
    raw_connect(&r, 20140, 1, 9, 2);
    CHECK(WAIT_UNTIL(r.welcomed, 5000));
    raw_close(&r);
    while (!r.closed)
        uv_run(&loop, UV_RUN_ONCE);
    CHECK_EQ_U(stats(b).dropped_unknown_id, 1);
    stop_net(b);
    loop_teardown();
}

/* A frame header announcing the largest body buys no memory until the body
 * arrives, and the inbound buffers together never exceed max_inbound_bytes:
 * the connection that would go over is closed and counted, the others go on. */
TEST(announced_sizes_buy_no_memory_and_the_total_is_capped)
{
    loop_setup();
    struct rx rb = { 0 };
    struct net_options o;
    fast_options(&o, 2, addr(1, 20145));
    o.max_frame_bytes = 1u << 20;
    o.max_inbound_bytes = 3u << 19; /* 1.5 frames */
    o.idle_timeout_ms = 5000;
    struct net *b = start(2, addr(1, 20145), &rb, &o);
    REQUIRE(b);
    uint8_t head[RAFT_CODEC_HEADER_BYTES] = { 'L', 'R', 'F', '1' };
    uint32_t body = 1u << 20;
    for (int i = 0; i < 4; i++)
        head[4 + i] = (uint8_t)(body >> (8 * i));
    struct raw r[4];
    for (int i = 0; i < 4; i++) {
        raw_connect(&r[i], 20145, 1, (raft_id)(3 + i), 2);
        CHECK(WAIT_UNTIL(r[i].welcomed, 5000));
        raw_send((uv_stream_t *)&r[i].tcp, head, sizeof head);
    }
    run_for(100);
    /* Four 1 MiB frames announced: each buffer is still the small first one. */
    CHECK(b->inbound_bytes <= 4 * 64 * 1024);
    CHECK_EQ_U(stats(b).dropped_over_budget, 0);
    /* Now two of them send most of their body: together over the budget. */
    static uint8_t fill[900 * 1024];
    raw_send((uv_stream_t *)&r[0].tcp, fill, sizeof fill);
    CHECK(WAIT_UNTIL(b->inbound_bytes >= sizeof fill, 5000));
    raw_send((uv_stream_t *)&r[1].tcp, fill, sizeof fill);
    CHECK(raw_wait_closed(&r[1]));
    CHECK_EQ_U(stats(b).dropped_over_budget, 1);
    CHECK(b->inbound_bytes <= o.max_inbound_bytes);
    CHECK(!r[0].closed && !r[2].closed && !r[3].closed);
    for (int i = 0; i < 4; i++)
        if (i != 1)
            raw_close(&r[i]);
    CHECK(WAIT_UNTIL(r[0].closed && r[2].closed && r[3].closed && b->n_inbound == 0, 5000));
    CHECK(WAIT_UNTIL(b->inbound_bytes == 0, 5000));
    stop_net(b);
    loop_teardown();
}

/* A well-formed frame whose term is 2^63 or more is dropped, counted apart
 * and its connection closed: it never reaches the receiver. */
TEST(a_term_at_or_above_2_63_never_gets_through)
{
    loop_setup();
    struct rx rb = { 0 };
    struct net *b = start(2, addr(1, 20150), &rb, NULL);
    REQUIRE(b);
    struct raft_message hb = { .type = RAFT_MSG_HEARTBEAT, .from = 3, .to = 2, .term = RAFT_CODEC_MAX_TERM };
    size_t sz = raft_codec_size(&hb);
    uint8_t frame[128];
    REQUIRE(sz <= sizeof frame && raft_codec_encode(&hb, frame, sz) == (int)sz);
    /* The term follows version, type, from and to; make it 2^64 - 1. */
    frame[RAFT_CODEC_HEADER_BYTES + 2 + 16 + 7] |= 0x80;
    uint32_t crc = crc32c(frame + RAFT_CODEC_HEADER_BYTES, sz - RAFT_CODEC_HEADER_BYTES);
    for (int i = 0; i < 4; i++)
        frame[8 + i] = (uint8_t)(crc >> (8 * i));
    struct raw r;
    raw_connect(&r, 20150, 1, 3, 2);
    CHECK(WAIT_UNTIL(r.welcomed, 5000));
    raw_send((uv_stream_t *)&r.tcp, frame, sz);
    CHECK(raw_wait_closed(&r));
    CHECK_EQ_U(rb.count, 0);
    CHECK_EQ_U(stats(b).dropped_bad_term, 1);
    stop_net(b);
    loop_teardown();
}

/* ---- A man in the middle ------------------------------------------------------- */

/* Accepts one connection (from a dialer), connects on to the acceptor at
 * to_port and relays both ways; on the way to the acceptor, after the
 * HELLO, it injects, tampers with or replays records (mode). */
enum mitm_mode { MITM_RELAY, MITM_INJECT, MITM_TAMPER, MITM_REPLAY };
struct mitm;
struct mitm_side {
    uv_tcp_t tcp;
    struct mitm *m;
    int open;
};
struct mitm {
    uv_tcp_t listener;
    struct mitm_side d, a; /* toward the dialer, toward the acceptor */
    uv_connect_t req;
    int mode, acted, listener_open;
    unsigned to_port;
    size_t up;             /* bytes relayed dialer -> acceptor */
    uint8_t first[256 * 1024];
    size_t first_len, first_want;
};

#define MITM_HELLO_BYTES (NET_WIRE_HEADER_BYTES + 113)

static void mitm_closed(uv_handle_t *h)
{
    int *open = h->data == NULL ? NULL : (int *)h->data;
    if (open)
        *open = 0;
}

static void mitm_side_closed(uv_handle_t *h)
{
    ((struct mitm_side *)h->data)->open = 0;
}

static void mitm_close_all(struct mitm *m)
{
    if (m->d.open && !uv_is_closing((uv_handle_t *)&m->d.tcp))
        uv_close((uv_handle_t *)&m->d.tcp, mitm_side_closed);
    if (m->a.open && !uv_is_closing((uv_handle_t *)&m->a.tcp))
        uv_close((uv_handle_t *)&m->a.tcp, mitm_side_closed);
}

static void mitm_alloc(uv_handle_t *h, size_t suggested, uv_buf_t *b)
{
    static uint8_t buf[256 * 1024];
    *b = uv_buf_init((char *)buf, sizeof buf);
}

static void mitm_read(uv_stream_t *s, ssize_t nread, const uv_buf_t *b)
{
    struct mitm_side *side = s->data;
    struct mitm *m = side->m;
    if (nread < 0) {
        mitm_close_all(m);
        return;
    }
    if (nread == 0)
        return;
    uint8_t *data = (uint8_t *)b->base;
    if (side == &m->a) { /* acceptor -> dialer: as is */
        raw_send((uv_stream_t *)&m->d.tcp, data, (size_t)nread);
        return;
    }
    size_t start = m->up;
    m->up += (size_t)nread;
    if (m->mode == MITM_TAMPER && !m->acted && m->up > MITM_HELLO_BYTES + 10) {
        data[MITM_HELLO_BYTES + 10 - start] ^= 0x20; /* inside the first record's ciphertext */
        m->acted = 1;
    }
    if (m->mode == MITM_REPLAY && !m->acted && m->up > MITM_HELLO_BYTES) {
        size_t from = start > MITM_HELLO_BYTES ? 0 : MITM_HELLO_BYTES - start;
        for (size_t i = from; i < (size_t)nread && m->first_len < sizeof m->first; i++)
            m->first[m->first_len++] = data[i];
        if (!m->first_want && m->first_len >= 4)
            m->first_want = 4 + ((size_t)m->first[0] | (size_t)m->first[1] << 8 | (size_t)m->first[2] << 16);
    }
    raw_send((uv_stream_t *)&m->a.tcp, data, (size_t)nread);
    if (m->mode == MITM_INJECT && !m->acted && m->up >= MITM_HELLO_BYTES) {
        uint8_t fake[4 + 64] = { 64 };
        randombytes_buf(fake + 4, 64);
        raw_send((uv_stream_t *)&m->a.tcp, fake, sizeof fake);
        m->acted = 1;
    }
    if (m->mode == MITM_REPLAY && !m->acted && m->first_want && m->first_len >= m->first_want) {
        raw_send((uv_stream_t *)&m->a.tcp, m->first, m->first_want); /* the first record, again */
        m->acted = 1;
    }
}

static void mitm_upstream(uv_connect_t *req, int status)
{
    struct mitm *m = req->data;
    if (status < 0) {
        mitm_close_all(m);
        return;
    }
    uv_read_start((uv_stream_t *)&m->a.tcp, mitm_alloc, mitm_read);
    uv_read_start((uv_stream_t *)&m->d.tcp, mitm_alloc, mitm_read);
}

static void mitm_accept(uv_stream_t *l, int status)
{
    struct mitm *m = l->data;
    if (status < 0 || m->d.open)
        return;
    uv_tcp_init(&loop, &m->d.tcp);
    m->d.tcp.data = &m->d;
    m->d.m = m;
    m->d.open = 1;
    uv_accept(l, (uv_stream_t *)&m->d.tcp);
    uv_tcp_init(&loop, &m->a.tcp);
    m->a.tcp.data = &m->a;
    m->a.m = m;
    m->a.open = 1;
    m->req.data = m;
    struct sockaddr_in sa;
    uv_ip4_addr("127.0.0.1", (int)m->to_port, &sa);
    uv_tcp_connect(&m->req, &m->a.tcp, (const struct sockaddr *)&sa, mitm_upstream);
}

static void mitm_start(struct mitm *m, unsigned port, unsigned to_port, int mode)
{
    memset(m, 0, sizeof *m);
    m->mode = mode;
    m->to_port = to_port;
    uv_tcp_init(&loop, &m->listener);
    m->listener.data = m;
    struct sockaddr_in sa;
    uv_ip4_addr("127.0.0.1", (int)port, &sa);
    REQUIRE(uv_tcp_bind(&m->listener, (const struct sockaddr *)&sa, 0) == 0);
    REQUIRE(uv_listen((uv_stream_t *)&m->listener, 8, mitm_accept) == 0);
    m->listener_open = 1;
}

static void mitm_stop(struct mitm *m)
{
    mitm_close_all(m);
    m->listener.data = &m->listener_open;
    uv_close((uv_handle_t *)&m->listener, mitm_closed);
    while (m->listener_open || m->d.open || m->a.open)
        uv_run(&loop, UV_RUN_ONCE);
}

/* With a secret every frame after the handshake is sealed (SPEC §3): a man
 * in the middle who relays a genuine handshake can neither inject a record,
 * nor change one, nor replay one — the acceptor closes the connection and
 * counts it, and nothing of it reaches the receiver — while relaying
 * faithfully works. */
TEST(a_relayed_handshake_cannot_inject_tamper_or_replay)
{
    loop_setup();
    static const uint8_t secret[] = "correct horse battery staple";
    static struct mitm m;
    struct rx rb = { 0 };
    struct net_options o;
    fast_options(&o, 2, NULL);
    o.secret = secret;
    o.secret_len = sizeof secret - 1;
    o.idle_timeout_ms = 5000;
    struct net *b = start(2, addr(1, 20161), &rb, &o);
    REQUIRE(b);
    uint64_t forged = 0;
    for (int mode = MITM_RELAY; mode <= MITM_REPLAY; mode++) {
        struct rx ra = { 0 };
        fast_options(&o, 1, NULL);
        o.secret = secret;
        o.secret_len = sizeof secret - 1;
        o.idle_timeout_ms = 5000;
        o.backoff_min_ms = 5000; /* one attempt: the man in the middle takes one connection */
        o.backoff_max_ms = 5000;
        struct net *a = start(1, addr(0, 20160), &ra, &o);
        REQUIRE(a);
        mitm_start(&m, 20162, 20161, mode);
        size_t before = rb.count;
        rb.next_seq[1] = 0; /* this a numbers its APPENDs from 0 again */
        net_set_peer(a, 2, addr(2, 20162));
        uint64_t seq = 0;
        CHECK(WAIT_UNTIL(net_peer_connected(a, 2), 5000));
        CHECK_EQ_U(send_appends(a, 1, 2, &seq, 5), 5);
        if (mode == MITM_RELAY) {
            CHECK(WAIT_UNTIL(rb.count == before + 5, 5000));
            CHECK_EQ_U(stats(b).dropped_forged, forged);
        } else {
            CHECK(WAIT_UNTIL(stats(b).dropped_forged == forged + 1, 5000));
            forged++;
            CHECK(WAIT_UNTIL(!m.a.open, 5000)); /* the acceptor closed it */
            /* A replay is caught after the genuine record it copies. */
            CHECK_EQ_U(rb.count, before + (mode == MITM_REPLAY ? 5 : 0));
        }
        CHECK_EQ_U(rb.out_of_order, 0);
        stop_net(a);
        mitm_stop(&m);
    }
    CHECK_EQ_U(stats(b).dropped_forged, 3);
    stop_net(b);
    loop_teardown();
}

TEST(the_receive_callback_may_stop_the_transport)
{
    loop_setup();
    struct rx ra = { 0 };
    struct stopper st = { 0 };
    struct net *a = start(1, addr(0, 20140), &ra, NULL);
    struct net_options o;
    fast_options(&o, 2, addr(1, 20141));
    REQUIRE(a);
    char err[256];
    REQUIRE(net_start(&loop, &o, on_recv_stop, &st, &st.n, err, sizeof err) == 0);
    net_set_peer(a, 2, addr(1, 20141));
    net_set_peer(st.n, 1, addr(0, 20140));
    uint64_t seq = 0;
    CHECK_EQ_U(send_appends(a, 1, 2, &seq, 100), 100); /* one write: all in one read */
    CHECK(WAIT_UNTIL(st.done == 1, 5000));
    CHECK_EQ_U(st.count, 1);
    stop_net(a);
    loop_teardown();
}

TEST(throughput_of_1k_appends)
{
    static const uint8_t secret[] = "correct horse battery staple";
    for (int sealed = 0; sealed <= 1; sealed++) {
        loop_setup();
        struct rx ra = { 0 }, rb = { 0 };
        struct net_options o;
        fast_options(&o, 1, NULL);
        if (sealed) {
            o.secret = secret;
            o.secret_len = sizeof secret - 1;
        }
        struct net *a = start(1, addr(0, 20100), &ra, &o);
        fast_options(&o, 2, NULL);
        if (sealed) {
            o.secret = secret;
            o.secret_len = sizeof secret - 1;
        }
        struct net *b = start(2, addr(1, 20101), &rb, &o);
        REQUIRE(a && b);
        net_set_peer(a, 2, addr(1, 20101));
        CHECK(WAIT_UNTIL(net_peer_connected(a, 2), 5000));
        uint64_t seq = 0, t0 = uv_hrtime();
        size_t sent = 0;
        /* Keep the queue topped up for about a second. */
        while (uv_hrtime() - t0 < 1000000000ULL) {
            sent += send_appends(a, 1, 2, &seq, 256);
            uv_run(&loop, UV_RUN_NOWAIT);
        }
        CHECK(WAIT_UNTIL(rb.count == sent, 10000));
        double secs = (double)(uv_hrtime() - t0) / 1e9;
        CHECK_EQ_U(rb.out_of_order, 0);
        fprintf(stderr, "  throughput%s: %zu 1 KiB APPENDs in %.2f s = %.0f msg/s (%.1f MiB/s), %llu dropped "
                "(queue full)\n", sealed ? " (secret: sealed records)" : " (no secret)", rb.count, secs,
                (double)rb.count / secs, (double)stats(a).bytes_sent / secs / (1 << 20),
                (unsigned long long)stats(a).dropped_queue_full);
        stop_net(a);
        stop_net(b);
        loop_teardown();
    }
}

int main(void)
{
    RUN(wire_frames_round_trip_and_reject_garbage);
    RUN(backoff_doubles_to_the_cap_with_jitter);
    RUN(load_secret_checks_the_file);
    RUN(loopback_addresses_are_told_apart);
    RUN(bad_arguments_get_clear_errors);
    RUN(every_message_type_arrives_intact_and_in_order);
    RUN(peer_down_queues_to_the_bound_then_delivers_when_it_starts);
    RUN(restarted_peer_is_redialled);
    RUN(secrets_must_match_in_both_directions);
    RUN(garbage_is_dropped_counted_and_the_good_peer_keeps_working);
    RUN(silent_peers_do_not_block_others_and_partitions_are_detected);
    RUN(inbound_links_silent_for_idle_timeout_are_closed);
    RUN(ipv6_loopback_and_names_are_resolved);
    RUN(a_crowd_of_unauthenticated_sockets_cannot_lock_peers_out);
    RUN(peers_can_move_and_be_removed);
    RUN(flipped_bytes_after_the_handshake_never_get_through);
    RUN(unknown_ids_are_refused_at_the_handshake);
    RUN(announced_sizes_buy_no_memory_and_the_total_is_capped);
    RUN(a_term_at_or_above_2_63_never_gets_through);
    RUN(a_relayed_handshake_cannot_inject_tamper_or_replay);
    RUN(the_receive_callback_may_stop_the_transport);
    RUN(throughput_of_1k_appends);
    return HARNESS_END();
}
