"""Training speed of the generative models: infer's training loop against a plain
hand-written Flax NNX step for the same network, loss and optimisers, in the same run.

Our loop (``models.generative.training.train``): the module and optimisers split once, one
``jax.jit``-ed step that merges, applies the objectives and splits, batches indexed on the
device. The hand-written step: the pattern Flax's performance guide recommends for speed,
``nnx.split`` once, a ``jax.jit``-ed step that merges, updates and returns ``nnx.state``
(donated), fed with batches already sliced on the device (no ``nnx.jit`` graph traversal
per call), returning every objective's loss as our loop does (it records each objective's
training curve; a step that returns only the last of several losses lets XLA drop the others'
computation, so that step is timed too, for the models with more than one objective).
Steps per second at batch 128 on MNIST (28 x 28), measured in pairs (one run of each, the
order swapped from one pair to the next; each side the median over five one-epoch segments of
31 steps; 15 pairs for a model whose first pair takes under 20 s, 5 otherwise); the ratio is
the median over pairs of ours divided by
the hand-written step's (the ratio of the two sides' medians is recorded beside it); goal: ours
at least 0.95x.
Results go to ``benchmarks/results/generative_speed_<platform>.json``.
"""

from __future__ import annotations

import argparse
import functools
import json
import statistics
import sys
import time
from pathlib import Path

import jax
import jax.numpy as jnp
from flax import nnx

from models.generative import data as datasets
from models.generative import registry, training

sys.path.insert(0, str(Path(__file__).resolve().parent))

from common import RESULTS, machine, positive_int, write_result  # noqa: E402

# A model whose first pair takes under FAST_PAIR_SECONDS gets FAST_PAIRS pairs: five pairs of
# the MLP VAE's 0.4-second epochs spread from 0.87 to 1.40, too wide to resolve a 5% goal.
FAST_PAIR_SECONDS, FAST_PAIRS = 20.0, 15

BASELINE = (
    "nnx.split once, a jax.jit step that merges, updates and returns nnx.state (donated), "
    "batches sliced on the device beforehand (Flax's performance guide), returning every "
    "objective's loss"
)


def handwritten_steps_per_second(
    name, data_name, options, batch_size, num_steps, repeats, every_loss=True
):
    """Steps per second of the fastest hand-written step Flax's performance guide shows: the
    module and its ``nnx.Optimizer``s split once with ``nnx.split``, a ``jax.jit``-ed
    function that merges them, takes the gradient steps and returns ``nnx.state`` (the state
    donated) and every objective's loss (only the last one's unless ``every_loss``), fed with
    batches already on the device."""
    family = registry.get(name)
    dataset = datasets.load(data_name)
    options = {**family.defaults, **options}
    model = family.build(dataset, options, nnx.Rngs(0))
    objectives = family.objectives(options)
    optimizers = [nnx.Optimizer(model, o.optimizer, wrt=o.wrt) for o in objectives]
    graphdef, state = nnx.split((model, optimizers))

    def step(state, images, key):
        model, optimizers = nnx.merge(graphdef, state)
        key_batch, *keys = jax.random.split(key, 1 + len(objectives))
        batch = family.train_batch(key_batch, images, dataset, options)
        losses = {}
        for objective, optimizer, k in zip(objectives, optimizers, keys, strict=True):
            loss, grads = nnx.value_and_grad(
                objective.loss_fn, argnums=nnx.DiffState(0, objective.wrt)
            )(model, batch, k)
            optimizer.update(model, grads)
            losses[objective.name] = loss
        return nnx.state((model, optimizers)), losses if every_loss else loss

    step = jax.jit(step, donate_argnums=(0,))
    images = jnp.asarray(dataset.train)
    batches = [
        images[i * batch_size : (i + 1) * batch_size] for i in range(images.shape[0] // batch_size)
    ]
    keys = [jax.random.key(s) for s in range(num_steps)]
    state, loss = step(state, batches[0], keys[0])
    jax.block_until_ready(loss)
    rates = []
    for _ in range(repeats):
        start = time.perf_counter()
        for s in range(num_steps):
            state, loss = step(state, batches[s % len(batches)], keys[s])
        jax.block_until_ready(loss)
        rates.append(num_steps / (time.perf_counter() - start))
    return statistics.median(rates)


def ours_steps_per_second(name, data_name, options, batch_size, epochs):
    trained = training.train(name, data_name, epochs=epochs, batch_size=batch_size, **options)
    steps = datasets.load(data_name).train.shape[0] // batch_size
    loop = trained.metrics["loop_seconds"][1:]  # the first epoch compiles
    return statistics.median(steps / s for s in loop)


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--quick", action="store_true", help="a smoke run: two pairs per model")
    parser.add_argument(
        "--repeats",
        type=positive_int,
        default=5,
        help="alternating pairs per model (cheap ones get more)",
    )
    args = parser.parse_args(argv)
    epochs = 3 if args.quick else 6
    cases = [("vae", {}), ("vae", {"variant": "conv"}), ("gan", {}), ("nade", {}), ("aae", {})]
    rows = []
    print(f"benchmarks/generative.py on {jax.devices()[0]}, MNIST, batch 128")
    for name, options in cases:
        # Pairs whose order alternates (the hand-written step first in the first pair, ours
        # in the next), and the median of their ratios: measured one after the other once,
        # the order alone moved the ratio by 10% on this machine, and the machine's speed
        # drifts over minutes, which a pair's ratio cancels where a ratio of medians does not.
        epoch_steps = 4000 // 128  # the training loop's steps per epoch on MNIST
        family = registry.get(name)
        several = len(family.objectives({**family.defaults, **options}))
        theirs_runs, ours_runs, last_only_runs = [], [], []
        began = time.perf_counter()
        # the hand-written step timed as ours is: the median over (epochs - 1) segments of
        # one epoch's steps each (a median over two long segments weighs a stall differently)
        theirs_rate = functools.partial(
            handwritten_steps_per_second,
            name,
            "mnist",
            options,
            128,
            epoch_steps,
            epochs - 1,
        )
        pairs, pair = (2 if args.quick else args.repeats), 0  # a smoke run: two pairs
        while pair < pairs:
            if pair % 2 == 0:  # the hand-written step first in even pairs, second in odd ones
                theirs_runs.append(theirs_rate())
            ours_runs.append(ours_steps_per_second(name, "mnist", options, 128, epochs))
            if pair % 2 == 1:
                theirs_runs.append(theirs_rate())
            if several > 1:
                last_only_runs.append(theirs_rate(every_loss=False))
            if not args.quick and pair == 0 and time.perf_counter() - began < FAST_PAIR_SECONDS:
                pairs = max(pairs, FAST_PAIRS)  # cheap pairs: more of them, a steadier median
            pair += 1
        pair_ratios = [o / t for o, t in zip(ours_runs, theirs_runs, strict=True)]
        ours, theirs = statistics.median(ours_runs), statistics.median(theirs_runs)
        last_only = statistics.median(last_only_runs) if last_only_runs else None
        row = {
            "model": name,
            "options": options,
            "objectives": several,
            "ours_steps_per_s": ours,
            "handwritten_nnx_steps_per_s": theirs,
            "ratio": statistics.median(pair_ratios),
            "pair_ratios": pair_ratios,
            "ratio_of_medians": ours / theirs,
            "handwritten_last_loss_only_steps_per_s": last_only,
            "ratio_to_last_loss_only": None if last_only is None else ours / last_only,
            "ours_runs": ours_runs,
            "handwritten_runs": theirs_runs,
            "handwritten_last_loss_only_runs": last_only_runs,
        }
        rows.append(row)
        print(
            f"  {name:5s} {json.dumps(options):22s} ours {ours:8.1f}/s  hand-written NNX "
            f"{theirs:8.1f}/s  ratio (median of pairs) {row['ratio']:.2f}",
            flush=True,
        )
    record = {
        "machine": machine("flax", "optax"),
        "data": "mnist",
        "batch_size": 128,
        "baseline": BASELINE,
        "rows": rows,
        "goal_met_at_least_0.95": all(r["ratio"] >= 0.95 for r in rows),
    }
    out = (
        RESULTS
        / f"generative_speed_{record['machine']['platform']}{'_quick' if args.quick else ''}.json"
    )
    write_result(out, record)
    print(f"wrote {out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
