"""The training images' shift augmentation (``models.generative.data.shift``, the ``shift``
option of the VAE and AAE): each image moved by whole pixels with zeros shifted in, every
offset in range equally often."""

from __future__ import annotations

import itertools

import jax
import numpy as np
import pytest
from scipy import stats

from models.generative.data import shift


def translated(image: np.ndarray, dy: int, dx: int) -> np.ndarray:
    """``image`` moved down by ``dy`` and right by ``dx`` pixels, zeros shifted in."""
    height, width = image.shape
    out = np.zeros_like(image)
    out[max(dy, 0) : height + min(dy, 0), max(dx, 0) : width + min(dx, 0)] = image[
        max(-dy, 0) : height + min(-dy, 0), max(-dx, 0) : width + min(-dx, 0)
    ]
    return out


def offsets_of(images: np.ndarray, moved: np.ndarray, max_shift: int) -> list[tuple[int, int]]:
    """The offset that turns each image into its moved copy (the images are random, so it
    is unique); fails when no offset in range does."""
    found = []
    candidates = list(itertools.product(range(-max_shift, max_shift + 1), repeat=2))
    for image, out in zip(images, moved, strict=True):
        hits = [c for c in candidates if np.array_equal(translated(image, *c), out)]
        assert len(hits) == 1, f"not a translation by at most {max_shift} pixels"
        found.append(hits[0])
    return found


def test_each_image_is_translated_and_every_offset_is_equally_likely():
    max_shift, num = 2, 5_000
    images = np.random.default_rng(0).uniform(size=(num, 6, 7)).astype(np.float32)
    moved = np.asarray(shift(jax.random.key(1), images, max_shift))
    assert moved.shape == images.shape and moved.dtype == images.dtype
    found = offsets_of(images, moved, max_shift)
    counts = np.zeros((2 * max_shift + 1,) * 2)
    for dy, dx in found:
        counts[dy + max_shift, dx + max_shift] += 1
    # 25 offsets of 200 expected each: a sampler missing one offset has chi-square ~ 200
    assert stats.chisquare(counts.ravel()).pvalue > 1e-3, counts


def test_a_different_key_moves_the_images_differently_and_zero_moves_nothing():
    images = np.random.default_rng(2).uniform(size=(64, 5, 5)).astype(np.float32)
    first = np.asarray(shift(jax.random.key(0), images, 1))
    second = np.asarray(shift(jax.random.key(1), images, 1))
    assert not np.array_equal(first, second)
    assert shift(jax.random.key(0), images, 0) is images


@pytest.mark.parametrize("max_shift", [0, 1])
def test_the_training_batches_of_the_vae_and_aae_are_shifted_by_the_option(max_shift):
    """``likelihood_inputs`` (the VAE's and the AAE's ``train_batch``) moves each image by at
    most the option: for the Binomial likelihood, whose counts are not random, every output
    is a translation of its input's counts, and with shift 1 some are moved. The images are
    random (each translation then unique), on the digits data set's counts scale."""
    from models.generative import data, vae

    dataset = data.load("digits")
    images = np.random.default_rng(3).uniform(size=(200, *dataset.image_shape)).astype(np.float32)
    options = {**vae.DEFAULTS, "likelihood": "binomial", "shift": max_shift}
    counts = np.asarray(vae.likelihood_inputs(jax.random.key(0), images, dataset, options))
    found = offsets_of(np.rint(images * dataset.max_count), counts, max_shift)
    assert any(offset != (0, 0) for offset in found) == (max_shift > 0)


@pytest.mark.thorough  # a training option's run, 5 s; the shifts themselves are checked above
def test_a_vae_trains_on_shifted_images_and_keeps_the_option():
    from models.generative import training

    trained = training.train("vae", "digits", epochs=2, latent_dim=4, shift=1)
    assert trained.config["options"]["shift"] == 1
    assert np.all(np.isfinite(trained.metrics["test_loss"]))
