"""Models with a known log marginal likelihood ``log Z``, for checking evidence estimators
such as :func:`infer.ais`."""

from __future__ import annotations

from typing import NamedTuple

import jax.numpy as jnp
import numpy as np

import infer


class EvidenceProblem(NamedTuple):
    """target: the unnormalised posterior (log prior + log likelihood); prior: a NumPyro
    distribution over the same position; log_z: the exact log marginal likelihood;
    exact_posterior_draw: the parameters that simulated the data (an exact posterior draw)."""

    target: infer.Target
    prior: object
    log_z: float
    exact_posterior_draw: np.ndarray


def conjugate_gaussian(
    seed: int, dim: int = 5, num_points: int = 20, prior_scale: float = 2.0, noise: float = 1.0
) -> EvidenceProblem:
    """``mu ~ N(0, prior_scale^2 I_dim)``, ``num_points`` observations ``y_i ~ N(mu,
    noise^2 I)`` simulated from a ``mu`` drawn with ``seed``. Per coordinate the data are
    jointly ``N(0, noise^2 I + prior_scale^2 1 1^T)``, which gives ``log Z`` exactly."""
    import numpyro.distributions as dist
    from scipy import stats

    rng = np.random.default_rng(seed)
    mu_true = rng.normal(0.0, prior_scale, dim)
    data = mu_true + noise * rng.normal(size=(num_points, dim))
    prior = dist.Normal(jnp.zeros(dim), prior_scale).to_event(1)
    observed = jnp.asarray(data, jnp.float32)

    def logdensity_fn(mu):
        return prior.log_prob(mu) + jnp.sum(dist.Normal(mu[None, :], noise).log_prob(observed))

    marginal = stats.multivariate_normal(
        np.zeros(num_points),
        noise**2 * np.eye(num_points) + prior_scale**2 * np.ones((num_points, num_points)),
    )
    log_z = float(sum(marginal.logpdf(data[:, j]) for j in range(dim)))
    target = infer.Target(logdensity_fn, init=jnp.zeros(dim), name="conjugate_gaussian")
    return EvidenceProblem(target, prior, log_z, mu_true)
