"""The bound ``log M`` with ``f <= M g`` for rejection sampling from any proposal ``g``:
:func:`find_log_envelope` takes the best of a pilot batch of proposal draws and of the same
draws stretched away from their median (where a ratio that grows without bound shows), and
improves the best by gradient ascent, plus a safety margin.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from typing import NamedTuple

import jax
import jax.numpy as jnp
import numpy as np
from jax.flatten_util import ravel_pytree

from infer.proposal import Proposal

# ----------------------------------------------------------------------- the bound log M


class Envelope(NamedTuple):
    """The bound ``log M`` and what is known about it.

    Attributes:
        log_envelope: ``log M``.
        source: ``"given"`` or ``"found"``.
        acceptance_estimate: the acceptance rate estimated from the pilot proposals.
        pilot_max_log_ratio: the largest ``log f - log g`` among the pilot proposals.
    """

    log_envelope: float
    source: str
    acceptance_estimate: float
    pilot_max_log_ratio: float


def find_log_envelope(
    logdensity_fn: Callable,
    proposal: Proposal,
    rng_key,
    num_candidates: int = 4096,
    num_starts: int = 16,
    num_iterations: int = 200,
    safety_margin: float = 0.05,
) -> Envelope:
    """Find ``log M >= max(log f - log g)``: the best of ``num_candidates`` proposal draws and
    of the same draws stretched 2, 4 and 8 times away from their median (a ratio that grows
    in the tails, beyond where the proposal's draws reach, shows there), improved by gradient
    ascent from the ``num_starts`` best (in the unconstrained space of the proposal's support
    when it is known), plus ``log(1 + safety_margin)``.

    Raises:
        ValueError: if ``f`` is zero or NaN at every candidate, or if the stretched draws or the
            ascent find the ratio more than ``e**20`` above the proposal draws' best
            (unbounded ``f / g``, or an acceptance rate too small to be useful).
    """
    candidates = proposal.sample_batch(rng_key, num_candidates)
    log_ratio = np.asarray(pilot_log_ratio(logdensity_fn, proposal, candidates))
    if not np.any(np.isfinite(log_ratio)):
        raise ValueError(
            f"the target's log density is -inf or NaN at all {num_candidates} proposal draws: "
            "the proposal does not cover the target. Choose a proposal whose support and scale "
            "include the target's."
        )
    stretched = _stretched(candidates)
    stretched_ratio = np.asarray(pilot_log_ratio(logdensity_fn, proposal, stretched))
    # +inf where the proposal has no density: a gap coverage_gap warns of, not a bound
    stretched_ratio = np.where(np.isfinite(stretched_ratio), stretched_ratio, -np.inf)
    pool = jax.tree.map(lambda a, b: np.concatenate([a, b]), candidates, stretched)
    pool_ratio = np.concatenate([log_ratio, stretched_ratio])
    best_index = np.argsort(pool_ratio)[-num_starts:]
    starts = jax.tree.map(lambda c: c[best_index], pool)
    ascended = np.asarray(_ascend(logdensity_fn, proposal, starts, num_iterations))
    pilot_max = float(np.max(log_ratio))
    best = float(np.max(np.where(np.isfinite(ascended), ascended, -np.inf)))
    best = max(best, float(np.max(pool_ratio)))
    if np.any(ascended == np.inf):  # the ascent ran off to infinity: f / g is unbounded
        best = math.inf
    if best - pilot_max > 20.0:
        raise ValueError(
            f"the ratio target/proposal rose from exp({pilot_max:.3g}) at the best of "
            f"{num_candidates} proposal draws to exp({best:.3g}) beyond them or under "
            "optimisation: it is unbounded (the proposal's tails are lighter than the "
            "target's) or so peaked that almost no proposal would be accepted. Use a proposal "
            "with heavier tails than the target, centred and scaled like it."
        )
    log_envelope = best + math.log1p(safety_margin)
    acceptance = float(np.mean(np.exp(np.asarray(log_ratio) - log_envelope)))
    return Envelope(log_envelope, "found", acceptance, pilot_max)


#: A found ``log M`` this far above the largest ``log f - log g`` among the pilot proposals
#: says the ratio rose sharply under optimisation: perhaps without bound (a spike).
SHARP_RISE = 10.0


def over_budget(
    envelope: Envelope, expected: float, num_draws: int, acceptance: float, budget: int
) -> str:
    """Why a run of ``num_draws`` draws is refused: ``expected`` proposals, more than
    ``budget``; where a found ``log M`` rose sharply above the pilot's ratios, that the ratio
    may be unbounded (then no budget is enough), else to raise the budget."""
    rise = envelope.log_envelope - envelope.pilot_max_log_ratio
    advice = (
        f"The ratio target/proposal rose from exp({envelope.pilot_max_log_ratio:.3g}) at the "
        f"proposal's draws to exp({envelope.log_envelope:.3g}) under optimisation: it may be "
        "unbounded (a spike of the target, or tails lighter than the target's), and then no "
        "log M is a bound and no budget is enough. Use a proposal shaped like the target "
        "where the ratio rose."
        if envelope.source == "found" and rise > SHARP_RISE
        else "Use a proposal closer to the target, or raise max_proposals."
    )
    return (
        f"rejection sampling would need about {expected:.3g} proposals for {num_draws} draws "
        f"(estimated acceptance rate {acceptance:.3g}, log M = {envelope.log_envelope:.4g}) "
        f"but max_proposals is {budget}. {advice}"
    )


def _stretched(candidates, factors=(2.0, 4.0, 8.0)):
    """The candidates moved ``factor`` times as far from their median (per coordinate), for
    each factor: ``len(factors)`` times as many points."""

    def leaf(draws):
        draws = np.asarray(draws)
        centre = np.median(draws, axis=0)
        return np.concatenate([centre + k * (draws - centre) for k in factors]).astype(draws.dtype)

    return jax.tree.map(leaf, candidates)


def pilot_log_ratio(logdensity_fn, proposal: Proposal, candidates) -> np.ndarray:
    """``log f - log g`` at each candidate, ``-inf`` where ``log f`` is NaN or ``+inf``
    (numerical trouble, which sampling rejects and counts, not density to cover);
    (num_candidates,)."""

    @jax.jit
    def log_ratio(candidates):
        value = jax.vmap(logdensity_fn)(candidates)
        ratio = value - proposal.log_prob_batch(candidates)
        return jnp.where(_trouble(value) | jnp.isnan(ratio), -jnp.inf, ratio)

    return np.asarray(log_ratio(candidates))


def _trouble(logdensity):
    """Where a log density is NaN or ``+inf``: numerical trouble, never density."""
    return jnp.isnan(logdensity) | (logdensity == jnp.inf)


def _ascend(logdensity_fn, proposal: Proposal, starts, num_iterations: int):
    """Backtracking gradient ascent on ``log f - log g`` from each start; returns the best
    value reached per start, shape (num_starts,)."""
    from infer.numpyro_adapter import biject_to

    example = jax.tree.map(lambda s: s[0], starts)
    _, unravel = ravel_pytree(example)
    transform = None
    if proposal.support is not None and jax.tree.structure(example).num_leaves == 1:
        transform = biject_to(proposal.support)

    def to_position(u):
        return unravel(transform(u) if transform is not None else u)

    def objective(u):
        position = to_position(u)
        value = logdensity_fn(position)
        ratio = value - proposal.log_prob(position)
        return jnp.where(_trouble(value) | jnp.isnan(ratio), -jnp.inf, ratio)

    value_and_grad = jax.value_and_grad(objective)

    def one_start(start):
        flat, _ = ravel_pytree(start)
        u = transform.inv(flat) if transform is not None else flat
        value, grad = value_and_grad(u)

        def body(_, carry):
            u, value, grad, rate = carry
            grad = jnp.where(jnp.isfinite(grad), grad, 0.0)
            u_new = u + rate * grad
            value_new, grad_new = value_and_grad(u_new)
            better = value_new > value
            return (
                jnp.where(better, u_new, u),
                jnp.where(better, value_new, value),
                jnp.where(better, grad_new, grad),
                jnp.where(better, rate * 1.5, rate * 0.3),
            )

        rate = jnp.asarray(0.1, flat.dtype)
        _, value, _, _ = jax.lax.fori_loop(0, num_iterations, body, (u, value, grad, rate))
        return value

    return jax.jit(jax.vmap(one_start))(starts)
