"""What every benchmark script's JSON starts with, and how it is written."""

from __future__ import annotations

import platform
from pathlib import Path
from typing import Any

from nanomorph.outputs import write_json


def save_record(path: Path, **fields: Any) -> None:
    """Write ``fields`` after the Python version and the machine to ``path``, atomically."""
    record = {
        "python": platform.python_version(),
        "machine": platform.processor() or platform.machine(),
        **fields,
    }
    write_json(path, record)
    print(f"wrote {path}")
