"""A generative family's options are checked on the host, before anything trains: each one's
kind against its default's, and the values the optimisers need. The error names the option,
what it should be and what came, from Python and from ``infer train --option``."""

from __future__ import annotations

import math
import subprocess
import sys
import warnings

import numpy as np
import pytest
from flax import nnx

from infer.cli import main
from models.generative import annealed_evaluation, evaluation, training
from models.generative import data as datasets

pytestmark = pytest.mark.slow  # trains small models, like test_generative.py: not in test-fast


@pytest.mark.parametrize(
    "model, options, error, match",
    [
        ("gan", {"r1_penalty": "abc"}, TypeError, r"option r1_penalty of gan must be a number"),
        ("gan", {"real_label": True}, TypeError, r"option real_label of gan must be a number"),
        ("vae", {"latent_dim": 16.5}, TypeError, r"latent_dim of vae must be a whole number"),
        ("vae", {"variant": 3}, TypeError, r"option variant of vae must be a string"),
        ("nade", {"learning_rate": 0.0}, ValueError, r"learning_rate must be a positive finite"),
        ("aae", {"learning_rate": -1e-3}, ValueError, r"learning_rate must be a positive finite"),
        (
            "aae",
            {"adversarial_learning_rate": math.inf},
            ValueError,
            r"adversarial_learning_rate must be a positive finite number; got inf",
        ),
        (
            "aae",
            {"adversarial_weight": 0.0},
            ValueError,
            r"adversarial_weight must be a positive finite number; got 0.0",
        ),
        ("vae", {"weight_decay": math.nan}, ValueError, r"weight_decay must be a finite number"),
        ("vae", {"shift": -1}, ValueError, r"option shift must be an integer >= 0; got -1"),
        ("aae", {"shift": 1.5}, TypeError, r"option shift of aae must be a whole number"),
        ("vae", {"shift": 3}, ValueError, r"shift must be at most 2 pixels on digits's 8x8"),
        ("aae", {"entropy_weight": math.nan}, ValueError, r"entropy_weight must be a finite"),
        ("aae", {"entropy_weight": -1.0}, ValueError, r"entropy_weight must be a finite .*>= 0"),
        ("gan", {"instance_noise": math.inf}, ValueError, r"finite instance_noise >= 0"),
        # its held-out loss is the discriminator's: the lowest kept the generator's worst
        ("gan", {"validation": 0.1}, ValueError, r"discriminator's, which falls when the gen"),
    ],
)
def test_an_option_of_the_wrong_kind_or_value_is_refused(model, options, error, match):
    with pytest.raises(error, match=match):
        training.train(model, "digits", epochs=1, **options)


def test_ints_and_numpy_scalars_pass_where_the_default_is_a_float_or_an_int():
    # they pass the kind check, so the first error is the one the family's own check raises
    with pytest.raises(ValueError, match="discriminator_learning_rate must be a positive"):
        training.train(
            "gan", "digits", r1_penalty=1, latent_dim=np.int64(8), discriminator_learning_rate=0
        )


@pytest.mark.thorough  # a rarer option's kind, 6 s
def test_a_numpy_scalar_passes_where_the_default_is_none(tmp_path):
    """The GAN's discriminator_learning_rate (default None) kept a NumPy float: the epoch
    trained, then the first save failed deep in Orbax ("Object of type float32 is not JSON
    serializable"), leaving a temporary checkpoint folder behind."""
    trained = training.train(
        "gan", "digits", epochs=1, out=tmp_path, discriminator_learning_rate=np.float32(4e-4)
    )
    assert type(trained.config["options"]["discriminator_learning_rate"]) is float
    assert training.load(tmp_path).metrics["epoch"] == [1]


def test_the_command_line_names_a_non_numeric_option(tmp_path, capsys):
    command = ["train", "gan", "--epochs", "1", "--out", str(tmp_path), "--no-progress"]
    assert main([*command, "--option", "r1_penalty=strong"]) == 2
    error = capsys.readouterr().err
    assert "option r1_penalty of gan must be a number (default 0.0); got 'strong' (str)" in error
    assert "--option r1_penalty=0.0" in error
    assert not any(tmp_path.iterdir()), "nothing may be written for a refused run"
    # one option given twice was read as its last value, without a word
    twice = ["--option", "r1_penalty=1", "--option", "r1_penalty=2"]
    assert main([*command, *twice]) == 2
    assert "--option r1_penalty given twice" in capsys.readouterr().err


@pytest.mark.thorough  # an edge case, 3 s
def test_a_save_killed_midway_leaves_a_folder_that_trains_afresh(tmp_path):
    """A kill during the first save leaves only Orbax's ``*.orbax-checkpoint-tmp`` folder (or
    a stray file): that is no checkpoint, so training there starts afresh instead of asking
    for --resume, which then said there was nothing to resume."""
    (tmp_path / "checkpoints" / "1.orbax-checkpoint-tmp-0").mkdir(parents=True)
    (tmp_path / "checkpoints" / ".DS_Store").write_text("")
    assert not training.holds_checkpoints(tmp_path)
    trained = training.train("nade", "digits", epochs=1, out=tmp_path, hidden=20)
    assert training.holds_checkpoints(tmp_path)
    assert training.load(tmp_path).config == trained.config


SAVE_FAILS = """
import os, sys
makedirs = os.makedirs
def failing(path, *args, **kwargs):  # the disk refuses Orbax's checkpoint folder
    if "orbax-checkpoint-tmp" in str(path):
        raise OSError(28, "No space left on device", str(path))
    return makedirs(path, *args, **kwargs)
os.makedirs = failing
from infer.cli import main
sys.exit(main(["train", "nade", "--epochs", "1", "--out", sys.argv[1], "--no-progress",
               "--option", "hidden=20"]))
"""


@pytest.mark.thorough  # an edge case, 5 s
def test_a_checkpoint_that_cannot_be_saved_ends_the_command_with_one_line(tmp_path):
    """Orbax's asynchronous save left threads waiting for a folder that was never made, and
    the command hung after its traceback until killed."""
    run = subprocess.run(
        [sys.executable, "-c", SAVE_FAILS, str(tmp_path / "run")],
        capture_output=True, text=True, timeout=120,
    )  # fmt: skip
    assert run.returncode == 1, run.stderr[-2000:]
    assert (
        run.stderr.strip()
        .splitlines()[-1]
        .startswith("infer train: error: OSError: [Errno 28] No space left on device")
    ), run.stderr[-2000:]


@pytest.mark.thorough  # a rarer failure, 5 s
def test_a_damaged_checkpoint_is_named_with_the_older_one_to_go_on_from(tmp_path):
    """A damaged latest checkpoint gave Orbax's traceback or a bare JSON error, though the
    older checkpoint beside it was whole. (A NumPy option, here ``hidden``, passed the check
    and then failed the first save: "Object of type int64 is not JSON serializable"; a NumPy
    validation fraction was refused as not a number.)"""
    trained = training.train(
        "nade", "digits", epochs=2, out=tmp_path, checkpoint_every=1, hidden=np.int64(20)
    )
    assert type(trained.config["options"]["hidden"]) is int
    assert datasets.load("digits", np.float32(0.1)).validation is not None
    (tmp_path / "checkpoints" / "2" / "meta" / "metadata").write_text("{")
    with pytest.raises(ValueError, match=r"epoch 2 \(.*2\) cannot be read: it is damaged \("
                       r"JSONDecodeError: .*epoch 1 is kept: move .*2 away"):  # fmt: skip
        training.load(tmp_path)
    (tmp_path / "checkpoints" / "2").rename(tmp_path / "damaged")
    assert training.load(tmp_path).metrics["epoch"] == [1]


@pytest.mark.thorough  # a rarer failure, 12 s
def test_a_damaged_checkpoint_is_named_once_without_orbaxs_other_reads(tmp_path):
    """After the one-line error, Orbax's other reads of the damaged arrays ended with up to
    200 lines of tracebacks ("Event loop is closed", "exception was never retrieved")."""
    import subprocess
    import sys
    import textwrap

    script = textwrap.dedent(f"""
        import os
        from pathlib import Path
        from models.generative import training
        folder = Path({str(tmp_path)!r})
        training.train("nade", "digits", epochs=2, out=folder, checkpoint_every=2, hidden=50)
        for path in (folder / "checkpoints" / "2" / "state").rglob("d/*"):
            path.write_bytes(os.urandom(path.stat().st_size))
        for _ in range(8):
            try:
                training.load(folder)
            except ValueError as err:
                assert "cannot be read: it is damaged" in str(err), err
            else:
                raise AssertionError("a damaged checkpoint was read")
        print("done")
    """)
    run = subprocess.run(
        [sys.executable, "-c", script], capture_output=True, text=True, timeout=300
    )
    assert run.returncode == 0 and run.stdout.strip().endswith("done"), run.stderr[-3000:]
    noises = ("Traceback", "Exception ignored", "never retrieved", "Event loop", "never awaited")
    for noise in noises:
        assert noise not in run.stderr, run.stderr[-3000:]


def test_a_hook_installed_during_a_quieted_read_stays_and_chains_to_it():
    """Leaving a restore put back the hook it had found, dropping one installed meanwhile;
    one chained to it then failed in its own call ('NoneType' object is not callable)."""
    from models.generative.orbax_noise import reads_quieted

    seen, plain = [], sys.unraisablehook
    sys.unraisablehook = lambda unraisable: seen.append("the hook before")
    try:
        with reads_quieted():
            previous = sys.unraisablehook

            def library_hook(unraisable):
                seen.append(str(unraisable.exc_value))
                previous(unraisable)

            sys.unraisablehook = library_hook
        assert sys.unraisablehook is library_hook

        class Bad:
            def __del__(self):
                raise ValueError("unrelated")

        Bad()
        assert seen == ["unrelated", "the hook before"]  # through the quiet one, unquieted
    finally:
        sys.unraisablehook = plain


@pytest.mark.thorough  # a rarer warning, 5 s
def test_a_resumed_run_warns_of_evaluations_of_the_model_before_it(tmp_path):
    """evaluation.json stayed beside the further-trained model, describing the old one."""
    training.train("nade", "digits", epochs=1, out=tmp_path, hidden=20)
    (tmp_path / "evaluation.json").write_text("{}")  # as infer evaluate leaves it
    with pytest.warns(UserWarning, match=r"evaluation.json in .* scored the model before"):
        training.train("nade", "digits", epochs=2, out=tmp_path, hidden=20, resume=True)
    with warnings.catch_warnings():  # nothing trained: the evaluation still holds
        warnings.simplefilter("error", UserWarning)
        training.train("nade", "digits", epochs=2, out=tmp_path, hidden=20, resume=True)


@pytest.mark.thorough  # an edge case, 4 s
def test_a_folder_that_holds_a_trained_model_is_not_trained_over(tmp_path):
    """A second run into the same folder would mix its checkpoints with the first's (and
    ``load`` would return the old model); it must resume or go elsewhere."""
    training.train("nade", "digits", epochs=1, out=tmp_path, hidden=20)
    with pytest.raises(ValueError, match="already holds a trained model's checkpoints"):
        training.train("nade", "digits", epochs=1, out=tmp_path, hidden=50, seed=7)
    assert training.load(tmp_path).config["options"]["hidden"] == 20
    a_file = tmp_path / "a_file"
    a_file.write_text("")
    with pytest.raises(ValueError, match="is a file; pass a folder"):
        training.train("nade", "digits", epochs=1, out=a_file)
    with pytest.raises(ValueError, match="lies under .*a_file', which is a file"):
        training.train("nade", "digits", epochs=1, out=a_file / "sub")
    (tmp_path / "other" / "checkpoints").parent.mkdir()
    (tmp_path / "other" / "checkpoints").write_text("")  # Orbax failed on it after an epoch
    with pytest.raises(ValueError, match="checkpoints' is a file, where the run keeps its"):
        training.train("nade", "digits", epochs=1, out=tmp_path / "other")
    missing = tmp_path / "does" / "not" / "exist"
    with pytest.raises(ValueError, match="does not exist: pass the folder a training run"):
        training.load(missing)
    assert not missing.exists(), "loading must not create folders"
    with pytest.raises(ValueError, match=r"a_file is a file: pass the folder"):
        training.load(tmp_path / "a_file")


@pytest.mark.parametrize("flag, least", [("--samples", 2), ("--chains", 4), ("--ais-images", 2)])
def test_evaluate_needs_two_samples_or_four_chains_at_least(flag, least, capsys):
    """One AIS image gave a standard error of NaN, written as a bare NaN into the JSON; two
    chains reach the weights' ESS of 2 a usable estimate needs only with equal weights."""
    with pytest.raises(SystemExit) as exited:
        main(["evaluate", "gan", "--run", "nowhere", flag, str(least - 1)])
    assert exited.value.code == 2
    assert f"{flag}: expected an integer >= {least}, got {least - 1}" in capsys.readouterr().err


def test_ais_options_without_method_ais_are_refused(capsys):
    """They were ignored: --method bounds ran as if --temperatures were not given."""
    code = main(["evaluate", "vae", "--run", "nowhere", "--temperatures", "5", "--chains", "8"])
    assert code == 2
    assert "--temperatures, --chains apply only with --method ais" in capsys.readouterr().err
    assert main(["evaluate", "vae", "--run", "nowhere", "--leapfrog", "5"]) == 2
    assert "--leapfrog applies only with --method ais" in capsys.readouterr().err


@pytest.mark.thorough  # a refusal
def test_iwae_counts_for_a_model_without_an_iwae_bound_are_refused(tmp_path, capsys):
    """They were recorded in the settings and otherwise ignored. A folder of another model is
    named as such first (it was blamed on --iwae)."""
    training.train("nade", "digits", epochs=1, out=tmp_path / "nade", hidden=20)
    spaced = tmp_path / "my runs" / "nade 1"  # the command named is pasted into a shell
    training.train("nade", "digits", epochs=1, out=spaced, hidden=20)
    assert main(["evaluate", "vae", "--run", str(spaced)]) == 2
    assert f"infer evaluate nade --run '{spaced}'`" in capsys.readouterr().err
    # a run folder the scores cannot be written into: refused before the work, not after it
    (spaced / "evaluation.json").mkdir()
    assert main(["evaluate", "nade", "--run", str(spaced), "--samples", "10"]) == 2
    error = capsys.readouterr().err
    assert f"--run: {spaced / 'evaluation.json'} is a folder; the scores are written" in error
    assert main(["evaluate", "nade", "--run", str(tmp_path / "nade"), "--iwae", "5"]) == 2
    assert "--iwae sets the IWAE bound's sample counts, and nade has no IWAE bound" in (
        capsys.readouterr().err
    )
    argv = ["evaluate", "nade", "--data", "mnist", "--run", str(tmp_path / "nade"), "--iwae", "5"]
    assert main(argv) == 2
    assert "holds a nade trained on digits, not nade on mnist" in capsys.readouterr().err
    # another model's folder: the command that evaluates it is named
    assert main(["evaluate", "vae", "--run", str(tmp_path / "nade")]) == 2
    assert f"evaluate it with `infer evaluate nade --run {tmp_path / 'nade'}`" in (
        capsys.readouterr().err
    )
    # one folder too deep: the run's folder is named
    with pytest.raises(ValueError, match=r"checkpoints is inside a run's folder: pass the run"):
        training.load(tmp_path / "nade" / "checkpoints")


def test_options_of_the_other_method_are_refused_both_ways(capsys):
    """--samples was ignored by --method ais, and of several --iwae counts it used the
    largest alone."""
    assert main(["evaluate", "vae", "--run", "nowhere", "--method", "ais", "--samples", "20"]) == 2
    assert (
        "--samples (images generated for the sample scores) applies only with --method bounds"
        in (capsys.readouterr().err)
    )
    argv = ["evaluate", "vae", "--run", "nowhere", "--method", "ais", "--iwae", "5", "--iwae", "9"]
    assert main(argv) == 2
    assert "--method ais takes one --iwae" in capsys.readouterr().err


def test_train_and_check_images_refuse_what_they_cannot_use():
    """progress="yes" failed as 'str' object is not callable after the data and the model
    were built; images of strings failed inside numpy's isfinite."""
    with pytest.raises(TypeError, match="progress must be True, False or a tqdm class"):
        training.train("vae", epochs=1, progress="yes")
    with pytest.raises(TypeError, match="out must be a folder path"):
        training.train("vae", epochs=1, out=3)
    with pytest.raises(TypeError, match=r"must hold real numbers in \[0, 1\]; got dtype <U1"):
        datasets.check_images(np.full((1, 8, 8), "a"))
    # complex images lost their imaginary parts with NumPy's warning alone
    with pytest.raises(TypeError, match="real numbers in .*; got dtype complex128"):
        datasets.check_images(np.full((1, 8, 8), 0.5 + 1j))
    with pytest.raises(ValueError, match="images of one size"):  # NumPy's own error before
        datasets.check_images([np.zeros((8, 8)), np.zeros((7, 8))])
    # an AttributeError ('VAE' object has no attribute 'config') and pathlib's TypeError
    with pytest.raises(
        TypeError, match=r"evaluate.s trained must be a TrainedModel.*trained.model"
    ):
        evaluation.evaluate(nnx.Linear(2, 2, rngs=nnx.Rngs(0)))
    with pytest.raises(TypeError, match="evaluate_ais's trained must be a TrainedModel"):
        annealed_evaluation.evaluate_ais("run")
    with pytest.raises(TypeError, match="folder must be the path of a training run's folder"):
        training.load(None)


@pytest.mark.parametrize("command", ["train nade", "evaluate nade"])
def test_a_seed_beyond_32_bits_is_refused(command, capsys):
    """2**32 gave seed 0's initialisation; 2**64 crashed with an OverflowError."""
    with pytest.raises(SystemExit):
        main([*command.split(), "--seed", str(2**32)])
    assert "--seed: expected an integer in [0, 2**32), got 4294967296" in capsys.readouterr().err
    with pytest.raises(ValueError, match=r"seed must be an integer in \[0, 2\*\*32\); got"):
        training.train("nade", "digits", epochs=1, seed=2**32)


def test_the_evaluation_functions_check_their_counts():
    from models.generative import annealed_evaluation, evaluation

    with pytest.raises(ValueError, match=r"num_generated must be an integer >= 2; got 1"):
        evaluation.evaluate(None, num_generated=1)
    with pytest.raises(TypeError, match=r"iwae_samples must be a tuple .*; got 'many'"):
        evaluation.evaluate(None, iwae_samples="many")
    with pytest.raises(ValueError, match=r"num_images must be an integer >= 2; got 1"):
        annealed_evaluation.evaluate_ais(None, num_images=1)
    with pytest.raises(ValueError, match=r"num_leapfrog must be an integer >= 1; got 0"):
        annealed_evaluation.evaluate_ais(None, num_leapfrog=0)


@pytest.mark.thorough  # an edge case, 3 s
def test_training_that_diverges_stops_with_an_error_not_nan_outputs(tmp_path, capsys):
    with pytest.raises(FloatingPointError, match=r"vae training diverged at epoch 1: .*nan"):
        training.train("vae", "digits", epochs=2, learning_rate=1e3)
    command = ["train", "vae", "--epochs", "2", "--out", str(tmp_path / "run"), "--no-progress"]
    assert main([*command, "--option", "learning_rate=1000"]) == 1
    assert "diverged at epoch 1" in capsys.readouterr().err
    assert not (tmp_path / "run" / "metrics.json").exists()  # no NaN outputs written


@pytest.mark.thorough  # a message, 4 s
def test_an_interrupted_training_says_how_to_resume(tmp_path, capsys, monkeypatch):
    """Before the first checkpoint there is nothing to resume; after it, --resume."""
    real_train = training.train

    def interrupted(*args, **kwargs):
        if kwargs.get("epochs") == 2:  # the second run: one epoch saved, then Ctrl-C
            real_train("nade", "digits", epochs=1, out=kwargs["out"], hidden=10)
        raise KeyboardInterrupt

    monkeypatch.setattr(training, "train", interrupted)
    out = tmp_path / "run"
    command = ["train", "nade", "--out", str(out), "--no-progress", "--option", "hidden=10"]
    assert main([*command, "--epochs", "1"]) == 130
    assert "holds no checkpoint yet" in capsys.readouterr().err
    assert main([*command, "--epochs", "2"]) == 130
    error = capsys.readouterr().err
    assert "rerun the same command with --resume" in error and str(out) in error


def test_an_evaluation_worse_than_the_baseline_says_worse():
    """It printed 'better than independent pixels by -1.2 nats'. Bounds were printed as
    NADE's exact NLL is, and the gain without its error."""
    from models.generative.commands import format_evaluation

    samples = {
        "frechet_distance": 1.0,
        "frechet_distance_test_vs_train": 0.5,
        "classes_covered": 10,
        "classifier_test_accuracy": 0.9,
    }
    report = {"model": "vae", "data": "digits", "test_images": 10, "samples": samples}
    worse = format_evaluation({**report, "improvement_over_baseline": -1.2})
    better = format_evaluation({**report, "improvement_over_baseline": 3.4})
    assert "worse than independent pixels by 1.2 nats" in worse
    assert "better than independent pixels by 3.4 nats" in better
    bounds = {"nll_elbo": {"mean": 30.0, "standard_error": 0.2}, "nll_iwae_100": {
        "mean": 29.0, "standard_error": 0.2}, "improvement_over_baseline_se": 0.05}  # fmt: skip
    shown = format_evaluation({**report, **bounds, "improvement_over_baseline": 3.4})
    assert "NLL elbo (upper bound)" in shown and "NLL iwae-100 (upper bound)" in shown
    assert "better than independent pixels by 3.4 ± 0.1 nats" in shown
    exact = {"nll_exact": {"mean": 30.0, "standard_error": 0.2}}
    assert "NLL exact       " in format_evaluation({**report, **exact})


def test_ctrl_c_during_a_checkpoint_save_waits_for_the_save_to_end():
    """Ctrl-C mid-save left an Orbax temporary folder and a traceback from its threads."""
    import os
    import signal
    import threading

    from models.generative.checkpoints import interrupts_deferred

    if threading.current_thread() is not threading.main_thread():
        pytest.skip("signals reach the main thread only")  # not the case under pytest
    finished = []
    with pytest.raises(KeyboardInterrupt):
        with interrupts_deferred():
            os.kill(os.getpid(), signal.SIGINT)
            finished.append(True)  # the block ran to its end before the interrupt
    assert finished == [True]


def test_the_ais_line_says_whether_ais_fell_below_iwae():
    """It printed the rule ("AIS should not be lower beyond its error") and no verdict."""
    from models.generative.commands import format_ais

    report = {
        "model": "vae", "data": "digits", "scored_images": 4, "unit": "nats",
        "settings": {"num_temperatures": 20, "num_chains": 4},
        "nll_ais": {"mean": 30.0, "standard_error": 0.3},
        "cost": {"grads_per_image": 880, "seconds": 1.0, "seconds_per_image": 0.25,
                 "device": "cpu"},
        "ais_ess": {"median": 3.0, "images_below_2": 0, "usable": True},
    }  # fmt: skip
    below = format_ais(dict(report, ais_minus_iwae={"mean": -0.59, "standard_error": 0.29}))
    fine = format_ais(dict(report, ais_minus_iwae={"mean": -0.2, "standard_error": 0.29}))
    assert "biased low here" in below and "biased low" not in fine and "as it should be" in fine


def test_training_out_of_memory_is_one_line_saying_what_to_shrink(monkeypatch, tmp_path, capsys):
    # train_samples=100000 made XLA ask for 154 GiB: a 40-line traceback, where every other
    # bad option gets a line. (XLA's error is raised here as it is, to need no 154 GiB.)
    import jax

    from models.generative import loop

    def out_of_memory(*args, **kwargs):
        raise jax.errors.JaxRuntimeError(
            "RESOURCE_EXHAUSTED: Error dispatching computation: Out of memory allocating "
            "165531894144 bytes."
        )

    monkeypatch.setattr(loop, "fit", out_of_memory)
    with pytest.raises(MemoryError, match=r"ran out of memory \(one buffer of 154.2 GiB\): use"):
        training.train("vae", "digits", epochs=1, train_samples=100000)
    command = ["train", "vae", "--epochs", "1", "--out", str(tmp_path / "run"), "--no-progress"]
    assert main(command) == 1
    said = capsys.readouterr().err
    assert said.startswith("infer train: error: training vae on digits, batch_size=128 ran out")
    assert "Traceback" not in said

    def other(*args, **kwargs):
        raise jax.errors.JaxRuntimeError("INTERNAL: something else")

    monkeypatch.setattr(loop, "fit", other)
    with pytest.raises(jax.errors.JaxRuntimeError, match="something else"):  # not hidden
        training.train("vae", "digits", epochs=1)


def test_a_gan_trains_enough_steps_by_default():
    """20 epochs of the digits, 220 steps, left the default GAN one blob for every sample
    (Fréchet distance 117-170, 1-2 of 10 classes, three seeds); its default is now 2,000
    steps (test_generative.py checks that 200 epochs make digits). The others keep 20."""
    assert training.default_epochs("gan", "digits") == 182
    assert training.default_epochs("gan", "digits", batch_size=1438) == 2000
    assert training.default_epochs("vae", "digits") == training.DEFAULT_EPOCHS == 20


@pytest.mark.thorough  # a refusal, 5 s
def test_a_run_trained_in_float64_mode_resumes_only_in_it(tmp_path):
    """JAX_ENABLE_X64 changes the random numbers: a float32 run resumed under it went on
    with other losses (24.81 against 24.94 at epoch 20), bit-identical resume broken."""
    import jax

    with jax.enable_x64(True):
        trained = training.train("nade", "digits", epochs=1, out=tmp_path, hidden=8)
    # the parameters stay float32, as the docs say (NADE's own were float64, and loaded
    # without 64-bit floats as float32: another model than training returned)
    params = jax.tree.leaves(nnx.state(trained.model, nnx.Param))
    assert {leaf.dtype for leaf in params} == {np.dtype("float32")}
    # it said "True in the checkpoint, None now", with advice about flags and options
    with pytest.raises(
        ValueError,
        match=r"64-bit floats \(JAX_ENABLE_X64\): on in the checkpoint, off now; "
        r"resume with JAX_ENABLE_X64=1",
    ):
        training.train("nade", "digits", epochs=2, out=tmp_path, resume=True, hidden=8)
