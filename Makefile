# What people type. The real build is CMake; this file only drives it.
#   make            build everything into build/
#   make run        build, then start the echo server on the default socket
#   make test       install missing Debian packages, build, run every test,
#                   then again under AddressSanitizer + UBSan, then the
#                   uds_loop_post test under ThreadSanitizer, then the unit
#                   tests under valgrind, then fuzz smoke
#   make install    install into PREFIX (default /usr/local)
#   make bench      short benchmark run (see bench/README.md for the full one)
#   make valgrind   the unit tests under valgrind (tests/stress/README.md)
#   make fuzz-long  10^6 executions of every fuzz target (tests/stress/README.md)
#   make test-repeat  make test N times in a row (N=20), stops at the first
#                   failure; HOG=1 runs a CPU hog beside it (scripts/test-repeat.sh)
#   make mutate     seeds each bug of tests/mutate/ into a scratch copy, one
#                   at a time, runs the tests that should notice, prints the
#                   score (tests/mutate/README.md; not in CI, not in make test)
PREFIX ?= /usr/local
BUILD ?= build
JOBS ?= $(shell nproc 2>/dev/null || echo 2)
CMAKE ?= cmake
CTEST_ARGS ?= --output-on-failure -j$(JOBS)
# Warnings are errors in every build this file makes (developer and CI;
# CMake's own default, for an outside build, is off). WERROR=OFF to relax.
WERROR ?= ON
UDS_FLAGS = -DUDS_WERROR=$(WERROR)

.PHONY: all build run test test-repeat test-plain test-asan test-tsan test-fuzz test-valgrind deps install clean bench valgrind fuzz-long mutate

all: build

$(BUILD)/CMakeCache.txt:
	$(CMAKE) -S . -B $(BUILD) -DCMAKE_BUILD_TYPE=RelWithDebInfo -DCMAKE_INSTALL_PREFIX=$(PREFIX) $(UDS_FLAGS)

# (a build directory configured before UDS_WERROR existed, or with another
# WERROR, is configured again with this one)
build: $(BUILD)/CMakeCache.txt
	@grep -q '^UDS_WERROR:BOOL=$(WERROR)$$' $(BUILD)/CMakeCache.txt || $(CMAKE) -S . -B $(BUILD) $(UDS_FLAGS)
	$(CMAKE) --build $(BUILD) -j$(JOBS)

run: build
	@sh scripts/run-server.sh $(BUILD)

deps:
	bash scripts/deps.sh

test: deps
	$(MAKE) test-plain
	$(MAKE) test-asan
	$(MAKE) test-tsan
	$(MAKE) test-valgrind
	$(MAKE) test-fuzz

test-plain: build
	cd $(BUILD) && ctest $(CTEST_ARGS)

test-asan:
	$(CMAKE) -S . -B build-asan -DCMAKE_BUILD_TYPE=Debug -DUDS_SANITIZE=ON $(UDS_FLAGS)
	$(CMAKE) --build build-asan -j$(JOBS)
	cd build-asan && ctest $(CTEST_ARGS)

# ThreadSanitizer on the library's one thread-safe call (uds_loop_post):
# builds only test_post + the library sources with clang; skipped with a
# message when clang is missing or TSan does not work here (a probe decides).
test-tsan:
	sh scripts/tsan.sh build-tsan

# libFuzzer smoke: each target runs for a short, bounded time (10 s; 5 targets; when clang exists).
test-fuzz:
	@if command -v clang >/dev/null 2>&1; then \
	  $(CMAKE) -S . -B build-fuzz -DCMAKE_C_COMPILER=clang -DCMAKE_BUILD_TYPE=Debug -DUDS_FUZZ=ON -DUDS_SANITIZE=ON $(UDS_FLAGS) && \
	  $(CMAKE) --build build-fuzz -j$(JOBS) && \
	  sh scripts/fuzz-smoke.sh build-fuzz $${FUZZ_SECONDS:-10}; \
	else echo "test-fuzz: clang not found, skipping libFuzzer smoke (corpus replay ran in test-plain)"; fi

# The library unit tests under valgrind (leaks, errors, fds left open):
# hardening battery row 7, about 1 minute here (tests/stress/README.md).
test-valgrind valgrind: build
	bash scripts/valgrind.sh $(BUILD)

# The long fuzz run (10^6 executions per target, low priority): row 1.
# Its own build at -O1 (2.5x the executions per second of the smoke's -O0).
fuzz-long:
	$(CMAKE) -S . -B build-fuzz-long -DCMAKE_C_COMPILER=clang -DCMAKE_BUILD_TYPE=Debug '-DCMAKE_C_FLAGS_DEBUG=-g -O1' -DUDS_FUZZ=ON -DUDS_SANITIZE=ON $(UDS_FLAGS)
	$(CMAKE) --build build-fuzz-long -j$(JOBS)
	sh scripts/fuzz-long.sh build-fuzz-long

# The flake check (issue 14 item 9): N runs of make test in a row.
N ?= 20
test-repeat:
	bash scripts/test-repeat.sh -n $(N) $(if $(HOG),--hog)

# Mutation score: MUTANTS="27 loop-no-gen-check" picks some (default all).
mutate:
	bash scripts/mutate.sh $(MUTANTS)

install: build
	$(CMAKE) --install $(BUILD) --prefix $(PREFIX)

bench: build
	sh bench/smoke.sh $(BUILD)

clean:
	rm -rf $(BUILD) build-asan build-fuzz build-tsan
