"""Variational autoencoder (Kingma & Welling 2014) and its importance-weighted bound (Burda,
Grosse & Salakhutdinov 2016).

Encoder ``q(z | x) = N(mean(x), diag(std(x)^2))``, prior ``p(z) = N(0, I)``, decoder
``p(x | z)`` Bernoulli per pixel (binarised images) or Binomial(n, p) per pixel (raw counts,
e.g. digits with n = 16). Everything is in nats per image.

* ELBO: ``E_q[log p(x | z)] - KL(q(z | x) || p(z))``, one reparameterised sample for the
  reconstruction term and the KL in closed form.
* IWAE-K: ``E[log (1/K) sum_k p(x, z_k) / q(z_k | x)]`` with ``z_k ~ q``: a lower bound of
  ``log p(x)`` that tightens as K grows; ``num_samples=K`` trains on it.

The pure-function boundary: :func:`bound_fn` and :func:`decoder_logdensity_fn` take the
parameter pytree (``nnx.split(model)``) and data, so samplers and evaluators can use them.
"""

from __future__ import annotations

import math
from collections.abc import Callable

import jax
import jax.numpy as jnp
import optax
from flax import nnx

from infer import validation as checks
from models.generative.data import binarize, shift
from models.generative.family import (
    DecoderDensity,
    Family,
    ImportanceWeights,
    LatentDensity,
    Objective,
)
from models.generative.networks import (
    ImageToVector,
    VectorToImage,
    bernoulli_log_prob,
    binomial_log_prob,
    check_same_shape,
    check_variant,
    gaussian_log_prob,
    standard_normal_log_prob,
)

LIKELIHOODS = ("bernoulli", "binomial")


class VAE(nnx.Module):
    """A VAE over ``(batch, height, width)`` images.

    Args:
        image_shape: (height, width), each divisible by 4.
        latent_dim: size of ``z``.
        variant: ``"mlp"`` or ``"conv"`` encoder and decoder.
        likelihood: ``"bernoulli"`` (images in {0, 1}) or ``"binomial"`` (counts 0..n).
        total_count: ``n`` of the Binomial likelihood.
        rngs: parameter initialisation.
    """

    def __init__(
        self,
        image_shape: tuple[int, int],
        latent_dim: int = 32,
        variant: str = "mlp",
        likelihood: str = "bernoulli",
        total_count: int = 1,
        *,
        rngs: nnx.Rngs,
    ):
        check_variant(variant)
        if likelihood not in LIKELIHOODS:
            raise ValueError(
                f"likelihood must be one of {', '.join(LIKELIHOODS)}; got {likelihood!r}."
            )
        if not (isinstance(latent_dim, int) and latent_dim >= 1):
            raise ValueError(f"latent_dim must be a positive integer; got {latent_dim!r}.")
        self.image_shape = tuple(image_shape)
        self.latent_dim = latent_dim
        self.likelihood = likelihood
        self.total_count = int(total_count)
        self.encoder = ImageToVector(image_shape, 2 * latent_dim, variant, rngs=rngs)
        self.decoder = VectorToImage(latent_dim, image_shape, variant, rngs=rngs)

    def encode(self, x: jax.Array) -> tuple[jax.Array, jax.Array]:
        """``(mean, log_std)`` of q(z | x), each (batch, latent_dim)."""
        out = self.encoder(x / self.total_count)  # counts are seen as intensities
        mean, log_std = out[:, : self.latent_dim], out[:, self.latent_dim :]
        return mean, jnp.clip(log_std, -10.0, 5.0)

    def decode(self, z: jax.Array) -> jax.Array:
        """Logits of the pixel probabilities, (batch, height, width)."""
        return self.decoder(z)

    def log_likelihood(self, logits: jax.Array, x: jax.Array) -> jax.Array:
        """``log p(x | z)`` per image, (batch,)."""
        check_same_shape(logits, x)
        if self.likelihood == "bernoulli":
            return bernoulli_log_prob(logits, x)
        return binomial_log_prob(logits, x, self.total_count)

    def elbo(self, x: jax.Array, rng_key: jax.Array) -> jax.Array:
        """The evidence lower bound per image, (batch,), in nats."""
        mean, log_std = self.encode(x)
        z = mean + jnp.exp(log_std) * jax.random.normal(rng_key, mean.shape)
        kl = 0.5 * jnp.sum(mean**2 + jnp.exp(2 * log_std) - 1.0 - 2.0 * log_std, axis=-1)
        return self.log_likelihood(self.decode(z), x) - kl

    def iwae(self, x: jax.Array, rng_key: jax.Array, num_samples: int) -> jax.Array:
        """The importance-weighted bound with ``num_samples`` samples per image, (batch,)."""
        log_weights = self.log_weights(x, rng_key, num_samples)
        return jax.nn.logsumexp(log_weights, axis=0) - math.log(num_samples)

    def log_weights(self, x: jax.Array, rng_key: jax.Array, num_samples: int) -> jax.Array:
        """``log p(x, z_k) - log q(z_k | x)`` for ``z_k ~ q(z | x)``, (num_samples, batch)."""
        mean, log_std = self.encode(x)
        noise = jax.random.normal(rng_key, (num_samples, *mean.shape))
        z = mean[None] + jnp.exp(log_std)[None] * noise
        logits = jax.vmap(self.decode)(z)
        log_joint = jax.vmap(self.log_likelihood, in_axes=(0, None))(logits, x)
        log_joint = log_joint + standard_normal_log_prob(z)
        return log_joint - gaussian_log_prob(z, mean, log_std)

    def sample(self, rng_key: jax.Array, num: int) -> jax.Array:
        """Mean images of ``p(x | z)`` for ``z ~ p(z)``, (num, height, width) in [0, 1]."""
        z = jax.random.normal(rng_key, (num, self.latent_dim))
        return jax.nn.sigmoid(self.decode(z))

    def reconstruct(self, x: jax.Array) -> jax.Array:
        """Mean images of ``p(x | z)`` at the encoder mean, (batch, height, width)."""
        return jax.nn.sigmoid(self.decode(self.encode(x)[0]))


def bound_fn(graphdef: nnx.GraphDef) -> Callable:
    """``bound(params, x, rng_key, num_samples=1) -> (batch,)``: the ELBO (``num_samples=1``)
    or the IWAE bound, as a pure function of the parameter pytree ``params``
    (``graphdef, params = nnx.split(vae)``). ``num_samples`` sets shapes: a static argument
    under ``jax.jit`` (``static_argnames="num_samples"``)."""

    def bound(params, x, rng_key, num_samples: int = 1):
        model = nnx.merge(graphdef, params)
        return model.elbo(x, rng_key) if num_samples == 1 else model.iwae(x, rng_key, num_samples)

    return bound


def decoder_logdensity_fn(graphdef: nnx.GraphDef) -> Callable:
    """``logdensity(params, z, x) -> scalar``: ``log p(x | z) + log p(z)`` for one image ``x``
    (height, width) and one code ``z`` (latent_dim,): the unnormalised posterior over ``z``
    that annealed importance sampling targets."""

    def logdensity(params, z, x):
        model = nnx.merge(graphdef, params)
        logits = model.decode(z[None])
        return model.log_likelihood(logits, x[None])[0] + standard_normal_log_prob(z)

    return logdensity


DEFAULTS = {
    "variant": "mlp",
    "latent_dim": 32,
    "likelihood": "bernoulli",
    "train_samples": 1,
    "learning_rate": 1e-3,
    "weight_decay": 0.0,
    "shift": 0,
}


def model_arguments(dataset, options) -> tuple:
    """``(image_shape, latent_dim, variant, likelihood, total_count)`` from a family's
    options, for :class:`VAE` and the autoencoder inside the AAE."""
    total = dataset.max_count if options["likelihood"] == "binomial" else 1
    return (
        dataset.image_shape,
        int(options["latent_dim"]),
        options["variant"],
        options["likelihood"],
        total,
    )


def _build(dataset, options, rngs):
    check_shift(options, dataset)
    return VAE(*model_arguments(dataset, options), rngs=rngs)


def check_shift(options, dataset) -> int:
    """``options["shift"]`` (the augmentation of :func:`likelihood_inputs`), checked on the
    host before anything is traced: at most a quarter of the images' smaller side, beyond
    which moves take much of each digit out of the frame (on the 8x8 digits a shift of 8
    left 36% of the training images blank)."""
    shift = checks.positive_int(
        "option shift", options.get("shift", 0), "0 turns the augmentation off.", minimum=0
    )
    most = min(dataset.train.shape[1:]) // 4
    if shift > most:
        raise ValueError(
            f"option shift must be at most {most} pixels on {dataset.name}'s "
            f"{'x'.join(map(str, dataset.train.shape[1:]))} images (a quarter of their side), "
            f"beyond which moves push much of each image out of the frame; got {shift}."
        )
    return shift


def negative_bound(model, images, rng_key, options):
    """The training objective, per image: ``-ELBO``, or ``-IWAE`` with
    ``options["train_samples"]`` importance samples. The test and validation losses are
    measured the same way, so that their curves and the training one can be compared."""
    samples = checks.positive_int("train_samples", options["train_samples"])
    if samples == 1:
        return -jnp.mean(model.elbo(images, rng_key))
    return -jnp.mean(model.iwae(images, rng_key, samples))


def _objectives(options):
    def loss(model, batch, rng_key):
        return negative_bound(model, batch, rng_key, options)

    return [Objective("loss", nnx.Param, loss, adam(options))]


def loss_labels(options) -> dict:
    """The loss plot's legend: each series is the negative ELBO (or IWAE bound)."""
    samples = options["train_samples"]
    bound = "-ELBO" if samples == 1 else f"-IWAE bound, {samples} samples"
    return {
        "train_loss": f"train ({bound}, dynamic binarisation)"
        if options["likelihood"] == "bernoulli"
        else f"train ({bound})",
        "validation_loss": f"validation ({bound})",
        "test_loss": f"test ({bound})",
    }


def adam(options) -> optax.GradientTransformation:
    """Adam at ``options["learning_rate"]``, or AdamW (decoupled weight decay, Loshchilov &
    Hutter 2019) when ``options["weight_decay"]`` is positive."""
    rate = checks.positive_float("learning_rate", options["learning_rate"])
    decay = checks.nonnegative_float("weight_decay", options.get("weight_decay", 0.0))
    return optax.adamw(rate, weight_decay=decay) if decay > 0 else optax.adam(rate)


def likelihood_inputs(key, images, dataset, options):
    """Binarised images (fresh per batch) for a Bernoulli likelihood, raw counts for a
    Binomial one; first moved by up to ``options["shift"]`` pixels (:func:`shift`, data
    augmentation) when that is above 0."""
    max_shift = options.get("shift", 0)
    if max_shift:  # without it, the same random numbers as before the option existed
        key, key_shift = jax.random.split(key)
        images = shift(key_shift, images, max_shift)
    if options["likelihood"] == "bernoulli":
        return binarize(key, images)
    return jnp.rint(images * dataset.max_count)


def likelihood_test_data(dataset, options, split: str = "test"):
    """The fixed inputs of ``split`` (``"test"`` or ``"validation"``): static
    binarisation, or raw counts."""
    if options["likelihood"] == "bernoulli":
        return dataset.static_binary(split)
    return dataset.counts(split)


def latent_density(model: VAE, noise_std: None = None) -> LatentDensity:
    """The decoder and the ``N(0, I)`` prior as a :class:`LatentDensity` (the decoder has its
    own likelihood: ``noise_std`` is unused)."""
    graphdef, params = nnx.split(model)
    return LatentDensity(decoder_logdensity_fn(graphdef), params, model.latent_dim, None)


FAMILY = Family(
    name="vae",
    defaults=DEFAULTS,
    build=_build,
    objectives=_objectives,
    train_batch=likelihood_inputs,
    test_data=likelihood_test_data,
    test_loss=negative_bound,
    samples=lambda model, key, num: model.sample(key, num),
    samples_are="mean images of p(x | z), z from the prior",
    importance_weights=ImportanceWeights(
        log_weights=lambda model, x, key, num: model.log_weights(x, key, num),
        elbo=lambda model, x, key: model.elbo(x, key),
    ),
    decoder_density=DecoderDensity(
        latent_density,
        observation_noise=False,
        unit="nats per image",
    ),
    reconstructions=lambda model, x: model.reconstruct(x),
    loss_labels=loss_labels,
)
