# dtask — one-command install, test and run.
SHELL := /bin/bash
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed
export DTASK_HOME ?= $(CURDIR)/.dtask
CONTROLLER ?=
PACKAGES := libs/dtask_common libs/dtask_client services/controller services/runner clients/cli clients/tui
PYPROJECTS := $(addsuffix /pyproject.toml,$(PACKAGES))
PROTOS := $(wildcard protos/dtask/v1/*.proto)
GEN := libs/dtask_common/src
SOURCES := libs services clients tests bench tools
# Test processes (pytest-xdist), one per core by default. --dist loadfile: each module runs whole on one worker,
# so a module's shared fixtures (a cluster) start once and its tests never run at the same time (loadgroup
# would group finer, but pytest-xdist 3.8 ignores xdist_group marks under pytest 9.2: pytest-xdist#1386).
# --no-loadscope-reorder keeps collection order: the long end-to-end and fault modules start first.
TEST_WORKERS ?= auto
LINTS := lint-ruff lint-format lint-types lint-imports

.PHONY: install test proto lint lint-ruff lint-format lint-types lint-imports format lock run-controller run-runner tui \
	demo bench bench-peers certs clean dist dist-own

install: $(STAMP)

$(STAMP): requirements.lock $(PYPROJECTS)
	@test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install -q --disable-pip-version-check -r requirements.lock
	$(BIN)/python -m pip install -q --disable-pip-version-check --no-deps --no-build-isolation $(addprefix -e ,$(PACKAGES))
	@touch $(STAMP)

test: install
	$(BIN)/python -m pytest -q -n $(TEST_WORKERS) --dist loadfile --no-loadscope-reorder --durations=15 tests

proto: install
	$(BIN)/python -m grpc_tools.protoc -Iprotos --python_out=$(GEN) --pyi_out=$(GEN) --grpc_python_out=$(GEN) $(PROTOS)
	$(BIN)/python -m grpc_tools.protoc -Iprotos --include_source_info --descriptor_set_out=$(GEN)/dtask/v1/descriptors.binpb $(PROTOS)

# Every check runs (so one run shows every problem); lint fails when any of them does.
lint: install
	@failed=; for t in $(LINTS); do $(MAKE) --no-print-directory $$t || failed="$$failed $$t"; done; \
	  if [ -n "$$failed" ]; then echo "make lint: failed:$$failed"; exit 1; fi

lint-ruff: install
	$(BIN)/ruff check $(SOURCES)

lint-format: install
	$(BIN)/ruff format --check --output-format concise $(SOURCES)

lint-types: install
	$(BIN)/mypy

# The layering contract in pyproject.toml [tool.importlinter] (tests/unit/test_layering.py checks it too).
lint-imports: install
	$(BIN)/lint-imports --no-cache --no-logo

format: install
	$(BIN)/ruff format $(SOURCES)

lock: install
	{ echo "# Every package dtask installs, pinned (runtime and development). Regenerate with: make lock"; \
	  $(BIN)/python -m pip freeze --all --exclude-editable | grep -v "^pip=="; } > requirements.lock

certs: install
	@$(BIN)/dtask certs ensure

run-controller: certs
	$(BIN)/dtask controller $(ARGS)

run-runner: certs
	$(BIN)/dtask runner $(if $(CONTROLLER),--controller $(CONTROLLER)) $(if $(NAME),--name $(NAME)) $(if $(SLOTS),--slots $(SLOTS)) $(if $(GPUS),--gpus $(GPUS)) $(foreach l,$(LABELS),--label $(l)) $(ARGS)

tui: certs
	$(BIN)/dtask-tui $(if $(CONTROLLER),--controller $(CONTROLLER)) $(ARGS)

demo: certs
	$(BIN)/python examples/demo.py $(ARGS)

bench: install
	$(BIN)/python -m bench

# dtask beside Ray and task-spooler (not part of make test): the peers go into $(BENCH_VENV), never the lock.
BENCH_VENV := .bench-venv
bench-peers: install
	@tsp=$$(bench/install_peers.sh $(BENCH_VENV) $(PYTHON) | tail -1); \
	  $(BIN)/python -m bench.peers_bench --ray $(BENCH_VENV)/bin/python --tsp "$$tsp" $(ARGS)

# Wheels and sdists of every distribution, and the wheels of their pinned runtime dependencies (downloaded
# from PyPI), all in dist/: `pip install --no-index --find-links dist/ dtask-runner` installs offline.
DIST ?= dist
dist: dist-own
	$(BIN)/python -m tools.dist wheelhouse $(DIST)

# dtask's own wheels and sdists only (no network).
dist-own: install
	rm -f $(DIST)/dtask_*
	$(BIN)/python -m tools.dist build $(DIST)

clean:
	rm -rf $(VENV) .pytest_cache .mypy_cache .ruff_cache
