"""Scores of a generative model's samples: the Fréchet distance in the features of a small
classifier trained on the data set (no feature network can be downloaded here), next to the
same distance between real images at the same count, and how evenly the samples cover the
digit classes.
"""

from __future__ import annotations

from typing import NamedTuple

import jax
import jax.numpy as jnp
import numpy as np
import optax
import scipy.linalg
from flax import nnx

from infer.progress import progress_bar
from models.generative import data as datasets
from models.generative.networks import MLP


class Classifier(nnx.Module):
    """A small MLP digit classifier; ``features`` is its last hidden layer (128 units)."""

    def __init__(self, num_pixels: int, *, rngs: nnx.Rngs):
        self.body = MLP((num_pixels, 256, 128), rngs=rngs)
        self.head = nnx.Linear(128, 10, rngs=rngs)

    def features(self, images: jax.Array) -> jax.Array:
        return nnx.gelu(self.body(images.reshape(images.shape[0], -1)))

    def __call__(self, images: jax.Array) -> jax.Array:
        return self.head(self.features(images))


class TrainedClassifier(NamedTuple):
    classifier: Classifier
    test_accuracy: float


_CLASSIFIERS: dict = {}  # (data_name, epochs, seed) -> TrainedClassifier


def classifier_for(
    data_name: str, epochs: int = 30, seed: int = 0, progress=False
) -> TrainedClassifier:
    """A classifier trained on ``data_name``'s training split (grey levels, with dynamic
    binarisation mixed in so binary samples look familiar too). Cached per data set, epochs
    and seed; ``progress``: a bar over the epochs when it trains."""
    key = (data_name, epochs, seed)
    if key not in _CLASSIFIERS:
        _CLASSIFIERS[key] = _train_classifier(data_name, epochs, seed, progress)
    return _CLASSIFIERS[key]


def _train_classifier(data_name: str, epochs: int, seed: int, progress) -> TrainedClassifier:
    dataset = datasets.load(data_name)
    model = Classifier(dataset.num_pixels, rngs=nnx.Rngs(seed))
    optimizer = nnx.Optimizer(model, optax.adam(1e-3), wrt=nnx.Param)
    graphdef, state = nnx.split((model, optimizer))
    images, labels = jnp.asarray(dataset.train), jnp.asarray(dataset.train_labels)

    @jax.jit
    def step(state, indices, key):
        model, optimizer = nnx.merge(graphdef, state)
        x = images[indices]
        binary = (jax.random.uniform(key, x.shape) < x).astype(x.dtype)
        x = jnp.where(jax.random.bernoulli(key, 0.5, (x.shape[0], 1, 1)), binary, x)

        def loss(model):
            return optax.softmax_cross_entropy_with_integer_labels(model(x), labels[indices]).mean()

        grads = nnx.grad(loss)(model)
        optimizer.update(model, grads)
        return nnx.state((model, optimizer))

    rng = np.random.default_rng(seed)
    with progress_bar(progress, epochs, "feature classifier", unit="epoch") as bar:
        for epoch in range(epochs):
            order = rng.permutation(images.shape[0])
            for b in range(0, len(order) - 63, 64):
                batch = jnp.asarray(order[b : b + 64])
                state = step(state, batch, jax.random.key(epoch * 1000 + b))
            bar.update(1)
    model, _ = nnx.merge(graphdef, state)
    predictions = np.asarray(jnp.argmax(model(jnp.asarray(dataset.test)), axis=-1))
    accuracy = float(np.mean(predictions == dataset.test_labels))
    return TrainedClassifier(model, accuracy)


def frechet_distance(features_a: np.ndarray, features_b: np.ndarray) -> float:
    """``|mu_a - mu_b|^2 + tr(S_a + S_b - 2 (S_a S_b)^(1/2))`` between Gaussian fits."""
    a, b = np.asarray(features_a, np.float64), np.asarray(features_b, np.float64)
    mean_a, mean_b = a.mean(axis=0), b.mean(axis=0)
    cov_a, cov_b = np.cov(a, rowvar=False), np.cov(b, rowvar=False)
    root = scipy.linalg.sqrtm(cov_a @ cov_b)
    root = root.real if np.iscomplexobj(root) else root
    return float(np.sum((mean_a - mean_b) ** 2) + np.trace(cov_a + cov_b - 2.0 * root))


class SampleScores(NamedTuple):
    """Scores of ``num`` samples against the test split.

    Attributes:
        frechet_distance: in the classifier's feature space (0 for identical distributions).
        frechet_distance_test_vs_train: the same distance between as many real training
            images as there are samples (all of them when there are fewer; a fixed choice)
            and the test images: the floor for comparison at that count (the estimate grows
            as the count falls).
        classes_covered: digit classes receiving at least ``min_share`` of the samples (by
            default 5%, half the uniform share: a class a model draws less often than that
            it has mostly lost).
        smallest_class_share: the share of the least drawn class.
        class_shares: (10,) fraction of samples classified as each digit.
        classifier_test_accuracy: how much to trust the classifier.
    """

    frechet_distance: float
    frechet_distance_test_vs_train: float
    classes_covered: int
    smallest_class_share: float
    class_shares: list
    classifier_test_accuracy: float


#: A class counts as covered with at least this share of the samples: half the uniform 10%.
MIN_CLASS_SHARE = 0.05


def score_samples(
    samples: np.ndarray, data_name: str, min_share: float = MIN_CLASS_SHARE, progress=False
) -> SampleScores:
    """Fréchet distance and class coverage of ``samples`` (num, h, w) in [0, 1]; ``progress``:
    a bar while the feature classifier trains (once per data set)."""
    dataset = datasets.load(data_name)
    samples = datasets.check_images(samples, "samples")
    if samples.shape[1:] != dataset.test.shape[1:]:
        raise ValueError(
            f"samples are {samples.shape[1]}x{samples.shape[2]} images, but {data_name}'s are "
            f"{dataset.test.shape[1]}x{dataset.test.shape[2]}: score samples of the data set "
            "the model was trained on."
        )
    if samples.shape[0] < 2:
        raise ValueError(
            f"samples holds {samples.shape[0]} image; the Fréchet distance needs two at least "
            "(a few hundred for a stable figure)."
        )
    trained = classifier_for(data_name, progress=progress)
    features = jax.jit(trained.classifier.features)
    fake = np.asarray(features(jnp.asarray(samples)))
    real_test = np.asarray(features(jnp.asarray(dataset.test)))
    # The floor from as many real images as there are samples: the distance's estimate grows
    # as the count falls (2 images ~190, 50 ~9, 1,000 ~0.9 on digits), so a floor from all the
    # training images would make a few perfect samples look far worse than it.
    count = min(samples.shape[0], dataset.train.shape[0])
    chosen = np.random.default_rng(0).permutation(dataset.train.shape[0])[:count]
    real_train = np.asarray(features(jnp.asarray(dataset.train[np.sort(chosen)])))
    predicted = np.asarray(jnp.argmax(trained.classifier(jnp.asarray(samples)), axis=-1))
    shares = np.bincount(predicted, minlength=10) / predicted.size
    return SampleScores(
        frechet_distance=frechet_distance(fake, real_test),
        frechet_distance_test_vs_train=frechet_distance(real_train, real_test),
        classes_covered=int(np.sum(shares >= min_share)),
        smallest_class_share=float(shares.min()),
        class_shares=shares.round(4).tolist(),
        classifier_test_accuracy=trained.test_accuracy,
    )
