"""Broken samplers, on purpose: the statistical checks must fail for each.

Every mutation is a small sampler built through the public protocol (``infer.MarkovSampler``
or the exact-sampler protocol) by subclassing or wrapping the real algorithm, run with the
settings of the real test of its target (``test_samplers.CASES``, ``test_rejection.CASES``),
on the three seeds, and checked with the same check function. A check that passes a broken
sampler is a check that cannot fail.
"""

import functools
import math
import warnings
from typing import NamedTuple
from unittest import mock

import jax
import jax.numpy as jnp
import numpyro.infer.hmc
import pytest
import test_rejection
import test_samplers
from numpyro.infer.hmc_util import euclidean_kinetic_energy
from stats_checks import ALPHA, ks_test
from test_samplers import CASES, check, run, target_of

import infer
from infer.algorithms import mala
from infer.algorithms.rejection import Rejection
from infer.envelope_search import Envelope
from infer.numpyro_adapter import NumPyroHMC


class MALAWithoutHastings(mala.MALA):
    """MALA accepting with ``p(x') / p(x)`` alone, as if its Langevin proposal were symmetric.
    The drift pulls proposals toward the mode and nothing pays it back: on ``normal_10d`` the
    draws' sd is about 0.72 instead of 1."""

    name = "mala_without_hastings"
    build_kernel_fn = staticmethod(functools.partial(mala.build_kernel, hastings_correction=False))


def scaled_kinetic_energy(factor: float):
    def kinetic_fn(inverse_mass_matrix, momentum):
        return factor * euclidean_kinetic_energy(inverse_mass_matrix, momentum)

    return kinetic_fn


class NUTSWithWrongKineticEnergy(NumPyroHMC):
    """``infer.nuts()`` whose dynamics use a kinetic energy ``factor`` times the one its
    momentum is drawn from (NumPyro's ``hmc(kinetic_fn=...)``). Momenta drawn from
    ``exp(-K)`` but integrated under ``factor * K`` carry ``factor`` times too much energy:
    the chain samples ``p^(1 / factor)``, so with ``factor = 1.2`` the variance of a Gaussian
    target is exactly 20% too large, the alternative the moment tests claim the power to see.

    (A mass matrix off by 2x given through the public options, ``infer.nuts(
    inverse_mass_matrix=..., adapt_mass_matrix=False)``, is no mutation: momentum and kinetic
    energy stay consistent, so it changes the efficiency and not the target; a step size of
    the wrong sign only runs the same reversible dynamics backwards.)
    """

    def __init__(self, factor: float):
        super().__init__("NUTS", **infer.nuts().options)
        self.name = "nuts_wrong_kinetic_energy"
        self.factor = factor
        self.builds = 0

    def settings(self) -> dict:
        return {**super().settings(), "kinetic_energy_factor": self.factor}

    def build(self, logdensity_fn, num_warmup=0):
        real_hmc = numpyro.infer.hmc.hmc
        mutated = functools.partial(real_hmc, kinetic_fn=scaled_kinetic_energy(self.factor))

        def counting(*args, **kwargs):
            self.builds += 1
            return mutated(*args, **kwargs)

        # The adapter imports numpyro.infer.hmc.hmc when it builds: give it the mutated one.
        with mock.patch.object(numpyro.infer.hmc, "hmc", counting):
            return super().build(logdensity_fn, num_warmup)


MOMENT_MUTATIONS = {
    # (the broken sampler, the real test case whose target and run it takes)
    "mala_without_hastings": (MALAWithoutHastings(), "mala-normal_10d"),
    "mh_without_hastings": (
        # The multiplicative walk declared symmetric: targets Gamma(3, 1)(x) / x = Gamma(2, 1).
        infer.mh(test_samplers.multiplicative_walk, None),
        "mh-gamma",
    ),
    "nuts_kinetic_energy_1.2": (NUTSWithWrongKineticEnergy(1.2), "nuts-normal_10d"),
}


@pytest.mark.parametrize(
    "mutation",
    [
        # the NUTS mutation (4 s to compile) in `make test-thorough`; the two others here
        pytest.param(name, marks=[pytest.mark.thorough] * name.startswith("nuts"))
        for name in MOMENT_MUTATIONS
    ],
)
def test_moment_check_fails_for_a_biased_sampler(mutation, seed):
    sampler, case = MOMENT_MUTATIONS[mutation]
    result = run(CASES[case], seed, sampler)
    report = check(result, target_of(CASES[case]))
    failing = [s for s in report.statistics if s.rejects]
    assert failing, f"the check passed a broken sampler:\n{report}"
    # The std statistic sees all three (each changes the spread); by a wide margin.
    assert report["std"].value > 5 * report["std"].critical, report
    if isinstance(sampler, NUTSWithWrongKineticEnergy):
        assert sampler.builds > 0  # the mutated NumPyro kernel is the one that ran


class KeepsAdaptingState(NamedTuple):
    """The wrapped kernel's state, its adaptation state, and the step count."""

    position: object
    logdensity: jax.Array
    inner: object
    adaptation: object
    count: jax.Array


class KeepsAdapting:
    """A sampler whose warm-up adaptation never stops: the kernel carries the real
    adaptation (``infer.rwmh``'s dual averaging and covariance windows) in its state and
    repeats the warm-up schedule forever, so step size and proposal scale keep moving with
    the chain's recent history during sampling.

    Measured (16 chains x 2000 draws, seeds 0-4, on ``correlated_2d``, ``gaussian_mixture``,
    ``conjugate`` and ``normal_10d``): the moments stay within a few percent of the truth and
    every moment check passes. Acceptance-driven adaptation barely biases these targets, even
    with a Robbins-Monro gain up to 10 per step (sd off by at most 5%), far below what the
    tests' power (a 20% variance error) can see. What catches it is the structural check
    that the tuned parameters are frozen after warm-up.
    """

    uses_gradients = False

    def __init__(self, inner):
        self.inner = inner
        self.name = f"{inner.name}_keeps_adapting"

    def settings(self) -> dict:
        return {"inner": repr(self.inner)}

    def build(self, logdensity_fn, num_warmup=0):
        kernel = self.inner.build(logdensity_fn, num_warmup)
        adaptation = kernel.adaptation
        schedule = jax.tree.map(jnp.asarray, adaptation.schedule(num_warmup))

        def init(position):
            state = kernel.init(position)
            adapt_state = adaptation.init(kernel.params(position), state)
            zero = jnp.zeros((), jnp.int32)
            return KeepsAdaptingState(state.position, state.logdensity, state, adapt_state, zero)

        def step(rng_key, state, params):
            inner, info = kernel.step(rng_key, state.inner, adaptation.params(state.adaptation))
            row = jax.tree.map(lambda column: column[state.count % num_warmup], schedule)
            adapt_state = adaptation.update(state.adaptation, row, inner, info)
            new = KeepsAdaptingState(
                inner.position, inner.logdensity, inner, adapt_state, state.count + 1
            )
            return new, info

        return infer.Kernel(init, step, lambda position: None, None, kernel.cost)


def test_rwmh_that_keeps_adapting_fails_the_frozen_check(seed):
    case = CASES["rwmh_dense-correlated_2d"]
    result = run(case, seed, KeepsAdapting(case.sampler))
    with pytest.raises(AssertionError, match="frozen"):
        test_samplers.assert_frozen_after_warmup(result)


# ------------------------------------------------------------------------- rejection

# sup log f - log g of test_rejection's cases: the true log M.
TRUE_LOG_ENVELOPE = {
    # x^2 e^-x over Exp(1/3): 2 log x - 2x/3 + log 3, largest at x = 3.
    "gamma-exponential": 3.0 * math.log(3.0) - 2.0,
    # e^(-(x-0.5)^2/2) over U(0, 2): largest at x = 0.5.
    "truncated_normal-uniform": math.log(2.0),
    # e^(-x^2/2) over Cauchy(0, 1): pi (1 + x^2) e^(-x^2/2), largest at x = +-1.
    "normal-cauchy": math.log(2.0 * math.pi) - 0.5,
}


class UncheckedRejection(Rejection):
    """Rejection sampling that takes the given ``log M`` on trust: the public sampler checks
    a given envelope against 4,096 pilot proposals and refuses one that is too small."""

    name = "rejection_unchecked"

    def envelope(self, logdensity_fn) -> Envelope:
        return Envelope(self.log_envelope, "given", 0.5, math.nan)


def _clipped_run(case, seed):
    target, proposal, cdf = test_rejection.CASES[case]
    log_envelope = TRUE_LOG_ENVELOPE[case] + math.log(0.8)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        result = infer.sample(
            seed,
            target,
            UncheckedRejection(proposal, log_envelope),
            num_chains=4,  # as test_rejection.test_draws_match_exact_cdf
            num_samples=5000,
        )
    return result, cdf, caught


@pytest.mark.parametrize("case", ["gamma-exponential", "truncated_normal-uniform"])
def test_an_envelope_20_percent_too_low_fails_ks(case, seed):
    """``M`` 20% below ``sup f / g`` draws from ``min(f, 0.8 M g)``: the mode region is
    flattened (8% of the mass of the gamma moved out of it, 11% of the truncated normal's),
    a CDF distance of 0.026 and 0.041, two and three times the KS test's 1e-3 critical
    value at 20,000 draws. The violations are counted and warned about."""
    result, cdf, caught = _clipped_run(case, seed)
    ks = ks_test(result.draws["x"], cdf)
    assert ks.pvalue < ALPHA, ks
    assert result.info["envelope_violations"] > 0.05 * result.info["num_proposals"]
    assert any(issubclass(w.category, infer.EnvelopeWarning) for w in caught)


def test_a_clipped_envelope_is_reported_even_where_ks_cannot_see_it():
    """On ``normal_1d`` with a Cauchy proposal, ``f / g`` varies only between 3.14 and 3.81
    where the mass is, so ``min(f, 0.8 M g)`` has nearly the normal's shape (CDF distance
    0.0096, under the KS test's reach at 20,000 draws). The violations still say so, and
    the public sampler refuses the envelope before drawing."""
    result, _, caught = _clipped_run("normal-cauchy", 0)
    assert result.info["envelope_violations"] > 0.5 * result.info["num_proposals"]
    assert any(issubclass(w.category, infer.EnvelopeWarning) for w in caught)
    target, proposal, _ = test_rejection.CASES["normal-cauchy"]
    too_low = TRUE_LOG_ENVELOPE["normal-cauchy"] + math.log(0.8)
    with pytest.raises(ValueError, match="too small"):
        infer.sample(0, target, infer.rejection(proposal, too_low), num_samples=10)
