"""Checks of what :meth:`infer.Result.from_draws` is given, on the host: per-draw statistics,
seconds, evaluation counts, dimension names and run facts (``info``); and whether float32
held a run's log density finely enough."""

from __future__ import annotations

import warnings

import jax
import numpy as np

from infer import draw_blocks, validation
from infer.caller import INFER_FRAMES
from infer.target import GroundTruth, check_dims

#: The seconds a result records (``Result.timing``); :func:`infer.compare` reads ``sampling``.
TIMING_NAMES = ("compile", "warmup", "sampling", "total")
#: Up to this many chains of fewer draws each, draws are not suspected of being transposed.
FEW_CHAINS = 16


def checked_draw(name, value) -> np.ndarray:
    """One entry of ``draws``, a name and an array ``(num_chains, num_samples, ...)`` of real
    numbers, as a NumPy array: True/False as ``int8``, 16-bit floats as ``float32``."""
    check_name("draw", name)
    if isinstance(value, dict):
        raise TypeError(
            f"draws[{name!r}] is a dict; draws map names to arrays: flatten nested "
            f"draws, e.g. {{'{name}.{next(iter(value), 'w')}': ...}}."
        )
    value = validation.in_chain_draw_order(value)
    try:
        value = np.asarray(value)
    except ValueError as error:  # a ragged list
        raise ValueError(
            f"draws[{name!r}] is not an array: {error} Give every chain the same number of "
            "draws, each of the same shape."
        ) from None
    if value.ndim < 2 or value.size == 0:
        raise ValueError(
            f"draws[{name!r}] has shape {value.shape}; expected (num_chains, "
            "num_samples, ...), at least one of each and one value. A single chain "
            "needs a leading axis of 1."
        )
    real = np.issubdtype(value.dtype, np.number) or value.dtype == bool
    real = real or jax.dtypes.issubdtype(value.dtype, np.floating)  # bfloat16 too
    if not real or np.iscomplexobj(value):
        raise TypeError(f"draws[{name!r}] must be real numbers; got dtype {value.dtype}.")
    if value.dtype == bool:
        return value.astype(np.int8)
    if value.dtype.itemsize < 4 and jax.dtypes.issubdtype(value.dtype, np.floating):
        return value.astype(np.float32)  # SciPy and NetCDF take no 16-bit floats
    return value


def warn_if_transposed(arrays: dict, info) -> None:
    """A warning when the draws hold more chains than draws per chain, and more than
    :data:`FEW_CHAINS` of them, without superchains (which declare many short chains): most
    often an array laid out (num_samples, num_chains, ...), which every statistic would read
    as thousands of short chains."""
    name, value = next(iter(arrays.items()))
    num_chains, num_samples = value.shape[:2]
    if num_chains <= max(num_samples, FEW_CHAINS):
        return
    if isinstance(info, dict) and info.get("superchains"):
        return
    warnings.warn(
        f"draws[{name!r}] has shape {value.shape}: {num_chains} chains of {num_samples} draws "
        "each. If the first axis is the draws (emcee's get_chain() gives (steps, walkers, "
        "...)), pass np.swapaxes(array, 0, 1): read this way the ESS is far too high and the "
        "MCSE too low. Many short chains on purpose are fine: silence this warning "
        "(warnings.filterwarnings('ignore', 'draws.*chains of')); with superchains declared "
        "(info={'superchains': K}, compare then uses nested R-hat) it is not raised.",
        UserWarning,
        skip_file_prefixes=INFER_FRAMES,
    )


def check_labels(*, sampler, target, ground_truth) -> None:
    """``sampler`` and ``target`` must be names (strings), ``ground_truth`` a
    :class:`infer.GroundTruth` or None."""
    for label, value in (("sampler", sampler), ("target", target)):
        if not isinstance(value, str) or not value:
            raise TypeError(f"{label} must be a non-empty string, its name; got {value!r}.")
    if ground_truth is not None and not isinstance(ground_truth, GroundTruth):
        raise TypeError(
            "ground_truth must be an infer.GroundTruth(mean={name: array}, std={name: array}) "
            f"or None; got {type(ground_truth).__name__}."
        )


def check_name(what: str, name) -> None:
    """A ``TypeError`` unless ``name`` can name a ``what`` (``draw``, ``stat``) of a result:
    a string a file can hold (:func:`infer.validation.unstorable_name`), other than ArviZ's
    dimensions ``chain`` and ``draw``."""
    problem = validation.unstorable_name(name)
    if problem is None and name in validation.ARVIZ_DIMS:
        problem = "is one of ArviZ's dimensions ('chain', 'draw')"
    if problem is not None:
        raise TypeError(
            f"{what} names must be non-empty strings without '/', other than '.', '..', "
            f"'chain' and 'draw'; got {name!r}, which {problem}. Rename it."
        )


def checked_stats(stats, lead: tuple) -> dict:
    """``stats`` (``None`` or name -> array) checked: each ``lead`` = (num_chains,
    num_samples), and ``diverging`` True/False."""
    if stats is not None and not isinstance(stats, dict):
        raise TypeError(
            "stats must be a dict name -> array (num_chains, num_samples), such as "
            f"{{'diverging': ..., 'acceptance_rate': ...}}, or None; got {type(stats).__name__}."
        )
    stat_arrays = {}
    for name, value in (stats or {}).items():
        check_name("stat", name)
        value = validation.in_chain_draw_order(value)  # as the draws are read
        try:
            value = np.asarray(value)
        except ValueError:
            value = np.asarray(value, dtype=object)  # ragged: its shape below says so
        if value.shape != lead:
            raise ValueError(
                f"stats[{name!r}] has shape {value.shape}; expected {lead} "
                "(num_chains, num_samples)."
            )
        if name == "diverging" and not np.isin(value, (0, 1)).all():
            raise ValueError(
                "stats['diverging'] flags each draw: True/False (or 1/0); got other values."
            )
        if name == "acceptance_rate" and not _probabilities(value):
            raise ValueError(
                "stats['acceptance_rate'] holds each step's acceptance probability, numbers "
                "in [0, 1] (NaN when unknown); got values outside."
            )
        stat_arrays[name] = value
    return stat_arrays


def outside_probabilities(value: np.ndarray) -> np.ndarray:
    """Where real numbers ``value`` are not probabilities: outside [0, 1] by more than 1e-6
    (a running mean's round-off); NaN (unknown) is not outside."""
    value = np.asarray(value, np.float64)
    return (value < -1e-6) | (value > 1 + 1e-6)


def _probabilities(value) -> bool:
    """Whether ``value`` holds probabilities (True/False as 1/0, NaN for unknown)."""
    if value.dtype == bool:
        return True
    if not np.issubdtype(value.dtype, np.number) or np.iscomplexobj(value):
        return False
    return not outside_probabilities(value).any()


def checked_timing(timing) -> dict:
    """``timing`` (``None`` or a dict name -> seconds) checked: numbers >= 0, or NaN."""
    if timing is None:
        return {}
    if not isinstance(timing, dict):
        raise TypeError(f"timing must be a dict name -> seconds; got {type(timing).__name__}.")
    checked = {}
    for name, seconds in timing.items():
        if name not in TIMING_NAMES:
            raise ValueError(
                f"timing[{name!r}] is not one of the seconds a result records, {TIMING_NAMES} "
                "(compare's per-second columns read 'sampling': the sampling phase, "
                "compilation excluded). Rename it, or keep other facts in info."
            )
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
    if dims is not None:
        check_dims(dims)
    # unnamed axes too: ArviZ names them <name>_dim_<i>, which another draw's name may be
    check_dims_fit(dims, {name: np.shape(value)[2:] for name, value in draws.items()})
    return {name: list(names) for name, names in (dims or {}).items()}


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
            _check_axis(name, repr(name), axis, length, axis in named, shapes, lengths)


def _check_axis(name, what, axis, length, named, variables, lengths) -> None:
    """A ``ValueError`` for the axis ``axis`` (of ``length`` entries) of the variable
    ``name`` (``what``: how messages call it) that is named like one of ``variables`` or that
    ``lengths`` (axis -> (length, the first variable with it), filled in here) gives another
    length. ``named``: the name is the user's (in ``dims``), not ArviZ's own."""
    if axis in variables:
        how = f"dims[{name!r}] names" if named else "ArviZ would name"
        fix = f"the axis (dims[{name!r}]) or the variable" if named else f"{axis!r}"
        raise ValueError(
            f"{how} an axis of {what} {axis!r}, the name of a variable too; ArviZ would turn "
            f"that variable into the axis's labels and drop it. Rename {fix}."
        )
    first_length, first = lengths.setdefault(axis, (length, name))
    if first_length != length:
        raise ValueError(
            f"the axis {axis!r} has {length} entries in {what} but {first_length} in "
            f"{first!r}; ArviZ would pad the shorter with NaN. An axis shared by two "
            "variables needs one length: give one of them another name in dims."
        )


def check_argument_dims(dims, shapes: dict, constant: dict) -> None:
    """A ``ValueError`` for ``dims`` given to a model's array arguments (``constant``: name
    -> array, the ``constant_data``) that ArviZ would apply wrongly, as
    :func:`check_dims_fit` for draws: more names than axes, an axis named as a variable, or
    an axis named as one of the draws' ``shapes`` (name -> one draw's shape) with another
    length. An argument named like a site is left out: it takes the site's names where its
    lengths agree (no model site names are given to an argument otherwise, so these are
    the user's own)."""
    lengths, variables = {}, {*shapes, *constant}
    for name, shape in shapes.items():
        for axis, length in zip((dims or {}).get(name, []), shape, strict=False):
            lengths.setdefault(axis, (length, name))
    for name, value in constant.items():
        if name in shapes or name not in (dims or {}):
            continue
        named, shape = list(dims[name]), np.shape(value)
        if len(named) > len(shape):
            raise ValueError(
                f"dims[{name!r}] names {len(named)} axes, but the argument {name!r} has "
                f"{len(shape)} (shape {shape}). Give one name per axis."
            )
        for axis, length in zip(named, shape, strict=False):
            _check_axis(name, f"the argument {name!r}", axis, length, True, variables, lengths)


def checked_info(info, num_chains: int) -> dict:
    """``info`` as a dict, its superchain count (when given) checked against the chains."""
    if info is None:
        return {}
    if not isinstance(info, dict):
        raise TypeError(f"info must be a dict or None; got {type(info).__name__}.")
    if info.get("superchains") is not None:
        validation.superchain_size(info["superchains"], num_chains, 'info["superchains"]')
    return dict(info)


#: The largest log density (in magnitude) float32 resolves finely enough for a sampler's
#: accept tests: beyond 2**20 its values are 0.125 or more apart.
FLOAT32_LOGDENSITY_LIMIT = 2.0**20


def largest_logdensity(result) -> float:
    """How large the log density of a float32 run got in magnitude: from its draws' ``lp``,
    else an exact sampler's ``info`` (``largest_abs_logdensity``, or a rejection envelope's
    ``log_envelope``, near the log density's peak); 0 for float64 runs or when unknown."""
    lp = result.stats.get("lp")  # in memory, or a stored run's (read in blocks)
    if lp is not None and np.size(lp):
        if np.dtype(lp.dtype) != np.float32:
            return 0.0
        return draw_blocks.largest_finite_magnitude(lp)  # NaN and infinite ones left out
    if any(_dtype(value) != np.float32 for value in result.draws.values()):
        return 0.0
    info = result.info
    return float(info.get("largest_abs_logdensity", abs(info.get("log_envelope", 0.0) or 0.0)))


def _dtype(values) -> np.dtype:
    """The dtype of ``values``, read without their values where they have one (a store's)."""
    return np.dtype(values.dtype) if hasattr(values, "dtype") else np.asarray(values).dtype


def imprecise_run(result) -> str | None:
    """:func:`imprecise_logdensity` of ``result``'s largest log density, at the limit its
    sampler recorded (``info["float32_logdensity_limit"]``: a derivative-free ARS hull
    extends its secants, and with them the values' rounding) or the common one. ``None`` for
    a sampler without an accept/reject step: it moves by gradients alone."""
    if result.info.get("skips_nonfinite"):  # no accept/reject (SGLD): lp is not compared
        return None
    limit = result.info.get("float32_logdensity_limit", FLOAT32_LOGDENSITY_LIMIT)
    return imprecise_logdensity(largest_logdensity(result), float(limit))


def imprecise_logdensity(largest: float, limit: float = FLOAT32_LOGDENSITY_LIMIT) -> str | None:
    """What float32 does to a log density that reaches ``largest`` in magnitude, or
    ``None`` below ``limit`` (:data:`FLOAT32_LOGDENSITY_LIMIT` unless a sampler says less)."""
    if not largest > limit:  # NaN: nothing to tell
        return None
    spacing = float(np.spacing(np.float32(min(largest, np.finfo(np.float32).max))))
    return (
        f"the log density reaches {largest:.3g} in magnitude, where float32 (JAX's default "
        f"precision) holds only values {spacing:.2g} apart: the differences the sampler "
        "accepts or rejects by are rounded that much, and the draws can be biased with no "
        "other sign. Drop the terms that do not depend on the parameters (normalising "
        "constants; a sum over many observations minus its value at a typical point), or "
        "enable 64-bit floats (JAX_ENABLE_X64=1)."
    )
