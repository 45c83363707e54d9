# dtask — one-command install, test and run.
SHELL := /bin/bash
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed
export DTASK_HOME ?= $(CURDIR)/.dtask
CONTROLLER ?= localhost:50051
PACKAGES := libs/dtask_common libs/dtask_client services/controller services/runner clients/cli clients/tui
PYPROJECTS := $(addsuffix /pyproject.toml,$(PACKAGES))
PROTOS := $(wildcard protos/dtask/v1/*.proto)
GEN := libs/dtask_common/src

.PHONY: install test proto lint lock run-controller run-runner tui demo bench certs clean

install: $(STAMP)

$(STAMP): requirements.lock $(PYPROJECTS)
	@test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install -q --disable-pip-version-check -r requirements.lock
	$(BIN)/python -m pip install -q --disable-pip-version-check --no-deps --no-build-isolation $(addprefix -e ,$(PACKAGES))
	@touch $(STAMP)

test: install
	$(BIN)/python -m pytest -q tests

proto: install
	$(BIN)/python -m grpc_tools.protoc -Iprotos --python_out=$(GEN) --pyi_out=$(GEN) --grpc_python_out=$(GEN) $(PROTOS)
	$(BIN)/python -m grpc_tools.protoc -Iprotos --include_source_info --descriptor_set_out=$(GEN)/dtask/v1/descriptors.binpb $(PROTOS)

lint: install
	$(BIN)/ruff check libs services clients tests bench
	$(BIN)/mypy

lock: install
	{ echo "# Every package dtask installs, pinned (runtime and development). Regenerate with: make lock"; \
	  $(BIN)/python -m pip freeze --all --exclude-editable | grep -v "^pip=="; } > requirements.lock

certs: install
	@$(BIN)/dtask certs ensure

run-controller: certs
	$(BIN)/dtask controller $(ARGS)

run-runner: certs
	$(BIN)/dtask runner --controller $(CONTROLLER) $(if $(NAME),--name $(NAME)) $(if $(SLOTS),--slots $(SLOTS)) $(if $(GPUS),--gpus $(GPUS)) $(foreach l,$(LABELS),--label $(l)) $(ARGS)

tui: certs
	$(BIN)/dtask-tui --controller $(CONTROLLER) $(ARGS)

demo: certs
	$(BIN)/python examples/demo.py $(ARGS)

bench: install
	$(BIN)/python -m bench

clean:
	rm -rf $(VENV) .pytest_cache .mypy_cache .ruff_cache
