# The two commands: `make run` and `make test`. Everything else is a step they take.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed
PACKAGES := shared services/identity services/profiles services/matching services/pilot_zones services/web deploy/cli

# The pages' and the mails' gettext catalogs, compiled whenever their .po changes (README: Languages).
CATALOGS := $(wildcard services/web/src/citypair_web/translations/*/LC_MESSAGES/messages.po \
	services/identity/src/citypair_identity/translations/*/LC_MESSAGES/messages.po)
COMPILED := $(CATALOGS:.po=.mo)

.PHONY: run run-cluster test test-unit test-integration test-e2e install lock lint bench clean

$(STAMP): requirements.lock $(foreach p,$(PACKAGES),$(p)/pyproject.toml)
	$(PYTHON) -c 'import sys; sys.exit("citypair needs Python >= 3.11") if sys.version_info < (3, 11) else None'
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --disable-pip-version-check -r requirements.lock
	$(BIN)/python -m pip install --quiet --disable-pip-version-check --no-deps --no-build-isolation $(foreach p,$(PACKAGES),-e $(p))
	touch $(STAMP)

%.mo: %.po $(STAMP)
	$(BIN)/pybabel compile -i $< -o $@

# The matching kernel compiled into numba's on-disk cache once (42 s alone on the 2-core machine) before any
# service starts: else every matching process started at once (the tests' first stacks) compiles it itself, and
# two such compiles beside the other services' starts outlast the stack's 60 s readiness wait.
KERNEL := $(VENV)/.kernel-compiled
$(KERNEL): services/matching/src/citypair_matching/scoring.py $(STAMP)
	$(BIN)/python -c 'from citypair_matching.core import compile_kernel; compile_kernel()'
	touch $(KERNEL)

install: $(STAMP) $(COMPILED) $(KERNEL)

run: install
	$(BIN)/citypair run

# Two replicas of each service, three clustered nats-servers, PostgreSQL (README: Scaling).
run-cluster: install
	$(BIN)/citypair run --replicas 2 --nats-cluster 3

# Two workers, a test file each at a time: most of a test's time is waiting on the processes it started, so two
# files at once fill the cores (15 min, not 25, on two cores). More workers would only queue on those cores.
# The cluster fault test runs alone afterwards: it kills replicas under a load of its own, and beside another
# worker's load a read in flight at the instant of a kill was cut once in four runs.
CLUSTER_TEST = tests/e2e/test_cluster.py
test: install
	$(BIN)/python -m pytest -p no:cacheprovider --durations=15 -n 2 --dist loadfile --no-loadscope-reorder \
		--ignore=$(CLUSTER_TEST)
	$(BIN)/python -m pytest -p no:cacheprovider $(CLUSTER_TEST)

test-unit: install
	$(BIN)/python -m pytest tests/unit

test-integration: install
	$(BIN)/python -m pytest tests/integration tests/contract

test-e2e: install
	$(BIN)/python -m pytest tests/e2e

bench: install
	$(BIN)/python tests/bench/slice.py

lint: install
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .

# Re-pin every dependency (needs network to PyPI).
lock:
	$(BIN)/python -m pip install --quiet uv && $(BIN)/uv pip compile requirements.in -o requirements.lock --python-version 3.11

clean:
	rm -rf $(VENV) var
