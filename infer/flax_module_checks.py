"""Checks of an NNX module before it becomes a target (:mod:`infer.flax_targets`): layers in
training mode are refused, and float state that is not an ``nnx.Param`` (held fixed, not
sampled) is named in a warning unless it is of a kind that is fixed by design."""

from __future__ import annotations

import warnings

import numpy as np

from infer.caller import INFER_FRAMES


def _iter_modules(module):
    """``(path, layer)`` of every layer (``nnx.iter_modules``; the method on older flax)."""
    from flax import nnx

    walk = getattr(nnx, "iter_modules", None)
    return walk(module) if walk is not None else module.iter_modules()


def refuse_training_mode(module) -> None:
    """A ``ValueError`` naming the layers that would draw noise or update statistics when
    called (Dropout, BatchNorm in training mode): the log density must be a fixed function."""
    from flax import nnx

    training = [
        ".".join(map(str, path)) or type(module).__name__
        for path, layer in _iter_modules(module)
        if (isinstance(layer, nnx.Dropout) and not layer.deterministic and layer.rate > 0)
        or (isinstance(layer, nnx.BatchNorm) and not layer.use_running_average)
    ]
    if training:
        raise ValueError(
            f"the module's layer(s) {', '.join(training)} are in training mode (Dropout "
            "draws noise, BatchNorm updates its statistics), so its log likelihood is no "
            "fixed function to sample: call module.eval() before Target.from_flax."
        )


def warn_of_float_state_held_fixed(others, label: str) -> None:
    """A ``UserWarning`` naming the float variables of ``others`` (the module's state other
    than its ``nnx.Param``s and RNG state) that are not batch statistics, caches or
    intermediates: a custom ``nnx.Variable`` of weights would be held at its value, unsampled."""
    from flax import nnx

    fixed_by_design = (nnx.BatchStat, nnx.Cache, nnx.Intermediate)
    held = [
        f"{'.'.join(map(str, path))} ({type(variable).__name__})"
        for path, variable in nnx.to_flat_state(others)
        if not isinstance(variable, fixed_by_design)
        and np.issubdtype(np.asarray(variable.get_value()).dtype, np.floating)
    ]
    if held:
        warnings.warn(
            f"{label}'s float state {', '.join(held)} is not an nnx.Param, so it is held fixed at "
            "its present value, not sampled. Declare it nnx.Param to sample it (it then gets the "
            "prior); this warning is silenced by warnings.filterwarnings('ignore', "
            "message='.*held fixed').",
            skip_file_prefixes=INFER_FRAMES,
        )
