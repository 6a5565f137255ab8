"""Few draws share compiled programs, for :mod:`infer.chain_stats`: the parameters of every
array are stacked into one ``(num_chains, num_draws, width)`` array per dtype, the width filled
up to a power of two and the draws padded to one (as ``summary_stats(..., padded=True)``), so
that runs of other lengths and other parameters reuse one program where each shape would
compile its own (about a second each on a CPU, where computing takes milliseconds). The
statistics are the unpadded program's within round-off.
"""

from __future__ import annotations

import math

import jax
import numpy as np

#: Values (chains x draws x parameters) up to which the draws go through a shared program.
SHARED_UP_TO = 2**16
_MIN_WIDTH = 4


def applies(arrays, superchain_ids, platforms: set[str]) -> bool:
    """Whether the draws are few NumPy arrays (JAX arrays stay where they are), each with at
    least one parameter, computed on the CPU, and need no superchain labels (which are part
    of the program)."""
    on_host = all(isinstance(a, np.ndarray) and math.prod(a.shape[2:]) for a in arrays)
    few = sum(math.prod(a.shape) for a in arrays) <= SHARED_UP_TO
    return few and on_host and platforms == {"cpu"} and superchain_ids is None


def stack(arrays, compute_dtype: str) -> tuple[tuple, list]:
    """The arrays' parameters as one ``(num_chains, num_draws, width)`` float array per dtype
    (integers and bools in ``compute_dtype``; floats keep theirs, whose quantiles ArviZ
    computes in their own dtype), the width filled up to a power of two with copies of the
    last parameter. Also the layout :func:`unstack` reads the results with."""
    columns, layout, groups = [], [], {}
    for a in arrays:
        a = np.asarray(a)
        wide = a.dtype.itemsize > np.dtype(compute_dtype).itemsize
        if not jax.numpy.issubdtype(a.dtype, np.floating) or wide:  # as the program converts
            a = a.astype(compute_dtype)
        flat = a.reshape(a.shape[0], a.shape[1], -1)
        group = groups.setdefault(flat.dtype, len(groups))
        if group == len(columns):
            columns.append([])
        offset = sum(c.shape[2] for c in columns[group])
        columns[group].append(flat)
        layout.append((group, offset, flat.shape[2], a.shape[2:]))
    stacked = []
    for parts in columns:
        joined = np.concatenate(parts, axis=2)
        width = max(_MIN_WIDTH, 1 << max(joined.shape[2] - 1, 1).bit_length())
        fill = np.minimum(np.arange(width), joined.shape[2] - 1)
        stacked.append(np.ascontiguousarray(joined[:, :, fill]))
    return tuple(stacked), layout


def unstack(results: list, layout: list) -> list:
    """One dict of statistics per original array (NumPy arrays), from the stacked arrays'
    ``results``."""
    results = jax.device_get(results)  # sliced by NumPy: no small programs to compile
    return [
        {name: value[offset : offset + width].reshape(shape) for name, value in results[g].items()}
        for g, offset, width, shape in layout
    ]
