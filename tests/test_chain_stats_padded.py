"""``chain_stats.summary_stats(..., padded=True)``, what ``until=`` checks with: the draw axis
padded with zeros up to a power of two, which no statistic may see. Against the unpadded
program (the same to round-off) and ``arviz_stats``, on the test set of
``test_chain_stats.py`` (autocorrelated, heavy-tailed, tied, constant and NaN draws)."""

import jax.numpy as jnp
import numpy as np
import pytest
from test_chain_stats import NUM_CHAINS, arviz_reference, assert_matches, make_draws
from test_driver import count_compilations

from infer import chain_ranks, chain_stats

pytestmark = pytest.mark.slow  # a module `make test-fast` leaves out, as test_chain_stats.py


def assert_same(padded, unpadded, rtol=1e-12):
    for name, stats in unpadded.items():
        for stat, value in stats.items():
            assert_matches(padded[name][stat], value, rtol=rtol, what=f"{stat} of {name}")


def test_padded_draws_give_the_statistics_of_the_real_ones():
    """Odd and even lengths (an odd chain loses its middle draw when split), all padded to
    512 draws, one program: the zeros after the draws would move every statistic if one
    leaked in. Against ArviZ, and against the unpadded program for one length."""
    for num_draws in (18, 101, 334):
        draws = make_draws(num_draws, seed=num_draws)
        padded = chain_stats.summary_stats(draws, padded=True)
        reference = arviz_reference(draws)
        for name in draws:
            for stat in chain_stats.STATISTICS:
                what = f"{stat} of {name}, {num_draws} draws"
                assert_matches(padded[name][stat], reference[stat][name], what=what)
        if num_draws == 101:
            assert_same(padded, chain_stats.summary_stats(draws))


@pytest.mark.thorough  # a second statistic of padded draws, 3 s
def test_nested_rhat_of_padded_draws_is_that_of_the_real_ones():
    """Padded draws gave NaN nested R-hat (the padding counted as draws); until= with
    superchains checks with it. Against the unpadded program (checked against arviz_stats
    in test_chain_stats.py), odd and even lengths, padded to a power of two or a count."""
    ids = np.arange(NUM_CHAINS) // 2
    for num_draws in (37, 100):
        draws = make_draws(num_draws, seed=num_draws)
        unpadded = chain_stats.rhat_nested(draws, ids)
        for padded in (True, 512):
            mine = chain_stats.summary_stats(
                draws, statistics="rhat_nested", padded=padded, superchain_ids=ids
            )
            for name, values in unpadded.items():
                what = f"nested R-hat of {name}, {num_draws} draws padded {padded}"
                assert_matches(mine[name]["rhat_nested"], values, rtol=1e-9, what=what)


@pytest.mark.thorough  # an edge case, 2.5 s
def test_too_few_draws_give_nan_when_padded():
    x = np.random.default_rng(0).normal(size=(3, 3, 2))
    for value in chain_stats.summary_stats({"x": x}, padded=True)["x"].values():
        assert np.isnan(np.asarray(value)).all()
    longer = np.random.default_rng(1).normal(size=(3, 5, 2))
    padded = chain_stats.summary_stats({"x": longer}, padded=True)
    assert_same(padded, chain_stats.summary_stats({"x": longer}))


@pytest.mark.thorough  # float32 padding, 4 s;
# float32 draws unpadded are checked in test_chain_stats
def test_float32_padded_draws_match_arviz():
    draws = make_draws(1000, np.float32, seed=3)
    padded = chain_stats.summary_stats(draws, dtype="float32", padded=True)
    reference = arviz_reference(draws)
    for name in draws:
        for stat in chain_stats.STATISTICS:
            assert_matches(padded[name][stat], reference[stat][name], what=f"{stat} of {name}")


def test_jax_arrays_are_padded_on_their_device():
    draws = make_draws(300, np.float32, seed=4)["ar1"]
    on_device = chain_stats.summary_stats(jnp.asarray(draws), padded=True)
    from_host = chain_stats.summary_stats(draws, padded=True)
    for stat in chain_stats.STATISTICS:
        np.testing.assert_array_equal(np.asarray(on_device[stat]), np.asarray(from_host[stat]))


@pytest.mark.thorough  # the fast paths padded, 8 s; padded statistics stay
def test_padding_that_reaches_the_fast_paths_matches_arviz():
    """4 x 4100 draws take the scans unpadded, but padded to 8192 they reach
    ``chain_ranks.FAST_FROM``: the bitonic merge of the folded draws must leave the padding
    after every real value."""
    num_draws = 4100
    assert NUM_CHAINS * num_draws < chain_ranks.FAST_FROM <= NUM_CHAINS * 8192
    draws = make_draws(num_draws, seed=5)
    padded = chain_stats.summary_stats(draws, padded=True)
    assert_same(padded, chain_stats.summary_stats(draws), rtol=1e-10)
    reference = arviz_reference(draws)
    for name in draws:
        for stat in chain_stats.STATISTICS:
            assert_matches(padded[name][stat], reference[stat][name], what=f"{stat} of {name}")


@pytest.mark.thorough  # 3.5 s; test_chain_stats.py's few draws share one program
def test_lengths_up_to_the_same_power_of_two_share_one_program():
    """What ``until=`` relies on: checks after 70, 300 and 512 draws compile once."""
    rng = np.random.default_rng(6)
    with count_compilations() as counter:
        chain_stats.summary_stats(rng.normal(size=(4, 70, 3)), padded=True)
        first = counter["n"]
        assert first >= 1
        for num_draws in (300, 512):
            chain_stats.summary_stats(rng.normal(size=(4, num_draws, 3)), padded=True)
        assert counter["n"] == first
        chain_stats.summary_stats(rng.normal(size=(4, 513, 3)), padded=True)
        assert counter["n"] > first  # 513 draws need the next power of two


@pytest.mark.thorough  # the test above shares programs
def test_a_count_pads_every_length_up_to_it_into_one_program():
    """What ``until=`` does for runs small enough: pad to ``max_samples`` from the start."""
    rng = np.random.default_rng(7)
    draws = {"x": rng.normal(size=(4, 3000, 3)).cumsum(axis=1)}
    with count_compilations() as counter:
        results = {}
        for num_draws in (200, 1801, 3000):
            part = {"x": draws["x"][:, :num_draws]}
            results[num_draws] = chain_stats.summary_stats(part, padded=3000)
            if num_draws == 200:
                first = counter["n"]
        assert counter["n"] == first
    assert_same(results[1801], chain_stats.summary_stats({"x": draws["x"][:, :1801]}))


def test_bad_padding_is_refused():
    with pytest.raises(TypeError, match="padded must be True, False or a count"):
        chain_stats.summary_stats(np.zeros((2, 10)), padded="yes")
    with pytest.raises(ValueError, match="padded=5 is fewer than the 10 draws"):
        chain_stats.summary_stats(np.zeros((2, 10)), padded=5)
