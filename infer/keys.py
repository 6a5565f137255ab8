"""Seeds and keys: what a run's randomness comes from.

Step ``t`` of chain ``c`` uses the key ``fold_in(chain_keys[c], t)``, with ``t`` counting
warm-up and kept steps alike from 0, so a chain's randomness depends only on the seed and the
chain's index, and its draws, for a given number of chains, never on chunking, progress bars
or checkpoints (another number of chains, or of chains per device, may round differently: see
docs/running-samplers.md).
"""

from __future__ import annotations

import numbers

import jax
import jax.numpy as jnp
import numpy as np

from infer import validation
from infer.placement import PROGRAMS, abstract, sharding_key

THREEFRY = "threefry2x32"  # jax.random.PRNGKey's implementation, and JAX's default


def as_key(rng_key):
    """``(key_input, seed_record)``: what a run's compiled programs take as their key, and what
    to record as the seed (an int, or a key's data as a list).

    ``key_input`` is the key's data, a uint32 numpy array the programs wrap into a key, for an
    int seed and for any key of JAX's default PRNG implementation alike: the seed ``s`` and
    ``jax.random.key(s)`` then reach the same compiled programs (a typed key made its own
    before, compiled anew: 1.4 s for RWMH's start). A typed key of another implementation is
    kept as it is (its own programs).

    Raises:
        TypeError, ValueError: for anything but an int seed in ``[0, 2**32)``, a
            ``jax.random.key(...)`` or legacy uint32 key data of shape ``(2,)``.
    """
    if isinstance(rng_key, jax.core.Tracer):
        raise TypeError(
            "infer.sample runs on the host (it checks its arguments, compiles and loops over "
            "chunks), so it cannot run inside jax.jit, jax.vmap or another transformation: "
            "for many chains give num_chains (they are vectorised already); for a step to "
            "use in a loop of your own, sampler.bind(logdensity_fn) gives init and step "
            "(docs/running-samplers.md)."
        )
    if isinstance(rng_key, numbers.Integral) and not isinstance(rng_key, bool):
        seed = validation.seed("rng_key", rng_key)
        if _default_impl() == THREEFRY:  # jax.random.key(s)'s data, without a program
            return np.array([0, seed], np.uint32), seed
        return _data_of(jax.random.key(seed)), seed
    if isinstance(rng_key, jax.Array) and jnp.issubdtype(rng_key.dtype, jax.dtypes.prng_key):
        if rng_key.shape != ():
            raise ValueError(
                f"rng_key must be a single key; got a key array of shape {rng_key.shape}."
            )
        record = np.asarray(jax.random.key_data(rng_key)).tolist()
        return _data_of(rng_key), record
    if isinstance(rng_key, (jax.Array, np.ndarray)) and rng_key.dtype == np.uint32:
        if rng_key.shape == (2,):  # jax.random.PRNGKey's data: a threefry key
            key = jax.random.wrap_key_data(rng_key, impl=THREEFRY)
            return _data_of(key), np.asarray(rng_key).tolist()
    raise TypeError(
        f"rng_key must be an int seed or a jax.random.key(...); got {type(rng_key).__name__}."
    )


def _default_impl() -> str:
    return str(jax.config.jax_default_prng_impl)


def _data_of(key):
    """A typed key's data as a uint32 numpy array if the key is of the default
    implementation (what :func:`as_jax_key` and the programs wrap), else the key itself."""
    if str(jax.random.key_impl(key)) == _default_impl():
        return np.array(jax.random.key_data(key), np.uint32)
    return key


def same_stream(recorded, other) -> bool:
    """Whether two seed records (:func:`as_key`'s second element: an int, or a key's data as
    a list) make the same random streams: an int ``s`` is the key ``jax.random.key(s)``."""

    def data(record):
        if isinstance(record, numbers.Integral):
            return np.asarray(jax.random.key_data(jax.random.key(int(record))))
        return np.asarray(record)

    return np.array_equal(data(recorded), data(other))


def seed_expression(record) -> str:
    """Python that gives a run the seed it recorded (:func:`as_key`'s second element): the int
    itself, or the key rebuilt from its data (threefry's 2 words, another PRNG's more)."""
    if isinstance(record, numbers.Integral):
        return str(int(record))
    words = ", ".join(str(int(word)) for word in np.ravel(record))
    if np.size(record) == 2:
        return f"jax.random.wrap_key_data(np.array([{words}], np.uint32))"
    return (
        f'jax.random.wrap_key_data(np.array([{words}], np.uint32), impl="rbg") (or the PRNG '
        "implementation that made it)"
    )


def as_jax_key(key_input) -> jax.Array:
    """The typed key of ``key_input`` (:func:`as_key`'s first element), in a compiled program
    or on the host."""
    if key_input.dtype == np.uint32:
        return jax.random.wrap_key_data(key_input)
    return key_input


def chain_keys(key_input, num_chains: int, sharding=None):
    """``(num_chains,)`` keys, one per chain, from a seed or key, placed by ``sharding`` (made
    there: over several processes a placement across them cannot be given an array made in
    one); one ahead-of-time compiled call, held in the program cache. (Markov-chain runs make
    theirs in their start program, the same way.)"""
    placed = None if sharding is None else sharding_key(sharding)
    cache_key = ("keys", abstract(key_input), num_chains, placed)

    def build():
        def split(key_input):
            key = as_jax_key(key_input)
            _, key_chains = jax.random.split(key)
            return jax.random.split(key_chains, num_chains)

        return jax.jit(split, out_shardings=sharding).lower(key_input).compile()

    program, _ = PROGRAMS.get(cache_key, build)
    return program(key_input)
