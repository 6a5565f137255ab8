"""Bayesian neural networks against the Optax point estimate: NUTS, MALA and SGLD on the two
problems of ``models/bnn.py`` (the digits classifier and the 1-D heteroscedastic regression).

For each sampler: held-out negative log likelihood (nats per example), accuracy and expected
calibration error (digits; ``models.bnn.NUM_BINS`` equal-width bins) or RMSE and the coverage
of the 90% band (regression, on held-out points inside the training range, in its gap and
beyond it), wall-clock seconds (compilation included), gradient evaluations (SGLD's are
minibatch evaluations; ``full_data_gradients`` converts them to full-data passes), and
``infer.compare``'s largest R-hat and smallest bulk ESS over every parameter. The point
estimates are the same network trained by Optax (Adam, full batch) to the MAP of the same
posterior and, for reference, to the maximum likelihood (no prior). The goal flags ask whether
the posterior predictive's NLL and ECE on digits are below the MAP's.

All chains start from fresh network initialisations (one per chain). R-hat and ESS are poor:
a BNN posterior is multimodal (hidden units can be permuted, signs flipped) and each chain
stays near one mode, so these runs are not converged in the MCMC sense; the predictive
measures are what they are for the draws obtained.

Results: ``benchmarks/results/bnn_digits_<platform>.json`` and
``bnn_regression_<platform>.json``; the picture ``docs/images/bnn_regression.png`` (on an
accelerator ``bnn_regression_<platform>.png`` beside it).

Run: ``python benchmarks/bnn.py`` (``--quick``: short runs, written to ``*_quick.json``,
no picture).
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from common import RESULTS, ROOT, machine, write_result  # noqa: E402

NUM_CHAINS = 4
FIGURE = ROOT / "docs" / "images" / "bnn_regression.png"

# Run lengths and sampler settings per problem (num_samples: draws kept per chain, one every
# `thin` steps). SGLD's step sizes were chosen by hand: the
# regression's noise model has a curvature that grows as 1 / sd^2, and SGLD diverged there
# at 3e-5 (there is no Metropolis step to reject a bad move).
SETTINGS = {
    "digits": {
        "nuts": {"num_warmup": 300, "num_samples": 300, "thin": 1, "max_tree_depth": 8},
        "mala": {"num_warmup": 20_000, "num_samples": 1_000, "thin": 20},
        "sgld": {
            "num_warmup": 20_000,
            "num_samples": 1_000,
            "thin": 20,
            "step_size": 3e-4,
            "batch_size": 100,
        },
    },
    "regression": {
        "nuts": {"num_warmup": 500, "num_samples": 500, "thin": 1, "max_tree_depth": 8},
        "mala": {"num_warmup": 20_000, "num_samples": 1_000, "thin": 20},
        "sgld": {
            "num_warmup": 50_000,
            "num_samples": 1_000,
            "thin": 50,
            "step_size": 1e-5,
            "batch_size": 32,
        },
    },
}
QUICK_FACTOR = 20  # --quick divides the run lengths by this
# Digits again with other prior scales (PRIOR_SCALE's row is the main run): the MAP and NUTS
# with the same settings, to show whether the goal hinges on the prior.
PRIOR_SCAN = (0.5, 2.0, 3.0)
POINT_STEPS = 3000


def sampler_for(name: str, settings: dict, target):
    import infer

    if name == "nuts":
        return infer.nuts(max_tree_depth=settings["max_tree_depth"])
    if name == "mala":
        return infer.mala(covariance="diagonal")
    return infer.sgld(
        **target.notes["minibatch"],
        step_size=settings["step_size"],
        batch_size=settings["batch_size"],
    )


def run_sampler(problem, name: str, settings: dict, quick: bool):
    """One sampler's run: the result, its row of costs and diagnostics."""
    import infer
    from models import bnn

    target = problem.target
    lengths = {k: settings[k] for k in ("num_warmup", "num_samples")}
    if quick:
        lengths = {k: max(v // QUICK_FACTOR, 10) for k, v in lengths.items()}
    thin = 1 if quick else settings["thin"]
    began = time.perf_counter()
    result = infer.sample(
        0,
        target,
        sampler_for(name, settings, target),
        num_chains=NUM_CHAINS,
        init=bnn.chain_starts(problem, NUM_CHAINS),
        thin=thin,
        **lengths,
    )
    seconds = time.perf_counter() - began
    table = infer.compare({name: result}, warn=False)
    num_data = target.notes["minibatch"]["num_data"]
    per_grad = settings["batch_size"] / num_data if name == "sgld" else 1.0
    row = {
        "method": name,
        "seconds": round(seconds, 2),
        "compile_seconds": round(result.timing["compile"], 2),
        "grad_evals": int(result.num_grad_evals),
        "full_data_gradients": round(result.num_grad_evals * per_grad, 1),
        "max_rhat": float(table.loc[name, "max_rhat"]),
        "min_ess_bulk": float(table.loc[name, "min_ess_bulk"]),
        "median_ess_bulk": float(table.loc[name, "median_ess_bulk"]),
        "divergences": int(table.loc[name, "divergences"]),
        "settings": {**result.settings, **lengths, "thin": thin, "num_chains": NUM_CHAINS},
    }
    if result.acceptance_rate is not None and np.isfinite(result.acceptance_rate):
        row["acceptance_rate"] = float(result.acceptance_rate)  # SGLD has none
    print(f"  {name}: {seconds:.1f} s, R-hat {row['max_rhat']:.2f}", flush=True)
    return result, row


def point_estimates(problem) -> dict:
    """name -> (parameter pytree, row) for the MAP and the maximum-likelihood fits."""
    import infer
    from models import bnn

    mle = infer.Target.from_flax(
        problem.make_module(0),
        problem.log_likelihood_fn,
        problem.train,
        prior=bnn.flat_prior,
        name=f"{problem.target.name}_mle",
    )
    fits = {}
    targets = {"optax_map": problem.target, "optax_mle": mle}
    for name, target in targets.items():
        began = time.perf_counter()
        position, losses = bnn.fit_point_estimate(target, steps=POINT_STEPS)
        losses.block_until_ready()
        seconds = time.perf_counter() - began
        row = {
            "method": name,
            "seconds": round(seconds, 2),
            "grad_evals": POINT_STEPS,
            "full_data_gradients": float(POINT_STEPS),
            "final_loss": float(losses[-1]),
            "settings": {"optimizer": "adam", "learning_rate": 1e-2, "steps": POINT_STEPS},
        }
        fits[name] = (target.notes["flax"].params_at(position), row)
    return fits


def measures(problem, params) -> dict:
    """The held-out measures of the predictive averaged over ``params`` (leading axis:
    draws): one dict for digits, one per held-out set for the regression."""
    from models import bnn

    target = problem.target
    if problem.kind == "classification":
        x, y = problem.test["test"]
        return bnn.classification_metrics(bnn.outputs(target, params, x), y)
    out = {}
    for split, (x, y) in problem.test.items():
        means, sds = bnn.outputs(target, params, x)
        out[split] = bnn.regression_metrics(means, sds, y)
    return out


def run_problem(problem, quick: bool) -> tuple[list, dict]:
    """Every row of one problem, and the parameter draws of each run (for the picture)."""
    import jax

    from models import bnn

    rows, draws = [], {}
    for name, (params, row) in point_estimates(problem).items():
        params = bnn.single(params)
        rows.append({**row, **_flat(measures(problem, params))})
        draws[name] = params
    for name, settings in SETTINGS[problem.name].items():
        result, row = run_sampler(problem, name, settings, quick)
        params = bnn.draw_positions(problem.target, result.draws)
        row["num_draws_predictive"] = int(jax.tree.leaves(params)[0].shape[0])
        rows.append({**row, **_flat(measures(problem, params))})
        draws[name] = params
    return rows, draws


def _flat(measured: dict) -> dict:
    """``{"test": {"nll": ...}}`` as ``{"test_nll": ...}``; flat dicts unchanged."""
    out = {}
    for key, value in measured.items():
        if isinstance(value, dict):
            out.update({f"{key}_{k}": v for k, v in value.items()})
        else:
            out[key] = value
    return out


def prior_scan(rows: list, quick: bool) -> list:
    """The digits MAP and NUTS rows at each scale of ``PRIOR_SCAN`` (and the main run's)."""
    from models import bnn

    def entry(scale, map_row, nuts_row):
        keys = ("nll", "ece", "accuracy", "mean_confidence")
        return {
            "prior_scale": scale,
            "optax_map": {k: map_row[k] for k in keys},
            "nuts": {k: nuts_row[k] for k in (*keys, "max_rhat", "seconds")},
        }

    by = {row["method"]: row for row in rows}
    scanned = [entry(bnn.PRIOR_SCALE, by["optax_map"], by["nuts"])]
    for scale in PRIOR_SCAN:
        problem = bnn.digits_problem(prior=scale)
        print(f"  prior scale {scale}", flush=True)
        params, _ = point_estimates(problem)["optax_map"]
        map_row = measures(problem, bnn.single(params))
        result, nuts_row = run_sampler(problem, "nuts", SETTINGS["digits"]["nuts"], quick)
        nuts_row.update(measures(problem, bnn.draw_positions(problem.target, result.draws)))
        scanned.append(entry(scale, map_row, nuts_row))
    return sorted(scanned, key=lambda e: e["prior_scale"])


def goals(rows: list) -> dict:
    """Whether each sampler's posterior predictive beats the MAP (and the MLE) on digits."""
    by = {row["method"]: row for row in rows}
    out = {}
    for name in SETTINGS["digits"]:
        for point in ("optax_map", "optax_mle"):
            nll = by[name]["nll"] < by[point]["nll"]
            ece = by[name]["ece"] < by[point]["ece"]
            out[f"{name}_vs_{point}"] = {"nll_below": nll, "ece_below": ece, "met": nll and ece}
    out["met"] = out["nuts_vs_optax_map"]["met"]
    return out


def wider_bands(rows: list) -> dict:
    """For each sampler: whether the spread of the draws' means (the epistemic part of the
    bands) is larger in the gap and beyond the data than inside the training range."""
    out = {}
    for row in rows:
        if row["method"] in SETTINGS["regression"]:
            inside = row["test_epistemic_sd"]
            out[row["method"]] = {
                "gap": row["gap_epistemic_sd"] > inside,
                "outside": row["outside_epistemic_sd"] > inside,
            }
    return out


def picture(problem, draws: dict, platform: str) -> None:
    """The predictive bands' picture: the docs' for a CPU run, beside it for another."""
    from models import bnn

    figure = FIGURE if platform == "cpu" else FIGURE.with_stem(f"{FIGURE.stem}_{platform}")

    grid = np.linspace(-4.5, 4.5, 300).astype(np.float32)
    titles = {
        "optax_map": "Optax point estimate (MAP)",
        "nuts": "NUTS posterior predictive",
        "sgld": "SGLD posterior predictive",
    }
    bands = {}
    for name, title in titles.items():
        means, sds = bnn.outputs(problem.target, draws[name], grid)
        bands[title] = bnn.predictive_bands(means, sds)
    bnn.plot_regression(figure, problem, bands, grid)
    print(f"  wrote {figure.relative_to(ROOT)}", flush=True)


NOTES = (
    "NLL in nats per held-out example; ECE over {bins} equal-width confidence bins. R-hat and "
    "ESS over every network parameter, from infer.compare: they are poor, as expected for a "
    "BNN (a multimodal posterior, each chain near one mode of many equivalent ones): these "
    "chains are not converged in the MCMC sense. SGLD's grad_evals are minibatch gradients; "
    "full_data_gradients counts them as full-data passes. SGLD has no Metropolis correction "
    "(approximate). Point estimates: Adam, full batch, same network; optax_map maximises the "
    "same posterior density (the prior as weight decay), optax_mle the likelihood alone."
)


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--quick", action="store_true")
    args = parser.parse_args(argv)
    import jax

    from models import bnn

    suffix = "_quick" if args.quick else ""
    platform = jax.devices()[0].platform
    for problem in (bnn.digits_problem(), bnn.regression_problem()):
        print(f"{problem.name}: {problem.target.description}", flush=True)
        rows, draws = run_problem(problem, args.quick)
        record = {
            "problem": problem.name,
            "target": problem.target.description,
            "prior_scale": bnn.PRIOR_SCALE,
            "num_train": int(len(problem.train[1])),
            "num_test": {k: int(len(v[1])) for k, v in problem.test.items()},
            "rows": rows,
            "notes": NOTES.format(bins=bnn.NUM_BINS),
            "machine": machine("flax", "optax", "scikit-learn"),
        }
        if problem.name == "digits":
            record["goals"] = goals(rows)
            record["prior_scan"] = prior_scan(rows, args.quick)
        else:
            record["bands_wider_away_from_data"] = wider_bands(rows)
            if not args.quick:
                picture(problem, draws, platform)
        path = RESULTS / f"bnn_{problem.name}_{platform}{suffix}.json"
        write_result(path, record)
        print(f"  wrote {path.relative_to(ROOT)}", flush=True)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
