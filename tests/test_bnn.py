"""Bayesian neural networks: ``Target.from_flax``, SGLD, and the BNN problems' pieces."""

import math
import warnings

import arviz_stats
import jax
import jax.numpy as jnp
import numpy as np
import numpyro.distributions as dist
import pytest
from flax import nnx
from jax.flatten_util import ravel_pytree
from scipy import stats

import infer
from infer import registry
from infer.per_example import NotASum
from models import bnn, targets

pytestmark = pytest.mark.slow  # a module `make test-fast` leaves out


class TinyMLP(nnx.Module):
    def __init__(self, rngs: nnx.Rngs):
        self.hidden = nnx.Linear(3, 4, rngs=rngs)
        self.out = nnx.Linear(4, 2, rngs=rngs)

    def __call__(self, x):
        return self.out(jnp.tanh(self.hidden(x)))


def loglik(model, data):
    x, y = data
    logp = jax.nn.log_softmax(model(x))
    return jnp.sum(jnp.take_along_axis(logp, y[:, None], axis=1))


RNG = np.random.default_rng(0)
X = RNG.normal(size=(20, 3)).astype(np.float32)
Y = (X[:, 0] + 0.5 * X[:, 1] > 0).astype(np.int32)
NAMES = {"hidden.bias": (4,), "hidden.kernel": (3, 4), "out.bias": (2,), "out.kernel": (4, 2)}


def ravel(tree):
    return np.asarray(ravel_pytree(tree)[0])


def tiny_target(**options):
    return infer.Target.from_flax(TinyMLP(nnx.Rngs(0)), loglik, (X, Y), **options)


def by_hand(module, scale=None):
    """log N(params; 0, scale^2) (none without a scale) + sum log softmax, NumPy float64."""
    params = nnx.to_pure_dict(nnx.state(module, nnx.Param))
    leaves = [np.asarray(v, np.float64) for v in jax.tree.leaves(params)]
    prior = 0.0
    if scale is not None:
        size = sum(leaf.size for leaf in leaves)
        prior = -0.5 * sum(np.sum(leaf**2) for leaf in leaves) / scale**2
        prior -= size * (math.log(scale) + 0.5 * math.log(2 * math.pi))
    h = np.tanh(X @ np.asarray(params["hidden"]["kernel"]) + np.asarray(params["hidden"]["bias"]))
    logits = h @ np.asarray(params["out"]["kernel"]) + np.asarray(params["out"]["bias"])
    logp = logits - np.log(np.sum(np.exp(logits), axis=1, keepdims=True))
    return prior + np.sum(logp[np.arange(len(Y)), Y])


@pytest.mark.parametrize("position", ["tree", "flat"])
def test_from_flax_shapes_names_and_the_pytree_back(position):
    target = tiny_target(position=position)
    model = target.notes["flax"]
    if position == "tree":
        assert jax.tree.map(jnp.shape, target.init) == {
            "hidden": {"bias": (4,), "kernel": (3, 4)},
            "out": {"bias": (2,), "kernel": (4, 2)},
        }
    else:
        assert target.init.shape == (26,)
    named = target.constrain(target.init)
    assert {k: np.shape(v) for k, v in named.items()} == NAMES
    assert model.names == tuple(NAMES) and model.num_params == 26
    params = model.params(named)
    module = TinyMLP(nnx.Rngs(0))
    np.testing.assert_allclose(model.module(params)(X), module(X), rtol=1e-6)
    for got, want in zip(
        jax.tree.leaves(model.position(params)), jax.tree.leaves(target.init), strict=True
    ):
        np.testing.assert_array_equal(got, want)
    np.testing.assert_array_equal(
        ravel(model.params_at(target.init)), ravel(nnx.to_pure_dict(nnx.state(module, nnx.Param)))
    )
    assert target.notes["minibatch"]["num_data"] == 20


@pytest.mark.parametrize("position", ["tree", "flat"])
def test_log_density_is_prior_plus_likelihood(position):
    target = tiny_target(prior=0.7, position=position)
    expected = by_hand(TinyMLP(nnx.Rngs(0)), 0.7)
    np.testing.assert_allclose(float(target.logdensity(target.init)), expected, rtol=1e-5)


def test_an_own_prior_and_the_likelihood_alone():
    def log_prior(params):
        return -jnp.sum(jnp.abs(params["out"]["kernel"]))

    target = tiny_target(prior=log_prior)
    params = target.init
    expected = float(log_prior(params)) + by_hand(TinyMLP(nnx.Rngs(0)))
    np.testing.assert_allclose(float(target.logdensity(params)), expected, rtol=1e-5)


def test_a_prior_by_layer_gives_each_layer_its_own_scale():
    """``bnn.layer_prior(hidden, output, bias)``: the sum of each layer's own Gaussian, by hand.
    Any two scales swapped changes the value, so a prior that mixed the layers up fails."""
    scales = {"hidden.kernel": 0.3, "out.kernel": 3.0, "hidden.bias": 1.5, "out.bias": 1.5}
    target = tiny_target(prior=bnn.layer_prior(0.3, 3.0, 1.5))
    params = nnx.to_pure_dict(nnx.state(TinyMLP(nnx.Rngs(0)), nnx.Param))
    prior = 0.0
    for name, scale in scales.items():
        layer, kind = name.split(".")
        leaf = np.asarray(params[layer][kind], np.float64)
        prior += np.sum(-0.5 * (leaf / scale) ** 2 - math.log(scale) - 0.5 * math.log(2 * math.pi))
    expected = prior + by_hand(TinyMLP(nnx.Rngs(0)))
    np.testing.assert_allclose(float(target.logdensity(target.init)), expected, rtol=1e-5)
    swapped = tiny_target(prior=bnn.layer_prior(3.0, 0.3, 1.5))
    assert abs(float(swapped.logdensity(swapped.init)) - expected) > 1.0
    with pytest.raises(ValueError, match="output must be a positive finite number; got -1"):
        bnn.layer_prior(0.3, -1.0, 1.5)
    # a last layer of another name got the hidden scale, silently: refused, then named
    with pytest.raises(ValueError, match=r"'head' names no layer .* \(their layers: hidden, out\)"):
        tiny_target(prior=bnn.layer_prior(0.3, 3.0, 1.5, output_layer="head"))
    named = tiny_target(prior=bnn.layer_prior(0.3, 3.0, 1.5, output_layer="hidden"))
    assert abs(float(named.logdensity(named.init)) - expected) > 1.0  # the scales move
    # layers in an nnx.List, named by their dotted paths: "layers.1" was refused, "layers"
    # accepted, every layer then given the output's scale
    listed = infer.Target.from_flax(
        ListMLP(nnx.Rngs(0)),
        loglik,
        (X, Y),
        prior=bnn.layer_prior(0.3, 3.0, 1.5, output_layer="layers.1"),
    )
    np.testing.assert_allclose(float(listed.logdensity(listed.init)), expected, rtol=1e-5)
    with pytest.raises(ValueError, match=r"'layers' names every layer .* layers.0, layers.1"):
        prior = bnn.layer_prior(0.3, 3.0, 1.5, output_layer="layers")
        infer.Target.from_flax(ListMLP(nnx.Rngs(0)), loglik, (X, Y), prior=prior)


class OneLayer(nnx.Module):  # a softmax regression: its one layer is its output layer
    def __init__(self, rngs: nnx.Rngs):
        self.out = nnx.Linear(3, 2, rngs=rngs)

    def __call__(self, x):
        return self.out(x)


def test_a_prior_by_layer_on_a_network_of_one_layer_gives_it_the_output_scale():
    """Refused for a while as naming "every layer", with advice to name the last one."""
    target = infer.Target.from_flax(
        OneLayer(nnx.Rngs(0)), loglik, (X, Y), prior=bnn.layer_prior(0.3, 3.0, 1.5)
    )
    params = nnx.to_pure_dict(nnx.state(OneLayer(nnx.Rngs(0)), nnx.Param))["out"]
    logits = X @ np.asarray(params["kernel"], np.float64) + np.asarray(params["bias"], np.float64)
    logp = logits - np.log(np.sum(np.exp(logits), axis=1, keepdims=True))
    expected = np.sum(logp[np.arange(len(Y)), Y])
    for leaf, scale in ((params["kernel"], 3.0), (params["bias"], 1.5)):
        leaf = np.asarray(leaf, np.float64)
        expected += np.sum(
            -0.5 * (leaf / scale) ** 2 - math.log(scale) - 0.5 * math.log(2 * math.pi)
        )
    np.testing.assert_allclose(float(target.logdensity(target.init)), expected, rtol=1e-5)
    # the module a bare layer: no name could name it, and every output_layer was refused
    bare = infer.Target.from_flax(
        nnx.Linear(3, 2, rngs=nnx.Rngs(0)), loglik, (X, Y), prior=bnn.layer_prior(0.3, 3.0, 1.5)
    )
    np.testing.assert_allclose(float(bare.logdensity(bare.init)), expected, rtol=1e-5)


class ListMLP(nnx.Module):  # TinyMLP's layers in a list
    def __init__(self, rngs: nnx.Rngs):
        self.layers = nnx.List([nnx.Linear(3, 4, rngs=rngs), nnx.Linear(4, 2, rngs=rngs)])

    def __call__(self, x):
        return self.layers[1](jnp.tanh(self.layers[0](x)))


def test_a_parameter_pytree_as_the_start_of_a_flat_target_points_to_position():
    params = nnx.to_pure_dict(nnx.state(TinyMLP(nnx.Rngs(1)), nnx.Param))
    with pytest.raises(ValueError, match=r"init=target.notes\['flax'\].position\(params\)"):
        infer.sample(0, tiny_target(position="flat"), infer.rwmh(), init=params, num_samples=5)


def test_ais_on_a_tree_position_points_to_a_flat_one():
    prior = dist.Normal(jnp.zeros(26), 1.0).to_event(1)
    with pytest.raises(ValueError, match=r"Target.from_flax\(..., position='flat'\) does it"):
        infer.ais(0, tiny_target(), prior, num_chains=4, num_temperatures=5)


@pytest.mark.thorough  # a second prior by layer, 3.5 s
def test_a_student_t_prior_by_layer_has_heavy_tailed_weights_and_gaussian_biases():
    """``df``: each weight's Student-t log density (scipy's) at its layer's scale, biases as
    before; the Gaussian prior's value differs, so ``df`` being ignored fails."""
    scales = {"hidden.kernel": 0.3, "out.kernel": 3.0, "hidden.bias": 1.5, "out.bias": 1.5}
    target = tiny_target(prior=bnn.layer_prior(0.3, 3.0, 1.5, df=3.0))
    params = nnx.to_pure_dict(nnx.state(TinyMLP(nnx.Rngs(0)), nnx.Param))
    prior = 0.0
    for name, scale in scales.items():
        layer, kind = name.split(".")
        leaf = np.asarray(params[layer][kind], np.float64)
        dist = stats.norm(0, scale) if kind == "bias" else stats.t(3.0, 0, scale)
        prior += np.sum(dist.logpdf(leaf))
    expected = prior + by_hand(TinyMLP(nnx.Rngs(0)))
    np.testing.assert_allclose(float(target.logdensity(target.init)), expected, rtol=1e-5)
    gaussian = tiny_target(prior=bnn.layer_prior(0.3, 3.0, 1.5))
    assert abs(float(gaussian.logdensity(gaussian.init)) - expected) > 1.0
    with pytest.raises(ValueError, match="df must be a positive finite number; got 0"):
        bnn.layer_prior(0.3, 3.0, 1.5, df=0)


@pytest.mark.parametrize(  # NUTS: a second gradient sampler on a Flax target, 9 s
    "sampler",
    [pytest.param(infer.nuts(max_tree_depth=5), marks=pytest.mark.thorough), infer.mala()],
    ids=str,
)
def test_nuts_and_mala_run_on_a_tiny_bnn(sampler):
    target = tiny_target()
    result = infer.sample(0, target, sampler, num_chains=2, num_samples=60, num_warmup=60)
    assert {k: v.shape[2:] for k, v in result.draws.items()} == NAMES
    assert all(v.shape[:2] == (2, 60) for v in result.draws.values())
    assert np.all(np.isfinite(result.stats["lp"]))
    params = target.notes["flax"].params(result.draws)
    assert params["out"]["kernel"].shape == (2, 60, 4, 2)


@pytest.mark.thorough  # a variant, 5 s
def test_under_x64_a_module_of_float32_parameters_samples_in_float64():
    """Flax's parameters are float32. Under ``jax_enable_x64`` NumPyro's HMC and NUTS failed
    inside their kernels ("carry input and carry output must have equal types"), and MALA and
    RWMH in their adaptation on float64 data: chains now start in JAX's default float type.
    (RWMH alone here, the cheapest to compile: the start is the same for every sampler.)"""
    with jax.enable_x64(True):
        target = infer.Target.from_flax(TinyMLP(nnx.Rngs(0)), loglik, (X.astype(np.float64), Y))
        result = infer.sample(0, target, infer.rwmh(), num_chains=2, num_samples=10, num_warmup=10)
    assert result.draws["out.kernel"].dtype == np.float64
    assert np.isfinite(result.stats["lp"]).all()


def test_pointwise_gives_each_examples_log_likelihood_for_arviz_loo():
    """``pointwise=True``: the ``log_likelihood`` group holds, for each draw, the likelihood of
    each example alone (summing to the whole data's), and ``az.loo`` reads it."""
    import arviz as az

    target = tiny_target(pointwise=True)
    result = infer.sample(0, target, infer.mala(), num_chains=2, num_samples=60, num_warmup=60)
    values = np.asarray(result.to_arviz()["log_likelihood"]["obs"])
    assert values.shape == (2, 60, len(Y))
    flax = target.notes["flax"]
    for chain, draw in [(0, 0), (1, 59)]:
        model = flax.module(flax.params({k: v[chain, draw] for k, v in result.draws.items()}))
        each = [float(loglik(model, (X[i : i + 1], Y[i : i + 1]))) for i in range(len(Y))]
        # float32 log-softmax terms differ by a few ulps of the logits (about 1) between the
        # batched pass and one example alone, which is relative 1e-5 of a term near -0.008
        # (seen on one CPU model): hence the absolute part
        np.testing.assert_allclose(values[chain, draw], each, rtol=1e-5, atol=1e-6)
        assert values[chain, draw].sum() == pytest.approx(float(loglik(model, (X, Y))), rel=1e-5)
    assert np.isfinite(az.loo(result.to_arviz()).elpd)
    # two networks compared as docs/bnn.md compares widths (one the other's run, reseeded)
    again = infer.sample(1, target, infer.mala(), num_chains=2, num_samples=60, num_warmup=60)
    table = az.compare({"seed 0": result.to_arviz(), "seed 1": again.to_arviz()})
    assert set(table.index) == {"seed 0", "seed 1"} and np.all(np.isfinite(table["elpd"]))
    plain = infer.sample(
        0, tiny_target(), infer.mala(), num_chains=2, num_samples=60, num_warmup=60
    )
    assert "log_likelihood" not in plain.to_arviz().children


def test_a_new_target_with_same_shaped_data_compiles_nothing():
    from test_driver import count_compilations

    first = infer.Target.from_flax(TinyMLP(nnx.Rngs(0)), loglik, (X, Y))
    infer.sample(0, first, infer.mala(), num_chains=2, num_samples=20, num_warmup=20)
    second = infer.Target.from_flax(TinyMLP(nnx.Rngs(3)), loglik, (X + 1.0, 1 - Y))
    assert second.logdensity_fn is first.logdensity_fn
    with count_compilations() as compilations:
        infer.sample(0, second, infer.mala(), num_chains=2, num_samples=20, num_warmup=20)
    assert compilations["n"] == 0


@pytest.mark.parametrize(
    ("module", "fn", "options", "error", "match"),
    [
        (lambda: "not a module", loglik, {}, TypeError, "must be a Flax NNX module"),
        (lambda: TinyMLP(nnx.Rngs(0)), "loglik", {}, TypeError, "log_likelihood_fn must be"),
        (
            lambda: TinyMLP(nnx.Rngs(0)),
            lambda model, data: jax.nn.log_softmax(model(data[0]))[:, 0],
            {},
            ValueError,
            "must return a scalar float",
        ),
        (lambda: TinyMLP(nnx.Rngs(0)), loglik, {"prior": 0.0}, ValueError, "positive finite"),
        (lambda: TinyMLP(nnx.Rngs(0)), loglik, {"prior": float("nan")}, ValueError, "finite"),
        (lambda: TinyMLP(nnx.Rngs(0)), loglik, {"prior": "wide"}, TypeError, "prior must be"),
        (lambda: TinyMLP(nnx.Rngs(0)), loglik, {"prior": True}, TypeError, "prior must be"),
        (
            lambda: TinyMLP(nnx.Rngs(0)),
            loglik,
            {"prior": lambda params: params["out"]["bias"]},
            ValueError,
            r"prior\(params\) must return a scalar.* Sum the terms of every parameter",
        ),
        (
            lambda: TinyMLP(nnx.Rngs(0)),
            loglik,
            {"prior": dist.Normal(0.0, 1.0)},
            TypeError,
            r"got the distribution Normal\. For that prior on every parameter pass prior=lambda",
        ),
        (lambda: TinyMLP(nnx.Rngs(0)), loglik, {"position": "vector"}, ValueError, "position"),
        (lambda: TinyMLP(nnx.Rngs(0)), loglik, {"pointwise": 1}, TypeError, "True or False"),
        (
            lambda: TinyMLP(nnx.Rngs(0)),
            lambda model: 0.0,
            {},
            ValueError,
            r"log_likelihood_fn\(model, data\) failed when traced: TypeError: .* called as",
        ),
        (
            lambda: TinyMLP(nnx.Rngs(0)),
            loglik,
            {"prior": lambda: 0.0},
            ValueError,
            r"prior\(params\) failed when traced: TypeError",
        ),
    ],
)
def test_bad_inputs_say_what_is_wrong(module, fn, options, error, match):
    with pytest.raises(error, match=match):
        infer.Target.from_flax(module(), fn, (X, Y), **options)


def test_forgotten_data_are_named_and_a_0d_array_is_a_prior_scale():
    with pytest.raises(ValueError, match=r"data=None: pass data="):
        infer.Target.from_flax(TinyMLP(nnx.Rngs(0)), loglik)
    target = infer.Target.from_flax(TinyMLP(nnx.Rngs(0)), loglik, (X, Y), prior=jnp.asarray(2.0))
    assert target.description.endswith("prior N(0, 2.0^2)")


def test_data_must_be_arrays_and_a_module_needs_parameters():
    with pytest.raises(TypeError, match="pytree of arrays"):
        infer.Target.from_flax(TinyMLP(nnx.Rngs(0)), loglik, (X, [1, 2]))
    scaled = (X, Y, np.float32(0.5))  # a constant among the examples: no axis of examples
    with pytest.raises(ValueError, match=r"pointwise=True .*\(shapes \[\(20, 3\), \(20,\), \(\)\]"):
        infer.Target.from_flax(
            TinyMLP(nnx.Rngs(0)), lambda m, d: d[2] * loglik(m, d[:2]), scaled, pointwise=True
        )

    class Empty(nnx.Module):
        def __call__(self, x):
            return x

    with pytest.raises(ValueError, match="no nnx.Param"):
        infer.Target.from_flax(Empty(), loglik, (X, Y))


# Conjugate Bayesian linear regression: y = X beta + N(0, 1) noise, beta ~ N(0, I). The
# posterior is N(m, S) with S = (X'X + I)^-1 and m = S X'y.
LR_RNG = np.random.default_rng(1)
LR_X = LR_RNG.normal(size=(200, 2)).astype(np.float32)
LR_Y = (LR_X @ np.array([1.0, -0.5]) + LR_RNG.normal(size=200)).astype(np.float32)
LR_NAN_X = LR_X.copy()
LR_NAN_X[7, 0] = np.nan  # one missing value in one example
LR_PRECISION = LR_X.astype(np.float64).T @ LR_X + np.eye(2)
LR_COV = np.linalg.inv(LR_PRECISION)
LR_MEAN = LR_COV @ LR_X.T.astype(np.float64) @ LR_Y
# eps * lambda_max = 0.05. The Euler bias on a variance is about eps * lambda / 4 (1%); the
# minibatch noise adds about eps * N^2 * Var(x r) / (4 B) (4% with B = 50): the sds should
# come out about 3% too large (measured over 12 seeds: 0.3% to 4.7%), and 10% bounds them
# with room for the Monte Carlo error. The mean is unbiased (the gradient is linear).
LR_STEP = 0.05 / float(np.linalg.eigvalsh(LR_PRECISION).max())
SD_TOLERANCE = 0.10


def lr_loglik(beta, batch):
    x, y = batch
    return -0.5 * jnp.sum((y - x @ beta) ** 2)


def lr_logprior(beta):
    return -0.5 * jnp.sum(beta**2)


LR_TARGET = infer.Target(
    lambda beta, data: lr_logprior(beta) + lr_loglik(beta, data),
    init=jnp.zeros(2),
    data=(LR_X, LR_Y),
    name="linear_regression",
)
LR_SGLD = infer.sgld(lr_loglik, lr_logprior, (LR_X, LR_Y), step_size=LR_STEP, batch_size=50)


def test_sgld_matches_a_conjugate_posterior(seed):
    result = infer.sample(
        seed, LR_TARGET, LR_SGLD, num_chains=4, num_samples=20_000, num_warmup=1000, thin=5
    )
    draws = np.asarray(result.draws["x"], np.float64)  # (chains, draws, 2)
    threshold = 3.5  # two-sided normal quantile at 1e-3 / 2 (Bonferroni over 2 coordinates)
    for i in range(2):
        mcse = float(arviz_stats.mcse(draws[..., i], method="mean", chain_axis=0, draw_axis=1))
        z = abs(draws[..., i].mean() - LR_MEAN[i]) / mcse
        assert z < threshold, (i, z)
        ratio = draws[..., i].std() / math.sqrt(LR_COV[i, i])
        assert abs(ratio - 1.0) < SD_TOLERANCE, (i, ratio)
    assert result.num_grad_evals == 4 * (1 + 1000 + 20_000 * 5)  # the start, warm-up, draws


def test_sgld_made_with_the_targets_float64_numpy_data_runs():
    """The sampler's float32 copy of them was compared with the target's float64 arrays,
    and refused as "other data than the target's"."""
    x, y = LR_X.astype(np.float64), LR_Y.astype(np.float64)
    target = LR_TARGET.with_options(data=(x, y))
    sgld = infer.sgld(lr_loglik, lr_logprior, (x, y), step_size=LR_STEP, batch_size=50)
    assert infer.sample(0, target, sgld, num_chains=2, num_samples=20).num_samples == 20


def test_sgld_on_a_log_density_of_millions_is_not_said_to_round_its_accept_tests():
    """SGLD moves by gradients alone (its lp a minibatch estimate, compared with nothing), yet
    a run was warned that float32 rounds "the differences the sampler accepts or rejects by"
    and told to drop constants; RWMH, which compares them, still is."""
    # each example's term shifted by 2e4 (a normalising constant), 4e6 in all
    shifted = lambda beta, data: lr_loglik(beta, data) + 2e4 * data[1].shape[0]  # noqa: E731
    target = LR_TARGET.with_options(
        logdensity_fn=lambda beta, data: lr_logprior(beta) + shifted(beta, data)
    )
    sgld = infer.sgld(shifted, lr_logprior, (LR_X, LR_Y), step_size=LR_STEP, batch_size=50)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        result = infer.sample(0, target, sgld, num_chains=2, num_samples=50, num_warmup=10)
    assert np.abs(result.stats["lp"]).min() > 2**20
    assert not [w for w in caught if "float32" in str(w.message)], caught
    with pytest.warns(infer.DiagnosticWarning, match="accepts or rejects by are rounded"):
        infer.sample(0, target, infer.rwmh(), num_chains=2, num_samples=50, num_warmup=10)


@pytest.mark.thorough  # SGLD's schedule and seed, 5 s; its conjugate check stays
def test_sgld_same_seed_same_draws_and_its_step_size_schedule():
    first = infer.sample(3, LR_TARGET, LR_SGLD, num_chains=2, num_samples=50, num_warmup=10)
    again = infer.sample(3, LR_TARGET, LR_SGLD, num_chains=2, num_samples=50, num_warmup=10)
    np.testing.assert_array_equal(first.draws["x"], again.draws["x"])
    np.testing.assert_allclose(first.stats["step_size"], LR_STEP, rtol=1e-6)
    decaying = infer.sgld(
        lr_loglik, lr_logprior, (LR_X, LR_Y), step_size=1e-3, decay_power=1.0, decay_steps=10
    )
    result = infer.sample(0, LR_TARGET, decaying, num_chains=1, num_samples=30, num_warmup=0)
    expected = 1e-3 / (1.0 + np.arange(30) / 10)
    np.testing.assert_allclose(result.stats["step_size"][0], expected, rtol=1e-5)


def test_sgld_runs_on_a_flax_target_and_the_registry_finds_it():
    target = tiny_target()
    sampler = registry.make("sgld", target)
    assert sampler is not None and sampler.num_data == 20
    assert registry.make("sgld", LR_TARGET) is None  # no minibatch declared
    sgld = infer.sgld(**target.notes["minibatch"], step_size=1e-3, batch_size=5)
    result = infer.sample(0, target, sgld, num_chains=2, num_samples=50, num_warmup=50)
    assert {k: v.shape[2:] for k, v in result.draws.items()} == NAMES
    # the same sampler on a target of other data: refused (it sampled its own data's
    # posterior, labelled as the other target's)
    flipped = infer.Target.from_flax(TinyMLP(nnx.Rngs(0)), loglik, (X, 1 - Y))
    with pytest.raises(ValueError, match="sgld was made with other data than the target's"):
        infer.sample(0, flipped, sgld, num_chains=2, num_samples=5, num_warmup=5)
    # the same data under another prior (a scan over prior scales reusing one sampler):
    # refused too (it sampled the first prior's posterior under the second's name)
    with pytest.raises(ValueError, match=r"is -\d[\d.]*; the target's is -\d.*another target"):
        infer.sample(0, tiny_target(prior=0.1), sgld, num_chains=2, num_samples=5, num_warmup=5)
    assert np.all(np.isfinite(result.stats["lp"]))
    with_constant = infer.Target.from_flax(  # a constant beside the examples: no minibatches
        TinyMLP(nnx.Rngs(0)), lambda m, d: loglik(m, (d[0], d[1])), (X, Y, np.float32(1.0))
    )
    assert registry.make("sgld", with_constant) is None
    with pytest.raises(KeyError, match=r"do not all hold the examples on one first axis"):
        with_constant.notes["minibatch"]
    # no data= at all (the likelihood closes over its data): said so, where the message was
    # of leaves "(shapes []) [that] do not all hold the examples"
    closed = infer.Target.from_flax(TinyMLP(nnx.Rngs(0)), lambda m, d: loglik(m, (X, Y)))
    with pytest.raises(KeyError, match=r"no data= was given .* Pass the examples as data="):
        closed.notes["minibatch"]


@pytest.mark.thorough  # a built-in target's minibatches, 5 s; a Flax one's stay
def test_the_built_in_logistic_regression_declares_its_minibatches():
    # infer compare --samplers sgld runs on it: its parts add up to its log density
    target = targets.get("logistic_regression")
    parts = target.notes["minibatch"]
    assert parts["num_data"] == 569
    for beta in np.random.default_rng(0).normal(0.0, 0.3, size=(3, 31)).astype(np.float32):
        position = {"beta": jnp.asarray(beta)}
        split = parts["logprior_fn"](position) + parts["loglik_fn"](position, parts["data"])
        np.testing.assert_allclose(split, target.logdensity_fn(position), rtol=1e-5)
    sampler = registry.make("sgld", target)
    result = infer.sample(0, target, sampler, num_chains=2, num_samples=20, num_warmup=0)
    assert result.draws["beta"].shape == (2, 20, 31)
    assert np.all(np.isfinite(result.stats["lp"]))


@pytest.mark.parametrize(
    ("options", "error", "match"),
    [
        ({"batch_size": 500}, ValueError, "at most the number of examples"),
        ({"batch_size": 0}, ValueError, "batch_size"),
        ({"step_size": -1.0}, ValueError, "step_size"),
        (
            {"step_size": lambda t: 1e-3},
            TypeError,
            r"got <function .*For one that decays, give decay_power",
        ),
        ({"decay_power": 0.3}, ValueError, "decay_power"),
        ({"decay_power": "0.6"}, TypeError, "decay_power must be a number; got '0.6'"),
        ({"num_data": 10}, ValueError, "num_data=10"),
        ({"num_data": 40.7}, TypeError, r"num_data must be an integer >= 1; got 40.7"),
        ({"data": (LR_X[:0], LR_Y[:0])}, ValueError, "data hold 0 examples"),
        ({"data": (LR_NAN_X, LR_Y)}, ValueError, r"data hold 1 NaN or infinite value\(s\)"),
        ({"data": (LR_X, list(LR_Y))}, ValueError, r"got leaves 201: shape \(200, 2\), .*asarray"),
        ({"data": ("abc",)}, TypeError, "data must be a pytree of numeric arrays"),
    ],
    ids=[
        "big-batch",
        "zero-batch",
        "step",
        "schedule",
        "decay",
        "decay-type",
        "num-data",
        "float-num",
        "empty",
        "nan",
        "list",
        "string",
    ],
)
def test_sgld_bad_inputs(options, error, match):
    """Empty data divided by zero; a NaN example silently skipped every step whose batch held
    it; a float num_data was truncated."""
    with pytest.raises(error, match=match):
        infer.sgld(lr_loglik, lr_logprior, **{"data": (LR_X, LR_Y), **options})


def test_sgld_draws_its_minibatches_from_the_programs_data_not_from_constants(monkeypatch):
    """Its minibatches came from copies of the data built into the compiled programs: 163 MB
    of program (and of compilation cache, twice) for 176 MB of data, 20 s to the first draw
    where 3 s do now. Inside infer.sample they come from the target's data, the programs'
    arguments: the program does not grow with the data."""
    big = (jnp.tile(LR_X, (100, 1)), jnp.tile(LR_Y, 100))
    sizes = []
    for data in ((LR_X, LR_Y), big):
        sampler = infer.sgld(lr_loglik, lr_logprior, data, step_size=LR_STEP, batch_size=50)

        def start(held, sampler=sampler):
            return sampler.build(lambda x: 0.0, 0, data=held).init(jnp.ones(2)).logdensity

        sizes.append(len(jax.jit(start).lower(data).as_text()))
    assert sizes[1] < 1.5 * sizes[0], sizes  # 100 times the data, built in: 100 times longer
    seen = []
    build = type(LR_SGLD).build

    def spy(self, logdensity_fn, num_warmup=0, data=None):
        seen.append(data is not None)
        return build(self, logdensity_fn, num_warmup, data)

    monkeypatch.setattr(type(LR_SGLD), "build", spy)
    sampler = infer.sgld(lr_loglik, lr_logprior, (LR_X, LR_Y), step_size=LR_STEP / 2)
    infer.sample(0, LR_TARGET, sampler, num_chains=2, num_samples=10, num_warmup=0)
    assert any(seen)  # the driver's programs hand the sampler their data


def test_compare_counts_sgld_evaluations_in_full_data_ones():
    """A minibatch gradient of 50 of the 200 examples counted as a whole one: SGLD's ESS per
    gradient was understated 4 times beside a full-data sampler's."""
    result = infer.sample(0, LR_TARGET, LR_SGLD, num_chains=2, num_samples=200, num_warmup=0)
    assert result.info["evaluation_fraction"] == 50 / 200
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", infer.DiagnosticWarning)
        row = infer.compare({"sgld": result}).iloc[0]
    full_data_gradients = result.num_grad_evals * 50 / 200
    assert row["ess_bulk_per_grad_eval"] == pytest.approx(row["min_ess_bulk"] / full_data_gradients)


def _lr_target(logdensity_fn):
    return infer.Target(logdensity_fn, init=jnp.zeros(2), data=(LR_X, LR_Y))


@pytest.mark.thorough  # a check's edge
def test_sgld_is_checked_against_the_target_around_the_start_up_to_a_constant():
    """Checked at the start only, a target of another prior that is 0 there as well
    (``-0.5 w^2 / 0.01``, started at 0) was sampled as sgld's posterior, and a prior folded
    into the likelihood passed for a sum; a target whose log density is NaN at the start
    (one bad example) ran, skipping every batch that held it. A normalising constant left
    out of one of them (NumPyro's, say) is the same posterior and runs."""
    narrow = _lr_target(lambda w, d: -0.5 * jnp.sum(w**2) / 0.01 + lr_loglik(w, d))
    with pytest.raises(ValueError, match=r"at a point jittered from the start.*another target"):
        infer.sample(0, narrow, LR_SGLD, num_chains=2, num_samples=10)

    def folded(w, batch):  # the prior inside the likelihood: N / B scales it
        return lr_loglik(w, batch) + lr_logprior(w)

    sampler = infer.sgld(folded, lambda w: 0.0, (LR_X, LR_Y), step_size=LR_STEP)
    with pytest.raises(NotASum, match="not a sum over the examples"):
        infer.sample(0, LR_TARGET, sampler, num_chains=2, num_samples=10)
    y_log = np.log(np.abs(np.asarray(LR_Y)) + 1.0)
    y_log[7] = -1.0  # finite data, and log(-1) is NaN at every position
    logged = (LR_X, jnp.asarray(y_log))

    def log_loglik(w, batch):
        return -0.5 * jnp.sum((jnp.log(batch[1]) - batch[0] @ w) ** 2)

    bad = infer.Target(
        lambda w, d: lr_logprior(w) + log_loglik(w, d), init=jnp.zeros(2), data=logged
    )
    sampler = infer.sgld(log_loglik, lr_logprior, logged, step_size=LR_STEP, batch_size=20)
    with pytest.raises(ValueError, match="log density is nan at the starting point"):
        infer.sample(0, bad, sampler, num_chains=2, num_samples=10)
    shifted = _lr_target(lambda w, d: lr_logprior(w) + lr_loglik(w, d) - 123.4)
    result = infer.sample(0, shifted, LR_SGLD, num_chains=2, num_samples=10, num_warmup=0)
    assert result.draws["x"].shape == (2, 10, 2)


class TinyNormed(nnx.Module):
    """TinyMLP with a BatchNorm: state beside the parameters, held fixed."""

    def __init__(self, rngs):
        self.hidden = nnx.Linear(3, 3, rngs=rngs)
        self.norm = nnx.BatchNorm(3, rngs=rngs)
        self.out = nnx.Linear(3, 2, rngs=rngs)

    def __call__(self, x):
        return self.out(self.norm(self.hidden(x)))


class Temperature(nnx.Variable):
    """A user's own kind of variable: not an nnx.Param, so not sampled."""


class TinyScaled(TinyNormed):
    def __init__(self, rngs):
        super().__init__(rngs)
        self.temperature = Temperature(jnp.ones(()))
        self.calls = nnx.Variable(jnp.zeros((), jnp.int32))  # an integer counter: not weights

    def __call__(self, x):
        return super().__call__(x) / self.temperature[...]


@pytest.mark.thorough  # an edge case, 2 s
def test_float_state_that_is_not_a_parameter_is_named_as_held_fixed():
    """A float nnx.Variable of the user's own kind was held at its value without a word;
    batch statistics (held fixed by design) and integer counters are not named."""
    normed = TinyNormed(nnx.Rngs(0))
    normed.eval()
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # BatchNorm's statistics alone: no warning
        infer.Target.from_flax(normed, loglik, (X, Y))
    scaled = TinyScaled(nnx.Rngs(0))
    scaled.eval()
    with pytest.warns(UserWarning, match=r"float state temperature \(Temperature\) is not") as got:
        target = infer.Target.from_flax(scaled, loglik, (X, Y))
    assert len(got) == 1 and "calls" not in str(got[0].message)
    assert "temperature" not in target.notes["flax"].names  # not sampled, as it said


# `make test` runs SGLD on a Flax target in the registry test above; this adds a module state
@pytest.mark.thorough
def test_sgld_runs_on_a_module_with_state_beside_its_parameters():
    """The target's data are the examples and the module's state; SGLD carries the examples
    alone, and was refused as made with other data, built just as the docs say."""
    module = TinyNormed(nnx.Rngs(0))
    module.eval()
    target = infer.Target.from_flax(module, loglik, (X, Y))
    sgld = infer.sgld(**target.notes["minibatch"], step_size=1e-3, batch_size=5)
    result = infer.sample(0, target, sgld, num_chains=2, num_samples=20, num_warmup=20)
    assert np.isfinite(result.stats["lp"]).all()
    assert "norm.scale" in result.draws
    # the same module on other examples (the target's own data swapped): still refused
    other = target.with_options(data=((X + 1.0, Y), target.data[1]))
    with pytest.raises(ValueError, match="sgld was made with other data than the target's"):
        infer.sample(0, other, sgld, num_chains=2, num_samples=5, num_warmup=5)
    # the same examples, other fixed state (batch statistics): refused as another target
    shifted = jax.tree.map(lambda v: v + 1.0, target.data[1])
    with pytest.raises(ValueError, match="made from another target"):
        infer.sample(0, target.with_options(data=(target.data[0], shifted)), sgld, num_chains=2)


def test_sgld_needs_examples_on_one_axis_and_callables():
    with pytest.raises(ValueError, match="same first axis"):
        infer.sgld(lr_loglik, lr_logprior, (LR_X, LR_Y[:10]))
    with pytest.raises(TypeError, match="must be callables"):
        infer.sgld("loglik", lr_logprior, (LR_X, LR_Y))
    # made for a 2-parameter regression, given a 4-parameter target: named before tracing
    # (JAX's dot_general error surfaced instead)
    four = infer.Target(lambda beta: -jnp.sum(beta**2), init=jnp.zeros(4))
    with pytest.raises(ValueError, match=r"failed at the target's starting point \(shapes \(4,\)"):
        infer.sample(0, four, infer.sgld(lr_loglik, lr_logprior, (LR_X, LR_Y)), num_samples=5)


def test_expected_calibration_error_by_hand():
    labels = np.array([0] * 8 + [1] * 2)
    calibrated = np.tile([0.8, 0.2], (10, 1))  # confidence 0.8, 80% right
    assert bnn.expected_calibration_error(calibrated, labels) == pytest.approx(0.0, abs=1e-12)
    overconfident = np.tile([0.95, 0.05], (10, 1))
    assert bnn.expected_calibration_error(overconfident, labels) == pytest.approx(0.15)


@pytest.mark.thorough  # the MAP baseline of the bnn benchmark, 3 s
def test_optax_point_estimate_on_digits_is_sane():
    problem = bnn.digits_problem(hidden=8)
    position, losses = bnn.fit_point_estimate(problem.target, steps=1000)
    assert float(losses[-1]) < float(losses[0])
    x, y = problem.test["test"]
    measured = bnn.classification_metrics(bnn.outputs(problem.target, bnn.single(position), x), y)
    assert measured["accuracy"] > 0.9 and measured["nll"] < 0.4 and measured["ece"] < 0.2


def test_regression_data_leave_a_gap_and_bands_widen_for_a_spread_of_draws():
    problem = bnn.regression_problem()
    x_train = problem.train[0]
    assert not np.any((x_train > bnn.GAP[0]) & (x_train < bnn.GAP[1]))
    assert np.all(np.abs(problem.test["outside"][0]) > bnn.TRAIN_RANGE[1])
    means = np.stack([np.zeros(5), np.ones(5)])
    mean, sd = bnn.predictive_bands(means, np.full((2, 5), 0.1))
    np.testing.assert_allclose(mean, 0.5)
    np.testing.assert_allclose(sd, math.sqrt(0.01 + 0.25))


@pytest.mark.thorough  # a refusal, 5 s
def test_a_module_in_training_mode_is_refused_and_in_eval_mode_samples():
    """Dropout in training mode failed deep in NNX (or, in eval mode, on its RNG key in the
    run's fingerprint); now training mode is refused naming the layer, eval mode runs."""

    class WithDropout(nnx.Module):
        def __init__(self, rngs):
            self.hidden = nnx.Linear(3, 4, rngs=rngs)
            self.drop = nnx.Dropout(0.5, rngs=rngs)
            self.out = nnx.Linear(4, 2, rngs=rngs)

        def __call__(self, x):
            return self.out(self.drop(jnp.tanh(self.hidden(x))))

    module = WithDropout(nnx.Rngs(0))
    with pytest.raises(ValueError, match=r"layer\(s\) drop are in training mode.*module.eval\(\)"):
        infer.Target.from_flax(module, loglik, (X, Y))
    module.eval()
    result = infer.sample(
        0, infer.Target.from_flax(module, loglik, (X, Y)), infer.mala(), num_samples=10
    )
    assert np.all(np.isfinite(result.stats["lp"]))


class WithDropout(nnx.Module):
    def __init__(self, dropout_rngs):
        self.hidden = nnx.Linear(3, 4, rngs=nnx.Rngs(0))
        self.drop = nnx.Dropout(0.5, rngs=dropout_rngs)
        self.out = nnx.Linear(4, 2, rngs=nnx.Rngs(1))

    def __call__(self, x):
        return self.out(self.drop(jnp.tanh(self.hidden(x))))


@pytest.mark.thorough  # an edge case, 4 s
def test_a_module_that_differs_only_in_its_unused_rng_key_resumes_the_run():
    """In eval mode Dropout draws nothing, but its RNG key was part of the target's data:
    a run of the same weights, rebuilt with another seed, was refused as a different run."""
    first, again = WithDropout(nnx.Rngs(0)), WithDropout(nnx.Rngs(1))
    first.eval(), again.eval()
    run = infer.sample(
        0, infer.Target.from_flax(first, loglik, (X, Y)), infer.rwmh(), num_samples=10
    )
    more = infer.Target.from_flax(again, loglik, (X, Y))
    assert infer.sample(0, more, infer.rwmh(), num_samples=5, resume=run).num_samples == 5


class IndexedMLP(nnx.Module):
    """TinyMLP whose output columns are picked by an integer nnx.Param."""

    def __init__(self, rngs):
        self.out = nnx.Linear(3, 2, rngs=rngs)
        self.index = nnx.Param(jnp.array([1, 0], jnp.int32))

    def __call__(self, x):
        return self.out(x)[:, self.index[...]]


def test_parameters_a_sampler_cannot_move_are_refused_by_name():
    """An integer nnx.Param was moved by noise and truncated back (out-of-range indices,
    clamped silently: a wrong posterior with a flat position, a float-index error with a
    tree one); 16-bit parameters were refused with a fix that does not apply."""
    with pytest.raises(TypeError, match=r"got index \(int32\)\. Hold integer values fixed"):
        infer.Target.from_flax(IndexedMLP(nnx.Rngs(0)), loglik, (X, Y), position="flat")
    half = TinyMLP(nnx.Rngs(0))
    half.hidden = nnx.Linear(3, 4, param_dtype=jnp.float16, rngs=nnx.Rngs(1))
    with pytest.raises(TypeError, match=r"hidden.bias \(float16\), .*param_dtype=jnp.float32"):
        infer.Target.from_flax(half, loglik, (X, Y))


def mean_loglik(model, data):  # a loss-style mean: not a sum over the examples
    return loglik(model, data) / data[0].shape[0]


def test_a_likelihood_that_is_not_a_sum_over_the_examples_is_refused_where_it_matters():
    """SGLD scales a batch's likelihood by N / B, so a mean sampled the likelihood to the
    power N / B (sd 0.18 against NUTS's 0.49, no word); LOO's terms summed to 20 times it.
    Without either, NUTS sampled the likelihood to the power 1 / N, the prior, without a
    word: the target now warns (a time series' likelihood need not be a sum) and declares
    no minibatch likelihood."""
    with pytest.raises(ValueError, match="log_likelihood_fn is not a sum over the examples"):
        infer.Target.from_flax(TinyMLP(nnx.Rngs(0)), mean_loglik, (X, Y), pointwise=True)
    with pytest.warns(UserWarning, match="not a sum over the examples.*time series"):
        target = infer.Target.from_flax(TinyMLP(nnx.Rngs(0)), mean_loglik, (X, Y))
    with pytest.raises(KeyError, match="'minibatch': log_likelihood_fn is not a sum"):
        target.notes["minibatch"]

    def by_the_batch(model, data):  # standardised by the batch's own statistics
        x, y = data
        standard = (x - x.mean(axis=0, keepdims=True)) / x.std(axis=0, keepdims=True)
        return loglik(model, (standard, y))

    with pytest.raises(ValueError, match="depends on the batch as a whole"):
        infer.Target.from_flax(TinyMLP(nnx.Rngs(0)), by_the_batch, (X, Y), pointwise=True)

    def not_for_one(model, data):  # a sum, but squeeze() breaks it for a batch of one
        x, y = data
        logp = jax.nn.log_softmax(model(x)).squeeze()
        return jnp.sum(jnp.take_along_axis(logp, y[:, None], axis=1))

    with warnings.catch_warnings():
        warnings.simplefilter("error")  # not taken for "not a sum": NUTS may still run on it
        target = infer.Target.from_flax(TinyMLP(nnx.Rngs(0)), not_for_one, (X, Y))
    with pytest.raises(KeyError, match="fails on a batch of one example"):
        target.notes["minibatch"]

    def mean_lr(beta, batch):
        return lr_loglik(beta, batch) / batch[0].shape[0]

    plain = infer.sgld(mean_lr, lr_logprior, (LR_X, LR_Y), step_size=LR_STEP, batch_size=50)
    mean_target = infer.Target(
        lambda beta, data: lr_logprior(beta) + mean_lr(beta, data), init=jnp.zeros(2),
        data=(LR_X, LR_Y),
    )  # fmt: skip
    with pytest.raises(ValueError, match="on 200 examples together it is"):
        infer.sample(0, mean_target, plain, num_chains=1, num_samples=10)


class Layers(nnx.Module):
    def __init__(self, rngs: nnx.Rngs, count: int = 12):
        self.layers = nnx.List([nnx.Linear(3, 3, rngs=rngs) for _ in range(count)])

    def __call__(self, x):
        for layer in self.layers:
            x = jnp.tanh(layer(x))
        return x


class PoissonRate(nnx.Module):
    def __init__(self):
        self.lin = nnx.Linear(1, 1, rngs=nnx.Rngs(0))
        self.lin.bias[...] = jnp.array([11.5])  # counts around 1e5
        self.lin.kernel[...] = jnp.array([[0.1]])

    def __call__(self, x):
        return self.lin(x)[:, 0]  # log rate


def poisson_in_three_sums(model, data):  # a sum over the examples, its terms apart
    x, y = data
    eta = model(x)
    return jnp.sum(y * eta) - jnp.sum(jnp.exp(eta)) - jnp.sum(jax.scipy.special.gammaln(y + 1))


OFFSET = np.array([0.0])  # float64


def poisson_offset(model, data):
    x, y = data
    eta = model(x) + OFFSET
    return jnp.sum(y * eta) - jnp.sum(jnp.exp(eta)) - jnp.sum(jax.scipy.special.gammaln(y + 1))


def _offset_rate(model, x):  # a helper reading the float64 global
    return model(x) + OFFSET


def poisson_offset_by_helper(model, data):
    x, y = data
    eta = _offset_rate(model, x)
    return jnp.sum(y * eta) - jnp.sum(jnp.exp(eta)) - jnp.sum(jax.scipy.special.gammaln(y + 1))


@jax.jit
def _offset_jitted(eta):  # a jitted helper reading it: its own cache held the 32-bit copy
    return eta + OFFSET


def poisson_offset_by_jitted_helper(model, data):
    x, y = data
    eta = _offset_jitted(model(x))
    return jnp.sum(y * eta) - jnp.sum(jnp.exp(eta)) - jnp.sum(jax.scipy.special.gammaln(y + 1))


def test_a_sum_whose_float32_terms_cancel_is_a_sum_with_a_warning():
    """Three sums of about 1.6e7 cancelling to about -100: in float32 the batch's value and
    its examples' differ by more than round-off, and the likelihood was called "not a sum"
    (a mean?), its minibatches dropped and pointwise=True refused. Checked again in float64,
    it is a sum; the warning says float32 rounds it."""
    rng = np.random.default_rng(0)
    x = rng.normal(size=(200, 1)).astype(np.float32)
    y = rng.poisson(np.exp(11.5 + 0.1 * x[:, 0])).astype(np.float32)
    with pytest.warns(UserWarning, match="a sum over the examples, but in float32 it loses"):
        target = infer.Target.from_flax(
            PoissonRate(), poisson_in_three_sums, (x, y), prior=20.0, pointwise=True
        )
    assert target.notes["minibatch"]["num_data"] == 200
    with jax.enable_x64(True), pytest.warns(UserWarning, match="in float32 it loses"):
        # 64-bit floats on, the module's parameters still float32 (Flax's param_dtype): it
        # was refused so, as the warning's advice to enable them led to
        infer.Target.from_flax(
            PoissonRate(), poisson_in_three_sums, (x, y), prior=20.0, pointwise=True
        )
    likelihoods = (poisson_offset, poisson_offset_by_helper, poisson_offset_by_jitted_helper)
    for likelihood in likelihoods:  # reading a float64
        # global, itself or through a helper: JAX handed its float32 copy to the float64
        # check, which failed ("not a sum")
        with pytest.warns(UserWarning, match="in float32 it loses"):
            target = infer.Target.from_flax(
                PoissonRate(), likelihood, (x, y), prior=20.0, pointwise=True
            )
        infer.sample(0, target, infer.rwmh(), num_samples=10)  # in float32 after it
    mean = lambda model, data: poisson_in_three_sums(model, data) / len(data[1])  # noqa: E731
    with pytest.raises(NotASum, match="not a sum over the examples"):  # in float64 too
        infer.Target.from_flax(PoissonRate(), mean, (x, y), prior=20.0, pointwise=True)
    # the check in float64 drops the compiled programs only for a likelihood reading a
    # 64-bit NumPy array: a mean (warned about) cost every program of the process before
    target = infer.Target(lambda b: -0.5 * jnp.sum(b**2), init=jnp.zeros(2))
    infer.sample(0, target, infer.rwmh(), num_samples=10)
    with pytest.warns(UserWarning, match="not a sum"):
        infer.Target.from_flax(PoissonRate(), mean, (x, y), prior=20.0)
    assert infer.sample(0, target, infer.rwmh(), num_samples=10).info["cache_hit"]

    def mean_of_float32(model, data):  # its float64 check fails: the message says so
        if data[1].dtype != jnp.float32:
            raise TypeError("float32 data only")
        return mean(model, data)

    with pytest.raises(NotASum, match="in float64, .* it failed: TypeError: float32 data only"):
        infer.Target.from_flax(PoissonRate(), mean_of_float32, (x, y), prior=20.0, pointwise=True)


@pytest.mark.parametrize("position", ["tree", "flat"])
def test_the_module_and_position_helpers_match_parameters_by_name(position):
    """Twelve layers under string keys "0".."11" (draw names split back into a dict) were
    taken in leaf order, "10" before "2": another network, silently."""
    module = Layers(nnx.Rngs(0))
    target = infer.Target.from_flax(module, loglik, (X, Y % 3), position=position)
    helpers = target.notes["flax"]
    params = nnx.to_pure_dict(nnx.state(module, nnx.Param))
    renamed = {"layers": {str(i): layer for i, layer in params["layers"].items()}}
    expected = np.asarray(module(X))
    np.testing.assert_allclose(np.asarray(helpers.module(renamed)(X)), expected, rtol=1e-6)
    np.testing.assert_allclose(
        np.asarray(helpers.module(nnx.state(module, nnx.Param))(X)), expected
    )
    assert ravel(helpers.position(renamed)) == pytest.approx(ravel(target.init))
    stacked = jax.tree.map(lambda leaf: np.stack([leaf, leaf]), params)
    with pytest.raises(ValueError, match=r"has shape \(2, 3\), the module's \(3,\)"):
        helpers.module(stacked)
    del renamed["layers"]["11"]
    with pytest.raises(ValueError, match=r"lack \['layers.11.bias', 'layers.11.kernel'\]"):
        helpers.position(renamed)


class Counter(nnx.Module):
    def __init__(self, rngs: nnx.Rngs):
        self.inner = TinyMLP(rngs)
        self.calls = nnx.Variable(jnp.zeros((), jnp.int32))

    def __call__(self, x):
        self.calls.value += 1
        return self.inner(x)


def test_a_module_that_updates_its_state_is_refused_when_the_target_is_made():
    with pytest.raises(ValueError, match="the module updates its own state when called"):
        infer.Target.from_flax(Counter(nnx.Rngs(0)), loglik, (X, Y))


def test_a_linen_module_wrapped_by_tonnx_runs_as_the_refusals_say():
    """A Linen module is refused with the advice to wrap it in nnx.bridge.ToNNX, which draws
    a key from its own nnx.Rngs on every call: that was refused in turn as "updating its
    state", with the advice to call .eval(), which does not help."""
    import flax.linen as nn

    class LinenMLP(nn.Module):
        @nn.compact
        def __call__(self, x):
            return nn.Dense(2)(jnp.tanh(nn.Dense(4)(x)))

    with pytest.raises(TypeError, match=r"ToNNX \(then call it .* model\(x, rngs=jax.random"):
        infer.Target.from_flax(LinenMLP(), loglik, (X, Y))
    wrapped = nnx.bridge.ToNNX(LinenMLP(), rngs=nnx.Rngs(0))
    nnx.bridge.lazy_init(wrapped, X)
    with pytest.raises(ValueError, match=r"draws a random key .* model\(x, rngs=jax.random.key"):
        infer.Target.from_flax(wrapped, loglik, (X, Y))

    def keyed_loglik(model, data):
        inputs, labels = data
        logits = jax.nn.log_softmax(model(inputs, rngs=jax.random.key(0)))
        return jnp.sum(jnp.take_along_axis(logits, labels[:, None], axis=1))

    target = infer.Target.from_flax(wrapped, keyed_loglik, (X, Y))
    assert target.notes["flax"].names == (
        "Dense_0.bias",
        "Dense_0.kernel",
        "Dense_1.bias",
        "Dense_1.kernel",
    )
    assert np.isfinite(float(target.logdensity(target.init)))


@pytest.mark.thorough  # a rarer flag, 3 s
def test_a_diverged_sgld_chain_is_said_to_be_invalid_not_rejected():
    """SGLD has no accept/reject: a NaN step is skipped, and the chain frozen far away was
    reported as 'rejected, so the draws are still valid'."""
    too_big = infer.sgld(lr_loglik, lr_logprior, (LR_X, LR_Y), step_size=5e3 * LR_STEP)
    with pytest.warns(
        infer.DiagnosticWarning, match="steps had a log density or gradient that was not finite"
    ):
        result = infer.sample(0, LR_TARGET, too_big, num_chains=1, num_samples=200)
    table = infer.compare({"sgld": result}, warn=False)
    assert "nonfinite" in table.loc["sgld", "flags"]
    with pytest.warns(infer.DiagnosticWarning) as caught:
        infer.compare({"sgld": result})
    said = next(str(w.message) for w in caught if "were skipped" in str(w.message))
    assert "-inf: outside the support" in said and "still valid" not in said


@pytest.mark.thorough  # a refusal, 2 s
def test_two_results_passed_to_compare_one_by_one_are_refused():
    result = infer.sample(0, LR_TARGET, infer.rwmh(), num_chains=2, num_samples=20)
    with pytest.raises(TypeError, match="pass the runs together"):
        infer.compare(result, result)


class WhileLoopModel(nnx.Module):
    """A likelihood without a reverse-mode gradient (a while_loop): gradient-free samplers
    still run on it, so making the target must not take its gradient."""

    def __init__(self, rngs: nnx.Rngs):
        self.scale = nnx.Param(jnp.ones(()))

    def __call__(self, x):
        def halve(value):
            return value / 2.0

        factor = jax.lax.while_loop(lambda v: jnp.abs(v) > 10.0, halve, self.scale.value)
        return factor * x


@pytest.mark.thorough  # an edge case, 2.5 s
def test_a_likelihood_without_a_gradient_still_makes_a_target_for_gradient_free_samplers():
    def loglik_gaussian(model, data):
        return -0.5 * jnp.sum((model(data[0][:, 0]) - data[1]) ** 2)

    target = infer.Target.from_flax(WhileLoopModel(nnx.Rngs(0)), loglik_gaussian, (X, Y * 1.0))
    result = infer.sample(0, target, infer.rwmh(), num_chains=2, num_samples=20, num_warmup=20)
    assert np.isfinite(np.asarray(result.draws["scale"])).all()


def test_the_sum_check_allows_float32_round_off_of_a_float64_position():
    """Parameters in float64 computed in float32 (a layer's dtype): the float64 tolerance
    refused a true sum whose two values printed the same."""
    from infer.per_example import check_sum_over_examples

    rng = np.random.default_rng(3)
    x = rng.normal(size=(2000, 8)).astype(np.float32)
    y = rng.normal(size=2000).astype(np.float32)

    def loglik32(beta, batch):
        bx, by = batch
        return -0.5 * jnp.sum((by - bx @ beta.astype(jnp.float32)) ** 2)

    with jax.enable_x64(True):
        check_sum_over_examples(loglik32, jnp.ones(8, jnp.float64), (x, y), "loglik32")


def test_the_flax_helpers_say_what_they_take_when_given_something_else():
    """A parameter pytree given to params() was "missing" every parameter; a module given
    to module() held parameters named ['']."""
    module = TinyMLP(nnx.Rngs(0))
    flax_notes = infer.Target.from_flax(module, loglik, (X, Y)).notes["flax"]
    pytree = nnx.to_pure_dict(nnx.state(module, nnx.Param))
    with pytest.raises(TypeError, match="takes the named draws, result.draws"):
        flax_notes.params(pytree)
    with pytest.raises(TypeError, match=r"got an nnx.Module: pass nnx.state\(module, nnx.Param\)"):
        flax_notes.module(module)
    assert flax_notes.module(pytree) is not None


def test_a_likelihood_that_calls_a_module_from_outside_is_warned_about():
    """log_likelihood_fn(model, data) calling the module it closes over (the one passed to
    from_flax, in scope) rather than ``model``: NUTS returned the N(0, 1) prior without a
    word. A likelihood that reads only part of the parameters is fine."""
    module = TinyMLP(nnx.Rngs(0))

    def outside(model, data):
        return loglik(module, data)

    with pytest.warns(UserWarning, match=r"does not depend on the module's parameters") as said:
        infer.Target.from_flax(module, outside, (X, Y))
    assert said[0].filename == __file__

    def hidden_only(model, data):
        return jnp.sum(jnp.tanh(model.hidden(data[0])))

    with warnings.catch_warnings():
        warnings.simplefilter("error")
        for position in ("tree", "flat"):
            infer.Target.from_flax(module, loglik, (X, Y), position=position)
        infer.Target.from_flax(module, hidden_only, (X, Y))
