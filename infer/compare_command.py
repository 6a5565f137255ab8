"""``infer compare``: run samplers on a target side by side and write the report."""

from __future__ import annotations

import contextlib
import shlex
import sys
import warnings
from pathlib import Path

from infer.cli_types import report_folder_and_progress
from infer.startup import output_closed

TABLE_COLUMNS = (
    "min_ess_bulk",
    "min_ess_tail",
    "max_rhat",
    "ess_bulk_per_second",
    "acceptance_rate",
    "divergences",
    "compile_seconds",
    "sampling_seconds",
    "max_abs_z",
    "flags",
)


def _run_one(args, target, name: str, progress, notes: list, failed: list):
    """One sampler's run for ``infer compare``: the result, or ``None`` when it cannot run
    on the target (said in ``notes``) or fails (said in ``notes``, named in ``failed``)."""
    import infer
    from infer import registry
    from infer.base import is_exact

    entry = registry.get(name)
    try:
        sampler = registry.make(name, target)
    except RuntimeError as err:  # a plug-in's factory: a note, and the other runs go on
        notes.append(f"{name}: failed: {err}")
        failed.append(name)
        return None
    if sampler is None:
        needs = entry.requires or "something this target lacks"
        notes.append(f"{name}: skipped, target {target.name} lacks what it needs: {needs}")
        return None
    until = None
    if args.until_ess and not is_exact(sampler):
        until = infer.converged(ess=args.until_ess, max_samples=args.max_samples)
    elif args.until_ess:
        notes.append(
            f"{name}: --until-ess applies to Markov samplers; {name} makes exact, independent "
            f"draws and drew --samples {args.samples} per chain (its ESS is about their count)"
        )
    if not progress:
        print(f"  running {name} ...", flush=True)
    try:
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            result = infer.sample(
                args.seed,
                target,
                sampler,
                num_chains=args.chains,
                num_samples=args.samples,
                num_warmup=args.warmup,
                progress=progress,
                until=until,
            )
    except Exception as err:  # noqa: BLE001 - report every sampler's failure, then exit 1
        # the memory check's fixes are infer.sample's options, thin= and store= among them
        here = " Here: fewer --chains or --samples." if isinstance(err, MemoryError) else ""
        notes.append(f"{name}: failed: {type(err).__name__}: {err}{here}")
        failed.append(name)
        return None
    notes.extend(str(w.message) for w in caught if "DiagnosticWarning" not in str(w.category))
    stopped = result.info.get("until", {})
    if stopped.get("stopped") == "max_samples":  # compare's flags do not say this one
        notes.append(
            f"{name}: stopped at the budget of {args.max_samples} draws per chain before every "
            f"parameter reached ESS {args.until_ess} and R-hat 1.01; its row is from those draws."
        )
    if stopped:
        print(f"  {name}: {stopped['stopped']} after {stopped['num_draws']} draws per chain")
    return result


def _save_finished(results: dict, folder) -> str:
    """Save the runs that finished before an interrupt, each as its NetCDF (written
    atomically), and say where; the table and report need every run, so they are not made."""
    from infer.report import retire_pages

    if not results:
        return "No sampler had finished; nothing was written."
    folder.mkdir(parents=True, exist_ok=True)
    removed = retire_pages(folder, results)  # an earlier report's would describe other runs
    for name, result in results.items():
        result.save(folder / f"{name}.nc")
    saved = ", ".join(f"{name}.nc" for name in results)
    files = " ".join(shlex.quote(str(folder / f"{name}.nc")) for name in results)
    retired = (
        f" Report files that were in the folder (an earlier report's, or this one's, half "
        f"made) are removed: {', '.join(removed)}."
        if removed
        else ""
    )
    return (
        f"The finished runs are saved in {folder}: {saved} (infer.load reads them); the report "
        f"(its table files, pages and pictures) was not written: `infer report {files}` makes "
        f"it from these runs, or run the command again.{retired}"
    )


def _stopped(stop: BaseException, results: dict, folder) -> int:
    """Ctrl-C, or the end of the program reading the output (``infer compare | head``):
    the finished runs saved, one line said, and the exit code."""
    if isinstance(stop, BrokenPipeError):
        return output_closed(["compare"], _save_finished(results, folder))
    print(f"\ninfer compare: interrupted. {_save_finished(results, folder)}")
    return 130


def table_and_report(results, target, folder, min_ess, notes: list, title, plots) -> Path:
    """``infer.compare`` of the runs (its warnings added to ``notes``), the table printed,
    and the report written into ``folder``; returns its ``index.html``."""
    import infer
    from infer.report import as_text, notes_of, write_report

    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        table = infer.compare(results, target, min_ess=min_ess)
    notes.extend(str(w.message) for w in caught)
    print()
    print(as_text(table, TABLE_COLUMNS))
    print(f"\n{notes_of(table, TABLE_COLUMNS)}")
    return write_report(results, table, folder, notes=notes, title=title, plots=plots)


def run_compare(args) -> int:
    from infer.report import report_files
    from models import targets

    target = targets.get(args.target)
    out_folder = args.out / target.name
    made_here = [folder for folder in (out_folder, args.out) if not folder.exists()]
    files = report_files(args.samplers)
    progress = report_folder_and_progress(out_folder, args.progress, "infer compare", files)
    if progress is None:
        return 2
    per = " per check" if args.until_ess else ""
    settings = (
        f"{args.chains} chain{'s' * (args.chains != 1)} x {args.samples} draws{per}, "
        f"{args.warmup} warm-up steps, seed {args.seed}"
    )
    if args.until_ess:
        settings += f", until ESS >= {args.until_ess} (at most {args.max_samples} draws)"
    print(f"target {target.name}: {target.description} {settings}")
    results, notes, failed = {}, [], []
    try:
        for name in args.samplers:
            result = _run_one(args, target, name, progress, notes, failed)
            if result is not None:
                results[name] = result
    except (KeyboardInterrupt, BrokenPipeError) as stop:
        return _stopped(stop, results, out_folder)
    if not results:
        for folder in made_here:  # made and left empty: removed, as if it had not run
            with contextlib.suppress(OSError):
                folder.rmdir()
        for note in notes:
            print(f"note: {note}")
        print(
            f"infer compare: error: no sampler ran on {target.name} (see the notes above)",
            file=sys.stderr,
        )
        if failed:
            return 1
        from infer import registry  # every sampler was skipped: a usage error, as in sbc

        runnable = ", ".join(registry.runnable(target))
        print(f"Samplers that can run on {target.name}: {runnable}.", file=sys.stderr)
        return 2
    min_ess = min(args.min_ess, args.until_ess) if args.until_ess else args.min_ess
    title = f"infer compare: {target.name}, {settings}"
    try:  # the statistics and the report: an interrupt here keeps every run too
        index = table_and_report(results, target, out_folder, min_ess, notes, title, args.plots)
    except (KeyboardInterrupt, BrokenPipeError) as stop:
        return _stopped(stop, results, out_folder)
    plotted = "PNG plots, " if args.plots else ""
    print(f"\nReport: {index} (table as CSV and Markdown, {plotted}each run's NetCDF)")
    for note in notes:  # a sampler skipped is a note, as when none ran; the rest warnings
        print(f"{'note' if ': skipped, ' in note else 'warning'}: {note}")
    if failed:
        print(f"infer compare: error: {', '.join(failed)} failed (see above)", file=sys.stderr)
        return 1
    return 0
