"""The step-function envelope and its alias-method proposal."""

import warnings

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from scipy import stats
from stats_checks import ALPHA, assert_ks_matches

import infer
from infer.envelopes import alias_table
from models import targets


@pytest.mark.parametrize("num_pieces", [1, 7, 256])
def test_alias_table_reproduces_the_probabilities(num_pieces):
    probabilities = np.random.default_rng(num_pieces).dirichlet(np.ones(num_pieces))
    keep, alias = alias_table(probabilities)
    # Each column is chosen with probability 1/K, then kept or sent to its alias.
    implied = keep / num_pieces
    np.add.at(implied, alias, (1.0 - keep) / num_pieces)
    np.testing.assert_allclose(implied, probabilities, rtol=1e-9, atol=1e-12)


def test_proposal_draws_follow_the_step_density(seed):
    """Chi-square of piece counts: the alias sampler draws each piece with its mass."""
    target = targets.get("beta_2_5")
    envelope = infer.envelopes.piecewise_constant(target.logdensity_fn, 0.0, 1.0, num_pieces=16)
    x = np.asarray(envelope.proposal.sample_batch(jax.random.key(seed), 200_000))
    counts = np.bincount(np.minimum((x * 16).astype(int), 15), minlength=16)
    mass = envelope.heights / envelope.heights.sum()
    keep = mass * 200_000 > 5
    chi2 = stats.chisquare(counts[keep], mass[keep] / mass[keep].sum() * counts[keep].sum())
    assert chi2.pvalue > ALPHA
    # Inside a piece the draws are uniform.
    first_piece = x[(x >= 0.25) & (x < 0.3125)]
    assert_ks_matches((first_piece - 0.25) / 0.0625, stats.uniform.cdf)


def test_log_prob_matches_the_sampled_pieces():
    target = targets.get("beta_2_5")
    proposal = infer.envelopes.piecewise_constant(target.logdensity_fn, 0.0, 1.0).proposal
    x, log_g = proposal.sample_and_log_prob_batch(jax.random.key(0), 10_000)
    np.testing.assert_allclose(log_g, proposal.log_prob_batch(x), rtol=1e-6)
    widths = np.diff(np.linspace(0.0, 1.0, 257))
    total = np.sum(
        np.exp(np.asarray(proposal.log_prob_batch(jnp.linspace(0, 1, 257)[:-1] + 1e-4))) * widths
    )
    assert abs(total - 1.0) < 1e-3  # normalised


@pytest.mark.thorough  # an edge case, 2 s
def test_an_ars_draws_place_inside_its_piece_has_the_float_types_resolution():
    """One uniform picked the hull's piece and, from its remaining bits, the place inside it:
    3,346 repeated values in 200,000 draws of a truncated normal, where float32 gives about
    400 (a step-function envelope keeps that one-uniform grid, 2**23 points over its
    interval: a second uniform costs it 13% of its draws per second)."""
    target = infer.Target(lambda x: -0.5 * x**2, init=jnp.asarray(0.0), name="truncated")
    ars = infer.ars(domain=(-3.0, 2.0))
    result = infer.sample(0, target, ars, num_chains=1, num_samples=200_000)
    x = np.asarray(result.draws["x"]).ravel()
    repeats = x.size - np.unique(x).size
    assert repeats < 1_000, repeats


def test_exact_draws_with_many_samples():
    target = targets.get("beta_2_5")
    sampler = infer.rejection(target.rejection_proposal, log_envelope=target.notes["log_envelope"])
    result = infer.sample(11, target, sampler, num_chains=1, num_samples=400_000)
    assert_ks_matches(result.draws["x"], stats.beta(2, 5).cdf)


@pytest.mark.parametrize(
    "lower, upper, match", [(1.0, 0.0, "lower < upper"), (0.0, float("inf"), "finite")]
)
def test_bad_interval(lower, upper, match):
    with pytest.raises(ValueError, match=match):
        infer.envelopes.piecewise_constant(lambda x: -x, lower, upper)


@pytest.mark.parametrize(
    "logdensity_fn, match",
    [  # JAX's "Expected a callable value, got 3.0"; "cannot reshape array of size 16384 ..."
        (3.0, "logdensity_fn must be a function of a scalar x .* got float 3.0"),
        (lambda x: jnp.stack([x, x]), r"logdensity_fn must return a scalar .* shape \(2,\)"),
    ],
)
def test_a_log_density_that_is_not_a_scalar_function_is_named(logdensity_fn, match):
    with pytest.raises((TypeError, ValueError), match=match):
        infer.envelopes.piecewise_constant(logdensity_fn, 0.0, 1.0)


def test_unbounded_density_is_refused():
    with pytest.raises(ValueError, match="bounded"):
        infer.envelopes.piecewise_constant(lambda x: -0.5 * jnp.log(x), 0.0, 1.0)


@settings(max_examples=200, deadline=None)
@given(
    weights=st.lists(
        st.floats(min_value=0.0, max_value=1e6, allow_nan=False), min_size=1, max_size=300
    ).filter(lambda w: sum(w) > 0)
)
def test_alias_table_for_any_probabilities(weights):
    probabilities = np.asarray(weights) / np.sum(weights)
    keep, alias = alias_table(probabilities)
    k = len(probabilities)
    assert np.all((keep >= 0) & (keep <= 1 + 1e-12)) and np.all((alias >= 0) & (alias < k))
    implied = keep / k
    np.add.at(implied, alias, (1.0 - keep) / k)
    np.testing.assert_allclose(implied, probabilities, atol=1e-12)


def test_pieces_too_narrow_for_the_float_type_are_warned_about():
    """[1e6, 1e6 + 1] in 256 pieces, in float32 (a step of 0.0625 there): 15 distinct values
    in 40,000 draws called exact. And a density zero on the whole grid is refused without
    NumPy's warning of -inf - -inf first."""

    def beta(shift):
        def logdensity(x):
            u = x - shift
            return jnp.where((u > 0) & (u < 1), jnp.log(u) + 4 * jnp.log1p(-u), -jnp.inf)

        return logdensity

    with pytest.warns(infer.EnvelopeWarning, match=r"0.0625 float32 steps wide there"):
        infer.envelopes.piecewise_constant(beta(1e6), 1e6, 1e6 + 1)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        infer.envelopes.piecewise_constant(beta(0.0), 0.0, 1.0)
        with pytest.raises(ValueError, match=r"the density is zero everywhere on \[2.0, 3.0\]"):
            infer.envelopes.piecewise_constant(beta(0.0), 2.0, 3.0)
