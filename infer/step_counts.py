"""The advance program's counts (evaluations, non-finite proposals) per chain, kept in two
int32 words, a count's low 30 bits and the rest: one int32 wraps to negative past 2**31,
which a chain reaches when an HMC's step size collapses (millions of leapfrog steps a draw)."""

from __future__ import annotations

import jax.numpy as jnp
import numpy as np

_LOW_BITS = 30


def add_count(count, n):
    """A count ``(2, num_chains)`` (its low 30 bits, the rest) plus one step's ``n``: exact up
    to 2**61, where one int32 wraps to negative past 2**31."""
    n = jnp.broadcast_to(jnp.asarray(n, jnp.int32), count.shape[1:])
    mask = (1 << _LOW_BITS) - 1
    low = count[0] + (n & mask)  # below 2**31: no wrap
    high = count[1] + (n >> _LOW_BITS) + (low >> _LOW_BITS)
    return jnp.stack([low & mask, high])


def total(count) -> np.ndarray:
    """A count of the advance program (see :class:`infer.markov.Chunk`) as int64, per chain."""
    count = np.asarray(count, np.int64)
    return count[0] + (count[1] << _LOW_BITS)
