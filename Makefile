# The two commands of the README:
#   make reproduce   set up .venv (the library and its notebook tools), run the quick sweep on the synthetic
#                    GlaS-like set + report (figures/)
#   make test        set up .venv with the test and Ray extras too, lint (ruff) and type-check (mypy) the
#                    library and benchmarks, run the unit tests and re-execute the notebooks with nbval
PYTHON ?= python3
VENV ?= .venv
PY := $(VENV)/bin/python
PARAMS ?= params/quick.yaml
WORKERS ?= 2

.PHONY: setup setup-test reproduce lint test test-fast notebooks clean

setup: $(VENV)/.installed
setup-test: $(VENV)/.installed-test

# torch/torchvision come from the range in pyproject.toml (pip picks the newest build it may use).
# The main job needs the library only; the test and Ray extras (about 25 s more) come with the tests.
$(VENV)/.installed: pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip install --quiet -e .
	$(PY) -m ipykernel install --sys-prefix --name python3 --display-name "Python 3 (alseg)" > /dev/null
	touch $@

$(VENV)/.installed-test: $(VENV)/.installed
	$(PY) -m pip install --quiet -e ".[test,ray]"
	touch $@

reproduce: setup
	$(VENV)/bin/alseg reproduce $(PARAMS) --workers $(WORKERS)

# ruff and mypy read their settings (and mypy its file list) from pyproject.toml; tests/ and notebooks/ are not
# checked. They run first, so that a lint or type error fails fast, before the long test run.
lint: setup-test
	$(PY) -m ruff check alseg_utils benchmarks
	$(PY) -m mypy

test: lint
	$(PY) -m pytest -q -p no:cacheprovider tests
	$(PY) -m pytest -q -p no:cacheprovider --nbval notebooks --nbval-sanitize-with tests/nbval_sanitize.cfg

test-fast: setup-test
	$(PY) -m pytest -q -m "not slow" tests

# Re-execute the committed notebooks in place with their default (quick) parameters.
notebooks: setup
	$(PY) -m alseg_utils.notebooks execute notebooks

clean:
	rm -rf $(VENV) runs results data
