"""Network pieces the generative models share (Flax NNX): images to vectors and back, in an
MLP or a convolutional variant chosen by one option.

Images are ``(batch, height, width)`` with height and width divisible by 4 (8x8 digits,
28x28 MNIST): the convolutional variant halves them twice with stride-2 convolutions and
doubles them back with stride-2 transposed convolutions.
"""

from __future__ import annotations

import math

import jax
import jax.numpy as jnp
from flax import nnx

VARIANTS = ("mlp", "conv")


def check_variant(variant: str) -> str:
    if variant not in VARIANTS:
        raise ValueError(f"variant must be one of {', '.join(VARIANTS)}; got {variant!r}.")
    return variant


class MLP(nnx.Module):
    """Dense layers with GELU between them: ``(batch, in) -> (batch, out)``."""

    def __init__(self, sizes: tuple[int, ...], *, rngs: nnx.Rngs):
        self.layers = nnx.List(
            [nnx.Linear(a, b, rngs=rngs) for a, b in zip(sizes[:-1], sizes[1:], strict=True)]
        )

    def __call__(self, x: jax.Array) -> jax.Array:
        for layer in self.layers[:-1]:
            x = nnx.gelu(layer(x))
        return self.layers[-1](x)


class ImageToVector(nnx.Module):
    """``(batch, height, width) -> (batch, out_features)``.

    ``"mlp"``: flatten, then dense layers of ``hidden`` units. ``"conv"``: two stride-2 3x3
    convolutions (``channels`` maps), then a dense layer.
    """

    def __init__(
        self,
        image_shape: tuple[int, int],
        out_features: int,
        variant: str = "mlp",
        hidden: tuple[int, ...] = (512, 256),
        channels: tuple[int, int] = (32, 64),
        *,
        rngs: nnx.Rngs,
    ):
        self.variant = check_variant(variant)
        height, width = image_shape
        if variant == "mlp":
            self.net = MLP((height * width, *hidden, out_features), rngs=rngs)
        else:
            self.conv1 = nnx.Conv(1, channels[0], (3, 3), strides=2, rngs=rngs)
            self.conv2 = nnx.Conv(channels[0], channels[1], (3, 3), strides=2, rngs=rngs)
            flat = (height // 4) * (width // 4) * channels[1]
            self.out = nnx.Linear(flat, out_features, rngs=rngs)

    def __call__(self, images: jax.Array) -> jax.Array:
        batch = images.shape[0]
        if self.variant == "mlp":
            return self.net(images.reshape(batch, -1))
        h = nnx.gelu(self.conv1(images[..., None]))
        h = nnx.gelu(self.conv2(h))
        return self.out(h.reshape(batch, -1))


class VectorToImage(nnx.Module):
    """``(batch, in_features) -> (batch, height, width)`` (unbounded outputs: logits).

    ``"mlp"``: dense layers of ``hidden`` units. ``"conv"``: a dense layer to a quarter-size
    map, then two stride-2 3x3 transposed convolutions.
    """

    def __init__(
        self,
        in_features: int,
        image_shape: tuple[int, int],
        variant: str = "mlp",
        hidden: tuple[int, ...] = (256, 512),
        channels: tuple[int, int] = (64, 32),
        *,
        rngs: nnx.Rngs,
    ):
        self.variant = check_variant(variant)
        self.image_shape = tuple(image_shape)
        height, width = image_shape
        if variant == "mlp":
            self.net = MLP((in_features, *hidden, height * width), rngs=rngs)
        else:
            self.channels = channels
            self.dense = nnx.Linear(
                in_features, (height // 4) * (width // 4) * channels[0], rngs=rngs
            )
            self.up1 = nnx.ConvTranspose(
                channels[0], channels[1], (3, 3), strides=(2, 2), rngs=rngs
            )
            self.up2 = nnx.ConvTranspose(channels[1], 1, (3, 3), strides=(2, 2), rngs=rngs)

    def __call__(self, vectors: jax.Array) -> jax.Array:
        batch = vectors.shape[0]
        height, width = self.image_shape
        if self.variant == "mlp":
            return self.net(vectors).reshape(batch, height, width)
        h = nnx.gelu(self.dense(vectors)).reshape(batch, height // 4, width // 4, self.channels[0])
        h = nnx.gelu(self.up1(h))
        return self.up2(h).reshape(batch, height, width)


def lead(array: jax.Array, ndim: int) -> jax.Array:
    """``array`` with leading axes of size 1 added up to ``ndim`` dimensions: broadcasting
    made explicit (the tests run with implicit rank promotion turned into an error)."""
    return jnp.reshape(array, (1,) * (ndim - array.ndim) + array.shape)


def gaussian_log_prob(x: jax.Array, mean: jax.Array, log_std: jax.Array) -> jax.Array:
    """Sum over the last axis of diagonal-Gaussian log densities; ``mean`` and ``log_std``
    broadcast against ``x`` from the right."""
    ndim = max(x.ndim, mean.ndim, log_std.ndim)
    x, mean, log_std = lead(x, ndim), lead(mean, ndim), lead(log_std, ndim)
    z = (x - mean) * jnp.exp(-log_std)
    return jnp.sum(-0.5 * z**2 - log_std - 0.5 * math.log(2 * math.pi), axis=-1)


def standard_normal_log_prob(z: jax.Array) -> jax.Array:
    """Sum over the last axis of N(0, 1) log densities."""
    return jnp.sum(-0.5 * z**2 - 0.5 * math.log(2 * math.pi), axis=-1)


def check_same_shape(predicted: jax.Array, x: jax.Array) -> None:
    """Refuse (at trace time) images ``x`` shaped otherwise than what the decoder or
    generator ``predicted`` for them: they broadcast, and were scored as some other image."""
    if predicted.shape != x.shape:
        raise ValueError(
            f"the images must be shaped as the model's output, {predicted.shape[-2:]} each "
            f"(height, width); got images shaped {x.shape[-2:]}. Pass images of the data "
            "the model was trained on."
        )


def bernoulli_log_prob(logits: jax.Array, x: jax.Array) -> jax.Array:
    """Sum over the pixels (last two axes) of Bernoulli log-likelihoods, from logits."""
    log_p = x * jax.nn.log_sigmoid(logits) + (1.0 - x) * jax.nn.log_sigmoid(-logits)
    return jnp.sum(log_p, axis=(-2, -1))


def binomial_log_prob(logits: jax.Array, counts: jax.Array, total: int) -> jax.Array:
    """Sum over the pixels of Binomial(total, sigmoid(logits)) log-likelihoods of ``counts``
    (the exact likelihood of digit pixel counts 0..16)."""
    log_choose = (
        jax.scipy.special.gammaln(total + 1.0)
        - jax.scipy.special.gammaln(counts + 1.0)
        - jax.scipy.special.gammaln(total - counts + 1.0)
    )
    log_p = (
        log_choose
        + counts * jax.nn.log_sigmoid(logits)
        + (total - counts) * jax.nn.log_sigmoid(-logits)
    )
    return jnp.sum(log_p, axis=(-2, -1))
