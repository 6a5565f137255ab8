"""Bad input gets a clear error that names the argument and the fix, before compilation."""

import pickle
import warnings

import jax
import jax.numpy as jnp
import numpy as np
import numpyro
import numpyro.distributions as dist
import pytest

import infer
from infer import arguments
from infer.placement import PROGRAMS

NORMAL_2D = infer.Target(lambda x: -0.5 * jnp.sum(x**2), init=jnp.zeros(2), name="normal_2d")


@pytest.fixture
def nothing_compiled():
    """Asserts the test added no compiled sampling program."""
    before = set(PROGRAMS.keys())
    yield
    added = [
        key
        for key in PROGRAMS.keys()
        if key not in before and key[0] in ("markov-advance", "exact")
    ]
    assert not added, "a sampling program was compiled before the error"


def test_target_that_is_not_callable():
    with pytest.raises(TypeError, match="logdensity_fn must be a callable"):
        infer.Target(3.0, init=jnp.zeros(2))


def test_target_that_is_not_a_target(nothing_compiled):
    with pytest.raises(TypeError, match=r"target must be an infer.Target; got function"):
        infer.sample(0, lambda x: -(x**2), infer.rwmh())


def test_log_density_that_returns_a_vector(nothing_compiled):
    target = infer.Target(lambda x: -0.5 * x**2, init=jnp.zeros(3))
    with pytest.raises(ValueError, match=r"must return a scalar .* shape \(3,\) .* jnp.sum"):
        infer.sample(0, target, infer.rwmh())
    # a (log density, extra) pair was told to sum its terms
    pair = infer.Target(lambda x: (-0.5 * jnp.sum(x**2), x), init=jnp.zeros(3))
    with pytest.raises(ValueError, match=r"returned a tuple .* Return the log density alone"):
        infer.sample(0, pair, infer.rwmh())


def test_a_negative_spread_in_a_ground_truth_is_refused():
    with pytest.raises(ValueError, match=r"GroundTruth.std\['x'\] holds a negative value, -2"):
        infer.GroundTruth(mean={"x": np.zeros(2)}, std={"x": np.array([1.0, -2.0])})


def test_nan_at_the_initial_point_names_the_chain(nothing_compiled):
    """NUTS's state holds -inf for a NaN log density (NumPyro's potential is made infinite):
    its message called the NaN -inf."""
    target = infer.Target(lambda x: jnp.where(x[0] > 5.0, 0.0, jnp.nan), init=jnp.zeros(2))
    for sampler in (infer.rwmh(), infer.nuts()):
        with pytest.raises(ValueError, match=r"log density is nan at the initial point of chain 0"):
            infer.sample(0, target, sampler, num_chains=2)


@pytest.mark.thorough  # two more of NUTS's start programs, 5 s
def test_minus_infinity_at_the_initial_point_names_the_chain(nothing_compiled):
    minus_inf = infer.Target(lambda x: jnp.where(x[0] > 5.0, 0.0, -jnp.inf), init=jnp.zeros(2))
    with pytest.raises(ValueError, match=r"log density is -inf at the initial point of chain 0"):
        infer.sample(0, minus_inf, infer.nuts(), num_chains=2)
    # a log density that reads the position with JAX's own methods (x.at[...]): evaluated
    # again on the host for the message, it raised an AttributeError of NumPy's instead
    at = infer.Target(lambda x: jnp.where(x.at[0].get() > 5.0, 0.0, -jnp.inf), init=jnp.zeros(2))
    with pytest.raises(ValueError, match=r"log density is -inf at the initial point of chain 0"):
        infer.sample(0, at, infer.nuts(), num_chains=2)


def test_nan_in_the_data_is_named_rather_than_the_start(nothing_compiled):
    target = infer.Target(
        lambda x, y: -0.5 * jnp.sum((y - x[0]) ** 2),
        init=jnp.zeros(1),
        data=np.array([1.0, np.nan]),
    )
    with pytest.raises(ValueError, match=r"data hold NaN or infinite values \(1 in data\)"):
        infer.sample(0, target, infer.rwmh(), num_chains=2)


@pytest.mark.thorough  # a refusal, 2.5 s
def test_nan_in_a_numpyro_models_observations_is_named():
    def model(y):
        mu = numpyro.sample("mu", dist.Normal(0.0, 1.0))
        numpyro.sample("y", dist.Normal(mu, 1.0), obs=y)

    with pytest.raises(ValueError, match=r"observed values hold NaN or inf \(1 in y\)"):
        infer.Target.from_numpyro(model, jnp.array([1.0, jnp.nan]))


@pytest.mark.thorough  # a refusal, 2 s
def test_observations_as_a_column_vector_are_refused_not_scored_n_times():
    """``df[["y"]].to_numpy()`` is (n, 1): under a plate's (n,) distribution NumPyro scored
    the (n, n) broadcast, each observation n times, and the posterior was far too narrow."""

    def model(x, y=None):
        b = numpyro.sample("b", dist.Normal(0.0, 5.0))
        with numpyro.plate("n", x.shape[0]):
            numpyro.sample("y", dist.Normal(b * x, 1.0), obs=y)

    x = jnp.linspace(-1.0, 1.0, 30)
    with pytest.raises(ValueError, match=r"shape \(30, 1\) under a distribution of shape \(30,\)"):
        infer.Target.from_numpyro(model, x, y=x[:, None])
    # one observation short: NumPyro said "Model and guide shapes disagree", of no guide
    with pytest.raises(ValueError, match=r"'y' holds an array of shape \(29,\), but its dist"):
        infer.Target.from_numpyro(model, x, y=x[:29])
    # observations in the distribution's shape, or broadcast only against it, are fine
    infer.Target.from_numpyro(model, x, y=2.0 * x)

    def no_plate(y):
        numpyro.sample("y", dist.Normal(numpyro.sample("b", dist.Normal(0.0, 5.0)), 1.0), obs=y)

    infer.Target.from_numpyro(no_plate, y=x)

    def leading_one(y):  # (30,) under (1, 30): each observation scored once
        b = numpyro.sample("b", dist.Normal(0.0, 5.0))
        numpyro.sample("y", dist.Normal((b * x)[None], 1.0), obs=y)

    with jax.numpy_rank_promotion("allow"):  # NumPyro's log_prob broadcasts (30,) to (1, 30)
        infer.Target.from_numpyro(leading_one, y=x)

    def penalty():  # a scalar observed under a batch: a soft constraint, scored per entry
        v = numpyro.sample("v", dist.Normal(jnp.zeros(3), 1.0).to_event(1))
        numpyro.sample("pen", dist.Normal(v, 0.1), obs=0.0)

    with jax.numpy_rank_promotion("allow"):  # the scalar broadcast against the batch
        infer.Target.from_numpyro(penalty)
    with pytest.raises(Exception, match="'y'"):  # shapes that do not fit: the site is named
        infer.Target.from_numpyro(model, x, y=x[:7])


def test_a_list_of_numbers_as_init_is_one_vector():
    target = infer.Target(lambda x: -0.5 * jnp.sum(jnp.square(x)), init=[0.0, 1.0])
    assert target.init.shape == (2,)
    nested = infer.Target(lambda p: -jnp.sum(p["b"] ** 2), init={"a": 0.0, "b": (1.0, 2.0)})
    assert nested.init["b"].shape == (2,)
    # a nested list is one array, as NumPy reads it: it was split into parameters m.0, m.1
    # and refused as "missing m; not the target's: m.0, m.1"
    matrix = infer.Target(lambda p: -jnp.sum(p["m"] ** 2), init={"m": [[1.0, 2.0], [3.0, 4.0]]})
    np.testing.assert_array_equal(matrix.init["m"], [[1.0, 2.0], [3.0, 4.0]])
    with pytest.raises(ValueError, match=r"init holds a nested list whose rows differ in length"):
        infer.Target(lambda p: -jnp.sum(p["m"] ** 2), init={"m": [[1.0, 2.0], [3.0]]})


def test_a_log_density_without_a_data_parameter_given_data_is_told_how_it_is_called():
    target = infer.Target(lambda x: -jnp.sum(x**2), init=jnp.zeros(2), data={"y": jnp.ones(3)})
    with pytest.raises(ValueError, match=r"takes 1 positional .* calls logdensity_fn\(position, d"):
        infer.sample(0, target, infer.rwmh(), num_chains=2, num_samples=5)


@pytest.mark.thorough  # a note, 2 s
def test_an_init_that_may_be_one_point_per_chain_says_how_it_was_read():
    """A (2, 2) init for two chains of a target with no init was once read as one 4-value
    point without a word, though the docs said one point per chain is used as given."""
    target = infer.Target(lambda x: -0.5 * jnp.sum(jnp.square(x)))
    options = dict(num_chains=2, num_samples=5, num_warmup=0)
    with pytest.warns(UserWarning, match=r"read as one point of that shape, not as one point"):
        result = infer.sample(0, target, infer.rwmh(), init=jnp.zeros((2, 2)), **options)
    assert result.draws["x"].shape == (2, 5, 2, 2)
    with_init = infer.Target(target.logdensity_fn, init=jnp.zeros(2))
    with warnings.catch_warnings():
        warnings.filterwarnings("error", message="init has shape")  # these stay quiet
        per_chain = infer.sample(0, with_init, infer.rwmh(), init=jnp.ones((2, 2)), **options)
        infer.sample(0, target, infer.rwmh(), init=jnp.zeros(2), **options)
    assert per_chain.draws["x"].shape == (2, 5, 2)


@pytest.mark.parametrize(
    ("init", "error", "match"),
    [
        ({"a": 0.0, "b": None}, TypeError, "init must hold numbers .* it holds None"),
        ([1.0, "a"], TypeError, "init must hold numbers .* it holds 'a'"),
        ({}, ValueError, "init holds no values"),
        (jnp.zeros(0), ValueError, "init holds no values"),
        (np.zeros(2, complex), TypeError, "init holds complex values"),
        ({"mu": 0.0, "k": jax.random.key(0)}, TypeError, r"init holds a PRNG key .* data="),
    ],
    ids=["none_leaf", "string", "empty_dict", "empty_array", "complex", "key"],
)
def test_an_init_that_is_no_point_is_refused_when_the_target_is_made(init, error, match):
    with pytest.raises(error, match=match):
        infer.Target(lambda x: jnp.zeros(()), init=init)


@pytest.mark.parametrize(
    ("field", "value", "match"),
    [
        ("ground_truth", {"mean": {"x": 0.0}}, "ground_truth must be an infer.GroundTruth"),
        ("notes", 3, "notes must be a dict; got int"),
        ("constrain_fn", 3, "constrain_fn must be a callable"),
    ],
)
def test_optional_fields_of_the_wrong_kind_are_refused_before_any_run(field, value, match):
    """A wrong ground_truth used to pass, the run to finish, and save or compare to fail."""
    with pytest.raises(TypeError, match=match):
        infer.Target(lambda x: -jnp.sum(x**2), init=jnp.zeros(2), **{field: value})


def test_only_some_chains_start_outside_the_support(nothing_compiled):
    starts = jnp.array([[0.5, 0.5], [-1.0, 0.5]])
    target = infer.Target(
        lambda x: jnp.where(jnp.all(x > 0), -jnp.sum(x), -jnp.inf), init=jnp.ones(2)
    )
    with pytest.raises(ValueError, match=r"-inf at the initial point of chain 1 \(1 of 2"):
        infer.sample(0, target, infer.rwmh(), num_chains=2, init=starts)


def test_an_init_at_the_edge_of_the_support_is_told_of_its_jitter(nothing_compiled):
    """The init 1e-7 is inside the support; its jitter (halved 20 times: 1e-6) leaves it, and
    the message said only "pass init= a point where the log density is finite", at a
    position it printed as -0.0."""
    target = infer.Target(lambda x: jnp.where(x > 0, -x, -jnp.inf), init=jnp.asarray(1e-7))
    with pytest.raises(ValueError, match=r"position -?\d\.\d+e-0\d\. .* init_jitter=0"):
        infer.sample(0, target, infer.rwmh(), num_chains=8)


def test_initial_point_of_the_wrong_shape(nothing_compiled):
    with pytest.raises(
        ValueError,
        match=r"init has shape \(3,\), where one point's is \(2,\) and one per chain's "
        r"\(num_chains=4\) \(4, 2\)\.$",
    ):
        infer.sample(0, NORMAL_2D, infer.rwmh(), num_chains=4, init=jnp.zeros(3))


@pytest.mark.thorough  # a message, 2.7 s; other refusals of init stay
def test_an_init_of_the_wrong_shapes_names_each_parameter(nothing_compiled):
    # it listed the shapes in key order, unnamed, without a word on the unconstrained space
    target = infer.Target(
        lambda p: -0.5 * jnp.sum(p["a"] ** 2) - 0.5 * p["b"] ** 2,
        init={"a": jnp.zeros(2), "b": 0.0},
    )
    with pytest.raises(
        ValueError, match=r"fit no start:\n  a: \(3,\), where one point's is \(2,\)"
    ):
        infer.sample(0, target, infer.rwmh(), num_chains=2, init={"a": jnp.zeros(3), "b": 0.0})
    mixed = {"a": jnp.zeros((2, 2)), "b": jnp.zeros(())}  # a per chain, b one point
    with pytest.raises(ValueError, match=r"give one kind\):\n  a: \(2, 2\).*\n  b: \(\)"):
        infer.sample(0, target, infer.rwmh(), num_chains=2, init=mixed)

    def model():
        numpyro.sample("p", dist.Dirichlet(jnp.ones(4)))

    constrained = {"p": jnp.full(4, 0.25)}  # the simplex's values, not its 3 free ones
    with jax.numpy_rank_promotion("allow"):  # NumPyro's simplex transform broadcasts
        target = infer.Target.from_numpyro(model)
        with pytest.raises(
            ValueError,
            match=r"(?s)init's p has shape \(4,\), where one point's is \(3,\).*unconstr",
        ):
            infer.sample(0, target, infer.nuts(), num_chains=2, init=constrained)


def test_target_without_a_starting_point(nothing_compiled):
    target = infer.Target(lambda x: -0.5 * jnp.sum(x**2))
    with pytest.raises(ValueError, match="has no starting point: pass init="):
        infer.sample(0, target, infer.rwmh())


@pytest.mark.parametrize("value", [0, -5])
def test_num_samples_not_positive(value, nothing_compiled):
    with pytest.raises(ValueError, match=f"num_samples must be an integer >= 1; got {value}"):
        infer.sample(0, NORMAL_2D, infer.rwmh(), num_samples=value)


def test_num_chains_not_an_integer():
    with pytest.raises(TypeError, match="num_chains must be an integer"):
        infer.sample(0, NORMAL_2D, infer.rwmh(), num_chains=2.5)
    for not_whole in (jnp.float32(2.0), np.array([2]), np.array(True)):
        with pytest.raises(TypeError, match="num_chains must be an integer"):
            infer.validation.positive_int("num_chains", not_whole)
    with pytest.raises(TypeError, match="num_chains must be an integer"):  # traced: not one
        jax.jit(lambda n: infer.validation.positive_int("num_chains", n))(3)


def test_counts_computed_with_jax_or_numpy_arrays_pass():
    """``num_chains=jnp.int32(3)`` or ``np.array(3)``, an integer >= 1, was refused as 'must be
    an integer >= 1; got Array(3, dtype=int32)'."""
    result = infer.sample(
        0, NORMAL_2D, infer.rwmh(), num_chains=jnp.int32(3), num_samples=np.array(5),
        num_warmup=np.uint8(5),
    )  # fmt: skip
    assert np.shape(result.draws["x"]) == (3, 5, 2)
    with pytest.raises(ValueError, match="num_chains must be an integer >= 1; got 0"):
        infer.sample(0, NORMAL_2D, infer.rwmh(), num_chains=jnp.int32(0))


@pytest.mark.parametrize("make", [infer.rwmh, infer.mala, infer.nuts, infer.hmc])
def test_negative_step_size(make):
    with pytest.raises(ValueError, match="step_size must be a positive finite number; got -0.1"):
        make(step_size=-0.1)


def test_sampler_factory_without_parentheses(nothing_compiled):
    with pytest.raises(TypeError, match=r"got function. Did you forget the parentheses"):
        infer.sample(0, NORMAL_2D, infer.rwmh)
    # ADVI and AIS are no samplers for infer.sample but methods that run on their own
    for method in (infer.advi, infer.ais):
        with pytest.raises(TypeError, match=rf"call infer.{method.__name__}\(seed, target"):
            infer.sample(0, NORMAL_2D, method)


def test_bad_seed():
    with pytest.raises(ValueError, match=r"rng_key must be an integer in \[0, 2\*\*32\)"):
        infer.sample(-1, NORMAL_2D, infer.rwmh())
    with pytest.raises(TypeError, match="rng_key must be an int seed or a jax.random.key"):
        infer.sample("zero", NORMAL_2D, infer.rwmh())
    with pytest.raises(ValueError, match=r"rng_key must be an integer in \[0, 2\*\*32\); got -1"):
        infer.ais(-1, NORMAL_2D, dist.Normal(jnp.zeros(2), 1.0).to_event(1))  # named, not "seed"


@pytest.mark.thorough  # a rarer warning, 5 s
def test_an_independent_proposal_that_does_not_cover_the_target_is_warned_about():
    """A Uniform(-1, 1) proposal on N(0, 1): draws of the normal cut to [-1, 1], sd 0.54,
    with perfect R-hat and ESS and no word (rejection sampling warned of the same proposal);
    a chain started where the proposal has no density never moved, blamed on a step size."""
    target = infer.Target(lambda x: -0.5 * x**2, init=jnp.asarray(0.0))
    narrow = infer.independent_mh(dist.Uniform(-1.0, 1.0))
    with pytest.warns(infer.DiagnosticWarning, match="independent_mh: the proposal does not"):
        infer.sample(0, target, narrow, num_chains=2, num_samples=50, num_warmup=0)
    outside = infer.Target(lambda x: -0.5 * x**2, init=jnp.asarray(-0.5))
    half_line = infer.independent_mh(dist.Exponential(1.0))
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        infer.sample(0, outside, half_line, num_chains=2, num_samples=50, num_warmup=0)
    said = " ".join(str(w.message) for w in caught)
    assert "independent_mh: the proposal does not cover the target: at x = " in said
    assert "never moved" in said and "where the proposal has no density, from which" in said
    assert "step_size" not in said
    covered = infer.independent_mh(dist.Cauchy(0.0, 1.0))  # a proposal that covers: no word
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        infer.sample(0, target, covered, num_chains=2, num_samples=200, num_warmup=0)


def test_a_rejection_proposal_wider_than_a_target_without_init_is_named(nothing_compiled):
    """A (2,) proposal under a scalar target with no init was told to sum its log density's
    terms, which would have made the target two-dimensional; the proposal went unnamed."""
    target = infer.Target(lambda x: -0.5 * x**2, name="normal")
    with pytest.raises(ValueError, match=r"no init, so that point is a draw of the proposal"):
        infer.sample(0, target, infer.rejection(dist.Cauchy(jnp.zeros(2), 1.0)))


def test_proposal_of_the_wrong_dimension_for_independent_mh(nothing_compiled):
    sampler = infer.independent_mh(dist.Normal(jnp.zeros(3), 1.0))
    with pytest.raises(ValueError, match=r"proposal draws have shape \(3,\) .* \(2,\);.*dist"):
        infer.sample(0, NORMAL_2D, sampler)
    pytree = infer.Target(lambda p: -jnp.sum(p["a"] ** 2), init={"a": jnp.zeros(2)})
    with pytest.raises(ValueError, match=r"for a pytree position, pass a pair \(sample_fn"):
        infer.sample(0, pytree, infer.independent_mh(dist.Normal(jnp.zeros(2), 1.0)))


def test_mh_proposal_of_the_wrong_shape(nothing_compiled):
    sampler = infer.mh(lambda key, x: jnp.concatenate([x, x]), None)
    with pytest.raises(ValueError, match=r"proposal_fn must return a position shaped like"):
        infer.sample(0, NORMAL_2D, sampler)


def _shift(key, x):
    return x + jax.random.normal(key, x.shape)


@pytest.mark.parametrize(
    "log_q, error, match",
    [
        (lambda new, old: -0.5 * (new - old) ** 2, ValueError, r"returned shape \(2,\) for a"),
        (lambda new, old: jnp.sum(new - old).astype(jnp.int32), TypeError, r"returned int32"),
        (lambda new, old: (0.0, 0.0), ValueError, r"returned a tuple for a point"),
        (lambda new: 0.0, ValueError, r"failed on a point shaped \(2,\): TypeError"),
    ],
    ids=["per-coordinate", "int", "tuple", "one-argument"],
)
def test_mh_proposal_log_density_that_is_not_one_float(log_q, error, match, nothing_compiled):
    with pytest.raises(error, match=r"^proposal_logdensity_fn\(new_position, position\)"):
        infer.sample(0, NORMAL_2D, infer.mh(_shift, log_q))
    with pytest.raises(error, match=match):
        infer.sample(0, NORMAL_2D, infer.mh(_shift, log_q))


def test_a_nan_proposal_log_density_is_counted_and_warned_about_not_silently_rejected():
    """A log q that is NaN on half the line (the log of a negative number): every proposal
    there was rejected, so mh drew from a half-normal, with no count, warning or flag."""
    target = infer.Target(lambda x: -0.5 * x**2, init=jnp.asarray(1.0))
    broken = infer.mh(_shift, lambda new, old: -0.5 * (new - old) ** 2 + 0.0 * jnp.log(new))
    with pytest.warns(infer.DiagnosticWarning, match=r"or a NaN proposal log density log q"):
        result = infer.sample(0, target, broken, num_chains=2, num_samples=300, num_warmup=0)
    counted = np.asarray(result.info["nonfinite_proposals"])
    assert counted.min() > 50 and int(result.stats["nonfinite"].sum()) == counted.sum()
    assert "nonfinite" in infer.compare({"broken": result}, warn=False).loc["broken", "flags"]


@pytest.mark.thorough  # the same count for an independent proposal, 2 s
def test_an_independent_proposal_of_nan_log_density_is_counted_and_warned_about():
    target = infer.Target(lambda x: -0.5 * x**2, init=jnp.asarray(1.0))
    pair = (lambda key: jax.random.normal(key), lambda x: -0.5 * x**2 + 0.0 * jnp.log(x))
    with pytest.warns(infer.DiagnosticWarning, match=r"or a NaN proposal log density log q"):
        result = infer.sample(0, target, infer.independent_mh(pair), num_samples=300)
    assert int(np.sum(result.info["nonfinite_proposals"])) > 100


def test_an_integer_parameter_used_as_an_index_is_told_positions_are_real(nothing_compiled):
    """The user passed an int and read "got indexer with type float32" with no word that
    infer had made it a float."""
    weights = jnp.array([0.1, 0.5, 0.4])
    target = infer.Target(
        lambda p: jnp.log(weights[p["k"]]) - 0.5 * p["z"] ** 2, init={"k": 1, "z": 0.0}
    )
    with pytest.raises(ValueError, match=r"Positions are real numbers .* an integer init is made"):
        infer.sample(0, target, infer.rwmh(), num_chains=2, num_samples=20)


def test_warnings_of_a_run_point_at_the_line_that_called_infer():
    """They pointed at infer/driver.py (a fixed stacklevel, one short once the run loop
    gained a level); the init-shape warning already pointed here."""
    target = infer.Target(lambda x: jnp.where(x > 2.0, jnp.nan, -0.5 * x**2), init=jnp.asarray(0.0))
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        infer.sample(0, target, infer.rwmh(), num_chains=2, num_samples=200, num_warmup=50)
    diagnostic = [w for w in caught if issubclass(w.category, infer.DiagnosticWarning)]
    assert diagnostic and all(w.filename == __file__ for w in diagnostic), [
        (w.filename, str(w.message)[:60]) for w in diagnostic
    ]


def test_covariance_of_the_wrong_dimension(nothing_compiled):
    with pytest.raises(ValueError, match=r"covariance has shape \(3, 3\) but the target has 2"):
        infer.sample(0, NORMAL_2D, infer.rwmh(covariance=np.eye(3)))


def test_covariance_that_is_not_positive_definite():
    with pytest.raises(ValueError, match="symmetric positive definite"):
        infer.rwmh(covariance=np.array([[1.0, 2.0], [2.0, 1.0]]))


def test_covariance_that_is_not_symmetric():
    """The Cholesky factorisation reads the lower triangle alone: the 0.5 would be dropped."""
    with pytest.raises(ValueError, match=r"symmetric; entry \[0, 1\] is 0.5 and \[1, 0\] is 0"):
        infer.rwmh(covariance=np.array([[1.0, 0.5], [0.0, 1.0]]))


def test_unknown_covariance_kind():
    with pytest.raises(ValueError, match=r"covariance must be one of 'diagonal', 'dense'"):
        infer.mala(covariance="full")


def _model_with_discrete_latent(data):
    p = numpyro.sample("p", dist.Beta(1.0, 1.0))
    z = numpyro.sample("z", dist.Bernoulli(p))
    numpyro.sample("y", dist.Normal(z, 1.0), obs=data)


def test_numpyro_model_with_a_discrete_latent_given_to_hmc():
    with pytest.raises(ValueError, match=r"site\(s\) \['z'\]. HMC, NUTS.*NumPyro's MCMC"):
        infer.sample(
            0, infer.Target.from_numpyro(_model_with_discrete_latent, jnp.ones(3)), infer.hmc()
        )


def _one_observation(scale, y=None):
    mu = numpyro.sample("mu", dist.Normal(0.0, 1.0))
    numpyro.sample("y", dist.Normal(mu, scale), obs=y)


@pytest.mark.thorough  # a refusal, 3 s
def test_numpyro_data_left_out_are_named_not_silently_sampled():
    """Said when the target is sampled: a target for predictions at new inputs leaves its
    outcome out too, and is never sampled (it warned on every such target)."""
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # made, not sampled: nothing to say
        left_out = infer.Target.from_numpyro(_one_observation, 1.0)
        given = infer.Target.from_numpyro(_one_observation, 1.0, y=np.float32(0.5))
    run = dict(num_chains=1, num_samples=5, num_warmup=5)
    explicit = infer.Target.from_numpyro(_one_observation, 1.0, y=None)  # passed as None
    for target in (left_out, explicit):
        with pytest.warns(UserWarning, match=r"argument y is None \(not given\), so its site 'y'"):
            infer.sample(0, target, infer.rwmh(), **run)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        infer.sample(0, given, infer.rwmh(), **run)
    assert not [w for w in caught if "the model's argument" in str(w.message)]


def test_numpyro_model_without_latent_sites():
    def model(y):
        numpyro.sample("y", dist.Normal(0.0, 1.0), obs=y)

    with pytest.raises(ValueError, match="no latent sample sites"):
        infer.Target.from_numpyro(model, jnp.ones(3))


def test_bad_target_accept():
    with pytest.raises(ValueError, match=r"target_accept must be in \(0, 1\); got 1.5"):
        infer.nuts(target_accept=1.5)


def test_log_density_that_fails_on_the_starting_point(nothing_compiled):
    target = infer.Target(lambda x: x @ jnp.ones(5), init=jnp.zeros(2))
    with pytest.raises(ValueError, match="logdensity_fn failed on a point shaped"):
        infer.sample(0, target, infer.rwmh())


def _branches_in_python(x):
    if x[0] > 0:  # a Python branch on a traced value
        return -0.5 * jnp.sum(x**2)
    return -jnp.sum(x**2)


@pytest.mark.parametrize(
    "logdensity", [_branches_in_python, lambda x: -0.5 * float(x[0]) ** 2], ids=["if", "float"]
)
def test_python_control_flow_on_the_position_is_told_to_use_jnp_where(logdensity, nothing_compiled):
    target = infer.Target(logdensity, init=jnp.zeros(2))
    with pytest.raises(ValueError, match=r"(?s)failed on a point.*traced by JAX.*jnp\.where"):
        infer.sample(0, target, infer.rwmh())


def test_sample_inside_a_jax_transformation_says_it_runs_on_the_host(nothing_compiled):
    """It failed with JAX's TracerArrayConversionError from infer/keys.py."""
    keys = jax.random.split(jax.random.key(0), 3)
    with pytest.raises(TypeError, match=r"runs on the host.*num_chains.*bind"):
        jax.vmap(lambda key: infer.sample(key, NORMAL_2D, infer.rwmh()).draws["x"])(keys)


def test_a_key_array_instead_of_one_key():
    with pytest.raises(ValueError, match="rng_key must be a single key"):
        infer.sample(jax.random.split(jax.random.key(0), 2), NORMAL_2D, infer.rwmh())


def test_init_with_other_parameters_names_the_keys(nothing_compiled):
    target = infer.Target(
        lambda p: -jnp.sum(p["a"] ** 2) - p["b"] ** 2, init={"a": jnp.zeros(3), "b": 0.0}
    )
    with pytest.raises(ValueError, match=r"missing b; not the target's: c\. Give one value for"):
        infer.sample(0, target, infer.rwmh(), init={"a": jnp.zeros(3), "c": 1.0})


@pytest.mark.parametrize(
    "returned",
    [jnp.int32, jnp.complex64, jnp.bool_, jnp.bfloat16],
    ids=["int", "complex", "bool", "bfloat16"],  # bfloat16 sampled sd 2.8 for 1, no word
)
def test_a_log_density_that_is_not_a_real_float(returned, nothing_compiled):
    target = infer.Target(lambda x: jnp.sum(x**2).astype(returned), init=jnp.zeros(2))
    with pytest.raises(TypeError, match=r"must return a real floating-point log density"):
        infer.sample(0, target, infer.rwmh())
    per_chain = jnp.zeros((4, 2))  # the same check for one starting point per chain
    with pytest.raises(TypeError, match=r"real floating-point"):
        infer.sample(0, target, infer.rwmh(), init=per_chain)


@pytest.mark.parametrize(
    "options, error, match",
    [
        ({"inverse_mass_matrix": jnp.ones(3)}, ValueError, r"shape \(3,\) but the target has 2"),
        ({"inverse_mass_matrix": "diag"}, TypeError, r"must be an array, \(dim,\) or \(dim, dim\)"),
        ({"inverse_mass_matrix": -jnp.ones(2)}, ValueError, "variances must be positive"),
        (
            {"inverse_mass_matrix": np.eye(2), "dense_mass": False},
            ValueError,
            r"needs dense_mass=True",
        ),
        ({"adapt_step_size": "no"}, TypeError, "adapt_step_size must be True or False"),
    ],
)
@pytest.mark.parametrize("make", [infer.nuts, infer.hmc])
def test_hmc_mass_matrix_and_switches_are_checked(make, options, error, match, nothing_compiled):
    with pytest.raises(error, match=match):
        infer.sample(0, NORMAL_2D, make(**options), num_chains=2)


def test_hmc_refuses_both_a_step_count_and_a_trajectory_length():
    with pytest.raises(ValueError, match=r"both num_steps=10 and trajectory_length=1\.5; give one"):
        infer.hmc(num_steps=10, trajectory_length=1.5)
    assert infer.hmc().options["trajectory_length"] == pytest.approx(2 * np.pi)


@pytest.mark.parametrize(
    "options, error, match",
    [
        ({"progress": "yes"}, TypeError, "progress must be True, False or a tqdm class"),
        ({"init_jitter": "a"}, TypeError, "init_jitter must be a number >= 0; got 'a'"),
        ({"devices": [0, 1]}, TypeError, "devices must be a list of jax devices"),
        ({"devices": "cpu"}, TypeError, r"got the string 'cpu'\. .* jax\.devices\('cpu'\)"),
        ({"devices": 1}, TypeError, r"got int 1\. For one device: jax.devices\(\)\[:1\]"),
        ({"devices": jax.devices() * 2}, ValueError, "lists a device more than once"),
    ],
)
def test_run_options_of_the_wrong_kind(options, error, match, nothing_compiled):
    with pytest.raises(error, match=match):
        infer.sample(0, NORMAL_2D, infer.rwmh(), num_chains=2, **options)


def test_a_checkpoint_path_that_is_a_file(tmp_path, nothing_compiled):
    path = tmp_path / "run.ckpt"
    path.write_text("")
    with pytest.raises(ValueError, match="is a file; checkpoints go into a folder"):
        infer.sample(0, NORMAL_2D, infer.rwmh(), checkpoint=path)


def test_exact_samplers_refuse_store_keep_and_thin(tmp_path, nothing_compiled):
    sampler = infer.rejection(dist.Normal(0.0, 2.0).expand([2]).to_event(1))
    for options in ({"keep": ["x"]}, {"store": tmp_path / "draws.zarr"}):
        with pytest.raises(ValueError, match=r"rejection makes all its draws in memory at once"):
            infer.sample(0, NORMAL_2D, sampler, **options)
    with pytest.raises(ValueError, match=r"exact independent draws: thin=5 would only discard"):
        infer.sample(0, NORMAL_2D, sampler, thin=5)
    with pytest.raises(ValueError, match=r"thin must be an integer >= 1; got 0"):
        infer.sample(0, NORMAL_2D, sampler, thin=0)


def test_a_flat_density_that_lets_the_chains_drift_away_is_named_as_such():
    flat = infer.Target(lambda x: 0.0, init=jnp.zeros(2), name="flat")  # no x: improper
    with pytest.warns(infer.DiagnosticWarning) as caught:
        infer.sample(0, flat, infer.rwmh(), num_chains=2, num_samples=200, num_warmup=500)
    messages = [str(w.message) for w in caught]
    assert any("ended at NaN or infinite positions" in m and "improper" in m for m in messages)
    assert not any("never moved" in m for m in messages), messages


def test_a_step_size_may_be_a_zero_dimensional_array_but_not_a_vector():
    assert infer.rwmh(step_size=jnp.asarray(0.1)).step_size == pytest.approx(0.1)
    with pytest.raises(TypeError, match=r"must be a positive number; got array\(\[0.1\]\)"):
        infer.rwmh(step_size=np.array([0.1]))


@pytest.mark.thorough  # input forms kept working, 2 s
def test_values_that_used_to_work_still_do():
    """Kinds the checks must let through: 0-d arrays, numpy bools, falsy progress, bfloat16
    draws, min_ess=0, a mass-matrix list."""
    run = dict(num_chains=2, num_samples=20, num_warmup=20)
    infer.sample(0, NORMAL_2D, infer.rwmh(), init_jitter=jnp.float32(0.5), progress=0, **run)
    infer.nuts(dense_mass=np.False_, inverse_mass_matrix=[1.0, 2.0])
    draws = {"x": np.asarray(np.random.default_rng(0).standard_normal((2, 50)), jnp.bfloat16)}
    table = infer.compare(infer.Result.from_draws(draws), min_ess=0, warn=False)
    assert "low_ess" not in table.iloc[0]["flags"]


def test_init_in_another_kind_of_container_says_so(nothing_compiled):
    import collections

    target = infer.Target(
        lambda p: -jnp.sum(p["a"] ** 2) - p["b"] ** 2, init={"a": jnp.zeros(3), "b": 0.0}
    )
    ordered = collections.OrderedDict(a=jnp.zeros(3), b=0.0)
    with pytest.raises(ValueError, match="in another kind of container"):
        infer.sample(0, target, infer.rwmh(), init=ordered)


def test_numbers_given_as_strings_or_none_to_exact_and_minibatch_samplers():
    with pytest.raises(TypeError, match="log_envelope must be a number"):
        infer.rejection(dist.Normal(0.0, 2.0), log_envelope="1")
    with pytest.raises(TypeError, match="domain's ends must be numbers"):
        infer.ars(domain=("a", 1.0))
    assert infer.ars(domain=(None, 1.0)).domain == (-np.inf, 1.0)  # None: no bound


def test_a_built_in_target_by_a_name_that_is_not_one():
    from models import targets

    with pytest.raises(KeyError, match="unknown target 'banan'; choose one of: .*banana"):
        targets.get("banan")
    with pytest.raises(TypeError, match=r"name must be a string; got list: \['banana'\]"):
        targets.get(["banana"])
    assert targets.get("banana") is targets.get("banana")


@pytest.mark.parametrize(
    "name, match",
    [
        ("nuts", r"not a name; got 'nuts'\. Pass infer\.nuts\(\.\.\.\) or infer\.registry\.make"),
        ("nutz", r"got 'nutz'\. It is not a registered name either \(.*rwmh.*\)"),
    ],
)
def test_a_sampler_given_by_its_name_is_told_what_to_pass(name, match, nothing_compiled):
    with pytest.raises(TypeError, match=match):
        infer.sample(0, NORMAL_2D, name)


@pytest.mark.parametrize(
    "name", ["rwmh", "mala", "mh", "independent_mh", "rejection", "ars", "sgld"]
)
def test_sampler_factories_are_named_as_users_call_them(name):
    factory = getattr(infer, name)
    with pytest.raises(TypeError, match=rf"^{name}\(\) got an unexpected keyword argument"):
        factory(no_such_option=1)
    assert pickle.loads(pickle.dumps(factory)) is factory  # found again by its name


def test_a_starting_point_with_nan_is_refused_as_such(nothing_compiled):
    with pytest.raises(ValueError, match=r"^init holds NaN or infinite values \(1 in init\)"):
        infer.sample(0, NORMAL_2D, infer.rwmh(), init=jnp.array([0.0, jnp.nan]))
    broken = infer.Target(lambda x: -jnp.sum(x**2), init=jnp.array([jnp.inf, 0.0]), name="b")
    with pytest.raises(ValueError, match=r"^the init of target 'b' holds NaN or infinite values"):
        infer.sample(0, broken, infer.rwmh())


def test_a_numpyro_models_list_argument_is_named():
    """NumPyro fails on ``b * [1.0, 2.0]`` deep in its trace; the error names the list."""

    def model(x, y=None):
        b = numpyro.sample("b", dist.Normal(0.0, 1.0))
        numpyro.sample("y", dist.Normal(b * x, 1.0), obs=y)

    with pytest.raises(TypeError, match=r"argument\(s\) x are Python lists .* np.asarray"):
        infer.Target.from_numpyro(model, [1.0, 2.0, 3.0], y=np.ones(3))
    # an observation alone passes NumPyro's trace and failed after it, with NumPyro's error
    # (a list) or advice to use jnp operations (a pandas Series)
    import pandas as pd

    for observed in ([1.0, 2.0, 3.0], pd.Series([1.0, 2.0, 3.0])):
        with pytest.raises(TypeError, match=r"argument\(s\) y are Python lists .* np.asarray"):
            infer.Target.from_numpyro(model, np.ones(3), y=observed)


def test_a_plate_size_given_as_a_0d_array_is_named():
    """``np.array(3)`` or ``jnp.max(g) + 1`` as a plate's size failed with advice to use jnp
    operations and no word of which argument; the user wrote no control flow."""

    def model(g, num_groups, y=None):
        with numpyro.plate("groups", num_groups):
            theta = numpyro.sample("theta", dist.Normal(0.0, 1.0))
        with numpyro.plate("obs", g.shape[0]):
            numpyro.sample("y", dist.Normal(theta[g], 1.0), obs=y)

    g, y = np.array([0, 1, 2, 1]), np.ones(4)
    for size in (np.array(3), jnp.max(g) + 1):
        with pytest.raises(TypeError, match=r"argument\(s\) num_groups are 0-d integer arr.*int"):
            infer.Target.from_numpyro(model, g, size, y=y)
    assert infer.Target.from_numpyro(model, g, 3, y=y).init["theta"].shape == (3,)


def test_a_distribution_given_an_invalid_parameter_is_not_blamed_on_shapes():
    """NumPyro's "got invalid scale parameter." came with advice to check the arguments'
    shapes (and a doubled full stop); the cause was a constant in the model."""

    def model(y):
        scale = numpyro.sample("scale", dist.HalfNormal(-1.0))  # a negative scale: a typo
        numpyro.sample("y", dist.Normal(0.0, scale), obs=y)

    with pytest.raises(ValueError, match=r"invalid scale parameter: a distribution was given") as e:
        infer.Target.from_numpyro(model, np.ones(3))
    assert "shape" not in str(e.value) and ".." not in str(e.value)


def test_a_numpyro_model_that_fails_on_its_arguments_names_their_shapes():
    """NumPyro's bare "Incompatible shapes for broadcasting" did not say which argument."""

    def model(x, y=None):
        b = numpyro.sample("b", dist.Normal(0.0, 1.0))
        with numpyro.plate("n", x.shape[0]):
            numpyro.sample("y", dist.Normal(b * x, 1.0), obs=y)

    with pytest.raises(ValueError, match=r"its arguments \(x \(5, 2\) float32, y None\) raised"):
        infer.Target.from_numpyro(model, np.zeros((5, 2), np.float32), y=None)


def test_checkpoint_every_without_a_checkpoint_folder(nothing_compiled):
    """It was ignored: the user believed the run checkpointed."""
    with pytest.raises(ValueError, match=r"checkpoint_every=5 .* no checkpoint= folder"):
        infer.sample(0, NORMAL_2D, infer.rwmh(), checkpoint_every=5)


@pytest.mark.parametrize("argument", ["store", "checkpoint"])
def test_an_output_folder_under_a_file_is_refused_before_any_run(argument, tmp_path):
    afile = tmp_path / "afile"
    afile.write_text("x")
    with pytest.raises(ValueError, match=rf"{argument}=.*lies under .*afile', which is a file"):
        infer.sample(0, NORMAL_2D, infer.rwmh(), num_chains=2, **{argument: afile / "run"})
    assert afile.read_text() == "x"


@pytest.mark.parametrize(
    "options, match",
    [
        ({"num_warmup": 2**31}, r"num_warmup=2147483648 and 1000 draws x thin=1 end the run"),
        ({"thin": 2**31}, r"x thin=2147483648 end the run at .* past the 2,147,483,647"),
    ],
)
def test_more_steps_than_a_run_counts_are_refused(options, match, nothing_compiled):
    with pytest.raises(ValueError, match=match):
        infer.sample(0, NORMAL_2D, infer.rwmh(), num_chains=2, **options)


def test_a_store_that_is_no_path_is_refused(nothing_compiled):
    with pytest.raises(TypeError, match="store must be None .* got ndarray"):
        infer.sample(0, NORMAL_2D, infer.rwmh(), num_chains=2, store=np.array(["a", "b"]))


def test_a_stopping_rule_that_could_never_be_met_is_refused():
    with pytest.raises(ValueError, match="max_samples must be an integer >= 4; got 3. R-hat"):
        infer.converged(max_samples=3)


def _regression_target(loglik_fn):
    x = np.linspace(-1.0, 1.0, 40).astype(np.float32)
    y = 2 * x

    def logdensity(p, data):
        return -0.5 * jnp.sum((data[1] - p["a"] - p["b"] * data[0]) ** 2)

    return infer.Target(
        logdensity,
        init={"a": jnp.zeros(()), "b": jnp.zeros(())},
        data=(x, y),
        loglik_fn=loglik_fn,
        observed_data={"y": y},
    )


def _pointwise(p, data):
    return -0.5 * (data[1] - p["a"] - p["b"] * data[0]) ** 2


@pytest.mark.parametrize(
    "loglik_fn, error, match",
    [
        (lambda p, d: jnp.sum(_pointwise(p, d)), ValueError, "returned a scalar for 'y'"),
        (
            lambda p, d: _pointwise(p, d)[:30],
            ValueError,
            r"shape \(30,\) for 'y', whose .* \(40,\)",
        ),
        (lambda p, d: {"z": _pointwise(p, d)}, ValueError, r"named \['z'\], which observed_data"),
        (lambda p, d: (_pointwise(p, d),), TypeError, "for 'y' it returned tuple"),
        (lambda p, d: jnp.ones(40, jnp.int32), TypeError, "floating-point .* 'y' is int32"),
        (lambda p: _pointwise(p, None), ValueError, r"loglik_fn\(position, data\) failed"),
        (lambda p, d: np.asarray(_pointwise(p, d)), TypeError, "calls NumPy .* jax.numpy"),
    ],
)
def test_a_loglik_fn_that_gives_no_log_likelihood_per_observation(
    loglik_fn, error, match, nothing_compiled
):
    with pytest.raises(error, match=match):
        infer.sample(0, _regression_target(loglik_fn), infer.rwmh(), num_chains=2)


@pytest.mark.parametrize("group", ["observed_data", "constant_data"])
def test_data_groups_that_are_not_dicts_are_refused(group):
    with pytest.raises(TypeError, match=rf"{group} must be a dict name -> array .* got ndarray"):
        infer.Target(lambda x: -0.5 * jnp.sum(x**2), init=jnp.zeros(2), **{group: np.zeros(3)})
    # a list passed the run and failed in to_arviz, in xarray's words
    with pytest.raises(
        TypeError, match=rf"{group}\['y'\] must be an array; got list. .*np.asarray"
    ):
        infer.Target(lambda x: -0.5 * jnp.sum(x**2), init=jnp.zeros(2), **{group: {"y": [1, 2]}})


def test_a_pandas_series_given_to_a_numpyro_model_is_named():
    import pandas as pd

    def linear(x, y=None):
        a = numpyro.sample("a", dist.Normal(0.0, 1.0))
        numpyro.sample("y", dist.Normal(a * x, 1.0), obs=y)

    frame = pd.DataFrame({"x": np.linspace(0.0, 1.0, 20), "y": np.linspace(0.0, 2.0, 20)})
    with pytest.raises(
        TypeError, match=r"argument\(s\) x, y are .* pandas objects.*\.to_numpy\(\)"
    ):
        infer.Target.from_numpyro(linear, frame["x"], y=frame["y"])
    with pytest.raises(TypeError) as caught:  # the advice first, one line of JAX's error
        infer.Target.from_numpyro(linear, frame["x"], y=frame["y"])
    assert str(caught.value).startswith("the model's argument(s) x, y are Python lists")
    assert len(str(caught.value)) < 600


@pytest.mark.thorough  # the same checks on a resumed run, 1.7 s
def test_a_resumed_run_is_checked_too(monkeypatch):
    """The step count goes on from the run resumed, and the resumed target's loglik_fn is
    checked as a new run's is."""
    first = infer.sample(
        0,
        _regression_target(_pointwise),
        infer.rwmh(),
        num_chains=2,
        num_samples=200,
        num_warmup=50,
    )
    summed = _regression_target(lambda p, d: jnp.sum(_pointwise(p, d)))
    with pytest.raises(ValueError, match="returned a scalar for 'y'"):
        infer.sample(0, summed, infer.rwmh(), resume=first, num_samples=200)
    monkeypatch.setattr(arguments, "MAX_STEPS", 300)  # 250 steps taken, 200 more asked
    with pytest.raises(
        ValueError, match=r"end the run at step 450 \(the run resumed had taken 250\)"
    ):
        infer.sample(0, _regression_target(_pointwise), infer.rwmh(), resume=first, num_samples=200)


def test_discrete_proposals_and_priors_are_refused(nothing_compiled):
    with pytest.raises(TypeError, match="proposal is Poisson, a discrete distribution"):
        infer.rejection(dist.Poisson(3.0))
    with pytest.raises(TypeError, match="proposal is Independent, a discrete distribution"):
        infer.independent_mh(dist.Poisson(jnp.ones(2)).to_event(1))
    with pytest.raises(TypeError, match="prior is Independent, a discrete distribution"):
        infer.ais(0, NORMAL_2D, dist.Poisson(jnp.ones(2)).to_event(1), num_chains=4)


def _quadratic(position):
    return -0.5 * sum(jnp.sum(leaf**2) for leaf in jax.tree.leaves(position))


@pytest.mark.parametrize(
    "options, error, match",
    [
        ({"init": {"chain": jnp.zeros(2), "mu": 0.0}}, ValueError, r"include 'chain', one of"),
        (
            {"init": {"a": {"b": jnp.zeros(2)}, "a.b": jnp.zeros(3)}},
            ValueError,
            r"two parts of the position are both named 'a\.b'",
        ),
        ({"init": {"a/b": jnp.zeros(2)}}, ValueError, r"without '/'.*got 'a/b'"),
        (  # ArviZ labels x's first element x[0] too: summary failed on the two rows
            {"init": {"x": jnp.zeros(2), "x[0]": 0.0}},
            ValueError,
            r"include 'x\[0\]' and 'x', an array whose elements ArviZ labels 'x\[\.\.\.\]'",
        ),
        (
            {"init": jnp.zeros(2), "constrain_fn": jnp.exp},
            TypeError,
            r"constrain_fn\(position\[, data\]\) must return a dict .* array of shape \(2,\)",
        ),
        (
            {"init": jnp.zeros(2), "constrain_fn": lambda p: {"s": "a"}},
            TypeError,
            r"must return a dict name -> array; on the starting point it failed",
        ),
        (
            {"init": jnp.zeros(2), "constrain_fn": lambda p: {}},  # ran, then "kept no draws"
            ValueError,
            r"constrain_fn returned an empty dict",
        ),
        (
            {"init": {"m": 0.0}, "constrain_fn": lambda p: {"a": p["mu"]}},  # a bare KeyError
            TypeError,
            r"constrain_fn\(position\[, data\]\) failed on the starting point: KeyError",
        ),
        (
            {"init": jnp.zeros(2), "constrain_fn": lambda p: {"s": {"t": p}}},
            TypeError,
            r"'s' holds dict, not one array",
        ),
        (
            {"init": jnp.zeros(2), "constrain_fn": lambda p: {"draw": p}},
            ValueError,
            r"constrain_fn's names include 'draw'",
        ),
        # these two ran, then save failed in h5py's words and store= in Zarr's
        ({"init": {"a": jnp.zeros(2), "..": 0.0}}, ValueError, r"got '\.\.', which is a path"),
        ({"init": {"a": jnp.zeros(2), ".": 0.0}}, ValueError, r"got '\.', which is a path"),
        (  # ran, then summary failed: "a must be an array of real numbers"
            {"init": jnp.zeros(2), "constrain_fn": lambda p: {"z": p * (1 + 1j)}},
            TypeError,
            r"'z' is complex64; reported values must be real numbers",
        ),
    ],
    ids=[
        "chain",
        "collision",
        "slash",
        "element label",
        "array",
        "string",
        "empty",
        "raises",
        "nested",
        "draw",
        "dot-dot",
        "dot",
        "complex",
    ],
)
def test_reported_names_that_arviz_cannot_hold_are_refused(options, error, match):
    """Such names used to vanish from the DataTree (``chain`` under its coordinate, one of
    two ``a.b``) or fail deep inside the run; now refused before the run compiles."""
    target = infer.Target(_quadratic, **options)
    with pytest.raises(error, match=match):
        infer.sample(0, target, infer.rwmh(), num_chains=2, num_samples=10, num_warmup=0)


@pytest.mark.parametrize("dtype", [jnp.bfloat16, jnp.float16])
def test_a_16_bit_starting_point_is_refused_with_the_fix(dtype):
    """It was refused as holding no numbers ("it holds Array([0., 0.], dtype=bfloat16)")."""
    with pytest.raises(TypeError, match=rf"init holds {jnp.dtype(dtype)} values: .*float32"):
        infer.Target(_quadratic, init=jnp.zeros(2, dtype))


def test_16_bit_reported_values_are_kept_as_float32_as_from_draws_keeps_them(tmp_path):
    """A bfloat16 value from constrain_fn was kept as it was: summary failed ("dtype argument
    must be a NumPy dtype") and save too ("unsupported dtype for netCDF4 variable")."""
    target = infer.Target(
        _quadratic,
        init=jnp.zeros(2),
        constrain_fn=lambda p: {"h": p.astype(jnp.bfloat16), "f": p.astype(jnp.float16)},
    )
    result = infer.sample(0, target, infer.rwmh(), num_chains=2, num_samples=20)
    assert {value.dtype for value in result.draws.values()} == {np.dtype(np.float32)}
    assert infer.summary(result).shape[0] == 4
    loaded = infer.load(result.save(tmp_path / "run.nc"))
    np.testing.assert_array_equal(loaded.draws["h"], result.draws["h"])


@pytest.mark.thorough  # input forms kept working, 2 s
def test_free_form_notes_and_a_mapping_from_constrain_fn_still_run():
    """Two things the new checks must leave alone: notes are free-form (a note named
    "minibatch" that is a number), and constrain_fn may return any Mapping."""
    import types

    noted = infer.Target(_quadratic, init=jnp.zeros(2), notes={"minibatch": 64})
    assert infer.sample(0, noted, infer.rwmh(), num_chains=2, num_samples=5).num_samples == 5
    mapped = infer.Target(
        _quadratic, init=jnp.zeros(2), constrain_fn=lambda x: types.MappingProxyType({"a": x})
    )
    result = infer.sample(0, mapped, infer.rwmh(), num_chains=2, num_samples=5)
    assert set(result.draws) == {"a"}


def test_advi_checks_the_names_it_reports_as_sample_does():
    target = infer.Target(_quadratic, init=jnp.zeros(2), constrain_fn=lambda x: {"chain": x})
    with pytest.raises(ValueError, match=r"constrain_fn's names include 'chain'"):
        infer.advi(0, target, num_steps=10)


@pytest.mark.parametrize("make", [infer.rejection, infer.independent_mh])
def test_a_proposal_log_prob_fn_of_per_coordinate_terms_is_refused(make):
    """It failed deep in JAX (rejection: incompatible shapes for broadcasting) or as a
    protocol error of the kernel (independent MH)."""
    pair = (lambda key: 2.0 * jax.random.normal(key, (2,)), lambda x: -0.5 * (x / 2.0) ** 2)
    with pytest.raises(ValueError, match=r"proposal's log_prob_fn must return a scalar .* \(2,\)"):
        make(pair)


@pytest.mark.thorough  # an input form, 3 s
def test_a_list_of_points_is_one_point_per_chain():
    # [[0, 0], [1, 1]] (or a list of dicts) was read as a tree of two leaves and refused as
    # "missing (the whole point); not the target's: 0, 1"
    starts = [[2.0, 2.0], [-2.0, -2.0]]
    kept = {"num_chains": 2, "num_samples": 1, "num_warmup": 0, "init": starts}
    target = infer.Target(lambda x: -0.5 * jnp.sum(x**2), init=jnp.zeros(2))
    result = infer.sample(0, target, infer.rwmh(step_size=1e-6), **kept)
    np.testing.assert_allclose(result.draws["x"][:, 0], starts, atol=1e-4)
    named = infer.Target(lambda p: -0.5 * jnp.sum(p["a"] ** 2), init={"a": jnp.zeros(2)})
    per_chain = [{"a": point} for point in starts]
    result = infer.sample(0, named, infer.rwmh(step_size=1e-6), **(kept | {"init": per_chain}))
    np.testing.assert_allclose(result.draws["a"][:, 0], starts, atol=1e-4)
    with pytest.raises(ValueError, match=r"init is a list of 2 points, but this run has num_c"):
        infer.sample(0, target, infer.rwmh(), **(kept | {"num_chains": 3}))
    # the same nested list is one point of a (2, 2) target, whatever num_chains: with three
    # chains its rows were read as two points of a (2,)-shaped target, and refused
    square = infer.Target(lambda x: -0.5 * jnp.sum(x**2), init=jnp.zeros((2, 2)))
    result = infer.sample(
        0, square, infer.rwmh(step_size=1e-6), **(kept | {"num_chains": 3, "init_jitter": 1e-6})
    )
    np.testing.assert_allclose(result.draws["x"][:, 0], [starts] * 3, atol=1e-4)


def test_a_dict_init_with_keys_of_mixed_types_is_named():
    with pytest.raises(TypeError, match=r"init is or holds a dict whose keys are of types"):
        infer.Target(lambda p: 0.0, init={0: jnp.zeros(2), "a": 0.0})


@pytest.mark.thorough  # an edge case
def test_a_bracketed_name_that_labels_no_element_is_kept():
    # only the labels ArviZ gives x's elements collide ('x[0]', 'x[0, 1]'): 'x[total]' and
    # 'x[5]' beside an x of shape (2,) were refused too
    init = {"x": jnp.zeros(2), "x[total]": jnp.asarray(0.0), "x[5]": jnp.asarray(0.0)}
    result = infer.sample(0, infer.Target(_quadratic, init=init), infer.rwmh(), num_chains=2)
    assert list(infer.summary(result).index) == ["x[0]", "x[1]", "x[5]", "x[total]"]


def test_a_pandas_series_as_a_targets_data_is_used_as_its_values():
    # it was kept as a Series, which JAX cannot trace: the run failed with advice to use jnp
    import pandas as pd

    frame = pd.DataFrame({"y": np.linspace(0.0, 2.0, 20)})

    def logdensity(mu, y):
        return -0.5 * jnp.sum((y - mu) ** 2) - 0.5 * mu**2

    target = infer.Target(logdensity, init=jnp.zeros(()), data=frame["y"])
    assert isinstance(target.data, np.ndarray)
    result = infer.sample(0, target, infer.rwmh(), num_chains=2, num_samples=20, num_warmup=20)
    assert np.isfinite(result.draws["x"]).all()
    with pytest.raises(TypeError, match=r"holds a DataFrame. Pass its values: df.to_numpy"):
        infer.Target(logdensity, init=jnp.zeros(()), data=frame)


def _poisson_counts(x, y=None):
    a = numpyro.sample("a", dist.Normal(0.0, 2.0))
    with numpyro.plate("n", x.shape[0]):
        numpyro.sample("y", dist.Poisson(jnp.exp(a * x)), obs=y)


def _labels(x, y=None):
    a = numpyro.sample("a", dist.Normal(0.0, 2.0))
    with numpyro.plate("n", x.shape[0]):
        numpyro.sample("y", dist.Bernoulli(logits=a * x), obs=y)


@pytest.mark.parametrize(
    "model, y, said",
    [
        (_poisson_counts, np.r_[2, 0, -1, 3, 2.5, 1], r"y\[2\] = -1, y\[4\] = 2.5 \(Poisson\)"),
        (_labels, np.r_[1, 2, 1, 2, 2, 1], r"y\[1\] = 2, y\[3\] = 2, y\[4\] = 2 \(Bernoulli"),
    ],
    ids=["count", "label from 1"],
)
def test_observations_outside_the_support_are_named(model, y, said):
    """It said only "check that every observed value is inside its likelihood's support",
    for a count of -1 as for labels counted from 1."""
    x = np.linspace(-1.0, 1.0, 6).astype(np.float32)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # NumPyro's own "Out-of-support values" warning
        with pytest.raises(ValueError, match=rf"outside their likelihood's support: {said}"):
            infer.Target.from_numpyro(model, x, y=y)


def _masked_counts(y, seen):
    rate = numpyro.sample("rate", dist.Exponential(1.0))
    numpyro.factor("broken", jnp.log(rate - 100.0))  # the cause: NaN below 100
    with numpyro.plate("n", y.shape[0]), numpyro.handlers.mask(mask=seen):
        numpyro.sample("y", dist.Poisson(rate), obs=y)


def _one_count(y):
    numpyro.sample("y", dist.Poisson(numpyro.sample("rate", dist.Exponential(1.0))), obs=y)


def test_masked_placeholders_are_not_blamed_and_a_scalar_site_is_named_whole():
    """A mask's placeholders (-1 for a missing count) are no cause; a scalar is ``y``, not
    ``y[]``."""
    y = np.array([2, 0, -1, 3, -1, 1], np.float32)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # NumPyro's own "Out-of-support values" warning
        with pytest.raises(ValueError, match="check that every observed value") as caught:
            infer.Target.from_numpyro(_masked_counts, y, y >= 0)
        assert "y[2]" not in str(caught.value)
        with pytest.raises(ValueError, match=r"support: y = -1 \(Poisson\)"):
            infer.Target.from_numpyro(_one_count, np.float32(-1.0))


def test_a_distribution_used_before_64_bit_floats_were_switched_samples_after():
    """JAX ran the programs it had compiled for the proposal's NumPy scale (1.3, a float64
    array) in the other mode, and failed inside XLA ("RuntimeProgramInputMismatch:
    Executable(jit_multiply) expected parameter 1 of size 8"); AIS's prior with "lax.div
    requires arguments to have the same dtypes". Each trace now takes a copy."""
    target = infer.Target(_quadratic, init=jnp.zeros(3))
    normal = dist.Normal(jnp.zeros(3), 1.3)
    uniform = dist.Uniform(np.full(3, -4.0), np.full(3, 4.0))  # its support holds them too
    run = dict(num_chains=2, num_samples=20)
    for proposal in (normal, uniform):
        infer.sample(0, target, infer.independent_mh(proposal), **run)
    with jax.enable_x64(True):
        for proposal, sampler in (
            (normal, infer.independent_mh),
            (normal, infer.rejection),
            (uniform, infer.independent_mh),
        ):
            result = infer.sample(0, target, sampler(proposal), **run)
            assert result.draws["x"].dtype == np.float64


class _ShiftedNormal(dist.Normal):  # a user's subclass, with an attribute of its own
    def __init__(self, loc, scale, shift):
        self.shift = shift
        super().__init__(loc, scale)

    def sample(self, key, sample_shape=()):
        return super().sample(key, sample_shape) + self.shift

    def log_prob(self, value):
        return super().log_prob(value - self.shift)


def test_a_distributions_copy_for_tracing_keeps_its_attributes_and_validation():
    """Rebuilt from its pytree leaves, a subclass lost its own attributes (AttributeError in
    every sampler) and NumPyro's support check (a Uniform's log_prob outside its bounds was
    finite: an independent chain started outside moved, AIS's step sizes went wrong)."""
    from infer.validation import fresh_numpy_leaves

    shifted = _ShiftedNormal(np.array(0.0), np.array(1.3), 5.0)
    copied = fresh_numpy_leaves(shifted)
    assert copied is not shifted and copied.shift == 5.0 and copied.scale is not shifted.scale
    bounded = fresh_numpy_leaves(dist.Uniform(np.array(-2.0), np.array(2.0)))
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # NumPyro's own "Out-of-support values" warning
        assert float(bounded.log_prob(jnp.asarray(-5.0))) == -np.inf
    normal = dist.Normal(jnp.zeros(2), jnp.ones(2))  # nothing of NumPy's: itself
    assert fresh_numpy_leaves(normal) is normal
    target = infer.Target(lambda x: -0.5 * (x - 5.0) ** 2, init=jnp.asarray(5.0))
    result = infer.sample(0, target, infer.independent_mh(shifted), num_chains=2, num_samples=50)
    assert np.all(np.isfinite(result.draws["x"]))


def test_the_helpers_arguments_are_named_when_wrong(tmp_path):
    """Each of these gave Python's own words (pathlib's, a bare KeyError, a TypeError for
    an empty dict), was accepted ("no" as a flag, a number as a description), or ran
    without the cache silently (a file as its folder)."""
    with pytest.raises(TypeError, match=r"path must be a folder path \(str or Path\); got int"):
        infer.open_store(5)
    with pytest.raises(TypeError, match=r"folder must be a folder path .* got int"):
        infer.enable_compilation_cache(5)
    (tmp_path / "file").write_text("")
    with pytest.raises(ValueError, match=r"folder=.* is a file; give a folder for the cache"):
        infer.enable_compilation_cache(tmp_path / "file")
    result = infer.Result.from_draws({"x": np.zeros((2, 5))})
    with pytest.raises(KeyError, match=r"'y' is not a draw of this result; its draws: \['x'\]"):
        result.dim_names("y")
    with pytest.raises(ValueError, match="draws is empty"):
        infer.Result.from_draws({})
    with pytest.raises(TypeError, match=r"a dict of name -> infer.Result; got int"):
        infer.plot(3)
    with pytest.raises(TypeError, match="warn must be True or False; got 'no'"):
        infer.compare({"r": result}, warn="no")
    make = lambda target: infer.rwmh()  # noqa: E731
    with pytest.raises(TypeError, match="replace must be True or False; got 'no'"):
        infer.register("mine", make, replace="no")
    with pytest.raises(TypeError, match="description must be a string"):
        infer.register("mine", make, description=3)
    with pytest.raises(TypeError, match="name must be a string"):
        infer.register(3, make)
    assert "mine" not in infer.registry.names()
    target = infer.Target(lambda x: -0.5 * jnp.sum(x**2), init=jnp.zeros(2))
    with pytest.raises(TypeError, match=r"with_options got \['nmae'\], not attributes"):
        target.with_options(nmae="mine")
    of_x_only = infer.Target(lambda x: -0.5 * jnp.sum(x**2), init=jnp.zeros(2), data=np.zeros(2))
    with pytest.raises(ValueError, match=r"were given\. A target made with data="):
        infer.sample(0, of_x_only, infer.rwmh(), num_samples=5)


@pytest.mark.parametrize(
    ("call", "said"),
    [
        (lambda: infer.nuts(target_accept_prob=0.9), r"nuts\(\) got .* 'target_accept_prob': did"),
        (lambda: infer.hmc(num_step=3), r"'num_step': did you mean num_steps\? Its options: step"),
        (lambda: infer.rwmh(foo=1), r"rwmh\(\) got .* 'foo'\. Its options: step_size, covarian"),
        (lambda: infer.ais(0, None, None, num_temps=3), r"did you mean num_temperatures\?"),
        (lambda: infer.sample(0, None, None, num_sample=3), r"did you mean num_samples\?"),
    ],
)
def test_a_misspelt_or_numpyro_named_option_is_told_the_closest_one(call, said):
    """Python's words alone ("got an unexpected keyword argument 'target_accept_prob'") left
    a NumPyro user to find infer's name (target_accept)."""
    with pytest.raises(TypeError, match=said):
        call()


def test_pythons_own_errors_and_the_factories_warnings_name_the_users_call():
    """Wrapping the factories to name a misspelt option's closest one made Python's own
    errors say ``as_top_level_api()`` and put warnings of a fixed stacklevel at the
    wrapper's line inside infer."""
    with pytest.raises(TypeError, match=r"^rwmh\(\) got multiple values for argument"):
        infer.rwmh(0.5, step_size=0.5)
    with pytest.raises(TypeError, match=r"^mh\(\) missing 2 required positional"):
        infer.mh()
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        infer.nuts(step_size=0.5, adapt_step_size=False, target_accept=0.9)
        infer.rwmh(step_size=0.5, target_accept=0.3)
    assert len(caught) == 2 and all(w.filename == __file__ for w in caught), [
        (w.filename, str(w.message)[:50]) for w in caught
    ]
