# linkraft — build. `make` builds build/linkraft; `make test` runs every suite
# (also under ASan+UBSan); `make sim SEEDS=N` runs the simulator long;
# `make mutants` checks the simulator catches every planted Raft bug.
#
# Each module under src/ is its own static library. The Raft core (src/raft)
# may use only src/common, the replica driver (src/replica) only those two;
# `make check-purity` proves from their object files that they call no I/O,
# clock, socket or thread function.

BUILD   ?= build
CC      ?= gcc
SAN     ?=
OPT     ?= -O2
CFLAGS  ?=
LDFLAGS ?=

WARN      := -Wall -Wextra -Werror -Wshadow -Wstrict-prototypes -Wno-unused-parameter
ALLCFLAGS := -std=c11 -g $(OPT) $(WARN) -D_GNU_SOURCE -Iinclude -Isrc -MMD -MP $(CFLAGS)
ALLLDFLAGS := $(LDFLAGS)
ifeq ($(SAN),1)
ALLCFLAGS  += -fsanitize=address,undefined -fno-sanitize-recover=all -fno-omit-frame-pointer
ALLLDFLAGS += -fsanitize=address,undefined
endif

# Modules in link order (a module may use those after it).
MODULES := $(notdir $(wildcard src/cli src/gateway src/node src/replica src/site src/http src/store src/net src/storage src/raft src/common))
LIBS    := $(foreach m,$(filter-out cli,$(MODULES)),$(BUILD)/lib$(m).a)
# src/net uses cluster_split_addr from src/node, which links before it, so the
# module libraries are linked as one group (the linker rescans them).
LINKLIBS = -Wl,--start-group $(LIBS) -Wl,--end-group
SYSLIBS := $(if $(filter net node http store gateway,$(MODULES)),-luv -lsqlite3 -lsodium -lhttp_parser -lssl -lcrypto -lidn2 -lz -lpthread -lm,-lm)

obj = $(patsubst %.c,$(BUILD)/obj/%.o,$(1))
module_srcs = $(wildcard src/$(1)/*.c)

.PHONY: all test sim mutants check-purity deps clean bench run fuzz chaos
all: $(BUILD)/linkraft

# Installs missing Debian packages when root, else says what to install.
DEPS_STAMP := $(BUILD)/.deps-ok
$(DEPS_STAMP): scripts/deps.sh
	@sh scripts/deps.sh build
	@mkdir -p $(@D) && touch $@
deps: $(DEPS_STAMP)

$(BUILD)/obj/%.o: %.c $(DEPS_STAMP)
	@mkdir -p $(@D)
	$(CC) $(ALLCFLAGS) -c $< -o $@

define module_lib
$(BUILD)/lib$(1).a: $(call obj,$(call module_srcs,$(1)))
	@mkdir -p $$(@D)
	@rm -f $$@
	ar rcs $$@ $$^
endef
$(foreach m,$(filter-out cli,$(MODULES)),$(eval $(call module_lib,$(m))))

$(BUILD)/linkraft: $(call obj,$(call module_srcs,cli)) $(LIBS)
	$(CC) $(ALLLDFLAGS) -o $@ $(call obj,$(call module_srcs,cli)) $(LINKLIBS) $(SYSLIBS)

# Test support shared by unit tests and the simulator (linearizability checker).
TESTLIB := $(BUILD)/libtestsupport.a
$(TESTLIB): $(call obj,$(wildcard tests/lib/*.c))
	@mkdir -p $(@D)
	@rm -f $@
	ar rcs $@ $^

# Unit tests: tests/unit/test_X.c -> $(BUILD)/tests/test_X
UNIT_SRCS := $(wildcard tests/unit/test_*.c)
UNIT_BINS := $(patsubst tests/unit/%.c,$(BUILD)/tests/%,$(UNIT_SRCS))
$(BUILD)/tests/%: $(BUILD)/obj/tests/unit/%.o $(TESTLIB) $(LIBS)
	@mkdir -p $(@D)
	$(CC) $(ALLLDFLAGS) -o $@ $< $(TESTLIB) $(LINKLIBS) $(SYSLIBS)

# The deterministic simulator: every .c in tests/sim is one binary, linked
# with the replica driver and the pure core only (no libuv, no threads).
SIM_SRCS := $(wildcard tests/sim/*.c)
$(BUILD)/sim: $(call obj,$(SIM_SRCS)) $(TESTLIB) $(BUILD)/libreplica.a $(BUILD)/libraft.a $(BUILD)/libcommon.a
	$(CC) $(ALLLDFLAGS) -o $@ $(call obj,$(SIM_SRCS)) $(TESTLIB) $(BUILD)/libreplica.a $(BUILD)/libraft.a \
	  $(BUILD)/libcommon.a -lm

unit-bins: $(UNIT_BINS) $(if $(SIM_SRCS),$(BUILD)/sim) $(BUILD)/linkraft
.PHONY: unit-bins

# The core must not touch the world: no file, socket, clock, thread or
# process function may appear among its undefined symbols. Nor may the
# replica driver (src/replica): its host gives it all of those.
check-purity: $(BUILD)/libraft.a $(BUILD)/libcommon.a $(BUILD)/libreplica.a
	@sh scripts/check-purity.sh $(BUILD)/libraft.a $(BUILD)/libcommon.a $(BUILD)/libreplica.a

test:
	@sh scripts/run-tests.sh

# `make run`: the README's first command — 3 nodes and a gateway on this
# machine, the site at http://127.0.0.1:8000, data kept in ./linkraft-data.
run: $(BUILD)/linkraft
	$(BUILD)/linkraft demo

SEEDS ?= 200000
sim: $(BUILD)/sim
	$(BUILD)/sim --seeds $(SEEDS) --jobs 2

mutants:
	@sh scripts/mutants.sh

# `make chaos [CHAOS_SEED=S] [CHAOS_SECONDS=600] [CHAOS_FAULTS=a,b,..]
# [CHAOS_MIN_FAULTS=200] [CHAOS_RECORD=FILE]`: the nemesis against real processes, each node in
# its own network namespace, with a history checker (docs/chaos.md). Root.
CHAOS_SECONDS ?= 600
CHAOS_MIN_FAULTS ?= 200
CHAOS_FAULTS ?= partition,oneway,bridge,flap,pause,kill,slowdisk,transfer,clock,member,diskfull
CHAOS_SEED ?=
$(BUILD)/chaos/slowfsync.so: tests/chaos/slowfsync.c
	@mkdir -p $(@D)
	$(CC) -std=c11 -O2 $(WARN) -D_GNU_SOURCE -shared -fPIC -o $@ $< -ldl
$(BUILD)/chaos/lincheck: tests/chaos/lincheck_main.c $(TESTLIB)
	@mkdir -p $(@D)
	$(CC) $(ALLCFLAGS) -Itests/lib -o $@ $< $(TESTLIB)
chaos: $(BUILD)/linkraft $(BUILD)/chaos/slowfsync.so $(BUILD)/chaos/lincheck
	@sh scripts/deps.sh chaos
	LINKRAFT_BIN=$(abspath $(BUILD)/linkraft) SLOWFSYNC_SO=$(abspath $(BUILD)/chaos/slowfsync.so) \
	  LINCHECK_BIN=$(abspath $(BUILD)/chaos/lincheck) \
	  /usr/bin/python3 tests/chaos/chaos.py --duration $(CHAOS_SECONDS) --min-faults $(CHAOS_MIN_FAULTS) \
	  --faults $(CHAOS_FAULTS) $(if $(CHAOS_SEED),--seed $(CHAOS_SEED)) $(if $(CHAOS_RECORD),--record $(CHAOS_RECORD))

# `make bench`: linkraft beside etcd and nginx on this machine (not part of
# `make test`; about 10 minutes): installs etcd-server, etcd-client, nginx
# and wrk when root, then writes bench/results.md (bench/run.py; BENCH_SCALE,
# BENCH_ROUNDS, BENCH_SECONDS: see there).
bench: $(BUILD)/linkraft
	@sh scripts/deps.sh bench
	/usr/bin/python3 bench/run.py

# ---- Fuzzing: `make fuzz [FUZZ_SECONDS=60]` ----------------------------------
# One libFuzzer driver per decoder of untrusted bytes (fuzz/fuzz_NAME.c), built
# with clang and ASan+UBSan, each run for FUZZ_SECONDS from its checked-in seed
# corpus fuzz/corpus/NAME (new inputs go to build/fuzz/corpus/NAME, crashes to
# build/fuzz/crash-NAME-*). `make fuzz-replay` builds gcc replayers
# (build/fuzz/replay_NAME FILE|DIR...) that need no libFuzzer; `make
# fuzz-corpus` regenerates the binary seeds with fuzz/gen_corpus.c.
FUZZ_SECONDS ?= 60
FUZZ_CC      ?= clang
FUZZ_NAMES   := codec json cluster command config admin_auth text handshake
FUZZ_DIR     := $(BUILD)/fuzz
FUZZ_CFLAGS  := -std=c11 -g -O1 $(filter-out -Werror,$(WARN)) -D_GNU_SOURCE -Iinclude -Isrc \
                -fsanitize=address,undefined -fno-sanitize-recover=all -fno-omit-frame-pointer
# The modules that hold the decoders, instrumented for coverage, and the
# simulated disk the segment-scan driver opens its input on.
FUZZ_MODULES := $(filter raft common node store net http storage site,$(MODULES))
FUZZ_LIB_SRCS := $(foreach m,$(FUZZ_MODULES),$(call module_srcs,$(m))) tests/lib/memfs.c
FUZZ_LIB     := $(FUZZ_DIR)/libdecoders.a
FUZZ_DEPS_STAMP := $(FUZZ_DIR)/.deps-ok

$(FUZZ_DEPS_STAMP): scripts/deps.sh
	@sh scripts/deps.sh fuzz
	@mkdir -p $(@D) && touch $@

$(FUZZ_DIR)/obj/%.o: %.c $(FUZZ_DEPS_STAMP)
	@mkdir -p $(@D)
	$(FUZZ_CC) $(FUZZ_CFLAGS) -fsanitize=fuzzer-no-link -MMD -MP -c $< -o $@

$(FUZZ_LIB): $(patsubst %.c,$(FUZZ_DIR)/obj/%.o,$(FUZZ_LIB_SRCS))
	@rm -f $@
	ar rcs $@ $^

$(FUZZ_DIR)/fuzz_%: $(FUZZ_DIR)/obj/fuzz/fuzz_%.o $(FUZZ_LIB)
	$(FUZZ_CC) $(FUZZ_CFLAGS) -fsanitize=fuzzer -o $@ $< $(FUZZ_LIB) $(SYSLIBS)

# Replayers: the same driver, compiled with gcc into fuzz/replay.c's main.
$(FUZZ_DIR)/replay_%: fuzz/replay.c fuzz/fuzz_%.c fuzz/fuzz.h $(TESTLIB) $(LIBS)
	@mkdir -p $(@D)
	$(CC) $(ALLCFLAGS) -DFUZZ_DRIVER='"fuzz_$*.c"' -o $@ fuzz/replay.c $(TESTLIB) $(LINKLIBS) $(SYSLIBS)

$(FUZZ_DIR)/gen_corpus: fuzz/gen_corpus.c $(LIBS)
	@mkdir -p $(@D)
	$(CC) $(ALLCFLAGS) -o $@ $< $(LIBS) $(SYSLIBS)

# Kept, not deleted as intermediates, so a second `make fuzz` relinks nothing.
.SECONDARY: $(patsubst %,$(FUZZ_DIR)/obj/fuzz/fuzz_%.o,$(FUZZ_NAMES))
fuzz-build: $(addprefix $(FUZZ_DIR)/fuzz_,$(FUZZ_NAMES))
fuzz: fuzz-build
	@sh scripts/fuzz.sh $(FUZZ_DIR) $(FUZZ_SECONDS) $(FUZZ_NAMES)
fuzz-replay: $(addprefix $(FUZZ_DIR)/replay_,$(FUZZ_NAMES))
	@for n in $(FUZZ_NAMES); do $(FUZZ_DIR)/replay_$$n fuzz/corpus/$$n || exit 1; done
fuzz-corpus: $(FUZZ_DIR)/gen_corpus
	$(FUZZ_DIR)/gen_corpus fuzz/corpus
.PHONY: fuzz-build fuzz-replay fuzz-corpus
-include $(shell find $(FUZZ_DIR)/obj -name '*.d' 2>/dev/null)

clean:
	rm -rf build

-include $(shell find $(BUILD)/obj -name '*.d' 2>/dev/null)
