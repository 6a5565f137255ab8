"""Speed of infer's samplers next to the libraries users would otherwise pick, in one process.

* RWMH: chain-steps per second of the sampling phase with 1, 64 and 1024 chains, on the 10-D
  standard normal and the breast-cancer logistic regression, against BlackJAX's ``rmh`` with
  the same Gaussian random-walk proposal and step size, run in BlackJAX's documented loop
  (``lax.scan`` over ``vmap``-ed steps), keeping the same outputs (positions, log density,
  acceptance probability and decision), copied to host memory (``jax.device_get``) as
  ``infer.sample``'s are: next to free on a CPU, part of a run's cost on an accelerator.
  Goal: >= 1.0x at every chain count.
* NUTS, one chain, logistic regression: gradient evaluations per second of sampling against
  BlackJAX's NUTS after its window adaptation, its draws copied to the host as above
  (goal >= 0.9x); and the wall time of a repeated ``infer.sample`` call with the same
  shapes over its warm-up plus sampling time (goal <= 1.2x, i.e. no recompilation).
* Rejection, Beta(2, 5): accepted draws per second against SciPy's
  ``TransformedDensityRejection`` on the same density, each mode in its own process: both
  pinned to one core (goal >= 1.0x), infer on the whole machine (one XLA device, a thread
  per core) and with the CPU split into two XLA devices, chains sharded over them; SciPy is
  single-threaded in every mode. infer draws float32, SciPy float64.

Each measurement is repeated and the median is reported, the two libraries alternating;
BlackJAX's NUTS is adapted once, with key 0, where infer warms up in every repeat.
Results go to ``benchmarks/results/samplers_<platform>.json``.

Run: ``python benchmarks/samplers.py`` (``--quick`` for a smoke run).
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
from models import targets

sys.path.insert(0, str(Path(__file__).resolve().parent))

from common import (  # noqa: E402
    RESULTS,
    cores_in_use,
    json_file,
    machine,
    modes,
    positive_int,
    precision,
    quick_or_given,
    run_json,
    write_result,
)


def _median(values):
    return float(statistics.median(values))


# ----------------------------------------------------------------------------- RWMH


def blackjax_rmh_runner(logdensity_fn, step_size, num_chains, num_steps):
    """BlackJAX's rmh with a Gaussian random walk, in the loop its docs use."""
    import blackjax

    def proposal(rng_key, position):
        flat, unravel = jax.flatten_util.ravel_pytree(position)
        return unravel(flat + step_size * jax.random.normal(rng_key, flat.shape, flat.dtype))

    algorithm = blackjax.rmh(logdensity_fn, proposal)

    @jax.jit
    def run(rng_key, positions):
        states = jax.vmap(algorithm.init)(positions)

        def one_step(states, key):
            keys = jax.random.split(key, num_chains)
            states, infos = jax.vmap(algorithm.step)(keys, states)
            return states, (
                states.position,
                states.logdensity,
                infos.acceptance_rate,
                infos.is_accepted,
            )

        _, trace = jax.lax.scan(one_step, states, jax.random.split(rng_key, num_steps))
        return trace

    return run


def bench_rwmh(target_name, step_size, chain_counts, steps_for, repeats):
    target = targets.get(target_name)
    rows = []
    for num_chains in chain_counts:
        num_steps = steps_for(num_chains)
        positions = jax.tree.map(
            lambda leaf, n=num_chains: jnp.broadcast_to(leaf, (n, *leaf.shape)), target.init
        )
        sampler = infer.rwmh(step_size=step_size)
        run_blackjax = blackjax_rmh_runner(target.logdensity_fn, step_size, num_chains, num_steps)
        jax.block_until_ready(run_blackjax(jax.random.key(0), positions))  # compile
        infer.sample(
            0,
            target,
            sampler,
            num_chains=num_chains,
            num_samples=num_steps,
            num_warmup=0,
            init=positions,
        )  # compile
        ours, ours_whole, theirs = [], [], []
        for r in range(repeats):
            start = time.perf_counter()
            result = infer.sample(
                r,
                target,
                sampler,
                num_chains=num_chains,
                num_samples=num_steps,
                num_warmup=0,
                init=positions,
            )
            ours_whole.append(num_chains * num_steps / (time.perf_counter() - start))
            ours.append(num_chains * num_steps / result.timing["sampling"])
            start = time.perf_counter()
            jax.device_get(run_blackjax(jax.random.key(r), positions))  # on the host, as ours
            theirs.append(num_chains * num_steps / (time.perf_counter() - start))
        row = {
            "target": target_name,
            "num_chains": num_chains,
            "num_steps": num_steps,
            "step_size": step_size,
            "infer_chain_steps_per_s": _median(ours),
            # the wall time of the whole infer.sample call (checks, start, result), as
            # BlackJAX's rate is its whole jitted call's
            "infer_chain_steps_per_s_whole_call": _median(ours_whole),
            "blackjax_chain_steps_per_s": _median(theirs),
        }
        row["ratio"] = row["infer_chain_steps_per_s"] / row["blackjax_chain_steps_per_s"]
        row["ratio_whole_call"] = (
            row["infer_chain_steps_per_s_whole_call"] / row["blackjax_chain_steps_per_s"]
        )
        rows.append(row)
        print(
            f"  rwmh {target_name:20s} chains={num_chains:5d}  infer "
            f"{row['infer_chain_steps_per_s']:.3e}/s  blackjax "
            f"{row['blackjax_chain_steps_per_s']:.3e}/s  ratio {row['ratio']:.2f} (whole "
            f"call {row['ratio_whole_call']:.2f})",
            flush=True,
        )
    return rows


# ----------------------------------------------------------------------------- NUTS


def bench_nuts(num_samples, num_warmup, repeats):
    import blackjax

    target = targets.get("logistic_regression")
    sampler = infer.nuts()
    infer.sample(
        0, target, sampler, num_chains=1, num_samples=num_samples, num_warmup=num_warmup
    )  # compile

    adaptation = blackjax.window_adaptation(blackjax.nuts, target.logdensity_fn)
    (state, parameters), _ = adaptation.run(jax.random.key(0), target.init, num_steps=num_warmup)
    kernel = blackjax.nuts(target.logdensity_fn, **parameters)

    @jax.jit
    def run(rng_key, state):
        def one_step(state, key):
            state, info = kernel.step(key, state)
            return state, (state.position, info.num_integration_steps, info.is_divergent)

        return jax.lax.scan(one_step, state, jax.random.split(rng_key, num_samples))[1]

    jax.block_until_ready(run(jax.random.key(1), state))
    ours, theirs, repeat_ratio, our_steps, their_steps = [], [], [], [], []
    for r in range(repeats):  # alternating: a drift in the machine's speed hits both
        result = infer.sample(
            100 + r, target, sampler, num_chains=1, num_samples=num_samples, num_warmup=num_warmup
        )
        ours.append(float(result.stats["n_steps"].sum()) / result.timing["sampling"])
        our_steps.append(float(result.stats["n_steps"].mean()))
        pure = result.timing["warmup"] + result.timing["sampling"]
        repeat_ratio.append(result.timing["total"] / pure)
        start = time.perf_counter()
        _, steps, _ = jax.device_get(run(jax.random.key(100 + r), state))  # as infer's
        theirs.append(float(np.sum(steps)) / (time.perf_counter() - start))
        their_steps.append(float(np.mean(steps)))
    row = {
        "target": "logistic_regression",
        "num_chains": 1,
        "num_samples": num_samples,
        "num_warmup": num_warmup,
        "infer_grads_per_s": _median(ours),
        "blackjax_grads_per_s": _median(theirs),
        "repeat_call_over_pure_time": _median(repeat_ratio),
        # gradients per draw: each library's own warm-up picks its step size, so the trees
        # (and the per-tree share of the cost) differ
        "infer_gradients_per_draw": _median(our_steps),
        "blackjax_gradients_per_draw": _median(their_steps),
    }
    row["ratio"] = row["infer_grads_per_s"] / row["blackjax_grads_per_s"]
    print(
        f"  nuts logistic_regression  infer {row['infer_grads_per_s']:.3e} grads/s  blackjax "
        f"{row['blackjax_grads_per_s']:.3e}  ratio {row['ratio']:.2f}  repeated call "
        f"{row['repeat_call_over_pure_time']:.3f}x pure time",
        flush=True,
    )
    return row


# ----------------------------------------------------------------------------- rejection


class _Beta25:
    """Beta(2, 5) up to a constant, as UNU.RAN's TDR wants it (pdf and its derivative)."""

    def pdf(self, x):
        return x * (1.0 - x) ** 4

    def dpdf(self, x):
        return (1.0 - x) ** 4 - 4.0 * x * (1.0 - x) ** 3


def bench_rejection(num_draws, repeats, num_chains=1):
    import numpyro.distributions as dist
    from scipy.stats.sampling import TransformedDensityRejection

    target = targets.get("beta_2_5")
    step = infer.rejection(target.rejection_proposal, log_envelope=target.notes["log_envelope"])
    uniform = infer.rejection(dist.Uniform(0.0, 1.0))
    tdr = TransformedDensityRejection(
        _Beta25(), domain=(0.0, 1.0), random_state=np.random.default_rng(0)
    )
    tdr.rvs(1000)
    per_chain = num_draws // num_chains
    for sampler in (step, uniform):
        infer.sample(0, target, sampler, num_chains=num_chains, num_samples=per_chain)  # compile
    ours, ours_total, ours_uniform, theirs = [], [], [], []
    for r in range(repeats):
        result = infer.sample(r, target, step, num_chains=num_chains, num_samples=per_chain)
        ours.append(num_draws / result.timing["sampling"])
        ours_total.append(num_draws / result.timing["total"])
        result_uniform = infer.sample(
            r, target, uniform, num_chains=num_chains, num_samples=per_chain
        )
        ours_uniform.append(num_draws / result_uniform.timing["sampling"])
        start = time.perf_counter()
        tdr.rvs(num_draws)
        theirs.append(num_draws / (time.perf_counter() - start))
    row = {
        "target": "beta_2_5",
        "num_draws": num_draws,
        "devices": len(jax.devices()),
        "num_chains": num_chains,
        "proposal": "256-piece step envelope (infer.envelopes.piecewise_constant)",
        "acceptance_rate": result.info["acceptance_rate"],
        "infer_draws_per_s": _median(ours),
        "infer_draws_per_s_whole_call": _median(ours_total),
        "infer_uniform_proposal_draws_per_s": _median(ours_uniform),
        "uniform_proposal_acceptance_rate": result_uniform.info["acceptance_rate"],
        "scipy_tdr_draws_per_s": _median(theirs),
        "note": f"infer draws {precision()}, SciPy float64",
    }
    row["ratio"] = row["infer_draws_per_s"] / row["scipy_tdr_draws_per_s"]
    print(
        f"  rejection beta(2,5) on {len(jax.devices())} device(s)  infer "
        f"{row['infer_draws_per_s']:.3e}/s (whole call "
        f"{row['infer_draws_per_s_whole_call']:.3e}/s; uniform proposal "
        f"{row['infer_uniform_proposal_draws_per_s']:.3e}/s)  scipy TDR "
        f"{row['scipy_tdr_draws_per_s']:.3e}/s  ratio {row['ratio']:.2f}",
        flush=True,
    )
    return row


def bench_rejection_modes(num_draws, repeats) -> dict:
    """The rejection benchmark in a fresh process per mode (see ``common.MODES``): one core
    for both libraries, the whole machine on one XLA device, and the CPU split into two XLA
    devices with the chains sharded over them; SciPy runs single-threaded in every mode."""
    rows = {}
    for mode in modes():
        args = ["--rejection-only", "--num-draws", str(num_draws), "--repeats", str(repeats)]
        row = run_json(Path(__file__), args, mode)
        row["mode"] = mode
        print(
            f"  rejection beta(2,5), {mode}: infer {row['infer_draws_per_s']:.3e}/s  "
            f"scipy TDR {row['scipy_tdr_draws_per_s']:.3e}/s  ratio {row['ratio']:.2f}",
            flush=True,
        )
        rows[mode] = row
    return rows


# ----------------------------------------------------------------------------- main


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--quick", action="store_true", help="small sizes, for a smoke run")
    parser.add_argument("--repeats", type=positive_int, default=None, help="default 5; --quick: 2")
    parser.add_argument("--out", type=json_file, default=None, help="JSON path")
    parser.add_argument("--rejection-only", action="store_true", help=argparse.SUPPRESS)
    parser.add_argument("--num-draws", type=positive_int, default=10**7, help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    quick = args.quick
    repeats = quick_or_given(parser, args, "--repeats", 2, 5)
    if args.rejection_only:  # a measuring subprocess: one JSON line on stdout
        row = bench_rejection(args.num_draws, repeats, num_chains=len(jax.devices()))
        row["cores"] = cores_in_use()
        print(json.dumps(row))
        return 0

    print(f"benchmarks/samplers.py on {jax.devices()[0]} ({'quick' if quick else 'full'})")
    chain_counts = (1, 64, 1024)

    def steps_normal(num_chains):
        return {1: 20_000, 64: 5_000, 1024: 1_000}[num_chains] // (10 if quick else 1)

    def steps_logistic(num_chains):
        # 1,000 steps at 1,024 chains (a second a call): at 200 the row swung from 0.5 to 1.0
        # of BlackJAX between runs of the same code on the 2-core machine.
        return {1: 5_000, 64: 1_000, 1024: 1_000}[num_chains] // (10 if quick else 1)

    rwmh = bench_rwmh("normal_10d", 0.75, chain_counts, steps_normal, repeats)
    rwmh += bench_rwmh("logistic_regression", 0.03, chain_counts, steps_logistic, repeats)
    nuts = bench_nuts(200 if quick else 2000, 200 if quick else 1000, repeats)
    num_draws = 10**6 if quick else 10**7
    rejection = bench_rejection_modes(num_draws, repeats)

    goals = {
        "rwmh_at_least_1x_blackjax": all(row["ratio"] >= 1.0 for row in rwmh),
        # the like-for-like figure: infer's whole call (checks, starts, the result) against
        # BlackJAX's jitted call and copy to the host
        "rwmh_whole_call_at_least_1x_blackjax": all(row["ratio_whole_call"] >= 1.0 for row in rwmh),
        "nuts_grads_at_least_0.9x_blackjax": nuts["ratio"] >= 0.9,
        "repeat_call_at_most_1.2x_pure_time": nuts["repeat_call_over_pure_time"] <= 1.2,
        "rejection_one_core_at_least_1x_scipy_tdr": (
            rejection["one_core"]["ratio"] >= 1.0 if "one_core" in rejection else None
        ),
    }
    record = {
        "machine": machine("blackjax", "scipy"),
        "quick": quick,
        "repeats": repeats,
        "precision": f"{precision()} for infer and BlackJAX; SciPy float64",
        "rwmh": rwmh,
        "nuts": nuts,
        "rejection": rejection,
        "goals_met": goals,
    }
    out = (
        args.out
        or RESULTS / f"samplers_{record['machine']['platform']}{'_quick' if quick else ''}.json"
    )
    write_result(out, record)
    judged = "(a quick run: too short to judge) " if quick else ""
    print(f"goals {judged}{json.dumps(goals)}\nwrote {out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
