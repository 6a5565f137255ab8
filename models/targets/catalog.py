"""Target posteriors with known answers.

``get(name)`` returns an :class:`infer.Target` (the same object on every call, so repeated
runs reuse compiled programs); ``names()`` lists them. Each carries its ground truth: analytic
where it can be, otherwise from a long reference run whose settings are stored beside the
numbers (``models/targets/reference/*.json``, made by
``python -m models.targets.reference``).
"""

from __future__ import annotations

import functools
import json
import math
from collections.abc import Callable
from pathlib import Path

import jax
import jax.numpy as jnp
import numpy as np
from jax.scipy.special import logsumexp
from jax.scipy.stats import cauchy, norm

import infer
from infer import GroundTruth, Target

DEFAULT = "banana"

_REGISTRY: dict[str, Callable[[], Target]] = {}


def _register(fn: Callable[[], Target]) -> Callable[[], Target]:
    _REGISTRY[fn.__name__] = fn
    return fn


def names() -> list[str]:
    """Names of the built-in targets."""
    return sorted(_REGISTRY)


def get(name: str) -> Target:
    """The built-in target ``name`` (the same object on every call).

    Raises:
        TypeError: for a name that is not a string.
        KeyError: for an unknown name, listing the valid ones.
    """
    if not isinstance(name, str):
        raise TypeError(f"name must be a string; got {type(name).__name__}: {name!r}.")
    if name not in _REGISTRY:
        raise KeyError(f"unknown target {name!r}; choose one of: {', '.join(names())}.")
    return _built(name)


@functools.cache
def _built(name: str) -> Target:
    return _REGISTRY[name]()


def _gaussian_truth(name: str, mean, std) -> GroundTruth:
    return GroundTruth(mean={name: np.asarray(mean)}, std={name: np.asarray(std)})


def _normal(loc, scale):
    import numpyro.distributions as dist

    return dist.Normal(jnp.asarray(loc, jnp.float32), jnp.asarray(scale, jnp.float32))


@_register
def normal_1d() -> Target:
    """Standard normal in one dimension (a scalar position)."""
    import numpyro.distributions as dist

    return Target(
        lambda x: -0.5 * x**2,
        init=jnp.zeros(()),
        name="normal_1d",
        ground_truth=_gaussian_truth("x", 0.0, 1.0),
        rejection_proposal=dist.Cauchy(0.0, 1.0),
        description="N(0, 1), scalar.",
        notes={"domain": (-math.inf, math.inf)},  # log-concave: ARS runs on it too
    )


@_register
def normal_10d() -> Target:
    """Standard normal in ten dimensions."""
    return Target(
        lambda x: -0.5 * jnp.sum(x**2),
        init=jnp.zeros(10),
        name="normal_10d",
        ground_truth=_gaussian_truth("x", np.zeros(10), np.ones(10)),
        rejection_proposal=_normal(np.zeros(10), np.full(10, 1.1)),
        description="N(0, I_10).",
    )


CORRELATED_STD = np.array([1.0, 2.0])
CORRELATED_RHO = 0.9


@_register
def correlated_2d() -> Target:
    """Two-dimensional Gaussian with standard deviations (1, 2) and correlation 0.9."""
    import numpyro.distributions as dist

    cov = np.array(
        [
            [CORRELATED_STD[0] ** 2, CORRELATED_RHO * CORRELATED_STD.prod()],
            [CORRELATED_RHO * CORRELATED_STD.prod(), CORRELATED_STD[1] ** 2],
        ]
    )
    precision = jnp.asarray(np.linalg.inv(cov), jnp.float32)

    def logdensity_fn(x):
        return -0.5 * x @ precision @ x

    return Target(
        logdensity_fn,
        init=jnp.zeros(2),
        name="correlated_2d",
        ground_truth=_gaussian_truth("x", np.zeros(2), CORRELATED_STD),
        rejection_proposal=dist.MultivariateNormal(
            jnp.zeros(2), covariance_matrix=jnp.asarray(1.5 * cov, jnp.float32)
        ),
        description="N(0, Σ), sd (1, 2), correlation 0.9.",
    )


ILL_CONDITIONED_STD = np.logspace(-2, 0, 100)


@_register
def ill_conditioned_100d() -> Target:
    """100-dimensional Gaussian with standard deviations from 0.01 to 1 (condition number of
    the covariance 1e4), axis-aligned."""
    precision = jnp.asarray(1.0 / ILL_CONDITIONED_STD**2, jnp.float32)
    return Target(
        lambda x: -0.5 * jnp.sum(precision * x**2),
        init=jnp.zeros(100),
        name="ill_conditioned_100d",
        ground_truth=_gaussian_truth("x", np.zeros(100), ILL_CONDITIONED_STD),
        description="N(0, diag(s^2)), s log-spaced in [0.01, 1].",
    )


BANANA_SCALE = 10.0
BANANA_CURVATURE = 0.03


@_register
def banana() -> Target:
    """Haario's twisted Gaussian ("banana"): x1 ~ N(0, 10^2), x2 | x1 ~ N(b (x1^2 - 100), 1)
    with b = 0.03. Analytic moments: E x = 0, sd x1 = 10, Var x2 = 1 + 2 b^2 10^4 = 19."""
    s, b = BANANA_SCALE, BANANA_CURVATURE

    def logdensity_fn(x):
        x1, x2 = x[0], x[1]
        return -0.5 * (x1 / s) ** 2 - 0.5 * (x2 - b * (x1**2 - s**2)) ** 2

    return Target(
        logdensity_fn,
        init=jnp.zeros(2),
        name="banana",
        ground_truth=_gaussian_truth(
            "x", np.zeros(2), np.array([s, math.sqrt(1.0 + 2.0 * b**2 * s**4)])
        ),
        rejection_proposal=banana_proposal(),
        description="Twisted Gaussian (Haario 1999), b = 0.03.",
    )


def banana_proposal() -> tuple[Callable, Callable]:
    """A rejection proposal shaped like the banana: x1 ~ N(0, 11^2), then x2 ~ Cauchy centred
    on the ridge b (x1^2 - 100) with scale 1. Its ratio to the target is bounded
    (by 1.1 * 2 sqrt(pi / (2 e)) ~ 1.67), so about 60% of proposals are accepted under that
    bound (57% under the one ``infer.rejection`` finds, 5% above its search's maximum)."""
    s, b, s1 = BANANA_SCALE, BANANA_CURVATURE, 11.0

    def sample_fn(rng_key):
        key_x1, key_x2 = jax.random.split(rng_key)
        x1 = s1 * jax.random.normal(key_x1)
        x2 = b * (x1**2 - s**2) + jax.random.cauchy(key_x2)
        return jnp.stack([x1, x2])

    def log_prob_fn(x):
        ridge = b * (x[0] ** 2 - s**2)
        return norm.logpdf(x[0], 0.0, s1) + cauchy.logpdf(x[1], ridge, 1.0)

    return sample_fn, log_prob_fn


FUNNEL_DIM = 10


@_register
def funnel() -> Target:
    """Neal's funnel: v ~ N(0, 3^2), x_i | v ~ N(0, e^v) for i = 1..9 (a dict position).
    Analytic: sd v = 3; E x_i = 0, sd x_i = sqrt(E e^v) = e^(9/4)."""

    def logdensity_fn(position):
        v, x = position["v"], position["x"]
        return norm.logpdf(v, 0.0, 3.0) + jnp.sum(norm.logpdf(x, 0.0, jnp.exp(v / 2.0)))

    k = FUNNEL_DIM - 1
    return Target(
        logdensity_fn,
        init={"v": jnp.zeros(()), "x": jnp.zeros(k)},
        name="funnel",
        ground_truth=GroundTruth(
            mean={"v": np.asarray(0.0), "x": np.zeros(k)},
            std={"v": np.asarray(3.0), "x": np.full(k, math.exp(9.0 / 4.0))},
        ),
        description="Neal's funnel, 10 dimensions (hard: divergences expected).",
    )


MIXTURE_WEIGHTS = np.array([0.3, 0.7])
MIXTURE_MEANS = np.array([[-2.0, -1.0], [2.0, 1.0]])


@_register
def gaussian_mixture() -> Target:
    """Two-component Gaussian mixture in 2-D, unit covariances, weights (0.3, 0.7), means
    (-2, -1) and (2, 1). Analytic moments."""
    log_w = jnp.log(jnp.asarray(MIXTURE_WEIGHTS, jnp.float32))
    means = jnp.asarray(MIXTURE_MEANS, jnp.float32)

    def logdensity_fn(x):
        return logsumexp(log_w - 0.5 * jnp.sum((x[None, :] - means) ** 2, axis=1))

    mean = MIXTURE_WEIGHTS @ MIXTURE_MEANS
    second = MIXTURE_WEIGHTS @ (1.0 + MIXTURE_MEANS**2)
    return Target(
        logdensity_fn,
        init=jnp.zeros(2),
        name="gaussian_mixture",
        ground_truth=_gaussian_truth("x", mean, np.sqrt(second - mean**2)),
        rejection_proposal=_normal(mean, np.array([3.0, 2.0])),
        description="0.3 N((-2,-1), I) + 0.7 N((2,1), I).",
    )


BETA_A, BETA_B = 2.0, 5.0


@_register
def beta_2_5() -> Target:
    """Beta(2, 5) on (0, 1), a scalar position, with a hard boundary (log density -inf
    outside). Meant for exact samplers; its rejection proposal is a 256-piece step envelope."""

    def logdensity_fn(x):
        value = math.log(30.0) + (BETA_A - 1) * jnp.log(x) + (BETA_B - 1) * jnp.log1p(-x)
        return jnp.where((x > 0) & (x < 1), value, -jnp.inf)

    a, b = BETA_A, BETA_B
    mean = a / (a + b)
    std = math.sqrt(a * b / ((a + b) ** 2 * (a + b + 1)))
    envelope = infer.envelopes.piecewise_constant(logdensity_fn, 0.0, 1.0, num_pieces=256)
    return Target(
        logdensity_fn,
        init=jnp.asarray(0.3),
        name="beta_2_5",
        ground_truth=_gaussian_truth("x", mean, std),
        rejection_proposal=envelope.proposal,
        description="Beta(2, 5); exact samplers (a hard boundary at 0 and 1).",
        notes={"log_envelope": envelope.log_envelope, "domain": (0.0, 1.0)},  # and ARS's
    )


CONJUGATE_TRIALS, CONJUGATE_SUCCESSES = 20, 14
CONJUGATE_COUNTS = np.array([3, 5, 2, 4, 6, 3, 4, 2, 5, 4])


def conjugate_model(trials, successes, counts):
    """NumPyro model: p ~ Beta(2, 2), successes ~ Binomial(trials, p); rate ~ Gamma(2, 1),
    counts ~ Poisson(rate). Posterior: Beta(2 + k, 2 + n - k) and Gamma(2 + sum y, 1 + m)."""
    import numpyro
    import numpyro.distributions as dist

    p = numpyro.sample("p", dist.Beta(2.0, 2.0))
    numpyro.sample("successes", dist.Binomial(trials, p), obs=successes)
    rate = numpyro.sample("rate", dist.Gamma(2.0, 1.0))
    with numpyro.plate("observations", counts.shape[0]):
        numpyro.sample("counts", dist.Poisson(rate), obs=counts)


@_register
def conjugate() -> Target:
    """A NumPyro model with constrained parameters and an analytic posterior (see
    :func:`conjugate_model`)."""
    n, k, y = CONJUGATE_TRIALS, CONJUGATE_SUCCESSES, CONJUGATE_COUNTS
    a, b = 2.0 + k, 2.0 + n - k
    shape, rate = 2.0 + y.sum(), 1.0 + y.size
    truth = GroundTruth(
        mean={"p": np.asarray(a / (a + b)), "rate": np.asarray(shape / rate)},
        std={
            "p": np.asarray(math.sqrt(a * b / ((a + b) ** 2 * (a + b + 1)))),
            "rate": np.asarray(math.sqrt(shape) / rate),
        },
    )
    target = Target.from_numpyro(conjugate_model, n, k, jnp.asarray(y))
    return target.with_options(
        name="conjugate",
        ground_truth=truth,
        description="Beta-Binomial and Gamma-Poisson in NumPyro; analytic posterior.",
    )


EIGHT_SCHOOLS_Y = np.array([28.0, 8.0, -3.0, 7.0, -1.0, 1.0, 18.0, 12.0])
EIGHT_SCHOOLS_SIGMA = np.array([15.0, 10.0, 16.0, 11.0, 9.0, 11.0, 10.0, 18.0])


def eight_schools_model(sigma, y=None):
    """Eight schools, non-centred (Rubin 1981; Gelman et al., BDA3 §5.5)."""
    import numpyro
    import numpyro.distributions as dist

    mu = numpyro.sample("mu", dist.Normal(0.0, 5.0))
    tau = numpyro.sample("tau", dist.HalfCauchy(5.0))
    with numpyro.plate("schools", sigma.shape[0]):
        theta_tilde = numpyro.sample("theta_tilde", dist.Normal(0.0, 1.0))
        theta = numpyro.deterministic("theta", mu + tau * theta_tilde)
        numpyro.sample("y", dist.Normal(theta, sigma), obs=y)


@_register
def eight_schools() -> Target:
    """Eight schools, non-centred, in NumPyro; ground truth from a reference run."""
    target = Target.from_numpyro(
        eight_schools_model, jnp.asarray(EIGHT_SCHOOLS_SIGMA), y=jnp.asarray(EIGHT_SCHOOLS_Y)
    )
    return target.with_options(
        name="eight_schools",
        ground_truth=reference_truth("eight_schools"),
        description="Eight schools, non-centred NumPyro model.",
    )


def breast_cancer_data() -> tuple[np.ndarray, np.ndarray]:
    """scikit-learn's breast-cancer data: standardised features with a leading column of ones
    (569, 31), and labels (569,) in {0, 1}."""
    from sklearn.datasets import load_breast_cancer

    features, labels = load_breast_cancer(return_X_y=True)
    features = (features - features.mean(axis=0)) / features.std(axis=0)
    design = np.concatenate([np.ones((features.shape[0], 1)), features], axis=1)
    return design.astype(np.float32), labels.astype(np.float32)


def logistic_regression_logdensity() -> Callable:
    """Log posterior of Bayesian logistic regression on the breast-cancer data, over
    ``beta`` (31,): intercept then 30 coefficients, prior N(0, 1) each."""
    design, labels = breast_cancer_data()
    design, labels = jnp.asarray(design), jnp.asarray(labels)
    signs = 2.0 * labels - 1.0

    def logdensity_fn(position):
        beta = position["beta"]
        logits = design @ beta
        return jnp.sum(jax.nn.log_sigmoid(signs * logits)) - 0.5 * jnp.sum(beta**2)

    return logdensity_fn


def logistic_regression_minibatch() -> dict:
    """The same posterior as :func:`logistic_regression_logdensity`, split as
    :func:`infer.sgld` takes it: the log likelihood of a batch of ``(design (B, 31), signs
    (B,))`` rows (labels as -1 and +1), the N(0, 1) log prior, the 569 rows and their number."""
    design, labels = breast_cancer_data()
    signs = 2.0 * labels - 1.0

    def loglik_fn(position, batch):
        rows, row_signs = batch
        return jnp.sum(jax.nn.log_sigmoid(row_signs * (rows @ position["beta"])))

    def logprior_fn(position):
        return -0.5 * jnp.sum(position["beta"] ** 2)

    data = (jnp.asarray(design), jnp.asarray(signs))
    return {
        "loglik_fn": loglik_fn,
        "logprior_fn": logprior_fn,
        "data": data,
        "num_data": design.shape[0],
    }


@_register
def logistic_regression() -> Target:
    """Bayesian logistic regression on scikit-learn's breast-cancer data (569 x 30,
    standardised, plus intercept), N(0, 1) priors; ground truth from a reference run."""
    return Target(
        logistic_regression_logdensity(),
        init={"beta": jnp.zeros(31)},
        name="logistic_regression",
        ground_truth=reference_truth("logistic_regression"),
        description="Logistic regression, breast-cancer data, 31 parameters.",
        notes={"minibatch": logistic_regression_minibatch()},  # for infer.sgld
    )


def reference_truth(name: str) -> GroundTruth | None:
    """Ground truth stored by ``python -m models.targets.reference``, or None if not yet
    made."""
    path = Path(__file__).parent / "reference" / f"{name}.json"
    if not path.is_file():
        return None
    record = json.loads(path.read_text())
    arrays = {
        key: {site: np.asarray(value) for site, value in record[key].items()}
        for key in ("mean", "std", "mean_se", "std_se")
    }
    return GroundTruth(source=record["source"], **arrays)
