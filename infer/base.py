"""What every sampler file builds, and the protocol the driver runs.

A sampler is made in two steps. ``infer.rwmh(step_size=...)`` returns a recipe holding the
structural options, with no log density yet. ``build`` binds it to a log density and returns a
:class:`Kernel` of pure functions, which the driver (:func:`infer.sample`) runs over many
chains. ``Sampler.bind`` gives the BlackJAX-style pair ``(init, step)`` for people who want to
run their own loop.

The driver needs only the protocols :class:`MarkovSampler` (a kernel to step) and
:class:`ExactSampler` (exact independent draws in batches); :class:`Sampler` is a convenient
base holding the optional hooks' defaults, not a requirement.
"""

from __future__ import annotations

import inspect
import json
import sys
from collections.abc import Callable
from typing import Any, NamedTuple, Protocol, runtime_checkable

import jax
import numpy as np

from infer.keywords import refusing_unknown_keywords

State = Info = Params = Position = Any  # type aliases for the signatures below


class SamplingAlgorithm(NamedTuple):
    """A sampler bound to one log density, BlackJAX-style.

    Attributes:
        init: ``init(position) -> state``. ``position`` is one chain's point (array or pytree).
        step: ``step(rng_key, state) -> (state, info)``. Pure; works under ``jit`` and ``vmap``;
            never loops over steps.
    """

    init: Callable[[Position], State]
    step: Callable[[jax.Array, State], tuple[State, Info]]


class Adaptation(NamedTuple):
    """Warm-up tuning of a kernel's parameters for one chain (the driver vmaps it).

    Attributes:
        init: ``init(params, state) -> adapt_state``.
        update: ``update(adapt_state, schedule_row, state, info) -> adapt_state``, called after
            each warm-up step. ``schedule_row`` is one row of ``schedule(num_warmup)``.
        params: ``params(adapt_state) -> params`` for the next warm-up step.
        final: ``final(adapt_state) -> params``, frozen for the sampling phase.
        schedule: ``schedule(num_warmup) -> pytree of host arrays with leading axis num_warmup``,
            e.g. which steps end an adaptation window. Computed on the host, fed to ``lax.scan``.
    """

    init: Callable
    update: Callable
    params: Callable
    final: Callable
    schedule: Callable[[int], Any]


class Kernel(NamedTuple):
    """A sampler bound to one log density: the pure functions the driver runs.

    Attributes:
        init: ``init(position) -> state`` for one chain. The state has attributes
            ``position`` (the point, same pytree as ``position``) and ``logdensity`` (scalar).
        step: ``step(rng_key, state, params) -> (state, info)`` for one chain. ``params`` holds
            the tunable values (step size, proposal scale), so adaptation changes them without
            rebuilding anything. ``info`` (a NamedTuple or dict of arrays) becomes
            ``sample_stats``; infer reads its scalar fields ``acceptance_rate``,
            ``is_accepted``, ``diverging`` and ``nonfinite`` (a NaN/+inf proposal rejected)
            when present; ``lp``, ``logdensity``, ``chain`` and ``draw`` are taken.
        params: ``params(position) -> params``: the starting parameters for one chain.
        adaptation: warm-up tuning, or ``None`` when nothing is tuned.
        cost: ``cost(info) -> (num_logdensity_evals, num_grad_evals)`` of one step (ints or
            scalar int arrays).
    """

    init: Callable[[Position], State]
    step: Callable[[jax.Array, State, Params], tuple[State, Info]]
    params: Callable[[Position], Params]
    adaptation: Adaptation | None
    cost: Callable[[Info], tuple[jax.Array, jax.Array]]


@runtime_checkable
class MarkovSampler(Protocol):
    """What :func:`infer.sample` needs of a Markov-chain sampler (duck-typed: any object with
    these attributes works, no base class needed).

    Attributes:
        name: a short name, shown in results and tables.
        uses_gradients: whether the kernel evaluates gradients of the log density.

    Methods:
        build(logdensity_fn, num_warmup) -> Kernel: bind to a log density. Called inside the
            compiled program, so ``logdensity_fn`` may close over traced data.
        settings() -> dict: the options, as plain values (recorded with every result).

    Optional hooks, with the defaults of :class:`Sampler` when absent: ``check(position)``,
    ``check_data(data)``, ``check_target(logdensity_fn, position)``,
    ``target_acceptance(dim)``, ``acceptance_band(target_accept)``, ``cache_key()``.
    """

    name: str
    uses_gradients: bool

    def build(self, logdensity_fn: Callable, num_warmup: int = 0) -> Kernel: ...

    def settings(self) -> dict: ...


@runtime_checkable
class ExactSampler(Protocol):
    """What :func:`infer.sample` needs of a sampler of exact independent draws (rejection,
    ARS): how to draw one batch.

    Methods:
        iid_setup(target) -> setup: host-side work for one target (e.g. an envelope).
        iid_program(setup, num_draws) -> (draw_fn, dynamic, static_key):
            ``draw_fn(rng_key, dynamic) -> (positions, counters)`` draws ``num_draws`` exact
            draws (leading axis ``num_draws``) on one device; ``dynamic`` is passed as an
            argument of the compiled program; ``static_key`` is hashable and names what else
            the program depends on.
        iid_summary(setup, counters, num_draws) -> (info, num_logdensity_evals, num_grad_evals):
            run facts from the list of every chunk's counters.
        iid_progress_text(counters) -> str: a progress bar's postfix.
        settings() -> dict: the options, as plain values.
    """

    name: str

    def iid_setup(self, target) -> Any: ...

    def iid_program(self, setup, num_draws: int) -> tuple: ...

    def iid_summary(self, setup, counters: list, num_draws: int) -> tuple: ...

    def iid_progress_text(self, counters) -> str: ...

    def settings(self) -> dict: ...


def is_exact(sampler) -> bool:
    """Whether ``sampler`` makes exact independent draws (the :class:`ExactSampler` protocol)."""
    return isinstance(sampler, ExactSampler)


def public_name(name: str) -> Callable:
    """Decorator: a sampler's factory (each algorithm file's ``as_top_level_api``) named as
    users call it, ``infer.<name>``, in its errors (``rwmh() got an unexpected keyword``) and
    in ``help()``."""

    def rename(factory):
        factory.__name__ = factory.__qualname__ = name  # Python's own errors name it too
        factory = refusing_unknown_keywords(factory, name)
        # pickle finds a function by module and qualified name: give the module that name
        setattr(sys.modules[factory.__module__], name, factory)
        return factory

    return rename


def _callable_hint(function) -> str:
    """What a function given as a sampler was likely meant as: a method that runs on its
    own (``infer.advi(rng_key, target, ...)``), or a sampler factory called without ``()``."""
    name = getattr(function, "__name__", "it")
    try:
        parameters = list(inspect.signature(function).parameters)
    except (TypeError, ValueError):
        parameters = []
    if parameters[:2] == ["rng_key", "target"]:
        return (
            f"{name} runs on its own rather than inside infer.sample: call "
            f"infer.{name}(seed, target, ...)."
        )
    return f"Did you forget the parentheses ({name}())?"


def check_sampler(sampler) -> None:
    """A ``TypeError`` unless ``sampler`` follows one of the two protocols."""
    if isinstance(sampler, type):  # first: a class has its instances' attributes
        raise TypeError(
            f"sampler must be a sampler object; got the class {sampler.__name__}: pass an "
            f"instance, {sampler.__name__}(...)."
        )
    if isinstance(sampler, (MarkovSampler, ExactSampler)):
        _check_attributes(sampler)
        return
    if callable(sampler) and not hasattr(sampler, "settings"):
        raise TypeError(
            f"sampler must be an infer sampler such as infer.rwmh() or infer.nuts(); got "
            f"{type(sampler).__name__}. {_callable_hint(sampler)}"
        )
    missing = [
        name
        for name in ("name", "uses_gradients", "build", "settings")
        if not hasattr(sampler, name)
    ]
    lacks = f" It lacks {', '.join(missing)}." if missing and len(missing) < 4 else ""
    raise TypeError(
        f"sampler must be an infer sampler such as infer.rwmh() (an object with name, "
        f"uses_gradients, build() and settings(); see docs/writing-a-sampler.md); got "
        f"{sampler!r}.{lacks}"
    )


def _check_attributes(sampler) -> None:
    """A ``TypeError`` for a sampler whose ``name`` is not a string, ``uses_gradients`` not a
    bool, or ``settings()`` not a dict (results, tables and files hold them)."""
    owner = type(sampler).__name__
    name, gradients = sampler.name, getattr(sampler, "uses_gradients", False)
    problem = None
    if not isinstance(name, str) or not name:
        problem = f"name must be a non-empty str (it names results and rows); got {name!r}"
    elif not isinstance(gradients, bool | np.bool_):
        problem = f"uses_gradients must be True or False; got {gradients!r}"
    else:
        settings = sampler.settings()
        if not isinstance(settings, dict):
            problem = (
                f"settings() must return a dict of its options (recorded with every result); "
                f"got {type(settings).__name__}"
            )
    if problem:
        raise TypeError(f"{owner}.{problem}. See docs/writing-a-sampler.md.")


def checked_kernel(kernel, sampler) -> Kernel:
    """``kernel`` when it is what ``sampler.build`` must return (see :class:`Kernel`), else a
    ``TypeError`` that says what is wrong with it."""
    if isinstance(kernel, Kernel):
        wrong = [
            name
            for name in ("init", "step", "params", "cost")
            if not callable(getattr(kernel, name))
        ]
        parts = ("init", "update", "params", "final", "schedule")
        adaptation = kernel.adaptation
        if adaptation is not None and not all(
            callable(getattr(adaptation, name, None)) for name in parts
        ):
            wrong.append("adaptation")
        if not wrong:
            return kernel
        problem = (
            "its adaptation must be None or an infer.Adaptation(init, update, params, final, "
            f"schedule) of functions; got {type(adaptation).__name__}"
            if "adaptation" in wrong
            else f"its {', '.join(wrong)} must be callable (see infer.Kernel)"
        )
    else:
        problem = f"it returned {type(kernel).__name__}"
    raise TypeError(
        f"{type(sampler).__name__}.build(logdensity_fn, num_warmup) must return an "
        f"infer.Kernel(init, step, params, adaptation, cost); {problem}. See "
        "docs/writing-a-sampler.md."
    )


class Sampler:
    """A convenient base for samplers: the optional hooks of :class:`MarkovSampler` with
    their defaults. Subclasses set ``name`` and implement :meth:`build` and :meth:`settings`.
    """

    name: str = "sampler"
    #: True for samplers that need gradients of the log density.
    uses_gradients: bool = False
    #: True when a state's ``logdensity`` is the target's log density at its ``position``
    #: (a chain whose log density changed has moved); False for an estimate (SGLD's
    #: minibatch one), which changes while the chain stands still.
    logdensity_is_exact: bool = True
    #: True when a proposal at a NaN or +inf log density is rejected (a Metropolis step);
    #: False for a sampler without accept/reject (SGLD), which skips such a step instead.
    rejects_nonfinite: bool = True
    #: True for a sampler whose ``build`` takes ``data=``, the target's data as the program
    #: holds them (traced arguments), to read beside the bound log density (SGLD draws its
    #: minibatches from them, rather than from constants of the program).
    takes_target_data: bool = False
    #: The share of the data one log-density or gradient evaluation reads (SGLD's minibatch:
    #: ``batch_size / N``): ``infer.compare`` counts evaluations in full-data ones.
    evaluation_fraction: float = 1.0

    def build(self, logdensity_fn: Callable, num_warmup: int = 0) -> Kernel:
        """Bind to ``logdensity_fn``. ``num_warmup`` matters only to kernels that adapt inside
        their own state (NumPyro's)."""
        raise NotImplementedError(
            f"{type(self).__name__} must define build(self, logdensity_fn, num_warmup=0) -> "
            "infer.Kernel. See docs/writing-a-sampler.md."
        )

    def settings(self) -> dict:
        """The options this sampler was made with, as plain Python values (for attrs)."""
        raise NotImplementedError(
            f"{type(self).__name__} must define settings(self) -> dict: the options it was "
            "made with, as plain Python values ({} for none). See docs/writing-a-sampler.md."
        )

    def check(self, position: Position) -> None:
        """Host-side checks against one chain's example position; raise ``ValueError``."""

    def check_data(self, data) -> None:
        """Host-side checks against the target's ``data`` (a sampler that carries data of
        its own, as SGLD does, must carry the target's); raise ``ValueError``."""

    def check_target(self, logdensity_fn: Callable, position: Position) -> None:
        """Host-side checks against the target's log density (bound to its data) at one
        chain's start (a sampler that carries a log density of its own, as SGLD does, must
        carry the target's); raise ``ValueError``."""

    def target_acceptance(self, dim: int) -> float | None:
        """The acceptance rate warm-up tunes toward, for a target of ``dim`` dimensions, or
        ``None`` when nothing is tuned toward one."""
        return None

    def acceptance_band(self, target_accept: float) -> tuple[float, float | None]:
        """The acceptance rates that say warm-up settled, around ``target_accept``: below
        the first the steps are too large; above the second (``None``: no upper limit, as
        for HMC, whose high acceptance is harmless) they are too small."""
        return target_accept / 2.0, target_accept + (1.0 - target_accept) / 2.0

    def tuned(self, carry) -> dict:
        """What warm-up tuned, read from a run's final ``carry`` (chain axis first): name ->
        NumPy array ``(num_chains, ...)``, named as this sampler's own arguments, so that
        chain ``c``'s values passed back (``{name: value[c]}``) with ``num_warmup=0`` step as
        that chain did. ``{}`` when nothing is tuned."""
        return {}

    def cache_key(self) -> tuple:
        """Hashable summary of everything that changes the compiled program."""
        return default_cache_key(self)

    def bind(self, logdensity_fn: Callable, num_warmup: int = 0) -> SamplingAlgorithm:
        """BlackJAX-style ``(init, step)`` with the parameters fixed at their starting values.

        Example:
            >>> alg = infer.rwmh(step_size=0.5).bind(lambda x: -0.5 * (x**2).sum())
            >>> state = alg.init(jnp.zeros(3))
            >>> state, info = jax.jit(alg.step)(jax.random.key(0), state)
        """
        if not callable(logdensity_fn):
            kind = type(logdensity_fn).__name__
            has_one = callable(getattr(logdensity_fn, "logdensity", None))  # a Target
            fix = "its .logdensity (the data bound)" if has_one else "a function"
            raise TypeError(
                f"bind takes a log density function, logdensity_fn(position) -> scalar; got "
                f"{kind}. Pass {fix}."
            )
        kernel = self.build(logdensity_fn, num_warmup)

        def step(rng_key, state):
            return kernel.step(rng_key, state, kernel.params(state.position))

        return SamplingAlgorithm(kernel.init, step)

    def __repr__(self) -> str:
        args = ", ".join(f"{k}={v!r}" for k, v in self.settings().items())
        return f"infer.{self.name}({args})"


def default_cache_key(sampler) -> tuple:
    """The class, the settings and the instance's attributes: what a sampler without its own
    ``cache_key`` compiles to. The class object itself, not its name: a class defined again
    (an edited notebook cell) has a new ``build``, so it must not reuse the programs of the
    old one. The attributes too: an option that ``build`` reads but ``settings()`` leaves out
    must not reuse the program built with another value of it."""
    return (type(sampler), settings_json(sampler.settings()), attributes_key(sampler))


def attributes_key(sampler) -> tuple:
    """A hashable summary of an object's attributes (``__dict__`` and ``__slots__``): plain
    values as they are, arrays by dtype, shape and bytes, containers item by item, anything
    else (functions, other objects) by identity."""
    names = sorted(getattr(sampler, "__dict__", {}))
    for cls in type(sampler).__mro__:
        slots = cls.__dict__.get("__slots__", ())
        names += [slots] if isinstance(slots, str) else list(slots)
    return tuple(
        (name, _value_key(getattr(sampler, name)))
        for name in dict.fromkeys(names)
        if hasattr(sampler, name) and name not in ("__dict__", "__weakref__")
    )


def _value_key(value):
    if value is None or isinstance(value, (bool, int, float, complex, str, bytes)):
        return (type(value), value)
    if isinstance(value, (np.ndarray, np.generic, jax.Array)):
        array = np.asarray(value)
        if array.dtype != object:
            return ("array", str(array.dtype), array.shape, array.tobytes())
    if isinstance(value, (list, tuple)):
        return (type(value), tuple(_value_key(item) for item in value))
    if isinstance(value, dict):
        return ("dict", tuple((repr(k), _value_key(v)) for k, v in value.items()))
    return IdentityKey(value)


def hook(sampler, name: str):
    """The optional hook ``name`` of ``sampler``, or :class:`Sampler`'s default bound to it."""
    method = getattr(sampler, name, None)
    if method is not None:
        return method
    return getattr(Sampler, name).__get__(sampler)


def _jsonable(value):
    """Plain-Python form of settings, for JSON attrs and cache keys."""
    if isinstance(value, dict):
        return {str(k): _jsonable(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_jsonable(v) for v in value]
    if isinstance(value, (np.ndarray, jax.Array)):
        return np.asarray(value).tolist()
    if isinstance(value, (np.floating, np.integer, np.bool_)):
        return value.item()
    if value is None or isinstance(value, (bool, int, float, str)):
        return value
    return repr(value)


def settings_json(settings: dict) -> str:
    """Settings as a JSON string (NetCDF attrs hold strings and numbers only)."""
    return json.dumps(_jsonable(settings), sort_keys=True)


class IdentityKey:
    """Hashable by object identity, holding a strong reference so the id cannot be reused
    while a cache entry keyed on it is alive."""

    __slots__ = ("obj",)

    def __init__(self, obj):
        self.obj = obj

    def __hash__(self) -> int:
        return id(self.obj)

    def __eq__(self, other) -> bool:
        return isinstance(other, IdentityKey) and other.obj is self.obj


def key_name(key) -> str:
    """The name of one step of a pytree path (a dict key, a sequence index, an attribute)."""
    for attr in ("key", "idx", "name"):
        if hasattr(key, attr):
            return str(getattr(key, attr))
    return str(key)
