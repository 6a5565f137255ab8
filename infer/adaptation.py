"""Warm-up adaptation for the Metropolis–Hastings family (RWMH, MALA).

Step size: Nesterov dual averaging toward a target acceptance rate (Hoffman & Gelman 2014,
Algorithm 5), as Stan and NumPyro do for HMC. Proposal scale (Haario-style): the warm-up
draws' covariance, estimated with Welford's algorithm in Stan's doubling windows and
regularised toward the identity. Everything is frozen after warm-up, so the kept chain is a
valid Markov chain.
"""

from __future__ import annotations

import warnings
from collections.abc import Callable
from typing import NamedTuple

import jax
import jax.numpy as jnp
import numpy as np
from jax.flatten_util import ravel_pytree

from infer import validation
from infer.base import Adaptation, Kernel, Sampler
from infer.caller import INFER_FRAMES
from infer.placement import to_host
from infer.proposal import check_covariance, check_covariance_dim


class ProposalParameters(NamedTuple):
    """Tunable values of a Gaussian proposal, for one chain.

    Attributes:
        step_size: scalar, float.
        scale: the proposal's scale, rank 0 (scalar), 1 ``(dim,)`` or 2 ``(dim, dim)`` lower
            triangular; see :mod:`infer.proposal`.
    """

    step_size: jax.Array
    scale: jax.Array


class DualAveragingState(NamedTuple):
    """Dual averaging on ``log(step_size)``; all scalars."""

    log_step: jax.Array
    log_step_avg: jax.Array
    h_bar: jax.Array
    mu: jax.Array
    count: jax.Array


def dual_averaging_init(step_size: jax.Array, shrink_factor: float = 1.0) -> DualAveragingState:
    """Start at ``step_size``, shrinking toward ``shrink_factor * step_size`` (Stan and NumPyro
    use 10 for HMC, to try large steps early; Metropolis–Hastings samplers, whose acceptance
    signal is noisier, converge more reliably with 1)."""
    log_step = jnp.log(step_size)
    zero = jnp.zeros_like(log_step)
    mu = jnp.log(shrink_factor) + log_step
    return DualAveragingState(log_step, log_step, zero, mu, zero)


def dual_averaging_update(
    state: DualAveragingState,
    acceptance_rate: jax.Array,
    target: float,
    t0: float = 10.0,
    gamma: float = 0.05,
    kappa: float = 0.75,
) -> DualAveragingState:
    """One dual-averaging update; a NaN acceptance rate counts as 0."""
    acceptance_rate = jnp.where(jnp.isnan(acceptance_rate), 0.0, acceptance_rate)
    count = state.count + 1
    eta = 1.0 / (count + t0)
    h_bar = (1.0 - eta) * state.h_bar + eta * (target - acceptance_rate)
    log_step = state.mu - jnp.sqrt(count) / gamma * h_bar
    weight = count**-kappa
    log_step_avg = weight * log_step + (1.0 - weight) * state.log_step_avg
    return DualAveragingState(log_step, log_step_avg, h_bar, state.mu, count)


class WelfordState(NamedTuple):
    """Running mean and sum of squared deviations.

    Attributes:
        count: scalar.
        mean: (dim,).
        m2: (dim,) for a diagonal estimate, (dim, dim) for a dense one.
    """

    count: jax.Array
    mean: jax.Array
    m2: jax.Array


def welford_init(dim: int, dense: bool, dtype) -> WelfordState:
    m2 = jnp.zeros((dim, dim) if dense else (dim,), dtype)
    return WelfordState(jnp.zeros((), dtype), jnp.zeros((dim,), dtype), m2)


def welford_update(state: WelfordState, x: jax.Array) -> WelfordState:
    count = state.count + 1
    delta = x - state.mean
    mean = state.mean + delta / count
    if state.m2.ndim == 2:
        m2 = state.m2 + jnp.outer(x - mean, delta)
    else:
        m2 = state.m2 + (x - mean) * delta
    return WelfordState(count, mean, m2)


def welford_scale(
    state: WelfordState, old_scale: jax.Array, autocorrelation_time: float
) -> jax.Array:
    """Regularised covariance (Stan's shrinkage toward 1e-3·I) as a scale: the square root of
    the diagonal, or the Cholesky factor. Keeps ``old_scale`` if the estimate is not usable.

    A dense estimate is first shrunk toward its own diagonal, with weight ``d / (n_eff + d)``
    on the diagonal, where ``n_eff`` is the window's draws over ``autocorrelation_time``
    (steps per independent draw). A window's draws of a random walk are far from
    independent, and a dense covariance from few effective draws in ``d`` dimensions is near
    singular; the chain then barely moves along the directions it underestimates, so the
    next window's estimate is smaller still (a 20-D Gaussian of condition number 7 lost 90%
    of its ESS to it against no adaptation at all). The diagonal is estimated well from the
    same draws."""
    n = state.count
    variance = state.m2 / jnp.maximum(n - 1.0, 1.0)
    shrink = n / (n + 5.0)
    if variance.ndim == 2:
        dim = variance.shape[0]
        effective = n / autocorrelation_time
        dense_weight = effective / (effective + dim)
        diagonal = jnp.diag(jnp.diag(variance))
        variance = dense_weight * variance + (1.0 - dense_weight) * diagonal
        eye = jnp.eye(dim, dtype=variance.dtype)
        cov = shrink * variance + 1e-3 * (5.0 / (n + 5.0)) * eye
        new_scale = jnp.linalg.cholesky(cov)
    else:
        new_scale = jnp.sqrt(shrink * variance + 1e-3 * (5.0 / (n + 5.0)))
    usable = jnp.all(jnp.isfinite(new_scale)) & (n >= 3)
    return jnp.where(usable, new_scale, old_scale)


def window_schedule(
    num_warmup: int, init_buffer: int = 75, term_buffer: int | None = None, base_window: int = 25
) -> dict[str, np.ndarray]:
    """Stan's warm-up windows, as per-step flags.

    The final buffer, where only the step size is tuned, is ``term_buffer`` steps, by default
    a fifth of the warm-up (at least 50): Stan's 50 suit HMC, whose acceptance probabilities
    are smooth, but a random walk's step size needs longer to settle.

    Returns:
        ``{"collect": (num_warmup,) bool, "window_end": (num_warmup,) bool}``: whether a step's
        draw feeds the covariance estimate, and whether the step closes a slow window.
    """
    collect = np.zeros(num_warmup, bool)
    window_end = np.zeros(num_warmup, bool)
    if num_warmup < 20:
        return {"collect": collect, "window_end": window_end}
    if term_buffer is None:
        term_buffer = max(50, num_warmup // 5)
    if init_buffer + term_buffer + base_window > num_warmup:
        init_buffer = int(0.15 * num_warmup)
        term_buffer = int(0.1 * num_warmup)
        base_window = num_warmup - init_buffer - term_buffer
    slow_end = num_warmup - term_buffer
    start, size = init_buffer, base_window
    while start < slow_end:
        end = start + size
        if end + 2 * size > slow_end:
            end = slow_end
        collect[start:end] = True
        window_end[end - 1] = True
        start, size = end, 2 * size
    return {"collect": collect, "window_end": window_end}


class ProposalAdaptationState(NamedTuple):
    """Warm-up state of :func:`proposal_adaptation` for one chain."""

    params: ProposalParameters
    dual_averaging: DualAveragingState
    welford: WelfordState


def proposal_adaptation(
    *,
    adapt_step_size: bool,
    covariance_kind: str | None,
    target_acceptance_fn: Callable[[int], float],
    reset_step_size_fn: Callable[[int], float],
    autocorrelation_time_fn: Callable[[int], float],
) -> Adaptation:
    """Adapt a Gaussian proposal's step size and, optionally, its scale.

    Args:
        adapt_step_size: tune the step size by dual averaging.
        covariance_kind: ``"diagonal"`` or ``"dense"`` to estimate the proposal scale from the
            warm-up draws; ``None`` keeps the scale as given.
        target_acceptance_fn: target acceptance rate as a function of the dimension.
        reset_step_size_fn: the step size to restart from once the scale has been re-estimated
            (the scale then matches the posterior's, so the textbook optimum applies).
        autocorrelation_time_fn: steps per independent draw as a function of the dimension,
            roughly: how hard :func:`welford_scale` shrinks a dense estimate.
    """
    dense = covariance_kind == "dense"

    def init(params: ProposalParameters, state) -> ProposalAdaptationState:
        flat, _ = ravel_pytree(state.position)
        return ProposalAdaptationState(
            params,
            dual_averaging_init(params.step_size),
            welford_init(flat.size, dense, flat.dtype),
        )

    def update(astate: ProposalAdaptationState, row, state, info) -> ProposalAdaptationState:
        params, da, welford = astate
        flat, _ = ravel_pytree(state.position)
        dim = flat.size
        if adapt_step_size:
            da = dual_averaging_update(da, info.acceptance_rate, target_acceptance_fn(dim))
            params = params._replace(step_size=jnp.exp(da.log_step).astype(flat.dtype))
        if covariance_kind is None:
            return ProposalAdaptationState(params, da, welford)

        welford = jax.lax.cond(
            row["collect"], lambda w: welford_update(w, flat), lambda w: w, welford
        )

        def close_window(operand):
            params, da, welford = operand
            scale = welford_scale(welford, params.scale, autocorrelation_time_fn(dim))
            step_size = params.step_size
            if adapt_step_size:
                step_size = jnp.asarray(reset_step_size_fn(dim), flat.dtype)
                da = dual_averaging_init(step_size)
            fresh = welford_init(dim, dense, flat.dtype)
            return ProposalParameters(step_size, scale.astype(flat.dtype)), da, fresh

        params, da, welford = jax.lax.cond(
            row["window_end"], close_window, lambda op: op, (params, da, welford)
        )
        return ProposalAdaptationState(params, da, welford)

    def current(astate: ProposalAdaptationState) -> ProposalParameters:
        return astate.params

    def final(astate: ProposalAdaptationState) -> ProposalParameters:
        params = astate.params
        if adapt_step_size:
            step_size = jnp.exp(astate.dual_averaging.log_step_avg).astype(params.step_size.dtype)
            params = params._replace(step_size=step_size)
        return params

    return Adaptation(init, update, current, final, window_schedule)


def initial_scale(covariance, covariance_kind: str | None, dim: int, dtype) -> jax.Array:
    """The starting scale: from a user's fixed covariance, or 1 (rank 0, 1 or 2 as needed)."""
    if covariance is not None and not isinstance(covariance, str):
        cov = jnp.asarray(covariance, dtype)
        return jnp.linalg.cholesky(cov) if cov.ndim == 2 else jnp.sqrt(cov)
    if covariance_kind == "dense":
        return jnp.eye(dim, dtype=dtype)
    if covariance_kind == "diagonal":
        return jnp.ones((dim,), dtype)
    return jnp.ones((), dtype)


class GaussianProposalSampler(Sampler):
    """What RWMH and MALA share: a step size and a proposal scale, each fixed or tuned in
    warm-up. Subclasses set ``name``, ``init_fn(position, logdensity_fn)``,
    ``build_kernel_fn(logdensity_fn)``, ``default_step_size(dim)``,
    ``default_target_accept(dim)``, ``autocorrelation_time(dim)`` and ``cost``."""

    uses_gradients = False

    def __init__(self, step_size=None, covariance=None, target_accept=None):
        self.step_size = validation.positive_float(
            "step_size",
            step_size,
            validation.per_chain_hint(
                "step_size", step_size, "Pass step_size=None to have it adapted during warm-up."
            ),
            allow_none=True,
        )
        if self.step_size is not None:
            validation.step_size_in_precision(self.step_size)
        self.target_accept = (
            None
            if target_accept is None
            else validation.probability("target_accept", target_accept)
        )
        self.covariance_kind, self.covariance = check_covariance(covariance)
        if self.step_size is not None and self.target_accept is not None:
            warnings.warn(
                f"target_accept={self.target_accept} is ignored: step_size={self.step_size} is "
                "fixed, and only a step size tuned in warm-up aims at an acceptance rate. Leave "
                "step_size out to tune it toward target_accept.",
                UserWarning,
                skip_file_prefixes=INFER_FRAMES,
            )

    @staticmethod
    def default_step_size(dim: int) -> float:
        raise NotImplementedError

    @staticmethod
    def default_target_accept(dim: int) -> float:
        raise NotImplementedError

    @staticmethod
    def autocorrelation_time(dim: int) -> float:
        """Steps per independent draw of a well-tuned chain on a ``dim``-D Gaussian, roughly."""
        raise NotImplementedError

    def settings(self) -> dict:
        covariance = self.covariance if self.covariance is not None else self.covariance_kind
        return {
            "step_size": self.step_size,
            "covariance": covariance,
            "target_accept": self.target_accept,
        }

    def check(self, position) -> None:
        check_covariance_dim(self.covariance, position)

    def target_acceptance(self, dim: int) -> float | None:
        if self.step_size is not None:
            return None
        return self.target_accept or self.default_target_accept(dim)

    def tuned(self, carry) -> dict:
        """Each chain's ``step_size`` ``(num_chains,)`` and, for a proposal that is not
        isotropic, its ``covariance``: variances ``(num_chains, dim)`` or covariance
        matrices ``(num_chains, dim, dim)``, the proposal's being ``step_size**2`` times it."""
        step_size, scale = to_host(tuple(carry.params))
        if scale.ndim == 1:  # isotropic: the step size says it all
            return {"step_size": step_size}
        covariance = scale**2 if scale.ndim == 2 else scale @ np.swapaxes(scale, -1, -2)
        return {"step_size": step_size, "covariance": covariance}

    def build(self, logdensity_fn, num_warmup: int = 0) -> Kernel:
        adapt_kind = self.covariance_kind if self.covariance_kind != "fixed" else None

        def params(position):
            flat, _ = ravel_pytree(position)
            dim = flat.size
            step_size = self.step_size or self.default_step_size(dim)
            scale = initial_scale(self.covariance, adapt_kind, dim, flat.dtype)
            return ProposalParameters(jnp.asarray(step_size, flat.dtype), scale)

        adaptation = None
        if self.step_size is None or adapt_kind is not None:
            adaptation = proposal_adaptation(
                adapt_step_size=self.step_size is None,
                covariance_kind=adapt_kind,
                target_acceptance_fn=lambda dim: (
                    self.target_accept or self.default_target_accept(dim)
                ),
                reset_step_size_fn=self.default_step_size,
                autocorrelation_time_fn=self.autocorrelation_time,
            )
        evals = (np.ones((), np.int32), np.full((), int(self.uses_gradients), np.int32))
        return Kernel(
            init=lambda position: type(self).init_fn(position, logdensity_fn),
            step=type(self).build_kernel_fn(logdensity_fn),
            params=params,
            adaptation=adaptation,
            cost=lambda info: evals,
        )
