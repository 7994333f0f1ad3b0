# Fuglu-compatible mail filter engine: C core + embedded LuaJIT.
# `make` builds into build/; `make run` starts a development setup; `make test` installs what is
# missing, builds (normal and ASan/UBSan) and runs every test.

PREFIX   ?= /usr/local
DESTDIR  ?=
SYSCONFDIR ?= /etc/fuglu
DATADIR  ?= $(PREFIX)/share/fuglu

PKGS     := luajit gmime-3.0 libevent libevent_pthreads libpcre2-8 libssl libcrypto libcares hiredis libcurl libmagic libarchive
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
DEPS     := $(CORE_OBJ:.o=.d) $(BUILD)/obj/daemon/main.d $(patsubst $(BUILD)/%,$(BUILD)/obj/bin/%.d,$(TOOLS) $(TESTS))

.PHONY: all run test deps units specs integration asan tsan fuzz fuzz-bin bench bench-smoke install clean

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
	@mkdir -p $(dir $(BUILD)/obj/bin/$*)
	$(CC) $(CFLAGS) $(LDFLAGS) -MMD -MP -MF $(BUILD)/obj/bin/$*.d -o $@ $< $(CORE_OBJ) $(LIBS)

$(BUILD)/test/%: test/c/%.c $(CORE_OBJ)
	@mkdir -p $(dir $@)
	@mkdir -p $(BUILD)/obj/bin/test
	$(CC) $(CFLAGS) $(LDFLAGS) -MMD -MP -MF $(BUILD)/obj/bin/test/$*.d -o $@ $< $(CORE_OBJ) $(LIBS) -lcmocka

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

# Fuzzers of the parsers that read the network (test/fuzz/fuzz_*.c, libFuzzer with ASan + UBSan):
# each runs FUZZ_SECONDS from its seed corpus (test/fuzz/corpus/NAME/, copied: new inputs stay in
# build-fuzz/). A crash leaves its input in build-fuzz/ and fails the target.
FUZZ_SECONDS ?= 20
FUZZ_SRC := $(wildcard test/fuzz/fuzz_*.c)
FUZZERS  := $(patsubst test/fuzz/%.c,build-fuzz/%,$(FUZZ_SRC))
FUZZ_CFLAGS := -std=c11 -D_GNU_SOURCE -g -O1 -Isrc -Wall -Wextra -Werror -fsanitize=fuzzer,address,undefined

build-fuzz/fuzz_dnsmsg: test/fuzz/fuzz_dnsmsg.c src/lib/dnsmsg.c src/lib/util.c src/lib/dnsmsg.h
	@mkdir -p build-fuzz
	clang $(FUZZ_CFLAGS) -o $@ $(filter %.c,$^)

build-fuzz/fuzz_smtp_proto: test/fuzz/fuzz_smtp_proto.c src/smtp/smtp_proto.c src/lib/util.c src/smtp/smtp_proto.h
	@mkdir -p build-fuzz
	clang $(FUZZ_CFLAGS) -o $@ $(filter %.c,$^)

fuzz-bin: $(FUZZERS)

fuzz: $(FUZZERS)
	@for f in $(FUZZERS); do \
	    name=$${f#build-fuzz/fuzz_}; rm -rf build-fuzz/corpus-$$name; mkdir -p build-fuzz/corpus-$$name; \
	    cp test/fuzz/corpus/$$name/* build-fuzz/corpus-$$name/ 2>/dev/null; \
	    echo "fuzz: $$f for $(FUZZ_SECONDS) s"; \
	    $$f -max_total_time=$(FUZZ_SECONDS) -timeout=5 -rss_limit_mb=1024 -artifact_prefix=build-fuzz/ \
	        -print_final_stats=1 build-fuzz/corpus-$$name >build-fuzz/$$name.log 2>&1 \
	        || { tail -40 build-fuzz/$$name.log; echo "fuzz: $$f FAILED"; exit 1; }; \
	    grep -E "stat::number_of_executed_units|Done" build-fuzz/$$name.log | head -2; \
	done

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
	# FiletypePlugin's rules and bounce template where its defaults look (rulesdir=SYSCONFDIR/rules,
	# template_blockedfile=SYSCONFDIR/templates/blockedfile.tmpl); an admin's own files are kept
	install -d $(DESTDIR)$(SYSCONFDIR)/rules $(DESTDIR)$(SYSCONFDIR)/templates
	for f in rules/default-*.conf; do t=$(DESTDIR)$(SYSCONFDIR)/rules/$${f#rules/}; \
	    [ -e $$t ] || install -m 644 $$f $$t; done
	for f in conf/templates/*.tmpl.dist; do b=$${f#conf/templates/}; t=$(DESTDIR)$(SYSCONFDIR)/templates/$${b%.dist}; \
	    [ -e $$t ] || install -m 644 $$f $$t; done

clean:
	rm -rf build build-asan build-tsan build-fuzz
