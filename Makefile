# Fuglu-compatible mail filter engine: C core + embedded LuaJIT.
# `make` builds into build/; `make run` starts a development setup; `make test` installs what is
# missing, builds (normal and ASan/UBSan) and runs every test.

PREFIX   ?= /usr/local
DESTDIR  ?=
SYSCONFDIR ?= /etc/fuglu
DATADIR  ?= $(PREFIX)/share/fuglu

PKGS     := luajit gmime-3.0 libevent libevent_pthreads libpcre2-8 libcrypto
PKG_CFLAGS := $(shell pkg-config --cflags $(PKGS) 2>/dev/null)
PKG_LIBS   := $(shell pkg-config --libs $(PKGS) 2>/dev/null)

BUILD    ?= build
CC       ?= cc
OPT      ?= -O2
SANITIZE ?=
CFLAGS_BASE := -std=c11 -D_GNU_SOURCE -g $(OPT) -fPIC -Wall -Wextra -Werror -Isrc \
               -DFUGLU_DATADIR='"$(DATADIR)"' -DFUGLU_SYSCONFDIR='"$(SYSCONFDIR)"' $(SANITIZE)
CFLAGS   += $(CFLAGS_BASE) $(PKG_CFLAGS)
LDFLAGS  += $(SANITIZE) -pthread -Wl,-E
LIBS     := $(PKG_LIBS) -lm -ldl

# Every C file of src/*/ except the programs' mains goes into the core objects.
CORE_SRC := $(filter-out src/daemon/main.c src/tools/%,$(wildcard src/*/*.c))
CORE_OBJ := $(patsubst src/%.c,$(BUILD)/obj/%.o,$(CORE_SRC))
TOOL_SRC := $(wildcard src/tools/*.c)
TOOLS    := $(patsubst src/tools/%.c,$(BUILD)/%,$(TOOL_SRC))
TEST_SRC := $(wildcard test/c/test_*.c)
TESTS    := $(patsubst test/c/%.c,$(BUILD)/test/%,$(TEST_SRC))
DEPS     := $(CORE_OBJ:.o=.d) $(BUILD)/obj/daemon/main.d $(TOOLS:=.d) $(TESTS:=.d)

.PHONY: all run test deps units specs integration asan tsan bench bench-smoke install clean

all: $(BUILD)/fuglu $(BUILD)/fuglu_core.so $(TOOLS)

$(BUILD)/obj/%.o: src/%.c
	@mkdir -p $(dir $@)
	$(CC) $(CFLAGS) -MMD -MP -c -o $@ $<

$(BUILD)/fuglu: $(BUILD)/obj/daemon/main.o $(CORE_OBJ)
	$(CC) $(LDFLAGS) -o $@ $^ $(LIBS)

# The Lua-visible C modules as a loadable module, for busted specs run by the stock luajit.
$(BUILD)/fuglu_core.so: $(CORE_OBJ)
	$(CC) $(SANITIZE) -shared -o $@ $^ $(filter-out -lluajit-5.1,$(LIBS)) -pthread

$(BUILD)/%: src/tools/%.c $(CORE_OBJ)
	@mkdir -p $(dir $@)
	$(CC) $(CFLAGS) $(LDFLAGS) -MMD -MP -MF $@.d -o $@ $< $(CORE_OBJ) $(LIBS)

$(BUILD)/test/%: test/c/%.c $(CORE_OBJ)
	@mkdir -p $(dir $@)
	$(CC) $(CFLAGS) $(LDFLAGS) -MMD -MP -MF $@.d -o $@ $< $(CORE_OBJ) $(LIBS) -lcmocka

-include $(DEPS)

deps:
	@tools/install-deps

run: deps all
	tools/dev-run

# Everything: units + specs + integration, normal build and ASan/UBSan build; one summary line.
test: deps
	tools/run-tests

# One part of `make test` each, run as tools/run-tests runs it (no summary, no sanitizer builds).
# units: every C unit binary, all of them even when one fails. integration: IT_ONLY= picks modules,
# e.g. make integration IT_ONLY="test_verdicts test_reload".
units: all $(TESTS)
	@failed=0; for t in $(TESTS); do echo "== $$t"; $$t || failed=$$((failed + 1)); done; \
	if [ $$failed -ne 0 ]; then echo "$$failed C unit binaries failed"; exit 1; fi

specs: all
	busted --lua=luajit -o TAP

integration: all
	/usr/bin/python3 spec/integration/run.py $(IT_ONLY)

asan:
	$(MAKE) BUILD=build-asan OPT=-O1 SANITIZE="-fsanitize=address,undefined -fno-omit-frame-pointer" all $(patsubst $(BUILD)/%,build-asan/%,$(TESTS))

tests-bin: all $(TESTS)

# Benchmarks (tools/bench/, doc/performance.md): BENCH= full (default), quick (~30 s) or smoke
# (a few seconds, for CI: fails only if the suite itself is broken). bench-compare prints two
# results side by side: make bench-compare OLD=build/bench/a.json NEW=build/bench/b.json (without
# OLD/NEW: the two newest results).
tsan:
	$(MAKE) BUILD=build-tsan OPT=-O1 SANITIZE="-fsanitize=thread" all

bench: all
	tools/bench/run $(BENCH)

bench-smoke: all
	tools/bench/run smoke

.PHONY: bench-compare
bench-compare:
	tools/bench/compare $(OLD) $(NEW)

install: all
	install -d $(DESTDIR)$(PREFIX)/bin $(DESTDIR)$(SYSCONFDIR) $(DESTDIR)$(SYSCONFDIR)/conf.d \
	           $(DESTDIR)$(DATADIR)/lua $(DESTDIR)$(DATADIR)/rules $(DESTDIR)$(PREFIX)/lib/fuglu
	install -m 755 $(BUILD)/fuglu $(TOOLS) $(DESTDIR)$(PREFIX)/bin/
	install -m 644 $(BUILD)/fuglu_core.so $(DESTDIR)$(PREFIX)/lib/fuglu/
	cp -R lua/fuglu lua/plugins $(DESTDIR)$(DATADIR)/lua/
	cp -R rules/. $(DESTDIR)$(DATADIR)/rules/
	for f in conf/*.dist; do install -m 644 $$f $(DESTDIR)$(SYSCONFDIR)/; done
	@if [ -d conf/templates ]; then cp -R conf/templates $(DESTDIR)$(SYSCONFDIR)/; fi

clean:
	rm -rf build build-asan build-tsan
