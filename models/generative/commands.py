"""The ``infer train`` and ``infer evaluate`` commands.

``add_commands(subparsers)`` adds both to the ``infer`` parser; ``run(args)`` runs the one
that was parsed. The model choices come from ``registry.py``, and what a model can be asked
for (reconstructions, AIS) from its family's capabilities.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import shlex
import sys
from pathlib import Path

from infer.cli_types import add_progress_flags, integer_at_least, path, positive_int, seed
from models.generative import data as datasets
from models.generative import registry
from models.generative.evaluation_text import format_ais, format_evaluation
from models.generative.family import (
    CAPABILITIES,
    DECODER_DENSITY,
    IMPORTANCE_WEIGHTS,
    RECONSTRUCTIONS,
)

MODELS = tuple(registry.names())
DATA = datasets.NAMES

# a covariance of generated images' features (the Fréchet distance), or AIS chains whose
# spread gives its standard error, need two at least
at_least_two = integer_at_least(2)


def _option(text: str) -> tuple[str, str]:
    if "=" not in text:
        raise argparse.ArgumentTypeError(f"expected NAME=VALUE, got {text!r}")
    name, value = text.split("=", 1)
    return name.strip(), value.strip()


def add_commands(subparsers) -> None:
    """Add ``train`` and ``evaluate`` to ``subparsers`` (from ``add_subparsers``)."""
    _add_train(subparsers)
    _add_evaluate(subparsers)


def _add_train(subparsers) -> None:
    train = subparsers.add_parser(
        "train",
        help=f"train a generative model ({', '.join(MODELS)}) on digits or MNIST",
        description="Train a generative model; writes checkpoints, metrics.json, loss.png, "
        "samples.png and (autoencoders) reconstructions.png into the output folder.",
    )
    train.add_argument("model", choices=MODELS, metavar="MODEL", help=", ".join(MODELS))
    train.add_argument("--data", choices=DATA, default="digits", help="digits (default) or mnist")
    train.add_argument(
        "--epochs",
        type=positive_int,
        help="passes over the training images (default 20; the GAN's: 2,000 steps)",
    )
    train.add_argument(
        "--batch-size",
        type=positive_int,
        default=128,
        help="images per step (default 128; each epoch drops the images past the last full batch)",
    )
    train.add_argument(
        "--seed", type=seed, default=0, help="seed of the initialisation and batches (default 0)"
    )
    train.add_argument(
        "--checkpoint-every",
        type=positive_int,
        default=5,
        help="epochs between checkpoints (default 5; the last two are kept)",
    )
    train.add_argument(
        "--resume", action="store_true", help="continue from the latest checkpoint in --out"
    )
    train.add_argument(
        "--validation",
        type=float,
        default=0.0,
        help="share of the training images held out to choose the epoch kept (e.g. 0.1; "
        "default 0: none)",
    )
    train.add_argument(
        "--patience",
        type=positive_int,
        help="stop after this many epochs without a better validation loss (needs --validation)",
    )
    train.add_argument(
        "--out",
        type=path,
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
    add_progress_flags(train)


def _add_evaluate(subparsers) -> None:
    evaluate = subparsers.add_parser(
        "evaluate",
        help="score a trained model on the test split (nats per image, samples)",
        description="Negative log-likelihood bounds (ELBO, IWAE-K) or exact NLL, the "
        "independent-pixel baseline, and the Fréchet distance and class coverage of samples.",
    )
    evaluate.add_argument("model", choices=MODELS, metavar="MODEL", help=", ".join(MODELS))
    evaluate.add_argument(
        "--data",
        choices=DATA,
        default=None,
        help="digits or mnist (default: the run's, with --run; else digits)",
    )
    evaluate.add_argument(
        "--run",
        type=path,
        default=None,
        help="the training output folder (default ./infer-output/train/MODEL-DATA)",
    )
    evaluate.add_argument(
        "--iwae",
        type=positive_int,
        action="append",
        default=None,
        metavar="K",
        help="IWAE sample counts (repeatable; default 100 and 5000)",
    )
    evaluate.add_argument(
        "--samples",
        type=at_least_two,
        default=None,
        help="generated images (at least 2; default 1000; not with --method ais)",
    )
    evaluate.add_argument(
        "--seed", type=seed, default=0, help="seed of the estimates and samples (default 0)"
    )
    evaluate.add_argument(
        "--method",
        choices=("bounds", "ais"),
        default="bounds",
        help="bounds (default): ELBO/IWAE or exact NLL and sample scores; ais: annealed "
        f"importance sampling of log p(x) for models with {CAPABILITIES[DECODER_DENSITY]} "
        f"({', '.join(registry.having(DECODER_DENSITY))})",
    )
    ais = evaluate.add_argument_group("with --method ais")
    ais.add_argument(
        "--ais-images", type=at_least_two, help="test images scored, at least 2; default 100"
    )
    ais.add_argument(
        "--temperatures", type=positive_int, help="steps of the annealing path (default 500)"
    )
    ais.add_argument(
        "--chains",
        type=integer_at_least(4),
        help="per image, default 16; at least 4 (an image's weights' ESS must reach 2)",
    )
    ais.add_argument(
        "--leapfrog", type=positive_int, help="HMC leapfrog steps per transition (default 10)"
    )
    add_progress_flags(evaluate)


def _parse_value(text: str):
    if text == "None":  # an option whose default is None (the value it stands for)
        return None
    for convert in (int, float):
        with contextlib.suppress(ValueError):
            return convert(text)
    return text


def run(args) -> int:
    """Run the parsed ``train`` or ``evaluate`` command; the exit status."""
    if args.command == "train":
        return run_train(args)
    if args.command == "evaluate":
        return run_evaluate(args)
    raise ValueError(f"not a generative-model command: {args.command!r}")


def run_train(args) -> int:
    from infer.io import unwritable_folder
    from models.generative import training

    out = args.out or Path("infer-output") / "train" / f"{args.model}-{args.data}"
    if problem := unwritable_folder(out, "infer train", keep=False):  # before data, compiling
        print(problem, file=sys.stderr)
        return 2
    progress = sys.stderr.isatty() if args.progress is None else args.progress
    try:
        names = [name for name, _ in args.option]
        if twice := sorted({name for name in names if names.count(name) > 1}):
            raise ValueError(f"--option {', '.join(twice)} given twice: give each once.")
        options = {name: _parse_value(value) for name, value in args.option}
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
            validation=args.validation,
            patience=args.patience,
            **options,
        )
    except (ValueError, TypeError) as err:
        print(f"infer train: error: {err}", file=sys.stderr)
        return 2
    except (FloatingPointError, MemoryError) as err:
        print(f"infer train: error: {err}", file=sys.stderr)
        return 1
    except OSError as err:  # a checkpoint or output file that could not be written
        print(f"infer train: error: {type(err).__name__}: {err}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        if training.holds_checkpoints(out):
            then = "keeps the checkpoints written so far: rerun the same command with --resume"
        else:
            then = "holds no checkpoint yet (one is written every --checkpoint-every epochs): "
            then += "rerun the same command, without --resume"
        print(f"\ninfer train: interrupted. {out} {then}.", file=sys.stderr)
        return 130
    metrics = trained.metrics
    done = metrics["epoch"][-1]
    print(
        f"trained {args.model} on {args.data} for {done} epoch{'' if done == 1 else 's'}: "
        f"the last epoch's test loss {metrics['test_loss'][-1]:.3f}"
    )
    if metrics.get("best_epoch") is not None:
        best = metrics["best_epoch"]
        stopped = metrics.get("stopped_early")
        print(
            f"kept epoch {best} (lowest validation loss "
            f"{metrics['validation_loss'][best - 1]:.3f}, test loss "
            f"{metrics['test_loss'][best - 1]:.3f})"
            + (f"; stopped early after epoch {stopped}" if stopped else "")
        )
    reconstructs = RECONSTRUCTIONS in registry.get(args.model).capabilities
    print(
        f"outputs in {out}: metrics.json, loss.png, samples.png"
        + (", reconstructions.png" if reconstructs else "")
        + ", checkpoints/"
    )
    return 0


#: The ``--method ais`` options' defaults (``None`` in the parser: given or not is known).
AIS_DEFAULTS = {"ais_images": 100, "temperatures": 500, "chains": 16, "leapfrog": 10}


def run_evaluate(args) -> int:
    from infer.io import unwritable_folder, write_atomically
    from models.generative import evaluation, training

    given = [f"--{name.replace('_', '-')}" for name in AIS_DEFAULTS if getattr(args, name)]
    if problem := _method_options(args, given):
        print(f"infer evaluate: error: {problem}", file=sys.stderr)
        return 2
    args.samples = 1000 if args.samples is None else args.samples
    family = registry.get(args.model)
    for name, default in AIS_DEFAULTS.items():
        if getattr(args, name) is None:
            setattr(args, name, default)

    data = args.data or "digits"
    run_folder = args.run or Path("infer-output") / "train" / f"{args.model}-{data}"
    try:
        trained = training.load(run_folder)
    except (ValueError, FileNotFoundError) as err:
        print(f"infer evaluate: error: {err}", file=sys.stderr)
        return 2
    scores_file = run_folder / f"evaluation{'_ais' if args.method == 'ais' else ''}.json"
    problem = unwritable_folder(run_folder, "infer evaluate", option="--run")
    if problem is None and scores_file.is_dir():
        problem = f"infer evaluate: error: --run: {scores_file} is a folder."
    if problem:  # before the work, which can take an hour, not after it
        fix = "copy the run folder somewhere writable and pass --run the copy"
        print(f"{problem[:-1]}; the scores are written there: {fix}.", file=sys.stderr)
        return 2
    config = trained.config
    args.data = args.data or config["data"]  # --run alone: the data it was trained on
    if (config["model"], config["data"]) != (args.model, args.data):
        fix = f"infer evaluate {config['model']} --run {shlex.quote(str(run_folder))}"
        print(
            f"infer evaluate: error: {run_folder} holds a {config['model']} trained on "
            f"{config['data']}, not {args.model} on {args.data}: evaluate it with `{fix}`, "
            f"or pass --run the folder of a {args.model} trained on {args.data}.",
            file=sys.stderr,
        )
        return 2
    if args.iwae and IMPORTANCE_WEIGHTS not in family.capabilities:
        print(
            f"infer evaluate: error: --iwae sets the IWAE bound's sample counts, and "
            f"{args.model} has no IWAE bound: it lacks {registry.describe(IMPORTANCE_WEIGHTS)}.",
            file=sys.stderr,
        )
        return 2
    if args.method == "ais":
        if DECODER_DENSITY not in family.capabilities:
            print(
                f"infer evaluate: error: --method ais anneals over a latent code and "
                f"{args.model} has no latent code: it lacks {registry.describe(DECODER_DENSITY)}; "
                "use --method bounds.",
                file=sys.stderr,
            )
            return 2
        report = _evaluate_ais(trained, args)
        print(format_ais(report))
    else:
        report = evaluation.evaluate(
            trained,
            iwae_samples=tuple(args.iwae or (100, 5000)),
            num_generated=args.samples,
            seed=args.seed,
            progress=sys.stderr.isatty() if args.progress is None else args.progress,
        )
        print(format_evaluation(report))
    path = write_atomically(
        scores_file, lambda tmp: Path(tmp).write_text(json.dumps(report, indent=1))
    )
    print(f"\nwritten to {path}")
    return 0


def _method_options(args, ais_given: list[str]) -> str | None:
    """Why options given do not go with ``--method`` (``ais_given``: the AIS options given),
    or None."""
    if args.method != "ais" and ais_given:
        verb = "applies" if len(ais_given) == 1 else "apply"
        return f"{', '.join(ais_given)} {verb} only with --method ais."
    if args.method == "ais" and args.samples is not None:
        return (
            "--samples (images generated for the sample scores) applies only with --method bounds."
        )
    if args.method == "ais" and len(args.iwae or ()) > 1:
        counts = ", ".join(map(str, args.iwae))
        return (
            f"--method ais takes one --iwae, the sample count of the IWAE bound its estimate is "
            f"set beside; got {counts}."
        )
    return None


def _evaluate_ais(trained, args) -> dict:
    from models.generative import annealed_evaluation

    progress = sys.stderr.isatty() if args.progress is None else args.progress
    return annealed_evaluation.evaluate_ais(
        trained,
        num_images=args.ais_images,
        num_temperatures=args.temperatures,
        num_chains=args.chains,
        num_leapfrog=args.leapfrog,
        iwae_samples=max(args.iwae or [5000]),
        seed=args.seed,
        progress=progress,
    )
