"""``infer report``: the comparison report of runs saved earlier (the NetCDF files ``infer
compare`` writes, or ``Result.save``, or stores ``infer.sample(..., store=...)`` wrote), e.g.
of the runs an interrupted ``infer compare`` kept, without running them again."""

from __future__ import annotations

import sys

from infer.cli_types import non_negative_int, path


def add_command(commands) -> None:
    report = commands.add_parser(
        "report",
        help="write the comparison report of runs saved earlier (their NetCDF files)",
        description="Load runs saved by infer compare or Result.save, compare them (ESS, "
        "R-hat, timings, flags) and write the report: table, plots and index.html, and "
        "each run as <name>.nc in the report's folder (a run given as a store, run.zarr, "
        "or under another suffix is saved there so, for the report to link one file per "
        "run).",
    )
    report.add_argument(
        "runs",
        nargs="+",
        type=path,
        metavar="RUN.nc",
        help="the runs' files (or stores, run.zarr); each run is named by its file's name "
        "without its suffix (.nc, or another NetCDF one, or .zarr)",
    )
    report.add_argument(
        "--out",
        type=path,
        default=None,
        help="folder for the report (default: the folder of the first run)",
    )
    report.add_argument(
        "--min-ess",
        type=non_negative_int,
        default=400,
        help="flag runs whose bulk or tail ESS is below this (default 400; 0 turns the flag off)",
    )
    report.add_argument(
        "--no-plots", dest="plots", action="store_false", help="leave the PNG plots out"
    )


def run_report(args) -> int:
    import infer
    from infer.compare_command import table_and_report
    from infer.io import unwritable_folder
    from infer.result import NETCDF_SUFFIXES
    from infer.store import is_infer_store

    folders = [str(file) for file in args.runs if file.is_dir() and not is_infer_store(file)]
    if folders:
        print(
            f"infer report: error: {', '.join(folders)} is a folder; give the runs' files in "
            f"it ({folders[0].rstrip('/')}/*.nc).",
            file=sys.stderr,
        )
        return 2
    runs, seen, again = [], set(), []  # overlapping globs name a file twice: it is one run
    for file in args.runs:
        if file.resolve() in seen:
            again.append(str(file))
        else:
            runs.append(file)
            seen.add(file.resolve())
    if again:
        print(f"infer report: {', '.join(again)} given more than once; reported once.")
    names = [
        file.stem if file.suffix.lower() in (*NETCDF_SUFFIXES, ".zarr") else file.name
        for file in runs
    ]
    if len(set(names)) < len(names):
        repeated = sorted({name for name in names if names.count(name) > 1})
        print(
            f"infer report: error: two runs would be named {', '.join(repeated)} (a run is "
            "named by its file): give each run's file another name.",
            file=sys.stderr,
        )
        return 2
    results = {}
    for name, file in zip(names, runs, strict=True):
        try:
            results[name] = infer.load(file)
        except (OSError, ValueError) as err:
            print(f"infer report: error: {err}", file=sys.stderr)
            return 2
    folder = args.out or runs[0].parent
    if problem := unwritable_folder(folder, "infer report"):
        print(problem, file=sys.stderr)
        return 2
    targets = ", ".join(dict.fromkeys(result.target for result in results.values()))
    notes: list[str] = []
    title = f"infer report: {targets}"
    index = table_and_report(results, None, folder, args.min_ess, notes, title, args.plots)
    print(f"\nReport: {index}")
    for note in notes:
        print(f"warning: {note}")
    return 0
