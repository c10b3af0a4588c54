# nicpool: the two commands a newcomer needs are `make demo` and `make test`.
SHELL := /bin/bash
PY ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed
ASSETS = $$(bash ops/tools/build-test-binaries.sh)
PYTEST_ARGS ?=

.PHONY: all deps venv test test-unit test-store test-controller test-cni test-e2e test-faults chaos chaos-regressions lint \
        bench bench-store bench-e2e bench-cni bench-peers demo test-binaries clean \
        node-deps cluster cluster-down demo-node test-node

all: test

$(STAMP): pyproject.toml
	$(PY) -m venv $(VENV)
	$(BIN)/pip install -q --upgrade pip
	$(BIN)/pip install -q -e '.[test,lint]'
	touch $(STAMP)

venv: $(STAMP)

deps: venv
	bash ops/tools/install-deps.sh

test-binaries: deps
	bash ops/tools/build-test-binaries.sh

# Everything: pure core, real etcd, real kube-apiserver, real CNI plugins, e2e,
# and the real node.
test: deps test-binaries node-deps
	KUBEBUILDER_ASSETS=$(ASSETS) $(BIN)/pytest $(PYTEST_ARGS)

test-unit: venv
	$(BIN)/pytest -m unit $(PYTEST_ARGS)

test-store: deps
	KUBEBUILDER_ASSETS=$(ASSETS) $(BIN)/pytest tests/store $(PYTEST_ARGS)

test-controller: deps test-binaries
	KUBEBUILDER_ASSETS=$(ASSETS) $(BIN)/pytest tests/controller $(PYTEST_ARGS)

test-cni: deps
	KUBEBUILDER_ASSETS=$(ASSETS) $(BIN)/pytest tests/cni $(PYTEST_ARGS)

test-e2e: deps test-binaries
	KUBEBUILDER_ASSETS=$(ASSETS) $(BIN)/pytest tests/e2e $(PYTEST_ARGS)

# Faults under a workload, a history checked (a few minutes; part of make test).
test-faults: deps test-binaries
	KUBEBUILDER_ASSETS=$(ASSETS) $(BIN)/pytest tests/faults $(PYTEST_ARGS)

# A long fault run: make chaos DURATION=1800 [SEED=n] [MODE=mixed|alone] [FAULTS=a,b] [ARTIFACTS=dir]
DURATION ?= 600
chaos: deps test-binaries
	KUBEBUILDER_ASSETS=$(ASSETS) DURATION=$(DURATION) $(BIN)/python -m tests.faults.chaos

# Replay every seed that once exposed a defect (tests/faults/regressions.py), ~10 minutes.
chaos-regressions: deps test-binaries
	KUBEBUILDER_ASSETS=$(ASSETS) $(BIN)/python -m tests.faults.chaos --regressions

lint: venv
	$(BIN)/ruff check store reconciler cnibin ops tests
	$(BIN)/ruff format --check store reconciler cnibin ops tests
	$(BIN)/mypy
	$(BIN)/mypy --strict --explicit-package-bases ops/demo ops/lab ops/node tests/bench
	$(BIN)/lint-imports

bench: bench-store bench-cni bench-e2e
	$(BIN)/python -m tests.bench.table

bench-store: deps
	KUBEBUILDER_ASSETS=$(ASSETS) $(BIN)/python -m tests.bench.store

bench-cni: deps
	KUBEBUILDER_ASSETS=$(ASSETS) $(BIN)/python -m tests.bench.cni

bench-e2e: deps test-binaries
	KUBEBUILDER_ASSETS=$(ASSETS) $(BIN)/python -m tests.bench.e2e

BENCH_STAMP := $(VENV)/.bench-installed
$(BENCH_STAMP): pyproject.toml $(STAMP)
	$(BIN)/pip install -q -e '.[test,lint,bench]'
	touch $(BENCH_STAMP)

# nicpool beside Whereabouts (built once from the Go module proxy), host-local and the
# apiserver floor, then nicpool at 10k/100k leases: results/peers.json + results/peers/*.png.
# PEERS_ARGS='--pods 100 --scale 10000' for a shorter run; see python -m tests.bench.peers -h.
PEERS_ARGS ?= --profile
bench-peers: deps test-binaries $(BENCH_STAMP)
	bash ops/tools/build-whereabouts.sh >/dev/null
	KUBEBUILDER_ASSETS=$(ASSETS) $(BIN)/python -m tests.bench.peers $(PEERS_ARGS)

demo: deps test-binaries
	KUBEBUILDER_ASSETS=$(ASSETS) $(BIN)/python -m ops.demo

# --- the real node (ops/node): kubelet + containerd + runc on this machine ----
# containerd, runc, busybox-static, debootstrap (Debian); Multus; the pause,
# busybox and nicpool images (ops/tools/build-images.sh, cached by content).
node-deps: deps test-binaries
	bash ops/tools/install-node-deps.sh
	bash ops/tools/build-multus.sh >/dev/null
	PYTHON=$(BIN)/python bash ops/tools/build-images.sh >/dev/null

# A node that stays up (KUBECONFIG=/var/lib/nicpool-node/admin.kubeconfig)
# with nicpool deployed from ops/deploy; the node tests and demo-node use it.
cluster: node-deps
	$(BIN)/python -m ops.node up
	$(BIN)/python -m ops.node deploy

cluster-down: venv
	$(BIN)/python -m ops.node down

demo-node: node-deps
	$(BIN)/python -m ops.node.demo

test-node: node-deps
	$(BIN)/pytest tests/node $(PYTEST_ARGS)

clean:
	rm -rf $(VENV) .mypy_cache .ruff_cache .pytest_cache .hypothesis
