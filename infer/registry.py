"""One registry of samplers by name: what ``infer compare --samplers``, :func:`infer.compare`'s
tables and the report read, so that none of them checks a sampler's name.

Each entry makes a sampler, with its defaults, for a given target, or says why it cannot
(rejection needs a proposal that covers the target; ARS needs a scalar position). Adding a
sampler is its file plus one :func:`register` line, here for the built-in ones or in your own
code for yours.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import NamedTuple

import numpy as np

from infer import validation
from infer.algorithms.ars_sampler import as_top_level_api as ars
from infer.algorithms.independent_mh import as_top_level_api as independent_mh
from infer.algorithms.mala import as_top_level_api as mala
from infer.algorithms.rejection import as_top_level_api as rejection
from infer.algorithms.rwmh import as_top_level_api as rwmh
from infer.algorithms.sgld import for_target as sgld_for_target
from infer.base import check_sampler
from infer.numpyro_adapter import hmc, nuts


class Entry(NamedTuple):
    """A registered sampler.

    Attributes:
        name: the registry name (what ``--samplers`` takes).
        make: ``make(target) -> sampler``, or ``None`` when it cannot run on ``target``.
        description: one line for people.
        requires: what a target needs for ``make`` to give a sampler ("" when nothing).
    """

    name: str
    make: Callable
    description: str
    requires: str = ""


_ENTRIES: dict[str, Entry] = {}


def register(
    name: str, make: Callable, description: str = "", requires: str = "", *, replace=False
) -> Entry:
    """Add a sampler to the registry.

    Args:
        name: a short name, unique in the registry.
        make: ``make(target) -> sampler`` with its defaults, or ``None`` when it cannot run
            on ``target``.
        description: one line shown in reports.
        requires: what a target needs, shown when ``make`` returns ``None``.
        replace: allow replacing an entry of the same name.

    Returns:
        The registry's :class:`Entry` for it.

    Raises:
        ValueError: for a name already registered (unless ``replace``) or not an
            identifier; TypeError for a ``make`` that is not callable, or an argument of
            another type.
    """
    if not isinstance(name, str):
        raise TypeError(f"name must be a string (a Python identifier); got {name!r}.")
    if not name.isidentifier():
        raise ValueError(f"name must be a Python identifier-like string; got {name!r}.")
    for argument, text in (("description", description), ("requires", requires)):
        if not isinstance(text, str):
            raise TypeError(f"{argument} must be a string (one line); got {text!r}.")
    replace = validation.flag("replace", replace)
    if not callable(make):
        raise TypeError(f"make must be callable make(target) -> sampler; got {make!r}.")
    if name in _ENTRIES and not replace:
        raise ValueError(f"a sampler named {name!r} is registered already; pass replace=True.")
    entry = Entry(name, make, description, requires)
    _ENTRIES[name] = entry
    return entry


def unregister(name: str) -> None:
    """Remove ``name`` from the registry (no error if absent)."""
    _ENTRIES.pop(name, None)


def names() -> list[str]:
    """Registered names, in registration order."""
    return list(_ENTRIES)


def get(name: str) -> Entry:
    """The entry of ``name``.

    Raises:
        KeyError: naming the registered samplers.
    """
    if name not in _ENTRIES:
        raise KeyError(f"no sampler named {name!r}; registered: {', '.join(_ENTRIES)}.")
    return _ENTRIES[name]


def make(name: str, target):
    """``get(name).make(target)``: the sampler with its defaults, or ``None``.

    Raises:
        RuntimeError: the registered factory raised (its error chained), named with the
            target, since a plug-in's factory is the user's code.
    """
    entry = get(name)
    try:
        return entry.make(target)
    except Exception as err:
        raise RuntimeError(
            f"the factory registered as {name!r} failed on target "
            f"{getattr(target, 'name', target)!r}: {type(err).__name__}: {err}. Return None "
            "from it where the target lacks what the sampler needs."
        ) from err


def runnable(target) -> dict:
    """name -> sampler (with its defaults) of every registered sampler that can run on
    ``target``, in registration order (a factory that fails on it counts as one that
    cannot)."""
    made = {}
    for name in _ENTRIES:
        try:
            made[name] = make(name, target)
        except RuntimeError:
            made[name] = None
    return {name: sampler for name, sampler in made.items() if sampler is not None}


def describe(sampler_name: str) -> str:
    """The description of a registered sampler, or "" for one not registered."""
    entry = _ENTRIES.get(sampler_name)
    return entry.description if entry else ""


def _with_proposal(build):
    def make(target):
        if target.rejection_proposal is None:
            return None
        return build(target)

    return make


def _scalar_domain(target) -> bool:
    scalar = target.init is not None and np.shape(target.init) == ()
    return scalar and "domain" in target.notes


register(
    "rejection",
    _with_proposal(
        lambda t: rejection(t.rejection_proposal, log_envelope=t.notes.get("log_envelope"))
    ),
    "exact rejection sampling from a covering proposal",
    "a proposal that covers it (Target.rejection_proposal)",
)
register(
    "independent_mh",
    _with_proposal(lambda t: independent_mh(t.rejection_proposal)),
    "independent Metropolis-Hastings from a fixed proposal",
    "a proposal that covers it (Target.rejection_proposal)",
)
#: HMC's trajectory length in ``infer compare``, which has no option for it: NumPyro's 2π
#: (``infer.hmc()``'s default) is the period of a posterior that warm-up has whitened to a
#: standard normal, so every draw returned near its start (R-hat 1.3 on ``normal_10d``).
CLI_TRAJECTORY_LENGTH = 1.5
register("rwmh", lambda t: rwmh(), "Gaussian random-walk Metropolis-Hastings, adaptive step")
register("mala", lambda t: mala(), "Metropolis-adjusted Langevin (gradients)")
register(
    "hmc",
    lambda t: hmc(trajectory_length=CLI_TRAJECTORY_LENGTH),
    "Hamiltonian Monte Carlo, NumPyro's kernel and warm-up, trajectory length 1.5",
)
register("nuts", lambda t: nuts(), "the No-U-Turn Sampler, NumPyro's kernel and warm-up")
register(
    "sgld",
    sgld_for_target,
    "stochastic-gradient Langevin dynamics on minibatches (approximate: no Metropolis step)",
    "a minibatch log likelihood (Target.notes['minibatch'], as Target.from_flax declares)",
)
register(
    "ars",
    lambda t: ars(t.notes["domain"]) if _scalar_domain(t) else None,
    "adaptive rejection sampling of a log-concave scalar density (exact)",
    "a scalar position, a log-concave density and its support (Target.notes['domain'])",
)

#: The names registered here, each also a factory of the package (``infer.<name>``).
BUILT_IN = frozenset(_ENTRIES)


def check_sampler_argument(sampler) -> None:
    """The ``sampler`` argument of :func:`infer.sample` and :func:`infer.sbc` checked
    (:func:`infer.base.check_sampler`); a sampler's name (what ``infer compare --samplers``
    takes) is told what to pass instead."""
    if not isinstance(sampler, str):
        check_sampler(sampler)
        return
    got = f"sampler must be a sampler object, not a name; got {sampler!r}."
    if sampler not in _ENTRIES:
        listed = ", ".join(names())
        raise TypeError(
            f"{got} It is not a registered name either ({listed}); use e.g. infer.nuts()."
        )
    factory = f"infer.{sampler}(...) or " if sampler in BUILT_IN else ""
    raise TypeError(f"{got} Pass {factory}infer.registry.make({sampler!r}, target) (its defaults).")
