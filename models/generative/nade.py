"""Neural autoregressive distribution estimator (Larochelle & Murray 2011) for binary images.

``p(x) = prod_d p(x_d | x_<d)`` with ``p(x_d = 1 | x_<d) = sigmoid(b_d + V_d . h_d)`` and
``h_d = sigmoid(c + W_{:, <d} x_<d)``: the hidden weights ``W`` are shared across the
conditionals, so each hidden pre-activation is the previous one plus one column. The
log-likelihood is exact; sampling is ancestral, one pixel after another.
"""

from __future__ import annotations

from collections.abc import Callable

import jax
import jax.numpy as jnp
import optax
from flax import nnx

from infer import validation as checks
from models.generative.data import binarize
from models.generative.family import Family, Objective


class NADE(nnx.Module):
    """NADE over binary images of ``image_shape`` with ``hidden`` shared hidden units."""

    def __init__(self, image_shape: tuple[int, int], hidden: int = 500, *, rngs: nnx.Rngs):
        if not (isinstance(hidden, int) and hidden >= 1):
            raise ValueError(f"hidden must be a positive integer; got {hidden!r}.")
        self.image_shape = tuple(image_shape)
        self.likelihood, self.total_count = "bernoulli", 1  # binary pixels
        num_pixels = image_shape[0] * image_shape[1]
        init = nnx.initializers.normal(0.01)
        # float32 whether or not 64-bit floats are on, as flax's layers in the other
        # families; row d of w is W_{:, d}
        self.w = nnx.Param(init(rngs.params(), (num_pixels, hidden), jnp.float32))
        self.c = nnx.Param(jnp.zeros((hidden,), jnp.float32))
        self.v = nnx.Param(init(rngs.params(), (num_pixels, hidden), jnp.float32))
        self.b = nnx.Param(jnp.zeros((num_pixels,), jnp.float32))

    def conditional_logits(self, x: jax.Array) -> jax.Array:
        """Logits of ``p(x_d = 1 | x_<d)`` for every pixel, (batch, num_pixels).

        A scan over the pixels carries the hidden pre-activation ``c + W_{:, <d} x_<d``
        (batch, hidden): linear in the number of pixels (a cumulative sum over a
        (batch, pixels, hidden) array is several times slower on XLA's CPU backend).
        """
        flat = x.reshape(x.shape[0], -1)
        w, v, b = self.w[...], self.v[...], self.b[...]

        def pixel(activation, inputs):
            x_d, w_d, v_d, b_d = inputs
            logit = b_d + jax.nn.sigmoid(activation) @ v_d
            return activation + x_d[:, None] * w_d[None], logit

        start = jnp.broadcast_to(self.c[...][None], (flat.shape[0], self.c.shape[0]))
        _, logits = jax.lax.scan(pixel, start, (flat.T, w, v, b))
        return logits.T

    def log_prob(self, x: jax.Array) -> jax.Array:
        """Exact ``log p(x)`` per image, (batch,), for binary ``x`` (batch, height, width)."""
        flat = x.reshape(x.shape[0], -1)
        logits = self.conditional_logits(x)
        log_p = flat * jax.nn.log_sigmoid(logits) + (1.0 - flat) * jax.nn.log_sigmoid(-logits)
        return jnp.sum(log_p, axis=-1)

    def sample(self, rng_key: jax.Array, num: int) -> jax.Array:
        """Ancestral samples, (num, height, width) in {0, 1}."""
        w, c, v, b = self.w[...], self.c[...], self.v[...], self.b[...]
        keys = jax.random.split(rng_key, w.shape[0])

        def pixel(activation, inputs):
            key, w_d, v_d, b_d = inputs
            p = jax.nn.sigmoid(b_d + jax.nn.sigmoid(activation) @ v_d)
            x_d = (jax.random.uniform(key, p.shape) < p).astype(w.dtype)
            return activation + x_d[:, None] * w_d[None], x_d

        start = jnp.broadcast_to(c, (num, c.shape[0]))
        _, pixels = jax.lax.scan(pixel, start, (keys, w, v, b))
        return pixels.T.reshape(num, *self.image_shape)


def logdensity_fn(graphdef: nnx.GraphDef) -> Callable:
    """``logdensity(params, x) -> (batch,)``: the exact log-likelihood as a pure function."""
    return lambda params, x: nnx.merge(graphdef, params).log_prob(x)


DEFAULTS = {"hidden": 500, "learning_rate": 1e-3}


def _objectives(options):
    def loss(model, batch, rng_key):
        return -jnp.mean(model.log_prob(batch))

    rate = checks.positive_float("learning_rate", options["learning_rate"])
    return [Objective("loss", nnx.Param, loss, optax.adam(rate))]


FAMILY = Family(
    name="nade",
    defaults=DEFAULTS,
    build=lambda dataset, options, rngs: NADE(
        dataset.image_shape, int(options["hidden"]), rngs=rngs
    ),
    objectives=_objectives,
    train_batch=lambda key, images, dataset, options: binarize(key, images),
    test_data=lambda dataset, options, split="test": dataset.static_binary(split),
    test_loss=lambda model, x, key, options: -jnp.mean(model.log_prob(x)),
    samples=lambda model, key, num: model.sample(key, num),
    exact_likelihood=lambda model, x: model.log_prob(x),
    loss_labels=lambda options: {
        "train_loss": "train (-log p, dynamic binarisation)",
        "validation_loss": "validation (exact -log p, static binarisation)",
        "test_loss": "test (exact -log p, static binarisation)",
    },
)
