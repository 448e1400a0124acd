/* log.c — timestamped log lines on stderr (log.h). */
#include "sys/log.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

static char log_who[64] = "linkraft";
static enum log_level log_min = LOG_INFO;

void log_init(const char *who)
{
    snprintf(log_who, sizeof log_who, "%s", who);
    const char *env = getenv("LINKRAFT_LOG");
    if (env && !strcmp(env, "debug"))
        log_min = LOG_DEBUG;
    else if (env && !strcmp(env, "warn"))
        log_min = LOG_WARN;
}

void log_msg(enum log_level level, const char *fmt, ...)
{
    static const char *const names[] = { "DEBUG", "INFO", "WARN", "ERROR" };
    if (level < log_min)
        return;
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    struct tm tm;
    gmtime_r(&ts.tv_sec, &tm);
    char line[2048];
    int n = snprintf(line, sizeof line, "%04d-%02d-%02dT%02d:%02d:%02d.%03ldZ %s %s: ", tm.tm_year + 1900,
                     tm.tm_mon + 1, tm.tm_mday, tm.tm_hour, tm.tm_min, tm.tm_sec, ts.tv_nsec / 1000000,
                     log_who, names[level]);
    va_list ap;
    va_start(ap, fmt);
    if (n > 0 && (size_t)n < sizeof line)
        n += vsnprintf(line + n, sizeof line - (size_t)n, fmt, ap);
    va_end(ap);
    if (n < 0)
        return;
    if ((size_t)n >= sizeof line - 1)
        n = (int)sizeof line - 2;
    line[n++] = '\n';
    fwrite(line, 1, (size_t)n, stderr); /* one write: lines from processes sharing a terminal don't interleave */
}
