"""Random words and uniforms at half the hashes of ``jax.random``, for the samplers' hot loops.

JAX's threefry (partitionable, its default since JAX 0.5) hashes one counter per 32-bit word
and keeps the xor of the hash's two output words. For a threefry key the functions here use
both output words of each hash, over the counters ``0 .. count - 1`` (JAX's counter scheme
before 0.5): ``count`` words from ``count / 2`` hashes. The hash is much of the cost of a
cheap proposal (the rejection sampler's and ARS's, see ``docs/benchmarks.md``) and ~4% of a
random-walk step (logistic regression, 1,024 chains). Other keys (``impl="rbg"``), 64-bit
words and float64 uniforms go through ``jax.random`` itself, whose cost per word is the same
there.

Example:
    >>> import jax
    >>> from infer import random_bits
    >>> u = random_bits.uniform(jax.random.key(0), (2, 5), "float32")  # U[0, 1), (2, 5)
"""

from __future__ import annotations

import jax
import jax.extend
import jax.numpy as jnp
import numpy as np

from infer.keys import THREEFRY

__all__ = ["bernoulli_log", "uniform", "unit_interval", "words"]


def _threefry(rng_key: jax.Array) -> bool:
    typed = jnp.issubdtype(rng_key.dtype, jax.dtypes.prng_key)
    return typed and str(jax.random.key_impl(rng_key)) == THREEFRY


def unit_interval(bits: jax.Array, dtype) -> jax.Array:
    """U[0, 1) from random words of ``dtype``'s width (uint32 for float32, uint64 for
    float64), as ``jax.random.uniform`` makes it: the top mantissa bits under an exponent of
    1, minus 1 (multiples of 2**-23 in float32)."""
    dtype = jnp.dtype(dtype)
    width = 8 * dtype.itemsize
    one = np.array(1.0, dtype).view(np.uint32 if width == 32 else np.uint64)
    mantissa = (bits >> (width - jnp.finfo(dtype).nmant)) | one
    return jax.lax.bitcast_convert_type(mantissa, dtype) - 1.0


def words(rng_key: jax.Array, count: int, width: int = 32) -> jax.Array:
    """``count`` random unsigned words of ``width`` (32 or 64) bits, ``(count,)``, from one
    typed key (a key of JAX's default threefry: both output words of ``count / 2`` hashes)."""
    if width == 32 and _threefry(rng_key):
        counters = jax.lax.iota(jnp.uint32, count)
        return jax.extend.random.threefry_2x32(jax.random.key_data(rng_key), counters)
    return jax.random.bits(rng_key, (count,), jnp.uint32 if width == 32 else jnp.uint64)


def uniform(rng_key: jax.Array, shape: tuple[int, ...], dtype) -> jax.Array:
    """U[0, 1) of ``shape`` and ``dtype``: :func:`unit_interval` of :func:`words`."""
    dtype = jnp.dtype(dtype)
    count = int(np.prod(shape))
    if dtype != jnp.float32 or not _threefry(rng_key):
        return jax.random.uniform(rng_key, shape, dtype)
    return unit_interval(words(rng_key, count).reshape(shape), dtype)


def bernoulli_log(rng_key: jax.Array, log_p: jax.Array) -> jax.Array:
    """``u < exp(log_p)`` for a uniform ``u`` each, ``log_p``'s shape: the rejection
    sampler's accept test. In float32 ``u`` takes all 32 bits of its random word
    (``jax.random.uniform`` keeps 23, and its ``u`` is 0 with probability 2**-23, which
    accepted any proposal at least that often): True with probability ``exp(log_p)`` up to
    2**-32, at the cost of a float32 uniform, and with the same decision as one except in a
    straddled bin of width 2**-23 (the extra bits refine it)."""
    q = jnp.exp(log_p)
    if log_p.dtype != jnp.float32:
        return uniform(rng_key, log_p.shape, log_p.dtype) < q
    bits = words(rng_key, log_p.size).reshape(log_p.shape)
    high = (bits >> 9).astype(jnp.float32) * 2.0**-23  # jax.random.uniform's u
    low = (bits & 511).astype(jnp.float32) * 2.0**-32
    # high + low < q; q - high is exact where it matters (q < 2**-22 or high >= q / 2)
    return (high < q) & (low < q - high)
