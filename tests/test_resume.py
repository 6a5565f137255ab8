"""Runs that keep their state: resuming from a result or a checkpoint continues the chains bit
for bit, a killed run resumes, bad checkpoints and mismatched resumes are refused, and
``until`` stops when converged."""

import os
import random
import signal
import subprocess
import sys
import textwrap
import time
import warnings

import jax
import jax.numpy as jnp
import numpy as np
import numpyro.distributions as dist
import pytest
from short_runs import NORMAL_3D, SAMPLERS, SHORT

import infer
from infer import checkpoint as checkpoints
from infer import convergence
from models import targets

pytestmark = pytest.mark.slow  # a module `make test-fast` leaves out

RUN = SHORT  # 3 chains, 40 warm-up steps


def assert_same(first: infer.Result, second: infer.Result) -> None:
    assert first.draws.keys() == second.draws.keys()
    assert first.stats.keys() == second.stats.keys()
    for name in first.draws:
        np.testing.assert_array_equal(first.draws[name], second.draws[name])
    for name in first.stats:
        np.testing.assert_array_equal(first.stats[name], second.stats[name])


# The resumed state is the driver's: `make test` checks it for a random walk, MALA and NUTS
# (HMC's kernel is NUTS's; independent_mh's proposal has a test of its own below).
THOROUGH_RESUMES = ("hmc", "rwmh_dense", "independent_mh", "mh")


@pytest.mark.parametrize(
    "name",
    [pytest.param(n, marks=[pytest.mark.thorough] * (n in THOROUGH_RESUMES)) for n in SAMPLERS],
)
def test_a_run_of_2n_equals_n_resumed_for_n_more(name):
    sampler = SAMPLERS[name]
    whole = infer.sample(3, NORMAL_3D, sampler, num_samples=60, **RUN)
    first = infer.sample(3, NORMAL_3D, sampler, num_samples=30, **RUN)
    rest = infer.sample(3, NORMAL_3D, sampler, num_samples=30, resume=first)
    joined = infer.concat(first, rest)
    assert_same(whole, joined)
    assert joined.num_logdensity_evals == whole.num_logdensity_evals
    assert rest.num_warmup == RUN["num_warmup"] and rest.timing["warmup"] == 0.0
    assert joined.state.step == whole.state.step == RUN["num_warmup"] + 60
    # the joined result resumes again, like the whole one
    more_whole = infer.sample(3, NORMAL_3D, sampler, num_samples=10, resume=whole)
    more_joined = infer.sample(3, NORMAL_3D, sampler, num_samples=10, resume=joined)
    assert_same(more_whole, more_joined)
    if name == next(iter(SAMPLERS)):  # what does not continue is refused (one sampler is enough)
        for wrong in ((first, first), (rest, first), (first, more_whole)):
            with pytest.raises(ValueError, match="does not continue the results before it"):
                infer.concat(*wrong)
        other_seed = infer.sample(4, NORMAL_3D, sampler, num_samples=30, **RUN)
        with pytest.raises(ValueError, match=r"does not continue the results before it: seed"):
            infer.concat(
                first, infer.sample(4, NORMAL_3D, sampler, num_samples=30, resume=other_seed)
            )
        with pytest.raises(TypeError, match=r"results\[0\] must be an infer.Result; got int"):
            infer.concat(5, first)
        # the seed 3 and jax.random.key(3) are one stream: resume= took the key, and concat
        # refused the pair ("seed: 3 != [0, 3]")
        by_key = infer.sample(jax.random.key(3), NORMAL_3D, sampler, num_samples=30, resume=first)
        assert_same(whole, infer.concat(first, by_key))


def test_thinned_runs_resume_bit_for_bit_and_count_divergences_in_skipped_steps():
    sampler = infer.nuts()
    whole = infer.sample(1, NORMAL_3D, sampler, num_samples=20, thin=3, **RUN)
    first = infer.sample(1, NORMAL_3D, sampler, num_samples=10, thin=3, **RUN)
    rest = infer.sample(1, NORMAL_3D, sampler, num_samples=10, resume=first, thin=3)
    assert_same(whole, infer.concat(first, rest))
    # thin, like num_warmup and num_chains, defaults to the resumed run's
    assert_same(rest, infer.sample(1, NORMAL_3D, sampler, num_samples=10, resume=first))


def test_nuts_with_and_without_progress_is_bit_identical():
    off = infer.sample(2, NORMAL_3D, infer.nuts(), num_samples=60, **RUN)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # tqdm may warn about the terminal
        on = infer.sample(2, NORMAL_3D, infer.nuts(), num_samples=60, progress=True, **RUN)
    assert_same(off, on)


def test_thinned_runs_cut_in_pieces_keep_the_flags_of_skipped_steps(tmp_path):
    """A progress bar's or checkpoints' pieces end at kept draws, so the flags of thinned-out
    steps (``diverging``: OR-ed into the next kept draw) are never lost to a cut between two
    kept draws: the stats equal the uncut run's. Other flags are the kept step's own:
    ``is_accepted`` was OR-ed too (0.91 accepted against an acceptance rate of 0.44)."""
    sampler, run = infer.rwmh(), dict(num_samples=40, thin=3, **RUN)
    plain = infer.sample(0, NORMAL_3D, sampler, **run)
    accepted, rate = plain.stats["is_accepted"], plain.stats["acceptance_rate"]
    se = np.sqrt(np.mean(rate * (1 - rate)) / accepted.size)  # each is Bernoulli(its rate)
    assert abs(accepted.mean() - rate.mean()) < 5 * se
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # tqdm may warn about the terminal
        bar = infer.sample(0, NORMAL_3D, sampler, progress=True, **run)
    folder = tmp_path / "checkpoints"
    saved = infer.sample(0, NORMAL_3D, sampler, checkpoint=folder, checkpoint_every=7, **run)
    assert_same(plain, bar)
    assert_same(plain, saved)
    # a checkpoint every 7 steps, at most thin - 1 late: a cut rounded up to a kept draw made
    # the writer skip the next one (12 steps apart, then 6: twice what was asked)
    kept = [np.load(chunk)["logdensity"].shape[1] for chunk in sorted(folder.glob("chunk-*"))]
    assert sum(kept) == 40 and max(kept) * 3 <= 7 + 3 - 1, kept


@pytest.mark.thorough  # independent MH's proposal made anew, 6 s; RWMH, MALA, NUTS resume
def test_independent_mh_resumes_with_an_equal_proposal_made_anew():
    """The sampler's settings name the proposal by its class and parameters, not by repr (a
    memory address): an equal proposal made again, as in a new process, resumes the run;
    another one is refused, naming it."""
    whole = infer.sample(
        0, NORMAL_3D, infer.independent_mh(dist.Normal(jnp.zeros(3), 2.0)), num_samples=40, **RUN
    )
    first = infer.sample(
        0, NORMAL_3D, infer.independent_mh(dist.Normal(jnp.zeros(3), 2.0)), num_samples=20, **RUN
    )
    again = infer.independent_mh(dist.Normal(jnp.zeros(3), 2.0))
    assert_same(
        whole, infer.concat(first, infer.sample(0, NORMAL_3D, again, num_samples=20, resume=first))
    )
    wider = infer.independent_mh(dist.Normal(jnp.zeros(3), 3.0))
    with pytest.raises(
        ValueError,
        match=r"Normal\(_batch_shape=\[3\], _event_shape=\[\], loc=\[0.0, 0.0, 0.0\], "
        r"scale=\[2.0\]\)",
    ):
        infer.sample(0, NORMAL_3D, wider, num_samples=20, resume=first)


def test_a_proposal_is_described_alike_in_every_process(monkeypatch):
    """NumPyro flattens a distribution's fields in the order of a set of their names, which
    changes with the process's string hashing; the description reads them by name, so the
    order NumPyro gives them in does not matter."""
    from infer.proposal import describe_proposal

    proposal = dist.Normal(jnp.zeros(3), 2.0).to_event(1)
    as_given = describe_proposal(proposal)
    for kind in (dist.Independent, dist.Normal):
        fields = kind.gather_pytree_data_fields()
        monkeypatch.setattr(kind, "gather_pytree_data_fields", lambda f=fields: f[::-1])
    assert describe_proposal(proposal) == as_given
    assert "loc=[0.0, 0.0, 0.0], scale=[2.0]" in as_given


def test_resume_refuses_another_sampler_target_or_seed():
    first = infer.sample(0, NORMAL_3D, infer.rwmh(), num_samples=20, **RUN)
    with pytest.raises(ValueError, match=r"What differs:\n  sampler: 'rwmh' in the saved run"):
        infer.sample(0, NORMAL_3D, infer.mala(), num_samples=20, resume=first)
    other = infer.Target(lambda x: -0.5 * jnp.sum((x - 1) ** 2), init=jnp.zeros(3), name="other")
    with pytest.raises(ValueError, match=r"target: 'normal_3d' in the saved run, 'other' now"):
        infer.sample(0, other, infer.rwmh(), num_samples=20, resume=first)
    with pytest.raises(ValueError, match=r"streams, made from the seed 0; pass that as rng_key"):
        infer.sample(1, NORMAL_3D, infer.rwmh(), num_samples=20, resume=first)
    # a key's seed is told as Python that rebuilds the key (it was its data, a list, which
    # rng_key refuses)
    keyed = infer.sample(
        jax.random.fold_in(jax.random.key(0), 7), NORMAL_3D, infer.rwmh(), num_samples=20, **RUN
    )
    with pytest.raises(ValueError, match=r"made from the seed (.*\)); pass that as") as refused:
        infer.sample(0, NORMAL_3D, infer.rwmh(), num_samples=20, resume=keyed)
    rebuilt = eval(refused.value.args[0].split("the seed ")[1].split("; pass")[0])
    assert (
        infer.sample(rebuilt, NORMAL_3D, infer.rwmh(), num_samples=20, resume=keyed).num_samples
        == 20
    )
    with pytest.raises(ValueError, match=r"thin: '1' in the saved run, '2' now"):
        infer.sample(0, NORMAL_3D, infer.rwmh(), num_samples=20, resume=first, thin=2)
    with pytest.raises(  # the sampler's settings, the one that differs
        ValueError,
        match=r"differs:\n  settings\['target_accept'\]: None in the saved run, 0.3 now\n",
    ):
        infer.sample(0, NORMAL_3D, infer.rwmh(target_accept=0.3), num_samples=20, resume=first)
    with pytest.raises(ValueError, match="init and resume cannot both be given"):
        infer.sample(0, NORMAL_3D, infer.rwmh(), resume=first, init=jnp.zeros(3))
    as_dict = infer.Target(  # another structure: refused before its log density is traced
        lambda p: -0.5 * jnp.sum(p["mu"] ** 2), init={"mu": jnp.zeros(3)}, name="dict_3d"
    )
    with pytest.raises(ValueError, match=r"different run. What differs:\n  logdensity_fn:"):
        infer.sample(0, as_dict, infer.rwmh(), num_samples=20, resume=first)
    exact = infer.Result.from_draws({"x": np.zeros((2, 5))})
    with pytest.raises(ValueError, match="needs the chains' state"):
        infer.sample(0, NORMAL_3D, infer.rwmh(), resume=exact)


def test_checkpointed_run_resumes_from_its_folder(tmp_path):
    folder = tmp_path / "run"
    whole = infer.sample(5, NORMAL_3D, infer.mala(), num_samples=100, **RUN)
    checkpointed = infer.sample(
        5, NORMAL_3D, infer.mala(), num_samples=100, checkpoint=folder, checkpoint_every=25, **RUN
    )
    assert_same(whole, checkpointed)
    saved = checkpoints.checkpoints(folder)
    assert len(saved) == checkpoints.KEEP  # older ones are dropped
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # the run's own num_samples: nothing to say
        again = infer.sample(5, NORMAL_3D, infer.mala(), num_samples=100, resume=folder, **RUN)
    assert_same(whole, again)  # a finished run resumes to itself
    with pytest.warns(UserWarning, match="num_samples=40 is ignored.*draws 100 per chain") as said:
        again = infer.sample(5, NORMAL_3D, infer.mala(), num_samples=40, resume=folder, **RUN)
    assert_same(whole, again)
    assert said[0].filename == __file__  # the user's line, not infer's (it was driver.py)
    with pytest.raises(ValueError, match="already holds a run's checkpoints"):
        infer.sample(5, NORMAL_3D, infer.mala(), num_samples=100, checkpoint=folder, **RUN)
    with pytest.raises(ValueError, match=r"made from the seed 5; pass that as rng_key \(got 6\)"):
        infer.sample(6, NORMAL_3D, infer.mala(), num_samples=100, resume=folder, **RUN)
    chains_default = {k: v for k, v in RUN.items() if k != "num_chains"}
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # num_samples not given: nothing to say
        again = infer.sample(5, NORMAL_3D, infer.mala(), resume=folder, **chains_default)
    assert again.num_chains == whole.num_chains  # the checkpoint's, not the default


def test_damaged_or_foreign_checkpoints_get_a_clear_error(tmp_path):
    folder = tmp_path / "run"
    infer.sample(
        6, NORMAL_3D, infer.rwmh(), num_samples=60, checkpoint=folder, checkpoint_every=20, **RUN
    )
    older, newest = checkpoints.checkpoints(folder)
    newest.write_bytes(newest.read_bytes()[:100])  # truncated
    with pytest.raises(
        ValueError,
        match=r"truncated or not an infer checkpoint.*previous "
        r"checkpoint .*is readable",
    ):
        infer.sample(6, NORMAL_3D, infer.rwmh(), num_samples=60, resume=folder, **RUN)
    resumed = infer.sample(6, NORMAL_3D, infer.rwmh(), num_samples=60, resume=older, **RUN)
    assert resumed.draws["x"].shape == (3, 60, 3)
    foreign = tmp_path / "foreign"
    foreign.mkdir()
    np.savez(foreign / "checkpoint-000001.npz", meta=np.frombuffer(b'{"format": "x"}', np.uint8))
    with pytest.raises(ValueError, match="is not an infer checkpoint"):
        infer.sample(6, NORMAL_3D, infer.rwmh(), num_samples=60, resume=foreign, **RUN)
    with pytest.raises(FileNotFoundError, match="no checkpoint in"):
        infer.sample(6, NORMAL_3D, infer.rwmh(), resume=tmp_path / "empty", **RUN)
    saved = resumed.save(tmp_path / "saved.h5")  # "truncated or not an infer checkpoint"
    with pytest.raises(ValueError, match=r"saved.h5 is a saved result \(NetCDF, as Result.save"):
        infer.sample(6, NORMAL_3D, infer.rwmh(), num_samples=60, resume=saved, **RUN)


def test_a_checkpoint_folder_resumes_with_the_stopping_rule_it_was_started_with(tmp_path):
    folder = tmp_path / "run"
    rule = infer.converged(rhat=1.05, ess=50, max_samples=60)
    infer.sample(0, NORMAL_3D, infer.rwmh(), num_samples=20, until=rule, checkpoint=folder, **RUN)
    with pytest.raises(ValueError, match=r"started with until=infer.converged\(\*\*\{'rhat': 1.05"):
        infer.sample(0, NORMAL_3D, infer.rwmh(), num_samples=20, resume=folder, **RUN)
    other = infer.converged(rhat=1.01, ess=50, max_samples=60)
    with pytest.raises(ValueError, match=r"got until=infer.converged\(\*\*\{'rhat': 1.01"):
        infer.sample(0, NORMAL_3D, infer.rwmh(), num_samples=20, until=other, resume=folder, **RUN)


def test_resume_from_a_checkpoint_of_another_run_says_what_differs(tmp_path):
    folder = tmp_path / "run"
    infer.sample(0, NORMAL_3D, infer.rwmh(), num_samples=20, checkpoint=folder, **RUN)
    with pytest.raises(ValueError, match=r"num_warmup: '40' in the saved run, '10' now"):
        infer.sample(
            0, NORMAL_3D, infer.rwmh(), num_samples=20, resume=folder, num_chains=3, num_warmup=10
        )
    with pytest.raises(ValueError, match=r"num_chains=4, but .* has 3 chains.*: finish this run"):
        infer.sample(
            0, NORMAL_3D, infer.rwmh(), num_samples=20, resume=folder, num_chains=4, num_warmup=40
        )
    other = infer.Target(lambda x: -0.5 * jnp.sum(x**2), init=jnp.zeros(2), name="normal_3d")
    with pytest.raises(ValueError, match=r"positions: .* in the saved run"):
        infer.sample(0, other, infer.rwmh(), num_samples=20, resume=folder, num_warmup=40)


CHILD = textwrap.dedent(
    """
    import sys
    import infer
    from models import targets
    infer.sample(0, targets.get("normal_10d"), infer.rwmh(), num_chains=4, num_samples=20000,
                 num_warmup=1000, checkpoint=sys.argv[1], checkpoint_every=200)
    """
)


def test_a_run_killed_at_a_random_moment_resumes_to_the_uninterrupted_result(tmp_path):
    target = targets.get("normal_10d")
    settings = dict(num_chains=4, num_samples=20000, num_warmup=1000)
    reference = infer.sample(0, target, infer.rwmh(), **settings)
    stop = settings["num_warmup"] + settings["num_samples"]
    killed_mid_run = 0
    for attempt in range(3):
        folder = tmp_path / f"run{attempt}"
        child = subprocess.Popen([sys.executable, "-c", CHILD, str(folder)])
        try:
            deadline = time.monotonic() + 300
            while not checkpoints.checkpoints(folder) and child.poll() is None:
                assert time.monotonic() < deadline, "no checkpoint appeared"
                time.sleep(0.01)
            time.sleep(random.Random(attempt).uniform(0.0, 0.4))
            os.kill(child.pid, signal.SIGKILL)
        finally:
            child.wait()
        saved = checkpoints.load(folder)
        killed_mid_run += int(saved.meta["step"]) < stop
        # what a write killed before its rename leaves (the kill may have left one too)
        (folder / ".checkpoint-000099.npz.k1ll3d.tmp").write_bytes(b"half a checkpoint")
        resumed = infer.sample(0, target, infer.rwmh(), resume=folder, **settings)
        assert_same(reference, resumed)
        assert not list(folder.glob("*.tmp")), "the killed write's temporary file was left"
        if killed_mid_run:
            break
    assert killed_mid_run, "every kill landed after the run had finished"


def test_until_stops_when_converged_and_records_why():
    rule = infer.converged(rhat=1.01, ess=300, max_samples=5000)
    result = infer.sample(0, NORMAL_3D, infer.nuts(), num_samples=100, until=rule, **RUN)
    until = result.info["until"]
    assert until["stopped"] == "converged" and not until["shortfalls"]
    assert result.num_samples == until["num_draws"] < 5000
    assert result.num_samples % 100 == 0
    import arviz_stats

    assert float(arviz_stats.ess(result.to_arviz(), method="bulk")["x"].min()) >= 300


@pytest.mark.thorough  # until= and superchains together, 10 s; each is checked alone in `make test`
def test_until_with_superchains_judges_nested_rhat():
    """64 short chains in 8 superchains on normal_10d: nested R-hat met the rule at 20-40
    draws per chain (1.006-1.009) where plain R-hat, inflated for short chains (1.03-1.09
    there), kept the run going to 160: four times the work, on a rule compare does not
    apply to such runs."""
    from infer import chain_stats

    rule = infer.converged(rhat=1.01, ess=400, max_samples=200)
    result = infer.sample(
        0,
        targets.get("normal_10d"),
        infer.nuts(),
        num_chains=64,
        superchains=8,
        num_samples=20,
        num_warmup=200,
        until=rule,
    )
    assert result.info["until"]["stopped"] == "converged"
    assert result.info["until"]["num_draws"] <= 60
    draws = np.asarray(result.draws["x"])
    assert np.max(chain_stats.rhat_nested(draws, np.arange(64) // 8)) <= 1.01
    assert np.max(chain_stats.rhat(draws)) > 1.01  # the plain rule would have gone on


def test_until_names_a_matrix_s_elements_as_the_summary_does():
    """A shortfall of ``until=`` names the summary's row: ``c[0, 1]``, not the flat ``c[1]``."""
    draws = np.random.default_rng(0).normal(size=(4, 50, 2, 2))
    rule = infer.converged(rhat=1.0001, ess=1e6, max_samples=100)  # nothing meets it
    failing = convergence.shortfalls({"c": draws, "s": draws[..., 0, 0]}, rule)
    rows = infer.summary(infer.Result.from_draws({"c": draws, "s": draws[..., 0, 0]})).index
    assert sorted(failing) == sorted(rows) == ["c[0, 0]", "c[0, 1]", "c[1, 0]", "c[1, 1]", "s"]


@pytest.mark.thorough  # a warning, 3 s
def test_until_warns_naming_the_parameters_that_fell_short():
    funnel = targets.get("funnel")
    rule = infer.converged(rhat=1.01, ess=400, max_samples=300)
    with pytest.warns(infer.DiagnosticWarning, match=r"stopped at the budget of 300 .*short: "):
        result = infer.sample(
            0, funnel, infer.rwmh(), num_chains=4, num_samples=100, num_warmup=200, until=rule
        )
    assert result.info["until"]["stopped"] == "max_samples"
    assert result.num_samples == 300 and result.info["until"]["shortfalls"]
    with pytest.raises(ValueError, match=r"num_samples=400 is the draws per chain between two"):
        infer.sample(0, funnel, infer.rwmh(), num_samples=400, until=rule)


@pytest.mark.thorough  # a cost property, 4 s
def test_until_checks_compile_once_and_large_runs_pad_to_powers_of_two(monkeypatch):
    """Checks after 200, 400 and 600 draws: padded to ``max_samples``, one statistics program;
    past ``ONE_PROGRAM_VALUES``, padded to 512 and 1024, two. The verdicts are the same."""
    from test_driver import count_compilations

    draws = np.random.default_rng(0).normal(size=(4, 600, 5)).cumsum(axis=1)  # random walks
    rule = infer.converged(rhat=1.01, ess=400, max_samples=600)

    def checks():
        with count_compilations() as counter:
            verdicts = [convergence.shortfalls(draws[:, :n], rule) for n in (200, 400, 600)]
        return verdicts, counter["n"]

    one_program, programs = checks()
    assert programs == 1 and all(len(v) == 5 for v in one_program)  # random walks fall short
    monkeypatch.setattr(convergence, "ONE_PROGRAM_VALUES", 0)
    doubling, programs = checks()
    assert programs == 2
    for padded_to_max, padded_to_doubling in zip(one_program, doubling, strict=True):
        assert padded_to_max.keys() == padded_to_doubling.keys()
        for name, values in padded_to_max.items():
            for stat, value in values.items():
                assert value == pytest.approx(padded_to_doubling[name][stat], rel=1e-12)


def test_until_rejects_bad_limits():
    with pytest.raises(ValueError, match="rhat must be above 1"):
        infer.converged(rhat=0.99)
    with pytest.raises(TypeError, match="until must be infer.converged"):
        infer.sample(0, NORMAL_3D, infer.rwmh(), until={"ess": 400})
    with pytest.raises(ValueError, match="one chain can never meet it"):
        infer.sample(0, NORMAL_3D, infer.rwmh(), until=infer.converged(), num_chains=1)
    with pytest.raises(ValueError, match="exact independent draws, so until does not apply"):
        target = targets.get("normal_1d")
        infer.sample(0, target, infer.rejection(target.rejection_proposal), until=infer.converged())
    earlier = infer.sample(0, NORMAL_3D, infer.rwmh(), num_samples=20, **RUN)
    with pytest.raises(ValueError, match=r"until= cannot continue a result \(resume=result\)"):
        infer.sample(0, NORMAL_3D, infer.rwmh(), resume=earlier, until=infer.converged())


@pytest.mark.thorough  # test_bnn checks it for Flax
def test_a_new_numpyro_target_with_same_shaped_data_reuses_the_compiled_programs():
    import numpyro

    def model(x, y=None):
        slope = numpyro.sample("slope", dist.Normal(0.0, 3.0))
        noise = numpyro.sample("noise", dist.HalfNormal(1.0))
        numpyro.sample("y", dist.Normal(slope * x, noise), obs=y)

    rng = np.random.default_rng(0)
    x = rng.normal(size=30).astype(np.float32)
    first = infer.sample(
        0,
        infer.Target.from_numpyro(model, x, y=2 * x),
        infer.nuts(),
        num_chains=2,
        num_samples=50,
        num_warmup=50,
    )
    y = (2 * x + rng.normal(size=30)).astype(np.float32)
    second = infer.sample(
        0,
        infer.Target.from_numpyro(model, x, y=y),
        infer.nuts(),
        num_chains=2,
        num_samples=50,
        num_warmup=50,
    )
    assert not first.info["cache_hit"] and second.info["cache_hit"]
    assert second.timing["compile"] == 0.0
    # the data are arguments, not constants: the second run sees its own data
    assert abs(np.mean(second.draws["noise"]) - np.mean(first.draws["noise"])) > 0.1


def test_a_new_run_can_start_where_a_results_chains_stopped():
    """``init=result.state``: one start per chain, even for a target without ``init``, whose
    (4, 3) positions could otherwise read as one 12-number point."""
    no_init = infer.Target(lambda x: -0.5 * jnp.sum(x**2), name="no_init")
    lengths = {"num_samples": 20, "num_warmup": 40}
    first = infer.sample(0, no_init, infer.rwmh(), init=jnp.zeros(3), num_chains=4, **lengths)
    again = infer.sample(1, no_init, infer.rwmh(), init=first.state, **lengths)
    assert again.draws["x"].shape == (4, 20, 3)
    with pytest.raises(ValueError, match=r"holds 4 chain\(s\); this run has num_chains=2"):
        infer.sample(1, no_init, infer.rwmh(), init=first.state, num_chains=2, **lengths)


@pytest.mark.thorough  # a refusal, 2.7 s
def test_a_state_from_another_targets_run_is_refused_by_shape():
    """``init=result.state`` from a 3-parameter target given to a 5-parameter one: refused
    before compiling, naming both shapes (it used to give draws of the wrong size)."""
    three = infer.Target(lambda x: -0.5 * jnp.sum(x**2), init=jnp.zeros(3), name="three")
    five = infer.Target(lambda x: -0.5 * jnp.sum(x**2), init=jnp.zeros(5), name="five")
    lengths = {"num_samples": 5, "num_warmup": 5}
    first = infer.sample(0, three, infer.rwmh(), num_chains=2, **lengths)
    with pytest.raises(ValueError, match=r"shape \(2, 3\); target 'five' takes .* \(2, 5\)"):
        infer.sample(1, five, infer.rwmh(), init=first.state, **lengths)
    keyed = infer.Target(lambda p: -0.5 * jnp.sum(p["a"] ** 2), init={"a": jnp.zeros(3)})
    with pytest.raises(ValueError, match=r"missing a; not the target.s: \(the whole point\)"):
        infer.sample(1, keyed, infer.rwmh(), init=first.state, **lengths)


def test_concat_of_runs_in_two_precisions_says_so_and_names_every_difference():
    """It showed tree descriptions ("PyTreeDef(*) [3, 'float32']") and left the other
    seed out."""
    single = infer.sample(0, NORMAL_3D, infer.rwmh(), num_samples=10, **RUN)
    with jax.enable_x64(True):
        double = infer.sample(1, NORMAL_3D, infer.rwmh(), num_samples=10, **RUN)
    said = r"draws\['x'\] are float32 in results\[0\] and float64 in results\[1\]: the runs"
    with pytest.raises(ValueError, match=rf"{said} .*jax_enable_x64.*; seed: 0 != 1\.$") as caught:
        infer.concat(single, double)
    assert "PyTreeDef" not in str(caught.value)


def test_concat_refuses_a_first_run_made_again_with_other_options_or_starts():
    """The notebook order: a run, its continuation, then the first cell run again with
    something changed. concat checked only seed, sampler, target, chains and where the draws
    sit, so it joined halves of different chains (and reported the second half's thin and
    settings for the whole); it now compares the runs as resume does, and the values warm-up
    tuned, which a resumed run keeps (NumPyro's NUTS keeps them in its own state)."""
    runs = {}
    for name in ("nuts", "rwmh"):
        made = infer.sample(3, NORMAL_3D, SAMPLERS[name], num_samples=30, **RUN)
        runs[name] = made, infer.sample(3, NORMAL_3D, SAMPLERS[name], num_samples=30, resume=made)
    tuned = r"warm-up-tuned values .* not those results\[0\]'s chains ended with"
    changed = {"num_warmup": 50, "thin": 2}  # with target_accept: each line is said
    said = r"num_warmup: '50' in results\[0\], '40' in results\[1\]; settings\['target_accept"
    said += r"'\]: 0.3 in results\[0\], None in results\[1\]; thin: '2' in results\[0\], '1' in"
    for name, sampler, options, match in [
        ("nuts", infer.nuts(), {"init": jnp.full(3, 2.0)}, tuned),
        ("rwmh", infer.rwmh(), {"init_jitter": 0.5}, tuned),
        ("rwmh", infer.rwmh(target_accept=0.3), changed, said),
    ]:
        again = infer.sample(3, NORMAL_3D, sampler, num_samples=30, **{**RUN, **options})
        with pytest.raises(ValueError, match=r"results\[1\] does not continue .*" + match):
            infer.concat(again, runs[name][1])
    for first, more in runs.values():  # the real pairs
        assert infer.concat(first, more).draws["x"].shape == (3, 60, 3)
    with pytest.raises(ValueError, match="it starts at draw 0 of its chains, and the one"):
        infer.concat(runs["rwmh"][1], runs["rwmh"][0])


def test_a_continuation_of_a_result_keeps_its_draws_and_joins_it():
    """resume=result kept every draw of a run made with keep=["mu"]: concat then refused the
    run and its own continuation (other draw names)."""
    schools = targets.get("eight_schools")
    run = dict(num_chains=2, num_samples=20)
    first = infer.sample(0, schools, infer.rwmh(), num_warmup=100, keep=["mu"], **run)
    more = infer.sample(0, schools, infer.rwmh(), resume=first, **run)
    assert list(more.draws) == ["mu"]
    assert infer.concat(first, more).draws["mu"].shape == (2, 40)


@pytest.mark.thorough  # an edge case, 4 s
def test_a_short_continuation_whose_chain_moved_once_is_not_called_stuck():
    """The chains' moves were judged on the new draws alone: a chain that moved at its first
    step and then stood still for 9 was said never to have moved (with "every proposal was
    rejected", seed 13). Its first new draw is compared with the earlier run's last."""
    target = infer.Target(lambda x: -0.5 * jnp.sum(x**2), init=jnp.zeros(3), name="n3")
    for seed in range(20):
        first = infer.sample(
            seed, target, infer.rwmh(), num_chains=2, num_samples=100, num_warmup=50
        )
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", infer.DiagnosticWarning)
            more = infer.sample(seed, target, infer.rwmh(), num_samples=10, resume=first)
        accepted = np.asarray(more.stats["is_accepted"]).sum(axis=1)
        for chain in more.info.get("stuck_chains", []):
            assert accepted[chain] == 0, (seed, chain, accepted)


@pytest.mark.thorough  # an edge case, 2 s
def test_a_run_resumed_near_its_end_does_not_call_its_chains_stuck(tmp_path):
    # only the draws made since the resume were looked at: chains that rejected their last
    # few proposals were told they "never moved", though they had 99 draws of moves
    folder = tmp_path / "run"
    options = dict(num_chains=8, num_warmup=0, num_samples=100)
    whole = infer.sample(
        0, NORMAL_3D, infer.rwmh(), checkpoint=folder, checkpoint_every=99, **options
    )
    assert whole.info["stuck_chains"] == []
    older = checkpoints.checkpoints(folder)[0]  # at step 99: one step left
    with warnings.catch_warnings():
        warnings.simplefilter("error", infer.DiagnosticWarning)
        again = infer.sample(0, NORMAL_3D, infer.rwmh(), resume=older, **options)
    assert_same(whole, again)
    assert again.info["stuck_chains"] == []
