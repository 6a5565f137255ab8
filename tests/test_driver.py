"""The driver's contract: reproducibility, shapes, no recompilation, starting points, costs,
and numerical trouble turned into rejections."""

import contextlib
import functools
import io
import sys
import time
import types
import warnings

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from short_runs import NORMAL_3D, SAMPLERS, SHORT
from tqdm import tqdm

import infer
from models import targets


# NUTS's programs are the slowest to compile of these (5-8 s each here): `make test-fast` runs
# the sampler matrices without it, `make test` with it.
def sampler_names(*names: str, thorough: tuple = ()) -> list:
    """``names`` (default: every sampler here) as parameters, NUTS's marked slow and those in
    ``thorough`` left to `make test-thorough`."""
    return [
        pytest.param(
            name,
            marks=[pytest.mark.slow] * (name == "nuts")
            + [pytest.mark.thorough] * (name in thorough),
        )
        for name in names or SAMPLERS
    ]


# A program built inside the block: compiled by XLA, or loaded from the persistent compilation
# cache that the test run shares (a hit there records no backend compilation).
PROGRAM_BUILT = (
    "/jax/core/compile/backend_compile_duration",
    "/jax/compilation_cache/cache_retrieval_time_sec",
)


@contextlib.contextmanager
def count_compilations():
    """Counts the programs built inside the block: compiled, or loaded from the persistent
    compilation cache (either means the in-memory caches missed)."""
    counter = {"n": 0}

    def listener(event, duration, **kwargs):
        if event in PROGRAM_BUILT:
            counter["n"] += 1

    jax.monitoring.register_event_duration_secs_listener(listener)
    try:
        yield counter
    finally:
        jax.monitoring.unregister_event_duration_listener(listener)


# Bit-identity comes from the driver's keys, which every sampler gets alike: `make test` checks
# a random walk and a gradient step here, NumPyro's NUTS bit for bit in test_resume.py (a run of
# 2n against n resumed for n more), `make test-thorough` every one.
IDENTITY_KINDS = ("rwmh", "mala")


@pytest.mark.parametrize(
    "name",
    [
        pytest.param(
            n,
            marks=[pytest.mark.slow] * (n == "nuts")
            + [pytest.mark.thorough] * (n not in IDENTITY_KINDS),
        )
        for n in SAMPLERS
    ],
)
def test_same_seed_gives_bit_identical_draws(name):
    sampler = SAMPLERS[name]  # 60 draws: test_resume.py's programs, run on the same worker
    first = infer.sample(7, NORMAL_3D, sampler, num_samples=60, **SHORT)
    again = infer.sample(7, NORMAL_3D, sampler, num_samples=60, **SHORT)
    other = infer.sample(8, NORMAL_3D, sampler, num_samples=60, **SHORT)
    np.testing.assert_array_equal(first.draws["x"], again.draws["x"])
    for key in first.stats:
        np.testing.assert_array_equal(first.stats[key], again.stats[key])
    assert not np.array_equal(first.draws["x"], other.draws["x"])


@pytest.mark.parametrize("donated", [True, False])
def test_draws_of_earlier_chunks_survive_the_chunks_written_after_them(monkeypatch, donated):
    """A chunk's buffers are written again two chunks later (in place where the program
    donates them). Draws kept from a full chunk (on a CPU, a view of its buffers), from a
    partial one (a copy) and from the last, partial one (a view) must not change: a run of 3
    chunks equals, draw for draw, a run of one, and the same run cut in 26 pieces by a
    progress bar; and a run resumed from it leaves its draws as they were."""
    from infer import driver, markov

    monkeypatch.setattr(driver, "MAX_CHUNK_DRAWS", 50)
    monkeypatch.setattr(markov, "DONATE_FROM_STEP_BYTES", 0 if donated else 2**40)
    monkeypatch.setattr(markov, "PROGRAMS", type(markov.PROGRAMS)())
    sampler = infer.rwmh(step_size=0.5)
    run = functools.partial(infer.sample, 5, NORMAL_3D, sampler, num_chains=2, num_warmup=0)
    one_chunk, three_chunks = run(num_samples=50), run(num_samples=130)
    pieces = run(num_samples=130, progress=functools.partial(tqdm, file=io.StringIO()))
    np.testing.assert_array_equal(three_chunks.draws["x"][:, :50], one_chunk.draws["x"])
    np.testing.assert_array_equal(pieces.draws["x"], three_chunks.draws["x"])
    for name in three_chunks.stats:
        np.testing.assert_array_equal(pieces.stats[name], three_chunks.stats[name])
    assert len(np.unique(three_chunks.draws["x"][0, :, 0])) > 20  # the chain moved
    kept = {name: np.array(value) for name, value in three_chunks.stats.items()}
    kept["x"] = np.array(three_chunks.draws["x"])
    run(num_samples=130, resume=three_chunks)
    np.testing.assert_array_equal(three_chunks.draws["x"], kept.pop("x"))
    for name, value in kept.items():
        np.testing.assert_array_equal(three_chunks.stats[name], value)


@pytest.mark.slow  # 3 s: make test, not test-fast
def test_a_key_and_its_seed_give_the_same_draws():  # and the same programs
    sampler = SAMPLERS["rwmh"]
    from_seed = infer.sample(5, NORMAL_3D, sampler, num_samples=30, **SHORT)
    with count_compilations() as compilations:  # the seed's programs (a key compiled anew)
        from_key = infer.sample(jax.random.key(5), NORMAL_3D, sampler, num_samples=30, **SHORT)
        legacy = infer.sample(jax.random.PRNGKey(5), NORMAL_3D, sampler, num_samples=30, **SHORT)
    assert compilations["n"] == 0
    np.testing.assert_array_equal(from_seed.draws["x"], from_key.draws["x"])
    np.testing.assert_array_equal(from_seed.draws["x"], legacy.draws["x"])
    # so a run made from one resumes with the other (the key was refused: "pass that seed")
    more = infer.sample(jax.random.key(5), NORMAL_3D, sampler, num_samples=30, resume=from_seed)
    again = infer.sample(5, NORMAL_3D, sampler, num_samples=30, resume=from_key)
    np.testing.assert_array_equal(more.draws["x"], again.draws["x"])
    # a key of another implementation after it in one process: its own program, its own draws
    # (the cached threefry program was called with an rbg key: "Argument types differ")
    from_rbg = infer.sample(
        jax.random.key(5, impl="rbg"), NORMAL_3D, sampler, num_samples=30, **SHORT
    )
    assert not np.array_equal(from_rbg.draws["x"], from_key.draws["x"])


# NUTS's programs (4 s to compile here) are cached as every other sampler's: thorough.
@pytest.mark.parametrize("name", sampler_names("rwmh", "nuts", thorough=("nuts",)))
def test_second_call_with_same_shapes_does_not_compile(name):
    sampler = SAMPLERS[name]
    infer.sample(0, NORMAL_3D, sampler, num_samples=30, **SHORT)
    with count_compilations() as compilations:  # a new num_samples is no new program
        result = infer.sample(1, NORMAL_3D, sampler, num_samples=45, **SHORT)
    assert compilations["n"] == 0
    assert result.timing["compile"] == 0.0 and result.info["cache_hit"]
    # a new num_warmup is (docs/running-samplers.md): the adaptation windows come from it
    longer = {**SHORT, "num_warmup": SHORT["num_warmup"] + 1}
    assert not infer.sample(1, NORMAL_3D, sampler, num_samples=30, **longer).info["cache_hit"]


def test_a_new_sampler_object_with_the_same_options_reuses_the_program():
    infer.sample(0, NORMAL_3D, infer.mala(), num_samples=30, **SHORT)
    with count_compilations() as compilations:
        infer.sample(0, NORMAL_3D, infer.mala(), num_samples=30, **SHORT)
    assert compilations["n"] == 0


# NumPyro's kernels (HMC 3 s, NUTS) thorough; RWMH, MALA and the others stay
@pytest.mark.parametrize("name", sampler_names(thorough=("nuts", "hmc")))
def test_standalone_step_works_under_jit_and_vmap(name):
    """BlackJAX-style use: init one chain, step many vectorised chains, in one jitted call."""
    alg = SAMPLERS[name].bind(NORMAL_3D.logdensity_fn)
    positions = jnp.zeros((5, 3))
    states = jax.vmap(alg.init)(positions)
    keys = jax.random.split(jax.random.key(0), 5)
    new_states, infos = jax.jit(jax.vmap(alg.step))(keys, states)
    assert new_states.position.shape == (5, 3)
    assert jax.tree.structure(new_states) == jax.tree.structure(states)
    assert infos.acceptance_rate.shape == (5,)


def test_draw_and_stat_shapes_and_names():
    result = infer.sample(0, NORMAL_3D, infer.nuts(), num_samples=40, **SHORT)
    assert result.draws["x"].shape == (3, 40, 3)
    for name in ("lp", "acceptance_rate", "diverging", "n_steps", "tree_depth", "step_size"):
        assert result.stats[name].shape == (3, 40), name
    assert result.stats["diverging"].dtype == bool


@pytest.mark.thorough  # 4-8 s: two targets, two programs compiled
def test_pytree_and_numpyro_targets_report_their_own_names():
    funnel = infer.sample(0, targets.get("funnel"), infer.rwmh(), num_chains=2, num_samples=10)
    assert set(funnel.draws) == {"v", "x"}
    assert funnel.draws["v"].shape == (2, 10) and funnel.draws["x"].shape == (2, 10, 9)
    schools = infer.sample(
        0, targets.get("eight_schools"), infer.rwmh(), num_chains=2, num_samples=10
    )
    assert set(schools.draws) == {"mu", "tau", "theta_tilde", "theta"}
    assert schools.draws["theta"].shape == (2, 10, 8)
    assert np.all(schools.draws["tau"] > 0)  # constrained space


def test_one_starting_point_per_chain_is_used_as_given():
    """An MH move that proposes the current point is always accepted: the chain stays put."""
    stay = infer.mh(lambda key, x: x, None)
    starts = jnp.arange(6.0).reshape(2, 3)
    result = infer.sample(
        0, NORMAL_3D, stay, num_chains=2, num_samples=4, num_warmup=0, init=starts
    )
    np.testing.assert_array_equal(result.draws["x"][:, 0], starts)


def test_a_single_starting_point_is_jittered_per_chain():
    stay = infer.mh(lambda key, x: x, None)
    result = infer.sample(0, NORMAL_3D, stay, num_chains=4, num_samples=1, num_warmup=0)
    starts = result.draws["x"][:, 0]
    assert np.all(np.abs(starts) <= 1.0)
    assert len({tuple(row) for row in starts.tolist()}) == 4
    exact = infer.sample(
        0, NORMAL_3D, stay, num_chains=4, num_samples=1, num_warmup=0, init_jitter=0
    )
    np.testing.assert_array_equal(exact.draws["x"][:, 0], np.zeros((4, 3)))


def test_jitter_shrinks_to_stay_inside_a_bounded_support():
    result = infer.sample(0, targets.get("beta_2_5"), infer.rwmh(), num_chains=8, num_samples=20)
    assert np.all((result.draws["x"] > 0) & (result.draws["x"] < 1))


def test_thinning_keeps_every_kth_step_of_the_same_chain():
    sampler = infer.rwmh(step_size=0.8)
    full = infer.sample(0, NORMAL_3D, sampler, num_chains=2, num_samples=40, num_warmup=10)
    thinned = infer.sample(
        0, NORMAL_3D, sampler, num_chains=2, num_samples=20, num_warmup=10, thin=2
    )
    np.testing.assert_array_equal(thinned.draws["x"], full.draws["x"][:, 1::2])


def test_evaluation_counts():
    per_chain = 1 + SHORT["num_warmup"] + 40  # the start, warm-up and kept steps
    rwmh = infer.sample(0, NORMAL_3D, infer.rwmh(), num_samples=40, **SHORT)
    assert rwmh.num_logdensity_evals == SHORT["num_chains"] * per_chain
    assert rwmh.num_grad_evals == 0
    mala = infer.sample(0, NORMAL_3D, infer.mala(), num_samples=40, **SHORT)
    assert mala.num_grad_evals == SHORT["num_chains"] * per_chain
    nuts = infer.sample(0, NORMAL_3D, infer.nuts(), num_samples=40, **SHORT)
    assert nuts.num_grad_evals > int(nuts.stats["n_steps"].sum())


def test_timing_is_split_into_compile_warmup_and_sampling():
    sampler = infer.rwmh(step_size=0.55)  # options no other test uses: compiled here
    timings = []
    for num_warmup, num_samples in ((10, 50_000), (50_000, 10)):
        start = time.perf_counter()
        result = infer.sample(
            0, NORMAL_3D, sampler, num_chains=2, num_samples=num_samples, num_warmup=num_warmup
        )
        wall = time.perf_counter() - start
        timing = result.timing
        assert set(timing) == {"compile", "warmup", "sampling", "total"}
        # The parts add up: their sum within the total, the total within the wall clock.
        assert min(timing.values()) >= 0
        assert timing["compile"] + timing["warmup"] + timing["sampling"] <= timing["total"] <= wall
        timings.append(timing)
    long_sampling, long_warmup = timings
    assert long_sampling["compile"] > 0
    # Each phase's time goes to that phase: 50,000 steps take longer than 10.
    assert long_sampling["sampling"] > long_sampling["warmup"]
    assert long_warmup["warmup"] > long_warmup["sampling"]


def _bad_above_one(x, bad_value):
    return jnp.where(x[0] < 1.0, -0.5 * jnp.sum(x**2), bad_value)


# The bad value is the targets' data: both targets run on one compiled program per sampler.
NAN_ABOVE_ONE = infer.Target(_bad_above_one, init=jnp.zeros(2), data=np.float32(np.nan), name="nan")
INF_ABOVE_ONE = infer.Target(_bad_above_one, init=jnp.zeros(2), data=np.float32(np.inf), name="inf")


# NUTS: a NaN or inf along a trajectory is NumPyro's divergence, 6 s a case. In `make test`
# too: a NaN guard giving +inf in place of -inf (every NaN proposal accepted) passed the rest.
@pytest.mark.parametrize("name", sampler_names("rwmh", "mala", "nuts", "mh"))
@pytest.mark.parametrize("target", [NAN_ABOVE_ONE, INF_ABOVE_ONE], ids=["nan", "inf"])
def test_non_finite_log_density_at_a_proposal_is_a_rejection(name, target):
    sampler = SAMPLERS[name]
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always", infer.DiagnosticWarning)  # NUTS: divergences
        result = infer.sample(0, target, sampler, num_chains=2, num_samples=300, num_warmup=200)
    said = [str(w.message) for w in caught]
    assert np.all(np.isfinite(result.draws["x"])) and np.all(result.draws["x"][..., 0] < 1.0)
    assert np.all(np.isfinite(result.stats["lp"]))
    assert np.all(np.isfinite(result.stats["acceptance_rate"]))
    # never silent: counted per chain (warm-up included) and per draw, or a divergence
    if name == "nuts":
        assert result.num_divergent > 0
    else:
        counts = result.info["nonfinite_proposals"]
        assert len(counts) == 2 and all(count > 0 for count in counts)
        assert 0 < int(result.stats["nonfinite"].sum()) <= sum(counts)
        # and said when sampling, not only by infer.compare's flag
        told = f"{sum(counts)} of 1000 proposals had a NaN or +inf log density"
        assert any(told in message for message in said), said


def test_result_converts_to_arviz_with_run_facts():
    result = infer.sample(3, NORMAL_3D, infer.nuts(), num_samples=100, **SHORT)
    tree = result.to_arviz()
    assert set(tree.children) == {"posterior", "sample_stats"}
    assert tree["posterior"]["x"].shape == (SHORT["num_chains"], 100, 3)
    assert "diverging" in tree["sample_stats"]
    attrs = tree.attrs
    assert attrs["sampler"] == "nuts" and attrs["seed"] == "3"
    assert {"infer", "jax", "numpyro"} <= set(__import__("json").loads(attrs["versions"]))
    table = infer.summary(result)
    assert {"ess_bulk", "r_hat"} <= set(table.columns)


def test_chains_of_a_superchain_share_their_start():
    stuck = infer.rwmh(step_size=1e6)  # every proposal rejected: the draws are the starts
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", infer.DiagnosticWarning)
        result = infer.sample(
            0, NORMAL_3D, stuck, num_chains=6, num_samples=3, num_warmup=0, superchains=2
        )
    starts = result.draws["x"][:, 0]
    assert result.info["superchains"] == 2
    np.testing.assert_array_equal(starts[0], starts[1])
    np.testing.assert_array_equal(starts[1], starts[2])
    np.testing.assert_array_equal(starts[3], starts[5])
    assert not np.array_equal(starts[0], starts[3])
    with pytest.raises(ValueError, match="superchains=4 must divide num_chains=6"):
        infer.sample(0, NORMAL_3D, stuck, num_chains=6, superchains=4)
    # what used to be accepted and ignored: per-chain starts that differ in a superchain,
    # superchains of one chain each, and superchains for exact draws
    per_chain = np.repeat(np.arange(6.0)[:, None], 3, axis=1)
    with pytest.raises(ValueError, match="init gives chains 0 to 2 different ones"):
        infer.sample(0, NORMAL_3D, stuck, num_chains=6, superchains=2, init=per_chain)
    shared = np.repeat(per_chain[::3], 3, axis=0)  # one start per superchain, repeated
    again = infer.sample(
        0, NORMAL_3D, stuck, num_chains=6, superchains=2, init=shared, num_warmup=0
    )
    np.testing.assert_array_equal(again.draws["x"][:, 0], shared)
    with pytest.raises(ValueError, match="superchains of one chain each"):
        infer.sample(0, NORMAL_3D, stuck, num_chains=6, superchains=6)
    with pytest.raises(ValueError, match="superchains must be an integer >= 2; got 1. Nested"):
        infer.sample(0, NORMAL_3D, stuck, num_chains=6, superchains=1)
    exact = infer.rejection(targets.get("normal_10d").rejection_proposal)
    with pytest.raises(ValueError, match="so superchains does not apply"):
        infer.sample(0, targets.get("normal_10d"), exact, superchains=2)


@pytest.mark.thorough  # 6 s
def test_numbers_in_the_data_are_arguments_like_arrays():
    """``data={"m": 2.0}``: a Python number is data (it used to be refused), so a new value
    reuses the program and moves the draws; a string is still refused, naming the function
    that could close over it."""

    def shifted(x, data):
        return -0.5 * jnp.sum((x - data["m"]) ** 2)

    run = {"num_samples": 400, "num_warmup": 200, "num_chains": 4}
    for m in (2.0, -2.0):
        target = infer.Target(shifted, init=jnp.zeros(2), data={"m": m}, name="shifted")
        result = infer.sample(0, target, infer.nuts(), **run)
        assert result.info["cache_hit"] == (m < 0)
        ess = infer.summary(result)["ess_bulk"].min()
        error = np.abs(result.draws["x"].mean(axis=(0, 1)) - m)
        assert np.all(error < 4.0 / np.sqrt(ess))  # 4 MCSE of a unit-variance mean
    with pytest.raises(TypeError, match="holds a str. Close over other values in logdensity_fn"):
        infer.Target(shifted, init=jnp.zeros(2), data={"m": "2"})
    with pytest.raises(TypeError, match=r"a list of numbers \(\[2.0, 1.0\]\): pass np.asarray"):
        infer.Target(shifted, init=jnp.zeros(2), data={"m": [2.0, 1.0]})  # one array, meant
    infer.Target(shifted, init=jnp.zeros(2), data={"m": 2.0, "none": []})  # no leaves: fine


def test_a_targets_repr_shows_shapes_not_values():
    """``print(target)`` used to print every data value (here 5,000)."""
    target = infer.Target(
        lambda x, y: -0.5 * jnp.sum((y - x) ** 2), init=jnp.zeros(2), data=np.arange(5000.0)
    )
    text = repr(target)
    assert "data={.: (5000,) float64}" in text and "init={.: (2,) float32}" in text
    assert len(text) < 200 and "4999" not in text
    schools = repr(targets.get("eight_schools"))
    assert "['theta_tilde']: (8,) float32" in schools and "observed=[y]" in schools


SPREAD = 1.0  # a global the log density below reads
KEY = jax.random.key(3)  # a typed key among its globals: fingerprinted by its words


def _reads_a_global(x):
    assert KEY is not None  # a global read: it was a TypeError in the program key
    return -0.5 * jnp.sum((x / SPREAD) ** 2)


PRIOR = {"mu": np.zeros(2, np.float32)}  # a dict of settings the log density below reads
CONFIG = types.SimpleNamespace(shift=np.float32(0.0), unread=np.zeros(3))  # and an object


def _reads_a_dict_and_an_attribute(x):
    return -0.5 * jnp.sum((x - PRIOR["mu"] - CONFIG.shift) ** 2)


@pytest.mark.thorough  # an edge case of the program cache, 4 s
def test_a_changed_entry_of_a_global_dict_or_attribute_of_an_object_gets_a_new_program(
    monkeypatch,
):
    """The program traced with ``PRIOR["mu"] = 0`` was reused after it became 5 (the
    draws' mean stayed 0), and the same for ``CONFIG.shift``: only globals that were
    themselves numbers or arrays were fingerprinted. An attribute the code does not name
    (``CONFIG.unread``) does not matter."""
    target = infer.Target(_reads_a_dict_and_an_attribute, init=jnp.zeros(2))
    run = dict(num_chains=2, num_samples=500, num_warmup=200)
    first = infer.sample(0, target, infer.rwmh(), **run)
    monkeypatch.setattr(CONFIG, "unread", np.ones(3))
    assert infer.sample(0, target, infer.rwmh(), **run).info["cache_hit"]
    monkeypatch.setitem(PRIOR, "mu", np.full(2, 5.0, np.float32))
    moved = infer.sample(0, target, infer.rwmh(), **run)
    monkeypatch.setattr(CONFIG, "shift", np.float32(-10.0))
    back = infer.sample(0, target, infer.rwmh(), **run)
    assert not moved.info["cache_hit"] and not back.info["cache_hit"]
    means = [float(np.mean(r.draws["x"])) for r in (first, moved, back)]
    assert abs(means[0]) < 1 and abs(means[1] - 5) < 1 and abs(means[2] + 5) < 1, means


@pytest.mark.thorough  # an edge case, 2.4 s
def test_a_log_density_reading_a_changed_global_gets_a_program_with_the_new_value(monkeypatch):
    """The cached program kept the first value of SPREAD: the draws' sd stayed 1 after it
    became 5. Equal values still find the program."""
    target = infer.Target(_reads_a_global, init=jnp.zeros(2))
    run = dict(num_chains=4, num_samples=1500, num_warmup=300)
    narrow = infer.sample(0, target, infer.rwmh(), **run)
    assert infer.sample(1, target, infer.rwmh(), **run).info["cache_hit"]
    monkeypatch.setattr(sys.modules[__name__], "SPREAD", 5.0)
    wide = infer.sample(0, target, infer.rwmh(), **run)
    assert not wide.info["cache_hit"]
    assert np.std(narrow.draws["x"]) < 1.5 and np.std(wide.draws["x"]) > 3.5
