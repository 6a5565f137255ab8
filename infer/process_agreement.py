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
    """A 31-bit fingerprint of ``value``, a pytree: its structure, its arrays by their bytes
    and shape (whose ``repr`` would elide the middle of a large one), other leaves by their
    ``repr``."""
    leaves, structure = jax.tree.flatten(value)
    text = repr(structure).encode()
    for leaf in leaves:
        if isinstance(leaf, np.ndarray | jax.Array):
            if jax.dtypes.issubdtype(leaf.dtype, jax.dtypes.prng_key):
                leaf = jax.random.key_data(leaf)  # a typed key: its words
            array = np.asarray(leaf)
            text += f"{array.shape}{array.dtype}".encode() + array.tobytes()
        else:
            text += repr(leaf).encode()
    return zlib.crc32(text) & 0x7FFFFFFF


def sample_call(target, sampler, init, *arguments: dict) -> dict:
    """What every process's ``infer.sample`` call must agree on, name -> value: the
    ``arguments`` (dicts name -> value) as given (``store``, ``checkpoint`` and ``resume``
    by whether they are given: their paths may differ, ``keep`` as its names), the target's
    name, data and log density at the start (different data captured in a log density's
    closure show there), the sampler's name and settings, and ``init``."""
    arguments = {name: value for given in arguments for name, value in given.items()}
    keep = arguments.pop("keep", None)
    for name in ("store", "checkpoint", "resume"):
        arguments[name] = arguments.get(name) is not None
    return {
        **arguments,
        "keep": list(keep) if isinstance(keep, list | tuple) else keep is None,
        "target": getattr(target, "name", None),
        "sampler": (getattr(sampler, "name", None), _settings_of(sampler)),
        "init": init,
        "the target's data": getattr(target, "data", None),
        "the log density at the start": _start_value(target, init),
    }


def _settings_of(sampler):
    """The sampler's settings, or None if it has none."""
    try:
        return sampler.settings()
    except Exception:  # noqa: BLE001 - checked later by name, where it matters
        return None


def _start_value(target, init):
    """The target's log density at ``init`` (the first chain's start of per-chain starts) or
    at the target's own ``init``; None when there is none or it cannot be evaluated here
    (the call's checks name that later)."""
    point = init if init is not None else getattr(target, "init", None)
    positions = getattr(point, "positions", None)  # per-chain starts: the first chain's
    if positions is not None:
        point = jax.tree.map(lambda leaf: leaf[0], positions)
    if point is None:
        return None
    try:
        return np.asarray(target.logdensity(point))
    except Exception:  # noqa: BLE001 - checked later, where it matters
        return None


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
            f"{', '.join(differ)} (process {jax.process_index()} of them; store, checkpoint "
            "and resume: given on some only): every process must "
            "make the same call, the same seed included (each chain's draws come from the seed "
            "and the chain's index, whatever process runs it; a seed from the process index "
            "would mix two runs' chains)."
        )
