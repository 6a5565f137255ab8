"""Generative adversarial network (Goodfellow et al. 2014), with the non-saturating generator
loss, in an MLP or a DCGAN-style convolutional variant (Radford et al. 2016).

The generator maps ``z ~ N(0, I)`` to grey-level images in [0, 1] (a sigmoid of its output);
the discriminator maps an image to the logit of "real". Two Optax optimisers (Adam with
beta1 = 0.5), one per network, are applied one after the other in each training step:
discriminator first on real images and fresh fakes, then generator, each at its own learning
rate when ``discriminator_learning_rate`` is given (two time-scale updates, Heusel et al.
2017; by default both use ``learning_rate``). Stabilisers (options):
instance noise and one-sided label smoothing (on by default), and the R1 gradient penalty
(Mescheder, Geiger, Nowozin 2018), ``r1_penalty / 2`` times the mean squared norm of the
discriminator's gradient at real images (off by default; the MNIST benchmark uses it).
"""

from __future__ import annotations

import functools
from collections.abc import Callable

import jax
import jax.numpy as jnp
import optax
from flax import nnx

from infer import validation as checks
from models.generative.family import DecoderDensity, Family, LatentDensity, Objective
from models.generative.networks import (
    ImageToVector,
    VectorToImage,
    check_same_shape,
    check_variant,
)


class GAN(nnx.Module):
    """Generator and discriminator for ``(batch, height, width)`` images."""

    def __init__(
        self, image_shape: tuple[int, int], latent_dim: int = 64, variant: str = "mlp", *, rngs
    ):
        check_variant(variant)
        if not (isinstance(latent_dim, int) and latent_dim >= 1):
            raise ValueError(f"latent_dim must be a positive integer; got {latent_dim!r}.")
        self.latent_dim = latent_dim
        self.generator = VectorToImage(latent_dim, image_shape, variant, rngs=rngs)
        self.discriminator = ImageToVector(image_shape, 1, variant, rngs=rngs)

    def generate(self, z: jax.Array) -> jax.Array:
        """Images in [0, 1] for codes ``z`` (batch, latent_dim)."""
        return jax.nn.sigmoid(self.generator(z))

    def sample(self, rng_key: jax.Array, num: int) -> jax.Array:
        return self.generate(jax.random.normal(rng_key, (num, self.latent_dim)))

    def discriminate(self, images: jax.Array) -> jax.Array:
        """Logit of "real", (batch,)."""
        return self.discriminator(images)[:, 0]


def _blurred(images: jax.Array, rng_key: jax.Array, noise: float) -> jax.Array:
    """Instance noise (Sønderby et al. 2017): Gaussian noise of std ``noise`` on what the
    discriminator sees, so that real images (many pixels exactly 0) and the generator's
    sigmoid outputs overlap and the discriminator cannot win by that alone."""
    if noise == 0.0:
        return images
    return images + noise * jax.random.normal(rng_key, images.shape, images.dtype)


def discriminator_loss(
    model: GAN,
    images: jax.Array,
    rng_key: jax.Array,
    noise: float = 0.0,
    real_label: float = 1.0,
    r1_penalty: float = 0.0,
) -> jax.Array:
    """Binary cross-entropy of real images against fresh fakes (generator held fixed);
    ``real_label`` < 1 is one-sided label smoothing (Salimans et al. 2016); ``r1_penalty``
    > 0 adds :func:`r1_term`."""
    key_fake, key_real, key_blur = jax.random.split(rng_key, 3)
    fake = jax.lax.stop_gradient(model.sample(key_fake, images.shape[0]))
    real_logits = model.discriminate(_blurred(images, key_real, noise))
    fake_logits = model.discriminate(_blurred(fake, key_blur, noise))
    real_term = real_label * jax.nn.softplus(-real_logits) + (1.0 - real_label) * jax.nn.softplus(
        real_logits
    )
    loss = jnp.mean(real_term) + jnp.mean(jax.nn.softplus(fake_logits))
    return loss + r1_term(model, images, r1_penalty) if r1_penalty else loss


def r1_term(model: GAN, images: jax.Array, weight: float) -> jax.Array:
    """``weight / 2 * mean_i |grad_x D(x_i)|^2`` over real images ``x_i`` (batch, h, w):
    the R1 penalty, which pulls the discriminator's gradient to zero on the data, where a
    balanced game has it (Mescheder et al. 2018). Each logit depends on its own image only,
    so one gradient of their sum gives every image's gradient."""
    grads = jax.grad(lambda x: jnp.sum(model.discriminate(x)))(images)
    return 0.5 * weight * jnp.mean(jnp.sum(grads**2, axis=(1, 2)))


def generator_loss(
    model: GAN, images: jax.Array, rng_key: jax.Array, noise: float = 0.0
) -> jax.Array:
    """Non-saturating: ``-log D(G(z))``."""
    key_fake, key_blur = jax.random.split(rng_key)
    fake = _blurred(model.sample(key_fake, images.shape[0]), key_blur, noise)
    return jnp.mean(jax.nn.softplus(-model.discriminate(fake)))


def generator_logdensity_fn(graphdef: nnx.GraphDef, noise_std: float) -> Callable:
    """``logdensity(params, z, x) -> scalar``: ``log N(x; G(z), noise_std^2 I) + log N(z; 0,
    I)`` for one image ``x``: a GAN generator read as a latent-variable model with a Gaussian
    observation model (Wu et al. 2017), for annealed importance sampling."""
    import math

    import numpy as np

    real = np.ndim(noise_std) == 0 and np.asarray(noise_std).dtype.kind in "iuf"
    if not real or not 0 < float(noise_std) < math.inf:
        raise ValueError(
            f"noise_std must be a positive finite number (the observation noise's standard "
            f"deviation); got {noise_std!r}."
        )
    noise_std = float(noise_std)  # a JAX or NumPy scalar too

    def logdensity(params, z, x):
        model = nnx.merge(graphdef, params)
        mean = model.generate(z[None])[0]
        check_same_shape(mean, x)
        residual = (x - mean) / noise_std
        log_obs = -0.5 * jnp.sum(residual**2) - x.size * (
            math.log(noise_std) + 0.5 * math.log(2 * math.pi)
        )
        return log_obs - 0.5 * jnp.sum(z**2) - 0.5 * z.size * math.log(2 * math.pi)

    return logdensity


def latent_density(model: GAN, noise_std: float) -> LatentDensity:
    """The generator with Gaussian observation noise of std ``noise_std`` and the ``N(0, I)``
    prior, as a :class:`LatentDensity`."""
    graphdef, params = nnx.split(model)
    return LatentDensity(
        generator_logdensity_fn(graphdef, noise_std), params, model.latent_dim, None
    )


DEFAULTS = {
    "variant": "mlp",
    "latent_dim": 64,
    "learning_rate": 2e-4,
    "instance_noise": 0.1,
    "real_label": 0.9,
    "r1_penalty": 0.0,
    "discriminator_learning_rate": None,
}

_GENERATOR = nnx.All(nnx.Param, nnx.PathContains("generator"))
_DISCRIMINATOR = nnx.All(nnx.Param, nnx.PathContains("discriminator"))


def _objectives(options):
    rate = checks.positive_float("learning_rate", options["learning_rate"])
    d_rate = checks.positive_float(
        "discriminator_learning_rate",
        options["discriminator_learning_rate"],
        "Leave it None for the generator's learning_rate.",
        allow_none=True,
    )
    d_rate = rate if d_rate is None else d_rate
    noise, real_label = float(options["instance_noise"]), float(options["real_label"])
    r1_penalty = float(options["r1_penalty"])
    finite = noise < float("inf") and r1_penalty < float("inf")
    if not (finite and noise >= 0.0 and 0.5 < real_label <= 1.0 and r1_penalty >= 0.0):
        raise ValueError(
            "GAN options need a finite instance_noise >= 0, 0.5 < real_label <= 1 and a finite "
            f"r1_penalty >= 0; got instance_noise={noise!r}, real_label={real_label!r}, "
            f"r1_penalty={r1_penalty!r}."
        )
    d_loss = functools.partial(
        discriminator_loss, noise=noise, real_label=real_label, r1_penalty=r1_penalty
    )
    g_loss = functools.partial(generator_loss, noise=noise)
    return [
        Objective("discriminator", _DISCRIMINATOR, d_loss, optax.adam(d_rate, b1=0.5)),
        Objective("generator", _GENERATOR, g_loss, optax.adam(rate, b1=0.5)),
    ]


FAMILY = Family(
    name="gan",
    defaults=DEFAULTS,
    build=lambda dataset, options, rngs: GAN(
        dataset.image_shape, int(options["latent_dim"]), options["variant"], rngs=rngs
    ),
    objectives=_objectives,
    train_batch=lambda key, images, dataset, options: images,
    test_data=lambda dataset, options, split="test": dataset.images(split),
    # The discriminator's loss on test images against fresh fakes: near 2 log 2 = 1.39 when
    # the discriminator cannot tell them apart.
    test_loss=lambda model, images, key, options: discriminator_loss(model, images, key),
    test_loss_ranks_models=False,
    # 20 epochs of the digits (220 steps) left one blob for every sample (Fréchet distance
    # 117-170, 1-2 classes); 2,000 steps make digits (18.6, 8 of 10 classes)
    min_steps=2000,
    loss_labels=lambda options: {
        "train_discriminator": "train: discriminator (its noise, labels, penalty)",
        "train_generator": "train: generator",
        "test_loss": "test: discriminator, real test images (label 1) against fresh fakes",
    },
    samples=lambda model, key, num: model.sample(key, num),
    decoder_density=DecoderDensity(
        latent_density,
        observation_noise=True,
        unit="nats per image (a density over grey levels in [0, 1])",
    ),
)
