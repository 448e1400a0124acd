# linkraft — build. `make` builds build/linkraft; `make test` runs every suite
# (also under ASan+UBSan); `make sim SEEDS=N` runs the simulator long;
# `make mutants` checks the simulator catches every planted Raft bug.
#
# Each module under src/ is its own static library, and may use only the
# modules its USES_ line names (`make check-layers`). The Raft core
# (src/raft) may use only src/common, the replica driver (src/replica) only
# those two; `make check-purity` proves from their object files that they
# call no I/O, clock, socket or thread function.

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

# The layers: each module and the modules it may use (its own headers
# aside). `make check-layers` (part of `make test`) fails on an #include or
# an undefined symbol of a module's objects that reaches outside this list
# (scripts/check-layers.sh). src/common is pure (the core uses it); src/sys
# holds what every host-side layer may use but the core may not (the
# cluster file, the log: they read files and write stderr).
USES_common  :=
USES_raft    := common
USES_replica := raft common
USES_sys     := common
USES_storage := raft common
USES_store   := common
USES_net     := raft sys common
USES_http    := sys common
USES_site    := http store common
USES_node    := site replica http net storage store raft sys common
USES_gateway := http sys common
USES_cli     := node gateway net http store storage raft sys common
# System libraries each module needs; a binary links those of its modules.
SYS_common  :=
SYS_raft    :=
SYS_replica :=
SYS_sys     :=
SYS_storage :=
SYS_store   := -lsqlite3 -lsodium -lidn2 -lm
SYS_net     := -luv -lsodium
SYS_http    := -luv -lhttp_parser -lssl -lcrypto
SYS_site    := -luv -lsodium -lz -lm
SYS_node    := -luv -lpthread
SYS_gateway := -luv
SYS_cli     := -lsodium

# Modules in link order: every module before the ones it uses, so the
# linker needs no group (a use against the order fails to link).
MODULES := gateway node site replica http net store storage raft sys common
LIBS    := $(foreach m,$(MODULES),$(BUILD)/lib$(m).a)
LINKLIBS = $(LIBS)
syslibs  = $(sort $(foreach m,$(1),$(SYS_$(m))))
SYSLIBS := $(call syslibs,cli $(MODULES))

obj = $(patsubst %.c,$(BUILD)/obj/%.o,$(1))
module_srcs = $(wildcard src/$(1)/*.c)

.PHONY: all test sim mutants check-purity check-layers deps clean bench run fuzz chaos install uninstall
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
$(foreach m,$(MODULES),$(eval $(call module_lib,$(m))))

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

# Every module uses only what its USES_ line allows (see the top).
check-layers: $(LIBS) $(call obj,$(call module_srcs,cli))
	@sh scripts/check-layers.sh $(BUILD) $(foreach m,cli $(MODULES),"$(m):$(USES_$(m))")

test:
	@sh scripts/run-tests.sh

# `make install [PREFIX=/usr/local] [DESTDIR=]`: the binary in PREFIX/bin; the
# example configurations (systemd units, nginx cache, HAProxy) and the
# operator's documents in PREFIX/share/doc/linkraft. DESTDIR stages it all
# under another root (packaging). INSTALL_BIN: the binary to install (default
# the optimized build; tests install the one they test).
PREFIX ?= /usr/local
BINDIR ?= $(PREFIX)/bin
DOCDIR ?= $(PREFIX)/share/doc/linkraft
INSTALL_BIN ?= $(BUILD)/linkraft
INSTALL_DOCS := README.md docs/linkraft-node@.service docs/linkraft-gateway.service docs/nginx-cache.conf \
                docs/haproxy.cfg docs/metrics.md docs/scaling.md docs/security.md
install: $(INSTALL_BIN)
	install -d $(DESTDIR)$(BINDIR) $(DESTDIR)$(DOCDIR)
	install -m 0755 $(INSTALL_BIN) $(DESTDIR)$(BINDIR)/linkraft
	install -m 0644 $(wildcard $(INSTALL_DOCS)) $(DESTDIR)$(DOCDIR)/
	@# The units name the binary and the documents where this install put them.
	sed -i -e 's|/usr/local/bin/linkraft|$(BINDIR)/linkraft|' -e 's|/usr/local/share/doc/linkraft|$(DOCDIR)|' \
	  '$(DESTDIR)$(DOCDIR)/linkraft-node@.service' $(DESTDIR)$(DOCDIR)/linkraft-gateway.service
uninstall:
	rm -f $(DESTDIR)$(BINDIR)/linkraft
	rm -rf $(DESTDIR)$(DOCDIR)

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
# Rolling upgrade from the previous release (docs/operations.md "Upgrade"):
# builds UPGRADE_FROM from git once (a few minutes) and upgrades a cluster
# of it, one node at a time, to this build under writes. Not in `make test`.
# UPGRADE_FROM is the release this one upgrades from: move it at each release.
UPGRADE_FROM ?= 5e50e10
.PHONY: upgrade-test
upgrade-test: $(BUILD)/linkraft
	sh scripts/upgrade-test.sh $(UPGRADE_FROM) $(BUILD)/upgrade-from-$(UPGRADE_FROM) $(BUILD)/linkraft

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
FUZZ_NAMES   := codec json cluster command config admin_auth text handshake form backup segment http
FUZZ_DIR     := $(BUILD)/fuzz
FUZZ_CFLAGS  := -std=c11 -g -O1 $(filter-out -Werror,$(WARN)) -D_GNU_SOURCE -Iinclude -Isrc \
                -fsanitize=address,undefined -fno-sanitize-recover=all -fno-omit-frame-pointer
# The modules that hold the decoders, instrumented for coverage, and the
# simulated disk the segment-scan driver opens its input on.
FUZZ_MODULES := $(filter raft common sys node store net http storage site,$(MODULES))
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
