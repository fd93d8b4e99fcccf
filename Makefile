# The two commands of the quickstart, `make simulate` and `make test`, each start from nothing:
# they create .venv and install the project into it on first use.
PYTHON ?= python3
VENV := .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed
# LocalStack: Docker compose when a Docker engine answers, else SQS on the host (see the script).
LOCALSTACK := localstack/host.sh
# CI=1, CI=true and CI=yes (any case) all mean CI, as in tests/ci.py; empty outside CI.
IN_CI := $(filter 1 true yes,$(shell printf '%s' "$$CI" | tr '[:upper:]' '[:lower:]'))
UNIT_TESTS := not backend and not browser and not localstack

.PHONY: install serve simulate test test-unit mutate lint format clean localstack \
	localstack-stop localstack-status generated

$(STAMP): pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip install --quiet -e ".[dev]"
	touch $(STAMP)

install: $(STAMP)

serve: $(STAMP)
	$(VENV)/bin/semichat serve

# The main job: a short run of the `chat` scenario on the embedded backend (under a minute).
simulate: $(STAMP)
	$(VENV)/bin/semichat simulate --scenario chat --users 20 --duration 20 --out runs

lint: $(STAMP)
	$(VENV)/bin/ruff check .
	$(VENV)/bin/ruff format --check .

format: $(STAMP)
	$(VENV)/bin/ruff check --fix .
	$(VENV)/bin/ruff format .

# The tests run against the embedded backend and LocalStack; their fixture starts LocalStack when
# it is not up (and stops it again). Installing it here keeps pip's minute out of pytest's output;
# the browser tests need Debian's Chromium. Outside CI a failed install only makes those tests
# skip, saying why; in CI it fails the run.
test: lint
	$(LOCALSTACK) install --if-host-mode || [ -z "$(IN_CI)" ]
	bash scripts/install-chromium.sh || [ -z "$(IN_CI)" ]
	$(PY) -m pytest

# The fast tests alone: no backend process, no LocalStack, no browser (markers set in
# tests/conftest.py from the fixtures each test uses).
test-unit: $(STAMP)
	$(PY) -m pytest -q -m "$(UNIT_TESTS)" --hypothesis-profile=quick

# Mutation testing (slow; not part of CI): the chat domain by default (226 mutants, about half an
# hour on 2 busy cores); `make mutate MUTANTS='semichat.harness.checker*'` for the checker (about
# 1,170 mutants: hours). Results accumulate in mutants/ and a rerun resumes; the tests each mutant
# runs are set in the [tool.mutmut] section of pyproject.toml.
MUTANTS ?= semichat.server.chat*
mutate: $(STAMP)
	$(PY) -m pip install --quiet -e ".[dev,mutate]"
	$(VENV)/bin/mutmut run --max-children 2 "$(MUTANTS)" || true
	$(VENV)/bin/mutmut results

localstack:
	$(LOCALSTACK) start

localstack-stop:
	$(LOCALSTACK) stop

localstack-status:
	$(LOCALSTACK) status

# Files generated from semichat/provision.py and semichat/iam.py; tests fail when they are stale.
generated: $(STAMP)
	$(VENV)/bin/semichat provision --print tables > localstack/tables.json
	$(VENV)/bin/semichat provision --print cloudformation > infra/cloudformation.json

clean:
	rm -rf $(VENV) .pytest_cache .ruff_cache mutants
