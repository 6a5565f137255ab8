"""Peak memory against the number of draws: with ``store=`` (draws streamed to a Zarr store
on disk) it stays flat; gathered in memory it grows with the draws.

RWMH on a 200-dimensional standard normal, 16 chains, float32; each run in a fresh process,
its peak resident memory read from ``resource.getrusage``, less that of a process making a
100-draw run (JAX and the libraries alone take a few hundred MiB). The largest run's draws
are 4x the memory budget we set (``--budget-mb``, default 512 MiB): what the stored runs add
must stay under the budget, and flat, whatever ``num_samples`` is (a stored run of 8x the
budget is run too, stored alone: its peak must equal the 4x run's). Results:
``benchmarks/results/memory_<platform>.json``.

Run: ``python benchmarks/memory.py`` (``--quick``: smaller sizes).
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import tempfile
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from common import RESULTS, machine, positive_int, precision, write_result  # noqa: E402

DIM, CHAINS = 200, 16


def worker(num_samples: int, store: str | None) -> dict:
    import resource

    import jax.numpy as jnp

    import infer

    target = infer.Target(lambda x: -0.5 * jnp.sum(x**2), init=jnp.zeros(DIM), name="normal")
    result = infer.sample(
        0,
        target,
        infer.rwmh(),
        num_chains=CHAINS,
        num_samples=num_samples,
        num_warmup=500,
        store=store,
    )
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024
    draws = CHAINS * num_samples * DIM * jnp.zeros(()).dtype.itemsize
    return {
        "num_samples": num_samples,
        "store": store is not None,
        "peak_rss_bytes": peak,
        "draw_bytes": draws,
        "sampling_seconds": result.timing["sampling"],
    }


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--budget-mb", type=positive_int, default=512)
    parser.add_argument("--quick", action="store_true", help="a budget of an eighth")
    parser.add_argument("--worker", type=positive_int, help=argparse.SUPPRESS)
    parser.add_argument("--store", default=None, help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.worker is not None:  # a measuring subprocess
        print(json.dumps(worker(args.worker, args.store)))
        return 0
    budget = args.budget_mb * 2**20 // (8 if args.quick else 1)
    largest = -(-4 * budget // (CHAINS * DIM * 4))  # draws 4x the budget
    sizes = [largest // 8, largest // 4, largest // 2, largest]
    rows = []
    with tempfile.TemporaryDirectory() as folder:
        out = subprocess.run(
            [sys.executable, __file__, "--worker", "100"],
            capture_output=True,
            text=True,
            check=True,
        )
        baseline = json.loads(out.stdout.strip().splitlines()[-1])["peak_rss_bytes"]
        print(f"  process with a 100-draw run: peak {baseline / 2**20:.0f} MiB", flush=True)
        runs = [(size, store) for size in sizes for store in (True, False)]
        runs.append((2 * largest, True))  # 8x the budget: stored alone (in memory, 8 GiB+)
        for size, stored in runs:
            for store in [f"{folder}/run{size}.zarr" if stored else None]:
                command = [sys.executable, __file__, "--worker", str(size)]
                if store:
                    command += ["--store", store]
                out = subprocess.run(command, capture_output=True, text=True, check=True)
                row = json.loads(out.stdout.strip().splitlines()[-1])
                row["above_baseline_bytes"] = row["peak_rss_bytes"] - baseline
                rows.append(row)
                print(
                    f"  {size:>8} draws, {'store ' if store else 'memory'}: peak "
                    f"{row['peak_rss_bytes'] / 2**20:.0f} MiB (draws "
                    f"{row['draw_bytes'] / 2**20:.0f} MiB)",
                    flush=True,
                )
    stored = [r["above_baseline_bytes"] for r in rows if r["store"]]
    record = {
        "machine": machine(),
        "settings": {
            "dim": DIM,
            "num_chains": CHAINS,
            "dtype": precision(),
            "sampler": "rwmh",
            "budget_bytes": budget,
            "baseline_peak_rss_bytes": baseline,
        },
        "rows": rows,
        "goals_met": {
            "stored_run_within_budget": max(stored) < budget,
            "largest_draws_4x_budget": rows[-1]["draw_bytes"] >= 4 * budget,
            "stored_peak_flat": max(stored) - min(stored) < 0.25 * budget,
            # past the size where its pieces are as long as one chunk: the same peak
            "stored_peak_same_at_4x_and_8x": abs(stored[-1] - stored[-2]) < 0.05 * budget,
        },
    }
    name = f"memory_{record['machine']['platform']}{'_quick' if args.quick else ''}.json"
    write_result(RESULTS / name, record)
    judged = "(a quick run: not judged) " if args.quick else ""
    print(f"goals {judged}{json.dumps(record['goals_met'])}\nwrote {RESULTS / name}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
