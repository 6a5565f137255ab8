"""Is a log likelihood a sum over its examples? SGLD scales a minibatch's likelihood by
``N / B`` and LOO reads one term per example: both are right only when the likelihood of the
data is the sum of its examples' likelihoods (not their mean, and no term outside them).
"""

from __future__ import annotations

import warnings
from collections.abc import Callable

import jax
import jax.numpy as jnp
import numpy as np

from infer.caller import INFER_FRAMES
from infer.outside_values import WIDE_DTYPES, drop_compiled_copies

#: The relative difference below which a likelihood and the sum of its examples' terms are
#: taken as equal.
ROUND_OFF = 1e-4


class NotASum(ValueError):
    """A log likelihood is not the sum of its terms on each example alone."""


def per_example(loglik_fn: Callable, position, examples) -> jax.Array:
    """``(N,)``: ``loglik_fn(position, batch)`` on each example of ``examples`` (a pytree
    whose leaves hold the ``N`` examples on their first axis) as a batch of one."""

    def one(example):
        return loglik_fn(position, jax.tree.map(lambda leaf: leaf[None], example))

    return jax.vmap(one)(examples)


def check_sum_over_examples(
    loglik_fn: Callable, position, examples, whose: str, whole: float | None = None
) -> None:
    """A ``ValueError`` when ``loglik_fn(position, examples)`` is not the sum of its terms on
    each example alone, at ``position`` (evaluated once, op by op). ``whose``: the function's
    name in the message; ``whole``: its value on all the examples, if the caller has it."""
    whole = float(loglik_fn(position, examples)) if whole is None else float(whole)
    summed = float(jnp.sum(per_example(loglik_fn, position, examples)))
    if not np.isfinite(whole):
        return  # a non-finite start is refused by name elsewhere
    count = jax.tree.leaves(examples)[0].shape[0]
    if not np.isfinite(summed):
        raise NotASum(
            f"{whose} is not a sum over the examples: on {count} examples together it is "
            f"{whole:.6g}, but on some example alone it is NaN or infinite, so it depends on "
            "the batch as a whole (statistics of the batch, such as standardising by its mean "
            "and sd?). Compute such statistics once, from all the data, outside the "
            "likelihood."
        )
    # float32 round-off of sums over the examples (whatever the parameters' dtype: a layer
    # may compute in float32); a mean or a stray term is off by far more
    if not _apart(whole, summed):
        return
    failure = _sum_in_float64(loglik_fn, position, examples, whose)
    if failure is not None:
        raise NotASum(
            f"{whose} is not a sum over the examples: on {count} examples together it is "
            f"{whole:.6g}, and its values on each example alone sum to {summed:.6g} (a mean "
            "over the examples, or a term not tied to one?). Minibatches scale a batch's "
            "likelihood by N / B and LOO reads one term per example, so both need the sum: "
            "write it as jnp.sum(...) over the examples' log likelihoods, with anything else "
            f"in the prior.{failure}"
        )


def _apart(whole: float, summed: float) -> bool:
    """Whether a likelihood's value and the sum of its terms differ by more than round-off."""
    return abs(whole - summed) > ROUND_OFF * (1.0 + abs(whole) + abs(summed))


def _sum_in_float64(loglik_fn: Callable, position, examples, whose: str) -> str | None:
    """``None`` when ``loglik_fn``, evaluated again in float64 (its float32 inputs widened,
    64-bit floats on while it runs), is the sum of its terms: then its float32 sums cancelled
    (terms of millions summing to hundreds), which a warning says. Else ``""`` (not a sum, or
    nothing to widen), or why it could not be evaluated so (for the message)."""
    if not any(_float32(leaf) for leaf in jax.tree.leaves((position, examples))):
        return ""  # nothing to widen (float32 parameters stay so under x64: Flax's)
    wide = lambda leaf: leaf.astype(jnp.float64) if _float32(leaf) else leaf  # noqa: E731
    was_wide, dropped = bool(jax.config.jax_enable_x64), False

    def evaluate():
        position64, examples64 = jax.tree.map(wide, (position, examples))
        whole = float(loglik_fn(position64, examples64))
        summed = float(jnp.sum(per_example(loglik_fn, position64, examples64)))
        return whole, summed, position64, examples64

    # JAX keeps the copy it converted of a 64-bit NumPy constant the function reads (through
    # any helper, method or module) and hands it to a trace in the other mode, which XLA
    # refuses: dropped, with every compiled program, where the check met one or made one
    try:
        with jax.enable_x64(True):
            stale = False
            try:
                whole, summed, position64, examples64 = evaluate()
            except Exception as error:  # noqa: BLE001 - a 32-bit copy's, or the user's
                if was_wide or not _from_a_copy_of_other_width(error):
                    raise
                stale = True
            if stale:  # out of the except: its traceback held the stale copy alive
                drop_compiled_copies()
                dropped = True
                whole, summed, position64, examples64 = evaluate()
            if not was_wide and not dropped:
                dropped = _reads_wide_constants(loglik_fn, position64, examples64)
    except Exception as error:  # noqa: BLE001 - the user's function may fix its dtypes
        first_line = (str(error).strip().splitlines() or [""])[0]
        return (
            f" (Evaluated again in float64, to tell float32 round-off, it failed: "
            f"{type(error).__name__}: {first_line[:200]})"
        )
    finally:
        if dropped:  # the 64-bit copies this check made
            drop_compiled_copies()
    if not (np.isfinite(whole) and np.isfinite(summed)) or _apart(whole, summed):
        return ""
    warnings.warn(
        f"{whose} is a sum over the examples, but in float32 it loses its last digits: its "
        "terms cancel (sums of large values that nearly balance). On a batch its value and "
        "the sum of its examples' values differ by more than round-off in float32, and agree "
        "in float64. Samplers read a log density rounded so. Sum each example's log likelihood "
        "once (jnp.sum of one array of per-example terms), or compute it in float64 "
        "(JAX_ENABLE_X64=1, and float64 parameters: a Flax layer's param_dtype).",
        UserWarning,
        skip_file_prefixes=INFER_FRAMES,
    )
    return None


#: What XLA and JAX say of a program handed a constant's copy of the other width.
_OTHER_WIDTH = ("Cannot lower jaxpr", "RuntimeProgramInputMismatch", "same dtypes")


def _from_a_copy_of_other_width(error: Exception) -> bool:
    return any(words in str(error) for words in _OTHER_WIDTH)


def _reads_wide_constants(loglik_fn: Callable, position, examples) -> bool:
    """Whether tracing ``loglik_fn`` (64-bit floats on) takes a 64-bit NumPy array as a
    constant, wherever the function reads it from: JAX has then made a 64-bit copy of it."""
    constants = jax.make_jaxpr(loglik_fn)(position, examples).consts
    return any(isinstance(c, np.ndarray) and str(c.dtype) in WIDE_DTYPES for c in constants)


def _float32(leaf) -> bool:
    return hasattr(leaf, "dtype") and leaf.dtype == np.float32


#: Examples on which :func:`not_a_sum` checks the likelihood when nothing needs it whole.
SUM_CHECKED = 16


def not_a_sum(loglik, init, data, pointwise: bool) -> str:
    """Why the likelihood is not a sum over the data's examples, or ``""``: on all of them for
    ``pointwise`` (which refuses it), else on the first :data:`SUM_CHECKED` with a warning (a
    mean would raise the likelihood to the power 1 / N; a time series' likelihood is not a
    sum either, and only SGLD and pointwise need one)."""
    examples = data if pointwise else jax.tree.map(lambda leaf: leaf[:SUM_CHECKED], data)
    try:
        check_sum_over_examples(loglik, init, examples, "log_likelihood_fn")
    except NotASum as err:
        if pointwise:
            raise
        warnings.warn(
            f"{err} (If the examples are not independent, as in a time series, the likelihood "
            "need not be a sum: then ignore this; infer.sgld and pointwise=True need one.)",
            UserWarning,
            skip_file_prefixes=INFER_FRAMES,
        )
        return f"{err}"
    except Exception as err:  # noqa: BLE001 - the user's function, on a batch of one
        if pointwise:
            raise
        return (
            f"log_likelihood_fn fails on a batch of one example ({type(err).__name__}: {err}); "
            "infer.sgld and pointwise=True need it to work on any batch of the examples."
        )
    return ""
