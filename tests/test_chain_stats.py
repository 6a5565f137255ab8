"""``infer.chain_stats`` against ``arviz_stats`` (the reference behind ``infer.summary``) on a
test set of random, autocorrelated, heavy-tailed, constant, NaN-containing, tied and
non-mixing draws, and nested R-hat against a direct numpy implementation of the paper."""

import collections
import json
import os
import subprocess
import sys
import textwrap
import warnings

import arviz_base
import arviz_stats
import jax
import jax.numpy as jnp
import numpy as np
import pytest
from arviz_stats.base import array_stats

from infer import chain_stats

TWO_DEVICES = "--xla_force_host_platform_device_count=2"  # added to the flags in effect

pytestmark = pytest.mark.slow  # a module `make test-fast` leaves out

RTOL = 1e-5
NUM_CHAINS = 4


def make_draws(num_draws, dtype=np.float64, seed=0):
    """The test set: name -> (num_chains, num_draws[, dim]) draws."""
    rng = np.random.default_rng(seed)
    shape = (NUM_CHAINS, num_draws)
    noise = rng.normal(size=shape)
    ar1 = np.empty(shape)
    ar1[:, 0] = noise[:, 0] / np.sqrt(1 - 0.9**2)
    for t in range(1, num_draws):
        ar1[:, t] = 0.9 * ar1[:, t - 1] + noise[:, t]
    with_nan = rng.normal(size=shape)
    with_nan[1, 17] = np.nan
    draws = {
        "iid": rng.normal(size=shape + (3,)),  # trailing parameter axis
        "ar1": ar1,
        "student_t2": rng.standard_t(2, size=shape),
        "constant": np.full(shape, 2.5),  # exactly representable: numpy's mean of it is exact
        "with_nan": with_nan,
        "ties": np.round(2 * rng.normal(size=shape)),
        "shifted_chains": rng.normal(size=shape) + 0.5 * np.arange(NUM_CHAINS)[:, None],
        # one in ten draws is 1, the rest 0: the 95% quantile is 1, so every indicator of the
        # upper tail is 1 (a constant series, whose ESS is its size) while the draws vary
        "mostly_zero": (np.arange(NUM_CHAINS * num_draws) % 10 == 3).reshape(shape) * 1.0,
    }
    return {name: value.astype(dtype) for name, value in draws.items()}


def arviz_reference(draws):
    """statistic -> name -> values, from arviz_stats on a DataTree of the same draws."""
    tree = arviz_base.from_dict({"posterior": draws})
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)  # 0/0 of the constant parameter
        results = {
            "rhat": arviz_stats.rhat(tree),
            "ess_bulk": arviz_stats.ess(tree, method="bulk"),
            "ess_tail": arviz_stats.ess(tree, method="tail", prob=(0.05, 0.95)),
            "mcse_mean": arviz_stats.mcse(tree, method="mean"),
            "mcse_sd": arviz_stats.mcse(tree, method="sd"),
        }
    return {stat: {name: tree[name].values for name in draws} for stat, tree in results.items()}


def assert_matches(mine, reference, rtol=RTOL, what=""):
    """NaN exactly where the reference is NaN, relative difference <= rtol elsewhere."""
    mine = np.asarray(mine, dtype=float)
    reference = np.asarray(reference, dtype=float)
    assert mine.shape == reference.shape, what
    np.testing.assert_array_equal(np.isnan(mine), np.isnan(reference), err_msg=what)
    finite = ~np.isnan(reference)
    np.testing.assert_allclose(mine[finite], reference[finite], rtol=rtol, atol=0, err_msg=what)


@pytest.mark.parametrize("dtype", [np.float64, np.float32])
@pytest.mark.parametrize("num_draws", [1000, 999])
def test_summary_stats_match_arviz(num_draws, dtype):
    draws = make_draws(num_draws, dtype)
    reference = arviz_reference(draws)
    mine = chain_stats.summary_stats(draws)
    assert set(mine) == set(draws)
    for name in draws:
        assert set(mine[name]) == set(chain_stats.STATISTICS)
        for stat in chain_stats.STATISTICS:
            assert_matches(mine[name][stat], reference[stat][name], what=f"{stat} of {name}")


def test_constant_and_nan_parameters_are_returned_as_arviz_gives_them():
    draws = make_draws(1000)
    mine = chain_stats.summary_stats(draws)
    split_size = NUM_CHAINS * 1000
    constant = {stat: float(value) for stat, value in mine["constant"].items()}
    assert np.isnan(constant["rhat"]) and np.isnan(constant["mcse_sd"])
    assert constant["ess_bulk"] == constant["ess_tail"] == split_size
    assert constant["mcse_mean"] == 0.0
    assert all(np.isnan(float(value)) for value in mine["with_nan"].values())
    assert np.all(np.asarray(mine["shifted_chains"]["rhat"]) > 1.1)


@pytest.mark.thorough  # each statistic alone; the fused program is checked
def test_single_statistics_match_the_fused_program():
    draws = make_draws(500)
    fused = chain_stats.summary_stats(draws)
    singles = {
        "rhat": chain_stats.rhat(draws),
        "ess_bulk": chain_stats.ess(draws, method="bulk"),
        "ess_tail": chain_stats.ess(draws, method="tail", prob=(0.05, 0.95)),
        "mcse_mean": chain_stats.mcse(draws, method="mean"),
        "mcse_sd": chain_stats.mcse(draws, method="sd"),
    }
    for stat, by_name in singles.items():
        for name, value in by_name.items():
            assert_matches(value, fused[name][stat], rtol=1e-12, what=f"{stat} of {name}")
    one = chain_stats.ess(draws["iid"], method="tail")
    assert one.shape == (3,)
    assert_matches(one, fused["iid"]["ess_tail"], rtol=1e-12)


def test_float32_computation_matches_arviz():
    """The float32 program (used where the backend has no float64) keeps to the same tolerance."""
    draws = make_draws(1000, np.float32)
    reference = arviz_reference(draws)
    mine = chain_stats.summary_stats(draws, dtype="float32")
    for name in draws:
        for stat in chain_stats.STATISTICS:
            assert_matches(mine[name][stat], reference[stat][name], what=f"{stat} of {name}")


@pytest.mark.parametrize("num_chains", [1, 3])
@pytest.mark.parametrize("num_draws", [3, 4, 5, 6, 7, 10, 33])
def test_short_chains_match_arviz(num_chains, num_draws):
    """Geyer's truncation at its shortest lengths, one chain, and too few draws (NaN)."""
    rng = np.random.default_rng(num_draws)
    x = np.cumsum(rng.normal(size=(num_chains, num_draws, 4)), axis=1)
    x[..., 3] = np.round(x[..., 3])
    mine = chain_stats.summary_stats(x)
    params_first = np.moveaxis(x, 2, 0)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)
        reference = {
            "rhat": array_stats.rhat(params_first),
            "ess_bulk": array_stats.ess(params_first, method="bulk"),
            "ess_tail": array_stats.ess(params_first, method="tail", prob=(0.05, 0.95)),
            "mcse_mean": array_stats.mcse(params_first, method="mean"),
            "mcse_sd": array_stats.mcse(params_first, method="sd"),
        }
    for stat, value in reference.items():
        assert_matches(mine[stat], value, what=stat)


@pytest.mark.thorough  # each subset compiles a program, 6 s; until= asks for one
def test_a_chosen_subset_of_statistics_is_what_comes_back():
    draws = make_draws(200)
    full = chain_stats.summary_stats(draws)
    some = chain_stats.summary_stats(draws, statistics=("ess_tail", "rhat"))
    for name in draws:
        assert set(some[name]) == {"ess_tail", "rhat"}
        for stat in some[name]:
            assert_matches(some[name][stat], full[name][stat], rtol=1e-12, what=stat)
    with pytest.raises(ValueError, match="statistics must name"):
        chain_stats.summary_stats(draws, statistics=("ess_bulk", "mcse_median"))
    with pytest.raises(ValueError, match="statistics must name"):
        chain_stats.summary_stats(draws, statistics=())


@pytest.mark.thorough  # a copy avoided; the values are checked
def test_jax_array_input_gives_the_same_results_without_a_host_copy():
    draws = make_draws(500, np.float32)["iid"]
    on_device = jnp.asarray(draws)
    with jax.transfer_guard_device_to_host("disallow"):
        from_device = chain_stats.summary_stats(on_device)
    from_host = chain_stats.summary_stats(draws)
    for stat in chain_stats.STATISTICS:
        assert isinstance(from_device[stat], jax.Array)
        np.testing.assert_array_equal(np.asarray(from_device[stat]), np.asarray(from_host[stat]))


# ----------------------------------------------------------------------------------------------
# Nested R-hat


def nested_rhat_of_the_paper(draws, superchain_ids):
    """Margossian et al. (2024), eq. 4-8, on draws (num_chains, num_draws), written directly:
    R_nu = sqrt(1 + B_nu / W_nu), B_nu the variance of the superchain means, W_nu the mean over
    superchains of (the variance of their chain means + their mean within-chain variance),
    every variance with ddof 1 (the between-chain term is 0 for one chain per superchain)."""
    superchain_ids = np.asarray(superchain_ids)
    superchains = np.unique(superchain_ids)
    superchain_means, within_superchain = [], []
    for k in superchains:
        chains = draws[superchain_ids == k]
        chain_means = chains.mean(axis=1)
        superchain_means.append(chain_means.mean())
        between_chains = chain_means.var(ddof=1) if len(chains) > 1 else 0.0
        within_chains = chains.var(axis=1, ddof=1).mean()
        within_superchain.append(between_chains + within_chains)
    between = np.var(superchain_means, ddof=1)
    return np.sqrt(1 + between / np.mean(within_superchain))


NESTED_CASES = [
    (8, 50, (0, 0, 1, 1, 2, 2, 3, 3)),
    (8, 51, (0, 1, 0, 1, 0, 1, 0, 1)),  # interleaved labels, odd chain length
    (4, 20, (0, 1, 2, 3)),  # one chain per superchain
    (16, 10, (0,) * 4 + (1,) * 4 + (2,) * 4 + (3,) * 4),  # many short chains
]


@pytest.mark.parametrize("num_chains,num_draws,superchain_ids", NESTED_CASES)
def test_nested_rhat_matches_the_paper_and_arviz(num_chains, num_draws, superchain_ids):
    rng = np.random.default_rng(num_chains + num_draws)
    superchain_offset = 0.3 * rng.normal(size=(max(superchain_ids) + 1, 1, 3))
    x = rng.normal(size=(num_chains, num_draws, 3)) + superchain_offset[list(superchain_ids)]
    x[..., 2] = np.round(x[..., 2])  # ties
    paper = np.array([nested_rhat_of_the_paper(x[..., p], superchain_ids) for p in range(3)])
    identity = chain_stats.rhat_nested(x, superchain_ids, method="identity")
    assert_matches(identity, paper, what="the paper's formula on the raw draws")
    # arviz_stats.rhat_nested by default ("rank") splits the chains (each half-chain stays in
    # its superchain), rank-normalises them and takes the larger of the bulk and folded values;
    # its method="identity" is the paper's formula, as above.
    params_first = np.moveaxis(x, 2, 0)
    ids = np.asarray(superchain_ids)
    for method in ("rank", "split", "identity"):
        reference = array_stats.rhat_nested(params_first, superchain_ids=ids, method=method)
        mine = chain_stats.rhat_nested(x, superchain_ids, method=method)
        assert_matches(mine, reference, what=method)
    assert_matches(array_stats.rhat_nested(params_first, ids, method="identity"), paper)


def test_nested_rhat_sees_superchains_that_disagree():
    rng = np.random.default_rng(3)
    ids = (0, 0, 0, 0, 1, 1, 1, 1)
    agree = rng.normal(size=(8, 20))
    disagree = agree + 3.0 * np.asarray(ids)[:, None]
    assert float(chain_stats.rhat_nested(agree, ids)) < 1.1
    assert float(chain_stats.rhat_nested(disagree, ids)) > 1.5


# ----------------------------------------------------------------------------------------------
# Compilation, errors, sharding


@pytest.fixture
def compile_counter():
    from test_driver import count_compilations

    with count_compilations() as counter:
        yield counter


def test_a_second_call_with_the_same_shapes_compiles_nothing(compile_counter):
    first = make_draws(200, seed=1)
    second = make_draws(200, seed=2)
    chain_stats.summary_stats(first)
    chain_stats.rhat_nested(first["ar1"], (0, 0, 1, 1))
    compiled = compile_counter["n"]
    assert compiled >= 1
    jax.block_until_ready(chain_stats.summary_stats(second))
    jax.block_until_ready(chain_stats.rhat_nested(second["ar1"], (0, 0, 1, 1)))
    assert compile_counter["n"] == compiled


def test_few_draws_of_other_lengths_and_parameters_share_one_program(compile_counter):
    """Each shape compiled its own program (about a second each, where computing takes
    milliseconds): now few draws are stacked and padded into shared shapes."""
    rng = np.random.default_rng(7)
    shapes = [{"a": (4, 600), "b": (4, 600, 2)}, {"x": (4, 900, 3)}, {"y": (4, 1000, 2, 2)}]
    runs = [{k: rng.standard_normal(shape) for k, shape in run.items()} for run in shapes]
    chain_stats.summary_stats(runs[0])  # the first compiles: 4 chains, 1024 draws, 4 wide
    compiled = compile_counter["n"]
    for draws in runs[1:]:
        mine = chain_stats.summary_stats(draws)
        reference = arviz_reference(draws)
        for name in draws:
            for stat in chain_stats.STATISTICS:
                assert_matches(mine[name][stat], reference[stat][name], what=f"{stat} of {name}")
    assert compile_counter["n"] == compiled


def test_the_quickly_built_program_gives_the_statistics_of_the_optimised_one(monkeypatch):
    """Few draws on the CPU run a program built with XLA's backend optimisation off (what the
    other tests check against ArviZ); from ``QUICK_BUILD_VALUES`` on, the optimised one."""
    from infer import chain_stats_kernels

    draws = make_draws(1000, seed=8)
    assert sum(v.size for v in draws.values()) <= chain_stats_kernels.QUICK_BUILD_VALUES
    quick = chain_stats.summary_stats(draws)
    monkeypatch.setattr(chain_stats_kernels, "QUICK_BUILD_VALUES", 0)
    optimised = chain_stats.summary_stats(draws)
    for name in draws:
        for stat in chain_stats.STATISTICS:
            what = f"{stat} of {name}"
            assert_matches(quick[name][stat], optimised[name][stat], rtol=1e-12, what=what)


def test_bad_input_is_refused_on_the_host():
    with pytest.raises(ValueError, match=r"\(num_chains, num_draws, \.\.\.\)"):
        chain_stats.rhat(np.zeros(10))
    with pytest.raises(ValueError, match="same number of chains"):
        chain_stats.rhat_nested(np.zeros((3, 10)), (0, 0, 1))
    with pytest.raises(ValueError, match="one label per chain"):
        chain_stats.rhat_nested(np.zeros((4, 10)), (0, 1))
    with pytest.raises(ValueError, match="compares two or more superchains"):  # was NaN
        chain_stats.rhat_nested(np.zeros((8, 10)), np.zeros(8))
    with pytest.raises(ValueError, match="share"):
        chain_stats.summary_stats({"a": np.zeros((4, 10)), "b": np.zeros((2, 10))})
    with pytest.raises(ValueError, match="method"):
        chain_stats.ess(np.zeros((4, 10)), method="mean")
    with pytest.raises(ValueError, match="prob"):
        chain_stats.ess(np.zeros((4, 10)), method="tail", prob=(0.05, 1.5))
    with pytest.raises(TypeError, match="real numbers"):
        chain_stats.rhat(np.zeros((4, 10), complex))
    # a tuple (or namedtuple) of two parameters' draws was stacked into one array and read
    # as 2 chains of 4 draws of 10 parameters, silently
    position = collections.namedtuple("Position", "mu tau")(np.zeros((4, 10)), np.ones((4, 10)))
    with pytest.raises(
        TypeError, match=r"Position of 2 parameters' draws, .* pass a dict .*_asdict"
    ):
        chain_stats.summary_stats(position)
    with pytest.raises(TypeError, match="draws is a tuple of 2 parameters' draws"):
        chain_stats.rhat(tuple(position))
    chains = ((0.1, 0.5, 0.3, 0.9), (0.2, 0.4, 0.8, 0.1))  # a tuple of chains: an array
    assert chain_stats.rhat(chains) == chain_stats.rhat(np.array(chains))
    with pytest.raises(ValueError, match=r"draws\['w'\] is a dict: .* \{'w.a': ...\}"):
        chain_stats.summary_stats({"w": {"a": np.zeros((4, 10))}})


SHARDED_SCRIPT = textwrap.dedent(
    """
    import json, jax, numpy as np
    from jax.sharding import AxisType, Mesh, NamedSharding, PartitionSpec
    from infer import chain_stats
    assert len(jax.devices()) == 2
    rng = np.random.default_rng(0)
    long = rng.normal(size=(4, 9000, 2)).astype(np.float32)  # the many-draw paths
    long[..., 1] = np.round(3 * long[..., 1])  # long runs of ties
    draws = {"short": rng.normal(size=(4, 300, 5)).astype(np.float32), "long": long}
    on_host = {k: chain_stats.summary_stats(v) for k, v in draws.items()}
    nested_on_host = chain_stats.rhat_nested(draws["short"], (0, 0, 1, 1))
    meshes = {
        "auto": Mesh(np.array(jax.devices()), ("chain",)),  # as infer.placement builds it
        "explicit": jax.make_mesh((2,), ("chain",), axis_types=(AxisType.Explicit,)),
    }
    out = {}
    for kind, mesh in meshes.items():
        sharded = jax.device_put(draws, NamedSharding(mesh, PartitionSpec("chain")))
        with jax.transfer_guard_device_to_host("disallow"):
            on_devices = {k: chain_stats.summary_stats(v) for k, v in sharded.items()}
            nested = chain_stats.rhat_nested(sharded["short"], (0, 0, 1, 1))
        same = [np.array_equal(np.asarray(on_devices[k][s]), np.asarray(on_host[k][s]),
                               equal_nan=True) for k in draws for s in chain_stats.STATISTICS]
        out[kind] = bool(all(same) and np.array_equal(np.asarray(nested), nested_on_host))
    print(json.dumps(out))
    """
)


@pytest.mark.thorough
def test_draws_sharded_along_the_chains_give_the_same_statistics():
    env = dict(os.environ, XLA_FLAGS=f"{os.environ.get('XLA_FLAGS', '')} {TWO_DEVICES}")
    run = subprocess.run(
        [sys.executable, "-c", SHARDED_SCRIPT], env=env, capture_output=True, text=True, timeout=600
    )
    assert run.returncode == 0, run.stderr[-3000:]
    out = json.loads(run.stdout.strip().splitlines()[-1])
    assert out == {"auto": True, "explicit": True}


@pytest.mark.parametrize(
    "call, error, match",
    [
        (lambda: chain_stats.summary_stats(np.zeros((4, 0))), ValueError, "at least one of each"),
        (lambda: chain_stats.summary_stats(np.zeros((0, 9))), ValueError, "at least one of each"),
        (lambda: chain_stats.rhat_nested(np.zeros((4, 9)), None), TypeError, "one label per chain"),
        (lambda: chain_stats.ess(np.zeros((4, 9)), prob=None), TypeError, "prob must be two"),
        (lambda: chain_stats.ess(np.zeros((4, 9)), prob="0.1"), TypeError, "got '0.1'"),
        (lambda: chain_stats.ess(np.zeros((4, 9)), prob=-0.1), ValueError, r"got -0\.1\."),
        (lambda: chain_stats.summary_stats([[1, 2, 3], [1, 2]]), ValueError, "draws must be an"),
    ],
)
def test_empty_draws_and_missing_options_are_named(call, error, match):
    with pytest.raises(error, match=match):
        call()


@pytest.mark.thorough  # an argument's form, 2.7 s
def test_a_tail_probability_pair_may_be_an_array():
    draws = np.random.default_rng(0).standard_normal((4, 100))
    as_tuple = chain_stats.ess(draws, method="tail", prob=(0.05, 0.95))
    assert chain_stats.ess(draws, method="tail", prob=np.array([0.05, 0.95])) == as_tuple
    assert chain_stats.ess(draws, method="tail", prob=jnp.array([0.05, 0.95])) == as_tuple
    padded = chain_stats.summary_stats(draws, padded=np.int64(512), statistics="ess_tail")
    assert_matches(padded["ess_tail"], as_tuple, rtol=1e-12)
    with pytest.raises(
        ValueError, match=r"dtype must be None, 'float32' or 'float64'; got 'bogus'"
    ):
        chain_stats.rhat(draws, dtype="bogus")


@pytest.mark.parametrize("num_draws", [1000, 2**13])  # 2**13: the sorts of many draws
def test_infinite_draws_match_arviz(num_draws):
    """A tail quantile between two infs is NaN: ArviZ's indicators are then all 0 and that
    tail's ESS is the draws' count (ours took the other tail's, or NaN). A median between -inf
    and inf is NaN, and so is ArviZ's folded R-hat, which leaves the bulk R-hat (ours ranked
    the NaN folded draws: 4.66 against 0.98)."""
    x = np.random.default_rng(5).standard_normal((NUM_CHAINS, num_draws))
    draws = {
        "top_tenth_inf": np.where(x > np.quantile(x, 0.9), np.inf, x),
        "halves_inf": np.where(x > np.median(x), np.inf, -np.inf),
        "all_inf": np.full_like(x, np.inf),
    }
    reference = arviz_reference(draws)
    mine = chain_stats.summary_stats(draws, statistics=("rhat", "ess_bulk", "ess_tail"))
    for name in draws:
        for stat in ("rhat", "ess_bulk", "ess_tail"):
            assert_matches(mine[name][stat], reference[stat][name], what=f"{stat} of {name}")


@pytest.mark.thorough  # an edge case, 3 s
def test_results_may_stay_in_float64_where_float32_would_overflow():
    draws = np.random.default_rng(0).standard_normal((4, 200)) * 1e42
    reference = array_stats.mcse(draws, method="mean", chain_axis=0, draw_axis=1)
    assert np.isinf(chain_stats.mcse(draws))  # JAX's default float: float32 without x64
    kept = chain_stats.summary_stats(draws, statistics="mcse_mean", result_dtype="float64")
    assert kept["mcse_mean"].dtype == np.float64
    assert_matches(kept["mcse_mean"], reference)
    with pytest.raises(ValueError, match="result_dtype must be None"):
        chain_stats.summary_stats(draws, result_dtype="float16")
    # many draws (past the shared small-draws programs): float64 JAX arrays came back, which
    # JAX narrowed, with a warning, at the first reduction
    many = np.random.default_rng(1).standard_normal((4, 5000, 10))
    rhat = chain_stats.summary_stats(many, statistics="rhat", result_dtype="float64")["rhat"]
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        assert isinstance(rhat, np.ndarray) and rhat.max().dtype == np.float64


def test_labelled_draws_are_read_by_their_names():
    """A DataArray laid out (draw, chain) was read by position: R-hat 1.38 and a bulk ESS of
    14,408 from 4,000 draws (ArviZ: 2.11 and 5.3); one chain laid out (draw, x) as 1,000
    chains; an ArviZ DataTree failed in xarray's words."""
    import xarray as xr

    import infer

    walks = np.cumsum(np.random.default_rng(0).standard_normal((4, 1000)), axis=1)
    by_name = xr.DataArray(walks.T, dims=("draw", "chain"))
    expected = {"rhat": arviz_stats.rhat(by_name), "ess_bulk": arviz_stats.ess(by_name)}
    named = (xr.Dataset({"a": by_name}), arviz_base.from_dict({"posterior": {"a": walks}}))
    for stats in [chain_stats.summary_stats(by_name)] + [
        chain_stats.summary_stats(draws)["a"] for draws in named
    ]:
        for name, value in expected.items():
            np.testing.assert_allclose(stats[name], float(value), rtol=1e-5)
    one_chain = xr.DataArray(walks.T, dims=("draw", "x"))
    np.testing.assert_allclose(
        chain_stats.ess(one_chain), arviz_stats.ess(one_chain.expand_dims("chain")), rtol=1e-5
    )
    stats = {"lp": xr.DataArray(walks.T, dims=("draw", "chain"))}  # as the draws are read
    result = infer.Result.from_draws({"a": by_name}, stats)
    assert result.draws["a"].shape == result.stats["lp"].shape == (4, 1000)
    with pytest.raises(TypeError, match=r"no 'posterior': pass the group whose draws to read"):
        chain_stats.rhat(arviz_base.from_dict({"sample_stats": {"lp": walks}}))
