"""The benchmark tables in ``docs/``, made from ``benchmarks/results/*.json``.

Every figure the docs quote from a benchmark sits in a block of a page::

    <!-- table: samplers_cpu -->
    ...generated markdown...
    <!-- end table -->

and this script rewrites each block from its JSON (the name is the file's stem), with a line
that says which commit, date and package versions produced it. ``python docs/tables.py``
rewrites them; ``--check`` exits 1, listing the blocks that differ, without writing
(``tests/test_docs_tables.py`` runs it). ``benchmarks/run.py`` calls it after the benchmarks.
"""

from __future__ import annotations

import argparse
import json
import re
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from renderers import RENDERERS as GENERAL  # noqa: E402
from renderers_bnn import RENDERERS as BNN  # noqa: E402

RENDERERS = {**GENERAL, **BNN}

ROOT = Path(__file__).resolve().parent.parent
RESULTS = ROOT / "benchmarks" / "results"
BLOCK = re.compile(r"(<!-- table: (\w+) -->\n)(.*?)(<!-- end table -->)", re.S)


def provenance(record: dict, name: str) -> str:
    """Where a table's figures come from: the file, the commit, the date, the versions."""
    machine = record.get("machine", {})
    commit = machine.get("commit", "")
    parts = [f"From `benchmarks/results/{name}.json`"]
    if record.get("quick"):
        parts.append("a quick smoke run (--quick), not a measurement")
    if commit:
        # no git there to check ("INFER_COMMIT", or with a note after it)
        named = str(machine.get("commit_named_by", "")).startswith("INFER_COMMIT")
        parts.append(
            f"commit `{commit[:10]}`"
            + (" with local changes" if machine.get("dirty") else "")
            + (" (named by INFER_COMMIT; local changes not checked)" if named else "")
        )
    elif "dirty" in machine and machine["dirty"] is None:
        parts.append("commit unknown (no git, no INFER_COMMIT)")
    else:
        parts.append("written before benchmarks recorded their commit")
    if machine.get("date"):
        parts.append(machine["date"][:10])
    device = machine.get("device") or record.get("device") or record.get("platform")
    if device:
        model = f" ({machine['cpu_model']})" if device == "cpu" and machine.get("cpu_model") else ""
        cores = machine.get("cpu_count", "?")
        usable = machine.get("cores_usable", cores)
        cores = f"{usable} of {cores}" if usable != cores else cores
        parts.append(f"device {device}{model}, {cores} CPU cores")
    versions = machine.get("versions") or {}
    if versions:
        parts.append(", ".join(f"{k} {v}" for k, v in versions.items() if v))
    return "*" + "; ".join(parts) + ".*"


def render(name: str) -> str:
    """The block's content for results file ``name`` (without ``.json``)."""
    path = RESULTS / f"{name}.json"
    if not path.exists():
        return f"*`benchmarks/results/{name}.json` has not been written on this platform yet.*\n"
    record = json.loads(path.read_text())
    kind = next(k for k in sorted(RENDERERS, key=len, reverse=True) if name.startswith(k))
    try:
        table = RENDERERS[kind](record)
    except (KeyError, TypeError, IndexError):
        return f"*`benchmarks/results/{name}.json` is in an older format: run `make bench`.*\n"
    return f"{provenance(record, name)}\n\n{table}\n"


def rewrite(text: str) -> str:
    return BLOCK.sub(lambda m: m.group(1) + render(m.group(2)) + m.group(4), text)


def pages() -> list[Path]:
    return sorted((ROOT / "docs").rglob("*.md"))


def stale() -> list[str]:
    """``page: block`` for every block whose text differs from its JSON's rendering."""
    found = []
    for page in pages():
        text = page.read_text()
        for match in BLOCK.finditer(text):
            if match.group(3) != render(match.group(2)):
                found.append(f"{page.relative_to(ROOT)}: {match.group(2)}")
    return found


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--check", action="store_true", help="report stale blocks, write none")
    args = parser.parse_args(argv)
    if args.check:
        found = stale()
        for line in found:
            print(f"stale: {line}")
        return 1 if found else 0
    for page in pages():
        text = page.read_text()
        new = rewrite(text)
        if new != text:
            page.write_text(new)
            print(f"rewrote tables in {page.relative_to(ROOT)}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
