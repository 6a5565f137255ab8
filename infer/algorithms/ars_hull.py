"""The hull of adaptive rejection sampling: starting it, sampling from it, growing it.

For a concave ``h = log f`` with hull points ``x_1 < ... < x_k``, the upper envelope ``u`` is
the lower envelope of the tangents at the points (or, derivative-free, of the secants through
neighbouring points, extended): ``exp(u)`` is piecewise exponential, so its pieces' masses are
exact and a draw inverts one of them. The squeeze ``l`` is the chord through the points either
side of ``x``. :func:`insert` adds a point and flags the density as not log-concave when the
point lies above ``u`` or the slopes rise. :func:`default_start_points` finds starting points
either side of the mode (from values alone for secant hulls), and :func:`check_start_points`
checks given ones on the host. :mod:`infer.algorithms.ars` runs the sampling loop.

The hull has a fixed number of slots (``max_points``) so that everything compiles.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from typing import NamedTuple

import jax
import jax.numpy as jnp
import numpy as np

from infer import random_bits
from infer.envelopes import alias_pick, alias_table_traced
from infer.outside_values import function_key
from infer.placement import PROGRAMS

__all__ = [
    "TOLERANCE",
    "Hull",
    "Envelope",
    "envelope",
    "propose",
    "upper_hull",
    "squeeze",
    "insert",
    "build_value_and_slope",
    "start_hull",
    "default_start_points",
    "check_start_points",
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
    """Draws from the envelope: ``(x, u(x), piece)``, each of ``shape``. One uniform picks the
    piece (alias method), a second places the draw inside it."""
    pick, within = random_bits.uniform(rng_key, (2, *shape), env.left.dtype)
    piece = alias_pick(env.keep, env.alias, pick)
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


def check_start_points(start_points, domain, max_points: int, rows: int | None = None):
    """``start_points`` as a float array, checked against ``domain`` (checked) and
    ``max_points``: (m,) with ``2 <= m <= max_points`` (or, with ``rows``, (rows, m) too), at
    least two distinct finite points per row, all strictly inside the domain. Traced points
    are checked for their shape only. Raises a ``ValueError`` naming ``start_points``."""
    points = start_points
    if not isinstance(points, jax.core.Tracer):
        points = np.asarray(points, np.float64 if jax.config.jax_enable_x64 else np.float32)
    shape, allowed = np.shape(points), "(m,)" if rows is None else f"(m,) or ({rows}, m)"
    if not (len(shape) == 1 or (rows is not None and len(shape) == 2 and shape[0] == rows)):
        raise ValueError(f"start_points must have shape {allowed}; got shape {shape}.")
    if shape[-1] > max_points:
        raise ValueError(
            f"start_points has {shape[-1]} points but max_points={max_points}: the hull holds "
            f"at most max_points points. Pass at most {max_points} start_points, or raise "
            f"max_points to {shape[-1]} or more."
        )
    if isinstance(points, jax.core.Tracer):
        return points
    lower, upper = domain
    for row in np.atleast_2d(points):
        if not np.all(np.isfinite(row)) or np.unique(row).size < 2:
            raise ValueError(
                f"start_points must be at least two distinct finite points, shape {allowed}; "
                f"got {row.tolist()}."
            )
        if np.any(row <= lower) or np.any(row >= upper):
            outside = row[(row <= lower) | (row >= upper)][0]
            raise ValueError(
                f"start_points must lie strictly inside the domain ({lower}, {upper}); got "
                f"{float(outside):.6g} in {row.tolist()}. Move them inside the domain (or "
                "widen it, if the density is positive there)."
            )
    return jnp.asarray(points)


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


def default_start_points(
    logdensity_fn: Callable, lower: float, upper: float, derivative_free: bool = False
) -> np.ndarray:
    """Starting hull points: either side of the mode, at least one log unit below the highest
    point seen (a bracket grown in doubling steps from 0, or from next to a finite bound), so
    that infinite tails slope inwards. With ``derivative_free`` the search uses values only (see
    :func:`_secant_start_points`). Raises if no such points exist (an improper density)."""
    finite_lo, finite_hi = math.isfinite(lower), math.isfinite(upper)
    if finite_lo and finite_hi:
        width = upper - lower
        return np.array([lower + 0.05 * width, lower + 0.5 * width, upper - 0.05 * width])
    value, value_and_slope = _search_programs(logdensity_fn)
    start = lower + 1.0 if finite_lo else (upper - 1.0 if finite_hi else 0.0)
    if derivative_free:
        return _secant_start_points(value, lower, upper, start)
    near_lo, near_hi = lower + 1e-9 * (1 + abs(lower)), upper - 1e-9 * (1 + abs(upper))
    left, right, step, peak = start, start, 1.0, -math.inf
    inward = {}  # side -> the outermost point seen sloping towards the mode
    for _ in range(60):  # grow a bracket [left, right] that falls away from the mode
        both = value_and_slope(np.array([left, right], jnp.result_type(float)))
        values, slopes = np.asarray(both[0]).tolist(), np.asarray(both[1]).tolist()
        peak = max([peak, *(v for v in values if math.isfinite(v))])
        ends = []
        for side, x, v, g, sign, at_bound in (
            ("left", left, values[0], slopes[0], 1.0, finite_lo and left <= near_lo),
            ("right", right, values[1], slopes[1], -1.0, finite_hi and right >= near_hi),
        ):
            rise = sign * g if math.isfinite(v) else 0.0
            if rise > 0:
                inward[side] = x
            # an end at the domain's bound, or sloping towards the mode enough to fall a log
            # unit over the search's step or below the highest point seen (a start a hair
            # from the mode, at a slope of 1e-9, gave a flat tangent whose proposals went to
            # 1e7 and beyond), or, where the density stops being finite further out, the
            # last point that sloped inwards
            if at_bound or (rise > 0 and (rise * step >= 1.0 or peak - v >= 1.0)):
                ends.append(x)
            elif not math.isfinite(v) and side in inward:
                ends.append(inward[side])
            else:
                ends.append(None)
        if None not in ends and ends[0] < ends[1]:
            return np.array([ends[0], 0.5 * (ends[0] + ends[1]), ends[1]])
        if ends[0] is None:
            left = max(left - step, lower + 1e-12 * (1 + abs(lower))) if finite_lo else left - step
        if ends[1] is None:
            right = (
                min(right + step, upper - 1e-12 * (1 + abs(upper))) if finite_hi else right + step
            )
        step *= 2.0
    outside = [x for x in (left, right) if not math.isfinite(value(jnp.asarray(x)))]
    _no_start_points(outside[0] if outside else None)


def _search_programs(logdensity_fn: Callable) -> tuple[Callable, Callable]:
    """``(value(x), value_and_slope(xs))``, the start-point search's programs, compiled once
    per log density and the values it reads from outside (held in the program cache): built
    anew in each call, they compiled in each call (30 ms of a 2,000,000-draw run's 160)."""

    def build():
        value_and_slope = jax.vmap(jax.value_and_grad(logdensity_fn))
        return jax.jit(logdensity_fn), jax.jit(value_and_slope)

    dtype = str(jnp.result_type(float))
    programs, _ = PROGRAMS.get(("ars-start-search", function_key(logdensity_fn), dtype), build)
    return programs


def _no_start_points(outside: float | None):
    """The error of a search for starting points that failed: it went ``outside`` the
    support (where the log density is not finite), or found no fall on an infinite side."""
    if outside is not None:
        raise ValueError(
            "could not find starting points for adaptive rejection sampling: the log density "
            f"is not finite at x = {outside:.6g}, outside its support, where the search for "
            f"the mode went. Pass domain= the support (e.g. domain=(0.0, inf) for a density on "
            "x > 0), or start_points= inside it on both sides of the mode."
        )
    raise ValueError(
        "could not find starting points for adaptive rejection sampling: the log density does "
        "not fall away on an infinite side of the domain (is it normalisable and "
        "log-concave?). Pass start_points= with points on both sides of the mode."
    )


def _secant_start_points(value, lower: float, upper: float, start: float) -> np.ndarray:
    """Starting points from values alone (no gradient), for a domain with an infinite end:
    from ``start``, each infinite side is walked outwards in doubling steps, moving uphill
    while the density rises, until a point at least one log unit below the highest point
    seen. The points are the highest point, the far point of each infinite side (so the
    secant through the two outermost points there falls away outwards, as secant hulls
    need) and, on a finite side, the middle between its end and the highest point."""

    def h(x):
        return float(value(jnp.asarray(x, jnp.result_type(float))))

    peak, h_peak, far = start, h(start), {}
    if not math.isfinite(h_peak):
        _no_start_points(start)
    for direction, end in ((-1.0, lower), (1.0, upper)):
        if math.isfinite(end):
            continue
        step, outer = 1.0, peak + direction
        for _ in range(60):
            h_outer = h(outer)
            if not math.isfinite(h_outer):
                _no_start_points(outer)
            if h_outer < h_peak - 1.0:
                break
            if h_outer >= h_peak:  # uphill: the mode is further out
                peak, h_peak = outer, h_outer
            step *= 2.0
            outer += direction * step
        else:
            _no_start_points(None)
        far[direction] = outer
    points = [peak, *far.values()]
    for end in (lower, upper):
        middle = 0.5 * (end + peak)
        if math.isfinite(end) and middle != peak and math.isfinite(h(middle)):
            points.append(middle)
    return np.array(sorted(points))
