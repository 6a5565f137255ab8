"""Saving a run to NetCDF and loading it back: bit-exact, atomic, and clear about bad files."""

import os
import warnings

import numpy as np
import pytest
import xarray as xr

import infer
from infer.io import write_atomically
from infer.report import write_report
from models import targets


@pytest.fixture(scope="module")
def run():
    return infer.sample(
        4,
        targets.get("eight_schools"),
        infer.nuts(),
        num_chains=2,
        num_samples=200,
    )  # the default warm-up: the programs of test_plots' and test_memory's run of NUTS here


def test_round_trip_is_bit_exact(run, tmp_path):
    path = run.save(tmp_path / "run.nc")
    loaded = infer.load(path)
    assert list(loaded.draws) == list(run.draws) and list(loaded.stats) == list(run.stats)
    for group, original in (("draws", run.draws), ("stats", run.stats)):
        for name, values in original.items():
            back = getattr(loaded, group)[name]
            assert back.dtype == values.dtype, (group, name)
            np.testing.assert_array_equal(back, values)
    assert loaded.timing == run.timing
    assert loaded.settings == run.settings
    assert loaded.seed == run.seed == 4
    assert loaded.info == run.info
    assert (loaded.sampler, loaded.target, loaded.num_warmup, loaded.thin) == (
        run.sampler,
        run.target,
        run.num_warmup,
        run.thin,
    )
    assert loaded.num_grad_evals == run.num_grad_evals
    assert loaded.ground_truth.source == run.ground_truth.source
    for name in run.ground_truth.mean:
        np.testing.assert_array_equal(loaded.ground_truth.mean[name], run.ground_truth.mean[name])
    versions = __import__("json").loads(xr.open_datatree(path, engine="h5netcdf").attrs["versions"])
    assert set(versions) >= {"infer", "jax", "numpyro", "arviz_base"}


def test_a_loaded_run_keeps_the_versions_that_made_it(tmp_path):
    """infer.load dropped the file's versions: the loaded run's DataTree, and a file saved
    again from it, said the installed versions had made it."""
    import json

    rng = np.random.default_rng(0)
    old = {"infer": "0.0.9", "jax": "0.4.0"}
    made = infer.Result.from_draws({"x": rng.normal(size=(2, 50))})
    assert made.versions is None  # this process's: the installed ones are recorded
    assert json.loads(made.to_arviz().attrs["versions"]) == infer.version.versions()
    path = made.save(tmp_path / "run.nc")
    tree = xr.open_datatree(path, engine="h5netcdf")
    tree.attrs["versions"] = json.dumps(old)
    tree.to_netcdf(tmp_path / "old.nc", engine="h5netcdf")
    loaded = infer.load(tmp_path / "old.nc")
    assert loaded.versions == old
    assert json.loads(loaded.to_arviz().attrs["versions"]) == old
    assert infer.load(loaded.save(tmp_path / "again.nc")).versions == old
    # joined with a run of today's versions: each package's versions, in order
    later = infer.Result.from_draws({"x": rng.normal(size=(2, 50))})
    joined = infer.concat(loaded, later).versions
    assert joined["infer"] == f"0.0.9 + {infer.version.versions()['infer']}"
    assert joined["numpyro"] == f"? + {infer.version.versions()['numpyro']}"


@pytest.mark.thorough  # a loaded run compared, 4 s; the bit-exact round trip stays
def test_loaded_runs_compare_like_fresh_ones(run, tmp_path):
    loaded = infer.load(run.save(tmp_path / "run.nc"))
    fresh = infer.compare({"a": run}, warn=False)
    again = infer.compare({"a": loaded}, warn=False)
    assert fresh.equals(again)


def test_truncated_file_gives_a_clear_error(run, tmp_path):
    path = run.save(tmp_path / "run.nc")
    data = path.read_bytes()
    path.write_bytes(data[: len(data) // 2])
    with pytest.raises(ValueError, match=r"could not read .*run.nc: it is truncated or not"):
        infer.load(path)


def test_a_file_that_is_not_netcdf(tmp_path):
    path = tmp_path / "notes.nc"
    path.write_text("not a netcdf file")
    with pytest.raises(ValueError, match="truncated or not a NetCDF file"):
        infer.load(path)


def test_a_netcdf_file_not_written_by_infer(tmp_path):
    path = tmp_path / "other.nc"
    tree = xr.DataTree.from_dict({"posterior": xr.Dataset({"x": ("draw", np.zeros(3))})})
    tree.to_netcdf(path, engine="h5netcdf")
    with pytest.raises(ValueError, match=r"not a run saved by infer.Result.save"):
        infer.load(path)


def _saved_with(run, path, **attrs):
    """``run`` saved to ``path`` with its root attributes changed (``None`` deletes one)."""
    tree = xr.open_datatree(run.save(path), engine="h5netcdf").load()
    for name, value in attrs.items():
        if value is None:
            del tree.attrs[name]
        else:
            tree.attrs[name] = value
    changed = path.with_name("changed.nc")
    tree.to_netcdf(changed, engine="h5netcdf")
    return changed


@pytest.mark.parametrize(
    "attrs, match",
    [  # the damaged files (1 s each): make test-thorough
        ({"infer_format": "infer.Result/2"}, r"saved by another version of infer .*Result/2"),
        pytest.param(
            {"timing": None},
            r"is damaged: the run's attribute 'timing' is missing\. Its draws",
            marks=pytest.mark.thorough,
        ),
        pytest.param(
            {"info": "{not json"},
            r"is damaged: the run's attributes cannot be read \(JSONDecode",
            marks=pytest.mark.thorough,
        ),
    ],
    ids=["other-version", "missing-attribute", "bad-json"],
)
def test_a_file_of_another_version_or_with_damaged_attributes(run, tmp_path, attrs, match):
    with pytest.raises(ValueError, match=match):
        infer.load(_saved_with(run, tmp_path / "run.nc", **attrs))


def test_missing_file(tmp_path):
    with pytest.raises(FileNotFoundError, match="no file at"):
        infer.load(tmp_path / "nothing.nc")


def test_a_path_with_a_tilde_goes_to_the_home_folder(run, tmp_path, monkeypatch):
    monkeypatch.setenv("HOME", str(tmp_path / "home"))
    monkeypatch.chdir(tmp_path)
    path = run.save("~/runs/a.nc")
    assert path == tmp_path / "home" / "runs" / "a.nc" and path.is_file()
    assert not (tmp_path / "~").exists()  # no folder literally named ~
    assert infer.load("~/runs/a.nc").num_chains == run.num_chains


def test_paths_that_are_no_file_are_refused_before_writing(run, tmp_path):
    (tmp_path / "a_file.nc").write_bytes(b"x")
    cases = [
        (tmp_path, ValueError, "is a folder"),
        ("", ValueError, "path is empty"),
        (tmp_path / "a_file.nc" / "inside.nc", ValueError, "which is a file, not a folder"),
        (None, TypeError, "must be a file path .* got NoneType"),
    ]
    for path, error, match in cases:
        with pytest.raises(error, match=match):
            run.save(path)
    with pytest.raises(TypeError, match="got Result"):
        infer.load(run)
    with pytest.raises(ValueError, match="must end in .png .*'.pdf'"):
        infer.plot(run, "trace", path=tmp_path / "trace.pdf")
    assert sorted(p.name for p in tmp_path.iterdir()) == ["a_file.nc"]


def test_interrupted_write_leaves_the_old_file_and_no_debris(run, tmp_path):
    path = run.save(tmp_path / "run.nc")
    before = path.read_bytes()

    def interrupted(tmp):
        with open(tmp, "wb") as f:
            f.write(b"half")
        raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        write_atomically(path, interrupted)
    assert path.read_bytes() == before
    assert [p.name for p in tmp_path.iterdir()] == ["run.nc"]


def test_a_saved_file_reaches_the_disk_before_its_rename_and_the_rename_after(
    run, tmp_path, monkeypatch
):
    """A power cut right after ``save`` returned could leave an empty file under the new name
    (the rename written before the bytes) or the old file (the rename never written)."""
    events = []
    fsync, replace = os.fsync, os.replace
    monkeypatch.setattr(
        os,
        "fsync",
        lambda fd: events.append(("fsync", os.readlink(f"/proc/self/fd/{fd}"))) or fsync(fd),
    )
    monkeypatch.setattr(
        os, "replace", lambda a, b: events.append(("replace", str(b))) or replace(a, b)
    )
    path = run.save(tmp_path / "run.nc")
    kinds = [kind for kind, _ in events]
    assert kinds == ["fsync", "replace", "fsync"], events
    assert events[0][1].endswith(".tmp") and events[1][1] == str(path)
    assert events[2][1] == str(tmp_path)  # the folder: its entry for the new name


def test_results_made_elsewhere_save_and_load(tmp_path):
    draws = {"mu": np.random.default_rng(0).standard_normal((3, 50)).astype(np.float32)}
    result = infer.Result.from_draws(draws, stats={"diverging": np.zeros((3, 50), bool)})
    loaded = infer.load(result.save(tmp_path / "external.nc"))
    np.testing.assert_array_equal(loaded.draws["mu"], draws["mu"])
    assert loaded.stats["diverging"].dtype == bool
    assert np.isnan(loaded.timing["sampling"])


@pytest.mark.parametrize(
    "draws, stats, error, match",
    [
        ({"chain": np.zeros((2, 5))}, None, TypeError, "'chain' and 'draw'; got 'chain'"),
        ({"a/b": np.zeros((2, 5))}, None, TypeError, "without '/'"),
        ({"z": np.zeros((2, 5), complex)}, None, TypeError, "must be real numbers; got dtype"),
        ({"x": np.zeros((0, 5))}, None, ValueError, "at least one of each"),
        ({"x": np.zeros((2, 5))}, {"diverging": np.full((2, 5), 0.5)}, ValueError, "True/False"),
        # each of these was accepted, then lost without a word or refused by h5py or Zarr
        ({"x": np.zeros((2, 5)), "..": np.zeros((2, 5))}, None, TypeError, "got '..', which"),
        ({"x": np.zeros((2, 5)), ".": np.zeros((2, 5))}, None, TypeError, "got '.', which"),
        (
            {"x": np.zeros((2, 5, 3)), "x_dim_0": np.zeros((2, 5))},
            None,
            ValueError,
            "ArviZ would name an axis of 'x' 'x_dim_0'",
        ),
        ({"x": np.zeros((2, 5))}, {"chain": np.ones((2, 5))}, TypeError, "stat names must"),
        ({"x": np.zeros((2, 5))}, {"a/b": np.ones((2, 5))}, TypeError, "got 'a/b', which"),
    ],
)
def test_draws_made_elsewhere_that_arviz_could_not_hold_are_refused(draws, stats, error, match):
    with pytest.raises(error, match=match):
        infer.Result.from_draws(draws, stats=stats)


def _refused(error, match, draws=None, **options):
    with pytest.raises(error, match=match):
        infer.Result.from_draws({"x": np.zeros((4, 100))} if draws is None else draws, **options)


def test_the_rest_of_a_result_made_elsewhere_is_checked_by_name():
    """Each of these was accepted, to fail later with numpy's or h5py's words (or never)."""
    zeros = np.zeros((4, 100))
    _refused(TypeError, "ground_truth must be an infer.GroundTruth", ground_truth={"x": 0.0})
    _refused(TypeError, "stats must be a dict name -> array", stats=zeros)
    _refused(TypeError, "sampler must be a non-empty string", sampler=3)
    _refused(TypeError, "target must be a non-empty string", target=None)
    _refused(ValueError, r"timing\['sample'\] is not one of", timing={"sample": 3.0})
    _refused(ValueError, r"draws\['x'\] is not an array", draws={"x": [[1, 2, 3], [2, 3]]})
    _refused(ValueError, "acceptance probability", stats={"acceptance_rate": zeros + 7})
    rates = np.where(np.eye(4, 100, dtype=bool), np.nan, 0.5)  # NaN: unknown, allowed
    assert infer.Result.from_draws({"x": zeros}, stats={"acceptance_rate": rates}).stats


def test_draws_laid_out_draws_first_are_warned_about_and_many_short_chains_may_say_so():
    """emcee's get_chain() is (steps, walkers, ndim): read as chains, 2,000 chains of 32
    AR(1) draws give an ESS above the number of draws and an MCSE seven times too small."""
    steps_first = np.zeros((2000, 32))
    with pytest.warns(UserWarning, match=r"np.swapaxes\(array, 0, 1\)"):
        infer.Result.from_draws({"x": steps_first})
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        infer.Result.from_draws({"x": steps_first}, info={"superchains": 500})
        infer.Result.from_draws({"x": np.zeros((4, 3))})  # a few chains of a few draws
        infer.Result.from_draws({"x": steps_first.T})


@pytest.mark.parametrize("name", ["run.csv", "run.json", "run.png"])
def test_save_refuses_a_name_of_another_format(name, tmp_path):
    result = infer.Result.from_draws({"x": np.zeros((2, 5))})
    with pytest.raises(ValueError, match="save writes NetCDF"):
        result.save(tmp_path / name)
    assert not list(tmp_path.iterdir())
    assert infer.load(result.save(tmp_path / "run.h5")).num_samples == 5


@pytest.mark.parametrize("name", ["../escaped", "", ".hidden", "a\\b"])
def test_a_run_name_that_is_no_file_name_is_refused_before_writing(name, tmp_path):
    from infer.report import write_report

    result = infer.Result.from_draws({"x": np.zeros((2, 5))})
    with pytest.raises(ValueError, match="run names become file names in the report"):
        write_report({name: result}, None, tmp_path / "report")
    assert not (tmp_path / "report").exists() and not (tmp_path / "escaped.nc").exists()


def test_the_report_says_which_statistics_made_its_table(tmp_path):
    from infer.report import as_markdown

    draws = np.random.default_rng(1).standard_normal((2, 200, 2))
    runs = {"run": infer.Result.from_draws({"x": draws})}
    assert "from arviz_stats" in as_markdown(infer.compare(runs, warn=False, statistics="arviz"))
    assert "from JAX" in as_markdown(infer.compare(runs, warn=False))


def test_a_report_written_over_an_earlier_one_names_the_files_it_does_not_cover(tmp_path):
    draws = np.random.default_rng(2).standard_normal((2, 100))
    first = {"a": infer.Result.from_draws({"x": draws})}
    second = {"b": infer.Result.from_draws({"x": draws})}
    write_report(first, infer.compare(first, warn=False), tmp_path, plots=False)
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # a fresh folder, or the same runs again: nothing to say
        write_report(first, infer.compare(first, warn=False), tmp_path, plots=False)
    with pytest.warns(UserWarning, match=r"does not cover, from an earlier one: a\.nc\. They"):
        write_report(second, infer.compare(second, warn=False), tmp_path, plots=False)
    assert (tmp_path / "a.nc").exists()  # left alone
    (tmp_path / "beside_sbc").mkdir()
    (tmp_path / "beside_sbc" / "sbc_nuts.png").write_bytes(b"")  # `infer sbc`'s, same folder
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # not an earlier report's: nothing to say
        write_report(first, infer.compare(first, warn=False), tmp_path / "beside_sbc", plots=False)


def test_a_report_checks_its_table_and_folder_against_the_runs(tmp_path):
    """A table of other runs (or of renamed ones) was written beside the runs' files, and
    table=None or a folder that is a file failed with AttributeError / FileExistsError."""
    from infer.report import write_report

    draws = np.random.default_rng(3).standard_normal((2, 100))
    a, b = infer.Result.from_draws({"x": draws}), infer.Result.from_draws({"x": draws + 1})
    table = infer.compare({"a": a}, warn=False)
    with pytest.raises(ValueError, match=r"table has rows \['a'\] but results are \['a', 'b'\]"):
        write_report({"a": a, "b": b}, table, tmp_path / "r1", plots=False)
    with pytest.raises(ValueError, match=r"rows \['a'\] but results are \['b'\]"):
        write_report({"b": a}, table, tmp_path / "r2", plots=False)
    with pytest.raises(TypeError, match="table must be infer.compare.*got NoneType"):
        write_report({"a": a}, None, tmp_path / "r3", plots=False)
    ranked = infer.compare({"a": a, "b": b}, warn=False).sort_values("min_ess_bulk")
    assert write_report({"a": a, "b": b}, ranked, tmp_path / "sorted", plots=False).exists()
    (tmp_path / "file").write_text("")
    with pytest.raises(ValueError, match="is a file; the report goes into a folder"):
        write_report({"a": a}, table, tmp_path / "file", plots=False)
    assert not any((tmp_path / name).exists() for name in ("r1", "r2", "r3"))


def test_saving_into_a_folder_this_user_cannot_write_says_so(run, tmp_path, monkeypatch):
    """It raised the OS's PermissionError on a hidden temporary name (``.r.nc.zrv6y.tmp``),
    where checkpoints and stores said what to do. The test runs as a user who can write
    anywhere, so the folder is made unwritable by patching the access check asked."""
    import os

    real_access = os.access
    monkeypatch.setattr(os, "access", lambda p, mode: mode != os.W_OK and real_access(p, mode))
    with pytest.raises(PermissionError, match=r"cannot write '.*r\.nc': '.*' cannot be written"):
        run.save(tmp_path / "r.nc")
    assert list(tmp_path.iterdir()) == []


def test_groups_beside_arviz_s_survive_a_load_and_a_save(tmp_path):
    """load read ArviZ's groups only: a store's unconstrained_posterior (what until= reads)
    was dropped, and a loaded run saved again lost it."""
    run = infer.sample(
        0,
        targets.get("normal_10d"),
        infer.rwmh(),
        num_chains=2,
        num_warmup=100,
        num_samples=100,
        until=infer.converged(rhat=1.5, ess=10, max_samples=200),
        store=tmp_path / "run.zarr",
    )
    run.save(tmp_path / "run.nc")
    loaded = infer.load(tmp_path / "run.nc")
    assert "unconstrained_posterior" in loaded.groups
    loaded.save(tmp_path / "again.nc")
    again = infer.load(tmp_path / "again.nc")
    np.testing.assert_array_equal(
        again.groups["unconstrained_posterior"]["x"],
        np.asarray(run.to_arviz()["unconstrained_posterior"]["x"]),
    )


def test_a_save_without_room_says_so_and_leaves_nothing(tmp_path, monkeypatch):
    # on a full disk h5netcdf failed mid-write, then crashed the interpreter while closing
    # the file (a segmentation fault: every result in memory lost)
    import shutil

    result = infer.Result.from_draws({"x": np.zeros((2, 1000, 3))})
    usage = shutil.disk_usage(tmp_path)
    monkeypatch.setattr(shutil, "disk_usage", lambda folder: usage._replace(free=1000))
    with pytest.raises(OSError, match=r"not enough space to save .*0\.0 MiB are free"):
        result.save(tmp_path / "run.nc")
    assert list(tmp_path.iterdir()) == []
