"""The names and shapes a run reports for one position (``Target.constrain``), traced once on
the host before anything compiles: a ``constrain_fn`` that returns something other than a dict
of arrays, and names that would collide in ArviZ (``chain`` and ``draw`` are its dimensions,
``/`` separates its groups) or with each other, are refused with the fix."""

from __future__ import annotations

from collections.abc import Mapping

import jax
import numpy as np

from infer.draws_checks import check_argument_dims, check_dims_fit
from infer.placement import traced_shapes
from infer.target import Target, program_key
from infer.validation import ARVIZ_DIMS, unstorable_name

RESERVED = ARVIZ_DIMS


def reported_shapes(target: Target, position) -> dict:
    """name -> ``jax.ShapeDtypeStruct`` of what ``target.constrain(position)`` reports for one
    position, checked (see the module's docstring).

    Raises:
        TypeError: for a ``constrain_fn`` that fails, or returns other than a dict of arrays.
        ValueError: for a name ArviZ cannot hold.
    """
    if target.constrain_fn is None:
        shapes = traced_shapes(("constrain", program_key(target)), target.constrain, position)
        _check_names(shapes, "the position's names (dict keys and pytree paths)")
        check_truth_shapes(target.ground_truth, shapes, "the target's draws")
        _check_dims(target, {name: value.shape for name, value in shapes.items()})
        return dict(shapes)  # the cache's own stays as it is
    usage = "constrain_fn(position[, data]) must return a dict name -> array"
    whose = "constrain_fn's names" if target.source is None else "the model's site names"
    try:
        returned = traced_shapes(
            ("raw constrain", program_key(target)), _raw_constrain(target), position
        )
    except TypeError as err:
        raise TypeError(f"{usage}; on the starting point it failed: {err}") from err
    except Exception as err:  # the user's function: named, whatever it raised
        raise TypeError(
            f"constrain_fn(position[, data]) failed on the starting point: "
            f"{type(err).__name__}: {err}"
        ) from err
    if not isinstance(returned, Mapping):
        got = (
            f"an array of shape {returned.shape}"
            if isinstance(returned, jax.ShapeDtypeStruct)
            else type(returned).__name__
        )
        raise TypeError(f"{usage}; it returned {got}. Return {{'name': value, ...}}.")
    if not returned:
        raise ValueError(
            "constrain_fn returned an empty dict: return at least one named value, "
            "{'name': value, ...}, for the draws to hold."
        )
    _check_names(returned, whose)
    check_truth_shapes(target.ground_truth, returned, "the target's draws")
    _check_dims(target, {name: value.shape for name, value in returned.items()})
    return dict(returned)


def _check_dims(target: Target, shapes: dict) -> None:
    """``target.dims`` checked against one draw's ``shapes`` (name -> shape) and the
    target's data (see :func:`infer.draws_checks.check_argument_dims`)."""
    check_dims_fit(target.dims, shapes)
    observed = {name: np.shape(value) for name, value in (target.observed_data or {}).items()}
    check_argument_dims(target.dims, shapes | observed, target.constant_data or {})


def check_truth_shapes(truth, shapes: Mapping, what: str) -> None:
    """A ``ValueError`` when a known answer (a :class:`infer.GroundTruth` or ``None``) gives a
    name a shape other than one draw of it has in ``shapes`` (name -> anything with a
    ``shape``, one draw), or names a variable ``shapes`` lacks (a misspelt name would leave
    that variable unchecked without a word)."""
    if truth is None:
        return
    for moment in ("mean", "std", "mean_se", "std_se"):
        for name, value in (getattr(truth, moment) or {}).items():
            if name not in shapes:
                raise ValueError(
                    f"ground_truth.{moment} names {name!r}, which {what} do not have (they "
                    f"are {sorted(shapes)}). Name the known answer as the draws are named."
                )
            if tuple(shapes[name].shape) != np.shape(value):
                raise ValueError(
                    f"ground_truth.{moment}[{name!r}] has shape {np.shape(value)}, but one "
                    f"draw of {name!r} in {what} has shape {tuple(shapes[name].shape)}. Give "
                    "the known answer one value per element of the draw."
                )


def _raw_constrain(target: Target):
    """``constrain_fn`` on one position, with any Mapping it returns made a dict (a pytree
    JAX can trace out) and anything else returned as it is, to be named."""

    def constrain(position):
        out = (
            target.constrain_fn(position)
            if target.data is None
            else target.constrain_fn(position, target.data)
        )
        return dict(out) if isinstance(out, Mapping) else out

    return constrain


def _check_names(shapes: Mapping, whose: str) -> None:
    for name, value in shapes.items():
        if (problem := unstorable_name(name)) is not None:
            raise ValueError(
                f"{whose} must be non-empty strings without '/', other than '.' and '..'; "
                f"got {name!r}, which {problem}. Rename it."
            )
        if name in RESERVED:
            raise ValueError(
                f"{whose} include {name!r}, one of ArviZ's dimensions {list(RESERVED)}: the "
                "draws would be lost behind the dimension's coordinate. Rename it."
            )
        if not isinstance(value, jax.ShapeDtypeStruct):
            raise TypeError(
                f"{whose}: {name!r} holds {type(value).__name__}, not one array. Give each "
                "name one array."
            )
        real = jax.numpy.issubdtype(value.dtype, jax.numpy.number) or value.dtype == bool
        if not real or jax.numpy.issubdtype(value.dtype, jax.numpy.complexfloating):
            raise TypeError(
                f"{whose}: {name!r} is {value.dtype}; reported values must be real numbers, "
                "which ArviZ's statistics take. Report a complex value's real and imaginary "
                "parts (or its modulus and angle) under two names."
            )
        base = name.split("[", 1)[0]
        if name in _element_labels(base, shapes.get(base)):
            raise ValueError(
                f"{whose} include {name!r} and {base!r}, an array whose elements ArviZ labels "
                f"'{base}[...]' too: a summary would hold two rows of one label. Rename "
                f"{name!r} (e.g. {name.replace('[', '_').replace(']', '')!r})."
            )


def element_label(name: str, event_shape: tuple, flat_index: int) -> str:
    """The label ArviZ's summary gives element ``flat_index`` (row-major) of the parameter
    ``name`` of shape ``event_shape``: ``name`` for a scalar, else ``name[i, j]`` (its default
    coordinates). Every table and message of infer names elements so."""
    if not event_shape:
        return name
    index = np.unravel_index(flat_index, event_shape)
    return f"{name}[{', '.join(str(int(i)) for i in index)}]"


def _element_labels(name: str, struct) -> set[str]:
    """The labels ArviZ gives the elements of the array ``name`` of shape ``struct.shape``
    (``x[0]``, ``x[0, 1]``: its default coordinates), when it is one; else none."""
    shape = tuple(getattr(struct, "shape", ()))
    if not shape or int(np.prod(shape)) > MAX_LABELLED:
        return set()
    return {f"{name}[{', '.join(map(str, index))}]" for index in np.ndindex(*shape)}


#: Arrays of more elements than this are not labelled element by element for the check.
MAX_LABELLED = 100_000
