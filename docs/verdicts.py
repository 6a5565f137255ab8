"""The "goals in this run" sentences under the benchmark tables, made from the same JSON as
the table: every figure a verdict quotes is the JSON's, never typed by hand, and a figure
reads on the side of its goal it is on (:func:`table_format.against`)."""

from __future__ import annotations

from table_format import against
from table_format import g as _g


def _span(values: list, goal: float, side: str, digits: int = 2) -> str:
    """``a–b`` (or ``a``) of ``values``, each on its side of ``goal``."""
    low, high = min(values), max(values)
    shown = [against(low, goal, side, digits), against(high, goal, side, digits)]
    return shown[0] if shown[0] == shown[1] else "–".join(shown)


def rows_verdict(rows: list, value, goal: float, side: str, label, digits: int = 2) -> str:
    """``met (a–b)``, or ``**missed** at <label> (<value>), ...; met elsewhere (a–b)``:
    ``value(row)`` against ``goal`` for every row, ``label(row)`` naming those that miss."""
    holds = {">=": lambda v: v >= goal, "<=": lambda v: v <= goal}[side]
    missed = [row for row in rows if not holds(value(row))]
    kept = [value(row) for row in rows if holds(value(row))]
    if not missed:
        return f"met ({_span(kept, goal, side, digits)})"
    where = ", ".join(f"{label(row)} ({against(value(row), goal, side, digits)})" for row in missed)
    rest = f"; met elsewhere ({_span(kept, goal, side, digits)})" if kept else ""
    return f"**missed** at {where}{rest}"


def _met(holds: bool) -> str:
    return "met" if holds else "**missed**"


def samplers_goals(record: dict) -> str:
    """The verdicts of a CPU run (a GPU run, whose rows differ, gets none here)."""
    if record["machine"].get("platform", "cpu") != "cpu" or "rejection" not in record:
        return ""
    rwmh, nuts = record["rwmh"], record["nuts"]
    one_core = record["rejection"]["one_core"]

    def label(row):
        return f"{row['num_chains']} chain(s) on {row['target']}"

    sampling = rows_verdict(rwmh, lambda r: r["ratio"], 1.0, ">=", label)
    whole = rows_verdict(rwmh, lambda r: r["ratio_whole_call"], 1.0, ">=", label)
    repeat = nuts["repeat_call_over_pure_time"]
    return (
        f"**Goals in this run.** RWMH ahead of BlackJAX at every chain count, on the sampling "
        f"phase: {sampling}. On the whole `infer.sample` call (the like-for-like figure): "
        f"{whole}. One-chain NUTS at least 0.9 of BlackJAX's gradient rate: "
        f"{_met(nuts['ratio'] >= 0.9)} ({against(nuts['ratio'], 0.9, '>=')}: infer "
        f"{_g(nuts['infer_grads_per_s'])} gradients a second, BlackJAX "
        f"{_g(nuts['blackjax_grads_per_s'])}). A repeated call at most 1.2 of its warm-up plus "
        f"sampling time: {_met(repeat <= 1.2)} ({against(repeat, 1.2, '<=', 3)}). Rejection "
        f"on one core at least SciPy's TDR: {_met(one_core['ratio'] >= 1.0)} "
        f"({against(one_core['ratio'], 1.0, '>=')}: infer {_g(one_core['infer_draws_per_s'])} "
        f"draws a second, TDR {_g(one_core['scipy_tdr_draws_per_s'])})."
    )


def latency_goals(record: dict) -> str:
    models = record["models"]

    def label(row):
        return row["model"]

    first = rows_verdict(models, lambda r: r["first_call_ratio"], 1.0, "<=", label)
    second = rows_verdict(
        models, lambda r: r["second_call_over_numpyro_first"], 0.2, "<=", label, 3
    )
    numpyro = ", ".join(f"{r['model']} {r['numpyro_first_call_s']:.2f} s" for r in models)
    floors = [r for r in models if "gradient_floor_s" in r]
    floor = "; ".join(
        f"{r['model']} {r['gradient_floor_s']:.2f} s "
        f"({r['gradient_floor_over_numpyro_first']:.3f} of NumPyro's first call)"
        for r in floors
    )
    return (
        f"**Goals in this run.** First call at most NumPyro's: {first}. Second call at most "
        f"0.2 of NumPyro's first: {second}. NumPyro's first calls: {numpyro}."
        + (
            f" The gradient floor (compiling the log density's gradient alone): {floor}."
            if floor
            else ""
        )
    )


def ars_goals(record: dict) -> str:
    rows = record["rows"]

    def label(row):
        return row["density"]

    def whole(row):
        return row["infer_draws_per_s_whole_call"] / row["scipy_tdr_draws_per_s"]

    parts = []
    for mode in dict.fromkeys(row["mode"] for row in rows):
        chosen = [row for row in rows if row["mode"] == mode]
        name = mode.replace("_", " ")
        if mode == "one_core":
            verdict = rows_verdict(chosen, lambda r: r["ratio"], 1.0, ">=", label)
            parts.append(f"on one core, at least SciPy's TDR (the goal): {verdict}")
        else:
            ratios = [row["ratio"] for row in chosen]
            parts.append(f"{name} (no goal): {_span(ratios, 1.0, '>=')}")
        parts[-1] += f", on the whole call {_span([whole(r) for r in chosen], 1.0, '>=')}"
    return f"**Goals in this run.** ARS's draws a second over TDR's: {'; '.join(parts)}."


def sweep_goals(record: dict) -> str:
    rows = record["rows"]
    many = [r for r in rows if r["sampler"] == "rwmh" and r["num_chains"] >= 1024]

    def label(row):
        return f"{row['num_chains']:,} chain(s)"

    if not many:
        bare = "not judged (no row of 1,024 or more chains yet)"
    else:
        bare = rows_verdict(many, lambda r: r["fraction_of_bare"], 0.8, ">=", label)
    if many and record.get("complete") is False and "missed" not in bare:
        bare = f"not judged: the run stopped early ({bare[len('met (') : -1]} so far)"
    ahead = []
    for sampler in dict.fromkeys(r["sampler"] for r in rows):
        chosen = [r for r in rows if r["sampler"] == sampler]
        verdict = rows_verdict(chosen, lambda r: r["ratio_to_blackjax"], 1.0, ">=", label)
        if record.get("complete") is False and "missed" not in verdict:
            verdict = f"not judged: the run stopped early ({verdict[len('met (') : -1]} so far)"
        wholes = [
            r["ratio_to_blackjax_whole_call"] for r in chosen if "ratio_to_blackjax_whole_call" in r
        ]
        whole = f"; on infer's whole call {_span(wholes, 1.0, '>=')}" if wholes else ""
        ahead.append(f"{sampler.upper()} {verdict}{whole}")
    counts = sorted({r["num_chains"] for r in rows})
    on_cpu = record["machine"].get("platform", "cpu") == "cpu"
    heading = "**Goals in this run**" if on_cpu else "**The CPU's goals, for reference**"
    return (
        f"{heading} ({', '.join(f'{n:,}' for n in counts)} chains). RWMH at 1,024 "
        f"and more chains at least 0.8 of the bare rate: {bare}. Ahead of BlackJAX at every "
        f"count, on infer's sampling phase against BlackJAX's whole jitted call: "
        f"{'; '.join(ahead)}."
    )
