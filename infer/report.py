"""A comparison report on disk: the table (CSV and Markdown), the pictures (PNG), each run's
``DataTree`` (NetCDF) and an ``index.html`` that shows them together. Every file is written
atomically."""

from __future__ import annotations

import html
import math
import warnings
from pathlib import Path

import numpy as np

from infer import chain_stats, registry
from infer.caller import INFER_FRAMES
from infer.flag_rules import MIN_DRAWS, RHAT_LIMIT, above_limit
from infer.io import folder_path, write_atomically
from infer.named_results import by_name
from infer.plots import caption, marks, num_components, plot, shared_variables
from infer.result import Result
from infer.statistics import TAIL_PROB

RUN_PLOTS = ("trace", "rank", "ess", "autocorr", "pair")

SHOWN_COLUMNS = {
    "min_ess_bulk": ("ESS bulk (min)", "{:.0f}"),
    "median_ess_bulk": ("ESS bulk (median)", "{:.0f}"),
    "min_ess_tail": ("ESS tail (min)", "{:.0f}"),
    "median_ess_tail": ("ESS tail (median)", "{:.0f}"),
    "max_rhat": ("R-hat (max)", "{:.4f}"),  # 1.0104 > 1.01 is flagged; 1.010 read as not
    "max_nested_rhat": ("nested R-hat (max)", "{:.4f}"),
    "max_mcse_mean": ("MCSE mean (max)", "{:.3g}"),
    "ess_bulk_per_second": ("ESS/s", "{:.3g}"),
    "ess_bulk_per_1000_logdensity_evals": ("ESS/1k evals", "{:.3g}"),
    "ess_bulk_per_grad_eval": ("ESS/grad", "{:.3g}"),
    "acceptance_rate": ("accept", "{:.2f}"),
    "divergences": ("diverg.", "{:d}"),
    "compile_seconds": ("compile s", "{:.2f}"),
    "warmup_seconds": ("warm-up s", "{:.3f}"),
    "sampling_seconds": ("sample s", "{:.3f}"),
    "max_abs_z": ("max |z|", "{:.2f}"),
    "flags": ("flags", "{}"),
    "elpd_loo": ("elpd LOO", "{:.1f}"),
    "elpd_loo_se": ("± SE", "{:.1f}"),
    "p_loo": ("p LOO", "{:.1f}"),
    "pareto_k_above_0.7": ("k > 0.7", "{:d}"),
}

_BACKENDS = {
    "jax": "JAX (infer.chain_stats, equal to arviz_stats within 1e-5)",
    "arviz": "arviz_stats",
}

# What shown columns mean, for the notes under a table that shows one of them.
_COLUMN_NOTES = (
    (("ess_bulk_per_second",), "ESS/s: bulk ESS per second of sampling, compilation excluded"),
    (
        ("ess_bulk_per_1000_logdensity_evals", "ess_bulk_per_grad_eval"),
        "ESS per 1,000 log-density and per gradient evaluation count warm-up too, in "
        "full-data evaluations (SGLD's minibatch one counts as batch_size / N of one)",
    ),
    (("max_abs_z",), "max |z|: largest |posterior mean - truth| / MCSE"),
    (("elpd_loo",), "elpd LOO: PSIS-LOO (ArviZ), with its SE, p LOO and the Pareto k above 0.7"),
)


def _notes(statistics: str, columns) -> str:
    """The notes under a table of ``columns`` (those shown), statistics from ``statistics``."""
    over = "minimum and median" if "median_ess_bulk" in columns else "minimum"
    notes = [
        f"ESS and R-hat from {_BACKENDS.get(statistics, statistics)}; ESS {over} over parameters, "
        f"tail ESS at the {TAIL_PROB[0]:.0%} and {TAIL_PROB[1]:.0%} quantiles; R-hat "
        "rank-normalised split, maximum"
    ]
    notes += [note for names, note in _COLUMN_NOTES if any(c in columns for c in names)]
    return ". ".join(notes) + "."


def _cell(value, fmt: str) -> str:
    if isinstance(value, float) and math.isnan(value):
        return "—"
    try:
        return fmt.format(int(value) if fmt == "{:d}" else value)
    except (TypeError, ValueError):
        return str(value)


def formatted(table) -> list[list[str]]:
    """Rows of strings (header first): run name, then the shown columns."""
    columns = [c for c in SHOWN_COLUMNS if c in table.columns]
    rows = [["run", *(SHOWN_COLUMNS[c][0] for c in columns)]]
    for name, row in table.iterrows():
        rows.append([str(name), *(_shown(row[c], c) for c in columns)])
    return rows


def _shown(value, column: str) -> str:
    """A cell; an R-hat above the flag's limit with the digits that show it is (1.01004, not
    1.0100 beside an ``rhat`` flag)."""
    if column in ("max_rhat", "max_nested_rhat") and isinstance(value, float):
        if value > RHAT_LIMIT and math.isfinite(value):
            return above_limit(value)
    return _cell(value, SHOWN_COLUMNS[column][1])


def as_text(table, columns: tuple[str, ...] | None = None) -> str:
    """Aligned plain text, for a terminal; ``columns``: those to show (default: every
    one of :data:`SHOWN_COLUMNS` the table has)."""
    rows = formatted(table if columns is None else table[["sampler", *columns]])
    widths = [max(len(row[i]) for row in rows) for i in range(len(rows[0]))]
    lines = []
    for row in rows:
        cells = [row[0].ljust(widths[0])] + [
            c.rjust(w) for c, w in zip(row[1:], widths[1:], strict=True)
        ]
        lines.append("  ".join(cells))
    return "\n".join(lines)


def as_markdown(table) -> str:
    rows = [[cell.replace("|", "\\|") for cell in row] for row in formatted(table)]  # max |z|
    lines = ["| " + " | ".join(rows[0]) + " |", "|" + "---|" * len(rows[0])]
    lines += ["| " + " | ".join(row) + " |" for row in rows[1:]]
    return "\n".join(lines) + f"\n\n{notes_of(table)}\n"


def notes_of(table, columns: tuple[str, ...] | None = None) -> str:
    """How the shown columns (``columns``, default as :func:`as_text`) were computed, in the
    names the shown table gives them, with the statistics' backend (JAX or ArviZ) of
    ``infer.compare``'s table."""
    shown = [c for c in (SHOWN_COLUMNS if columns is None else columns) if c in table.columns]
    return _notes(table.attrs.get("statistics", "jax"), shown)


def _check_table(results: dict, table) -> None:
    """``table`` must be ``infer.compare``'s table of exactly these runs, by name."""
    import pandas as pd

    if not isinstance(table, pd.DataFrame):
        raise TypeError(
            f"table must be infer.compare(results)'s table; got {type(table).__name__}."
        )
    if sorted(map(str, table.index)) != sorted(results):  # in any order (sorted by a column)
        raise ValueError(
            f"table has rows {list(table.index)} but results are {list(results)}: pass "
            "infer.compare(results) of the same runs under the same names."
        )


def write_report(
    results: dict[str, Result],
    table,
    folder,
    *,
    notes: list[str] = (),
    title: str = "",
    plots: bool = True,
) -> Path:
    """Write the report for ``results`` (and their ``compare`` table) into ``folder``.

    Files: ``<run>.nc`` per run, ``<kind>_<run>.png`` for trace, rank, ESS evolution,
    autocorrelation and pair plots, ``forest.png`` across runs, ``comparison.csv``,
    ``comparison.md`` and ``index.html``. Returns the path of ``index.html``. An earlier
    report's pages are removed first and the new ones written last, after the runs' files
    and then the plots: an interrupted report has no page, and keeps every run's file.
    ``plots=False`` leaves the PNGs out (drawing them takes about a second each), and the
    page shows the table, the warnings and the links to each run's file. ``results`` may be
    a list, named as :func:`infer.compare` names one (by sampler), or one result.
    """
    results = by_name(results)
    if not isinstance(results, dict):
        raise TypeError(
            "results must be a dict of run name -> infer.Result (or a list of results, named "
            f"by sampler, as infer.compare names them); got {type(results).__name__}."
        )
    for name in results:
        if not isinstance(name, str) or not name or name.startswith(".") or set(name) & set("/\\"):
            raise ValueError(
                f"run names become file names in the report; {name!r} cannot be one (empty, "
                "starting with '.', or with a '/' or '\\'). Rename the run."
            )
    _check_table(results, table)
    folder = folder_path(folder, "folder", "report")
    if folder.exists() and not folder.is_dir():
        raise ValueError(f"folder={str(folder)!r} is a file; the report goes into a folder.")
    folder.mkdir(parents=True, exist_ok=True)
    retire_pages(folder, results)
    earlier = {  # `infer sbc` writes its own sbc_* files beside a report: not an earlier one's
        path.name
        for path in folder.iterdir()
        if path.suffix in (".nc", ".png") and not path.name.startswith("sbc_")
    }
    written = set()
    min_ess = table.attrs.get("min_ess", 400)  # the ESS plots' line is the table's flag
    for name, result in results.items():  # the runs first: an interrupt then loses no run
        result.save(folder / f"{name}.nc")
        written.add(f"{name}.nc")
    worst = {name: _worst_variables(result) for name, result in results.items()} if plots else {}
    for name, result in results.items():
        for kind in _plots_of(result, plots):
            line = {"min_ess": min_ess} if kind == "ess" else {}
            if worst[name] and kind in WORST_FIRST:
                line["var_names"] = worst[name]
            plot(result, kind=kind, path=folder / f"{kind}_{name}.png", **line)
            written.add(f"{kind}_{name}.png")
    forest = plots and bool(shared_variables(results))  # runs of models with nothing shared
    if forest:
        plot(results, kind="forest", path=folder / "forest.png")
        written.add("forest.png")
    stale = sorted(earlier - written)
    if stale:  # an earlier report's: left alone (they may be the user's), but named
        warnings.warn(
            f"{folder} also holds files this report does not cover, from an earlier one: "
            f"{', '.join(stale)}. They are left as they were; delete them, or pass another "
            "folder (--out), to keep the report on its own.",
            UserWarning,
            skip_file_prefixes=INFER_FRAMES,
        )
    write_atomically(folder / "comparison.csv", lambda tmp: table.to_csv(tmp))
    markdown = as_markdown(table)
    write_atomically(folder / "comparison.md", lambda tmp: Path(tmp).write_text(markdown))
    page = _html(results, table, notes, title, plots, worst)
    return write_atomically(folder / "index.html", lambda tmp: Path(tmp).write_text(page))


#: A report's pages, written last (a report is whole once its index.html is there).
PAGES = ("index.html", "comparison.csv", "comparison.md")


def report_files(runs) -> list[str]:
    """The names of the files a report of ``runs`` (their names) may write: pages, each
    run's NetCDF and figures, and the figure across runs."""
    pictures = [f"{kind}_{run}.png" for run in runs for kind in (*RUN_PLOTS, "ppc")]
    return [*PAGES, *(f"{run}.nc" for run in runs), *pictures, "forest.png"]


def retire_pages(folder: Path, runs=()) -> list[str]:
    """Remove an earlier report's pages from ``folder`` before its runs' files are replaced
    (an old page beside new runs would describe runs that are gone), and its figures of the
    runs named in ``runs``, and across runs, which are about to be replaced; the names
    removed."""
    names = [name for name in report_files(runs) if not name.endswith(".nc")] if runs else PAGES
    removed = [name for name in names if (folder / name).is_file()]
    for name in removed:
        (folder / name).unlink()
    return removed


def _plots_of(result: Result, plots: bool = True) -> tuple[str, ...]:
    """The per-run figures: the diagnostics (the rank plot, which compares chains, for runs of
    two or more; rank, ESS and autocorrelation plots for runs of 4 draws or more; the pair
    plot for two scalar parameters or more), and the
    predictive check where the result has a posterior predictive group; none when ``plots``
    is False."""
    if not plots:
        return ()
    kinds = RUN_PLOTS if result.num_chains > 1 else tuple(k for k in RUN_PLOTS if k != "rank")
    if result.num_samples < MIN_DRAWS:  # ranks, ESS and autocorrelations need 4 draws
        kinds = tuple(k for k in kinds if k not in ("rank", "ess", "autocorr"))
    if num_components(result) < 2:  # no pairs of one parameter
        kinds = tuple(k for k in kinds if k != "pair")
    return kinds + (("ppc",) if "posterior_predictive" in result.groups else ())


def _left_out(result: Result) -> str:
    """Which per-run figures :func:`_plots_of` leaves out of ``result``'s section, and why
    (the page said nothing of them); ``""`` when none is."""
    shown = _plots_of(result)
    why = {
        "rank": "one chain; it compares chains"
        if result.num_chains < 2
        else f"under {MIN_DRAWS} draws",
        "ess": f"under {MIN_DRAWS} draws",
        "autocorr": f"under {MIN_DRAWS} draws",
        "pair": "one parameter",
    }
    missing = [f"{kind} ({why[kind]})" for kind in RUN_PLOTS if kind not in shown]
    return f". Not drawn: {', '.join(missing)}." if missing else ""


#: The per-run figures that show, of a run with more components than they have panels, the
#: variables of the worst R-hat first (the warnings name those; the first ones could be fine).
WORST_FIRST = ("trace", "rank", "ess", "autocorr")
PANELS = 8  # infer.plot's default of scalar panels but for pair plots


def _worst_variables(result: Result) -> list[str] | None:
    """The variables of ``result`` whose components fill :data:`PANELS` panels (the last one's
    first components where it has more), the worst first (largest R-hat, then smallest bulk
    ESS; NaN last), where it has more components than that; None where every component fits
    (or there is no R-hat: one chain)."""
    if num_components(result) <= PANELS or result.num_chains < 2:
        return None
    if result.num_samples < MIN_DRAWS:
        return None
    stats = chain_stats.summary_stats(result.draws, statistics=("rhat", "ess_bulk"))

    def badness(name):
        rhat, ess = (np.asarray(stats[name][s], float) for s in ("rhat", "ess_bulk"))
        if np.isnan(rhat).all() and np.isnan(ess).all():
            return (1, 0.0, 0.0)
        return (0, -np.nanmax(rhat, initial=-np.inf), np.nanmin(ess, initial=np.inf))

    chosen, count = [], 0
    for name in sorted(result.draws, key=badness):  # the last may show its first components
        chosen.append(name)
        count += num_components(result, [name])
        if count >= PANELS:
            break
    return chosen


def _html(
    results: dict[str, Result], table, notes, title: str, plots: bool = True, worst=None
) -> str:
    rows = formatted(table)
    min_ess = table.attrs.get("min_ess", 400)  # the ESS plots' line, as they were drawn
    head = "".join(f"<th>{html.escape(c)}</th>" for c in rows[0])
    body = "".join(
        "<tr>" + "".join(f"<td>{html.escape(c)}</td>" for c in row) + "</tr>" for row in rows[1:]
    )
    note_items = "".join(f"<li>{html.escape(n)}</li>" for n in notes) or "<li>none</li>"

    def figure(src: str, caption: str) -> str:
        return (
            f'<figure><img src="{html.escape(src)}" alt="{html.escape(caption)}">'
            f"<figcaption>{html.escape(caption)}</figcaption></figure>"
        )

    sections = []
    for name in results:
        chosen = (worst or {}).get(name)
        which = (
            f" (the variables of the worst R-hat, then bulk ESS, first: {', '.join(chosen)}, "
            f"of {num_components(results[name])} components; the title says which are drawn)"
            if chosen
            else ""
        )
        figures = "".join(
            figure(
                f"{kind}_{name}.png",
                caption(kind, min_ess, marks(kind, {name: results[name]}))
                + (which if kind in WORST_FIRST else ""),
            )
            for kind in _plots_of(results[name], plots)
        )
        about = registry.describe(results[name].sampler)
        about = f"{html.escape(results[name].sampler)}: {html.escape(about)}. " if about else ""
        left_out = _left_out(results[name]) if plots else ""
        sections.append(
            f'<h2 id="{html.escape(name)}">{html.escape(name)}</h2>'
            f'<p>{about}<a href="{html.escape(name)}.nc">{html.escape(name)}.nc</a> '
            f"(ArviZ DataTree, NetCDF){html.escape(left_out)}</p>{figures}"
        )
    title = html.escape(title or "infer compare")
    if not plots:
        forest = "<p>Plots left out (--no-plots).</p>"
    elif not shared_variables(results):
        forest = "<p>No estimates side by side: the runs share no variable of one shape.</p>"
    else:
        forest = "<h2>Estimates side by side</h2>" + figure(
            "forest.png", caption("forest", marks=marks("forest", results))
        )
    return f"""<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>{title}</title>
<style>
body {{ font-family: sans-serif; margin: 2em; max-width: 1300px; }}
table {{ border-collapse: collapse; font-size: 0.9em; }}
th, td {{ border: 1px solid #ccc; padding: 0.3em 0.6em; text-align: right; }}
td:first-child, th:first-child {{ text-align: left; }}
img {{ max-width: 100%; }} figure {{ margin: 1em 0; }}
figcaption {{ color: #555; font-size: 0.9em; }}
</style></head><body>
<h1>{title}</h1>
<table><thead><tr>{head}</tr></thead><tbody>{body}</tbody></table>
<p>{html.escape(notes_of(table))}</p>
<h2>Warnings</h2><ul>{note_items}</ul>
{forest}
{"".join(sections)}
</body></html>
"""
