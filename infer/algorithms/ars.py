"""Adaptive rejection sampling (Gilks & Wild 1992) for log-concave densities in one dimension.

For ``h = log f`` concave, tangents at the hull points ``x_1 < ... < x_k`` bound ``h`` from
above: their lower envelope ``u`` makes a piecewise-exponential density that is easy to
sample and invert. Chords between the points bound ``h`` from below (the *squeeze* ``l``). A
proposal ``x ~ exp(u)`` with ``w ~ U(0, 1)`` is accepted at once when ``log w < l(x) - u(x)``;
otherwise ``h(x)`` is evaluated, the proposal accepted when ``log w < h(x) - u(x)``, and ``x``
joins the hull, so the envelope tightens where it was loose. The derivative-free variant
(Gilks 1992) replaces the tangents with the secants through neighbouring points, extended.

The hull has a fixed number of slots (``max_points``) so that everything compiles. Sampling
has two phases per density: a sequential one that grows the hull from its starting points
(its draws are kept), then a vectorised one that draws from the full hull in batches, with
the squeeze sparing most density evaluations. A point found above the upper hull, or slopes
that increase, mean the density is not log-concave: sampling stops and an error says so.

``vectorised over many densities``: :func:`sample_many` runs the whole procedure for a batch
of parameters of one log density (e.g. the full conditionals of a Gibbs sweep) at once.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from typing import NamedTuple

import jax
import jax.numpy as jnp
import numpy as np

from infer import validation
from infer.base import Kernel, Sampler
from infer.envelopes import alias_pick, alias_table_traced
from infer.starts import check_scalar_logdensity

__all__ = ["Hull", "ARSCounters", "sample", "sample_many", "as_top_level_api"]

TOLERANCE = 1e-4  # log-density slack before a point above the hull counts as non-concave


class Hull(NamedTuple):
    """Hull points of one density, ``max_points`` slots, the first ``count`` in use (sorted).

    Attributes:
        x: (max_points,) abscissae; unused slots hold ``+inf``.
        h: (max_points,) ``log f(x)``.
        slope: (max_points,) ``d log f / dx`` at ``x`` (tangent variant) or NaN.
        count: scalar int, points in use.
        bad: scalar bool, the density was found not log-concave.
    """

    x: jax.Array
    h: jax.Array
    slope: jax.Array
    count: jax.Array
    bad: jax.Array


class ARSCounters(NamedTuple):
    """What a run cost (scalars).

    Attributes:
        num_accepted: accepted proposals.
        num_proposals: proposals made.
        num_evaluations: density evaluations the squeeze could not spare.
        num_points: hull points at the end.
        not_log_concave: 1 if a point above the hull or rising slopes were seen.
        bad_x: where (NaN if nowhere).
        unbounded_hull: 1 if the hull had infinite mass (start points on one side only).
    """

    num_accepted: jax.Array
    num_proposals: jax.Array
    num_evaluations: jax.Array
    num_points: jax.Array
    not_log_concave: jax.Array
    bad_x: jax.Array
    unbounded_hull: jax.Array


# ----------------------------------------------------------------------------- the hull


def _segments(hull: Hull, lower: float, upper: float, derivative_free: bool):
    """The upper envelope as ``k`` linear pieces in log space: on ``[left_j, right_j]``,
    ``u(x) = value_j + slope_j (x - anchor_j)``. Returns arrays of length max_points (unused
    pieces have -inf mass)."""
    x, h, slope, count = hull.x, hull.h, hull.slope, hull.count
    n = x.shape[0]
    index = jnp.arange(n)
    used = index < count
    if not derivative_free:
        # Tangent j meets tangent j + 1 at z_j.
        x_next, h_next, s_next = jnp.roll(x, -1), jnp.roll(h, -1), jnp.roll(slope, -1)
        denominator = slope - s_next
        flat = jnp.abs(denominator) < 1e-12 * (1.0 + jnp.abs(slope))
        z = jnp.where(
            flat,
            0.5 * (x + x_next),
            (h_next - h - x_next * s_next + x * slope) / jnp.where(flat, 1.0, denominator),
        )
        z = jnp.clip(z, x, x_next)  # numerical safety; exact for concave h
        right = jnp.where(index < count - 1, z, upper)
        left = jnp.concatenate([jnp.asarray([lower], x.dtype), right[:-1]])
        return left, right, h, slope, x, used
    # Derivative-free (Gilks 1992): between x_j and x_{j+1}, the upper bound is the lower of
    # the chords (x_{j-1}, x_j) and (x_{j+1}, x_{j+2}) extended; outside, the end chords.
    # Pieces: [lower, x_0], then [x_j, x_{j+1}] split at the crossing, then [x_{k-1}, upper].
    chord = (jnp.roll(h, -1) - h) / (jnp.roll(x, -1) - x)  # chord j: through x_j, x_{j+1}
    chord = jnp.where(index < count - 1, chord, jnp.nan)
    first, last = chord[0], chord[jnp.maximum(count - 2, 0)]
    # Pieces are indexed 0..2k-? ; build them as 2 per gap plus two tails, in fixed size 2n.
    gap = jnp.arange(n)
    has_gap = gap < count - 1
    before = jnp.where(gap >= 1, jnp.roll(chord, 1), jnp.nan)  # chord j-1
    after = jnp.where(gap + 1 < count - 1, jnp.roll(chord, -1), jnp.nan)  # chord j+1
    xl, xr, hl, hr = x, jnp.roll(x, -1), h, jnp.roll(h, -1)
    # Line A: chord j-1 extended from (x_j, h_j); line B: chord j+1 extended back from
    # (x_{j+1}, h_{j+1}). Their crossing splits the gap; where one is missing, use the other.
    a_ok, b_ok = jnp.isfinite(before), jnp.isfinite(after)
    denominator = before - after
    cross = (hr - hl + before * xl - after * xr) / jnp.where(denominator == 0, 1.0, denominator)
    cross = jnp.where(
        a_ok & b_ok & (denominator != 0), jnp.clip(cross, xl, xr), jnp.where(a_ok, xr, xl)
    )
    left = jnp.concatenate(
        [jnp.stack([xl, cross], 1).reshape(-1), jnp.asarray([lower, 0.0], x.dtype)]
    )
    right = jnp.concatenate(
        [jnp.stack([cross, xr], 1).reshape(-1), jnp.asarray([0.0, 0.0], x.dtype)]
    )
    anchor = jnp.concatenate([jnp.stack([xl, xr], 1).reshape(-1), jnp.zeros(2, x.dtype)])
    value = jnp.concatenate([jnp.stack([hl, hr], 1).reshape(-1), jnp.zeros(2, x.dtype)])
    line = jnp.concatenate([jnp.stack([before, after], 1).reshape(-1), jnp.zeros(2, x.dtype)])
    use = jnp.concatenate(
        [
            jnp.stack([has_gap & a_ok & (cross > xl), has_gap & b_ok & (cross < xr)], 1).reshape(
                -1
            ),
            jnp.asarray([True, True]),
        ]
    )
    # The two tails: left of x_0 along chord 0, right of x_{k-1} along the last chord.
    tail_left = (lower, x[0], x[0], h[0], first)
    x_last = x[jnp.maximum(count - 1, 0)]
    tail_right = (x_last, upper, x_last, h[jnp.maximum(count - 1, 0)], last)
    for i, (lo, hi, anc, val, sl) in enumerate((tail_left, tail_right)):
        left = left.at[2 * n + i].set(lo)
        right = right.at[2 * n + i].set(hi)
        anchor = anchor.at[2 * n + i].set(anc)
        value = value.at[2 * n + i].set(val)
        line = line.at[2 * n + i].set(sl)
    return left, right, value, line, anchor, use


def _log_masses(left, right, value, slope, anchor, used):
    """``log`` of the integral of ``exp(value + slope (x - anchor))`` over each piece."""
    width = right - left
    u_left = value + slope * (left - anchor)
    u_right = value + slope * (right - anchor)
    small = jnp.abs(slope * width) < 1e-6
    rising = slope > 0
    # d > 0: e^{u(right)} (1 - e^{-d L}) / d ; d < 0: e^{u(left)} (1 - e^{d L}) / (-d)
    safe = jnp.where(small | (slope == 0), 1.0, slope)
    log_rise = u_right + jnp.log(-jnp.expm1(-jnp.abs(safe) * width)) - jnp.log(jnp.abs(safe))
    log_fall = u_left + jnp.log(-jnp.expm1(-jnp.abs(safe) * width)) - jnp.log(jnp.abs(safe))
    log_flat = u_left + jnp.log(jnp.where(width > 0, width, 1.0))
    log_mass = jnp.where(small, log_flat, jnp.where(rising, log_rise, log_fall))
    ok = used & (width > 0) & jnp.isfinite(log_mass)
    return jnp.where(ok, log_mass, -jnp.inf)


def _invert(v, left, right, slope):
    """A draw from ``exp(slope x)`` on ``[left, right]`` for uniforms ``v`` (elementwise)."""
    width = right - left
    small = jnp.abs(slope * width) < 1e-6
    safe = jnp.where(small, 1.0, slope)
    from_right = right + jnp.log1p(-v * -jnp.expm1(-safe * width)) / safe
    from_left = left + jnp.log1p(-v * -jnp.expm1(safe * width)) / safe
    linear = left + v * jnp.where(jnp.isfinite(width), width, 0.0)
    x = jnp.where(small, linear, jnp.where(slope > 0, from_right, from_left))
    return jnp.clip(x, left, right)


class Envelope(NamedTuple):
    """The hull's pieces, ready to sample: all (num_pieces,), and ``unbounded`` (scalar bool:
    a piece on an infinite side rises towards infinity, so the hull has no finite mass).
    Pieces are picked by the alias method (``keep``, ``alias``), in O(1) per draw."""

    left: jax.Array
    right: jax.Array
    value: jax.Array
    slope: jax.Array
    anchor: jax.Array
    log_mass: jax.Array
    keep: jax.Array
    alias: jax.Array
    unbounded: jax.Array


def envelope(hull: Hull, lower: float, upper: float, derivative_free: bool) -> Envelope:
    left, right, value, slope, anchor, used = _segments(hull, lower, upper, derivative_free)
    log_mass = _log_masses(left, right, value, slope, anchor, used)
    # Going towards -inf the envelope must fall (slope > 0), towards +inf too (slope < 0).
    open_left, open_right = ~jnp.isfinite(left), ~jnp.isfinite(right)
    unbounded = jnp.any(used & ((open_left & (slope <= 0)) | (open_right & (slope >= 0))))
    mass = jnp.exp(log_mass - jnp.max(log_mass))
    keep, alias = alias_table_traced(mass)
    return Envelope(left, right, value, slope, anchor, log_mass, keep, alias, unbounded)


def propose(rng_key, env: Envelope, shape):
    """Draws from the envelope: ``(x, u(x), piece)``, each of ``shape``. One uniform both picks
    the piece (alias method) and, from its remaining bits, places the draw inside it."""
    uniform = jax.random.uniform(rng_key, shape, env.left.dtype)
    piece, within = alias_pick(env.keep, env.alias, uniform)
    x = _invert(within, env.left[piece], env.right[piece], env.slope[piece])
    u = env.value[piece] + env.slope[piece] * (x - env.anchor[piece])
    return x, u, piece


def upper_hull(env: Envelope, x):
    """The envelope's log height ``u(x)`` at points ``x`` (n,), for plots (O(pieces) each)."""
    column = x[:, None]
    left, right, anchor = env.left[None, :], env.right[None, :], env.anchor[None, :]
    inside = (left <= column) & (column <= right) & jnp.isfinite(env.log_mass)[None, :]
    line = env.value[None, :] + env.slope[None, :] * (column - anchor)
    return jnp.min(jnp.where(inside, line, jnp.inf), axis=1)


def squeeze(hull: Hull, x, piece, derivative_free: bool):
    """The chord through the hull points either side of ``x`` (``-inf`` outside
    ``[x_1, x_k]``), found from the envelope piece ``x`` was drawn from: no search."""
    count, n = hull.count, hull.x.shape[0]
    if derivative_free:
        segment = jnp.where(piece < 2 * n, piece // 2, -1)
    else:
        segment = piece - (x < hull.x[piece]).astype(piece.dtype)
    inside = (segment >= 0) & (segment + 1 < count)
    j = jnp.clip(segment, 0, n - 2)
    x0, x1, h0, h1 = hull.x[j], hull.x[j + 1], hull.h[j], hull.h[j + 1]
    chord = h0 + (h1 - h0) * (x - x0) / jnp.where(x1 > x0, x1 - x0, 1.0)
    return jnp.where(inside, chord, -jnp.inf)


def insert(hull: Hull, x, h, slope, upper_value, derivative_free: bool) -> Hull:
    """Add ``(x, h, slope)`` to the hull if there is a free slot; flag non-concavity when the
    new point lies above the upper hull or the slopes stop decreasing."""
    n = hull.x.shape[0]
    room = hull.count < n
    above = h > upper_value + TOLERANCE * (1.0 + jnp.abs(h))
    position = jnp.searchsorted(hull.x, x)
    duplicate = jnp.any(hull.x == x)
    add = room & ~duplicate & jnp.isfinite(h)
    index = jnp.arange(n)
    shifted = lambda a, value: jnp.where(  # noqa: E731
        index < position, a, jnp.where(index == position, value, jnp.roll(a, 1))
    )
    new = Hull(
        jnp.where(add, shifted(hull.x, x), hull.x),
        jnp.where(add, shifted(hull.h, h), hull.h),
        jnp.where(add, shifted(hull.slope, slope), hull.slope),
        hull.count + add.astype(hull.count.dtype),
        hull.bad | (above & jnp.isfinite(h)),
    )
    return new._replace(bad=new.bad | _not_concave(new, derivative_free))


def _not_concave(hull: Hull, derivative_free: bool) -> jax.Array:
    """Whether the points already show ``h`` is not concave: each point must lie on or above
    the chord of its neighbours (tested in log-density units, which stay accurate when points
    are close, unlike chord slopes), and, with tangents, the slopes must not increase."""
    x, h = hull.x, hull.h
    used = jnp.arange(x.shape[0]) < hull.count
    triple = used[2:]  # points j-1, j, j+1 all in use (the hull is sorted and packed)
    width = x[2:] - x[:-2]
    weight = (x[1:-1] - x[:-2]) / jnp.where(triple, width, 1.0)
    chord = h[:-2] + weight * (h[2:] - h[:-2])
    slack = TOLERANCE * (1.0 + jnp.abs(h[1:-1]))
    bad = jnp.any(triple & (h[1:-1] < chord - slack))
    if not derivative_free:
        rising = jnp.diff(hull.slope) > TOLERANCE * (1.0 + jnp.abs(hull.slope[:-1]))
        bad = bad | jnp.any(rising & used[1:])
    return bad


# ----------------------------------------------------------------------------- sampling


def _value_and_slope(logdensity_fn, derivative_free):
    if derivative_free:
        return lambda x: (logdensity_fn(x), jnp.full_like(x, jnp.nan))
    return jax.value_and_grad(logdensity_fn)


def _start_hull(logdensity_fn, points, max_points, derivative_free) -> Hull:
    points = jnp.sort(jnp.asarray(points, jnp.result_type(float)))
    values, slopes = jax.vmap(_value_and_slope(logdensity_fn, derivative_free))(points)
    pad = max_points - points.shape[0]
    fill = lambda a, v: jnp.concatenate([a, jnp.full((pad,), v, a.dtype)])  # noqa: E731
    count = jnp.asarray(points.shape[0], jnp.int32)
    hull = Hull(
        fill(points, jnp.inf),
        fill(values, -jnp.inf),
        fill(slopes, jnp.nan),
        count,
        jnp.asarray(False),
    )
    return hull._replace(bad=_not_concave(hull, derivative_free))


def sample(
    rng_key,
    logdensity_fn: Callable,
    num_draws: int,
    domain: tuple[float, float],
    start_points,
    *,
    max_points: int = 32,
    derivative_free: bool = False,
    batch_size: int = 4096,
    max_rounds: int = 10_000,
    lazy: bool | None = None,
):
    """``num_draws`` exact draws from ``exp(logdensity_fn)`` on ``domain``.

    Args:
        rng_key: a JAX key.
        logdensity_fn: scalar ``log f(x)`` of a scalar ``x``, concave.
        num_draws: draws wanted (static).
        domain: ``(lower, upper)``, either may be infinite.
        start_points: (m,) at least two distinct starting hull points inside the domain; for
            an infinite end, the outermost point there must have ``log f`` sloping towards the
            inside (e.g. one point left of the mode and one right of it).
        max_points: hull slots; the hull stops growing when they are full.
        derivative_free: secants instead of tangents (no gradients needed).
        batch_size: proposals per vectorised round once the hull is full.
        max_rounds: budget of rounds.
        lazy: in the vectorised phase, evaluate ``log f`` only where the squeeze could not
            decide (gathered into a smaller batch) instead of everywhere and masking. Pays
            for densities that cost more than the gather; ``None`` decides from the size of
            ``logdensity_fn``'s computation.

    Returns:
        ``(draws (num_draws,), ARSCounters, hull)``.
    """
    lower, upper = float(domain[0]), float(domain[1])
    value_and_slope = _value_and_slope(logdensity_fn, derivative_free)
    if lazy is None:
        lazy = _is_costly(logdensity_fn, jnp.result_type(float))
    hull = _start_hull(logdensity_fn, start_points, max_points, derivative_free)
    dtype = hull.x.dtype
    buffer = jnp.zeros((num_draws,), dtype)
    zero = jnp.zeros((), jnp.int32)

    # Phase 1: one proposal at a time, every evaluated point joins the hull (Gilks & Wild).
    def growing(carry):
        hull, buffer, count, proposals, evaluations, rounds = carry
        env = envelope(hull, lower, upper, derivative_free)
        ok = ~hull.bad & ~env.unbounded
        return (hull.count < max_points) & (count < num_draws) & ok & (rounds < max_rounds)

    def grow(carry):
        hull, buffer, count, proposals, evaluations, rounds = carry
        key = jax.random.fold_in(rng_key, rounds)
        key_propose, key_accept = jax.random.split(key)
        env = envelope(hull, lower, upper, derivative_free)
        x, u, piece = propose(key_propose, env, ())
        log_w = jnp.log(jax.random.uniform(key_accept, (), dtype))
        lower_bound = squeeze(hull, x, piece, derivative_free)
        by_squeeze = log_w < lower_bound - u
        h, slope = value_and_slope(x)
        accepted = by_squeeze | (log_w < h - u)
        evaluated = ~by_squeeze
        hull = jax.lax.cond(
            evaluated, lambda hl: insert(hl, x, h, slope, u, derivative_free), lambda hl: hl, hull
        )
        # For a concave h, chord <= h <= tangent: a squeeze above the hull is proof enough.
        hull = hull._replace(bad=hull.bad | (lower_bound > u + TOLERANCE * (1.0 + jnp.abs(u))))
        buffer = buffer.at[jnp.where(accepted, count, num_draws)].set(x, mode="drop")
        return (hull, buffer, count + accepted, proposals + 1, evaluations + evaluated, rounds + 1)

    carry = (hull, buffer, zero, zero, zero, zero)
    hull, buffer, count, proposals, evaluations, rounds = jax.lax.while_loop(growing, grow, carry)

    # Phase 2: the hull is full (or we are done): vectorised rounds from the fixed envelope.
    env = envelope(hull, lower, upper, derivative_free)
    unbounded = env.unbounded

    def filling(carry):
        buffer, count, proposals, evaluations, rounds, bad, bad_x = carry
        return (count < num_draws) & ~bad & (rounds < max_rounds)

    def fill(carry):
        buffer, count, proposals, evaluations, rounds, bad, bad_x = carry
        key = jax.random.fold_in(rng_key, rounds)
        key_propose, key_accept = jax.random.split(key)
        x, u, piece = propose(key_propose, env, (batch_size,))
        log_w = jnp.log(jax.random.uniform(key_accept, (batch_size,), dtype))
        lower_bound = squeeze(hull, x, piece, derivative_free)
        by_squeeze = log_w < lower_bound - u
        if lazy:
            h = _lazy_logdensity(logdensity_fn, x, ~by_squeeze, u)
        else:
            h = jnp.where(by_squeeze, u, jax.vmap(logdensity_fn)(x))
        accepted = by_squeeze | (log_w < h - u)
        slack = TOLERANCE * (1.0 + jnp.abs(u))
        above = ((h > u + slack) & jnp.isfinite(h)) | (lower_bound > u + slack)
        slot = jnp.where(accepted, jnp.cumsum(accepted) - 1 + count, num_draws)
        buffer = buffer.at[slot].set(x, mode="drop")
        first_bad = jnp.where(jnp.any(above), x[jnp.argmax(above)], bad_x)
        return (
            buffer,
            count + jnp.sum(accepted, dtype=jnp.int32),
            proposals + batch_size,
            evaluations + jnp.sum(~by_squeeze, dtype=jnp.int32),
            rounds + 1,
            bad | jnp.any(above),
            first_bad,
        )

    bad_x = jnp.asarray(jnp.nan, dtype)
    carry = (buffer, count, proposals, evaluations, rounds, hull.bad | unbounded, bad_x)
    buffer, count, proposals, evaluations, rounds, bad, bad_x = jax.lax.while_loop(
        filling, fill, carry
    )
    counters = ARSCounters(
        count,
        proposals,
        evaluations,
        hull.count,
        hull.bad.astype(jnp.int32) | (bad & ~unbounded).astype(jnp.int32),
        bad_x,
        unbounded.astype(jnp.int32),
    )
    return buffer, counters, hull


COSTLY = 64  # array elements computed per log-density call above which lazy evaluation pays


def _is_costly(logdensity_fn, dtype) -> bool:
    """Whether one call of ``logdensity_fn`` computes more than :data:`COSTLY` array elements
    (summed over its operations, nested ones included); costly if it cannot be traced alone."""
    try:
        closed = jax.make_jaxpr(logdensity_fn)(jnp.zeros((), dtype))
    except Exception:  # noqa: BLE001 - e.g. a function closing over another trace's values
        return True

    def size(jaxpr) -> int:
        total = 0
        for equation in jaxpr.eqns:
            total += sum(max(math.prod(getattr(v.aval, "shape", ())), 1) for v in equation.outvars)
            for value in equation.params.values():
                for sub in value if isinstance(value, (tuple, list)) else (value,):
                    inner = getattr(sub, "jaxpr", sub)
                    if hasattr(inner, "eqns"):
                        total += size(inner)
        return total

    return size(closed.jaxpr) > COSTLY


def _lazy_logdensity(logdensity_fn, x, needed, fallback):
    """``log f(x)`` where ``needed`` (``fallback`` elsewhere), evaluating ``f`` only there
    when few are needed: their positions are gathered into a batch an eighth of the size. If
    more are needed than fit, every position is evaluated. Either way the result is exact."""
    capacity = max(x.shape[0] // 8, 1)
    count = jnp.sum(needed)

    def few(x):
        (where,) = jnp.nonzero(needed, size=capacity, fill_value=0)
        values = jax.vmap(logdensity_fn)(x[where])
        gathered = jnp.where(jnp.arange(capacity) < count, values, fallback[where])
        return fallback.at[where].set(gathered)

    def many(x):
        return jnp.where(needed, jax.vmap(logdensity_fn)(x), fallback)

    return jax.lax.cond(count <= capacity, few, many, x)


def sample_many(
    rng_key, logdensity_fn: Callable, params, num_draws: int, domain, start_points, **options
):
    """:func:`sample` for a batch of densities ``logdensity_fn(x, theta)``, one ``theta`` per
    row of ``params`` (a pytree with a leading axis), all at once (``vmap``).

    Returns ``(draws (num_densities, num_draws), ARSCounters with a leading axis)``.
    ``start_points`` is (m,) shared, or (num_densities, m). Under ``vmap`` a branch runs both
    ways, so lazy evaluation (see :func:`sample`) is off unless asked for.
    """
    options.setdefault("lazy", False)
    num = jax.tree.leaves(params)[0].shape[0]
    start_points = jnp.asarray(start_points)
    if start_points.ndim == 1:
        start_points = jnp.broadcast_to(start_points, (num, start_points.shape[0]))
    keys = jax.random.split(rng_key, num)

    def one(key, theta, points):
        draws, counters, _ = sample(
            key, lambda x: logdensity_fn(x, theta), num_draws, domain, points, **options
        )
        return draws, counters

    return jax.vmap(one)(keys, params, start_points)


# ----------------------------------------------------------------------------- the sampler


def default_start_points(logdensity_fn: Callable, lower: float, upper: float) -> np.ndarray:
    """Starting hull points: either side of the mode (found by bisection on the slope inside
    a bracket grown from 0, or from the domain's middle), at about one curvature scale, so that
    infinite tails slope inwards. Raises if no such points exist (an improper density)."""
    grad = jax.jit(jax.grad(logdensity_fn))
    value = jax.jit(logdensity_fn)

    def slope(x):
        return float(grad(jnp.asarray(x, jnp.result_type(float))))

    finite_lo, finite_hi = math.isfinite(lower), math.isfinite(upper)
    if finite_lo and finite_hi:
        width = upper - lower
        return np.array([lower + 0.05 * width, lower + 0.5 * width, upper - 0.05 * width])
    start = lower + 1.0 if finite_lo else (upper - 1.0 if finite_hi else 0.0)
    left, right = start, start
    step = 1.0
    for _ in range(60):  # grow a bracket [left, right] with slope(left) > 0 > slope(right)
        if not math.isfinite(value(jnp.asarray(left))) or slope(left) <= 0:
            left = max(left - step, lower + 1e-12 * (1 + abs(lower))) if finite_lo else left - step
        if not math.isfinite(value(jnp.asarray(right))) or slope(right) >= 0:
            right = (
                min(right + step, upper - 1e-12 * (1 + abs(upper))) if finite_hi else right + step
            )
        step *= 2.0
        ok_left = (finite_lo and left <= lower + 1e-9 * (1 + abs(lower))) or slope(left) > 0
        ok_right = (finite_hi and right >= upper - 1e-9 * (1 + abs(upper))) or slope(right) < 0
        if ok_left and ok_right and left < right:
            return np.array([left, 0.5 * (left + right), right])
    raise ValueError(
        "could not find starting points for adaptive rejection sampling: the log density does "
        "not fall away on an infinite side of the domain (is it normalisable and "
        "log-concave?). Pass start_points= with points on both sides of the mode."
    )


class ARS(Sampler):
    """Adaptive rejection sampling; see :func:`as_top_level_api`."""

    name = "ars"

    def __init__(
        self,
        domain,
        *,
        start_points=None,
        max_points: int = 32,
        derivative_free: bool = False,
        batch_size: int = 4096,
        max_rounds: int = 100_000,
    ):
        if not (isinstance(domain, (tuple, list)) and len(domain) == 2):
            raise TypeError(f"domain must be a pair (lower, upper); got {domain!r}.")
        lower, upper = float(domain[0]), float(domain[1])
        if math.isnan(lower) or math.isnan(upper) or not lower < upper:
            raise ValueError(f"domain must have lower < upper; got ({lower}, {upper}).")
        self.domain = (lower, upper)
        self.start_points = (
            None if start_points is None else np.sort(np.asarray(start_points, float))
        )
        if self.start_points is not None:
            if self.start_points.ndim != 1 or self.start_points.size < 2:
                raise ValueError("start_points must be at least two points, shape (m,).")
            if np.any(self.start_points <= lower) or np.any(self.start_points >= upper):
                raise ValueError(f"start_points must lie strictly inside the domain {self.domain}.")
        self.max_points = validation.positive_int("max_points", max_points, minimum=3)
        self.derivative_free = bool(derivative_free)
        self.batch_size = validation.positive_int("batch_size", batch_size)
        self.max_rounds = validation.positive_int("max_rounds", max_rounds)

    def settings(self) -> dict:
        return {
            "domain": list(self.domain),
            "start_points": None if self.start_points is None else self.start_points.tolist(),
            "max_points": self.max_points,
            "derivative_free": self.derivative_free,
            "batch_size": self.batch_size,
        }

    def iid_setup(self, target):
        logdensity_fn = target.logdensity
        leaves = jax.tree.leaves(target.init)
        if len(leaves) != 1 or np.shape(leaves[0]) != ():
            shapes = jax.tree.map(np.shape, target.init)
            raise ValueError(
                f"infer.ars samples one scalar, but target {target.name!r} has position shaped "
                f"{shapes}. Use it on a one-dimensional density (e.g. each full conditional of "
                "a Gibbs sweep, with infer.algorithms.ars.sample_many), or an MCMC sampler."
            )
        check_scalar_logdensity(logdensity_fn, jax.ShapeDtypeStruct((), jnp.result_type(float)))
        points = self.start_points
        if points is None:
            points = default_start_points(logdensity_fn, *self.domain)
        values = np.asarray(jax.vmap(logdensity_fn)(jnp.asarray(points, jnp.result_type(float))))
        if not np.all(np.isfinite(values)):
            raise ValueError(
                f"the log density is not finite at the starting hull points {points.tolist()}; "
                "give start_points= inside the density's support."
            )
        return logdensity_fn, np.asarray(points, jnp.result_type(float))

    def iid_program(self, setup, num_draws: int):
        logdensity_fn, points = setup

        def draw_fn(rng_key, points):
            draws, counters, _ = sample(
                rng_key,
                logdensity_fn,
                num_draws,
                self.domain,
                points,
                max_points=self.max_points,
                derivative_free=self.derivative_free,
                batch_size=self.batch_size,
                max_rounds=self.max_rounds,
            )
            return draws, counters

        return draw_fn, points, (points.shape[0],)

    @staticmethod
    def iid_progress_text(counters) -> str:
        rate = int(np.sum(counters.num_accepted)) / max(int(np.sum(counters.num_proposals)), 1)
        return f"acceptance {rate:.2f}"

    def iid_summary(self, setup, counters: list, num_draws: int):
        def total(name):
            return int(sum(np.asarray(getattr(c, name), np.int64).sum() for c in counters))

        if total("unbounded_hull") and not total("not_log_concave"):
            raise ValueError(
                "the adaptive rejection hull is unbounded: on an infinite side of the domain "
                "the outermost starting point's log density does not fall away. Give "
                "start_points= on both sides of the mode (or a finite domain)."
            )
        if total("not_log_concave"):
            where = [float(x) for c in counters for x in np.ravel(c.bad_x) if np.isfinite(x)]
            at = f" near x = {where[0]:.6g}" if where else ""
            raise ValueError(
                f"the density is not log-concave{at}: a point of log f lies above the tangent "
                "hull (or the slopes rise), so adaptive rejection sampling would not be exact. "
                "Use infer.rejection with a proposal that covers the target, or MCMC."
            )
        if any(np.any(np.asarray(c.num_accepted) < num_draws) for c in counters):
            raise RuntimeError(
                f"adaptive rejection sampling ran out of its {self.max_rounds} rounds before "
                f"filling {num_draws} draws; raise max_rounds or batch_size."
            )
        accepted, proposals = total("num_accepted"), total("num_proposals")
        evaluations = total("num_evaluations")
        info = {
            "acceptance_rate": accepted / max(proposals, 1),
            "num_proposals": proposals,
            "num_accepted": accepted,
            "density_evaluations_per_draw": evaluations / max(accepted, 1),
            "hull_points": int(max(np.max(np.asarray(c.num_points)) for c in counters)),
            "start_points": setup[1].tolist(),
        }
        return info, evaluations, 0 if self.derivative_free else evaluations

    def build(self, logdensity_fn: Callable, num_warmup: int = 0) -> Kernel:
        raise NotImplementedError(
            "infer.ars draws independent samples through infer.sample (or "
            "infer.algorithms.ars.sample for a bare function); it has no Markov step."
        )


def as_top_level_api(
    domain,
    *,
    start_points=None,
    max_points: int = 32,
    derivative_free: bool = False,
    batch_size: int = 4096,
    max_rounds: int = 100_000,
) -> ARS:
    """Adaptive rejection sampling for a log-concave density of one scalar.

    Args:
        domain: ``(lower, upper)`` of the support; either may be ``±inf``.
        start_points: initial hull points (at least two, strictly inside); by default three
            around the mode, found from the slope.
        max_points: hull slots (the hull grows on rejections until they are full).
        derivative_free: use secants (Gilks 1992) instead of tangents (no gradient needed).
        batch_size: proposals per vectorised round once the hull is full.
        max_rounds: budget of rounds before giving up with an error.

    Returns:
        An exact sampler for :func:`infer.sample` (``num_chains * num_samples`` independent
        draws). ``result.info`` reports the acceptance rate, the density evaluations per draw
        the squeeze could not spare, and the hull's size. A density found not log-concave
        raises an error.
    """
    return ARS(
        domain,
        start_points=start_points,
        max_points=max_points,
        derivative_free=derivative_free,
        batch_size=batch_size,
        max_rounds=max_rounds,
    )
