"""Every process of a multi-process run must make the same ``infer.sample`` call: each chain's
draws depend on the seed and the chain's index alone, and the processes exchange arrays whose
shapes follow the arguments. A seed taken from the process index mixed two runs' chains into
one result without a word; another ``num_chains`` aborted inside the collectives (gloo). This
checks first, with one small exchange of each argument's fingerprint.
"""

from __future__ import annotations

import zlib

import jax
import numpy as np


def _fingerprint(value) -> int:
    """A 31-bit fingerprint of ``value`` (its ``repr``; arrays by their bytes and shape)."""
    if isinstance(value, np.ndarray | jax.Array):
        if jax.dtypes.issubdtype(value.dtype, jax.dtypes.prng_key):
            value = jax.random.key_data(value)  # a typed key: its words
        array = np.asarray(value)
        text = f"{array.shape}{array.dtype}".encode() + array.tobytes()
    else:
        text = repr(value).encode()
    return zlib.crc32(text) & 0x7FFFFFFF


def check_processes_agree(arguments: dict) -> None:
    """A ``ValueError`` naming the arguments (name -> value, the same names in every process)
    whose values differ between the processes; nothing with one process."""
    if jax.process_count() == 1:
        return
    from jax.experimental import multihost_utils

    names = list(arguments)
    mine = np.array([_fingerprint(arguments[name]) for name in names], np.int32)
    every = np.asarray(multihost_utils.process_allgather(mine))  # (processes, arguments)
    differ = [name for i, name in enumerate(names) if np.any(every[:, i] != every[0, i])]
    if differ:
        raise ValueError(
            f"the {jax.process_count()} processes called infer.sample with different "
            f"{', '.join(differ)} (process {jax.process_index()} of them): every process must "
            "make the same call, the same seed included (each chain's draws come from the seed "
            "and the chain's index, whatever process runs it; a seed from the process index "
            "would mix two runs' chains)."
        )
