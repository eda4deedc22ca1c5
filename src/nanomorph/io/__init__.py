"""Read calibrated micrographs from microscope files; write calibrated TIFF and DM files.

Every reader returns :class:`Micrograph` objects: a 2-D float32 image with square pixels of
known size in nm, one per frame of a stack or multi-image file. The rules are the same for all
formats:

- lengths in pm, Å, nm, µm, mm or m are converted to nm; reciprocal-space (1/nm), energy (eV),
  angle and 1-D data, complex data and 4-D data are refused with :class:`MicrographError`;
- non-square pixels are resampled (bilinear) to square pixels of the smaller size, which is
  recorded in ``notes`` and ``raw_calibration["resampled"]``; pixels more than ten times longer
  on one axis are refused instead;
- a ``pixel_size_nm`` given by the user overrides the file's calibration (no resampling then:
  the user states the pixels are square and of that size); ``calibration_source`` is ``"user"``
  and the file's own calibration stays in ``raw_calibration``;
- a file without calibration (PNG/JPEG, plain TIFF, DM with scale 1 and no unit) raises
  :class:`MicrographError` asking for ``--pixel-size``, unless ``require_calibration=False``, in
  which case the Micrograph has ``pixel_size_nm=None`` and ``calibration_source="none"`` and
  whoever measures must refuse it;
- colour images are converted to grey (BT.709 luminance) with a ``UserWarning`` and a note;
  images containing NaN/inf or with all pixels equal are refused.

Any failure inside a format library is re-raised as :class:`MicrographError` naming the file and
the reason, so callers never see a library traceback.
"""

from __future__ import annotations

import contextlib
import logging
from collections.abc import Callable, Iterator
from pathlib import Path

from . import dm, emd, hspy, raster, ser, tiff
from ._core import (
    ImageBlock,
    Refusal,
    count_block_frames,
    micrographs_from_blocks,
    resample_to_square_pixels,
)
from .discover import FrameCountCache, count_frames, find_micrographs, image_sources
from .micrograph import Micrograph, MicrographError
from .units import classify_unit, length_unit_to_nm
from .writers import write_calibrated_tiff, write_dm, write_velox_emd

__all__ = [
    "FrameCountCache",
    "Micrograph",
    "MicrographError",
    "SUPPORTED_SUFFIXES",
    "classify_unit",
    "count_frames",
    "find_micrographs",
    "image_sources",
    "iter_micrographs",
    "length_unit_to_nm",
    "read_frame",
    "read_micrographs",
    "resample_to_square_pixels",
    "write_calibrated_tiff",
    "write_dm",
    "write_velox_emd",
]

_BlockReader = Callable[[Path], list[ImageBlock | Refusal]]

_READERS: dict[str, tuple[str, _BlockReader]] = {}
for _suffixes, _name, _reader in (
    (dm.SUFFIXES, "DigitalMicrograph", dm.read_dm_blocks),
    (ser.SUFFIXES, "TIA SER", ser.read_ser_blocks),
    (emd.SUFFIXES, "EMD (Velox or Berkeley)", emd.read_emd_blocks),
    (tiff.SUFFIXES, "TIFF", tiff.read_tiff_blocks),
    (raster.SUFFIXES, "PNG/JPEG", raster.read_raster_blocks),
    (hspy.SUFFIXES, "HyperSpy HDF5", hspy.read_hspy_blocks),
):
    for _suffix in _suffixes:
        _READERS[_suffix] = (_name, _reader)

SUPPORTED_SUFFIXES: tuple[str, ...] = tuple(_READERS)
"""Lower-case file suffixes (with the dot) that :func:`read_micrographs` accepts."""


def _check_arguments(
    path: str | Path, pixel_size_nm: float | None
) -> tuple[Path, str, _BlockReader]:
    path = Path(path)
    suffix = path.suffix.lower()
    if suffix not in _READERS:
        raise MicrographError(
            path,
            f"unsupported file type {suffix or '(no suffix)'!r}; supported: "
            + ", ".join(SUPPORTED_SUFFIXES),
        )
    if pixel_size_nm is not None:
        try:
            value = float(pixel_size_nm)
        except (TypeError, ValueError):
            value = float("nan")
        if not (value > 0 and value < float("inf")):
            raise MicrographError(
                path, f"pixel size {pixel_size_nm!r} nm is not a positive finite number"
            )
    if not path.exists():
        raise MicrographError(path, "no such file")
    if path.is_dir():
        raise MicrographError(path, "is a directory, not a micrograph file")
    name, reader = _READERS[suffix]
    return path, name, reader


def _article(format_name: str) -> str:
    return "an" if format_name[0] in "AEIOU" else "a"  # "an EMD (Velox or Berkeley) file"


@contextlib.contextmanager
def _read_errors(path: Path, format_name: str) -> Iterator[None]:
    """Re-raise anything a format library throws as a MicrographError naming the file."""
    # tifffile logs its complaint about a damaged file (twice for one cut short) before it
    # raises; the MicrographError below says it once, with the file's name.
    tifffile_log = logging.getLogger("tifffile")
    level = tifffile_log.level
    tifffile_log.setLevel(logging.CRITICAL)
    try:
        yield
    except MicrographError:
        raise
    except MemoryError as exc:
        raise MicrographError(path, "is too large to load into memory") from exc
    except Exception as exc:  # noqa: BLE001 - the public contract is one clear error type
        raise MicrographError(
            path,
            f"cannot be read as {_article(format_name)} {format_name} file "
            f"({type(exc).__name__}: {exc})",
        ) from exc
    finally:
        tifffile_log.setLevel(level)


def _guarded(path: Path, format_name: str, frames: Iterator[Micrograph]) -> Iterator[Micrograph]:
    """Re-raise anything a format library throws while frames are produced as MicrographError."""
    while True:
        with _read_errors(path, format_name):
            micrograph = next(frames, None)
        if micrograph is None:
            return
        yield micrograph


def iter_micrographs(
    path: str | Path,
    pixel_size_nm: float | None = None,
    *,
    require_calibration: bool = True,
) -> Iterator[Micrograph]:
    """Yield the micrographs in a file one frame at a time.

    The file's structure and calibration are checked when this function is called; each
    dataset's pixels are loaded when its first frame is needed, and each frame is converted
    (grey, float32, square pixels) only when it is yielded.

    Parameters
    ----------
    path
        A micrograph file with one of :data:`SUPPORTED_SUFFIXES`.
    pixel_size_nm
        Pixel size in nm that overrides (or supplies) the file's calibration.
    require_calibration
        If true (default), a file without a pixel calibration and no ``pixel_size_nm`` raises
        :class:`MicrographError`. If false, such frames come back with ``pixel_size_nm=None``.

    Returns
    -------
    Iterator[Micrograph]
        One Micrograph per frame; ``frame`` is ``None`` when the file holds a single image.

    Raises
    ------
    MicrographError
        When the file is missing, unsupported, unreadable, not a micrograph (spectrum,
        diffraction pattern, complex or 4-D data), uncalibrated while calibration is required,
        or when a frame contains NaN or is constant. Raised either here or during iteration.

    Examples
    --------
    >>> for micrograph in iter_micrographs("stack.dm4"):  # doctest: +SKIP
    ...     print(micrograph.name, micrograph.pixel_size_nm)
    """
    return _micrographs(path, pixel_size_nm, require_calibration, None)


def read_frame(
    path: str | Path,
    frame: int,
    pixel_size_nm: float | None = None,
    *,
    require_calibration: bool = True,
) -> Micrograph:
    """Read one frame of a micrograph file without converting the others.

    The same Micrograph as the ``frame``-th (from 0) that :func:`iter_micrographs` yields,
    after the same checks of the whole file; where the format allows it (TIFF pages, SER
    elements, Velox EMD, DigitalMicrograph) only that frame's pixels are read from disk, so
    each frame of a long in-situ series costs one frame's time and memory.

    Parameters
    ----------
    path
        A micrograph file with one of :data:`SUPPORTED_SUFFIXES`.
    frame
        Index of the frame over the whole file, from 0; 0 for a single image.
    pixel_size_nm, require_calibration
        As for :func:`iter_micrographs`.

    Raises
    ------
    MicrographError
        As :func:`iter_micrographs`, and when the file has no such frame.
    """
    index = int(frame)
    if index < 0:
        raise MicrographError(Path(path), f"frame {frame} is negative; frames count from 0")
    found = next(_micrographs(path, pixel_size_nm, require_calibration, index), None)
    if found is None:
        n_frames = count_frames(path)
        raise MicrographError(Path(path), f"has no frame {index} (it has {n_frames}, from 0)")
    return found


def _count_frames(path: str | Path) -> int:
    """Frames :func:`iter_micrographs` would yield, counted without reading any
    (:func:`count_frames` is the public entry)."""
    checked_path, format_name, reader = _check_arguments(path, None)
    with _read_errors(checked_path, format_name):
        return count_block_frames(checked_path, reader(checked_path))


def _micrographs(
    path: str | Path,
    pixel_size_nm: float | None,
    require_calibration: bool,
    only_frame: int | None,
) -> Iterator[Micrograph]:
    checked_path, format_name, reader = _check_arguments(path, pixel_size_nm)
    with _read_errors(checked_path, format_name):
        entries = reader(checked_path)
        frames = micrographs_from_blocks(
            checked_path,
            entries,
            None if pixel_size_nm is None else float(pixel_size_nm),
            require_calibration,
            only_frame,
        )
        # Run the checks of every dataset now rather than at the first next().
        first = next(frames, None)

    def _chain() -> Iterator[Micrograph]:
        if first is not None:
            yield first
        yield from frames

    return _guarded(checked_path, format_name, _chain())


def read_micrographs(
    path: str | Path,
    pixel_size_nm: float | None = None,
    *,
    require_calibration: bool = True,
) -> list[Micrograph]:
    """Read every frame of a micrograph file.

    Parameters
    ----------
    path
        A micrograph file with one of :data:`SUPPORTED_SUFFIXES`.
    pixel_size_nm
        Pixel size in nm that overrides (or supplies) the file's calibration; recorded as
        ``calibration_source="user"`` with the file's value kept in ``raw_calibration``.
    require_calibration
        If true (default), a file without a pixel calibration and no ``pixel_size_nm`` raises
        :class:`MicrographError`. If false, such frames come back with ``pixel_size_nm=None``.

    Returns
    -------
    list[Micrograph]
        One Micrograph per frame (a single image gives a list of one, with ``frame=None``).

    Raises
    ------
    MicrographError
        See :func:`iter_micrographs`.

    Examples
    --------
    >>> [m] = read_micrographs("image.dm3")  # doctest: +SKIP
    >>> m.pixel_size_nm, m.calibration_source  # doctest: +SKIP
    (0.2485380172729492, 'dm tags')
    """
    return list(iter_micrographs(path, pixel_size_nm, require_calibration=require_calibration))
