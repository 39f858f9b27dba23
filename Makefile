# The compendium's entry points. A newcomer needs two:
#   make reproduce   set up, fetch the data, and regenerate every result and paper/main.pdf
#   make test        set up, and run the unit tests, ruff, and the notebooks under nbval
SHELL := /bin/bash
VENV ?= .venv
BIN := $(VENV)/bin
export PATH := $(abspath $(BIN)):$(PATH)
export DVC_NO_ANALYTICS := 1
# The offline mirror of public files beside the repository (CI's and this project's machines);
# without it, `amcf data fetch` downloads from the official URLs. Absolute, because tests and
# stages run from other directories.
AMCF_DATA_MIRROR ?= $(abspath $(wildcard ../shared/data))
export AMCF_DATA_MIRROR
PYTEST_WORKERS ?= 2
# the active profile (params.yaml's `profile:`); its results live in results/$(PROFILE)/
PROFILE := $(shell sed -n 's/^profile: *//p' params.yaml)

.PHONY: setup tex os-data data inputs reproduce reproduce-clock test unit notebooks lint lab clean-scratch chaos \
	cluster-check bench gpu-check timings paper-setup rehearsal numerics-check install-check \
	draws-check

$(VENV)/.installed: pyproject.toml
	python3 -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade-strategy only-if-needed -e '.[dev]'
	touch $@

setup: $(VENV)/.installed

# pdflatex builds paper/main.pdf; Debian's TeX Live is installed when missing and we are root.
tex:
	@command -v latexmk >/dev/null && command -v pdflatex >/dev/null || { \
	  if [ "$$(id -u)" = 0 ] && command -v apt-get >/dev/null; then \
	    DEBIAN_FRONTEND=noninteractive apt-get update -qq && \
	    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends \
	      texlive-latex-base texlive-latex-recommended texlive-fonts-recommended lmodern latexmk \
	      >/dev/null; \
	  else \
	    echo "paper/main.pdf needs pdflatex and latexmk: install TeX Live (Debian/Ubuntu:" \
	         "sudo apt-get install texlive-latex-recommended texlive-fonts-recommended latexmk)"; \
	    exit 1; \
	  fi; }

# Offline (CI, this project's machines) the fashion target's files come from Debian's
# dataset-fashion-mnist, which the mirror does not hold: installed when missing and we are root
# (a failed install is no error here: the fetch then says what to fetch and where to put it;
# the unit tests that read the files skip, saying so).
os-data:
	@[ "$$(id -u)" != 0 ] || ! command -v apt-get >/dev/null || dpkg -s dataset-fashion-mnist \
	  >/dev/null 2>&1 || { DEBIAN_FRONTEND=noninteractive apt-get update -qq && \
	  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq dataset-fashion-mnist >/dev/null \
	  || true; }

data: setup os-data
	$(BIN)/amcf data fetch

# What the notebooks' default parameters read: the prepared datasets and the source models.
inputs: data
	$(BIN)/dvc repro prepare pretrain

# The CPU and params.yaml are checked first, so a CPU that cannot give the committed bits
# (amcf/numerics.py) or a bad value stops the run in a second, not hours in.
# --force: every stage runs, even where dvc.lock already matches (a fresh clone), so this
# regenerates every committed result rather than only checking it; `dvc repro` alone reruns
# only what changed.
# The run times itself from reproduce-clock, which make runs before the set-up, so the set-up
# counts when it runs (build/timings/reproduce.json, never a result); `make timings` commits
# that time, which the paper cites, while the results match.
reproduce: reproduce-clock setup
	$(BIN)/amcf numerics check
	$(BIN)/amcf params check
	$(MAKE) tex data
	$(BIN)/dvc repro --force
	$(BIN)/amcf timings reproduce --since build/timings/reproduce.started \
	  --results results/$(PROFILE) --timings build/timings
	@echo "Every result is regenerated; the paper is paper/main.pdf"

reproduce-clock:
	@mkdir -p build/timings && echo "$$(date +%s.%N) $$([ -e $(VENV)/.installed ] && echo 0 \
	  || echo 1)" > build/timings/reproduce.started

lint: setup
	$(BIN)/ruff check .

unit: setup tex os-data
	$(BIN)/pytest -n $(PYTEST_WORKERS) tests

# nbval re-executes each notebook and compares the cells marked NBVAL_CHECK_OUTPUT with a
# reference run (committed notebooks carry no outputs to compare with). The scratch area is
# emptied in between, so the second run recomputes instead of reading cached runs.
notebooks: inputs
	rm -rf build/nbval build/scratch && mkdir -p build/nbval
	for nb in notebooks/*.ipynb; do $(BIN)/amcf notebook $$nb build/nbval/$$(basename $$nb) || exit 1; done
	rm -rf build/scratch
	$(BIN)/pytest -p no:cacheprovider --nbval-lax --nbval-current-env build/nbval

test: lint unit notebooks

# the kernels inherit the numerical policy (each notebook's first cell applies it too)
lab: setup
	$(BIN)/amcf numerics run $(BIN)/jupyter lab $$([ "$$(id -u)" = 0 ] && echo --allow-root)

# SIGKILL random stages of the embedded default at random moments (seeded), rerun them, and
# check that their results equal an uninterrupted run's; prints the kills survived and the
# time lost. Runs in a clone under build/chaos/ after `make inputs`; long (about twice the
# stages it kills). A shorter one: $(BIN)/python benchmarks/chaos.py --targets digits
CHAOS_ARGS ?= --targets all --kills 10 --kinds search amcf baselines ablations report
chaos: inputs
	$(BIN)/python benchmarks/chaos.py $(CHAOS_ARGS)

# `pip install .` alone (no extras) in a fresh venv: the README's own-code example runs and the
# compendium's dependencies are absent (about a minute; CI runs it as its own step)
install-check:
	bash scripts/install-check

# Ray: the searches and one target's amcf@, baselines@ and ablations@ stages (their fan-out
# included) through a local Ray on 2 CPUs, in a scratch copy (build/cluster-check); their
# results must equal this checkout's, the sequential run's, apart from timings.
CLUSTER_TARGET ?= digits
cluster-check: setup
	bash scripts/cluster-check $(CLUSTER_TARGET) 2

# Issue 20: the primary comparison under a fresh, disjoint set of draws (sources pretrained
# under other seeds, other searches, other training seeds), beside this checkout's; about 14
# minutes on 2 cores, in a scratch copy (build/draws-check); writes build/draws-check.json.
draws-check: setup
	$(BIN)/python -m scripts.draws_check --out build/draws-check.json

# The numerical policy (docs/numerics.md) under another vendor's CPU: a tiny real pipeline
# here and under qemu-user's emulated AMD EPYC must give the same bytes (about 5 minutes);
# Debian's qemu-user is installed when missing and we are root.
numerics-check: setup
	@command -v qemu-x86_64 >/dev/null || { \
	  if [ "$$(id -u)" = 0 ] && command -v apt-get >/dev/null; then \
	    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq qemu-user >/dev/null || { \
	      apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq qemu-user \
	      >/dev/null; }; \
	  else echo "make numerics-check needs qemu-x86_64 (sudo apt-get install qemu-user)"; exit 1; fi; }
	$(BIN)/python benchmarks/numerics.py emulated EPYC-Rome

# Wall times are no part of the results, so a rerun leaves `git status` clean: every run keeps
# its time in build/timings/ (uncommitted). This deliberate step writes their summary,
# results/<profile>/timings.csv, which the paper's cost columns read, and rebuilds report and paper;
# commit what it changed.
timings: setup
	$(BIN)/amcf timings record --results results/$(PROFILE) --timings build/timings
	$(BIN)/dvc repro paper

# ---- speed (issue 9): amcf against the authors' loop, side by side ----------------------
# bench: CPU, the embedded default (needs `make inputs`), < 5 min on 2 cores.
# gpu-check: one CUDA GPU, the paper profile's files path and trainer, < 5 min; writes the
# measured rates and GPU-hours to benchmarks/gpu-check.json and docs/gpu-check.md (commit
# them); stops at once without a CUDA device.
bench: inputs
	$(BIN)/amcf bench --out build/bench.json

gpu-check: setup
	timeout 300 $(BIN)/python benchmarks/gpu_check.py

# --- the paper profile ------------------------------------------------------------------
# What a fresh GPU machine needs before `dvc repro` of profiles/paper.yaml: the venv, and TeX
# for the last stage (`paper` runs latexmk).
paper-setup: setup tex

# The paper profile end to end at toy size (profiles/rehearsal.yaml): miniature archives in
# the official formats served from 127.0.0.1, stand-in hub weights, every stage through
# `amcf cluster-run`, the PDF. It runs in a copy of this checkout (build/rehearsal/repo),
# without data/ as a fresh clone, so dvc.lock and results/ here are untouched.
rehearsal: setup tex
	$(BIN)/python -m scripts.rehearsal.run --out build/rehearsal
