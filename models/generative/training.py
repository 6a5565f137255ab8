"""One training loop for every generative model.

A model family (``models/generative/vae.py``, ``gan.py``, ``nade.py``, ``aae.py``) describes
itself with a :class:`Family`: how to build the NNX module, its objectives (each a loss, the
parameters it updates and an Optax optimiser), how to prepare a batch and how to score the
test split.
:func:`train` does the rest: the module and its optimisers are split once into a graph
definition and a state pytree, a single ``jax.jit``-ed step merges them, applies each
objective in turn and splits them again (Flax's functional pattern), and the host loop feeds
it seeded batches, shows a progress bar with the loss, checkpoints with Orbax and writes
metrics and pictures.

Every random number comes from ``fold_in(fold_in(key(seed), epoch), batch)`` and the batch
order from ``(seed, epoch)``, so a run resumed from a checkpoint ends bit-identical to one
that was never interrupted.
"""

from __future__ import annotations

import json
import math
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any, NamedTuple

import jax
import jax.numpy as jnp
import numpy as np
import optax
from flax import nnx

from infer import validation
from infer.io import write_atomically
from models.generative import data as datasets
from models.generative import figures


class Objective(NamedTuple):
    """One loss and what it trains.

    Attributes:
        name: shown in the metrics (``"loss"``, ``"discriminator"``, ...).
        wrt: an NNX filter selecting the parameters this loss updates.
        loss_fn: ``loss_fn(model, batch, rng_key) -> scalar`` to minimise.
        optimizer: the Optax transformation for those parameters.
    """

    name: str
    wrt: Any
    loss_fn: Callable
    optimizer: optax.GradientTransformation


class Family(NamedTuple):
    """What the training loop needs to know about a model family.

    Attributes:
        name: ``"vae"``, ``"gan"``, ``"nade"`` or ``"aae"``.
        defaults: every option with its default; :func:`train` accepts only these.
        build: ``build(dataset, options, rngs) -> nnx.Module``.
        objectives: ``objectives(options) -> list[Objective]``, applied in order each step.
        train_batch: ``train_batch(rng_key, images, dataset, options) -> batch``, inside the
            jitted step (e.g. dynamic binarisation); ``images`` (batch, h, w) in [0, 1].
        test_data: ``test_data(dataset, options) -> array``, the fixed test inputs.
        test_loss: ``test_loss(model, test_data, rng_key, options) -> scalar``, the per-image
            loss reported each epoch (nats per image for likelihood models).
        samples: ``samples(model, rng_key, num) -> (num, h, w)`` images in [0, 1].
        reconstructions: ``reconstructions(model, test_data) -> (num, h, w)``, or ``None``
            for models that do not encode.
    """

    name: str
    defaults: dict
    build: Callable
    objectives: Callable
    train_batch: Callable
    test_data: Callable
    test_loss: Callable
    samples: Callable
    reconstructions: Callable | None


def families() -> dict[str, Family]:
    from models.generative import aae, gan, nade, vae

    return {f.name: f for f in (vae.FAMILY, gan.FAMILY, nade.FAMILY, aae.FAMILY)}


class TrainedModel(NamedTuple):
    """What :func:`train` and :func:`load` return.

    Attributes:
        model: the trained ``nnx.Module``.
        metrics: ``{"epoch": [...], "train_<objective>": [...], "test_loss": [...],
            "seconds": [...], "loop_seconds": [...]}``: per epoch, the mean training losses,
            the test loss, the wall time and the time of the training steps alone.
        config: the model, data, seed, batch size and options it was trained with.
        folder: where its files are, or ``None``.
    """

    model: nnx.Module
    metrics: dict
    config: dict
    folder: Path | None


def _check_options(family: Family, options: dict) -> dict:
    unknown = sorted(set(options) - set(family.defaults))
    if unknown:
        valid = ", ".join(f"{k}={v!r}" for k, v in family.defaults.items())
        raise ValueError(
            f"unknown option(s) {unknown} for {family.name}; its options are: {valid}."
        )
    return {**family.defaults, **options}


def _build(family: Family, dataset, options: dict, seed: int):
    model = family.build(dataset, options, nnx.Rngs(seed))
    optimizers = [nnx.Optimizer(model, o.optimizer, wrt=o.wrt) for o in family.objectives(options)]
    return model, optimizers


def make_step(family: Family, options: dict, graphdef, dataset, train_images: jax.Array):
    """The jitted step: ``step(state, batch_indices, rng_key) -> (state, losses)``."""
    objectives = family.objectives(options)

    def step(state, batch_indices, rng_key):
        model, optimizers = nnx.merge(graphdef, state)
        key_batch, *keys = jax.random.split(rng_key, 1 + len(objectives))
        images = jnp.take(train_images, batch_indices, axis=0)
        batch = family.train_batch(key_batch, images, dataset, options)
        losses = {}
        for objective, optimizer, key in zip(objectives, optimizers, keys, strict=True):
            loss, grads = nnx.value_and_grad(
                objective.loss_fn, argnums=nnx.DiffState(0, objective.wrt)
            )(model, batch, key)
            optimizer.update(model, grads)
            losses[objective.name] = loss
        return nnx.state((model, optimizers)), losses

    return jax.jit(step, donate_argnums=(0,))


def train(
    model: str,
    data: str = "digits",
    *,
    epochs: int = 20,
    batch_size: int = 128,
    seed: int = 0,
    out=None,
    checkpoint_every: int = 5,
    resume: bool = False,
    progress: bool = False,
    stop_after: int | None = None,
    **options,
) -> TrainedModel:
    """Train a generative model.

    Args:
        model: ``"vae"``, ``"gan"``, ``"nade"`` or ``"aae"``.
        data: ``"digits"`` or ``"mnist"``.
        epochs: passes over the training split (full batches; the remainder is dropped).
        batch_size: images per step.
        seed: every random number of the run derives from it.
        out: folder for the checkpoints, ``metrics.json`` and pictures; ``None`` keeps
            everything in memory.
        checkpoint_every: save an Orbax checkpoint every this many epochs (and at the end).
        resume: continue from the latest checkpoint in ``out``, with the same settings.
        progress: show a progress bar with the current loss.
        stop_after: stop after this epoch as if interrupted (for tests of resuming).
        **options: the family's options (``models.generative.training.families()[model].defaults``).

    Returns:
        A :class:`TrainedModel`.

    Raises:
        ValueError: for unknown models, data or options, bad sizes, or a checkpoint made
            with other settings.
    """
    known = families()
    if model not in known:
        raise ValueError(f"unknown model {model!r}; choose one of: {', '.join(known)}.")
    family = known[model]
    dataset = datasets.load(data)
    epochs = validation.positive_int("epochs", epochs)
    batch_size = validation.positive_int("batch_size", batch_size)
    checkpoint_every = validation.positive_int("checkpoint_every", checkpoint_every)
    seed = validation.positive_int("seed", seed, minimum=0)
    num_train = dataset.train.shape[0]
    if batch_size > num_train:
        raise ValueError(
            f"batch_size {batch_size} is larger than the {num_train} training images of "
            f"{data!r}; use at most {num_train}."
        )
    if resume and out is None:
        raise ValueError("resume=True needs out=, the folder whose checkpoint to continue.")
    options = _check_options(family, options)
    config = {
        "model": model,
        "data": data,
        "seed": seed,
        "batch_size": batch_size,
        "options": options,
    }
    module, optimizers = _build(family, dataset, options, seed)
    graphdef, state = nnx.split((module, optimizers))
    train_images = jnp.asarray(dataset.train)
    step = make_step(family, options, graphdef, dataset, train_images)
    test_data = jnp.asarray(family.test_data(dataset, options))
    test_loss = jax.jit(
        lambda state, key: family.test_loss(nnx.merge(graphdef, state)[0], test_data, key, options)
    )
    metrics: dict = {"epoch": [], "test_loss": [], "seconds": []}
    folder = None if out is None else Path(out)
    checkpoints = None if folder is None else _checkpoints(folder)
    first_epoch = 1
    if resume:
        state, metrics, first_epoch = _restore(checkpoints, state, config)

    root = jax.random.key(seed)
    batches_per_epoch = num_train // batch_size
    bar = _bar(progress, epochs, first_epoch, batches_per_epoch, model)
    try:
        for epoch in range(first_epoch, epochs + 1):
            start = time.perf_counter()
            order = np.random.default_rng([seed, epoch]).permutation(num_train)
            key_epoch = jax.random.fold_in(root, epoch)
            sums: dict = {}
            for b in range(batches_per_epoch):
                indices = jnp.asarray(order[b * batch_size : (b + 1) * batch_size])
                state, losses = step(state, indices, jax.random.fold_in(key_epoch, b))
                sums = {k: sums.get(k, 0.0) + v for k, v in losses.items()}
                if bar is not None:
                    bar.update(1)
                    if b % 10 == 0 or b == batches_per_epoch - 1:
                        shown = ", ".join(f"{k} {float(v):.2f}" for k, v in losses.items())
                        bar.set_postfix_str(f"epoch {epoch}: {shown}", refresh=False)
            jax.block_until_ready(state)
            loop_seconds = time.perf_counter() - start
            _record(metrics, epoch, sums, batches_per_epoch, test_loss(state, root), start)
            metrics.setdefault("loop_seconds", []).append(loop_seconds)
            if checkpoints is not None and (epoch % checkpoint_every == 0 or epoch == epochs):
                _save_checkpoint(checkpoints, epoch, state, metrics, config)
            if stop_after is not None and epoch >= stop_after:
                break
    finally:
        if bar is not None:
            bar.close()
        if checkpoints is not None:
            checkpoints.wait_until_finished()
    module, _ = nnx.merge(graphdef, state)
    trained = TrainedModel(module, metrics, config, folder)
    if folder is not None:
        write_outputs(trained, family, dataset, options)
    return trained


def _bar(progress, epochs, first_epoch, batches_per_epoch, name):
    if not progress:
        return None
    from tqdm.auto import tqdm

    factory = tqdm if progress is True else progress
    total = (epochs - first_epoch + 1) * batches_per_epoch
    return factory(total=max(total, 0), desc=f"train {name}", unit="step")


def _record(metrics, epoch, sums, batches_per_epoch, test_value, start) -> None:
    metrics["epoch"].append(epoch)
    for name, total in sums.items():
        metrics.setdefault(f"train_{name}", []).append(float(total) / batches_per_epoch)
    metrics["test_loss"].append(float(test_value))
    metrics["seconds"].append(time.perf_counter() - start)


def _checkpoints(folder: Path):
    import orbax.checkpoint as ocp

    folder.mkdir(parents=True, exist_ok=True)
    return ocp.CheckpointManager(
        (folder / "checkpoints").absolute(),
        options=ocp.CheckpointManagerOptions(max_to_keep=2, create=True),
    )


def _save_checkpoint(manager, epoch, state, metrics, config) -> None:
    import orbax.checkpoint as ocp

    manager.save(
        epoch,
        args=ocp.args.Composite(
            state=ocp.args.StandardSave(nnx.to_pure_dict(state)),
            meta=ocp.args.JsonSave({"epoch": epoch, "metrics": metrics, "config": config}),
        ),
    )


def _restore(manager, state, config):
    """``(state, metrics, next_epoch)`` from the latest checkpoint (Orbax writes each one
    atomically, so the latest is a complete one even if the run was killed)."""
    import orbax.checkpoint as ocp

    latest = manager.latest_step()
    if latest is None:
        raise ValueError(
            f"resume=True but {manager.directory} holds no checkpoint; train without resume."
        )
    meta = manager.restore(latest, args=ocp.args.Composite(meta=ocp.args.JsonRestore()))["meta"]
    saved = meta["config"]
    if saved != json.loads(json.dumps(config)):
        raise ValueError(
            f"the checkpoint in {manager.directory} was made with {saved}, not {config}; "
            "resume with the same model, data, seed, batch size and options."
        )
    restored = manager.restore(
        latest,
        args=ocp.args.Composite(state=ocp.args.StandardRestore(nnx.to_pure_dict(state))),
    )
    restored = {"state": restored["state"], "meta": meta}
    nnx.replace_by_pure_dict(state, restored["state"])
    return state, restored["meta"]["metrics"], int(restored["meta"]["epoch"]) + 1


def load(folder) -> TrainedModel:
    """A trained model from its output folder (the latest checkpoint)."""
    import orbax.checkpoint as ocp

    folder = Path(folder)
    manager = _checkpoints(folder)
    latest = manager.latest_step()
    if latest is None:
        raise ValueError(f"{folder} holds no checkpoint: train a model there first.")
    meta = manager.restore(latest, args=ocp.args.Composite(meta=ocp.args.JsonRestore()))["meta"]
    config = meta["config"]
    family = families()[config["model"]]
    dataset = datasets.load(config["data"])
    module, optimizers = _build(family, dataset, config["options"], config["seed"])
    graphdef, state = nnx.split((module, optimizers))
    state, metrics, _ = _restore(manager, state, config)
    module, _ = nnx.merge(graphdef, state)
    return TrainedModel(module, metrics, config, folder)


def write_outputs(trained: TrainedModel, family: Family, dataset, options: dict) -> None:
    """``metrics.json``, the loss curves, a grid of samples and, for autoencoders, originals
    next to their reconstructions."""
    folder = trained.folder
    name = f"{trained.config['model']} on {trained.config['data']}"
    record = {"config": trained.config, "metrics": trained.metrics}
    write_atomically(
        folder / "metrics.json", lambda tmp: Path(tmp).write_text(json.dumps(record, indent=1))
    )
    figures.loss_curves(trained.metrics, folder / "loss.png", f"{name}: loss per epoch")
    samples = family.samples(trained.model, jax.random.key(trained.config["seed"] + 1), 64)
    figures.image_grid(np.asarray(samples), folder / "samples.png", f"{name}: 64 samples")
    if family.reconstructions is not None:
        test = family.test_data(dataset, options)[:24]
        rebuilt = family.reconstructions(trained.model, jnp.asarray(test))
        originals = np.asarray(test, np.float32)
        if originals.max() > 1.0:  # counts: show as intensities
            originals = originals / dataset.max_count
        figures.reconstruction_grid(
            originals,
            np.asarray(rebuilt),
            folder / "reconstructions.png",
            f"{name}: test images (odd rows) and reconstructions (even rows)",
        )


def per_image(total: float, num_images: int) -> float:
    return total / max(num_images, 1)


def nats_to_bits_per_dim(nats: float, num_pixels: int) -> float:
    return nats / (num_pixels * math.log(2.0))
