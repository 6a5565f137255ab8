"""The hull of adaptive rejection sampling: starting it, sampling from it, growing it.

For a concave ``h = log f`` with hull points ``x_1 < ... < x_k``, the upper envelope ``u`` is
the lower envelope of the tangents at the points (or, derivative-free, of the secants through
neighbouring points, extended): ``exp(u)`` is piecewise exponential, so its pieces' masses are
exact and a draw inverts one of them. The squeeze ``l`` is the chord through the points either
side of ``x``. :func:`insert` adds a point and flags the density as not log-concave when the
point lies above ``u`` or the slopes rise. Where it starts is
:mod:`infer.algorithms.ars_starts`; :mod:`infer.algorithms.ars` runs the sampling loop.

The hull has a fixed number of slots (``max_points``) so that everything compiles.
"""

from __future__ import annotations

from typing import NamedTuple

import jax
import jax.numpy as jnp

from infer import random_bits
from infer.envelopes import alias_pick, alias_table_traced

__all__ = [
    "TOLERANCE",
    "Hull",
    "Envelope",
    "envelope",
    "propose",
    "upper_hull",
    "above_envelope",
    "squeeze",
    "squeeze_over",
    "insert",
    "build_value_and_slope",
    "start_hull",
]

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
    """``log`` of the integral of ``exp(value + slope (x - anchor))`` over each piece, less
    the largest value: with values near -1e6, 1/16 apart in float32, ``value + slope (left -
    anchor)`` lost the pieces' shapes (an sd of 1.008 from 200,000 N(0, 1) draws)."""
    top = jnp.max(jnp.where(used & jnp.isfinite(value), value, -jnp.inf))
    value = value - jnp.where(jnp.isfinite(top), top, 0.0)  # exact near the top (Sterbenz)
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
    """Draws from the envelope: ``(x, u(x), piece)``, each of ``shape``. One uniform picks the
    piece (alias method), a second places the draw inside it."""
    pick, within = random_bits.uniform(rng_key, (2, *shape), env.left.dtype)
    piece = alias_pick(env.keep, env.alias, pick)
    x = _invert(within, env.left[piece], env.right[piece], env.slope[piece])
    u = env.value[piece] + env.slope[piece] * (x - env.anchor[piece])
    return x, u, piece


def above_envelope(env: Envelope, x, piece, relative, rounding: float = 1.0):
    """``v - u(x)`` at draws ``x`` of ``piece``, given ``relative = v - value[piece]``, less
    ``rounding`` units of ``eps |value[piece]|``. Each value is taken from one near it before
    the line's small terms are added (exact within a factor of 2, Sterbenz): at log densities
    near -1e6, 1/16 apart in float32, ``v - u(x)`` from ``u(x)`` itself was off by up to 1/16.
    The rounding keeps values within their own rounding of the envelope under it (their
    acceptance was capped at 1): together they biased the draws of ``-x**2/2 - 1e6``."""
    margin = rounding * jnp.finfo(env.value.dtype).eps * jnp.abs(env.value[piece])
    return relative - env.slope[piece] * (x - env.anchor[piece]) - margin


def upper_hull(env: Envelope, x):
    """The envelope's log height ``u(x)`` at points ``x`` (n,), for plots (O(pieces) each)."""
    column = x[:, None]
    left, right, anchor = env.left[None, :], env.right[None, :], env.anchor[None, :]
    inside = (left <= column) & (column <= right) & jnp.isfinite(env.log_mass)[None, :]
    line = env.value[None, :] + env.slope[None, :] * (column - anchor)
    return jnp.min(jnp.where(inside, line, jnp.inf), axis=1)


def squeeze(hull: Hull, x, piece, derivative_free: bool, reference=0.0):
    """The chord through the hull points either side of ``x`` (``-inf`` outside
    ``[x_1, x_k]``), found from the envelope piece ``x`` was drawn from: no search; less
    ``reference``, taken from the points' values first (see :func:`above_envelope`)."""
    count, n = hull.count, hull.x.shape[0]
    if derivative_free:
        segment = jnp.where(piece < 2 * n, piece // 2, -1)
    else:
        segment = piece - (x < hull.x[piece]).astype(piece.dtype)
    inside = (segment >= 0) & (segment + 1 < count)
    j = jnp.clip(segment, 0, n - 2)
    x0, x1, h0, h1 = hull.x[j], hull.x[j + 1], hull.h[j], hull.h[j + 1]
    chord = (h0 - reference) + (h1 - h0) * (x - x0) / jnp.where(x1 > x0, x1 - x0, 1.0)
    return jnp.where(inside, chord, -jnp.inf)


def squeeze_over(hull: Hull, env: Envelope, x, piece, derivative_free: bool):
    """``(l(x), l(x) - u(x))``: the squeeze's chord (for the concavity checks), and its log
    height under the envelope in differences of nearby values (:func:`above_envelope`), for
    the accept test; from one evaluation of the chord."""
    relative = squeeze(hull, x, piece, derivative_free, env.value[piece])
    over = above_envelope(env, x, piece, relative, rounding=2.0)  # the chord's own too
    return relative + env.value[piece], over


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


def build_value_and_slope(logdensity_fn, derivative_free):
    """``x -> (log f(x), d log f / dx)``; the slope is NaN in the derivative-free variant."""
    if derivative_free:
        return lambda x: (logdensity_fn(x), jnp.full_like(x, jnp.nan))
    return jax.value_and_grad(logdensity_fn)


def start_hull(logdensity_fn, points, max_points, derivative_free) -> Hull:
    """The hull of the starting ``points`` (m,), padded to ``max_points`` slots."""
    points = jnp.sort(jnp.asarray(points, jnp.result_type(float)))
    values, slopes = jax.vmap(build_value_and_slope(logdensity_fn, derivative_free))(points)
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
