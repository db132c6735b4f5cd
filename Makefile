# The two commands: `make run` (the service) and `make test` (every test). Both set up what they
# need first: a virtualenv in .venv and the worker's node_modules from package-lock.json.
PYTHON ?= $(shell command -v python3.11 || command -v python3)
VENV := .venv
BIN := $(VENV)/bin
NODE_MODULES := node_worker/node_modules/.package-lock.json

.PHONY: run sandbox test lint test-python test-node ctl bench clean browser postgres docs

run: $(BIN)/.installed $(NODE_MODULES)
	$(BIN)/wa-gateway run

sandbox: $(BIN)/.installed $(NODE_MODULES)
	$(BIN)/wa-gateway sandbox

# The Python tests run on TEST_WORKERS processes (pytest-xdist), a whole test file per process, so that a
# module's shared stack stays on one; most of a system test's time is waiting on real processes, so three
# on two cores finish sooner than two (measured: 7 m 53 s against 10 m 44 s for the same 1130 tests).
TEST_WORKERS ?= 3

# Beside them, the outbox, inbound and media tests once more with the store on PostgreSQL
# (WA_TEST_DATABASE=postgresql: tests/helpers/postgres.py starts a throwaway server per pytest worker; they skip,
# saying why, without one), on two more processes: run after the others they added minutes, run beside them
# they fill their waits. Their output is printed once they end; either run failing fails the target.
# The worker's tests run first, NODE_TEST_CONCURRENCY files at a time (each starts its own emulator and workers on
# free ports; node_worker/package.json's test script runs the same): three, as their processes wait on one another
# part of the time (the suite used ~260 CPU-s; two at a time took 2 m 56 s on a clean clone, a quarter of two cores
# idle; measured back to back on 15 of the files, 114 tests: 100 s and 117 s two at a time, 82 s and 81 s three at a
# time, the same CPU-s). Three at a time passed 400 of 402 on this 2-core machine at a load of 22 (others' stacks and benches), the
# two misses large media transfers, where two at a time failed dozens (an emulator start, ~1.5 CPU-s, exceeded its
# 15 s bound: now 60 s, test/emulator-helpers.js). Run beside the Python runs (tried once) they took 12 minutes
# instead of 3 and their timing tests (a 3 s black hole) failed under the load. --durations names the main run's
# long poles. Both runs hand out their files longest first
# (tests/helpers/schedule.py, from tests/timings.json; --no-loadscope-reorder keeps xdist from re-sorting them by
# their number of tests, which left the few-test fuzz and chaos files to the end); `WA_TEST_TIMINGS=tests/timings.json
# make test` records a new table from the main run.
PG_TESTS := tests/app/outbox/test_outbox_store.py tests/app/outbox/test_outbox_dispatcher.py tests/app/outbox/test_outbox_api.py tests/app/outbox/test_send_media_api.py tests/app/outbox/test_message_actions_api.py tests/app/outbox/test_group_send_api.py tests/app/chats/test_chats_store.py tests/app/chats/test_chats_api.py tests/app/test_media_downloads.py tests/app/test_media_retention.py tests/system/test_outbox_chaos.py tests/system/test_inbound_chaos.py

PG_WORKERS ?= 2
NODE_TEST_CONCURRENCY ?= 3

test: lint browser postgres
	cd node_worker && node --test --test-concurrency=$(NODE_TEST_CONCURRENCY) test/*.test.js
	@pg_log=$$(mktemp); \
	WA_TEST_DATABASE=postgresql WA_TEST_TIMINGS= $(BIN)/pytest -n $(PG_WORKERS) --dist loadfile --no-loadscope-reorder $(PG_TESTS) > "$$pg_log" 2>&1 & pg=$$!; \
	$(BIN)/pytest -n $(TEST_WORKERS) --dist loadfile --no-loadscope-reorder --durations=25; main=$$?; \
	wait $$pg; pg_rc=$$?; \
	echo "--- the PostgreSQL run (WA_TEST_DATABASE=postgresql) ---"; cat "$$pg_log"; rm -f "$$pg_log"; \
	test $$main -eq 0 && test $$pg_rc -eq 0

# The checks that keep the house in order, first because they take seconds: ruff (lint and import order,
# pyproject.toml) over all Python, mypy --strict over the gateway and its client, eslint over the worker and
# the emulator (node_worker/eslint.config.js). tests/unit/test_layering.py checks the layers and sizes.
lint: $(BIN)/.installed-test $(NODE_MODULES)
	$(BIN)/ruff check service clients tests bench
	$(BIN)/mypy
	cd node_worker && npm run lint

# The status page's test (tests/system/test_status_page.py) drives Debian's chromium through chromium-driver:
# installed here when missing (root, or sudo), else that test skips and says why.
SUDO := $(shell [ "$$(id -u)" = 0 ] || echo sudo)
browser:
	@command -v chromium >/dev/null && command -v chromedriver >/dev/null || \
	  { $(SUDO) apt-get update && $(SUDO) env DEBIAN_FRONTEND=noninteractive apt-get install -y \
	    --no-install-recommends chromium chromium-driver; } || echo "chromium could not be installed: tests/system/test_status_page.py will skip"

# The PostgreSQL tests (tests/helpers/postgres.py) need Debian's server binaries (initdb, postgres): installed
# here when missing (root, or sudo), else those tests skip and say why. They start their own server.
postgres:
	@ls /usr/lib/postgresql/*/bin/initdb >/dev/null 2>&1 || \
	  { $(SUDO) apt-get update && $(SUDO) env DEBIAN_FRONTEND=noninteractive apt-get install -y \
	    --no-install-recommends postgresql; } || echo "postgresql could not be installed: the PostgreSQL tests will skip"

# `make ctl ARGS="status"`: supervisorctl against the running supervisord, same environment as `make run`.
ctl: $(BIN)/.installed
	$(BIN)/wa-gateway ctl $(ARGS)

# The gateway and its Python client (clients/python: `wa-gateway <command>` forwards to its CLI).
$(BIN)/.installed: setup.cfg pyproject.toml clients/python/pyproject.toml
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --disable-pip-version-check -e . -e clients/python
	touch $@

$(BIN)/.installed-test: $(BIN)/.installed
	$(BIN)/python -m pip install --quiet --disable-pip-version-check -e '.[test]'
	touch $@

# npm ci also applies node_worker/patches/ (patch-package, the worker's postinstall script).
$(NODE_MODULES): node_worker/package.json node_worker/package-lock.json $(wildcard node_worker/patches/*.patch)
	cd node_worker && npm ci --no-audit --no-fund
	touch $@

# The documentation as a site (mkdocs.yml, the pages in docs/): --strict fails on a link or an #anchor that does
# not resolve. Into site/ (git-ignored). make test checks the same (tests/unit/test_doc_links.py).
docs: $(BIN)/.installed-test
	$(BIN)/mkdocs build --strict --site-dir site

# Benchmarks against a real sandbox stack: prints medians and ratios, asserts nothing.
bench: $(BIN)/.installed-test $(NODE_MODULES)
	$(BIN)/python -m bench.run $(BENCH_ARGS)

clean:
	rm -rf $(VENV) node_worker/node_modules
