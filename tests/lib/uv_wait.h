/*
 * uv_wait.h — for tests that drive a libuv loop themselves: run it until a
 * condition holds, with a deadline (never a sleep).
 */
#ifndef LINKRAFT_TESTS_UV_WAIT_H
#define LINKRAFT_TESTS_UV_WAIT_H

#include <stdbool.h>
#include <uv.h>

/* Runs loop until pred() holds or timeout_ms passes; true if it held. A
 * 5 ms timer keeps the loop turning so that pred is looked at even when no
 * I/O arrives (a client thread may be what makes it true). */
bool uv_wait_until(uv_loop_t *loop, bool (*pred)(void), unsigned timeout_ms);

#endif
