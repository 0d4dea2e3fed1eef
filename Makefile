# rosetta developer entry points. `make` == `make test`.
#
#   make test          deps + Release build in build/ + all ctest tests
#   make sanitize      deps + ASan/UBSan build (-O1 -g1) in build-asan/ + unit tests
#                      (examples, and so the fixture/convergence runs, only in make test)
#   make bench         deps + Release build + rosetta-bench (all scenarios, < 10 min; and
#                      rosetta-rss-probe, the one-policy minimal program, for its peak RSS)
#                      -> benchmarks/cpp.json + docs/bench-results.md (report and plots);
#                      then the kernel atlas as in bench-kernels (BENCH_ATLAS=0 skips it)
#   make bench-kernels deps + Release build + rosetta-atlas: every kernel x backend x size of
#                      the kernel atlas (include/rosetta/atlas/, ~1.5 min) -> benchmarks/atlas.json
#                      + docs/kernel-atlas.md (benchmark/atlas_report.py; plots in docs/atlas-img/)
#   make bench-peers   PyTorch baseline (python3-torch, installed if missing) over the same
#                      scenario ids -> benchmarks/pytorch.json (shown in the report)
#   make format        clang-format -i over include/ test/ examples/ benchmark/
#   make format-check  fail if any file is not clang-formatted
#   make deps          install missing Debian packages (scripts/install-deps.sh)
#   make clean         remove build/ and build-asan/
#
# Variables: CMAKE_FLAGS="-DROSETTA_NATIVE=OFF ..." adds configure flags; JOBS=N overrides
# the parallelism (default: nproc); CI=true adds -DROSETTA_WERROR=ON.

SHELL := /bin/bash
.SHELLFLAGS := -eu -o pipefail -c
.DEFAULT_GOAL := test
.PHONY: deps test sanitize bench bench-kernels bench-peers calibrate clean format format-check configure \
        build configure-asan build-asan

BUILD_DIR    ?= build
ASAN_DIR     ?= build-asan
CMAKE        ?= cmake
CTEST        ?= ctest
CLANG_FORMAT ?= clang-format
JOBS         ?= $(shell nproc 2>/dev/null || echo 2)
CMAKE_FLAGS  ?=

ifeq ($(CI),true)
  CI_FLAGS := -DROSETTA_WERROR=ON
endif

COMMON_FLAGS := -DROSETTA_REQUIRE_ALL_BACKENDS=ON $(CI_FLAGS)
CTEST_FLAGS  := --output-on-failure --no-tests=error -j$(JOBS)
# Sanitizer runs skip the slow packaging tests; their code paths are not sanitized anyway.
ASAN_CTEST_FLAGS := $(CTEST_FLAGS) -LE "consumer|compile_fail"
ASAN_ENV := ASAN_OPTIONS=detect_leaks=1:strict_string_checks=1:check_initialization_order=1 \
            UBSAN_OPTIONS=print_stacktrace=1:halt_on_error=1

FORMAT_DIRS := include test examples benchmark
# Files to format, NUL-separated (no file names on the command line if there are none).
FORMAT_FILES = find $(wildcard $(FORMAT_DIRS)) -type f \( -name '*.hpp' -o -name '*.cpp' \) -print0 2>/dev/null

deps:
	@bash scripts/install-deps.sh

# --- Release build + all tests ------------------------------------------------------------
configure: deps
	$(CMAKE) -S . -B $(BUILD_DIR) -DCMAKE_BUILD_TYPE=Release $(COMMON_FLAGS) $(CMAKE_FLAGS)

build: configure
	@start=$$(date +%s); \
	$(CMAKE) --build $(BUILD_DIR) -j$(JOBS); \
	echo "build time: $$(( $$(date +%s) - start )) s"

test: build
	$(CTEST) --test-dir $(BUILD_DIR) $(CTEST_FLAGS)

# --- Sanitizer build + unit tests ---------------------------------------------------------
configure-asan: deps
	$(CMAKE) -S . -B $(ASAN_DIR) -DCMAKE_BUILD_TYPE=RelWithDebInfo -DROSETTA_SANITIZE=ON \
	  "-DCMAKE_CXX_FLAGS_RELWITHDEBINFO=-O1 -g1 -DNDEBUG" \
	  -DROSETTA_BUILD_BENCHMARKS=OFF -DROSETTA_BUILD_EXAMPLES=OFF $(COMMON_FLAGS) $(CMAKE_FLAGS)

build-asan: configure-asan
	@start=$$(date +%s); \
	$(CMAKE) --build $(ASAN_DIR) -j$(JOBS); \
	echo "build time (sanitize): $$(( $$(date +%s) - start )) s"

sanitize: build-asan
	$(ASAN_ENV) $(CTEST) --test-dir $(ASAN_DIR) $(ASAN_CTEST_FLAGS)

# --- Benchmarks -----------------------------------------------------------------------------
# rosetta-bench runs every scenario (progress line each) and writes $(BENCH_JSON); the
# report script turns it (and benchmarks/pytorch.json, when present) into
# docs/bench-results.md with plots. BENCH_FLAGS="--quick" or "--filter REGEX" pass through.
BENCH_JSON  ?= benchmarks/cpp.json
BENCH_FLAGS ?=
# The PyTorch baseline joins the run when python3-torch is already installed (make
# bench-peers installs it); the report compares only against a baseline from this run.
PEERS_JSON ?= benchmarks/pytorch.json
# After the model benchmark, make bench runs the kernel atlas and its report too (recipe
# below; rosetta-atlas is built together with rosetta-bench). It adds about 2 minutes to a
# fresh `make bench` (~1 min to build rosetta-atlas, ~1 min to run it); BENCH_ATLAS=0 skips it.
BENCH_ATLAS ?= 1
ifeq ($(BENCH_ATLAS),0)
  BENCH_TARGETS := rosetta-bench rosetta-rss-probe
else
  BENCH_TARGETS := rosetta-bench rosetta-rss-probe rosetta-atlas
endif
bench: configure
	$(CMAKE) --build $(BUILD_DIR) -j$(JOBS) --target $(BENCH_TARGETS)
	$(BUILD_DIR)/benchmark/rosetta-bench --json $(BENCH_JSON) $(BENCH_FLAGS)
	@peer=(); \
	if python3 -c 'import torch' >/dev/null 2>&1 || /usr/bin/python3 -c 'import torch' >/dev/null 2>&1; then \
	  if bash scripts/bench-peers.sh --json $(PEERS_JSON) $(BENCH_FLAGS); then peer=(--pytorch $(PEERS_JSON)); \
	  else echo "bench: the PyTorch baseline failed; report without it"; fi; \
	else echo "bench: python3-torch not installed, no PyTorch comparison (make bench-peers installs it)"; fi; \
	python3 benchmark/report.py --cpp $(BENCH_JSON) "$${peer[@]}" \
	  --out docs/bench-results.md --img-dir docs/bench-img --src-root .
ifneq ($(BENCH_ATLAS),0)
	$(atlas_run)
endif

bench-peers:
	bash scripts/bench-peers.sh $(BENCH_FLAGS)

# --- Kernel atlas ---------------------------------------------------------------------------
# rosetta-atlas measures every kernel x backend x size (1K 64K 1M 16M; progress line per
# kernel) plus STREAM bandwidth and the FMA peak, and writes $(ATLAS_JSON); the report script
# turns it into docs/kernel-atlas.md with plots in docs/atlas-img/ (matplotlib; like
# report.py it retries with /usr/bin/python3 if `python3` has no matplotlib).
# ATLAS_FLAGS="--quick" (no 16M), "--filter REGEX", "--backends REGEX" pass through.
ATLAS_JSON  ?= benchmarks/atlas.json
ATLAS_FLAGS ?=
ATLAS_MD    ?= docs/kernel-atlas.md
ATLAS_IMG   ?= docs/atlas-img
define atlas_run
	$(BUILD_DIR)/benchmark/rosetta-atlas --json $(ATLAS_JSON) $(ATLAS_FLAGS)
	python3 benchmark/atlas_report.py --json $(ATLAS_JSON) --out $(ATLAS_MD) --img-dir $(ATLAS_IMG)
endef
bench-kernels: configure
	$(CMAKE) --build $(BUILD_DIR) -j$(JOBS) --target rosetta-atlas
	$(atlas_run)

# --- Routing table of backend::Auto ------------------------------------------------------------
# rosetta-calibrate times every gemm shape the model issues and every atlas kernel per backend
# on this machine and writes the routing table; run a program with
# ROSETTA_AUTO_TABLE=benchmarks/auto-table.txt to make backend::Auto use it (else the shipped
# default, include/rosetta/backend/auto_default_table.hpp). --quick takes about 40 s here;
# CALIBRATE_FLAGS="" runs the full calibration, "--verify" also times the routed model.
CALIBRATE_FLAGS ?= --quick
CALIBRATE_OUT   ?= benchmarks/auto-table.txt
calibrate: configure
	$(CMAKE) --build $(BUILD_DIR) -j$(JOBS) --target rosetta-calibrate
	$(BUILD_DIR)/benchmark/rosetta-calibrate --out $(CALIBRATE_OUT) $(CALIBRATE_FLAGS)

# --- Formatting -----------------------------------------------------------------------------
format:
	@$(FORMAT_FILES) | xargs -0 -r $(CLANG_FORMAT) -i

format-check:
	@$(FORMAT_FILES) | xargs -0 -r $(CLANG_FORMAT) --dry-run --Werror
	@echo "format-check: ok"

clean:
	rm -rf $(BUILD_DIR) $(ASAN_DIR)
