"""Host-side checks of a run's starting points and log density, before anything is compiled.

Each error names the argument, what was expected, what was got and how to fix it.
"""

from __future__ import annotations

import warnings
from collections.abc import Callable
from typing import NamedTuple

import jax
import jax.numpy as jnp
import numpy as np

from infer import validation
from infer.caller import INFER_FRAMES
from infer.init_checks import checked_init
from infer.placement import traced_shapes
from infer.target import Target, program_key


class PerChain(NamedTuple):
    """Starting points that are one per chain whatever their shapes say (``init=result.state``):
    a target without ``init`` cannot otherwise tell 4 points of 3 from one point of 4 x 3."""

    positions: object  # a pytree with a leading num_chains axis


_SAMPLE_INIT = (
    "infer.sample (one point, or one per chain with a leading num_chains axis; a log density "
    "that takes any shape cannot tell those apart, so give infer.Target one point's shape "
    "for starts per chain)"
)


def starting_point(target: Target, init, num_chains: int | None, init_of: str = _SAMPLE_INIT):
    """``(point, per_chain)``: the starting point as float numpy arrays, and whether it holds
    one point per chain (leading axis ``num_chains``) rather than one point; ``num_chains``
    ``None``: one point only (ADVI's mean). ``init_of``: the function (and what its
    ``init=`` holds) that a missing starting point's message names.

    Raises:
        ValueError: when there is no starting point, or its shape fits neither case.
    """
    if isinstance(init, PerChain):  # e.g. init=result.state, chains that drifted to NaN
        _refuse_nonfinite(init.positions, "init")
        return _per_chain(target, init.positions, num_chains), True
    point = checked_init(init) if init is not None else target.init
    point = _stacked_if_per_chain(init, point, target.init, num_chains)
    if point is None:
        raise ValueError(
            f"target {target.name!r} has no starting point: pass init=... to infer.Target or "
            f"to {init_of}."
        )
    point = jax.tree.map(as_float_array, point)
    _refuse_nonfinite(point, "init" if init is not None else f"the init of target {target.name!r}")
    reference = target.init
    if reference is None:
        reference = point if returns_scalar(target.logdensity, point) else None
        if reference is None:
            reference = jax.tree.map(lambda leaf: leaf[0], point)
        else:
            _warn_if_per_chain_was_meant(target, point, num_chains)
    reference_shapes = [tuple(np.shape(leaf)) for leaf in jax.tree.leaves(reference)]
    point_shapes = [tuple(np.shape(leaf)) for leaf in jax.tree.leaves(point)]
    same_structure = jax.tree.structure(point) == jax.tree.structure(reference)
    per_chain = [(num_chains, *shape) for shape in reference_shapes]
    if same_structure and num_chains is not None and point_shapes == per_chain:
        check_scalar_logdensity(
            target.logdensity, jax.tree.map(lambda leaf: leaf[0], point), key=_key(target)
        )
        return point, True
    if same_structure and point_shapes == reference_shapes:
        check_scalar_logdensity(target.logdensity, point, key=_key(target))
        return point, False
    if not same_structure:
        flax = "flax" in getattr(target, "notes", {})  # its parameter pytree, given as it is
        hint = " For a Flax target, init=target.notes['flax'].position(params)." if flax else ""
        raise ValueError(_structure_mismatch(point, reference) + hint)
    raise ValueError(_shape_mismatch(target, point, reference, num_chains))


def _stacked_if_per_chain(init, point, reference, num_chains: int | None):
    """``point``, or, for an ``init`` that is a list (or tuple) of ``num_chains`` points each
    of ``reference``'s structure (``[[0., 0.], [1., 1.]]``, a list of dicts), those points
    stacked on a leading chain axis: one point per chain, as the list meant."""
    if not isinstance(init, list | tuple) or reference is None or num_chains is None:
        return point
    structure = jax.tree.structure(reference)
    reference_shapes = _shapes(reference)
    if jax.tree.structure(point) == structure and _shapes(point) == reference_shapes:
        return point
    try:
        points = [checked_init(one) for one in init]
    except (TypeError, ValueError):
        return point
    if any(jax.tree.structure(one) != structure for one in points):
        return point
    if any(_shapes(one) != reference_shapes for one in points):
        return point
    if len(points) != num_chains:
        raise ValueError(
            f"init is a list of {len(points)} points, but this run has num_chains="
            f"{num_chains}: give one point per chain, or one point (each chain starts at "
            "its own jitter around it)."
        )
    return jax.tree.map(lambda *leaves: jnp.stack(leaves), *points)


def _shapes(point) -> tuple:
    return tuple(np.shape(leaf) for leaf in jax.tree.leaves(point))


def _warn_if_per_chain_was_meant(target: Target, point, num_chains: int | None) -> None:
    """Warn when an ``init`` read as one point (the target has no ``init`` to compare with)
    has arrays of two or more axes that all lead with ``num_chains``: one point per chain
    may have been meant."""
    leaves = jax.tree.leaves(point)
    if num_chains is None or num_chains < 2 or not leaves:
        return
    if all(np.ndim(leaf) >= 2 and np.shape(leaf)[0] == num_chains for leaf in leaves):
        shapes = _describe([tuple(np.shape(leaf)) for leaf in leaves])
        warnings.warn(
            f"init has shape {shapes} and target {target.name!r} has no init of its own to "
            f"compare with, so it is read as one point of that shape, not as one point per "
            f"chain (num_chains={num_chains}). For one point per chain, give the target its "
            "one-point shape: infer.Target(..., init=<one chain's point>).",
            UserWarning,
            skip_file_prefixes=INFER_FRAMES,
        )


def _per_chain(target: Target, positions, num_chains: int):
    positions = jax.tree.map(as_float_array, positions)
    counts = {np.shape(leaf)[0] if np.ndim(leaf) else None for leaf in jax.tree.leaves(positions)}
    if counts != {num_chains}:
        raise ValueError(
            f"init=result.state holds {' or '.join(map(str, sorted(counts, key=str)))} "
            f"chain(s); this run has "
            f"num_chains={num_chains}. Pass num_chains to match, or leave it out."
        )
    reference = target.init
    if reference is not None:  # a state from another target's run: same keys and shapes
        if jax.tree.structure(positions) != jax.tree.structure(reference):
            raise ValueError(_structure_mismatch(positions, reference))
        expected = [(num_chains, *np.shape(leaf)) for leaf in jax.tree.leaves(reference)]
        got = [tuple(np.shape(leaf)) for leaf in jax.tree.leaves(positions)]
        if got != expected:
            raise ValueError(
                f"init=result.state has shape {_describe(got)}; target {target.name!r} takes "
                f"one point per chain shaped {_describe(expected)}. Was the state from a run "
                "on another target? Pass a state from a run on this one."
            )
    check_scalar_logdensity(
        target.logdensity, jax.tree.map(lambda leaf: leaf[0], positions), key=_key(target)
    )
    return positions


def check_initial_logdensity(values: np.ndarray, positions, target, jitter=0.0) -> None:
    """Every chain's log density at its start (``values``, ``(num_chains,)``) must be a finite
    scalar; the error names the first chain that is not and the target's own value there (a
    sampler's state may hold ``-inf`` for NaN, as NumPyro's HMC and NUTS do), NaN or inf in
    the target's data when there are (the likelier cause then), and the jitter the starts had
    (``jitter``, the half-width around ``init``)."""
    values = np.asarray(values)
    bad = np.flatnonzero(~np.isfinite(values))
    if bad.size:
        chain = int(bad[0])
        at_start = jax.tree.map(lambda leaf: leaf[chain], positions)
        value = values[chain]
        try:  # on the error path alone; the sampler's value stands where this fails
            own = np.asarray(target.bound(target.data)(jax.tree.map(jnp.asarray, at_start)))
        except Exception:  # noqa: BLE001 - a log density that fails eagerly: keep the value
            own = value
        if own.shape == () and not np.isfinite(own):
            value = own
        point = jax.tree.map(
            lambda leaf: np.array2string(np.asarray(leaf[chain]), precision=4, separator=", "),
            positions,
        )
        fix = "Start inside the support: pass init= a point where the log density is finite."
        if jitter:
            fix += (
                f" The starts are init jittered by up to {jitter} on every coordinate (halved, "
                "up to 20 times, where that leaves the support): for an init near the edge of "
                "the support, pass a smaller init_jitter, or init_jitter=0."
            )
        data = target.data
        nonfinite = "" if data is None else validation.nonfinite_leaves(data, "data")
        if nonfinite:
            fix = (
                f"The target's data hold NaN or infinite values ({nonfinite}): drop or fill "
                "them, since a log density that reads them is not finite anywhere. Or, if the "
                f"data are meant, {fix[0].lower()}{fix[1:]}"
            )
        raise ValueError(
            f"the log density is {value} at the initial point of chain {chain} "
            f"({bad.size} of {values.size} chains affected), position {point}. {fix}"
        )


def _refuse_nonfinite(point, given: str) -> None:
    """A ``ValueError`` when the starting point(s) ``point`` hold NaN or inf (``given``: what
    the message calls them)."""
    nonfinite = validation.nonfinite_leaves(point, "init")
    if nonfinite:
        raise ValueError(
            f"{given} holds NaN or infinite values ({nonfinite}): a chain cannot start there. "
            "Give starting points with finite values inside the support."
        )


def _structure_mismatch(point, reference) -> str:
    """What keys (tree paths) ``point`` lacks and has beyond ``reference``'s."""
    paths = [
        {_label(path) for path, _ in jax.tree_util.tree_flatten_with_path(tree)[0]}
        for tree in (point, reference)
    ]

    def listed(labels) -> str:
        return ", ".join(sorted(labels)) or "none"

    if paths[0] == paths[1]:
        return (
            f"init has the target's parameters in another kind of container: "
            f"{jax.tree.structure(point)} where the target has {jax.tree.structure(reference)}. "
            "Give init in the same kind (e.g. a plain dict)."
        )
    return (
        f"init does not have the target's parameters: missing {listed(paths[1] - paths[0])}; "
        f"not the target's: {listed(paths[0] - paths[1])}. Give one value for each of "
        f"{listed(paths[1])} (one point, or one per chain with a leading num_chains axis)."
    )


def _shape_mismatch(target: Target, point, reference, num_chains: int | None) -> str:
    """Which parameters of ``init`` (of ``reference``'s structure) fit neither one point's
    shape nor one per chain's, each by name (all of them, when each fits one of the two but
    not the same one); for a NumPyro target, that ``init`` is in its unconstrained space."""
    rows = []
    for (path, leaf), one in zip(
        jax.tree_util.tree_flatten_with_path(point)[0], jax.tree.leaves(reference), strict=True
    ):
        one = tuple(np.shape(one))
        rows.append((_label(path), tuple(np.shape(leaf)), one, (num_chains, *one)))
    misfits = [row for row in rows if row[1] not in (row[2], row[3] if num_chains else None)]
    lines = [
        f"{label}: {got}, where one point's is {one}"
        + ("" if num_chains is None else f" and one per chain's (num_chains={num_chains}) {many}")
        for label, got, one, many in (misfits or rows)
    ]
    if len(rows) == 1:  # a bare array, or one named parameter
        named = "" if rows[0][0] == _label(()) else f"'s {rows[0][0]}"
        message = f"init{named} has shape {lines[0].split(': ', 1)[1]}."
    else:
        mixed = "" if misfits else " (some one point's, some one per chain's: give one kind)"
        message = f"init's parameters have shapes that fit no start{mixed}:\n  " + "\n  ".join(
            lines
        )
    if target.source is not None:
        message += (
            "\nFor a NumPyro model, init is in the unconstrained space the chains move in, "
            "where a site may have another shape than its values (a simplex of K values has "
            "K - 1, a d x d Cholesky factor d (d - 1) / 2): give one point shaped as "
            "result.state.position's values, or leave init out."
        )
    return message


def _label(path) -> str:
    """A leaf's path as ``"mu"`` or ``"layer.0.w"`` (``"(the whole point)"`` for a bare array)."""
    parts = [str(getattr(k, "key", getattr(k, "idx", getattr(k, "name", k)))) for k in path]
    return ".".join(parts) or "(the whole point)"


def _describe(shapes) -> str:
    return str(shapes[0]) if len(shapes) == 1 else str(shapes)


def as_float_array(leaf) -> np.ndarray:
    """``leaf`` as a numpy array of JAX's default float type unless it is a float at least as
    wide that JAX keeps: under ``jax_enable_x64`` a float32 point (a Flax module's
    parameters) becomes float64, as the samplers' step sizes and NumPyro's kernels are, so
    that no step changes a position's type; without it a float64 one (a state of a run made
    with it) becomes float32, as JAX would make it."""
    leaf = np.asarray(leaf)
    default = np.dtype(jnp.result_type(float))
    if not np.issubdtype(leaf.dtype, np.floating) or leaf.dtype.itemsize < default.itemsize:
        return leaf.astype(default)
    return leaf.astype(jax.dtypes.canonicalize_dtype(leaf.dtype), copy=False)


def _key(target: Target) -> tuple:
    """What identifies ``target.logdensity`` for :func:`infer.placement.traced_shapes`."""
    return ("logdensity", program_key(target))


def returns_scalar(logdensity_fn: Callable, point) -> bool:
    """Whether ``logdensity_fn(point)`` traces to a scalar."""
    try:
        out = jax.eval_shape(logdensity_fn, point)
    except Exception:  # noqa: BLE001 - any failure means "not a single point"
        return False
    return getattr(out, "shape", None) == ()


def _failure_hint(err: Exception, name: str) -> str:
    """What to do about ``err``, raised while tracing ``name``; empty where nothing is known."""
    if isinstance(
        err,
        jax.errors.ConcretizationTypeError
        | jax.errors.TracerBoolConversionError
        | jax.errors.TracerIntegerConversionError
        | jax.errors.TracerArrayConversionError,
    ):
        return (
            f"\n{name} is traced by JAX, so Python cannot branch on the position's values or "
            "convert them (`if x > 0:`, `float(x)`, `np.asarray(x)`): write "
            "`jnp.where(x > 0, a, b)` or `jax.lax.cond`, and `jnp` in place of `np`."
        )
    if isinstance(err, TypeError) and "must have integer" in str(err):  # x[position]
        return (
            "\nPositions are real numbers (every sampler here moves them continuously, and an "
            "integer init is made float): sum a discrete parameter out of the log density, or "
            "index with jnp.round(x).astype(int) where a float is meant as an index."
        )
    if name == "logdensity_fn" and isinstance(err, TypeError) and "positional argument" in str(err):
        return (
            " A target made with data= calls logdensity_fn(position, data); one without, "
            "logdensity_fn(position)."
        )
    return ""


def check_scalar_logdensity(
    logdensity_fn: Callable, point, name: str = "logdensity_fn", key=None
) -> None:
    """A ``ValueError`` (``TypeError`` for a non-float) unless ``logdensity_fn(point)`` traces
    to a scalar float, saying what it returned or how it failed; ``name`` is the function as
    the messages show it. ``key``: what identifies the function (see
    :func:`infer.placement.traced_shapes`), to trace it once per key and shapes."""
    shape_of = jax.tree.map(lambda leaf: tuple(leaf.shape), point)
    try:
        if key is None:
            out = jax.eval_shape(logdensity_fn, point)
        else:
            out = traced_shapes(key, logdensity_fn, point)
    except Exception as err:
        raise ValueError(
            f"{name} failed on a point shaped {shape_of}: {type(err).__name__}: "
            f"{str(err).rstrip('.')}.{_failure_hint(err, name)}"
        ) from err
    if not hasattr(out, "shape") or out.shape != ():
        got = f"shape {out.shape}" if hasattr(out, "shape") else f"a {type(out).__name__}"
        fix = (
            "Return the log density alone (compute anything else outside it)."
            if isinstance(out, tuple | list | dict)
            else "Sum the per-coordinate terms (e.g. jnp.sum(...))."
        )
        raise ValueError(
            f"{name} must return a scalar log density; it returned {got} for a "
            f"point shaped {shape_of}. {fix}"
        )
    if not jnp.issubdtype(out.dtype, jnp.floating) or jnp.dtype(out.dtype).itemsize < 4:
        raise TypeError(
            f"{name} must return a real floating-point log density of 32 or 64 bits; it "
            f"returned {out.dtype} for a point shaped {shape_of}. Compute it in floats "
            "(jnp.float32 or jnp.float64: 16 bits are too few for the accept/reject step), "
            "e.g. with .astype(jnp.float32) on the result or on integer data."
        )
