# The two commands README.md documents: `make demo` (the main job) and `make test` (the tests).
# Both work on a fresh machine: they create .venv and install what they need.
PY ?= python3
VENV := .venv
BIN := $(VENV)/bin

.PHONY: venv demo evaluate-example test lint clean

$(BIN)/consent-gap: setup.cfg pyproject.toml
	$(PY) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip
	$(BIN)/pip install --quiet -e '.[test]'
	touch $@

venv: $(BIN)/consent-gap

demo: venv
	scripts/demo

evaluate-example: venv
	$(BIN)/consent-gap evaluate tests/fixtures/examples/06-duty-to-warn-ca.json --jurisdiction US-CA --format text

test: venv
	scripts/test

lint: venv
	$(BIN)/ruff check .

clean:
	rm -rf $(VENV) build *.egg-info
