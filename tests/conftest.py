"""Test configuration: settings that catch mistakes early, and shared statistical checks."""

import os
import shutil
import tempfile

# Tests compile as a fresh machine does, and then share what they compiled: JAX's persistent
# compilation cache (on by default for users) goes to an empty folder made for this run, which
# the xdist workers and every subprocess a test starts inherit through the environment (set
# before infer is imported), and which is removed at the end. A program compiled in one test is
# loaded, not compiled again, by the next test or process that builds the same one. A cache
# folder or ``INFER_COMPILATION_CACHE=0`` already in the environment is left as it is.
_RUN_CACHE = None
if "INFER_COMPILATION_CACHE" not in os.environ:
    _RUN_CACHE = tempfile.mkdtemp(prefix="infer-tests-jax-cache-")
    os.environ["INFER_COMPILATION_CACHE"] = _RUN_CACHE
    os.environ.setdefault("JAX_PERSISTENT_CACHE_MIN_COMPILE_TIME_SECS", "0.1")

import jax  # noqa: E402
import pytest  # noqa: E402

import infer  # noqa: E402, F401  (loads NumPyro before any test module imports ArviZ)

# Implicit rank promotion hides shape bugs (diffrax and equinox do the same).
jax.config.update("jax_numpy_rank_promotion", "raise")

SEEDS = (0, 1, 2)


@pytest.fixture(
    params=[SEEDS[0], *(pytest.param(s, marks=pytest.mark.thorough) for s in SEEDS[1:])],
    ids=lambda seed: f"seed{seed}",
)
def seed(request):
    """Statistical tests run on several seeds: passing must not hinge on one. ``make test``
    runs the first (each seed of a check compiles the same programs, so the first costs most
    and ``make test`` keeps it), ``make test-thorough`` all three."""
    return request.param


# The heaviest groups first: ``--dist loadfile`` hands them to workers in collection order,
# so a long one started last would leave one worker running alone at the end.
HEAVY_FIRST = (  # groups, each named by a module (SHARED_PROGRAMS below), heaviest first
    "test_samplers.py",  # with test_docs.py: 60 s of a worker's time in `make test`
    "test_compare.py",
    "test_resume.py",
    "test_generative.py",
    "test_workflow.py",
    "test_plots.py",
    "test_bnn.py",
    "test_ars.py",
    "test_sbc.py",
    "test_distributed.py",  # its subprocesses' time is not the worker's own
)

# Modules that build the same programs run on one worker, one after the other: there the
# second finds them compiled in memory, where on two workers at once both would compile them.
# Every other module is a group of its own, as ``--dist loadfile`` makes it.
SHARED_PROGRAMS = {
    "test_driver.py": "test_resume.py",  # short_runs.py: one target, samplers and warm-up
    "test_docs.py": "test_samplers.py",  # NUTS and MALA on normal_10d (thorough tier's)
    "test_target_truths.py": "test_compare.py",  # NUTS on the funnel, 4 chains x 500
    "test_memory.py": "test_plots.py",  # NUTS on eight schools, 2 chains, default warm-up
    "test_save_load.py": "test_plots.py",
}


def _group(path: str) -> str:
    """The group of a test module, by its file name."""
    name = path.rsplit("/", 1)[-1]
    return SHARED_PROGRAMS.get(name, name)


def pytest_collection_modifyitems(config, items):
    def rank(item):
        name = _group(item.path.name)
        return HEAVY_FIRST.index(name) if name in HEAVY_FIRST else len(HEAVY_FIRST)

    items.sort(key=rank)  # stable: the order inside a module is kept


def pytest_xdist_make_scheduler(config, log):
    """``--dist loadfile`` with the modules of SHARED_PROGRAMS merged into one unit of work
    (xdist's ``loadgroup`` would do it with marks, but its nodeid suffix no longer reaches
    pytest 9.2's node ids)."""
    if config.getvalue("dist") != "loadfile":
        return None
    from xdist.scheduler import LoadScopeScheduling

    class SharedProgramsScheduling(LoadScopeScheduling):
        def _split_scope(self, nodeid: str) -> str:
            return _group(nodeid.split("::", 1)[0])

    return SharedProgramsScheduling(config, log)


def pytest_unconfigure(config):
    if _RUN_CACHE is not None:  # only the process that made the folder removes it
        shutil.rmtree(_RUN_CACHE, ignore_errors=True)
