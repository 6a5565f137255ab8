"""Orbax checkpoints of a training run: the state pytree of the module and its optimisers
(and, with a validation split, the state of the best validation loss so far), with the epoch,
the metrics so far and the configuration beside it.

Orbax writes each checkpoint atomically, so the latest one is complete even if the run was
killed while saving.
"""

from __future__ import annotations

import contextlib
import json
import signal
import threading
from pathlib import Path

import jax
import jax.numpy as jnp
import numpy as np
from flax import nnx

from models.generative.orbax_noise import reads_quieted


def manager(folder: Path):
    """An Orbax ``CheckpointManager`` over ``folder/checkpoints`` (made if absent), keeping
    the last two checkpoints."""
    import orbax.checkpoint as ocp

    folder.mkdir(parents=True, exist_ok=True)
    return ocp.CheckpointManager(
        (folder / "checkpoints").absolute(),
        options=ocp.CheckpointManagerOptions(
            max_to_keep=2, create=True, enable_async_checkpointing=False
        ),
    )


def save(checkpoints, epoch: int, state, best, metrics: dict, config: dict) -> None:
    """Save ``state`` (an NNX state) after ``epoch``, and ``best`` (the state of the lowest
    validation loss, or ``None``), with the metrics and configuration."""
    import orbax.checkpoint as ocp

    items = {
        "state": ocp.args.StandardSave(nnx.to_pure_dict(state)),
        "meta": ocp.args.JsonSave({"epoch": epoch, "metrics": metrics, "config": config}),
    }
    if best is not None:
        items["best"] = ocp.args.StandardSave(nnx.to_pure_dict(best))
    with interrupts_deferred():  # Ctrl-C mid-save left a temporary folder and Orbax's errors
        checkpoints.save(epoch, args=ocp.args.Composite(**items))


@contextlib.contextmanager
def interrupts_deferred():
    """Hold Ctrl-C (SIGINT) until the block is done, then raise ``KeyboardInterrupt``: a
    checkpoint is written whole or not started. Only in the main thread (where Python
    delivers signals); elsewhere the block runs as it is."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return
    caught = []
    previous = signal.signal(signal.SIGINT, lambda signum, frame: caught.append(signum))
    try:
        yield
    finally:
        signal.signal(signal.SIGINT, previous)
    if caught:
        raise KeyboardInterrupt


def saved_config(checkpoints) -> dict | None:
    """The configuration stored with the latest checkpoint, or ``None`` if there is none."""
    import orbax.checkpoint as ocp

    latest = checkpoints.latest_step()
    if latest is None:
        return None
    return _read(checkpoints, latest, meta=ocp.args.JsonRestore())["meta"]["config"]


def _read(checkpoints, step: int, **items) -> dict:
    """``items`` of the checkpoint of epoch ``step``, or a ``ValueError`` that names it as
    damaged and says how to go on from the older one Orbax keeps."""
    import orbax.checkpoint as ocp

    try:
        with reads_quieted():  # a damaged file's other reads end later, each with a traceback
            return checkpoints.restore(step, args=ocp.args.Composite(**items))
    except Exception as err:  # Orbax's and TensorStore's errors of a damaged file are many
        folder = Path(checkpoints.directory) / str(step)
        older = [kept for kept in checkpoints.all_steps() if kept < step]
        then = (
            f"The checkpoint of epoch {max(older)} is kept: move {folder} away to go on from it."
            if older
            else "No older checkpoint is kept: train afresh in another folder."
        )
        reason = (str(err).strip().splitlines() or [""])[0].split(" See full")[0][:300]
        raise ValueError(
            f"the checkpoint of epoch {step} ({folder}) cannot be read: it is damaged "
            f"({type(err).__name__}: {reason}). {then}"
        ) from err


def _differences(saved: dict, now: dict) -> str:
    """``"name: saved value in the checkpoint, now value now"`` for each setting that
    differs, the options one by one."""
    if saved.get("model") != now.get("model"):  # another family: its options mean nothing here
        return f"model: {saved.get('model')!r} in the checkpoint, {now.get('model')!r} now"
    lines = []
    for key in sorted(set(saved) | set(now)):
        before, after = saved.get(key), now.get(key)
        if key == "options" and isinstance(before, dict) and isinstance(after, dict):
            lines += [
                f"option {name}: {before.get(name)!r} in the checkpoint, {after.get(name)!r} now"
                for name in sorted(set(before) | set(after))
                if before.get(name) != after.get(name)
            ]
        elif key == "jax_enable_x64":  # kept only when on
            lines.append(
                f"64-bit floats (JAX_ENABLE_X64): {'on' if before else 'off'} in the checkpoint, "
                f"{'on' if after else 'off'} now; resume with JAX_ENABLE_X64="
                f"{1 if before else 0} (or jax.config.update('jax_enable_x64', {bool(before)}))"
            )
        elif before != after:
            lines.append(f"{key}: {before!r} in the checkpoint, {after!r} now")
    return "; ".join(lines)


def _uncommitted(tree):
    """``tree``'s arrays as a fresh run holds them: Orbax gives arrays committed to a device,
    which ``jax.jit`` lowers to other programs than the fresh run's (its step, scores and
    copies), so a resumed run compiled each of them again, twice for the step."""
    return jax.tree.map(lambda leaf: jnp.asarray(np.asarray(leaf)), tree)


def restore(checkpoints, state, best, config: dict):
    """``(state, best, metrics, next_epoch)`` from the latest checkpoint, restored into
    ``state`` and ``best`` (NNX states of the same structure; ``best`` ``None`` when the run
    keeps no best state).

    Raises:
        ValueError: when there is no checkpoint, or it was made with another ``config``.
    """
    import orbax.checkpoint as ocp

    latest = checkpoints.latest_step()
    if latest is None:
        raise ValueError(
            f"resume=True but {checkpoints.directory} holds no checkpoint; train without resume."
        )
    meta = _read(checkpoints, latest, meta=ocp.args.JsonRestore())["meta"]
    saved = meta["config"]
    now = json.loads(json.dumps(config))
    if saved != now:
        raise ValueError(
            f"the checkpoint in {checkpoints.directory} was made with another run: "
            f"{_differences(saved, now)}. Resume with the same model, data, seed, batch size, "
            "validation, patience and options (on the command line: the same flags and "
            "--option values as the first run, with --resume)."
        )
    items = {"state": ocp.args.StandardRestore(nnx.to_pure_dict(state))}
    if best is not None:
        items["best"] = ocp.args.StandardRestore(nnx.to_pure_dict(best))
    restored = _read(checkpoints, latest, **items)
    nnx.replace_by_pure_dict(state, _uncommitted(restored["state"]))
    if best is not None:
        nnx.replace_by_pure_dict(best, _uncommitted(restored["best"]))
    return state, best, meta["metrics"], int(meta["epoch"]) + 1
