"""Adversarial autoencoder (Makhzani et al. 2016).

A Gaussian encoder ``q(z | x)`` and a decoder ``p(x | z)`` are trained to reconstruct, while a
critic on the codes tells prior draws from encoded data; the encoder is trained to fool it,
which matches the aggregated code distribution to the prior without a KL term. The prior is
anything that can be sampled and scored: by default a mixture of ten Gaussians on a circle in
the first two latent dimensions.

Because the encoder is a proper density and the prior can be scored, the ELBO and the IWAE
bound of ``log p(x)`` are available as for a VAE (with a Monte Carlo KL).
"""

from __future__ import annotations

import math

import jax
import jax.numpy as jnp
import numpy as np
import optax
from flax import nnx

from infer import validation as checks
from models.generative.family import (
    DecoderDensity,
    Family,
    ImportanceWeights,
    LatentDensity,
    Objective,
)
from models.generative.networks import MLP, check_variant, gaussian_log_prob
from models.generative.vae import (
    VAE,
    check_shift,
    likelihood_inputs,
    likelihood_test_data,
    model_arguments,
)


class GaussianMixturePrior(nnx.Module):
    """A mixture of diagonal Gaussians with fixed (non-trained) parameters.

    The default: ``num_components`` equal-weight components whose means lie on a circle of
    ``radius`` in the first two dimensions (zero elsewhere), standard deviation ``spread``
    there and 1 in the other dimensions.
    """

    def __init__(
        self, latent_dim: int, num_components: int = 10, radius: float = 4.0, spread: float = 0.5
    ):
        angles = 2 * np.pi * np.arange(num_components) / num_components
        means = np.zeros((num_components, latent_dim), np.float32)
        means[:, 0], means[:, 1 % latent_dim] = radius * np.cos(angles), radius * np.sin(angles)
        stds = np.ones((num_components, latent_dim), np.float32)
        stds[:, : min(2, latent_dim)] = spread
        self.means = nnx.Variable(jnp.asarray(means))
        self.log_stds = nnx.Variable(jnp.log(jnp.asarray(stds)))

    def sample(self, rng_key: jax.Array, num: int) -> jax.Array:
        key_component, key_noise = jax.random.split(rng_key)
        k = self.means.shape[0]
        component = jax.random.randint(key_component, (num,), 0, k)
        noise = jax.random.normal(key_noise, (num, self.means.shape[1]))
        return self.means[...][component] + jnp.exp(self.log_stds[...][component]) * noise

    def log_prob(self, z: jax.Array) -> jax.Array:
        """(..., latent_dim) -> (...)."""
        per_component = gaussian_log_prob(z[..., None, :], self.means[...], self.log_stds[...])
        return jax.nn.logsumexp(per_component, axis=-1) - math.log(self.means.shape[0])


class AAE(nnx.Module):
    """Adversarial autoencoder over ``(batch, height, width)`` images."""

    def __init__(
        self,
        image_shape: tuple[int, int],
        latent_dim: int = 8,
        variant: str = "mlp",
        likelihood: str = "bernoulli",
        total_count: int = 1,
        prior=None,
        *,
        rngs: nnx.Rngs,
    ):
        check_variant(variant)
        if not (isinstance(latent_dim, int) and latent_dim >= 2):
            raise ValueError(f"latent_dim must be an integer >= 2; got {latent_dim!r}.")
        # The encoder, decoder and likelihood are a VAE's; only the regulariser differs.
        self.autoencoder = VAE(image_shape, latent_dim, variant, likelihood, total_count, rngs=rngs)
        self.critic = MLP((latent_dim, 256, 256, 1), rngs=rngs)
        self.prior = prior if prior is not None else GaussianMixturePrior(latent_dim)
        self.latent_dim = latent_dim
        # what its images are, as a VAE declares them (checked by the evaluation functions)
        self.image_shape = self.autoencoder.image_shape
        self.likelihood, self.total_count = likelihood, self.autoencoder.total_count

    def encode(self, x):
        return self.autoencoder.encode(x)

    def code(self, x: jax.Array, rng_key: jax.Array) -> jax.Array:
        """``z ~ q(z | x)``, (batch, latent_dim)."""
        return _sample_code(*self.encode(x), rng_key)

    def log_weights(self, x: jax.Array, rng_key: jax.Array, num_samples: int) -> jax.Array:
        """``log p(x | z_k) + log p(z_k) - log q(z_k | x)``, (num_samples, batch)."""
        mean, log_std = self.encode(x)
        noise = jax.random.normal(rng_key, (num_samples, *mean.shape))
        z = mean[None] + jnp.exp(log_std)[None] * noise
        logits = jax.vmap(self.autoencoder.decode)(z)
        log_lik = jax.vmap(self.autoencoder.log_likelihood, in_axes=(0, None))(logits, x)
        return log_lik + self.prior.log_prob(z) - gaussian_log_prob(z, mean, log_std)

    def elbo(self, x: jax.Array, rng_key: jax.Array) -> jax.Array:
        """One-sample ELBO per image (the KL to the mixture prior has no closed form)."""
        return self.log_weights(x, rng_key, 1)[0]

    def iwae(self, x: jax.Array, rng_key: jax.Array, num_samples: int) -> jax.Array:
        log_weights = self.log_weights(x, rng_key, num_samples)
        return jax.nn.logsumexp(log_weights, axis=0) - math.log(num_samples)

    def sample(self, rng_key: jax.Array, num: int) -> jax.Array:
        z = self.prior.sample(rng_key, num)
        return jax.nn.sigmoid(self.autoencoder.decode(z))

    def reconstruct(self, x: jax.Array) -> jax.Array:
        return self.autoencoder.reconstruct(x)


def decoder_logdensity_fn(graphdef: nnx.GraphDef):
    """``logdensity(params, z, x) -> scalar``: ``log p(x | z) + log p(z)`` under the AAE's
    decoder and prior, for one image ``x`` and one code ``z`` (latent_dim,): what annealed
    importance sampling targets to estimate ``log p(x)`` without the encoder."""

    def logdensity(params, z, x):
        model = nnx.merge(graphdef, params)
        logits = model.autoencoder.decode(z[None])
        return model.autoencoder.log_likelihood(logits, x[None])[0] + model.prior.log_prob(z)

    return logdensity


def latent_density(model: AAE, noise_std: None = None) -> LatentDensity:
    """The decoder under the AAE's own (mixture) prior as a :class:`LatentDensity`; the
    encoder plays no part (``noise_std`` is unused)."""
    graphdef, params = nnx.split(model)
    prior = (model.prior.log_prob, model.prior.sample)
    return LatentDensity(
        decoder_logdensity_fn(graphdef), params, model.autoencoder.latent_dim, prior
    )


def _sample_code(mean, log_std, rng_key):
    """One reparameterised draw of ``q(z | x)`` from its (batch, latent_dim) parameters."""
    return mean + jnp.exp(log_std) * jax.random.normal(rng_key, mean.shape)


def _reconstruction_nll(model: AAE, z, x):
    """``-log p(x | z)``, averaged over the batch."""
    return -jnp.mean(model.autoencoder.log_likelihood(model.autoencoder.decode(z), x))


def reconstruction_loss(model: AAE, x, rng_key):
    """``-E_q[log p(x | z)]`` per image, one reparameterised sample."""
    return _reconstruction_nll(model, model.code(x, rng_key), x)


def _fooling_loss(model: AAE, z):
    """Non-saturating: the encoder's codes ``z`` should look like prior draws to the critic."""
    return jnp.mean(jax.nn.softplus(-model.critic(z)))


def autoencoder_loss_fn(entropy_weight: float, adversarial_weight: float):
    """Reconstruction, minus ``entropy_weight`` times the entropy of ``q(z | x)`` (up to a
    constant, ``sum log std``), plus ``adversarial_weight`` times the encoder's adversarial
    loss.

    The ELBO is ``E_q[log p(x|z)] + H(q(z|x)) + E_q[log p(z)]``; an AAE replaces the last
    term, per image, by matching the *aggregated* codes to the prior adversarially. Keeping
    the entropy term stops each image's code distribution from collapsing to a point, which
    would leave the encoder useless as an importance-sampling proposal (the IWAE bound of a
    collapsed AAE is far below its true log-likelihood). The adversarial loss is weighed in
    nats against the reconstruction, in the same loss and the same Adam: given its own Adam,
    whose steps are as large whatever the loss's scale, it kept pulling the encoder off what
    reconstructs (see docs/models/aae.md). The images are encoded once for all three terms,
    so the encoder's backward pass runs once.
    """

    def loss(model: AAE, x, rng_key):
        key_reconstruction, key_adversarial = jax.random.split(rng_key)
        mean, log_std = model.encode(x)
        reconstruction = _reconstruction_nll(
            model, _sample_code(mean, log_std, key_reconstruction), x
        )
        adversarial = _fooling_loss(model, _sample_code(mean, log_std, key_adversarial))
        entropy = jnp.mean(jnp.sum(log_std, axis=-1))
        return reconstruction - entropy_weight * entropy + adversarial_weight * adversarial

    return loss


def critic_loss(model: AAE, x, rng_key):
    key_prior, key_code = jax.random.split(rng_key)
    real = model.prior.sample(key_prior, x.shape[0])
    fake = jax.lax.stop_gradient(model.code(x, key_code))
    return jnp.mean(jax.nn.softplus(-model.critic(real))) + jnp.mean(
        jax.nn.softplus(model.critic(fake))
    )


DEFAULTS = {
    "variant": "mlp",
    "latent_dim": 8,
    "likelihood": "bernoulli",
    "entropy_weight": 1.0,
    "learning_rate": 1e-3,
    "adversarial_weight": 10.0,
    "adversarial_learning_rate": 1e-3,
    "shift": 0,
}

_AUTOENCODER = nnx.All(nnx.Param, nnx.PathContains("autoencoder"))
_CRITIC = nnx.All(nnx.Param, nnx.PathContains("critic"))


def _objectives(options):
    rate = checks.positive_float("learning_rate", options["learning_rate"])
    critic_rate = checks.positive_float(
        "adversarial_learning_rate", options["adversarial_learning_rate"]
    )
    adversarial_weight = checks.positive_float("adversarial_weight", options["adversarial_weight"])
    entropy_weight = checks.nonnegative_float(
        "entropy_weight", options["entropy_weight"], "A negative weight rewards collapsed codes."
    )
    return [
        Objective(
            "autoencoder",  # its loss: reconstruction - entropy + adversarial terms
            _AUTOENCODER,
            autoencoder_loss_fn(entropy_weight, adversarial_weight),
            optax.adam(rate),
        ),
        Objective("critic", _CRITIC, critic_loss, optax.adam(critic_rate, b1=0.5)),
    ]


def _build(dataset, options, rngs):
    check_shift(options, dataset)
    return AAE(*model_arguments(dataset, options), rngs=rngs)


FAMILY = Family(
    name="aae",
    defaults=DEFAULTS,
    build=_build,
    objectives=_objectives,
    train_batch=likelihood_inputs,
    test_data=likelihood_test_data,
    # What it is trained on: the reconstruction NLL of the test images (its ELBO and IWAE
    # bound, which also pay for matching the prior, are in models.generative.evaluation).
    test_loss=lambda model, x, key, options: reconstruction_loss(model, x, key),
    loss_labels=lambda options: {
        "train_autoencoder": "train: reconstruction - entropy + adversarial",
        "train_critic": "train: critic",
        "validation_loss": "validation: reconstruction NLL",
        "test_loss": "test: reconstruction NLL",
    },
    # the critic's loss is a classifier's; the autoencoder's adds weighted adversarial and
    # entropy terms to its reconstruction NLL
    loss_unit="loss (test, validation: nats per image; train: their objectives)",
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
)
