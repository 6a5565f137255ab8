"""Annealed importance sampling: exact log normalising constants inside the estimate's
interval, the bidirectional bracket, and its errors for bad input."""

import warnings

import jax
import jax.numpy as jnp
import numpy as np
import numpyro.distributions as dist
import pytest
from stats_checks import threshold

import infer
from models.targets import evidence

pytestmark = pytest.mark.slow  # a module `make test-fast` leaves out

D = 5


def conjugate_gaussian(seed):
    """(target, prior, exact log Z, the mu that made the data: an exact posterior draw)."""
    return evidence.conjugate_gaussian(seed, dim=D)


@pytest.mark.thorough  # the bracket's and the linear schedule's checks stay
def test_conjugate_gaussian_log_z_is_inside_the_interval(seed):
    target, prior, exact, _ = conjugate_gaussian(seed)
    result = infer.ais(seed, target, prior, num_temperatures=200, num_chains=256)
    assert result.ess > 10
    assert abs(result.log_z - exact) < threshold(1) * result.log_z_se, (result, exact)
    assert result.num_nonfinite == 0
    assert result.draws.shape == (256, D)
    # The pilot's step sizes keep the acceptance near its goal (0.8) along the path.
    assert 0.6 < np.median(result.acceptance) < 0.95
    assert np.mean(result.acceptance < 0.2) < 0.05


def counting_gradients(target):
    """``(target whose log density counts its gradient evaluations, count)``: the backward
    pass of the log density calls back to the host once per chain and evaluation."""
    count = [0]

    def tick(_):
        count[0] += 1

    logdensity_fn = target.logdensity

    @jax.custom_vjp
    def counted(x):
        return logdensity_fn(x)

    def forward(x):
        return logdensity_fn(x), x

    def backward(x, cotangent):
        jax.debug.callback(tick, x)
        return (jax.grad(logdensity_fn)(x) * cotangent,)

    counted.defvjp(forward, backward)
    return target.with_options(logdensity_fn=counted, data=None), count


@pytest.mark.thorough  # a cost count, 10 s
def test_gradient_count_is_the_gradients_computed():
    """Pilot, forward and reverse pass, against the gradients counted as they happen."""
    target, prior, _, mu_true = conjugate_gaussian(0)
    counted, count = counting_gradients(target)
    jax.vmap(jax.grad(counted.logdensity_fn))(jnp.zeros((7, D)))
    assert count[0] == 7  # one per chain and gradient
    count[0] = 0
    result = infer.ais(
        0,
        counted,
        prior,
        num_temperatures=10,
        num_chains=8,
        num_leapfrog=3,
        num_tuning_chains=4,
        exact_posterior_draws=mu_true,
    )
    assert result.num_grad_evals == count[0]
    # 8 chains are too few for a Pareto k-hat: none, rather than an infinite one warned about
    assert result.pareto_k is None and result.upper_pareto_k is None


def test_bidirectional_bracket_contains_the_truth(seed):
    """The steps of docs/ais.md's example, checked."""
    problem = conjugate_gaussian(seed + 10)
    result = infer.ais(
        seed,
        problem.target,
        problem.prior,
        num_temperatures=200,
        num_chains=256,
        exact_posterior_draws=problem.exact_posterior_draw,
    )
    assert repr(result).startswith(f"AISResult(log_z={result.log_z:.4f} ± ")
    assert f"log_z_upper={result.log_z_upper:.4f} ± " in repr(result)
    assert "unreliable" not in repr(result)
    lower, upper = result.bracket
    z = threshold(2)
    exact = problem.log_z
    assert lower - z * result.log_z_se <= exact <= upper + z * result.log_z_upper_se
    # With this many temperatures the gap is small: both passes are nearly exact.
    assert upper - lower < 1.0


@pytest.mark.thorough  # the page's claim, 3 s
def test_the_docs_example_at_100_temperatures_is_flagged_as_the_page_says():
    """docs/ais.md: its example at 100 temperatures (seed 0) crosses its bounds, and the
    warnings and print(result) say so; the example's 1,000 temperatures are tested above."""
    problem = conjugate_gaussian(0)
    with pytest.warns(infer.DiagnosticWarning) as caught:
        result = infer.ais(
            0,
            problem.target,
            problem.prior,
            num_temperatures=100,
            num_chains=128,
            exact_posterior_draws=problem.exact_posterior_draw,
        )
    said = " ".join(str(w.message) for w in caught)
    assert result.log_z > result.log_z_upper and "the bounds cross" in said
    assert "heavy-tailed" in said and result.upper_pareto_k > 0.7
    assert "effective sample size" in said and result.ess < 10
    assert repr(result).count("(unreliable: see the warnings)") == 2


@pytest.mark.thorough  # the conjugate and bracket checks stay
def test_gaussian_mixture_log_z(seed):
    """Two well separated, unequal modes times a known constant: ``Z = e^3`` exactly. AIS
    from a broad prior finds both; HMC alone would stay in one."""
    log_c = 3.0
    mixture = dist.MixtureSameFamily(
        dist.Categorical(jnp.asarray([0.3, 0.7])),
        dist.MultivariateNormal(
            jnp.asarray([[-4.0, 0.0], [4.0, 1.0]]),
            covariance_matrix=jnp.asarray([[[1.0, 0.5], [0.5, 1.0]], [[0.5, 0.0], [0.0, 2.0]]]),
        ),
    )
    target = infer.Target(lambda x: log_c + mixture.log_prob(x), init=jnp.zeros(2), name="mixture")
    prior = dist.Normal(jnp.zeros(2), 6.0).to_event(1)
    result = infer.ais(seed, target, prior, num_temperatures=300, num_chains=512)
    assert abs(result.log_z - log_c) < threshold(1) * result.log_z_se, result
    # Both modes are reached by the weighted chains, in their proportions.
    weights = np.exp(result.log_weights - result.log_weights.max())
    right = np.sum(weights * (result.draws[:, 0] > 0)) / np.sum(weights)
    assert 0.5 < right < 0.9


@pytest.mark.thorough  # options, 3.3 s; the tuned defaults stay
def test_fixed_step_size_and_linear_schedule():
    target, prior, exact, _ = conjugate_gaussian(0)
    result = infer.ais(
        1, target, prior, num_temperatures=300, num_chains=128, step_size=0.2, schedule="linear"
    )
    np.testing.assert_allclose(result.step_sizes, 0.2)
    np.testing.assert_allclose(result.temperatures, np.linspace(0, 1, 301))
    assert abs(result.log_z - exact) < threshold(1) * result.log_z_se
    # a schedule array alone sets the number of temperatures (it was checked against 500)
    given = np.linspace(0, 1, 301) ** 2
    again = infer.ais(1, target, prior, num_chains=128, step_size=0.2, schedule=given)
    np.testing.assert_allclose(again.temperatures, given)
    assert abs(again.log_z - exact) < threshold(1) * again.log_z_se


@pytest.mark.thorough  # a variant, 3 s
def test_ais_runs_with_float64_enabled():
    """Under ``jax_enable_x64`` the tempered kernel's step size and the NaN count kept
    float32/int32 while the carry was float64/int64: every AIS call failed in JAX's scan."""
    with jax.enable_x64(True):
        target, prior, exact, _ = conjugate_gaussian(0)
        result = infer.ais(0, target, prior, num_temperatures=300, num_chains=64, step_size=0.2)
    assert np.asarray(result.log_weights).dtype == np.float64
    assert abs(result.log_z - exact) < threshold(1) * result.log_z_se


@pytest.mark.thorough  # an edge case, 4.4 s; the driver's NaN rejections stay
def test_nan_in_the_log_density_gets_weight_zero_and_a_warning():
    prior = dist.Normal(jnp.zeros(1), 1.0).to_event(1)
    target = infer.Target(
        lambda x: jnp.where(x[0] > 2.5, jnp.nan, -0.5 * jnp.sum(x**2)),
        init=jnp.zeros(1),
        name="nan_tail",
    )
    with pytest.warns(infer.DiagnosticWarning, match="NaN or \\+inf"):
        result = infer.ais(0, target, prior, num_temperatures=20, num_chains=512)
    assert result.num_nonfinite > 0
    assert np.all(np.isfinite(result.log_weights) | (result.log_weights == -np.inf))
    assert np.isfinite(result.log_z)


@pytest.mark.thorough  # a warning, 5 s
def test_a_target_with_mass_outside_the_priors_support_is_warned_about():
    """A HalfNormal prior under a standard normal target gave log_z = log(1/2) +- 0.0000 (the
    truth is 0) without a word: annealing never leaves the prior's support."""
    normal = infer.Target(lambda x: -0.5 * jnp.sum(x**2) - 0.5 * jnp.log(2 * jnp.pi), init=0.5)
    half = dist.HalfNormal(1.0)
    with pytest.warns(infer.DiagnosticWarning, match=r"finite outside the prior's support"):
        result = infer.ais(0, normal, half, num_temperatures=50, num_chains=64)
    assert abs(result.log_z - np.log(0.5)) < 0.05  # what it computes: the half inside
    folded = infer.Target(  # the same density on the prior's support: nothing to say
        lambda x: jnp.where(x > 0, -0.5 * x**2 - 0.5 * jnp.log(jnp.pi / 2), -jnp.inf), init=0.5
    )
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        infer.ais(0, folded, half, num_temperatures=50, num_chains=64)
    assert not any("outside the prior's support" in str(w.message) for w in caught)


def test_a_target_that_is_its_prior_times_a_constant_gets_that_constant_exactly():
    """``log f = log prior + 1.7``: each increment is ``(beta_t - beta_{t-1}) * 1.7`` for
    every chain, so every weight is 1.7 up to float32 round-off over the path (about
    ``10 eps 1.7``, 2e-6): no Monte Carlo error to allow for. Dropping the last
    temperature's increment passed `make test`'s checks, whose schedules' last step in beta
    is 7e-4 (far below their standard errors); here it gives 0.037 in place of 1.7."""
    prior = dist.Normal(jnp.zeros(2), 1.0).to_event(1)
    shifted = infer.Target(lambda x: prior.log_prob(x) + 1.7, init=jnp.zeros(2), name="shifted")
    with warnings.catch_warnings():  # see the test below: the moves may be rejected
        warnings.filterwarnings("ignore", "ais on shifted: the HMC moves were almost all rej")
        result = infer.ais(0, shifted, prior, num_temperatures=10, num_chains=32)
    assert abs(result.log_z - 1.7) < 1e-5, result.log_z
    assert result.log_z_se < 1e-5


@pytest.mark.thorough  # an edge case, 3 s
def test_weights_that_are_all_equal_give_the_exact_answer():
    """A target equal to its prior (log Z = 0, the check a user tries first): every chain's
    weight is the same, which ArviZ cannot fit a Pareto tail to ("All tail values are the
    same", raised after the whole run). k-hat is -inf there: bounded weights."""
    prior = dist.Normal(jnp.zeros(2), 1.0).to_event(1)
    same = infer.Target(prior.log_prob, init=jnp.zeros(2), name="prior")
    result = infer.ais(0, same, prior, num_temperatures=10, num_chains=32)
    assert result.log_z == 0.0 and result.pareto_k == -np.inf and result.ess == 32
    # under 10 chains the ESS floor (10) cannot be met, but equal weights are exact
    with warnings.catch_warnings():
        warnings.simplefilter("error", infer.DiagnosticWarning)  # of the weights, that is:
        # the moves may be rejected at a temperature whose tuned step size passed 2, where the
        # leapfrog leaves the unit Gaussian (2.16 compiled at LLVM level 0): a fair warning
        warnings.filterwarnings("ignore", "ais on prior: the HMC moves were almost all rejected")
        few = infer.ais(0, same, prior, num_temperatures=10, num_chains=8)
    assert few.log_z == 0.0 and "unreliable" not in repr(few)


@pytest.mark.parametrize(
    ("kwargs", "match"),
    [
        ({"num_temperatures": 0}, "num_temperatures"),
        ({"num_chains": 1}, "num_chains"),
        ({"schedule": "cosine"}, "schedule"),
        ({"schedule": None, "num_temperatures": 10}, "from 0 to 1; got None"),  # was 'got nan'
        ({"schedule": np.linspace(0.1, 1, 11), "num_temperatures": 10}, "schedule"),
        ({"step_size": -0.1}, "step_size"),
        ({"step_size": 0.1, "target_accept": 0.6}, "tunes the step sizes, but step_size=0.1"),
        ({"target_accept": 1.5}, "target_accept"),
        ({"schedule": np.array([1.0])}, r"at least the inverse temperatures 0 and 1; got \[1.0\]"),
        ({"exact_posterior_draws": np.zeros(3)}, "exact_posterior_draws"),
        ({"exact_posterior_draws": np.full(5, np.nan)}, r"must be finite; .* chain\(s\) \[0, 1,"),
        ({"schedule": np.array([0.0, 0.5, np.nan, 1.0]), "num_temperatures": 3}, r"got \[0. "),
    ],
)
def test_bad_arguments_are_named(kwargs, match):
    target, prior, _, _ = conjugate_gaussian(0)
    with pytest.raises(
        TypeError if kwargs.get("schedule", "") is None else ValueError, match=match
    ):
        infer.ais(0, target, prior, **kwargs)


def test_exact_draws_that_are_no_array_are_named():
    """A dict of draws failed with "float() argument must be a string or a real number"."""
    target, prior, _, _ = conjugate_gaussian(0)
    with pytest.raises(TypeError, match=r"exact_posterior_draws must be an array: one posit"):
        infer.ais(0, target, prior, exact_posterior_draws={"x": np.zeros(5)})


@pytest.mark.thorough  # a rarer warning, 4 s
def test_a_heavy_tailed_upper_bound_is_marked_unreliable_where_it_is_printed():
    """The mark followed log_z only, and an upper bound whose warning fired printed clean."""
    target, prior, _, _ = conjugate_gaussian(0)
    result = infer.ais(0, target, prior, num_temperatures=10, num_chains=32)
    weights = np.zeros(32)
    fine = result._replace(
        pareto_k=0.1,
        ess=32.0,
        log_z_upper=1.0,
        log_z_upper_se=0.1,
        reverse_log_weights=weights,
        upper_pareto_k=0.2,
    )
    heavy = fine._replace(upper_pareto_k=0.9)
    assert "unreliable" not in repr(fine)
    assert "log_z_upper=1.0000 ± 0.1000 (unreliable: see the warnings)" in repr(heavy)
    assert "log_z=" in repr(heavy) and repr(heavy).count("unreliable") == 1
    # an ESS of a few weights: its standard error is no error bar (see the next test)
    assert "ess=6.0" in repr(fine._replace(ess=6.0)) and "unreliable" in repr(
        fine._replace(ess=6.0)
    )


@pytest.mark.thorough  # a rarer warning, 7 s
def test_a_standard_error_from_a_handful_of_weights_is_warned_about():
    """32 chains, 20 temperatures: log_z 13.5 standard errors below the exact log Z, from an
    ESS of 3.1 with k-hat 0.65, and only the rejected HMC moves were warned about (the ESS
    floor was 2; it is 10)."""
    target, prior, _, _ = conjugate_gaussian(0)
    with pytest.warns(infer.DiagnosticWarning, match=r"effective sample size is .* too noisy"):
        result = infer.ais(7, target, prior, num_temperatures=20, num_chains=32)
    # (12 seeds of this setting gave ESS 1.2 to 4.0 with jax 0.12.0.1, k-hat 0.36 to 1.84)
    assert "(unreliable: see the warnings)" in repr(result)
    # under 10 chains, where more temperatures cannot lift the ESS to 10, the advice says so
    with pytest.warns(infer.DiagnosticWarning, match=r"Use 10 chains at least \(num_chains\)"):
        infer.ais(7, target, prior, num_temperatures=20, num_chains=8)


def test_a_target_over_a_dict_or_without_init_is_refused_with_the_reason():
    target, prior, _, _ = conjugate_gaussian(0)
    over_dict = infer.Target(lambda p: target.logdensity(p["x"]), init={"x": target.init})
    with pytest.raises(ValueError, match=r"has a dict of 1 leaves .* one flat array"):
        infer.ais(0, over_dict, prior, num_chains=8)
    no_init = infer.Target(target.logdensity)
    with pytest.raises(ValueError, match="has no init: infer.ais needs one"):
        infer.ais(0, no_init, prior, num_chains=8)


def test_a_prior_of_the_wrong_shape_is_refused():
    target, _, _, _ = conjugate_gaussian(0)
    with pytest.raises(ValueError, match="batch_shape"):
        infer.ais(0, target, dist.Normal(0.0, 1.0), num_chains=8)
    with pytest.raises(TypeError, match="numpyro"):
        infer.ais(0, target, "normal", num_chains=8)
    improper = dist.ImproperUniform(dist.constraints.real, (), (5,))
    with pytest.raises(TypeError, match="can draw samples .* ImproperUniform cannot"):
        infer.ais(0, target, improper, num_chains=8)


def _bracket_and_warnings(seed, target, prior, num_temperatures, exact_draws):
    """``infer.ais`` with the reverse pass from ``exact_draws`` over 128 chains, and the
    messages of every warning it gave."""
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        result = infer.ais(
            seed,
            target,
            prior,
            num_temperatures=num_temperatures,
            num_chains=128,
            exact_posterior_draws=exact_draws,
        )
    return result, [str(w.message) for w in caught]


@pytest.mark.thorough  # a warning, over 4 runs
def test_bounds_that_cross_are_warned_about():
    """At 100 temperatures and 128 chains the bracket is narrower than its noise: on some
    seeds the lower bound comes out above the upper one, and then (only then) a warning
    says so."""
    target, prior, _, mu_true = conjugate_gaussian(0)
    crossed = []
    for seed in range(4):
        result, messages = _bracket_and_warnings(seed, target, prior, 100, mu_true)
        said = any("the bounds cross" in message for message in messages)
        assert said == (result.log_z > result.log_z_upper), (seed, result)
        crossed.append(said)
    assert any(crossed) and not all(crossed)  # both branches were taken


@pytest.mark.thorough  # a warning, four runs
def test_heavy_tailed_reverse_weights_are_warned_about_by_pass():
    """A conjugate regression annealed back from one shared exact draw: each bound whose
    weights' Pareto k-hat is above 0.7 (whose standard error understates the error) is named
    in a warning of its own, and only those. Which seeds give heavy reverse weights and light
    forward ones moves with jax's version (0, 1 with 0.12.0.1; 0, 2, 3 with 0.12.1), so four
    are run and one at least must give that case."""
    rng = np.random.default_rng(5)
    x = rng.normal(size=(30, 3))
    beta = rng.normal(0.0, 2.0, 3)
    y = jnp.asarray(x @ beta + 0.5 * rng.normal(size=30), jnp.float32)
    x = jnp.asarray(x, jnp.float32)
    prior = dist.Normal(jnp.zeros(3), 2.0).to_event(1)
    target = infer.Target(
        lambda b: prior.log_prob(b) + jnp.sum(dist.Normal(x @ b, 0.5).log_prob(y)),
        init=jnp.zeros(3),
        name="regression",
    )
    upper_alone = 0
    for seed in range(4):
        result, messages = _bracket_and_warnings(seed, target, prior, 200, beta)
        heavy = [message for message in messages if "heavy-tailed" in message]
        named = {
            bound for bound in ("log_z", "log_z_upper") for m in heavy if f"behind {bound} are" in m
        }
        k_hats = {"log_z": result.pareto_k, "log_z_upper": result.upper_pareto_k}
        expected = {bound for bound, k in k_hats.items() if not k <= 0.7}  # NaN is heavy too
        assert len(heavy) == len(named) and named == expected, (seed, heavy)
        upper_alone += result.upper_pareto_k > 0.7 > result.pareto_k
    assert upper_alone >= 1


@pytest.mark.thorough  # a refusal, 3 s
def test_a_path_of_one_temperature_is_told_it_has_nothing_to_tune_at():
    """Its rejections were once put down to step sizes "tuned at one temperature" that "did
    not suit the next", with no next temperature."""
    target, prior, _, _ = conjugate_gaussian(0)
    with pytest.warns(infer.DiagnosticWarning, match=r"With one temperature the step size"):
        result = infer.ais(0, target, prior, num_temperatures=1, num_chains=16)
    # its ± (at most about 1 nat, from the weights' ESS) is no error bar here: said so
    assert result.ess < 2 and "± " in repr(result) and "(unreliable" in repr(result)


@pytest.mark.thorough  # a warning over three runs, 10 s
def test_temperatures_where_the_chains_stood_still_are_named():
    """On a path of 5 temperatures the step sizes carried from one temperature to the next
    do not suit it, and the HMC moves are all rejected at some: log_z was far off with only
    the weights' warnings to show for it. On 100 the moves are accepted everywhere."""
    target, prior, _, _ = conjugate_gaussian(0)
    with pytest.warns(infer.DiagnosticWarning, match=r"almost all rejected .* of 5 temperatures"):
        coarse = infer.ais(0, target, prior, num_temperatures=5, num_chains=64)
    assert np.min(coarse.acceptance) < 0.05
    with pytest.warns(infer.DiagnosticWarning, match=r"step_size=3 is too large there"):
        infer.ais(0, target, prior, num_temperatures=20, num_chains=16, step_size=3.0)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        fine = infer.ais(0, target, prior, num_temperatures=100, num_chains=64)
    assert np.min(fine.acceptance) >= 0.05
    assert not any("almost all rejected" in str(w.message) for w in caught)


@pytest.mark.thorough  # an edge case, 3 s
def test_weights_equal_up_to_round_off_are_not_called_heavy_tailed():
    # a target that is the prior times an indicator: every finite weight is one constant up
    # to float32 round-off, where ArviZ's PSIS returns NaN, warned of as "k-hat nan > 0.70"
    from infer.fit_checks import pareto_k

    rng = np.random.default_rng(0)
    log_weights = np.float32(0.9189385) + rng.uniform(0.0, 6e-8, 64).astype(np.float32)
    log_weights[::2] = -np.inf  # half the chains outside the support: weight zero
    assert pareto_k(log_weights.astype(np.float64)) == -np.inf
    target = infer.Target(
        lambda x: jnp.sum(jnp.where(x > 0, -0.5 * x**2, -jnp.inf)), init=jnp.ones(1)
    )
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        result = infer.ais(
            0, target, dist.Normal(jnp.zeros(1), 1.0), num_temperatures=100, num_chains=64
        )
    assert result.pareto_k == -np.inf
    assert not [w for w in caught if "heavy-tailed" in str(w.message)]
