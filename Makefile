# DVC Pulse: `make demo` runs the pipeline locally, `make test` runs every test.
# Everything installs itself on first use (deploy/local/install.sh).
SHELL := /bin/bash
CARGO ?= cargo
PYTHON ?= python3
export DVC_BIN_DIR ?= $(CURDIR)/target/release

.PHONY: help deps build up down clean status cluster-up cluster-down demo test test-unit test-e2e test-python test-stack lint fmt bench bench-cluster bench-modern bench-broker fuzz

help:
	@echo "make demo     start the local stack, backfill 3 days of simulated national traffic, stream live, show live rates (Ctrl-C stops)"
	@echo "make test     lint, unit, property and end-to-end tests (on a stack of their own, started empty)"
	@echo "make up/down  start/stop the local stack (data stays in .local/); make clean removes it"
	@echo "make cluster-up/cluster-down  start/stop a local ClickHouse cluster (ZooKeeper, 2 shards, 3 servers)"
	@echo "make bench    benchmarks, results in bench/results/ (SOAK=30 adds the 30-minute soak)"
	@echo "make bench-modern  the rates queries on ClickHouse 18.16 and current ClickHouse (chDB), same 10 M dossiers"
	@echo "make bench-broker  tansu's storage engines (SQLite, memory) over 5 M events"
	@echo "make bench-cluster  ingest, rollup and rates on the local cluster next to one server (ratios)"

deps:
	deploy/local/install.sh

build:
	$(CARGO) build --release --workspace --bins

up: deps build
	deploy/local/stack.sh up

down:
	deploy/local/stack.sh down

clean:
	deploy/local/stack.sh clean

status:
	deploy/local/stack.sh status

# The local ClickHouse cluster (README "Running on a cluster"); its ports
# are its own, so it runs beside the local stack.
cluster-up: deps build
	deploy/cluster/cluster.sh up

cluster-down:
	deploy/cluster/cluster.sh down

demo: up
	deploy/local/demo.sh

lint:
	$(CARGO) fmt --all --check
	$(CARGO) clippy --release --workspace --all-targets -- -D warnings

fmt:
	$(CARGO) fmt --all

test-unit:
	$(CARGO) test --release --workspace --lib --bins --test decoder_cases --test properties --test sql_enums

test-python: deps build
	$(PYTHON) -m pytest -q schemas/tests tests/python

# The tests run on a stack of their own (.local/test), started empty each
# time: what demos and benchmarks left in .local/ (a grown broker store, a
# large database) never slows or changes a test. It uses the local stack's
# ports, so the local stack is stopped first (`make up` brings it back), and
# the test stack is stopped when the tests end, pass or fail.
TEST_LOCAL := $(CURDIR)/.local/test
TEST_STACK := DVC_LOCAL_DIR=$(TEST_LOCAL) deploy/local/stack.sh
# The cluster tests' local ClickHouse cluster (tests/cluster.rs), also empty,
# in .local/test/cluster (cluster.sh follows DVC_LOCAL_DIR, as the tests do).
TEST_CLUSTER := DVC_LOCAL_DIR=$(TEST_LOCAL) deploy/cluster/cluster.sh
IN_TEST_STACK := trap '$(TEST_STACK) down; $(TEST_CLUSTER) down' EXIT; export DVC_LOCAL_DIR=$(TEST_LOCAL);

test-stack: deps build
	deploy/local/stack.sh down
	deploy/cluster/cluster.sh down
	$(TEST_CLUSTER) down
	$(TEST_STACK) clean
	$(TEST_STACK) up
	$(TEST_CLUSTER) up

# Each end-to-end test makes its own topics and database.
test-e2e: test-stack
	$(IN_TEST_STACK) $(CARGO) test --release --workspace --test '*'

test: lint test-stack
	$(IN_TEST_STACK) $(CARGO) test --release --workspace && $(PYTHON) -m pytest -q schemas/tests tests/python

bench: up
	bench/run.sh

# Not part of `make bench`: the local cluster next to the single server,
# same machine and traffic (ratios only; bench/results/cluster.json).
bench-cluster: up cluster-up
	$(DVC_BIN_DIR)/cluster-bench $(CLUSTER_ARGS)

# Not part of `make bench` (which must stay under 20 minutes): query-bench's
# database (loaded if missing), then the same SQL on both ClickHouse versions.
bench-modern: up
	$(DVC_BIN_DIR)/query-bench $(QUERY_ARGS)
	$(PYTHON) bench/query_modern.py

# Not part of `make bench`: about 10 minutes, brokers of its own.
bench-broker: deps build
	$(DVC_BIN_DIR)/broker-bench $(BROKER_ARGS)

# One million decoder inputs under libFuzzer. cargo fuzz needs nightly-only
# compiler flags; the machine has one stable toolchain, so RUSTC_BOOTSTRAP=1
# unlocks them for this build only.
fuzz:
	command -v cargo-fuzz >/dev/null || $(CARGO) install cargo-fuzz --locked
	mkdir -p services/events/fuzz/corpus/decode
	cd services/events && RUSTC_BOOTSTRAP=1 $(CARGO) fuzz run --fuzz-dir fuzz decode fuzz/corpus/decode fuzz/seeds -- -runs=1000000 -max_len=4096
