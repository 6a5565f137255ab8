"""Every MCMC sampler against targets with known moments.

Means and standard deviations are z-tested with tolerances from ArviZ's MCSE (see
``stats_checks``), on four dispersed chains with warm-up discarded, on three seeds.
"""

import jax
import jax.numpy as jnp
import numpy as np
import numpyro.distributions as dist
import pytest
from stats_checks import assert_moments_match, moment_z_scores, threshold

import infer
from models import targets

NUM_CHAINS, NUM_SAMPLES, NUM_WARMUP = 4, 2000, 1000


# A positive target whose natural proposal is asymmetric: Gamma(3, 1) with a multiplicative
# random walk x' = x exp(0.5 z). Without the Hastings correction the chain is biased.
GAMMA_SHAPE = 3.0
GAMMA_TARGET = infer.Target(
    lambda x: jnp.where(x > 0, (GAMMA_SHAPE - 1.0) * jnp.log(x) - x, -jnp.inf),
    init=jnp.asarray(2.0),
    name="gamma_3",
    ground_truth=infer.GroundTruth(
        mean={"x": np.asarray(GAMMA_SHAPE)}, std={"x": np.asarray(np.sqrt(GAMMA_SHAPE))}
    ),
)
LOG_STEP = 0.5


def multiplicative_walk(rng_key, x):
    return x * jnp.exp(LOG_STEP * jax.random.normal(rng_key))


def multiplicative_walk_logdensity(new, old):
    """log q(new | old) for the log-normal walk, up to a constant."""
    return -jnp.log(new) - (jnp.log(new) - jnp.log(old)) ** 2 / (2 * LOG_STEP**2)


def gaussian_walk(rng_key, x):
    return x + 0.6 * jax.random.normal(rng_key, x.shape)


def _correlated_proposal():
    std, rho = targets.CORRELATED_STD, targets.CORRELATED_RHO
    cov = np.array([[std[0] ** 2, rho * std.prod()], [rho * std.prod(), std[1] ** 2]])
    return dist.MultivariateNormal(jnp.zeros(2), covariance_matrix=jnp.asarray(1.5 * cov))


# Samplers are built once, so every seed reuses the compiled programs.
CASES = {
    "rwmh-normal_10d": (infer.rwmh(), "normal_10d"),
    "rwmh_dense-correlated_2d": (infer.rwmh(covariance="dense"), "correlated_2d"),
    "rwmh-gaussian_mixture": (infer.rwmh(), "gaussian_mixture"),
    "rwmh_diagonal-conjugate": (infer.rwmh(covariance="diagonal"), "conjugate"),
    "mala-normal_10d": (infer.mala(), "normal_10d"),
    "mala_dense-correlated_2d": (infer.mala(covariance="dense"), "correlated_2d"),
    "mala-gaussian_mixture": (infer.mala(), "gaussian_mixture"),
    "mala-conjugate": (infer.mala(), "conjugate"),
    "nuts-normal_10d": (infer.nuts(), "normal_10d"),
    "nuts-gaussian_mixture": (infer.nuts(), "gaussian_mixture"),
    "nuts-conjugate": (infer.nuts(), "conjugate"),
    "nuts-eight_schools": (infer.nuts(target_accept=0.9), "eight_schools"),
    "nuts-logistic_regression": (infer.nuts(), "logistic_regression"),
    "hmc-normal_10d": (infer.hmc(num_steps=8), "normal_10d"),
    "hmc-correlated_2d": (infer.hmc(num_steps=8), "correlated_2d"),
    "hmc-conjugate": (infer.hmc(num_steps=8), "conjugate"),
    "independent_mh-normal_1d": (infer.independent_mh(dist.Cauchy(0.0, 1.0)), "normal_1d"),
    "independent_mh-correlated_2d": (infer.independent_mh(_correlated_proposal()), "correlated_2d"),
    "independent_mh-gaussian_mixture": (
        infer.independent_mh(dist.Normal(jnp.array([0.8, 0.4]), jnp.array([3.0, 2.0]))),
        "gaussian_mixture",
    ),
    "mh-gamma": (infer.mh(multiplicative_walk, multiplicative_walk_logdensity), GAMMA_TARGET),
    "mh_symmetric-normal_10d": (infer.mh(gaussian_walk, None), "normal_10d"),
    "mh_symmetric-correlated_2d": (infer.mh(gaussian_walk, None), "correlated_2d"),
}


def _target(target):
    return targets.get(target) if isinstance(target, str) else target


@pytest.mark.parametrize("case", list(CASES))
def test_moments_match_ground_truth(case, seed):
    sampler, target = CASES[case]
    target = _target(target)
    result = infer.sample(
        seed, target, sampler, num_chains=NUM_CHAINS, num_samples=NUM_SAMPLES, num_warmup=NUM_WARMUP
    )
    assert_moments_match(result, target.ground_truth)


def test_missing_hastings_correction_is_detected():
    """Power check: the same z-test flags the multiplicative walk run without its Hastings
    correction (declared symmetric), which targets x * Gamma(3, 1) instead of Gamma(3, 1)."""
    wrong = infer.mh(multiplicative_walk, None)
    result = infer.sample(0, GAMMA_TARGET, wrong, num_chains=NUM_CHAINS, num_samples=NUM_SAMPLES)
    scores = moment_z_scores(result, GAMMA_TARGET.ground_truth)
    assert max(float(np.max(z)) for z in scores.values()) > threshold(2)


@pytest.mark.parametrize(
    "sampler, target, low, high",
    [
        (infer.rwmh(), "normal_10d", 0.18, 0.30),
        (infer.rwmh(), "normal_1d", 0.36, 0.52),
        (infer.rwmh(covariance="dense"), "correlated_2d", 0.18, 0.30),
        (infer.mala(), "normal_10d", 0.50, 0.65),
    ],
    ids=["rwmh-10d", "rwmh-1d", "rwmh_dense-2d", "mala-10d"],
)
def test_step_size_adapts_toward_target_acceptance(sampler, target, low, high):
    result = infer.sample(0, targets.get(target), sampler, num_chains=4, num_samples=2000)
    assert low < result.acceptance_rate < high
    # Frozen after warm-up: one step size per chain for the whole sampling phase.
    step_size = result.stats["step_size"]
    assert np.all(step_size == step_size[:, :1])


def test_covariance_adaptation_learns_the_scales():
    """On a 10-D Gaussian whose standard deviations span 0.1 to 10, the diagonal proposal
    learned in warm-up matches the target's scales: typically to 20%, every one within a
    factor of three (an isotropic proposal would be off by up to 100x)."""
    std = np.logspace(-1, 1, 10)
    precision = jnp.asarray(1.0 / std**2, jnp.float32)
    target = infer.Target(lambda x: -0.5 * jnp.sum(precision * x**2), init=jnp.zeros(10))
    result = infer.sample(
        0,
        target,
        infer.rwmh(covariance="diagonal"),
        num_chains=4,
        num_samples=200,
        num_warmup=2000,
    )
    ratio = np.asarray(result.info["proposal_std"]) / std
    assert ratio.shape == (4, 10)
    assert 0.8 < np.median(ratio) < 1.25, ratio.round(2)
    assert np.all((ratio > 1 / 3) & (ratio < 3.0)), ratio.round(2)
