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

import hashlib
import json
import re
import zipfile
from pathlib import Path
from typing import NamedTuple

import jax
import numpy as np

from infer.io import write_atomically
from infer.runner import RunRecord, next_cut
from infer.store import is_infer_store

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


def write_chunk(folder: Path, index: int, positions, logdensity, infos) -> tuple[str, str]:
    """Write one chunk of draws; returns its file name and the digest of its arrays."""
    name = f"chunk-{index:06d}.npz"
    arrays = {**_flat("position/", positions), "logdensity": np.asarray(logdensity)}
    arrays.update({f"info/{key}": np.asarray(value) for key, value in infos.items()})
    _save_npz(Path(folder) / name, arrays)
    return name, _digest(arrays)


def _digest(arrays: dict) -> str:
    """SHA-256 of a chunk's arrays (names, dtypes, shapes and bytes, in name order): a
    checkpoint records it for each chunk it lists, so that another chunk put in its place
    (a copy of another file) is refused, not resumed as the run's draws."""
    digest = hashlib.sha256()
    for name in sorted(arrays):
        value = np.ascontiguousarray(arrays[name])
        digest.update(f"{name}:{value.dtype.str}:{value.shape};".encode())
        digest.update(value.reshape(-1).view(np.uint8))  # the buffer itself, not a copy
    return digest.hexdigest()


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
    elif source.suffix == ".npz" and source.parent.is_dir():  # a checkpoint that is gone
        kept = [p.name for p in checkpoints(source.parent)]
        raise FileNotFoundError(
            f"{source} does not exist; the folder keeps the newest two checkpoints: "
            f"{kept or 'none'}. Resume from the folder ({str(source.parent)!r}) or one of those."
        )
    else:
        found = checkpoints(source)
        if not found:
            raise FileNotFoundError(_no_checkpoint(source))
        chosen = found[-1]
    try:
        return _read(chosen)
    except ValueError as err:
        earlier = [p for p in found if p != chosen]
        if earlier and _readable(earlier[-1]):
            hint = (
                f" The previous checkpoint {earlier[-1]} is readable: pass resume="
                f"{str(earlier[-1])!r} to continue from it (the steps after it are drawn "
                f"again), or delete {chosen.name}."
            )
        else:  # given a folder: none of its checkpoints can stand in
            hint = (
                " No earlier checkpoint in the folder can be resumed instead: start the run "
                "again with checkpoint= an empty folder."
                if source.is_dir()
                else ""
            )
        raise ValueError(f"{err}{hint}") from err


def _no_checkpoint(folder: Path) -> str:
    """Why there is nothing to resume in ``folder``, and how to start the run instead."""
    start = f"infer.sample(..., checkpoint={str(folder)!r})"
    if is_infer_store(folder):
        return (
            f"no checkpoint in {folder}: it is a Zarr store of draws (infer.sample(..., "
            "store=...)), which keeps no chains' state, so the run cannot be resumed from it. "
            f"Its draws open with infer.open_store({str(folder)!r}); a run to resume later "
            "needs checkpoint= a folder of its own (without store=)."
        )
    chunks = sorted(folder.glob("chunk-[0-9]*.npz")) if folder.is_dir() else []
    if chunks:
        return (
            f"no checkpoint in {folder}: it holds {len(chunks)} chunk file(s) of draws but no "
            "checkpoint-NNNNNN.npz, so the run was stopped before its first checkpoint and "
            "its chains' state was never saved: it cannot be resumed, and those draws are "
            f"lost. Start the run again with {start} (new chunks are written past these), "
            "with a smaller checkpoint_every to checkpoint sooner."
        )
    what = "holds no" if folder.is_dir() else "does not exist, so it holds no"
    return (
        f"no checkpoint in {folder}: it {what} checkpoint-NNNNNN.npz files written by "
        f"infer.sample(..., checkpoint=...). Pass the folder a run checkpointed into, or "
        f"start the run with {start}."
    )


def _readable(path: Path) -> bool:
    try:
        _read(path)
    except ValueError:
        return False
    return True


def _read(path: Path) -> Checkpoint:
    with open(path, "rb") as file:
        if file.read(4) in (b"\x89HDF", b"CDF\x01", b"CDF\x02") or path.suffix == ".nc":
            raise ValueError(
                f"{path} is a saved result (NetCDF, as Result.save writes), which keeps the "
                "draws but not the chains' state, so no run resumes from it. A Markov-chain "
                "run that may need continuing keeps a checkpoint folder (checkpoint="
                "'run_dir'), which resume='run_dir' continues."
            )
    if not zipfile.is_zipfile(path):  # np.load would try it as a pickle, and say so
        raise ValueError(
            f"checkpoint {path} is truncated or not an infer checkpoint (not a whole NumPy "
            ".npz archive): resume takes a "
            "checkpoint folder written by infer.sample(..., checkpoint=...), or one "
            "checkpoint-NNNNNN.npz in it."
        )
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
    for number, name in enumerate(meta["chunks"], start=1):
        chunk = path.parent / name
        try:
            with np.load(chunk) as archive:
                part = {key: archive[key] for key in archive.files}
        except Exception as err:
            raise ValueError(
                f"the chunk {chunk} ({number} of the {len(meta['chunks'])} chunks of draws "
                f"listed by checkpoint {path}) is missing or damaged "
                f"({type(err).__name__}: {err}). The draws it held are lost to this "
                "checkpoint, and a resume needs every chunk its checkpoint lists: put the file "
                "back if you have a copy."
            ) from err
        recorded = meta.get("chunk_digests", {}).get(name)  # none in older checkpoints
        if recorded is not None and recorded != _digest(part):
            raise ValueError(
                f"the chunk {chunk} ({number} of the {len(meta['chunks'])} chunks of draws "
                f"listed by checkpoint {path}) is not the file that checkpoint wrote: its "
                "draws differ (was another chunk copied over it?). The draws it held are lost "
                "to this checkpoint: put the file back if you have a copy."
            )
        count = sum(1 for key in part if key.startswith("position/"))
        positions.append([part[f"position/{i}"] for i in range(count)])
        logdensity.append(part["logdensity"])
        infos.append({k[len("info/") :]: v for k, v in part.items() if k.startswith("info/")})
    return Checkpoint(path, meta, leaves[:-1], leaves[-1], positions, logdensity, infos)


def restore(saved: Checkpoint, carry_structs, num_warmup: int, thin: int, sharding):
    """``(chain_keys, record)`` of a checkpoint, its state laid out like ``carry_structs``
    (the run's abstract carry) and placed with ``sharding``.

    Raises:
        ValueError: when the saved state's arrays do not match the run's.
    """
    like = jax.tree.leaves(carry_structs)
    structure = jax.tree.structure(carry_structs)
    leaves = saved.carry_leaves
    if len(like) != len(leaves):
        raise ValueError(
            f"checkpoint {saved.path} holds {len(leaves)} state arrays; this run's state "
            f"has {len(like)}. A checkpoint written by an earlier version of infer may lay "
            "its state out otherwise (NUTS and HMC now keep a position of several arrays as "
            "one vector): resume it with the version that wrote it, or start a new run."
        )
    for i, (a, b) in enumerate(zip(like, leaves, strict=True)):
        if tuple(a.shape) != tuple(b.shape) or a.dtype != b.dtype:
            raise ValueError(
                f"checkpoint {saved.path}: state array {i} is {b.shape} {b.dtype}, this "
                f"run's is {a.shape} {a.dtype}."
            )
    carry = jax.device_put(jax.tree.unflatten(structure, leaves), sharding)
    meta = saved.meta
    record = RunRecord(carry, int(meta["step"]), num_warmup, thin)
    position_structure = jax.tree.structure(carry.kernel_state.position)
    record.positions = [jax.tree.unflatten(position_structure, p) for p in saved.positions]
    record.logdensity = list(saved.logdensity)
    record.infos = list(saved.infos)
    record.num_logdensity_evals = int(meta["num_logdensity_evals"])
    record.num_grad_evals = int(meta["num_grad_evals"])
    if meta.get("nonfinite") is not None:
        record.nonfinite = np.asarray(meta["nonfinite"], np.int64)
    record.warmup_seconds = float(meta["warmup_seconds"])
    record.sampling_seconds = float(meta["sampling_seconds"])
    return jax.device_put(saved.chain_keys, sharding), record


class Writer:
    """Writes a run's checkpoints into ``folder`` as its segments finish: every ``every``
    steps (``maybe_write``) and at the end (``write(record, final=True)``).

    Args:
        facts: what every checkpoint records besides the state (the run's fingerprint, seed
            and stopping rule).
        chain_keys: the chains' keys, saved with the state.
        resumed: the checkpoint the run resumed from, or ``None``: its chunks stay listed.
    """

    def __init__(
        self,
        folder,
        facts: dict,
        chain_keys,
        every: int,
        record: RunRecord,
        resumed: Checkpoint | None = None,
    ):
        self.folder = Path(folder)
        self.folder.mkdir(parents=True, exist_ok=True)
        self.facts = facts
        self.chain_keys = chain_keys
        self.every = every
        self.stop = None
        self.chunks: list[str] = list(resumed.meta["chunks"]) if resumed else []
        self.digests: dict = dict(resumed.meta.get("chunk_digests", {})) if resumed else {}
        # the step this folder's run began at (after the run resume=result continued)
        self.first_step = int(resumed.meta.get("first_step", 0)) if resumed else record.step
        self.saved_parts = len(self.chunks)
        for leftover in self.folder.glob(".*.npz.*.tmp"):  # of a write the run was killed in
            leftover.unlink(missing_ok=True)
        existing = checkpoints(self.folder)
        if existing and resumed is None:  # written since this run's checks: another run's
            raise ValueError(
                f"checkpoint={str(self.folder)!r} holds checkpoints another run wrote while "
                "this one started: pass resume= that folder to continue that run, or give "
                "this run an empty folder."
            )
        self.number = int(_CHECKPOINT.search(existing[-1].name).group(1)) if existing else 0
        # New chunks are numbered past every chunk in the folder: a run resumed from an older
        # checkpoint must not overwrite a chunk that a newer checkpoint still lists.
        numbers = [int(p.stem.split("-")[1]) for p in self.folder.glob("chunk-[0-9]*.npz")]
        self.next_chunk = max([len(self.chunks) - 1, *numbers]) + 1
        self.last_step = record.step

    def maybe_write(self, record: RunRecord) -> None:
        """Write at the first segment's end at or past the grid's next cut, and no sooner
        than ``every - (thin - 1)`` steps after the last: a cut rounded up to a kept draw
        (``thin``) is up to ``thin - 1`` steps late, and the next one then no less due;
        segments cut for other reasons (the progress bar's, an accelerator's blocks) off
        that grid write nothing."""
        soon = self.every - (record.thin - 1)
        due = next_cut(self.last_step, record.num_warmup, self.every)
        if record.step >= due and record.step - self.last_step >= soon:
            self.write(record)

    def write(self, record: RunRecord, final: bool = False) -> None:
        """Write the draws since the last checkpoint as a chunk, then the checkpoint."""
        if record.step == self.last_step and (not final or self.number > 0):
            return
        new = slice(self.saved_parts, None)
        if record.positions[new]:
            positions = jax.tree.map(lambda *p: np.concatenate(p, axis=1), *record.positions[new])
            logdensity = np.concatenate(record.logdensity[new], axis=1)
            infos = {
                name: np.concatenate([part[name] for part in record.infos[new]], axis=1)
                for name in record.infos[0]
            }
            name, digest = write_chunk(self.folder, self.next_chunk, positions, logdensity, infos)
            self.chunks.append(name)
            self.digests[name] = digest
            self.next_chunk += 1
            # the record keeps one part per chunk, so the next chunk starts after these
            record.positions[new], record.logdensity[new] = [positions], [logdensity]
            record.infos[new] = [infos]
            self.saved_parts = len(record.positions)
        meta = {
            **self.facts,
            "step": record.step,
            "stop": self.stop,
            "first_step": self.first_step,
            "num_warmup": record.num_warmup,
            "thin": record.thin,
            "chunks": self.chunks,
            "chunk_digests": self.digests,
            "num_logdensity_evals": record.num_logdensity_evals,
            "num_grad_evals": record.num_grad_evals,
            "nonfinite": None if record.nonfinite is None else record.nonfinite.tolist(),
            "warmup_seconds": record.warmup_seconds,
            "sampling_seconds": record.sampling_seconds,
        }
        self.number += 1
        write_checkpoint(self.folder, self.number, meta, (record.carry, self.chain_keys))
        self.last_step = record.step
