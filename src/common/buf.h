/* buf.h — a growable byte buffer for building responses and messages.
 * A failed allocation sets `oom` and makes later appends no-ops, so callers
 * check once at the end instead of after every append. */
#ifndef LINKRAFT_BUF_H
#define LINKRAFT_BUF_H
#include <stdarg.h>
#include <stddef.h>

struct buf {
    char *p;        /* NUL-terminated while not oom */
    size_t len, cap;
    int oom;
};

void buf_init(struct buf *b);
void buf_free(struct buf *b);
void buf_reset(struct buf *b);              /* len = 0, keeps memory */
void buf_append(struct buf *b, const void *data, size_t len);
void buf_puts(struct buf *b, const char *s);
void buf_printf(struct buf *b, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
/* Ownership of the bytes passes to the caller (free()); b is reset. */
char *buf_take(struct buf *b, size_t *len);
#endif
