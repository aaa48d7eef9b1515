"""Type stubs of simwatt's Python API (see docs/python.md)."""

import os
from typing import Any, List, Mapping, Optional, Sequence, Union

import pyarrow

__version__: str
SOURCE_DIGEST: str

Config = Union[str, os.PathLike[str], Mapping[str, Any]]
Overrides = Union[None, Mapping[str, Any], Sequence[str]]

class SimwattError(Exception):
    """An error about simwatt's input, with the CLI's message (file, field, value)."""

class Run:
    summary: dict[str, Any]
    warnings: List[str]
    requests_parquet: Optional[bytes]
    batches_parquet: Optional[bytes]
    power_parquet: Optional[bytes]
    @property
    def requests(self) -> Optional[pyarrow.Table]: ...
    @property
    def batches(self) -> Optional[pyarrow.Table]: ...
    @property
    def power(self) -> Optional[pyarrow.Table]: ...

class Validation:
    table: pyarrow.Table
    markdown: str

def simulate(
    config: Config,
    overrides: Overrides = None,
    seed: Optional[int] = None,
    tables: bool = True,
) -> Run:
    """Run one simulation, as `simwatt simulate`; raises SimwattError on a bad config."""

def sweep(config: Config, jobs: Optional[int] = None) -> pyarrow.Table:
    """Run a sweep config's runs, as `simwatt sweep run`; returns results.parquet as a table."""

def validate(
    suite: Union[None, str, os.PathLike[str]] = None,
    config: Union[None, str, os.PathLike[str]] = None,
    measured: Union[None, str, os.PathLike[str]] = None,
) -> Validation:
    """Replay measured runs, as `simwatt validate` (no plots); returns the metrics table."""
