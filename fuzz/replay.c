/*
 * replay.c — runs a fuzz driver on saved inputs without libFuzzer: every file
 * of a corpus directory (or the files named), each read whole into a buffer of
 * exactly its size, so ASan catches any read past the end as libFuzzer would.
 *
 * Two uses:
 *   - built with gcc as a standalone replayer of one driver (`make fuzz-replay`):
 *       cc -DFUZZ_DRIVER='"fuzz_codec.c"' fuzz/replay.c ...  ->  replay_codec FILE|DIR...
 *     to reproduce a crash libFuzzer saved, under gdb or valgrind if need be;
 *   - #included (with FUZZ_REPLAY_NO_MAIN) by tests/unit/test_fuzz_corpus.c,
 *     which replays every checked-in corpus in `make test`.
 */
#ifdef FUZZ_DRIVER
#include FUZZ_DRIVER
#endif
#include "fuzz.h"

#include <dirent.h>
#include <errno.h>
#include <string.h>
#include <sys/stat.h>

typedef int (*fuzz_one_fn)(const uint8_t *data, size_t size);

/* Reads path whole into a malloc'd buffer of exactly its size. Returns 0,
 * or -1 with a message on stderr. */
static int fuzz_read_file(const char *path, uint8_t **data, size_t *size)
{
    FILE *f = fopen(path, "rb");
    if (!f) {
        fprintf(stderr, "replay: cannot open %s: %s\n", path, strerror(errno));
        return -1;
    }
    struct stat st;
    if (fstat(fileno(f), &st) != 0 || !S_ISREG(st.st_mode)) {
        fprintf(stderr, "replay: %s is not a regular file\n", path);
        fclose(f);
        return -1;
    }
    size_t n = (size_t)st.st_size;
    /* malloc(0) gives a pointer of its own under glibc and ASan, so even a
     * one-byte read of an empty input is caught. */
    uint8_t *buf = malloc(n);
    if (!buf && n == 0)
        buf = malloc(1);
    if (!buf || (n && fread(buf, 1, n, f) != n)) {
        fprintf(stderr, "replay: cannot read %s\n", path);
        free(buf);
        fclose(f);
        return -1;
    }
    fclose(f);
    *data = buf;
    *size = n;
    return 0;
}

/* Runs one on a file. Returns 0, or -1 if the file could not be read (a
 * driver that finds a bug aborts instead). */
static int fuzz_replay_file(const char *path, fuzz_one_fn one)
{
    uint8_t *data;
    size_t size;
    if (fuzz_read_file(path, &data, &size) != 0)
        return -1;
    fuzz_input_name = path;
    one(data, size);
    fuzz_input_name = NULL;
    free(data);
    return 0;
}

static int fuzz_name_cmp(const void *a, const void *b)
{
    return strcmp(*(char *const *)a, *(char *const *)b);
}

/* Lists the regular files of a directory, sorted (so runs are in a stable
 * order). Returns the count, or -1 with a message on stderr; *names and each
 * name are malloc'd. */
static long fuzz_list_dir(const char *dir, char ***names)
{
    DIR *d = opendir(dir);
    if (!d) {
        fprintf(stderr, "replay: cannot open directory %s: %s\n", dir, strerror(errno));
        return -1;
    }
    char **list = NULL;
    size_t n = 0, cap = 0;
    struct dirent *e;
    while ((e = readdir(d)) != NULL) {
        if (e->d_name[0] == '.')
            continue;
        if (n == cap) {
            cap = cap ? cap * 2 : 64;
            char **grown = realloc(list, cap * sizeof *list);
            if (!grown)
                break;
            list = grown;
        }
        size_t len = strlen(dir) + 1 + strlen(e->d_name) + 1;
        if (!(list[n] = malloc(len)))
            break;
        snprintf(list[n], len, "%s/%s", dir, e->d_name);
        n++;
    }
    closedir(d);
    if (n)
        qsort(list, n, sizeof *list, fuzz_name_cmp);
    *names = list;
    return (long)n;
}

static void fuzz_free_list(char **names, long n)
{
    for (long i = 0; i < n; i++)
        free(names[i]);
    free(names);
}

#ifndef FUZZ_REPLAY_NO_MAIN
int main(int argc, char **argv)
{
    if (argc < 2) {
        fprintf(stderr, "usage: %s FILE|DIR...   (runs the driver on each input)\n", argv[0]);
        return 2;
    }
    long ran = 0, unreadable = 0;
    for (int i = 1; i < argc; i++) {
        struct stat st;
        if (stat(argv[i], &st) == 0 && S_ISDIR(st.st_mode)) {
            char **names;
            long n = fuzz_list_dir(argv[i], &names);
            if (n < 0) {
                unreadable++;
                continue;
            }
            for (long k = 0; k < n; k++, ran++)
                unreadable += fuzz_replay_file(names[k], FUZZ_ENTRY) != 0;
            fuzz_free_list(names, n);
        } else {
            unreadable += fuzz_replay_file(argv[i], FUZZ_ENTRY) != 0;
            ran++;
        }
    }
    printf("replay: %ld inputs, %ld unreadable, no property violated\n", ran, unreadable);
    return unreadable ? 1 : 0;
}
#endif
