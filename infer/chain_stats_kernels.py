"""The device side of :mod:`infer.chain_stats`: the compiled program that sorts, ranks,
transforms and autocorrelates every parameter (one ``jax.jit`` per shape and plan). The
functions take one parameter's draws ``(num_chains, num_draws)``; :func:`compiled` maps them
over parameters in memory-bounded batches, and over devices when the draws are sharded.

Padded draws (``Plan.padded``): the draw axis is longer than the run, the first
``Lengths.draws`` of each chain are real, and every reduction, sort and
autocorrelation leaves the rest out (a :class:`Valid` says which). Such a program serves
every length up to its own.
"""

from __future__ import annotations

import functools
import math
from typing import NamedTuple

import jax
import jax.numpy as jnp
import numpy as np
from jax import lax
from jax.sharding import NamedSharding, PartitionSpec

from infer.autocorrelation import integrated_time
from infer.chain_ranks import folded_z_scores, sort, z_scores

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
    padded: bool = False  # the draw axis is padded: Lengths.draws says how much is real
    host_sort: bool = False  # NumPy sorts on the host (CPU only), see infer.chain_ranks


class Lengths(NamedTuple):
    """What the host knows of the real draws (arguments, not constants: one program serves
    several lengths when padded). ``tail_index`` ``(2, 2)`` and ``tail_weight`` ``(2, 2)``:
    numpy's "linear" quantile at each tail probability, as the sorted positions below and above
    and the weights ``gamma`` and ``1 - gamma``, computed in float64 as numpy computes them."""

    draws: np.ndarray  # int32 scalar: real draws per chain
    tail_index: np.ndarray
    tail_weight: np.ndarray


def lengths(num_chains, num_draws, prob) -> Lengths:
    """The :class:`Lengths` of ``num_draws`` real draws per chain of ``num_chains`` chains."""
    size = num_chains * num_draws
    index, weight = [], []
    for p in prob:
        virtual = (size - 1) * p
        below = min(max(math.floor(virtual), 0), size - 1)
        gamma = virtual - math.floor(virtual)
        index.append((below, min(below + 1, size - 1)))
        weight.append((gamma, 1 - gamma))
    return Lengths(np.int32(num_draws), np.array(index, np.int32), np.array(weight, np.float64))


class Valid(NamedTuple):
    """Which entries of the last axis of padded draws are real: the first ``count`` (a traced
    int32), where ``mask`` is True. Functions take ``valid=None`` for unpadded draws."""

    count: jax.Array
    mask: jax.Array


def _keep(x, valid, fill):
    """``x`` with its padded entries replaced by ``fill``."""
    return x if valid is None else jnp.where(valid.mask, x, fill)


def _count(x, axis, valid):
    """How many real entries a reduction over ``axis`` (None: all) of ``x`` sums."""
    if valid is None:
        return x.size if axis is None else x.shape[axis]
    if axis is None:
        return valid.count * (x.size // x.shape[-1])
    assert axis in (-1, x.ndim - 1), "padding is on the last axis"
    return valid.count


# ----------------------------------------------------------------------------------------------
# One parameter: x is (num_chains, num_draws) in the dtype of the draws.


def _mean(x, axis=None, keepdims=False, valid=None):
    """The mean, shifted by the first value: exact for a constant (XLA turns a division by a
    count into a multiplication by its reciprocal, which numpy does not) and stable in float32."""
    if axis is None:
        shift = x.reshape(-1)[0]
        if valid is None:
            return shift + (x - shift).mean()
        return shift + _keep(x - shift, valid, 0).sum() / _count(x, axis, valid)
    shift = lax.index_in_dim(x, 0, axis, keepdims=True)
    if valid is None:
        mean = shift + (x - shift).mean(axis=axis, keepdims=True)
    else:
        mean = shift + _keep(x - shift, valid, 0).sum(axis, keepdims=True) / valid.count
    return mean if keepdims else jnp.squeeze(mean, axis)


def _var(x, axis=None, ddof=0, valid=None):
    """The centred variance: a sum of squares of deviations from :func:`_mean`."""
    deviations = _keep(x - _mean(x, axis=axis, keepdims=True, valid=valid), valid, 0)
    return (deviations**2).sum(axis=axis) / (_count(x, axis, valid) - ddof)


def _split(x, valid=None):
    """The first and last halves of every chain as chains of their own: (2 num_chains, half),
    and the :class:`Valid` of the halves of padded draws."""
    half = x.shape[1] // 2
    if valid is None:
        return jnp.concatenate([x[:, :half], x[:, x.shape[1] - half :]], axis=0), None
    count = valid.count // 2  # an odd chain loses its middle draw, as without padding
    extended = jnp.pad(x, ((0, 0), (0, half)))
    second = lax.dynamic_slice_in_dim(extended, valid.count - count, half, axis=1)
    halves = jnp.concatenate([x[:, :half], second], axis=0)
    return halves, Valid(count, lax.iota(jnp.int32, half) < count)


def _quantile(sorted_values, index, weight):
    """numpy's "linear" quantile of sorted values, rounded as numpy rounds it in their dtype,
    from its positions ``index`` (below, above) and weights (``gamma``, ``1 - gamma``)."""
    a, b = sorted_values[index[0]], sorted_values[index[1]]
    weight = weight.astype(sorted_values.dtype)
    return jnp.where(weight[0] >= 0.5, b - (b - a) * weight[1], a + (b - a) * weight[0])


def _ess(series, ctype, valid=None, constant=None):
    """ArviZ's ``_ess`` of each of a stack of split series (num_series, num_chains, half).
    ``constant`` (num_series,): which series are constant (ESS their size), if known."""
    _, num_chains, n = series.shape
    series = series.astype(ctype)
    centred = _keep(series - _mean(series, axis=2, keepdims=True, valid=valid), valid, 0)
    between = _var(_mean(series, axis=2, valid=valid), axis=1, ddof=1)
    tau = integrated_time(centred, between, None if valid is None else valid.count)
    if valid is None:
        size = num_chains * n
        floor = 1 / math.log10(size)
    else:
        size = num_chains * valid.count
        floor = 1 / jnp.log10(size.astype(ctype))
    ess = size / jnp.maximum(tau, floor)
    return jnp.where(_is_flat(series, valid) if constant is None else constant, size, ess)


def _is_flat(series, valid):
    """Whether each series ``(..., num_chains, n)`` spans less than ``_CONSTANT_RANGE`` (ArviZ:
    its ESS is then its size), from a pass over it."""
    highest = _keep(series, valid, -jnp.inf).max(axis=(-2, -1))
    lowest = _keep(series, valid, jnp.inf).min(axis=(-2, -1))
    return highest - lowest < _CONSTANT_RANGE


def _constant(series, sorted_split, count, quantiles, ctype, valid):
    """Whether each of ``series`` (name -> split series) is constant (ArviZ: its range is
    under ``_CONSTANT_RANGE``): for the draws' own series from the first and last of the
    ``count`` real sorted split draws, with no pass over them; for the others (the squares of
    ``mcse_sd``) by :func:`_is_flat`. ``quantiles``: the tail quantiles of the indicators."""
    lowest = sorted_split[0]
    highest = sorted_split[-1] if count is None else sorted_split[count - 1]
    flags = {
        "ess_bulk": lowest == highest,  # the normal scores of their ranks are then all equal
        "mcse_mean": highest.astype(ctype) - lowest.astype(ctype) < _CONSTANT_RANGE,
    }
    for i, q in enumerate(quantiles):
        # every indicator 1, or every one 0 (also for a NaN quantile, between -inf and inf)
        flags[f"tail{i}"] = (highest <= q) | (lowest > q) | jnp.isnan(q)
    return jnp.stack(
        [
            flags[name] if name in flags else _is_flat(values.astype(ctype), valid)
            for name, values in series.items()
        ]
    )


def _rhat(z, valid=None):
    """ArviZ's ``_rhat`` of chains (num_chains, num_draws)."""
    n = z.shape[1] if valid is None else valid.count
    between = n * _var(_mean(z, axis=1, valid=valid), ddof=1)
    within = _var(z, axis=1, ddof=1, valid=valid).mean()
    return jnp.sqrt((between / within + n - 1) / n)


def _rhat_nested(z, superchain_ids, valid=None):
    """Nested R-hat (Margossian et al. 2024, eq. 4-8) of chains (num_chains, num_draws);
    ``superchain_ids`` labels each chain 0..K-1, every superchain with the same count.
    Padded draws (``valid``) are left out."""
    ids = np.asarray(superchain_ids)
    members = jnp.asarray(ids[None, :] == np.arange(ids.max() + 1)[:, None], z.dtype)
    per_super = int((ids == 0).sum())
    chain_mean = _mean(z, axis=1, valid=valid)
    super_mean = members @ chain_mean / per_super
    if per_super > 1:
        deviation = chain_mean[None, :] - super_mean[:, None]
        between_chain = (members * deviation**2).sum(axis=1) / (per_super - 1)
    else:
        between_chain = jnp.zeros_like(super_mean)
    within_chain = members @ _var(z, axis=1, ddof=1, valid=valid) / per_super
    between_super = _var(super_mean, ddof=1)
    return jnp.sqrt(1 + between_super / (within_chain + between_chain).mean())


def _flat(valid, num_chains):
    """The ``(count, mask)`` of padded chains ``(num_chains, n)`` flattened; None unpadded."""
    if valid is None:
        return None, None
    return num_chains * valid.count, jnp.tile(valid.mask, num_chains)


def _rank_rhat(split, z_bulk, sorted_split, order, rhat_fn, scores, valid=None, host=False):
    """The larger of the R-hats of the normal scores of the split draws and of the folded
    split draws ``|x - median|`` (ArviZ's max, which keeps the bulk value when the tail is NaN).
    ``rhat_fn(z)`` of padded draws leaves out what ``valid`` does."""
    count, mask = _flat(valid, split.shape[0])
    z_tail = folded_z_scores(split.reshape(-1), sorted_split, order, scores, count, mask, host)
    bulk = rhat_fn(z_bulk.reshape(split.shape))
    tail = rhat_fn(z_tail.reshape(split.shape))
    return jnp.where(tail > bulk, tail, bulk)


def _nested(x, split, ranked, scores, plan, valid=None, split_valid=None):
    ids = plan.superchain_ids
    if plan.nested_method == "identity":
        return _rhat_nested(x.astype(scores.dtype), ids, valid)
    split_ids = ids + ids  # half-chains: all first halves, then all second halves
    if plan.nested_method == "split":
        return _rhat_nested(split.astype(scores.dtype), split_ids, split_valid)
    z_bulk, sorted_split, order = ranked
    rhat_fn = functools.partial(_rhat_nested, superchain_ids=split_ids, valid=split_valid)
    ranks = (split, z_bulk, sorted_split, order)
    return _rank_rhat(*ranks, rhat_fn, scores, split_valid, plan.host_sort)


def _tail_series(x, valid, split, sorted_split, lengths, host):
    """The indicators ``split <= q`` at the two tail quantiles ``q`` of all draws ``x``
    (those of the split draws when they are all the draws and already sorted), and the two
    ``q``."""
    if sorted_split is not None and valid is None and x.shape[1] % 2 == 0:
        sorted_all = sorted_split
    else:
        mask = _flat(valid, x.shape[0])[1]
        sorted_all = sort(x.reshape(-1), False, wide=False, mask=mask, host=host)
    quantiles = [
        _quantile(sorted_all, lengths.tail_index[i], lengths.tail_weight[i]) for i in range(2)
    ]
    return {f"tail{i}": split <= q for i, q in enumerate(quantiles)}, quantiles


def _param_stats(x, scores, lengths, plan):
    """The statistics of ``plan.wanted`` for one parameter (num_chains, num_draws)."""
    ctype = jnp.dtype(plan.compute_dtype)
    wanted = set(plan.wanted)
    num_chains, num_draws = x.shape
    nan = jnp.asarray(jnp.nan, ctype)
    if num_draws < _MIN_DRAWS:
        return {name: nan for name in plan.wanted}
    valid = Valid(lengths.draws, lax.iota(jnp.int32, num_draws) < lengths.draws)
    valid = valid if plan.padded else None
    split, split_valid = _split(x, valid)
    out, series = {}, {}
    ranked = {"rhat", "ess_bulk"} & wanted or (
        "rhat_nested" in wanted and plan.nested_method == "rank"
    )
    z_bulk = sorted_split = order = None
    if ranked:
        mask = _flat(split_valid, split.shape[0])[1]
        z_bulk, sorted_split, order = z_scores(split.reshape(-1), scores, mask, plan.host_sort)
        series["ess_bulk"] = z_bulk.reshape(split.shape)
    if "rhat" in wanted and num_chains > 1:
        rhat_fn = functools.partial(_rhat, valid=split_valid)
        ranks = (split, z_bulk, sorted_split, order)
        out["rhat"] = _rank_rhat(*ranks, rhat_fn, scores, split_valid, plan.host_sort)
    elif "rhat" in wanted:
        out["rhat"] = nan
    if "rhat_nested" in wanted:
        ranks = (z_bulk, sorted_split, order) if ranked else None
        nested = _nested(x, split, ranks, scores, plan, valid, split_valid)
        out["rhat_nested"] = nested if num_chains > 1 else nan
    quantiles = ()
    if "ess_tail" in wanted:
        tails, quantiles = _tail_series(x, valid, split, sorted_split, lengths, plan.host_sort)
        series.update(tails)
    xc = x.astype(ctype)
    if "mcse_mean" in wanted:
        series["mcse_mean"] = _split(xc, valid)[0]
    if "mcse_sd" in wanted:
        squares = (xc - _mean(xc, valid=valid)) ** 2
        series["mcse_sd"] = _split(squares, valid)[0]
    if series:
        stacked = jnp.stack([s.astype(ctype) for s in series.values()])
        count = _flat(split_valid, split.shape[0])[0]
        constant = None
        if ranked:
            constant = _constant(series, sorted_split, count, quantiles, ctype, split_valid)
        ess = dict(zip(series, _ess(stacked, ctype, split_valid, constant), strict=True))
    if "ess_bulk" in wanted:
        out["ess_bulk"] = ess["ess_bulk"]
    if "ess_tail" in wanted:
        out["ess_tail"] = jnp.where(ess["tail1"] < ess["tail0"], ess["tail1"], ess["tail0"])
    if "mcse_mean" in wanted:
        out["mcse_mean"] = jnp.sqrt(_var(xc, ddof=1, valid=valid)) / jnp.sqrt(ess["mcse_mean"])
    if "mcse_sd" in wanted:
        evar = _mean(squares, valid=valid)  # ArviZ's mean(s**4) - evar**2, centred: exactly 0
        varvar = _mean((squares - evar) ** 2, valid=valid) / ess["mcse_sd"]  # for constant s**2
        out["mcse_sd"] = jnp.sqrt(varvar / evar / 4)
    undefined = jnp.isnan(_keep(x, valid, 0)).any()
    if valid is not None:
        undefined |= valid.count < _MIN_DRAWS
    return {name: jnp.where(undefined, nan, out[name]) for name in plan.wanted}


# ----------------------------------------------------------------------------------------------
# The compiled program: every parameter of every array, vmapped in batches.


def _compute(arrays, scores, lengths, plan):
    """The statistics of every parameter of every array ``(num_chains, num_draws, ...)``,
    as one dict per array of arrays shaped like its trailing axes. ``lengths``: an
    :class:`Lengths`."""
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
        flat = _over_devices(jnp.moveaxis(stacked, 2, 0), scores, lengths, plan)
        offset = 0
        for i in indices:
            width, shape = columns[i].shape[2], arrays[i].shape[2:]
            results[i] = {
                name: value[offset : offset + width].reshape(shape).astype(plan.out_dtype)
                for name, value in flat.items()
            }
            offset += width
    return results


def _fill_parameters(params, count):
    """``params`` (num_params, ...) with the last parameter repeated up to ``count``: filler
    that takes the same paths as the real parameters (a constant would send a batch of the
    fast paths to the scans for long ties). The caller drops the results past ``num_params``."""
    num_params = params.shape[0]
    return params if count == num_params else params[np.minimum(np.arange(count), num_params - 1)]


def _map_parameters(params, scores, lengths, plan):
    """``_param_stats`` over parameters (num_params, num_chains, num_draws), vmapped in batches
    whose working memory stays near ``_BATCH_BYTES``. The batches are equal (the last
    parameter repeated to fill them): a remainder would be a second copy of the whole program
    for XLA to compile."""
    num_params, num_chains, num_draws = params.shape
    per_param = num_chains * num_draws * _WORK_PER_VALUE * 8
    largest = int(min(max(_BATCH_BYTES // per_param, 1), max(num_params, 1)))
    num_batches = max(-(-num_params // largest), 1)
    batch_size = -(-num_params // num_batches)
    params = _fill_parameters(params, num_batches * batch_size)

    def one(x):
        return _param_stats(x, scores, lengths, plan)

    results = lax.map(one, params, batch_size=batch_size)
    return {name: value[:num_params] for name, value in results.items()}


def _over_devices(params, scores, lengths, plan):
    """``_map_parameters`` split by parameter over the devices of the mesh the draws are sharded
    on: the draws are exchanged once between the devices, then each sorts and transforms whole
    parameters of its own (the parameters filled up to a multiple of the device count)."""
    mesh = plan.mesh
    if mesh is None:
        return _map_parameters(params, scores, lengths, plan)
    num_params = params.shape[0]
    params = _fill_parameters(params, num_params + -num_params % mesh.size)
    by_param = PartitionSpec(mesh.axis_names)
    explicit = all(t == jax.sharding.AxisType.Explicit for t in mesh.axis_types)
    if explicit:  # sharding in types: say where the data go (XLA decides for Auto axes)
        params = jax.sharding.reshard(params, NamedSharding(mesh, by_param))
    spread = jax.shard_map(
        lambda p, s, n: _map_parameters(p, s, n, plan),
        mesh=mesh,
        in_specs=(by_param, PartitionSpec(), PartitionSpec()),
        out_specs=by_param,
    )
    results = spread(params, scores, lengths)
    if explicit:
        results = jax.sharding.reshard(results, NamedSharding(mesh, PartitionSpec()))
    return {name: value[:num_params] for name, value in results.items()}


compiled = jax.jit(_compute, static_argnames="plan")

#: Values (chains x draws x parameters, padding included) up to which :func:`program` picks
#: :data:`compiled_quickly` on the CPU.
QUICK_BUILD_VALUES = 2**17

#: XLA's options for few values on the CPU: backend optimisation off. It compiles faster and
#: runs slower; its outputs may differ from the optimised program's in the last bit. (Tried on
#: the start program of a Markov-chain run: no first-call gain, and it moved the draws.)
QUICK_BUILD = {"xla_backend_optimization_level": 0}

compiled_quickly = jax.jit(_compute, static_argnames="plan", compiler_options=QUICK_BUILD)
"""The same program with XLA's CPU backend optimisation off: it compiles faster and runs
slower, which for few draws costs milliseconds. Its statistics differ from
:data:`compiled`'s by round-off (about 1e-15)."""


def program(num_values: int, platforms: set[str]):
    """:data:`compiled_quickly` for at most :data:`QUICK_BUILD_VALUES` values on the CPU,
    where compiling costs more than running; else :data:`compiled`."""
    return (
        compiled_quickly if num_values <= QUICK_BUILD_VALUES and platforms == {"cpu"} else compiled
    )
