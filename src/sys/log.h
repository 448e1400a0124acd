/* log.h — the node's and gateway's log: one line per event on stderr,
 * "2026-12-01T21:40:00.123Z node 1 INFO: message" (text, the default), or
 * for a log pipeline (--log-format):
 *   logfmt  time=2026-12-01T21:40:00.123Z level=info who="node 1" msg="message"
 *   json    {"time":"2026-12-01T21:40:00.123Z","level":"info","who":"node 1","msg":"message"}
 * stderr is unbuffered, so a line is out before a crash or a fatal _exit. */
#ifndef LINKRAFT_SYS_LOG_H
#define LINKRAFT_SYS_LOG_H

enum log_level { LOG_DEBUG = 0, LOG_INFO = 1, LOG_WARN = 2, LOG_ERROR = 3 };

/* who: e.g. "node 1" or "gateway"; copied. LINKRAFT_LOG=debug lowers the level. */
void log_init(const char *who);
enum log_format { LOG_FORMAT_TEXT = 0, LOG_FORMAT_LOGFMT, LOG_FORMAT_JSON };
/* "text", "logfmt" or "json" into *out; -1 for anything else. */
int log_format_parse(const char *name, enum log_format *out);
/* For every line from now on (before log_init is fine). */
void log_set_format(enum log_format f);
void log_msg(enum log_level level, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

#define log_debug(...) log_msg(LOG_DEBUG, __VA_ARGS__)
#define log_info(...) log_msg(LOG_INFO, __VA_ARGS__)
#define log_warn(...) log_msg(LOG_WARN, __VA_ARGS__)
#define log_error(...) log_msg(LOG_ERROR, __VA_ARGS__)

#endif
