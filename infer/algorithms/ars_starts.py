"""Where the hull of adaptive rejection sampling starts: :func:`default_start_points` finds
points either side of the mode (from values alone for secant hulls); on the host,
:func:`check_start_points` checks given ones and :func:`check_domain` the domain. The hull
itself is :mod:`infer.algorithms.ars_hull`.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence

import jax
import jax.numpy as jnp
import numpy as np

from infer import validation
from infer.outside_values import function_key
from infer.placement import PROGRAMS

__all__ = ["default_start_points", "check_start_points", "check_domain"]


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


def check_domain(domain, name: str = "domain") -> tuple[float, float]:
    """``(lower, upper)`` as floats from any two numbers (a tuple, a list, a numpy or JAX
    array of shape (2,)); ``None`` or ``±inf`` for no bound. Raises naming ``name``."""
    is_sequence = isinstance(domain, Sequence) and not isinstance(domain, str | bytes)
    if not (is_sequence or hasattr(domain, "__array__")) or np.shape(domain) != (2,):
        raise TypeError(f"{name} must be a pair (lower, upper), e.g. (0.0, inf); got {domain!r}.")
    ends = list(domain)
    if not all(end is None or validation.is_real_scalar(end) for end in ends):
        raise TypeError(
            f"{name}'s ends must be numbers (or None, or -inf/inf, for no bound); got {domain!r}."
        )
    lower = -math.inf if ends[0] is None else float(ends[0])
    upper = math.inf if ends[1] is None else float(ends[1])
    if math.isnan(lower) or math.isnan(upper) or not lower < upper:
        raise ValueError(f"{name} must have lower < upper; got ({lower}, {upper}).")
    return lower, upper
