"""Cost of the diagnostics side: conversion to ArviZ, ``infer.compare``, progress bars.

* Converting 60 chains x 4,000 draws x 200 scalar parameters to an ArviZ ``DataTree``
  (``infer.Result.from_draws(...).to_arviz()``). Goal: under 5 s.
* ``infer.compare`` over four such runs (ESS bulk and tail, R-hat, MCSE), computed in JAX
  (the default; first call, compilation included, and again) and with ``arviz_stats``.
  Goal: under 10 s.
* Progress bars: NUTS on the logistic regression, 4 chains, with ``progress=True`` (bar
  written to a null stream) against ``progress=False``, alternating, median of repeats. Goal:
  within 5%. With ``progress=False`` the run is one compiled program per phase, exactly as
  without the feature.

Results go to ``benchmarks/results/diagnostics_<platform>.json``. JAX's persistent compilation
cache (which ``import infer`` turns on) is off here, so that a first call compiles as it does
on a fresh machine, not load what an earlier run of this script compiled.
"""

from __future__ import annotations

import argparse
import functools
import io
import json
import os
import statistics
import sys
import time
import warnings
from pathlib import Path

os.environ["INFER_COMPILATION_CACHE"] = "0"  # first calls compile (see above)

import jax  # noqa: E402
import numpy as np  # noqa: E402
from tqdm import tqdm  # noqa: E402

import infer  # noqa: E402
from models import targets  # noqa: E402

sys.path.insert(0, str(Path(__file__).resolve().parent))

from common import RESULTS, machine, write_result  # noqa: E402


def bench_conversion(shape, repeats):
    draws = np.random.default_rng(0).standard_normal(shape).astype(np.float32)
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        tree = infer.Result.from_draws({"theta": draws}).to_arviz()
        times.append(time.perf_counter() - start)
    assert tree["posterior"]["theta"].shape == shape
    seconds = statistics.median(times)
    print(f"  to DataTree, {shape}: {seconds:.3f} s", flush=True)
    return {"shape": list(shape), "seconds": seconds, "goal_seconds": 5.0}


def bench_compare(shape, num_runs):
    rng = np.random.default_rng(1)
    runs = {
        f"run{i}": infer.Result.from_draws(
            {"theta": rng.standard_normal(shape).astype(np.float32)},
            timing={"sampling": 1.0},
        )
        for i in range(num_runs)
    }
    seconds = {}
    for backend in ("jax", "jax_again", "arviz"):
        start = time.perf_counter()
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", infer.DiagnosticWarning)
            table = infer.compare(runs, statistics=backend.removesuffix("_again"))
        seconds[backend] = time.perf_counter() - start
        assert len(table) == num_runs
    print(
        f"  compare, {num_runs} runs of {shape}: JAX {seconds['jax']:.1f} s (again, compiled: "
        f"{seconds['jax_again']:.1f} s), ArviZ {seconds['arviz']:.1f} s",
        flush=True,
    )
    return {
        "shape": list(shape),
        "num_runs": num_runs,
        "seconds": seconds["jax"],
        "seconds_compiled": seconds["jax_again"],
        "arviz_seconds": seconds["arviz"],
        "goal_seconds": 10.0,
    }


class _CountingBar(tqdm):
    """tqdm that counts its updates (the run's pieces)."""

    updates = 0

    def update(self, n=1):
        _CountingBar.updates += 1
        return super().update(n)


def bench_progress(repeats, num_samples, num_warmup):
    target = targets.get("logistic_regression")
    sampler = infer.nuts()
    quiet_bar = functools.partial(_CountingBar, file=io.StringIO(), mininterval=0)
    kwargs = dict(num_chains=4, num_samples=num_samples, num_warmup=num_warmup)
    infer.sample(0, target, sampler, **kwargs)  # compile both variants
    infer.sample(0, target, sampler, progress=quiet_bar, **kwargs)
    off, on, updates = [], [], []
    for r in range(repeats):
        for bar in (False, True) if r % 2 == 0 else (True, False):  # each first in turn
            _CountingBar.updates = 0
            shown = dict(progress=quiet_bar) if bar else {}
            result = infer.sample(r, target, sampler, **shown, **kwargs)
            (on if bar else off).append(result.timing["total"])
            if bar:
                updates.append(_CountingBar.updates)
    row = {
        "target": "logistic_regression",
        "sampler": "nuts",
        **kwargs,
        "repeats": repeats,
        "seconds_progress_off": statistics.median(off),
        "seconds_progress_on": statistics.median(on),
        "bar_updates": statistics.median(updates),
        "median_of_paired_ratios": statistics.median(b / a for a, b in zip(off, on, strict=True)),
    }
    row["ratio_on_over_off"] = row["seconds_progress_on"] / row["seconds_progress_off"]
    print(
        f"  progress bar, NUTS 4 chains: off {row['seconds_progress_off']:.3f} s, on "
        f"{row['seconds_progress_on']:.3f} s ({row['bar_updates']} updates), ratio "
        f"{row['ratio_on_over_off']:.3f}",
        flush=True,
    )
    return row


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--quick", action="store_true", help="small sizes, for a smoke run")
    args = parser.parse_args(argv)
    quick = args.quick
    shape = (6, 400, 20) if quick else (60, 4000, 200)
    print(f"benchmarks/diagnostics.py on {jax.devices()[0]} ({'quick' if quick else 'full'})")
    conversion = bench_conversion(shape, repeats=3)
    comparison = bench_compare(shape, num_runs=4)
    # NUTS over four chains is step-latency bound on an accelerator: fewer, shorter repeats
    small = quick or jax.default_backend() != "cpu"
    progress = bench_progress(
        repeats=2 if small else 9,
        num_samples=200 if small else 2000,
        num_warmup=200 if small else 1000,
    )
    goals = {
        "conversion_under_5s": conversion["seconds"] < 5.0,
        "compare_four_runs_under_10s": comparison["seconds"] < 10.0,
        "progress_within_5_percent": progress["ratio_on_over_off"] <= 1.05,
    }
    record = {
        "machine": machine("arviz-stats", "arviz-base"),
        "quick": quick,
        "conversion": conversion,
        "compare": comparison,
        "progress": progress,
        "goals_met": goals,
    }
    name = f"diagnostics_{record['machine']['platform']}{'_quick' if quick else ''}.json"
    out = RESULTS / name
    write_result(out, record)
    judged = "(a quick run: not judged) " if quick else ""
    print(f"goals {judged}{json.dumps(goals)}\nwrote {out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
