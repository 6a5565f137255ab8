"""``infer.compare``: the table against ArviZ computed directly, and every flag firing on a
run built to trigger it while a healthy run stays quiet."""

import dataclasses
import math
import re
import warnings

import arviz_stats
import jax
import jax.numpy as jnp
import numpy as np
import numpyro.distributions as dist
import pytest
from pictures import PNG_MAGIC

import infer
from infer import chain_stats
from infer.diagnostics import COLUMNS
from infer.model_comparison import COLUMNS as LOO_COLUMNS
from models import targets

pytestmark = pytest.mark.slow  # a module `make test-fast` leaves out


@pytest.fixture(scope="module")
def healthy():
    """Exact draws of N(0, I_10): nothing to flag."""
    target = targets.get("normal_10d")
    sampler = infer.rejection(target.rejection_proposal)
    return infer.sample(0, target, sampler, num_chains=4, num_samples=2000)


@pytest.fixture(scope="module")
def nuts_run():
    """docs/comparing-samplers.md's NUTS run."""
    return infer.sample(
        0,
        targets.get("eight_schools"),
        infer.nuts(target_accept=0.95),
        num_chains=4,
        num_samples=2000,
    )


def _compare(results, **kwargs):
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        table = infer.compare(results, **kwargs)
    return table, [w for w in caught if issubclass(w.category, infer.DiagnosticWarning)]


@pytest.mark.parametrize("statistics, rel", [("arviz", 1e-12), ("jax", 1e-5)])
def test_columns_equal_arviz_on_the_same_draws(nuts_run, statistics, rel):
    """ArviZ is the reference; the default JAX statistics agree with it within 1e-5."""
    table, _ = _compare({"nuts": nuts_run}, statistics=statistics)
    # eight schools is a NumPyro model with a log likelihood: the LOO columns follow
    assert list(table.columns) == ["sampler", *COLUMNS, *LOO_COLUMNS]
    row = table.loc["nuts"]
    tree = nuts_run.to_arviz()

    def values(dataset):
        return np.concatenate([np.ravel(dataset[name].values) for name in nuts_run.draws])

    bulk = values(arviz_stats.ess(tree, method="bulk"))
    # the tail ESS, at 5% and 95%: not infer's own constant, which the test would follow
    tail = values(arviz_stats.ess(tree, method="tail", prob=(0.05, 0.95)))
    assert row["min_ess_bulk"] == pytest.approx(bulk.min(), rel=rel)
    assert row["median_ess_bulk"] == pytest.approx(np.median(bulk), rel=rel)
    assert row["min_ess_tail"] == pytest.approx(tail.min(), rel=rel)
    assert row["median_ess_tail"] == pytest.approx(np.median(tail), rel=rel)
    assert row["max_rhat"] == pytest.approx(values(arviz_stats.rhat(tree)).max(), rel=rel)
    mcse = values(arviz_stats.mcse(tree, method="mean")).max()
    assert row["max_mcse_mean"] == pytest.approx(mcse, rel=rel)
    timing = nuts_run.timing
    assert row["ess_bulk_per_second"] == pytest.approx(bulk.min() / timing["sampling"], rel)
    assert row["ess_bulk_per_grad_eval"] == pytest.approx(bulk.min() / nuts_run.num_grad_evals, rel)
    assert row["ess_bulk_per_1000_logdensity_evals"] == pytest.approx(
        1000 * bulk.min() / nuts_run.num_logdensity_evals, rel
    )
    assert row["divergences"] == int(nuts_run.stats["diverging"].sum())
    assert row["compile_seconds"] == timing["compile"]
    # Tail ESS is at 5%/95%, not ArviZ's default 11%/89%, and the table says so.
    default_tail = values(arviz_stats.ess(tree, method="tail")).min()
    assert row["min_ess_tail"] != default_tail
    assert "5% and 95% quantiles" in table.attrs["notes"]
    assert ("JAX" if statistics == "jax" else "arviz_stats") in table.attrs["notes"]


def test_the_docs_comparison_of_two_samplers_runs_as_written(nuts_run, tmp_path):
    """docs/comparing-samplers.md's Python example, step for step, with its output checked."""
    target = targets.get("eight_schools")
    runs = {
        "rwmh": infer.sample(0, target, infer.rwmh(covariance="diagonal"), num_samples=2000),
        "nuts": nuts_run,
    }
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", infer.DiagnosticWarning)
        table = infer.compare(runs, target)
    shown = table[["min_ess_bulk", "min_ess_tail", "max_rhat", "ess_bulk_per_second", "flags"]]
    assert list(shown.index) == ["rwmh", "nuts"] and shown["max_rhat"].notna().all()
    assert table.loc["nuts", "min_ess_bulk"] > table.loc["rwmh", "min_ess_bulk"]
    infer.plot(runs, kind="forest", path=tmp_path / "forest.png")
    assert (tmp_path / "forest.png").read_bytes()[:8] == PNG_MAGIC


def test_healthy_run_raises_no_flag(healthy):
    table, caught = _compare({"exact": healthy})
    assert table.loc["exact", "flags"] == ""
    assert caught == []
    assert table.loc["exact", "max_abs_z"] < 4


def test_ground_truth_z_uses_the_mcse(healthy):
    table, _ = _compare({"exact": healthy})
    draws = np.asarray(healthy.draws["x"], np.float64)
    mcse = arviz_stats.mcse(healthy.to_arviz(), method="mean")["x"].values
    expected = np.max(np.abs(draws.mean(axis=(0, 1))) / mcse)
    assert table.loc["exact", "max_abs_z"] == pytest.approx(expected, rel=1e-6)


def _flags(result, **kwargs):
    table, caught = _compare({"run": result}, **kwargs)
    return set(filter(None, table.loc["run", "flags"].split(","))), [str(w.message) for w in caught]


def _flags_and_nothing_else(result, **kwargs):
    """:func:`_flags`, checking that no warning but infer's own leaked (NumPy's overflow and
    invalid-value warnings among them)."""
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        table = infer.compare({"run": result}, **kwargs)
    leaked = [w for w in caught if not issubclass(w.category, infer.DiagnosticWarning)]
    assert not leaked, [f"{w.category.__name__}: {w.message}" for w in leaked]
    return set(filter(None, table.loc["run", "flags"].split(","))), [str(w.message) for w in caught]


def test_divergences_are_flagged():
    result = infer.sample(0, targets.get("funnel"), infer.nuts(), num_chains=4, num_samples=500)
    assert result.num_divergent > 0
    flags, messages = _flags(result)
    assert "divergences" in flags
    assert any("divergent transitions" in m and "target_accept" in m for m in messages)
    # NumPyro counts a NaN met along a trajectory as a divergence: the advice says so
    assert any("A NaN or +inf log density met along a trajectory" in m for m in messages)


@pytest.mark.thorough  # a warning's wording, 1.6 s
def test_warnings_of_two_runs_of_one_sampler_name_the_runs():
    rng = np.random.default_rng(0)
    shifted = infer.Result.from_draws({"x": rng.standard_normal((4, 1000)) + np.arange(4)[:, None]})
    _, caught = _compare({"first try": shifted, "second try": shifted})
    messages = [str(w.message) for w in caught]
    assert any(m.startswith("first try (") and "R-hat" in m for m in messages)
    assert any(m.startswith("second try (") and "R-hat" in m for m in messages)


@pytest.mark.thorough  # a warning's wording, 2 s
def test_the_low_ess_warning_names_only_the_ess_that_is_low():
    rng = np.random.default_rng(1)
    walk = infer.Result.from_draws({"x": np.cumsum(rng.standard_normal((4, 1000)), axis=1) * 0.02})
    table, _ = _compare({"run": walk}, min_ess=0)
    bulk, tail = table.loc["run", ["min_ess_bulk", "min_ess_tail"]]
    assert bulk != tail
    _, caught = _compare({"run": walk}, min_ess=(bulk + tail) / 2)
    said = [str(w.message) for w in caught if "min ESS" in str(w.message)]
    low, high = ("bulk", "tail") if bulk < tail else ("tail", "bulk")
    assert len(said) == 1 and f"min ESS {low} " in said[0] and high not in said[0].split(":")[1]
    # an ESS a fraction short of the threshold reads below it: "tail 400 < 400" was rounded
    # (tail ESS is 11.56 here, and reads 11.5 < 12, not 12 < 12)
    assert tail % 1 >= 0.5
    _, caught = _compare({"run": walk}, min_ess=math.floor(tail) + 1)
    said = [str(w.message) for w in caught if "min ESS" in str(w.message)]
    assert f"tail {math.floor(tail * 10) / 10:.1f} < {math.floor(tail) + 1} " in said[0]
    # else it reads as the table rounds it (11.56 reads 12, as in the table, not 11)
    _, caught = _compare({"run": walk}, min_ess=math.floor(tail) + 5)
    said = [str(w.message) for w in caught if "min ESS" in str(w.message)]
    assert f"tail {round(tail)} < {math.floor(tail) + 5} " in said[0]


def test_disagreeing_chains_are_flagged_on_rhat():
    rng = np.random.default_rng(0)
    shifted = rng.standard_normal((4, 1000)) + np.arange(4)[:, None]
    flags, messages = _flags(infer.Result.from_draws({"x": shifted}))
    assert "rhat" in flags
    assert any("R-hat" in m and "Run longer" in m for m in messages)


@pytest.mark.parametrize(  # ARS and NUTS: 8 s each; rejection stays
    "sampler",
    [pytest.param("ars", marks=pytest.mark.thorough), "rejection"]
    + [pytest.param("nuts", marks=pytest.mark.thorough)],
)
def test_a_log_density_too_large_for_float32_is_warned_of_and_flagged(sampler):
    """N(0, 1) written as -x**2 / 2 - 1e7: float32 holds log densities there only 1 apart, and
    ARS drew an sd of 0.89 (20,000 draws: 15 standard errors), rejection and NUTS biased
    too, each with no warning or flag and exact=True. The same density minus 1e4 (values
    0.001 apart) draws no warning and no such flag."""
    samplers = {
        "ars": lambda: infer.ars(domain=(-np.inf, np.inf)),
        "rejection": lambda: infer.rejection(dist.Cauchy(0.0, 1.0)),
        "nuts": infer.nuts,
    }
    for offset, imprecise in ((1e7, True), (1e4, False)):
        target = infer.Target(lambda x, c=offset: -0.5 * x**2 - c, init=jnp.asarray(0.0))
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            run = infer.sample(
                0, target, samplers[sampler](), num_chains=2, num_samples=200, num_warmup=200
            )
        said = [str(w.message) for w in caught if "float32" in str(w.message)]
        assert bool(said) == imprecise and all(w.filename == __file__ for w in caught)
        assert not said or "holds only values 1 apart" in said[0]
        flags = infer.compare({"run": run}, warn=False).loc["run", "flags"]
        assert ("imprecise" in flags) == imprecise
        if sampler != "nuts":  # an exact sampler's draws are then not exact
            assert run.info["exact"] is not imprecise


def test_sticky_chains_are_flagged_on_ess():
    rng = np.random.default_rng(0)
    ar = np.zeros((4, 1000))
    for t in range(1, 1000):
        ar[:, t] = 0.99 * ar[:, t - 1] + rng.standard_normal(4)
    flags, messages = _flags(infer.Result.from_draws({"x": ar}))
    assert "low_ess" in flags
    assert any("ESS" in m and "Draw more samples" in m for m in messages)
    # The threshold is settable.
    flags, _ = _flags(infer.Result.from_draws({"x": ar}), min_ess=5)
    assert "low_ess" not in flags


def test_acceptance_far_from_the_target_is_flagged():
    too_big = infer.rwmh(step_size=50.0)  # fixed: nearly every proposal is rejected
    result = infer.sample(0, targets.get("normal_10d"), too_big, num_chains=4, num_samples=500)
    flags, messages = _flags(result)
    assert "acceptance" in flags
    assert any("hardly moves" in m for m in messages)
    fake = infer.Result.from_draws(
        {"x": np.random.default_rng(0).standard_normal((2, 500))},
        stats={"acceptance_rate": np.full((2, 500), 0.9)},
        sampler="rwmh",
        info={"target_accept": 0.234},
    )
    flags, messages = _flags(fake)
    assert "acceptance" in flags and any("far above the target" in m for m in messages)


@pytest.mark.thorough  # test_rejection's missed spike checks the flag in make test
def test_envelope_violations_are_flagged():
    """A step envelope on a coarse grid misses a narrow spike (as in test_rejection)."""

    def spiky(x):
        smooth = -0.5 * ((x - 0.5) / 0.2) ** 2
        return jnp.logaddexp(smooth, math.log(6.0) - 0.5 * ((x - 0.51234) / 2e-6) ** 2)

    envelope = infer.envelopes.piecewise_constant(spiky, 0.0, 1.0, num_pieces=8, points_per_piece=4)
    sampler = infer.rejection(envelope.proposal, log_envelope=envelope.log_envelope)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", infer.EnvelopeWarning)
        result = infer.sample(
            0, infer.Target(spiky, name="spiky"), sampler, num_chains=1, num_samples=2_000_000
        )
    assert result.info["envelope_violations"] > 0
    flags, messages = _flags(result)
    assert "envelope" in flags and any("not exact" in m for m in messages)


def test_chains_that_never_moved_are_flagged():
    positive = infer.Target(
        lambda x: jnp.where(x > 0, -x, -jnp.inf), init=jnp.asarray(1.0), name="positive"
    )
    always_negative = infer.mh(lambda key, x: -x - jax.random.uniform(key), None)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        result = infer.sample(0, positive, always_negative, num_chains=3, num_samples=200)
    said = [str(w.message) for w in caught if "never moved" in str(w.message)]
    assert said and "every proposal was rejected" in said[0]  # sample() says so already
    flags, messages = _flags(result)
    assert "stuck_chains" in flags
    assert any("chain(s) [0, 1, 2] never moved" in m for m in messages)


@pytest.mark.thorough  # a message's length
def test_many_chains_that_never_moved_are_named_in_short():
    """Thousands of stuck chains were all listed, a warning of thousands of numbers."""
    many = infer.Result.from_draws({"x": np.ones((300, 20))})
    stuck = "chain(s) [0, 1, 2, 3, 4, 5, 6, 7, 8, 9] and 290 more (300 in all) never moved"
    assert any(stuck in m for m in _flags(many)[1])


def test_a_chain_too_short_to_tell_is_told_so_not_called_broken():
    """A chain whose acceptance probabilities make standing still for all its draws likely is
    flagged (its draws are one point), but the message blames the run's length, not the
    target; with acceptance probabilities of 0, or ones that made staying put improbable,
    the message is the broken chain's."""
    draws = np.random.default_rng(0).normal(size=(3, 10))
    draws[1] = draws[1, 0]  # chain 1 stood still for its 10 draws
    unlucky = np.full((3, 10), 0.1)  # standing still: 0.9**10 = 0.35
    hopeless = unlucky.copy()
    hopeless[1] = 0.0
    improbable = unlucky.copy()
    improbable[1] = 0.6  # 0.4**9 = 3e-4 over the 9 steps between its draws
    moved_in = unlucky.copy()  # its first step moved it into its first draw, which it kept:
    moved_in[1, 0] = 1.0  # "every proposal was rejected", of a chain that accepted one
    said = {}
    cases = [("unlucky", unlucky), ("hopeless", hopeless), ("improbable", improbable)]
    for name, rates in [*cases, ("moved in", moved_in)]:
        result = infer.Result.from_draws({"x": draws}, {"acceptance_rate": rates})
        flags, messages = _flags(result)
        assert "stuck_chains" in flags
        said[name] = next(m for m in messages if "never moved" in m)
    assert (
        "too short to tell" in said["unlucky"] and "0.9 to 0.9 moves in 9 steps" in said["unlucky"]
    )
    assert said["moved in"] == said["unlucky"]
    for name in ("hopeless", "improbable"):
        assert "every proposal was rejected" in said[name], said[name]


@pytest.mark.thorough  # an edge case, 2 s
def test_chains_on_a_flat_target_are_not_taken_for_stuck():
    # The log density is 0 wherever the chains go, so only their positions show they moved.
    box = infer.Target(
        lambda x: jnp.where(jnp.all(jnp.abs(x) < 1.0), 0.0, -jnp.inf), init=jnp.zeros(2), name="box"
    )
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        result = infer.sample(0, box, infer.rwmh(step_size=0.3), num_chains=3, num_samples=50)
    assert not any("never moved" in str(w.message) for w in caught)
    assert result.info["stuck_chains"] == []
    assert np.all(np.ptp(np.asarray(result.draws["x"]), axis=1) > 0)


@pytest.mark.thorough  # a rarer flag, 2 s
def test_stuck_chains_of_a_sampler_with_an_estimated_log_density_are_flagged():
    """SGLD's state holds a minibatch estimate of the log density, which changes while the
    chain stands still: judged by it, chains that never moved were taken for moving."""
    data = jax.random.normal(jax.random.key(1), (200,))
    target = infer.Target(lambda x: -0.5 * x**2 - 0.5 * jnp.sum((data - x) ** 2), init=0.0)

    def loglik(x, batch):
        return -0.5 * jnp.sum((batch - x) ** 2)

    def logprior(x):
        return -0.5 * x**2

    frozen = infer.sgld(loglik, logprior, data, step_size=1e-20, batch_size=10)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        result = infer.sample(0, target, frozen, num_chains=2, num_samples=100)
    assert np.all(np.ptp(np.asarray(result.draws["x"]), axis=1) == 0)
    assert result.info["stuck_chains"] == [0, 1]
    assert any("never moved" in str(w.message) for w in caught)


@pytest.mark.parametrize("family", ["meanfield", "fullrank"])
def test_a_biased_variational_fit_is_not_told_to_use_the_family_it_used(family):
    """A full-rank ADVI fit off the known answer was told to 'try family='fullrank''."""
    rng = np.random.default_rng(0)
    biased = infer.Result.from_draws(
        {"x": rng.standard_normal((1, 4000, 3)) + np.array([0.0, 0.0, 0.2])},
        ground_truth=infer.GroundTruth(mean={"x": np.zeros(3)}, std={"x": np.ones(3)}),
    )
    fit = dataclasses.replace(biased, info={**biased.info, "pareto_k": 0.3, "family": family})
    flags, messages = _flags(fit)
    said = next(m for m in messages if "standard errors from the known answer" in m)
    assert "ground_truth" in flags and "A variational fit is biased" in said
    assert ("family='fullrank'" in said) == (family == "meanfield"), said
    assert "a reparameterisation" in said


def test_chains_stuck_on_a_nan_gradient_are_told_so():
    kink = infer.Target(lambda x: -jnp.sum(jnp.sqrt(x**2)), init=jnp.zeros(2), name="kink")
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        result = infer.sample(0, kink, infer.mala(), init_jitter=0.0, num_chains=2, num_samples=100)
    said = [str(w.message) for w in caught if "never moved" in str(w.message)]
    assert said and "NaN or infinite gradient where the chains start" in said[0]
    flags, messages = _flags(result)  # compare's flag says the same
    assert "stuck_chains" in flags
    assert any("never moved: every proposal had a NaN" in m for m in messages)


def test_biased_estimates_are_flagged_against_the_ground_truth():
    rng = np.random.default_rng(0)
    biased = infer.Result.from_draws(
        {"x": rng.standard_normal((4, 1000, 3)) + np.array([0.0, 0.0, 0.2])},
        ground_truth=infer.GroundTruth(mean={"x": np.zeros(3)}, std={"x": np.ones(3)}),
    )
    flags, messages = _flags(biased)
    assert "ground_truth" in flags
    assert any("standard errors from the known answer" in m for m in messages)
    with pytest.raises(ValueError, match=r"ground_truth.mean names 'x', which draws do not"):
        infer.Result.from_draws(  # a truth naming no draw is refused where it is given ...
            {"theta": np.asarray(biased.draws["x"])}, ground_truth=biased.ground_truth
        )
    renamed = infer.Result.from_draws({"theta": np.asarray(biased.draws["x"])})
    known = infer.Target(lambda x: 0.0, init=0.0, ground_truth=biased.ground_truth, name="k")
    flags, messages = _flags(renamed, target=known)  # ... and where compare is given it
    assert "ground_truth" not in flags
    assert any("checked against the ground truth: it names ['x']" in m for m in messages)
    # one unknown (NaN) entry of the truth turned the whole check off, silently
    partly = infer.GroundTruth(mean={"x": np.array([np.nan, 0.0, 0.0])}, std={"x": np.ones(3)})
    half_known = infer.Result.from_draws({"x": np.asarray(biased.draws["x"])}, ground_truth=partly)
    assert "ground_truth" in _flags(half_known)[0]
    with pytest.raises(TypeError, match=r"GroundTruth.mean must be a dict draw name -> array"):
        infer.GroundTruth(mean=np.zeros(3), std=np.ones(3))


def test_compare_several_runs_and_target_truth(healthy, nuts_run):
    table, _ = _compare({"exact": healthy}, target=targets.get("normal_10d"))
    assert list(table.index) == ["exact"] and table.loc["exact", "max_abs_z"] < 5
    table, _ = _compare({"exact": healthy, "nuts": nuts_run})  # each result's own truth
    assert list(table.index) == ["exact", "nuts"]
    # another target's truth is refused by name (it was used when the shapes agreed)
    with pytest.raises(ValueError, match=r"run 'nuts' sampled target 'eight_schools', but"):
        infer.compare({"exact": healthy, "nuts": nuts_run}, targets.get("normal_10d"))
    # draws made elsewhere carry a free label: checked by shape only
    stan = infer.Result.from_draws(
        {"x": np.asarray(healthy.draws["x"])}, sampler="stan", target="normal 10d (stan)"
    )
    table, _ = _compare({"stan": stan}, target=targets.get("normal_10d"))
    assert table.loc["stan", "max_abs_z"] < 5
    with pytest.raises(ValueError, match=r"'banana' knows 'x' with shape \(2,\), but run 'exact'"):
        renamed = dataclasses.replace(healthy, target="banana")  # same name, other shape
        infer.compare({"exact": renamed}, targets.get("banana"))


def test_from_draws_rejects_inconsistent_shapes():
    with pytest.raises(ValueError, match=r"draws\['x'\] has shape \(5,\); expected"):
        infer.Result.from_draws({"x": np.zeros(5)})
    with pytest.raises(ValueError, match=r"all must share them"):
        infer.Result.from_draws({"a": np.zeros((2, 10)), "b": np.zeros((3, 10))})
    with pytest.raises(ValueError, match=r"stats\['lp'\] has shape \(2, 9\)"):
        infer.Result.from_draws({"a": np.zeros((2, 10))}, stats={"lp": np.zeros((2, 9))})
    with pytest.raises(TypeError, match="non-empty dict"):
        infer.Result.from_draws([])
    with pytest.raises(TypeError, match=r"draws\['layer'\] is a dict; .*'layer.w'"):
        infer.Result.from_draws({"layer": {"w": np.zeros((2, 10))}})


@pytest.mark.parametrize(
    "options, error, match",
    [
        ({"timing": {"sampling": "fast"}}, ValueError, r"timing\['sampling'\] must be seconds"),
        (
            {"num_logdensity_evals": -5},
            ValueError,
            r"num_logdensity_evals must be a whole number >= 0",
        ),
        (
            {"num_grad_evals": 2.7},
            TypeError,
            r"num_grad_evals must be a whole number >= 0; got 2.7",
        ),
        (
            {"ground_truth": infer.GroundTruth(mean={"m": np.zeros(3)}, std={"m": np.ones(3)})},
            ValueError,
            r"ground_truth.mean\['m'\] has shape \(3,\), but one draw of 'm' in draws has shape",
        ),
        (
            {"ground_truth": infer.GroundTruth(mean={"m": 0.0}, std={"M": 1.0})},
            ValueError,
            r"ground_truth.std names 'M', which draws do not have \(they are \['m'\]\)",
        ),
    ],
    ids=["timing", "negative-count", "float-count", "truth-shape", "truth-name"],
)
def test_from_draws_checks_its_run_facts(options, error, match):
    """Each used to be taken as given and to fail later, inside compare."""
    with pytest.raises(error, match=match):
        infer.Result.from_draws({"m": np.zeros((2, 50))}, **options)


def test_from_draws_takes_counts_and_seconds_as_0d_arrays():
    """Counts summed with JAX or NumPy, and seconds as 0-d arrays, were refused at first."""
    result = infer.Result.from_draws(
        {"m": np.zeros((2, 50))},
        num_logdensity_evals=jnp.sum(jnp.ones(5, jnp.int32)),
        num_grad_evals=100.0,
        timing={"total": jnp.asarray(1.5)},
    )
    assert (result.num_logdensity_evals, result.num_grad_evals) == (5, 100)
    assert result.timing["total"] == 1.5


def test_a_target_whose_known_answer_does_not_fit_its_draws_is_refused():
    truth = infer.GroundTruth(mean={"x": np.zeros(3)}, std={"x": np.ones(3)})
    target = infer.Target(lambda x: -jnp.sum(x**2), init=jnp.zeros(2), ground_truth=truth)
    with pytest.raises(ValueError, match=r"one draw of 'x' in the target's draws has shape \(2,"):
        infer.sample(0, target, infer.rwmh(), num_chains=2, num_samples=10)
    misspelt = infer.GroundTruth(mean={"x": np.zeros(2), "y": 0.0}, std={"x": np.ones(2)})
    target = infer.Target(lambda x: -jnp.sum(x**2), init=jnp.zeros(2), ground_truth=misspelt)
    with pytest.raises(ValueError, match=r"ground_truth.mean names 'y', which the target's draws"):
        infer.sample(0, target, infer.rwmh(), num_chains=2, num_samples=10)


def test_16_bit_float_draws_are_kept_as_float32():
    """SciPy's statistics and NetCDF take no bfloat16 or float16: summary and save used to
    fail on them."""
    import ml_dtypes

    values = np.random.default_rng(0).normal(size=(2, 50))
    for dtype in (ml_dtypes.bfloat16, np.float16):
        result = infer.Result.from_draws({"m": values.astype(dtype)})
        assert result.draws["m"].dtype == np.float32
        assert np.isfinite(infer.summary(result)["ess_bulk"]).all()


def test_compare_rejects_what_is_not_a_result():
    with pytest.raises(TypeError, match=r"results\['x'\] must be an infer.Result"):
        infer.compare({"x": np.zeros((2, 3))})


def test_nonfinite_proposals_are_flagged_with_their_count():
    target = infer.Target(
        lambda x: jnp.where(x[0] < 1.0, -0.5 * jnp.sum(x**2), jnp.nan),
        init=jnp.zeros(2),
        name="nan_above_one",
    )
    result = infer.sample(0, target, infer.rwmh(), num_chains=2, num_samples=300)
    kept = int(result.stats["nonfinite"].sum())
    flags, messages = _flags(result)
    assert "nonfinite" in flags
    assert any(
        f"run (rwmh on nan_above_one): {kept} after warm-up" in m and "check its support" in m
        for m in messages
    )


@pytest.mark.thorough  # a rarer flag, 3 s
def test_rejection_counts_nonfinite_densities_at_its_proposals():
    import numpyro.distributions as dist

    target = infer.Target(
        lambda x: jnp.where(x < 3.0, -0.5 * x**2, jnp.nan), init=jnp.asarray(0.0), name="cut"
    )
    sampler = infer.rejection(dist.Cauchy(0.0, 1.0), log_envelope=1.5)
    result = infer.sample(0, target, sampler, num_chains=2, num_samples=2000)
    assert result.info["nonfinite_proposals"] > 0
    assert np.all(result.draws["x"] < 3.0)
    flags, messages = _flags(result)
    assert "nonfinite" in flags


def test_a_parameter_frozen_in_every_chain_is_flagged_not_dropped():
    rng = np.random.default_rng(0)
    moving = rng.standard_normal((4, 500, 3))
    moving[..., 1] = 0.25  # frozen everywhere: R-hat and ESS are NaN
    result = infer.Result.from_draws({"x": moving})
    flags, messages = _flags(result)
    assert "nan_stats" in flags
    assert any(
        "NaN, or the draws never changed, for x[1] (never changed): the" in m for m in messages
    )


@pytest.mark.parametrize("info", [{}, {"exact": True}, {"pareto_k": 0.3}])
def test_a_frozen_parameter_of_one_chain_is_named_for_any_sampler(info):
    """One chain has no R-hat, and a constant's ESS and MCSE are numbers (as ArviZ gives
    them): the draws themselves show it never changed. Labels are ArviZ's, ``b[1, 0]``."""
    rng = np.random.default_rng(0)
    b = rng.standard_normal((1, 1000, 3, 2))
    b[..., 1, 0] = 0.1
    result = infer.Result.from_draws({"a": rng.standard_normal((1, 1000)), "b": b}, info=info)
    flags, messages = _flags(result)
    assert "nan_stats" in flags
    assert any("for b[1, 0] (never changed):" in m for m in messages)
    assert not any("b[0, 0]" in m or "a " in m.split(":")[0] for m in messages)


def test_an_infinite_draw_is_flagged_and_named_as_the_cause():
    draws = np.random.default_rng(1).standard_normal((4, 500, 2))
    draws[2, 10, 0] = np.inf  # ranks stay finite; the MCSE of the mean does not
    flags, messages = _flags_and_nothing_else(infer.Result.from_draws({"x": draws}))
    assert "nan_stats" in flags
    assert any("for x[0] (NaN or inf draws):" in m for m in messages)
    assert not any("x[1]" in m for m in messages)


@pytest.mark.parametrize("statistics", ["jax", "arviz"])
def test_finite_draws_whose_squares_overflow_are_named_as_such(statistics):
    # the flag said the parameter never changed or held NaN or inf, of finite, varying draws;
    # statistics="arviz" let NumPy's "overflow encountered in square" through beside it
    draws = np.random.default_rng(3).standard_normal((4, 500, 2)) * [1e160, 1.0]
    result = infer.Result.from_draws({"x": draws})
    flags, messages = _flags_and_nothing_else(result, statistics=statistics)
    assert "nan_stats" in flags
    assert any("MCSE is NaN for x[0] (too large: squares overflow)" in m for m in messages)
    assert not any("never changed" in m or "x[1]" in m for m in messages)


@pytest.mark.parametrize(
    "shape, says",
    [
        ((1, 500), "R-hat needs at least 2 chains and this run has 1"),
        ((4, 3), "ESS and R-hat need at least 4 draws per chain; this run has 3"),
    ],
)
def test_a_run_too_narrow_or_too_short_for_the_statistics_says_so(shape, says):
    draws = np.random.default_rng(2).standard_normal(shape)
    with warnings.catch_warnings():
        warnings.simplefilter("error", RuntimeWarning)
        flags, messages = _flags(infer.Result.from_draws({"mu": draws}))
    assert "nan_stats" in flags
    assert any(says in m for m in messages)
    assert not any("never changed" in m for m in messages)


def test_chains_stuck_at_different_values_give_an_infinite_rhat_that_is_flagged():
    draws = np.repeat(np.arange(4.0)[:, None], 200, axis=1)  # each chain frozen elsewhere
    table, caught = _compare({"run": infer.Result.from_draws({"mu": draws})})
    assert table.loc["run", "max_rhat"] == np.inf
    assert "rhat" in table.loc["run", "flags"].split(",")


def test_superchains_get_nested_rhat():
    result = infer.sample(
        0, targets.get("normal_10d"), infer.rwmh(), num_chains=8, num_samples=300, superchains=2
    )
    table, _ = _compare({"run": result})
    assert 0.99 < table.loc["run", "max_nested_rhat"] < 1.2
    plain = infer.Result.from_draws(result.draws)  # the same draws, no superchains declared
    assert np.isnan(_compare({"run": plain})[0].loc["run", "max_nested_rhat"])
    # statistics="arviz" computes it with arviz_stats.rhat_nested (it used infer's JAX code)
    by_arviz, _ = _compare({"run": result}, statistics="arviz")
    jax_value = table.loc["run", "max_nested_rhat"]
    assert by_arviz.loc["run", "max_nested_rhat"] == pytest.approx(jax_value, rel=1e-5)


@pytest.mark.parametrize("superchains", [4, 6, 1, 2.0])
def test_a_superchain_count_that_does_not_fit_the_chains_is_refused(superchains):
    """It grouped the chains with ``arange(6) // (6 // 4)``: six superchains of one chain,
    a nested R-hat of the wrong groups without a word (8 of 6: NaN)."""
    draws = {"a": np.random.default_rng(0).standard_normal((6, 100))}
    with pytest.raises((ValueError, TypeError), match=r'info\["superchains"\]'):
        infer.Result.from_draws(draws, info={"superchains": superchains})
    result = infer.Result.from_draws(draws, info={"superchains": 3})
    result.info["superchains"] = superchains  # changed afterwards: compare checks it too
    with pytest.raises((ValueError, TypeError), match=r"run .x.: info\[.superchains.\]"):
        infer.compare({"x": result})


@pytest.mark.parametrize("scale", [1e42, 1e-40])
def test_a_miss_of_far_more_than_its_mcse_is_flagged_at_any_scale(scale):
    """The MCSE came back in float32: inf for draws near 1e42, so |mean - truth| / MCSE was 0
    and a miss of 300 standard errors went unflagged (statistics="arviz" flagged it)."""
    rng = np.random.default_rng(0)
    draws = {"x": (rng.standard_normal((4, 1000)) + 10.0) * scale}
    truth = infer.GroundTruth(mean={"x": np.zeros(())}, std={"x": np.full((), scale)})
    for statistics in ("jax", "arviz"):
        table, _ = _compare(
            {"run": infer.Result.from_draws(draws, ground_truth=truth)}, statistics=statistics
        )
        assert "ground_truth" in table.loc["run", "flags"], statistics
        assert table.loc["run", "max_abs_z"] > 100, statistics
        mcse = table.loc["run", "max_mcse_mean"]
        assert np.isfinite(mcse) and mcse > 0, statistics


@pytest.mark.parametrize(
    "call, error, match",
    [
        (lambda r: infer.compare({"a": r}, "banana"), TypeError, "target must be an infer.Target"),
        (lambda r: infer.compare([r, 3]), TypeError, r"results\[1\] must be an infer.Result"),
        (lambda r: infer.compare(np.zeros(3)), TypeError, "results must be a dict of name"),
        (lambda r: infer.compare({"a": r}, min_ess="400"), TypeError, "min_ess must be a number"),
        (lambda r: infer.summary(r.draws), TypeError, "result must be an infer.Result; got dict"),
    ],
)
def test_arguments_of_the_wrong_kind_are_named(call, error, match):
    result = infer.Result.from_draws({"x": np.random.default_rng(3).standard_normal((2, 50))})
    with pytest.raises(error, match=match):
        call(result)


def test_one_chain_of_independent_draws_is_not_told_to_converge():
    draws = np.random.default_rng(4).standard_normal((1, 500))
    exact = infer.Result.from_draws({"mu": draws}, info={"exact": True})
    flags, messages = _flags(exact)
    assert not any("R-hat needs at least 2 chains" in m for m in messages)


def test_true_false_draws_are_summarised_as_zeros_and_ones():
    """Boolean draws (an indicator) are kept as 0/1 integers: ArviZ's statistics need
    numbers, and both ways of computing them agree on those."""
    flag = np.random.default_rng(0).random((4, 200)) < 0.3
    result = infer.Result.from_draws({"flag": flag})
    assert result.draws["flag"].dtype == np.int8
    np.testing.assert_array_equal(result.draws["flag"], flag)
    summary = infer.summary(result)
    assert summary.loc["flag", "mean"] == pytest.approx(flag.mean(), abs=1e-3)
    by_jax = infer.compare({"r": result}, warn=False)
    by_arviz = infer.compare({"r": result}, statistics="arviz", warn=False)
    assert by_jax.loc["r", "min_ess_bulk"] == pytest.approx(by_arviz.loc["r", "min_ess_bulk"])


def test_an_rhat_just_past_the_limit_is_shown_past_it():
    """1.0104 was shown as 1.010 in the warning and the table, read as within 1.01."""
    from infer import flag_rules, report

    rule = dict(flag_rules.FLAG_RULES)["rhat"]
    run = infer.Result.from_draws({"x": np.zeros((2, 10))})  # not HMC: the row decides
    message = rule(run, {"max_rhat": 1.0104, "max_nested_rhat": np.nan}, {}, 400.0)
    assert message.startswith("max R-hat 1.0104 > 1.01")
    assert rule(run, {"max_rhat": 1.0099, "max_nested_rhat": np.nan}, {}, 400.0) is None
    assert report.SHOWN_COLUMNS["max_rhat"][1].format(1.0104) == "1.0104"


@pytest.mark.thorough  # a warning's wording, 3 s
def test_the_rhat_and_ess_warnings_name_the_parameters_worst_first():
    """They gave the worst value alone: which of 13 parameters, the user had to look up."""
    rng = np.random.default_rng(0)
    walk = np.cumsum(rng.normal(size=(4, 1000, 12)), axis=1)  # 12 that never mix
    walk[:, :, 4] *= 3.0  # the worst of them
    shifted = rng.normal(size=(4, 1000)) + np.array([[0.0], [0.0], [0.0], [0.5]])
    draws = {"fine": rng.normal(size=(4, 1000)), "shifted": shifted, "v": walk}
    _, caught = _compare({"run": infer.Result.from_draws(draws)})
    said = {m.split(" ")[1]: m for m in (str(w.message).split(": ", 1)[1] for w in caught)}
    assert said["R-hat"].split(" (in ")[1].startswith("v[")
    assert "and 8 more)" in said["R-hat"] and "fine" not in said["R-hat"]
    assert "and 8 more)" in said["ESS"] and "fine" not in said["ESS"]


@pytest.mark.thorough  # an edge case, 2.5 s
def test_an_rhat_just_above_the_limit_is_shown_with_the_digits_that_say_so():
    """1.010044 was written 1.0100 beside "> 1.01" and the rhat flag."""
    from infer.flag_rules import above_limit
    from infer.report import formatted

    assert above_limit(1.010044) == "1.01004" and above_limit(1.0234) == "1.0234"
    assert above_limit(1.0100000004) == "1.0100000004"
    base = np.random.default_rng(0).normal(size=(4, 4000))
    low, high = 0.0, 0.5  # bisect the chains' spread for an R-hat in (1.01, 1.01005)
    for _ in range(60):
        draws = base + (low + high) / 2 * np.arange(4)[:, None]
        rhat = float(chain_stats.rhat(draws))
        if 1.01 < rhat < 1.01005:
            break
        low, high = (low, (low + high) / 2) if rhat > 1.01 else ((low + high) / 2, high)
    table, caught = _compare({"run": infer.Result.from_draws({"x": draws})})
    assert 1.01 < table.loc["run", "max_rhat"] < 1.01005
    shown = float(formatted(table)[1][formatted(table)[0].index("R-hat (max)")])
    assert shown > 1.01
    said = next(str(w.message) for w in caught if "max R-hat" in str(w.message))
    assert float(said.split("max R-hat ")[1].split(" ")[0]) > 1.01


def test_a_list_of_runs_is_named_by_sampler_and_repeats_are_numbered():
    """Every run after the first got its position as a suffix (rwmh_1 beside nuts), also in
    the report's file names."""
    draws = {"mu": np.random.default_rng(4).standard_normal((2, 50))}
    nuts, rwmh = (infer.Result.from_draws(draws, sampler=name) for name in ("nuts", "rwmh"))
    assert list(infer.compare([nuts, rwmh], warn=False).index) == ["nuts", "rwmh"]
    assert list(infer.compare([nuts, rwmh, nuts], warn=False).index) == ["nuts", "rwmh", "nuts_2"]
    with pytest.raises(TypeError, match=r"results\[1\] must be an infer.Result; got dict"):
        infer.compare([nuts, {"mu": 1}])


def test_divergence_advice_asks_for_a_target_accept_above_the_one_used():
    """The advice was always target_accept=0.95, also to a run that had used 0.95."""
    from infer.flag_rules import divergence_advice

    plain = infer.Result.from_draws({"x": np.zeros((2, 10))})
    tuned = [
        dataclasses.replace(
            plain,
            seed=0,
            num_warmup=100,
            info={"target_accept": t},
            sampler=sampler,
            settings={"target_accept": t},
        )
        for t, sampler in ((0.8, "nuts"), (0.95, "nuts"), (0.9, "hmc"))
    ]
    assert "target_accept=0.95" in divergence_advice(tuned[0])
    assert "than 0.95 (e.g. infer.nuts(target_accept=0.99))" in divergence_advice(tuned[1])
    assert "(e.g. infer.hmc(target_accept=0.95))" in divergence_advice(tuned[2])  # was nuts'
    bare = dataclasses.replace(tuned[0], settings={})  # no such option: the value alone
    assert "(e.g. target_accept=0.95)" in divergence_advice(bare)
    own = dataclasses.replace(tuned[0], sampler="tuned_walk")  # not a function of infer's
    assert "(e.g. tuned_walk(target_accept=0.95))" in divergence_advice(own)


def test_divergences_in_draws_made_elsewhere_get_advice_for_that_sampler(tmp_path):
    # from_draws records num_warmup=0, and the advice was "No warm-up ran (num_warmup=0) ...
    # give warm-up steps": advice for an infer run, to draws made by another library
    rng = np.random.default_rng(0)
    diverging = np.zeros((4, 500), bool)
    diverging[0, 10] = True
    stats = {"diverging": diverging, "acceptance_rate": np.full((4, 500), 0.9)}
    external = infer.Result.from_draws({"a": rng.standard_normal((4, 500))}, stats=stats)
    external.save(tmp_path / "external.nc")
    for result in (external, infer.load(tmp_path / "external.nc")):
        with pytest.warns(infer.DiagnosticWarning, match="divergent") as said:
            infer.compare({"e": result})
        text = " ".join(str(w.message) for w in said)
        assert "made elsewhere (Result.from_draws)" in text and "num_warmup=0" not in text


def test_the_arviz_path_is_quiet_about_nan_and_constant_parameters():
    # NumPy's "invalid value encountered in scalar divide", twice, beside the nan_stats flag
    rng = np.random.default_rng(0)
    x = rng.standard_normal((4, 200))
    x[0, 5] = np.nan
    result = infer.Result.from_draws({"a": x, "c": np.ones((4, 200))})
    with warnings.catch_warnings(record=True) as said:
        warnings.simplefilter("always")
        table = infer.compare({"n": result}, statistics="arviz", warn=False)
    assert said == [] and "nan_stats" in table.loc["n", "flags"]


@pytest.mark.thorough  # a rarer warning, 12 s (two HMC programs)
def test_hmc_resonating_on_a_whitened_gaussian_is_told_what_to_change():
    """HMC's default trajectory, 2π, returns a whitened Gaussian's chains near their starts:
    R-hat and ESS were flagged with advice to run longer, which never helped. The warning
    names the trajectory length; ``infer compare``'s HMC, which has no option for it, runs
    with 1.5 and mixes."""
    target = targets.get("normal_10d")
    run = dict(num_chains=2, num_samples=500, num_warmup=300)
    resonating = infer.sample(0, target, infer.hmc(), **run)
    mixing = infer.sample(0, target, infer.registry.make("hmc", target), **run)
    assert mixing.settings["trajectory_length"] == 1.5
    with pytest.warns(infer.DiagnosticWarning, match=r"trajectory_length 6.28 can resonate"):
        table = infer.compare({"default": resonating, "cli": mixing})
    assert table.loc["default", "flags"] and not table.loc["cli", "flags"]


def test_the_resonance_note_does_not_suggest_the_length_the_run_used():
    """``infer compare``'s HMC runs with 1.5, and its flags told it to give another one:
    ``trajectory_length=1.5``."""
    from types import SimpleNamespace

    from infer.flag_rules import resonance_note

    def note(length):
        return resonance_note(
            SimpleNamespace(sampler="hmc", settings={"trajectory_length": length})
        )

    assert "trajectory_length=1.5)" in note(2 * np.pi)
    assert "trajectory_length 1.5 can resonate" in note(1.5)
    assert "trajectory_length=1.5)" not in note(1.5)


def test_a_run_of_more_chains_than_draws_converts_without_arviz_guessing_its_axes():
    """ArviZ's "Found chain dimension to be longer than draw dimension, check dimensions are
    correctly named" was printed beside infer's own warnings of a short run."""
    result = infer.Result.from_draws({"x": np.random.default_rng(0).standard_normal((8, 3))})
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        assert result.to_arviz().posterior.sizes["chain"] == 8


@pytest.mark.thorough  # an edge case, 4 s; test_healthy_run_raises_no_flag checks a run that mixes
def test_independent_draws_get_no_rhat_flag():
    # ADVI's draws were told to "run longer with more warm-up" for an R-hat of 1.0105: draws
    # that have nothing to converge are flagged by ESS, not R-hat (an MCMC run still is)
    import numpyro.distributions as dist

    normal = infer.Target(lambda x: -0.5 * x**2, init=jnp.asarray(0.0), name="normal")
    exact = infer.sample(0, normal, infer.rejection(dist.Cauchy(0.0, 1.0)), num_chains=4)
    markov = infer.sample(0, normal, infer.rwmh(), num_chains=4)
    apart = np.asarray([0.5, 0.0, 0.0, 0.0])[:, None]  # chain 0 shifted: R-hat far above 1.01
    runs = {
        name: dataclasses.replace(run, draws={"x": np.asarray(run.draws["x"]) + apart})
        for name, run in (("exact", exact), ("markov", markov))
    }
    table = infer.compare(runs, warn=False)
    assert (table["max_rhat"] > 1.015).all()
    assert "rhat" not in table.loc["exact", "flags"] and "rhat" in table.loc["markov", "flags"]


def test_a_parameter_that_never_moves_is_left_out_of_the_ess_minima():
    """A constant's ESS is its draw count (ArviZ's), and it stood in ``min_ess_bulk``, the
    medians and the per-second columns for the moving parameters' (silently for a NumPyro
    deterministic, which is not flagged), and was named as the low-ESS parameter."""
    rng = np.random.default_rng(0)
    noise = rng.standard_normal((4, 1000))
    antithetic = np.empty_like(noise)  # ESS above the 4,000 draws
    antithetic[:, 0] = noise[:, 0]
    for t in range(1, 1000):
        antithetic[:, t] = -0.5 * antithetic[:, t - 1] + noise[:, t]
    alone = infer.compare({"a": infer.Result.from_draws({"a": antithetic})}, warn=False)
    assert alone.loc["a", "min_ess_bulk"] > 4000.0
    columns = ["min_ess_bulk", "median_ess_bulk", "min_ess_tail", "median_ess_tail"]
    constant = np.full((4, 1000), 3.0)
    for info in ({}, {"deterministic": ["c"]}):
        both = infer.Result.from_draws({"a": antithetic, "c": constant}, info=info)
        with warnings.catch_warnings(record=True) as said:
            warnings.simplefilter("always")
            table = infer.compare({"a": both}, min_ess=alone.loc["a", "min_ess_tail"] + 1.0)
        np.testing.assert_array_equal(table.loc["a", columns], alone.loc["a", columns])
        low_ess = [str(w.message) for w in said if "min ESS" in str(w.message)]
        assert low_ess and not any(re.search(r"\bc \d", message) for message in low_ess)
    # a chain alone has no R-hat, but its ESS stands (the first version left it out)
    one_chain = infer.Result.from_draws({"a": antithetic[:1], "c": constant[:1]})
    table = infer.compare({"one": one_chain}, warn=False)
    assert table.loc["one", "min_ess_bulk"] == pytest.approx(
        float(chain_stats.ess(antithetic[:1])), rel=1e-6
    )


def test_draws_whose_squares_underflow_are_flagged_not_called_exact():
    """Draws spread by 1e-160 (each a normal float64) got an MCSE of exactly 0 on the JAX
    path, an exact mean, unflagged; squares that overflow were flagged already."""
    draws = np.random.default_rng(6).standard_normal((4, 500))
    for scale, flagged in ((1.0, False), (1e-160, True)):
        result = infer.Result.from_draws({"x": draws * scale})
        with warnings.catch_warnings(record=True) as said:
            warnings.simplefilter("always")
            table = infer.compare({"r": result})
        told = [str(w.message) for w in said if "squares underflow" in str(w.message)]
        assert bool(told) == flagged == ("nan_stats" in table.loc["r", "flags"])
        assert not flagged or table.loc["r", "max_mcse_mean"] == 0.0  # what it guards


def test_the_summary_of_frozen_and_nan_draws_is_as_quiet_as_compare():
    """infer.summary let NumPy's divide-by-zero and overflow warnings through, placed in
    arviz_stats' lines; compare left them out, as the table shows those values."""
    rng = np.random.default_rng(0)
    frozen = np.ones((2, 100)) * rng.normal(size=(2, 1))  # each chain stuck, apart
    with_nan = rng.normal(size=(2, 100))
    with_nan[0, 5] = np.nan
    result = infer.Result.from_draws({"frozen": frozen, "with_nan": with_nan})
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        summary = infer.summary(result)
    assert summary.loc["frozen", "r_hat"] > 1e6  # ArviZ's round-off of an infinite R-hat
