#!/usr/bin/env python3
"""Speed of simwatt from Python: a loop of simulate() calls, timed over several repeats.

    python scripts/python_speed.py                      # 1,000 runs x 5 repeats, summary only
    python scripts/python_speed.py --tables --runs 200  # with the request/batch/power tables

Each run is the quickstart (experiments/quickstart.yaml) with workload.requests=REQUESTS and its own
seed. Prints runs/s and simulated requests/s as median, min and max over the repeats. Run from the
repository root with the simwatt wheel installed (docs/python.md).
"""

import argparse
import os
import platform
import statistics
import time

import simwatt


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--runs", type=int, default=1000)
    ap.add_argument("--repeats", type=int, default=5)
    ap.add_argument("--requests", type=int, default=64)
    ap.add_argument("--tables", action="store_true", help="build the tables too (default: summary only)")
    ap.add_argument("--config", default="experiments/quickstart.yaml")
    a = ap.parse_args()
    simwatt.simulate(a.config, overrides={"workload.requests": a.requests}, tables=False)  # warm caches
    rates = []
    for r in range(a.repeats):
        t0 = time.perf_counter()
        for i in range(a.runs):
            run = simwatt.simulate(a.config, overrides={"workload.requests": a.requests}, seed=i,
                                   tables=a.tables)
            assert run.summary["requests_completed"] == a.requests
            if a.tables:
                assert run.requests.num_rows == a.requests
        elapsed = time.perf_counter() - t0
        rates.append(a.runs / elapsed)
        print(f"repeat {r + 1}: {a.runs} runs in {elapsed:.2f} s = {a.runs / elapsed:.0f} runs/s")
    cpus = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count()
    what = "with tables" if a.tables else "summary only"
    print(f"simwatt {simwatt.__version__}, Python {platform.python_version()}, {cpus} CPUs; "
          f"{a.runs} runs of {a.requests} requests ({what}), {a.repeats} repeats:")
    print(f"  runs/s median {statistics.median(rates):.0f}, min {min(rates):.0f}, max {max(rates):.0f}")
    print(f"  simulated requests/s median {statistics.median(rates) * a.requests:.0f}, "
          f"min {min(rates) * a.requests:.0f}, max {max(rates) * a.requests:.0f}")


if __name__ == "__main__":
    main()
