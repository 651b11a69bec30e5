# Two commands on a fresh clone: `make run` and `make test`.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.requirements-installed
PORT ?= 5000
export FLASK_APP := wsgi:app

.PHONY: run test test-unit test-integration test-browser bench clean

$(BIN)/python:
	$(PYTHON) -m venv $(VENV)

$(STAMP): requirements.txt | $(BIN)/python
	$(BIN)/pip install --quiet --upgrade pip
	$(BIN)/pip install --quiet -r requirements.txt
	touch $(STAMP)

run: $(STAMP)
	$(BIN)/flask db upgrade
	$(BIN)/flask kiket demo
	@echo "Serving http://127.0.0.1:$(PORT)  (Ctrl-C stops everything)"
	PATH="$(abspath $(BIN)):$$PATH" $(BIN)/honcho start --port $(PORT) \
		--procfile $(if $(REDIS_URL),Procfile,Procfile.embedded)

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
