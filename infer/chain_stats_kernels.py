"""The device side of :mod:`infer.chain_stats`: the compiled program that sorts, ranks,
transforms and autocorrelates every parameter (one ``jax.jit`` per shape and plan). The
functions take one parameter's draws ``(num_chains, num_draws)``; :func:`compiled` maps them
over parameters in memory-bounded batches, and over devices when the draws are sharded.
"""

from __future__ import annotations

import math
from typing import NamedTuple

import jax
import jax.numpy as jnp
import numpy as np
from jax import lax
from jax.sharding import NamedSharding, PartitionSpec
from scipy.fftpack import next_fast_len

from infer.batchwise import batchwise_cond
from infer.chain_ranks import FAST_FROM, folded_z_scores, sort, z_scores

TAIL_PROB = (0.05, 0.95)
STATISTICS = ("rhat", "ess_bulk", "ess_tail", "mcse_mean", "mcse_sd")
_CONSTANT_RANGE = float(np.finfo(float).resolution)  # ArviZ: ESS of a flatter series is its size
_MIN_DRAWS = 4
_BATCH_BYTES = 2**23  # working memory of one vmapped batch of parameters: near the cache's size
_WORK_PER_VALUE = 48  # float64 words of working memory per draw and parameter, roughly
FLOAT64_PLATFORMS = frozenset({"cpu", "gpu", "cuda", "rocm"})
RHAT_METHODS = ("rank", "split", "identity")


class Plan(NamedTuple):
    """The static description of one compiled program (hashable: a jit static argument)."""

    wanted: tuple[str, ...]  # among STATISTICS and "rhat_nested"
    prob: tuple[float, float]
    superchain_ids: tuple[int, ...] | None
    nested_method: str
    compute_dtype: str
    out_dtype: str
    mesh: jax.sharding.Mesh | None  # the mesh the draws are sharded over, if any


# ----------------------------------------------------------------------------------------------
# One parameter: x is (num_chains, num_draws) in the dtype of the draws.


def _mean(x, axis=None, keepdims=False):
    """The mean, shifted by the first value: exact for a constant (XLA turns a division by a
    count into a multiplication by its reciprocal, which numpy does not) and stable in float32."""
    if axis is None:
        shift = x.reshape(-1)[0]
        return shift + (x - shift).mean()
    shift = lax.index_in_dim(x, 0, axis, keepdims=True)
    mean = shift + (x - shift).mean(axis=axis, keepdims=True)
    return mean if keepdims else jnp.squeeze(mean, axis)


def _var(x, axis=None, ddof=0):
    """The centred variance: a sum of squares of deviations from :func:`_mean`."""
    deviations = x - _mean(x, axis=axis, keepdims=True)
    count = x.size if axis is None else x.shape[axis]
    return (deviations**2).sum(axis=axis) / (count - ddof)


def _split(x):
    """The first and last halves of every chain as chains of their own: (2 num_chains, half)."""
    half = x.shape[1] // 2
    return jnp.concatenate([x[:, :half], x[:, x.shape[1] - half :]], axis=0)


def _quantile(sorted_values, prob):
    """numpy's "linear" quantile of sorted values, rounded as numpy rounds it in their dtype."""
    size = sorted_values.shape[0]
    virtual = (size - 1) * prob
    below = min(max(math.floor(virtual), 0), size - 1)
    above = min(below + 1, size - 1)
    gamma = virtual - math.floor(virtual)
    a, b = sorted_values[below], sorted_values[above]
    dtype = sorted_values.dtype
    if gamma >= 0.5:
        return b - (b - a) * jnp.asarray(1 - gamma, dtype)
    return a + (b - a) * jnp.asarray(gamma, dtype)


def _geyer_tau(rho, num_draws):
    """ArviZ's integrated autocorrelation time from the autocorrelations ``rho`` of its lags
    ``0..len(rho)-1`` for chains of ``num_draws`` draws: Geyer's initial positive sequence, its
    monotone version, and ArviZ's last-term rule. Returns ``(tau, exact)``: ``exact`` is False
    when ``rho`` stops before the lag where Geyer's sum does (then ``tau`` means nothing)."""
    limit = max((num_draws - 3) // 2, 0)  # the largest pair ArviZ's loop can reach
    known = min(limit, max((rho.shape[0] - 2) // 2, 0))  # the last pair rho holds
    pairs = rho[: 2 * (known + 1)].reshape(known + 1, 2).at[0, 0].set(1.0)
    pair_sums = pairs.sum(axis=1)
    stops = ~(pair_sums[: min(known + 1, limit)] > 0)
    found = stops.any()
    stop = jnp.where(found, jnp.argmax(stops), known) if stops.shape[0] else jnp.asarray(known)
    monotone = lax.cummin(pair_sums)
    body = jnp.sum(jnp.where(jnp.arange(known + 1) < stop, monotone, 0.0))
    last_even, last_pair = pairs[stop, 0], pair_sums[stop]
    tail = jnp.where((last_pair >= 0) | (last_even > 0), last_even, 0.0)
    tau = -1 + 2 * body + tail
    exact = found | (known == limit)
    return jnp.where(jnp.isnan(rho[1]), jnp.nan, tau), exact


def _tau(centred, between, fft_len):
    """Geyer's ``(tau, exact)`` of each series of ``centred`` (num_series, num_chains, n),
    from its chains' mean autocovariance at the lags ``0..fft_len - n`` (those a circular
    correlation of that length gets without wrapping round); ``between``: the variance of the
    chain means (num_series,)."""
    n = centred.shape[2]
    lags = min(fft_len - n, n - 1) + 1
    spectrum = jnp.fft.rfft(centred, n=fft_len, axis=2)
    power = (spectrum.real**2 + spectrum.imag**2).mean(axis=1)  # chains averaged: irfft is linear
    mean_acov = jnp.fft.irfft(power, n=fft_len, axis=1)[:, :lags] / n
    mean_var = mean_acov[:, 0] * n / (n - 1)
    var_plus = mean_var * (n - 1) / n + between
    rho = 1 - (mean_var[:, None] - mean_acov) / var_plus[:, None]
    return jax.vmap(lambda r: _geyer_tau(r, n))(rho)


def _fft_lengths(num_chains, n):
    """The FFT lengths of every lag (as ArviZ: ``next_fast_len(2 n)``) and, for series of
    :data:`FAST_FROM` draws and more, of the first ``max(n // 8, 32)`` lags, where Geyer's sum
    stops for all but slowly mixing chains; None for the second when it would not pay."""
    full = next_fast_len(2 * n)
    short = next_fast_len(n + max(n // 8, 32))
    return full, short if short < 0.75 * full and num_chains * n >= FAST_FROM else None


def _every_lag(tau, exact, centred, between):
    return _tau(centred, between, _fft_lengths(*centred.shape[1:])[0])[0]


# Geyer's tau from the first lags where that was exact, else from every lag (for a batch of
# parameters under vmap: from every lag when any of the batch needs it).
_tau_or_every_lag = batchwise_cond(
    lambda tau, exact, centred, between: ~exact.all(),
    _every_lag,
    lambda tau, exact, centred, between: tau,
)


def _geyer(centred, between):
    """Geyer's ``tau`` of each series (see :func:`_tau`), from the first lags'
    autocovariances when Geyer's sum stops within them, else from every lag's."""
    full, short = _fft_lengths(*centred.shape[1:])
    if short is None:
        return _tau(centred, between, full)[0]
    tau, exact = _tau(centred, between, short)
    return _tau_or_every_lag(tau, exact, centred, between)


def _ess(series, ctype):
    """ArviZ's ``_ess`` of each of a stack of split series (num_series, num_chains, half)."""
    _, num_chains, n = series.shape
    size = num_chains * n
    series = series.astype(ctype)
    centred = series - _mean(series, axis=2, keepdims=True)
    tau = _geyer(centred, _var(_mean(series, axis=2), axis=1, ddof=1))
    ess = size / jnp.maximum(tau, 1 / math.log10(size))
    constant = series.max(axis=(1, 2)) - series.min(axis=(1, 2)) < _CONSTANT_RANGE
    return jnp.where(constant, size, ess)


def _rhat(z):
    """ArviZ's ``_rhat`` of chains (num_chains, num_draws)."""
    n = z.shape[1]
    between = n * _var(_mean(z, axis=1), ddof=1)
    within = _var(z, axis=1, ddof=1).mean()
    return jnp.sqrt((between / within + n - 1) / n)


def _rhat_nested(z, superchain_ids):
    """Nested R-hat (Margossian et al. 2024, eq. 4-8) of chains (num_chains, num_draws);
    ``superchain_ids`` labels each chain 0..K-1, every superchain with the same count."""
    ids = np.asarray(superchain_ids)
    members = jnp.asarray(ids[None, :] == np.arange(ids.max() + 1)[:, None], z.dtype)
    per_super = int((ids == 0).sum())
    chain_mean = _mean(z, axis=1)
    super_mean = members @ chain_mean / per_super
    if per_super > 1:
        deviation = chain_mean[None, :] - super_mean[:, None]
        between_chain = (members * deviation**2).sum(axis=1) / (per_super - 1)
    else:
        between_chain = jnp.zeros_like(super_mean)
    within_chain = members @ _var(z, axis=1, ddof=1) / per_super
    between_super = _var(super_mean, ddof=1)
    return jnp.sqrt(1 + between_super / (within_chain + between_chain).mean())


def _rank_rhat(split, z_bulk, sorted_split, order, rhat_fn, scores):
    """The larger of the R-hats of the normal scores of the split draws and of the folded
    split draws ``|x - median|`` (ArviZ's max, which keeps the bulk value when the tail is NaN)."""
    z_tail = folded_z_scores(split.reshape(-1), sorted_split, order, scores)
    bulk = rhat_fn(z_bulk.reshape(split.shape))
    tail = rhat_fn(z_tail.reshape(split.shape))
    return jnp.where(tail > bulk, tail, bulk)


def _nested(x, split, ranked, scores, plan):
    ids = plan.superchain_ids
    if plan.nested_method == "identity":
        return _rhat_nested(x.astype(scores.dtype), ids)
    split_ids = ids + ids  # half-chains: all first halves, then all second halves
    if plan.nested_method == "split":
        return _rhat_nested(split.astype(scores.dtype), split_ids)
    z_bulk, sorted_split, order = ranked
    return _rank_rhat(
        split, z_bulk, sorted_split, order, lambda z: _rhat_nested(z, split_ids), scores
    )


def _param_stats(x, scores, plan):
    """The statistics of ``plan.wanted`` for one parameter (num_chains, num_draws)."""
    ctype = jnp.dtype(plan.compute_dtype)
    wanted = set(plan.wanted)
    num_chains, num_draws = x.shape
    nan = jnp.asarray(jnp.nan, ctype)
    if num_draws < _MIN_DRAWS:
        return {name: nan for name in plan.wanted}
    split = _split(x)
    out, series = {}, {}
    ranked = {"rhat", "ess_bulk"} & wanted or (
        "rhat_nested" in wanted and plan.nested_method == "rank"
    )
    if ranked:
        z_bulk, sorted_split, order = z_scores(split.reshape(-1), scores)
        series["ess_bulk"] = z_bulk.reshape(split.shape)
    if "rhat" in wanted and num_chains > 1:
        out["rhat"] = _rank_rhat(split, z_bulk, sorted_split, order, _rhat, scores)
    elif "rhat" in wanted:
        out["rhat"] = nan
    if "rhat_nested" in wanted:
        ranks = (z_bulk, sorted_split, order) if ranked else None
        out["rhat_nested"] = _nested(x, split, ranks, scores, plan) if num_chains > 1 else nan
    if "ess_tail" in wanted:
        if ranked and num_draws % 2 == 0:
            sorted_all = sorted_split  # the split draws are all the draws
        else:
            sorted_all = sort(x.reshape(-1), False, wide=False)
        for i, prob in enumerate(plan.prob):
            series[f"tail{i}"] = split <= _quantile(sorted_all, prob)
    xc = x.astype(ctype)
    if "mcse_mean" in wanted:
        series["mcse_mean"] = _split(xc)
    if "mcse_sd" in wanted:
        squares = (xc - _mean(xc)) ** 2
        series["mcse_sd"] = _split(squares)
    if series:
        stacked = jnp.stack([s.astype(ctype) for s in series.values()])
        ess = dict(zip(series, _ess(stacked, ctype), strict=True))
    if "ess_bulk" in wanted:
        out["ess_bulk"] = ess["ess_bulk"]
    if "ess_tail" in wanted:
        out["ess_tail"] = jnp.where(ess["tail1"] < ess["tail0"], ess["tail1"], ess["tail0"])
    if "mcse_mean" in wanted:
        out["mcse_mean"] = jnp.sqrt(_var(xc, ddof=1)) / jnp.sqrt(ess["mcse_mean"])
    if "mcse_sd" in wanted:
        evar = _mean(squares)  # ArviZ's mean(s**4) - evar**2, centred: exactly 0 for constant s**2
        varvar = _mean((squares - evar) ** 2) / ess["mcse_sd"]
        out["mcse_sd"] = jnp.sqrt(varvar / evar / 4)
    has_nan = jnp.isnan(x).any()
    return {name: jnp.where(has_nan, nan, out[name]) for name in plan.wanted}


# ----------------------------------------------------------------------------------------------
# The compiled program: every parameter of every array, vmapped in batches.


def _compute(arrays, scores, plan):
    """The statistics of every parameter of every array ``(num_chains, num_draws, ...)``,
    as one dict per array of arrays shaped like its trailing axes."""
    ctype = jnp.dtype(plan.compute_dtype)
    columns, groups = [], {}
    for i, x in enumerate(arrays):
        if not jnp.issubdtype(x.dtype, jnp.floating) or x.dtype.itemsize > ctype.itemsize:
            x = x.astype(ctype)
        groups.setdefault(x.dtype, []).append(i)
        columns.append(x.reshape(x.shape[0], x.shape[1], math.prod(x.shape[2:])))
    results = [None] * len(arrays)
    for indices in groups.values():
        stacked = jnp.concatenate([columns[i] for i in indices], axis=2)
        flat = _over_devices(jnp.moveaxis(stacked, 2, 0), scores, plan)
        offset = 0
        for i in indices:
            width, shape = columns[i].shape[2], arrays[i].shape[2:]
            results[i] = {
                name: value[offset : offset + width].reshape(shape).astype(plan.out_dtype)
                for name, value in flat.items()
            }
            offset += width
    return results


def _map_parameters(params, scores, plan):
    """``_param_stats`` over parameters (num_params, num_chains, num_draws), vmapped in batches
    whose working memory stays near ``_BATCH_BYTES``."""
    num_params, num_chains, num_draws = params.shape
    per_param = num_chains * num_draws * _WORK_PER_VALUE * 8
    batch_size = int(min(max(_BATCH_BYTES // per_param, 1), max(num_params, 1)))
    return lax.map(lambda x: _param_stats(x, scores, plan), params, batch_size=batch_size)


def _over_devices(params, scores, plan):
    """``_map_parameters`` split by parameter over the devices of the mesh the draws are sharded
    on: the draws are exchanged once between the devices, then each sorts and transforms whole
    parameters of its own (parameters are padded with constants up to a multiple of the
    device count)."""
    mesh = plan.mesh
    if mesh is None:
        return _map_parameters(params, scores, plan)
    num_params = params.shape[0]
    padding = -num_params % mesh.size
    params = jnp.pad(params, ((0, padding), (0, 0), (0, 0)))
    by_param = PartitionSpec(mesh.axis_names)
    explicit = all(t == jax.sharding.AxisType.Explicit for t in mesh.axis_types)
    if explicit:  # sharding in types: say where the data go (XLA decides for Auto axes)
        params = jax.sharding.reshard(params, NamedSharding(mesh, by_param))
    spread = jax.shard_map(
        lambda p, s: _map_parameters(p, s, plan),
        mesh=mesh,
        in_specs=(by_param, PartitionSpec()),
        out_specs=by_param,
    )
    results = spread(params, scores)
    if explicit:
        results = jax.sharding.reshard(results, NamedSharding(mesh, PartitionSpec()))
    return {name: value[:num_params] for name, value in results.items()}


compiled = jax.jit(_compute, static_argnames="plan")
