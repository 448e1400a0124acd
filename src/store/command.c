/*
 * command.c — encoding and decoding of state-machine commands (command.h).
 * The decoder trusts nothing: each length is checked against what remains.
 */
#include "command.h"

#include <string.h>

struct writer {
    uint8_t *p, *end;
    int bad;
};

static void put_bytes(struct writer *w, const void *src, size_t n)
{
    if (w->bad || (size_t)(w->end - w->p) < n) {
        w->bad = 1;
        return;
    }
    if (n > 0) /* an empty command_str may have p == NULL; memcpy must not see it */
        memcpy(w->p, src, n);
    w->p += n;
}

static void put_u8(struct writer *w, uint8_t v) { put_bytes(w, &v, 1); }

static void put_u64(struct writer *w, uint64_t v)
{
    uint8_t b[8];
    for (int i = 0; i < 8; i++)
        b[i] = (uint8_t)(v >> (8 * i));
    put_bytes(w, b, 8);
}

static void put_str(struct writer *w, struct command_str s)
{
    if (s.len > COMMAND_MAX_TEXT_BYTES) { /* the largest bound of any field (field_ok checks each) */
        w->bad = 1;
        return;
    }
    uint8_t b[2] = { (uint8_t)s.len, (uint8_t)(s.len >> 8) };
    put_bytes(w, b, 2);
    put_bytes(w, s.p, s.len);
}

struct reader {
    const uint8_t *p, *end;
    int bad;
};

static const uint8_t *take(struct reader *r, size_t n)
{
    if (r->bad || (size_t)(r->end - r->p) < n) {
        r->bad = 1;
        return NULL;
    }
    const uint8_t *at = r->p;
    r->p += n;
    return at;
}

static uint8_t get_u8(struct reader *r)
{
    const uint8_t *b = take(r, 1);
    return b ? b[0] : 0;
}

static uint64_t get_u64(struct reader *r)
{
    const uint8_t *b = take(r, 8);
    uint64_t v = 0;
    if (b)
        for (int i = 7; i >= 0; i--)
            v = v << 8 | b[i];
    return v;
}

static struct command_str get_str(struct reader *r)
{
    struct command_str s = { 0 };
    const uint8_t *b = take(r, 2);
    if (!b)
        return s;
    uint16_t len = (uint16_t)(b[0] | b[1] << 8);
    if (len > COMMAND_MAX_TEXT_BYTES) {
        r->bad = 1;
        return s;
    }
    const uint8_t *p = take(r, len);
    if (p) {
        s.p = (const char *)p;
        s.len = len;
    }
    return s;
}

/* The string fields each type carries, in wire order, then the u64 ids
 * (link id, then comment id) it carries. One table for encode, size and
 * decode, so the three cannot disagree. Returns the number of strings, or
 * -1 for an unknown type. */
struct layout {
    struct command_str *str[5];
    uint16_t max[5];
    int has_link_id;
    int has_comment_id;
};

static int layout_of(struct command *c, struct layout *l)
{
    memset(l, 0, sizeof *l);
    int n = 0;
#define F(field, bound) (l->str[n] = &c->field, l->max[n] = (bound), n++)
    switch (c->type) {
    case CMD_KV_PUT:
    case CMD_MEMBER_ADDR: F(key, COMMAND_MAX_STR); F(value, COMMAND_MAX_STR); break;
    case CMD_KV_DELETE: F(key, COMMAND_MAX_STR); break;
    case CMD_SIGNUP:
        F(name, COMMAND_MAX_NAME); F(lname, COMMAND_MAX_NAME); F(pwhash, COMMAND_MAX_PWHASH);
        F(session, COMMAND_HASH_LEN);
        break;
    case CMD_SESSION_CREATE: F(lname, COMMAND_MAX_NAME); F(session, COMMAND_HASH_LEN); break;
    case CMD_SESSION_DELETE: F(session, COMMAND_HASH_LEN); break;
    case CMD_LINK_POST:
        F(session, COMMAND_HASH_LEN); F(title, COMMAND_MAX_TITLE_BYTES); F(url, COMMAND_MAX_URL);
        F(url_norm, COMMAND_MAX_URL);
        break;
    case CMD_LIKE:
    case CMD_UNLIKE:
    case CMD_FLAG:
    case CMD_UNFLAG: F(session, COMMAND_HASH_LEN); l->has_link_id = 1; break;
    case CMD_COMMENT_POST:
        F(session, COMMAND_HASH_LEN); F(text, COMMAND_MAX_TEXT_BYTES);
        l->has_link_id = l->has_comment_id = 1;
        break;
    case CMD_COMMENT_EDIT: F(session, COMMAND_HASH_LEN); F(text, COMMAND_MAX_TEXT_BYTES); l->has_comment_id = 1; break;
    case CMD_LINK_POST_TEXT:
        F(session, COMMAND_HASH_LEN); F(title, COMMAND_MAX_TITLE_BYTES); F(url, COMMAND_MAX_URL);
        F(url_norm, COMMAND_MAX_URL);
        F(text, COMMAND_MAX_TEXT_BYTES);
        break;
    case CMD_LINK_EDIT:
        F(session, COMMAND_HASH_LEN); F(title, COMMAND_MAX_TITLE_BYTES); F(text, COMMAND_MAX_TEXT_BYTES);
        l->has_link_id = 1;
        break;
    case CMD_LINK_DELETE: F(session, COMMAND_HASH_LEN); l->has_link_id = 1; break;
    case CMD_ABOUT_SET: F(session, COMMAND_HASH_LEN); F(text, COMMAND_MAX_ABOUT_BYTES); break;
    case CMD_PASSWORD_SET: F(session, COMMAND_HASH_LEN); F(pwhash, COMMAND_MAX_PWHASH); break;
    case CMD_COMMENT_DELETE:
    case CMD_COMMENT_LIKE:
    case CMD_COMMENT_UNLIKE:
    case CMD_COMMENT_FLAG:
    case CMD_COMMENT_UNFLAG: F(session, COMMAND_HASH_LEN); l->has_comment_id = 1; break;
    case CMD_MODERATOR_ADD:
    case CMD_MODERATOR_REMOVE: F(lname, COMMAND_MAX_NAME); break;
    case CMD_MOD_DELETE_LINK:
        F(session, COMMAND_HASH_LEN); F(text, COMMAND_MAX_REASON_BYTES); l->has_link_id = 1;
        break;
    case CMD_MOD_DELETE_COMMENT:
        F(session, COMMAND_HASH_LEN); F(text, COMMAND_MAX_REASON_BYTES); l->has_comment_id = 1;
        break;
    case CMD_BAN:
    case CMD_UNBAN:
        F(session, COMMAND_HASH_LEN); F(lname, COMMAND_MAX_NAME); F(text, COMMAND_MAX_REASON_BYTES);
        break;
    default: return -1;
    }
#undef F
    return n;
}

/* A session field must be exactly a hash; names at least 1 byte (the site
 * enforces 3..20, the store only what it relies on). */
static int field_ok(const struct layout *l, int i)
{
    const struct command_str *s = l->str[i];
    if (s->len > l->max[i])
        return 0;
    if (l->max[i] == COMMAND_HASH_LEN && s->len != COMMAND_HASH_LEN)
        return 0;
    return 1;
}

static void write_command(struct writer *w, const struct command *c)
{
    struct command copy = *c;
    struct layout l;
    int n = layout_of(&copy, &l);
    if (n < 0) {
        w->bad = 1;
        return;
    }
    if (c->flags & ~COMMAND_FLAGS_KNOWN)
        w->bad = 1;
    put_u8(w, c->flags ? COMMAND_VERSION_FLAGS : COMMAND_VERSION);
    put_u8(w, c->type);
    if (c->flags)
        put_u8(w, c->flags);
    put_u64(w, c->time_ms);
    if (c->scope.len > COMMAND_MAX_STR || c->idem_key.len > COMMAND_MAX_STR)
        w->bad = 1;
    put_str(w, c->scope);
    put_str(w, c->idem_key);
    for (int i = 0; i < n; i++) {
        if (!field_ok(&l, i))
            w->bad = 1;
        put_str(w, *l.str[i]);
    }
    if (l.has_link_id)
        put_u64(w, (uint64_t)c->link_id);
    if (l.has_comment_id)
        put_u64(w, (uint64_t)c->comment_id);
}

size_t command_size(const struct command *c)
{
    size_t size = 1 + 1 + (c->flags ? 1 : 0) + 8 + 2 + c->scope.len + 2 + c->idem_key.len;
    struct command copy = *c;
    struct layout l;
    int n = layout_of(&copy, &l);
    for (int i = 0; i < n; i++)
        size += 2 + l.str[i]->len;
    if (l.has_link_id)
        size += 8;
    if (l.has_comment_id)
        size += 8;
    return size;
}

long command_encode(const struct command *c, uint8_t *buf, size_t cap)
{
    struct writer w = { buf, buf + cap, 0 };
    write_command(&w, c);
    return w.bad ? -1 : (long)(w.p - buf);
}

int command_decode(struct command *c, const uint8_t *buf, size_t len)
{
    memset(c, 0, sizeof *c);
    struct reader r = { buf, buf + len, 0 };
    uint8_t version = get_u8(&r);
    if (version != COMMAND_VERSION && version != COMMAND_VERSION_FLAGS)
        return -1;
    c->type = get_u8(&r);
    if (version == COMMAND_VERSION_FLAGS) {
        c->flags = get_u8(&r);
        if (!c->flags || (c->flags & ~COMMAND_FLAGS_KNOWN))
            return -1; /* one encoding per command: no flags is version 1 */
    }
    c->time_ms = get_u64(&r);
    c->scope = get_str(&r);
    c->idem_key = get_str(&r);
    if (c->scope.len > COMMAND_MAX_STR || c->idem_key.len > COMMAND_MAX_STR)
        return -1;
    struct layout l;
    int n = layout_of(c, &l);
    if (n < 0)
        return -1;
    for (int i = 0; i < n; i++) {
        *l.str[i] = get_str(&r);
        if (!r.bad && !field_ok(&l, i))
            return -1;
    }
    if (l.has_link_id)
        c->link_id = (int64_t)get_u64(&r);
    if (l.has_comment_id)
        c->comment_id = (int64_t)get_u64(&r);
    if (r.bad || r.p != r.end)
        return -1;
    return 0;
}
