"""The starting point a user gives (``init``), checked on the host: a pytree of real float
or integer arrays with at least one value (a list of plain numbers is one vector)."""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np


def checked_init(init, argument: str = "init"):
    """``init`` as a pytree of JAX arrays of real numbers. A list or tuple of plain numbers
    is one vector (``[0.0, 0.0]`` means ``jnp.array([0.0, 0.0])``, not a tree of two scalars),
    and a rectangular nesting of them one array (``[[1., 2.], [3., 4.]]``, shape ``(2, 2)``),
    at the top or inside a dict. Raises for ``None`` or non-numeric leaves, complex values
    and an empty point."""
    try:
        init = jax.tree.map(
            lambda leaf: _as_array(leaf, argument) if _numbers(leaf) or _ragged(leaf) else leaf,
            init,
            is_leaf=lambda node: _numbers(node) or _ragged(node),
        )
    except ValueError as err:  # JAX sorts a dict's keys: 0 and "a" do not compare
        if "sorting pytree dictionary keys" not in str(err):
            raise
        raise TypeError(
            f"{argument} is or holds a dict whose keys are of types that do not compare "
            "with one another (0 and 'a', say), which JAX must sort: give every dict's keys "
            "one type, e.g. names as strings."
        ) from None
    leaves = jax.tree.leaves(init, is_leaf=lambda leaf: leaf is None)
    for leaf in leaves:
        kind = None if leaf is None else getattr(leaf, "dtype", None)
        if kind is not None and jax.dtypes.issubdtype(kind, jax.dtypes.prng_key):
            raise TypeError(
                f"{argument} holds a PRNG key ({kind}); a position holds the real numbers a "
                "sampler moves. Pass keys and other constants as the target's data= (read "
                "as logdensity_fn(position, data))."
            )
        kind = np.asarray(leaf).dtype if kind is None and leaf is not None else kind
        if kind is not None and jax.dtypes.issubdtype(kind, np.floating) and kind.itemsize < 4:
            raise TypeError(
                f"{argument} holds {kind} values: positions are float32 or float64 (16 bits "
                "are too few for the accept/reject step and warm-up). Pass "
                f"{argument}.astype(jnp.float32)."
            )
        if kind is None or not (np.issubdtype(kind, np.number) or np.issubdtype(kind, np.bool_)):
            raise TypeError(
                f"{argument} must hold numbers or arrays of them; it holds "
                f"{'None' if leaf is None else repr(leaf)}. Give every parameter a value."
            )
        if np.issubdtype(kind, np.complexfloating):
            raise TypeError(f"{argument} holds complex values; positions are real.")
    if sum(np.size(leaf) for leaf in leaves) == 0:
        raise ValueError(
            f"{argument} holds no values (an empty point): there is nothing to sample."
        )
    return jax.tree.map(jnp.asarray, init)


def _numbers(node) -> bool:
    """Whether ``node`` is a non-empty list or tuple of plain numbers, or a rectangular
    nesting of such lists (``[[1., 2.], [3., 4.]]``: an array, as NumPy reads it)."""
    if not isinstance(node, list | tuple) or len(node) == 0:
        return False
    if all(isinstance(v, int | float | np.integer | np.floating) for v in node):
        return not any(isinstance(v, bool) for v in node)
    return all(_numbers(v) for v in node) and len({np.shape(v) for v in node}) == 1


def _ragged(node) -> bool:
    """Whether ``node`` is a nesting of lists of plain numbers whose rows differ in length."""
    return (
        isinstance(node, list | tuple)
        and len(node) > 0
        and all(_numbers(v) or _ragged(v) for v in node)
        and not _numbers(node)
    )


def _as_array(node, argument: str) -> np.ndarray:
    if _numbers(node):
        return np.asarray(node, dtype=float)
    lengths = [len(v) for v in node]
    raise ValueError(
        f"{argument} holds a nested list whose rows differ in length ({lengths}); an array's "
        "rows have one length. Give a rectangular list or a NumPy array of the parameter's "
        "shape."
    )
