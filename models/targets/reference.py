"""Make the ground truth of targets whose posterior moments are not analytic.

Run ``python -m models.targets.reference``. Each target is sampled with NumPyro's own
``MCMC`` and ``NUTS`` (not through ``infer``, so the tests that compare ``infer``'s samplers
against these numbers are not checking the code against itself): 8 chains of 25,000 draws
after 2,000 warm-up steps, target acceptance 0.95. Means and standard deviations are stored
with their Monte Carlo standard errors (ArviZ) in ``models/targets/reference/<name>.json``.
"""

from __future__ import annotations

import json
from pathlib import Path

import arviz_base
import arviz_stats
import jax
import numpy as np
from numpyro.infer import MCMC, NUTS

from infer.io import write_atomically
from models.targets import catalog

NUM_CHAINS, NUM_WARMUP, NUM_SAMPLES, SEED = 8, 2_000, 25_000, 1
FOLDER = Path(__file__).parent / "reference"


def _run(kernel, init_params=None, model_kwargs=None, model_args=()) -> dict:
    mcmc = MCMC(
        kernel,
        num_warmup=NUM_WARMUP,
        num_samples=NUM_SAMPLES,
        num_chains=NUM_CHAINS,
        chain_method="vectorized",
        progress_bar=False,
    )
    mcmc.run(jax.random.key(SEED), *model_args, init_params=init_params, **(model_kwargs or {}))
    return {k: np.asarray(v) for k, v in mcmc.get_samples(group_by_chain=True).items()}


def _record(draws: dict, note: str) -> dict:
    tree = arviz_base.from_dict({"posterior": draws})
    moments = {
        "mean": {k: np.asarray(v).mean(axis=(0, 1)) for k, v in draws.items()},
        "std": {k: np.asarray(v).std(axis=(0, 1), ddof=1) for k, v in draws.items()},
        "mean_se": arviz_stats.mcse(tree, method="mean"),
        "std_se": arviz_stats.mcse(tree, method="sd"),
    }
    out = {}
    for key, values in moments.items():
        out[key] = {k: np.asarray(values[k]).tolist() for k in draws}
    max_rhat = float(max(np.max(arviz_stats.rhat(tree)[k].values) for k in draws))
    out["source"] = (
        f"reference run: NumPyro MCMC/NUTS (target_accept 0.95), {NUM_CHAINS} chains x "
        f"{NUM_SAMPLES} draws after {NUM_WARMUP} warm-up, seed {SEED}, max R-hat "
        f"{max_rhat:.4f}; {note} (python -m models.targets.reference)"
    )
    return out


def eight_schools() -> dict:
    draws = _run(
        NUTS(catalog.eight_schools_model, target_accept_prob=0.95),
        model_args=(catalog.EIGHT_SCHOOLS_SIGMA,),
        model_kwargs={"y": catalog.EIGHT_SCHOOLS_Y},
    )
    return _record(draws, "non-centred eight schools")


def logistic_regression() -> dict:
    logdensity_fn = catalog.logistic_regression_logdensity()
    kernel = NUTS(potential_fn=lambda z: -logdensity_fn(z), target_accept_prob=0.95)
    init = {"beta": np.zeros((NUM_CHAINS, 31), np.float32)}
    draws = _run(kernel, init_params=init)
    return _record(draws, "breast-cancer logistic regression")


def main() -> None:
    for name, make in [
        ("eight_schools", eight_schools),
        ("logistic_regression", logistic_regression),
    ]:
        record = make()
        text = json.dumps(record, indent=1)
        write_atomically(FOLDER / f"{name}.json", lambda tmp, text=text: Path(tmp).write_text(text))
        print(f"{name}: {record['source']}")


if __name__ == "__main__":
    main()
