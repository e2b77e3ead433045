# Two commands matter: `make run` and `make test`. Each builds .venv on first use.
PYTHON ?= python3
VENV := .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed

.PHONY: run test lint format bench bench-quick load crash screenshots clean

$(STAMP): pyproject.toml
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip install --quiet -e '.[dev]'
	touch $(STAMP)

run: $(STAMP)
	$(PY) -m exchange serve --demo

lint: $(STAMP)
	$(PY) -m ruff check .
	$(PY) -m ruff format --check .
	$(PY) -m mypy --strict matching settlement registration exchange offsets load

test: lint
	$(PY) -m pytest

format: $(STAMP)
	$(PY) -m ruff format .
	$(PY) -m ruff check --fix .

bench: $(STAMP)
	$(PY) -m bench.matching
	$(PY) -m bench.settlement
	$(PY) -m bench.exchange
	$(PY) -m bench.offsets
	$(PY) -m bench.points
	$(PY) -m pytest bench --benchmark-enable -p no:cacheprovider

load: $(STAMP)
	$(PY) -m load.run --users 50 --duration 60s

crash: $(STAMP)
	$(PY) -m load.crash --rounds 9

clean:
	rm -rf $(VENV) .pytest_cache .mypy_cache .ruff_cache .hypothesis .benchmarks

screenshots: $(STAMP)
	CERX_SCREENSHOTS=docs/screenshots $(PY) -m pytest -q tests/console/test_browser.py
