"""Automatic differentiation variational inference (ADVI; Kucukelbir et al. 2017).

A Gaussian ``q(z) = N(mean, L L^T)`` over the target's unconstrained position (flattened to
``d`` numbers) is fitted by maximising the evidence lower bound

    ELBO(q) = E_q[log p(z)] + H[q],

estimated with the reparameterisation ``z = mean + L eps``, ``eps ~ N(0, I)``, and the entropy
``H[q]`` in closed form, by Adam (Optax). ``family="meanfield"`` has a diagonal ``L``;
``"fullrank"`` a full lower-triangular one. The fitted ``q`` is then checked the way Yao et
al. (2018, "Yes, but did it work?") recommend: the Pareto k-hat of the importance ratios
``p(z) / q(z)`` at its draws (ArviZ's PSIS). Above the sample-size-dependent threshold
(at most 0.7) the approximation cannot be trusted, and a warning says so.
"""

from __future__ import annotations

import time
from typing import NamedTuple

import jax
import jax.numpy as jnp
import numpy as np
import optax
from jax.flatten_util import ravel_pytree

from infer import memory, validation
from infer.fit_checks import (
    check_optimizer,
    pareto_k,
    pareto_k_threshold,
    warn_if_untrustworthy,
)
from infer.fit_measures import kl_gap
from infer.keys import as_jax_key, as_key
from infer.keywords import refusing_unknown_keywords
from infer.loglik import pointwise
from infer.outside_values import held
from infer.progress import check_progress, chunk_length, progress_bar
from infer.reported_names import reported_shapes
from infer.result import Result
from infer.starts import check_scalar_logdensity, starting_point
from infer.target import Target, check_target

__all__ = ["advi", "FAMILIES", "pareto_k_threshold"]

FAMILIES = ("meanfield", "fullrank")
DEFAULT_LEARNING_RATE = 0.01  # Adam's, where no optimizer is given


class Approximation(NamedTuple):
    """Parameters of ``q``: ``mean`` (d,), and ``scale_raw``: (d,) log scales (meanfield) or
    (d, d) whose strict lower triangle is ``L``'s and whose diagonal holds ``log diag(L)``."""

    mean: jax.Array
    scale_raw: jax.Array


def _scale_tril(params: Approximation) -> jax.Array:
    """``L`` (d, d)."""
    raw = params.scale_raw
    if raw.ndim == 1:
        return jnp.diag(jnp.exp(raw))
    return jnp.tril(raw, -1) + jnp.diag(jnp.exp(jnp.diag(raw)))


def _draw(params: Approximation, eps):
    """``mean + L eps`` for ``eps`` (n, d)."""
    raw = params.scale_raw
    if raw.ndim == 1:
        return params.mean[None, :] + eps * jnp.exp(raw)[None, :]
    return params.mean[None, :] + eps @ _scale_tril(params).T


def _log_det_scale(params: Approximation):
    raw = params.scale_raw
    return jnp.sum(raw) if raw.ndim == 1 else jnp.sum(jnp.diag(raw))


def _entropy(params: Approximation):
    d = params.mean.shape[0]
    return _log_det_scale(params) + 0.5 * d * (1.0 + jnp.log(2.0 * jnp.pi))


def _log_q(params: Approximation, eps):
    """``log q(z)`` at ``z = mean + L eps``, for ``eps`` (n, d)."""
    d = params.mean.shape[0]
    return (
        -0.5 * jnp.sum(eps**2, axis=-1) - _log_det_scale(params) - 0.5 * d * jnp.log(2.0 * jnp.pi)
    )


@refusing_unknown_keywords
def advi(
    rng_key,
    target: Target,
    family: str = "meanfield",
    *,
    num_steps: int = 10_000,
    num_draws: int = 1000,
    num_chains: int = 4,
    learning_rate: float | None = None,
    num_elbo_draws: int = 8,
    init_scale: float = 1.0,
    init=None,
    progress=False,
    optimizer=None,
) -> Result:
    """Fit a Gaussian approximation to ``target`` by ADVI and draw from it.

    Args:
        rng_key: an int seed or a ``jax.random.key``; the same seed gives the same result.
        target: an :class:`infer.Target` (a plain log density or ``Target.from_numpyro``;
            NumPyro targets are fitted in their unconstrained space, Jacobian included).
        family: ``"meanfield"`` (independent coordinates) or ``"fullrank"`` (correlations).
        num_steps: optimiser steps (Adam at a constant learning rate by default); the fitted
            ``q`` is the average of the iterates over the second half (Polyak-Ruppert), so
            the gradients' noise
            averages away: its parameters then carry a Monte Carlo error of about that of
            ``num_elbo_draws * num_steps / 2`` draws from ``q``.
        num_draws: draws per chain from the fitted ``q``.
        num_chains: rows the independent draws are laid out in, so that ArviZ's split R-hat
            and ESS apply as for MCMC (they should show ``R-hat ~ 1``, ``ESS ~ draws``).
        learning_rate: Adam's step size (default 0.01); not with ``optimizer``.
        num_elbo_draws: draws of ``eps`` per step for the ELBO's gradient.
        init_scale: the starting standard deviation of every coordinate.
        init: the starting mean (a position like the target's); default ``target.init``.
        progress: ``True`` shows a progress bar (tqdm) with the running ELBO, or pass a
            ``tqdm`` class.
        optimizer: an Optax ``GradientTransformation`` to use instead of Adam (a schedule,
            gradient clipping, another method: ``optax.chain(optax.clip_by_global_norm(1.0),
            optax.adam(optax.cosine_decay_schedule(0.05, 5000)))``). It minimises the
            negative ELBO over ``q``'s mean and log scales (a pytree of arrays).

    Returns:
        A :class:`infer.Result` (``sampler="advi_meanfield"`` or ``"advi_fullrank"``) of
        ``num_chains x num_draws`` independent draws from ``q``, constrained, with ``stats``
        ``lp`` (``log p(z)``) and ``log_weight`` (``log p(z) - log q(z)``), and in ``info``:
        ``elbo_trace`` (one estimate per step), ``elbo`` and ``elbo_se`` (the ELBO at the end,
        from the draws), ``pareto_k`` and ``pareto_k_threshold``, ``num_nonfinite_steps``
        (steps skipped because the ELBO or its gradient was not finite), and ``mean`` and
        ``scale_tril`` of ``q`` in the flattened unconstrained space. The fit counts as
        sampling time in ``timing`` (no draw exists without it).

    Raises:
        TypeError, ValueError: for bad arguments, before anything is compiled.

    Warns:
        DiagnosticWarning: when ``pareto_k`` exceeds its threshold (the draws misrepresent
            the posterior), or when steps had to be skipped.
    """
    with held():  # each function's outside values read once per call
        wall_start = time.perf_counter()
        key_input, seed = as_key(rng_key)
        check_target(target)
        options = _check_options(
            family, num_steps, num_draws, num_chains, num_elbo_draws, learning_rate, init_scale
        )
        check_optimizer(optimizer, learning_rate)
        check_progress(progress)
        if optimizer is None:
            optimizer = optax.adam(options.learning_rate)
        else:  # one that reads the loss too (value=) as Adam does not: optax.contrib's
            options = options._replace(learning_rate=None, optimizer="custom")
            optimizer = optax.with_extra_args_support(optimizer)
        flat_start, unravel = _flat_start(target, init)
        dimension, dtype = flat_start.shape[0], flat_start.dtype
        logdensity_flat = _flat_logdensity(target, unravel)
        fit_chunk = _fit_program(logdensity_flat, optimizer, options, dimension, dtype)
        params = _initial_params(flat_start, options.family, options.init_scale)
        opt_state = optimizer.init(params)

        _check_memory(target, unravel(flat_start), options, dimension)
        key = as_jax_key(key_input)
        fit_key, draw_key = jax.random.split(key)
        chunk = chunk_length(options.num_steps, options.num_steps)
        carry = (params, opt_state, fit_key, jnp.zeros((), jnp.int32), params)
        compile_start = time.perf_counter()
        compiled = _compile_fit(fit_chunk, carry, options.num_steps, chunk)
        compile_seconds = time.perf_counter() - compile_start

        fit_start = time.perf_counter()
        label = f"advi_{options.family}"
        carry, elbo_trace = _run_fit(compiled, carry, options.num_steps, chunk, progress, label)
        _, _, _, skipped, params = carry
        total_draws = options.num_chains * options.num_draws
        draw = _draw_program(target, logdensity_flat, unravel, total_draws, dimension, dtype)
        drawn = draw(params, draw_key)
        jax.block_until_ready(drawn)
        sampling_seconds = time.perf_counter() - fit_start

        timing = {"compile": compile_seconds, "warmup": 0.0, "sampling": sampling_seconds}
        result = _assemble_result(
            target, options, seed, params, skipped, elbo_trace, drawn, timing, wall_start
        )
        checked = {**result.info, "learning_rate": options.learning_rate}  # for its advice
        warn_if_untrustworthy(checked, label, target.name, options.num_steps, total_draws)
        return result


def _check_memory(target: Target, point, options, dimension: int) -> None:
    """Refuse draws that cannot fit in memory before anything is compiled."""
    total = options.num_chains * options.num_draws
    draws = memory.nbytes(reported_shapes(target, point)) * total
    flat = total * (dimension + 3) * 4  # z, log p, log q and the weight, on the device
    need = memory.Need(2 * draws + flat, flat, {"draws": draws, "flat draws": flat}, draws)
    memory.check(
        need,
        jax.devices()[:1],
        f"advi on {target.name} with {options.num_chains} x {options.num_draws} draws",
        "Use fewer draws (num_draws or num_chains).",
    )


class _Options(NamedTuple):
    """:func:`advi`'s arguments after the host checks (their meanings are there)."""

    family: str
    num_steps: int
    num_draws: int
    num_chains: int
    num_elbo_draws: int
    learning_rate: float | None  # None with an optimizer of the caller's
    init_scale: float
    optimizer: str = "adam"  # or "custom": the caller's


def _check_options(
    family, num_steps, num_draws, num_chains, num_elbo_draws, learning_rate, init_scale
) -> _Options:
    """:func:`advi`'s arguments checked on the host, in this order; raises ValueError or
    TypeError naming the first bad one."""
    return _Options(
        family=validation.one_of("family", family, FAMILIES),
        num_steps=validation.positive_int("num_steps", num_steps),
        num_draws=validation.positive_int("num_draws", num_draws),
        num_chains=validation.positive_int("num_chains", num_chains),
        num_elbo_draws=validation.positive_int("num_elbo_draws", num_elbo_draws),
        learning_rate=validation.positive_float(
            "learning_rate", DEFAULT_LEARNING_RATE if learning_rate is None else learning_rate
        ),
        init_scale=validation.positive_float("init_scale", init_scale),
    )


def _flat_start(target: Target, init):
    """The starting mean flattened, (d,), and ``unravel``, which turns a (d,) array back into
    a position like the target's. Raises ValueError where ``log p`` is not finite there."""
    point, _ = starting_point(target, init, None, init_of="infer.advi (one point)")
    check_scalar_logdensity(target.logdensity, point)
    flat_start, unravel = ravel_pytree(jax.tree.map(jnp.asarray, point))
    start_value = float(target.logdensity(point))
    if not np.isfinite(start_value):
        raise ValueError(
            f"the log density of {target.name!r} is {start_value} at the starting mean; pass "
            "init= at a point inside the support."
        )
    return flat_start, unravel


def _flat_logdensity(target: Target, unravel):
    """``log p`` of a flat (d,) position, a scalar; NaN is read as ``-inf`` (no density)."""

    def logdensity_flat(flat):
        value = target.logdensity(unravel(flat))
        return jnp.where(jnp.isnan(value), -jnp.inf, value)

    return logdensity_flat


def _initial_params(flat_start, family: str, init_scale: float) -> Approximation:
    """``q`` at the start: mean ``flat_start`` (d,), every standard deviation ``init_scale``."""
    log_scale = jnp.full((flat_start.shape[0],), np.log(init_scale), flat_start.dtype)
    return Approximation(
        flat_start,
        log_scale if family == "meanfield" else jnp.diag(log_scale),
    )


def _fit_program(logdensity_flat, optimizer, options: _Options, dimension: int, dtype):
    """The jitted fit of a run of steps: ``(carry, steps) -> (carry, elbo)``, ``steps`` the
    (n,) int32 step numbers and ``elbo`` their (n,) ELBO estimates. ``carry`` is ``(params,
    opt_state, fit_key, skipped, average)``: the Adam iterate, its state, the key folded with
    each step number, the int32 count of non-finite steps (skipped), and the Polyak-Ruppert
    average of the iterates over the second half, which is the fitted ``q``."""
    half = options.num_steps // 2

    def negative_elbo(params, eps):
        z = _draw(params, eps)
        return -(jnp.mean(jax.vmap(logdensity_flat)(z)) + _entropy(params))

    def one_step(carry, step):
        params, opt_state, fit_key, skipped, average = carry
        eps = jax.random.normal(
            jax.random.fold_in(fit_key, step), (options.num_elbo_draws, dimension), dtype
        )
        loss, grads = jax.value_and_grad(negative_elbo)(params, eps)
        finite = jnp.isfinite(loss) & jnp.all(
            jnp.array([jnp.all(jnp.isfinite(g)) for g in jax.tree.leaves(grads)])
        )
        try:
            updates, new_opt_state = optimizer.update(grads, opt_state, params, value=loss)
        except TypeError as err:  # at tracing: before anything runs
            if "required keyword-only argument" not in str(err):
                raise  # not the call's arguments: the optimizer's own error stands
            raise TypeError(
                f"the optimizer's update takes more than the gradient and the loss ({err}). "
                "ADVI's loss is a new Monte Carlo estimate at every step, so a line search "
                "(optax.lbfgs) cannot run on it: use a first-order optimizer (optax.adam, "
                "optax.sgd, with a schedule or optax.contrib.reduce_on_plateau)."
            ) from err
        new_params = optax.apply_updates(params, updates)
        keep = lambda new, old: jax.tree.map(  # noqa: E731
            lambda a, b: jnp.where(finite, a, b), new, old
        )
        params = keep(new_params, params)
        # Polyak-Ruppert: the mean of the iterates over the second half is what is returned,
        # which averages away the noise of the stochastic gradients.
        weight = 1.0 / jnp.maximum(step - half + 1, 1).astype(dtype)
        average = jax.tree.map(
            lambda a, p: jnp.where(step >= half, a + weight * (p - a), p), average, params
        )
        carry = (
            params,
            keep(new_opt_state, opt_state),
            fit_key,
            skipped + (~finite).astype(jnp.int32),
            average,
        )
        return carry, -loss

    @jax.jit
    def fit_chunk(carry, steps):
        return jax.lax.scan(one_step, carry, steps)

    return fit_chunk


def _compile_fit(fit_chunk, carry, num_steps: int, chunk: int) -> dict:
    """``fit_chunk`` compiled for each length its runs of ``chunk`` steps take (the last one
    may be shorter), by length."""
    starts = range(0, num_steps, chunk)
    compiled = {}
    for length in sorted({min(chunk, num_steps - s) for s in starts}):
        example = jnp.arange(length, dtype=jnp.int32)
        compiled[length] = fit_chunk.lower(carry, example).compile()
    return compiled


def _run_fit(compiled: dict, carry, num_steps: int, chunk: int, progress, label: str):
    """All ``num_steps`` steps, ``chunk`` at a time, from ``carry``, with a progress bar when
    asked. Returns the final carry and the ELBO trace, (num_steps,) NumPy."""
    traces = []
    with progress_bar(progress, num_steps, label) as bar:
        for s in range(0, num_steps, chunk):
            steps = jnp.arange(s, min(s + chunk, num_steps), dtype=jnp.int32)
            carry, elbo_chunk = compiled[steps.shape[0]](carry, steps)
            traces.append(elbo_chunk)
            if progress:
                bar.update(steps.shape[0])
                bar.set_postfix_str(f"ELBO {float(elbo_chunk[-1]):.4g}", refresh=False)
    return carry, np.asarray(jnp.concatenate(traces))


def _draw_program(target: Target, logdensity_flat, unravel, total_draws: int, dimension, dtype):
    """The jitted draw from ``q``: ``(params, draw_key) -> (named, log_p, log_weight)``, with
    ``named`` the constrained draws by name, each (total_draws, *event_shape), ``log_p`` the
    (total_draws,) ``log p(z)`` and ``log_weight`` the (total_draws,) ``log p(z) - log q(z)``."""

    @jax.jit
    def draw(params, draw_key):
        eps = jax.random.normal(draw_key, (total_draws, dimension), dtype)
        z = _draw(params, eps)
        log_p = jax.vmap(logdensity_flat)(z)
        log_q = _log_q(params, eps)
        positions = jax.vmap(unravel)(z)
        named = jax.lax.map(target.constrain, positions, batch_size=4096)
        unconstrained = positions if target.loglik_fn is not None else None  # for the LOO
        return named, log_p, log_p - log_q, unconstrained

    return draw


def _assemble_result(
    target, options: _Options, seed, params, skipped, elbo_trace, drawn, timing, wall_start
) -> Result:
    """The :class:`infer.Result` of a fit: ``drawn`` is ``(named, log_p, log_weight,
    unconstrained)`` from :func:`_draw_program`, laid out here as (num_chains, num_draws, ...),
    with ``log_likelihood`` where the target has a ``loglik_fn``; ``params`` the fitted
    ``q``, ``skipped`` the count of skipped steps, ``elbo_trace`` (num_steps,); ``timing``
    gets ``total``, the seconds since ``wall_start``."""
    named, log_p, log_weight, unconstrained = drawn
    total_draws = options.num_chains * options.num_draws
    log_weight_np = np.asarray(log_weight, np.float64)
    finite = np.isfinite(log_weight_np)
    elbo_se = float(np.std(log_weight_np) / np.sqrt(total_draws)) if finite.all() else np.nan

    def chains(value):
        value = np.asarray(value)
        return value.reshape((options.num_chains, options.num_draws, *value.shape[1:]))

    info = {
        "family": options.family,
        "elbo_trace": elbo_trace.tolist(),
        "elbo": float(np.mean(log_weight_np)),
        "elbo_se": elbo_se,
        "pareto_k": pareto_k(log_weight_np),
        "kl_gap": kl_gap(log_weight_np),
        "pareto_k_threshold": pareto_k_threshold(total_draws),
        "num_nonfinite_steps": int(skipped),
        "num_nonfinite_draws": int((~finite).sum()),
        "mean": np.asarray(params.mean).tolist(),
        "scale_tril": np.asarray(_scale_tril(params)).tolist(),
        **target.result_info(),
    }
    settings = {
        "family": options.family,
        "num_steps": options.num_steps,
        "optimizer": options.optimizer,
        "learning_rate": options.learning_rate,
        "num_elbo_draws": options.num_elbo_draws,
        "init_scale": options.init_scale,
    }
    fit_evals = options.num_steps * options.num_elbo_draws
    return Result(
        draws={name: chains(value) for name, value in named.items()},
        stats={"lp": chains(log_p), "log_weight": chains(log_weight)},
        timing={**timing, "total": time.perf_counter() - wall_start},
        num_logdensity_evals=fit_evals + total_draws,
        num_grad_evals=fit_evals,
        sampler=f"advi_{options.family}",
        settings=settings,
        seed=seed,
        target=target.name,
        num_warmup=0,
        thin=1,
        info=info,
        ground_truth=target.ground_truth,
        groups={**_log_likelihood(target, unconstrained, chains), **target.data_groups()},
        dims=dict(target.dims or {}),
    )


def _log_likelihood(target, unconstrained, chains) -> dict:
    """``{"log_likelihood": name -> (num_chains, num_draws, ...)}`` at the draws, or ``{}``."""
    if unconstrained is None:
        return {}
    loglik = pointwise(target, jax.tree.map(chains, unconstrained))
    return {"log_likelihood": loglik} if loglik else {}
