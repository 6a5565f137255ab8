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
