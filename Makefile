# Two commands matter on a fresh clone:  `make demo` (the main job) and `make test`.
# Both create .venv on first use and install the project into it.
PYTHON ?= python3.11
VENV := .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed

.PHONY: venv test test-fast demo bench bench-quick bench-peers lint clean

PLUGIN := plugins/avtoolkit-resnet

# The example plugin is installed too, so recipes that use `resnet18_3d` validate.
$(STAMP): pyproject.toml $(PLUGIN)/pyproject.toml
	@test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip install --quiet -e '.[test,landmarks]'
	$(PY) -m pip install --quiet --no-deps -e $(PLUGIN)
	@touch $(STAMP)

venv: $(STAMP)

## Runs the whole test suite (the command CI runs).
test: $(STAMP)
	$(PY) -m pytest -q

## Skips the few slow tests.
test-fast: $(STAMP)
	$(PY) -m pytest -q -m "not slow"

## The main job: synthesise the demo corpus, train and test both demo recipes, write a report.
demo: $(STAMP)
	$(VENV)/bin/avtoolkit demo --out demo_output

bench: $(STAMP)
	$(PY) benchmarks/run.py

bench-quick: $(STAMP)
	$(PY) benchmarks/run.py --quick

## pocketsphinx (an optional peer of this benchmark, never of the package) with GRID's grammar,
## on the grid_avasr test split and the noisy audio `avtoolkit noise-eval` scores it on.
GRID_ROOT ?= ../shared/data/grid_s1
bench-peers: $(STAMP)
	$(PY) -m pip install --quiet -r benchmarks/requirements-peers.txt
	$(PY) benchmarks/grid_pocketsphinx.py --root $(GRID_ROOT) --out benchmarks/results/grid_pocketsphinx

clean:
	rm -rf $(VENV) demo_output runs .pytest_cache
