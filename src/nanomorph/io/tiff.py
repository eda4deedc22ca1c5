"""TIFF files through tifffile, with the calibration from whichever metadata the file carries.

Where a file has several, the first found wins, in this order:

1. FEI/Thermo Fisher ``FEI_HELIOS`` / ``FEI_SFEG`` tags: ``[Scan] PixelWidth/PixelHeight`` in m.
2. Zeiss SEM ``CZ_SEM`` tag: ``ap_image_pixel_size`` (value and unit).
3. ImageJ description ``unit=`` (and ``yunit=``) with the X/YResolution tags (pixels per unit).
4. TIFF ResolutionUnit CENTIMETER or INCH with X/YResolution. Image editors stamp a print
   resolution (72, 96, 300 dpi...) on files that have no physical calibration; a value that gives
   pixels of 10 µm or more is therefore taken for such a stamp and ignored, with a note.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np

from ._core import Axis, ImageBlock, Refusal
from .units import UnitKind, classify_unit

SUFFIXES = (".tif", ".tiff")

# Pixels this large (nm) from print-resolution tags are not a microscope calibration.
PRINT_RESOLUTION_LIMIT_NM = 10_000.0
_RESOLUTION_UNITS = {2: ("inch", 2.54e7), 3: ("cm", 1e7), 4: ("mm", 1e6), 5: ("µm", 1e3)}


def _rational(tag: Any) -> float | None:
    if tag is None:
        return None
    value = tag.value
    if isinstance(value, tuple) and len(value) == 2:
        num, den = value
        return float(num) / float(den) if den else None
    try:
        return float(value)
    except (TypeError, ValueError):
        return None


def _fei(tif: Any) -> tuple[Axis, Axis, str, dict[str, Any]] | None:
    meta = tif.fei_metadata
    if not meta:
        return None
    for section in ("Scan", "EScan", "Image"):
        values = meta.get(section) or {}
        width = values.get("PixelWidth")
        if isinstance(width, (int, float)) and width > 0:
            height = values.get("PixelHeight")
            if not isinstance(height, (int, float)) or height <= 0:
                height = width
            raw = {"fei_section": section, "PixelWidth": width, "PixelHeight": height}
            return Axis(float(height), "m", "y"), Axis(float(width), "m", "x"), "FEI metadata", raw
    return None


def _zeiss(tif: Any) -> tuple[Axis, Axis, str, dict[str, Any]] | None:
    meta = tif.sem_metadata
    if not meta:
        return None
    entry = meta.get("ap_image_pixel_size")
    if not isinstance(entry, tuple) or len(entry) < 2:
        return None
    value, unit = entry[1], entry[2] if len(entry) > 2 else ""
    if isinstance(value, str):  # tifffile could not split "2.5 nm"
        parts = value.split()
        if len(parts) != 2:
            return None
        value, unit = parts
    try:
        scale = float(value)
    except (TypeError, ValueError):
        return None
    raw = {"ap_image_pixel_size": [scale, unit]}
    return Axis(scale, unit, "y"), Axis(scale, unit, "x"), "Zeiss SEM metadata", raw


def _resolution(page: Any) -> tuple[float | None, float | None, int]:
    tags = page.tags
    unit_tag = tags.get("ResolutionUnit")
    unit = int(unit_tag.value) if unit_tag is not None else 2  # TIFF default is INCH
    return _rational(tags.get("YResolution")), _rational(tags.get("XResolution")), unit


def _imagej(tif: Any, page: Any) -> tuple[Axis, Axis, str, dict[str, Any]] | None:
    meta = tif.imagej_metadata
    if not meta or not meta.get("unit"):
        return None
    unit_x = str(meta["unit"])
    unit_y = str(meta.get("yunit", unit_x))
    if classify_unit(unit_x)[0] is UnitKind.NONE:
        return None
    res_y, res_x, _ = _resolution(page)
    scale_y = 1.0 / res_y if res_y else None
    scale_x = 1.0 / res_x if res_x else None
    raw = {"imagej_unit": unit_x, "XResolution": res_x, "YResolution": res_y}
    return Axis(scale_y, unit_y, "y"), Axis(scale_x, unit_x, "x"), "ImageJ tags", raw


def _resolution_tags(page: Any) -> tuple[tuple[Axis, Axis, str, dict[str, Any]] | None, str | None]:
    res_y, res_x, unit_code = _resolution(page)
    if unit_code not in _RESOLUTION_UNITS or not res_x or not res_y:
        return None, None
    unit, factor = _RESOLUTION_UNITS[unit_code]
    scale_y, scale_x = 1.0 / res_y, 1.0 / res_x
    raw = {"ResolutionUnit": unit, "XResolution": res_x, "YResolution": res_y}
    if min(scale_x, scale_y) * factor >= PRINT_RESOLUTION_LIMIT_NM:
        note = (
            f"TIFF resolution {res_x:g} pixels per {unit} ignored: pixels of "
            f"{scale_x * factor / 1000:.4g} µm are a print resolution, not a calibration"
        )
        return None, note
    return (Axis(scale_y, unit, "y"), Axis(scale_x, unit, "x"), "TIFF resolution tags", raw), None


def _calibration(tif: Any, page: Any) -> tuple[Axis, Axis, str, dict[str, Any], list[str]]:
    notes: list[str] = []
    for finder in (_fei, _zeiss):
        found = finder(tif)
        if found:
            return (*found, notes)
    found = _imagej(tif, page)
    if found:
        return (*found, notes)
    found, note = _resolution_tags(page)
    if note:
        notes.append(note)
    if found:
        return (*found, notes)
    return Axis(None, "", "y"), Axis(None, "", "x"), "none", {}, notes


def read_tiff_blocks(path: Path) -> list[ImageBlock | Refusal]:
    """Every image series of a TIFF file (reduced-resolution thumbnails excluded).

    Leading axes (time, z, channel, page) become frames; a trailing sample axis of 3 or 4 is
    treated as colour. ImageJ ``finterval`` gives per-frame times for a time series.

    Parameters
    ----------
    path
        A .tif/.tiff file.

    Returns
    -------
    list
        One :class:`ImageBlock` per series.

    Raises
    ------
    tifffile.TiffFileError
        When the file is not a TIFF (wrapped by the public readers).
    """
    import tifffile

    entries: list[ImageBlock | Refusal] = []
    with tifffile.TiffFile(path) as tif:
        imagej = tif.imagej_metadata or {}
        for index, series in enumerate(tif.series):
            page = series.keyframe
            if getattr(page, "is_reduced", False):
                continue
            axes = str(series.axes)
            shape = tuple(int(n) for n in series.shape)
            colour = "S" in axes and shape[axes.index("S")] in (2, 3, 4)
            source_axes = axes.replace("S", "") + ("S" if colour else "")
            spatial = source_axes[:-1] if colour else source_axes
            if not spatial.endswith("YX"):
                entries.append(Refusal(str(index), f"has axes {axes!r}, not an image (YX)"))
                continue
            lead = spatial[:-2]
            n_frames = int(np.prod([shape[axes.index(a)] for a in lead])) if lead else 1
            y_size, x_size = shape[axes.index("Y")], shape[axes.index("X")]
            out_shape: tuple[int, ...] = (y_size, x_size)
            if lead:
                out_shape = (n_frames, *out_shape)
            if colour:
                out_shape = (*out_shape, shape[axes.index("S")])
            y, x, source, raw, notes = _calibration(tif, page)
            if colour and axes.index("S") != len(axes) - 1:
                # planar RGB: move samples last before flattening the leading axes
                def load(i=index, a=axes, s=out_shape) -> np.ndarray:
                    data = tifffile.imread(path, series=i)
                    return np.moveaxis(data, a.index("S"), -1).reshape(s)
            else:

                def load(i=index, s=out_shape) -> np.ndarray:
                    return np.asarray(tifffile.imread(path, series=i)).reshape(s)

            # One page per frame (ImageJ and plain multi-page stacks): frame k is page k of
            # the series, in the order the leading axes are flattened.
            load_frame = None
            frame_shape = out_shape[1:]
            page_shape = tuple(int(n) for n in page.shape)
            if lead and len(series.pages) == n_frames and page_shape == frame_shape:

                def load_frame(k: int, i=index) -> np.ndarray:
                    return np.asarray(tifffile.imread(path, series=i, key=k))

            times = None
            frame_axis = None
            if lead == "T" and isinstance(imagej.get("finterval"), (int, float)):
                frame_axis = Axis(float(imagej["finterval"]), "s", "t")
            if len(lead) > 1:
                notes.append(f"axes {lead!r} flattened into {n_frames} frames")
            raw = {"tiff_axes": axes, **raw}
            entries.append(
                ImageBlock(
                    label=str(index),
                    shape=out_shape,
                    dtype=np.dtype(series.dtype),
                    load=load,
                    y=y,
                    x=x,
                    calibration_source=source,
                    frame_axis=frame_axis,
                    frame_times_s=times,
                    colour=colour,
                    uncalibrated_reason="the TIFF file carries no pixel calibration",
                    extra_raw=raw,
                    notes=notes,
                    load_frame=load_frame,
                )
            )
    return entries
