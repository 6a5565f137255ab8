"""Cost and result of AIS log-likelihoods for the MNIST VAE and AAE decoders and GAN generator.

Uses the models trained by ``benchmarks/generative_quality.py --data mnist`` (in
``infer-output/quality/mnist``) and scores test images with
``models.generative.annealed_evaluation.evaluate_ais``: for the VAE beside the IWAE-5000
bound on the same images (AIS should not come out lower beyond its error), for the GAN with
the observation noise chosen on validation images. Reports gradient evaluations per image and
seconds, on whatever device JAX runs on. Results go to
``benchmarks/results/ais_generative_<platform>.json``.

Run: ``python benchmarks/ais_generative.py`` (``--images``, ``--temperatures``, ``--chains``).
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

import jax

from models.generative import annealed_evaluation, training
from models.generative.commands import format_ais

sys.path.insert(0, str(Path(__file__).resolve().parent))

from common import RESULTS, machine, positive_int, write_result  # noqa: E402


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--images", type=positive_int, default=50)
    parser.add_argument(
        "--gan-images",
        type=positive_int,
        default=5,
        help="the convolutional GAN's generator costs far more per gradient than the MLP "
        "decoders (20 images did not finish in 20 minutes on 2 CPU cores)",
    )
    parser.add_argument(
        "--validation", type=positive_int, default=5, help="GAN: images to pick sigma"
    )
    parser.add_argument("--gan-temperatures", type=positive_int, default=100)
    parser.add_argument("--temperatures", type=positive_int, default=300)
    parser.add_argument("--chains", type=positive_int, default=16)
    parser.add_argument("--runs", type=Path, default=Path("infer-output/quality/mnist"))
    parser.add_argument("--only", action="append", default=None, help="vae, aae or gan")
    args = parser.parse_args(argv)
    platform = jax.devices()[0].platform
    path = RESULTS / f"ais_generative_{platform}.json"
    earlier = json.loads(path.read_text()) if path.exists() and args.only else {}
    # each row says which commit it comes from; rows written before that field have the file's
    rows = {
        name: {"commit": earlier["machine"]["commit"], **row}
        for name, row in earlier.get("models", {}).items()
    }
    for model in args.only or ("vae", "aae", "gan"):
        trained = training.load(args.runs / model)
        report = annealed_evaluation.evaluate_ais(
            trained,
            num_images=args.gan_images if model == "gan" else args.images,
            num_temperatures=args.gan_temperatures if model == "gan" else args.temperatures,
            num_chains=args.chains,
            num_validation=args.validation,
        )
        print(format_ais(report), flush=True)
        stamp = machine("flax")
        rows[model] = {**report, "commit": stamp["commit"]}
        record = {"machine": stamp, "platform": platform, "models": rows}
        record["device"] = str(jax.devices()[0])
        write_result(path, record)
        print(f"wrote {path}", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
