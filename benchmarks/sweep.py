"""Chain-count sweep on the breast-cancer logistic regression (31 parameters, 569
observations): RWMH, MALA and NUTS from 1 to 10,000 chains on a CPU (100,000 on an
accelerator), against BlackJAX and against the physical limit.

For every chain count: chain-steps per second and (MALA, NUTS) gradient evaluations per
second of ``infer.sample``'s sampling phase (fixed step sizes, no warm-up) and of BlackJAX's
``rmh``, ``mala`` and ``nuts`` with the same step sizes in its documented loop (``lax.scan``
over ``vmap``-ed steps; for MALA the same number, which BlackJAX reads as ``x + eps grad +
sqrt(2 eps) z`` and infer as ``x + eps^2/2 grad + eps z``: other moves, the same cost);
and the **bare rate**: the same log density (or its value and gradient) evaluated in a
plain ``vmap`` + ``scan`` loop with no sampler around it. One chain
runs unbatched in every loop (``infer.over_chains``), as infer runs it and as BlackJAX's
one-chain loop is documented. The
fraction of the bare rate is how close a sampler gets to the cost of its log density alone.
Goals (issue "Scale"): RWMH at 1,024 and more chains at least 0.8 of the bare rate, and infer
ahead of BlackJAX at every count. Medians over repeats that alternate the libraries. Both
samplers' times end with the draws in host memory: ``infer.sample`` returns them there, and
BlackJAX's are copied there (``jax.device_get``), as a user does before handing them to ArviZ;
on a CPU that copy is next to free, on an accelerator it is part of what a run costs.
NUTS rows also time NumPyro's own kernel (``numpyro.infer.hmc.hmc``, which infer's NUTS
wraps) in the same loop: the ratio to it is what infer adds or saves around its kernel, the
ratio to BlackJAX what NumPyro's kernel and infer together cost against BlackJAX's.
Results: ``benchmarks/results/sweep_<platform>.json``, rewritten after every row (``complete``
says whether every row is in), so that a run stopped by a time limit keeps the rows it made.

Run: ``python benchmarks/sweep.py`` (``--quick``: up to 1,024 chains, fewer steps).
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time
from pathlib import Path

import jax
import jax.flatten_util
import jax.numpy as jnp
import numpy as np

import infer
from infer.over_chains import over_chains
from models import targets

sys.path.insert(0, str(Path(__file__).resolve().parent))

from common import RESULTS, machine, positive_int, quick_or_given, write_result  # noqa: E402

STEP_SIZES = {"rwmh": 0.02, "mala": 0.02, "nuts": 0.05}
#: Log-density (or gradient) evaluations per measurement, split over the chains, and at most
#: this many per chain. On a CPU a step of one chain costs microseconds; on an accelerator
#: every step is a few kernel launches whatever the chain count, so one chain gets fewer
#: steps there, and many chains more evaluations (their steps cost little more than one's).
BUDGETS = {"cpu": (2_000_000, None), "accelerator": (20_000_000, 5_000)}


def _timed(fn, *args) -> float:
    start = time.perf_counter()
    jax.block_until_ready(fn(*args))
    return time.perf_counter() - start


def bare_runner(logdensity_fn, gradients: bool, num_chains: int, num_steps: int):
    """The log density alone, ``num_steps`` times for every chain, at moving positions."""
    evaluate = over_chains(jax.value_and_grad(logdensity_fn) if gradients else logdensity_fn)

    @jax.jit
    def run(positions):
        def step(carry, _):
            x, total = carry
            out = evaluate(x)
            value, grad = out if gradients else (out, x)
            x = jax.tree.map(lambda a, g: a + 1e-6 * jnp.tanh(g), x, grad if gradients else x)
            return (x, total + jnp.sum(value)), None

        (_, total), _ = jax.lax.scan(step, (positions, 0.0), None, length=num_steps)
        return total

    return run


def blackjax_runner(name: str, logdensity_fn, num_chains: int, num_steps: int):
    """BlackJAX's kernel in its documented loop; returns ``(draws, gradient count)``."""
    import blackjax

    step_size = STEP_SIZES[name]
    if name == "rwmh":

        def proposal(rng_key, position):
            flat, unravel = jax.flatten_util.ravel_pytree(position)
            return unravel(flat + step_size * jax.random.normal(rng_key, flat.shape))

        algorithm = blackjax.rmh(logdensity_fn, proposal)
    elif name == "mala":
        algorithm = blackjax.mala(logdensity_fn, step_size)
    else:
        algorithm = blackjax.nuts(logdensity_fn, step_size, jnp.ones(31))  # 31 parameters

    @jax.jit
    def run(rng_key, positions):
        states = over_chains(algorithm.init)(positions)

        def one_step(states, key):
            keys = jax.random.split(key, num_chains)
            states, infos = over_chains(algorithm.step)(keys, states)
            grads = getattr(infos, "num_integration_steps", jnp.ones(num_chains, jnp.int32))
            return states, (states.position, jnp.sum(grads))

        _, (draws, grads) = jax.lax.scan(one_step, states, jax.random.split(rng_key, num_steps))
        return draws, jnp.sum(grads)

    return run


def numpyro_runner(logdensity_fn, num_chains: int, num_steps: int):
    """NumPyro's own NUTS kernel (``numpyro.infer.hmc.hmc``, the pair infer wraps), fixed
    step size, identity mass matrix, over the chains (``over_chains``) in a ``lax.scan``: what
    infer's NUTS costs without infer around it.
    Returns ``(draws, gradient count)``."""
    from numpyro.infer.hmc import hmc

    init_kernel, sample_kernel = hmc(potential_fn=lambda x: -logdensity_fn(x), algo="NUTS")
    options = dict(step_size=STEP_SIZES["nuts"], adapt_step_size=False, adapt_mass_matrix=False)

    def init(position, key):
        return init_kernel(position, 0, rng_key=key, **options)

    @jax.jit
    def run(rng_key, positions):
        states = over_chains(init)(positions, jax.random.split(rng_key, num_chains))

        def one_step(states, _):
            states = over_chains(sample_kernel)(states)
            return states, (states.z, jnp.sum(states.num_steps))

        _, (draws, grads) = jax.lax.scan(one_step, states, None, length=num_steps)
        return draws, jnp.sum(grads)

    return run


def make_sampler(name: str):
    step_size = STEP_SIZES[name]
    if name == "rwmh":
        return infer.rwmh(step_size=step_size)
    if name == "mala":
        return infer.mala(step_size=step_size)
    return infer.nuts(step_size=step_size, adapt_step_size=False, adapt_mass_matrix=False)


def gradients_per_step(name: str, target, positions) -> float:
    """NUTS's gradients per step at this step size, from a 20-step pilot run of up to 64 of
    the chains: the budget of :data:`BUDGETS` is then gradients, not steps."""
    count = min(64, jax.tree.leaves(positions)[0].shape[0])
    pilot = infer.sample(
        0,
        target,
        make_sampler(name),
        num_chains=count,
        num_samples=20,
        num_warmup=0,
        init=jax.tree.map(lambda leaf: np.asarray(leaf[:count]), positions),
    )
    return max(1.0, pilot.num_grad_evals / (count * 20))


def sampling_gradients(result) -> float:
    """Gradients of the sampling phase, as BlackJAX's count is: NUTS's leapfrog steps
    (``n_steps``), one per MALA step; not ``num_grad_evals``, which adds one per chain for
    starting it, outside the timed phase."""
    if "n_steps" in result.stats:
        return float(np.sum(result.stats["n_steps"]))
    return float(result.num_chains * result.num_samples)


def steps_for(num_chains: int, per_step: float, budget: tuple) -> int:
    """Steps of one measurement: ``budget = (evaluations, most per chain or None)``."""
    evaluations, per_chain = budget
    steps = evaluations // (num_chains * per_step)
    if per_chain is not None:
        steps = min(steps, per_chain // per_step)
    return max(5, int(steps))


def measure(name: str, num_chains: int, repeats: int, budget: tuple) -> dict:
    target = targets.get("logistic_regression")
    gradients = name != "rwmh"
    positions = jax.tree.map(
        lambda leaf: jnp.broadcast_to(leaf, (num_chains, *leaf.shape)), target.init
    )
    per_step = gradients_per_step(name, target, positions) if name == "nuts" else 1
    num_steps = steps_for(num_chains, per_step, budget)
    bare = bare_runner(target.logdensity_fn, gradients, num_chains, num_steps)
    theirs = blackjax_runner(name, target.logdensity_fn, num_chains, num_steps)
    kernel = numpyro_runner(target.logdensity_fn, num_chains, num_steps) if name == "nuts" else None
    sampler = make_sampler(name)

    def ours(seed):
        return infer.sample(
            seed,
            target,
            sampler,
            num_chains=num_chains,
            num_samples=num_steps,
            num_warmup=0,
            init=jax.tree.map(np.asarray, positions),
        )

    bare(positions).block_until_ready()
    jax.block_until_ready(theirs(jax.random.key(0), positions))
    ours(0)
    if kernel is not None:
        jax.block_until_ready(kernel(jax.random.key(0), positions))
    rows = {"ours": [], "ours_grads": [], "blackjax": [], "blackjax_grads": [], "bare": []}
    rows.update(ours_whole=[], ours_grads_whole=[])
    rows["numpyro_grads"] = []
    for r in range(repeats):
        start = time.perf_counter()
        result = ours(r)
        whole = time.perf_counter() - start  # the whole call, as BlackJAX's is timed
        rows["ours"].append(num_chains * num_steps / result.timing["sampling"])
        rows["ours_grads"].append(sampling_gradients(result) / result.timing["sampling"])
        rows["ours_whole"].append(num_chains * num_steps / whole)
        rows["ours_grads_whole"].append(sampling_gradients(result) / whole)
        start = time.perf_counter()
        draws, grads = theirs(jax.random.key(r), positions)
        draws, grads = jax.device_get((draws, grads))  # on the host, as infer's are
        seconds = time.perf_counter() - start
        del draws
        rows["blackjax"].append(num_chains * num_steps / seconds)
        rows["blackjax_grads"].append(float(grads) / seconds)
        rows["bare"].append(num_chains * num_steps / _timed(bare, positions))
        if kernel is not None:
            start = time.perf_counter()
            _, grads = jax.device_get(kernel(jax.random.key(r), positions))
            rows["numpyro_grads"].append(float(grads) / (time.perf_counter() - start))
    med = {key: statistics.median(values) for key, values in rows.items() if values}
    row = {
        "sampler": name,
        "num_chains": num_chains,
        "num_steps": num_steps,
        "gradients_per_step": per_step,
        "infer_chain_steps_per_s": med["ours"],
        "blackjax_chain_steps_per_s": med["blackjax"],
        "bare_evaluations_per_s": med["bare"],
        "ratio_to_blackjax": med["ours"] / med["blackjax"],
        "ratio_to_blackjax_whole_call": med["ours_whole"] / med["blackjax"],
    }
    if gradients:
        row["infer_grads_per_s"] = med["ours_grads"]
        row["blackjax_grads_per_s"] = med["blackjax_grads"]
        row["ratio_to_blackjax"] = med["ours_grads"] / med["blackjax_grads"]
        row["ratio_to_blackjax_whole_call"] = med["ours_grads_whole"] / med["blackjax_grads"]
        row["fraction_of_bare"] = med["ours_grads"] / med["bare"]
    else:
        row["fraction_of_bare"] = med["ours"] / med["bare"]
    if kernel is not None:
        row["numpyro_kernel_grads_per_s"] = med["numpyro_grads"]
        row["ratio_to_numpyro_kernel"] = med["ours_grads"] / med["numpyro_grads"]
    print(
        f"  {name:4s} {num_chains:>7} chains: infer {row['infer_chain_steps_per_s']:.3e} "
        f"steps/s, {row['fraction_of_bare']:.2f} of bare, {row['ratio_to_blackjax']:.2f}x "
        "BlackJAX",
        flush=True,
    )
    return row


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--quick", action="store_true")
    parser.add_argument("--repeats", type=positive_int, default=None, help="default 3; --quick: 1")
    args = parser.parse_args(argv)
    counts = (1, 32, 1024) if args.quick else (1, 32, 1024, 10_000, 100_000)
    repeats = quick_or_given(parser, args, "--repeats", 1, 3)
    on_cpu = jax.default_backend() == "cpu"
    evaluations, per_chain = BUDGETS["cpu" if on_cpu else "accelerator"]
    budget = (evaluations // 10, per_chain) if args.quick else (evaluations, per_chain)
    wanted = [
        (name, n)
        for name in ("rwmh", "mala", "nuts")
        for n in counts
        if not (on_cpu and name == "nuts" and n == 100_000)  # on a CPU minutes a step
    ]
    rows = []
    for name, num_chains in wanted:
        rows.append(measure(name, num_chains, repeats, budget))
        path = write_rows(rows, budget, complete=len(rows) == len(wanted), quick=args.quick)
    print(f"wrote {path}")
    return 0


def _judged(holds: bool, complete: bool) -> bool | None:
    """A goal over every row: False once a row misses it, True only when every row was made
    and none did, else None (not judged: a run stopped early has not made every row)."""
    return False if not holds else (True if complete else None)


def write_rows(rows: list, budget: tuple, complete: bool, quick: bool) -> Path:
    """The JSON of the rows made so far (rewritten after each)."""
    rwmh_many = [r for r in rows if r["sampler"] == "rwmh" and r["num_chains"] >= 1024]
    stamp = machine("blackjax")
    record = {
        "machine": stamp,
        "target": "logistic_regression",
        "step_sizes": STEP_SIZES,
        "precision": stamp["precision"],
        "budget": {"evaluations": budget[0], "most_per_chain": budget[1]},
        "complete": complete,
        "rows": rows,
        "goals_met": {  # a miss in the rows made is a miss; a pass needs every row
            "rwmh_at_least_0.8_of_bare_from_1024_chains": _judged(
                all(r["fraction_of_bare"] >= 0.8 for r in rwmh_many), complete
            ),
            "ahead_of_blackjax_at_every_count": _judged(
                all(r["ratio_to_blackjax"] >= 1.0 for r in rows), complete
            ),
        },
    }
    name = f"sweep_{record['machine']['platform']}{'_quick' if quick else ''}.json"
    return write_result(RESULTS / name, record)


if __name__ == "__main__":
    sys.exit(main())
