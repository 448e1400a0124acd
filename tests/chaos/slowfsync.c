/*
 * slowfsync.c — a test-only LD_PRELOAD shim for the chaos suite: a disk
 * whose fsync takes seconds. While the file named by $SLOWFSYNC_FILE holds a
 * number N > 0, every fsync and fdatasync first sleeps N milliseconds, then
 * does the real call. The chaos nemesis writes the file to start a stall
 * and empties it to end it. Nothing else is changed.
 */
/* _GNU_SOURCE (RTLD_NEXT) comes from the Makefile. */
#include <dlfcn.h>
#include <stdio.h>
#include <stdlib.h>
#include <time.h>
#include <unistd.h>

static void stall(void)
{
    const char *path = getenv("SLOWFSYNC_FILE");
    if (!path)
        return;
    FILE *f = fopen(path, "r");
    if (!f)
        return;
    long ms = 0;
    if (fscanf(f, "%ld", &ms) != 1)
        ms = 0;
    fclose(f);
    if (ms > 0) {
        struct timespec ts = { ms / 1000, (ms % 1000) * 1000000L };
        while (nanosleep(&ts, &ts) != 0)
            ;
    }
}

int fsync(int fd)
{
    static int (*real)(int);
    if (!real)
        real = (int (*)(int))dlsym(RTLD_NEXT, "fsync");
    stall();
    return real(fd);
}

int fdatasync(int fd)
{
    static int (*real)(int);
    if (!real)
        real = (int (*)(int))dlsym(RTLD_NEXT, "fdatasync");
    stall();
    return real(fd);
}
