"""The training loop every generative model shares.

It knows a model only through its :class:`~models.generative.family.Family`: the module and
its optimisers are split once into a graph definition and a state pytree, a single
``jax.jit``-ed step merges them, applies each objective in turn and splits them again (Flax's
functional pattern), and the host loop feeds it seeded batches, shows a progress bar with the
loss, checkpoints with Orbax and writes metrics and pictures.

Every random number comes from ``fold_in(fold_in(key(seed), epoch), batch)`` and the batch
order from ``(seed, epoch)``, so a run resumed from a checkpoint ends bit-identical to one
that was never interrupted.

With a validation split (``train(..., validation=0.1)``) the loop also scores the held-out
training images each epoch, keeps the state with the lowest validation loss (in memory and
in every checkpoint) and returns that one; ``patience=k`` stops the run after ``k`` epochs
without a new best (early stopping).
"""

from __future__ import annotations

import functools
import json
import math
import time
import warnings
from pathlib import Path
from typing import NamedTuple

import jax
import jax.numpy as jnp
import numpy as np
from flax import nnx

from infer.io import write_atomically
from models.generative import checkpoints, figures
from models.generative.family import Family


class TrainedModel(NamedTuple):
    """What training and loading return.

    Attributes:
        model: the trained ``nnx.Module``.
        metrics: ``{"epoch": [...], "train_<objective>": [...], "test_loss": [...],
            "seconds": [...], "loop_seconds": [...]}``: per epoch, the mean training losses,
            the test loss, the wall time and the time of the training steps alone; with a
            validation split also ``"validation_loss"`` per epoch, ``"best_epoch"`` (the
            epoch of the returned model) and ``"stopped_early"`` (the last epoch, when
            patience ran out, else ``None``).
        config: the model, data, seed, batch size and options it was trained with.
        folder: where its files are, or ``None``.
    """

    model: nnx.Module
    metrics: dict
    config: dict
    folder: Path | None


def check_trained(trained, function: str) -> None:
    """A ``TypeError`` unless ``trained`` is a :class:`TrainedModel`, saying what to pass."""
    if not isinstance(trained, TrainedModel):
        got = type(trained).__name__
        hint = (
            " (the module itself is trained.model; this function takes the whole result)"
            if isinstance(trained, nnx.Module)
            else ""
        )
        raise TypeError(
            f"{function}'s trained must be a TrainedModel, what training.train and "
            f"training.load return; got {got}{hint}."
        )


def build(family: Family, dataset, options: dict, seed: int):
    """``(module, optimizers)``: the family's module and one ``nnx.Optimizer`` per
    objective, initialised from ``seed``."""
    model = family.build(dataset, options, nnx.Rngs(seed))
    optimizers = [nnx.Optimizer(model, o.optimizer, wrt=o.wrt) for o in family.objectives(options)]
    return model, optimizers


def make_step(
    family: Family, options: dict, graphdef, dataset, train_images: jax.Array, batch_size: int
):
    """The jitted step: ``step(state, sums, order, batch, key_epoch) -> (state, sums,
    losses)``.

    ``order`` (num_train,) is the epoch's permutation of the training images, ``batch`` the
    batch's index in it (a device int32), ``key_epoch`` the epoch's key; the batch's images
    and key (``fold_in(key_epoch, batch)``) are taken inside, and the running sums of the
    losses (name -> scalar) are added to inside, so a step is one dispatch from the host.
    """
    objectives = family.objectives(options)

    def step(state, sums, order, batch_index, key_epoch):
        model, optimizers = nnx.merge(graphdef, state)
        rng_key = jax.random.fold_in(key_epoch, batch_index)
        key_batch, *keys = jax.random.split(rng_key, 1 + len(objectives))
        indices = jax.lax.dynamic_slice_in_dim(order, batch_index * batch_size, batch_size)
        images = jnp.take(train_images, indices, axis=0)
        batch = family.train_batch(key_batch, images, dataset, options)
        losses = {}
        for objective, optimizer, key in zip(objectives, optimizers, keys, strict=True):
            loss, grads = nnx.value_and_grad(
                objective.loss_fn, argnums=nnx.DiffState(0, objective.wrt)
            )(model, batch, key)
            optimizer.update(model, grads)
            losses[objective.name] = loss
        sums = {name: sums[name] + loss.astype(sums[name].dtype) for name, loss in losses.items()}
        return nnx.state((model, optimizers)), sums, losses

    return jax.jit(step, donate_argnums=(0, 1))


def fit(
    family: Family,
    dataset,
    config: dict,
    *,
    epochs: int,
    checkpoint_every: int,
    folder: Path | None,
    resume: bool,
    progress,
    stop_after: int | None,
    patience: int | None = None,
) -> TrainedModel:
    """Train ``family`` on ``dataset`` with the checked ``config`` (``model``, ``data``,
    ``seed``, ``batch_size``, ``options``); the arguments are those of
    :func:`models.generative.training.train`, already validated."""
    seed, batch_size, options = config["seed"], config["batch_size"], config["options"]
    module, optimizers = build(family, dataset, options, seed)
    graphdef, state = nnx.split((module, optimizers))
    train_images = jnp.asarray(dataset.train)
    step = make_step(family, options, graphdef, dataset, train_images, batch_size)
    test_data = jnp.asarray(family.test_data(dataset, options))
    held_out = (
        None if dataset.validation is None else family.test_data(dataset, options, "validation")
    )
    score = jax.jit(
        lambda state, data, key: family.test_loss(nnx.merge(graphdef, state)[0], data, key, options)
    )
    metrics: dict = {"epoch": [], "test_loss": [], "seconds": []}
    best = None
    if held_out is not None:
        held_out = jnp.asarray(held_out)
        metrics.update(validation_loss=[], best_epoch=None, stopped_early=None)
        best = copy_state(state)
    manager = None if folder is None else checkpoints.manager(folder)
    first_epoch = 1
    if resume:
        state, best, metrics, first_epoch = _resumed(manager, state, best, config, epochs)

    num_train = dataset.train.shape[0]
    root = jax.random.key(seed)
    batches_per_epoch = num_train // batch_size
    batch_indices = [jnp.int32(b) for b in range(batches_per_epoch)]  # on the device once
    names = [objective.name for objective in family.objectives(options)]
    bar = _bar(progress, epochs, first_epoch, batches_per_epoch, family.name)
    try:
        for epoch in range(first_epoch, epochs + 1):
            start = time.perf_counter()
            order = np.random.default_rng([seed, epoch]).permutation(num_train)
            order = jnp.asarray(order, jnp.int32)
            key_epoch = jax.random.fold_in(root, epoch)
            sums = {name: jnp.zeros((), jnp.float32) for name in names}
            for b in range(batches_per_epoch):
                state, sums, losses = step(state, sums, order, batch_indices[b], key_epoch)
                _show(bar, epoch, b, batches_per_epoch, losses)
            jax.block_until_ready(state)
            loop_seconds = time.perf_counter() - start
            stopping = False
            if held_out is not None:
                loss = float(score(state, held_out, root))
                best, stopping = _keep_best(metrics, epoch, loss, state, best, patience)
            _record(metrics, epoch, sums, batches_per_epoch, score(state, test_data, root), start)
            _refuse_divergence(metrics, family.name, epoch)  # before a NaN state is saved
            metrics.setdefault("loop_seconds", []).append(loop_seconds)
            if manager is not None and (
                epoch % checkpoint_every == 0 or epoch == epochs or stopping
            ):
                checkpoints.save(manager, epoch, state, best, metrics, config)
            if stopping or (stop_after is not None and epoch >= stop_after):
                break
    finally:
        if bar is not None:
            bar.close()
        if manager is not None:  # saves are synchronous (checkpoints.manager): an
            manager.close()  # asynchronous one that failed left threads that hung the process
    module, _ = nnx.merge(graphdef, state if best is None else best)
    trained = TrainedModel(module, metrics, config, folder)
    if folder is not None:
        write_outputs(trained, family, dataset, options)
        if resume and first_epoch <= metrics["epoch"][-1]:  # trained further
            _warn_of_old_evaluations(folder)
    return trained


def _warn_of_old_evaluations(folder: Path) -> None:
    """A warning naming the evaluations in ``folder`` that scored the model before it was
    trained further (``infer evaluate`` writes them beside the checkpoints)."""
    old = sorted(path.name for path in folder.glob("evaluation*.json"))
    if old:
        warnings.warn(
            f"{', '.join(old)} in {folder} scored the model before this run trained it "
            "further: run infer evaluate again.",
            UserWarning,
            stacklevel=4,
        )


def _resumed(manager, state, best, config: dict, epochs: int):
    """``(state, best, metrics, first_epoch)`` restored from the latest checkpoint; a run
    already trained past ``epochs`` trains nothing more, and is told so."""
    state, best, metrics, first_epoch = checkpoints.restore(manager, state, best, config)
    if metrics.get("stopped_early"):  # patience had already run out
        warnings.warn(
            f"the run in {manager.directory} stopped early after epoch {first_epoch - 1} (its "
            "validation loss had not improved for patience epochs): nothing more is trained. "
            "To train on, start a new run in another folder (more patience, or none).",
            UserWarning,
            stacklevel=4,
        )
        return state, best, metrics, epochs + 1
    if first_epoch > epochs + 1:
        warnings.warn(
            f"the run in {manager.directory} was trained for {first_epoch - 1} epochs already, "
            f"more than epochs={epochs}: nothing more is trained. Pass a larger epochs "
            "(--epochs) to continue it.",
            UserWarning,
            stacklevel=4,
        )
    return state, best, metrics, first_epoch


def _refuse_divergence(metrics: dict, name: str, epoch: int) -> None:
    """A ``FloatingPointError`` when a loss of ``epoch`` (the last recorded) is NaN or
    infinite: training has diverged, and the epoch is not saved."""
    losses = {key: values[-1] for key, values in metrics.items() if key.startswith("train_")}
    losses["test_loss"] = metrics["test_loss"][-1]
    bad = {key: value for key, value in losses.items() if not math.isfinite(value)}
    if bad:
        raise FloatingPointError(
            f"{name} training diverged at epoch {epoch}: {bad} not finite. The epoch was not "
            "saved; lower learning_rate or check the options (a weight or scale that is too "
            "large)."
        )


def _show(bar, epoch: int, batch: int, batches_per_epoch: int, losses: dict) -> None:
    """Advance the progress bar by a step; every 10 steps, show the losses."""
    if bar is None:
        return
    bar.update(1)
    if batch % 10 == 0 or batch == batches_per_epoch - 1:
        shown = ", ".join(f"{k} {float(v):.2f}" for k, v in losses.items())
        bar.set_postfix_str(f"epoch {epoch}: {shown}", refresh=False)


def _keep_best(metrics: dict, epoch: int, loss: float, state, best, patience):
    """Record ``epoch``'s validation ``loss``; ``(best, stopping)``: a copy of ``state`` if
    it is the lowest so far (else ``best``), and whether ``patience`` has run out."""
    metrics["validation_loss"].append(loss)
    if metrics["best_epoch"] is None or loss < _best_loss(metrics):
        metrics["best_epoch"], best = epoch, copy_state(state)
    stopping = patience is not None and epoch - metrics["best_epoch"] >= patience
    if stopping:
        metrics["stopped_early"] = epoch
    return best, stopping


def copy_state(state):
    """A copy of ``state`` that the next (donating) step does not consume."""
    return jax.tree.map(jnp.copy, state)


def _best_loss(metrics: dict) -> float:
    return metrics["validation_loss"][metrics["epoch"].index(metrics["best_epoch"])]


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


def write_outputs(trained: TrainedModel, family: Family, dataset, options: dict) -> None:
    """``metrics.json``, the loss curves, a grid of samples and, for families with
    reconstructions, originals next to their reconstructions."""
    folder = trained.folder
    name = f"{trained.config['model']} on {trained.config['data']}"
    record = {"config": trained.config, "metrics": trained.metrics}
    write_atomically(
        folder / "metrics.json", lambda tmp: Path(tmp).write_text(json.dumps(record, indent=1))
    )
    labels = family.loss_labels(options) if family.loss_labels is not None else None
    unit = family.loss_unit or (
        "loss (nats per image)"
        if family.test_loss_ranks_models
        else "loss (its objectives, not nats)"
    )
    figures.loss_curves(
        trained.metrics, folder / "loss.png", f"{name}: loss per epoch", labels, unit
    )
    draw = _compiled(family.samples, static_argnums=2)
    samples = draw(trained.model, jax.random.key(trained.config["seed"] + 1), 64)
    title = f"{name}: 64 {family.samples_are}"
    figures.image_grid(np.asarray(samples), folder / "samples.png", title)
    if family.reconstructions is not None:
        test = family.test_data(dataset, options)[:24]
        rebuilt = _compiled(family.reconstructions)(trained.model, jnp.asarray(test))
        originals = np.asarray(test, np.float32)
        if originals.max() > 1.0:  # counts: show as intensities
            originals = originals / dataset.max_count
        figures.reconstruction_grid(
            originals,
            np.asarray(rebuilt),
            folder / "reconstructions.png",
            f"{name}: test images (odd rows) and reconstructions (even rows)",
        )


@functools.cache
def _compiled(method, static_argnums=()):
    """``method(model, ...)`` as one compiled program (kept, so a second model of the same
    family and shapes reuses it): run op by op, a VAE's 64 samples and 24 reconstructions
    compiled ~40 small programs (2.6 s here)."""
    return nnx.jit(method, static_argnums=static_argnums)
