# Two entry points for a fresh machine (Python 3.11 and the package registries are all it needs):
#   make demo   set everything up and run the main job on the embedded default (local Doccano, SQLite, loopback)
#   make test   set everything up and run the whole test suite (slow tests included), as CI does
PYTHON ?= python3.11
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed

.PHONY: demo test install doccano browser clean

$(STAMP): pyproject.toml
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -e ".[dev]"
	touch $(STAMP)

install: $(STAMP)

# Doccano 1.8.4 lives in its own virtual environment (.venv-doccano): its pins clash with ours.
doccano: $(STAMP)
	$(BIN)/annotate doccano install

# Debian's Chromium and ChromeDriver for the browser tests (needs root; the tests skip without them).
browser:
	@if command -v chromium >/dev/null && command -v chromedriver >/dev/null; then \
		echo "chromium and chromedriver present"; \
	elif [ "$$(id -u)" = 0 ]; then \
		apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium chromium-driver >/dev/null; \
	else \
		echo "not root: skipping the chromium install (browser tests will be skipped)"; \
	fi

demo: doccano
	bash scripts/demo.sh

test: doccano browser
	$(BIN)/python -m pytest

clean:
	rm -rf $(VENV) .venv-doccano .doccano corpora/demo models/demo
