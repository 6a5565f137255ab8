"""One function per benchmark results file: its JSON record -> a markdown table.

``docs/tables.py`` picks the function whose name starts the file's stem (``samplers_cpu`` ->
:func:`samplers`) from :data:`RENDERERS`.
"""

from __future__ import annotations

from table_format import against
from table_format import f as _f
from table_format import g as _g
from table_format import table as _table
from verdicts import ars_goals, latency_goals, samplers_goals, sweep_goals


def _whole_call(ratio) -> str:
    """The ratio on infer's whole call, beside the one on its sampling phase ("" if none)."""
    return "" if ratio is None else f" (whole call {against(ratio, 1.0, '>=')})"


def samplers(record: dict) -> str:
    rows = [
        [
            f"RWMH, {r['target']}, {r['num_chains']} chain(s)",
            "chain-steps/s",
            _g(r["infer_chain_steps_per_s"]),
            f"BlackJAX `rmh` {_g(r['blackjax_chain_steps_per_s'])}",
            f"**{against(r['ratio'], 1.0, '>=')}**{_whole_call(r.get('ratio_whole_call'))}",
            "≥ 1.0",
        ]
        for r in record["rwmh"]
    ]
    nuts = record["nuts"]
    rows.append(
        [
            f"NUTS, {nuts['target']}, 1 chain",
            "gradients/s",
            _g(nuts["infer_grads_per_s"]),
            f"BlackJAX NUTS {_g(nuts['blackjax_grads_per_s'])}",
            f"**{against(nuts['ratio'], 0.9, '>=')}**",
            "≥ 0.9",
        ]
    )
    rows.append(
        [
            "NUTS, repeated call, same shapes",
            "wall / (warm-up + sampling)",
            against(nuts["repeat_call_over_pure_time"], 1.2, "<=", 3),
            "—",
            "—",
            "≤ 1.2",
        ]
    )
    for mode, r in record["rejection"].items():
        goal = "≥ 1.0" if mode == "one_core" else "—"
        rows.append(
            [
                f"Rejection, Beta(2, 5), {mode.replace('_', ' ')} ({r['cores']} core(s), "
                f"{r['devices']} device(s))",
                "draws/s",
                _g(r["infer_draws_per_s"]),
                f"SciPy TDR {_g(r['scipy_tdr_draws_per_s'])}",
                f"**{against(r['ratio'], 1.0, '>=')}**"
                + _whole_call(r["infer_draws_per_s_whole_call"] / r["scipy_tdr_draws_per_s"]),
                goal,
            ]
        )
    table = _table(["measurement", "unit", "infer", "other library", "ratio", "goal"], rows)
    goals = samplers_goals(record)
    return f"{table}\n\n{record.get('precision', '')}" + (f"\n\n{goals}" if goals else "")


def _floor(row: dict) -> str:
    """The latency row's gradient floor and its ratio; "—" in runs from before it."""
    if "gradient_floor_s" not in row:
        return "—"
    return f"{_f(row['gradient_floor_s'])} ({_f(row['gradient_floor_over_numpyro_first'], 3)})"


def latency(record: dict) -> str:
    rows = []
    for r in record["models"]:
        base = r.get("warmup_plus_sampling_over_baseline")
        rows.append(
            [
                r["model"],
                _f(r["infer_first_call_s"]),
                _f(r["numpyro_first_call_s"]),
                f"**{against(r['first_call_ratio'], 1.0, '<=')}**",
                _f(r["infer_second_call_s"]),
                f"**{against(r['second_call_over_numpyro_first'], 0.2, '<=', 3)}**",
                _f(r["numpyro_second_call_s"]),
                _f(r["second_process_first_call_s"]),
                _f(r["infer_warmup_plus_sampling_s"]),
                _floor(r),
                _f(base, 3),
            ]
        )
    settings = record["settings"]
    table = _table(
        [
            "model",
            "infer first call s",
            "NumPyro first call s",
            "ratio (goal ≤ 1.0)",
            "infer second call s",
            "÷ NumPyro first (goal ≤ 0.2)",
            "NumPyro second call s",
            "infer, second process s",
            "infer warm-up + sampling s",
            "gradient floor s (÷ NumPyro first)",
            "÷ baseline",
        ],
        rows,
    )
    baseline = settings.get("baseline_revision")
    return (
        f"{table}\n\nNUTS, {settings['num_chains']} chains, {settings['num_warmup']} warm-up + "
        f"{settings['num_samples']} draws; medians of {settings['pairs']} alternating pairs of "
        f"fresh processes; NumPyro's chain method {settings['numpyro_chain_method']}"
        + (f"; baseline: infer at `{baseline}`." if baseline else "; no baseline revision run.")
        + f"\n\n{latency_goals(record)}"
    )


def diagnostics(record: dict) -> str:
    compare = record["compare"]
    runs = f"`infer.compare` over {compare['num_runs']} such runs"
    rows = [
        [
            "60 × 4,000 × 200 draws to an ArviZ `DataTree`",
            f"{_g(record['conversion']['seconds'])} s",
            "< 5 s",
        ],
        [
            f"{runs}, JAX (first call, compiling)",
            f"{against(compare['seconds'], compare['goal_seconds'], '<')} s",
            f"< {_g(compare['goal_seconds'])} s",
        ],
        [f"{runs}, JAX again (compiled)", f"{_f(compare.get('seconds_compiled'), 1)} s", "—"],
        [f"{runs}, ArviZ (`statistics='arviz'`)", f"{_f(compare.get('arviz_seconds'), 1)} s", "—"],
        [
            "progress bar on / off, NUTS",
            against(record["progress"]["ratio_on_over_off"], 1.05, "<=", 3),
            "≤ 1.05",
        ],
    ]
    return _table(["measurement", "result", "goal"], rows)


def until(record: dict) -> str:
    seconds, ratios, settings = record["seconds"], record["ratios"], record["settings"]
    rows = [
        [
            "15 checks, padded to `max_samples` (`until=`)",
            _f(seconds["checks_padded"]),
            f"÷ one program per length **{_f(ratios['checks_padded_over_unpadded'], 3)}**",
        ],
        [
            "15 checks, padded to powers of two",
            _f(seconds["checks_doubling"]),
            f"÷ one program per length {_f(ratios['checks_doubling_over_unpadded'], 3)}",
        ],
        ["15 checks, one program per length", _f(seconds["checks_unpadded"]), "—"],
        [
            "15 checks, `arviz_stats` on the host",
            _f(seconds["checks_arviz"]),
            f"padded to `max_samples` ÷ this {_f(ratios['checks_padded_over_arviz'], 3)}",
        ],
        ["whole run, padded checks", _f(seconds["run_padded"]), "—"],
        [
            "whole run, one program per check length",
            _f(seconds["run_unpadded"]),
            f"padded ÷ this **{_f(ratios['run_padded_over_unpadded'], 3)}**",
        ],
    ]
    table = _table(["measurement", "seconds", "ratio"], rows)
    return (
        f"{table}\n\nChecks after every {settings['batch']} draws up to "
        f"{settings['max_samples']}, {settings['num_chains']} chains x "
        f"{settings['num_params']} parameters, compile time included, in fresh processes with "
        f"the compilation cache off; run: {settings['run']}; medians of "
        f"{settings['pairs']} alternating rounds."
    )


def ars(record: dict) -> str:
    rows = [
        [
            r["density"],
            r["mode"].replace("_", " "),
            str(r.get("cores", "?")),
            f"{_g(r['infer_draws_per_s'])} ({_g(r['infer_draws_per_s_whole_call'])})",
            _g(r["scipy_tdr_draws_per_s"]),
            f"**{against(r['ratio'], 1.0, '>=')}**",
            _g(r.get("density_evaluations_per_draw")),
            _g(r.get("density_evaluations_needed_per_draw")),
            _f(r["infer_compile_s"]) if "infer_compile_s" in r else "—",
            _f(1000 * r["scipy_tdr_setup_s"]) if "scipy_tdr_setup_s" in r else "—",
        ]
        for r in record["rows"]
    ]
    table = _table(
        [
            "density",
            "mode",
            "cores",
            "infer draws/s (whole call)",
            "SciPy TDR draws/s",
            "ratio",
            "evaluations per draw",
            "needed per draw",
            "infer compile s",
            "TDR set-up ms",
        ],
        rows,
    )
    return f"{table}\n\n{ars_goals(record)}"


def generative_speed(record: dict) -> str:
    rows = [
        [
            r["model"] + (" (conv)" if r.get("options", {}).get("variant") == "conv" else ""),
            _f(r["ours_steps_per_s"], 1),
            _f(r["handwritten_nnx_steps_per_s"], 1),
            f"**{_f(r['ratio'])}**",
        ]
        for r in record["rows"]
    ]
    columns = ["model", "ours steps/s", "hand-written steps/s", "ratio (goal ≥ 0.95)"]
    if any("pair_ratios" in r for r in record["rows"]):  # the ratio is the median of pairs
        columns[3] = "ratio, median of pairs (goal ≥ 0.95)"
        columns += ["pairs: their ratios' range", "ratio of medians"]
        for row, r in zip(rows, record["rows"], strict=True):
            pairs = r["pair_ratios"]
            spread = f"{len(pairs)}: {_f(min(pairs))}–{_f(max(pairs))}"
            row += [spread, _f(r["ratio_of_medians"])]
    if any("ratio_to_last_loss_only" in r for r in record["rows"]):
        columns += ["hand-written, last loss only: steps/s", "ratio"]
        for row, r in zip(rows, record["rows"], strict=True):
            last_only = r.get("handwritten_last_loss_only_steps_per_s")
            if last_only is None:
                row += ["—", "—"]
            else:
                row += [_f(last_only, 1), _f(r["ratio_to_last_loss_only"])]
    baseline = record.get("baseline", "nnx.jit over the module and its optimisers")
    table = _table(columns, rows)
    return f"{table}\n\nHand-written step: {baseline}."


_NLL_KEYS = ("nll_elbo", "nll_iwae_100", "nll_iwae_5000", "nll_exact")


def _improvement(row: dict) -> str:
    """The gain over the independent-pixel baseline, ± the best bound's and the baseline's
    standard errors combined as if independent: an upper bound on the paired error, since a
    model and the baseline find the same images hard (their per-image NLLs correlate)."""
    gain = row.get("improvement_over_baseline")
    baseline = row.get("nll_independent_pixels")
    bounds = [row[k] for k in _NLL_KEYS if row.get(k)]
    if gain is None or not baseline or not bounds:
        return _f(gain, 1)
    best = min(bounds, key=lambda summary: summary["mean"])
    error = (best["standard_error"] ** 2 + baseline["standard_error"] ** 2) ** 0.5
    return f"{_f(gain, 1)} ± {_f(error, 1)}"


def generative_quality(record: dict) -> str:
    """One row per model; a commit column when a partial rerun left rows of several commits
    (the caption names the latest)."""
    commits = {r.get("commit") for r in record["models"].values()}
    by_commit = len(commits - {None}) > 1
    rows = []
    for name, r in record["models"].items():

        def nll(key, r=r):
            value = r.get(key)
            return f"{_f(value['mean'])} ± {_f(value['standard_error'])}" if value else "—"

        samples = r.get("samples", {})
        shares = samples.get("class_shares") or []
        covered = sum(share >= 0.05 for share in shares) if shares else None
        rows.append(
            [
                name,
                nll("nll_elbo"),
                nll("nll_iwae_100"),
                nll("nll_iwae_5000"),
                nll("nll_exact"),
                _improvement(r),
                _f(samples.get("frechet_distance")),
                f"{covered}/10" if covered is not None else "—",
                f"{min(shares):.1%}" if shares else "—",
                _f(r.get("seconds_training"), 0),
                *([f"`{r.get('commit', '')[:10]}`"] if by_commit else []),
            ]
        )
    header = [
        "model",
        "ELBO NLL",
        "IWAE-100",
        "IWAE-5000",
        "exact",
        "better than baseline by (±: both errors, unpaired)",
        "Fréchet distance",
        "classes ≥ 5%",
        "smallest class",
        "training s",
        *(["commit"] if by_commit else []),
    ]
    table = _table(header, rows)
    if record.get("ablation"):
        commit = record.get("ablation_commit")
        note = f"; commit `{commit[:10]}`" if commit else "; the vae row's commit" * by_commit
        table += "\n\n" + vae_ablation(record["ablation"], note)
    return table


def vae_ablation(rows: list, note: str = "") -> str:
    """The VAE with one regulariser taken away at a time: test NLL and the epoch kept."""
    key = next(k for k in rows[0] if k.startswith("nll_iwae_"))
    body = [
        [
            r["vae"],
            f"{_f(r[key]['mean'])} ± {_f(r[key]['standard_error'])}",
            str(r["epoch_kept"]),
            str(r["epochs_trained"]),
            _f(r["train_loss_at_kept"], 1),
        ]
        for r in rows
    ]
    header = [
        f"VAE (ablation{note})",
        f"test NLL, IWAE-{key.rsplit('_', 1)[1]}",
        "epoch kept",
        "epochs trained",
        "training loss at kept epoch",
    ]
    return _table(header, body)


def ais_generative(record: dict) -> str:
    """One row per model; a commit column when a partial rerun left rows of several commits."""
    by_commit = len({r.get("commit") for r in record["models"].values()} - {None}) > 1
    rows = []
    for name, r in record["models"].items():
        gap = r.get("ais_minus_iwae")
        gain = r.get("improvement_over_baseline")
        iwae = next((r[k] for k in r if k.startswith("nll_iwae")), None)
        label = name + (f" (σ = {r['noise_std']})" if "noise_std" in r else "")
        rows.append(
            [
                label,
                str(r["scored_images"]),
                f"{_f(r['nll_ais']['mean'])} ± {_f(r['nll_ais']['standard_error'])}",
                f"{_f(iwae['mean'])} ± {_f(iwae['standard_error'])}" if iwae else "—",
                f"{gap['mean']:+.2f} ± {_f(gap['standard_error'])}" if gap else "—",
                f"{_f(gain['mean'], 1)} ± {_f(gain['standard_error'], 1)}" if gain else "—",
                _f(r["ais_ess"]["median"], 1),
                str(r["cost"]["grads_per_image"]),
                _f(r["cost"]["seconds_per_image"]),
                *([f"`{r.get('commit', '')[:10]}`"] if by_commit else []),
            ]
        )
    header = [
        "model",
        "images",
        "AIS NLL",
        "IWAE NLL (same images)",
        "AIS − IWAE (log p)",
        "AIS better than independent pixels by",
        "weights' ESS (median)",
        "gradients per image",
        "seconds per image",
        *(["commit"] if by_commit else []),
    ]
    return _table(header, rows)


def memory(record: dict) -> str:
    settings = record["settings"]
    rows = [
        [
            str(r["num_samples"]),
            "store" if r["store"] else "memory",
            f"{r['draw_bytes'] / 2**20:.0f}",
            f"{r['peak_rss_bytes'] / 2**20:.0f}",
            f"{r['above_baseline_bytes'] / 2**20:.0f}",
        ]
        for r in record["rows"]
    ]
    table = _table(
        [
            "draws per chain",
            "draws kept in",
            "draws MiB",
            "peak RSS MiB",
            "above a 100-draw run MiB",
        ],
        rows,
    )
    return (
        f"{table}\n\nRWMH, {settings['num_chains']} chains, {settings['dim']} dimensions, "
        f"{settings['dtype']}; budget {settings['budget_bytes'] / 2**20:.0f} MiB; a process "
        f"making a 100-draw run peaks at {settings['baseline_peak_rss_bytes'] / 2**20:.0f} MiB. "
        f"Goals met: {', '.join(k for k, v in record['goals_met'].items() if v) or 'none'}; "
        f"not met: {', '.join(k for k, v in record['goals_met'].items() if not v) or 'none'}."
    )


def sweep(record: dict) -> str:
    rows = []
    for r in record["rows"]:
        grads = r.get("infer_grads_per_s")
        rows.append(
            [
                r["sampler"],
                str(r["num_chains"]),
                str(r["num_steps"]),
                _g(r["infer_chain_steps_per_s"]),
                _g(grads) if grads else "—",
                _g(r["bare_evaluations_per_s"]),
                f"**{against(r['fraction_of_bare'], 0.8, '>=')}**",
                f"**{against(r['ratio_to_blackjax'], 1.0, '>=')}**"
                + _whole_call(r.get("ratio_to_blackjax_whole_call")),
                _f(r["ratio_to_numpyro_kernel"]) if "ratio_to_numpyro_kernel" in r else "—",
            ]
        )
    table = _table(
        [
            "sampler",
            "chains",
            "steps",
            "infer chain-steps/s",
            "infer gradients/s",
            "bare evaluations/s",
            "fraction of bare",
            "÷ BlackJAX",
            "÷ NumPyro's kernel",
        ],
        rows,
    )
    met = [k for k, v in record["goals_met"].items() if v is True]
    missed = [k for k, v in record["goals_met"].items() if v is False]
    unjudged = [k for k, v in record["goals_met"].items() if v is None]
    partial = (
        " **The run stopped before every row was made** (a time limit): a goal missed in the "
        "rows above is missed; one they meet is not judged"
        + (f" ({', '.join(unjudged)})" if unjudged else "")
        + "."
        if record.get("complete") is False
        else ""
    )
    return (
        f"{table}\n\nStep sizes {record['step_sizes']}; goals met: {', '.join(met) or 'none'}"
        f"; not met: {', '.join(missed) or 'none'}.{partial}\n\n{sweep_goals(record)}"
    )


def ais_chains(record: dict) -> str:
    rows = [
        [
            str(r["num_chains"]),
            str(r["num_temperatures"]),
            _f(r["seconds"]),
            _g(r["grads_per_s"]),
            f"{_f(r['log_z'])} ± {_f(r['log_z_se'])}",
            _f(r["exact_log_z"]),
            _f(r["ess"], 1),
        ]
        for r in record["rows"]
    ]
    return _table(
        [
            "chains",
            "temperatures",
            "seconds",
            "gradients/s",
            "log Z",
            "exact log Z",
            "weights' ESS",
        ],
        rows,
    )


def blocked_loop(record: dict) -> str:
    rows = [
        [
            r["sampler"],
            str(r["num_chains"]),
            str(r["num_steps"]),
            r.get("unit", "chain-steps"),  # files before the unit were all chain-steps
            _g(r.get("blocked_per_s", r.get("blocked_chain_steps_per_s"))),
            _g(r.get("plain_per_s", r.get("plain_chain_steps_per_s"))),
            f"**{_f(r['blocked_over_plain'])}**",
            f"**{_f(r['blocked_over_blackjax'])}**",
            f"{r['largest_difference_blocked_vs_plain']:.3g}",
            f"{r['largest_difference_progress_vs_not']:.3g}",
        ]
        for r in record["rows"]
    ]
    table = _table(
        [
            "sampler",
            "chains",
            "steps",
            "rate of",
            f"blocks of {record['rows'][0]['block']}: per s",
            "plain loop: per s",
            "blocked ÷ plain",
            "blocked ÷ BlackJAX",
            "largest difference, blocked vs plain",
            "largest difference, progress bar vs none",
        ],
        rows,
    )
    forced = " Blocks forced on a CPU (--force)." if record.get("forced_on_cpu") else ""
    # files written before the repeats were recorded took 3, or 1 in a quick run
    repeats = record.get("repeats", 1 if record.get("quick") else 3)
    timed = f"medians of {repeats}" if repeats > 1 else "one timed run each"
    return f"{table}\n\nSampling phase, fixed step sizes, no warm-up; {timed}.{forced}"


RENDERERS = {
    "samplers": samplers,
    "latency": latency,
    "diagnostics": diagnostics,
    "until": until,
    "ars": ars,
    "generative_speed": generative_speed,
    "generative_quality": generative_quality,
    "ais_generative": ais_generative,
    "memory": memory,
    "sweep": sweep,
    "ais_chains": ais_chains,
    "blocked_loop": blocked_loop,
}
