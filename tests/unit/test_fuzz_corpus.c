/*
 * test_fuzz_corpus.c — replays every checked-in fuzz corpus (fuzz/corpus/NAME)
 * through its driver (fuzz/fuzz_NAME.c), so `make test` runs each seed and
 * each saved crash in the optimized build and under ASan+UBSan, with no
 * libFuzzer. The drivers are #included with their entry points renamed
 * (FUZZ_ENTRY), and fuzz/replay.c supplies the file reading. One test per
 * corpus file; a driver whose property breaks aborts, naming the file.
 * The corpora are found under $LINKRAFT_FUZZ_CORPUS, default fuzz/corpus
 * (make test runs from the repository root).
 */
#include "../harness.h"

#define FUZZ_ENTRY fuzz_codec_one
#include "../../fuzz/fuzz_codec.c"
#undef FUZZ_ENTRY
#define FUZZ_ENTRY fuzz_json_one
#include "../../fuzz/fuzz_json.c"
#undef FUZZ_ENTRY
#define FUZZ_ENTRY fuzz_cluster_one
#include "../../fuzz/fuzz_cluster.c"
#undef FUZZ_ENTRY
#define FUZZ_ENTRY fuzz_command_one
#include "../../fuzz/fuzz_command.c"
#undef FUZZ_ENTRY
#define FUZZ_ENTRY fuzz_config_one
#include "../../fuzz/fuzz_config.c"
#undef FUZZ_ENTRY
#define FUZZ_ENTRY fuzz_admin_auth_one
#include "../../fuzz/fuzz_admin_auth.c"
#undef FUZZ_ENTRY
#define FUZZ_ENTRY fuzz_text_one
#include "../../fuzz/fuzz_text.c"
#undef FUZZ_ENTRY
#define FUZZ_ENTRY fuzz_handshake_one
#include "../../fuzz/fuzz_handshake.c"
#undef FUZZ_ENTRY
#define FUZZ_ENTRY fuzz_form_one
#include "../../fuzz/fuzz_form.c"
#undef FUZZ_ENTRY
#define FUZZ_ENTRY fuzz_backup_one
#include "../../fuzz/fuzz_backup.c"
#undef FUZZ_ENTRY
#define FUZZ_ENTRY fuzz_segment_one
#include "../../fuzz/fuzz_segment.c"
#undef FUZZ_ENTRY
#define FUZZ_ENTRY fuzz_http_one
#include "../../fuzz/fuzz_http.c"
#undef FUZZ_ENTRY

#define FUZZ_REPLAY_NO_MAIN
#include "../../fuzz/replay.c"

/* Fewer seeds than this means the corpus went missing, not that it passed. */
#define MIN_SEEDS 5

static const struct {
    const char *name;
    fuzz_one_fn one;
} drivers[] = {
    { "codec", fuzz_codec_one },     { "json", fuzz_json_one },
    { "cluster", fuzz_cluster_one }, { "command", fuzz_command_one },
    { "config", fuzz_config_one },   { "admin_auth", fuzz_admin_auth_one },
    { "text", fuzz_text_one },       { "handshake", fuzz_handshake_one },
    { "form", fuzz_form_one },       { "backup", fuzz_backup_one },
    { "segment", fuzz_segment_one }, { "http", fuzz_http_one },
};

static void replay_corpus(const char *root, const char *name, fuzz_one_fn one)
{
    char dir[512];
    snprintf(dir, sizeof dir, "%s/%s", root, name);
    char **files;
    long n = fuzz_list_dir(dir, &files);
    if (n < MIN_SEEDS) {
        fprintf(stderr, "FAIL corpus %s: %ld inputs (want at least %d)\n", dir, n, MIN_SEEDS);
        harness_failed++;
        if (n >= 0)
            fuzz_free_list(files, n);
        return;
    }
    /* Each file counts as one test in the harness's totals. */
    for (long i = 0; i < n; i++) {
        harness_cur_name = files[i];
        harness_cur_failed = fuzz_replay_file(files[i], one) != 0;
        if (harness_cur_failed) {
            fprintf(stderr, "FAIL %s: unreadable\n", harness_cur_name);
            harness_failed++;
        } else {
            harness_passed++;
        }
    }
    printf("corpus %-8s %ld inputs\n", name, n);
    fuzz_free_list(files, n);
}

int main(void)
{
    const char *root = getenv("LINKRAFT_FUZZ_CORPUS");
    if (!root || !*root)
        root = "fuzz/corpus";
    for (size_t i = 0; i < sizeof drivers / sizeof drivers[0]; i++)
        replay_corpus(root, drivers[i].name, drivers[i].one);
    return HARNESS_END();
}
