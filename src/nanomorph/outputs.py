"""Atomic writers shared by the CLI and the workflow.

Every file is written under a temporary name in its destination folder and renamed into place
only once complete, so an interrupted run never leaves a file that looks finished.
"""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import tempfile
from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd


@contextlib.contextmanager
def atomic_path(path: str | Path) -> Iterator[Path]:
    """Yield a temporary path beside ``path``; rename it to ``path`` when the block succeeds.

    The temporary file keeps the destination's suffix so that writers which choose a format by
    extension (Pillow, pandas) still work. On any exception the temporary file is removed and the
    destination is left untouched.

    Examples
    --------
    >>> with atomic_path("out.json") as tmp:  # doctest: +SKIP
    ...     tmp.write_text("{}")
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp_name = tempfile.mkstemp(
        prefix=f".{path.stem}.", suffix=f".tmp{path.suffix}", dir=path.parent
    )
    os.close(fd)
    tmp = Path(tmp_name)
    _share(tmp, 0o666)
    try:
        yield tmp
        os.replace(tmp, path)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise


@contextlib.contextmanager
def atomic_directory(path: str | Path) -> Iterator[Path]:
    """Yield a temporary folder beside ``path``; it replaces ``path`` when the block succeeds.

    Like :func:`atomic_path` for a folder of outputs: a folder that is there is complete. An
    existing ``path`` is removed first; on any exception the temporary folder is removed.
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent))
    _share(tmp, 0o777)
    try:
        yield tmp
        shutil.rmtree(path, ignore_errors=True)
        os.replace(tmp, path)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise


def _share(path: Path, mode: int) -> None:
    # mkstemp and mkdtemp create 0600 / 0700; results are meant to be shared like any file the
    # user writes.
    umask = os.umask(0)
    os.umask(umask)
    os.chmod(path, mode & ~umask)


def write_mask_png(path: str | Path, mask: np.ndarray) -> None:
    """Write a boolean mask as an 8-bit PNG: 0 background, 255 particle."""
    from PIL import Image

    array = np.where(np.asarray(mask, dtype=bool), 255, 0).astype(np.uint8)
    with atomic_path(path) as tmp:
        Image.fromarray(array).save(tmp, format="PNG")


def read_mask_png(path: str | Path) -> np.ndarray:
    """Read a mask written by :func:`write_mask_png` back as a boolean array."""
    from PIL import Image

    with Image.open(path) as img:
        return np.asarray(img.convert("L")) > 127


def write_labels_tif(path: str | Path, labels: np.ndarray) -> None:
    """Write an instance label image as a zlib-compressed uint32 TIFF (0 = background)."""
    import tifffile

    with atomic_path(path) as tmp:
        tifffile.imwrite(tmp, np.asarray(labels, dtype=np.uint32), compression="zlib")


def read_labels_tif(path: str | Path) -> np.ndarray:
    import tifffile

    return np.asarray(tifffile.imread(path), dtype=np.uint32)


def write_table(
    df: pd.DataFrame,
    parquet_path: str | Path | None = None,
    csv_path: str | Path | None = None,
    xlsx_path: str | Path | None = None,
) -> None:
    """Write one table to any of parquet, csv and xlsx, each atomically."""
    if parquet_path is not None:
        with atomic_path(parquet_path) as tmp:
            df.to_parquet(tmp, index=False)
    if csv_path is not None:
        with atomic_path(csv_path) as tmp:
            df.to_csv(tmp, index=False)
    if xlsx_path is not None:
        with atomic_path(xlsx_path) as tmp:
            df.to_excel(tmp, index=False, engine="openpyxl")


def read_table(path: str | Path) -> pd.DataFrame:
    """Read a particle table from parquet or csv (by suffix)."""
    path = Path(path)
    if path.suffix == ".parquet":
        return pd.read_parquet(path)
    if path.suffix == ".csv":
        return pd.read_csv(path)
    raise ValueError(f"{path}: unknown table format {path.suffix!r}; expected .parquet or .csv")


def _json_default(obj: Any) -> Any:
    if isinstance(obj, (np.integer,)):
        return int(obj)
    if isinstance(obj, (np.floating,)):
        return float(obj)
    if isinstance(obj, np.ndarray):
        return obj.tolist()
    if isinstance(obj, Path):
        return str(obj)
    raise TypeError(f"cannot write {type(obj).__name__} to JSON")


def write_json(path: str | Path, obj: Mapping[str, Any] | list[Any]) -> None:
    """Write JSON (numpy scalars and paths allowed) atomically, indented for people."""
    with atomic_path(path) as tmp:
        tmp.write_text(json.dumps(obj, indent=2, default=_json_default) + "\n")
