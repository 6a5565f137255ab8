"""The ``infer`` command.

``infer compare`` runs several samplers on one target and prints their diagnostics side by
side; with no arguments it compares rejection, RWMH, MALA and NUTS on the banana target.
"""

from __future__ import annotations

import argparse
import sys
import warnings
from pathlib import Path

SAMPLERS = ("rejection", "rwmh", "mala", "nuts", "hmc")
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
    names = [name.strip() for name in text.split(",") if name.strip()]
    unknown = [name for name in names if name not in SAMPLERS]
    if unknown or not names:
        raise argparse.ArgumentTypeError(
            f"unknown sampler(s) {', '.join(map(repr, unknown)) or '(none given)'}; "
            f"choose from {', '.join(SAMPLERS)} (comma-separated)"
        )
    return names


def build_parser() -> argparse.ArgumentParser:
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
        help=f"comma-separated, from {', '.join(SAMPLERS)} (default "
        f"{','.join(DEFAULT_SAMPLERS)}; rejection only where the target has a proposal)",
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
    _add_generative_commands(commands)
    return parser


MODELS = ("vae", "gan", "nade", "aae")
DATA = ("digits", "mnist")


def _option(text: str) -> tuple[str, str]:
    if "=" not in text:
        raise argparse.ArgumentTypeError(f"expected NAME=VALUE, got {text!r}")
    name, value = text.split("=", 1)
    return name.strip(), value.strip()


def _add_generative_commands(commands) -> None:
    train = commands.add_parser(
        "train",
        help="train a generative model (vae, gan, nade, aae) on digits or MNIST",
        description="Train a generative model; writes checkpoints, metrics.json, loss.png, "
        "samples.png and (autoencoders) reconstructions.png into the output folder.",
    )
    train.add_argument("model", choices=MODELS, metavar="MODEL", help=", ".join(MODELS))
    train.add_argument("--data", choices=DATA, default="digits", help="digits (default) or mnist")
    train.add_argument("--epochs", type=_positive_int, default=20, help="default 20")
    train.add_argument("--batch-size", type=_positive_int, default=128, help="default 128")
    train.add_argument("--seed", type=_non_negative_int, default=0, help="default 0")
    train.add_argument(
        "--checkpoint-every", type=_positive_int, default=5, help="epochs between checkpoints"
    )
    train.add_argument(
        "--resume", action="store_true", help="continue from the latest checkpoint in --out"
    )
    train.add_argument(
        "--out",
        type=Path,
        default=None,
        help="output folder (default ./infer-output/train/MODEL-DATA)",
    )
    train.add_argument(
        "--option",
        type=_option,
        action="append",
        default=[],
        metavar="NAME=VALUE",
        help="a model option, e.g. variant=conv, latent_dim=16, likelihood=binomial, "
        "train_samples=10, learning_rate=0.0005 (repeatable)",
    )
    shown = train.add_mutually_exclusive_group()
    shown.add_argument("--progress", dest="progress", action="store_true", default=None)
    shown.add_argument("--no-progress", dest="progress", action="store_false")

    evaluate = commands.add_parser(
        "evaluate",
        help="score a trained model on the test split (nats per image, samples)",
        description="Negative log-likelihood bounds (ELBO, IWAE-K) or exact NLL, the "
        "independent-pixel baseline, and the Fréchet distance and class coverage of samples.",
    )
    evaluate.add_argument("model", choices=MODELS, metavar="MODEL", help=", ".join(MODELS))
    evaluate.add_argument("--data", choices=DATA, default="digits")
    evaluate.add_argument(
        "--run",
        type=Path,
        default=None,
        help="the training output folder (default ./infer-output/train/MODEL-DATA)",
    )
    evaluate.add_argument(
        "--iwae",
        type=_positive_int,
        action="append",
        default=None,
        metavar="K",
        help="IWAE sample counts (repeatable; default 100 and 5000)",
    )
    evaluate.add_argument("--samples", type=_positive_int, default=1000, help="generated images")
    evaluate.add_argument("--seed", type=_non_negative_int, default=0)
    evaluate.add_argument(
        "--method",
        choices=("bounds", "ais"),
        default="bounds",
        help="bounds (default): ELBO/IWAE or exact NLL and sample scores; ais: annealed "
        "importance sampling of log p(x) for the vae or aae decoder or the gan generator",
    )
    ais = evaluate.add_argument_group("with --method ais")
    ais.add_argument("--ais-images", type=_positive_int, default=100, help="test images scored")
    ais.add_argument("--temperatures", type=_positive_int, default=500, help="default 500")
    ais.add_argument("--chains", type=_positive_int, default=16, help="per image, default 16")
    ais.add_argument("--leapfrog", type=_positive_int, default=10, help="steps per transition")
    shown = evaluate.add_mutually_exclusive_group()
    shown.add_argument("--progress", dest="progress", action="store_true", default=None)
    shown.add_argument("--no-progress", dest="progress", action="store_false")


def _parse_value(text: str):
    for convert in (int, float):
        try:
            return convert(text)
        except ValueError:
            pass
    return text


def run_train(args) -> int:
    from models.generative import training

    out = args.out or Path("infer-output") / "train" / f"{args.model}-{args.data}"
    options = {name: _parse_value(value) for name, value in args.option}
    progress = sys.stderr.isatty() if args.progress is None else args.progress
    try:
        trained = training.train(
            args.model,
            args.data,
            epochs=args.epochs,
            batch_size=args.batch_size,
            seed=args.seed,
            out=out,
            checkpoint_every=args.checkpoint_every,
            resume=args.resume,
            progress=progress,
            **options,
        )
    except ValueError as err:
        print(f"infer train: error: {err}", file=sys.stderr)
        return 2
    metrics = trained.metrics
    print(
        f"trained {args.model} on {args.data} for {metrics['epoch'][-1]} epochs: final test "
        f"loss {metrics['test_loss'][-1]:.3f}"
    )
    print(
        f"outputs in {out}: metrics.json, loss.png, samples.png"
        + (", reconstructions.png" if args.model in ("vae", "aae") else "")
        + ", checkpoints/"
    )
    return 0


def run_evaluate(args) -> int:
    import json

    from infer.io import write_atomically
    from models.generative import evaluation, training

    run = args.run or Path("infer-output") / "train" / f"{args.model}-{args.data}"
    try:
        trained = training.load(run)
    except (ValueError, FileNotFoundError) as err:
        print(f"infer evaluate: error: {err}", file=sys.stderr)
        return 2
    config = trained.config
    if (config["model"], config["data"]) != (args.model, args.data):
        print(
            f"infer evaluate: error: {run} holds a {config['model']} trained on "
            f"{config['data']}, not {args.model} on {args.data}.",
            file=sys.stderr,
        )
        return 2
    if args.method == "ais":
        from models.generative import annealed_evaluation

        if args.model not in ("vae", "aae", "gan"):
            print(
                f"infer evaluate: error: --method ais scores the vae or aae decoder or the "
                f"gan generator; {args.model} has no latent code to anneal over "
                "(use --method bounds).",
                file=sys.stderr,
            )
            return 2
        progress = sys.stderr.isatty() if args.progress is None else args.progress
        report = annealed_evaluation.evaluate_ais(
            trained,
            num_images=args.ais_images,
            num_temperatures=args.temperatures,
            num_chains=args.chains,
            num_leapfrog=args.leapfrog,
            iwae_samples=max(args.iwae or [5000]),
            seed=args.seed,
            progress=progress,
        )
        print(format_ais(report))
        name = "evaluation_ais.json"
    else:
        report = evaluation.evaluate(
            trained,
            iwae_samples=tuple(args.iwae or (100, 5000)),
            num_generated=args.samples,
            seed=args.seed,
        )
        print(format_evaluation(report))
        name = "evaluation.json"
    path = write_atomically(
        run / name, lambda tmp: Path(tmp).write_text(json.dumps(report, indent=1))
    )
    print(f"\nwritten to {path}")
    return 0


def format_evaluation(report: dict) -> str:
    lines = [f"{report['model']} on {report['data']} ({report['test_images']} test images)"]
    for key, value in report.items():
        if key.startswith("nll_"):
            label = key[4:].replace("_", "-")
            lines.append(
                f"  NLL {label:<20} {value['mean']:9.2f} ± {value['standard_error']:.2f} nats"
            )
    if "improvement_over_baseline" in report:
        lines.append(
            f"  better than independent pixels by {report['improvement_over_baseline']:.1f} nats"
        )
    samples = report["samples"]
    lines.append(
        f"  samples: Fréchet distance {samples['frechet_distance']:.2f} (test vs train "
        f"{samples['frechet_distance_test_vs_train']:.2f}), classes covered "
        f"{samples['classes_covered']}/10 (classifier accuracy "
        f"{samples['classifier_test_accuracy']:.3f})"
    )
    return "\n".join(lines)


def format_ais(report: dict) -> str:
    nll, cost = report["nll_ais"], report["cost"]
    lines = [
        f"{report['model']} on {report['data']}: AIS over {report['scored_images']} test images "
        f"({report['settings']['num_temperatures']} temperatures, "
        f"{report['settings']['num_chains']} chains per image)",
        f"  NLL ais                  {nll['mean']:9.2f} ± {nll['standard_error']:.2f} "
        f"{report['unit']}",
    ]
    for key, value in report.items():
        if key.startswith("nll_iwae"):
            lines.append(
                f"  NLL {key[4:].replace('_', '-'):<20} {value['mean']:9.2f} ± "
                f"{value['standard_error']:.2f} (same images)"
            )
    if "ais_minus_iwae" in report:
        gap = report["ais_minus_iwae"]
        lines.append(
            f"  log p: AIS - IWAE = {gap['mean']:+.2f} ± {gap['standard_error']:.2f} nats "
            "(AIS should not be lower beyond its error)"
        )
    if "noise_std" in report:
        lines.append(
            f"  observation noise std {report['noise_std']} (best on "
            f"{report['validation_images']} validation images)"
        )
    lines.append(
        f"  cost: {cost['grads_per_image']} gradients per image, {cost['seconds']:.1f} s "
        f"({cost['seconds_per_image']:.2f} s per image on {cost['device']}); weights' ESS "
        f"median {report['ais_ess']['median']:.1f} of {report['settings']['num_chains']}"
    )
    return "\n".join(lines)


def make_sampler(name: str, target):
    """The sampler ``name`` with its defaults, or ``None`` if it cannot run on ``target``."""
    import infer

    if name == "rejection":
        if target.rejection_proposal is None:
            return None
        return infer.rejection(
            target.rejection_proposal, log_envelope=target.notes.get("log_envelope")
        )
    return {"rwmh": infer.rwmh, "mala": infer.mala, "nuts": infer.nuts, "hmc": infer.hmc}[name]()


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
    from infer.report import NOTES, as_text, write_report
    from models import targets

    target = targets.get(args.target)
    out_folder = args.out / target.name
    progress = sys.stderr.isatty() if args.progress is None else args.progress
    settings = (
        f"{args.chains} chains x {args.samples} draws, {args.warmup} warm-up steps, "
        f"seed {args.seed}"
    )
    print(f"target {target.name}: {target.description} {settings}")
    results, notes = {}, []
    for name in args.samplers:
        sampler = make_sampler(name, target)
        if sampler is None:
            notes.append(f"{name}: skipped, target {target.name} has no rejection proposal")
            continue
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
                )
        except (ValueError, RuntimeError) as err:
            notes.append(f"{name}: failed: {err}")
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
    return 0


def main(argv=None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    if args.command == "compare":
        return run_compare(args)
    if args.command == "train":
        return run_train(args)
    if args.command == "evaluate":
        return run_evaluate(args)
    parser.error(f"unknown command {args.command!r}")
    return 2


if __name__ == "__main__":
    sys.exit(main())
