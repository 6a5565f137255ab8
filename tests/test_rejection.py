"""Rejection sampling: exact iid draws (KS tests against exact CDFs), the envelope, and the
errors and warnings it owes the user."""

import math
import warnings

import jax
import jax.numpy as jnp
import numpy as np
import numpyro
import numpyro.distributions as dist
import pytest
from scipy import stats
from stats_checks import assert_ks_matches

import infer
from infer.random_bits import bernoulli_log
from models import targets

# Densities with exact CDFs, each with a proposal that covers it.
GAMMA = infer.Target(
    lambda x: jnp.where(x > 0, 2.0 * jnp.log(x) - x, -jnp.inf), init=jnp.asarray(2.0), name="g3"
)
TRUNCATED = infer.Target(
    lambda x: jnp.where((x > 0) & (x < 2), -0.5 * (x - 0.5) ** 2, -jnp.inf),
    init=jnp.asarray(1.0),
    name="truncated_normal",
)
CASES = {
    "normal-cauchy": (targets.get("normal_1d"), dist.Cauchy(0.0, 1.0), stats.norm.cdf),
    "beta-step_envelope": (
        targets.get("beta_2_5"),
        targets.get("beta_2_5").rejection_proposal,
        stats.beta(2, 5).cdf,
    ),
    "gamma-exponential": (GAMMA, dist.Exponential(1.0 / 3.0), stats.gamma(3).cdf),
    "truncated_normal-uniform": (
        TRUNCATED,
        dist.Uniform(0.0, 2.0),
        stats.truncnorm(-0.5, 1.5, loc=0.5).cdf,
    ),
}
SAMPLERS = {name: infer.rejection(proposal) for name, (_, proposal, _) in CASES.items()}


@pytest.mark.parametrize("case", list(CASES))
def test_draws_match_exact_cdf(case, seed):
    target, _, cdf = CASES[case]
    result = infer.sample(seed, target, SAMPLERS[case], num_chains=4, num_samples=5000)
    assert result.draws["x"].shape == (4, 5000)
    assert result.num_warmup == 0 and result.info["envelope_violations"] == 0
    assert_ks_matches(result.draws["x"], cdf)


def test_found_envelope_is_the_true_bound_plus_the_margin():
    # sup exp(-x^2/2) / Cauchy(x) = 2 pi exp(-1/2), reached at x = +-1.
    true_log_bound = math.log(2 * math.pi) - 0.5
    result = infer.sample(0, targets.get("normal_1d"), SAMPLERS["normal-cauchy"], num_samples=10)
    found = result.info["log_envelope"]
    assert true_log_bound <= found <= true_log_bound + math.log(1.05) + 1e-3
    assert result.info["envelope_source"] == "found"


@pytest.mark.thorough  # an edge case, 3 s
def test_a_tiny_acceptance_probability_is_not_floored_at_float32_resolution():
    """A float32 uniform is exactly 0 with probability 2**-23, so ``u < exp(log_excess)``
    accepted every proposal at least that often: 2**26 proposals of probability 2**-40 gave
    about 8 draws. Taking all 32 bits of the random word leaves a floor of 2**-32 (expected
    0.016 here); a probability of 0.3 is still met."""
    proposals = 2**22

    @jax.jit
    def accepted(log_q):
        def count(i, total):
            key = jax.random.fold_in(jax.random.key(0), i)
            return total + jnp.sum(bernoulli_log(key, jnp.full(proposals, log_q)), dtype=jnp.int32)

        return jax.lax.fori_loop(0, 16, count, jnp.zeros((), jnp.int32))

    assert int(accepted(jnp.float32(-40 * math.log(2)))) <= 1
    n = 16 * proposals
    assert abs(int(accepted(jnp.float32(math.log(0.3)))) / n - 0.3) < 5 * math.sqrt(0.21 / n)


def test_acceptance_rate_is_one_over_m(seed):
    """For a normalised target the acceptance probability is exactly 1/M (here M = e^0.45,
    above the true bound sup f/g = sqrt(2 pi / e) = e^0.419)."""
    normalised = infer.Target(lambda x: -0.5 * x**2 - 0.5 * math.log(2 * math.pi), name="n")
    sampler = infer.rejection(dist.Cauchy(0.0, 1.0), log_envelope=0.45)
    result = infer.sample(seed, normalised, sampler, num_chains=2, num_samples=50_000)
    expected = math.exp(-0.45)
    n = result.info["num_proposals"]
    se = math.sqrt(expected * (1 - expected) / n)
    assert abs(result.info["acceptance_rate"] - expected) < 4.0 * se


def test_same_seed_same_draws_and_chains_are_independent_batches():
    sampler, target = SAMPLERS["gamma-exponential"], GAMMA
    first = infer.sample(3, target, sampler, num_chains=3, num_samples=200)
    second = infer.sample(3, target, sampler, num_chains=3, num_samples=200)
    np.testing.assert_array_equal(first.draws["x"], second.draws["x"])
    assert not np.array_equal(first.draws["x"][0], first.draws["x"][1])
    assert second.info["cache_hit"]


@pytest.mark.thorough  # a rarer warning, 6 s
def test_missed_spike_is_counted_and_warned():
    """A step envelope built on a coarse grid misses a narrow spike between grid points: the
    sampler counts the proposals where f > M g, warns, and reports the largest ratio."""

    def spiky(x):
        smooth = -0.5 * ((x - 0.5) / 0.2) ** 2
        spike = math.log(6.0) - 0.5 * ((x - 0.51234) / 2e-6) ** 2
        return jnp.logaddexp(smooth, spike)

    envelope = infer.envelopes.piecewise_constant(spiky, 0.0, 1.0, num_pieces=8, points_per_piece=4)
    target = infer.Target(spiky, init=jnp.asarray(0.5), name="spiky")
    sampler = infer.rejection(envelope.proposal, log_envelope=envelope.log_envelope)
    with pytest.warns(infer.EnvelopeWarning, match=r"proposals had f > M\*g .* not exact"):
        result = infer.sample(0, target, sampler, num_chains=1, num_samples=2_000_000)
    assert result.info["envelope_violations"] > 0
    assert result.info["max_envelope_ratio"] > 1.0
    assert result.info["exact"] is False  # it said True, beside a warning of inexact draws
    table = infer.compare({"spiky": result})  # independent draws still: one chain is enough
    assert table.loc["spiky", "flags"] == "envelope"  # not nan_stats: "R-hat needs 2 chains"
    # found, the envelope misses the spike too: the advice was "pass log_envelope=None to
    # have it found", which is what the user had done
    found = infer.rejection(numpyro.distributions.Uniform(0.0, 1.0))
    # and, since a larger M cannot cover a ratio that grows without bound (a Normal proposal
    # under a Student-t), when to give up on M and take a heavier-tailed proposal
    advice = r"envelope was found .* pass log_envelope=.* no M covers it, .* heavier tails"
    with pytest.warns(infer.EnvelopeWarning, match=advice):
        result = infer.sample(0, target, found, num_chains=1, num_samples=2_000_000)
    assert result.info["envelope_source"] == "found" and result.info["envelope_violations"] > 0
    assert result.info["exact"] is False


@pytest.mark.thorough  # an edge case, 1.6 s
def test_an_envelope_at_the_exact_supremum_is_not_a_violation():
    """N(0, 1) under M times a Cauchy, M the ratio's exact maximum, sqrt(2 pi / e): float32
    round-off puts a few ratios a hair above 1, which is not the envelope failing."""
    normal = infer.Target(lambda x: -0.5 * x**2, init=jnp.zeros(()), name="normal")
    exact = math.log(2 * math.pi) - 0.5  # log f - log g at x = 1, f unnormalised
    sampler = infer.rejection(dist.Cauchy(0.0, 1.0), log_envelope=exact)
    with warnings.catch_warnings():
        warnings.simplefilter("error", infer.DiagnosticWarning)
        result = infer.sample(0, normal, sampler, num_chains=4, num_samples=25_000)
    assert result.info["envelope_violations"] == 0
    assert_ks_matches(np.asarray(result.draws["x"]).ravel(), stats.norm.cdf)


def test_piecewise_constant_envelope_accepts_almost_everything():
    target = targets.get("beta_2_5")
    envelope = infer.envelopes.piecewise_constant(target.logdensity_fn, 0.0, 1.0, num_pieces=256)
    sampler = infer.rejection(envelope.proposal, log_envelope=envelope.log_envelope)
    result = infer.sample(0, target, sampler, num_chains=1, num_samples=100_000)
    assert result.info["acceptance_rate"] > 0.95


def test_standalone_step_under_jit_and_vmap():
    """The BlackJAX-style single step gives one exact draw per key, vectorised."""
    alg = infer.rejection(dist.Exponential(1.0 / 3.0)).bind(GAMMA.logdensity_fn)
    state = alg.init(jnp.asarray(1.0))
    keys = jax.random.split(jax.random.key(0), 4000)
    states, infos = jax.jit(jax.vmap(alg.step, in_axes=(0, None)))(keys, state)
    assert states.position.shape == (4000,)
    assert bool(jnp.all(infos.is_accepted))
    assert_ks_matches(np.asarray(states.position), stats.gamma(3).cdf)


def test_envelope_below_the_target_is_refused():
    sampler = infer.rejection(dist.Cauchy(0.0, 1.0), log_envelope=0.5)
    with pytest.raises(ValueError, match=r"log_envelope=0.5 is too small: the target exceeds M"):
        infer.sample(0, targets.get("normal_1d"), sampler, num_samples=100)


def test_hopeless_acceptance_is_refused_before_running():
    narrow = infer.Target(lambda x: -0.5 * (x / 1e-4) ** 2, name="narrow")
    sampler = infer.rejection(dist.Normal(0.0, 1.0), max_proposals=1_000_000)
    with pytest.raises(ValueError, match="would need about .* proposals .* raise max_proposals"):
        infer.sample(0, narrow, sampler, num_samples=100_000)


@pytest.mark.thorough  # an edge case
def test_a_spike_the_envelope_search_climbed_is_not_told_to_raise_the_budget():
    # an integrable spike, |x|^(-1/2) at 0: f / g is unbounded, so no budget is enough (the
    # message said to raise max_proposals)
    spike = infer.Target(lambda x: -0.5 * jnp.log(jnp.abs(x)) - 0.5 * x**2, init=1.0)
    sampler = infer.rejection(dist.Normal(0.0, 1.0))
    with pytest.raises(ValueError, match=r"(?s)rose from exp\(.*may be unbounded") as refused:
        infer.sample(0, spike, sampler, num_chains=2, num_samples=2000)
    assert "raise max_proposals" not in str(refused.value)


@pytest.mark.thorough  # a refusal, 3 s
def test_unbounded_ratio_is_refused():
    """A Cauchy target with a normal proposal: f/g grows without bound in the tails."""
    cauchy = infer.Target(lambda x: -jnp.log1p(x**2), name="cauchy")
    with pytest.raises(ValueError, match="unbounded .* or so peaked"):
        infer.sample(0, cauchy, infer.rejection(dist.Normal(0.0, 1.0)), num_samples=100)
    # a normal target, a proposal half as wide: the ascent runs off to infinity (exp(inf))
    normal = infer.Target(lambda x: -0.5 * x**2, init=jnp.asarray(0.0), name="normal")
    with pytest.raises(ValueError, match=r"to exp\(inf\) beyond them or under optimisation"):
        infer.sample(0, normal, infer.rejection(dist.Normal(0.0, 0.5)), num_samples=100)
    # a Student-t under a wide normal: the ratio's local maximum at 0 held the ascent, and
    # f/g passed M beyond |x| = 11.8, past the proposal's draws: exact=True, no word
    student = infer.Target(lambda x: -2.0 * jnp.log1p(x**2 / 3.0), name="t3")
    with pytest.raises(ValueError, match="beyond them or under optimisation: it is unbounded"):
        infer.sample(0, student, infer.rejection(dist.Normal(0.0, 3.0)), num_samples=100)


def test_proposal_of_the_wrong_dimension_is_refused():
    sampler = infer.rejection(dist.Normal(0.0, 1.0))
    with pytest.raises(ValueError, match=r"proposal draws have shape \(\) but .* \(10,\)"):
        infer.sample(0, targets.get("normal_10d"), sampler, num_samples=100)


def test_proposal_that_is_not_a_distribution_is_refused():
    with pytest.raises(TypeError, match="proposal must be a numpyro.distributions"):
        infer.rejection(lambda key: 0.0)


def test_budget_too_large_for_int32_counters_is_refused():
    with pytest.raises(ValueError, match="max_proposals must be below 2\\*\\*31"):
        infer.rejection(dist.Normal(0.0, 1.0), max_proposals=2**31)


def test_nan_target_density_rejects_the_proposal():
    """Where f is NaN, proposals are rejected, not kept and not counted as violations."""
    target = infer.Target(lambda x: jnp.where(x < 0.5, -0.5 * x**2, jnp.nan), name="half_nan")
    sampler = infer.rejection(dist.Cauchy(0.0, 1.0), log_envelope=1.5)
    with pytest.warns(infer.DiagnosticWarning, match="proposals had a NaN or"):
        result = infer.sample(0, target, sampler, num_chains=2, num_samples=5000)
    assert np.all(result.draws["x"] < 0.5)
    assert result.info["envelope_violations"] == 0
    assert np.isfinite(result.info["max_envelope_ratio"])
    truncated = stats.truncnorm(-np.inf, 0.5)
    assert_ks_matches(result.draws["x"], truncated.cdf)


def test_a_real_violation_beside_nan_and_inf_regions_makes_the_draws_inexact():
    """NaN densities counted among the +inf ones made room for real violations (f > M g at
    a narrow spike the 4,096 pilot draws miss): the run said exact, its warning that every
    violation was numerical trouble, and the largest ratio inf. About 14 of the 50,000
    draws' proposals hit the spike's violating core (none with probability ~1e-6)."""

    def spiky(x):
        spike = jnp.log1p(1e4 * jnp.exp(-0.5 * ((x - 0.7) / 1e-4) ** 2))
        value = jnp.where(x > 3.0, jnp.inf, -0.5 * x**2 + spike)
        return jnp.where(x < -3.0, jnp.nan, value)

    sampler = infer.rejection(dist.Cauchy(0.0, 1.0), log_envelope=1.4)
    with pytest.warns(infer.EnvelopeWarning) as said:
        result = infer.sample(0, infer.Target(spiky, name="spiky"), sampler, num_chains=1,
                              num_samples=50_000)  # fmt: skip
    info = result.info
    assert info["exact"] is False  # it said True
    assert 1.0 < info["max_envelope_ratio"] < np.inf  # the spike's, not the +inf ones'
    message = " ".join(str(w.message) for w in said)
    assert "had f > M*g" in message and "more had a log density of +inf" in message


@pytest.mark.parametrize(  # the envelope found as well as given: 3 s, thorough
    "log_envelope", [pytest.param(None, marks=pytest.mark.thorough), 1.5]
)
def test_a_region_of_plus_infinity_is_rejected_and_said_to_be_trouble(log_envelope):
    """+inf in f is numerical trouble: the envelope is found (or checked) without it, its
    proposals are rejected and counted, and the warning says what they were."""
    target = infer.Target(
        lambda x: jnp.where(jnp.abs(x - 2.0) < 0.3, jnp.inf, -0.5 * x**2), name="inf_spot"
    )
    sampler = infer.rejection(dist.Cauchy(0.0, 1.0), log_envelope=log_envelope)
    with pytest.warns(infer.EnvelopeWarning, match=r"had a log density of \+inf: numerical"):
        result = infer.sample(0, target, sampler, num_chains=2, num_samples=3000)
    draws = np.asarray(result.draws["x"]).ravel()
    assert not np.any(np.abs(draws - 2.0) < 0.3)
    assert result.info["nonfinite_proposals"] == result.info["envelope_violations"] > 0
    assert result.info["exact"] is True  # exact draws of the target where it is finite
    hole = stats.norm.cdf(2.3) - stats.norm.cdf(1.7)
    inside = lambda x: np.clip(stats.norm.cdf(np.minimum(x, 2.3)) - stats.norm.cdf(1.7), 0, None)
    assert_ks_matches(draws, lambda x: (stats.norm.cdf(x) - inside(x)) / (1.0 - hole))


@pytest.mark.thorough  # a rarer warning, 5 s
def test_a_proposal_that_does_not_cover_the_target_is_warned_about():
    """An Exponential proposal under a normal target drew a half-normal, acceptance 0.73 and
    no sign of it. The mirrored proposal draws show the gap; a target that lives where the
    proposal does (x > 0) gets no warning."""
    normal = infer.Target(lambda x: -0.5 * x**2, name="normal")
    half = infer.Target(lambda x: jnp.where(x > 0, -0.5 * x**2, -jnp.inf), name="half")
    sampler = infer.rejection(dist.Exponential(1.0))
    with pytest.warns(infer.EnvelopeWarning, match="does not cover the target.*cut to"):
        infer.sample(0, normal, sampler, num_chains=2, num_samples=100)
    with warnings.catch_warnings():
        warnings.simplefilter("error", infer.EnvelopeWarning)
        infer.sample(0, half, sampler, num_chains=2, num_samples=100)
        # a bounded proposal (an envelope interval) that holds the support: no warning
        beta = infer.Target(
            lambda x: jnp.where((x > 0) & (x < 1), jnp.log(x) + 4 * jnp.log1p(-x), -jnp.inf),
            name="beta",
        )
        envelope = infer.envelopes.piecewise_constant(beta.logdensity_fn, 0.0, 1.0)
        infer.sample(0, beta, infer.rejection(envelope.proposal), num_samples=100)
    uniform = infer.rejection(dist.Uniform(-1.0, 1.0))  # narrower than the target
    with pytest.warns(infer.EnvelopeWarning, match="does not cover the target"):
        infer.sample(0, normal, uniform, num_chains=2, num_samples=100)


@pytest.mark.thorough  # a warning that is not given, 3 s
def test_the_support_probe_of_a_bounded_proposal_passes_on_no_numpyro_warning():
    """NumPyro, which validates a distribution's arguments by default, warned "Out-of-support
    values" at the points the coverage probe looks at outside a bounded proposal's support,
    on purpose (independent MH probes op by op)."""
    arcsine = infer.Target(
        lambda x: jnp.where((x > 0) & (x < 1), -0.5 * jnp.log(x) - 0.5 * jnp.log1p(-x), -jnp.inf),
        init=jnp.asarray(0.5),
    )
    with warnings.catch_warnings():
        warnings.filterwarnings("error", "Out-of-support values")
        sampler = infer.independent_mh(dist.Uniform(0.0, 1.0))
        infer.sample(0, arcsine, sampler, num_chains=2, num_samples=100, num_warmup=50)


@pytest.mark.thorough  # a refusal, 2 s
def test_exact_samplers_refuse_what_they_would_ignore():
    """init and init_jitter were ignored by exact samplers (even of the wrong shape); a
    distribution class, or a (sample_fn, log_prob_fn) pair the other way round, failed deep
    inside JAX or NumPyro."""
    normal = infer.Target(lambda x: -0.5 * x**2, init=jnp.zeros(()), name="normal")
    cauchy = infer.rejection(dist.Cauchy(0.0, 1.0))
    with pytest.raises(ValueError, match="start from no point, so init does not apply"):
        infer.sample(0, normal, cauchy, num_samples=10, init=jnp.zeros(5))
    with pytest.raises(ValueError, match="init_jitter does not apply"):
        infer.sample(0, normal, cauchy, num_samples=10, init_jitter=3.0)
    with pytest.raises(TypeError, match=r"proposal is the class Cauchy.*proposal=Cauchy\(...\)"):
        infer.rejection(dist.Cauchy)
    with pytest.raises(TypeError, match="prior is the class Normal"):
        infer.ais(0, normal, dist.Normal)

    def log_prob(x):
        return -0.5 * x**2 - 0.5 * jnp.log(2 * jnp.pi)

    def sample(key):
        return jax.random.normal(key)

    with pytest.raises(TypeError, match=r"sample_fn\(rng_key\) failed.*in that order"):
        infer.rejection((log_prob, sample))
    result = infer.sample(0, normal, infer.rejection((sample, log_prob)), num_samples=10)
    assert result.draws["x"].shape == (4, 10)


@pytest.mark.thorough  # NaN proposals, 5 s; a NaN target density's rejection stays
def test_nan_proposals_are_rejected_and_said():
    """A log density that is NaN above 1 (log of a negative number, times 0): half the
    Cauchy's proposals were rejected there with no word but a count in ``info``."""
    nan_above_1 = infer.Target(
        lambda x: -0.5 * x**2 + 0.0 * jnp.log(1.0 - x), init=jnp.asarray(0.0), name="nan_above_1"
    )
    sampler = infer.rejection(dist.Cauchy(0.0, 1.0))
    with pytest.warns(infer.DiagnosticWarning, match=r"nan_above_1: \d+ of \d+ proposals") as said:
        result = infer.sample(0, nan_above_1, sampler, num_chains=2, num_samples=2000)
    assert said[0].filename == __file__  # the caller's line
    assert result.info["nonfinite_proposals"] > 0 and np.max(result.draws["x"]) < 1.0
    with warnings.catch_warnings():  # a density that is only -inf outside: nothing to say
        warnings.simplefilter("error", infer.DiagnosticWarning)
        cut = infer.Target(lambda x: jnp.where(x < 1.0, -0.5 * x**2, -jnp.inf), init=0.0)
        infer.sample(0, cut, sampler, num_chains=2, num_samples=2000)
