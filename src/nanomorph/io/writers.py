"""Writers for calibrated micrographs: ImageJ TIFF (tifffile), DigitalMicrograph (nionswift-io)
and Thermo Fisher Velox EMD (h5py).

All write through :func:`nanomorph.outputs.atomic_path` (a temporary file beside the target,
renamed into place), so that an interrupted run never leaves a half-written file under the final
name.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np

__all__ = ["write_calibrated_tiff", "write_dm", "write_velox_emd"]

# Data types ImageJ opens; anything else is stored as float32.
_IMAGEJ_DTYPES = (np.uint8, np.uint16, np.float32)


def _check(image: np.ndarray, pixel_size_nm: float, allow_stack: bool) -> np.ndarray:
    array = np.asarray(image)
    if array.ndim != 2 and not (allow_stack and array.ndim == 3):
        raise ValueError(
            f"image has shape {array.shape}; expected a 2-D image"
            + (" or a 3-D stack (frames, y, x)" if allow_stack else "")
        )
    if array.dtype.kind not in "biuf":
        raise ValueError(f"image data type {array.dtype} cannot be written as a micrograph")
    if not (float(pixel_size_nm) > 0 and np.isfinite(pixel_size_nm)):
        raise ValueError(f"pixel size {pixel_size_nm!r} nm is not a positive finite number")
    return array


def write_calibrated_tiff(
    path: str | Path,
    image: np.ndarray,
    pixel_size_nm: float,
    metadata: dict[str, Any] | None = None,
) -> Path:
    """Write an ImageJ-compatible TIFF calibrated in nanometres.

    ImageJ/Fiji and :func:`nanomorph.io.read_micrographs` both read the calibration back:
    the description holds ``unit=nm`` and X/YResolution hold pixels per nm.

    Parameters
    ----------
    path
        Output file (.tif); parent folders are created.
    image
        2-D image, or a 3-D stack (frames, y, x) written as an ImageJ time series.
        uint8, uint16 and float32 are kept; other types are stored as float32.
    pixel_size_nm
        Edge length of one square pixel in nm.
    metadata
        Extra ImageJ metadata (e.g. ``{"finterval": 0.5}`` seconds between frames, or
        ``{"Info": "free text"}``). ``unit`` is always ``"nm"``.

    Returns
    -------
    Path
        The written file.

    Raises
    ------
    ValueError
        If the image is not 2-D/3-D real data or the pixel size is not positive.

    Examples
    --------
    >>> write_calibrated_tiff("disk.tif", np.eye(64, dtype=np.float32), 0.25)  # doctest: +SKIP
    """
    import tifffile

    # Imported here: nanomorph.outputs loads pandas, which reading micrographs never needs.
    from ..outputs import atomic_path

    path = Path(path)
    array = _check(image, pixel_size_nm, allow_stack=True)
    if array.dtype not in _IMAGEJ_DTYPES:
        array = array.astype(np.float32)
    meta = dict(metadata or {})
    meta["unit"] = "nm"
    if array.ndim == 3:
        meta.setdefault("axes", "TYX")
    resolution = 1.0 / float(pixel_size_nm)
    with atomic_path(path) as tmp:
        tifffile.imwrite(
            tmp, array, imagej=True, resolution=(resolution, resolution), metadata=meta
        )
    return path


def _dm_saver() -> tuple[Callable[..., None], Any, Any]:
    try:
        from nion.data import Calibration, DataAndMetadata
        from nionswift_plugin.DM_IO import dm3_image_utils
    except ImportError as exc:
        raise ImportError(
            "writing .dm3/.dm4 files needs the nionswift-io package (pip install nionswift-io)"
        ) from exc
    return dm3_image_utils.save_image, Calibration, DataAndMetadata


def write_dm(path: str | Path, image: np.ndarray, pixel_size_nm: float, version: int = 3) -> Path:
    """Write a DigitalMicrograph .dm3 (``version=3``) or .dm4 (``version=4``) image in nm.

    Uses nionswift-io's writer; ncempy and DigitalMicrograph read the calibration back.

    Parameters
    ----------
    path
        Output file; its suffix should match ``version`` (.dm3 or .dm4).
    image
        2-D image (any real numeric type; 3-D stacks are not written).
    pixel_size_nm
        Edge length of one square pixel in nm.
    version
        3 or 4.

    Returns
    -------
    Path
        The written file.

    Raises
    ------
    ValueError
        If ``version`` is not 3 or 4, the image is not 2-D real data, or the pixel size is not
        positive.
    ImportError
        If nionswift-io is not installed.
    """
    from ..outputs import atomic_path

    if version not in (3, 4):
        raise ValueError(f"DM version {version!r} is not 3 or 4")
    path = Path(path)
    array = _check(image, pixel_size_nm, allow_stack=False)
    if array.dtype == bool:
        array = array.astype(np.uint8)
    save_image, calibration, data_and_metadata = _dm_saver()
    scale = float(pixel_size_nm)
    xdata = data_and_metadata.new_data_and_metadata(
        np.ascontiguousarray(array),
        dimensional_calibrations=[calibration.Calibration(scale=scale, units="nm")] * 2,
    )
    with atomic_path(path) as tmp, open(tmp, "wb") as handle:
        save_image(xdata, handle, version)
    return path


def write_velox_emd(
    path: str | Path,
    image: np.ndarray,
    pixel_size_nm: float,
    detector: str = "HAADF",
    acquisition_time_s: int = 0,
) -> Path:
    """Write a Thermo Fisher Velox EMD file (HDF5) holding one image or one series.

    The layout of the files Velox saves, as far as readers use it: the pixels in
    ``Data/Image/<id>/Data`` as (rows, columns, frames), chunked one frame per chunk, and
    beside them ``Metadata``, one column of zero-padded UTF-8 JSON per frame with the pixel
    size in metres (``BinaryResult.PixelSize``), the detector and the acquisition start. ncempy
    and :func:`nanomorph.io.read_micrographs` read the image and its calibration back.

    Parameters
    ----------
    path
        Output file (.emd); parent folders are created.
    image
        2-D image, or a 3-D stack (frames, y, x) written as one multi-frame image.
    pixel_size_nm
        Edge length of one square pixel in nm.
    detector
        Detector name recorded in the metadata (``"HAADF"``, ``"BF"``, ...).
    acquisition_time_s
        Acquisition start, seconds since 1970 (Velox records it so).

    Returns
    -------
    Path
        The written file.

    Raises
    ------
    ValueError
        If the image is not 2-D/3-D real data or the pixel size is not positive.
    """
    import json

    import h5py

    from ..outputs import atomic_path

    path = Path(path)
    array = _check(image, pixel_size_nm, allow_stack=True)
    if array.dtype == bool:
        array = array.astype(np.uint8)
    frames = array[np.newaxis] if array.ndim == 2 else array
    n_frames, rows, columns = frames.shape
    pixel_m = str(float(pixel_size_nm) * 1e-9)
    metadata = {
        "BinaryResult": {
            "PixelSize": {"width": pixel_m, "height": pixel_m},
            "PixelUnitX": "m",
            "PixelUnitY": "m",
            "Detector": str(detector),
        },
        "Acquisition": {"AcquisitionStartDatetime": {"DateTime": str(int(acquisition_time_s))}},
        "Stage": {},
        "CustomProperties": {},
    }
    text = json.dumps(metadata).encode()
    # Velox pads each frame's JSON with zeros to a fixed length.
    column = np.frombuffer(text.ljust(max(4096, len(text) + 1), b"\0"), dtype=np.uint8)
    with atomic_path(path) as tmp, h5py.File(tmp, "w") as h5:
        h5.create_dataset(
            "Version", data=np.array([json.dumps({"format": "Velox", "version": 2}).encode()])
        )
        group = h5.create_group("Data/Image/00000000000000000000000000000001")
        group.create_dataset("Data", data=np.moveaxis(frames, 0, -1), chunks=(rows, columns, 1))
        group.create_dataset("Metadata", data=np.repeat(column[:, np.newaxis], n_frames, axis=1))
    return path
