"""The ``infer`` command.

``infer compare`` runs several samplers on one target and prints their diagnostics side by
side; with no arguments it compares rejection, RWMH, MALA and NUTS on the banana target.
"""

from __future__ import annotations

import argparse
import sys
import warnings
from pathlib import Path

DEFAULT_SAMPLERS = ("rejection", "rwmh", "mala", "nuts")


class _Parser(argparse.ArgumentParser):
    """Errors as one line (what was wrong and the valid choices), no usage dump."""

    def error(self, message):
        self.exit(2, f"{self.prog}: error: {message}\n")


def _positive_int(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a positive integer, got {text!r}") from None
    if value < 1:
        raise argparse.ArgumentTypeError(f"expected a positive integer, got {value}")
    return value


def _non_negative_int(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected an integer >= 0, got {text!r}") from None
    if value < 0:
        raise argparse.ArgumentTypeError(f"expected an integer >= 0, got {value}")
    return value


def _sampler_list(text: str) -> list[str]:
    from infer import registry

    names = [name.strip() for name in text.split(",") if name.strip()]
    unknown = [name for name in names if name not in registry.names()]
    if unknown or not names:
        raise argparse.ArgumentTypeError(
            f"unknown sampler(s) {', '.join(map(repr, unknown)) or '(none given)'}; "
            f"choose from {', '.join(registry.names())} (comma-separated)"
        )
    return names


def build_parser() -> argparse.ArgumentParser:
    from infer import registry
    from models import targets

    parser = _Parser(prog="infer", description="Probabilistic inference on JAX.")
    commands = parser.add_subparsers(dest="command", parser_class=_Parser, required=True)
    compare = commands.add_parser(
        "compare",
        help="run several samplers on one target and compare their diagnostics",
        description="Run samplers on a target and print ESS, R-hat, ESS/s, acceptance, "
        "divergences, timings and the error against the known answer side by side.",
    )
    compare.add_argument(
        "--target",
        default=targets.DEFAULT,
        choices=targets.names(),
        metavar="NAME",
        help=f"built-in target (default {targets.DEFAULT}); one of: {', '.join(targets.names())}",
    )
    compare.add_argument(
        "--samplers",
        type=_sampler_list,
        default=list(DEFAULT_SAMPLERS),
        metavar="LIST",
        help=f"comma-separated, from {', '.join(registry.names())} (default "
        f"{','.join(DEFAULT_SAMPLERS)}; each only where it can run on the target)",
    )
    compare.add_argument("--chains", type=_positive_int, default=4, help="chains (default 4)")
    compare.add_argument(
        "--samples", type=_positive_int, default=2000, help="draws kept per chain (default 2000)"
    )
    compare.add_argument(
        "--warmup", type=_non_negative_int, default=1000, help="warm-up steps (default 1000)"
    )
    compare.add_argument("--seed", type=_non_negative_int, default=0, help="seed (default 0)")
    compare.add_argument(
        "--until-ess",
        type=_positive_int,
        default=None,
        metavar="ESS",
        help="draw --samples per chain at a time until every parameter has bulk and tail ESS "
        ">= ESS and R-hat <= 1.01, up to --max-samples (Markov samplers)",
    )
    compare.add_argument(
        "--max-samples",
        type=_positive_int,
        default=20_000,
        help="budget of draws per chain with --until-ess (default 20000)",
    )
    compare.add_argument(
        "--out",
        type=Path,
        default=Path("infer-output"),
        help="folder for the report: table, plots, index.html and each run's NetCDF, in "
        "<out>/<target> (default ./infer-output)",
    )
    compare.add_argument(
        "--min-ess",
        type=_positive_int,
        default=400,
        help="flag runs whose bulk or tail ESS is below this (default 400)",
    )
    shown = compare.add_mutually_exclusive_group()
    shown.add_argument(
        "--progress",
        dest="progress",
        action="store_true",
        default=None,
        help="show progress bars (default: when writing to a terminal)",
    )
    shown.add_argument("--no-progress", dest="progress", action="store_false")
    from models.generative import commands as generative_commands

    generative_commands.add_commands(commands)
    return parser


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


def run_compare(args) -> int:
    import infer
    from infer import registry
    from infer.base import is_exact
    from infer.report import NOTES, as_text, write_report
    from models import targets

    target = targets.get(args.target)
    out_folder = args.out / target.name
    progress = sys.stderr.isatty() if args.progress is None else args.progress
    settings = (
        f"{args.chains} chains x {args.samples} draws, {args.warmup} warm-up steps, "
        f"seed {args.seed}"
    )
    if args.until_ess:
        settings += f", until ESS >= {args.until_ess} (at most {args.max_samples} draws)"
    print(f"target {target.name}: {target.description} {settings}")
    results, notes, failed = {}, [], []
    for name in args.samplers:
        entry = registry.get(name)
        sampler = entry.make(target)
        if sampler is None:
            needs = entry.requires or "something this target lacks"
            notes.append(f"{name}: skipped, target {target.name} lacks what it needs: {needs}")
            continue
        until = None
        if args.until_ess and not is_exact(sampler):
            until = infer.converged(ess=args.until_ess, max_samples=args.max_samples)
        if not progress:
            print(f"  running {name} ...", flush=True)
        try:
            with warnings.catch_warnings(record=True) as caught:
                warnings.simplefilter("always")
                results[name] = infer.sample(
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
            failed.append(name)
            notes.append(f"{name}: failed: {type(err).__name__}: {err}")
            continue
        notes.extend(str(w.message) for w in caught if "DiagnosticWarning" not in str(w.category))
    if not results:
        for note in notes:
            print(f"note: {note}")
        return 1
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        table = infer.compare(results, target, min_ess=args.min_ess)
    notes.extend(str(w.message) for w in caught)
    print()
    print(as_text(table, TABLE_COLUMNS))
    print(f"\n{NOTES}")
    index = write_report(
        results, table, out_folder, notes=notes, title=f"infer compare: {target.name}, {settings}"
    )
    print(f"\nReport: {index} (table as CSV and Markdown, PNG plots, each run's NetCDF)")
    for note in notes:
        print(f"warning: {note}")
    if failed:
        print(f"error: {', '.join(failed)} failed (see above)", file=sys.stderr)
        return 1
    return 0


def main(argv=None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    if args.command == "compare":
        return run_compare(args)
    if args.command in ("train", "evaluate"):
        from models.generative import commands as generative_commands

        return generative_commands.run(args)
    parser.error(f"unknown command {args.command!r}")
    return 2


if __name__ == "__main__":
    sys.exit(main())
