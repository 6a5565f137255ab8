"""Every Python example in the README and docs runs as written."""

import re
from pathlib import Path

import pytest

pytestmark = pytest.mark.slow  # a module `make test-fast` leaves out

ROOT = Path(__file__).resolve().parents[1]
PAGES = [ROOT / "README.md", *sorted((ROOT / "docs").rglob("*.md"))]
# Examples that repeat, step for step, a test of their own (named here); ``make test-thorough``
# runs them, ``make test`` runs the tests they repeat.
REPEATED = {
    "docs/running-samplers.md#0": (
        "test_resume.py::test_a_run_of_2n_equals_n_resumed_for_n_more"  # NUTS among them
    ),
    "docs/running-samplers.md#2": (
        "test_resume.py::test_until_stops_when_converged_and_records_why"  # NUTS, converged
    ),
    "docs/running-samplers.md#3": "test_store.py::test_keep_and_thin_cut_what_is_stored",
    "docs/samplers/hmc-nuts.md#0": (  # NUTS's tuned values handed back, stronger there
        "test_samplers.py::test_what_warm_up_tuned_can_be_handed_back_to_skip_it"
    ),
    "docs/ais.md#0": "test_ais.py::test_bidirectional_bracket_contains_the_truth",
    "docs/models/vae.md#0": "test_generative.py::test_a_short_training_run_lowers_the_loss",
    "docs/samplers/ars.md#1": (
        "test_ars.py::test_many_densities_at_once_the_full_conditionals_of_a_gibbs_sweep"
    ),
    "docs/workflow.md#0": (
        "test_workflow.py::test_compare_adds_elpd_loo_columns_for_models_of_the_same_data"
    ),
    "docs/sbc.md#0": "test_sbc.py::test_nuts_passes_on_eight_schools",
    "docs/sbc.md#1": "test_sbc.py::test_mala_without_its_hastings_correction_fails",
    "docs/comparing-samplers.md#0": (
        "test_compare.py::test_the_docs_comparison_of_two_samplers_runs_as_written"
    ),
    "docs/bnn.md#0": "test_bnn.py::test_nuts_and_mala_run_on_a_tiny_bnn",
    "docs/bnn.md#1": "test_bnn.py::test_pointwise_gives_each_examples_log_likelihood_for_arviz_loo",
}
# The short runs on a sampler's own page, which ``make test-thorough`` runs (2-4 s each):
# ``make test`` checks each of these samplers in its own tests (test_samplers.py,
# test_rejection.py, test_ars.py) and the pages' API in the examples that stay.
SAMPLER_PAGES = {
    "docs/samplers/rejection.md#0",
    "docs/samplers/rejection.md#1",
    "docs/samplers/ars.md#0",
    "docs/samplers/rwmh.md#0",
    "docs/samplers/mala.md#0",
    "docs/samplers/mh.md#0",
}
# Guides' examples whose API ``make test`` runs in tests of its own (4 s each): a sampler of
# one's own (test_own_sampler.py) and ADVI on eight schools (test_variational.py).
GUIDE_EXAMPLES = {"docs/writing-a-sampler.md#0", "docs/advi.md#0"}
THOROUGH_EXAMPLES = set(REPEATED) | SAMPLER_PAGES | GUIDE_EXAMPLES
EXAMPLES = [
    pytest.param(
        block,
        id=f"{page.relative_to(ROOT)}#{number}",
        marks=[pytest.mark.thorough] * (f"{page.relative_to(ROOT)}#{number}" in THOROUGH_EXAMPLES),
    )
    for page in PAGES
    for number, block in enumerate(re.findall(r"```python\n(.*?)```", page.read_text(), re.S))
]


@pytest.mark.parametrize("code", EXAMPLES)
def test_example_runs(code, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)  # examples that write files write them here
    exec(compile(code, "<example>", "exec"), {"__name__": "__example__"})


def test_readme_example_is_five_lines():
    block = re.findall(r"```python\n(.*?)```", (ROOT / "README.md").read_text(), re.S)[0]
    assert len([line for line in block.splitlines() if line.strip()]) == 5


def test_the_examples_left_to_the_thorough_tier_name_tests_that_exist():
    ids = {param.id for param in EXAMPLES}
    assert SAMPLER_PAGES | GUIDE_EXAMPLES <= ids, (SAMPLER_PAGES | GUIDE_EXAMPLES) - ids
    for example, test in REPEATED.items():
        module, name = test.split("::")
        assert f"def {name}(" in (ROOT / "tests" / module).read_text(), (example, test)
