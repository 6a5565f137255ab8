"""The blocked advance loop on an accelerator: does it pay, and are the draws the same?

``infer.sample``'s advance program runs its steps in blocks of 16 on an accelerator (see
``infer/blocked_loop.py``): a loop with traced bounds makes a GPU wait for the loop's
condition every step. This check times the sampling phase of RWMH, MALA and NUTS on the
logistic regression with blocks of 16 and with the plain loop (``STEPS_PER_BLOCK = 1``),
with BlackJAX's loop beside them (draws copied to the host, as in ``sweep.py``), the three
alternated repeat by repeat (chain-steps a second; NUTS's gradients, whose trees differ by
chance between the libraries), and
compares the draws: blocked against plain, and a run cut into a progress bar's segments
against one uncut (the largest absolute difference; 0 is the same bit for bit). The runs'
lengths are whole blocks, so the blocked runs compute no step they discard.

Results: ``benchmarks/results/blocked_loop_<platform>.json``. Run: ``python
benchmarks/blocked_loop.py`` (about a minute on an H200; ``--quick``: fewer steps, one
timed run each). On a CPU, where the plain loop is the default (``CPU_STEPS_PER_BLOCK = 1``),
it needs ``--force`` (blocks on a CPU too, as the CPU table was made): without it both sides
would be the plain loop.
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time
from pathlib import Path

import jax
import jax.numpy as jnp
import numpy as np

import infer
from infer import blocked_loop
from models import targets

sys.path.insert(0, str(Path(__file__).resolve().parent))

from common import RESULTS, machine, write_result  # noqa: E402
from sweep import blackjax_runner, make_sampler  # noqa: E402

BLOCK = blocked_loop.STEPS_PER_BLOCK


def set_block(block: int, force: bool) -> None:
    blocked_loop.STEPS_PER_BLOCK = block
    if force:
        blocked_loop.CPU_STEPS_PER_BLOCK = block


def run(name, target, positions, num_steps, seed=0, progress=False):
    return infer.sample(
        seed,
        target,
        make_sampler(name),
        num_chains=jax.tree.leaves(positions)[0].shape[0],
        num_samples=num_steps,
        num_warmup=0,
        init=positions,
        progress=progress,
    )


def _units(result, num_chains: int, num_steps: int) -> float:
    """What a run's rate counts: NUTS's gradients (its leapfrog steps: the two libraries'
    trees differ by chance, so steps are not like for like), other samplers' chain-steps."""
    if "n_steps" in result.stats:
        return float(np.sum(result.stats["n_steps"]))
    return float(num_chains * num_steps)


def largest_difference(a, b) -> float:
    return max(
        float(np.max(np.abs(np.asarray(a.draws[k]) - np.asarray(b.draws[k])))) for k in a.draws
    )


def measure(name: str, num_chains: int, num_steps: int, repeats: int, force: bool) -> dict:
    target = targets.get("logistic_regression")
    positions = jax.tree.map(
        lambda leaf: np.asarray(jnp.broadcast_to(leaf, (num_chains, *leaf.shape))), target.init
    )
    draws, work = {}, {BLOCK: [], 1: [], "blackjax": []}
    for block in (BLOCK, 1):
        set_block(block, force)
        draws[block] = run(name, target, positions, num_steps)  # compiles
    set_block(BLOCK, force)
    cut = run(name, target, positions, num_steps, progress=True)
    theirs = blackjax_runner(name, target.logdensity_fn, num_chains, num_steps)
    jax.device_get(theirs(jax.random.key(0), positions))
    for r in range(repeats):  # the three loops alternated, repeat by repeat
        for block in (BLOCK, 1):
            set_block(block, force)
            result = run(name, target, positions, num_steps, seed=r + 1)
            work[block].append(_units(result, num_chains, num_steps) / result.timing["sampling"])
        start = time.perf_counter()
        _, gradients = jax.device_get(theirs(jax.random.key(r), positions))
        seconds = time.perf_counter() - start
        units = float(gradients) if name == "nuts" else num_chains * num_steps
        work["blackjax"].append(units / seconds)
    set_block(BLOCK, force)
    rates = {block: statistics.median(work[block]) for block in (BLOCK, 1)}
    blackjax_rate = statistics.median(work["blackjax"])
    row = {
        "sampler": name,
        "num_chains": num_chains,
        "num_steps": num_steps,
        "block": BLOCK,
        "unit": "gradients" if name == "nuts" else "chain-steps",
        "blocked_per_s": rates[BLOCK],
        "plain_per_s": rates[1],
        "blackjax_per_s": blackjax_rate,
        "blocked_over_plain": rates[BLOCK] / rates[1],
        "blocked_over_blackjax": rates[BLOCK] / blackjax_rate,
        "largest_difference_blocked_vs_plain": largest_difference(draws[BLOCK], draws[1]),
        "largest_difference_progress_vs_not": largest_difference(cut, draws[BLOCK]),
    }
    print(
        f"  {name:4s} {num_chains:>6} chains: blocked {rates[BLOCK]:.3e} {row['unit']}/s, "
        f"{row['blocked_over_plain']:.2f}x plain, {row['blocked_over_blackjax']:.2f}x BlackJAX; "
        f"differences {row['largest_difference_blocked_vs_plain']:.3g} (plain), "
        f"{row['largest_difference_progress_vs_not']:.3g} (progress)",
        flush=True,
    )
    return row


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--quick", action="store_true")
    parser.add_argument("--force", action="store_true", help="blocks on a CPU too (needed there)")
    args = parser.parse_args(argv)
    on_cpu = jax.default_backend() == "cpu"
    if on_cpu and not args.force:
        print(
            "on a CPU infer runs the plain loop (blocked_loop.CPU_STEPS_PER_BLOCK = 1), so "
            "without --force this would time the plain loop against itself: pass --force "
            "(as the CPU table in docs/benchmarks.md was made), or run it on an accelerator",
            file=sys.stderr,
        )
        return 2
    repeats = 1 if args.quick else 3
    # whole blocks of steps, so that the blocked runs compute no step they discard
    steps = {"rwmh": 2048, "mala": 2048, "nuts": 112}
    counts = (1, 1024) if args.quick else (1, 1024, 10_000)
    rows = []
    for name, num_steps in steps.items():
        for num_chains in counts:
            few = num_steps // (8 if args.quick else 1) // (8 if num_chains > 1024 else 1)
            few = max(BLOCK, few - few % BLOCK)
            rows.append(measure(name, num_chains, few, repeats, args.force))
    stamp = machine("blackjax")
    record = {
        "machine": stamp,
        "target": "logistic_regression",
        "precision": stamp["precision"],
        "repeats": repeats,
        "forced_on_cpu": args.force and on_cpu,
        "rows": rows,
    }
    name = f"blocked_loop_{record['machine']['platform']}{'_quick' if args.quick else ''}.json"
    write_result(RESULTS / name, record)
    print(f"wrote {RESULTS / name}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
