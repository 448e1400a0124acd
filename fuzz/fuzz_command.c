/*
 * fuzz_command.c — libFuzzer driver for the state-machine command decoder
 * (command_decode; src/store/command.c), which reads the data of every
 * committed COMMAND entry. The input is the entry's data. Properties of an
 * accepted command: its strings lie inside the input and within their
 * bounds (COMMAND_MAX_STR, and the site's COMMAND_MAX_* and session hash
 * length); command_size is the input's size; re-encoding gives the
 * same bytes (also with empty strings given as NULL), which decode to the
 * same fields.
 */
#include "fuzz.h"

#include "command.h"

#include <string.h>

static void fz_command_check_str(struct command_str s, const uint8_t *data, size_t size)
{
    FUZZ_CHECK(s.len <= COMMAND_MAX_STR);
    if (s.len > 0)
        FUZZ_CHECK((const uint8_t *)s.p >= data && (const uint8_t *)s.p + s.len <= data + size);
}

static int fz_command_same_str(struct command_str a, struct command_str b)
{
    return a.len == b.len && (a.len == 0 || memcmp(a.p, b.p, a.len) == 0);
}

int FUZZ_ENTRY(const uint8_t *data, size_t size)
{
    struct command c;
    if (command_decode(&c, data, size) != 0)
        return 0;
    FUZZ_CHECK(c.type == CMD_KV_PUT || c.type == CMD_KV_DELETE || c.type == CMD_MEMBER_ADDR ||
               (c.type >= CMD_SIGNUP && c.type <= CMD_UNBAN));
    struct command_str *all[] = { &c.scope, &c.idem_key, &c.key, &c.value, &c.name, &c.lname,
                                  &c.pwhash, &c.session, &c.title, &c.url, &c.url_norm, &c.text };
    for (size_t i = 0; i < sizeof all / sizeof all[0]; i++)
        fz_command_check_str(*all[i], data, size);
    if (c.type == CMD_KV_DELETE)
        FUZZ_CHECK(c.value.len == 0);
    /* The site's commands name a session by its hash, never anything else;
     * granting a moderator is the admin plane's and carries none. */
    if (c.type >= CMD_SIGNUP && c.type <= CMD_UNBAN && c.type != CMD_MODERATOR_ADD &&
        c.type != CMD_MODERATOR_REMOVE)
        FUZZ_CHECK(c.session.len == COMMAND_HASH_LEN);
    FUZZ_CHECK(c.name.len <= COMMAND_MAX_NAME && c.lname.len <= COMMAND_MAX_NAME);
    FUZZ_CHECK(c.title.len <= COMMAND_MAX_TITLE_BYTES && c.url.len <= COMMAND_MAX_URL &&
               c.url_norm.len <= COMMAND_MAX_URL && c.pwhash.len <= COMMAND_MAX_PWHASH);

    size_t need = command_size(&c);
    FUZZ_CHECK(need == size);
    uint8_t *again = malloc(need ? need : 1);
    FUZZ_CHECK(again != NULL);
    long n = command_encode(&c, again, need);
    FUZZ_CHECK(n >= 0 && (size_t)n == size && memcmp(again, data, size) == 0);
    /* One byte short is refused, not overrun. */
    FUZZ_CHECK(command_encode(&c, again, need - 1) == -1);

    /* Empty strings as a caller may write them (p == NULL) encode the same. */
    struct command nulls = c;
    struct command_str *strs[] = { &nulls.scope, &nulls.idem_key, &nulls.key, &nulls.value, &nulls.name,
                                   &nulls.lname, &nulls.pwhash, &nulls.session, &nulls.title, &nulls.url,
                                   &nulls.url_norm };
    for (size_t i = 0; i < sizeof strs / sizeof strs[0]; i++)
        if (strs[i]->len == 0)
            strs[i]->p = NULL;
    memset(again, 0, need);
    FUZZ_CHECK(command_encode(&nulls, again, need) == n && memcmp(again, data, size) == 0);

    struct command d;
    FUZZ_CHECK(command_decode(&d, again, (size_t)n) == 0);
    FUZZ_CHECK(d.type == c.type && d.time_ms == c.time_ms);
    FUZZ_CHECK(fz_command_same_str(d.scope, c.scope) && fz_command_same_str(d.idem_key, c.idem_key));
    FUZZ_CHECK(fz_command_same_str(d.key, c.key) && fz_command_same_str(d.value, c.value));
    FUZZ_CHECK(fz_command_same_str(d.name, c.name) && fz_command_same_str(d.lname, c.lname) &&
               fz_command_same_str(d.pwhash, c.pwhash) && fz_command_same_str(d.session, c.session));
    FUZZ_CHECK(fz_command_same_str(d.title, c.title) && fz_command_same_str(d.url, c.url) &&
               fz_command_same_str(d.url_norm, c.url_norm) && d.link_id == c.link_id);
    free(again);
    return 0;
}
