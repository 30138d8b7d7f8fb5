# qudao — the two commands are `make demo` and `make test`; everything else supports them.
SHELL := /bin/bash
PYTHON ?= $(shell command -v python3.11 || command -v python3)
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed
DEMO_START ?= 2026-11-01
DEMO_END ?= 2026-11-14
LANDING ?= data/landing
export DBT_SEND_ANONYMOUS_USAGE_STATS := false
export DO_NOT_TRACK := 1

.PHONY: demo test install browser lint dbt-parse unit integration lock clean ui

## demo: set up, generate 14 days of sample extracts, run the nightly pipeline for each, show the result
demo: install
	$(BIN)/qudao generate --landing $(LANDING) --start $(DEMO_START) --end $(DEMO_END) --scale small
	$(BIN)/qudao warehouse init
	$(BIN)/qudao run --landing $(LANDING) --start $(DEMO_START) --end $(DEMO_END)
	$(BIN)/qudao report --no-mail
	$(BIN)/qudao status

## test: set up, lint Python and SQL, parse dbt, run the whole pytest suite
test: install browser lint dbt-parse
	$(BIN)/pytest -p no:cacheprovider

## install: .venv with the locked dependency versions, qudao itself and its demo tools (tools/;
## re-runs when the lock changes)
install: $(STAMP)

$(STAMP): requirements.lock pyproject.toml tools/pyproject.toml
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --disable-pip-version-check "uv==0.13.9"
	$(BIN)/uv pip install --quiet --compile-bytecode --python $(BIN)/python -r requirements.lock
	$(BIN)/uv pip install --quiet --python $(BIN)/python --no-deps -e . -e tools
	$(BIN)/qudao dbt-parse
	touch $(STAMP)

lint: install
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(BIN)/qudao lint-sql

dbt-parse: install
	$(BIN)/qudao dbt-parse

## browser: headless Chromium and CJK fonts from Debian for the report page test (apt-get, as root)
browser:
	@command -v chromium >/dev/null && fc-list :lang=zh 2>/dev/null | grep -q . && exit 0; \
	if command -v apt-get >/dev/null && [ "$$(id -u)" = 0 ]; then \
		apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends chromium fonts-noto-cjk >/dev/null \
		|| echo "apt-get could not install chromium: the report page browser test will be skipped"; \
	else echo "no chromium: the report page browser test will be skipped (install chromium and fonts-noto-cjk)"; fi

## lock: re-resolve requirements.lock from pyproject.toml
lock:
	$(BIN)/uv pip compile --python-version 3.11 pyproject.toml --extra dev -o requirements.lock --no-header
	sed -i '1i # Exact versions every install uses. Regenerate: make lock (uv pip compile pyproject.toml --extra dev)' requirements.lock

## ui: the Airflow UI on http://127.0.0.1:8080 (loopback only) with the same metadata the CLI uses;
## user admin, password in .qudao/airflow/simple_auth_manager_passwords.json.generated; Ctrl-C stops it all
ui: install
	$(BIN)/qudao airflow standalone

clean:
	rm -rf .qudao data dbt_project/target dbt_project/logs
