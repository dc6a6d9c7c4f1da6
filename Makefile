# One place for the project's commands. `make rehearse` and `make test` are the README's set-up.
PYTHON ?= python3.11
VENV   ?= .venv
PY     := $(VENV)/bin/python
STAMP  := $(VENV)/.installed

.PHONY: venv lock browser node-tools rehearse rehearse-fail test check lint typecheck bench clean

venv: $(STAMP)

# Every dependency comes from the lock, hash-checked (requirements/dev.txt); the project itself
# is installed without dependencies and without build isolation (setuptools is in the lock too).
$(STAMP): pyproject.toml requirements/dev.txt
	@command -v $(PYTHON) >/dev/null 2>&1 || { echo "error: $(PYTHON) not found (set PYTHON=...)" >&2; exit 2; }
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --require-hashes -r requirements/dev.txt
	$(PY) -m pip install --quiet --no-deps --no-build-isolation -e .
	@touch $(STAMP)

# Refresh the locks from PyPI after changing a range in pyproject.toml (or to take new
# releases): one lock per install profile, universal (Linux, macOS, Windows), with hashes.
#   runner.txt  `pip install .`: the runner only      image.txt  the release image (+ servers)
#   infra.txt   `.[infra]`: the program, pack, gate   dev.txt    `.[dev]`: everything, the tests
LOCK := $(VENV)/bin/uv pip compile --universal --python-version 3.11 --generate-hashes --quiet \
        --upgrade --custom-compile-command 'make lock' pyproject.toml requirements/build.in
lock: venv
	$(LOCK) -o requirements/runner.txt
	$(LOCK) requirements/image.in -o requirements/image.txt
	$(LOCK) --extra infra -o requirements/infra.txt
	$(LOCK) --extra dev -o requirements/dev.txt

rehearse: venv
	$(PY) -m infra.tools.rehearse

# The same rehearsal of a broken migration (scratch copy, fresh database): the rollout stops
# before any app starts; the rehearsal exits with the migration job's status (make: Error 1).
rehearse-fail: venv
	$(PY) -m infra.tools.rehearse --fail

test: venv browser node-tools
	$(PY) -m pytest

# The dashboard test drives a real headless browser: Debian's chromium, installed when missing
# (as root, or with sudo). Nothing happens when it is already there.
browser:
	@command -v chromium >/dev/null 2>&1 || { \
	  echo "installing Debian's chromium for the dashboard test"; \
	  SUDO=$$( [ "$$(id -u)" = 0 ] || echo sudo ); \
	  $$SUDO apt-get update -qq && DEBIAN_FRONTEND=noninteractive $$SUDO apt-get install -y -qq chromium >/dev/null; }

# The other tools' real releases from npm (node-pg-migrate, drizzle-orm), for the adoption
# tests and the bench; pinned by tests/realtools/package-lock.json.
NODE_TOOLS := tests/realtools/node_modules/.package-lock.json
node-tools: $(NODE_TOOLS)

$(NODE_TOOLS): tests/realtools/package.json tests/realtools/package-lock.json
	@command -v npm >/dev/null 2>&1 || { echo "error: npm not found (Node.js 20+ is needed for the real-tool tests)" >&2; exit 2; }
	npm ci --prefix tests/realtools --no-audit --no-fund --loglevel=error
	@touch $(NODE_TOOLS)

lint: venv
	$(VENV)/bin/ruff check .

typecheck: venv
	$(VENV)/bin/mypy

check: lint typecheck test

bench: venv node-tools
	$(PY) -m bench
	$(PY) bench/preview_bench.py
	$(PY) bench/gate_bench.py

clean:
	-$(PY) -m migration embedded --stop 2>/dev/null
	rm -rf .artifacts .pgdata .pytest_cache .mypy_cache .ruff_cache
