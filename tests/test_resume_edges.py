"""Resuming and joining at the edges: saved results joined in order, a folder written by a
run that continued a result, and files that are not checkpoints."""

import collections
import dataclasses
import warnings

import jax.numpy as jnp
import numpy as np
import pytest
from short_runs import NORMAL_3D, SAMPLERS, SHORT

import infer

RUN = SHORT  # 3 chains, 40 warm-up steps


def test_saved_runs_are_joined_in_order_only(tmp_path):
    """Saved results keep no state; where their draws sit (``info["draw_range"]``) and
    their seed still tell order: a run joined to itself, or continuations out of order,
    were joined silently (duplicated draws). Draws without that record (``from_draws``)
    are refused when they repeat the draws before them."""
    sampler = SAMPLERS["rwmh"]
    whole = infer.sample(3, NORMAL_3D, sampler, num_samples=60, **RUN)
    first = infer.sample(3, NORMAL_3D, sampler, num_samples=30, **RUN)
    rest = infer.sample(3, NORMAL_3D, sampler, num_samples=30, resume=first)
    loaded = [infer.load(r.save(tmp_path / f"{i}.nc")) for i, r in enumerate((first, rest))]
    joined = infer.concat(*loaded)
    np.testing.assert_array_equal(joined.draws["x"], whole.draws["x"])
    assert joined.info["draw_range"] == whole.info["draw_range"] == [0, 60]
    for wrong in ((loaded[0], loaded[0]), (loaded[1], loaded[0]), (first, loaded[0])):
        with pytest.raises(ValueError, match="does not continue the results before it"):
            infer.concat(*wrong)
    bare = infer.Result.from_draws({"x": np.asarray(first.draws["x"])})
    with pytest.raises(ValueError, match="holds the same draws as the one before"):
        infer.concat(bare, bare)
    other = infer.Result.from_draws({"x": np.asarray(rest.draws["x"])})
    assert infer.concat(bare, other).draws["x"].shape == (3, 60, 3)
    # other names: the names are said (it raised KeyError), and discrete draws may repeat
    with pytest.raises(ValueError, match=r"draw names: \['x'\] != \['y'\]"):
        infer.concat(bare, infer.Result.from_draws({"y": np.asarray(rest.draws["x"])}))
    coin = infer.Result.from_draws({"heads": np.ones((3, 5), np.int32)})
    assert infer.concat(coin, coin).draws["heads"].shape == (3, 10)
    # a first run saved, then made again with other options: refused, naming them (saved
    # results keep no state, but their settings, warm-up and thinning)
    remade = dataclasses.replace(loaded[0], thin=2, settings={**first.settings, "seed": 1})
    with pytest.raises(
        ValueError,
        match=r"settings\['seed'\]: 1 in results\[0\], None in results\[1\]; thin: '2' in",
    ):
        infer.concat(remade, loaded[1])
    # a join with a part that records no range records none (one part's would misstate it)
    older = dataclasses.replace(  # a file saved before results recorded their range
        loaded[1], info={k: v for k, v in loaded[1].info.items() if k != "draw_range"}
    )
    assert "draw_range" not in infer.concat(loaded[0], older).info


@pytest.mark.thorough  # an edge of joins, 3.4 s
def test_a_join_keeps_only_the_last_parts_stopping_record():
    # a run stopped by until=, continued by 30 more draws and joined: the join said the run
    # "stopped at max_samples with 40 draws" beside its 70
    sampler = SAMPLERS["rwmh"]
    rule = infer.converged(ess=1e6, max_samples=40)  # never met: stops at the budget
    with pytest.warns(infer.DiagnosticWarning, match="stopped at the budget"):
        first = infer.sample(3, NORMAL_3D, sampler, num_samples=20, until=rule, **RUN)
    assert first.info["until"]["num_draws"] == 40
    rest = infer.sample(3, NORMAL_3D, sampler, num_samples=30, resume=first)
    joined = infer.concat(first, rest)
    assert joined.num_samples == 70 and "until" not in joined.info


def test_a_folder_written_by_a_resumed_run_resumes_without_a_false_warning(tmp_path):
    """``resume=result, checkpoint=folder`` writes a folder that holds only the continuation;
    resuming the folder asking for its draws warned that they were those of the whole run."""
    first = infer.sample(0, NORMAL_3D, infer.rwmh(), num_samples=20, **RUN)
    folder = tmp_path / "more"
    more = infer.sample(0, NORMAL_3D, infer.rwmh(), num_samples=20, resume=first, checkpoint=folder)
    with warnings.catch_warnings():
        warnings.simplefilter("error", UserWarning)
        again = infer.sample(0, NORMAL_3D, infer.rwmh(), num_samples=20, resume=folder)
    np.testing.assert_array_equal(again.draws["x"], more.draws["x"])
    with pytest.warns(UserWarning, match="num_samples=30 is ignored: .* draws 20 per chain"):
        infer.sample(0, NORMAL_3D, infer.rwmh(), num_samples=30, resume=folder)


@pytest.mark.thorough  # a refusal's wording
def test_a_text_file_as_resume_is_named_without_numpys_pickle_advice(tmp_path):
    text = tmp_path / "notes.txt"
    text.write_text("not a checkpoint\n")
    with pytest.raises(ValueError, match=r"not a whole NumPy .npz archive") as error:
        infer.sample(0, NORMAL_3D, infer.rwmh(), resume=text)
    assert "allow_pickle" not in str(error.value)
    advi = infer.advi(0, NORMAL_3D, num_steps=20, num_draws=10)
    with pytest.raises(ValueError, match="exact samplers and ADVI need no resuming") as error:
        infer.sample(0, NORMAL_3D, infer.rwmh(), resume=advi)


def test_init_jitter_with_resume_or_per_chain_starts_is_refused():
    """It was accepted and ignored: resumed chains continue where they stopped."""
    first = infer.sample(0, NORMAL_3D, infer.rwmh(), num_samples=10, **RUN)
    with pytest.raises(ValueError, match=r"init_jitter=5.0 jitters a new run's starting point"):
        infer.sample(0, NORMAL_3D, infer.rwmh(), num_samples=10, resume=first, init_jitter=5.0)
    with pytest.raises(ValueError, match=r"init_jitter=0.5 jitters one starting point, but"):
        infer.sample(1, NORMAL_3D, infer.rwmh(), num_samples=10, init=first.state, init_jitter=0.5)


def test_resuming_a_folder_into_another_checkpoint_folder_is_refused(tmp_path):
    """It used to be accepted, and it left a folder whose checkpoint listed chunks that
    stayed in the first folder: resuming it said the data was damaged."""
    part, other = tmp_path / "part", tmp_path / "other"
    sampler = SAMPLERS["rwmh"]
    infer.sample(3, NORMAL_3D, sampler, num_samples=20, checkpoint=part, **RUN)
    with pytest.raises(ValueError, match=r"keeps writing to its own folder.*copytree"):
        infer.sample(3, NORMAL_3D, sampler, num_samples=20, resume=part, checkpoint=other)
    assert not other.exists()


def test_a_folder_named_relative_and_absolute_is_one_folder(tmp_path, monkeypatch):
    """Resuming "part" into its absolute path (or the reverse) was refused as a folder that
    already holds another run's checkpoints."""
    monkeypatch.chdir(tmp_path)
    sampler = SAMPLERS["rwmh"]
    infer.sample(3, NORMAL_3D, sampler, num_samples=20, checkpoint="part", **RUN)
    absolute = str(tmp_path / "part")
    for resume, checkpoint in (("part", absolute), (absolute, "part")):
        again = infer.sample(3, NORMAL_3D, sampler, resume=resume, checkpoint=checkpoint)
        assert again.num_samples == 20


def _older_checkpoint_folder(folder, tmp_path, name="older"):
    """A copy of ``folder`` as a run killed after its next-to-last checkpoint left it."""
    import shutil

    copy = tmp_path / name
    shutil.copytree(folder, copy)
    for path in infer.checkpoint.checkpoints(copy)[1:]:
        path.unlink()
    return copy


@pytest.mark.thorough  # an edge of stopping rules resumed, 2.4 s
def test_a_stopping_rule_resumed_from_a_folder_checks_where_the_first_run_checked(tmp_path):
    """With until=, num_samples is the draws between two checks, which decide where the run
    stops. A folder's run resumed without it (or with another) checked at the default's
    steps instead and stopped elsewhere, silently; it keeps its own now."""
    folder = tmp_path / "run"
    rule = infer.converged(rhat=1.05, ess=30, max_samples=400)  # met at 350 draws, checked
    kwargs = dict(until=rule, checkpoint_every=100, **RUN)  # checks every num_samples=50 draws
    # below; a resume that forgot them checked every 400 (the default, capped by max_samples)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", infer.DiagnosticWarning)
        whole = infer.sample(
            0, NORMAL_3D, SAMPLERS["rwmh"], num_samples=50, checkpoint=folder, **kwargs
        )
        assert whole.info["until"]["num_draws"] == 350
        older = _older_checkpoint_folder(folder, tmp_path)
        again = infer.sample(0, NORMAL_3D, SAMPLERS["rwmh"], until=rule, resume=older, **RUN)
        np.testing.assert_array_equal(again.draws["x"], whole.draws["x"])
        assert again.info["until"] == whole.info["until"]
        older = _older_checkpoint_folder(folder, tmp_path, "older2")
        with pytest.warns(UserWarning, match="num_samples=20 is ignored: with until=.* every 50"):
            infer.sample(
                0, NORMAL_3D, SAMPLERS["rwmh"], num_samples=20, until=rule, resume=older, **RUN
            )


def test_a_folder_resumed_from_an_older_checkpoint_keeps_the_newer_ones_chunks(tmp_path):
    """Resumed from its older checkpoint, a run wrote its chunks under the names the newer
    checkpoint lists, so that one, still in the folder, returned fewer draws than it
    counted. Chunks are written once, under new names."""
    folder = tmp_path / "run"
    kwargs = dict(num_samples=100, **RUN)
    whole = infer.sample(
        0, NORMAL_3D, SAMPLERS["rwmh"], checkpoint=folder, checkpoint_every=30, **kwargs
    )
    before = {p.name: p.read_bytes() for p in folder.glob("chunk-*.npz")}
    older, _ = infer.checkpoint.checkpoints(folder)  # the folder keeps two
    again = infer.sample(0, NORMAL_3D, SAMPLERS["rwmh"], resume=older, **kwargs)
    np.testing.assert_array_equal(again.draws["x"], whole.draws["x"])
    for name, content in before.items():  # no chunk was written over
        assert (folder / name).read_bytes() == content, name
    newest = infer.checkpoint.checkpoints(folder)[-1]
    latest = infer.sample(0, NORMAL_3D, SAMPLERS["rwmh"], resume=newest, **kwargs)
    np.testing.assert_array_equal(latest.draws["x"], whole.draws["x"])


def test_a_folder_resumed_keeps_its_superchains_and_checkpoint_interval(tmp_path):
    """The folder's run keeps its superchains (nested R-hat was lost) and checkpoints as
    often as it did (a tenth of the steps left, one every few steps near the end)."""
    folder = tmp_path / "run"
    kwargs = dict(num_chains=4, num_warmup=40, num_samples=100)
    whole = infer.sample(
        0,
        NORMAL_3D,
        SAMPLERS["rwmh"],
        superchains=2,
        checkpoint=folder,
        checkpoint_every=30,
        **kwargs,
    )
    older = _older_checkpoint_folder(folder, tmp_path)
    again = infer.sample(0, NORMAL_3D, SAMPLERS["rwmh"], resume=older, **kwargs)
    assert again.info["superchains"] == whole.info["superchains"] == 2
    np.testing.assert_array_equal(again.draws["x"], whole.draws["x"])
    steps = [infer.checkpoint.load(p).meta["step"] for p in infer.checkpoint.checkpoints(older)]
    assert steps == [130, 140], steps  # 30 steps on (past the end), and the last at the end
    # another grouping given on resuming is refused (it replaced the run's, and nested
    # R-hat then grouped chains that never shared a start), from a folder or a result
    same = infer.sample(0, NORMAL_3D, SAMPLERS["rwmh"], resume=whole, superchains=2, **kwargs)
    assert same.info["superchains"] == 2  # the same grouping given again is fine
    plain = infer.sample(0, NORMAL_3D, SAMPLERS["rwmh"], checkpoint=tmp_path / "p", **kwargs)
    for source in (plain, tmp_path / "p"):
        with pytest.raises(ValueError, match="superchains=2 but the run resumed was started"):
            infer.sample(0, NORMAL_3D, SAMPLERS["rwmh"], resume=source, superchains=2, **kwargs)
    # results that say different groupings (saved before this was refused) are not joined
    more = infer.sample(0, NORMAL_3D, SAMPLERS["rwmh"], resume=plain, **kwargs)
    regrouped = dataclasses.replace(more, info={**more.info, "superchains": 2})
    with pytest.raises(ValueError, match=r"superchains: None in results\[0\], 2 in results"):
        infer.concat(plain, regrouped)


def test_an_unfinished_run_in_a_folder_it_cannot_write_is_refused_before_it_runs(
    tmp_path, monkeypatch
):
    """It sampled, then failed writing its next chunk (OSError: read-only file system). The
    test runs as a user who can write anywhere, so the folder is made unwritable by patching
    the access check the library asks."""
    import os

    from infer import arguments

    folder = tmp_path / "run"
    kwargs = dict(num_samples=100, **RUN)
    infer.sample(0, NORMAL_3D, SAMPLERS["rwmh"], checkpoint=folder, checkpoint_every=30, **kwargs)
    older = _older_checkpoint_folder(folder, tmp_path)
    real_access = os.access

    def access(path, mode):
        return False if mode == os.W_OK else real_access(path, mode)

    monkeypatch.setattr(arguments.os, "access", access)
    with pytest.raises(PermissionError, match="not finished.*Copy the folder"):
        infer.sample(0, NORMAL_3D, SAMPLERS["rwmh"], resume=older, **kwargs)
    finished = infer.sample(0, NORMAL_3D, SAMPLERS["rwmh"], resume=folder, **kwargs)
    assert finished.draws["x"].shape == (3, 100, 3)  # a finished run is only read


def test_a_checkpoint_file_that_is_gone_is_named_as_a_file_with_the_ones_kept(tmp_path):
    folder = tmp_path / "run"
    kwargs = dict(num_samples=100, **RUN)
    infer.sample(0, NORMAL_3D, SAMPLERS["rwmh"], checkpoint=folder, checkpoint_every=30, **kwargs)
    with pytest.raises(
        FileNotFoundError, match=r"checkpoint-000001.npz does not exist.*newest two"
    ):
        infer.sample(0, NORMAL_3D, SAMPLERS["rwmh"], resume=folder / "checkpoint-000001.npz")
    newest = infer.checkpoint.checkpoints(folder)[-1]
    with pytest.raises(ValueError, match=r"is a checkpoint .*not a saved result: .*resume="):
        infer.load(newest)


@pytest.mark.thorough  # a refusal, 2 s
def test_a_target_whose_log_density_changed_is_not_resumed(tmp_path):
    """The same name, function and data but another density (a scale edited in a notebook,
    or a Flax target's other prior): the fingerprint cannot see it, and the chains went on
    under the other posterior. The log density at the saved positions tells."""
    first, edited = (
        infer.Target(lambda x, s=s: -0.5 * jnp.sum((x / s) ** 2), init=jnp.zeros(3), name="n")
        for s in (1.0, 2.0)
    )
    folder = tmp_path / "run"
    result = infer.sample(0, first, SAMPLERS["rwmh"], num_samples=20, checkpoint=folder, **RUN)
    for source in (result, folder):
        with pytest.raises(ValueError, match=r"recorded, .* now; 3 of 3 chains differ"):
            infer.sample(0, edited, SAMPLERS["rwmh"], num_samples=20, resume=source)
    more = infer.sample(0, first, SAMPLERS["rwmh"], num_samples=20, resume=result)
    assert more.draws["x"].shape == (3, 20, 3)  # its own target resumes


def test_a_resume_with_other_data_names_the_leaf_and_how_it_changed():
    """The refusal showed two hashes of all the data; it names the leaf and says whether its
    shape, dtype or values changed (equal values of another dtype included). A state saved
    before leaves were recorded still resumes, and its refusal says why it shows hashes."""

    def scaled(x, data):
        return -0.5 * jnp.sum((x / data["s"]) ** 2)

    def target(data):
        return infer.Target(scaled, init=jnp.zeros(3), data=data, name="scaled")

    first = infer.sample(0, target({"s": 1.0}), SAMPLERS["rwmh"], num_samples=30, **RUN)
    for data, match in [
        ({"s": 2.0}, r"What differs:\n  data\['s'\]: its values differ \(shape \(\), dtype "),
        ({"s": jnp.array(1.0)}, r"data\['s'\]: dtype float64 -> float32 \(in the saved run -> now"),
        ({"s": 1.0, "t": 2.0}, r"data\['t'\]: present now, absent in the saved run\n"),
    ]:
        with pytest.raises(ValueError, match=match):
            infer.sample(0, target(data), SAMPLERS["rwmh"], num_samples=10, resume=first)
    saved = {k: v for k, v in first.state.fingerprint.items() if k != "data_leaves"}
    older = dataclasses.replace(first.state, fingerprint=saved)  # written by an older infer
    more = infer.sample(0, target({"s": 1.0}), SAMPLERS["rwmh"], num_samples=30, resume=older)
    assert more.draws["x"].shape == (3, 30, 3)
    with pytest.raises(ValueError, match=r"data: '[0-9a-f]+' in the saved run, .*older infer"):
        infer.sample(0, target({"s": 2.0}), SAMPLERS["rwmh"], num_samples=10, resume=older)


def test_a_folder_without_its_checkpoint_or_with_a_chunk_lost_says_what_to_do(tmp_path):
    """A run killed before its first checkpoint leaves only chunks: the error said "no
    checkpoint" without saying how to go on. A chunk that is gone: the error did not say
    that its draws are lost, nor what the user can do."""
    folder = tmp_path / "run"
    kwargs = dict(num_samples=20, **RUN)
    infer.sample(0, NORMAL_3D, SAMPLERS["rwmh"], checkpoint=folder, checkpoint_every=10, **kwargs)
    (folder / "chunk-000000.npz").unlink()  # listed by both checkpoints kept
    with pytest.raises(
        ValueError, match=r"\(1 of the 2 chunks .*lost to this checkpoint.*start the run again"
    ):
        infer.sample(0, NORMAL_3D, SAMPLERS["rwmh"], resume=folder, **kwargs)
    for checkpoint in infer.checkpoint.checkpoints(folder):
        checkpoint.unlink()  # what a kill before the first checkpoint leaves: chunks only
    with pytest.raises(
        FileNotFoundError,
        match=r"stopped before its first checkpoint.*Start the run again with "
        rf"infer.sample\(\.\.\., checkpoint='{folder}'\)",
    ):
        infer.sample(0, NORMAL_3D, SAMPLERS["rwmh"], resume=folder, **kwargs)


def test_a_chunk_replaced_by_another_is_refused_not_resumed(tmp_path):
    """A chunk file copied over another (both whole, both of this run) was read as the
    draws it replaced: the resumed run's draws were silently wrong."""
    import shutil

    folder = tmp_path / "run"
    kwargs = dict(num_samples=100, checkpoint_every=30, **RUN)
    infer.sample(0, NORMAL_3D, SAMPLERS["rwmh"], checkpoint=folder, **kwargs)
    older = _older_checkpoint_folder(folder, tmp_path)
    shutil.copy(older / "chunk-000000.npz", older / "chunk-000001.npz")
    with pytest.raises(ValueError, match=r"chunk-000001.npz .* is not the file that checkpoint"):
        infer.sample(0, NORMAL_3D, SAMPLERS["rwmh"], resume=older, **kwargs)


@pytest.mark.thorough  # an edge case, 2 s
def test_a_folder_resumed_keeps_the_draws_its_run_kept(tmp_path):
    # keep= was not saved: the resumed run returned every variable
    from models import targets

    target, folder = targets.get("eight_schools"), tmp_path / "run"
    kwargs = dict(num_chains=2, num_warmup=20, num_samples=30)
    whole = infer.sample(0, target, SAMPLERS["rwmh"], checkpoint=folder, keep=["mu"], **kwargs)
    again = infer.sample(0, target, SAMPLERS["rwmh"], resume=folder, **kwargs)
    assert list(again.draws) == list(whole.draws) == ["mu"]
    wider = infer.sample(0, target, SAMPLERS["rwmh"], resume=folder, keep=["mu", "tau"], **kwargs)
    assert list(wider.draws) == ["mu", "tau"]  # as asked: keep only filters what is returned
    np.testing.assert_array_equal(wider.draws["mu"], whole.draws["mu"])


@pytest.mark.thorough  # a refusal, 3 s
def test_a_checkpoint_folder_or_store_another_live_run_writes_is_refused(tmp_path):
    """Two runs given one checkpoint folder (a job started twice) both wrote it: neither
    could be resumed; two given one store mixed their draws under the first one's seed. The
    second is refused while the first lives; a lock its killed run left is taken over."""
    import subprocess
    import sys
    import textwrap

    holder = textwrap.dedent(
        f"""
        import sys, time
        from pathlib import Path
        from infer.writer_lock import writing
        with writing(Path({str(tmp_path / "run.ckpt")!r}), "checkpoint"), writing(
            Path({str(tmp_path / "run.zarr")!r}), "store"
        ):
            print("holding", flush=True)
            time.sleep(60)
        """
    )
    process = subprocess.Popen([sys.executable, "-c", holder], stdout=subprocess.PIPE, text=True)
    try:
        assert process.stdout.readline().strip() == "holding"
        run = dict(num_chains=2, num_samples=20, num_warmup=20)
        for option in ({"checkpoint": tmp_path / "run.ckpt"}, {"store": tmp_path / "run.zarr"}):
            name = next(iter(option))
            with pytest.raises(ValueError, match=rf"{name}=.* is being written by another run"):
                infer.sample(0, NORMAL_3D, infer.rwmh(), **run, **option)
    finally:
        process.kill()
        process.wait()
    assert (tmp_path / "run.ckpt.lock").exists()  # left by the killed run: taken over
    infer.sample(0, NORMAL_3D, infer.rwmh(), **run, checkpoint=tmp_path / "run.ckpt")
    assert not (tmp_path / "run.ckpt.lock").exists()


def test_a_stale_lock_taken_over_by_another_run_meanwhile_is_not_taken_again(tmp_path, monkeypatch):
    """Two runs restarted at once beside a killed run's lock: each read it as stale, one
    took it over, and the other then deleted that live lock and wrote too (3 in 100 trials of
    two processes). Here the second run's view is forced: it read the lock as stale, and the
    first took it over before the second acted. The second must be refused."""
    import os
    import socket

    from infer import writer_lock

    lock = tmp_path / "run.zarr.lock"
    lock.write_text(f"{socket.gethostname()} 999999999")  # a run that is gone
    real = writer_lock._live_holder
    calls = []

    def read_then_overtaken(path):
        calls.append(path)
        if len(calls) == 1:  # read as stale; meanwhile a live run (the parent) takes it
            seen = real(path)
            path.write_text(f"{socket.gethostname()} {os.getppid()}")
            return seen
        return real(path)

    monkeypatch.setattr(writer_lock, "_live_holder", read_then_overtaken)
    with pytest.raises(ValueError, match=r"store=.* is being written by another run"):
        with writer_lock.writing(tmp_path / "run.zarr", "store"):
            pass
    assert lock.read_text() == f"{socket.gethostname()} {os.getppid()}"  # its lock stays
    assert not (tmp_path / "run.zarr.lock.takeover").exists()


def test_a_takeover_that_cannot_finish_is_refused_in_time(tmp_path, monkeypatch):
    """A takeover's guard that cannot be removed (here a folder in its place) left the run
    looping every 10 ms, forever, without a word."""
    import socket

    from infer import writer_lock

    monkeypatch.setattr(writer_lock, "STALE_SECONDS", 0.05)
    (tmp_path / "run.zarr.lock").write_text(f"{socket.gethostname()} 999999999")  # gone
    (tmp_path / "run.zarr.lock.takeover").mkdir()
    with pytest.raises(ValueError, match=r"could not be taken over in 0.15 s: .*takeover' stays"):
        with writer_lock.writing(tmp_path / "run.zarr", "store"):
            pass


@pytest.mark.thorough  # an edge case, 3 s
def test_ctrl_c_says_what_the_folder_and_store_keep_and_when_they_keep_nothing(tmp_path):
    """Stopped before anything was written, a run's notes said its folder kept the run and
    its store every chunk written; following them failed ("no checkpoint in", "no store
    at")."""
    from tqdm import tqdm

    folder, store = tmp_path / "run.ckpt", tmp_path / "run.zarr"

    class CtrlC(tqdm):  # Ctrl-C at the bar's first update, or once a checkpoint exists
        wait_for_checkpoint = False

        def update(self, n=1):
            if not self.wait_for_checkpoint or any(folder.glob("*.npz")):
                raise KeyboardInterrupt
            return super().update(n)

    run = dict(num_chains=2, num_samples=400, num_warmup=100, progress=CtrlC)
    for option, said in (
        ({"checkpoint": folder}, "No checkpoint was written in"),
        ({"store": store}, "No draws were written to the store"),
    ):
        with pytest.raises(KeyboardInterrupt) as caught:
            infer.sample(0, NORMAL_3D, infer.rwmh(), **run, **option)
        assert any(said in note for note in caught.value.__notes__), caught.value.__notes__
    CtrlC.wait_for_checkpoint = True
    with pytest.raises(KeyboardInterrupt) as caught:
        infer.sample(0, NORMAL_3D, infer.rwmh(), **run, checkpoint=folder, checkpoint_every=50)
    assert any("keep the run up to the last one written" in n for n in caught.value.__notes__)
    infer.sample(0, NORMAL_3D, infer.rwmh(), num_chains=2, num_samples=400, resume=folder)


@pytest.mark.thorough  # an edge case, 2 s
def test_a_finished_run_on_a_read_only_file_system_resumes(tmp_path, monkeypatch):
    """A finished checkpoint folder on a read-only mount (an archive): resume= failed with
    "Read-only file system: 'run.ckpt.lock'", though it writes nothing there. The mount is
    mimicked: the folder reads as unwritable, and creating a lock fails as there."""
    import errno
    import os

    folder = tmp_path / "run.ckpt"
    run = dict(num_chains=2, num_samples=50, num_warmup=50)
    done = infer.sample(0, NORMAL_3D, infer.rwmh(), **run, checkpoint=folder)
    access, create = os.access, os.open

    def read_only_access(path, mode, **kwargs):
        return False if str(path).startswith(str(folder)) else access(path, mode, **kwargs)

    def read_only_open(path, flags, *args, **kwargs):
        if str(path).startswith(str(folder)) and flags & os.O_CREAT:
            raise OSError(errno.EROFS, "Read-only file system", str(path))
        return create(path, flags, *args, **kwargs)

    monkeypatch.setattr(os, "access", read_only_access)
    monkeypatch.setattr(os, "open", read_only_open)
    again = infer.sample(0, NORMAL_3D, infer.rwmh(), **run, resume=folder)
    np.testing.assert_array_equal(again.draws["x"], done.draws["x"])


@pytest.mark.thorough  # an edge case, 1.6 s
def test_a_full_disk_says_what_the_checkpoints_keep(tmp_path, monkeypatch):
    """A checkpoint write on a full disk gave a bare "No space left on device", without the
    file it was writing or the way to go on."""
    import errno

    from infer import checkpoint

    def full(self, record):
        raise OSError(errno.ENOSPC, "No space left on device")

    monkeypatch.setattr(checkpoint.Writer, "maybe_write", full)
    folder = tmp_path / "run.ckpt"
    with pytest.raises(OSError) as caught:
        infer.sample(0, NORMAL_3D, infer.rwmh(), num_chains=2, num_samples=20, checkpoint=folder)
    notes = " ".join(getattr(caught.value, "__notes__", []))
    # the first checkpoint failed: there is nothing to resume from, and the note says so
    assert "The disk is full" in notes and f"No checkpoint was written in {str(folder)!r}" in notes
    assert not (tmp_path / "run.ckpt.lock").exists()  # the lock goes with the run


@pytest.mark.thorough  # a refusal, 4 s
def test_a_run_made_with_64_bit_floats_resumes_only_with_them(tmp_path):
    # off, an in-memory state and a checkpoint both failed somewhere else: JAX's type error
    # from a program cached in the other mode, or a "target changed" between equal values
    import jax

    sampler = infer.rwmh()
    with jax.enable_x64(True):
        made = infer.sample(
            0, NORMAL_3D, sampler, **SHORT, checkpoint=tmp_path / "run", checkpoint_every=10
        )
    assert made.draws["x"].dtype == np.float64
    for source in (made, tmp_path / "run"):
        with pytest.raises(ValueError, match=r"jax_enable_x64 on .*\"jax_enable_x64\", True"):
            infer.sample(0, NORMAL_3D, sampler, **SHORT, resume=source)
    with jax.enable_x64(True):  # in its own mode it goes on
        assert infer.sample(0, NORMAL_3D, sampler, **SHORT, resume=made).num_samples > 0
    with warnings.catch_warnings(record=True) as caught:  # its state as a start: float32
        warnings.simplefilter("always")
        started = infer.sample(0, NORMAL_3D, sampler, **SHORT, init=made.state)
    assert started.draws["x"].dtype == np.float32
    assert not [w for w in caught if "truncated" in str(w.message)]


@pytest.mark.thorough  # an edge case, 4 s
def test_a_32_bit_state_goes_on_with_64_bit_floats_where_its_kernel_can():
    # NUTS's 32-bit state under jax_enable_x64 failed inside NumPyro ("cond branches must
    # have equal output types"), reported as a broken kernel: see writing-a-sampler.md
    import jax

    made = {name: infer.sample(0, NORMAL_3D, SAMPLERS[name], **SHORT) for name in ("rwmh", "nuts")}
    with jax.enable_x64(True):
        resumed = infer.sample(0, NORMAL_3D, SAMPLERS["rwmh"], **SHORT, resume=made["rwmh"])
        assert resumed.draws["x"].dtype == np.float32
        refused = r"jax_enable_x64 off \(32-bit floats\), and this process has it on \(nuts's"
        with pytest.raises(ValueError, match=refused):
            infer.sample(0, NORMAL_3D, SAMPLERS["nuts"], **SHORT, resume=made["nuts"])


@pytest.mark.thorough  # an edge of joins, 4 s
def test_a_join_adds_up_its_parts_counts():
    # the join kept the last part's counts: its acceptance rate, proposals, and the
    # proposals whose log density was NaN (a run and its continuation against the whole run)
    import numpyro.distributions as dist

    normal = infer.Target(lambda x: -0.5 * x**2, name="normal")
    exact = infer.rejection(dist.Cauchy(0.0, 1.0))
    parts = [infer.sample(seed, normal, exact, num_chains=2, num_samples=500) for seed in (0, 1)]
    joined = infer.concat(*parts)
    assert joined.info["num_proposals"] == sum(p.info["num_proposals"] for p in parts)
    assert joined.info["num_accepted"] == sum(p.info["num_accepted"] for p in parts)
    assert joined.acceptance_rate == joined.info["num_accepted"] / joined.info["num_proposals"]
    edged = infer.Target(
        lambda x: jnp.where(jnp.abs(x) < 2.0, -0.5 * x**2, jnp.nan), init=jnp.asarray(0.0)
    )
    lengths = {"num_chains": 2, "num_warmup": 100}
    first = infer.sample(0, edged, infer.rwmh(), num_samples=50, **lengths)
    rest = infer.sample(0, edged, infer.rwmh(), num_samples=50, resume=first, **lengths)
    whole = infer.sample(0, edged, infer.rwmh(), num_samples=100, **lengths)
    assert min(rest.info["nonfinite_proposals"]) > 0
    joined = infer.concat(first, rest)
    assert joined.info["nonfinite_proposals"] == whole.info["nonfinite_proposals"]


@pytest.mark.thorough  # a refusal, 5 s
def test_fits_and_estimates_are_not_joined_or_compared_as_runs():
    from models.targets import evidence

    target = infer.Target(lambda x: -0.5 * jnp.sum(x**2), init=jnp.zeros(2))
    fits = [infer.advi(seed, target, num_steps=50, num_draws=20) for seed in (0, 1)]
    with pytest.raises(ValueError, match=r"results\[0, 1\] are variational fits' draws"):
        infer.concat(*fits)
    problem = evidence.conjugate_gaussian(0, dim=2)
    estimate = infer.ais(0, problem.target, problem.prior, num_temperatures=5, num_chains=8)
    with pytest.raises(TypeError, match=r"got AISResult, an estimate of log Z"):
        infer.compare(estimate)
    runs = collections.namedtuple("Runs", "first second")(*fits)  # a named tuple of runs is
    assert list(infer.compare(runs, warn=False).index) == ["advi_meanfield", "advi_meanfield_2"]
