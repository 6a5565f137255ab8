"""The cache every compiled program of the library goes through (``infer.placement``):
least recently used first out, and one build per program however many threads ask."""

import functools
import os
import subprocess
import sys
import threading
import time

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from infer import chain_stats
from infer.placement import PROGRAMS, ProgramCache


def test_threads_asking_for_the_same_missing_program_wait_for_one_build():
    cache = ProgramCache()
    builds = []

    def build():
        builds.append(threading.get_ident())
        time.sleep(0.2)  # long enough for every thread to arrive while it builds
        return object()

    start = threading.Barrier(4)
    got = [None] * 4

    def ask(i):
        start.wait()
        got[i] = cache.get("program", build)

    threads = [threading.Thread(target=ask, args=(i,)) for i in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert len(builds) == 1
    assert len({id(program) for program, _ in got}) == 1
    assert sorted(seconds > 0 for _, seconds in got) == [False, False, False, True]


def test_a_failed_build_lets_the_next_caller_build_again():
    cache = ProgramCache()

    def fail():
        raise RuntimeError("no")

    with pytest.raises(RuntimeError, match="no"):
        cache.get("program", fail)
    assert "program" not in cache
    program, _ = cache.get("program", object)
    assert cache.peek("program") is program


def test_the_least_recently_used_program_goes_first():
    cache = ProgramCache(size=2)
    cache.get("a", object)
    cache.get("b", object)
    cache.get("a", object)  # a is now the most recent
    cache.get("c", object)
    assert cache.keys() == ["a", "c"]


@pytest.mark.thorough  # a compile guard, 5 s; test_chain_stats has two
def test_chain_stats_programs_go_through_the_cache_once_per_shape():
    # PROGRAMS is shared with every test this worker ran before: it may be full, so a new
    # program can push an old one out. Count what each call adds, not what the cache holds.
    def chain_stats_keys():
        return {key for key in PROGRAMS.keys() if key[0] == "chain_stats"}

    draws = np.random.default_rng(0).normal(size=(4, 50, 3))
    chain_stats.summary_stats(draws)
    held = chain_stats_keys()
    chain_stats.summary_stats(draws + 1.0)  # same shapes: no new program
    assert chain_stats_keys() - held == set()
    chain_stats.summary_stats(draws[:, :40])  # another length of few draws: shared, padded
    assert chain_stats_keys() - held == set()
    chain_stats.summary_stats(jax.numpy.asarray(draws[:, :40]))  # a JAX array: its own shape
    assert len(chain_stats_keys() - held) == 1


def test_data_keys_programs_by_what_the_device_holds():
    # NumPy float64 data with 64-bit floats off are float32 on the device: the same program
    # as float32 data (they compiled a second one).
    import jax.numpy as jnp

    import infer

    def logdensity_fn(theta, data):
        values, scale = data
        return -0.5 * jnp.sum((values - theta) ** 2) / scale - 0.5 * theta**2

    values = np.random.default_rng(0).normal(size=30).astype(np.float32)

    def run(data):
        target = infer.Target(logdensity_fn, init=0.0, data=data)
        return infer.sample(0, target, infer.rwmh(), num_chains=2, num_samples=20, num_warmup=20)

    first = run((values, np.float32(1.0)))
    again = run((values.astype(np.float64), np.float64(1.0)))
    assert again.timing["compile"] == 0.0
    np.testing.assert_array_equal(again.draws["x"], first.draws["x"])


def test_a_runs_compile_time_counts_every_program_it_built(monkeypatch):
    # the start program, compiled to start the chains, was left out of timing["compile"]
    import jax.numpy as jnp

    import infer
    from infer import placement

    built = []
    get = placement.PROGRAMS.get

    def recording(key, build):
        program, seconds = get(key, build)
        built.append(seconds)
        return program, seconds

    monkeypatch.setattr(placement.PROGRAMS, "get", recording)
    target = infer.Target(lambda x: -0.5 * jnp.sum(x**2) - 1e-3 * jnp.sum(x**4), init=jnp.ones(3))
    result = infer.sample(0, target, infer.rwmh(), num_chains=2, num_samples=20, num_warmup=20)
    assert sum(built) > 0.0  # a log density no earlier test made: compiled here
    assert result.timing["compile"] >= sum(built)


@pytest.mark.slow  # a Python of its own, about 5 s: make test, not test-fast
def test_importing_infer_compiles_nothing():
    """``import infer`` ran a program (a PRNG key made to read its type: 2 compiles, about
    80 ms here); an int seed made a key on the host (ADVI, AIS and SBC do) ran that program
    too (jax.random.key), where it now takes the key's data."""
    key = "jax.random.wrap_key_data(np.array([0, 5], np.uint32))"  # jax.random.key runs one
    seed = "infer.keys.as_jax_key(infer.keys.as_key(5)[0])"
    script = f"import infer; {seed}; infer.keys.as_key({key})"
    env = {**os.environ, "JAX_LOG_COMPILES": "1", "JAX_PLATFORMS": "cpu"}
    run = subprocess.run(
        [sys.executable, "-c", f"import jax, numpy as np; {script}"],
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert run.returncode == 0, run.stderr[-3000:]
    assert "Finished XLA compilation" not in run.stderr, run.stderr[-3000:]


def test_a_second_run_takes_its_shapes_from_the_cache(monkeypatch):
    # each run traced the log density and the reported names on the host (jax.eval_shape,
    # about 2 ms of a call of a few ms); the shapes are kept as the programs are
    import jax.numpy as jnp

    import infer
    from infer import placement

    traced = []
    get = placement.SHAPES.get

    def recording(key, build):
        def counted():
            traced.append(key)
            return build()

        return get(key, counted)

    monkeypatch.setattr(placement.SHAPES, "get", recording)
    target = infer.Target(lambda x: -0.5 * jnp.sum(x**2) - 2e-3 * jnp.sum(x**4), init=jnp.ones(3))
    infer.sample(0, target, infer.rwmh(), num_chains=2, num_samples=20, num_warmup=20)
    assert traced  # a log density no earlier test made: traced here
    traced.clear()
    infer.sample(1, target, infer.rwmh(), num_chains=2, num_samples=20, num_warmup=20)
    assert traced == []


REPORTED = 2  # how many coordinates constrain_fn reports: a global it reads


def test_reported_shapes_follow_a_global_the_constrain_fn_reads():
    import jax.numpy as jnp

    import infer

    global REPORTED
    target = infer.Target(
        lambda x: -0.5 * jnp.sum(x**2),
        init=jnp.zeros(4),
        constrain_fn=lambda x: {"head": x[:REPORTED]},
    )
    run = dict(num_chains=2, num_samples=10, num_warmup=10)
    assert infer.sample(0, target, infer.rwmh(), **run).draws["head"].shape == (2, 10, 2)
    REPORTED = 3
    try:
        assert infer.sample(0, target, infer.rwmh(), **run).draws["head"].shape == (2, 10, 3)
    finally:
        REPORTED = 2


def test_one_run_reads_a_global_array_of_its_log_density_once(monkeypatch):
    # the fingerprint of the values a log density reads from outside (the CRC of a global
    # array: 50 ms for 40 MB) was taken for every program key of the call
    import jax.numpy as jnp

    import infer
    from infer import outside_values

    shift = np.linspace(0.0, 1.0, 3)

    def logdensity(x):
        return -0.5 * jnp.sum((x - shift) ** 2)

    reads = []
    read = outside_values._read

    def counted(fn):
        reads.append(fn)
        return read(fn)

    monkeypatch.setattr(outside_values, "_read", counted)
    target = infer.Target(logdensity, init=jnp.zeros(3))
    infer.sample(0, target, infer.rwmh(), num_chains=2, num_samples=20, num_warmup=20)
    assert reads.count(logdensity) == 1
    reads.clear()
    infer.sample(1, target, infer.rwmh(), num_chains=2, num_samples=20, num_warmup=20)
    assert reads.count(logdensity) == 1  # read again: a global may have changed in between
    # a JAX array never changes: its bytes are read once while it lives, not in every call
    on_device = jnp.linspace(0.0, 1.0, 3)
    target = infer.Target(lambda x: -0.5 * jnp.sum((x - on_device) ** 2), init=jnp.zeros(3))
    checksums = []
    checksum = outside_values.array_crc
    monkeypatch.setattr(
        outside_values, "array_crc", lambda leaf: checksums.append(leaf) or checksum(leaf)
    )
    for seed in (0, 1):
        infer.sample(seed, target, infer.rwmh(), num_chains=2, num_samples=20, num_warmup=20)
    assert sum(leaf is on_device for leaf in checksums) == 1


def _pointwise(position, data):
    return -0.5 * (data - position["mu"]) ** 2


def _with_pointwise(position, data):
    return jnp.sum(_pointwise(position, data)) - 0.5 * position["mu"] ** 2


def test_the_log_likelihoods_names_follow_observed_data_with_the_same_functions():
    # their shapes, kept for the functions and shapes, kept the first target's name: the
    # second run failed with KeyError 'y', or refused a valid observed_data
    import infer

    y = np.linspace(-1.0, 1.0, 6, dtype=np.float32)
    init = {"mu": np.zeros((), np.float32)}
    run = dict(num_chains=2, num_samples=10, num_warmup=10)
    named = dict(init=init, data=y, loglik_fn=_pointwise)
    for observed in ({"y": y}, None, {"y": y}):
        target = infer.Target(_with_pointwise, **named, observed_data=observed)
        result = infer.sample(0, target, infer.rwmh(), **run)
        assert list(result.groups["log_likelihood"]) == (["y"] if observed else ["obs"])


LOGLIK_SCALE = 1.0  # a global the log likelihood reads: traced into its program


def _scaled_pointwise(position, data):
    return -0.5 * ((data - position["mu"]) / LOGLIK_SCALE) ** 2


def test_the_log_likelihood_follows_a_global_its_function_reads():
    # its program was keyed by the function's identity alone: a changed global kept the
    # values of the first
    import infer

    global LOGLIK_SCALE
    y = np.linspace(-1.0, 1.0, 6, dtype=np.float32)
    target = infer.Target(
        _with_pointwise, init={"mu": np.zeros((), np.float32)}, data=y, loglik_fn=_scaled_pointwise
    )
    run = dict(num_chains=2, num_samples=10, num_warmup=10)
    first = infer.sample(0, target, infer.rwmh(), **run).groups["log_likelihood"]["obs"]
    LOGLIK_SCALE = 2.0
    try:
        again = infer.sample(0, target, infer.rwmh(), **run).groups["log_likelihood"]["obs"]
    finally:
        LOGLIK_SCALE = 1.0
    np.testing.assert_allclose(again, first / 4.0, rtol=1e-5)  # same draws, a quarter of it


def _centred(x, data):
    return -0.5 * jnp.sum((x - data) ** 2)


def _first_centred(x, data):
    return _centred(x, data[0])


CENTER = np.zeros(2)  # float64, as np.zeros gives
SHIFT = 0.0


def _about_center(x):
    return -0.5 * jnp.sum((x - CENTER) ** 2)


def _location(y):
    import numpyro
    import numpyro.distributions as dist

    mu = numpyro.sample("mu", dist.Normal(0.0, 10.0))
    with numpyro.plate("n", y.shape[0]):
        numpyro.sample("y", dist.Normal(mu, 1.0), obs=y)


SCALE = np.array(1.0)  # a 0-d float64 array


def _cell():
    def logdensity(x):
        return -0.5 * jnp.sum((x - CENTER) ** 2) * SCALE

    return logdensity


def test_a_global_that_changes_beside_an_unchanged_64_bit_array_reuses_its_programs():
    """Refilled 64-bit arrays drop every program; one merely read beside a changed scalar
    must not (each call compiled again, every target's programs with it)."""
    import infer

    global SHIFT
    target = infer.Target(_indexed, init=jnp.zeros(3))
    hits = []
    try:
        for shift in (1.0, 2.0, 1.0, 2.0):
            SHIFT = shift
            hits.append(infer.sample(0, target, infer.rwmh(), num_samples=5).info["cache_hit"])
    finally:
        SHIFT = 0.0
    assert hits == [False, False, True, True]


INDEX = np.arange(3)  # int64, never changed


def _indexed(x):
    return -0.5 * jnp.sum((x[INDEX] - SHIFT) ** 2)


def _rows_shifted(x):  # reads SHIFT only inside its lambda
    return jnp.sum(jax.vmap(lambda row: -0.5 * jnp.sum((x - row - SHIFT) ** 2))(jnp.zeros((3, 2))))


def _sampled_after_center_is_refilled(target, run) -> None:
    """Refill the global ``CENTER`` in place, sample ``target`` (which reads it), and check
    that the run's lp is the new density's."""
    import infer

    CENTER[:] = [5.0, -3.0]
    try:
        result = infer.sample(0, target, infer.rwmh(), **run)
    finally:
        CENTER[:] = 0.0
    _recorded_lp_matches(result, lambda x: -0.5 * np.sum((x - [5.0, -3.0]) ** 2))


def _recorded_lp_matches(result, logdensity) -> None:
    draws = np.asarray(result.draws["x"], np.float64)
    expected = np.apply_along_axis(lambda x: float(logdensity(x)), -1, draws)
    np.testing.assert_allclose(result.stats["lp"], expected, rtol=1e-5, atol=1e-5)


def test_float64_numpy_values_refilled_in_place_are_read_anew():
    """JAX (0.12) keeps the float32 copy it makes of a float64 NumPy array traced as a
    constant and hands it back for that array later, whatever was written into it: data
    refilled in place and a new target made of them, or a global array refilled, were
    sampled with the old values (the lp recorded was the old density's)."""
    import infer

    global CENTER, SHIFT
    run = dict(num_chains=2, num_samples=20, num_warmup=10)
    y = np.zeros(2)
    infer.sample(0, infer.Target(_centred, init=jnp.zeros(2), data=y), infer.rwmh(), **run)
    y[:] = [5.0, -3.0]
    refilled = infer.Target(_centred, init=jnp.zeros(2), data=y)
    assert float(refilled.logdensity(jnp.array([5.0, -3.0]))) == 0.0  # was -17
    y[:] = 0.0  # the target keeps the values it was made with
    result = infer.sample(0, refilled, infer.rwmh(), **run)
    _recorded_lp_matches(result, lambda x: -0.5 * np.sum((x - [5.0, -3.0]) ** 2))
    observations = np.zeros(4)  # a NumPyro model's arguments alike
    infer.sample(0, infer.Target.from_numpyro(_location, observations), infer.rwmh(), **run)
    observations[:] = 5.0
    model = infer.Target.from_numpyro(_location, observations)
    at = [float(model.logdensity({"mu": jnp.asarray(mu, jnp.float32)})) for mu in (0.0, 5.0)]
    assert at[1] > at[0] + 40.0  # the old values put mu = 0 ahead
    target = infer.Target(_about_center, init=jnp.zeros(2))
    infer.sample(0, target, infer.rwmh(), **run)
    _sampled_after_center_is_refilled(target, run)
    # a cell run again: a new function reading the refilled array, and a 0-d one refilled
    infer.sample(0, infer.Target(_cell(), init=jnp.zeros(2)), infer.rwmh(), **run)
    CENTER[:] = [1.0, 2.0]
    SCALE[...] = 2.0
    try:
        result = infer.sample(0, infer.Target(_cell(), init=jnp.zeros(2)), infer.rwmh(), **run)
    finally:
        CENTER[:], SCALE[...] = 0.0, 1.0
    _recorded_lp_matches(result, lambda x: -0.5 * np.sum((x - [1.0, 2.0]) ** 2) * 2.0)
    # an array bound by functools.partial and refilled: its values count
    bound = np.zeros(2)
    target = infer.Target(functools.partial(_centred, data=bound), init=jnp.zeros(2))
    infer.sample(0, target, infer.rwmh(), **run)
    bound[:] = [2.0, 1.0]
    result = infer.sample(0, target, infer.rwmh(), **run)
    _recorded_lp_matches(result, lambda x: -0.5 * np.sum((x - [2.0, 1.0]) ** 2))
    # inside a tuple too (float32: no stale copy; the program's key kept it by identity)
    bound32 = np.zeros(2, np.float32)
    target = infer.Target(functools.partial(_first_centred, data=(bound32,)), init=jnp.zeros(2))
    infer.sample(0, target, infer.rwmh(), **run)
    bound32[:] = [-1.0, 3.0]
    result = infer.sample(0, target, infer.rwmh(), **run)
    _recorded_lp_matches(result, lambda x: -0.5 * np.sum((x - [-1.0, 3.0]) ** 2))
    # the target's copy is its own: renaming it copies nothing more, and a masked array,
    # whose mask JAX drops, is refused by name
    assert refilled.with_options(name="again").data is refilled.data
    with pytest.raises(ValueError, match="read-only"):  # a copy of another target's data,
        refilled.data[:] = 0.0  # which stays as it was made
    with pytest.raises(TypeError, match="masked array, which JAX takes no mask of"):
        infer.Target(_centred, init=jnp.zeros(2), data=np.ma.masked_equal([1.0, -999.0], -999.0))
    # a global read only inside a lambda of the log density: kept out of its key
    target = infer.Target(_rows_shifted, init=jnp.zeros(2))
    infer.sample(0, target, infer.rwmh(), **run)
    SHIFT = 5.0
    try:
        result = infer.sample(0, target, infer.rwmh(), **run)
    finally:
        SHIFT = 0.0
    _recorded_lp_matches(result, lambda x: 3 * -0.5 * np.sum((x - 5.0) ** 2))


def test_a_refilled_global_is_told_after_thousands_of_other_arrays_were_read():
    """The arrays read were remembered in a dict emptied whole at 4,096 entries: a global
    refilled after a sweep over fresh arrays was sampled with JAX's old copy."""
    import infer
    from infer.outside_values import function_key

    run = dict(num_chains=2, num_samples=20, num_warmup=10)
    target = infer.Target(_about_center, init=jnp.zeros(2))
    infer.sample(0, target, infer.rwmh(), **run)
    swept = [np.zeros(2) for _ in range(5000)]  # a sweep's data, all alive at once
    for data in swept:
        function_key(functools.partial(_centred, data=data))
    del swept  # their entries go with them
    _sampled_after_center_is_refilled(target, run)


@pytest.mark.parametrize("first_x64", [False, True])
def test_a_float64_global_is_read_after_64_bit_floats_are_switched(first_x64):
    """A log density reading a float64 NumPy global, sampled with 64-bit floats off and then
    on (or on, then off), failed inside XLA ("Cannot lower jaxpr"): JAX handed back the
    copy it made in the other mode."""
    import infer

    run = dict(num_chains=2, num_samples=20, num_warmup=10)
    CENTER[:] = [1.0, 2.0]
    try:
        for x64 in (first_x64, not first_x64, first_x64):
            with jax.enable_x64(x64):
                result = infer.sample(
                    0, infer.Target(_about_center, init=jnp.zeros(2)), infer.rwmh(), **run
                )
            assert result.draws["x"].dtype == (np.float64 if x64 else np.float32)
            _recorded_lp_matches(result, lambda x: -0.5 * np.sum((x - [1.0, 2.0]) ** 2))
    finally:
        CENTER[:] = 0.0


def _linked(x, settings):
    return -0.5 * jnp.sum((settings["link"](x) - settings["centre"]) ** 2)


def test_partials_binding_dicts_that_differ_in_a_function_get_programs_of_their_own():
    """A bound dict was keyed by the values it could read, leaving its function out: a
    second target whose settings differed in their link function reused the first's
    program (its draws and lp were the first's)."""
    import infer

    run = dict(num_chains=2, num_samples=20, num_warmup=10)
    for link, inverse in ((jnp.exp, np.exp), (jnp.sinh, np.sinh)):
        settings = {"centre": 1.0, "link": link}
        target = infer.Target(functools.partial(_linked, settings=settings), init=jnp.zeros(2))
        result = infer.sample(0, target, infer.rwmh(), **run)
        _recorded_lp_matches(result, lambda x, f=inverse: -0.5 * np.sum((f(x) - 1.0) ** 2))


def _normal_prior(position):
    return -0.5 * jnp.sum(position**2)


class _Traces:  # a class: its attributes are no value a function's key reads
    count = 0


def _pointwise_traced(position, xy, unused):
    _Traces.count += 1
    x, y = xy
    return -0.5 * (y - x * position[0]) ** 2


def test_a_partial_binding_a_fresh_tuple_of_data_each_call_is_traced_once():
    """Keyed by identity too (the fix for a dict holding a function), a tuple of arrays made
    anew in each call traced the log likelihood again in every call."""
    import infer

    x = np.linspace(0.0, 1.0, 5, dtype=np.float32)
    counts = []
    for seed in range(3):
        loglik = functools.partial(_pointwise_traced, xy=(x, 2 * x), unused=(None, np.float32))
        target = infer.Target(_normal_prior, init=jnp.zeros(1), loglik_fn=loglik)
        infer.sample(seed, target, infer.rwmh(), num_chains=2, num_samples=20, num_warmup=10)
        counts.append(_Traces.count)
    assert counts[0] > 0 and counts[1] == counts[2] == counts[0]
