/*
 * harness.h — a plain unit-test harness. Each test file defines tests with
 * TEST(name) and lists them in main via RUN(name); CHECK records a failure
 * with file:line and goes on; REQUIRE stops the current test. The binary
 * ends with the line "N passed, N failed" and exits 1 if anything failed.
 */
#ifndef LINKRAFT_HARNESS_H
#define LINKRAFT_HARNESS_H
#include <stdio.h>
#include <string.h>

static int harness_passed, harness_failed, harness_cur_failed;
static const char *harness_cur_name;

#define TEST(name) static void name(void)
#define CHECK(cond) do { if (!(cond)) { \
    fprintf(stderr, "  FAIL %s: %s:%d: %s\n", harness_cur_name, __FILE__, __LINE__, #cond); \
    harness_cur_failed = 1; } } while (0)
#define REQUIRE(cond) do { if (!(cond)) { \
    fprintf(stderr, "  FAIL %s: %s:%d: %s\n", harness_cur_name, __FILE__, __LINE__, #cond); \
    harness_cur_failed = 1; return; } } while (0)
#define CHECK_EQ_U(a, b) do { unsigned long long a_ = (a), b_ = (b); if (a_ != b_) { \
    fprintf(stderr, "  FAIL %s: %s:%d: %s == %s (%llu != %llu)\n", harness_cur_name, \
            __FILE__, __LINE__, #a, #b, a_, b_); harness_cur_failed = 1; } } while (0)
#define CHECK_EQ_I(a, b) do { long long a_ = (a), b_ = (b); if (a_ != b_) { \
    fprintf(stderr, "  FAIL %s: %s:%d: %s == %s (%lld != %lld)\n", harness_cur_name, \
            __FILE__, __LINE__, #a, #b, a_, b_); harness_cur_failed = 1; } } while (0)
#define CHECK_STR(a, b) do { const char *a_ = (a), *b_ = (b); if (!a_ || !b_ || strcmp(a_, b_)) { \
    fprintf(stderr, "  FAIL %s: %s:%d: %s == %s (\"%s\" != \"%s\")\n", harness_cur_name, \
            __FILE__, __LINE__, #a, #b, a_ ? a_ : "(null)", b_ ? b_ : "(null)"); \
    harness_cur_failed = 1; } } while (0)

#define RUN(name) do { harness_cur_name = #name; harness_cur_failed = 0; name(); \
    if (harness_cur_failed) { harness_failed++; fprintf(stderr, "FAIL %s\n", #name); } \
    else harness_passed++; } while (0)

#define HARNESS_END() (printf("%d passed, %d failed\n", harness_passed, harness_failed), \
    harness_failed ? 1 : 0)
#endif
