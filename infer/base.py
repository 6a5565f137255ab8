"""What every sampler file builds, and the protocol the driver runs.

A sampler is made in two steps. ``infer.rwmh(step_size=...)`` returns a :class:`Sampler`: a
recipe holding the structural options, with no log density yet. ``Sampler.build`` binds it to a
log density and returns a :class:`Kernel` of pure functions, which the driver
(:func:`infer.sample`) runs over many chains. ``Sampler.bind`` gives the BlackJAX-style pair
``(init, step)`` for people who want to run their own loop.
"""

from __future__ import annotations

import abc
import json
from collections.abc import Callable
from typing import Any, NamedTuple

import jax
import numpy as np

State = Any
Info = Any
Params = Any
Position = Any


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
        init: ``init(position) -> state`` for one chain.
        step: ``step(rng_key, state, params) -> (state, info)`` for one chain. ``params`` holds
            the tunable values (step size, proposal scale), so adaptation changes them without
            rebuilding anything.
        params: ``params(position) -> params``: the starting parameters for one chain.
        adaptation: warm-up tuning, or ``None`` when nothing is tuned.
        cost: ``cost(info) -> (num_logdensity_evals, num_grad_evals)`` of one step.
    """

    init: Callable[[Position], State]
    step: Callable[[jax.Array, State, Params], tuple[State, Info]]
    params: Callable[[Position], Params]
    adaptation: Adaptation | None
    cost: Callable[[Info], tuple[jax.Array, jax.Array]]


class Sampler(abc.ABC):
    """A sampler recipe: structural options, not yet bound to a log density.

    Subclasses set ``name`` and implement :meth:`build` and :meth:`settings`.
    """

    name: str = "sampler"
    #: True for samplers whose draws are independent (rejection): the driver then skips warm-up
    #: and calls :meth:`draw` instead of stepping chains.
    is_iid: bool = False
    #: True for samplers that need gradients of the log density.
    uses_gradients: bool = False

    @abc.abstractmethod
    def build(self, logdensity_fn: Callable, num_warmup: int = 0) -> Kernel:
        """Bind to ``logdensity_fn``. ``num_warmup`` matters only to kernels that adapt inside
        their own state (NumPyro's)."""

    @abc.abstractmethod
    def settings(self) -> dict:
        """The options this sampler was made with, as plain Python values (for attrs)."""

    def check(self, position: Position) -> None:  # noqa: B027 (optional hook)
        """Host-side checks against one chain's example position; raise ``ValueError``."""

    def target_acceptance(self, dim: int) -> float | None:
        """The acceptance rate warm-up tunes toward, for a target of ``dim`` dimensions, or
        ``None`` when nothing is tuned toward one."""
        return None

    def cache_key(self) -> tuple:
        """Hashable summary of everything that changes the compiled program."""
        return (type(self).__name__, json.dumps(_jsonable(self.settings()), sort_keys=True))

    def bind(self, logdensity_fn: Callable, num_warmup: int = 0) -> SamplingAlgorithm:
        """BlackJAX-style ``(init, step)`` with the parameters fixed at their starting values.

        Example:
            >>> alg = infer.rwmh(step_size=0.5).bind(lambda x: -0.5 * (x**2).sum())
            >>> state = alg.init(jnp.zeros(3))
            >>> state, info = jax.jit(alg.step)(jax.random.key(0), state)
        """
        kernel = self.build(logdensity_fn, num_warmup)

        def step(rng_key, state):
            return kernel.step(rng_key, state, kernel.params(state.position))

        return SamplingAlgorithm(kernel.init, step)

    def __repr__(self) -> str:
        args = ", ".join(f"{k}={v!r}" for k, v in self.settings().items())
        return f"infer.{self.name}({args})"


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
