"""The text ``infer evaluate`` prints: a generative model's scores, each named for what it
is (an exact NLL, or an upper bound on it), with the standard errors of their means."""

from __future__ import annotations

#: What each score of the NLL is: the ELBO and IWAE bounds (and AIS, in expectation) lie
#: above the exact NLL, which only NADE has.
BOUND_LABELS = {"elbo": "upper bound", "iwae": "upper bound", "ais": "upper bound in mean"}


def _label(key: str) -> str:
    """``nll_iwae_100`` -> ``iwae-100 (upper bound)``; ``nll_exact`` -> ``exact``."""
    label = key[4:].replace("_", "-")
    kind = BOUND_LABELS.get(label.split("-")[0])
    return f"{label} ({kind})" if kind else label


def format_evaluation(report: dict) -> str:
    """The text of :func:`models.generative.evaluation.evaluate`'s report."""
    lines = [f"{report['model']} on {report['data']} ({report['test_images']} test images)"]
    for key, value in report.items():
        if key.startswith("nll_"):
            lines.append(
                f"  NLL {_label(key):<32} {value['mean']:9.2f} ± {value['standard_error']:.2f} nats"
            )
    if "improvement_over_baseline" in report:
        gain = report["improvement_over_baseline"]
        than = "better" if gain >= 0 else "worse"
        error = report.get("improvement_over_baseline_se")  # reports before it: none
        error = "" if error is None else f" ± {error:.1f}"
        lines.append(f"  {than} than independent pixels by {abs(gain):.1f}{error} nats")
    samples = report["samples"]
    lines.append(
        f"  samples: Fréchet distance {samples['frechet_distance']:.2f} (test vs train "
        f"{samples['frechet_distance_test_vs_train']:.2f}), classes covered "
        f"{samples['classes_covered']}/10 with at least 5% each (smallest "
        f"{samples.get('smallest_class_share', float('nan')):.1%}; classifier accuracy "
        f"{samples['classifier_test_accuracy']:.3f})"
    )
    return "\n".join(lines)


def format_ais(report: dict) -> str:
    """The text of :func:`models.generative.annealed_evaluation.evaluate_ais`'s report."""
    nll, cost = report["nll_ais"], report["cost"]
    lines = [
        f"{report['model']} on {report['data']}: AIS over {report['scored_images']} test images "
        f"({report['settings']['num_temperatures']} temperatures, "
        f"{report['settings']['num_chains']} chains per image)",
        f"  NLL {_label('nll_ais'):<32} {nll['mean']:9.2f} ± {nll['standard_error']:.2f} "
        f"{report['unit']}",
    ]
    for key, value in report.items():
        if key.startswith("nll_iwae"):
            lines.append(
                f"  NLL {_label(key):<32} {value['mean']:9.2f} ± "
                f"{value['standard_error']:.2f} (same images)"
            )
    if "improvement_over_baseline" in report:
        gain = report["improvement_over_baseline"]
        better = "better" if gain["mean"] >= 0 else "worse"
        lines.append(
            f"  {better} than independent pixels by {abs(gain['mean']):.2f} ± "
            f"{gain['standard_error']:.2f} {report['unit']}"
        )
    if "ais_minus_iwae" in report:
        gap = report["ais_minus_iwae"]
        below = gap["mean"] < -2.0 * gap["standard_error"]
        verdict = (
            "below IWAE by more than twice its error: the AIS estimate is biased low here; "
            "use more temperatures (--temperatures)"
            if below
            else "within twice its error of IWAE, or above: as it should be"
        )
        lines.append(
            f"  log p: AIS - IWAE = {gap['mean']:+.2f} ± {gap['standard_error']:.2f} nats: "
            f"{verdict}"
        )
    if "noise_std" in report:
        lines.append(
            f"  observation noise std {report['noise_std']} (best on "
            f"{report['validation_images']} validation images)"
        )
    search = ""
    if "noise_search_seconds" in cost:
        search = (
            f", of which the noise search {cost['noise_search_seconds']:.1f} s and "
            f"{cost['noise_search_grads']:,} gradients"
        )
    lines.append(
        f"  cost: {cost['grads_per_image']} gradients per scored image, {cost['seconds']:.1f} s "
        f"in all{search} ({cost['seconds_per_image']:.2f} s per scored image on "
        f"{cost['device']}, compilation and pilot excluded); weights' ESS median "
        f"{report['ais_ess']['median']:.1f} of {report['settings']['num_chains']}"
    )
    ess = report["ais_ess"]
    if ess.get("images_below_2"):
        verdict = "the AIS estimate is not usable" if not ess["usable"] else "those are unusable"
        lines.append(
            f"  warning: the weights' ESS is below 2 on {ess['images_below_2']} of "
            f"{report['scored_images']} images, whose estimates rest on one chain each: "
            f"{verdict}. Use more temperatures (--temperatures) or chains (--chains)."
        )
    return "\n".join(lines)
