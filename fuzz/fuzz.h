/*
 * fuzz.h — what the libFuzzer drivers in fuzz/ share. Each driver defines
 * LLVMFuzzerTestOneInput for one decoder of untrusted bytes and checks, beyond
 * "does not crash", a property of what the decoder accepted (it re-encodes to
 * the same thing, the tree is well formed, ...). A broken property aborts with
 * FUZZ_CHECK, which libFuzzer reports as a crash and saves the input.
 *
 * The same driver files are compiled without libFuzzer by fuzz/replay.c and by
 * tests/unit/test_fuzz_corpus.c (which renames the entry points with
 * FUZZ_ENTRY before including each driver), so every checked-in corpus is
 * replayed by `make test`. Static helpers in the drivers carry a per-driver
 * prefix so several drivers can share one translation unit.
 */
#ifndef LINKRAFT_FUZZ_H
#define LINKRAFT_FUZZ_H

#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>

/* The driver's entry point: LLVMFuzzerTestOneInput unless the includer
 * renamed it (one name per driver when they share a translation unit). */
#ifndef FUZZ_ENTRY
#define FUZZ_ENTRY LLVMFuzzerTestOneInput
#endif

/* Names the input being run, for FUZZ_CHECK's message. The replay programs
 * point it at the corpus file; under libFuzzer it stays NULL (libFuzzer
 * saves the crashing input itself). */
#ifndef FUZZ_INPUT_NAME_DEFINED
#define FUZZ_INPUT_NAME_DEFINED
static const char *fuzz_input_name __attribute__((unused));
#endif

#define FUZZ_CHECK(cond) do { if (!(cond)) { \
    fprintf(stderr, "fuzz property violated: %s:%d: %s (input %s)\n", __FILE__, __LINE__, \
            #cond, fuzz_input_name ? fuzz_input_name : "given by libFuzzer"); \
    abort(); } } while (0)

#endif
