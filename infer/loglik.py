"""The pointwise log likelihood of every draw: the ArviZ ``log_likelihood`` group that
``az.loo`` and ``az.compare`` read.

One vectorised pass over the draws on the device, in chunks of draws sized so that a chunk's
draws x observations stay under :data:`CHUNK_BYTES`, whatever the number of observations;
the chunk program is compiled once per shape (data are its arguments).
"""

from __future__ import annotations

import math

import jax
import numpy as np

from infer.draws_checks import check_dims_fit
from infer.outside_values import function_key
from infer.placement import PROGRAMS, abstract, to_host, traced_shapes
from infer.target import Target, program_key

#: Bytes of log likelihoods one chunk computes at most (draws x observations x 4).
CHUNK_BYTES = 2**27

_CHECKED: set = set()  # the targets and point shapes check_loglik has passed


def pointwise(target: Target, positions, program_draws: int | None = None) -> dict | None:
    """name -> ``(num_chains, num_draws, *observation_shape)`` log likelihoods, or ``None``
    for a target without a ``loglik_fn``.

    Args:
        positions: the unconstrained draws, leading axes ``(num_chains, num_draws)`` (numpy).
        program_draws: the draws one call of the compiled program takes (padded), at most;
            give the same for pieces of different lengths (a store's chunks) so that they
            share one program. Default: all the draws, within :data:`CHUNK_BYTES`.
    """
    if target.loglik_fn is None:
        return None
    data = target.data
    lead = jax.tree.leaves(positions)[0].shape[:2]
    flat = jax.tree.map(lambda leaf: leaf.reshape((-1, *leaf.shape[2:])), positions)
    total = lead[0] * lead[1]
    example = jax.tree.map(lambda leaf: leaf[0], flat)
    shapes = loglik_shapes(target, example)
    per_draw = sum(math.prod(s.shape) for s in shapes.values()) * 4
    size = int(max(1, min(program_draws or total, CHUNK_BYTES // max(per_draw, 1))))
    program = _program(target, size, flat, data)
    parts = []
    for start in range(0, total, size):
        chunk = jax.tree.map(lambda leaf, s=start: _padded(leaf[s : s + size], size), flat)
        parts.append((to_host(program(chunk, data)), start))
    out = {}
    for name in shapes:
        pieces = [part[name][: min(size, total - start)] for part, start in parts]
        values = np.concatenate(pieces, axis=0)
        out[name] = values.reshape((*lead, *values.shape[1:]))
    return out


def loglik_shapes(target: Target, point) -> dict:
    """name -> ``jax.ShapeDtypeStruct`` of ``target``'s log likelihoods at one unconstrained
    ``point`` (traced once per target's programs and shapes: a NumPyro model's trace takes
    milliseconds)."""
    key = (
        "loglik",
        program_key(target),
        function_key(target.loglik_fn),
        tuple(target.observed_data or {}),  # the output's name when loglik_fn gives an array
    )
    return traced_shapes(key, target.bound_loglik(target.data), point)


def check_loglik(target: Target, point) -> None:
    """Before a run: ``target``'s ``loglik_fn`` at one unconstrained ``point`` must give float
    arrays; one the user wrote (a target without a ``source`` model) one log likelihood per
    observation, shaped as the leading axes of the observed value (a vector observation has
    one per vector), under names ``observed_data`` holds. Raises TypeError or ValueError
    saying what it returned or how it failed (ValueError); nothing is compiled: it is
    traced once."""
    if target.loglik_fn is None:
        return
    observed = target.observed_data or {}
    key = (program_key(target), function_key(target.loglik_fn), abstract(point))
    key += (tuple((name, np.shape(value)) for name, value in observed.items()),)
    key += (target.source is None,)
    key += (tuple((name, tuple(axes)) for name, axes in sorted((target.dims or {}).items())),)
    if key in _CHECKED:  # a repeated call traces nothing
        return
    call = "loglik_fn(position)" if target.data is None else "loglik_fn(position, data)"
    try:
        out = loglik_shapes(target, point)
    except jax.errors.TracerArrayConversionError as err:
        raise TypeError(
            f"{call} calls NumPy on the values it is given, which are traced: write it with "
            "jax.numpy (jnp) instead of numpy (np)."
        ) from err
    except Exception as err:  # a ValueError, as a log density failing there gives
        raise ValueError(
            f"{call} failed on a point shaped {jax.tree.map(np.shape, point)}: "
            f"{type(err).__name__}: {err}"
        ) from err
    user_made = target.source is None  # a model's (NumPyro's) is built by infer: dtype only
    for name, value in out.items():
        _check_one(call, name, value, observed.get(name) if user_made else None, user_made)
    unknown = sorted(set(out) - set(observed))
    if user_made:  # more names than axes would be dropped by ArviZ without a word; an
        # observed vector's own axes are named as in observed_data (cut in log_likelihood)
        shapes = {name: np.shape(observed.get(name, value)) for name, value in out.items()}
        check_dims_fit(target.dims, shapes)
    if user_made and observed and unknown:
        raise ValueError(
            f"{call} returned log likelihoods named {unknown}, which observed_data "
            f"({sorted(observed)}) does not name (an array is named after observed_data's "
            "one name, else 'obs'): return a dict name -> log likelihoods, one name per "
            "observed variable (covariates belong in constant_data)."
        )
    if len(_CHECKED) >= 256:
        _CHECKED.clear()
    _CHECKED.add(key)


def _check_one(call: str, name: str, value, observed, user_made: bool) -> None:
    if not isinstance(value, jax.ShapeDtypeStruct):
        raise TypeError(
            f"{call} must return an array of per-observation log likelihoods (or a dict of "
            f"them); for {name!r} it returned {type(value).__name__}."
        )
    if not jax.numpy.issubdtype(value.dtype, jax.numpy.floating):
        raise TypeError(
            f"{call} must return floating-point log likelihoods; {name!r} is {value.dtype}."
        )
    if user_made and value.ndim == 0 and (observed is None or np.ndim(observed) > 0):
        raise ValueError(
            f"{call} returned a scalar for {name!r}: return one log likelihood per observation, "
            "shape (num_observations,), not their sum (az.loo needs each one)."
        )
    if observed is not None and value.shape != np.shape(observed)[: value.ndim]:
        raise ValueError(
            f"{call} returned shape {value.shape} for {name!r}, whose observed data are shaped "
            f"{np.shape(observed)}: give one log likelihood per observation."
        )


def _padded(leaf, size: int):
    """``leaf`` with its first axis padded (by repeating its first row) to ``size``."""
    missing = size - leaf.shape[0]
    if missing <= 0:
        return leaf
    return np.concatenate([leaf, np.repeat(leaf[:1], missing, axis=0)], axis=0)


def _program(target: Target, size: int, flat, data):
    """The compiled ``(chunk of draws, data) -> dict`` for ``size`` draws at a time."""
    example = jax.tree.map(
        lambda leaf: jax.ShapeDtypeStruct((size, *leaf.shape[1:]), leaf.dtype), flat
    )
    key = (
        "loglik",
        program_key(target),
        function_key(target.loglik_fn),  # a global it reads is traced in as a constant
        tuple(target.observed_data or {}),  # the output's name when loglik_fn gives an array
        abstract(example),
        abstract(data),
    )

    def build():
        def run(chunk, data):
            return jax.vmap(target.bound_loglik(data))(chunk)

        return jax.jit(run).lower(example, data).compile()

    program, _ = PROGRAMS.get(key, build)
    return program
