"""Pieces shared by the Metropolis–Hastings family: the accept step and Gaussian scales.

The proposal scale is one array ``scale`` whose rank says how it acts on a flat vector of
size ``dim``: rank 0 (a scalar, identity times a number), rank 1 (a diagonal, shape ``(dim,)``)
or rank 2 (a lower-triangular Cholesky factor, shape ``(dim, dim)``). The rank is static, so
each kind compiles to its own cheap code.
"""

from __future__ import annotations

import functools
from collections.abc import Callable
from typing import Any, NamedTuple

import jax
import jax.numpy as jnp
import numpy as np
from jax.flatten_util import ravel_pytree
from jax.scipy.linalg import solve_triangular

from infer import random_bits, validation
from infer.placement import x64_enabled
from infer.starts import check_scalar_logdensity


class MHResult(NamedTuple):
    """Outcome of one Metropolis–Hastings accept step.

    Attributes:
        state: the proposal where accepted, else the old state (same pytree structure).
        acceptance_rate: ``min(1, exp(log_ratio))``, 0 where the proposal was not finite. Scalar.
        is_accepted: whether the proposal was taken. Scalar bool.
    """

    state: Any
    acceptance_rate: jax.Array
    is_accepted: jax.Array


def safe_log_ratio(log_ratio: jax.Array, proposal_logdensity: jax.Array) -> jax.Array:
    """``log_ratio``, or ``-inf`` where it or the proposal's log density is NaN or infinite.

    A NaN or infinite log density at a proposal must reject it, never enter the chain.
    """
    ok = jnp.isfinite(proposal_logdensity) & ~jnp.isnan(log_ratio)
    return jnp.where(ok, log_ratio, -jnp.inf)


def is_nonfinite(logdensity: jax.Array) -> jax.Array:
    """Whether a proposal's log density is numerical trouble: NaN or ``+inf``. (``-inf`` is
    not: it says the proposal is outside the support, an ordinary rejection.)"""
    return jnp.isnan(logdensity) | (logdensity == jnp.inf)


def mh_accept(uniform: jax.Array, old_state, new_state, log_ratio: jax.Array) -> MHResult:
    """Accept ``new_state`` with probability ``min(1, exp(log_ratio))``.

    Args:
        uniform: a U[0, 1) draw, scalar.
        old_state, new_state: states with the same pytree structure.
        log_ratio: scalar, already made safe with :func:`safe_log_ratio`.

    The output's pytree structure never depends on the decision.
    """
    acceptance_rate = jnp.minimum(1.0, jnp.exp(log_ratio))
    is_accepted = uniform < acceptance_rate
    state = jax.tree.map(lambda new, old: jnp.where(is_accepted, new, old), new_state, old_state)
    return MHResult(state, acceptance_rate, is_accepted)


def normal_and_uniform(rng_key: jax.Array, size: int, dtype) -> tuple[jax.Array, jax.Array]:
    """``size`` standard normal draws and one U[0, 1) draw from a single call of the PRNG.

    The counter-based PRNG's cost is per call, so drawing the proposal noise and the accept
    uniform from one stream of bits, rather than splitting the key first, nearly halves the
    random-number cost of a random-walk step (:func:`infer.random_bits.words` makes the bits,
    both output words of each threefry hash). The
    normals are made as ``jax.random.normal`` makes them (inverse error function of uniforms
    on (-1, 1)).

    Returns:
        ``(noise (size,), uniform ())``.
    """
    dtype = jnp.dtype(dtype)
    if dtype not in (jnp.dtype(jnp.float32), jnp.dtype(jnp.float64)):
        key_noise, key_uniform = jax.random.split(rng_key)
        return jax.random.normal(key_noise, (size,), dtype), jax.random.uniform(
            key_uniform, (), dtype
        )
    width = 8 * dtype.itemsize
    unit = random_bits.unit_interval(random_bits.words(rng_key, size + 1, width), dtype)
    low = np.nextafter(np.array(-1.0, dtype), np.array(0.0, dtype))
    symmetric = jnp.maximum(low, unit[:size] * (1.0 - low) + low)  # (-1, 1)
    noise = np.sqrt(2.0).astype(dtype) * jax.scipy.special.erfinv(symmetric)
    return noise, unit[size]


def scale_matvec(scale: jax.Array, z: jax.Array) -> jax.Array:
    """``L @ z`` for the scale kinds above. ``z``: (dim,)."""
    if scale.ndim == 2:
        return scale @ z
    return scale * z


def scale_tmatvec(scale: jax.Array, g: jax.Array) -> jax.Array:
    """``L.T @ g``. ``g``: (dim,)."""
    if scale.ndim == 2:
        return scale.T @ g
    return scale * g


def scale_solve(scale: jax.Array, r: jax.Array) -> jax.Array:
    """``L^{-1} @ r``. ``r``: (dim,)."""
    if scale.ndim == 2:
        return solve_triangular(scale, r, lower=True)
    return r / scale


def identity_scale(dtype=jnp.float32) -> jax.Array:
    """The rank-0 scale 1.0."""
    return jnp.ones((), dtype)


class Proposal(NamedTuple):
    """A distribution to propose from, as two pure functions.

    Attributes:
        sample: ``sample(rng_key) -> position`` for one draw.
        log_prob: ``log_prob(position) -> scalar`` log density, normalised.
        sample_batch: ``sample_batch(rng_key, n) -> positions`` with a leading axis ``n``.
        log_prob_batch: ``log_prob_batch(positions) -> (n,)``.
        support: the ``numpyro`` support constraint where known, else ``None``.
        sample_and_log_prob_batch: optional ``(rng_key, n) -> (positions, (n,) log_prob)``,
            for proposals that get their density for free while sampling (a step function
            knows the piece it drew from).
    """

    sample: Callable
    log_prob: Callable
    sample_batch: Callable
    log_prob_batch: Callable
    support: Any = None
    sample_and_log_prob_batch: Callable | None = None

    def sample_with_log_prob(self, rng_key, n: int):
        """``(positions, log_prob (n,))`` for ``n`` draws."""
        if self.sample_and_log_prob_batch is not None:
            return self.sample_and_log_prob_batch(rng_key, n)
        positions = self.sample_batch(rng_key, n)
        return positions, self.log_prob_batch(positions)


def as_proposal(proposal, argument: str = "proposal") -> Proposal:
    """Accept a ``numpyro.distributions`` distribution (anything with ``sample(key, shape)`` and
    ``log_prob(x)``), a ``(sample_fn, log_prob_fn)`` pair, or a :class:`Proposal`.

    Raises:
        TypeError: naming ``argument`` when ``proposal`` is none of these.
    """
    if isinstance(proposal, Proposal):
        return proposal
    validation.not_a_class(argument, proposal)
    if hasattr(proposal, "sample") and hasattr(proposal, "log_prob"):
        validation.refuse_discrete(argument, proposal, "its draws are proposed real positions")
        dist = proposal
        # NumPyro broadcasts batch shapes implicitly; let it, even where a caller's config
        # makes implicit rank promotion an error (scoped to these calls, traced or not).
        allow = functools.partial(jax.numpy_rank_promotion, "allow")
        # traced with its NumPy arrays copied, one copy per mode of jax_enable_x64 (see
        # validation.fresh_numpy_leaves): the distribution traced before a switch failed
        # inside XLA after it
        copies: dict = {}

        def current():
            mode = x64_enabled()
            if mode not in copies:
                copies[mode] = validation.fresh_numpy_leaves(proposal)
            return copies[mode]

        def sample(key):
            with allow():
                return current().sample(key)

        def log_prob(x):
            with allow():  # one draw: batch dimensions of the distribution are coordinates
                return jnp.sum(current().log_prob(x))

        def sample_batch(key, n):
            with allow():
                return current().sample(key, (n,))

        def log_prob_batch(xs):
            with allow():
                lp = current().log_prob(xs)
            extra = lp.ndim - 1
            return jnp.sum(lp, axis=tuple(range(1, 1 + extra))) if extra > 0 else lp

        return Proposal(
            sample=sample,
            log_prob=log_prob,
            sample_batch=sample_batch,
            log_prob_batch=log_prob_batch,
            support=getattr(dist, "support", None),
        )
    if isinstance(proposal, tuple) and len(proposal) == 2 and all(map(callable, proposal)):
        sample_fn, log_prob_fn = proposal
        draw = _check_sample_fn(sample_fn, argument)
        check_scalar_logdensity(log_prob_fn, draw, f"{argument}'s log_prob_fn")
        return Proposal(
            sample=sample_fn,
            log_prob=log_prob_fn,
            sample_batch=lambda key, n: jax.vmap(sample_fn)(jax.random.split(key, n)),
            log_prob_batch=jax.vmap(log_prob_fn),
        )
    raise TypeError(
        f"{argument} must be a numpyro.distributions distribution or a (sample_fn, log_prob_fn) "
        f"pair of callables, where sample_fn(rng_key) returns one draw and log_prob_fn(x) its "
        f"log density; got {type(proposal).__name__}."
    )


def _check_sample_fn(sample_fn, argument: str):
    """Refuse a pair whose first function does not take a key (the pair given the other way
    round fails later, deep in JAX, on arithmetic with a key); returns the draw's shapes."""
    try:
        draw = jax.eval_shape(sample_fn, jax.random.key(0))
    except Exception as err:
        raise TypeError(
            f"{argument}=(sample_fn, log_prob_fn): sample_fn(rng_key) failed "
            f"({validation.error_line(err)}). The pair is (sample_fn, log_prob_fn), in that "
            "order: sample_fn(rng_key) returns one draw."
        ) from None
    if any(jnp.issubdtype(leaf.dtype, jax.dtypes.prng_key) for leaf in jax.tree.leaves(draw)):
        raise TypeError(
            f"{argument}=(sample_fn, log_prob_fn): sample_fn(rng_key) returned a key, not a "
            "draw. The pair is (sample_fn, log_prob_fn), in that order."
        )
    return draw


def describe_proposal(proposal) -> str:
    """A proposal as text that is the same for equal proposals in any process (a sampler's
    settings, compared on resume): a distribution's class and its parameters by name,
    ``Normal(loc=0.0, scale=2.0)``, read from the fields NumPyro flattens it by (wrappers
    such as ``Independent`` described with their base, lazily computed properties left
    alone; large arrays by shape and a digest of their bytes); functions by their qualified
    names and what they close over. ``repr`` would hold a memory address, and the order of
    NumPyro's flattened fields changes from one process to the next."""
    if isinstance(proposal, tuple):  # a (sample_fn, log_prob_fn) pair or a Proposal
        return f"({', '.join(describe_callable(fn) for fn in proposal if fn is not None)})"
    kind = type(proposal)
    names = set()
    for gather in ("gather_pytree_data_fields", "gather_pytree_aux_fields"):
        if hasattr(kind, gather):
            names.update(getattr(kind, gather)())
    if not names:
        names = set(getattr(proposal, "arg_constraints", None) or {})
    parts = []
    for name in sorted(names):
        value = vars(proposal).get(name)
        if value is not None:
            parts.append(f"{name}={_part_text(value)}")
    return f"{kind.__name__}({', '.join(parts)})"


def _part_text(value) -> str:
    if hasattr(value, "sample") and hasattr(value, "log_prob"):  # a base distribution
        return describe_proposal(value)
    if isinstance(value, list | tuple) and not _is_value(value):
        return f"[{', '.join(map(_part_text, value))}]"
    if isinstance(value, bool | str) or value is None:
        return repr(value)
    if not _is_value(value) and not hasattr(value, "__array__") and hasattr(value, "__dict__"):
        fields = sorted((k, v) for k, v in vars(value).items() if _is_value(v))  # a transform's
        return f"{type(value).__name__}({', '.join(f'{k}={_value_text(v)}' for k, v in fields)})"
    return _value_text(value)


def describe_callable(fn) -> str:
    """A function by its module and qualified name, a ``functools.partial`` with its
    arguments, and the numbers and arrays a closure holds: the same text in any process."""
    if isinstance(fn, functools.partial):
        args = [
            *map(_value_text, fn.args),
            *(f"{k}={_value_text(v)}" for k, v in fn.keywords.items()),
        ]
        return f"partial({describe_callable(fn.func)}, {', '.join(args)})"
    module = getattr(fn, "__module__", "") or ""
    name = f"{module}.{getattr(fn, '__qualname__', type(fn).__name__)}".lstrip(".")
    cells = [cell.cell_contents for cell in getattr(fn, "__closure__", None) or ()]
    held = [_value_text(v) for v in cells if _is_value(v)]
    return f"{name}[{', '.join(held)}]" if held else name


def _is_value(value) -> bool:
    return isinstance(value, int | float | np.ndarray | jax.Array | np.generic)


def _value_text(value) -> str:
    import hashlib

    if not _is_value(value) and not hasattr(value, "__array__"):
        return type(value).__name__
    array = np.asarray(value)
    if array.size <= 8:
        return repr(array.tolist())
    digest = hashlib.sha1(np.ascontiguousarray(array).tobytes()).hexdigest()[:12]
    return f"{array.dtype}{list(array.shape)}:{digest}"


def check_covariance(covariance, argument: str = "covariance"):
    """Returns ``(kind, fixed_array_or_None)``; ``kind`` in None, "diagonal", "dense", "fixed".
    ``argument``: the name the messages give it (the checks suit any covariance-like matrix)."""
    if covariance is None:
        return None, None
    if isinstance(covariance, str):
        validation.one_of(
            argument,
            covariance,
            ("diagonal", "dense"),
            "Use None for an isotropic proposal, or pass an array to fix the covariance.",
        )
        return covariance, None
    cov = np.asarray(covariance, dtype=np.float64)
    if cov.ndim not in (1, 2) or (cov.ndim == 2 and cov.shape[0] != cov.shape[1]):
        chains = cov.ndim == 3 or cov.ndim == 2  # a (num_chains, ...) of state.tuned's
        raise ValueError(
            f"{argument} must be a vector of variances (dim,) or a square matrix (dim, dim); "
            f"got shape {cov.shape}."
            + (f" {validation.per_chain_hint(argument, cov)}" if chains else "")
        )
    if not np.all(np.isfinite(cov)):
        raise ValueError(f"{argument} must be finite; it contains NaN or inf.")
    if cov.ndim == 1 and np.any(cov <= 0):
        raise ValueError(f"{argument}: variances must be positive; got min {cov.min()}.")
    scale = float(np.max(np.abs(np.diagonal(cov)))) if cov.ndim == 2 and cov.size else 0.0
    if cov.ndim == 2 and not np.allclose(cov, cov.T, rtol=1e-6, atol=1e-6 * scale):
        i, j = np.unravel_index(np.argmax(np.abs(cov - cov.T)), cov.shape)
        raise ValueError(
            f"{argument} must be symmetric; entry [{i}, {j}] is {cov[i, j]:.6g} and [{j}, {i}] "
            f"is {cov[j, i]:.6g} (the Cholesky factorisation would read the lower triangle "
            "alone). Pass (C + C.T) / 2 if that is what you mean."
        )
    if cov.ndim == 2:
        try:
            np.linalg.cholesky(cov)
        except np.linalg.LinAlgError:
            raise ValueError(
                f"{argument} must be symmetric positive definite; its Cholesky factorisation "
                "failed. Add a small multiple of the identity, or leave it out to have the "
                "warm-up estimate it (covariance='dense' for the random walks and MALA, "
                "dense_mass=True for HMC and NUTS)."
            ) from None
    return "fixed", cov


def check_covariance_dim(covariance, position, argument: str = "covariance") -> None:
    if covariance is None:
        return
    dim = ravel_pytree(position)[0].size
    if covariance.shape[0] != dim:
        raise ValueError(
            f"{argument} has shape {covariance.shape} but the target has {dim} dimension(s); "
            f"pass {argument} of shape ({dim},) or ({dim}, {dim})."
        )
