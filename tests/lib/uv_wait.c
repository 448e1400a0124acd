/*
 * uv_wait.c — see uv_wait.h.
 */
#include "uv_wait.h"

static void on_tick(uv_timer_t *t) { (void)t; }

bool uv_wait_until(uv_loop_t *loop, bool (*pred)(void), unsigned timeout_ms)
{
    uv_timer_t tick;
    uv_timer_init(loop, &tick);
    uv_timer_start(&tick, on_tick, 5, 5);
    uint64_t deadline = uv_now(loop) + timeout_ms;
    bool ok;
    while (!(ok = pred()) && uv_now(loop) < deadline)
        uv_run(loop, UV_RUN_ONCE);
    uv_close((uv_handle_t *)&tick, NULL);
    uv_run(loop, UV_RUN_NOWAIT);
    return ok;
}
