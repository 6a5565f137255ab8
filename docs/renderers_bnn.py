"""The Bayesian neural network benchmarks' tables (``benchmarks/bnn*.py``): JSON record ->
markdown table, picked by ``docs/tables.py`` like those of :mod:`renderers`."""

from __future__ import annotations

from table_format import f as _f
from table_format import g as _g
from table_format import table as _table


def bnn_digits(record: dict) -> str:
    rows = []
    for r in record["rows"]:
        sampled = "max_rhat" in r
        rows.append(
            [
                r["method"],
                _g(r["nll"], 4),
                _f(r["accuracy"], 4),
                _g(r["ece"], 3),
                _f(r["seconds"], 1),
                f"{r['grad_evals']:,}"
                + (
                    f" ({r['full_data_gradients']:,.0f} full-data)" if r["method"] == "sgld" else ""
                ),
                _f(r["max_rhat"]) if sampled else "—",
                _f(r["min_ess_bulk"], 1) if sampled else "—",
            ]
        )
    table = _table(
        ["method", "NLL", "accuracy", "ECE", "seconds", "gradients", "max R-hat", "min bulk ESS"],
        rows,
    )
    goals = record["goals"]
    verdicts = [f"{k}: {'met' if v['met'] else 'not met'}" for k, v in goals.items() if k != "met"]
    goal = "Goal (the predictive's NLL and ECE both below the point estimate's)"
    text = f"{table}\n\n{goal}: {'; '.join(verdicts)}."
    if record.get("prior_scan"):
        text += "\n\n" + bnn_prior_scan(record["prior_scan"])
    return text


def bnn_prior_scan(scan: list) -> str:
    """MAP and NUTS on digits at each prior scale: NLL, ECE, and mean confidence against
    accuracy (confidence below accuracy: underconfident)."""
    rows = [
        [
            _f(e["prior_scale"], 1),
            _g(e["optax_map"]["nll"], 4),
            _g(e["nuts"]["nll"], 4),
            _g(e["optax_map"]["ece"], 3),
            _g(e["nuts"]["ece"], 3),
            f"{_f(e['optax_map']['mean_confidence'], 3)} / {_f(e['optax_map']['accuracy'], 3)}",
            f"{_f(e['nuts']['mean_confidence'], 3)} / {_f(e['nuts']['accuracy'], 3)}",
            _f(e["nuts"]["max_rhat"]),
        ]
        for e in scan
    ]
    header = [
        "prior scale",
        "MAP NLL",
        "NUTS NLL",
        "MAP ECE",
        "NUTS ECE",
        "MAP confidence / accuracy",
        "NUTS confidence / accuracy",
        "NUTS max R-hat",
    ]
    return _table(header, rows)


def bnn_priors(record: dict) -> str:
    """NUTS on digits under each variant, against MAP fits from the same starts: ranges over
    the starts (MAP) and the chains, and each chain's training NLL per draw by quarter."""

    def span(values, digits=4):
        low, high = min(values), max(values)
        return _g(low, digits) if low == high else f"{_g(low, digits)}–{_g(high, digits)}"

    rows = []
    for r in record["rows"]:
        maps, nuts, chains = r["optax_map_per_start"], r["nuts"], r["nuts"]["per_chain"]
        quarters = [q for c in chains for q in c["train_nll_per_draw_by_quarter"]]
        rows.append(
            [
                r["variant"],
                span([m["nll"] for m in maps]),
                span([m["ece"] for m in maps], 3),
                _g(nuts["nll"], 4),
                _g(nuts["ece"], 3),
                f"{_f(nuts['mean_confidence'], 3)} / {_f(nuts['accuracy'], 3)}",
                span([c["nll"] for c in chains]),
                span(quarters, 3),
                span([c["test_nll_of_one_draw"] for c in chains], 3),
            ]
        )
    header = [
        "variant",
        "MAP NLL (4 starts)",
        "MAP ECE",
        "NUTS NLL",
        "NUTS ECE",
        "NUTS confidence / accuracy",
        "NUTS NLL, each chain alone",
        "training NLL per draw, by quarter",
        "held-out NLL of one draw",
    ]
    return _table(header, rows)


def bnn_regression(record: dict) -> str:
    rows = []
    for r in record["rows"]:
        rows.append(
            [r["method"]]
            + [" / ".join(_f(r[f"{where}_{m}"], 3) for where in ("test", "gap", "outside"))
               for m in ("nll", "coverage_90", "epistemic_sd")]
            + [_f(r["seconds"], 1)]
        )  # fmt: skip
    table = _table(
        [
            "method",
            "NLL (range / gap / beyond)",
            "90% coverage",
            "spread of means",
            "seconds",
        ],
        rows,
    )
    wider = record["bands_wider_away_from_data"]
    verdicts = [
        f"{method}: gap {'yes' if w['gap'] else 'no'}, beyond {'yes' if w['outside'] else 'no'}"
        for method, w in wider.items()
    ]
    return f"{table}\n\nDraws spread more than inside the range: {'; '.join(verdicts)}."


def bnn_prior_screen(record: dict) -> str:
    """Each prior's validation measures (MAP: the mean of its four fits), then each method at
    the prior it chose, on the test images."""

    def prior(row):
        kind = "Gaussian" if row["df"] is None else f"Student-t (df {_g(row['df'])})"
        return f"{kind} {':'.join(_g(v) for v in row['scales'])}"

    def cells(measures):
        return [_g(measures["nll"], 4), _g(measures["ece"], 3), _f(measures["mean_confidence"], 3)]

    screen = [
        [prior(r), *cells(r["optax_map"]), *cells(r["nuts"]), _f(r["nuts"]["accuracy"], 3)]
        for r in record["screen"]
    ]
    header = ["prior (hidden:output:bias scales)", "MAP NLL", "MAP ECE", "MAP confidence"]
    header += ["NUTS NLL", "NUTS ECE", "NUTS confidence", "NUTS accuracy"]
    final = [
        [method, prior(r), *cells(r), _f(r["accuracy"], 3)]
        for method, r in record["chosen_on_validation"].items()
    ]
    chosen = _table(
        ["method", "prior chosen", "test NLL", "test ECE", "confidence", "accuracy"], final
    )
    goal = record["goal"]
    verdict = (
        f"Goal (NUTS below the MAP on the test images): NLL "
        f"{'met' if goal['nll_below_map'] else 'missed'}, ECE "
        f"{'met' if goal['ece_below_map'] else 'missed'}."
    )
    return f"{_table(header, screen)}\n\n{chosen}\n\n{verdict}"


RENDERERS = {
    "bnn_digits": bnn_digits,
    "bnn_regression": bnn_regression,
    "bnn_priors": bnn_priors,
    "bnn_prior_screen": bnn_prior_screen,
}
