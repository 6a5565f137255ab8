"""Rank normalisation on the device, for :mod:`infer.chain_stats`: one parameter's draws are
sorted once (as unsigned integer keys, XLA's fastest sort), their average ranks (ties averaged
as ``scipy.stats.rankdata`` does) turned into Blom's normal scores by a table lookup, and the
folded draws ``|x - median|`` ranked from the same sort by a bitonic merge.

On the CPU the sort itself can run in NumPy (``host=True``, through ``jax.pure_callback``):
XLA's CPU sort is a scalar comparison sort, one thread per row, where NumPy's sorts integers
with the processor's vector instructions (x86-simd-sort), several times faster on the packed
keys below. The keys sorted and the order found are the same either way, so are the ranks.
On an accelerator the sort stays XLA's, on the device.

Every function takes a 1-D array of one parameter's (split) draws, ``(size,)``. Padded
draws (a run whose draws grow, see :mod:`infer.chain_stats`) come with ``mask``, True for
the real ones, and ``count``, how many there are: the others sort after every real value
(their normal scores are NaN) and change no real draw's rank.
"""

from __future__ import annotations

import functools

import jax
import jax.numpy as jnp
import numpy as np
from jax import lax
from scipy import special  # ndtri is norm.ppf; scipy.stats costs 2 s to import

from infer.batchwise import batchwise_cond

_BLOM = 3 / 8
_TIE_REACH = 4  # ties up to this many equal values are counted in one pass, not scanned
FAST_FROM = 2**15  # draws of one parameter from which the faster, longer-to-compile paths pay


@functools.lru_cache(maxsize=8)
def normal_scores(size, dtype, padded_size=None):
    """ArviZ's normal scores of the average ranks among ``size`` values, indexed by twice the
    rank: entry ``t`` is ``Phi^-1((t/2 - 3/8) / (size + 1/4))`` (Blom 1958), computed by scipy
    with ArviZ's own arithmetic, so they match ArviZ's bit for bit (entries 0 and 1 are unused).
    Built on the host once per size and passed to the program: on the device a lookup is
    cheaper than the normal quantile, and as exact in float32 as float32 allows.
    ``padded_size``: the table is as long as for that many values, NaN past ``2 size``."""
    rank = np.arange(2 * size + 1) / 2
    with np.errstate(invalid="ignore"):
        scores = special.ndtri((rank - _BLOM) / (size - 2 * _BLOM + 1))
    if padded_size is not None and padded_size > size:
        scores = np.concatenate([scores, np.full(2 * (padded_size - size), np.nan)])
    scores = scores.astype(dtype)
    scores.flags.writeable = False
    return scores


def _sort_keys(values):
    """Unsigned integers in the order of the floats ``values`` (sign and magnitude to offset
    binary): XLA's CPU sort orders integers several times faster than floats."""
    width = 8 * values.dtype.itemsize
    uint = jnp.dtype(f"uint{width}")
    sign = np.array(1 << (width - 1), uint)
    bits = lax.bitcast_convert_type(values, uint)
    return jnp.where((bits & sign) != 0, ~bits, bits | sign)


def _from_sort_keys(keys, dtype):
    sign = np.array(1 << (8 * keys.dtype.itemsize - 1), keys.dtype)
    return lax.bitcast_convert_type(jnp.where((keys & sign) != 0, keys & ~sign, ~keys), dtype)


def _masked_keys(keys, mask):
    """Padded values' keys set to the largest: they sort after every real value."""
    return (
        keys
        if mask is None
        else jnp.where(mask, keys, np.array(np.iinfo(keys.dtype).max, keys.dtype))
    )


def _as_words(keys):
    """64-bit keys ``(..., size)`` as pairs of 32-bit words ``(..., size, 2)``: a callback's
    arguments reach it as JAX arrays outside the caller's ``jax.enable_x64``, which would
    narrow 64-bit integers; 32-bit words cross unchanged and NumPy views them back."""
    return lax.bitcast_convert_type(keys, jnp.uint32) if keys.dtype.itemsize == 8 else keys


def _from_words(words, dtype):
    return words if words.dtype == dtype else lax.bitcast_convert_type(words, dtype)


def _numpy_keys(words, dtype):
    """The keys of :func:`_as_words` as a NumPy array ``(..., size)``."""
    words = np.asarray(words)
    return words if dtype.itemsize == 4 else words.view(dtype)[..., 0]


def _numpy_words(keys):
    return keys.view(np.uint32).reshape(*keys.shape, 2) if keys.dtype.itemsize == 8 else keys


def _host_sort(words, dtype, kind, with_order):
    """NumPy's sort (of that ``kind``) of the keys of :func:`_as_words`, as words, and with
    ``with_order`` the int32 permutation that sorts them."""
    keys = _numpy_keys(words, dtype)
    if not with_order:
        return _numpy_words(np.sort(keys, axis=-1, kind=kind))
    order = np.argsort(keys, axis=-1, kind=kind)
    return _numpy_words(np.take_along_axis(keys, order, axis=-1)), order.astype(np.int32)


def _sorted_on_host(keys, with_order, kind):
    """Unsigned keys ``(size,)`` sorted by NumPy through a callback (and the permutation)."""
    words = _as_words(keys)
    callback = functools.partial(
        _host_sort, dtype=np.dtype(keys.dtype), kind=kind, with_order=with_order
    )
    shapes = jax.ShapeDtypeStruct(words.shape, words.dtype)
    if with_order:
        shapes = (shapes, jax.ShapeDtypeStruct(keys.shape, jnp.int32))
    out = jax.pure_callback(callback, shapes, words, vmap_method="expand_dims")
    if not with_order:
        return _from_words(out, keys.dtype)
    return _from_words(out[0], keys.dtype), out[1]


def _sorted_keys(keys, host, kind=None):
    """Unsigned keys ``(size,)`` sorted, by XLA or (``host``) by NumPy on the host with its
    sort of that ``kind`` (None: its fastest; "stable" for keys in a few sorted runs)."""
    return _sorted_on_host(keys, False, kind) if host else lax.sort(keys)


def _sorted_with_order(keys, host, kind=None):
    """Unsigned keys ``(size,)`` sorted and the int32 permutation that sorts them (ties in
    any order: their ranks are averaged), by XLA or (``host``) by NumPy on the host, as
    :func:`_sorted_keys`."""
    if host:
        return _sorted_on_host(keys, True, kind)
    return lax.sort((keys, lax.iota(jnp.int32, keys.shape[0])), num_keys=1)


def _keys_and_order(keys, wide, host, kind=None):
    """Unsigned keys ``(size,)`` sorted, and the int32 permutation that sorts them. ``wide``
    (x64 on): 32-bit keys and their index are packed into one 64-bit integer, whose
    one-operand sort is the fastest of all. ``host``, ``kind``: as :func:`_sorted_keys`."""
    if wide and keys.dtype.itemsize <= 4:
        index = lax.iota(jnp.uint64, keys.shape[0])
        packed = _sorted_keys((keys.astype(jnp.uint64) << 32) | index, host, kind)
        return (packed >> 32).astype(keys.dtype), (packed & 0xFFFFFFFF).astype(jnp.int32)
    return _sorted_with_order(keys, host, kind)


def sort(values, with_order, wide, mask=None, host=False):
    """The values sorted (ties of -0.0 and 0.0 stay adjacent), and with ``with_order`` the
    permutation that sorts them. ``wide`` (x64 on): 32-bit keys and their index are packed into
    one 64-bit integer, whose one-operand sort is the fastest of all. With ``mask``, the padded
    values come last, as NaN. ``host``: NumPy sorts (on the CPU only: the keys go to the host)."""
    keys = _masked_keys(_sort_keys(values), mask)
    if not with_order:
        return _from_sort_keys(_sorted_keys(keys, host), values.dtype)
    keys, order = _keys_and_order(keys, wide, host)
    return _from_sort_keys(keys, values.dtype), order


def _scanned_scores(sorted_values, scores):
    """Normal scores of the average ranks of sorted values: ties (equal neighbours) share the
    mean of their ranks, as ``scipy.stats.rankdata(method="average")`` gives them."""
    size = sorted_values.shape[0]
    index = lax.iota(jnp.int32, size)
    differs = sorted_values[1:] != sorted_values[:-1]
    true = jnp.ones(1, bool)
    first = lax.cummax(jnp.where(jnp.concatenate([true, differs]), index, 0))
    last = lax.cummin(jnp.where(jnp.concatenate([differs, true]), index, size - 1), reverse=True)
    return scores[first + last + 2]  # twice the 1-based average rank


def _near_scores(sorted_values, scores):
    """:func:`_scanned_scores` where no value repeats more than ``_TIE_REACH`` times: each
    value counts its equals among its ``_TIE_REACH`` neighbours on either side (one pass,
    where the scans take dozens)."""
    size = sorted_values.shape[0]
    twice_rank = 2 * lax.iota(jnp.int32, size) + 2
    for distance in range(1, min(_TIE_REACH, size - 1) + 1):
        equal = (sorted_values[distance:] == sorted_values[:-distance]).astype(jnp.int32)
        none = jnp.zeros(distance, jnp.int32)
        twice_rank += jnp.concatenate([equal, none]) - jnp.concatenate([none, equal])
    return scores[twice_rank]


def _long_ties(sorted_values):
    """Whether some value repeats more than ``_TIE_REACH`` times."""
    size = sorted_values.shape[-1]
    reach = min(_TIE_REACH, size - 1)
    return (sorted_values[..., reach:] == sorted_values[..., : size - reach]).any()


_tie_scores = batchwise_cond(
    lambda values, scores: _long_ties(values), _scanned_scores, _near_scores
)
"""The normal scores of the average ranks of sorted values (ties averaged), by
:func:`_near_scores` unless a value repeats too often for it: for a batch of parameters
(under ``vmap``), unless one of them has such a value."""


def _untied_scores(sorted_values, scores):
    """:func:`_near_scores` where no two values are equal but perhaps the first two (as the
    two nearest the median are, among folded draws): each value's twice rank is ``2 i + 2``,
    and its score is the table read in stride (no gather); a tied first pair shares 3."""
    size = sorted_values.shape[0]
    strided = lax.slice(scores, (2,), (2 * size + 1,), (2,))
    first_pair = jnp.where(sorted_values[0] == sorted_values[1], scores[3], strided[:2])
    return lax.dynamic_update_slice(strided, first_pair, (0,))


def _ties_past_the_first_pair(sorted_values, scores):
    return (sorted_values[..., 2:] == sorted_values[..., 1:-1]).any()


_scores_of_sorted = batchwise_cond(_ties_past_the_first_pair, _tie_scores, _untied_scores)
""":func:`_tie_scores`, read from the table in stride where no two values are equal but
perhaps the first two (draws of a continuous distribution, most often)."""


def _average_scores(sorted_values, scores):
    """:func:`_scores_of_sorted` for many draws; the scans alone for few (which compile
    faster)."""
    if sorted_values.shape[0] < FAST_FROM:
        return _scanned_scores(sorted_values, scores)
    return _scores_of_sorted(sorted_values, scores)


def z_scores(values, scores, mask=None, host=False):
    """Normal scores of the average ranks of a 1-D array (ArviZ's ``_z_scale``, ties averaged
    as ``scipy.stats.rankdata(method="average")``), the sorted values, and the permutation
    that sorts them. Padded values (``mask`` False) get NaN. ``host``: as :func:`sort`."""
    wide = scores.dtype == jnp.float64
    sorted_values, order = sort(values, True, wide=wide, mask=mask, host=host)
    z_sorted = _average_scores(sorted_values, scores)
    z = jnp.zeros(values.shape[0], scores.dtype).at[order].set(z_sorted, unique_indices=True)
    return z, sorted_values, order


def _bitonic_merge(keys, payload, packed):
    """Sort pairs ``(keys, payload)`` (1-D, unsigned keys) that are strictly decreasing and then
    strictly increasing in lexicographic order: a bitonic sequence, which Batcher's merging
    network sorts in ``log2`` rounds of elementwise compare-exchanges, far cheaper than a sort.
    ``packed``: both are 32-bit and travel as one 64-bit integer. Returns them sorted."""
    size = keys.shape[0]
    padded = 1 << max(size - 1, 1).bit_length()
    pad = padded - size  # the largest pairs at the end keep the sequence bitonic
    keys = jnp.concatenate([keys, jnp.full(pad, jnp.iinfo(keys.dtype).max, keys.dtype)])
    payload = jnp.concatenate([payload, jnp.full(pad, jnp.iinfo(payload.dtype).max, payload.dtype)])
    if packed:
        keys = (keys.astype(jnp.uint64) << 32) | payload.astype(jnp.uint64)
    stride = padded // 2
    while stride:
        k = keys.reshape(-1, 2, stride)
        if packed:
            keys = jnp.stack([k.min(axis=1), k.max(axis=1)], axis=1).reshape(-1)
        else:
            p = payload.reshape(-1, 2, stride)
            swap = (k[:, 1] < k[:, 0]) | ((k[:, 1] == k[:, 0]) & (p[:, 1] < p[:, 0]))
            keys = jnp.where(swap[:, None], k[:, ::-1], k).reshape(-1)
            payload = jnp.where(swap[:, None], p[:, ::-1], p).reshape(-1)
        # each round is written out: fused together, the rounds would recompute every
        # element's whole history of compare-exchanges (2^rounds of them)
        keys, payload = lax.optimization_barrier((keys, payload))
        stride //= 2
    if packed:
        keys, payload = (keys >> 32).astype(jnp.uint32), (keys & 0xFFFFFFFF).astype(jnp.int32)
    return keys[:size], payload[:size]


def folded_z_scores(values, sorted_values, order, scores, count=None, mask=None, host=False):
    """The normal scores of the average ranks of the folded draws ``|x - median|``, in the
    order of the draws ``values``, given them sorted and their sorting permutation ``order``.

    For many draws, no second sort: in sorted order the folded draws fall to the median and
    rise after it, so a bitonic merge sorts them. Each carries a tie-break, its sorted position
    (reversed before the median), so that the pairs strictly fall and rise whatever the ties.
    For fewer than :data:`FAST_FROM` draws, a second sort (quicker to compile). Padded draws:
    the first ``count`` sorted values are the real ones, ``mask`` marks them in ``values``.
    ``host``: the second sort's, as :func:`sort`."""
    size = sorted_values.shape[0]
    half = (size if count is None else count) // 2
    median = (sorted_values[half - 1] + sorted_values[half]) / 2
    if size < FAST_FROM:
        z = z_scores(jnp.abs(values - median), scores, mask, host)[0]
        return _undefined_unless_finite(median, z)
    position = lax.iota(jnp.int32, size)
    keys = _sort_keys(jnp.abs(sorted_values - median))
    keys = keys if count is None else _masked_keys(keys, position < count)
    packed = keys.dtype.itemsize <= 4 and scores.dtype == jnp.float64
    if host:  # a second sort, on the host, is cheaper than the merge: a merge sort (NumPy's
        # "stable") finds the two sorted runs, falling and rising, and merges them in one pass
        merged, position = _keys_and_order(keys, packed, host, kind="stable")
    else:
        tie_break = jnp.where(position < half, 2 * size - 1 - position, position)
        merged, tie_break = _bitonic_merge(keys, tie_break, packed)
        position = jnp.where(tie_break < size, tie_break, 2 * size - 1 - tie_break)
    z_sorted = _scores_of_sorted(merged, scores)
    z = jnp.zeros(size, scores.dtype).at[order[position]].set(z_sorted, unique_indices=True)
    return _undefined_unless_finite(median, z)


def _undefined_unless_finite(median, z):
    """``z`` NaN where the median is infinite or NaN (draws that are inf at the middle): some
    folded draws ``|x - median|`` are then NaN (``inf - inf``), and so, in ArviZ, is every
    normal score of their ranks."""
    return jnp.where(jnp.isfinite(median), z, jnp.asarray(jnp.nan, z.dtype))
