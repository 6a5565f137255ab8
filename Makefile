# Two commands a person needs: `make demo` and `make test`. Both build .venv on first use.
# `make test-fast` skips the long statistical runs; `make bench` rewrites every benchmark
# result and the docs' tables from them.
PY ?= python3
VENV := .venv
STAMP := $(VENV)/.installed-stamp
BENCH_STAMP := $(VENV)/.bench-stamp
# uv (installed into the venv by pip) resolves and installs the same releases as pip, in a
# third of the time (18 s against 50 s for the test set here); pip does it where uv fails.
# Both write the packages' bytecode at install time: where PYTHONDONTWRITEBYTECODE is set (as
# on these machines), Python never writes it itself, and every process (each test worker and
# subprocess, each command) would compile jax, numpyro, scipy and arviz from source again,
# about 12 s each here.
INSTALL = install() { $(VENV)/bin/python -m pip install -q uv \
	&& $(VENV)/bin/uv pip install -q --compile-bytecode --python $(VENV)/bin/python "$$@" \
	|| $(VENV)/bin/python -m pip install -q "$$@"; }; install

.PHONY: demo test test-fast test-thorough bench bench-quick lint docs clean

$(STAMP): pyproject.toml
	@$(PY) -c 'import sys; v = sys.version_info; sys.exit(0 if v >= (3, 12) else f"infer needs Python >= 3.12 but {sys.executable} is {v.major}.{v.minor}; install 3.12 (e.g. pyenv install 3.12) or run make PY=/path/to/python3.12")'
	$(PY) -m venv $(VENV)
	$(INSTALL) -e '.[test,dev]'
	@touch $(STAMP)

# The anchor libraries (BlackJAX, inference-gym, TFP) only the benchmarks import.
$(BENCH_STAMP): $(STAMP)
	$(INSTALL) -e '.[bench]'
	@touch $(BENCH_STAMP)

demo: $(STAMP)
	$(VENV)/bin/infer compare

# `make test` and `make test-fast` have XLA's CPU backend run LLVM at optimisation level 0
# (XLA's default is 3): the same programs compile in far less time (on a 2-core AMD EPYC
# the same tests took 510 s at level 0, 554 s at 1 and 692 s at 3). Tests that spawn
# Python add their own flags to these. At level 0 a blocked loop's draws differ in their
# last bits from the plain loop's (they are equal at levels 1 and 3), so the test of that
# runs in a Python of its own at the default level; `make test-thorough` compiles at the
# default level throughout, as users' programs are.
FAST_COMPILE = XLA_FLAGS="$(XLA_FLAGS) --xla_backend_optimization_level=0"

test: $(STAMP)
	$(FAST_COMPILE) $(VENV)/bin/python -m pytest -q -n 2 --dist loadfile -m "not thorough"

test-fast: $(STAMP)
	$(FAST_COMPILE) $(VENV)/bin/python -m pytest -q -n 2 --dist loadfile -m "not slow and not thorough"

test-thorough: $(STAMP)
	$(VENV)/bin/python -m pytest -q -n 2 --dist loadfile

bench: $(BENCH_STAMP)
	$(VENV)/bin/python benchmarks/run.py

bench-quick: $(BENCH_STAMP)
	$(VENV)/bin/python benchmarks/run.py --quick

lint: $(STAMP)
	$(VENV)/bin/ruff check . && $(VENV)/bin/ruff format --check .

docs: $(STAMP)
	$(VENV)/bin/mkdocs build --strict --site-dir site

clean:
	rm -rf $(VENV) infer-output site
