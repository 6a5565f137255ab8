"""ADVI: exact recovery of Gaussian targets, the Pareto k-hat warning, and its plumbing."""

from __future__ import annotations

import warnings

import jax.numpy as jnp
import numpy as np
import pytest
from pictures import assert_drawn
from stats_checks import assert_moments_match, threshold

import infer
from models import targets

pytestmark = pytest.mark.slow  # a module `make test-fast` leaves out

MEAN = np.array([1.0, -2.0, 0.5, 3.0])
COVARIANCE = np.array(
    [
        [2.0, 0.8, -0.3, 0.0],
        [0.8, 1.0, 0.2, 0.1],
        [-0.3, 0.2, 0.5, -0.1],
        [0.0, 0.1, -0.1, 0.3],
    ]
)


def gaussian_target():
    precision = np.linalg.inv(COVARIANCE)

    def logdensity_fn(x):
        d = x - MEAN
        return -0.5 * d @ precision @ d

    return infer.Target(logdensity_fn, init=jnp.zeros(4), name="gaussian_4d")


def test_fullrank_recovers_mean_and_covariance(seed):
    num_steps, num_elbo_draws = 4000, 16
    result = infer.advi(
        seed,
        gaussian_target(),
        "fullrank",
        num_steps=num_steps,
        num_elbo_draws=num_elbo_draws,
        num_draws=5000,
    )
    draws = result.draws["x"].reshape(-1, 4)
    # Two Monte Carlo errors, both ~ 1/sqrt(count): the fit's (averaged stochastic gradients
    # over the second half carry the error of num_elbo_draws * num_steps / 2 draws from q,
    # Polyak & Juditsky 1992) and that of the independent draws made from the fitted q.
    # Standard errors of a Gaussian's sample mean and covariance: sqrt(S_ii / n) and
    # sqrt((S_ij^2 + S_ii S_jj) / n).
    n_draws, n_fit = draws.shape[0], num_elbo_draws * num_steps / 2
    variance = np.diag(COVARIANCE)
    cov_spread = COVARIANCE**2 + np.outer(variance, variance)
    upper = np.triu_indices(4)
    limit = threshold(2 * (4 + 10))

    scale_tril = np.asarray(result.info["scale_tril"])
    fitted_mean, fitted_cov = np.asarray(result.info["mean"]), scale_tril @ scale_tril.T
    assert np.max(np.abs(fitted_mean - MEAN) / np.sqrt(variance / n_fit)) < limit
    assert np.max((np.abs(fitted_cov - COVARIANCE) / np.sqrt(cov_spread / n_fit))[upper]) < limit

    both = 1.0 / n_draws + 1.0 / n_fit
    z_mean = np.abs(draws.mean(0) - MEAN) / np.sqrt(variance * both)
    z_cov = np.abs(np.cov(draws.T) - COVARIANCE) / np.sqrt(cov_spread * both)
    assert np.max(z_mean) < limit, z_mean
    assert np.max(z_cov[upper]) < limit, z_cov
    assert result.info["pareto_k"] < result.info["pareto_k_threshold"]


@pytest.mark.thorough  # a second target of the full-rank fit, 4 s
def test_fullrank_on_a_builtin_correlated_target_matches_ground_truth(seed):
    target = targets.get("correlated_2d")
    result = infer.advi(seed, target, "fullrank", num_steps=3000, num_draws=2500)
    assert_moments_match(result, target.ground_truth)


def test_meanfield_cannot_see_correlation_and_khat_says_so():
    target = targets.get("correlated_2d")
    with pytest.warns(infer.DiagnosticWarning, match="Pareto k-hat"):
        result = infer.advi(0, target, "meanfield", num_steps=3000)
    assert result.info["pareto_k"] > result.info["pareto_k_threshold"]
    # Mean field underestimates the marginal spread of correlated coordinates.
    assert np.all(
        result.draws["x"].reshape(-1, 2).std(0) < np.asarray(target.ground_truth.std["x"])
    )


@pytest.mark.thorough  # a rarer warning, 2.5 s
def test_a_fit_that_barely_moved_is_told_to_take_more_steps():
    """One step leaves q at its start: k-hat's warning once blamed the posterior's shape
    alone and sent the user to reparameterise."""
    precision = jnp.linalg.inv(jnp.array([[1.0, 0.9], [0.9, 1.0]]))
    mean = jnp.array([3.0, -1.0])
    target = infer.Target(
        lambda x: -0.5 * (x - mean) @ precision @ (x - mean), init=jnp.zeros(2), name="shifted"
    )
    with pytest.warns(infer.DiagnosticWarning, match=r"num_steps=1 too few, or a learning_rate"):
        infer.advi(0, target, "fullrank", num_steps=1, num_draws=100)
    with pytest.warns(infer.DiagnosticWarning) as caught:  # steps too large: it broke down
        infer.advi(0, target, "fullrank", num_steps=200, num_draws=100, learning_rate=1e4)
    said = [str(w.message) for w in caught if "Pareto k-hat" in str(w.message)]
    assert len(said) == 1 and "the fit broke down (steps skipped" in said[0]
    assert "too few" not in said[0]


@pytest.mark.thorough  # a rarer warning, 3 s
def test_scales_collapsed_by_a_learning_rate_too_large_are_told_to_lower_it():
    """A learning rate of 10 on a standard normal drove q's sds to 1e-20; the warnings said
    to raise num_steps (or learning_rate), and ten times the steps changed nothing. The
    default learning rate on the same target leaves the scales alone."""
    target = infer.Target(
        lambda p: -0.5 * jnp.sum((p["a"] - 1.0) ** 2) - 0.5 * p["b"] ** 2,
        init={"a": jnp.zeros(2), "b": jnp.zeros(())},
        name="standard",
    )
    with pytest.warns(infer.DiagnosticWarning, match=r"q's scale collapsed.*learning_rate=1\b"):
        infer.advi(0, target, num_steps=200, learning_rate=10.0, num_draws=100)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        infer.advi(0, target, num_steps=200, num_draws=100)
    assert not any("collapsed" in str(w.message) for w in caught)


@pytest.mark.thorough  # a flag, 3 s
def test_a_fit_stopped_short_while_wider_than_the_posterior_is_flagged_unsettled():
    """30 steps from init_scale 1 leave q at mean ~0.2, sd ~0.8 on a posterior N(mu, 0.3^2):
    its weights are bounded, k-hat is low, and no check said a word. The gap between log Z
    by importance sampling and the ELBO (KL(q || p), 11 nats here) does; the fit run to its
    default number of steps (KL ~0) gets no such word."""
    mu = jnp.array([1.0, 0.5, -0.5])
    narrow = infer.Target(
        lambda x: -0.5 * jnp.sum(((x - mu) / 0.3) ** 2), init=jnp.zeros(3), name="narrow"
    )
    with pytest.warns(infer.DiagnosticWarning, match=r"nats \(KL\) from the posterior.*stopped"):
        short = infer.advi(0, narrow, "fullrank", num_steps=30)
    assert short.info["pareto_k"] < short.info["pareto_k_threshold"]  # k-hat cannot see it
    table = infer.compare({"short": short}, warn=False)
    assert "unsettled" in table.loc["short", "flags"].split(",")
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        settled = infer.advi(0, narrow, "fullrank")
    assert not any("nats (KL)" in str(w.message) for w in caught)
    assert settled.info["kl_gap"] < 0.1
    assert (
        "unsettled" not in infer.compare({"settled": settled}, warn=False).loc["settled", "flags"]
    )


# k-hat's warning stays in `make test`: test_meanfield_cannot_see_correlation_and_khat_says_so
@pytest.mark.thorough
@pytest.mark.parametrize("family", ["meanfield", "fullrank"])
def test_funnel_khat_warns(family):
    with pytest.warns(infer.DiagnosticWarning, match="Pareto k-hat"):
        result = infer.advi(1, targets.get("funnel"), family, num_steps=3000)
    assert result.info["pareto_k"] > 0.7
    table = infer.compare({"advi": result}, warn=False)
    assert "pareto_k" in table.loc["advi", "flags"]


@pytest.mark.thorough  # 12 s; test_workflow fits ADVI to a NumPyro model
def test_numpyro_model_reported_in_constrained_space():
    target = targets.get("conjugate")
    # In unconstrained space this posterior (Beta and Gamma, through logit and log) has
    # exponential tails, heavier than any Gaussian's: k-hat rightly flags the importance
    # ratios, though the moments come out close.
    with pytest.warns(infer.DiagnosticWarning, match="Pareto k-hat") as caught:
        result = infer.advi(0, target, "fullrank", num_steps=2000, num_draws=1000)
    said = " ".join(str(w.message) for w in caught)
    assert "Try a reparameterisation, or MCMC" in said and "family=" not in said  # it is full
    assert set(result.draws) == {"p", "rate"}
    for name, value in result.draws.items():
        assert value.shape == (4, 1000), name
        assert (
            abs(value.mean() - target.ground_truth.mean[name]) < 0.1 * target.ground_truth.std[name]
        )
    assert 0.0 < result.draws["p"].min() and result.draws["p"].max() < 1.0
    assert result.draws["rate"].min() > 0.0
    assert result.to_arviz()["posterior"] is not None
    assert np.isfinite(result.info["elbo"]) and result.info["elbo_se"] > 0


def test_same_seed_same_draws_and_save_load_round_trip(tmp_path):
    target = gaussian_target()
    first = infer.advi(3, target, num_steps=500, num_draws=100)
    second = infer.advi(3, target, num_steps=500, num_draws=100)
    np.testing.assert_array_equal(first.draws["x"], second.draws["x"])
    assert first.info["elbo_trace"] == second.info["elbo_trace"]
    path = tmp_path / "advi.nc"
    first.save(path)
    loaded = infer.load(path)
    np.testing.assert_array_equal(loaded.draws["x"], first.draws["x"])
    assert loaded.info["pareto_k"] == first.info["pareto_k"]
    assert len(loaded.info["elbo_trace"]) == 500


def test_elbo_rises_and_plots(tmp_path):
    result = infer.advi(0, gaussian_target(), "fullrank", num_steps=2000, num_draws=200)
    trace = np.asarray(result.info["elbo_trace"])
    assert trace[-200:].mean() > trace[:20].mean()
    # At the optimum q = p, so ELBO = log Z = log((2 pi)^(d/2) |S|^(1/2)) for this target.
    log_z = 0.5 * np.log(np.linalg.det(2 * np.pi * COVARIANCE))
    assert abs(result.info["elbo"] - log_z) < 6 * result.info["elbo_se"] + 1e-3
    infer.plot(result, "elbo", path=tmp_path / "elbo.png")
    assert_drawn(tmp_path / "elbo.png")


@pytest.mark.thorough  # an RWMH run and a plot, 3 s; test_plots overlays NUTS and ADVI
def test_a_fit_and_a_markov_chain_share_a_density_plot(tmp_path):
    fit = infer.advi(0, gaussian_target(), "fullrank", num_steps=2000, num_draws=200)
    mcmc = infer.sample(0, gaussian_target(), infer.rwmh(), num_samples=200, num_warmup=200)
    infer.plot({"advi": fit, "rwmh": mcmc}, "dist", path=tmp_path / "dist.png")
    assert_drawn(tmp_path / "dist.png")


def test_nonfinite_steps_are_skipped_and_counted():
    # A log density that is -inf for x < 0: early draws from a wide q fall there.
    target = infer.Target(
        lambda x: jnp.where(x[0] > 0, -0.5 * (x[0] - 3.0) ** 2, -jnp.inf),
        init=jnp.array([3.0]),
        name="half",
    )
    with pytest.warns(infer.DiagnosticWarning, match="skipped"):
        result = infer.advi(0, target, num_steps=300, num_draws=100, init_scale=3.0)
    assert result.info["num_nonfinite_steps"] > 0
    assert np.all(np.isfinite(np.asarray(result.info["mean"])))


@pytest.mark.thorough  # a rarer warning, 3 s
def test_draws_where_the_target_has_no_density_are_warned_about_and_flagged():
    """A standard normal cut at x0 = 2 (NaN beyond): about 2% of the fitted Gaussian's draws
    (expected 23 of 1,000; none with probability e^-23) lie there. PSIS reads their weights
    as zeros, so k-hat stayed low, and they were returned as posterior draws without a word."""
    target = infer.Target(
        lambda x: jnp.where(x[0] > 2.0, jnp.nan, -0.5 * jnp.sum(x**2)), init=jnp.zeros(2)
    )
    with pytest.warns(infer.DiagnosticWarning, match=r"of 1000 draws lie where the target's"):
        fit = infer.advi(0, target, num_steps=500, num_draws=250)
    assert fit.info["num_nonfinite_draws"] > 0 and fit.info["pareto_k"] < 0.7
    with pytest.warns(infer.DiagnosticWarning, match=r"draws lie where"):
        assert infer.compare({"advi": fit}).loc["advi", "flags"] == "pareto_k"


@pytest.mark.parametrize(
    ("kwargs", "match"),
    [
        ({"family": "full"}, "family"),
        ({"num_steps": 0}, "num_steps"),
        ({"learning_rate": -1.0}, "learning_rate"),
        ({"init_scale": 0.0}, "init_scale"),
        # one mean, not one per chain (the message spoke of num_chains=1)
        ({"init": np.zeros(3)}, r"init has shape \(3,\), where one point's is \(4,\)\.$"),
        ({"init": np.zeros((1, 4))}, r"where one point's is \(4,\)\.$"),
    ],
)
def test_bad_arguments_are_named(kwargs, match):
    with pytest.raises(ValueError, match=match):
        infer.advi(0, gaussian_target(), **kwargs)


def test_target_must_be_a_target():
    with pytest.raises(TypeError, match="infer.Target"):
        infer.advi(0, lambda x: -(x**2))
    # "'str' object is not callable", after compiling the fit
    with pytest.raises(TypeError, match=r"progress must be True, False or a tqdm class"):
        infer.advi(0, gaussian_target(), progress="yes")


def test_a_target_without_a_starting_point_is_told_to_pass_one_to_advi():
    target = infer.Target(lambda x: -0.5 * jnp.sum(x**2), name="no_init")
    with pytest.raises(ValueError, match=r"to infer.advi \(one point\)\.$"):
        infer.advi(0, target, num_steps=10)


@pytest.mark.thorough  # an edge case, 2 s
def test_too_few_draws_for_khat_say_so_instead_of_blaming_the_fit():
    with pytest.warns(infer.DiagnosticWarning) as caught:
        infer.advi(0, gaussian_target(), "fullrank", num_steps=200, num_draws=5, num_chains=2)
    messages = [str(w.message) for w in caught]
    assert any("Pareto k-hat needs at least 20 draws and there are 10" in m for m in messages)
    assert not any("misses the posterior's shape" in m for m in messages)


@pytest.mark.thorough  # a warning, 4 s
def test_a_fit_stopped_while_the_elbo_still_rises_is_warned_about():
    """300 steps leave a shifted Gaussian's mean at 1.8 of 3.0, with Pareto k-hat under its
    threshold: no warning said so. The ELBO's trend over the last half of the steps does;
    the same fit run to the default number of steps converges and gets no warning."""
    shifted = infer.Target(
        lambda x: -0.5 * jnp.sum((x - 3.0) ** 2), init=jnp.zeros(2), name="shifted"
    )
    for seed in range(3):
        with pytest.warns(
            infer.DiagnosticWarning, match="ELBO rose by .* averaged into the fitted q.*num_steps"
        ):
            short = infer.advi(seed, shifted, num_steps=300)
        assert np.all(np.asarray(short.draws["x"]).mean(axis=(0, 1)) < 2.5)
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            infer.advi(seed, shifted)
        assert not any("ELBO rose" in str(w.message) for w in caught)


@pytest.mark.thorough  # an option, 4 s
def test_an_optax_optimizer_of_ones_own_is_the_one_that_fits(tmp_path):
    import optax

    target = gaussian_target()
    # a zero step leaves q where it started: the given optimiser is the one used
    with pytest.warns(infer.DiagnosticWarning, match="stopped short"):  # and it is told
        frozen = infer.advi(0, target, num_steps=50, num_draws=50, optimizer=optax.sgd(0.0))
    np.testing.assert_array_equal(frozen.info["mean"], np.zeros(4))
    np.testing.assert_allclose(np.diag(frozen.info["scale_tril"]), np.ones(4))
    # a schedule with clipping fits as Adam does: the ELBO at the optimum is log Z
    schedule = optax.cosine_decay_schedule(0.05, 2000, alpha=0.1)
    optimizer = optax.chain(optax.clip_by_global_norm(10.0), optax.adam(schedule))
    fit = infer.advi(0, target, "fullrank", num_steps=2000, num_draws=200, optimizer=optimizer)
    log_z = 0.5 * np.log(np.linalg.det(2 * np.pi * COVARIANCE))
    assert abs(fit.info["elbo"] - log_z) < 6 * fit.info["elbo_se"] + 1e-3
    assert fit.settings["optimizer"] == "custom" and fit.settings["learning_rate"] is None
    fit.save(tmp_path / "fit.nc")
    assert infer.load(tmp_path / "fit.nc").settings["optimizer"] == "custom"
    # one that reads the loss (value=): it failed inside tracing, the loss not given
    plateau = optax.chain(optax.adam(0.05), optax.contrib.reduce_on_plateau(accumulation_size=100))
    fit = infer.advi(0, target, "fullrank", num_steps=2000, num_draws=200, optimizer=plateau)
    assert abs(fit.info["elbo"] - log_z) < 6 * fit.info["elbo_se"] + 1e-3


@pytest.mark.parametrize(
    ("kwargs", "error", "match"),
    [
        ({"optimizer": "adam"}, TypeError, r"GradientTransformation .* got str"),
        ({"optimizer": "uncalled"}, TypeError, r"the function adam: call it .* optax\.adam\("),
        ({"optimizer": "adam(0.1)", "learning_rate": 0.1}, ValueError, "Give one of them"),
        # a line search: a bare "missing 3 required keyword-only arguments" from inside
        ({"optimizer": "lbfgs"}, TypeError, r"line search \(optax.lbfgs\) cannot run on it"),
    ],
)
def test_a_bad_optimizer_is_named(kwargs, error, match):
    import optax

    given = {"uncalled": optax.adam, "adam(0.1)": optax.adam(0.1), "lbfgs": optax.lbfgs()}
    kwargs = {**kwargs, "optimizer": given.get(kwargs["optimizer"], kwargs["optimizer"])}
    with pytest.raises(error, match=match):
        infer.advi(0, gaussian_target(), **kwargs)
