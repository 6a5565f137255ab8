"""Why a sampler's kernel failed to trace, in the words of its protocol (:class:`infer.Kernel`):
run only after tracing the run's program failed, so a kernel that works pays nothing; and the
check of its info fields' names and kinds, made while the run's program is traced."""

from __future__ import annotations

import jax
import numpy as np

from infer import validation
from infer.draws_checks import check_dims_fit
from infer.result import STAT_NAMES

GUIDE = "See infer.Kernel and docs/writing-a-sampler.md."


def explain_kernel_failure(sampler, logdensity_fn, example) -> None:
    """Raise a ``TypeError`` naming the first way ``sampler``'s kernel breaks the protocol
    at one chain's ``example`` position (shapes only, through ``jax.eval_shape``); return if
    none is found (the failure lies elsewhere: in the log density itself, or its gradient
    for a sampler that uses one, whose own error then stands)."""
    pieces = [logdensity_fn]
    if getattr(sampler, "uses_gradients", False):
        pieces.append(jax.grad(logdensity_fn))
    for piece in pieces:
        try:
            jax.eval_shape(piece, example)
        except Exception:  # the target's fault, not the kernel's: JAX's error says more
            return
    kernel = sampler.build(logdensity_fn, 0)
    owner = type(sampler).__name__

    def fail(problem: str):
        raise KernelProtocolError(f"{owner}'s kernel: {problem}. {GUIDE}") from None

    state = _shapes(kernel.init, (example,), fail, "init(position)")
    missing = [name for name in ("position", "logdensity") if not _has(state, name)]
    if missing:
        as_keys = isinstance(state, dict) and all(name in state for name in missing)
        fail(
            f"init(position) returned a {type(state).__name__} "
            + (
                f"with {' and '.join(missing)} as keys, not attributes"
                if as_keys
                else f"without {' or '.join(missing)}"
            )
            + ": a state needs the attributes position and logdensity (a NamedTuple with "
            "those fields works)"
        )
    _check_classes_outlive_build(sampler, logdensity_fn, example, state, fail)
    shape = getattr(_value(state, "logdensity"), "shape", ())  # () when it is a property
    if shape != ():
        fail(
            f"init(position) returned a state whose logdensity has shape {shape}; it must be "
            "one scalar per chain"
        )
    params = _shapes(kernel.params, (example,), fail, "params(position)")
    key = jax.eval_shape(lambda: jax.random.key(0))
    out = _shapes(kernel.step, (key, state, params), fail, "step(rng_key, state, params)")
    if _has(out, "position") and _has(out, "logdensity"):
        fail("step(rng_key, state, params) returned the state alone; return (state, info)")
    if not (isinstance(out, tuple) and len(out) == 2):
        fail(
            f"step(rng_key, state, params) must return (state, info); it returned "
            f"{type(out).__name__}"
        )
    new_state, info = out
    if problem := _info_kind_problem(info):
        fail(problem)
    before, after = _described(state), _described(new_state)
    if before != after:
        fail(
            f"step changed the state's structure, shapes or dtypes, from {before} to {after}: "
            "it must return a state like init's (the chains run in a loop)"
        )
    for field in READ_FIELDS:  # the info fields the driver reads, one scalar per step
        value = info.get(field) if isinstance(info, dict) else _value(info, field)
        shape = getattr(value, "shape", ())
        if shape != ():
            fail(
                f"step's info.{field} has shape {shape}; infer reads it as one scalar per "
                "step (other info fields may have any shape)"
            )
    cost = _shapes(kernel.cost, (info,), fail, "cost(info)")
    try:
        checked_cost(cost)
    except TypeError as err:
        fail(str(err))
    if kernel.adaptation is not None:
        _check_adaptation(kernel.adaptation, params, state, info, fail)


#: The Info fields of a divergence: with ``thin > 1`` those of the steps thinned out are OR-ed
#: into the next kept draw's (a divergence between draws still counts); every other field is
#: the kept step's own.
DIVERGENCE_FIELDS = ("diverging", "is_divergent")
READ_FIELDS = ("acceptance_rate", "is_accepted", *DIVERGENCE_FIELDS, "nonfinite")
FLAG_FIELDS = ("is_accepted", *DIVERGENCE_FIELDS, "nonfinite")  # counted where True
#: Names an info field may not take: the driver's ``lp`` (and ``logdensity``, reported as
#: ``lp``), and ArviZ's dimensions.
TAKEN_NAMES = ("lp", "logdensity", *validation.ARVIZ_DIMS)


def _info_kind_problem(infos) -> str | None:
    """What is wrong with the kind of a step's Info (a NamedTuple or a dict), if anything."""
    if isinstance(infos, dict) or (isinstance(infos, tuple) and hasattr(infos, "_asdict")):
        return None
    got = "a plain tuple" if isinstance(infos, tuple) else f"a {type(infos).__name__}"
    return (
        f"step's info is {got}; it must be a NamedTuple (or a dict) of arrays, one field per "
        "statistic, such as acceptance_rate and is_accepted (an empty one if none)"
    )


def info_fields(infos) -> dict:
    """A step's Info (a NamedTuple or a dict) as a dict of name -> array, checked by
    :func:`checked_info_fields`; a :class:`KernelProtocolError` for anything else."""
    if problem := _info_kind_problem(infos):
        raise KernelProtocolError(f"{problem}. {GUIDE}")
    return checked_info_fields(dict(infos if isinstance(infos, dict) else infos._asdict()))


def checked_info_fields(info: dict) -> dict:
    """``info`` (field name -> value, one step of the chains) itself, or a
    :class:`KernelProtocolError` for a field infer could not report as an ArviZ
    ``sample_stats`` variable: one named as the driver's own statistic or ArviZ's dimensions,
    a name with ``/`` (ArviZ's group separator), a value that is not one array."""
    for name, value in info.items():
        problem = None
        if name in TAKEN_NAMES:
            problem = (
                f"is named {name!r}, which infer reports itself ('lp', the log density) or "
                "ArviZ uses ('chain', 'draw'); rename the field"
            )
        elif STAT_NAMES.get(name, name) != name and STAT_NAMES[name] in info:
            problem = (
                f"is reported as {STAT_NAMES[name]!r} (ArviZ's name), a field the info also "
                "has, which one of them would overwrite: drop or rename one"
            )
        elif (unstorable := validation.unstorable_name(name)) is not None:
            problem = f"needs a name without '/', other than '.' and '..': it {unstorable}"
            problem += "; rename the field"
        elif not hasattr(value, "shape"):
            problem = (
                f"is a {type(value).__name__}; each info field must be one array per step "
                "(of any shape): make each entry a field of its own"
            )
        elif name in READ_FIELDS and np.shape(value)[1:] != ():
            problem = (
                f"has shape {np.shape(value)[1:]} per chain; infer reads it as one scalar per "
                "chain and step (it counts or averages it): reduce it, or rename the field "
                "(other info fields may have any shape)"
            )
        elif name in FLAG_FIELDS and getattr(value, "dtype", np.bool_) != np.bool_:
            problem = (
                f"is {value.dtype}; it is a flag per step, True or False, which infer counts "
                f"(a value of 2 would count twice, 0.3 as one): make it a bool"
            )
        if problem:
            raise KernelProtocolError(f"step's info field {name!r} {problem}. {GUIDE}")
    try:  # the axes after (num_chains,) get ArviZ's names, which a field may hold
        check_dims_fit(None, {name: np.shape(value)[1:] for name, value in info.items()})
    except ValueError as err:
        raise KernelProtocolError(f"step's info fields: {err} {GUIDE}") from None
    return info


def check_init_states(sampler, states, positions) -> None:
    """A :class:`KernelProtocolError` where ``jax.vmap(kernel.init)(positions)`` returned
    ``states`` whose ``position`` is not laid out like ``positions`` (structure and shapes,
    chain axis first) or whose ``logdensity`` is not one scalar per chain: the chains'
    draws are read from the states. Made while the run's program is traced."""
    owner = type(sampler).__name__
    given, got = _layout(positions), _layout(states.position)
    if given != got:
        raise KernelProtocolError(
            f"{owner}'s kernel: init(position) returned a state whose position is {got}, but "
            f"it was given {given}: a state's position must be laid out like the position "
            f"given (the draws are read from it). {GUIDE}"
        )
    num_chains = jax.tree.leaves(positions)[0].shape[0]
    if np.shape(states.logdensity) != (num_chains,):
        shape = np.shape(states.logdensity)[1:]
        raise KernelProtocolError(
            f"{owner}'s kernel: init(position) returned a state whose logdensity has shape "
            f"{shape}; it must be one scalar per chain. {GUIDE}"
        )


def _layout(tree) -> str:
    """A pytree of chains' values (chain axis first) as its structure and each leaf's shape
    for one chain."""
    shapes = [list(np.shape(leaf)[1:]) for leaf in jax.tree.leaves(tree)]
    return f"{jax.tree.structure(tree)} with leaves shaped {shapes}"


class KernelProtocolError(TypeError):
    """A sampler's kernel breaks :class:`infer.Kernel`'s protocol (said how)."""


def _value(obj, name: str):
    """``obj.name``, or None when it is absent or a property that fails on shapes (NumPyro's
    HMC state computes ``logdensity`` from its potential energy)."""
    try:
        return getattr(obj, name, None)
    except Exception:  # a property evaluated on a ShapeDtypeStruct
        return None


def _has(obj, name: str) -> bool:
    """Whether ``obj`` has the attribute ``name``, a property counted without evaluating it."""
    return hasattr(type(obj), name) or _value(obj, name) is not None


def checked_cost(cost):
    """``cost(info)``'s ``(num_logdensity_evals, num_grad_evals)``, or a ``TypeError`` for
    anything but two ints (or int arrays)."""
    usage = "cost(info) must return (num_logdensity_evals, num_grad_evals), two ints"
    if not (isinstance(cost, tuple | list) and len(cost) == 2):
        raise TypeError(f"{usage}; it returned {cost!r}")
    dtypes = []
    for count in cost:
        dtype = getattr(count, "dtype", None)
        dtypes.append(jax.numpy.dtype(type(count) if dtype is None else dtype))
    if any(isinstance(c, bool) for c in cost) or not all(
        jax.numpy.issubdtype(d, jax.numpy.integer) for d in dtypes
    ):
        raise TypeError(f"{usage}; it returned a pair of {' and '.join(map(str, dtypes))}")
    return cost


def _check_classes_outlive_build(sampler, logdensity_fn, example, state, fail) -> None:
    """The driver calls ``build`` more than once: a state class defined inside it is a new
    type at each call, which JAX's loops refuse as a change of type."""
    again = jax.eval_shape(sampler.build(logdensity_fn, 0).init, example)
    if type(again) is not type(state) and type(again).__qualname__ == type(state).__qualname__:
        fail(
            f"init returns a {type(state).__qualname__} defined inside build: build runs "
            "more than once, and each run defines a new class, which JAX takes for another "
            "type. Define the state and info classes at module level"
        )


def _check_adaptation(adaptation, params, state, info, fail) -> None:
    """Shapes of one warm-up step through ``adaptation`` (see :class:`infer.Adaptation`)."""
    rows = jax.tree.map(lambda leaf: leaf[0], adaptation.schedule(2))
    adapt = _shapes(adaptation.init, (params, state), fail, "adaptation.init(params, state)")
    updated = _shapes(
        adaptation.update,
        (adapt, rows, state, info),
        fail,
        "adaptation.update(adapt_state, schedule_row, state, info)",
    )
    if _described(updated) != _described(adapt):
        fail(
            f"adaptation.update changed the adaptation state from {_described(adapt)} to "
            f"{_described(updated)}: it must return one like adaptation.init's"
        )
    for name in ("params", "final"):
        got = _shapes(getattr(adaptation, name), (adapt,), fail, f"adaptation.{name}(state)")
        if _described(got) != _described(params):
            fail(
                f"adaptation.{name} returned {_described(got)}, but the kernel's params are "
                f"{_described(params)}: it must return params like params(position)'s"
            )


def _shapes(function, arguments, fail, call: str):
    """``jax.eval_shape(function, *arguments)``, or ``fail`` saying how the call failed."""
    try:
        return jax.eval_shape(function, *arguments)
    except Exception as err:  # the user's code: any error is the kernel's
        fail(f"{call} failed: {validation.error_line(err, 300)}")


def _described(tree) -> str:
    """A state's structure with each leaf's shape and dtype, for comparing two."""
    leaves = [f"{leaf.dtype}{list(leaf.shape)}" for leaf in jax.tree.leaves(tree)]
    return f"{jax.tree.structure(tree)} with leaves {leaves}"


def checked_schedule(adaptation, num_warmup: int):
    """``adaptation.schedule(num_warmup)`` as host arrays, or a :class:`KernelProtocolError`
    when an array's leading axis is not ``num_warmup`` (a short one would repeat its last row
    through the warm-up, a long one be cut, without a word)."""
    schedule = jax.tree.map(np.asarray, adaptation.schedule(num_warmup))
    for path, column in jax.tree_util.tree_leaves_with_path(schedule):
        if num_warmup and (column.ndim == 0 or column.shape[0] != num_warmup):
            where = jax.tree_util.keystr(path) or "the schedule"
            raise KernelProtocolError(
                f"adaptation.schedule({num_warmup}) returned {where} of shape {column.shape}; "
                f"each array needs one row per warm-up step, leading axis {num_warmup}. {GUIDE}"
            )
    return schedule


def checked_final_params(final, params):
    """``final`` (an adaptation's ``final(adapt_state)``) when it is shaped and typed like
    ``params`` (its ``params(adapt_state)``), else a :class:`KernelProtocolError`, raised
    while the run is traced (the failure's explanation then names both): an int32 step size
    from ``final`` was cast back to the float32 of ``params``, truncated to 0 or 1."""
    if _described(final) != _described(params):
        raise KernelProtocolError(
            f"adaptation.final returned {_described(final)}, but params gives "
            f"{_described(params)}. {GUIDE}"
        )
    return final
