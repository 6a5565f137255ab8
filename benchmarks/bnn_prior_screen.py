"""The digits BNN's prior chosen on held-out training images, for the MAP and for NUTS alike:
does any prior screened give a posterior predictive that beats the best point estimate?

The training images of ``models.bnn.digits_problem`` are split once (fixed seed) into a fit
set (80%) and a validation set (20%); the test images are not looked at until the end. Each
prior of ``PRIORS`` (Gaussian or Student-t weights by layer, :func:`models.bnn.layer_prior`;
heavy tails after Fortuin et al. 2022) gets MAP fits from four fresh networks and a NUTS run
of four chains from the same networks, both on the fit set, scored on the validation set.
Then each method takes the prior of its lowest validation NLL, is run again on all the
training images (NUTS at the main benchmark's lengths), and is scored on the test images.

Results: ``benchmarks/results/bnn_prior_screen_<platform>.json``. Run: ``python
benchmarks/bnn_prior_screen.py`` (about 30 minutes on 2 CPU cores).
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
SCREEN_LENGTHS = {"num_warmup": 200, "num_samples": 200}
FINAL_LENGTHS = {"num_warmup": 300, "num_samples": 300}  # benchmarks/bnn.py's NUTS run
VALIDATION_SHARE, SPLIT_SEED = 0.2, 7
PRIORS = (  # (hidden, output, bias) scales, Student-t degrees of freedom or None (Gaussian)
    ((1.0, 1.0, 1.0), None),  # models.bnn.PRIOR_SCALE, the main benchmark's prior
    ((0.3, 3.0, 1.0), None),
    ((0.3, 30.0, 1.0), None),
    ((1.0, 10.0, 1.0), None),
    ((0.1, 1.0, 1.0), 3.0),
    ((0.3, 3.0, 1.0), 3.0),
)


def splits():
    """``(fit, validation, train, test)``, each ``(x (n, 64), y (n,))``."""
    from models.generative import data as datasets

    digits = datasets.load("digits")
    x = digits.train.reshape(len(digits.train), -1).astype(np.float32)
    y = np.asarray(digits.train_labels)
    order = np.random.default_rng(SPLIT_SEED).permutation(len(x))
    held = order[: int(VALIDATION_SHARE * len(x))]
    kept = order[len(held) :]
    test = (digits.test.reshape(len(digits.test), -1).astype(np.float32), digits.test_labels)
    return (x[kept], y[kept]), (x[held], y[held]), (x, y), test


def evaluate(prior, data, held_out, lengths) -> dict:
    """MAP fits (one per start, their mean measures) and the NUTS predictive, trained on
    ``data`` and scored on ``held_out``: the digits problem of ``models.bnn`` on this split."""
    from bnn_priors import map_fits
    from flax import nnx

    import infer
    from models import bnn

    def make_module(seed):
        return bnn.Classifier(data[0].shape[1], 16, 10, rngs=nnx.Rngs(seed))

    target = infer.Target.from_flax(
        make_module(0), bnn.classification_loglik, data, prior=prior, name="bnn_digits"
    )
    problem = bnn.Problem(
        "digits",
        "classification",
        target,
        make_module,
        {"test": held_out},
        data,
        bnn.classification_loglik,
    )
    starts = bnn.chain_starts(problem, NUM_CHAINS)
    _, maps = map_fits(problem, starts)
    began = time.perf_counter()
    result = infer.sample(
        0,
        target,
        infer.nuts(max_tree_depth=8),
        num_chains=NUM_CHAINS,
        init=starts,
        progress=False,
        **lengths,
    )
    seconds = time.perf_counter() - began
    pooled = bnn.draw_positions(target, result.draws)
    x, y = held_out
    return {
        "target": target.description,
        "optax_map": {key: float(np.mean([m[key] for m in maps])) for key in maps[0]},
        "optax_map_nll_per_start": [m["nll"] for m in maps],
        "nuts": {
            **bnn.classification_metrics(bnn.outputs(target, pooled, x), y),
            "seconds": round(seconds, 1),
            "acceptance_rate": float(result.acceptance_rate),
        },
    }


def main(argv=None) -> int:
    options_free_parser(__doc__, 30).parse_args(argv)
    import jax

    from models import bnn

    fit, validation, train, test = splits()
    rows = []
    for scales, df in PRIORS:
        row = {"scales": scales, "df": df}
        row.update(evaluate(bnn.layer_prior(*scales, df=df), fit, validation, SCREEN_LENGTHS))
        rows.append(row)
        map_, nuts = row["optax_map"], row["nuts"]
        print(
            f"  {row['target']}: validation MAP NLL {map_['nll']:.4f} ECE {map_['ece']:.4f}, "
            f"NUTS NLL {nuts['nll']:.4f} ECE {nuts['ece']:.4f}",
            flush=True,
        )
    chosen = {
        method: min(rows, key=lambda r, m=method: r[m]["nll"]) for method in ("optax_map", "nuts")
    }
    final = {}
    for method, row in chosen.items():
        prior = bnn.layer_prior(*row["scales"], df=row["df"])
        scored = evaluate(prior, train, test, FINAL_LENGTHS)
        final[method] = {"scales": row["scales"], "df": row["df"], **scored[method]}
        print(f"  test, {method} at its chosen prior: {final[method]}", flush=True)
    platform = jax.devices()[0].platform
    record = {
        "problem": "digits",
        "split": {
            "fit": len(fit[1]),
            "validation": len(validation[1]),
            "train": len(train[1]),
            "test": len(test[1]),
            "seed": SPLIT_SEED,
        },
        "settings": {
            "screen": {**SCREEN_LENGTHS, "num_chains": NUM_CHAINS},
            "final": {**FINAL_LENGTHS, "num_chains": NUM_CHAINS},
            "sampler": "nuts(max_tree_depth=8)",
            "optax_map": "Adam, full batch, 3,000 steps, one fit per chain's starting network",
        },
        "screen": rows,
        "chosen_on_validation": final,
        "goal": {
            "nll_below_map": final["nuts"]["nll"] < final["optax_map"]["nll"],
            "ece_below_map": final["nuts"]["ece"] < final["optax_map"]["ece"],
        },
        "notes": "NLL in nats per example, ECE over 10 bins; screen rows on the validation "
        "images, chosen_on_validation on the test images. optax_map rows: the mean over the "
        "four fits.",
        "machine": machine("flax", "optax", "scikit-learn"),
    }
    path = RESULTS / f"bnn_prior_screen_{platform}.json"
    write_result(path, record)
    print(f"wrote {path.relative_to(ROOT)}", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
