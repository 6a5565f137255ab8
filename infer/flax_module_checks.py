"""Checks of an NNX module before it becomes a target (:mod:`infer.flax_targets`): layers in
training mode are refused, and float state that is not an ``nnx.Param`` (held fixed, not
sampled) is named in a warning unless it is of a kind that is fixed by design."""

from __future__ import annotations

import warnings

import jax
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


def check_stateless(logdensity_fn, position, data) -> None:
    """A ``ValueError`` for a module that updates its own state when called (a counter, a
    key drawn from its own ``nnx.Rngs``), found in ``logdensity_fn(position, data)``:
    samplers take the log density's gradient, inside which Flax refuses that update (traced
    abstractly, before any run)."""
    from flax.errors import TraceContextError

    try:
        jax.eval_shape(jax.grad(logdensity_fn), position, data)
    except TraceContextError as err:
        if "Rng" in str(err):  # a key drawn from the module's own nnx.Rngs
            raise ValueError(
                "the module draws a random key from its own nnx.Rngs when called, which the "
                "samplers' gradients cannot trace: call module.eval() for layers like Dropout, "
                "and call a Linen module wrapped by nnx.bridge.ToNNX (which draws one on every "
                "call) as model(x, rngs=jax.random.key(0)) in log_likelihood_fn. "
                f"Flax: {err}"
            ) from err
        raise ValueError(
            "the module updates its own state when called (an nnx.Variable it assigns to, "
            "such as a counter or batch statistics in training mode), which the samplers' "
            "gradients cannot trace: keep such updates out of log_likelihood_fn (call "
            f"module.eval(), or drop the update). Flax: {err}"
        ) from err
    except Exception:  # noqa: BLE001 - no gradient (a while_loop): gradient-free samplers run
        pass
