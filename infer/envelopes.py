"""Envelopes for rejection sampling: tight proposals, and the bound ``M`` for a given one.

:func:`piecewise_constant` covers ``f`` with a step function: the interval is cut into equal
pieces and each piece's height is the largest value of ``f`` found on a fine grid inside it,
raised by a margin. With 256 pieces a smooth density is accepted about 98% of the time, and a
proposal costs one uniform number and a table lookup (Walker's alias method).

The bound ``M`` for any proposal ``g`` is found by :mod:`infer.envelope_search`.
"""

from __future__ import annotations

import functools
import math
import warnings
from collections.abc import Callable
from typing import NamedTuple

import jax
import jax.numpy as jnp
import numpy as np

from infer import random_bits, validation
from infer.base import IdentityKey
from infer.caller import INFER_FRAMES
from infer.envelope_search import Envelope
from infer.placement import PROGRAMS
from infer.proposal import Proposal
from infer.starts import check_scalar_logdensity


class EnvelopeWarning(UserWarning):
    """The target exceeded ``M`` times the proposal at some proposals: draws are not exact."""


class PiecewiseConstantEnvelope(NamedTuple):
    """A step-function envelope and the proposal it defines.

    Attributes:
        proposal: the normalised step density ``g``, for :func:`infer.rejection`.
        log_envelope: ``log M`` such that ``f <= M g`` on the grid (with the margin).
        edges: (num_pieces + 1,) piece boundaries.
        heights: (num_pieces,) envelope heights of ``f`` per piece.
    """

    proposal: Proposal
    log_envelope: float
    edges: np.ndarray
    heights: np.ndarray


def piecewise_constant(
    logdensity_fn: Callable,
    lower: float,
    upper: float,
    num_pieces: int = 256,
    points_per_piece: int = 32,
    margin: float = 0.01,
) -> PiecewiseConstantEnvelope:
    """A step-function envelope of ``exp(logdensity_fn)`` on ``[lower, upper]``.

    The heights come from evaluating ``f`` on ``points_per_piece + 1`` points per piece, so
    a density that varies faster than the grid can exceed them; :func:`infer.sample` counts
    such envelope violations and warns. ``f`` must be bounded on the interval.

    Args:
        logdensity_fn: scalar log density of a scalar ``x``.
        lower: lower end of a finite interval containing the support.
        upper: upper end of that interval.
        num_pieces: number of equal-width pieces.
        points_per_piece: grid resolution inside each piece.
        margin: relative increase of every height.

    Returns:
        A :class:`PiecewiseConstantEnvelope`; pass ``.proposal`` and ``.log_envelope`` to
        :func:`infer.rejection`.

    Raises:
        TypeError: when ``logdensity_fn`` is not a function, or ``lower``/``upper`` not numbers.
        ValueError: for a bad interval, a ``logdensity_fn`` that does not return a scalar, or
            when ``f`` is unbounded or zero on the grid.
    """
    if not callable(logdensity_fn):
        raise TypeError(
            "logdensity_fn must be a function of a scalar x returning the scalar log f(x); got "
            f"{type(logdensity_fn).__name__} {logdensity_fn!r}."
        )
    if not (validation.is_real_scalar(lower) and validation.is_real_scalar(upper)):
        raise TypeError(f"lower and upper must be numbers; got ({lower!r}, {upper!r}).")
    check_scalar_logdensity(logdensity_fn, jax.ShapeDtypeStruct((), jnp.result_type(float)))
    lower, upper = float(lower), float(upper)
    if not (math.isfinite(lower) and math.isfinite(upper) and lower < upper):
        raise ValueError(
            f"lower and upper must be finite with lower < upper; got ({lower}, {upper})."
        )
    num_pieces = validation.positive_int("num_pieces", num_pieces)
    points_per_piece = validation.positive_int("points_per_piece", points_per_piece)
    validation.positive_float("margin", margin)
    _warn_if_coarse(lower, upper, num_pieces)

    grid = np.linspace(lower, upper, num_pieces * points_per_piece + 1)
    log_f = np.asarray(jax.jit(jax.vmap(logdensity_fn))(jnp.asarray(grid)), np.float64)
    if np.any(np.isnan(log_f)) or np.any(log_f == np.inf):
        raise ValueError(
            "logdensity_fn is NaN or +inf on the grid: the density must be bounded on "
            f"[{lower}, {upper}] for a piecewise-constant envelope."
        )
    if not np.any(np.isfinite(log_f)):  # before NumPy warns of -inf - -inf
        raise ValueError(f"the density is zero everywhere on [{lower}, {upper}].")
    f = np.exp(log_f - np.max(log_f))
    inner = f[:-1].reshape(num_pieces, points_per_piece)
    heights = np.maximum(inner.max(axis=1), f[points_per_piece::points_per_piece])
    heights = np.maximum(heights * (1.0 + margin), 1e-6 * heights.max())
    width = (upper - lower) / num_pieces
    mass = heights * width
    total = mass.sum()
    probabilities = mass / total
    cumulative = np.concatenate([[0.0], np.cumsum(probabilities)])
    cumulative[-1] = 1.0
    log_g_pieces = np.log(heights / total)
    # f <= heights * exp(max log f) = total * exp(max log f) * g, so log M as below.
    log_envelope = float(np.log(total) + np.max(log_f))
    proposal = _step_proposal(lower, width, num_pieces, cumulative, probabilities, log_g_pieces)
    return PiecewiseConstantEnvelope(
        proposal,
        log_envelope,
        np.linspace(lower, upper, num_pieces + 1),
        heights * np.exp(np.max(log_f)),
    )


def _warn_if_coarse(lower: float, upper: float, num_pieces: int) -> None:
    """An :class:`EnvelopeWarning` when the draws' float type cannot resolve a piece (an
    interval far from 0 in float32: [1e6, 1e6 + 1] in pieces of 1/256 gave 15 distinct values
    in 40,000 "exact" draws)."""
    dtype = np.dtype(jnp.result_type(float))
    spacing = float(np.spacing(dtype.type(max(abs(lower), abs(upper)))))
    steps = (upper - lower) / num_pieces / spacing
    if steps < 1024:
        warnings.warn(
            f"a piece of [{lower:.10g}, {upper:.10g}] is {steps:.3g} {dtype.name} steps wide "
            "there: the draws come in few distinct values, not from the density. Shift the "
            "interval near 0 (draw x - c), or use float64 (jax.config.update("
            "'jax_enable_x64', True)).",
            EnvelopeWarning,
            skip_file_prefixes=INFER_FRAMES,
        )


def alias_table(probabilities: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Walker's alias table (Vose's construction): ``(keep, alias)``, each ``(K,)``.

    Column ``j`` (chosen uniformly) keeps piece ``j`` with probability ``keep[j]`` and
    otherwise gives piece ``alias[j]``; every piece then comes out with its probability.
    """
    k = len(probabilities)
    scaled = np.asarray(probabilities, np.float64) * k
    keep = np.ones(k)
    alias = np.arange(k)
    small = [j for j in range(k) if scaled[j] < 1.0]
    large = [j for j in range(k) if scaled[j] >= 1.0]
    while small and large:
        s, g = small.pop(), large.pop()
        keep[s], alias[s] = scaled[s], g
        scaled[g] -= 1.0 - scaled[s]
        (small if scaled[g] < 1.0 else large).append(g)
    return keep, alias


def alias_table_traced(probabilities: jax.Array) -> tuple[jax.Array, jax.Array]:
    """:func:`alias_table` inside a trace (for envelopes built at run time): ``(keep, alias)``,
    each ``(K,)``. ``O(K^2)`` work, meant for small ``K`` (tens of pieces)."""
    k = probabilities.shape[0]
    scaled = probabilities / jnp.sum(probabilities) * k
    index = jnp.arange(k)

    def pair(_, carry):
        scaled, keep, alias, done = carry
        small = ~done & (scaled < 1.0)
        large_scaled = jnp.where(~done & (scaled >= 1.0), scaled, -jnp.inf)
        s, g = jnp.argmax(small), jnp.argmax(large_scaled)
        go = jnp.any(small) & jnp.isfinite(large_scaled[g])
        keep = jnp.where(go & (index == s), scaled[s], keep)
        alias = jnp.where(go & (index == s), g, alias)
        scaled = jnp.where(go & (index == g), scaled[g] - (1.0 - scaled[s]), scaled)
        return scaled, keep, alias, done | (go & (index == s))

    carry = (scaled, jnp.ones_like(scaled), index, jnp.zeros(k, bool))
    _, keep, alias, _ = jax.lax.fori_loop(0, k, pair, carry)
    return keep, alias


def alias_pick(keep: jax.Array, alias: jax.Array, uniform: jax.Array) -> jax.Array:
    """Pieces for uniforms ``u`` (any shape) by the alias method, int32 of ``u``'s shape: the
    column ``floor(u K)``, or its alias where ``u``'s fractional part is above the column's
    ``keep``."""
    return alias_pick_and_place(keep, alias, uniform)[0]


def alias_pick_and_place(keep: jax.Array, alias: jax.Array, uniform: jax.Array):
    """:func:`alias_pick`, and a place inside the piece made from the rest of ``u``'s bits
    (the fractional part, rescaled): ``(piece (int32), within in [0, 1])``, each of ``u``'s
    shape. The places of all pieces together are as fine as ``u`` itself: ``2**23 / K`` of
    them a piece, a grid as fine as a float32 uniform's over the whole interval. ARS's
    envelope draws its place with a uniform of its own instead, at no measurable cost there:
    through its pieces' exponential shapes that grid gave 3,346 repeated values in 200,000
    draws of a truncated normal (346 with the second uniform)."""
    k = keep.shape[0]
    scaled = uniform * k
    column = jnp.minimum(scaled.astype(jnp.int32), k - 1)
    fraction = scaled - column
    column_keep = keep[column]
    is_column = fraction < column_keep
    piece = jnp.where(is_column, column, alias[column])
    within = jnp.where(
        is_column,
        fraction / jnp.where(column_keep > 0, column_keep, 1.0),
        (fraction - column_keep) / jnp.where(column_keep < 1, 1.0 - column_keep, 1.0),
    )
    return piece, jnp.clip(within, 0.0, 1.0)


def _step_proposal(lower, width, num_pieces, cumulative, probabilities, log_g_pieces) -> Proposal:
    """Sampling by the alias method: O(1) per draw, no search. One uniform ``u`` picks a
    column ``floor(u K)``; its fractional part both decides between the column and its alias
    and, rescaled, places the draw inside the chosen piece."""
    dtype = jnp.result_type(float)
    keep_np, alias_np = alias_table(probabilities)
    keep = jnp.asarray(keep_np, dtype)
    alias = jnp.asarray(alias_np, jnp.int32)
    log_g_pieces = jnp.asarray(log_g_pieces, dtype)
    upper = lower + width * num_pieces
    del cumulative

    def sample_and_log_prob_batch(rng_key, n):
        # one uniform: a second one to place the draw costs 13% of the draws per second
        uniform = random_bits.uniform(rng_key, (n,), dtype)
        piece, within = alias_pick_and_place(keep, alias, uniform)
        x = lower + width * piece + width * within  # not (piece + within): 2**-17 steps near 64
        return jnp.clip(x, lower, upper), log_g_pieces[piece]

    def sample_batch(rng_key, n):
        return sample_and_log_prob_batch(rng_key, n)[0]

    def log_prob_batch(x):
        piece = jnp.clip(jnp.floor((x - lower) / width).astype(jnp.int32), 0, num_pieces - 1)
        inside = (x >= lower) & (x <= upper)
        return jnp.where(inside, log_g_pieces[piece], -jnp.inf)

    return Proposal(
        sample=lambda rng_key: sample_batch(rng_key, 1)[0],
        log_prob=lambda x: log_prob_batch(jnp.reshape(x, (1,)))[0],
        sample_batch=sample_batch,
        log_prob_batch=log_prob_batch,
        sample_and_log_prob_batch=sample_and_log_prob_batch,
    )


def coverage_gap(
    logdensity_fn, proposal: Proposal, init=None, num_points: int = 256, compiled: bool = True
):
    """Where the target has density and the proposal none, as a message, else ``None``:
    rejection sampling then draws from the target cut to the proposal's support.

    Probes points the proposal's draws suggest lie outside its support: the draws mirrored
    (``-x``) and stretched (``3x``, ``-3x``), and the target's ``init``. A half-line or bounded
    proposal under a target on the whole line is caught; a gap inside the proposal's range is
    not looked for. The probe is compiled once per log density and proposal; ``compiled=False``
    runs it op by op, for a log density bound anew for each run (it would compile each time).
    """
    probe = functools.partial(_uncovered, logdensity_fn, proposal, num_points)
    if compiled:
        shapes = str(jax.tree.map(lambda x: (np.shape(x), str(np.asarray(x).dtype)), init))
        key = ("rejection-coverage", IdentityKey(logdensity_fn), IdentityKey(proposal), shapes)
        probe, _ = PROGRAMS.get(key, lambda: jax.jit(probe))
    points, uncovered = probe(init)
    bad = np.flatnonzero(np.asarray(uncovered))
    if not bad.size:
        return None
    where = jax.tree.map(lambda p: np.asarray(p[bad[0]], np.float64).round(4).tolist(), points)
    return (
        f"the proposal does not cover the target: at x = {where} the target's log density is "
        "finite but the proposal's is -inf or NaN, so the draws come from the target cut "
        "to the proposal's support. If that is not meant, use a proposal whose support holds "
        "the target's (a Normal or Cauchy for a target on the whole line)."
    )


def _uncovered(logdensity_fn, proposal: Proposal, num_points: int, init):
    """``(points, uncovered (n,))``: the probe points of :func:`coverage_gap` and where the
    target's log density is finite but the proposal has no density."""
    draws = proposal.sample_batch(jax.random.key(20_240_602), num_points)
    points = jax.tree.map(lambda x: jnp.concatenate([-x, 3.0 * x, -3.0 * x]), draws)
    if init is not None:
        points = jax.tree.map(lambda p, i: jnp.concatenate([p, jnp.asarray(i)[None]]), points, init)
    target_has = jnp.isfinite(jax.vmap(logdensity_fn)(points))
    with warnings.catch_warnings():  # the probe looks outside the support on purpose
        warnings.filterwarnings("ignore", "Out-of-support values", UserWarning)
        proposal_lacks = ~jnp.isfinite(proposal.log_prob_batch(points))
    if proposal.support is not None and jax.tree.structure(points).num_leaves == 1:
        support = validation.fresh_numpy_leaves(proposal.support)  # as log_prob's own
        with jax.numpy_rank_promotion("allow"):  # (draws, 3) against (3,) bounds
            inside = jnp.asarray(support(jax.tree.leaves(points)[0]))
        inside = jnp.all(inside.reshape(inside.shape[0], -1), axis=1)
        proposal_lacks = proposal_lacks | ~inside
    return points, target_has & proposal_lacks


def violations_are_trouble(num_violations: int, num_infinite: int) -> bool:
    """Whether every envelope violation counted was a log density of ``+inf`` (numerical
    trouble, rejected like NaN), so that the draws are still exact draws of the target where
    it is finite; any other violation (``f > M g``) makes them inexact. (NaN densities are
    not violations, and once made room for real ones here.)"""
    return num_violations <= num_infinite


def warn_on_violations(
    num_violations: int,
    num_proposals: int,
    max_log_excess: float,
    num_infinite: int = 0,
    envelope: Envelope | None = None,
) -> None:
    """Warn with the count and the largest ratio ``f / (M g)`` seen where ``f`` is finite
    (``max_log_excess``); a density of ``+inf`` (numerical trouble, rejected, counted as a
    violation: ``num_infinite`` of them) is said to be one. The advice depends on whether
    ``envelope`` was given or found (its search fell short)."""
    if num_violations <= 0:
        return
    if violations_are_trouble(num_violations, num_infinite):
        message = (
            f"rejection sampling: {num_violations} of {num_proposals} proposals had a log "
            "density of +inf: numerical trouble, not density, so they were rejected (and count "
            "as envelope violations); the draws are of the target where it is finite. Check "
            "the target's log density there (a log of 0, a division by 0)."
        )
    else:
        largest = f"{math.exp(min(max_log_excess, 700.0)):.4g}"
        fix = "Raise log_envelope, or pass log_envelope=None to have it found."
        if envelope is not None and envelope.source == "found":
            fix = (
                f"The envelope was found (log M = {envelope.log_envelope:.4g}) by a search "
                "that missed the largest f/g, in a region its pilot draws did not reach: pass "
                f"log_envelope={envelope.log_envelope + max_log_excess + 0.05:.4g} or more, or "
                "raise safety_margin."
            )
        infinite = (
            f" ({num_infinite} more had a log density of +inf, rejected as numerical trouble)"
            if num_infinite
            else ""
        )
        message = (
            f"rejection sampling: {num_violations - num_infinite} of {num_proposals} proposals "
            f"had f > M*g (largest f/(M*g) = {largest}){infinite}; the draws are not exact. "
            f"{fix} If a larger M "
            "still gives violations, f/g may grow without bound (a proposal with lighter "
            "tails than the target's, such as a Normal under a Student-t): no M covers it, "
            "so use a proposal with heavier tails (a Cauchy or Student-t)."
        )
    warnings.warn(message, EnvelopeWarning, skip_file_prefixes=INFER_FRAMES)
