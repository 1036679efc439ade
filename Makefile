# Two entry points for a fresh machine (Python 3.12 and 3.11 and the package registries are all it needs):
#   make demo   set everything up and run the main job on the embedded default (local Doccano, SQLite, loopback)
#   make test   set everything up and run the whole test suite (slow tests included), as CI does
# The toolkit runs on Python 3.12 (the pretrained base pipelines' wheels require it); Doccano keeps its own
# Python 3.11 venv (its pandas 1.5.3 has no 3.12 wheels). Under pyenv, python3.12 may be installed but not on
# the global version list: take it from the pyenv versions folder then.
PYTHON ?= $(shell command -v python3.12 >/dev/null 2>&1 && python3.12 -c "" 2>/dev/null && echo python3.12 || ls -d $${PYENV_ROOT:-$$HOME/.pyenv}/versions/3.12*/bin/python3.12 2>/dev/null | tail -n1)
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed

.PHONY: demo demo-quick test install doccano browser postgres clean corpus model package

$(STAMP): pyproject.toml
	@test -n "$(PYTHON)" || { echo "Python 3.12 not found: install it or pass PYTHON=/path/to/python3.12"; exit 1; }
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -e ".[dev,base]"
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

# Debian's PostgreSQL server programs (initdb, postgres, pg_dump) for `doccano serve --database postgres`,
# backups and their tests; each data dir gets its own cluster, so no system cluster needs to run.
postgres:
	@if ls /usr/lib/postgresql/*/bin/initdb >/dev/null 2>&1 || command -v initdb >/dev/null; then \
		echo "postgresql present"; \
	elif [ "$$(id -u)" = 0 ]; then \
		apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq postgresql >/dev/null; \
	else \
		echo "not root: skipping the postgresql install (its tests will be skipped)"; \
	fi

demo: doccano
	bash scripts/demo.sh

demo-quick: doccano
	DEMO_QUICK=1 bash scripts/demo.sh

# Rebuild the corpus records, seeds/ and the card's tables from corpora/diplomacy-defence/markup (and double/).
corpus: $(STAMP)
	$(BIN)/python scripts/build_corpus.py

# Retrain the shipped model (models/diplomacy-defence) and rewrite its card and the README's metrics table.
model: $(STAMP)
	$(BIN)/python scripts/build_model.py

# The shipped model as an installable wheel with its model card, in dist/en_diplomacy_defence-0.1.0/.
package: $(STAMP)
	$(BIN)/annotate package models/diplomacy-defence/model --name en_diplomacy_defence --version 0.1.0 --out dist/

test: doccano browser postgres
	$(BIN)/python -m pytest

clean:
	rm -rf $(VENV) .venv-doccano .doccano corpora/demo models/demo build
