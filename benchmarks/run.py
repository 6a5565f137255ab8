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
to 10,000 chains), ``generative`` (training speed), and the long ones,
``generative_quality`` (trains every generative model on MNIST and digits: about an hour on
2 CPU cores) and ``ais_generative`` (AIS on the trained MNIST models, after
``generative_quality``).

Run: ``python benchmarks/run.py [--platform cpu|gpu] [--only NAME,...] [--skip NAME,...]
[--quick]``.
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
    "blocked_loop": [["blocked_loop.py"]],
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


def platform() -> str:
    import jax

    return jax.devices()[0].platform


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
    args = parser.parse_args(argv)
    found = platform()
    if args.platform and args.platform != found:
        print(f"asked for {args.platform} but JAX's default device is {found}", file=sys.stderr)
        return 2
    only = None if args.only is None else [n.strip() for n in args.only.split(",") if n.strip()]
    skip = [n.strip() for n in args.skip.split(",") if n.strip()]
    unknown = [n for n in (only or []) + skip if n not in SUITES]
    if unknown:  # a typo in --skip would otherwise run the suite it meant to leave out
        print(f"unknown suite(s) {unknown}; choose from {', '.join(SUITES)}", file=sys.stderr)
        return 2
    if only is not None and not only:
        print(
            "--only names no suite (an empty list); leave it out to run them all", file=sys.stderr
        )
        return 2
    names = [n for n in (only or list(SUITES)) if n not in skip]
    if not names:
        print("--only and --skip leave no suite to run", file=sys.stderr)
        return 2
    failed = []
    for name in names:
        if args.quick and name not in QUICK:
            print(f"== {name}: no quick mode, skipped")
            continue
        for command in SUITES[name]:
            extra = ["--quick"] if args.quick else []
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
    if not args.quick:
        subprocess.run([sys.executable, str(ROOT / "docs" / "tables.py")], cwd=ROOT, check=False)
    if failed:
        print(f"failed: {', '.join(failed)}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
