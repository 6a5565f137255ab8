"""Predictive checks: posterior predictive, prior and prior predictive draws of a NumPyro
model's result, as the ArviZ groups that ``az.plot_ppc_dist`` and ``az.plot_loo_pit`` read.
"""

from __future__ import annotations

from dataclasses import replace

import jax
import numpy as np

from infer import validation
from infer.numpyro_models import latent_names, observed_names, predictive_draws
from infer.result import Result
from infer.target import Target


def predictive(
    result: Result,
    target: Target,
    *,
    posterior: bool = True,
    prior: bool = True,
    num_prior_draws: int | None = None,
    seed: int = 0,
) -> Result:
    """``result`` with the groups ``posterior_predictive`` (one simulated data set per draw,
    ``(num_chains, num_samples, *observation_shape)``) and, when ``prior``, ``prior`` (the
    latent sites) and ``prior_predictive`` (the observed sites) drawn from the prior
    (``(1, num_prior_draws, ...)``; default as many as the result's draws per chain), through
    NumPyro's ``Predictive`` with the model's observations left out.

    Args:
        result: a result of ``target`` (its draws hold the model's latent sites).
        target: the NumPyro target it was drawn from (``infer.Target.from_numpyro``).

    Returns:
        A new :class:`infer.Result` with those groups added.

    Raises:
        TypeError, ValueError: for a target that is not a NumPyro model's, or draws that do
            not hold its sites.
    """
    if not isinstance(result, Result):
        raise TypeError(f"result must be an infer.Result; got {type(result).__name__}.")
    if not isinstance(target, Target) or target.source is None:
        raise TypeError(
            "target must be the NumPyro target the result was drawn from "
            "(infer.Target.from_numpyro(model, ...)): predictive checks simulate data from "
            "the model."
        )
    if num_prior_draws is None:
        num_prior_draws = result.num_samples
    num_prior = validation.positive_int("num_prior_draws", num_prior_draws)
    seed = validation.positive_int("seed", seed, "Pass an integer seed.", minimum=0)
    missing = [name for name in latent_names(target.source) if name not in result.draws]
    if posterior and missing:
        raise ValueError(
            f"result's draws lack the model's latent site(s) {', '.join(missing)} (they hold "
            f"{', '.join(result.draws)}): pass a result drawn from this target, "
            "infer.sample(seed, target, ...)."
        )
    groups = dict(result.groups)
    key_posterior, key_prior = jax.random.split(jax.random.key(seed))
    observed = observed_names(target.source)
    if posterior:
        lead = (result.num_chains, result.num_samples)
        flat = {k: np.asarray(v).reshape(-1, *np.shape(v)[2:]) for k, v in result.draws.items()}
        simulated = predictive_draws(target.source, key_posterior, posterior=flat)
        groups["posterior_predictive"] = {
            k: simulated[k].reshape(*lead, *simulated[k].shape[1:]) for k in observed
        }
    if prior:
        drawn = predictive_draws(target.source, key_prior, num_samples=num_prior)
        groups["prior"] = {k: v[None] for k, v in drawn.items() if k not in observed}
        groups["prior_predictive"] = {k: drawn[k][None] for k in observed}
    return replace(result, groups=groups)
