"""Resuming and joining at the edges: saved results joined in order, a folder written by a
run that continued a result, and files that are not checkpoints."""

import dataclasses
import warnings

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
    # a join with a part that records no range records none (one part's would misstate it)
    older = dataclasses.replace(  # a file saved before results recorded their range
        loaded[1], info={k: v for k, v in loaded[1].info.items() if k != "draw_range"}
    )
    assert "draw_range" not in infer.concat(loaded[0], older).info


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
