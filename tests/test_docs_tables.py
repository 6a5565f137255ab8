"""Every benchmark figure in docs/ is the rendering of its JSON in benchmarks/results/: a
table edited by hand, or a JSON rewritten without the docs, fails here."""

import importlib.util
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def _tables():
    spec = importlib.util.spec_from_file_location("tables", ROOT / "docs" / "tables.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_every_docs_table_equals_its_json():
    tables = _tables()
    stale = tables.stale()
    assert not stale, "run `python docs/tables.py`: " + ", ".join(stale)


def test_the_check_catches_an_edited_figure():
    tables = _tables()
    match = next(
        m
        for p in tables.pages()
        for m in tables.BLOCK.finditer(p.read_text())
        if any(c.isdigit() for c in m.group(3).split("\n", 2)[-1])  # a figure past provenance
    )
    body = match.group(3)
    digit = next(i for i, c in enumerate(body) if c.isdigit())
    edited_body = body[:digit] + str((int(body[digit]) + 1) % 10) + body[digit + 1 :]
    edited = match.group(1) + edited_body + match.group(4)
    assert tables.rewrite(edited) == match.group(0)  # the JSON's figures come back
    assert tables.rewrite(edited) != edited


def test_a_commit_named_on_the_device_machine_is_captioned_as_unchecked():
    """A JSON whose commit INFER_COMMIT named, with a note after the word, was captioned
    as if git had checked it."""
    tables = _tables()
    for named_by in ("INFER_COMMIT", "INFER_COMMIT (sent tree was clean)"):
        record = {"machine": {"commit": "fdeafcfbc1aa", "commit_named_by": named_by}}
        assert "named by INFER_COMMIT; local changes not checked" in tables.provenance(record, "x")


def test_a_figure_never_reads_on_the_other_side_of_its_goal():
    """The samplers table showed RWMH's 0.99957 of BlackJAX as **1.00** beside "≥ 1.0"."""
    import sys

    sys.path.insert(0, str(ROOT / "docs"))
    try:
        from table_format import against
    finally:
        sys.path.remove(str(ROOT / "docs"))
    assert against(0.99957, 1.0, ">=") == "0.9996"
    assert against(1.004, 1.0, ">=") == "1.00"
    assert against(0.999, 1.0, ">=") == "0.999"
    assert against(1.2004, 1.2, "<=", 3) == "1.2004"
    assert against(9.95, 10.0, "<") == "9.95"
    assert against(9.996, 10.0, "<") == "9.996"
    assert against(10.0, 10.0, "<") == "10.00"


def test_the_goal_sentences_say_missed_where_a_row_misses():
    import sys

    sys.path.insert(0, str(ROOT / "docs"))
    try:
        from verdicts import rows_verdict
    finally:
        sys.path.remove(str(ROOT / "docs"))
    rows = [{"n": 1, "r": 1.3}, {"n": 64, "r": 0.99957}, {"n": 1024, "r": 1.12}]
    said = rows_verdict(rows, lambda r: r["r"], 1.0, ">=", lambda r: f"{r['n']} chains")
    assert said == "**missed** at 64 chains (0.9996); met elsewhere (1.12–1.30)"
    assert rows_verdict(rows[:1], lambda r: r["r"], 1.0, ">=", str) == "met (1.30)"
