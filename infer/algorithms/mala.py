"""Metropolis-adjusted Langevin algorithm (MALA).

Proposal ``x' = x + (eps**2 / 2) * S @ grad log p(x) + eps * L @ z`` with ``S = L @ L.T`` and
``z ~ N(0, I)``, then the Metropolis–Hastings correction with the Langevin proposal density in
both directions. The step size is tuned during warm-up toward an acceptance rate of 0.574
(Roberts & Rosenthal 1998); ``L`` is the identity unless a covariance is given or estimated.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import NamedTuple

import jax
import jax.numpy as jnp
from jax.flatten_util import ravel_pytree

from infer.adaptation import GaussianProposalSampler, ProposalParameters
from infer.base import public_name
from infer.proposal import (
    is_nonfinite,
    mh_accept,
    normal_and_uniform,
    safe_log_ratio,
    scale_matvec,
    scale_solve,
    scale_tmatvec,
)

__all__ = ["MALAState", "MALAInfo", "init", "build_kernel", "as_top_level_api"]

TARGET_ACCEPTANCE = 0.574


class MALAState(NamedTuple):
    """One chain's state.

    Attributes:
        position: the current point (array or pytree).
        logdensity: log density at ``position``, scalar.
        logdensity_grad: its gradient, same structure as ``position``.
    """

    position: object
    logdensity: jax.Array
    logdensity_grad: object


class MALAInfo(NamedTuple):
    """Diagnostics of one step.

    Attributes:
        acceptance_rate: Metropolis–Hastings acceptance probability, scalar float.
        is_accepted: scalar bool.
        step_size: the step size used, scalar float.
        nonfinite: the proposal's log density or its gradient was NaN or infinite (it was
            rejected; the driver counts these), scalar bool.
    """

    acceptance_rate: jax.Array
    is_accepted: jax.Array
    step_size: jax.Array
    nonfinite: jax.Array


def init(position, logdensity_fn: Callable) -> MALAState:
    """State at ``position`` (one value-and-gradient evaluation)."""
    logdensity, grad = jax.value_and_grad(logdensity_fn)(position)
    return MALAState(position, logdensity, grad)


def build_kernel(logdensity_fn: Callable, hastings_correction: bool = True) -> Callable:
    """``kernel(rng_key, state, params) -> (state, info)`` for one chain.

    ``hastings_correction=False`` gives the unadjusted Langevin algorithm's acceptance of
    symmetric proposals; it exists to show (in the tests) that the correction matters.
    """
    value_and_grad = jax.value_and_grad(logdensity_fn)

    def kernel(rng_key, state: MALAState, params: ProposalParameters):
        eps, scale = params.step_size, params.scale
        x, unravel = ravel_pytree(state.position)
        grad_x, _ = ravel_pytree(state.logdensity_grad)
        noise, uniform = normal_and_uniform(rng_key, x.size, x.dtype)
        drift_x = 0.5 * eps**2 * scale_matvec(scale, scale_tmatvec(scale, grad_x))
        x_new = x + drift_x + eps * scale_matvec(scale, noise)
        position_new = unravel(x_new)
        logdensity_new, grad_new_tree = value_and_grad(position_new)
        grad_new, _ = ravel_pytree(grad_new_tree)

        # log q(x | x') - log q(x' | x), both Gaussian with covariance eps^2 S.
        drift_new = 0.5 * eps**2 * scale_matvec(scale, scale_tmatvec(scale, grad_new))
        backward = scale_solve(scale, x - x_new - drift_new) / eps
        log_q_ratio = -0.5 * jnp.sum(backward**2) + 0.5 * jnp.sum(noise**2)
        if not hastings_correction:
            log_q_ratio = jnp.zeros_like(log_q_ratio)
        log_ratio = logdensity_new - state.logdensity + log_q_ratio
        grad_ok = jnp.all(jnp.isfinite(grad_new))
        log_ratio = safe_log_ratio(log_ratio, jnp.where(grad_ok, logdensity_new, jnp.nan))
        proposal = MALAState(position_new, logdensity_new, grad_new_tree)
        new_state, acceptance_rate, is_accepted = mh_accept(uniform, state, proposal, log_ratio)
        nonfinite = is_nonfinite(logdensity_new) | (jnp.isfinite(logdensity_new) & ~grad_ok)
        return new_state, MALAInfo(acceptance_rate, is_accepted, eps, nonfinite)

    return kernel


def default_step_size(dim: int) -> float:
    """``1.65 * dim**(-1/6)``: optimal for a proposal shaped like a Gaussian target."""
    return 1.65 * dim ** (-1.0 / 6.0)


class MALA(GaussianProposalSampler):
    """Metropolis-adjusted Langevin; see :func:`as_top_level_api`."""

    name = "mala"
    uses_gradients = True
    init_fn = staticmethod(init)
    build_kernel_fn = staticmethod(build_kernel)
    default_step_size = staticmethod(default_step_size)

    def __init__(self, step_size=None, covariance=None, target_accept=None):
        super().__init__(step_size, covariance, target_accept)

    @staticmethod
    def default_target_accept(dim: int) -> float:
        return TARGET_ACCEPTANCE

    @staticmethod
    def autocorrelation_time(dim: int) -> float:
        """``dim**(1/3)`` steps per independent draw: MALA's efficiency falls as
        ``dim**(-1/3)`` (Roberts and Rosenthal 1998), the random walk's as ``1 / dim``."""
        return dim ** (1.0 / 3.0)

    def settings(self) -> dict:
        """The options, ``target_accept`` as 0.574 when left out: as recorded before its
        default became ``None``, so that those runs' checkpoints still resume."""
        settings = super().settings()
        if settings["target_accept"] is None:
            settings["target_accept"] = TARGET_ACCEPTANCE
        return settings


@public_name("mala")
def as_top_level_api(step_size=None, covariance=None, target_accept=None) -> MALA:
    """Metropolis-adjusted Langevin algorithm.

    Args:
        step_size: ``eps`` above. ``None`` (default) adapts it during warm-up; a number fixes it.
        covariance: preconditioner ``S``: ``None`` (identity), ``"diagonal"`` or ``"dense"``
            (estimated during warm-up, then frozen), or a fixed array ``(dim,)`` /
            ``(dim, dim)``.
        target_accept: acceptance rate the step size is tuned toward; ``None`` (default)
            for 0.574 (Roberts and Rosenthal 1998). Given with a fixed ``step_size``, it is
            ignored with a warning.

    Returns:
        A :class:`~infer.base.Sampler`.
    """
    return MALA(step_size=step_size, covariance=covariance, target_accept=target_accept)
