"""Checks of what :meth:`infer.Result.from_draws` is given, on the host: per-draw statistics,
seconds, evaluation counts, dimension names and run facts (``info``)."""

from __future__ import annotations

import numpy as np

from infer import validation
from infer.target import check_dims


def checked_stats(stats, lead: tuple) -> dict:
    """``stats`` (``None`` or name -> array) checked: each ``lead`` = (num_chains,
    num_samples), and ``diverging`` True/False."""
    stat_arrays = {}
    for name, value in (stats or {}).items():
        value = np.asarray(value)
        if value.shape != lead:
            raise ValueError(
                f"stats[{name!r}] has shape {value.shape}; expected {lead} "
                "(num_chains, num_samples)."
            )
        if name == "diverging" and not np.isin(value, (0, 1)).all():
            raise ValueError(
                "stats['diverging'] flags each draw: True/False (or 1/0); got other values."
            )
        stat_arrays[name] = value
    return stat_arrays


def checked_timing(timing) -> dict:
    """``timing`` (``None`` or a dict name -> seconds) checked: numbers >= 0, or NaN."""
    if timing is None:
        return {}
    if not isinstance(timing, dict):
        raise TypeError(f"timing must be a dict name -> seconds; got {type(timing).__name__}.")
    checked = {}
    for name, seconds in timing.items():
        value = scalar(seconds)
        if value is None or value < 0:
            raise ValueError(
                f"timing[{name!r}] must be seconds, a number >= 0 (NaN when unknown); "
                f"got {seconds!r}."
            )
        checked[name] = value
    return checked


def scalar(value) -> float | None:
    """``value`` (a number or a 0-d array of one, not a bool) as a float, else None."""
    if isinstance(value, bool | np.bool_):
        return None
    array = np.asarray(value) if not isinstance(value, str | bytes) else None
    if array is None or array.ndim != 0 or not np.issubdtype(array.dtype, np.number):
        return None
    return None if np.iscomplexobj(array) else float(array)


def checked_count(name: str, value) -> int:
    """An evaluation count (an int, or a whole number as a float or 0-d array) >= 0."""
    number = scalar(value)
    if number is None or not np.isfinite(number) or number != round(number):
        raise TypeError(f"{name} must be a whole number >= 0; got {value!r}.")
    if number < 0:
        raise ValueError(f"{name} must be a whole number >= 0; got {value!r}.")
    return int(number)


def checked_dims(dims, draws: dict) -> dict:
    """``dims`` checked against the draws (see :func:`check_dims_fit`)."""
    if dims is None:
        return {}
    check_dims(dims)
    check_dims_fit(dims, {name: np.shape(value)[2:] for name, value in draws.items()})
    return {name: list(names) for name, names in dims.items()}


def check_dims_fit(dims, shapes: dict) -> None:
    """A ``ValueError`` for ``dims`` (name -> axis names) that ArviZ would apply wrongly to
    variables of ``shapes`` (name -> one draw's shape): more names than axes (they would be
    cut), an axis named as a variable is (ArviZ makes that variable the axis's coordinate and
    drops it), or one axis name with two lengths (the shorter variable padded with NaN).
    Unnamed axes count by the name ArviZ gives them, ``<name>_dim_<i>``."""
    lengths = {}  # axis name -> (length, the first variable with it)
    for name, shape in shapes.items():
        named = list((dims or {}).get(name, []))
        if len(named) > len(shape):
            raise ValueError(
                f"dims[{name!r}] names {len(named)} axes, but one draw of {name!r} has "
                f"{len(shape)} (shape {tuple(shape)}). Give one name per axis after "
                "(chain, draw)."
            )
        axes = named + [f"{name}_dim_{i}" for i in range(len(shape) - len(named))]
        for axis, length in zip(axes, shape, strict=True):
            if axis in shapes:
                how = f"dims[{name!r}] names" if axis in named else "ArviZ would name"
                raise ValueError(
                    f"{how} an axis of {name!r} {axis!r}, the name of a variable too; ArviZ "
                    f"would turn that variable into the axis's labels and drop it. Rename the "
                    f"axis (dims[{name!r}]) or the variable."
                )
            first_length, first = lengths.setdefault(axis, (length, name))
            if first_length != length:
                raise ValueError(
                    f"the axis {axis!r} has {length} entries in {name!r} but {first_length} "
                    f"in {first!r}; ArviZ would pad the shorter with NaN. An axis shared by "
                    f"two variables needs one length: give one of them another name in dims."
                )


def checked_info(info, num_chains: int) -> dict:
    """``info`` as a dict, its superchain count (when given) checked against the chains."""
    if info is None:
        return {}
    if not isinstance(info, dict):
        raise TypeError(f"info must be a dict or None; got {type(info).__name__}.")
    if info.get("superchains") is not None:
        validation.superchain_size(info["superchains"], num_chains, 'info["superchains"]')
    return dict(info)
