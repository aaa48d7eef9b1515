"""Type stubs of the native module (use the `simwatt` package instead)."""

from typing import List, Optional, Tuple

__version__: str
SOURCE_DIGEST: str
TEXT_CONFIG_NAME: str

class SimwattError(Exception): ...

def simulate(
    config: str, is_text: bool, overrides: List[str], seed: Optional[int] = None, tables: bool = True
) -> Tuple[str, List[str], Optional[bytes], Optional[bytes], Optional[bytes]]: ...
def sweep(config: str, is_text: bool, jobs: int) -> bytes: ...
def validate(
    suite: Optional[str] = None, config: Optional[str] = None, measured: Optional[str] = None
) -> Tuple[bytes, str]: ...
