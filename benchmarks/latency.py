"""Time to the first result: ``infer.sample`` with NUTS against NumPyro's ``MCMC.run``.

Two models, NUTS with 4 vectorised chains, 1,000 warm-up and 1,000 kept draws:

* ``regression``: a three-parameter NumPyro regression with 100 generated observations,
  through ``infer.Target.from_numpyro`` and NumPyro's ``MCMC(NUTS(model))``;
* ``many_sites``: a NumPyro hierarchical model written with a Python loop, 32 scalar sites
  (a mean and scale, and 30 group means each its own site, 20 generated observations each):
  compile time that grows with the sites, not the parameters;
* ``stochastic_volatility``: Inference Gym's ``VectorizedStochasticVolatilitySP500Small``
  (103 parameters), its log density in unconstrained space (Jacobian included) through
  ``infer.Target`` and ``MCMC(NUTS(potential_fn=...))``.

Each side runs in a fresh process (imports done before the clock starts), in two alternating
pairs; the medians are reported. Per process: the first call (target construction included),
then a second call with a new target of the same model and same-shaped data. infer runs with
its persistent compilation cache off for these; a third case runs infer in a second process
that finds the programs of a first one in a fresh cache folder (a user re-running a script).
With ``--baseline REV`` the infer worker also runs at that git revision in every pair, for
the first call and the sampling speed after compilation (warm-up plus sampling of the second
call, median over the pairs). The gradient floor is the time of as many of the log
density's gradients per chain as the second call took, vectorised over the chains in a bare
compiled loop with no sampler: the second call cannot take less.

Goals (issue "One core that keeps its state"): first call <= 1.0x NumPyro's; second call
<= 0.2x NumPyro's first call. Results: ``benchmarks/results/latency_<platform>.json``.

Run: ``python benchmarks/latency.py`` (``--quick``: 200 + 200 draws, one pair).
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from common import RESULTS, ROOT, json_file, machine, positive_int, write_result  # noqa: E402

MODELS = ("regression", "many_sites", "stochastic_volatility")
NUM_GROUPS = 30
NUM_CHAINS = 4


def regression_model(x, y=None):
    import numpyro
    import numpyro.distributions as dist

    alpha = numpyro.sample("alpha", dist.Normal(0.0, 5.0))
    beta = numpyro.sample("beta", dist.Normal(0.0, 5.0))
    sigma = numpyro.sample("sigma", dist.HalfNormal(2.0))
    numpyro.sample("y", dist.Normal(alpha + beta * x, sigma), obs=y)


def regression_data(seed: int = 0):
    import numpy as np

    rng = np.random.default_rng(seed)
    x = rng.normal(size=100).astype(np.float32)
    return x, (1.0 + 2.0 * x + rng.normal(size=100)).astype(np.float32)


def many_sites_model(y):
    import numpyro
    import numpyro.distributions as dist

    mu = numpyro.sample("mu", dist.Normal(0.0, 5.0))
    tau = numpyro.sample("tau", dist.HalfNormal(2.0))
    for group in range(len(y)):
        mean = numpyro.sample(f"mean_{group}", dist.Normal(mu, tau))
        numpyro.sample(f"y_{group}", dist.Normal(mean, 1.0), obs=y[group])


def many_sites_data(seed: int = 0):
    import numpy as np

    rng = np.random.default_rng(seed)
    means = rng.normal(1.0, 0.5, size=(NUM_GROUPS, 1))
    return (means + rng.normal(size=(NUM_GROUPS, 20))).astype(np.float32)


def volatility_logdensity():
    """``(logdensity(z), z0)``: Inference Gym's model in unconstrained space, z a dict."""
    import jax.numpy as jnp
    from inference_gym import using_jax as gym

    model = gym.targets.VectorizedStochasticVolatilitySP500Small()
    bijectors = model.default_event_space_bijector
    fields = type(model.event_shape)._fields
    shapes = dict(zip(fields, model.event_shape, strict=True))

    def logdensity(z):
        parts = [b.forward(z[f]) for f, b in zip(fields, bijectors, strict=True)]
        jacobian = sum(
            b.forward_log_det_jacobian(z[f], event_ndims=len(shapes[f]))
            for f, b in zip(fields, bijectors, strict=True)
        )
        return model.unnormalized_log_prob(type(model.event_shape)(*parts)) + jacobian

    return logdensity, {f: jnp.zeros(tuple(s)) for f, s in shapes.items()}


def worker_infer(model: str, num_draws: int) -> dict:
    import jax

    import infer

    if model == "regression":
        x, y = regression_data()

        def build():
            return infer.Target.from_numpyro(regression_model, x, y=y)

    elif model == "many_sites":
        y = many_sites_data()

        def build():
            return infer.Target.from_numpyro(many_sites_model, y)

    else:
        logdensity, z0 = volatility_logdensity()

        def build():
            return infer.Target(logdensity, init=z0, name="stochastic_volatility")

    def one(seed):
        start = time.perf_counter()
        result = infer.sample(
            seed,
            build(),
            infer.nuts(),
            num_chains=NUM_CHAINS,
            num_samples=num_draws,
            num_warmup=num_draws,
        )
        jax.block_until_ready(list(result.draws.values()))
        return time.perf_counter() - start, result

    first, result = one(0)
    second, again = one(1)
    per_chain = -(-again.num_grad_evals // NUM_CHAINS)
    return {
        "gradient_floor_s": gradient_floor_s(build(), per_chain),
        "first_call_s": first,
        "second_call_s": second,
        "first_timing": result.timing,
        "second_timing": again.timing,
        "second_warmup_plus_sampling_s": again.timing["warmup"] + again.timing["sampling"],
        "num_grad_evals_second": again.num_grad_evals,
    }


def gradient_floor_s(target, iterations: int) -> float:
    """Seconds of ``iterations`` calls of the log density's value and gradient, vectorised
    over the chains, in a bare compiled loop (no sampler): a lower bound of what any NUTS run
    needs to take that many gradients per chain. Timed after compiling, best of two."""
    import jax
    import jax.numpy as jnp
    from jax.flatten_util import ravel_pytree

    flat, unflatten = ravel_pytree(target.init)
    value_and_grad = jax.vmap(jax.value_and_grad(lambda x: target.logdensity(unflatten(x))))

    @jax.jit
    def loop(positions):
        def body(_, carry):
            positions, total = carry
            values, grads = value_and_grad(positions)  # a tiny move: nothing to hoist
            return positions + 1e-7 * jnp.tanh(grads), total + values

        return jax.lax.fori_loop(0, iterations, body, (positions, jnp.zeros(NUM_CHAINS)))

    positions = jnp.broadcast_to(flat, (NUM_CHAINS, flat.size))
    jax.block_until_ready(loop(positions))
    times = []
    for _ in range(2):
        start = time.perf_counter()
        jax.block_until_ready(loop(positions))
        times.append(time.perf_counter() - start)
    return min(times)


def worker_numpyro(model: str, num_draws: int) -> dict:
    import jax
    import numpyro
    from numpyro.infer import MCMC, NUTS

    numpyro.set_host_device_count(1)

    # the data and Inference Gym's model made before the clock, as infer's worker makes them
    if model == "regression":
        x, y = regression_data()
    elif model == "many_sites":
        y = many_sites_data()
    else:
        logdensity, z0 = volatility_logdensity()

    def one(seed):
        start = time.perf_counter()
        if model == "regression":
            kernel, kwargs = NUTS(regression_model), {"x": x, "y": y}
        elif model == "many_sites":
            kernel, kwargs = NUTS(many_sites_model), {"y": y}
        else:
            init = jax.tree.map(lambda leaf: jax.numpy.stack([leaf] * NUM_CHAINS), z0)
            kernel = NUTS(potential_fn=lambda z: -logdensity(z))
            kwargs = {"init_params": init}
        mcmc = MCMC(
            kernel,
            num_warmup=num_draws,
            num_samples=num_draws,
            num_chains=NUM_CHAINS,
            chain_method="vectorized",
            progress_bar=False,
        )
        mcmc.run(jax.random.key(seed), **kwargs)
        jax.block_until_ready(mcmc.get_samples())
        first = time.perf_counter() - start
        start = time.perf_counter()
        mcmc.run(jax.random.key(seed + 100), **kwargs)  # the same MCMC object: compiled
        jax.block_until_ready(mcmc.get_samples())
        return first, time.perf_counter() - start

    first, rerun = one(0)
    second, _ = one(1)
    return {"first_call_s": first, "second_call_s": second, "same_object_rerun_s": rerun}


def run_worker(side: str, model: str, num_draws: int, env: dict, root: Path = ROOT) -> dict:
    script = Path(__file__).resolve()
    path = os.pathsep.join([str(root), str(script.parent), env.get("PYTHONPATH", "")])
    out = subprocess.run(
        [
            sys.executable,
            str(script),
            "--worker",
            side,
            "--model",
            model,
            "--num-draws",
            str(num_draws),
        ],
        env={**env, "PYTHONPATH": path},
        capture_output=True,
        text=True,
        timeout=1800,
        cwd=root,
    )
    if out.returncode != 0:
        raise RuntimeError(f"{side} worker on {model} failed:\n{out.stderr[-3000:]}")
    return json.loads(out.stdout.strip().splitlines()[-1])


def bench_model(model: str, num_draws: int, pairs: int, baseline: Path | None) -> dict:
    cold = {**os.environ, "INFER_COMPILATION_CACHE": "0"}
    runs = {"infer": [], "numpyro": [], "baseline": []}
    sides = ["infer", "numpyro"] + (["baseline"] if baseline is not None else [])
    for pair in range(pairs):
        order = sides if pair % 2 == 0 else sides[::-1]
        for side in order:
            root = baseline if side == "baseline" else ROOT
            worker = "numpyro" if side == "numpyro" else "infer"
            runs[side].append(run_worker(worker, model, num_draws, cold, root=root))
            print(f"  {model} {side}: first {runs[side][-1]['first_call_s']:.2f} s", flush=True)
    with tempfile.TemporaryDirectory() as folder:
        warm = {**os.environ, "INFER_COMPILATION_CACHE": folder}
        run_worker("infer", model, num_draws, warm)  # fills the cache
        second_process = run_worker("infer", model, num_draws, warm)

    def median(side, key):
        return float(statistics.median(run[key] for run in runs[side]))

    infer_first, numpyro_first = median("infer", "first_call_s"), median("numpyro", "first_call_s")
    infer_second = median("infer", "second_call_s")
    row = {
        "model": model,
        "infer": runs["infer"],
        "numpyro": runs["numpyro"],
        "infer_first_call_s": infer_first,
        "numpyro_first_call_s": numpyro_first,
        "first_call_ratio": infer_first / numpyro_first,
        "infer_second_call_s": infer_second,
        "second_call_over_numpyro_first": infer_second / numpyro_first,
        "second_call_over_own_first": infer_second / infer_first,
        "numpyro_second_call_s": median("numpyro", "second_call_s"),
        "infer_warmup_plus_sampling_s": median("infer", "second_warmup_plus_sampling_s"),
        "numpyro_same_object_rerun_s": median("numpyro", "same_object_rerun_s"),
        "gradient_floor_s": median("infer", "gradient_floor_s"),
        "gradient_floor_over_numpyro_first": median("infer", "gradient_floor_s") / numpyro_first,
        "second_process": second_process,
        "second_process_first_call_s": second_process["first_call_s"],
        "second_process_over_numpyro_first": second_process["first_call_s"] / numpyro_first,
    }
    if baseline is not None:
        row["baseline"] = runs["baseline"]
        row["baseline_warmup_plus_sampling_s"] = median("baseline", "second_warmup_plus_sampling_s")
        row["warmup_plus_sampling_over_baseline"] = (
            row["infer_warmup_plus_sampling_s"] / row["baseline_warmup_plus_sampling_s"]
        )
        row["baseline_first_call_s"] = median("baseline", "first_call_s")
    return row


def checkout(revision: str) -> Path:
    folder = Path(tempfile.mkdtemp(prefix="infer-baseline-"))
    subprocess.run(
        ["git", "worktree", "add", "--detach", str(folder), revision],
        cwd=ROOT,
        check=True,
        capture_output=True,
    )
    return folder


def _model_list(text: str) -> list[str]:
    """The --models names, checked before any model runs (a misspelt one failed after the
    others' minutes of work)."""
    names = [name.strip() for name in text.split(",") if name.strip()]
    unknown = [name for name in names if name not in MODELS]
    if unknown or not names:
        raise argparse.ArgumentTypeError(
            f"unknown model(s) {unknown or [text]}; choose from {', '.join(MODELS)}"
        )
    return names


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--quick", action="store_true", help="200 + 200 draws, one pair")
    parser.add_argument(
        "--models",
        type=_model_list,
        default=",".join(MODELS),
        help=f"comma-separated, from {', '.join(MODELS)} (default all)",
    )
    parser.add_argument(
        "--baseline",
        default=None,
        metavar="REV",
        help="also time infer at this git revision (sampling after compiling)",
    )
    parser.add_argument("--out", type=json_file, default=None)
    parser.add_argument("--worker", choices=("infer", "numpyro"), help=argparse.SUPPRESS)
    parser.add_argument("--model", choices=MODELS, help=argparse.SUPPRESS)
    parser.add_argument("--num-draws", type=positive_int, default=1000, help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.worker:
        work = worker_infer if args.worker == "infer" else worker_numpyro
        print(json.dumps(work(args.model, args.num_draws)))
        return 0
    num_draws, pairs = (200, 1) if args.quick else (1000, 2)
    baseline = checkout(args.baseline) if args.baseline else None
    try:
        rows = [bench_model(m, num_draws, pairs, baseline) for m in args.models]
    finally:
        if baseline is not None:
            subprocess.run(
                ["git", "worktree", "remove", "--force", str(baseline)],
                cwd=ROOT,
                capture_output=True,
            )
    record = {
        "machine": machine("inference-gym", "tfp-nightly"),
        "quick": args.quick,
        "settings": {
            "num_chains": NUM_CHAINS,
            "num_warmup": num_draws,
            "num_samples": num_draws,
            "pairs": pairs,
            "numpyro_chain_method": "vectorized",
            "baseline_revision": args.baseline,
        },
        "models": rows,
        "goals_met": {
            "first_call_at_most_1x_numpyro": all(r["first_call_ratio"] <= 1.0 for r in rows),
            "second_call_at_most_0.2x_numpyro_first": all(
                r["second_call_over_numpyro_first"] <= 0.2 for r in rows
            ),
        },
    }
    partial = list(args.models) != list(MODELS)  # a subset: its goals cover some models
    if partial:
        record["settings"]["models"] = list(args.models)
        record["goals_met"] = dict.fromkeys(record["goals_met"])  # not judged
    platform = record["machine"]["platform"]
    kind = "_quick" if args.quick else "_partial" if partial else ""
    out = args.out or RESULTS / f"latency_{platform}{kind}.json"
    write_result(out, record)
    for r in rows:
        print(
            f"{r['model']}: first call {r['infer_first_call_s']:.2f} s vs NumPyro "
            f"{r['numpyro_first_call_s']:.2f} s ({r['first_call_ratio']:.2f}x); second call "
            f"{r['infer_second_call_s']:.2f} s ({r['second_call_over_numpyro_first']:.3f}x); "
            f"second process {r['second_process_first_call_s']:.2f} s"
        )
    judged = "(a quick run: not judged) " if args.quick else ""
    judged = "(some models only: not judged) " if partial else judged
    print(f"goals {judged}{json.dumps(record['goals_met'])}\nwrote {out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
