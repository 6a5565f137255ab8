"""The Bayesian workflow with ArviZ: a NumPyro model's result carries log_likelihood,
observed_data and constant_data; predictive checks add the predictive groups; ArviZ's LOO,
model comparison and predictive plots work on it as on ``az.from_numpyro``; infer.compare
ranks models by elpd_loo; plain targets can carry a log likelihood; the pass is chunked."""

import dataclasses
import warnings

import arviz as az
import jax
import jax.numpy as jnp
import matplotlib
import numpy as np
import numpyro
import numpyro.distributions as dist
import pytest

import infer
from infer import loglik
from models import targets

pytestmark = pytest.mark.slow  # a module `make test-fast` leaves out

matplotlib.use("Agg")

RNG = np.random.default_rng(0)
X = RNG.normal(size=100).astype(np.float32)
Y = (1.0 + 2.0 * X + RNG.normal(size=100)).astype(np.float32)


def linear(x, y=None):
    alpha = numpyro.sample("alpha", dist.Normal(0.0, 5.0))
    beta = numpyro.sample("beta", dist.Normal(0.0, 5.0))
    sigma = numpyro.sample("sigma", dist.HalfNormal(2.0))
    numpyro.sample("y", dist.Normal(alpha + beta * x, sigma), obs=y)


def constant(x, y=None):  # a worse model of the same data: no slope
    alpha = numpyro.sample("alpha", dist.Normal(0.0, 5.0))
    sigma = numpyro.sample("sigma", dist.HalfNormal(2.0))
    numpyro.sample("y", dist.Normal(alpha + 0.0 * x, sigma), obs=y)


@pytest.fixture(scope="module")
def runs():
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", infer.DiagnosticWarning)
        out = {}
        for model in (linear, constant):
            target = infer.Target.from_numpyro(model, X, y=Y)
            result = infer.sample(0, target, infer.nuts(), num_samples=500, num_warmup=300)
            out[model.__name__] = (target, infer.predictive(result, target))
    return out


def test_the_result_has_the_groups_arviz_needs(runs):
    target, result = runs["linear"]
    tree = result.to_arviz()
    assert {
        "posterior",
        "sample_stats",
        "log_likelihood",
        "observed_data",
        "constant_data",
        "posterior_predictive",
        "prior",
        "prior_predictive",
    } <= set(tree.children)
    assert tree["log_likelihood"]["y"].dims == ("chain", "draw", "y_dim_0")
    assert tree["log_likelihood"]["y"].shape == (4, 500, 100)
    np.testing.assert_array_equal(tree["observed_data"]["y"].values, Y)
    np.testing.assert_array_equal(tree["constant_data"]["x"].values, X)
    assert tree["posterior_predictive"]["y"].shape == (4, 500, 100)
    assert tree["prior_predictive"]["y"].shape == (1, 500, 100)
    assert set(tree["prior"].data_vars) == {"alpha", "beta", "sigma"}
    # the pointwise log likelihood is the model's: check one draw by hand
    draws = result.draws
    c, d, i = 2, 17, 5
    mean = draws["alpha"][c, d] + draws["beta"][c, d] * X[i]
    expected = dist.Normal(mean, draws["sigma"][c, d]).log_prob(Y[i])
    assert float(tree["log_likelihood"]["y"][c, d, i]) == pytest.approx(float(expected), 1e-5)
    # the posterior predictive scatters around the data with the fitted noise
    simulated = tree["posterior_predictive"]["y"].values
    assert abs(np.mean(simulated) - np.mean(Y)) < 0.2
    assert np.std(simulated - np.mean(simulated)) == pytest.approx(np.std(Y), rel=0.15)


def test_arviz_loo_compare_and_plots_work_on_it(runs):
    trees = {name: result.to_arviz() for name, (_, result) in runs.items()}
    loo = az.loo(trees["linear"])
    assert np.isfinite(loo.elpd) and loo.p == pytest.approx(3.0, abs=1.0)
    ranking = az.compare(trees)
    assert ranking.index[0] == "linear"  # the model with the slope predicts better
    assert ranking.loc["constant", "elpd_diff"] < -50  # worse by much more than its SE
    assert az.plot_ppc_dist(trees["linear"]) is not None
    assert az.plot_loo_pit(trees["linear"]) is not None


def _compared(runs):
    results = {name: result for name, (_, result) in runs.items()}
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", infer.DiagnosticWarning)
        return results, infer.compare(results)


def test_compare_adds_elpd_loo_columns_for_models_of_the_same_data(runs):
    results, table = _compared(runs)
    assert table.loc["linear", "elpd_loo"] > table.loc["constant", "elpd_loo"]
    expected = az.loo(results["linear"].to_arviz())
    assert table.loc["linear", "elpd_loo"] == pytest.approx(expected.elpd, rel=1e-9)
    assert table.loc["linear", "elpd_loo_se"] == pytest.approx(expected.se, rel=1e-9)
    assert table.loc["linear", "pareto_k_above_0.7"] == 0


@pytest.mark.thorough  # 11 plots, 12 s; test_cli draws a report, test_plots a PPC plot
def test_the_report_of_models_shows_a_ppc_plot_per_run(runs, tmp_path):
    results, table = _compared(runs)
    from infer.report import write_report

    index = write_report(results, table, tmp_path / "report")
    assert (tmp_path / "report" / "ppc_linear.png").stat().st_size > 0
    assert "ppc_linear.png" in index.read_text()


def test_an_influential_observation_is_warned_about_by_model(runs):
    """The last point moved to an outlier a normal likelihood can't hold. The data keep their
    shapes and the run its lengths, so the fixture's compiled programs are reused."""
    x = np.append(X[:-1], 4.0).astype(np.float32)
    y = np.append(Y[:-1], 60.0).astype(np.float32)
    target = infer.Target.from_numpyro(linear, x, y=y)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", infer.DiagnosticWarning)
        result = infer.sample(1, target, infer.nuts(), num_samples=500, num_warmup=300)
    with pytest.warns(infer.DiagnosticWarning, match=r"outlier \(linear\): 1 of 100 obs.*k-hat"):
        table = infer.compare({"outlier": result})
    assert "loo_pareto_k" in table.loc["outlier", "flags"].split(",")  # the table says so too


def _with_log_likelihood(result, values):
    """A copy of ``result`` whose ``log_likelihood`` group's ``y`` is ``values``."""
    groups = {**result.groups, "log_likelihood": {"y": values}}
    return dataclasses.replace(result, groups=groups)


def test_observations_scored_as_one_are_warned_about(runs):
    """A likelihood with .to_event() and no plate gives one log likelihood per draw for all
    the observations: elpd_loo then came out as of one observation, without a word."""
    linear = runs["linear"][1]
    joined = _with_log_likelihood(linear, linear.groups["log_likelihood"]["y"].sum(axis=-1))
    with pytest.warns(
        infer.DiagnosticWarning, match=r"joined \(linear\): the observed site\(s\) y"
    ):
        infer.compare({"joined": joined})
    with warnings.catch_warnings():
        warnings.filterwarnings("error", message=".*one log likelihood per draw")
        infer.compare({"linear": linear})
    # next to a model of the same data with a plate, the counts differ: the reason is said
    # (it was "fitted to different numbers of observations", the data being the same)
    with pytest.warns(infer.DiagnosticWarning, match=r"\(joined: y: a likelihood with \.to_"):
        table = infer.compare({"joined": joined, "linear": linear})
    assert "elpd_loo" not in table.columns


def test_high_k_hats_of_a_variational_fit_are_not_blamed_on_the_observations(runs):
    """An ADVI fit's k-hats above 0.7 were said to mark 'very influential' observations,
    with advice to refit without them, where MCMC draws of the same model had none."""
    linear = runs["linear"][1]
    values = np.array(linear.groups["log_likelihood"]["y"], np.float64)
    heavy = np.random.default_rng(0).pareto(0.5, values.shape[:2])
    values[..., 0] = -np.log1p(heavy)  # importance ratios 1 + heavy: k-hat about 2
    drawn = _with_log_likelihood(linear, values)
    fit = dataclasses.replace(drawn, info={**drawn.info, "pareto_k": 0.3, "family": "meanfield"})
    for result, said in ((drawn, "very influential"), (fit, "the draws are a variational")):
        with pytest.warns(infer.DiagnosticWarning, match="k-hat above 0.7") as caught:
            infer.compare({"run": result})
        message = next(str(w.message) for w in caught if "k-hat above" in str(w.message))
        assert said in message and ("very influential" in message) == (result is drawn)


def test_an_observation_no_parameter_reaches_adds_its_constant_log_likelihood(runs):
    """An observation whose log likelihood is the same in every draw (a regression's at
    x = 0 with no intercept) made infer.compare fail inside ArviZ ("All tail values are the
    same"). It adds its value to elpd_loo and nothing to p_loo; the SE is ArviZ's over every
    observation: the reference is ArviZ's LOO of the others."""
    import arviz_stats

    linear = runs["linear"][1]
    values = np.array(linear.groups["log_likelihood"]["y"], np.float64)
    values[..., 0] = -1.25
    table = infer.compare({"fixed": _with_log_likelihood(linear, values)}, warn=False)
    others = _with_log_likelihood(linear, values[..., 1:]).to_arviz()
    loo = arviz_stats.loo(others, var_name="y", pointwise=True)
    every = np.append(np.asarray(loo.elpd_i), -1.25)
    row = table.loc["fixed"]
    assert row["elpd_loo"] == pytest.approx(float(loo.elpd) - 1.25, rel=1e-12)
    assert row["p_loo"] == pytest.approx(float(loo.p), rel=1e-12)
    assert row["elpd_loo_se"] == pytest.approx(np.sqrt(100 * np.var(every, ddof=1)), rel=1e-12)


def test_loo_columns_are_left_out_with_a_reason_when_the_data_differ(runs):
    linear, constant = runs["linear"][1], runs["constant"][1]
    fewer = _with_log_likelihood(constant, constant.groups["log_likelihood"]["y"][..., :60])
    with pytest.warns(infer.DiagnosticWarning, match=r"different numbers of observations"):
        table = infer.compare({"linear": linear, "fewer": fewer})
    assert "elpd_loo" not in table.columns
    plain = infer.Result.from_draws({"alpha": np.asarray(linear.draws["alpha"])})
    with pytest.warns(
        infer.DiagnosticWarning, match=r"left out: the results plain have no log_likelihood"
    ):
        table = infer.compare({"linear": linear, "plain": plain})
    assert "elpd_loo" not in table.columns
    # as many observations, other values (a fit to 3 y): it was ranked without a word
    tripled_y = {"y": 3 * constant.groups["observed_data"]["y"]}
    tripled = dataclasses.replace(constant, groups={**constant.groups, "observed_data": tripled_y})
    with pytest.warns(infer.DiagnosticWarning, match=r"different data \(y differs between"):
        table = infer.compare({"linear": linear, "tripled": tripled})
    assert "elpd_loo" not in table.columns
    # the same data shaped otherwise, (10, 10) against (100,), under the same site name:
    # said to be "different data" (under another name it was compared)
    values = np.asarray(constant.groups["log_likelihood"]["y"])
    grid = dataclasses.replace(
        constant,
        groups={
            **constant.groups,
            "observed_data": {"y": np.reshape(constant.groups["observed_data"]["y"], (10, 10))},
            "log_likelihood": {"y": values.reshape(*values.shape[:2], 10, 10)},
        },
        dims={},
    )
    table = infer.compare({"linear": linear, "constant": constant, "grid": grid}, warn=False)
    assert table.loc["grid", "elpd_loo"] == table.loc["constant", "elpd_loo"]
    # the same data, 10 observations masked in one model (log likelihood 0): it won by the
    # 10 observations it was not scored on
    values = np.array(constant.groups["log_likelihood"]["y"])
    values[..., :10] = 0.0
    with pytest.warns(infer.DiagnosticWarning, match=r"score different observations .*: 90 of"):
        table = infer.compare({"linear": linear, "masked": _with_log_likelihood(constant, values)})
    assert "elpd_loo" not in table.columns


def robust(x, y=None):  # linear's sites, another likelihood
    alpha = numpyro.sample("alpha", dist.Normal(0.0, 5.0))
    beta = numpyro.sample("beta", dist.Normal(0.0, 5.0))
    sigma = numpyro.sample("sigma", dist.HalfNormal(2.0))
    numpyro.sample("y", dist.StudentT(3.0, alpha + beta * x, sigma), obs=y)


@pytest.mark.thorough  # a warning; the refusal of another model's draws stays
def test_a_result_of_another_model_with_the_same_sites_is_warned_about(runs):
    """Its draws were run through the other model's likelihood without a word."""
    with pytest.warns(UserWarning, match=r"drawn from target 'linear' and this target is 'rob"):
        infer.predictive(runs["linear"][1], infer.Target.from_numpyro(robust, X, y=Y))


def test_a_non_finite_log_likelihood_is_warned_about(runs):
    linear = runs["linear"][1]
    values = np.array(linear.groups["log_likelihood"]["y"])
    values[:, :, 7] = -np.inf  # an observation outside the model's support
    broken = _with_log_likelihood(linear, values)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        table = infer.compare({"broken": broken})
    said = [str(w.message) for w in caught if issubclass(w.category, infer.DiagnosticWarning)]
    assert any("not finite: " in m and "at 1 of 100 observations" in m for m in said)
    assert not any("Pareto k-hat" in m for m in said), "the same observation was warned twice"
    assert not np.isfinite(table.loc["broken", "elpd_loo"])


@pytest.mark.thorough  # a warning, 2.5 s; the one of a result's values stays
def test_a_non_finite_log_likelihood_is_warned_about_when_the_run_ends():
    """A loglik_fn NaN at one observation ran without a word; az.loo then gave NaN."""
    y = Y[:20]

    def loglik_fn(mu, data):
        return (-0.5 * (data - mu) ** 2).at[0].set(jnp.nan)

    target = infer.Target(
        lambda mu, data: -0.5 * mu**2 / 100.0 + jnp.sum(-0.5 * (data - mu) ** 2),
        init=jnp.zeros(()),
        data=y,
        loglik_fn=loglik_fn,
        observed_data={"y": y},
    )
    with pytest.warns(
        infer.DiagnosticWarning, match=r"log likelihood of y is NaN or infinite at 1 of 20 obs"
    ):
        infer.sample(0, target, infer.rwmh(), num_chains=2, num_samples=50, num_warmup=50)


def two_sites(x, y=None, z=None):
    """Two observed sites sharing ``mu``: 30 observations of ``y`` and 5 of ``z``."""
    mu = numpyro.sample("mu", dist.Normal(0.0, 5.0))
    numpyro.sample("y", dist.Normal(mu, 1.0), obs=y)
    numpyro.sample("z", dist.Normal(mu + x, 2.0), obs=z)


def test_a_model_with_two_observed_sites_is_scored_on_all_its_observations():
    """elpd_loo leaves out each observation of each site: the sum of ArviZ's LOO of ``y``
    and of ``z`` (ArviZ alone asks which one to use)."""
    z = (X[:5] + RNG.normal(size=5)).astype(np.float32)
    target = infer.Target.from_numpyro(two_sites, X[:5], y=Y[:30], z=z)
    result = infer.sample(0, target, infer.rwmh(), num_samples=500)
    row = infer.compare({"two_sites": result}, warn=False).loc["two_sites"]
    tree = result.to_arviz()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        each = [az.loo(tree, var_name=name, pointwise=True) for name in ("y", "z")]
    assert row["elpd_loo"] == pytest.approx(sum(loo.elpd for loo in each), rel=1e-6)
    assert row["p_loo"] == pytest.approx(sum(loo.p for loo in each), rel=1e-6)
    assert row["pareto_k_above_0.7"] == sum(int(np.sum(loo.pareto_k > 0.7)) for loo in each)


def test_a_plain_target_can_carry_its_log_likelihood():
    def logdensity(mu, data):
        return -0.5 * mu**2 / 100.0 + jnp.sum(-0.5 * (data - mu) ** 2)

    def pointwise(mu, data):
        return -0.5 * (data - mu) ** 2 - 0.5 * jnp.log(2 * jnp.pi)

    data = RNG.normal(1.0, 1.0, size=30).astype(np.float32)
    target = infer.Target(
        logdensity, init=jnp.asarray(0.0), data=data, loglik_fn=pointwise, observed_data={"y": data}
    )
    result = infer.sample(0, target, infer.rwmh(), num_samples=400)
    tree = result.to_arviz()
    assert tree["log_likelihood"]["y"].shape == (4, 400, 30)
    assert np.isfinite(az.loo(tree).elpd)
    # dims naming more axes than the log likelihood has: ArviZ dropped the extra names
    too_many = dataclasses.replace(target, dims={"y": ["trial", "repeat"]})
    with pytest.raises(ValueError, match=r"dims\['y'\] names 2 axes, but one draw of 'y' has 1"):
        infer.sample(0, too_many, infer.rwmh(), num_samples=400)


def test_a_plain_target_of_vector_observations_names_their_own_axis():
    """One log likelihood per observed vector, shape (25,), of data shaped (25, 2): naming
    the data's two axes was refused ("one draw of 'X' has 1"), where a NumPyro target of the
    same data takes them (the log likelihood keeps the first)."""
    data = RNG.normal(size=(25, 2)).astype(np.float32)

    def pointwise(mu, data):
        return dist.MultivariateNormal(mu[None, :], jnp.eye(2)).log_prob(data)

    def logdensity(mu, data):
        return jnp.sum(dist.Normal(0.0, 3.0).log_prob(mu)) + jnp.sum(pointwise(mu, data))

    target = infer.Target(
        logdensity, init=jnp.zeros(2), data=data, loglik_fn=pointwise, observed_data={"X": data}
    )
    named = dataclasses.replace(target, dims={"X": ["obs", "coord"]})
    tree = infer.sample(0, named, infer.rwmh(), num_samples=50, num_chains=1).to_arviz()
    assert tree["observed_data"]["X"].dims == ("obs", "coord")
    assert tree["log_likelihood"]["X"].dims == ("chain", "draw", "obs")
    too_many = dataclasses.replace(target, dims={"X": ["obs", "coord", "more"]})
    with pytest.raises(ValueError, match=r"dims\['X'\] names 3 axes, but one draw of 'X' has 2"):
        infer.sample(0, too_many, infer.rwmh(), num_samples=50, num_chains=1)


@pytest.mark.thorough  # a second plain target with a loglik_fn, 4 s
def test_one_loglik_fn_serves_targets_that_name_their_observations_differently():
    """The compiled log-likelihood pass is shared by the targets that share its functions
    and shapes, but the name it gives an array output is each target's own."""

    def logdensity(mu, data):
        return -0.5 * mu**2 / 100.0 + jnp.sum(-0.5 * (data - mu) ** 2)

    def pointwise(mu, data):
        return -0.5 * (data - mu) ** 2

    data = RNG.normal(1.0, 1.0, size=30).astype(np.float32)
    for observed, name in (({"y": data}, "y"), ({"yy": data}, "yy"), (None, "obs")):
        target = infer.Target(
            logdensity,
            init=jnp.asarray(0.0),
            data=data,
            loglik_fn=pointwise,
            observed_data=observed,
        )
        result = infer.sample(0, target, infer.rwmh(), num_chains=2, num_samples=50, num_warmup=50)
        assert list(result.groups["log_likelihood"]) == [name]


@pytest.mark.thorough  # edge shapes of the check
def test_log_likelihoods_that_numpyro_broadcasts_or_that_leave_covariates_out_run():
    """What the check of a log likelihood lets through: a NumPyro site whose distribution
    broadcasts against its observations, and a plain target's observed_data holding more
    than its log likelihood names (a covariate) or one scalar observation."""

    def broadcast(x, y=None):
        beta = numpyro.sample("beta", dist.Normal(jnp.zeros((1, 1)), 1.0).to_event(2))
        numpyro.sample("y", dist.Normal((x[:, None] @ beta).T, 1.0), obs=y)

    run = {"num_chains": 2, "num_samples": 50, "num_warmup": 50}
    with jax.numpy_rank_promotion("allow"):  # the tests raise on it; NumPyro's users need not
        target = infer.Target.from_numpyro(broadcast, X, y=Y)
        result = infer.sample(0, target, infer.rwmh(), **run)
    assert result.groups["log_likelihood"]["y"].shape == (2, 50, 1, 100)

    def logdensity(mu, data):
        return -0.5 * mu**2 + jnp.sum(-0.5 * (data - mu) ** 2)

    for observed, shape in (({"y": Y, "x": X}, (2, 50, 100)), ({"y": Y[:1].sum()}, (2, 50))):
        data = observed["y"]
        target = infer.Target(
            logdensity,
            init=jnp.asarray(0.0),
            data=data,
            loglik_fn=lambda mu, d: {"y": -0.5 * (d - mu) ** 2},
            observed_data=observed,
        )
        result = infer.sample(0, target, infer.rwmh(), **run)
        assert result.groups["log_likelihood"]["y"].shape == shape


def test_the_log_likelihood_pass_is_chunked(monkeypatch):
    """More observations than fit one chunk: the pass goes in pieces, with the same values."""
    x = np.linspace(-2, 2, 2000).astype(np.float32)
    y = (0.5 + 1.5 * x + RNG.normal(size=2000)).astype(np.float32)
    target = infer.Target.from_numpyro(linear, x, y=y)
    result = infer.sample(0, target, infer.rwmh(), num_chains=2, num_samples=50, num_warmup=50)
    whole = result.groups["log_likelihood"]["y"]
    monkeypatch.setattr(loglik, "CHUNK_BYTES", 2000 * 4 * 7)  # 7 draws of 2,000 at a time
    again = infer.sample(0, target, infer.rwmh(), num_chains=2, num_samples=50, num_warmup=50)
    np.testing.assert_allclose(again.groups["log_likelihood"]["y"], whole, rtol=1e-6)
    assert whole.shape == (2, 50, 2000)


@pytest.mark.thorough  # a refusal, 2.5 s
def test_predictive_refuses_a_plain_target():
    target = infer.Target(lambda x: -0.5 * jnp.sum(x**2), init=jnp.zeros(2))
    result = infer.sample(0, target, infer.rwmh(), num_samples=20, num_warmup=20)
    with pytest.raises(TypeError, match="NumPyro target the result was drawn from.*got an infe"):
        infer.predictive(result, target)
    with pytest.raises(TypeError, match="from_numpyro.* got function"):  # the model itself
        infer.predictive(result, linear)


def location(y=None):  # no plate: y's shape comes from obs= alone
    mu = numpyro.sample("mu", dist.Normal(0.0, 5.0))
    numpyro.sample("y", dist.Normal(mu, 1.0), obs=y)


def test_predictive_refuses_a_site_whose_shape_comes_from_its_observations_alone():
    """Such a model simulates one y per draw: the posterior_predictive group held (chain,
    draw) against 50 observations, and az.plot_ppc_dist, plot_loo_pit, infer.plot and
    write_report then failed ("n_dims must be one or higher")."""
    target = infer.Target.from_numpyro(location, y=Y[:50])
    result = infer.sample(0, target, infer.rwmh(), num_chains=2, num_samples=20, num_warmup=20)
    assert result.groups["log_likelihood"]["y"].shape == (2, 20, 50)
    said = r"simulates 'y' shaped \(\) per draw .* is shaped \(50,\).*numpyro.plate\('obs', 50\)"
    with pytest.raises(ValueError, match=said):
        infer.predictive(result, target)
    with pytest.raises(ValueError, match=said):  # the prior's groups alike
        infer.predictive(result, target, posterior=False)


def test_predictive_refuses_draws_of_another_model(runs):
    target, result = runs["linear"]
    only_alpha = infer.Result.from_draws({"alpha": np.asarray(result.draws["alpha"])})
    with pytest.raises(ValueError, match=r"lack its latent site\(s\) beta, sigma and hold"):
        infer.predictive(only_alpha, target)
    # a result of the other model (alpha, sigma) on this one: beta missing; and one of this
    # model given to the other: beta is not a site of it (it used to pass unremarked)
    other_target, other_result = runs["constant"]
    with pytest.raises(ValueError, match=r"lack its latent site\(s\) beta and hold \(none\)"):
        infer.predictive(other_result, target)
    with pytest.raises(ValueError, match=r"\(none\) and hold beta that it does not have"):
        infer.predictive(result, other_target)
    with pytest.raises(ValueError, match=r"num_prior_draws must be an integer >= 1; got 0"):
        infer.predictive(result, target, num_prior_draws=0)
    with pytest.raises(
        TypeError,
        match=r"seed must be an integer >= 0; got 0.5. Pass an integer seed or a jax.random.key",
    ):
        infer.predictive(result, target, seed=0.5)
    # a key, as every other entry point takes (it failed inside the seed check), is the seed
    # of the same number; the prior's draw count is refused where no prior is drawn
    by_key = infer.predictive(result, target, seed=jax.random.key(3), prior=False)
    by_int = infer.predictive(result, target, seed=np.array(3), prior=False)  # as before
    simulated = [r.groups["posterior_predictive"]["y"] for r in (by_key, by_int)]
    np.testing.assert_array_equal(*simulated)
    with pytest.raises(ValueError, match=r"seed must be an integer in \[0, 2\*\*32\)"):
        infer.predictive(result, target, seed=2**32 + 3)  # the same key as seed 3 (x64 off)
    with pytest.raises(ValueError, match=r"num_prior_draws=5 is for the prior groups"):
        infer.predictive(result, target, prior=False, num_prior_draws=5)


def test_plate_names_are_the_dimensions_of_every_group_as_arviz_names_them():
    """A site in a plate gets the plate's name in every group, as ``az.from_numpyro`` names
    it (its ``infer_dims`` is the reference): ``.sel(schools=0)`` works, and the observed
    values line up with the draws element by element."""
    from arviz_base.io_numpyro import infer_dims

    from models import targets

    target = targets.get("eight_schools")  # non-centred, its plate named "schools"
    assert target.dims == infer_dims(target.source.model, target.source.args, target.source.kwargs)
    short = dict(num_chains=2, num_samples=60, num_warmup=60)
    result = infer.predictive(infer.sample(0, target, infer.rwmh(), **short), target)
    tree = result.to_arviz()
    for group in ("posterior", "prior"):
        for name in ("theta_tilde", "theta"):
            assert tree[group][name].dims == ("chain", "draw", "schools")
        assert tree[group]["mu"].dims == ("chain", "draw")
    for group in ("log_likelihood", "posterior_predictive", "prior_predictive"):
        assert tree[group]["y"].dims == ("chain", "draw", "schools")
    assert tree["observed_data"]["y"].dims == ("schools",)
    # bare draws of the same run are named after the plates too (they were theta_dim_0)
    bare = infer.Result.from_draws({k: result.draws[k] for k in ("mu", "tau", "theta_tilde")})
    named = infer.predictive(bare, target).to_arviz()
    assert named["posterior"]["theta_tilde"].dims == ("chain", "draw", "schools")
    assert named["posterior_predictive"]["y"].dims == ("chain", "draw", "schools")
    assert named["observed_data"]["y"].dims == ("schools",)
    residual = tree["posterior"]["theta"] - tree["observed_data"]["y"]
    assert residual.shape == (2, 60, 8)  # element by element, not 8 x 8
    assert float(tree["posterior"]["theta"].sel(schools=3)[1, 7]) == result.draws["theta"][1, 7, 3]


@pytest.mark.thorough  # the same names through a store, a saved file and two plots, 4 s
def test_plate_names_survive_a_store_a_saved_file_and_plots(tmp_path):
    from models import targets

    target = targets.get("eight_schools")
    short = dict(num_chains=2, num_samples=60, num_warmup=60)
    result = infer.predictive(infer.sample(0, target, infer.rwmh(), **short), target)
    stored = infer.sample(0, target, infer.rwmh(), store=tmp_path / "run.zarr", **short)
    assert stored.to_arviz()["posterior"]["theta_tilde"].dims == ("chain", "draw", "schools")
    loaded = infer.load(result.save(tmp_path / "run.nc"))
    assert loaded.to_arviz()["log_likelihood"]["y"].dims == ("chain", "draw", "schools")
    for kind in ("trace", "forest"):
        infer.plot(result, kind=kind, path=tmp_path / f"{kind}.png")
        assert (tmp_path / f"{kind}.png").stat().st_size > 0


@pytest.mark.thorough  # an edge of compare's LOO columns
def test_a_model_without_observations_is_compared_without_loo_columns():
    def prior_only():
        numpyro.sample("a", dist.Normal(0.0, 1.0))

    short = dict(num_chains=2, num_samples=50, num_warmup=50)
    result = infer.sample(0, infer.Target.from_numpyro(prior_only), infer.rwmh(), **short)
    assert "log_likelihood" not in result.groups
    assert "elpd_loo" not in infer.compare({"prior_only": result}, warn=False).columns
    fitted = infer.sample(0, infer.Target.from_numpyro(linear, X, y=Y), infer.rwmh(), **short)
    with pytest.warns(infer.DiagnosticWarning, match=r"the results prior_only have no log_lik"):
        table = infer.compare({"prior_only": result, "linear": fitted})
    assert "elpd_loo" not in table.columns


def test_masked_observations_are_not_repeated_as_constant_data():
    """``obs_mask`` with the missing values as NaN: the observed array is the observation,
    not a constant (NaN equals NaN here), while the mask is a constant."""

    def masked(y=None, mask=None):
        mu = numpyro.sample("mu", dist.Normal(0.0, 5.0))
        with numpyro.plate("n", 6):
            numpyro.sample("y", dist.Normal(mu, 1.0), obs=y, obs_mask=mask)

    y = np.arange(6, dtype=np.float32)
    y[:2] = np.nan
    target = infer.Target.from_numpyro(masked, y=y, mask=~np.isnan(y))
    assert set(target.constant_data) == {"mask"}


def test_dimension_names_are_checked_where_they_are_given():
    draws = {"theta": np.zeros((2, 10, 8))}
    with pytest.raises(ValueError, match=r"dims\['theta'\] names 2 axes, but one draw of"):
        infer.Result.from_draws(draws, dims={"theta": ["school", "term"]})
    with pytest.raises(ValueError, match=r"'chain' and 'draw' are ArviZ's"):
        infer.Result.from_draws(draws, dims={"theta": ["chain"]})
    with pytest.raises(ValueError, match=r"each axis needs its own name"):
        infer.Target(lambda x: -jnp.sum(x**2), init=jnp.zeros((2, 2)), dims={"x": ["a", "a"]})
    with pytest.raises(TypeError, match=r"dims must map each name to a list"):
        infer.Target(lambda x: -jnp.sum(x**2), init=jnp.zeros(2), dims={"x": "school"})
    named = infer.Result.from_draws(draws, dims={"theta": ["school"]})
    assert named.to_arviz()["posterior"]["theta"].dims == ("chain", "draw", "school")
    misspelt = infer.Result.from_draws(draws, dims={"thta": ["school"]})
    with pytest.warns(UserWarning, match=r"dims names \['thta'\], which no group .* \['theta'\]"):
        misspelt.to_arviz()


def test_a_factor_in_a_plate_gets_no_dimension_names():
    """A ``numpyro.factor`` term is in no ArviZ group, so naming its dimensions would only set
    off the warning about names that name nothing."""

    def penalised(x, y=None):
        slope = numpyro.sample("slope", dist.Normal(0.0, 1.0))
        with numpyro.plate("obs", x.shape[0]):
            numpyro.factor("penalty", -0.1 * (slope * x) ** 2)
            numpyro.sample("y", dist.Normal(slope * x, 1.0), obs=y)

    x = np.linspace(0.0, 1.0, 5, dtype=np.float32)
    target = infer.Target.from_numpyro(penalised, x, 2 * x)
    assert target.dims == {"y": ["obs"]}
    draws = {"slope": np.zeros((2, 10), np.float32)}
    result = infer.Result.from_draws(draws, dims=target.dims)
    result = dataclasses.replace(result, groups={"observed_data": target.observed_data})
    with warnings.catch_warnings():
        warnings.simplefilter("error", UserWarning)
        assert result.to_arviz()["observed_data"]["y"].dims == ("obs",)


@pytest.mark.thorough  # predictions at new inputs, 5 s; the fit's predictive stays
def test_predictive_on_new_data_goes_to_the_predictions_group(runs):
    """A target of the same model on 20 held-out points: its draws are ArviZ's
    ``predictions`` (20 per draw, centred on the fitted line at the new inputs), beside the
    fit's own 100 observations and log likelihood, which stay as they were. With the outcomes
    left out (``y=None``) the same."""
    target, result = runs["linear"]
    x_new = np.linspace(-2.0, 2.0, 20).astype(np.float32)
    y_new = (1.0 + 2.0 * x_new + RNG.normal(size=20)).astype(np.float32)
    held_out = infer.Target.from_numpyro(linear, x_new, y=y_new)
    predicted = infer.predictive(result, held_out)  # prior groups: the fit's, untouched
    assert predicted.groups["prior_predictive"] is result.groups["prior_predictive"]
    with pytest.raises(ValueError, match="prior=True with a target on other data"):
        infer.predictive(result, held_out, prior=True)
    # NumPyro's median start of the sampled y broadcasts ranks, which these tests forbid
    with jax.numpy_rank_promotion("allow"), warnings.catch_warnings():
        warnings.simplefilter("error")  # the docs' call, as they make it: nothing to warn of
        no_outcomes = infer.Target.from_numpyro(linear, x_new)
    unseen = infer.predictive(result, no_outcomes, prior=False, seed=1).to_arviz()
    with jax.numpy_rank_promotion("allow"):  # x of another rank: predictions of (20, 20)
        column = infer.Target.from_numpyro(linear, x_new[:, None])
    with pytest.raises(ValueError, match=r"x has shape \(20, 1\), 2 axes, where the fit's x"):
        infer.predictive(result, column)
    assert unseen.predictions["y"].shape == (*result.draws["alpha"].shape, 20)
    assert unseen.observed_data["y"].shape == (100,)
    tree = predicted.to_arviz()
    assert tree.predictions["y"].shape == (*result.draws["alpha"].shape, 20)
    assert tree.observed_data["y"].shape == (100,)
    assert tree.log_likelihood["y"].shape[-1] == 100
    np.testing.assert_array_equal(tree.predictions_constant_data["x"], x_new)
    assert "posterior_predictive" in tree  # from the fixture's own predictive call
    assert tree.posterior_predictive["y"].shape[-1] == 100
    # each prediction's mean over draws is alpha + beta x at its input, within 4 MCSE
    mean_line = np.mean(result.draws["alpha"]) + np.mean(result.draws["beta"]) * x_new
    draws = np.asarray(tree.predictions["y"]).reshape(-1, 20)
    mcse = np.std(draws, axis=0) / np.sqrt(draws.shape[0] / 2)  # ESS >= half the draws
    assert np.all(np.abs(draws.mean(axis=0) - mean_line) < 4 * mcse)
    with pytest.raises(AssertionError):  # the same check fails against the old inputs
        assert np.all(np.abs(draws.mean(axis=0) - (mean_line + 1.0)) < 4 * mcse)


def with_mean(x, y=None):  # the linear model with its mean as a deterministic site
    alpha = numpyro.sample("alpha", dist.Normal(0.0, 5.0))
    beta = numpyro.sample("beta", dist.Normal(0.0, 5.0))
    mu = numpyro.deterministic("mu", alpha + beta * x)
    numpyro.sample("y", dist.Normal(mu, 1.0), obs=y)


@pytest.mark.thorough  # ADVI's predictions at new data, 6 s; NUTS's stay
def test_an_advi_fit_predicts_at_new_data_with_its_deterministic_sites():
    """ADVI results record the fit's data too, so a target on new inputs gives
    ``predictions`` (it used to count as the fit's data, and with y=None to be refused as
    'another model'); deterministic sites come back at the new inputs."""
    fit = infer.advi(0, infer.Target.from_numpyro(with_mean, X, y=Y), num_steps=300, num_draws=50)
    assert fit.groups["observed_data"]["y"].shape == (100,)
    # and its pointwise log likelihood, so that az.loo runs on it (it had none)
    loglik = fit.groups["log_likelihood"]["y"]
    assert loglik.shape == (fit.num_chains, 50, 100)
    c, d = fit.num_chains - 1, 17
    mean = fit.draws["alpha"][c, d] + fit.draws["beta"][c, d] * X
    np.testing.assert_allclose(loglik[c, d], dist.Normal(mean, 1.0).log_prob(Y), rtol=1e-5)
    assert np.isfinite(az.loo(fit.to_arviz()).elpd)
    x_new = np.linspace(-1.0, 1.0, 7).astype(np.float32)
    with jax.numpy_rank_promotion("allow"):
        new = infer.Target.from_numpyro(with_mean, x_new)
    predicted = infer.predictive(fit, new)
    assert predicted.groups["predictions"]["y"].shape[-1] == 7
    mu = predicted.groups["predictions"]["mu"]
    expected = fit.draws["alpha"][..., None] + fit.draws["beta"][..., None] * x_new
    np.testing.assert_allclose(mu, expected, rtol=1e-5, atol=1e-5)
    assert "prior" not in predicted.groups
    with pytest.raises(ValueError, match="posterior=False leaves nothing to draw"):
        infer.predictive(fit, new, posterior=False)
    same = infer.Target.from_numpyro(with_mean, X, y=Y)  # the fit's own data: no "other data"
    with pytest.raises(ValueError, match=r"posterior=False and prior=False leave nothing to"):
        infer.predictive(fit, same, posterior=False, prior=False)


@pytest.mark.thorough  # a message's edge
def test_variables_left_out_by_keep_are_not_called_misspelt():
    target = targets.get("eight_schools")
    assert "theta" in target.dims
    result = infer.sample(0, target, infer.rwmh(), num_chains=2, num_samples=20, keep=["mu"])
    with warnings.catch_warnings():
        warnings.simplefilter("error", UserWarning)
        assert set(result.to_arviz()["posterior"].data_vars) == {"mu"}


@pytest.mark.parametrize(
    "dims, said",
    [
        ({"theta": ["k"], "W": ["k", "j"]}, r"the axis 'k' has 8 entries in 'theta' but 2 in 'W'"),
        ({"theta": ["W"]}, r"dims\['theta'\] names an axis of 'theta' 'W', the name of a"),
        ({"theta": ["school", "extra"]}, r"dims\['theta'\] names 2 axes, but one draw"),
    ],
)
def test_dimension_names_arviz_would_apply_wrongly_are_refused_before_a_run(dims, said):
    """Each once ran and gave a tree that padded a variable with NaN, dropped one, or cut
    the names without a word."""
    init = {"theta": jnp.zeros(8), "W": jnp.zeros((2, 3))}
    target = infer.Target(
        lambda p: -0.5 * (jnp.sum(p["theta"] ** 2) + jnp.sum(p["W"] ** 2)), init=init, dims=dims
    )
    with pytest.raises(ValueError, match=said):
        infer.sample(0, target, infer.rwmh(), num_chains=2, num_samples=5, num_warmup=0)


def _shifted_regression(x, z, y=None):
    a = numpyro.sample("a", dist.Normal(0.0, 1.0))
    with numpyro.plate("n", x.shape[0]):
        numpyro.sample("y", dist.Normal(a + x + z.sum(), 1.0), obs=y)


@pytest.mark.parametrize(
    "dims, said",
    [
        ({"z": ["n"]}, r"axis 'n' has 5 entries in the argument 'z' but 30 in 'y'; ArviZ"),
        ({"z": ["y"]}, r"names an axis of the argument 'z' 'y', the name of a variable too"),
        ({"z": ["k", "j"]}, r"dims\['z'\] names 2 axes, but the argument 'z' has 1"),
    ],
)
@pytest.mark.thorough  # a refusal, 2 s a case
def test_dimension_names_of_a_models_arguments_are_checked_before_a_run(dims, said):
    """The argument ``z`` (5 values) named ``n``, the plate of the 30 observations: its
    name was dropped from constant_data without a word; a variable's name or names past its
    axes went through as they were."""
    x = jnp.linspace(-1.0, 1.0, 30)
    target = infer.Target.from_numpyro(_shifted_regression, x, jnp.arange(5.0), y=2 * x)
    given = target.with_options(dims={**target.dims, **dims})
    with pytest.raises(ValueError, match=said):
        infer.sample(0, given, infer.rwmh(), num_chains=2, num_samples=5, num_warmup=0)
    fitting = target.with_options(dims={**target.dims, "z": ["k"], "x": ["n"]})
    result = infer.sample(0, fitting, infer.rwmh(), num_chains=2, num_samples=5, num_warmup=0)
    assert dict(result.to_arviz().constant_data.sizes) == {"n": 30, "k": 5}


def test_an_unnamed_axis_whose_arviz_name_is_a_variable_is_refused():
    target = infer.Target(
        lambda p: -0.5 * (jnp.sum(p["x"] ** 2) + jnp.sum(p["x_dim_0"] ** 2)),
        init={"x": jnp.zeros(2), "x_dim_0": jnp.zeros(3)},
    )
    with pytest.raises(ValueError, match=r"ArviZ would name an axis of 'x' 'x_dim_0'"):
        infer.sample(0, target, infer.rwmh(), num_chains=2, num_samples=5, num_warmup=0)


def test_dim_names_are_those_of_the_tree():
    draws = {"W": np.zeros((2, 5, 3, 4, 6))}
    result = infer.Result.from_draws(draws, dims={"W": ["row"]})
    tree = result.to_arviz()
    assert result.dim_names("W") == list(tree.posterior["W"].dims[2:])


def _site_named_like_an_argument(x, y):
    b = numpyro.sample("b", dist.Normal(0.0, 1.0))
    with numpyro.plate("m", y.shape[0]):
        numpyro.sample("x", dist.Normal(b * x[: y.shape[0]], 1.0), obs=y)


@pytest.mark.thorough  # an edge case, 2.5 s
def test_an_argument_named_like_a_site_keeps_its_own_axis_where_the_lengths_differ():
    """The argument ``x`` (30 values) once took the site ``x``'s plate ``m`` (10): ArviZ
    then paired the two under one name, and ``observed - constant`` silently kept 10."""
    x = np.linspace(1.0, 2.0, 30, dtype=np.float32)
    short = infer.Target.from_numpyro(_site_named_like_an_argument, x, np.zeros(10, np.float32))
    options = dict(num_chains=2, num_samples=20, num_warmup=0)
    tree = infer.sample(0, short, infer.rwmh(), **options).to_arviz()
    assert dict(tree.observed_data["x"].sizes) == {"m": 10}
    assert dict(tree.constant_data["x"].sizes) == {"x_dim_0": 30}
    equal = infer.Target.from_numpyro(_site_named_like_an_argument, x, np.zeros(30, np.float32))
    tree = infer.sample(0, equal, infer.rwmh(), **options).to_arviz()
    assert tree.constant_data["x"].dims == ("m",)  # the same length: the site's axis, as before


def test_too_few_draws_for_loo_leave_its_columns_out_and_say_why(runs):
    """ArviZ's PSIS fit raised "n_draws_tail must be at least 5" (or an IndexError) from
    inside compare, for any run of a NumPyro model with fewer than 25 draws in all."""
    target = runs["linear"][0]
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", infer.DiagnosticWarning)
        short = infer.sample(0, target, infer.nuts(), num_chains=4, num_samples=5, num_warmup=300)
    with pytest.warns(infer.DiagnosticWarning, match="needs at least 25 draws in all.*: 20"):
        table = infer.compare({"short": short})
    assert "elpd_loo" not in table.columns and np.isfinite(table.loc["short", "max_rhat"])


def test_an_elpd_loo_that_is_not_finite_is_flagged():
    """It was NaN in the table beside flags that said only rhat and low_ess."""
    rng = np.random.default_rng(5)
    runs = {}
    for name in ("clean", "broken"):
        run = infer.Result.from_draws({"mu": rng.normal(size=(2, 100))}, target="model")
        loglik_values = rng.normal(-1.0, 0.1, size=(2, 100, 10))
        if name == "broken":
            loglik_values[0, 3, 4] = np.nan  # one observation, one draw
        run.groups["log_likelihood"] = {"y": loglik_values}
        runs[name] = run
    with pytest.warns(infer.DiagnosticWarning, match=r"broken \(model\): elpd_loo is not finite"):
        table = infer.compare(runs)
    assert "loo_nonfinite" in table.loc["broken", "flags"].split(",")
    assert "loo_nonfinite" not in table.loc["clean", "flags"].split(",")


def hierarchical(g, x, num_groups, y=None):
    with numpyro.plate("groups", num_groups):
        alpha = numpyro.sample("alpha", dist.Normal(0.0, 2.0))
    with numpyro.plate("obs", x.shape[0]):
        numpyro.sample("y", dist.Normal(alpha[g] + x, 1.0), obs=y)


@pytest.mark.thorough  # a refusal, 4 s
def test_predictive_tells_a_changed_size_argument_and_a_misnamed_one():
    """A fifth group at new inputs (num_groups=5 where the fit had 4) was said to hold a
    value per observation; a misnamed keyword argument was told to check its shapes."""
    groups = RNG.integers(0, 4, size=40).astype(np.int32)
    with jax.numpy_rank_promotion("allow"):  # NumPyro's median start broadcasts ranks
        target = infer.Target.from_numpyro(hierarchical, groups, X[:40], 4, y=Y[:40])
        new = infer.Target.from_numpyro(hierarchical, np.array([0, 4], np.int32), X[:2], 5)
    result = infer.sample(0, target, infer.rwmh(), num_chains=2, num_samples=50, num_warmup=50)
    with pytest.raises(ValueError, match=r"alpha \(4,\) in the draws but \(5,\) here.*size"):
        infer.predictive(result, new)
    with pytest.raises(TypeError, match=r"takes linear\(x, y=None\); .* unexpected keyword"):
        infer.Target.from_numpyro(linear, x_new=X[:3])


def test_predictive_on_the_fits_data_in_another_precision_or_on_bare_draws(runs):
    """The fit's x as float64 (the array its float32 copy was made from) counted as new
    inputs: predictions instead of the posterior predictive, and no prior groups. Bare
    draws (Result.from_draws) got a posterior predictive without the observed data that
    ArviZ's PPC plots pair it with, and the plot failed in ArviZ."""
    _, result = runs["linear"]
    wide = infer.Target.from_numpyro(linear, X.astype(np.float64), y=Y.astype(np.float64))
    again = infer.predictive(result, wide)
    assert "posterior_predictive" in again.groups and "predictions" not in again.groups
    bare = infer.Result.from_draws({k: result.draws[k] for k in ("alpha", "beta", "sigma")})
    checked = infer.predictive(bare, infer.Target.from_numpyro(linear, X, y=Y))
    np.testing.assert_array_equal(checked.groups["observed_data"]["y"], Y)
    np.testing.assert_array_equal(checked.groups["constant_data"]["x"], X)
    infer.plot(checked, kind="ppc")


def test_a_predictive_check_gathers_only_the_sites_it_keeps():
    """A deterministic site per observation was gathered over every draw and then dropped:
    4,000 draws of 50,000 observations peaked at 1.86 GB for a 0.80 GB group (1.08 GB now).
    The draws are the same with or without it."""
    from infer.numpyro_predictive import predictive_draws

    target = infer.Target.from_numpyro(with_mean, X, y=Y)
    posterior = {"alpha": np.zeros(3, np.float32), "beta": np.ones(3, np.float32)}
    key = jax.random.key(0)
    some = predictive_draws(target.source, key, posterior=posterior, sites=["y"])
    every = predictive_draws(target.source, key, posterior=posterior)
    assert list(some) == ["y"] and "mu" in every
    np.testing.assert_array_equal(some["y"], every["y"])
