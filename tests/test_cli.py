"""``infer compare``: the main job, as a person runs it."""

import os
import signal
import subprocess
import sys
import time
import warnings
from pathlib import Path

import arviz_base
import numpy as np
import pandas as pd
import pytest
import xarray as xr
from pictures import assert_drawn

import infer
from infer import cli, compare_command
from models import targets

pytestmark = pytest.mark.slow  # a module `make test-fast` leaves out


def test_compare_prints_the_table_and_writes_the_report(tmp_path, capsys):
    code = cli.main(
        [
            "compare",
            "--target",
            "normal_1d",
            "--samplers",
            "rejection,nuts",  # an exact sampler and an MCMC one: every column
            "--chains",
            "2",
            "--samples",
            "300",
            "--warmup",
            "200",
            "--out",
            str(tmp_path),
            "--no-progress",
        ]
    )
    out = capsys.readouterr().out
    assert code == 0
    header = next(line for line in out.splitlines() if "ESS bulk" in line)
    for column in (
        "ESS tail",
        "R-hat",
        "ESS/s",
        "accept",
        "diverg.",
        "compile s",
        "max |z|",
        "flags",
    ):
        assert column in header
    assert "5% and 95% quantiles" in out
    # the notes explain the columns shown, by the names shown: not the CSV's
    assert "max |z|: largest" in out and "max_abs_z" not in out and "per 1,000" not in out
    folder = tmp_path / "normal_1d"
    for name in ("rejection", "nuts"):
        assert any(line.startswith(name) for line in out.splitlines())
        tree = xr.open_datatree(folder / f"{name}.nc", engine="h5netcdf")
        assert tree["posterior"]["x"].shape == (2, 300)
        assert tree.attrs["sampler"] == name
        for kind in ("trace", "rank", "ess", "autocorr"):
            png = folder / f"{kind}_{name}.png"
            assert_drawn(png)  # data drawn, not blank axes
        assert not (folder / f"pair_{name}.png").exists()  # one parameter: no pairs
    assert_drawn(folder / "forest.png")
    table = pd.read_csv(folder / "comparison.csv", index_col=0)
    assert list(table.index) == ["rejection", "nuts"]
    assert "min_ess_tail" in table.columns and "flags" in table.columns
    markdown = (folder / "comparison.md").read_text()
    assert markdown.startswith("| run |") and "5% and 95% quantiles" in markdown
    header, rule = markdown.splitlines()[:2]  # as many cells as the rule has: |z| escaped
    assert header.replace("\\|", "").count("|") == rule.count("|") and "max \\|z\\|" in header
    assert "ESS/1k evals" in header and "per 1,000 log-density" in markdown  # shown there
    # "ESS minimum and median" is said of both ESS: the tail's median was left out
    assert "ESS tail (median)" in header and "ESS minimum and median" in markdown
    page = (folder / "index.html").read_text()
    for src in ("forest.png", "trace_nuts.png", "rank_nuts.png", "rejection.nc"):
        assert src in page
    assert "<table>" in page


@pytest.mark.thorough  # an edge case, 2 s
def test_rejection_is_skipped_where_the_target_has_no_proposal(tmp_path, capsys):
    code = cli.main(
        [
            "compare",
            "--target",
            "eight_schools",
            "--samplers",
            "rejection,rwmh",
            "--chains",
            "2",
            "--samples",
            "50",
            "--warmup",
            "50",
            "--out",
            str(tmp_path),
            "--no-plots",
        ]
    )
    out = capsys.readouterr().out
    assert code == 0
    # a note, as when no sampler runs (it was a "warning:" beside another sampler's run)
    assert "note: rejection: skipped, target eight_schools lacks what it needs: a proposal" in out
    folder = tmp_path / "eight_schools"
    assert (folder / "rwmh.nc").exists() and (folder / "comparison.csv").exists()
    assert not list(folder.glob("*.png"))  # --no-plots: the table, the files, no figures
    assert "<img" not in (folder / "index.html").read_text()
    (folder / "nuts.nc").write_bytes(b"")  # an earlier report's run: the report warns of it
    args = ["compare", "--target", "eight_schools", "--samplers", "rwmh", "--chains", "2"]
    args += ["--samples", "50", "--warmup", "50", "--out", str(tmp_path), "--no-plots"]
    assert cli.main(args) == 0
    err = capsys.readouterr().err
    assert "warning: " in err and "nuts.nc" in err
    assert "compare_command.py" not in err  # printed as the command's own, not Python's


def test_defaults_are_the_documented_ones():
    args = cli.build_parser().parse_args(["compare"])
    assert args.target == "banana"
    assert args.samplers == ["rejection", "rwmh", "mala", "nuts"]
    assert (args.chains, args.warmup, args.seed) == (4, 1000, 0)
    assert args.samples is None  # 2000; with --until-ess, at most --max-samples (see main)
    assert args.plots  # the report draws its figures unless --no-plots


@pytest.mark.parametrize(
    "argv, expected",
    [
        (["compare", "--target", "nope"], "invalid choice: 'nope' (choose from 'banana',"),
        (["compare", "--samplers", "rwmh,gibbs"], "unknown sampler(s) 'gibbs'; choose from"),
        (["compare", "--samplers", ""], "--samplers: no sampler given; choose from"),
        (["compare", "--chains", "0"], "--chains: expected a positive integer, got 0"),
        (["compare", "--warmup", "-3"], "--warmup: expected an integer >= 0, got -3"),
        (["compare", "--max-samples", "100"], "--max-samples is the budget of --until-ess"),
        (["sbc", "--simulations", "9"], "--simulations: expected an integer >= 10, got 9"),
        (
            ["compare", "--until-ess", "400", "--samples", "500", "--max-samples", "300"],
            "--samples 500 is the draws between two checks of --until-ess, more than --max-sa",
        ),
        (["frobnicate"], "invalid choice: 'frobnicate'"),
        ([], "required: command (usage: infer {compare,sbc,report,train,evaluate} ...; --help"),
        # a misspelled option is named, with the one meant (it used to be "required: command",
        # and for a sub-command's option an error of `infer`, not of the sub-command)
        (["--verison"], "unrecognized arguments: --verison (did you mean --version?)"),
        (["compare", "--targt", "x"], "unrecognized arguments: --targt x (did you mean --target?)"),
        (["sbc", "--seeed=3"], "unrecognized arguments: --seeed=3 (did you mean --seed?)"),
        (["train", "vae", "--epocs", "2"], "--epocs 2 (did you mean --epochs?)"),
        (["compare", "--zzz"], "error: unrecognized arguments: --zzz"),
        (["compare", "--out", ""], "--out: expected a path, got an empty one"),  # was "."
    ],
)
def test_bad_options_get_one_line_listing_the_choices(argv, expected, capsys):
    with pytest.raises(SystemExit) as exited:
        cli.main(argv)
    assert exited.value.code == 2
    stderr = capsys.readouterr().err
    lines = stderr.strip().splitlines()
    assert len(lines) == 1 and "Traceback" not in stderr, stderr
    assert expected in lines[0]
    command = argv[0] if argv and argv[0] in ("compare", "sbc", "train") else None
    assert lines[0].startswith(f"infer {command}: error:" if command else "infer: error:")


@pytest.mark.thorough  # refusals, 4.6 s; the unwritable --out refusal stays
def test_the_command_line_exits_2_with_one_line_on_bad_options():
    """The same through `python -m infer`, in a process of its own."""
    run = subprocess.run(
        [sys.executable, "-m", "infer", "compare", "--chains", "0"],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert run.returncode == 2
    assert run.stderr.strip().splitlines() == [
        "infer compare: error: argument --chains: expected a positive integer, got 0"
    ], run.stderr


def test_version_names_infer_and_the_libraries_results_depend_on(capsys):
    """``infer --version`` (what a bug report asks for) prints the package's version, the
    one pyproject.toml declares, and those of JAX, NumPyro and ArviZ; it exits 0."""
    import tomllib
    from pathlib import Path

    declared = tomllib.loads((Path(__file__).parents[1] / "pyproject.toml").read_text())
    with pytest.raises(SystemExit) as exit_info:
        cli.main(["--version"])
    assert exit_info.value.code == 0
    words = capsys.readouterr().out.split()
    printed = dict(zip(words[::2], words[1::2], strict=True))
    assert printed["infer"] == infer.__version__ == declared["project"]["version"]
    assert printed["numpyro"] == __import__("numpyro").__version__
    assert {"jax", "jaxlib", "arviz_base"} <= set(printed)


def test_saved_file_is_an_arviz_tree(tmp_path):
    result = infer.sample(0, targets.get("normal_1d"), infer.rwmh(), num_chains=2, num_samples=20)
    path = result.save(tmp_path / "run.nc")
    tree = xr.open_datatree(path, engine="h5netcdf")
    assert isinstance(tree, xr.DataTree)
    assert arviz_base.convert_to_datatree(tree)["posterior"]["x"].shape == (2, 20)


def test_sbc_prints_the_table_and_writes_the_report(tmp_path, capsys, monkeypatch):
    """``infer sbc``: a small check of MALA on eight schools (its verdict is not the point
    here; tests/test_sbc.py checks verdicts), and a sampler it cannot check."""
    titled = []  # the model each plot is titled with: the target's name, not the function's
    plot = infer.SBCResult.plot
    monkeypatch.setattr(
        infer.SBCResult, "plot", lambda self, **kw: titled.append(self.model) or plot(self, **kw)
    )
    options = ["--simulations", "10", "--chains", "2", "--samples", "10", "--warmup", "100"]
    code = cli.main(["sbc", "--sampler", "mala", *options, "--out", str(tmp_path), "--no-progress"])
    out = capsys.readouterr().out
    assert code in (0, 1) and "| parameter | ECDF p |" in out and "| theta_tilde[7] |" in out
    folder = tmp_path / "eight_schools"
    assert "![" in (folder / "sbc_mala.md").read_text() and titled == ["eight_schools"]
    assert_drawn(folder / "sbc_mala.png", least=0.002)
    ranks = pd.read_csv(folder / "sbc_mala_ranks.csv")  # a header of the parameters' names
    assert list(ranks.columns[:2]) == ["mu", "tau"] and "theta_tilde[7]" in ranks.columns
    assert ranks.shape == (10, 10) and ranks.to_numpy().min() >= 0 and ranks.to_numpy().max() <= 20
    assert cli.main(["sbc", "--sampler", "independent_mh", "--out", str(tmp_path)]) == 2
    err = capsys.readouterr().err
    assert "independent_mh cannot run on eight_schools: it needs a proposal" in err
    assert err.rstrip().endswith("Samplers sbc can check on eight_schools: rwmh, mala, hmc, nuts.")
    assert cli.main(["sbc", "--alpha", "1e-5", "--out", str(tmp_path), "--no-progress"]) == 2
    assert "infer sbc: error: alpha / num_params = 1e-05 / 10" in capsys.readouterr().err


@pytest.mark.parametrize(
    "command", [["compare"], ["sbc", "--target", "eight_schools"], ["train", "vae"]]
)
def test_an_out_folder_that_cannot_be_written_is_refused_before_any_run(command, tmp_path, capsys):
    """``infer train`` named ``out=`` (its Python argument) for a file, and for a folder it
    may not write said ``error: PermissionError: ...`` with exit status 1."""
    blocker = tmp_path / "a_file"
    blocker.write_text("not a folder")
    assert cli.main([*command, "--out", str(blocker), "--no-progress"]) == 2
    captured = capsys.readouterr()
    assert f"infer {command[0]}: error: --out: cannot write the report into" in captured.err
    assert f"{blocker} is a file." in captured.err  # was "File exists", of a folder not made
    assert "Traceback" not in captured.err
    assert "running" not in captured.out and "simulations of" not in captured.out


def test_a_sampler_named_twice_runs_once():
    args = cli.build_parser().parse_args(["compare", "--samplers", "rwmh,nuts,rwmh"])
    assert args.samplers == ["rwmh", "nuts"]


def test_until_ess_without_samples_takes_batches_within_the_budget(monkeypatch):
    seen = []
    monkeypatch.setattr(compare_command, "run_compare", lambda a: seen.append(a.samples) or 0)
    assert cli.main(["compare", "--until-ess", "400", "--max-samples", "1000"]) == 0
    assert cli.main(["compare"]) == 0
    assert seen == [1000, 2000]


def test_a_compare_where_no_sampler_can_run_says_so(tmp_path, capsys):
    """Skipped samplers are a choice to change (exit 2, as ``infer sbc``), with those that
    can run named; a sampler that fails while running exits 1."""
    command = ["compare", "--target", "eight_schools", "--samplers", "rejection"]
    assert cli.main([*command, "--out", str(tmp_path)]) == 2
    captured = capsys.readouterr()
    assert "rejection: skipped, target eight_schools lacks what it needs" in captured.out
    assert "error: no sampler ran on eight_schools" in captured.err
    assert "Samplers that can run on eight_schools: rwmh, " in captured.err
    assert "rejection" not in captured.err.splitlines()[-1]


def test_a_compare_whose_every_sampler_fails_exits_1_naming_the_failure(
    tmp_path, capsys, monkeypatch
):
    import infer

    def failing(*args, **kwargs):
        raise RuntimeError("out of memory")

    monkeypatch.setattr(infer, "sample", failing)
    command = ["compare", "--target", "normal_1d", "--samplers", "rwmh", "--no-progress"]
    assert cli.main([*command, "--out", str(tmp_path)]) == 1
    captured = capsys.readouterr()
    assert "rwmh: failed: RuntimeError: out of memory" in captured.out
    assert "Samplers that can run" not in captured.err


def test_every_option_of_every_command_has_help():
    """``infer <command> --help`` explains each option (an option without help shows only its
    name there)."""
    parser = cli.build_parser()
    commands = next(a.choices for a in parser._actions if isinstance(a.choices, dict))
    assert set(commands) == {"compare", "sbc", "report", "train", "evaluate"}
    for name, command in commands.items():
        for action in command._actions:
            assert action.help, f"infer {name} {'/'.join(action.option_strings)} has no help"


@pytest.mark.parametrize(
    "argv",
    [
        ["compare", "--out=~/reports"],
        ["sbc", "--out", "~/reports"],
        ["train", "nade", "--out=~/reports"],
        ["evaluate", "nade", "--run", "~/reports"],
    ],
)
def test_a_home_folder_in_a_path_option_is_expanded(argv, monkeypatch, tmp_path):
    """The shell leaves ``--out=~/x`` (and a quoted ``'~/x'``) as it is: the report folder
    was made as ``./~/x`` while the files went to the home folder, and a trained model's
    checkpoints were split from its metrics."""
    monkeypatch.setenv("HOME", str(tmp_path))
    args = cli.build_parser().parse_args(argv)
    assert (getattr(args, "out", None) or args.run) == tmp_path / "reports"


def test_ctrl_c_between_samplers_keeps_the_runs_that_finished(tmp_path, monkeypatch, capsys):
    """They were named as finished and thrown away: the folder was left empty."""
    from infer import compare_command

    real = compare_command._run_one
    calls = []

    def second_interrupted(*args, **kwargs):
        calls.append(1)
        if len(calls) == 2:
            raise KeyboardInterrupt  # Ctrl-C while the second sampler runs
        return real(*args, **kwargs)

    monkeypatch.setattr(compare_command, "_run_one", second_interrupted)
    argv = ["compare", "--target", "normal_1d", "--samplers", "rwmh,mala", "--chains", "2"]
    argv += ["--samples", "300", "--warmup", "200", "--no-plots", "--out", str(tmp_path)]
    assert cli.main(argv) == 130
    out = capsys.readouterr().out
    assert "The finished runs are saved in" in out and "rwmh.nc" in out
    saved = infer.load(tmp_path / "normal_1d" / "rwmh.nc")
    assert saved.sampler == "rwmh" and not (tmp_path / "normal_1d" / "mala.nc").exists()


def test_ctrl_c_while_the_report_is_written_ends_with_one_line_and_code_130(
    tmp_path, monkeypatch, capsys
):
    """It printed a traceback and died by the signal, leaving a report without index.html
    and without a word; sbc and evaluate did the same while they ran. Then it said so in one
    line but lost the runs not yet saved; now they are saved, as between samplers. (The run
    is the first test's RWMH, whose program it reuses.)"""
    from infer import report

    def interrupted(results, table, folder, **kwargs):
        (folder / "trace_rwmh.png").write_bytes(b"")  # the first picture of this report
        raise KeyboardInterrupt  # as Ctrl-C does, in the middle of writing the report

    monkeypatch.setattr(report, "write_report", interrupted)
    argv = ["compare", "--target", "normal_1d", "--samplers", "rwmh", "--chains", "2"]
    argv += ["--samples", "300", "--warmup", "200", "--no-plots", "--out", str(tmp_path)]
    assert cli.main(argv) == 130
    said = capsys.readouterr()
    assert "infer compare: interrupted. The finished runs are saved in" in said.out
    # the picture was this report's own: it was called "the earlier report's"
    assert "(an earlier report's, or this one's, half made) are removed: trace_rwmh.png" in (
        " ".join(said.out.split())
    )
    assert not (tmp_path / "normal_1d" / "trace_rwmh.png").exists()
    assert "Traceback" not in said.err
    assert infer.load(tmp_path / "normal_1d" / "rwmh.nc").sampler == "rwmh"


def test_ctrl_c_before_training_starts_says_nothing_of_reports(monkeypatch, capsys):
    """It told a train or evaluate command about "a compare report's index.html"."""
    from models.generative import commands

    def interrupted(args):
        raise KeyboardInterrupt  # before training's own handler is reached

    monkeypatch.setattr(commands, "run", interrupted)
    assert cli.main(["train", "vae", "--epochs", "1"]) == 130
    err = capsys.readouterr().err.strip()
    assert err == (
        "infer train: interrupted. Files already written are complete (each is written "
        "atomically): run the command again."
    )


def test_ctrl_c_lost_in_a_garbage_collectors_callback_still_ends_with_130(monkeypatch, capsys):
    """A KeyboardInterrupt raised inside a finaliser (JAX's garbage-collection callback, a
    weak reference's) is printed as "Exception ignored" and dropped: the command went on to
    exit 0. The Ctrl-C is noted, and the command still ends with its one line and 130."""
    from models.generative import commands

    class Finalised:
        def __del__(self):
            signal.raise_signal(signal.SIGINT)  # handled here, inside the finaliser

    def dropped(args):
        Finalised()  # made and finalised at once
        return 0

    monkeypatch.setattr(commands, "run", dropped)
    # Python's own handler, as in a terminal: a background job (`make test &`) ignores SIGINT
    previous = signal.signal(signal.SIGINT, signal.default_int_handler)
    try:
        assert cli.main(["train", "vae", "--epochs", "1"]) == 130
        assert "infer train: interrupted." in capsys.readouterr().err
        assert signal.getsignal(signal.SIGINT) is signal.default_int_handler  # put back
    finally:
        signal.signal(signal.SIGINT, previous)


@pytest.mark.parametrize("finaliser", ["gc callback", "__del__", "weak reference callback"])
def test_ctrl_c_inside_a_finaliser_stops_the_command_soon_after(monkeypatch, capsys, finaliser):
    """A Ctrl-C that came inside JAX's garbage-collection callback (often, while a program
    compiles) was noted but the command ran on to its end (all four samplers of `infer
    compare`, then "interrupted ... run the command again"). It is delivered again outside."""
    import gc
    import time
    import weakref

    from models.generative import commands

    steps = []

    class Finalised:
        def __del__(self):
            signal.raise_signal(signal.SIGINT)

    class Empty:
        pass

    def once(phase, info):
        if once in gc.callbacks:  # (JAX's stays registered while its signal is handled)
            signal.raise_signal(signal.SIGINT)
            gc.callbacks.remove(once)

    def long_run(args):
        if finaliser == "__del__":
            Finalised()
        elif finaliser == "gc callback":
            gc.callbacks.append(once)
            gc.collect()
        else:
            thing = Empty()
            reference = weakref.ref(thing, lambda ref: signal.raise_signal(signal.SIGINT))
            del thing  # the callback runs here
            assert reference() is None
        for _ in range(100):  # 2 s of work: stopped after the first few steps
            time.sleep(0.02)
            steps.append(1)
        return 0

    monkeypatch.setattr(commands, "run", long_run)
    previous = signal.signal(signal.SIGINT, signal.default_int_handler)  # as in a terminal
    try:
        assert cli.main(["train", "vae", "--epochs", "1"]) == 130
    finally:
        signal.signal(signal.SIGINT, previous)
        if once in gc.callbacks:
            gc.callbacks.remove(once)
    assert len(steps) < 20
    assert "infer train: interrupted." in capsys.readouterr().err


def test_ars_runs_on_the_built_in_log_concave_scalar_targets():
    """compare --help offers ars, but no built-in target said its support, so every
    compare and sbc with it was refused."""
    from infer import registry
    from models import targets

    for name in ("normal_1d", "beta_2_5"):
        sampler = registry.make("ars", targets.get(name))
        assert sampler is not None and sampler.name == "ars", name
    assert registry.make("ars", targets.get("eight_schools")) is None


def test_a_sampler_registered_by_an_imported_module_is_run_by_name(tmp_path, monkeypatch, capsys):
    """``infer.register`` fills the registry of its own process: a new ``infer`` process
    knew only the built-in samplers. ``--import MODULE`` imports the user's module first."""
    from infer import registry

    (tmp_path / "my_walk_plugin.py").write_text(
        "import infer\n"
        "infer.register('my_walk', lambda target: infer.rwmh(step_size=0.5), 'a user walk')\n"
    )
    monkeypatch.chdir(tmp_path)
    options = ["--target", "normal_1d", "--samples", "100", "--warmup", "50", "--no-plots"]
    try:
        code = cli.main(
            ["compare", "--import", "my_walk_plugin", "--samplers", "my_walk", *options,
             "--out", str(tmp_path / "out"), "--no-progress"]
        )  # fmt: skip
        assert code == 0 and "my_walk" in capsys.readouterr().out
    finally:
        registry.unregister("my_walk")
    from infer.cli_plugins import modules_named

    assert modules_named(["compare", "--imp", "a", "--import=b", "--samplers", "x"]) == ["a", "b"]
    with pytest.raises(SystemExit) as exited:
        cli.main(["compare", "--import", "no_such_plugin_module", "--samplers", "rwmh"])
    assert exited.value.code == 2
    assert "--import no_such_plugin_module: No module named" in capsys.readouterr().err
    # found, but an import inside it fails: not "give a module name", which it was
    (tmp_path / "broken_plugin.py").write_text("import not_a_module_anywhere\n")
    with pytest.raises(SystemExit):
        cli.main(["compare", "--import", "broken_plugin", "--samplers", "rwmh"])
    said = capsys.readouterr().err
    assert "(an import inside broken_plugin: install 'not_a_module_anywhere'" in said
    assert "Give a module name" not in said
    # a file's path (Python's TypeError about a relative import, before)
    with pytest.raises(SystemExit):
        cli.main(["compare", "--import", "./my_walk_plugin.py", "--samplers", "rwmh"])
    assert "give a module name, not a path: --import my_walk_plugin" in capsys.readouterr().err


def test_a_run_that_fails_in_sbc_is_one_line_and_not_a_failed_check(tmp_path, capsys):
    """A MemoryError (or a sampler that raises) printed Python's traceback and exited 1,
    which means "the sampler failed the check"."""
    options = ["--chains", "1000000000", "--simulations", "10", "--no-progress"]
    assert cli.main(["sbc", *options, "--out", str(tmp_path)]) == 3
    err = capsys.readouterr().err
    assert (
        err.startswith("infer sbc: error: MemoryError: sbc of eight_schools") and "Trace" not in err
    )
    assert err.rstrip().endswith("Here: fewer --chains, --samples or --simulations.")
    # the memory check's fixes are infer.sample's options (thin=, store=): the command's too
    compare = ["compare", "--target", "normal_1d", "--samplers", "rwmh", "--no-plots"]
    assert cli.main([*compare, "--chains", "1000000000", "--out", str(tmp_path)]) == 1
    said = capsys.readouterr()
    assert "rwmh: failed: MemoryError: " in said.out + said.err
    assert "Here: fewer --chains or --samples." in said.out + said.err
    assert not (tmp_path / "normal_1d").exists()  # no run: its folder was left, empty
    assert cli.main([*compare, "--chains", "1000000000", "--out", str(tmp_path / "new")]) == 1
    assert not (tmp_path / "new").exists()  # nor the --out folder the command made
    capsys.readouterr()
    from infer.startup import output_closed

    assert output_closed(["compare"], "Saved.") == 1  # stdout with no file: one line still
    said = capsys.readouterr().err
    assert said == "infer compare: stopped: the program reading its output ended. Saved.\n"


def test_until_ess_with_more_samples_than_the_default_budget_is_a_usage_error(capsys):
    """It passed the parser (the budget had no value yet) and failed once per sampler."""
    with pytest.raises(SystemExit) as exit_code:
        cli.main(["compare", "--until-ess", "100", "--samples", "30000"])
    assert exit_code.value.code == 2
    assert "--samples 30000 is the draws between two checks" in capsys.readouterr().err


def test_an_interrupted_report_keeps_every_run_and_no_earlier_page(tmp_path, monkeypatch):
    """A Ctrl-C while the plots were drawn left the old index.html over a mix of old and new
    runs' files, and the runs not yet saved were lost."""
    from infer import report

    rng = np.random.default_rng(0)
    runs = {name: infer.Result.from_draws({"x": rng.normal(size=(2, 50))}) for name in "ab"}
    table = infer.compare(runs, warn=False)
    folder = report.write_report(runs, table, tmp_path / "report", plots=False).parent
    assert {"index.html", "comparison.csv", "comparison.md"} <= {p.name for p in folder.iterdir()}

    def interrupted(*args, **kwargs):
        raise KeyboardInterrupt

    # an earlier report's pictures: of the runs being replaced (removed, they would describe
    # runs that are gone; they were left beside the new runs) and of another run (kept)
    for name in ("trace_a.png", "pair_b.png", "forest.png", "trace_c.png"):
        (folder / name).write_bytes(b"")
    monkeypatch.setattr(report, "plot", interrupted)
    with pytest.raises(KeyboardInterrupt):
        report.write_report(runs, table, folder)
    assert sorted(p.name for p in folder.iterdir()) == ["a.nc", "b.nc", "trace_c.png"]


@pytest.mark.parametrize("command", ["compare", "sbc"])
def test_a_folder_where_a_file_goes_is_refused_before_any_run(command, tmp_path, capsys):
    """It was found after every run (or simulation), with a traceback, exit 1 (read as a
    failed sampler) and the work lost."""
    blocked = "nuts.nc" if command == "compare" else "sbc_nuts.png"
    (tmp_path / "eight_schools" / blocked).mkdir(parents=True)
    argv = [command, "--target", "eight_schools", "--out", str(tmp_path), "--no-progress"]
    argv += ["--samplers" if command == "compare" else "--sampler", "nuts"]
    assert cli.main(argv) == 2
    captured = capsys.readouterr()
    lines = captured.err.strip().splitlines()
    assert len(lines) == 1 and "Traceback" not in captured.err
    assert f"{blocked} is a folder, where the report writes a file" in lines[0]
    assert not captured.out  # refused before the run began


@pytest.mark.thorough  # a message, 2 s
def test_until_ess_says_it_does_not_apply_to_an_exact_sampler(tmp_path, capsys):
    """Rejection drew --samples and was flagged low_ess with no word of why it stopped."""
    argv = ["compare", "--target", "normal_1d", "--samplers", "rejection", "--chains", "2"]
    argv += ["--samples", "100", "--until-ess", "50", "--no-plots", "--out", str(tmp_path)]
    assert cli.main([*argv, "--no-progress"]) == 0
    out = capsys.readouterr().out
    assert "rejection: --until-ess applies to Markov samplers; rejection makes exact" in out


def test_infer_report_makes_the_report_of_saved_runs(tmp_path, capsys):
    """After an interrupted compare only rerunning every sampler made the report."""
    rng = np.random.default_rng(3)
    for name in ("first.nc", "second.h5"):  # a run is named without any NetCDF suffix
        infer.Result.from_draws({"x": rng.normal(size=(2, 100))}).save(tmp_path / name)
    runs = [str(tmp_path / "first.nc"), str(tmp_path / "second.h5")]
    assert cli.main(["report", *runs, "--out", str(tmp_path / "report"), "--no-plots"]) == 0
    assert "Report: " in capsys.readouterr().out
    table = pd.read_csv(tmp_path / "report" / "comparison.csv", index_col=0)
    assert list(table.index) == ["first", "second"]
    assert (tmp_path / "report" / "index.html").exists()
    assert cli.main(["report", runs[0], str(tmp_path / "missing.nc")]) == 2
    assert "infer report: error:" in capsys.readouterr().err
    assert cli.main(["report", str(tmp_path)]) == 2  # "path=... is a folder", in Python's words
    assert f"is a folder; give the runs' files in it ({tmp_path}/*.nc)" in capsys.readouterr().err
    # a store is a folder too, but a run's: reported by its name (it was told to give *.nc)
    target = infer.Target(lambda x: -0.5 * x**2, init=0.0, name="normal")
    infer.sample(0, target, infer.rwmh(), num_chains=2, num_samples=50, store=tmp_path / "s.zarr")
    report = ["report", runs[0], str(tmp_path / "s.zarr"), "--out", str(tmp_path / "with_store")]
    assert cli.main([*report, "--no-plots"]) == 0
    table = pd.read_csv(tmp_path / "with_store" / "comparison.csv", index_col=0)
    assert list(table.index) == ["first", "s"]
    # one file named twice (overlapping globs, another spelling of its path) is one run; two
    # files of one name in two folders are still refused
    again = str(tmp_path / "." / "first.nc")
    twice = ["report", runs[0], *runs, again, "--out", str(tmp_path / "twice"), "--no-plots"]
    assert cli.main(twice) == 0
    assert f"{runs[0]}, {again} given more than once; reported once" in capsys.readouterr().out
    table = pd.read_csv(tmp_path / "twice" / "comparison.csv", index_col=0)
    assert list(table.index) == ["first", "second"]
    (tmp_path / "other").mkdir()
    infer.Result.from_draws({"x": rng.normal(size=(2, 100))}).save(tmp_path / "other" / "first.nc")
    assert cli.main(["report", runs[0], str(tmp_path / "other" / "first.nc")]) == 2
    assert "two runs would be named first" in capsys.readouterr().err


@pytest.mark.thorough  # an edge case, 3 s
def test_ctrl_c_while_the_command_loads_is_one_line_and_a_library_import_keeps_its_handler(
    tmp_path,
):
    """`python -m infer` interrupted while JAX loaded printed a KeyboardInterrupt traceback
    from inside `import infer` (the package loads before `infer/__main__.py` runs)."""
    env = {**os.environ, "PYTHONPATH": str(Path(__file__).resolve().parents[1])}
    command = subprocess.Popen(
        [sys.executable, "-m", "infer", "compare", "--no-plots", "--samples", "10"]
        + ["--out", str(tmp_path)],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        env=env,
        text=True,
        # Ctrl-C as in a terminal: a test worker may ignore SIGINT, and its children with it
        preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_DFL),
    )
    time.sleep(0.5)  # inside the imports: JAX, NumPyro and ArviZ take seconds
    command.send_signal(signal.SIGINT)
    _, err = command.communicate(timeout=60)
    assert command.returncode == 130
    assert "interrupted while starting; nothing was run" in err and "Traceback" not in err
    library = subprocess.run(  # a program of one's own: its Ctrl-C is left as Python's
        [sys.executable, "-c", "import signal, infer; "
         "print(signal.getsignal(signal.SIGINT) is signal.default_int_handler)"],
        capture_output=True, env=env, text=True, check=True,
        preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_DFL),  # as in a terminal
    )  # fmt: skip
    assert library.stdout.strip() == "True"


def test_compare_whose_reader_ends_keeps_the_finished_runs_and_says_so_in_one_line(tmp_path):
    """`infer compare | head -3`: the first print after the reader ended raised
    BrokenPipeError with a traceback, and the runs that had finished were not saved."""
    env = {**os.environ, "PYTHONPATH": str(Path(__file__).resolve().parents[1])}
    options = ["--target", "normal_1d", "--samplers", "rejection,rwmh", "--no-plots"]
    options += ["--no-progress", "--samples", "50", "--warmup", "50", "--out", str(tmp_path)]
    command = subprocess.Popen(
        [sys.executable, "-m", "infer", "compare", *options],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        env=env,
        text=True,
    )
    assert command.stdout.readline().startswith("target normal_1d")
    assert command.stdout.readline().strip() == "running rejection ..."
    assert command.stdout.readline().strip() == "running rwmh ..."  # rejection finished
    command.stdout.close()  # as `head -3` does
    err = command.stderr.read()
    assert command.wait(timeout=120) == 1
    assert "Traceback" not in err and "Exception ignored" not in err, err
    assert err.startswith("infer compare: stopped: the program reading its output ended."), err
    saved = sorted(path.name for path in (tmp_path / "normal_1d").glob("*.nc"))
    assert saved and all(name in err for name in saved), (saved, err)


def test_a_report_takes_a_list_and_says_which_plots_it_leaves_out(tmp_path):
    """write_report given a list (as infer.plot and infer.compare take) treated a Result as a
    run name; and it left out the rank plot of a one-chain run, and the rank, ESS and
    autocorrelation plots of a run of 2 draws, without a word."""
    from infer.report import write_report

    rng = np.random.default_rng(0)
    one_chain = infer.Result.from_draws({"x": rng.standard_normal((1, 50))})
    two_draws = infer.Result.from_draws({"x": rng.standard_normal((2, 2))})
    runs = [one_chain, two_draws]
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        table = infer.compare(runs)
    page = write_report(runs, table, tmp_path / "report").read_text()
    assert list(table.index) == ["external", "external_2"]
    assert "Not drawn: rank (one chain; it compares chains), pair (one parameter)." in page
    assert "Not drawn: rank (under 4 draws), ess (under 4 draws), autocorr (under 4" in page
    assert (tmp_path / "report" / "trace_external_2.png").is_file()
    with pytest.raises(TypeError, match=r"results must be a dict of run name -> infer.Result"):
        write_report(3, table, tmp_path / "other")


def test_a_report_plots_the_variables_its_warnings_name(tmp_path):
    """The warning named p14 (max R-hat), and the report's trace and rank plots showed the
    first 8 of 20 variables, without it. They now show the worst first, and say so."""
    from infer.report import write_report

    rng = np.random.default_rng(0)
    draws = {f"p{i}": rng.standard_normal((4, 100)) for i in range(20)}
    draws["p14"] = draws["p14"] + np.arange(4)[:, None]  # the chains disagree
    runs = {"many": infer.Result.from_draws(draws)}
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        table = infer.compare(runs)
    page = write_report(runs, table, tmp_path / "report").read_text()
    assert "the variables of the worst R-hat, then bulk ESS, first: p14, " in page
    # the worst, then the next worst, in part: a vector too long to fit was left out
    mixed = {"mu": draws["p14"], "theta": rng.standard_normal((4, 100, 8)), "tau": draws["p0"]}
    mixed["theta"][..., 0] += np.arange(4)[:, None] / 2  # worse than tau, better than mu
    mixed = {"mixed": infer.Result.from_draws(mixed)}
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        page = write_report(mixed, infer.compare(mixed), tmp_path / "mixed").read_text()
    assert "first: mu, theta, of 10 components" in page
    # the panels a small variable leaves go to the others, the worst first: a[2] was cut
    from infer.plot_selection import named_selection

    three = infer.Result.from_draws({n: rng.standard_normal((4, 100, 3)) for n in "abc"})
    _, coords = named_selection(three, ["a", "b", "c"], 8)
    assert coords == {"a_dim_0": [0, 1, 2], "b_dim_0": [0, 1, 2], "c_dim_0": [0, 1]}
    _, coords = named_selection(mixed["mixed"], ["mu", "theta"], 8)
    assert coords["theta_dim_0"] == list(range(7))
    small = {"few": infer.Result.from_draws({"x": rng.standard_normal((4, 100))})}
    page = write_report(small, infer.compare(small, warn=False), tmp_path / "small").read_text()
    assert "worst R-hat" not in page  # every component fits: the plots show them all


def test_min_ess_zero_turns_the_flag_off_as_in_python():
    """--min-ess 0 was refused ("expected a positive integer"), where infer.compare's
    min_ess=0 turns the low-ESS flag off."""
    for command in (["compare"], ["report", "run.nc"]):
        assert cli.build_parser().parse_args([*command, "--min-ess", "0"]).min_ess == 0
        with pytest.raises(SystemExit):
            cli.build_parser().parse_args([*command, "--min-ess", "-1"])


def test_a_refused_train_leaves_no_folder_behind(tmp_path, capsys):
    """The --out check made the folder, which stayed when --resume (no checkpoint there) or
    another option was then refused."""
    out = tmp_path / "typo" / "run"
    assert cli.main(["train", "vae", "--resume", "--out", str(out), "--no-progress"]) == 2
    assert "holds no checkpoint" in capsys.readouterr().err
    assert not (tmp_path / "typo").exists()
