"""Evaluating a log density only where it is needed, when that pays.

A vectorised rejection step often needs ``log f`` at a few of its proposals only (adaptive
rejection sampling's squeeze decides the rest). :func:`lazy_logdensity` gathers those few into
a smaller batch; :func:`is_costly` says whether ``f`` costs enough for the gather to pay.
"""

from __future__ import annotations

import math

import jax
import jax.numpy as jnp

__all__ = ["COSTLY", "is_costly", "lazy_logdensity"]

COSTLY = 64  # array elements computed per log-density call above which lazy evaluation pays


def is_costly(logdensity_fn, dtype) -> bool:
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


def lazy_logdensity(logdensity_fn, x, needed, fallback):
    """``(log f(x) where needed, fallback elsewhere; evaluations computed)``, evaluating ``f``
    only there when few are needed: their positions are gathered into a batch an eighth of
    the size (all of which is computed). If more are needed than fit, every position is
    evaluated. Either way the values are exact."""
    capacity = max(x.shape[0] // 8, 1)
    count = jnp.sum(needed)

    def few(x):
        (where,) = jnp.nonzero(needed, size=capacity, fill_value=0)
        values = jax.vmap(logdensity_fn)(x[where])
        gathered = jnp.where(jnp.arange(capacity) < count, values, fallback[where])
        return fallback.at[where].set(gathered)

    def many(x):
        return jnp.where(needed, jax.vmap(logdensity_fn)(x), fallback)

    values = jax.lax.cond(count <= capacity, few, many, x)
    computed = jnp.where(count <= capacity, capacity, x.shape[0]).astype(jnp.int32)
    return values, computed
