"""Bayesian neural networks in Flax NNX: two problems, the Optax point estimate they are
compared with, and the held-out measures.

* **digits**: an MLP classifier (64 pixels, one tanh hidden layer, 10 classes) on
  scikit-learn's 8x8 digits, split 80/20 as the generative models split them
  (``models.generative.data``).
* **regression**: a 1-D regression with heteroscedastic noise, generated: the network gives
  the mean and the standard deviation of a Gaussian at each ``x``. The training inputs leave a
  gap (``GAP``) and stop at ``TRAIN_RANGE``; the held-out sets are drawn inside the training
  range, in the gap and beyond the range, where a posterior's bands should widen.

Both place an independent ``N(0, PRIOR_SCALE^2)`` prior on every weight and bias
(:meth:`infer.Target.from_flax`). The point estimate is the same network trained by Optax
(Adam, full batch) to the maximum of the same posterior density (MAP: the prior acts as
weight decay). Predictions of a posterior average the predictive densities of its draws.

Measures: held-out negative log likelihood (mean per example, nats), accuracy, and the
expected calibration error: confidences (the largest class probability) in ``NUM_BINS``
equal-width bins over ``[0, 1]``, the bins' ``|accuracy - confidence|`` weighted by their
share of the examples.
"""

from __future__ import annotations

from typing import NamedTuple

import jax
import jax.numpy as jnp
import numpy as np
import optax
from flax import nnx

import infer
from infer import validation
from infer.io import save_png

NUM_BINS = 10
PRIOR_SCALE = 1.0
TRAIN_RANGE = (-3.0, 3.0)
GAP = (-0.75, 0.75)
MIN_SCALE = 1e-3


class Classifier(nnx.Module):
    """``(batch, in_features) -> (batch, num_classes)`` logits, one tanh hidden layer."""

    def __init__(self, in_features=64, hidden=16, num_classes=10, *, rngs: nnx.Rngs):
        self.hidden = nnx.Linear(in_features, hidden, rngs=rngs)
        self.out = nnx.Linear(hidden, num_classes, rngs=rngs)

    def __call__(self, x: jax.Array) -> jax.Array:
        return self.out(jnp.tanh(self.hidden(x)))


class Regressor(nnx.Module):
    """``(batch,) -> ((batch,) mean, (batch,) standard deviation)``, tanh hidden layers."""

    def __init__(self, hidden=(32,), *, rngs: nnx.Rngs):
        sizes = (1, *hidden)
        self.layers = nnx.List(
            [nnx.Linear(a, b, rngs=rngs) for a, b in zip(sizes[:-1], sizes[1:], strict=True)]
        )
        self.out = nnx.Linear(sizes[-1], 2, rngs=rngs)

    def __call__(self, x: jax.Array) -> tuple[jax.Array, jax.Array]:
        h = x[:, None]
        for layer in self.layers:
            h = jnp.tanh(layer(h))
        out = self.out(h)
        return out[:, 0], jax.nn.softplus(out[:, 1]) + MIN_SCALE


def classification_loglik(model, data) -> jax.Array:
    """``sum_i log p(y_i | x_i)`` under the softmax of ``model(x)``; ``data = (x, y)``."""
    x, y = data
    logp = jax.nn.log_softmax(model(x))
    return jnp.sum(jnp.take_along_axis(logp, y[:, None], axis=1))


def regression_loglik(model, data) -> jax.Array:
    """``sum_i log N(y_i; mean(x_i), sd(x_i)^2)``; ``data = (x, y)``."""
    x, y = data
    mean, sd = model(x)
    return jnp.sum(normal_logpdf(y, mean, sd))


def flat_prior(params) -> jax.Array:
    """A flat (improper) prior, 0 everywhere: with it, the Optax fit is maximum likelihood."""
    return jnp.zeros(())


def layer_prior(
    hidden: float, output: float, bias: float, df: float | None = None, output_layer: str = "out"
):
    """An independent prior with a scale by layer: ``output`` for the weights of the layer
    named ``output_layer`` (the module's attribute, ``"out"`` by default, or its dotted path:
    ``"layers.1"`` for the second layer of an ``nnx.List``; a name of no layer, or of every
    one, is refused; a module that is itself one layer, a bare ``nnx.Linear``, needs no
    name), ``hidden`` for the weights of every other layer, ``bias`` for every bias.
    The weights are Gaussian, or with ``df`` Student-t with ``df`` degrees of freedom and those
    scales (heavy tails: Fortuin et al. 2022, "Bayesian neural network priors revisited");
    biases stay Gaussian. Returns ``log_prior(params) -> scalar`` for
    :meth:`infer.Target.from_flax`."""
    scales = {
        kind: validation.positive_float(kind, scale, "It is a prior scale.")
        for kind, scale in (("hidden", hidden), ("output", output), ("bias", bias))
    }
    if df is not None:
        df = validation.positive_float("df", df, "It is the Student-t's degrees of freedom.")

    def weight_logpdf(leaf, scale):
        return normal_logpdf(leaf, 0.0, scale) if df is None else student_t_logpdf(leaf, df, scale)

    def log_prior(params) -> jax.Array:
        total = jnp.zeros(())
        paths = jax.tree_util.tree_flatten_with_path(params)[0]
        names = [[str(getattr(entry, "key", entry)) for entry in path] for path, _ in paths]
        # a layer by its dotted path ("out", or "layers.1" for a layer in an nnx.List)
        inside = [".".join(keys).startswith(output_layer + ".") for keys in names]
        if all(len(keys) == 1 for keys in names):  # the module is one layer (nnx.Linear)
            inside = [True] * len(names)  # its weights are the output layer's, unnamed
        weights = [i for i, keys in enumerate(names) if keys[-1] != "bias"]
        layers = sorted({".".join(keys[:-1]) for keys in names})
        # a name of every layer of several ("layers" of an nnx.List) gives none the hidden
        # scale; a network of one layer has only its output layer
        if not any(inside) or (len(layers) > 1 and all(inside[i] for i in weights)):
            raise ValueError(  # else every layer got the hidden scale (or the output's)
                f"layer_prior: output_layer={output_layer!r} names "
                f"{'no layer' if not any(inside) else 'every layer'} of the parameters "
                f"(their layers: {', '.join(layers)}); pass output_layer= the last layer's "
                "name (its dotted path in a list: 'layers.1')."
            )
        for keys, is_output, (_, leaf) in zip(names, inside, paths, strict=True):
            kind = "bias" if keys[-1] == "bias" else "output" if is_output else "hidden"
            scale = scales[kind]
            logpdf = normal_logpdf if kind == "bias" else lambda y, _, s: weight_logpdf(y, s)
            total = total + jnp.sum(logpdf(leaf, 0.0, scale))
        return total

    tail = "" if df is None else f", df={df:g}"
    log_prior.__name__ = f"layer_prior({hidden}, {output}, {bias}{tail})"
    return log_prior


def student_t_logpdf(y, df, scale):
    """``log t_df(y / scale) - log scale``, elementwise (location 0)."""
    from jax.scipy.stats import t

    return t.logpdf(y / scale, df) - jnp.log(scale)


def normal_logpdf(y, mean, sd):
    """``log N(y; mean, sd^2)``, elementwise."""
    return -0.5 * ((y - mean) / sd) ** 2 - jnp.log(sd) - 0.5 * jnp.log(2 * jnp.pi)


class Problem(NamedTuple):
    """A BNN problem.

    Attributes:
        name: ``"digits"`` or ``"regression"``.
        kind: ``"classification"`` or ``"regression"``.
        target: the posterior over the network's parameters.
        make_module: ``make_module(seed) -> nnx.Module``, a fresh network (chain starts).
        test: held-out sets, name -> ``(x, y)``.
        train: the training ``(x, y)``.
        log_likelihood_fn: ``log_likelihood_fn(model, (x, y)) -> scalar``.
    """

    name: str
    kind: str
    target: infer.Target
    make_module: object
    test: dict
    train: tuple
    log_likelihood_fn: object


def digits_problem(hidden: int = 16, prior=PRIOR_SCALE) -> Problem:
    """The digits classifier: 1,438 training images, 359 held out. ``prior``: the scale of a
    Gaussian on every parameter, or a ``log_prior(params)`` (e.g. :func:`layer_prior`)."""
    from models.generative import data as datasets

    digits = datasets.load("digits")
    train = (digits.train.reshape(len(digits.train), -1), digits.train_labels)
    test = (digits.test.reshape(len(digits.test), -1), digits.test_labels)

    def make_module(seed: int) -> Classifier:
        return Classifier(train[0].shape[1], hidden, 10, rngs=nnx.Rngs(seed))

    target = infer.Target.from_flax(
        make_module(0), classification_loglik, train, prior=prior, name="bnn_digits"
    )
    test = {"test": test}
    loglik = classification_loglik
    return Problem("digits", "classification", target, make_module, test, train, loglik)


def regression_truth(x):
    """The generated data's mean and noise standard deviation at ``x``."""
    mean = np.sin(1.5 * x) + 0.3 * x
    sd = 0.05 + 0.25 * ((x - TRAIN_RANGE[0]) / (TRAIN_RANGE[1] - TRAIN_RANGE[0])) ** 2
    return mean, sd


def regression_data(num_train: int = 160, num_test: int = 200, seed: int = 0) -> dict:
    """Generated ``(x, y)`` sets, float32: ``train`` and ``test`` in the training range
    without the gap, ``gap`` inside the gap, ``outside`` within 1.5 beyond the range."""
    rng = np.random.default_rng(seed)
    low, high = TRAIN_RANGE

    def inside(n):
        x = rng.uniform(low, high, 4 * n)
        return x[(x < GAP[0]) | (x > GAP[1])][:n]

    def outside(n):
        x = rng.uniform(0.0, 1.5, n)
        return np.where(rng.random(n) < 0.5, low - x, high + x)

    def labelled(x):
        mean, sd = regression_truth(x)
        y = mean + sd * rng.normal(size=x.shape)
        return x.astype(np.float32), y.astype(np.float32)

    return {
        "train": labelled(np.sort(inside(num_train))),
        "test": labelled(inside(num_test)),
        "gap": labelled(rng.uniform(*GAP, num_test)),
        "outside": labelled(outside(num_test)),
    }


def regression_problem(hidden=(32,), prior: float = PRIOR_SCALE, seed: int = 0) -> Problem:
    """The heteroscedastic 1-D regression (see :func:`regression_data`)."""
    sets = regression_data(seed=seed)

    def make_module(seed: int) -> Regressor:
        return Regressor(hidden, rngs=nnx.Rngs(seed))

    target = infer.Target.from_flax(
        make_module(0), regression_loglik, sets["train"], prior=prior, name="bnn_regression"
    )
    test = {k: v for k, v in sets.items() if k != "train"}
    train = sets["train"]
    return Problem("regression", "regression", target, make_module, test, train, regression_loglik)


def chain_starts(problem: Problem, num_chains: int, seed: int = 1):
    """One starting position per chain (leading axis ``num_chains``): fresh networks with
    their own initialisations, so that the chains start dispersed."""
    flax = problem.target.notes["flax"]
    positions = [
        flax.position(nnx.to_pure_dict(nnx.state(problem.make_module(seed + i), nnx.Param)))
        for i in range(num_chains)
    ]
    return jax.tree.map(lambda *leaves: jnp.stack(leaves), *positions)


def fit_point_estimate(
    target: infer.Target, init=None, *, steps: int = 3000, learning_rate: float = 1e-2
):
    """The MAP position: Adam on ``-log p(position | data) / N``, full batch, ``steps``
    steps from ``init`` (default the target's), in one compiled ``lax.scan``."""
    num_data = len(jax.tree.leaves(target.data[0])[0])
    optimizer = optax.adam(learning_rate)
    position = target.init if init is None else init

    def loss(position, data):
        return -target.bound(data)(position) / num_data

    @jax.jit
    def fit(position, data):
        def step(carry, _):
            position, opt_state = carry
            value, grad = jax.value_and_grad(loss)(position, data)
            updates, opt_state = optimizer.update(grad, opt_state, position)
            return (optax.apply_updates(position, updates), opt_state), value

        (position, _), losses = jax.lax.scan(
            step, (position, optimizer.init(position)), length=steps
        )
        return position, losses

    return fit(position, target.data)


def draw_positions(target: infer.Target, draws: dict, max_draws: int = 400) -> dict:
    """The parameter pytree of up to ``max_draws`` draws (leading axis: draws), evenly
    thinned from ``result.draws`` (chains and draws pooled)."""
    params = target.notes["flax"].params(draws)
    pooled = jax.tree.map(lambda a: a.reshape(-1, *a.shape[2:]), params)
    total = len(jax.tree.leaves(pooled)[0])
    index = np.unique(np.linspace(0, total - 1, min(max_draws, total)).round().astype(int))
    return jax.tree.map(lambda a: a[index], pooled)


def outputs(target: infer.Target, params, x):
    """The network's outputs at each parameter pytree of ``params`` (leading axis: draws):
    ``(draws, n, classes)`` logits, or a pair of ``(draws, n)`` means and sds."""
    flax = target.notes["flax"]
    return jax.jit(jax.vmap(lambda p, x: flax.module(p)(x), in_axes=(0, None)))(params, x)


def single(params):
    """One parameter pytree as a set of one draw (leading axis 1)."""
    return jax.tree.map(lambda a: jnp.asarray(a)[None], params)


def expected_calibration_error(probs, labels, num_bins: int = NUM_BINS) -> float:
    """ECE of ``(n, classes)`` predictive probabilities, ``num_bins`` equal-width bins."""
    probs, labels = np.asarray(probs), np.asarray(labels)
    confidence = probs.max(axis=1)
    correct = probs.argmax(axis=1) == labels
    bins = np.minimum((confidence * num_bins).astype(int), num_bins - 1)
    total = 0.0
    for b in range(num_bins):
        members = bins == b
        if members.any():
            gap = abs(correct[members].mean() - confidence[members].mean())
            total += members.mean() * gap
    return float(total)


def classification_metrics(logits, labels) -> dict:
    """Held-out NLL (nats per example), accuracy, ECE and the mean confidence (largest class
    probability: below the accuracy means underconfident) of the predictive distribution that
    averages the softmax of ``(draws, n, classes)`` logits over the draws."""
    log_probs = jax.nn.log_softmax(jnp.asarray(logits), axis=-1)
    log_predictive = jax.nn.logsumexp(log_probs, axis=0) - np.log(log_probs.shape[0])
    log_predictive = np.asarray(log_predictive, np.float64)
    labels = np.asarray(labels)
    probs = np.exp(log_predictive)
    return {
        "nll": float(-np.mean(log_predictive[np.arange(len(labels)), labels])),
        "accuracy": float(np.mean(probs.argmax(axis=1) == labels)),
        "ece": expected_calibration_error(probs, labels),
        "mean_confidence": float(np.mean(probs.max(axis=1))),
    }


def regression_metrics(means, sds, y, level: float = 0.9) -> dict:
    """Held-out NLL of the predictive mixture (nats per example), RMSE of its mean, the
    coverage of its central ``level`` band (the Gaussian band of the mixture's mean and
    standard deviation), and the mean over the points of the standard deviation of the
    draws' means (``epistemic_sd``: 0 for a point estimate; what grows away from the data)."""
    means, sds = jnp.asarray(means), jnp.asarray(sds)
    log_p = jax.nn.logsumexp(normal_logpdf(jnp.asarray(y), means, sds), axis=0)
    log_p = log_p - np.log(means.shape[0])
    mean, sd = predictive_bands(means, sds)
    half = float(jax.scipy.stats.norm.ppf(0.5 + level / 2))
    return {
        "nll": float(-jnp.mean(log_p)),
        "rmse": float(np.sqrt(np.mean((np.asarray(y) - mean) ** 2))),
        f"coverage_{int(level * 100)}": float(np.mean(np.abs(np.asarray(y) - mean) <= half * sd)),
        "epistemic_sd": float(np.mean(np.std(np.asarray(means, np.float64), axis=0))),
    }


def predictive_bands(means, sds):
    """The predictive mixture's mean and standard deviation, ``(n,)`` each: the total
    variance is the mean noise variance plus the variance of the means over the draws."""
    means, sds = np.asarray(means, np.float64), np.asarray(sds, np.float64)
    mean = means.mean(axis=0)
    return mean, np.sqrt(np.mean(sds**2, axis=0) + means.var(axis=0))


def plot_regression(path, problem: Problem, bands: dict, grid) -> None:
    """Predictive mean and 2-sd bands of each run in ``bands`` (name -> ``(mean, sd)`` on
    ``grid``), the training points and the true mean, saved to ``path`` (PNG)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(1, len(bands), figsize=(4.2 * len(bands), 3.6), sharey=True)
    x_train, y_train = problem.train
    truth, _ = regression_truth(np.asarray(grid))
    for ax, (name, (mean, sd)) in zip(np.atleast_1d(axes), bands.items(), strict=True):
        ax.axvspan(*GAP, color="0.92", lw=0)
        ax.fill_between(grid, mean - 2 * sd, mean + 2 * sd, alpha=0.3, label="±2 sd")
        ax.plot(grid, mean, lw=1.5, label="predictive mean")
        ax.plot(grid, truth, "k--", lw=0.8, label="true mean")
        ax.scatter(x_train, y_train, s=5, c="k", alpha=0.6, label="training data")
        ax.set_title(name)
        ax.set_xlabel("x")
    np.atleast_1d(axes)[0].legend(loc="upper left", fontsize=7)
    np.atleast_1d(axes)[0].set_ylabel("y")
    fig.tight_layout()
    save_png(fig, path, dpi=110)
