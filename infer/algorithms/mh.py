"""General Metropolis–Hastings with a user's proposal and the Hastings correction.

The user gives ``proposal_fn(rng_key, position) -> new_position`` and
``proposal_logdensity_fn(new_position, position) -> log q(new_position | position)``. The move
is accepted with probability
``min(1, p(x') q(x | x') / (p(x) q(x' | x)))``.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import NamedTuple

import jax
import jax.numpy as jnp
import numpy as np

from infer.base import IdentityKey, Kernel, Sampler, public_name
from infer.proposal import describe_callable, is_nonfinite, mh_accept, safe_log_ratio
from infer.starts import check_scalar_logdensity

__all__ = ["MHState", "MHInfo", "init", "build_kernel", "as_top_level_api"]


class MHState(NamedTuple):
    """One chain's state.

    Attributes:
        position: the current point (array or pytree).
        logdensity: log density at ``position``, scalar.
    """

    position: object
    logdensity: jax.Array


class MHInfo(NamedTuple):
    """Diagnostics of one step.

    Attributes:
        acceptance_rate: acceptance probability, scalar float; 0 for a non-finite proposal.
        is_accepted: scalar bool.
        nonfinite: the proposal's log density was NaN or ``+inf`` (it was rejected; the
            driver counts these), scalar bool.
    """

    acceptance_rate: jax.Array
    is_accepted: jax.Array
    nonfinite: jax.Array


def init(position, logdensity_fn: Callable) -> MHState:
    return MHState(position, logdensity_fn(position))


def build_kernel(
    logdensity_fn: Callable, proposal_fn: Callable, proposal_logdensity_fn: Callable | None
) -> Callable:
    """``kernel(rng_key, state, params) -> (state, info)``; ``params`` is unused (``None``)."""

    def kernel(rng_key, state: MHState, params=None):
        key_proposal, key_accept = jax.random.split(rng_key)
        new_position = proposal_fn(key_proposal, state.position)
        new_logdensity = logdensity_fn(new_position)
        log_ratio = new_logdensity - state.logdensity
        nonfinite = is_nonfinite(new_logdensity)
        if proposal_logdensity_fn is not None:
            log_q_backward = proposal_logdensity_fn(state.position, new_position)
            log_q_forward = proposal_logdensity_fn(new_position, state.position)
            log_ratio = log_ratio + log_q_backward - log_q_forward
            # a NaN Hastings term rejects the proposal too, and is counted: it is a broken
            # proposal density (the log of a negative number), never silently a zero one
            nonfinite = nonfinite | jnp.isnan(log_q_backward) | jnp.isnan(log_q_forward)
        log_ratio = safe_log_ratio(log_ratio, new_logdensity)
        proposal = MHState(new_position, new_logdensity)
        new_state, acceptance_rate, is_accepted = mh_accept(
            jax.random.uniform(key_accept, dtype=log_ratio.dtype), state, proposal, log_ratio
        )
        return new_state, MHInfo(acceptance_rate, is_accepted, nonfinite)

    return kernel


class MH(Sampler):
    """Metropolis–Hastings with a user's proposal; see :func:`as_top_level_api`."""

    name = "mh"

    def __init__(self, proposal_fn, proposal_logdensity_fn):
        if not callable(proposal_fn):
            raise TypeError(
                "proposal_fn must be a callable proposal_fn(rng_key, position) -> new_position; "
                f"got {type(proposal_fn).__name__}."
            )
        if proposal_logdensity_fn is not None and not callable(proposal_logdensity_fn):
            raise TypeError(
                "proposal_logdensity_fn must be a callable "
                "proposal_logdensity_fn(new_position, position) -> log q(new | old), or None "
                f"for a symmetric proposal; got {type(proposal_logdensity_fn).__name__}."
            )
        self.proposal_fn = proposal_fn
        self.proposal_logdensity_fn = proposal_logdensity_fn

    def settings(self) -> dict:
        return {
            "proposal_fn": _name(self.proposal_fn),
            "proposal_logdensity_fn": _name(self.proposal_logdensity_fn),
        }

    def cache_key(self) -> tuple:
        return (
            type(self).__name__,
            IdentityKey(self.proposal_fn),
            IdentityKey(self.proposal_logdensity_fn),
        )

    def check(self, position) -> None:
        expected = jax.eval_shape(lambda p: p, position)
        try:
            got = jax.eval_shape(self.proposal_fn, jax.random.key(0), position)
        except Exception as err:  # a user's function failed on the example point
            raise ValueError(
                f"proposal_fn(rng_key, position) failed on a position of shape "
                f"{shapes_text(expected)}: {err}"
            ) from err
        same_structure = jax.tree.structure(got) == jax.tree.structure(expected)
        if not same_structure or shapes_text(got) != shapes_text(expected):
            raise ValueError(
                f"proposal_fn must return a position shaped like the target's, "
                f"{shapes_text(expected)}; it returned {shapes_text(got)}."
            )
        if self.proposal_logdensity_fn is not None:  # traced at (position, position)
            log_q = self.proposal_logdensity_fn
            check_scalar_logdensity(
                lambda p: log_q(p, p), position, "proposal_logdensity_fn(new_position, position)"
            )

    def build(self, logdensity_fn: Callable, num_warmup: int = 0) -> Kernel:
        one, zero = np.ones((), np.int32), np.zeros((), np.int32)  # host constants: no device call
        return Kernel(
            init=lambda position: init(position, logdensity_fn),
            step=build_kernel(logdensity_fn, self.proposal_fn, self.proposal_logdensity_fn),
            params=lambda position: None,
            adaptation=None,
            cost=lambda info: (one, zero),
        )


@public_name("mh")
def as_top_level_api(proposal_fn: Callable, proposal_logdensity_fn: Callable | None) -> MH:
    """Metropolis–Hastings with a user's proposal.

    Args:
        proposal_fn: ``proposal_fn(rng_key, position) -> new_position``, pure.
        proposal_logdensity_fn: ``proposal_logdensity_fn(new_position, position)``, the log
            density of proposing ``new_position`` from ``position``, up to a constant. ``None``
            declares the proposal symmetric (``q(x' | x) = q(x | x')``); say so only when it is.

    Returns:
        A :class:`~infer.base.Sampler`. No warm-up tuning: the proposal is the user's.
    """
    return MH(proposal_fn, proposal_logdensity_fn)


def _name(fn) -> str | None:
    return None if fn is None else describe_callable(fn)


def shapes_text(tree) -> str:
    """The shapes of ``tree``'s leaves, for error messages: ``"(3,)"`` for a single array,
    else the tree with each leaf replaced by its shape."""
    leaves = jax.tree.leaves(tree)
    if len(leaves) == 1 and not isinstance(tree, (dict, list, tuple)):
        return str(tuple(leaves[0].shape))
    return str(jax.tree.map(lambda leaf: tuple(leaf.shape), tree))
