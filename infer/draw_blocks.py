"""Reductions over a run's per-draw arrays a block of draws at a time.

A run kept in a store (``infer.sample(..., store=...)``) holds its draws and statistics as
Zarr arrays, read lazily; the checks made after every run (divergences, NaN log densities,
acceptance rates, float32's resolution) read them here in blocks of consecutive draws, so
that the memory they take stays one block whatever ``num_samples`` is. Arrays already in
memory (NumPy, JAX) are one block.
"""

from __future__ import annotations

import math
from collections.abc import Iterator

import jax
import numpy as np

#: Bytes of one block read from a store.
BLOCK_BYTES = 4 * 2**20


def blocks(values) -> Iterator[np.ndarray]:
    """``values`` ``(chain, draw, ...)`` as NumPy arrays of every chain's consecutive draws,
    each of about :data:`BLOCK_BYTES` at most (one draw of every chain at least)."""
    shape = getattr(values, "shape", None)
    if isinstance(values, np.ndarray | jax.Array) or shape is None or len(shape) < 2:
        yield np.asarray(values)  # in memory already: one block
        return
    per_draw = shape[0] * math.prod(shape[2:]) * np.dtype(values.dtype).itemsize
    step = max(1, BLOCK_BYTES // max(per_draw, 1))
    for start in range(0, shape[1], step):
        yield np.asarray(values[:, start : start + step])


def count(values, where=None) -> int:
    """How many entries of ``values`` ``where`` (a function of a block -> bools) holds for;
    by default the True (nonzero) ones."""
    return sum(
        int(np.count_nonzero(block if where is None else where(block))) for block in blocks(values)
    )


def largest_finite_magnitude(values) -> float:
    """The largest ``abs`` of the finite entries of ``values``; 0 where none is finite."""
    largest = 0.0
    for block in blocks(values):
        finite = np.abs(block[np.isfinite(block)])
        if finite.size:
            largest = max(largest, float(finite.max()))
    return largest


def nan_extremes(values) -> tuple[float, float]:
    """``(nanmin, nanmax)`` of ``values`` (infinities included), NaN where every entry is."""
    low, high = math.inf, -math.inf
    for block in blocks(values):
        if block.size and not np.isnan(block).all():
            low = min(low, float(np.nanmin(block)))
            high = max(high, float(np.nanmax(block)))
    return (math.nan, math.nan) if low > high else (low, high)
