"""Honest scores of generative models on the test split, in nats per image.

* Likelihood models, by what they can do (their family's capabilities): for models with
  importance weights (an encoder), the ELBO and the IWAE bound with K up to thousands of
  samples (streamed in chunks of K, so memory stays bounded); for models with an exact
  likelihood, the exact negative log-likelihood; for both, an independent-pixel baseline
  fitted on the training split.
* Samples of any model: with no downloadable feature network here, a small classifier is
  trained on the same training split; samples are scored by the Fréchet distance between
  their features and the real test images' features, and by how many of the ten digit
  classes they cover.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from typing import NamedTuple

import jax
import jax.numpy as jnp
import numpy as np
from flax import nnx

from infer import validation
from infer.keys import as_jax_key, as_key
from infer.progress import check_progress, progress_bar
from models.generative import data as datasets
from models.generative import registry
from models.generative.family import EXACT_LIKELIHOOD, IMPORTANCE_WEIGHTS
from models.generative.loop import check_trained
from models.generative.networks import bernoulli_log_prob, binomial_log_prob
from models.generative.sample_scores import score_samples


def _own_method(model, method: str, capability: str) -> None:
    """A ``TypeError`` when ``model`` lacks ``method`` and no function was given instead,
    naming the capability and the families that have it."""
    if not callable(getattr(model, method, None)):
        raise TypeError(
            f"{type(model).__name__} has no {method} method, which this measure needs: "
            f"{registry.describe(capability)}. Pass the family's function for it instead, "
            "or use a measure the model has."
        )


def _key(rng_key) -> jax.Array:
    """An int seed or a key, as a typed key (``infer.sample`` takes both)."""
    return as_jax_key(as_key(rng_key)[0])


def _own_log_weights(model, x, rng_key, num_samples):
    return model.log_weights(x, rng_key, num_samples)


def _own_elbo(model, x, rng_key):
    return model.elbo(x, rng_key)


def _own_log_prob(model, x):
    return model.log_prob(x)


def _first_bad(data: np.ndarray, bad: np.ndarray) -> str:
    """The first few values a likelihood cannot score, and what is wrong with them."""
    values = np.unique(data[bad])[:3]
    fractional = bool(np.any(values != np.round(values)))
    kind = "fractional values such as" if fractional else "values outside the range such as"
    return f"{kind} {', '.join(f'{v:g}' for v in values)}"


def _unscorable(data: np.ndarray, top: int) -> np.ndarray:
    """Where ``data`` is not a whole number from 0 to ``top`` (1: binary pixels; else counts
    out of ``top``), which Bernoulli and binomial likelihoods cannot score."""
    return (data < 0) | (data > top) | (data != np.round(data))


def check_model_images(model, data, argument: str = "data") -> np.ndarray:
    """``data`` as a numpy array of images that ``model`` scores: not empty, finite, shaped
    ``(num_images, *model.image_shape)`` and, for a model that declares its ``likelihood``,
    binary pixels (``"bernoulli"``) or whole counts in ``[0, total_count]`` (``"binomial"``).
    Models that declare neither are only checked for finite values.

    Raises:
        ValueError: naming what is wrong and how many values are.
    """
    data = np.asarray(data)
    if data.dtype == bool:
        data = data.astype(np.float32)  # binary images as 0/1
    shape = getattr(model, "image_shape", None)
    if shape is not None and data.shape[1:] != tuple(shape):
        raise ValueError(
            f"{argument} must be images shaped (num_images, {', '.join(map(str, shape))}) for "
            f"this model; got shape {data.shape}."
        )
    if data.ndim < 2 or data.shape[0] == 0:
        raise ValueError(f"{argument} must hold at least one image; got shape {data.shape}.")
    if not np.issubdtype(data.dtype, np.number):
        raise ValueError(f"{argument} must hold numbers; got dtype {data.dtype}.")
    if not np.all(np.isfinite(data)):
        count = int(np.sum(~np.isfinite(data)))
        raise ValueError(f"{argument} must hold finite numbers; {count} are NaN or infinite.")
    likelihood = getattr(model, "likelihood", None)
    if likelihood in ("bernoulli", "binomial"):
        top = 1 if likelihood == "bernoulli" else int(model.total_count)
        bad = _unscorable(data, top)
        if bad.any():
            raise ValueError(
                f"{argument} holds {int(bad.sum())} value(s) that a {likelihood} likelihood "
                f"cannot score (pixels must be whole numbers from 0 to {top}; got "
                f"{_first_bad(data, bad)}). Pass the data set's own test images (the "
                "family's test_data), binarised or as counts."
            )
    return data


def bound_per_image(
    model,
    data,
    rng_key,
    num_samples: int,
    batch: int = 50,
    chunk: int = 500,
    log_weights_fn: Callable | None = None,
    progress=False,
) -> np.ndarray:
    """The IWAE bound with ``num_samples`` samples (the ELBO's Monte Carlo estimate when 1)
    of every image in ``data``, (num_images,), computed ``batch`` images and ``chunk``
    samples at a time with a running log-sum-exp: memory does not grow with K.

    ``log_weights_fn(model, x, rng_key, k) -> (k, batch)`` gives the importance weights (a
    family's ``importance_weights.log_weights``); by default the model's own
    ``log_weights(x, rng_key, k)`` method. ``progress``: a bar over the images (as
    :func:`infer.sample`'s).
    """
    if log_weights_fn is None:
        _own_method(model, "log_weights", IMPORTANCE_WEIGHTS)
    log_weights_fn = log_weights_fn or _own_log_weights
    rng_key = _key(rng_key)
    data = check_model_images(model, data)
    num_samples = validation.positive_int("num_samples", num_samples)
    batch = validation.positive_int("batch", batch)
    chunk = validation.positive_int("chunk", chunk)
    chunk = min(chunk, num_samples)
    num_chunks = math.ceil(num_samples / chunk)
    graphdef, state = nnx.split(model)

    @jax.jit
    def one_batch(state, x, key):
        model = nnx.merge(graphdef, state)

        def body(running, c):
            weights = log_weights_fn(model, x, jax.random.fold_in(key, c), chunk)
            valid = (c * chunk + jnp.arange(chunk)) < num_samples
            weights = jnp.where(valid[:, None], weights, -jnp.inf)
            return jnp.logaddexp(running, jax.nn.logsumexp(weights, axis=0)), None

        start = jnp.full((x.shape[0],), -jnp.inf)
        total, _ = jax.lax.scan(body, start, jnp.arange(num_chunks))
        return total - math.log(num_samples)

    out = []
    with progress_bar(progress, data.shape[0], f"IWAE-{num_samples}", unit="image") as bar:
        for i in range(0, data.shape[0], batch):
            piece = data[i : i + batch]
            padded = (
                np.concatenate([piece, piece[: batch - piece.shape[0]]])
                if piece.shape[0] < batch
                else piece
            )
            values = one_batch(state, jnp.asarray(padded), jax.random.fold_in(rng_key, i))
            out.append(np.asarray(values)[: piece.shape[0]])
            bar.update(piece.shape[0])
    return np.concatenate(out)


def elbo_per_image(
    model, data, rng_key, batch: int = 200, elbo_fn: Callable | None = None
) -> np.ndarray:
    """The ELBO of every image (one reparameterised sample, analytic KL where the model has
    one), (num_images,), from ``elbo_fn(model, x, rng_key) -> (batch,)`` (a family's
    ``importance_weights.elbo``; by default the model's own ``elbo`` method)."""
    if elbo_fn is None:
        _own_method(model, "elbo", IMPORTANCE_WEIGHTS)
    elbo_fn = elbo_fn or _own_elbo
    rng_key = _key(rng_key)
    graphdef, state = nnx.split(model)
    fn = jax.jit(lambda state, x, key: elbo_fn(nnx.merge(graphdef, state), x, key))
    data = check_model_images(model, data)
    batch = validation.positive_int("batch", batch)
    return np.concatenate(
        [
            np.asarray(fn(state, jnp.asarray(data[i : i + batch]), jax.random.fold_in(rng_key, i)))
            for i in range(0, data.shape[0], batch)
        ]
    )


def exact_log_prob(
    model, data, batch: int = 100, log_prob_fn: Callable | None = None
) -> np.ndarray:
    """``log p(x)`` of every image, (num_images,), from ``log_prob_fn(model, x) -> (batch,)``
    (a family's ``exact_likelihood``; by default the model's own ``log_prob`` method)."""
    if log_prob_fn is None:
        _own_method(model, "log_prob", EXACT_LIKELIHOOD)
    log_prob_fn = log_prob_fn or _own_log_prob
    graphdef, state = nnx.split(model)
    fn = jax.jit(lambda state, x: log_prob_fn(nnx.merge(graphdef, state), x))
    data = check_model_images(model, data)
    batch = validation.positive_int("batch", batch)
    return np.concatenate(
        [
            np.asarray(fn(state, jnp.asarray(data[i : i + batch])))
            for i in range(0, data.shape[0], batch)
        ]
    )


def independent_pixel_baseline(
    train: np.ndarray, test: np.ndarray, total_count: int | None = None
) -> np.ndarray:
    """Log-likelihood of each test image under independent pixels fitted on ``train``:
    Bernoulli(mean intensity) for binary ``test``, or Binomial(total_count, mean count /
    total_count) for counts. Probabilities are kept in [1e-3, 1 - 1e-3]. Test pixels the
    likelihood cannot score (intensities for Bernoulli pixels, counts above ``total_count``)
    are refused."""
    train, test = np.asarray(train), np.asarray(test)
    if test.shape[1:] != train.shape[1:] or not np.isfinite(test).all():
        raise ValueError(
            f"test must hold finite images shaped like train's, {train.shape[1:]}; got shape "
            f"{test.shape[1:]}, with {int(np.sum(~np.isfinite(test)))} NaN or inf value(s)."
        )
    top = 1 if total_count is None else total_count
    bad = _unscorable(test, top)
    if bad.any():
        pixels = "binary pixels (0 or 1)" if total_count is None else f"counts in [0, {top}]"
        raise ValueError(
            f"test must hold {pixels} to be scored by independent "
            f"{'Bernoulli' if total_count is None else 'binomial'} pixels; {int(bad.sum())} "
            f"value(s) are not: {_first_bad(test, bad)}. "
            + (
                "Binarise intensities first, or pass total_count for counts."
                if total_count is None
                else "Give whole counts of at most total_count."
            )
        )
    if total_count is None:
        p = np.clip(np.asarray(train, np.float64).mean(axis=0), 1e-3, 1 - 1e-3)
        logits = jnp.asarray(np.log(p) - np.log1p(-p))
        return np.asarray(bernoulli_log_prob(logits[None], jnp.asarray(test)))
    p = np.clip(np.asarray(train, np.float64).mean(axis=0) / total_count, 1e-3, 1 - 1e-3)
    logits = jnp.asarray(np.log(p) - np.log1p(-p))
    return np.asarray(binomial_log_prob(logits[None], jnp.asarray(test), total_count))


class Summary(NamedTuple):
    """A per-image quantity's mean and the standard error of that mean."""

    mean: float
    standard_error: float

    @classmethod
    def of(cls, values) -> Summary:
        values = np.asarray(values, np.float64)
        return cls(float(values.mean()), float(values.std(ddof=1) / math.sqrt(values.size)))


# ----------------------------------------------------------------------------- one model


def _checked_counts(iwae_samples, num_generated, seed) -> tuple:
    """:func:`evaluate`'s counts, checked: ``iwae_samples`` one count or a sequence of them."""
    if isinstance(iwae_samples, int | np.integer | np.ndarray) and type(iwae_samples) is not bool:
        iwae_samples = tuple(np.atleast_1d(iwae_samples).tolist())
    if not isinstance(iwae_samples, list | tuple):  # empty: no IWAE bound
        raise TypeError(
            f"iwae_samples must be a tuple of importance-sample counts, e.g. (100, 5000); got "
            f"{iwae_samples!r}."
        )
    counts = tuple(validation.positive_int("iwae_samples", k) for k in iwae_samples)
    num_generated = validation.positive_int(
        "num_generated", num_generated, "The Fréchet distance needs two samples.", minimum=2
    )
    return counts, num_generated, validation.seed("seed", seed)


def evaluate(
    trained,
    iwae_samples: tuple[int, ...] = (100, 5000),
    num_generated: int = 1000,
    seed: int = 0,
    progress=False,
) -> dict:
    """Every score that applies to a trained model (a ``TrainedModel``), chosen by what its
    family can do.

    Returns:
        A dict: ``model``, ``data``, ``test_images``; for likelihood models the negative
        log-likelihood estimates in nats per image with standard errors (``nll_elbo`` and
        ``nll_iwae_<K>`` with importance weights, ``nll_exact`` with an exact likelihood) and
        ``nll_independent_pixels`` of the baseline and ``improvement_over_baseline``
        (baseline NLL minus the model's best estimate; ``improvement_over_baseline_se`` the
        standard error of its mean over the images); for every model ``samples``
        (:class:`SampleScores` as a dict); and ``settings`` (the training configuration and
        these arguments). ``progress``: bars over the IWAE bounds' images and the feature
        classifier's training.
    """
    iwae_samples, num_generated, seed = _checked_counts(iwae_samples, num_generated, seed)
    check_trained(trained, "evaluate")
    check_progress(progress)
    config = trained.config
    family = registry.get(config["model"])
    dataset = datasets.load(config["data"])
    options = config["options"]
    key = jax.random.key(seed)
    report = {
        "model": config["model"],
        "data": config["data"],
        "test_images": int(dataset.test.shape[0]),
        "settings": {
            "training": config,
            "epochs": int(trained.metrics["epoch"][-1]) if trained.metrics["epoch"] else 0,
            "best_epoch": trained.metrics.get("best_epoch"),  # with a validation split
            "iwae_samples": list(iwae_samples),
            "num_generated": num_generated,
            "seed": seed,
        },
    }
    model = trained.model
    test = np.asarray(family.test_data(dataset, options))
    likelihood = options.get("likelihood", "bernoulli")
    estimates = []  # (mean, per image) of each estimate of the NLL
    weights = family.importance_weights
    if weights is not None:
        per_image = -elbo_per_image(model, test, key, elbo_fn=weights.elbo)
        report["nll_elbo"] = Summary.of(per_image)._asdict()
        estimates.append((report["nll_elbo"]["mean"], per_image))
        for k in iwae_samples:
            bound = bound_per_image(
                model, test, jax.random.fold_in(key, k), k,
                log_weights_fn=weights.log_weights, progress=progress,
            )  # fmt: skip
            report[f"nll_iwae_{k}"] = Summary.of(-bound)._asdict()
            estimates.append((report[f"nll_iwae_{k}"]["mean"], -bound))
    if family.exact_likelihood is not None:
        per_image = -exact_log_prob(model, test, log_prob_fn=family.exact_likelihood)
        report["nll_exact"] = Summary.of(per_image)._asdict()
        estimates.append((report["nll_exact"]["mean"], per_image))
    if estimates:
        best, best_per_image = min(estimates, key=lambda estimate: estimate[0])
        if likelihood == "binomial":
            baseline = independent_pixel_baseline(dataset.counts("train"), test, dataset.max_count)
        else:
            baseline = independent_pixel_baseline(dataset.train, test)
        report["nll_independent_pixels"] = Summary.of(-baseline)._asdict()
        report["improvement_over_baseline"] = report["nll_independent_pixels"]["mean"] - best
        gain = Summary.of(-np.asarray(baseline, np.float64) - np.asarray(best_per_image))
        report["improvement_over_baseline_se"] = gain.standard_error  # of the paired gains
        report["likelihood"] = likelihood
    samples = np.asarray(family.samples(model, jax.random.fold_in(key, 7), num_generated))
    report["samples"] = score_samples(samples, config["data"], progress=progress)._asdict()
    return report
