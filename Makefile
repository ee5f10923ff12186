# ifriend: everyday commands. `make test` is what .ci/run runs.
#   make venv           .venv with the package and all extras (re-installs when pyproject.toml changes)
#   make run            the bot, from ./ifriend.toml
#   make servers        local Redis, a Redis Cluster (3+3) and MariaDB on 127.0.0.1 (scripts/servers.sh)
#   make test           pytest against those servers; extra args: make test PYTEST_ARGS='-k redis -x'
#   make browser        Debian's chromium (headless), which checks the `ifriend traces --html` page
#   make bench          the benchmarks under perf/; extra args: BENCH_ARGS=...
#   make stop-servers   shut the local servers down
#   make clean          stop servers, remove .venv, .servers and caches

PYTHON ?= $(shell command -v python3.11 2>/dev/null || echo python3)
VENV := .venv
SERVERS := bash scripts/servers.sh
WITH_SERVERS_ENV = eval "$$($(SERVERS) env)"
BENCH ?= perf/bench_sessions.py
PYTEST_ARGS ?=
BENCH_ARGS ?=
RUN_ARGS ?=

.PHONY: venv run servers browser test bench stop-servers clean

venv: $(VENV)/.installed

# Debian's python3 needs python3-venv (ensurepip) to create a venv.
$(VENV)/bin/python:
	$(PYTHON) -c 'import ensurepip' 2>/dev/null || { \
	  export DEBIAN_FRONTEND=noninteractive; \
	  apt-get update -q && apt-get install -y -q --no-install-recommends python3-venv; }
	$(PYTHON) -m venv $(VENV)

$(VENV)/.installed: pyproject.toml | $(VENV)/bin/python
	$(VENV)/bin/python -m pip install -q -e '.[all,test]'
	touch $@

run: venv
	$(VENV)/bin/ifriend run $(RUN_ARGS)

servers:
	$(SERVERS) start

# apt-get as root when chromium is missing (as scripts/servers.sh does for the servers).
browser:
	@command -v chromium >/dev/null 2>&1 || { \
	  [ "$$(id -u)" = 0 ] || { echo "chromium is missing; run as root, or: apt-get install chromium" >&2; exit 1; }; \
	  export DEBIAN_FRONTEND=noninteractive; \
	  apt-get update -q && apt-get install -y -q -o DPkg::Lock::Timeout=600 --no-install-recommends chromium; }

test: venv servers browser
	$(WITH_SERVERS_ENV) && $(VENV)/bin/python -m pytest $(PYTEST_ARGS)

bench: venv servers
	$(WITH_SERVERS_ENV) && $(VENV)/bin/python $(BENCH) $(BENCH_ARGS)

stop-servers:
	$(SERVERS) stop

clean:
	$(SERVERS) stop --purge
	rm -rf $(VENV) build dist .pytest_cache .hypothesis
	find . -path ./.git -prune -o \( -name __pycache__ -o -name '*.egg-info' \) -prune -exec rm -rf {} +
