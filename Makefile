# Two commands on a fresh machine: `make demo` and `make test`. Each creates or updates .venv
# from uv.lock by itself: uv comes from PyPI when missing, Python 3.12+ is found on PATH or
# under pyenv (whose shims are not always selected), else uv's own.
SHELL := /bin/bash
WORKDIR ?= runs/demo
UV := $(shell command -v uv 2>/dev/null || echo $(HOME)/.local/bin/uv)
PY_CANDIDATES = python3.12 python3.13 $(wildcard $(shell pyenv root 2>/dev/null)/versions/3.1[2-9]*/bin/python3)
FIND_PYTHON = for c in $(PY_CANDIDATES); do \
  if $$c -c 'import sys; sys.exit(sys.version_info < (3, 12))' 2>/dev/null; then \
    command -v $$c || echo $$c; exit 0; fi; done; echo 3.12
VENV_STAMP := .venv/.synced

.PHONY: demo test venv lint clean
venv: $(VENV_STAMP)

$(VENV_STAMP): pyproject.toml uv.lock
	@test -x "$(UV)" || python3 -m pip install --user --quiet uv
	$(UV) sync --frozen --python "$$($(FIND_PYTHON))"
	@touch $@

demo: $(VENV_STAMP)
	.venv/bin/python -m ssl_seg.main --config=configs/welllog_demo.py --workdir=$(WORKDIR)

test: $(VENV_STAMP)
	JAX_PLATFORMS=cpu .venv/bin/python -m pytest tests

lint: $(VENV_STAMP)
	.venv/bin/ruff check ssl_seg configs launch tests benchmarks

clean:
	rm -rf .venv runs
