"""``benchmarks/run.py`` refuses a selection it cannot honour before running anything."""

import importlib.util
from pathlib import Path

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
    common.write_result(tmp_path / "until_cpu_quick.json", {"rows": []})
    common.write_result(tmp_path / "until_cpu.json", {"rows": []})
    assert json.loads((tmp_path / "until_cpu_quick.json").read_text())["quick"] is True
    assert json.loads((tmp_path / "until_cpu.json").read_text())["quick"] is False
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
