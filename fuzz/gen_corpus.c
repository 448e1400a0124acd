/*
 * gen_corpus.c — writes the seed corpora of the fuzz drivers
 * (fuzz/corpus/NAME/), so the checked-in seeds can be regenerated and
 * reviewed: `make fuzz-corpus` (or build/fuzz/gen_corpus DIR). Binary seeds
 * are made with the project's own encoders (every Raft message type, fields
 * at 0 and at their maximum, commands and configurations of each shape);
 * text seeds are listed here. Each corpus also gets edge cases: the empty
 * input, truncations and values just past a limit. Deterministic: the same
 * program writes the same files.
 */
#include "sys/cluster_file.h"
#include "backup.h"
#include "common/crc32c.h"
#include "command.h"
#include "net/wire.h"
#include "raft_codec.h"
#include "storage/internal.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

static const char *out_dir;
static int n_written;

static void write_seed(const char *corpus, const char *name, const void *data, size_t len)
{
    char path[512];
    snprintf(path, sizeof path, "%s/%s", out_dir, corpus);
    if (mkdir(path, 0777) != 0 && errno != EEXIST) {
        fprintf(stderr, "gen_corpus: cannot create %s: %s\n", path, strerror(errno));
        exit(1);
    }
    snprintf(path, sizeof path, "%s/%s/%s", out_dir, corpus, name);
    FILE *f = fopen(path, "wb");
    if (!f || (len && fwrite(data, 1, len, f) != len) || fclose(f) != 0) {
        fprintf(stderr, "gen_corpus: cannot write %s: %s\n", path, strerror(errno));
        exit(1);
    }
    n_written++;
}

static void write_text(const char *corpus, const char *name, const char *text)
{
    write_seed(corpus, name, text, strlen(text));
}

/* ---- codec ---------------------------------------------------------------- */

static void codec_seed(const char *name, const struct raft_message *m)
{
    size_t n = raft_codec_size(m);
    uint8_t *buf = malloc(n);
    int rc = buf ? raft_codec_encode(m, buf, n) : RAFT_ENOMEM;
    if (rc < 0) {
        fprintf(stderr, "gen_corpus: cannot encode %s: %s\n", name, raft_strerror(rc));
        exit(1);
    }
    write_seed("codec", name, buf, (size_t)rc);
    free(buf);
}

/* Rewrites the header checksum after the body was changed on purpose. */
static void reseal(uint8_t *frame, size_t len)
{
    uint32_t crc = crc32c(frame + RAFT_CODEC_HEADER_BYTES, len - RAFT_CODEC_HEADER_BYTES);
    for (int i = 0; i < 4; i++)
        frame[8 + i] = (uint8_t)(crc >> (8 * i));
}

static void gen_codec(void)
{
    static const uint8_t payload[] = "set k=v; the quick brown fox";
    struct raft_entry entries[3] = {
        { .term = 2, .index = 10, .type = RAFT_ENTRY_COMMAND, .len = sizeof payload, .data = payload },
        { .term = 3, .index = 11, .type = RAFT_ENTRY_NOOP },
        { .term = 3, .index = 12, .type = RAFT_ENTRY_CONFIG, .len = 4, .data = (const uint8_t *)"\0\0\0\0" },
    };
    struct raft_message m;

    for (int type = RAFT_MSG_APPEND; type <= RAFT_MSG_TYPE_MAX; type++) {
        /* Every field at a small value... */
        memset(&m, 0, sizeof m);
        m.type = (uint8_t)type;
        m.from = 1; m.to = 2; m.term = 5; m.prev_index = 9; m.prev_term = 2; m.commit = 8;
        m.index = 12; m.last_index = 12; m.last_term = 3; m.hint_index = 7; m.hint_term = 1;
        m.context = 42; m.offset = 4096; m.reject = 1; m.transfer = 1; m.done = 1;
        if (type == RAFT_MSG_APPEND) {
            m.entries = entries;
            m.n_entries = 3;
        }
        if (type == RAFT_MSG_SNAPSHOT) {
            m.snapshot = (struct raft_snapshot_meta){ .index = 100, .term = 4, .size = 1 << 20,
                                                      .crc = 0xdeadbeef };
            m.snapshot.config.n = 3;
            for (uint32_t i = 0; i < 3; i++)
                m.snapshot.config.members[i] = (struct raft_member){ i + 1, i < 2 ? RAFT_VOTER : RAFT_LEARNER, i == 2 };
            m.len = sizeof payload;
            m.data = payload;
        }
        char name[64];
        snprintf(name, sizeof name, "%s", raft_msg_type_name(type));
        for (char *p = name; *p; p++)
            *p = (char)(*p >= 'A' && *p <= 'Z' ? *p - 'A' + 'a' : *p == '_' ? '-' : *p);
        codec_seed(name, &m);

        /* ...and at zero and at the maximum. */
        struct raft_message zero = { .type = (uint8_t)type };
        snprintf(name + strlen(name), sizeof name - strlen(name), "-zero");
        codec_seed(name, &zero);
        memset(&m, 0xff, sizeof m);
        m.type = (uint8_t)type;
        m.reject = m.transfer = m.done = 1;
        /* Terms at the largest the codec encodes (2^63 - 1). */
        m.term = m.prev_term = m.last_term = m.hint_term = m.snapshot.term = RAFT_CODEC_MAX_TERM;
        m.n_entries = 0; m.entries = NULL; m.len = 0; m.data = NULL;
        memset(&m.snapshot.config, 0, sizeof m.snapshot.config);
        if (type == RAFT_MSG_SNAPSHOT) {
            m.snapshot.config.n = RAFT_MAX_MEMBERS;
            for (uint32_t i = 0; i < RAFT_MAX_MEMBERS; i++)
                m.snapshot.config.members[i] = (struct raft_member){ UINT64_MAX - i, RAFT_VOTER + i % 2, i % 2 };
        }
        name[strlen(name) - 5] = 0;
        snprintf(name + strlen(name), sizeof name - strlen(name), "-max");
        codec_seed(name, &m);
    }

    /* Edge cases around the limits, each one step past what is accepted. */
    uint8_t frame[256];
    struct raft_message hb = { .type = RAFT_MSG_HEARTBEAT, .from = 1, .to = 2, .term = 3 };
    int n = raft_codec_encode(&hb, frame, sizeof frame);
    write_seed("codec", "empty", "", 0);
    write_seed("codec", "header-only", frame, RAFT_CODEC_HEADER_BYTES);
    write_seed("codec", "truncated-heartbeat", frame, (size_t)n - 1);
    frame[RAFT_CODEC_HEADER_BYTES] = 2; /* version */
    reseal(frame, (size_t)n);
    write_seed("codec", "unknown-version", frame, (size_t)n);
    frame[RAFT_CODEC_HEADER_BYTES] = RAFT_CODEC_VERSION;
    frame[RAFT_CODEC_HEADER_BYTES + 1] = RAFT_MSG_TYPE_MAX + 1;
    reseal(frame, (size_t)n);
    write_seed("codec", "unknown-type", frame, (size_t)n);

    struct raft_message vote = { .type = RAFT_MSG_VOTE, .from = 1, .to = 2, .term = 3, .transfer = 1 };
    n = raft_codec_encode(&vote, frame, sizeof frame);
    frame[n - 1] = 2; /* transfer flag */
    reseal(frame, (size_t)n);
    write_seed("codec", "flag-2", frame, (size_t)n);

    struct raft_message app = { .type = RAFT_MSG_APPEND, .from = 1, .to = 2, .term = 3,
                                .n_entries = 1, .entries = entries };
    n = raft_codec_encode(&app, frame, sizeof frame);
    size_t count_at = RAFT_CODEC_HEADER_BYTES + 2 + 8 * 2 + 8 * 4;
    memset(frame + count_at, 0xff, 4); /* entry count 2^32-1 */
    reseal(frame, (size_t)n);
    write_seed("codec", "entries-u32-max", frame, (size_t)n);
    n = raft_codec_encode(&app, frame, sizeof frame);
    frame[count_at + 4 + 16] = 4; /* entry type */
    reseal(frame, (size_t)n);
    write_seed("codec", "entry-type-4", frame, (size_t)n);

    struct raft_message snap = { .type = RAFT_MSG_SNAPSHOT, .from = 1, .to = 2, .term = 3,
                                 .len = 4, .data = (const uint8_t *)"abcd" };
    snap.snapshot.config.n = 1;
    snap.snapshot.config.members[0] = (struct raft_member){ 1, RAFT_VOTER, 0 };
    n = raft_codec_encode(&snap, frame, sizeof frame);
    size_t chunk_len_at = (size_t)n - 1 - 4 - 4; /* ... u32 len, 4 bytes, u8 done */
    frame[chunk_len_at] = 200;                   /* chunk longer than the frame */
    reseal(frame, (size_t)n);
    write_seed("codec", "chunk-too-long", frame, (size_t)n);

    uint8_t big[RAFT_CODEC_HEADER_BYTES] = { 'L', 'R', 'F', '1', 0x01, 0x00, 0x00, 0x04 };
    write_seed("codec", "body-over-max", big, sizeof big); /* 64 MiB + 1 */
    memcpy(big, "LRF2", 4);
    write_seed("codec", "bad-magic", big, sizeof big);
}

/* ---- command --------------------------------------------------------------- */

static struct command_str S(const char *s) { return (struct command_str){ s, (uint16_t)strlen(s) }; }

static void command_seed(const char *name, const struct command *c)
{
    size_t n = command_size(c);
    uint8_t *buf = malloc(n);
    long len = buf ? command_encode(c, buf, n) : -1;
    if (len < 0) {
        fprintf(stderr, "gen_corpus: cannot encode command %s\n", name);
        exit(1);
    }
    write_seed("command", name, buf, (size_t)len);
    free(buf);
}

static void gen_command(void)
{
    static char long_str[COMMAND_MAX_STR + 1];
    memset(long_str, 'x', sizeof long_str);
    struct command c = { .type = CMD_KV_PUT, .time_ms = 1764547200000ull, .scope = S("user:alice"),
                         .idem_key = S("req-7f3a"), .key = S("links/42"), .value = S("{\"title\":\"hi\"}") };
    command_seed("put", &c);
    c.type = CMD_KV_DELETE;
    c.value = S("");
    command_seed("delete", &c);
    struct command empty = { .type = CMD_KV_PUT };
    command_seed("put-empty", &empty);
    struct command max = { .type = CMD_KV_PUT, .time_ms = UINT64_MAX,
                           .key = { long_str, COMMAND_MAX_STR }, .value = { long_str, COMMAND_MAX_STR } };
    command_seed("put-max-strings", &max);

    /* One past the string limit, written by hand (the encoder refuses it). */
    uint8_t over[1 + 1 + 8 + 2 + 2 + 2 + COMMAND_MAX_STR + 1 + 2] = { COMMAND_VERSION, CMD_KV_PUT };
    size_t at = 1 + 1 + 8 + 2 + 2;
    over[at] = (uint8_t)((COMMAND_MAX_STR + 1) & 0xff);
    over[at + 1] = (uint8_t)((COMMAND_MAX_STR + 1) >> 8);
    memset(over + at + 2, 'x', COMMAND_MAX_STR + 1);
    write_seed("command", "string-over-max", over, sizeof over);
    /* The site's commands (one seed of each shape). */
    static const char hash[COMMAND_HASH_LEN] = "0123456789abcdef0123456789abcdef";
    struct command_str h = { hash, COMMAND_HASH_LEN };
    struct command site[] = {
        { .type = CMD_SIGNUP, .time_ms = 1764547200000ull, .scope = S("u:alice"), .idem_key = S("k1"),
          .name = S("Alice"), .lname = S("alice"), .pwhash = S("$argon2id$v=19$m=19456,t=2,p=1$c2FsdA$aGFzaA"),
          .session = h },
        { .type = CMD_SESSION_CREATE, .time_ms = 1764547200001ull, .lname = S("alice"), .session = h },
        { .type = CMD_SESSION_DELETE, .time_ms = 1764547200002ull, .session = h },
        { .type = CMD_LINK_POST, .time_ms = 1764547200003ull, .scope = S("u:alice"), .idem_key = S("k2"),
          .session = h, .title = S("Hello"), .url = S("https://www.example.com/a?b=1"),
          .url_norm = S("//example.com/a?b=1") },
        { .type = CMD_LIKE, .time_ms = 1764547200004ull, .session = h, .link_id = 1 },
        { .type = CMD_UNLIKE, .time_ms = 1764547200005ull, .session = h, .link_id = INT64_MAX },
    };
    const char *names[] = { "signup", "session-create", "session-delete", "link-post", "like", "unlike" };
    for (size_t i = 0; i < sizeof site / sizeof site[0]; i++)
        command_seed(names[i], &site[i]);
    uint8_t bad_type[] = { COMMAND_VERSION, 9, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0 };
    write_seed("command", "unknown-type", bad_type, sizeof bad_type);
    write_seed("command", "empty", "", 0);
}

/* ---- config ---------------------------------------------------------------- */

static void config_seed(const char *name, const struct raft_config *c)
{
    uint8_t buf[4 + 10 * RAFT_MAX_MEMBERS];
    int n = raft_config_encode(c, buf, sizeof buf);
    if (n < 0) {
        fprintf(stderr, "gen_corpus: cannot encode config %s\n", name);
        exit(1);
    }
    write_seed("config", name, buf, (size_t)n);
}

static void gen_config(void)
{
    struct raft_config c = { 0 };
    config_seed("empty-config", &c);
    c.n = 3;
    for (uint32_t i = 0; i < 3; i++)
        c.members[i] = (struct raft_member){ i + 1, RAFT_VOTER, 0 };
    config_seed("three-voters", &c);
    c.members[2] = (struct raft_member){ 3, RAFT_LEARNER, 1 };
    config_seed("learner-to-promote", &c);
    c.n = RAFT_MAX_MEMBERS;
    for (uint32_t i = 0; i < RAFT_MAX_MEMBERS; i++)
        c.members[i] = (struct raft_member){ UINT64_MAX - i, RAFT_VOTER + i % 2, i % 2 };
    config_seed("max-members", &c);

    uint8_t dup[4 + 20] = { 2, 0, 0, 0, 7, 0, 0, 0, 0, 0, 0, 0, RAFT_VOTER, 0,
                            7, 0, 0, 0, 0, 0, 0, 0, RAFT_VOTER, 0 };
    write_seed("config", "duplicate-id", dup, sizeof dup);
    uint8_t over[4] = { RAFT_MAX_MEMBERS + 1, 0, 0, 0 };
    write_seed("config", "count-over-max", over, sizeof over);
    uint8_t huge[4] = { 0xff, 0xff, 0xff, 0xff };
    write_seed("config", "count-u32-max", huge, sizeof huge);
    write_seed("config", "empty", "", 0);
}

/* ---- json ------------------------------------------------------------------ */

static void gen_json(void)
{
    static const char *const seeds[][2] = {
        { "signup", "{\"username\":\"alice\",\"password\":\"correct horse battery\"}" },
        { "submit", "{\"title\":\"Raft in C\",\"url\":\"https://example.com/raft?x=1&y=2\"}" },
        { "nested", "{\"a\":[1,2,{\"b\":[true,false,null]}],\"c\":{\"d\":{}}}" },
        { "numbers", "[0,-0,1.5,-2.25e-3,1E10,9223372036854775807,-9223372036854775808,1e400]" },
        { "escapes", "[\"\\\"\\\\\\/\\b\\f\\n\\r\\t\",\"\\u00e9\\u4e2d\\ud83d\\ude00\"]" },
        { "utf8", "\"caf\xc3\xa9 \xe4\xb8\xad \xf0\x9f\x98\x80\"" },
        { "whitespace", " \t\r\n[ 1 , \"x\" ] \n" },
        { "duplicate-key", "{\"k\":1,\"k\":2}" },
        { "scalar-true", "true" },
        { "empty-string", "\"\"" },
        { "deep-ok", "[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]" },
        { "deep-too", "[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]" },
        { "trailing-comma", "[1,2,]" },
        { "comment", "{/* no */}" },
        { "unpaired-surrogate", "\"\\ud800\"" },
        { "nul-escape", "\"a\\u0000b\"" },
        { "overlong-utf8", "\"\xc0\xaf\"" },
        { "unterminated", "{\"a\":\"b" },
        { "leading-zero", "01" },
        { "trailing", "{} {}" },
        { "empty", "" },
    };
    for (size_t i = 0; i < sizeof seeds / sizeof seeds[0]; i++)
        write_text("json", seeds[i][0], seeds[i][1]);
    /* A 64-digit number: longer than the parser keeps. */
    char num[80] = "[";
    memset(num + 1, '7', 64);
    strcpy(num + 65, "]");
    write_text("json", "long-number", num);
}

/* ---- cluster --------------------------------------------------------------- */

static void gen_cluster(void)
{
    static const char *const seeds[][2] = {
        { "three", "# id   raft-address      http-address\n"
                   "1      127.0.0.1:7001    127.0.0.1:8001\n"
                   "2      127.0.0.1:7002    127.0.0.1:8002\n"
                   "3      127.0.0.1:7003    127.0.0.1:8003\n" },
        { "ipv6-and-names", "1 [::1]:7001 [::1]:8001\r\n2 node-b.example:7002 node-b.example:8002 # b\n"
                            "3\t[fe80::1%eth0]:7003\t10.0.0.3:8003" },
        { "max-id", "9223372036854775807 a:1 a:2\n" },
        { "id-too-big", "9223372036854775808 a:1 a:2\n" },
        { "negative-id", "-1 a:1 a:2\n" },
        { "plus-id", "+1 a:1 a:2\n" },
        { "vt-negative-id", "\v-18446744073709551615 a:1 a:2\n" },
        { "v6-bad-port", "1 [::1]:99999 a:2\n2 []:1 b:2\n" },
        { "duplicate-id", "1 a:1 a:2\n1 b:1 b:2\n" },
        { "shared-address", "1 a:1 a:2\n2 a:2 b:2\n" },
        { "same-address", "1 a:1 a:1\n" },
        { "bad-port", "1 a:0 a:65536\n" },
        { "unbracketed-v6", "1 ::1:7001 a:2\n" },
        { "two-fields", "1 a:1\n" },
        { "comments-only", "# nothing\n\n   \n" },
        { "empty", "" },
    };
    for (size_t i = 0; i < sizeof seeds / sizeof seeds[0]; i++)
        write_text("cluster", seeds[i][0], seeds[i][1]);
    /* Seventeen members: one more than allowed. */
    char many[2048] = "";
    for (int i = 1; i <= CLUSTER_MAX_MEMBERS + 1; i++)
        snprintf(many + strlen(many), sizeof many - strlen(many), "%d h%d:1 h%d:2\n", i, i, i);
    write_text("cluster", "seventeen-members", many);
    /* A line exactly at the length limit. */
    char longline[1100];
    memset(longline, ' ', sizeof longline);
    memcpy(longline, "1 a:1 a:2", 9);
    longline[1024] = '\n';
    longline[1025] = 0;
    write_text("cluster", "line-too-long", longline);
}

/* ---- handshake ------------------------------------------------------------- */

/* Each control frame as sent (the driver decodes it as given), and each
 * frame's payload behind a mode byte and a kind byte (the driver gives it
 * a valid header of that kind): bit 0 of the mode keeps identity flags
 * valid, bit 1 also runs the bytes through the record layer. */
static void gen_handshake(void)
{
    struct net_wire_msg m[6] = {
        { .kind = NET_WIRE_CHALLENGE, .flags = NET_CHALLENGE_SECRET, .nonce = { 1, 2, 3 },
          .identity = { .cluster = { 0xc1 }, .incarnation = { 0x11 }, .cluster_known = true } },
        { .kind = NET_WIRE_HELLO, .from = 2, .to = 1, .nonce = { 4, 5, 6 }, .mac = { 0xee },
          .identity = { .cluster = { 0xc1 }, .incarnation = { 0x22 }, .cluster_known = true, .joined = true } },
        { .kind = NET_WIRE_WELCOME, .mac = { 0xab, 0xcd } },
        { .kind = NET_WIRE_REFUSE, .reason = NET_REFUSE_AUTH },
        { .kind = NET_WIRE_PING, .seq = 42 },
        { .kind = NET_WIRE_PONG, .seq = UINT64_MAX },
    };
    static const char *const names[6] = { "challenge", "hello", "welcome", "refuse", "ping", "pong" };
    uint8_t frame[NET_WIRE_MAX_FRAME], seed[NET_WIRE_MAX_FRAME + 2];
    char name[64];
    for (int i = 0; i < 6; i++) {
        size_t n = net_wire_encode(&m[i], frame, sizeof frame);
        if (!n) {
            fprintf(stderr, "gen_corpus: cannot encode %s\n", names[i]);
            exit(1);
        }
        write_seed("handshake", names[i], frame, n);
        snprintf(name, sizeof name, "%s-truncated", names[i]);
        write_seed("handshake", name, frame, n - 1);
        seed[0] = 1;
        seed[1] = (uint8_t)(m[i].kind - NET_WIRE_CHALLENGE);
        memcpy(seed + 2, frame + NET_WIRE_HEADER_BYTES, n - NET_WIRE_HEADER_BYTES);
        snprintf(name, sizeof name, "payload-%s", names[i]);
        write_seed("handshake", name, seed, n - NET_WIRE_HEADER_BYTES + 2);
    }
    /* An old version, a wrong length, an unknown kind, bad identity flags. */
    size_t n = net_wire_encode(&m[1], frame, sizeof frame);
    frame[5] = 1;
    write_seed("handshake", "hello-version-1", frame, n);
    frame[5] = NET_WIRE_VERSION;
    frame[6]++;
    write_seed("handshake", "hello-length-plus-one", frame, n);
    frame[6]--;
    frame[4] = 7;
    write_seed("handshake", "kind-7", frame, n);
    frame[4] = NET_WIRE_HELLO;
    frame[NET_WIRE_HEADER_BYTES + 16 + NET_NONCE_BYTES + 2 * NET_ID_BYTES] = 0x04;
    write_seed("handshake", "hello-identity-flag-4", frame, n);
    /* Records: a length only, a short record, a length over the limit. */
    static const uint8_t rec_short[] = { 2, 0, 20, 0, 0, 0, 1, 2, 3 };
    static const uint8_t rec_huge[] = { 2, 0, 0xff, 0xff, 0xff, 0x7f, 0 };
    uint8_t rec_whole[2 + 4 + 16 + 5] = { 2, 0, 21, 0, 0, 0 };
    write_seed("handshake", "record-short", rec_short, sizeof rec_short);
    write_seed("handshake", "record-huge", rec_huge, sizeof rec_huge);
    write_seed("handshake", "record-forged", rec_whole, sizeof rec_whole);
    write_seed("handshake", "empty", "", 0);
}

/* ---- backup ---------------------------------------------------------------- */

/* A mode byte (bit 0: the driver rewrites the magic and header checksum, bit
 * 1: also the database size and checksum; the six high bits set: it checks
 * the whole file too), then the file: a whole backup,
 * and one damaged in each way the check names. */
static void gen_backup(void)
{
    static const char db[] = "SQLite format 3\0 a small database stands in for the real one";
    struct backup_header h = { .version = BACKUP_VERSION, .index = 42, .term = 3, .cluster = { 0xc1, 0xc2 },
                               .backup_id = { 0xb1, 0xb2 }, .db_size = sizeof db, .db_crc = crc32c(db, sizeof db) };
    uint8_t file[1 + BACKUP_HEADER_BYTES + sizeof db];
    file[0] = 0;
    backup_header_encode(&h, file + 1);
    memcpy(file + 1 + BACKUP_HEADER_BYTES, db, sizeof db);
    write_seed("backup", "whole", file, sizeof file);
    write_seed("backup", "truncated", file, sizeof file - 1);
    file[0] = 0xfc;
    write_seed("backup", "whole-file-checked", file, sizeof file);
    write_seed("backup", "truncated-file-checked", file, sizeof file - 1);
    file[0] = 0xff;
    write_seed("backup", "fit-size-and-crc-file-checked", file, sizeof file);
    file[0] = 0;
    write_seed("backup", "header-only", file, 1 + BACKUP_HEADER_BYTES);
    write_seed("backup", "header-short", file, BACKUP_HEADER_BYTES);
    file[0] = 3;
    write_seed("backup", "fit-size-and-crc", file, sizeof file);
    file[0] = 1;
    file[1 + 40] ^= 1; /* the database's checksum is wrong, the header's is fixed */
    write_seed("backup", "fit-header-db-crc-wrong", file, sizeof file);
    file[1 + 40] ^= 1;
    file[0] = 0xfc;
    file[1 + BACKUP_HEADER_BYTES + 5] ^= 0x10;
    write_seed("backup", "db-bit-flip", file, sizeof file);
    file[1 + BACKUP_HEADER_BYTES + 5] ^= 0x10;
    struct { const char *name; uint32_t version; uint64_t index, size; } odd[] = {
        { "version-2", 2, 42, sizeof db }, { "version-0", 0, 42, sizeof db },
        { "index-0", BACKUP_VERSION, 0, sizeof db }, { "size-0", BACKUP_VERSION, 42, 0 },
        { "size-max", BACKUP_VERSION, 42, UINT64_MAX },
    };
    for (size_t i = 0; i < sizeof odd / sizeof odd[0]; i++) {
        struct backup_header o = h;
        o.version = odd[i].version;
        o.index = odd[i].index;
        o.db_size = odd[i].size;
        backup_header_encode(&o, file + 1);
        write_seed("backup", odd[i].name, file, sizeof file);
    }
    backup_header_encode(&h, file + 1);
    file[1 + 12] = 1; /* reserved */
    file[0] = 1;
    write_seed("backup", "reserved-not-zero", file, sizeof file);
    write_seed("backup", "empty", "", 0);
}

/* ---- segment --------------------------------------------------------------- */

/* A mode byte (see fuzz_segment.c: bit 0 valid header, bit 1 valid record
 * checksums, bit 2 records numbered, bit 3 not the last segment), then a
 * log segment: whole, torn in each way a crash tears it, and damaged. */
static void gen_segment(void)
{
    static uint8_t seg[1 + 4096];
    uint8_t *f = seg + 1;
    memset(f, 0, ST_SEG_HEADER_BYTES);
    memcpy(f, ST_SEG_MAGIC, 8);
    f[8] = ST_FORMAT_VERSION;
    f[16] = 1; /* seq */
    f[24] = 1; /* first index */
    uint32_t crc = crc32c(f, 36);
    memcpy(f + 36, &crc, 4); /* little-endian, as st_put32 */
    static const uint8_t cmd[] = "a command's bytes", cfg[] = { 2, 0, 0, 0, 1, 2 };
    const struct raft_entry es[3] = {
        { .index = 1, .term = 1, .type = RAFT_ENTRY_COMMAND, .len = sizeof cmd, .data = cmd },
        { .index = 2, .term = 1, .type = RAFT_ENTRY_NOOP },
        { .index = 3, .term = 2, .type = RAFT_ENTRY_CONFIG, .len = sizeof cfg, .data = cfg },
    };
    size_t off = ST_SEG_HEADER_BYTES, starts[3];
    for (int i = 0; i < 3; i++) {
        starts[i] = off;
        st_record_encode(&es[i], f + off);
        off += (size_t)st_rec_bytes(es[i].len);
    }
    size_t whole = 1 + off;
    seg[0] = 0;
    write_seed("segment", "empty", "", 0);
    write_seed("segment", "header-only", seg, 1 + ST_SEG_HEADER_BYTES);
    write_seed("segment", "header-short", seg, ST_SEG_HEADER_BYTES);
    write_seed("segment", "three-records", seg, whole);
    write_seed("segment", "torn-in-last-header", seg, 1 + starts[2] + 10);
    write_seed("segment", "torn-in-last-data", seg, whole - 3);
    memset(seg + whole, 0, 64);
    write_seed("segment", "zeros-after", seg, whole + 64);
    seg[0] = 8;
    write_seed("segment", "three-records-not-last", seg, whole);
    write_seed("segment", "torn-not-last", seg, whole - 3);
    seg[0] = 0;
    f[starts[1] + 8] ^= 4; /* the middle record's term */
    write_seed("segment", "middle-bit-flip", seg, whole);
    seg[0] = 2;
    write_seed("segment", "middle-term-4-checksums-fixed", seg, whole);
    f[starts[1] + 8] ^= 4;
    f[starts[2] + 4] = 9; /* the last record's type */
    write_seed("segment", "last-type-9-checksums-fixed", seg, whole);
    f[starts[2] + 4] = RAFT_ENTRY_CONFIG;
    seg[0] = 6;
    f[starts[1] + 16] = 7; /* renumbered by the driver */
    write_seed("segment", "renumbered", seg, whole);
    f[starts[1] + 16] = 2;
    seg[0] = 0;
    f[starts[2] + ST_REC_HEADER_BYTES + 6] = 1; /* padding */
    write_seed("segment", "padding-not-zero", seg, whole);
    f[starts[2] + ST_REC_HEADER_BYTES + 6] = 0;
    f[8] = 2;
    write_seed("segment", "version-2", seg, whole);
    seg[0] = 7;
    write_seed("segment", "version-2-fixed", seg, whole);
    f[8] = ST_FORMAT_VERSION;
    seg[0] = 0;
    f[24] = 5;
    crc = crc32c(f, 36);
    memcpy(f + 36, &crc, 4);
    write_seed("segment", "first-index-5", seg, whole);
    seg[0] = 3;
    memset(f + ST_SEG_HEADER_BYTES, 0xff, 4); /* a huge length */
    write_seed("segment", "huge-length", seg, whole);
}

int main(int argc, char **argv)
{
    if (argc != 2) {
        fprintf(stderr, "usage: gen_corpus DIR   (writes DIR/codec, DIR/json, ...)\n");
        return 2;
    }
    out_dir = argv[1];
    if (mkdir(out_dir, 0777) != 0 && errno != EEXIST) {
        fprintf(stderr, "gen_corpus: cannot create %s: %s\n", out_dir, strerror(errno));
        return 1;
    }
    gen_codec();
    gen_command();
    gen_config();
    gen_json();
    gen_cluster();
    gen_handshake();
    gen_backup();
    gen_segment();
    printf("gen_corpus: wrote %d seeds under %s\n", n_written, out_dir);
    return 0;
}
