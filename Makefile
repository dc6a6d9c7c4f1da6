# One place for the project's commands. `make rehearse` and `make test` are the README's set-up.
PYTHON ?= python3.11
VENV   ?= .venv
PY     := $(VENV)/bin/python
STAMP  := $(VENV)/.installed

.PHONY: venv browser rehearse test check lint typecheck bench clean

venv: $(STAMP)

$(STAMP): pyproject.toml
	@command -v $(PYTHON) >/dev/null 2>&1 || { echo "error: $(PYTHON) not found (set PYTHON=...)" >&2; exit 2; }
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip install --quiet -e '.[dev]'
	@touch $(STAMP)

rehearse: venv
	$(PY) -m infra.rehearse

test: venv browser
	$(PY) -m pytest

# The dashboard test drives a real headless browser: Debian's chromium, installed when missing
# (as root, or with sudo). Nothing happens when it is already there.
browser:
	@command -v chromium >/dev/null 2>&1 || { \
	  echo "installing Debian's chromium for the dashboard test"; \
	  SUDO=$$( [ "$$(id -u)" = 0 ] || echo sudo ); \
	  $$SUDO apt-get update -qq && DEBIAN_FRONTEND=noninteractive $$SUDO apt-get install -y -qq chromium >/dev/null; }

lint: venv
	$(VENV)/bin/ruff check .

typecheck: venv
	$(VENV)/bin/mypy

check: lint typecheck test

bench: venv
	$(PY) -m bench
	$(PY) bench/preview_bench.py

clean:
	-$(PY) -m migration embedded --stop 2>/dev/null
	rm -rf .artifacts .pgdata .pytest_cache .mypy_cache .ruff_cache
