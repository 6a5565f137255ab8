"""Independent Metropolis–Hastings: proposals drawn from a fixed distribution ``g``.

Accept ``x' ~ g`` with probability ``min(1, p(x') g(x) / (p(x) g(x')))``. Efficient when ``g``
covers the target with heavier tails; when ``p / g`` is bounded this is uniformly ergodic.
"""

from __future__ import annotations

import warnings
from collections.abc import Callable
from typing import NamedTuple

import jax
import jax.numpy as jnp
import numpy as np

from infer.algorithms.mh import MHInfo, shapes_text
from infer.base import IdentityKey, Kernel, Sampler, public_name
from infer.caller import INFER_FRAMES
from infer.diagnostics import DiagnosticWarning
from infer.envelopes import coverage_gap
from infer.proposal import (
    Proposal,
    as_proposal,
    describe_proposal,
    is_nonfinite,
    mh_accept,
    safe_log_ratio,
)

__all__ = ["IndependentMHState", "MHInfo", "init", "build_kernel", "as_top_level_api"]


class IndependentMHState(NamedTuple):
    """One chain's state.

    Attributes:
        position: the current point.
        logdensity: target log density at ``position``, scalar.
        proposal_logdensity: proposal log density ``log g(position)``, scalar (cached so each
            step evaluates ``g`` once).
    """

    position: object
    logdensity: jax.Array
    proposal_logdensity: jax.Array


def init(position, logdensity_fn: Callable, proposal: Proposal) -> IndependentMHState:
    return IndependentMHState(position, logdensity_fn(position), proposal.log_prob(position))


def build_kernel(logdensity_fn: Callable, proposal: Proposal) -> Callable:
    """``kernel(rng_key, state, params) -> (state, info)``; ``params`` is unused."""

    def kernel(rng_key, state: IndependentMHState, params=None):
        key_proposal, key_accept = jax.random.split(rng_key)
        new_position = proposal.sample(key_proposal)
        new_logdensity = logdensity_fn(new_position)
        new_proposal_logdensity = proposal.log_prob(new_position)
        log_ratio = (new_logdensity - state.logdensity) + (
            state.proposal_logdensity - new_proposal_logdensity
        )
        log_ratio = safe_log_ratio(log_ratio, new_logdensity)
        candidate = IndependentMHState(new_position, new_logdensity, new_proposal_logdensity)
        uniform = jax.random.uniform(key_accept, dtype=log_ratio.dtype)
        new_state, acceptance_rate, is_accepted = mh_accept(uniform, state, candidate, log_ratio)
        nonfinite = is_nonfinite(new_logdensity) | jnp.isnan(new_proposal_logdensity)
        return new_state, MHInfo(acceptance_rate, is_accepted, nonfinite)

    return kernel


class IndependentMH(Sampler):
    """Independent Metropolis–Hastings; see :func:`as_top_level_api`."""

    name = "independent_mh"

    def __init__(self, proposal):
        self.proposal_object = proposal
        self.proposal = as_proposal(proposal, "proposal")

    def settings(self) -> dict:
        return {"proposal": describe_proposal(self.proposal_object)}

    def cache_key(self) -> tuple:
        return (type(self).__name__, IdentityKey(self.proposal_object))

    def check(self, position) -> None:
        check_proposal_shape(self.proposal, position)

    def check_target(self, logdensity_fn: Callable, position) -> None:
        """Warn where the target has density and the proposal none (probed as rejection
        sampling probes it, the start included): the chains never go there, and one that
        starts there never moves."""
        # op by op: logdensity_fn is bound to the target's data anew for each run
        if gap := coverage_gap(logdensity_fn, self.proposal, position, compiled=False):
            warnings.warn(
                f"independent_mh: {gap}", DiagnosticWarning, skip_file_prefixes=INFER_FRAMES
            )

    def build(self, logdensity_fn: Callable, num_warmup: int = 0) -> Kernel:
        one, zero = np.ones((), np.int32), np.zeros((), np.int32)  # host constants: no device call
        return Kernel(
            init=lambda position: init(position, logdensity_fn, self.proposal),
            step=build_kernel(logdensity_fn, self.proposal),
            params=lambda position: None,
            adaptation=None,
            cost=lambda info: (one, zero),
        )


def check_proposal_shape(proposal: Proposal, position) -> None:
    """Raise ``ValueError`` when the proposal's draws are not shaped like ``position``."""
    expected = jax.eval_shape(lambda p: p, position)
    got = jax.eval_shape(proposal.sample, jax.random.key(0))
    same_structure = jax.tree.structure(got) == jax.tree.structure(expected)
    if not same_structure or shapes_text(got) != shapes_text(expected):
        fix = (
            "give the proposal the target's dimension (for a numpyro distribution, e.g. "
            "dist.Normal(jnp.zeros(d), 1.0) for d dimensions)"
            if jax.tree_util.treedef_is_leaf(jax.tree.structure(position))
            else "for a pytree position, pass a pair (sample_fn(rng_key) -> position, "
            "log_prob_fn(position) -> scalar) whose draws are pytrees like it"
        )
        raise ValueError(
            f"proposal draws have shape {shapes_text(got)} but the target's positions have "
            f"shape {shapes_text(expected)}; {fix}."
        )


@public_name("independent_mh")
def as_top_level_api(proposal) -> IndependentMH:
    """Independent Metropolis–Hastings.

    Args:
        proposal: a ``numpyro.distributions`` distribution whose draws are shaped like the
            target's positions, or a ``(sample_fn, log_prob_fn)`` pair with
            ``sample_fn(rng_key) -> position`` and ``log_prob_fn(position) -> scalar``.

    Returns:
        A :class:`~infer.base.Sampler`.
    """
    return IndependentMH(proposal)
