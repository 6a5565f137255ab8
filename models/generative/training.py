"""Train a generative model by name, and load a trained one from its folder.

The model's name is looked up in ``registry.py``, its options and the run's settings are
checked on the host, and the shared training loop (``loop.py``) does the rest. Every random
number derives from the seed, so a run resumed from a checkpoint ends bit-identical to one
that was never interrupted.
"""

from __future__ import annotations

import math
import numbers
import os
import re
from pathlib import Path

import jax
import numpy as np
from flax import nnx

from infer import validation as checks
from infer.io import file_above
from infer.progress import check_progress
from models.generative import checkpoints, loop, registry
from models.generative import data as datasets
from models.generative.family import Family
from models.generative.loop import TrainedModel


def _check_options(family: Family, options: dict) -> dict:
    """The family's defaults updated by ``options``, each of which must be one of its options
    and of its default's kind: a whole number where the default is an int, a number where it
    is a float, a string where it is a string (a None default takes anything: the family
    checks it)."""
    unknown = sorted(set(options) - set(family.defaults))
    if unknown:
        valid = ", ".join(f"{k}={v!r}" for k, v in family.defaults.items())
        raise ValueError(
            f"unknown option(s) {unknown} for {family.name}; its options are: {valid}."
        )
    checked = {
        name: _check_kind(family.name, name, value, family.defaults[name])
        for name, value in options.items()
    }
    return {**family.defaults, **checked}


def _check_kind(family_name: str, name: str, value, default):
    """``value`` as a plain int or float where the default is one (a NumPy scalar passes,
    and is saved with the checkpoint's JSON as a number; so does one for an option whose
    default is None)."""
    if default is None and np.ndim(value) == 0 and hasattr(value, "item"):
        return value.item()  # a NumPy or JAX scalar, as the Python number it holds
    if default is None or isinstance(default, bool):
        return value
    if isinstance(default, int):
        fits, kind = isinstance(value, numbers.Integral), "a whole number"
    elif isinstance(default, float):
        fits, kind = checks.is_real_scalar(value), "a number"
    else:
        fits, kind = isinstance(value, str), "a string"
    if not fits or isinstance(value, bool):
        raise TypeError(
            f"option {name} of {family_name} must be {kind} (default {default!r}); got "
            f"{value!r} ({type(value).__name__}). On the command line: --option "
            f"{name}={value if _is_number_text(value) else default}."
        )
    return value if isinstance(default, str) else type(default)(value)


#: Passes over the training images when none are given (see ``Family.min_steps``).
DEFAULT_EPOCHS = 20


def _is_number_text(value) -> bool:
    """Whether ``value`` is a string that reads as a number (``"16"``)."""
    try:
        return isinstance(value, str) and math.isfinite(float(value))
    except ValueError:
        return False


def _config(model, data, seed, batch_size, dataset, patience, options) -> dict:
    """The settings a run is trained with, which its checkpoints record and a resume must
    repeat."""
    config = {
        "model": model,
        "data": data,
        "seed": seed,
        "batch_size": batch_size,
        "validation": dataset.validation_fraction,
        "patience": patience,
        "options": options,
    }
    if jax.config.jax_enable_x64:  # other random numbers: a resume must run in it too
        config["jax_enable_x64"] = True
    return config


def default_epochs(model: str, data: str = "digits", batch_size: int = 128) -> int:
    """The epochs :func:`train` runs when none are given: :data:`DEFAULT_EPOCHS`, or as many
    as make the family's ``min_steps`` optimiser steps of ``batch_size`` images."""
    num_train = datasets.load(data, 0.0).train.shape[0]
    return _default_epochs(registry.get(model), num_train, batch_size)


def _default_epochs(family, num_train: int, batch_size: int) -> int:
    per_epoch = max(1, num_train // batch_size)
    return max(DEFAULT_EPOCHS, -(-family.min_steps // per_epoch))


def train(
    model: str,
    data: str = "digits",
    *,
    epochs: int | None = None,
    batch_size: int = 128,
    seed: int = 0,
    out=None,
    checkpoint_every: int = 5,
    resume: bool = False,
    progress: bool = False,
    stop_after: int | None = None,
    validation: float = 0.0,
    patience: int | None = None,
    **options,
) -> TrainedModel:
    """Train a generative model.

    Args:
        model: a registered family's name (``registry.names()``).
        data: ``"digits"`` or ``"mnist"``.
        epochs: passes over the training split (full batches; the remainder is dropped);
            default :data:`DEFAULT_EPOCHS`, or as many as make the family's ``min_steps``
            (the GAN's 2,000: 182 epochs of the digits, 65 of the MNIST set;
            :func:`default_epochs` says how many).
        batch_size: images per step.
        seed: every random number of the run derives from it.
        out: folder for the checkpoints, ``metrics.json`` and pictures; ``None`` keeps
            everything in memory.
        checkpoint_every: save an Orbax checkpoint every this many epochs (and at the end).
        resume: continue from the latest checkpoint in ``out``, with the same settings.
        progress: show a progress bar with the current loss.
        stop_after: stop after this epoch as if interrupted (for tests of resuming).
        validation: the share of the training images held out as a validation split
            (stratified, fixed seed; 0 holds none out). With one, each epoch reports the
            validation loss and the returned model is the epoch with the lowest one.
        patience: with a validation split, stop after this many epochs without a new
            lowest validation loss (early stopping); ``None`` trains every epoch.
        **options: the family's options (``registry.get(model).defaults``).

    Returns:
        A :class:`~models.generative.loop.TrainedModel`.

    Raises:
        ValueError: for unknown models, data or options, bad sizes, or a checkpoint made
            with other settings.
    """
    family = registry.get(model)
    check_progress(progress)
    if out is not None and not isinstance(out, str | Path):
        raise TypeError(f"out must be a folder path (a str or Path) or None; got {out!r}.")
    dataset = datasets.load(data, validation)
    if dataset.validation is not None and not family.test_loss_ranks_models:
        raise ValueError(
            f"validation (--validation) keeps the epoch of the lowest held-out test loss, but "
            f"{family.name}'s test loss is its discriminator's, which falls when the generator "
            "gets worse: it cannot choose an epoch. Train a fixed number of epochs, and compare "
            "runs by their samples (infer evaluate's Fréchet distance)."
        )
    batch_size = checks.positive_int("batch_size", batch_size)
    if epochs is None:
        epochs = _default_epochs(family, dataset.train.shape[0], batch_size)
    epochs = checks.positive_int("epochs", epochs)
    checkpoint_every = checks.positive_int("checkpoint_every", checkpoint_every)
    seed = checks.seed("seed", seed)
    if patience is not None:
        patience = checks.positive_int("patience", patience)
        if dataset.validation is None:
            raise ValueError(
                "patience needs a validation split to watch; pass validation=<fraction of "
                "the training images>, e.g. validation=0.1 (--validation 0.1 on the command "
                "line)."
            )
    num_train = dataset.train.shape[0]
    if batch_size > num_train:
        raise ValueError(
            f"batch_size {batch_size} is larger than the {num_train} training images of "
            f"{data!r}; use at most {num_train}."
        )
    if resume and out is None:
        raise ValueError("resume=True needs out=, the folder whose checkpoint to continue.")
    if out is not None:
        _check_out(Path(out), resume)
    options = _check_options(family, options)
    config = _config(model, data, seed, batch_size, dataset, patience, options)
    try:
        return loop.fit(
            family,
            dataset,
            config,
            epochs=epochs,
            checkpoint_every=checkpoint_every,
            folder=None if out is None else Path(out),
            resume=resume,
            progress=progress,
            stop_after=stop_after,
            patience=patience,
        )
    except jax.errors.JaxRuntimeError as err:
        memory = _out_of_memory(err, f"{model} on {data}, batch_size={batch_size}")
        if memory is None:
            raise
        raise memory from err


def _out_of_memory(err, what: str) -> MemoryError | None:
    """XLA's out-of-memory error as a ``MemoryError`` that says what to make smaller; None
    for another error."""
    text = str(err)
    if "out of memory" not in text.lower() and "RESOURCE_EXHAUSTED" not in text:
        return None
    asked = re.search(r"allocating (\d+) bytes", text)
    size = f" (one buffer of {int(asked.group(1)) / 2**30:.1f} GiB)" if asked else ""
    return MemoryError(
        f"training {what} ran out of memory{size}: use a smaller batch_size or smaller "
        "options (train_samples, the hidden sizes)."
    )


def _check_out(folder: Path, resume: bool) -> None:
    """``folder`` can take this run: a folder (or nothing yet), and without ``resume`` not one
    that holds another run's checkpoints, which a new run would mix with its own."""
    if folder.exists() and not folder.is_dir():
        raise ValueError(f"out={str(folder)!r} is a file; pass a folder for the run's output.")
    above = file_above(folder)
    if above is not None:
        raise ValueError(f"out={str(folder)!r} lies under {str(above)!r}, which is a file.")
    saved = folder / "checkpoints"
    if saved.exists() and not saved.is_dir():
        raise ValueError(
            f"{str(saved)!r} is a file, where the run keeps its checkpoints (a folder): move "
            "it away, or pass another folder (--out)."
        )
    if resume and not holds_checkpoints(folder):
        raise ValueError(
            f"resume=True (--resume) but out={str(folder)!r} holds no checkpoint to continue: "
            "train without resume, or pass the folder of the run to continue."
        )
    if not resume and holds_checkpoints(folder):
        raise ValueError(
            f"out={str(folder)!r} already holds a trained model's checkpoints: pass "
            "resume=True (--resume) to continue that run, another folder (--out), or delete it "
            "to train afresh."
        )


def holds_checkpoints(folder: Path) -> bool:
    """Whether ``folder`` holds a training run's finished checkpoints: Orbax's step folders,
    named by their epoch (a save killed midway leaves a ``*.orbax-checkpoint-tmp`` folder,
    which is not one, and other files are not either)."""
    saved = folder / "checkpoints"
    return saved.is_dir() and any(c.is_dir() and c.name.isdigit() for c in saved.iterdir())


def load(folder) -> TrainedModel:
    """A trained model from its output folder (the latest checkpoint): the model training
    returned (with a validation split, the epoch of the lowest validation loss)."""
    if not isinstance(folder, str | os.PathLike):
        raise TypeError(
            f"folder must be the path of a training run's folder (a str or Path); got "
            f"{type(folder).__name__}."
        )
    folder = Path(folder)
    if not folder.exists():
        raise ValueError(
            f"{folder} does not exist: pass the folder a training run wrote (infer train "
            "--out, or infer-output/train/<model>-<data> by default; --run on the command line)."
        )
    if not folder.is_dir():
        raise ValueError(
            f"{folder} is a file: pass the folder a training run wrote (the folder holding "
            "metrics.json and checkpoints/)."
        )
    if not holds_checkpoints(folder):
        if holds_checkpoints(folder.parent):  # the run's checkpoints/ folder, one too deep
            raise ValueError(
                f"{folder} is inside a run's folder: pass the run's folder, {folder.parent} "
                "(the one holding metrics.json and checkpoints/)."
            )
        raise ValueError(f"{folder} holds no checkpoint: train a model there first.")
    manager = checkpoints.manager(folder)
    config = checkpoints.saved_config(manager)
    if config is None:
        raise ValueError(f"{folder} holds no checkpoint: train a model there first.")
    family = registry.get(config["model"])
    dataset = datasets.load(config["data"], config.get("validation", 0.0))
    module, optimizers = loop.build(family, dataset, config["options"], config["seed"])
    graphdef, state = nnx.split((module, optimizers))
    best = None if dataset.validation is None else loop.copy_state(state)
    state, best, metrics, _ = checkpoints.restore(manager, state, best, config)
    module, _ = nnx.merge(graphdef, state if best is None else best)
    return TrainedModel(module, metrics, config, folder)


def per_image(total: float, num_images: int) -> float:
    return total / max(num_images, 1)


def nats_to_bits_per_dim(nats: float, num_pixels: int) -> float:
    return nats / (num_pixels * math.log(2.0))
