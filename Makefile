# boxloop: `make demo` runs the whole loop locally; `make test` runs the test suite; `make lint` checks style;
# `make check-deploy` runs the deploy checks.
SHELL := /bin/bash
VENV := .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed
export JSII_SILENCE_WARNING_END_OF_LIFE_NODE_VERSION := 20
export CDK_DISABLE_VERSION_CHECK := 1
export CDK_DISABLE_CLI_TELEMETRY := true

.PHONY: setup test lint check-deploy demo synth bench clean

$(STAMP): pyproject.toml package.json package-lock.json
	python3 -m venv $(VENV)
	$(PY) -m pip install -q --upgrade pip
	$(PY) -m pip install -q -e '.[dev]'
	npm ci --no-audit --no-fund --loglevel=error
	touch $(STAMP)

# The labelling page's bundle (web/dist/), rebuilt when its sources or the npm lock change.
WEB_SOURCES := $(shell find web -path web/dist -prune -o -type f -print) package-lock.json
web/dist/index.html: $(STAMP) $(WEB_SOURCES)
	npm run --silent build:web

setup: $(STAMP) web/dist/index.html

# Two workers (CI has 2 cores); a module's tests stay on one worker, so each module-scoped run happens once.
test: setup
	$(PY) -m pytest -n 2 --dist loadscope

lint: setup
	$(VENV)/bin/ruff check .
	$(VENV)/bin/ruff format --check .

# What a first `cdk deploy` and run need (docs/stack.md, "First deploy"); reaches PyPI, not AWS. Every image
# requirement has a wheel for its image's platform; every Lambda handler imports with only the Lambda requirements
# installed; the job image's train/serve contract holds on a packed model artefact; dev, prod and the A2I variant
# synthesize with no unacknowledged cdk-nag finding.
CHECK_WORKTEAM := arn:aws:sagemaker:us-east-1:123456789012:workteam/private-crowd/check-deploy
check-deploy: setup
	$(PY) -m deploy.check_wheels
	npx cdk synth --no-notices -q -c env=dev
	$(PY) -m deploy.check_lambda_imports cdk.out/boxloop-dev.template.json
	npx cdk synth --no-notices -q -c env=prod
	npx cdk synth --no-notices -q -c env=dev -c workforce=a2i -c workteam_arn=$(CHECK_WORKTEAM)
	$(PY) -m pytest tests/deploy_checks tests/detector/test_model_artifact.py tests/infra/test_deployable.py

demo: setup
	$(VENV)/bin/boxloop demo

synth: setup
	npx cdk synth --no-notices -q -c env=dev
	npx cdk synth --no-notices -q -c env=prod

# The quick benchmarks (a few minutes on 2 cores): the core at scale, and the AWS bill priced from the recorded
# figures (its plot goes to bench-work/, not over docs/). The long ones run one at a time: docs/benchmarks.md.
bench: setup
	$(PY) bench/core_scale.py
	$(PY) bench/cost.py --plot bench-work/cost.png

clean:
	rm -rf $(VENV) node_modules cdk.out
