"""simwatt from Python: simulate LLM inference serving, with energy, in process.

    import simwatt
    run = simwatt.simulate("experiments/quickstart.yaml", overrides={"hardware.replicas": 2}, seed=7)
    run.summary["energy_j"]                # the summary.json of the CLI, as a dict
    run.requests.to_pandas()               # requests.parquet as a pyarrow.Table

The native module (simwatt._simwatt, built with PyO3 from this repository's library) runs the
simulation with the GIL released and returns the same Parquet bytes the CLI writes into a run
folder; this layer turns configs and overrides into the forms it takes and reads the tables with
pyarrow. Errors are raised as SimwattError with the CLI's message (file, field, value).
"""

from __future__ import annotations

import json
import os
from typing import Any, Mapping, Optional, Sequence, Union

from . import _simwatt
from ._simwatt import SimwattError

__version__ = _simwatt.__version__
SOURCE_DIGEST = _simwatt.SOURCE_DIGEST

__all__ = ["simulate", "sweep", "validate", "Run", "Validation", "SimwattError", "__version__"]

Config = Union[str, "os.PathLike[str]", Mapping[str, Any]]


def _table(data: Optional[bytes]):
    """Parquet file bytes as a pyarrow.Table (None stays None)."""
    if data is None:
        return None
    import pyarrow as pa
    import pyarrow.parquet as pq

    return pq.read_table(pa.BufferReader(data))


def _config(config: Config) -> "tuple[str, bool]":
    """(path or YAML text, is_text) for the native module."""
    if isinstance(config, Mapping):
        return json.dumps(config), True
    if isinstance(config, os.PathLike):
        return os.fspath(config), False
    if isinstance(config, str):
        # A YAML document has a line break or a `key:`; a path has neither.
        if "\n" in config or (":" in config and not os.path.exists(config)):
            return config, True
        return config, False
    raise TypeError(f"config must be a path, YAML text or a dict, not {type(config).__name__}")


def _overrides(overrides: Union[None, Mapping[str, Any], Sequence[str]]) -> "list[str]":
    """`--set` expressions: a dict's values written as YAML (JSON is YAML), strings as they are."""
    if overrides is None:
        return []
    if isinstance(overrides, Mapping):
        out = []
        for key, value in overrides.items():
            text = value if isinstance(value, str) else json.dumps(value)
            out.append(f"{key}={text}")
        return out
    if isinstance(overrides, str):
        raise TypeError("overrides must be a dict or a list of 'key=value' strings, not one string")
    return [str(o) for o in overrides]


class Run:
    """One simulation's results.

    summary:  the run's summary.json as a dict.
    warnings: what the CLI prints as `warning:` (the run used a weaker model than asked).
    requests, batches, power: the run folder's requests.parquet, batches.parquet and power.parquet
        as pyarrow Tables (None for a summary-only run; power is None for a run without energy).
        `pl.from_arrow(run.requests)` and `run.requests.to_pandas()` convert them.
    requests_parquet, batches_parquet, power_parquet: the Parquet bytes themselves, the same bytes
        `simwatt simulate` writes.
    """

    __slots__ = ("summary", "warnings", "requests_parquet", "batches_parquet", "power_parquet",
                 "_tables")

    def __init__(self, summary_json: str, warnings: "list[str]", requests: Optional[bytes],
                 batches: Optional[bytes], power: Optional[bytes]):
        self.summary: dict = json.loads(summary_json)
        self.warnings: "list[str]" = list(warnings)
        self.requests_parquet = requests
        self.batches_parquet = batches
        self.power_parquet = power
        self._tables: dict = {}

    def _get(self, name: str):
        if name not in self._tables:
            self._tables[name] = _table(getattr(self, f"{name}_parquet"))
        return self._tables[name]

    @property
    def requests(self):
        """requests.parquet as a pyarrow.Table: one row per request (None for a summary-only run)."""
        return self._get("requests")

    @property
    def batches(self):
        """batches.parquet as a pyarrow.Table: the batch log (None for a summary-only run)."""
        return self._get("batches")

    @property
    def power(self):
        """power.parquet as a pyarrow.Table (None without energy or for a summary-only run)."""
        return self._get("power")

    def __repr__(self) -> str:
        s = self.summary
        return (f"<simwatt.Run {s.get('requests_completed')}/{s.get('requests_total')} requests, "
                f"energy_j={s.get('energy_j')}>")


def simulate(config: Config, overrides: Union[None, Mapping[str, Any], Sequence[str]] = None,
             seed: Optional[int] = None, tables: bool = True) -> Run:
    """Run one simulation, as `simwatt simulate --config CONFIG --set K=V ... --seed SEED`.

    config: a path to a YAML config, YAML text, or a dict of the same keys.
    overrides: {"dotted.key": value} (values written as YAML, as `--set`) or ["key=value", ...].
    seed: replaces the config's seed.
    tables: False computes the summary only (no request, batch or power table), which is faster:
        use it in design-search loops that read the summary alone.

    Raises SimwattError naming the file, field and value of a bad config or override.
    The GIL is released while the simulation runs.
    """
    text, is_text = _config(config)
    return Run(*_simwatt.simulate(text, is_text, _overrides(overrides), seed, tables))


def sweep(config: Config, jobs: Optional[int] = None):
    """Run every run of a sweep config (as `simwatt sweep run`) on `jobs` threads (default: the
    CPUs available) and return the merged results as a pyarrow.Table: one row per run, its
    parameters and its summary flattened into columns (the CLI's results.parquet)."""
    text, is_text = _config(config)
    if jobs is None:
        jobs = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count() or 1
    return _table(_simwatt.sweep(text, is_text, int(jobs)))


class Validation:
    """A validation's results: `table` (pyarrow.Table, one row per case, point and metric, with
    measured, simulated, rel_error and the baselines' values) and `markdown` (validation.md)."""

    __slots__ = ("table", "markdown")

    def __init__(self, table, markdown: str):
        self.table = table
        self.markdown = markdown

    def __repr__(self) -> str:
        return f"<simwatt.Validation {self.table.num_rows} rows>"


def validate(suite: "Union[None, str, os.PathLike[str]]" = None,
             config: "Union[None, str, os.PathLike[str]]" = None,
             measured: "Union[None, str, os.PathLike[str]]" = None) -> Validation:
    """Replay measured runs, as `simwatt validate --suite DIR` or `--config CFG --measured PATH`
    (without plots), and return their comparison as a table."""
    fs = lambda p: None if p is None else os.fspath(p)  # noqa: E731
    table, markdown = _simwatt.validate(fs(suite), fs(config), fs(measured))
    return Validation(_table(table), markdown)
