"""Gaussian random-walk Metropolis–Hastings (RWMH).

Proposal ``x' = x + step_size * L @ z`` with ``z ~ N(0, I)``; accept with probability
``min(1, p(x') / p(x))``. During warm-up the step size is tuned toward the optimal acceptance
rate (0.234, or 0.44 in one dimension; Roberts, Gelman & Gilks 1997) and, when asked, ``L`` is
estimated from the warm-up draws (Haario, Saksman & Tamminen 2001). Both are frozen after
warm-up.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import NamedTuple

import jax
import numpy as np
from jax.flatten_util import ravel_pytree

from infer.adaptation import GaussianProposalSampler, ProposalParameters
from infer.base import public_name
from infer.proposal import (
    is_nonfinite,
    mh_accept,
    normal_and_uniform,
    safe_log_ratio,
    scale_matvec,
)

__all__ = ["RWMHState", "RWMHInfo", "init", "build_kernel", "as_top_level_api"]


class RWMHState(NamedTuple):
    """One chain's state.

    Attributes:
        position: the current point (array or pytree).
        logdensity: log density at ``position``, scalar.
    """

    position: object
    logdensity: jax.Array


class RWMHInfo(NamedTuple):
    """Diagnostics of one step (ArviZ ``sample_stats`` names).

    Attributes:
        acceptance_rate: ``min(1, p(x')/p(x))``, scalar float; 0 for a non-finite proposal.
        is_accepted: scalar bool.
        step_size: the step size used, scalar float.
        nonfinite: the proposal's log density was NaN or ``+inf`` (it was rejected; the
            driver counts these), scalar bool.
    """

    acceptance_rate: jax.Array
    is_accepted: jax.Array
    step_size: jax.Array
    nonfinite: jax.Array


def init(position, logdensity_fn: Callable) -> RWMHState:
    """State at ``position``."""
    return RWMHState(position, logdensity_fn(position))


def build_kernel(logdensity_fn: Callable) -> Callable:
    """``kernel(rng_key, state, params) -> (state, info)`` for one chain.

    ``params`` is a :class:`~infer.adaptation.ProposalParameters`.
    """

    def kernel(rng_key, state: RWMHState, params: ProposalParameters):
        flat, unravel = ravel_pytree(state.position)
        noise, uniform = normal_and_uniform(rng_key, flat.size, flat.dtype)
        proposal_position = unravel(flat + params.step_size * scale_matvec(params.scale, noise))
        proposal_logdensity = logdensity_fn(proposal_position)
        log_ratio = safe_log_ratio(proposal_logdensity - state.logdensity, proposal_logdensity)
        proposal = RWMHState(proposal_position, proposal_logdensity)
        new_state, acceptance_rate, is_accepted = mh_accept(uniform, state, proposal, log_ratio)
        nonfinite = is_nonfinite(proposal_logdensity)
        return new_state, RWMHInfo(acceptance_rate, is_accepted, params.step_size, nonfinite)

    return kernel


def target_acceptance(dim: int) -> float:
    """Optimal acceptance rate of Gaussian random-walk Metropolis."""
    return 0.44 if dim == 1 else 0.234


def optimal_step_size(dim: int) -> float:
    """``2.38 / sqrt(dim)``: optimal for a proposal shaped like the target's covariance."""
    return 2.38 / float(np.sqrt(dim))


def autocorrelation_time(dim: int) -> float:
    """``3.3 * dim`` steps per independent draw: the optimally scaled walk's efficiency on a
    Gaussian is about ``0.3 / dim`` (Roberts, Gelman and Gilks 1997)."""
    return 3.3 * dim


class RWMH(GaussianProposalSampler):
    """Gaussian random-walk Metropolis–Hastings; see :func:`as_top_level_api`."""

    name = "rwmh"
    init_fn = staticmethod(init)
    build_kernel_fn = staticmethod(build_kernel)
    default_step_size = staticmethod(optimal_step_size)
    default_target_accept = staticmethod(target_acceptance)
    autocorrelation_time = staticmethod(autocorrelation_time)


@public_name("rwmh")
def as_top_level_api(step_size=None, covariance=None, target_accept=None) -> RWMH:
    """Gaussian random-walk Metropolis–Hastings.

    Args:
        step_size: proposal step size. ``None`` (default) adapts it during warm-up toward
            ``target_accept``; a number fixes it.
        covariance: the proposal's shape. ``None``: isotropic. ``"diagonal"`` or ``"dense"``:
            estimated from the warm-up draws (Haario-style), then frozen. An array of shape
            ``(dim,)`` (variances) or ``(dim, dim)`` (a covariance matrix): fixed.
        target_accept: acceptance rate the step size is tuned toward; default 0.234
            (0.44 in one dimension).

    Returns:
        A :class:`~infer.base.Sampler` for :func:`infer.sample`, or ``.bind(logdensity_fn)`` for
        a BlackJAX-style ``(init, step)`` pair.

    Raises:
        ValueError: for a non-positive step size or an invalid covariance.
    """
    return RWMH(step_size=step_size, covariance=covariance, target_accept=target_accept)
