"""Adaptive rejection sampling next to SciPy's UNU.RAN ``TransformedDensityRejection`` (TDR,
the closest thing users have: also a hull of tangents, built at set-up) on the same densities.

For each of N(0, 1), Gamma(3), Beta(2, 5) and N(0.5, 1) truncated to (0, 2): accepted draws
per second of ``infer.sample(..., infer.ars(domain=...), num_chains=C, ...)`` (its sampling
phase, and the whole call) against ``TransformedDensityRejection(...).rvs(n)`` (set-up
excluded), with the same number of draws; the first call's seconds and the compilation in
them (the persistent compilation cache off, as on a fresh machine) against TDR's set-up; the
density evaluations per draw (computed, and needed: what the squeeze could not spare); and
the hull's size. Goal: >= 1.0x on one core. Each mode runs in its own process: ``one_core``
pins both libraries to one core (``taskset``), ``machine`` lets XLA use every core while SciPy
stays single-threaded, and ``two_devices`` splits the CPU into two XLA devices, chains sharded
over them. Medians over repeats that alternate the two libraries. infer draws float32, SciPy
float64.

Results go to ``benchmarks/results/ars_<platform>.json``.
Run: ``python benchmarks/ars.py`` (``--quick`` for a smoke run).
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import time
from pathlib import Path

import jax
import jax.numpy as jnp
import numpy as np

import infer

sys.path.insert(0, str(Path(__file__).resolve().parent))

from common import (  # noqa: E402
    RESULTS,
    cores_in_use,
    machine,
    modes,
    positive_int,
    precision,
    quick_or_given,
    run_json,
    write_result,
)

INF = float("inf")


class _Density:
    """What UNU.RAN's TDR takes: pdf and its derivative, up to a constant."""

    def __init__(self, pdf, dpdf):
        self.pdf, self.dpdf = pdf, dpdf


# name: (log density for infer, domain, SciPy pdf, SciPy dpdf)
DENSITIES = {
    "normal": (
        lambda x: -0.5 * x**2,
        (-INF, INF),
        lambda x: np.exp(-0.5 * x * x),
        lambda x: -x * np.exp(-0.5 * x * x),
    ),
    "gamma_3": (
        lambda x: 2.0 * jnp.log(x) - x,
        (0.0, INF),
        lambda x: x * x * np.exp(-x),
        lambda x: (2.0 * x - x * x) * np.exp(-x),
    ),
    "beta_2_5": (
        lambda x: jnp.log(x) + 4.0 * jnp.log1p(-x),
        (0.0, 1.0),
        lambda x: x * (1.0 - x) ** 4,
        lambda x: (1.0 - x) ** 4 - 4.0 * x * (1.0 - x) ** 3,
    ),
    "truncated_normal": (
        lambda x: -0.5 * (x - 0.5) ** 2,
        (0.0, 2.0),
        lambda x: np.exp(-0.5 * (x - 0.5) ** 2),
        lambda x: -(x - 0.5) * np.exp(-0.5 * (x - 0.5) ** 2),
    ),
}


def bench(name: str, num_draws: int, repeats: int) -> dict:
    from scipy.stats.sampling import TransformedDensityRejection

    logdensity_fn, domain, pdf, dpdf = DENSITIES[name]
    num_chains = len(jax.devices())
    target = infer.Target(logdensity_fn, init=jnp.asarray(0.5), name=name)
    sampler = infer.ars(domain=domain)
    per_chain = num_draws // num_chains
    start = time.perf_counter()
    tdr = TransformedDensityRejection(
        _Density(pdf, dpdf), domain=domain, random_state=np.random.default_rng(0)
    )
    tdr_setup = time.perf_counter() - start
    tdr.rvs(1000)
    start = time.perf_counter()
    first = infer.sample(0, target, sampler, num_chains=num_chains, num_samples=per_chain)
    first_call = time.perf_counter() - start
    ours, ours_total, theirs = [], [], []
    for r in range(repeats):
        result = infer.sample(r, target, sampler, num_chains=num_chains, num_samples=per_chain)
        ours.append(num_draws / result.timing["sampling"])
        ours_total.append(num_draws / result.timing["total"])
        start = time.perf_counter()
        tdr.rvs(num_draws)
        theirs.append(num_draws / (time.perf_counter() - start))
    row = {
        "density": name,
        "domain": list(domain),
        "num_draws": num_draws,
        "devices": num_chains,
        "infer_draws_per_s": statistics.median(ours),
        "infer_draws_per_s_whole_call": statistics.median(ours_total),
        "infer_first_call_s": first_call,
        "infer_compile_s": first.timing["compile"],
        "scipy_tdr_draws_per_s": statistics.median(theirs),
        "scipy_tdr_setup_s": tdr_setup,
        "density_evaluations_per_draw": result.info["density_evaluations_per_draw"],
        "density_evaluations_needed_per_draw": result.info["density_evaluations_needed_per_draw"],
        "acceptance_rate": result.info["acceptance_rate"],
        "hull_points": result.info["hull_points"],
        "scipy_tdr_squeeze_hat_ratio": float(tdr.squeeze_hat_ratio),
    }
    row["ratio"] = row["infer_draws_per_s"] / row["scipy_tdr_draws_per_s"]
    print(
        f"  {name:17s} {num_chains} device(s): infer {row['infer_draws_per_s']:.3e}/s "
        f"(whole call {row['infer_draws_per_s_whole_call']:.3e}/s)  scipy TDR "
        f"{row['scipy_tdr_draws_per_s']:.3e}/s  ratio {row['ratio']:.2f}  evaluations/draw "
        f"{row['density_evaluations_per_draw']:.4f}, hull {row['hull_points']} points",
        flush=True,
    )
    return row


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--quick", action="store_true", help="small sizes, for a smoke run")
    parser.add_argument("--repeats", type=positive_int, default=None, help="default 5; --quick: 2")
    parser.add_argument(
        "--num-draws", type=positive_int, default=None, help="default 2,000,000; --quick: 100,000"
    )
    parser.add_argument("--rows-only", action="store_true", help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.num_draws is None:
        num_draws = 100_000 if args.quick else 2_000_000
    else:
        num_draws = args.num_draws
    repeats = quick_or_given(parser, args, "--repeats", 2, 5)
    if args.rows_only:  # a measuring subprocess: one JSON line on stdout
        jax.config.update("jax_enable_compilation_cache", False)  # first calls compile
        rows = [bench(name, num_draws, repeats) for name in DENSITIES]
        for row in rows:
            row["cores"] = cores_in_use()
        print(json.dumps(rows))
        return 0
    print(f"benchmarks/ars.py on {jax.devices()[0].platform}, {num_draws} draws per run")
    rows = []
    for mode in modes():
        print(f" {mode}:", flush=True)
        part = run_json(
            Path(__file__),
            ["--rows-only", "--num-draws", str(num_draws), "--repeats", str(repeats)],
            mode,
        )
        rows += [{**row, "mode": mode} for row in part]
    record = {
        "machine": machine("scipy"),
        "goal": "infer_draws_per_s / scipy_tdr_draws_per_s >= 1.0 on one core",
        "modes": {
            "one_core": "both libraries pinned to one core (taskset)",
            "machine": "infer on every core (one XLA device), SciPy single-threaded",
            "two_devices": "the CPU split into two XLA devices, chains sharded; SciPy "
            "single-threaded",
        },
        "precision": f"infer draws {precision()}, SciPy float64",
        "rows": rows,
        "goal_met": {r["density"]: r["ratio"] >= 1.0 for r in rows if r["mode"] == "one_core"},
    }
    path = RESULTS / f"ars_{record['machine']['platform']}{'_quick' if args.quick else ''}.json"
    write_result(path, record)
    print(f"wrote {path}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
