# The two commands of the quickstart, `make simulate` and `make test`, each start from nothing:
# they create .venv and install the project into it on first use.
PYTHON ?= python3
VENV := .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed
# The CDK's Python packages (the `infra` extra, about 460 MB), only for what synthesizes.
INFRA_STAMP := $(VENV)/.installed-infra
# LocalStack: Docker compose when a Docker engine answers, else SQS on the host (see the script).
LOCALSTACK := localstack/host.sh
# CI=1, CI=true and CI=yes (any case) all mean CI, as in tests/ci.py; empty outside CI.
IN_CI := $(filter 1 true yes,$(shell printf '%s' "$$CI" | tr '[:upper:]' '[:lower:]'))
UNIT_TESTS := not backend and not browser and not localstack and not slow
# pytest-xdist workers for `make test`: most tests wait on processes and sockets, not on the CPU,
# so three keep two cores busy (measured: see the README's Tests section).
TEST_WORKERS ?= 3

.PHONY: install install-infra serve simulate test test-unit mutate lint format clean localstack \
	localstack-stop localstack-status generated synth sweep lab

$(STAMP): pyproject.toml setup.py
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip install --quiet -e ".[dev]"
	touch $(STAMP)

install: $(STAMP)

$(INFRA_STAMP): $(STAMP)
	$(PY) -m pip install --quiet -e ".[dev,infra]"
	touch $(INFRA_STAMP)

install-infra: $(INFRA_STAMP)

serve: $(STAMP)
	$(VENV)/bin/semichat serve

# The main job: a short run of the `chat` scenario on the embedded backend (under a minute).
simulate: $(STAMP)
	$(VENV)/bin/semichat simulate --scenario chat --users 20 --duration 20 --out runs

lint: $(STAMP)
	$(VENV)/bin/ruff check .
	$(VENV)/bin/ruff format --check .
	$(VENV)/bin/mypy

format: $(STAMP)
	$(VENV)/bin/ruff check --fix .
	$(VENV)/bin/ruff format .

# The tests run against the embedded backend and LocalStack; their fixture starts LocalStack when
# it is not up (and stops it again). Installing it here keeps pip's minute out of pytest's output;
# the browser tests need Debian's Chromium. Outside CI a failed install only makes those tests
# skip, saying why; in CI it fails the run.
test: lint $(INFRA_STAMP)
	$(LOCALSTACK) install --if-host-mode || [ -z "$(IN_CI)" ]
	bash scripts/install-chromium.sh || [ -z "$(IN_CI)" ]
	$(PY) -m pytest -n $(TEST_WORKERS) --dist worksteal --durations=20

# The fast tests alone: no backend process, no LocalStack, no browser (markers set in
# tests/conftest.py from the fixtures each test uses).
test-unit: $(STAMP)
	$(PY) -m pytest -q -n 2 -m "$(UNIT_TESTS)" --hypothesis-profile=quick

# Mutation testing (slow; not part of CI): the chat domain by default (226 mutants, about half an
# hour on 2 busy cores); `make mutate MUTANTS='semichat.harness.checker*'` for the checker (about
# 1,170 mutants: hours). Results accumulate in mutants/ and a rerun resumes; the tests each mutant
# runs are set in the [tool.mutmut] section of pyproject.toml.
MUTANTS ?= semichat.server.chat.service*
mutate: $(STAMP)
	$(PY) -m pip install --quiet -e ".[dev,mutate]"
	$(VENV)/bin/mutmut run --max-children 2 "$(MUTANTS)" || true
	$(VENV)/bin/mutmut results

# The committed sweeps behind the README's strategy table and the notebooks (about 25 minutes):
# every strategy under the chat load with and without AWS-like faults, and idle streams.
SWEEP_STRATEGIES := per_user_queue,preprovisioned,fifo,sharded,instance
sweep: $(STAMP)
	rm -rf benchmarks/results/sweeps/strategies benchmarks/results/sweeps/idle
	$(VENV)/bin/semichat sweep --scenario chat --routing $(SWEEP_STRATEGIES) --faults none,sqs \
		--users 9 --repeat 2 --duration 10 --prune --out benchmarks/results/sweeps/strategies -- --drain 6
	$(VENV)/bin/semichat sweep --scenario idle --routing $(SWEEP_STRATEGIES) --users 100 \
		--repeat 2 --duration 30 --prune --out benchmarks/results/sweeps/idle -- --active 0 --spawn-rate 25 --drain 4
	$(VENV)/bin/jupytext --sync notebooks/*.py
	$(VENV)/bin/papermill notebooks/strategies.ipynb /dev/null -k python3 --cwd notebooks

# JupyterLab on the notebooks (they read the committed sweeps by default).
lab: $(STAMP)
	$(VENV)/bin/jupyter lab notebooks

localstack:
	$(LOCALSTACK) start

localstack-stop:
	$(LOCALSTACK) stop

localstack-status:
	$(LOCALSTACK) status

# The CDK app (infra/cdk) synthesized into infra/cdk/cdk.out with cdk-nag's checks: the tables'
# stack and one compute stack per routing strategy x deployment pairing that can work, each
# other pairing refused in one line (docs/deploy.md). Fails on a finding that is neither fixed
# nor suppressed with a reason. Needs Node.js (jsii), not Docker.
synth: $(INFRA_STAMP)
	cd infra/cdk && ../../$(PY) app.py

# Files generated from semichat/aws/tables.py, iam.py and stack.py (the CDK app's stack); the
# tests fail when they are stale.
generated: $(INFRA_STAMP)
	$(VENV)/bin/semichat provision --print tables > localstack/tables.json
	$(VENV)/bin/semichat provision --print cloudformation > infra/cloudformation.json

clean:
	rm -rf $(VENV) .pytest_cache .ruff_cache mutants
