# Two commands on a fresh clone: `make run` and `make test`.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.requirements-installed
PORT ?= 5000
# The live process (websockets, gevent) listens next to the web process; pages connect to it directly.
LIVE_PORT ?= $(shell expr $(PORT) + 1)
export FLASK_APP := wsgi:app

.PHONY: run test test-unit test-integration test-browser bench clean

$(BIN)/python:
	$(PYTHON) -m venv $(VENV)

$(STAMP): requirements.txt | $(BIN)/python
	$(BIN)/pip install --quiet --upgrade pip
	$(BIN)/pip install --quiet -r requirements.txt
	touch $(STAMP)

# Every process of Procfile.embedded; with REDIS_URL set, all but the embedded Redis.
PROCESSES := $(shell sed -n 's/^\([A-Za-z0-9_-]*\):.*/\1/p' Procfile.embedded)

# Ctrl-C stops every process (the embedded Redis last, once its clients have left); make then says "Interrupt".
run: $(STAMP)
	$(BIN)/flask db upgrade
	$(BIN)/flask kiket demo
	@echo "Starting on http://127.0.0.1:$(PORT)  (Ctrl-C stops everything)"
	@PATH="$(abspath $(BIN)):$$PATH" KIKET_WEB_PORT=$(PORT) KIKET_LIVE_PORT=$(LIVE_PORT) \
		KIKET_LIVE_URL=$${KIKET_LIVE_URL:-ws://127.0.0.1:$(LIVE_PORT)/live} $(BIN)/honcho start --port $(PORT) \
		--procfile Procfile.embedded $(if $(REDIS_URL),$(filter-out redis,$(PROCESSES)))

test: $(STAMP)
	$(BIN)/python -m pytest $(PYTEST_ARGS)

test-unit: $(STAMP)
	$(BIN)/python -m pytest tests/unit $(PYTEST_ARGS)

test-integration: $(STAMP)
	$(BIN)/python -m pytest tests/unit tests/integration $(PYTEST_ARGS)

bench: $(STAMP)
	$(BIN)/python -m bench

clean:
	rm -rf $(VENV) .pytest_cache
