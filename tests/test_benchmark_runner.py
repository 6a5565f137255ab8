"""The benchmark scripts refuse what they cannot honour before running anything: a selection
of suites (``benchmarks/run.py``), arguments that would measure nothing or be ignored, entries
of ``benchmarks/on_accelerator.sh``; and they record what their figures were made with."""

import importlib.util
import json
from pathlib import Path
from types import SimpleNamespace

import pytest

RUNNER = Path(__file__).resolve().parents[1] / "benchmarks" / "run.py"


@pytest.fixture(scope="module")
def runner():
    spec = importlib.util.spec_from_file_location("benchmark_runner", RUNNER)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (["--skip", "samplerz"], "unknown suite(s) ['samplerz']"),
        (["--only", "samplers,latencyy"], "unknown suite(s) ['latencyy']"),
        (["--only", ""], "--only names no suite"),
        (["--only", "samplers", "--skip", "samplers"], "leave no suite to run"),
    ],
)
def test_a_selection_that_names_no_suite_or_an_unknown_one_runs_nothing(
    runner, argv, message, monkeypatch, capsys
):
    def refuse(*args, **kwargs):
        raise AssertionError("a benchmark was started")

    monkeypatch.setattr(runner.subprocess, "run", refuse)
    assert runner.main(argv) == 2
    assert message in capsys.readouterr().err


def _common():
    import sys

    sys.path.insert(0, str(RUNNER.parent))
    import common

    return common


def test_a_quick_result_says_so_and_its_table_caption_too(tmp_path):
    import json
    import sys

    common = _common()
    goals = {"goals_met": {"fast": True, "slow": False}, "goals": {"nll": {"met": True, "x": 1}}}
    common.write_result(tmp_path / "until_cpu_quick.json", {"rows": [{}], **goals})
    common.write_result(tmp_path / "until_cpu.json", {"rows": [{}], **goals})
    quick = json.loads((tmp_path / "until_cpu_quick.json").read_text())
    full = json.loads((tmp_path / "until_cpu.json").read_text())
    assert quick["quick"] is True and full["quick"] is False
    # a smoke run's sizes cannot judge a goal: its verdicts are None, a full run's kept
    assert quick["goals_met"] == {"fast": None, "slow": None}
    assert quick["goals"] == {"nll": {"met": None, "x": 1}}
    assert {k: full[k] for k in goals} == goals
    sys.path.insert(0, str(RUNNER.parents[1] / "docs"))
    import tables

    assert "a quick smoke run" in tables.provenance({"quick": True}, "until_cpu_quick")


def test_a_workers_lines_are_shown_as_it_printed_them(tmp_path, capsys):
    """Indentation kept, and nothing printed for a worker that prints only its JSON."""
    common = _common()
    chatty = tmp_path / "chatty.py"
    chatty.write_text('print("  row 1\\n  row 2")\nprint(\'{"x": 1}\')\n')
    quiet = tmp_path / "quiet.py"
    quiet.write_text("print('{\"x\": 2}')\n")
    assert common.run_json(chatty, []) == {"x": 1}
    assert capsys.readouterr().out == "  row 1\n  row 2\n"
    assert common.run_json(quiet, []) == {"x": 2}
    assert capsys.readouterr().out == ""


# --------------------------------------------------------------------- the scripts' arguments


def _benchmark(name: str):
    """``benchmarks/<name>.py`` as a module (under its own name, to keep ``samplers`` free)."""
    spec = importlib.util.spec_from_file_location(f"benchmark_{name}", RUNNER.parent / f"{name}.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def _refuse(*args, **kwargs):
    raise AssertionError("a measurement was started")


# script, arguments, what must not start, what the refusal says
REFUSED = [
    ("ais_chains", ["--max-chains", "5"], ["measure"], "expected an integer >= 10, got 5"),
    ("ais_chains", ["--quick", "--max-chains", "100"], ["measure"], "no effect with --quick"),
    (
        "memory",
        ["--budget-mb", "0"],
        ["worker", "subprocess"],
        "expected a positive integer, got 0",
    ),
    ("memory", ["--worker", "0"], ["worker", "subprocess"], "expected a positive integer, got 0"),
    ("until", ["--pairs", "0"], ["run_json"], "expected a positive integer, got 0"),
    ("until", ["--quick", "--pairs", "3"], ["run_json"], "--pairs 3 has no effect with --quick"),
    ("samplers", ["--repeats", "0"], ["bench_rwmh"], "expected a positive integer, got 0"),
    ("samplers", ["--quick", "--repeats", "3"], ["bench_rwmh"], "no effect with --quick"),
    ("sweep", ["--repeats", "0"], ["measure"], "expected a positive integer, got 0"),
    ("sweep", ["--quick", "--repeats", "2"], ["measure"], "no effect with --quick"),
    ("ars", ["--num-draws", "0"], ["bench", "run_json"], "expected a positive integer, got 0"),
    ("ars", ["--quick", "--repeats", "4"], ["bench", "run_json"], "no effect with --quick"),
    (
        "latency",
        ["--models", "regression,regresion"],
        ["bench_model", "subprocess"],
        "unknown model(s) ['regresion']; choose from regression",
    ),
    # a folder as --out: refused before the run, not after it (where its figures were lost)
    ("until", ["--quick", "--out", "."], ["run_json"], "is a folder; give a file path"),
    ("samplers", ["--quick", "--out", "."], ["bench_rwmh"], "is a folder; give a file path"),
    ("latency", ["--out", "."], ["bench_model", "subprocess"], "is a folder; give a file path"),
    (
        "generative",
        ["--repeats", "0"],
        ["ours_steps_per_second"],
        "expected a positive integer, got 0",
    ),
]


@pytest.mark.parametrize(
    ("script", "argv", "heavy", "message"),
    REFUSED,
    ids=[f"{s} {' '.join(a)}" for s, a, *_ in REFUSED],
)
def test_an_argument_that_would_measure_nothing_or_be_ignored_is_refused(
    script, argv, heavy, message, monkeypatch, tmp_path, capsys
):
    """A 0 (an empty median, no rows, or a falsy worker size read as "not a worker"), a count
    below the smallest measured, or an option --quick would ignore: argparse refuses it, and
    no results file is written."""
    module = _benchmark(script)
    monkeypatch.setattr(module, "RESULTS", tmp_path)
    for name in heavy:
        stand_in = SimpleNamespace(run=_refuse) if name == "subprocess" else _refuse
        monkeypatch.setattr(module, name, stand_in)
    with pytest.raises(SystemExit) as refused:
        module.main(argv)
    assert refused.value.code == 2
    assert message in capsys.readouterr().err
    assert list(tmp_path.iterdir()) == []


def test_a_result_with_no_rows_is_not_written(tmp_path):
    common = _common()
    for key in ("rows", "models"):
        with pytest.raises(ValueError, match=f"its '{key}' is empty"):
            common.write_result(tmp_path / "ais_chains_cpu.json", {"machine": {}, key: []})
    assert list(tmp_path.iterdir()) == []


# --------------------------------------------------------------------------- what is recorded


def test_the_machine_records_precision_cpu_model_and_usable_cores():
    import os

    import jax

    stamp = _common().machine()
    assert stamp["precision"] == ("float64" if jax.config.jax_enable_x64 else "float32")
    assert stamp["cores_usable"] == len(os.sched_getaffinity(0))
    assert stamp["cpu_count"] == os.cpu_count()
    if os.path.exists("/proc/cpuinfo") and "model name" in open("/proc/cpuinfo").read():
        assert stamp["cpu_model"]


def test_the_sweep_and_blocked_loop_record_the_configured_precision(monkeypatch, tmp_path):
    import json

    sweep = _benchmark("sweep")
    monkeypatch.setattr(sweep, "RESULTS", tmp_path)
    monkeypatch.setattr(sweep, "machine", lambda *p: {"platform": "cpu", "precision": "float64"})
    row = {"sampler": "rwmh", "num_chains": 1, "fraction_of_bare": 1.0, "ratio_to_blackjax": 1.0}
    path = sweep.write_rows([row], (10, 10), complete=True, quick=True)
    assert json.loads(path.read_text())["precision"] == "float64"


def test_one_core_mode_pins_to_a_core_this_process_may_use(monkeypatch, tmp_path):
    import subprocess

    common = _common()
    ran = []

    def fake_run(command, **kwargs):
        ran.append(command)
        return subprocess.CompletedProcess(command, 0, stdout='{"x": 1}\n', stderr="")

    monkeypatch.setattr(common.os, "sched_getaffinity", lambda pid: {5, 3}, raising=False)
    monkeypatch.setattr(common.subprocess, "run", fake_run)
    assert common.run_json(tmp_path / "w.py", [], "one_core") == {"x": 1}
    assert ran[0][:3] == ["taskset", "-c", "3"]


def test_a_commit_that_cannot_be_known_is_not_called_clean(monkeypatch):
    common = _common()

    def no_git(*args, **kwargs):
        raise FileNotFoundError("git")

    monkeypatch.setattr(common.subprocess, "run", no_git)
    monkeypatch.delenv("INFER_COMMIT", raising=False)
    assert common.commit() == {"commit": "", "dirty": None}
    monkeypatch.setenv("INFER_COMMIT", "abc123")  # a copy without git: the sender names it
    assert common.commit() == {  # and nothing can check it: not called clean
        "commit": "abc123",
        "dirty": None,
        "commit_named_by": "INFER_COMMIT",
    }


def test_git_decides_the_commit_over_infer_commit(monkeypatch, capsys):
    import shutil
    import subprocess

    if shutil.which("git") is None:
        pytest.skip("no git here")
    head = subprocess.run(
        ["git", "rev-parse", "HEAD"], cwd=RUNNER.parents[1], capture_output=True, text=True
    ).stdout.strip()
    if not head:
        pytest.skip("not a git checkout")
    common = _common()
    monkeypatch.setenv("INFER_COMMIT", "0000000000")
    stamp = common.commit()
    assert stamp["commit"] == head and isinstance(stamp["dirty"], bool)
    assert "INFER_COMMIT=0000000000 is not this repository's HEAD" in capsys.readouterr().err


# ------------------------------------------------------------------------ run.py and its suites


def test_a_quick_run_of_suites_without_a_quick_mode_runs_nothing_and_fails(
    runner, monkeypatch, capsys
):
    monkeypatch.setattr(runner.subprocess, "run", _refuse)
    assert runner.main(["--quick", "--only", "generative_quality,bnn_priors"]) == 2
    assert "none of generative_quality, bnn_priors has a quick mode" in capsys.readouterr().err


def test_a_missing_module_stops_the_run_before_any_suite(runner, monkeypatch, capsys):
    monkeypatch.setattr(runner.subprocess, "run", _refuse)
    monkeypatch.setitem(runner.REQUIRES, "sweep", ("no_such_module_for_infer",))
    assert runner.main(["--check", "--only", "sweep,ais_chains"]) == 2
    assert "no_such_module_for_infer (ModuleNotFoundError" in capsys.readouterr().err
    assert set(runner.REQUIRES) == set(runner.SUITES)


def test_blocked_loop_runs_forced_on_a_cpu_and_refuses_the_plain_loop_against_itself(
    runner, monkeypatch, capsys
):
    import jax

    assert "--force" in runner.SUITES["blocked_loop"][0]  # as the CPU table was made
    if jax.default_backend() != "cpu":
        pytest.skip("the refusal is for a CPU")
    blocked_loop = _benchmark("blocked_loop")
    monkeypatch.setattr(blocked_loop, "measure", _refuse)
    assert blocked_loop.main(["--quick"]) == 2
    assert "time the plain loop against itself: pass --force" in capsys.readouterr().err


def test_the_blocked_loop_caption_counts_the_timed_runs():
    import sys

    sys.path.insert(0, str(RUNNER.parents[1] / "docs"))
    import renderers

    row = {
        "sampler": "rwmh",
        "num_chains": 1,
        "num_steps": 16,
        "block": 16,
        "blocked_chain_steps_per_s": 1.0,
        "plain_chain_steps_per_s": 1.0,
        "blocked_over_plain": 1.0,
        "blocked_over_blackjax": 1.0,
        "largest_difference_blocked_vs_plain": 0.0,
        "largest_difference_progress_vs_not": 0.0,
    }
    assert "one timed run each" in renderers.blocked_loop({"rows": [row], "repeats": 1})
    assert "medians of 3" in renderers.blocked_loop({"rows": [row], "repeats": 3})
    assert "one timed run each" in renderers.blocked_loop({"rows": [row], "quick": True})


def test_a_quick_diagnostics_run_does_not_judge_its_goals(monkeypatch, tmp_path, capsys):
    diagnostics = _benchmark("diagnostics")
    monkeypatch.setattr(diagnostics, "RESULTS", tmp_path)
    monkeypatch.setattr(diagnostics, "machine", lambda *p: {"platform": "cpu"})
    monkeypatch.setattr(diagnostics, "bench_conversion", lambda *a, **k: {"seconds": 1.0})
    monkeypatch.setattr(diagnostics, "bench_compare", lambda *a, **k: {"seconds": 1.0})
    monkeypatch.setattr(diagnostics, "bench_progress", lambda **k: {"ratio_on_over_off": 1.0})
    assert diagnostics.main(["--quick"]) == 0
    assert "goals (a quick run: not judged)" in capsys.readouterr().out


# ------------------------------------------------------------------------ on_accelerator.sh

SUITE_WRITES = """from pathlib import Path
import sys
Path("benchmarks/results/{name}_cpu.json").write_text("{{}}")
Path("docs/images/{name}_gpu.png").write_bytes(b"png")
sys.exit({status})
"""


@pytest.fixture
def accelerator_copy(tmp_path):
    """A copy of a tree on which ``on_accelerator.sh`` runs stub suites: ``ok`` and ``bad``
    (exit 3) write a JSON and a picture; ``run.py --check`` passes unless CHECK_FAILS is set."""
    import shutil

    (tmp_path / "benchmarks" / "results").mkdir(parents=True)
    (tmp_path / "docs" / "images").mkdir(parents=True)
    shutil.copy(RUNNER.parent / "on_accelerator.sh", tmp_path / "benchmarks")
    for name, status in (("ok", 0), ("bad", 3)):
        stub = SUITE_WRITES.format(name=name, status=status)
        (tmp_path / "benchmarks" / f"{name}.py").write_text(stub)
    (tmp_path / "benchmarks" / "run.py").write_text(
        "import os, sys\nif os.environ.get('CHECK_FAILS'):\n"
        "    print('missing: blackjax', file=sys.stderr)\n    sys.exit(2)\n"
    )
    return tmp_path


def _on_accelerator(folder, suites, **env):
    import os
    import subprocess
    import sys

    environment = {k: v for k, v in os.environ.items() if k != "INFER_ALLOW_CPU"}
    environment.update(INFER_COMMIT="abc", PYTHON=sys.executable, **env)
    command = ["bash", "benchmarks/on_accelerator.sh", str(folder / "out"), suites]
    return subprocess.run(command, cwd=folder, env=environment, capture_output=True, text=True)


def test_on_accelerator_refuses_bad_entries_before_running_anything(accelerator_copy):
    done = _on_accelerator(accelerator_copy, "nosuch:10 ok:0 ok:1x ok ok:5", INFER_ALLOW_CPU="1")
    assert done.returncode == 2
    for message in (
        "nosuch:10: there is no benchmarks/nosuch.py",
        "ok:0: the seconds, '0', are not above 0",
        "ok:1x: the seconds, '1x', are not a whole number",
        "ok: no ':seconds' after the name",
    ):
        assert message in done.stderr
    assert not (accelerator_copy / "benchmarks" / "results" / "ok_cpu.json").exists()


def test_on_accelerator_refuses_a_copy_whose_git_head_is_not_infer_commit(accelerator_copy):
    """It hid that git from the suites and carried on: the figures were recorded against
    INFER_COMMIT, as clean, whatever the copy held."""
    import subprocess

    git = ["git", "-c", "user.name=t", "-c", "user.email=t@t", "-C", str(accelerator_copy)]
    subprocess.run([*git, "init", "-q"], check=True)
    subprocess.run([*git, "add", "-A"], check=True)
    subprocess.run([*git, "commit", "-qm", "copy"], check=True)
    done = _on_accelerator(accelerator_copy, "ok:5", INFER_ALLOW_CPU="1")
    assert done.returncode == 2 and "is not INFER_COMMIT (abc)" in done.stderr
    assert not (accelerator_copy / "benchmarks" / "results" / "ok_cpu.json").exists()


def test_on_accelerator_stops_when_a_module_is_missing(accelerator_copy):
    done = _on_accelerator(accelerator_copy, "ok:5", INFER_ALLOW_CPU="1", CHECK_FAILS="1")
    assert done.returncode == 2 and "missing: blackjax" in done.stderr
    assert not (accelerator_copy / "benchmarks" / "results" / "ok_cpu.json").exists()


@pytest.mark.thorough  # a refusal, 2 s
def test_on_accelerator_refuses_a_cpu_backend_unless_allowed(accelerator_copy):
    import jax

    if jax.default_backend() != "cpu":
        pytest.skip("the refusal is for a CPU")
    done = _on_accelerator(accelerator_copy, "ok:5")
    assert done.returncode == 2 and "set INFER_ALLOW_CPU=1" in done.stderr
    assert not (accelerator_copy / "benchmarks" / "results" / "ok_cpu.json").exists()


def test_on_accelerator_keeps_what_every_suite_wrote_and_fails_when_one_failed(accelerator_copy):
    done = _on_accelerator(accelerator_copy, "ok:20 bad:20", INFER_ALLOW_CPU="1")
    assert done.returncode == 1
    out = accelerator_copy / "out"
    for kept in (
        "ok_cpu.json",
        "bad_cpu.json",
        "docs/images/ok_gpu.png",
        "docs/images/bad_gpu.png",
    ):
        assert (out / kept).exists(), kept
    summary = done.stdout.split("== summary")[1]
    assert "ok:20: ok after" in summary and "bad:20: failed (exit 3) after" in summary


def test_the_caption_says_an_unknown_commit_and_the_cores_usable():
    import sys

    sys.path.insert(0, str(RUNNER.parents[1] / "docs"))
    import tables

    machine = {"commit": "", "dirty": None, "device": "cpu", "cpu_count": 64}
    caption = tables.provenance(
        {"machine": {**machine, "cores_usable": 2, "cpu_model": "Xeon"}}, "x"
    )
    assert "commit unknown (no git, no INFER_COMMIT)" in caption
    assert "device cpu (Xeon), 2 of 64 CPU cores" in caption


def test_a_sweep_stopped_early_judges_no_goal_its_rows_meet(monkeypatch, tmp_path):
    """A sweep stopped after its RWMH rows marked 'ahead of BlackJAX at every count' met,
    before the rows that had missed it were made."""
    sweep = _benchmark("sweep")
    monkeypatch.setattr(sweep, "RESULTS", tmp_path)
    ahead = {"sampler": "rwmh", "num_chains": 1024, "fraction_of_bare": 0.9}
    rows = [{**ahead, "ratio_to_blackjax": 1.2}]
    stopped = json.loads(sweep.write_rows(rows, (1, 1), complete=False, quick=False).read_text())
    assert set(stopped["goals_met"].values()) == {None}
    behind = [*rows, {**ahead, "sampler": "mala", "ratio_to_blackjax": 0.9}]
    missed = json.loads(sweep.write_rows(behind, (1, 1), complete=False, quick=False).read_text())
    assert missed["goals_met"]["ahead_of_blackjax_at_every_count"] is False
    whole = json.loads(sweep.write_rows(rows, (1, 1), complete=True, quick=False).read_text())
    assert set(whole["goals_met"].values()) == {True}


def test_check_refuses_a_platform_that_is_not_here(runner, monkeypatch, capsys):
    """`--platform gpu --check` on a CPU machine passed (exit 0): the platform was checked
    only before a run."""
    monkeypatch.setattr(runner, "platform", lambda: "cpu")  # whatever this machine has
    monkeypatch.setitem(runner.REQUIRES, "samplers", ())  # (BlackJAX: not in `make test`'s)
    assert runner.main(["--check", "--platform", "gpu", "--only", "samplers"]) == 2
    assert "asked for gpu but JAX's default device is cpu" in capsys.readouterr().err
