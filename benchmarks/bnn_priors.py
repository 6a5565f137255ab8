"""Why the digits BNN's posterior predictive stays behind the Optax MAP: is it the sampler or
the posterior? NUTS on ``models/bnn.py``'s digits classifier under a few priors and network
sizes, each against MAP fits from the same four starting networks.

For each variant: the MAP fits' held-out NLL and ECE (one per start), the pooled NUTS
predictive's, each chain's own predictive (chains that agree found the same predictive), each
chain's mean training NLL per draw over the four quarters of its draws (flat: the chain has
settled), and the mean held-out NLL of a single draw (what averaging the draws improves on).
One variant starts its chains at the four MAP fits instead of fresh networks.

Priors: ``N(0, 1)`` on every parameter (``models.bnn.PRIOR_SCALE``, the main benchmark's), or
by layer (:func:`models.bnn.layer_prior`: the hidden layer's weights, the output layer's
weights, the biases).

Results: ``benchmarks/results/bnn_priors_<platform>.json``. Run: ``python
benchmarks/bnn_priors.py`` (about 25 minutes on 2 CPU cores).
"""

from __future__ import annotations

import sys
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from common import RESULTS, ROOT, machine, options_free_parser, write_result  # noqa: E402

NUM_CHAINS = 4
LENGTHS = {"num_warmup": 300, "num_samples": 300}  # the main benchmark's NUTS run
VARIANTS = (  # name, layer scales (hidden, output, bias) or None for N(0, 1), hidden units
    ("N(0,1), 16 hidden", None, 16, "fresh"),
    ("N(0,1), 16 hidden, chains start at the MAP fits", None, 16, "map"),
    ("by layer 0.3:3:1, 16 hidden", (0.3, 3.0, 1.0), 16, "fresh"),
    ("by layer 0.3:3:1, 8 hidden", (0.3, 3.0, 1.0), 8, "fresh"),
    ("by layer 0.3:15:1, 64 hidden", (0.3, 15.0, 1.0), 64, "fresh"),
)


def map_fits(problem, starts):
    """One MAP position per start (leading axis: starts), and each fit's held-out measures."""
    import jax
    import jax.numpy as jnp

    from models import bnn

    target, (x, y) = problem.target, problem.test["test"]
    positions, rows = [], []
    for i in range(NUM_CHAINS):
        position, _ = bnn.fit_point_estimate(target, jax.tree.map(lambda a, i=i: a[i], starts))
        params = bnn.single(target.notes["flax"].params_at(position))
        positions.append(position)
        rows.append(bnn.classification_metrics(bnn.outputs(target, params, x), y))
    return jax.tree.map(lambda *a: jnp.stack(a), *positions), rows


def per_draw_nll(target, params, x, y):
    """``(draws,)`` mean NLL per example of each draw of ``params`` on ``(x, y)``."""
    import jax
    import jax.numpy as jnp

    from models import bnn

    log_probs = jax.nn.log_softmax(bnn.outputs(target, params, x), axis=-1)
    picked = jnp.take_along_axis(log_probs, jnp.asarray(y)[None, :, None], axis=2)[..., 0]
    return -np.asarray(picked.mean(axis=1), np.float64)


def chain_rows(problem, draws) -> list:
    """Per chain: its own predictive, its training NLL per draw by quarter, a draw's held-out
    NLL on average."""
    import jax

    from models import bnn

    target, (x, y), (x_train, y_train) = problem.target, problem.test["test"], problem.train
    full = target.notes["flax"].params(draws)
    rows = []
    for chain in range(NUM_CHAINS):
        params = jax.tree.map(lambda a, c=chain: a[c, ::3], full)  # 100 draws of the chain
        train = per_draw_nll(target, params, x_train, y_train)
        quarters = [float(q.mean()) for q in np.array_split(train, 4)]
        rows.append(
            {
                **bnn.classification_metrics(bnn.outputs(target, params, x), y),
                "train_nll_per_draw_by_quarter": quarters,
                "test_nll_of_one_draw": float(per_draw_nll(target, params, x, y).mean()),
            }
        )
    return rows


def run_variant(name, scales, hidden, start) -> dict:
    import infer
    from models import bnn

    prior = bnn.PRIOR_SCALE if scales is None else bnn.layer_prior(*scales)
    problem = bnn.digits_problem(hidden=hidden, prior=prior)
    starts = bnn.chain_starts(problem, NUM_CHAINS)
    maps, map_rows = map_fits(problem, starts)
    began = time.perf_counter()
    result = infer.sample(
        0,
        problem.target,
        infer.nuts(max_tree_depth=8),
        num_chains=NUM_CHAINS,
        init=maps if start == "map" else starts,
        **LENGTHS,
    )
    seconds = time.perf_counter() - began
    x, y = problem.test["test"]
    pooled = bnn.draw_positions(problem.target, result.draws)
    row = {
        "variant": name,
        "target": problem.target.description,
        "layer_scales": scales,
        "hidden": hidden,
        "chain_starts": start,
        "optax_map_per_start": map_rows,
        "nuts": {
            **bnn.classification_metrics(bnn.outputs(problem.target, pooled, x), y),
            "seconds": round(seconds, 1),
            "acceptance_rate": float(result.acceptance_rate),
            "per_chain": chain_rows(problem, result.draws),
        },
    }
    nuts, best = row["nuts"], min(r["nll"] for r in map_rows)
    print(f"  {name}: NUTS NLL {nuts['nll']:.4f} ECE {nuts['ece']:.4f}; best MAP NLL {best:.4f}")
    return row


def main(argv=None) -> int:
    options_free_parser(__doc__, 25).parse_args(argv)
    import jax

    rows = [run_variant(*variant) for variant in VARIANTS]
    platform = jax.devices()[0].platform
    record = {
        "problem": "digits",
        "settings": {**LENGTHS, "num_chains": NUM_CHAINS, "sampler": "nuts(max_tree_depth=8)"},
        "rows": rows,
        "notes": "NLL in nats per held-out example (359 test images); ECE over 10 bins. MAP: "
        "Adam, full batch, 3,000 steps, from each chain's starting network.",
        "machine": machine("flax", "optax", "scikit-learn"),
    }
    path = RESULTS / f"bnn_priors_{platform}.json"
    write_result(path, record)
    print(f"wrote {path.relative_to(ROOT)}", flush=True)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
