"""What a generative model family is, and what it can do.

A family (one file each, listed in ``registry.py``) describes itself with a :class:`Family`:
how to build its NNX module, its objectives, how to prepare a batch and how to score the test
split, which is all the training loop needs.

What else a family can do is data on the same :class:`Family`, one optional field per
capability, ``None`` where the family lacks it; :attr:`Family.capabilities` names those it
has. Evaluation, AIS scoring and the ``infer`` command read these fields, never the family's
name:

* ``exact_likelihood``: ``log p(x)`` in closed form (an autoregressive model).
* ``importance_weights``: an encoder ``q(z | x)`` as a proposal, hence the ELBO and the IWAE
  bounds of ``log p(x)`` (autoencoders whose encoder is a density).
* ``decoder_density``: a decoder ``p(x | z)`` with a prior ``p(z)`` on a latent code, what
  annealed importance sampling anneals over (including a generator read with Gaussian
  observation noise).
* ``reconstructions``: images passed through an encoder and a decoder (autoencoders).

``registry.having(capability)`` lists the families that have one.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, NamedTuple

import optax

EXACT_LIKELIHOOD = "exact_likelihood"
IMPORTANCE_WEIGHTS = "importance_weights"
DECODER_DENSITY = "decoder_density"
RECONSTRUCTIONS = "reconstructions"

CAPABILITIES = {
    EXACT_LIKELIHOOD: "an exact log-likelihood log p(x)",
    IMPORTANCE_WEIGHTS: "importance weights p(x, z) / q(z | x) from an encoder (ELBO and IWAE "
    "bounds)",
    DECODER_DENSITY: "a decoder density p(x | z) with a prior p(z) on a latent code",
    RECONSTRUCTIONS: "reconstructions through an encoder and a decoder",
}
"""Every capability's name, with what it means (for error messages)."""


class Objective(NamedTuple):
    """One loss and what it trains.

    Attributes:
        name: shown in the metrics (``"loss"``, ``"discriminator"``, ...).
        wrt: an NNX filter selecting the parameters this loss updates.
        loss_fn: ``loss_fn(model, batch, rng_key) -> scalar`` to minimise.
        optimizer: the Optax transformation for those parameters.
    """

    name: str
    wrt: Any
    loss_fn: Callable
    optimizer: optax.GradientTransformation


class ImportanceWeights(NamedTuple):
    """The ``importance_weights`` capability: an encoder ``q(z | x)`` as a proposal.

    Attributes:
        log_weights: ``log_weights(model, x, rng_key, num_samples) -> (num_samples, batch)``,
            ``log p(x, z_k) - log q(z_k | x)`` for ``z_k ~ q(z | x)``; their log-mean-exp
            is the IWAE bound.
        elbo: ``elbo(model, x, rng_key) -> (batch,)``, the ELBO of each image (one
            reparameterised sample; an analytic KL where the model has one).
    """

    log_weights: Callable
    elbo: Callable


class LatentDensity(NamedTuple):
    """``log p(x | z) + log p(z)`` of one image as a pure function of the parameters.

    Attributes:
        logdensity_fn: ``logdensity_fn(params, z, x) -> scalar`` for one image ``x``
            (height, width) and one code ``z`` (latent_dim,).
        params: the parameter pytree it takes (``nnx.split(model)[1]``).
        latent_dim: the size of ``z``.
        prior: ``(log_prob(z) -> scalar, sample(rng_key, num) -> (num, latent_dim))`` of the
            normalised prior inside ``logdensity_fn``, or ``None`` for ``N(0, I)``.
    """

    logdensity_fn: Callable
    params: Any
    latent_dim: int
    prior: tuple[Callable, Callable] | None


class DecoderDensity(NamedTuple):
    """The ``decoder_density`` capability: ``p(x | z) p(z)``, what AIS anneals over.

    Attributes:
        latent_density: ``latent_density(model, noise_std) -> LatentDensity``.
        observation_noise: ``True`` when ``p(x | z)`` is ``N(mean(z), noise_std^2 I)`` with a
            free ``noise_std`` that the evaluator chooses on validation images (a generator
            with no observation model of its own); ``False`` when the decoder has its own
            likelihood (``noise_std`` is then ``None``).
        unit: what the resulting log-likelihoods are in, for reports.
    """

    latent_density: Callable
    observation_noise: bool
    unit: str


class Family(NamedTuple):
    """What a model family is (for the training loop) and what it can do (its capabilities).

    Attributes:
        name: the family's name in the registry and on the command line.
        defaults: every option with its default; training accepts only these.
        build: ``build(dataset, options, rngs) -> nnx.Module``.
        objectives: ``objectives(options) -> list[Objective]``, applied in order each step.
        train_batch: ``train_batch(rng_key, images, dataset, options) -> batch``, inside the
            jitted step (e.g. dynamic binarisation); ``images`` (batch, h, w) in [0, 1].
        test_data: ``test_data(dataset, options, split="test") -> array``, the fixed inputs
            of the ``"test"`` or ``"validation"`` split.
        test_loss: ``test_loss(model, test_data, rng_key, options) -> scalar``, the per-image
            loss reported each epoch on the test and validation inputs (nats per image for
            likelihood models); early stopping minimises it on the validation split.
        samples: ``samples(model, rng_key, num) -> (num, h, w)`` images in [0, 1].
        exact_likelihood: ``exact_likelihood(model, x) -> (batch,)``, ``log p(x)``, or
            ``None``.
        importance_weights: an :class:`ImportanceWeights`, or ``None``.
        decoder_density: a :class:`DecoderDensity`, or ``None``.
        reconstructions: ``reconstructions(model, test_data) -> (num, h, w)``, or ``None``
            for models that do not encode.
        test_loss_ranks_models: whether a lower test loss means a better model, so that a
            validation split can choose the epoch kept (``False`` for a GAN, whose test loss
            is its discriminator's: it falls when the generator gets worse).
        loss_labels: ``loss_labels(options) -> {series: label}``, what each series of the
            metrics measures (``"train_<objective>"``, ``"test_loss"``,
            ``"validation_loss"``), for the loss plot's legend; ``None``: their names.
        loss_unit: the loss plot's axis label; ``None``: nats per image where the test loss
            ranks models, else "its objectives, not nats".
        samples_are: what ``samples`` gives, for the title of the grid of them
            (``"samples"``; a decoder's mean images are not draws of ``p(x)``).
        min_steps: the fewest optimiser steps the default number of epochs gives (a GAN
            needs about 2,000 to make digits; 20 epochs of the digits are 220 steps).
    """

    name: str
    defaults: dict
    build: Callable
    objectives: Callable
    train_batch: Callable
    test_data: Callable
    test_loss: Callable
    samples: Callable
    exact_likelihood: Callable | None = None
    importance_weights: ImportanceWeights | None = None
    decoder_density: DecoderDensity | None = None
    reconstructions: Callable | None = None
    test_loss_ranks_models: bool = True
    loss_labels: Callable | None = None
    loss_unit: str | None = None
    samples_are: str = "samples"
    min_steps: int = 0

    @property
    def capabilities(self) -> frozenset[str]:
        """The names of the capabilities this family has (a subset of ``CAPABILITIES``)."""
        return frozenset(name for name in CAPABILITIES if getattr(self, name) is not None)
