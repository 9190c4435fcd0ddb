# Two commands on a fresh machine: `make run` and `make test`. Needs Python >= 3.11 and make.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
HOST ?= 127.0.0.1
PORT ?= 8000
ADMIN_USERNAME ?= admin
# pytest-xdist workers for `make test`: most tests wait on a subprocess (gunicorn, a browser, a
# private PostgreSQL), so more workers than cores pays off; measured fastest on 2 cores.
TEST_WORKERS ?= 4

.DEFAULT_GOAL := help
.PHONY: help run dev test lint fmt lock migrate admin seed clean stack

help:
	@echo "make run    set everything up (venv, pinned requirements, migrations, demo data, admin) and serve on http://$(HOST):$(PORT)"
	@echo "make test   run the whole test suite, in $(TEST_WORKERS) parallel processes (TEST_WORKERS=0: in one)"
	@echo "make dev    Django's development server with auto-reload"
	@echo "make stack  the production topology on this machine (HAProxy, 3 instances, primary + replica,"
	@echo "            Redis, Prometheus, Alertmanager) until Ctrl-C; STACK_ARGS=--help for options"
	@echo "make lint   ruff, formatting, missing migrations and the import contracts"
	@echo "make fmt    format and auto-fix with ruff"
	@echo "make lock   recompile the pinned requirements/*.txt from requirements/*.in"

# The venv starts without pip (ensurepip is the slowest part of creating it): this Python's pip
# installs uv into it, or, where this Python has no pip, the venv's own pip does. uv installs the
# rest (dev.txt pins pip, which pip-tools needs for `make lock`).
$(BIN)/python:
	@$(PYTHON) -c 'import sys; sys.exit(0 if sys.version_info >= (3, 11) else "Python >= 3.11 is required, found " + sys.version.split()[0])'
	$(PYTHON) -m venv --without-pip $(VENV)
	$(PYTHON) -m pip --python $(BIN)/python install --quiet --disable-pip-version-check -r requirements/uv.txt \
	  || { $(BIN)/python -m ensurepip --default-pip >/dev/null \
	       && $(BIN)/python -m pip install --quiet --disable-pip-version-check -r requirements/uv.txt; }

# Stamp files: reinstall only when the pinned requirements change. uv (pinned in
# requirements/uv.txt, installed as above) installs the same pins as pip, downloading in
# parallel, many times faster. It lists what it installed. Bytecode is
# compiled at install, as pip does: otherwise the first processes to start (parallel test
# workers, gunicorn workers) each compile the same modules.
UV_INSTALL := $(BIN)/uv pip install --compile-bytecode --python $(BIN)/python
$(VENV)/.prod-installed: requirements/prod.txt requirements/base.txt | $(BIN)/python
	@echo "Installing the pinned requirements (requirements/prod.txt) into $(VENV)"
	$(UV_INSTALL) -r requirements/prod.txt
	@touch $@

$(VENV)/.dev-installed: requirements/dev.txt requirements/prod.txt requirements/base.txt | $(BIN)/python
	@echo "Installing the pinned requirements (requirements/dev.txt) into $(VENV)"
	$(UV_INSTALL) -r requirements/dev.txt
	@touch $@ $(VENV)/.prod-installed

migrate: $(VENV)/.prod-installed
	$(BIN)/python manage.py migrate --noinput

admin: migrate
	@$(BIN)/python manage.py ensure_superuser --username $(ADMIN_USERNAME)

seed: migrate
	@$(BIN)/python manage.py seed_demo --if-empty

# A fresh API key on every run, with a curl for this HOST and PORT; gunicorn says "Serving on"
# once it has bound the port, or names PORT= when it is taken.
run: admin seed
	@$(BIN)/python manage.py demo_api_key --base-url http://$(HOST):$(PORT)
	@$(BIN)/gunicorn -c gunicorn.conf.py --bind $(HOST):$(PORT)

dev: admin seed
	$(BIN)/python manage.py runserver $(HOST):$(PORT)

# The topology of docs/deployment.md from Debian's programs on free ports (tests/stack.py, which
# the drills of tests/deploy/test_topology_drills.py run too). Prints where everything listens.
stack: $(VENV)/.dev-installed
	$(BIN)/python -m tests.stack $(STACK_ARGS)

# PYTEST_ARGS: more pytest options, e.g. PYTEST_ARGS='-m "not system"'.
test: $(VENV)/.dev-installed
	$(BIN)/pytest -n $(TEST_WORKERS) $(PYTEST_ARGS)

lint: $(VENV)/.dev-installed
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(BIN)/python manage.py makemigrations --check --dry-run
	$(BIN)/lint-imports --no-cache

fmt: $(VENV)/.dev-installed
	$(BIN)/ruff check --fix .
	$(BIN)/ruff format .

PIP_COMPILE := $(BIN)/pip-compile --quiet --strip-extras --allow-unsafe --no-emit-index-url --no-emit-find-links
lock: $(VENV)/.dev-installed
	cd requirements && ../$(PIP_COMPILE) base.in -o base.txt
	cd requirements && ../$(PIP_COMPILE) prod.in -o prod.txt
	cd requirements && ../$(PIP_COMPILE) dev.in -o dev.txt

clean:
	rm -rf $(VENV) staticfiles .pytest_cache .ruff_cache
