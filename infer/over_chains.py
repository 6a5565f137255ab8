"""Functions of one chain applied to every chain (leading axis ``num_chains``).

:func:`over_chains` is ``vmap`` except at one chain, where the function runs unbatched on
that chain: ``vmap`` turns a kernel's data-dependent loops (NUTS's tree, a ``while_loop``
whose condition reads the state) into loops over a batched condition, which add a select to
every update of their state; on a CPU that cost 4-12% of a one-chain NUTS run (the
logistic regression). The values are the same; a one-chain step's floating-point operations
may be grouped differently by XLA, so its last bits may differ from that chain's in a batch.
"""

from __future__ import annotations

from collections.abc import Callable

import jax
import jax.numpy as jnp

#: Step ``t``'s keys: ``(chain_keys (num_chains,), t) -> (num_chains,)``.
fold_in = jax.vmap(jax.random.fold_in, in_axes=(0, None))


def over_chains(fn: Callable) -> Callable:
    """``fn`` of one chain's arguments applied to every chain's: ``vmap(fn)``, or ``fn``
    on the only chain (its axis removed, then restored on every output) when the first
    array's leading axis is 1, or ``fn`` itself when the arguments hold no arrays (a kernel
    without tunable parameters has ``None``)."""
    batched = jax.vmap(fn)

    def apply(*args):
        leaves = jax.tree.leaves(args)
        if not leaves:
            return fn(*args)
        if leaves[0].shape[0] != 1:
            return batched(*args)
        shapes = [jnp.shape(leaf) for leaf in leaves]
        if any(shape[:1] != (1,) for shape in shapes):  # vmap would refuse them too
            raise ValueError(f"every argument needs a leading chain axis of 1; got {shapes}.")
        one = jax.tree.map(lambda leaf: leaf[0], args)
        return jax.tree.map(lambda leaf: jnp.asarray(leaf)[None], fn(*one))

    return apply
