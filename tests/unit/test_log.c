/* test_log.c — the log's formats (sys/log.h): text, logfmt and JSON lines,
 * with messages that carry quotes, backslashes, control characters and bytes
 * that are not UTF-8 (a file name, a peer's garbage): every JSON line parses
 * with the strict parser and gives the message back. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "common/json.h"
#include "../harness.h"
#include "sys/log.h"

/* Runs the log calls of fn with stderr sent to a file; returns what was written (static). */
static const char *captured(void (*fn)(void))
{
    static char out[16384];
    FILE *tmp = tmpfile();
    if (!tmp)
        return "";
    fflush(stderr);
    int saved = dup(2);
    dup2(fileno(tmp), 2);
    fn();
    fflush(stderr);
    dup2(saved, 2);
    close(saved);
    rewind(tmp);
    size_t n = fread(out, 1, sizeof out - 1, tmp);
    out[n] = 0;
    fclose(tmp);
    return out;
}

static void nasty(void)
{
    log_info("plain");
    log_warn("quote \" backslash \\ tab \t newline \n bell \a del \x7f end");
    log_error("bad utf-8: \xff\xfe, lone continuation \x80, surrogate \xed\xa0\x80, fine: caf\xc3\xa9 \xe2\x82\xac");
    char big[3000];
    memset(big, '"', sizeof big - 1);
    big[sizeof big - 1] = 0;
    log_info("%s", big); /* escaping doubles it: cut, still one closed line */
}

TEST(json_lines_parse_and_keep_the_message)
{
    log_init("node 7");
    log_set_format(LOG_FORMAT_JSON);
    const char *text = captured(nasty);
    char *copy = strdup(text);
    int lines = 0;
    const char *want[] = { "plain", "quote \" backslash \\ tab \t newline \n bell \a del \x7f end",
                           "bad utf-8: \xef\xbf\xbd\xef\xbf\xbd, lone continuation \xef\xbf\xbd, surrogate "
                           "\xef\xbf\xbd\xef\xbf\xbd\xef\xbf\xbd, fine: caf\xc3\xa9 \xe2\x82\xac" };
    for (char *line = strtok(copy, "\n"); line; line = strtok(NULL, "\n"), lines++) {
        struct json_doc d;
        char err[128];
        int rc = json_parse(&d, line, strlen(line), err, sizeof err);
        CHECK(rc == 0);
        if (rc) {
            fprintf(stderr, "    line %d: %s: %.200s\n", lines, err, line);
            continue;
        }
        CHECK_STR(json_get_str(d.root, "who", NULL), "node 7");
        const char *level = json_get_str(d.root, "level", NULL);
        CHECK(level && (!strcmp(level, "info") || !strcmp(level, "warn") || !strcmp(level, "error")));
        CHECK(json_get_str(d.root, "time", NULL) && strlen(json_get_str(d.root, "time", NULL)) == 24);
        if (lines < 3)
            CHECK_STR(json_get_str(d.root, "msg", NULL), want[lines]);
        json_free(&d);
    }
    CHECK_EQ_I(lines, 4);
    free(copy);
}

TEST(logfmt_and_text_lines)
{
    log_set_format(LOG_FORMAT_LOGFMT);
    const char *text = captured(nasty);
    CHECK(!strncmp(text, "time=", 5));
    CHECK(strstr(text, " level=info who=\"node 7\" msg=\"plain\"\n"));
    CHECK(strstr(text, "msg=\"quote \\\" backslash \\\\ tab \\t newline \\n bell \\u0007 del \\u007f end\"\n"));
    log_set_format(LOG_FORMAT_TEXT);
    text = captured(nasty);
    CHECK(strstr(text, "Z node 7 INFO: plain\n"));
    enum log_format f;
    CHECK(log_format_parse("json", &f) == 0 && f == LOG_FORMAT_JSON);
    CHECK(log_format_parse("logfmt", &f) == 0 && f == LOG_FORMAT_LOGFMT);
    CHECK(log_format_parse("text", &f) == 0 && f == LOG_FORMAT_TEXT);
    CHECK(log_format_parse("yaml", &f) == -1);
}

int main(void)
{
    RUN(json_lines_parse_and_keep_the_message);
    RUN(logfmt_and_text_lines);
    return HARNESS_END();
}
