"""The faster paths of :mod:`infer.chain_stats` for many draws per parameter (from
``chain_ranks.FAST_FROM``): one sort and a bitonic merge for the folded draws, ties averaged in
one pass, Geyer's sum from the first lags' autocovariances. Against scipy's ranks and
``arviz_stats``, as the rest of the test set in ``test_chain_stats.py``."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from test_chain_stats import NUM_CHAINS, arviz_reference, assert_matches

from infer import chain_ranks, chain_stats

# The fast paths' regimes, 25 s: `make test-thorough`. `make test` reaches them through
# test_chain_stats.py's infinite draws of 2**13 per chain (their sorts of many draws).
pytestmark = pytest.mark.thorough  # and so out of `make test-fast` too

LONG = 9000  # draws per chain: 4 x 9000 split draws reach chain_ranks.FAST_FROM (2**15)


def short_ties(longest, dtype, seed=0):
    """Draws (4, LONG, 2) whose values repeat at most ``longest`` times: parameter 0 in the
    draws themselves, parameter 1 in the folded draws (mirrored about the median, so each
    ``|x - median|`` appears twice, with a few repeated values on top)."""
    rng = np.random.default_rng(seed)
    x = rng.normal(size=(NUM_CHAINS, LONG, 2))
    flat = x[..., 0].reshape(-1)
    for start in range(0, flat.size // 2, longest):  # runs of 1..longest equal values
        flat[start : start + 1 + start // longest % longest] = flat[start]
    x[..., 0] = flat.reshape(NUM_CHAINS, LONG)
    x[:, LONG // 2 :, 1] = -x[:, : LONG // 2, 1][:, ::-1]  # symmetric: the median is 0
    x[0, : longest // 2, 1] = x[1, 3, 1]
    return x.astype(dtype)


@pytest.mark.parametrize(  # float32: the host-sorted ranks below; here in `make test-thorough`
    "dtype", [np.float64, pytest.param(np.float32, marks=pytest.mark.thorough)]
)
@pytest.mark.parametrize("longest", [1, 2, 4, 5, 9])
def test_ties_below_and_above_the_one_pass_reach_match_arviz(longest, dtype):
    """With many draws, ties of up to 4 equal values are averaged in one pass, longer ones by
    scans, and the folded draws are ranked by merging the sorted draws (no second sort)."""
    assert NUM_CHAINS * LONG >= chain_ranks.FAST_FROM
    draws = {"x": short_ties(longest, dtype)}
    reference = arviz_reference(draws)
    mine = chain_stats.summary_stats(draws)
    for stat in ("rhat", "ess_bulk"):
        assert_matches(mine["x"][stat], reference[stat]["x"], what=f"{stat}, ties of {longest}")


def blom_scores_of_average_ranks(x):
    """scipy's average ranks of ``x`` (1-D), as Blom's normal scores (ArviZ's ``_z_scale``), in
    float64 (scipy keeps a float32 array's dtype)."""
    from scipy import stats

    return stats.norm.ppf((stats.rankdata(x.astype(np.float64)) - 3 / 8) / (x.size + 1 / 4))


@pytest.mark.parametrize(
    "host, dtype",
    [  # each sort and each dtype in `make test`; the other two pairs in `make test-thorough`
        pytest.param(False, np.float64, id="xla-float64"),
        pytest.param(True, np.float32, id="host-float32"),
        pytest.param(False, np.float32, id="xla-float32", marks=pytest.mark.thorough),
        pytest.param(True, np.float64, id="host-float64", marks=pytest.mark.thorough),
    ],
)
@pytest.mark.parametrize("longest", [1, 2, 4, 9])
def test_rank_normalisation_equals_scipys_average_ranks(longest, host, dtype):
    """``z_scores`` and ``folded_z_scores`` of many draws, one parameter at a time and as a
    vmapped batch (whose tie handling is decided for the whole batch), sorted by XLA or by
    NumPy on the host, against scipy (float32 draws are ranked in float64 too)."""
    draws = short_ties(longest, dtype)
    columns = [draws[..., p].reshape(-1) for p in range(2)]
    size = columns[0].size
    assert size >= chain_ranks.FAST_FROM
    scores = chain_ranks.normal_scores(size, "float64")

    def both(x):
        z, sorted_x, order = chain_ranks.z_scores(x, scores, host=host)
        return z, chain_ranks.folded_z_scores(x, sorted_x, order, scores, host=host)

    with jax.enable_x64(True):
        one = [jax.jit(both)(jnp.asarray(x)) for x in columns]
        batched = jax.jit(jax.vmap(both))(jnp.asarray(np.stack(columns)))
    for p, x in enumerate(columns):
        sorted_x = np.sort(x)
        median = (sorted_x[size // 2 - 1] + sorted_x[size // 2]) / 2
        expected = (blom_scores_of_average_ranks(x), blom_scores_of_average_ranks(abs(x - median)))
        for got in (one[p], (batched[0][p], batched[1][p])):
            for mine, reference in zip(got, expected, strict=True):
                np.testing.assert_allclose(np.asarray(mine), reference, rtol=1e-12, atol=1e-12)


def ar1(phi, shape, rng):
    """AR(1) chains (num_chains, num_draws) with coefficient ``phi``, started stationary."""
    noise = rng.normal(size=shape)
    x = np.empty(shape)
    x[:, 0] = noise[:, 0] / np.sqrt(1 - phi**2)
    for t in range(1, shape[1]):
        x[:, t] = phi * x[:, t - 1] + noise[:, t]
    return x


@pytest.mark.parametrize("phis", [(0.0, 0.5), (0.0, 0.999)])
def test_geyer_sums_past_the_first_lags_match_arviz(phis):
    """With many draws, the autocovariances of the first ``n // 8`` lags are enough where
    Geyer's sum stops within them (fast mixing); a slowly mixing chain needs every lag: a
    batch of parameters that holds one (here all in one batch) is computed from every lag, as
    ArviZ does."""
    rng = np.random.default_rng(len(phis))
    draws = {"x": np.stack([ar1(phi, (NUM_CHAINS, 2 * LONG), rng) for phi in phis], axis=-1)}
    reference = arviz_reference(draws)
    mine = chain_stats.summary_stats(draws)
    for stat in ("ess_bulk", "ess_tail", "mcse_mean"):
        assert_matches(mine["x"][stat], reference[stat]["x"], what=f"{stat} for phi {phis}")
    if 0.999 in phis:  # far past the first 1,125 lags: Geyer's sum goes on for thousands
        assert float(np.min(mine["x"]["ess_bulk"])) < NUM_CHAINS * 2 * LONG / 1000


def _sorted_and_order(out, with_order):
    return (np.asarray(out[0]), np.asarray(out[1])) if with_order else (np.asarray(out), None)


@pytest.mark.parametrize(
    "dtype, x64", [(np.float64, True), (np.float32, True), (np.float32, False)]
)
@pytest.mark.parametrize("with_order", [False, True])
def test_numpys_sort_on_the_host_sorts_as_xla_does(dtype, x64, with_order):
    """``host=True`` (NumPy's sort through a callback, what the CPU uses for many draws) gives
    XLA's sorted values bit for bit and a permutation that sorts, for every key width (64-bit
    keys cross the callback as 32-bit words, which a narrowing would break), padded values
    (``mask``) last, one parameter and a vmapped batch."""
    x = short_ties(4, dtype)[..., 0].reshape(-1)
    x[::7] = -x[::7] * 0.0  # -0.0 and 0.0 among the values
    mask = np.arange(x.size) % 11 != 3
    cases = {  # name -> (inputs, the values they sort)
        "one": ((x, None), x),
        "masked": ((x, mask), np.where(mask, x, np.nan).astype(dtype)),
        "batch": ((np.stack([x, x[::-1]]), None), np.stack([x, x[::-1]])),
    }
    with jax.enable_x64(x64):
        for wide in {False, x64}:
            for name, ((values, m), expected_values) in cases.items():

                def sort(v, host, m=m, wide=wide):
                    return chain_ranks.sort(v, with_order, wide, mask=m, host=host)

                run = jax.vmap if values.ndim == 2 else lambda f: f
                host = _sorted_and_order(jax.jit(run(lambda v: sort(v, True)))(values), with_order)
                xla = _sorted_and_order(jax.jit(run(lambda v: sort(v, False)))(values), with_order)
                assert host[0].dtype == xla[0].dtype == dtype, name
                assert host[0].tobytes() == xla[0].tobytes(), f"{name}, wide={wide}"
                if with_order:
                    assert host[1].dtype == np.int32
                    gathered = np.take_along_axis(expected_values, host[1], axis=-1)
                    np.testing.assert_array_equal(gathered, host[0], err_msg=name)
