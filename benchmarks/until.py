"""The cost of ``until=``'s convergence checks: padded statistics against one program per length.

A run with ``until=infer.converged(...)`` checks R-hat and bulk and tail ESS after every batch
of draws, over all draws so far. Unpadded, every check has a new length and compiles a new
program. Padded, one program serves every length up to its own: ``until=`` pads to
``max_samples`` when the draws are small enough (``chain_stats.summary_stats(...,
padded=max_samples)``), else to the next power of two (``padded=True``).

* ``checks``: the 15 checks of a run drawing 200 per chain at a time up to 3,000 (4 chains,
  10 parameters of AR(1) draws, float32), compile time included: padded to 3,000 (what
  ``until=`` does here), padded to powers of two, unpadded, and ``arviz_stats``'s ``rhat``
  and ``ess`` on the host (the anchor: what a user would call).
* ``run``: ``infer.sample(0, normal_10d, infer.rwmh(), num_samples=200,
  until=infer.converged(rhat=1.01, ess=2000, max_samples=3000))``, first call in a fresh
  process, with the padding on (as shipped) and off (the worker wraps ``summary_stats`` with
  ``padded=False``); it runs to ``max_samples``, so 15 checks either way.

Each measurement runs in a fresh process, imports done before the clock starts, with JAX's
persistent compilation cache off; the sides alternate over ``--pairs`` rounds and the medians
are reported. Results: ``benchmarks/results/until_<platform>.json``.

Run: ``python benchmarks/until.py [--pairs 2]`` (``--quick``: one round).
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from common import (  # noqa: E402
    RESULTS,
    ROOT,
    json_file,
    machine,
    positive_int,
    quick_or_given,
    run_json,
    write_result,
)

NUM_CHAINS, NUM_PARAMS, BATCH, MAX_SAMPLES = 4, 10, 200, 3000
SIDES = (
    "checks_padded",
    "checks_doubling",
    "checks_unpadded",
    "checks_arviz",
    "run_padded",
    "run_unpadded",
)
PADDING = {"checks_padded": MAX_SAMPLES, "checks_doubling": True, "checks_unpadded": False}


def ar1_draws():
    """(NUM_CHAINS, MAX_SAMPLES, NUM_PARAMS) float32 AR(1) draws, coefficient 0.9."""
    import numpy as np

    rng = np.random.default_rng(0)
    noise = rng.normal(size=(NUM_CHAINS, MAX_SAMPLES, NUM_PARAMS))
    x = np.empty_like(noise)
    x[:, 0] = noise[:, 0] / np.sqrt(1 - 0.81)
    for t in range(1, MAX_SAMPLES):
        x[:, t] = 0.9 * x[:, t - 1] + noise[:, t]
    return x.astype(np.float32)


def checks(side: str) -> dict:
    """Seconds for the 15 checks, and the smallest bulk ESS of the last (a sanity figure)."""
    draws = ar1_draws()
    lengths = range(BATCH, MAX_SAMPLES + 1, BATCH)
    if side == "checks_arviz":
        from arviz_stats.base import array_stats

        def check(x):
            params_first = x.transpose(2, 0, 1)
            array_stats.rhat(params_first)
            array_stats.ess(params_first, method="tail", prob=(0.05, 0.95))
            return array_stats.ess(params_first, method="bulk")
    else:
        import jax

        from infer import chain_stats

        def check(x):
            wanted = ("rhat", "ess_bulk", "ess_tail")
            stats = chain_stats.summary_stats(x, statistics=wanted, padded=PADDING[side])
            return jax.block_until_ready(stats)["ess_bulk"]

    start = time.perf_counter()
    for n in lengths:
        last = check(draws[:, :n])
    seconds = time.perf_counter() - start
    return {"seconds": seconds, "checks": len(lengths), "min_ess_bulk": float(min(last))}


def run(side: str) -> dict:
    """Seconds for the whole until= run, and where it stopped."""
    import warnings

    import infer
    from infer import chain_stats, convergence
    from models import targets

    if side == "run_unpadded":
        shipped = chain_stats.summary_stats

        def unpadded(*args, **kwargs):
            return shipped(*args, **{**kwargs, "padded": False})

        convergence.chain_stats = type("Unpadded", (), {"summary_stats": staticmethod(unpadded)})
    target = targets.get("normal_10d")
    rule = infer.converged(rhat=1.01, ess=2000, max_samples=MAX_SAMPLES)
    start = time.perf_counter()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        result = infer.sample(0, target, infer.rwmh(), num_samples=BATCH, until=rule)
    seconds = time.perf_counter() - start
    until = result.info["until"]
    return {"seconds": seconds, "stopped": until["stopped"], "num_draws": until["num_draws"]}


def worker(side: str) -> dict:
    os.environ["INFER_COMPILATION_CACHE"] = "off"
    sys.path.insert(0, str(ROOT))
    return checks(side) if side.startswith("checks") else run(side)


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument(
        "--pairs",
        type=positive_int,
        default=None,
        help="alternating rounds of every side (default 2; --quick: 1)",
    )
    parser.add_argument("--quick", action="store_true", help="one round")
    parser.add_argument("--out", type=json_file, default=None)
    parser.add_argument("--worker", choices=SIDES, help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.worker:
        print(json.dumps(worker(args.worker)))
        return 0
    pairs = quick_or_given(parser, args, "--pairs", 1, 2)
    runs = {side: [] for side in SIDES}
    print(f"until: {len(SIDES)} sides, {pairs} round(s), each side in a fresh process")
    for round_ in range(pairs):
        for side in SIDES:
            runs[side].append(run_json(Path(__file__), ["--worker", side]))
            print(f"  round {round_ + 1}, {side}: {runs[side][-1]['seconds']:.2f} s", flush=True)

    def median(side):
        return statistics.median(r["seconds"] for r in runs[side])

    record = {
        "machine": machine("arviz-stats", "arviz-base"),
        "quick": args.quick,
        "settings": {
            "num_chains": NUM_CHAINS,
            "num_params": NUM_PARAMS,
            "batch": BATCH,
            "max_samples": MAX_SAMPLES,
            "pairs": pairs,
            "run": "rwmh on normal_10d, until=converged(rhat=1.01, ess=2000, max_samples=3000)",
        },
        "runs": runs,
        "seconds": {side: median(side) for side in SIDES},
        "ratios": {
            "checks_padded_over_unpadded": median("checks_padded") / median("checks_unpadded"),
            "checks_doubling_over_unpadded": median("checks_doubling") / median("checks_unpadded"),
            "checks_padded_over_arviz": median("checks_padded") / median("checks_arviz"),
            "run_padded_over_unpadded": median("run_padded") / median("run_unpadded"),
        },
    }
    platform = record["machine"]["platform"]
    out = args.out or RESULTS / f"until_{platform}{'_quick' if args.quick else ''}.json"
    write_result(out, record)
    print(f"ratios: {json.dumps(record['ratios'])}\nwrote {out}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
