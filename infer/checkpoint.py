"""Checkpoints of a Markov-chain run: a folder that a killed run resumes from.

Layout of ``run_dir``:

* ``chunk-000000.npz``, ``chunk-000001.npz``, ...: the draws of the steps between two
  checkpoints (unconstrained positions, log densities, per-step diagnostics). Written once,
  never changed, so a checkpoint costs only its new draws.
* ``checkpoint-000001.npz``, ...: the chains' state after a step, the list of chunk files it
  covers, the counts and timings so far, and the run's fingerprint. The two newest are kept.

Every file is written to a temporary name and renamed into place, so a run killed at any
moment leaves the previous checkpoint intact; a chunk written after the last checkpoint is
simply not listed by it. Plain NumPy archives plus JSON: no process or thread of its own, and
readable without infer.
"""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import NamedTuple

import jax
import numpy as np

from infer.io import write_atomically

FORMAT = "infer.checkpoint/1"
_CHECKPOINT = re.compile(r"checkpoint-(\d{6})\.npz$")
KEEP = 2


class Checkpoint(NamedTuple):
    """A checkpoint read back.

    Attributes:
        path: the checkpoint file.
        meta: its JSON record (``step``, ``fingerprint``, ``seed``, ``chunks``, counts...).
        carry_leaves: the chains' state as a list of arrays, in the carry's leaf order.
        chain_keys: the chains' keys, ``(num_chains,)``.
        positions, logdensity, infos: the draws of every chunk it lists (as in
            :class:`infer.runner.RunRecord`).
    """

    path: Path
    meta: dict
    carry_leaves: list
    chain_keys: object
    positions: list
    logdensity: list
    infos: list


def _save_npz(path: Path, arrays: dict) -> None:
    def write(tmp):
        with open(tmp, "wb") as handle:
            np.savez(handle, **arrays)

    write_atomically(path, write)


def _flat(prefix: str, tree) -> dict:
    return {f"{prefix}{i}": np.asarray(leaf) for i, leaf in enumerate(jax.tree.leaves(tree))}


def write_chunk(folder: Path, index: int, positions, logdensity, infos) -> str:
    """Write one chunk of draws; returns its file name."""
    name = f"chunk-{index:06d}.npz"
    arrays = {**_flat("position/", positions), "logdensity": np.asarray(logdensity)}
    arrays.update({f"info/{key}": np.asarray(value) for key, value in infos.items()})
    _save_npz(Path(folder) / name, arrays)
    return name


def write_checkpoint(folder: Path, number: int, meta: dict, state) -> Path:
    """Write checkpoint ``number``: ``meta`` and ``state = (carry, chain_keys)``'s leaves
    (keys stored as their key data), then drop all but the newest :data:`KEEP`."""
    folder = Path(folder)
    leaves = jax.tree.leaves(state)
    arrays, key_impls = {}, {}
    for i, leaf in enumerate(leaves):
        if jax.dtypes.issubdtype(leaf.dtype, jax.dtypes.prng_key):
            key_impls[str(i)] = str(jax.random.key_impl(leaf))
            leaf = jax.random.key_data(leaf)
        arrays[f"carry/{i}"] = np.asarray(leaf)
    record = {**meta, "format": FORMAT, "num_carry_leaves": len(leaves), "key_leaves": key_impls}
    arrays["meta"] = np.frombuffer(json.dumps(record).encode(), np.uint8)
    path = folder / f"checkpoint-{number:06d}.npz"
    _save_npz(path, arrays)
    for old in checkpoints(folder)[:-KEEP]:
        old.unlink(missing_ok=True)
    return path


def checkpoints(folder) -> list[Path]:
    """The checkpoint files in ``folder``, oldest first."""
    folder = Path(folder)
    if not folder.is_dir():
        return []
    found = [p for p in folder.iterdir() if _CHECKPOINT.search(p.name)]
    return sorted(found, key=lambda p: int(_CHECKPOINT.search(p.name).group(1)))


def load(source) -> Checkpoint:
    """The newest checkpoint in a folder, or the checkpoint file ``source`` itself.

    Raises:
        FileNotFoundError: when there is no checkpoint there.
        ValueError: when the checkpoint (or a chunk it lists) is truncated or not an infer
            checkpoint; the message names the previous checkpoint that can be resumed
            from instead, when there is one.
    """
    source = Path(source)
    if source.is_file():
        found, chosen = [source], source
    else:
        found = checkpoints(source)
        if not found:
            raise FileNotFoundError(
                f"no checkpoint in {source}: expected checkpoint-NNNNNN.npz files written by "
                "infer.sample(..., checkpoint=...)."
            )
        chosen = found[-1]
    try:
        return _read(chosen)
    except ValueError as err:
        earlier = [p for p in found if p != chosen]
        hint = (
            f" The previous checkpoint {earlier[-1]} is readable: pass resume="
            f"{str(earlier[-1])!r} to continue from it, or delete {chosen.name}."
            if earlier and _readable(earlier[-1])
            else ""
        )
        raise ValueError(f"{err}{hint}") from err


def _readable(path: Path) -> bool:
    try:
        _read(path)
    except ValueError:
        return False
    return True


def _read(path: Path) -> Checkpoint:
    try:
        with np.load(path) as archive:
            arrays = {name: archive[name] for name in archive.files}
        meta = json.loads(arrays["meta"].tobytes().decode())
    except Exception as err:  # zipfile, OSError, KeyError, JSON errors: all mean "damaged"
        raise ValueError(
            f"checkpoint {path} is truncated or not an infer checkpoint "
            f"({type(err).__name__}: {err})."
        ) from err
    if meta.get("format") != FORMAT:
        raise ValueError(
            f"{path} is not an infer checkpoint (format {meta.get('format')!r}, expected "
            f"{FORMAT!r})."
        )
    leaves = []
    for i in range(int(meta["num_carry_leaves"])):
        leaf = arrays[f"carry/{i}"]
        impl = meta["key_leaves"].get(str(i))
        leaves.append(jax.random.wrap_key_data(leaf, impl=impl) if impl else leaf)
    positions, logdensity, infos = [], [], []
    for name in meta["chunks"]:
        chunk = path.parent / name
        try:
            with np.load(chunk) as archive:
                part = {key: archive[key] for key in archive.files}
        except Exception as err:
            raise ValueError(
                f"the chunk {chunk} listed by checkpoint {path} is missing or damaged "
                f"({type(err).__name__}: {err})."
            ) from err
        count = sum(1 for key in part if key.startswith("position/"))
        positions.append([part[f"position/{i}"] for i in range(count)])
        logdensity.append(part["logdensity"])
        infos.append({k[len("info/") :]: v for k, v in part.items() if k.startswith("info/")})
    return Checkpoint(path, meta, leaves[:-1], leaves[-1], positions, logdensity, infos)
