"""log p(x) of decoder-based generative models by annealed importance sampling (Wu et al.
2017, "On the quantitative analysis of decoder-based generative models").

It applies to every family with a decoder density (the ``decoder_density`` capability, see
``family.py``). For one image ``x`` the latent code has a prior ``p(z)`` and unnormalised
posterior ``p(x | z) p(z)``; :func:`infer.annealed.anneal` moves chains from the prior to
that posterior with HMC, and the mean of their weights estimates ``p(x)`` without bias. Every
image gets its own chains; images are processed in vectorised batches. One step-size
schedule, tuned by a pilot pass on a few images, is shared by all images (the pilot's chains
are discarded, so the estimates stay unbiased).

* A decoder with its own likelihood (Bernoulli or Binomial pixels) under its own prior
  (``N(0, I)``, or a Gaussian mixture). Where the family also has importance weights (an
  encoder), the IWAE bound on the same images is reported beside AIS, which should come out
  at least as high, up to its error; an encoder trained adversarially rather than as a
  posterior approximation can leave IWAE far below log p(x), and AIS does not use it.
* A decoder with free observation noise (a generator read as ``x ~ N(G(z), sigma^2 I)``, a
  density over grey-level images): ``sigma`` is chosen on validation images (the first part
  of the test split, disjoint from the scored images) as the value with the highest AIS
  log-likelihood.
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable
from typing import NamedTuple

import jax
import jax.numpy as jnp
import numpy as np

from infer import validation as checks
from infer.annealed import anneal, temperatures, tune_step_sizes, weight_summary
from infer.keys import as_jax_key, as_key
from infer.progress import progress_bar
from infer.tempered_hmc import tempered_hmc
from models.generative import data as datasets
from models.generative import evaluation, registry
from models.generative.family import DECODER_DENSITY, DecoderDensity
from models.generative.loop import check_trained

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
        scoring_seconds: the annealing of the images alone, its program compiled before.
    """

    log_p: np.ndarray
    log_p_se: np.ndarray
    ess: np.ndarray
    step_sizes: np.ndarray
    acceptance: np.ndarray
    grads_per_image: int
    seconds: float
    scoring_seconds: float


def _standard_normal(z):
    return -0.5 * jnp.sum(z**2) - 0.5 * z.size * math.log(2 * math.pi)


def _checked_images(images, argument: str) -> np.ndarray:
    """``images`` as float32 ``(num_images, height, width)``, finite (counts or intensities:
    the decoder's density judges the values), or a ``ValueError`` naming ``argument``."""
    images = np.asarray(images, np.float32)
    if images.ndim != 3 or images.shape[0] == 0:
        raise ValueError(
            f"{argument} must have shape (num_images, height, width), at least one image; got "
            f"shape {images.shape}. Reshape flat images with images.reshape(-1, height, width)."
        )
    if not np.isfinite(images).all():
        raise ValueError(
            f"{argument} holds {int(np.sum(~np.isfinite(images)))} NaN or infinite value(s); "
            "their log p(x) would be -inf or NaN. Clean or drop those images."
        )
    return images


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
            (e.g. a family's ``decoder_density.latent_density(model, None).logdensity_fn``).
        params: the model's parameter pytree.
        latent_dim: size of ``z``.
        images: (num_images, height, width), values ``logdensity`` can score: it is not
            checked against the decoder's likelihood here (binary pixels for a Bernoulli
            decoder, whose density of an intensity is not a probability), as
            :func:`evaluate_ais` does with a family's own test images.
        rng_key: a JAX key or an int seed.
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
    images = _checked_images(images, "images")
    num_temperatures, num_chains, num_leapfrog, batch = (
        checks.positive_int(name, value)
        for name, value in dict(
            num_temperatures=num_temperatures, num_chains=num_chains,
            num_leapfrog=num_leapfrog, batch=batch,
        ).items()
    )  # fmt: skip
    betas = jnp.asarray(temperatures(num_temperatures, "sigmoid"))
    key_pilot, key_main = jax.random.split(as_jax_key(as_key(rng_key)[0]))
    pilot = images[:4] if pilot_images is None else _checked_images(pilot_images, "pilot_images")
    if pilot.shape[1:] != images.shape[1:]:
        raise ValueError(
            f"pilot_images are shaped {pilot.shape[1:]}, the images {images.shape[1:]}: give "
            "the pilot images of the same size."
        )

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

    step_sizes = tune(jnp.asarray(pilot), key_pilot).block_until_ready()

    @jax.jit
    def run(images, key):
        def one(x, key):
            key_start, key_anneal = jax.random.split(key)
            starts = sample_prior(key_start, num_chains)
            trace = anneal(key_anneal, kernel_for(x), starts, betas, step_sizes)
            return trace.log_weights, trace.acceptance

        keys = jax.random.split(key, images.shape[0])
        return jax.vmap(one)(images, keys)

    batch = min(batch, images.shape[0])  # fewer images: no padding to compute
    compiled = run.lower(jnp.asarray(images[:batch]), key_main).compile()
    scoring = time.perf_counter()
    log_weights, acceptance = _in_batches(compiled, images, key_main, batch, progress)
    scoring_seconds = time.perf_counter() - scoring
    summaries = np.array([weight_summary(row) for row in log_weights])
    return AISScores(
        log_p=summaries[:, 0],
        log_p_se=summaries[:, 1],
        ess=summaries[:, 2],
        step_sizes=np.asarray(step_sizes),
        acceptance=acceptance.mean(axis=0),
        grads_per_image=num_chains * num_temperatures * (num_leapfrog + 1),
        seconds=time.perf_counter() - start,
        scoring_seconds=scoring_seconds,
    )


def _in_batches(run: Callable, images: np.ndarray, rng_key, batch: int, progress: bool):
    """``run(images, key) -> (log_weights, acceptance)`` over ``images`` ``batch`` at a
    time (the last batch padded to the compiled size, the padding dropped), batch ``i``
    with key ``fold_in(rng_key, i)``; returns both stacked over all images."""
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
        log_w, accept = run(jnp.asarray(piece), jax.random.fold_in(rng_key, i))
        weights.append(np.asarray(log_w, np.float64)[:count])
        acceptance.append(np.asarray(accept)[:count])
        if bar is not None:
            bar.update(count)
    if bar is not None:
        bar.close()
    return np.concatenate(weights), np.concatenate(acceptance)


def _summary(values: np.ndarray, per_image_se: np.ndarray) -> dict:
    """Mean over images with its standard error (spread over images plus AIS's own error)."""
    n = values.size
    spread = np.var(values, ddof=1) / n if n > 1 else 0.0
    own = np.sum(per_image_se**2) / n**2
    return {"mean": float(np.mean(values)), "standard_error": float(math.sqrt(spread + own))}


#: The fewest of each count: two images for a standard error; four chains, as an image's
#: estimate is usable when its weights' ESS reaches 2 (:data:`MIN_USABLE_ESS`), which two
#: chains reach only with equal weights and three hardly ever.
_LEAST = {"num_images": 2, "num_chains": 4}


def _checked_counts(**counts) -> tuple[int, ...]:
    """The counts of :func:`evaluate_ais`, each an int >= 1 (more for those in ``_LEAST``)."""
    return tuple(
        checks.positive_int(name, value, minimum=_LEAST.get(name, 1))
        for name, value in counts.items()
    )


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
    """AIS log-likelihood of a trained model whose family has a decoder density.

    Returns a dict with ``nll_ais`` (mean and standard error, nats per image); where the
    family has importance weights, ``nll_iwae_<K>`` on the same images; where the decoder has
    its own likelihood, ``nll_independent_pixels`` on the same images and
    ``improvement_over_baseline`` (AIS's log-likelihood minus the baseline's, per image:
    mean and standard error); where the decoder
    density has a free observation noise, the chosen ``noise_std`` and the validation
    log-likelihood of every candidate; and ``cost`` (gradients per image, seconds, seconds
    per image).

    Raises:
        ValueError: when the family has no decoder density, saying which families have one.
    """
    counts = _checked_counts(
        num_images=num_images,
        num_temperatures=num_temperatures,
        num_chains=num_chains,
        num_leapfrog=num_leapfrog,
        iwae_samples=iwae_samples,
        num_validation=num_validation,
    )
    check_trained(trained, "evaluate_ais")
    num_images, num_temperatures, num_chains, num_leapfrog = counts[:4]
    seed = checks.seed("seed", seed)
    config = trained.config
    family = registry.get(config["model"])
    density = family.decoder_density
    if density is None:
        exact = " Its likelihood is exact already." if family.exact_likelihood else ""
        raise ValueError(
            f"AIS evaluation anneals over a latent code: {family.name} lacks "
            f"{registry.describe(DECODER_DENSITY)}.{exact}"
        )
    model, key = trained.model, jax.random.key(seed)
    path = dict(num_temperatures=num_temperatures, num_chains=num_chains, num_leapfrog=num_leapfrog)
    settings = {"num_images": num_images, **path, "seed": seed, "schedule": "sigmoid"}
    report: dict = {"model": config["model"], "data": config["data"], "settings": settings}
    dataset = datasets.load(config["data"])
    test = np.asarray(family.test_data(dataset, config["options"]))
    scored, noise_std, pilot = test[:num_images], None, None
    if density.observation_noise:
        check_noise_search(noise_grid, num_validation, test.shape[0])
        scored, pilot = test[num_validation : num_validation + num_images], test[:4]
        validation = test[:num_validation]
        report.update(_searched_noise(density, model, validation, key, noise_grid, path, progress))
        noise_std = report["noise_std"]
    settings["num_images"] = int(scored.shape[0])  # the test split may hold fewer
    latent = density.latent_density(model, noise_std)
    scores = _ais_of(latent, scored, key, pilot_images=pilot, progress=progress, **path)
    if family.importance_weights is not None:
        log_weights_fn = family.importance_weights.log_weights
        iwae = evaluation.bound_per_image(
            model, scored, jax.random.fold_in(key, 1), iwae_samples, log_weights_fn=log_weights_fn
        )
        report[f"nll_iwae_{iwae_samples}"] = evaluation.Summary.of(-iwae)._asdict()
        report["ais_minus_iwae"] = _summary(scores.log_p - iwae, scores.log_p_se)
    if not density.observation_noise:  # the decoder's own likelihood: comparable with
        likelihood = config["options"].get("likelihood", "bernoulli")  # independent pixels
        total = dataset.max_count if likelihood == "binomial" else None
        train = dataset.counts("train") if total else dataset.train
        baseline = evaluation.independent_pixel_baseline(train, scored, total)
        report["nll_independent_pixels"] = evaluation.Summary.of(-baseline)._asdict()
        gain = evaluation.Summary.of(np.asarray(scores.log_p) - baseline)  # paired, per image
        report["improvement_over_baseline"] = gain._asdict()
    report["unit"] = density.unit
    report.update(_scores_report(scores, scored.shape[0]))
    if density.observation_noise:  # the whole evaluation's wall time, the search included
        for name in ("noise_search_seconds", "noise_search_grads"):
            report["cost"][name] = report.pop(name)
        report["cost"]["seconds"] += report["cost"]["noise_search_seconds"]
    return report


def _searched_noise(density, model, validation, key, noise_grid, path: dict, progress) -> dict:
    """The report's entries of the observation-noise search on ``validation``: the noise
    chosen, every candidate's log-likelihood, the images and the search's seconds."""
    start = time.perf_counter()
    noise_std, candidates = choose_noise_std(
        density, model, validation, key, noise_grid, **path, progress=progress
    )
    cheap = search_path(**path)
    per_image = cheap["num_chains"] * cheap["num_temperatures"] * (cheap["num_leapfrog"] + 1)
    return {
        "validation_images": int(validation.shape[0]),
        "noise_std": noise_std,
        "validation_log_p_by_noise_std": candidates,
        "noise_search_seconds": time.perf_counter() - start,
        "noise_search_grads": len(noise_grid) * int(validation.shape[0]) * per_image,
    }


def check_noise_search(noise_grid, num_validation: int, num_test: int) -> None:
    """The observation-noise search needs candidates, and test images left to score after
    the ``num_validation`` it chooses on."""
    grid = np.asarray(noise_grid, dtype=float).reshape(-1) if np.size(noise_grid) else []
    if len(grid) == 0 or not np.all(np.isfinite(grid) & (np.asarray(grid) > 0)):
        raise ValueError(
            "noise_grid must hold at least one positive observation noise sd to choose from; "
            f"got {noise_grid!r}."
        )
    if num_validation >= num_test:
        raise ValueError(
            f"num_validation={num_validation} would take every one of the {num_test} test "
            "images for choosing the noise, leaving none to score: use fewer (default 50)."
        )


def choose_noise_std(
    density: DecoderDensity,
    model,
    validation,
    rng_key,
    noise_grid: tuple[float, ...],
    *,
    num_temperatures: int,
    num_chains: int,
    num_leapfrog: int,
    progress=False,
) -> tuple[float, dict]:
    """``(noise_std, {str(noise): mean log p})``: the observation noise in ``noise_grid``
    with the highest AIS log-likelihood on the ``validation`` images, each candidate scored
    by a cheaper run (:func:`search_path`: a fifth of the temperatures, half the chains).
    ``progress``: a bar over the candidates."""
    candidates = {}
    path = search_path(num_temperatures, num_chains, num_leapfrog)
    with progress_bar(progress, len(noise_grid), "noise search", unit="candidate") as bar:
        for noise in noise_grid:
            latent = density.latent_density(model, noise)
            key = jax.random.fold_in(rng_key, int(noise * 1000))
            check = _ais_of(latent, validation, key, **path)
            candidates[str(noise)] = float(np.mean(check.log_p))
            bar.update(1)
    return float(max(noise_grid, key=lambda s: candidates[str(s)])), candidates


def _ais_of(latent, images, rng_key, **options) -> AISScores:
    """:func:`ais_per_image` of ``images`` under a family's ``LatentDensity``."""
    return ais_per_image(
        latent.logdensity_fn,
        latent.params,
        latent.latent_dim,
        images,
        rng_key,
        prior=latent.prior,
        **options,
    )


def search_path(num_temperatures: int, num_chains: int, num_leapfrog: int) -> dict:
    """The cheaper annealing path the noise search scores each candidate with."""
    return dict(
        num_temperatures=max(num_temperatures // 5, 20),
        num_chains=max(num_chains // 2, 2),
        num_leapfrog=num_leapfrog,
    )


#: A weights' ESS below this means one chain carries an image's estimate: not usable.
MIN_USABLE_ESS = 2.0


def _scores_report(scores: AISScores, num_scored: int) -> dict:
    """The AIS estimate, its weights' ESS, the acceptance and the cost, for the report."""
    return {
        "scored_images": int(num_scored),
        "nll_ais": _summary(-scores.log_p, scores.log_p_se),
        "ais_ess": {
            "median": float(np.median(scores.ess)),
            "min": float(scores.ess.min()),
            # an image whose weights' ESS is under 2 has its estimate from one chain
            "images_below_2": int(np.sum(scores.ess < MIN_USABLE_ESS)),
            "usable": bool(np.median(scores.ess) >= MIN_USABLE_ESS),
        },
        "acceptance": {
            "mean": float(scores.acceptance.mean()),
            "min": float(scores.acceptance.min()),
        },
        "cost": {
            "grads_per_image": scores.grads_per_image,
            "seconds": scores.seconds,
            "scoring_seconds": scores.scoring_seconds,
            "seconds_per_image": scores.scoring_seconds / max(num_scored, 1),
            "device": str(jax.devices()[0]),
        },
        "step_sizes": scores.step_sizes.tolist(),
    }
