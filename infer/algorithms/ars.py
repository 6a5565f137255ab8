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
the squeeze sparing most density evaluations. A value of ``log f`` found above the upper
hull or below the squeeze's chord (the squeeze's decisions included, wherever ``log f`` was
computed anyway), or slopes that increase, mean the density is not log-concave: sampling
stops and an error says so. A departure from concavity that no computed value falls in (a
dip narrower than the gaps between proposals) cannot be seen.

``vectorised over many densities``: :func:`sample_many` runs the whole procedure for a batch
of parameters of one log density (e.g. the full conditionals of a Gibbs sweep) at once.

The hull (envelope, squeeze, insertion) is :mod:`infer.algorithms.ars_hull`, its starting
points :mod:`infer.algorithms.ars_starts`.
The sampler that :func:`infer.sample` runs (``infer.ars``) is :mod:`infer.algorithms.ars_sampler`.
"""

from __future__ import annotations

import functools
from collections.abc import Callable
from typing import NamedTuple

import jax
import jax.numpy as jnp
import numpy as np

from infer import random_bits, validation
from infer.algorithms.ars_hull import (
    TOLERANCE,
    Envelope,
    Hull,
    above_envelope,
    build_value_and_slope,
    envelope,
    insert,
    propose,
    squeeze_over,
    start_hull,
    upper_hull,
)
from infer.algorithms.ars_starts import check_domain, check_start_points
from infer.algorithms.lazy_evaluation import COSTLY, is_costly, lazy_logdensity

__all__ = [
    "Hull",
    "Envelope",
    "ARSCounters",
    "COSTLY",
    "envelope",
    "upper_hull",
    "sample",
    "sample_many",
    "check_domain",
]


class ARSCounters(NamedTuple):
    """What a run cost (scalars).

    Attributes:
        num_accepted: accepted proposals.
        num_proposals: proposals made.
        num_evaluations: density evaluations computed (phase 1 evaluates every proposal; in
            phase 2 a batch evaluates all its proposals, or, lazily, a gathered eighth).
        num_needed: evaluations the squeeze could not spare (what a lazy evaluation of each
            proposal alone would compute).
        num_gradients: gradient evaluations (phase 1, unless derivative-free).
        num_nonfinite: needed evaluations that were NaN or ``+inf`` (rejected).
        num_points: hull points at the end.
        not_log_concave: 1 if a value above the hull or below the squeeze's chord, or
            rising slopes, were seen.
        bad_x: where (NaN if nowhere).
        unbounded_hull: 1 if the hull had infinite mass (start points on one side only).
    """

    num_accepted: jax.Array
    num_proposals: jax.Array
    num_evaluations: jax.Array
    num_needed: jax.Array
    num_gradients: jax.Array
    num_nonfinite: jax.Array
    num_points: jax.Array
    not_log_concave: jax.Array
    bad_x: jax.Array
    unbounded_hull: jax.Array


#: Proposals in a row decided by the squeeze alone after which the hull stops growing.
SETTLED = 64
#: The keywords of :func:`sample` that :func:`sample_many` passes on.
OPTIONS = ("max_points", "derivative_free", "batch_size", "max_rounds", "lazy")


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
        domain: ``(lower, upper)``, any two numbers with ``lower < upper`` (a tuple, a list,
            an array); either may be infinite (or ``None``).
        start_points: (m,) at least two distinct starting hull points inside the domain, at
            most ``max_points``; for an infinite end, the outermost point there must have
            ``log f`` sloping towards the inside (e.g. one point left of the mode and one
            right of it).
        max_points: hull slots (at least 3); the hull stops growing when they are full.
        derivative_free: secants instead of tangents (no gradients needed).
        batch_size: proposals per vectorised round once the hull is full.
        max_rounds: budget of rounds.
        lazy: in the vectorised phase, evaluate ``log f`` only where the squeeze could not
            decide (gathered into a smaller batch) instead of everywhere and masking. Pays
            for densities that cost more than the gather; ``None`` decides from the size of
            ``logdensity_fn``'s computation.

    Returns:
        ``(draws (num_draws,), ARSCounters, hull)``. Draws that are not exact are NaN: all of
        them when the counters flag ``not_log_concave`` or ``unbounded_hull``, and those past
        ``num_accepted`` when ``max_rounds`` ran out.

    Raises:
        TypeError, ValueError: on the host, before anything is traced, for a bad ``domain``,
            ``start_points`` outside it (checked where they are concrete; traced ones only
            for their shape) or a bad setting.

    Compiled as one program per ``logdensity_fn`` and settings (a second call with the same
    function and settings reuses it, as ``jax.jit`` would, even after a global it reads
    changed); inside a traced function it is traced as part of it.
    """
    lower, upper = check_domain(domain)
    settings = _settings(num_draws, max_points, derivative_free, batch_size, max_rounds, lazy)
    start_points = check_start_points(start_points, (lower, upper), settings[1])
    if settings[-1] is None:
        lazy = is_costly(logdensity_fn, jnp.result_type(float))
        settings = (*settings[:-1], bool(lazy))
    if isinstance(rng_key, jax.core.Tracer):  # inside a program being traced: traced inline
        # (a jitted call would reuse its trace for this function, made with the values the
        # function read then: infer.sample's programs are keyed on them, this one is not)
        return _sample_program(rng_key, start_points, logdensity_fn, lower, upper, settings)
    return _sample_compiled(rng_key, start_points, logdensity_fn, lower, upper, settings)


def _settings(
    num_draws,
    max_points=32,
    derivative_free=False,
    batch_size=4096,
    max_rounds=10_000,
    lazy=None,
) -> tuple:
    """The static settings of :func:`sample`, checked on the host: ``(num_draws,
    max_points, derivative_free, batch_size, max_rounds, lazy)`` (``lazy`` may be None)."""
    if lazy is not None:
        lazy = validation.flag("lazy", lazy, "or None (decide from the density's cost)")
    return (
        validation.positive_int("num_draws", num_draws),
        validation.positive_int("max_points", max_points, minimum=3),
        validation.flag("derivative_free", derivative_free),
        validation.positive_int("batch_size", batch_size),
        validation.positive_int("max_rounds", max_rounds),
        lazy,
    )


def _sample_program(rng_key, start_points, logdensity_fn, lower, upper, settings):
    """:func:`sample` once its static settings are fixed on the host (traced as part of
    the program that calls it: :data:`_sample_compiled` or :func:`_sample_many_compiled`)."""
    num_draws, max_points, derivative_free, batch_size, max_rounds, lazy = settings
    value_and_slope = build_value_and_slope(logdensity_fn, derivative_free)
    hull = start_hull(logdensity_fn, start_points, max_points, derivative_free)
    bounds = (lower, upper, derivative_free)
    # Phase 1: one proposal at a time, every evaluated point joins the hull (Gilks & Wild).
    hull, env, buffer, count, proposals, evaluations, rounds, bad_x, nonfinite = _grow(
        rng_key, value_and_slope, hull, bounds, num_draws, max_points, max_rounds
    )
    # Phase 2: the hull is full (or we are done): vectorised rounds from the fixed envelope.
    carry = (buffer, count, proposals, evaluations, rounds, bad_x, nonfinite)
    return _fill(rng_key, logdensity_fn, hull, env, bounds, carry, batch_size, max_rounds, lazy)


# :func:`sample` as one jitted program per log density and settings.
_sample_compiled = jax.jit(_sample_program, static_argnums=(2, 3, 4, 5))


def _grow(rng_key, value_and_slope, hull: Hull, bounds, num_draws, max_points, max_rounds):
    """Phase 1 of :func:`sample`: single proposals, each evaluated point added to the hull,
    until the hull is full, the draws are done, the budget is spent or the density is seen not
    to be log-concave, or ``SETTLED`` proposals in a row were decided by the squeeze alone
    (a density whose log is piecewise linear, such as the exponential's, never adds a point:
    its hull is exact already). Returns ``(hull, envelope, buffer, count, proposals, needed,
    rounds, bad_x, nonfinite)``, the envelope that of the final hull (``bad_x`` where the
    density was first seen not to be log-concave, else NaN); every proposal's value (and
    slope) is computed, so computed evaluations equal proposals. A value that is NaN or
    ``+inf`` rejects its proposal, stays out of the hull, and is counted (``nonfinite``).

    Each round builds the envelope of its hull once, and a last round that finds the phase
    over changes nothing but hands its envelope on: the envelope appears once in the program
    (each copy costs compilation time)."""
    lower, upper, derivative_free = bounds
    dtype = hull.x.dtype
    buffer = jnp.zeros((num_draws,), dtype)
    zero = jnp.zeros((), jnp.int32)

    def grow(carry):
        hull, _, buffer, count, proposals, evaluations, rounds, squeezed, bad_x, nonfinite, _ = (
            carry
        )
        env = envelope(hull, lower, upper, derivative_free)
        ok = ~hull.bad & ~env.unbounded
        active = (hull.count < max_points) & (count < num_draws) & ok & (rounds < max_rounds)
        active = active & (squeezed < SETTLED)
        key = jax.random.fold_in(rng_key, rounds)
        key_propose, key_accept = jax.random.split(key)
        x, u, piece = propose(key_propose, env, ())
        log_w = jnp.log(random_bits.uniform(key_accept, (), dtype))
        lower_bound, over = squeeze_over(hull, env, x, piece, derivative_free)
        by_squeeze = log_w < over
        h, slope = value_and_slope(x)
        trouble = jnp.isnan(h) | (h == jnp.inf)  # numerical trouble rejects, as in phase 2
        excess = above_envelope(env, x, piece, jnp.where(trouble, -jnp.inf, h) - env.value[piece])
        accepted = active & (by_squeeze | (log_w < excess))
        evaluated = active & ~by_squeeze
        new = jax.lax.cond(
            evaluated & ~trouble,
            lambda hl: insert(hl, x, h, slope, u, derivative_free),
            lambda hl: hl,
            hull,
        )
        # For a concave h, chord <= h <= tangent: a squeeze above the hull is proof enough,
        # and so is a value below the chord, squeezed or not (every proposal is evaluated).
        above = active & (lower_bound > u + TOLERANCE * (1.0 + jnp.abs(u)))
        below = (~trouble & _below(h, lower_bound)) | _broken_inside(h, lower_bound)
        new = new._replace(bad=new.bad | above | (active & below))
        bad_x = jnp.where(new.bad & ~hull.bad, x, bad_x)  # where it was first seen
        buffer = buffer.at[jnp.where(accepted, count, num_draws)].set(x, mode="drop")
        step = active.astype(jnp.int32)
        return (
            new,
            env,
            buffer,
            count + accepted,
            proposals + step,
            evaluations + evaluated,
            rounds + step,
            jnp.where(evaluated, 0, squeezed + step),
            bad_x,
            nonfinite + (evaluated & trouble),
            active,
        )

    env = jax.tree.map(
        lambda s: jnp.zeros(s.shape, s.dtype),
        jax.eval_shape(lambda hl: envelope(hl, lower, upper, derivative_free), hull),
    )
    nan = jnp.asarray(jnp.nan, dtype)
    carry = (hull, env, buffer, zero, zero, zero, zero, zero, nan, zero, jnp.asarray(True))
    hull, env, buffer, count, proposals, evaluations, rounds, _, bad_x, nonfinite, _ = (
        jax.lax.while_loop(lambda carry: carry[-1], grow, carry)
    )
    return hull, env, buffer, count, proposals, evaluations, rounds, bad_x, nonfinite


def _below(h, chord):
    """Where values ``h`` of ``log f`` lie below the squeeze's ``chord`` (beyond round-off):
    impossible for a concave ``log f``. ``-inf`` (no density) inside the hull counts."""
    return h < chord - TOLERANCE * (1.0 + jnp.abs(chord))


def _broken_inside(h, chord):
    """Where ``log f`` is NaN or ``+inf`` between hull points (where the squeeze's ``chord``
    is finite, and accepts draws unevaluated): not a concave ``log f``. Beyond the outermost
    points every proposal is evaluated, so there such values only cut the density off."""
    return (jnp.isnan(h) | (h == jnp.inf)) & (chord > -jnp.inf)


def _fill(rng_key, logdensity_fn, hull: Hull, env, bounds, carry, batch_size, max_rounds, lazy):
    """Phase 2 of :func:`sample`: batches of ``batch_size`` proposals from ``env``, the fixed
    envelope of ``hull``, the squeeze sparing most evaluations, until the buffer is full.
    ``carry`` is phase 1's ``(buffer, count, proposals, needed, rounds, bad_x, nonfinite)``.
    Returns ``(draws, counters, hull)``."""
    _, _, derivative_free = bounds
    buffer, count, phase1_proposals, needed, rounds, bad_x, phase1_nonfinite = carry
    num_draws = buffer.shape[0]
    dtype = hull.x.dtype
    unbounded = env.unbounded

    def filling(carry):
        buffer, count, proposals, evaluations, needed, nonfinite, rounds, bad, bad_x = carry
        return (count < num_draws) & ~bad & (rounds < max_rounds)

    def fill(carry):
        buffer, count, proposals, evaluations, needed, nonfinite, rounds, bad, bad_x = carry
        key = jax.random.fold_in(rng_key, rounds)
        key_propose, key_accept = jax.random.split(key)
        x, u, piece = propose(key_propose, env, (batch_size,))
        log_w = jnp.log(random_bits.uniform(key_accept, (batch_size,), dtype))
        lower_bound, over = squeeze_over(hull, env, x, piece, derivative_free)
        by_squeeze = log_w < over
        if lazy:  # values: log f where computed, u elsewhere
            values, computed = lazy_logdensity(logdensity_fn, x, ~by_squeeze, u)
        else:
            values, computed = jax.vmap(logdensity_fn)(x), batch_size
        h = jnp.where(by_squeeze, u, values)
        trouble = jnp.isnan(h) | (h == jnp.inf)  # numerical trouble rejects
        excess = above_envelope(env, x, piece, jnp.where(trouble, -jnp.inf, h) - env.value[piece])
        accepted = by_squeeze | (log_w < excess)
        slack = TOLERANCE * (1.0 + jnp.abs(u))
        # Every computed value, the squeeze's decisions included, must lie between the chord
        # and the envelope; one outside shows that log f is not concave.
        sane = ~(jnp.isnan(values) | (values == jnp.inf))
        outside = ((values > u + slack) & sane) | (lower_bound > u + slack)
        outside = (
            outside | (sane & _below(values, lower_bound)) | _broken_inside(values, lower_bound)
        )
        slot = jnp.where(accepted, jnp.cumsum(accepted) - 1 + count, num_draws)
        buffer = buffer.at[slot].set(x, mode="drop")
        first_bad = jnp.where(jnp.any(outside), x[jnp.argmax(outside)], bad_x)
        return (
            buffer,
            count + jnp.sum(accepted, dtype=jnp.int32),
            proposals + batch_size,
            evaluations + computed,
            needed + jnp.sum(~by_squeeze, dtype=jnp.int32),
            nonfinite + jnp.sum(~by_squeeze & trouble, dtype=jnp.int32),
            rounds + 1,
            bad | jnp.any(outside),
            first_bad,
        )

    zero = jnp.zeros((), jnp.int32)
    start = (buffer, count, phase1_proposals, phase1_proposals, needed, phase1_nonfinite, rounds)
    carry = (*start, hull.bad | unbounded, bad_x)
    buffer, count, proposals, evaluations, needed, nonfinite, rounds, bad, bad_x = (
        jax.lax.while_loop(filling, fill, carry)
    )
    counters = ARSCounters(
        count,
        proposals,
        evaluations,
        needed,
        phase1_proposals if not derivative_free else zero,
        nonfinite,
        hull.count,
        hull.bad.astype(jnp.int32) | (bad & ~unbounded).astype(jnp.int32),
        bad_x,
        unbounded.astype(jnp.int32),
    )
    # a draw that is not exact is NaN: slots never filled (the round budget ran out) and
    # every draw of a run whose hull failed, so that an unchecked failure cannot pass for draws
    failed = (counters.not_log_concave | counters.unbounded_hull) != 0
    filled = jnp.arange(buffer.shape[0]) < count
    buffer = jnp.where(filled & ~failed, buffer, jnp.nan)
    return buffer, counters, hull


def sample_many(
    rng_key, logdensity_fn: Callable, params, num_draws: int, domain, start_points, **options
):
    """:func:`sample` for a batch of densities ``logdensity_fn(x, theta)``, one ``theta`` per
    row of ``params`` (a pytree with a leading axis), all at once (``vmap``).

    Returns ``(draws (num_densities, num_draws), ARSCounters with a leading axis)``; the rows
    of densities that failed are NaN, as in :func:`sample` (check their counters).
    ``start_points`` is (m,) shared, or (num_densities, m). ``options`` are :func:`sample`'s
    keywords. Under ``vmap`` a branch runs both ways, so lazy evaluation (see :func:`sample`)
    is off unless asked for. The arguments are checked on the host as :func:`sample`'s are,
    and a second call with the same ``logdensity_fn``, shapes and settings reuses the
    compiled program.
    """
    lower, upper = check_domain(domain)
    if unknown := set(options) - set(OPTIONS):
        raise TypeError(
            f"sample_many got unknown options {sorted(unknown)}; it takes sample's keywords "
            f"({', '.join(OPTIONS)})."
        )
    settings = _settings(num_draws, **{"lazy": False, **options})
    leaves = jax.tree.leaves(params)
    sizes = {np.shape(leaf)[0] if np.ndim(leaf) else None for leaf in leaves}
    if not leaves or len(sizes) != 1 or None in sizes:
        shapes = jax.tree.map(np.shape, params)
        raise ValueError(
            "params must be a pytree of arrays with one leading axis, one row per density; "
            f"got shapes {shapes}."
        )
    num = sizes.pop()
    start_points = check_start_points(start_points, (lower, upper), settings[1], rows=num)
    if settings[-1] is None:
        first = jax.tree.map(lambda leaf: leaf[0], params)
        settings = (
            *settings[:-1],
            is_costly(lambda x: logdensity_fn(x, first), start_points.dtype),
        )
    start_points = jnp.broadcast_to(start_points, (num, start_points.shape[-1]))
    return _sample_many_compiled(
        rng_key, params, start_points, logdensity_fn, lower, upper, settings
    )


@functools.partial(jax.jit, static_argnums=(3, 4, 5, 6))
def _sample_many_compiled(rng_key, params, start_points, logdensity_fn, lower, upper, settings):
    """:func:`sample_many` as one program per ``logdensity_fn`` and settings (its densities'
    closures are made inside the trace, so they do not key a cache of their own)."""
    keys = jax.random.split(rng_key, start_points.shape[0])

    def one(key, theta, points):
        density = lambda x: logdensity_fn(x, theta)  # made inside the trace: no cache key
        draws, counters, _ = _sample_program(key, points, density, lower, upper, settings)
        return draws, counters

    return jax.vmap(one)(keys, params, start_points)
