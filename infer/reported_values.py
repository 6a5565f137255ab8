"""What a run reports of a position: its values under names (a pytree's key paths), each
kept as a result holds it, before any checks (:mod:`infer.reported_names`) or ArviZ."""

from __future__ import annotations

import jax
import jax.numpy as jnp

from infer.base import key_name


def default_names(position) -> dict:
    """An array is reported as ``{"x": array}``; a dict of arrays as itself; any other pytree
    under its key paths (``"a.b"``, ``"0"``)."""
    if isinstance(position, dict) and all(isinstance(k, str) for k in position):
        if all(not isinstance(v, (dict, list, tuple)) for v in position.values()):
            return dict(position)
    leaves = jax.tree_util.tree_leaves_with_path(position)
    if len(leaves) == 1 and not leaves[0][0]:
        return {"x": leaves[0][1]}
    names = {}
    for path, leaf in leaves:
        name = ".".join(key_name(k) for k in path)
        if name in names:
            raise ValueError(
                f"two parts of the position are both named {name!r} (a nested key and a key "
                "with a dot); rename one so that each part keeps its own draws."
            )
        names[name] = leaf
    return names


def storable(value):
    """A reported value as :meth:`infer.Result.from_draws` keeps it: True/False (a
    deterministic site such as mu > 0) as 0/1 ``int8``, as ArviZ's statistics subtract draws,
    which NumPy refuses for booleans; 16-bit floats as ``float32``, which SciPy and NetCDF
    read. Anything else (a non-array, to be named by the checks) as it is."""
    dtype = getattr(value, "dtype", None)
    if dtype == jnp.bool_:
        return value.astype(jnp.int8)
    if dtype is not None and jnp.issubdtype(dtype, jnp.floating) and dtype.itemsize < 4:
        return value.astype(jnp.float32)
    return value
