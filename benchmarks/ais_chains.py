"""Annealed importance sampling over many chains: ``infer.ais`` on a conjugate Gaussian with
a known ``log Z`` (10 dimensions, 20 observations), 10 to 10,000 chains (``--max-chains``),
200 temperatures of 10 leapfrog steps. Reports seconds, gradient evaluations per second, the
estimate against the exact ``log Z`` and its standard error, and the weights' ESS. Many
chains is the work an accelerator is for; on a CPU the rate stops growing once the cores are
busy. Results: ``benchmarks/results/ais_chains_<platform>.json``.

Run: ``python benchmarks/ais_chains.py`` (``--quick``: up to 1,000 chains, 50 temperatures).
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

import infer
from models.targets import evidence

sys.path.insert(0, str(Path(__file__).resolve().parent))

from common import RESULTS, integer_at_least, machine, quick_or_given, write_result  # noqa: E402

COUNTS = (10, 100, 1000, 10_000)


def measure(problem, num_chains: int, num_temperatures: int) -> dict:
    kwargs = dict(num_chains=num_chains, num_temperatures=num_temperatures, num_leapfrog=10)
    infer.ais(0, problem.target, problem.prior, **kwargs)  # compile
    start = time.perf_counter()
    result = infer.ais(1, problem.target, problem.prior, **kwargs)
    seconds = time.perf_counter() - start
    row = {
        "num_chains": num_chains,
        "num_temperatures": num_temperatures,
        "seconds": seconds,
        "grads_per_s": result.num_grad_evals / seconds,
        "log_z": result.log_z,
        "log_z_se": result.log_z_se,
        "exact_log_z": problem.log_z,
        "ess": result.ess,
    }
    print(
        f"  {num_chains:>6} chains: {seconds:.2f} s, {row['grads_per_s']:.3e} grads/s, "
        f"log Z {result.log_z:.3f} ± {result.log_z_se:.3f} (exact {problem.log_z:.3f})",
        flush=True,
    )
    return row


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--quick", action="store_true")
    parser.add_argument(
        "--max-chains",
        type=integer_at_least(COUNTS[0]),
        default=None,
        help=f"the most chains of {', '.join(map(str, COUNTS))} (default {COUNTS[-1]}; "
        "--quick: 1000)",
    )
    args = parser.parse_args(argv)
    most = quick_or_given(parser, args, "--max-chains", 1000, COUNTS[-1])
    problem = evidence.conjugate_gaussian(0, dim=10, num_points=20)
    temperatures = 50 if args.quick else 200
    counts = [n for n in COUNTS if n <= most]
    rows = [measure(problem, n, temperatures) for n in counts]
    record = {
        "machine": machine(),
        "problem": "conjugate_gaussian(dim=10, num_points=20)",
        "num_leapfrog": 10,
        "rows": rows,
    }
    partial = not args.quick and most < COUNTS[-1]  # fewer rows than the committed run's
    if partial:
        record["max_chains"] = most
    kind = "_quick" if args.quick else "_partial" if partial else ""
    name = f"ais_chains_{record['machine']['platform']}{kind}.json"
    write_result(RESULTS / name, record)
    print(f"wrote {RESULTS / name}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
