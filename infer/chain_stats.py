"""Convergence diagnostics computed on the device, in JAX: rank-normalised split R-hat, bulk and
tail ESS, MCSE of the mean and of the sd, and nested R-hat.

Each function reproduces ``arviz_stats`` 1.x (its numpy ``base`` backend, which stays the
reference behind ``infer.summary`` and the DataTree) step by step: split chains (the middle draw
of an odd chain is dropped), ranks with ties averaged as ``scipy.stats.rankdata(method="average")``,
Blom's offset ``z = Phi^-1((r - 3/8) / (S + 1/4))``, the folded draws ``|x - median|`` for the
tail R-hat, autocovariances by FFT, Geyer's initial positive then monotone sequence with ArviZ's
exact truncation, tail ESS as the smaller ESS of the indicators ``x <= q`` at the two quantiles
(numpy's "linear" quantile), and ArviZ's MCSE of the sd. Ranks come from sorting on the device.

Draws are ``(num_chains, num_draws, ...)``: the trailing axes are flattened into parameters,
which are vmapped in batches sized to bound memory. Every function also takes a dict
``name -> draws`` and then returns a dict with the same names. One program is compiled per
shape, dtype and option and cached by ``jax.jit``; a second call with the same shapes compiles
nothing. The draws are used as given, so a ``jax.Array`` sharded along the chain axis is
computed where it lies (nothing is copied to the host).

Precision: float64 by default where the backend has it (CPU and GPU), inside a
``jax.enable_x64`` context around the call, so that the 1e-5 relative agreement with ArviZ does
not depend on the scale or autocorrelation of the draws (float32 FFT round-off alone is about
1e-6 of the variance per lag, and Geyer's sum adds up hundreds of lags for a slowly mixing
chain). Elsewhere (TPU), or with ``dtype="float32"``, the same program runs in float32 with the
formulas kept stable: every variance is centred first, and the normal quantile is taken of the
smaller tail probability (``Phi^-1(1 - q) = -Phi^-1(q)``) so that extreme ranks keep their
precision. The median of the folded draws and the tail quantiles are computed in the dtype of
the draws, as numpy does, so that the indicators ``x <= q`` match ArviZ's exactly. Results
come back in JAX's default float dtype (float32 unless x64 is enabled: a relative rounding of
at most 6e-8).

NaN results are returned, never dropped: a parameter with a NaN draw gets NaN for every
statistic, as in ArviZ; a constant parameter gets what ArviZ gives (R-hat NaN, ESS equal to the
number of split draws, MCSE of the mean 0, MCSE of the sd NaN). Callers should flag them.
Fewer than 4 draws give NaN, and R-hat of one chain is NaN, as in ArviZ.

Example:
    >>> import numpy as np
    >>> from infer import chain_stats
    >>> draws = np.random.default_rng(0).normal(size=(4, 1000, 3))
    >>> stats = chain_stats.summary_stats(draws)  # rhat, ess_bulk, ess_tail, mcse_mean, mcse_sd
    >>> stats["ess_bulk"].shape
    (3,)
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from typing import NamedTuple

import jax
import jax.numpy as jnp
import numpy as np
from jax import lax
from jax.scipy.special import ndtri
from scipy.fftpack import next_fast_len

TAIL_PROB = (0.05, 0.95)
STATISTICS = ("rhat", "ess_bulk", "ess_tail", "mcse_mean", "mcse_sd")
_BLOM = 3 / 8
_CONSTANT_RANGE = float(np.finfo(float).resolution)  # ArviZ: ESS of a flatter series is its size
_MIN_DRAWS = 4
_BATCH_BYTES = 2**29  # working memory of one vmapped batch of parameters
_WORK_PER_VALUE = 48  # float64 words of working memory per draw and parameter, roughly
_FLOAT64_PLATFORMS = frozenset({"cpu", "gpu", "cuda", "rocm"})
_RHAT_METHODS = ("rank", "split", "identity")


class _Plan(NamedTuple):
    """The static description of one compiled program (hashable: a jit static argument)."""

    wanted: tuple[str, ...]  # among STATISTICS and "rhat_nested"
    prob: tuple[float, float]
    superchain_ids: tuple[int, ...] | None
    nested_method: str
    compute_dtype: str
    out_dtype: str


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


def _z_scores(values, ctype):
    """Normal scores of average ranks (ArviZ's ``_z_scale``) of a 1-D array, and the sorted
    values. Ties get the mean of their ranks, as ``scipy.stats.rankdata(method="average")``."""
    size = values.shape[0]
    index = lax.iota(jnp.int32, size)
    sorted_values, order = lax.sort((values, index), num_keys=1)
    differs = sorted_values[1:] != sorted_values[:-1]
    true = jnp.ones(1, bool)
    first = lax.cummax(jnp.where(jnp.concatenate([true, differs]), index, 0))
    last = lax.cummin(jnp.where(jnp.concatenate([differs, true]), index, size - 1), reverse=True)
    rank = (first + last).astype(ctype) / 2 + 1
    mirrored = size + 1 - rank
    z_low = ndtri((jnp.minimum(rank, mirrored) - _BLOM) / (size + 1 - 2 * _BLOM))
    z_sorted = jnp.where(rank <= mirrored, z_low, -z_low)
    z = jnp.zeros(size, ctype).at[order].set(z_sorted, unique_indices=True)
    return z, sorted_values


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


def _geyer_tau(rho):
    """ArviZ's integrated autocorrelation time from autocorrelations ``rho`` (num_draws,):
    Geyer's initial positive sequence, its monotone version, and ArviZ's last-term rule."""
    limit = max((rho.shape[0] - 3) // 2, 0)  # the largest pair ArviZ's loop can reach
    pairs = rho[: 2 * (limit + 1)].reshape(limit + 1, 2).at[0, 0].set(1.0)
    pair_sums = pairs.sum(axis=1)
    if limit == 0:
        stop = jnp.asarray(0)
    else:
        stops = ~(pair_sums[:limit] > 0)
        stop = jnp.where(stops.any(), jnp.argmax(stops), limit)
    monotone = lax.cummin(pair_sums)
    body = jnp.sum(jnp.where(jnp.arange(limit + 1) < stop, monotone, 0.0))
    last_even, last_pair = pairs[stop, 0], pair_sums[stop]
    tail = jnp.where((last_pair >= 0) | (last_even > 0), last_even, 0.0)
    tau = -1 + 2 * body + tail
    return jnp.where(jnp.isnan(rho[1]), jnp.nan, tau)


def _ess(series, ctype):
    """ArviZ's ``_ess`` of each of a stack of split series (num_series, num_chains, half)."""
    _, num_chains, n = series.shape
    size = num_chains * n
    series = series.astype(ctype)
    centred = series - _mean(series, axis=2, keepdims=True)
    fft_len = next_fast_len(2 * n)
    spectrum = jnp.fft.rfft(centred, n=fft_len, axis=2)
    power = (spectrum.real**2 + spectrum.imag**2).mean(axis=1)  # chains averaged: irfft is linear
    mean_acov = jnp.fft.irfft(power, n=fft_len, axis=1)[:, :n] / n
    mean_var = mean_acov[:, 0] * n / (n - 1)
    var_plus = mean_var * (n - 1) / n + _var(_mean(series, axis=2), axis=1, ddof=1)
    rho = 1 - (mean_var[:, None] - mean_acov) / var_plus[:, None]
    tau = jax.vmap(_geyer_tau)(rho)
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


def _rank_rhat(split, z_bulk, sorted_split, rhat_fn, ctype):
    """The larger of the R-hats of the normal scores of the split draws and of the folded
    split draws ``|x - median|`` (ArviZ's max, which keeps the bulk value when the tail is NaN)."""
    size = sorted_split.shape[0]
    median = (sorted_split[size // 2 - 1] + sorted_split[size // 2]) / 2
    z_tail, _ = _z_scores(jnp.abs(split - median).reshape(-1), ctype)
    bulk = rhat_fn(z_bulk.reshape(split.shape))
    tail = rhat_fn(z_tail.reshape(split.shape))
    return jnp.where(tail > bulk, tail, bulk)


def _nested(x, split, z_bulk, sorted_split, plan, ctype):
    ids = plan.superchain_ids
    if plan.nested_method == "identity":
        return _rhat_nested(x.astype(ctype), ids)
    split_ids = ids + ids  # half-chains: all first halves, then all second halves
    if plan.nested_method == "split":
        return _rhat_nested(split.astype(ctype), split_ids)
    return _rank_rhat(split, z_bulk, sorted_split, lambda z: _rhat_nested(z, split_ids), ctype)


def _param_stats(x, plan):
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
        z_bulk, sorted_split = _z_scores(split.reshape(-1), ctype)
        series["ess_bulk"] = z_bulk.reshape(split.shape)
    if "rhat" in wanted:
        out["rhat"] = (
            _rank_rhat(split, z_bulk, sorted_split, _rhat, ctype) if num_chains > 1 else nan
        )
    if "rhat_nested" in wanted:
        z, s = (z_bulk, sorted_split) if ranked else (None, None)
        out["rhat_nested"] = _nested(x, split, z, s, plan, ctype) if num_chains > 1 else nan
    if "ess_tail" in wanted:
        if ranked and num_draws % 2 == 0:
            sorted_all = sorted_split  # the split draws are all the draws
        else:
            sorted_all = jnp.sort(x.reshape(-1))
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


def _compute(arrays, plan):
    """The statistics of every parameter of every array ``(num_chains, num_draws, ...)``,
    as one dict per array of arrays shaped like its trailing axes."""
    ctype = jnp.dtype(plan.compute_dtype)
    columns, groups = [], {}
    for i, x in enumerate(arrays):
        if not jnp.issubdtype(x.dtype, jnp.floating) or x.dtype.itemsize > ctype.itemsize:
            x = x.astype(ctype)
        groups.setdefault(x.dtype, []).append(i)
        columns.append(x.reshape(x.shape[0], x.shape[1], -1))
    results = [None] * len(arrays)
    for indices in groups.values():
        stacked = jnp.concatenate([columns[i] for i in indices], axis=2)
        flat = _map_parameters(jnp.moveaxis(stacked, 2, 0), plan)
        offset = 0
        for i in indices:
            width, shape = columns[i].shape[2], arrays[i].shape[2:]
            results[i] = {
                name: value[offset : offset + width].reshape(shape).astype(plan.out_dtype)
                for name, value in flat.items()
            }
            offset += width
    return results


def _map_parameters(params, plan):
    """``_param_stats`` over parameters (num_params, num_chains, num_draws), vmapped in batches
    whose working memory stays near ``_BATCH_BYTES``."""
    num_params, num_chains, num_draws = params.shape
    per_param = num_chains * num_draws * _WORK_PER_VALUE * 8
    batch_size = int(min(max(_BATCH_BYTES // per_param, 1), max(num_params, 1)))
    return lax.map(lambda x: _param_stats(x, plan), params, batch_size=batch_size)


_compiled = jax.jit(_compute, static_argnames="plan")


# ----------------------------------------------------------------------------------------------
# The public edge: checks on the host, then one compiled call.


def _run(draws, wanted, *, prob=TAIL_PROB, superchain_ids=None, nested_method="rank", dtype):
    """Check the input, run the compiled program, and return one dict of statistics per array
    (a dict name -> that dict for a dict input)."""
    named = isinstance(draws, Mapping)
    items = dict(draws) if named else {None: draws}
    if not items:
        raise ValueError("draws is an empty dict; pass at least one array of draws.")
    arrays = tuple(_as_array(name, value) for name, value in items.items())
    shapes = {a.shape[:2] for a in arrays}
    if len(shapes) > 1:
        raise ValueError(
            f"All arrays of draws must share (num_chains, num_draws); got {sorted(shapes)}."
        )
    prob = _check_prob(prob)
    if superchain_ids is not None:
        superchain_ids = _check_superchains(superchain_ids, arrays[0].shape[0])
    compute_dtype = _compute_dtype(arrays, dtype)
    out_dtype = jnp.dtype(jax.dtypes.canonicalize_dtype(jnp.float64)).name
    plan = _Plan(tuple(wanted), prob, superchain_ids, nested_method, compute_dtype, out_dtype)
    with jax.enable_x64(compute_dtype == "float64"):
        results = _compiled(arrays, plan)
    return dict(zip(items, results, strict=True)) if named else results[0]


def _as_array(name, value):
    where = "draws" if name is None else f"draws[{name!r}]"
    if not isinstance(value, jax.Array | np.ndarray):
        value = np.asarray(value)  # a list or scalar: host data already
    if value.ndim < 2:
        raise ValueError(
            f"{where} must be shaped (num_chains, num_draws, ...); got shape {value.shape}. "
            "Add a chain axis for a single chain: draws[None]."
        )
    if not (jnp.issubdtype(value.dtype, jnp.floating) or jnp.issubdtype(value.dtype, jnp.integer)):
        if value.dtype != bool:
            raise TypeError(f"{where} must hold real numbers; got dtype {value.dtype}.")
    return value


def _check_prob(prob):
    if not isinstance(prob, Sequence):
        prob = sorted((float(prob), 1 - float(prob)))  # as ArviZ: a single tail probability
    if len(prob) != 2 or not all(0 < float(p) < 1 for p in prob):
        raise ValueError(
            f"prob must be two probabilities in (0, 1), like (0.05, 0.95); got {prob}."
        )
    return (float(prob[0]), float(prob[1]))


def _check_superchains(superchain_ids, num_chains):
    labels = np.asarray(superchain_ids)
    if labels.ndim != 1 or labels.shape[0] != num_chains:
        raise ValueError(
            f"superchain_ids must give one label per chain ({num_chains}); got {labels.shape}."
        )
    _, ids, counts = np.unique(labels, return_inverse=True, return_counts=True)
    if counts.min() != counts.max():
        raise ValueError(
            "Every superchain must hold the same number of chains; "
            f"got counts {counts.tolist()} for labels {np.unique(labels).tolist()}."
        )
    return tuple(int(i) for i in ids)


def _compute_dtype(arrays, dtype):
    platforms = {d.platform for a in arrays if isinstance(a, jax.Array) for d in a.devices()}
    has_float64 = (platforms or {jax.default_backend()}) <= _FLOAT64_PLATFORMS
    if dtype is None:
        return "float64" if has_float64 else "float32"
    name = np.dtype(dtype).name
    if name not in ("float32", "float64"):
        raise ValueError(f"dtype must be None, 'float32' or 'float64'; got {dtype!r}.")
    if name == "float64" and not has_float64:
        raise ValueError(f"float64 is not available on {sorted(platforms)}; use dtype='float32'.")
    return name


def summary_stats(draws, prob=TAIL_PROB, *, dtype=None):
    """R-hat, bulk and tail ESS and the MCSE of the mean and of the sd, in one compiled program
    that sorts, ranks and transforms each parameter once for all of them.

    Args:
        draws: an array ``(num_chains, num_draws, ...)`` (numpy or JAX, float or integer), or a
            dict ``name -> array``; all arrays share ``num_chains`` and ``num_draws``.
        prob: the two tail probabilities of the tail ESS (ArviZ's ``prob``), or one of them.
        dtype: ``"float64"``, ``"float32"`` or None for float64 where the backend has it.

    Returns:
        ``{"rhat", "ess_bulk", "ess_tail", "mcse_mean", "mcse_sd"} -> array`` shaped like the
        trailing axes of ``draws`` (NaN where ArviZ gives NaN); for a dict input,
        ``name -> that dict``.

    Raises:
        ValueError, TypeError: for draws of the wrong shape or dtype, or a bad option.
    """
    return _run(draws, STATISTICS, prob=prob, dtype=dtype)


def rhat(draws, *, dtype=None):
    """Rank-normalised split R-hat (Vehtari et al. 2021; ArviZ's default ``method="rank"``):
    the larger of the split R-hats of the normal scores of the ranks of the draws and of the
    folded draws. Same arguments, returns and errors as :func:`summary_stats`."""
    return _pick(draws, _run(draws, ("rhat",), dtype=dtype), "rhat")


def ess(draws, method="bulk", prob=TAIL_PROB, *, dtype=None):
    """Effective sample size: ``method="bulk"`` (of the normal scores of the ranks) or
    ``"tail"`` (the smaller ESS of the indicators of the two ``prob`` quantiles). Same
    arguments, returns and errors as :func:`summary_stats`."""
    if method not in ("bulk", "tail"):
        raise ValueError(f"method must be 'bulk' or 'tail'; got {method!r}.")
    return _pick(draws, _run(draws, (f"ess_{method}",), prob=prob, dtype=dtype), f"ess_{method}")


def mcse(draws, method="mean", *, dtype=None):
    """Monte Carlo standard error of the mean (``method="mean"``: sd over sqrt of the ESS of
    the mean) or of the sd (``"sd"``: ArviZ's delta-method formula). Same arguments, returns
    and errors as :func:`summary_stats`."""
    if method not in ("mean", "sd"):
        raise ValueError(f"method must be 'mean' or 'sd'; got {method!r}.")
    return _pick(draws, _run(draws, (f"mcse_{method}",), dtype=dtype), f"mcse_{method}")


def rhat_nested(draws, superchain_ids, method="rank", *, dtype=None):
    """Nested R-hat (Margossian, Hoffman, Sountsov, Riou-Durand, Vehtari, Gelman 2024) for many
    short chains grouped into superchains started from the same point.

    ``R_nu = sqrt(1 + B_nu / W_nu)`` with ``B_nu`` the variance (ddof 1) of the superchain
    means and ``W_nu`` the mean over superchains of the variance of their chain means (ddof 1;
    0 for one chain each) plus their mean within-chain variance (ddof 1).

    Args:
        draws, dtype: as :func:`summary_stats`.
        superchain_ids: one label per chain; every superchain holds the same number of chains.
        method: ``"rank"`` (ArviZ's default: split chains, normal scores of ranks, the larger
            of the bulk and folded values), ``"split"`` (split chains, raw draws) or
            ``"identity"`` (the paper's formula on the raw draws).

    Returns:
        An array shaped like the trailing axes of ``draws`` (a dict for a dict input).

    Raises:
        ValueError: for labels that do not match the chains or unequal superchains.
    """
    if method not in _RHAT_METHODS:
        raise ValueError(f"method must be one of {_RHAT_METHODS}; got {method!r}.")
    out = _run(
        draws, ("rhat_nested",), superchain_ids=superchain_ids, nested_method=method, dtype=dtype
    )
    return _pick(draws, out, "rhat_nested")


def _pick(draws, result, name):
    if isinstance(draws, Mapping):
        return {key: value[name] for key, value in result.items()}
    return result[name]
