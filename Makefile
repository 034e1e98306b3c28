# Two commands: `make run` (set up, run the whole pipeline on the default world) and
# `make test` (set up, run every test). Set-up makes .venv from the pinned requirements.lock.
SHELL := /bin/bash
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed-$(shell cat requirements.lock pyproject.toml | sha1sum | cut -c1-12)
# The CPU build of torch lies on this disk; elsewhere uv finds the pinned build on its indexes.
FIND_LINKS := $(if $(wildcard /opt/wheels),--find-links /opt/wheels,)
export PREFECT_HOME := $(CURDIR)/.prefect
export PREFECT_SERVER_ANALYTICS_ENABLED := false
export PATH := $(CURDIR)/$(BIN):$(PATH)

.PHONY: setup browser sandbox run test lint lock bench clean

setup: $(STAMP)

$(STAMP): requirements.lock pyproject.toml
	@test -x $(BIN)/python || python3 -m venv $(VENV)
	@$(BIN)/python -m pip --version >/dev/null 2>&1 || $(BIN)/python -m ensurepip >/dev/null
	@$(BIN)/python -m pip install -q --disable-pip-version-check uv==0.13.9
	VIRTUAL_ENV=$(VENV) $(BIN)/uv pip install -q --compile-bytecode $(FIND_LINKS) -r requirements.lock
	VIRTUAL_ENV=$(VENV) $(BIN)/uv pip install -q --no-deps -e .
	@rm -f $(VENV)/.installed-* && touch $@

# The annotation app's browser tests drive Debian's headless Chromium (playwright's own download
# cannot run here); installed when missing and we may (root), else the tests say how.
browser:
	@command -v chromium >/dev/null || { [ "$$(id -u)" = 0 ] && { apt-get install -y -qq --no-install-recommends \
	  chromium >/dev/null || { apt-get update -qq && apt-get install -y -qq --no-install-recommends chromium; }; }; } \
	  || echo "warning: no chromium; the browser tests will fail: apt-get install chromium" >&2

# The code verifier confines each candidate with bubblewrap (kernel namespaces); installed when
# missing and we may (root), else the verifier falls back to its own layers and says so.
sandbox:
	@command -v bwrap >/dev/null || { [ "$$(id -u)" = 0 ] && { apt-get install -y -qq --no-install-recommends \
	  bubblewrap >/dev/null || { apt-get update -qq && apt-get install -y -qq --no-install-recommends bubblewrap; }; }; } \
	  || echo "warning: no bubblewrap; the code verifier falls back to its weaker layers: apt-get install bubblewrap" >&2

run: setup sandbox
	$(BIN)/prefpipe run

test: setup browser sandbox
	$(BIN)/python -m pytest -q -rs

lint: setup
	$(BIN)/ruff check .

bench: setup
	$(BIN)/python bench/training_steps.py
	$(BIN)/python bench/vs_trl.py
	$(BIN)/python bench/generation.py
	$(BIN)/python bench/labeling.py
	$(BIN)/python bench/scale.py
	$(BIN)/python bench/pipeline.py

# Re-pin after editing requirements.in (uv resolves the whole stack in seconds).
lock: setup
	$(BIN)/uv pip compile requirements.in $(FIND_LINKS) --python-version 3.11 -o requirements.lock

clean:
	rm -rf $(VENV) .prefect store models reports data/*.parquet
