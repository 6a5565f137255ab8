"""A ``lax.cond`` that stays a branch under ``vmap``: one decision for the whole batch.

Under ``vmap`` a ``lax.cond`` whose predicate depends on the batched values becomes a
``select``, which runs both branches for every element. :func:`batchwise_cond` takes the
cheaper branch for the whole batch when every element allows it and the other one for the
whole batch otherwise; each element gets the same result as from its own ``lax.cond``
whenever the two branches agree where the predicate allows either (they are two ways to compute
one thing).
"""

from __future__ import annotations

from collections.abc import Callable

import jax
from jax import lax


def batchwise_cond(predicate: Callable, if_true: Callable, if_false: Callable) -> Callable:
    """``f(*operands) = lax.cond(predicate(*operands), if_true, if_false, *operands)``, except
    that under ``vmap`` ``if_true`` runs for the whole batch when ``predicate`` holds for any
    element, and ``if_false`` otherwise. ``predicate`` returns a scalar bool per element;
    ``if_true`` must be right for every element, ``if_false`` where ``predicate`` is False."""

    @jax.custom_batching.custom_vmap
    def chosen(*operands):
        return lax.cond(predicate(*operands), if_true, if_false, *operands)

    @chosen.def_vmap
    def chosen_batched(axis_size, in_batched, *operands):
        axes = tuple(0 if batched else None for batched in in_batched)
        any_true = jax.vmap(predicate, axes)(*operands).any()
        out = lax.cond(any_true, jax.vmap(if_true, axes), jax.vmap(if_false, axes), *operands)
        return out, jax.tree.map(lambda _: True, out)

    return chosen
