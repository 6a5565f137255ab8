"""Every MCMC sampler against targets with known answers.

Each run is checked by ``stats_checks.moment_check``: means, standard deviations, the 5% and
95% quantiles where the marginals are known, and known correlations, each pooled over the
coordinates into one chi-square statistic (tolerances from ArviZ's MCSE; about one false
alarm in 1,000 runs, measured), on three seeds, with warm-up discarded. Every run must also
have the ESS to catch a variance 20% off and a mean 0.3 sd off with power at least 0.9
(computed from its own MCSEs): a case that fails on power needs more chains or draws, not a
looser tolerance. ``tests/test_mutations.py`` runs deliberately broken samplers through the
same checks.
"""

import warnings
from typing import NamedTuple

import jax
import jax.numpy as jnp
import numpy as np
import numpyro.distributions as dist
import pytest
from scipy import stats
from stats_checks import assert_moments_pass, known, moment_check

import infer
from models import targets

pytestmark = pytest.mark.slow  # a module `make test-fast` leaves out

NUM_WARMUP = 1000


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


class Case(NamedTuple):
    """A sampler, its target, and the run that gives the check its power (>= 0.9)."""

    sampler: object
    target: object  # a built-in target's name, or an infer.Target
    num_chains: int = 4
    num_samples: int = 2000


# Random walks are cheap per step but mix slowly: they run 16 or more chains (vectorised, so
# nearly free) to reach the power the gradient samplers have with four. HMC runs a fixed
# trajectory of length 1.5: eight steps of the adapted size land near 2 pi, the period of a
# whitened Gaussian, where chains hardly move (ESS 10-20 of 8000 on `conjugate`) and
# ArviZ's ESS of such near-periodic chains is not to be trusted. MALA crosses between the
# mixture's modes rarely (about 35 times in 2,000 steps), so its run is long enough for the
# mode weights' MCSE to hold (at 16 x 2,000, 1% of seeds failed). Settings measured on 150 to
# 300 seeds per case. Samplers are built once, so every seed reuses the compiled programs.
HMC = infer.hmc(trajectory_length=1.5)
CASES = {
    "rwmh-normal_10d": Case(infer.rwmh(), "normal_10d", 16),
    "rwmh_dense-correlated_2d": Case(infer.rwmh(covariance="dense"), "correlated_2d", 16),
    "rwmh-gaussian_mixture": Case(infer.rwmh(), "gaussian_mixture", 16),
    "rwmh_diagonal-conjugate": Case(infer.rwmh(covariance="diagonal"), "conjugate", 16),
    "mala-normal_10d": Case(infer.mala(), "normal_10d"),
    "mala_dense-correlated_2d": Case(infer.mala(covariance="dense"), "correlated_2d"),
    "mala-gaussian_mixture": Case(infer.mala(), "gaussian_mixture", 16, 8000),
    "mala-conjugate": Case(infer.mala(), "conjugate", 8),
    "nuts-normal_10d": Case(infer.nuts(), "normal_10d"),
    "nuts-gaussian_mixture": Case(infer.nuts(), "gaussian_mixture"),
    "nuts-conjugate": Case(infer.nuts(), "conjugate"),
    "nuts-eight_schools": Case(infer.nuts(target_accept=0.9), "eight_schools"),
    "nuts-logistic_regression": Case(infer.nuts(), "logistic_regression", 4, 1000),
    "hmc-normal_10d": Case(HMC, "normal_10d"),
    "hmc-correlated_2d": Case(HMC, "correlated_2d"),
    "hmc-conjugate": Case(HMC, "conjugate"),
    "independent_mh-normal_1d": Case(infer.independent_mh(dist.Cauchy(0.0, 1.0)), "normal_1d"),
    "independent_mh-correlated_2d": Case(
        infer.independent_mh(_correlated_proposal()), "correlated_2d"
    ),
    "independent_mh-gaussian_mixture": Case(
        infer.independent_mh(dist.Normal(jnp.array([0.8, 0.4]), jnp.array([3.0, 2.0]))),
        "gaussian_mixture",
    ),
    "mh-gamma": Case(
        infer.mh(multiplicative_walk, multiplicative_walk_logdensity), GAMMA_TARGET, 32
    ),
    "mh_symmetric-normal_10d": Case(infer.mh(gaussian_walk, None), "normal_10d", 16),
    "mh_symmetric-correlated_2d": Case(infer.mh(gaussian_walk, None), "correlated_2d", 32, 8000),
}
# The conjugate model's programs take 7-15 s each to compile on a 2-core CPU (the Beta,
# Gamma, Binomial and Poisson densities and their gradients, inside each sampler's loop):
# `make test-thorough` checks NUTS, RWMH, MALA and HMC on it. `make test` checks NUTS on
# NumPyro models through eight schools (and the workflow tests), every sampler on one or more
# of the other targets, and the diagonal RWMH proposal's learned scales by
# `test_covariance_adaptation_learns_the_scales`. A second and third target of a sampler
# whose programs are slow to compile (NUTS 3-10 s a target, HMC) or that a correlated or
# multimodal target checks harder run in `make test-thorough`: NUTS on the logistic
# regression (15 s over three seeds), the mixture and the 10-d Gaussian, the random walks and
# HMC on the 10-d Gaussian, the independent proposal on the correlated Gaussian and the 1-d
# normal (it keeps the mixture), MALA's dense metric (RWMH's adapts the same covariance).
THOROUGH = {
    "rwmh_diagonal-conjugate",
    "mala-conjugate",
    "hmc-conjugate",
    "nuts-conjugate",
    "rwmh-normal_10d",
    "nuts-logistic_regression",
    "nuts-gaussian_mixture",
    "hmc-normal_10d",
    "mh_symmetric-normal_10d",
    "independent_mh-correlated_2d",
    "independent_mh-normal_1d",
    "nuts-normal_10d",
    "mala_dense-correlated_2d",
}
# Over ~3 s each (compilation included): `make test-fast` skips them.
SLOW = {
    "rwmh_diagonal-conjugate",
    "mala-conjugate",
    "nuts-normal_10d",
    "nuts-gaussian_mixture",
    "nuts-conjugate",
    "nuts-eight_schools",
    "nuts-logistic_regression",
    "hmc-normal_10d",
    "hmc-conjugate",
}


def target_of(case: Case) -> infer.Target:
    return targets.get(case.target) if isinstance(case.target, str) else case.target


def run(case: Case, seed, sampler=None) -> infer.Result:
    """``case``'s run on ``seed``, with its sampler or (for a mutation) ``sampler``."""
    return infer.sample(
        seed,
        target_of(case),
        case.sampler if sampler is None else sampler,
        num_chains=case.num_chains,
        num_samples=case.num_samples,
        num_warmup=NUM_WARMUP,
    )


def check(result, target: infer.Target):
    """The moment check of ``result``, with every truth known for ``target``."""
    extras = known(target.name)
    if target is GAMMA_TARGET:
        extras = {"marginals": {"x": stats.gamma(GAMMA_SHAPE)}, "correlations": None}
    return moment_check(result, target.ground_truth, **extras)


@pytest.mark.parametrize(
    "case",
    [
        pytest.param(
            name,
            marks=[pytest.mark.slow] * (name in SLOW) + [pytest.mark.thorough] * (name in THOROUGH),
        )
        for name in CASES
    ],
)
def test_moments_match_ground_truth(case, seed):
    result = run(CASES[case], seed)
    assert_moments_pass(check(result, target_of(CASES[case])))


def assert_frozen_after_warmup(result) -> None:
    """One step size per chain for the whole sampling phase: adaptation stopped at warm-up."""
    step_size = np.asarray(result.stats["step_size"])
    moved = np.any(step_size != step_size[:, :1], axis=1)
    assert not np.any(moved), (
        f"step size not frozen after warm-up in chains {np.flatnonzero(moved)}"
    )


@pytest.mark.parametrize(
    "sampler, target, low, high",
    [
        (infer.rwmh(), "normal_10d", 0.18, 0.30),
        (infer.rwmh(), "normal_1d", 0.36, 0.52),
        pytest.param(  # 2.6 s; dense RWMH's moments on correlated_2d stay
            infer.rwmh(covariance="dense"),
            "correlated_2d",
            0.18,
            0.30,
            marks=pytest.mark.thorough,
        ),
        (infer.mala(), "normal_10d", 0.50, 0.65),
    ],
    ids=["rwmh-10d", "rwmh-1d", "rwmh_dense-2d", "mala-10d"],
)
def test_step_size_adapts_toward_target_acceptance(sampler, target, low, high):
    result = infer.sample(0, targets.get(target), sampler, num_chains=4, num_samples=2000)
    assert low < result.acceptance_rate < high
    assert_frozen_after_warmup(result)


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


@pytest.mark.thorough  # an edge case, 3 s
def test_a_dense_covariance_learned_from_few_draws_does_not_collapse():
    """On a 20-D Gaussian of condition number 7, MALA's dense proposal learned in 1,000
    warm-up steps was near singular (as RWMH's, whose eigenvalues against the target's ran
    from 2e-4 to 2.3): bulk ESS 6-12 from 4,000 draws, where the isotropic one gets 250
    (median). Shrunk toward
    its diagonal by the window's effective draws, the median is 270-340 on five seeds (the
    smallest 26-217)."""
    dim = 20
    rng = np.random.default_rng(0)
    root = rng.normal(size=(dim, dim))
    covariance = root @ root.T / dim + 0.5 * np.eye(dim)
    precision = jnp.asarray(np.linalg.inv(covariance), jnp.float32)
    target = infer.Target(lambda x: -0.5 * x @ precision @ x, init=jnp.ones(dim))
    result = infer.sample(1, target, infer.mala(covariance="dense"), num_chains=4, num_samples=1000)
    ess = np.asarray(infer.summary(result)["ess_bulk"])
    assert np.median(ess) > 100 and ess.min() > 10, ess.round()


def _strongly_correlated() -> infer.Target:
    """A 2-d Gaussian of correlation 0.99 and scales 1 and 10."""
    covariance = np.array([[1.0, 9.9], [9.9, 100.0]])
    precision = jnp.asarray(np.linalg.inv(covariance), jnp.float32)
    return infer.Target(lambda x: -0.5 * x @ precision @ x, init=jnp.zeros(2))


@pytest.mark.thorough  # NUTS's hand-back, 11-13 s (two programs of the dense metric)
def test_what_warm_up_tuned_can_be_handed_back_to_skip_it():
    """``result.state.tuned`` names each chain's tuned values as the sampler's own arguments.
    On a Gaussian of correlation 0.99 and scales 1 and 10, NUTS handed chain 0's step size
    and dense inverse mass matrix runs without warm-up at acceptance 0.90-0.91 (three
    seeds); the same step size with the identity matrix accepts under 0.01 and diverges in
    78-100% of steps, so values that were not the learned ones fail."""
    target = _strongly_correlated()
    first = infer.sample(0, target, infer.nuts(dense_mass=True), num_chains=2, num_samples=200)
    tuned = first.state.tuned
    assert tuned["step_size"].shape == (2,) and tuned["inverse_mass_matrix"].shape == (2, 2, 2)
    again = infer.nuts(**{name: value[0] for name, value in tuned.items()})
    later = infer.sample(1, target, again, num_samples=200, num_warmup=0, init=first.state)
    assert later.acceptance_rate > 0.6 and np.mean(later.stats["diverging"]) < 0.05
    assert np.all(np.asarray(later.stats["step_size"]) == tuned["step_size"][0])


@pytest.mark.parametrize(
    ("make", "matrix"), [(infer.nuts, "inverse_mass_matrix"), (infer.rwmh, "covariance")]
)
def test_tuned_values_handed_back_whole_or_in_numpyros_format_are_told_how_to_fix(make, matrix):
    """Every chain's tuned values (state.tuned, chain axis first) handed back whole said only
    "must be a positive number" or gave a shape; NumPyro's dict of blocks failed in float(),
    and its block list of dense_mass named no fix."""
    one_per_chain = r"pass one chain's, tuned\['{}'\]\[chain\]"
    with pytest.raises(TypeError, match=one_per_chain.format("step_size")):
        make(step_size=np.array([0.6, 0.7]))
    for shape in ((4, 3), (4, 3, 3)):
        with pytest.raises(ValueError, match=one_per_chain.format(matrix)):
            make(**{matrix: np.ones(shape)})
    with pytest.raises(ValueError, match="positive finite number; got -1.0. (It is|Pass step)"):
        make(step_size=np.asarray(-1.0))  # one value: the usual advice
    if make is infer.nuts:
        with pytest.raises(TypeError, match="got a dict, NumPyro's blocks keyed by site names"):
            make(inverse_mass_matrix={("x",): np.ones(3)})
        with pytest.raises(TypeError, match=r"structured mass matrices\) are not supported"):
            make(dense_mass=[("a", "b"), ("c",)])


def test_what_rwmh_warm_up_tuned_can_be_handed_back_to_skip_it():
    """RWMH's learned covariance handed back keeps its acceptance in the tuned band."""
    target = _strongly_correlated()
    first = infer.sample(0, target, infer.rwmh(covariance="dense"), num_chains=2, num_samples=200)
    tuned = first.state.tuned
    assert sorted(tuned) == ["covariance", "step_size"] and tuned["covariance"].shape == (2, 2, 2)
    again = infer.rwmh(**{name: value[0] for name, value in tuned.items()})
    later = infer.sample(1, target, again, num_samples=1000, num_warmup=0, init=first.state)
    low, high = first.info["acceptance_band"]
    assert low < later.acceptance_rate < high
    assert infer.sample(0, target, infer.rwmh(step_size=0.5), num_warmup=0).state.tuned == {
        "step_size": pytest.approx(np.full(4, 0.5))
    }


@pytest.mark.thorough  # an edge case, 4 s
def test_hmc_reports_the_step_it_takes_with_a_trajectory_length():
    """NumPyro's HMC takes ceil(L / step_size) steps of L / that many: a step size of 3, 10 or
    5e9 with L = 1.5 is one step of 1.5 (the same draws), which stats now say."""
    target = infer.Target(lambda x: -0.5 * ((x - 3.0) / 2.0) ** 2, init=jnp.asarray(0.0))
    draws = []
    for step_size in (3.0, 10.0, 0.7):
        sampler = infer.hmc(step_size, trajectory_length=1.5, adapt_step_size=False)
        result = infer.sample(0, target, sampler, num_chains=2, num_samples=50, num_warmup=0)
        steps = np.asarray(result.stats["n_steps"])
        np.testing.assert_allclose(np.asarray(result.stats["step_size"]), 1.5 / steps, rtol=1e-6)
        draws.append(np.asarray(result.draws["x"]))
    np.testing.assert_array_equal(draws[0], draws[1])  # one step of 1.5 both
    assert np.all(np.asarray(result.stats["n_steps"]) == 3)  # 0.7: 3 steps of 0.5


@pytest.mark.thorough  # an edge case, 3 s
def test_hmc_cuts_a_trajectory_of_tiny_steps_at_1023():
    """A fixed step size 1e-6 with L = 2 pi took 6.3 million leapfrog steps a draw (the
    default hmc() on a hard wall, whose warm-up drives the step size there, took 3 minutes
    for 70 draws of a 1-D half-normal): now 1,023 steps of it, reported as taken."""
    target = infer.Target(lambda x: -0.5 * x**2, init=jnp.asarray(0.0))
    tiny = infer.hmc(1e-6, adapt_step_size=False, adapt_mass_matrix=False)
    result = infer.sample(0, target, tiny, num_chains=2, num_samples=20, num_warmup=0)
    assert np.all(np.asarray(result.stats["n_steps"]) == 1023)
    np.testing.assert_allclose(np.asarray(result.stats["step_size"]), 1e-6, rtol=1e-3)
    assert result.num_grad_evals <= 2 * (20 * 1023 + 1)


@pytest.mark.thorough  # a warm-up on a hard wall, 3 s
def test_hmc_on_a_hard_wall_keeps_its_trajectory_length_and_flags_divergences():
    """Warm-up near the wall cut trajectories at 1,023 tiny steps, and each cut length was
    kept as the chain's trajectory length for good: by the end of warm-up a tiny length let
    the tuned step size grow to float32's largest, 3.4e38, and every draw took 0 steps,
    accepted, no divergence flagged (only the stuck-chain warning told). The length given
    (2 pi) stays; the step size stays small, trajectories are cut and divergences counted."""
    wall = infer.Target(lambda x: jnp.where(x > 0, -0.5 * x**2, -jnp.inf), init=jnp.asarray(1.0))
    for seed in (0, 1):
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", infer.DiagnosticWarning)
            run = infer.sample(seed, wall, infer.hmc(), num_chains=2, num_samples=50, num_warmup=99)
        assert np.all(np.asarray(run.state.tuned["step_size"]) < 0.1)
        assert np.all(np.asarray(run.stats["n_steps"]) >= 1)
        assert run.num_divergent > 0


@pytest.mark.thorough  # a warm-up at a tiny scale, 3 s
def test_hmc_with_a_step_size_tuned_above_its_trajectory_takes_one_step_of_it():
    """On N(0, (1e-8)**2) with trajectory_length=1.5e-8 warm-up drives the step size up to
    float32's largest, and NumPyro's count of steps, ceil(L / step_size), underflowed to 0:
    every draw took no step, accepted, and the chains never moved. One step of the whole
    length is taken instead, as the docs say; the tuned step size stays as tuned."""
    tiny = infer.Target(lambda x: -0.5 * jnp.sum((x / 1e-8) ** 2), init=jnp.zeros(2))
    sampler = infer.hmc(trajectory_length=1.5e-8)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", infer.DiagnosticWarning)
        run = infer.sample(0, tiny, sampler, num_chains=2, num_samples=100, num_warmup=300)
    assert np.all(np.asarray(run.stats["n_steps"]) == 1)
    np.testing.assert_allclose(np.asarray(run.stats["step_size"]), 1.5e-8, rtol=1e-6)
    assert np.all(np.asarray(run.state.tuned["step_size"]) > 1.5e-8)
    moved = np.asarray(run.draws["x"])[:, :, 0]
    assert all(len(np.unique(chain)) > 10 for chain in moved)


def test_a_step_size_float32_cannot_hold_is_refused():
    """1e-50 passed as a positive finite step size and was 0 in float32: chains of steps of
    nothing, every one accepted."""
    for make in (infer.nuts, infer.hmc, infer.rwmh, infer.mala):
        with pytest.raises(ValueError, match="below float32's smallest normal number"):
            make(step_size=1e-50)
        make(step_size=1e-30)
    with jax.enable_x64(True):
        infer.nuts(step_size=1e-50)


def test_options_a_fixed_step_size_ignores_are_warned_about_and_bounds_checked():
    with pytest.warns(UserWarning, match="target_accept=0.9 is ignored: adapt_step_size=False"):
        infer.nuts(adapt_step_size=False, target_accept=0.9)
    with pytest.warns(UserWarning, match="target_accept=0.3 is ignored: step_size=0.5 is fixed"):
        infer.rwmh(step_size=0.5, target_accept=0.3)
    with pytest.warns(UserWarning, match="target_accept=0.6 is ignored: step_size=0.5 is fixed"):
        infer.mala(step_size=0.5, target_accept=0.6)
    with warnings.catch_warnings():  # the defaults say nothing: MALA's warned of its own 0.574
        warnings.simplefilter("error")
        for fixed in (infer.rwmh, infer.mala):
            fixed(step_size=0.5)
    # recorded as before the default became None: older MALA checkpoints still resume
    assert infer.mala().settings()["target_accept"] == 0.574
    assert infer.nuts(target_accept=jnp.asarray(0.9)).settings()["target_accept"] > 0.89
    assert infer.nuts().settings()["target_accept"] == 0.8
    # the settings (and the repr) use the functions' own names: they remake the sampler
    for make in (infer.nuts, infer.hmc):
        sampler = make(target_accept=0.9)
        assert make(**sampler.settings()).settings() == sampler.settings()
        assert "target_accept=0.9" in repr(sampler) and "target_accept_prob" not in repr(sampler)
    with pytest.raises(ValueError, match="max_tree_depth must be at most 30"):
        infer.nuts(max_tree_depth=100)
    with pytest.raises(ValueError, match="leave it out to have the warm-up estimate it"):
        infer.nuts(dense_mass=True, inverse_mass_matrix=np.array([[1.0, 2.0], [2.0, 1.0]]))


@pytest.mark.thorough  # a rarer warning, 4 s
def test_divergences_without_warm_up_advise_tuning_not_target_accept():
    narrow = infer.Target(lambda x: -0.5 * jnp.sum((x / 0.01) ** 2), init=jnp.zeros(2))
    with pytest.warns(infer.DiagnosticWarning) as caught:
        infer.sample(0, narrow, infer.nuts(), num_chains=2, num_samples=50, num_warmup=0)
    said = [str(w.message) for w in caught if "divergent" in str(w.message)]
    assert said and "No warm-up ran (num_warmup=0)" in said[0]
    assert "higher target_accept" not in said[0]


def test_hmc_below_the_cap_takes_numpyros_own_trajectory():
    # 1,022.8 steps' length: NumPyro's 1,023 steps of L / 1023, as without the cap (a cap at
    # 1,022.5 step sizes cut the trajectory there, and the draws changed)
    target = infer.Target(lambda x: -0.5 * jnp.sum(x**2), init=jnp.zeros(2))
    options = {"adapt_step_size": False, "adapt_mass_matrix": False}
    sampler = infer.hmc(0.01, trajectory_length=0.01 * 1022.8, **options)
    result = infer.sample(0, target, sampler, num_chains=1, num_samples=3, num_warmup=0)
    assert np.all(np.asarray(result.stats["n_steps"]) == 1023)
    np.testing.assert_allclose(
        np.asarray(result.stats["step_size"]), 0.01 * 1022.8 / 1023, rtol=1e-6
    )
