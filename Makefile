# boxloop: `make demo` runs the whole loop locally; `make test` runs the test suite.
SHELL := /bin/bash
VENV := .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed
export JSII_SILENCE_WARNING_END_OF_LIFE_NODE_VERSION := 20
export CDK_DISABLE_VERSION_CHECK := 1
export CDK_DISABLE_CLI_TELEMETRY := true

.PHONY: setup test demo synth bench clean

$(STAMP): pyproject.toml package.json package-lock.json
	python3 -m venv $(VENV)
	$(PY) -m pip install -q --upgrade pip
	$(PY) -m pip install -q -e '.[dev]'
	npm ci --no-audit --no-fund --loglevel=error
	touch $(STAMP)

setup: $(STAMP)

test: setup
	$(PY) -m pytest

demo: setup
	$(VENV)/bin/boxloop demo

synth: setup
	npx cdk synth --no-notices -q -c env=dev
	npx cdk synth --no-notices -q -c env=prod

clean:
	rm -rf $(VENV) node_modules cdk.out
