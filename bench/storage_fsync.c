/*
 * storage_fsync.c — the raw fdatasync rate of a disk: 4 KiB pwrite then
 * fdatasync, in a loop, for about 3 seconds, in a temporary file under DIR
 * (default /tmp). This bounds how many group commits per second a node on
 * that disk can make (each storage_sync is one fdatasync). Not a test.
 *
 *   gcc -O2 -o build/storage_fsync bench/storage_fsync.c && build/storage_fsync [DIR]
 */
#define _GNU_SOURCE
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

static double now_s(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + ts.tv_nsec / 1e9;
}

int main(int argc, char **argv)
{
    const char *dir = argc > 1 ? argv[1] : "/tmp";
    char path[4096];
    snprintf(path, sizeof path, "%s/fsync-rate-XXXXXX", dir);
    int fd = mkstemp(path);
    if (fd < 0) {
        perror(path);
        return 1;
    }
    unlink(path);
    static char block[4096];
    memset(block, 'x', sizeof block);
    double start = now_s(), end = start + 3.0, t = start, worst = 0;
    long n = 0;
    while (t < end) {
        double t0 = now_s();
        if (pwrite(fd, block, sizeof block, (off_t)(n % 256) * (off_t)sizeof block) != (ssize_t)sizeof block ||
            fdatasync(fd) != 0) {
            perror("pwrite/fdatasync");
            return 1;
        }
        t = now_s();
        if (t - t0 > worst)
            worst = t - t0;
        n++;
    }
    close(fd);
    double secs = t - start;
    printf("%s: %ld x (4 KiB pwrite + fdatasync) in %.2f s = %.0f/s, mean %.3f ms, worst %.3f ms\n", dir, n, secs,
           n / secs, secs / n * 1e3, worst * 1e3);
    return 0;
}
