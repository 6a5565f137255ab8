"""A Flax NNX module's parameters as a target: Bayesian neural networks.

``nnx.split(module, nnx.Param, ...)`` separates the parameters, which are sampled, from the
rest of the module's state (batch statistics, counters), which is held fixed. The position is
the parameters as a pure nested dict (``nnx.to_pure_dict``: ``{"hidden": {"kernel": ...}}``),
or one flat vector (``position="flat"``). The log density is

    log p(params) + log_likelihood_fn(model, data)

where ``model`` is the module rebuilt at ``params`` (``nnx.merge``) and the prior is, by
default, an independent ``N(0, scale^2)`` on every parameter (the normalising constant
included, so the log density is the log joint density).

The data and the fixed state are the target's ``data``: arguments of the compiled programs.
The log density is built once per module structure (its ``GraphDef``), parameter shapes,
likelihood function, prior and position kind, so a second target made from a module of the
same structure with same-shaped data reuses the programs compiled for the first.

When every data leaf has the same leading axis (the examples), the target also declares a
minibatch log likelihood in ``notes["minibatch"]``, which :func:`infer.sgld` reads: the
likelihood is then assumed to be a sum over that axis, so that ``N / B`` times the log
likelihood of ``B`` examples is an unbiased estimate of the whole.
"""

from __future__ import annotations

import collections
import functools
import math
import warnings
from collections.abc import Callable
from typing import NamedTuple

import jax
import jax.numpy as jnp
import numpy as np
from jax.flatten_util import ravel_pytree

from infer import validation
from infer.base import key_name
from infer.caller import INFER_FRAMES
from infer.flax_model import FlaxModel
from infer.flax_module_checks import (
    check_stateless,
    refuse_training_mode,
    warn_of_float_state_held_fixed,
)
from infer.outside_values import outside_values
from infer.per_example import not_a_sum

POSITIONS = ("tree", "flat")
_FUNCTIONS: collections.OrderedDict = collections.OrderedDict()
_MAX_MODELS = 64


class FlaxParts(NamedTuple):
    """What :meth:`infer.Target.from_flax` builds a target from."""

    logdensity_fn: Callable
    init: object
    data: tuple
    constrain_fn: Callable | None
    name: str
    description: str
    notes: dict
    loglik_fn: Callable | None = None  # (position, (data, rest)) -> (num_data,), pointwise


class _Functions(NamedTuple):
    logdensity_fn: Callable  # (position, (data, rest)) -> scalar
    logprior_fn: Callable  # (position) -> scalar
    loglik_fn: Callable  # (position, (data, rest)) -> scalar
    pointwise_fn: Callable  # (position, (data, rest)) -> (num_data,), one term per example
    constrain_fn: Callable | None  # (position, (data, rest)) -> dict
    unravel: Callable | None  # flat position -> params, or None for "tree"


def flax_parts(
    module,
    log_likelihood_fn: Callable,
    data,
    prior=1.0,
    position: str = "tree",
    name=None,
    pointwise: bool = False,
) -> FlaxParts:
    """The parts of a target over ``module``'s parameters (see the module docstring).

    Raises:
        TypeError: ``module`` is not an ``nnx.Module``, ``log_likelihood_fn`` or a prior is
            not callable, or a data leaf is not an array.
        ValueError: the module has no ``nnx.Param``, a prior scale is not positive and
            finite, ``position`` is unknown, the likelihood or prior does not return a
            scalar, or ``pointwise`` is asked for data without one axis of examples.
    """
    from flax import nnx

    if not isinstance(module, nnx.Module):
        raise TypeError(
            f"module must be a Flax NNX module (an instance of flax.nnx.Module); got "
            f"{type(module).__name__}. A Linen module converts with flax.nnx.bridge.ToNNX "
            "(then call it in log_likelihood_fn as model(x, rngs=jax.random.key(0)): called "
            "without rngs=, it draws a key from its own nnx.Rngs, which cannot be traced)."
        )
    if not callable(log_likelihood_fn):
        raise TypeError(
            "log_likelihood_fn must be callable log_likelihood_fn(model, data) -> scalar, the "
            f"log likelihood of all the data; got {type(log_likelihood_fn).__name__}."
        )
    validation.one_of("position", position, POSITIONS, "'tree': the parameter pytree.")
    validation.flag("pointwise", pointwise)
    prior_key = check_prior(prior)
    refuse_training_mode(module)
    graphdef, state, rngs, others = nnx.split(module, nnx.Param, nnx.RngState, ...)
    warn_of_float_state_held_fixed(others, type(module).__name__)
    rest = nnx.merge_state(_unused_rngs(rngs), others)
    pure = jax.tree.map(np.asarray, nnx.to_pure_dict(state))
    if not jax.tree.leaves(pure):
        raise ValueError(f"{type(module).__name__} has no nnx.Param: there is nothing to sample.")
    names = _names(state, pure)
    _refuse_non_float(names, jax.tree.leaves(pure))
    rest = jax.tree.map(jnp.asarray, rest)
    data = None if data is None else _as_data(data)
    shapes = tuple((leaf.shape, str(leaf.dtype)) for leaf in jax.tree.leaves(pure))
    read = (outside_values(log_likelihood_fn), outside_values(prior) if callable(prior) else ())
    key = (graphdef, log_likelihood_fn, prior_key, position, shapes, read)
    label = type(module).__name__
    fns = _functions(
        key, lambda: _build(graphdef, state, pure, log_likelihood_fn, prior_key, position, label)
    )
    num_params = sum(leaf.size for leaf in jax.tree.leaves(pure))
    model = FlaxModel(
        graphdef,
        jax.tree.structure(state),
        jax.tree.structure(pure),
        rest,
        names,
        fns.unravel,
        num_params,
        tuple(tuple(np.shape(leaf)) for leaf in jax.tree.leaves(pure)),
    )
    init = model.position(pure)
    _check_scalars(fns, init, data, rest, callable(prior))
    notes = _per_example_notes(model, fns, init, data, rest, pointwise)
    scale = f"N(0, {prior_key}^2)" if not callable(prior) else _named(prior)
    return FlaxParts(
        fns.logdensity_fn,
        init,
        (data, rest),
        fns.constrain_fn,
        name or type(module).__name__,
        f"{model.num_params} parameters of {type(module).__name__}, prior {scale}",
        notes,
        fns.pointwise_fn if pointwise else None,
    )


def _per_example_notes(model, fns: _Functions, init, data, rest, pointwise: bool) -> Notes:
    """The target's notes: the module's helpers, and where the data hold one axis of
    examples the minibatch likelihood for SGLD (else why not); for ``pointwise``, the check
    that the likelihood is a sum over those examples."""
    notes = Notes(flax=model)
    num_data = _num_data(data)
    shapes = [tuple(np.shape(leaf)) for leaf in jax.tree.leaves(data)]
    no_examples = (
        f"the data's leaves (shapes {shapes}) do not all hold the examples on one first axis"
    )
    fix = "Keep only per-example arrays in data; put constants in the module or the function."
    if not shapes:  # the likelihood reads its data from outside
        no_examples = "no data= was given (the likelihood reads its data from elsewhere)"
        fix = "Pass the examples as data=(x, y), read as log_likelihood_fn(module, data)."
    loglik = functools.partial(_with_rest, fns.loglik_fn, rest)
    why_not_a_sum = None if num_data is None else not_a_sum(loglik, init, data, pointwise)
    if why_not_a_sum:
        notes.missing["minibatch"] = why_not_a_sum
    elif num_data is not None:
        notes["minibatch"] = minibatch(fns, rest, data, num_data)
    else:
        notes.missing["minibatch"] = (
            f"{no_examples}, so there is no minibatch likelihood for infer.sgld. {fix}"
        )
    if pointwise and num_data is None:
        raise ValueError(
            f"pointwise=True gives each example's log likelihood, but {no_examples}. {fix}"
        )
    return notes


def _named(prior) -> str:
    name = getattr(prior, "__name__", "")
    return f"from {name}()" if name.isidentifier() else "of your own"


def _with_rest(loglik_fn, rest, position, examples):
    """``loglik_fn`` of a batch of the user's data, the module's fixed state added."""
    return loglik_fn(position, (examples, rest))


def check_prior(prior):
    """A hashable key for ``prior``: the scale of the default Gaussian, or the callable."""
    if all(hasattr(prior, name) for name in ("log_prob", "sample", "support")):  # NumPyro's
        raise TypeError(
            f"prior must be a positive number (the scale of an independent Gaussian prior on "
            f"every parameter) or a callable log_prior(params) -> scalar; got the distribution "
            f"{type(prior).__name__}. For that prior on every parameter pass prior=lambda "
            "params: sum(d.log_prob(leaf).sum() for leaf in jax.tree.leaves(params)), with d "
            "your distribution."
        )
    if callable(prior):
        return prior
    if not validation.is_real_scalar(prior):
        raise TypeError(
            "prior must be a positive number (the scale of an independent Gaussian prior on "
            "every parameter) or a callable log_prior(params) -> scalar; got "
            f"{type(prior).__name__}."
        )
    return validation.positive_float("prior", float(prior), "It is the prior's standard deviation.")


def minibatch(fns: _Functions, rest, data, num_data: int) -> dict:
    """``notes["minibatch"]``: the log likelihood of a batch (the fixed state bound), the log
    prior, the data to subsample and their number, as :func:`infer.sgld` takes them."""

    def loglik_fn(position, batch):
        return fns.loglik_fn(position, (batch, rest))

    return {
        "loglik_fn": loglik_fn,
        "logprior_fn": fns.logprior_fn,
        "data": data,
        "num_data": num_data,
    }


def _as_data(data):
    return jax.tree.map(jnp.asarray, validation.checked_data(data, "log_likelihood_fn"))


class Notes(dict):
    """A Flax target's ``notes``; a missing entry with a known reason (``missing``) says it."""

    def __init__(self, **entries):
        super().__init__(**entries)
        self.missing: dict[str, str] = {}

    def __missing__(self, key):
        if key in self.missing:
            raise KeyError(f"{key!r}: {self.missing[key]}")
        raise KeyError(key)


def _num_data(data) -> int | None:
    """The common leading size of the data's leaves, or ``None`` when there is none."""
    leaves = jax.tree.leaves(data)
    sizes = {leaf.shape[0] if leaf.ndim else None for leaf in leaves}
    if len(sizes) != 1 or None in sizes:
        return None
    return int(sizes.pop())


def _names(state, pure) -> tuple[str, ...]:
    """``"a.b.kernel"`` for each parameter array, in leaf order, checking that the
    ``nnx.State`` and its pure dict list their leaves alike."""
    state_paths = [path for path, _ in jax.tree_util.tree_flatten_with_path(state)[0]]
    pure_paths = [path for path, _ in jax.tree_util.tree_flatten_with_path(pure)[0]]
    names = tuple(".".join(key_name(k) for k in path) for path in pure_paths)
    state_names = tuple(
        ".".join(key_name(k) for k in path if not isinstance(k, jax.tree_util.GetAttrKey))
        for path in state_paths
    )
    if names != state_names:  # a Flax layout we do not know: fail here, not in a program
        raise ValueError(f"unexpected nnx.State layout: {state_names} against {names}.")
    return names


def _refuse_non_float(names, leaves) -> None:
    """A ``TypeError`` naming the parameters a sampler cannot move: integer or boolean ones
    (noise would be added and truncated away) and 16-bit floats (too few bits)."""
    wrong = [
        f"{name} ({leaf.dtype})"
        for name, leaf in zip(names, leaves, strict=True)
        if not jnp.issubdtype(leaf.dtype, jnp.floating) or leaf.dtype.itemsize < 4
    ]
    if wrong:
        raise TypeError(
            f"the module's nnx.Param must be float32 or float64 arrays to be sampled; got "
            f"{', '.join(wrong)}. Hold integer values fixed as nnx.Variable instead of "
            "nnx.Param; build float layers with param_dtype=jnp.float32."
        )


def _functions(key, build: Callable) -> _Functions:
    """The functions of ``key``, built once (the same objects: programs are found again)."""
    try:
        hash(key)
    except TypeError:
        return build()
    if key not in _FUNCTIONS:
        _FUNCTIONS[key] = build()
        while len(_FUNCTIONS) > _MAX_MODELS:
            _FUNCTIONS.popitem(last=False)
    _FUNCTIONS.move_to_end(key)
    return _FUNCTIONS[key]


def _build(graphdef, state, pure, log_likelihood_fn, prior, position, label) -> _Functions:
    from flax import nnx

    state_def = jax.tree.structure(state)
    flat_unravel = ravel_pytree(pure)[1] if position == "flat" else None

    def unravel(position):
        return position if flat_unravel is None else flat_unravel(position)

    def logprior_fn(position):
        params = unravel(position)
        if callable(prior):
            return prior(params)
        leaves = jax.tree.leaves(params)
        size = sum(leaf.size for leaf in leaves)
        squares = sum(jnp.sum(jnp.square(leaf)) for leaf in leaves)
        return -0.5 * squares / prior**2 - size * (math.log(prior) + 0.5 * math.log(2 * math.pi))

    def loglik_fn(position, data):
        user_data, rest = data
        params = jax.tree.unflatten(state_def, jax.tree.leaves(unravel(position)))
        return log_likelihood_fn(nnx.merge(graphdef, params, rest), user_data)

    def logdensity_fn(position, data):
        return logprior_fn(position) + loglik_fn(position, data)

    def pointwise_fn(position, data):
        user_data, rest = data

        def one(example):  # the likelihood of a batch of one example
            return loglik_fn(position, (jax.tree.map(lambda leaf: leaf[None], example), rest))

        return jax.vmap(one)(user_data)

    constrain_fn = None
    if position == "flat":
        names = _names(state, pure)

        def constrain_fn(position, data):
            leaves = jax.tree.leaves(unravel(position))
            return dict(zip(names, leaves, strict=True))

    logdensity_fn.__qualname__ = f"{label}.logdensity"
    return _Functions(
        logdensity_fn, logprior_fn, loglik_fn, pointwise_fn, constrain_fn, flat_unravel
    )


def _unused_rngs(rngs):
    """The RNG state with every key and count set to one value: no layer draws from it in a
    target (training mode and state updates are refused), so modules that differ only there
    make the same target (a resume, a shared program)."""

    def fixed(leaf):
        if jax.dtypes.issubdtype(leaf.dtype, jax.dtypes.prng_key):
            data = jnp.zeros_like(jax.random.key_data(leaf))
            return jax.random.wrap_key_data(data, impl=jax.random.key_impl(leaf))
        return jnp.zeros_like(leaf)

    return jax.tree.map(fixed, rngs)


def _check_scalars(fns: _Functions, init, data, rest, own_prior: bool) -> None:
    """A ``ValueError`` unless the likelihood and the prior give scalars (traced abstractly:
    nothing runs, nothing compiles); ``data``: the user's, ``rest``: the module's other state.
    Each check: the call as the user wrote it, the function, its arguments, what it returns,
    and how it is called (for a call that fails)."""
    given = (
        "data=None: pass data= (or close over them)"
        if data is None
        else f"data shaped {jax.tree.map(lambda leaf: tuple(getattr(leaf, 'shape', ())), data)}"
    )
    checks = [
        (
            "log_likelihood_fn(model, data)",
            fns.loglik_fn,
            (init, (data, rest)),
            "the log likelihood summed over the data",
            f"with the module (its parameters set) and {given}",
            "Sum the per-example terms (jnp.sum).",
        )
    ]
    if own_prior:
        checks.append(
            (
                "prior(params)",
                fns.logprior_fn,
                (init,),
                "a log prior",
                "with the module's parameters as a nested dict (nnx.to_pure_dict)",
                "Sum the terms of every parameter (e.g. over jax.tree.leaves(params)).",
            )
        )
    programs = []
    for call, fn, args, returns, called, how_to_sum in checks:
        try:
            program, out = jax.make_jaxpr(fn, return_shape=True)(*args)
        except Exception as err:  # noqa: BLE001 - the user's function, any failure
            raise ValueError(
                f"{call} failed when traced: {type(err).__name__}: {str(err).rstrip('.')}. "
                f"It is called as {call} {called}, and returns a scalar."
            ) from err
        shape = getattr(out, "shape", None)
        dtype = getattr(out, "dtype", None)
        if shape != () or not jnp.issubdtype(dtype, jnp.floating):
            fix = how_to_sum if shape != () else "Return a float."
            raise ValueError(
                f"{call} must return a scalar float, {returns}; got {type(out).__name__} with "
                f"shape {shape} and dtype {dtype}. {fix}"
            )
        programs.append(program)
    check_stateless(fns.logdensity_fn, init, (data, rest))
    if not _reads_parameters(programs[0].jaxpr, len(jax.tree.leaves(init))):
        warnings.warn(
            "log_likelihood_fn(model, data) does not depend on the module's parameters, so "
            "the posterior is the prior: does it call another module (one from outside) "
            "rather than the one it is given as its first argument?",
            UserWarning,
            skip_file_prefixes=INFER_FRAMES,
        )


def _reads_parameters(program, num_parameters: int) -> bool:
    """Whether a traced program's value depends on its first ``num_parameters`` inputs (the
    position's leaves), dead code left out (an unused unflattening of the parameters, say)."""
    from jax.extend.core import Var

    needed = {v for v in program.outvars if isinstance(v, Var)}
    for equation in reversed(program.eqns):
        if any(v in needed for v in equation.outvars):
            needed.update(v for v in equation.invars if isinstance(v, Var))
    return any(v in needed for v in program.invars[:num_parameters])
