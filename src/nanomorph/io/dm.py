"""Gatan DigitalMicrograph .dm3/.dm4 files, read through ncempy."""

from __future__ import annotations

import contextlib
import io
import warnings
from pathlib import Path

import numpy as np

from ._core import Axis, ImageBlock, Refusal

SUFFIXES = (".dm3", ".dm4")
CALIBRATION_SOURCE = "dm tags"

# DM data-type codes ncempy cannot decode, so that the refusal can say what the data is.
_DM_COLOUR_TYPES = {8: "RGB", 23: "RGBA"}
_DM_COMPLEX_TYPES = {3, 5, 13, 18, 27}


@contextlib.contextmanager
def quiet_ncempy():
    """ncempy prints to stdout and warns about its own internals; keep both off our output."""
    with warnings.catch_warnings(), contextlib.redirect_stdout(io.StringIO()):
        warnings.simplefilter("ignore", DeprecationWarning)
        warnings.simplefilter("ignore", RuntimeWarning)
        yield


def _axes(pixel_size: list, pixel_unit: list, ndim: int) -> tuple[Axis, Axis, Axis | None]:
    """Per-axis calibration in array order (frames, y, x); ncempy may give fewer than ndim."""
    sizes = [float(s) for s in pixel_size]
    units = [str(u) for u in pixel_unit]
    while len(units) < len(sizes):
        units.append("")
    if ndim < 2 or len(sizes) < 2:
        # 1-D data: keep its one axis as x so that a refusal can name the unit (eV, ...).
        return (
            Axis(None, "", "y"),
            Axis(sizes[-1] if sizes else None, units[-1] if units else ""),
            None,
        )
    y = Axis(sizes[-2], units[-2], "y")
    x = Axis(sizes[-1], units[-1], "x")
    frame_axis = None
    if ndim >= 3 and len(sizes) >= 3:
        frame_axis = Axis(sizes[-3], units[-3], "z")
    return y, x, frame_axis


def _header_dataset(dm_file, index: int) -> tuple[tuple[int, ...], np.dtype, list, list]:
    """Shape, dtype, pixel sizes and units of a dataset (thumbnail excluded) from the file's
    header alone, as ncempy's ``getDataset`` gives them with the pixels (which it copies into
    memory): so that opening and counting a file does not read its pixels. Raises OSError, as
    ``getDataset`` does, for data types ncempy cannot decode."""
    ii = index if dm_file.numObjects == 1 else index + 1
    first = int(sum(dm_file.dataShape[0:ii]))
    n_axes = int(dm_file.dataShape[ii])
    pixel_unit = list(dm_file.scaleUnit[first : first + n_axes])[::-1]
    pixel_size = list(dm_file.scale[first : first + n_axes])[::-1]
    dtype = np.dtype(dm_file._DM2NPDataType(dm_file.dataType[ii]))
    x, y = int(dm_file.xSize[ii]), int(dm_file.ySize[ii])
    z, z2 = int(dm_file.zSize[ii]), int(dm_file.zSize2[ii])
    if z == 1:
        shape: tuple[int, ...] = (y, x)
        if len(shape) > n_axes:  # a spectrum stored as one row: ncempy squeezes it
            shape = tuple(n for n in shape if n != 1)
    elif z2 > 1:
        shape = (z2, z, y, x)
    else:
        shape = (z, y, x)
    return shape, dtype, pixel_size, pixel_unit


def _dataset_loader(path: Path, index: int):
    def load() -> np.ndarray:
        from ncempy.io import dm

        with quiet_ncempy(), dm.fileDM(path) as dm_file:
            return np.asarray(dm_file.getDataset(index)["data"])

    return load


def _frame_loader(path: Path, index: int):
    def load_frame(k: int) -> np.ndarray:
        from ncempy.io import dm

        with quiet_ncempy(), dm.fileDM(path, on_memory=False) as dm_file:
            return np.array(dm_file.getMemmap(index)[k])

    return load_frame


def read_dm_blocks(path: Path) -> list[ImageBlock | Refusal]:
    """Every dataset of a DM file (the thumbnail excluded) as image blocks or refusals.

    Parameters
    ----------
    path
        A .dm3 or .dm4 file.

    Returns
    -------
    list
        One :class:`ImageBlock` per dataset that ncempy can decode; a :class:`Refusal` for each
        dataset it cannot (RGB(A), packed complex).

    Raises
    ------
    OSError
        From ncempy when the file is not a DM file (wrapped by the public readers).
    """
    from ncempy.io import dm

    entries: list[ImageBlock | Refusal] = []
    with quiet_ncempy(), dm.fileDM(path) as dm_file:
        # ncempy treats the first object as a thumbnail whenever there is more than one.
        n_datasets = 1 if dm_file.numObjects == 1 else dm_file.numObjects - 1
        offset = 0 if dm_file.numObjects == 1 else 1
        for index in range(n_datasets):
            type_code = int(dm_file.dataType[index + offset])
            label = str(index)
            try:
                shape, dtype, pixel_size, pixel_unit = _header_dataset(dm_file, index)
            except OSError as exc:
                if type_code in _DM_COLOUR_TYPES:
                    reason = (
                        f"it holds {_DM_COLOUR_TYPES[type_code]} colour data (DM type "
                        f"{type_code}), which the DM reader cannot decode; save it as a grey image"
                    )
                elif type_code in _DM_COMPLEX_TYPES:
                    reason = (
                        f"it holds packed complex data (DM type {type_code}): a Fourier transform,"
                        " not a micrograph"
                    )
                else:
                    reason = f"its data cannot be decoded ({exc})"
                entries.append(Refusal(label, reason))
                continue
            y, x, frame_axis = _axes(pixel_size, pixel_unit, len(shape))
            entries.append(
                ImageBlock(
                    label=label,
                    shape=shape,
                    dtype=dtype,
                    load=_dataset_loader(path, index),
                    load_frame=_frame_loader(path, index) if len(shape) == 3 else None,
                    y=y,
                    x=x,
                    calibration_source=CALIBRATION_SOURCE,
                    frame_axis=frame_axis,
                    uncalibrated_reason=(
                        f"no pixel calibration in the file (scale {x.scale}, unit {x.unit!r})"
                    ),
                    extra_raw={"dm_data_type": type_code},
                )
            )
    return entries
