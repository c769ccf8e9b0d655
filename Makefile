# Two entry points a newcomer needs: `make dev` (the whole stack) and `make test`.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed-stamp

.PHONY: venv test test-fast lint browser slurm docs dev bench clean

# Re-install whenever pyproject.toml changes; torch==2.13.0 resolves to the local CPU wheel.
$(STAMP): pyproject.toml
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -e '.[test]'
	touch $(STAMP)

venv: $(STAMP)

lint: venv
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .

# The dashboard's test drives headless Chromium (Debian package `chromium`); without it
# (no root, not Debian) that one test is skipped and says why.
browser:
	@command -v chromium >/dev/null || (apt-get update && apt-get install -y chromium) \
		|| echo "warning: could not install chromium; the dashboard's browser test will be skipped"

# The site's results pages are generated from benchmarks/results/*.json on every build;
# --strict turns a broken link or a missing page into a failure.
docs: venv
	DISABLE_MKDOCS_2_WARNING=true NO_MKDOCS_2_WARNING=1 $(BIN)/mkdocs build --strict

# The real-Slurm tests (tests/clusters) start an emulated cluster from Debian's Slurm 22.05
# packages; without them (no root, not Debian) those tests are skipped and say why.
SLURM_PACKAGES := slurmctld slurmd slurm-client munge
slurm:
	@(command -v slurmctld && command -v slurmd && command -v sbatch && command -v munged) >/dev/null \
		|| (apt-get update && DEBIAN_FRONTEND=noninteractive apt-get install -y $(SLURM_PACKAGES)) \
		|| echo "warning: could not install $(SLURM_PACKAGES); the Slurm tests will be skipped"

test: lint browser slurm docs
	$(BIN)/python -m pytest

# The inner loop: the unit tests, none that starts Temporal, trains with RLlib or breaks a
# stack (about 3 min on 2 cores). `make test` (what CI runs) still runs everything.
test-fast: venv
	$(BIN)/python -m pytest -m "not integration and not rl and not faults and not slurm"

dev: venv
	$(BIN)/rlsched dev

bench: venv
	$(BIN)/python benchmarks/env_throughput.py

clean:
	rm -rf $(VENV) .pytest_cache .ruff_cache site
