# Two commands do everything on a fresh machine:
#   make run   — set up .venv (first time only) and run the workflow on the embedded default
#   make test  — set up .venv (first time only, with test extras) and run the test suite
PYTHON ?= python3.11
VENV := .venv
BIN := $(VENV)/bin
CORES ?= 2
STAMP := $(VENV)/.installed
TEST_STAMP := $(VENV)/.installed-test

.PHONY: run test test-slurm test-recovery lint clean-results help

help:
	@echo "make run    run the workflow on the embedded default (results/)"
	@echo "make test   run the test suite"
	@echo "make test-recovery   ground-truth recovery on synth seeds 2 and 3"
	@echo "make lint   ruff + snakemake --lint"

$(STAMP): pyproject.toml constraints.txt
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet --no-compile -c constraints.txt -e .
	@# pip byte-compiles on one core (about 50 s for torch & co.); compileall uses every core.
	@# Like pip, it skips the few files that are not Python 3 (vendored templates), hence || true.
	$(BIN)/python -m compileall -qq -j 0 $(VENV)/lib || true
	touch $(STAMP)

$(TEST_STAMP): $(STAMP)
	$(BIN)/python -m pip install --quiet --no-compile -c constraints.txt -e '.[test]'
	$(BIN)/python -m compileall -qq -j 0 $(VENV)/lib || true
	touch $(TEST_STAMP)

run: $(STAMP)
	$(BIN)/snakemake --cores $(CORES)
	$(BIN)/snakemake --cores $(CORES) --report results/report.html

test: $(TEST_STAMP)
	$(BIN)/ruff check src tests workflow benchmarks
	$(BIN)/python -m pytest -q -m "not slurm and not recovery"

# The tiny workflow through a real local SLURM (tests/slurm/; ~12 min: every job is an sbatch
# with its own Snakemake). CI runs it after `make test` (.ci/run starts SLURM first).
test-slurm: $(TEST_STAMP)
	$(BIN)/python -m pytest -q -m slurm tests/slurm

# Ground-truth recovery on synth seeds 2 and 3 (tests/test_recovery.py, marked `recovery`: two
# default-size runs, ~12 min on 2 idle cores). CI runs it after `make test-slurm`.
test-recovery: $(TEST_STAMP)
	$(BIN)/python -m pytest -q -m recovery tests/test_recovery.py

lint: $(TEST_STAMP)
	$(BIN)/ruff check src tests workflow benchmarks
	$(BIN)/snakemake --lint

clean-results:
	rm -rf results .snakemake
