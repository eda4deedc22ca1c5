"""What every reader shares: raw image blocks, calibration checks, and conversion to Micrograph.

A format module only has to describe what is in its file as a list of :class:`ImageBlock` (one
2-D image or one stack, with the calibration of its axes as stored) or :class:`Refusal` (a
dataset that is not a micrograph, with the reason). :func:`micrographs_from_blocks` then applies
the same rules to every format: units to nm, refusal of reciprocal/energy/1-D/complex data,
square pixels, the user's pixel size, colour to grey, NaN and constant images.
"""

from __future__ import annotations

import math
import warnings
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from .micrograph import Micrograph, MicrographError
from .units import UnitKind, classify_unit

# Pixels more anisotropic than this are not resampled: such a file is a line scan, a plot or a
# mis-calibration, and blowing it up tenfold or more would only hide that.
MAX_PIXEL_ASPECT = 10.0
# Pixel heights and widths that agree this closely are the same size stored in float32.
SQUARE_RTOL = 1e-3
# ITU-R BT.709 luma weights, the ones scikit-image's rgb2gray uses.
LUMA_WEIGHTS = (0.2125, 0.7154, 0.0721)


@dataclass(frozen=True)
class Axis:
    """One axis as the file stores it: step size per pixel and its unit."""

    scale: float | None
    unit: str = ""
    name: str = ""

    def as_dict(self) -> dict[str, Any]:
        scale = None if self.scale is None else float(self.scale)
        return {"scale": scale, "unit": str(self.unit), "name": str(self.name)}


@dataclass
class ImageBlock:
    """A 2-D image or a stack of them, as found in a file, before any check.

    ``shape`` is the data shape with frames first: ``(y, x)``, ``(n, y, x)``, or more leading
    axes (refused), plus a trailing channel axis when ``colour`` is true. ``load`` returns the
    array with that shape; it is called once, lazily, when the first frame is needed.
    ``load_frame``, where a reader can read one frame without the rest (TIFF pages, SER
    elements, HDF5 slices, memory maps), returns frame ``i`` alone (``shape`` without its first
    axis), so that reading frame k of a long series costs one frame, not the stack.
    """

    label: str
    shape: tuple[int, ...]
    dtype: np.dtype
    load: Callable[[], np.ndarray]
    y: Axis
    x: Axis
    calibration_source: str
    frame_axis: Axis | None = None
    frame_times_s: Sequence[float] | None = None
    colour: bool = False
    uncalibrated_reason: str = "no pixel calibration in the file"
    extra_raw: dict[str, Any] = field(default_factory=dict)
    notes: list[str] = field(default_factory=list)
    load_frame: Callable[[int], np.ndarray] | None = None


@dataclass
class Refusal:
    """A dataset in a file that is not a micrograph, and why."""

    label: str
    reason: str


class NotAnImage(Exception):
    """Raised inside the package when a block turns out not to be a micrograph."""


def block_from_array(
    array: np.ndarray,
    label: str,
    y: Axis,
    x: Axis,
    calibration_source: str,
    **kwargs: Any,
) -> ImageBlock:
    """An :class:`ImageBlock` around an array that is already in memory."""
    return ImageBlock(
        label=label,
        shape=tuple(int(n) for n in array.shape),
        dtype=array.dtype,
        load=lambda: array,
        y=y,
        x=x,
        calibration_source=calibration_source,
        **kwargs,
    )


@dataclass
class _Plan:
    """What to do with every frame of one block."""

    block: ImageBlock
    n_frames: int
    pixel_size_nm: float | None
    calibration_source: str
    raw: dict[str, Any]
    notes: list[str]
    resample_to: tuple[float, float] | None = None  # (pixel_y_nm, pixel_x_nm) of the file


def _describe_kind(kind: UnitKind, unit: str) -> str:
    if kind is UnitKind.RECIPROCAL:
        return (
            f"its axes are in reciprocal-space units ({unit!r}): a diffraction pattern or "
            "Fourier transform, not a real-space micrograph"
        )
    if kind is UnitKind.ENERGY:
        return f"it has an energy axis ({unit!r}): a spectrum, not a micrograph"
    if kind is UnitKind.ANGLE:
        return f"its axes are angles ({unit!r}): a diffraction pattern, not a micrograph"
    if kind is UnitKind.TIME:
        return f"an image axis is time ({unit!r}): a time trace, not a micrograph"
    return f"axis unit {unit!r} is not a length unit (pm, Å, nm, µm, mm or m)"


def _plan(
    block: ImageBlock, pixel_size_nm: float | None, require_calibration: bool, path: Path
) -> _Plan:
    """Check one block without loading its pixels; raise NotAnImage or MicrographError."""
    dtype = np.dtype(block.dtype)
    if dtype.kind == "c":
        raise NotAnImage("it holds complex-valued data (a Fourier transform?), not a micrograph")
    if dtype.names is not None or dtype.kind not in "biuf":
        raise NotAnImage(f"its data type {dtype} is not a grey-level image")
    shape = block.shape[:-1] if block.colour else block.shape
    if len(shape) < 2:
        kind, _ = classify_unit(block.x.unit)
        if kind is UnitKind.ENERGY:
            raise NotAnImage(
                f"it is a spectrum (1-D data along an energy axis in {block.x.unit!r}), "
                "not a micrograph"
            )
    if len(shape) < 2 or min(shape[-2:]) < 2:
        raise NotAnImage(
            f"it holds {len(shape)}-D data of shape {tuple(shape)} (a spectrum or line "
            "profile), not a 2-D micrograph"
        )
    if len(shape) > 3:
        raise NotAnImage(
            f"it holds {len(shape)}-D data of shape {tuple(shape)} (4D-STEM or a spectrum image?)"
            ", not a micrograph or a stack of them"
        )
    n_frames = int(shape[0]) if len(shape) == 3 else 1

    raw: dict[str, Any] = {
        "source": block.calibration_source,
        "dataset": block.label,
        "y": block.y.as_dict(),
        "x": block.x.as_dict(),
    }
    if block.frame_axis is not None:
        raw["frame_axis"] = block.frame_axis.as_dict()
    raw.update(block.extra_raw)
    notes = list(block.notes)

    kinds = []
    for axis in (block.y, block.x):
        kind, factor = classify_unit(axis.unit)
        if kind not in (UnitKind.LENGTH, UnitKind.NONE):
            raise NotAnImage(_describe_kind(kind, axis.unit))
        valid = axis.scale is not None and math.isfinite(axis.scale) and axis.scale > 0
        kinds.append((kind, factor if valid else None))
    file_px: tuple[float, float] | None = None
    if all(k is UnitKind.LENGTH and f is not None for k, f in kinds):
        py = float(block.y.scale) * kinds[0][1]  # type: ignore[arg-type, operator]
        px = float(block.x.scale) * kinds[1][1]  # type: ignore[arg-type, operator]
        file_px = (py, px)
        raw["pixel_y_nm"] = py
        raw["pixel_x_nm"] = px
    elif any(k is UnitKind.LENGTH for k, _ in kinds):
        notes.append("the file's calibration is incomplete or invalid; treated as uncalibrated")

    if pixel_size_nm is not None:
        return _Plan(block, n_frames, float(pixel_size_nm), "user", raw, notes)
    if file_px is None:
        if require_calibration:
            raise MicrographError(
                path, f"{block.uncalibrated_reason}; pass --pixel-size NM to give the pixel size"
            )
        return _Plan(block, n_frames, None, "none", raw, notes)

    py, px = file_px
    small, large = min(py, px), max(py, px)
    if large / small - 1.0 <= SQUARE_RTOL:
        return _Plan(block, n_frames, 0.5 * (py + px), block.calibration_source, raw, notes)
    if large / small > MAX_PIXEL_ASPECT:
        raise NotAnImage(
            f"its pixels are {large / small:.4g} times longer on one axis than the other "
            f"(y {py:.6g} nm, x {px:.6g} nm), too distorted to resample; pass --pixel-size NM "
            "if the file's calibration is wrong"
        )
    return _Plan(block, n_frames, small, block.calibration_source, raw, notes, (py, px))


def resample_to_square_pixels(
    image: np.ndarray, pixel_y_nm: float, pixel_x_nm: float
) -> tuple[np.ndarray, float, tuple[float, float]]:
    """Resample an image with rectangular pixels to square pixels of the smaller size.

    Parameters
    ----------
    image
        2-D array.
    pixel_y_nm, pixel_x_nm
        Pixel height and width in nm.

    Returns
    -------
    image, pixel_size_nm, effective_nm
        The resampled float32 image (bilinear, order 1; only the coarser axis is stretched),
        the target pixel size (the smaller of the two), and the exact pixel height and width
        after rounding the output shape to whole pixels.
    """
    from skimage.transform import resize

    target = min(pixel_y_nm, pixel_x_nm)
    ny, nx = image.shape
    out_shape = (max(1, round(ny * pixel_y_nm / target)), max(1, round(nx * pixel_x_nm / target)))
    resampled = resize(
        image.astype(np.float32, copy=False),
        out_shape,
        order=1,
        mode="edge",
        preserve_range=True,
        anti_aliasing=False,
    ).astype(np.float32)
    effective = (ny * pixel_y_nm / out_shape[0], nx * pixel_x_nm / out_shape[1])
    return resampled, target, effective


def _to_grey(frame: np.ndarray, path: Path, where: str) -> tuple[np.ndarray, list[str]]:
    """Colour (last axis = channels) to one grey channel; returns the image and notes."""
    n_channels = frame.shape[-1]
    if n_channels == 2:  # grey + alpha
        return frame[..., 0], [f"{where}grey+alpha image: alpha channel dropped"]
    if n_channels not in (3, 4):
        raise MicrographError(path, f"{where}has {n_channels} colour channels; expected 3 or 4")
    notes = []
    if n_channels == 4:
        notes.append(f"{where}alpha channel dropped")
    rgb = frame[..., :3]
    if np.array_equal(rgb[..., 0], rgb[..., 1]) and np.array_equal(rgb[..., 0], rgb[..., 2]):
        notes.append(f"{where}RGB image with identical channels: one channel used")
        return rgb[..., 0], notes
    weights = np.asarray(LUMA_WEIGHTS, dtype=np.float32)
    grey = rgb.astype(np.float32) @ weights
    warnings.warn(
        f"{path}: {where}RGB colour image converted to grey (luminance, BT.709 weights)",
        UserWarning,
        stacklevel=4,
    )
    notes.append(f"{where}RGB colour image converted to grey (luminance, BT.709 weights)")
    return grey, notes


def _is_stacked(plan: _Plan) -> bool:
    """Whether the block's array has a frame axis first (a stack, possibly of one frame)."""
    return plan.n_frames > 1 or len(plan.block.shape) - int(plan.block.colour) == 3


def _frame_micrograph(
    plan: _Plan,
    frame: np.ndarray,
    index_in_block: int,
    global_frame: int | None,
    n_total: int,
    path: Path,
) -> Micrograph:
    block = plan.block
    frame = np.asarray(frame)
    where = "" if global_frame is None else f"frame {global_frame}: "
    notes = list(plan.notes)
    if block.colour:
        frame, colour_notes = _to_grey(frame, path, where)
        notes.extend(colour_notes)
    if frame.dtype.kind == "c":
        raise MicrographError(path, f"{where}holds complex-valued data, not a micrograph")
    image = np.ascontiguousarray(frame, dtype=np.float32)
    if image.ndim != 2:
        raise MicrographError(path, f"{where}has shape {image.shape}, not a 2-D image")
    if not np.isfinite(image).all():
        raise MicrographError(path, f"{where}contains NaN or infinite pixel values")
    lo, hi = float(image.min()), float(image.max())
    if lo == hi:
        raise MicrographError(path, f"{where}all pixels have the same value ({lo:g}); no image")

    raw = dict(plan.raw)
    pixel_size_nm = plan.pixel_size_nm
    if plan.resample_to is not None:
        py, px = plan.resample_to
        before = image.shape
        image, pixel_size_nm, effective = resample_to_square_pixels(image, py, px)
        raw["resampled"] = {
            "from_shape": list(before),
            "to_shape": list(image.shape),
            "pixel_y_nm": py,
            "pixel_x_nm": px,
            "effective_pixel_y_nm": effective[0],
            "effective_pixel_x_nm": effective[1],
        }
        notes.append(
            f"non-square pixels (y {py:.6g} nm, x {px:.6g} nm) resampled bilinearly to square "
            f"{pixel_size_nm:.6g} nm pixels: shape {before[0]}x{before[1]} -> "
            f"{image.shape[0]}x{image.shape[1]}"
        )

    time_s: float | None = None
    if block.frame_times_s is not None and index_in_block < len(block.frame_times_s):
        time_s = float(block.frame_times_s[index_in_block])
    elif block.frame_axis is not None and block.frame_axis.scale is not None:
        kind, factor = classify_unit(block.frame_axis.unit)
        if kind is UnitKind.TIME and factor is not None:
            time_s = index_in_block * float(block.frame_axis.scale) * factor

    return Micrograph(
        image=image,
        pixel_size_nm=pixel_size_nm,
        source=path,
        frame=global_frame,
        n_frames=n_total,
        calibration_source=plan.calibration_source,
        raw_calibration=raw,
        time_s=time_s,
        notes=notes,
    )


def _plans(
    path: Path,
    entries: Sequence[ImageBlock | Refusal],
    pixel_size_nm: float | None,
    require_calibration: bool,
) -> tuple[list[_Plan], list[str]]:
    """The plan of every block that is a micrograph, and a note for each dataset skipped."""
    plans: list[_Plan] = []
    refusals: list[Refusal] = [e for e in entries if isinstance(e, Refusal)]
    for entry in entries:
        if isinstance(entry, ImageBlock):
            try:
                plans.append(_plan(entry, pixel_size_nm, require_calibration, path))
            except NotAnImage as exc:
                refusals.append(Refusal(entry.label, str(exc)))
    if not plans:
        if not refusals:
            raise MicrographError(path, "holds no image data")
        first = refusals[0].reason
        more = f" ({len(refusals) - 1} more dataset(s) refused too)" if len(refusals) > 1 else ""
        raise MicrographError(path, f"is not a micrograph: {first}{more}")
    return plans, [f"skipped dataset {r.label!r}: {r.reason}" for r in refusals]


def count_block_frames(path: Path, entries: Sequence[ImageBlock | Refusal]) -> int:
    """How many frames :func:`micrographs_from_blocks` yields for these blocks, from their
    shapes and units alone: no pixel is converted (calibration is not needed to count)."""
    plans, _ = _plans(path, entries, 1.0, False)
    return sum(plan.n_frames for plan in plans)


def micrographs_from_blocks(
    path: Path,
    entries: Sequence[ImageBlock | Refusal],
    pixel_size_nm: float | None,
    require_calibration: bool,
    only_frame: int | None = None,
) -> Iterator[Micrograph]:
    """Check every block, then yield one Micrograph per frame, loading each block lazily.

    All blocks are checked before the first frame is yielded, so a file that cannot be
    analysed fails before any output is written for it. With ``only_frame`` (counted over the
    whole file from 0) only that frame is read, with its block's ``load_frame`` where it has
    one, and converted; it is yielded as it would be among the others (same ``frame`` index,
    ``n_frames`` and time). An index past the last frame yields nothing.

    Raises
    ------
    MicrographError
        When no block is a micrograph (the message gives the first reason), when calibration is
        required and missing, or when a frame is NaN/constant.
    """
    plans, skipped = _plans(path, entries, pixel_size_nm, require_calibration)
    n_total = sum(p.n_frames for p in plans)
    global_index = 0
    for plan in plans:
        wanted = range(plan.n_frames)
        if only_frame is not None:
            if not global_index <= only_frame < global_index + plan.n_frames:
                global_index += plan.n_frames
                continue
            wanted = range(only_frame - global_index, only_frame - global_index + 1)
            global_index = only_frame
        block = plan.block
        stacked = _is_stacked(plan)
        by_frame = only_frame is not None and stacked and block.load_frame is not None
        array = None if by_frame else _checked(block.load(), block.shape, block, path)
        for i in wanted:
            if by_frame:
                frame = _checked(block.load_frame(i), block.shape[1:], block, path)
            else:
                frame = array[i] if stacked else array
            frame_id = None if n_total == 1 else global_index
            micrograph = _frame_micrograph(plan, frame, i, frame_id, n_total, path)
            micrograph.notes[:0] = skipped
            global_index += 1
            yield micrograph


def _checked(array: np.ndarray, expected: tuple[int, ...], block: ImageBlock, path: Path):
    if tuple(array.shape) != tuple(expected):
        raise MicrographError(
            path, f"dataset {block.label!r} has shape {array.shape}, expected {expected}"
        )
    return array
