"""The Python package against the CLI: the quickstart's tables byte for byte, errors naming the key,
a 1,000-run loop (its speed printed), sweep and validate tables, and the GIL released during a run.

Run from the repository root after installing the wheel:  pytest python/tests -q
The CLI binary is target/release/simwatt (or $SIMWATT_BIN).
"""

import json
import os
import subprocess
import threading
import time
from pathlib import Path

import pyarrow.parquet as pq
import pytest

import simwatt

ROOT = Path(__file__).resolve().parents[2]
QUICKSTART = "experiments/quickstart.yaml"
# A validation case whose measured data ships in the repository (four static batches: quick).
VALIDATION_CASE = "argonne-a100-llama-2-7b.yaml"
CLI = Path(os.environ.get("SIMWATT_BIN", ROOT / "target" / "release" / "simwatt"))

# The quickstart as a dict: the same keys as experiments/quickstart.yaml.
QUICKSTART_DICT = {
    "seed": 42,
    "model": "meta-llama/Llama-2-7b-hf",
    "hardware": {"gpu": "a100", "tensor_parallel": 1, "pipeline_stages": 1, "replicas": 1},
    "router": "round_robin",
    "scheduler": {"policy": "vllm", "max_num_seqs": 128, "max_num_batched_tokens": 4096,
                  "block_size": 16},
    "workload": {
        "requests": 512,
        "arrival": {"type": "poisson", "rate": 2.0},
        "lengths": {"type": "uniform", "prompt": [512, 2048], "output": [128, 512]},
    },
    "region": "aws-us-east-1",
}


def without_wall(summary: dict) -> dict:
    """A summary without its wall-clock fields (the only ones that differ between two runs)."""
    return {k: without_wall(v) if isinstance(v, dict) else v
            for k, v in summary.items() if "wall" not in k}


@pytest.fixture(autouse=True)
def at_root(monkeypatch):
    monkeypatch.chdir(ROOT)


@pytest.fixture(scope="module")
def cli_run(tmp_path_factory):
    out = tmp_path_factory.mktemp("cli") / "quickstart"
    subprocess.run([str(CLI), "simulate", "--config", QUICKSTART, "--out", str(out), "--no-plots",
                    "--no-trace", "--no-csv", "--quiet"], cwd=ROOT, check=True)
    return out


def test_quickstart_tables_are_the_clis_bytes(cli_run):
    run = simwatt.simulate(QUICKSTART)
    for name in ["requests", "batches", "power"]:
        cli_bytes = (cli_run / f"{name}.parquet").read_bytes()
        ours = getattr(run, f"{name}_parquet")
        assert ours == cli_bytes, f"{name}.parquet differs from the CLI's"
        assert getattr(run, name).equals(pq.read_table(cli_run / f"{name}.parquet"))
    cli_summary = json.loads((cli_run / "summary.json").read_text())
    assert without_wall(run.summary) == without_wall(cli_summary)
    assert run.requests.num_rows == run.summary["requests_total"] == 512
    assert run.summary["energy_j"] > 0


def test_yaml_text_and_dict_configs_equal_the_file():
    from_file = simwatt.simulate(QUICKSTART, tables=False)
    from_text = simwatt.simulate((ROOT / QUICKSTART).read_text(), tables=False)
    from_dict = simwatt.simulate(QUICKSTART_DICT, tables=False)
    assert without_wall(from_text.summary) == without_wall(from_file.summary)
    assert without_wall(from_dict.summary) == without_wall(from_file.summary)


def test_summary_only_run_has_the_same_summary_and_no_tables():
    full = simwatt.simulate(QUICKSTART, overrides={"workload.requests": 64})
    quick = simwatt.simulate(QUICKSTART, overrides={"workload.requests": 64}, tables=False)
    assert without_wall(full.summary) == without_wall(quick.summary)
    assert quick.requests is None and quick.batches is None and quick.power is None


def test_overrides_and_seed_apply():
    base = simwatt.simulate(QUICKSTART, overrides={"workload.requests": 64}, tables=False)
    two = simwatt.simulate(QUICKSTART, overrides={"workload.requests": 64, "hardware.replicas": 2},
                           tables=False)
    reseeded = simwatt.simulate(QUICKSTART, overrides=["workload.requests=64"], seed=7, tables=False)
    assert base.summary["requests_total"] == 64
    assert two.summary["energy_j"] != base.summary["energy_j"]
    assert reseeded.summary["seed"] == 7 and base.summary["seed"] == 42
    assert without_wall(reseeded.summary) != without_wall(base.summary)


def test_bad_key_raises_an_error_naming_it():
    with pytest.raises(simwatt.SimwattError) as e:
        simwatt.simulate(QUICKSTART, overrides={"scheduler.max_num_seqz": 4})
    assert "max_num_seqz" in str(e.value)
    assert "quickstart.yaml" in str(e.value)
    bad = dict(QUICKSTART_DICT, scheduler={**QUICKSTART_DICT["scheduler"], "max_num_seqs": 0})
    with pytest.raises(simwatt.SimwattError) as e:
        simwatt.simulate(bad)
    message = str(e.value)
    assert "scheduler.max_num_seqs" in message and simwatt._simwatt.TEXT_CONFIG_NAME in message
    assert "/tmp" not in message and "simwatt-" not in message
    with pytest.raises(simwatt.SimwattError, match="no-such-config.yaml"):
        simwatt.simulate("no-such-config.yaml")


def test_a_thousand_runs(capsys):
    n, summaries = 1000, []
    t0 = time.perf_counter()
    for i in range(n):
        run = simwatt.simulate(QUICKSTART, overrides={"workload.requests": 64}, seed=i, tables=False)
        summaries.append(run.summary)
    elapsed = time.perf_counter() - t0
    assert all(s["requests_completed"] == 64 for s in summaries)
    assert len({s["energy_j"] for s in summaries}) > n // 2  # the seeds draw new workloads
    with capsys.disabled():
        print(f"\n1,000 simulate() calls (quickstart, 64 requests, summary only): {elapsed:.2f} s, "
              f"{n / elapsed:.0f} runs/s, {64 * n / elapsed:.0f} simulated requests/s")


def test_sweep_returns_the_results_table():
    config = {
        "base": str(ROOT / QUICKSTART),
        "set": {"workload.requests": 32},
        "axes": {"hardware.replicas": [1, 2], "scheduler.max_num_seqs": [8, 64]},
        "replicates": 1,
    }
    table = simwatt.sweep(config, jobs=2)
    assert table.num_rows == 4
    assert set(table.column("status").to_pylist()) == {"ok"}
    rows = table.to_pylist()
    assert sorted((r["hardware.replicas"], r["scheduler.max_num_seqs"]) for r in rows) == [
        (1, 8), (1, 64), (2, 8), (2, 64)]
    assert all(r["energy_j"] > 0 for r in rows)


def test_validate_returns_the_metrics_table(tmp_path):
    suite = tmp_path / "suite"
    suite.mkdir()
    case = ROOT / "experiments" / "validation" / VALIDATION_CASE
    (suite / case.name).write_text(case.read_text())
    v = simwatt.validate(suite=suite)
    assert v.table.num_rows > 0
    assert {"case", "status", "metric", "measured", "simulated", "rel_error"} <= set(v.table.column_names)
    ok = [r for r in v.table.to_pylist() if r["status"] == "ok"]
    assert ok and all(r["measured"] is not None and r["simulated"] is not None for r in ok)
    assert "validation" in v.markdown.lower()


def test_the_gil_is_released_while_simulating():
    ticks, span = [], {}

    def work():
        span["start"] = time.perf_counter()
        simwatt.simulate(QUICKSTART, overrides={"workload.requests": 30000}, tables=False)
        span["end"] = time.perf_counter()

    t = threading.Thread(target=work)
    t.start()
    while t.is_alive():
        ticks.append(time.perf_counter())
        time.sleep(0.001)
    t.join()
    during = [x for x in ticks if span["start"] < x < span["end"]]
    # With the GIL held for the whole run this thread could not tick at all meanwhile.
    assert span["end"] - span["start"] > 0.05
    assert len(during) >= 10, f"{len(during)} ticks in {span['end'] - span['start']:.3f} s"
