"""log p(x) of decoder-based generative models by annealed importance sampling (Wu et al.
2017, "On the quantitative analysis of decoder-based generative models").

For one image ``x`` the latent code has prior ``N(0, I)`` and unnormalised posterior
``p(x | z) p(z)``; :func:`infer.annealed.anneal` moves chains from the prior to that posterior
with HMC, and the mean of their weights estimates ``p(x)`` without bias. Every image gets
its own chains; images are processed in vectorised batches. One step-size schedule, tuned by
a pilot pass on a few images, is shared by all images (the pilot's chains are discarded, so
the estimates stay unbiased).

* VAE: the Bernoulli (or Binomial) decoder, beside the IWAE bound on the same images; AIS
  should come out at least as high, up to its error.
* AAE: the decoder under the AAE's own prior (a Gaussian mixture), beside the IWAE bound
  whose proposal is the encoder: the encoder is trained adversarially, not as a posterior
  approximation, so IWAE can sit far below log p(x); AIS does not use it.
* GAN: the generator read as ``x ~ N(G(z), sigma^2 I)``, a density over grey-level images;
  ``sigma`` is chosen on validation images (the first part of the test split, disjoint from
  the scored images) as the value with the highest AIS log-likelihood.
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable
from typing import NamedTuple

import jax
import jax.numpy as jnp
import numpy as np
from flax import nnx

from infer.annealed import anneal, temperatures, tune_step_sizes, weight_summary
from infer.numpyro_adapter import tempered_hmc

NOISE_GRID = (0.03, 0.05, 0.1, 0.2, 0.3, 0.5, 0.8)


class AISScores(NamedTuple):
    """Per-image AIS estimates.

    Attributes:
        log_p: (num_images,) ``log mean w`` per image (a stochastic lower bound of log p(x)).
        log_p_se: (num_images,) standard errors, ``sqrt(1/ess - 1/num_chains)``.
        ess: (num_images,) effective sample sizes of the weights.
        step_sizes: (num_temperatures,) the shared, pilot-tuned schedule.
        acceptance: (num_temperatures,) mean acceptance over images and chains.
        grads_per_image: gradient evaluations per scored image (pilot excluded).
        seconds: wall time, pilot and compilation included.
    """

    log_p: np.ndarray
    log_p_se: np.ndarray
    ess: np.ndarray
    step_sizes: np.ndarray
    acceptance: np.ndarray
    grads_per_image: int
    seconds: float


def _standard_normal(z):
    return -0.5 * jnp.sum(z**2) - 0.5 * z.size * math.log(2 * math.pi)


def ais_per_image(
    logdensity: Callable,
    params,
    latent_dim: int,
    images,
    rng_key,
    *,
    num_temperatures: int = 500,
    num_chains: int = 16,
    num_leapfrog: int = 10,
    batch: int = 25,
    pilot_images=None,
    prior: tuple[Callable, Callable] | None = None,
    progress: bool = False,
) -> AISScores:
    """AIS estimates of ``log p(x)`` for every image.

    Args:
        logdensity: ``logdensity(params, z, x) -> scalar``, ``log p(x | z) + log N(z; 0, I)``
            (e.g. ``models.generative.vae.decoder_logdensity_fn(graphdef)``).
        params: the model's parameter pytree.
        latent_dim: size of ``z``.
        images: (num_images, height, width).
        rng_key: a JAX key.
        num_temperatures, num_chains, num_leapfrog: the annealing path, chains per image,
            and leapfrog steps per HMC transition.
        batch: images annealed at once (vectorised).
        pilot_images: (m, height, width) images for the step-size pilot (default: the first
            four of ``images``; the pilot's draws are discarded either way).
        prior: ``(log_prob(z) -> scalar, sample(key, num) -> (num, latent_dim))`` of the
            code's prior, normalised (the one inside ``logdensity``); default ``N(0, I)``.
        progress: a tqdm bar over images.
    """
    start = time.perf_counter()
    images = np.asarray(images, np.float32)
    betas = jnp.asarray(temperatures(num_temperatures, "sigmoid"))
    key_pilot, key_main = jax.random.split(rng_key)
    pilot = images[:4] if pilot_images is None else np.asarray(pilot_images, np.float32)

    if prior is None:
        prior = (_standard_normal, lambda key, num: jax.random.normal(key, (num, latent_dim)))
    log_prior, sample_prior = prior

    def kernel_for(x):
        return tempered_hmc(log_prior, lambda z: logdensity(params, z, x), num_leapfrog)

    @jax.jit
    def tune(pilot, key):
        def one(x, key):
            key_start, key_tune = jax.random.split(key)
            starts = sample_prior(key_start, 16)
            return jnp.log(tune_step_sizes(key_tune, kernel_for(x), starts, betas))

        keys = jax.random.split(key, pilot.shape[0])
        return jnp.exp(jnp.mean(jax.vmap(one)(pilot, keys), axis=0))

    step_sizes = tune(jnp.asarray(pilot), key_pilot)

    @jax.jit
    def run(images, key):
        def one(x, key):
            key_start, key_anneal = jax.random.split(key)
            starts = sample_prior(key_start, num_chains)
            trace = anneal(key_anneal, kernel_for(x), starts, betas, step_sizes)
            return trace.log_weights, trace.acceptance

        keys = jax.random.split(key, images.shape[0])
        return jax.vmap(one)(images, keys)

    weights, acceptance = [], []
    bar = None
    if progress:
        from tqdm.auto import tqdm

        bar = tqdm(total=images.shape[0], desc="ais", unit="image")
    for i in range(0, images.shape[0], batch):
        piece = images[i : i + batch]
        count = piece.shape[0]
        if count < batch:  # pad to the compiled batch size
            piece = np.concatenate([piece, np.repeat(piece[:1], batch - count, axis=0)])
        log_w, accept = run(jnp.asarray(piece), jax.random.fold_in(key_main, i))
        weights.append(np.asarray(log_w, np.float64)[:count])
        acceptance.append(np.asarray(accept)[:count])
        if bar is not None:
            bar.update(count)
    if bar is not None:
        bar.close()
    log_weights = np.concatenate(weights)
    summaries = np.array([weight_summary(row) for row in log_weights])
    return AISScores(
        log_p=summaries[:, 0],
        log_p_se=summaries[:, 1],
        ess=summaries[:, 2],
        step_sizes=np.asarray(step_sizes),
        acceptance=np.concatenate(acceptance).mean(axis=0),
        grads_per_image=num_chains * num_temperatures * (num_leapfrog + 1),
        seconds=time.perf_counter() - start,
    )


def _summary(values: np.ndarray, per_image_se: np.ndarray) -> dict:
    """Mean over images with its standard error (spread over images plus AIS's own error)."""
    n = values.size
    spread = np.var(values, ddof=1) / n if n > 1 else 0.0
    own = np.sum(per_image_se**2) / n**2
    return {"mean": float(np.mean(values)), "standard_error": float(math.sqrt(spread + own))}


def evaluate_ais(
    trained,
    *,
    num_images: int = 100,
    num_temperatures: int = 500,
    num_chains: int = 16,
    num_leapfrog: int = 10,
    iwae_samples: int = 5000,
    num_validation: int = 50,
    noise_grid: tuple[float, ...] = NOISE_GRID,
    seed: int = 0,
    progress: bool = False,
) -> dict:
    """AIS log-likelihood of a trained VAE or GAN on ``num_images`` test images.

    Returns a dict with ``nll_ais`` (mean and standard error, nats per image), for the VAE
    ``nll_iwae_<K>`` on the same images, for the GAN the chosen ``noise_std`` and the
    validation log-likelihood of every candidate, and ``cost`` (gradients per image,
    seconds, seconds per image).
    """
    from models.generative import aae, evaluation, gan, training, vae
    from models.generative import data as datasets

    config = trained.config
    name = config["model"]
    if name not in ("vae", "aae", "gan"):
        raise ValueError(
            f"AIS evaluation applies to decoder-based models with a prior on a latent code "
            f"(vae, aae, gan); got {name!r}. NADE's likelihood is exact already."
        )
    family = training.families()[name]
    dataset = datasets.load(config["data"])
    options = config["options"]
    model = trained.model
    key = jax.random.key(seed)
    settings = {
        "num_images": num_images,
        "num_temperatures": num_temperatures,
        "num_chains": num_chains,
        "num_leapfrog": num_leapfrog,
        "seed": seed,
        "schedule": "sigmoid",
    }
    report: dict = {"model": name, "data": config["data"], "settings": settings}
    if name in ("vae", "aae"):
        test = np.asarray(family.test_data(dataset, options))
        scored = test[:num_images]
        graphdef, params = nnx.split(model)
        if name == "vae":
            logdensity, prior = vae.decoder_logdensity_fn(graphdef), None
            latent_dim = model.latent_dim
        else:  # the AAE's decoder under its own (mixture) prior; the encoder plays no part
            logdensity = aae.decoder_logdensity_fn(graphdef)
            prior = (model.prior.log_prob, model.prior.sample)
            latent_dim = model.autoencoder.latent_dim
        scores = ais_per_image(
            logdensity,
            params,
            latent_dim,
            scored,
            key,
            num_temperatures=num_temperatures,
            num_chains=num_chains,
            num_leapfrog=num_leapfrog,
            prior=prior,
            progress=progress,
        )
        iwae = evaluation.bound_per_image(model, scored, jax.random.fold_in(key, 1), iwae_samples)
        report[f"nll_iwae_{iwae_samples}"] = evaluation.Summary.of(-iwae)._asdict()
        report["ais_minus_iwae"] = _summary(scores.log_p - iwae, scores.log_p_se)
        report["unit"] = "nats per binary image"
    else:
        test = np.asarray(dataset.test)
        validation = test[:num_validation]
        scored = test[num_validation : num_validation + num_images]
        graphdef, params = nnx.split(model)
        report["validation_images"] = int(validation.shape[0])
        candidates = {}
        for noise in noise_grid:
            logdensity = gan.generator_logdensity_fn(graphdef, noise)
            check = ais_per_image(
                logdensity,
                params,
                model.latent_dim,
                validation,
                jax.random.fold_in(key, int(noise * 1000)),
                num_temperatures=max(num_temperatures // 5, 20),
                num_chains=max(num_chains // 2, 2),
                num_leapfrog=num_leapfrog,
            )
            candidates[str(noise)] = float(np.mean(check.log_p))
        noise_std = float(max(noise_grid, key=lambda s: candidates[str(s)]))
        report["noise_std"] = noise_std
        report["validation_log_p_by_noise_std"] = candidates
        scores = ais_per_image(
            gan.generator_logdensity_fn(graphdef, noise_std),
            params,
            model.latent_dim,
            scored,
            key,
            num_temperatures=num_temperatures,
            num_chains=num_chains,
            num_leapfrog=num_leapfrog,
            pilot_images=validation[:4],
            progress=progress,
        )
        report["unit"] = "nats per image (a density over grey levels in [0, 1])"
    report["scored_images"] = int(scored.shape[0])
    report["nll_ais"] = _summary(-scores.log_p, scores.log_p_se)
    report["ais_ess"] = {"median": float(np.median(scores.ess)), "min": float(scores.ess.min())}
    report["acceptance"] = {
        "mean": float(scores.acceptance.mean()),
        "min": float(scores.acceptance.min()),
    }
    report["cost"] = {
        "grads_per_image": scores.grads_per_image,
        "seconds": scores.seconds,
        "seconds_per_image": scores.seconds / max(scored.shape[0], 1),
        "device": str(jax.devices()[0]),
    }
    report["step_sizes"] = scores.step_sizes.tolist()
    return report
