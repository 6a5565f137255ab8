"""Why a NumPyro model fails on its arguments, said in the user's terms: lists or pandas
objects, a plate named like a site, NaN in the data, Python or NumPy code on traced data or
samples, a subsampled plate; and the model's sites traced without running anything."""

from __future__ import annotations

from collections.abc import Callable

import jax
import numpy as np

from infer import validation
from infer.numpyro_data import (
    integer_scalar_arguments,
    lists_of_numbers,
    nonfinite_arguments,
    raise_naming_arguments,
)


def abstract_trace(model: Callable, args, kwargs) -> dict:
    """The model's sites, traced without running anything (no eager computation to
    compile): only their kinds, names and distributions' supports are read."""
    from numpyro import handlers

    sites: dict = {}

    def run():
        sites.update(handlers.trace(handlers.seed(model, rng_seed=0)).get_trace(*args, **kwargs))
        return 0

    jax.eval_shape(run)
    return sites


def explain_failure(model: Callable, args, kwargs, err: Exception, traced: str) -> None:
    """Raise the reason the model failed on its arguments, where one is found: lists or
    pandas objects, a plate named like a site, NaN in an array argument, or what
    :func:`_explain_trace_failure` finds."""
    lists = lists_of_numbers(model, args, kwargs)
    if lists:  # an observation passes NumPyro's trace, and fails in the arithmetic after it
        raise TypeError(
            f"the model's argument(s) {', '.join(lists)} are Python lists or tuples of "
            "numbers, or pandas objects, which the model's arithmetic does not take as "
            "arrays: pass np.asarray(...) of them (.to_numpy() of a pandas Series). Calling "
            f"the model raised {validation.error_line(err)}"
        ) from err
    refuse_plates_named_like_sites(model, args, kwargs)
    refuse_nonfinite_arguments(model, args, kwargs, err)
    _explain_trace_failure(model, args, kwargs, err, traced)


def refuse_plates_named_like_sites(model: Callable, args, kwargs) -> None:
    """A plate named like a sample site replaces that site in NumPyro's trace (the model then
    seems to have no latent site, or fails inside NumPyro): name the clash."""
    from numpyro import handlers
    from numpyro.primitives import Messenger

    kinds: dict = {}

    class Record(Messenger):
        def process_message(self, msg):
            kinds.setdefault(msg["name"], set()).add(msg["type"])

    def run():
        with Record():
            handlers.seed(model, rng_seed=0)(*args, **kwargs)
        return 0

    try:
        jax.eval_shape(run)
    except Exception:
        pass  # the clash, if any, was recorded before the failure
    if clashes := [name for name, kind in kinds.items() if {"plate", "sample"} <= kind]:
        raise ValueError(
            f"the NumPyro model names a plate and a sample site alike: {clashes}. NumPyro "
            "keeps one entry per name, so the plate hides the site. Give each plate a name "
            "of its own (e.g. 'schools' for the plate of the site 'school')."
        )


def refuse_nonfinite_arguments(model: Callable, args, kwargs, err: Exception) -> None:
    """When the model fails on its data and some array argument holds NaN or inf, say so
    (NumPyro's "got invalid loc parameter" names neither)."""
    if named := nonfinite_arguments(model, args, kwargs):
        raise ValueError(
            f"the model's array argument(s) {', '.join(named)} hold NaN or inf values, and "
            f"the model fails on them ({validation.error_line(err)}). "
            "Drop or fill them (observations may be masked: numpyro.handlers.mask)."
        ) from err


def _explain_trace_failure(model: Callable, args, kwargs, err: Exception, traced: str) -> None:
    """When the model runs on the arguments as given but not traced, raise the reason: a
    subsampled plate, or (for JAX's tracer errors only) Python or NumPy code on ``traced``
    values, ``"data"`` (the array arguments) or ``"samples"`` (the values the model
    samples), or the arguments' shapes where it fails as given too; else return."""
    from numpyro import handlers

    try:
        trace = handlers.trace(handlers.seed(model, rng_seed=0)).get_trace(*args, **kwargs)
    except Exception:  # it fails as given too: its error, with the arguments' shapes
        raise_naming_arguments(model, args, kwargs, err)
        return  # other kinds of error (a KeyError of the model's own) stand as they are
    subsampled = [
        f"{name} (size {site['args'][0]}, subsample_size {site['args'][1]})"
        for name, site in trace.items()
        if site["type"] == "plate" and site["args"][1] not in (None, site["args"][0])
    ]
    if subsampled:
        raise ValueError(
            f"the model subsamples its plate(s) {', '.join(subsampled)}: the samplers of "
            "infer.sample evaluate the full log density. Leave subsample_size out, or use "
            "infer.sgld, which takes minibatches of the data itself."
        ) from err
    tracer_errors = (
        jax.errors.ConcretizationTypeError,
        jax.errors.TracerArrayConversionError,
        jax.errors.TracerIntegerConversionError,
    )
    if not isinstance(err, tracer_errors):
        return
    cause = f"({validation.error_line(err)})"
    if traced == "samples" and _fails_on_jax_arrays_alone(model, args, kwargs):
        traced = "data"  # int(g.max()) of a jnp argument is traced too: the data's fault
    if traced == "data" and (sizes := integer_scalar_arguments(model, args, kwargs)):
        raise TypeError(
            f"the model's argument(s) {', '.join(sizes)} are 0-d integer arrays, and the "
            f"model fails on them traced {cause}. Target.from_numpyro passes array "
            "arguments as data into one compiled program, where a size (a plate's, an "
            f"array's) cannot come from one: pass {', '.join(f'int({s})' for s in sizes)}."
        ) from err
    if traced == "data":
        raise TypeError(
            f"the model runs on its arguments as concrete arrays but not traced {cause}. "
            "Target.from_numpyro passes array arguments as data into one compiled program for "
            "any data of the same shapes, so Python control flow or NumPy calls on them "
            "(int(g.max()), np.isnan(y)) fail there. Use jnp operations on array arguments, "
            "and pass values that set shapes (a number of groups) as Python ints."
        ) from err
    raise TypeError(
        f"the model runs eagerly but not traced {cause}: Python control flow or NumPy calls on "
        "the values it samples (if sigma > 1, float(mu), np.exp(mu)) cannot run in a "
        "compiled program. Use jnp operations (jnp.where for a branch)."
    ) from err


def _fails_on_jax_arrays_alone(model: Callable, args, kwargs) -> bool:
    """Whether the model's abstract trace fails with its JAX array arguments and passes with
    them as NumPy arrays: Python or NumPy code on the data, not on the values it samples."""
    leaves = jax.tree.leaves((args, kwargs))
    if not any(isinstance(leaf, jax.Array) for leaf in leaves):
        return False
    as_numpy = jax.tree.map(
        lambda leaf: np.asarray(leaf) if isinstance(leaf, jax.Array) else leaf, (args, kwargs)
    )
    try:
        abstract_trace(model, *as_numpy)
    except Exception:  # noqa: BLE001 - it fails on NumPy data too: not the data alone
        return False
    return True


def outside_support(model: Callable, args, kwargs, shown: int = 3) -> str:
    """The observed values outside their likelihood's support, as ``y[7] = -1 (Poisson)``
    (at most ``shown`` per site), at one draw of the prior (a support may depend on the
    parameters); ``""`` when none is, or the model cannot be run so."""
    from numpyro import handlers
    from numpyro.distributions import MaskedDistribution

    try:
        with handlers.block(), handlers.trace() as trace, handlers.seed(rng_seed=0):
            model(*args, **kwargs)
    except Exception:  # noqa: BLE001 - what is said is a hint; the error is raised anyway
        return ""
    found = []
    for name, site in trace.items():
        if site["type"] != "sample" or not site["is_observed"]:
            continue
        fn, value = site["fn"], np.asarray(site["value"])
        counted = np.ones(value.shape, bool)  # entries a mask leaves out are no cause
        try:
            while isinstance(fn, MaskedDistribution):
                counted = counted & np.broadcast_to(np.asarray(fn._mask, bool), value.shape)
                fn = fn.base_dist
            if site.get("mask") is not None:
                counted = counted & np.broadcast_to(np.asarray(site["mask"], bool), value.shape)
            inside = np.asarray(fn.support(site["value"]), bool)
        except Exception:  # noqa: BLE001 - a support that cannot be checked elementwise
            continue
        if inside.shape != value.shape or (inside | ~counted).all():
            continue
        where = np.argwhere(~inside & counted)
        entries = [
            f"{name}[{', '.join(map(str, index))}] = {value[tuple(index)]:g}"
            if value.ndim
            else f"{name} = {value:g}"
            for index in where[:shown]
        ]
        more = f" and {len(where) - shown} more" if len(where) > shown else ""
        found.append(f"{', '.join(entries)}{more} ({type(fn).__name__})")
    return "; ".join(found)
