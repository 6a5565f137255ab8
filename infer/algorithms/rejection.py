"""Exact rejection sampling: iid draws from ``p ∝ f`` with a proposal ``g`` and a bound ``M``.

A proposal ``x ~ g`` is accepted when ``log u < log f(x) - log g(x) - log M`` with
``u ~ U(0, 1)``. Whenever ``f <= M g`` everywhere, accepted draws are exact and independent and
the acceptance rate is ``Z_f / M``. A proposal seen with ``f(x) > M g(x)`` is an *envelope
violation*: it is counted and reported, because the draws are then no longer exact.

If ``M`` is not given it is found by maximising ``log f - log g`` from the best of 4,096
proposal draws, then a safety margin is added. Draws are made in vectorised batches inside a
``lax.while_loop`` that fills a fixed buffer, under a budget on the number of proposals.
"""

from __future__ import annotations

import math
import warnings
from collections.abc import Callable
from typing import NamedTuple

import jax
import jax.numpy as jnp
import numpy as np

from infer import random_bits, validation
from infer.algorithms.independent_mh import check_proposal_shape
from infer.base import IdentityKey, Kernel, Sampler, public_name
from infer.caller import INFER_FRAMES
from infer.envelope_search import Envelope, find_log_envelope, over_budget, pilot_log_ratio
from infer.envelopes import (
    EnvelopeWarning,
    coverage_gap,
    violations_are_trouble,
    warn_on_violations,
)
from infer.outside_values import function_key
from infer.proposal import Proposal, as_proposal, describe_proposal
from infer.starts import check_scalar_logdensity

__all__ = [
    "RejectionState",
    "RejectionInfo",
    "Envelope",
    "EnvelopeWarning",
    "init",
    "build_kernel",
    "draw",
    "find_log_envelope",
    "as_top_level_api",
]


DEFAULT_MAX_PROPOSALS = 100_000_000


class RejectionState(NamedTuple):
    """Last accepted draw.

    Attributes:
        position: the draw (array or pytree).
        logdensity: target log density there, scalar.
    """

    position: object
    logdensity: jax.Array


class RejectionInfo(NamedTuple):
    """What one step (one exact draw) cost.

    Attributes:
        is_accepted: False only when the step's proposal budget ran out (state unchanged).
        num_proposals: proposals made, scalar int.
        num_violations: proposals with ``f > M g``, scalar int.
    """

    is_accepted: jax.Array
    num_proposals: jax.Array
    num_violations: jax.Array


class DrawOutput(NamedTuple):
    """Result of :func:`draw` for ``num_draws`` draws.

    Attributes:
        positions: pytree of arrays with leading axis ``num_draws``.
        num_accepted: accepted proposals, including any past the buffer's end. Scalar int.
        num_proposals: proposals made. Scalar int.
        num_violations: proposals with ``f > M g``, ``f = +inf`` among them. Scalar int.
        max_log_excess: largest ``log f - log g - log M`` seen where ``f`` is finite
            (positive means a violation).
        num_nonfinite: proposals whose log density was NaN or ``+inf`` (rejected). Scalar int.
        num_infinite: those whose log density was ``+inf``. Scalar int.
    """

    positions: object
    num_accepted: jax.Array
    num_proposals: jax.Array
    num_violations: jax.Array
    max_log_excess: jax.Array
    num_nonfinite: jax.Array
    num_infinite: jax.Array


def draw(
    rng_key,
    logdensity_fn: Callable,
    proposal: Proposal,
    log_envelope,
    num_draws: int,
    batch_size: int,
    max_proposals: int,
) -> DrawOutput:
    """``num_draws`` exact draws, in batches of ``batch_size`` proposals, stopping early after
    ``max_proposals`` (then fewer than ``num_draws`` are filled; check ``num_accepted``).

    Each batch writes its accepted proposals, in order, after those already kept; the first
    ``num_draws`` accepted proposals of an iid stream are iid draws from the target.
    """
    example = jax.eval_shape(proposal.sample, rng_key)
    buffer = jax.tree.map(lambda s: jnp.zeros((num_draws, *s.shape), s.dtype), example)
    max_batches = -(-max_proposals // batch_size)
    zero = jnp.zeros((), jnp.int32)

    def keep_going(carry):
        _, count, batches, *_ = carry
        return (count < num_draws) & (batches < max_batches)

    def one_batch(carry):
        buffer, count, batches, violations, max_excess, nonfinite, infinite = carry
        key_batch = jax.random.fold_in(rng_key, batches)
        key_proposal, key_accept = jax.random.split(key_batch)
        positions, proposal_logdensity = proposal.sample_with_log_prob(key_proposal, batch_size)
        logdensity = jax.vmap(logdensity_fn)(positions)
        log_excess = logdensity - proposal_logdensity - log_envelope
        finite_or_inf = jnp.where(jnp.isnan(log_excess), -jnp.inf, log_excess)
        # Violations and NaN or +inf densities are rare: one reduction per batch says whether
        # there is any (NaN counts as +inf in it), and only then are they counted (two more
        # reductions in every batch would keep the loop from fusing).
        signal = jnp.max(jnp.where(jnp.isnan(logdensity), jnp.inf, finite_or_inf))

        def count_them():
            bad = jnp.isnan(logdensity) | (logdensity == jnp.inf)
            # An envelope equal to the density's supremum is exceeded by round-off alone.
            size = sum(
                jnp.where(jnp.isfinite(term), jnp.abs(term), 0.0)
                for term in (logdensity, proposal_logdensity, jnp.asarray(log_envelope))
            )
            round_off = 8 * jnp.finfo(log_excess.dtype).eps * (1.0 + size)
            return (
                jnp.sum(finite_or_inf > round_off, dtype=jnp.int32),
                jnp.max(jnp.where(finite_or_inf < jnp.inf, finite_or_inf, -jnp.inf)),
                jnp.sum(bad, dtype=jnp.int32),
                jnp.sum(logdensity == jnp.inf, dtype=jnp.int32),
            )

        zero = jnp.zeros((), jnp.int32)
        batch_violations, batch_max_excess, batch_nonfinite, batch_infinite = jax.lax.cond(
            signal > 0, count_them, lambda: (zero, signal, zero, zero)
        )
        # NaN or +inf in f rejects (+inf also counts as a violation).
        log_excess = jnp.where(logdensity < jnp.inf, log_excess, -jnp.inf)
        accepted = random_bits.bernoulli_log(key_accept, log_excess)  # u < exp(log_excess)
        slot = jnp.where(accepted, jnp.cumsum(accepted) - 1 + count, num_draws)
        buffer = jax.tree.map(lambda b, x: b.at[slot].set(x, mode="drop"), buffer, positions)
        return (
            buffer,
            count + jnp.sum(accepted, dtype=jnp.int32),
            batches + 1,
            violations + batch_violations,
            jnp.maximum(max_excess, batch_max_excess),
            nonfinite + batch_nonfinite,
            infinite + batch_infinite,
        )

    carry = (buffer, zero, zero, zero, jnp.asarray(-jnp.inf), zero, zero)
    buffer, count, batches, violations, max_excess, nonfinite, infinite = jax.lax.while_loop(
        keep_going, one_batch, carry
    )
    proposals = batches * batch_size
    return DrawOutput(buffer, count, proposals, violations, max_excess, nonfinite, infinite)


def init(position, logdensity_fn: Callable) -> RejectionState:
    return RejectionState(position, logdensity_fn(position))


def build_kernel(
    logdensity_fn: Callable, proposal: Proposal, batch_size: int = 16, max_batches: int = 100_000
) -> Callable:
    """``kernel(rng_key, state, log_envelope) -> (state, info)``: one exact draw per step.

    The driver does not use this (it calls :func:`draw` for all draws at once); it is the
    BlackJAX-style single step. The old state is ignored unless the budget of
    ``batch_size * max_batches`` proposals runs out, which ``info.is_accepted`` reports.
    """

    def kernel(rng_key, state: RejectionState, log_envelope):
        budget = batch_size * max_batches
        out = draw(rng_key, logdensity_fn, proposal, log_envelope, 1, batch_size, budget)
        is_accepted = out.num_accepted > 0
        position = jax.tree.map(
            lambda new, old: jnp.where(is_accepted, new[0], old), out.positions, state.position
        )
        logdensity = jnp.where(is_accepted, logdensity_fn(position), state.logdensity)
        info = RejectionInfo(is_accepted, out.num_proposals, out.num_violations)
        return RejectionState(position, logdensity), info

    return kernel


class Rejection(Sampler):
    """Exact rejection sampling; see :func:`as_top_level_api`."""

    name = "rejection"

    def __init__(
        self,
        proposal,
        log_envelope=None,
        *,
        safety_margin: float = 0.05,
        max_proposals: int | None = None,
        batch_size: int | None = None,
    ):
        self.proposal_object = proposal
        self.proposal = as_proposal(proposal, "proposal")
        if log_envelope is not None:
            if not validation.is_real_scalar(log_envelope):
                raise TypeError(
                    f"log_envelope must be a number (log M) or None; got {log_envelope!r}."
                )
            if not math.isfinite(float(log_envelope)):
                raise ValueError(f"log_envelope must be finite; got {log_envelope}.")
            log_envelope = float(log_envelope)
        self.log_envelope = log_envelope
        self.safety_margin = validation.positive_float("safety_margin", safety_margin)
        self.max_proposals = (
            None
            if max_proposals is None
            else validation.positive_int("max_proposals", max_proposals)
        )
        if self.max_proposals is not None and self.max_proposals > 2**31 - 2**20:
            raise ValueError(
                f"max_proposals must be below 2**31 (proposals are counted in int32); got "
                f"{max_proposals}. Split the run into several calls instead."
            )
        self.batch_size = (
            None if batch_size is None else validation.positive_int("batch_size", batch_size)
        )
        self._envelopes: dict = {}

    def settings(self) -> dict:
        return {
            "proposal": describe_proposal(self.proposal_object),
            "log_envelope": self.log_envelope,
            "safety_margin": self.safety_margin,
            "max_proposals": self.max_proposals,
            "batch_size": self.batch_size,
        }

    def cache_key(self) -> tuple:
        return (type(self).__name__, IdentityKey(self.proposal_object), self.log_envelope)

    def check(self, position) -> None:
        check_proposal_shape(self.proposal, position)

    def envelope(self, logdensity_fn: Callable) -> Envelope:
        """``log M`` for this target: the given one (checked against 4,096 proposal draws) or
        the found one. Cached per log density and the values it reads from outside, so
        repeated runs do no extra work (and a changed global finds it anew)."""
        key = function_key(logdensity_fn)
        if key not in self._envelopes:
            self._envelopes[key] = self._envelope(logdensity_fn)
        return self._envelopes[key]

    def _envelope(self, logdensity_fn: Callable) -> Envelope:
        pilot_key = jax.random.key(20_240_601)
        if self.log_envelope is None:
            return find_log_envelope(
                logdensity_fn, self.proposal, pilot_key, safety_margin=self.safety_margin
            )
        candidates = self.proposal.sample_batch(pilot_key, 4096)
        log_ratio = np.asarray(pilot_log_ratio(logdensity_fn, self.proposal, candidates))
        worst = int(np.argmax(log_ratio))
        if log_ratio[worst] > self.log_envelope:
            where = jax.tree.map(lambda c: np.asarray(c[worst]).round(4).tolist(), candidates)
            raise ValueError(
                f"log_envelope={self.log_envelope:.6g} is too small: the target exceeds M times "
                f"the proposal, e.g. log f - log g = {log_ratio[worst]:.6g} at x = {where}. "
                f"Pass log_envelope >= {log_ratio[worst]:.6g} plus a margin, or "
                "log_envelope=None to have it found."
            )
        acceptance = float(np.mean(np.exp(log_ratio - self.log_envelope)))
        return Envelope(self.log_envelope, "given", acceptance, float(np.max(log_ratio)))

    def plan(self, envelope: Envelope, num_draws: int) -> tuple[int, int]:
        """``(batch_size, max_proposals)`` for ``num_draws`` draws (on one device).

        Raises:
            ValueError: if the expected number of proposals exceeds the budget.
        """
        acceptance = max(envelope.acceptance_estimate, 1e-12)
        expected = num_draws / acceptance
        budget = self.max_proposals or int(min(20 * expected + 1_000_000, DEFAULT_MAX_PROPOSALS))
        if expected > budget:
            raise ValueError(over_budget(envelope, expected, num_draws, acceptance, budget))
        if self.batch_size is not None:
            batch = self.batch_size
        else:
            batch = int(2 ** math.ceil(math.log2(max(expected * 1.05, 1.0))))
            batch = min(max(batch, 256), 2**16)
        return batch, budget

    # -------------------------------------------------- the exact-sampler protocol (driver)

    def iid_setup(self, target) -> Envelope:
        """Host-side checks against ``target`` and its envelope ``log M``."""
        key = jax.eval_shape(jax.random.key, 0)  # its type: no program runs (one did at import)
        example = jax.eval_shape(self.proposal.sample, key)
        if target.init is not None:
            self.check(target.init)
        try:
            check_scalar_logdensity(target.logdensity, example)
        except ValueError as err:  # without init, the proposal's draws say what a position is
            if target.init is not None or "must return a scalar" not in str(err):
                raise
            raise ValueError(
                f"{err} Target {target.name!r} has no init, so that point is a draw of the "
                "proposal: if the target has fewer dimensions, the proposal's draws have the "
                "wrong shape (give one shaped like the target's positions); give the target "
                "init= to have the proposal checked against it."
            ) from None
        if gap := coverage_gap(target.logdensity, self.proposal, target.init):
            warnings.warn(gap, EnvelopeWarning, skip_file_prefixes=INFER_FRAMES)
        return (target.logdensity, self.envelope(target.logdensity))

    def iid_program(self, setup, num_draws: int):
        """``(draw_fn(rng_key, log_envelope) -> (positions, counters), log_envelope, key)``."""
        logdensity_fn, envelope = setup
        batch_size, max_proposals = self.plan(envelope, num_draws)

        def draw_fn(rng_key, log_envelope):
            settings = (num_draws, batch_size, max_proposals)
            out = draw(rng_key, logdensity_fn, self.proposal, log_envelope, *settings)
            return out.positions, out._replace(positions=None)

        log_envelope = np.asarray(envelope.log_envelope, jnp.result_type(float))
        return draw_fn, log_envelope, (batch_size, max_proposals)

    @staticmethod
    def iid_progress_text(counters) -> str:
        rate = int(np.sum(counters.num_accepted)) / max(int(np.sum(counters.num_proposals)), 1)
        return f"acceptance {rate:.2f}"

    def iid_summary(self, setup, counters: list, num_draws: int):
        """``(info, num_logdensity_evals, num_grad_evals)`` over the chunks' counters; raises
        if a chunk ran out of budget, warns on envelope violations."""
        _, envelope = setup
        batch_size, max_proposals = self.plan(envelope, num_draws)

        def total(name):
            return int(sum(np.asarray(getattr(c, name), np.int64).sum() for c in counters))

        num_accepted, num_proposals = total("num_accepted"), total("num_proposals")
        if any(np.any(np.asarray(c.num_accepted) < num_draws) for c in counters):
            short = min(int(np.asarray(c.num_accepted).min()) for c in counters)
            raise RuntimeError(
                f"rejection sampling used its budget of {max_proposals} proposals for a chunk "
                f"of {num_draws} draws and accepted only {short} (acceptance rate "
                f"{num_accepted / max(num_proposals, 1):.3g}; log M = "
                f"{envelope.log_envelope:.4g}). Use a proposal closer to the target, or raise "
                "max_proposals."
            )
        violations = total("num_violations")
        max_log_excess = float(max(np.max(np.asarray(c.max_log_excess)) for c in counters))
        nonfinite, infinite = total("num_nonfinite"), total("num_infinite")
        warn_on_violations(violations, num_proposals, max_log_excess, infinite, envelope)
        exact = not violations or violations_are_trouble(violations, infinite)
        if exact and infinite:  # only +inf densities exceeded M g: the largest ratio is theirs
            max_log_excess = math.inf
        info = {
            "nonfinite_proposals": nonfinite,
            "acceptance_rate": num_accepted / num_proposals,
            "num_proposals": num_proposals,
            "num_accepted": num_accepted,
            "log_envelope": envelope.log_envelope,
            "envelope_source": envelope.source,
            "envelope_violations": violations,
            "max_envelope_ratio": math.exp(max_log_excess) if max_log_excess < 709 else math.inf,
            "exact": exact,  # False after f > M g: the draws are independent, not exact
        }
        return info, num_proposals, 0

    def build(self, logdensity_fn: Callable, num_warmup: int = 0) -> Kernel:
        log_envelope = self.envelope(logdensity_fn).log_envelope
        zero = jnp.zeros((), jnp.int32)
        return Kernel(
            init=lambda position: init(position, logdensity_fn),
            step=build_kernel(logdensity_fn, self.proposal),
            params=lambda position: jnp.asarray(log_envelope),
            adaptation=None,
            cost=lambda info: (info.num_proposals, zero),
        )


@public_name("rejection")
def as_top_level_api(
    proposal,
    log_envelope: float | None = None,
    *,
    safety_margin: float = 0.05,
    max_proposals: int | None = None,
    batch_size: int | None = None,
) -> Rejection:
    """Exact rejection sampling.

    Args:
        proposal: ``g``: a ``numpyro.distributions`` distribution whose draws are shaped like
            the target's positions, a ``(sample_fn, log_prob_fn)`` pair, or a
            :class:`~infer.proposal.Proposal` (e.g. from
            :func:`infer.envelopes.piecewise_constant`). ``g`` must be normalised.
        log_envelope: ``log M`` with ``f <= M g``. ``None`` finds it (see
            :func:`find_log_envelope`) and reports it in ``result.info``.
        safety_margin: relative margin added to a found ``M``.
        max_proposals: budget of proposals per device; ``None`` allows 20 times the expected
            number plus a million, at most 10**8. A run expected to need more is refused
            before it starts, and one that runs out raises an error instead of hanging.
        batch_size: proposals per vectorised batch; ``None`` sizes it from the expected need.

    Returns:
        A :class:`~infer.base.Sampler`. :func:`infer.sample` draws ``num_chains * num_samples``
        independent exact draws (no warm-up) and reports the acceptance rate, ``log M`` and any
        envelope violations in ``result.info``.
    """
    return Rejection(
        proposal,
        log_envelope,
        safety_margin=safety_margin,
        max_proposals=max_proposals,
        batch_size=batch_size,
    )
