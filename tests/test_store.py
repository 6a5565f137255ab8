"""Draws that outgrow memory: a run streams its draws into a Zarr store chunk by chunk; the
store opens as an ArviZ DataTree; a killed run's store opens and holds its finished chunks;
``keep`` and ``thin`` cut what is stored."""

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
import pytest
import xarray as xr

import infer
from infer import convergence
from models import targets


def test_a_stored_run_equals_the_run_in_memory(tmp_path):
    target = targets.get("normal_10d")
    in_memory = infer.sample(0, target, infer.rwmh(), num_chains=4, num_samples=1500)
    stored = infer.sample(
        0, target, infer.rwmh(), num_chains=4, num_samples=1500, store=tmp_path / "run.zarr"
    )
    assert stored.draws["x"].shape == (4, 1500, 10)
    np.testing.assert_array_equal(np.asarray(stored.draws["x"]), in_memory.draws["x"])
    for name in in_memory.stats:
        np.testing.assert_array_equal(np.asarray(stored.stats[name]), in_memory.stats[name])
    with warnings.catch_warnings():  # consolidated: xarray reads it without a warning
        warnings.simplefilter("error")
        xr.open_datatree(tmp_path / "run.zarr", engine="zarr")
    tree = infer.open_store(tmp_path / "run.zarr")
    assert set(tree.children) == {"posterior", "sample_stats"}
    assert tree.attrs["sampler"] == "rwmh" and tree.attrs["complete"]
    assert tree["posterior"]["x"].shape == (4, 1500, 10)
    assert stored.to_arviz()["posterior"]["x"].shape == (4, 1500, 10)
    table = infer.compare({"stored": stored}, warn=False)
    assert table.loc["stored", "min_ess_bulk"] > 0
    saved = infer.load(stored.save(tmp_path / "run.nc"))  # NetCDF holds no Zarr bools
    # a store in a new session: read into memory as a Result (it was refused: compare,
    # summary and predictive took no DataTree, and open_store gave only that)
    loaded = infer.load(tmp_path / "run.zarr")
    np.testing.assert_array_equal(loaded.draws["x"], in_memory.draws["x"])
    assert loaded.sampler == "rwmh" and loaded.stats["is_accepted"].dtype == bool
    assert infer.compare({"loaded": loaded}, warn=False).equals(table.rename({"stored": "loaded"}))
    with pytest.raises(ValueError, match=r"ends in .zarr, but save writes NetCDF: name it"):
        stored.save(tmp_path / "copy.zarr")  # it used to write NetCDF under that name
    np.testing.assert_array_equal(saved.draws["x"], in_memory.draws["x"])
    assert saved.stats["is_accepted"].dtype == bool


@pytest.mark.slow  # 10 s: `make test` runs it, `make test-fast` leaves it out
def test_a_parameter_with_no_values_is_stored(tmp_path):
    """A zero-size parameter ran in memory but failed in Zarr's words ("Chunk size must be
    positive"), leaving a store folder that a second try was refused for."""
    target = infer.Target(
        lambda p: -0.5 * jnp.sum(p["a"] ** 2), init={"a": jnp.zeros(2), "e": jnp.zeros(0)}
    )
    stored = infer.sample(
        0, target, infer.rwmh(), num_chains=2, num_samples=7, store=tmp_path / "run.zarr"
    )
    in_memory = infer.sample(0, target, infer.rwmh(), num_chains=2, num_samples=7)
    assert np.shape(stored.draws["e"]) == (2, 7, 0)
    np.testing.assert_array_equal(np.asarray(stored.draws["a"]), in_memory.draws["a"])
    assert infer.load(tmp_path / "run.zarr").to_arviz()["posterior"]["e"].shape == (2, 7, 0)


def test_keep_and_thin_cut_what_is_stored(tmp_path):
    schools = targets.get("eight_schools")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", infer.DiagnosticWarning)
        result = infer.sample(  # the call of docs/running-samplers.md, step for step
            0,
            schools,
            infer.nuts(),
            num_samples=2000,
            store=tmp_path / "s.zarr",
            keep=["mu", "tau"],
            thin=2,
        )
    assert sorted(result.draws) == ["mu", "tau"] and result.draws["mu"].shape == (4, 2000)
    with pytest.raises(ValueError, match=r"lack its latent site\(s\) theta_tilde .* kept only"):
        infer.predictive(result, schools)  # it named only the missing site, not why
    stored = infer.open_store(tmp_path / "s.zarr")["posterior"]
    assert sorted(stored.data_vars) == ["mu", "tau"] and stored["mu"].shape == (4, 2000)
    (tmp_path / "empty").mkdir()
    for not_a_store in (tmp_path / "empty", tmp_path / "s.zarr" / "zarr.json"):
        with pytest.raises(ValueError, match="is not a store written by infer.sample"):
            infer.open_store(not_a_store)
    with pytest.raises(ValueError, match=r"keep names \['sigma'\] that the target does not"):
        infer.sample(0, schools, infer.nuts(), keep=["sigma"])
    with pytest.raises(ValueError, match=r"keep is empty: name at least one of .*'mu'"):
        infer.sample(0, schools, infer.nuts(), keep=[])
    with pytest.raises(ValueError, match=r"holds a run's store already: .* overwrite=True"):
        infer.sample(0, schools, infer.nuts(), store=tmp_path / "s.zarr")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", infer.DiagnosticWarning)
        infer.sample(  # infer's own store, replaced when asked
            0,
            schools,
            infer.nuts(),
            num_samples=50,
            store=infer.ZarrStore(tmp_path / "s.zarr", overwrite=True),
            keep=["tau"],
            thin=2,  # as above: the same compiled program (thin is part of it)
        )
    replaced = infer.open_store(tmp_path / "s.zarr")["posterior"]
    assert list(replaced.data_vars) == ["tau"] and replaced["tau"].shape == (4, 50)
    with pytest.raises(ValueError, match="cannot be combined with checkpoint"):
        infer.sample(0, schools, infer.nuts(), store=tmp_path / "t.zarr", checkpoint=tmp_path / "c")


@pytest.mark.thorough  # until= with keep=, 12 s
def test_a_stopping_rule_stops_a_stored_run_where_it_stops_a_run_in_memory(tmp_path):
    """The rule reads every parameter's unconstrained draws, not only those ``keep`` stores
    (read from the kept ``mu`` alone, this run stopped where ``mu`` alone met the rule)."""
    schools = targets.get("eight_schools")
    rule = infer.converged(rhat=1.01, ess=1500, max_samples=3000)
    options = dict(num_chains=2, num_samples=250, num_warmup=300, until=rule)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", infer.DiagnosticWarning)
        in_memory = infer.sample(0, schools, infer.nuts(), **options)
        stored = infer.sample(
            0, schools, infer.nuts(), store=tmp_path / "u.zarr", keep=["mu"], **options
        )
    stop = in_memory.info["until"]["num_draws"]
    assert stored.info["until"]["num_draws"] == stop
    # where the rule, reading the kept mu alone, would have stopped (1,250 with jax 0.12.0.1,
    # against 2,500): the test tells the two apart whatever the draws
    mu = np.asarray(in_memory.draws["mu"])
    checks = range(250, stop + 1, 250)
    mu_alone = next(n for n in checks if not convergence.shortfalls({"mu": mu[:, :n]}, rule))
    assert mu_alone < stop
    np.testing.assert_array_equal(np.asarray(stored.draws["mu"]), in_memory.draws["mu"])
    tree = infer.open_store(tmp_path / "u.zarr")
    assert sorted(tree["unconstrained_posterior"].data_vars) == ["mu", "tau", "theta_tilde"]


def test_overwrite_replaces_only_a_store_infer_wrote(tmp_path):
    notes = tmp_path / "results" / "notes.txt"
    notes.parent.mkdir()
    notes.write_text("keep me")
    for overwrite in (False, True):  # a folder of other files is never replaced
        with pytest.raises(ValueError, match="holds other files, not a store written by infer"):
            infer.ZarrStore(notes.parent, overwrite=overwrite)
        with pytest.raises(ValueError, match=r"is a file; a store is a folder"):
            infer.ZarrStore(notes, overwrite=overwrite)
    assert notes.read_text() == "keep me"
    (tmp_path / "empty").mkdir()
    assert infer.ZarrStore(tmp_path / "empty").written == 0  # nothing there to lose
    with pytest.raises(TypeError, match="overwrite must be True or False; got 'False'"):
        infer.ZarrStore(tmp_path / "empty", overwrite="False")  # it replaced a store


CHILD = textwrap.dedent(
    """
    import functools, io, sys
    from tqdm import tqdm
    import infer
    from models import targets
    bar = functools.partial(tqdm, file=io.StringIO())
    infer.sample(0, targets.get("normal_10d"), infer.rwmh(), num_chains=4, num_samples=200_000,
                 store=sys.argv[1], progress=bar)
    """
)


def draws_written(zarr, path) -> int:
    """Draws the child has stored so far; 0 while it is still creating the store (the folder
    can exist before the group's metadata does: zarr raises GroupNotFoundError, a ValueError,
    or reads half-written JSON)."""
    try:
        return zarr.open_group(path, mode="r").attrs.get("draws_written", 0)
    except (FileNotFoundError, ValueError):
        return 0


@pytest.mark.slow  # a subprocess killed mid-run, 8 s: `make test` runs it, `make test-fast` not
def test_a_killed_run_leaves_a_store_that_opens_with_its_finished_chunks(tmp_path):
    import zarr

    target = targets.get("normal_10d")
    # The default warm-up, as the other files' runs of RWMH on normal_10d: the compiled
    # programs are found in the run's compilation cache, here and in the child.
    reference = infer.sample(0, target, infer.rwmh(), num_chains=4, num_samples=200_000)
    path = tmp_path / "killed.zarr"
    child = subprocess.Popen([sys.executable, "-c", CHILD, str(path)])
    try:
        deadline = time.monotonic() + 300
        while child.poll() is None:
            assert time.monotonic() < deadline
            if draws_written(zarr, path):
                break
            time.sleep(0.02)
        time.sleep(random.Random(1).uniform(0.0, 0.3))
        os.kill(child.pid, signal.SIGKILL)
    finally:
        child.wait()
    with pytest.warns(UserWarning, match="holds an unfinished run"):
        tree = infer.open_store(path)
    written = tree["posterior"]["x"].shape[1]
    assert 0 < written < 200_000, "the kill did not land while the run was writing"
    np.testing.assert_array_equal(tree["posterior"]["x"].values, reference.draws["x"][:, :written])
    assert (tree.attrs["thin"], tree.attrs["num_warmup"]) == (1, 1000)  # what its draws are
    # infer.load reads finished stores: this one is refused with its reason and the way on
    # (it called the store "a NetCDF file but not a run saved by infer.Result.save")
    with pytest.raises(ValueError, match=rf"holds an unfinished run .* first {written} draws"):
        infer.load(path)


@pytest.mark.thorough  # a NumPyro model's groups in a store, 8 s; a store equal to the run stays
def test_a_stored_numpyro_run_keeps_what_model_comparison_needs(tmp_path):
    """The store of a NumPyro target's run holds ``log_likelihood`` (written chunk by chunk,
    equal to the run in memory's), ``observed_data`` and ``constant_data``, with the plates'
    dimension names, so LOO and infer.compare read it as they read the run in memory."""
    target = targets.get("eight_schools")
    run = dict(num_chains=2, num_samples=150, num_warmup=150)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", infer.DiagnosticWarning)
        in_memory = infer.sample(0, target, infer.rwmh(), **run)
        stored = infer.sample(0, target, infer.rwmh(), store=tmp_path / "run.zarr", **run)
    tree = stored.to_arviz()
    assert {"log_likelihood", "observed_data", "constant_data"} <= set(tree.children)
    np.testing.assert_array_equal(
        tree["log_likelihood"]["y"].values, in_memory.groups["log_likelihood"]["y"]
    )
    assert tree["log_likelihood"]["y"].dims == ("chain", "draw", "schools")
    np.testing.assert_array_equal(
        tree["observed_data"]["y"].values, in_memory.groups["observed_data"]["y"]
    )
    table = infer.compare({"memory": in_memory, "store": stored}, warn=False)
    assert table.loc["store", "elpd_loo"] == table.loc["memory", "elpd_loo"]


def test_a_stored_numpyro_model_without_observations_runs(tmp_path):
    """No observed site: no log likelihood to write, and nothing fails for the lack of it."""
    import numpyro
    import numpyro.distributions as dist

    def prior_only():
        numpyro.sample("a", dist.Normal(0.0, 1.0))

    target = infer.Target.from_numpyro(prior_only)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", infer.DiagnosticWarning)
        result = infer.sample(
            0,
            target,
            infer.rwmh(),
            num_chains=2,
            num_samples=50,
            num_warmup=50,
            store=tmp_path / "run.zarr",
        )
    assert "log_likelihood" not in result.to_arviz().children
    assert result.to_arviz()["posterior"]["a"].shape == (2, 50)


@pytest.mark.thorough  # plots of a reopened store
def test_a_stored_run_has_the_coordinates_arviz_plots_select_by(tmp_path):
    """A reopened store has index coordinates on chain, draw and plate dimensions, as
    ArviZ's converters give: its rank, autocorrelation and trace plots select by them (each
    raised on a store without them)."""
    import arviz as az
    import matplotlib

    matplotlib.use("Agg")
    schools = targets.get("eight_schools")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", infer.DiagnosticWarning)
        result = infer.sample(
            0, schools, infer.rwmh(), num_samples=60, num_warmup=60, store=tmp_path / "s.zarr"
        )
        in_memory = infer.sample(0, schools, infer.rwmh(), num_samples=60, num_warmup=60)
    tree = infer.open_store(tmp_path / "s.zarr")
    # the variables come in the order the run made them (Zarr lists them by name): the
    # first panels of a plot are the same for a stored run as for a run in memory
    assert list(result.draws) == list(in_memory.draws) == list(tree["posterior"].data_vars)
    assert list(result.stats) == list(in_memory.stats)
    assert "mu" in list(result.draws)[:2]
    posterior = tree["posterior"]
    np.testing.assert_array_equal(posterior["chain"], np.arange(4))
    np.testing.assert_array_equal(posterior["draw"], np.arange(60))
    np.testing.assert_array_equal(posterior["schools"], np.arange(8))
    assert float(posterior["theta"].sel(schools=2, chain=1, draw=5)) == float(
        result.draws["theta"][1, 5, 2]
    )
    for kind in ("rank", "autocorr"):
        infer.plot(result, kind=kind, path=tmp_path / f"{kind}.png")
        assert (tmp_path / f"{kind}.png").stat().st_size > 0
    az.plot_rank(tree, var_names=["mu"])
    az.plot_autocorr(tree, var_names=["mu"])


def test_a_store_given_to_a_second_run_is_replaced_or_refused(tmp_path):
    target = targets.get("normal_1d")
    options = {"num_chains": 2, "num_samples": 100, "num_warmup": 50}
    store = infer.ZarrStore(tmp_path / "run.zarr", overwrite=True)
    first = infer.sample(0, target, infer.rwmh(), store=store, **options)
    first.to_arviz()  # a tree built before: it showed the first run's statistics after
    first.save(tmp_path / "first.nc")
    second = infer.sample(1, target, infer.rwmh(), store=store, **dict(options, num_samples=10))
    in_memory = infer.sample(1, target, infer.rwmh(), **dict(options, num_samples=10))
    np.testing.assert_array_equal(np.asarray(second.draws["x"]), in_memory.draws["x"])
    # the first result's draws are gone, and it says so (a reshape error deep in zarr was
    # raised, or the old tree's numbers were shown)
    for read in (lambda: first.draws["x"], lambda: infer.summary(first), first.to_arviz):
        with pytest.raises(ValueError, match="which a later run replaced .* Save a result"):
            read()
    assert "draws gone" in repr(first)
    assert infer.load(tmp_path / "first.nc").draws["x"].shape == (2, 100)  # saved: kept
    assert infer.open_store(tmp_path / "run.zarr").attrs["seed"] == "1"  # attributes are text
    once = infer.ZarrStore(tmp_path / "once.zarr")
    infer.sample(0, target, infer.rwmh(), store=once, **options)
    with pytest.raises(ValueError, match=r"holds a run already: give each run its own store"):
        infer.sample(1, target, infer.rwmh(), store=once, **options)


def test_a_store_path_starting_with_a_tilde_is_in_the_home_folder(tmp_path, monkeypatch):
    monkeypatch.setenv("HOME", str(tmp_path / "home"))
    monkeypatch.chdir(tmp_path)
    options = {"num_chains": 2, "num_samples": 100, "num_warmup": 50}
    result = infer.sample(0, targets.get("normal_1d"), infer.rwmh(), store="~/run.zarr", **options)
    assert (tmp_path / "home" / "run.zarr").is_dir() and not (tmp_path / "~").exists()
    assert np.asarray(result.draws["x"]).shape == (2, 100)
    assert infer.open_store("~/run.zarr")["posterior"]["x"].shape == (2, 100)


def test_a_relative_store_path_is_read_from_where_it_was_written(tmp_path, monkeypatch):
    """A store given by a relative path, read after the working folder changed, gave draws
    all NaN without a word (Zarr's fill value: the arrays resolved the path anew)."""
    (tmp_path / "a").mkdir(), (tmp_path / "b").mkdir()
    monkeypatch.chdir(tmp_path / "a")
    options = {"num_chains": 2, "num_samples": 30, "num_warmup": 50}
    target = targets.get("normal_1d")
    stored = infer.sample(0, target, infer.rwmh(), store="run.zarr", **options)
    in_memory = infer.sample(0, target, infer.rwmh(), **options)
    monkeypatch.chdir(tmp_path / "b")
    np.testing.assert_array_equal(np.asarray(stored.draws["x"]), in_memory.draws["x"])
    np.testing.assert_array_equal(np.asarray(stored.stats["lp"]), in_memory.stats["lp"])


def test_checkpoints_refuse_a_folder_of_other_files(tmp_path):
    """checkpoint= a folder of a user's notes wrote the run's files among them, where store=
    refuses such a folder; resuming a folder keeps working whatever sits beside it."""
    target = targets.get("normal_1d")
    options = {"num_chains": 2, "num_samples": 50, "num_warmup": 20}
    folder = tmp_path / "notes"
    folder.mkdir()
    (folder / "notes.txt").write_text("keep me")
    with pytest.raises(ValueError, match=r"checkpoint=.*notes' holds files of its own \(notes"):
        infer.sample(0, target, infer.rwmh(), checkpoint=folder, **options)
    assert [p.name for p in folder.iterdir()] == ["notes.txt"]
    looks_empty = tmp_path / "looks_empty"  # a file manager's files are not the user's
    looks_empty.mkdir()
    (looks_empty / ".DS_Store").write_bytes(b"")
    (looks_empty / "Thumbs.db").write_bytes(b"")
    infer.sample(0, target, infer.rwmh(), checkpoint=looks_empty, **options)
    run = tmp_path / "run.ckpt"
    done = infer.sample(0, target, infer.rwmh(), checkpoint=run, **options)
    (run / "notes.txt").write_text("mine")
    again = infer.sample(0, target, infer.rwmh(), resume=run, checkpoint=run, **options)
    np.testing.assert_array_equal(again.draws["x"], done.draws["x"])


def test_overwrite_keeps_files_of_the_users_beside_a_store_and_checkpoints_stay_out(tmp_path):
    """zarr's mode="w" cleared the whole folder: a user's notes and figures beside a store
    were deleted by overwrite=True. A store folder also took checkpoints (checkpoint=), and
    resuming from a store advised exactly that."""
    target = targets.get("normal_1d")
    options = {"num_chains": 2, "num_samples": 50, "num_warmup": 20}
    path = tmp_path / "run.zarr"
    infer.sample(0, target, infer.rwmh(), store=path, **options)
    (path / "notes.txt").write_text("keep me")
    (path / "figures").mkdir()
    with pytest.raises(ValueError, match=r"also holds figures, notes.txt, which replacing"):
        infer.sample(
            0, target, infer.rwmh(), store=infer.ZarrStore(path, overwrite=True), **options
        )
    assert (path / "notes.txt").read_text() == "keep me" and (path / "figures").is_dir()
    with pytest.raises(ValueError, match=r"holds a run's Zarr store \(store=\); checkpoints go"):
        infer.sample(0, target, infer.rwmh(), checkpoint=path, **options)
    with pytest.raises(FileNotFoundError, match=r"it is a Zarr store of draws.*infer.open_store"):
        infer.sample(0, target, infer.rwmh(), resume=path, **options)
    assert sorted(p.name for p in path.iterdir()) == [
        "figures",
        "notes.txt",
        "posterior",
        "sample_stats",
        "zarr.json",
    ]


@pytest.mark.thorough  # an argument's form, 2 s
def test_keep_may_be_any_iterable_of_names_and_is_read_once():
    """A generator was used up by the check and then kept nothing; keep=5 raised Python's
    'int' object is not iterable."""
    options = {"num_chains": 2, "num_samples": 20, "num_warmup": 20}
    target = targets.get("eight_schools")
    result = infer.sample(0, target, infer.rwmh(), keep=(n for n in ["mu", "tau"]), **options)
    assert list(result.draws) == ["mu", "tau"]
    with pytest.raises(TypeError, match=r"keep must be a list of draw names.*got 5"):
        infer.sample(0, target, infer.rwmh(), keep=5, **options)


@pytest.mark.thorough  # an edge case, 6 s
def test_keep_takes_its_names_from_one_start_whatever_form_init_has():
    """keep was checked against init as given: starts per chain crashed in JAX's broadcasting,
    a list of points per chain was read as draws named 'theta' or '0' and '1' and refused."""
    options = {"num_chains": 2, "num_samples": 10, "num_warmup": 20}
    schools = targets.get("eight_schools")
    per_chain = jax.tree.map(lambda leaf: np.stack([np.asarray(leaf)] * 2), schools.init)
    for init in (per_chain, [schools.init, schools.init]):
        with warnings.catch_warnings():  # 20 steps of warm-up: a chain may not move
            warnings.simplefilter("ignore")
            result = infer.sample(0, schools, infer.rwmh(), init=init, keep=["mu"], **options)
        assert list(result.draws) == ["mu"] and result.draws["mu"].shape == (2, 10)
    plain = infer.Target(lambda x: -0.5 * jnp.sum(x**2), name="no_init")
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        result = infer.sample(0, plain, infer.rwmh(), init=[0.0, 0.0], keep=["x"], **options)
    assert result.draws["x"].shape == (2, 10, 2)
    assert len(caught) == len({str(w.message) for w in caught})  # each warning once
    with pytest.raises(ValueError, match=r"keep names \['y'\].*its draws are \['x'\]"):
        infer.sample(0, plain, infer.rwmh(), init=[0.0, 0.0], keep=["y"], **options)


def test_a_resume_with_another_target_blames_the_resumed_runs_keep_not_the_call():
    """The resumed run's keep was checked against the new target as if the call had passed
    it ("keep names ['mu'] that the target does not report"); unchecked, a target reporting
    other names (which the resume's fingerprint does not see) gave a result of no draws."""
    options = {"num_chains": 2, "num_samples": 10, "num_warmup": 20}
    first = infer.sample(0, targets.get("eight_schools"), infer.rwmh(), keep=["mu"], **options)
    with pytest.raises(ValueError, match=r"resume: the resumed run kept only the draws \['mu'\]"):
        infer.sample(0, targets.get("normal_10d"), infer.rwmh(), resume=first, num_samples=10)

    def renamed(names):
        def constrain(x):
            return dict(zip(names, x, strict=True))

        return infer.Target(
            lambda x: -0.5 * jnp.sum(x**2), init=jnp.zeros(2), constrain_fn=constrain, name="t"
        )

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        kept = infer.sample(0, renamed(["a", "b"]), infer.rwmh(), keep=["a"], **options)
    with pytest.raises(ValueError, match=r"target 't' does not report \['a'\]: its draws are"):
        infer.sample(0, renamed(["c", "b"]), infer.rwmh(), resume=kept, num_samples=5)
    more = infer.sample(0, targets.get("eight_schools"), infer.rwmh(), resume=first, num_samples=5)
    assert list(more.draws) == ["mu"] and more.draws["mu"].shape == (2, 5)


@pytest.mark.thorough  # an edge case, 2 s
def test_a_result_whose_store_another_process_replaced_or_deleted_says_so(tmp_path):
    """Replaced by a run in another process (which the in-process check cannot see), the
    result read that run's draws, and saved them, as its own; deleted, it read NaN."""
    import json
    import shutil

    path = tmp_path / "run.zarr"
    target = targets.get("normal_10d")
    result = infer.sample(0, target, infer.rwmh(), num_chains=2, num_samples=20, store=path)
    assert np.asarray(result.draws["x"]).shape == (2, 20, 10)
    root = json.loads((path / "zarr.json").read_text())
    root["attributes"]["run_id"] = "another process's run"  # what its ZarrStore.open writes
    (path / "zarr.json").write_text(json.dumps(root))
    for read in (lambda: result.draws["x"], lambda: result.save(tmp_path / "run.nc")):
        with pytest.raises(ValueError, match="holds another run's draws now"):
            read()
    shutil.rmtree(path)
    with pytest.raises(ValueError, match=r"is gone \(deleted\?\)"):
        infer.summary(result)


def test_the_checks_after_a_stored_run_read_it_in_blocks_and_still_warn(tmp_path, monkeypatch):
    """After a stored run, the float32 check read every draw into memory at once (to learn
    their dtype), the store's whole point lost; and it never looked at the stored lp, so a
    log density too large for float32's resolution went unwarned. Reads are now one block
    of draws at a time (here made 4 kB), and the warning comes as for a run in memory."""
    import zarr

    from infer import draw_blocks

    largest = []
    plain_read = zarr.Array.__getitem__

    def read(self, selection):
        values = plain_read(self, selection)
        largest.append(getattr(values, "nbytes", 0))
        return values

    offset = infer.Target(lambda x: -0.5 * jnp.sum(x**2) - 1e7, init=jnp.zeros(8), name="far")
    run = dict(num_chains=4, num_samples=2000, num_warmup=100)
    monkeypatch.setattr(draw_blocks, "BLOCK_BYTES", 4096)
    monkeypatch.setattr(zarr.Array, "__getitem__", read)
    with pytest.warns(infer.DiagnosticWarning, match="float32"):
        stored = infer.sample(0, offset, infer.rwmh(), store=tmp_path / "run.zarr", **run)
    assert max(largest) <= 4096 + 4 * 8 * 4  # a block, never the draws (256 kB) or the stats
    monkeypatch.setattr(zarr.Array, "__getitem__", plain_read)
    assert stored.num_divergent == 0 and int(np.isnan(np.asarray(stored.stats["lp"])).sum()) == 0


def test_a_stored_runs_stuck_chains_are_read_in_one_pass(tmp_path, monkeypatch):
    """Why chains never moved reads their acceptance rates: one read of the store per stuck
    chain, each decompressing every chunk (8,000 stuck chains took 10.7 s)."""
    import zarr

    reads = []
    plain_read = zarr.Array.__getitem__

    def read(self, selection):
        reads.append(self.path)
        return plain_read(self, selection)

    walled = infer.Target(lambda x: jnp.where(jnp.all(x == 0.0), 0.0, -jnp.inf), init=jnp.zeros(2))
    monkeypatch.setattr(zarr.Array, "__getitem__", read)
    with pytest.warns(infer.DiagnosticWarning, match=r"never moved"):
        run = dict(num_chains=64, num_samples=50, num_warmup=10, init_jitter=0)
        infer.sample(0, walled, infer.rwmh(), store=tmp_path / "run.zarr", **run)
    assert sum(path.endswith("acceptance_rate") for path in reads) < 8
