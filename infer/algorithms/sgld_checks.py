"""Host-side checks of :mod:`infer.algorithms.sgld`: its data (one axis of examples, finite),
and that it samples the target's posterior (its prior plus its likelihood of all its data
equal the target's log density up to a constant, at the start and around it)."""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np
from jax.flatten_util import ravel_pytree

from infer import validation


def jittered(position, count: int = 2) -> list:
    """``count`` points ``position + U(-1, 1)`` per coordinate (a fixed key): where the
    driver's default jitter puts the chains' starts."""
    flat, unravel = ravel_pytree(position)
    keys = jax.random.split(jax.random.key(0), count)
    return [unravel(flat + jax.random.uniform(k, flat.shape, flat.dtype, -1.0, 1.0)) for k in keys]


def check_same_posterior(values: list, dtype) -> None:
    """``values``: ``(sgld's, the target's)`` log densities at the start, then at jittered
    points. Where both are finite they must differ by one constant (a normalising constant
    left out of one of them changes nothing); where one only is finite, the supports differ."""
    rtol = 1e-4 if dtype == np.float32 else 1e-9  # round-off of sums over the examples
    both = [(mine, theirs) for mine, theirs in values if np.isfinite(mine) and np.isfinite(theirs)]
    one = [pair for pair in values if np.isfinite(pair[0]) != np.isfinite(pair[1])]
    offset = both[0][0] - both[0][1] if both else 0.0
    off = [
        (mine, theirs)
        for mine, theirs in both
        if abs(mine - theirs - offset) > rtol * (1.0 + abs(mine) + abs(theirs))
    ]
    if not (off or one):
        return
    mine, theirs = (off or one)[0]
    where = "at the start" if (mine, theirs) == values[0] else "at a point jittered from the start"
    raise ValueError(
        f"sgld's log density {where}, its prior plus its likelihood of all its data, is "
        f"{mine:.6g}; the target's is {theirs:.6g}"
        + (
            f" (at the start they differ by {offset:.6g})"
            if both and where != "at the start"
            else ""
        )
        + ". It was made from another target (another prior, likelihood or fixed state), so "
        "it would sample that posterior under this target's name. Make it from this target's "
        "own prior and likelihood (infer.sgld(**target.notes['minibatch'], ...) for a Flax "
        "target); a constant difference (a normalising constant) is allowed."
    )


def held_examples(data) -> list:
    """Where a target's ``data`` may hold an SGLD sampler's examples: they are the data, or
    the first of a pair (a Flax target's: its examples and the module's fixed state)."""
    return [data, data[0]] if isinstance(data, tuple) and len(data) == 2 else [data]


def same_leaves(ours: list, theirs: list) -> bool:
    """Whether the sampler's data leaves (``ours``, JAX arrays) are the target's
    (``theirs``), compared as JAX holds them: a float64 NumPy array is float32 with 64-bit
    floats off, on both sides."""
    return len(ours) == len(theirs) and all(
        a is b or (np.shape(a) == np.shape(b) and np.array_equal(np.asarray(a), _as_jax_holds(b)))
        for a, b in zip(ours, theirs, strict=True)
    )


def _as_jax_holds(leaf) -> np.ndarray:
    """``leaf`` in the dtype JAX would hold it in, converted on the host (no copy to the
    device and back: the data may be large, and this runs in every call)."""
    array = np.asarray(leaf)
    return array.astype(jax.dtypes.canonicalize_dtype(array.dtype), copy=False)


def as_arrays(data):
    """``data``'s leaves as JAX arrays; a ``TypeError`` naming ``data`` for a leaf that is not
    numbers (a string, an object)."""
    try:  # a copy first: JAX may hand back an old copy of a NumPy array refilled in place
        return jax.tree.map(lambda leaf: jnp.asarray(validation.snapshot(leaf)), data)
    except TypeError as err:
        raise TypeError(f"data must be a pytree of numeric arrays; a leaf is not ({err})") from None


def check_data(data, num_data) -> int:
    """The number of examples: every data leaf's leading size, which must agree (and equal
    ``num_data`` when it is given)."""
    leaves = jax.tree.leaves(data)
    if not leaves or any(leaf.ndim == 0 for leaf in leaves):
        shown = [f"shape {np.shape(leaf)}" for leaf in leaves[:3]] + ["..."] * (len(leaves) > 3)
        got = f"{len(leaves)}: " + ", ".join(shown) if leaves else "none"
        raise ValueError(
            "data must be a pytree of arrays whose first axis indexes the examples (the axis "
            f"batches are drawn from); got leaves {got}. Pass np.asarray(...) of a list "
            "(a list's numbers are leaves of their own)."
        )
    sizes = sorted({int(leaf.shape[0]) for leaf in leaves})
    if len(sizes) != 1:
        raise ValueError(f"every data leaf must have the same first axis; got sizes {sizes}.")
    if sizes[0] == 0:
        raise ValueError("data hold 0 examples: there is nothing to draw minibatches from.")
    if num_data is not None and validation.positive_int("num_data", num_data) != sizes[0]:
        raise ValueError(f"num_data={num_data} but the data hold {sizes[0]} examples.")
    bad = sum(
        int(np.sum(~np.isfinite(np.asarray(leaf))))
        for leaf in leaves
        if jnp.issubdtype(leaf.dtype, jnp.inexact)
    )
    if bad:
        raise ValueError(
            f"data hold {bad} NaN or infinite value(s): every minibatch holding one would have "
            "a NaN log density and its step would be skipped, biasing the draws without a "
            "word. Clean or drop those examples."
        )
    return sizes[0]
