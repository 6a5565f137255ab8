"""Convergence diagnostics on the device, in JAX: rank-normalised split R-hat, bulk and tail
ESS, MCSE of the mean and of the sd, and nested R-hat.

Each reproduces ``arviz_stats`` 1.x (its numpy ``base`` backend, which stays the reference
behind ``infer.summary`` and the DataTree) step by step: split chains (an odd chain loses its
middle draw), ranks from a sort (XLA's on an accelerator; NumPy's, through a callback, for
many draws on the CPU) with ties averaged as ``scipy.stats.rankdata`` does, Blom's normal
scores ``Phi^-1((r - 3/8) / (S + 1/4))``, the folded draws ``|x - median|`` for the tail
R-hat (ranked from the same sort by a bitonic merge, or on the CPU by NumPy's merge sort,
:mod:`infer.chain_ranks`), autocovariances by FFT (:mod:`infer.autocorrelation`), Geyer's
initial positive and monotone sequences
with ArviZ's truncation, tail ESS as the smaller ESS of the indicators ``x <= q`` at the two
quantiles (numpy's "linear" quantile, rounded as numpy rounds it), and ArviZ's MCSE of the sd.

Draws are ``(num_chains, num_draws, ...)``; trailing axes are parameters, vmapped in batches
that bound memory. A dict ``name -> draws`` gives a dict with the same names (an xarray
``Dataset`` too, an ArviZ ``DataTree`` its ``posterior``'s; arrays naming ``chain`` and ``draw``
are read by those names). ``jax.jit``
compiles one program per shape, dtype and option (ahead of the first call, once however many
threads make it); a second call with the same shapes compiles nothing. Few draws held in NumPy
(up to 2**16 values, on the CPU) are stacked and padded into shared shapes first
(:mod:`infer.shared_programs`): runs of other lengths and parameters then reuse one program,
and the statistics come back as NumPy arrays. A ``jax.Array``
sharded along the chains (a ``NamedSharding``) stays on its devices, which exchange the chains
once and then each compute whole parameters of their own (``shard_map``). On an accelerator
nothing is copied to the host; on the CPU, whose memory is the host's, the sort keys of many
draws go to NumPy and back (see :mod:`infer.chain_ranks`).

Precision: float64 where the backend has it (CPU, GPU), in a ``jax.enable_x64`` context around
the call, so the agreement with ArviZ does not depend on the autocorrelation (in float32 the
FFT's round-off is about 1e-7 of the variance at every lag, and Geyer's sum adds hundreds of
lags for a slowly mixing chain). Before the results are rounded it is 1e-15 for float64 draws
and 1e-7 for float32 draws, whose rank probabilities ArviZ computes in float32 (scipy's
``rankdata`` keeps their dtype). Elsewhere (TPU), or with ``dtype="float32"``, the same program
runs in float32, kept stable: means are shifted by the first value, variances centred, and the
normal scores looked up in a table that scipy computes in float64 on the host (``2 S + 1``
values for ``S`` draws in all); on float32 draws of the test set it stays within 4e-6 of ArviZ
(float64 draws are rounded to float32 first, which can move rank statistics by 3e-5). The
folding median and the tail quantiles are computed in the dtype of the draws, as numpy does,
so the indicators match ArviZ's. Results are in JAX's default float dtype (float32 unless x64
is on), or in float64 with ``summary_stats(..., result_dtype="float64")`` (as
:func:`infer.compare` asks). On the CPU, XLA reads subnormal numbers (below 2.2e-308 in
float64, 1.2e-38 in float32) as zero: draws that small are read as ties or a constant, where
ArviZ ranks them; rescale them first. Integers beyond 2**53 are read as float64, whose
round-off can tie them (ESS moves by ~1%) and moves the MCSE of their mean (draws 2**60 + k,
k < 1000: 15.4 where the exact one is 14.4, and ArviZ's 105): subtract an offset first.
float16 draws are read as float32, where ArviZ computes in float16: ESS differs by up to
~1e-3 relative, ArviZ's being the less exact (it equals ours on the same draws in float64).

NaN is a result, returned and never dropped; callers flag it. A parameter with a NaN draw is
NaN for every statistic, as in ArviZ; a constant one gets what ArviZ gives: R-hat NaN, ESS the
number of split draws, MCSE of the mean 0, of the sd NaN. (For a constant numpy cannot average
exactly, such as 0.1, ArviZ's MCSEs carry its round-off, ~1e-17 and a number; ours stay exact.
Chains each constant at a different value get R-hat inf, where ArviZ's round-off gives a
number near 1e16.) Draws at +-inf are ranked as ArviZ ranks them: a tail quantile between -inf
and inf is NaN, its indicators all 0, its ESS the draws' count; a median there leaves the
folded R-hat NaN and R-hat the bulk value.
Fewer than 4 draws give NaN, as does R-hat of one chain.

Example:
    >>> import numpy as np
    >>> from infer import chain_stats
    >>> draws = np.random.default_rng(0).normal(size=(4, 1000, 3))
    >>> stats = chain_stats.summary_stats(draws)  # rhat, ess_bulk, ess_tail, mcse_mean, mcse_sd
    >>> stats["ess_bulk"].shape
    (3,)
"""

from __future__ import annotations

import numbers
from collections.abc import Mapping, Sequence

import jax
import jax.numpy as jnp
import numpy as np
from jax.sharding import NamedSharding

from infer import shared_programs, validation
from infer.chain_ranks import FAST_FROM, normal_scores
from infer.chain_stats_kernels import (
    FLOAT64_PLATFORMS,
    RHAT_METHODS,
    STATISTICS,
    TAIL_PROB,
    Plan,
    lengths,
    program,
)
from infer.placement import PROGRAMS

__all__ = ["TAIL_PROB", "STATISTICS", "summary_stats", "rhat", "ess", "mcse", "rhat_nested"]


# ----------------------------------------------------------------------------------------------
# The public edge: checks on the host, then one compiled call.


def _run(
    draws,
    wanted,
    *,
    prob=TAIL_PROB,
    superchain_ids=None,
    nested_method="rank",
    dtype,
    padded=False,
    result_dtype=None,
):
    """Check the input, run the compiled program, and return one dict of statistics per array
    (a dict name -> that dict for a dict input)."""
    draws = validation.posterior_of_tree(draws)
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
    caller_has_x64 = jax.dtypes.canonicalize_dtype(jnp.float64) == jnp.float64
    keep_float64 = caller_has_x64 or _checked_result_dtype(result_dtype) == "float64"
    out_dtype = "float64" if keep_float64 and compute_dtype == "float64" else "float32"
    options = (wanted, prob, superchain_ids, nested_method, compute_dtype, out_dtype)
    if padded is False and shared_programs.applies(arrays, superchain_ids, _platforms(arrays)):
        columns, layout = shared_programs.stack(arrays, compute_dtype)
        results = shared_programs.unstack(_compiled_call(columns, *options, True), layout)
    else:
        results = _compiled_call(arrays, *options, padded)
    if out_dtype == "float64" and not caller_has_x64:  # as NumPy: JAX would narrow them
        results = jax.device_get(results)
    return dict(zip(items, results, strict=True)) if named else results[0]


def _compiled_call(
    arrays, wanted, prob, superchain_ids, nested_method, compute_dtype, out_dtype, padded
):
    """One dict of statistics per array, from the program compiled for these shapes."""
    num_chains, num_draws = arrays[0].shape[:2]
    room = _padded_length(num_draws, padded)
    split_size, split_room = 2 * num_chains * (num_draws // 2), 2 * num_chains * (room // 2)
    host_sort = _platforms(arrays) == {"cpu"} and split_room >= FAST_FROM
    plan = Plan(
        tuple(wanted),
        prob,
        superchain_ids,
        nested_method,
        compute_dtype,
        out_dtype,
        _mesh(arrays),
        padded is not False,
        host_sort,
    )
    arrays = tuple(_pad_draws(a, room) for a in arrays)
    scores = normal_scores(split_size, compute_dtype, split_room)
    num_values = sum(a.size for a in arrays)
    run = program(num_values, _platforms(arrays))
    real = lengths(num_chains, num_draws, prob)
    with jax.enable_x64(compute_dtype == "float64"):
        # Host draws become device arrays here, in the computation's x64 setting: handed to
        # the compiled call as NumPy, float64 draws were at times passed as float32 to a
        # program built for float64 (RuntimeProgramInputMismatch, with a fresh persistent
        # compilation cache, after other shapes had compiled). device_put, not jnp.asarray,
        # which compiles a small program of its own per shape.
        arrays = tuple(jax.device_put(a) if isinstance(a, np.ndarray) else a for a in arrays)
        return _executable(run, arrays, scores, real, plan)(arrays, scores, real)


def _signature(value):
    sharding = value.sharding if isinstance(value, jax.Array) and value.committed else None
    return value.shape, np.dtype(value.dtype).name, sharding, getattr(value, "weak_type", False)


def _executable(run, arrays, scores, real, plan):
    """``run`` (a ``jax.jit`` of :mod:`infer.chain_stats_kernels`) compiled ahead of time for
    these inputs, once per input signature, through :data:`infer.placement.PROGRAMS`: threads
    that make the same first call at once wait for one compilation and then run side by side.
    (Through ``jax.jit``'s own first call, the second of two threads ran several times slower
    while the first ran: ``infer.compare``'s four runs on the CPU, 12-13 s first against 9-10 s
    again.)"""
    key = ("chain_stats", run, plan, tuple(map(_signature, arrays)), _signature(scores))
    return PROGRAMS.get(key, lambda: run.lower(arrays, scores, real, plan).compile())[0]


def _checked_result_dtype(result_dtype):
    if result_dtype not in (None, "float64"):
        raise ValueError(
            f"result_dtype must be None (JAX's default float) or 'float64'; got {result_dtype!r}."
        )
    return result_dtype


def _padded_length(num_draws, padded):
    """The draw axis of the program: ``num_draws`` unpadded; ``padded`` when it is a count;
    else the next power of two, at least 512 (short draws cost little to pad, and the first
    checks of a run then share one program)."""
    if padded is False:
        return num_draws
    if padded is True:
        return max(512, 1 << max(num_draws - 1, 1).bit_length())
    if padded < num_draws:
        raise ValueError(
            f"padded={padded} is fewer than the {num_draws} draws per chain; pad to at least "
            "as many draws as there are, or pass padded=True for the next power of two."
        )
    return int(padded)


def _pad_draws(array, room):
    """``array`` with zeros after its draws, up to ``room`` draws per chain (on its device
    when it is a ``jax.Array``)."""
    extra = room - array.shape[1]
    if extra == 0:
        return array
    widths = [(0, 0), (0, extra)] + [(0, 0)] * (array.ndim - 2)
    return jnp.pad(array, widths) if isinstance(array, jax.Array) else np.pad(array, widths)


def _as_array(name, value):
    where = "draws" if name is None else f"draws[{name!r}]"
    validation.refuse_draws_of_parameters(where, name, value)
    value = validation.in_chain_draw_order(value)
    if not isinstance(value, jax.Array | np.ndarray):
        try:
            value = np.asarray(value)  # a list or scalar: host data already
        except ValueError as err:  # ragged nested lists
            raise ValueError(
                f"{where} must be an array (num_chains, num_draws, ...); got a "
                f"{type(value).__name__} that is not one ({err})."
            ) from None
    if value.ndim < 2 or 0 in value.shape[:2]:
        raise ValueError(
            f"{where} must be shaped (num_chains, num_draws, ...), at least one of each; got "
            f"shape {value.shape}. Add a chain axis for a single chain: draws[None]."
        )
    if not (jnp.issubdtype(value.dtype, jnp.floating) or jnp.issubdtype(value.dtype, jnp.integer)):
        if value.dtype != bool:
            raise TypeError(f"{where} must hold real numbers; got dtype {value.dtype}.")
    return value


def _check_prob(prob):
    """Two tail probabilities in (0, 1) (a pair, list or 1-D array), or one: ``p`` and
    ``1 - p``, as ArviZ takes it."""
    given = prob
    if isinstance(prob, np.ndarray | jax.Array) and prob.ndim == 1:
        prob = np.asarray(prob).tolist()
    pair = isinstance(prob, Sequence) and not isinstance(prob, str | bytes)
    if pair and not all(validation.is_real_scalar(p) for p in prob):
        pair = False
    if not (pair or validation.is_real_scalar(prob)):
        raise TypeError(
            "prob must be two probabilities in (0, 1), like (0.05, 0.95), or one number; "
            f"got {given!r}."
        )
    if not pair:
        prob = sorted((float(prob), 1 - float(prob)))  # as ArviZ: a single tail probability
    if len(prob) != 2 or not all(0 < float(p) < 1 for p in prob):
        raise ValueError(
            f"prob must be two probabilities in (0, 1), like (0.05, 0.95), or one; got {given!r}."
        )
    return (float(prob[0]), float(prob[1]))


def _check_superchains(superchain_ids, num_chains):
    labels = np.asarray(superchain_ids)
    if labels.ndim != 1 or labels.shape[0] != num_chains:
        raise ValueError(
            f"superchain_ids must give one label per chain ({num_chains}); got {labels.shape}."
        )
    _, ids, counts = np.unique(labels, return_inverse=True, return_counts=True)
    if counts.size < 2:  # ArviZ gives NaN, silently
        raise ValueError(
            f"superchain_ids label every chain {labels[0]!r}: nested R-hat compares two or "
            "more superchains (chains that share a start); give each its own label."
        )
    if counts.min() != counts.max():
        raise ValueError(
            "Every superchain must hold the same number of chains; "
            f"got counts {counts.tolist()} for labels {np.unique(labels).tolist()}."
        )
    return tuple(int(i) for i in ids)


def _mesh(arrays):
    """The mesh of the first array sharded over several devices by a NamedSharding, or None."""
    for a in arrays:
        sharding = getattr(a, "sharding", None)
        if isinstance(sharding, NamedSharding) and sharding.mesh.size > 1:
            return sharding.mesh
    return None


def _platforms(arrays) -> set[str]:
    """Where the draws are: their devices' platforms, or the default backend's for host data."""
    platforms = {d.platform for a in arrays if isinstance(a, jax.Array) for d in a.devices()}
    return platforms or {jax.default_backend()}


def _compute_dtype(arrays, dtype):
    platforms = _platforms(arrays)
    has_float64 = platforms <= FLOAT64_PLATFORMS
    if dtype is None:
        return "float64" if has_float64 else "float32"
    try:
        name = np.dtype(dtype).name
    except TypeError:
        name = None
    if name not in ("float32", "float64"):
        raise ValueError(f"dtype must be None, 'float32' or 'float64'; got {dtype!r}.")
    if name == "float64" and not has_float64:
        raise ValueError(f"float64 is not available on {sorted(platforms)}; use dtype='float32'.")
    return name


def summary_stats(
    draws,
    prob=TAIL_PROB,
    *,
    statistics=STATISTICS,
    dtype=None,
    padded=False,
    result_dtype=None,
    superchain_ids=None,
):
    """R-hat, bulk and tail ESS and the MCSE of the mean and of the sd, in one compiled program
    that sorts, ranks and transforms each parameter once for all of them.

    Args:
        draws: an array ``(num_chains, num_draws, ...)`` (numpy or JAX, float or integer), or a
            dict ``name -> array``; all arrays share ``num_chains`` and ``num_draws``.
        prob: the two tail probabilities of the tail ESS (ArviZ's ``prob``), or one of them.
        statistics: the ones to compute, among :data:`STATISTICS` (all by default); each one
            left out is work saved (the MCSE of the sd costs one more autocorrelation).
        dtype: ``"float64"``, ``"float32"`` or None for float64 where the backend has it.
        padded: True pads the draw axis with zeros up to the next power of two (at least
            512), which every statistic leaves out, so that draws that grow (a run checked as
            it goes, ``until=``) compile one program per doubling, not one per length; a count
            pads up to that many draws per chain (one program for every length up to it).
            Same statistics, within round-off (1e-12 relative on the float64 test set); the
            padding is work.
        result_dtype: None for results in JAX's default float dtype (float32 unless x64 is
            on), or ``"float64"`` to keep them in float64 when they are computed in float64
            (an MCSE of draws near 1e40 overflows float32 to inf).
        superchain_ids: one label per chain (as :func:`rhat_nested` takes), which lets
            ``statistics`` name ``"rhat_nested"`` beside the others (padded too).

    Returns:
        ``statistic -> array`` for each of ``statistics`` (by default ``"rhat"``,
        ``"ess_bulk"``, ``"ess_tail"``, ``"mcse_mean"``, ``"mcse_sd"``), shaped like the
        trailing axes of ``draws`` (NaN where ArviZ gives NaN); for a dict input,
        ``name -> that dict``.

    Raises:
        ValueError, TypeError: for draws of the wrong shape or dtype, or a bad option.
    """
    wanted = (statistics,) if isinstance(statistics, str) else tuple(statistics)
    known = STATISTICS if superchain_ids is None else (*STATISTICS, "rhat_nested")
    unknown = [name for name in wanted if name not in known]
    if unknown or not wanted:
        raise ValueError(
            f"statistics must name one or more of {known}; got {statistics!r}. "
            "Nested R-hat has its own function, rhat_nested (or give superchain_ids)."
        )
    if not isinstance(padded, bool | numbers.Integral):
        raise TypeError(f"padded must be True, False or a count of draws; got {padded!r}.")
    padded = padded if isinstance(padded, bool) else int(padded)
    return _run(
        draws,
        tuple(dict.fromkeys(wanted)),
        prob=prob,
        dtype=dtype,
        padded=padded,
        result_dtype=result_dtype,
        superchain_ids=superchain_ids,
    )


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
    if method not in RHAT_METHODS:
        raise ValueError(f"method must be one of {RHAT_METHODS}; got {method!r}.")
    if superchain_ids is None:
        raise TypeError(
            "superchain_ids must give one label per chain, e.g. np.arange(8) // 4 for two "
            "superchains of 4 chains; got None."
        )
    out = _run(
        draws, ("rhat_nested",), superchain_ids=superchain_ids, nested_method=method, dtype=dtype
    )
    return _pick(draws, out, "rhat_nested")


def _pick(draws, result, name):
    if isinstance(draws, Mapping):
        return {key: value[name] for key, value in result.items()}
    return result[name]
