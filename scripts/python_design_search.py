#!/usr/bin/env python3
"""A design-space search from Python: a plain grid over scheduler.max_num_seqs x hardware.replicas,
each point simulated with a few seeds, keeping the cheapest configuration that meets a latency SLO.

    python scripts/python_design_search.py                 # one thread
    python scripts/python_design_search.py --threads 2     # runs side by side (the GIL is released)

The workload is the quickstart's model and GPU (experiments/quickstart.yaml) under a heavier load
(RATE requests/s). "Cheapest" is the lowest cost per 1,000 requests (summary cost_usd: GPU
rental plus electricity, over the run's span), ties broken by energy; the SLO is on the p90 time to
first token and the p90 end-to-end latency, each point's worst seed counted. Prints the grid, the
choice and the timing. Run from the repository root with the simwatt wheel installed (docs/python.md).
"""

import argparse
import itertools
import time
from concurrent.futures import ThreadPoolExecutor

import simwatt

MAX_NUM_SEQS = [4, 8, 16, 32, 64, 128, 256]
REPLICAS = [1, 2, 3, 4]


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--config", default="experiments/quickstart.yaml")
    ap.add_argument("--rate", type=float, default=6.0, help="arrival rate, requests/s")
    ap.add_argument("--requests", type=int, default=512)
    ap.add_argument("--seeds", type=int, default=3)
    ap.add_argument("--ttft-p90-s", type=float, default=1.0)
    ap.add_argument("--e2e-p90-s", type=float, default=30.0)
    ap.add_argument("--threads", type=int, default=1)
    a = ap.parse_args()

    def run(point):
        seqs, replicas, seed = point
        s = simwatt.simulate(a.config, seed=seed, tables=False, overrides={
            "scheduler.max_num_seqs": seqs, "hardware.replicas": replicas,
            "workload.requests": a.requests, "workload.arrival.rate": a.rate}).summary
        return point, s

    points = list(itertools.product(MAX_NUM_SEQS, REPLICAS, range(a.seeds)))
    t0 = time.perf_counter()
    with ThreadPoolExecutor(a.threads) as pool:
        results = list(pool.map(run, points))
    elapsed = time.perf_counter() - t0

    by_config: dict = {}
    for (seqs, replicas, _), s in results:
        by_config.setdefault((seqs, replicas), []).append(s)
    rows = []
    for (seqs, replicas), ss in sorted(by_config.items()):
        ttft = max(s["ttft_p90_s"] for s in ss)
        e2e = max(s["e2e_p90_s"] for s in ss)
        cost = sum(s["cost_usd"] for s in ss) / sum(s["requests_completed"] for s in ss) * 1000
        energy = sum(s["energy_j"] for s in ss) / sum(s["requests_completed"] for s in ss)
        ok = ttft <= a.ttft_p90_s and e2e <= a.e2e_p90_s and all(s["requests_rejected"] == 0 for s in ss)
        rows.append((seqs, replicas, ttft, e2e, cost, energy, ok))
    print("max_num_seqs replicas ttft_p90_s e2e_p90_s usd_per_1k_req j_per_req meets_slo")
    for seqs, replicas, ttft, e2e, cost, energy, ok in rows:
        print(f"{seqs:12d} {replicas:8d} {ttft:10.3f} {e2e:9.2f} {cost:14.4f} {energy:9.0f} {'yes' if ok else 'no'}")
    meeting = [r for r in rows if r[6]]
    if meeting:
        seqs, replicas, ttft, e2e, cost, energy, _ = min(meeting, key=lambda r: (r[4], r[5]))
        print(f"cheapest meeting p90 TTFT <= {a.ttft_p90_s} s and p90 e2e <= {a.e2e_p90_s} s: "
              f"max_num_seqs={seqs}, replicas={replicas} (${cost:.4f} per 1,000 requests, "
              f"{energy:.0f} J per request)")
    else:
        print("no configuration of the grid meets the SLO")
    n = len(points)
    print(f"{n} runs ({len(by_config)} configurations x {a.seeds} seeds, {a.requests} requests each) "
          f"in {elapsed:.2f} s on {a.threads} thread(s): {n / elapsed:.0f} runs/s, "
          f"{n * a.requests / elapsed:.0f} simulated requests/s")


if __name__ == "__main__":
    main()
