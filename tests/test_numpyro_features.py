"""NumPyro model features a user brings, through Target.from_numpyro: data nested in a dict,
numpyro.factor terms, masked observations, numpyro.param, float64 data, subsampled plates
and Python code on array arguments (from a new user's walkthrough)."""

import sys
import warnings

import jax
import jax.numpy as jnp
import numpy as np
import numpyro
import numpyro.distributions as dist
import pytest

import infer

pytestmark = pytest.mark.slow  # a module `make test-fast` leaves out

RUN = dict(num_chains=2, num_samples=200, num_warmup=200)
RNG = np.random.default_rng(0)
X = RNG.normal(size=10).astype(np.float32)
Y = (1.0 + 2.0 * X + RNG.normal(size=10)).astype(np.float32)


def quiet_sample(target, sampler=None):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", infer.DiagnosticWarning)
        return infer.sample(0, target, sampler or infer.mala(), **RUN)  # any sampler will do


def regression_of_a_dict(data):
    a = numpyro.sample("a", dist.Normal(0.0, 5.0))
    b = numpyro.sample("b", dist.Normal(0.0, 5.0))
    with numpyro.plate("n", 10):
        numpyro.sample("y", dist.Normal(a + b * data["x"], 1.0), obs=data["y"])


@pytest.mark.thorough  # an edge case, 3 s
def test_new_inputs_nested_in_a_dict_are_predictions_not_the_fit():
    """The dict's arrays were not recorded as the fit's data, so new inputs under the same
    outcome counted as the fit's own: posterior_predictive at x + 100 beside the fit's
    observed_data."""
    fit_target = infer.Target.from_numpyro(regression_of_a_dict, {"x": X, "y": Y})
    assert list(fit_target.constant_data) == ["data.x"]
    result = quiet_sample(fit_target)
    moved = infer.Target.from_numpyro(regression_of_a_dict, {"x": X + 100.0, "y": Y})
    tree = infer.predictive(result, moved).to_arviz()
    assert "predictions" in tree.children
    np.testing.assert_array_equal(tree["predictions_constant_data"]["data.x"], X + 100.0)
    same = infer.predictive(result, fit_target).to_arviz()
    assert "posterior_predictive" in same.children and "predictions" not in same.children


@pytest.mark.thorough  # an edge case, 4 s
def test_concat_joins_the_groups_of_every_draw_or_leaves_them_out_saying_so():
    fit_target = infer.Target.from_numpyro(regression_of_a_dict, {"x": X, "y": Y})
    first = quiet_sample(fit_target)
    second = infer.sample(0, fit_target, infer.mala(), resume=first, num_samples=RUN["num_samples"])
    moved = infer.Target.from_numpyro(regression_of_a_dict, {"x": X + 100.0, "y": Y})
    both = infer.concat(infer.predictive(first, fit_target), infer.predictive(second, fit_target))
    assert both.groups["posterior_predictive"]["y"].shape[:2] == both.draws["a"].shape[:2]
    with pytest.warns(UserWarning, match=r"leaves the group predictions out: results \[1\]"):
        joined = infer.concat(infer.predictive(first, moved), second)
    assert "predictions" not in joined.groups and "predictions_constant_data" not in joined.groups
    assert joined.groups["log_likelihood"]["y"].shape[:2] == joined.draws["a"].shape[:2]


@pytest.mark.thorough  # a refusal, 6 s
def test_predictions_of_a_model_that_imputes_masked_observations_are_refused():
    def masked(x, y=None, mask=None):
        a = numpyro.sample("a", dist.Normal(0.0, 5.0))
        with numpyro.plate("n", x.shape[0]):
            numpyro.sample("y", dist.Normal(a * x, 1.0), obs=y, obs_mask=mask)

    mask = np.arange(10) % 5 != 0
    with jax.numpy_rank_promotion("allow"):  # NumPyro's imputation promotes ranks
        result = quiet_sample(infer.Target.from_numpyro(masked, X, y=Y, mask=mask), infer.rwmh())
        new_inputs = infer.Target.from_numpyro(masked, X[:5], mask=mask[:5])
    assert result.draws["y_unobserved"].shape[2:] == (10,)
    with pytest.raises(ValueError, match=r"hold \['y_unobserved'\].*handlers.mask"):
        infer.predictive(result, new_inputs)
    # new inputs without a mask: the same advice (it said the draws were of another model)
    with jax.numpy_rank_promotion("allow"):
        unmasked = infer.Target.from_numpyro(masked, X[:5])
    with pytest.raises(ValueError, match=r"hold \['y_unobserved'\].*handlers.mask"):
        infer.predictive(result, unmasked)


def with_noise_per_point(x, y=None):  # z: one latent value per observation
    a = numpyro.sample("a", dist.Normal(0.0, 5.0))
    with numpyro.plate("n", x.shape[0]):
        z = numpyro.sample("z", dist.Normal(0.0, 1.0))
        numpyro.sample("y", dist.Normal(a * x + z, 0.5), obs=y)


def with_noise_in_a_plate_of_its_own(x, y=None):  # z per observation, in another plate
    a = numpyro.sample("a", dist.Normal(0.0, 5.0))
    with numpyro.plate("units", x.shape[0]):
        z = numpyro.sample("z", dist.Normal(0.0, 1.0))
    with numpyro.plate("n", x.shape[0]):
        numpyro.sample("y", dist.Normal(a * x + z, 0.5), obs=y)


def with_noise_expanded(x, y=None):  # z per observation, in no plate
    a = numpyro.sample("a", dist.Normal(0.0, 5.0))
    z = numpyro.sample("z", dist.Normal(0.0, 1.0).expand([x.shape[0]]).to_event(1))
    with numpyro.plate("n", x.shape[0]):
        numpyro.sample("y", dist.Normal(a * x + z, 0.5), obs=y)


@pytest.mark.thorough  # a refusal, 4 s
@pytest.mark.parametrize(
    "model", [with_noise_per_point, with_noise_in_a_plate_of_its_own, with_noise_expanded]
)
def test_predictions_need_latent_sites_that_are_not_one_per_observation(model):
    """At 1 new input the fit's 10 values of z broadcast into 10 'predictions' (at 5, a raw
    JAX shape error); at 10 other inputs, the fit's z silently stood for theirs. In a plate
    of its own sized by the data, or expanded to the data's length, z was not told apart
    from a site of the model's own size, and at 10 new inputs stood for theirs."""
    with jax.numpy_rank_promotion("allow"):  # NumPyro's median start broadcasts a * x
        fit = infer.Target.from_numpyro(model, X, y=Y)
        news = [infer.Target.from_numpyro(model, x) for x in (X[:1], X + 1)]
    result = quiet_sample(fit, infer.rwmh())
    for target in news:
        with pytest.raises(ValueError, match=r"latent site\(s\) z \(10,\) hold a value per"):
            infer.predictive(result, target)


def grouped(g, y=None, num_groups=3):
    s = numpyro.sample("s", dist.HalfNormal(1.0))
    with numpyro.plate("groups", num_groups):
        a = numpyro.sample("a", dist.Normal(0.0, 5.0))
    with numpyro.plate("n", g.shape[0]):
        numpyro.sample("y", dist.Normal(a[g], s), obs=y)


@pytest.mark.thorough  # refusals, 3 s
def test_draws_shaped_otherwise_than_the_models_sites_are_refused_on_the_fits_data_too():
    """On the fit's own data nothing compared the draws' shapes with the model's: draws of
    2 groups where the model has 3 took group 2's prediction from group 1, a scalar site
    with an extra axis failed in JAX, naming no site, and num_groups=2 with the fit's arrays
    gave a prior of 2 groups beside a posterior of 3. Groups of the model's own size still
    predict at new inputs of the fit's length."""
    g = np.array([0, 1, 2, 0, 1, 2], np.int32)
    y = np.array([1.0, 2.0, 3.0, 1.0, 2.0, 3.0], np.float32)
    target = infer.Target.from_numpyro(grouped, g, y=y)
    result = quiet_sample(target, infer.rwmh())
    s, a = (np.asarray(result.draws[name]) for name in ("s", "a"))
    two_groups = infer.Result.from_draws({"s": s, "a": a[..., :2]})
    with pytest.raises(ValueError, match=r"a \(2,\) in the draws but \(3,\) here"):
        infer.predictive(two_groups, target)
    wide = infer.Result.from_draws({"s": np.repeat(s[..., None], 4, axis=-1), "a": a})
    with pytest.raises(ValueError, match=r"s \(4,\) in the draws but \(\) here"):
        infer.predictive(wide, target)
    other_size = infer.Target.from_numpyro(grouped, g, y=y, num_groups=2)
    with pytest.raises(ValueError, match=r"a \(3,\) in the draws but \(2,\) here.*size"):
        infer.predictive(result, other_size)
    with jax.numpy_rank_promotion("allow"):  # NumPyro's Predictive broadcasts ranks
        new = infer.predictive(result, infer.Target.from_numpyro(grouped, g[::-1].copy()))
    assert new.groups["predictions"]["y"].shape == (*s.shape, 6)


def plain(x, y):
    b = numpyro.sample("b", dist.Normal(0.0, 5.0))
    with numpyro.plate("n", 10):
        numpyro.sample("y", dist.Normal(b * x, 1.0), obs=y)


def shrunk(x, y):
    b = numpyro.sample("b", dist.Normal(0.0, 5.0))
    numpyro.factor("shrink", -0.5 * b**2)
    with numpyro.plate("n", 10):
        numpyro.sample("y", dist.Normal(b * x, 1.0), obs=y)


@pytest.mark.thorough  # an edge case, 3.5 s
def test_a_factor_term_is_not_an_observation():
    """numpyro.factor makes an observed Unit site: it was counted as an observation, in
    log_likelihood, observed_data and elpd_loo, and made models of the same data look like
    models of different data."""
    results = {
        m.__name__: quiet_sample(infer.Target.from_numpyro(m, X, Y)) for m in (plain, shrunk)
    }
    tree = results["shrunk"].to_arviz()
    assert list(tree["log_likelihood"].data_vars) == ["y"]
    assert list(tree["observed_data"].data_vars) == ["y"]
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        table = infer.compare(results)
    assert not any("different numbers of observations" in str(w.message) for w in caught)
    assert np.all(np.isfinite(table["elpd_loo"]))


def masked(y, mask):
    mu = numpyro.sample("mu", dist.Normal(0.0, 5.0))
    with numpyro.plate("n", 8), numpyro.handlers.mask(mask=mask):
        numpyro.sample("y", dist.Normal(mu, 1.0), obs=y)


@pytest.mark.thorough  # masked observations, 5 s; LOO on a NumPyro model stays
def test_masked_observations_are_left_out_of_loo():
    """A masked entry's log likelihood is 0 in every draw: PSIS failed on it ("All tail
    values are the same") and compare raised. It is left out; the rest is scored as ArviZ
    scores the unmasked entries alone."""
    import arviz_stats

    mask = np.array([1, 1, 1, 0, 1, 1, 0, 1], bool)
    y = (1.0 + RNG.normal(size=8)).astype(np.float32)
    result = quiet_sample(infer.Target.from_numpyro(masked, y, mask))
    table = infer.compare({"masked": result}, warn=False)
    tree = result.to_arviz()
    kept = tree.copy()
    kept["log_likelihood"] = tree["log_likelihood"].isel(n=np.flatnonzero(mask))
    reference = arviz_stats.loo(kept, var_name="y")
    assert table.loc["masked", "elpd_loo"] == pytest.approx(float(reference.elpd), rel=1e-6)


def with_a_param(y):
    loc = numpyro.param("loc", 0.5)
    scale = numpyro.sample("scale", dist.HalfNormal(1.0))
    numpyro.sample("y", dist.Normal(loc, scale), obs=y)


def test_param_sites_and_float64_data_are_told_and_recorded_right():
    with pytest.warns(UserWarning, match=r"numpyro.param site\(s\) \['loc'\] are held"):
        infer.Target.from_numpyro(with_a_param, Y)
    target = infer.Target.from_numpyro(plain, X, Y.astype(np.float64))
    assert list(target.constant_data) == ["x"]  # y is observed, whatever its dtype


def subsampled(y):
    mu = numpyro.sample("mu", dist.Normal(0.0, 1.0))
    with numpyro.plate("n", 10, subsample_size=5) as idx:
        numpyro.sample("y", dist.Normal(mu, 1.0), obs=y[idx])


def counted_groups(g, y):
    with numpyro.plate("group", int(g.max()) + 1):
        a = numpyro.sample("a", dist.Normal(0.0, 1.0))
    numpyro.sample("y", dist.Normal(a[g], 1.0), obs=y)


def test_a_subsampled_plate_and_numpy_on_data_are_named():
    """Both failed with a tracer error deep inside the target's construction."""
    with pytest.raises(ValueError, match=r"subsamples its plate\(s\) n \(size 10, subsample"):
        infer.Target.from_numpyro(subsampled, Y)
    groups = np.array([0, 1, 2, 0, 1, 2, 0, 1, 2, 0])
    with pytest.raises(TypeError, match=r"concrete arrays but not traced.*Python ints"):
        infer.Target.from_numpyro(counted_groups, groups, Y)
    # the same data as jnp arrays: the error blamed the values the model samples
    with pytest.raises(TypeError, match=r"concrete arrays but not traced.*Python ints"):
        infer.Target.from_numpyro(counted_groups, jnp.asarray(groups), jnp.asarray(Y))


def shrunk_to_simulate(y=None):
    b = numpyro.sample("b", dist.Normal(0.0, 5.0))
    numpyro.factor("shrink", -0.5 * b**2)
    with numpyro.plate("n", 10):
        numpyro.sample("y", dist.Normal(b, 1.0), obs=y)


def branching(y):
    mu = numpyro.sample("mu", dist.Normal(0.0, 1.0))
    scale = 1.0 if mu > 0 else 2.0
    numpyro.sample("y", dist.Normal(mu, scale), obs=y)


def counts(x, k):
    rate = numpyro.sample("rate", dist.HalfNormal(1.0))
    numpyro.sample("k", dist.Poisson(rate * x), obs=k)


@pytest.mark.thorough  # edges; the factor term's test stays
def test_the_factor_and_trace_edges_a_review_found():
    """A factor's empty value went into the prior group, and SBC told a factor's user to add
    it to observed; a float covariate equal to integer counts once truncated was dropped from
    constant_data; code on sampled values was blamed on the array arguments."""
    target = infer.Target.from_numpyro(shrunk, X, Y)
    result = quiet_sample(target)
    prior = infer.predictive(result, target, num_prior_draws=50).to_arviz()["prior"]
    assert list(prior.data_vars) == ["b"]
    with pytest.raises(ValueError, match=r"numpyro.factor term\(s\) \['shrink'\]"):
        infer.sbc(0, shrunk_to_simulate, infer.rwmh(), observed="y", num_simulations=2)
    x = np.array([0.5, 1.2, 2.9], np.float32)
    k = np.array([0, 1, 2], np.int32)
    assert list(infer.Target.from_numpyro(counts, x, k).constant_data) == ["x"]
    with pytest.raises(TypeError, match=r"runs eagerly but not traced .* values it samples"):
        infer.Target.from_numpyro(branching, Y[:1])


def logistic(x, y=None):
    b = numpyro.sample("b", dist.Normal(0.0, 2.0))
    with numpyro.plate("n", x.shape[0]):
        numpyro.sample("y", dist.Bernoulli(logits=b * x), obs=y)


@pytest.mark.thorough  # predictions at new inputs: the tests above
def test_predictions_of_a_discrete_outcome_at_new_inputs():
    """The docs' target for predictions, the outcome left out, was refused for a Bernoulli,
    Poisson or Categorical likelihood: the outcome became a discrete latent site."""
    outcome = (X > 0).astype(np.int32)
    result = quiet_sample(infer.Target.from_numpyro(logistic, X, y=outcome))
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # the docs' call: nothing to warn of
        new_inputs = infer.Target.from_numpyro(logistic, np.array([-3.0, 0.0, 3.0], np.float32))
    tree = infer.predictive(result, new_inputs).to_arviz()
    drawn = tree["predictions"]["y"].values
    assert drawn.shape == (2, 200, 3) and set(np.unique(drawn)) <= {0, 1}
    assert drawn[..., 0].mean() < 0.2 < 0.8 < drawn[..., 2].mean()  # b > 0: y follows x
    with pytest.warns(UserWarning, match=r"site 'y' is left out of the log density"):
        prior = quiet_sample(new_inputs, infer.rwmh())  # the prior of b: sampled, but said
    assert sorted(prior.draws) == ["b"]


def two_outcomes(y, k=None):
    mu = numpyro.sample("mu", dist.Normal(0.0, 5.0))
    with numpyro.plate("n", y.shape[0]):
        numpyro.sample("y", dist.Normal(mu, 1.0), obs=y)
        numpyro.sample("k", dist.Poisson(jnp.exp(mu)), obs=k)


def test_a_discrete_outcome_left_out_beside_an_observed_one_is_simulated():
    """The fit's own target was refused by infer.predictive ("they lack its latent site(s)
    k"), and the warning said the other sites were sampled from their prior ("with nothing
    observed") where y was observed."""
    fit = infer.Target.from_numpyro(two_outcomes, Y)
    with pytest.warns(UserWarning, match=r"(?s)site 'k' is left out.*infer.predictive simul"):
        result = quiet_sample(fit, infer.rwmh())
    assert sorted(result.draws) == ["mu"]
    tree = infer.predictive(result, fit, prior=True).to_arviz()
    simulated = tree["posterior_predictive"]
    assert sorted(simulated.data_vars) == ["k", "y"]
    assert simulated["k"].shape == simulated["y"].shape == (2, 200, Y.size)
    assert np.all(simulated["k"].values >= 0)
    assert sorted(tree["prior"].data_vars) == ["mu"]  # k is an outcome, not a parameter
    assert sorted(tree["prior_predictive"].data_vars) == ["k", "y"]
    with warnings.catch_warnings(record=True) as caught:  # at the user's line
        warnings.simplefilter("always")
        quiet_sample(fit, infer.rwmh())
    assert [w.filename for w in caught if "site 'k'" in str(w.message)] == [__file__]


def test_a_covariate_equal_to_the_outcome_is_constant_data():
    """Constant data were the arguments whose values no observation had: a 0/1 treatment
    equal to a 0/1 outcome (perfect separation) was dropped from constant_data."""
    treated = np.array([0, 1, 1, 0, 1], np.int32)
    target = infer.Target.from_numpyro(logistic, treated.astype(np.float32), y=treated)
    assert list(target.constant_data) == ["x"] and list(target.observed_data) == ["y"]
    converted = infer.Target.from_numpyro(regression_of_a_dict, {"x": X, "y": Y})
    assert list(converted.constant_data) == ["data.x"]  # an observation looked up in a dict

    def observed_through_jax(x, y):  # the observed value a tracer in the abstract trace
        b = numpyro.sample("b", dist.Normal(0.0, 1.0))
        numpyro.sample("y", dist.Normal(b * x, 1.0), obs=jax.numpy.asarray(y))

    through_jax = infer.Target.from_numpyro(observed_through_jax, X, Y)  # a review's regression
    assert list(through_jax.constant_data) == ["x"] and list(through_jax.observed_data) == ["y"]


def test_a_plate_named_like_a_site_and_a_nan_covariate_are_named():
    def clash(n, two):
        numpyro.sample("school", dist.Normal(0.0, 1.0))
        if two:
            numpyro.sample("tau", dist.HalfNormal(1.0))
        with numpyro.plate("school", n):
            numpyro.sample("y", dist.Normal(0.0, 1.0), obs=np.zeros(n, np.float32))

    for two in (False, True):  # "nothing to infer", and a bare AssertionError in NumPyro
        with pytest.raises(ValueError, match=r"names a plate and a sample site alike: \['school'"):
            infer.Target.from_numpyro(clash, 3, two)
    x = X.copy()
    x[2] = np.nan
    with pytest.raises(ValueError, match=r"argument\(s\) x \(1 of 10\) hold NaN or inf"):
        infer.Target.from_numpyro(logistic, x, y=(X > 0).astype(np.int32))


COVARIATE = np.linspace(-1.0, 1.0, 30).astype(np.float32)  # a global the model reads
PRIOR_SCALE = 10.0


def _reads_globals(y):
    slope = numpyro.sample("slope", dist.Normal(0.0, PRIOR_SCALE))
    with numpyro.plate("n", y.shape[0]):
        numpyro.sample("y", dist.Normal(slope * COVARIATE, 0.1), obs=y)


@pytest.mark.thorough  # an edge case, 8 s
def test_a_changed_global_the_model_reads_is_used_not_the_first_compiled_value(monkeypatch):
    """The programs were kept by the model function alone, so a notebook that redefined the
    covariate (or the prior scale) got the old fit back: slope 0.85 for a truth of -2."""
    run = dict(num_chains=2, num_samples=300, num_warmup=300)
    y = 3 * COVARIATE
    first = infer.sample(0, infer.Target.from_numpyro(_reads_globals, y), infer.nuts(), **run)
    again = infer.sample(1, infer.Target.from_numpyro(_reads_globals, y), infer.nuts(), **run)
    assert again.info["cache_hit"]  # the same values: the same programs
    monkeypatch.setattr(sys.modules[__name__], "COVARIATE", -COVARIATE)  # a new global array
    flipped = infer.sample(0, infer.Target.from_numpyro(_reads_globals, y), infer.nuts(), **run)
    assert not flipped.info["cache_hit"]
    for result, slope in ((first, 3.0), (flipped, -3.0)):  # y = 3 x = -3 (-x)
        draws = np.asarray(result.draws["slope"])
        assert abs(draws.mean() - slope) < 5 * draws.std() / np.sqrt(draws.size / 10)


def test_a_latent_site_whose_distribution_cannot_draw_is_named():
    """An ImproperUniform prior (NumPyro's ordinal-regression cutpoints) failed with a bare
    NotImplementedError from inside NumPyro."""
    from numpyro.distributions import constraints

    def ordinal(x, y=None):
        slope = numpyro.sample("slope", dist.Normal(0.0, 3.0))
        flat = dist.ImproperUniform(constraints.ordered_vector, (), event_shape=(3,))
        cutpoints = numpyro.sample("cutpoints", flat)
        with numpyro.plate("n", x.shape[0]):
            numpyro.sample("y", dist.OrderedLogistic(slope * x, cutpoints), obs=y)

    x = np.linspace(-1.0, 1.0, 20).astype(np.float32)
    with pytest.raises(ValueError, match=r"latent site 'cutpoints' has a distribution \(Improper"):
        infer.Target.from_numpyro(ordinal, x, y=np.arange(20) % 4)

    # NumPyro's advice for a von Mises site, CircularReparam, makes such a site: the fix
    # offered (a proper prior, for cutpoints) could not apply to it
    from numpyro.infer.reparam import CircularReparam

    def circular(y=None):
        with numpyro.handlers.reparam(config={"mu": CircularReparam()}):
            mu = numpyro.sample("mu", dist.VonMises(2.8, 1.0))
        with numpyro.plate("n", 5):
            numpyro.sample("y", dist.VonMises(mu, 2.0), obs=y)

    with pytest.raises(ValueError, match=r"'mu_unwrapped' is the site numpyro's CircularReparam"):
        infer.Target.from_numpyro(circular, y=np.full(5, 2.5, np.float32))


def _residuals_when_fitted(x, y=None):
    slope = numpyro.sample("slope", dist.Normal(0.0, 3.0))
    with numpyro.plate("n", x.shape[0]):
        numpyro.sample("y", dist.Normal(slope * x, 0.5), obs=y)
    if y is not None:  # a site the model makes only when the outcome is given
        numpyro.deterministic("resid", y - slope * x)


@pytest.mark.thorough  # an edge case, 4 s
def test_a_deterministic_made_only_with_the_outcome_is_left_out_of_new_predictions():
    """Predictions at new inputs were refused: 'the draws lack its latent site(s) (none) and
    hold resid', though the model was the same (NumPyro's Predictive ignores the site)."""
    x = np.linspace(-1.0, 1.0, 20).astype(np.float32)
    fitted = infer.Target.from_numpyro(_residuals_when_fitted, x, y=2 * x)
    result = infer.sample(0, fitted, infer.nuts(), num_chains=2, num_samples=100, num_warmup=100)
    with jax.numpy_rank_promotion("allow"):  # NumPyro's median start of the sampled y
        new = infer.Target.from_numpyro(_residuals_when_fitted, np.array([0.0, 3.0], np.float32))
    with pytest.warns(UserWarning, match=r"makes no site resid at these arguments"):
        predicted = infer.predictive(result, new)
    assert np.shape(predicted.groups["predictions"]["y"]) == (2, 100, 2)
    wrong = infer.Result.from_draws({"slope": np.zeros((2, 10)), "other": np.zeros((2, 10))})
    with pytest.raises(ValueError, match="hold other that it does not have"):
        infer.predictive(wrong, fitted)  # on the fit's own data: another model's draws


def test_a_models_own_key_error_stands():
    """The explanation of a failing model fell through to a name it never set, and the user
    read an UnboundLocalError of infer's instead of the model's KeyError."""

    def misread(data):
        s = numpyro.sample("s", dist.HalfNormal(1.0))
        numpyro.sample("y", dist.Normal(0.0, s), obs=data["y_obs"])

    with pytest.raises(KeyError, match="y_obs"):
        infer.Target.from_numpyro(misread, {"y": np.zeros(5, np.float32)})


def uniform_up_to(u=None):
    upper = numpyro.sample("upper", dist.Exponential(0.1))
    with numpyro.plate("n", 20):
        numpyro.sample("u", dist.Uniform(0.0, upper), obs=u)


@pytest.mark.thorough  # an edge case, 4 s
def test_a_likelihood_whose_support_is_a_parameter_takes_numpy_data():
    """NumPyro checks a NumPy observation's support with NumPy, which failed on the traced
    bound with a TracerArrayConversionError naming neither argument nor cause (jnp data
    worked). The bound's posterior density is ∝ upper**-20 exp(-upper / 10) above max(u)."""
    from scipy import integrate

    u = np.random.default_rng(0).uniform(0.0, 3.0, 20).astype(np.float32)
    target = infer.Target.from_numpyro(uniform_up_to, u=u)
    # a wall at max(u) in the unconstrained space: NUTS would diverge there, RWMH rejects
    result = infer.sample(0, target, infer.rwmh(), num_chains=4, num_samples=2000)
    upper = np.asarray(result.draws["upper"])
    assert upper.min() >= u.max()  # never below the largest observation

    def density(x, power=0):
        return x**power * (x / u.max()) ** -20.0 * np.exp(-x / 10.0)

    top = 10.0 * u.max()  # (upper / max(u))**-20 is 1e-20 there
    mean = integrate.quad(density, u.max(), top, args=(1,))[0]
    mean /= integrate.quad(density, u.max(), top)[0]
    row = infer.summary(result).loc["upper"]
    assert abs(row["mean"] - mean) < 4 * row["mcse_mean"]


def with_a_sign(x, y=None):
    a = numpyro.sample("a", dist.Normal(0.0, 5.0))
    numpyro.deterministic("positive", a > 0)
    numpyro.deterministic("offsets", jnp.stack([jnp.zeros(()), a]))  # a reference fixed at 0
    with numpyro.plate("n", 10):
        numpyro.sample("y", dist.Normal(a * x, 1.0), obs=y)


@pytest.mark.thorough  # an edge case (True/False and fixed sites), 12 s;
# test_workflow's ADVI prediction checks a deterministic site
def test_deterministic_sites_true_false_or_fixed_are_read_as_values(tmp_path):
    """A deterministic site ``a > 0`` came out as booleans, and summary, compare with
    ArviZ's statistics, plots and ``infer report`` failed inside ArviZ ("numpy boolean
    subtract ... is not supported"): it is 0/1 now, as ``Result.from_draws`` keeps it. A
    deterministic entry fixed at 0 flagged a healthy run as one that learned nothing."""
    result = quiet_sample(infer.Target.from_numpyro(with_a_sign, X, Y))
    positive = result.draws["positive"]
    assert positive.dtype == np.int8
    np.testing.assert_array_equal(positive, np.asarray(result.draws["a"]) > 0)
    assert infer.summary(result).loc["positive", "mean"] == pytest.approx(positive.mean())
    # the fixed 0 of a deterministic site was "nothing learned", flagged on a healthy run
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        table = infer.compare([result])
    assert "nan_stats" not in table.loc["mala", "flags"], table.loc["mala", "flags"]
    assert not [w for w in caught if "never changed" in str(w.message)]
    assert infer.load(result.save(tmp_path / "run.nc")).info["deterministic"] == [
        "positive",
        "offsets",
    ]
    # an ADVI fit of the same model records them too (its table had the same false flag)
    fit = infer.advi(0, infer.Target.from_numpyro(with_a_sign, X, Y), num_steps=500)
    assert fit.info["deterministic"] == ["positive", "offsets"]
    assert "nan_stats" not in infer.compare({"advi": fit}, warn=False).loc["advi", "flags"]


def constrained_sites(y=None):
    mu = numpyro.sample("mu", dist.Normal(0.0, 5.0))
    s = numpyro.sample("s", dist.HalfNormal(2.0))
    numpyro.sample("u", dist.Uniform(0.0, 10.0))
    w = numpyro.sample("w", dist.Dirichlet(jnp.ones(3)))
    with numpyro.plate("n", 5):
        numpyro.sample("y", dist.Normal(mu + w[0], s), obs=y)


def test_a_start_given_in_the_sites_own_space_is_unconstrained_by_name():
    """init= is read in the unconstrained space; a NumPyro user's {"s": 2.0, "u": 5.0}
    started at s = 7.39, u = 9.93, and u = 12 (outside Uniform(0, 10)) ran silently."""
    with jax.numpy_rank_promotion("allow"):  # NumPyro's stick-breaking inverse promotes
        target = infer.Target.from_numpyro(constrained_sites, y=np.ones(5, np.float32))
        point = target.unconstrain({"mu": 1.0, "s": 2.0, "u": 5.0, "w": [0.2, 0.3, 0.5]})
    values = {"mu": 1.0, "s": 2.0, "u": 5.0, "w": [0.2, 0.3, 0.5]}
    assert float(point["s"]) == pytest.approx(np.log(2.0)) and float(point["u"]) == 0.0
    back = target.constrain(point)
    for name, value in values.items():
        np.testing.assert_allclose(back[name], value, rtol=1e-6)
    result = infer.sample(0, target, infer.mala(), init=point, num_chains=2, num_samples=5)
    assert result.draws["w"].shape == (2, 5, 3)
    refused = [
        ({**values, "u": 12.0}, r"values\['u'\] = 12.0 is outside the site's support"),
        ({**values, "s": -1.0}, r"the model refused these values: .* outside its site's supp"),
        ({**values, "w": [0.5, 0.5]}, r"values\['w'\] has shape \(2,\); the site's is \(3,\)"),
        ({"mu": 1.0}, r"missing s, u, w"),
        ({**values, "z": 0.0}, r"unknown z"),
    ]
    for given, said in refused:
        with pytest.raises(ValueError, match=said), jax.numpy_rank_promotion("allow"):
            target.unconstrain(given)

    def sample_shaped():
        numpyro.sample("z", dist.Normal(0.0, 1.0), sample_shape=(3,))

    shaped = infer.Target.from_numpyro(sample_shaped)  # a review: refused as shape ()
    assert np.shape(shaped.unconstrain({"z": [0.1, 0.2, 0.3]})["z"]) == (3,)
    with pytest.raises(TypeError, match="is not a NumPyro model's"):
        infer.Target(lambda x: -(x**2), init=jnp.zeros(())).unconstrain({"x": 1.0})


def autoregression(y=None, length=30):
    """AR(1) written with NumPyro's scan: each step's mean is the previous value."""
    from numpyro.contrib.control_flow import scan

    phi = numpyro.sample("phi", dist.Uniform(-1.0, 1.0))
    scale = numpyro.sample("scale", dist.HalfNormal(1.0))

    def step(previous, y_t):
        y_t = numpyro.sample("y", dist.Normal(phi * previous, scale), obs=y_t)
        return y_t, y_t

    scan(step, jnp.zeros(()), y, length=length)


def test_the_predictive_of_a_scan_model_simulates_whole_series_not_steps_around_the_data():
    """The observations were left out only after scan's body had run on them, so each
    simulated y_t was drawn around the observed y_{t-1}: the prior and posterior predictive
    depended on the data. Now, as NumPyro's Predictive with y=None: the same draws whatever
    the data, and each series' innovations (y_t - phi y_{t-1}) / scale are N(0, 1) (sd 2.0
    before, around its own simulated series; 11,600 of them: the sd's standard error 0.007)."""
    draws = {"phi": np.full((2, 200), 0.9, np.float32), "scale": np.full((2, 200), 0.5, np.float32)}
    trees = []
    for data in (np.cumsum(RNG.normal(size=30)), RNG.normal(size=30)):
        target = infer.Target.from_numpyro(autoregression, y=data.astype(np.float32))
        trees.append(infer.predictive(infer.Result.from_draws(draws), target, prior=True))
    first, second = (result.to_arviz() for result in trees)
    for group in ("posterior_predictive", "prior_predictive"):
        np.testing.assert_array_equal(first[group]["y"].values, second[group]["y"].values)
    series = first.posterior_predictive["y"].values.reshape(-1, 30)
    innovations = (series[:, 1:] - 0.9 * series[:, :-1]) / 0.5
    assert abs(innovations.std() - 1.0) < 5 / np.sqrt(2 * innovations.size)


def conditioned_autoregression(y=None, length=30):
    """The same AR(1), its observations given by a condition handler around the scan."""
    from numpyro.contrib.control_flow import scan

    phi = numpyro.sample("phi", dist.Uniform(-1.0, 1.0))
    scale = numpyro.sample("scale", dist.HalfNormal(1.0))

    def step(previous, _):
        y_t = numpyro.sample("y", dist.Normal(phi * previous, scale))
        return y_t, None

    with numpyro.handlers.condition(data={} if y is None else {"y": jnp.asarray(y)}):
        scan(step, jnp.zeros(()), None, length=length)


def test_observations_conditioned_inside_a_scan_are_left_out_too():
    """The condition handler's data are re-applied around scan's body, over the handler that
    leaves observations out: each step was drawn around the data (means 34.7 and -34.5 for
    data at +40 and -40)."""
    draws = {"phi": np.full((2, 50), 0.9, np.float32), "scale": np.full((2, 50), 0.5, np.float32)}
    simulated = []
    for data in (RNG.normal(size=30) + 40.0, RNG.normal(size=30) - 40.0):
        target = infer.Target.from_numpyro(conditioned_autoregression, y=data.astype(np.float32))
        tree = infer.predictive(infer.Result.from_draws(draws), target, prior=False).to_arviz()
        simulated.append(tree.posterior_predictive["y"].values)
    np.testing.assert_array_equal(*simulated)


def test_a_callable_operand_of_a_cond_or_scan_is_left_as_it_is():
    """Every callable argument of a control-flow call was wrapped as a body, so an operand
    or carry that is a callable pytree (a jax.tree_util.Partial, a module) became a plain
    function, which JAX refused."""
    from jax.tree_util import Partial
    from numpyro.contrib.control_flow import cond, scan

    def scaled(weight, x):
        return weight * x

    def with_cond(y=None):
        weight = numpyro.sample("weight", dist.Normal(0.0, 1.0))

        def branch(layer):
            return numpyro.sample("y", dist.Normal(layer(1.0), 1.0), obs=y)

        cond(weight > 0, branch, branch, Partial(scaled, weight))

    def with_scan(y=None):
        weight = numpyro.sample("weight", dist.Normal(0.0, 1.0))

        def step(layer, y_t):
            numpyro.sample("y", dist.Normal(layer(1.0), 1.0), obs=y_t)
            return layer, None

        scan(step, Partial(scaled, weight), y, length=3)

    draws = infer.Result.from_draws({"weight": np.asarray([[0.5, -0.5]], np.float32)})
    for model, data, shape in ((with_cond, np.float32(0.3), ()), (with_scan, np.ones(3), (3,))):
        target = infer.Target.from_numpyro(model, y=np.asarray(data, np.float32))
        tree = infer.predictive(draws, target, prior=False).to_arviz()
        assert tree.posterior_predictive["y"].shape == (1, 2, *shape)
