"""A position pytree as one flat vector, and back.

NumPyro's HMC and NUTS (:mod:`infer.numpyro_adapter`) move a flat vector rather than the
target's pytree: their trajectory code maps every update over the position's leaves, and
``vmap`` over the chains turns each of NUTS's data-dependent branches into one select per
leaf. A NumPyro model of 32 scalar sites (``benchmarks/latency.py``'s ``many_sites``) took
36 s to trace and compile on its pytree and 22 s on one vector (a probe), and sampled no
slower (``docs/benchmarks.md``).

:class:`Layout` is static and hashable (the tree structure, each leaf's shape and dtype), so
a state that carries it as a pytree's auxiliary data has the same structure in every trace
of the same target.
"""

from __future__ import annotations

import math
from typing import NamedTuple

import jax
import jax.numpy as jnp
import numpy as np


class Layout(NamedTuple):
    """Where each leaf of a position sits in its flat vector, in ``jax.tree.leaves`` order
    (``jax.flatten_util.ravel_pytree``'s order, which NumPyro's mass matrix follows).

    Attributes:
        treedef: the position's tree structure.
        shapes: each leaf's shape (without leading axes).
        dtypes: each leaf's dtype, as a string.
    """

    treedef: object
    shapes: tuple
    dtypes: tuple

    @classmethod
    def of(cls, position) -> Layout:
        """The layout of one position (no leading axes): arrays or ``ShapeDtypeStruct``s."""
        leaves, treedef = jax.tree.flatten(position)
        shapes = tuple(tuple(np.shape(leaf)) for leaf in leaves)
        dtypes = tuple(str(jnp.result_type(leaf)) for leaf in leaves)
        return cls(treedef, shapes, dtypes)

    @property
    def dtype(self):
        """The flat vector's dtype: the leaves' common one (an empty position is refused
        before any kernel is built)."""
        return jnp.result_type(*self.dtypes)

    def ravel(self, position) -> jax.Array:
        """``position`` (one, no leading axes) as a vector ``(dim,)``."""
        leaves = [jnp.ravel(jnp.asarray(leaf, self.dtype)) for leaf in jax.tree.leaves(position)]
        return jnp.concatenate(leaves)

    def unravel(self, flat):
        """The position of a vector ``(*lead, dim)``: each leaf ``(*lead, *shape)``, in its
        own dtype. Works on NumPy arrays (without a device round trip) and traced ones."""
        lead, leaves, offset = tuple(flat.shape[:-1]), [], 0
        for shape, dtype in zip(self.shapes, self.dtypes, strict=True):
            size = math.prod(shape)
            leaf = flat[..., offset : offset + size].reshape(*lead, *shape)
            leaves.append(leaf if str(leaf.dtype) == dtype else leaf.astype(dtype))
            offset += size
        return jax.tree.unflatten(self.treedef, leaves)
