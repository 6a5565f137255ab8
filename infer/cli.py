"""The ``infer`` command.

``infer compare`` runs several samplers on one target and prints their diagnostics side by
side; with no arguments it compares rejection, RWMH, MALA and NUTS on the banana target.
``infer sbc`` checks one sampler's calibration on a NumPyro target by simulation-based
calibration (:func:`infer.sbc`).
"""

from __future__ import annotations

import argparse
import difflib
import itertools
import sys
import warnings
from pathlib import Path

from infer import report_command
from infer.cli_plugins import add_import_flag, import_modules
from infer.cli_types import (
    add_progress_flags,
    integer_at_least,
    non_negative_int,
    path,
    positive_int,
    probability,
    report_folder_and_progress,
    seed,
)
from infer.startup import interrupted, noted_interrupts, output_closed, restore_interrupts

DEFAULT_SAMPLERS = ("rejection", "rwmh", "mala", "nuts")


class _Parser(argparse.ArgumentParser):
    """Errors as one line (what was wrong and the valid choices), no usage dump."""

    def error(self, message):
        choices = [
            f"{self.prog} {{{','.join(action.choices)}}}"
            for action in self._actions
            if isinstance(action.choices, dict)  # the sub-commands' action maps names to parsers
        ]
        hint = f" (usage: {choices[0]} ...; --help for more)" if choices else ""
        self.exit(2, f"{self.prog}: error: {message}{hint}\n")


def _sampler_list(text: str) -> list[str]:
    from infer import registry

    names = [name.strip() for name in text.split(",") if name.strip()]
    unknown = [name for name in names if name not in registry.names()]
    if unknown or not names:
        problem = (
            f"unknown sampler(s) {', '.join(map(repr, unknown))}" if unknown else "no sampler given"
        )
        raise argparse.ArgumentTypeError(
            f"{problem}; choose from {', '.join(registry.names())} (comma-separated)"
        )
    return list(dict.fromkeys(names))  # a sampler named twice runs once


class _PrintVersions(argparse.Action):
    """``--version``: the versions, looked up when asked for (ArviZ's import alone takes about
    a second, which every other command would pay if the parser looked them up)."""

    def __init__(self, option_strings, dest, help=None):
        super().__init__(option_strings, dest, nargs=0, default=argparse.SUPPRESS, help=help)

    def __call__(self, parser, namespace, values, option_string=None):
        from infer.version import versions

        print(" ".join(f"{name} {version}" for name, version in versions().items()))
        parser.exit(0)


def build_parser() -> argparse.ArgumentParser:
    parser = _Parser(prog="infer", description="Probabilistic inference on JAX.")
    parser.add_argument(
        "--version",
        action=_PrintVersions,
        help="print the versions of infer and of the libraries its results depend on",
    )
    commands = parser.add_subparsers(dest="command", parser_class=_Parser, required=True)
    _add_compare_command(commands)
    _add_sbc_command(commands)
    report_command.add_command(commands)
    from models.generative import commands as generative_commands

    generative_commands.add_commands(commands)
    return parser


def _add_compare_command(commands) -> None:
    from infer import registry
    from models import targets

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
    compare.add_argument("--chains", type=positive_int, default=4, help="chains (default 4)")
    compare.add_argument(
        "--samples",
        type=positive_int,
        default=None,
        help="draws kept per chain (default 2000; with --until-ess, at most --max-samples)",
    )
    compare.add_argument(
        "--warmup", type=non_negative_int, default=1000, help="warm-up steps (default 1000)"
    )
    compare.add_argument("--seed", type=seed, default=0, help="seed (default 0)")
    compare.add_argument(
        "--until-ess",
        type=positive_int,
        default=None,
        metavar="ESS",
        help="draw --samples per chain at a time until every parameter has bulk and tail ESS "
        ">= ESS and R-hat <= 1.01, up to --max-samples (Markov samplers)",
    )
    compare.add_argument(
        "--max-samples",
        type=positive_int,
        default=None,
        help="budget of draws per chain with --until-ess (default 20000)",
    )
    compare.add_argument(
        "--out",
        type=path,
        default=Path("infer-output"),
        help="folder for the report: table, plots, index.html and each run's NetCDF, in "
        "<out>/<target> (default ./infer-output)",
    )
    compare.add_argument(
        "--min-ess",
        type=non_negative_int,
        default=400,
        help="flag runs whose bulk or tail ESS is below this (default 400; with --until-ess, "
        "the smaller of the two; 0 turns the flag off)",
    )
    compare.add_argument(
        "--no-plots",
        dest="plots",
        action="store_false",
        help="leave the PNG plots out of the report (about a second each to draw): the "
        "table, the warnings and each run's NetCDF are written as usual",
    )
    add_progress_flags(compare)
    add_import_flag(compare)


def sbc_problems() -> dict:
    """Targets ``infer sbc`` can check: name -> ``(model, model_args, observed)``, a NumPyro
    model that simulates its observations when given ``None``."""
    from models import targets

    return {"eight_schools": (targets.eight_schools_model, (targets.EIGHT_SCHOOLS_SIGMA,), "y")}


def _add_sbc_command(commands) -> None:
    from infer import registry

    sbc = commands.add_parser(
        "sbc",
        help="check a sampler's calibration by simulation-based calibration",
        description="Draw parameters and data from a NumPyro target's prior, run the sampler "
        "on each simulated posterior, and test the ranks of the true parameters among the "
        "draws for uniformity (Talts et al. 2018; ECDF test of Säilynoja et al. 2022). "
        "Exits 1 when the sampler fails (or stuck chains leave it inconclusive), 3 when a "
        "run fails with an error.",
    )
    sbc.add_argument(
        "--target",
        default="eight_schools",
        choices=list(sbc_problems()),
        help="the NumPyro model whose prior is simulated (default eight_schools)",
    )
    sbc.add_argument(
        "--sampler",
        default="nuts",
        choices=registry.names(),
        help="a Markov-chain sampler that runs on the target (default nuts; a sampler that "
        "cannot is refused with the list of those that can)",
    )
    sbc.add_argument(
        "--simulations",
        type=integer_at_least(10),
        default=200,
        help="simulations, at least 10 (default 200)",
    )
    sbc.add_argument("--chains", type=positive_int, default=4, help="chains (default 4)")
    sbc.add_argument(
        "--samples", type=positive_int, default=25, help="draws kept per chain (default 25)"
    )
    sbc.add_argument(
        "--warmup", type=non_negative_int, default=500, help="warm-up steps (default 500)"
    )
    sbc.add_argument(
        "--thin", type=positive_int, default=4, help="keep every THIN-th step (default 4)"
    )
    sbc.add_argument(
        "--alpha",
        type=probability,
        default=0.01,
        help="family-wise level of the test (default 0.01)",
    )
    sbc.add_argument("--seed", type=seed, default=0, help="seed (default 0)")
    sbc.add_argument(
        "--out",
        type=path,
        default=Path("infer-output"),
        help=(
            "folder for the report: <out>/<target>/sbc_<sampler>.{md,png} and "
            "sbc_<sampler>_ranks.csv (default: infer-output)"
        ),
    )
    add_progress_flags(sbc)
    add_import_flag(sbc)


def sbc_table(check) -> str:
    """A Markdown table of an :class:`infer.SBCResult`: each parameter's ECDF-test p-value
    (the one that decides), Pearson's chi-square and its p-value, and ESS / draws; then the
    verdict."""
    from infer.rank_uniformity import chi2_test

    chi2, chi2_p, bins = chi2_test(check.ranks, check.num_draws)
    rows = ["| parameter | ECDF p | chi-square | its p | ESS / draws |", "|---" * 5 + "|"]
    for i, name in enumerate(check.names):
        mark = " **fails**" if name in check.failed else ""
        rows.append(
            f"| {name}{mark} | {check.pvalue[i]:.3g} | {chi2[i]:.1f} | {chi2_p[i]:.3g} | "
            f"{check.ess_ratio[i]:.2f} |"
        )
    verdict = check.verdict
    level = check.alpha / len(check.names)
    rows.append(
        f"\n{verdict}.\n\nECDF test, each parameter at {check.alpha:g} / {len(check.names)} = "
        f"{level:.2g}; {check.num_simulations} simulations x {check.num_draws} draws; "
        f"chi-square on {bins} bins, {bins - 1} degrees of freedom"
    )
    return "\n".join(rows)


def _sbc_refusal(name: str, target_name: str, target, sampler) -> str:
    """Why ``name`` cannot be checked on the target, and the samplers that can."""
    from infer import registry
    from infer.base import is_exact

    markov = [other for other, made in registry.runnable(target).items() if not is_exact(made)]
    runnable = ", ".join(markov) or "none"
    if sampler is None:
        why = f"{name} cannot run on {target_name}: it needs {registry.get(name).requires}."
    else:
        why = f"{name} is an exact sampler; sbc checks Markov-chain samplers."
    return f"infer sbc: error: {why} Samplers sbc can check on {target_name}: {runnable}."


def run_sbc(args) -> int:
    import dataclasses

    import numpy as np

    import infer
    from infer import registry
    from infer.base import is_exact
    from infer.calibration_checks import SBCInputError
    from infer.io import write_atomically
    from models import targets

    model, model_args, observed = sbc_problems()[args.target]
    target = targets.get(args.target)
    try:
        sampler = registry.make(args.sampler, target)
    except RuntimeError as err:  # a plug-in's factory failed: one line, as a failed run
        print(f"infer sbc: error: {err}", file=sys.stderr)
        return 3
    if sampler is None or is_exact(sampler):
        print(_sbc_refusal(args.sampler, args.target, target, sampler), file=sys.stderr)
        return 2
    folder = args.out / args.target
    stem = f"sbc_{args.sampler}"
    files = [f"{stem}{end}" for end in (".png", "_ranks.csv", ".md")]
    progress = report_folder_and_progress(folder, args.progress, "infer sbc", files)
    if progress is None:
        return 2
    print(
        f"sbc: {args.sampler} on {args.target}, {args.simulations} simulations of "
        f"{args.chains} chains x {args.samples} draws (thin {args.thin}, {args.warmup} "
        f"warm-up steps), seed {args.seed}",
        flush=True,
    )
    try:
        check = infer.sbc(
            args.seed, model, sampler, observed=observed, model_args=model_args,
            num_simulations=args.simulations, num_chains=args.chains, num_samples=args.samples,
            num_warmup=args.warmup, thin=args.thin, alpha=args.alpha,
            progress=progress,
        )  # fmt: skip
    except SBCInputError as err:  # the options' combination, refused before any run
        print(f"infer sbc: error: {err}", file=sys.stderr)
        return 2
    except Exception as err:  # noqa: BLE001 - a run failed: one line, not 1 (a failed check)
        here = " Here: fewer --chains, --samples or --simulations." * isinstance(err, MemoryError)
        print(f"infer sbc: error: {type(err).__name__}: {err}{here}", file=sys.stderr)
        return 3
    # titled with the target's name the user gave, not the model function's
    check = dataclasses.replace(check, model=args.target)
    table = sbc_table(check)
    header = ",".join(check.names)
    write_atomically(  # the ranks first: what the simulations made is kept whatever follows
        folder / f"{stem}_ranks.csv",
        lambda tmp: np.savetxt(
            tmp, check.ranks, fmt="%d", delimiter=",", header=header, comments=""
        ),
    )
    check.plot(path=folder / f"{stem}.png")
    timing = (
        f"{check.timing['total']:.1f} s in all: the first simulation {check.timing['first']:.1f}"
        f" s (compilation included), then {check.timing['per_simulation']:.3f} s each; "
        f"{check.compiled_simulations} simulation(s) compiled, "
        f"{check.divergent_simulations} had divergences"
    )
    notes = "".join(f"\n- {note}" for note in check.notes)
    page = (
        f"# infer sbc: {args.sampler} on {args.target}\n\n{table}\n\n{timing}.\n{notes}\n\n"
        f"![ECDF of each parameter's ranks minus the uniform CDF]({stem}.png)\n"
    )
    report = write_atomically(folder / f"{stem}.md", lambda tmp: Path(tmp).write_text(page))
    print(f"\n{table}\n\n{timing}.{notes}")
    print(f"\nReport: {report} (the plot {stem}.png, the ranks {stem}_ranks.csv)")
    return 0 if check.passed else 1


def _plain_warning(message, category, filename, lineno, file=None, line=None) -> None:
    """A warning as the command's other messages are printed: ``warning: ...`` on stderr,
    without Python's file, line and source."""
    print(f"warning: {message}", file=sys.stderr if file is None else file)


def main(argv=None) -> int:
    restore_interrupts()  # the command handles Ctrl-C from here, keeping what finished
    with noted_interrupts() as interrupts:
        code = _run(argv)
    return interrupted(argv) if interrupts and code != 130 else code  # one that was lost


def _run(argv) -> int:
    with warnings.catch_warnings():  # puts Python's own printing back when the command ends
        warnings.showwarning = _plain_warning
        try:
            return _main(argv)
        except KeyboardInterrupt:  # Ctrl-C: one line and the shell's code, no traceback
            return interrupted(argv)
        except BrokenPipeError:  # `infer ... | head`: one line, no traceback
            return output_closed(argv)


def _command_parser(parser: argparse.ArgumentParser, command: str) -> argparse.ArgumentParser:
    """The sub-command's own parser, so that its errors start ``infer compare: error``."""
    for action in parser._actions:
        if isinstance(action.choices, dict) and command in action.choices:
            return action.choices[command]
    return parser


def _unknown_options(parser: argparse.ArgumentParser, unknown: list[str]) -> str:
    """``unrecognized arguments: ...``, with the option meant where one is close (``--targt``:
    did you mean ``--target``?)."""
    known = [name for action in parser._actions for name in action.option_strings]
    guesses = [
        close[0]
        for option in unknown
        if option.startswith("-")
        and (close := difflib.get_close_matches(option.split("=")[0], known, n=1, cutoff=0.7))
    ]
    hint = f" (did you mean {', '.join(guesses)}?)" if guesses else ""
    return f"unrecognized arguments: {' '.join(unknown)}{hint}"


def _main(argv=None) -> int:
    argv = sys.argv[1:] if argv is None else list(argv)
    problem = import_modules(argv)  # before the parser reads the samplers they register
    parser = build_parser()
    if problem:
        command = next((a for a in argv if not a.startswith("-")), "")
        _command_parser(parser, command).error(problem)
    before_command = list(itertools.takewhile(lambda a: a.startswith("-"), argv))
    stray = [a for a in before_command if a not in ("-h", "--help", "--version")]
    if stray:  # else argparse says the command is missing, not that an option is misspelled
        parser.error(_unknown_options(parser, stray))
    args, unknown = parser.parse_known_args(argv)
    if unknown:  # the sub-command's parser says it: ``infer compare: error: ...``
        _command_parser(parser, args.command).error(
            _unknown_options(_command_parser(parser, args.command), unknown)
        )
    if args.command == "compare":
        parser = _command_parser(parser, "compare")
        if args.max_samples is not None and not args.until_ess:
            parser.error("--max-samples is the budget of --until-ess: give --until-ess too")
        args.max_samples = 20_000 if args.max_samples is None else args.max_samples
        if args.until_ess and args.samples is not None and args.samples > args.max_samples:
            parser.error(
                f"--samples {args.samples} is the draws between two checks of --until-ess, more "
                f"than --max-samples {args.max_samples}, the most the run may take, so the "
                "rule could not stop it early: lower --samples or raise --max-samples"
            )
        if args.samples is None:
            args.samples = min(2000, args.max_samples) if args.until_ess else 2000
        from infer import compare_command

        return compare_command.run_compare(args)
    if args.command == "sbc":
        return run_sbc(args)
    if args.command == "report":
        return report_command.run_report(args)
    if args.command in ("train", "evaluate"):
        from models.generative import commands as generative_commands

        return generative_commands.run(args)
    parser.error(f"unknown command {args.command!r}")
    return 2


if __name__ == "__main__":
    sys.exit(main())
